/* Unit tests for the legacy devices of `vireo run` through the port-I/O bus, as the guest
 * drives them: the 8250 UART's registers (LSR, scratch, DLAB, IIR/THRE acknowledge, FIFO
 * bits, loopback into the receiver and MSR), the CMOS RTC (BCD time, status registers,
 * CMOS storage) and the i8042 reset command ending the VM with the reboot status.
 * No KVM: the VM has no fd, so raising IRQ 4 fails quietly. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/vm.h"
#include "devices/legacy/legacy.h"

#define COM1 0x3f8

static struct vm vm;

static int setup(void **state)
{
	(void)state;
	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = vm.kvm_fd = vm.exit_efd = -1;
	vm.cfg.console = "none";
	pthread_mutex_init(&vm.exit_lock, NULL);
	bus_init(&vm.pio, "pio");
	bus_init(&vm.mmio, "mmio");
	if (serial_init(&vm) || rtc_init(&vm) || i8042_init(&vm))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	serial_exit(&vm);
	bus_destroy(&vm.pio);
	bus_destroy(&vm.mmio);
	return 0;
}

static uint8_t in8(uint16_t port)
{
	uint8_t v = 0;

	assert_int_equal(bus_access(&vm.pio, port, &v, 1, false), 0);
	return v;
}

static void out8(uint16_t port, uint8_t v)
{
	assert_int_equal(bus_access(&vm.pio, port, &v, 1, true), 0);
}

static void test_serial_registers(void **state)
{
	(void)state;
	assert_int_equal(in8(COM1 + 5) & 0x61, 0x60);   /* THRE | TEMT, no data */
	out8(COM1 + 7, 0xa5);
	assert_int_equal(in8(COM1 + 7), 0xa5);          /* scratch */
	out8(COM1 + 3, 0x80);                           /* DLAB */
	out8(COM1 + 0, 0x01);
	out8(COM1 + 1, 0x02);
	assert_int_equal(in8(COM1 + 0), 0x01);
	assert_int_equal(in8(COM1 + 1), 0x02);
	out8(COM1 + 3, 0x03);                           /* 8N1, DLAB off */
	assert_int_equal(in8(COM1 + 3), 0x03);
	assert_int_equal(in8(COM1 + 1), 0x00);          /* IER, not DLM */
	/* A 2-byte access is not an 8250 access: reads all ones. */
	uint16_t w = 0;
	assert_int_equal(bus_access(&vm.pio, COM1, &w, 2, false), 0);
	assert_int_equal(w, 0xffff);
}

static void test_serial_thre_interrupt(void **state)
{
	(void)state;
	out8(COM1 + 1, 0x00);
	assert_int_equal(in8(COM1 + 2) & 0x0f, 0x01);   /* no interrupt */
	out8(COM1 + 1, 0x02);                           /* enable THRI: THR is empty */
	assert_int_equal(in8(COM1 + 2) & 0x0f, 0x02);
	assert_int_equal(in8(COM1 + 2) & 0x0f, 0x01);   /* reading IIR acknowledged it */
	out8(COM1 + 0, 'x');                            /* transmit: empty again */
	assert_int_equal(in8(COM1 + 2) & 0x0f, 0x02);
	out8(COM1 + 2, 0x07);                           /* FIFO on, both cleared */
	assert_int_equal(in8(COM1 + 2) & 0xc0, 0xc0);
	out8(COM1 + 2, 0x00);
	assert_int_equal(in8(COM1 + 2) & 0xc0, 0x00);
	out8(COM1 + 1, 0x00);
}

static void test_serial_loopback(void **state)
{
	(void)state;
	out8(COM1 + 4, 0x10 | 0x02);                    /* loop, RTS */
	assert_int_equal(in8(COM1 + 6) & 0xf0, 0x10);   /* CTS follows RTS */
	out8(COM1 + 4, 0x10 | 0x01 | 0x08);             /* loop, DTR, OUT2 */
	assert_int_equal(in8(COM1 + 6) & 0xf0, 0xa0);   /* DSR, DCD */
	out8(COM1 + 1, 0x01);                           /* received-data interrupt */
	out8(COM1 + 0, 'A');
	out8(COM1 + 0, 'B');
	assert_int_equal(in8(COM1 + 5) & 0x01, 0x01);   /* data ready */
	assert_int_equal(in8(COM1 + 2) & 0x0f, 0x04);
	assert_int_equal(in8(COM1 + 0), 'A');
	assert_int_equal(in8(COM1 + 0), 'B');
	assert_int_equal(in8(COM1 + 5) & 0x01, 0x00);
	assert_int_equal(in8(COM1 + 2) & 0x0f, 0x01);
	/* 70 bytes into a 64-byte FIFO: the rest is dropped, never overrun. */
	for (int i = 0; i < 70; i++)
		out8(COM1 + 0, (uint8_t)i);
	for (int i = 0; i < 64; i++)
		assert_int_equal(in8(COM1 + 0), i);
	assert_int_equal(in8(COM1 + 5) & 0x01, 0x00);
	out8(COM1 + 4, 0x08);
	assert_int_equal(in8(COM1 + 6) & 0xb0, 0xb0);   /* out of loop: DCD DSR CTS */
	out8(COM1 + 1, 0x00);
}

static unsigned from_bcd(uint8_t v)
{
	assert_true((v & 0x0f) <= 9 && (v >> 4) <= 9);
	return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t cmos(uint8_t idx)
{
	out8(0x70, idx);
	return in8(0x71);
}

static void test_rtc(void **state)
{
	time_t now = time(NULL);
	struct tm tm;

	(void)state;
	gmtime_r(&now, &tm);
	assert_int_equal(cmos(0x0a) & 0x80, 0);          /* no update in progress */
	assert_int_equal(cmos(0x0b), 0x02);              /* 24 h, BCD */
	assert_int_equal(cmos(0x0d), 0x80);              /* valid */
	assert_true(from_bcd(cmos(0x00)) < 60);
	assert_true(from_bcd(cmos(0x02)) < 60);
	assert_true(from_bcd(cmos(0x04)) < 24);
	assert_int_equal(from_bcd(cmos(0x09)), tm.tm_year % 100);
	assert_int_equal(from_bcd(cmos(0x32)), (tm.tm_year + 1900) / 100);
	assert_int_equal(from_bcd(cmos(0x08)), tm.tm_mon + 1);
	out8(0x70, 0x80 | 0x40);                         /* NMI-mask bit ignored */
	out8(0x71, 0x5a);
	assert_int_equal(cmos(0x40), 0x5a);              /* CMOS storage */
	out8(0x70, 0x0b);
	out8(0x71, 0x00);                                /* clock registers are read-only */
	assert_int_equal(cmos(0x0b), 0x02);
}

static void test_i8042_reset(void **state)
{
	(void)state;
	assert_int_equal(in8(0x64) & 0x02, 0);           /* input buffer empty */
	out8(0x64, 0x20);                                /* another command: nothing */
	assert_false(vm_exiting(&vm));
	out8(0x64, 0xfe);                                /* pulse reset */
	assert_true(vm_exiting(&vm));
	assert_int_equal(vm.exit_status, VM_EXIT_REBOOT);
	vm_request_exit(&vm, VM_EXIT_POWEROFF);          /* the first request wins */
	assert_int_equal(vm.exit_status, VM_EXIT_REBOOT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serial_registers),
		cmocka_unit_test(test_serial_thre_interrupt),
		cmocka_unit_test(test_serial_loopback),
		cmocka_unit_test(test_rtc),
		cmocka_unit_test(test_i8042_reset),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
