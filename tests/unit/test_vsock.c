/* Unit tests of virtio-vsock (src/devices/virtio/vsock*.c), driven through the device-ops
 * like a transport, with mock driver queues (vq_driver.h) in guest memory playing the guest
 * driver, and real Unix sockets in a temporary directory playing the host side: connection
 * set-up both ways (CONNECT/OK handshake, <uds>_<port> listeners), data both ways, credit
 * accounting (buf_alloc, fwd_cnt, CREDIT_REQUEST/UPDATE, a guest exceeding its credit), RST for
 * unknown connections, SHUTDOWN flags, malformed packets counted by reason, many connections
 * with a stuck host peer, device reset with the TRANSPORT_RESET event, 2 MiB each way with
 * contents checked (split and packed rings), and the connect / close timeouts.
 * The device has its own worker thread: the tests wait (with a timeout) for used entries. */
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

static uint64_t ring_features = VQD_F_EVENT_IDX; /* set by the setup variants */
static unsigned timeout_ms;                       /* 0: the device's defaults */

struct fx {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct virtio_dev_handle h;
	struct vqd rx, tx, ev;
	char dir[64], uds[96];
	uint64_t rx_gpa[QSIZE];
	unsigned next_rx_slot;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait for a used entry on d: its id, or -1 after ms. */
static int wait_used(struct vqd *d, uint32_t *len, unsigned ms)
{
	for (unsigned t = 0; t <= ms; t++) {
		int id = vqd_get_used(d, len);

		if (id >= 0)
			return id;
		sleep_ms(1);
	}
	return -1;
}

static void post_rx(struct fx *fx)
{
	uint64_t gpa = RX_GPA + 0x2000ull * (fx->next_rx_slot++ % QSIZE);
	struct vqd_buf b[2] = { { gpa, VSOCK_HDR_LEN, true }, { gpa + 0x100, RX_DATA, true } };
	int id = vqd_add(&fx->rx, b, 2);

	assert_true(id >= 0);
	fx->rx_gpa[id] = gpa;
	fx->h.ops->kick_vq(fx->h.dev, 0);
}

static void bring_up(struct fx *fx, unsigned nrx)
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

static int setup(void **state)
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

static int setup_packed(void **state)
{
	ring_features = VQD_F_EVENT_IDX | VQD_F_PACKED;
	timeout_ms = 0;
	return setup(state);
}

static int setup_fast_timeouts(void **state)
{
	ring_features = VQD_F_EVENT_IDX;
	timeout_ms = 300;
	return setup(state);
}

static int setup_split(void **state)
{
	ring_features = VQD_F_EVENT_IDX;
	timeout_ms = 0;
	return setup(state);
}

static int teardown(void **state)
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

static struct vsock_hdr hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t len)
{
	return (struct vsock_hdr){ .src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = src_port,
				   .dst_port = dst_port, .len = len, .type = VIRTIO_VSOCK_TYPE_STREAM,
				   .op = op, .buf_alloc = 256 * 1024 };
}

