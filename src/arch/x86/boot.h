/* x86 kernel loading. A loader puts a kernel image (and its initrd/modules, command line,
 * boot information) into guest memory and says how the boot vCPU starts: struct boot_entry.
 *
 * `vireo run --kernel FILE` tries the loaders of x86_loaders[] (src/arch/x86/loaders.c) in
 * order; the first whose probe() accepts the image loads it. Loaders:
 *   bzImage   the Linux x86 boot protocol, 64-bit entry (this file, boot.c)
 *   multiboot multiboot v1 ELF kernels (kvm-unit-tests style; src/arch/x86/multiboot.c)
 *
 * The bzImage pieces are pure functions over buffers (no KVM) so that tests/unit/test_boot.c
 * checks them field by field.
 */
#ifndef VIREO_ARCH_X86_BOOT_H
#define VIREO_ARCH_X86_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

struct vm;

/* How the boot vCPU starts. The other vCPUs wait for INIT/SIPI from the boot vCPU. */
enum boot_mode {
	BOOT_MODE_LONG64,  /* 64-bit long mode, identity-mapped first 4 GiB (VMM page tables) */
	BOOT_MODE_PROT32,  /* 32-bit protected mode, flat 4 GiB segments, paging off (multiboot) */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t rsp;
	uint64_t rax;
	uint64_t rbx;
	uint64_t rsi;
};

struct kernel_loader {
	const char *name;
	/* Does this loader accept the image? Must not print. */
	bool (*probe)(const void *img, size_t len);
	/* Load the image and what vm->cfg names (cmdline, initrd/module) into vm->mem and fill
	 * entry. On error prints one line naming the problem and returns -errno. */
	int (*load)(struct vm *vm, const void *img, size_t len, struct boot_entry *entry);
};

/* NULL-terminated list, in probe order. */
extern const struct kernel_loader *const x86_loaders[];

/* ---- Guest-physical layout used by the x86 loaders ---- */
#define BOOT_GDT_ADDR      0x500ull    /* GDT, 4 entries */
#define BOOT_ZEROPAGE_ADDR 0x7000ull   /* struct boot_params */
#define BOOT_STACK_TOP     0x8ff0ull
#define BOOT_PML4_ADDR     0x9000ull   /* PML4, PDPT at +0x1000, 4 PDs at +0x2000.. */
#define BOOT_CMDLINE_ADDR  0x20000ull
#define BOOT_CMDLINE_MAX   0x10000ull  /* bytes, with the NUL */
#define BOOT_ACPI_ADDR     0xe0000ull  /* ACPI tables (RSDP found by the BIOS-area scan) */
#define BOOT_ACPI_SIZE     0x20000ull
#define BOOT_KERNEL_ADDR   0x100000ull /* protected-mode kernel (1 MiB) */
#define BOOT_EBDA_START    0x9fc00ull  /* end of low RAM in e820 (640 KiB - 1 KiB) */

/* ---- bzImage (Linux boot protocol, Documentation/arch/x86/boot.rst) ---- */

/* Offsets inside the image / boot_params, and the setup header's size (0x1f1..0x268). */
#define BZ_SETUP_HDR_OFF  0x1f1
#define BZ_SETUP_HDR_END  0x268

struct e820_entry_x {
	uint64_t addr;
	uint64_t size;
	uint32_t type;         /* 1 RAM, 2 reserved, 3 ACPI */
} __attribute__((packed));

struct bz_info {
	uint16_t version;      /* boot protocol version */
	uint8_t setup_sects;
	uint32_t setup_size;   /* (setup_sects + 1) * 512 */
	uint32_t kernel_off;   /* offset of the protected-mode kernel in the image */
	uint32_t kernel_size;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	bool relocatable;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t cmdline_size; /* max command line length without the NUL */
	uint64_t load_addr;    /* where vireo loads the protected-mode kernel */
	uint32_t payload_off;  /* compressed payload, from kernel_off (protocol 2.08+) */
	uint32_t payload_len;
};

/* Parse and validate a bzImage. Returns 0, or -ENOEXEC (not a bzImage: no "HdrS" magic or
 * too short), -EPROTONOSUPPORT (protocol older than 2.06 or not LOADED_HIGH), with a reason
 * in *why (a static string). */
int bz_parse(const void *img, size_t len, struct bz_info *bi, const char **why);

/* The e820 map for ram_low bytes at 0 and ram_high bytes at 4 GiB. Returns the count. */
unsigned bz_e820(struct e820_entry_x *out, unsigned max, uint64_t ram_low, uint64_t ram_high);

/* Where the initrd goes: the highest 2 MiB-aligned (page-aligned if it does not fit)
 * address so that it ends below min(ram_low, initrd_addr_max + 1) and above the kernel.
 * Returns 0 and *addr, or -ENOSPC. */
int bz_initrd_addr(const struct bz_info *bi, uint64_t ram_low, uint64_t kernel_end,
		   uint64_t initrd_size, uint64_t *addr);

/* Fill the 4096-byte zero page: setup header copied from the image, type_of_loader 0xff,
 * CAN_USE_HEAP, command line pointer, initrd, e820 map. */
void bz_fill_boot_params(uint8_t *zp, const void *img, const struct bz_info *bi,
			 uint64_t cmdline_addr, uint64_t initrd_addr, uint64_t initrd_size,
			 uint64_t ram_low, uint64_t ram_high);

/* Identity-map the first 4 GiB with 2 MiB pages: PML4 at pml4_gpa; buf (host view of
 * [pml4_gpa, pml4_gpa + BOOT_PT_SIZE)) gets PML4, PDPT and 4 page directories. */
#define BOOT_PT_SIZE (6 * 4096)
void boot_build_page_tables(uint8_t *buf, uint64_t pml4_gpa);

/* The boot GDT: null, null, 64-bit code (0x10), data (0x18); 32-bit code at 0x08 for
 * BOOT_MODE_PROT32. */
#define BOOT_GDT_ENTRIES 4
void boot_build_gdt(uint64_t *gdt);

/* Build the setup header of a kernel that has none (an ELF vmlinux): a 1024-byte image
 * whose header bz_fill_boot_params() copies. */
void bz_synth_header(uint8_t *hdr_img, struct bz_info *bi);

/* Shared end of the Linux loaders (boot.c): command line, initrd, boot_params, page tables,
 * GDT, 64-bit entry at entry_addr. 0 or -errno (one line printed). */
int linux_boot_finish(struct vm *vm, const void *hdr_img, const struct bz_info *bi,
		      uint64_t kernel_end, uint64_t entry_addr, struct boot_entry *entry);
/* vmlinux.c: load a bzImage whose payload vireo can unpack (LZ4) as its ELF vmlinux.
 * -ENOTSUP when it cannot (other compression): load the bzImage as usual then. */
int bz_load_unpacked(struct vm *vm, const void *img, const struct bz_info *bi,
		     struct boot_entry *entry);

extern const struct kernel_loader bzimage_loader;
extern const struct kernel_loader vmlinux_loader;

/* Make the pages of a read-only kernel file mapping present in one call before reading it
 * all (cheaper than a fault per page, much cheaper on a nested host). Best effort. */
static inline void boot_populate_read(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;

	if (len)
		madvise((void *)a, (uintptr_t)p + len - a, 22 /* MADV_POPULATE_READ */);
}

#endif
