/* Unit tests of virtio-net in loopback mode (src/devices/virtio/net*.c), driven through the
 * device-ops with the mock driver queue (vq_driver.h): frames of several sizes come back with
 * the right header and bytes, mergeable receive buffers (a 1500-byte frame over three small
 * buffers, num_buffers right), a frame without receive buffers waits until buffers arrive,
 * hostile tx chains are refused and counted, the control queue (MQ pairs, RX mode, errors),
 * two queue pairs kept apart, and the non-mergeable case. Split and packed rings.
 *
 * The device moves frames on its own pair threads: the test offers buffers, kicks, and waits
 * (bounded) for used entries. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "devices/virtio/net.h"
#include "memory/guest_memory.h"
#include "vq_driver.h"

#define F(bit) (1ull << (bit))
#define REGION_SIZE (1u << 20) /* two adjacent 1 MiB regions */
#define QSIZE 64
#define PAIRS 2
#define NQ (2 * PAIRS + 1)
#define CTRL (2 * PAIRS)
#define RINGS(q) (0x1000 + 0x2000ull * (q))  /* five rings of 64 entries below 0x10000 */
#define TXBUF 0x10000                         /* tx frames from here (up to 80 KiB) */
#define RXBUF 0x40000                         /* rx buffers from here, 0x1000 apart */
#define CTRLBUF 0x30000
#define HDR VIRTIO_NET_HDR_LEN

struct fx {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct virtio_dev_handle h;
	struct vqd d[NQ];
	uint64_t rx_addr[PAIRS][QSIZE]; /* rx id -> buffer gpa */
	unsigned rx_next[PAIRS];        /* next rx buffer slot */
	unsigned irqs[NQ];
};

static void vq_cb(void *opaque, unsigned idx)
{
	struct fx *fx = opaque;

	assert_true(idx < NQ);
	__atomic_add_fetch(&fx->irqs[idx], 1, __ATOMIC_RELAXED);
}

static int setup(void **state)
{
	struct fx *fx = test_calloc(1, sizeof(*fx));
	struct virtio_net_opts o = { .loopback = true, .queue_pairs = PAIRS, .queue_size = QSIZE };

	assert_int_equal(gm_init(&fx->gm), 0);
	assert_true(gm_add_ram(&fx->gm, 0, REGION_SIZE, 0) >= 0);
	assert_true(gm_add_ram(&fx->gm, REGION_SIZE, REGION_SIZE, 0) >= 0);
	assert_int_equal(virtio_net_create(&fx->vdev, &fx->gm, &o), 0);
	fx->h = virtio_device_handle(&fx->vdev);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	virtio_device_destroy(&fx->vdev);
	for (unsigned q = 0; q < NQ; q++)
		vqd_destroy(&fx->d[q]);
	gm_destroy(&fx->gm);
	test_free(fx);
	return 0;
}

/* Negotiate VERSION_1 plus `net_features` and the ring features, set up every queue. */
static void bring_up(struct fx *fx, uint64_t net_features, uint64_t ring_features)
{
	const struct virtio_device_ops *ops = fx->h.ops;
	void *dev = fx->h.dev;
	uint64_t want = F(VIRTIO_F_VERSION_1) | net_features | ring_features;
	uint8_t cfg[10];

	assert_int_equal(ops->get_device_id(dev), VIRTIO_ID_NET);
	assert_int_equal(ops->get_num_queues(dev), NQ);
	assert_int_equal(ops->get_features(dev) & want, want);
	assert_false(ops->get_features(dev) & F(VIRTIO_NET_F_CSUM)); /* loopback: no offloads */
	ops->get_config(dev, 0, cfg, sizeof(cfg));
	assert_memory_equal(cfg, ((uint8_t[]){ 0x52, 0x54, 0x00, 0x76, 0x69, 0x72 }), 6);
	assert_int_equal(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
	assert_int_equal(cfg[8] | cfg[9] << 8, PAIRS);
	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(ops->set_features(dev, want), 0);
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_FEATURES_OK);
	assert_true(ops->get_status(dev) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < NQ; q++) {
		struct vqd *d = &fx->d[q];

		assert_int_equal(vqd_init(d, &fx->gm, RINGS(q), QSIZE, ring_features), 0);
		assert_int_equal(ops->set_vq_num(dev, q, QSIZE), 0);
		assert_int_equal(ops->set_vq_address(dev, q, d->desc, d->avail, d->used), 0);
		ops->set_vq_cb(dev, q, vq_cb, fx);
		assert_int_equal(ops->set_vq_ready(dev, q, true), 0);
	}
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_DRIVER_OK);
	assert_true(ops->get_status(dev) & VIRTIO_STATUS_DRIVER_OK);
}

