/* Unit tests of the vhost-user back-end library (src/vhost-user/), driven over a socketpair
 * the way a front-end would, with virtio-rng behind it and the mock driver queue
 * (vq_driver.h) in a memfd both sides map. Hostile messages (short, oversized, wrong size,
 * wrong fd count, unknown, needing features not negotiated, overlapping or out-of-range
 * memory tables, vring addresses outside memory) must each end the connection with a clear
 * reason, and a new front-end must then be served. A request through the ring must come back
 * with its bytes, an interrupt, and (F_LOG_ALL) the written pages in the front-end's log. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/virtio/rng.h"
#include "memory/guest_memory.h"
#include "vhost-user/vu_msg.h"
#include "vhost-user/vu_proto.h"
#include "vhost-user/vu_server.h"
#include "vq_driver.h"

#define F(bit) (1ull << (bit))
#define MEM_SIZE (1u << 20)
#define UADDR 0x7f0000000000ull /* the "front-end's" address of guest RAM */
#define RINGS 0x10000
#define BUF 0x40000
#define QSIZE 64

struct fx {
	struct guest_memory gm;        /* the back-end's map, filled by the server */
	struct virtio_device vdev;
	struct vu_server *s;
	int sock;                      /* the front-end's end */
	int memfd;
	void *mem;                     /* front-end's mapping of guest RAM */
	struct guest_memory front;     /* the same RAM, for the mock driver */
	struct vqd d;
};

static int fx_connect(struct fx *fx)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vu_server_adopt(fx->s, sv[0]), 0);
	fx->sock = sv[1];
	return 0;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct vu_server_config cfg;

	assert_non_null(fx);
	assert_int_equal(gm_init(&fx->gm), 0);
	assert_int_equal(virtio_rng_create(&fx->vdev, &fx->gm), 0);
	cfg = (struct vu_server_config){
		.name = "test", .dev = virtio_device_handle(&fx->vdev), .gm = &fx->gm,
		.set_iotlb = virtio_device_set_iotlb, .quiesce = virtio_device_quiesce,
	};
	assert_int_equal(vu_server_create(&cfg, &fx->s), 0);
	fx->memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_true(fx->memfd >= 0);
	assert_int_equal(ftruncate(fx->memfd, MEM_SIZE), 0);
	fx->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fx->memfd, 0);
	assert_true(fx->mem != MAP_FAILED);
	assert_int_equal(gm_init(&fx->front), 0);
	assert_true(gm_add_mapping(&fx->front, 0, MEM_SIZE, fx->mem, -1, 0, UADDR, 0, false) >= 0);
	fx_connect(fx);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	vu_server_destroy(fx->s);
	virtio_device_destroy(&fx->vdev);
	gm_destroy(&fx->gm);
	gm_destroy(&fx->front);
	munmap(fx->mem, MEM_SIZE);
	close(fx->memfd);
	if (fx->sock >= 0)
		close(fx->sock);
	free(fx);
	return 0;
}

/* ---- front-end side helpers --------------------------------------------------------------- */

static void send_req(struct fx *fx, uint32_t req, uint32_t flags, const void *p, uint32_t size,
		     const int *fds, unsigned nfds)
{
	struct vu_hdr h = { req, VU_VERSION | flags, size };

	assert_int_equal(vu_msg_send(fx->sock, &h, p, fds, nfds), 0);
}

/* Send and have the server process it; returns what vu_server_process_one returned. */
static int exchange(struct fx *fx, uint32_t req, const void *p, uint32_t size, const int *fds,
		    unsigned nfds)
{
	send_req(fx, req, 0, p, size, fds, nfds);
	return vu_server_process_one(fx->s);
}

static uint64_t get_u64(struct fx *fx, uint32_t req)
{
	struct vu_hdr h;
	uint64_t v = 0;

	assert_int_equal(exchange(fx, req, NULL, 0, NULL, 0), 0);
	assert_int_equal(recv(fx->sock, &h, sizeof(h), MSG_WAITALL), sizeof(h));
	assert_int_equal(h.request, req);
	assert_int_equal(h.flags, VU_VERSION | VU_FLAG_REPLY);
	assert_int_equal(h.size, 8);
	assert_int_equal(recv(fx->sock, &v, 8, MSG_WAITALL), 8);
	return v;
}

