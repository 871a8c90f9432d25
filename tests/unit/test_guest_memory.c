/* Unit tests of guest memory: region set-up, checked lookups at the edges, overflowing ranges,
 * read/write across regions, read-only regions, dirty bits and memfd sharing. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "memory/guest_memory.h"

#define PAGE GM_PAGE_SIZE
#define MiB (1ull << 20)

/* Layout of the standard fixture:
 *   region 0: [1 MiB, 1 MiB + 64 KiB)       RAM
 *   region 1: [1 MiB + 64 KiB, + 64 KiB)    RAM, adjacent to region 0
 *   gap:      [1 MiB + 128 KiB, 2 MiB)
 *   region 2: [2 MiB, 2 MiB + 16 KiB)       READONLY */
#define R0 (1 * MiB)
#define R1 (R0 + 64 * 1024)
#define GAP (R1 + 64 * 1024)
#define R2 (2 * MiB)
#define R2_SIZE (16 * 1024)

static int setup(void **state)
{
	struct guest_memory *gm = calloc(1, sizeof(*gm));

	assert_non_null(gm);
	assert_int_equal(gm_init(gm), 0);
	assert_int_equal(gm_add_ram(gm, R0, 64 * 1024, 0), 0);
	assert_int_equal(gm_add_ram(gm, R1, 64 * 1024, 0), 1);
	assert_int_equal(gm_add_ram(gm, R2, R2_SIZE, GM_REGION_READONLY), 2);
	*state = gm;
	return 0;
}

static int teardown(void **state)
{
	gm_destroy(*state);
	free(*state);
	return 0;
}

static void test_find_region_edges(void **state)
{
	struct guest_memory *gm = *state;

	assert_null(gm_find_region(gm, 0));
	assert_null(gm_find_region(gm, R0 - 1));
	assert_ptr_equal(gm_find_region(gm, R0), &gm->regions[0]);
	assert_ptr_equal(gm_find_region(gm, R1 - 1), &gm->regions[0]);
	assert_ptr_equal(gm_find_region(gm, R1), &gm->regions[1]);
	assert_ptr_equal(gm_find_region(gm, GAP - 1), &gm->regions[1]);
	assert_null(gm_find_region(gm, GAP));
	assert_null(gm_find_region(gm, R2 - 1));
	assert_ptr_equal(gm_find_region(gm, R2), &gm->regions[2]);
	assert_ptr_equal(gm_find_region(gm, R2 + R2_SIZE - 1), &gm->regions[2]);
	assert_null(gm_find_region(gm, R2 + R2_SIZE));
	assert_null(gm_find_region(gm, UINT64_MAX));
}

static void test_translate_edges(void **state)
{
	struct guest_memory *gm = *state;
	uint8_t *base = gm->regions[0].hva;

	assert_ptr_equal(gm_translate(gm, R0, 1), base);
	assert_ptr_equal(gm_translate(gm, R0, 64 * 1024), base);
	assert_ptr_equal(gm_translate(gm, R1 - 1, 1), base + 64 * 1024 - 1);
	/* One past the end, and a range one byte too long. */
	assert_null(gm_translate(gm, R0 - 1, 1));
	assert_null(gm_translate(gm, R0, 64 * 1024 + 1));
	/* Crossing into the adjacent region is not one region: no pointer. */
	assert_null(gm_translate(gm, R1 - 1, 2));
	/* Leaving into the gap. */
	assert_null(gm_translate(gm, GAP - 4, 8));
	assert_null(gm_translate(gm, GAP, 1));
	/* len 0: valid inside a region, not outside. */
	assert_ptr_equal(gm_translate(gm, R1 - 1, 0), base + 64 * 1024 - 1);
	assert_null(gm_translate(gm, GAP, 0));
}

