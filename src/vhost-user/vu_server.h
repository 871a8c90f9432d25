/* The back-end side of vhost-user, as a library that owns no event loop.
 *
 * A vu_server serves one device (a struct virtio_dev_handle: vhost-user messages become
 * device-ops calls, so nothing here knows the device kind) to one front-end at a time. It
 * tells the embedder which fds to poll through watch hooks; when a watched fd is readable the
 * embedder calls vu_server_handle() with the token it was given. Messages are checked against
 * a const table (payload size, fd count, negotiated features) before any handler runs; a bad
 * message ends that connection with a logged reason, the device is reset, and the server
 * waits for the next front-end (server mode) or lets the embedder reconnect (client mode).
 *
 * Guest memory: SET_MEM_TABLE regions are mapped and adopted into the caller's struct
 * guest_memory (the one the device was created with), with their front-end addresses.
 * Dirty logging (F_LOG_ALL + SET_LOG_BASE): pages the device marks dirty in guest memory are
 * copied into the front-end's log before every interrupt and when a ring stops (S3).
 * IOTLB (VIRTIO_F_ACCESS_PLATFORM): ring and buffer addresses are IOVAs translated through
 * the entries the front-end sent; anything else is unreachable (S10).
 */
#ifndef VIREO_VHOST_USER_VU_SERVER_H
#define VIREO_VHOST_USER_VU_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "memory/guest_memory.h"
#include "virtio/device_ops.h"

struct vu_server;

/* Tokens passed to watch(); give them back to vu_server_handle(). */
#define VU_TOKEN_LISTEN 0x100u
#define VU_TOKEN_CONN   0x101u
#define VU_TOKEN_KICK(i) (0x200u + (i)) /* ring i's kick eventfd */

struct vu_watch_ops {
	/* Start polling fd for input; report readiness with vu_server_handle(token). */
	int (*watch)(void *opaque, int fd, uint32_t token);
	/* Stop polling fd (called before the library closes it). */
	void (*unwatch)(void *opaque, int fd);
	void *opaque;
};

struct vu_server_config {
	const char *name;            /* for logs, e.g. "vhost-user-blk" */
	struct virtio_dev_handle dev;
	struct guest_memory *gm;     /* the device's memory map; the server fills and empties it */
	/* Lets the server put an IOTLB in front of the device's queues (optional: NULL means the
	 * device cannot be used with VIRTIO_F_ACCESS_PLATFORM, which is then not offered). */
	void (*set_iotlb)(void *dev, const struct vq_iotlb *iotlb);
	/* Optional: stop all processing and finish what is in flight, leaving the queue state
	 * readable (get_vq_state) until the next reset. Used before a ring's base is read; without
	 * it the server assumes nothing is in flight. */
	void (*quiesce)(void *dev);
	/* (addition) Optional: offer ring idx's kick eventfd to the device before it starts
	 * (virtio_device_set_kick_fd); when it returns true the device's own thread reads the fd
	 * and the server does not watch it (one thread hop less per kick). */
	bool (*set_kick_fd)(void *dev, unsigned idx, int fd);
	struct vu_watch_ops watch;
};

int vu_server_create(const struct vu_server_config *cfg, struct vu_server **out);
void vu_server_destroy(struct vu_server *s);

/* Server mode: listen on a Unix socket path (an existing socket file is replaced). */
int vu_server_listen(struct vu_server *s, const char *path);
/* Client mode: connect to a front-end listening at path. -errno when nobody listens. */
int vu_server_connect(struct vu_server *s, const char *path);
/* Serve an already connected socket (tests: one end of a socketpair). Takes ownership. */
int vu_server_adopt(struct vu_server *s, int fd);

/* One event: accept on the listening socket, one message on the connection, or one kick.
 * Returns 0, or -ECONNRESET when the connection ended (bad message or peer gone; logged). */
int vu_server_handle(struct vu_server *s, uint32_t token);
/* Read, check, dispatch and answer one message from the connection (blocking). 0, or
 * -errno after which the connection has been closed. */
int vu_server_process_one(struct vu_server *s);

bool vu_server_connected(const struct vu_server *s);
/* Why the last connection ended (static string), or NULL. */
const char *vu_server_last_error(const struct vu_server *s);
/* Messages refused since creation (for tests and statistics). */
uint64_t vu_server_refused(const struct vu_server *s);

#endif
