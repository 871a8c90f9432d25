/* Unit tests of the in-process device-ops (src/virtio/device.c): the status state machine,
 * feature negotiation, queue set-up rules, config space clipping, generation, reset, kicks
 * and NEEDS_RESET, all driven through virtio_device_ops_inproc the way a transport would,
 * against a small test device class defined here. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <linux/virtio_ring.h>

#include "memory/guest_memory.h"
#include "virtio/device_ops.h"

#define F(bit) (1ull << (bit))
#define TDEV_F_A 0 /* offered */
#define TDEV_F_B 1 /* offered, but the class refuses A and B together */
#define TDEV_F_UNOFFERED 5
#define TDEV_FEATURES (F(TDEV_F_A) | F(TDEV_F_B) | F(VIRTIO_F_VERSION_1) | \
		       F(VIRTIO_F_EVENT_IDX) | F(VIRTIO_F_RING_PACKED))
#define TDEV_QMAX 64
#define MEM_SIZE (1u << 20)
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define QSIZE 16

/* ---- the test device class --------------------------------------------------------- */

struct tdev {
	uint8_t config[8];
	unsigned activates, resets, notifies[2], popped, failed_pops;
	int activate_ret;
	struct vq_elem elem;
};

static void tdev_read_config(struct virtio_device *vdev, unsigned off, void *buf, unsigned len)
{
	struct tdev *t = vdev->priv;

	assert_true(off + len <= sizeof(t->config)); /* the core clips before calling */
	memcpy(buf, t->config + off, len);
}

static void tdev_write_config(struct virtio_device *vdev, unsigned off, const void *buf,
			      unsigned len)
{
	struct tdev *t = vdev->priv;

	assert_true(off + len <= sizeof(t->config));
	memcpy(t->config + off, buf, len);
}

static int tdev_features_ok(struct virtio_device *vdev, uint64_t f)
{
	(void)vdev;
	return (f & F(TDEV_F_A)) && (f & F(TDEV_F_B)) ? -EINVAL : 0;
}

static int tdev_activate(struct virtio_device *vdev)
{
	struct tdev *t = vdev->priv;

	t->activates++;
	return t->activate_ret;
}

/* Pops every request; returns each with nothing written; a broken chain fails the device. */
static void tdev_queue_notify(struct virtio_device *vdev, unsigned idx)
{
	struct tdev *t = vdev->priv;
	struct virtqueue *vq = virtio_device_vq(vdev, idx);
	int ret;

	t->notifies[idx]++;
	assert_non_null(vq);
	while ((ret = vq_pop(vq, &t->elem)) > 0) {
		t->popped++;
		assert_int_equal(vq_push(vq, &t->elem, 0), 0);
	}
	virtio_device_notify(vdev, idx);
	if (ret < 0) {
		t->failed_pops++;
		virtio_device_fail(vdev, idx, vq_error_name(vq->last_error));
	}
}

static void tdev_reset(struct virtio_device *vdev)
{
	((struct tdev *)vdev->priv)->resets++;
}

static const struct virtio_device_class tdev_class = {
	.name = "test",
	.device_id = 42,
	.features = TDEV_FEATURES,
	.num_queues = 2,
	.queue_max_size = TDEV_QMAX,
	.config_size = 8,
	.read_config = tdev_read_config,
	.write_config = tdev_write_config,
	.features_ok = tdev_features_ok,
	.activate = tdev_activate,
	.queue_notify = tdev_queue_notify,
	.reset = tdev_reset,
};

/* ---- fixture: guest memory + a device + callback counters ---------------------------- */

struct fx {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct tdev t;
	const struct virtio_device_ops *ops;
	void *dev;
	unsigned vq_cbs[2], config_cbs;
};

static void vq_cb(void *opaque, unsigned idx)
{
	struct fx *fx = opaque;

	assert_true(idx < 2);
	fx->vq_cbs[idx]++;
}

static void config_cb(void *opaque)
{
	((struct fx *)opaque)->config_cbs++;
}

