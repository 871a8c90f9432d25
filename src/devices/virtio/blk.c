/* virtio-blk: requests from the driver become io_uring operations on the image file.
 *
 * Each request queue has its own thread and io_uring; a kick (queue_notify, from any thread)
 * writes the queue's eventfd, which the thread reads through its ring. When the transport
 * hands over the driver's kick eventfd (queue_kick_fd: vhost-user, ioeventfd), the thread
 * polls that one directly through the ring, so a kick wakes the queue thread and nothing else. Many requests are in
 * flight per queue. Their data buffers are DMA-pinned in guest memory (gm_pin, S3) from
 * submission to completion; when the pin budget is exhausted the queue waits for completions.
 * Every request is validated before any I/O: header and status byte present, data lengths in
 * whole sectors, sector ranges inside the capacity (overflow-checked), discard/write-zeroes
 * segments well-formed, writes refused on a read-only disk.
 *
 * Locking: queue threads never take vdev->lock (reset holds it while joining them); they use
 * their own virtqueue and the queue's interrupt callback, both fixed while the device runs.
 * reset() stops the threads after everything in flight has completed and been returned.
 */
#include "devices/virtio/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

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
	volatile bool stop;
	unsigned inflight;
	struct blk_req *free_list;
	struct blk_req *deferred; /* popped, waiting for pin budget */
	bool pushed, broken;
	bool ring_disabled;       /* created disabled, enabled by the queue thread */
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

/* ---- helpers --------------------------------------------------------------------------- */

static uint64_t hva_to_gpa(const struct guest_memory *gm, const void *hva, bool *ok)
{
	const uint8_t *p = hva;

	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->regions[i];

		if (p >= r->hva && p < r->hva + r->size) {
			*ok = true;
			return r->gpa + (uint64_t)(p - r->hva);
		}
	}
	*ok = false;
	return 0;
}

/* Pin every data buffer of rq (all or nothing). */
static int req_pin(struct blk_req *rq)
{
	struct guest_memory *gm = rq->q->blk->vdev->gm;
	unsigned i;
	int rc = 0;

	for (i = 0; i < rq->ndata; i++) {
		bool ok;
		uint64_t gpa = hva_to_gpa(gm, rq->data[i].iov_base, &ok);

		if (!rq->data[i].iov_len)
			continue;
		rc = ok ? gm_pin(gm, gpa, rq->data[i].iov_len, 0) : -EFAULT;
		if (rc)
			break;
	}
	if (!rc) {
		rq->pinned = true;
		return 0;
	}
	while (i--) {
		bool ok;
		uint64_t gpa = hva_to_gpa(gm, rq->data[i].iov_base, &ok);

		if (rq->data[i].iov_len)
			gm_unpin(gm, gpa, rq->data[i].iov_len);
	}
	return rc;
}

static void req_unpin(struct blk_req *rq)
{
	struct guest_memory *gm = rq->q->blk->vdev->gm;

	if (!rq->pinned)
		return;
	for (unsigned i = 0; i < rq->ndata; i++) {
		bool ok;
		uint64_t gpa = hva_to_gpa(gm, rq->data[i].iov_base, &ok);

		if (ok && rq->data[i].iov_len)
			gm_unpin(gm, gpa, rq->data[i].iov_len);
	}
	rq->pinned = false;
}

/* Copy [skip, skip+len) of the iovecs iov[0..n) into out[] (pointers, not bytes). Returns the
 * number of out entries, or -1 when the range does not fit. */
static int iov_slice(const struct iovec *iov, unsigned n, uint64_t skip, uint64_t len,
		     struct iovec *out, unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		uint64_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		if (k == max)
			return -1;
		out[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
		out[k].iov_len = l - skip < len ? l - skip : len;
		len -= out[k].iov_len;
		skip = 0;
		k++;
	}
	return len ? -1 : (int)k;
}

static void iov_to_buf(const struct iovec *iov, unsigned n, void *buf, size_t len)
{
	uint8_t *b = buf;

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len < len ? iov[i].iov_len : len;

		memcpy(b, iov[i].iov_base, l);
		b += l;
		len -= l;
	}
}

