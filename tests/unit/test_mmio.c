/* Unit tests of the virtio-mmio transport (src/virtio/mmio.c) without KVM: the register file
 * driven the way a guest driver (or a hostile guest) would, through virtio_mmio_access(), in
 * front of real in-process devices: virtio-rng on real guest memory for the data path, and a
 * small test class with a config space and two queues for the rest. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/virtio_ids.h>

#include "devices/virtio/rng.h"
#include "memory/guest_memory.h"
#include "util/log.h"
#include "virtio/device_ops.h"
#include "virtio/mmio.h"
#include "vq_driver.h"

#define MEM_SIZE   (4u << 20)
#define RING       0x10000
#define BUF        0x40000
#define QSIZE      16
#define F(bit)     (1ull << (bit))
#define TCFG_QMAX  64
#define TCFG_F_A   3

/* ---- a test device class with a config space ------------------------------------------ */

struct tcfg {
	uint8_t config[8];
	unsigned notifies;
};

static void tcfg_read(struct virtio_device *vdev, unsigned off, void *buf, unsigned len)
{
	memcpy(buf, ((struct tcfg *)vdev->priv)->config + off, len);
}

static void tcfg_write(struct virtio_device *vdev, unsigned off, const void *buf, unsigned len)
{
	memcpy(((struct tcfg *)vdev->priv)->config + off, buf, len);
}

static void tcfg_notify(struct virtio_device *vdev, unsigned idx)
{
	(void)idx;
	((struct tcfg *)vdev->priv)->notifies++;
}

static const struct virtio_device_class tcfg_class = {
	.name = "tcfg",
	.device_id = 42,
	.features = F(VIRTIO_F_VERSION_1) | F(TCFG_F_A) | F(VIRTIO_F_NOTIFICATION_DATA),
	.num_queues = 2,
	.queue_max_size = TCFG_QMAX,
	.config_size = 8,
	.read_config = tcfg_read,
	.write_config = tcfg_write,
	.queue_notify = tcfg_notify,
};

/* ---- fixture ------------------------------------------------------------------------- */

struct fx {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct tcfg tcfg;
	struct virtio_mmio mmio;
	struct vqd d;
	unsigned irqs, kick_on, kick_off;
	bool take_kicks;
};

static void host_irq(void *opaque)
{
	((struct fx *)opaque)->irqs++;
}

static bool host_kick(void *opaque, unsigned idx, bool enable)
{
	struct fx *fx = opaque;

	(void)idx;
	if (enable)
		fx->kick_on++;
	else
		fx->kick_off++;
	return fx->take_kicks;
}

