/* Split virtqueues: ring set-up checks, normal flows (single, chained, indirect, many in flight,
 * index wrap-around, EVENT_IDX and flag notification decisions, unpop, state restart, IOTLB,
 * dirty marking) and a table of hostile chains, each with the error the walker must report. */
#include <sys/mman.h>

#include "vq_fixture.h"

static int setup_plain(void **state) { return fx_setup(state, 0); }
static int setup_event(void **state) { return fx_setup(state, VQD_F_EVENT_IDX | VQD_F_INDIRECT); }

/* ---- ring set-up ---- */

static void expect_setup(struct fx *f, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
			 enum vq_error want)
{
	struct virtqueue vq = { 0 };
	int ret = vq_setup(&vq, &f->gm, NULL, size, desc, avail, used, 0);

	if (want == VQ_OK) {
		assert_int_equal(ret, 0);
		assert_true(vq.ready);
		return;
	}
	assert_int_equal(ret, -EINVAL);
	assert_int_equal(vq.last_error, want);
	assert_false(vq.ready);
	struct vq_elem *e = &f->e;
	assert_int_equal(vq_pop(&vq, e), 0); /* a queue that is not ready offers nothing */
}

static void test_setup_checks(void **state)
{
	struct fx *f = *state;

	expect_setup(f, 16, 0x1000, 0x2000, 0x3000, VQ_OK);
	expect_setup(f, 0, 0x1000, 0x2000, 0x3000, VQ_ERR_RING_SIZE);
	expect_setup(f, 12, 0x1000, 0x2000, 0x3000, VQ_ERR_RING_SIZE);
	expect_setup(f, 65535, 0x1000, 0x2000, 0x3000, VQ_ERR_RING_SIZE);
	expect_setup(f, 32768, 0x0, 0x80000, 0xa0000, VQ_OK);
	expect_setup(f, 16, 0x1008, 0x2000, 0x3000, VQ_ERR_RING_ADDR); /* desc not 16-aligned */
	expect_setup(f, 16, 0x1000, 0x2001, 0x3000, VQ_ERR_RING_ADDR); /* avail not 2-aligned */
	expect_setup(f, 16, 0x1000, 0x2000, 0x3002, VQ_ERR_RING_ADDR); /* used not 4-aligned */
	/* desc table crossing R0/R1: both mapped, but not as one range */
	expect_setup(f, 16, MIB - 128, 0x2000, 0x3000, VQ_ERR_RING_ADDR);
	expect_setup(f, 16, 0x1000, 0x2000, GAP_GPA - 64, VQ_ERR_RING_ADDR); /* into the gap */
	expect_setup(f, 16, GAP_GPA, 0x2000, 0x3000, VQ_ERR_RING_ADDR);
	expect_setup(f, 16, 0x1000, UINT64_MAX - 1, 0x3000, VQ_ERR_RING_ADDR); /* overflow */
	expect_setup(f, 16, RO_GPA, RO_GPA + 0x1000, 0x3000, VQ_OK); /* rings the device reads */
	expect_setup(f, 16, 0x1000, 0x2000, RO_GPA, VQ_ERR_RING_ADDR); /* used ring in ROM */
}

/* ---- normal flows ---- */

static void test_single(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b[] = { { BUF_GPA, 100, false }, { BUF_GPA + 0x1000, 200, true } };
	uint32_t len = 0;
	int id;

	assert_true(vq_empty(&f->vq));
	assert_int_equal(vq_pop(&f->vq, &f->e), 0);
	memcpy(fx_host(f, BUF_GPA), "ping", 4);
	id = vqd_add(&f->d, b, 2);
	assert_true(id >= 0);
	assert_false(vq_empty(&f->vq));
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id);
	assert_int_equal(f->e.out_num, 1);
	assert_int_equal(f->e.in_num, 1);
	assert_int_equal(f->e.out_len, 100);
	assert_int_equal(f->e.in_len, 200);
	fx_check_iov(f, 0, BUF_GPA, 100);
	fx_check_iov(f, 1, BUF_GPA + 0x1000, 200);
	assert_int_equal(f->e.in_gpa[0], BUF_GPA + 0x1000);
	assert_memory_equal(f->e.iov[0].iov_base, "ping", 4);
	assert_int_equal(f->vq.inflight, 1);
	memcpy(f->e.iov[1].iov_base, "pong", 4);
	assert_int_equal(vqd_get_used(&f->d, &len), -EAGAIN);
	assert_int_equal(vq_push(&f->vq, &f->e, 4), 0);
	assert_int_equal(f->vq.inflight, 0);
	assert_int_equal(vqd_get_used(&f->d, &len), id);
	assert_int_equal(len, 4);
	assert_memory_equal(fx_host(f, BUF_GPA + 0x1000), "pong", 4);
	assert_int_equal(vq_pop(&f->vq, &f->e), 0);
	assert_false(f->vq.broken);
}