/* Interrupt the driver if it wants one; the callback is fixed while the device runs. */
static void queue_signal(struct blk_queue *q)
{
	struct virtio_queue_slot *slot = &q->blk->vdev->queues[q->idx];

	if (!q->pushed)
		return;
	q->pushed = false;
	if (slot->cb && vq_should_notify(q->vq))
		slot->cb(slot->cb_opaque, q->idx);
}

/* A broken ring: ask for a reset, unless the device is being reset right now. */
static void queue_fail(struct blk_queue *q)
{
	struct virtio_device *vdev = q->blk->vdev;

	q->broken = true;
	while (pthread_mutex_trylock(&vdev->lock)) {
		if (q->stop)
			return;
		sched_yield();
	}
	virtio_device_fail(vdev, q->idx, vq_error_name(q->vq->last_error));
	pthread_mutex_unlock(&vdev->lock);
}

static struct blk_req *req_alloc(struct blk_queue *q)
{
	struct blk_req *rq = q->free_list;

	if (rq) {
		q->free_list = rq->next_free;
	} else {
		rq = malloc(sizeof(*rq));
		if (!rq)
			return NULL;
	}
	rq->q = q;
	rq->pinned = false;
	rq->ndata = 0;
	return rq;
}

static void req_free(struct blk_req *rq)
{
	rq->next_free = rq->q->free_list;
	rq->q->free_list = rq;
}

/* Finish a request: status byte, used ring, pins released. */
static void req_complete(struct blk_req *rq, uint8_t status, uint32_t written)
{
	struct blk_queue *q = rq->q;

	req_unpin(rq);
	*rq->status = status;
	if (vq_push(q->vq, &rq->elem, written) < 0)
		queue_fail(q);
	q->pushed = true;
	req_free(rq);
}

/* ---- request parsing and submission ------------------------------------------------------ */

static bool range_ok(const struct virtio_blk *blk, uint64_t sector, uint64_t nsect)
{
	return sector <= blk->capacity && nsect <= blk->capacity - sector;
}

static struct io_uring_sqe *get_sqe(struct blk_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
	return sqe;
}

#define BLK_ASYNC_MIN (128u << 10)

/* Data buffers of a read or write: pinned for the duration of the I/O. */
static int req_rw(struct blk_req *rq, bool write, uint64_t sector)
{
	struct blk_queue *q = rq->q;
	struct vq_elem *e = &rq->elem;
	uint64_t len = write ? e->out_len - sizeof(struct virtio_blk_outhdr) : e->in_len - 1;
	struct io_uring_sqe *sqe;
	int n, rc;

	if (len % SECTOR || len > (1u << 30) || !range_ok(q->blk, sector, len / SECTOR))
		return -EINVAL;
	if (write)
		n = iov_slice(e->iov, e->out_num, sizeof(struct virtio_blk_outhdr), len, rq->data,
			      VQ_MAX_IOV);
	else
		n = iov_slice(e->iov + e->out_num, e->in_num, 0, len, rq->data, VQ_MAX_IOV);
	if (n < 0)
		return -EINVAL;
	rq->ndata = (unsigned)n;
	rc = req_pin(rq);
	if (rc == -ENOMEM && q->inflight)
		return -EAGAIN; /* wait for completions to return pin budget */
	if (rc && rc != -ENOMEM)
		return -EFAULT;
	sqe = get_sqe(q);
	if (!sqe) {
		req_unpin(rq);
		return -EAGAIN;
	}
	/* one buffer (the usual case): plain read/write, no iovec for the kernel to copy in */
	if (rq->ndata == 1 && write)
		io_uring_prep_write(sqe, q->file, rq->data[0].iov_base, rq->data[0].iov_len,
				    sector * SECTOR);
	else if (rq->ndata == 1)
		io_uring_prep_read(sqe, q->file, rq->data[0].iov_base, rq->data[0].iov_len,
				   sector * SECTOR);
	else if (write)
		io_uring_prep_writev(sqe, q->file, rq->data, rq->ndata, sector * SECTOR);
	else
		io_uring_prep_readv(sqe, q->file, rq->data, rq->ndata, sector * SECTOR);
	if (q->fixed_file)
		sqe->flags |= IOSQE_FIXED_FILE;
	/* Large reads from memory-backed data (page cache, tmpfs) go straight to io_uring's
	 * workers: the kernel would otherwise copy them inline in this thread, one request after
	 * another, while the workers copy several at once. Direct I/O to a device is already
	 * asynchronous and gains nothing; small requests and writes stay inline (writers of one
	 * file serialise on its inode lock: workers only add overhead). */
	if (!write && q->blk->copy_reads && len >= BLK_ASYNC_MIN)
		sqe->flags |= IOSQE_ASYNC;
	rq->written = (uint32_t)len; /* expected result */
	io_uring_sqe_set_data(sqe, rq);
	return 1;
}

