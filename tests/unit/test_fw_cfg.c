/* fw_cfg through its two ports, as a guest reads it: select a key on 0x510, read bytes on
 * 0x511. Checks the standard items' values and layout, reads past the end, unknown keys, and
 * the isa-debug-exit status encoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/legacy/debug_exit.h"
#include "devices/legacy/fw_cfg.h"
#include "util/log.h"

static struct fw_cfg fc;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(fw_cfg_init(&fc), 0);
	assert_int_equal(fw_cfg_add_standard(&fc, 6, 8, 3ull << 30), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fw_cfg_destroy(&fc);
	return 0;
}

/* What a guest does: outw(key, 0x510), then n x inb(0x511). */
static void guest_select(uint16_t key)
{
	uint8_t b[2] = { (uint8_t)key, (uint8_t)(key >> 8) };

	assert_int_equal(fw_cfg_io(&fc, FW_CFG_PORT_SEL - FW_CFG_PORT_SEL, b, 2, true), 0);
}

static void guest_read(void *out, unsigned n)
{
	uint8_t *p = out;

	for (unsigned i = 0; i < n; i++)
		assert_int_equal(fw_cfg_io(&fc, FW_CFG_PORT_DATA - FW_CFG_PORT_SEL, p + i, 1, false), 0);
}

static uint64_t guest_read_le(uint16_t key, unsigned n)
{
	uint8_t b[8];
	uint64_t v = 0;

	guest_select(key);
	guest_read(b, n);
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static void test_signature_and_id(void **state)
{
	char sig[5] = { 0 };

	(void)state;
	guest_select(FW_CFG_SIGNATURE);
	guest_read(sig, 4);
	assert_string_equal(sig, "QEMU");
	assert_int_equal(guest_read_le(FW_CFG_ID, 4), 1); /* traditional interface, no DMA */
}

static void test_cpus_and_ram(void **state)
{
	(void)state;
	assert_int_equal(guest_read_le(FW_CFG_NB_CPUS, 2), 6);
	assert_int_equal(guest_read_le(FW_CFG_MAX_CPUS, 2), 8);
	assert_int_equal(guest_read_le(FW_CFG_RAM_SIZE, 8), 3ull << 30);
	assert_int_equal(guest_read_le(FW_CFG_NOGRAPHIC, 2), 1);
}

static void test_read_past_end_is_zero(void **state)
{
	uint8_t b[8];

	(void)state;
	guest_select(FW_CFG_SIGNATURE);
	guest_read(b, 8);
	assert_memory_equal(b, "QEMU\0\0\0\0", 8);
	/* selecting again restarts at offset 0 */
	guest_select(FW_CFG_SIGNATURE);
	guest_read(b, 1);
	assert_int_equal(b[0], 'Q');
}

static void test_unknown_key_reads_zero(void **state)
{
	(void)state;
	assert_int_equal(guest_read_le(0x1234, 8), 0);
	assert_int_equal(guest_read_le(0x8003, 8), 0); /* arch-local e820 table: not provided */
	/* the write-channel bit is ignored for lookup: still the CPU count */
	assert_int_equal(guest_read_le(FW_CFG_NB_CPUS | FW_CFG_WRITE_CHANNEL, 2), 6);
}

static void test_file_dir_empty(void **state)
{
	(void)state;
	assert_int_equal(guest_read_le(FW_CFG_FILE_DIR, 4), 0);
}

static void test_byte_selector_and_wide_read(void **state)
{
	uint8_t sel = FW_CFG_NB_CPUS, b[2];

	(void)state;
	assert_int_equal(fw_cfg_io(&fc, 0, &sel, 1, true), 0);
	assert_int_equal(fw_cfg_io(&fc, 1, b, 2, false), 0); /* successive bytes */
	assert_int_equal(b[0], 6);
	assert_int_equal(b[1], 0);
	/* writes to the data port change nothing */
	b[0] = 0x77;
	guest_select(FW_CFG_NB_CPUS);
	assert_int_equal(fw_cfg_io(&fc, 1, b, 1, true), 0);
	assert_int_equal(guest_read_le(FW_CFG_NB_CPUS, 2), 6);
	assert_int_equal(fw_cfg_io(&fc, 2, b, 1, false), -EINVAL);
}

static void test_add_errors(void **state)
{
	struct fw_cfg t;

	(void)state;
	assert_int_equal(fw_cfg_add_u16(&fc, FW_CFG_NB_CPUS, 1), -EEXIST);
	assert_int_equal(fw_cfg_add(&fc, 0x100, "", FW_CFG_MAX_ITEM_LEN + 1), -EINVAL);
	assert_int_equal(fw_cfg_init(&t), 0);
	for (unsigned i = 0; i < FW_CFG_MAX_ITEMS; i++)
		assert_int_equal(fw_cfg_add_u32(&t, (uint16_t)(0x100 + i), i), 0);
	assert_int_equal(fw_cfg_add_u32(&t, 0x200, 0), -ENOSPC);
	fw_cfg_destroy(&t);
	assert_int_equal(fw_cfg_init(&t), 0);
	assert_int_equal(fw_cfg_add_standard(&t, 0, 8, 1 << 20), -EINVAL);
	assert_int_equal(fw_cfg_add_standard(&t, 9, 8, 1 << 20), -EINVAL);
	fw_cfg_destroy(&t);
}

static int last_status = -1, exits;

static void record_exit(void *ctx, int status)
{
	(void)ctx;
	last_status = status;
	exits++;
}

static void test_debug_exit_status(void **state)
{
	struct debug_exit de = { .request_exit = record_exit };
	uint8_t b[4] = { 42, 0, 0, 0 };

	(void)state;
	assert_int_equal(debug_exit_status(0), 1);
	assert_int_equal(debug_exit_status(1), 3);
	assert_int_equal(debug_exit_status(127), 255);
	assert_int_equal(debug_exit_status(0x180), 1); /* only 8 bits reach the exit status */
	assert_int_equal(debug_exit_io(&de, 0, b, 1, true), 0);
	assert_int_equal(last_status, 85);
	b[0] = 0x10, b[1] = 0x01; /* outw 0x110 -> 0x221 -> 0x21 */
	assert_int_equal(debug_exit_io(&de, 0, b, 2, true), 0);
	assert_int_equal(last_status, 0x21);
	b[0] = 3;
	assert_int_equal(debug_exit_io(&de, 0, b, 4, true), 0);
	assert_int_equal(last_status, 7);
	assert_int_equal(exits, 3);
	assert_int_equal(debug_exit_io(&de, 1, b, 1, true), -EINVAL);
	assert_int_equal(debug_exit_io(&de, 0, b, 3, true), -EINVAL);
	assert_int_equal(debug_exit_io(&de, 0, b, 4, false), 0); /* reads: zero, no exit */
	assert_memory_equal(b, "\0\0\0\0", 4);
	assert_int_equal(exits, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signature_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cpus_and_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_past_end_is_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key_reads_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_dir_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_byte_selector_and_wide_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_errors, setup, teardown),
		cmocka_unit_test(test_debug_exit_status),
	};

	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
