/* virtio-net data path: one thread per queue pair moves frames between the pair's queues
 * and the host side (loopback: tx of the pair back into its rx; tap: the pair's tap queue).
 *
 * Why it looks like this:
 *   - Frames are handled in rounds of up to NET_TX_BUDGET / NET_RX_BUDGET; receive chains
 *     are returned with one vq_push_batch per round (a frame spread over several mergeable
 *     buffers becomes visible at once), the driver is signalled once per queue per round.
 *   - While a round finds work, kicks stay disabled; after poll_us without work (0: at once)
 *     the thread enables them (and re-checks the rings) and sleeps in epoll_wait on its
 *     eventfd (kicks forwarded by queue_notify) and the tap fd.
 *   - No receive buffers: the frame waits. Loopback: the tx chain goes back to its ring
 *     (vq_unpop) and the pair sleeps until the driver adds receive buffers (rx kicks enabled).
 *     Tap: the tap fd leaves the epoll set until then, frames queue in the kernel.
 *   - Every length the guest controls is checked: a tx chain shorter than the header, a frame
 *     of 0 bytes or over VIRTIO_NET_MAX_FRAME is refused and counted (tx_errors); a frame that
 *     does not fit the receive buffers is dropped and counted (rx_dropped).
 *   - The thread never takes vdev->lock on the hot path (the reset holds it while joining);
 *     a broken ring is reported like virtio-blk does (trylock, give up when stopping).
 */
#include "devices/virtio/net_internal.h"

#include <errno.h>
#include <linux/virtio_net.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define STAT_ADD(p, f, v) __atomic_store_n(&(p)->st.f, (p)->st.f + (v), __ATOMIC_RELAXED)

/* ---- iovec helpers ---------------------------------------------------------------------- */

size_t net_iov_copy_from(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len - done)
			l = len - done;
		memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + off, l);
		done += l;
		off = 0;
	}
	return done;
}

size_t net_iov_copy_to(const struct iovec *iov, unsigned n, size_t off, const void *buf,
		       size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len - done)
			l = len - done;
		memcpy((uint8_t *)iov[i].iov_base + off, (const uint8_t *)buf + done, l);
		done += l;
		off = 0;
	}
	return done;
}

/* A read position in a list of iovecs. */
struct iov_src {
	const struct iovec *iov;
	unsigned n, i;
	size_t off;
};

/* Copy from src into the writable buffers of e until they are full or src ends. */
static uint32_t fill_elem(const struct vq_elem *e, struct iov_src *src)
{
	uint32_t done = 0;

	for (unsigned k = e->out_num; k < e->out_num + e->in_num && src->i < src->n; k++) {
		uint8_t *d = e->iov[k].iov_base;
		size_t room = e->iov[k].iov_len;

		while (room && src->i < src->n) {
			const struct iovec *s = &src->iov[src->i];
			size_t l = s->iov_len - src->off;

			if (l > room)
				l = room;
			memcpy(d, (const uint8_t *)s->iov_base + src->off, l);
			d += l;
			room -= l;
			done += (uint32_t)l;
			src->off += l;
			if (src->off == s->iov_len) {
				src->i++;
				src->off = 0;
			}
		}
	}
	return done;
}

/* ---- signalling and failure ------------------------------------------------------------- */

static void signal_queue(struct net_pair *p, unsigned qidx, struct virtqueue *vq)
{
	struct virtio_queue_slot *slot = &p->net->vdev->queues[qidx];

	if (slot->cb && vq_should_notify(vq))
		slot->cb(slot->cb_opaque, qidx);
}

static void pair_fail(struct net_pair *p, struct virtqueue *vq, unsigned qidx)
{
	struct virtio_device *vdev = p->net->vdev;

	p->broken = true;
	while (pthread_mutex_trylock(&vdev->lock)) {
		if (__atomic_load_n(&p->stop, __ATOMIC_RELAXED))
			return;
		sched_yield();
	}
	virtio_device_fail(vdev, qidx, vq_error_name(vq->last_error));
	pthread_mutex_unlock(&vdev->lock);
}

