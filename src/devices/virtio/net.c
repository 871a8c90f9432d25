/* virtio-net: queue pairs served by one thread each, on a tap device or in loopback.
 *
 * Transmit: each packet (12-byte virtio_net_hdr_mrg_rxbuf + frame) is written to the tap fd
 * as is (IFF_VNET_HDR, TUNSETVNETHDRSZ 12), or in loopback copied straight into receive
 * buffers of the same pair. Receive: a frame (from tap, or looped back) is spread over as
 * many receive buffers as it needs with VIRTIO_NET_F_MRG_RXBUF (num_buffers in the header),
 * or must fit one buffer without it. Loopback is lossless: a transmitted packet waits until
 * the driver posts receive buffers. Offloads: with tap, checksum and TSO are offered and
 * passed through (TUNSETOFFLOAD from what the driver accepted); loopback offers none, so
 * every looped packet is a complete frame.
 *
 * The control queue (MQ pairs, rx mode, MAC filter) is answered in queue_notify. Queue-pair
 * threads never take vdev->lock (reset holds it while joining them).
 */
#include "devices/virtio/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/log.h"

#define HDR_LEN ((unsigned)sizeof(struct virtio_net_hdr_mrg_rxbuf)) /* 12 */
#define MAX_FRAME (65535u + 14u + 4u)
#define MAX_RX_BUFS 256 /* receive buffers one packet may take */
#define BATCH 256       /* packets per pass before interrupting the driver */

struct net_pair {
	struct virtio_net *net;
	unsigned idx;
	struct virtqueue *rxq, *txq;
	pthread_t thread;
	bool started;
	volatile bool stop;
	int kick_fd;                 /* written by queue_notify for either queue of the pair */
	int tap_fd;
	struct vq_elem txe;          /* a transmitted packet waiting for receive buffers */
	bool tx_pending;
	struct vq_elem *rxe;         /* MAX_RX_BUFS elements */
	uint32_t rx_lens[MAX_RX_BUFS];
	uint8_t *bounce;             /* tap receive */
	size_t bounce_len;           /* a received frame waiting for buffers */
	bool rx_pushed, tx_pushed, broken;
	uint64_t tx_packets, rx_packets, tx_dropped, rx_dropped;
};

struct virtio_net {
	struct virtio_device_class cls;
	struct virtio_device *vdev;
	unsigned npairs, qsize;
	bool loopback;
	uint8_t mac[6];
	struct net_pair *pairs;
	struct vq_elem ctrl;
	uint16_t active_pairs;
};

/* ---- iovec helpers ------------------------------------------------------------------------ */

struct iov_cursor {
	const struct iovec *iov;
	unsigned n, i;
	size_t off;
};

/* Copy up to len bytes from the cursor into dst[0..dn); returns bytes copied. */
static size_t copy_to_iov(struct iov_cursor *c, const struct iovec *dst, unsigned dn,
			  size_t len)
{
	size_t done = 0;

	for (unsigned j = 0; j < dn && done < len && c->i < c->n; j++) {
		size_t doff = 0;

		while (doff < dst[j].iov_len && done < len && c->i < c->n) {
			size_t s = c->iov[c->i].iov_len - c->off, d = dst[j].iov_len - doff;
			size_t k = s < d ? s : d;

			if (k > len - done)
				k = len - done;
			memcpy((uint8_t *)dst[j].iov_base + doff,
			       (const uint8_t *)c->iov[c->i].iov_base + c->off, k);
			doff += k;
			done += k;
			c->off += k;
			if (c->off == c->iov[c->i].iov_len) {
				c->i++;
				c->off = 0;
			}
		}
	}
	return done;
}

/* Write len bytes at byte offset off of the iovecs (a header field). */
static void iov_write_at(const struct iovec *iov, unsigned n, size_t off, const void *buf,
			 size_t len)
{
	const uint8_t *b = buf;

	for (unsigned i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t k = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;

		memcpy((uint8_t *)iov[i].iov_base + off, b, k);
		b += k;
		len -= k;
		off = 0;
	}
}

