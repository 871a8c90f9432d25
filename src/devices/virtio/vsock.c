/* virtio-vsock device: the class (queues, config guest_cid, reset), the worker thread, and
 * the virtqueue side of the data path. Connections and host sockets are in vsock_conn.c.
 *
 * Transmit (guest -> host): each packet is checked (vsock_parse) and handed to its
 * connection, whose bytes go from guest memory straight to the host socket (one sendmsg on
 * the packet's iovecs, 64 KiB at a time, no copy unless the socket is full).
 * Receive (host -> guest): per connection, up to RX_BATCH receive buffers are popped and one
 * readv() on the host socket fills their payload areas directly; buffers are filled
 * completely in order, each gets its header, the unused ones are put back. Connections take
 * turns (RX_QUOTA bytes each per pass) so one busy or stuck peer cannot starve the others.
 * Used entries are pushed for a whole pass and the driver is notified once (EVENT_IDX via
 * vq_should_notify). Malformed packets are dropped and counted by reason.
 */
#include "devices/virtio/vsock_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_ids.h>

#include "util/log.h"

#define RX_BATCH  VSOCK_RX_BATCH   /* receive buffers filled by one readv */
#define RX_IOV    1024             /* iovecs of one readv (IOV_MAX) */
#define RX_QUOTA  (256u * 1024)    /* bytes per connection per pass */
#define TX_BATCH  256              /* transmit packets per pass */

int64_t vsock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vsock_count_err(struct vsock_dev *d, enum vsock_err e, const struct vsock_hdr *h)
{
	uint64_t n = VSOCK_STAT_ADD(d, malformed, 1);

	VSOCK_STAT_ADD(d, err[e], 1);
	if (n <= 10 || log_get_level() >= LOG_DEBUG)
		pr_warn("virtio-vsock: packet dropped (%s): op %u type %u len %u %llu:%u -> %llu:%u",
			vsock_err_name(e), h->op, h->type, h->len, (unsigned long long)h->src_cid,
			h->src_port, (unsigned long long)h->dst_cid, h->dst_port);
}

static void dev_fail(struct vsock_dev *d, unsigned idx, struct virtqueue *vq)
{
	struct virtio_device *vdev = d->vdev;

	d->broken = true;
	while (pthread_mutex_trylock(&vdev->lock)) {
		if (d->stop)
			return;
		sched_yield();
	}
	virtio_device_fail(vdev, idx, vq_error_name(vq->last_error));
	pthread_mutex_unlock(&vdev->lock);
}

/* ---- receive queue ---------------------------------------------------------------------- */

static void fill_hdr(struct vsock_dev *d, struct vsock_hdr *h, uint32_t local, uint32_t peer,
		     uint16_t op, const struct vsock_conn *c)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID, .dst_cid = d->guest_cid, .src_port = local,
		.dst_port = peer, .type = VIRTIO_VSOCK_TYPE_STREAM, .op = op,
		.buf_alloc = c ? VIRTIO_VSOCK_BUF_ALLOC : 0, .fwd_cnt = c ? c->fwd_cnt : 0,
	};
}

/* Pop one usable receive buffer (at least a header, device-writable only). 1, 0 (none) or
 * -EIO. Unusable buffers are returned empty and counted. */
static int rx_pop(struct vsock_dev *d, struct vq_elem *e)
{
	for (;;) {
		int rc = vq_pop(d->rxq, e);

		if (rc < 0)
			dev_fail(d, 0, d->rxq);
		if (rc <= 0)
			return rc;
		if (e->in_len > VSOCK_HDR_LEN && !e->out_num)
			return 1;
		VSOCK_STAT_ADD(d, malformed, 1);
		VSOCK_STAT_ADD(d, err[VSOCK_ERR_RX_BUF], 1);
		if (vq_push(d->rxq, e, 0) < 0) {
			dev_fail(d, 0, d->rxq);
			return -EIO;
		}
		d->rx_pushed = true;
	}
}

