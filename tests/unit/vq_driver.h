/* A driver-side virtqueue for tests: the guest's half of a split or packed ring, laid out in
 * a struct guest_memory (like rust-vmm's virtio-queue mock). Device tests use it to offer
 * buffers to a device's queue and read back what the device used:
 *
 *     struct vqd d;
 *     vqd_init(&d, gm, 0x10000, 256, VQD_F_EVENT_IDX | VQD_F_INDIRECT); // rings at 0x10000
 *     vqd_setup(&d, &vq, NULL);                                     // vq_setup on the device side
 *     struct vqd_buf b[] = { { 0x20000, 64, false }, { 0x21000, 512, true } };
 *     int id = vqd_add(&d, b, 2);                                   // or vqd_add_indirect()
 *     ... the device pops and pushes ...
 *     uint32_t len; int used = vqd_get_used(&d, &len);              // id, or -EAGAIN
 *     vqd_destroy(&d);
 *
 * Everything goes through gm_read/gm_write (single-threaded tests). vqd_kick_needed() and
 * vqd_enable_interrupts() give the driver's side of notification suppression. The raw
 * helpers (vqd_write_desc, vqd_write_pdesc, vqd_publish_head, ...) let hostile-chain tests
 * write any descriptor they like. Header-only: include it from a test file.
 */
#ifndef VIREO_TESTS_VQ_DRIVER_H
#define VIREO_TESTS_VQ_DRIVER_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "memory/guest_memory.h"
#include "virtio/virtqueue.h"

#define VQD_F_INDIRECT  (1ull << VIRTIO_RING_F_INDIRECT_DESC)
#define VQD_F_EVENT_IDX (1ull << VIRTIO_RING_F_EVENT_IDX)
#define VQD_F_PACKED    (1ull << VIRTIO_F_RING_PACKED)
#define VQD_PF_AVAIL    (1u << VRING_PACKED_DESC_F_AVAIL)
#define VQD_PF_USED     (1u << VRING_PACKED_DESC_F_USED)

struct vqd_buf {
	uint64_t addr;
	uint32_t len;
	bool write; /* device-writable */
};

struct vqd {
	struct guest_memory *gm;
	uint64_t features;
	bool packed;
	uint16_t size;
	uint64_t desc, avail, used; /* ring gpas (packed: driver / device event structures) */
	uint64_t end;               /* first gpa after the rings */
	uint16_t *link;             /* split: next free descriptor; packed: next free id */
	uint16_t *chain_len;        /* descriptors each head / id took in the ring */
	uint16_t free_head, num_free;
	/* split */
	uint16_t avail_idx, last_used, kicked_idx;
	/* packed */
	uint16_t next_avail, next_used, kicked_pos;
	bool avail_wrap, used_wrap, kicked_wrap;
};

static inline void vqd_w16(struct vqd *d, uint64_t gpa, uint16_t v)
{
	uint16_t x = htole16(v);
	gm_write(d->gm, gpa, &x, 2);
}
static inline uint16_t vqd_r16(struct vqd *d, uint64_t gpa)
{
	uint16_t x = 0;
	gm_read(d->gm, gpa, &x, 2);
	return le16toh(x);
}
static inline uint32_t vqd_r32(struct vqd *d, uint64_t gpa)
{
	uint32_t x = 0;
	gm_read(d->gm, gpa, &x, 4);
	return le32toh(x);
}

/* Raw descriptor writers: split {addr, len, flags, next}, packed {addr, len, id, flags}. */
static inline void vqd_write_desc_at(struct vqd *d, uint64_t gpa, uint64_t addr, uint32_t len,
				     uint16_t flags, uint16_t next)
{
	uint8_t raw[16];
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), n = htole16(next);

	memcpy(raw, &a, 8);
	memcpy(raw + 8, &l, 4);
	memcpy(raw + 12, d->packed ? &n : &f, 2);
	memcpy(raw + 14, d->packed ? &f : &n, 2);
	gm_write(d->gm, gpa, raw, 16);
}
static inline void vqd_write_desc(struct vqd *d, uint16_t i, uint64_t addr, uint32_t len,
				  uint16_t flags, uint16_t next)
{
	vqd_write_desc_at(d, d->desc + 16ull * i, addr, len, flags, next);
}

