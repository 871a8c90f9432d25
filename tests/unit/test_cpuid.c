/* Unit tests for per-vCPU CPUID tables, built from a KVM_GET_SUPPORTED_CPUID recorded on this
 * project's KVM host (tests/data/kvm_supported_cpuid_epyc.h) and from a small Intel-style
 * table written from the SDM (leaf 4, PMU leaf 0xA, leaf 0x1F, no TSC-deadline). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/cpuid.h"
#include "../data/kvm_supported_cpuid_epyc.h"

#define N_EPYC (sizeof(kvm_supported_cpuid_epyc) / sizeof(kvm_supported_cpuid_epyc[0]))

/* Synthetic Intel-like supported table: 0x1F listed, a PMU, leaf 4 caches, no
 * TSC-deadline bit (as older KVMs reported it only through KVM_CAP_TSC_DEADLINE_TIMER). */
static const struct kvm_cpuid_entry2 intel_like[] = {
	{ .function = 0, .eax = 0x1f, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69 },
	{ .function = 1, .eax = 0x000906ea, .ebx = 0x00000800, .ecx = 0xf6fa3223, .edx = 0x0f8bfbff },
	{ .function = 4, .index = 0, .flags = 1, .eax = 0x00000121, .ebx = 0x01c0003f, .ecx = 0x3f },
	{ .function = 4, .index = 1, .flags = 1, .eax = 0x00000122, .ebx = 0x01c0003f, .ecx = 0x3f },
	{ .function = 4, .index = 2, .flags = 1, .eax = 0x00000143, .ebx = 0x03c0003f, .ecx = 0x3ff },
	{ .function = 4, .index = 3, .flags = 1, .eax = 0x00000163, .ebx = 0x03c0003f, .ecx = 0x3fff },
	{ .function = 4, .index = 4, .flags = 1 },
	{ .function = 0xa, .eax = 0x07300404, .ebx = 0, .ecx = 0, .edx = 0x00000603 },
	{ .function = 0xb, .index = 0, .flags = 1, .eax = 1, .ebx = 1, .ecx = 0x100 },
	{ .function = 0x1f, .index = 0, .flags = 1, .eax = 1, .ebx = 1, .ecx = 0x100 },
	{ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d },
	{ .function = 0x40000001, .eax = 0x01007afb },
	{ .function = 0x80000000, .eax = 0x80000008 },
	{ .function = 0x80000008, .eax = 0x3027, .ecx = 0 },
};
#define N_INTEL (sizeof(intel_like) / sizeof(intel_like[0]))

static struct kvm_cpuid2 *table_of(const struct kvm_cpuid_entry2 *e, unsigned int n)
{
	struct kvm_cpuid2 *t = cpuid_alloc(n);

	assert_non_null(t);
	memcpy(t->entries, e, n * sizeof(*e));
	return t;
}

/* Build vCPU cpu's table; the caller frees it. */
static struct kvm_cpuid2 *build(const struct kvm_cpuid2 *sup, const struct cpuid_config *cc,
				unsigned int cpu)
{
	struct kvm_cpuid2 *out = cpuid_alloc(sup->nent + CPUID_EXTRA_ENTRIES);

	assert_non_null(out);
	assert_int_equal(cpuid_build(sup, cc, cpu, out), 0);
	return out;
}

static struct kvm_cpuid_entry2 *get(const struct kvm_cpuid2 *t, uint32_t fn, uint32_t idx)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(t, fn, idx);

	assert_non_null(e);
	return e;
}

static void test_apic_ids_per_vcpu(void **state)
{
	struct kvm_cpuid2 *sup = table_of(kvm_supported_cpuid_epyc, N_EPYC);
	struct cpuid_config cc = { .ncpus = 8 };

	(void)state;
	for (unsigned int i = 0; i < 8; i++) {
		struct kvm_cpuid2 *t = build(sup, &cc, i);

		assert_int_equal(cpuid_apic_id(&cc, i), i);
		assert_int_equal(get(t, 1, 0)->ebx >> 24, i);
		assert_int_equal((get(t, 1, 0)->ebx >> 16) & 0xff, 8);	/* per package */
		assert_int_equal(get(t, 1, 0)->ebx & 0xffff, 0x0800);	/* CLFLUSH size kept */
		assert_int_equal(get(t, 0xb, 0)->edx, i);
		assert_int_equal(get(t, 0xb, 1)->edx, i);
		assert_int_equal(get(t, 0xb, 2)->edx, i);
		assert_int_equal(get(t, 0x8000001e, 0)->eax, i);
		assert_int_equal(get(t, 0x8000001e, 0)->ebx & 0xff, i); /* core id */
		assert_int_equal(get(t, 0x80000008, 0)->ecx & 0xff, 7);	/* NC = 8 - 1 */
		assert_int_equal((get(t, 0x80000008, 0)->ecx >> 12) & 0xf, 3);
		free(t);
	}
	free(sup);
}

