/* The device-ops for in-process devices: the status state machine of virtio 1.2 section 3.1,
 * feature negotiation, queue set-up through virtqueue.h, config space clipping and reset,
 * written once here so that each device kind (struct virtio_device_class) holds only its
 * own logic. Transports reach this through virtio_device_ops_inproc and never learn which
 * kind of device sits behind it. The rules and the locking are documented in device_ops.h.
 */
#include "virtio/device_ops.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* The virtio PCI vendor ID (Red Hat / Qumranet): what guests' virtio drivers expect. */
#define VIREO_VIRTIO_VENDOR_ID 0x1af4u

#define STATUS_DRIVER_BITS (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | \
			    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK | \
			    VIRTIO_STATUS_FAILED)

static inline struct virtio_device *to_vdev(void *dev)
{
	return dev;
}

/* A refusal the driver caused: loud for the first few only (virtio_device_log). */
#define vdev_warn(vdev, ...) virtio_device_log(vdev, LOG_WARN, __VA_ARGS__)

static void vdev_lock(struct virtio_device *vdev)
{
	pthread_mutex_lock(&vdev->lock);
}

static void vdev_unlock(struct virtio_device *vdev)
{
	pthread_mutex_unlock(&vdev->lock);
}

static bool is_pow2(unsigned n)
{
	return n && !(n & (n - 1));
}

static bool feature_set(uint64_t features, unsigned bit)
{
	return bit < 64 && (features & (1ull << bit));
}

/* The slot for idx, or NULL when the device has no such queue. */
static struct virtio_queue_slot *slot_of(struct virtio_device *vdev, unsigned idx)
{
	if (idx >= vdev->cls->num_queues)
		return NULL;
	return &vdev->queues[idx];
}

static void slot_clear(struct virtio_device *vdev, struct virtio_queue_slot *q)
{
	virtio_vq_cb cb = q->cb;
	void *opaque = q->cb_opaque;

	if (q->ready)
		vq_reset(&q->vq);
	memset(q, 0, sizeof(*q));
	q->num = vdev->cls->queue_max_size;
	q->cb = cb;
	q->cb_opaque = opaque;
}

/* Queue configuration may change only before DRIVER_OK and while the queue is not live. */
static int slot_configurable(struct virtio_device *vdev, struct virtio_queue_slot *q,
			     unsigned idx, const char *what)
{
	if (!q) {
		vdev_warn(vdev, "virtio-%s: %s of queue %u: no such queue", vdev->cls->name, what, idx);
		return -EINVAL;
	}
	if ((vdev->status & VIRTIO_STATUS_DRIVER_OK) || q->ready) {
		vdev_warn(vdev, "virtio-%s: %s of queue %u refused: queue is live", vdev->cls->name, what,
			idx);
		return -EBUSY;
	}
	return 0;
}

/* ---- features ----------------------------------------------------------------------- */

static uint64_t op_get_features(void *dev)
{
	return to_vdev(dev)->cls->features;
}

static int op_set_features(void *dev, uint64_t features)
{
	struct virtio_device *vdev = to_vdev(dev);
	int ret = 0;

	vdev_lock(vdev);
	if (vdev->status & VIRTIO_STATUS_FEATURES_OK) {
		vdev_warn(vdev, "virtio-%s: features 0x%llx written after FEATURES_OK: ignored",
			vdev->cls->name, (unsigned long long)features);
		ret = -EBUSY;
	} else {
		/* Checked against the offer when the driver sets FEATURES_OK: a transport may
		 * write the two 32-bit halves one after the other. */
		vdev->driver_features = features;
	}
	vdev_unlock(vdev);
	return ret;
}

static uint64_t op_get_driver_features(void *dev)
{
	struct virtio_device *vdev = to_vdev(dev);
	uint64_t f;

	vdev_lock(vdev);
	f = vdev->driver_features;
	vdev_unlock(vdev);
	return f;
}

