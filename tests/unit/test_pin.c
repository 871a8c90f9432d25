/* Unit tests of the DMA pin API: counts, the locked-memory limit, all-or-nothing refusals,
 * long-term pins on file-backed and discardable memory, and concurrent pin/unpin. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "memory/guest_memory.h"

#define PAGE GM_PAGE_SIZE
#define MiB (1ull << 20)

/* Fixture: region 0 [1 MiB, +256 KiB) and region 1 right after it (64 KiB), unlimited pins. */
#define R0 (1 * MiB)
#define R0_SIZE (256 * 1024)
#define R1 (R0 + R0_SIZE)
#define R1_SIZE (64 * 1024)
#define END (R1 + R1_SIZE)

static int setup(void **state)
{
	struct guest_memory *gm = calloc(1, sizeof(*gm));

	assert_non_null(gm);
	assert_int_equal(gm_init(gm), 0);
	assert_int_equal(gm_add_ram(gm, R0, R0_SIZE, 0), 0);
	assert_int_equal(gm_add_ram(gm, R1, R1_SIZE, 0), 1);
	gm_set_pin_limit(gm, GM_PIN_UNLIMITED);
	*state = gm;
	return 0;
}

static int teardown(void **state)
{
	gm_destroy(*state);
	free(*state);
	return 0;
}

static void test_counts(void **state)
{
	struct guest_memory *gm = *state;

	assert_false(gm_is_pinned(gm, R0));
	assert_int_equal(gm_pin_count(gm, R0), 0);
	/* 1 byte before page 2 to 1 byte into page 3: pages 1, 2, 3 (every page touched). */
	assert_int_equal(gm_pin(gm, R0 + 2 * PAGE - 1, PAGE + 2, 0), 0);
	assert_false(gm_is_pinned(gm, R0));
	assert_true(gm_is_pinned(gm, R0 + PAGE));
	assert_true(gm_is_pinned(gm, R0 + 3 * PAGE + PAGE - 1));
	assert_false(gm_is_pinned(gm, R0 + 4 * PAGE));
	assert_int_equal(gm_pinned_bytes(gm), 3 * PAGE);
	/* A second pin of page 2 raises its count, not the pinned bytes. */
	assert_int_equal(gm_pin(gm, R0 + 2 * PAGE, 1, 0), 0);
	assert_int_equal(gm_pin_count(gm, R0 + 2 * PAGE + 100), 2);
	assert_int_equal(gm_pin_count(gm, R0 + PAGE), 1);
	assert_int_equal(gm_pinned_bytes(gm), 3 * PAGE);
	/* Down again. */
	assert_int_equal(gm_unpin(gm, R0 + 2 * PAGE - 1, PAGE + 2), 0);
	assert_int_equal(gm_pin_count(gm, R0 + 2 * PAGE), 1);
	assert_false(gm_is_pinned(gm, R0 + PAGE));
	assert_int_equal(gm_pinned_bytes(gm), PAGE);
	assert_int_equal(gm_unpin(gm, R0 + 2 * PAGE, PAGE), 0);
	assert_int_equal(gm_pinned_bytes(gm), 0);
	assert_false(gm_is_pinned(gm, R0 + 2 * PAGE));
	/* Unmapped addresses are never pinned. */
	assert_false(gm_is_pinned(gm, 0));
	assert_int_equal(gm_pin_count(gm, END), 0);
}

static void test_across_regions(void **state)
{
	struct guest_memory *gm = *state;

	assert_int_equal(gm_pin(gm, R1 - 2 * PAGE, 4 * PAGE, GM_PIN_LONGTERM), 0);
	assert_true(gm_is_pinned(gm, R1 - 2 * PAGE));
	assert_true(gm_is_pinned(gm, R1 + PAGE));
	assert_false(gm_is_pinned(gm, R1 + 2 * PAGE));
	assert_int_equal(gm_pinned_bytes(gm), 4 * PAGE);
	assert_int_equal(gm_unpin(gm, R1 - 2 * PAGE, 4 * PAGE), 0);
	assert_int_equal(gm_pinned_bytes(gm), 0);
}