/* ---- receive side ------------------------------------------------------------------------- */

static bool has_feature(struct net_pair *p, unsigned bit)
{
	return virtio_device_has_feature(p->net->vdev, bit);
}

static void pair_fail(struct net_pair *p, struct virtqueue *vq)
{
	struct virtio_device *vdev = p->net->vdev;

	p->broken = true;
	while (pthread_mutex_trylock(&vdev->lock)) {
		if (p->stop)
			return;
		sched_yield();
	}
	virtio_device_fail(vdev, vq == p->rxq ? 2 * p->idx : 2 * p->idx + 1,
			   vq_error_name(vq->last_error));
	pthread_mutex_unlock(&vdev->lock);
}

/* Put a packet of len bytes (header included) from src into receive buffers.
 * 0: delivered; -EAGAIN: not enough receive buffers yet (nothing consumed); -EMSGSIZE:
 * dropped (too big for what the driver can take); -EIO: broken ring. */
static int deliver(struct net_pair *p, const struct iovec *src, unsigned sn, size_t len)
{
	bool mrg = has_feature(p, VIRTIO_NET_F_MRG_RXBUF);
	struct iov_cursor c = { src, sn, 0, 0 };
	unsigned n = 0;
	size_t room = 0;
	uint16_t nb;
	int rc;

	while (room < len) {
		struct vq_elem *e = &p->rxe[n];

		if (n == (mrg ? MAX_RX_BUFS : 1u))
			goto too_big;
		rc = vq_pop(p->rxq, e);
		if (rc < 0) {
			pair_fail(p, p->rxq);
			return -EIO;
		}
		if (rc == 0 || (n == 0 && e->in_len < HDR_LEN)) {
			if (rc > 0)
				n++;
			goto give_back;
		}
		room += e->in_len;
		n++;
	}
	for (unsigned i = 0; i < n; i++) {
		struct vq_elem *e = &p->rxe[i];

		p->rx_lens[i] = (uint32_t)copy_to_iov(&c, e->iov + e->out_num, e->in_num, len);
	}
	nb = htole16((uint16_t)n);
	if (mrg)
		iov_write_at(p->rxe[0].iov + p->rxe[0].out_num, p->rxe[0].in_num, 10, &nb, 2);
	for (unsigned i = 0; i < n; i++)
		if (vq_push(p->rxq, &p->rxe[i], p->rx_lens[i]) < 0) {
			pair_fail(p, p->rxq);
			return -EIO;
		}
	p->rx_pushed = true;
	p->rx_packets++;
	return 0;
too_big:
	while (n--)
		vq_unpop(p->rxq, &p->rxe[n]);
	p->rx_dropped++;
	return -EMSGSIZE;
give_back:
	while (n--)
		vq_unpop(p->rxq, &p->rxe[n]);
	return -EAGAIN;
}

/* Loopback and tap transmit. Returns true when something moved. */
static bool do_tx(struct net_pair *p, bool *blocked)
{
	bool moved = false;

	*blocked = false;
	for (unsigned k = 0; k < BATCH && !p->broken; k++) {
		int rc;

		if (!p->tx_pending) {
			rc = vq_pop(p->txq, &p->txe);
			if (rc < 0)
				pair_fail(p, p->txq);
			if (rc <= 0)
				break;
			p->tx_pending = true;
		}
		if (p->txe.out_len < HDR_LEN || p->txe.out_len > HDR_LEN + MAX_FRAME) {
			p->tx_dropped++;
		} else if (p->net->loopback) {
			/* no offloads are offered in loopback: the header carries none */
			rc = deliver(p, p->txe.iov, p->txe.out_num, p->txe.out_len);
			if (rc == -EAGAIN) {
				*blocked = true;
				break;
			}
			if (rc == -EIO)
				break;
		} else if (writev(p->tap_fd, p->txe.iov, (int)p->txe.out_num) < 0) {
			p->tx_dropped++;
		}
		p->tx_packets++;
		p->tx_pending = false;
		if (vq_push(p->txq, &p->txe, 0) < 0) {
			pair_fail(p, p->txq);
			break;
		}
		p->tx_pushed = true;
		moved = true;
	}
	return moved;
}

