/* Unit tests for special-register validation: the capabilities derived from the recorded
 * KVM_GET_SUPPORTED_CPUID (tests/data/kvm_supported_cpuid_epyc.h) and the error messages
 * naming register and bit. No KVM needed: sregs_set() is only driven on an invalid fd. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/cpuid.h"
#include "arch/x86/sregs.h"
#include "../data/kvm_supported_cpuid_epyc.h"

#define N_EPYC (sizeof(kvm_supported_cpuid_epyc) / sizeof(kvm_supported_cpuid_epyc[0]))

static struct x86_caps caps;	/* from vireo's vCPU table for the recorded KVM */
static char err[160];

static int setup(void **state)
{
	struct kvm_cpuid2 *sup = cpuid_alloc(N_EPYC), *g = cpuid_alloc(N_EPYC + CPUID_EXTRA_ENTRIES);
	struct cpuid_config cc = { .ncpus = 1 };

	(void)state;
	if (!sup || !g)
		return -1;
	memcpy(sup->entries, kvm_supported_cpuid_epyc, sizeof(kvm_supported_cpuid_epyc));
	if (cpuid_build(sup, &cc, 0, g))
		return -1;
	x86_caps_from_cpuid(&caps, g);
	free(sup);
	free(g);
	return 0;
}

static struct kvm_sregs long_mode(void)
{
	struct kvm_sregs s;

	memset(&s, 0, sizeof(s));
	s.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	s.cr3 = 0x9000;
	s.cr4 = X86_CR4_PAE | X86_CR4_OSFXSR;
	s.efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_SCE | X86_EFER_NXE;
	s.cs.l = 1;
	s.apic_base = 0xfee00000 | X86_APIC_BASE_EN | X86_APIC_BASE_BSP;
	return s;
}

static void expect(const struct kvm_sregs *s, const char *msg)
{
	assert_int_equal(sregs_validate(s, &caps, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, msg);
}

static void test_caps_from_recorded(void **state)
{
	(void)state;
	/* The recorded KVM: base bits plus UMIP; no LA57, SMEP, SMAP, FSGSBASE, PCID, XSAVE. */
	assert_int_equal(caps.cr4_allowed, 0xfff);
	assert_int_equal(caps.efer_allowed, X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA |
			 X86_EFER_NXE | X86_EFER_FFXSR);
	assert_int_equal(caps.phys_bits, 48);
	assert_true(caps.x2apic);
}

static void test_caps_features(void **state)
{
	struct kvm_cpuid2 *c = cpuid_alloc(3);
	struct x86_caps k;

	(void)state;
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 1, .ecx = 1u << 26 | 1u << 17 | 1u << 5 };
	c->entries[1] = (struct kvm_cpuid_entry2){ .function = 7, .flags = 1,
		.ebx = 1u << 0 | 1u << 7 | 1u << 20, .ecx = 1u << 3 | 1u << 16 };
	c->entries[2] = (struct kvm_cpuid_entry2){ .function = 0x80000001, .ecx = 1u << 2 };
	x86_caps_from_cpuid(&k, c);
	assert_int_equal(k.cr4_allowed & ~0x7ffULL, X86_CR4_OSXSAVE | X86_CR4_PCIDE | X86_CR4_VMXE |
			 X86_CR4_FSGSBASE | X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE | X86_CR4_LA57);
	assert_int_equal(k.efer_allowed, X86_EFER_SVME);
	assert_int_equal(k.phys_bits, 36);	/* no 0x80000008: the architectural default */
	assert_false(k.x2apic);
	assert_false(k.cr4_allowed & X86_CR4_SMXE);	/* never, as in KVM */
	free(c);
}

static void test_valid_states(void **state)
{
	struct kvm_sregs s = long_mode();

	(void)state;
	assert_int_equal(sregs_validate(&s, &caps, err, sizeof(err)), 0);
	s.cr4 |= caps.cr4_allowed;
	assert_int_equal(sregs_validate(&s, &caps, err, sizeof(err)), 0);
	/* Reset state: real mode, CD|NW|ET, as KVM creates a vCPU. */
	memset(&s, 0, sizeof(s));
	s.cr0 = X86_CR0_CD | X86_CR0_NW | X86_CR0_ET;
	s.apic_base = 0xfee00000 | X86_APIC_BASE_EN | X86_APIC_BASE_BSP;
	assert_int_equal(sregs_validate(&s, &caps, err, sizeof(err)), 0);
	/* 32-bit protected mode, flat (multiboot entry). */
	s.cr0 = X86_CR0_PE | X86_CR0_ET;
	s.cs.db = 1;
	assert_int_equal(sregs_validate(&s, &caps, err, sizeof(err)), 0);
	/* x2APIC mode. */
	s.apic_base |= X86_APIC_BASE_EXTD;
	assert_int_equal(sregs_validate(&s, &caps, err, sizeof(err)), 0);
}

