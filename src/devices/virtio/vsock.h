/* virtio-vsock (virtio 1.2, 5.10; S11): guest sockets (AF_VSOCK, STREAM) bridged to Unix
 * sockets on the host, in the convention Firecracker and Cloud Hypervisor use:
 *   - host -> guest: a host process connects to the Unix socket `uds`, writes
 *     "CONNECT <port>\n", is answered "OK <assigned host port>\n", and from then on the
 *     stream is the guest connection to <port>;
 *   - guest -> host: a guest connecting to host (cid 2) port P reaches a listener at
 *     "<uds>_<P>".
 * Queues: 0 receive, 1 transmit, 2 event (TRANSPORT_RESET). vhost-user front-ends such as
 * QEMU keep the event queue to themselves: the device works with only queues 0 and 1.
 */
#ifndef VIREO_DEVICES_VIRTIO_VSOCK_H
#define VIREO_DEVICES_VIRTIO_VSOCK_H

#include <stdint.h>

#include "devices/virtio/vsock_proto.h"
#include "memory/guest_memory.h"
#include "virtio/device_ops.h"

#define VIRTIO_VSOCK_DEFAULT_QUEUE_SIZE 256
#define VIRTIO_VSOCK_BUF_ALLOC (1u << 20) /* credit we give the guest per connection */

/* The longest uds: "<uds>_<port>" must fit a sockaddr_un path. */
#define VIRTIO_VSOCK_UDS_MAX 95

struct virtio_vsock_config_opts {
	uint64_t guest_cid;   /* 3 .. 0xffffffff-1 */
	const char *uds;      /* the host-side Unix socket path, VIRTIO_VSOCK_UDS_MAX at most */
	unsigned queue_size;  /* 0: VIRTIO_VSOCK_DEFAULT_QUEUE_SIZE */
	/* 0: the defaults. Connect: the guest's answer to our REQUEST, a host client's CONNECT
	 * line. Close: the guest's RST after our SHUTDOWN RCV|SEND, flushing to a host peer after
	 * the guest closed. */
	unsigned connect_timeout_ms, close_timeout_ms;
};
#define VIRTIO_VSOCK_CONNECT_TIMEOUT_MS 5000
#define VIRTIO_VSOCK_CLOSE_TIMEOUT_MS   8000

/* What the device counted; read with virtio_vsock_stats(). */
struct virtio_vsock_stats {
	uint64_t tx_pkts, rx_pkts;        /* packets from / to the guest */
	uint64_t tx_bytes, rx_bytes;      /* payload bytes guest->host, host->guest */
	uint64_t conns_opened, conns_closed, conns_active;
	uint64_t rst_sent, rst_dropped;   /* RST to the guest; RSTs lost (queue of them full) */
	uint64_t malformed;               /* packets dropped, all reasons */
	uint64_t err[VSOCK_ERR_COUNT];    /* by reason */
	uint64_t host_refused;            /* guest REQUEST with nobody listening at <uds>_<port> */
};

/* Set up vdev as a virtio-vsock device: creates (replaces) the Unix socket opts->uds and
 * listens on it. Returns 0 or -errno. virtio_device_destroy(vdev) closes everything and
 * removes the socket. */
int virtio_vsock_create(struct virtio_device *vdev, struct guest_memory *gm,
			const struct virtio_vsock_config_opts *opts);
/* A consistent copy of the counters (any thread). */
void virtio_vsock_stats(struct virtio_device *vdev, struct virtio_vsock_stats *st);
/* Log the counters (one line; errors by reason when there are any). */
void virtio_vsock_log_stats(struct virtio_device *vdev);

#endif
