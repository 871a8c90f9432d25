/* libFuzzer target for the ELF vmlinux loaders (src/arch/x86/vmlinux.c): a kernel file is
 * hostile input. Byte 0: bits 0-6 pick an LZ4 block size, bit 7 clear stamps a valid ELF64
 * x86-64 ET_EXEC identification (magic, class, data, type, machine, program header entry
 * size) over the image, so the fuzzer spends its time on program headers and segments even
 * from an empty corpus. The rest is an ELF image (file header, program headers and segments as the fuzzer makes them),
 * loaded two ways into 16 MiB of guest RAM at 0:
 *   - as `--kernel vmlinux` (vmlinux_loader);
 *   - as the payload of a synthetic bzImage whose LZ4 stream holds the image in literal-only
 *     blocks of 16..2048 bytes (so headers and segments straddle blocks), unpacked on the host:
 *     block by block into segments, or the whole stream when that fails (bz_load_unpacked).
 * Checked: no crash, no access outside the image, the unpack buffers or guest memory
 * (ASan/UBSan), and when a load succeeds, its entry lies in guest RAM above 1 MiB and both
 * ways agree on it. The LZ4 decoder itself has fuzz_lz4. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "core/vm.h"
#include "util/log.h"
#include "util/lz4.h"

#define RAM       (16u << 20)
#define SETUP     (5 * 512u)
#define MAX_IMAGE (1u << 16)

static struct vm vm;
static uint8_t bz[SETUP + 4 + 2 * MAX_IMAGE + 4];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Every refusal is explained with pr_err(); keep the fuzzer's log readable. Sanitizer
	 * reports go to fd 2 directly and are not affected. */
	stderr = fopen("/dev/null", "w");
	if (!stderr || gm_init(&vm.mem) || gm_add_ram(&vm.mem, 0, RAM, 0) < 0)
		abort();
	vm.cfg.kernel = "fuzz";
	vm.cfg.kernel_fd = -1;
	vm.cfg.cmdline = "console=ttyS0";
	vm.cfg.unpack = VM_UNPACK_HOST;
	vm.ram_size = vm.ram_low = RAM;
	return 0;
}

/* One literal-only LZ4 legacy block of the n bytes at src, at out; returns its length. */
static size_t literal_block(uint8_t *out, const uint8_t *src, uint32_t n)
{
	size_t o = 4;
	uint32_t len;

	if (n < 15) {
		out[o++] = (uint8_t)(n << 4);
	} else {
		out[o++] = 0xf0;
		for (uint32_t r = n - 15;; r -= 255) {
			out[o++] = r >= 255 ? 255 : (uint8_t)r;
			if (r < 255)
				break;
		}
	}
	memcpy(out + o, src, n);
	o += n;
	len = (uint32_t)(o - 4);
	memcpy(out, &len, 4);
	return o;
}

/* A bzImage (protocol 2.15, 64-bit) whose payload is img in LZ4 blocks of blk bytes. */
static size_t make_bzimage(const uint8_t *img, uint32_t len, uint32_t blk)
{
	size_t o = SETUP + 4;
	uint32_t v;

	memset(bz, 0, SETUP);
	bz[0x1f1] = 4;                                    /* setup_sects */
	bz[0x201] = 0x66;                                 /* the jump: header up to 0x268 */
	memcpy(bz + 0x202, "HdrS", 4);
	v = 0x20f; memcpy(bz + 0x206, &v, 2);
	bz[0x211] = 1;                                    /* LOADED_HIGH */
	v = 0x7fffffff; memcpy(bz + 0x22c, &v, 4);        /* initrd_addr_max */
	v = 1; memcpy(bz + 0x236, &v, 2);                 /* XLF_KERNEL_64 */
	v = 2047; memcpy(bz + 0x238, &v, 4);              /* cmdline_size */
	v = LZ4_LEGACY_MAGIC; memcpy(bz + SETUP, &v, 4);
	for (uint32_t off = 0; off < len; off += blk)
		o += literal_block(bz + o, img + off, len - off < blk ? len - off : blk);
	memcpy(bz + o, &len, 4);                          /* the unpacked size */
	o += 4;
	v = 0; memcpy(bz + 0x248, &v, 4);                 /* payload_offset */
	v = (uint32_t)(o - SETUP); memcpy(bz + 0x24c, &v, 4); /* payload_length */
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct boot_entry e1, e2;
	struct bz_info bi;
	const char *why;
	uint32_t blk;
	uint8_t *img;
	size_t bzlen;
	int r1, r2;

	if (size < 1 || size - 1 > MAX_IMAGE)
		return 0;
	blk = 16u * (1u + (data[0] & 0x7f));
	/* a heap copy of exactly the image: a read past its end is an ASan report */
	img = malloc(size - 1 ? size - 1 : 1);
	if (!img)
		abort();
	memcpy(img, data + 1, size - 1);
	if (!(data[0] & 0x80) && size - 1 >= sizeof(Elf64_Ehdr)) {
		Elf64_Ehdr *eh = (Elf64_Ehdr *)img;

		memcpy(eh->e_ident, ELFMAG, SELFMAG);
		eh->e_ident[EI_CLASS] = ELFCLASS64;
		eh->e_ident[EI_DATA] = ELFDATA2LSB;
		eh->e_type = ET_EXEC;
		eh->e_machine = EM_X86_64;
		eh->e_phentsize = sizeof(Elf64_Phdr);
	}
	r1 = vmlinux_loader.probe(img, size - 1) ?
		vmlinux_loader.load(&vm, img, size - 1, &e1) : -ENOEXEC;
	if (!r1 && (e1.rip < BOOT_KERNEL_ADDR || e1.rip >= RAM))
		abort();
	bzlen = make_bzimage(img, (uint32_t)(size - 1), blk);
	if (bz_parse(bz, bzlen, &bi, &why))
		abort(); /* the header above is valid */
	r2 = bz_load_unpacked(&vm, bz, &bi, &e2);
	if (!r2 && (e2.rip < BOOT_KERNEL_ADDR || e2.rip >= RAM))
		abort();
	if (!r1 && !r2 && e1.rip != e2.rip)
		abort();
	free(img);
	return 0;
}
