/* The front-end side of vhost-user: vireo driving a device that runs in another process
 * (vireo's own backends, qemu-storage-daemon, DPDK, virtiofsd...).
 *
 * Device-agnostic: it knows the protocol, not the device kind. The caller owns guest memory
 * (memfd regions from src/memory/guest_memory.h, which is what the backend maps) and the
 * rings inside it, and hands over eventfds for kicks and calls; the front-end only turns
 * "set up / start / stop ring i" into messages. The VMM puts it behind the device-ops
 * interface later (ioeventfd as the kick fd, irqfd as the call fd); bench/blk drives rings
 * of its own through it.
 *
 * The backend is another process, so everything it sends is checked: each reply must carry
 * the request code that was sent, the reply flag, the exact payload size of that request's
 * reply and no fds; REPLY_ACK statuses are read when negotiated. A socket receive timeout
 * bounds every wait, so a backend that stops answering is an error, not a hang. After any
 * protocol error the connection is unusable (vu_fe_broken): destroy it and connect again.
 *
 * Threads: one thread at a time per front-end (messages are request/reply pairs).
 */
#ifndef VIREO_VHOST_USER_FRONTEND_H
#define VIREO_VHOST_USER_FRONTEND_H

#include <stdbool.h>
#include <stdint.h>

#include "memory/guest_memory.h"

struct vu_fe;

struct vu_fe_config {
	const char *name;          /* for logs, e.g. "blk0" */
	struct guest_memory *gm;   /* regions with an fd are shared with the backend */
	unsigned timeout_ms;       /* per reply; 0: 5000 */
};

/* A ring as the driver laid it out: guest-physical addresses of the split ring's parts (packed
 * ring: descriptor ring, driver and device event areas), where the device starts, and the fds
 * the device reads kicks from and signals calls through (-1: none, i.e. polling). */
struct vu_fe_vring {
	unsigned num;
	uint64_t desc, avail, used;
	uint16_t base;             /* last_avail_idx to start from (0 for a new ring) */
	int kick_fd, call_fd;      /* dup'ed into the message; the caller keeps its own */
};

/* Connect to a backend listening on path (or adopt a connected socket, owned from then on)
 * and do the session set-up: SET_OWNER, GET_FEATURES, and with PROTOCOL_FEATURES
 * GET/SET_PROTOCOL_FEATURES (REPLY_ACK, MQ, CONFIG when the backend has them) and
 * GET_QUEUE_NUM. Returns 0 or -errno (nothing left allocated). */
int vu_fe_connect(const struct vu_fe_config *cfg, const char *path, struct vu_fe **out);
int vu_fe_adopt(const struct vu_fe_config *cfg, int sock, struct vu_fe **out);
void vu_fe_destroy(struct vu_fe *fe);

/* Virtio features the backend offers (vhost-user's own bits removed). */
uint64_t vu_fe_device_features(const struct vu_fe *fe);
/* Protocol features in use (VU_PF_* bits). */
uint64_t vu_fe_protocol_features(const struct vu_fe *fe);
/* Queues the backend has (GET_QUEUE_NUM with MQ, else 0 meaning "not said"). */
unsigned vu_fe_queue_num(const struct vu_fe *fe);
/* True once a protocol error made the connection unusable. */
bool vu_fe_broken(const struct vu_fe *fe);

/* SET_FEATURES with what the driver accepted: must be a subset of the offered ones (-EINVAL);
 * PROTOCOL_FEATURES is added by the front-end when it was negotiated. */
int vu_fe_set_features(struct vu_fe *fe, uint64_t features);
/* SET_MEM_TABLE from every gm region that has an fd (at most VU_MAX_MEM_REGIONS): the backend
 * maps the same pages. -EINVAL when a region has no fd. */
int vu_fe_set_mem_table(struct vu_fe *fe);
/* GET_CONFIG / SET_CONFIG (needs PROTOCOL_F_CONFIG: -EOPNOTSUPP otherwise). */
int vu_fe_get_config(struct vu_fe *fe, unsigned offset, void *buf, unsigned len);
int vu_fe_set_config(struct vu_fe *fe, unsigned offset, const void *buf, unsigned len);

/* Ring idx: SET_VRING_NUM, BASE, ADDR (ring gpas as front-end addresses, each checked to lie
 * in guest memory), KICK, CALL, then SET_VRING_ENABLE 1 (with PROTOCOL_FEATURES). */
int vu_fe_vring_start(struct vu_fe *fe, unsigned idx, const struct vu_fe_vring *r);
/* SET_VRING_ENABLE 0 and GET_VRING_BASE: the backend stops the ring and says where the next
 * start must resume (*base: its last_avail_idx). */
int vu_fe_vring_stop(struct vu_fe *fe, unsigned idx, uint16_t *base);

#endif
