/* The device-ops interface (S1): everything a virtio transport needs from a device, and
 * nothing about which kind of device it is.
 *
 *   virtio-pci (VMM) ----\                         /--- in-process device (virtio_device +
 *                         >-- struct virtio_device_ops   a virtio_device_class: blk, net, rng...)
 *   vhost-user server ---/                         \--- vhost-user frontend (device in another
 *                                                        process)
 *
 * A transport holds a `struct virtio_dev_handle` (ops + opaque device) and calls the ops as
 * the driver programs it. The ops follow the seed's virtio_mdev_device_ops; vq state is the
 * vring base. Queue callbacks are how the device asks the transport to interrupt the driver.
 *
 * For in-process devices, src/virtio/device.c implements these ops once (status state
 * machine, feature negotiation, queue set-up through virtqueue.h, reset) on top of a smaller
 * per-kind `struct virtio_device_class`, so a device file holds only its own logic.
 *
 * Rules the in-process ops enforce (virtio 1.2, 3.1):
 *   - status: ACKNOWLEDGE -> DRIVER -> FEATURES_OK -> DRIVER_OK. A bit written before its
 *     predecessor is dropped (it reads back clear); FEATURES_OK is kept only when the accepted
 *     features are a subset of the offered ones, include VERSION_1 and the class's features_ok
 *     agrees. Writing 0 resets; clearing any other bit is refused; FAILED is always accepted.
 *     NEEDS_RESET belongs to the device (virtio_device_fail) and only a reset clears it.
 *   - set_features: only before FEATURES_OK (-EBUSY after, features unchanged).
 *   - queue num/address/state: only before DRIVER_OK and while the queue is not ready
 *     (-EBUSY); num in 1..max, a power of two unless RING_PACKED was accepted (-EINVAL).
 *   - set_vq_ready(true): only after FEATURES_OK and before DRIVER_OK; the rings are checked
 *     by vq_setup, a refused ring leaves the queue not ready (-EINVAL, logged).
 *   - kick_vq: acted on only when DRIVER_OK is set, NEEDS_RESET/FAILED are not, and the queue
 *     is ready; otherwise (and for an out-of-range idx) ignored.
 *   - reset: the class stops, queues are cleared (size back to max), status and features 0.
 *     Callbacks set by the transport (set_vq_cb, set_config_cb) survive a reset.
 *
 * Threads and locks (in-process devices): every op takes vdev->lock (a recursive mutex) for
 * its whole run, so a transport may call them from any thread (vCPU threads for MMIO/PIO,
 * an ioeventfd thread for kicks, the vhost-user server's loop) without locking of its own.
 * kick_vq runs the class's queue_notify under vdev->lock: a reset cannot pull the queue away
 * mid-request, and devices keep queue_notify short (hand long work to their own threads).
 * A device thread that touches a queue outside queue_notify (an I/O completion pushing used
 * entries) either holds vdev->lock while it does, or is stopped by the class's reset before
 * that returns; a virtqueue itself has no lock (one user at a time, see virtqueue.h).
 * Devices call virtio_device_notify/fail/config_changed with or without the lock held (it is
 * recursive). The queue and config callbacks therefore run under vdev->lock: they must only
 * signal (irqfd write, KVM_IRQ_LINE, eventfd) and never call back into the ops from another
 * thread or take a lock the transport holds while calling ops (that would be an ABBA deadlock).
 */
#ifndef VIREO_VIRTIO_DEVICE_OPS_H
#define VIREO_VIRTIO_DEVICE_OPS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "memory/guest_memory.h"
#include "virtio/virtqueue.h"

/* Device status bits (virtio 1.2, 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE  1u
#define VIRTIO_STATUS_DRIVER       2u
#define VIRTIO_STATUS_DRIVER_OK    4u
#define VIRTIO_STATUS_FEATURES_OK  8u
#define VIRTIO_STATUS_NEEDS_RESET  64u
#define VIRTIO_STATUS_FAILED       128u

/* Transport-independent feature bits. */
#define VIRTIO_F_INDIRECT_DESC     28
#define VIRTIO_F_EVENT_IDX         29
#define VIRTIO_F_VERSION_1         32
#define VIRTIO_F_ACCESS_PLATFORM   33
#define VIRTIO_F_RING_PACKED       34
#define VIRTIO_F_IN_ORDER          35
#define VIRTIO_F_ORDER_PLATFORM    36
#define VIRTIO_F_NOTIFICATION_DATA 38

