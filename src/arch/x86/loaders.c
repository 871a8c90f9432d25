/* The x86 kernel loaders `vireo run --kernel` tries, in order (see boot.h). */
#include "arch/x86/boot.h"
#include "arch/x86/multiboot.h"

const struct kernel_loader *const x86_loaders[] = {
	&bzimage_loader,
	&multiboot_loader, /* before vmlinux: test kernels are ELF too */
	&vmlinux_loader,   /* any other ELF64 x86-64 executable */
	NULL,
};