static void kick(struct fx *fx, unsigned q)
{
	fx->h.ops->kick_vq(fx->h.dev, q);
}

/* Nothing more is used on queue q for a while. */
static void expect_quiet(struct fx *fx, unsigned q)
{
	uint32_t len;

	usleep(30000);
	assert_int_equal(vqd_get_used(&fx->d[q], &len), -EAGAIN);
}

/* Offer n receive buffers of `size` bytes on pair p. */
static void add_rx(struct fx *fx, unsigned p, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned slot = fx->rx_next[p]++ % QSIZE;
		uint64_t gpa = RXBUF + (p * QSIZE + slot) * 0x1000ull;
		struct vqd_buf b = { gpa, size, true };
		int id = vqd_add(&fx->d[2 * p], &b, 1);

		assert_true(id >= 0);
		fx->rx_addr[p][id] = gpa;
	}
	kick(fx, 2 * p);
}

static void pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + seed);
}

/* Send a frame of len bytes (header in its own descriptor, data in two) on pair p. */
static int send_frame(struct fx *fx, unsigned p, const uint8_t *frame, size_t len)
{
	uint8_t hdr[HDR] = { VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0xff, 0xff }; /* junk to be reset */
	size_t half = len / 2;
	struct vqd_buf b[3] = {
		{ TXBUF, HDR, false },
		{ TXBUF + 0x100, (uint32_t)half, false },
		{ TXBUF + 0x100 + half + 0x10, (uint32_t)(len - half), false },
	};
	int id;

	assert_int_equal(gm_write(&fx->gm, TXBUF, hdr, HDR), 0);
	assert_int_equal(gm_write(&fx->gm, b[1].addr, frame, half), 0);
	assert_int_equal(gm_write(&fx->gm, b[2].addr, frame + half, len - half), 0);
	if (!half)
		b[1] = b[2];
	id = vqd_add(&fx->d[2 * p + 1], b, half ? 3 : 2);
	assert_true(id >= 0);
	kick(fx, 2 * p + 1);
	return id;
}

/* Receive one frame of `len` bytes on pair p spread over `nbufs` buffers; check header and
 * bytes. */
static void expect_frame(struct fx *fx, unsigned p, const uint8_t *frame, size_t len,
			 unsigned nbufs)
{
	static uint8_t got[HDR + VIRTIO_NET_MAX_FRAME];
	struct virtio_net_hdr_v1 h;
	size_t have = 0;

	for (unsigned k = 0; k < nbufs; k++) {
		uint32_t l = 0;
		int id = vqd_wait_used(&fx->d[2 * p], &l);

		assert_true(id >= 0);
		assert_true(have + l <= sizeof(got));
		assert_int_equal(gm_read(&fx->gm, fx->rx_addr[p][id], got + have, l), 0);
		have += l;
	}
	assert_int_equal(have, HDR + len);
	memcpy(&h, got, sizeof(h));
	assert_int_equal(le16toh(h.num_buffers), nbufs);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(h.csum_start, 0);
	assert_memory_equal(got + HDR, frame, len);
}

