/* Save and restore the whole KVM state of one x86 vCPU (snapshots, migration; S4), in an
 * order that is valid whatever the target vCPU went through before.
 *
 * Restore order (x86_state_restore) and why:
 *   1. KVM_SET_CPUID2   the features decide which CR4/EFER bits, MSRs and XSAVE
 *                        components are legal; skipped when the vCPU already holds the same
 *                        table (KVM refuses a different one after the first KVM_RUN)
 *   2. KVM_SET_SREGS    through sregs_set(): validated against caps from that CPUID and
 *                        read back; sets EFER (MSRs like LSTAR only matter in long mode)
 *                        and the APIC base (x2APIC mode decides the LAPIC ID format)
 *   3. KVM_SET_MSRS     everything but IA32_TSC_DEADLINE
 *   4. KVM_SET_XCRS, KVM_SET_XSAVE (or KVM_SET_FPU without XSAVE)
 *   5. KVM_SET_REGS
 *   6. KVM_SET_LAPIC    after the APIC base (2.) and needs the in-kernel irqchip
 *   7. IA32_TSC_DEADLINE  only meaningful once the LAPIC timer is in TSC-deadline mode (6.)
 *   8. KVM_SET_VCPU_EVENTS, KVM_SET_DEBUGREGS
 *   9. KVM_SET_MP_STATE last: it may make the vCPU runnable
 * A failure names the step ("KVM_SET_MSRS: MSR 0xc0000082 refused").
 *
 * Usage:
 *	struct x86_state *st;
 *	x86_state_save(kvm_fd, vcpu_fd, &st);              (vCPU stopped, not in KVM_RUN)
 *	... x86_state_restore(vcpu2_fd, st, err, sizeof(err));
 *	x86_state_free(st);
 */
#ifndef VIREO_ARCH_X86_VCPU_STATE_H
#define VIREO_ARCH_X86_VCPU_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define X86_MSR_TSC_DEADLINE 0x6e0

struct x86_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_xsave *xsave;	/* NULL without KVM_CAP_XSAVE (then fpu) */
	struct kvm_fpu fpu;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_mp_state mp;
	bool has_xcrs, has_lapic;
	struct kvm_cpuid2 *cpuid;	/* NULL when the vCPU had no CPUID set */
	struct kvm_msrs *msrs;		/* the MSRs KVM let us read */
};

/* Read everything. Returns 0 or -errno; *out is freed with x86_state_free(). */
int x86_state_save(int kvm_fd, int vcpu_fd, struct x86_state **out);
/* Write everything in the order above. Returns 0 or -errno with err naming the step. */
int x86_state_restore(int vcpu_fd, const struct x86_state *st, char *err, size_t errlen);
void x86_state_free(struct x86_state *st);

/* The value of MSR index in st, or false when it was not saved. */
bool x86_state_msr(const struct x86_state *st, uint32_t index, uint64_t *value);

#endif
