/* The multiboot entry of x86_loaders[] (boot.h): `vireo run --kernel` falls to it when the
 * image is not a bzImage but carries a multiboot magic. --cmdline becomes the multiboot
 * command line and --initrd the one module (kvm-unit-tests pass their module with -initrd);
 * the boot vCPU starts in 32-bit protected mode with EAX = 0x2BADB002, EBX = the information
 * structure, paging off. */
#include <stdlib.h>

#include "arch/x86/boot.h"
#include "arch/x86/multiboot.h"
#include "core/vm.h"
#include "util/log.h"

static bool mb_loader_probe(const void *img, size_t len)
{
	return mb_claims(img, len);
}

static int mb_loader_load(struct vm *vm, const void *img, size_t len, struct boot_entry *entry)
{
	struct mb_boot_config cfg = { .cmdline = vm->cfg.cmdline, .module_name = vm->cfg.initrd };
	struct mb_load_result res;
	uint8_t *mod = NULL;
	size_t modlen = 0;
	int ret;

	if (vm->cfg.initrd) {
		ret = mb_read_file(vm->cfg.initrd, &mod, &modlen);
		if (ret)
			return ret;
		cfg.module = mod;
		cfg.module_len = modlen;
	}
	ret = mb_load(&vm->mem, img, len, &cfg, &res);
	free(mod);
	if (ret)
		return ret; /* mb_load printed the reason */
	*entry = (struct boot_entry){
		.mode = BOOT_MODE_PROT32,
		.rip = res.entry,
		.rax = MB_BOOT_MAGIC,
		.rbx = res.info_addr,
	};
	pr_info("multiboot kernel %s: entry %#x, 0x%llx-0x%llx, module %zu bytes at 0x%llx",
		vm->cfg.kernel, res.entry, (unsigned long long)res.kernel_start,
		(unsigned long long)res.kernel_end, modlen, (unsigned long long)res.module_start);
	return 0;
}

const struct kernel_loader multiboot_loader = {
	.name = "multiboot",
	.probe = mb_loader_probe,
	.load = mb_loader_load,
};