static void test_chained(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b[] = {
		{ BUF_GPA, 16, false }, { BUF_GPA + 0x100, 32, false }, { BUF_GPA + 0x200, 0, false },
		{ BUF_GPA + 0x300, 64, false }, { BUF_GPA + 0x400, 128, true }, { BUF_GPA + 0x500, 1, true },
	};
	uint32_t len;
	int id = vqd_add(&f->d, b, 6);

	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id);
	assert_int_equal(f->e.out_num, 3); /* the zero-length descriptor yields no iovec */
	assert_int_equal(f->e.in_num, 2);
	assert_int_equal(f->e.out_len, 16 + 32 + 64);
	assert_int_equal(f->e.in_len, 129);
	fx_check_iov(f, 0, BUF_GPA, 16);
	fx_check_iov(f, 1, BUF_GPA + 0x100, 32);
	fx_check_iov(f, 2, BUF_GPA + 0x300, 64);
	fx_check_iov(f, 3, BUF_GPA + 0x400, 128);
	fx_check_iov(f, 4, BUF_GPA + 0x500, 1);
	assert_int_equal(f->e.in_gpa[1], BUF_GPA + 0x500);
	assert_int_equal(vq_push(&f->vq, &f->e, 500), 0); /* more than in_len: clamped */
	assert_int_equal(vqd_get_used(&f->d, &len), id);
	assert_int_equal(len, 129);
}

/* A buffer crossing from R0 into the adjacent R1 becomes two iovecs, each in_gpa right. */
static void test_cross_region(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b[] = { { MIB - 100, 300, false }, { MIB - 50, 150, true } };

	vqd_add(&f->d, b, 2);
	fx_clear_dirty(f);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.out_num, 2);
	assert_int_equal(f->e.in_num, 2);
	fx_check_iov(f, 0, MIB - 100, 100);
	fx_check_iov(f, 1, MIB, 200);
	fx_check_iov(f, 2, MIB - 50, 50);
	fx_check_iov(f, 3, MIB, 100);
	assert_int_equal(f->e.in_gpa[0], MIB - 50);
	assert_int_equal(f->e.in_gpa[1], MIB);
	assert_int_equal(vq_push(&f->vq, &f->e, 60), 0);
	assert_true(gm_is_dirty(&f->gm, MIB - 1));
	assert_true(gm_is_dirty(&f->gm, MIB)); /* byte 51..60 of the write */
	assert_false(gm_is_dirty(&f->gm, MIB + GM_PAGE_SIZE));
}

static void test_indirect(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b[] = {
		{ BUF_GPA, 10, false }, { BUF_GPA + 0x10, 20, false },
		{ BUF_GPA + 0x100, 30, true }, { BUF_GPA + 0x200, 40, true },
	};
	uint32_t len;
	int id = vqd_add_indirect(&f->d, b, 4, TABLE_GPA);

	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id);
	assert_int_equal(f->e.out_num, 2);
	assert_int_equal(f->e.in_num, 2);
	for (unsigned i = 0; i < 4; i++)
		fx_check_iov(f, i, b[i].addr, b[i].len);
	assert_int_equal(vq_push(&f->vq, &f->e, 70), 0);
	assert_int_equal(vqd_get_used(&f->d, &len), id);
	assert_int_equal(len, 70);
	/* A direct descriptor, then an indirect one ending the chain (no NEXT on it). */
	vqd_write_table(&f->d, TABLE_GPA, &b[2], 2);
	vqd_write_desc(&f->d, 3, BUF_GPA, 10, VRING_DESC_F_NEXT, 4);
	vqd_write_desc(&f->d, 4, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	vqd_publish_head(&f->d, 3);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.out_num, 1);
	assert_int_equal(f->e.in_num, 2);
}

/* Fill the ring, complete in reverse order, check every id comes back once. */
static void test_many_in_flight(void **state)
{
	struct fx *f = *state;
	static struct vq_elem elems[QSIZE];
	bool seen[QSIZE] = { 0 };
	uint32_t len;

	for (int round = 0; round < 3; round++) {
		for (unsigned i = 0; i < QSIZE; i++) {
			struct vqd_buf b = { BUF_GPA + i * 0x100, 0x80, true };
			assert_true(vqd_add(&f->d, &b, 1) >= 0);
		}
		struct vqd_buf extra = { BUF_GPA, 1, true };
		assert_int_equal(vqd_add(&f->d, &extra, 1), -ENOSPC);
		for (unsigned i = 0; i < QSIZE; i++)
			assert_int_equal(vq_pop(&f->vq, &elems[i]), 1);
		assert_int_equal(vq_pop(&f->vq, &f->e), 0);
		assert_int_equal(f->vq.inflight, QSIZE);
		for (unsigned i = QSIZE; i-- > 0;)
			assert_int_equal(vq_push(&f->vq, &elems[i], i), 0);
		memset(seen, 0, sizeof(seen));
		for (unsigned i = QSIZE; i-- > 0;) {
			int id = vqd_get_used(&f->d, &len);
			assert_int_equal(id, elems[i].id);
			assert_int_equal(len, i);
			assert_false(seen[id]);
			seen[id] = true;
		}
		assert_int_equal(vqd_get_used(&f->d, &len), -EAGAIN);
	}
}

