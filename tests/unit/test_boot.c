/* Unit tests for the Linux boot protocol pieces of src/arch/x86/boot.c: the setup header
 * parse (and refusals), boot_params field by field, the e820 map with and without the
 * 4 GiB hole, initrd placement, the identity-mapping page tables. Kernels are crafted
 * minimal bzImage headers; no KVM needed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/boot.h"
#include "core/vm.h"

#define IMG_SETUP_SECTS 4
#define IMG_LEN ((IMG_SETUP_SECTS + 1) * 512 + 8192)

static uint32_t get32(const uint8_t *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, 4);
	return v;
}

static uint16_t get16(const uint8_t *p, size_t off)
{
	uint16_t v;

	memcpy(&v, p + off, 2);
	return v;
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, 2);
}

/* A bzImage as a 6.x kernel's: protocol 2.15, relocatable, 64-bit entry. */
static uint8_t *fake_bzimage(uint16_t version)
{
	uint8_t *img = calloc(1, IMG_LEN);

	img[0x1f1] = IMG_SETUP_SECTS;
	put16(img, 0x1fe, 0xaa55);
	img[0x200] = 0xeb;
	img[0x201] = 0x66;             /* header runs to 0x268 */
	memcpy(img + 0x202, "HdrS", 4);
	put16(img, 0x206, version);
	img[0x211] = 0x01;             /* LOADED_HIGH */
	put32(img, 0x22c, 0x7fffffff); /* initrd_addr_max */
	put32(img, 0x230, 0x200000);   /* kernel_alignment */
	img[0x234] = 1;                /* relocatable */
	put16(img, 0x236, 0x1);        /* XLF_KERNEL_64 */
	put32(img, 0x238, 2047);       /* cmdline_size */
	put32(img, 0x248, 0x100);      /* payload_offset */
	put32(img, 0x24c, 0x1000);     /* payload_length */
	put32(img, 0x258, 0x1000000);  /* pref_address (low half) */
	put32(img, 0x260, 0x400000);   /* init_size */
	return img;
}

static void test_parse_ok(void **state)
{
	uint8_t *img = fake_bzimage(0x20f);
	struct bz_info bi;
	const char *why = NULL;

	(void)state;
	assert_int_equal(bz_parse(img, IMG_LEN, &bi, &why), 0);
	assert_int_equal(bi.version, 0x20f);
	assert_int_equal(bi.setup_sects, IMG_SETUP_SECTS);
	assert_int_equal(bi.kernel_off, (IMG_SETUP_SECTS + 1) * 512);
	assert_int_equal(bi.kernel_size, IMG_LEN - (IMG_SETUP_SECTS + 1) * 512);
	assert_int_equal(bi.initrd_addr_max, 0x7fffffff);
	assert_true(bi.relocatable);
	assert_int_equal(bi.cmdline_size, 2047);
	assert_int_equal(bi.pref_address, 0x1000000);
	assert_int_equal(bi.init_size, 0x400000);
	assert_int_equal(bi.payload_off, 0x100);
	assert_int_equal(bi.payload_len, 0x1000);
	assert_int_equal(bi.load_addr, 0x100000);
	/* setup_sects 0 means 4 */
	img[0x1f1] = 0;
	assert_int_equal(bz_parse(img, IMG_LEN, &bi, &why), 0);
	assert_int_equal(bi.setup_sects, 4);
	free(img);
}

static void test_parse_refusals(void **state)
{
	uint8_t *img = fake_bzimage(0x20f);
	struct bz_info bi;
	const char *why = NULL;

	(void)state;
	/* Not a bzImage: an ELF file, random bytes, a short file. */
	assert_int_equal(bz_parse("\177ELF", 4, &bi, &why), -ENOEXEC);
	assert_non_null(why);
	memcpy(img + 0x202, "HdrX", 4);
	assert_int_equal(bz_parse(img, IMG_LEN, &bi, &why), -ENOEXEC);
	assert_non_null(strstr(why, "HdrS"));
	memcpy(img + 0x202, "HdrS", 4);
	/* Too old a protocol. */
	put16(img, 0x206, 0x205);
	assert_int_equal(bz_parse(img, IMG_LEN, &bi, &why), -EPROTONOSUPPORT);
	assert_non_null(strstr(why, "2.06"));
	put16(img, 0x206, 0x20f);
	/* zImage (loaded low). */
	img[0x211] = 0;
	assert_int_equal(bz_parse(img, IMG_LEN, &bi, &why), -EPROTONOSUPPORT);
	img[0x211] = 1;
	/* 2.12+ without a 64-bit entry point. */
	put16(img, 0x236, 0);
	assert_int_equal(bz_parse(img, IMG_LEN, &bi, &why), -EPROTONOSUPPORT);
	put16(img, 0x236, 1);
	/* Setup code but no kernel after it. */
	assert_int_equal(bz_parse(img, (IMG_SETUP_SECTS + 1) * 512, &bi, &why), -ENOEXEC);
	assert_int_equal(bz_parse(img, IMG_LEN, &bi, &why), 0);
	free(img);
}

