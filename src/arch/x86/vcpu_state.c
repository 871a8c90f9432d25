/* Whole-vCPU save/restore in a fixed, documented order (see vcpu_state.h). */
#include "arch/x86/vcpu_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/cpuid.h"
#include "arch/x86/sregs.h"

#define MSRS_MAX 4096

static struct kvm_msrs *msrs_alloc(uint32_t n)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + (size_t)n * sizeof(m->entries[0]));

	if (m)
		m->nmsrs = n;
	return m;
}

/* The vCPU's CPUID table (KVM_GET_CPUID2), NULL with 0 when none was set. */
static int get_cpuid(int vcpu_fd, struct kvm_cpuid2 **out)
{
	*out = NULL;
	for (unsigned int n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = cpuid_alloc(n);

		if (!c)
			return -ENOMEM;
		if (ioctl(vcpu_fd, KVM_GET_CPUID2, c) == 0) {
			if (c->nent)
				*out = c;
			else
				free(c);
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return -errno;
	}
	return -E2BIG;
}

static struct kvm_msr_list *msr_index_list(int kvm_fd)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *l;

	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) == 0 || errno != E2BIG ||
	    probe.nmsrs > MSRS_MAX)
		return NULL;
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
	if (!l)
		return NULL;
	l->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return NULL;
	}
	return l;
}

/* Read every listed MSR KVM lets us read: KVM_GET_MSRS stops at the first refusal, so
 * skip that one and go on. */
static int save_msrs(int kvm_fd, int vcpu_fd, struct kvm_msrs **out)
{
	struct kvm_msr_list *l = msr_index_list(kvm_fd);
	struct kvm_msrs *m, *got;
	uint32_t i = 0, n = 0;

	if (!l)
		return -EIO;
	m = msrs_alloc(l->nmsrs);
	got = msrs_alloc(l->nmsrs);
	if (!m || !got) {
		free(l);
		free(m);
		free(got);
		return -ENOMEM;
	}
	while (i < l->nmsrs) {
		int r;

		m->nmsrs = l->nmsrs - i;
		for (uint32_t k = 0; k < m->nmsrs; k++)
			m->entries[k] = (struct kvm_msr_entry){ .index = l->indices[i + k] };
		r = ioctl(vcpu_fd, KVM_GET_MSRS, m);
		if (r < 0)
			r = 0;
		memcpy(&got->entries[n], m->entries, (size_t)r * sizeof(m->entries[0]));
		n += (uint32_t)r;
		i += (uint32_t)r + 1; /* skip the refused one */
	}
	got->nmsrs = n;
	free(m);
	free(l);
	*out = got;
	return 0;
}

static int save_fpu(int kvm_fd, int vcpu_fd, struct x86_state *st)
{
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		if (ioctl(vcpu_fd, KVM_GET_XCRS, &st->xcrs) < 0)
			return -errno;
		st->has_xcrs = true;
	}
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0) {
		st->xsave = calloc(1, sizeof(*st->xsave));
		if (!st->xsave)
			return -ENOMEM;
		if (ioctl(vcpu_fd, KVM_GET_XSAVE, st->xsave) < 0)
			return -errno;
	} else if (ioctl(vcpu_fd, KVM_GET_FPU, &st->fpu) < 0) {
		return -errno;
	}
	return 0;
}

int x86_state_save(int kvm_fd, int vcpu_fd, struct x86_state **out)
{
	struct x86_state *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return -ENOMEM;
	r = get_cpuid(vcpu_fd, &st->cpuid);
	if (r)
		goto fail;
	if (ioctl(vcpu_fd, KVM_GET_REGS, &st->regs) < 0 ||
	    ioctl(vcpu_fd, KVM_GET_SREGS, &st->sregs) < 0 ||
	    ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &st->events) < 0 ||
	    ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &st->debugregs) < 0 ||
	    ioctl(vcpu_fd, KVM_GET_MP_STATE, &st->mp) < 0) {
		r = -errno;
		goto fail;
	}
	st->has_lapic = ioctl(vcpu_fd, KVM_GET_LAPIC, &st->lapic) == 0; /* no irqchip: none */
	r = save_fpu(kvm_fd, vcpu_fd, st);
	if (!r)
		r = save_msrs(kvm_fd, vcpu_fd, &st->msrs);
	if (r)
		goto fail;
	*out = st;
	return 0;
fail:
	x86_state_free(st);
	return r;
}

void x86_state_free(struct x86_state *st)
{
	if (!st)
		return;
	free(st->cpuid);
	free(st->msrs);
	free(st->xsave);
	free(st);
}

bool x86_state_msr(const struct x86_state *st, uint32_t index, uint64_t *value)
{
	for (uint32_t i = 0; st->msrs && i < st->msrs->nmsrs; i++) {
		if (st->msrs->entries[i].index == index) {
			*value = st->msrs->entries[i].data;
			return true;
		}
	}
	return false;
}

