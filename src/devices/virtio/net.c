/* virtio-net, the device class: features, config space, the control queue (MQ pairs, RX
 * mode, MAC table), start and stop of the pair threads (net_dp.c) and the counters.
 *
 * Queues: rx of pair i is 2*i, tx is 2*i+1, the control queue comes last (2*max_pairs).
 * Offloads are offered only as far as the host side honours them: loopback offers none
 * (every frame comes back with a plain header: no checksum or GSO work is left undone), a tap
 * offers what TUNSETOFFLOAD accepted when it was opened, and after negotiation the tap is told
 * which of them the guest takes on receive.
 */
#include "devices/virtio/net_internal.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define F(b) (1ull << (b))

static const uint8_t default_mac[6] = { 0x52, 0x54, 0x00, 0x76, 0x69, 0x72 };

static unsigned ctrl_idx(const struct virtio_net *net)
{
	return 2 * net->max_pairs;
}

/* ---- config space ----------------------------------------------------------------------- */

static void net_read_config(struct virtio_device *vdev, unsigned offset, void *buf, unsigned len)
{
	struct virtio_net *net = vdev->priv;
	struct virtio_net_config c;

	memset(&c, 0, sizeof(c));
	memcpy(c.mac, net->mac, sizeof(c.mac));
	c.status = htole16(VIRTIO_NET_S_LINK_UP);
	c.max_virtqueue_pairs = htole16((uint16_t)net->max_pairs);
	memcpy(buf, (uint8_t *)&c + offset, len);
}

/* The spec's feature dependencies (virtio 1.2, 5.1.3.1): offloads need checksumming. */
static int net_features_ok(struct virtio_device *vdev, uint64_t f)
{
	struct virtio_net *net = vdev->priv;
	uint64_t guest = F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |
			 F(VIRTIO_NET_F_GUEST_ECN) | F(VIRTIO_NET_F_GUEST_UFO);
	uint64_t host = F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |
			F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_HOST_UFO);

	if (((f & guest) && !(f & F(VIRTIO_NET_F_GUEST_CSUM))) ||
	    ((f & host) && !(f & F(VIRTIO_NET_F_CSUM)))) {
		virtio_device_log(vdev, LOG_WARN,
				  "virtio-net: features 0x%llx: offloads without checksumming refused",
				  (unsigned long long)f);
		return -EINVAL;
	}
	net->mrg = f & F(VIRTIO_NET_F_MRG_RXBUF);
	return 0;
}

/* ---- queue pairs ------------------------------------------------------------------------ */

/* Tap: only the queues of running, enabled pairs get frames from the kernel. */
static void apply_tap_queues(struct virtio_net *net)
{
	if (net->loopback || net->max_pairs < 2)
		return;
	for (unsigned i = 0; i < net->max_pairs; i++) {
		struct net_pair *p = &net->pairs[i];
		bool on = p->started && p->rxq && i < net->curr_pairs;

		if (net_tap_set_queue(p->tapfd, on))
			pr_warn("virtio-net: tap queue %u: cannot %s it", i, on ? "attach" : "detach");
		__atomic_store_n(&p->tap_active, on, __ATOMIC_RELAXED);
		net_pair_kick(p); /* the pair thread updates what it polls */
	}
}

static void net_stop(struct virtio_device *vdev)
{
	struct virtio_net *net = vdev->priv;

	for (unsigned i = 0; i < net->max_pairs; i++) {
		struct net_pair *p = &net->pairs[i];

		if (!p->started)
			continue;
		net_pair_stop(p);
		/* Cumulative since creation; integration tests read the last line per pair. */
		pr_info("virtio-net: pair %u: tx %llu packets, rx %llu packets, dropped tx %llu rx %llu",
			i, (unsigned long long)p->st.tx_packets, (unsigned long long)p->st.rx_packets,
			(unsigned long long)(p->st.tx_errors + p->st.tx_dropped),
			(unsigned long long)p->st.rx_dropped);
	}
}

static int net_activate(struct virtio_device *vdev)
{
	struct virtio_net *net = vdev->priv;
	int rc = 0;

	net->mrg = virtio_device_has_feature(vdev, VIRTIO_NET_F_MRG_RXBUF);
	/* A driver that uses the control queue starts with one pair (5.1.6.5.5); a front-end
	 * that keeps the control queue to itself (vhost-user) enables rings instead. */
	net->curr_pairs = virtio_device_vq(vdev, ctrl_idx(net)) ? 1 : net->max_pairs;
	if (!net->loopback &&
	    net_tap_set_offload(net->pairs[0].tapfd, vdev->driver_features, net->tap_offloads))
		pr_warn("virtio-net: tap %s: TUNSETOFFLOAD refused", net->tap);
	for (unsigned i = 0; i < net->max_pairs && !rc; i++) {
		struct net_pair *p = &net->pairs[i];

		p->rxq = virtio_device_vq(vdev, 2 * i);
		p->txq = virtio_device_vq(vdev, 2 * i + 1);
		if (p->rxq || p->txq)
			rc = net_pair_start(p);
	}
	if (rc) {
		pr_err("virtio-net: cannot start the queue pairs: %s", strerror(-rc));
		net_stop(vdev);
		return rc;
	}
	apply_tap_queues(net);
	return 0;
}