/* DISCARD and WRITE_ZEROES: one segment (max_*_seg is 1). */
static int req_zero(struct blk_req *rq, uint32_t type)
{
	struct blk_queue *q = rq->q;
	struct vq_elem *e = &rq->elem;
	uint8_t buf[sizeof(struct virtio_blk_outhdr) + sizeof(struct virtio_blk_discard_write_zeroes)];
	struct virtio_blk_discard_write_zeroes seg;
	struct io_uring_sqe *sqe;
	uint64_t sector;
	uint32_t nsect, flags;
	int mode;

	if (e->out_len != sizeof(buf))
		return -EINVAL;
	iov_to_buf(e->iov, e->out_num, buf, sizeof(buf));
	memcpy(&seg, buf + sizeof(struct virtio_blk_outhdr), sizeof(seg));
	sector = le64toh(seg.sector);
	nsect = le32toh(seg.num_sectors);
	flags = le32toh(seg.flags);
	if (!nsect || nsect > VIRTIO_BLK_MAX_DISCARD_SECTORS || !range_ok(q->blk, sector, nsect))
		return -EINVAL;
	if (flags & ~(type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0))
		return -EOPNOTSUPP;
	mode = FALLOC_FL_KEEP_SIZE |
	       (type == VIRTIO_BLK_T_DISCARD || (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ?
		FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
	sqe = get_sqe(q);
	if (!sqe)
		return -EAGAIN;
	io_uring_prep_fallocate(sqe, q->file, mode, sector * SECTOR, (uint64_t)nsect * SECTOR);
	if (q->fixed_file)
		sqe->flags |= IOSQE_FIXED_FILE;
	rq->written = 0;
	io_uring_sqe_set_data(sqe, rq);
	return 1;
}

static int req_get_id(struct blk_req *rq)
{
	struct vq_elem *e = &rq->elem;
	struct iovec out[VQ_MAX_IOV];
	uint64_t len = e->in_len - 1 < VIRTIO_BLK_ID_BYTES ? e->in_len - 1 : VIRTIO_BLK_ID_BYTES;
	const char *src = rq->q->blk->serial;
	int n = iov_slice(e->iov + e->out_num, e->in_num, 0, len, out, VQ_MAX_IOV);

	for (int i = 0; i < n; i++) {
		memcpy(out[i].iov_base, src, out[i].iov_len);
		src += out[i].iov_len;
	}
	return 0;
}

/* The status byte: the last byte of the last non-empty writable buffer. */
static uint8_t *status_byte(struct vq_elem *e)
{
	for (unsigned i = e->out_num + e->in_num; i-- > e->out_num;)
		if (e->iov[i].iov_len)
			return (uint8_t *)e->iov[i].iov_base + e->iov[i].iov_len - 1;
	return NULL;
}

/* Start one popped request: 1 submitted, 0 completed at once, -EAGAIN retry later. */
static int req_start(struct blk_req *rq)
{
	struct virtio_blk *blk = rq->q->blk;
	struct vq_elem *e = &rq->elem;
	struct virtio_blk_outhdr hdr = { 0 };
	struct io_uring_sqe *sqe;
	uint32_t type;
	int rc;

	rq->status = status_byte(e);
	if (!rq->status || e->out_len < sizeof(hdr)) {
		pr_warn("virtio-blk: request %u without header or status byte: returned unused",
			e->id);
		if (vq_push(rq->q->vq, e, 0) < 0)
			queue_fail(rq->q);
		rq->q->pushed = true;
		req_free(rq);
		return 0;
	}
	iov_to_buf(e->iov, e->out_num, &hdr, sizeof(hdr));
	type = le32toh(hdr.type);
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (type == VIRTIO_BLK_T_OUT && blk->readonly)
			rc = -EROFS;
		else
			rc = req_rw(rq, type == VIRTIO_BLK_T_OUT, le64toh(hdr.sector));
		break;
	case VIRTIO_BLK_T_FLUSH:
		sqe = get_sqe(rq->q);
		if (!sqe)
			return -EAGAIN;
		io_uring_prep_fsync(sqe, rq->q->file, 0);
		if (rq->q->fixed_file)
			sqe->flags |= IOSQE_FIXED_FILE;
		rq->written = 0;
		io_uring_sqe_set_data(sqe, rq);
		rc = 1;
		break;
	case VIRTIO_BLK_T_GET_ID:
		rc = req_get_id(rq);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		rc = blk->readonly ? -EROFS : req_zero(rq, type);
		break;
	default:
		rc = -EOPNOTSUPP;
	}
	if (rc == 1 || rc == -EAGAIN)
		return rc;
	if (rc < 0)
		pr_debug("virtio-blk: request type %u sector %llu refused: %s", type,
			 (unsigned long long)le64toh(hdr.sector), strerror(-rc));
	req_complete(rq, rc == 0 ? VIRTIO_BLK_S_OK :
		     rc == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR,
		     (uint32_t)e->in_len);
	return 0;
}

/* ---- the queue thread -------------------------------------------------------------------- */

/* The driver's own kick eventfd: a poll linked to a read of the counter, both in the ring, so
 * the thread never blocks on the fd (a read(2) after a poll could: a poll may report the same
 * kick twice, and the fd may be blocking) and makes no system call of its own for a kick. The
 * fd may also be non-blocking (QEMU's are), which io_uring reads honour: hence the poll first,
 * and an -EAGAIN read just re-arms. The read is tagged with &q->kick_fd, the poll (whose CQE
 * only shows up on failure) with &q->kick_buf. */
static void arm_driver_kick(struct blk_queue *q)
{
	struct io_uring_sqe *poll, *rd;

	if (io_uring_sq_space_left(&q->ring) < 2)
		io_uring_submit(&q->ring);
	poll = io_uring_get_sqe(&q->ring);
	rd = poll ? io_uring_get_sqe(&q->ring) : NULL;
	if (!rd) {
		pr_err("virtio-blk: queue %u: no room in the ring for the kick poll", q->idx);
		return;
	}
	io_uring_prep_poll_add(poll, q->kick_fd, POLLIN);
	io_uring_sqe_set_data(poll, &q->kick_buf);
	poll->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
	io_uring_prep_read(rd, q->kick_fd, &q->kick_buf, sizeof(q->kick_buf), 0);
	io_uring_sqe_set_data(rd, &q->kick_fd);
}

static void arm_kick(struct blk_queue *q)
{
	struct io_uring_sqe *sqe = get_sqe(q);

	if (!sqe)
		return;
	io_uring_prep_read(sqe, q->evfd, &q->evbuf, sizeof(q->evbuf), 0);
	io_uring_sqe_set_data(sqe, NULL);
}

/* Pop and start requests until the ring is empty or one must wait. */
static void process_avail(struct blk_queue *q)
{
	for (;;) {
		vq_enable_notify(q->vq, false);
		while (!q->broken) {
			struct blk_req *rq = q->deferred;
			int rc;

			q->deferred = NULL;
			if (!rq) {
				rq = req_alloc(q);
				if (!rq)
					break;
				rc = vq_pop(q->vq, &rq->elem);
				if (rc <= 0) {
					req_free(rq);
					if (rc < 0)
						queue_fail(q);
					break;
				}
			}
			rc = req_start(rq);
			if (rc != -EAGAIN)
				q->requests++;
			if (rc == -EAGAIN) {
				q->deferred = rq;
				vq_enable_notify(q->vq, true);
				return;
			}
			if (rc == 1)
				q->inflight++;
		}
		if (q->broken || !vq_enable_notify(q->vq, true))
			return;
	}
}

static void reap(struct blk_queue *q)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&q->ring, head, cqe) {
		struct blk_req *rq = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		n++;
		if (!rq) {
			if (!q->stop)
				arm_kick(q);
			continue;
		}
		if ((void *)rq == &q->kick_buf) /* the poll failed: its read says why */
			continue;
		if ((void *)rq == &q->kick_fd) {
			/* a kick (or a lost race for the counter: -EAGAIN); anything else stops
			 * reading the fd, the server's queue_notify path still works */
			if (res >= 0 || res == -EAGAIN) {
				if (!q->stop)
					arm_driver_kick(q);
			} else if (!q->stop) {
				pr_warn("virtio-blk: queue %u: kick fd: %s", q->idx, strerror(-res));
			}
			continue;
		}
		q->inflight--;
		if (res < 0 || (uint32_t)res != rq->written)
			pr_warn("virtio-blk: queue %u: I/O error: %s", q->idx,
				res < 0 ? strerror(-res) : "short transfer");
		req_complete(rq, res >= 0 && (uint32_t)res == rq->written ? VIRTIO_BLK_S_OK :
			     VIRTIO_BLK_S_IOERR, (uint32_t)rq->elem.in_len);
	}
	io_uring_cq_advance(&q->ring, n);
}

