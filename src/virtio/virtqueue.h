/* Virtqueues: the device side of split and packed rings (virtio 1.2, 2.7 and 2.8).
 *
 * One descriptor-chain walker serves every device. It bounds-checks each guest-controlled
 * value: the head index, each descriptor's address and length (through guest memory, or an
 * IOTLB in front of it), the chain length and loops, indirect tables (size, alignment, no
 * indirect inside indirect), and a device-readable descriptor after a device-writable one.
 * A broken chain is a device error: vq_pop() returns -EIO, records the reason in
 * vq->last_error and marks the queue broken (the owner then sets DEVICE_NEEDS_RESET); later
 * calls do nothing until vq_reset(). It never crashes and never yields a pointer outside
 * guest memory.
 *
 * Threads: one queue is used by one thread at a time (the device's worker, or the vhost-user
 * queue thread); there are no locks on the hot path. vq_pop/vq_push do no allocation.
 * Ring host pointers are mapped once at vq_setup(): after the memory map changes (vhost-user
 * SET_MEM_TABLE, IOTLB invalidation of the rings) call vq_remap().
 *
 * Memory ordering (virtio 1.2 2.7.13/2.8.21): the avail index (packed: the head's flags) is
 * read with acquire semantics before ring entries and descriptors; each descriptor is copied
 * once into a local before it is checked (no double fetch); a used element is written before
 * the used index (packed: id/len before flags) with release semantics; a full fence sits
 * between publishing used entries and reading used_event/flags, and between publishing
 * avail_event/flags and re-reading the avail index.
 *
 * Lifecycle: vq_setup() -> ready; a broken chain -> broken (pops and pushes return -EIO);
 * vq_reset() -> not ready (as after a device reset); vq_setup() makes it usable again.
 */
#ifndef VIREO_VIRTIO_VIRTQUEUE_H
#define VIREO_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "memory/guest_memory.h"

#define VQ_MAX_SIZE 32768 /* split: power of two up to this; packed: any size up to this */
#define VQ_MAX_IOV  1024  /* at most this many buffers in one element (UIO_MAXIOV) */

/* Why a chain or ring was refused: one name each, for logs and the hostile-chain tests. */
enum vq_error {
	VQ_OK = 0,
	VQ_ERR_AVAIL_IDX,        /* avail->idx moved more than the queue size */
	VQ_ERR_HEAD_RANGE,       /* head index (packed: buffer id) >= queue size */
	VQ_ERR_DESC_ADDR,        /* buffer not (fully) in guest memory / not mapped by the IOTLB */
	VQ_ERR_CHAIN_LOOP,       /* chain longer than the table: a loop */
	VQ_ERR_NEXT_RANGE,       /* next index >= table size */
	VQ_ERR_INDIRECT_LEN,     /* indirect table length 0, not a multiple of 16, or too large */
	VQ_ERR_INDIRECT_ADDR,    /* indirect table not in guest memory */
	VQ_ERR_NESTED_INDIRECT,  /* indirect descriptor inside an indirect table */
	VQ_ERR_INDIRECT_NEXT,    /* indirect descriptor with NEXT set (packed: or in a chain) */
	VQ_ERR_READ_AFTER_WRITE, /* device-readable descriptor after a device-writable one */
	VQ_ERR_TOO_MANY_IOV,     /* more than VQ_MAX_IOV buffers */
	VQ_ERR_TOTAL_LEN,        /* total chain length over 4 GiB - 1 (used len is 32 bits) */
	VQ_ERR_USED_ID,          /* vq_push of an id that is not in flight */
	VQ_ERR_RING_ADDR,        /* ring not in guest memory or misaligned (vq_setup) */
	VQ_ERR_RING_SIZE,        /* bad queue size (vq_setup), bad packed index (vq_set_state) */
	VQ_ERR_HEAD_BUSY,        /* head (packed: buffer id) already popped and not yet pushed */
	VQ_ERR_COUNT
};
const char *vq_error_name(enum vq_error e);

/* An optional translation in front of guest memory (vhost-user IOTLB, per-device DMA domain,
 * S10). Returns how many bytes from iova (at most len) map contiguously to *gpa with the
 * access wanted (VQ_ACCESS_*), or 0 when unmapped / not permitted. */
#define VQ_ACCESS_READ  1 /* device reads (driver->device buffers, rings) */
#define VQ_ACCESS_WRITE 2 /* device writes */
struct vq_iotlb {
	uint64_t (*xlate)(void *opaque, uint64_t iova, uint64_t len, int access, uint64_t *gpa);
	void *opaque;
};

/* One request popped from the ring: device-readable buffers first (iov[0..out_num)), then
 * device-writable ones (iov[out_num..out_num+in_num)). in_gpa[k] holds the guest-physical
 * address of writable buffer iov[out_num + k] so that vq_push can mark what the device wrote
 * dirty. A descriptor crossing two adjacent memory regions (or IOTLB mappings) yields several
 * iovecs. Zero-length descriptors yield none. The struct is large (24 KiB): keep it in the
 * device's state, not on a small stack. */
struct vq_elem {
	uint16_t id;        /* split: head index; packed: buffer id */
	uint16_t ndescs;    /* packed: descriptors the chain took in the ring */
	unsigned out_num, in_num;
	uint64_t out_len, in_len; /* total bytes readable / writable */
	struct iovec iov[VQ_MAX_IOV];
	uint64_t in_gpa[VQ_MAX_IOV];
};

struct vq_state { /* what GET/SET_VRING_BASE and snapshots carry */
	uint16_t last_avail_idx; /* packed: bit 15 is the wrap counter */
	uint16_t used_idx;       /* packed: bit 15 is the wrap counter */
};

