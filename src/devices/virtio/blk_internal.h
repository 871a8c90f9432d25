/* virtio-blk internals shared by its two halves: blk.c (the device class and the per-queue
 * I/O threads) and blk_req.c (one request: validated, pinned, turned into an io_uring
 * operation, completed). Not an interface for anything else. */
#ifndef VIREO_DEVICES_VIRTIO_BLK_INTERNAL_H
#define VIREO_DEVICES_VIRTIO_BLK_INTERNAL_H

#include <liburing.h>
#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/virtio/blk.h"
#include "virtio/device_ops.h"
#include "virtio/virtqueue.h"

#define SECTOR 512u
#define TAG_KICK UINT64_MAX

struct blk_req {
	struct blk_queue *q;
	struct blk_req *next_free;
	uint8_t *status;
	uint32_t written;         /* bytes for vq_push on success */
	unsigned ndata;
	bool pinned;
	struct iovec data[VQ_MAX_IOV];
	struct vq_elem elem;
};

struct blk_queue {
	struct virtio_blk *blk;
	unsigned idx;
	struct virtqueue *vq;
	pthread_t thread;
	bool started;
	int evfd;
	uint64_t evbuf;
	int kick_fd;              /* the driver's kick eventfd, read here (-1: queue_notify only) */
	uint64_t kick_buf;
	struct io_uring ring;
	atomic_bool stop;         /* set by reset on another thread (a data race as volatile) */
	unsigned inflight;
	struct blk_req *free_list;
	struct blk_req *deferred; /* popped, waiting for pin budget */
	bool pushed, broken;
	bool ring_disabled;       /* created disabled, enabled by the queue thread */
	bool restricted;          /* blk_ring_restrict() applied to the ring */
	bool fixed_file;          /* the image is registered file 0 of the ring */
	int file;                 /* what SQEs name: 0 (fixed) or the image's fd */
	uint64_t requests;        /* started since the device was created */
};

struct virtio_blk {
	struct virtio_device_class cls;
	struct virtio_device *vdev;
	int fd;
	bool readonly;
	bool copy_reads; /* reads are memory copies (page cache, tmpfs), not device DMA */
	uint64_t capacity; /* sectors */
	char serial[VIRTIO_BLK_ID_BYTES];
	unsigned nq, qsize;
	struct blk_queue *queues;
};

/* blk_req.c */
void queue_signal(struct blk_queue *q);
void queue_fail(struct blk_queue *q);
struct blk_req *req_alloc(struct blk_queue *q);
void req_free(struct blk_req *rq);
void req_complete(struct blk_req *rq, uint8_t status, uint32_t written);
struct io_uring_sqe *get_sqe(struct blk_queue *q);
int req_start(struct blk_req *rq);

/* blk.c: limit a disabled ring to the operations and flags a queue uses (0 or -errno) */
int blk_ring_restrict(struct io_uring *ring);

#endif