/* Whether FEATURES_OK may be set for the features the driver accepted. */
static bool features_acceptable(struct virtio_device *vdev)
{
	uint64_t f = vdev->driver_features;
	uint64_t extra = f & ~vdev->cls->features;
	int ret;

	if (extra) {
		vdev_warn(vdev, "virtio-%s: driver accepted features 0x%llx that were not offered",
			vdev->cls->name, (unsigned long long)extra);
		return false;
	}
	if (!feature_set(f, VIRTIO_F_VERSION_1)) {
		vdev_warn(vdev, "virtio-%s: driver did not accept VERSION_1 (legacy drivers unsupported)",
			vdev->cls->name);
		return false;
	}
	if (vdev->cls->features_ok) {
		ret = vdev->cls->features_ok(vdev, f);
		if (ret < 0) {
			vdev_warn(vdev, "virtio-%s: device refused features 0x%llx: %s", vdev->cls->name,
				(unsigned long long)f, strerror(-ret));
			return false;
		}
	}
	return true;
}

/* ---- status -------------------------------------------------------------------------- */

static void device_reset_locked(struct virtio_device *vdev)
{
	if (vdev->cls->reset)
		vdev->cls->reset(vdev);
	for (unsigned i = 0; i < vdev->cls->num_queues; i++)
		slot_clear(vdev, &vdev->queues[i]);
	vdev->status = 0;
	vdev->driver_features = 0;
	vdev->quiesced = false;
}

/* Whether bit, about to be added, has its predecessor in the new status (3.1.1). */
static bool status_bit_allowed(struct virtio_device *vdev, uint8_t bit, uint8_t next)
{
	switch (bit) {
	case VIRTIO_STATUS_ACKNOWLEDGE:
	case VIRTIO_STATUS_FAILED:
		return true;
	case VIRTIO_STATUS_DRIVER:
		return next & VIRTIO_STATUS_ACKNOWLEDGE;
	case VIRTIO_STATUS_FEATURES_OK:
		return (next & VIRTIO_STATUS_DRIVER) && features_acceptable(vdev);
	case VIRTIO_STATUS_DRIVER_OK:
		return next & VIRTIO_STATUS_FEATURES_OK;
	}
	return false;
}

static void driver_ok_locked(struct virtio_device *vdev)
{
	char why[64];
	int ret = 0;

	if (vdev->cls->activate)
		ret = vdev->cls->activate(vdev);
	if (ret < 0) {
		snprintf(why, sizeof(why), "activation failed: %s", strerror(-ret));
		virtio_device_fail(vdev, ~0u, why);
	}
}

static void op_set_status(void *dev, uint8_t status)
{
	static const uint8_t order[] = { VIRTIO_STATUS_ACKNOWLEDGE, VIRTIO_STATUS_DRIVER,
					 VIRTIO_STATUS_FEATURES_OK, VIRTIO_STATUS_DRIVER_OK,
					 VIRTIO_STATUS_FAILED };
	struct virtio_device *vdev = to_vdev(dev);
	uint8_t old, want, next;

	vdev_lock(vdev);
	if (status == 0) {
		device_reset_locked(vdev);
		goto out;
	}
	old = vdev->status;
	want = status & STATUS_DRIVER_BITS; /* NEEDS_RESET is the device's own bit */
	if (old & STATUS_DRIVER_BITS & ~want) {
		vdev_warn(vdev, "virtio-%s: status 0x%x would clear bits of 0x%x: refused (reset first)",
			vdev->cls->name, status, old);
		goto out;
	}
	next = old;
	for (unsigned i = 0; i < sizeof(order); i++) {
		uint8_t bit = order[i];

		if (!(want & bit) || (old & bit))
			continue;
		if (!status_bit_allowed(vdev, bit, next)) {
			vdev_warn(vdev, "virtio-%s: status bit 0x%x refused (status 0x%x)",
				vdev->cls->name, bit, next);
			continue;
		}
		next |= bit;
	}
	vdev->status = next;
	if ((next & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK))
		driver_ok_locked(vdev);
	if ((next & VIRTIO_STATUS_FAILED) && !(old & VIRTIO_STATUS_FAILED))
		vdev_warn(vdev, "virtio-%s: driver set FAILED", vdev->cls->name);
out:
	vdev_unlock(vdev);
}

static uint8_t op_get_status(void *dev)
{
	struct virtio_device *vdev = to_vdev(dev);
	uint8_t s;

	vdev_lock(vdev);
	s = vdev->status;
	vdev_unlock(vdev);
	return s;
}

