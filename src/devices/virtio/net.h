/* virtio-net (virtio 1.2, 5.1): an Ethernet device with one or more queue pairs and a
 * control queue, behind the device-ops interface (S1).
 *
 * Two host sides: a tap interface (--tap NAME: IFF_VNET_HDR, the offloads the tap accepts,
 * one tap queue per pair with IFF_MULTI_QUEUE) and loopback (the S1 mvnet sample: what the
 * guest transmits on pair i comes back on the receive queue of pair i). Each pair has its own
 * thread; kicks reach it through an eventfd, the tap through its fd, so nothing busy-waits
 * unless poll_us asks for a short adaptive polling window after work.
 */
#ifndef VIREO_DEVICES_VIRTIO_NET_H
#define VIREO_DEVICES_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "memory/guest_memory.h"
#include "virtio/device_ops.h"

/* Bytes of the header in front of each packet: struct virtio_net_hdr_v1 (VERSION_1 is always
 * negotiated, so the header always carries num_buffers). */
#define VIRTIO_NET_HDR_LEN 12u
/* Largest frame (without the header) the device moves; larger ones are dropped and counted. */
#define VIRTIO_NET_MAX_FRAME 65536u
/* Receive chains one packet may use with mergeable buffers (more: dropped and counted). */
#define VIRTIO_NET_MAX_RX_BUFS 64u

struct virtio_net_opts {
	const char *tap;        /* tap interface name (created if missing), or NULL */
	bool loopback;          /* exactly one of tap / loopback */
	unsigned queue_pairs;   /* 0: 1 */
	unsigned queue_size;    /* 0: 256 */
	const uint8_t *mac;     /* NULL: 52:54:00:76:69:72 */
	unsigned poll_us;       /* keep polling this long after the last packet (0: never) */
};

/* Counters over all pairs, from the guest's point of view: tx = guest to host. */
struct virtio_net_stats {
	uint64_t tx_packets, tx_bytes;   /* frames taken from the transmit queues */
	uint64_t rx_packets, rx_bytes;   /* frames put on the receive queues */
	uint64_t tx_errors;              /* tx chains refused: shorter than the header, oversized */
	uint64_t tx_dropped;             /* valid frames the host side refused (tap write error) */
	uint64_t rx_dropped;             /* frames that did not fit the receive buffers */
	uint64_t rx_waits;               /* times a pair waited for receive buffers */
	uint64_t ctrl_cmds, ctrl_errors; /* control queue commands, and those answered ERR */
};

/* Set up vdev as a virtio-net device on guest memory gm. Opens the tap (or fails with its
 * -errno: -EINVAL for bad options). virtio_device_destroy(vdev) frees everything. */
int virtio_net_create(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct virtio_net_opts *o);
/* Sum of the per-pair counters (consistent enough: each counter is read atomically). */
void virtio_net_get_stats(struct virtio_device *vdev, struct virtio_net_stats *st);
/* One line "net: tx P packets B bytes, rx P packets B bytes, ..." to f. */
void virtio_net_print_stats(struct virtio_device *vdev, FILE *f);
/* Queue pairs the driver enabled with VIRTIO_NET_CTRL_MQ (all of them when the control queue
 * is not in use, as with vhost-user front-ends that handle it themselves). */
unsigned virtio_net_active_pairs(struct virtio_device *vdev);

/* Parse "aa:bb:cc:dd:ee:ff". Returns 0 or -EINVAL. */
int virtio_net_parse_mac(const char *s, uint8_t mac[6]);

#endif
