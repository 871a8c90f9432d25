/* Private to virtio-net (net.c: the device class and control queue; net_dp.c: the pair
 * threads and data path; net_tap.c: the tap). */
#ifndef VIREO_DEVICES_VIRTIO_NET_INTERNAL_H
#define VIREO_DEVICES_VIRTIO_NET_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/virtio/net.h"

#define NET_TX_BUDGET 64 /* tx frames per round before the pair looks at other work */
#define NET_RX_BUDGET 64 /* tap frames per round */
/* Receive chains held before a push; a frame starts only with VIRTIO_NET_MAX_RX_BUFS free. */
#define NET_RX_SLOTS (2 * VIRTIO_NET_MAX_RX_BUFS)

struct net_pair_stats { /* written by the pair thread only, read with relaxed atomics */
	uint64_t tx_packets, tx_bytes, rx_packets, rx_bytes;
	uint64_t tx_errors, tx_dropped, rx_dropped, rx_waits;
};

struct net_pair {
	struct virtio_net *net;
	unsigned idx;                  /* rx queue 2*idx, tx queue 2*idx+1 */
	struct virtqueue *rxq, *txq;   /* NULL when the driver did not set that queue up */
	int evfd;                      /* kicks of either queue, and "stop" */
	int epfd;                      /* evfd and the tap fd */
	int tapfd;                     /* -1 in loopback mode */
	pthread_t thread;
	bool started;
	volatile bool stop;
	bool broken;                   /* a queue is broken: wait for the reset */
	uint32_t tap_events;           /* what epfd waits for on the tap fd (0: not in the set) */
	bool tap_active;               /* the tap queue is attached (written by net.c) */
	bool tap_error;                /* the last tap read failed (not EAGAIN): wait for a kick */
	bool tx_stalled;               /* loopback: tx waits for rx buffers; tap: for EPOLLOUT */
	bool rx_starved;               /* no receive buffers: rx kicks enabled */
	struct vq_elem *tx_elems;      /* NET_TX_BUDGET chains taken this round */
	const struct vq_elem *tx_ptrs[NET_TX_BUDGET];
	uint32_t tx_written[NET_TX_BUDGET]; /* all 0: the device writes nothing into tx chains */
	struct vq_elem *rx_elems;      /* NET_RX_SLOTS chains being filled */
	const struct vq_elem *rx_ptrs[NET_RX_SLOTS];
	uint32_t rx_written[NET_RX_SLOTS];
	unsigned rx_count;             /* chains popped and filled, not yet pushed */
	uint8_t *bounce;               /* tap rx: the part of a frame beyond the first chain */
	struct iovec riov[VQ_MAX_IOV + 1];
	struct net_pair_stats st;
};

struct virtio_net {
	struct virtio_device_class cls;
	struct virtio_device *vdev;
	char tap[16];
	bool loopback;
	unsigned max_pairs, qsize, poll_us;
	uint8_t mac[6];
	uint32_t tap_offloads;         /* TUN_F_* the tap accepts */
	bool mrg;                      /* VIRTIO_NET_F_MRG_RXBUF negotiated */
	unsigned curr_pairs;           /* VIRTIO_NET_CTRL_MQ */
	uint8_t rx_mode[6];            /* VIRTIO_NET_CTRL_RX_* values (recorded, tap is promisc) */
	uint64_t ctrl_cmds, ctrl_errors;
	struct vq_elem ctrl_elem;
	struct net_pair *pairs;
};

/* net_dp.c */
int net_pair_init(struct net_pair *p);           /* allocations, evfd, epfd */
void net_pair_fini(struct net_pair *p);
int net_pair_start(struct net_pair *p);          /* rxq/txq set: start the thread */
void net_pair_stop(struct net_pair *p);          /* join; pending rx chains given back */
void net_pair_kick(struct net_pair *p);

/* net_tap.c */
int net_tap_open(const char *name, unsigned nqueues, int *fds, uint32_t *offloads);
int net_tap_set_offload(int fd, uint64_t guest_features, uint32_t possible);
int net_tap_set_queue(int fd, bool attach);

/* Copy helpers shared by the data path and the control queue. */
size_t net_iov_copy_from(const struct iovec *iov, unsigned n, size_t off, void *buf,
			 size_t len);
size_t net_iov_copy_to(const struct iovec *iov, unsigned n, size_t off, const void *buf,
		       size_t len);

#endif