static void op_reset(void *dev)
{
	struct virtio_device *vdev = to_vdev(dev);

	vdev_lock(vdev);
	device_reset_locked(vdev);
	vdev_unlock(vdev);
}

/* ---- queues -------------------------------------------------------------------------- */

static unsigned op_get_num_queues(void *dev)
{
	return to_vdev(dev)->cls->num_queues;
}

static unsigned op_get_vq_num_max(void *dev, unsigned idx)
{
	struct virtio_device *vdev = to_vdev(dev);

	return idx < vdev->cls->num_queues ? vdev->cls->queue_max_size : 0;
}

static int op_set_vq_num(void *dev, unsigned idx, unsigned num)
{
	struct virtio_device *vdev = to_vdev(dev);
	struct virtio_queue_slot *q;
	int ret;

	vdev_lock(vdev);
	q = slot_of(vdev, idx);
	ret = slot_configurable(vdev, q, idx, "size");
	if (ret)
		goto out;
	if (num == 0 || num > vdev->cls->queue_max_size ||
	    (!feature_set(vdev->driver_features, VIRTIO_F_RING_PACKED) && !is_pow2(num))) {
		vdev_warn(vdev, "virtio-%s: queue %u size %u refused (max %u%s)", vdev->cls->name, idx,
			num, vdev->cls->queue_max_size,
			feature_set(vdev->driver_features, VIRTIO_F_RING_PACKED) ? "" :
			", power of two");
		ret = -EINVAL;
		goto out;
	}
	q->num = num;
out:
	vdev_unlock(vdev);
	return ret;
}

static int op_set_vq_address(void *dev, unsigned idx, uint64_t desc, uint64_t driver,
			     uint64_t device)
{
	struct virtio_device *vdev = to_vdev(dev);
	struct virtio_queue_slot *q;
	int ret;

	vdev_lock(vdev);
	q = slot_of(vdev, idx);
	ret = slot_configurable(vdev, q, idx, "address");
	if (!ret) {
		/* Alignment and placement are checked by vq_setup when the queue goes ready. */
		q->desc = desc;
		q->driver = driver;
		q->device = device;
	}
	vdev_unlock(vdev);
	return ret;
}

/* Build the live virtqueue for slot q from what the driver programmed. */
static int slot_start(struct virtio_device *vdev, struct virtio_queue_slot *q, unsigned idx)
{
	struct vq_state st = { q->base.last_avail_idx, q->base.used_idx };
	bool packed = feature_set(vdev->driver_features, VIRTIO_F_RING_PACKED);
	int ret;

	if (!(vdev->status & VIRTIO_STATUS_FEATURES_OK)) {
		vdev_warn(vdev, "virtio-%s: queue %u enabled before FEATURES_OK: refused",
			vdev->cls->name, idx);
		return -EINVAL;
	}
	if (!packed && !is_pow2(q->num)) {
		vdev_warn(vdev, "virtio-%s: queue %u size %u is not a power of two: refused",
			vdev->cls->name, idx, q->num);
		return -EINVAL;
	}
	memset(&q->vq, 0, sizeof(q->vq));
	ret = vq_setup(&q->vq, vdev->gm, vdev->iotlb, (uint16_t)q->num, q->desc, q->driver,
		       q->device, vdev->driver_features);
	if (ret < 0) {
		vdev_warn(vdev, "virtio-%s: queue %u rings refused (desc 0x%llx driver 0x%llx device "
			"0x%llx size %u): %s", vdev->cls->name, idx, (unsigned long long)q->desc,
			(unsigned long long)q->driver, (unsigned long long)q->device, q->num,
			vq_error_name(q->vq.last_error));
		memset(&q->vq, 0, sizeof(q->vq));
		return ret;
	}
	if (q->base_set) {
		vq_set_state(&q->vq, &st);
		if (q->vq.broken) { /* e.g. a packed index beyond the ring */
			vdev_warn(vdev, "virtio-%s: queue %u vring base %u/%u refused: %s",
				vdev->cls->name, idx, st.last_avail_idx, st.used_idx,
				vq_error_name(q->vq.last_error));
			vq_reset(&q->vq);
			return -EINVAL;
		}
	}
	q->ready = true;
	return 0;
}

