/* Special-register validation and setting (see sregs.h). The allowed-bit rules mirror the
 * kernel's __cr4_reserved_bits() and efer_reserved_bits, the consistency rules
 * kvm_is_valid_sregs(), kvm_is_valid_cr0() and kvm_apic_set_base(), plus the EFER checks
 * KVM_SET_SREGS itself skips. */
#include "arch/x86/sregs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/cpuid.h"

#define X86_CR4_FRED		(1ULL << 32)

/* Always allowed: KVM accepts these without any CPUID feature. */
#define CR4_BASE_BITS (X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE | \
		       X86_CR4_PAE | X86_CR4_MCE | X86_CR4_PGE | X86_CR4_PCE | X86_CR4_OSFXSR | \
		       X86_CR4_OSXMMEXCPT)
#define CR0_DEFINED (X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS | X86_CR0_ET | \
		     X86_CR0_NE | X86_CR0_WP | X86_CR0_AM | X86_CR0_NW | X86_CR0_CD | X86_CR0_PG)

struct feat_bit {
	uint32_t fn, idx;
	char reg;		/* 'a', 'b', 'c', 'd' */
	unsigned int bit;
	uint64_t allows;	/* the CR4 or EFER bit this feature allows */
};

static const struct feat_bit cr4_feats[] = {
	{ 1, 0, 'c', 26, X86_CR4_OSXSAVE },	/* XSAVE */
	{ 1, 0, 'c', 5, X86_CR4_VMXE },		/* VMX */
	{ 1, 0, 'c', 17, X86_CR4_PCIDE },	/* PCID */
	{ 7, 0, 'b', 0, X86_CR4_FSGSBASE },
	{ 7, 0, 'b', 7, X86_CR4_SMEP },
	{ 7, 0, 'b', 20, X86_CR4_SMAP },
	{ 7, 0, 'c', 2, X86_CR4_UMIP },
	{ 7, 0, 'c', 3, X86_CR4_PKE },		/* PKU */
	{ 7, 0, 'c', 16, X86_CR4_LA57 },
	{ 7, 0, 'c', 7, X86_CR4_CET },		/* CET_SS */
	{ 7, 0, 'd', 20, X86_CR4_CET },		/* CET_IBT */
	{ 7, 1, 'a', 26, X86_CR4_LAM_SUP },	/* LAM */
	{ 7, 1, 'a', 17, X86_CR4_FRED },
};

static const struct feat_bit efer_feats[] = {
	{ 0x80000001, 0, 'd', 11, X86_EFER_SCE },	/* SYSCALL */
	{ 0x80000001, 0, 'd', 29, X86_EFER_LME | X86_EFER_LMA },	/* LM */
	{ 0x80000001, 0, 'd', 20, X86_EFER_NXE },	/* NX */
	{ 0x80000001, 0, 'c', 2, X86_EFER_SVME },	/* SVM */
	{ 0x80000001, 0, 'd', 25, X86_EFER_FFXSR },
	{ 0x80000001, 0, 'c', 17, X86_EFER_TCE },
	{ 0x80000021, 0, 'a', 8, X86_EFER_AUTOIBRS },
};

static const char *const cr4_names[64] = {
	[0] = "VME", [1] = "PVI", [2] = "TSD", [3] = "DE", [4] = "PSE", [5] = "PAE",
	[6] = "MCE", [7] = "PGE", [8] = "PCE", [9] = "OSFXSR", [10] = "OSXMMEXCPT",
	[11] = "UMIP", [12] = "LA57", [13] = "VMXE", [14] = "SMXE", [16] = "FSGSBASE",
	[17] = "PCIDE", [18] = "OSXSAVE", [20] = "SMEP", [21] = "SMAP", [22] = "PKE",
	[23] = "CET", [24] = "PKS", [25] = "UINTR", [28] = "LAM_SUP", [32] = "FRED",
};

static const char *const efer_names[64] = {
	[0] = "SCE", [8] = "LME", [10] = "LMA", [11] = "NXE", [12] = "SVME", [13] = "LMSLE",
	[14] = "FFXSR", [15] = "TCE", [21] = "AUTOIBRS",
};

