/* Loading an uncompressed ELF vmlinux (Firecracker-style 64-bit boot): its PT_LOAD segments
 * go to their physical addresses, the boot vCPU starts at the ELF entry (startup_64's
 * physical address) with boot_params in rsi. Two users:
 *   - vmlinux_loader: --kernel is an ELF64 x86-64 vmlinux (setup header synthesized);
 *   - bz_load_unpacked(): a bzImage whose payload is LZ4 is unpacked on the host and loaded
 *     the same way, keeping the bzImage's setup header. The guest then runs no decompressor,
 *     which matters a lot where KVM emulates guest kernel code (nested paravirtual KVM). */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "arch/x86/boot.h"
#include "core/vm.h"
#include "util/log.h"
#include "util/lz4.h"

#define VMLINUX_MAX (512ull << 20)   /* an unpacked kernel above this is refused */

static bool elf_ok(const void *img, size_t len)
{
	const Elf64_Ehdr *eh = img;

	return len >= sizeof(*eh) && !memcmp(eh->e_ident, ELFMAG, SELFMAG) &&
	       eh->e_ident[EI_CLASS] == ELFCLASS64 && eh->e_ident[EI_DATA] == ELFDATA2LSB &&
	       eh->e_machine == EM_X86_64 && eh->e_type == ET_EXEC;
}

/* Checks PT_LOAD segment i of an ELF image of len bytes against the image and guest RAM;
 * prints why and returns -ENOEXEC when it does not fit. */
static int elf_segment_ok(struct vm *vm, const Elf64_Phdr *ph, size_t len, unsigned i)
{
	if (ph->p_filesz > ph->p_memsz || ph->p_offset > len || ph->p_filesz > len - ph->p_offset ||
	    ph->p_paddr < BOOT_KERNEL_ADDR || ph->p_memsz > vm->ram_low ||
	    ph->p_paddr > vm->ram_low - ph->p_memsz) {
		pr_err("kernel %s: ELF segment %u (%#llx+%#llx) outside guest RAM "
		       "(--memory too small?)", vm->cfg.kernel, i,
		       (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
		return -ENOEXEC;
	}
	return 0;
}

/* The program headers of an ELF image whose first avail bytes are at img (len in all),
 * checked. Returns their number (PT_LOAD or not, at most max), -EAGAIN when they lie beyond
 * avail or are more than max, -ENOEXEC (printed) when bad. */
static int elf_phdrs(struct vm *vm, const uint8_t *img, size_t avail, size_t len,
		     Elf64_Phdr *ph, unsigned max)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	uint64_t phend = eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);

	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > len || phend > len ||
	    phend < eh->e_phoff) {
		pr_err("kernel %s: bad ELF program headers", vm->cfg.kernel);
		return -ENOEXEC;
	}
	if (phend > avail || eh->e_phnum > max)
		return -EAGAIN;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		memcpy(&ph[i], img + eh->e_phoff + i * sizeof(*ph), sizeof(*ph));
		if (ph[i].p_type == PT_LOAD && elf_segment_ok(vm, &ph[i], len, i))
			return -ENOEXEC;
	}
	return eh->e_phnum;
}

/* Copy the PT_LOAD segments into guest RAM (which is still all zero beyond what the loader
 * wrote below 1 MiB, so .bss needs no clearing). Sets *end to the highest byte used. */
static int elf_load_segments(struct vm *vm, const uint8_t *img, size_t len, uint64_t *end)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
	Elf64_Phdr ph;
	uint64_t phend = eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);

	*end = 0;
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > len || phend > len ||
	    phend < eh->e_phoff) {
		pr_err("kernel %s: bad ELF program headers", vm->cfg.kernel);
		return -ENOEXEC;
	}
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		memcpy(&ph, img + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		if (elf_segment_ok(vm, &ph, len, i))
			return -ENOEXEC;
		if (gm_write(&vm->mem, ph.p_paddr, img + ph.p_offset, ph.p_filesz))
			return -EFAULT;
		if (ph.p_paddr + ph.p_memsz > *end)
			*end = ph.p_paddr + ph.p_memsz;
	}
	if (!*end) {
		pr_err("kernel %s: no loadable ELF segment", vm->cfg.kernel);
		return -ENOEXEC;
	}
	return 0;
}