/* Transmit a packet whose buffer holds blen header bytes (raw) and plen payload bytes. */
static void send_raw(struct fx *fx, const uint8_t *raw, uint32_t blen, const void *pay,
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

static void send_pkt(struct fx *fx, const struct vsock_hdr *h, const void *pay)
{
	uint8_t raw[VSOCK_HDR_LEN];

	vsock_hdr_encode(h, raw);
	send_raw(fx, raw, VSOCK_HDR_LEN, pay, h->len);
}

/* The next packet to the guest into *h and pay (RX_DATA bytes); false after ms. */
static bool recv_pkt_ms(struct fx *fx, struct vsock_hdr *h, void *pay, unsigned ms)
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

static void recv_pkt(struct fx *fx, struct vsock_hdr *h, void *pay)
{
	assert_true(recv_pkt_ms(fx, h, pay, WAIT_MS));
}

static int uds_listen(struct fx *fx, uint32_t port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", fx->uds, port);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	return fd;
}

static int accept_ms(int lfd, unsigned ms)
{
	struct pollfd p = { lfd, POLLIN, 0 };

	assert_int_equal(poll(&p, 1, (int)ms), 1);
	return accept(lfd, NULL, NULL);
}

/* Read exactly n bytes from fd (with a timeout). */
static void read_exact(int fd, void *buf, size_t n)
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
static bool eof_within(int fd, unsigned ms)
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
static int guest_connect(struct fx *fx, int lfd, uint32_t gp, uint32_t hp)
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

static struct virtio_vsock_stats stats(struct fx *fx)
{
	struct virtio_vsock_stats s;

	virtio_vsock_stats(&fx->vdev, &s);
	return s;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_config_and_ids(void **state)
{
	struct fx *fx = *state;
	uint64_t cid = 0;

	assert_int_equal(fx->h.ops->get_device_id(fx->h.dev), VIRTIO_ID_VSOCK);
	assert_int_equal(fx->h.ops->get_num_queues(fx->h.dev), 3);
	assert_int_equal(fx->h.ops->get_config_size(fx->h.dev), 8);
	fx->h.ops->get_config(fx->h.dev, 0, &cid, 8);
	assert_int_equal(le64toh(cid), CID);
}

static void test_guest_to_host(void **state)
{
	struct fx *fx = *state;
	int lfd = uds_listen(fx, 1234), fd = guest_connect(fx, lfd, 5000, 1234);
	struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_RW, 5000, 1234, 5), r;
	char buf[RX_DATA];

	send_pkt(fx, &h, "hello");
	read_exact(fd, buf, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(write(fd, "world!", 6), 6);
	recv_pkt(fx, &r, buf);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(r.len, 6);
	assert_int_equal(r.src_port, 1234);
	assert_int_equal(r.dst_port, 5000);
	assert_int_equal(r.fwd_cnt, 5); /* the 5 bytes the host socket took */
	assert_memory_equal(buf, "world!", 6);
	/* host closes both ways: SHUTDOWN RCV|SEND; the guest answers RST */
	close(fd);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	assert_int_equal(r.flags, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	h = hdr(VIRTIO_VSOCK_OP_RST, 5000, 1234, 0);
	send_pkt(fx, &h, NULL);
	sleep_ms(50);
	assert_int_equal(stats(fx).conns_active, 0);
	assert_int_equal(stats(fx).malformed, 0);
	close(lfd);
}

static void test_host_to_guest(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct vsock_hdr r, h;
	char line[32], buf[RX_DATA];
	unsigned port;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* the line and the first data in one write: the data must not be lost */
	assert_int_equal(write(fd, "CONNECT 52\nabc", 14), 14);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(r.dst_port, 52);
	assert_true(r.src_port >= (1u << 30));
	h = hdr(VIRTIO_VSOCK_OP_RESPONSE, 52, r.src_port, 0);
	send_pkt(fx, &h, NULL);
	memset(line, 0, sizeof(line));
	snprintf(buf, sizeof(buf), "OK %u\n", r.src_port);
	read_exact(fd, line, strlen(buf));
	assert_string_equal(line, buf);
	port = r.src_port;
	recv_pkt(fx, &r, buf);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(r.len, 3);
	assert_memory_equal(buf, "abc", 3);
	h = hdr(VIRTIO_VSOCK_OP_RW, 52, port, 2);
	send_pkt(fx, &h, "xy");
	read_exact(fd, buf, 2);
	assert_memory_equal(buf, "xy", 2);
	/* a host half-close is SHUTDOWN SEND only: the guest may still send */
	shutdown(fd, SHUT_WR);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	assert_int_equal(r.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	send_pkt(fx, &h, "zz");
	read_exact(fd, buf, 2);
	assert_memory_equal(buf, "zz", 2);
	/* the guest closes: SHUTDOWN RCV|SEND is answered with RST, the host sees EOF */
	h = hdr(VIRTIO_VSOCK_OP_SHUTDOWN, 52, port, 0);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
	send_pkt(fx, &h, NULL);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RST);
	assert_true(eof_within(fd, WAIT_MS));
	close(fd);
}

static void test_bad_connect_line(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct vsock_hdr r;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, "CONNECT 99999999999\n", 20), 20);
	assert_true(eof_within(fd, WAIT_MS));
	assert_false(recv_pkt_ms(fx, &r, NULL, 100));
	close(fd);
}

static void test_rst_unknown(void **state)
{
	struct fx *fx = *state;
	struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_RW, 7000, 80, 3), r;

	send_pkt(fx, &h, "abc");
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(r.src_port, 80);
	assert_int_equal(r.dst_port, 7000);
	/* an RST for an unknown connection is not answered */
	h = hdr(VIRTIO_VSOCK_OP_RST, 7000, 80, 0);
	send_pkt(fx, &h, NULL);
	assert_false(recv_pkt_ms(fx, &r, NULL, 100));
	/* nobody listens at <uds>_81: the REQUEST is refused with RST */
	h = hdr(VIRTIO_VSOCK_OP_REQUEST, 7001, 81, 0);
	send_pkt(fx, &h, NULL);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(stats(fx).host_refused, 1);
	assert_int_equal(stats(fx).rst_sent, 2);
	assert_int_equal(stats(fx).malformed, 0);
}

