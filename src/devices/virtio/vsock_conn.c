/* virtio-vsock connections: the table keyed by (host port, guest port), the stream state
 * machine for packets from the guest, and the host side on Unix sockets (listener, the
 * "CONNECT <port>\n" handshake, connections to "<uds>_<port>", buffered non-blocking writes).
 *
 * Flow control (virtio 1.2, 5.10.6.3): we give the guest VIRTIO_VSOCK_BUF_ALLOC bytes of
 * credit per connection. Bytes from the guest are written straight from guest memory to the
 * host socket (sendmsg on the packet's iovecs); what the socket does not take is kept in the
 * connection's ring (allocated on first use), which the credit bounds. A guest that sends
 * beyond its credit is reset. fwd_cnt counts bytes the host socket took; a CREDIT_UPDATE goes
 * out when a quarter of the buffer was freed unannounced, or when the guest's view of its
 * credit is below one full packet.
 *
 * Closing: guest RST -> close at once; guest SHUTDOWN RCV|SEND -> flush, RST, close (the Linux
 * driver waits for that RST); guest SHUTDOWN SEND -> shutdown(SHUT_WR) on the host socket
 * once flushed. Host EOF -> SHUTDOWN SEND to the guest (SEND|RCV when the host closed both
 * ways); write errors -> RST. Deadlines bound every wait on the other side.
 */
#include "devices/virtio/vsock_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

#define CONN_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
#define LINE_MAX_LEN 32 /* "CONNECT 4294967295\n" is 19 */

static unsigned bucket(uint32_t local, uint32_t peer)
{
	return ((local * 2654435761u) ^ (peer * 40503u + (peer >> 16))) % VSOCK_HASH_BUCKETS;
}

struct vsock_conn *vsock_conn_find(struct vsock_dev *d, uint32_t local, uint32_t peer)
{
	for (struct vsock_conn *c = d->hash[bucket(local, peer)]; c; c = c->hnext)
		if (c->local_port == local && c->peer_port == peer)
			return c;
	return NULL;
}

uint32_t vsock_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

bool vsock_conn_wants_rx(const struct vsock_conn *c)
{
	if (c->ctrl)
		return true;
	return c->state == VC_ESTABLISHED && c->readable && !c->host_eof && !c->guest_shut_rcv &&
	       vsock_peer_credit(c) > 0;
}

void vsock_rx_list_add(struct vsock_dev *d, struct vsock_conn *c)
{
	if (c->on_rx)
		return;
	c->on_rx = true;
	c->rnext = NULL;
	c->rprev = d->rx_tail;
	if (d->rx_tail)
		d->rx_tail->rnext = c;
	else
		d->rx_head = c;
	d->rx_tail = c;
}

void vsock_rx_list_del(struct vsock_dev *d, struct vsock_conn *c)
{
	if (!c->on_rx)
		return;
	if (c->rprev)
		c->rprev->rnext = c->rnext;
	else
		d->rx_head = c->rnext;
	if (c->rnext)
		c->rnext->rprev = c->rprev;
	else
		d->rx_tail = c->rprev;
	c->on_rx = false;
	c->rnext = c->rprev = NULL;
}

/* Re-evaluate whether c has something for the guest; ask for credit when starved. */
void vsock_conn_update_rx(struct vsock_dev *d, struct vsock_conn *c)
{
	if (c->state == VC_ESTABLISHED && c->readable && !c->host_eof && !c->guest_shut_rcv &&
	    vsock_peer_credit(c) == 0 && !c->credit_requested) {
		c->ctrl |= VC_CREDIT_REQUEST;
		c->credit_requested = true;
	}
	if (vsock_conn_wants_rx(c))
		vsock_rx_list_add(d, c);
}

void vsock_conn_sent_credit(struct vsock_conn *c)
{
	c->announced_fwd = c->fwd_cnt;
	c->ctrl &= ~VC_CREDIT_UPDATE;
}

