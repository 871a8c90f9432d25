/* The virtio-mmio devices of `vireo run` (see vm_virtio.h for the layout and the data flow):
 * each device is an in-process virtio_device behind a struct virtio_mmio register file on
 * the VM's MMIO bus, with a KVM irqfd for its interrupt and KVM ioeventfds for the kicks of
 * devices that read their kick eventfd themselves. */
#include "core/vm_virtio.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "core/vm.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/vsock.h"
#include "util/log.h"
#include "vhost-user/remote_dev.h"
#include "virtio/mmio.h"

struct vm_virtio_dev {
	struct vm *vm;
	struct virtio_device vdev;        /* in-process device, or */
	struct vu_remote *remote;         /* a vhost-user backend */
	struct virtio_dev_handle handle;  /* whichever of the two it is */
	struct virtio_mmio mmio;
	uint64_t base;
	unsigned irq;
	int irqfd;                        /* -1: KVM_IRQ_LINE pulses instead */
	int kickfd[VIRTIO_MAX_QUEUES];    /* one per queue of the device, -1 beyond */
	bool vdev_ready, mmio_ready, on_bus;
	char name[48];
};

struct vm_virtio {
	struct vm_virtio_dev *dev[VM_VIRTIO_MAX];
	unsigned n;
	char *cmdline;              /* what vm->cfg.cmdline points to while we exist */
	const char *orig_cmdline;
};

/* ---- host hooks of the transport ----------------------------------------------------- */

/* Raise the device's interrupt: an edge on its IOAPIC pin (from any thread, lock-free). */
static void dev_irq(void *opaque)
{
	struct vm_virtio_dev *d = opaque;

	if (d->irqfd >= 0) {
		if (eventfd_write(d->irqfd, 1) < 0)
			pr_warn("%s: irqfd: %s", d->name, strerror(errno));
	} else if (vm_irq_pulse(d->vm, d->irq) < 0) {
		pr_warn("%s: KVM_IRQ_LINE %u: %s", d->name, d->irq, strerror(errno));
	}
}

