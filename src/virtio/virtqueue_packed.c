/* Packed virtqueues (virtio 1.2, 2.8): one descriptor ring shared by driver and device.
 *
 * A descriptor is available when its AVAIL bit equals the device's avail wrap counter and
 * its USED bit differs; the device hands a buffer back by writing one used descriptor (id,
 * len, then flags with AVAIL = USED = used wrap counter) at its used position and skipping
 * the chain's descriptor count. Layout, as host pointers mapped once at vq_setup():
 *   desc:  size x {le64 addr; le32 len; le16 id; le16 flags}
 *   avail: driver event suppression {le16 off_wrap; le16 flags}  (device reads)
 *   used:  device event suppression {le16 off_wrap; le16 flags}  (device writes)
 * Chains: NEXT on all but the last descriptor, buffer id in the last one; an indirect
 * descriptor stands alone (no NEXT, not inside a chain) and its table holds plain buffers.
 */
#include <errno.h>

#include "virtio/vq_internal.h"

#define PDESC_LEN   8
#define PDESC_ID    12
#define PDESC_FLAGS 14
#define EVT_OFF_WRAP 0
#define EVT_FLAGS    2
#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED  (1u << VRING_PACKED_DESC_F_USED)

static inline uint8_t *pdesc(const struct virtqueue *vq, uint16_t i)
{
	return (uint8_t *)vq->desc + (size_t)i * VQ_DESC_SIZE;
}

static inline bool desc_is_avail(uint16_t flags, bool wrap)
{
	return !!(flags & F_AVAIL) == wrap && !!(flags & F_USED) != wrap;
}

/* Acquire: the chain's descriptors are read after the head's flags said "available". */
static bool next_is_avail(struct virtqueue *vq)
{
	uint16_t flags = vq_load16_acquire(pdesc(vq, vq->last_avail_idx) + PDESC_FLAGS);

	return desc_is_avail(flags, vq->avail_wrap);
}

/* EVENT_IDX: "kick me once the descriptor at last_avail_idx becomes available". */
static void publish_device_event(struct virtqueue *vq)
{
	vq_store16((uint8_t *)vq->used + EVT_OFF_WRAP,
		   vq->last_avail_idx | (uint16_t)vq->avail_wrap << 15);
	vq_store16_release((uint8_t *)vq->used + EVT_FLAGS, VRING_PACKED_EVENT_FLAG_DESC);
	gm_mark_dirty(vq->gm, vq->used_gpa, 4);
}

/* Walks the chain at last_avail_idx; on success returns the descriptors it took. */
static int walk_ring_chain(struct virtqueue *vq, struct vq_elem *e, uint16_t *id)
{
	struct vq_walk w;
	struct vq_desc d;
	uint16_t pos = vq->last_avail_idx;
	uint32_t count = 0;
	enum vq_error err;

	vq_walk_start(&w, vq, e);
	for (;;) {
		vq_read_desc(pdesc(vq, pos), true, &d);
		count++;
		if ((d.flags & VRING_DESC_F_INDIRECT) && (count > 1 || (d.flags & VRING_DESC_F_NEXT)))
			return vq_fail(vq, VQ_ERR_INDIRECT_NEXT);
		err = vq_walk_desc(&w, &d, true);
		if (err)
			return vq_fail(vq, err);
		if (++pos == vq->size)
			pos = 0;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (count == vq->size)
			return vq_fail(vq, VQ_ERR_CHAIN_LOOP);
	}
	*id = d.next; /* the buffer id is in the last descriptor */
	return count;
}

int vq_packed_pop(struct virtqueue *vq, struct vq_elem *e)
{
	uint16_t id = 0;
	int count;

	if (!next_is_avail(vq)) {
		if (!vq->event_idx || vq->no_notify)
			return 0;
		publish_device_event(vq);
		vq_full_fence(); /* published before the re-check */
		if (!next_is_avail(vq))
			return 0;
	}
	count = walk_ring_chain(vq, e, &id);
	if (count < 0)
		return count;
	if (id >= vq->size)
		return vq_fail(vq, VQ_ERR_HEAD_RANGE);
	if (vq_inflight_test(vq, id))
		return vq_fail(vq, VQ_ERR_HEAD_BUSY);
	e->id = id;
	e->ndescs = count;
	vq_inflight_set(vq, id);
	vq->last_avail_idx += count;
	if (vq->last_avail_idx >= vq->size) {
		vq->last_avail_idx -= vq->size;
		vq->avail_wrap = !vq->avail_wrap;
	}
	return 1;
}

