/* Platform devices created for every VM, in one explicit table (src/core/devices.c): init in
 * table order after the VM and its RAM exist and before the kernel is loaded, exit in
 * reverse order after the vCPUs stopped. Each device registers its ranges on vm->pio or
 * vm->mmio in init. A device that is not wanted for this VM returns 0 without registering.
 * Adding a device: one line in the table and its init/exit declared in its own header. */
#ifndef VIREO_CORE_DEVICES_H
#define VIREO_CORE_DEVICES_H

struct vm;

struct vm_device {
	const char *name;
	int (*init)(struct vm *vm);   /* 0 or -errno (one line printed) */
	void (*exit)(struct vm *vm);  /* may be NULL */
};

int vm_devices_init(struct vm *vm);
void vm_devices_exit(struct vm *vm);

#endif
