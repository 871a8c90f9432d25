/* Virtqueues: set-up, state, the public entry points and the split ring (virtio 1.2, 2.7).
 *
 * The packed ring lives in virtqueue_packed.c and the descriptor-chain walker both share in
 * vq_chain.c. Split ring layout, as host pointers mapped once at vq_setup():
 *   desc:  size x {le64 addr; le32 len; le16 flags; le16 next}
 *   avail: le16 flags; le16 idx; le16 ring[size]; le16 used_event
 *   used:  le16 flags; le16 idx; {le32 id; le32 len} ring[size]; le16 avail_event
 */
#include <errno.h>
#include <string.h>

#include <linux/virtio_config.h>

#include "virtio/vq_internal.h"

#define AVAIL_FLAGS 0
#define AVAIL_IDX   2
#define AVAIL_RING  4
#define USED_FLAGS  0
#define USED_IDX    2
#define USED_RING   4

static inline uint8_t *avail_at(const struct virtqueue *vq, size_t off)
{
	return (uint8_t *)vq->avail + off;
}
static inline uint8_t *used_at(const struct virtqueue *vq, size_t off)
{
	return (uint8_t *)vq->used + off;
}
/* used_event sits after the avail ring, avail_event after the used ring. */
static inline size_t used_event_off(const struct virtqueue *vq)
{
	return AVAIL_RING + 2 * (size_t)vq->size;
}
static inline size_t avail_event_off(const struct virtqueue *vq)
{
	return USED_RING + 8 * (size_t)vq->size;
}

void vq_reset(struct virtqueue *vq)
{
	struct guest_memory *gm = vq->gm;
	const struct vq_iotlb *iotlb = vq->iotlb;

	memset(vq, 0, sizeof(*vq));
	vq->gm = gm;
	vq->iotlb = iotlb;
}

/* Checks size and alignment and maps the three rings, each as one contiguous range. */
static enum vq_error map_rings(struct virtqueue *vq)
{
	uint64_t n = vq->size, avail_len = 4, used_len = 4;
	int desc_access = VQ_ACCESS_READ | VQ_ACCESS_WRITE;

	if (n == 0 || n > VQ_MAX_SIZE || (!vq->packed && (n & (n - 1))))
		return VQ_ERR_RING_SIZE;
	if (vq->desc_addr % 16 || vq->avail_addr % (vq->packed ? 4 : 2) || vq->used_addr % 4)
		return VQ_ERR_RING_ADDR;
	if (!vq->packed) {
		avail_len = 6 + 2 * n;
		used_len = 6 + 8 * n;
		desc_access = VQ_ACCESS_READ;
	}
	vq->desc = vq_map_range(vq, vq->desc_addr, 16 * n, desc_access, &vq->desc_gpa);
	vq->avail = vq_map_range(vq, vq->avail_addr, avail_len, VQ_ACCESS_READ, &vq->avail_gpa);
	vq->used = vq_map_range(vq, vq->used_addr, used_len, VQ_ACCESS_WRITE, &vq->used_gpa);
	if (!vq->desc || !vq->avail || !vq->used) {
		vq->desc = vq->avail = vq->used = NULL;
		return VQ_ERR_RING_ADDR;
	}
	return VQ_OK;
}

int vq_setup(struct virtqueue *vq, struct guest_memory *gm, const struct vq_iotlb *iotlb,
	     uint16_t size, uint64_t desc, uint64_t avail, uint64_t used, uint64_t features)
{
	enum vq_error err;

	vq->gm = gm;
	vq->iotlb = iotlb;
	vq_reset(vq);
	vq->size = size;
	vq->packed = features & (1ull << VIRTIO_F_RING_PACKED);
	vq->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	vq->indirect = features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	vq->desc_addr = desc;
	vq->avail_addr = avail;
	vq->used_addr = used;
	err = map_rings(vq);
	if (err) {
		vq->last_error = err;
		return -EINVAL;
	}
	vq->avail_wrap = vq->used_wrap = vq->packed; /* packed wrap counters start at 1 */
	vq->ready = true;
	return 0;
}