static int rx_push(struct vsock_dev *d, struct vq_elem *e, const struct vsock_hdr *h)
{
	uint8_t raw[VSOCK_HDR_LEN];

	vsock_hdr_encode(h, raw);
	vsock_buf_to_iov(e->iov, e->in_num, 0, raw, VSOCK_HDR_LEN);
	if (vq_push(d->rxq, e, VSOCK_HDR_LEN + h->len) < 0) {
		dev_fail(d, 0, d->rxq);
		return -EIO;
	}
	d->rx_pushed = true;
	VSOCK_STAT_ADD(d, rx_pkts, 1);
	return 0;
}

/* A packet without payload. 0, -EAGAIN (no receive buffer) or -EIO. */
static int send_ctrl(struct vsock_dev *d, struct vsock_conn *c, uint32_t local, uint32_t peer,
		     uint16_t op, uint32_t flags)
{
	struct vsock_hdr h;
	int rc = rx_pop(d, &d->rxe[0]);

	if (rc <= 0)
		return rc ? rc : -EAGAIN;
	fill_hdr(d, &h, local, peer, op, c);
	h.flags = flags;
	if (c)
		vsock_conn_sent_credit(c);
	return rx_push(d, &d->rxe[0], &h);
}

/* One readv from c's host socket into up to RX_BATCH receive buffers, at most `budget`
 * bytes. Returns bytes delivered, 0 (nothing: EAGAIN, EOF, no credit), -EAGAIN (no receive
 * buffers), -EIO, or -ECONNRESET (c was closed). */
static int rx_data(struct vsock_dev *d, struct vsock_conn *c, uint32_t budget)
{
	uint32_t want = vsock_peer_credit(c), lens[RX_BATCH], cap = 0, left;
	unsigned n = 0, niov = 0, used = 0;
	ssize_t r;
	int rc;

	if (want > budget)
		want = budget;
	while (cap < want && n < RX_BATCH) {
		struct vq_elem *e = &d->rxe[n];
		uint32_t s;
		int k;

		rc = rx_pop(d, e);
		if (rc < 0)
			return rc;
		if (!rc)
			break;
		s = e->in_len - VSOCK_HDR_LEN > want - cap ? want - cap
							   : (uint32_t)(e->in_len - VSOCK_HDR_LEN);
		k = vsock_iov_slice(e->iov, e->in_num, VSOCK_HDR_LEN, s, d->rx_iov + niov,
				    RX_IOV - niov);
		if (k < 0) {
			vq_unpop(d->rxq, e);
			break;
		}
		lens[n++] = s;
		cap += s;
		niov += (unsigned)k;
	}
	if (!n)
		return -EAGAIN;
	r = readv(c->fd, d->rx_iov, (int)niov);
	left = r > 0 ? (uint32_t)r : 0;
	while (used < n && left) {
		uint32_t take = lens[used] < left ? lens[used] : left;

		lens[used++] = take;
		left -= take;
	}
	for (unsigned i = n; i-- > used;)
		vq_unpop(d->rxq, &d->rxe[i]);
	/* headers, then every buffer of the read published with one used-index update */
	for (unsigned i = 0; i < used; i++) {
		struct vsock_hdr h;
		uint8_t raw[VSOCK_HDR_LEN];

		fill_hdr(d, &h, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_RW, c);
		h.len = lens[i];
		vsock_hdr_encode(&h, raw);
		vsock_buf_to_iov(d->rxe[i].iov, d->rxe[i].in_num, 0, raw, VSOCK_HDR_LEN);
		d->rx_ptrs[i] = &d->rxe[i];
		lens[i] += VSOCK_HDR_LEN;
	}
	if (used && vq_push_batch(d->rxq, d->rx_ptrs, lens, used) < 0) {
		dev_fail(d, 0, d->rxq);
		return -EIO;
	}
	if (used) {
		d->rx_pushed = true;
		VSOCK_STAT_ADD(d, rx_pkts, used);
	}
	if (r > 0) {
		c->rx_cnt += (uint32_t)r;
		vsock_conn_sent_credit(c);
		VSOCK_STAT_ADD(d, rx_bytes, (uint64_t)r);
		return (int)r;
	}
	if (r == 0) {
		vsock_conn_host_eof(d, c);
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		c->readable = errno == EINTR;
		return 0;
	}
	vsock_reset_conn(d, c, c->local_port, c->peer_port);
	return -ECONNRESET;
}