static int setup(void **state)
{
	struct fx *fx = test_calloc(1, sizeof(*fx));

	assert_int_equal(gm_init(&fx->gm), 0);
	assert_true(gm_add_ram(&fx->gm, 0, MEM_SIZE, 0) >= 0);
	assert_int_equal(virtio_device_init(&fx->vdev, &tdev_class, &fx->gm, &fx->t), 0);
	fx->ops = &virtio_device_ops_inproc;
	fx->dev = &fx->vdev;
	fx->ops->set_vq_cb(fx->dev, 0, vq_cb, fx);
	fx->ops->set_vq_cb(fx->dev, 1, vq_cb, fx);
	fx->ops->set_config_cb(fx->dev, config_cb, fx);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	virtio_device_destroy(&fx->vdev);
	gm_destroy(&fx->gm);
	test_free(fx);
	return 0;
}

static uint8_t status(struct fx *fx)
{
	return fx->ops->get_status(fx->dev);
}

/* Driver steps 1-6 of virtio 1.2, 3.1.1: returns the status read back. */
static uint8_t negotiate(struct fx *fx, uint64_t features)
{
	fx->ops->set_status(fx->dev, VIRTIO_STATUS_ACKNOWLEDGE);
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_DRIVER);
	fx->ops->set_features(fx->dev, features);
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_FEATURES_OK);
	return status(fx);
}

/* Split ring of QSIZE entries at DESC/AVAIL/USED, made ready. */
static int setup_queue(struct fx *fx, unsigned idx)
{
	int ret = fx->ops->set_vq_num(fx->dev, idx, QSIZE);

	if (ret)
		return ret;
	ret = fx->ops->set_vq_address(fx->dev, idx, DESC, AVAIL, USED);
	if (ret)
		return ret;
	return fx->ops->set_vq_ready(fx->dev, idx, true);
}