static void set_u64(struct fx *fx, uint32_t req, uint64_t v)
{
	assert_int_equal(exchange(fx, req, &v, 8, NULL, 0), 0);
}

/* The connection ended with a reason containing `why`, and a new one is served. */
static void assert_refused(struct fx *fx, int rc, const char *why)
{
	const char *got = vu_server_last_error(fx->s);

	assert_true(rc < 0);
	assert_false(vu_server_connected(fx->s));
	assert_non_null(got);
	if (!strstr(got, why))
		fail_msg("refused for '%s', expected '%s'", got, why);
	close(fx->sock);
	fx_connect(fx);
	assert_true(get_u64(fx, VU_GET_FEATURES) & F(VIRTIO_F_VERSION_1));
}

static void handshake_pf(struct fx *fx, uint64_t extra, uint64_t extra_pf)
{
	uint64_t f = get_u64(fx, VU_GET_FEATURES);

	assert_true(f & F(VU_F_PROTOCOL_FEATURES));
	assert_true(f & F(VU_F_LOG_ALL));
	set_u64(fx, VU_SET_PROTOCOL_FEATURES,
		get_u64(fx, VU_GET_PROTOCOL_FEATURES) & (F(VU_PF_MQ) | F(VU_PF_LOG_SHMFD) |
							 F(VU_PF_REPLY_ACK) | extra_pf));
	assert_int_equal(exchange(fx, VU_SET_OWNER, NULL, 0, NULL, 0), 0);
	set_u64(fx, VU_SET_FEATURES, F(VIRTIO_F_VERSION_1) | F(VU_F_PROTOCOL_FEATURES) | extra);
}

static void handshake(struct fx *fx, uint64_t extra)
{
	handshake_pf(fx, extra, 0);
}

static int mem_table(struct fx *fx, const struct vu_mem_region *r, unsigned n, int fd)
{
	struct vu_mem_table t = { .nregions = n };
	int fds[VU_MAX_MEM_REGIONS];

	for (unsigned i = 0; i < n; i++) {
		t.regions[i] = r[i];
		fds[i] = fd;
	}
	return exchange(fx, VU_SET_MEM_TABLE, &t, VU_MEM_HDR_SIZE + n * sizeof(r[0]), fds, n);
}

static void whole_mem(struct fx *fx)
{
	struct vu_mem_region r = { 0, MEM_SIZE, UADDR, 0 };

	assert_int_equal(mem_table(fx, &r, 1, fx->memfd), 0);
}

/* ---- hostile messages ---------------------------------------------------------------------- */

static void test_short_header(void **state)
{
	struct fx *fx = *state;
	uint8_t half[6] = { VU_GET_FEATURES };

	assert_int_equal(send(fx->sock, half, sizeof(half), 0), sizeof(half));
	shutdown(fx->sock, SHUT_WR);
	assert_refused(fx, vu_server_process_one(fx->s), "short header");
}

static void test_short_payload(void **state)
{
	struct fx *fx = *state;
	struct vu_hdr h = { VU_SET_FEATURES, VU_VERSION, 8 };

	assert_int_equal(send(fx->sock, &h, sizeof(h), 0), sizeof(h));
	assert_int_equal(send(fx->sock, "abc", 3, 0), 3);
	shutdown(fx->sock, SHUT_WR);
	assert_refused(fx, vu_server_process_one(fx->s), "short payload");
}

static void test_oversized(void **state)
{
	struct fx *fx = *state;
	struct vu_hdr h = { VU_SET_FEATURES, VU_VERSION, 1u << 20 };

	assert_int_equal(send(fx->sock, &h, sizeof(h), 0), sizeof(h));
	assert_refused(fx, vu_server_process_one(fx->s), "larger than any request");
}