static void test_translate_overflow(void **state)
{
	struct guest_memory *gm = *state;

	/* gpa + len wraps to a small value inside a region: must be refused. */
	assert_null(gm_translate(gm, R0 + 16, UINT64_MAX));
	assert_null(gm_translate(gm, R0, UINT64_MAX - R0 + 1 + 16));
	assert_null(gm_translate(gm, UINT64_MAX, 2));
	assert_null(gm_translate(gm, UINT64_MAX - 1, UINT64_MAX));
	assert_null(gm_translate_writable(gm, R0 + 16, UINT64_MAX));

	void *hva = (void *)1;
	assert_int_equal(gm_translate_partial(gm, UINT64_MAX, 2, &hva), 0);
	assert_null(hva);

	uint8_t buf[16];
	assert_int_equal(gm_read(gm, UINT64_MAX - 4, buf, sizeof(buf)), -EFAULT);
	assert_int_equal(gm_write(gm, UINT64_MAX - 4, buf, sizeof(buf)), -EFAULT);
	assert_int_equal(gm_read(gm, R0, buf, SIZE_MAX), -EFAULT);
}

static void test_translate_partial(void **state)
{
	struct guest_memory *gm = *state;
	void *hva;

	assert_int_equal(gm_translate_partial(gm, R1 - 10, 100, &hva), 10);
	assert_ptr_equal(hva, gm->regions[0].hva + 64 * 1024 - 10);
	assert_int_equal(gm_translate_partial(gm, R1, 100, &hva), 100);
	assert_ptr_equal(hva, gm->regions[1].hva);
	assert_int_equal(gm_translate_partial(gm, GAP - 1, UINT64_MAX, &hva), 1);
	assert_int_equal(gm_translate_partial(gm, GAP, 100, &hva), 0);
	assert_null(hva);
}

static void test_add_refusals(void **state)
{
	struct guest_memory *gm = *state;
	void *mem;

	/* Overlaps: inside, straddling the start, straddling the end, covering. */
	assert_int_equal(gm_add_ram(gm, R0, PAGE, 0), -EEXIST);
	assert_int_equal(gm_add_ram(gm, R0 - PAGE, 2 * PAGE, 0), -EEXIST);
	assert_int_equal(gm_add_ram(gm, GAP - PAGE, 2 * PAGE, 0), -EEXIST);
	assert_int_equal(gm_add_ram(gm, 0, 4 * MiB, 0), -EEXIST);
	/* Misaligned start or size, empty, wrapping or reaching 2^64. */
	assert_int_equal(gm_add_ram(gm, GAP + 1, PAGE, 0), -EINVAL);
	assert_int_equal(gm_add_ram(gm, GAP, PAGE + 1, 0), -EINVAL);
	assert_int_equal(gm_add_ram(gm, GAP, 0, 0), -EINVAL);
	assert_int_equal(gm_add_ram(gm, UINT64_MAX - PAGE + 1, 2 * PAGE, 0), -EINVAL);
	assert_int_equal(gm_add_ram(gm, UINT64_MAX - PAGE + 1, PAGE, 0), -EINVAL);
	/* A memfd is not a file: FILE_BACKED RAM is refused. */
	assert_int_equal(gm_add_ram(gm, GAP, PAGE, GM_REGION_FILE_BACKED), -EINVAL);
	/* Adopted mapping: same checks, and no NULL hva. */
	mem = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	assert_int_equal(gm_add_mapping(gm, R1, PAGE, mem, -1, 0, 0x1000, 0, false), -EEXIST);
	assert_int_equal(gm_add_mapping(gm, GAP, PAGE, NULL, -1, 0, 0x1000, 0, false), -EINVAL);
	assert_int_equal(gm_add_mapping(gm, GAP, PAGE, mem, -1, 0, UINT64_MAX, 0, false), -EINVAL);
	assert_int_equal(gm->nregions, 3);
	/* Lookups still work after the refusals. */
	assert_ptr_equal(gm_find_region(gm, R1), &gm->regions[1]);
	munmap(mem, PAGE);
}