static void expect_tx_done(struct fx *fx, unsigned p, int id)
{
	uint32_t len = ~0u;

	assert_int_equal(vqd_wait_used(&fx->d[2 * p + 1], &len), id);
	assert_int_equal(len, 0);
}

static void clear_dirty(struct fx *fx)
{
	static unsigned long bits[REGION_SIZE / GM_PAGE_SIZE / (8 * sizeof(unsigned long))];

	for (unsigned i = 0; i < 2; i++)
		assert_true(gm_dirty_fetch_and_clear(&fx->gm, i, bits) >= 0);
}

static void stats(struct fx *fx, struct virtio_net_stats *s)
{
	virtio_net_get_stats(&fx->vdev, s);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void loopback_sizes(struct fx *fx, uint64_t ring_features)
{
	static uint8_t frame[9000];
	static const size_t sizes[] = { 1, 60, 1514, 4000, 9000 };
	uint64_t bytes = 0;
	struct virtio_net_stats s;

	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF), ring_features);
	add_rx(fx, 0, 16, 2048);
	clear_dirty(fx);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i];
		int id;

		pattern(frame, len, (unsigned)i);
		id = send_frame(fx, 0, frame, len);
		expect_frame(fx, 0, frame, len, (unsigned)((len + HDR + 2047) / 2048));
		expect_tx_done(fx, 0, id);
		bytes += len;
	}
	stats(fx, &s);
	assert_int_equal(s.tx_packets, 5);
	assert_int_equal(s.rx_packets, 5);
	assert_int_equal(s.tx_bytes, bytes);
	assert_int_equal(s.rx_bytes, bytes);
	assert_int_equal(s.tx_errors + s.rx_dropped, 0);
	assert_true(fx->irqs[0] >= 1 && fx->irqs[1] >= 1);
	/* Since the receive buffers were offered only the device wrote the receive ring's page
	 * and the buffers: dirty for migration; a buffer it never used is not. */
	assert_true(gm_is_dirty(&fx->gm, RXBUF));
	assert_true(gm_is_dirty(&fx->gm, ring_features & VQD_F_PACKED ? fx->d[0].desc : fx->d[0].used));
	assert_false(gm_is_dirty(&fx->gm, RXBUF + 20 * 0x1000));
	assert_false(fx->h.ops->get_status(fx->h.dev) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_loopback_sizes_split(void **state)
{
	loopback_sizes(*state, VQD_F_EVENT_IDX);
}

static void test_loopback_sizes_packed(void **state)
{
	loopback_sizes(*state, VQD_F_PACKED);
}

/* A 1500-byte frame over three 600-byte buffers: 600 + 600 + 312, num_buffers 3. */
static void test_mergeable_three_buffers(void **state)
{
	struct fx *fx = *state;
	uint8_t frame[1500];
	uint32_t lens[3];
	int ids[3], id;

	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF), 0);
	add_rx(fx, 0, 3, 600);
	pattern(frame, sizeof(frame), 3);
	id = send_frame(fx, 0, frame, sizeof(frame));
	for (int k = 0; k < 3; k++) {
		ids[k] = vqd_wait_used(&fx->d[0], &lens[k]);
		assert_true(ids[k] >= 0);
	}
	assert_int_equal(lens[0], 600);
	assert_int_equal(lens[1], 600);
	assert_int_equal(lens[2], 1500 + HDR - 1200);
	{
		uint8_t got[1500 + HDR];
		struct virtio_net_hdr_v1 h;

		for (int k = 0; k < 3; k++)
			assert_int_equal(gm_read(&fx->gm, fx->rx_addr[0][ids[k]], got + 600 * k,
						 lens[k]), 0);
		memcpy(&h, got, sizeof(h));
		assert_int_equal(le16toh(h.num_buffers), 3);
		assert_memory_equal(got + HDR, frame, sizeof(frame));
	}
	expect_tx_done(fx, 0, id);
}

/* No receive buffers: the frame waits (its tx chain is not returned), then arrives once the
 * driver offers buffers. Nothing is dropped. */