static void *queue_thread(void *arg)
{
	struct blk_queue *q = arg;

	/* this thread becomes the ring's single issuer (liburing 2.3 lacks io_uring_enable_rings) */
	if (q->ring_disabled &&
	    syscall(__NR_io_uring_register, q->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0))
		pr_err("virtio-blk: queue %u: cannot enable the io_uring: %s", q->idx,
		       strerror(errno));
	arm_kick(q);
	if (q->kick_fd >= 0)
		arm_driver_kick(q);
	process_avail(q);
	while (!(q->stop && q->inflight == 0)) {
		int rc = io_uring_submit_and_wait(&q->ring, 1);

		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			pr_err("virtio-blk: queue %u: io_uring: %s", q->idx, strerror(-rc));
			break;
		}
		reap(q);
		if (!q->stop)
			process_avail(q);
		queue_signal(q);
	}
	queue_signal(q);
	return NULL;
}

/* ---- the device class ------------------------------------------------------------------- */

static void blk_stop_queues(struct virtio_device *vdev)
{
	struct virtio_blk *blk = vdev->priv;

	for (unsigned i = 0; i < blk->nq; i++) {
		struct blk_queue *q = &blk->queues[i];

		if (!q->started) {
			q->kick_fd = -1; /* handed over for one activation only */
			continue;
		}
		q->stop = true;
		eventfd_write(q->evfd, 1);
		pthread_join(q->thread, NULL);
		if (q->deferred) { /* popped but never started: give it back to the ring */
			vq_unpop(q->vq, &q->deferred->elem);
			req_free(q->deferred);
			q->deferred = NULL;
		}
		io_uring_queue_exit(&q->ring);
		q->started = false;
		q->kick_fd = -1; /* handed over for one activation only */
		pr_info("virtio-blk: queue %u stopped, %llu requests so far", i,
			(unsigned long long)q->requests);
	}
}