/* ---- control queue ---------------------------------------------------------------------- */

static uint8_t ctrl_mq(struct virtio_net *net, uint8_t cmd, const uint8_t *d, size_t len)
{
	uint16_t pairs;

	if (cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || len < 2 ||
	    !virtio_device_has_feature(net->vdev, VIRTIO_NET_F_MQ))
		return VIRTIO_NET_ERR;
	pairs = (uint16_t)(d[0] | d[1] << 8);
	if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > net->max_pairs)
		return VIRTIO_NET_ERR;
	net->curr_pairs = pairs;
	apply_tap_queues(net);
	pr_debug("virtio-net: %u queue pair(s) in use", pairs);
	return VIRTIO_NET_OK;
}

static uint8_t ctrl_exec(struct virtio_net *net, uint8_t cls, uint8_t cmd, const uint8_t *d,
			 size_t len)
{
	bool rx = virtio_device_has_feature(net->vdev, VIRTIO_NET_F_CTRL_RX);

	switch (cls) {
	case VIRTIO_NET_CTRL_RX:
		/* Recorded only: a tap is promiscuous and loopback returns every frame. */
		if (!rx || cmd > VIRTIO_NET_CTRL_RX_ALLMULTI || len < 1)
			return VIRTIO_NET_ERR;
		net->rx_mode[cmd] = d[0];
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MAC:
		/* Two tables, each a 32-bit count and count MACs; accepted, not filtered. */
		return rx && cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET && len >= 8 ? VIRTIO_NET_OK
								       : VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_MQ:
		return ctrl_mq(net, cmd, d, len);
	default:
		return VIRTIO_NET_ERR;
	}
}

/* Runs under vdev->lock (queue_notify). */
static void ctrl_process(struct virtio_net *net)
{
	struct virtio_device *vdev = net->vdev;
	struct virtqueue *vq = virtio_device_vq(vdev, ctrl_idx(net));
	struct vq_elem *e = &net->ctrl_elem;
	bool pushed = false;
	int rc;

	if (!vq)
		return;
	while ((rc = vq_pop(vq, e)) > 0) {
		uint8_t buf[64], ack = VIRTIO_NET_ERR;
		size_t len = net_iov_copy_from(e->iov, e->out_num, 0, buf, sizeof(buf));
		uint32_t written = 0;

		net->ctrl_cmds++;
		if (len >= 2 && e->in_len >= 1) {
			ack = ctrl_exec(net, buf[0], buf[1], buf + 2, len - 2);
			net_iov_copy_to(e->iov + e->out_num, e->in_num, 0, &ack, 1);
			written = 1;
		}
		if (ack != VIRTIO_NET_OK) {
			net->ctrl_errors++;
			pr_debug("virtio-net: control command %u/%u (%zu bytes) refused",
				 len > 0 ? buf[0] : 0, len > 1 ? buf[1] : 0, len);
		}
		if (vq_push(vq, e, written) < 0) {
			rc = -EIO;
			break;
		}
		pushed = true;
	}
	if (pushed)
		virtio_device_notify(vdev, ctrl_idx(net));
	if (rc < 0)
		virtio_device_fail(vdev, ctrl_idx(net), vq_error_name(vq->last_error));
}

static void net_queue_notify(struct virtio_device *vdev, unsigned idx)
{
	struct virtio_net *net = vdev->priv;

	if (idx == ctrl_idx(net))
		ctrl_process(net);
	else if (idx < ctrl_idx(net))
		net_pair_kick(&net->pairs[idx / 2]);
}

/* ---- counters --------------------------------------------------------------------------- */

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

void virtio_net_get_stats(struct virtio_device *vdev, struct virtio_net_stats *st)
{
	struct virtio_net *net = vdev->priv;

	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < net->max_pairs; i++) {
		const struct net_pair_stats *s = &net->pairs[i].st;

		st->tx_packets += LOAD(s->tx_packets);
		st->tx_bytes += LOAD(s->tx_bytes);
		st->rx_packets += LOAD(s->rx_packets);
		st->rx_bytes += LOAD(s->rx_bytes);
		st->tx_errors += LOAD(s->tx_errors);
		st->tx_dropped += LOAD(s->tx_dropped);
		st->rx_dropped += LOAD(s->rx_dropped);
		st->rx_waits += LOAD(s->rx_waits);
	}
	st->ctrl_cmds = LOAD(net->ctrl_cmds);
	st->ctrl_errors = LOAD(net->ctrl_errors);
}