static void test_no_rx_buffers_waits(void **state)
{
	struct fx *fx = *state;
	uint8_t frame[200];
	struct virtio_net_stats s;
	int id;

	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF), VQD_F_EVENT_IDX);
	pattern(frame, sizeof(frame), 9);
	id = send_frame(fx, 0, frame, sizeof(frame));
	expect_quiet(fx, 1); /* tx chain still held back */
	stats(fx, &s);
	assert_int_equal(s.tx_packets, 0);
	assert_true(s.rx_waits >= 1);
	add_rx(fx, 0, 2, 1024);
	expect_frame(fx, 0, frame, sizeof(frame), 1);
	expect_tx_done(fx, 0, id);
	stats(fx, &s);
	assert_int_equal(s.tx_packets, 1);
	assert_int_equal(s.rx_dropped, 0);
}

/* Tx chains the device must refuse without a crash or a reset: shorter than the header, a
 * header and nothing else, over 64 KiB; each counted, returned, and nothing looped back. */
static void test_hostile_tx(void **state)
{
	struct fx *fx = *state;
	struct vqd_buf short_hdr[] = { { TXBUF, HDR - 4, false } };
	struct vqd_buf only_hdr[] = { { TXBUF, HDR, false } };
	struct vqd_buf huge[] = { { TXBUF, HDR, false },
				  { REGION_SIZE, VIRTIO_NET_MAX_FRAME + 1, false } };
	struct vqd_buf split_hdr[] = { { TXBUF, 4, false }, { TXBUF + 0x40, 4, false } };
	struct virtio_net_stats s;
	uint8_t frame[100];
	int ids[4], id;

	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF), 0);
	add_rx(fx, 0, 8, 2048);
	ids[0] = vqd_add(&fx->d[1], short_hdr, 1);
	ids[1] = vqd_add(&fx->d[1], only_hdr, 1);
	ids[2] = vqd_add(&fx->d[1], huge, 2);
	ids[3] = vqd_add(&fx->d[1], split_hdr, 2);
	kick(fx, 1);
	for (int k = 0; k < 4; k++)
		expect_tx_done(fx, 0, ids[k]);
	expect_quiet(fx, 0);
	stats(fx, &s);
	assert_int_equal(s.tx_errors, 4);
	assert_int_equal(s.tx_packets + s.rx_packets, 0);
	assert_false(fx->h.ops->get_status(fx->h.dev) & VIRTIO_STATUS_NEEDS_RESET);
	/* The largest legal frame still goes through (33 buffers of 2 KiB). */
	add_rx(fx, 0, 32, 2048);
	{
		static uint8_t big[VIRTIO_NET_MAX_FRAME];

		pattern(big, sizeof(big), 1);
		id = send_frame(fx, 0, big, sizeof(big));
		expect_frame(fx, 0, big, sizeof(big), (sizeof(big) + HDR + 2047) / 2048);
		expect_tx_done(fx, 0, id);
	}
	(void)frame;
}

/* A control command: class, cmd, data; returns the ack byte, or -1 when none was written. */
static int ctrl_cmd(struct fx *fx, uint8_t cls, uint8_t cmd, const void *data, uint32_t len)
{
	uint8_t hdr[2] = { cls, cmd }, ack = 0xee;
	struct vqd_buf b[3] = { { CTRLBUF, 2, false }, { CTRLBUF + 0x10, len, false },
				{ CTRLBUF + 0x100, 1, true } };
	uint32_t used = 0;
	int id;

	assert_int_equal(gm_write(&fx->gm, CTRLBUF, hdr, 2), 0);
	assert_int_equal(gm_write(&fx->gm, CTRLBUF + 0x10, data, len), 0);
	assert_int_equal(gm_write(&fx->gm, CTRLBUF + 0x100, &ack, 1), 0);
	if (len) {
		id = vqd_add(&fx->d[CTRL], b, 3);
	} else {
		b[1] = b[2];
		id = vqd_add(&fx->d[CTRL], b, 2);
	}
	assert_true(id >= 0);
	kick(fx, CTRL); /* handled synchronously under the device lock */
	assert_int_equal(vqd_get_used(&fx->d[CTRL], &used), id);
	if (used == 0)
		return -1;
	assert_int_equal(used, 1);
	assert_int_equal(gm_read(&fx->gm, CTRLBUF + 0x100, &ack, 1), 0);
	return ack;
}

