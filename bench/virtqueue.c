/* bench/virtqueue: the device side's cost per request, vq_pop + vq_push, on split and packed
 * rings (256 entries) with direct chains (one readable + one writable descriptor) and
 * indirect tables (4 buffers). Only the device's calls are timed; the driver's refills (done
 * with tests/unit/vq_driver.h) are not. Prints nanoseconds per request, best of the runs.
 *
 * Usage: build/bench/virtqueue [-n rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../tests/unit/vq_driver.h"

#define QS     256
#define RING   0x1000ull
#define BUFS   0x100000ull
#define TABLES 0x200000ull

static struct vq_elem elems[QS];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Offer one chain per request: direct (2 descriptors) or indirect (4 buffers). */
static int offer(struct vqd *d, unsigned i, bool indirect)
{
	struct vqd_buf b[4] = {
		{ BUFS + i * 256, 64, false }, { BUFS + i * 256 + 64, 64, false },
		{ BUFS + i * 256 + 128, 64, true }, { BUFS + i * 256 + 192, 64, true },
	};

	if (indirect)
		return vqd_add_indirect(d, b, 4, TABLES + i * 64);
	b[1] = b[2];
	return vqd_add(d, b, 2);
}

static double run(struct guest_memory *gm, uint64_t features, bool indirect, unsigned rounds)
{
	static struct virtqueue vq;
	struct vqd d;
	unsigned per_round = indirect ? QS : QS / 2;
	uint64_t best = UINT64_MAX;
	uint32_t len;

	if (vqd_init(&d, gm, RING, QS, features) || vqd_setup(&d, &vq, NULL)) {
		fprintf(stderr, "virtqueue bench: set-up failed\n");
		exit(1);
	}
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < per_round; i++)
			if (offer(&d, i, indirect) < 0)
				exit(1);
		uint64_t t0 = now_ns();
		for (unsigned i = 0; i < per_round; i++)
			if (vq_pop(&vq, &elems[i]) != 1)
				exit(1);
		for (unsigned i = 0; i < per_round; i++)
			if (vq_push(&vq, &elems[i], 64))
				exit(1);
		vq_should_notify(&vq);
		uint64_t t = now_ns() - t0;
		if (t < best)
			best = t;
		while (vqd_get_used(&d, &len) >= 0)
			;
	}
	vqd_destroy(&d);
	return (double)best / per_round;
}

int main(int argc, char **argv)
{
	static struct guest_memory gm;
	unsigned rounds = 2000;
	int opt;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n')
			rounds = (unsigned)atoi(optarg);
		else {
			fprintf(stderr, "usage: %s [-n rounds]\n", argv[0]);
			return 2;
		}
	}
	if (gm_init(&gm) || gm_add_ram(&gm, 0, 4ull << 20, 0) < 0) {
		fprintf(stderr, "virtqueue bench: no guest memory\n");
		return 1;
	}
	printf("virtqueue: ns per request (vq_pop + vq_push), ring of %d, best of %u rounds\n",
	       QS, rounds);
	printf("  split  direct (1 read + 1 write)  %7.1f\n", run(&gm, VQD_F_EVENT_IDX, false, rounds));
	printf("  split  indirect (2 + 2 buffers)   %7.1f\n",
	       run(&gm, VQD_F_EVENT_IDX | VQD_F_INDIRECT, true, rounds));
	printf("  packed direct (1 read + 1 write)  %7.1f\n",
	       run(&gm, VQD_F_PACKED | VQD_F_EVENT_IDX, false, rounds));
	printf("  packed indirect (2 + 2 buffers)   %7.1f\n",
	       run(&gm, VQD_F_PACKED | VQD_F_EVENT_IDX | VQD_F_INDIRECT, true, rounds));
	gm_destroy(&gm);
	return 0;
}