/* avail and used indices run through 65535 -> 0. */
static void test_index_wrap(void **state)
{
	struct fx *f = *state;
	struct vq_state st = { 65530, 65530 };
	uint32_t len;

	vqd_set_split_indices(&f->d, 65530);
	vq_set_state(&f->vq, &st);
	for (unsigned i = 0; i < 40; i++) {
		struct vqd_buf b[] = { { BUF_GPA, 8, false }, { BUF_GPA + 0x100, 8, true } };
		int id = vqd_add(&f->d, b, 1 + i % 2);
		assert_int_equal(vq_pop(&f->vq, &f->e), 1);
		assert_int_equal(f->e.id, id);
		assert_int_equal(vq_push(&f->vq, &f->e, i % 2 ? 8 : 0), 0);
		assert_int_equal(vqd_get_used(&f->d, &len), id);
		assert_int_equal(len, i % 2 ? 8 : 0);
	}
	vq_get_state(&f->vq, &st);
	assert_int_equal(st.last_avail_idx, (uint16_t)(65530 + 40));
	assert_int_equal(st.used_idx, (uint16_t)(65530 + 40));
	assert_false(f->vq.broken);
}

static void pop_push_one(struct fx *f)
{
	struct vqd_buf b = { BUF_GPA, 8, true };
	uint32_t len;

	assert_true(vqd_add(&f->d, &b, 1) >= 0);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(vq_push(&f->vq, &f->e, 8), 0);
	assert_true(vqd_get_used(&f->d, &len) >= 0);
}

/* used_event decides interrupts (EVENT_IDX). */
static void test_event_idx_interrupts(void **state)
{
	struct fx *f = *state;

	pop_push_one(f); /* used idx 1 */
	assert_true(vq_should_notify(&f->vq)); /* first decision: always */
	vqd_enable_interrupts(&f->d, true, 2); /* interrupt once entry 2 is used */
	pop_push_one(f); /* used idx 2: entry 1 */
	assert_false(vq_should_notify(&f->vq));
	pop_push_one(f); /* entry 2 */
	assert_true(vq_should_notify(&f->vq));
	pop_push_one(f); /* entry 3: event passed */
	assert_false(vq_should_notify(&f->vq));
	vqd_enable_interrupts(&f->d, true, 5);
	pop_push_one(f);
	pop_push_one(f);
	pop_push_one(f); /* entries 4..6 in one batch: 5 inside */
	assert_true(vq_should_notify(&f->vq));
	assert_false(vq_should_notify(&f->vq)); /* nothing new since */
	vqd_enable_interrupts(&f->d, false, 0);
	pop_push_one(f);
	assert_false(vq_should_notify(&f->vq));
}

/* avail_event decides kicks (EVENT_IDX): published by enable_notify and by an empty pop. */
static void test_event_idx_kicks(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b = { BUF_GPA, 8, true };
	static struct vq_elem e2;

	assert_false(vq_enable_notify(&f->vq, true)); /* avail_event = 0, ring empty */
	vqd_add(&f->d, &b, 1);
	assert_true(vqd_kick_needed(&f->d));
	vqd_add(&f->d, &b, 1);
	assert_false(vqd_kick_needed(&f->d)); /* device has not caught up: no new kick */
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(vq_pop(&f->vq, &e2), 1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 0); /* empty: republishes avail_event = 2 */
	vqd_add(&f->d, &b, 1);
	assert_true(vqd_kick_needed(&f->d));
	/* Polling: kicks off, the stale avail_event stops them; enable sees the race. */
	assert_false(vq_enable_notify(&f->vq, false));
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 0); /* no republish while disabled */
	vqd_add(&f->d, &b, 1);
	assert_false(vqd_kick_needed(&f->d));
	assert_true(vq_enable_notify(&f->vq, true)); /* non-empty after enabling: pop again */
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
}

/* Without EVENT_IDX: VRING_AVAIL_F_NO_INTERRUPT and VRING_USED_F_NO_NOTIFY. */
static void test_flags_notify(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b = { BUF_GPA, 8, true };

	pop_push_one(f);
	assert_true(vq_should_notify(&f->vq));
	vqd_enable_interrupts(&f->d, false, 0);
	pop_push_one(f);
	assert_false(vq_should_notify(&f->vq));
	vqd_enable_interrupts(&f->d, true, 0);
	assert_true(vq_should_notify(&f->vq));

	vqd_add(&f->d, &b, 1);
	assert_true(vqd_kick_needed(&f->d));
	assert_false(vq_enable_notify(&f->vq, false));
	vqd_add(&f->d, &b, 1);
	assert_false(vqd_kick_needed(&f->d));
	assert_true(vq_enable_notify(&f->vq, true));
	vqd_add(&f->d, &b, 1);
	assert_true(vqd_kick_needed(&f->d));
}

