/* Unit tests for the AML writer: integer and name encodings, EISA ids, PkgLength in its
 * 1-, 2- and 3-byte forms (decoded back), sticky errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/aml.h"

static uint8_t buf[16384];

static struct aml fresh(void)
{
	struct aml a = { .buf = buf, .cap = sizeof(buf) };

	memset(buf, 0, sizeof(buf));
	return a;
}

static void test_ints(void **state)
{
	static const struct { uint64_t v; uint8_t enc[9]; size_t n; } c[] = {
		{ 0, { 0x00 }, 1 },
		{ 1, { 0x01 }, 1 },
		{ 5, { 0x0a, 5 }, 2 },
		{ 0x3f8, { 0x0b, 0xf8, 0x03 }, 3 },
		{ 0xfec00000, { 0x0c, 0x00, 0x00, 0xc0, 0xfe }, 5 },
		{ 0x8000000000ULL, { 0x0e, 0, 0, 0, 0, 0x80, 0, 0, 0 }, 9 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct aml a = fresh();

		aml_int(&a, c[i].v);
		assert_int_equal(a.err, 0);
		assert_int_equal(a.len, c[i].n);
		assert_memory_equal(buf, c[i].enc, c[i].n);
	}
}

static void test_names(void **state)
{
	struct aml a = fresh();

	(void)state;
	aml_namestring(&a, "_S5");
	assert_memory_equal(buf, "_S5_", 4);
	a = fresh();
	aml_namestring(&a, "\\_SB");
	assert_memory_equal(buf, "\\_SB_", 5);
	a = fresh();
	aml_namestring(&a, "_SB.PCI0");
	assert_int_equal(a.len, 9);
	assert_int_equal(buf[0], 0x2e);
	assert_memory_equal(buf + 1, "_SB_PCI0", 8);
	a = fresh();
	aml_namestring(&a, "\\_SB.PCI0.ISA");
	assert_int_equal(a.len, 1 + 2 + 12);
	assert_memory_equal(buf, "\\\x2f\x03_SB_PCI0ISA_", 15);
	assert_int_equal(a.err, 0);
	a = fresh();
	aml_namestring(&a, "1ABC");	/* a NameSeg cannot start with a digit */
	assert_int_equal(a.err, -EINVAL);
	a = fresh();
	aml_namestring(&a, "ABCDE");
	assert_int_equal(a.err, -EINVAL);
	a = fresh();
	aml_namestring(&a, "com1");	/* lower case is not AML */
	assert_int_equal(a.err, -EINVAL);
}

static void test_eisaid(void **state)
{
	struct aml a = fresh();
	static const uint8_t pnp0501[] = { 0x0c, 0x41, 0xd0, 0x05, 0x01 };
	static const uint8_t pnp0a03[] = { 0x0c, 0x41, 0xd0, 0x0a, 0x03 };

	(void)state;
	aml_eisaid(&a, "PNP0501");
	assert_memory_equal(buf, pnp0501, 5);
	a = fresh();
	aml_eisaid(&a, "PNP0A03");
	assert_memory_equal(buf, pnp0a03, 5);
	a = fresh();
	aml_eisaid(&a, "PNP05");
	assert_int_equal(a.err, -EINVAL);
}

/* Decode a PkgLength at p: returns the length value, *n its byte count. */
static size_t pkglen(const uint8_t *p, size_t *n)
{
	size_t v;

	*n = (size_t)(p[0] >> 6) + 1;
	if (*n == 1)
		return p[0] & 0x3f;
	v = p[0] & 0x0f;
	for (size_t i = 1; i < *n; i++)
		v |= (size_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

/* A package of k one-byte elements: PkgLength must cover exactly what follows PackageOp. */
static void test_pkglength_forms(void **state)
{
	static const unsigned int sizes[] = { 0, 10, 60, 61, 62, 63, 200, 4000, 4093, 4094, 9000 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct aml a = fresh();
		size_t h, n, len;

		h = aml_open_buffer(&a);
		for (unsigned int k = 0; k < sizes[i]; k++)
			aml_byte(&a, 0xaa);
		aml_close(&a, h);
		assert_int_equal(a.err, 0);
		assert_int_equal(buf[0], 0x11);
		len = pkglen(buf + 1, &n);
		assert_int_equal(len, a.len - 1);		/* everything after BufferOp */
		assert_int_equal(n, len <= 63 ? 1 : len <= 0xfff ? 2 : 3);
		/* BufferSize follows and equals the data bytes. */
		if (sizes[i] == 0)
			assert_int_equal(buf[1 + n], 0x00);
		else if (sizes[i] == 1)
			assert_int_equal(buf[1 + n], 0x01);
		else if (sizes[i] <= 0xff)
			assert_int_equal(buf[2 + n], sizes[i]);
		else
			assert_int_equal(buf[2 + n] | buf[3 + n] << 8, sizes[i]);
	}
}

static void test_nested_and_enospc(void **state)
{
	struct aml a = fresh();
	size_t sc, dev, n, outer, inner;

	(void)state;
	sc = aml_open_scope(&a, "_SB");
	dev = aml_open_device(&a, "COM1");
	aml_name(&a, "_UID");
	aml_int(&a, 1);
	aml_close(&a, dev);
	aml_close(&a, sc);
	assert_int_equal(a.err, 0);
	assert_int_equal(buf[0], 0x10);
	outer = pkglen(buf + 1, &n);
	assert_int_equal(outer, a.len - 1);
	/* Device: 5B 82 PkgLength "COM1" ... after the scope's name. */
	assert_int_equal(buf[1 + n + 4], 0x5b);
	assert_int_equal(buf[1 + n + 5], 0x82);
	inner = pkglen(buf + 1 + n + 6, &n);
	assert_int_equal(inner, n + 4 + 1 + 4 + 1); /* pkglen, name, NameOp, _UID, One */

	a = (struct aml){ .buf = buf, .cap = 8 };
	aml_name(&a, "_S5");
	sc = aml_open_package(&a, 4);
	aml_int(&a, 5);
	aml_close(&a, sc);
	assert_int_equal(a.err, -ENOSPC);
	assert_true(a.len <= 8);
	aml_int(&a, 0x1234);	/* sticky: nothing more is written */
	assert_true(a.len <= 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ints),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_eisaid),
		cmocka_unit_test(test_pkglength_forms),
		cmocka_unit_test(test_nested_and_enospc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
