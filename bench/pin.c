/* bench/pin: cost of the DMA pin API, in the manner of the kernel's gup_benchmark (S3).
 *
 * Over one memfd-backed region (256 MiB by default) it pins the whole region in batches of
 * 1, 8, 64 and 512 pages, then unpins it in the same batches, and prints nanoseconds per
 * page for each. Every batch size is repeated (5 times by default); the table shows the
 * median and the best repetition. One untimed
 * pass per batch size warms the pin-count array; the first pin of an untouched page (which
 * populates it) is reported separately as "cold", because it measures page allocation,
 * not the API.
 *
 * Usage: build/bench/pin [-s MiB] [-r repetitions]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memory/guest_memory.h"

#define GPA_BASE 0x100000000ull /* 4 GiB, where a VMM puts RAM above the PCI hole */
#define MAX_REPS 100

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Pins (or unpins) every page of [GPA_BASE, +size) in batches; returns elapsed ns. */
static uint64_t pass(struct guest_memory *gm, uint64_t size, uint64_t batch, bool pin)
{
	uint64_t bytes = batch * GM_PAGE_SIZE, t0 = now_ns();

	for (uint64_t off = 0; off < size; off += bytes) {
		int ret = pin ? gm_pin(gm, GPA_BASE + off, bytes, 0) : gm_unpin(gm, GPA_BASE + off, bytes);

		if (ret) {
			fprintf(stderr, "pin: %s at %#llx failed: %s\n", pin ? "pin" : "unpin",
				(unsigned long long)(GPA_BASE + off), strerror(-ret));
			exit(1);
		}
	}
	return now_ns() - t0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return n % 2 ? (double)v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void usage(void)
{
	fprintf(stderr, "usage: pin [-s MiB (multiple of 2)] [-r repetitions (1..%d)]\n", MAX_REPS);
	exit(2);
}

int main(int argc, char **argv)
{
	static const uint64_t batches[] = { 1, 8, 64, 512 };
	uint64_t mib = 256, size, pages, t_pin[MAX_REPS], t_unpin[MAX_REPS], cold;
	struct guest_memory gm;
	int reps = 5, opt, ret;

	while ((opt = getopt(argc, argv, "s:r:h")) != -1) {
		if (opt == 's')
			mib = strtoull(optarg, NULL, 0);
		else if (opt == 'r')
			reps = atoi(optarg);
		else
			usage();
	}
	if (mib < 2 || mib % 2 || mib > 1 << 20 || reps < 1 || reps > MAX_REPS)
		usage();
	size = mib << 20;
	pages = size / GM_PAGE_SIZE;

	if ((ret = gm_init(&gm)) || (ret = gm_add_ram(&gm, GPA_BASE, size, 0)) < 0) {
		fprintf(stderr, "pin: guest memory set-up failed: %s\n", strerror(-ret));
		return 1;
	}
	gm_set_pin_limit(&gm, GM_PIN_UNLIMITED); /* RLIMIT_MEMLOCK is often 8 MiB */

	/* Cold: the first pins of untouched pages, which populate them (batch 512). */
	cold = pass(&gm, size, 512, true);
	pass(&gm, size, 512, false);

	printf("bench/pin: %llu MiB memfd region, %llu pages, %d repetitions, ns per page\n",
	       (unsigned long long)mib, (unsigned long long)pages, reps);
	printf("cold first pin (populates, batch 512): %.1f ns/page\n", (double)cold / pages);
	printf("%8s %12s %12s %12s %12s\n", "batch", "pin median", "pin best", "unpin median",
	       "unpin best");
	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		pass(&gm, size, batches[b], true); /* warm-up, untimed */
		pass(&gm, size, batches[b], false);
		for (int r = 0; r < reps; r++) {
			t_pin[r] = pass(&gm, size, batches[b], true);
			t_unpin[r] = pass(&gm, size, batches[b], false);
		}
		if (gm_pinned_bytes(&gm) != 0) {
			fprintf(stderr, "pin: %llu bytes still pinned after the unpins\n",
				(unsigned long long)gm_pinned_bytes(&gm));
			return 1;
		}
		double pm = median(t_pin, reps), um = median(t_unpin, reps);
		printf("%8llu %12.1f %12.1f %12.1f %12.1f\n", (unsigned long long)batches[b],
		       pm / pages, (double)t_pin[0] / pages, um / pages, (double)t_unpin[0] / pages);
	}
	gm_destroy(&gm);
	return 0;
}
