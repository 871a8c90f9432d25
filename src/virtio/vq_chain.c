/* The one descriptor-chain walker, shared by split and packed rings.
 *
 * A chain is turned into iovecs here and nowhere else. Every value in a descriptor comes from
 * the guest and is checked before use: the address range (overflow, IOTLB permission, every
 * byte inside guest memory, writable buffers not in read-only memory), the running total
 * (fits the 32-bit used length), the iovec count, the readable-before-writable order, the
 * chain length (a ttl of the table size, so loops end), next indices, and indirect tables
 * (length non-zero, a multiple of 16, at most 2^16 entries, mapped as one range, never
 * nested). Each descriptor is copied once out of guest memory before it is checked.
 */
#include <errno.h>

#include "util/log.h"
#include "virtio/vq_internal.h"

static const char *const vq_error_names[VQ_ERR_COUNT] = {
	[VQ_OK] = "ok",
	[VQ_ERR_AVAIL_IDX] = "avail index moved more than the queue size",
	[VQ_ERR_HEAD_RANGE] = "head index or buffer id out of range",
	[VQ_ERR_DESC_ADDR] = "buffer not in guest memory",
	[VQ_ERR_CHAIN_LOOP] = "descriptor chain loops or is longer than its table",
	[VQ_ERR_NEXT_RANGE] = "next index out of range",
	[VQ_ERR_INDIRECT_LEN] = "bad indirect table length",
	[VQ_ERR_INDIRECT_ADDR] = "indirect table not in guest memory",
	[VQ_ERR_NESTED_INDIRECT] = "indirect descriptor inside an indirect table",
	[VQ_ERR_INDIRECT_NEXT] = "indirect descriptor chained with NEXT",
	[VQ_ERR_READ_AFTER_WRITE] = "device-readable descriptor after a device-writable one",
	[VQ_ERR_TOO_MANY_IOV] = "too many buffers in one request",
	[VQ_ERR_TOTAL_LEN] = "request longer than 4 GiB",
	[VQ_ERR_USED_ID] = "used id not in flight",
	[VQ_ERR_RING_ADDR] = "ring not in guest memory or misaligned",
	[VQ_ERR_RING_SIZE] = "bad queue size or ring index",
	[VQ_ERR_HEAD_BUSY] = "head already in flight",
};

const char *vq_error_name(enum vq_error e)
{
	if ((unsigned)e >= VQ_ERR_COUNT || !vq_error_names[e])
		return "unknown virtqueue error";
	return vq_error_names[e];
}

int vq_fail(struct virtqueue *vq, enum vq_error err)
{
	if (!vq->broken)
		pr_debug("virtqueue: %s queue (size %u) broken: %s\n",
			 vq->packed ? "packed" : "split", vq->size, vq_error_name(err));
	vq->last_error = err;
	vq->errors++;
	vq->broken = true;
	return -EIO;
}

/* gpa -> host for up to len bytes inside one region; 0 when unmapped (or, for a device
 * write, read-only). *room is what is left of the region from gpa. A range crossing into the
 * next region is taken piece by piece. */
static uint64_t map_gpa(struct virtqueue *vq, uint64_t gpa, uint64_t len, bool write,
			void **hva, uint64_t *room)
{
	const struct gm_region *r = gm_find_region(vq->gm, gpa);

	if (!r || (write && (r->flags & GM_REGION_READONLY)))
		return 0;
	*room = r->size - (gpa - r->gpa);
	*hva = r->hva + (gpa - r->gpa);
	return len < *room ? len : *room;
}

/* iova -> gpa for a whole range through the IOTLB: the pieces it returns (often a page each)
 * must follow each other in guest-physical space too. Returns false when they do not. */
static bool xlate_range(struct virtqueue *vq, uint64_t iova, uint64_t len, int access,
			uint64_t *gpa)
{
	uint64_t done = 0;

	while (done < len) {
		uint64_t g, n = vq->iotlb->xlate(vq->iotlb->opaque, iova + done, len - done, access, &g);

		if (n == 0 || (done && g != *gpa + done))
			return false;
		if (!done)
			*gpa = g;
		done += n < len - done ? n : len - done;
	}
	return true;
}

void *vq_map_range(struct virtqueue *vq, uint64_t addr, uint64_t len, int access,
		   uint64_t *gpa)
{
	uint64_t g = addr, end;
	void *p;

	if (len == 0 || __builtin_add_overflow(addr, len - 1, &end))
		return NULL;
	if (vq->iotlb && !xlate_range(vq, addr, len, access, &g))
		return NULL;
	if (access & VQ_ACCESS_WRITE)
		p = gm_translate_writable(vq->gm, g, len);
	else
		p = gm_translate(vq->gm, g, len);
	if (!p)
		return NULL;
	*gpa = g;
	return p;
}

static enum vq_error add_iov(struct vq_walk *w, void *hva, uint64_t len, uint64_t gpa, bool write)
{
	struct vq_elem *e = w->e;
	unsigned i = e->out_num + e->in_num;

	if (i >= VQ_MAX_IOV)
		return VQ_ERR_TOO_MANY_IOV;
	e->iov[i].iov_base = hva;
	e->iov[i].iov_len = len;
	if (write) {
		e->in_gpa[e->in_num++] = gpa;
		e->in_len += len;
	} else {
		e->out_num++;
		e->out_len += len;
	}
	return VQ_OK;
}

