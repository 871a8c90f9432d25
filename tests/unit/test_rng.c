/* Unit tests of virtio-rng (src/devices/virtio/rng.c), driven only through the device-ops the
 * way a transport would, with the mock driver queue (vq_driver.h) in guest memory: feature
 * negotiation, queue set-up, requests of one and of several buffers, a buffer crossing two
 * memory regions, used lengths, randomness, dirty pages, interrupt suppression, a hostile
 * chain (NEEDS_RESET) and recovery by reset. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <linux/virtio_ids.h>

#include "devices/virtio/rng.h"
#include "memory/guest_memory.h"
#include "vq_driver.h"

#define F(bit) (1ull << (bit))
#define REGION_SIZE (1u << 20)  /* two adjacent 1 MiB regions: [0, 1M) and [1M, 2M) */
#define RINGS 0x10000
#define QSIZE 64
#define BUF 0x40000             /* data buffers from here */

struct fx {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct virtio_dev_handle h;
	struct vqd d;
	unsigned irqs, config_irqs;
	bool stop;
};

static void vq_cb(void *opaque, unsigned idx)
{
	assert_int_equal(idx, 0);
	__atomic_add_fetch(&((struct fx *)opaque)->irqs, 1, __ATOMIC_RELAXED);
}

static void config_cb(void *opaque)
{
	__atomic_add_fetch(&((struct fx *)opaque)->config_irqs, 1, __ATOMIC_RELAXED);
}

static void clear_dirty(struct fx *fx)
{
	unsigned long bits[REGION_SIZE / GM_PAGE_SIZE / (8 * sizeof(unsigned long))];

	for (unsigned i = 0; i < 2; i++)
		assert_true(gm_dirty_fetch_and_clear(&fx->gm, i, bits) >= 0);
}

/* What a transport does when the driver brings the device up: negotiate `features` (driver
 * side, VQD_F_* plus VERSION_1) and set up queue 0 on the mock driver's rings. */
static void bring_up(struct fx *fx, uint64_t ring_features)
{
	const struct virtio_device_ops *ops = fx->h.ops;
	void *dev = fx->h.dev;
	uint64_t want = F(VIRTIO_F_VERSION_1) | ring_features;

	assert_int_equal(ops->get_device_id(dev), VIRTIO_ID_RNG);
	assert_int_equal(ops->get_num_queues(dev), 1);
	assert_int_equal(ops->get_config_size(dev), 0);
	assert_int_equal(ops->get_features(dev) & want, want);
	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(ops->set_features(dev, want), 0);
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_FEATURES_OK);
	assert_true(ops->get_status(dev) & VIRTIO_STATUS_FEATURES_OK);

	assert_true(ops->get_vq_num_max(dev, 0) >= QSIZE);
	assert_int_equal(vqd_init(&fx->d, &fx->gm, RINGS, QSIZE, ring_features), 0);
	assert_int_equal(ops->set_vq_num(dev, 0, QSIZE), 0);
	assert_int_equal(ops->set_vq_address(dev, 0, fx->d.desc, fx->d.avail, fx->d.used), 0);
	ops->set_vq_cb(dev, 0, vq_cb, fx);
	assert_int_equal(ops->set_vq_ready(dev, 0, true), 0);
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_DRIVER_OK);
	assert_true(ops->get_status(dev) & VIRTIO_STATUS_DRIVER_OK);
	clear_dirty(fx);
}

static int setup(void **state)
{
	struct fx *fx = test_calloc(1, sizeof(*fx));

	assert_int_equal(gm_init(&fx->gm), 0);
	assert_true(gm_add_ram(&fx->gm, 0, REGION_SIZE, 0) >= 0);
	assert_true(gm_add_ram(&fx->gm, REGION_SIZE, REGION_SIZE, 0) >= 0);
	assert_int_equal(virtio_rng_create(&fx->vdev, &fx->gm), 0);
	fx->h = virtio_device_handle(&fx->vdev);
	fx->h.ops->set_config_cb(fx->h.dev, config_cb, fx);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	vqd_destroy(&fx->d);
	virtio_device_destroy(&fx->vdev);
	gm_destroy(&fx->gm);
	test_free(fx);
	return 0;
}

static void kick(struct fx *fx)
{
	fx->h.ops->kick_vq(fx->h.dev, 0);
}

