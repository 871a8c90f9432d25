/* The device kinds of `vireo backend`: options and creation, one block per kind. */
#include <errno.h>
#include <stdio.h>
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
		return -3; /* a bad value */
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

	if (!o->path) {
		fprintf(stderr, "vireo backend blk: --path FILE is required\n");
		return -EINVAL;
	}
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
	int rc = backend_parse_queue_opts(o, !strcmp(a, "--queue-pairs") ? "--queues" : a, v);

	if (rc != -1)
		return rc;
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
	if (!strcmp(a, "--poll-us")) { /* 0 is valid here: never poll */
		if (v && !strcmp(v, "0")) {
			o->poll_us = 0;
			return 1;
		}
		return parse_uint(v, 1000000, &o->poll_us);
	}
	return -1;
}

static int net_create(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct backend_opts *o)
{
	uint8_t mac[6];
	struct virtio_net_opts n = {
		.tap = o->tap, .loopback = o->loopback, .queue_pairs = o->queues,
		.queue_size = o->queue_size, .poll_us = o->poll_us,
	};

	if (o->mac) {
		if (virtio_net_parse_mac(o->mac, mac))
			return -EINVAL;
		n.mac = mac;
	}
	if (!o->tap == !o->loopback)
		return -EINVAL; /* exactly one host side */
	return virtio_net_create(vdev, gm, &n);
}

static void net_report(struct virtio_device *vdev)
{
	virtio_net_print_stats(vdev, stdout);
}

const struct backend_kind backend_kind_net = {
	.name = "net",
	.vu_name = "vhost-user-net",
	.summary = "virtio-net on a tap interface, or loopback (tx comes back on rx)",
	.help = "  --tap NAME         host side: tap interface NAME (created if missing; one tap\n"
		"                     queue per pair, IFF_VNET_HDR, offloads the tap accepts)\n"
		"  --loopback         host side: frames sent on a pair come back on its receive queue\n"
		"                     (exactly one of --tap / --loopback)\n"
		"  --queues N         queue pairs, one thread each (default 1; MQ when N > 1);\n"
		"                     --queue-pairs N is the same\n"
		"  --queue-size N     entries per queue, power of two (default 256)\n"
		"  --mac MAC          the device's MAC address (default 52:54:00:76:69:72)\n"
		"  --poll-us N        keep polling the rings N microseconds after the last frame\n"
		"                     before sleeping (default 0: sleep at once, kicks wake it)\n"
		"  Counters (packets/bytes both ways, errors, drops) are printed on SIGUSR1 and at\n"
		"  exit. Frames wait for receive buffers (none are dropped for lack of them); tx\n"
		"  chains shorter than the 12-byte header or over 64 KiB are refused and counted.\n",
	.parse = net_parse,
	.create = net_create,
	.report = net_report,
};