/* Frames from the tap device into receive buffers. */
static bool do_tap_rx(struct net_pair *p, bool *starved)
{
	bool moved = false;

	*starved = false;
	for (unsigned k = 0; k < BATCH && !p->broken; k++) {
		struct iovec v;
		int rc;

		if (!p->bounce_len) {
			ssize_t n = read(p->tap_fd, p->bounce, HDR_LEN + MAX_FRAME);

			if (n <= 0)
				break;
			p->bounce_len = (size_t)n;
		}
		v = (struct iovec){ p->bounce, p->bounce_len };
		rc = deliver(p, &v, 1, p->bounce_len);
		if (rc == -EAGAIN) {
			*starved = true;
			break;
		}
		p->bounce_len = 0;
		moved = true;
	}
	return moved;
}

static void signal_queue(struct net_pair *p, struct virtqueue *vq, unsigned idx, bool *pushed)
{
	struct virtio_queue_slot *slot = &p->net->vdev->queues[idx];

	if (!*pushed)
		return;
	*pushed = false;
	if (slot->cb && vq_should_notify(vq))
		slot->cb(slot->cb_opaque, idx);
}

static void *pair_thread(void *arg)
{
	struct net_pair *p = arg;
	bool tap = !p->net->loopback;

	while (!p->stop) {
		bool blocked = false, starved = false, moved;
		struct pollfd pf[2] = { { p->kick_fd, POLLIN, 0 }, { p->tap_fd, POLLIN, 0 } };
		eventfd_t v;

		vq_enable_notify(p->txq, false);
		moved = do_tx(p, &blocked);
		if (tap)
			moved |= do_tap_rx(p, &starved);
		signal_queue(p, p->rxq, 2 * p->idx, &p->rx_pushed);
		signal_queue(p, p->txq, 2 * p->idx + 1, &p->tx_pushed);
		if (p->broken)
			break;
		if (moved && !blocked && !starved)
			continue;
		/* Sleep until a kick (or tap data): ask for kicks, then look once more. */
		if (vq_enable_notify(p->txq, true) && !blocked)
			continue;
		if ((blocked || starved) && vq_enable_notify(p->rxq, true) && !vq_empty(p->rxq))
			continue;
		poll(pf, tap && !starved ? 2 : 1, -1);
		if (pf[0].revents & POLLIN)
			eventfd_read(p->kick_fd, &v);
	}
	return NULL;
}

/* ---- control queue ------------------------------------------------------------------------ */

static uint8_t ctrl_command(struct virtio_net *net, const struct vq_elem *e)
{
	uint8_t hdr[2 + 2] = { 0 };
	struct iov_cursor c = { e->iov, e->out_num, 0, 0 };
	struct iovec v = { hdr, sizeof(hdr) };
	uint16_t pairs;

	if (copy_to_iov(&c, &v, 1, sizeof(hdr)) < 2)
		return VIRTIO_NET_ERR;
	switch (hdr[0]) {
	case VIRTIO_NET_CTRL_RX:
	case VIRTIO_NET_CTRL_MAC:
	case VIRTIO_NET_CTRL_VLAN:
	case VIRTIO_NET_CTRL_ANNOUNCE:
		return VIRTIO_NET_OK; /* every frame is delivered; nothing to filter */
	case VIRTIO_NET_CTRL_MQ:
		memcpy(&pairs, hdr + 2, 2);
		pairs = le16toh(pairs);
		if (hdr[1] != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || e->out_len < 4 || !pairs ||
		    pairs > net->npairs)
			return VIRTIO_NET_ERR;
		net->active_pairs = pairs;
		return VIRTIO_NET_OK;
	}
	return VIRTIO_NET_ERR;
}

