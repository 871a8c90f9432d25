/* Unit tests for vcpu_state without KVM: MSR lookup in a saved state, and restore errors
 * that name the step. The KVM paths run in tests/kvm/vcpu_state_test.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/vcpu_state.h"

static void test_msr_lookup(void **state)
{
	struct x86_state st;
	uint64_t v = 0;

	(void)state;
	memset(&st, 0, sizeof(st));
	assert_false(x86_state_msr(&st, 0xc0000082, &v));
	st.msrs = calloc(1, sizeof(*st.msrs) + 2 * sizeof(st.msrs->entries[0]));
	assert_non_null(st.msrs);
	st.msrs->nmsrs = 2;
	st.msrs->entries[0] = (struct kvm_msr_entry){ .index = 0x174, .data = 0x10 };
	st.msrs->entries[1] = (struct kvm_msr_entry){ .index = 0xc0000082, .data = 0xabc };
	assert_true(x86_state_msr(&st, 0xc0000082, &v));
	assert_int_equal(v, 0xabc);
	assert_false(x86_state_msr(&st, 0x6e0, &v));
	free(st.msrs);
	x86_state_free(NULL);
}

static void test_restore_names_step(void **state)
{
	struct x86_state st;
	char err[200];

	(void)state;
	memset(&st, 0, sizeof(st));
	assert_int_equal(x86_state_restore(-1, &st, err, sizeof(err)), -EBADF);
	assert_string_equal(err, "KVM_GET_CPUID2: Bad file descriptor");
	assert_int_equal(x86_state_restore(-1, &st, NULL, 0), -EBADF);
}

static void test_save_needs_kvm(void **state)
{
	struct x86_state *st = NULL;

	(void)state;
	assert_true(x86_state_save(-1, -1, &st) < 0);
	assert_null(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msr_lookup),
		cmocka_unit_test(test_restore_names_step),
		cmocka_unit_test(test_save_needs_kvm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
