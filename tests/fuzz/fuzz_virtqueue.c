/* libFuzzer target for the virtqueue walker, split and packed.
 *
 * The input is a small guest's memory: a 4-byte header, then an image copied to gpa 0 that
 * holds the rings and whatever descriptors, indirect tables and buffers the fuzzer invents.
 *   byte 0: bit 0 packed, bit 1 EVENT_IDX, bit 2 through an IOTLB, bit 3 kicks disabled
 *   byte 1: queue size (split: 1 << (b % 6); packed: 1 + b % 48)
 *   byte 2: push policy seed (written length, unpop, out-of-order completion)
 *   byte 3: number of guest "edits" at the end of the input (gpa u16, value u32 each),
 *           applied one per pop, as a guest changing its rings between device calls
 * Memory: R0 [0, 64 KiB) and R1 [64 KiB, 128 KiB) adjacent, a gap, ROM at 256 KiB.
 * Rings (packed at the start so that short inputs reach them): split desc 0x0, avail 0x200,
 * used 0x280; packed desc 0x0, driver event 0x300, device event 0x304. With the IOTLB every
 * address is IOVA_BASE + gpa (mapped a page at a time) and one page is read-only. Pops and pushes until empty or broken, checking that every iovec lies inside a
 * guest region, that the element's counts and lengths add up, and that a broken queue stays
 * broken.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memory/guest_memory.h"
#include "virtio/virtqueue.h"

#define KIB 1024ull
#define IOVA_BASE 0x7000000000ull
#define IOVA_RO_PAGE (IOVA_BASE + 0x5000)
#define HDR 4

static struct guest_memory gm;
static struct virtqueue vq;
static struct vq_elem elems[4];

static uint64_t fuzz_xlate(void *opaque, uint64_t iova, uint64_t len, int access, uint64_t *gpa)
{
	uint64_t n;

	(void)opaque;
	if (iova < IOVA_BASE || iova - IOVA_BASE >= 512 * KIB)
		return 0;
	if ((access & VQ_ACCESS_WRITE) && iova >= IOVA_RO_PAGE && iova < IOVA_RO_PAGE + 4096)
		return 0;
	*gpa = iova - IOVA_BASE;
	n = 4096 - (iova & 4095); /* one page at a time: exercises the piecewise path */
	return n < len ? n : len;
}
static const struct vq_iotlb iotlb = { fuzz_xlate, NULL };

static void check(int cond)
{
	if (!cond)
		abort();
}

static void init_memory(void)
{
	static int done;

	if (done)
		return;
	check(gm_init(&gm) == 0);
	check(gm_add_ram(&gm, 0, 64 * KIB, 0) >= 0);
	check(gm_add_ram(&gm, 64 * KIB, 64 * KIB, 0) >= 0);
	check(gm_add_ram(&gm, 256 * KIB, 4 * KIB, GM_REGION_READONLY) >= 0);
	done = 1;
}

/* Every iovec inside one region; writable ones not in ROM; totals consistent. */
static void check_elem(const struct vq_elem *e)
{
	uint64_t out = 0, in = 0;

	check(e->out_num + e->in_num <= VQ_MAX_IOV);
	check(e->id < vq.size);
	for (unsigned i = 0; i < e->out_num + e->in_num; i++) {
		uintptr_t b = (uintptr_t)e->iov[i].iov_base, l = e->iov[i].iov_len;
		bool inside = false;

		for (unsigned r = 0; r < gm.nregions; r++) {
			uintptr_t h = (uintptr_t)gm.regions[r].hva;

			if (b >= h && l <= gm.regions[r].size && b - h <= gm.regions[r].size - l) {
				inside = !(i >= e->out_num && (gm.regions[r].flags & GM_REGION_READONLY));
				if (i >= e->out_num)
					check(gm_translate(&gm, e->in_gpa[i - e->out_num], l) == (void *)b);
			}
		}
		check(inside && l > 0);
		if (i < e->out_num)
			out += l;
		else
			in += l;
	}
	check(out == e->out_len && in == e->in_len && out + in <= UINT32_MAX);
	if (e->in_num) /* the device writes what the guest offered */
		memset(e->iov[e->out_num].iov_base, 0xa5, e->iov[e->out_num].iov_len);
}

static void guest_edit(const uint8_t **edits, unsigned *nedits)
{
	uint16_t gpa;
	uint32_t val;

	if (!*nedits)
		return;
	memcpy(&gpa, *edits, 2);
	memcpy(&val, *edits + 2, 4);
	gm_write(&gm, gpa % (64 * KIB - 4), &val, 4);
	*edits += 6;
	(*nedits)--;
}

static void run_queue(uint8_t policy, const uint8_t *edits, unsigned nedits)
{
	unsigned held = 0, pops = 0;

	for (;;) {
		struct vq_elem *e = &elems[held];
		int r = vq_pop(&vq, e);

		if (r < 0) {
			check(vq.broken && vq.last_error != VQ_OK);
			check(vq_pop(&vq, e) == -EIO && vq_push(&vq, e, 0) == -EIO);
			return;
		}
		if (r == 0 || ++pops > 256)
			break;
		check_elem(e);
		guest_edit(&edits, &nedits);
		if ((policy & 1) && pops == 1) { /* put it back once: the same chain again */
			vq_unpop(&vq, e);
			continue;
		}
		if (++held < ((policy >> 1) & 3) + 1)
			continue; /* keep a few in flight, complete them newest first */
		while (held) {
			struct vq_elem *x = &elems[--held];
			check(vq_push(&vq, x, (uint32_t)(x->in_len >> (policy >> 3 & 3))) == 0);
		}
		vq_should_notify(&vq);
	}
	while (held)
		check(vq_push(&vq, &elems[--held], 0) == 0);
	vq_should_notify(&vq);
	vq_enable_notify(&vq, true);
	check(vq.inflight == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t zero[128 * KIB];
	uint64_t features = 0, base;
	unsigned nedits;
	uint16_t qsize;
	size_t img;

	if (size < HDR)
		return 0;
	init_memory();
	bool packed = data[0] & 1;
	features |= packed ? 1ull << 34 : 0;             /* VIRTIO_F_RING_PACKED */
	features |= (data[0] & 2) ? 1ull << 29 : 0;      /* VIRTIO_RING_F_EVENT_IDX */
	features |= 1ull << 28;                          /* VIRTIO_RING_F_INDIRECT_DESC */
	qsize = packed ? 1 + data[1] % 48 : 1u << (data[1] % 6);
	nedits = data[3];
	if ((size_t)nedits * 6 > size - HDR)
		nedits = (size - HDR) / 6;
	img = size - HDR - (size_t)nedits * 6;
	if (img > 64 * KIB)
		img = 64 * KIB;
	gm_write(&gm, 0, zero, sizeof(zero));
	gm_write(&gm, 0, data + HDR, img);

	base = (data[0] & 4) ? IOVA_BASE : 0;
	if (vq_setup(&vq, &gm, (data[0] & 4) ? &iotlb : NULL, qsize, base,
		     base + (packed ? 0x300 : 0x200), base + (packed ? 0x304 : 0x280), features) < 0) {
		check(!vq.ready && vq.last_error != VQ_OK);
		return 0;
	}
	if (data[0] & 8)
		vq_enable_notify(&vq, false);
	run_queue(data[2], data + size - (size_t)nedits * 6, nedits);
	return 0;
}
