/* virtio-rng (virtio 1.2, 5.4): an entropy source for the guest, one request queue. */
#ifndef VIREO_DEVICES_VIRTIO_RNG_H
#define VIREO_DEVICES_VIRTIO_RNG_H

#include "memory/guest_memory.h"
#include "virtio/device_ops.h"

/* At most this many bytes are written into one request (the device may write fewer than the
 * buffers hold; the used length says how many), so a huge chain cannot stall a kick. */
#define VIRTIO_RNG_MAX_REQUEST (64u * 1024)

/* Set up vdev as a virtio-rng device on guest memory gm. Transports then use
 * virtio_device_handle(vdev); virtio_device_destroy(vdev) frees it. Returns 0 or -errno. */
int virtio_rng_create(struct virtio_device *vdev, struct guest_memory *gm);

#endif