static void test_unpop(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b[] = { { BUF_GPA, 8, false }, { BUF_GPA + 0x100, 16, true } };
	static struct vq_elem first;
	int id1 = vqd_add(&f->d, b, 2), id2 = vqd_add(&f->d, b, 1);

	assert_int_equal(vq_pop(&f->vq, &first), 1);
	assert_int_equal(first.id, id1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id2);
	vq_unpop(&f->vq, &f->e);
	vq_unpop(&f->vq, &first);
	assert_int_equal(f->vq.inflight, 0);
	assert_int_equal(vq_push(&f->vq, &first, 0), -EIO); /* no longer in flight */
	assert_int_equal(f->vq.last_error, VQ_ERR_USED_ID);
	/* the queue is broken by that device bug; start over */
	assert_int_equal(vqd_setup(&f->d, &f->vq, NULL), 0);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id1);
	fx_check_iov(f, 1, BUF_GPA + 0x100, 16);
	vq_unpop(&f->vq, &f->e);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id1);
	assert_int_equal(vq_pop(&f->vq, &first), 1);
	assert_int_equal(first.id, id2);
}

/* GET/SET_VRING_BASE: a new queue on the same rings continues where the old one stopped. */
static void test_state_restart(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b = { BUF_GPA, 8, true };
	struct vq_state st;
	static struct virtqueue vq2;
	int ids[4];
	uint32_t len;

	for (int i = 0; i < 4; i++)
		ids[i] = vqd_add(&f->d, &b, 1);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(vq_pop(&f->vq, &f->e), 1);
		assert_int_equal(vq_push(&f->vq, &f->e, 1), 0);
	}
	vq_get_state(&f->vq, &st);
	assert_int_equal(st.last_avail_idx, 2);
	assert_int_equal(st.used_idx, 2);
	assert_int_equal(vqd_setup(&f->d, &vq2, NULL), 0);
	vq_set_state(&vq2, &st);
	assert_int_equal(vq_pop(&vq2, &f->e), 1);
	assert_int_equal(f->e.id, ids[2]);
	assert_int_equal(vq_push(&vq2, &f->e, 3), 0);
	assert_int_equal(vqd_get_used(&f->d, &len), ids[0]);
	assert_int_equal(vqd_get_used(&f->d, &len), ids[1]);
	assert_int_equal(vqd_get_used(&f->d, &len), ids[2]);
	assert_int_equal(len, 3);
	/* vq_remap keeps what is in flight */
	assert_int_equal(vq_pop(&vq2, &f->e), 1);
	assert_int_equal(vq_remap(&vq2, &f->gm, NULL), 0);
	assert_int_equal(vq_push(&vq2, &f->e, 0), 0);
	assert_int_equal(vqd_get_used(&f->d, &len), ids[3]);
}

static void test_push_not_in_flight(void **state)
{
	struct fx *f = *state;

	pop_push_one(f);
	assert_int_equal(vq_push(&f->vq, &f->e, 0), -EIO); /* twice */
	assert_int_equal(f->vq.last_error, VQ_ERR_USED_ID);
	assert_true(f->vq.broken);
	assert_int_equal(vqd_setup(&f->d, &f->vq, NULL), 0);
	f->e.id = QSIZE + 3; /* out of range */
	assert_int_equal(vq_push(&f->vq, &f->e, 0), -EIO);
	assert_int_equal(f->vq.last_error, VQ_ERR_USED_ID);
}

/* Exactly the written bytes are dirty, in iovec order, plus the used ring. */
static void test_dirty(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b[] = {
		{ BUF_GPA, 64, false }, { BUF_GPA + 0x10000, 0x2000, true },
		{ BUF_GPA + 0x20000, 0x3000, true },
	};
	uint64_t w1 = BUF_GPA + 0x10000, w2 = BUF_GPA + 0x20000;

	vqd_add(&f->d, b, 3);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	fx_clear_dirty(f);
	assert_int_equal(vq_push(&f->vq, &f->e, 0x2000 + 0x1001), 0);
	assert_true(gm_is_dirty(&f->gm, w1));
	assert_true(gm_is_dirty(&f->gm, w1 + 0x1fff));
	assert_true(gm_is_dirty(&f->gm, w2));
	assert_true(gm_is_dirty(&f->gm, w2 + 0x1000)); /* the 0x1001st byte */
	assert_false(gm_is_dirty(&f->gm, w2 + 0x2000));
	assert_false(gm_is_dirty(&f->gm, BUF_GPA)); /* readable: never */
	assert_true(gm_is_dirty(&f->gm, f->d.used)); /* used idx and element */
	assert_int_equal(fx_count_dirty(f), 2 + 2 + 1 + (f->d.used / GM_PAGE_SIZE !=
						      (f->d.used + 4 + 8) / GM_PAGE_SIZE));
	/* nothing written: only the used ring */
	vqd_add(&f->d, b, 3);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	fx_clear_dirty(f);
	assert_int_equal(vq_push(&f->vq, &f->e, 0), 0);
	assert_false(gm_is_dirty(&f->gm, w1));
	assert_true(gm_is_dirty(&f->gm, f->d.used));
}

/* ---- IOTLB ---- */

/* iova IOVA_BASE + x -> gpa x for x < 2 MiB, one page per lookup, except: the page at IOVA_RO is read-only, and
 * the two pages at IOVA_SPLIT map to gpa 0x30000 and 0x50000 (a contiguous iova range that is
 * not contiguous in guest memory). */