/* Announce freed buffer space when it matters (see the top of the file). */
static void maybe_announce(struct vsock_conn *c)
{
	uint32_t unannounced = c->fwd_cnt - c->announced_fwd;
	uint32_t in_buf = c->fwd_cnt + c->out.len - c->announced_fwd; /* as the guest counts */
	uint32_t guest_view = VIRTIO_VSOCK_BUF_ALLOC - in_buf;

	if (unannounced >= VIRTIO_VSOCK_BUF_ALLOC / 4 ||
	    (unannounced && guest_view < VSOCK_MAX_PAYLOAD))
		c->ctrl |= VC_CREDIT_UPDATE;
}

static struct vsock_conn *conn_new(struct vsock_dev *d, uint32_t local, uint32_t peer, int fd,
				   enum vsock_conn_state state, bool registered)
{
	struct vsock_conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = CONN_EVENTS };
	unsigned b = bucket(local, peer);

	if (!c)
		return NULL;
	c->ep.kind = EP_CONN;
	c->local_port = local;
	c->peer_port = peer;
	c->fd = fd;
	c->state = state;
	c->writable = true;
	ev.data.ptr = &c->ep;
	if (epoll_ctl(d->epfd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev)) {
		pr_warn("virtio-vsock: epoll_ctl: %s", strerror(errno));
		free(c);
		return NULL;
	}
	c->hnext = d->hash[b];
	d->hash[b] = c;
	c->anext = d->all;
	if (d->all)
		d->all->aprev = c;
	d->all = c;
	d->nconns++;
	VSOCK_STAT_ADD(d, conns_opened, 1);
	VSOCK_STAT_ADD(d, conns_active, 1);
	return c;
}

static void conn_free(struct vsock_dev *d, struct vsock_conn *c)
{
	struct vsock_conn **pp = &d->hash[bucket(c->local_port, c->peer_port)];

	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	if (c->aprev)
		c->aprev->anext = c->anext;
	else
		d->all = c->anext;
	if (c->anext)
		c->anext->aprev = c->aprev;
	vsock_rx_list_del(d, c);
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out.buf);
	free(c);
	d->nconns--;
	VSOCK_STAT_ADD(d, conns_closed, 1);
	__atomic_sub_fetch(&d->stats.conns_active, 1, __ATOMIC_RELAXED);
}

void vsock_reset_conn(struct vsock_dev *d, struct vsock_conn *c, uint32_t local, uint32_t peer)
{
	if (c)
		conn_free(d, c);
	if (d->rst_len == VSOCK_RST_QUEUE) {
		VSOCK_STAT_ADD(d, rst_dropped, 1);
		return;
	}
	d->rst[(d->rst_head + d->rst_len) % VSOCK_RST_QUEUE] = (struct vsock_rst){ local, peer };
	d->rst_len++;
}

static void reset(struct vsock_dev *d, struct vsock_conn *c)
{
	vsock_reset_conn(d, c, c->local_port, c->peer_port);
}

/* ---- guest -> host bytes ------------------------------------------------------------------ */

static int send_iov(int fd, const struct iovec *iov, unsigned n)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = n };
	ssize_t r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (r >= 0)
		return (int)r;
	return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
}

/* The guest sends no more and everything it sent is written: the host peer sees EOF. Once:
 * flush() runs on every socket event, and a host still sending to the guest makes many. */
static void host_shut_wr(struct vsock_conn *c)
{
	if (c->host_shut_wr)
		return;
	c->host_shut_wr = true;
	shutdown(c->fd, SHUT_WR);
}

