/* bench/blk: a virtio-blk driver of its own, in user space, driving any vhost-user-blk backend
 * through vireo's vhost-user front-end (src/vhost-user/frontend.h). It plays the guest: guest
 * RAM is a memfd the backend maps, one split virtqueue of 256 entries lives in it, and each
 * request is the usual three descriptors (16-byte header, data, status byte). Requests are
 * kept QD deep in flight; the driver kicks through the kick eventfd (only when the device
 * asks for it, EVENT_IDX) and sleeps on the call eventfd like a guest waiting for its
 * interrupt. Used entries are taken in batches and their slots reposted at once.
 *
 * Each test runs for --seconds after a short warm-up and prints one line:
 *     LABEL TEST BS QD  IOPS  MB/s  errors  backend-CPU-us-per-request  kicks/io  waits/io
 * (the backend's CPU from /proc/PID/stat when --pid names it, else 0).
 * Tests: randread, randwrite, seqread, seqwrite as NAME:BS:QD, e.g. randread:4096:32.
 * bench/blk.sh runs it against vireo's blk backend and qemu-storage-daemon side by side.
 *
 * Usage: build/bench/blk --socket PATH [--seconds S] [--tests T1,T2,...] [--label NAME]
 *                        [--pid BACKEND_PID] [--seed N --ack-log FILE]
 *        build/bench/blk --check-acks FILE --file IMAGE --seed N [--bs 4096]
 * Fault tests (tests/integration/vhost_user_blk_driver_faults.sh): with --seed, written blocks
 * carry a pattern of their offset and the run seed; --ack-log appends each write's offset the
 * moment its completion is seen; --check-acks then tells whether every acknowledged block is
 * in the image.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "memory/guest_memory.h"
#include "util/log.h"
#include "vhost-user/frontend.h"
#include "virtio/device_ops.h"

#define QSIZE     256u
#define MAX_QD    (QSIZE / 3)
#define RING_DESC 0x0ull
#define RING_AVAIL 0x1000ull
#define RING_USED 0x2000ull
#define HDRS      0x4000ull           /* 16 bytes per slot */
#define STATUS    0x5000ull           /* 1 byte per slot */
#define DATA      0x100000ull         /* max_bs per slot */
#define MAX_BS    (1u << 20)
#define MEM_SIZE  (DATA + (uint64_t)MAX_QD * MAX_BS)

struct test {
	char name[16];
	bool write, random;
	uint32_t bs;
	unsigned qd;
};

struct drv {
	struct guest_memory gm;
	struct vu_fe *fe;
	int kick, call;
	bool event_idx;
	uint64_t capacity;            /* bytes */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t *used_event, *avail_event;
	struct virtio_blk_outhdr *hdr;
	volatile uint8_t *status;
	uint16_t avail_idx, last_used, kicked_idx;
	uint64_t rng, next_off;
	uint64_t kicks, waits;
	/* fault tests: written data carries a pattern of its offset, acknowledged writes are
	 * logged (offset per line) the moment they complete */
	bool pattern;
	uint64_t seed;
	int ack_fd;
	uint64_t slot_off[MAX_QD];
};

/* The 8-byte words of the block at byte offset off, for run seed. */
static uint64_t pattern_word(uint64_t seed, uint64_t off, unsigned i)
{
	return (off * 0x9e3779b97f4a7c15ull) ^ (seed + i);
}

