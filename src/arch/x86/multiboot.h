/* Multiboot v1 kernels (S2 in shared/MISSION.md): the boot protocol kvm-unit-tests style test
 * kernels use. vireo finds the multiboot header in the first 8 KiB of the file, loads the ELF
 * (ELF32, or ELF64 whose entry point is below 4 GiB) or a.out-kludge image into guest memory,
 * builds the multiboot information structure (memory sizes, memory map, command line, one
 * module). The entry state the specification promises (EAX = 0x2BADB002, EBX = physical
 * address of the information structure, flat 4 GiB segments, CR0.PE, paging and interrupts
 * off) is BOOT_MODE_PROT32 of boot.h, set up by src/arch/x86/vcpu_setup.c.
 *
 * Everything a kernel file controls is checked: a header or segment that points outside the
 * file, outside guest RAM, into the boot-information area or the legacy hole below 1 MiB, or
 * over another segment is refused with a message naming the field, and nothing is written
 * outside guest memory.
 *
 * Guest-physical layout used for the boot information (all below 640 KiB):
 *   MB_INFO_ADDR     struct mb_info, then the module list, the memory map, loader name,
 *                    module string
 *   MB_CMDLINE_ADDR  the command line (at most MB_CMDLINE_MAX bytes with its NUL)
 * The module goes on the first page boundary after the kernel's last byte (and above 1 MiB).
 * The memory map reports [MB_LOW_RAM_END, 1 MiB) reserved (EBDA, VGA, ROMs, the ACPI tables
 * the VMM puts at 0xe0000).
 */
#ifndef VIREO_ARCH_X86_MULTIBOOT_H
#define VIREO_ARCH_X86_MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memory/guest_memory.h"

#define MB_HEADER_MAGIC   0x1BADB002u /* in the kernel file */
#define MB_BOOT_MAGIC     0x2BADB002u /* in EAX at entry */
#define MB_SEARCH_BYTES   8192u       /* the header lies within the file's first 8 KiB */

/* Header flags (bits 0-15 are requirements: a loader that lacks one must refuse). */
#define MB_HF_PAGE_ALIGN  (1u << 0)   /* modules page aligned */
#define MB_HF_MEMINFO     (1u << 1)   /* mem_* and mmap_* fields wanted */
#define MB_HF_VIDEO       (1u << 2)   /* video mode table wanted (no video: warned, ignored) */
#define MB_HF_AOUT_KLUDGE (1u << 16)  /* header carries the load addresses */

/* Info flags. */
#define MB_IF_MEM         (1u << 0)
#define MB_IF_CMDLINE     (1u << 2)
#define MB_IF_MODS        (1u << 3)
#define MB_IF_MMAP        (1u << 6)
#define MB_IF_LOADER_NAME (1u << 9)

#define MB_MMAP_AVAILABLE 1u
#define MB_MMAP_RESERVED  2u

/* Guest-physical placement of the boot information. The first page (real-mode IVT, the
 * VMM's boot GDT) and the boot-information area are refused to kernel segments. */
#define MB_INFO_ADDR      0x10000u
#define MB_MODS_ADDR      (MB_INFO_ADDR + 0x100u)
#define MB_MMAP_ADDR      (MB_INFO_ADDR + 0x200u)
#define MB_MMAP_MAX       32u         /* entries */
#define MB_LOADER_ADDR    (MB_INFO_ADDR + 0x600u)
#define MB_MODSTR_ADDR    (MB_INFO_ADDR + 0x700u)
#define MB_MODSTR_MAX     0x900u      /* bytes with the NUL */
#define MB_CMDLINE_ADDR   (MB_INFO_ADDR + 0x1000u)
#define MB_CMDLINE_MAX    0x2000u     /* bytes with the NUL */
#define MB_AREA_START     MB_INFO_ADDR
#define MB_AREA_END       (MB_CMDLINE_ADDR + MB_CMDLINE_MAX)
#define MB_FIRST_PAGE_END 0x1000u
#define MB_LOW_RAM_END    0x9fc00u    /* 639 KiB: EBDA and the legacy hole (VGA, ROMs) follow */
#define MB_HIGH_RAM_START 0x100000u