static void test_e820(void **state)
{
	struct e820_entry_x e[8];
	unsigned n;

	(void)state;
	n = bz_e820(e, 8, 256ull << 20, 0);
	assert_int_equal(n, 4);
	assert_int_equal(e[0].addr, 0);
	assert_int_equal(e[0].size, 0x9fc00);
	assert_int_equal(e[0].type, 1);
	assert_int_equal(e[1].type, 2);                  /* EBDA */
	assert_int_equal(e[2].addr, 0xe0000);            /* BIOS area, ACPI tables */
	assert_int_equal(e[2].addr + e[2].size, 0x100000);
	assert_int_equal(e[2].type, 2);
	assert_int_equal(e[3].addr, 0x100000);
	assert_int_equal(e[3].addr + e[3].size, 256ull << 20);
	assert_int_equal(e[3].type, 1);
	/* 4 GiB of RAM: 3 GiB below the hole, 1 GiB from 4 GiB. */
	n = bz_e820(e, 8, 3ull << 30, 1ull << 30);
	assert_int_equal(n, 5);
	assert_int_equal(e[3].addr + e[3].size, 3ull << 30);
	assert_int_equal(e[4].addr, 4ull << 30);
	assert_int_equal(e[4].size, 1ull << 30);
	assert_int_equal(e[4].type, 1);
	/* The caller's array bounds the map. */
	assert_int_equal(bz_e820(e, 2, 3ull << 30, 1ull << 30), 2);
}

static void test_initrd_addr(void **state)
{
	uint8_t *img = fake_bzimage(0x20f);
	struct bz_info bi;
	const char *why;
	uint64_t a;

	(void)state;
	assert_int_equal(bz_parse(img, IMG_LEN, &bi, &why), 0);
	/* Top of 256 MiB, page aligned. */
	assert_int_equal(bz_initrd_addr(&bi, 256ull << 20, 0x2000000, 1234567, &a), 0);
	assert_int_equal(a & 0xfff, 0);
	assert_true(a + 1234567 <= 256ull << 20);
	assert_true(a + 1234567 > (256ull << 20) - 4096);
	/* initrd_addr_max caps it below RAM's end. */
	bi.initrd_addr_max = 0x37ffffff;
	assert_int_equal(bz_initrd_addr(&bi, 3ull << 30, 0x2000000, 0x100000, &a), 0);
	assert_true(a + 0x100000 <= 0x38000000);
	assert_int_equal(a, 0x38000000 - 0x100000);
	/* Too big to fit above the kernel. */
	assert_int_equal(bz_initrd_addr(&bi, 64ull << 20, 60ull << 20, 8ull << 20, &a), -ENOSPC);
	assert_int_equal(bz_initrd_addr(&bi, 64ull << 20, 0, 65ull << 20, &a), -ENOSPC);
	free(img);
}

