/* Special registers (S4): check a struct kvm_sregs against what this KVM supports before
 * KVM_SET_SREGS, so that invalid state is refused with an error naming the register and
 * the bit ("CR4.LA57 (bit 12) not supported by this KVM") instead of an EINVAL from the
 * ioctl, or worse, state KVM accepts silently (KVM_SET_SREGS does not check EFER's
 * reserved bits).
 *
 * What is allowed comes from a CPUID table, as the kernel's __cr4_reserved_bits() does:
 * CR4.OSXSAVE needs XSAVE, SMEP/SMAP/FSGSBASE/PKE/LA57/UMIP/PCIDE/VMXE/LAM_SUP/CET their
 * CPUID features, SMXE is never allowed; EFER.NXE needs NX, LME/LMA long mode, SCE
 * SYSCALL, SVME SVM, FFXSR FFXSR, TCE TCE, AUTOIBRS AutoIBRS. Consistency rules: CR0 bits
 * 63:32 and its reserved bits clear, PG needs PE, NW needs CD; EFER.LMA == (LME && PG),
 * long mode needs CR4.PAE, CS.L only in long mode (and not with CS.D), CR4.PCIDE only in
 * long mode, CR3 and APIC base within MAXPHYADDR, x2APIC mode needs the xAPIC enabled.
 *
 * The ioctl order vireo uses, per vCPU: KVM_SET_CPUID2, then KVM_SET_SREGS (then REGS, MSRs,
 * LAPIC...). Why: KVM checks CR4 against the guest CPUID once it is set (and, since the
 * fix in the seed, against KVM's supported bits before), so CPUID first makes KVM's check
 * the strictest one and equal to ours. The state is valid in either order because caps are
 * built from the very CPUID table the vCPU gets (x86_caps_from_cpuid(guest table)): every
 * bit that passes sregs_validate() is also accepted by KVM before SET_CPUID2 (the guest
 * table is a subset of KVM_GET_SUPPORTED_CPUID). tests/kvm/set_sregs_test.c checks both
 * orders on the real KVM.
 *
 * Usage:
 *	struct x86_caps caps;
 *	x86_caps_from_cpuid(&caps, vcpu_cpuid_table);	(the table given to KVM_SET_CPUID2)
 *	char err[128];
 *	if (sregs_set(vcpu_fd, &sregs, &caps, err, sizeof(err)) < 0) pr_err("%s", err);
 */
#ifndef VIREO_ARCH_X86_SREGS_H
#define VIREO_ARCH_X86_SREGS_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

/* Architectural bits */
#define X86_CR0_PE	(1ULL << 0)
#define X86_CR0_MP	(1ULL << 1)
#define X86_CR0_EM	(1ULL << 2)
#define X86_CR0_TS	(1ULL << 3)
#define X86_CR0_ET	(1ULL << 4)
#define X86_CR0_NE	(1ULL << 5)
#define X86_CR0_WP	(1ULL << 16)
#define X86_CR0_AM	(1ULL << 18)
#define X86_CR0_NW	(1ULL << 29)
#define X86_CR0_CD	(1ULL << 30)
#define X86_CR0_PG	(1ULL << 31)

#define X86_CR4_VME		(1ULL << 0)
#define X86_CR4_PVI		(1ULL << 1)
#define X86_CR4_TSD		(1ULL << 2)
#define X86_CR4_DE		(1ULL << 3)
#define X86_CR4_PSE		(1ULL << 4)
#define X86_CR4_PAE		(1ULL << 5)
#define X86_CR4_MCE		(1ULL << 6)
#define X86_CR4_PGE		(1ULL << 7)
#define X86_CR4_PCE		(1ULL << 8)
#define X86_CR4_OSFXSR		(1ULL << 9)
#define X86_CR4_OSXMMEXCPT	(1ULL << 10)
#define X86_CR4_UMIP		(1ULL << 11)
#define X86_CR4_LA57		(1ULL << 12)
#define X86_CR4_VMXE		(1ULL << 13)
#define X86_CR4_SMXE		(1ULL << 14)
#define X86_CR4_FSGSBASE	(1ULL << 16)
#define X86_CR4_PCIDE		(1ULL << 17)
#define X86_CR4_OSXSAVE		(1ULL << 18)
#define X86_CR4_SMEP		(1ULL << 20)
#define X86_CR4_SMAP		(1ULL << 21)
#define X86_CR4_PKE		(1ULL << 22)
#define X86_CR4_CET		(1ULL << 23)
#define X86_CR4_LAM_SUP		(1ULL << 28)

#define X86_EFER_SCE		(1ULL << 0)
#define X86_EFER_LME		(1ULL << 8)
#define X86_EFER_LMA		(1ULL << 10)
#define X86_EFER_NXE		(1ULL << 11)
#define X86_EFER_SVME		(1ULL << 12)
#define X86_EFER_LMSLE		(1ULL << 13)
#define X86_EFER_FFXSR		(1ULL << 14)
#define X86_EFER_TCE		(1ULL << 15)
#define X86_EFER_AUTOIBRS	(1ULL << 21)

#define X86_APIC_BASE_BSP	(1ULL << 8)
#define X86_APIC_BASE_EXTD	(1ULL << 10)
#define X86_APIC_BASE_EN	(1ULL << 11)

/* What a vCPU may hold, derived from a CPUID table. */
struct x86_caps {
	uint64_t cr4_allowed;	/* CR4 bits that may be 1 */
	uint64_t efer_allowed;	/* EFER bits that may be 1 */
	unsigned int phys_bits;	/* MAXPHYADDR */
	int x2apic;		/* x2APIC mode allowed */
};

/* From a KVM_GET_SUPPORTED_CPUID table or a vCPU's table. */
void x86_caps_from_cpuid(struct x86_caps *caps, const struct kvm_cpuid2 *cpuid);

/* The name of CR4 bit b ("LA57"), or NULL for a bit without a name. */
const char *x86_cr4_bit_name(unsigned int b);

/* 0 when s is valid for caps; otherwise -EINVAL and a message in err naming the register
 * and the bit, e.g. "CR4.LA57 (bit 12) not supported by this KVM" or
 * "CR0.PG (bit 31) set without CR0.PE". */
int sregs_validate(const struct kvm_sregs *s, const struct x86_caps *caps, char *err,
		   size_t errlen);

/* Validate, KVM_SET_SREGS, then KVM_GET_SREGS and check CR0, CR3, CR4, EFER and APIC base
 * read back as written. Returns 0, -EINVAL (invalid state, nothing set), -errno of the
 * ioctl, or -EIO (KVM changed a register: err names it). */
int sregs_set(int vcpu_fd, const struct kvm_sregs *s, const struct x86_caps *caps, char *err,
	      size_t errlen);

#endif