static int ioeventfd(struct vm_virtio_dev *d, unsigned idx, int fd, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = idx,
		.addr = d->base + VIRTIO_MMIO_QUEUE_NOTIFY,
		.len = 4,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(d->vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

/* At DRIVER_OK: when the device reads queue idx's kick eventfd itself (a vhost-user backend
 * always does), KVM signals that eventfd on the guest's QueueNotify write (no exit to
 * vireo). At reset: undone. */
static bool dev_queue_kick(void *opaque, unsigned idx, bool enable)
{
	struct vm_virtio_dev *d = opaque;
	int fd = d->remote ? vu_remote_kick_fd(d->remote, idx) : d->kickfd[idx];
	eventfd_t stale;
	int ret;

	if (fd < 0)
		return false;
	if (!enable) {
		ret = ioeventfd(d, idx, fd, false);
		if (ret)
			pr_warn("%s: queue %u: removing ioeventfd: %s", d->name, idx, strerror(-ret));
		if (!d->remote)
			eventfd_read(fd, &stale); /* non-blocking: no stale kick next time */
		return false;
	}
	if (!d->remote && !virtio_device_set_kick_fd(&d->vdev, idx, fd))
		return false; /* kicks come through QueueNotify exits */
	ret = ioeventfd(d, idx, fd, true);
	if (ret) {
		/* the device reads an fd nobody signals; kicks still reach it by exits */
		pr_warn("%s: queue %u: KVM_IOEVENTFD: %s", d->name, idx, strerror(-ret));
		return false;
	}
	pr_debug("%s: queue %u: kicks through a KVM ioeventfd", d->name, idx);
	return true;
}

/* ---- devices ------------------------------------------------------------------------- */

/* net features that need the control queue: a vhost-user backend is given rx0 and tx0 only
 * (backends such as DPDK's leave the control queue to the VMM, which vireo does not run), so
 * a driver offered CTRL_VQ would look for queue 2 and fail (Linux's virtio-net probe does). */
#define NET_CTRL_FEATURES ((1ull << VIRTIO_NET_F_CTRL_VQ) | (1ull << VIRTIO_NET_F_CTRL_RX) | \
			   (1ull << VIRTIO_NET_F_CTRL_VLAN) | (1ull << VIRTIO_NET_F_GUEST_ANNOUNCE) | \
			   (1ull << VIRTIO_NET_F_MQ) | (1ull << VIRTIO_NET_F_CTRL_MAC_ADDR) | \
			   (1ull << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS) | \
			   (1ull << VIRTIO_NET_F_NOTF_COAL) | (1ull << VIRTIO_NET_F_RSS))

/* A device served by a vhost-user backend; vireo says which kind it is and how big its
 * config space is (vhost-user does not). */
static int create_remote(struct vm_virtio_dev *d, const struct vm_virtio_spec *s)
{
	bool blk = s->kind == VM_VIRTIO_BLK;
	struct vu_remote_config c = {
		.name = d->name,
		.socket = s->socket,
		.gm = &d->vm->mem,
		.device_id = blk ? VIRTIO_ID_BLOCK : VIRTIO_ID_NET,
		.num_queues = blk ? 0 : 2, /* net: one rx/tx pair, no control queue */
		.config_size = blk ? sizeof(struct virtio_blk_config) :
				     sizeof(struct virtio_net_config),
		.hidden_features = blk ? 0 : NET_CTRL_FEATURES,
	};

	return vu_remote_create(&c, &d->remote);
}

static int create_device(struct vm_virtio_dev *d, const struct vm_virtio_spec *s)
{
	struct guest_memory *gm = &d->vm->mem;

	if (s->vhost_user)
		return create_remote(d, s);
	switch (s->kind) {
	case VM_VIRTIO_RNG:
		return virtio_rng_create(&d->vdev, gm);
	case VM_VIRTIO_BLK: {
		struct virtio_blk_config_opts o = { .path = s->path, .readonly = s->readonly,
						    .direct = s->direct, .serial = s->serial,
						    .num_queues = s->num_queues,
						    .queue_size = s->queue_size };
		return virtio_blk_create(&d->vdev, gm, &o);
	}
	case VM_VIRTIO_NET: {
		struct virtio_net_opts o = { .tap = s->path, .loopback = s->loopback,
					     .mac = s->has_mac ? s->mac : NULL };
		return virtio_net_create(&d->vdev, gm, &o);
	}
	case VM_VIRTIO_VSOCK: {
		struct virtio_vsock_config_opts o = { .guest_cid = s->cid, .uds = s->path };
		return virtio_vsock_create(&d->vdev, gm, &o);
	}
	}
	return -EINVAL;
}

/* The device's interrupt through KVM_IRQFD; without it, KVM_IRQ_LINE pulses. */
static void setup_irqfd(struct vm_virtio_dev *d)
{
	struct kvm_irqfd irqfd = { .gsi = d->irq };

	d->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->irqfd < 0)
		return;
	irqfd.fd = (uint32_t)d->irqfd;
	if (ioctl(d->vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		pr_warn("%s: KVM_IRQFD on GSI %u: %s (using KVM_IRQ_LINE)", d->name, d->irq,
			strerror(errno));
		close(d->irqfd);
		d->irqfd = -1;
	}
}

/* An in-process device's kick eventfds, made now rather than at the guest's DRIVER_OK on a
 * vCPU thread (a vhost-user device has its own). */
static int make_kick_fds(struct vm_virtio_dev *d)
{
	for (unsigned q = 0; !d->remote && q < d->vdev.cls->num_queues; q++) {
		d->kickfd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->kickfd[q] < 0)
			return -errno;
	}
	return 0;
}

static void dev_free(struct vm_virtio_dev *d)
{
	if (d->on_bus)
		bus_unregister(&d->vm->mmio, d->base);
	if (d->mmio_ready)
		virtio_mmio_destroy(&d->mmio); /* resets the device, undoes ioeventfds */
	if (d->remote)
		vu_remote_destroy(d->remote);
	if (d->vdev_ready)
		virtio_device_destroy(&d->vdev);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		if (d->kickfd[i] >= 0)
			close(d->kickfd[i]);
	if (d->irqfd >= 0) {
		struct kvm_irqfd irqfd = { .fd = (uint32_t)d->irqfd, .gsi = d->irq,
					   .flags = KVM_IRQFD_FLAG_DEASSIGN };

		ioctl(d->vm->vm_fd, KVM_IRQFD, &irqfd);
		close(d->irqfd);
	}
	free(d);
}

