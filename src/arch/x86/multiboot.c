/* Multiboot v1 loader: header probe, ELF32/ELF64 and a.out-kludge loading, the multiboot
 * information structure and the 32-bit entry state. See multiboot.h for the layout.
 *
 * Loading is two passes: every segment is checked first (inside the file, inside guest RAM,
 * clear of the boot-information area, the legacy hole and the other segments), and only then
 * copied, so a refused kernel leaves guest memory as it was.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/multiboot.h"
#include "util/log.h"

#define MB_MAX_SEGMENTS 64
#define MB_MAX_FILE     (1ull << 30)   /* kernel and module files: 1 GiB at most */
#define MB_4G           (1ull << 32)

/* One piece of the image to copy: [gpa, gpa+memsz) gets filesz bytes from the file at off,
 * the rest zeroed. */
struct mb_segment {
	uint64_t gpa;
	uint64_t off;
	uint64_t filesz;
	uint64_t memsz;
};

struct mb_image {
	struct mb_segment seg[MB_MAX_SEGMENTS];
	unsigned nseg;
	uint64_t entry;
};

static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static int probe(const void *img, size_t len, struct mb_header *hdr, bool quiet)
{
	const uint8_t *b = img;
	size_t limit = len < MB_SEARCH_BYTES ? len : MB_SEARCH_BYTES;
	bool seen = false;

	for (size_t i = 0; i + 12 <= limit; i += 4) {
		if (ld32(b + i) != MB_HEADER_MAGIC)
			continue;
		seen = true;
		uint32_t flags = ld32(b + i + 4), sum = ld32(b + i + 8);
		if (MB_HEADER_MAGIC + flags + sum != 0)
			continue;
		memset(hdr, 0, sizeof(*hdr));
		hdr->offset = (uint32_t)i;
		hdr->flags = flags;
		if (flags & MB_HF_AOUT_KLUDGE) {
			if (i + 32 > len) {
				if (!quiet)
					pr_err("multiboot: header at 0x%zx truncated (address fields missing)", i);
				return -EINVAL;
			}
			hdr->header_addr = ld32(b + i + 12);
			hdr->load_addr = ld32(b + i + 16);
			hdr->load_end_addr = ld32(b + i + 20);
			hdr->bss_end_addr = ld32(b + i + 24);
			hdr->entry_addr = ld32(b + i + 28);
		}
		return 0;
	}
	if (seen && !quiet)
		pr_err("multiboot: magic 0x%08x found but no header has a valid checksum",
		       MB_HEADER_MAGIC);
	return seen ? -EINVAL : -ENOENT;
}

int mb_probe(const void *img, size_t len, struct mb_header *hdr)
{
	int ret = probe(img, len, hdr, false);

	if (ret)
		return ret;
	uint32_t unknown = hdr->flags & 0xffffu & ~(MB_HF_PAGE_ALIGN | MB_HF_MEMINFO | MB_HF_VIDEO);
	if (unknown) {
		pr_err("multiboot: header requires unsupported features (flags 0x%08x, unknown 0x%04x)",
		       hdr->flags, unknown);
		return -EINVAL;
	}
	if (hdr->flags & MB_HF_VIDEO)
		pr_warn("multiboot: kernel asks for a video mode; vireo has no display, ignored");
	return 0;
}

bool mb_detect(const void *img, size_t len)
{
	struct mb_header hdr;

	return probe(img, len, &hdr, true) == 0;
}