/* 300 vCPUs in one socket: x2APIC IDs above 255 only in leaf 0xB; leaf 1 has the low byte. */
static void test_300_cpus(void **state)
{
	struct kvm_cpuid2 *sup = table_of(kvm_supported_cpuid_epyc, N_EPYC);
	struct cpuid_config cc = { .ncpus = 300 };
	struct kvm_cpuid2 *t;

	(void)state;
	t = build(sup, &cc, 299);
	assert_int_equal(get(t, 0xb, 0)->edx, 299);
	assert_int_equal(get(t, 1, 0)->ebx >> 24, 299 & 0xff);
	assert_int_equal(get(t, 0xb, 0)->eax, 0);		/* no SMT bits */
	assert_int_equal(get(t, 0xb, 0)->ebx, 1);
	assert_int_equal(get(t, 0xb, 1)->eax, 9);		/* 512 IDs per package */
	assert_int_equal(get(t, 0xb, 1)->ebx, 300);
	assert_int_equal((get(t, 0xb, 1)->ecx >> 8) & 0xff, 2); /* core level */
	assert_int_equal((get(t, 0xb, 2)->ecx >> 8) & 0xff, 0); /* invalid: end */
	assert_int_equal((get(t, 1, 0)->ebx >> 16) & 0xff, 255);
	for (unsigned int i = 0; i < 1024; i++) {
		cc.ncpus = 1024;
		assert_int_equal(cpuid_apic_id(&cc, i), i);
	}
	free(t);
	free(sup);
}

static void test_topology_smt_sockets(void **state)
{
	struct kvm_cpuid2 *sup = table_of(kvm_supported_cpuid_epyc, N_EPYC);
	/* 2 sockets x 3 cores x 2 threads: core field 2 bits wide, SMT 1 bit. */
	struct cpuid_config cc = { .ncpus = 12, .threads_per_core = 2, .cores_per_socket = 3 };
	struct kvm_cpuid2 *t;

	(void)state;
	/* cpu 7 = socket 1, core 0, thread 1 -> 1 << 3 | 0 << 1 | 1 */
	assert_int_equal(cpuid_apic_id(&cc, 7), 9);
	assert_int_equal(cpuid_apic_id(&cc, 5), 2 << 1 | 1);
	t = build(sup, &cc, 7);
	assert_int_equal(get(t, 0xb, 0)->eax, 1);
	assert_int_equal(get(t, 0xb, 0)->ebx, 2);
	assert_int_equal(get(t, 0xb, 1)->eax, 3);
	assert_int_equal(get(t, 0xb, 1)->ebx, 6);
	assert_int_equal(get(t, 0xb, 1)->edx, 9);
	assert_true(get(t, 1, 0)->edx & (1u << 28));			/* HTT */
	assert_int_equal(get(t, 0x8000001e, 0)->ebx >> 8 & 0xff, 1);	/* 2 threads/core */
	assert_int_equal(get(t, 0x8000001e, 0)->ecx & 0xff, 1);		/* socket 1 */
	/* AMD cache leaf: L1 shared by the 2 threads, L3 by the 8 IDs of the package. */
	assert_int_equal((get(t, 0x8000001d, 0)->eax >> 14) & 0xfff, 1);
	assert_int_equal((get(t, 0x8000001d, 3)->eax >> 14) & 0xfff, 7);
	free(t);
	free(sup);
}

static void test_feature_bits(void **state)
{
	struct kvm_cpuid2 *sup = table_of(kvm_supported_cpuid_epyc, N_EPYC);
	struct cpuid_config cc = { .ncpus = 1 };
	struct kvm_cpuid2 *t = build(sup, &cc, 0);
	const struct kvm_cpuid_entry2 *s7 = get(sup, 7, 0), *t7 = get(t, 7, 0);

	(void)state;
	assert_true(get(t, 1, 0)->ecx & (1u << 31));	/* hypervisor */
	assert_true(get(t, 1, 0)->ecx & (1u << 21));	/* x2APIC */
	assert_false(get(t, 1, 0)->ecx & (1u << 27));	/* OSXSAVE is dynamic */
	/* The recorded KVM lists TSC-deadline in leaf 1: kept. */
	assert_true(get(sup, 1, 0)->ecx & (1u << 24));
	assert_true(get(t, 1, 0)->ecx & (1u << 24));
	assert_true(get(t, 0, 0)->eax >= 0xb);
	/* Leaves vireo does not touch are KVM's values. */
	assert_memory_equal(&t7->eax, &s7->eax, 16);
	assert_memory_equal(&get(t, 0x80000001, 0)->eax, &get(sup, 0x80000001, 0)->eax, 16);
	/* Recorded: no leaf 0x1F in KVM's table (max basic leaf 0xD), so none added. */
	assert_null(cpuid_find(t, 0x1f, 0));
	free(t);
	free(sup);
}