static void test_too_many_regions(void **state)
{
	(void)state;
	struct guest_memory gm;

	assert_int_equal(gm_init(&gm), 0);
	/* Added in descending order so the sorted index is exercised. */
	for (int i = GM_MAX_REGIONS - 1; i >= 0; i--)
		assert_int_equal(gm_add_ram(&gm, (uint64_t)i * 2 * PAGE, PAGE, 0),
				 GM_MAX_REGIONS - 1 - i);
	assert_int_equal(gm_add_ram(&gm, 64 * MiB, PAGE, 0), -ENOSPC);
	for (int i = 0; i < GM_MAX_REGIONS; i++) {
		const struct gm_region *r = gm_find_region(&gm, (uint64_t)i * 2 * PAGE + 5);

		assert_non_null(r);
		assert_int_equal(r->gpa, (uint64_t)i * 2 * PAGE);
		assert_null(gm_find_region(&gm, (uint64_t)i * 2 * PAGE + PAGE));
	}
	gm_destroy(&gm);
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + seed);
}

static void test_read_write_across_regions(void **state)
{
	struct guest_memory *gm = *state;
	size_t len = 3 * PAGE;
	uint64_t gpa = R1 - PAGE - 100; /* 100 bytes before a page, ends in region 1 */
	uint8_t *in = malloc(len), *out = malloc(len);

	fill(in, len, 7);
	assert_int_equal(gm_write(gm, gpa, in, len), 0);
	assert_int_equal(gm_read(gm, gpa, out, len), 0);
	assert_memory_equal(in, out, len);
	/* The bytes landed where the host mappings say. */
	assert_memory_equal(gm->regions[0].hva + (gpa - R0), in, R1 - gpa);
	assert_memory_equal(gm->regions[1].hva, in + (R1 - gpa), len - (R1 - gpa));
	free(in);
	free(out);
}

static void test_efault_writes_nothing(void **state)
{
	struct guest_memory *gm = *state;
	uint8_t zero[256] = { 0 }, ones[256], out[256];

	memset(ones, 0xff, sizeof(ones));
	/* Starts mapped, runs into the gap: refused, and the mapped part untouched. */
	assert_int_equal(gm_write(gm, GAP - 100, ones, sizeof(ones)), -EFAULT);
	assert_memory_equal(gm->regions[1].hva + (GAP - 100 - R1), zero, 100);
	assert_false(gm_is_dirty(gm, GAP - 100));
	/* Starts in region 1, crosses the gap into nothing at all. */
	assert_int_equal(gm_write(gm, GAP - 1, ones, 2), -EFAULT);
	assert_int_equal(gm->regions[1].hva[GAP - 1 - R1], 0);
	/* Unmapped start. */
	assert_int_equal(gm_write(gm, R0 - 10, ones, 20), -EFAULT);
	assert_int_equal(gm->regions[0].hva[0], 0);
	assert_int_equal(gm_read(gm, GAP - 100, out, sizeof(out)), -EFAULT);
	assert_int_equal(gm_read(gm, 0, out, 1), -EFAULT);
	/* len 0 touches nothing and succeeds. */
	assert_int_equal(gm_read(gm, 0, out, 0), 0);
	assert_int_equal(gm_write(gm, 0, ones, 0), 0);
}

static void test_readonly(void **state)
{
	struct guest_memory *gm = *state;
	uint8_t byte = 0x5a, out = 0;

	/* The VMM loads a ROM through hva; guests read it; device writes are refused. */
	gm->regions[2].hva[10] = 0x42;
	assert_int_equal(gm_read(gm, R2 + 10, &out, 1), 0);
	assert_int_equal(out, 0x42);
	assert_int_equal(gm_write(gm, R2 + 10, &byte, 1), -EFAULT);
	assert_int_equal(gm->regions[2].hva[10], 0x42);
	assert_false(gm_is_dirty(gm, R2 + 10));
	assert_non_null(gm_translate(gm, R2, 1));
	assert_null(gm_translate_writable(gm, R2, 1));
	assert_non_null(gm_translate_writable(gm, R0, 1));
}