static void ctrl_notify(struct virtio_device *vdev, unsigned idx)
{
	struct virtio_net *net = vdev->priv;
	struct virtqueue *vq = virtio_device_vq(vdev, idx);
	struct vq_elem *e = &net->ctrl;
	int rc;

	if (!vq)
		return;
	while ((rc = vq_pop(vq, e)) > 0) {
		uint8_t ack = ctrl_command(net, e);

		if (!e->in_len) {
			vq_push(vq, e, 0);
			continue;
		}
		iov_write_at(e->iov + e->out_num, e->in_num, e->in_len - 1, &ack, 1);
		if (vq_push(vq, e, (uint32_t)e->in_len) < 0)
			rc = -EIO;
	}
	virtio_device_notify(vdev, idx);
	if (rc < 0)
		virtio_device_fail(vdev, idx, vq_error_name(vq->last_error));
}

/* ---- the device class ------------------------------------------------------------------------ */

static void net_queue_notify(struct virtio_device *vdev, unsigned idx)
{
	struct virtio_net *net = vdev->priv;

	if (idx == 2 * net->npairs) {
		ctrl_notify(vdev, idx);
		return;
	}
	if (idx / 2 < net->npairs && net->pairs[idx / 2].started)
		eventfd_write(net->pairs[idx / 2].kick_fd, 1);
}

static void net_stop(struct virtio_device *vdev)
{
	struct virtio_net *net = vdev->priv;

	for (unsigned i = 0; i < net->npairs; i++) {
		struct net_pair *p = &net->pairs[i];

		if (!p->started)
			continue;
		p->stop = true;
		eventfd_write(p->kick_fd, 1);
		pthread_join(p->thread, NULL);
		if (p->tx_pending)
			vq_unpop(p->txq, &p->txe);
		p->tx_pending = false;
		p->started = false;
		pr_info("virtio-net: pair %u: tx %llu packets, rx %llu packets, dropped tx %llu rx %llu",
			i, (unsigned long long)p->tx_packets, (unsigned long long)p->rx_packets,
			(unsigned long long)p->tx_dropped, (unsigned long long)p->rx_dropped);
	}
}

/* Tell tap which offloads it may hand us, from what the driver accepted. */
static void tap_offloads(struct virtio_net *net)
{
	struct virtio_device *vdev = net->vdev;
	unsigned off = 0;

	if (virtio_device_has_feature(vdev, VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (virtio_device_has_feature(vdev, VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (virtio_device_has_feature(vdev, VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
	}
	for (unsigned i = 0; i < net->npairs; i++)
		if (ioctl(net->pairs[i].tap_fd, TUNSETOFFLOAD, off))
			pr_warn("virtio-net: TUNSETOFFLOAD 0x%x: %s", off, strerror(errno));
}

static int net_activate(struct virtio_device *vdev)
{
	struct virtio_net *net = vdev->priv;
	int rc = 0;

	if (!net->loopback)
		tap_offloads(net);
	for (unsigned i = 0; i < net->npairs && !rc; i++) {
		struct net_pair *p = &net->pairs[i];

		p->rxq = virtio_device_vq(vdev, 2 * i);
		p->txq = virtio_device_vq(vdev, 2 * i + 1);
		if (!p->rxq || !p->txq)
			continue;
		p->stop = p->broken = p->rx_pushed = p->tx_pushed = false;
		rc = -pthread_create(&p->thread, NULL, pair_thread, p);
		if (!rc)
			p->started = true;
	}
	if (rc)
		net_stop(vdev);
	return rc;
}

static void net_read_config(struct virtio_device *vdev, unsigned offset, void *buf, unsigned len)
{
	struct virtio_net *net = vdev->priv;
	struct virtio_net_config c;

	memset(&c, 0, sizeof(c));
	memcpy(c.mac, net->mac, 6);
	c.status = htole16(VIRTIO_NET_S_LINK_UP);
	c.max_virtqueue_pairs = htole16((uint16_t)net->npairs);
	memcpy(buf, (uint8_t *)&c + offset, len);
}

static void net_destroy(struct virtio_device *vdev)
{
	struct virtio_net *net = vdev->priv;

	net_stop(vdev);
	for (unsigned i = 0; i < net->npairs; i++) {
		struct net_pair *p = &net->pairs[i];

		if (p->kick_fd >= 0)
			close(p->kick_fd);
		if (p->tap_fd >= 0)
			close(p->tap_fd);
		free(p->rxe);
		free(p->bounce);
	}
	free(net->pairs);
	free(net);
	vdev->priv = NULL;
}

static int tap_open(const char *name, bool multi)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK), hdr = HDR_LEN;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) || ioctl(fd, TUNSETVNETHDRSZ, &hdr)) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];

	if (!s) {
		static const uint8_t def[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

		memcpy(mac, def, 6);
		return 0;
	}
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 0xff)
			return -EINVAL;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

static const struct virtio_device_class net_class_template = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
		    (1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_F_RING_PACKED) |
		    (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) |
		    (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_CTRL_VQ),
	.config_size = sizeof(struct virtio_net_config),
	.read_config = net_read_config,
	.activate = net_activate,
	.queue_notify = net_queue_notify,
	.reset = net_stop,
	.destroy = net_destroy,
};