static void test_cr4_messages(void **state)
{
	struct kvm_sregs s = long_mode();

	(void)state;
	s.cr4 |= X86_CR4_LA57;
	expect(&s, "CR4.LA57 (bit 12) not supported by this KVM");
	s = long_mode();
	s.cr4 |= X86_CR4_SMEP | X86_CR4_SMAP;
	expect(&s, "CR4.SMEP (bit 20) not supported by this KVM");
	s = long_mode();
	s.cr4 |= 1ULL << 15;
	expect(&s, "CR4 bit 15 is reserved");
	s = long_mode();
	s.cr4 |= 1ULL << 63;
	expect(&s, "CR4 bit 63 is reserved");
	s = long_mode();
	s.cr4 &= ~X86_CR4_PAE;
	expect(&s, "CR4.PAE (bit 5) clear in long mode (EFER.LME and CR0.PG set)");
}

static void test_cr0_efer_mode(void **state)
{
	struct kvm_sregs s = long_mode();

	(void)state;
	s.cr0 |= 1ULL << 40;
	expect(&s, "CR0 bit 40 is reserved (CR0 is 32 bits)");
	s = long_mode();
	s.cr0 |= 1ULL << 7;
	expect(&s, "CR0 bit 7 is reserved");
	s = long_mode();
	s.cr0 |= X86_CR0_NW;
	expect(&s, "CR0.NW (bit 29) set without CR0.CD (bit 30)");
	s = long_mode();
	s.cr0 &= ~X86_CR0_PE;
	expect(&s, "CR0.PG (bit 31) set without CR0.PE (bit 0)");
	s = long_mode();
	s.efer |= X86_EFER_SVME;
	expect(&s, "EFER.SVME (bit 12) not supported by this KVM");
	s = long_mode();
	s.efer |= 1ULL << 9;
	expect(&s, "EFER bit 9 is reserved");
	s = long_mode();
	s.efer &= ~X86_EFER_LMA;
	expect(&s, "EFER.LMA (bit 10) clear with EFER.LME and CR0.PG set");
	s = long_mode();
	s.cr0 &= ~X86_CR0_PG;
	expect(&s, "EFER.LMA (bit 10) set without EFER.LME and CR0.PG");
	s.efer &= ~X86_EFER_LMA;
	expect(&s, "CS.L set outside long mode");
	s = long_mode();
	s.cs.db = 1;
	expect(&s, "CS.L and CS.D both set (reserved in long mode)");
	s = long_mode();
	s.cr3 = 1ULL << 48;
	expect(&s, "CR3 0x1000000000000 beyond MAXPHYADDR (48 bits)");
}

static void test_pcide_outside_long_mode(void **state)
{
	struct x86_caps k = caps;
	struct kvm_sregs s = long_mode();

	(void)state;
	k.cr4_allowed |= X86_CR4_PCIDE;
	s.cr4 |= X86_CR4_PCIDE;
	assert_int_equal(sregs_validate(&s, &k, err, sizeof(err)), 0);
	s.cr0 = X86_CR0_PE;
	s.efer = 0;
	s.cs.l = 0;
	assert_int_equal(sregs_validate(&s, &k, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "CR4.PCIDE (bit 17) set outside long mode");
}

static void test_apic_base(void **state)
{
	struct x86_caps k = caps;
	struct kvm_sregs s = long_mode();

	(void)state;
	s.apic_base |= 1;
	expect(&s, "APIC base 0xfee00901: bit 0 is reserved");
	s = long_mode();
	s.apic_base = 1ULL << 50 | X86_APIC_BASE_EN;
	expect(&s, "APIC base 0x4000000000800: bit 50 is reserved");
	s = long_mode();
	s.apic_base = 0xfee00000 | X86_APIC_BASE_EXTD;
	expect(&s, "APIC base EXTD (bit 10) set without EN (bit 11)");
	k.x2apic = 0;
	s.apic_base |= X86_APIC_BASE_EN;
	assert_int_equal(sregs_validate(&s, &k, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "APIC base EXTD (bit 10): x2APIC not in the vCPU's CPUID");
}

/* sregs_set() refuses invalid state before any ioctl, and reports ioctl failures. */
static void test_set_without_kvm(void **state)
{
	struct kvm_sregs s = long_mode();

	(void)state;
	s.cr4 |= X86_CR4_LA57;
	assert_int_equal(sregs_set(-1, &s, &caps, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "CR4.LA57 (bit 12) not supported by this KVM");
	s = long_mode();
	assert_int_equal(sregs_set(-1, &s, &caps, err, sizeof(err)), -EBADF);
	assert_non_null(strstr(err, "KVM_SET_SREGS"));
	assert_int_equal(sregs_set(-1, &s, &caps, NULL, 0), -EBADF);
	assert_string_equal(x86_cr4_bit_name(12), "LA57");
	assert_null(x86_cr4_bit_name(15));
	assert_null(x86_cr4_bit_name(64));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps_from_recorded),
		cmocka_unit_test(test_caps_features),
		cmocka_unit_test(test_valid_states),
		cmocka_unit_test(test_cr4_messages),
		cmocka_unit_test(test_cr0_efer_mode),
		cmocka_unit_test(test_pcide_outside_long_mode),
		cmocka_unit_test(test_apic_base),
		cmocka_unit_test(test_set_without_kvm),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