void virtio_net_print_stats(struct virtio_device *vdev, FILE *f)
{
	struct virtio_net_stats s;

	virtio_net_get_stats(vdev, &s);
	fprintf(f, "net: tx %llu packets %llu bytes, rx %llu packets %llu bytes, "
		   "tx errors %llu, tx dropped %llu, rx dropped %llu\n",
		(unsigned long long)s.tx_packets, (unsigned long long)s.tx_bytes,
		(unsigned long long)s.rx_packets, (unsigned long long)s.rx_bytes,
		(unsigned long long)s.tx_errors, (unsigned long long)s.tx_dropped,
		(unsigned long long)s.rx_dropped);
	fflush(f);
}

unsigned virtio_net_active_pairs(struct virtio_device *vdev)
{
	struct virtio_net *net = vdev->priv;

	return LOAD(net->curr_pairs);
}

int virtio_net_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;

	if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
			 &v[5], &end) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return mac[0] & 1 ? -EINVAL : 0; /* a multicast address cannot be a station's */
}

/* ---- creation --------------------------------------------------------------------------- */

static void net_destroy(struct virtio_device *vdev)
{
	struct virtio_net *net = vdev->priv;

	if (!net)
		return;
	net_stop(vdev);
	for (unsigned i = 0; i < net->max_pairs; i++)
		net_pair_fini(&net->pairs[i]);
	free(net->pairs);
	free(net);
	vdev->priv = NULL;
}

static const struct virtio_device_class net_class_template = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.features = F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_INDIRECT_DESC) | F(VIRTIO_F_EVENT_IDX) |
		    F(VIRTIO_F_RING_PACKED) | F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_MRG_RXBUF) |
		    F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX),
	.config_size = offsetof(struct virtio_net_config, mtu),
	.read_config = net_read_config,
	.features_ok = net_features_ok,
	.activate = net_activate,
	.queue_notify = net_queue_notify,
	.reset = net_stop,
	.destroy = net_destroy,
};

static uint64_t tap_features(uint32_t tun)
{
	uint64_t f = 0;

	if (!(tun & TUN_F_CSUM))
		return 0;
	f |= F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM);
	if (tun & TUN_F_TSO4)
		f |= F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO4);
	if (tun & TUN_F_TSO6)
		f |= F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_GUEST_TSO6);
	if (tun & TUN_F_TSO_ECN)
		f |= F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_GUEST_ECN);
	if (tun & TUN_F_UFO)
		f |= F(VIRTIO_NET_F_HOST_UFO) | F(VIRTIO_NET_F_GUEST_UFO);
	return f;
}

static int net_setup_pairs(struct virtio_net *net, const char *tap)
{
	int fds[VIRTIO_MAX_QUEUES / 2];
	int rc;

	for (unsigned i = 0; i < net->max_pairs; i++) {
		net->pairs[i] = (struct net_pair){ .net = net, .idx = i, .evfd = -1, .epfd = -1,
						   .tapfd = -1 };
	}
	if (tap) {
		rc = net_tap_open(tap, net->max_pairs, fds, &net->tap_offloads);
		if (rc)
			return rc;
		for (unsigned i = 0; i < net->max_pairs; i++)
			net->pairs[i].tapfd = fds[i];
	}
	for (unsigned i = 0; i < net->max_pairs; i++) {
		rc = net_pair_init(&net->pairs[i]);
		if (rc)
			return rc;
	}
	return 0;
}

int virtio_net_create(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct virtio_net_opts *o)
{
	unsigned pairs = o->queue_pairs ? o->queue_pairs : 1;
	unsigned qsize = o->queue_size ? o->queue_size : 256;
	struct virtio_net *net;
	int rc;

	if (!o->loopback == !o->tap || pairs > (VIRTIO_MAX_QUEUES - 1) / 2 || qsize > VQ_MAX_SIZE ||
	    (qsize & (qsize - 1)) || (o->tap && strlen(o->tap) >= sizeof(net->tap)))
		return -EINVAL;
	net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	net->pairs = calloc(pairs, sizeof(*net->pairs));
	net->max_pairs = pairs;
	if (!net->pairs) {
		free(net);
		return -ENOMEM;
	}
	net->loopback = o->loopback;
	net->qsize = qsize;
	net->poll_us = o->poll_us;
	net->curr_pairs = pairs;
	memcpy(net->mac, o->mac ? o->mac : default_mac, 6);
	if (o->tap)
		strcpy(net->tap, o->tap);
	net->vdev = vdev;
	vdev->priv = net;
	rc = net_setup_pairs(net, o->tap);
	if (rc)
		goto fail;
	net->cls = net_class_template;
	net->cls.features |= tap_features(net->tap_offloads);
	if (pairs > 1)
		net->cls.features |= F(VIRTIO_NET_F_MQ);
	net->cls.num_queues = 2 * pairs + 1;
	net->cls.queue_max_size = qsize;
	rc = virtio_device_init(vdev, &net->cls, gm, net);
	if (rc)
		goto fail;
	return 0;
fail:
	net_destroy(vdev);
	return rc;
}