/* Lays out the rings from base (16-aligned): split desc | avail | used (4-aligned), packed
 * desc | driver event | device event; zeroes them. features: VQD_F_*. Returns 0 or -errno. */
static inline int vqd_init(struct vqd *d, struct guest_memory *gm, uint64_t base, uint16_t size,
			   uint64_t features)
{
	uint64_t n = size;
	static const uint8_t zero[4096];

	memset(d, 0, sizeof(*d));
	d->gm = gm;
	d->features = features;
	d->packed = features & VQD_F_PACKED;
	d->size = size;
	d->desc = base;
	d->avail = base + 16 * n;
	if (d->packed) {
		d->used = d->avail + 4;
		d->end = d->used + 4;
	} else {
		d->used = (d->avail + 6 + 2 * n + 3) & ~3ull;
		d->end = d->used + 6 + 8 * n;
	}
	for (uint64_t a = base; a < d->end; a += sizeof(zero)) {
		uint64_t l = d->end - a < sizeof(zero) ? d->end - a : sizeof(zero);
		if (gm_write(gm, a, zero, l))
			return -EFAULT;
	}
	d->link = calloc(n ? n : 1, sizeof(uint16_t));
	d->chain_len = calloc(n ? n : 1, sizeof(uint16_t));
	if (!d->link || !d->chain_len)
		return -ENOMEM;
	for (uint16_t i = 0; i < size; i++)
		d->link[i] = i + 1;
	d->num_free = size;
	d->avail_wrap = d->used_wrap = d->kicked_wrap = true;
	return 0;
}

static inline void vqd_destroy(struct vqd *d)
{
	free(d->link);
	free(d->chain_len);
	d->link = d->chain_len = NULL;
}

/* The device side's vq_setup for this ring. */
static inline int vqd_setup(struct vqd *d, struct virtqueue *vq, const struct vq_iotlb *iotlb)
{
	return vq_setup(vq, d->gm, iotlb, d->size, d->desc, d->avail, d->used, d->features);
}

/* Split: start both indices at idx (e.g. 65530 to test wrap-around); the device side needs
 * vq_set_state with {idx, idx}. */
static inline void vqd_set_split_indices(struct vqd *d, uint16_t idx)
{
	d->avail_idx = d->last_used = d->kicked_idx = idx;
	vqd_w16(d, d->avail + 2, idx);
	vqd_w16(d, d->used + 2, idx);
}

/* Split: put head in the next avail slot and publish avail->idx. */
static inline void vqd_publish_head(struct vqd *d, uint16_t head)
{
	vqd_w16(d, d->avail + 4 + 2ull * (d->avail_idx % d->size), head);
	d->avail_idx++;
	vqd_w16(d, d->avail + 2, d->avail_idx);
}

/* Packed: the AVAIL/USED bits that make a descriptor available in wrap round `wrap`. */
static inline uint16_t vqd_avail_bits(bool wrap)
{
	return wrap ? VQD_PF_AVAIL : VQD_PF_USED;
}

/* Packed: write a descriptor k positions after the driver's next free one (flags without
 * AVAIL/USED: those are added for the round that position falls in). */
static inline void vqd_write_pdesc(struct vqd *d, uint16_t k, uint64_t addr, uint32_t len,
				   uint16_t id, uint16_t flags)
{
	uint32_t pos = (uint32_t)d->next_avail + k;
	bool wrap = d->avail_wrap;

	if (pos >= d->size) {
		pos -= d->size;
		wrap = !wrap;
	}
	vqd_write_desc(d, pos, addr, len, flags | vqd_avail_bits(wrap), id);
}

/* Packed: the driver made n descriptors available (after writing them). */
static inline void vqd_packed_advance(struct vqd *d, uint16_t n)
{
	d->next_avail += n;
	if (d->next_avail >= d->size) {
		d->next_avail -= d->size;
		d->avail_wrap = !d->avail_wrap;
	}
}

