/* Packed virtqueues: set-up checks, normal flows (single, chains, indirect, many in flight with
 * out-of-order completion across several ring wraps, event suppression both ways, unpop, state
 * restart, dirty marking) and a table of hostile chains with the error each must report. */
#include "vq_fixture.h"

#define PF VQD_F_PACKED
static int setup_packed(void **state) { return fx_setup(state, PF | VQD_F_INDIRECT); }
static int setup_packed_event(void **state)
{
	return fx_setup(state, PF | VQD_F_INDIRECT | VQD_F_EVENT_IDX);
}

enum { NX = VRING_DESC_F_NEXT, WR = VRING_DESC_F_WRITE, IND = VRING_DESC_F_INDIRECT };

static void expect_setup(struct fx *f, uint16_t size, uint64_t desc, uint64_t drv, uint64_t dev,
			 enum vq_error want)
{
	struct virtqueue vq = { 0 };
	int ret = vq_setup(&vq, &f->gm, NULL, size, desc, drv, dev, PF);

	assert_int_equal(ret, want == VQ_OK ? 0 : -EINVAL);
	assert_int_equal(vq.last_error, want);
	assert_int_equal(vq.ready, want == VQ_OK);
}

static void test_setup_checks(void **state)
{
	struct fx *f = *state;

	expect_setup(f, 16, 0x1000, 0x2000, 0x2004, VQ_OK);
	expect_setup(f, 1, 0x1000, 0x2000, 0x2004, VQ_OK);
	expect_setup(f, 12, 0x1000, 0x2000, 0x2004, VQ_OK); /* not a power of two: fine */
	expect_setup(f, 32768, 0x0, 0x80000, 0x80004, VQ_OK);
	expect_setup(f, 0, 0x1000, 0x2000, 0x2004, VQ_ERR_RING_SIZE);
	expect_setup(f, 32769, 0x1000, 0x2000, 0x2004, VQ_ERR_RING_SIZE);
	expect_setup(f, 16, 0x1008, 0x2000, 0x2004, VQ_ERR_RING_ADDR);
	expect_setup(f, 16, 0x1000, 0x2002, 0x2004, VQ_ERR_RING_ADDR);
	expect_setup(f, 16, 0x1000, 0x2000, 0x2006, VQ_ERR_RING_ADDR);
	expect_setup(f, 16, MIB - 128, 0x2000, 0x2004, VQ_ERR_RING_ADDR); /* across regions */
	expect_setup(f, 16, GAP_GPA - 64, 0x2000, 0x2004, VQ_ERR_RING_ADDR);
	expect_setup(f, 16, 0x1000, GAP_GPA, 0x2004, VQ_ERR_RING_ADDR);
	expect_setup(f, 16, RO_GPA, 0x2000, 0x2004, VQ_ERR_RING_ADDR); /* device writes desc */
	expect_setup(f, 16, 0x1000, RO_GPA, 0x2004, VQ_OK);            /* driver event: read */
	expect_setup(f, 16, 0x1000, 0x2000, RO_GPA, VQ_ERR_RING_ADDR);
}

static void test_single_and_chain(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b[] = {
		{ BUF_GPA, 100, false }, { BUF_GPA + 0x1000, 0, false }, { BUF_GPA + 0x2000, 50, true },
	};
	uint32_t len;
	int id;

	assert_true(vq_empty(&f->vq));
	assert_int_equal(vq_pop(&f->vq, &f->e), 0);
	id = vqd_add(&f->d, b, 1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id);
	assert_int_equal(f->e.ndescs, 1);
	assert_int_equal(f->e.out_num, 1);
	fx_check_iov(f, 0, BUF_GPA, 100);
	assert_int_equal(vq_push(&f->vq, &f->e, 0), 0);
	assert_int_equal(vqd_get_used(&f->d, &len), id);
	assert_int_equal(len, 0);

	id = vqd_add(&f->d, b, 3);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id);
	assert_int_equal(f->e.ndescs, 3);
	assert_int_equal(f->e.out_num, 1);
	assert_int_equal(f->e.in_num, 1);
	fx_check_iov(f, 1, BUF_GPA + 0x2000, 50);
	assert_int_equal(f->e.in_gpa[0], BUF_GPA + 0x2000);
	memcpy(f->e.iov[1].iov_base, "hello", 5);
	assert_int_equal(vq_push(&f->vq, &f->e, 5), 0);
	assert_int_equal(vqd_get_used(&f->d, &len), id);
	assert_int_equal(len, 5);
	assert_memory_equal(fx_host(f, BUF_GPA + 0x2000), "hello", 5);
	/* the used descriptor says WRITE when the device wrote something */
	assert_true(vqd_r16(&f->d, f->d.desc + 16 + 14) & VRING_DESC_F_WRITE);
}