int vq_remap(struct virtqueue *vq, struct guest_memory *gm, const struct vq_iotlb *iotlb)
{
	enum vq_error err;

	vq->gm = gm;
	vq->iotlb = iotlb;
	if (!vq->ready)
		return 0;
	err = map_rings(vq);
	if (err) {
		vq_fail(vq, err);
		return -EINVAL;
	}
	return 0;
}

/* ---- split ring ---- */

/* Reads avail->idx (acquire: ring entries and descriptors are read after it) and returns how
 * many entries are new, or -EIO when the index ran more than the queue size ahead. */
static int split_avail(struct virtqueue *vq)
{
	uint16_t idx = vq_load16_acquire(avail_at(vq, AVAIL_IDX));
	uint16_t n = idx - vq->last_avail_idx;

	if (n > vq->size)
		return vq_fail(vq, VQ_ERR_AVAIL_IDX);
	vq->shadow_avail_idx = idx;
	return n;
}

/* EVENT_IDX: "kick me once you make entry last_avail_idx available". */
static void split_publish_avail_event(struct virtqueue *vq)
{
	size_t off = avail_event_off(vq);

	vq_store16(used_at(vq, off), vq->last_avail_idx);
	gm_mark_dirty(vq->gm, vq->used_gpa + off, 2);
}

static int split_pop(struct virtqueue *vq, struct vq_elem *e)
{
	struct vq_walk w;
	enum vq_error err;
	uint16_t head;
	int n;

	if (vq->shadow_avail_idx == vq->last_avail_idx) {
		n = split_avail(vq);
		if (n == 0 && vq->event_idx && !vq->no_notify) {
			/* Publish avail_event, then re-check: a driver adding a buffer now
			 * either sees the new avail_event (and kicks) or we see its idx. */
			split_publish_avail_event(vq);
			vq_full_fence();
			n = split_avail(vq);
		}
		if (n <= 0)
			return n;
	}
	head = vq_load16(avail_at(vq, AVAIL_RING + 2 * (size_t)(vq->last_avail_idx & (vq->size - 1))));
	if (head >= vq->size)
		return vq_fail(vq, VQ_ERR_HEAD_RANGE);
	if (vq_inflight_test(vq, head))
		return vq_fail(vq, VQ_ERR_HEAD_BUSY);
	vq_walk_start(&w, vq, e);
	err = vq_walk_split(&w, vq->desc, vq->size, head);
	if (err)
		return vq_fail(vq, err);
	e->id = head;
	e->ndescs = 1;
	vq_inflight_set(vq, head);
	vq->last_avail_idx++;
	return 1;
}

/* Used element first, release, then used->idx: the driver never sees an index whose element
 * is not written. Both are marked dirty for migration. */
static int split_push(struct virtqueue *vq, const struct vq_elem *e, uint32_t written)
{
	uint16_t slot = vq->used_idx & (vq->size - 1);
	size_t off = USED_RING + 8 * (size_t)slot;

	if (e->id >= vq->size || !vq_inflight_test(vq, e->id))
		return vq_fail(vq, VQ_ERR_USED_ID);
	if (written > e->in_len)
		written = e->in_len;
	vq_mark_written(vq, e, written);
	vq_store32(used_at(vq, off), e->id);
	vq_store32(used_at(vq, off + 4), written);
	gm_mark_dirty(vq->gm, vq->used_gpa + off, 8);
	vq->used_idx++;
	vq_store16_release(used_at(vq, USED_IDX), vq->used_idx);
	gm_mark_dirty(vq->gm, vq->used_gpa + USED_IDX, 2);
	vq_inflight_clear(vq, e->id);
	return 0;
}

static bool split_should_notify(struct virtqueue *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx;
	bool valid = vq->signalled_used_valid;

	vq_full_fence(); /* used idx published before reading the driver's wishes */
	if (!vq->event_idx)
		return !(vq_load16(avail_at(vq, AVAIL_FLAGS)) & VRING_AVAIL_F_NO_INTERRUPT);
	vq->signalled_used = new;
	vq->signalled_used_valid = true;
	return !valid || vring_need_event(vq_load16(avail_at(vq, used_event_off(vq))), new, old);
}

