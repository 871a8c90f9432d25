/* The platform devices of every VM, in init order (see devices.h). */
#include "core/devices.h"

#include <string.h>

#include "arch/x86/acpi_dev.h"
#include "core/vm.h"
#include "core/vm_virtio.h"
#include "devices/legacy/debug_exit.h"
#include "devices/legacy/fw_cfg.h"
#include "devices/legacy/legacy.h"
#include "util/log.h"

static const struct vm_device vm_devices[] = {
	{ "serial", serial_init, serial_exit },
	{ "rtc", rtc_init, NULL },
	{ "i8042", i8042_init, NULL },
	{ "virtio-mmio", vm_virtio_init, vm_virtio_exit }, /* before acpi: DSDT entries */
	{ "acpi", acpi_dev_init, acpi_dev_exit },
	{ "debug-exit", debug_exit_dev_init, NULL },
	{ "fw_cfg", fw_cfg_dev_init, fw_cfg_dev_exit },
};

#define NDEV (sizeof(vm_devices) / sizeof(vm_devices[0]))

static unsigned ndev_ready;

int vm_devices_init(struct vm *vm)
{
	for (ndev_ready = 0; ndev_ready < NDEV; ndev_ready++) {
		const struct vm_device *d = &vm_devices[ndev_ready];
		int ret = d->init(vm);

		if (ret) {
			pr_err("device %s: set-up failed: %s", d->name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

void vm_devices_exit(struct vm *vm)
{
	while (ndev_ready > 0) {
		const struct vm_device *d = &vm_devices[--ndev_ready];

		if (d->exit)
			d->exit(vm);
	}
}
