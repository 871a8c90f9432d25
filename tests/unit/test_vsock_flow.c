/* Unit tests of virtio-vsock (src/devices/virtio/vsock*.c), flow control and data: credit
 * accounting both ways (buf_alloc, fwd_cnt, CREDIT_REQUEST/UPDATE, a guest exceeding its
 * credit), SHUTDOWN SEND half-close, many connections with a stuck host peer, and 2 MiB each
 * way with contents checked (split and packed rings). Fixture: vsock_fixture.h. */
#include "vsock_fixture.h"

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
		cmocka_unit_test_setup_teardown(test_credit_to_guest, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_credit_from_guest, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_credit_update_when_host_reads, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_guest_shutdown_send, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_many_conns_stuck_peer, setup_split, teardown),
		cmocka_unit_test_setup_teardown(test_bulk, setup_split, teardown),
		{ "test_bulk (packed rings)", test_bulk, setup_packed, teardown, NULL },
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