static void test_indirect(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b[] = {
		{ BUF_GPA, 10, false }, { MIB - 5, 10, false }, { BUF_GPA + 0x100, 30, true },
	};
	uint32_t len;
	int id = vqd_add_indirect(&f->d, b, 3, TABLE_GPA);

	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id);
	assert_int_equal(f->e.ndescs, 1);
	assert_int_equal(f->e.out_num, 3); /* the second buffer crosses R0/R1 */
	assert_int_equal(f->e.in_num, 1);
	fx_check_iov(f, 1, MIB - 5, 5);
	fx_check_iov(f, 2, MIB, 5);
	fx_check_iov(f, 3, BUF_GPA + 0x100, 30);
	assert_int_equal(vq_push(&f->vq, &f->e, 30), 0);
	assert_int_equal(vqd_get_used(&f->d, &len), id);
	assert_int_equal(len, 30);
}

/* Chains of 1-3 descriptors, several in flight, completed out of order, over many wraps. */
static void test_many_wraps(void **state)
{
	struct fx *f = *state;
	static struct vq_elem elems[4];
	struct vq_state st;
	uint32_t len;
	unsigned total_descs = 0;

	for (unsigned round = 0; round < 50; round++) {
		int ids[4];
		for (unsigned k = 0; k < 4; k++) {
			struct vqd_buf b[] = { { BUF_GPA, 8, false }, { BUF_GPA + 0x100, 8, true },
					       { BUF_GPA + 0x200, 8, true } };
			unsigned n = 1 + (round + k) % 3;
			ids[k] = vqd_add(&f->d, b, n);
			assert_true(ids[k] >= 0);
			total_descs += n;
		}
		for (unsigned k = 0; k < 4; k++) {
			assert_int_equal(vq_pop(&f->vq, &elems[k]), 1);
			assert_int_equal(elems[k].id, ids[k]);
		}
		assert_int_equal(vq_pop(&f->vq, &f->e), 0);
		static const unsigned order[4] = { 2, 0, 3, 1 };
		for (unsigned k = 0; k < 4; k++)
			assert_int_equal(vq_push(&f->vq, &elems[order[k]], k), 0);
		for (unsigned k = 0; k < 4; k++) {
			assert_int_equal(vqd_get_used(&f->d, &len), ids[order[k]]);
			assert_int_equal(len, elems[order[k]].in_len ? k : 0);
		}
		assert_int_equal(vqd_get_used(&f->d, &len), -EAGAIN);
	}
	vq_get_state(&f->vq, &st);
	assert_int_equal(st.last_avail_idx & 0x7fff, total_descs % QSIZE);
	assert_int_equal(st.last_avail_idx >> 15, (total_descs / QSIZE + 1) % 2);
	assert_int_equal(st.used_idx, st.last_avail_idx);
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

/* Driver event suppression: ENABLE / DISABLE / DESC (EVENT_IDX) with wrap. */
static void test_interrupt_suppression(void **state)
{
	struct fx *f = *state;

	pop_push_one(f);
	assert_true(vq_should_notify(&f->vq));
	vqd_enable_interrupts(&f->d, false, 0);
	pop_push_one(f);
	assert_false(vq_should_notify(&f->vq));
	vqd_enable_interrupts(&f->d, true, f->d.next_used); /* ENABLE, or DESC: the next one */
	pop_push_one(f);
	assert_true(vq_should_notify(&f->vq));
	if (!(f->features & VQD_F_EVENT_IDX))
		return;
	/* used position now 3: ask for an interrupt at position 5 */
	vqd_enable_interrupts(&f->d, true, 5);
	pop_push_one(f); /* position 3 */
	assert_false(vq_should_notify(&f->vq));
	pop_push_one(f); /* 4 */
	assert_false(vq_should_notify(&f->vq));
	pop_push_one(f); /* 5 */
	assert_true(vq_should_notify(&f->vq));
	/* an event in the next round: position 2 after the wrap */
	vqd_enable_interrupts(&f->d, true, 2);
	for (int i = 6; i < QSIZE; i++) {
		pop_push_one(f);
		assert_false(vq_should_notify(&f->vq));
	}
	pop_push_one(f); /* 0 of the next round */
	pop_push_one(f); /* 1 */
	assert_false(vq_should_notify(&f->vq));
	pop_push_one(f); /* 2 */
	assert_true(vq_should_notify(&f->vq));
}

/* Device event suppression: enable_notify writes ENABLE / DISABLE / DESC. */
static void test_kick_suppression(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b = { BUF_GPA, 8, true };
	bool event_idx = f->features & VQD_F_EVENT_IDX;

	assert_false(vq_enable_notify(&f->vq, true));
	vqd_add(&f->d, &b, 1);
	assert_true(vqd_kick_needed(&f->d));
	vqd_add(&f->d, &b, 1);
	assert_int_equal(vqd_kick_needed(&f->d), !event_idx); /* DESC at 0 already passed */
	assert_false(vq_enable_notify(&f->vq, false));
	assert_int_equal(vqd_r16(&f->d, f->d.used + 2), VRING_PACKED_EVENT_FLAG_DISABLE);
	vqd_add(&f->d, &b, 1);
	assert_false(vqd_kick_needed(&f->d));
	assert_true(vq_enable_notify(&f->vq, true)); /* 3 waiting */
	for (int i = 0; i < 3; i++)
		assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 0); /* republishes the event at position 3 */
	if (event_idx)
		assert_int_equal(vqd_r16(&f->d, f->d.used), 3 | 1 << 15);
	vqd_add(&f->d, &b, 1);
	assert_true(vqd_kick_needed(&f->d));
}