static void test_wrong_size(void **state)
{
	struct fx *fx = *state;
	uint32_t v = 1;

	assert_refused(fx, exchange(fx, VU_SET_FEATURES, &v, 4, NULL, 0), "payload size wrong");
	assert_refused(fx, exchange(fx, VU_GET_FEATURES, &v, 4, NULL, 0), "payload size wrong");
}

static void test_bad_header(void **state)
{
	struct fx *fx = *state;

	send_req(fx, VU_GET_FEATURES, 0x2 /* version 3 */, NULL, 0, NULL, 0);
	assert_refused(fx, vu_server_process_one(fx->s), "version");
	send_req(fx, VU_GET_FEATURES, VU_FLAG_REPLY, NULL, 0, NULL, 0);
	assert_refused(fx, vu_server_process_one(fx->s), "reply flag");
	assert_refused(fx, exchange(fx, 99, NULL, 0, NULL, 0), "unknown");
	assert_refused(fx, exchange(fx, 0, NULL, 0, NULL, 0), "unknown");
}

static void test_wrong_fds(void **state)
{
	struct fx *fx = *state;
	int efd = eventfd(0, EFD_CLOEXEC);
	int fds[2] = { efd, efd };
	uint64_t idx0 = 0, nofd = VU_VRING_NOFD;

	handshake(fx, 0);
	assert_refused(fx, exchange(fx, VU_SET_VRING_KICK, &idx0, 8, NULL, 0),
		       "wrong number of file descriptors");
	handshake(fx, 0);
	assert_refused(fx, exchange(fx, VU_SET_VRING_CALL, &nofd, 8, &efd, 1),
		       "wrong number of file descriptors");
	assert_refused(fx, exchange(fx, VU_GET_FEATURES, NULL, 0, &efd, 1),
		       "wrong number of file descriptors");
	assert_refused(fx, exchange(fx, VU_SET_OWNER, NULL, 0, fds, 2),
		       "wrong number of file descriptors");
	close(efd);
}

/* Unknown bits beside the ring index in the u64 of SET_VRING_KICK/CALL/ERR: the three share
 * one payload layout and are refused alike (ERR used to take them silently). */
static void test_vring_fd_unknown_bits(void **state)
{
	struct fx *fx = *state;
	static const uint32_t reqs[] = { VU_SET_VRING_KICK, VU_SET_VRING_CALL, VU_SET_VRING_ERR };
	uint64_t v = 1ull << 40; /* ring 0, a bit no request defines */

	for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		int efd = eventfd(0, EFD_CLOEXEC);

		handshake(fx, 0);
		assert_refused(fx, exchange(fx, reqs[i], &v, 8, &efd, 1), "unknown bits");
		close(efd);
	}
}

static void test_feature_gates(void **state)
{
	struct fx *fx = *state;
	struct vhost_vring_state en = { 0, 1 };
	struct vu_log_area log = { 4096, 0 };
	int efd = eventfd(0, EFD_CLOEXEC);

	/* nothing negotiated yet: MQ and protocol-feature requests are refused */
	assert_refused(fx, exchange(fx, VU_GET_QUEUE_NUM, NULL, 0, NULL, 0), "not negotiated");
	assert_refused(fx, exchange(fx, VU_SET_VRING_ENABLE, &en, sizeof(en), NULL, 0),
		       "not negotiated");
	assert_refused(fx, exchange(fx, VU_SET_LOG_BASE, &log, sizeof(log), &efd, 1),
		       "not negotiated");
	/* features that were never offered */
	assert_refused(fx, exchange(fx, VU_SET_FEATURES, &(uint64_t){ F(63) }, 8, NULL, 0),
		       "not offered");
	handshake(fx, 0);
	assert_int_equal(get_u64(fx, VU_GET_QUEUE_NUM), 1);
	close(efd);
}

