/* Guest memory layout shared by the virtqueue tests (split and packed):
 *   R0  [0, 1 MiB)            RAM: rings at RING_GPA, buffers from BUF_GPA, tables at TABLE_GPA
 *   R1  [1 MiB, 2 MiB)        RAM, adjacent to R0 (a buffer may cross into it)
 *       [2 MiB, 4 MiB)        a gap: nothing mapped
 *   RO  [4 MiB, 4 MiB+64 KiB) read-only (ROM): devices may not write there
 */
#ifndef VIREO_TESTS_VQ_FIXTURE_H
#define VIREO_TESTS_VQ_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "vq_driver.h"

#define MIB        (1ull << 20)
#define R1_GPA     MIB
#define GAP_GPA    (2 * MIB)
#define RO_GPA     (4 * MIB)
#define RING_GPA   0x1000ull
#define BUF_GPA    0x40000ull
#define TABLE_GPA  0x80000ull
#define QSIZE      16

struct fx {
	struct guest_memory gm;
	struct vqd d;
	struct virtqueue vq;
	struct vq_elem e;
	uint64_t features;
};

static inline int fx_setup(void **state, uint64_t features)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(gm_init(&f->gm), 0);
	assert_true(gm_add_ram(&f->gm, 0, MIB, 0) >= 0);
	assert_true(gm_add_ram(&f->gm, R1_GPA, MIB, 0) >= 0);
	assert_true(gm_add_ram(&f->gm, RO_GPA, 64 * 1024, GM_REGION_READONLY) >= 0);
	f->features = features;
	assert_int_equal(vqd_init(&f->d, &f->gm, RING_GPA, QSIZE, features), 0);
	assert_int_equal(vqd_setup(&f->d, &f->vq, NULL), 0);
	*state = f;
	return 0;
}

static inline int fx_teardown(void **state)
{
	struct fx *f = *state;

	vqd_destroy(&f->d);
	gm_destroy(&f->gm);
	free(f);
	return 0;
}

/* Re-lay the rings (size n, features) and set the device queue up again. */
static inline void fx_reinit(struct fx *f, uint16_t n, uint64_t features)
{
	vqd_destroy(&f->d);
	assert_int_equal(vqd_init(&f->d, &f->gm, RING_GPA, n, features), 0);
	assert_int_equal(vqd_setup(&f->d, &f->vq, NULL), 0);
}

/* Clear every region's dirty bitmap. */
static inline void fx_clear_dirty(struct fx *f)
{
	static unsigned long bits[MIB / GM_PAGE_SIZE / (8 * sizeof(unsigned long)) + 1];

	for (unsigned i = 0; i < f->gm.nregions; i++)
		assert_true(gm_dirty_fetch_and_clear(&f->gm, i, bits) >= 0);
}

/* Dirty pages in all regions (and clears them). */
static inline long fx_count_dirty(struct fx *f)
{
	static unsigned long bits[MIB / GM_PAGE_SIZE / (8 * sizeof(unsigned long)) + 1];
	long n = 0;

	for (unsigned i = 0; i < f->gm.nregions; i++)
		n += gm_dirty_fetch_and_clear(&f->gm, i, bits);
	return n;
}

static inline uint8_t *fx_host(struct fx *f, uint64_t gpa)
{
	return gm_translate(&f->gm, gpa, 1);
}

/* Checks that iov i of the popped element is [gpa, gpa+len) of guest memory. */
static inline void fx_check_iov(struct fx *f, unsigned i, uint64_t gpa, uint64_t len)
{
	assert_ptr_equal(f->e.iov[i].iov_base, fx_host(f, gpa));
	assert_int_equal(f->e.iov[i].iov_len, len);
}

#endif
