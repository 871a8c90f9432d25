/* DMA pins of guest pages (S3 in shared/MISSION.md: the FOLL_PIN / FOLL_LONGTERM idea).
 *
 * A device that holds guest pages across asynchronous I/O pins them, which tells "held for
 * DMA" from "touched for a moment". Each page has a 32-bit pin count (allocated per region on
 * its first pin); the locked-memory budget is charged when a count goes 0 -> 1 and refunded
 * when it goes 1 -> 0, so pinned_bytes is the size of the pinned set, not the number of pins.
 *
 * Every operation is all or nothing: the range is split into per-region spans and checked
 * completely (mapped, long-term allowed, no count overflow, limit) before any count changes.
 * Residency: the first pin of a page populates it (MADV_POPULATE_WRITE); the region remembers
 * that, so later pins make no system call until gm_discard() frees the page (guest_memory.h).
 * One mutex serialises pins; lookups and dirty marking never take it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "memory/gm_internal.h"
#include "memory/guest_memory.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Pages [first, last] of one region (region-relative page numbers). */
struct pin_span {
	struct gm_region *r;
	uint64_t first, last;
};

/* Cleared once the kernel says it has no MADV_POPULATE_* (before Linux 5.14). */
static int populate_supported = 1;

/* Splits the pages touching [gpa, gpa+len) (len > 0) into spans, one per region.
 * Returns the number of spans or -EFAULT when a byte is unmapped or the range wraps. */
static int collect_spans(struct guest_memory *gm, uint64_t gpa, uint64_t len,
			 struct pin_span spans[GM_MAX_REGIONS])
{
	uint64_t last_byte = gpa + (len - 1);
	int n = 0;

	if (last_byte < gpa)
		return -EFAULT;
	for (;;) {
		struct gm_region *r = (struct gm_region *)gm_find_region(gm, gpa);
		uint64_t end;

		if (!r || n == GM_MAX_REGIONS)
			return -EFAULT;
		end = r->gpa + (r->size - 1); /* last byte of the region */
		spans[n].r = r;
		spans[n].first = (gpa - r->gpa) >> GM_PAGE_SHIFT;
		spans[n].last = ((last_byte < end ? last_byte : end) - r->gpa) >> GM_PAGE_SHIFT;
		n++;
		if (last_byte <= end)
			return n;
		gpa = end + 1;
	}
}

/* Makes pages [first, first+n) of r present. Returns 0 or -errno; a kernel or mapping that
 * cannot populate is not an error (residency is then left to the first access). */
static int populate(const struct gm_region *r, uint64_t first, uint64_t n)
{
	int advice = r->flags & (GM_REGION_READONLY | GM_REGION_FILE_BACKED) ?
			     MADV_POPULATE_READ : MADV_POPULATE_WRITE;
	uintptr_t start = (uintptr_t)r->hva + (first << GM_PAGE_SHIFT);
	uintptr_t end = start + (n << GM_PAGE_SHIFT);

	if (!__atomic_load_n(&populate_supported, __ATOMIC_RELAXED))
		return 0;
	start &= ~(uintptr_t)(GM_PAGE_SIZE - 1); /* adopted mappings may be unaligned */
	if (madvise((void *)start, end - start, advice) == 0)
		return 0;
	if (errno == EINVAL) {
		/* Old kernel (or a mapping that cannot be populated): say so once. */
		__atomic_store_n(&populate_supported, 0, __ATOMIC_RELAXED);
		return 0;
	}
	return errno == ENOMEM ? -ENOMEM : -EFAULT;
}

/* Populates every run of pages in the span that no pin has populated yet, and remembers
 * them (a pinned page always has its bit set: gm_discard() refuses pinned pages). */
static int populate_span(const struct pin_span *s)
{
	unsigned long *done = s->r->populated;
	uint64_t p = s->first;

	while (p <= s->last) {
		uint64_t run = p;
		int ret;

		while (run <= s->last && !gm_test_bit(done, run))
			run++;
		if (run > p) {
			ret = populate(s->r, p, run - p);
			if (ret)
				return ret;
			for (uint64_t q = p; q < run; q++)
				gm_assign_bit(done, q, true);
		}
		p = run + 1;
	}
	return 0;
}

/* Checks that the spans can be pinned; sets *fresh to the number of pages going 0 -> 1. */
static int pin_check(struct pin_span *spans, int n, unsigned flags, uint64_t *fresh)
{
	*fresh = 0;
	for (int i = 0; i < n; i++) {
		struct gm_region *r = spans[i].r;

		if ((flags & GM_PIN_LONGTERM) &&
		    (r->flags & (GM_REGION_FILE_BACKED | GM_REGION_DISCARDABLE)))
			return -EPERM;
		if (!r->pins) {
			r->pins = calloc(r->size >> GM_PAGE_SHIFT, sizeof(*r->pins));
			r->populated = calloc(gm_dirty_words(r->size), sizeof(unsigned long));
			if (!r->pins || !r->populated) {
				free(r->pins);
				free(r->populated);
				r->pins = NULL;
				r->populated = NULL;
				return -ENOMEM;
			}
		}
		for (uint64_t p = spans[i].first; p <= spans[i].last; p++) {
			if (r->pins[p] == UINT32_MAX)
				return -EOVERFLOW;
			*fresh += r->pins[p] == 0;
		}
	}
	return 0;
}