static void live_device(struct fx *fx)
{
	assert_true(negotiate(fx, F(VIRTIO_F_VERSION_1) | F(TDEV_F_A)) &
		    VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(setup_queue(fx, 0), 0);
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(status(fx), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* Post one request on the split ring: head `head` in avail slot `slot`, avail idx `idx`. */
static void post(struct fx *fx, uint16_t head, uint16_t slot, uint16_t idx)
{
	struct vring_desc d = { .addr = 0x10000, .len = 64, .flags = VRING_DESC_F_WRITE };

	assert_int_equal(gm_write(&fx->gm, DESC + 16u * (head % QSIZE), &d, sizeof(d)), 0);
	assert_int_equal(gm_write(&fx->gm, AVAIL + 4 + 2u * slot, &head, 2), 0);
	assert_int_equal(gm_write(&fx->gm, AVAIL + 2, &idx, 2), 0);
}

static uint16_t used_idx(struct fx *fx)
{
	uint16_t v;

	assert_int_equal(gm_read(&fx->gm, USED + 2, &v, 2), 0);
	return v;
}

/* ---- status and features ----------------------------------------------------------- */

static void test_status_normal_sequence(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(status(fx), 0);
	assert_int_equal(fx->ops->get_device_id(fx->dev), 42);
	assert_int_equal(fx->ops->get_num_queues(fx->dev), 2);
	assert_int_equal(fx->ops->get_features(fx->dev), TDEV_FEATURES);
	fx->ops->set_status(fx->dev, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(status(fx), VIRTIO_STATUS_ACKNOWLEDGE);
	fx->ops->set_status(fx->dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(status(fx), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(fx->ops->set_features(fx->dev, F(VIRTIO_F_VERSION_1) | F(TDEV_F_B)), 0);
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_FEATURES_OK);
	assert_true(status(fx) & VIRTIO_STATUS_FEATURES_OK);
	assert_true(virtio_device_has_feature(&fx->vdev, TDEV_F_B));
	assert_false(virtio_device_has_feature(&fx->vdev, TDEV_F_A));
	assert_int_equal(fx->ops->get_driver_features(fx->dev), F(VIRTIO_F_VERSION_1) | F(TDEV_F_B));
	assert_int_equal(setup_queue(fx, 0), 0);
	assert_int_equal(fx->t.activates, 0);
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(status(fx), 0x0f);
	assert_int_equal(fx->t.activates, 1);
	/* Writing the same status again changes nothing and does not re-activate. */
	fx->ops->set_status(fx->dev, 0x0f);
	assert_int_equal(fx->t.activates, 1);
}

static void test_features_ok_refused_unoffered(void **state)
{
	struct fx *fx = *state;
	uint8_t s = negotiate(fx, F(VIRTIO_F_VERSION_1) | F(TDEV_F_UNOFFERED));

	assert_int_equal(s, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* The driver may not go on: DRIVER_OK is refused as well, and so is a queue. */
	fx->ops->set_status(fx->dev, s | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(status(fx), s);
	assert_int_equal(fx->t.activates, 0);
	assert_int_equal(setup_queue(fx, 0), -EINVAL);
	assert_false(fx->ops->get_vq_ready(fx->dev, 0));
	/* It may retry with offered features before FEATURES_OK is set. */
	assert_int_equal(fx->ops->set_features(fx->dev, F(VIRTIO_F_VERSION_1)), 0);
	fx->ops->set_status(fx->dev, s | VIRTIO_STATUS_FEATURES_OK);
	assert_true(status(fx) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_features_ok_refused_without_version_1(void **state)
{
	struct fx *fx = *state;

	assert_false(negotiate(fx, F(TDEV_F_A)) & VIRTIO_STATUS_FEATURES_OK);
	assert_false(negotiate(fx, 0) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_features_ok_refused_by_class(void **state)
{
	struct fx *fx = *state;

	assert_false(negotiate(fx, F(VIRTIO_F_VERSION_1) | F(TDEV_F_A) | F(TDEV_F_B)) &
		     VIRTIO_STATUS_FEATURES_OK);
	fx->ops->set_features(fx->dev, F(VIRTIO_F_VERSION_1) | F(TDEV_F_A));
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_FEATURES_OK);
	assert_true(status(fx) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_status_out_of_order(void **state)
{
	struct fx *fx = *state;

	/* DRIVER before ACKNOWLEDGE, FEATURES_OK before DRIVER: bits stay clear. */
	fx->ops->set_status(fx->dev, VIRTIO_STATUS_DRIVER);
	assert_int_equal(status(fx), 0);
	fx->ops->set_status(fx->dev, VIRTIO_STATUS_ACKNOWLEDGE);
	fx->ops->set_features(fx->dev, F(VIRTIO_F_VERSION_1));
	fx->ops->set_status(fx->dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(status(fx), VIRTIO_STATUS_ACKNOWLEDGE);
	/* DRIVER_OK before FEATURES_OK. */
	fx->ops->set_status(fx->dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				     VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(status(fx), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(fx->t.activates, 0);
	/* All four in one write, in a valid order: accepted. */
	fx->ops->set_status(fx->dev, 0);
	fx->ops->set_features(fx->dev, F(VIRTIO_F_VERSION_1));
	fx->ops->set_status(fx->dev, 0x0f);
	assert_int_equal(status(fx), 0x0f);
	assert_int_equal(fx->t.activates, 1);
}

static void test_status_clear_refused_failed_accepted(void **state)
{
	struct fx *fx = *state;

	negotiate(fx, F(VIRTIO_F_VERSION_1));
	fx->ops->set_status(fx->dev, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(status(fx), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				     VIRTIO_STATUS_FEATURES_OK);
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_FAILED);
	assert_true(status(fx) & VIRTIO_STATUS_FAILED);
	/* NEEDS_RESET is the device's: a driver cannot set it. */
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_NEEDS_RESET);
	assert_false(status(fx) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_features_after_features_ok_ignored(void **state)
{
	struct fx *fx = *state;
	uint64_t f = F(VIRTIO_F_VERSION_1) | F(TDEV_F_A);

	assert_true(negotiate(fx, f) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(fx->ops->set_features(fx->dev, F(VIRTIO_F_VERSION_1) | F(TDEV_F_B)),
			 -EBUSY);
	assert_int_equal(fx->ops->get_driver_features(fx->dev), f);
	assert_true(virtio_device_has_feature(&fx->vdev, TDEV_F_A));
	assert_false(virtio_device_has_feature(&fx->vdev, TDEV_F_B));
	assert_false(virtio_device_has_feature(&fx->vdev, 200));
}

/* ---- queues -------------------------------------------------------------------------- */

static void test_queue_setup_rules(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(fx->ops->get_vq_num_max(fx->dev, 0), TDEV_QMAX);
	assert_int_equal(fx->ops->get_vq_num_max(fx->dev, 2), 0);
	negotiate(fx, F(VIRTIO_F_VERSION_1));
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 0, 0), -EINVAL);
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 0, TDEV_QMAX * 2), -EINVAL);
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 0, 24), -EINVAL); /* split: power of 2 */
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 2, 16), -EINVAL); /* no such queue */
	assert_int_equal(fx->ops->set_vq_address(fx->dev, 2, DESC, AVAIL, USED), -EINVAL);
	assert_int_equal(fx->ops->set_vq_ready(fx->dev, 2, true), -EINVAL);
	assert_false(fx->ops->get_vq_ready(fx->dev, 2));
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 0, TDEV_QMAX), 0);
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 0, 1), 0);
	assert_int_equal(setup_queue(fx, 0), 0);
	assert_true(fx->ops->get_vq_ready(fx->dev, 0));
	assert_non_null(virtio_device_vq(&fx->vdev, 0));
	assert_null(virtio_device_vq(&fx->vdev, 1));
	/* A live queue cannot be reprogrammed, but can be disabled before DRIVER_OK. */
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 0, 8), -EBUSY);
	assert_int_equal(fx->ops->set_vq_address(fx->dev, 0, 0, 0, 0), -EBUSY);
	assert_int_equal(fx->ops->set_vq_ready(fx->dev, 0, false), 0);
	assert_false(fx->ops->get_vq_ready(fx->dev, 0));
	assert_int_equal(setup_queue(fx, 0), 0);
	/* After DRIVER_OK nothing about queues changes. */
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 1, 8), -EBUSY);
	assert_int_equal(fx->ops->set_vq_address(fx->dev, 1, DESC, AVAIL, USED), -EBUSY);
	assert_int_equal(fx->ops->set_vq_ready(fx->dev, 1, true), -EBUSY);
	assert_int_equal(fx->ops->set_vq_ready(fx->dev, 0, false), -EBUSY);
	assert_true(fx->ops->get_vq_ready(fx->dev, 0));
	assert_false(fx->ops->get_vq_ready(fx->dev, 1));
}

static void test_queue_packed_any_size(void **state)
{
	struct fx *fx = *state;

	negotiate(fx, F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_RING_PACKED));
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 0, 24), 0);
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 0, TDEV_QMAX + 1), -EINVAL);
}