static inline int vqd_take(struct vqd *d)
{
	uint16_t i;

	if (!d->num_free)
		return -ENOSPC;
	i = d->free_head;
	d->free_head = d->link[i];
	d->num_free--;
	return i;
}

static inline uint16_t buf_flags(const struct vqd_buf *b, bool more)
{
	return (b->write ? VRING_DESC_F_WRITE : 0) | (more ? VRING_DESC_F_NEXT : 0);
}

/* Packed: a chain of n ring descriptors with buffer id `id`; the head's flags written last. */
static inline void vqd_packed_chain(struct vqd *d, const struct vqd_buf *b, unsigned n,
				    uint16_t id, uint16_t head_flags_extra)
{
	for (unsigned k = n; k-- > 0;) {
		uint16_t f = buf_flags(&b[k], k + 1 < n) | (k == 0 ? head_flags_extra : 0);
		vqd_write_pdesc(d, k, b[k].addr, b[k].len, id, f);
	}
	d->chain_len[id] = n;
	vqd_packed_advance(d, n);
}

/* Offer a chain of n direct descriptors. Returns the head (split) or buffer id (packed), or
 * -ENOSPC when the ring has no room. */
static inline int vqd_add(struct vqd *d, const struct vqd_buf *b, unsigned n)
{
	int head, id;

	if (n == 0 || n > d->num_free)
		return -ENOSPC;
	if (d->packed) {
		id = vqd_take(d);
		vqd_packed_chain(d, b, n, id, 0);
		d->num_free -= n - 1; /* ring slots: one per descriptor */
		return id;
	}
	head = d->free_head;
	for (unsigned k = 0; k < n; k++) {
		int i = vqd_take(d);
		uint16_t next = k + 1 < n ? d->free_head : 0;
		vqd_write_desc(d, i, b[k].addr, b[k].len, buf_flags(&b[k], k + 1 < n), next);
	}
	d->chain_len[head] = n;
	vqd_publish_head(d, head);
	return head;
}

/* Write an indirect table of n entries at gpa `table` (split: chained by next; packed: in
 * order) without offering it. */
static inline void vqd_write_table(struct vqd *d, uint64_t table, const struct vqd_buf *b,
				   unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		vqd_write_desc_at(d, table + 16ull * k, b[k].addr, b[k].len,
				  d->packed ? (b[k].write ? VRING_DESC_F_WRITE : 0)
					    : buf_flags(&b[k], k + 1 < n),
				  d->packed ? 0 : k + 1);
}

/* Offer n buffers through one indirect descriptor whose table is written at gpa `table`.
 * Returns the head / buffer id or -ENOSPC. */
static inline int vqd_add_indirect(struct vqd *d, const struct vqd_buf *b, unsigned n,
				   uint64_t table)
{
	int id = vqd_take(d);

	if (id < 0)
		return id;
	vqd_write_table(d, table, b, n);
	if (d->packed) {
		struct vqd_buf t = { table, 16 * n, false };
		vqd_packed_chain(d, &t, 1, id, VRING_DESC_F_INDIRECT);
		return id;
	}
	vqd_write_desc(d, id, table, 16 * n, VRING_DESC_F_INDIRECT, 0);
	d->chain_len[id] = 1;
	vqd_publish_head(d, id);
	return id;
}

/* Take the next used entry: returns its id and sets *len, or -EAGAIN when none. Frees the
 * descriptors (and id) for reuse. */