/* The entry point must lie in the loaded kernel; then boot_params and the rest. */
static int elf_finish(struct vm *vm, uint64_t e_entry, uint64_t end, const void *hdr_img,
		      const struct bz_info *bi, struct boot_entry *entry)
{
	if (e_entry < BOOT_KERNEL_ADDR || e_entry >= end) {
		pr_err("kernel %s: ELF entry %#llx is not a physical address in the kernel",
		       vm->cfg.kernel, (unsigned long long)e_entry);
		return -ENOEXEC;
	}
	return linux_boot_finish(vm, hdr_img, bi, (end + GM_PAGE_SIZE - 1) & ~(GM_PAGE_SIZE - 1),
				 e_entry, entry);
}

static int elf_boot(struct vm *vm, const void *elf, size_t len, const void *hdr_img,
		    const struct bz_info *bi, struct boot_entry *entry)
{
	const Elf64_Ehdr *eh = elf;
	uint64_t end;
	int ret = elf_load_segments(vm, elf, len, &end);

	return ret ? ret : elf_finish(vm, eh->e_entry, end, hdr_img, bi, entry);
}

#define STREAM_MAX_PHDRS 32

/* Each unpacked block's share of the PT_LOAD segments (file offsets [fo, fo + n)) into
 * guest RAM. */
static int stream_copy(struct vm *vm, const uint8_t *blk, uint64_t fo, size_t n,
		       const Elf64_Phdr *ph, int nph)
{
	for (int i = 0; i < nph; i++) {
		uint64_t a = ph[i].p_offset, b = ph[i].p_offset + ph[i].p_filesz;

		if (ph[i].p_type != PT_LOAD || b <= fo || a >= fo + n)
			continue;
		a = a > fo ? a : fo;
		b = b < fo + n ? b : fo + n;
		if (gm_write(&vm->mem, ph[i].p_paddr + (a - ph[i].p_offset), blk + (a - fo), b - a))
			return -EFAULT;
	}
	return 0;
}

/* The LZ4 payload unpacked one block at a time (legacy blocks are independent, at most
 * 8 MiB each) into one reused buffer, each block's share of the segments copied to guest RAM
 * as it comes: no temporary image of the whole vmlinux (53 MB for Debian's), whose pages
 * cost about as much to fault in and clear as the copy itself. The first block must hold
 * the ELF and program headers; every segment is checked before anything is copied.
 * -EAGAIN when the payload cannot be unpacked this way (the caller then unpacks it whole). */