/* Control packets and data of one connection. 0, -EAGAIN (out of receive buffers), -EIO
 * or -ECONNRESET (c is gone). */
static int rx_conn(struct vsock_dev *d, struct vsock_conn *c)
{
	static const struct { unsigned bit; uint16_t op; } early[] = {
		{ VC_REQUEST, VIRTIO_VSOCK_OP_REQUEST }, { VC_RESPONSE, VIRTIO_VSOCK_OP_RESPONSE },
	};
	uint32_t budget = RX_QUOTA;
	int rc;

	for (unsigned i = 0; i < 2; i++) {
		if (!(c->ctrl & early[i].bit))
			continue;
		rc = send_ctrl(d, c, c->local_port, c->peer_port, early[i].op, 0);
		if (rc)
			return rc;
		c->ctrl &= ~early[i].bit;
	}
	while (budget && vsock_conn_wants_rx(c) && c->readable && !c->host_eof &&
	       !c->guest_shut_rcv && c->state == VC_ESTABLISHED && vsock_peer_credit(c)) {
		rc = rx_data(d, c, budget);
		if (rc <= 0) {
			if (rc < 0)
				return rc;
			break;
		}
		budget -= (uint32_t)rc < budget ? (uint32_t)rc : budget;
	}
	vsock_conn_update_rx(d, c); /* out of credit with data waiting: CREDIT_REQUEST */
	if (c->ctrl & VC_SHUTDOWN) {
		rc = send_ctrl(d, c, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_SHUTDOWN,
			       c->shut_flags);
		if (rc)
			return rc;
		c->ctrl &= ~VC_SHUTDOWN;
	}
	if (c->ctrl & VC_CREDIT_UPDATE) {
		rc = send_ctrl(d, c, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
		if (rc)
			return rc;
	}
	if (c->ctrl & VC_CREDIT_REQUEST) {
		rc = send_ctrl(d, c, c->local_port, c->peer_port, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0);
		if (rc)
			return rc;
		c->ctrl &= ~VC_CREDIT_REQUEST;
	}
	return 0;
}

/* One pass over the RSTs and the connections that have something for the guest. Returns
 * whether anything moved; *starved when receive buffers ran out. */
static bool do_rx(struct vsock_dev *d, bool *starved)
{
	struct vsock_conn *list = NULL, **tail = &list, *c;
	uint64_t before = d->stats.rx_pkts;
	int rc = 0;

	*starved = false;
	while (d->rst_len && !d->broken) {
		struct vsock_rst *r = &d->rst[d->rst_head];

		rc = send_ctrl(d, NULL, r->local_port, r->peer_port, VIRTIO_VSOCK_OP_RST, 0);
		if (rc)
			break;
		d->rst_head = (d->rst_head + 1) % VSOCK_RST_QUEUE;
		d->rst_len--;
		VSOCK_STAT_ADD(d, rst_sent, 1);
	}
	/* take this pass's list; connections that still want more go back at the tail */
	while (!rc && (c = d->rx_head)) {
		vsock_rx_list_del(d, c);
		*tail = c;
		c->rnext = NULL;
		tail = &c->rnext;
	}
	while ((c = list)) {
		list = c->rnext;
		c->rnext = NULL;
		if (rc || d->broken) { /* out of buffers: keep its turn */
			vsock_rx_list_add(d, c);
			continue;
		}
		rc = rx_conn(d, c);
		if (rc == -ECONNRESET) {
			rc = 0;
			continue;
		}
		if (rc || vsock_conn_wants_rx(c))
			vsock_rx_list_add(d, c);
	}
	*starved = rc == -EAGAIN;
	return d->stats.rx_pkts != before;
}

/* ---- transmit and event queues ------------------------------------------------------------ */

static bool do_tx(struct vsock_dev *d)
{
	unsigned k;

	for (k = 0; k < TX_BATCH && !d->broken; k++) {
		struct vsock_hdr h = { 0 };
		unsigned npay;
		enum vsock_err e;
		int rc = vq_pop(d->txq, &d->txe);

		if (rc < 0)
			dev_fail(d, 1, d->txq);
		if (rc <= 0)
			break;
		e = vsock_parse(d->txe.iov, d->txe.out_num, d->txe.out_len, d->guest_cid, &h, d->pay,
				VQ_MAX_IOV, &npay);
		if (e == VSOCK_OK) {
			VSOCK_STAT_ADD(d, tx_pkts, 1);
			vsock_conn_guest_pkt(d, &h, d->pay, npay);
		} else {
			vsock_count_err(d, e, &h);
			/* an unsupported socket type is refused like Linux does: with an RST */
			if (e == VSOCK_ERR_TYPE && h.op == VIRTIO_VSOCK_OP_REQUEST)
				vsock_reset_conn(d, NULL, h.dst_port, h.src_port);
		}
		if (vq_push(d->txq, &d->txe, 0) < 0) {
			dev_fail(d, 1, d->txq);
			break;
		}
		d->tx_pushed = true;
	}
	return k > 0;
}

static void do_event(struct vsock_dev *d)
{
	uint32_t id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	int rc;

	if (!d->transport_reset || d->broken)
		return;
	rc = vq_pop(d->evq, &d->eve);
	if (rc < 0)
		dev_fail(d, 2, d->evq);
	if (rc <= 0)
		return;
	if (d->eve.in_len >= sizeof(id))
		vsock_buf_to_iov(d->eve.iov + d->eve.out_num, d->eve.in_num, 0, &id, sizeof(id));
	if (vq_push(d->evq, &d->eve, d->eve.in_len >= sizeof(id) ? sizeof(id) : 0) < 0) {
		dev_fail(d, 2, d->evq);
		return;
	}
	d->ev_pushed = true;
	d->transport_reset = false;
	pr_info("virtio-vsock: TRANSPORT_RESET sent to the guest");
}

static void signal_queue(struct vsock_dev *d, struct virtqueue *vq, unsigned idx, bool *pushed)
{
	struct virtio_queue_slot *slot = &d->vdev->queues[idx];

	if (!*pushed)
		return;
	*pushed = false;
	if (slot->cb && vq_should_notify(vq))
		slot->cb(slot->cb_opaque, idx);
}

/* ---- the worker --------------------------------------------------------------------------- */

static void handle_events(struct vsock_dev *d, int timeout)
{
	struct epoll_event evs[64];
	int n = epoll_wait(d->epfd, evs, 64, timeout);

	for (int i = 0; i < n; i++) {
		struct vsock_ep *ep = evs[i].data.ptr;

		if (ep->kind == EP_KICK) {
			eventfd_t v;

			eventfd_read(d->kick_fd, &v);
		} else {
			vsock_conn_event(d, ep, evs[i].events);
		}
	}
}

static void *vsock_thread(void *arg)
{
	struct vsock_dev *d = arg;
	int64_t next_tick = vsock_now_ms() + d->tick_ms;

	while (!d->stop) {
		bool progress = false, starved = false, deadlines;
		int timeout;

		if (d->txq) {
			vq_enable_notify(d->txq, false);
			progress |= do_tx(d);
		}
		if (d->rxq)
			progress |= do_rx(d, &starved);
		if (d->evq)
			do_event(d);
		if (d->rxq)
			signal_queue(d, d->rxq, 0, &d->rx_pushed);
		if (d->txq)
			signal_queue(d, d->txq, 1, &d->tx_pushed);
		if (d->evq)
			signal_queue(d, d->evq, 2, &d->ev_pushed);
		if (d->broken)
			break;
		deadlines = vsock_conns_have_deadlines(d);
		timeout = progress ? 0 : deadlines ? (int)d->tick_ms : -1;
		if (!progress && d->txq && vq_enable_notify(d->txq, true))
			timeout = 0;
		if (!progress && starved && d->rxq && vq_enable_notify(d->rxq, true) &&
		    !vq_empty(d->rxq))
			timeout = 0;
		handle_events(d, timeout);
		if (deadlines && vsock_now_ms() >= next_tick) {
			vsock_conns_timeouts(d);
			next_tick = vsock_now_ms() + d->tick_ms;
		}
	}
	return NULL;
}

static void log_stats(const struct vsock_dev *d);

/* ---- the device class --------------------------------------------------------------------- */

static void vsock_queue_notify(struct virtio_device *vdev, unsigned idx)
{
	struct vsock_dev *d = vdev->priv;

	(void)idx;
	if (d->started)
		eventfd_write(d->kick_fd, 1);
}

static void vsock_stop(struct virtio_device *vdev)
{
	struct vsock_dev *d = vdev->priv;
	unsigned n;

	if (d->started) {
		d->stop = true;
		eventfd_write(d->kick_fd, 1);
		pthread_join(d->thread, NULL);
		d->started = false;
	}
	n = vsock_conns_close_all(d);
	if (n) {
		/* the guest may still think these are connected (e.g. a vhost-user front-end
		 * that comes back): tell it to drop them once the event queue runs again */
		d->transport_reset = true;
		pr_info("virtio-vsock: reset closed %u connection(s)", n);
	}
	d->rxq = d->txq = d->evq = NULL;
}

static int vsock_activate(struct virtio_device *vdev)
{
	struct vsock_dev *d = vdev->priv;
	int rc;

	d->rxq = virtio_device_vq(vdev, 0);
	d->txq = virtio_device_vq(vdev, 1);
	d->evq = virtio_device_vq(vdev, 2);
	d->stop = d->broken = false;
	d->rx_pushed = d->tx_pushed = d->ev_pushed = false;
	rc = -pthread_create(&d->thread, NULL, vsock_thread, d);
	if (!rc)
		d->started = true;
	return rc;
}

static void vsock_read_config(struct virtio_device *vdev, unsigned offset, void *buf, unsigned len)
{
	struct vsock_dev *d = vdev->priv;
	struct virtio_vsock_config c = { .guest_cid = htole64(d->guest_cid) };

	memcpy(buf, (uint8_t *)&c + offset, len);
}

static void vsock_destroy(struct virtio_device *vdev)
{
	struct vsock_dev *d = vdev->priv;

	vsock_stop(vdev);
	log_stats(d);
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		unlink(d->uds);
	}
	if (d->kick_fd >= 0)
		close(d->kick_fd);
	if (d->epfd >= 0)
		close(d->epfd);
	free(d->rxe);
	free(d->rx_iov);
	free(d);
	vdev->priv = NULL;
}