static void test_unpin_unpinned(void **state)
{
	struct guest_memory *gm = *state;

	/* Never pinned at all (no counts allocated yet). */
	assert_int_equal(gm_unpin(gm, R1, PAGE), -EINVAL);
	/* Pages 0-1 pinned, 2 not: unpinning 0-2 is refused and changes nothing. */
	assert_int_equal(gm_pin(gm, R0, 2 * PAGE, 0), 0);
	assert_int_equal(gm_unpin(gm, R0, 3 * PAGE), -EINVAL);
	assert_int_equal(gm_pin_count(gm, R0), 1);
	assert_int_equal(gm_pin_count(gm, R0 + PAGE), 1);
	assert_int_equal(gm_pinned_bytes(gm), 2 * PAGE);
	/* Same across regions: the last page of 0 pinned, the first of 1 not. */
	assert_int_equal(gm_pin(gm, R1 - PAGE, PAGE, 0), 0);
	assert_int_equal(gm_unpin(gm, R1 - PAGE, 2 * PAGE), -EINVAL);
	assert_int_equal(gm_pin_count(gm, R1 - PAGE), 1);
	assert_int_equal(gm_pinned_bytes(gm), 3 * PAGE);
	/* Twice is once too many. */
	assert_int_equal(gm_unpin(gm, R0, 2 * PAGE), 0);
	assert_int_equal(gm_unpin(gm, R0, 2 * PAGE), -EINVAL);
	assert_int_equal(gm_unpin(gm, R1 - PAGE, PAGE), 0);
	assert_int_equal(gm_pinned_bytes(gm), 0);
}

static void test_limit(void **state)
{
	struct guest_memory *gm = *state;

	gm_set_pin_limit(gm, 8 * PAGE);
	assert_int_equal(gm_pin(gm, R0, 6 * PAGE, 0), 0);
	/* Pins of already pinned pages cost nothing. */
	assert_int_equal(gm_pin(gm, R0, 6 * PAGE, 0), 0);
	/* Up to the limit exactly. */
	assert_int_equal(gm_pin(gm, R0 + 6 * PAGE, 2 * PAGE, 0), 0);
	assert_int_equal(gm_pinned_bytes(gm), 8 * PAGE);
	/* One more page: refused. */
	assert_int_equal(gm_pin(gm, R0 + 8 * PAGE, 1, 0), -ENOMEM);
	/* A range with pinned pages and one new page: refused as a whole. */
	assert_int_equal(gm_pin(gm, R0 + 4 * PAGE, 5 * PAGE, 0), -ENOMEM);
	assert_int_equal(gm_pin_count(gm, R0 + 4 * PAGE), 2);
	assert_int_equal(gm_pin_count(gm, R0 + 7 * PAGE), 1);
	assert_false(gm_is_pinned(gm, R0 + 8 * PAGE));
	assert_int_equal(gm_pinned_bytes(gm), 8 * PAGE);
	/* Freeing one page makes room for one page. */
	assert_int_equal(gm_unpin(gm, R0 + 7 * PAGE, PAGE), 0);
	assert_int_equal(gm_pin(gm, R0 + 8 * PAGE, PAGE, 0), 0);
	assert_int_equal(gm_pinned_bytes(gm), 8 * PAGE);
	/* Lowering the limit below what is pinned keeps the pins, refuses new pages. */
	gm_set_pin_limit(gm, 2 * PAGE);
	assert_int_equal(gm_pin(gm, R0 + 20 * PAGE, PAGE, 0), -ENOMEM);
	assert_int_equal(gm_pin(gm, R0, PAGE, 0), 0);
	assert_int_equal(gm_pinned_bytes(gm), 8 * PAGE);
}

