/* virtio-blk: requests from the driver become io_uring operations on the image file.
 *
 * Each request queue has its own thread and io_uring; a kick (queue_notify, from any thread)
 * writes the queue's eventfd, which the thread reads through its ring. When the transport
 * hands over the driver's kick eventfd (queue_kick_fd: vhost-user, ioeventfd), the thread
 * polls that one directly through the ring, so a kick wakes the queue thread and nothing
 * else. Many requests are in flight per queue. Their data buffers are DMA-pinned in guest
 * memory (gm_pin, S3) from submission to completion; when the pin budget is exhausted the
 * queue waits for completions.
 * Each request is validated and turned into an io_uring operation by blk_req.c.
 *
 * Locking: queue threads never take vdev->lock (reset holds it while joining them); they use
 * their own virtqueue and the queue's interrupt callback, both fixed while the device runs.
 * reset() stops the threads after everything in flight has completed and been returned.
 */
#include "devices/virtio/blk_internal.h"

#include <errno.h>
#include <fcntl.h>
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

/* Seccomp does not see inside io_uring: a ring could open, connect or send on behalf of
 * whoever controls it. Restrict this one, before it is enabled, to what the queue does: data
 * reads and writes, fsync, fallocate (discard, write-zeroes) and the kick poll; the flags the
 * queue sets; no registration once enabled. */
int blk_ring_restrict(struct io_uring *ring)
{
	static const uint8_t ops[] = { IORING_OP_READ, IORING_OP_WRITE, IORING_OP_READV,
				       IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE,
				       IORING_OP_POLL_ADD };
	struct io_uring_restriction r[sizeof(ops) + 1];
	unsigned n = 0;

	memset(r, 0, sizeof(r));
	for (unsigned i = 0; i < sizeof(ops); i++, n++) {
		r[n].opcode = IORING_RESTRICTION_SQE_OP;
		r[n].sqe_op = ops[i];
	}
	r[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	r[n++].sqe_flags = IOSQE_FIXED_FILE | IOSQE_IO_LINK | IOSQE_ASYNC | IOSQE_CQE_SKIP_SUCCESS;
	/* the raw call: Debian's liburing 2.3 declares io_uring_register_restrictions but does
	 * not export it */
	if (syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_RESTRICTIONS, r, n))
		return -errno;
	return 0;
}

/* One ring per queue, used by its thread only: SINGLE_ISSUER + DEFER_TASKRUN let completions
 * wait (no inter-processor interrupt, no task-work signal) until the thread asks for them in
 * io_uring_enter, which it does anyway when it sleeps. The ring starts disabled so that the
 * queue thread, not this one, becomes its issuer, and so that it can be restricted first.
 * Kernels before 6.1 (no DEFER_TASKRUN): a ring that is still created disabled and
 * restricted (5.10+); only a kernel without even that gets a plain ring, said loudly. */
static int queue_ring_init(struct blk_queue *q)
{
	struct io_uring_params p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
	rc = io_uring_queue_init_params(q->blk->qsize + 8, &q->ring, &p);
	if (rc == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_R_DISABLED;
		rc = io_uring_queue_init_params(q->blk->qsize + 8, &q->ring, &p);
	}
	q->ring_disabled = !rc;
	q->restricted = false;
	if (rc == -EINVAL) {
		pr_warn("virtio-blk: queue %u: io_uring cannot be restricted on this kernel",
			q->idx);
		rc = io_uring_queue_init(q->blk->qsize + 8, &q->ring, 0);
	}
	if (rc)
		return rc;
	/* the image as registered file 0: no file reference taken and dropped per request */
	q->fixed_file = !io_uring_register_files(&q->ring, &q->blk->fd, 1);
	q->file = q->fixed_file ? 0 : q->blk->fd;
	if (q->ring_disabled && (rc = blk_ring_restrict(&q->ring)) < 0) {
		io_uring_queue_exit(&q->ring);
		return rc;
	}
	q->restricted = q->ring_disabled;
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