static inline int vqd_get_used(struct vqd *d, uint32_t *len)
{
	uint16_t id, n;

	if (d->packed) {
		uint64_t p = d->desc + 16ull * d->next_used;
		uint16_t f = vqd_r16(d, p + 14);
		if (!!(f & VQD_PF_AVAIL) != d->used_wrap || !!(f & VQD_PF_USED) != d->used_wrap)
			return -EAGAIN;
		id = vqd_r16(d, p + 12);
		*len = vqd_r32(d, p + 8);
		if (id >= d->size || !d->chain_len[id])
			return -EINVAL;
		n = d->chain_len[id];
		d->chain_len[id] = 0;
		d->next_used += n;
		if (d->next_used >= d->size) {
			d->next_used -= d->size;
			d->used_wrap = !d->used_wrap;
		}
		d->link[id] = d->free_head; /* ids and ring slots are counted together */
		d->free_head = id;
		d->num_free += n;
		return id;
	}
	if (vqd_r16(d, d->used + 2) == d->last_used)
		return -EAGAIN;
	uint64_t e = d->used + 4 + 8ull * (d->last_used % d->size);
	id = vqd_r32(d, e);
	*len = vqd_r32(d, e + 4);
	d->last_used++;
	if (id >= d->size || !d->chain_len[id])
		return -EINVAL;
	/* Free the chain: follow the next fields the driver wrote. */
	n = d->chain_len[id];
	d->chain_len[id] = 0;
	for (uint16_t k = 0, i = id; k < n; k++) {
		uint16_t next = vqd_r16(d, d->desc + 16ull * i + 14);
		d->link[i] = d->free_head;
		d->free_head = i;
		d->num_free++;
		i = next;
	}
	return id;
}

/* The next used entry within about two seconds (a device thread completes it): its id, or
 * -EAGAIN. */
static inline int vqd_wait_used(struct vqd *d, uint32_t *len)
{
	for (int i = 0; i < 4000; i++) {
		int id = vqd_get_used(d, len);

		if (id != -EAGAIN)
			return id;
		usleep(500);
	}
	return -EAGAIN;
}

/* Whether the driver must kick the device for what it offered since the last call
 * (VRING_USED_F_NO_NOTIFY / avail_event; packed: device event suppression). */
static inline bool vqd_kick_needed(struct vqd *d)
{
	bool event_idx = d->features & VQD_F_EVENT_IDX, need;

	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* what was offered, before reading the wishes */

	if (d->packed) {
		uint16_t off_wrap = vqd_r16(d, d->used), flags = vqd_r16(d, d->used + 2) & 3;
		uint16_t old = d->kicked_pos, new = d->next_avail, ev = off_wrap & 0x7fff;
		if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
			need = false;
		else if (flags != VRING_PACKED_EVENT_FLAG_DESC || !event_idx)
			need = true;
		else {
			if ((bool)(off_wrap >> 15) != d->avail_wrap)
				ev -= d->size;
			need = vring_need_event(ev, new, old);
		}
		d->kicked_pos = new;
		d->kicked_wrap = d->avail_wrap;
		return need;
	}
	if (event_idx)
		need = vring_need_event(vqd_r16(d, d->used + 4 + 8ull * d->size), d->avail_idx,
					d->kicked_idx);
	else
		need = !(vqd_r16(d, d->used) & VRING_USED_F_NO_NOTIFY);
	d->kicked_idx = d->avail_idx;
	return need;
}

/* The driver's interrupt suppression: enable=false asks for no interrupts. With EVENT_IDX,
 * enable=true asks for one once the used entry `event` is written (split: the used index
 * value, usually the driver's last_used; packed: a ring position, taken in the driver's
 * current used round when >= next_used, else in the next round). */
static inline void vqd_enable_interrupts(struct vqd *d, bool enable, uint16_t event)
{
	bool event_idx = d->features & VQD_F_EVENT_IDX;

	if (d->packed) {
		bool wrap = event >= d->next_used ? d->used_wrap : !d->used_wrap;
		uint16_t flags = !enable ? VRING_PACKED_EVENT_FLAG_DISABLE
			: event_idx ? VRING_PACKED_EVENT_FLAG_DESC : VRING_PACKED_EVENT_FLAG_ENABLE;
		vqd_w16(d, d->avail, event | (uint16_t)wrap << 15);
		vqd_w16(d, d->avail + 2, flags);
		return;
	}
	vqd_w16(d, d->avail, enable ? 0 : VRING_AVAIL_F_NO_INTERRUPT);
	if (event_idx) /* disabled: an event half the index space away */
		vqd_w16(d, d->avail + 4 + 2ull * d->size,
			enable ? event : (uint16_t)(d->last_used + 0x8000));
}

#endif
