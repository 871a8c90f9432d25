/* Unit tests for the ModRM memory-operand decoder behind vireo's emulation fallbacks
 * (src/arch/x86/emul_fallback.c): base + displacement, SIB with scaled index, REX.B/REX.X,
 * RIP-relative, segment overrides, and refusal of register operands and cut-off bytes.
 * The bytes come from the guest, so truncation must never read past n. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <linux/kvm.h>

#include "arch/x86/vcpu_setup.h"

static struct kvm_regs regs;
static struct kvm_sregs sregs;

static int setup(void **state)
{
	(void)state;
	memset(&regs, 0, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	regs.rsp = 0x8000;
	regs.rbx = 0x100000;
	regs.rcx = 3;
	regs.r8 = 0x200000;
	regs.r9 = 5;
	regs.rip = 0xffffffff81000000ull;
	sregs.gs.base = 0xffff888000000000ull;
	return 0;
}

static void decode(const uint8_t *p, unsigned n, uint64_t want_ea, unsigned want_reg,
		   unsigned want_len)
{
	uint64_t ea = 0;
	unsigned reg = 99, len = 0;
	uint8_t op = 0;

	assert_int_equal(x86_decode_m(p, n, &regs, &sregs, &ea, &op, &reg, &len), 0);
	assert_int_equal(op, 0xae);
	assert_int_equal(ea, want_ea);
	assert_int_equal(reg, want_reg);
	assert_int_equal(len, want_len);
}

static void test_forms(void **state)
{
	(void)state;
	/* ldmxcsr 0x4(%rsp): the instruction Linux's kernel_fpu_begin runs */
	decode((const uint8_t[]){ 0x0f, 0xae, 0x54, 0x24, 0x04 }, 5, 0x8004, 2, 5);
	/* stmxcsr (%rbx,%rcx,4) */
	decode((const uint8_t[]){ 0x0f, 0xae, 0x1c, 0x8b }, 4, 0x100000 + 12, 3, 4);
	/* REX.X: (%rbx,%r9,4); REX.B: 0x8(%r8) */
	decode((const uint8_t[]){ 0x42, 0x0f, 0xae, 0x14, 0x8b }, 5, 0x100000 + 20, 2, 5);
	decode((const uint8_t[]){ 0x41, 0x0f, 0xae, 0x50, 0x08 }, 5, 0x200008, 2, 5);
	/* negative disp8 */
	decode((const uint8_t[]){ 0x0f, 0xae, 0x53, 0xf0 }, 4, 0x100000 - 16, 2, 4);
	/* RIP-relative: from the end of the instruction */
	decode((const uint8_t[]){ 0x0f, 0xae, 0x15, 0x00, 0x01, 0x00, 0x00 }, 7,
	       0xffffffff81000000ull + 7 + 0x100, 2, 7);
	/* %gs:0x10, SIB without base or index */
	decode((const uint8_t[]){ 0x65, 0x0f, 0xae, 0x1c, 0x25, 0x10, 0, 0, 0 }, 9,
	       0xffff888000000010ull, 3, 9);
}

static void test_refusals(void **state)
{
	const uint8_t regop[] = { 0x0f, 0xae, 0xe8 };            /* lfence: no memory */
	const uint8_t cut[] = { 0x0f, 0xae, 0x54, 0x24, 0x04 };
	const uint8_t notof[] = { 0x90, 0xae, 0x10 };
	uint64_t ea;
	unsigned reg, len;
	uint8_t op;

	(void)state;
	assert_int_equal(x86_decode_m(regop, 3, &regs, &sregs, &ea, &op, &reg, &len), -ENOTSUP);
	for (unsigned n = 0; n < sizeof(cut); n++)     /* every truncation */
		assert_int_equal(x86_decode_m(cut, n, &regs, &sregs, &ea, &op, &reg, &len),
				 -ENOTSUP);
	assert_int_equal(x86_decode_m(notof, 3, &regs, &sregs, &ea, &op, &reg, &len), -ENOTSUP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_forms, setup),
		cmocka_unit_test_setup(test_refusals, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