/* Write the ring to the host socket. Returns false when c was closed. */
static bool flush(struct vsock_dev *d, struct vsock_conn *c)
{
	struct vsock_ring *r = &c->out;

	while (r->len && c->writable) {
		uint32_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
		struct iovec v[2] = { { r->buf + r->head, first }, { r->buf, r->len - first } };
		int n = send_iov(c->fd, v, r->len > first ? 2 : 1);

		if (n < 0) {
			reset(d, c);
			return false;
		}
		if (n == 0) {
			c->writable = false;
			break;
		}
		r->head = (r->head + (uint32_t)n) % r->cap;
		r->len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	if (!r->len) {
		if (c->close_after_flush) {
			reset(d, c);
			return false;
		}
		if (c->guest_shut_send)
			host_shut_wr(c);
	}
	maybe_announce(c);
	vsock_conn_update_rx(d, c);
	return true;
}

/* Append bytes [skip, len) of the payload to the ring. */
static int ring_append(struct vsock_ring *r, const struct iovec *pay, unsigned npay, size_t skip,
		       size_t len)
{
	if (!r->buf) {
		r->buf = malloc(VIRTIO_VSOCK_BUF_ALLOC);
		if (!r->buf)
			return -ENOMEM;
		r->cap = VIRTIO_VSOCK_BUF_ALLOC;
		r->head = r->len = 0;
	}
	while (skip < len) {
		uint32_t tail = (r->head + r->len) % r->cap;
		size_t room = r->cap - tail < r->cap - r->len ? r->cap - tail : r->cap - r->len;
		size_t k = len - skip < room ? len - skip : room;

		vsock_iov_to_buf(pay, npay, skip, r->buf + tail, k);
		r->len += (uint32_t)k;
		skip += k;
	}
	return 0;
}

static void guest_rw(struct vsock_dev *d, struct vsock_conn *c, const struct vsock_hdr *h,
		     const struct iovec *pay, unsigned npay)
{
	int n = 0;

	if (c->state != VC_ESTABLISHED || c->guest_shut_send) {
		vsock_count_err(d, VSOCK_ERR_STATE, h);
		reset(d, c);
		return;
	}
	/* what the guest may have in flight: our buf_alloc minus what we last told it */
	if (h->len > VIRTIO_VSOCK_BUF_ALLOC - (c->fwd_cnt + c->out.len - c->announced_fwd)) {
		vsock_count_err(d, VSOCK_ERR_CREDIT, h);
		reset(d, c);
		return;
	}
	VSOCK_STAT_ADD(d, tx_bytes, h->len);
	if (!c->out.len && c->writable && h->len) {
		n = send_iov(c->fd, pay, npay);
		if (n < 0) {
			reset(d, c);
			return;
		}
		if ((uint32_t)n < h->len)
			c->writable = false;
		c->fwd_cnt += (uint32_t)n;
	}
	if ((uint32_t)n < h->len && ring_append(&c->out, pay, npay, (size_t)n, h->len)) {
		reset(d, c);
		return;
	}
	maybe_announce(c);
}

static void guest_shutdown(struct vsock_dev *d, struct vsock_conn *c, uint32_t flags)
{
	if (flags & VIRTIO_VSOCK_SHUTDOWN_RCV)
		c->guest_shut_rcv = true;
	if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
		c->guest_shut_send = true;
	if (c->guest_shut_rcv && c->guest_shut_send) {
		/* the guest closed its socket: it waits for our RST */
		if (!c->out.len) {
			reset(d, c);
			return;
		}
		c->close_after_flush = true;
		c->deadline_ms = vsock_now_ms() + d->close_timeout_ms;
		return;
	}
	if (c->guest_shut_send && !c->out.len)
		host_shut_wr(c);
	vsock_conn_update_rx(d, c);
}

/* The guest connects to host port dst_port: reach the listener at "<uds>_<port>". */
static void guest_connect(struct vsock_dev *d, const struct vsock_hdr *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vsock_conn *c;
	int fd;

	if (d->nconns >= VSOCK_MAX_CONNS)
		goto refuse;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", d->uds, h->dst_port);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto refuse;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		pr_debug("virtio-vsock: guest port %u -> %s: %s", h->src_port, sa.sun_path,
			 strerror(errno));
		close(fd);
		VSOCK_STAT_ADD(d, host_refused, 1);
		goto refuse;
	}
	c = conn_new(d, h->dst_port, h->src_port, fd, VC_ESTABLISHED, false);
	if (!c) {
		close(fd);
		goto refuse;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->ctrl |= VC_RESPONSE;
	vsock_rx_list_add(d, c);
	return;
refuse:
	vsock_reset_conn(d, NULL, h->dst_port, h->src_port);
}