static const char *const cr0_names[32] = {
	[0] = "PE", [1] = "MP", [2] = "EM", [3] = "TS", [4] = "ET", [5] = "NE", [16] = "WP",
	[18] = "AM", [29] = "NW", [30] = "CD", [31] = "PG",
};

const char *x86_cr4_bit_name(unsigned int b)
{
	return b < 64 ? cr4_names[b] : NULL;
}

static bool has_feat(const struct kvm_cpuid2 *c, const struct feat_bit *f)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(c, f->fn, f->idx);
	uint32_t v;

	if (!e)
		return false;
	v = f->reg == 'a' ? e->eax : f->reg == 'b' ? e->ebx : f->reg == 'c' ? e->ecx : e->edx;
	return (v >> f->bit) & 1;
}

void x86_caps_from_cpuid(struct x86_caps *caps, const struct kvm_cpuid2 *c)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(c, 0x80000008, 0);
	const struct kvm_cpuid_entry2 *l1 = cpuid_find(c, 1, 0);

	memset(caps, 0, sizeof(*caps));
	caps->cr4_allowed = CR4_BASE_BITS;
	for (size_t i = 0; i < sizeof(cr4_feats) / sizeof(cr4_feats[0]); i++)
		if (has_feat(c, &cr4_feats[i]))
			caps->cr4_allowed |= cr4_feats[i].allows;
	for (size_t i = 0; i < sizeof(efer_feats) / sizeof(efer_feats[0]); i++)
		if (has_feat(c, &efer_feats[i]))
			caps->efer_allowed |= efer_feats[i].allows;
	caps->phys_bits = e && (e->eax & 0xff) ? e->eax & 0xff : 36;
	caps->x2apic = l1 && (l1->ecx & (1u << 21));
}