static void fill_pattern(uint8_t *p, uint32_t bs, uint64_t seed, uint64_t off)
{
	for (unsigned i = 0; i < bs / 8; i++) {
		uint64_t w = pattern_word(seed, off, i);

		memcpy(p + 8 * i, &w, 8);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *at(struct drv *d, uint64_t gpa, uint64_t len)
{
	void *p = gm_translate(&d->gm, gpa, len);

	if (!p) {
		fprintf(stderr, "blk bench: %#llx outside guest memory\n", (unsigned long long)gpa);
		exit(1);
	}
	return p;
}

/* Guest RAM, the session, config and the ring, as a guest driver would set them up. */
static int drv_open(struct drv *d, const char *sock)
{
	struct vu_fe_config cfg = { .name = "bench", .gm = &d->gm, .timeout_ms = 10000 };
	uint64_t want = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
			(1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
			(1ull << VIRTIO_BLK_F_FLUSH);
	struct vu_fe_vring r = { .num = QSIZE, .desc = RING_DESC, .avail = RING_AVAIL,
				 .used = RING_USED };
	uint64_t feat, cap = 0;
	int rc;

	if (gm_init(&d->gm) || gm_add_ram(&d->gm, 0, MEM_SIZE, 0) < 0)
		return -ENOMEM;
	rc = vu_fe_connect(&cfg, sock, &d->fe);
	if (rc)
		return rc;
	feat = vu_fe_device_features(d->fe) & want;
	d->event_idx = feat & (1ull << VIRTIO_RING_F_EVENT_IDX);
	rc = vu_fe_set_features(d->fe, feat);
	if (!rc)
		rc = vu_fe_get_config(d->fe, 0, &cap, sizeof(cap));
	if (rc)
		return rc;
	d->capacity = le64toh(cap) * 512;
	if (d->capacity < 16 * MAX_BS)
		return -ENOSPC;
	d->desc = at(d, RING_DESC, 16 * QSIZE);
	d->avail = at(d, RING_AVAIL, 6 + 2 * QSIZE);
	d->used = at(d, RING_USED, 6 + 8 * QSIZE);
	d->used_event = &d->avail->ring[QSIZE];
	d->avail_event = (uint16_t *)&d->used->ring[QSIZE];
	d->hdr = at(d, HDRS, 16 * MAX_QD);
	d->status = at(d, STATUS, MAX_QD);
	d->kick = eventfd(0, EFD_CLOEXEC);
	d->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r.kick_fd = d->kick;
	r.call_fd = d->call;
	rc = vu_fe_set_mem_table(d->fe);
	if (!rc)
		rc = vu_fe_vring_start(d->fe, 0, &r);
	d->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	return rc;
}

static void drv_close(struct drv *d)
{
	uint16_t base;

	if (d->fe && !vu_fe_broken(d->fe))
		vu_fe_vring_stop(d->fe, 0, &base);
	vu_fe_destroy(d->fe);
	close(d->kick);
	close(d->call);
	gm_destroy(&d->gm);
}

/* Slot s owns descriptors 3s..3s+2: header -> data -> status, fixed for a test. */
static void build_chains(struct drv *d, const struct test *t)
{
	for (unsigned s = 0; s < t->qd; s++) {
		struct vring_desc *x = &d->desc[3 * s];

		x[0] = (struct vring_desc){ HDRS + 16 * s, 16, VRING_DESC_F_NEXT, 3 * s + 1 };
		x[1] = (struct vring_desc){ DATA + (uint64_t)s * MAX_BS, t->bs,
					    VRING_DESC_F_NEXT | (t->write ? 0 : VRING_DESC_F_WRITE),
					    3 * s + 2 };
		x[2] = (struct vring_desc){ STATUS + s, 1, VRING_DESC_F_WRITE, 0 };
	}
}

/* Put slot s in the avail ring (published later, by kick()). */
static void post(struct drv *d, const struct test *t, unsigned s)
{
	uint64_t off;

	if (t->random) {
		off = (xorshift(&d->rng) % (d->capacity / t->bs)) * t->bs;
	} else {
		if (d->next_off + t->bs > d->capacity)
			d->next_off = 0;
		off = d->next_off;
		d->next_off += t->bs;
	}
	d->hdr[s].type = htole32(t->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN);
	d->hdr[s].ioprio = 0;
	d->hdr[s].sector = htole64(off / 512);
	d->status[s] = 0xff;
	d->slot_off[s] = off;
	if (t->write && d->pattern)
		fill_pattern(at(d, DATA + (uint64_t)s * MAX_BS, t->bs), t->bs, d->seed, off);
	d->avail->ring[d->avail_idx % QSIZE] = (uint16_t)(3 * s);
	d->avail_idx++;
}

/* Publish what was posted and notify the device if it wants to be. */
static void kick(struct drv *d)
{
	bool need;

	__atomic_store_n(&d->avail->idx, d->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->event_idx)
		need = vring_need_event(__atomic_load_n(d->avail_event, __ATOMIC_ACQUIRE),
					d->avail_idx, d->kicked_idx);
	else
		need = !(__atomic_load_n(&d->used->flags, __ATOMIC_ACQUIRE) &
			 VRING_USED_F_NO_NOTIFY);
	d->kicked_idx = d->avail_idx;
	if (need) {
		eventfd_write(d->kick, 1);
		d->kicks++;
	}
}

/* Wait until the used index moves: ask for an interrupt at the next entry, re-check, sleep. */
static uint16_t wait_used(struct drv *d)
{
	uint16_t u = __atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE);
	struct pollfd p = { .fd = d->call, .events = POLLIN };
	eventfd_t v;

	while (u == d->last_used) {
		*d->used_event = d->last_used;
		d->avail->flags = 0;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		u = __atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE);
		if (u != d->last_used)
			break;
		if (poll(&p, 1, 5000) != 1) {
			fprintf(stderr, "blk bench: no completion for 5 s\n");
			exit(1);
		}
		eventfd_read(d->call, &v);
		d->waits++;
		u = __atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE);
	}
	return u;
}