static void test_queue_bad_rings_refused(void **state)
{
	struct fx *fx = *state;

	negotiate(fx, F(VIRTIO_F_VERSION_1));
	assert_int_equal(fx->ops->set_vq_num(fx->dev, 0, QSIZE), 0);
	/* Descriptor table outside guest memory. */
	assert_int_equal(fx->ops->set_vq_address(fx->dev, 0, MEM_SIZE, AVAIL, USED), 0);
	assert_int_equal(fx->ops->set_vq_ready(fx->dev, 0, true), -EINVAL);
	assert_false(fx->ops->get_vq_ready(fx->dev, 0));
	/* Used ring straddling the end of memory. */
	assert_int_equal(fx->ops->set_vq_address(fx->dev, 0, DESC, AVAIL, MEM_SIZE - 8), 0);
	assert_int_equal(fx->ops->set_vq_ready(fx->dev, 0, true), -EINVAL);
	/* Misaligned descriptor table (16-byte alignment for split rings). */
	assert_int_equal(fx->ops->set_vq_address(fx->dev, 0, DESC + 8, AVAIL, USED), 0);
	assert_int_equal(fx->ops->set_vq_ready(fx->dev, 0, true), -EINVAL);
	assert_false(fx->ops->get_vq_ready(fx->dev, 0));
	assert_null(virtio_device_vq(&fx->vdev, 0));
	/* Fixed: accepted. */
	assert_int_equal(fx->ops->set_vq_address(fx->dev, 0, DESC, AVAIL, USED), 0);
	assert_int_equal(fx->ops->set_vq_ready(fx->dev, 0, true), 0);
}

