/* Unit tests of the host-side unpack of an LZ4 bzImage (src/arch/x86/vmlinux.c): a synthetic
 * bzImage whose payload is an LZ4 legacy stream of an ELF vmlinux larger than one LZ4 block
 * (8 MiB) is loaded into guest memory, and every PT_LOAD segment must be there byte for byte
 * (the reference is lz4_legacy_decompress of the whole stream), .bss zero, the entry at the
 * ELF entry. Once with independent blocks (unpacked block by block) and once with a block
 * whose match reaches into the previous block (the loader then unpacks the stream whole).
 * Which of the two paths ran is read from the loader's log line (the results are the same by
 * design, so without it the block-by-block path could disappear unnoticed). */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/boot.h"
#include "core/vm.h"
#include "util/log.h"
#include "util/lz4.h"

#define MiB (1u << 20)
#define SEG1_OFF   0x1000u
#define SEG1_PADDR 0x1000000u            /* 16 MiB */
#define SEG1_SIZE  (9 * MiB)             /* spans two LZ4 blocks */
#define SEG1_BSS   (64 * 1024u)
#define SEG2_PADDR 0x2000000u            /* 32 MiB */
#define SEG2_SIZE  (100 * 1024u)
#define ELF_SIZE   (SEG1_OFF + SEG1_SIZE + SEG2_SIZE)
#define RAM        (64 * MiB)

/* The vmlinux: ELF header, two PT_LOAD segments of pseudo-random bytes. */
static uint8_t *make_elf(void)
{
	uint8_t *e = calloc(1, ELF_SIZE);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)e;
	Elf64_Phdr ph[2] = {
		{ .p_type = PT_LOAD, .p_offset = SEG1_OFF, .p_paddr = SEG1_PADDR,
		  .p_filesz = SEG1_SIZE, .p_memsz = SEG1_SIZE + SEG1_BSS },
		{ .p_type = PT_LOAD, .p_offset = SEG1_OFF + SEG1_SIZE, .p_paddr = SEG2_PADDR,
		  .p_filesz = SEG2_SIZE, .p_memsz = SEG2_SIZE },
	};
	uint32_t x = 12345;

	assert_non_null(e);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_entry = SEG1_PADDR + 0x40;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 2;
	memcpy(e + sizeof(*eh), ph, sizeof(ph));
	for (uint32_t i = SEG1_OFF; i < ELF_SIZE; i++) {
		x = x * 1103515245 + 12345;
		e[i] = (uint8_t)(x >> 16);
	}
	return e;
}

/* A literal-only LZ4 block of n bytes (optionally starting with a 16-byte match at offset
 * 100, which reaches into the previous block) appended at out; returns its length. */
static size_t lz4_literal_block(uint8_t *out, const uint8_t *src, size_t n, bool cross)
{
	size_t o = 4, lit = n - (cross ? 16 : 0);

	if (cross) {                 /* token: no literals, match length 16, offset 100 */
		out[o++] = 0x0c;
		out[o++] = 100;
		out[o++] = 0;
	}
	out[o++] = 0xf0;
	for (size_t r = lit - 15; ; r -= 255) {
		out[o++] = r >= 255 ? 255 : (uint8_t)r;
		if (r < 255)
			break;
	}
	memcpy(out + o, src + (cross ? 16 : 0), lit);
	o += lit;
	uint32_t len = (uint32_t)(o - 4);
	memcpy(out, &len, 4);
	return o;
}

