/* virtio-mmio version 2 register file (virtio 1.2, 4.2.2) over the device-ops. The rules
 * for each guest access are in mmio.h; the device's own state machine (status order,
 * features, ring checks) stays in the device (src/virtio/device.c for in-process ones), so
 * this file only checks what is the transport's: widths, offsets, selectors, when a queue
 * register may change, and the interrupt status bits.
 */
#include "virtio/mmio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* Feature bits this transport cannot carry, hidden from the driver whatever the device
 * offers: NOTIFICATION_DATA (QueueNotify would hold more than a queue index), RING_RESET
 * and ADMIN_VQ (registers this virtio-mmio does not have). */
#define MMIO_UNSUPPORTED_FEATURES ((1ull << VIRTIO_F_NOTIFICATION_DATA) | (1ull << 40) | \
				   (1ull << 41))

/* The status bits the driver sets (NEEDS_RESET is the device's). */
#define MMIO_DRIVER_STATUS_BITS (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | \
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK | \
				 VIRTIO_STATUS_FAILED)

static void refuse(struct virtio_mmio *vm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Count a refused guest access and say why (loudly for the first few only: a guest can
 * repeat a bad access as often as it likes). */
static void refuse(struct virtio_mmio *vm, const char *fmt, ...)
{
	unsigned long n = atomic_fetch_add(&vm->refused, 1);
	char msg[160];
	va_list ap;

	if ((n < VIRTIO_DEVICE_LOUD ? LOG_WARN : LOG_DEBUG) > log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_limited(n, VIRTIO_DEVICE_LOUD, LOG_WARN, "%s: %s: refused", vm->name, msg);
}

/* ---- interrupts (device threads, lock-free) ------------------------------------------ */

static void raise_irq(struct virtio_mmio *vm, unsigned bit)
{
	atomic_fetch_or(&vm->interrupt_status, bit);
	if (vm->host.irq)
		vm->host.irq(vm->host.opaque);
}

static void vring_cb(void *opaque, unsigned idx)
{
	(void)idx;
	raise_irq(opaque, VIRTIO_MMIO_INT_VRING);
}

static void config_cb(void *opaque)
{
	raise_irq(opaque, VIRTIO_MMIO_INT_CONFIG);
}

/* ---- helpers ------------------------------------------------------------------------ */

static const struct virtio_device_ops *ops(struct virtio_mmio *vm)
{
	return vm->dev.ops;
}

static uint8_t dev_status(struct virtio_mmio *vm)
{
	return ops(vm)->get_status(vm->dev.dev);
}

/* The selected queue, or NULL when QueueSel names no queue of the device. */
static struct virtio_mmio_queue *sel_queue(struct virtio_mmio *vm)
{
	return vm->queue_sel < vm->nqueues ? &vm->queues[vm->queue_sel] : NULL;
}

static void set_low(uint64_t *v, uint32_t lo)
{
	*v = (*v & ~0xffffffffull) | lo;
}

static void set_high(uint64_t *v, uint32_t hi)
{
	*v = (*v & 0xffffffffull) | (uint64_t)hi << 32;
}

static bool is_pow2(uint32_t n)
{
	return n && !(n & (n - 1));
}

/* Undo host->queue_kick for every queue routed at DRIVER_OK (after the device forgot the
 * fds, i.e. after its reset). */
static void unroute_kicks(struct virtio_mmio *vm)
{
	for (unsigned i = 0; i < vm->nqueues; i++) {
		if (vm->queues[i].kick_routed && vm->host.queue_kick)
			vm->host.queue_kick(vm->host.opaque, i, false);
		vm->queues[i].kick_routed = false;
	}
}

/* Status 0: the device resets, then the transport forgets everything the driver wrote. */
static void transport_reset(struct virtio_mmio *vm)
{
	ops(vm)->set_status(vm->dev.dev, 0);
	unroute_kicks(vm);
	vm->device_features_sel = vm->driver_features_sel = vm->queue_sel = 0;
	vm->driver_features = 0;
	for (unsigned i = 0; i < vm->nqueues; i++)
		vm->queues[i] = (struct virtio_mmio_queue){ 0 };
	atomic_store(&vm->interrupt_status, 0);
}

/* ---- register reads ------------------------------------------------------------------ */

static uint32_t read_features(struct virtio_mmio *vm)
{
	uint64_t f = ops(vm)->get_features(vm->dev.dev) & ~MMIO_UNSUPPORTED_FEATURES;

	switch (vm->device_features_sel) {
	case 0: return (uint32_t)f;
	case 1: return (uint32_t)(f >> 32);
	default: return 0;
	}
}

static uint32_t read_reg(struct virtio_mmio *vm, unsigned off)
{
	const struct virtio_device_ops *o = ops(vm);
	void *d = vm->dev.dev;

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION: return VIRTIO_MMIO_VERSION_2;
	case VIRTIO_MMIO_DEVICE_ID: return o->get_device_id(d);
	case VIRTIO_MMIO_VENDOR_ID: return o->get_vendor_id(d);
	case VIRTIO_MMIO_DEVICE_FEATURES: return read_features(vm);
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return sel_queue(vm) ? o->get_vq_num_max(d, vm->queue_sel) : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return sel_queue(vm) ? o->get_vq_ready(d, vm->queue_sel) : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS: return atomic_load(&vm->interrupt_status);
	case VIRTIO_MMIO_STATUS: return dev_status(vm);
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return o->get_generation ? o->get_generation(d) : 0;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return 0xffffffffu; /* no such region */
	}
	refuse(vm, "read of write-only or unknown register 0x%03x", off);
	return 0;
}

/* ---- register writes ----------------------------------------------------------------- */

static void write_driver_features(struct virtio_mmio *vm, uint32_t v)
{
	uint8_t st = dev_status(vm);

	if (!(st & VIRTIO_STATUS_DRIVER) || (st & VIRTIO_STATUS_FEATURES_OK)) {
		refuse(vm, "DriverFeatures written in status 0x%x", st);
		return;
	}
	if (vm->driver_features_sel == 0)
		set_low(&vm->driver_features, v);
	else if (vm->driver_features_sel == 1)
		set_high(&vm->driver_features, v);
	else if (v)
		refuse(vm, "DriverFeatures bits 0x%x in word %u (no such features)", v,
		       vm->driver_features_sel);
}

/* Whether the selected queue's registers may change now; q is set to it. */
static bool queue_writable(struct virtio_mmio *vm, const char *what,
			   struct virtio_mmio_queue **q)
{
	uint8_t st = dev_status(vm);

	*q = sel_queue(vm);
	if (!*q) {
		refuse(vm, "%s of queue %u (the device has %u)", what, vm->queue_sel, vm->nqueues);
		return false;
	}
	if (st & VIRTIO_STATUS_DRIVER_OK) {
		refuse(vm, "%s of queue %u after DRIVER_OK", what, vm->queue_sel);
		return false;
	}
	if (ops(vm)->get_vq_ready(vm->dev.dev, vm->queue_sel)) {
		refuse(vm, "%s of queue %u while it is ready", what, vm->queue_sel);
		return false;
	}
	return true;
}

static void write_queue_reg(struct virtio_mmio *vm, unsigned off, uint32_t v)
{
	static const char *const names[] = {
		[VIRTIO_MMIO_QUEUE_NUM] = "QueueNum",
		[VIRTIO_MMIO_QUEUE_DESC_LOW] = "QueueDescLow",
		[VIRTIO_MMIO_QUEUE_DESC_HIGH] = "QueueDescHigh",
		[VIRTIO_MMIO_QUEUE_DRIVER_LOW] = "QueueDriverLow",
		[VIRTIO_MMIO_QUEUE_DRIVER_HIGH] = "QueueDriverHigh",
		[VIRTIO_MMIO_QUEUE_DEVICE_LOW] = "QueueDeviceLow",
		[VIRTIO_MMIO_QUEUE_DEVICE_HIGH] = "QueueDeviceHigh",
	};
	struct virtio_mmio_queue *q;

	if (!queue_writable(vm, names[off], &q))
		return;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM: q->num = v; break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: set_low(&q->desc, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: set_high(&q->desc, v); break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW: set_low(&q->driver, v); break;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: set_high(&q->driver, v); break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW: set_low(&q->device, v); break;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: set_high(&q->device, v); break;
	}
}

/* The rings of q (size already checked) aligned and each inside one guest memory region
 * (virtio 1.2, 2.7 and 2.8: split desc 16, avail 2, used 4; packed desc 16, events 4). */
static bool rings_ok(struct virtio_mmio *vm, const struct virtio_mmio_queue *q)
{
	bool packed = vm->driver_features & (1ull << VIRTIO_F_RING_PACKED);
	uint64_t n = q->num;
	const struct { uint64_t gpa, len, align; } r[3] = {
		{ q->desc, 16 * n, 16 },
		{ q->driver, packed ? 4 : 6 + 2 * n, packed ? 4 : 2 },
		{ q->device, packed ? 4 : 6 + 8 * n, 4 },
	};

	if (!vm->host.gm)
		return true;
	for (unsigned i = 0; i < 3; i++)
		if ((r[i].gpa & (r[i].align - 1)) || !gm_translate(vm->host.gm, r[i].gpa, r[i].len))
			return false;
	return true;
}

/* QueueReady = 1: hand size and rings to the device (which may check them again). */
static void queue_enable(struct virtio_mmio *vm, struct virtio_mmio_queue *q)
{
	const struct virtio_device_ops *o = ops(vm);
	unsigned idx = vm->queue_sel, max = o->get_vq_num_max(vm->dev.dev, idx);
	uint8_t st = dev_status(vm);

	if (!(st & VIRTIO_STATUS_FEATURES_OK)) {
		refuse(vm, "queue %u enabled before FEATURES_OK (status 0x%x)", idx, st);
		return;
	}
	if (st & VIRTIO_STATUS_DRIVER_OK) { /* its kicks were routed, if at all, at DRIVER_OK */
		refuse(vm, "queue %u enabled after DRIVER_OK", idx);
		return;
	}
	if (!is_pow2(q->num) || q->num > max) {
		refuse(vm, "queue %u size %u (a power of two up to %u)", idx, q->num, max);
		return;
	}
	if (!rings_ok(vm, q)) {
		refuse(vm, "queue %u rings (desc 0x%llx driver 0x%llx device 0x%llx, size %u) "
		       "misaligned or outside guest memory", idx, (unsigned long long)q->desc,
		       (unsigned long long)q->driver, (unsigned long long)q->device, q->num);
		return;
	}
	if (o->set_vq_num(vm->dev.dev, idx, q->num) ||
	    o->set_vq_address(vm->dev.dev, idx, q->desc, q->driver, q->device) ||
	    o->set_vq_ready(vm->dev.dev, idx, true))
		refuse(vm, "queue %u (size %u, desc 0x%llx driver 0x%llx device 0x%llx)", idx,
		       q->num, (unsigned long long)q->desc, (unsigned long long)q->driver,
		       (unsigned long long)q->device);
}

static void write_queue_ready(struct virtio_mmio *vm, uint32_t v)
{
	struct virtio_mmio_queue *q = sel_queue(vm);

	if (!q) {
		refuse(vm, "QueueReady of queue %u (the device has %u)", vm->queue_sel, vm->nqueues);
	} else if (v == 1) {
		if (!ops(vm)->get_vq_ready(vm->dev.dev, vm->queue_sel))
			queue_enable(vm, q);
	} else if (v == 0) {
		if (ops(vm)->set_vq_ready(vm->dev.dev, vm->queue_sel, false))
			refuse(vm, "disabling queue %u", vm->queue_sel);
	} else {
		refuse(vm, "QueueReady value %u", v);
	}
}

/* Status: 0 resets; FEATURES_OK first hands the accepted features to the device; DRIVER_OK
 * first routes the ready queues' kicks. The device decides which bits stick. */
static void write_status(struct virtio_mmio *vm, uint32_t v)
{
	const struct virtio_device_ops *o = ops(vm);
	uint8_t old;

	if (v == 0) {
		transport_reset(vm);
		return;
	}
	if (v > 0xff) {
		refuse(vm, "Status value 0x%x", v);
		return;
	}
	old = dev_status(vm);
	if (old & ~v & MMIO_DRIVER_STATUS_BITS) {
		/* only a reset clears them (3.1.1); refused here, where refusals are counted and
		 * quiet after a few, not left to each device's own log line */
		refuse(vm, "Status 0x%x would clear bits of 0x%x (reset first)", v, old);
		return;
	}
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		if (vm->driver_features & MMIO_UNSUPPORTED_FEATURES) {
			refuse(vm, "driver features 0x%llx (not offered by the transport)",
			       (unsigned long long)vm->driver_features);
			v &= ~VIRTIO_STATUS_FEATURES_OK; /* reads back clear, as the spec wants */
		} else if (o->set_features(vm->dev.dev, vm->driver_features)) {
			refuse(vm, "driver features 0x%llx",
			       (unsigned long long)vm->driver_features);
		}
	}
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
	    (old & VIRTIO_STATUS_FEATURES_OK) && vm->host.queue_kick) {
		for (unsigned i = 0; i < vm->nqueues; i++)
			if (o->get_vq_ready(vm->dev.dev, i))
				vm->queues[i].kick_routed =
					vm->host.queue_kick(vm->host.opaque, i, true);
	}
	o->set_status(vm->dev.dev, (uint8_t)v);
	if (!(dev_status(vm) & VIRTIO_STATUS_DRIVER_OK))
		unroute_kicks(vm); /* DRIVER_OK refused: nothing reads the eventfds */
}

