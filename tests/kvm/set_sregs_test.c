/* set_sregs_test: vireo's version of the kernel selftest of the same name (seed S4).
 * On a fresh VM and vCPU, before KVM_SET_CPUID2 and again after it:
 *   - every CR4 bit this KVM supports (derived from KVM_GET_SUPPORTED_CPUID) passes
 *     sregs_validate(), is set by sregs_set() and reads back;
 *   - all supported bits at once, too;
 *   - every other CR4 bit, CR0 bits 63:32, CR0.NW without CD and CR0.PG without PE are
 *     refused by sregs_validate() (with a message naming the bit) AND by KVM_SET_SREGS,
 *     which must leave the registers unchanged;
 *   - EFER bits KVM does not support are refused by sregs_validate().
 * Finally the state set before KVM_SET_CPUID2 survives it. Prints PASS:/FAIL: lines; exit
 * 0, 1 on failure, 77 without /dev/kvm. */
#include "arch/x86/cpuid.h"
#include "arch/x86/sregs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int failures;

static void check(bool ok, const char *phase, const char *fmt, const char *what)
{
	printf("%s: %s: ", ok ? "PASS" : "FAIL", phase);
	printf(fmt, what);
	printf("\n");
	failures += !ok;
}

/* A long-mode base state, so that every CR4 bit (PCIDE too) is legal in it. */
static void long_mode(struct kvm_sregs *s, const struct x86_caps *caps)
{
	s->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	s->cr3 = 0;
	s->cr4 = X86_CR4_PAE;
	s->efer = (X86_EFER_LME | X86_EFER_LMA) & caps->efer_allowed;
	s->cs.l = 1;
	s->cs.db = 0;
}

static bool same_regs(const struct kvm_sregs *a, const struct kvm_sregs *b)
{
	return a->cr0 == b->cr0 && a->cr3 == b->cr3 && a->cr4 == b->cr4 && a->efer == b->efer &&
	       a->apic_base == b->apic_base;
}

/* What KVM does with bad state: refuse it and leave the vCPU at orig (1), accept it (0; the
 * reference state is put back), or refuse it but change registers (-1). */
static int kvm_verdict(int fd, const struct kvm_sregs *orig, const struct kvm_sregs *bad)
{
	struct kvm_sregs now;

	if (ioctl(fd, KVM_SET_SREGS, bad) == 0) {
		if (ioctl(fd, KVM_SET_SREGS, orig) < 0)
			printf("FAIL: cannot restore the reference state\n");
		return 0;
	}
	return ioctl(fd, KVM_GET_SREGS, &now) == 0 && same_regs(&now, orig) ? 1 : -1;
}

static bool kvm_refuses(int fd, const struct kvm_sregs *orig, const struct kvm_sregs *bad)
{
	return kvm_verdict(fd, orig, bad) == 1;
}

static void cr4_supported(int fd, const struct kvm_sregs *base, const struct x86_caps *caps,
			  const char *phase)
{
	char err[160], what[200];
	struct kvm_sregs s;

	for (unsigned int b = 0; b < 64; b++) {
		if (!(caps->cr4_allowed & (1ULL << b)))
			continue;
		s = *base;
		s.cr4 |= 1ULL << b;
		int r = sregs_set(fd, &s, caps, err, sizeof(err));

		snprintf(what, sizeof(what), "CR4.%s (bit %u) set and read back%s%s",
			 x86_cr4_bit_name(b) ? x86_cr4_bit_name(b) : "?", b, r ? ": " : "",
			 r ? err : "");
		check(r == 0, phase, "%s", what);
	}
	s = *base;
	s.cr4 |= caps->cr4_allowed;
	int r = sregs_set(fd, &s, caps, err, sizeof(err));

	snprintf(what, sizeof(what), "all supported CR4 bits at once (0x%llx)%s%s",
		 (unsigned long long)s.cr4, r ? ": " : "", r ? err : "");
	check(r == 0, phase, "%s", what);
}