#define IOVA_BASE  0x100000000ull
#define IOVA_RO    (IOVA_BASE + 0x70000)
#define IOVA_SPLIT (IOVA_BASE + 0x90000)
static uint64_t test_xlate(void *opaque, uint64_t iova, uint64_t len, int access, uint64_t *gpa)
{
	uint64_t page_end = (iova | (GM_PAGE_SIZE - 1)) + 1, n;

	(void)opaque;
	if (iova < IOVA_BASE || iova >= IOVA_BASE + 2 * MIB)
		return 0;
	if ((access & VQ_ACCESS_WRITE) && iova >= IOVA_RO && iova < IOVA_RO + GM_PAGE_SIZE)
		return 0;
	if (iova >= IOVA_SPLIT && iova < IOVA_SPLIT + 2 * GM_PAGE_SIZE) {
		uint64_t base = iova < IOVA_SPLIT + GM_PAGE_SIZE ? 0x30000 : 0x50000;
		n = page_end - iova;
		*gpa = base + (iova & (GM_PAGE_SIZE - 1));
		return n < len ? n : len;
	}
	*gpa = iova - IOVA_BASE; /* a page per entry, as a vIOMMU's IOTLB hands them out */
	n = page_end - iova;
	return n < len ? n : len;
}
static const struct vq_iotlb iotlb = { test_xlate, NULL };

static void test_iotlb(void **state)
{
	struct fx *f = *state;
	struct virtqueue *vq = &f->vq;
	uint64_t d = IOVA_BASE + RING_GPA, a = IOVA_BASE + f->d.avail, u = IOVA_BASE + f->d.used;

	assert_int_equal(vq_setup(vq, &f->gm, &iotlb, QSIZE, d, a, u, 0), 0);
	assert_int_equal(vq->used_gpa, f->d.used);
	/* buffers in iova space: one crossing the split pages, one write into the RO page */
	vqd_write_desc(&f->d, 0, IOVA_SPLIT + 0xf00, 0x200, VRING_DESC_F_NEXT, 1);
	vqd_write_desc(&f->d, 1, IOVA_SPLIT + 0xf80, 0x100, VRING_DESC_F_WRITE, 0);
	vqd_publish_head(&f->d, 0);
	assert_int_equal(vq_pop(vq, &f->e), 1);
	fx_check_iov(f, 0, 0x30f00, 0x100);
	fx_check_iov(f, 1, 0x50000, 0x100);
	fx_check_iov(f, 2, 0x30f80, 0x80);
	fx_check_iov(f, 3, 0x50000, 0x80);
	assert_int_equal(f->e.in_gpa[0], 0x30f80);
	assert_int_equal(f->e.in_gpa[1], 0x50000);
	fx_clear_dirty(f);
	assert_int_equal(vq_push(vq, &f->e, 0x100), 0);
	assert_true(gm_is_dirty(&f->gm, 0x30000));
	assert_true(gm_is_dirty(&f->gm, 0x50000));
	assert_true(gm_is_dirty(&f->gm, f->d.used)); /* the used ring by its gpa */
	assert_int_equal(vqd_r16(&f->d, f->d.used + 2), 1);
	assert_int_equal(vqd_r32(&f->d, f->d.used + 4), 0);     /* id */
	assert_int_equal(vqd_r32(&f->d, f->d.used + 8), 0x100); /* len */
	/* a buffer over several IOTLB pages that follow each other in gpa: one iovec */
	vqd_write_desc(&f->d, 4, IOVA_BASE + 0x60f00, 0x2300, VRING_DESC_F_WRITE, 0);
	vqd_publish_head(&f->d, 4);
	assert_int_equal(vq_pop(vq, &f->e), 1);
	assert_int_equal(f->e.in_num, 1);
	fx_check_iov(f, 0, 0x60f00, 0x2300);
	assert_int_equal(f->e.in_gpa[0], 0x60f00);
	/* readable from the RO page is fine, writable is not */
	vqd_write_desc(&f->d, 2, IOVA_RO, 16, 0, 0);
	vqd_publish_head(&f->d, 2);
	assert_int_equal(vq_pop(vq, &f->e), 1);
	vqd_write_desc(&f->d, 3, IOVA_RO, 16, VRING_DESC_F_WRITE, 0);
	vqd_publish_head(&f->d, 3);
	assert_int_equal(vq_pop(vq, &f->e), -EIO);
	assert_int_equal(vq->last_error, VQ_ERR_DESC_ADDR);
	/* rings: unmapped, or the used ring in a page the device may not write */
	assert_int_equal(vq_setup(vq, &f->gm, &iotlb, QSIZE, RING_GPA, a, u, 0), -EINVAL);
	assert_int_equal(vq->last_error, VQ_ERR_RING_ADDR);
	assert_int_equal(vq_setup(vq, &f->gm, &iotlb, QSIZE, d, a, IOVA_RO, 0), -EINVAL);
	assert_int_equal(vq->last_error, VQ_ERR_RING_ADDR);
	assert_int_equal(vq_setup(vq, &f->gm, &iotlb, QSIZE, IOVA_SPLIT + 0xf80, a, u, 0), -EINVAL);
	/* rings spanning several IOTLB pages, contiguous in gpa: accepted */
	assert_int_equal(vq_setup(vq, &f->gm, &iotlb, 256, IOVA_BASE + 0x10800, IOVA_BASE + 0x12000,
				  IOVA_BASE + 0x13ffc, 0), 0);
	assert_int_equal(vq->desc_gpa, 0x10800);
	assert_int_equal(vq_setup(vq, &f->gm, &iotlb, QSIZE, d, a, u, 0), 0);
	assert_int_equal(vq_remap(vq, &f->gm, NULL), -EINVAL); /* iova addresses, no IOTLB */
	assert_true(vq->broken);
}