/* ---- receive side ------------------------------------------------------------------------ */

static void rx_flush(struct net_pair *p)
{
	if (!p->rx_count)
		return;
	if (vq_push_batch(p->rxq, p->rx_ptrs, p->rx_written, p->rx_count) < 0)
		pair_fail(p, p->rxq, 2 * p->idx);
	p->rx_count = 0;
	if (!p->broken)
		signal_queue(p, 2 * p->idx, p->rxq);
}

/* Make room for a frame of up to VIRTIO_NET_MAX_RX_BUFS chains. */
static void rx_reserve(struct net_pair *p)
{
	if (p->rx_count > NET_RX_SLOTS - VIRTIO_NET_MAX_RX_BUFS)
		rx_flush(p);
}

/* Pop receive chains after the `have` ones of this frame (at rx_count) until they hold
 * `total` bytes (room: what the `have` chains hold). Returns the frame's chain count, 0 when
 * the ring ran out (rx_starved set), -EMSGSIZE when the frame cannot fit, -EIO on a broken
 * ring; on failure the chains popped here are given back (the `have` ones are not). */
static int rx_gather(struct net_pair *p, unsigned have, uint64_t room, uint64_t total)
{
	unsigned n = have, max = p->net->mrg ? VIRTIO_NET_MAX_RX_BUFS : 1;
	int rc = 0;

	while (room < total) {
		struct vq_elem *e = &p->rx_elems[p->rx_count + n];

		if (n == max) {
			rc = -EMSGSIZE;
			break;
		}
		rc = vq_pop(p->rxq, e);
		if (rc <= 0)
			break;
		n++;
		room += e->in_len;
	}
	if (room >= total)
		return (int)n;
	if (rc < 0 && rc != -EMSGSIZE) {
		pair_fail(p, p->rxq, 2 * p->idx);
		return -EIO;
	}
	while (n > have)
		vq_unpop(p->rxq, &p->rx_elems[p->rx_count + --n]);
	if (rc == 0 && !p->rx_starved) {
		p->rx_starved = true;
		STAT_ADD(p, rx_waits, 1);
	}
	return rc;
}

/* Copy a frame (src: header then data, total bytes) into nbufs chains at rx_count. */
static void rx_fill(struct net_pair *p, struct iov_src *src, unsigned nbufs)
{
	for (unsigned k = 0; k < nbufs; k++)
		p->rx_written[p->rx_count + k] = fill_elem(&p->rx_elems[p->rx_count + k], src);
}

static void rx_account(struct net_pair *p, unsigned nbufs, uint64_t frame_len)
{
	p->rx_count += nbufs;
	STAT_ADD(p, rx_packets, 1);
	STAT_ADD(p, rx_bytes, frame_len);
}

/* ---- transmit side ----------------------------------------------------------------------- */

/* Frame length of a tx chain, or -1 (counted) when the guest's lengths are unacceptable. */
static int64_t tx_frame_len(struct net_pair *p, const struct vq_elem *t)
{
	if (t->out_len <= VIRTIO_NET_HDR_LEN || t->out_len - VIRTIO_NET_HDR_LEN > VIRTIO_NET_MAX_FRAME) {
		pr_debug("virtio-net: pair %u: tx chain of %llu bytes refused", p->idx,
			 (unsigned long long)t->out_len);
		STAT_ADD(p, tx_errors, 1);
		return -1;
	}
	return (int64_t)(t->out_len - VIRTIO_NET_HDR_LEN);
}

/* Loopback: the frame of t goes to this pair's receive queue with a fresh header.
 * Returns 1 when t is done with (delivered or dropped), 0 when it must wait for buffers. */