struct result {
	uint64_t ios, errors, ns;
	double cpu_s;                 /* the backend's CPU time in the window (--pid) */
};

static int backend_pid;

/* user + system CPU seconds of the backend process (all its threads), or 0 without --pid. */
static double backend_cpu(void)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	if (!backend_pid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", backend_pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	/* after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Keep t->qd requests in flight; count completions between warm-up and the end. */
static struct result run_test(struct drv *d, const struct test *t, double seconds)
{
	uint64_t t0 = now_ns(), start = t0 + 300000000ull, end = start + (uint64_t)(seconds * 1e9);
	struct result r = { 0, 0, 0, 0 };
	unsigned inflight = 0;
	bool measuring = false, stopping = false;

	build_chains(d, t);
	d->next_off = 0;
	for (unsigned s = 0; s < t->qd; s++, inflight++)
		post(d, t, s);
	kick(d);
	while (inflight) {
		uint16_t u = wait_used(d);
		uint64_t now = now_ns();

		if (!measuring && now >= start) {
			measuring = true;
			r.ios = r.errors = 0;
			d->kicks = d->waits = 0;
			r.cpu_s = backend_cpu();
			start = now;
		}
		if (now >= end)
			stopping = true;
		for (; d->last_used != u; d->last_used++) {
			struct vring_used_elem *e = &d->used->ring[d->last_used % QSIZE];
			unsigned s = e->id / 3;

			if (e->id % 3 || s >= t->qd) {
				fprintf(stderr, "blk bench: used id %u was never posted\n", e->id);
				exit(1);
			}
			if (d->status[s] != VIRTIO_BLK_S_OK)
				r.errors++;
			else if (t->write && d->ack_fd >= 0)
				dprintf(d->ack_fd, "%llu\n", (unsigned long long)d->slot_off[s]);
			r.ios++;
			inflight--;
			if (!stopping) {
				post(d, t, s);
				inflight++;
			}
		}
		if (!stopping)
			kick(d);
		if (stopping) /* the drain counts: time and CPU to the last completion */
			r.ns = now - start;
	}
	r.cpu_s = backend_cpu() - r.cpu_s;
	return r;
}

static int parse_test(const char *s, struct test *t)
{
	char kind[16];

	if (sscanf(s, "%15[a-z]:%u:%u", kind, &t->bs, &t->qd) != 3)
		return -1;
	t->write = !strcmp(kind, "randwrite") || !strcmp(kind, "seqwrite");
	t->random = !strncmp(kind, "rand", 4);
	if (strcmp(kind, "randread") && strcmp(kind, "seqread") && !t->write)
		return -1;
	if (!t->bs || t->bs % 512 || t->bs > MAX_BS || !t->qd || t->qd > MAX_QD)
		return -1;
	snprintf(t->name, sizeof(t->name), "%s", kind);
	return 0;
}

static __attribute__((noreturn)) void usage(void)
{
	fprintf(stderr, "usage: blk --socket PATH [--seconds S] [--label NAME] [--pid N] "
			"[--seed N --ack-log FILE] "
			"[--tests randread:4096:1,randread:4096:32,seqread:1048576:8]\n"
			"       blk --check-acks FILE --file IMAGE --seed N [--bs 4096]\n");
	exit(2);
}

/* --check-acks LOG --file IMG: every offset in LOG holds its pattern in IMG (bs bytes).
 * Prints how many were checked and how many were wrong; exit status 1 when any was. */
static int check_acks(const char *log, const char *img, uint32_t bs, uint64_t seed)
{
	FILE *f = fopen(log, "r");
	int fd = open(img, O_RDONLY);
	unsigned long long off;
	uint64_t n = 0, bad = 0;
	uint8_t *want = malloc(bs), *got = malloc(bs);

	if (!f || fd < 0 || !want || !got) {
		fprintf(stderr, "blk bench: cannot open %s or %s\n", log, img);
		return 2;
	}
	while (fscanf(f, "%llu", &off) == 1) {
		fill_pattern(want, bs, seed, off);
		if (pread(fd, got, bs, (off_t)off) != (ssize_t)bs || memcmp(got, want, bs)) {
			if (bad++ < 5)
				fprintf(stderr, "blk bench: acknowledged block at %llu is not on disk\n",
					off);
		}
		n++;
	}
	printf("acks %llu bad %llu\n", (unsigned long long)n, (unsigned long long)bad);
	fclose(f);
	close(fd);
	free(want);
	free(got);
	return bad || !n ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *label = "backend";
	char tests[256] = "randread:4096:1,randread:4096:32,seqread:1048576:8";
	const char *ack_log = NULL, *check_log = NULL, *img = NULL;
	uint32_t bs = 4096;
	double seconds = 3;
	struct drv d;
	int rc;

	memset(&d, 0, sizeof(d));
	d.kick = d.call = d.ack_fd = -1;
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();

		if (!strcmp(a, "--socket"))
			sock = v;
		else if (!strcmp(a, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(a, "--pid"))
			backend_pid = atoi(v);
		else if (!strcmp(a, "--seed")) {
			d.seed = strtoull(v, NULL, 0);
			d.pattern = true;
		}
		else if (!strcmp(a, "--ack-log"))
			ack_log = v;
		else if (!strcmp(a, "--check-acks"))
			check_log = v;
		else if (!strcmp(a, "--file"))
			img = v;
		else if (!strcmp(a, "--bs"))
			bs = (uint32_t)atoi(v);
		else if (!strcmp(a, "--label"))
			label = v;
		else if (!strcmp(a, "--tests"))
			snprintf(tests, sizeof(tests), "%s", v);
		else
			usage();
	}
	if (check_log) {
		if (!img || !bs || bs % 8)
			usage();
		return check_acks(check_log, img, bs, d.seed);
	}
	if (!sock || seconds <= 0)
		usage();
	if (ack_log) {
		d.ack_fd = open(ack_log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
		if (d.ack_fd < 0) {
			perror(ack_log);
			return 2;
		}
	}
	rc = drv_open(&d, sock);
	if (rc) {
		fprintf(stderr, "blk bench: %s: set-up failed: %s\n", sock, strerror(-rc));
		drv_close(&d);
		return 1;
	}
	for (char *save = NULL, *tok = strtok_r(tests, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		struct test t;
		struct result r;

		if (parse_test(tok, &t)) {
			fprintf(stderr, "blk bench: bad test '%s'\n", tok);
			drv_close(&d);
			return 2;
		}
		d.kicks = d.waits = 0;
		r = run_test(&d, &t, seconds);
		printf("%s %s %u %u %.0f %.1f %llu %.1f kicks/io=%.2f waits/io=%.2f\n", label,
		       t.name, t.bs, t.qd, r.ios * 1e9 / r.ns,
		       r.ios * (double)t.bs * 1e9 / r.ns / 1e6, (unsigned long long)r.errors,
		       r.ios ? r.cpu_s * 1e6 / r.ios : 0, (double)d.kicks / (r.ios ? r.ios : 1),
		       (double)d.waits / (r.ios ? r.ios : 1));
		fflush(stdout);
	}
	drv_close(&d);
	return 0;
}