/* Every page of region idx: dirty exactly when expect(page index) says so. */
static void check_dirty_pages(struct guest_memory *gm, unsigned idx, uint64_t first, uint64_t last)
{
	const struct gm_region *r = &gm->regions[idx];

	for (uint64_t p = 0; p < r->size / PAGE; p++)
		assert_int_equal(gm_is_dirty(gm, r->gpa + p * PAGE + 1), p >= first && p <= last);
}

static void test_dirty_by_write(void **state)
{
	struct guest_memory *gm = *state;
	uint8_t buf[PAGE + 2] = { 1 };
	unsigned long bits[4] = { 0 };

	assert_int_equal(gm_dirty_bitmap_words(gm, 0), 1);
	/* Last byte of page 3 to first byte of page 5 of region 0: pages 3, 4, 5. */
	assert_int_equal(gm_write(gm, R0 + 4 * PAGE - 1, buf, sizeof(buf)), 0);
	check_dirty_pages(gm, 0, 3, 5);
	check_dirty_pages(gm, 1, 1, 0); /* none */
	assert_int_equal(gm_dirty_fetch_and_clear(gm, 0, bits), 3);
	assert_int_equal(bits[0], 0x38ul);
	check_dirty_pages(gm, 0, 1, 0);
	assert_int_equal(gm_dirty_fetch_and_clear(gm, 0, bits), 0);
	assert_int_equal(bits[0], 0);

	/* A write across the region boundary dirties the last page of 0 and first of 1. */
	assert_int_equal(gm_write(gm, R1 - 1, buf, 2), 0);
	check_dirty_pages(gm, 0, 15, 15);
	check_dirty_pages(gm, 1, 0, 0);
	assert_int_equal(gm_dirty_fetch_and_clear(gm, 1, bits), 1);
	assert_int_equal(bits[0], 1ul);
	assert_int_equal(gm_dirty_fetch_and_clear(gm, 3, bits), -EINVAL);
	assert_int_equal(gm_dirty_bitmap_words(gm, 3), 0);
}

static void test_mark_dirty(void **state)
{
	struct guest_memory *gm = *state;
	unsigned long bits[1];

	/* A range from region 1 through the gap to the ROM: unmapped parts ignored. */
	gm_mark_dirty(gm, GAP - PAGE, R2 - GAP + 3 * PAGE);
	check_dirty_pages(gm, 0, 1, 0);
	check_dirty_pages(gm, 1, 15, 15);
	check_dirty_pages(gm, 2, 0, 1);
	gm_mark_dirty(gm, R0 + 5 * PAGE, 0); /* len 0: nothing */
	check_dirty_pages(gm, 0, 1, 0);
	gm_mark_dirty(gm, UINT64_MAX - 10, 100); /* wraps: nothing, no crash */
	gm_mark_dirty(gm, 0, UINT64_MAX);        /* everything mapped */
	check_dirty_pages(gm, 0, 0, 15);
	check_dirty_pages(gm, 1, 0, 15);
	assert_int_equal(gm_dirty_fetch_and_clear(gm, 0, bits), 16);
	assert_int_equal(bits[0], 0xfffful);
}

/* Bits in words past the first: a region of 200 pages, a range straddling word 1..3. */
static void test_dirty_words(void **state)
{
	(void)state;
	struct guest_memory gm;
	unsigned long bits[4];

	assert_int_equal(gm_init(&gm), 0);
	assert_int_equal(gm_add_ram(&gm, 0, 200 * PAGE, 0), 0);
	assert_int_equal(gm_dirty_bitmap_words(&gm, 0), 4);
	gm_mark_dirty(&gm, 60 * PAGE, 140 * PAGE); /* pages 60..199 */
	assert_false(gm_is_dirty(&gm, 59 * PAGE));
	assert_true(gm_is_dirty(&gm, 60 * PAGE));
	assert_true(gm_is_dirty(&gm, 199 * PAGE));
	assert_int_equal(gm_dirty_fetch_and_clear(&gm, 0, bits), 140);
	assert_int_equal(bits[0], 0xful << 60);
	assert_int_equal(bits[1], ~0ul);
	assert_int_equal(bits[2], ~0ul);
	assert_int_equal(bits[3], 0xfful);
	gm_destroy(&gm);
}