static void test_unpop(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b[] = { { BUF_GPA, 8, false }, { BUF_GPA + 0x100, 16, true } };
	static struct vq_elem first;
	struct vq_state st;
	uint32_t len;

	/* Move to position 14 so that the second chain wraps. */
	for (int i = 0; i < 14; i++)
		pop_push_one(f);
	int id1 = vqd_add(&f->d, b, 1), id2 = vqd_add(&f->d, b, 2); /* positions 14, 15+0 */
	assert_int_equal(vq_pop(&f->vq, &first), 1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id2);
	vq_get_state(&f->vq, &st);
	assert_int_equal(st.last_avail_idx, 1); /* wrapped: counter 0 */
	vq_unpop(&f->vq, &f->e);
	vq_get_state(&f->vq, &st);
	assert_int_equal(st.last_avail_idx, 15 | 1 << 15);
	vq_unpop(&f->vq, &first);
	assert_int_equal(f->vq.inflight, 0);
	assert_int_equal(vq_pop(&f->vq, &first), 1);
	assert_int_equal(first.id, id1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.id, id2);
	fx_check_iov(f, 1, BUF_GPA + 0x100, 16);
	assert_int_equal(vq_push(&f->vq, &f->e, 1), 0);
	assert_int_equal(vq_push(&f->vq, &first, 0), 0);
	assert_int_equal(vqd_get_used(&f->d, &len), id2);
	assert_int_equal(vqd_get_used(&f->d, &len), id1);
}

