/* (addition) vq_push_batch: return several requests and publish them to the driver at once.
 *
 * Needed by virtio-net's mergeable receive buffers (virtio 1.2, 5.1.6.4.2): one packet spread
 * over num_buffers chains must become visible as a whole, or a driver that reads num_buffers
 * from the first chain finds the others missing (Linux drops the packet with "rx error: N
 * buffers out of M missing"). It also saves a release store per request on the hot path.
 *
 * Split: every used element is written first, then used->idx once with release semantics.
 * Packed: the entries after the first are written (id, len, flags) first and the first
 * entry's flags last with release: the driver reads used descriptors in ring order and stops
 * at the first one not yet used, so it sees all of them or none.
 */
#include <errno.h>

#include "virtio/vq_internal.h"

#define USED_IDX  2
#define USED_RING 4
#define PDESC_LEN   8
#define PDESC_ID    12
#define PDESC_FLAGS 14
#define PF_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define PF_USED  (1u << VRING_PACKED_DESC_F_USED)

/* Every id must be in flight and appear once in the batch; nothing is written otherwise. */
static bool batch_ids_ok(struct virtqueue *vq, const struct vq_elem *const *e, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (e[i]->id >= vq->size || !vq_inflight_test(vq, e[i]->id) ||
		    (vq->packed && (e[i]->ndescs == 0 || e[i]->ndescs > vq->size)))
			break;
		vq_inflight_clear(vq, e[i]->id); /* a duplicate later in the batch now fails */
	}
	for (unsigned j = 0; j < i; j++) /* restore; the writers clear them again */
		vq_inflight_set(vq, e[j]->id);
	return i == n;
}

static void split_write(struct virtqueue *vq, const struct vq_elem *e, uint32_t written,
			uint16_t pos)
{
	size_t off = USED_RING + 8 * (size_t)(pos & (vq->size - 1));
	uint8_t *u = (uint8_t *)vq->used + off;

	vq_mark_written(vq, e, written);
	vq_store32(u, e->id);
	vq_store32(u + 4, written);
	vq_inflight_clear(vq, e->id);
}

/* Mark ring entries [pos, pos + n) of `size` entries of `esize` bytes from base dirty: one
 * range, or two when it wraps (instead of one call per entry). */
static void mark_ring(struct virtqueue *vq, uint64_t base, uint16_t pos, uint32_t n,
		      uint32_t esize)
{
	uint32_t first = n;

	if (n > vq->size)
		n = first = vq->size;
	if (pos + n > vq->size)
		first = vq->size - pos;
	gm_mark_dirty(vq->gm, base + (uint64_t)pos * esize, (uint64_t)first * esize);
	if (first < n)
		gm_mark_dirty(vq->gm, base, (uint64_t)(n - first) * esize);
}

static void split_push_batch(struct virtqueue *vq, const struct vq_elem *const *e,
			     const uint32_t *written, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		split_write(vq, e[i], written[i] > e[i]->in_len ? (uint32_t)e[i]->in_len : written[i],
			    (uint16_t)(vq->used_idx + i));
	mark_ring(vq, vq->used_gpa + USED_RING, vq->used_idx & (vq->size - 1), n, 8);
	vq->used_idx += (uint16_t)n;
	vq_store16_release((uint8_t *)vq->used + USED_IDX, vq->used_idx);
	gm_mark_dirty(vq->gm, vq->used_gpa + USED_IDX, 2);
}

static void packed_push_batch(struct virtqueue *vq, const struct vq_elem *const *e,
			      const uint32_t *written, unsigned n)
{
	uint16_t pos = vq->used_idx, first_flags = 0;
	bool wrap = vq->used_wrap;
	uint8_t *first = NULL;

	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = (uint8_t *)vq->desc + (size_t)pos * VQ_DESC_SIZE;
		uint32_t w = written[i] > e[i]->in_len ? (uint32_t)e[i]->in_len : written[i];
		uint16_t flags = wrap ? (PF_AVAIL | PF_USED) : 0;

		if (w)
			flags |= VRING_DESC_F_WRITE;
		vq_mark_written(vq, e[i], w);
		vq_store16(p + PDESC_ID, e[i]->id);
		vq_store32(p + PDESC_LEN, w);
		if (i == 0) {
			first = p;
			first_flags = flags;
		} else {
			vq_store16_release(p + PDESC_FLAGS, flags);
		}
		vq_inflight_clear(vq, e[i]->id);
		pos += e[i]->ndescs;
		if (pos >= vq->size) {
			pos -= vq->size;
			wrap = !wrap;
		}
	}
	vq_store16_release(first + PDESC_FLAGS, first_flags);
	mark_ring(vq, vq->desc_gpa, vq->used_idx,
		  (uint32_t)((pos + (wrap != vq->used_wrap ? vq->size : 0)) - vq->used_idx),
		  VQ_DESC_SIZE);
	vq->used_idx = pos;
	vq->used_wrap = wrap;
}

int vq_push_batch(struct virtqueue *vq, const struct vq_elem *const *elems,
		  const uint32_t *written, unsigned n)
{
	if (vq->broken || !vq->ready)
		return -EIO;
	if (n == 0)
		return 0;
	if (!batch_ids_ok(vq, elems, n))
		return vq_fail(vq, VQ_ERR_USED_ID);
	if (vq->packed)
		packed_push_batch(vq, elems, written, n);
	else
		split_push_batch(vq, elems, written, n);
	return 0;
}