#define VIRTIO_MAX_QUEUES 64

struct virtio_vq_state { uint16_t last_avail_idx, used_idx; }; /* vring base */

typedef void (*virtio_vq_cb)(void *opaque, unsigned idx); /* "interrupt the driver" */
typedef void (*virtio_config_cb)(void *opaque);         /* "config space changed" */

struct virtio_device_ops {
	uint64_t (*get_features)(void *dev);            /* offered by the device */
	int (*set_features)(void *dev, uint64_t features); /* accepted by the driver */
	int (*set_vq_address)(void *dev, unsigned idx, uint64_t desc, uint64_t driver,
			      uint64_t device);
	int (*set_vq_num)(void *dev, unsigned idx, unsigned num);
	unsigned (*get_vq_num_max)(void *dev, unsigned idx); /* 0: no such queue */
	void (*kick_vq)(void *dev, unsigned idx);
	void (*set_vq_cb)(void *dev, unsigned idx, virtio_vq_cb cb, void *opaque);
	int (*set_vq_ready)(void *dev, unsigned idx, bool ready);
	bool (*get_vq_ready)(void *dev, unsigned idx);
	int (*get_vq_state)(void *dev, unsigned idx, struct virtio_vq_state *st);
	int (*set_vq_state)(void *dev, unsigned idx, const struct virtio_vq_state *st);
	/* Config space: out-of-range parts read as zero / are ignored (clipped). */
	void (*get_config)(void *dev, unsigned offset, void *buf, unsigned len);
	void (*set_config)(void *dev, unsigned offset, const void *buf, unsigned len);
	unsigned (*get_config_size)(void *dev);
	void (*set_config_cb)(void *dev, virtio_config_cb cb, void *opaque);
	uint8_t (*get_status)(void *dev);
	void (*set_status)(void *dev, uint8_t status);
	uint32_t (*get_generation)(void *dev);          /* optional: NULL means always 0 */
	uint32_t (*get_vendor_id)(void *dev);
	uint32_t (*get_device_id)(void *dev);
	unsigned (*get_num_queues)(void *dev);
	void (*reset)(void *dev);
	/* Optional (NULL: the transport remembers what it set): what set_features stored. */
	uint64_t (*get_driver_features)(void *dev);
};

struct virtio_dev_handle {
	const struct virtio_device_ops *ops;
	void *dev;
};

/* ---- In-process devices ---------------------------------------------------------------- */

struct virtio_device;

/* What one kind of device supplies; src/virtio/device.c does the rest. */
struct virtio_device_class {
	const char *name;        /* "blk", "net", "rng", "vsock": used in logs */
	uint32_t device_id;      /* VIRTIO_ID_* */
	uint64_t features;       /* device features, including transport bits it supports */
	unsigned num_queues;
	unsigned queue_max_size;
	unsigned config_size;
	/* Config space reads/writes, offset/len already clipped to config_size. */
	void (*read_config)(struct virtio_device *vdev, unsigned offset, void *buf, unsigned len);
	void (*write_config)(struct virtio_device *vdev, unsigned offset, const void *buf,
			     unsigned len);
	/* Driver accepted these features (FEATURES_OK about to be set); -errno refuses. */
	int (*features_ok)(struct virtio_device *vdev, uint64_t features);
	/* DRIVER_OK set: queues are ready; start processing. */
	int (*activate)(struct virtio_device *vdev);
	/* The driver kicked queue idx (may be called from any thread). */
	void (*queue_notify)(struct virtio_device *vdev, unsigned idx);
	/* Stop all processing and drop in-flight state: called on reset before queues clear.
	 * When it returns, no thread of the device touches the queues any more. May be called
	 * twice in a row (virtio_device_quiesce, then the reset). */
	void (*reset)(struct virtio_device *vdev);
	/* Optional: free vdev->priv; called by virtio_device_destroy() after reset. */
	void (*destroy)(struct virtio_device *vdev);
	/* (addition) Optional: queue idx's kick arrives on eventfd fd (a vhost-user kick fd, a
	 * KVM ioeventfd), which the device's own thread may poll instead of waiting for
	 * queue_notify. Called before activate; true when the device will read fd itself from
	 * activate until its reset, which forgets fd (the caller keeps owning it). fd -1: none. */
	bool (*queue_kick_fd)(struct virtio_device *vdev, unsigned idx, int fd);
};