/* ---- hostile chains ---- */

struct hostile {
	const char *name;
	enum vq_error want;
	void (*make)(struct fx *f);
};

#define D(i, a, l, fl, n) vqd_write_desc(&f->d, i, a, l, fl, n)
#define T(k, a, l, fl, n) vqd_write_desc_at(&f->d, TABLE_GPA + 16 * (k), a, l, fl, n)
#define PUB(h) vqd_publish_head(&f->d, h)
enum { NX = VRING_DESC_F_NEXT, WR = VRING_DESC_F_WRITE, IND = VRING_DESC_F_INDIRECT };

static void h_head_range(struct fx *f) { D(0, BUF_GPA, 8, 0, 0); PUB(QSIZE); }
static void h_head_ffff(struct fx *f) { PUB(0xffff); }
static void h_next_range(struct fx *f) { D(0, BUF_GPA, 8, NX, QSIZE); PUB(0); }
static void h_loop(struct fx *f) { D(0, BUF_GPA, 8, NX, 1); D(1, BUF_GPA, 8, NX, 0); PUB(0); }
static void h_self_loop(struct fx *f) { D(5, BUF_GPA, 8, NX, 5); PUB(5); }
static void h_long_loop(struct fx *f)
{
	for (int i = 0; i < QSIZE; i++)
		D(i, BUF_GPA, 8, NX, (i + 1) % QSIZE);
	PUB(3);
}
static void h_addr_gap(struct fx *f) { D(0, GAP_GPA + 0x1000, 8, 0, 0); PUB(0); }
static void h_addr_far(struct fx *f) { D(0, 1ull << 40, 8, 0, 0); PUB(0); }
static void h_addr_overflow(struct fx *f) { D(0, UINT64_MAX - 10, 100, 0, 0); PUB(0); }
static void h_addr_max_len(struct fx *f) { D(0, 0, UINT32_MAX, WR, 0); PUB(0); }
static void h_cross_gap(struct fx *f) { D(0, GAP_GPA - 16, 64, WR, 0); PUB(0); }
static void h_write_rom(struct fx *f) { D(0, BUF_GPA, 8, NX, 1); D(1, RO_GPA, 8, WR, 0); PUB(0); }
static void h_ind_len0(struct fx *f) { D(0, TABLE_GPA, 0, IND, 0); PUB(0); }
static void h_ind_len15(struct fx *f) { D(0, TABLE_GPA, 15, IND, 0); PUB(0); }
static void h_ind_len_odd(struct fx *f) { D(0, TABLE_GPA, 40, IND, 0); PUB(0); }
static void h_ind_too_big(struct fx *f) { D(0, 0, 16 * 65537, IND, 0); PUB(0); }
static void h_ind_gap(struct fx *f) { D(0, GAP_GPA, 32, IND, 0); PUB(0); }
static void h_ind_cross(struct fx *f)
{ /* a table crossing R0/R1 is refused as a whole (mapped as one range) */
	vqd_write_desc_at(&f->d, MIB - 16, BUF_GPA, 8, NX, 1);
	vqd_write_desc_at(&f->d, MIB, BUF_GPA, 8, 0, 0);
	D(0, MIB - 16, 32, IND, 0);
	PUB(0);
}
static void h_ind_overflow(struct fx *f) { D(0, UINT64_MAX - 15, 32, IND, 0); PUB(0); }
static void h_nested(struct fx *f)
{
	T(0, BUF_GPA, 8, NX, 1);
	T(1, TABLE_GPA, 32, IND, 0);
	D(0, TABLE_GPA, 32, IND, 0);
	PUB(0);
}
static void h_ind_next(struct fx *f)
{
	T(0, BUF_GPA, 8, 0, 0);
	D(0, TABLE_GPA, 16, IND | NX, 1);
	D(1, BUF_GPA, 8, 0, 0);
	PUB(0);
}
static void h_ind_next_range(struct fx *f)
{
	T(0, BUF_GPA, 8, NX, 1);
	T(1, BUF_GPA, 8, NX, 2); /* table has 2 entries */
	D(0, TABLE_GPA, 32, IND, 0);
	PUB(0);
}
static void h_ind_loop(struct fx *f)
{
	T(0, BUF_GPA, 8, NX, 1);
	T(1, BUF_GPA, 8, NX, 0);
	D(0, TABLE_GPA, 32, IND, 0);
	PUB(0);
}
static void h_ind_bad_addr(struct fx *f)
{
	T(0, BUF_GPA, 8, NX, 1);
	T(1, GAP_GPA, 8, WR, 0);
	D(0, TABLE_GPA, 32, IND, 0);
	PUB(0);
}
static void h_read_after_write(struct fx *f)
{
	D(0, BUF_GPA, 8, WR | NX, 1);
	D(1, BUF_GPA, 8, 0, 0);
	PUB(0);
}
static void h_read_after_empty_write(struct fx *f)
{ /* a zero-length writable descriptor still fixes the order */
	D(0, BUF_GPA, 0, WR | NX, 1);
	D(1, BUF_GPA, 8, 0, 0);
	PUB(0);
}
static void h_ind_read_after_write(struct fx *f)
{
	T(0, BUF_GPA, 8, WR | NX, 1);
	T(1, BUF_GPA, 8, 0, 0);
	D(0, TABLE_GPA, 32, IND, 0);
	PUB(0);
}
static void h_too_many_iov(struct fx *f)
{
	for (int k = 0; k <= VQ_MAX_IOV; k++)
		T(k, BUF_GPA + k, 1, NX, k + 1);
	T(VQ_MAX_IOV + 1, BUF_GPA, 1, 0, 0);
	D(0, TABLE_GPA, 16 * (VQ_MAX_IOV + 2), IND, 0);
	PUB(0);
}
static void h_too_many_iov_split(struct fx *f)
{ /* region crossings multiply iovecs: 513 descriptors crossing R0/R1 make 1026 */
	for (int k = 0; k <= 512; k++)
		T(k, MIB - 1, 2, NX, k + 1);
	T(513, BUF_GPA, 1, 0, 0);
	D(0, TABLE_GPA, 16 * 514, IND, 0);
	PUB(0);
}
static void h_avail_jump(struct fx *f)
{
	D(0, BUF_GPA, 8, 0, 0);
	vqd_w16(&f->d, f->d.avail + 2, QSIZE + 1);
}
static void h_avail_back(struct fx *f) { vqd_w16(&f->d, f->d.avail + 2, 0xffff); }
static void h_head_busy(struct fx *f)
{
	D(0, BUF_GPA, 8, 0, 0);
	PUB(0);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	PUB(0); /* the same head again while in flight */
}