/* One ring per queue, used by its thread only: SINGLE_ISSUER + DEFER_TASKRUN let completions
 * wait (no inter-processor interrupt, no task-work signal) until the thread asks for them in
 * io_uring_enter, which it does anyway when it sleeps. The ring starts disabled so that the
 * queue thread, not this one, becomes its issuer. Older kernels: a plain ring. */
static int queue_ring_init(struct blk_queue *q)
{
	struct io_uring_params p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
	rc = io_uring_queue_init_params(q->blk->qsize + 8, &q->ring, &p);
	q->ring_disabled = !rc;
	if (rc == -EINVAL)
		rc = io_uring_queue_init(q->blk->qsize + 8, &q->ring, 0);
	if (rc)
		return rc;
	/* the image as registered file 0: no file reference taken and dropped per request */
	q->fixed_file = !io_uring_register_files(&q->ring, &q->blk->fd, 1);
	q->file = q->fixed_file ? 0 : q->blk->fd;
	return 0;
}

static int blk_activate(struct virtio_device *vdev)
{
	struct virtio_blk *blk = vdev->priv;
	int rc = 0;

	for (unsigned i = 0; i < blk->nq && !rc; i++) {
		struct blk_queue *q = &blk->queues[i];

		q->vq = virtio_device_vq(vdev, i);
		if (!q->vq)
			continue;
		q->stop = q->broken = q->pushed = false;
		q->inflight = 0;
		rc = queue_ring_init(q);
		if (rc)
			break;
		rc = -pthread_create(&q->thread, NULL, queue_thread, q);
		if (rc) {
			io_uring_queue_exit(&q->ring);
			break;
		}
		q->started = true;
	}
	if (rc) {
		pr_err("virtio-blk: cannot start the queues: %s", strerror(-rc));
		blk_stop_queues(vdev);
	}
	return rc;
}

