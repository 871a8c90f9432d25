/* Unit tests for the I/O bus: registration rules, dispatch with offsets, unclaimed reads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/bus.h"

struct rec {
	uint64_t offset;
	unsigned size;
	bool is_write;
	uint32_t last_write;
	int calls;
};

static int rec_handler(void *opaque, uint64_t offset, void *data, unsigned size, bool is_write)
{
	struct rec *r = opaque;

	r->offset = offset;
	r->size = size;
	r->is_write = is_write;
	r->calls++;
	if (is_write) {
		r->last_write = 0;
		memcpy(&r->last_write, data, size < 4 ? size : 4);
	} else {
		memset(data, 0x5a, size);
	}
	return 0;
}

static void test_register_overlap(void **state)
{
	struct io_bus bus;
	struct rec a = { 0 };

	(void)state;
	assert_int_equal(bus_init(&bus, "pio"), 0);
	assert_int_equal(bus_register(&bus, 0x3f8, 8, rec_handler, &a, "serial"), 0);
	assert_int_equal(bus_register(&bus, 0x3f8, 8, rec_handler, &a, "dup"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3f0, 9, rec_handler, &a, "left"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3ff, 1, rec_handler, &a, "right"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3f0, 8, rec_handler, &a, "adjacent"), 0);
	assert_int_equal(bus_register(&bus, 0x400, 0, rec_handler, &a, "empty"), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX, 2, rec_handler, &a, "wrap"), -EINVAL);
	assert_int_equal(bus_register(&bus, 0x500, 1, NULL, &a, "nofn"), -EINVAL);
	assert_int_equal(bus_unregister(&bus, 0x3f8), 0);
	assert_int_equal(bus_unregister(&bus, 0x3f8), -ENOENT);
	assert_int_equal(bus_register(&bus, 0x3f8, 8, rec_handler, &a, "again"), 0);
	bus_destroy(&bus);
}

static void test_dispatch(void **state)
{
	struct io_bus bus;
	struct rec a = { 0 }, b = { 0 };
	uint32_t v = 0x1234;
	uint8_t buf[8];

	(void)state;
	assert_int_equal(bus_init(&bus, "mmio"), 0);
	/* Registered out of order: the lookup must still find both. */
	assert_int_equal(bus_register(&bus, 0xd0000000, 0x1000, rec_handler, &b, "b"), 0);
	assert_int_equal(bus_register(&bus, 0xc0000000, 0x100, rec_handler, &a, "a"), 0);
	assert_int_equal(bus_access(&bus, 0xc0000010, &v, 4, true), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.offset, 0x10);
	assert_int_equal(a.size, 4);
	assert_true(a.is_write);
	assert_int_equal(a.last_write, 0x1234);
	assert_int_equal(bus_access(&bus, 0xd0000ff8, buf, 8, false), 0);
	assert_int_equal(b.offset, 0xff8);
	assert_int_equal(buf[7], 0x5a);
	assert_int_equal(b.calls, 1);
	assert_int_equal(a.calls, 1);
	bus_destroy(&bus);
}

static void test_unclaimed_and_straddle(void **state)
{
	struct io_bus bus;
	struct rec a = { 0 };
	uint8_t buf[4] = { 0 };

	(void)state;
	assert_int_equal(bus_init(&bus, "pio"), 0);
	assert_int_equal(bus_register(&bus, 0x70, 2, rec_handler, &a, "rtc"), 0);
	assert_int_equal(bus_access(&bus, 0x80, buf, 1, false), -ENOENT);
	assert_int_equal(buf[0], 0xff);
	/* Starts inside, ends outside: refused, the handler never sees it. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(bus_access(&bus, 0x71, buf, 2, false), -EINVAL);
	assert_int_equal(buf[0], 0xff);
	assert_int_equal(buf[1], 0xff);
	assert_int_equal(a.calls, 0);
	assert_int_equal(bus_access(&bus, 0x70, buf, 0, false), -EINVAL);
	assert_int_equal(bus_access(&bus, 0x6f, buf, 1, true), -ENOENT);
	assert_int_equal(a.calls, 0);
	bus_destroy(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_overlap),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_unclaimed_and_straddle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