bool mb_claims(const void *img, size_t len)
{
	struct mb_header hdr;

	return probe(img, len, &hdr, true) != -ENOENT;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* True when every byte of [gpa, gpa+len) is writable guest RAM. */
static bool range_in_ram(const struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	while (len) {
		void *hva;
		const struct gm_region *r = gm_find_region(gm, gpa);
		if (!r || (r->flags & GM_REGION_READONLY))
			return false;
		uint64_t n = gm_translate_partial(gm, gpa, len, &hva);
		if (!n)
			return false;
		gpa += n;
		len -= n;
	}
	return true;
}

/* Checks one segment against the file, guest RAM, the reserved areas and the segments
 * accepted before it. */
static int check_segment(const struct guest_memory *gm, const struct mb_image *im,
			 const struct mb_segment *s, size_t len, unsigned idx)
{
	if (s->filesz > s->memsz) {
		pr_err("multiboot: segment %u: file size 0x%llx exceeds memory size 0x%llx", idx,
		       (unsigned long long)s->filesz, (unsigned long long)s->memsz);
		return -EINVAL;
	}
	if (s->off > len || s->filesz > len - s->off) {
		pr_err("multiboot: segment %u: file bytes 0x%llx+0x%llx lie beyond the end of the file (0x%zx)",
		       idx, (unsigned long long)s->off, (unsigned long long)s->filesz, len);
		return -EINVAL;
	}
	if (s->gpa >= MB_4G || s->memsz > MB_4G - s->gpa) {
		pr_err("multiboot: segment %u: 0x%llx+0x%llx reaches above 4 GiB", idx,
		       (unsigned long long)s->gpa, (unsigned long long)s->memsz);
		return -EINVAL;
	}
	if (ranges_overlap(s->gpa, s->memsz, 0, MB_FIRST_PAGE_END) ||
	    ranges_overlap(s->gpa, s->memsz, MB_AREA_START, MB_AREA_END - MB_AREA_START) ||
	    ranges_overlap(s->gpa, s->memsz, MB_LOW_RAM_END, MB_HIGH_RAM_START - MB_LOW_RAM_END)) {
		pr_err("multiboot: segment %u: 0x%llx+0x%llx overlaps the first page, the boot information (0x%x-0x%x) or the legacy hole (0x%x-0x%x)",
		       idx, (unsigned long long)s->gpa, (unsigned long long)s->memsz, MB_AREA_START,
		       MB_AREA_END, MB_LOW_RAM_END, MB_HIGH_RAM_START);
		return -EINVAL;
	}
	for (unsigned i = 0; i < im->nseg; i++) {
		const struct mb_segment *o = &im->seg[i];
		if (ranges_overlap(s->gpa, s->memsz, o->gpa, o->memsz)) {
			pr_err("multiboot: segment %u (0x%llx+0x%llx) overlaps an earlier segment (0x%llx+0x%llx)",
			       idx, (unsigned long long)s->gpa, (unsigned long long)s->memsz,
			       (unsigned long long)o->gpa, (unsigned long long)o->memsz);
			return -EINVAL;
		}
	}
	if (!range_in_ram(gm, s->gpa, s->memsz)) {
		pr_err("multiboot: segment %u: 0x%llx+0x%llx is not inside guest RAM", idx,
		       (unsigned long long)s->gpa, (unsigned long long)s->memsz);
		return -EFAULT;
	}
	return 0;
}

static int add_segment(const struct guest_memory *gm, struct mb_image *im,
		       const struct mb_segment *s, size_t len, unsigned idx)
{
	int ret;

	if (!s->memsz)
		return 0;
	if (im->nseg == MB_MAX_SEGMENTS) {
		pr_err("multiboot: more than %d loadable segments", MB_MAX_SEGMENTS);
		return -EINVAL;
	}
	ret = check_segment(gm, im, s, len, idx);
	if (ret)
		return ret;
	im->seg[im->nseg++] = *s;
	return 0;
}

/* Reads program header idx (ELF32 or ELF64) into a segment; returns its p_type. */
static uint32_t read_phdr(const uint8_t *ph, bool is64, struct mb_segment *s, uint64_t *vaddr)
{
	if (is64) {
		Elf64_Phdr p;
		memcpy(&p, ph, sizeof(p));
		*s = (struct mb_segment){ p.p_paddr, p.p_offset, p.p_filesz, p.p_memsz };
		*vaddr = p.p_vaddr;
		return p.p_type;
	}
	Elf32_Phdr p;
	memcpy(&p, ph, sizeof(p));
	*s = (struct mb_segment){ p.p_paddr, p.p_offset, p.p_filesz, p.p_memsz };
	*vaddr = p.p_vaddr;
	return p.p_type;
}

struct elf_hdr_info {
	bool is64;
	uint64_t entry;
	uint64_t phoff;
	uint32_t phentsize;
	uint32_t phnum;
};

static int parse_ehdr(const uint8_t *b, size_t len, struct elf_hdr_info *h)
{
	if (len < EI_NIDENT || memcmp(b, ELFMAG, SELFMAG)) {
		pr_err("multiboot: kernel is not an ELF file and has no a.out-kludge header");
		return -EINVAL;
	}
	if (b[EI_DATA] != ELFDATA2LSB || (b[EI_CLASS] != ELFCLASS32 && b[EI_CLASS] != ELFCLASS64)) {
		pr_err("multiboot: ELF class %u / data encoding %u not supported (need little-endian ELF32 or ELF64)",
		       b[EI_CLASS], b[EI_DATA]);
		return -EINVAL;
	}
	h->is64 = b[EI_CLASS] == ELFCLASS64;
	uint16_t type, machine;
	if (h->is64) {
		Elf64_Ehdr e;
		if (len < sizeof(e))
			goto truncated;
		memcpy(&e, b, sizeof(e));
		type = e.e_type, machine = e.e_machine;
		h->entry = e.e_entry, h->phoff = e.e_phoff;
		h->phentsize = e.e_phentsize, h->phnum = e.e_phnum;
	} else {
		Elf32_Ehdr e;
		if (len < sizeof(e))
			goto truncated;
		memcpy(&e, b, sizeof(e));
		type = e.e_type, machine = e.e_machine;
		h->entry = e.e_entry, h->phoff = e.e_phoff;
		h->phentsize = e.e_phentsize, h->phnum = e.e_phnum;
	}
	if (type != ET_EXEC || (machine != EM_386 && machine != EM_X86_64)) {
		pr_err("multiboot: ELF type %u machine %u: need an x86 executable (ET_EXEC)", type,
		       machine);
		return -EINVAL;
	}
	size_t need = h->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (h->phnum == 0 || h->phnum > MB_MAX_SEGMENTS || h->phentsize < need) {
		pr_err("multiboot: ELF has %u program headers of %u bytes (want 1-%d of at least %zu)",
		       h->phnum, h->phentsize, MB_MAX_SEGMENTS, need);
		return -EINVAL;
	}
	if (h->phoff > len || (uint64_t)h->phnum * h->phentsize > len - h->phoff) {
		pr_err("multiboot: ELF program headers at 0x%llx lie beyond the end of the file",
		       (unsigned long long)h->phoff);
		return -EINVAL;
	}
	return 0;
truncated:
	pr_err("multiboot: ELF header truncated (%zu bytes)", len);
	return -EINVAL;
}

/* Collects and checks the PT_LOAD segments; the entry point (a virtual address) is turned
 * into a physical one through the segment that contains it, as GRUB does. */
static int parse_elf(const struct guest_memory *gm, const uint8_t *b, size_t len,
		     struct mb_image *im)
{
	struct elf_hdr_info h;
	bool entry_found = false;
	int ret = parse_ehdr(b, len, &h);

	if (ret)
		return ret;
	for (unsigned i = 0; i < h.phnum; i++) {
		struct mb_segment s;
		uint64_t vaddr;
		if (read_phdr(b + h.phoff + (uint64_t)i * h.phentsize, h.is64, &s, &vaddr) != PT_LOAD)
			continue;
		ret = add_segment(gm, im, &s, len, i);
		if (ret)
			return ret;
		if (!entry_found && s.memsz && h.entry >= vaddr && h.entry - vaddr < s.memsz) {
			im->entry = s.gpa + (h.entry - vaddr);
			entry_found = true;
		}
	}
	if (!im->nseg) {
		pr_err("multiboot: ELF has no loadable segment");
		return -EINVAL;
	}
	if (!entry_found) {
		pr_err("multiboot: ELF entry point 0x%llx lies in no loadable segment",
		       (unsigned long long)h.entry);
		return -EINVAL;
	}
	return 0;
}

/* The a.out kludge: the header says where the file goes (header_addr is where the header
 * itself lands, which fixes the file offset of load_addr). */
static int parse_aout(const struct guest_memory *gm, const struct mb_header *hdr, size_t len,
		      struct mb_image *im)
{
	uint64_t end = hdr->load_end_addr, bss = hdr->bss_end_addr;

	if (hdr->load_addr > hdr->header_addr || hdr->header_addr - hdr->load_addr > hdr->offset) {
		pr_err("multiboot: a.out header: load_addr 0x%x / header_addr 0x%x inconsistent with the header's file offset 0x%x",
		       hdr->load_addr, hdr->header_addr, hdr->offset);
		return -EINVAL;
	}
	struct mb_segment s = { .gpa = hdr->load_addr,
				.off = hdr->offset - (hdr->header_addr - hdr->load_addr) };
	if (!end)
		end = hdr->load_addr + (uint64_t)(len - s.off);
	if (end < hdr->load_addr || (bss && bss < end)) {
		pr_err("multiboot: a.out header: load_end_addr 0x%x / bss_end_addr 0x%x out of order",
		       hdr->load_end_addr, hdr->bss_end_addr);
		return -EINVAL;
	}
	s.filesz = end - hdr->load_addr;
	s.memsz = (bss ? bss : end) - hdr->load_addr;
	int ret = add_segment(gm, im, &s, len, 0);
	if (ret)
		return ret;
	if (hdr->entry_addr < s.gpa || hdr->entry_addr - s.gpa >= s.memsz) {
		pr_err("multiboot: a.out header: entry 0x%x lies outside the loaded image", hdr->entry_addr);
		return -EINVAL;
	}
	im->entry = hdr->entry_addr;
	return 0;
}

static int copy_segments(struct guest_memory *gm, const uint8_t *b, const struct mb_image *im)
{
	for (unsigned i = 0; i < im->nseg; i++) {
		const struct mb_segment *s = &im->seg[i];
		int ret = gm_write(gm, s->gpa, b + s->off, s->filesz);
		if (!ret)
			ret = gm_zero(gm, s->gpa + s->filesz, s->memsz - s->filesz);
		if (ret) {
			pr_err("multiboot: copying segment to 0x%llx failed", (unsigned long long)s->gpa);
			return ret;
		}
	}
	return 0;
}

static int cmp_region(const void *a, const void *b)
{
	const struct gm_region *x = *(const struct gm_region *const *)a;
	const struct gm_region *y = *(const struct gm_region *const *)b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static int mmap_add(struct mb_mmap_entry *out, unsigned max, unsigned *n, uint64_t addr,
		    uint64_t len, uint32_t type)
{
	if (!len)
		return 0;
	if (*n && out[*n - 1].type == type && out[*n - 1].addr + out[*n - 1].len == addr) {
		out[*n - 1].len += len;
		return 0;
	}
	if (*n == max)
		return -ENOSPC;
	out[(*n)++] = (struct mb_mmap_entry){ .size = 20, .addr = addr, .len = len, .type = type };
	return 0;
}

/* Writable RAM regions in address order, merged; the legacy hole reported reserved. */
int mb_build_mmap(const struct guest_memory *gm, struct mb_mmap_entry *out, unsigned max)
{
	const struct gm_region *sorted[GM_MAX_REGIONS];
	unsigned nr = 0, n = 0;
	bool hole_done = false;
	int ret = 0;

	for (unsigned i = 0; i < gm->nregions && i < GM_MAX_REGIONS; i++)
		if (!(gm->regions[i].flags & GM_REGION_READONLY))
			sorted[nr++] = &gm->regions[i];
	qsort(sorted, nr, sizeof(sorted[0]), cmp_region);
	for (unsigned i = 0; i < nr && !ret; i++) {
		uint64_t a = sorted[i]->gpa, e = a + sorted[i]->size;
		if (!hole_done && e > MB_LOW_RAM_END) {
			if (a < MB_LOW_RAM_END)
				ret = mmap_add(out, max, &n, a, MB_LOW_RAM_END - a, MB_MMAP_AVAILABLE);
			if (!ret && a < MB_HIGH_RAM_START)
				ret = mmap_add(out, max, &n, MB_LOW_RAM_END,
					       MB_HIGH_RAM_START - MB_LOW_RAM_END, MB_MMAP_RESERVED);
			hole_done = true;
			a = a > MB_HIGH_RAM_START ? a : MB_HIGH_RAM_START;
		}
		if (!ret && e > a)
			ret = mmap_add(out, max, &n, a, e - a, MB_MMAP_AVAILABLE);
	}
	return ret ? ret : (int)n;
}

/* KiB of RAM contiguous from start (stopping at limit), as mem_lower/mem_upper want. */
static uint32_t contiguous_kib(const struct guest_memory *gm, uint64_t start, uint64_t limit)
{
	uint64_t a = start;

	for (;;) {
		const struct gm_region *r = gm_find_region(gm, a);
		if (!r || (r->flags & GM_REGION_READONLY) || a >= limit)
			break;
		a = r->gpa + r->size;
	}
	if (a > limit)
		a = limit;
	return (uint32_t)((a - start) >> 10);
}

static int put_string(struct guest_memory *gm, uint32_t addr, uint32_t max, const char *s,
		      const char *what)
{
	size_t n = strlen(s) + 1;

	if (n > max) {
		pr_err("multiboot: %s is %zu bytes, at most %u allowed", what, n - 1, max - 1);
		return -E2BIG;
	}
	return gm_write(gm, addr, s, n);
}

/* Puts the module on the first page after the kernel (and above 1 MiB). */
static int place_module(struct guest_memory *gm, const struct mb_boot_config *cfg,
			struct mb_load_result *res)
{
	uint64_t start = (res->kernel_end + GM_PAGE_SIZE - 1) & ~(GM_PAGE_SIZE - 1);

	if (start < MB_HIGH_RAM_START)
		start = MB_HIGH_RAM_START;
	if (start >= MB_4G || cfg->module_len > MB_4G - start ||
	    !range_in_ram(gm, start, cfg->module_len)) {
		pr_err("multiboot: module of %zu bytes does not fit in guest RAM after the kernel (from 0x%llx)",
		       cfg->module_len, (unsigned long long)start);
		return -ENOSPC;
	}
	int ret = gm_write(gm, start, cfg->module, cfg->module_len);
	if (ret)
		return ret;
	res->module_start = start;
	res->module_end = start + cfg->module_len;
	return 0;
}

static int write_info(struct guest_memory *gm, const struct mb_boot_config *cfg,
		      struct mb_load_result *res)
{
	struct mb_mmap_entry mmap[MB_MMAP_MAX];
	struct mb_info info = { .flags = MB_IF_MEM | MB_IF_MODS | MB_IF_MMAP | MB_IF_LOADER_NAME };
	int n = mb_build_mmap(gm, mmap, MB_MMAP_MAX), ret;

	if (n < 0) {
		pr_err("multiboot: guest memory map has more than %u entries", MB_MMAP_MAX);
		return n;
	}
	info.mem_lower = contiguous_kib(gm, 0, MB_LOW_RAM_END);
	info.mem_upper = contiguous_kib(gm, MB_HIGH_RAM_START, MB_4G);
	info.mmap_addr = MB_MMAP_ADDR;
	info.mmap_length = (uint32_t)(n * sizeof(mmap[0]));
	info.boot_loader_name = MB_LOADER_ADDR;
	info.mods_addr = MB_MODS_ADDR;
	ret = put_string(gm, MB_LOADER_ADDR, MB_MODSTR_ADDR - MB_LOADER_ADDR, "vireo", "loader name");
	if (!ret && cfg->cmdline) {
		info.flags |= MB_IF_CMDLINE;
		info.cmdline = MB_CMDLINE_ADDR;
		ret = put_string(gm, MB_CMDLINE_ADDR, MB_CMDLINE_MAX, cfg->cmdline, "command line");
	}
	if (!ret && cfg->module) {
		struct mb_module mod = { .string = MB_MODSTR_ADDR };
		ret = place_module(gm, cfg, res);
		if (!ret)
			ret = put_string(gm, MB_MODSTR_ADDR, MB_MODSTR_MAX,
					 cfg->module_name ? cfg->module_name : "", "module string");
		mod.mod_start = (uint32_t)res->module_start;
		mod.mod_end = (uint32_t)res->module_end;
		if (!ret)
			ret = gm_write(gm, MB_MODS_ADDR, &mod, sizeof(mod));
		info.mods_count = 1;
	}
	if (!ret)
		ret = gm_write(gm, MB_MMAP_ADDR, mmap, n * sizeof(mmap[0]));
	if (!ret)
		ret = gm_write(gm, MB_INFO_ADDR, &info, sizeof(info));
	if (ret == -EFAULT)
		pr_err("multiboot: guest RAM must cover the boot information at 0x%x-0x%x",
		       MB_AREA_START, MB_AREA_END);
	res->info_addr = MB_INFO_ADDR;
	return ret;
}

int mb_load(struct guest_memory *gm, const void *img, size_t len,
	    const struct mb_boot_config *cfg, struct mb_load_result *res)
{
	static const struct mb_boot_config none;
	struct mb_header hdr;
	struct mb_image *im;
	int ret = mb_probe(img, len, &hdr);

	if (ret == -ENOENT)
		pr_err("multiboot: no multiboot header in the first %u bytes", MB_SEARCH_BYTES);
	if (ret)
		return ret;
	if (!cfg)
		cfg = &none;
	im = calloc(1, sizeof(*im));
	if (!im)
		return -ENOMEM;
	if (hdr.flags & MB_HF_AOUT_KLUDGE)
		ret = parse_aout(gm, &hdr, len, im);
	else
		ret = parse_elf(gm, img, len, im);
	if (ret)
		goto out;
	memset(res, 0, sizeof(*res));
	res->entry = (uint32_t)im->entry;
	res->kernel_start = UINT64_MAX;
	for (unsigned i = 0; i < im->nseg; i++) {
		if (im->seg[i].gpa < res->kernel_start)
			res->kernel_start = im->seg[i].gpa;
		if (im->seg[i].gpa + im->seg[i].memsz > res->kernel_end)
			res->kernel_end = im->seg[i].gpa + im->seg[i].memsz;
	}
	ret = copy_segments(gm, img, im);
	if (!ret)
		ret = write_info(gm, cfg, res);
out:
	free(im);
	return ret;
}

int mb_read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0) {
		ret = -errno;
		pr_err("multiboot: cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MB_MAX_FILE) {
		pr_err("multiboot: %s is not a regular file of at most 1 GiB", path);
		ret = -EINVAL;
		goto out;
	}
	*len = (size_t)st.st_size;
	*buf = malloc(*len ? *len : 1);
	if (!*buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t done = 0; done < *len;) {
		ssize_t n = read(fd, *buf + done, *len - done);
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			pr_err("multiboot: reading %s failed", path);
			free(*buf);
			*buf = NULL;
			goto out;
		}
		done += (size_t)n;
	}
out:
	close(fd);
	return ret;
}

int mb_load_file(struct guest_memory *gm, const char *path, const char *cmdline,
		 const char *initrd, struct mb_load_result *res)
{
	uint8_t *img = NULL, *mod = NULL;
	size_t len = 0, modlen = 0;
	int ret = mb_read_file(path, &img, &len);

	if (ret)
		return ret;
	if (!mb_detect(img, len)) {
		ret = MB_NOT_MULTIBOOT;
		goto out;
	}
	if (initrd) {
		ret = mb_read_file(initrd, &mod, &modlen);
		if (ret)
			goto out;
	}
	struct mb_boot_config cfg = { .cmdline = cmdline, .module = mod, .module_len = modlen,
				      .module_name = initrd };
	ret = mb_load(gm, img, len, &cfg, res);
	if (!ret)
		pr_info("multiboot: loaded %s, entry 0x%x, kernel 0x%llx-0x%llx", path, res->entry,
			(unsigned long long)res->kernel_start, (unsigned long long)res->kernel_end);
out:
	free(img);
	free(mod);
	return ret;
}