static void test_mem_table_overlap(void **state)
{
	struct fx *fx = *state;
	struct vu_mem_region gpa_overlap[2] = {
		{ 0, MEM_SIZE / 2, UADDR, 0 },
		{ MEM_SIZE / 4, MEM_SIZE / 2, UADDR + MEM_SIZE, MEM_SIZE / 2 },
	};
	struct vu_mem_region ua_overlap[2] = {
		{ 0, MEM_SIZE / 2, UADDR, 0 },
		{ MEM_SIZE, MEM_SIZE / 2, UADDR + 4096, MEM_SIZE / 2 },
	};

	handshake(fx, 0);
	assert_refused(fx, mem_table(fx, gpa_overlap, 2, fx->memfd), "guest-physical");
	handshake(fx, 0);
	assert_refused(fx, mem_table(fx, ua_overlap, 2, fx->memfd), "front-end address");
	assert_int_equal(fx->gm.nregions, 0);
}

static void test_mem_table_range(void **state)
{
	struct fx *fx = *state;
	struct vu_mem_region past_end = { 0, 2 * MEM_SIZE, UADDR, 0 };
	struct vu_mem_region offset_past = { 0, MEM_SIZE, UADDR, 4096 };
	struct vu_mem_region wraps = { ~0ull - 4095, 8192, UADDR, 0 };
	struct vu_mem_region unaligned = { 100, 4096, UADDR, 0 };
	struct vu_mem_region empty = { 0, 0, UADDR, 0 };

	assert_refused(fx, mem_table(fx, &past_end, 1, fx->memfd), "past the end");
	assert_refused(fx, mem_table(fx, &offset_past, 1, fx->memfd), "past the end");
	assert_refused(fx, mem_table(fx, &wraps, 1, fx->memfd), "overflows");
	assert_refused(fx, mem_table(fx, &unaligned, 1, fx->memfd), "aligned");
	assert_refused(fx, mem_table(fx, &empty, 1, fx->memfd), "empty");
	/* nregions that disagrees with the payload size */
	struct vu_mem_table t = { .nregions = 3 };
	int fds[1] = { fx->memfd };
	assert_refused(fx, exchange(fx, VU_SET_MEM_TABLE, &t, VU_MEM_HDR_SIZE + 32, fds, 1),
		       "payload size wrong");
	assert_int_equal(fx->gm.nregions, 0);
}