static int unpack_streamed(struct vm *vm, const uint8_t *p, size_t plen, uint32_t size,
			   const void *hdr_img, const struct bz_info *bi, struct boot_entry *entry)
{
	Elf64_Phdr ph[STREAM_MAX_PHDRS];
	uint64_t fo = 0, end = 0, e_entry = 0;
	size_t pos = 0;
	int nph = 0, ret = 0;
	ssize_t n;
	uint8_t *buf = mmap(NULL, LZ4_LEGACY_BLOCK_MAX, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (buf == MAP_FAILED)
		return -EAGAIN;
	madvise(buf, LZ4_LEGACY_BLOCK_MAX, MADV_HUGEPAGE);
	while (!ret && (n = lz4_legacy_next(p, plen, &pos, buf, LZ4_LEGACY_BLOCK_MAX)) > 0) {
		if (fo == 0) {
			if (!elf_ok(buf, n)) {
				ret = -EAGAIN;
				break;
			}
			e_entry = ((const Elf64_Ehdr *)buf)->e_entry;
			nph = elf_phdrs(vm, buf, n, size, ph, STREAM_MAX_PHDRS);
			ret = nph < 0 ? nph : 0;
			for (int i = 0; i < nph; i++)
				if (ph[i].p_type == PT_LOAD && ph[i].p_paddr + ph[i].p_memsz > end)
					end = ph[i].p_paddr + ph[i].p_memsz;
			if (!ret && !end) {
				pr_err("kernel %s: no loadable ELF segment", vm->cfg.kernel);
				ret = -ENOEXEC;
			}
		}
		if (!ret && (n > (ssize_t)(size - fo) || stream_copy(vm, buf, fo, n, ph, nph)))
			ret = -EAGAIN;
		fo += n;
	}
	munmap(buf, LZ4_LEGACY_BLOCK_MAX);
	if (!ret && fo != size)
		ret = -EAGAIN;  /* a corrupt block, or not the size the trailer says */
	if (ret)
		return ret;
	pr_info("kernel %s: LZ4 payload unpacked on the host, block by block (%u bytes)",
		vm->cfg.kernel, size);
	return elf_finish(vm, e_entry, end, hdr_img, bi, entry);
}

/* Host-side unpacking pays off where KVM emulates guest kernel code: a nested, paravirtual
 * KVM (PVM) runs an unmodified kernel's decompressor about a thousand times slower than the
 * host. On hardware-assisted KVM the guest decompresses as fast, and vireo starts sooner. */
static bool unpack_on_host(const struct vm *vm)
{
	if (vm->cfg.unpack != VM_UNPACK_AUTO)
		return vm->cfg.unpack == VM_UNPACK_HOST;
	return vm_kvm_is_pvm();
}

int bz_load_unpacked(struct vm *vm, const void *img, const struct bz_info *bi,
		     struct boot_entry *entry)
{
	const uint8_t *p = (const uint8_t *)img + bi->kernel_off;
	uint32_t magic, size;
	uint8_t *out;
	ssize_t n;
	int ret;

	if (!unpack_on_host(vm))
		return -ENOTSUP;
	if (!bi->payload_len || bi->payload_off > bi->kernel_size ||
	    bi->payload_len > bi->kernel_size - bi->payload_off || bi->payload_len < 8)
		return -ENOTSUP;
	p += bi->payload_off;
	memcpy(&magic, p, 4);
	if (magic != LZ4_LEGACY_MAGIC)
		return -ENOTSUP;
	memcpy(&size, p + bi->payload_len - 4, 4);   /* the build appends the unpacked size */
	if (size < sizeof(Elf64_Ehdr) || size > VMLINUX_MAX)
		return -ENOTSUP;
	boot_populate_read(p, bi->payload_len); /* the compressed input: one call, not a fault per page */
	ret = unpack_streamed(vm, p, bi->payload_len, size, img, bi, entry);
	if (ret != -EAGAIN)
		return ret;
	out = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (out == MAP_FAILED)
		return -ENOTSUP;
	madvise(out, size, MADV_HUGEPAGE);   /* fewer page faults while unpacking */
	n = lz4_legacy_decompress(p, bi->payload_len, out, size);
	if (n != (ssize_t)size || !elf_ok(out, size)) {
		pr_debug("kernel %s: LZ4 payload not unpacked (%zd): guest decompresses",
			 vm->cfg.kernel, n);
		ret = -ENOTSUP;
	} else {
		pr_info("kernel %s: LZ4 payload unpacked on the host (%u bytes)", vm->cfg.kernel,
			size);
		ret = elf_boot(vm, out, size, img, bi, entry);
	}
	munmap(out, size);
	return ret;
}

static bool vmlinux_probe(const void *img, size_t len)
{
	return elf_ok(img, len);
}

static int vmlinux_load(struct vm *vm, const void *img, size_t len, struct boot_entry *entry)
{
	uint8_t hdr[1024];
	struct bz_info bi;

	bz_synth_header(hdr, &bi);
	boot_populate_read(img, len);
	return elf_boot(vm, img, len, hdr, &bi, entry);
}

const struct kernel_loader vmlinux_loader = {
	.name = "vmlinux",
	.probe = vmlinux_probe,
	.load = vmlinux_load,
};
