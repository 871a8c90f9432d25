/* kut virtio: a tiny virtio-mmio driver (version 2, split rings of 8, one request at a time)
 * exercising vireo's in-process devices the way a guest does:
 *   - finds the devices by MagicValue in the 8 slots from 0xd0000000, takes each one's IRQ
 *     from the "virtio_mmio.device=4K@ADDR:IRQ" entries vireo put on the command line, and
 *     routes that IOAPIC pin to a vector;
 *   - negotiates VERSION_1 only, checks that a queue of size 3 and rings outside RAM are
 *     refused (QueueReady stays 0), sets up queue 0;
 *   - virtio-rng: two 64-byte requests come back full and different;
 *   - virtio-blk: capacity = blk_sectors=N, sectors 0-7 and the last two hold the host's
 *     pattern ((o * 7 + (o >> 9)) & 0xff at file offset o), a write of 2 sectors at
 *     blk_write=S with (i * 13 + 5) & 0xff (the host checks it; with blk_ro the write must
 *     fail), a read past the end fails, flush, GET_ID = blk_serial (kutdisk);
 *   - virtio-net (loopback): the MAC in config space = net_mac=0x..., a 60-byte frame sent on
 *     tx0 comes back on rx0 with a fresh header (num_buffers 1);
 *   - virtio-vsock: guest CID in config space = vsock_cid=N; a connection to host port
 *     vsock_port=P (the host test listens at UDS_P and answers in upper case): REQUEST ->
 *     RESPONSE, a message out, its answer back, SHUTDOWN -> RST;
 *   - smp (with --cpus 2): an AP drives rng with its IOAPIC pin aimed at the AP while the
 *     boot CPU drives blk, at the same time; both finish, each CPU sees its interrupts;
 *   - every request completes with its interrupt: InterruptStatus bit 0 and an IOAPIC
 *     interrupt, acknowledged through InterruptACK.
 * Prints "kut virtio: N failures" and exits with N (vireo status (N << 1) | 1).
 */
#include "kut.h"

#define MMIO_BASE   0xd0000000u
#define MMIO_SLOTS  8
#define QSZ         8
#define IOAPIC_BASE 0xfec00000u
#define VECTOR_BASE 0x50
#define TIMEOUT     20000000000ull /* TSC ticks: seconds, even on a slow nested host */

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEAT 0x010
#define R_DEV_FEAT_SEL 0x014
#define R_DRV_FEAT 0x020
#define R_DRV_FEAT_SEL 0x024
#define R_QSEL 0x030
#define R_QNUM_MAX 0x034
#define R_QNUM 0x038
#define R_QREADY 0x044
#define R_QNOTIFY 0x050
#define R_ISR 0x060
#define R_IACK 0x064
#define R_STATUS 0x070
#define R_DESC_LO 0x080
#define R_DESC_HI 0x084
#define R_DRIVER_LO 0x090
#define R_DRIVER_HI 0x094
#define R_DEVICE_LO 0x0a0
#define R_DEVICE_HI 0x0a4
#define R_CONFIG 0x100

#define S_ACK 1u
#define S_DRIVER 2u
#define S_DRIVER_OK 4u
#define S_FEATURES_OK 8u

#define D_NEXT 1u
#define D_WRITE 2u

/* report() that also returns the verdict. */
#define report_ok(ok, ...) ({ bool ok_ = (ok); report(ok_, __VA_ARGS__); ok_; })

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct vring {
	struct vdesc desc[QSZ];
	struct { uint16_t flags, idx, ring[QSZ], used_event; } avail;
	uint8_t pad[2];
	struct { uint16_t flags, idx; struct { uint32_t id, len; } ring[QSZ]; } used;
} __attribute__((aligned(4096)));

#define MAX_Q 2

struct vdev {
	uintptr_t base;
	unsigned irq, slot;
	uint32_t id;
	struct vring *vr[MAX_Q];
	uint16_t last_used[MAX_Q];
};

static struct vring rings[MMIO_SLOTS][MAX_Q];
static uint8_t buf[8192] __attribute__((aligned(4096)));
static uint8_t buf2[8192] __attribute__((aligned(4096)));

