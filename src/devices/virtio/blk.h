/* virtio-blk (virtio 1.2, 5.2) on a host file or block device, I/O through io_uring. */
#ifndef VIREO_DEVICES_VIRTIO_BLK_H
#define VIREO_DEVICES_VIRTIO_BLK_H

#include <stdbool.h>

#include "memory/guest_memory.h"
#include "virtio/device_ops.h"

#define VIRTIO_BLK_DEFAULT_QUEUE_SIZE 256
#define VIRTIO_BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per discard/write-zeroes */

struct virtio_blk_config_opts {
	const char *path;
	bool readonly;
	bool direct;          /* O_DIRECT */
	const char *serial;   /* GET_ID string; NULL: the file's base name */
	unsigned num_queues;  /* 0: 1 */
	unsigned queue_size;  /* 0: VIRTIO_BLK_DEFAULT_QUEUE_SIZE */
};

/* Open the image and set vdev up as a virtio-blk device on gm. Each queue gets its own I/O
 * thread and io_uring once the driver starts the device. Returns 0 or -errno (logged). */
int virtio_blk_create(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct virtio_blk_config_opts *opts);

#endif