struct virtio_queue_slot {
	struct virtqueue vq;
	unsigned num;                 /* size set by the driver */
	uint64_t desc, driver, device;/* ring addresses set by the driver */
	bool ready;
	virtio_vq_cb cb;
	void *cb_opaque;
	struct virtio_vq_state base;  /* base set before the queue was made ready */
	bool base_set;                /* else the rings start fresh (packed: wrap counters 1) */
};

struct virtio_device {
	const struct virtio_device_class *cls;
	struct guest_memory *gm;
	const struct vq_iotlb *iotlb; /* optional translation in front of gm (S10) */
	pthread_mutex_t lock;         /* recursive; held by every op (see the top of this file) */
	uint8_t status;
	uint32_t generation;
	uint64_t driver_features;
	struct virtio_queue_slot queues[VIRTIO_MAX_QUEUES];
	virtio_config_cb config_cb;
	void *config_cb_opaque;
	void *priv;                   /* the device kind's state */
	bool quiesced;                /* virtio_device_quiesce() until the next reset */
	unsigned refusals;            /* driver mistakes logged so far (virtio_device_log) */
};

/* The ops for in-process devices: transports use {&virtio_device_ops_inproc, vdev}. */
extern const struct virtio_device_ops virtio_device_ops_inproc;

/* Checks the class (1..VIRTIO_MAX_QUEUES queues, max size 1..VQ_MAX_SIZE); -EINVAL or 0.
 * virtio_device_destroy() resets the device, calls cls->destroy and frees the lock. */
int virtio_device_init(struct virtio_device *vdev, const struct virtio_device_class *cls,
		       struct guest_memory *gm, void *priv);
void virtio_device_destroy(struct virtio_device *vdev);
static inline struct virtio_dev_handle virtio_device_handle(struct virtio_device *vdev)
{
	return (struct virtio_dev_handle){ &virtio_device_ops_inproc, vdev };
}
/* For devices: the queue idx's virtqueue (NULL when idx is out of range or not ready), and
 * "notify the driver about queue idx" (calls the queue's cb when vq_should_notify agrees).
 * virtio_device_fail() sets NEEDS_RESET after a broken chain, logs device, queue and why
 * (idx >= num_queues: not about one queue), and calls the config callback, once until reset.
 * virtio_device_config_changed(): the device changed its config space: bumps the generation
 * and calls the config callback. */
struct virtqueue *virtio_device_vq(struct virtio_device *vdev, unsigned idx);
void virtio_device_notify(struct virtio_device *vdev, unsigned idx);
void virtio_device_fail(struct virtio_device *vdev, unsigned idx, const char *why);
void virtio_device_config_changed(struct virtio_device *vdev);
bool virtio_device_has_feature(const struct virtio_device *vdev, unsigned bit);
/* (addition) Log a driver's mistake (a refused status, feature set, queue set-up or request,
 * a broken chain) at lvl (a log.h level) the first VIRTIO_DEVICE_LOUD times in the device's
 * life, at debug level after that: a hostile driver may repeat one as fast as it likes and
 * must not flood the host's logs. Any thread, no lock needed. */
#define VIRTIO_DEVICE_LOUD 16
void virtio_device_log(struct virtio_device *vdev, int lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* For a vhost-user server in front of an in-process device (dev is the struct virtio_device).
 * set_iotlb: put an IOTLB in front of guest memory for queues made ready from now on (NULL:
 * none). remap_queues: the memory map or IOTLB changed under live queues: vq_remap() each ready
 * queue (same addresses, indices and in-flight requests kept); a queue whose rings are no
 * longer reachable fails the device (NEEDS_RESET). Returns 0 or -EIO. Both take vdev->lock. */
void virtio_device_set_iotlb(void *dev, const struct vq_iotlb *iotlb);
int virtio_device_remap_queues(void *dev);
/* Stop the device's processing (the class's reset: in-flight work completes or is dropped)
 * while the queues stay as they are, so get_vq_state still reads the live indices (vhost-user
 * GET_VRING_BASE). Kicks stay ignored until the next reset and set-up. Takes vdev->lock. */
void virtio_device_quiesce(void *dev);
/* (addition) Offer queue idx's kick eventfd to the device (cls->queue_kick_fd): true when the
 * device reads it itself from DRIVER_OK until the next reset, so the transport need not poll
 * it. Call before DRIVER_OK. Takes vdev->lock. */
bool virtio_device_set_kick_fd(void *dev, unsigned idx, int fd);

#endif