static void test_default_limit(void **state)
{
	(void)state;
	struct guest_memory gm;
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	assert_int_equal(gm_init(&gm), 0);
	if (rl.rlim_cur == RLIM_INFINITY)
		assert_true(gm.pin_limit == GM_PIN_UNLIMITED);
	else
		assert_true(gm.pin_limit == rl.rlim_cur);
	gm_destroy(&gm);
}

static void test_unmapped(void **state)
{
	struct guest_memory *gm = *state;

	assert_int_equal(gm_pin(gm, R0 - PAGE, PAGE, 0), -EFAULT);
	/* Mapped start running off the end: nothing pinned. */
	assert_int_equal(gm_pin(gm, END - 2 * PAGE, 3 * PAGE, 0), -EFAULT);
	assert_false(gm_is_pinned(gm, END - PAGE));
	assert_int_equal(gm_pinned_bytes(gm), 0);
	/* Wrapping ranges. */
	assert_int_equal(gm_pin(gm, R0, UINT64_MAX, 0), -EFAULT);
	assert_int_equal(gm_pin(gm, UINT64_MAX, 2, 0), -EFAULT);
	assert_int_equal(gm_unpin(gm, R0, UINT64_MAX), -EFAULT);
	assert_int_equal(gm_pinned_bytes(gm), 0);
	/* len 0: nothing to pin, but the address must be guest memory. */
	assert_int_equal(gm_pin(gm, R0, 0, 0), 0);
	assert_false(gm_is_pinned(gm, R0));
	assert_int_equal(gm_pin(gm, 0, 0, 0), -EFAULT);
	/* Unknown flags. */
	assert_int_equal(gm_pin(gm, R0, 1, 0x80), -EINVAL);
	assert_false(gm_is_pinned(gm, R0));
}

static void test_count_overflow(void **state)
{
	struct guest_memory *gm = *state;

	assert_int_equal(gm_pin(gm, R0, 2 * PAGE, 0), 0);
	/* 2^32 real pins would take too long: put page 1 one short of the maximum. */
	gm->regions[0].pins[1] = UINT32_MAX - 1;
	assert_int_equal(gm_pin(gm, R0, 2 * PAGE, 0), 0);
	assert_int_equal(gm_pin_count(gm, R0 + PAGE), UINT32_MAX);
	assert_int_equal(gm_pin(gm, R0, 2 * PAGE, 0), -EOVERFLOW);
	assert_int_equal(gm_pin_count(gm, R0), 2); /* page 0 unchanged too */
	assert_int_equal(gm_pin_count(gm, R0 + PAGE), UINT32_MAX);
	assert_int_equal(gm_unpin(gm, R0 + PAGE, 1), 0);
	assert_int_equal(gm_pin_count(gm, R0 + PAGE), UINT32_MAX - 1);
}

static void test_longterm_discardable(void **state)
{
	(void)state;
	struct guest_memory gm;

	assert_int_equal(gm_init(&gm), 0);
	gm_set_pin_limit(&gm, GM_PIN_UNLIMITED);
	assert_int_equal(gm_add_ram(&gm, 0, 4 * PAGE, 0), 0);
	assert_int_equal(gm_add_ram(&gm, 4 * PAGE, 4 * PAGE, GM_REGION_DISCARDABLE), 1);
	assert_int_equal(gm_pin(&gm, 4 * PAGE, PAGE, GM_PIN_LONGTERM), -EPERM);
	/* A long-term pin spanning plain RAM into discardable RAM: refused as a whole. */
	assert_int_equal(gm_pin(&gm, 2 * PAGE, 4 * PAGE, GM_PIN_LONGTERM), -EPERM);
	assert_false(gm_is_pinned(&gm, 2 * PAGE));
	assert_int_equal(gm_pinned_bytes(&gm), 0);
	/* Short-term pins of discardable memory are fine; long-term of plain RAM too. */
	assert_int_equal(gm_pin(&gm, 4 * PAGE, PAGE, 0), 0);
	assert_int_equal(gm_pin(&gm, 0, PAGE, GM_PIN_LONGTERM), 0);
	assert_int_equal(gm_pinned_bytes(&gm), 2 * PAGE);
	gm_destroy(&gm);
}