static const struct virtio_device_class vsock_class_template = {
	.name = "vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
		    (1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_F_RING_PACKED),
	.num_queues = 3,
	.config_size = sizeof(struct virtio_vsock_config),
	.read_config = vsock_read_config,
	.activate = vsock_activate,
	.queue_notify = vsock_queue_notify,
	.reset = vsock_stop,
	.destroy = vsock_destroy,
};

static int epoll_add(struct vsock_dev *d, int fd, struct vsock_ep *ep, enum vsock_ep_kind kind)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ep };

	ep->kind = kind;
	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int dev_init(struct vsock_dev *d)
{
	int rc;

	d->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->rxe = calloc(RX_BATCH, sizeof(*d->rxe));
	d->rx_iov = calloc(RX_IOV, sizeof(*d->rx_iov));
	if (d->kick_fd < 0 || d->epfd < 0 || !d->rxe || !d->rx_iov)
		return -ENOMEM;
	rc = vsock_listen(d);
	if (rc) {
		pr_err("virtio-vsock: cannot listen on %s: %s", d->uds, strerror(-rc));
		return rc;
	}
	rc = epoll_add(d, d->kick_fd, &d->kick_ep, EP_KICK);
	if (!rc)
		rc = epoll_add(d, d->listen_fd, &d->listen_ep, EP_LISTEN);
	return rc;
}

