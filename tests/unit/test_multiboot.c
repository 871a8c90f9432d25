/* Multiboot v1 loader: crafted ELF32/ELF64/a.out-kludge kernels loaded into an 8 MiB guest
 * memory; what a guest would read (segment bytes, bss, the information structure, memory map,
 * command line, module) is checked, and hostile images are refused without touching guest
 * memory. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/multiboot.h"
#include "util/log.h"

#define RAM_SIZE  (8u << 20)
#define IMG_MAX   (64u << 10)
#define DATA_OFF  0x200u
#define KBASE     0x200000u

struct seg {
	uint64_t paddr, vaddr;
	uint64_t off, filesz, memsz;
	uint32_t type;
};

struct fixture {
	struct guest_memory gm;
	uint8_t img[IMG_MAX];
	size_t len;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(gm_init(&f->gm), 0);
	assert_true(gm_add_ram(&f->gm, 0, RAM_SIZE, 0) >= 0);
	/* Poison RAM so that zeroed bss and untouched memory can be told apart. */
	memset(gm_translate(&f->gm, 0, RAM_SIZE), 0xaa, RAM_SIZE);
	log_set_level(LOG_ERR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	gm_destroy(&f->gm);
	free(f);
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put_mb_header(uint8_t *p, uint32_t flags)
{
	put32(p, MB_HEADER_MAGIC);
	put32(p + 4, flags);
	put32(p + 8, 0u - (MB_HEADER_MAGIC + flags));
}

/* An ELF image with the multiboot header at DATA_OFF followed by a byte pattern that fills
 * the file up to len. Segments are given by the caller. */
static void build_elf(struct fixture *f, bool is64, const struct seg *segs, unsigned n,
		      uint64_t entry, size_t len)
{
	uint8_t *b = f->img;

	memset(b, 0, IMG_MAX);
	for (size_t i = DATA_OFF; i < len; i++)
		b[i] = (uint8_t)(i * 7 + 3);
	put_mb_header(b + DATA_OFF, 0);
	memcpy(b, ELFMAG, SELFMAG);
	b[EI_CLASS] = is64 ? ELFCLASS64 : ELFCLASS32;
	b[EI_DATA] = ELFDATA2LSB;
	b[EI_VERSION] = EV_CURRENT;
	if (is64) {
		Elf64_Ehdr e;
		memcpy(&e, b, sizeof(e));
		e.e_type = ET_EXEC, e.e_machine = EM_X86_64, e.e_entry = entry;
		e.e_phoff = sizeof(e), e.e_phentsize = sizeof(Elf64_Phdr), e.e_phnum = (uint16_t)n;
		memcpy(b, &e, sizeof(e));
		for (unsigned i = 0; i < n; i++) {
			Elf64_Phdr p = { .p_type = segs[i].type, .p_offset = segs[i].off,
					 .p_vaddr = segs[i].vaddr, .p_paddr = segs[i].paddr,
					 .p_filesz = segs[i].filesz, .p_memsz = segs[i].memsz };
			memcpy(b + sizeof(e) + i * sizeof(p), &p, sizeof(p));
		}
	} else {
		Elf32_Ehdr e;
		memcpy(&e, b, sizeof(e));
		e.e_type = ET_EXEC, e.e_machine = EM_386, e.e_entry = (uint32_t)entry;
		e.e_phoff = sizeof(e), e.e_phentsize = sizeof(Elf32_Phdr), e.e_phnum = (uint16_t)n;
		memcpy(b, &e, sizeof(e));
		for (unsigned i = 0; i < n; i++) {
			Elf32_Phdr p = { .p_type = segs[i].type, .p_offset = (uint32_t)segs[i].off,
					 .p_vaddr = (uint32_t)segs[i].vaddr,
					 .p_paddr = (uint32_t)segs[i].paddr,
					 .p_filesz = (uint32_t)segs[i].filesz,
					 .p_memsz = (uint32_t)segs[i].memsz };
			memcpy(b + sizeof(e) + i * sizeof(p), &p, sizeof(p));
		}
	}
	f->len = len;
}

/* One text segment at KBASE with 0x1000 bytes of bss after 0x800 file bytes. */
static void build_simple(struct fixture *f, bool is64)
{
	struct seg s = { KBASE, KBASE, DATA_OFF, 0x800, 0x1800, PT_LOAD };

	build_elf(f, is64, &s, 1, KBASE + 0x10, DATA_OFF + 0x800);
}

static uint8_t *ram(struct fixture *f, uint64_t gpa)
{
	return gm_translate(&f->gm, gpa, 1);
}

static bool ram_untouched(struct fixture *f, uint64_t gpa, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (*ram(f, gpa + i) != 0xaa)
			return false;
	return true;
}

static void read_info(struct fixture *f, uint32_t addr, struct mb_info *info)
{
	assert_int_equal(gm_read(&f->gm, addr, info, sizeof(*info)), 0);
}

static void test_elf32_loads_segments_and_entry(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;

	build_simple(f, false);
	assert_int_equal(mb_load(&f->gm, f->img, f->len, NULL, &res), 0);
	assert_int_equal(res.entry, KBASE + 0x10);
	assert_int_equal(res.kernel_start, KBASE);
	assert_int_equal(res.kernel_end, KBASE + 0x1800);
	assert_memory_equal(ram(f, KBASE), f->img + DATA_OFF, 0x800);
	for (unsigned i = 0x800; i < 0x1800; i++)
		assert_int_equal(*ram(f, KBASE + i), 0); /* bss zeroed */
	assert_true(ram_untouched(f, KBASE + 0x1800, 0x1000));
	assert_true(ram_untouched(f, KBASE - 0x1000, 0x1000));
}

static void test_elf64_loads(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;

	build_simple(f, true);
	assert_int_equal(mb_load(&f->gm, f->img, f->len, NULL, &res), 0);
	assert_int_equal(res.entry, KBASE + 0x10);
	assert_memory_equal(ram(f, KBASE), f->img + DATA_OFF, 0x800);
	assert_int_equal(*ram(f, KBASE + 0x17ff), 0);
}

/* vaddr != paddr: loaded at paddr, entry translated through the segment. */
static void test_entry_translated_to_physical(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;
	struct seg s = { KBASE, 0xc0000000u + KBASE, DATA_OFF, 0x800, 0x800, PT_LOAD };

	build_elf(f, false, &s, 1, 0xc0000000u + KBASE + 0x20, DATA_OFF + 0x800);
	assert_int_equal(mb_load(&f->gm, f->img, f->len, NULL, &res), 0);
	assert_int_equal(res.entry, KBASE + 0x20);
}

static void test_info_structure(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;
	struct mb_info info;
	struct mb_module mod;
	char buf[64];
	static const char module[] = "MODULE-CONTENT\n";
	struct mb_boot_config cfg = { .cmdline = "console=ttyS0 test=1", .module = module,
				      .module_len = sizeof(module) - 1, .module_name = "env" };

	build_simple(f, false);
	assert_int_equal(mb_load(&f->gm, f->img, f->len, &cfg, &res), 0);
	assert_int_equal(res.info_addr, MB_INFO_ADDR);
	read_info(f, res.info_addr, &info);
	assert_true(info.flags & MB_IF_MEM);
	assert_true(info.flags & MB_IF_CMDLINE);
	assert_true(info.flags & MB_IF_MODS);
	assert_true(info.flags & MB_IF_MMAP);
	assert_int_equal(info.mem_lower, 639);
	assert_int_equal(info.mem_upper, (RAM_SIZE - MB_HIGH_RAM_START) / 1024);
	assert_int_equal(gm_read(&f->gm, info.cmdline, buf, 21), 0);
	assert_string_equal(buf, "console=ttyS0 test=1");
	assert_int_equal(info.mods_count, 1);
	assert_int_equal(gm_read(&f->gm, info.mods_addr, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.mod_start % 4096, 0);
	assert_true(mod.mod_start >= res.kernel_end);
	assert_int_equal(mod.mod_end - mod.mod_start, sizeof(module) - 1);
	assert_memory_equal(ram(f, mod.mod_start), module, sizeof(module) - 1);
	assert_int_equal(gm_read(&f->gm, mod.string, buf, 4), 0);
	assert_string_equal(buf, "env");
	assert_int_equal(gm_read(&f->gm, info.boot_loader_name, buf, 6), 0);
	assert_string_equal(buf, "vireo");
}

static void test_info_without_cmdline_or_module(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;
	struct mb_info info;

	build_simple(f, false);
	assert_int_equal(mb_load(&f->gm, f->img, f->len, NULL, &res), 0);
	read_info(f, res.info_addr, &info);
	assert_false(info.flags & MB_IF_CMDLINE);
	assert_int_equal(info.mods_count, 0);
	assert_int_equal(res.module_start, 0);
}

static void test_memory_map(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;
	struct mb_info info;
	struct mb_mmap_entry e[4];

	build_simple(f, false);
	assert_int_equal(mb_load(&f->gm, f->img, f->len, NULL, &res), 0);
	read_info(f, res.info_addr, &info);
	assert_int_equal(info.mmap_length, 3 * sizeof(e[0]));
	assert_int_equal(gm_read(&f->gm, info.mmap_addr, e, 3 * sizeof(e[0])), 0);
	assert_int_equal(e[0].size, 20);
	assert_int_equal(e[0].addr, 0);
	assert_int_equal(e[0].len, MB_LOW_RAM_END);
	assert_int_equal(e[0].type, MB_MMAP_AVAILABLE);
	assert_int_equal(e[1].addr, MB_LOW_RAM_END);
	assert_int_equal(e[1].addr + e[1].len, MB_HIGH_RAM_START);
	assert_int_equal(e[1].type, MB_MMAP_RESERVED);
	assert_int_equal(e[2].addr, MB_HIGH_RAM_START);
	assert_int_equal(e[2].len, RAM_SIZE - MB_HIGH_RAM_START);
	assert_int_equal(e[2].type, MB_MMAP_AVAILABLE);
}

/* RAM split around a hole (as above 3 GiB): two available ranges after the legacy hole, and
 * mem_upper stops at the first gap. */
static void test_memory_map_with_high_ram(void **state)
{
	struct guest_memory gm;
	struct mb_mmap_entry e[8];
	const uint64_t high = 1ull << 32;

	(void)state;
	assert_int_equal(gm_init(&gm), 0);
	assert_true(gm_add_ram(&gm, high, 2u << 20, 0) >= 0);
	assert_true(gm_add_ram(&gm, 0, 4u << 20, 0) >= 0);
	assert_int_equal(mb_build_mmap(&gm, e, 8), 4);
	assert_int_equal(e[2].addr, MB_HIGH_RAM_START);
	assert_int_equal(e[2].len, (4u << 20) - MB_HIGH_RAM_START);
	assert_int_equal(e[3].addr, high);
	assert_int_equal(e[3].len, 2u << 20);
	assert_int_equal(e[3].type, MB_MMAP_AVAILABLE);
	assert_int_equal(mb_build_mmap(&gm, e, 2), -ENOSPC);
	gm_destroy(&gm);
}

static void test_two_segments(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;
	struct seg s[2] = {
		{ KBASE, KBASE, DATA_OFF, 0x400, 0x400, PT_LOAD },
		{ KBASE + 0x10000, KBASE + 0x10000, DATA_OFF + 0x400, 0x400, 0x2000, PT_LOAD },
	};

	build_elf(f, false, s, 2, KBASE, DATA_OFF + 0x800);
	assert_int_equal(mb_load(&f->gm, f->img, f->len, NULL, &res), 0);
	assert_memory_equal(ram(f, KBASE + 0x10000), f->img + DATA_OFF + 0x400, 0x400);
	assert_int_equal(res.kernel_end, KBASE + 0x12000);
	assert_true(ram_untouched(f, KBASE + 0x400, 0x1000));
}

static void test_not_multiboot(void **state)
{
	struct fixture *f = *state;
	struct mb_header hdr;
	struct mb_load_result res;

	memset(f->img, 0x55, 0x4000);
	assert_false(mb_detect(f->img, 0x4000));
	assert_false(mb_claims(f->img, 0x4000));
	assert_int_equal(mb_probe(f->img, 0x4000, &hdr), -ENOENT);
	assert_int_equal(mb_load(&f->gm, f->img, 0x4000, NULL, &res), -ENOENT);
	assert_int_equal(mb_probe(f->img, 0, &hdr), -ENOENT);
}

static void test_header_beyond_8k_ignored(void **state)
{
	struct fixture *f = *state;
	struct mb_header hdr;

	memset(f->img, 0, 0x4000);
	put_mb_header(f->img + MB_SEARCH_BYTES, 0);
	assert_int_equal(mb_probe(f->img, 0x4000, &hdr), -ENOENT);
	/* the last position where the whole header fits in the first 8 KiB is found */
	put_mb_header(f->img + MB_SEARCH_BYTES - 12, 0);
	assert_int_equal(mb_probe(f->img, 0x4000, &hdr), 0);
	assert_int_equal(hdr.offset, MB_SEARCH_BYTES - 12);
	/* a header cut by the end of the file is not found */
	assert_int_equal(mb_probe(f->img, MB_SEARCH_BYTES - 4, &hdr), -ENOENT);
}

static void test_bad_checksum(void **state)
{
	struct fixture *f = *state;
	struct mb_header hdr;
	struct mb_load_result res;

	build_simple(f, false);
	put32(f->img + DATA_OFF + 8, 0x12345678);
	assert_false(mb_detect(f->img, f->len));
	assert_true(mb_claims(f->img, f->len)); /* meant to be multiboot: the loader explains */
	assert_int_equal(mb_probe(f->img, f->len, &hdr), -EINVAL);
	assert_int_equal(mb_load(&f->gm, f->img, f->len, NULL, &res), -EINVAL);
	assert_true(ram_untouched(f, KBASE, 0x1800));
}

static void test_unsupported_required_flag(void **state)
{
	struct fixture *f = *state;
	struct mb_header hdr;

	build_simple(f, false);
	put_mb_header(f->img + DATA_OFF, 1u << 5);
	assert_true(mb_detect(f->img, f->len)); /* it is multiboot ... */
	assert_int_equal(mb_probe(f->img, f->len, &hdr), -EINVAL); /* ... but not loadable */
	put_mb_header(f->img + DATA_OFF, MB_HF_PAGE_ALIGN | MB_HF_MEMINFO | (1u << 20));
	assert_int_equal(mb_probe(f->img, f->len, &hdr), 0); /* optional bits are fine */
}

/* Loads a hostile image and checks the error and that guest memory was not touched. */
static void expect_refused(struct fixture *f, int err)
{
	struct mb_load_result res;

	assert_int_equal(mb_load(&f->gm, f->img, f->len, NULL, &res), err);
	assert_true(ram_untouched(f, KBASE, 0x4000));
	assert_true(ram_untouched(f, MB_INFO_ADDR, 0x100));
}

static void test_segment_outside_ram(void **state)
{
	struct fixture *f = *state;
	struct seg s[2] = {
		{ KBASE, KBASE, DATA_OFF, 0x400, 0x400, PT_LOAD },
		{ RAM_SIZE - 0x100, RAM_SIZE - 0x100, DATA_OFF, 0x100, 0x200, PT_LOAD },
	};

	build_elf(f, false, s, 2, KBASE, DATA_OFF + 0x400);
	expect_refused(f, -EFAULT);
	s[1].paddr = 0x40000000u; /* wholly outside */
	build_elf(f, false, s, 2, KBASE, DATA_OFF + 0x400);
	expect_refused(f, -EFAULT);
}

static void test_segment_crossing_4g(void **state)
{
	struct fixture *f = *state;
	struct seg s[2] = {
		{ KBASE, KBASE, DATA_OFF, 0x400, 0x400, PT_LOAD },
		{ 0xfffff000u, 0xfffff000u, DATA_OFF, 0x100, 0x2000, PT_LOAD },
	};

	build_elf(f, true, s, 2, KBASE, DATA_OFF + 0x400);
	expect_refused(f, -EINVAL);
	s[1].paddr = 0xffffffffffff0000ull; /* would wrap */
	build_elf(f, true, s, 2, KBASE, DATA_OFF + 0x400);
	expect_refused(f, -EINVAL);
}

static void test_overlapping_segments(void **state)
{
	struct fixture *f = *state;
	struct seg s[2] = {
		{ KBASE, KBASE, DATA_OFF, 0x400, 0x1000, PT_LOAD },
		{ KBASE + 0xfff, KBASE + 0xfff, DATA_OFF, 0x100, 0x100, PT_LOAD },
	};

	build_elf(f, false, s, 2, KBASE, DATA_OFF + 0x400);
	expect_refused(f, -EINVAL);
}

static void test_huge_filesz(void **state)
{
	struct fixture *f = *state;
	struct seg s = { KBASE, KBASE, DATA_OFF, 0xffffffffu, 0xffffffffu, PT_LOAD };

	build_elf(f, false, &s, 1, KBASE, DATA_OFF + 0x400);
	expect_refused(f, -EINVAL); /* beyond the file (and above 4 GiB) */
	s.filesz = 0x10000; /* larger than the file, memsz fine */
	s.memsz = 0x10000;
	build_elf(f, false, &s, 1, KBASE, DATA_OFF + 0x400);
	expect_refused(f, -EINVAL);
	s.filesz = 0x800; /* more file bytes than memory bytes */
	s.memsz = 0x400;
	build_elf(f, false, &s, 1, KBASE, DATA_OFF + 0x800);
	expect_refused(f, -EINVAL);
	s.off = 0xfffffff0u; /* offset + size wraps in 32 bits */
	s.filesz = 0x20;
	s.memsz = 0x20;
	build_elf(f, true, &s, 1, KBASE, DATA_OFF + 0x800);
	expect_refused(f, -EINVAL);
}

static void test_segment_over_reserved_areas(void **state)
{
	struct fixture *f = *state;
	struct seg s[2] = {
		{ KBASE, KBASE, DATA_OFF, 0x400, 0x400, PT_LOAD },
		{ MB_INFO_ADDR - 0x100, MB_INFO_ADDR - 0x100, DATA_OFF, 0x200, 0x200, PT_LOAD },
	};

	build_elf(f, false, s, 2, KBASE, DATA_OFF + 0x400);
	expect_refused(f, -EINVAL);
	s[1].paddr = 0xb8000; /* VGA, in the legacy hole */
	build_elf(f, false, s, 2, KBASE, DATA_OFF + 0x400);
	expect_refused(f, -EINVAL);
	s[1].paddr = 0; /* the first page */
	build_elf(f, false, s, 2, KBASE, DATA_OFF + 0x400);
	expect_refused(f, -EINVAL);
	s[1].paddr = 0x20000; /* free low memory is fine */
	s[1].vaddr = 0x20000;
	build_elf(f, false, s, 2, KBASE, DATA_OFF + 0x400);
	struct mb_load_result res;
	assert_int_equal(mb_load(&f->gm, f->img, f->len, NULL, &res), 0);
	assert_int_equal(res.kernel_start, 0x20000);
}

static void test_bad_program_headers(void **state)
{
	struct fixture *f = *state;
	Elf32_Ehdr e;

	build_simple(f, false);
	memcpy(&e, f->img, sizeof(e));
	e.e_phoff = 0xfffffff0u;
	memcpy(f->img, &e, sizeof(e));
	expect_refused(f, -EINVAL);
	build_simple(f, false);
	e.e_phoff = sizeof(e);
	e.e_phnum = 0xffff;
	memcpy(f->img, &e, sizeof(e));
	expect_refused(f, -EINVAL);
	e.e_phnum = 1;
	e.e_phentsize = 8; /* too small for a program header */
	memcpy(f->img, &e, sizeof(e));
	expect_refused(f, -EINVAL);
	e.e_phentsize = sizeof(Elf32_Phdr);
	e.e_type = ET_DYN;
	memcpy(f->img, &e, sizeof(e));
	expect_refused(f, -EINVAL);
	e.e_type = ET_EXEC;
	e.e_machine = EM_ARM;
	memcpy(f->img, &e, sizeof(e));
	expect_refused(f, -EINVAL);
}

static void test_truncated_and_not_elf(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;

	memset(f->img, 0, 0x100);
	put_mb_header(f->img + 16, 0);
	assert_int_equal(mb_load(&f->gm, f->img, 0x100, NULL, &res), -EINVAL); /* no ELF magic */
	build_simple(f, true);
	/* an ELF64 identification but the file ends inside the ELF header */
	memmove(f->img + 24, f->img + DATA_OFF, 12);
	assert_int_equal(mb_load(&f->gm, f->img, 36, NULL, &res), -EINVAL);
	assert_true(ram_untouched(f, KBASE, 0x1000));
}

static void test_entry_outside_segments(void **state)
{
	struct fixture *f = *state;
	struct seg s = { KBASE, KBASE, DATA_OFF, 0x800, 0x800, PT_LOAD };

	build_elf(f, false, &s, 1, KBASE + 0x800, DATA_OFF + 0x800);
	expect_refused(f, -EINVAL);
	s.type = PT_NOTE; /* no loadable segment at all */
	build_elf(f, false, &s, 1, KBASE, DATA_OFF + 0x800);
	expect_refused(f, -EINVAL);
}

static void test_module_does_not_fit(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;
	static uint8_t big[RAM_SIZE];
	struct mb_boot_config cfg = { .module = big, .module_len = RAM_SIZE - KBASE };

	build_simple(f, false);
	assert_int_equal(mb_load(&f->gm, f->img, f->len, &cfg, &res), -ENOSPC);
	cfg.module_len = RAM_SIZE - KBASE - 0x2000; /* exactly fits after the kernel's page */
	assert_int_equal(mb_load(&f->gm, f->img, f->len, &cfg, &res), 0);
	assert_int_equal(res.module_start, KBASE + 0x2000);
	assert_int_equal(res.module_end, RAM_SIZE);
}

static void test_cmdline_too_long(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;
	char *s = malloc(MB_CMDLINE_MAX + 1);
	struct mb_boot_config cfg = { .cmdline = s };

	assert_non_null(s);
	memset(s, 'x', MB_CMDLINE_MAX);
	s[MB_CMDLINE_MAX] = 0;
	build_simple(f, false);
	assert_int_equal(mb_load(&f->gm, f->img, f->len, &cfg, &res), -E2BIG);
	s[MB_CMDLINE_MAX - 1] = 0; /* the longest allowed */
	assert_int_equal(mb_load(&f->gm, f->img, f->len, &cfg, &res), 0);
	free(s);
}

/* a.out kludge: the header at file offset 0x40 is loaded at header_addr; the file from
 * load_addr's offset up to load_end_addr, then bss. */
static void test_aout_kludge(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;
	uint8_t *h = f->img + 0x40;

	memset(f->img, 0, IMG_MAX);
	for (unsigned i = 0x60; i < 0x1000; i++)
		f->img[i] = (uint8_t)i;
	put_mb_header(h, MB_HF_AOUT_KLUDGE);
	put32(h + 12, KBASE + 0x40);   /* header_addr */
	put32(h + 16, KBASE);          /* load_addr: file offset 0 */
	put32(h + 20, KBASE + 0x1000); /* load_end_addr */
	put32(h + 24, KBASE + 0x3000); /* bss_end_addr */
	put32(h + 28, KBASE + 0x60);   /* entry_addr */
	f->len = 0x1000;
	assert_int_equal(mb_load(&f->gm, f->img, f->len, NULL, &res), 0);
	assert_int_equal(res.entry, KBASE + 0x60);
	assert_memory_equal(ram(f, KBASE), f->img, 0x1000);
	assert_int_equal(*ram(f, KBASE + 0x2fff), 0);
	assert_int_equal(res.kernel_end, KBASE + 0x3000);

	put32(h + 16, KBASE + 0x80); /* load_addr above header_addr: inconsistent */
	put_mb_header(h, MB_HF_AOUT_KLUDGE);
	memset(ram(f, KBASE), 0xaa, 0x4000);
	memset(ram(f, MB_INFO_ADDR), 0xaa, 0x100);
	expect_refused(f, -EINVAL);
	put32(h + 16, KBASE);
	put32(h + 28, KBASE + 0x5000); /* entry outside */
	expect_refused(f, -EINVAL);
	put32(h + 28, KBASE + 0x60);
	put32(h + 24, KBASE + 0x800);  /* bss end before load end */
	expect_refused(f, -EINVAL);
}

static void write_tmp(char *path, const void *data, size_t len)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_load_file(void **state)
{
	struct fixture *f = *state;
	struct mb_load_result res;
	char kpath[] = "/tmp/vireo-mb-kernel-XXXXXX", mpath[] = "/tmp/vireo-mb-mod-XXXXXX";
	char other[] = "/tmp/vireo-mb-other-XXXXXX";
	struct mb_info info;
	char buf[8];

	build_simple(f, false);
	write_tmp(kpath, f->img, f->len);
	write_tmp(mpath, "abc", 3);
	write_tmp(other, "not a kernel", 12);
	assert_int_equal(mb_load_file(&f->gm, other, NULL, NULL, &res), MB_NOT_MULTIBOOT);
	assert_int_equal(mb_load_file(&f->gm, "/nonexistent/vireo", NULL, NULL, &res), -ENOENT);
	assert_int_equal(mb_load_file(&f->gm, kpath, "x=1", "/nonexistent/mod", &res), -ENOENT);
	assert_int_equal(mb_load_file(&f->gm, kpath, "x=1", mpath, &res), 0);
	read_info(f, res.info_addr, &info);
	assert_int_equal(info.mods_count, 1);
	assert_memory_equal(ram(f, res.module_start), "abc", 3);
	assert_int_equal(gm_read(&f->gm, info.cmdline, buf, 4), 0);
	assert_string_equal(buf, "x=1");
	unlink(kpath);
	unlink(mpath);
	unlink(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_elf32_loads_segments_and_entry),
		T(test_elf64_loads),
		T(test_entry_translated_to_physical),
		T(test_info_structure),
		T(test_info_without_cmdline_or_module),
		T(test_memory_map),
		cmocka_unit_test(test_memory_map_with_high_ram),
		T(test_two_segments),
		T(test_not_multiboot),
		T(test_header_beyond_8k_ignored),
		T(test_bad_checksum),
		T(test_unsupported_required_flag),
		T(test_segment_outside_ram),
		T(test_segment_crossing_4g),
		T(test_overlapping_segments),
		T(test_huge_filesz),
		T(test_segment_over_reserved_areas),
		T(test_bad_program_headers),
		T(test_truncated_and_not_elf),
		T(test_entry_outside_segments),
		T(test_module_does_not_fit),
		T(test_cmdline_too_long),
		T(test_aout_kludge),
		T(test_load_file),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