static void test_pv_leaves(void **state)
{
	struct kvm_cpuid2 *sup = table_of(kvm_supported_cpuid_epyc, N_EPYC);
	struct cpuid_config cc = { .ncpus = 2 };
	struct kvm_cpuid2 *t = build(sup, &cc, 1);
	const struct kvm_cpuid_entry2 *sig = get(t, 0x40000000, 0);
	uint32_t kvm_feat = get(sup, 0x40000001, 0)->eax;
	char s[12];

	(void)state;
	memcpy(s, &sig->ebx, 4);
	memcpy(s + 4, &sig->ecx, 4);
	memcpy(s + 8, &sig->edx, 4);
	assert_memory_equal(s, "KVMKVMKVM\0\0\0", 12);
	assert_true(sig->eax >= 0x40000001);
	assert_false(kvm_feat & (1u << 15)); /* KVM does not report it: the VMM adds it */
	assert_int_equal(get(t, 0x40000001, 0)->eax, kvm_feat | (1u << 15));
	free(t);
	cc.no_msi_ext_dest_id = true;
	t = build(sup, &cc, 1);
	assert_int_equal(get(t, 0x40000001, 0)->eax, kvm_feat);
	free(t);
	free(sup);
}

static void test_intel_like(void **state)
{
	struct kvm_cpuid2 *sup = table_of(intel_like, N_INTEL);
	struct cpuid_config cc = { .ncpus = 4 };
	struct kvm_cpuid2 *t = build(sup, &cc, 3);

	(void)state;
	/* No TSC-deadline in the table and no capability: not advertised. */
	assert_false(get(t, 1, 0)->ecx & (1u << 24));
	assert_int_equal(get(t, 0xa, 0)->eax, 0);	/* no PMU for the guest */
	assert_int_equal(get(t, 0xa, 0)->edx, 0);
	/* Leaf 4: 4 cores per package (2 bits) -> EAX[31:26] = 3; L3 shared by 4. */
	assert_int_equal(get(t, 4, 0)->eax >> 26, 3);
	assert_int_equal((get(t, 4, 0)->eax >> 14) & 0xfff, 0);
	assert_int_equal((get(t, 4, 3)->eax >> 14) & 0xfff, 3);
	assert_int_equal(get(t, 4, 4)->eax, 0);		/* terminator untouched */
	/* Leaf 0x1F mirrors 0xB. */
	assert_int_equal(get(t, 0x1f, 0)->edx, 3);
	assert_int_equal(get(t, 0x1f, 1)->eax, 2);
	assert_int_equal(get(t, 0x1f, 1)->ebx, 4);
	free(t);
	cc.tsc_deadline = true;
	cc.pmu = true;
	t = build(sup, &cc, 0);
	assert_true(get(t, 1, 0)->ecx & (1u << 24));
	assert_int_equal(get(t, 0xa, 0)->eax, 0x07300404);
	free(t);
	free(sup);
}

static void test_errors(void **state)
{
	struct kvm_cpuid2 *sup = table_of(kvm_supported_cpuid_epyc, N_EPYC);
	struct kvm_cpuid2 *out = cpuid_alloc(N_EPYC);
	struct cpuid_config cc = { .ncpus = 2 };

	(void)state;
	assert_int_equal(cpuid_build(sup, &cc, 0, out), -ENOSPC); /* no room for 0xB */
	free(out);
	out = cpuid_alloc(N_EPYC + CPUID_EXTRA_ENTRIES);
	assert_int_equal(cpuid_build(sup, &cc, 2, out), -EINVAL);
	cc.ncpus = 0;
	assert_int_equal(cpuid_build(sup, &cc, 0, out), -EINVAL);
	cc.ncpus = 1;
	sup->nent = 0; /* no leaf 0 / 1 */
	assert_int_equal(cpuid_build(sup, &cc, 0, out), -EINVAL);
	sup->nent = N_EPYC;
	{
		char err[160];

		/* The KVM_SET_CPUID2 step without KVM: its error names vCPU and ioctl. */
		assert_int_equal(cpuid_set_vcpu(-1, sup, &cc, 0, NULL, err, sizeof(err)), -EBADF);
		assert_string_equal(err, "vcpu0: KVM_SET_CPUID2: Bad file descriptor");
		assert_int_equal(cpuid_set_vcpu(-1, sup, &cc, 1, NULL, err, sizeof(err)), -EINVAL);
	}
	free(out);
	free(sup);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apic_ids_per_vcpu),
		cmocka_unit_test(test_300_cpus),
		cmocka_unit_test(test_topology_smt_sockets),
		cmocka_unit_test(test_feature_bits),
		cmocka_unit_test(test_pv_leaves),
		cmocka_unit_test(test_intel_like),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