int virtio_vsock_create(struct virtio_device *vdev, struct guest_memory *gm,
			const struct virtio_vsock_config_opts *o)
{
	struct vsock_dev *d;
	unsigned qs = o->queue_size ? o->queue_size : VIRTIO_VSOCK_DEFAULT_QUEUE_SIZE;
	int rc;

	if (o->guest_cid < 3 || o->guest_cid >= 0xffffffffu || !o->uds ||
	    strlen(o->uds) >= sizeof(d->uds) || qs > VQ_MAX_SIZE || (qs & (qs - 1))) {
		pr_err("virtio-vsock: bad options (cid 3..4294967294, a socket path of at most 95 "
		       "bytes, power-of-two queue size)");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->listen_fd = d->kick_fd = d->epfd = -1;
	d->guest_cid = o->guest_cid;
	snprintf(d->uds, sizeof(d->uds), "%s", o->uds);
	d->qsize = qs;
	d->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms
						      : VIRTIO_VSOCK_CONNECT_TIMEOUT_MS;
	d->close_timeout_ms = o->close_timeout_ms ? o->close_timeout_ms
						  : VIRTIO_VSOCK_CLOSE_TIMEOUT_MS;
	/* deadlines are checked this often: a tenth of the shorter one, at most 500 ms */
	d->tick_ms = (d->connect_timeout_ms < d->close_timeout_ms ? d->connect_timeout_ms
								  : d->close_timeout_ms) / 10;
	if (d->tick_ms > 500)
		d->tick_ms = 500;
	if (!d->tick_ms)
		d->tick_ms = 1;
	d->next_local_port = VSOCK_LOCAL_PORT_BASE;
	rc = dev_init(d);
	if (rc)
		goto fail;
	d->cls = vsock_class_template;
	d->cls.queue_max_size = qs;
	rc = virtio_device_init(vdev, &d->cls, gm, d);
	if (rc)
		goto fail;
	d->vdev = vdev;
	pr_info("virtio-vsock: guest cid %llu, host side on %s", (unsigned long long)d->guest_cid,
		d->uds);
	return 0;
fail:
	{
		struct virtio_device tmp = { .priv = d };

		vsock_destroy(&tmp);
	}
	return rc;
}

static void copy_stats(const struct vsock_dev *d, struct virtio_vsock_stats *st)
{
	const uint64_t *src = (const uint64_t *)&d->stats;
	uint64_t *dst = (uint64_t *)st;

	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void virtio_vsock_stats(struct virtio_device *vdev, struct virtio_vsock_stats *st)
{
	copy_stats(vdev->priv, st);
}

static void log_stats(const struct vsock_dev *d)
{
	struct virtio_vsock_stats s;
	char errs[512] = "";
	size_t off = 0;

	copy_stats(d, &s);
	for (unsigned e = 1; e < VSOCK_ERR_COUNT; e++)
		if (s.err[e] && off < sizeof(errs))
			off += (size_t)snprintf(errs + off, sizeof(errs) - off, "; %s %llu",
						vsock_err_name(e), (unsigned long long)s.err[e]);
	/* asked for (vireo backend: SIGUSR1; exit): shown at the default log level */
	log_msg(LOG_WARN, "virtio-vsock: stats: tx %llu pkts %llu bytes, rx %llu pkts %llu bytes, "
		"connections %llu opened %llu closed %llu active, rst %llu sent %llu dropped, "
		"host refused %llu, malformed %llu%s",
		(unsigned long long)s.tx_pkts, (unsigned long long)s.tx_bytes,
		(unsigned long long)s.rx_pkts, (unsigned long long)s.rx_bytes,
		(unsigned long long)s.conns_opened, (unsigned long long)s.conns_closed,
		(unsigned long long)s.conns_active, (unsigned long long)s.rst_sent,
		(unsigned long long)s.rst_dropped, (unsigned long long)s.host_refused,
		(unsigned long long)s.malformed, errs);
}

void virtio_vsock_log_stats(struct virtio_device *vdev)
{
	if (vdev->priv)
		log_stats(vdev->priv);
}