static void test_longterm_file_backed(void **state)
{
	(void)state;
	char path[] = "/tmp/vireo-test-pin-XXXXXX";
	struct guest_memory gm;
	uint8_t *mem;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, 8 * PAGE), 0);
	mem = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(mem != MAP_FAILED);
	assert_int_equal(gm_init(&gm), 0);
	gm_set_pin_limit(&gm, GM_PIN_UNLIMITED);
	assert_int_equal(gm_add_mapping(&gm, 0x10000, 8 * PAGE, mem, fd, 0,
					(uint64_t)(uintptr_t)mem, GM_REGION_FILE_BACKED, true), 0);
	assert_int_equal(gm_pin(&gm, 0x10000, PAGE, GM_PIN_LONGTERM), -EPERM);
	assert_false(gm_is_pinned(&gm, 0x10000));
	/* A short-term pin of the file's pages works (and populates them). */
	assert_int_equal(gm_pin(&gm, 0x10000, 8 * PAGE, 0), 0);
	assert_int_equal(gm_pinned_bytes(&gm), 8 * PAGE);
	assert_int_equal(gm_unpin(&gm, 0x10000, 8 * PAGE), 0);
	gm_destroy(&gm); /* owns: unmaps and closes */
}

/* True when the kernel has MADV_POPULATE_WRITE (Linux 5.14+). */
static bool have_populate(void)
{
	void *probe = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool ok;

	assert_true(probe != MAP_FAILED);
	ok = madvise(probe, PAGE, 23 /* MADV_POPULATE_WRITE */) == 0 || errno != EINVAL;
	munmap(probe, PAGE);
	return ok;
}

static bool resident(struct guest_memory *gm, uint64_t gpa)
{
	const struct gm_region *r = gm_find_region(gm, gpa);
	unsigned char vec = 0;

	assert_non_null(r);
	assert_int_equal(mincore(r->hva + ((gpa - r->gpa) & ~(PAGE - 1)), PAGE, &vec), 0);
	return vec & 1;
}

