/* ACPI tables and PM block as a VM platform device (see acpi_dev.h). */
#include "arch/x86/acpi_dev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "core/vm.h"
#include "util/log.h"
#include "virtio/mmio.h"

static struct acpi_pm acpi_pm;
static bool acpi_pm_ready;

static void acpi_dev_event(void *ctx, enum acpi_pm_event ev)
{
	struct vm *vm = ctx;

	if (ev == ACPI_PM_POWEROFF) {
		pr_info("acpi: guest entered S5 (poweroff)");
		vm_request_exit(vm, VM_EXIT_POWEROFF);
	} else {
		pr_info("acpi: guest wrote the reset register");
		vm_request_exit(vm, VM_EXIT_REBOOT);
	}
}

int acpi_dev_init(struct vm *vm)
{
	struct acpi_config cfg = { .ncpus = vm->ncpus, .dsdt_flags = ACPI_DSDT_COM1 };
	struct acpi_tables t;
	uint64_t base;
	unsigned irq;
	uint8_t *buf;
	int r;

	/* the virtio-mmio devices, for kernels that find them in the DSDT (core/vm_virtio.h) */
	while (cfg.n_virtio_mmio < ACPI_MAX_VIRTIO_MMIO &&
	       vm_virtio_slot(&vm->cfg.virtio, cfg.n_virtio_mmio, &base, &irq)) {
		cfg.virtio_mmio[cfg.n_virtio_mmio].base = (uint32_t)base;
		cfg.virtio_mmio[cfg.n_virtio_mmio].size = VIRTIO_MMIO_SIZE;
		cfg.virtio_mmio[cfg.n_virtio_mmio++].irq = (uint8_t)irq;
	}

	buf = calloc(1, BOOT_ACPI_SIZE);
	if (!buf)
		return -ENOMEM;
	r = acpi_build(&cfg, buf, BOOT_ACPI_SIZE, BOOT_ACPI_ADDR, &t);
	if (r) {
		pr_err("acpi: building tables for %u vCPUs: %s", vm->ncpus, strerror(-r));
		goto out;
	}
	r = gm_write(&vm->mem, BOOT_ACPI_ADDR, buf, t.used);
	if (r) {
		pr_err("acpi: no guest RAM at 0x%llx for the tables",
		       (unsigned long long)BOOT_ACPI_ADDR);
		goto out;
	}
	acpi_pm_init(&acpi_pm, acpi_dev_event, vm);
	r = bus_register(&vm->pio, ACPI_DEFAULT_PM_BASE, ACPI_PM_IO_LEN, acpi_pm_io, &acpi_pm,
			 "acpi-pm");
	if (r) {
		acpi_pm_destroy(&acpi_pm);
		goto out;
	}
	acpi_pm_ready = true;
	pr_debug("acpi: %zu bytes of tables at 0x%llx, MADT %u bytes", t.used,
		 (unsigned long long)BOOT_ACPI_ADDR, t.madt_len);
out:
	free(buf);
	return r;
}

void acpi_dev_exit(struct vm *vm)
{
	if (!acpi_pm_ready)
		return;
	bus_unregister(&vm->pio, ACPI_DEFAULT_PM_BASE);
	acpi_pm_destroy(&acpi_pm);
	acpi_pm_ready = false;
}
