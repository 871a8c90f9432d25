/* virtio-mmio transport, version 2 (virtio 1.2, 4.2.2): the register file of one device
 * window, driving a device through struct virtio_device_ops. Pure: no KVM, no bus; the VMM
 * (src/core/vm_virtio.c) puts virtio_mmio_access() on its MMIO bus and supplies the two host
 * hooks (raise the interrupt, route a queue's kicks to an eventfd), the unit tests call it
 * directly.
 *
 * What the guest may do, and what happens otherwise (every refusal is logged, nothing else):
 *   - control registers (0x000-0x0ff) are 32-bit, aligned; any other width or offset reads 0
 *     and ignores writes. Config space (0x100 + n) takes 1, 2, 4 and 8-byte accesses, clipped
 *     to the device's config size (beyond it: reads 0, writes ignored).
 *   - DriverFeatures only between DRIVER and FEATURES_OK; the accepted set is handed to the
 *     device when the driver sets FEATURES_OK (the device refuses what it did not offer, or a
 *     set without VERSION_1: FEATURES_OK then reads back clear). NOTIFICATION_DATA,
 *     RING_RESET and ADMIN_VQ are never offered here (no registers for them) and refused.
 *   - QueueNum / QueueDesc / QueueDriver / QueueDevice only while the selected queue exists
 *     and is not ready, and before DRIVER_OK. QueueReady = 1 checks the size (a power of two
 *     in 1..QueueNumMax), needs FEATURES_OK and no DRIVER_OK, and checks the rings: aligned
 *     and each wholly inside one guest memory region (host->gm; the in-process device core
 *     checks again, a vhost-user device would only find out at DRIVER_OK); a refused queue
 *     reads back QueueReady 0.
 *   - Status follows the device's state machine (src/virtio/device.c); 0 resets the device
 *     and this transport (selectors, accepted features, queue registers, InterruptStatus);
 *     any other value that would clear a bit the driver set is refused here.
 *   - QueueNotify of a queue that is not live is ignored.
 *   - No shared memory regions: SHMSel takes any value, SHMLen/SHMBase read all ones (what
 *     the spec says for a region that does not exist; Linux asks on every device).
 *
 * Interrupts: the device's queue callback sets InterruptStatus bit 0 (used buffer), its
 * config callback bit 1 (config change, also NEEDS_RESET), then calls host->irq (the VMM
 * writes the device's irqfd: an edge on its IOAPIC pin). InterruptACK clears the bits
 * written. Both are atomic, so the callbacks run lock-free from device threads.
 *
 * Threads: virtio_mmio_access() may be called from several vCPU threads at once; a mutex
 * orders register accesses. Device ops are called with it held except kick_vq, which runs
 * the device's queue work; the callbacks never take it (see device_ops.h on ABBA).
 */
#ifndef VIREO_VIRTIO_MMIO_H
#define VIREO_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/device_ops.h"

/* The window of one device (the kernel command line says "4K@ADDR:IRQ"). */
#define VIRTIO_MMIO_SIZE 0x1000u

/* Register offsets (virtio 1.2, table 4.1). */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_SHM_SEL             0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW         0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH        0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW        0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH       0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

#define VIRTIO_MMIO_MAGIC     0x74726976u /* "virt" */
#define VIRTIO_MMIO_VERSION_2 2u
#define VIRTIO_MMIO_VENDOR    0x4f524956u /* "VIRO" */

#define VIRTIO_MMIO_INT_VRING  1u
#define VIRTIO_MMIO_INT_CONFIG 2u

/* What the VMM does for the transport. Both hooks are optional. */
struct virtio_mmio_host {
	/* Signal the device's interrupt (an edge). Called from any thread, lock-free. */
	void (*irq)(void *opaque);
	/* DRIVER_OK (enable) for each ready queue, just before the device starts: route queue
	 * idx's notifications to an eventfd the device reads itself (true) or leave them to
	 * QueueNotify exits (false). Reset (enable false) undoes it for every queue it enabled. */
	bool (*queue_kick)(void *opaque, unsigned idx, bool enable);
	void *opaque;
	/* Guest memory the rings must lie in (NULL: left to the device). */
	const struct guest_memory *gm;
};

struct virtio_mmio_queue {
	uint32_t num;
	uint64_t desc, driver, device;
	bool kick_routed;          /* host->queue_kick took it at DRIVER_OK */
};

struct virtio_mmio {
	struct virtio_dev_handle dev;
	struct virtio_mmio_host host;
	const char *name;          /* for logs, e.g. "virtio-mmio@0xd0000000" */
	pthread_mutex_t lock;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint64_t driver_features;  /* as written so far */
	unsigned nqueues;
	struct virtio_mmio_queue queues[VIRTIO_MAX_QUEUES];
	atomic_uint interrupt_status;
	atomic_ulong refused;      /* guest accesses refused (bad width, offset, order, value) */
};

/* Bind the transport to a device (its queue and config callbacks point here from now on).
 * name must outlive vm. Returns 0 or -EINVAL (no ops, 0 or too many queues). */
int virtio_mmio_init(struct virtio_mmio *vm, struct virtio_dev_handle dev,
		     const struct virtio_mmio_host *host, const char *name);
/* Reset the device and this transport, unhook the callbacks. The device stays the caller's. */
void virtio_mmio_destroy(struct virtio_mmio *vm);

/* An io_handler_fn (src/core/bus.h): opaque is the struct virtio_mmio, offset inside the
 * window. Always returns 0: a refused access is the guest's problem, counted and logged. */
int virtio_mmio_access(void *opaque, uint64_t offset, void *data, unsigned size, bool is_write);

#endif