static void write_reg(struct virtio_mmio *vm, unsigned off, uint32_t v)
{
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: vm->device_features_sel = v; return;
	case VIRTIO_MMIO_DRIVER_FEATURES: write_driver_features(vm, v); return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: vm->driver_features_sel = v; return;
	case VIRTIO_MMIO_QUEUE_SEL: vm->queue_sel = v; return;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		write_queue_reg(vm, off, v);
		return;
	case VIRTIO_MMIO_QUEUE_READY: write_queue_ready(vm, v); return;
	case VIRTIO_MMIO_INTERRUPT_ACK: atomic_fetch_and(&vm->interrupt_status, ~v); return;
	case VIRTIO_MMIO_STATUS: write_status(vm, v); return;
	case VIRTIO_MMIO_SHM_SEL: return; /* every region reads as absent */
	}
	refuse(vm, "write of read-only or unknown register 0x%03x", off);
}

/* ---- the bus handler ----------------------------------------------------------------- */

static void config_access(struct virtio_mmio *vm, unsigned off, void *data, unsigned size,
			  bool is_write)
{
	if (size != 1 && size != 2 && size != 4 && size != 8) {
		refuse(vm, "config access of %u bytes", size);
		if (!is_write)
			memset(data, 0, size);
		return;
	}
	if (is_write)
		ops(vm)->set_config(vm->dev.dev, off, data, size);
	else
		ops(vm)->get_config(vm->dev.dev, off, data, size); /* clipped: zeros beyond */
}