/* Every CR4 bit outside caps: refused by sregs_validate. KVM should refuse it too (the
 * seed's assertion); a KVM that accepts a bit its own CPUID does not list is reported on
 * the line (vireo's check is then the only one), a KVM that refuses but changes state
 * fails. */
static void cr4_unsupported(int fd, const struct kvm_sregs *orig, const struct x86_caps *caps,
			    const char *phase)
{
	char err[160], what[256];
	unsigned int nres = 0, nres_ok = 0;

	for (unsigned int b = 0; b < 64; b++) {
		struct kvm_sregs s = *orig;
		bool v;
		int k;

		if (caps->cr4_allowed & (1ULL << b))
			continue;
		s.cr4 |= 1ULL << b;
		v = sregs_validate(&s, caps, err, sizeof(err)) == -EINVAL && strstr(err, "CR4");
		k = kvm_verdict(fd, orig, &s);
		if (x86_cr4_bit_name(b)) {
			snprintf(what, sizeof(what), "%s: refused by sregs_validate %s; KVM %s",
				 err, v ? "yes" : "NO",
				 k == 1 ? "refuses it too" : k == 0 ?
				 (access("/sys/module/kvm_pvm", F_OK) == 0 ?
				  "alone would accept it (kvm_pvm allows the host's CR4 bits, "
				  "whatever its CPUID says)" :
				  "alone would accept it (laxer than its CPUID)") :
				 "refuses it but CHANGED the registers");
			check(v && k >= 0, phase, "%s", what);
		} else {
			nres++;
			nres_ok += v && k == 1;
		}
	}
	snprintf(what, sizeof(what), "%u/%u reserved CR4 bits refused by sregs_validate and KVM",
		 nres_ok, nres);
	check(nres_ok == nres, phase, "%s", what);
}

static void cr0_invalid(int fd, const struct kvm_sregs *orig, const struct x86_caps *caps,
			const char *phase)
{
	char err[160], what[256];
	unsigned int ok = 0;
	struct kvm_sregs s;

	for (unsigned int b = 32; b < 64; b++) {
		s = *orig;
		s.cr0 |= 1ULL << b;
		ok += sregs_validate(&s, caps, err, sizeof(err)) == -EINVAL &&
		      kvm_refuses(fd, orig, &s);
	}
	snprintf(what, sizeof(what), "%u/32 CR0 bits 63:32 refused by sregs_validate and KVM", ok);
	check(ok == 32, phase, "%s", what);

	s = *orig;
	s.cr0 = X86_CR0_PE | X86_CR0_NW;
	s.cr4 &= ~X86_CR4_PCIDE;
	s.efer = 0;
	s.cs.l = 0;
	ok = sregs_validate(&s, caps, err, sizeof(err)) == -EINVAL && kvm_refuses(fd, orig, &s);
	snprintf(what, sizeof(what), "%s: refused by both", err);
	check(ok, phase, "%s", what);
	s.cr0 = X86_CR0_PG;
	ok = sregs_validate(&s, caps, err, sizeof(err)) == -EINVAL && kvm_refuses(fd, orig, &s);
	snprintf(what, sizeof(what), "%s: refused by both", err);
	check(ok, phase, "%s", what);
}

/* KVM_SET_SREGS does not check EFER's reserved bits (kvm_is_valid_sregs has no EFER rule),
 * so vireo's check is the one that matters: the line says how many KVM alone takes. */
static void efer_unsupported(int fd, const struct kvm_sregs *orig, const struct x86_caps *caps,
			     const char *phase)
{
	char err[160], what[256];
	unsigned int n = 0, ok = 0, kvm_takes = 0;

	for (unsigned int b = 0; b < 64; b++) {
		struct kvm_sregs s = *orig;

		if (caps->efer_allowed & (1ULL << b))
			continue;
		s.efer |= 1ULL << b;
		n++;
		ok += sregs_validate(&s, caps, err, sizeof(err)) == -EINVAL && strstr(err, "EFER");
		kvm_takes += kvm_verdict(fd, orig, &s) == 0;
	}
	snprintf(what, sizeof(what), "%u/%u unsupported EFER bits refused by sregs_validate "
		 "(allowed: 0x%llx; KVM_SET_SREGS alone accepts %u of them)", ok, n,
		 (unsigned long long)caps->efer_allowed, kvm_takes);
	check(ok == n, phase, "%s", what);
}

