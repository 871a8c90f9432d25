/* Unit tests for the LZ4 legacy-frame decoder: literals, overlapping matches, several
 * blocks, the kernel's trailing size, and refusal of corrupt streams without overrun. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/lz4.h"

/* magic, block of 8 bytes: "abc" then a 9-byte match at offset 3 (overlapping), then "x" */
static const uint8_t stream[] = {
	0x02, 0x21, 0x4c, 0x18,
	8, 0, 0, 0,
	0x35, 'a', 'b', 'c', 3, 0, 0x10, 'x',
	/* second block: literal "yz" */
	3, 0, 0, 0,
	0x20, 'y', 'z',
	/* the kernel's appended size */
	15, 0, 0, 0,
};

static void test_decode(void **state)
{
	uint8_t out[64];
	ssize_t n;

	(void)state;
	memset(out, 0, sizeof(out));
	n = lz4_legacy_decompress(stream, sizeof(stream), out, sizeof(out));
	assert_int_equal(n, 15);
	assert_memory_equal(out, "abcabcabcabcxyz", 15);
}

static void test_refusals(void **state)
{
	uint8_t out[64], bad[sizeof(stream)];

	(void)state;
	/* Output too small: refused, nothing written past the end. */
	memset(out, 0xee, sizeof(out));
	assert_int_equal(lz4_legacy_decompress(stream, sizeof(stream), out, 10), -ENOSPC);
	assert_int_equal(out[10], 0xee);
	/* Not the legacy magic. */
	memcpy(bad, stream, sizeof(bad));
	bad[0] = 0x04;
	assert_int_equal(lz4_legacy_decompress(bad, sizeof(bad), out, sizeof(out)), -EINVAL);
	/* Match offset 0 and an offset before the start of the output. */
	memcpy(bad, stream, sizeof(bad));
	bad[12] = 0;
	assert_int_equal(lz4_legacy_decompress(bad, sizeof(bad), out, sizeof(out)), -EINVAL);
	bad[12] = 4;
	assert_int_equal(lz4_legacy_decompress(bad, sizeof(bad), out, sizeof(out)), -EINVAL);
	/* Literal length running past the block. */
	memcpy(bad, stream, sizeof(bad));
	bad[8] = 0xf5;
	bad[9] = 200;
	assert_int_equal(lz4_legacy_decompress(bad, sizeof(bad), out, sizeof(out)), -EINVAL);
	/* Too short to hold the magic. */
	assert_int_equal(lz4_legacy_decompress(stream, 3, out, sizeof(out)), -EINVAL);
}

/* lz4_legacy_next: the same stream block by block (each into the buffer's start), then 0 at
 * the trailer; a block whose match reaches into the previous block is refused there, while
 * the whole-stream decoder takes it. */
static void test_next(void **state)
{
	static const uint8_t cross[] = {
		0x02, 0x21, 0x4c, 0x18,
		4, 0, 0, 0, 0x30, 'a', 'b', 'c',
		3, 0, 0, 0, 0x01, 3, 0,          /* a 5-byte match at offset 3: the first block */
	};
	uint8_t out[64];
	size_t pos = 0;

	(void)state;
	assert_int_equal(lz4_legacy_next(stream, sizeof(stream), &pos, out, sizeof(out)), 13);
	assert_memory_equal(out, "abcabcabcabcx", 13);
	assert_int_equal(lz4_legacy_next(stream, sizeof(stream), &pos, out, sizeof(out)), 2);
	assert_memory_equal(out, "yz", 2);
	assert_int_equal(lz4_legacy_next(stream, sizeof(stream), &pos, out, sizeof(out)), 0);
	assert_int_equal(lz4_legacy_next(stream, sizeof(stream), &pos, out, sizeof(out)), 0);
	pos = 0;
	assert_int_equal(lz4_legacy_next(stream, sizeof(stream), &pos, out, 10), -ENOSPC);
	pos = 0;
	assert_int_equal(lz4_legacy_next(cross, sizeof(cross), &pos, out, sizeof(out)), 3);
	assert_int_equal(lz4_legacy_next(cross, sizeof(cross), &pos, out, sizeof(out)), -EINVAL);
	assert_int_equal(lz4_legacy_decompress(cross, sizeof(cross), out, sizeof(out)), 8);
	assert_memory_equal(out, "abcabcab", 8);
}

/* Matches with short offsets that run to the very end of the output buffer (a kernel's
 * blocks end in long runs of zeros): the fast copies must neither write past the buffer nor
 * get a byte wrong. */
static void test_runs_to_the_end(void **state)
{
	static const uint8_t run1[] = { 0x02, 0x21, 0x4c, 0x18, 5, 0, 0, 0,
					0x1f, 'a', 1, 0, 44 };              /* "a" + 63 x "a" */
	static const uint8_t run3[] = { 0x02, 0x21, 0x4c, 0x18, 7, 0, 0, 0,
					0x3f, 'a', 'b', 'c', 3, 0, 42 };    /* "abc" + 61 more */
	uint8_t out[80];
	size_t pos = 0;

	(void)state;
	memset(out, 0xee, sizeof(out));
	assert_int_equal(lz4_legacy_decompress(run1, sizeof(run1), out, 64), 64);
	for (int i = 0; i < 64; i++)
		assert_int_equal(out[i], 'a');
	assert_int_equal(out[64], 0xee);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(lz4_legacy_next(run3, sizeof(run3), &pos, out, 64), 64);
	for (int i = 0; i < 64; i++)
		assert_int_equal(out[i], "abc"[i % 3]);
	assert_int_equal(out[64], 0xee);
	assert_int_equal(lz4_legacy_decompress(run3, sizeof(run3), out, 63), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_runs_to_the_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