static int loop_deliver(struct net_pair *p, const struct vq_elem *t, uint64_t len)
{
	struct virtio_net_hdr_v1 hdr = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };
	struct iov_src src = { .iov = p->riov };
	unsigned i;
	size_t skip = VIRTIO_NET_HDR_LEN;
	int n;

	if (!p->rxq) {
		STAT_ADD(p, rx_dropped, 1);
		return 1;
	}
	rx_reserve(p);
	n = rx_gather(p, 0, 0, len + VIRTIO_NET_HDR_LEN);
	if (n == -EMSGSIZE) {
		STAT_ADD(p, rx_dropped, 1);
		return 1;
	}
	if (n <= 0)
		return n < 0 ? 1 : 0;
	hdr.num_buffers = htole16((uint16_t)n);
	p->riov[0] = (struct iovec){ &hdr, sizeof(hdr) };
	src.n = 1;
	for (i = 0; i < t->out_num; i++) { /* the data after the guest's header */
		size_t l = t->iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		p->riov[src.n++] = (struct iovec){ (uint8_t *)t->iov[i].iov_base + skip, l - skip };
		skip = 0;
	}
	rx_fill(p, &src, (unsigned)n);
	rx_account(p, (unsigned)n, len);
	return 1;
}

/* Tap: write the chain (header included) to the tap. 1 done, 0 the tap is full (wait). */
static int tap_send(struct net_pair *p, const struct vq_elem *t)
{
	ssize_t n = writev(p->tapfd, t->iov, (int)t->out_num);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0) {
		pr_debug("virtio-net: pair %u: tap write: %s", p->idx, strerror(errno));
		STAT_ADD(p, tx_dropped, 1);
	}
	return 1;
}

/* One round of transmit: returns the frames taken. Used tx chains are returned together at
 * the end of the round (one used-index update), after the looped frames' rx chains. */
static unsigned tx_round(struct net_pair *p)
{
	unsigned done = 0;
	uint64_t packets = 0, bytes = 0;

	p->tx_stalled = false;
	while (done < NET_TX_BUDGET && !p->broken) {
		struct vq_elem *t = &p->tx_elems[done];
		int64_t len;
		int rc = vq_pop(p->txq, t);

		if (rc <= 0) {
			if (rc < 0)
				pair_fail(p, p->txq, 2 * p->idx + 1);
			break;
		}
		len = tx_frame_len(p, t);
		if (len >= 0) {
			rc = p->tapfd >= 0 ? tap_send(p, t) : loop_deliver(p, t, (uint64_t)len);
			if (p->broken)
				break;
			if (rc == 0) {
				vq_unpop(p->txq, t);
				p->tx_stalled = true;
				break;
			}
			packets++;
			bytes += (uint64_t)len;
		}
		done++;
	}
	rx_flush(p);
	if (packets) {
		STAT_ADD(p, tx_packets, packets);
		STAT_ADD(p, tx_bytes, bytes);
	}
	if (done && !p->broken) {
		if (vq_push_batch(p->txq, p->tx_ptrs, p->tx_written, done) < 0)
			pair_fail(p, p->txq, 2 * p->idx + 1);
		else
			signal_queue(p, 2 * p->idx + 1, p->txq);
	}
	return done;
}

/* ---- tap receive ------------------------------------------------------------------------- */

/* Read one frame from the tap into the next receive chain(s): straight into the first
 * chain's buffers (at most VQ_MAX_IOV - 1 of them, readv's limit with the bounce buffer), the
 * rest of a large frame into the bounce buffer and from there into more chains (mergeable).
 * 1 delivered or dropped, 0 the tap is empty or there are no buffers, -1 broken. */
