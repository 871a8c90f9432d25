/* ACPI as one of the VM's platform devices (a line for src/core/devices.c):
 *	{ "acpi", acpi_dev_init, acpi_dev_exit },
 * init writes the tables into guest RAM at BOOT_ACPI_ADDR for vm->ncpus vCPUs (APIC ID =
 * vCPU index, cpuid_build()'s default topology; COM1 in the DSDT) and claims the PM block
 * [ACPI_DEFAULT_PM_BASE, +ACPI_PM_IO_LEN) on vm->pio. The guest's ACPI poweroff (S5) ends
 * `vireo run` with VM_EXIT_POWEROFF, a write to the FADT reset register with
 * VM_EXIT_REBOOT. The RSDP is at BOOT_ACPI_ADDR (boot_params.acpi_rsdp_addr), the range
 * BOOT_ACPI_ADDR..+BOOT_ACPI_SIZE must be reserved in the e820 map. One VM per process. */
#ifndef VIREO_ARCH_X86_ACPI_DEV_H
#define VIREO_ARCH_X86_ACPI_DEV_H

struct vm;

int acpi_dev_init(struct vm *vm);
void acpi_dev_exit(struct vm *vm);

#endif