static int op_set_vq_ready(void *dev, unsigned idx, bool ready)
{
	struct virtio_device *vdev = to_vdev(dev);
	struct virtio_queue_slot *q;
	int ret = 0;

	vdev_lock(vdev);
	q = slot_of(vdev, idx);
	if (!q) {
		vdev_warn(vdev, "virtio-%s: enable of queue %u: no such queue", vdev->cls->name, idx);
		ret = -EINVAL;
	} else if (vdev->status & VIRTIO_STATUS_DRIVER_OK) {
		if (ready != q->ready) {
			vdev_warn(vdev, "virtio-%s: queue %u %s after DRIVER_OK: refused", vdev->cls->name,
				idx, ready ? "enabled" : "disabled");
			ret = -EBUSY;
		}
	} else if (ready && !q->ready) {
		ret = slot_start(vdev, q, idx);
	} else if (!ready && q->ready) {
		vq_reset(&q->vq);
		q->ready = false;
	}
	vdev_unlock(vdev);
	return ret;
}

static bool op_get_vq_ready(void *dev, unsigned idx)
{
	struct virtio_device *vdev = to_vdev(dev);
	struct virtio_queue_slot *q;
	bool ready;

	vdev_lock(vdev);
	q = slot_of(vdev, idx);
	ready = q && q->ready;
	vdev_unlock(vdev);
	return ready;
}

static int op_get_vq_state(void *dev, unsigned idx, struct virtio_vq_state *st)
{
	struct virtio_device *vdev = to_vdev(dev);
	struct virtio_queue_slot *q;
	struct vq_state s;
	int ret = 0;

	vdev_lock(vdev);
	q = slot_of(vdev, idx);
	if (!q) {
		ret = -EINVAL;
	} else if (q->ready) {
		vq_get_state(&q->vq, &s);
		st->last_avail_idx = s.last_avail_idx;
		st->used_idx = s.used_idx;
	} else {
		*st = q->base;
	}
	vdev_unlock(vdev);
	return ret;
}

static int op_set_vq_state(void *dev, unsigned idx, const struct virtio_vq_state *st)
{
	struct virtio_device *vdev = to_vdev(dev);
	struct virtio_queue_slot *q;
	int ret;

	vdev_lock(vdev);
	q = slot_of(vdev, idx);
	ret = slot_configurable(vdev, q, idx, "vring base");
	if (!ret) {
		q->base = *st;
		q->base_set = true;
	}
	vdev_unlock(vdev);
	return ret;
}

static void op_set_vq_cb(void *dev, unsigned idx, virtio_vq_cb cb, void *opaque)
{
	struct virtio_device *vdev = to_vdev(dev);
	struct virtio_queue_slot *q;

	vdev_lock(vdev);
	q = slot_of(vdev, idx);
	if (q) {
		q->cb = cb;
		q->cb_opaque = opaque;
	}
	vdev_unlock(vdev);
}

/* A kick counts only on a live device and a ready queue; anything else is ignored (a driver
 * may poke the notify register at any time). */
static void op_kick_vq(void *dev, unsigned idx)
{
	struct virtio_device *vdev = to_vdev(dev);
	struct virtio_queue_slot *q;

	vdev_lock(vdev);
	q = slot_of(vdev, idx);
	if (q && q->ready && !vdev->quiesced &&
	    (vdev->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET |
			     VIRTIO_STATUS_FAILED)) == VIRTIO_STATUS_DRIVER_OK &&
	    vdev->cls->queue_notify)
		vdev->cls->queue_notify(vdev, idx);
	vdev_unlock(vdev);
}

/* ---- config space ------------------------------------------------------------------- */

/* How many bytes of [offset, offset+len) lie inside the config space. */
static unsigned config_clip(struct virtio_device *vdev, unsigned offset, unsigned len)
{
	unsigned size = vdev->cls->config_size;

	if (offset >= size)
		return 0;
	return len < size - offset ? len : size - offset;
}