static void blk_queue_notify(struct virtio_device *vdev, unsigned idx)
{
	struct virtio_blk *blk = vdev->priv;

	if (idx < blk->nq && blk->queues[idx].started)
		eventfd_write(blk->queues[idx].evfd, 1);
}

static bool blk_queue_kick_fd(struct virtio_device *vdev, unsigned idx, int fd)
{
	struct virtio_blk *blk = vdev->priv;

	if (idx >= blk->nq || blk->queues[idx].started)
		return false;
	blk->queues[idx].kick_fd = fd;
	return fd >= 0;
}

static void blk_read_config(struct virtio_device *vdev, unsigned offset, void *buf,
			    unsigned len)
{
	struct virtio_blk *blk = vdev->priv;
	struct virtio_blk_config c;

	memset(&c, 0, sizeof(c));
	c.capacity = htole64(blk->capacity);
	c.seg_max = htole32(blk->qsize - 2 < VQ_MAX_IOV - 2 ? blk->qsize - 2 : VQ_MAX_IOV - 2);
	c.blk_size = htole32(SECTOR);
	c.num_queues = htole16((uint16_t)blk->nq);
	c.max_discard_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
	c.max_discard_seg = htole32(1);
	c.discard_sector_alignment = htole32(1);
	c.max_write_zeroes_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
	c.max_write_zeroes_seg = htole32(1);
	c.write_zeroes_may_unmap = 1;
	memcpy(buf, (uint8_t *)&c + offset, len);
}

static void blk_destroy(struct virtio_device *vdev)
{
	struct virtio_blk *blk = vdev->priv;

	blk_stop_queues(vdev);
	for (unsigned i = 0; i < blk->nq; i++) {
		struct blk_queue *q = &blk->queues[i];

		while (q->free_list) {
			struct blk_req *rq = q->free_list;

			q->free_list = rq->next_free;
			free(rq);
		}
		if (q->evfd >= 0)
			close(q->evfd);
	}
	free(blk->queues);
	close(blk->fd);
	free(blk);
	vdev->priv = NULL;
}

static int open_image(const struct virtio_blk_config_opts *o, uint64_t *size)
{
	int fd = open(o->path, (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC |
		      (o->direct ? O_DIRECT : 0));
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		goto fail;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size))
			goto fail;
	} else if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
	} else {
		errno = EINVAL;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -errno;
}