static void run_phase(int fd, const struct x86_caps *caps, const char *phase)
{
	struct kvm_sregs base, orig;
	char err[160];

	if (ioctl(fd, KVM_GET_SREGS, &base) < 0) {
		check(false, phase, "%s", "KVM_GET_SREGS");
		return;
	}
	long_mode(&base, caps);
	cr4_supported(fd, &base, caps, phase);
	/* The reference state for the refusals: long mode with every supported bit. */
	orig = base;
	orig.cr4 |= caps->cr4_allowed;
	if (sregs_set(fd, &orig, caps, err, sizeof(err))) {
		check(false, phase, "%s", err);
		return;
	}
	cr4_unsupported(fd, &orig, caps, phase);
	cr0_invalid(fd, &orig, caps, phase);
	efer_unsupported(fd, &orig, caps, phase);
}

static int new_vcpu(int kvm, int *vm)
{
	*vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (*vm < 0)
		return -1;
	return ioctl(*vm, KVM_CREATE_VCPU, 0);
}

int main(void)
{
	struct cpuid_config cc = { .ncpus = 1 };
	struct kvm_cpuid2 *sup, *guest;
	struct x86_caps caps;
	struct kvm_sregs s, after;
	int kvm, vm, vcpu, vm2, vcpu2;
	char err[160];

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("no /dev/kvm\n");
		return 77;
	}
	sup = cpuid_get_supported(kvm);
	guest = sup ? cpuid_alloc(sup->nent + CPUID_EXTRA_ENTRIES) : NULL;
	if (!guest || cpuid_build(sup, &cc, 0, guest)) {
		printf("FAIL: KVM_GET_SUPPORTED_CPUID / cpuid_build\n");
		return 1;
	}
	x86_caps_from_cpuid(&caps, guest);
	printf("CR4 bits supported: 0x%llx, EFER bits: 0x%llx, MAXPHYADDR %u\n",
	       (unsigned long long)caps.cr4_allowed, (unsigned long long)caps.efer_allowed,
	       caps.phys_bits);

	vcpu = new_vcpu(kvm, &vm);
	if (vcpu < 0) {
		printf("FAIL: KVM_CREATE_VM/VCPU: %s\n", strerror(errno));
		return 1;
	}
	run_phase(vcpu, &caps, "before SET_CPUID2");
	{
		struct x86_caps caps2;
		int r = cpuid_set_vcpu(vcpu, sup, &cc, 0, &caps2, err, sizeof(err));

		check(r == 0 && !memcmp(&caps, &caps2, sizeof(caps)), "after SET_CPUID2", "%s",
		      r ? err : "cpuid_set_vcpu: KVM_SET_CPUID2 accepts vireo's vCPU table");
	}
	run_phase(vcpu, &caps, "after SET_CPUID2");

	/* Order independence: state set on a fresh vCPU before KVM_SET_CPUID2 stays. */
	vcpu2 = new_vcpu(kvm, &vm2);
	if (vcpu2 < 0 || ioctl(vcpu2, KVM_GET_SREGS, &s) < 0) {
		printf("FAIL: second vCPU\n");
		return 1;
	}
	long_mode(&s, &caps);
	s.cr4 |= caps.cr4_allowed;
	check(sregs_set(vcpu2, &s, &caps, err, sizeof(err)) == 0 &&
	      ioctl(vcpu2, KVM_SET_CPUID2, guest) == 0 &&
	      ioctl(vcpu2, KVM_GET_SREGS, &after) == 0 && same_regs(&s, &after),
	      "order", "%s", "all supported CR4 bits set before KVM_SET_CPUID2 survive it");
	close(vcpu2);
	close(vm2);
	close(vcpu);
	close(vm);
	close(kvm);
	free(sup);
	free(guest);
	return failures ? 1 : 0;
}
