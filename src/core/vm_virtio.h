/* The in-process virtio devices of `vireo run`, on the virtio-mmio transport (src/virtio/mmio.h),
 * as Firecracker places them:
 *
 *   device i (in command-line order) at VM_VIRTIO_MMIO_BASE + i * 4 KiB, IRQ vm_virtio_irqs[i]
 *   (ISA-range GSIs of the in-kernel IOAPIC that no legacy device uses: 5, 6, 7, 10, 11, 12,
 *   14, 15), announced to Linux on its command line ("virtio_mmio.device=4K@0xd0000000:5",
 *   for kernels with VIRTIO_MMIO_CMDLINE_DEVICES) and in the DSDT (LNRO0005 devices, for
 *   kernels without, such as Debian's).
 *
 *   guest write to QueueNotify --(KVM ioeventfd, when the device reads the eventfd itself:
 *   blk)--> device thread;  otherwise a KVM_EXIT_MMIO --> vCPU thread --> kick_vq
 *   device pushes used buffers --> virtio_device_notify --> InterruptStatus |= 1, write to
 *   the device's irqfd --> KVM_IRQFD: an edge on its IOAPIC pin.
 *
 * Options (cmd_run.c hands each --rng/--disk/--net/--vsock to vm_virtio_parse):
 *   --rng
 *   --disk path=FILE[,readonly=on|off][,direct=on|off][,serial=STR][,num_queues=N]
 *          [,queue_size=N]
 *   --net tap=NAME[,mac=MAC] | --net loopback[,mac=MAC]
 *   --vsock cid=N,socket=UDS
 *   --disk vhost_user=on,socket=PATH | --net vhost_user=on,socket=PATH
 *           the device runs in another process (a vhost-user backend such as `vireo backend
 *           blk`), behind the same transport through src/vhost-user/remote_dev.h: kicks go
 *           to the backend's kick eventfd as a KVM ioeventfd (no exit, no vireo thread);
 *           its call eventfds are polled by remote_dev's thread, which sets InterruptStatus
 *           and signals the irqfd (virtio-mmio needs the status bit, so no direct irqfd).
 */
#ifndef VIREO_CORE_VM_VIRTIO_H
#define VIREO_CORE_VM_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#define VM_VIRTIO_MMIO_BASE 0xd0000000ull
#define VM_VIRTIO_MAX       8

enum vm_virtio_kind { VM_VIRTIO_RNG, VM_VIRTIO_BLK, VM_VIRTIO_NET, VM_VIRTIO_VSOCK };

/* One device as the user asked for it. Strings point into argv. */
struct vm_virtio_spec {
	enum vm_virtio_kind kind;
	const char *path;       /* blk: image; vsock: Unix socket; net: tap name */
	const char *serial;     /* blk */
	bool readonly, direct;  /* blk */
	unsigned num_queues, queue_size; /* blk; 0: the device's defaults */
	bool loopback;          /* net */
	bool has_mac;
	uint8_t mac[6];         /* net */
	uint64_t cid;           /* vsock */
	bool vhost_user;        /* blk, net: a vhost-user backend at socket */
	const char *socket;
};

struct vm_virtio_config {
	struct vm_virtio_spec dev[VM_VIRTIO_MAX];
	unsigned n;
};

struct vm;

/* Parse one option (kind "rng", "disk", "net" or "vsock"; arg NULL for a bare --rng) into
 * cfg. Returns 0 or -EINVAL with one error line naming the option and the problem. */
int vm_virtio_parse(struct vm_virtio_config *cfg, const char *kind, char *arg);

/* vm_devices[] entry: create the devices of vm->cfg.virtio, register their windows, wire
 * irqfds, and append their virtio_mmio.device= entries to vm->cfg.cmdline. */
int vm_virtio_init(struct vm *vm);
void vm_virtio_exit(struct vm *vm);

/* The GSI of slot i (< VM_VIRTIO_MAX). */
static inline unsigned vm_virtio_irq(unsigned i)
{
	static const uint8_t irqs[VM_VIRTIO_MAX] = { 5, 6, 7, 10, 11, 12, 14, 15 };

	return irqs[i % VM_VIRTIO_MAX];
}

/* Where device i of cfg lives (the ACPI tables use it; header-only so that they need not
 * link the devices); false when there is no device i. */
static inline bool vm_virtio_slot(const struct vm_virtio_config *cfg, unsigned i,
				  uint64_t *base, unsigned *irq)
{
	if (i >= cfg->n || i >= VM_VIRTIO_MAX)
		return false;
	*base = VM_VIRTIO_MMIO_BASE + (uint64_t)i * 0x1000;
	*irq = vm_virtio_irq(i);
	return true;
}

#endif