static void test_queue_ready_before_features_ok(void **state)
{
	struct fx *fx = *state;

	fx->ops->set_status(fx->dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(setup_queue(fx, 0), -EINVAL);
	assert_false(fx->ops->get_vq_ready(fx->dev, 0));
}

static void test_vring_base(void **state)
{
	struct fx *fx = *state;
	struct virtio_vq_state st = { .last_avail_idx = 5, .used_idx = 5 }, got;

	negotiate(fx, F(VIRTIO_F_VERSION_1));
	assert_int_equal(fx->ops->set_vq_state(fx->dev, 0, &st), 0);
	assert_int_equal(fx->ops->get_vq_state(fx->dev, 0, &got), 0);
	assert_int_equal(got.last_avail_idx, 5);
	assert_int_equal(fx->ops->set_vq_state(fx->dev, 2, &st), -EINVAL);
	assert_int_equal(fx->ops->get_vq_state(fx->dev, 2, &got), -EINVAL);
	/* The live queue starts from the base: its next request is avail slot 5. */
	assert_int_equal(setup_queue(fx, 0), 0);
	assert_int_equal(fx->ops->set_vq_state(fx->dev, 0, &st), -EBUSY);
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_DRIVER_OK);
	post(fx, 3, 5, 6);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.popped, 1);
	assert_int_equal(fx->ops->get_vq_state(fx->dev, 0, &got), 0);
	assert_int_equal(got.last_avail_idx, 6);
	assert_int_equal(got.used_idx, 6);
	assert_int_equal(used_idx(fx), 6);
}

/* ---- config space and generation ------------------------------------------------------ */

static void test_config_clipping(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[16], w[4] = { 1, 2, 3, 4 };

	for (unsigned i = 0; i < 8; i++)
		fx->t.config[i] = (uint8_t)(0x10 + i);
	assert_int_equal(fx->ops->get_config_size(fx->dev), 8);
	memset(buf, 0xaa, sizeof(buf));
	fx->ops->get_config(fx->dev, 4, buf, 8);
	assert_int_equal(buf[0], 0x14);
	assert_int_equal(buf[3], 0x17);
	for (unsigned i = 4; i < 8; i++)
		assert_int_equal(buf[i], 0);   /* past the end: zero */
	assert_int_equal(buf[8], 0xaa);        /* beyond len: untouched */
	memset(buf, 0xaa, sizeof(buf));
	fx->ops->get_config(fx->dev, 8, buf, 4);
	assert_int_equal(buf[0] | buf[1] | buf[2] | buf[3], 0);
	memset(buf, 0xaa, sizeof(buf));
	fx->ops->get_config(fx->dev, UINT_MAX - 1, buf, 4); /* offset + len overflows */
	assert_int_equal(buf[0] | buf[1] | buf[2] | buf[3], 0);
	/* Writes: only the part inside the config space lands. */
	fx->ops->set_config(fx->dev, 6, w, 4);
	assert_int_equal(fx->t.config[5], 0x15);
	assert_int_equal(fx->t.config[6], 1);
	assert_int_equal(fx->t.config[7], 2);
	fx->ops->set_config(fx->dev, UINT_MAX - 1, w, 4);
	fx->ops->set_config(fx->dev, 8, w, 4);
	assert_int_equal(fx->t.config[7], 2);
}

static void test_generation(void **state)
{
	struct fx *fx = *state;
	uint32_t g0 = fx->ops->get_generation(fx->dev);
	uint8_t b = 7;

	fx->ops->set_config(fx->dev, 0, &b, 1); /* the driver's write is not a device change */
	assert_int_equal(fx->ops->get_generation(fx->dev), g0);
	assert_int_equal(fx->config_cbs, 0);
	virtio_device_config_changed(&fx->vdev);
	assert_int_equal(fx->ops->get_generation(fx->dev), g0 + 1);
	assert_int_equal(fx->config_cbs, 1);
	virtio_device_config_changed(&fx->vdev);
	assert_int_equal(fx->ops->get_generation(fx->dev), g0 + 2);
	assert_int_equal(fx->config_cbs, 2);
}

/* ---- reset, kicks, NEEDS_RESET ----------------------------------------------------------- */

static void check_clean(struct fx *fx)
{
	struct virtio_vq_state st;

	assert_int_equal(status(fx), 0);
	assert_int_equal(fx->ops->get_driver_features(fx->dev), 0);
	for (unsigned i = 0; i < 2; i++) {
		assert_false(fx->ops->get_vq_ready(fx->dev, i));
		assert_null(virtio_device_vq(&fx->vdev, i));
		assert_int_equal(fx->vdev.queues[i].num, TDEV_QMAX);
		assert_int_equal(fx->vdev.queues[i].desc, 0);
		assert_int_equal(fx->ops->get_vq_state(fx->dev, i, &st), 0);
		assert_int_equal(st.last_avail_idx, 0);
		assert_int_equal(st.used_idx, 0);
	}
}