static bool split_empty(struct virtqueue *vq)
{
	return vq->shadow_avail_idx == vq->last_avail_idx &&
	       vq_load16_acquire(avail_at(vq, AVAIL_IDX)) == vq->last_avail_idx;
}

static bool split_enable_notify(struct virtqueue *vq, bool enable)
{
	vq->no_notify = !enable;
	if (vq->event_idx) {
		if (!enable)
			return false; /* the stale avail_event stops kicks soon enough */
		split_publish_avail_event(vq);
	} else {
		vq_store16(used_at(vq, USED_FLAGS), enable ? 0 : VRING_USED_F_NO_NOTIFY);
		gm_mark_dirty(vq->gm, vq->used_gpa + USED_FLAGS, 2);
		if (!enable)
			return false;
	}
	vq_full_fence(); /* published before re-reading avail->idx */
	return !split_empty(vq);
}

/* ---- public entry points ---- */

int vq_pop(struct virtqueue *vq, struct vq_elem *e)
{
	if (vq->broken)
		return -EIO;
	if (!vq->ready)
		return 0;
	return vq->packed ? vq_packed_pop(vq, e) : split_pop(vq, e);
}

int vq_push(struct virtqueue *vq, const struct vq_elem *e, uint32_t written)
{
	if (vq->broken || !vq->ready)
		return -EIO;
	return vq->packed ? vq_packed_push(vq, e, written) : split_push(vq, e, written);
}

void vq_unpop(struct virtqueue *vq, const struct vq_elem *e)
{
	if (vq->broken || !vq->ready || e->id >= vq->size || !vq_inflight_test(vq, e->id))
		return;
	if (vq->packed) {
		vq_packed_unpop(vq, e);
		return;
	}
	vq_inflight_clear(vq, e->id);
	vq->last_avail_idx--;
}

bool vq_should_notify(struct virtqueue *vq)
{
	if (vq->broken || !vq->ready)
		return false;
	return vq->packed ? vq_packed_should_notify(vq) : split_should_notify(vq);
}

bool vq_enable_notify(struct virtqueue *vq, bool enable)
{
	if (vq->broken || !vq->ready)
		return false;
	return vq->packed ? vq_packed_enable_notify(vq, enable) : split_enable_notify(vq, enable);
}

bool vq_empty(struct virtqueue *vq)
{
	if (vq->broken || !vq->ready)
		return true;
	return vq->packed ? vq_packed_empty(vq) : split_empty(vq);
}

void vq_get_state(const struct virtqueue *vq, struct vq_state *st)
{
	st->last_avail_idx = vq->last_avail_idx;
	st->used_idx = vq->used_idx;
	if (vq->packed) {
		st->last_avail_idx |= (uint16_t)vq->avail_wrap << 15;
		st->used_idx |= (uint16_t)vq->used_wrap << 15;
	}
}

void vq_set_state(struct virtqueue *vq, const struct vq_state *st)
{
	memset(vq->inflight_map, 0, sizeof(vq->inflight_map));
	vq->inflight = 0;
	vq->signalled_used_valid = false;
	if (!vq->packed) {
		vq->last_avail_idx = vq->shadow_avail_idx = st->last_avail_idx;
		vq->used_idx = st->used_idx;
		return;
	}
	vq->last_avail_idx = st->last_avail_idx & 0x7fff;
	vq->avail_wrap = st->last_avail_idx >> 15;
	vq->used_idx = st->used_idx & 0x7fff;
	vq->used_wrap = st->used_idx >> 15;
	if (vq->size && (vq->last_avail_idx >= vq->size || vq->used_idx >= vq->size)) {
		vq->last_avail_idx = vq->used_idx = 0;
		vq_fail(vq, VQ_ERR_RING_SIZE);
	}
}