/* A pinned page is resident: mincore() reports it present right after the pin. */
static void test_pin_populates(void **state)
{
	struct guest_memory *gm = *state;
	unsigned char vec[4];

	if (!have_populate())
		skip(); /* kernel before 5.14: pins cannot populate */
	assert_int_equal(mincore(gm->regions[0].hva + 32 * PAGE, 4 * PAGE, vec), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(vec[i] & 1, 0); /* fresh memfd: nothing there yet */
	assert_int_equal(gm_pin(gm, R0 + 32 * PAGE, 4 * PAGE, 0), 0);
	assert_int_equal(mincore(gm->regions[0].hva + 32 * PAGE, 4 * PAGE, vec), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(vec[i] & 1, 1);
}

static void test_discard(void **state)
{
	(void)state;
	struct guest_memory gm;
	uint8_t data[2 * PAGE], out[2 * PAGE], zero[2 * PAGE] = { 0 };

	memset(data, 0xab, sizeof(data));
	assert_int_equal(gm_init(&gm), 0);
	gm_set_pin_limit(&gm, GM_PIN_UNLIMITED);
	assert_int_equal(gm_add_ram(&gm, 0, 8 * PAGE, 0), 0);
	assert_int_equal(gm_add_ram(&gm, 8 * PAGE, 8 * PAGE, GM_REGION_DISCARDABLE), 1);
	assert_int_equal(gm_write(&gm, 10 * PAGE, data, sizeof(data)), 0);
	assert_int_equal(gm_write(&gm, 2 * PAGE, data, sizeof(data)), 0);
	/* Refusals change nothing. */
	assert_int_equal(gm_discard(&gm, 2 * PAGE, PAGE), -EPERM);
	assert_int_equal(gm_discard(&gm, 7 * PAGE, 4 * PAGE), -EPERM); /* starts in plain RAM */
	assert_int_equal(gm_discard(&gm, 10 * PAGE + 1, PAGE), -EINVAL);
	assert_int_equal(gm_discard(&gm, 10 * PAGE, 0), -EINVAL);
	assert_int_equal(gm_discard(&gm, 14 * PAGE, 4 * PAGE), -EFAULT);
	assert_int_equal(gm_pin(&gm, 11 * PAGE + 5, 1, 0), 0);
	assert_int_equal(gm_discard(&gm, 10 * PAGE, 2 * PAGE), -EBUSY);
	assert_int_equal(gm_read(&gm, 10 * PAGE, out, sizeof(out)), 0);
	assert_memory_equal(out, data, sizeof(out));
	/* Unpinned: the pages go back to the host and read as zeros. */
	assert_int_equal(gm_unpin(&gm, 11 * PAGE, PAGE), 0);
	assert_int_equal(gm_discard(&gm, 10 * PAGE, 2 * PAGE), 0);
	assert_false(resident(&gm, 11 * PAGE));
	assert_int_equal(gm_read(&gm, 10 * PAGE, out, sizeof(out)), 0);
	assert_memory_equal(out, zero, sizeof(out));
	/* Plain RAM next to it kept its data. */
	assert_int_equal(gm_read(&gm, 2 * PAGE, out, sizeof(out)), 0);
	assert_memory_equal(out, data, sizeof(out));
	assert_int_equal(gm_discard(&gm, 10 * PAGE, 2 * PAGE), 0); /* again, after the read */
	/* A pin after the discard populates the page again. */
	if (have_populate()) {
		assert_int_equal(gm_pin(&gm, 11 * PAGE, PAGE, 0), 0);
		assert_true(resident(&gm, 11 * PAGE));
	}
	gm_destroy(&gm);
}

#define THREADS 4
#define ROUNDS 2000

struct worker {
	struct guest_memory *gm;
	unsigned seed;
	int errors;
};

/* Each worker pins a random range, checks it is pinned, and unpins it, ROUNDS times. */
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t pages = (R0_SIZE + R1_SIZE) / PAGE;

	for (int i = 0; i < ROUNDS; i++) {
		uint64_t first = rand_r(&w->seed) % pages;
		uint64_t n = 1 + rand_r(&w->seed) % (pages - first);
		uint64_t gpa = R0 + first * PAGE, len = n * PAGE;

		if (gm_pin(w->gm, gpa, len, i & 1 ? GM_PIN_LONGTERM : 0)) {
			w->errors++;
			continue;
		}
		if (!gm_is_pinned(w->gm, gpa) || !gm_is_pinned(w->gm, gpa + len - 1))
			w->errors++;
		if (gm_unpin(w->gm, gpa, len))
			w->errors++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct guest_memory *gm = *state;
	pthread_t tid[THREADS];
	struct worker w[THREADS];

	/* A long-lived pin in the middle must survive all the traffic. */
	assert_int_equal(gm_pin(gm, R1 - PAGE, 2 * PAGE, 0), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .gm = gm, .seed = 1234u + (unsigned)i };
		assert_int_equal(pthread_create(&tid[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(w[i].errors, 0);
	}
	assert_int_equal(gm_pin_count(gm, R1 - PAGE), 1);
	assert_int_equal(gm_pin_count(gm, R1), 1);
	assert_int_equal(gm_pinned_bytes(gm), 2 * PAGE);
	for (uint64_t gpa = R0; gpa < END; gpa += PAGE)
		if (gpa != R1 - PAGE && gpa != R1)
			assert_int_equal(gm_pin_count(gm, gpa), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_across_regions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpin_unpinned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
		cmocka_unit_test(test_default_limit),
		cmocka_unit_test_setup_teardown(test_unmapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_overflow, setup, teardown),
		cmocka_unit_test(test_longterm_discardable),
		cmocka_unit_test(test_longterm_file_backed),
		cmocka_unit_test_setup_teardown(test_pin_populates, setup, teardown),
		cmocka_unit_test(test_discard),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