static int tap_recv_one(struct net_pair *p)
{
	struct vq_elem *e = &p->rx_elems[p->rx_count];
	unsigned cnt = 0;
	uint64_t room = 0;
	uint16_t nb;
	ssize_t n;
	int rc;

	rc = vq_pop(p->rxq, e);
	if (rc <= 0) {
		if (rc < 0) {
			pair_fail(p, p->rxq, 2 * p->idx);
		} else if (!p->rx_starved) {
			p->rx_starved = true;
			STAT_ADD(p, rx_waits, 1);
		}
		return rc;
	}
	for (unsigned k = e->out_num; k < e->out_num + e->in_num && cnt < VQ_MAX_IOV - 1; k++) {
		p->riov[cnt++] = e->iov[k];
		room += e->iov[k].iov_len;
	}
	p->riov[cnt++] = (struct iovec){ p->bounce, VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME };
	n = readv(p->tapfd, p->riov, (int)cnt);
	if (n < 0) {
		vq_unpop(p->rxq, e);
		if (errno != EAGAIN && errno != EWOULDBLOCK && !p->tap_error) {
			pr_warn("virtio-net: pair %u: tap read: %s", p->idx, strerror(errno));
			p->tap_error = true; /* once: the tap leaves the epoll set until a kick */
		}
		return 0;
	}
	p->tap_error = false;
	if ((uint64_t)n <= VIRTIO_NET_HDR_LEN ||
	    (uint64_t)n - VIRTIO_NET_HDR_LEN > VIRTIO_NET_MAX_FRAME) {
		vq_unpop(p->rxq, e);
		STAT_ADD(p, rx_dropped, 1);
		return 1;
	}
	rc = 1;
	if ((uint64_t)n > room) { /* the rest went to the bounce buffer */
		struct iovec b = { p->bounce, (size_t)((uint64_t)n - room) };
		struct iov_src src = { .iov = &b, .n = 1 };

		rc = rx_gather(p, 1, room, (uint64_t)n);
		if (rc <= 0) {
			if (rc != -EIO) {
				vq_unpop(p->rxq, e);
				STAT_ADD(p, rx_dropped, 1);
			}
			return rc == -EIO ? -1 : 1;
		}
		for (int k = 1; k < rc; k++)
			p->rx_written[p->rx_count + k] = fill_elem(&p->rx_elems[p->rx_count + k], &src);
	}
	p->rx_written[p->rx_count] = (uint32_t)((uint64_t)n < room ? (uint64_t)n : room);
	nb = htole16((uint16_t)rc);
	net_iov_copy_to(e->iov + e->out_num, e->in_num, offsetof(struct virtio_net_hdr_v1, num_buffers),
			&nb, sizeof(nb));
	rx_account(p, (unsigned)rc, (uint64_t)n - VIRTIO_NET_HDR_LEN);
	return 1;
}

static unsigned tap_rx_round(struct net_pair *p)
{
	unsigned done = 0;

	while (done < NET_RX_BUDGET && !p->broken && !p->rx_starved) {
		rx_reserve(p);
		if (tap_recv_one(p) <= 0)
			break;
		done++;
	}
	rx_flush(p);
	return done;
}

/* ---- the pair thread --------------------------------------------------------------------- */

/* What the pair waits for on the tap: input while it has receive buffers, output while a
 * write waits. The fd leaves the epoll set when it waits for nothing, or when its queue is
 * detached (VQ_PAIRS_SET) or failing: such an fd reports EPOLLERR, which no event mask
 * silences. */
static void tap_interest(struct net_pair *p)
{
	bool active = __atomic_load_n(&p->tap_active, __ATOMIC_RELAXED) && !p->tap_error;
	bool want = active && p->rxq && !p->rx_starved && !p->broken;
	uint32_t events = (want ? EPOLLIN : 0) | (active && p->tx_stalled ? EPOLLOUT : 0);
	struct epoll_event ev = { .events = events, .data.u32 = 1 };
	int op;

	if (p->tapfd < 0 || events == p->tap_events)
		return;
	op = !events ? EPOLL_CTL_DEL : p->tap_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(p->epfd, op, p->tapfd, &ev) == 0)
		p->tap_events = events;
}

static unsigned pair_round(struct net_pair *p)
{
	unsigned n = 0;

	if (p->broken)
		return 0;
	if (p->rx_starved && p->rxq && !vq_empty(p->rxq))
		p->rx_starved = false;
	if (p->txq)
		n += tx_round(p);
	if (p->tapfd >= 0 && p->rxq && !p->tap_error &&
	    __atomic_load_n(&p->tap_active, __ATOMIC_RELAXED))
		n += tap_rx_round(p);
	tap_interest(p);
	return n;
}

/* Enable the kicks the pair waits for; true when work arrived meanwhile (do not sleep). */
static bool pair_arm(struct net_pair *p)
{
	bool work = false;

	if (p->broken)
		return false;
	if (p->txq && !p->tx_stalled)
		work |= vq_enable_notify(p->txq, true);
	if (p->rxq && (p->rx_starved || (p->tapfd < 0 && p->tx_stalled)))
		work |= vq_enable_notify(p->rxq, true);
	return work;
}