/* bzImage: 5 sectors of setup with the header, then the LZ4 stream (payload at offset 0). */
static uint8_t *make_bzimage(const uint8_t *elf, bool cross, size_t *len)
{
	size_t cap = ELF_SIZE + ELF_SIZE / 64 + 4096, o = 5 * 512, p0;
	uint8_t *img = calloc(1, cap);
	uint32_t v;

	assert_non_null(img);
	img[0x1f1] = 4;                                   /* setup_sects */
	memcpy(img + 0x202, "HdrS", 4);
	v = 0x20f; memcpy(img + 0x206, &v, 2);            /* protocol 2.15 */
	img[0x211] = 1;                                   /* LOADED_HIGH */
	v = 0x7fffffff; memcpy(img + 0x22c, &v, 4);       /* initrd_addr_max */
	v = 1; memcpy(img + 0x236, &v, 2);                /* XLF_KERNEL_64 */
	v = 2047; memcpy(img + 0x238, &v, 4);             /* cmdline_size */
	p0 = o;
	v = LZ4_LEGACY_MAGIC; memcpy(img + o, &v, 4);
	o += 4;
	o += lz4_literal_block(img + o, elf, LZ4_LEGACY_BLOCK_MAX, false);
	o += lz4_literal_block(img + o, elf + LZ4_LEGACY_BLOCK_MAX, ELF_SIZE - LZ4_LEGACY_BLOCK_MAX,
			       cross);
	v = ELF_SIZE; memcpy(img + o, &v, 4);             /* the unpacked size */
	o += 4;
	v = 0; memcpy(img + 0x248, &v, 4);                /* payload_offset */
	v = (uint32_t)(o - p0); memcpy(img + 0x24c, &v, 4); /* payload_length */
	*len = o;
	return img;
}

/* stderr into a temporary file while the loader runs; returns the saved stderr. */
static int capture_start(FILE **f)
{
	int saved = dup(2);

	*f = tmpfile();
	assert_non_null(*f);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(*f), 2) == 2);
	return saved;
}

/* Restore stderr; whether the captured text contains what. */
static bool capture_end(FILE *f, int saved, const char *what)
{
	char buf[4096];
	size_t n;

	fflush(stderr);
	assert_true(dup2(saved, 2) == 2);
	close(saved);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, what) != NULL;
}

static void load_and_check(bool cross)
{
	uint8_t *elf = make_elf(), *ref = malloc(ELF_SIZE), *got = malloc(SEG1_SIZE + SEG1_BSS);
	size_t len;
	uint8_t *img = make_bzimage(elf, cross, &len);
	struct vm *vm = calloc(1, sizeof(*vm));
	struct boot_entry entry;
	struct bz_info bi;
	const char *why;

	assert_non_null(ref);
	assert_non_null(got);
	assert_non_null(vm);
	/* The reference: the whole stream unpacked at once (cross-block matches allowed). */
	assert_int_equal(lz4_legacy_decompress(img + 5 * 512, len - 5 * 512, ref, ELF_SIZE),
			 ELF_SIZE);
	if (!cross)
		assert_memory_equal(ref, elf, ELF_SIZE);
	vm->cfg.kernel = "synthetic";
	vm->cfg.kernel_fd = -1;
	vm->cfg.cmdline = "console=ttyS0";
	vm->cfg.unpack = VM_UNPACK_HOST;
	vm->ram_size = vm->ram_low = RAM;
	assert_int_equal(gm_init(&vm->mem), 0);
	assert_int_equal(gm_add_ram(&vm->mem, 0, RAM, 0), 0);
	assert_int_equal(bz_parse(img, len, &bi, &why), 0);
	enum log_level lvl = log_get_level();
	FILE *log;
	int saved = capture_start(&log);

	log_set_level(LOG_INFO);
	assert_int_equal(bz_load_unpacked(vm, img, &bi, &entry), 0);
	log_set_level(lvl);
	/* independent blocks: unpacked block by block; a block reaching back: the whole stream */
	assert_int_equal(capture_end(log, saved, "block by block"), !cross);
	assert_int_equal(entry.rip, SEG1_PADDR + 0x40);
	assert_int_equal(gm_read(&vm->mem, SEG1_PADDR, got, SEG1_SIZE + SEG1_BSS), 0);
	assert_memory_equal(got, ref + SEG1_OFF, SEG1_SIZE);
	for (uint32_t i = 0; i < SEG1_BSS; i++)
		assert_int_equal(got[SEG1_SIZE + i], 0);
	assert_int_equal(gm_read(&vm->mem, SEG2_PADDR, got, SEG2_SIZE), 0);
	assert_memory_equal(got, ref + SEG1_OFF + SEG1_SIZE, SEG2_SIZE);
	gm_destroy(&vm->mem);
	free(vm);
	free(img);
	free(elf);
	free(ref);
	free(got);
}

static void test_blocks_independent(void **state)
{
	(void)state;
	load_and_check(false);
}

static void test_block_reaching_back(void **state)
{
	(void)state;
	load_and_check(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks_independent),
		cmocka_unit_test(test_block_reaching_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
