/* Unit tests of virtio-vsock (src/devices/virtio/vsock*.c), the protocol: ids and config,
 * connection set-up both ways (CONNECT/OK handshake, <uds>_<port> listeners) on split and
 * packed rings, RST for unknown connections, malformed packets counted by reason, a too-small
 * receive buffer, device reset with the TRANSPORT_RESET event, and the connect / close
 * timeouts. Flow control and bulk transfers: test_vsock_flow.c. Fixture: vsock_fixture.h. */
#include "vsock_fixture.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_and_ids, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_guest_to_host, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_host_to_guest, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_bad_connect_line, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_rst_unknown, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_small_rx_buffer, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_reset_transport_event, setup_split, teardown),
		{ "test_guest_to_host (packed rings)", test_guest_to_host, setup_packed, teardown, NULL },
		{ "test_host_to_guest (packed rings)", test_host_to_guest, setup_packed, teardown, NULL },
		cmocka_unit_test_setup_teardown(test_connect_line_timeout, setup_fast_timeouts, teardown),
		cmocka_unit_test_setup_teardown(test_guest_no_answer, setup_fast_timeouts, teardown),
		cmocka_unit_test_setup_teardown(test_close_timeout, setup_fast_timeouts, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
