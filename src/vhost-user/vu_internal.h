/* State shared by the vhost-user server's files (vu_server.c: connection and dispatch,
 * vu_vring.c: rings, vu_mem.c: memory table and dirty log, vu_iotlb.c: IOTLB). Not for
 * users of the library. */
#ifndef VIREO_VHOST_USER_VU_INTERNAL_H
#define VIREO_VHOST_USER_VU_INTERNAL_H

#include <pthread.h>

#include "vhost-user/vu_msg.h"
#include "vhost-user/vu_server.h"

#define VU_MAX_RINGS VIRTIO_MAX_QUEUES
#define VU_IOTLB_MAX 1024
#define VU_MAX_DEFERRED 8

struct vu_server;

struct vu_vring {
	struct vu_server *s;
	unsigned idx;
	unsigned num;                /* 0: not set */
	struct vhost_vring_addr addr;
	bool addr_set;
	struct virtio_vq_state base;
	int kick_fd;
	int call_fd, err_fd;         /* guarded by call_lock: device threads signal through them */
	pthread_mutex_t call_lock;
	bool enabled;
	bool running;                /* part of the device's current start */
	bool device_kick;            /* the device reads kick_fd itself (not watched here) */
};

struct vu_mapping {                  /* one mmapped memory table region */
	void *base;
	size_t len;
	int fd;
};

struct vu_iotlb_entry {
	uint64_t iova, size, uaddr;
	uint8_t perm;
};

struct vu_server {
	char name[64];
	struct virtio_dev_handle dev;
	struct guest_memory *gm;
	void (*set_iotlb)(void *dev, const struct vq_iotlb *iotlb);
	void (*quiesce)(void *dev);
	bool (*set_kick_fd)(void *dev, unsigned idx, int fd);
	struct vu_watch_ops watch;

	int listen_fd, conn_fd;
	const char *last_error;
	uint64_t refused;

	/* negotiated state of the current connection */
	uint64_t features;           /* as SET_FEATURES gave them */
	bool features_set;
	uint64_t protocol_features;
	bool protocol_set;
	bool owner;
	unsigned nrings;             /* the device's queue count */
	bool dev_started;            /* DRIVER_OK given to the device on the running rings */
	struct vu_vring rings[VU_MAX_RINGS];
	int backend_fd;              /* backend-request channel (SET_BACKEND_REQ_FD) */
	pthread_mutex_t backend_lock;

	struct vu_mapping maps[VU_MAX_MEM_REGIONS];
	unsigned nmaps;

	pthread_mutex_t log_lock;    /* the log mapping vs. flushes from device threads */
	uint8_t *log;                /* front-end's dirty log, one bit per 4 KiB of gpa */
	void *log_base;
	size_t log_map_len, log_size;
	int log_fd;
	unsigned long *dirty_buf;    /* scratch for the flush, dirty_words long */
	size_t dirty_words;
	uint64_t log_pages, log_flushes, log_bases; /* statistics, logged at disconnect */

	pthread_mutex_t iotlb_lock;
	pthread_cond_t iotlb_cond;   /* signalled when an update arrives (a miss waits) */
	struct vu_iotlb_entry iotlb[VU_IOTLB_MAX];
	unsigned niotlb;
	struct vq_iotlb vq_iotlb;
	uint64_t iotlb_misses, iotlb_updates, iotlb_invalidations;
	bool iotlb_start_pending;    /* a start waits for ring translations (misses sent) */

	/* the thread running vu_server_handle, and messages read while it waited inline */
	pthread_t loop_thread;
	bool in_loop;
	bool pumping;                /* inside vu_pump_inline */
	int inline_error;
	struct vu_msg deferred[VU_MAX_DEFERRED];
	unsigned ndeferred;
};

static inline bool vu_has_feature(const struct vu_server *s, unsigned bit)
{
	return s->features & (1ull << bit);
}
static inline bool vu_has_pf(const struct vu_server *s, unsigned bit)
{
	return s->protocol_set && (s->protocol_features & (1ull << bit));
}
bool vu_iotlb_active(const struct vu_server *s);
uint64_t vu_offered_features(struct vu_server *s);
uint64_t vu_device_features(struct vu_server *s); /* the negotiated ones the device sees */

/* vu_vring.c */
void vu_vrings_init(struct vu_server *s);
void vu_vrings_reset(struct vu_server *s); /* stop all, close fds, forget set-up */
void vu_dev_stop(struct vu_server *s);
int vu_dev_sync(struct vu_server *s, bool force);
int vu_negotiate_device(struct vu_server *s);
void vu_handle_kick(struct vu_server *s, unsigned idx);
int vu_h_vring_num(struct vu_server *s, struct vu_msg *m);
int vu_h_vring_addr(struct vu_server *s, struct vu_msg *m);
int vu_h_vring_base(struct vu_server *s, struct vu_msg *m);
int vu_h_get_vring_base(struct vu_server *s, struct vu_msg *m);
int vu_h_vring_kick(struct vu_server *s, struct vu_msg *m);
int vu_h_vring_call(struct vu_server *s, struct vu_msg *m);
int vu_h_vring_err(struct vu_server *s, struct vu_msg *m);
int vu_h_vring_enable(struct vu_server *s, struct vu_msg *m);

/* vu_mem.c */
int vu_h_mem_table(struct vu_server *s, struct vu_msg *m);
int vu_h_log_base(struct vu_server *s, struct vu_msg *m);
int vu_h_log_fd(struct vu_server *s, struct vu_msg *m);
void vu_mem_unmap_all(struct vu_server *s);
void vu_log_unmap(struct vu_server *s);
void vu_log_flush(struct vu_server *s);
bool vu_mem_table_size_ok(const struct vu_msg *m);

/* vu_iotlb.c */
int vu_h_iotlb_msg(struct vu_server *s, struct vu_msg *m);
int vu_h_backend_req_fd(struct vu_server *s, struct vu_msg *m);
#define VU_BACKEND_SEND_WAIT_MS 1000
/* A message on the backend channel; the channel is closed when the front-end stops reading. */
int vu_backend_send(struct vu_server *s, const struct vu_hdr *h, const void *payload);
void vu_iotlb_reset(struct vu_server *s);
void vu_iotlb_changed(struct vu_server *s, const struct vhost_iotlb_msg *im);
uint64_t vu_iotlb_xlate(void *opaque, uint64_t iova, uint64_t len, int access, uint64_t *gpa);
/* A ring address (front-end user address, or IOVA under the IOTLB) to gpa, for len bytes. */
int vu_ring_addr_to_gpa(struct vu_server *s, uint64_t addr, uint64_t len, uint64_t *gpa);

void vu_fail(struct vu_server *s, const char *why); /* record why the connection ends */
void vu_pump_inline(struct vu_server *s, bool (*done)(struct vu_server *, const void *),
		    const void *arg, int timeout_ms);
/* Whether [iova, iova+len) is mapped with `access`; when not, a miss is sent (no wait). */
bool vu_iotlb_ready(struct vu_server *s, uint64_t iova, uint64_t len, int access);

#endif