static void op_get_config(void *dev, unsigned offset, void *buf, unsigned len)
{
	struct virtio_device *vdev = to_vdev(dev);
	unsigned n;

	memset(buf, 0, len);
	vdev_lock(vdev);
	n = config_clip(vdev, offset, len);
	if (n && vdev->cls->read_config)
		vdev->cls->read_config(vdev, offset, buf, n);
	vdev_unlock(vdev);
}

static void op_set_config(void *dev, unsigned offset, const void *buf, unsigned len)
{
	struct virtio_device *vdev = to_vdev(dev);
	unsigned n;

	vdev_lock(vdev);
	n = config_clip(vdev, offset, len);
	if (n && vdev->cls->write_config)
		vdev->cls->write_config(vdev, offset, buf, n);
	else if (len)
		pr_debug("virtio-%s: config write of %u bytes at %u ignored", vdev->cls->name,
			 len, offset);
	vdev_unlock(vdev);
}

static unsigned op_get_config_size(void *dev)
{
	return to_vdev(dev)->cls->config_size;
}

static void op_set_config_cb(void *dev, virtio_config_cb cb, void *opaque)
{
	struct virtio_device *vdev = to_vdev(dev);

	vdev_lock(vdev);
	vdev->config_cb = cb;
	vdev->config_cb_opaque = opaque;
	vdev_unlock(vdev);
}

static uint32_t op_get_generation(void *dev)
{
	struct virtio_device *vdev = to_vdev(dev);
	uint32_t g;

	vdev_lock(vdev);
	g = vdev->generation;
	vdev_unlock(vdev);
	return g;
}

static uint32_t op_get_vendor_id(void *dev)
{
	(void)dev;
	return VIREO_VIRTIO_VENDOR_ID;
}

static uint32_t op_get_device_id(void *dev)
{
	return to_vdev(dev)->cls->device_id;
}

const struct virtio_device_ops virtio_device_ops_inproc = {
	.get_features = op_get_features,
	.set_features = op_set_features,
	.set_vq_address = op_set_vq_address,
	.set_vq_num = op_set_vq_num,
	.get_vq_num_max = op_get_vq_num_max,
	.kick_vq = op_kick_vq,
	.set_vq_cb = op_set_vq_cb,
	.set_vq_ready = op_set_vq_ready,
	.get_vq_ready = op_get_vq_ready,
	.get_vq_state = op_get_vq_state,
	.set_vq_state = op_set_vq_state,
	.get_config = op_get_config,
	.set_config = op_set_config,
	.get_config_size = op_get_config_size,
	.set_config_cb = op_set_config_cb,
	.get_status = op_get_status,
	.set_status = op_set_status,
	.get_generation = op_get_generation,
	.get_vendor_id = op_get_vendor_id,
	.get_device_id = op_get_device_id,
	.get_num_queues = op_get_num_queues,
	.reset = op_reset,
	.get_driver_features = op_get_driver_features,
};

/* ---- life cycle and the device-side helpers ------------------------------------------ */

int virtio_device_init(struct virtio_device *vdev, const struct virtio_device_class *cls,
		       struct guest_memory *gm, void *priv)
{
	pthread_mutexattr_t attr;
	int ret;

	if (!cls || !cls->name || cls->num_queues == 0 || cls->num_queues > VIRTIO_MAX_QUEUES ||
	    cls->queue_max_size == 0 || cls->queue_max_size > VQ_MAX_SIZE) {
		pr_err("virtio: invalid device class %s", cls && cls->name ? cls->name : "?");
		return -EINVAL;
	}
	memset(vdev, 0, sizeof(*vdev));
	vdev->cls = cls;
	vdev->gm = gm;
	vdev->priv = priv;
	for (unsigned i = 0; i < cls->num_queues; i++)
		vdev->queues[i].num = cls->queue_max_size;

	ret = pthread_mutexattr_init(&attr);
	if (ret)
		return -ret;
	ret = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	if (!ret)
		ret = pthread_mutex_init(&vdev->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return -ret;
}

void virtio_device_destroy(struct virtio_device *vdev)
{
	if (!vdev->cls)
		return;
	op_reset(vdev);
	if (vdev->cls->destroy)
		vdev->cls->destroy(vdev);
	pthread_mutex_destroy(&vdev->lock);
	vdev->cls = NULL;
}

struct virtqueue *virtio_device_vq(struct virtio_device *vdev, unsigned idx)
{
	struct virtio_queue_slot *q;
	struct virtqueue *vq = NULL;

