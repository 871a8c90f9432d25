/* virtio-net (virtio 1.2, 5.1): a tap device, or loopback (the S1 sample: what the guest
 * transmits comes back on its own receive queue). */
#ifndef VIREO_DEVICES_VIRTIO_NET_H
#define VIREO_DEVICES_VIRTIO_NET_H

#include <stdbool.h>

#include "memory/guest_memory.h"
#include "virtio/device_ops.h"

#define VIRTIO_NET_DEFAULT_QUEUE_SIZE 256

struct virtio_net_config_opts {
	const char *tap;      /* tap interface name (created if missing); NULL with loopback */
	bool loopback;
	unsigned queue_pairs; /* 0: 1 */
	unsigned queue_size;  /* 0: VIRTIO_NET_DEFAULT_QUEUE_SIZE */
	const char *mac;      /* "52:54:00:12:34:56" form; NULL: that default */
};

/* Set vdev up as a virtio-net device on gm: queues rx0, tx0, rx1, tx1, ..., then the
 * control queue. One thread per queue pair once the driver starts the device. */
int virtio_net_create(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct virtio_net_config_opts *opts);

#endif