/* RESPONSE to our REQUEST: tell the host client which port it got. */
static void guest_response(struct vsock_dev *d, struct vsock_conn *c, const struct vsock_hdr *h)
{
	char line[LINE_MAX_LEN];
	int len;

	if (c->state != VC_CONNECTING) {
		vsock_count_err(d, VSOCK_ERR_STATE, h);
		reset(d, c);
		return;
	}
	c->state = VC_ESTABLISHED;
	c->deadline_ms = 0;
	len = snprintf(line, sizeof(line), "OK %u\n", c->local_port);
	if (send(c->fd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) != len) {
		reset(d, c);
		return;
	}
	vsock_conn_update_rx(d, c);
}

void vsock_conn_guest_pkt(struct vsock_dev *d, const struct vsock_hdr *h,
			  const struct iovec *pay, unsigned npay)
{
	struct vsock_conn *c = vsock_conn_find(d, h->dst_port, h->src_port);

	if (!c) {
		if (h->op == VIRTIO_VSOCK_OP_REQUEST)
			guest_connect(d, h);
		else if (h->op != VIRTIO_VSOCK_OP_RST) /* never answer an RST with one */
			vsock_reset_conn(d, NULL, h->dst_port, h->src_port);
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->credit_requested = false;
	switch (h->op) {
	case VIRTIO_VSOCK_OP_REQUEST:
		vsock_count_err(d, VSOCK_ERR_STATE, h);
		reset(d, c);
		return;
	case VIRTIO_VSOCK_OP_RESPONSE:
		guest_response(d, c, h);
		return;
	case VIRTIO_VSOCK_OP_RST:
		conn_free(d, c);
		return;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		guest_shutdown(d, c, h->flags);
		return;
	case VIRTIO_VSOCK_OP_RW:
		guest_rw(d, c, h, pay, npay);
		if (vsock_conn_find(d, h->dst_port, h->src_port) != c)
			return; /* reset */
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->ctrl |= VC_CREDIT_UPDATE;
		break;
	}
	vsock_conn_update_rx(d, c);
}

void vsock_conn_host_eof(struct vsock_dev *d, struct vsock_conn *c)
{
	c->host_eof = true;
	c->readable = false;
	c->shut_flags = VIRTIO_VSOCK_SHUTDOWN_SEND | (c->host_hup ? VIRTIO_VSOCK_SHUTDOWN_RCV : 0);
	c->ctrl |= VC_SHUTDOWN;
	if (c->host_hup)
		c->deadline_ms = vsock_now_ms() + d->close_timeout_ms;
	vsock_rx_list_add(d, c);
}

/* ---- host side: listener and the CONNECT line --------------------------------------------- */

int vsock_listen(struct vsock_dev *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->uds);
	unlink(d->uds);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	d->listen_fd = fd;
	return 0;
}

static void pending_free(struct vsock_dev *d, struct vsock_pending *p, bool close_fd)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		d->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	if (close_fd) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, p->fd, NULL);
		close(p->fd);
	}
	free(p);
	d->npending--;
}

static void accept_all(struct vsock_dev *d)
{
	for (;;) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vsock_pending *p;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };

		if (fd < 0)
			return;
		p = d->npending < VSOCK_MAX_PENDING ? calloc(1, sizeof(*p)) : NULL;
		ev.data.ptr = p;
		if (!p || epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			pr_warn("virtio-vsock: host connection refused (too many pending)");
			free(p);
			close(fd);
			continue;
		}
		p->ep.kind = EP_PENDING;
		p->fd = fd;
		p->deadline_ms = vsock_now_ms() + d->connect_timeout_ms;
		p->next = d->pending;
		if (d->pending)
			d->pending->prev = p;
		d->pending = p;
		d->npending++;
	}
}

/* "CONNECT <port>\n" -> port; -1 when malformed. */
static int64_t parse_connect(const char *line, size_t len)
{
	uint64_t port = 0;
	size_t i = 8;

	if (len < 10 || memcmp(line, "CONNECT ", 8) || line[len - 1] != '\n')
		return -1;
	for (; i < len - 1; i++) {
		if (line[i] < '0' || line[i] > '9' || i - 8 >= 10)
			return -1;
		port = port * 10 + (uint64_t)(line[i] - '0');
	}
	return port > UINT32_MAX ? -1 : (int64_t)port;
}