/* Host -> guest never exceeds the guest's credit; the device asks for more. */
static void test_credit_to_guest(void **state)
{
	struct fx *fx = *state;
	int lfd = uds_listen(fx, 9), fd;
	struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_REQUEST, 6000, 9, 0), r;
	static char data[20000], got[20000];
	uint32_t total = 0;

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	h.buf_alloc = 8192;
	send_pkt(fx, &h, NULL);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RESPONSE);
	fd = accept_ms(lfd, WAIT_MS);
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	while (total < 8192) {
		recv_pkt(fx, &r, got + total);
		assert_int_equal(r.op, VIRTIO_VSOCK_OP_RW);
		total += r.len;
	}
	assert_int_equal(total, 8192);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_CREDIT_REQUEST);
	assert_false(recv_pkt_ms(fx, &r, NULL, 100)); /* no byte beyond the credit */
	/* the guest consumed everything: credit for the rest */
	h = hdr(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 6000, 9, 0);
	h.buf_alloc = 8192;
	h.fwd_cnt = 8192;
	send_pkt(fx, &h, NULL);
	while (total < 16384) {
		recv_pkt(fx, &r, got + total);
		assert_int_equal(r.op, VIRTIO_VSOCK_OP_RW);
		total += r.len;
	}
	assert_int_equal(total, 16384);
	h.fwd_cnt = 16384;
	send_pkt(fx, &h, NULL);
	while (total < sizeof(data)) {
		recv_pkt(fx, &r, got + total);
		if (r.op == VIRTIO_VSOCK_OP_RW)
			total += r.len;
	}
	assert_memory_equal(got, data, sizeof(data));
	close(fd);
	close(lfd);
}

/* Guest -> host: a host peer that does not read; our credit bounds what the guest may send,
 * CREDIT_REQUEST is answered with fwd_cnt, and a guest beyond its credit is reset. */