static const struct hostile hostile_split[] = {
	{ "head index == size", VQ_ERR_HEAD_RANGE, h_head_range },
	{ "head index 0xffff", VQ_ERR_HEAD_RANGE, h_head_ffff },
	{ "next index == size", VQ_ERR_NEXT_RANGE, h_next_range },
	{ "two-descriptor loop", VQ_ERR_CHAIN_LOOP, h_loop },
	{ "self loop", VQ_ERR_CHAIN_LOOP, h_self_loop },
	{ "loop through the whole table", VQ_ERR_CHAIN_LOOP, h_long_loop },
	{ "buffer in the gap", VQ_ERR_DESC_ADDR, h_addr_gap },
	{ "buffer beyond memory", VQ_ERR_DESC_ADDR, h_addr_far },
	{ "address + length overflows", VQ_ERR_DESC_ADDR, h_addr_overflow },
	{ "length 4 GiB - 1 from 0", VQ_ERR_DESC_ADDR, h_addr_max_len },
	{ "buffer crossing into the gap", VQ_ERR_DESC_ADDR, h_cross_gap },
	{ "writable buffer in ROM", VQ_ERR_DESC_ADDR, h_write_rom },
	{ "indirect length 0", VQ_ERR_INDIRECT_LEN, h_ind_len0 },
	{ "indirect length 15", VQ_ERR_INDIRECT_LEN, h_ind_len15 },
	{ "indirect length 40", VQ_ERR_INDIRECT_LEN, h_ind_len_odd },
	{ "indirect 65537 entries", VQ_ERR_INDIRECT_LEN, h_ind_too_big },
	{ "indirect table in the gap", VQ_ERR_INDIRECT_ADDR, h_ind_gap },
	{ "indirect table across regions", VQ_ERR_INDIRECT_ADDR, h_ind_cross },
	{ "indirect table address overflows", VQ_ERR_INDIRECT_ADDR, h_ind_overflow },
	{ "nested indirect", VQ_ERR_NESTED_INDIRECT, h_nested },
	{ "indirect with NEXT", VQ_ERR_INDIRECT_NEXT, h_ind_next },
	{ "next out of the indirect table", VQ_ERR_NEXT_RANGE, h_ind_next_range },
	{ "loop inside an indirect table", VQ_ERR_CHAIN_LOOP, h_ind_loop },
	{ "bad buffer in an indirect table", VQ_ERR_DESC_ADDR, h_ind_bad_addr },
	{ "readable after writable", VQ_ERR_READ_AFTER_WRITE, h_read_after_write },
	{ "readable after empty writable", VQ_ERR_READ_AFTER_WRITE, h_read_after_empty_write },
	{ "readable after writable (indirect)", VQ_ERR_READ_AFTER_WRITE, h_ind_read_after_write },
	{ "1026 buffers", VQ_ERR_TOO_MANY_IOV, h_too_many_iov },
	{ "1026 iovecs from region crossings", VQ_ERR_TOO_MANY_IOV, h_too_many_iov_split },
	{ "avail idx jumps size+1", VQ_ERR_AVAIL_IDX, h_avail_jump },
	{ "avail idx goes backwards", VQ_ERR_AVAIL_IDX, h_avail_back },
	{ "head popped twice", VQ_ERR_HEAD_BUSY, h_head_busy },
};