int virtio_mmio_access(void *opaque, uint64_t offset, void *data, unsigned size, bool is_write)
{
	struct virtio_mmio *vm = opaque;
	unsigned off = (unsigned)offset;
	uint32_t v = 0;

	if (offset >= VIRTIO_MMIO_SIZE || size > VIRTIO_MMIO_SIZE - offset) {
		refuse(vm, "access at 0x%llx (%u bytes) outside the window",
		       (unsigned long long)offset, size);
		if (!is_write)
			memset(data, 0, size);
		return 0;
	}
	pthread_mutex_lock(&vm->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		config_access(vm, off - VIRTIO_MMIO_CONFIG, data, size, is_write);
	} else if (size != 4 || (off & 3)) {
		refuse(vm, "%u-byte %s at 0x%03x (registers are 32-bit, aligned)", size,
		       is_write ? "write" : "read", off);
		if (!is_write)
			memset(data, 0, size);
	} else if (!is_write) {
		v = read_reg(vm, off);
		memcpy(data, &v, 4);
	} else if (off == VIRTIO_MMIO_QUEUE_NOTIFY) {
		memcpy(&v, data, 4);
		pthread_mutex_unlock(&vm->lock);
		ops(vm)->kick_vq(vm->dev.dev, v); /* ignored unless queue v is live */
		return 0;
	} else {
		memcpy(&v, data, 4);
		write_reg(vm, off, v);
	}
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

/* ---- set-up ------------------------------------------------------------------------- */

int virtio_mmio_init(struct virtio_mmio *vm, struct virtio_dev_handle dev,
		     const struct virtio_mmio_host *host, const char *name)
{
	unsigned n;

	memset(vm, 0, sizeof(*vm));
	if (!dev.ops || !dev.dev)
		return -EINVAL;
	n = dev.ops->get_num_queues(dev.dev);
	if (n == 0 || n > VIRTIO_MAX_QUEUES)
		return -EINVAL;
	vm->dev = dev;
	if (host)
		vm->host = *host;
	vm->name = name ? name : "virtio-mmio";
	vm->nqueues = n;
	atomic_init(&vm->interrupt_status, 0);
	atomic_init(&vm->refused, 0);
	if (pthread_mutex_init(&vm->lock, NULL))
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		dev.ops->set_vq_cb(dev.dev, i, vring_cb, vm);
	dev.ops->set_config_cb(dev.dev, config_cb, vm);
	return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *vm)
{
	if (!vm->dev.ops)
		return;
	pthread_mutex_lock(&vm->lock);
	transport_reset(vm);
	for (unsigned i = 0; i < vm->nqueues; i++)
		ops(vm)->set_vq_cb(vm->dev.dev, i, NULL, NULL);
	ops(vm)->set_config_cb(vm->dev.dev, NULL, NULL);
	pthread_mutex_unlock(&vm->lock);
	pthread_mutex_destroy(&vm->lock);
	vm->dev.ops = NULL;
}