static void test_credit_from_guest(void **state)
{
	struct fx *fx = *state;
	int lfd = uds_listen(fx, 10), fd = guest_connect(fx, lfd, 6001, 10);
	static char chunk[VSOCK_MAX_PAYLOAD];
	struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_RW, 6001, 10, VSOCK_MAX_PAYLOAD), r;
	uint32_t sent = 0, credit;
	size_t drained = 0;

	memset(chunk, 'q', sizeof(chunk));
	while (sent + VSOCK_MAX_PAYLOAD <= VIRTIO_VSOCK_BUF_ALLOC) {
		send_pkt(fx, &h, chunk);
		sent += VSOCK_MAX_PAYLOAD;
	}
	/* ask: fwd_cnt is what the host socket took (the rest is buffered, within credit) */
	h = hdr(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 6001, 10, 0);
	send_pkt(fx, &h, NULL);
	do
		recv_pkt(fx, &r, NULL);
	while (r.op != VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
	assert_true(r.fwd_cnt < sent);
	assert_int_equal(stats(fx).conns_active, 1);
	/* use up exactly the credit that answer gave: accepted */
	credit = VIRTIO_VSOCK_BUF_ALLOC - (sent - r.fwd_cnt);
	while (credit) {
		h = hdr(VIRTIO_VSOCK_OP_RW, 6001, 10, credit < VSOCK_MAX_PAYLOAD ? credit
									   : VSOCK_MAX_PAYLOAD);
		send_pkt(fx, &h, chunk);
		credit -= h.len;
	}
	assert_int_equal(stats(fx).conns_active, 1);
	assert_int_equal(stats(fx).malformed, 0);
	/* one byte more is beyond the credit: RST, counted */
	h = hdr(VIRTIO_VSOCK_OP_RW, 6001, 10, 1);
	send_pkt(fx, &h, chunk);
	do
		recv_pkt(fx, &r, NULL);
	while (r.op != VIRTIO_VSOCK_OP_RST);
	assert_int_equal(stats(fx).err[VSOCK_ERR_CREDIT], 1);
	assert_int_equal(stats(fx).conns_active, 0);
	while (!eof_within(fd, WAIT_MS) && drained++ < 1000)
		;
	close(fd);
	close(lfd);
}

static void test_credit_update_when_host_reads(void **state)
{
	struct fx *fx = *state;
	int lfd = uds_listen(fx, 11), fd = guest_connect(fx, lfd, 6002, 11);
	static char chunk[VSOCK_MAX_PAYLOAD], sink[VSOCK_MAX_PAYLOAD];
	struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_RW, 6002, 11, VSOCK_MAX_PAYLOAD), r;

	memset(chunk, 'c', sizeof(chunk));
	for (unsigned i = 0; i < VIRTIO_VSOCK_BUF_ALLOC / VSOCK_MAX_PAYLOAD; i++)
		send_pkt(fx, &h, chunk);
	/* the host reads it all: the guest learns about the freed space without asking */
	for (unsigned i = 0; i < VIRTIO_VSOCK_BUF_ALLOC / VSOCK_MAX_PAYLOAD; i++)
		read_exact(fd, sink, sizeof(sink));
	do
		recv_pkt(fx, &r, NULL);
	while (r.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE && r.fwd_cnt < VIRTIO_VSOCK_BUF_ALLOC / 2 &&
	       r.op != VIRTIO_VSOCK_OP_RST);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	assert_true(r.fwd_cnt >= VIRTIO_VSOCK_BUF_ALLOC / 2);
	close(fd);
	close(lfd);
}

static void test_guest_shutdown_send(void **state)
{
	struct fx *fx = *state;
	int lfd = uds_listen(fx, 12), fd = guest_connect(fx, lfd, 6003, 12);
	struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_RW, 6003, 12, 4), r;
	char buf[RX_DATA];

	send_pkt(fx, &h, "last");
	h = hdr(VIRTIO_VSOCK_OP_SHUTDOWN, 6003, 12, 0);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	send_pkt(fx, &h, NULL);
	read_exact(fd, buf, 4);
	assert_memory_equal(buf, "last", 4);
	assert_true(eof_within(fd, WAIT_MS)); /* the host reads EOF after the data */
	/* ... and may still send to the guest */
	assert_int_equal(write(fd, "back", 4), 4);
	recv_pkt(fx, &r, buf);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RW);
	assert_memory_equal(buf, "back", 4);
	/* RW after SHUTDOWN SEND is a protocol error: RST */
	h = hdr(VIRTIO_VSOCK_OP_RW, 6003, 12, 4);
	send_pkt(fx, &h, "more");
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(stats(fx).err[VSOCK_ERR_STATE], 1);
	close(fd);
	close(lfd);
}