static void test_ctrl_queue(void **state)
{
	struct fx *fx = *state;
	uint16_t pairs;
	uint8_t on = 1, table[16] = { 0 };
	struct vqd_buf bad[] = { { CTRLBUF, 1, false }, { CTRLBUF + 0x100, 1, true } };
	struct virtio_net_stats s;
	uint32_t used;

	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX) |
		     F(VIRTIO_NET_F_MQ), 0);
	assert_int_equal(virtio_net_active_pairs(&fx->vdev), 1); /* spec: one pair at first */
	pairs = htole16(2);
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_OK);
	assert_int_equal(virtio_net_active_pairs(&fx->vdev), 2);
	pairs = htole16(3); /* more than max_virtqueue_pairs */
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_ERR);
	pairs = 0;
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 1),
			 VIRTIO_NET_ERR); /* truncated data */
	assert_int_equal(virtio_net_active_pairs(&fx->vdev), 2);
	pairs = htole16(1);
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_OK);
	assert_int_equal(virtio_net_active_pairs(&fx->vdev), 1);
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST, &on, 1),
			 VIRTIO_NET_ERR); /* RX_EXTRA not offered */
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, table, 8),
			 VIRTIO_NET_OK);
	assert_int_equal(ctrl_cmd(fx, 0x77, 0, &on, 1), VIRTIO_NET_ERR);
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, NULL, 0),
			 VIRTIO_NET_ERR);
	/* A command of one byte: no class/cmd pair, answered without an ack byte. */
	assert_true(vqd_add(&fx->d[CTRL], bad, 2) >= 0);
	kick(fx, CTRL);
	assert_true(vqd_get_used(&fx->d[CTRL], &used) >= 0);
	assert_int_equal(used, 0);
	stats(fx, &s);
	assert_int_equal(s.ctrl_cmds, 12);
	assert_int_equal(s.ctrl_errors, 7);
	assert_true(fx->irqs[CTRL] >= 1);
	assert_false(fx->h.ops->get_status(fx->h.dev) & VIRTIO_STATUS_NEEDS_RESET);
}

/* Two pairs: a frame sent on pair 1 comes back on pair 1 only, and pair 0 still works. */
static void test_two_pairs(void **state)
{
	struct fx *fx = *state;
	uint8_t a[300], b[700];
	uint16_t pairs = htole16(2);
	int id;

	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_MQ),
		 VQD_F_EVENT_IDX);
	assert_int_equal(ctrl_cmd(fx, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2),
			 VIRTIO_NET_OK);
	add_rx(fx, 0, 4, 2048);
	add_rx(fx, 1, 4, 2048);
	pattern(b, sizeof(b), 5);
	id = send_frame(fx, 1, b, sizeof(b));
	expect_frame(fx, 1, b, sizeof(b), 1);
	expect_tx_done(fx, 1, id);
	expect_quiet(fx, 0);
	pattern(a, sizeof(a), 6);
	id = send_frame(fx, 0, a, sizeof(a));
	expect_frame(fx, 0, a, sizeof(a), 1);
	expect_tx_done(fx, 0, id);
	expect_quiet(fx, 2);
}

/* Without MRG_RXBUF a frame must fit one chain: one that does not is dropped and counted,
 * the next one that fits is delivered with num_buffers 1. */