/* The multiboot information structure (multiboot 0.6.96, section 3.3), as the guest sees it. */
struct mb_info {
	uint32_t flags;
	uint32_t mem_lower;   /* KiB from 0 */
	uint32_t mem_upper;   /* KiB from 1 MiB up to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length; /* bytes */
	uint32_t mmap_addr;
	uint32_t drives_length;
	uint32_t drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe[6];
} __attribute__((packed));

struct mb_module {
	uint32_t mod_start;
	uint32_t mod_end;     /* first byte after the module */
	uint32_t string;
	uint32_t reserved;
} __attribute__((packed));

/* A memory map entry; size counts the bytes after itself (20). */
struct mb_mmap_entry {
	uint32_t size;
	uint64_t addr;
	uint64_t len;
	uint32_t type;
} __attribute__((packed));

/* The multiboot header as found in the file. */
struct mb_header {
	uint32_t offset;      /* of the magic, in the file */
	uint32_t flags;
	/* Valid with MB_HF_AOUT_KLUDGE: */
	uint32_t header_addr;
	uint32_t load_addr;
	uint32_t load_end_addr;
	uint32_t bss_end_addr;
	uint32_t entry_addr;
};

/* What the caller provides besides the kernel. */
struct mb_boot_config {
	const char *cmdline;      /* NULL: none */
	const void *module;       /* NULL: no module */
	size_t module_len;
	const char *module_name;  /* the module's string; NULL: "" */
};

/* Where things ended up. */
struct mb_load_result {
	uint32_t entry;
	uint32_t info_addr;
	uint64_t kernel_start;    /* lowest byte a segment occupies */
	uint64_t kernel_end;      /* first byte after the highest segment (with bss) */
	uint64_t module_start;    /* 0 when no module */
	uint64_t module_end;
};

/* Looks for a valid multiboot header in the first MB_SEARCH_BYTES of img.
 * Returns 0 (and fills *hdr), -ENOENT when there is no magic at all (not a multiboot kernel),
 * -EINVAL when a magic is found but the header is malformed (bad checksum, truncated,
 * unsupported required flags), with an error logged. */
int mb_probe(const void *img, size_t len, struct mb_header *hdr);

/* True when img carries a multiboot magic with a valid checksum (no logging). */
bool mb_detect(const void *img, size_t len);
/* True when img has a multiboot magic in its first 8 KiB, valid header or not (no logging):
 * the kernel is meant to be multiboot, so mb_load() should say what is wrong with it. */
bool mb_claims(const void *img, size_t len);

/* Reads a whole regular file of at most 1 GiB into a malloc()ed buffer. 0 or -errno
 * (logged). */
int mb_read_file(const char *path, uint8_t **buf, size_t *len);

/* Loads the kernel image and the boot information into gm. Returns 0 or -errno
 * (-ENOENT not multiboot, -EINVAL malformed kernel, -EFAULT something falls outside RAM,
 * -E2BIG command line or module string too long, -ENOSPC no room for the module), each
 * failure logged with its reason. */
int mb_load(struct guest_memory *gm, const void *img, size_t len,
	    const struct mb_boot_config *cfg, struct mb_load_result *res);

/* Builds the memory map of gm's RAM as the guest should see it (the legacy hole reserved).
 * Returns the number of entries (at most max) or -ENOSPC. Exposed for tests. */
int mb_build_mmap(const struct guest_memory *gm, struct mb_mmap_entry *out, unsigned max);

/* The `vireo run` hook: reads path; when it is a multiboot kernel, loads it with the given
 * command line and the file initrd (may be NULL) as its one module. Returns 0 when loaded,
 * MB_NOT_MULTIBOOT (positive) when path is readable but not a multiboot kernel (the caller
 * tries another format or reports its own error), -errno on failure (logged). */
#define MB_NOT_MULTIBOOT 1
int mb_load_file(struct guest_memory *gm, const char *path, const char *cmdline,
		 const char *initrd, struct mb_load_result *res);

/* The entry of x86_loaders[] (boot.h) for multiboot kernels: src/arch/x86/multiboot_loader.c. */
struct kernel_loader;
extern const struct kernel_loader multiboot_loader;

#endif
