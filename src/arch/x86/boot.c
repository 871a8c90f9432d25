/* The x86-64 Linux boot protocol (Documentation/arch/x86/boot.rst), 64-bit entry: vireo
 * plays the boot loader and the real-mode setup code. It loads the protected-mode kernel at
 * 1 MiB, builds boot_params (the "zero page") with the setup header copied from the image,
 * the e820 map, the command line and the initrd, identity-maps the first 4 GiB, and starts
 * the boot vCPU in long mode at load address + 0x200 with rsi = boot_params.
 *
 * The parsing and table building are pure functions over buffers (unit-tested without KVM);
 * bzimage_load() at the end puts them into guest memory. */
#include "arch/x86/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/vm.h"
#include "util/log.h"

/* Linux parameters vireo adds on PVM: features whose instructions PVM's emulator cannot
 * execute, by X86_FEATURE number (words of arch/x86/include/asm/cpufeatures.h): XSAVE
 * (noxsave), PCLMULQDQ 129, SSSE3 137, CX16 141, SSE4.1 147, SSE4.2 148, MOVBE 150,
 * POPCNT 151, AES 153, AVX 156, F16C 157, RDRAND 158, FSGSBASE 288, BMI1 291, AVX2 293,
 * BMI2 296, INVPCID 298, AVX512F 304, RDSEED 306, ADX 307, SMAP 308, CLFLUSHOPT 311,
 * CLWB 312, SHA-NI 317, GFNI 520, VAES 521, VPCLMULQDQ 522, RDPID 534. Seen failing:
 * CMPXCHG16B (SLUB), XRSTOR (FPU set-up), POPCNT (hweight), an SSE move in a SIMD routine
 * chosen for SSSE3. */
#define PVM_LINUX_PARAMS "noxsave clearcpuid=129,137,141,147,148,150,151,153,156,157,158," \
			 "288,291,293,296,298,304,306,307,308,311,312,317,520,521,522,534"

/* Field offsets in the image and in boot_params (the setup header sits at the same offset
 * in both). */
#define HDR_SETUP_SECTS   0x1f1
#define HDR_SYSSIZE       0x1f4
#define HDR_VID_MODE      0x1fa
#define HDR_BOOT_FLAG     0x1fe
#define HDR_JUMP          0x200
#define HDR_MAGIC         0x202
#define HDR_VERSION       0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS     0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE  0x21c
#define HDR_HEAP_END_PTR  0x224
#define HDR_CMD_LINE_PTR  0x228
#define HDR_INITRD_MAX    0x22c
#define HDR_KERNEL_ALIGN  0x230
#define HDR_RELOCATABLE   0x234
#define HDR_XLOADFLAGS    0x236
#define HDR_CMDLINE_SIZE  0x238
#define HDR_PAYLOAD_OFFSET 0x248
#define HDR_PAYLOAD_LENGTH 0x24c
#define HDR_PREF_ADDRESS  0x258
#define HDR_INIT_SIZE     0x260

#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_ACPI_RSDP_ADDR    0x070
#define BP_E820_ENTRIES      0x1e8
#define BP_E820_TABLE        0x2d0
#define BP_E820_MAX          128

#define HDRS_MAGIC        0x53726448u  /* "HdrS" */
#define LOADED_HIGH       0x01
#define CAN_USE_HEAP      0x80
#define XLF_KERNEL_64     0x01
#define E820_RAM          1
#define E820_RESERVED     2

