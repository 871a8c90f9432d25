/* libFuzzer target for the multiboot v1 loader: the input is a kernel file.
 *
 * byte 0: bit 0 pass a command line, bit 1 pass a module (the last quarter of the input).
 * The rest is the kernel image, loaded into 8 MiB of RAM at 0 plus a read-only page at 16 MiB.
 * Whatever the image says, the loader must not crash or touch memory outside guest RAM
 * (ASan), and when it accepts the image: the entry lies inside the loaded kernel, the
 * information structure is in RAM with its memory flags, and the module lies page-aligned in
 * RAM after the kernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/multiboot.h"
#include "util/log.h"

#define RAM (8u << 20)

static struct guest_memory gm;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The loader explains every refusal with pr_err(); keep the fuzzer's log readable.
	 * Sanitizer reports go to fd 2 directly and are not affected. */
	stderr = fopen("/dev/null", "w");
	if (!stderr || gm_init(&gm) || gm_add_ram(&gm, 0, RAM, 0) < 0 ||
	    gm_add_ram(&gm, 16u << 20, 4096, GM_REGION_READONLY) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mb_boot_config cfg = { 0 };
	struct mb_load_result res;
	struct mb_info info;

	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	data++, size--;
	if (flags & 1)
		cfg.cmdline = "console=ttyS0 fuzz";
	if (flags & 2) {
		cfg.module = data + size - size / 4;
		cfg.module_len = size / 4;
		cfg.module_name = "module";
	}
	if (mb_load(&gm, data, size, &cfg, &res))
		return 0;
	if (res.entry < res.kernel_start || res.entry >= res.kernel_end || res.kernel_end > RAM)
		abort();
	if (gm_read(&gm, res.info_addr, &info, sizeof(info)) || !(info.flags & MB_IF_MEM) ||
	    info.mem_upper != (RAM - MB_HIGH_RAM_START) >> 10)
		abort();
	if (cfg.module && (res.module_start % GM_PAGE_SIZE || res.module_start < res.kernel_end ||
			   res.module_end - res.module_start != cfg.module_len ||
			   !gm_translate(&gm, res.module_start, cfg.module_len)))
		abort();
	return 0;
}