static void test_reset_clears_everything(void **state)
{
	struct fx *fx = *state;
	struct virtio_vq_state st = { 3, 3 };

	negotiate(fx, F(VIRTIO_F_VERSION_1) | F(TDEV_F_A));
	fx->ops->set_vq_state(fx->dev, 1, &st);
	fx->ops->set_vq_num(fx->dev, 1, 8);
	live_device(fx);
	fx->ops->set_status(fx->dev, 0);
	assert_int_equal(fx->t.resets, 1);
	check_clean(fx);
	/* The same again through the reset op, and the device comes back up. */
	live_device(fx);
	fx->ops->reset(fx->dev);
	assert_int_equal(fx->t.resets, 2);
	check_clean(fx);
	live_device(fx);
	assert_int_equal(fx->t.activates, 3);
	/* Callbacks survive the reset: a request is still signalled. */
	post(fx, 0, 0, 1);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->vq_cbs[0], 1);
}

static void test_kicks_ignored_until_driver_ok(void **state)
{
	struct fx *fx = *state;

	fx->ops->kick_vq(fx->dev, 0);
	negotiate(fx, F(VIRTIO_F_VERSION_1));
	assert_int_equal(setup_queue(fx, 0), 0);
	post(fx, 0, 0, 1);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.notifies[0], 0);
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_DRIVER_OK);
	fx->ops->kick_vq(fx->dev, 1);       /* not ready */
	fx->ops->kick_vq(fx->dev, 2);       /* no such queue */
	fx->ops->kick_vq(fx->dev, UINT_MAX);
	assert_int_equal(fx->t.notifies[1], 0);
	assert_int_equal(fx->t.notifies[0], 0);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.notifies[0], 1);
	assert_int_equal(fx->t.popped, 1);
	assert_int_equal(used_idx(fx), 1);
	assert_int_equal(fx->vq_cbs[0], 1);  /* virtio_device_notify reached the transport */
	/* After FAILED, kicks are ignored again. */
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_FAILED);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.notifies[0], 1);
}

static void test_needs_reset_after_broken_chain(void **state)
{
	struct fx *fx = *state;

	live_device(fx);
	post(fx, 0, 0, 1);
	post(fx, QSIZE + 3, 1, 2);          /* head index out of range */
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.popped, 1);  /* the good request before it was served */
	assert_int_equal(fx->t.failed_pops, 1);
	assert_true(status(fx) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(status(fx) & VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(fx->config_cbs, 1);
	/* Kicks now do nothing; a second failure does not signal again. */
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.notifies[0], 1);
	virtio_device_fail(&fx->vdev, 0, "again");
	assert_int_equal(fx->config_cbs, 1);
	/* A driver status write keeps NEEDS_RESET; only a reset clears it. */
	fx->ops->set_status(fx->dev, status(fx) & ~VIRTIO_STATUS_NEEDS_RESET);
	assert_true(status(fx) & VIRTIO_STATUS_NEEDS_RESET);
	fx->ops->set_status(fx->dev, 0);
	check_clean(fx);
	fx->t.popped = 0;
	assert_int_equal(gm_write(&fx->gm, AVAIL, &(uint32_t){ 0 }, 4), 0);
	assert_int_equal(gm_write(&fx->gm, USED, &(uint32_t){ 0 }, 4), 0);
	live_device(fx);
	post(fx, 1, 0, 1);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.popped, 1);
	assert_false(status(fx) & VIRTIO_STATUS_NEEDS_RESET);
}

static uint64_t xlate_identity(void *opaque, uint64_t iova, uint64_t len, int access,
			       uint64_t *gpa)
{
	(void)access;
	++*(unsigned *)opaque;
	*gpa = iova;
	return len;
}

static uint64_t xlate_nothing(void *opaque, uint64_t iova, uint64_t len, int access,
			      uint64_t *gpa)
{
	(void)opaque, (void)iova, (void)len, (void)access, (void)gpa;
	return 0;
}

