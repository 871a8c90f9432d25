/* Device kinds that `vireo backend` can serve over vhost-user. Each kind parses its own
 * options into struct backend_opts and creates its in-process virtio device. */
#ifndef VIREO_BACKENDS_BACKEND_H
#define VIREO_BACKENDS_BACKEND_H

#include <stdbool.h>

#include "memory/guest_memory.h"
#include "virtio/device_ops.h"

struct backend_opts {
	const char *socket;
	bool client;
	int seccomp;          /* enum sandbox_mode: --seccomp on|off|log */
	unsigned queues;      /* 0: the kind's default (net: queue pairs) */
	unsigned queue_size;  /* 0: the kind's default */
	/* blk */
	const char *path;
	bool readonly, direct;
	const char *serial;
	/* net */
	const char *tap;
	bool loopback;
	const char *mac;
	unsigned poll_us;
	/* vsock */
	const char *uds;
	unsigned long long cid;
};

struct backend_kind {
	const char *name;
	const char *vu_name;  /* for logs: "vhost-user-blk" */
	const char *summary;
	const char *help;     /* the kind's own options, one per line */
	/* Parse option a (with its possible value v): returns how many extra arguments it
	 * consumed (0 or 1), -1 for an unknown option, -2 for a missing value, -3 for a value
	 * out of range or not a number. */
	int (*parse)(struct backend_opts *o, const char *a, const char *v);
	int (*create)(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct backend_opts *o);
	/* Optional: print the device's counters (on SIGUSR1 and at exit). */
	void (*report)(struct virtio_device *vdev);
};

extern const struct backend_kind backend_kind_rng;
extern const struct backend_kind backend_kind_blk;
extern const struct backend_kind backend_kind_net;
extern const struct backend_kind backend_kind_vsock;

/* Shared option helpers: --queues N, --queue-size N. */
int backend_parse_queue_opts(struct backend_opts *o, const char *a, const char *v);

int cmd_backend(int argc, char **argv);

#endif
