/* virtio-rng: each device-writable buffer the driver posts on the request queue is filled
 * with bytes from getrandom() and returned. The whole device is this file: the status
 * machine, feature negotiation and queue set-up are in src/virtio/device.c. A broken chain
 * makes the device ask for a reset (virtio_device_fail), never crashes it.
 */
#include "devices/virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <linux/virtio_ids.h>

#include "util/log.h"

struct virtio_rng {
	struct vq_elem elem; /* ~24 KiB: kept here rather than on the kicking thread's stack */
};

/* Fill the writable buffers of e in order, up to VIRTIO_RNG_MAX_REQUEST bytes. Returns how
 * many bytes were written (the prefix of the writable buffers). */
static uint32_t rng_fill(const struct vq_elem *e)
{
	uint32_t done = 0;

	for (unsigned i = e->out_num; i < e->out_num + e->in_num; i++) {
		uint8_t *p = e->iov[i].iov_base;
		size_t left = e->iov[i].iov_len;

		if (left > VIRTIO_RNG_MAX_REQUEST - done)
			left = VIRTIO_RNG_MAX_REQUEST - done;
		while (left) {
			ssize_t n = getrandom(p, left, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				pr_warn("virtio-rng: getrandom: %s", strerror(errno));
				return done;
			}
			p += n;
			left -= (size_t)n;
			done += (uint32_t)n;
		}
		if (done >= VIRTIO_RNG_MAX_REQUEST)
			break;
	}
	return done;
}

/* The driver kicked the request queue (runs under vdev->lock). */
static void rng_queue_notify(struct virtio_device *vdev, unsigned idx)
{
	struct virtio_rng *rng = vdev->priv;
	struct virtqueue *vq = virtio_device_vq(vdev, idx);
	bool pushed = false;
	int ret;

	if (!vq)
		return;
	while ((ret = vq_pop(vq, &rng->elem)) > 0) {
		if (rng->elem.out_num)
			pr_debug("virtio-rng: request %u has device-readable buffers: ignored",
				 rng->elem.id);
		if (vq_push(vq, &rng->elem, rng_fill(&rng->elem)) < 0) {
			ret = -EIO;
			break;
		}
		pushed = true;
	}
	if (pushed)
		virtio_device_notify(vdev, idx);
	if (ret < 0)
		virtio_device_fail(vdev, idx, vq_error_name(vq->last_error));
}

static void rng_destroy(struct virtio_device *vdev)
{
	free(vdev->priv);
	vdev->priv = NULL;
}

static const struct virtio_device_class virtio_rng_class = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
		    (1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_F_RING_PACKED),
	.num_queues = 1,
	.queue_max_size = 256,
	.config_size = 0,
	.queue_notify = rng_queue_notify,
	.destroy = rng_destroy,
};

int virtio_rng_create(struct virtio_device *vdev, struct guest_memory *gm)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));
	int ret;

	if (!rng)
		return -ENOMEM;
	ret = virtio_device_init(vdev, &virtio_rng_class, gm, rng);
	if (ret < 0)
		free(rng);
	return ret;
}