static void test_malformed(void **state)
{
	struct fx *fx = *state;
	uint8_t raw[VSOCK_HDR_LEN + 8];
	struct vsock_hdr h, r;
	struct {
		enum vsock_err e;
		uint16_t op, type;
		uint64_t src, dst;
		uint32_t len, flags, blen;
	} cases[] = {
		{ VSOCK_ERR_SHORT, VIRTIO_VSOCK_OP_RW, 1, CID, 2, 0, 0, 20 },
		{ VSOCK_ERR_LEN, VIRTIO_VSOCK_OP_RW, 1, CID, 2, 100, 0, VSOCK_HDR_LEN },
		{ VSOCK_ERR_LEN, VIRTIO_VSOCK_OP_RW, 1, CID, 2, 0xffffffffu, 0, VSOCK_HDR_LEN },
		{ VSOCK_ERR_OP, 99, 1, CID, 2, 0, 0, VSOCK_HDR_LEN },
		{ VSOCK_ERR_OP, VIRTIO_VSOCK_OP_INVALID, 1, CID, 2, 0, 0, VSOCK_HDR_LEN },
		{ VSOCK_ERR_CTRL_LEN, VIRTIO_VSOCK_OP_REQUEST, 1, CID, 2, 4, 0, VSOCK_HDR_LEN + 4 },
		{ VSOCK_ERR_SRC_CID, VIRTIO_VSOCK_OP_REQUEST, 1, CID + 1, 2, 0, 0, VSOCK_HDR_LEN },
		{ VSOCK_ERR_DST_CID, VIRTIO_VSOCK_OP_REQUEST, 1, CID, 7, 0, 0, VSOCK_HDR_LEN },
		{ VSOCK_ERR_FLAGS, VIRTIO_VSOCK_OP_SHUTDOWN, 1, CID, 2, 0, 0x10, VSOCK_HDR_LEN },
		{ VSOCK_ERR_TYPE, VIRTIO_VSOCK_OP_REQUEST, 2, CID, 2, 0, 0, VSOCK_HDR_LEN },
	};
	unsigned n = sizeof(cases) / sizeof(cases[0]);

	for (unsigned i = 0; i < n; i++) {
		h = hdr(cases[i].op, 8000 + i, 1, cases[i].len);
		h.type = cases[i].type;
		h.src_cid = cases[i].src;
		h.dst_cid = cases[i].dst;
		h.flags = cases[i].flags;
		memset(raw, 0, sizeof(raw));
		vsock_hdr_encode(&h, raw);
		send_raw(fx, raw, cases[i].blen, NULL, 0);
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned want = 0;

		for (unsigned j = 0; j < n; j++)
			want += cases[j].e == cases[i].e;
		assert_int_equal(stats(fx).err[cases[i].e], want);
	}
	assert_int_equal(stats(fx).malformed, n);
	/* only the SEQPACKET request is answered (RST, as Linux refuses unknown types) */
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(r.dst_port, 8000 + n - 1);
	assert_false(recv_pkt_ms(fx, &r, NULL, 100));
	assert_int_equal(stats(fx).conns_opened, 0);
	/* the device still works */
	int lfd = uds_listen(fx, 13);
	close(guest_connect(fx, lfd, 6004, 13));
	close(lfd);
}

/* A receive buffer too small for a header is returned empty and counted; the next one is
 * used. */
static void test_small_rx_buffer(void **state)
{
	struct fx *fx = *state;
	struct vqd_buf b = { RX_GPA + 0x1f0000, 16, true };
	struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_RW, 7100, 80, 0), r;
	uint32_t len = 1;
	int id;

	fx->h.ops->reset(fx->h.dev);
	vqd_destroy(&fx->rx);
	vqd_destroy(&fx->tx);
	vqd_destroy(&fx->ev);
	bring_up(fx, 0);
	id = vqd_add(&fx->rx, &b, 1);
	assert_true(id >= 0);
	post_rx(fx);
	send_pkt(fx, &h, NULL);
	assert_int_equal(wait_used(&fx->rx, &len, WAIT_MS), id);
	assert_int_equal(len, 0);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(stats(fx).err[VSOCK_ERR_RX_BUF], 1);
}