static void test_boot_params(void **state)
{
	uint8_t *img = fake_bzimage(0x20f);
	uint8_t zp[4096];
	struct bz_info bi;
	const char *why;
	struct e820_entry_x e;
	uint64_t rsdp;

	(void)state;
	memset(zp, 0xcc, sizeof(zp));   /* everything not set must come back zero */
	assert_int_equal(bz_parse(img, IMG_LEN, &bi, &why), 0);
	bz_fill_boot_params(zp, img, &bi, 0x20000, 0x7000000, 0x123456, 3ull << 30, 1ull << 30);
	/* setup header copied from the image */
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(get16(zp, 0x206), 0x20f);
	assert_int_equal(get16(zp, 0x1fe), 0xaa55);
	assert_int_equal(get32(zp, 0x230), 0x200000);
	assert_int_equal(get32(zp, 0x260), 0x400000);
	assert_int_equal(zp[0x1f1], IMG_SETUP_SECTS);
	/* loader fields */
	assert_int_equal(zp[0x210], 0xff);                 /* type_of_loader */
	assert_int_equal(zp[0x211], 0x81);                 /* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_equal(get16(zp, 0x1fa), 0xffff);        /* vid_mode normal */
	assert_int_equal(get32(zp, 0x228), 0x20000);       /* cmd_line_ptr */
	assert_int_equal(get32(zp, 0x0c8), 0);             /* ext_cmd_line_ptr */
	assert_int_equal(get32(zp, 0x218), 0x7000000);     /* ramdisk_image */
	assert_int_equal(get32(zp, 0x21c), 0x123456);      /* ramdisk_size */
	assert_int_equal(get32(zp, 0x0c0), 0);
	assert_int_equal(get32(zp, 0x0c4), 0);
	memcpy(&rsdp, zp + 0x70, 8);
	assert_int_equal(rsdp, BOOT_ACPI_ADDR);
	/* e820: 5 entries, the last one RAM above 4 GiB */
	assert_int_equal(zp[0x1e8], 5);
	memcpy(&e, zp + 0x2d0 + 4 * sizeof(e), sizeof(e));
	assert_int_equal(e.addr, 4ull << 30);
	assert_int_equal(e.size, 1ull << 30);
	assert_int_equal(e.type, 1);
	/* nothing beyond the fifth entry, nothing in the unused zero-page areas */
	for (size_t i = 0x2d0 + 5 * sizeof(e); i < 0x2d0 + 128 * sizeof(e); i++)
		assert_int_equal(zp[i], 0);
	for (size_t i = 0x268; i < 0x2d0; i++)
		assert_int_equal(zp[i], 0);
	free(img);
}

/* The header copy stops where the image's jump says the header ends (older protocols). */
static void test_boot_params_short_header(void **state)
{
	uint8_t *img = fake_bzimage(0x206);
	uint8_t zp[4096];
	struct bz_info bi;
	const char *why;

	(void)state;
	img[0x201] = 0x3a - 2;          /* header ends at 0x23a (2.06's cmdline_size end) */
	assert_int_equal(bz_parse(img, IMG_LEN, &bi, &why), 0);
	assert_int_equal(bi.init_size, bi.kernel_size); /* no init_size before 2.10 */
	assert_int_equal(bi.pref_address, 0);
	bz_fill_boot_params(zp, img, &bi, 0x20000, 0, 0, 128ull << 20, 0);
	assert_int_equal(get32(zp, 0x238), 2047);
	assert_int_equal(get32(zp, 0x260), 0);          /* not copied */
	assert_int_equal(zp[0x1e8], 4);
	free(img);
}

static void test_page_tables_gdt(void **state)
{
	uint8_t *pt = malloc(BOOT_PT_SIZE);
	uint64_t *pml4 = (uint64_t *)pt, *pdpt = (uint64_t *)(pt + 4096);
	uint64_t *pd = (uint64_t *)(pt + 8192);
	uint64_t gdt[BOOT_GDT_ENTRIES];

	(void)state;
	boot_build_page_tables(pt, BOOT_PML4_ADDR);
	assert_int_equal(pml4[0], (BOOT_PML4_ADDR + 0x1000) | 3);
	assert_int_equal(pml4[1], 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pdpt[i], (BOOT_PML4_ADDR + 0x2000 + i * 0x1000) | 3);
	assert_int_equal(pdpt[4], 0);
	assert_int_equal(pd[0], 0x83);
	assert_int_equal(pd[1], 0x200000 | 0x83);
	assert_int_equal(pd[2047], (4ull << 30) - 0x200000 + 0x83);
	boot_build_gdt(gdt);
	assert_int_equal(gdt[0], 0);
	/* 0x10: present, code, L=1, D=0; 0x18: present, writable data */
	assert_true(gdt[2] & (1ull << 53));
	assert_false(gdt[2] & (1ull << 54));
	assert_int_equal((gdt[2] >> 40) & 0xff, 0x9b);
	assert_int_equal((gdt[3] >> 40) & 0xff, 0x93);
	free(pt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_e820),
		cmocka_unit_test(test_initrd_addr),
		cmocka_unit_test(test_boot_params),
		cmocka_unit_test(test_boot_params_short_header),
		cmocka_unit_test(test_page_tables_gdt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
