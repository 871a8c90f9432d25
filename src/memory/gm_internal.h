/* Helpers shared by the guest-memory files (guest_memory.c, dirty.c, pin.c); not an API. */
#ifndef VIREO_MEMORY_GM_INTERNAL_H
#define VIREO_MEMORY_GM_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include "memory/guest_memory.h"

#define GM_BITS_PER_WORD (sizeof(unsigned long) * CHAR_BIT)

/* Words of a one-bit-per-page bitmap for a region of size bytes. */
static inline uint64_t gm_dirty_words(uint64_t size)
{
	uint64_t pages = size >> GM_PAGE_SHIFT;

	return (pages + GM_BITS_PER_WORD - 1) / GM_BITS_PER_WORD;
}

/* The first region starting above gpa, or NULL (for walks that skip holes). */
const struct gm_region *gm_region_after(const struct guest_memory *gm, uint64_t gpa);

#endif