/* Many connections at once, one host peer stuck (not reading): the others go on. */
static void test_many_conns_stuck_peer(void **state)
{
	struct fx *fx = *state;
	enum { N = 8 };
	int lfd = uds_listen(fx, 20), fds[N];
	static char chunk[VSOCK_MAX_PAYLOAD];
	char buf[64];

	for (unsigned i = 0; i < N; i++)
		fds[i] = guest_connect(fx, lfd, 9000 + i, 20);
	assert_int_equal(stats(fx).conns_active, N);
	/* fill the stuck peer (connection 0) with 640 KiB it never reads */
	memset(chunk, 's', sizeof(chunk));
	for (unsigned k = 0; k < 10; k++) {
		struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_RW, 9000, 20, VSOCK_MAX_PAYLOAD);

		send_pkt(fx, &h, chunk);
	}
	/* each other connection carries its own bytes to its own host socket */
	for (unsigned i = 1; i < N; i++) {
		struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_RW, 9000 + i, 20, 8);

		snprintf(buf, sizeof(buf), "conn%04u", i);
		send_pkt(fx, &h, buf);
	}
	for (unsigned i = 1; i < N; i++) {
		char want[16];

		snprintf(want, sizeof(want), "conn%04u", i);
		read_exact(fds[i], buf, 8);
		assert_memory_equal(buf, want, 8);
	}
	/* host -> guest on every connection but the stuck one */
	for (unsigned i = 1; i < N; i++)
		assert_int_equal(write(fds[i], "x", 1), 1);
	for (unsigned i = 1; i < N; i++) {
		struct vsock_hdr r;

		recv_pkt(fx, &r, buf);
		assert_int_equal(r.op, VIRTIO_VSOCK_OP_RW);
		assert_true(r.dst_port > 9000 && r.dst_port < 9000 + N);
	}
	for (unsigned i = 0; i < N; i++)
		close(fds[i]);
	close(lfd);
}

/* Device reset closes every connection (the host sees EOF); after the restart the guest gets
 * TRANSPORT_RESET on the event queue and new connections work. */
static void test_reset_transport_event(void **state)
{
	struct fx *fx = *state;
	int lfd = uds_listen(fx, 30), fd = guest_connect(fx, lfd, 9100, 30);
	struct vqd_buf b = { EV_GPA, 4, true };
	uint32_t len, ev = 0xffffffffu;

	fx->h.ops->reset(fx->h.dev);
	assert_true(eof_within(fd, WAIT_MS));
	assert_int_equal(stats(fx).conns_active, 0);
	vqd_destroy(&fx->rx);
	vqd_destroy(&fx->tx);
	vqd_destroy(&fx->ev);
	bring_up(fx, RX_BUFS);
	assert_true(vqd_add(&fx->ev, &b, 1) >= 0);
	fx->h.ops->kick_vq(fx->h.dev, 2);
	assert_true(wait_used(&fx->ev, &len, WAIT_MS) >= 0);
	assert_int_equal(len, 4);
	assert_int_equal(gm_read(&fx->gm, EV_GPA, &ev, 4), 0);
	assert_int_equal(le32toh(ev), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	close(fd);
	close(guest_connect(fx, lfd, 9101, 30));
	close(lfd);
}

/* The host never sends its CONNECT line: closed after the connect timeout. */
static void test_connect_line_timeout(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, "CONNE", 5), 5);
	assert_true(eof_within(fd, WAIT_MS));
	close(fd);
}

/* The guest never answers our REQUEST: the host client is closed, the guest gets an RST. */
static void test_guest_no_answer(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct vsock_hdr r, q;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->uds);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, "CONNECT 77\n", 11), 11);
	recv_pkt(fx, &q, NULL);
	assert_int_equal(q.op, VIRTIO_VSOCK_OP_REQUEST);
	assert_true(eof_within(fd, WAIT_MS));
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(r.src_port, q.src_port);
	assert_int_equal(r.dst_port, 77);
	assert_int_equal(stats(fx).conns_active, 0);
	close(fd);
}