#define DIRTY_PAGES 4096

struct marker {
	struct guest_memory *gm;
	unsigned parity; /* marks the even or the odd pages */
};

static void *mark_run(void *arg)
{
	struct marker *m = arg;

	for (uint64_t p = m->parity; p < DIRTY_PAGES; p += 2)
		gm_mark_dirty(m->gm, p * PAGE + 8, 16);
	return NULL;
}

/* Two threads mark every page once while a third fetches and clears: no bit is lost and
 * none is seen twice. */
static void test_dirty_concurrent(void **state)
{
	(void)state;
	struct guest_memory gm;
	unsigned long bits[DIRTY_PAGES / 64], seen[DIRTY_PAGES / 64] = { 0 };
	struct marker m[2] = { { &gm, 0 }, { &gm, 1 } };
	pthread_t tid[2];
	long total = 0, n;

	assert_int_equal(gm_init(&gm), 0);
	assert_int_equal(gm_add_ram(&gm, 0, DIRTY_PAGES * PAGE, 0), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, mark_run, &m[i]), 0);
	for (int round = 0; round < 200; round++) {
		n = gm_dirty_fetch_and_clear(&gm, 0, bits);
		assert_true(n >= 0);
		total += n;
		for (unsigned w = 0; w < DIRTY_PAGES / 64; w++) {
			assert_int_equal(seen[w] & bits[w], 0);
			seen[w] |= bits[w];
		}
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(tid[i], NULL), 0);
	total += gm_dirty_fetch_and_clear(&gm, 0, bits);
	for (unsigned w = 0; w < DIRTY_PAGES / 64; w++) {
		assert_int_equal(seen[w] & bits[w], 0);
		assert_int_equal(seen[w] | bits[w], ~0ul);
	}
	assert_int_equal(total, DIRTY_PAGES);
	gm_destroy(&gm);
}

static void test_uaddr(void **state)
{
	(void)state;
	struct guest_memory gm;
	uint64_t gpa = 0;
	void *mem = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(mem != MAP_FAILED);
	assert_int_equal(gm_init(&gm), 0);
	assert_int_equal(gm_add_mapping(&gm, 0x100000, 4 * PAGE, mem, -1, 0, 0x7f0000000000, 0, true), 0);
	assert_int_equal(gm_uaddr_to_gpa(&gm, 0x7f0000000000, 4 * PAGE, &gpa), 0);
	assert_int_equal(gpa, 0x100000);
	assert_int_equal(gm_uaddr_to_gpa(&gm, 0x7f0000000000 + 4 * PAGE - 1, 1, &gpa), 0);
	assert_int_equal(gpa, 0x100000 + 4 * PAGE - 1);
	gpa = 42;
	assert_int_equal(gm_uaddr_to_gpa(&gm, 0x7f0000000000 + 4 * PAGE, 1, &gpa), -EFAULT);
	assert_int_equal(gm_uaddr_to_gpa(&gm, 0x7f0000000000 - 1, 2, &gpa), -EFAULT);
	assert_int_equal(gm_uaddr_to_gpa(&gm, 0x7f0000000000 + 1, 4 * PAGE, &gpa), -EFAULT);
	assert_int_equal(gm_uaddr_to_gpa(&gm, 0x7f0000000000 + 8, UINT64_MAX, &gpa), -EFAULT);
	assert_int_equal(gpa, 42);
	/* The adopted mapping is the region's memory. */
	assert_ptr_equal(gm_translate(&gm, 0x100000 + 8, 8), (uint8_t *)mem + 8);
	gm_destroy(&gm); /* owns: unmaps */
}