static int fail(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static unsigned int lowest_bit(uint64_t v)
{
	return (unsigned int)__builtin_ctzll(v);
}

/* "REG.NAME (bit N) not supported by this KVM" or "REG bit N reserved". */
static int bad_bit(char *err, size_t len, const char *reg, const char *const *names,
		   unsigned int nnames, uint64_t bits)
{
	unsigned int b = lowest_bit(bits);
	const char *n = b < nnames ? names[b] : NULL;

	if (n)
		return fail(err, len, "%s.%s (bit %u) not supported by this KVM", reg, n, b);
	return fail(err, len, "%s bit %u is reserved", reg, b);
}

static int check_cr0(uint64_t cr0, char *err, size_t len)
{
	if (cr0 >> 32)
		return fail(err, len, "CR0 bit %u is reserved (CR0 is 32 bits)",
			    lowest_bit(cr0 >> 32) + 32);
	if (cr0 & ~CR0_DEFINED)
		return bad_bit(err, len, "CR0", cr0_names, 32, cr0 & ~CR0_DEFINED);
	if ((cr0 & X86_CR0_NW) && !(cr0 & X86_CR0_CD))
		return fail(err, len, "CR0.NW (bit 29) set without CR0.CD (bit 30)");
	if ((cr0 & X86_CR0_PG) && !(cr0 & X86_CR0_PE))
		return fail(err, len, "CR0.PG (bit 31) set without CR0.PE (bit 0)");
	return 0;
}

static int check_mode(const struct kvm_sregs *s, const struct x86_caps *caps, char *err,
		      size_t len)
{
	bool lme_pg = (s->efer & X86_EFER_LME) && (s->cr0 & X86_CR0_PG);

	if (lme_pg) {
		if (!(s->cr4 & X86_CR4_PAE))
			return fail(err, len, "CR4.PAE (bit 5) clear in long mode (EFER.LME and CR0.PG set)");
		if (!(s->efer & X86_EFER_LMA))
			return fail(err, len, "EFER.LMA (bit 10) clear with EFER.LME and CR0.PG set");
		if (s->cs.l && s->cs.db)
			return fail(err, len, "CS.L and CS.D both set (reserved in long mode)");
	} else {
		if (s->efer & X86_EFER_LMA)
			return fail(err, len, "EFER.LMA (bit 10) set without EFER.LME and CR0.PG");
		if (s->cs.l)
			return fail(err, len, "CS.L set outside long mode");
		if (s->cr4 & X86_CR4_PCIDE)
			return fail(err, len, "CR4.PCIDE (bit 17) set outside long mode");
	}
	/* CR3 holds a physical address (bits 63 and 62:61 are PCID no-flush / LAM flags). */
	if (lme_pg && caps->phys_bits < 61 &&
	    ((s->cr3 & ~(7ULL << 61)) >> caps->phys_bits))
		return fail(err, len, "CR3 0x%llx beyond MAXPHYADDR (%u bits)",
			    (unsigned long long)s->cr3, caps->phys_bits);
	return 0;
}

static int check_apic_base(uint64_t b, const struct x86_caps *caps, char *err, size_t len)
{
	uint64_t rsvd = 0x2ffULL | (caps->phys_bits < 64 ? ~0ULL << caps->phys_bits : 0);

	if (b & rsvd)
		return fail(err, len, "APIC base 0x%llx: bit %u is reserved",
			    (unsigned long long)b, lowest_bit(b & rsvd));
	if ((b & X86_APIC_BASE_EXTD) && !caps->x2apic)
		return fail(err, len, "APIC base EXTD (bit 10): x2APIC not in the vCPU's CPUID");
	if ((b & X86_APIC_BASE_EXTD) && !(b & X86_APIC_BASE_EN))
		return fail(err, len, "APIC base EXTD (bit 10) set without EN (bit 11)");
	return 0;
}

int sregs_validate(const struct kvm_sregs *s, const struct x86_caps *caps, char *err,
		   size_t errlen)
{
	int r;

	if (err && errlen)
		err[0] = 0;
	r = check_cr0(s->cr0, err, errlen);
	if (r)
		return r;
	if (s->cr4 & ~caps->cr4_allowed)
		return bad_bit(err, errlen, "CR4", cr4_names, 64, s->cr4 & ~caps->cr4_allowed);
	if (s->efer & ~caps->efer_allowed)
		return bad_bit(err, errlen, "EFER", efer_names, 64, s->efer & ~caps->efer_allowed);
	r = check_mode(s, caps, err, errlen);
	if (r)
		return r;
	return check_apic_base(s->apic_base, caps, err, errlen);
}

static int readback(int fd, const struct kvm_sregs *s, char *err, size_t len)
{
	struct kvm_sregs g;

	if (ioctl(fd, KVM_GET_SREGS, &g) < 0) {
		int e = errno;

		snprintf(err, len, "KVM_GET_SREGS: %s", strerror(e));
		return -e;
	}
#define SREGS_CHECK(field, name)						\
	if (g.field != s->field) {						\
		snprintf(err, len, "%s reads back 0x%llx after KVM_SET_SREGS of 0x%llx", \
			 name, (unsigned long long)g.field, (unsigned long long)s->field); \
		return -EIO;							\
	}
	SREGS_CHECK(cr0, "CR0");
	SREGS_CHECK(cr3, "CR3");
	SREGS_CHECK(cr4, "CR4");
	SREGS_CHECK(efer, "EFER");
	SREGS_CHECK(apic_base, "APIC base");
#undef SREGS_CHECK
	return 0;
}

int sregs_set(int vcpu_fd, const struct kvm_sregs *s, const struct x86_caps *caps, char *err,
	      size_t errlen)
{
	char tmp[160];
	int r;

	if (!err || !errlen) {
		err = tmp;
		errlen = sizeof(tmp);
	}
	r = sregs_validate(s, caps, err, errlen);
	if (r)
		return r;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, s) < 0) {
		int e = errno;

		snprintf(err, errlen, "KVM_SET_SREGS refused state that passed validation: %s "
			 "(CR0 0x%llx CR4 0x%llx EFER 0x%llx)", strerror(e),
			 (unsigned long long)s->cr0, (unsigned long long)s->cr4,
			 (unsigned long long)s->efer);
		return -e;
	}
	return readback(vcpu_fd, s, err, errlen);
}