static void test_vring_outside_memory(void **state)
{
	struct fx *fx = *state;
	struct vhost_vring_state num = { 0, QSIZE };
	struct vhost_vring_addr a = {
		.index = 0, .desc_user_addr = UADDR + MEM_SIZE - 512, /* desc table runs off */
		.avail_user_addr = UADDR + RINGS + 0x1000, .used_user_addr = UADDR + RINGS + 0x2000,
	};
	struct vhost_vring_state bad_idx = { 7, QSIZE };
	struct vhost_vring_state bad_num = { 0, 100 };

	handshake(fx, 0);
	whole_mem(fx);
	assert_refused(fx, exchange(fx, VU_SET_VRING_NUM, &bad_idx, sizeof(bad_idx), NULL, 0),
		       "ring index out of range");
	handshake(fx, 0);
	assert_refused(fx, exchange(fx, VU_SET_VRING_NUM, &bad_num, sizeof(bad_num), NULL, 0),
		       "power of two");
	handshake(fx, 0);
	whole_mem(fx);
	assert_int_equal(exchange(fx, VU_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	assert_refused(fx, exchange(fx, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0),
		       "vring address outside guest memory");
	handshake(fx, 0);
	whole_mem(fx);
	assert_int_equal(exchange(fx, VU_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	a.desc_user_addr = 0x1000; /* not a front-end address at all */
	assert_refused(fx, exchange(fx, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0),
		       "vring address outside guest memory");
}

static void test_reply_ack(void **state)
{
	struct fx *fx = *state;
	struct vhost_vring_state num = { 0, QSIZE }, bad = { 0, 3 };
	struct vu_hdr h;
	uint64_t v;

	handshake(fx, 0);
	send_req(fx, VU_SET_VRING_NUM, VU_FLAG_NEED_REPLY, &num, sizeof(num), NULL, 0);
	assert_int_equal(vu_server_process_one(fx->s), 0);
	assert_int_equal(recv(fx->sock, &h, sizeof(h), MSG_WAITALL), sizeof(h));
	assert_int_equal(recv(fx->sock, &v, 8, MSG_WAITALL), 8);
	assert_int_equal(h.request, VU_SET_VRING_NUM);
	assert_int_equal(v, 0);
	send_req(fx, VU_SET_VRING_NUM, VU_FLAG_NEED_REPLY, &bad, sizeof(bad), NULL, 0);
	assert_true(vu_server_process_one(fx->s) < 0);
	assert_int_equal(recv(fx->sock, &h, sizeof(h), MSG_WAITALL), sizeof(h));
	assert_int_equal(recv(fx->sock, &v, 8, MSG_WAITALL), 8);
	assert_int_not_equal(v, 0); /* the failure is acknowledged before the connection ends */
	assert_refused(fx, -EPROTO, "power of two");
}

/* A used-ring log address at the top of the address space: the page walk over the used ring's
 * log range wrapped to 0 and ran for 2^52 pages under the log lock (the backend hung). Such an
 * address is refused; one that fits is taken. */
static void test_vring_log_addr_wraps(void **state)
{
	struct fx *fx = *state;
	struct vhost_vring_state num = { 0, QSIZE };
	struct vhost_vring_addr a = {
		.index = 0, .flags = 1u << VHOST_VRING_F_LOG,
		.desc_user_addr = UADDR + RINGS, .avail_user_addr = UADDR + RINGS + 0x1000,
		.used_user_addr = UADDR + RINGS + 0x2000,
		.log_guest_addr = 0xfffffffffffff000ull,
	};

	handshake(fx, F(VU_F_LOG_ALL));
	whole_mem(fx);
	assert_int_equal(exchange(fx, VU_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	assert_refused(fx, exchange(fx, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0),
		       "used ring log address");
	handshake(fx, F(VU_F_LOG_ALL));
	whole_mem(fx);
	a.log_guest_addr = RINGS + 0x2000;
	assert_int_equal(exchange(fx, VU_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
}

/* ---- a request through the ring, with dirty logging ---------------------------------------- */

static void test_request_and_dirty_log(void **state)
{
	struct fx *fx = *state;
	struct vhost_vring_state num = { 0, QSIZE }, base = { 0, 0 }, en = { 0, 1 };
	struct vhost_vring_addr a = { .index = 0 };
	int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int logfd = memfd_create("log", MFD_CLOEXEC);
	struct vu_log_area log = { MEM_SIZE / 4096 / 8, 0 };
	struct vqd_buf b = { BUF + 0x3000, 256, true };
	uint8_t *logmap, zero[256] = { 0 };
	uint64_t n = 0;
	uint32_t len;
	struct vu_hdr h;
	uint64_t reply;

	assert_int_equal(ftruncate(logfd, (off_t)log.mmap_size), 0);
	handshake(fx, F(VU_F_LOG_ALL));
	whole_mem(fx);
	send_req(fx, VU_SET_LOG_BASE, 0, &log, sizeof(log), &logfd, 1);
	assert_int_equal(vu_server_process_one(fx->s), 0);
	assert_int_equal(recv(fx->sock, &h, sizeof(h), MSG_WAITALL), sizeof(h));
	assert_int_equal(recv(fx->sock, &reply, 8, MSG_WAITALL), 8);
	assert_int_equal(h.request, VU_SET_LOG_BASE);

	assert_int_equal(vqd_init(&fx->d, &fx->front, RINGS, QSIZE, 0), 0);
	a.desc_user_addr = UADDR + fx->d.desc;
	a.avail_user_addr = UADDR + fx->d.avail;
	a.used_user_addr = UADDR + fx->d.used;
	assert_int_equal(exchange(fx, VU_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_BASE, &base, sizeof(base), NULL, 0), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_CALL, &(uint64_t){ 0 }, 8, &call, 1), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_KICK, &(uint64_t){ 0 }, 8, &kick, 1), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_ENABLE, &en, sizeof(en), NULL, 0), 0);

	assert_int_equal(gm_write(&fx->front, b.addr, zero, sizeof(zero)), 0);
	assert_true(vqd_add(&fx->d, &b, 1) >= 0);
	eventfd_write(kick, 1);
	assert_int_equal(vu_server_handle(fx->s, VU_TOKEN_KICK(0)), 0);

	assert_int_equal(eventfd_read(call, &n), 0); /* interrupted */
	assert_true(vqd_get_used(&fx->d, &len) >= 0);
	assert_int_equal(len, 256);
	assert_memory_not_equal((uint8_t *)fx->mem + b.addr, zero, sizeof(zero));
	logmap = mmap(NULL, log.mmap_size, PROT_READ, MAP_SHARED, logfd, 0);
	assert_true(logmap != MAP_FAILED);
	/* the buffer's page and the used ring's page are logged; an untouched page is not */
	assert_true(logmap[(b.addr / 4096) / 8] & (1u << ((b.addr / 4096) % 8)));
	assert_true(logmap[(fx->d.used / 4096) / 8] & (1u << ((fx->d.used / 4096) % 8)));
	assert_false(logmap[(BUF + 0x10000) / 4096 / 8] & (1u << (((BUF + 0x10000) / 4096) % 8)));

	/* GET_VRING_BASE stops the ring and returns where it stopped */
	assert_int_equal(exchange(fx, VU_GET_VRING_BASE, &base, sizeof(base), NULL, 0), 0);
	assert_int_equal(recv(fx->sock, &h, sizeof(h), MSG_WAITALL), sizeof(h));
	assert_int_equal(recv(fx->sock, &base, sizeof(base), MSG_WAITALL), sizeof(base));
	assert_int_equal(base.num, 1);
	munmap(logmap, log.mmap_size);
	vqd_destroy(&fx->d);
	close(kick);
	close(call);
	close(logfd);
}

/* A log area larger than its fd: the first flush would write past the end of the file and
 * take SIGBUS, so the area is refused up front (the connection ends, the process lives). */
static void test_log_base_past_fd_end(void **state)
{
	struct fx *fx = *state;
	int logfd = memfd_create("log", MFD_CLOEXEC);
	struct vu_log_area log = { MEM_SIZE / 4096 / 8, 0 };

	assert_true(logfd >= 0);
	assert_int_equal(ftruncate(logfd, 4), 0); /* far smaller than mmap_size */
	handshake(fx, F(VU_F_LOG_ALL));
	whole_mem(fx);
	assert_refused(fx, exchange(fx, VU_SET_LOG_BASE, &log, sizeof(log), &logfd, 1),
		       "past the end of its fd");
	/* an offset that pushes a fitting size past the end is refused as well */
	assert_int_equal(ftruncate(logfd, (off_t)log.mmap_size), 0);
	log.mmap_offset = 4096;
	handshake(fx, F(VU_F_LOG_ALL));
	whole_mem(fx);
	assert_refused(fx, exchange(fx, VU_SET_LOG_BASE, &log, sizeof(log), &logfd, 1),
		       "past the end of its fd");
	close(logfd);
}

/* ---- IOTLB (S10): the device reaches only what the front-end mapped ------------------------ */

#define IOVA(gpa) (0x100000000ull + (gpa))

static void iotlb_msg(struct fx *fx, uint8_t type, uint64_t iova, uint64_t size, uint64_t gpa,
		      uint8_t perm)
{
	struct vhost_iotlb_msg im = { .iova = iova, .size = size, .uaddr = UADDR + gpa,
				      .perm = perm, .type = type };

	assert_int_equal(exchange(fx, VU_IOTLB_MSG, &im, VU_IOTLB_SIZE, NULL, 0), 0);
}

/* The next message on the backend channel is an IOTLB miss; returns its iova. */
static uint64_t expect_miss(int chan, uint8_t perm)
{
	struct vu_hdr h;
	struct vhost_iotlb_msg im;

	assert_int_equal(recv(chan, &h, sizeof(h), MSG_WAITALL), sizeof(h));
	assert_int_equal(h.request, VU_BACKEND_IOTLB_MSG);
	assert_int_equal(h.size, VU_IOTLB_SIZE);
	assert_int_equal(recv(chan, &im, sizeof(im), MSG_WAITALL), sizeof(im));
	assert_int_equal(im.type, VHOST_IOTLB_MISS);
	assert_int_equal(im.perm, perm);
	return im.iova;
}

static void test_iotlb(void **state)
{
	struct fx *fx = *state;
	struct vhost_vring_state num = { 0, QSIZE }, en = { 0, 1 };
	struct vhost_vring_addr a = { .index = 0 };
	int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), call = eventfd(0, EFD_CLOEXEC);
	int err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	eventfd_t v = 0;
	int chan[2];
	struct vqd_buf ok = { IOVA(BUF), 128, true }, ro = { IOVA(BUF + 0x2000), 128, true };
	uint8_t zero[128] = { 0 }, got[128];
	uint64_t miss;
	uint32_t len;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan), 0);
	assert_true(get_u64(fx, VU_GET_FEATURES) & F(VIRTIO_F_ACCESS_PLATFORM));
	handshake_pf(fx, F(VIRTIO_F_ACCESS_PLATFORM), F(VU_PF_BACKEND_REQ));
	assert_int_equal(exchange(fx, VU_SET_BACKEND_REQ_FD, NULL, 0, &chan[0], 1), 0);
	close(chan[0]);
	whole_mem(fx);
	assert_int_equal(vqd_init(&fx->d, &fx->front, RINGS, QSIZE, 0), 0);
	a.desc_user_addr = IOVA(fx->d.desc); /* ring addresses are IOVAs now */
	a.avail_user_addr = IOVA(fx->d.avail);
	a.used_user_addr = IOVA(fx->d.used);
	assert_int_equal(exchange(fx, VU_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_CALL, &(uint64_t){ 0 }, 8, &call, 1), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_ERR, &(uint64_t){ 0 }, 8, &err, 1), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_KICK, &(uint64_t){ 0 }, 8, &kick, 1), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_ENABLE, &en, sizeof(en), NULL, 0), 0);
	/* nothing mapped: the ring cannot start, the back-end asks for its descriptor table */
	miss = expect_miss(chan[1], VHOST_ACCESS_RO);
	assert_int_equal(miss, IOVA(fx->d.desc));
	assert_false(fx->vdev.status & VIRTIO_STATUS_DRIVER_OK);
	/* map the rings (and a writable buffer, and a read-only one): the device starts */
	iotlb_msg(fx, VHOST_IOTLB_UPDATE, IOVA(RINGS), fx->d.end - RINGS, RINGS, VHOST_ACCESS_RW);
	iotlb_msg(fx, VHOST_IOTLB_UPDATE, IOVA(BUF), 4096, BUF, VHOST_ACCESS_WO);
	iotlb_msg(fx, VHOST_IOTLB_UPDATE, IOVA(BUF + 0x2000), 4096, BUF + 0x2000, VHOST_ACCESS_RO);
	assert_true(fx->vdev.status & VIRTIO_STATUS_DRIVER_OK);

	assert_int_equal(gm_write(&fx->front, BUF, zero, sizeof(zero)), 0);
	assert_int_equal(gm_write(&fx->front, BUF + 0x2000, zero, sizeof(zero)), 0);
	assert_true(vqd_add(&fx->d, &ok, 1) >= 0);
	eventfd_write(kick, 1);
	assert_int_equal(vu_server_handle(fx->s, VU_TOKEN_KICK(0)), 0);
	assert_true(vqd_get_used(&fx->d, &len) >= 0);
	assert_int_equal(len, 128);
	assert_int_equal(gm_read(&fx->front, BUF, got, sizeof(got)), 0);
	assert_memory_not_equal(got, zero, sizeof(got)); /* written through the IOVA */

	while (recv(chan[1], got, sizeof(got), MSG_DONTWAIT) > 0) /* older misses (rings) */
		;
	/* an invalidation from below the rings to the top of the IOVA space: the running ring
	 * lost its mappings and must stop; restarting, it asks for them again */
	iotlb_msg(fx, VHOST_IOTLB_INVALIDATE, IOVA(0), UINT64_MAX - IOVA(0), 0, 0);
	assert_int_equal(expect_miss(chan[1], VHOST_ACCESS_RO), IOVA(fx->d.desc));
	iotlb_msg(fx, VHOST_IOTLB_UPDATE, IOVA(RINGS), fx->d.end - RINGS, RINGS, VHOST_ACCESS_RW);
	iotlb_msg(fx, VHOST_IOTLB_UPDATE, IOVA(BUF + 0x2000), 4096, BUF + 0x2000, VHOST_ACCESS_RO);
	assert_true(fx->vdev.status & VIRTIO_STATUS_DRIVER_OK);
	while (recv(chan[1], got, sizeof(got), MSG_DONTWAIT) > 0)
		;
	/* a device-writable buffer on a read-only mapping: a miss for write access, no answer,
	 * refused: the device needs a reset and the page is untouched */
	assert_true(vqd_add(&fx->d, &ro, 1) >= 0);
	eventfd_write(kick, 1);
	assert_int_equal(vu_server_handle(fx->s, VU_TOKEN_KICK(0)), 0);
	assert_int_equal(expect_miss(chan[1], VHOST_ACCESS_WO), IOVA(BUF + 0x2000));
	assert_int_equal(vqd_get_used(&fx->d, &len), -EAGAIN);
	assert_true(fx->vdev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(eventfd_read(err, &v), 0); /* the ring's error eventfd was signalled */
	assert_int_equal(v, 1);
	assert_int_equal(gm_read(&fx->front, BUF + 0x2000, got, sizeof(got)), 0);
	assert_memory_equal(got, zero, sizeof(got));
	vqd_destroy(&fx->d);
	close(chan[1]);
	close(kick);
	close(call);
	close(err);
}