static int setup_common(void **state, bool rng)
{
	struct fx *fx = test_calloc(1, sizeof(*fx));
	struct virtio_mmio_host host = { host_irq, host_kick, fx, &fx->gm };

	assert_int_equal(gm_init(&fx->gm), 0);
	assert_true(gm_add_ram(&fx->gm, 0, MEM_SIZE, 0) >= 0);
	if (rng)
		assert_int_equal(virtio_rng_create(&fx->vdev, &fx->gm), 0);
	else
		assert_int_equal(virtio_device_init(&fx->vdev, &tcfg_class, &fx->gm, &fx->tcfg), 0);
	memcpy(fx->tcfg.config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_int_equal(virtio_mmio_init(&fx->mmio, virtio_device_handle(&fx->vdev), &host,
					  "test-mmio"), 0);
	*state = fx;
	return 0;
}

static int setup_rng(void **state) { return setup_common(state, true); }
static int setup_tcfg(void **state) { return setup_common(state, false); }

static int teardown(void **state)
{
	struct fx *fx = *state;

	virtio_mmio_destroy(&fx->mmio);
	vqd_destroy(&fx->d);
	virtio_device_destroy(&fx->vdev);
	gm_destroy(&fx->gm);
	test_free(fx);
	return 0;
}

/* ---- register access helpers (what the guest does) ------------------------------------ */

static uint64_t rdn(struct fx *fx, uint64_t off, unsigned size)
{
	uint64_t v = 0xdeadbeefdeadbeefull;

	assert_int_equal(virtio_mmio_access(&fx->mmio, off, &v, size, false), 0);
	if (size < 8)
		v &= (1ull << (8 * size)) - 1;
	return v;
}

static void wrn(struct fx *fx, uint64_t off, uint64_t v, unsigned size)
{
	assert_int_equal(virtio_mmio_access(&fx->mmio, off, &v, size, true), 0);
}

static uint32_t rd(struct fx *fx, unsigned off) { return (uint32_t)rdn(fx, off, 4); }
static void wr(struct fx *fx, unsigned off, uint32_t v) { wrn(fx, off, v, 4); }

static unsigned long refused(struct fx *fx)
{
	return atomic_load(&fx->mmio.refused);
}

/* ACKNOWLEDGE, DRIVER, features (low, high), FEATURES_OK: returns the status read back. */
static uint32_t negotiate(struct fx *fx, uint64_t features)
{
	wr(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(fx, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(fx, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(fx, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(fx, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
	   VIRTIO_STATUS_FEATURES_OK);
	return rd(fx, VIRTIO_MMIO_STATUS);
}

static void program_queue(struct fx *fx, unsigned idx, uint32_t num, uint64_t desc,
			  uint64_t driver, uint64_t device)
{
	wr(fx, VIRTIO_MMIO_QUEUE_SEL, idx);
	wr(fx, VIRTIO_MMIO_QUEUE_NUM, num);
	wr(fx, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(fx, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr(fx, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)driver);
	wr(fx, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(driver >> 32));
	wr(fx, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)device);
	wr(fx, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(device >> 32));
}

/* Lays out a split ring of QSIZE at RING and programs queue 0 with it; returns QueueReady. */
static uint32_t setup_ring(struct fx *fx)
{
	assert_int_equal(vqd_init(&fx->d, &fx->gm, RING, QSIZE, 0), 0);
	program_queue(fx, 0, QSIZE, fx->d.desc, fx->d.avail, fx->d.used);
	wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
	return rd(fx, VIRTIO_MMIO_QUEUE_READY);
}

#define S_ALL (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK)

/* ---- tests --------------------------------------------------------------------------- */

static void test_identity(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(rd(fx, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(fx, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(fx, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	assert_int_not_equal(rd(fx, VIRTIO_MMIO_VENDOR_ID), 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_NUM_MAX), 256); /* queue 0 selected */
	wr(fx, VIRTIO_MMIO_QUEUE_SEL, 1);                          /* rng has one queue */
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(refused(fx), 0);
}

static void test_bad_widths_and_offsets(void **state)
{
	struct fx *fx = *state;
	unsigned long r = refused(fx);

	/* Control registers are 32-bit and aligned: anything else reads 0 and is counted. */
	assert_int_equal(rdn(fx, VIRTIO_MMIO_MAGIC_VALUE, 1), 0);
	assert_int_equal(rdn(fx, VIRTIO_MMIO_MAGIC_VALUE, 2), 0);
	assert_int_equal(rdn(fx, VIRTIO_MMIO_MAGIC_VALUE, 8), 0);
	assert_int_equal(rdn(fx, VIRTIO_MMIO_MAGIC_VALUE + 2, 4), 0);
	assert_int_equal(refused(fx), r + 4);
	/* A byte-wide status write does not reach the device. */
	wrn(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_STATUS), 0);
	/* Holes, write-only registers read, read-only registers written. */
	assert_int_equal(rd(fx, 0x018), 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_NOTIFY), 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_INTERRUPT_ACK), 0);
	wr(fx, VIRTIO_MMIO_MAGIC_VALUE, 0);
	wr(fx, VIRTIO_MMIO_DEVICE_ID, 7);
	assert_int_equal(rd(fx, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	assert_int_equal(rd(fx, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	/* No shared memory regions: lengths and bases all ones, whatever SHMSel says. */
	wr(fx, VIRTIO_MMIO_SHM_SEL, 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffffu);
	assert_int_equal(rd(fx, VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffffu);
	assert_int_equal(rd(fx, VIRTIO_MMIO_SHM_BASE_LOW), 0xffffffffu);
	assert_int_equal(rd(fx, VIRTIO_MMIO_SHM_BASE_HIGH), 0xffffffffu);
	/* Past the window, or straddling its end. */
	assert_int_equal(rdn(fx, VIRTIO_MMIO_SIZE, 4), 0);
	assert_int_equal(rdn(fx, VIRTIO_MMIO_SIZE - 2, 4), 0);
	assert_int_equal(rdn(fx, ~0ull >> 1, 4), 0);
	wrn(fx, VIRTIO_MMIO_SIZE - 1, 0xff, 2);
	assert_true(refused(fx) >= r + 4 + 1 + 5 + 4);
}

static void test_features(void **state)
{
	struct fx *fx = *state;
	uint64_t offered;

	wr(fx, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	offered = rd(fx, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(fx, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)rd(fx, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	assert_true(offered & F(VIRTIO_F_VERSION_1));
	wr(fx, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(rd(fx, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	wr(fx, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0xffffffff);
	assert_int_equal(rd(fx, VIRTIO_MMIO_DEVICE_FEATURES), 0);

	/* Without VERSION_1 (legacy), or with a bit not offered: FEATURES_OK does not stick. */
	assert_int_equal(negotiate(fx, 0), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(fx, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1) | F(50)),
			 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(fx, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
	assert_int_equal(fx->vdev.driver_features, F(VIRTIO_F_VERSION_1));
	/* After FEATURES_OK the accepted set is fixed. */
	wr(fx, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(fx, VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffff);
	wr(fx, VIRTIO_MMIO_STATUS, S_ALL);
	assert_int_equal(fx->vdev.driver_features, F(VIRTIO_F_VERSION_1));
}

static void test_features_before_driver(void **state)
{
	struct fx *fx = *state;
	unsigned long r = refused(fx);

	/* DriverFeatures written before DRIVER is refused: the later FEATURES_OK then lacks
	 * VERSION_1 and fails. */
	wr(fx, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(fx, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	assert_int_equal(refused(fx), r + 1);
	wr(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(fx, VIRTIO_MMIO_STATUS, S_ALL);
	assert_false(rd(fx, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	/* Bits in feature word 2 and above do not exist. */
	wr(fx, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 5);
	wr(fx, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	assert_int_equal(refused(fx), r + 2);
}

static void test_queue_sizes(void **state)
{
	struct fx *fx = *state;
	static const uint32_t bad[] = { 0, 3, 17, 255, 512, 0x10000, 0x80000000u, 0xffffffffu };

	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
	assert_int_equal(vqd_init(&fx->d, &fx->gm, RING, QSIZE, 0), 0);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned long r = refused(fx);

		program_queue(fx, 0, bad[i], fx->d.desc, fx->d.avail, fx->d.used);
		wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
		assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 0);
		assert_int_equal(refused(fx), r + 1);
	}
	program_queue(fx, 0, 256, RING, RING + 0x1000, RING + 0x2000); /* the maximum */
	wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 1);
}

static void test_ring_addresses(void **state)
{
	struct fx *fx = *state;
	static const uint64_t bad[][3] = {
		{ MEM_SIZE, RING + 0x1000, RING + 0x2000 },           /* desc past the end */
		{ MEM_SIZE - 0x10, RING + 0x1000, RING + 0x2000 },    /* desc straddles it */
		{ RING, 1ull << 32, RING + 0x2000 },                  /* avail above 4 GiB */
		{ RING, RING + 0x1000, MEM_SIZE - 4 },                /* used straddles the end */
		{ RING, RING + 0x1000, 0xfffffffffffff000ull },       /* used wraps */
		{ RING + 1, RING + 0x1000, RING + 0x2000 },           /* desc misaligned */
		{ RING, RING + 0x1001, RING + 0x2000 },               /* avail misaligned */
		{ RING, RING + 0x1000, RING + 0x2002 },               /* used misaligned */
	};

	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		program_queue(fx, 0, QSIZE, bad[i][0], bad[i][1], bad[i][2]);
		wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
		assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 0);
	}
	assert_int_equal(setup_ring(fx), 1);
}

static void test_wrong_status_order(void **state)
{
	struct fx *fx = *state;
	unsigned long r;

	/* A queue cannot go ready before FEATURES_OK. */
	assert_int_equal(vqd_init(&fx->d, &fx->gm, RING, QSIZE, 0), 0);
	program_queue(fx, 0, QSIZE, fx->d.desc, fx->d.avail, fx->d.used);
	wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 0);
	/* DRIVER_OK without FEATURES_OK, DRIVER without ACKNOWLEDGE: dropped by the device. */
	wr(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_DRIVER);
	assert_int_equal(rd(fx, VIRTIO_MMIO_STATUS), 0);
	wr(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(rd(fx, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE);
	wr(fx, VIRTIO_MMIO_STATUS, 0x1ff);                    /* not a status byte */
	assert_int_equal(rd(fx, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE);
	wr(fx, VIRTIO_MMIO_STATUS, 0);

	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
	vqd_destroy(&fx->d);
	assert_int_equal(setup_ring(fx), 1);
	/* Queue registers of a ready queue, and after DRIVER_OK, stay as they were. */
	r = refused(fx);
	wr(fx, VIRTIO_MMIO_QUEUE_NUM, 4);
	wr(fx, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x12345000);
	assert_int_equal(refused(fx), r + 2);
	assert_int_equal(fx->mmio.queues[0].num, QSIZE);
	wr(fx, VIRTIO_MMIO_STATUS, S_ALL | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(rd(fx, VIRTIO_MMIO_STATUS), S_ALL | VIRTIO_STATUS_DRIVER_OK);
	wr(fx, VIRTIO_MMIO_QUEUE_READY, 0);                   /* no disabling after DRIVER_OK */
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 1);
	wr(fx, VIRTIO_MMIO_QUEUE_SEL, 7);                     /* no such queue */
	wr(fx, VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(refused(fx), r + 5);
	/* Clearing a status bit is refused; only 0 resets. */
	wr(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(rd(fx, VIRTIO_MMIO_STATUS), S_ALL | VIRTIO_STATUS_DRIVER_OK);
}

/* The whole data path: a request on virtio-rng comes back filled, with an interrupt and
 * InterruptStatus bit 0; InterruptACK clears it; reset clears everything. */
static void test_rng_request_and_reset(void **state)
{
	struct fx *fx = *state;
	struct vqd_buf b = { BUF, 64, true };
	uint8_t data[64], zero[64] = { 0 };
	uint32_t len = 0;

	gm_write(&fx->gm, BUF, zero, sizeof(zero));
	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
	assert_int_equal(setup_ring(fx), 1);
	wr(fx, VIRTIO_MMIO_STATUS, S_ALL | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(fx->kick_on, 1);  /* queue 0's kicks offered to the host */
	assert_int_equal(vqd_add(&fx->d, &b, 1), 0);
	wr(fx, VIRTIO_MMIO_QUEUE_NOTIFY, 5);                  /* no such queue: ignored */
	assert_int_equal(vqd_get_used(&fx->d, &len), -EAGAIN);
	assert_int_equal(rd(fx, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	wr(fx, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(vqd_get_used(&fx->d, &len), 0);
	assert_int_equal(len, 64);
	gm_read(&fx->gm, BUF, data, sizeof(data));
	assert_memory_not_equal(data, zero, sizeof(data));
	assert_int_equal(fx->irqs, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	wr(fx, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);  /* the other bit */
	assert_int_equal(rd(fx, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	wr(fx, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd(fx, VIRTIO_MMIO_INTERRUPT_STATUS), 0);

	/* A pending interrupt, then reset: status, queue, interrupt bits all back to 0, and the
	 * host's kick routing undone. */
	assert_int_equal(vqd_add(&fx->d, &b, 1), 0);
	wr(fx, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	wr(fx, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(fx->kick_off, fx->take_kicks ? 1 : 0);
	/* Kicks after the reset do nothing. */
	wr(fx, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(fx->irqs, 2);
	/* And the device can be set up again from scratch. */
	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
	vqd_destroy(&fx->d);
	assert_int_equal(setup_ring(fx), 1);
}

static void test_kick_routing(void **state)
{
	struct fx *fx = *state;

	fx->take_kicks = true;
	test_rng_request_and_reset(state);
	assert_int_equal(fx->kick_on, 1);
	assert_int_equal(fx->kick_off, 1);
}

static void test_config_space(void **state)
{
	struct fx *fx = *state;
	unsigned long r = refused(fx);

	assert_int_equal(rd(fx, VIRTIO_MMIO_DEVICE_ID), 42);
	assert_int_equal(rdn(fx, VIRTIO_MMIO_CONFIG, 1), 0x11);
	assert_int_equal(rdn(fx, VIRTIO_MMIO_CONFIG + 1, 2), 0x3322);
	assert_int_equal(rd(fx, VIRTIO_MMIO_CONFIG + 4), 0x88776655);
	assert_int_equal(rdn(fx, VIRTIO_MMIO_CONFIG, 8), 0x8877665544332211ull);
	/* Straddling the end of the config space: the part inside, zeros beyond. */
	assert_int_equal(rd(fx, VIRTIO_MMIO_CONFIG + 6), 0x8877);
	assert_int_equal(rd(fx, VIRTIO_MMIO_CONFIG + 8), 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_SIZE - 4), 0);
	assert_int_equal(refused(fx), r);
	/* Odd widths are refused. */
	assert_int_equal(rdn(fx, VIRTIO_MMIO_CONFIG, 3), 0);
	assert_int_equal(refused(fx), r + 1);
	/* Writes are clipped the same way: nothing lands beyond the 8 bytes. */
	wr(fx, VIRTIO_MMIO_CONFIG + 6, 0xaabbccdd);
	assert_memory_equal(fx->tcfg.config, "\x11\x22\x33\x44\x55\x66\xdd\xcc", 8);
	wrn(fx, VIRTIO_MMIO_CONFIG + 0x100, ~0ull, 8);
	assert_memory_equal(fx->tcfg.config, "\x11\x22\x33\x44\x55\x66\xdd\xcc", 8);
	/* The generation changes when the device changes its config. */
	uint32_t g = rd(fx, VIRTIO_MMIO_CONFIG_GENERATION);
	virtio_device_config_changed(&fx->vdev);
	assert_int_not_equal(rd(fx, VIRTIO_MMIO_CONFIG_GENERATION), g);
	assert_int_equal(rd(fx, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(fx->irqs, 1);
}

/* A device feature the transport cannot carry (NOTIFICATION_DATA) is not shown, and a driver
 * that accepts it anyway does not get FEATURES_OK. */
static void test_transport_features(void **state)
{
	struct fx *fx = *state;

	wr(fx, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_DEVICE_FEATURES), F(TCFG_F_A));
	wr(fx, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 only */
	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_NOTIFICATION_DATA)),
			 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(fx->vdev.driver_features, 0);
	wr(fx, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1) | F(TCFG_F_A)), S_ALL);
}

/* Two queues: each selected and programmed on its own; QueueNumMax per queue. */
static void test_two_queues(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
	wr(fx, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_NUM_MAX), TCFG_QMAX);
	program_queue(fx, 1, 8, RING, RING + 0x1000, RING + 0x2000);
	wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 1);
	wr(fx, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(fx, VIRTIO_MMIO_STATUS, S_ALL | VIRTIO_STATUS_DRIVER_OK);
	wr(fx, VIRTIO_MMIO_QUEUE_NOTIFY, 0);  /* queue 0 not ready: ignored */
	assert_int_equal(fx->tcfg.notifies, 0);
	wr(fx, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(fx->tcfg.notifies, 1);
	assert_int_equal(fx->kick_on, 1);      /* only the ready queue */
}

/* A device that needs a reset (broken chain) raises a config interrupt. */
static void test_needs_reset_interrupt(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
	assert_int_equal(setup_ring(fx), 1);
	wr(fx, VIRTIO_MMIO_STATUS, S_ALL | VIRTIO_STATUS_DRIVER_OK);
	vqd_write_desc(&fx->d, 0, MEM_SIZE + 0x1000, 64, VRING_DESC_F_WRITE, 0); /* outside RAM */
	vqd_publish_head(&fx->d, 0);
	wr(fx, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_true(rd(fx, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(rd(fx, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	wr(fx, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(fx, VIRTIO_MMIO_STATUS), 0);
}

/* ---- a permissive device (like a vhost-user one, which checks nothing before DRIVER_OK):
 * the transport's own ring checks are all that stand between the guest and the device ---- */

struct lax {
	uint8_t status;
	uint64_t features;
	bool ready;
	unsigned num, readies;
};

static uint64_t lax_get_features(void *d) { (void)d; return F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_RING_PACKED); }
static int lax_set_features(void *d, uint64_t f) { ((struct lax *)d)->features = f; return 0; }
static int lax_set_vq_address(void *d, unsigned i, uint64_t a, uint64_t b, uint64_t c)
{
	(void)d; (void)i; (void)a; (void)b; (void)c;
	return 0;
}
static int lax_set_vq_num(void *d, unsigned i, unsigned n) { (void)i; ((struct lax *)d)->num = n; return 0; }
static unsigned lax_get_vq_num_max(void *d, unsigned i) { (void)d; return i == 0 ? 256 : 0; }
static void lax_kick_vq(void *d, unsigned i) { (void)d; (void)i; }
static void lax_set_vq_cb(void *d, unsigned i, virtio_vq_cb cb, void *o) { (void)d; (void)i; (void)cb; (void)o; }
static int lax_set_vq_ready(void *d, unsigned i, bool r)
{
	struct lax *l = d;

	(void)i;
	l->readies += r;
	l->ready = r;
	return 0;
}
static bool lax_get_vq_ready(void *d, unsigned i) { (void)i; return ((struct lax *)d)->ready; }
static void lax_get_config(void *d, unsigned o, void *b, unsigned n) { (void)d; (void)o; memset(b, 0, n); }
static void lax_set_config(void *d, unsigned o, const void *b, unsigned n) { (void)d; (void)o; (void)b; (void)n; }
static void lax_set_config_cb(void *d, virtio_config_cb cb, void *o) { (void)d; (void)cb; (void)o; }
static uint8_t lax_get_status(void *d) { return ((struct lax *)d)->status; }
static void lax_set_status(void *d, uint8_t s)
{
	struct lax *l = d;

	l->status = s;
	if (!s)
		l->ready = false;
}
static uint32_t lax_get_id(void *d) { (void)d; return 2; }
static unsigned lax_get_num_queues(void *d) { (void)d; return 1; }

static const struct virtio_device_ops lax_ops = {
	.get_features = lax_get_features, .set_features = lax_set_features,
	.set_vq_address = lax_set_vq_address, .set_vq_num = lax_set_vq_num,
	.get_vq_num_max = lax_get_vq_num_max, .kick_vq = lax_kick_vq, .set_vq_cb = lax_set_vq_cb,
	.set_vq_ready = lax_set_vq_ready, .get_vq_ready = lax_get_vq_ready,
	.get_config = lax_get_config, .set_config = lax_set_config,
	.set_config_cb = lax_set_config_cb, .get_status = lax_get_status,
	.set_status = lax_set_status, .get_vendor_id = lax_get_id, .get_device_id = lax_get_id,
	.get_num_queues = lax_get_num_queues,
};

static void test_transport_ring_checks(void **state)
{
	struct fx *fx = *state;
	struct lax lax = { 0 };
	static const uint64_t bad[][3] = {
		{ MEM_SIZE, RING + 0x1000, RING + 0x2000 },           /* desc past the end */
		{ MEM_SIZE - 0x10, RING + 0x1000, RING + 0x2000 },    /* desc straddles it */
		{ RING, 1ull << 32, RING + 0x2000 },                  /* avail above 4 GiB */
		{ RING, RING + 0x1000, MEM_SIZE - 4 },                /* used straddles the end */
		{ RING, RING + 0x1000, 0xfffffffffffff000ull },       /* used wraps */
		{ RING + 8, RING + 0x1000, RING + 0x2000 },           /* desc misaligned */
		{ RING, RING + 0x1001, RING + 0x2000 },               /* avail misaligned */
		{ RING, RING + 0x1000, RING + 0x2002 },               /* used misaligned */
	};

	virtio_mmio_destroy(&fx->mmio);
	struct virtio_mmio_host host = { host_irq, host_kick, fx, &fx->gm };
	assert_int_equal(virtio_mmio_init(&fx->mmio, (struct virtio_dev_handle){ &lax_ops, &lax },
					  &host, "lax"), 0);
	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		program_queue(fx, 0, QSIZE, bad[i][0], bad[i][1], bad[i][2]);
		wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
		assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 0);
	}
	assert_int_equal(lax.readies, 0); /* the device never saw them */
	/* The largest split ring, its used ring 2 bytes short of the end of memory, is fine. */
	program_queue(fx, 0, 256, MEM_SIZE - 0x3000, MEM_SIZE - 0x2000, MEM_SIZE - 0x808);
	wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 1);
	wr(fx, VIRTIO_MMIO_STATUS, 0);
	/* Packed rings: 4-byte event structures. */
	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_RING_PACKED)), S_ALL);
	program_queue(fx, 0, 256, RING, MEM_SIZE - 4, RING + 0x1004);
	wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(lax.readies, 2);
	/* A queue programmed before DRIVER_OK but enabled only after it: the transport refuses
	 * (virtio 1.2, 4.2.3.2: queues are set up before DRIVER_OK), whatever the device would
	 * accept. */
	wr(fx, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
	program_queue(fx, 0, QSIZE, RING, RING + 0x1000, RING + 0x2000);
	wr(fx, VIRTIO_MMIO_STATUS, S_ALL | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(rd(fx, VIRTIO_MMIO_STATUS), S_ALL | VIRTIO_STATUS_DRIVER_OK);
	wr(fx, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(fx, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(lax.readies, 2);
	/* Status bits are cleared only by a reset, whatever the device would accept (a
	 * vhost-user device only logs the attempt, once per write, in its own code). */
	unsigned long r = refused(fx);
	wr(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(lax.status, S_ALL | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(refused(fx), r + 1);
	virtio_mmio_destroy(&fx->mmio);
	assert_int_equal(virtio_mmio_init(&fx->mmio, virtio_device_handle(&fx->vdev), &host,
					  "test-mmio"), 0);
}

/* Lines written to stderr while a hostile driver repeats refused accesses n times each:
 * status writes that would clear bits, FEATURES_OK with a feature not offered, queue sizes
 * the device refuses, and broken chains (NEEDS_RESET, then a reset, again). */
static unsigned log_lines_of_hostile_loop(struct fx *fx, unsigned n)
{
	enum log_level lvl = log_get_level();
	FILE *f = tmpfile();
	int saved = dup(2), c;
	unsigned lines = 0;

	assert_non_null(f);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fileno(f), 2), 2);
	log_set_level(LOG_WARN);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1) | F(50)),
				 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
		wr(fx, VIRTIO_MMIO_STATUS, 0);
		assert_int_equal(negotiate(fx, F(VIRTIO_F_VERSION_1)), S_ALL);
		vqd_destroy(&fx->d);
		assert_int_equal(setup_ring(fx), 1);
		wr(fx, VIRTIO_MMIO_STATUS, S_ALL | VIRTIO_STATUS_DRIVER_OK);
		wr(fx, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE); /* clears bits: refused */
		vqd_write_desc(&fx->d, 0, MEM_SIZE + 0x1000, 64, VRING_DESC_F_WRITE, 0);
		vqd_publish_head(&fx->d, 0);
		wr(fx, VIRTIO_MMIO_QUEUE_NOTIFY, 0);                  /* broken chain */
		assert_true(rd(fx, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
		wr(fx, VIRTIO_MMIO_STATUS, 0);
	}
	log_set_level(lvl);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	rewind(f);
	while ((c = fgetc(f)) != EOF)
		lines += c == '\n';
	fclose(f);
	return lines;
}

/* A driver repeating what is refused costs a few log lines, not one per access: the device
 * core's refusals are loud for the first few of the device's life, then at debug level, as
 * the transport's own. */
static void test_refusals_do_not_flood_the_log(void **state)
{
	struct fx *fx = *state;
	unsigned lines = log_lines_of_hostile_loop(fx, 200);

	print_message("%u log lines for 200 rounds of 4 refusals\n", lines);
	assert_true(lines > 0);
	assert_true(lines <= 64);
}

static void test_init_refuses(void **state)
{
	struct virtio_mmio m;

	(void)state;
	assert_int_equal(virtio_mmio_init(&m, (struct virtio_dev_handle){ NULL, NULL }, NULL, NULL),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_bad_widths_and_offsets, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_features, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_features_before_driver, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_queue_sizes, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_ring_addresses, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_transport_ring_checks, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_status_order, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_rng_request_and_reset, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_kick_routing, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_needs_reset_interrupt, setup_rng, teardown),
		cmocka_unit_test_setup_teardown(test_config_space, setup_tcfg, teardown),
		cmocka_unit_test_setup_teardown(test_two_queues, setup_tcfg, teardown),
		cmocka_unit_test_setup_teardown(test_transport_features, setup_tcfg, teardown),
		cmocka_unit_test_setup_teardown(test_refusals_do_not_flood_the_log, setup_rng,
						teardown),
		cmocka_unit_test(test_init_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