/* vhost-user helpers: an IOTLB in front of new queues; live queues remapped in place. */
static void test_iotlb_and_remap(void **state)
{
	struct fx *fx = *state;
	unsigned lookups = 0;
	struct vq_iotlb ident = { xlate_identity, &lookups }, none = { xlate_nothing, NULL };
	struct virtio_vq_state st;

	virtio_device_set_iotlb(fx->dev, &ident);
	live_device(fx);
	assert_true(lookups > 0); /* the rings were translated */
	post(fx, 0, 0, 1);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(used_idx(fx), 1);
	/* Remapping keeps the indices: the next request lands in used slot 1. */
	assert_int_equal(virtio_device_remap_queues(fx->dev), 0);
	assert_int_equal(fx->ops->get_vq_state(fx->dev, 0, &st), 0);
	assert_int_equal(st.last_avail_idx, 1);
	post(fx, 1, 1, 2);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(used_idx(fx), 2);
	assert_int_equal(fx->t.popped, 2);
	assert_false(status(fx) & VIRTIO_STATUS_NEEDS_RESET);
	/* Rings no longer reachable: the device asks for a reset. */
	virtio_device_set_iotlb(fx->dev, &none);
	assert_int_equal(virtio_device_remap_queues(fx->dev), -EIO);
	assert_true(status(fx) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(fx->config_cbs, 1);
	virtio_device_set_iotlb(fx->dev, NULL);
}

/* A device that cannot start asks for a reset instead of running half set up. */
static void test_activation_failure(void **state)
{
	struct fx *fx = *state;

	fx->t.activate_ret = -ENOMEM;
	negotiate(fx, F(VIRTIO_F_VERSION_1));
	assert_int_equal(setup_queue(fx, 0), 0);
	fx->ops->set_status(fx->dev, status(fx) | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(fx->t.activates, 1);
	assert_true(status(fx) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(fx->config_cbs, 1);
	post(fx, 0, 0, 1);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.notifies[0], 0);
	fx->t.activate_ret = 0;
	fx->ops->set_status(fx->dev, 0);
	live_device(fx);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.popped, 1);
}

/* vhost-user GET_VRING_BASE: processing stops, the live indices stay readable. */
static void test_quiesce(void **state)
{
	struct fx *fx = *state;
	struct virtio_vq_state st;

	live_device(fx);
	post(fx, 0, 0, 1);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.popped, 1);
	virtio_device_quiesce(fx->dev);
	assert_int_equal(fx->t.resets, 1);
	assert_true(fx->ops->get_vq_ready(fx->dev, 0));
	assert_int_equal(fx->ops->get_vq_state(fx->dev, 0, &st), 0);
	assert_int_equal(st.last_avail_idx, 1);
	assert_int_equal(st.used_idx, 1);
	post(fx, 1, 1, 2);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.popped, 1);   /* ignored while quiesced */
	fx->ops->reset(fx->dev);
	check_clean(fx);
	assert_int_equal(gm_write(&fx->gm, AVAIL, &(uint32_t){ 0 }, 4), 0);
	live_device(fx);
	post(fx, 1, 0, 1);
	fx->ops->kick_vq(fx->dev, 0);
	assert_int_equal(fx->t.popped, 2);
}

static void test_init_refuses_bad_class(void **state)
{
	struct virtio_device vdev;
	struct virtio_device_class c = tdev_class;

	(void)state;
	c.num_queues = 0;
	assert_int_equal(virtio_device_init(&vdev, &c, NULL, NULL), -EINVAL);
	c.num_queues = VIRTIO_MAX_QUEUES + 1;
	assert_int_equal(virtio_device_init(&vdev, &c, NULL, NULL), -EINVAL);
	c.num_queues = 1;
	c.queue_max_size = VQ_MAX_SIZE + 1;
	assert_int_equal(virtio_device_init(&vdev, &c, NULL, NULL), -EINVAL);
	c.queue_max_size = 0;
	assert_int_equal(virtio_device_init(&vdev, &c, NULL, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_status_normal_sequence),
		T(test_features_ok_refused_unoffered),
		T(test_features_ok_refused_without_version_1),
		T(test_features_ok_refused_by_class),
		T(test_status_out_of_order),
		T(test_status_clear_refused_failed_accepted),
		T(test_features_after_features_ok_ignored),
		T(test_queue_setup_rules),
		T(test_queue_packed_any_size),
		T(test_queue_bad_rings_refused),
		T(test_queue_ready_before_features_ok),
		T(test_vring_base),
		T(test_config_clipping),
		T(test_generation),
		T(test_reset_clears_everything),
		T(test_kicks_ignored_until_driver_ok),
		T(test_needs_reset_after_broken_chain),
		T(test_iotlb_and_remap),
		T(test_quiesce),
		T(test_activation_failure),
		cmocka_unit_test(test_init_refuses_bad_class),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