static int step_err(char *err, size_t len, const char *step, int e)
{
	snprintf(err, len, "%s: %s", step, strerror(e));
	return -e;
}

/* 1. CPUID, unless the vCPU already holds the same table; caps for the sregs check. */
static int restore_cpuid(int fd, const struct x86_state *st, struct x86_caps *caps,
			 bool *have_caps, char *err, size_t len)
{
	struct kvm_cpuid2 *cur = NULL;
	int r = get_cpuid(fd, &cur);
	bool same;

	if (r)
		return step_err(err, len, "KVM_GET_CPUID2", -r);
	*have_caps = st->cpuid || cur;
	if (!st->cpuid) {
		if (cur)
			x86_caps_from_cpuid(caps, cur);
		free(cur);
		return 0;
	}
	same = cur && cur->nent == st->cpuid->nent &&
	       !memcmp(cur->entries, st->cpuid->entries, cur->nent * sizeof(cur->entries[0]));
	free(cur);
	if (!same && ioctl(fd, KVM_SET_CPUID2, st->cpuid) < 0)
		return step_err(err, len, "KVM_SET_CPUID2", errno);
	x86_caps_from_cpuid(caps, st->cpuid);
	return 0;
}

/* Write MSRs (those with tsc_deadline == (index == TSC_DEADLINE)). A refused write is
 * accepted when the MSR already holds the value (read-only MSRs KVM lets us read). */
static int restore_msrs(int fd, const struct kvm_msrs *src, bool tsc_deadline, char *err,
			size_t len)
{
	struct kvm_msrs *one = msrs_alloc(1);

	if (!one)
		return step_err(err, len, "KVM_SET_MSRS", ENOMEM);
	for (uint32_t i = 0; src && i < src->nmsrs; i++) {
		const struct kvm_msr_entry *e = &src->entries[i];

		if ((e->index == X86_MSR_TSC_DEADLINE) != tsc_deadline)
			continue;
		one->nmsrs = 1;
		one->entries[0] = *e;
		if (ioctl(fd, KVM_SET_MSRS, one) == 1)
			continue;
		one->entries[0].data = ~e->data;
		if (ioctl(fd, KVM_GET_MSRS, one) == 1 && one->entries[0].data == e->data)
			continue;
		snprintf(err, len, "KVM_SET_MSRS: MSR 0x%x refused value 0x%llx", e->index,
			 (unsigned long long)e->data);
		free(one);
		return -EINVAL;
	}
	free(one);
	return 0;
}

static int restore_fpu_regs(int fd, const struct x86_state *st, char *err, size_t len)
{
	if (st->has_xcrs && ioctl(fd, KVM_SET_XCRS, &st->xcrs) < 0)
		return step_err(err, len, "KVM_SET_XCRS", errno);
	if (st->xsave) {
		if (ioctl(fd, KVM_SET_XSAVE, st->xsave) < 0)
			return step_err(err, len, "KVM_SET_XSAVE", errno);
	} else if (ioctl(fd, KVM_SET_FPU, &st->fpu) < 0) {
		return step_err(err, len, "KVM_SET_FPU", errno);
	}
	if (ioctl(fd, KVM_SET_REGS, &st->regs) < 0)
		return step_err(err, len, "KVM_SET_REGS", errno);
	return 0;
}

int x86_state_restore(int fd, const struct x86_state *st, char *err, size_t errlen)
{
	struct x86_caps caps;
	bool have_caps;
	char tmp[200];
	int r;

	if (!err || !errlen) {
		err = tmp;
		errlen = sizeof(tmp);
	}
	r = restore_cpuid(fd, st, &caps, &have_caps, err, errlen);
	if (r)
		return r;
	if (have_caps)
		r = sregs_set(fd, &st->sregs, &caps, err, errlen);
	else if (ioctl(fd, KVM_SET_SREGS, &st->sregs) < 0)
		r = step_err(err, errlen, "KVM_SET_SREGS", errno);
	if (!r)
		r = restore_msrs(fd, st->msrs, false, err, errlen);
	if (!r)
		r = restore_fpu_regs(fd, st, err, errlen);
	if (!r && st->has_lapic && ioctl(fd, KVM_SET_LAPIC, &st->lapic) < 0)
		r = step_err(err, errlen, "KVM_SET_LAPIC", errno);
	if (!r)
		r = restore_msrs(fd, st->msrs, true, err, errlen);
	if (!r && ioctl(fd, KVM_SET_VCPU_EVENTS, &st->events) < 0)
		r = step_err(err, errlen, "KVM_SET_VCPU_EVENTS", errno);
	if (!r && ioctl(fd, KVM_SET_DEBUGREGS, &st->debugregs) < 0)
		r = step_err(err, errlen, "KVM_SET_DEBUGREGS", errno);
	if (!r && ioctl(fd, KVM_SET_MP_STATE, &st->mp) < 0)
		r = step_err(err, errlen, "KVM_SET_MP_STATE", errno);
	return r;
}