static int pin_locked(struct guest_memory *gm, uint64_t gpa, uint64_t len, unsigned flags)
{
	struct pin_span spans[GM_MAX_REGIONS];
	uint64_t fresh;
	int n, ret;

	n = collect_spans(gm, gpa, len, spans);
	if (n < 0)
		return n;
	ret = pin_check(spans, n, flags, &fresh);
	if (ret)
		return ret;
	if (fresh && gm->pin_limit != GM_PIN_UNLIMITED &&
	    (gm->pinned_bytes > gm->pin_limit ||
	     fresh > (gm->pin_limit - gm->pinned_bytes) >> GM_PAGE_SHIFT))
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		ret = populate_span(&spans[i]);
		if (ret)
			return ret;
	}
	for (int i = 0; i < n; i++)
		for (uint64_t p = spans[i].first; p <= spans[i].last; p++)
			spans[i].r->pins[p]++;
	gm->pinned_bytes += fresh << GM_PAGE_SHIFT;
	return 0;
}

int gm_pin(struct guest_memory *gm, uint64_t gpa, uint64_t len, unsigned flags)
{
	int ret;

	if (flags & ~GM_PIN_LONGTERM)
		return -EINVAL;
	if (len == 0)
		return gm_find_region(gm, gpa) ? 0 : -EFAULT;
	pthread_mutex_lock(&gm->pin_lock);
	ret = pin_locked(gm, gpa, len, flags);
	pthread_mutex_unlock(&gm->pin_lock);
	return ret;
}

static int unpin_locked(struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	struct pin_span spans[GM_MAX_REGIONS];
	uint64_t freed = 0;
	int n = collect_spans(gm, gpa, len, spans);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		const uint32_t *pins = spans[i].r->pins;

		for (uint64_t p = spans[i].first; p <= spans[i].last; p++)
			if (!pins || pins[p] == 0)
				return -EINVAL;
	}
	for (int i = 0; i < n; i++)
		for (uint64_t p = spans[i].first; p <= spans[i].last; p++)
			freed += --spans[i].r->pins[p] == 0;
	gm->pinned_bytes -= freed << GM_PAGE_SHIFT;
	return 0;
}

int gm_unpin(struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	int ret;

	if (len == 0)
		return gm_find_region(gm, gpa) ? 0 : -EFAULT;
	pthread_mutex_lock(&gm->pin_lock);
	ret = unpin_locked(gm, gpa, len);
	pthread_mutex_unlock(&gm->pin_lock);
	return ret;
}

uint32_t gm_pin_count(struct guest_memory *gm, uint64_t gpa)
{
	const struct gm_region *r = gm_find_region(gm, gpa);
	uint32_t count = 0;

	if (!r)
		return 0;
	pthread_mutex_lock(&gm->pin_lock);
	if (r->pins)
		count = r->pins[(gpa - r->gpa) >> GM_PAGE_SHIFT];
	pthread_mutex_unlock(&gm->pin_lock);
	return count;
}

bool gm_is_pinned(struct guest_memory *gm, uint64_t gpa)
{
	return gm_pin_count(gm, gpa) > 0;
}

void gm_set_pin_limit(struct guest_memory *gm, uint64_t bytes)
{
	pthread_mutex_lock(&gm->pin_lock);
	gm->pin_limit = bytes;
	pthread_mutex_unlock(&gm->pin_lock);
}

uint64_t gm_pinned_bytes(struct guest_memory *gm)
{
	uint64_t bytes;

	pthread_mutex_lock(&gm->pin_lock);
	bytes = gm->pinned_bytes;
	pthread_mutex_unlock(&gm->pin_lock);
	return bytes;
}

/* Frees the pages of one span: a hole in the backing file, or dropped anonymous pages. */
static int discard_span(struct pin_span *s)
{
	struct gm_region *r = s->r;
	uint64_t off = s->first << GM_PAGE_SHIFT, n = (s->last - s->first + 1) << GM_PAGE_SHIFT;
	int ret;

	if (r->fd >= 0)
		ret = fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)(r->fd_offset + off), (off_t)n);
	else
		ret = madvise(r->hva + off, n, MADV_DONTNEED);
	if (ret < 0)
		return -errno;
	for (uint64_t p = s->first; r->populated && p <= s->last; p++)
		gm_assign_bit(r->populated, p, false);
	return 0;
}

static int discard_locked(struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	struct pin_span spans[GM_MAX_REGIONS];
	int n = collect_spans(gm, gpa, len, spans), ret;

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		const struct gm_region *r = spans[i].r;

		if (!(r->flags & GM_REGION_DISCARDABLE))
			return -EPERM;
		for (uint64_t p = spans[i].first; r->pins && p <= spans[i].last; p++)
			if (r->pins[p])
				return -EBUSY;
	}
	for (int i = 0; i < n; i++) {
		ret = discard_span(&spans[i]);
		if (ret)
			return ret;
	}
	return 0;
}

int gm_discard(struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	int ret;

	if (len == 0 || (gpa | len) & (GM_PAGE_SIZE - 1))
		return -EINVAL;
	pthread_mutex_lock(&gm->pin_lock);
	ret = discard_locked(gm, gpa, len);
	pthread_mutex_unlock(&gm->pin_lock);
	return ret;
}