static uint32_t r32(struct vdev *d, unsigned off)
{
	return *(volatile uint32_t *)(d->base + off);
}

static void w32(struct vdev *d, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(d->base + off) = v;
}

static void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static void ioapic_write(unsigned reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)IOAPIC_BASE = reg;
	*(volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + 0x10) = v;
}

/* The IRQ vireo announced for base ("virtio_mmio.device=4K@0xADDR:IRQ"), or -1. */
static long cmdline_irq(uintptr_t base)
{
	const char *key = "virtio_mmio.device=4K@0x";
	size_t n = strlen(key);

	for (const char *p = cmdline(); *p; p++) {
		uintptr_t a = 0;
		long irq = 0;

		if (strncmp(p, key, n))
			continue;
		for (p += n; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
			a = a * 16 + (uintptr_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
		if (*p++ != ':')
			continue;
		for (; *p >= '0' && *p <= '9'; p++)
			irq = irq * 10 + (*p - '0');
		if (a == base)
			return irq;
		p--;
	}
	return -1;
}

/* Edge, active high, fixed delivery to this CPU, vector VECTOR_BASE + slot. */
static void route_irq(struct vdev *d)
{
	unsigned vec = VECTOR_BASE + d->slot;

	set_irq_vector(vec);
	ioapic_write(0x10 + 2 * d->irq + 1, apic_id() << 24);
	ioapic_write(0x10 + 2 * d->irq, vec);
}

static void set_queue_regs(struct vdev *d, uint32_t num, uint64_t desc, uint64_t avail,
			   uint64_t used)
{
	w32(d, R_QNUM, num);
	w32(d, R_DESC_LO, (uint32_t)desc);
	w32(d, R_DESC_HI, (uint32_t)(desc >> 32));
	w32(d, R_DRIVER_LO, (uint32_t)avail);
	w32(d, R_DRIVER_HI, (uint32_t)(avail >> 32));
	w32(d, R_DEVICE_LO, (uint32_t)used);
	w32(d, R_DEVICE_HI, (uint32_t)(used >> 32));
}

/* Queue q with its ring, checked ready. */
static bool queue_setup(struct vdev *d, unsigned q)
{
	struct vring *vr = d->vr[q];

	w32(d, R_QSEL, q);
	memset(vr, 0, sizeof(*vr));
	d->last_used[q] = 0;
	set_queue_regs(d, QSZ, (uintptr_t)vr->desc, (uintptr_t)&vr->avail, (uintptr_t)&vr->used);
	w32(d, R_QREADY, 1);
	return report_ok(r32(d, R_QREADY) == 1, "dev %u: queue %u ready", d->slot, q);
}

/* Reset, features (VERSION_1 plus want_lo of the low word), queues 0..nq-1, DRIVER_OK.
 * Queue 0 first meets a size of 3 and a descriptor table outside RAM, both refused. */
static bool dev_init(struct vdev *d, uint32_t want_lo, uint32_t *offered_lo, unsigned nq)
{
	uint64_t ram = fwcfg_read_le(FW_CFG_RAM_SIZE, 8);
	struct vring *vr = d->vr[0];
	uint32_t hi, st;

	w32(d, R_STATUS, 0);
	report(r32(d, R_STATUS) == 0, "dev %u: status 0 after reset", d->slot);
	w32(d, R_STATUS, S_ACK);
	w32(d, R_STATUS, S_ACK | S_DRIVER);
	w32(d, R_DEV_FEAT_SEL, 1);
	hi = r32(d, R_DEV_FEAT);
	w32(d, R_DEV_FEAT_SEL, 0);
	*offered_lo = r32(d, R_DEV_FEAT);
	report(hi & 1, "dev %u: VERSION_1 offered (features 0x%x%08x)", d->slot, hi, *offered_lo);
	w32(d, R_DRV_FEAT_SEL, 0);
	w32(d, R_DRV_FEAT, *offered_lo & want_lo);
	w32(d, R_DRV_FEAT_SEL, 1);
	/* VERSION_1, and ACCESS_PLATFORM (bit 33) when offered, as Linux's virtio core does for
	 * every transport feature it knows: a device offering it must still work here, with
	 * guest-physical addresses, since there is no IOMMU */
	w32(d, R_DRV_FEAT, 1 | (hi & 2));
	w32(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	st = r32(d, R_STATUS);
	if (!report_ok(st & S_FEATURES_OK, "dev %u: FEATURES_OK accepted", d->slot))
		return false;

	w32(d, R_QSEL, 0);
	report(r32(d, R_QREADY) == 0 && r32(d, R_QNUM_MAX) >= QSZ,
	       "dev %u: queue 0 not ready, QueueNumMax %u", d->slot, r32(d, R_QNUM_MAX));
	set_queue_regs(d, 3, (uintptr_t)vr->desc, (uintptr_t)&vr->avail, (uintptr_t)&vr->used);
	w32(d, R_QREADY, 1);
	report(r32(d, R_QREADY) == 0, "dev %u: queue size 3 refused", d->slot);
	set_queue_regs(d, QSZ, ram + 0x100000, (uintptr_t)&vr->avail, (uintptr_t)&vr->used);
	w32(d, R_QREADY, 1);
	report(r32(d, R_QREADY) == 0, "dev %u: descriptor table outside RAM refused", d->slot);
	for (unsigned q = 0; q < nq; q++)
		if (!queue_setup(d, q))
			return false;
	w32(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	st = r32(d, R_STATUS);
	return report_ok(st == (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK),
			 "dev %u: DRIVER_OK (status 0x%x)", d->slot, st);
}

struct seg {
	void *p;
	uint32_t len;
	bool write;
};

/* Offer one chain of n segments on queue q (one request in flight per queue) and kick. */
static void submit(struct vdev *d, unsigned q, const struct seg *s, unsigned n)
{
	struct vring *vr = d->vr[q];

	for (unsigned i = 0; i < n; i++)
		vr->desc[i] = (struct vdesc){ (uintptr_t)s[i].p, s[i].len,
					      (uint16_t)((s[i].write ? D_WRITE : 0) |
							 (i + 1 < n ? D_NEXT : 0)),
					      (uint16_t)(i + 1) };
	vr->avail.ring[vr->avail.idx % QSZ] = 0;
	barrier();
	vr->avail.idx++;
	barrier();
	w32(d, R_QNOTIFY, q);
}

/* Wait for queue q's next used entry; returns its length, or -1 on a timeout. Checks that
 * an interrupt arrived since irqs was read (ISR bit 0 and an IOAPIC interrupt) and
 * acknowledges it; with irqs == NO_IRQ_CHECK (an interrupt already acknowledged may have
 * covered this entry too) it only waits. */
#define NO_IRQ_CHECK (~0u)
static long wait_used(struct vdev *d, unsigned q, unsigned irqs)
{
	struct vring *vr = d->vr[q];
	volatile uint16_t *used_idx = &vr->used.idx;
	uint64_t t0 = rdtsc();
	uint32_t isr;

	while ((*used_idx == d->last_used[q] || kut_irq_count == irqs) && rdtsc() - t0 < TIMEOUT)
		cpu_relax();
	if (*used_idx == d->last_used[q]) {
		report(false, "dev %u: queue %u: request completed", d->slot, q);
		return -1;
	}
	if (irqs == NO_IRQ_CHECK)
		return vr->used.ring[d->last_used[q]++ % QSZ].len;
	isr = r32(d, R_ISR);
	report(kut_irq_count != irqs && (isr & 1),
	       "dev %u: completion interrupt (IRQ %u, InterruptStatus 0x%x)", d->slot, d->irq, isr);
	w32(d, R_IACK, isr);
	report((r32(d, R_ISR) & 1) == 0, "dev %u: InterruptACK clears the status", d->slot);
	return vr->used.ring[d->last_used[q]++ % QSZ].len;
}

static long request(struct vdev *d, const struct seg *s, unsigned n)
{
	unsigned irqs = kut_irq_count;

	submit(d, 0, s, n);
	return wait_used(d, 0, irqs);
}

static uint16_t pit0_count(void)
{
	uint8_t lo, hi;

	outb(0x43, 0x00); /* latch channel 0 */
	lo = inb(0x40);
	hi = inb(0x40);
	return (uint16_t)(lo | hi << 8);
}

/* TSC ticks per microsecond, against 24000 counts (~20 ms) of PIT channel 0 in mode 2 (the
 * 8259s are masked and the IOAPIC pin is not routed, so its interrupt goes nowhere). */
static uint64_t tsc_per_us(void)
{
	uint16_t c0, c;
	uint64_t t0;

	outb(0x43, 0x34); /* channel 0, lo/hi byte, mode 2, period 65536 counts */
	outb(0x40, 0xff);
	outb(0x40, 0xff);
	c0 = pit0_count();
	t0 = rdtsc();
	do
		c = pit0_count();
	while ((uint16_t)(c0 - c) < 24000 && rdtsc() - t0 < TIMEOUT);
	return (rdtsc() - t0) * 1193182 / ((uint64_t)(uint16_t)(c0 - c) * 1000000);
}

/* count requests of s on queue 0, one at a time (QD1: submit, kick, interrupt on this CPU,
 * used entry, InterruptACK), without output (any CPU may run it). Returns how many completed. */
static long quiet_requests(struct vdev *d, const struct seg *s, unsigned n, long count)
{
	volatile unsigned *mine = &kut_irq_count_cpu[apic_id() % KUT_IRQ_CPUS];
	long done = 0;

	for (; done < count; done++) {
		unsigned irqs = *mine;
		uint64_t w = rdtsc();

		submit(d, 0, s, n);
		while ((*(volatile uint16_t *)&d->vr[0]->used.idx == d->last_used[0] ||
			*mine == irqs) && rdtsc() - w < TIMEOUT)
			cpu_relax();
		if (*(volatile uint16_t *)&d->vr[0]->used.idx == d->last_used[0])
			break;
		d->last_used[0]++;
		w32(d, R_IACK, r32(d, R_ISR));
	}
	return done;
}

/* bench=N on the command line: N requests of s on queue 0, one at a time, timed; one
 * "kut virtio bench:" line. */
static void bench(struct vdev *d, const char *what, const struct seg *s, unsigned n)
{
	long count = cmdline_num("bench", 0);
	uint64_t per_us, t0, t;
	long done;

	if (count <= 0)
		return;
	per_us = tsc_per_us();
	t0 = rdtsc();
	done = quiet_requests(d, s, n, count);
	t = rdtsc() - t0;
	report(done == count, "bench: %s: %ld of %ld requests completed", what, done, count);
	printf("kut virtio bench: %s: %ld requests in %lu us, %lu ns each\n", what, done,
	       (unsigned long)(t / (per_us ? per_us : 1)),
	       (unsigned long)(done ? t * 1000 / (per_us ? per_us : 1) / (uint64_t)done : 0));
}

static bool all_zero(const uint8_t *p, unsigned n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static void test_rng(struct vdev *d)
{
	struct seg a = { buf, 64, true }, b = { buf2, 64, true };
	uint32_t feat;

	memset(buf, 0, 64);
	memset(buf2, 0, 64);
	if (!dev_init(d, 0, &feat, 1))
		return;
	report(request(d, &a, 1) == 64 && !all_zero(buf, 64), "rng: 64 random bytes");
	report(request(d, &b, 1) == 64 && memcmp(buf, buf2, 64), "rng: the next 64 differ");
	bench(d, "rng 64-byte requests", &a, 1);
}

struct blk_req {
	uint32_t type, reserved;
	uint64_t sector;
};

static uint8_t blk_status;
static struct blk_req blk_hdr;

static long blk_io(struct vdev *d, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	struct seg s[3] = { { &blk_hdr, sizeof(blk_hdr), false },
			    { data, len, type != 1 }, { &blk_status, 1, true } };

	blk_hdr = (struct blk_req){ type, 0, sector };
	blk_status = 0xee;
	if (!len) {
		s[1] = s[2];
		return request(d, s, 2) < 0 ? -1 : blk_status;
	}
	return request(d, s, 3) < 0 ? -1 : blk_status;
}

/* A 4 KiB read at the sector in blk_hdr. */
static const struct seg blk_read4k[3] = { { &blk_hdr, sizeof(blk_hdr), false },
					  { buf, 4096, true }, { &blk_status, 1, true } };

static bool pattern_ok(const uint8_t *p, uint64_t off, unsigned len);

/* Reset with a request in flight (the device thread may be mid-I/O), then start over. */
static void blk_reset_in_flight(struct vdev *d)
{
	uint32_t feat;
	long st;

	blk_hdr = (struct blk_req){ 0, 0, 8 };
	submit(d, 0, blk_read4k, 3);
	w32(d, R_STATUS, 0);
	report(r32(d, R_STATUS) == 0 && r32(d, R_ISR) == 0 && r32(d, R_QREADY) == 0,
	       "blk: reset with a request in flight");
	w32(d, R_IACK, 3);
	if (!dev_init(d, 0, &feat, 1))
		return;
	st = blk_io(d, 0, 8, buf, 4096);
	report(st == 0 && pattern_ok(buf, 8 * 512, 4096), "blk: read after the reset (status %ld)",
	       st);
}

static bool pattern_ok(const uint8_t *p, uint64_t off, unsigned len)
{
	for (unsigned i = 0; i < len; i++, off++)
		if (p[i] != (uint8_t)((off * 7 + (off >> 9)) & 0xff))
			return false;
	return true;
}

static void test_blk(struct vdev *d)
{
	uint64_t want = (uint64_t)cmdline_num("blk_sectors", 0), cap;
	uint64_t wsect = (uint64_t)cmdline_num("blk_write", 16);
	bool ro = cmdline_has("blk_ro");
	uint32_t feat;
	long st;

	if (!dev_init(d, 1u << 5 /* RO */ | 1u << 9 /* FLUSH */, &feat, 1))
		return;
	cap = r32(d, R_CONFIG) | (uint64_t)r32(d, R_CONFIG + 4) << 32;
	report(cap == want, "blk: capacity %lu sectors (want %lu)", (unsigned long)cap,
	       (unsigned long)want);
	report(!!(feat & (1u << 5)) == ro, "blk: VIRTIO_BLK_F_RO %s", ro ? "offered" : "absent");

	st = blk_io(d, 0, 0, buf, 4096);
	report(st == 0 && pattern_ok(buf, 0, 4096), "blk: read sectors 0-7 (status %ld)", st);
	st = blk_io(d, 0, cap - 2, buf, 1024);
	report(st == 0 && pattern_ok(buf, (cap - 2) * 512, 1024),
	       "blk: read the last two sectors (status %ld)", st);
	st = blk_io(d, 0, cap, buf, 512);
	report(st == 1, "blk: read past the end fails with IOERR (status %ld)", st);

	for (unsigned i = 0; i < 1024; i++)
		buf2[i] = (uint8_t)((i * 13 + 5) & 0xff);
	st = blk_io(d, 1, wsect, buf2, 1024);
	if (ro) {
		report(st == 1, "blk: write to a read-only disk fails (status %ld)", st);
	} else {
		report(st == 0, "blk: write 2 sectors at %lu (status %ld)", (unsigned long)wsect, st);
		memset(buf, 0, 1024);
		st = blk_io(d, 0, wsect, buf, 1024);
		report(st == 0 && !memcmp(buf, buf2, 1024), "blk: read back what was written");
		st = blk_io(d, 4, 0, buf, 0);
		report(st == 0 || !(feat & (1u << 9)), "blk: flush (status %ld)", st);
	}
	memset(buf, 0, 64);
	st = blk_io(d, 8, 0, buf, 20);
	report(st == 0 && !memcmp(buf, "kutdisk", 8), "blk: GET_ID '%s' (status %ld)",
	       (const char *)buf, st);

	blk_hdr = (struct blk_req){ 0, 0, 0 };
	bench(d, "blk 4 KiB reads", blk_read4k, 3);
	blk_reset_in_flight(d);
}

/* virtio-net in loopback: a frame sent on tx0 comes back on rx0 behind a fresh header; the
 * MAC in the config space is the one given on vireo's command line (net_mac=0x...). */
static void test_net(struct vdev *d)
{
	uint64_t want_mac = (uint64_t)cmdline_num("net_mac", 0), mac = 0;
	struct seg rx = { buf, 2048, true }, tx = { buf2, 12 + 60, false };
	uint32_t feat;
	unsigned irqs;
	long rlen, tlen;

	if (!dev_init(d, 1u << 5 /* MAC */, &feat, 2))
		return;
	/* A Linux driver accepts CTRL_VQ whenever it is offered and then needs queue 2 (the
	 * control queue of one pair): offered without it, virtio-net's probe fails. */
	if (feat & (1u << 17)) {
		w32(d, R_QSEL, 2);
		report(r32(d, R_QNUM_MAX) > 0, "net: CTRL_VQ offered, and a control queue with it");
	}
	for (unsigned i = 0; i < 6; i++)
		mac = mac << 8 | *(volatile uint8_t *)(d->base + R_CONFIG + i);
	report(mac == want_mac, "net: config MAC 0x%lx (want 0x%lx)", (unsigned long)mac,
	       (unsigned long)want_mac);
	memset(buf, 0xee, 2048);
	memset(buf2, 0, 12);
	memset(buf2 + 12, 0xff, 6);                       /* broadcast */
	for (unsigned i = 0; i < 6; i++)
		buf2[18 + i] = (uint8_t)(mac >> (40 - 8 * i)); /* from us */
	buf2[24] = 0x88;                                  /* local experimental ethertype */
	buf2[25] = 0xb5;
	for (unsigned i = 26; i < 72; i++)
		buf2[i] = (uint8_t)(i * 3);
	irqs = kut_irq_count;
	submit(d, 0, &rx, 1);
	submit(d, 1, &tx, 1);
	tlen = wait_used(d, 1, irqs);
	rlen = wait_used(d, 0, NO_IRQ_CHECK); /* one interrupt may cover both */
	report(tlen >= 0 && rlen == 12 + 60 && !memcmp(buf + 12, buf2 + 12, 60) &&
	       buf[10] == 1 && buf[11] == 0,
	       "net: 60-byte frame looped back tx -> rx (rx used %ld, num_buffers %u)", rlen,
	       buf[10] | buf[11] << 8);
}

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

enum { VS_REQUEST = 1, VS_RESPONSE, VS_RST, VS_SHUTDOWN, VS_RW, VS_CREDIT_UPDATE };
#define VS_LOCAL_PORT 1234u
static const char vs_msg[] = "hello from kut over vsock";

static struct vsock_hdr vs_tx;

/* Send a packet of op (with payload p of len bytes) to the host port. */
static bool vsock_send(struct vdev *d, uint64_t cid, uint32_t port, uint16_t op, uint32_t flags,
		       const void *p, uint32_t len)
{
	struct seg sg[2] = { { &vs_tx, sizeof(vs_tx), false }, { (void *)(uintptr_t)p, len, false } };

	vs_tx = (struct vsock_hdr){ .src_cid = cid, .dst_cid = 2, .src_port = VS_LOCAL_PORT,
				    .dst_port = port, .len = len, .type = 1, .op = op,
				    .flags = flags, .buf_alloc = 65536, .fwd_cnt = 0 };
	submit(d, 1, sg, len ? 2 : 1);
	return wait_used(d, 1, NO_IRQ_CHECK) >= 0;
}

/* The next packet on rx0 (the buffer in buf is offered again afterwards); its op, or -1. */
static long vsock_recv(struct vdev *d, struct vsock_hdr *h, uint8_t *data, uint32_t cap)
{
	struct seg rx = { buf, 4096, true };
	long n = wait_used(d, 0, NO_IRQ_CHECK);

	if (n < (long)sizeof(*h))
		return -1;
	memcpy(h, buf, sizeof(*h));
	if (h->len > cap || sizeof(*h) + h->len > (unsigned long)n)
		return -1;
	memcpy(data, buf + sizeof(*h), h->len);
	submit(d, 0, &rx, 1);
	return h->op;
}

static void test_vsock(struct vdev *d)
{
	uint64_t cid = (uint64_t)cmdline_num("vsock_cid", 0), got_cid;
	uint32_t port = (uint32_t)cmdline_num("vsock_port", 5000), feat, n = 0;
	struct seg rx = { buf, 4096, true };
	struct vsock_hdr h;
	char answer[64] = { 0 };
	long op;

	if (!dev_init(d, 0, &feat, 2))
		return;
	got_cid = r32(d, R_CONFIG) | (uint64_t)r32(d, R_CONFIG + 4) << 32;
	report(got_cid == cid, "vsock: guest CID %lu (want %lu)", (unsigned long)got_cid,
	       (unsigned long)cid);
	submit(d, 0, &rx, 1);
	if (!vsock_send(d, cid, port, VS_REQUEST, 0, NULL, 0))
		return;
	op = vsock_recv(d, &h, (uint8_t *)answer, sizeof(answer) - 1);
	if (!report_ok(op == VS_RESPONSE && h.src_port == port && h.dst_port == VS_LOCAL_PORT,
		       "vsock: connected to host port %u (op %ld)", port, op))
		return;
	vsock_send(d, cid, port, VS_RW, 0, vs_msg, sizeof(vs_msg) - 1);
	while (n < sizeof(vs_msg) - 1) {
		op = vsock_recv(d, &h, (uint8_t *)answer + n, sizeof(answer) - 1 - n);
		if (op == VS_RW)
			n += h.len;
		else if (op != VS_CREDIT_UPDATE && op != VS_CREDIT_UPDATE + 1)
			break;
	}
	report(n == sizeof(vs_msg) - 1 && !memcmp(answer, "HELLO FROM KUT OVER VSOCK", n),
	       "vsock: the host answered '%s'", answer);
	vsock_send(d, cid, port, VS_SHUTDOWN, 3, NULL, 0);
	do
		op = vsock_recv(d, &h, (uint8_t *)answer, sizeof(answer) - 1);
	while (op == VS_CREDIT_UPDATE || op == VS_RW || op == VS_SHUTDOWN);
	report(op == VS_RST, "vsock: SHUTDOWN answered with RST (op %ld)", op);
}

/* ---- smp on the command line (and --cpus 2): two CPUs, two devices, at once ---- */

#define SMP_REQS 300
static struct vdev *volatile ap_dev;
static volatile uint32_t ap_apic;
static volatile int ap_state;          /* 1 up, 2 go, 3 done */
static volatile long ap_done;
static struct seg ap_seg = { buf2, 64, true };

void ap_main(unsigned index)
{
	if (index != 0)
		return;
	idt_load();
	apic_enable(false);
	ap_apic = apic_id();
	__atomic_store_n(&ap_state, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&ap_state, __ATOMIC_SEQ_CST) != 2)
		cpu_relax();
	irq_enable();
	ap_done = quiet_requests(ap_dev, &ap_seg, 1, SMP_REQS);
	irq_disable();
	__atomic_store_n(&ap_state, 3, __ATOMIC_SEQ_CST);
}

/* The AP drives rng (its IOAPIC pin now aimed at the AP), the boot CPU drives blk, both
 * kicking and taking interrupts at the same time; each CPU must see its device's
 * interrupts. */
static void test_smp(struct vdev *rng, struct vdev *blk)
{
	uint32_t bsp = apic_id();
	unsigned bsp_irqs, ap_irqs;
	uint64_t t0 = rdtsc();
	long done;

	smp_start_aps();
	while (__atomic_load_n(&ap_state, __ATOMIC_SEQ_CST) != 1 && rdtsc() - t0 < TIMEOUT)
		cpu_relax();
	if (!report_ok(ap_state == 1, "smp: an AP is up (APIC ID %u)", ap_apic))
		return;
	ioapic_write(0x10 + 2 * rng->irq + 1, ap_apic << 24);
	ap_dev = rng;
	bsp_irqs = kut_irq_count_cpu[bsp % KUT_IRQ_CPUS];
	ap_irqs = kut_irq_count_cpu[ap_apic % KUT_IRQ_CPUS];
	blk_hdr = (struct blk_req){ 0, 0, 0 };
	__atomic_store_n(&ap_state, 2, __ATOMIC_SEQ_CST);
	done = quiet_requests(blk, blk_read4k, 3, SMP_REQS);
	while (__atomic_load_n(&ap_state, __ATOMIC_SEQ_CST) != 3 && rdtsc() - t0 < TIMEOUT)
		cpu_relax();
	report(done == SMP_REQS && ap_done == SMP_REQS,
	       "smp: blk on CPU %u and rng on CPU %u at once: %ld and %ld of %u requests", bsp,
	       ap_apic, done, ap_done, SMP_REQS);
	report(kut_irq_count_cpu[bsp % KUT_IRQ_CPUS] - bsp_irqs >= 1 &&
	       kut_irq_count_cpu[ap_apic % KUT_IRQ_CPUS] - ap_irqs >= 1,
	       "smp: interrupts on both CPUs (boot CPU %u, AP %u)",
	       kut_irq_count_cpu[bsp % KUT_IRQ_CPUS] - bsp_irqs,
	       kut_irq_count_cpu[ap_apic % KUT_IRQ_CPUS] - ap_irqs);
	ioapic_write(0x10 + 2 * rng->irq + 1, bsp << 24);
}

/* The devices in the MMIO slots (by MagicValue) with their IRQs routed; returns how many. */
static unsigned find_devices(struct vdev *devs)
{
	unsigned n = 0;

	for (unsigned s = 0; s < MMIO_SLOTS; s++) {
		struct vdev *d = &devs[n];

		d->base = MMIO_BASE + s * 0x1000u;
		d->slot = s;
		if (r32(d, R_MAGIC) != 0x74726976u)
			continue;
		d->id = r32(d, R_DEVICE_ID);
		d->vr[0] = &rings[s][0];
		d->vr[1] = &rings[s][1];
		long irq = cmdline_irq(d->base);
		report(r32(d, R_VERSION) == 2 && irq > 0 && irq < 24,
		       "slot %u: virtio-mmio version %u, device id %u, IRQ %ld", s,
		       r32(d, R_VERSION), d->id, irq);
		if (irq <= 0 || irq >= 24)
			continue;
		d->irq = (unsigned)irq;
		route_irq(d);
		n++;
	}
	return n;
}

static struct vdev *find_id(struct vdev *devs, unsigned n, uint32_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (devs[i].id == id)
			return &devs[i];
	return NULL;
}

int main(void)
{
	static struct vdev devs[MMIO_SLOTS];
	unsigned n;

	outb(0x21, 0xff); /* both 8259s masked: interrupts come through the IOAPIC */
	outb(0xa1, 0xff);
	apic_enable(false);
	n = find_devices(devs);
	report(n == (unsigned)cmdline_num("devices", 0), "found %u devices (want %ld)", n,
	       cmdline_num("devices", 0));
	irq_enable();
	for (unsigned i = 0; i < n; i++) {
		if (devs[i].id == 4)
			test_rng(&devs[i]);
		else if (devs[i].id == 2)
			test_blk(&devs[i]);
		else if (devs[i].id == 1)
			test_net(&devs[i]);
		else if (devs[i].id == 19)
			test_vsock(&devs[i]);
		else
			report_skip("slot %u: device id %u", devs[i].slot, devs[i].id);
	}
	if (cmdline_has("smp") &&
	    report_ok(find_id(devs, n, 4) && find_id(devs, n, 2) &&
		      fwcfg_read_le(FW_CFG_NB_CPUS, 2) >= 2, "smp: rng, blk and a second CPU"))
		test_smp(find_id(devs, n, 4), find_id(devs, n, 2));
	irq_disable();
	printf("kut virtio: %u failures\n", kut_failures());
	return (int)kut_failures();
}