static uint16_t rd16(const uint8_t *p, size_t off)
{
	uint16_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint32_t rd32(const uint8_t *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint64_t rd64(const uint8_t *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static void wr32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void wr64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void wr16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

int bz_parse(const void *img, size_t len, struct bz_info *bi, const char **why)
{
	const uint8_t *p = img;
	uint8_t loadflags;

	memset(bi, 0, sizeof(*bi));
	if (len < BZ_SETUP_HDR_END || rd32(p, HDR_MAGIC) != HDRS_MAGIC) {
		*why = "not a bzImage (no \"HdrS\" setup header)";
		return -ENOEXEC;
	}
	bi->version = rd16(p, HDR_VERSION);
	if (bi->version < 0x206) {
		*why = "boot protocol older than 2.06";
		return -EPROTONOSUPPORT;
	}
	loadflags = p[HDR_LOADFLAGS];
	if (!(loadflags & LOADED_HIGH)) {
		*why = "not a bzImage (zImage loaded low)";
		return -EPROTONOSUPPORT;
	}
	if (bi->version >= 0x20c && !(rd16(p, HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
		*why = "kernel has no 64-bit entry point (XLF_KERNEL_64)";
		return -EPROTONOSUPPORT;
	}
	bi->setup_sects = p[HDR_SETUP_SECTS] ? p[HDR_SETUP_SECTS] : 4;
	bi->setup_size = (bi->setup_sects + 1u) * 512u;
	if (bi->setup_size >= len) {
		*why = "truncated bzImage (no protected-mode kernel after the setup code)";
		return -ENOEXEC;
	}
	bi->kernel_off = bi->setup_size;
	bi->kernel_size = (uint32_t)(len - bi->setup_size);
	bi->initrd_addr_max = rd32(p, HDR_INITRD_MAX);
	bi->kernel_alignment = rd32(p, HDR_KERNEL_ALIGN);
	bi->relocatable = p[HDR_RELOCATABLE] != 0;
	bi->cmdline_size = rd32(p, HDR_CMDLINE_SIZE);
	if (bi->version >= 0x20a) {
		bi->pref_address = rd64(p, HDR_PREF_ADDRESS);
		bi->init_size = rd32(p, HDR_INIT_SIZE);
	}
	if (bi->version >= 0x208) {
		bi->payload_off = rd32(p, HDR_PAYLOAD_OFFSET);
		bi->payload_len = rd32(p, HDR_PAYLOAD_LENGTH);
	}
	if (bi->init_size < bi->kernel_size)
		bi->init_size = bi->kernel_size;
	bi->load_addr = BOOT_KERNEL_ADDR;
	return 0;
}

unsigned bz_e820(struct e820_entry_x *out, unsigned max, uint64_t ram_low, uint64_t ram_high)
{
	const struct e820_entry_x all[] = {
		{ 0, BOOT_EBDA_START, E820_RAM },
		{ BOOT_EBDA_START, 0xa0000 - BOOT_EBDA_START, E820_RESERVED },
		{ BOOT_ACPI_ADDR, 0x100000 - BOOT_ACPI_ADDR, E820_RESERVED },
		{ BOOT_KERNEL_ADDR, ram_low > BOOT_KERNEL_ADDR ? ram_low - BOOT_KERNEL_ADDR : 0,
		  E820_RAM },
		{ VM_4G, ram_high, E820_RAM },
	};
	unsigned n = 0;

	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
		if (all[i].size)
			out[n++] = all[i];
	return n;
}

int bz_initrd_addr(const struct bz_info *bi, uint64_t ram_low, uint64_t kernel_end,
		   uint64_t initrd_size, uint64_t *addr)
{
	uint64_t top = ram_low;
	uint64_t a;

	if (bi->initrd_addr_max && (uint64_t)bi->initrd_addr_max + 1 < top)
		top = (uint64_t)bi->initrd_addr_max + 1;
	if (initrd_size > top)
		return -ENOSPC;
	a = (top - initrd_size) & ~(GM_PAGE_SIZE - 1);
	if (a < kernel_end)
		return -ENOSPC;
	*addr = a;
	return 0;
}

void bz_fill_boot_params(uint8_t *zp, const void *img, const struct bz_info *bi,
			 uint64_t cmdline_addr, uint64_t initrd_addr, uint64_t initrd_size,
			 uint64_t ram_low, uint64_t ram_high)
{
	const uint8_t *p = img;
	size_t hdr_end = HDR_JUMP + 2 + p[HDR_JUMP + 1]; /* the jump skips the header */
	struct e820_entry_x e820[BP_E820_MAX];
	unsigned n;

	(void)bi;
	memset(zp, 0, 4096);
	if (hdr_end > BZ_SETUP_HDR_END)
		hdr_end = BZ_SETUP_HDR_END;
	memcpy(zp + BZ_SETUP_HDR_OFF, p + BZ_SETUP_HDR_OFF, hdr_end - BZ_SETUP_HDR_OFF);
	wr16(zp, HDR_VID_MODE, 0xffff); /* "normal" */
	zp[HDR_TYPE_OF_LOADER] = 0xff;  /* undefined boot loader */
	zp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	wr16(zp, HDR_HEAP_END_PTR, 0xfe00 - 0x200);
	wr32(zp, HDR_CMD_LINE_PTR, (uint32_t)cmdline_addr);
	wr32(zp, BP_EXT_CMD_LINE_PTR, (uint32_t)(cmdline_addr >> 32));
	wr32(zp, HDR_RAMDISK_IMAGE, (uint32_t)initrd_addr);
	wr32(zp, BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_addr >> 32));
	wr32(zp, HDR_RAMDISK_SIZE, (uint32_t)initrd_size);
	wr32(zp, BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));
	wr64(zp, BP_ACPI_RSDP_ADDR, BOOT_ACPI_ADDR); /* vireo's ACPI tables start with the RSDP */
	n = bz_e820(e820, BP_E820_MAX, ram_low, ram_high);
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + BP_E820_TABLE, e820, n * sizeof(e820[0]));
}

void boot_build_page_tables(uint8_t *buf, uint64_t pml4_gpa)
{
	uint64_t *pml4 = (uint64_t *)buf;
	uint64_t *pdpt = (uint64_t *)(buf + 4096);
	uint64_t *pd = (uint64_t *)(buf + 2 * 4096);

	memset(buf, 0, BOOT_PT_SIZE);
	pml4[0] = (pml4_gpa + 4096) | 0x3;            /* present, writable */
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (pml4_gpa + (2 + i) * 4096) | 0x3;
	for (unsigned i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;   /* present, writable, 2 MiB page */
}

void boot_build_gdt(uint64_t *gdt)
{
	gdt[0] = 0;
	gdt[1] = 0x00cf9b000000ffffull; /* 0x08: 32-bit code, flat */
	gdt[2] = 0x00af9b000000ffffull; /* 0x10: 64-bit code (__BOOT_CS) */
	gdt[3] = 0x00cf93000000ffffull; /* 0x18: data, flat (__BOOT_DS) */
}

void bz_synth_header(uint8_t *h, struct bz_info *bi)
{
	memset(h, 0, 1024);
	h[HDR_SETUP_SECTS] = 1;
	wr16(h, HDR_BOOT_FLAG, 0xaa55);
	h[HDR_JUMP] = 0xeb;                      /* jmp over the header, to 0x268 */
	h[HDR_JUMP + 1] = BZ_SETUP_HDR_END - HDR_JUMP - 2;
	wr32(h, HDR_MAGIC, HDRS_MAGIC);
	wr16(h, HDR_VERSION, 0x20f);
	h[HDR_LOADFLAGS] = LOADED_HIGH;
	wr32(h, HDR_INITRD_MAX, 0x7fffffff);
	wr32(h, HDR_KERNEL_ALIGN, 0x1000000);
	wr16(h, HDR_XLOADFLAGS, XLF_KERNEL_64);
	wr32(h, HDR_CMDLINE_SIZE, 2047);
	memset(bi, 0, sizeof(*bi));
	bi->version = 0x20f;
	bi->initrd_addr_max = 0x7fffffff;
	bi->kernel_alignment = 0x1000000;
	bi->cmdline_size = 2047;
}

static bool bz_probe(const void *img, size_t len)
{
	const uint8_t *p = img;

	return len >= BZ_SETUP_HDR_END && rd32(p, HDR_MAGIC) == HDRS_MAGIC;
}

/* Populate [gpa, gpa+len) of guest RAM in one system call before vireo writes it all:
 * cheaper than a page fault per 4 KiB page (much cheaper on a nested host). Best effort. */
static void gm_prefault(struct vm *vm, uint64_t gpa, uint64_t len)
{
	uint8_t *p = gm_translate(&vm->mem, gpa, len);
	uintptr_t a, e;

	if (!p || !len)
		return;
	a = (uintptr_t)p & ~(uintptr_t)(GM_PAGE_SIZE - 1);
	e = (uintptr_t)p + len;
	madvise((void *)a, e - a, 23 /* MADV_POPULATE_WRITE */);
}

/* Read the whole initrd file into guest memory at the place bz_initrd_addr() picks. */
static int load_initrd(struct vm *vm, const struct bz_info *bi, uint64_t kernel_end,
		       uint64_t *addr, uint64_t *size)
{
	const char *path = vm->cfg.initrd;
	struct stat st;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		pr_err("initrd %s: %s", path, strerror(errno));
		goto out;
	}
	if (bz_initrd_addr(bi, vm->ram_low, kernel_end, st.st_size, addr) < 0) {
		pr_err("initrd %s (%lld bytes) does not fit in guest memory below %#x",
		       path, (long long)st.st_size, bi->initrd_addr_max);
		ret = -ENOSPC;
		goto out;
	}
	*size = st.st_size;
	ret = gm_load_fd(&vm->mem, *addr, fd, 0, *size);
	if (ret)
		pr_err("initrd %s: read failed: %s", path, strerror(-ret));
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The common end of the Linux loaders: command line, initrd, boot_params (setup header from
 * hdr_img, a bzImage or a synthesized header), page tables, GDT, and the 64-bit entry at
 * entry_addr. kernel_end is the first byte the kernel does not use (the initrd goes above). */
int linux_boot_finish(struct vm *vm, const void *hdr_img, const struct bz_info *bi,
		      uint64_t kernel_end, uint64_t entry_addr, struct boot_entry *entry)
{
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	char pvm_cmdline[BOOT_CMDLINE_MAX];
	size_t cmdlen = strlen(cmdline);
	uint64_t initrd_addr = 0, initrd_size = 0;
	uint8_t zp[4096], pt[BOOT_PT_SIZE];
	uint64_t gdt[BOOT_GDT_ENTRIES];
	int ret;

	if (kernel_end > vm->ram_low) {
		pr_err("kernel %s needs %llu MiB of memory; --memory is too small",
		       vm->cfg.kernel, (unsigned long long)(kernel_end >> 20) + 1);
		return -ENOSPC;
	}
	/* PVM (vm_kvm_is_pvm) lets guest kernel code see the host's CPUID whatever vireo's
	 * table says, and its emulator cannot execute some of those instructions: Linux must
	 * be told not to use them (see PVM_LINUX_PARAMS). */
	if (vm_kvm_is_pvm() && !strstr(cmdline, "clearcpuid=") &&
	    cmdlen + sizeof(PVM_LINUX_PARAMS) + 1 <= sizeof(pvm_cmdline)) {
		snprintf(pvm_cmdline, sizeof(pvm_cmdline), "%s%s" PVM_LINUX_PARAMS, cmdline,
			 cmdlen ? " " : "");
		cmdline = pvm_cmdline;
		cmdlen = strlen(cmdline);
		pr_info("PVM KVM: \"" PVM_LINUX_PARAMS "\" added to the kernel command line");
	}
	if (cmdlen >= BOOT_CMDLINE_MAX || (bi->cmdline_size && cmdlen > bi->cmdline_size)) {
		pr_err("command line too long (%zu bytes, the kernel takes %u)", cmdlen,
		       bi->cmdline_size);
		return -E2BIG;
	}
	ret = gm_write(&vm->mem, BOOT_CMDLINE_ADDR, cmdline, cmdlen + 1);
	if (ret)
		return ret;
	if (vm->cfg.initrd) {
		ret = load_initrd(vm, bi, kernel_end, &initrd_addr, &initrd_size);
		if (ret)
			return ret;
	}
	bz_fill_boot_params(zp, hdr_img, bi, BOOT_CMDLINE_ADDR, initrd_addr, initrd_size,
			    vm->ram_low, vm->ram_high);
	boot_build_page_tables(pt, BOOT_PML4_ADDR);
	boot_build_gdt(gdt);
	ret = gm_write(&vm->mem, BOOT_ZEROPAGE_ADDR, zp, sizeof(zp));
	if (!ret)
		ret = gm_write(&vm->mem, BOOT_PML4_ADDR, pt, sizeof(pt));
	if (!ret)
		ret = gm_write(&vm->mem, BOOT_GDT_ADDR, gdt, sizeof(gdt));
	if (ret)
		return ret;
	*entry = (struct boot_entry){
		.mode = BOOT_MODE_LONG64,
		.rip = entry_addr,
		.rsp = BOOT_STACK_TOP,
		.rsi = BOOT_ZEROPAGE_ADDR,
	};
	pr_info("Linux boot protocol %x.%02x: entry %#llx; initrd %llu bytes at %#llx",
		bi->version >> 8, bi->version & 0xff, (unsigned long long)entry_addr,
		(unsigned long long)initrd_size, (unsigned long long)initrd_addr);
	return 0;
}

/* The protected-mode kernel into guest RAM: from the file by gm_load_fd() (a copy in the
 * kernel, about twice as fast here as populating the pages and copying from the mapping),
 * or from the mapping img when there is no file (tests) or it has shrunk since. The file is
 * the one open_kernel mapped (vm->cfg.kernel_fd), not the path opened again. */
static int bz_copy_kernel(struct vm *vm, const void *img, size_t len, const struct bz_info *bi)
{
	int fd = vm->cfg.kernel_fd, ret = -1;
	struct stat st;

	if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size == len)
		ret = gm_load_fd(&vm->mem, bi->load_addr, fd, bi->kernel_off, bi->kernel_size);
	if (!ret)
		return 0;
	gm_prefault(vm, bi->load_addr, bi->kernel_size);
	return gm_write(&vm->mem, bi->load_addr, (const uint8_t *)img + bi->kernel_off,
			bi->kernel_size);
}

static int bz_load(struct vm *vm, const void *img, size_t len, struct boot_entry *entry)
{
	struct bz_info bi;
	const char *why;
	int ret;

	ret = bz_parse(img, len, &bi, &why);
	if (ret < 0) {
		pr_err("kernel %s: %s", vm->cfg.kernel, why);
		return ret;
	}
	/* An LZ4 payload is unpacked here and its ELF loaded directly (vmlinux.c): no guest
	 * decompressor to run. Other payloads: the guest decompresses. */
	ret = bz_load_unpacked(vm, img, &bi, entry);
	if (ret != -ENOTSUP)
		return ret;
	if (bi.load_addr + bi.init_size > vm->ram_low) {
		pr_err("kernel %s needs %llu MiB of memory from 1 MiB; --memory is too small",
		       vm->cfg.kernel, (unsigned long long)((bi.load_addr + bi.init_size) >> 20) + 1);
		return -ENOSPC;
	}
	ret = bz_copy_kernel(vm, img, len, &bi);
	if (ret)
		return ret;
	return linux_boot_finish(vm, img, &bi, bi.load_addr + bi.init_size,
				 bi.load_addr + 0x200, entry);
}

const struct kernel_loader bzimage_loader = {
	.name = "bzImage",
	.probe = bz_probe,
	.load = bz_load,
};
