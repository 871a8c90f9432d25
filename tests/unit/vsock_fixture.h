/* Fixture for the virtio-vsock unit tests (test_vsock.c, test_vsock_flow.c): the device
 * driven through the device-ops like a transport, mock driver queues (vq_driver.h) in guest
 * memory playing the guest driver, real Unix sockets in a temporary directory playing the host
 * side. The device has its own worker thread: helpers wait (with a timeout) for used entries.
 * Setups: setup_split, setup_packed (packed rings), setup_fast_timeouts (300 ms). */
#ifndef VIREO_TESTS_VSOCK_FIXTURE_H
#define VIREO_TESTS_VSOCK_FIXTURE_H

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/virtio_ids.h>

#include "devices/virtio/vsock.h"
#include "vq_driver.h"

#define F(bit) (1ull << (bit))
#define QSIZE 64
#define CID 3
#define RX_DATA 4096
#define RX_BUFS 32               /* receive buffers kept posted */
#define RX_GPA 0x100000ull       /* receive buffer i: header at +0, data at +0x100 */
#define TX_GPA 0x200000ull       /* transmit header; payload at TX_GPA + 0x1000 */
#define EV_GPA 0x300000ull
#define MEM (4u << 20)
#define WAIT_MS 2000

static uint64_t ring_features __attribute__((unused)) = VQD_F_EVENT_IDX; /* set by the setup variants */
static unsigned timeout_ms __attribute__((unused));                       /* 0: the device's defaults */

struct fx {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct virtio_dev_handle h;
	struct vqd rx, tx, ev;
	char dir[64], uds[96];
	uint64_t rx_gpa[QSIZE];
	unsigned next_rx_slot;
};

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait for a used entry on d: its id, or -1 after ms. */
static inline int wait_used(struct vqd *d, uint32_t *len, unsigned ms)
{
	for (unsigned t = 0; t <= ms; t++) {
		int id = vqd_get_used(d, len);

		if (id >= 0)
			return id;
		sleep_ms(1);
	}
	return -1;
}

static inline void post_rx(struct fx *fx)
{
	uint64_t gpa = RX_GPA + 0x2000ull * (fx->next_rx_slot++ % QSIZE);
	struct vqd_buf b[2] = { { gpa, VSOCK_HDR_LEN, true }, { gpa + 0x100, RX_DATA, true } };
	int id = vqd_add(&fx->rx, b, 2);

	assert_true(id >= 0);
	fx->rx_gpa[id] = gpa;
	fx->h.ops->kick_vq(fx->h.dev, 0);
}

static inline void bring_up(struct fx *fx, unsigned nrx)
{
	const struct virtio_device_ops *ops = fx->h.ops;
	void *dev = fx->h.dev;
	struct vqd *q[3] = { &fx->rx, &fx->tx, &fx->ev };
	uint64_t want = F(VIRTIO_F_VERSION_1) | ring_features;

	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(ops->set_features(dev, want), 0);
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(vqd_init(q[i], &fx->gm, 0x1000 + 0x8000ull * i, QSIZE,
					  ring_features), 0);
		assert_int_equal(ops->set_vq_num(dev, i, QSIZE), 0);
		assert_int_equal(ops->set_vq_address(dev, i, q[i]->desc, q[i]->avail, q[i]->used), 0);
		assert_int_equal(ops->set_vq_ready(dev, i, true), 0);
	}
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_DRIVER_OK);
	assert_true(ops->get_status(dev) & VIRTIO_STATUS_DRIVER_OK);
	for (unsigned i = 0; i < nrx; i++)
		post_rx(fx);
}

static inline int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct virtio_vsock_config_opts o = { .guest_cid = CID, .connect_timeout_ms = timeout_ms,
					      .close_timeout_ms = timeout_ms };

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/vireo-tvsock.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->uds, sizeof(fx->uds), "%s/v.sock", fx->dir);
	o.uds = fx->uds;
	assert_int_equal(gm_init(&fx->gm), 0);
	assert_true(gm_add_ram(&fx->gm, 0, MEM, 0) >= 0);
	assert_int_equal(virtio_vsock_create(&fx->vdev, &fx->gm, &o), 0);
	fx->h = virtio_device_handle(&fx->vdev);
	bring_up(fx, RX_BUFS);
	*state = fx;
	return 0;
}

static inline int setup_packed(void **state)
{
	ring_features = VQD_F_EVENT_IDX | VQD_F_PACKED;
	timeout_ms = 0;
	return setup(state);
}

static inline int setup_fast_timeouts(void **state)
{
	ring_features = VQD_F_EVENT_IDX;
	timeout_ms = 300;
	return setup(state);
}

static inline int setup_split(void **state)
{
	ring_features = VQD_F_EVENT_IDX;
	timeout_ms = 0;
	return setup(state);
}

static inline int teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[128];

	virtio_device_destroy(&fx->vdev);
	vqd_destroy(&fx->rx);
	vqd_destroy(&fx->tx);
	vqd_destroy(&fx->ev);
	gm_destroy(&fx->gm);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

