/* Guest memory regions and checked access (S3 in shared/MISSION.md).
 *
 * The region table is built before devices run and then only read, so lookups take no lock.
 * Regions keep the index gm_add_*() returned (callers name regions by it, e.g. for the dirty
 * bitmap); gm->order[] lists the same indices sorted by guest-physical address so a lookup is
 * a binary search over at most GM_MAX_REGIONS entries.
 *
 * Every range check is written as "offset < size && len <= size - offset" so that no sum of
 * guest-controlled values can wrap.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "memory/guest_memory.h"
#include "memory/gm_internal.h"
#include "util/log.h"

/* The pin limit starts at RLIMIT_MEMLOCK, the same budget the kernel would charge. */
static uint64_t default_pin_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return GM_PIN_UNLIMITED;
	return rl.rlim_cur;
}

int gm_init(struct guest_memory *gm)
{
	int ret;

	memset(gm, 0, sizeof(*gm));
	ret = pthread_mutex_init(&gm->pin_lock, NULL);
	if (ret)
		return -ret;
	gm->pin_limit = default_pin_limit();
	return 0;
}

static void region_release(struct gm_region *r)
{
	if (r->owns) {
		if (r->hva)
			munmap(r->hva, r->size);
		if (r->fd >= 0)
			close(r->fd);
	}
	free(r->dirty);
	free(r->pins);
	free(r->populated);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

void gm_destroy(struct guest_memory *gm)
{
	for (unsigned i = 0; i < gm->nregions; i++)
		region_release(&gm->regions[i]);
	gm->nregions = 0;
	pthread_mutex_destroy(&gm->pin_lock);
}

/* Validates a new region [gpa, gpa+size) against alignment, wrap-around and overlap. */
static int check_new_region(const struct guest_memory *gm, uint64_t gpa, uint64_t size)
{
	if (size == 0 || (gpa | size) & (GM_PAGE_SIZE - 1))
		return -EINVAL;
	if (gpa + size < gpa || gpa + size == 0) /* must end below 2^64 */
		return -EINVAL;
	if (gm->nregions >= GM_MAX_REGIONS)
		return -ENOSPC;
	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->regions[i];

		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -EEXIST;
	}
	return 0;
}

/* Inserts region idx into gm->order, keeping it sorted by gpa. */
static void order_insert(struct guest_memory *gm, unsigned idx)
{
	uint64_t gpa = gm->regions[idx].gpa;
	unsigned pos = idx;

	while (pos > 0 && gm->regions[gm->order[pos - 1]].gpa > gpa) {
		gm->order[pos] = gm->order[pos - 1];
		pos--;
	}
	gm->order[pos] = (uint8_t)idx;
}

static int region_commit(struct guest_memory *gm, const struct gm_region *tmpl)
{
	uint64_t words = gm_dirty_words(tmpl->size);
	struct gm_region *r = &gm->regions[gm->nregions];

	*r = *tmpl;
	r->dirty = calloc(words, sizeof(unsigned long));
	if (!r->dirty) {
		memset(r, 0, sizeof(*r));
		return -ENOMEM;
	}
	r->pins = NULL; /* allocated on the first pin (gm_pin) */
	r->populated = NULL;
	order_insert(gm, gm->nregions);
	return (int)gm->nregions++;
}

int gm_add_mapping(struct guest_memory *gm, uint64_t gpa, uint64_t size, void *hva, int fd,
		   uint64_t fd_offset, uint64_t uaddr, uint32_t flags, bool owns)
{
	struct gm_region r = {
		.gpa = gpa, .size = size, .hva = hva, .fd = fd, .fd_offset = fd_offset,
		.uaddr = uaddr, .flags = flags, .owns = owns,
	};
	int ret = check_new_region(gm, gpa, size);

	if (ret)
		return ret;
	if (!hva || (uintptr_t)hva + size < (uintptr_t)hva || uaddr + size < uaddr)
		return -EINVAL;
	return region_commit(gm, &r);
}

