/* `vireo backend vsock`: options and creation of the virtio-vsock device (kept apart from
 * kinds.c so that each kind's options stay next to its help text). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "devices/virtio/vsock.h"

static int vsock_opt_parse(struct backend_opts *o, const char *a, const char *v)
{
	char *end;

	if (!strcmp(a, "--queue-size"))
		return backend_parse_queue_opts(o, a, v);
	if (!strcmp(a, "--uds")) {
		if (!v)
			return -2;
		o->uds = v;
		return 1;
	}
	if (!strcmp(a, "--cid")) {
		if (!v)
			return -2;
		errno = 0;
		o->cid = strtoull(v, &end, 0);
		return errno || *end || end == v ? -1 : 1;
	}
	return -1;
}

static int vsock_kind_create(struct virtio_device *vdev, struct guest_memory *gm,
			const struct backend_opts *o)
{
	struct virtio_vsock_config_opts c = {
		.guest_cid = o->cid, .uds = o->uds, .queue_size = o->queue_size,
	};

	if (!o->uds || !o->cid)
		return -EINVAL;
	return virtio_vsock_create(vdev, gm, &c);
}

static void vsock_report(struct virtio_device *vdev)
{
	virtio_vsock_log_stats(vdev);
}

const struct backend_kind backend_kind_vsock = {
	.name = "vsock",
	.vu_name = "vhost-user-vsock",
	.summary = "virtio-vsock bridged to Unix sockets (Firecracker's convention)",
	.help = "  --cid N            the guest's context id, 3 or more (required)\n"
		"  --uds PATH         host side (required): a host process connects to PATH and writes\n"
		"                     \"CONNECT <port>\\n\", is answered \"OK <host port>\\n\", then talks\n"
		"                     to guest port <port>; a guest connecting to host port P reaches\n"
		"                     a listener at PATH_P\n"
		"  --queue-size N     entries per queue, power of two (default 256)\n"
		"counters (packets, bytes, connections, malformed packets by reason) are logged on\n"
		"SIGUSR1 and at exit. QEMU: -device vhost-user-vsock-pci,chardev=CHR (guest RAM must\n"
		"be shared: memory-backend-memfd,share=on).\n",
	.parse = vsock_opt_parse,
	.create = vsock_kind_create,
	.report = vsock_report,
};