/* The host closes; the guest never sends the RST that completes the close: the device does. */
static void test_close_timeout(void **state)
{
	struct fx *fx = *state;
	int lfd = uds_listen(fx, 40), fd = guest_connect(fx, lfd, 9200, 40);
	struct vsock_hdr r;

	close(fd);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	assert_int_equal(stats(fx).conns_active, 1);
	recv_pkt(fx, &r, NULL);
	assert_int_equal(r.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(r.dst_port, 9200);
	assert_int_equal(stats(fx).conns_active, 0);
	close(lfd);
}

/* 2 MiB each way through one connection, contents checked: the host writes as fast as the
 * socket takes it, the "guest" returns credit as it consumes (like Linux, every 64 KiB). */
static void test_bulk(void **state)
{
	struct fx *fx = *state;
	enum { TOTAL = 2 << 20 };
	int lfd = uds_listen(fx, 50), fd;
	struct vsock_hdr h = hdr(VIRTIO_VSOCK_OP_REQUEST, 9300, 50, 0), r;
	uint8_t *src = malloc(TOTAL), *dst = malloc(TOTAL);
	size_t wr = 0, got = 0, announced = 0;

	assert_non_null(src);
	assert_non_null(dst);
	for (size_t i = 0; i < TOTAL; i++)
		src[i] = (uint8_t)(i * 131 + (i >> 12));
	fd = guest_connect(fx, lfd, 9300, 50);
	while (got < TOTAL) {
		ssize_t n = wr < TOTAL ? send(fd, src + wr, TOTAL - wr, MSG_DONTWAIT) : 0;

		if (n > 0)
			wr += (size_t)n;
		recv_pkt(fx, &r, dst + got);
		assert_true(r.op == VIRTIO_VSOCK_OP_RW || r.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST);
		got += r.op == VIRTIO_VSOCK_OP_RW ? r.len : 0;
		assert_true(got <= 256 * 1024 + announced); /* never beyond our credit */
		if (got - announced >= 64 * 1024 || r.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
			h = hdr(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 9300, 50, 0);
			h.fwd_cnt = (uint32_t)got;
			send_pkt(fx, &h, NULL);
			announced = got;
		}
	}
	assert_memory_equal(dst, src, TOTAL);
	/* guest -> host: 64 KiB packets of the same pattern, the host reading as they come */
	memset(dst, 0, TOTAL);
	got = 0;
	for (size_t off = 0; off < TOTAL; off += VSOCK_MAX_PAYLOAD) {
		h = hdr(VIRTIO_VSOCK_OP_RW, 9300, 50, VSOCK_MAX_PAYLOAD);
		send_pkt(fx, &h, src + off);
		while (recv_pkt_ms(fx, &r, NULL, 0)) /* credit updates */
			assert_int_equal(r.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
		for (;;) {
			ssize_t n = recv(fd, dst + got, TOTAL - got, MSG_DONTWAIT);

			if (n <= 0)
				break;
			got += (size_t)n;
		}
	}
	if (got < TOTAL)
		read_exact(fd, dst + got, TOTAL - got);
	assert_memory_equal(dst, src, TOTAL);
	assert_int_equal(stats(fx).malformed, 0);
	free(src);
	free(dst);
	close(fd);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_and_ids, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_guest_to_host, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_host_to_guest, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_bad_connect_line, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_rst_unknown, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_credit_to_guest, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_credit_from_guest, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_credit_update_when_host_reads, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_guest_shutdown_send, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_small_rx_buffer, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_many_conns_stuck_peer, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_reset_transport_event, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_bulk, setup_split, teardown),
		{ "test_bulk (packed rings)", test_bulk, setup_packed, teardown, NULL },
		{ "test_guest_to_host (packed rings)", test_guest_to_host, setup_packed, teardown, NULL },
		{ "test_host_to_guest (packed rings)", test_host_to_guest, setup_packed, teardown, NULL },
		cmocka_unit_test_setup_teardown(test_connect_line_timeout, setup_fast_timeouts, teardown),
		cmocka_unit_test_setup_teardown(test_guest_no_answer, setup_fast_timeouts, teardown),
		cmocka_unit_test_setup_teardown(test_close_timeout, setup_fast_timeouts, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
