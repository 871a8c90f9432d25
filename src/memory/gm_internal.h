/* Helpers shared by the guest-memory files (guest_memory.c, dirty.c, pin.c); not an API. */
#ifndef VIREO_MEMORY_GM_INTERNAL_H
#define VIREO_MEMORY_GM_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "memory/guest_memory.h"

#define GM_BITS_PER_WORD (sizeof(unsigned long) * CHAR_BIT)

/* Words of a one-bit-per-page bitmap for a region of size bytes. */
static inline uint64_t gm_dirty_words(uint64_t size)
{
	uint64_t pages = size >> GM_PAGE_SHIFT;

	return (pages + GM_BITS_PER_WORD - 1) / GM_BITS_PER_WORD;
}

/* Plain (non-atomic) bit helpers, for bitmaps used only under gm->pin_lock. */
static inline bool gm_test_bit(const unsigned long *map, uint64_t bit)
{
	return map[bit / GM_BITS_PER_WORD] >> (bit % GM_BITS_PER_WORD) & 1;
}

static inline void gm_assign_bit(unsigned long *map, uint64_t bit, bool val)
{
	unsigned long mask = 1ul << (bit % GM_BITS_PER_WORD);

	if (val)
		map[bit / GM_BITS_PER_WORD] |= mask;
	else
		map[bit / GM_BITS_PER_WORD] &= ~mask;
}

/* The first region starting above gpa, or NULL (for walks that skip holes). */
const struct gm_region *gm_region_after(const struct guest_memory *gm, uint64_t gpa);

#endif
