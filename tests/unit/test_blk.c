/* Unit tests of virtio-blk (src/devices/virtio/blk.c), driven through the device-ops with the
 * mock driver queue (vq_driver.h), on a temporary image file: config space, read, write,
 * flush, GET_ID, discard and write-zeroes (file contents checked), many requests in flight,
 * and hostile requests (beyond the capacity, overflowing sector numbers, partial sectors, no
 * status byte, a write on a read-only disk, unknown types, bad discard segments), each
 * answered with the right status and no change to the file. Split and packed rings. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "devices/virtio/blk.h"
#include "devices/virtio/blk_internal.h"
#include "memory/guest_memory.h"
#include "vq_driver.h"

#define F(bit) (1ull << (bit))
#define MEM (4u << 20)
#define RINGS 0x10000
#define HDRS 0x20000 /* request headers, 16 bytes apart */
#define STAT 0x30000 /* status bytes, 1 apart */
#define DATA 0x100000
#define QSIZE 128
#define SECTORS 2048 /* 1 MiB image */

struct fx {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct virtio_dev_handle h;
	struct vqd d;
	char path[64];
	int fd;
	bool readonly;
	unsigned irqs;
};

static void vq_cb(void *opaque, unsigned idx)
{
	(void)idx;
	__atomic_add_fetch(&((struct fx *)opaque)->irqs, 1, __ATOMIC_RELAXED);
}

static int open_fx(void **state, bool readonly)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	uint8_t sector[512];
	struct virtio_blk_config_opts o = { .readonly = readonly, .serial = "unit-disk" };

	snprintf(fx->path, sizeof(fx->path), "/tmp/vireo-test-blk.XXXXXX");
	fx->fd = mkstemp(fx->path);
	assert_true(fx->fd >= 0);
	for (unsigned i = 0; i < SECTORS; i++) { /* sector i is filled with (uint8_t)i */
		memset(sector, (int)(i & 0xff), sizeof(sector));
		assert_int_equal(write(fx->fd, sector, sizeof(sector)), sizeof(sector));
	}
	o.path = fx->path;
	fx->readonly = readonly;
	assert_int_equal(gm_init(&fx->gm), 0);
	assert_true(gm_add_ram(&fx->gm, 0, MEM, 0) >= 0);
	gm_set_pin_limit(&fx->gm, MEM);
	assert_int_equal(virtio_blk_create(&fx->vdev, &fx->gm, &o), 0);
	fx->h = virtio_device_handle(&fx->vdev);
	*state = fx;
	return 0;
}

static int setup(void **state) { return open_fx(state, false); }
static int setup_ro(void **state) { return open_fx(state, true); }

static int teardown(void **state)
{
	struct fx *fx = *state;

	virtio_device_destroy(&fx->vdev);
	vqd_destroy(&fx->d);
	gm_destroy(&fx->gm);
	close(fx->fd);
	unlink(fx->path);
	free(fx);
	return 0;
}

static void bring_up(struct fx *fx, uint64_t ring_features)
{
	const struct virtio_device_ops *ops = fx->h.ops;
	void *dev = fx->h.dev;
	uint64_t want = F(VIRTIO_F_VERSION_1) | F(VIRTIO_BLK_F_FLUSH) | ring_features;

	if (!fx->readonly)
		want |= F(VIRTIO_BLK_F_DISCARD) | F(VIRTIO_BLK_F_WRITE_ZEROES);
	assert_int_equal(ops->get_device_id(dev), VIRTIO_ID_BLOCK);
	assert_int_equal(ops->get_features(dev) & want, want);
	assert_int_equal(!!(ops->get_features(dev) & F(VIRTIO_BLK_F_RO)), fx->readonly);
	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(ops->set_features(dev, want), 0);
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vqd_init(&fx->d, &fx->gm, RINGS, QSIZE, ring_features), 0);
	assert_int_equal(ops->set_vq_num(dev, 0, QSIZE), 0);
	assert_int_equal(ops->set_vq_address(dev, 0, fx->d.desc, fx->d.avail, fx->d.used), 0);
	ops->set_vq_cb(dev, 0, vq_cb, fx);
	assert_int_equal(ops->set_vq_ready(dev, 0, true), 0);
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_DRIVER_OK);
	assert_true(ops->get_status(dev) & VIRTIO_STATUS_DRIVER_OK);
}

/* Post a request: header (type, sector) at HDRS + 16*slot, optional data buffer, status
 * byte at STAT + slot. Returns the chain id. */
