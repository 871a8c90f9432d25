/* Guest memory: the only way vireo code touches guest RAM (S3 in shared/MISSION.md).
 *
 * Guest RAM is a small set of regions, each a host mapping of a memfd (so an external device
 * process can map the same pages) or a mapping adopted from a vhost-user frontend. Every
 * access goes through a checked lookup: a range that leaves or crosses a region never yields
 * a pointer, and reads/writes return -EFAULT instead of faulting.
 *
 * Writes made by devices bypass KVM's dirty log, so every helper that writes guest memory
 * marks the pages in the region's dirty bitmap; code that writes through a translated pointer
 * must call gm_mark_dirty() itself.
 *
 * The DMA pin API tells "held for a moment" from "pinned for DMA": a device that keeps guest
 * pages across asynchronous I/O pins them (per-page counts, a locked-memory limit, long-term
 * pins refused on memory that cannot stay pinned).
 *
 * Threads: translation and dirty marking are lock-free (the region table does not change
 * while devices run); pinning takes a mutex.
 */
#ifndef VIREO_MEMORY_GUEST_MEMORY_H
#define VIREO_MEMORY_GUEST_MEMORY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GM_PAGE_SHIFT 12
#define GM_PAGE_SIZE  (1ull << GM_PAGE_SHIFT)
#define GM_MAX_REGIONS 16

/* Region flags. */
#define GM_REGION_FILE_BACKED (1u << 0) /* backed by a regular file: no long-term pins */
#define GM_REGION_DISCARDABLE (1u << 1) /* may be discarded (balloon, free page reporting) */
#define GM_REGION_READONLY    (1u << 2) /* ROM: gm_write() and writable translation refuse */

/* gm_set_pin_limit() value: no limit (also the default when RLIMIT_MEMLOCK is infinite). */
#define GM_PIN_UNLIMITED UINT64_MAX

/* gm_pin() flags. */
#define GM_PIN_LONGTERM (1u << 0) /* held for an unbounded time (registered buffers, vfio-user) */

struct gm_region {
	uint64_t gpa;          /* guest-physical start */
	uint64_t size;         /* bytes, a multiple of GM_PAGE_SIZE */
	uint8_t *hva;          /* host mapping of the whole region */
	int fd;                /* memfd or adopted fd; -1 when none */
	uint64_t fd_offset;    /* offset of gpa in fd */
	uint64_t uaddr;        /* the frontend's address of this region (vhost-user); else hva */
	uint32_t flags;        /* GM_REGION_* */
	bool owns;             /* gm_destroy() unmaps and closes */
	unsigned long *dirty;  /* one bit per page, set atomically */
	uint32_t *pins;        /* pin count per page; NULL until the region's first pin */
	unsigned long *populated; /* (addition) pages a pin populated (hint, see gm_pin) */
};

struct guest_memory {
	struct gm_region regions[GM_MAX_REGIONS];
	unsigned nregions;
	pthread_mutex_t pin_lock;
	uint64_t pin_limit;    /* bytes that may be pinned at once (RLIMIT_MEMLOCK by default) */
	uint64_t pinned_bytes; /* pages with a non-zero pin count, in bytes */
	uint8_t order[GM_MAX_REGIONS]; /* (addition) region indices sorted by gpa, for lookups */
};

/* Set up an empty guest memory map. Returns 0 or -errno. */
int gm_init(struct guest_memory *gm);
/* Unmap and close what the map owns; the struct may be gm_init()ed again. */
void gm_destroy(struct guest_memory *gm);

/* Add size bytes of RAM at gpa, backed by a new memfd and mapped shared.
 * Returns the region index or -errno (-EINVAL alignment/overflow, -EEXIST overlap,
 * -ENOSPC too many regions, or the memfd/mmap error). gpa and size must be multiples of
 * GM_PAGE_SIZE, size > 0, and the region must end below 2^64. A region keeps its index for
 * its lifetime. READONLY regions are still mapped writable on the host, so the VMM can load
 * them through hva; FILE_BACKED is refused here (a memfd is not a file: use gm_add_mapping). */
int gm_add_ram(struct guest_memory *gm, uint64_t gpa, uint64_t size, uint32_t flags);
/* Adopt an existing mapping (hva of size bytes, from fd at fd_offset; fd may be -1).
 * With owns=true gm_destroy() munmaps [hva, hva+size) and closes fd, so hva must then be the
 * start of a mapping of exactly size bytes (a vhost-user region mapped with an mmap_offset
 * keeps owns=false and unmaps its own mapping). Same errors as gm_add_ram; on an error
 * nothing is adopted (the caller still owns hva and fd). */
int gm_add_mapping(struct guest_memory *gm, uint64_t gpa, uint64_t size, void *hva, int fd,
		   uint64_t fd_offset, uint64_t uaddr, uint32_t flags, bool owns);

/* The region holding gpa, or NULL. */
const struct gm_region *gm_find_region(const struct guest_memory *gm, uint64_t gpa);

/* Host pointer for [gpa, gpa+len) when the whole range lies inside one region, else NULL
 * (also on overflow). len == 0 is valid when gpa lies inside a region. */
void *gm_translate(const struct guest_memory *gm, uint64_t gpa, uint64_t len);
/* (addition) gm_translate for writing: also NULL when the region is READONLY. The caller
 * writes through the pointer and then calls gm_mark_dirty() (after the write, not before). */