static const struct virtio_device_class blk_class_template = {
	.name = "blk",
	.device_id = VIRTIO_ID_BLOCK,
	.features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
		    (1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_F_RING_PACKED) |
		    (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		    (1ull << VIRTIO_BLK_F_FLUSH),
	.config_size = sizeof(struct virtio_blk_config),
	.read_config = blk_read_config,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.reset = blk_stop_queues,
	.destroy = blk_destroy,
	.queue_kick_fd = blk_queue_kick_fd,
};

static struct virtio_blk *blk_alloc(const struct virtio_blk_config_opts *o)
{
	struct virtio_blk *blk = calloc(1, sizeof(*blk));
	const char *base;

	if (!blk)
		return NULL;
	blk->nq = o->num_queues ? o->num_queues : 1;
	blk->qsize = o->queue_size ? o->queue_size : VIRTIO_BLK_DEFAULT_QUEUE_SIZE;
	blk->queues = calloc(blk->nq, sizeof(*blk->queues));
	if (!blk->queues) {
		free(blk);
		return NULL;
	}
	for (unsigned i = 0; i < blk->nq; i++) {
		blk->queues[i].blk = blk;
		blk->queues[i].idx = i;
		blk->queues[i].evfd = eventfd(0, EFD_CLOEXEC);
		blk->queues[i].kick_fd = -1;
	}
	base = o->serial ? o->serial : strrchr(o->path, '/') ? strrchr(o->path, '/') + 1 : o->path;
	/* not NUL-terminated when 20 long, as the spec allows */
	memcpy(blk->serial, base, strnlen(base, sizeof(blk->serial)));
	blk->readonly = o->readonly;
	return blk;
}

int virtio_blk_create(struct virtio_device *vdev, struct guest_memory *gm,
		      const struct virtio_blk_config_opts *o)
{
	struct virtio_blk *blk;
	uint64_t size = 0;
	struct statfs sfs;
	int rc;

	if (!o->path || o->num_queues > VIRTIO_MAX_QUEUES ||
	    (o->queue_size && (o->queue_size < 4 || o->queue_size > VQ_MAX_SIZE ||
			       (o->queue_size & (o->queue_size - 1))))) {
		pr_err("virtio-blk: bad options (a path, 1-%u queues, power-of-two size >= 4)",
		       VIRTIO_MAX_QUEUES);
		return -EINVAL;
	}
	blk = blk_alloc(o);
	if (!blk)
		return -ENOMEM;
	blk->fd = open_image(o, &size);
	if (blk->fd < 0) {
		rc = blk->fd;
		pr_err("virtio-blk: %s: %s", o->path, strerror(-rc));
		blk->fd = -1;
		goto fail;
	}
	blk->capacity = size / SECTOR;
	blk->copy_reads = !o->direct || (!fstatfs(blk->fd, &sfs) && sfs.f_type == TMPFS_MAGIC);
	blk->cls = blk_class_template;
	blk->cls.num_queues = blk->nq;
	blk->cls.queue_max_size = blk->qsize;
	if (blk->nq > 1)
		blk->cls.features |= 1ull << VIRTIO_BLK_F_MQ;
	if (blk->readonly)
		blk->cls.features |= 1ull << VIRTIO_BLK_F_RO;
	else
		blk->cls.features |= (1ull << VIRTIO_BLK_F_DISCARD) |
				     (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	rc = virtio_device_init(vdev, &blk->cls, gm, blk);
	if (rc)
		goto fail;
	blk->vdev = vdev;
	pr_info("virtio-blk: %s: %llu sectors, %u queue(s) of %u%s", o->path,
		(unsigned long long)blk->capacity, blk->nq, blk->qsize,
		blk->readonly ? ", read-only" : "");
	return 0;
fail:
	for (unsigned i = 0; i < blk->nq; i++)
		close(blk->queues[i].evfd);
	if (blk->fd >= 0)
		close(blk->fd);
	free(blk->queues);
	free(blk);
	return rc;
}