int gm_add_ram(struct guest_memory *gm, uint64_t gpa, uint64_t size, uint32_t flags)
{
	void *hva;
	int fd, ret = check_new_region(gm, gpa, size);

	if (ret)
		return ret;
	if (flags & GM_REGION_FILE_BACKED)
		return -EINVAL; /* a memfd is not a regular file; adopt file mappings instead */
	fd = memfd_create("vireo-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		goto err_close;
	}
	/* The size is fixed from now on: a process this fd is shared with (a vhost-user
	 * backend) can rely on its mapping never losing pages to a truncate (SIGBUS). */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		goto err_close;
	}
	/* Read-only regions are still mapped writable on the host: the VMM loads ROM
	 * contents through hva; only guest-facing helpers refuse to write them. */
	hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (hva == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	ret = gm_add_mapping(gm, gpa, size, hva, fd, 0, (uint64_t)(uintptr_t)hva, flags, true);
	if (ret < 0)
		goto err_unmap;
	return ret;

err_unmap:
	munmap(hva, size);
err_close:
	close(fd);
	pr_err("memory: cannot add %#llx bytes of RAM at gpa %#llx: %s\n",
	       (unsigned long long)size, (unsigned long long)gpa, strerror(-ret));
	return ret;
}

const struct gm_region *gm_find_region(const struct guest_memory *gm, uint64_t gpa)
{
	unsigned lo = 0, hi = gm->nregions;

	/* Find the last region starting at or below gpa. */
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (gm->regions[gm->order[mid]].gpa <= gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct gm_region *r = &gm->regions[gm->order[lo - 1]];
	return gpa - r->gpa < r->size ? r : NULL;
}

const struct gm_region *gm_region_after(const struct guest_memory *gm, uint64_t gpa)
{
	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->regions[gm->order[i]];

		if (r->gpa > gpa)
			return r;
	}
	return NULL;
}

void *gm_translate(const struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	const struct gm_region *r = gm_find_region(gm, gpa);

	if (!r || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->hva + (gpa - r->gpa);
}

void *gm_translate_writable(const struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	const struct gm_region *r = gm_find_region(gm, gpa);

	if (!r || (r->flags & GM_REGION_READONLY) || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->hva + (gpa - r->gpa);
}

uint64_t gm_translate_partial(const struct guest_memory *gm, uint64_t gpa, uint64_t len,
			      void **hva)
{
	const struct gm_region *r = gm_find_region(gm, gpa);
	uint64_t off, room;

	if (!r) {
		*hva = NULL;
		return 0;
	}
	off = gpa - r->gpa;
	room = r->size - off;
	*hva = r->hva + off;
	return len < room ? len : room;
}

int gm_uaddr_to_gpa(const struct guest_memory *gm, uint64_t uaddr, uint64_t len, uint64_t *gpa)
{
	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->regions[i];
		uint64_t off = uaddr - r->uaddr;

		if (uaddr >= r->uaddr && off < r->size && len <= r->size - off) {
			*gpa = r->gpa + off;
			return 0;
		}
	}
	return -EFAULT;
}

/* Checks that every byte of [gpa, gpa+len) is mapped (and writable when write is set),
 * possibly across adjacent regions. Returns 0 or -EFAULT. */
static int check_range(const struct guest_memory *gm, uint64_t gpa, uint64_t len, bool write)
{
	while (len) {
		const struct gm_region *r = gm_find_region(gm, gpa);
		uint64_t room;

		if (!r || (write && (r->flags & GM_REGION_READONLY)))
			return -EFAULT;
		room = r->size - (gpa - r->gpa);
		if (len <= room)
			return 0;
		len -= room;
		gpa += room; /* cannot wrap: regions end below 2^64 */
	}
	return 0;
}

int gm_read(const struct guest_memory *gm, uint64_t gpa, void *buf, size_t len)
{
	uint8_t *dst = buf;
	int ret = check_range(gm, gpa, len, false);

	if (ret)
		return ret;
	while (len) {
		void *src;
		uint64_t n = gm_translate_partial(gm, gpa, len, &src);

		memcpy(dst, src, n);
		dst += n;
		gpa += n;
		len -= n;
	}
	return 0;
}

int gm_write(struct guest_memory *gm, uint64_t gpa, const void *buf, size_t len)
{
	const uint8_t *src = buf;
	int ret = check_range(gm, gpa, len, true);

	if (ret)
		return ret;
	while (len) {
		void *dst;
		uint64_t n = gm_translate_partial(gm, gpa, len, &dst);

		memcpy(dst, src, n);
		gm_mark_dirty(gm, gpa, n); /* after the copy: a migration pass sees the data */
		src += n;
		gpa += n;
		len -= n;
	}
	return 0;
}

/* Zeroes part of one region: whole pages by a hole punch in its memfd when nothing can
 * object (vireo's own memfd, never pinned), else by memset. A punched page that was never
 * touched costs nothing, where memset would fault in and clear a page each: fresh guest RAM
 * is already zero, and a loader clearing a kernel's BSS there should not pay for it. */
static void zero_in_region(struct guest_memory *gm, struct gm_region *r, uint64_t gpa, uint64_t n)
{
	uint64_t off = gpa - r->gpa, a = (off + GM_PAGE_SIZE - 1) & ~(GM_PAGE_SIZE - 1);
	uint64_t b = (off + n) & ~(GM_PAGE_SIZE - 1);
	bool punched = false;

	pthread_mutex_lock(&gm->pin_lock);
	if (a < b && r->owns && r->fd >= 0 && !r->pins && !(r->flags & GM_REGION_FILE_BACKED))
		punched = fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				    (off_t)(r->fd_offset + a), (off_t)(b - a)) == 0;
	pthread_mutex_unlock(&gm->pin_lock);
	if (punched) {
		memset(r->hva + off, 0, a - off);
		memset(r->hva + b, 0, off + n - b);
	} else {
		memset(r->hva + off, 0, n);
	}
}