static void test_memfd_shared(void **state)
{
	struct guest_memory *gm = *state;
	const struct gm_region *r = &gm->regions[1];
	const char msg[] = "seen by another process";
	uint8_t *second;

	assert_true(r->fd >= 0);
	assert_int_equal(r->uaddr, (uint64_t)(uintptr_t)r->hva);
	/* Map the region's fd a second time, as a device process would. */
	second = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, (off_t)r->fd_offset);
	assert_true(second != MAP_FAILED);
	assert_int_equal(gm_write(gm, R1 + PAGE + 3, msg, sizeof(msg)), 0);
	assert_memory_equal(second + PAGE + 3, msg, sizeof(msg));
	/* And the other way round. */
	second[5] = 0x77;
	uint8_t b = 0;
	assert_int_equal(gm_read(gm, R1 + 5, &b, 1), 0);
	assert_int_equal(b, 0x77);
	munmap(second, r->size);
	/* The fd is close-on-exec, so it does not leak into children. */
	assert_int_equal(fcntl(r->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	/* Its size is sealed: a process it is shared with can count on its mapping never losing
	 * pages to a truncate (SIGBUS), and nobody can lift the seals. */
	assert_int_equal(fcntl(r->fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
			 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	assert_int_equal(ftruncate(r->fd, (off_t)(r->fd_offset + r->size) / 2), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(r->fd, (off_t)(r->fd_offset + r->size) * 2), -1);
	assert_int_equal(errno, EPERM);
}

/* gm_zero: zeros exactly the range (unaligned ends, across two regions), marks it dirty, gives
 * whole pages of an unpinned memfd back (not resident afterwards), zeros pinned pages in place
 * (pins kept), refuses read-only and unmapped ranges without writing anything. */
static void test_zero(void **state)
{
	struct guest_memory *gm = *state;
	const uint64_t start = R0 + 100, len = 64 * 1024 + 2 * PAGE;
	uint8_t *buf = malloc(128 * 1024), *got = malloc(128 * 1024);
	unsigned long bits[4];
	unsigned char vec = 1;

	assert_non_null(buf);
	assert_non_null(got);
	memset(buf, 0xab, 128 * 1024);
	assert_int_equal(gm_write(gm, R0, buf, 128 * 1024), 0);
	gm_dirty_fetch_and_clear(gm, 0, bits);
	gm_dirty_fetch_and_clear(gm, 1, bits);
	assert_int_equal(gm_pin(gm, R1 + PAGE, PAGE, 0), 0); /* region 1 pinned: memset there */
	assert_int_equal(gm_zero(gm, start, len), 0);
	/* (before anything reads it: a read of a hole in a shared memfd mapping allocates) */
	assert_int_equal(mincore(gm->regions[0].hva + 4 * PAGE, PAGE, &vec), 0);
	assert_int_equal(vec & 1, 0);
	assert_int_equal(gm_read(gm, R0, got, 128 * 1024), 0);
	for (uint64_t i = 0; i < 128 * 1024; i++)
		assert_int_equal(got[i], R0 + i >= start && R0 + i < start + len ? 0 : 0xab);
	assert_int_equal(gm_dirty_fetch_and_clear(gm, 0, bits), 16);
	assert_int_equal(gm_dirty_fetch_and_clear(gm, 1, bits), 3);
	assert_int_equal(gm_pin_count(gm, R1 + PAGE), 1);
	assert_int_equal(gm_unpin(gm, R1 + PAGE, PAGE), 0);
	assert_int_equal(gm_zero(gm, R2, 1), -EFAULT);
	assert_int_equal(gm_zero(gm, R1 + 64 * 1024 - 8, 16), -EFAULT); /* runs into the gap */
	assert_int_equal(gm_read(gm, R1 + 64 * 1024 - 8, got, 8), 0);
	assert_memory_equal(got, buf, 8);
	assert_int_equal(gm_zero(gm, GAP, 0), 0);
	free(buf);
	free(got);
}

/* gm_load_fd: the file's bytes land exactly at gpa (unaligned, across two regions, from an
 * offset in the file), marked dirty; a file that ends early is -EIO; read-only or unmapped
 * ranges are refused before anything is copied; an adopted (not owned) mapping is filled by
 * pread instead of sendfile, with the same result. */
static void test_load_fd(void **state)
{
	struct guest_memory *gm = *state;
	const uint64_t len = 64 * 1024 + 3 * PAGE + 17, start = R0 + 4 * PAGE + 5;
	uint8_t *data = malloc(len + 1000), *got = malloc(len);
	char path[] = "/tmp/vireo-test-loadfd.XXXXXX";
	unsigned long bits[4];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_non_null(data);
	assert_non_null(got);
	for (uint64_t i = 0; i < len + 1000; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(write(fd, data, len + 1000), (ssize_t)(len + 1000));
	assert_int_equal(gm_load_fd(gm, start, fd, 1000, len), 0);
	assert_int_equal(gm_read(gm, start, got, len), 0);
	assert_memory_equal(got, data + 1000, len);
	assert_int_equal(gm_read(gm, start - 1, got, 1), 0);
	assert_int_equal(got[0], 0);
	assert_int_equal(gm_dirty_fetch_and_clear(gm, 0, bits), 12);
	assert_int_equal(gm_dirty_fetch_and_clear(gm, 1, bits), 8);
	assert_int_equal(gm_load_fd(gm, R0, fd, len, 2000), -EIO); /* 1000 bytes left */
	assert_int_equal(gm_load_fd(gm, R2, fd, 0, 10), -EFAULT);
	assert_int_equal(gm_load_fd(gm, GAP - 10, fd, 0, 20), -EFAULT);
	assert_int_equal(gm_read(gm, GAP - 10, got, 10), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(got[i], 0); /* nothing written before the refusal */

	/* Adopted memory (a vhost-user-like mapping this map does not own): pread. */
	struct guest_memory other;
	uint8_t *m = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	assert_true(m != MAP_FAILED);
	assert_int_equal(gm_init(&other), 0);
	assert_int_equal(gm_add_mapping(&other, 0, 16 * PAGE, m, -1, 0, 0, 0, false), 0);
	assert_int_equal(gm_load_fd(&other, 3, fd, 5, 10 * PAGE), 0);
	assert_memory_equal(m + 3, data + 5, 10 * PAGE);
	gm_destroy(&other);
	munmap(m, 16 * PAGE);
	close(fd);
	free(data);
	free(got);
}

static void test_destroy_reinit(void **state)
{
	(void)state;
	struct guest_memory gm;

	assert_int_equal(gm_init(&gm), 0);
	assert_int_equal(gm_add_ram(&gm, 0, PAGE, 0), 0);
	gm_destroy(&gm);
	assert_int_equal(gm.nregions, 0);
	assert_null(gm_translate(&gm, 0, 1));
	assert_int_equal(gm_init(&gm), 0);
	assert_int_equal(gm_add_ram(&gm, 0, PAGE, 0), 0);
	gm_destroy(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_find_region_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_translate_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_translate_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_translate_partial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_refusals, setup, teardown),
		cmocka_unit_test(test_too_many_regions),
		cmocka_unit_test_setup_teardown(test_read_write_across_regions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_efault_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dirty_by_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_dirty, setup, teardown),
		cmocka_unit_test(test_dirty_words),
		cmocka_unit_test(test_dirty_concurrent),
		cmocka_unit_test(test_uaddr),
		cmocka_unit_test_setup_teardown(test_memfd_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_fd, setup, teardown),
		cmocka_unit_test(test_destroy_reinit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
