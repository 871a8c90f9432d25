/* Unit tests for ACPI as a VM platform device: tables land in guest RAM at BOOT_ACPI_ADDR,
 * the PM block on the port bus turns S5 into VM_EXIT_POWEROFF and the reset register into
 * VM_EXIT_REBOOT. vm_request_exit() is mocked here (the real one lives in core/vm.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/acpi_dev.h"
#include "arch/x86/boot.h"
#include "core/vm.h"

static int exit_status = -1;
static int exit_calls;

void vm_request_exit(struct vm *vm, int status)
{
	(void)vm;
	exit_status = status;
	exit_calls++;
}

static void vm_setup(struct vm *vm, uint64_t ram, unsigned int ncpus)
{
	memset(vm, 0, sizeof(*vm));
	vm->ncpus = ncpus;
	assert_int_equal(gm_init(&vm->mem), 0);
	assert_true(gm_add_ram(&vm->mem, 0, ram, 0) >= 0);
	assert_int_equal(bus_init(&vm->pio, "pio"), 0);
	exit_status = -1;
	exit_calls = 0;
}

static void vm_teardown(struct vm *vm)
{
	bus_destroy(&vm->pio);
	gm_destroy(&vm->mem);
}

static void test_tables_in_guest_ram(void **state)
{
	struct vm vm;
	uint8_t rsdp[36];
	uint8_t madt_hdr[8];
	uint64_t xsdt;

	(void)state;
	vm_setup(&vm, 2 << 20, 300);
	assert_int_equal(acpi_dev_init(&vm), 0);
	assert_int_equal(gm_read(&vm.mem, BOOT_ACPI_ADDR, rsdp, sizeof(rsdp)), 0);
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(acpi_sum(rsdp, 36), 0);
	memcpy(&xsdt, rsdp + 24, 8);
	assert_true(xsdt > BOOT_ACPI_ADDR && xsdt < BOOT_ACPI_ADDR + BOOT_ACPI_SIZE);
	/* The XSDT's second entry is the MADT: 300 CPUs need 255 * 8 + 45 * 16 bytes of it. */
	{
		uint8_t x[52];
		uint64_t madt;
		uint32_t len;

		assert_int_equal(gm_read(&vm.mem, xsdt, x, sizeof(x)), 0);
		assert_memory_equal(x, "XSDT", 4);
		memcpy(&madt, x + 44, 8);
		assert_int_equal(gm_read(&vm.mem, madt, madt_hdr, sizeof(madt_hdr)), 0);
		assert_memory_equal(madt_hdr, "APIC", 4);
		memcpy(&len, madt_hdr + 4, 4);
		assert_true(len > 255 * 8 + 45 * 16);
	}
	acpi_dev_exit(&vm);
	vm_teardown(&vm);
}

static void test_poweroff_and_reset(void **state)
{
	struct vm vm;
	uint16_t s5 = 1 | ACPI_SLP_TYP_S5 << 10 | 1 << 13;
	uint8_t reset = ACPI_RESET_VALUE;

	(void)state;
	vm_setup(&vm, 2 << 20, 1);
	assert_int_equal(acpi_dev_init(&vm), 0);
	assert_int_equal(bus_access(&vm.pio, ACPI_DEFAULT_PM_BASE + ACPI_PM_CNT_OFF, &s5, 2, true), 0);
	assert_int_equal(exit_status, VM_EXIT_POWEROFF);
	assert_int_equal(bus_access(&vm.pio, ACPI_DEFAULT_PM_BASE + ACPI_PM_RESET_OFF, &reset, 1,
				    true), 0);
	assert_int_equal(exit_status, VM_EXIT_REBOOT);
	assert_int_equal(exit_calls, 2);
	acpi_dev_exit(&vm);
	/* After exit the ports are free again. */
	assert_int_equal(bus_access(&vm.pio, ACPI_DEFAULT_PM_BASE + ACPI_PM_CNT_OFF, &s5, 2, true),
			 -ENOENT);
	assert_int_equal(exit_calls, 2);
	vm_teardown(&vm);
}

static void test_no_ram_for_tables(void **state)
{
	struct vm vm;

	(void)state;
	vm_setup(&vm, 512 << 10, 1); /* RAM ends at 512 KiB: nothing at 0xE0000 */
	assert_int_equal(acpi_dev_init(&vm), -EFAULT);
	acpi_dev_exit(&vm); /* harmless after a failed init */
	vm_teardown(&vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables_in_guest_ram),
		cmocka_unit_test(test_poweroff_and_reset),
		cmocka_unit_test(test_no_ram_for_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