static void test_non_mergeable(void **state)
{
	struct fx *fx = *state;
	uint8_t big[3000], small[500];
	struct virtio_net_stats s;
	int id;

	bring_up(fx, 0, 0);
	add_rx(fx, 0, 2, 2048);
	pattern(big, sizeof(big), 1);
	id = send_frame(fx, 0, big, sizeof(big));
	expect_tx_done(fx, 0, id);
	pattern(small, sizeof(small), 2);
	id = send_frame(fx, 0, small, sizeof(small));
	expect_frame(fx, 0, small, sizeof(small), 1);
	expect_tx_done(fx, 0, id);
	stats(fx, &s);
	assert_int_equal(s.rx_dropped, 1);
	assert_int_equal(s.rx_packets, 1);
	assert_int_equal(s.tx_packets, 2);
}

/* Many frames in a row (more than a ring's worth) all come back in order. */
static void test_stream(void **state)
{
	struct fx *fx = *state;
	uint8_t frame[128];

	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF), VQD_F_EVENT_IDX);
	for (unsigned i = 0; i < 3 * QSIZE; i++) {
		int id;

		add_rx(fx, 0, 1, 256);
		pattern(frame, sizeof(frame), i);
		id = send_frame(fx, 0, frame, sizeof(frame));
		expect_frame(fx, 0, frame, sizeof(frame), 1);
		expect_tx_done(fx, 0, id);
	}
}

/* A reset in the middle stops the pair threads; the device comes up again. */
static void test_reset_and_again(void **state)
{
	struct fx *fx = *state;
	uint8_t frame[64];
	int id;

	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF), 0);
	pattern(frame, sizeof(frame), 4);
	send_frame(fx, 0, frame, sizeof(frame)); /* waits: no rx buffers */
	fx->h.ops->set_status(fx->h.dev, 0);
	assert_int_equal(fx->h.ops->get_status(fx->h.dev), 0);
	for (unsigned q = 0; q < NQ; q++)
		vqd_destroy(&fx->d[q]);
	memset(fx->rx_next, 0, sizeof(fx->rx_next));
	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF), 0);
	add_rx(fx, 0, 1, 512);
	id = send_frame(fx, 0, frame, sizeof(frame));
	expect_frame(fx, 0, frame, sizeof(frame), 1);
	expect_tx_done(fx, 0, id);
}

static void test_bad_options(void **state)
{
	struct virtio_device vdev;
	struct guest_memory gm;
	uint8_t mac[6];
	struct virtio_net_opts none = { 0 }, both = { .loopback = true, .tap = "x" };
	struct virtio_net_opts pairs = { .loopback = true, .queue_pairs = 40 };
	struct virtio_net_opts qsize = { .loopback = true, .queue_size = 100 };

	(void)state;
	assert_int_equal(gm_init(&gm), 0);
	assert_int_equal(virtio_net_create(&vdev, &gm, &none), -EINVAL);
	assert_int_equal(virtio_net_create(&vdev, &gm, &both), -EINVAL);
	assert_int_equal(virtio_net_create(&vdev, &gm, &pairs), -EINVAL);
	assert_int_equal(virtio_net_create(&vdev, &gm, &qsize), -EINVAL);
	assert_int_equal(virtio_net_parse_mac("02:11:22:33:44:55", mac), 0);
	assert_int_equal(mac[5], 0x55);
	assert_int_equal(virtio_net_parse_mac("01:11:22:33:44:55", mac), -EINVAL);
	assert_int_equal(virtio_net_parse_mac("02:11:22:33:44", mac), -EINVAL);
	assert_int_equal(virtio_net_parse_mac("02:11:22:33:44:55x", mac), -EINVAL);
	gm_destroy(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_loopback_sizes_split),
		T(test_loopback_sizes_packed),
		T(test_mergeable_three_buffers),
		T(test_no_rx_buffers_waits),
		T(test_hostile_tx),
		T(test_ctrl_queue),
		T(test_two_pairs),
		T(test_non_mergeable),
		T(test_stream),
		T(test_reset_and_again),
		cmocka_unit_test(test_bad_options),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