/* One buffer [addr, addr+len): through the IOTLB (if any), then guest memory, appending one
 * iovec per contiguous piece. IOTLB pieces that continue the previous one inside the same
 * region extend its iovec rather than adding one. */
static enum vq_error walk_buffer(struct vq_walk *w, uint64_t addr, uint32_t len, bool write)
{
	struct virtqueue *vq = w->vq;
	int access = write ? VQ_ACCESS_WRITE : VQ_ACCESS_READ;
	uint64_t end, rest = len, next_gpa = 0;
	bool join = false; /* the last iovec ended inside a region, at next_gpa */
	enum vq_error err;

	if (!write && w->seen_write)
		return VQ_ERR_READ_AFTER_WRITE;
	w->seen_write |= write;
	w->total += len;
	if (w->total > UINT32_MAX)
		return VQ_ERR_TOTAL_LEN;
	if (len == 0)
		return VQ_OK;
	if (__builtin_add_overflow(addr, (uint64_t)len - 1, &end))
		return VQ_ERR_DESC_ADDR;
	while (rest) {
		uint64_t gpa = addr, n = rest;

		if (vq->iotlb) {
			n = vq->iotlb->xlate(vq->iotlb->opaque, addr, rest, access, &gpa);
			if (n == 0)
				return VQ_ERR_DESC_ADDR;
			if (n > rest)
				n = rest;
		}
		addr += n;
		rest -= n;
		while (n) {
			void *hva;
			uint64_t room, m = map_gpa(vq, gpa, n, write, &hva, &room);

			if (m == 0)
				return VQ_ERR_DESC_ADDR;
			if (join && gpa == next_gpa) {
				w->e->iov[w->e->out_num + w->e->in_num - 1].iov_len += m;
				*(write ? &w->e->in_len : &w->e->out_len) += m;
			} else {
				err = add_iov(w, hva, m, gpa, write);
				if (err)
					return err;
			}
			join = m < room;
			next_gpa = gpa + m;
			gpa += m;
			n -= m;
		}
	}
	return VQ_OK;
}

static enum vq_error walk_split_table(struct vq_walk *w, const uint8_t *table, uint32_t n,
				      uint16_t head, bool indirect);

/* An indirect table: checked, mapped as one range, then walked (split: by next indices;
 * packed: in order, every entry). */
static enum vq_error walk_indirect(struct vq_walk *w, const struct vq_desc *d, bool packed)
{
	const uint8_t *table;
	uint64_t gpa;
	uint32_t n, i;
	enum vq_error err;

	if (d->len == 0 || d->len % VQ_DESC_SIZE || d->len / VQ_DESC_SIZE > VQ_INDIRECT_MAX)
		return VQ_ERR_INDIRECT_LEN;
	table = vq_map_range(w->vq, d->addr, d->len, VQ_ACCESS_READ, &gpa);
	if (!table)
		return VQ_ERR_INDIRECT_ADDR;
	n = d->len / VQ_DESC_SIZE;
	if (!packed)
		return walk_split_table(w, table, n, 0, true);
	for (i = 0; i < n; i++) {
		struct vq_desc x;

		vq_read_desc(table + (size_t)i * VQ_DESC_SIZE, true, &x);
		if (x.flags & VRING_DESC_F_INDIRECT)
			return VQ_ERR_NESTED_INDIRECT;
		err = walk_buffer(w, x.addr, x.len, x.flags & VRING_DESC_F_WRITE);
		if (err)
			return err;
	}
	return VQ_OK;
}

/* A split chain in a table of n descriptors from head, following NEXT with a ttl of n. */
static enum vq_error walk_split_table(struct vq_walk *w, const uint8_t *table, uint32_t n,
				      uint16_t head, bool indirect)
{
	uint32_t i = head, ttl = n;
	enum vq_error err;

	for (;;) {
		struct vq_desc d;

		if (ttl-- == 0)
			return VQ_ERR_CHAIN_LOOP;
		vq_read_desc(table + (size_t)i * VQ_DESC_SIZE, false, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (indirect)
				return VQ_ERR_NESTED_INDIRECT;
			if (d.flags & VRING_DESC_F_NEXT)
				return VQ_ERR_INDIRECT_NEXT;
			return walk_indirect(w, &d, false);
		}
		err = walk_buffer(w, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
		if (err)
			return err;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return VQ_OK;
		i = d.next;
		if (i >= n)
			return VQ_ERR_NEXT_RANGE;
	}
}

enum vq_error vq_walk_split(struct vq_walk *w, const void *table, uint32_t n, uint16_t head)
{
	return walk_split_table(w, table, n, head, false);
}

enum vq_error vq_walk_desc(struct vq_walk *w, const struct vq_desc *d, bool packed)
{
	if (d->flags & VRING_DESC_F_INDIRECT)
		return walk_indirect(w, d, packed);
	return walk_buffer(w, d->addr, d->len, d->flags & VRING_DESC_F_WRITE);
}

void vq_mark_written(struct virtqueue *vq, const struct vq_elem *e, uint32_t written)
{
	uint64_t rest = written < e->in_len ? written : e->in_len;
	unsigned k;

	for (k = 0; k < e->in_num && rest; k++) {
		uint64_t l = e->iov[e->out_num + k].iov_len;

		if (l > rest)
			l = rest;
		gm_mark_dirty(vq->gm, e->in_gpa[k], l);
		rest -= l;
	}
}