static int pairs_init(struct virtio_net *net, const struct virtio_net_config_opts *o)
{
	for (unsigned i = 0; i < net->npairs; i++) {
		struct net_pair *p = &net->pairs[i];

		p->net = net;
		p->idx = i;
		p->tap_fd = -1;
		p->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		p->rxe = calloc(MAX_RX_BUFS, sizeof(*p->rxe));
		if (p->kick_fd < 0 || !p->rxe)
			return -ENOMEM;
		if (net->loopback)
			continue;
		p->bounce = malloc(HDR_LEN + MAX_FRAME);
		if (!p->bounce)
			return -ENOMEM;
		p->tap_fd = tap_open(o->tap, net->npairs > 1);
		if (p->tap_fd < 0) {
			pr_err("virtio-net: tap %s: %s", o->tap, strerror(-p->tap_fd));
			return p->tap_fd;
		}
	}
	return 0;
}

int virtio_net_create(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct virtio_net_config_opts *o)
{
	struct virtio_net *net;
	int rc;

	if (!o->loopback == !o->tap || o->queue_pairs > (VIRTIO_MAX_QUEUES - 1) / 2 ||
	    (o->queue_size && (o->queue_size > VQ_MAX_SIZE || (o->queue_size & (o->queue_size - 1))))) {
		pr_err("virtio-net: bad options (one of --tap NAME or --loopback, 1-%u pairs, "
		       "power-of-two queue size)", (VIRTIO_MAX_QUEUES - 1) / 2);
		return -EINVAL;
	}
	net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	net->loopback = o->loopback;
	net->npairs = o->queue_pairs ? o->queue_pairs : 1;
	net->active_pairs = 1;
	net->qsize = o->queue_size ? o->queue_size : VIRTIO_NET_DEFAULT_QUEUE_SIZE;
	net->pairs = calloc(net->npairs, sizeof(*net->pairs));
	rc = parse_mac(o->mac, net->mac);
	if (!rc)
		rc = net->pairs ? pairs_init(net, o) : -ENOMEM;
	if (rc)
		goto fail;
	net->cls = net_class_template;
	net->cls.num_queues = 2 * net->npairs + 1;
	net->cls.queue_max_size = net->qsize;
	if (net->npairs > 1)
		net->cls.features |= 1ull << VIRTIO_NET_F_MQ;
	if (!net->loopback)
		net->cls.features |= (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
				     (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |
				     (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6);
	rc = virtio_device_init(vdev, &net->cls, gm, net);
	if (rc)
		goto fail;
	net->vdev = vdev;
	pr_info("virtio-net: %s, %u queue pair(s) of %u", net->loopback ? "loopback" : o->tap,
		net->npairs, net->qsize);
	return 0;
fail:
	if (net->pairs) {
		struct virtio_device tmp = { .priv = net };

		net_destroy(&tmp);
	} else {
		free(net);
	}
	return rc;
}
