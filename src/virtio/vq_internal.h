/* Private to the virtqueue implementation (virtqueue.c, virtqueue_packed.c, vq_chain.c):
 * ring accessors, the in-flight set and the one descriptor-chain walker. */
#ifndef VIREO_VIRTIO_VQ_INTERNAL_H
#define VIREO_VIRTIO_VQ_INTERNAL_H

#include <endian.h>
#include <linux/virtio_ring.h>

#include "virtio/virtqueue.h"

#define VQ_DESC_SIZE 16u
#define VQ_INDIRECT_MAX 65536u /* entries in one indirect table (2^16) */

/* Keeps the compiler from re-reading guest memory for a value already copied out of it. */
#define vq_barrier() __asm__ __volatile__("" ::: "memory")

/* A descriptor as copied out of guest memory, split and packed alike. */
struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next; /* split: next index; packed: buffer id */
};

/* Copy one 16-byte descriptor out of guest memory once (p may be unaligned). */
static inline void vq_read_desc(const void *p, bool packed, struct vq_desc *d)
{
	struct { uint64_t addr; uint32_t len; uint16_t a, b; } raw;

	__builtin_memcpy(&raw, p, sizeof(raw));
	vq_barrier();
	d->addr = le64toh(raw.addr);
	d->len = le32toh(raw.len);
	d->flags = le16toh(packed ? raw.b : raw.a);
	d->next = le16toh(packed ? raw.a : raw.b);
}

static inline uint16_t vq_load16(const void *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}
static inline uint16_t vq_load16_acquire(const void *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE));
}
static inline void vq_store16(void *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELAXED);
}
static inline void vq_store16_release(void *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELEASE);
}
static inline void vq_store32(void *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)p, htole32(v), __ATOMIC_RELAXED);
}
static inline void vq_full_fence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* In-flight set: one bit per head index / buffer id. */
static inline bool vq_inflight_test(const struct virtqueue *vq, uint16_t id)
{
	return vq->inflight_map[id / 64] & (1ull << (id % 64));
}
static inline void vq_inflight_set(struct virtqueue *vq, uint16_t id)
{
	vq->inflight_map[id / 64] |= 1ull << (id % 64);
	vq->inflight++;
}
static inline void vq_inflight_clear(struct virtqueue *vq, uint16_t id)
{
	vq->inflight_map[id / 64] &= ~(1ull << (id % 64));
	vq->inflight--;
}

/* Marks the queue broken with reason err; returns -EIO for the caller to pass on. */
int vq_fail(struct virtqueue *vq, enum vq_error err);

/* The walker's state while one chain is turned into an element. */
struct vq_walk {
	struct virtqueue *vq;
	struct vq_elem *e;
	uint64_t total;  /* bytes so far */
	bool seen_write; /* a device-writable descriptor came already */
};

static inline void vq_walk_start(struct vq_walk *w, struct virtqueue *vq, struct vq_elem *e)
{
	w->vq = vq;
	w->e = e;
	w->total = 0;
	w->seen_write = false;
	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
	e->ndescs = 0;
}

/* One descriptor of a chain (not the ring's bookkeeping): a buffer or an indirect table. */
enum vq_error vq_walk_desc(struct vq_walk *w, const struct vq_desc *d, bool packed);
/* A split chain starting at head in a table of n descriptors (the ring's table). */
enum vq_error vq_walk_split(struct vq_walk *w, const void *table, uint32_t n, uint16_t head);

/* Whole-range translation of a ring or indirect table (IOTLB, then one guest region). */
void *vq_map_range(struct virtqueue *vq, uint64_t addr, uint64_t len, int access,
		   uint64_t *gpa);

/* Packed ring halves, called by the public functions in virtqueue.c. */
int vq_packed_pop(struct virtqueue *vq, struct vq_elem *e);
int vq_packed_push(struct virtqueue *vq, const struct vq_elem *e, uint32_t written);
void vq_packed_unpop(struct virtqueue *vq, const struct vq_elem *e);
bool vq_packed_should_notify(struct virtqueue *vq);
bool vq_packed_enable_notify(struct virtqueue *vq, bool enable);
bool vq_packed_empty(struct virtqueue *vq);

/* Marks the written bytes of e (in iovec order) dirty. */
void vq_mark_written(struct virtqueue *vq, const struct vq_elem *e, uint32_t written);

#endif