static inline struct vsock_hdr hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t len)
{
	return (struct vsock_hdr){ .src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = src_port,
				   .dst_port = dst_port, .len = len, .type = VIRTIO_VSOCK_TYPE_STREAM,
				   .op = op, .buf_alloc = 256 * 1024 };
}

/* Transmit a packet whose buffer holds blen header bytes (raw) and plen payload bytes. */
static inline void send_raw(struct fx *fx, const uint8_t *raw, uint32_t blen, const void *pay,
		     uint32_t plen)
{
	struct vqd_buf b[2] = { { TX_GPA, blen, false }, { TX_GPA + 0x1000, plen, false } };
	uint32_t len;

	assert_int_equal(gm_write(&fx->gm, TX_GPA, raw, blen), 0);
	if (plen)
		assert_int_equal(gm_write(&fx->gm, TX_GPA + 0x1000, pay, plen), 0);
	assert_true(vqd_add(&fx->tx, b, plen ? 2 : 1) >= 0);
	fx->h.ops->kick_vq(fx->h.dev, 1);
	assert_true(wait_used(&fx->tx, &len, WAIT_MS) >= 0);
}

static inline void send_pkt(struct fx *fx, const struct vsock_hdr *h, const void *pay)
{
	uint8_t raw[VSOCK_HDR_LEN];

	vsock_hdr_encode(h, raw);
	send_raw(fx, raw, VSOCK_HDR_LEN, pay, h->len);
}

/* The next packet to the guest into *h and pay (RX_DATA bytes); false after ms. */
static inline bool recv_pkt_ms(struct fx *fx, struct vsock_hdr *h, void *pay, unsigned ms)
{
	uint8_t raw[VSOCK_HDR_LEN];
	struct virtio_vsock_hdr w;
	uint32_t len;
	int id = wait_used(&fx->rx, &len, ms);

	if (id < 0)
		return false;
	assert_true(len >= VSOCK_HDR_LEN);
	assert_int_equal(gm_read(&fx->gm, fx->rx_gpa[id], raw, VSOCK_HDR_LEN), 0);
	memcpy(&w, raw, sizeof(w));
	*h = (struct vsock_hdr){
		.src_cid = le64toh(w.src_cid), .dst_cid = le64toh(w.dst_cid),
		.src_port = le32toh(w.src_port), .dst_port = le32toh(w.dst_port),
		.len = le32toh(w.len), .type = le16toh(w.type), .op = le16toh(w.op),
		.flags = le32toh(w.flags), .buf_alloc = le32toh(w.buf_alloc),
		.fwd_cnt = le32toh(w.fwd_cnt),
	};
	assert_int_equal(h->len, len - VSOCK_HDR_LEN);
	assert_int_equal(h->src_cid, VSOCK_HOST_CID);
	assert_int_equal(h->dst_cid, CID);
	assert_int_equal(h->type, VIRTIO_VSOCK_TYPE_STREAM);
	assert_true(h->len <= RX_DATA);
	if (pay && h->len)
		assert_int_equal(gm_read(&fx->gm, fx->rx_gpa[id] + 0x100, pay, h->len), 0);
	post_rx(fx);
	return true;
}

static inline void recv_pkt(struct fx *fx, struct vsock_hdr *h, void *pay)
{
	assert_true(recv_pkt_ms(fx, h, pay, WAIT_MS));
}

static inline int uds_listen(struct fx *fx, uint32_t port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", fx->uds, port);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

static inline int accept_ms(int lfd, unsigned ms)
{
	struct pollfd p = { lfd, POLLIN, 0 };

	assert_int_equal(poll(&p, 1, (int)ms), 1);
	return accept(lfd, NULL, NULL);
}

/* Read exactly n bytes from fd (with a timeout). */
static inline void read_exact(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;

		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		r = read(fd, (char *)buf + got, n - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* Whether fd reaches EOF (read returns 0 or an error) within ms. */
static inline bool eof_within(int fd, unsigned ms)
{
	char b[4096];
	struct pollfd p = { fd, POLLIN, 0 };

	for (;;) {
		if (poll(&p, 1, (int)ms) != 1)
			return false;
		ssize_t r = read(fd, b, sizeof(b));

		if (r <= 0)
			return true;
	}
}

/* Guest port gp connects to host port hp (listener lfd): returns the host's socket. */
static inline int guest_connect(struct fx *fx, int lfd, uint32_t gp, uint32_t hp)
{
	struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_REQUEST, gp, hp, 0), r;
	int fd;

	send_pkt(fx, &h, NULL);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RESPONSE);
	assert_int_equal(r.src_port, hp);
	assert_int_equal(r.dst_port, gp);
	assert_int_equal(r.buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
	fd = accept_ms(lfd, WAIT_MS);
	assert_true(fd >= 0);
	return fd;
}

static inline struct virtio_vsock_stats stats(struct fx *fx)
{
	struct virtio_vsock_stats s;

	virtio_vsock_stats(&fx->vdev, &s);
	return s;
}

#endif