static const char *const kind_names[] = { [VM_VIRTIO_RNG] = "rng", [VM_VIRTIO_BLK] = "blk",
					  [VM_VIRTIO_NET] = "net", [VM_VIRTIO_VSOCK] = "vsock" };

static int dev_new(struct vm *vm, unsigned i, const struct vm_virtio_spec *s,
		   struct vm_virtio_dev **out)
{
	struct vm_virtio_dev *d = calloc(1, sizeof(*d));
	struct virtio_mmio_host host;
	int ret;

	if (!d)
		return -ENOMEM;
	d->vm = vm;
	vm_virtio_slot(&vm->cfg.virtio, i, &d->base, &d->irq); /* i < cfg->n: always there */
	d->irqfd = -1;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		d->kickfd[q] = -1;
	snprintf(d->name, sizeof(d->name), "virtio-%s%s@0x%" PRIx64, kind_names[s->kind],
		 s->vhost_user ? "-vu" : "", d->base);
	host = (struct virtio_mmio_host){ dev_irq, dev_queue_kick, d, &vm->mem };
	ret = create_device(d, s);
	if (ret)
		goto fail;
	if (d->remote) {
		d->handle = vu_remote_handle(d->remote);
	} else {
		d->vdev_ready = true;
		d->handle = virtio_device_handle(&d->vdev);
	}
	ret = make_kick_fds(d);
	if (ret)
		goto fail;
	setup_irqfd(d);
	ret = virtio_mmio_init(&d->mmio, d->handle, &host, d->name);
	if (ret)
		goto fail;
	d->mmio_ready = true;
	ret = bus_register(&vm->mmio, d->base, VIRTIO_MMIO_SIZE, virtio_mmio_access, &d->mmio,
			   "virtio-mmio");
	if (ret)
		goto fail;
	d->on_bus = true;
	*out = d;
	return 0;
fail:
	pr_err("%s: %s", d->name, strerror(-ret));
	dev_free(d);
	return ret;
}

/* The user's command line plus one virtio_mmio.device=4K@ADDR:IRQ per device. */
static int extend_cmdline(struct vm *vm, struct vm_virtio *vv)
{
	const char *base = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	size_t len = strlen(base) + 1 + vv->n * 48;
	char *p;

	vv->cmdline = malloc(len);
	if (!vv->cmdline)
		return -ENOMEM;
	vv->orig_cmdline = vm->cfg.cmdline;
	p = vv->cmdline + snprintf(vv->cmdline, len, "%s", base);
	for (unsigned i = 0; i < vv->n; i++)
		p += snprintf(p, len - (size_t)(p - vv->cmdline),
			      "%svirtio_mmio.device=4K@0x%" PRIx64 ":%u", p == vv->cmdline ? "" : " ",
			      vv->dev[i]->base, vv->dev[i]->irq);
	vm->cfg.cmdline = vv->cmdline;
	return 0;
}

int vm_virtio_init(struct vm *vm)
{
	const struct vm_virtio_config *cfg = &vm->cfg.virtio;
	struct vm_virtio *vv;
	int ret = 0;

	vm->virtio = NULL;
	if (!cfg->n)
		return 0;
	vv = calloc(1, sizeof(*vv));
	if (!vv)
		return -ENOMEM;
	vm->virtio = vv;
	for (unsigned i = 0; i < cfg->n && !ret; i++) {
		ret = dev_new(vm, i, &cfg->dev[i], &vv->dev[i]);
		if (!ret)
			vv->n++;
	}
	if (!ret)
		ret = extend_cmdline(vm, vv);
	if (ret)
		vm_virtio_exit(vm); /* vm_devices_init() calls no exit for a failed init */
	return ret;
}

void vm_virtio_exit(struct vm *vm)
{
	struct vm_virtio *vv = vm->virtio;

	if (!vv)
		return;
	while (vv->n > 0)
		dev_free(vv->dev[--vv->n]);
	if (vv->cmdline && vm->cfg.cmdline == vv->cmdline)
		vm->cfg.cmdline = vv->orig_cmdline;
	free(vv->cmdline);
	free(vv);
	vm->virtio = NULL;
}