int gm_zero(struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	int ret = check_range(gm, gpa, len, true);

	if (ret)
		return ret;
	while (len) {
		struct gm_region *r = (struct gm_region *)gm_find_region(gm, gpa);
		uint64_t n = r->size - (gpa - r->gpa);

		if (n > len)
			n = len;
		zero_in_region(gm, r, gpa, n);
		gm_mark_dirty(gm, gpa, n);
		gpa += n;
		len -= n;
	}
	return 0;
}

/* sendfile() from fd into r's memfd at the offset of gpa: the kernel copies page-cache pages
 * into the memfd without mapping either side here. Returns bytes copied (short on error). */
static uint64_t load_by_sendfile(const struct gm_region *r, uint64_t gpa, int fd, uint64_t off,
				 uint64_t len)
{
	off_t in = (off_t)off;
	uint64_t done = 0;

	if (!r->owns || r->fd < 0 || (r->flags & GM_REGION_FILE_BACKED) ||
	    lseek(r->fd, (off_t)(r->fd_offset + (gpa - r->gpa)), SEEK_SET) < 0)
		return 0;
	while (done < len) {
		ssize_t n = sendfile(r->fd, fd, &in, len - done);

		if (n <= 0)
			break;
		done += n;
	}
	return done;
}

int gm_load_fd(struct guest_memory *gm, uint64_t gpa, int fd, uint64_t off, uint64_t len)
{
	int ret = check_range(gm, gpa, len, true);

	if (ret)
		return ret;
	while (len) {
		const struct gm_region *r = gm_find_region(gm, gpa);
		uint64_t n = r->size - (gpa - r->gpa), done;

		if (n > len)
			n = len;
		done = load_by_sendfile(r, gpa, fd, off, n);
		while (done < n) { /* not a memfd, or sendfile refused: read into the mapping */
			ssize_t got = pread(fd, r->hva + (gpa - r->gpa) + done, n - done,
					    (off_t)(off + done));

			if (got <= 0)
				return got < 0 ? -errno : -EIO;
			done += got;
		}
		gm_mark_dirty(gm, gpa, n);
		gpa += n;
		off += n;
		len -= n;
	}
	return 0;
}