static void pair_disarm(struct net_pair *p)
{
	if (p->broken)
		return;
	if (p->txq)
		vq_enable_notify(p->txq, false);
	if (p->rxq)
		vq_enable_notify(p->rxq, false);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void pair_sleep(struct net_pair *p)
{
	struct epoll_event evs[4];
	int n = epoll_wait(p->epfd, evs, 4, -1);

	for (int i = 0; i < n; i++)
		if (evs[i].data.u32 == 0) {
			eventfd_t v;

			eventfd_read(p->evfd, &v);
			p->tap_error = false; /* a kick: give a failing tap another try */
		}
}

static void *pair_thread(void *arg)
{
	struct net_pair *p = arg;
	uint64_t idle_since = 0;
	unsigned spins = 0;

	pair_disarm(p);
	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		if (pair_round(p)) {
			idle_since = 0;
			continue;
		}
		/* No PAUSE in this loop (as in DPDK's poll loops): in a VM a pause loop may exit
		 * to the hypervisor, which then gives the vCPU away. The clock is read every 64
		 * idle rounds only. */
		if (p->net->poll_us && !p->broken && (++spins & 63))
			continue;
		if (p->net->poll_us && !p->broken) {
			uint64_t t = now_us();

			if (!idle_since)
				idle_since = t;
			if (t - idle_since < p->net->poll_us)
				continue;
		}
		if (pair_arm(p)) {
			pair_disarm(p);
			continue;
		}
		pair_sleep(p);
		pair_disarm(p);
		idle_since = 0;
	}
	rx_flush(p);
	return NULL;
}

/* ---- life cycle -------------------------------------------------------------------------- */

int net_pair_init(struct net_pair *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };

	p->tx_elems = malloc(NET_TX_BUDGET * sizeof(*p->tx_elems));
	p->rx_elems = malloc(NET_RX_SLOTS * sizeof(*p->rx_elems));
	p->bounce = p->tapfd >= 0 ? malloc(VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME) : NULL;
	p->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!p->tx_elems || !p->rx_elems || (p->tapfd >= 0 && !p->bounce))
		return -ENOMEM;
	if (p->evfd < 0 || p->epfd < 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->evfd, &ev))
		return -errno;
	for (unsigned i = 0; i < NET_RX_SLOTS; i++)
		p->rx_ptrs[i] = &p->rx_elems[i];
	for (unsigned i = 0; i < NET_TX_BUDGET; i++) {
		p->tx_ptrs[i] = &p->tx_elems[i];
		p->tx_written[i] = 0;
	}
	p->tap_active = true;
	return 0;
}

void net_pair_fini(struct net_pair *p)
{
	free(p->tx_elems);
	free(p->rx_elems);
	free(p->bounce);
	if (p->evfd >= 0)
		close(p->evfd);
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->tapfd >= 0)
		close(p->tapfd);
	p->tx_elems = NULL;
	p->rx_elems = NULL;
	p->bounce = NULL;
	p->evfd = p->epfd = p->tapfd = -1;
}

int net_pair_start(struct net_pair *p)
{
	eventfd_t v;
	int rc;

	p->stop = p->broken = p->tx_stalled = p->rx_starved = false;
	p->rx_count = 0;
	p->tap_events = 0;
	p->tap_error = false;
	eventfd_read(p->evfd, &v);
	rc = -pthread_create(&p->thread, NULL, pair_thread, p);
	if (!rc)
		p->started = true;
	return rc;
}

void net_pair_stop(struct net_pair *p)
{
	if (!p->started)
		return;
	__atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
	eventfd_write(p->evfd, 1);
	pthread_join(p->thread, NULL);
	p->started = false;
	if (p->tapfd >= 0 && p->tap_events) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->tapfd, NULL);
		p->tap_events = 0;
	}
}

void net_pair_kick(struct net_pair *p)
{
	if (p->started)
		eventfd_write(p->evfd, 1);
}
