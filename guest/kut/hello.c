/* kut hello: prints what the VMM handed over (multiboot command line, memory sizes and map,
 * the module) and what fw_cfg says, so that a test can check each against what it asked
 * vireo for. */
#include "kut.h"

static void print_module(void)
{
	const struct mb_module *m = (const struct mb_module *)(uintptr_t)mbi()->mods_addr;
	const char *p = (const char *)(uintptr_t)m->mod_start;
	uint32_t len = m->mod_end - m->mod_start, n = 0;

	while (n < len && n < 200 && p[n] != '\n')
		n++;
	printf("kut hello: module %u bytes at 0x%x '", len, m->mod_start);
	for (uint32_t i = 0; i < n; i++)
		putchar(p[i]);
	printf("'\n");
}

static void print_mmap(void)
{
	uintptr_t p = mbi()->mmap_addr, end = p + mbi()->mmap_length;

	while (p + sizeof(struct mb_mmap_entry) <= end) {
		const struct mb_mmap_entry *e = (const struct mb_mmap_entry *)p;
		printf("kut hello: mmap 0x%lx+0x%lx type %u\n", (unsigned long)e->addr,
		       (unsigned long)e->len, e->type);
		p += e->size + 4;
	}
}

int main(void)
{
	const struct mb_info *mi = mbi();
	char sig[5] = { 0 };

	printf("kut hello: hello from vireo\n");
	printf("kut hello: cmdline '%s'\n", cmdline());
	if (mi->flags & MB_IF_MEM)
		printf("kut hello: mem_lower %u KiB mem_upper %u KiB\n", mi->mem_lower, mi->mem_upper);
	if (mi->flags & MB_IF_MMAP)
		print_mmap();
	if ((mi->flags & MB_IF_MODS) && mi->mods_count)
		print_module();
	else
		printf("kut hello: no module\n");
	fwcfg_read(FW_CFG_SIGNATURE, sig, 4);
	printf("kut hello: fw_cfg '%s' cpus %u ram %lu MiB\n", sig,
	       (unsigned)fwcfg_read_le(FW_CFG_NB_CPUS, 2),
	       (unsigned long)(fwcfg_read_le(FW_CFG_RAM_SIZE, 8) >> 20));
	return 0;
}