static int post(struct fx *fx, unsigned slot, uint32_t type, uint64_t sector, uint64_t data,
		uint32_t len, bool data_write, bool with_status)
{
	struct virtio_blk_outhdr h = { .type = htole32(type), .sector = htole64(sector) };
	struct vqd_buf b[3];
	unsigned n = 0;
	int id;

	assert_int_equal(gm_write(&fx->gm, HDRS + 16 * slot, &h, sizeof(h)), 0);
	assert_int_equal(gm_write(&fx->gm, STAT + slot, &(uint8_t){ 0xee }, 1), 0);
	b[n++] = (struct vqd_buf){ HDRS + 16 * slot, sizeof(h), false };
	if (len)
		b[n++] = (struct vqd_buf){ data, len, data_write };
	if (with_status)
		b[n++] = (struct vqd_buf){ STAT + slot, 1, true };
	id = vqd_add(&fx->d, b, n);
	assert_true(id >= 0);
	return id;
}

/* Kick and wait (the device completes on its own thread) for `n` used entries. */
static void run(struct fx *fx, unsigned n, int *ids, uint32_t *lens)
{
	struct timespec t0, t;

	fx->h.ops->kick_vq(fx->h.dev, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned got = 0; got < n;) {
		int id = vqd_get_used(&fx->d, &lens[got]);

		if (id >= 0) {
			ids[got++] = id;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 5)
			fail_msg("only %u of %u requests completed", got, n);
		usleep(1000);
	}
}

static uint8_t status_of(struct fx *fx, unsigned slot)
{
	uint8_t s = 0;

	assert_int_equal(gm_read(&fx->gm, STAT + slot, &s, 1), 0);
	return s;
}

static uint8_t one(struct fx *fx, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
		   bool data_write)
{
	int id, got;
	uint32_t l;

	id = post(fx, 0, type, sector, data, len, data_write, true);
	run(fx, 1, &got, &l);
	assert_int_equal(got, id);
	return status_of(fx, 0);
}

static void file_sector(struct fx *fx, unsigned s, uint8_t *buf)
{
	assert_int_equal(pread(fx->fd, buf, 512, (off_t)s * 512), 512);
}

static void io(void **state, uint64_t ring_features)
{
	struct fx *fx = *state;
	uint8_t buf[4096], want[4096], cfg[64] = { 0 };
	uint64_t cap;

	bring_up(fx, ring_features);
	fx->h.ops->get_config(fx->h.dev, 0, cfg, sizeof(cfg));
	memcpy(&cap, cfg, 8);
	assert_int_equal(le64toh(cap), SECTORS);

	/* read sectors 10..17 */
	assert_int_equal(one(fx, VIRTIO_BLK_T_IN, 10, DATA, 4096, true), VIRTIO_BLK_S_OK);
	assert_int_equal(gm_read(&fx->gm, DATA, buf, 4096), 0);
	for (unsigned i = 0; i < 8; i++) {
		memset(want, 10 + i, 512);
		assert_memory_equal(buf + 512 * i, want, 512);
	}
	assert_true(gm_is_dirty(&fx->gm, DATA));
	assert_int_equal(gm_pinned_bytes(&fx->gm), 0); /* pins released at completion */

	/* write sectors 100..107, flush */
	memset(want, 0xab, sizeof(want));
	assert_int_equal(gm_write(&fx->gm, DATA, want, 4096), 0);
	assert_int_equal(one(fx, VIRTIO_BLK_T_OUT, 100, DATA, 4096, false), VIRTIO_BLK_S_OK);
	assert_int_equal(one(fx, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), VIRTIO_BLK_S_OK);
	file_sector(fx, 107, buf);
	assert_memory_equal(buf, want, 512);
	file_sector(fx, 108, buf);
	memset(want, 108, 512);
	assert_memory_equal(buf, want, 512);

	/* GET_ID */
	assert_int_equal(one(fx, VIRTIO_BLK_T_GET_ID, 0, DATA, 20, true), VIRTIO_BLK_S_OK);
	assert_int_equal(gm_read(&fx->gm, DATA, buf, 20), 0);
	assert_memory_equal(buf, "unit-disk", 10);
}

static void test_io_split(void **state) { io(state, 0); }
static void test_io_packed(void **state) { io(state, VQD_F_PACKED); }

static void seg(struct fx *fx, uint64_t sector, uint32_t n, uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes s = {
		.sector = htole64(sector), .num_sectors = htole32(n), .flags = htole32(flags),
	};

	assert_int_equal(gm_write(&fx->gm, DATA, &s, sizeof(s)), 0);
}