/* The next used entry must be `id` with length `len`. */
static void expect_used(struct fx *fx, int id, uint32_t len)
{
	uint32_t got = ~0u;

	assert_int_equal(vqd_get_used(&fx->d, &got), id);
	assert_int_equal(got, len);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void read_guest(struct fx *fx, uint64_t gpa, void *buf, size_t len)
{
	assert_int_equal(gm_read(&fx->gm, gpa, buf, len), 0);
}

static bool status_has(struct fx *fx, uint8_t bit)
{
	return fx->h.ops->get_status(fx->h.dev) & bit;
}

/* Requests of one buffer, of two buffers, and one crossing the two memory regions. */
static void requests(struct fx *fx)
{
	struct vqd_buf one[] = { { BUF, 64, true } };
	struct vqd_buf two[] = { { BUF + 0x1000, 100, true }, { BUF + 0x3000, 200, true } };
	struct vqd_buf cross[] = { { REGION_SIZE - 32, 64, true } };
	uint8_t a[64], b[300], c[64], zero[64] = { 0 };
	int i1, i2, i3;

	/* Stale bytes the device must overwrite. */
	for (uint64_t g = BUF; g < BUF + 0x4000; g += sizeof(zero))
		assert_int_equal(gm_write(&fx->gm, g, zero, sizeof(zero)), 0);
	clear_dirty(fx);
	i1 = vqd_add(&fx->d, one, 1);
	i2 = vqd_add(&fx->d, two, 2);
	i3 = vqd_add(&fx->d, cross, 1);
	assert_true(i1 >= 0 && i2 >= 0 && i3 >= 0);
	assert_true(vqd_kick_needed(&fx->d));
	kick(fx);
	expect_used(fx, i1, 64);
	expect_used(fx, i2, 300);
	expect_used(fx, i3, 64);
	assert_int_equal(vqd_get_used(&fx->d, &(uint32_t){ 0 }), -EAGAIN);
	assert_true(fx->irqs >= 1);

	read_guest(fx, BUF, a, sizeof(a));
	read_guest(fx, BUF + 0x1000, b, 100);
	read_guest(fx, BUF + 0x3000, b + 100, 200);
	read_guest(fx, REGION_SIZE - 32, c, sizeof(c));
	assert_false(all_zero(a, sizeof(a)));
	assert_false(all_zero(b + 100, 200));   /* the second buffer of the chain was filled */
	assert_false(all_zero(c, 32));          /* both sides of the region boundary */
	assert_false(all_zero(c + 32, 32));
	assert_memory_not_equal(a, b, 32);      /* different requests, different bytes */
	assert_memory_not_equal(a, c, 32);

	/* Every page the device wrote is dirty; the untouched page between is not. */
	assert_true(gm_is_dirty(&fx->gm, BUF));
	assert_true(gm_is_dirty(&fx->gm, BUF + 0x1000));
	assert_true(gm_is_dirty(&fx->gm, BUF + 0x3000));
	assert_false(gm_is_dirty(&fx->gm, BUF + 0x2000));
	assert_true(gm_is_dirty(&fx->gm, REGION_SIZE - 32));
	assert_true(gm_is_dirty(&fx->gm, REGION_SIZE));
	assert_false(status_has(fx, VIRTIO_STATUS_NEEDS_RESET));
}

static void test_split_requests(void **state)
{
	struct fx *fx = *state;

	bring_up(fx, 0);
	requests(fx);
}

static void test_packed_requests(void **state)
{
	struct fx *fx = *state;

	bring_up(fx, VQD_F_PACKED);
	requests(fx);
}

static void test_indirect_and_event_idx(void **state)
{
	struct fx *fx = *state;
	struct vqd_buf b[] = { { BUF, 32, true }, { BUF + 0x100, 32, true } };
	uint8_t x[64];
	int id;

	bring_up(fx, VQD_F_INDIRECT | VQD_F_EVENT_IDX);
	id = vqd_add_indirect(&fx->d, b, 2, BUF + 0x2000);
	assert_true(id >= 0);
	kick(fx);
	expect_used(fx, id, 64);
	read_guest(fx, BUF + 0x100, x, 32);
	assert_false(all_zero(x, 32));
	assert_int_equal(fx->irqs, 1);
	/* The driver asks for no interrupts: the request is served without one. */
	vqd_enable_interrupts(&fx->d, false, 0);
	id = vqd_add(&fx->d, b, 1);
	kick(fx);
	expect_used(fx, id, 32);
	assert_int_equal(fx->irqs, 1);
}

static void test_large_and_readable_requests(void **state)
{
	struct fx *fx = *state;
	struct vqd_buf big[] = { { BUF, 2 * VIRTIO_RNG_MAX_REQUEST, true } };
	struct vqd_buf ro[] = { { BUF, 16, false } };
	uint8_t tail[16];
	int id;

	bring_up(fx, 0);
	id = vqd_add(&fx->d, big, 1);
	kick(fx);
	/* At most VIRTIO_RNG_MAX_REQUEST bytes per request; the rest untouched. */
	expect_used(fx, id, VIRTIO_RNG_MAX_REQUEST);
	read_guest(fx, BUF + VIRTIO_RNG_MAX_REQUEST, tail, sizeof(tail));
	assert_true(all_zero(tail, sizeof(tail)));
	/* A request with nothing writable gets nothing written, and the device carries on. */
	id = vqd_add(&fx->d, ro, 1);
	kick(fx);
	expect_used(fx, id, 0);
	assert_false(status_has(fx, VIRTIO_STATUS_NEEDS_RESET));
}

static void test_hostile_chain_then_reset(void **state)
{
	struct fx *fx = *state;
	struct vqd_buf one[] = { { BUF, 16, true } };
	int id;

	bring_up(fx, 0);
	/* A chain whose next index leaves the table. */
	vqd_write_desc(&fx->d, 5, BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 999);
	vqd_publish_head(&fx->d, 5);
	kick(fx);
	assert_true(status_has(fx, VIRTIO_STATUS_NEEDS_RESET));
	assert_int_equal(fx->config_irqs, 1);
	assert_int_equal(vqd_get_used(&fx->d, &(uint32_t){ 0 }), -EAGAIN);
	/* Kicks do nothing now. */
	id = vqd_add(&fx->d, one, 1);
	assert_true(id >= 0);
	kick(fx);
	assert_int_equal(vqd_get_used(&fx->d, &(uint32_t){ 0 }), -EAGAIN);

	/* The driver resets the device and starts over: it works again. */
	fx->h.ops->set_status(fx->h.dev, 0);
	assert_int_equal(fx->h.ops->get_status(fx->h.dev), 0);
	assert_false(fx->h.ops->get_vq_ready(fx->h.dev, 0));
	vqd_destroy(&fx->d);
	bring_up(fx, 0);
	requests(fx);
}

static void *kicker(void *arg)
{
	struct fx *fx = arg;
	unsigned long n = 0;

	while (!__atomic_load_n(&fx->stop, __ATOMIC_ACQUIRE)) {
		fx->h.ops->kick_vq(fx->h.dev, 0);
		if (++n % 64 == 0)
			(void)fx->h.ops->get_status(fx->h.dev);
	}
	return NULL;
}

/* Kicks from another thread (an ioeventfd thread) while the driver resets and sets the device
 * up again, over and over: the lock keeps every request whole and nothing crashes (run under
 * ASan/UBSan by make test). */
static void test_kicks_racing_resets(void **state)
{
	struct fx *fx = *state;
	struct vqd_buf b[] = { { BUF, 32, true }, { BUF + 0x100, 32, true } };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, kicker, fx), 0);
	for (unsigned round = 0; round < 50; round++) {
		uint32_t len = 0;
		int id, got = -EAGAIN;

		bring_up(fx, round % 2 ? VQD_F_PACKED : 0);
		id = vqd_add(&fx->d, b, 2);
		assert_true(id >= 0);
		for (unsigned spin = 0; got == -EAGAIN && spin < 1000000; spin++)
			got = vqd_get_used(&fx->d, &len);
		assert_int_equal(got, id);
		assert_int_equal(len, 64);
		fx->h.ops->set_status(fx->h.dev, 0);
		vqd_destroy(&fx->d);
	}
	__atomic_store_n(&fx->stop, true, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	assert_false(fx->h.ops->get_status(fx->h.dev) & VIRTIO_STATUS_NEEDS_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_split_requests),
		T(test_packed_requests),
		T(test_indirect_and_event_idx),
		T(test_large_and_readable_requests),
		T(test_hostile_chain_then_reset),
		T(test_kicks_racing_resets),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
