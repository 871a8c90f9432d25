/* virtio-blk, one request at a time: the header and status byte found, lengths in whole
 * sectors, sector ranges inside the capacity (overflow-checked), discard/write-zeroes segments
 * well-formed, writes refused on a read-only disk; then the data buffers DMA-pinned (gm_pin,
 * S3) and the request turned into an io_uring operation, or completed at once (GET_ID, errors).
 * The queue thread that calls this is in blk.c. */
#include "devices/virtio/blk_internal.h"

#include <errno.h>
#include <linux/falloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

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
void queue_signal(struct blk_queue *q)
{
	struct virtio_queue_slot *slot = &q->blk->vdev->queues[q->idx];

	if (!q->pushed)
		return;
	q->pushed = false;
	if (slot->cb && vq_should_notify(q->vq))
		slot->cb(slot->cb_opaque, q->idx);
}

/* A broken ring: ask for a reset, unless the device is being reset right now. */
void queue_fail(struct blk_queue *q)
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

struct blk_req *req_alloc(struct blk_queue *q)
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

void req_free(struct blk_req *rq)
{
	rq->next_free = rq->q->free_list;
	rq->q->free_list = rq;
}

/* Finish a request: status byte, used ring, pins released. */
void req_complete(struct blk_req *rq, uint8_t status, uint32_t written)
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

struct io_uring_sqe *get_sqe(struct blk_queue *q)
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
int req_start(struct blk_req *rq)
{
	struct virtio_blk *blk = rq->q->blk;
	struct vq_elem *e = &rq->elem;
	struct virtio_blk_outhdr hdr = { 0 };
	struct io_uring_sqe *sqe;
	uint32_t type;
	int rc;

	rq->status = status_byte(e);
	if (!rq->status || e->out_len < sizeof(hdr)) {
		virtio_device_log(blk->vdev, LOG_WARN,
				  "virtio-blk: request %u without header or status byte: returned unused",
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