static void test_state_restart(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b = { BUF_GPA, 8, true };
	static struct virtqueue vq2;
	struct vq_state st;
	int ids[20];
	uint32_t len;

	for (int i = 0; i < 12; i++)
		pop_push_one(f);
	for (int i = 0; i < 3; i++)
		ids[i] = vqd_add(&f->d, &b, 1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(vq_push(&f->vq, &f->e, 2), 0);
	vq_get_state(&f->vq, &st);
	assert_int_equal(st.last_avail_idx, 13 | 1 << 15);
	assert_int_equal(vqd_setup(&f->d, &vq2, NULL), 0);
	vq_set_state(&vq2, &st);
	assert_false(vq2.broken);
	assert_int_equal(vq_pop(&vq2, &f->e), 1);
	assert_int_equal(f->e.id, ids[1]);
	assert_int_equal(vq_push(&vq2, &f->e, 3), 0);
	assert_int_equal(vqd_get_used(&f->d, &len), ids[0]);
	assert_int_equal(vqd_get_used(&f->d, &len), ids[1]);
	assert_int_equal(len, 3);
	/* a vring base beyond the ring breaks the queue */
	st.last_avail_idx = QSIZE;
	vq_set_state(&vq2, &st);
	assert_true(vq2.broken);
	assert_int_equal(vq2.last_error, VQ_ERR_RING_SIZE);
	assert_int_equal(vq_pop(&vq2, &f->e), -EIO);
}

static void test_dirty(void **state)
{
	struct fx *f = *state;
	struct vqd_buf b[] = { { BUF_GPA, 8, false }, { BUF_GPA + 0x10000, 0x3000, true } };

	vqd_add(&f->d, b, 2);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	fx_clear_dirty(f);
	assert_int_equal(vq_push(&f->vq, &f->e, 0x1800), 0);
	assert_true(gm_is_dirty(&f->gm, BUF_GPA + 0x10000));
	assert_true(gm_is_dirty(&f->gm, BUF_GPA + 0x11000));
	assert_false(gm_is_dirty(&f->gm, BUF_GPA + 0x12000));
	assert_true(gm_is_dirty(&f->gm, f->d.desc)); /* the used descriptor */
	assert_int_equal(fx_count_dirty(f), 3);
}

/* ---- hostile chains ---- */

struct hostile {
	const char *name;
	enum vq_error want;
	void (*make)(struct fx *f);
};

/* P(k, addr, len, id, flags): descriptor k after the driver's position, made available. */
#define P(k, a, l, id, fl) vqd_write_pdesc(&f->d, k, a, l, id, fl)
#define T(k, a, l, fl) vqd_write_desc_at(&f->d, TABLE_GPA + 16 * (k), a, l, fl, 0)

static void h_id_range(struct fx *f) { P(0, BUF_GPA, 8, QSIZE, 0); }
static void h_id_ffff(struct fx *f) { P(0, BUF_GPA, 8, 0xffff, 0); }
static void h_id_in_last(struct fx *f)
{ /* the id counts from the last descriptor: a good head id does not help */
	P(1, BUF_GPA, 8, QSIZE + 1, 0);
	P(0, BUF_GPA, 8, 0, NX);
}
static void h_chain_too_long(struct fx *f)
{
	for (int k = QSIZE - 1; k >= 0; k--)
		P(k, BUF_GPA, 8, 0, NX);
}
static void h_addr_gap(struct fx *f) { P(0, GAP_GPA, 8, 0, 0); }
static void h_addr_overflow(struct fx *f) { P(0, UINT64_MAX - 3, 8, 0, WR); }
static void h_cross_gap(struct fx *f) { P(0, GAP_GPA - 8, 16, 0, 0); }
static void h_write_rom(struct fx *f) { P(0, RO_GPA, 16, 0, WR); }
static void h_bad_second(struct fx *f) { P(1, 1ull << 50, 8, 0, WR); P(0, BUF_GPA, 8, 0, NX); }
static void h_ind_len0(struct fx *f) { P(0, TABLE_GPA, 0, 0, IND); }
static void h_ind_len15(struct fx *f) { P(0, TABLE_GPA, 15, 0, IND); }
static void h_ind_too_big(struct fx *f) { P(0, 0, 16 * 65537, 0, IND); }
static void h_ind_gap(struct fx *f) { P(0, GAP_GPA - 16, 32, 0, IND); }
static void h_ind_cross(struct fx *f) { P(0, MIB - 16, 32, 0, IND); }
static void h_nested(struct fx *f)
{
	T(0, BUF_GPA, 8, 0);
	T(1, TABLE_GPA, 32, IND);
	P(0, TABLE_GPA, 32, 0, IND);
}
static void h_ind_next(struct fx *f)
{
	T(0, BUF_GPA, 8, 0);
	P(1, BUF_GPA, 8, 0, 0);
	P(0, TABLE_GPA, 16, 0, IND | NX);
}
static void h_ind_in_chain(struct fx *f)
{
	T(0, BUF_GPA, 8, 0);
	P(1, TABLE_GPA, 16, 0, IND);
	P(0, BUF_GPA, 8, 0, NX);
}
static void h_read_after_write(struct fx *f)
{
	P(1, BUF_GPA, 8, 0, 0);
	P(0, BUF_GPA, 8, 0, WR | NX);
}
static void h_ind_read_after_write(struct fx *f)
{
	T(0, BUF_GPA, 8, WR);
	T(1, BUF_GPA, 8, 0);
	P(0, TABLE_GPA, 32, 0, IND);
}
static void h_ind_bad_buf(struct fx *f)
{
	T(0, BUF_GPA, 8, 0);
	T(1, GAP_GPA, 8, WR);
	P(0, TABLE_GPA, 32, 0, IND);
}
static void h_too_many_iov(struct fx *f)
{
	for (int k = 0; k <= VQ_MAX_IOV; k++)
		T(k, BUF_GPA + k, 1, 0);
	P(0, TABLE_GPA, 16 * (VQ_MAX_IOV + 1), 0, IND);
}
static void h_id_busy(struct fx *f)
{
	P(0, BUF_GPA, 8, 3, 0);
	vqd_packed_advance(&f->d, 1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	P(0, BUF_GPA, 8, 3, 0); /* buffer id 3 again while in flight */
}

static const struct hostile hostile_packed[] = {
	{ "buffer id == size", VQ_ERR_HEAD_RANGE, h_id_range },
	{ "buffer id 0xffff", VQ_ERR_HEAD_RANGE, h_id_ffff },
	{ "bad id in the last descriptor", VQ_ERR_HEAD_RANGE, h_id_in_last },
	{ "chain longer than the ring", VQ_ERR_CHAIN_LOOP, h_chain_too_long },
	{ "buffer in the gap", VQ_ERR_DESC_ADDR, h_addr_gap },
	{ "address + length overflows", VQ_ERR_DESC_ADDR, h_addr_overflow },
	{ "buffer crossing into the gap", VQ_ERR_DESC_ADDR, h_cross_gap },
	{ "writable buffer in ROM", VQ_ERR_DESC_ADDR, h_write_rom },
	{ "bad second descriptor", VQ_ERR_DESC_ADDR, h_bad_second },
	{ "indirect length 0", VQ_ERR_INDIRECT_LEN, h_ind_len0 },
	{ "indirect length 15", VQ_ERR_INDIRECT_LEN, h_ind_len15 },
	{ "indirect 65537 entries", VQ_ERR_INDIRECT_LEN, h_ind_too_big },
	{ "indirect table into the gap", VQ_ERR_INDIRECT_ADDR, h_ind_gap },
	{ "indirect table across regions", VQ_ERR_INDIRECT_ADDR, h_ind_cross },
	{ "nested indirect", VQ_ERR_NESTED_INDIRECT, h_nested },
	{ "indirect with NEXT", VQ_ERR_INDIRECT_NEXT, h_ind_next },
	{ "indirect inside a chain", VQ_ERR_INDIRECT_NEXT, h_ind_in_chain },
	{ "readable after writable", VQ_ERR_READ_AFTER_WRITE, h_read_after_write },
	{ "readable after writable (indirect)", VQ_ERR_READ_AFTER_WRITE, h_ind_read_after_write },
	{ "bad buffer in an indirect table", VQ_ERR_DESC_ADDR, h_ind_bad_buf },
	{ "1025 buffers", VQ_ERR_TOO_MANY_IOV, h_too_many_iov },
	{ "buffer id popped twice", VQ_ERR_HEAD_BUSY, h_id_busy },
};

static void hostile_table(void **state)
{
	struct fx *f = *state;
	static uint8_t before[64 * 1024];

	for (size_t i = 0; i < sizeof(hostile_packed) / sizeof(hostile_packed[0]); i++) {
		const struct hostile *h = &hostile_packed[i];
		struct vqd_buf ok[] = { { BUF_GPA, 8, false }, { BUF_GPA + 0x100, 8, true } };
		uint32_t len;
		int ret, id;

		fx_reinit(f, QSIZE, f->features);
		h->make(f);
		memcpy(before, fx_host(f, 0), sizeof(before));
		fx_clear_dirty(f);
		ret = vq_pop(&f->vq, &f->e);
		if (ret != -EIO || f->vq.last_error != h->want)
			fail_msg("%s: pop %d, error %s, want %s", h->name, ret,
				 vq_error_name(f->vq.last_error), vq_error_name(h->want));
		assert_true(f->vq.broken);
		assert_int_equal(f->vq.errors, 1);
		assert_int_equal(fx_count_dirty(f), 0);
		assert_memory_equal(before, fx_host(f, 0), sizeof(before));
		assert_int_equal(vq_pop(&f->vq, &f->e), -EIO);
		assert_int_equal(vq_push(&f->vq, &f->e, 0), -EIO);
		assert_true(vq_empty(&f->vq));
		vq_reset(&f->vq);
		assert_int_equal(vq_pop(&f->vq, &f->e), 0);
		fx_reinit(f, QSIZE, f->features);
		id = vqd_add(&f->d, ok, 2);
		assert_int_equal(vq_pop(&f->vq, &f->e), 1);
		assert_int_equal(vq_push(&f->vq, &f->e, 8), 0);
		assert_int_equal(vqd_get_used(&f->d, &len), id);
	}
}
static void test_hostile_table(void **state) { hostile_table(state); }
static void test_interrupt_suppression_event_idx(void **state) { test_interrupt_suppression(state); }
static void test_kick_suppression_event_idx(void **state) { test_kick_suppression(state); }
static void test_hostile_table_event_idx(void **state) { hostile_table(state); }

static void test_push_not_in_flight(void **state)
{
	struct fx *f = *state;

	pop_push_one(f);
	assert_int_equal(vq_push(&f->vq, &f->e, 0), -EIO);
	assert_int_equal(f->vq.last_error, VQ_ERR_USED_ID);
	fx_reinit(f, QSIZE, f->features);
	pop_push_one(f);
	vqd_add(&f->d, (struct vqd_buf[]){ { BUF_GPA, 8, true } }, 1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	f->e.ndescs = QSIZE + 1; /* a corrupted element */
	assert_int_equal(vq_push(&f->vq, &f->e, 0), -EIO);
	assert_int_equal(f->vq.last_error, VQ_ERR_USED_ID);
}

#define T_(fn, s) cmocka_unit_test_setup_teardown(fn, s, fx_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T_(test_setup_checks, setup_packed),
		T_(test_single_and_chain, setup_packed),
		T_(test_indirect, setup_packed),
		T_(test_many_wraps, setup_packed),
		T_(test_interrupt_suppression, setup_packed),
		T_(test_interrupt_suppression_event_idx, setup_packed_event),
		T_(test_kick_suppression, setup_packed),
		T_(test_kick_suppression_event_idx, setup_packed_event),
		T_(test_unpop, setup_packed),
		T_(test_state_restart, setup_packed),
		T_(test_dirty, setup_packed),
		T_(test_hostile_table, setup_packed),
		T_(test_hostile_table_event_idx, setup_packed_event),
		T_(test_push_not_in_flight, setup_packed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