static uint32_t alloc_local_port(struct vsock_dev *d, uint32_t peer)
{
	for (;;) {
		uint32_t p = d->next_local_port++;

		if (d->next_local_port < VSOCK_LOCAL_PORT_BASE)
			d->next_local_port = VSOCK_LOCAL_PORT_BASE;
		if (!vsock_conn_find(d, p, peer))
			return p;
	}
}

/* Read exactly the CONNECT line (the stream after it belongs to the guest connection). */
static void pending_read(struct vsock_dev *d, struct vsock_pending *p)
{
	char buf[LINE_MAX_LEN];
	ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	char *nl = n > 0 ? memchr(buf, '\n', (size_t)n) : NULL;
	struct vsock_conn *c;
	int64_t port;
	int fd = p->fd;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (!nl) {
		if (n <= 0 || (size_t)n == sizeof(buf))
			goto bad;
		return; /* the rest of the line is still coming */
	}
	n = recv(fd, buf, (size_t)(nl - buf + 1), MSG_DONTWAIT);
	port = n > 0 ? parse_connect(buf, (size_t)n) : -1;
	if (port < 0 || d->nconns >= VSOCK_MAX_CONNS)
		goto bad;
	c = conn_new(d, alloc_local_port(d, (uint32_t)port), (uint32_t)port, fd, VC_CONNECTING,
		     true);
	if (!c)
		goto bad;
	pending_free(d, p, false);
	c->deadline_ms = vsock_now_ms() + d->connect_timeout_ms;
	c->ctrl |= VC_REQUEST;
	vsock_rx_list_add(d, c);
	return;
bad:
	pr_debug("virtio-vsock: host client without a valid CONNECT line: closed");
	pending_free(d, p, true);
}

void vsock_conn_event(struct vsock_dev *d, struct vsock_ep *ep, uint32_t events)
{
	struct vsock_conn *c;

	if (ep->kind == EP_LISTEN) {
		accept_all(d);
		return;
	}
	if (ep->kind == EP_PENDING) {
		pending_read(d, (struct vsock_pending *)ep);
		return;
	}
	c = (struct vsock_conn *)ep;
	if (events & EPOLLHUP)
		c->host_hup = true;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
		c->writable = true;
		if (!flush(d, c))
			return;
	}
	if (c->readable && c->state == VC_ESTABLISHED && c->guest_shut_rcv && !c->host_eof) {
		/* the guest takes no more data: only watch for the host going away */
		char b[256];
		ssize_t n;

		while ((n = recv(c->fd, b, sizeof(b), MSG_DONTWAIT)) > 0)
			;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			reset(d, c);
			return;
		}
		c->readable = false;
	}
	vsock_conn_update_rx(d, c);
}

/* ---- timeouts and teardown ------------------------------------------------------------------ */

bool vsock_conns_have_deadlines(const struct vsock_dev *d)
{
	if (d->pending)
		return true;
	for (const struct vsock_conn *c = d->all; c; c = c->anext)
		if (c->deadline_ms)
			return true;
	return false;
}

void vsock_conns_timeouts(struct vsock_dev *d)
{
	int64_t now = vsock_now_ms();
	struct vsock_conn *c, *cn;
	struct vsock_pending *p, *pn;

	for (c = d->all; c; c = cn) {
		cn = c->anext;
		if (c->deadline_ms && now >= c->deadline_ms) {
			pr_debug("virtio-vsock: connection %u:%u timed out", c->local_port,
				 c->peer_port);
			reset(d, c);
		}
	}
	for (p = d->pending; p; p = pn) {
		pn = p->next;
		if (now >= p->deadline_ms)
			pending_free(d, p, true);
	}
}

unsigned vsock_conns_close_all(struct vsock_dev *d)
{
	unsigned n = 0;

	while (d->all) {
		conn_free(d, d->all);
		n++;
	}
	while (d->pending)
		pending_free(d, d->pending, true);
	d->rst_head = d->rst_len = 0;
	return n;
}
