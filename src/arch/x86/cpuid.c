/* Per-vCPU CPUID tables (see cpuid.h). Leaf layouts: Intel SDM vol. 2A "CPUID" (leaves 1,
 * 4, 0xA, 0xB, 0x1F), AMD APM vol. 3 appendix E (0x80000008, 0x8000001D, 0x8000001E) and
 * the kernel's Documentation/virt/kvm/x86/cpuid.rst (0x40000000, 0x40000001). */
#include "arch/x86/cpuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/sregs.h"

#define CPUID_1_ECX_X2APIC	(1u << 21)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_OSXSAVE	(1u << 27)
#define CPUID_1_ECX_HYPERVISOR	(1u << 31)
#define CPUID_1_EDX_HTT		(1u << 28)
#define TOPO_LEVEL_SMT		1
#define TOPO_LEVEL_CORE		2

/* Field widths and counts of the configured topology. */
struct topo {
	unsigned int threads, cores;	/* per core, per socket */
	unsigned int smt_bits, core_bits;
	uint32_t apic_id;
	unsigned int thread_id, core_id, socket_id;
};

static unsigned int order_base_2(unsigned int n)
{
	unsigned int b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

static void topo_of(const struct cpuid_config *cc, unsigned int cpu, struct topo *t)
{
	t->threads = cc->threads_per_core ? cc->threads_per_core : 1;
	t->cores = cc->cores_per_socket ? cc->cores_per_socket : (cc->ncpus + t->threads - 1) / t->threads;
	t->smt_bits = order_base_2(t->threads);
	t->core_bits = order_base_2(t->cores);
	t->thread_id = cpu % t->threads;
	t->core_id = (cpu / t->threads) % t->cores;
	t->socket_id = cpu / (t->threads * t->cores);
	t->apic_id = (uint32_t)t->socket_id << (t->smt_bits + t->core_bits) |
		     (uint32_t)t->core_id << t->smt_bits | t->thread_id;
}

uint32_t cpuid_apic_id(const struct cpuid_config *cc, unsigned int cpu)
{
	struct topo t;

	topo_of(cc, cpu, &t);
	return t.apic_id;
}

struct kvm_cpuid2 *cpuid_alloc(unsigned int nent)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(c->entries[0]));

	if (c)
		c->nent = nent;
	return c;
}

struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd)
{
	for (unsigned int n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = cpuid_alloc(n);

		if (!c)
			return NULL;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	errno = E2BIG;
	return NULL;
}

struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *t, uint32_t function,
				    uint32_t index)
{
	for (unsigned int i = 0; i < t->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &t->entries[i];

		if (e->function == function &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return (struct kvm_cpuid_entry2 *)e;
	}
	return NULL;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static void leaf_1(struct kvm_cpuid_entry2 *e, const struct cpuid_config *cc,
		   const struct topo *t, bool tsc_deadline)
{
	uint32_t per_pkg = 1u << (t->smt_bits + t->core_bits);

	e->ebx &= 0x0000ffff;
	e->ebx |= (t->apic_id & 0xff) << 24;
	e->ebx |= min_u32(per_pkg, 255) << 16;
	if (per_pkg > 1)
		e->edx |= CPUID_1_EDX_HTT;
	else
		e->edx &= ~CPUID_1_EDX_HTT;
	e->ecx |= CPUID_1_ECX_HYPERVISOR | CPUID_1_ECX_X2APIC;
	e->ecx &= ~CPUID_1_ECX_OSXSAVE; /* KVM reflects CR4.OSXSAVE at run time */
	if (tsc_deadline)
		e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
	else
		e->ecx &= ~CPUID_1_ECX_TSC_DEADLINE;
	(void)cc;
}

/* Deterministic cache parameters (Intel leaf 4, AMD 0x8000001D): how many logical
 * processors share each cache, and (leaf 4) how many cores the package has. */
static void leaf_cache(struct kvm_cpuid_entry2 *e, const struct topo *t, bool intel4)
{
	unsigned int level = (e->eax >> 5) & 7;
	uint32_t share_bits = level >= 3 ? t->smt_bits + t->core_bits : t->smt_bits;

	if (!(e->eax & 0x1f))
		return; /* no cache at this subleaf */
	e->eax &= ~(0xfffu << 14);
	e->eax |= min_u32((1u << share_bits) - 1, 0xfff) << 14;
	if (intel4) {
		e->eax &= 0x03ffffff;
		e->eax |= min_u32((1u << t->core_bits) - 1, 63) << 26;
	}
}

/* One subleaf of the extended topology leaves 0xB / 0x1F. */
static void topo_subleaf(struct kvm_cpuid_entry2 *e, uint32_t fn, uint32_t idx,
			 const struct topo *t)
{
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e->edx = t->apic_id;
	e->ecx = idx & 0xff;
	if (idx == 0) {
		e->eax = t->smt_bits;
		e->ebx = t->threads;
		e->ecx |= TOPO_LEVEL_SMT << 8;
	} else if (idx == 1) {
		e->eax = t->smt_bits + t->core_bits;
		e->ebx = min_u32(t->threads * t->cores, 0xffff);
		e->ecx |= TOPO_LEVEL_CORE << 8;
	} /* idx 2: invalid level, terminates the enumeration */
}

static void leaf_pv(struct kvm_cpuid_entry2 *e, const struct cpuid_config *cc)
{
	if (e->function == KVM_CPUID_SIGNATURE_LEAF) {
		if (e->eax < KVM_CPUID_FEATURES_LEAF)
			e->eax = KVM_CPUID_FEATURES_LEAF;
		memcpy(&e->ebx, "KVMK", 4);
		memcpy(&e->ecx, "VMKV", 4);
		memcpy(&e->edx, "M\0\0\0", 4);
	} else if (!cc->no_msi_ext_dest_id) {
		e->eax |= 1u << CPUID_KVM_FEATURE_MSI_EXT_DEST_ID;
	}
}

/* Leaves whose content depends on the vCPU or the configuration; everything else is
 * KVM's supported value unchanged. */
static void fix_entry(struct kvm_cpuid_entry2 *e, const struct cpuid_config *cc,
		      const struct topo *t, bool tsc_deadline)
{
	switch (e->function) {
	case 1:
		leaf_1(e, cc, t, tsc_deadline);
		break;
	case 4:
		leaf_cache(e, t, true);
		break;
	case 0xa:
		if (!cc->pmu)
			e->eax = e->ebx = e->ecx = e->edx = 0;
		break;
	case 0x80000008:
		e->ecx &= ~0xf0ffu;
		e->ecx |= min_u32(t->threads * t->cores - 1, 255);
		e->ecx |= (t->smt_bits + t->core_bits) << 12;
		break;
	case 0x8000001d:
		leaf_cache(e, t, false);
		break;
	case 0x8000001e:
		e->eax = t->apic_id;
		e->ebx = (t->threads - 1) << 8 | (t->core_id & 0xff);
		e->ecx = t->socket_id & 0xff; /* node id; one node per socket */
		e->edx = 0;
		break;
	case KVM_CPUID_SIGNATURE_LEAF:
	case KVM_CPUID_FEATURES_LEAF:
		leaf_pv(e, cc);
		break;
	}
}

static int add_entry(struct kvm_cpuid2 *out, unsigned int *n, unsigned int cap,
		     const struct kvm_cpuid_entry2 *e)
{
	if (*n >= cap)
		return -ENOSPC;
	out->entries[(*n)++] = *e;
	return 0;
}

/* Copy sup without the topology leaves (they are rebuilt) and fix each entry. */
static int copy_fixed(const struct kvm_cpuid2 *sup, const struct cpuid_config *cc,
		      const struct topo *t, struct kvm_cpuid2 *out, unsigned int *n,
		      unsigned int cap, bool tsc_deadline)
{
	for (unsigned int i = 0; i < sup->nent; i++) {
		struct kvm_cpuid_entry2 e = sup->entries[i];

		if (e.function == 0xb || e.function == 0x1f)
			continue;
		if (e.function == 0 && e.eax < 0xb)
			e.eax = 0xb; /* so that the guest reads leaf 0xB */
		fix_entry(&e, cc, t, tsc_deadline);
		if (add_entry(out, n, cap, &e))
			return -ENOSPC;
	}
	return 0;
}

int cpuid_build(const struct kvm_cpuid2 *sup, const struct cpuid_config *cc, unsigned int cpu,
		struct kvm_cpuid2 *out)
{
	const struct kvm_cpuid_entry2 *l0 = cpuid_find(sup, 0, 0), *l1 = cpuid_find(sup, 1, 0);
	unsigned int cap = out->nent, n = 0;
	bool tsc_deadline;
	struct topo t;
	int r;

	if (!cc->ncpus || cpu >= cc->ncpus || !l0 || !l1 || sup == out)
		return -EINVAL;
	topo_of(cc, cpu, &t);
	if (t.smt_bits + t.core_bits > 16 || t.socket_id >> 16)
		return -EINVAL;
	tsc_deadline = cc->tsc_deadline || (l1->ecx & CPUID_1_ECX_TSC_DEADLINE);
	r = copy_fixed(sup, cc, &t, out, &n, cap, tsc_deadline);
	if (r)
		return r;
	for (uint32_t fn = 0xb; fn <= 0x1f; fn += 0x1f - 0xb) {
		if (fn == 0x1f && l0->eax < 0x1f)
			break;
		for (uint32_t idx = 0; idx < 3; idx++) {
			struct kvm_cpuid_entry2 e;

			topo_subleaf(&e, fn, idx, &t);
			if (add_entry(out, &n, cap, &e))
				return -ENOSPC;
		}
	}
	out->nent = n;
	return 0;
}

int cpuid_set_vcpu(int vcpu_fd, const struct kvm_cpuid2 *sup, const struct cpuid_config *cc,
		   unsigned int cpu, struct x86_caps *caps, char *err, size_t errlen)
{
	struct kvm_cpuid2 *c = cpuid_alloc(sup->nent + CPUID_EXTRA_ENTRIES);
	char tmp[160];
	int r;

	if (!err || !errlen) {
		err = tmp;
		errlen = sizeof(tmp);
	}
	if (!c) {
		snprintf(err, errlen, "vcpu%u: CPUID table: %s", cpu, strerror(ENOMEM));
		return -ENOMEM;
	}
	r = cpuid_build(sup, cc, cpu, c);
	if (r) {
		snprintf(err, errlen, "vcpu%u: building CPUID: %s", cpu, strerror(-r));
	} else if (ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0) {
		r = -errno;
		snprintf(err, errlen, "vcpu%u: KVM_SET_CPUID2: %s", cpu, strerror(-r));
	} else if (caps) {
		x86_caps_from_cpuid(caps, c);
	}
	free(c);
	return r;
}
