/* kut cpuid: what vireo's CPUID and CR4 handling promise a guest (S4, S5): the hypervisor bit,
 * the KVM signature leaf, KVM_FEATURE_MSI_EXT_DEST_ID, and every CR4 bit that CPUID declares
 * supported can be set and sticks; a reserved CR4 bit raises #GP.
 *
 * No SSE check: on a nested KVM that emulates guest kernel code (PVM, as on these machines)
 * any vector instruction at CPL 0 is an emulation failure, whatever the VMM does. */
#include "kut.h"

#define KVM_CPUID_SIGNATURE 0x40000000u
#define KVM_CPUID_FEATURES  0x40000001u
#define KVM_FEATURE_MSI_EXT_DEST_ID 15

struct cr4_bit {
	unsigned bit;
	const char *name;
	uint32_t leaf, sub;
	char reg;      /* 'b', 'c' or 'd' of that leaf; 0: always supported */
	unsigned cpuid_bit;
};

static const struct cr4_bit cr4_bits[] = {
	{ 0, "VME", 1, 0, 'd', 1 },          { 1, "PVI", 1, 0, 'd', 1 },
	{ 2, "TSD", 1, 0, 'd', 4 },          { 3, "DE", 1, 0, 'd', 2 },
	{ 4, "PSE", 1, 0, 'd', 3 },          { 6, "MCE", 1, 0, 'd', 7 },
	{ 7, "PGE", 1, 0, 'd', 13 },         { 8, "PCE", 0, 0, 0, 0 },
	{ 9, "OSFXSR", 1, 0, 'd', 24 },      { 10, "OSXMMEXCPT", 1, 0, 'd', 25 },
	{ 11, "UMIP", 7, 0, 'c', 2 },        { 13, "VMXE", 1, 0, 'c', 5 },
	{ 14, "SMXE", 1, 0, 'c', 6 },        { 16, "FSGSBASE", 7, 0, 'b', 0 },
	{ 17, "PCIDE", 1, 0, 'c', 17 },      { 18, "OSXSAVE", 1, 0, 'c', 26 },
	{ 20, "SMEP", 7, 0, 'b', 7 },        { 21, "SMAP", 7, 0, 'b', 20 },
	{ 22, "PKE", 7, 0, 'c', 3 },         { 23, "CET", 7, 0, 'c', 7 },
	{ 24, "PKS", 7, 0, 'c', 31 },
};

static bool cpuid_has(const struct cr4_bit *b)
{
	uint32_t max = cpuid(b->leaf & 0x80000000u, 0).a;
	struct cpuid r;
	uint32_t v;

	if (!b->reg)
		return true;
	if (b->leaf > max)
		return false;
	r = cpuid(b->leaf, b->sub);
	v = b->reg == 'b' ? r.b : b->reg == 'c' ? r.c : r.d;
	return v & (1u << b->cpuid_bit);
}

static void check_hypervisor_leaves(void)
{
	struct cpuid r = cpuid(1, 0), s;
	char sig[13];

	report(r.c & (1u << 31), "CPUID.1:ECX.hypervisor set");
	s = cpuid(KVM_CPUID_SIGNATURE, 0);
	memcpy(sig, &s.b, 4);
	memcpy(sig + 4, &s.c, 4);
	memcpy(sig + 8, &s.d, 4);
	sig[12] = 0;
	report(!memcmp(sig, "KVMKVMKVM\0\0\0", 12), "CPUID 0x40000000 signature '%s'", sig);
	report(s.a >= KVM_CPUID_FEATURES, "CPUID 0x40000000 max leaf 0x%x", s.a);
	r = cpuid(KVM_CPUID_FEATURES, 0);
	report(r.a & (1u << KVM_FEATURE_MSI_EXT_DEST_ID),
	       "KVM_FEATURE_MSI_EXT_DEST_ID advertised (0x40000001 EAX 0x%x)", r.a);
}

/* Sets one supported CR4 bit, checks it reads back set, restores CR4. */
static void check_cr4_bit(const struct cr4_bit *b)
{
	uint64_t orig = read_cr4(), mask = 1ull << b->bit;
	bool ok;

	if (!cpuid_has(b)) {
		report_skip("CR4.%s (bit %u) not in CPUID", b->name, b->bit);
		return;
	}
	ok = write_cr4_checked(orig | mask);
	report(ok && (read_cr4() & mask), "CR4.%s (bit %u) can be set%s", b->name, b->bit,
	       ok ? "" : " (#GP)");
	if (!(orig & mask) && ok)
		report(write_cr4_checked(orig) && !(read_cr4() & mask), "CR4.%s can be cleared",
		       b->name);
}

static void check_cr4(void)
{
	uint64_t orig = read_cr4();

	for (unsigned i = 0; i < sizeof(cr4_bits) / sizeof(cr4_bits[0]); i++)
		check_cr4_bit(&cr4_bits[i]);
	/* Bit 15 is reserved on every CPU: the write must fault and leave CR4 alone. */
	report(!write_cr4_checked(orig | (1ull << 15)) && read_cr4() == orig,
	       "CR4 reserved bit 15 refused with #GP");
	/* So is a CPUID-unsupported bit (SMXE is never offered to KVM guests). */
	if (!(cpuid(1, 0).c & (1u << 6)))
		report(!write_cr4_checked(orig | (1ull << 14)) && read_cr4() == orig,
		       "CR4.SMXE refused with #GP when CPUID lacks SMX");
}

int main(void)
{
	printf("kut cpuid: CPUID and CR4 checks\n");
	check_hypervisor_leaves();
	check_cr4();
	printf("kut cpuid: %u failures\n", kut_failures());
	return kut_failures() ? 1 : 0;
}
