/* The device kinds of `vireo backend`: options and creation, one block per kind. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"

static int parse_uint(const char *v, unsigned max, unsigned *out)
{
	char *end;
	unsigned long n;

	if (!v)
		return -2;
	errno = 0;
	n = strtoul(v, &end, 0);
	if (errno || *end || end == v || n == 0 || n > max)
		return -1;
	*out = (unsigned)n;
	return 1;
}

int backend_parse_queue_opts(struct backend_opts *o, const char *a, const char *v)
{
	if (!strcmp(a, "--queues"))
		return parse_uint(v, VIRTIO_MAX_QUEUES, &o->queues);
	if (!strcmp(a, "--queue-size"))
		return parse_uint(v, VQ_MAX_SIZE, &o->queue_size);
	return -1;
}

/* ---- rng ------------------------------------------------------------------------------- */

static int rng_create(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct backend_opts *o)
{
	(void)o;
	return virtio_rng_create(vdev, gm);
}

const struct backend_kind backend_kind_rng = {
	.name = "rng",
	.vu_name = "vhost-user-rng",
	.summary = "virtio-rng: random bytes from getrandom()",
	.help = "  (none: one request queue of 256 entries)\n",
	.create = rng_create,
};

/* ---- blk ------------------------------------------------------------------------------- */

static int blk_parse(struct backend_opts *o, const char *a, const char *v)
{
	int rc = backend_parse_queue_opts(o, a, v);

	if (rc != -1)
		return rc;
	if (!strcmp(a, "--path") || !strcmp(a, "--serial")) {
		if (!v)
			return -2;
		*(a[2] == 'p' ? &o->path : &o->serial) = v;
		return 1;
	}
	if (!strcmp(a, "--readonly")) {
		o->readonly = true;
		return 0;
	}
	if (!strcmp(a, "--direct")) {
		o->direct = true;
		return 0;
	}
	return -1;
}

static int blk_create(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct backend_opts *o)
{
	struct virtio_blk_config_opts c = {
		.path = o->path, .readonly = o->readonly, .direct = o->direct,
		.serial = o->serial, .num_queues = o->queues, .queue_size = o->queue_size,
	};

	if (!o->path)
		return -EINVAL;
	return virtio_blk_create(vdev, gm, &c);
}

const struct backend_kind backend_kind_blk = {
	.name = "blk",
	.vu_name = "vhost-user-blk",
	.summary = "virtio-blk on a file or block device, I/O through io_uring",
	.help = "  --path FILE        the disk image or block device (required)\n"
		"  --readonly         refuse writes (VIRTIO_BLK_F_RO)\n"
		"  --direct           open with O_DIRECT (bypass the host page cache)\n"
		"  --serial ID        the GET_ID string (20 bytes at most; default: file name)\n"
		"  --queues N         request queues, one I/O thread and io_uring each (default 1)\n"
		"  --queue-size N     entries per queue, power of two (default 256)\n",
	.parse = blk_parse,
	.create = blk_create,
};

/* ---- net ------------------------------------------------------------------------------- */

static int net_parse(struct backend_opts *o, const char *a, const char *v)
{
	if (!strcmp(a, "--queue-pairs"))
		return parse_uint(v, (VIRTIO_MAX_QUEUES - 1) / 2, &o->queues);
	if (!strcmp(a, "--queue-size"))
		return parse_uint(v, VQ_MAX_SIZE, &o->queue_size);
	if (!strcmp(a, "--tap") || !strcmp(a, "--mac")) {
		if (!v)
			return -2;
		*(a[2] == 't' ? &o->tap : &o->mac) = v;
		return 1;
	}
	if (!strcmp(a, "--loopback")) {
		o->loopback = true;
		return 0;
	}
	return -1;
}

static int net_create(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct backend_opts *o)
{
	struct virtio_net_config_opts c = {
		.tap = o->tap, .loopback = o->loopback, .queue_pairs = o->queues,
		.queue_size = o->queue_size, .mac = o->mac,
	};

	return virtio_net_create(vdev, gm, &c);
}

const struct backend_kind backend_kind_net = {
	.name = "net",
	.vu_name = "vhost-user-net",
	.summary = "virtio-net on a tap device, or loopback (transmitted frames come back)",
	.help = "  --tap NAME         use tap interface NAME (created when missing; offloads: checksum,\n"
		"                     TSO4/6 passed through)\n"
		"  --loopback         no host side: every frame the guest sends is received back\n"
		"  --queue-pairs N    receive/transmit queue pairs, one thread each (default 1)\n"
		"  --queue-size N     entries per queue, power of two (default 256)\n"
		"  --mac MAC          the device's MAC address (default 52:54:00:12:34:56)\n"
		"exactly one of --tap and --loopback is required.\n",
	.parse = net_parse,
	.create = net_create,
};