void *gm_translate_writable(const struct guest_memory *gm, uint64_t gpa, uint64_t len);
/* Like gm_translate but for a range that may cross regions: sets *hva for gpa and returns how
 * many bytes from gpa (at most len) are contiguous in that region; 0 (and *hva = NULL) when
 * gpa is unmapped. */
uint64_t gm_translate_partial(const struct guest_memory *gm, uint64_t gpa, uint64_t len,
			      void **hva);
/* Frontend address (vhost-user "user address") to gpa for a range inside one region.
 * Returns 0 or -EFAULT. */
int gm_uaddr_to_gpa(const struct guest_memory *gm, uint64_t uaddr, uint64_t len, uint64_t *gpa);

/* Copy between guest memory and a buffer; ranges may span adjacent regions.
 * Return 0, or -EFAULT (nothing guaranteed copied) when any byte is unmapped; gm_write also
 * refuses read-only regions with -EFAULT and marks the written pages dirty. The whole range
 * is checked before the first byte is copied, so a refused gm_write writes nothing.
 * len == 0 copies nothing and returns 0 whatever gpa is. */
int gm_read(const struct guest_memory *gm, uint64_t gpa, void *buf, size_t len);
int gm_write(struct guest_memory *gm, uint64_t gpa, const void *buf, size_t len);
/* (addition) Zero [gpa, gpa+len) like a gm_write of zeros (same checks, marks dirty), but
 * whole pages of vireo's own never-pinned memfd regions are given back (hole punch) instead
 * of written: free on RAM nothing touched yet, as when a loader clears a kernel's BSS. */
int gm_zero(struct guest_memory *gm, uint64_t gpa, uint64_t len);
/* (addition) Copy len bytes of file fd from offset off into [gpa, gpa+len) (same checks as
 * gm_write, marks dirty): into vireo's memfd regions by sendfile(), which copies in the
 * kernel without faulting the pages into this process, elsewhere by pread(). 0, -EFAULT, -EIO
 * when the file ends early, or pread's -errno. fd's own offset is not used. */
int gm_load_fd(struct guest_memory *gm, uint64_t gpa, int fd, uint64_t off, uint64_t len);

/* Dirty tracking of device writes. Unmapped parts of the range are ignored. */
void gm_mark_dirty(struct guest_memory *gm, uint64_t gpa, uint64_t len);
bool gm_is_dirty(const struct guest_memory *gm, uint64_t gpa);
/* Copy region idx's dirty bitmap into out (one bit per page, as unsigned long words) and
 * clear it, atomically per word. Returns the number of dirty pages or -EINVAL. */
long gm_dirty_fetch_and_clear(struct guest_memory *gm, unsigned idx, unsigned long *out);
/* (addition) How many unsigned long words region idx's bitmap has (the size of out above);
 * 0 for a bad idx. */
uint64_t gm_dirty_bitmap_words(const struct guest_memory *gm, unsigned idx);

/* DMA pins. gm_pin pins every page touching [gpa, gpa+len): all or nothing.
 * Errors: -EFAULT unmapped, -EPERM GM_PIN_LONGTERM on a FILE_BACKED or DISCARDABLE region,
 * -ENOMEM the pin limit would be exceeded, -EOVERFLOW a page's count would overflow.
 * The range may span adjacent regions; len == 0 pins nothing (0 when gpa is mapped, else
 * -EFAULT). The limit counts pages, not pins: a page counts once while its count is > 0.
 *
 * Residency: the first pin of a page populates it (MADV_POPULATE_WRITE, or _READ on
 * READONLY/FILE_BACKED regions; skipped on kernels without it), so a pinned page is not a
 * page fault in the middle of I/O. The region remembers which pages a pin populated and later
 * pins of them make no system call (this keeps a pin at tens of ns, see bench/pin); the only
 * way vireo frees guest pages, gm_discard(), forgets them again. Pins do not mlock(): vireo's
 * DMA is host-virtual (io_uring, device processes mapping the memfd), so physical stability
 * is not needed, and on a host with swap a pinned page may still be swapped out (a slow
 * access, never a wrong one). What a pin promises is the accounting and that gm_discard()
 * leaves the page alone. Unknown flags: -EINVAL. */
int gm_pin(struct guest_memory *gm, uint64_t gpa, uint64_t len, unsigned flags);
/* Drops one pin from each page; -EINVAL (and no change) when a page is not pinned, -EFAULT
 * when a byte is unmapped; len == 0 as for gm_pin. */
int gm_unpin(struct guest_memory *gm, uint64_t gpa, uint64_t len);
bool gm_is_pinned(struct guest_memory *gm, uint64_t gpa);
uint32_t gm_pin_count(struct guest_memory *gm, uint64_t gpa);
/* bytes == GM_PIN_UNLIMITED: no limit. A limit below gm_pinned_bytes() keeps the pins there
 * are and refuses pins of further pages until enough are unpinned. */
void gm_set_pin_limit(struct guest_memory *gm, uint64_t bytes);
uint64_t gm_pinned_bytes(struct guest_memory *gm);

/* (addition) Give the pages of [gpa, gpa+len) back to the host (balloon, free page reporting):
 * the guest reads zeros there afterwards. All or nothing: -EINVAL unaligned or len 0,
 * -EFAULT unmapped, -EPERM a region is not DISCARDABLE, -EBUSY a page is pinned, or the
 * error of fallocate(PUNCH_HOLE) (memfd) / madvise(MADV_DONTNEED) (no fd). */
int gm_discard(struct guest_memory *gm, uint64_t gpa, uint64_t len);

#endif