static void hostile_table(void **state)
{
	struct fx *f = *state;
	static uint8_t before[64 * 1024];

	for (size_t i = 0; i < sizeof(hostile_split) / sizeof(hostile_split[0]); i++) {
		const struct hostile *h = &hostile_split[i];
		struct vqd_buf ok[] = { { BUF_GPA, 8, false }, { BUF_GPA + 0x100, 8, true } };
		uint32_t len;
		int ret, id;

		fx_reinit(f, QSIZE, f->features);
		h->make(f);
		memcpy(before, fx_host(f, 0), sizeof(before));
		fx_clear_dirty(f);
		uint16_t used_before = vqd_r16(&f->d, f->d.used + 2);
		ret = vq_pop(&f->vq, &f->e);
		if (ret != -EIO || f->vq.last_error != h->want)
			fail_msg("%s: pop %d, error %s, want %s", h->name, ret,
				 vq_error_name(f->vq.last_error), vq_error_name(h->want));
		assert_true(f->vq.broken);
		assert_int_equal(f->vq.errors, 1);
		/* nothing written: no dirty page, the first 64 KiB (rings, tables) unchanged */
		assert_int_equal(fx_count_dirty(f), 0);
		assert_memory_equal(before, fx_host(f, 0), sizeof(before));
		assert_int_equal(vqd_r16(&f->d, f->d.used + 2), used_before);
		/* stays broken */
		assert_int_equal(vq_pop(&f->vq, &f->e), -EIO);
		assert_int_equal(vq_push(&f->vq, &f->e, 0), -EIO);
		assert_true(vq_empty(&f->vq));
		assert_false(vq_should_notify(&f->vq));
		/* reset and set up again: usable */
		vq_reset(&f->vq);
		assert_false(f->vq.ready);
		assert_false(f->vq.broken);
		assert_int_equal(vq_pop(&f->vq, &f->e), 0);
		fx_reinit(f, QSIZE, f->features);
		id = vqd_add(&f->d, ok, 2);
		assert_int_equal(vq_pop(&f->vq, &f->e), 1);
		assert_int_equal(vq_push(&f->vq, &f->e, 8), 0);
		assert_int_equal(vqd_get_used(&f->d, &len), id);
		assert_int_equal(f->vq.last_error, VQ_OK);
	}
}

static void test_hostile_table(void **state) { hostile_table(state); }
static void test_hostile_table_event_idx(void **state) { hostile_table(state); }

/* Over 4 GiB in one chain needs that much guest address space: a sparse 2 GiB region. */
static void test_total_len(void **state)
{
	struct fx *f = *state;
	uint64_t big = 1ull << 32;

	/* (fx_count_dirty is sized for the 1 MiB regions: not used here) */
	if (gm_add_ram(&f->gm, big, 2ull << 30, 0) < 0) {
		skip();
		return;
	}
	fx_reinit(f, QSIZE, 0);
	D(0, big, 0x60000000, NX, 1);
	D(1, big, 0x60000000, NX, 2);
	D(2, big, 0x60000000, WR, 0); /* 4.5 GiB */
	PUB(0);
	assert_int_equal(vq_pop(&f->vq, &f->e), -EIO);
	assert_int_equal(f->vq.last_error, VQ_ERR_TOTAL_LEN);
	fx_reinit(f, QSIZE, 0);
	D(0, big, 0x7fffffff, NX, 1);
	D(1, big, 0x7fffffff, NX, 2);
	D(2, big, 1, WR, 0); /* exactly 4 GiB - 1: fine */
	PUB(0);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.out_len + f->e.in_len, UINT32_MAX);
}

static void test_error_names(void **state)
{
	(void)state;
	for (int e = 0; e < VQ_ERR_COUNT; e++) {
		assert_non_null(vq_error_name(e));
		assert_string_not_equal(vq_error_name(e), "unknown virtqueue error");
	}
	assert_string_equal(vq_error_name(VQ_ERR_COUNT), "unknown virtqueue error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_setup_checks, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_single, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_chained, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cross_region, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup_event, fx_teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_index_wrap, setup_event, fx_teardown),
		cmocka_unit_test_setup_teardown(test_event_idx_interrupts, setup_event, fx_teardown),
		cmocka_unit_test_setup_teardown(test_event_idx_kicks, setup_event, fx_teardown),
		cmocka_unit_test_setup_teardown(test_flags_notify, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unpop, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_state_restart, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_push_not_in_flight, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_dirty, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_iotlb, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_table, setup_plain, fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_table_event_idx, setup_event, fx_teardown),
		cmocka_unit_test_setup_teardown(test_total_len, setup_plain, fx_teardown),
		cmocka_unit_test(test_error_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