static void test_discard_write_zeroes(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[512], zero[512] = { 0 }, want[512];

	bring_up(fx, 0);
	seg(fx, 200, 16, 0);
	assert_int_equal(one(fx, VIRTIO_BLK_T_DISCARD, 0, DATA, 16, false), VIRTIO_BLK_S_OK);
	file_sector(fx, 200, buf);
	assert_memory_equal(buf, zero, 512); /* a punched hole reads as zeroes */
	file_sector(fx, 216, buf);
	memset(want, 216 & 0xff, 512);
	assert_memory_equal(buf, want, 512);
	seg(fx, 300, 3, 0);
	assert_int_equal(one(fx, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, 16, false), VIRTIO_BLK_S_OK);
	file_sector(fx, 302, buf);
	assert_memory_equal(buf, zero, 512);
	file_sector(fx, 303, buf);
	memset(want, 303 & 0xff, 512);
	assert_memory_equal(buf, want, 512);
	seg(fx, 400, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	assert_int_equal(one(fx, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, 16, false), VIRTIO_BLK_S_OK);
	file_sector(fx, 400, buf);
	assert_memory_equal(buf, zero, 512);

	/* refused segments: beyond the end, unmap flag on discard, empty, two segments */
	seg(fx, SECTORS - 1, 2, 0);
	assert_int_equal(one(fx, VIRTIO_BLK_T_DISCARD, 0, DATA, 16, false), VIRTIO_BLK_S_IOERR);
	seg(fx, 0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	assert_int_equal(one(fx, VIRTIO_BLK_T_DISCARD, 0, DATA, 16, false), VIRTIO_BLK_S_UNSUPP);
	seg(fx, 0, 0, 0);
	assert_int_equal(one(fx, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, 16, false), VIRTIO_BLK_S_IOERR);
	assert_int_equal(one(fx, VIRTIO_BLK_T_DISCARD, 0, DATA, 32, false), VIRTIO_BLK_S_IOERR);
	file_sector(fx, 0, buf);
	memset(want, 0, 512);
	assert_memory_equal(buf, want, 512);
	file_sector(fx, 1, buf);
	memset(want, 1, 512);
	assert_memory_equal(buf, want, 512);
}

static void test_hostile_requests(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[512], want[512];
	int ids[2];
	uint32_t lens[2];

	bring_up(fx, 0);
	/* beyond the capacity, straddling it, sector numbers that overflow when scaled */
	assert_int_equal(one(fx, VIRTIO_BLK_T_IN, SECTORS, DATA, 512, true), VIRTIO_BLK_S_IOERR);
	assert_int_equal(one(fx, VIRTIO_BLK_T_OUT, SECTORS - 1, DATA, 1024, false),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(one(fx, VIRTIO_BLK_T_OUT, ~0ull, DATA, 512, false), VIRTIO_BLK_S_IOERR);
	assert_int_equal(one(fx, VIRTIO_BLK_T_IN, ~0ull / 512 + 1, DATA, 512, true),
			 VIRTIO_BLK_S_IOERR);
	/* partial sectors */
	assert_int_equal(one(fx, VIRTIO_BLK_T_OUT, 5, DATA, 100, false), VIRTIO_BLK_S_IOERR);
	assert_int_equal(one(fx, VIRTIO_BLK_T_IN, 5, DATA, 513, true), VIRTIO_BLK_S_IOERR);
	/* unknown request type */
	assert_int_equal(one(fx, 77, 0, 0, 0, false), VIRTIO_BLK_S_UNSUPP);
	/* no status byte: returned unused, nothing written */
	ids[1] = post(fx, 1, VIRTIO_BLK_T_OUT, 6, DATA, 512, false, false);
	run(fx, 1, ids, lens);
	assert_int_equal(ids[0], ids[1]);
	assert_int_equal(lens[0], 0);
	file_sector(fx, 6, buf);
	memset(want, 6, 512);
	assert_memory_equal(buf, want, 512);
	file_sector(fx, SECTORS - 1, buf);
	memset(want, (SECTORS - 1) & 0xff, 512);
	assert_memory_equal(buf, want, 512);
	assert_false(fx->h.ops->get_status(fx->h.dev) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_readonly(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[512], want[512];

	bring_up(fx, 0);
	memset(want, 0x55, sizeof(want));
	assert_int_equal(gm_write(&fx->gm, DATA, want, 512), 0);
	assert_int_equal(one(fx, VIRTIO_BLK_T_OUT, 3, DATA, 512, false), VIRTIO_BLK_S_IOERR);
	seg(fx, 3, 1, 0);
	assert_int_equal(one(fx, VIRTIO_BLK_T_DISCARD, 0, DATA, 16, false), VIRTIO_BLK_S_IOERR);
	file_sector(fx, 3, buf);
	memset(want, 3, 512);
	assert_memory_equal(buf, want, 512);
	assert_int_equal(one(fx, VIRTIO_BLK_T_IN, 3, DATA, 512, true), VIRTIO_BLK_S_OK);
}

/* Many requests in flight at once, completed in any order, each with the right data. */
static void test_many_in_flight(void **state)
{
	struct fx *fx = *state;
	enum { N = 40 }; /* 3 descriptors each, within the 128-entry ring */
	int ids[N], posted[N];
	uint32_t lens[N];
	uint8_t buf[4096], want[4096];

	bring_up(fx, 0);
	for (unsigned i = 0; i < N; i++)
		posted[i] = post(fx, i, VIRTIO_BLK_T_IN, 8 * i, DATA + 4096 * i, 4096, true, true);
	run(fx, N, ids, lens);
	for (unsigned i = 0; i < N; i++) {
		unsigned k;

		for (k = 0; k < N && posted[k] != ids[i]; k++)
			;
		assert_true(k < N);
		assert_int_equal(lens[i], 4097);
		assert_int_equal(status_of(fx, k), VIRTIO_BLK_S_OK);
		assert_int_equal(gm_read(&fx->gm, DATA + 4096 * k, buf, 4096), 0);
		memset(want, (8 * k) & 0xff, 512);
		assert_memory_equal(buf, want, 512);
	}
	assert_true(fx->irqs >= 1);
	assert_int_equal(gm_pinned_bytes(&fx->gm), 0);
	/* a reset with nothing in flight stops the queue thread cleanly */
	fx->h.ops->reset(fx->h.dev);
	assert_int_equal(fx->h.ops->get_status(fx->h.dev), 0);
}

/* Submit one SQE on ring and return its completion's result. */
static int ring_one(struct io_uring *ring, struct io_uring_sqe *sqe_in)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int res;

	assert_non_null(sqe);
	*sqe = *sqe_in;
	assert_int_equal(io_uring_submit(ring), 1);
	assert_int_equal(io_uring_wait_cqe(ring, &cqe), 0);
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

/* A queue's io_uring does what the queue needs and nothing else: seccomp cannot see inside a
 * ring, so an open (or a connect, a send...) submitted through it must be refused there. */
static void test_ring_restricted(void **state)
{
	struct io_uring_params p = { .flags = IORING_SETUP_R_DISABLED };
	struct io_uring ring;
	struct io_uring_sqe sqe;
	char buf[8] = { 0 };
	int pfd[2];

	(void)state;
	assert_int_equal(io_uring_queue_init_params(8, &ring, &p), 0);
	assert_int_equal(blk_ring_restrict(&ring), 0);
	assert_int_equal(syscall(__NR_io_uring_register, ring.ring_fd,
				 IORING_REGISTER_ENABLE_RINGS, NULL, 0), 0);
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(write(pfd[1], "vireo", 5), 5);
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_read(&sqe, pfd[0], buf, sizeof(buf), 0);
	assert_int_equal(ring_one(&ring, &sqe), 5); /* a read: allowed */
	assert_memory_equal(buf, "vireo", 5);
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_openat(&sqe, AT_FDCWD, "/etc/hostname", O_RDONLY, 0);
	assert_int_equal(ring_one(&ring, &sqe), -EACCES); /* an open: refused */
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_read(&sqe, pfd[0], buf, sizeof(buf), 0);
	sqe.flags |= IOSQE_BUFFER_SELECT; /* a flag the queue never sets */
	assert_int_equal(ring_one(&ring, &sqe), -EACCES);
	/* and no registration once enabled */
	assert_true(io_uring_register_files(&ring, &pfd[0], 1) < 0);
	io_uring_queue_exit(&ring);
	close(pfd[0]);
	close(pfd[1]);
}

/* The ring a running queue actually uses went through blk_ring_restrict() (which
 * test_ring_restricted shows refusing an open). Another thread cannot probe the ring itself:
 * it is SINGLE_ISSUER, so the kernel answers EEXIST before it looks at restrictions. */
static void test_queue_ring_restricted(void **state)
{
	struct fx *fx = *state;
	struct virtio_blk *blk;

	bring_up(fx, 0);
	assert_int_equal(one(fx, VIRTIO_BLK_T_IN, 0, DATA, 512, true), VIRTIO_BLK_S_OK);
	blk = fx->vdev.priv;
	assert_true(blk->queues[0].started);
	assert_true(blk->queues[0].restricted);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_io_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_packed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_write_zeroes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
		cmocka_unit_test(test_ring_restricted),
		cmocka_unit_test_setup_teardown(test_queue_ring_restricted, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