/* A front-end that never reads its backend channel: the miss the back-end sends must not
 * block it for ever (it did: the whole back-end hung in sendmsg with the backend lock held).
 * The channel is given up after a bounded wait; the connection itself is still served. */
static void test_backend_channel_not_read(void **state)
{
	struct fx *fx = *state;
	struct vhost_vring_state num = { 0, QSIZE }, en = { 0, 1 };
	struct vhost_vring_addr a = { .index = 0, .desc_user_addr = IOVA(RINGS),
				      .avail_user_addr = IOVA(RINGS + 0x1000),
				      .used_user_addr = IOVA(RINGS + 0x2000) };
	int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), chan[2];
	uint8_t junk[4096] = { 0 };
	struct timespec t0, t1;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan), 0);
	while (send(chan[0], junk, sizeof(junk), MSG_DONTWAIT) > 0) /* the channel is full */
		;
	handshake_pf(fx, F(VIRTIO_F_ACCESS_PLATFORM), F(VU_PF_BACKEND_REQ));
	assert_int_equal(exchange(fx, VU_SET_BACKEND_REQ_FD, NULL, 0, &chan[0], 1), 0);
	close(chan[0]);
	whole_mem(fx);
	assert_int_equal(exchange(fx, VU_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	assert_int_equal(exchange(fx, VU_SET_VRING_KICK, &(uint64_t){ 0 }, 8, &kick, 1), 0);
	alarm(30); /* a hang fails the test run instead of stalling it */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* the ring start wants its areas translated: the misses cannot be delivered */
	assert_int_equal(exchange(fx, VU_SET_VRING_ENABLE, &en, sizeof(en), NULL, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	alarm(0);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	assert_true(vu_server_connected(fx->s));
	assert_true(get_u64(fx, VU_GET_FEATURES) & F(VIRTIO_F_VERSION_1));
	close(chan[1]);
	close(kick);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_short_header),
		T(test_short_payload),
		T(test_oversized),
		T(test_wrong_size),
		T(test_bad_header),
		T(test_wrong_fds),
		T(test_vring_fd_unknown_bits),
		T(test_feature_gates),
		T(test_mem_table_overlap),
		T(test_mem_table_range),
		T(test_vring_outside_memory),
		T(test_vring_log_addr_wraps),
		T(test_reply_ack),
		T(test_request_and_dirty_log),
		T(test_log_base_past_fd_end),
		T(test_iotlb),
		T(test_backend_channel_not_read),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