	vdev_lock(vdev);
	q = slot_of(vdev, idx);
	if (q && q->ready)
		vq = &q->vq;
	vdev_unlock(vdev);
	return vq;
}

void virtio_device_notify(struct virtio_device *vdev, unsigned idx)
{
	struct virtio_queue_slot *q;

	vdev_lock(vdev);
	q = slot_of(vdev, idx);
	if (q && q->ready && q->cb && vq_should_notify(&q->vq))
		q->cb(q->cb_opaque, idx);
	vdev_unlock(vdev);
}

void virtio_device_fail(struct virtio_device *vdev, unsigned idx, const char *why)
{
	vdev_lock(vdev);
	if (!(vdev->status & VIRTIO_STATUS_NEEDS_RESET)) {
		vdev->status |= VIRTIO_STATUS_NEEDS_RESET;
		if (idx < vdev->cls->num_queues)
			virtio_device_log(vdev, LOG_ERR, "virtio-%s: queue %u: %s; device needs reset",
					  vdev->cls->name, idx, why);
		else
			virtio_device_log(vdev, LOG_ERR, "virtio-%s: %s; device needs reset",
					  vdev->cls->name, why);
		if (vdev->config_cb)
			vdev->config_cb(vdev->config_cb_opaque);
	}
	vdev_unlock(vdev);
}

void virtio_device_config_changed(struct virtio_device *vdev)
{
	vdev_lock(vdev);
	vdev->generation++;
	if (vdev->config_cb)
		vdev->config_cb(vdev->config_cb_opaque);
	vdev_unlock(vdev);
}

void virtio_device_log(struct virtio_device *vdev, int lvl, const char *fmt, ...)
{
	unsigned n = __atomic_fetch_add(&vdev->refusals, 1, __ATOMIC_RELAXED);
	char msg[256];
	va_list ap;

	if ((n < VIRTIO_DEVICE_LOUD ? (enum log_level)lvl : LOG_DEBUG) > log_get_level())
		return; /* not formatted for nothing: a guest repeats these at will */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_limited(n, VIRTIO_DEVICE_LOUD, (enum log_level)lvl, "%s", msg);
}

bool virtio_device_has_feature(const struct virtio_device *vdev, unsigned bit)
{
	return feature_set(vdev->driver_features, bit);
}

void virtio_device_set_iotlb(void *dev, const struct vq_iotlb *iotlb)
{
	struct virtio_device *vdev = to_vdev(dev);

	vdev_lock(vdev);
	vdev->iotlb = iotlb;
	vdev_unlock(vdev);
}

int virtio_device_remap_queues(void *dev)
{
	struct virtio_device *vdev = to_vdev(dev);
	int ret = 0;

	vdev_lock(vdev);
	for (unsigned i = 0; i < vdev->cls->num_queues; i++) {
		struct virtio_queue_slot *q = &vdev->queues[i];

		if (q->ready && vq_remap(&q->vq, vdev->gm, vdev->iotlb) < 0) {
			virtio_device_fail(vdev, i, "rings unreachable after a memory map change");
			ret = -EIO;
		}
	}
	vdev_unlock(vdev);
	return ret;
}

bool virtio_device_set_kick_fd(void *dev, unsigned idx, int fd)
{
	struct virtio_device *vdev = to_vdev(dev);
	bool taken = false;

	vdev_lock(vdev);
	if (idx < vdev->cls->num_queues && vdev->cls->queue_kick_fd &&
	    !(vdev->status & VIRTIO_STATUS_DRIVER_OK))
		taken = vdev->cls->queue_kick_fd(vdev, idx, fd);
	vdev_unlock(vdev);
	return taken;
}

void virtio_device_quiesce(void *dev)
{
	struct virtio_device *vdev = to_vdev(dev);

	vdev_lock(vdev);
	if (!vdev->quiesced && vdev->cls->reset)
		vdev->cls->reset(vdev);
	vdev->quiesced = true;
	vdev_unlock(vdev);
}