struct virtqueue {
	struct guest_memory *gm;
	const struct vq_iotlb *iotlb;  /* NULL: addresses are guest-physical */
	uint16_t size;
	bool packed, event_idx, indirect, ready, broken;
	enum vq_error last_error;
	uint64_t desc_addr, avail_addr, used_addr; /* as the driver gave them (gpa or iova) */
	void *desc, *avail, *used;                 /* host pointers, checked at vq_setup */
	uint16_t last_avail_idx, used_idx;         /* split: free-running; packed: index */
	bool avail_wrap, used_wrap;                /* packed wrap counters */
	uint16_t signalled_used;                   /* EVENT_IDX bookkeeping */
	bool signalled_used_valid;
	uint16_t inflight;                         /* popped, not yet pushed */
	uint64_t errors;                           /* chains refused since setup */
	/* Added by the implementation (private): */
	uint16_t shadow_avail_idx;                 /* split: avail->idx as last read */
	bool no_notify;                            /* vq_enable_notify(false) in force */
	uint64_t desc_gpa, avail_gpa, used_gpa;    /* the rings' guest-physical addresses */
	uint64_t inflight_map[VQ_MAX_SIZE / 64];   /* bit per head/buffer id popped, not pushed */
};

/* Driver features that change the rings (VIRTIO_F_RING_PACKED, VIRTIO_RING_F_EVENT_IDX,
 * VIRTIO_RING_F_INDIRECT_DESC) are read from `features`. Checks the size (split: power of two
 * up to VQ_MAX_SIZE; packed: 1..VQ_MAX_SIZE), the alignment (split: desc 16, avail 2, used 4;
 * packed: desc 16, event structures 4) and that each ring lies, as one contiguous range, in
 * one guest memory region (through the IOTLB when set: READ for desc/avail, WRITE for used,
 * both for the packed descriptor ring; the used ring may not be in a read-only region).
 * Through an IOTLB a ring may span several entries (pages) when they follow each other in
 * guest-physical memory.
 * Resets all indices (packed wrap counters start at 1). Returns 0 or -EINVAL (last_error:
 * VQ_ERR_RING_SIZE or VQ_ERR_RING_ADDR; the queue stays not ready). An indirect descriptor is
 * accepted even without VIRTIO_RING_F_INDIRECT_DESC (it is checked all the same). */
int vq_setup(struct virtqueue *vq, struct guest_memory *gm, const struct vq_iotlb *iotlb,
	     uint16_t size, uint64_t desc, uint64_t avail, uint64_t used, uint64_t features);
/* The memory map or IOTLB changed under a live queue: map the rings again at the same
 * addresses, keeping indices and the in-flight set (vq_setup would forget which requests are
 * in flight). Returns 0, or -EINVAL and the queue is broken (VQ_ERR_RING_ADDR). Requests
 * popped before still hold iovecs into the old mapping: drain them before unmapping it. */
int vq_remap(struct virtqueue *vq, struct guest_memory *gm, const struct vq_iotlb *iotlb);
/* Back to not ready, as after a device reset: indices, in-flight set, error and broken state
 * cleared; gm and iotlb kept. */
void vq_reset(struct virtqueue *vq);

/* 1: *e holds a request; 0: ring empty (or queue not ready); -EIO: broken chain or ring
 * (vq->last_error). Each popped id is in flight until vq_push or vq_unpop. */
int vq_pop(struct virtqueue *vq, struct vq_elem *e);
/* Return a request with `written` bytes written into its writable buffers: exactly those
 * bytes (clamped to in_len), in iovec order, and the used entry are marked dirty. Returns 0,
 * or -EIO when the queue is broken or not ready, or e->id is not in flight (VQ_ERR_USED_ID,
 * which also breaks the queue). Several pushes may be followed by one vq_should_notify(). */
int vq_push(struct virtqueue *vq, const struct vq_elem *e, uint32_t written);
/* (addition, src/virtio/vq_batch.c) Push n requests (written[i] bytes each) and publish them
 * to the driver at once: one used->idx update (packed: the first entry's flags written last),
 * so the driver sees all of them or none (virtio-net mergeable buffers). Every id must be in
 * flight and appear once; otherwise nothing is pushed and the queue breaks (VQ_ERR_USED_ID).
 * Returns 0 or -EIO. */
int vq_push_batch(struct virtqueue *vq, const struct vq_elem *const *elems,
		  const uint32_t *written, unsigned n);
/* Put a popped request back (e.g. no receive buffer space yet): the next pop returns it.
 * Only the most recently popped requests, in reverse order of popping. */
void vq_unpop(struct virtqueue *vq, const struct vq_elem *e);
/* Whether the driver wants an interrupt now (EVENT_IDX / NO_INTERRUPT / packed event
 * suppression); call after pushing, before signalling. */
bool vq_should_notify(struct virtqueue *vq);
/* Ask for (or stop asking for) kicks while the device polls (VRING_USED_F_NO_NOTIFY /
 * avail event). Returns true when the ring is non-empty after enabling (race check): then
 * pop again. With kicks enabled, a vq_pop that finds the ring empty also republishes the
 * avail event (EVENT_IDX) and re-checks after a full fence, so "pop until 0, wait for a
 * kick" never misses a buffer. Kicks are enabled after vq_setup. */
bool vq_enable_notify(struct virtqueue *vq, bool enable);
bool vq_empty(struct virtqueue *vq);

/* Indices for GET/SET_VRING_BASE and snapshots. vq_set_state (after vq_setup) forgets the
 * in-flight set; a packed index >= size breaks the queue (VQ_ERR_RING_SIZE). */
void vq_get_state(const struct virtqueue *vq, struct vq_state *st);
void vq_set_state(struct virtqueue *vq, const struct vq_state *st);

#endif