/* id and len first, then flags with release: the driver never sees a half-written entry. */
int vq_packed_push(struct virtqueue *vq, const struct vq_elem *e, uint32_t written)
{
	uint8_t *p = pdesc(vq, vq->used_idx);
	uint16_t flags = vq->used_wrap ? (F_AVAIL | F_USED) : 0;

	if (e->id >= vq->size || !vq_inflight_test(vq, e->id) || e->ndescs == 0 ||
	    e->ndescs > vq->size)
		return vq_fail(vq, VQ_ERR_USED_ID);
	if (written > e->in_len)
		written = e->in_len;
	vq_mark_written(vq, e, written);
	if (written)
		flags |= VRING_DESC_F_WRITE;
	vq_store16(p + PDESC_ID, e->id);
	vq_store32(p + PDESC_LEN, written);
	vq_store16_release(p + PDESC_FLAGS, flags);
	gm_mark_dirty(vq->gm, vq->desc_gpa + (uint64_t)vq->used_idx * VQ_DESC_SIZE, VQ_DESC_SIZE);
	vq->used_idx += e->ndescs;
	if (vq->used_idx >= vq->size) {
		vq->used_idx -= vq->size;
		vq->used_wrap = !vq->used_wrap;
	}
	vq_inflight_clear(vq, e->id);
	return 0;
}

void vq_packed_unpop(struct virtqueue *vq, const struct vq_elem *e)
{
	if (e->ndescs == 0 || e->ndescs > vq->size)
		return;
	vq_inflight_clear(vq, e->id);
	if (vq->last_avail_idx < e->ndescs) {
		vq->last_avail_idx += vq->size;
		vq->avail_wrap = !vq->avail_wrap;
	}
	vq->last_avail_idx -= e->ndescs;
}

/* Driver event suppression: ENABLE, DISABLE, or DESC (EVENT_IDX) with an offset and wrap
 * counter; the offset is compared with the used positions crossed since the last signal. */
bool vq_packed_should_notify(struct virtqueue *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx, off_wrap, flags, event;
	bool valid = vq->signalled_used_valid;

	vq_full_fence(); /* used descriptors published before reading the driver's wishes */
	off_wrap = vq_load16((uint8_t *)vq->avail + EVT_OFF_WRAP);
	flags = vq_load16((uint8_t *)vq->avail + EVT_FLAGS) & 3;
	vq->signalled_used = new;
	vq->signalled_used_valid = true;
	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !vq->event_idx || !valid)
		return true;
	event = off_wrap & 0x7fff;
	if ((bool)(off_wrap >> 15) != vq->used_wrap)
		event -= vq->size;
	return vring_need_event(event, new, old);
}

bool vq_packed_enable_notify(struct virtqueue *vq, bool enable)
{
	vq->no_notify = !enable;
	if (!enable) {
		vq_store16((uint8_t *)vq->used + EVT_FLAGS, VRING_PACKED_EVENT_FLAG_DISABLE);
		gm_mark_dirty(vq->gm, vq->used_gpa + EVT_FLAGS, 2);
		return false;
	}
	if (vq->event_idx) {
		publish_device_event(vq);
	} else {
		vq_store16((uint8_t *)vq->used + EVT_FLAGS, VRING_PACKED_EVENT_FLAG_ENABLE);
		gm_mark_dirty(vq->gm, vq->used_gpa + EVT_FLAGS, 2);
	}
	vq_full_fence(); /* published before re-reading the ring */
	return next_is_avail(vq);
}

bool vq_packed_empty(struct virtqueue *vq)
{
	return !next_is_avail(vq);
}
