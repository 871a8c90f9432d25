/* Dirty tracking of device writes (S3, S9 in shared/MISSION.md).
 *
 * KVM logs only what vCPUs write. Devices write guest memory from host threads, so every such
 * write sets a bit in its region's bitmap here; migration and snapshots fetch and clear the
 * bitmap alongside KVM's log. Bits are set with an atomic OR (release: the data written before
 * is visible to whoever fetches the bit) and fetched with an atomic exchange per word
 * (acquire), so neither side takes a lock and no bit set concurrently with a fetch is lost.
 */
#include <errno.h>

#include "memory/gm_internal.h"
#include "memory/guest_memory.h"

/* Sets the bits of pages [first, last] (region-relative page numbers) in bitmap. */
static void set_bits(unsigned long *bitmap, uint64_t first, uint64_t last)
{
	while (first <= last) {
		uint64_t word = first / GM_BITS_PER_WORD;
		unsigned bit = first % GM_BITS_PER_WORD;
		uint64_t n = GM_BITS_PER_WORD - bit;
		unsigned long mask;

		if (n > last - first + 1)
			n = last - first + 1;
		mask = n == GM_BITS_PER_WORD ? ~0ul : ((1ul << n) - 1) << bit;
		__atomic_fetch_or(&bitmap[word], mask, __ATOMIC_RELEASE);
		first += n;
	}
}

void gm_mark_dirty(struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	while (len) {
		const struct gm_region *r = gm_find_region(gm, gpa);
		uint64_t off, n;

		if (!r) {
			/* Unmapped parts are ignored: go on at the next region, if it is in range. */
			r = gm_region_after(gm, gpa);
			if (!r || r->gpa - gpa >= len)
				return;
			len -= r->gpa - gpa;
			gpa = r->gpa;
		}
		off = gpa - r->gpa;
		n = r->size - off;
		if (n > len)
			n = len;
		set_bits(r->dirty, off >> GM_PAGE_SHIFT, (off + n - 1) >> GM_PAGE_SHIFT);
		gpa += n;
		len -= n;
	}
}

bool gm_is_dirty(const struct guest_memory *gm, uint64_t gpa)
{
	const struct gm_region *r = gm_find_region(gm, gpa);
	uint64_t page;

	if (!r)
		return false;
	page = (gpa - r->gpa) >> GM_PAGE_SHIFT;
	return __atomic_load_n(&r->dirty[page / GM_BITS_PER_WORD], __ATOMIC_ACQUIRE) >>
		       (page % GM_BITS_PER_WORD) & 1;
}

long gm_dirty_fetch_and_clear(struct guest_memory *gm, unsigned idx, unsigned long *out)
{
	const struct gm_region *r;
	uint64_t words;
	long count = 0;

	if (idx >= gm->nregions || !out)
		return -EINVAL;
	r = &gm->regions[idx];
	words = gm_dirty_words(r->size);
	for (uint64_t i = 0; i < words; i++) {
		unsigned long w = __atomic_load_n(&r->dirty[i], __ATOMIC_RELAXED);

		/* Skip the locked exchange for clean words (most of them, usually). */
		if (w)
			w = __atomic_exchange_n(&r->dirty[i], 0, __ATOMIC_ACQ_REL);

		out[i] = w;
		count += __builtin_popcountl(w);
	}
	return count;
}

uint64_t gm_dirty_bitmap_words(const struct guest_memory *gm, unsigned idx)
{
	return idx < gm->nregions ? gm_dirty_words(gm->regions[idx].size) : 0;
}
