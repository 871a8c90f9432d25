/* Unit tests of the vhost-user front-end (src/vhost-user/frontend.c).
 *
 * Against vireo's own back-end library: a vu_server with virtio-blk on a temporary file runs
 * an epoll loop in a thread (the blk queue thread reads the kick eventfd itself); the front-end negotiates, shares a memfd, reads the config,
 * starts a ring laid out by the mock driver (vq_driver.h), writes and reads sectors through
 * it, stops the ring (GET_VRING_BASE says how far the device got), and restarts it there.
 *
 * Through the remote device (remote_dev.h): the same backend, listening on a socket, programmed
 * through the device-ops as a transport would (status, features, queue, DRIVER_OK, kicks,
 * callbacks, reset and a second start).
 *
 * Against a hostile "backend" (the other end of a socketpair, scripted by the test): replies
 * to another request, of the wrong size, with fds, without the reply flag, a REPLY_ACK
 * failure status and no reply at all must each be an error, never a hang or a crash. */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/virtio/blk.h"
#include "memory/guest_memory.h"
#include "util/log.h"
#include "vhost-user/frontend.h"
#include "vhost-user/remote_dev.h"
#include "vhost-user/vu_msg.h"
#include "vhost-user/vu_server.h"
#include "vq_driver.h"

#define F(bit) (1ull << (bit))
#define MEM_SIZE (1u << 20)
#define RINGS 0x10000
#define HDR 0x40000
#define DATA 0x41000
#define STATUS 0x48000
#define QSIZE 64
#define DISK_SIZE (1u << 20)
#define TOKEN_STOP 1u

/* ---- a vireo back-end in a thread ------------------------------------------------------- */

struct backend {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct vu_server *s;
	int epfd, stopfd;
	pthread_t thread;
	char path[64];
	char sock_path[80];           /* listening socket (remote device tests) */
};

static int be_watch(void *opaque, int fd, uint32_t token)
{
	struct backend *b = opaque;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = token };

	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) && errno == EEXIST)
		epoll_ctl(b->epfd, EPOLL_CTL_MOD, fd, &ev);
	return 0;
}

static void be_unwatch(void *opaque, int fd)
{
	struct backend *b = opaque;

	epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void *be_loop(void *arg)
{
	struct backend *b = arg;

	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(b->epfd, evs, 8, -1);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == TOKEN_STOP)
				return NULL;
			vu_server_handle(b->s, (uint32_t)evs[i].data.u64);
		}
	}
}

struct fx {
	struct backend be;
	struct guest_memory gm;       /* the front-end's guest RAM (one memfd region) */
	struct vu_fe *fe;
	struct vqd d;
	int kick, call;
};

static void be_start(struct backend *b, int sock)
{
	struct virtio_blk_config_opts o = { .path = b->path, .queue_size = QSIZE };
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TOKEN_STOP };
	struct vu_server_config cfg;
	int fd;

	snprintf(b->path, sizeof(b->path), "/tmp/vireo-fe-test.XXXXXX");
	fd = mkstemp(b->path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, DISK_SIZE), 0);
	close(fd);
	assert_int_equal(gm_init(&b->gm), 0);
	assert_int_equal(virtio_blk_create(&b->vdev, &b->gm, &o), 0);
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->stopfd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->stopfd, &ev), 0);
	cfg = (struct vu_server_config){
		.name = "test-blk", .dev = virtio_device_handle(&b->vdev), .gm = &b->gm,
		.quiesce = virtio_device_quiesce, .watch = { be_watch, be_unwatch, b },
		.set_kick_fd = virtio_device_set_kick_fd, /* the queue thread reads kicks itself */
		.set_iotlb = virtio_device_set_iotlb,     /* as `vireo backend` has it */
	};
	assert_int_equal(vu_server_create(&cfg, &b->s), 0);
	if (sock >= 0) {
		assert_int_equal(vu_server_adopt(b->s, sock), 0);
	} else {
		snprintf(b->sock_path, sizeof(b->sock_path), "%s.sock", b->path);
		assert_int_equal(vu_server_listen(b->s, b->sock_path), 0);
	}
	assert_int_equal(pthread_create(&b->thread, NULL, be_loop, b), 0);
}

static void be_stop(struct backend *b)
{
	eventfd_write(b->stopfd, 1);
	pthread_join(b->thread, NULL);
	vu_server_destroy(b->s);
	virtio_device_destroy(&b->vdev);
	gm_destroy(&b->gm);
	close(b->epfd);
	close(b->stopfd);
	unlink(b->path);
	if (b->sock_path[0])
		unlink(b->sock_path);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct vu_fe_config cfg;
	int sv[2];

	assert_non_null(fx);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	be_start(&fx->be, sv[0]);
	assert_int_equal(gm_init(&fx->gm), 0);
	assert_true(gm_add_ram(&fx->gm, 0, MEM_SIZE, 0) >= 0);
	cfg = (struct vu_fe_config){ .name = "test", .gm = &fx->gm };
	assert_int_equal(vu_fe_adopt(&cfg, sv[1], &fx->fe), 0);
	fx->kick = eventfd(0, EFD_CLOEXEC);
	fx->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	vu_fe_destroy(fx->fe);
	be_stop(&fx->be);
	vqd_destroy(&fx->d);
	gm_destroy(&fx->gm);
	close(fx->kick);
	close(fx->call);
	free(fx);
	return 0;
}

static void start_ring(struct fx *fx, uint16_t base)
{
	struct vu_fe_vring r = {
		.num = QSIZE, .desc = fx->d.desc, .avail = fx->d.avail, .used = fx->d.used,
		.base = base, .kick_fd = fx->kick, .call_fd = fx->call,
	};

	assert_int_equal(vu_fe_vring_start(fx->fe, 0, &r), 0);
}

/* One virtio-blk request (header, data, status) through the ring; waits for the call. */
static uint8_t blk_request(struct fx *fx, uint32_t type, uint64_t sector, uint32_t len)
{
	struct virtio_blk_outhdr h = { .type = htole32(type), .sector = htole64(sector) };
	struct vqd_buf b[] = {
		{ HDR, sizeof(h), false },
		{ DATA, len, type == VIRTIO_BLK_T_IN },
		{ STATUS, 1, true },
	};
	struct pollfd p = { .fd = fx->call, .events = POLLIN };
	uint8_t status = 0xff;
	uint32_t used_len;
	eventfd_t v;
	int id;

	assert_int_equal(gm_write(&fx->gm, HDR, &h, sizeof(h)), 0);
	assert_int_equal(gm_write(&fx->gm, STATUS, &status, 1), 0);
	vqd_enable_interrupts(&fx->d, true, fx->d.last_used); /* a call for the next used entry */
	id = vqd_add(&fx->d, b, 3);
	assert_true(id >= 0);
	if (vqd_kick_needed(&fx->d))
		eventfd_write(fx->kick, 1);
	do {
		assert_int_equal(poll(&p, 1, 5000), 1);
		eventfd_read(fx->call, &v);
	} while (vqd_get_used(&fx->d, &used_len) != id);
	assert_int_equal(gm_read(&fx->gm, STATUS, &status, 1), 0);
	return status;
}

/* Set-up, config, I/O through the ring, stop (base) and restart from the base. */
static void test_blk_round_trip(void **state)
{
	struct fx *fx = *state;
	uint64_t feat = vu_fe_device_features(fx->fe), cap = 0;
	uint8_t pattern[4096], back[4096];
	uint16_t base = 0;
	FILE *f;

	assert_true(feat & F(VIRTIO_F_VERSION_1));
	assert_false(feat & F(VU_F_PROTOCOL_FEATURES)); /* vhost-user's own bits are hidden */
	assert_true(vu_fe_protocol_features(fx->fe) & F(VU_PF_REPLY_ACK));
	assert_true(vu_fe_protocol_features(fx->fe) & F(VU_PF_CONFIG));
	assert_int_equal(vu_fe_queue_num(fx->fe), 1);
	assert_int_equal(vu_fe_set_features(fx->fe, F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_EVENT_IDX)), 0);
	assert_int_equal(vu_fe_get_config(fx->fe, 0, &cap, sizeof(cap)), 0);
	assert_int_equal(le64toh(cap), DISK_SIZE / 512);
	assert_int_equal(vu_fe_set_mem_table(fx->fe), 0);
	assert_int_equal(vqd_init(&fx->d, &fx->gm, RINGS, QSIZE, VQD_F_EVENT_IDX), 0);
	start_ring(fx, 0);

	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(gm_write(&fx->gm, DATA, pattern, sizeof(pattern)), 0);
	assert_int_equal(blk_request(fx, VIRTIO_BLK_T_OUT, 16, 4096), VIRTIO_BLK_S_OK);
	f = fopen(fx->be.path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 16 * 512, SEEK_SET), 0);
	assert_int_equal(fread(back, 1, sizeof(back), f), sizeof(back));
	fclose(f);
	assert_memory_equal(back, pattern, sizeof(back));

	assert_int_equal(vu_fe_vring_stop(fx->fe, 0, &base), 0);
	assert_int_equal(base, 1); /* one request popped */
	start_ring(fx, base);
	memset(back, 0, sizeof(back));
	assert_int_equal(gm_write(&fx->gm, DATA, back, sizeof(back)), 0);
	assert_int_equal(blk_request(fx, VIRTIO_BLK_T_IN, 16, 4096), VIRTIO_BLK_S_OK);
	assert_int_equal(gm_read(&fx->gm, DATA, back, sizeof(back)), 0);
	assert_memory_equal(back, pattern, sizeof(back));
	/* a request past the end comes back as an error, the connection stays fine */
	assert_int_equal(blk_request(fx, VIRTIO_BLK_T_IN, DISK_SIZE / 512, 4096),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(vu_fe_vring_stop(fx->fe, 0, &base), 0);
	assert_int_equal(base, 3);
	assert_false(vu_fe_broken(fx->fe));
}

/* What the front-end refuses to send. */
static void test_local_checks(void **state)
{
	struct fx *fx = *state;
	struct vu_fe_vring r = { .num = QSIZE, .desc = MEM_SIZE - 16, .avail = RINGS,
				 .used = RINGS + 0x1000, .kick_fd = -1, .call_fd = -1 };
	uint8_t buf[8];

	assert_int_equal(vu_fe_set_features(fx->fe, F(63)), -EINVAL); /* not offered */
	assert_int_equal(vu_fe_vring_start(fx->fe, 0, &r), -EFAULT);   /* desc leaves memory */
	r.desc = RINGS;
	r.num = 0;
	assert_int_equal(vu_fe_vring_start(fx->fe, 0, &r), -EINVAL);
	r.num = QSIZE;
	assert_int_equal(vu_fe_vring_start(fx->fe, 5, &r), -EINVAL);   /* one queue only */
	assert_int_equal(vu_fe_get_config(fx->fe, 250, buf, 8), -EINVAL);
	assert_false(vu_fe_broken(fx->fe));
}

/* ---- a scripted, hostile back-end -------------------------------------------------------- */

struct fake {
	struct guest_memory gm;
	struct vu_fe *fe;
	int peer;                     /* the "backend's" end */
	int fe_sock;                  /* the front-end's end (owned by fe) */
};

static void fake_send(int sock, uint32_t req, uint32_t flags, const void *p, uint32_t size,
		      int fd)
{
	struct vu_hdr h = { req, flags, size };

	assert_int_equal(vu_msg_send(sock, &h, p, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0), 0);
}

static void fake_u64(int sock, uint32_t req, uint64_t v)
{
	fake_send(sock, req, VU_VERSION | VU_FLAG_REPLY, &v, 8, -1);
}

/* A front-end connected to a fake that offers protocol features with REPLY_ACK (and MQ). */
static int fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct vu_fe_config cfg;
	int sv[2];

	assert_non_null(f);
	assert_int_equal(gm_init(&f->gm), 0);
	assert_true(gm_add_ram(&f->gm, 0, MEM_SIZE, 0) >= 0);
	cfg = (struct vu_fe_config){ .name = "fake", .gm = &f->gm, .timeout_ms = 200 };
	*state = f;
	/* the replies, queued before the requests are even sent (SET_OWNER has none: it goes
	 * before REPLY_ACK is negotiated) */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->peer = sv[0];
	f->fe_sock = sv[1];
	fake_u64(f->peer, VU_GET_FEATURES, F(VIRTIO_F_VERSION_1) | F(VU_F_PROTOCOL_FEATURES));
	fake_u64(f->peer, VU_GET_PROTOCOL_FEATURES, F(VU_PF_REPLY_ACK) | F(VU_PF_MQ));
	fake_u64(f->peer, VU_GET_QUEUE_NUM, 2);
	assert_int_equal(vu_fe_adopt(&cfg, sv[1], &f->fe), 0);
	assert_int_equal(vu_fe_queue_num(f->fe), 2);
	assert_int_equal(vu_fe_protocol_features(f->fe), F(VU_PF_REPLY_ACK) | F(VU_PF_MQ));
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;

	vu_fe_destroy(f->fe);
	close(f->peer);
	gm_destroy(&f->gm);
	free(f);
	return 0;
}

static void test_fake_good_ack(void **state)
{
	struct fake *f = *state;

	fake_u64(f->peer, VU_SET_FEATURES, 0);
	assert_int_equal(vu_fe_set_features(f->fe, F(VIRTIO_F_VERSION_1)), 0);
	fake_u64(f->peer, VU_SET_FEATURES, 22); /* a failure status */
	assert_int_equal(vu_fe_set_features(f->fe, F(VIRTIO_F_VERSION_1)), -EIO);
	assert_false(vu_fe_broken(f->fe)); /* a refusal is not a protocol error */
}

static void test_fake_wrong_request(void **state)
{
	struct fake *f = *state;

	fake_u64(f->peer, VU_SET_OWNER, 0);
	assert_int_equal(vu_fe_set_features(f->fe, F(VIRTIO_F_VERSION_1)), -EPROTO);
	assert_true(vu_fe_broken(f->fe));
	/* broken: nothing more is sent */
	assert_int_equal(vu_fe_set_features(f->fe, F(VIRTIO_F_VERSION_1)), -ENOTCONN);
}

static void test_fake_wrong_size(void **state)
{
	struct fake *f = *state;
	uint32_t small = 0;

	fake_send(f->peer, VU_SET_FEATURES, VU_VERSION | VU_FLAG_REPLY, &small, 4, -1);
	assert_int_equal(vu_fe_set_features(f->fe, F(VIRTIO_F_VERSION_1)), -EPROTO);
	assert_true(vu_fe_broken(f->fe));
}

static void test_fake_no_reply_flag(void **state)
{
	struct fake *f = *state;
	uint64_t z = 0;

	fake_send(f->peer, VU_SET_FEATURES, VU_VERSION, &z, 8, -1);
	assert_int_equal(vu_fe_set_features(f->fe, F(VIRTIO_F_VERSION_1)), -EPROTO);
}

static void test_fake_reply_with_fd(void **state)
{
	struct fake *f = *state;
	uint64_t z = 0;
	int fd = eventfd(0, EFD_CLOEXEC);

	fake_send(f->peer, VU_SET_FEATURES, VU_VERSION | VU_FLAG_REPLY, &z, 8, fd);
	close(fd);
	assert_int_equal(vu_fe_set_features(f->fe, F(VIRTIO_F_VERSION_1)), -EPROTO);
}

static void test_fake_oversized(void **state)
{
	struct fake *f = *state;
	struct vu_hdr h = { VU_SET_FEATURES, VU_VERSION | VU_FLAG_REPLY, 1u << 20 };

	assert_int_equal(send(f->peer, &h, sizeof(h), 0), sizeof(h));
	assert_true(vu_fe_set_features(f->fe, F(VIRTIO_F_VERSION_1)) < 0);
	assert_true(vu_fe_broken(f->fe));
}

static void test_fake_silent(void **state)
{
	struct fake *f = *state;
	uint16_t base;

	assert_int_equal(vu_fe_vring_stop(f->fe, 0, &base), -ETIMEDOUT);
	assert_true(vu_fe_broken(f->fe));
}

/* A back-end that stops reading: the request cannot be sent, and the front-end (a vCPU thread
 * doing a config access, say) must get an error after its timeout, not block for ever. */
static void test_fake_not_reading(void **state)
{
	struct fake *f = *state;
	uint8_t junk[4096] = { 0 };

	while (send(f->fe_sock, junk, sizeof(junk), MSG_DONTWAIT) > 0) /* the socket is full */
		;
	alarm(30); /* a hang fails the test run instead of stalling it */
	assert_true(vu_fe_set_features(f->fe, F(VIRTIO_F_VERSION_1)) < 0);
	alarm(0);
	assert_true(vu_fe_broken(f->fe));
}

static void test_fake_vring_base_other_ring(void **state)
{
	struct fake *f = *state;
	struct vhost_vring_state st = { .index = 1, .num = 7 };
	uint16_t base = 0;

	fake_u64(f->peer, VU_SET_VRING_ENABLE, 0);
	fake_send(f->peer, VU_GET_VRING_BASE, VU_VERSION | VU_FLAG_REPLY, &st, sizeof(st), -1);
	assert_int_equal(vu_fe_vring_stop(f->fe, 0, &base), -EPROTO);
	assert_int_equal(base, 0);
}

static void test_fake_config_other_range(void **state)
{
	struct fake *f = *state;
	uint8_t buf[8];

	/* CONFIG was not negotiated with this fake */
	assert_int_equal(vu_fe_get_config(f->fe, 0, buf, 8), -EOPNOTSUPP);
}

/* ---- the remote device: device-ops over the front-end ---------------------------------- */

struct rfx {
	struct backend be;
	struct guest_memory gm;
	struct vu_remote *rd;
	struct virtio_dev_handle h;
	struct vqd d;
	int irq;                      /* written by the queue callback */
};

static void remote_cb(void *opaque, unsigned idx)
{
	struct rfx *r = opaque;

	if (idx == 0)
		eventfd_write(r->irq, 1);
}

static uint64_t remote_hidden; /* hidden_features of the next remote_setup */

static int remote_setup(void **state)
{
	struct rfx *r = calloc(1, sizeof(*r));
	struct vu_remote_config cfg;

	assert_non_null(r);
	be_start(&r->be, -1);
	assert_int_equal(gm_init(&r->gm), 0);
	assert_true(gm_add_ram(&r->gm, 0, MEM_SIZE, 0) >= 0);
	cfg = (struct vu_remote_config){
		.name = "rblk", .socket = r->be.sock_path, .gm = &r->gm,
		.device_id = VIRTIO_ID_BLOCK, .queue_max = QSIZE,
		.config_size = sizeof(struct virtio_blk_config), .hidden_features = remote_hidden,
	};
	assert_int_equal(vu_remote_create(&cfg, &r->rd), 0);
	r->h = vu_remote_handle(r->rd);
	r->irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	*state = r;
	return 0;
}

static int remote_teardown(void **state)
{
	struct rfx *r = *state;

	vu_remote_destroy(r->rd);
	be_stop(&r->be);
	vqd_destroy(&r->d);
	gm_destroy(&r->gm);
	close(r->irq);
	free(r);
	return 0;
}

/* The transport's part: status, features, queue 0, DRIVER_OK. */
static void remote_start(struct rfx *r, uint64_t features)
{
	const struct virtio_device_ops *ops = r->h.ops;
	void *dev = r->h.dev;

	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(ops->set_features(dev, features), 0);
	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			     VIRTIO_STATUS_FEATURES_OK);
	assert_true(ops->get_status(dev) & VIRTIO_STATUS_FEATURES_OK);
	vqd_destroy(&r->d);
	assert_int_equal(vqd_init(&r->d, &r->gm, RINGS, QSIZE, VQD_F_EVENT_IDX), 0);
	assert_int_equal(ops->set_vq_num(dev, 0, QSIZE), 0);
	assert_int_equal(ops->set_vq_address(dev, 0, r->d.desc, r->d.avail, r->d.used), 0);
	ops->set_vq_cb(dev, 0, remote_cb, r);
	assert_int_equal(ops->set_vq_ready(dev, 0, true), 0);
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(ops->get_status(dev) & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET),
			 VIRTIO_STATUS_DRIVER_OK);
}

static uint8_t remote_request(struct rfx *r, uint32_t type, uint64_t sector, uint32_t len)
{
	struct virtio_blk_outhdr h = { .type = htole32(type), .sector = htole64(sector) };
	struct vqd_buf b[] = {
		{ HDR, sizeof(h), false },
		{ DATA, len, type == VIRTIO_BLK_T_IN },
		{ STATUS, 1, true },
	};
	struct pollfd p = { .fd = r->irq, .events = POLLIN };
	uint8_t status = 0xff;
	uint32_t used_len;
	eventfd_t v;
	int id;

	assert_int_equal(gm_write(&r->gm, HDR, &h, sizeof(h)), 0);
	assert_int_equal(gm_write(&r->gm, STATUS, &status, 1), 0);
	vqd_enable_interrupts(&r->d, true, r->d.last_used);
	id = vqd_add(&r->d, b, 3);
	assert_true(id >= 0);
	if (vqd_kick_needed(&r->d))
		r->h.ops->kick_vq(r->h.dev, 0);
	do {
		assert_int_equal(poll(&p, 1, 5000), 1); /* the queue callback ran */
		eventfd_read(r->irq, &v);
	} while (vqd_get_used(&r->d, &used_len) != id);
	assert_int_equal(gm_read(&r->gm, STATUS, &status, 1), 0);
	return status;
}

static void test_remote_blk(void **state)
{
	struct rfx *r = *state;
	const struct virtio_device_ops *ops = r->h.ops;
	void *dev = r->h.dev;
	struct virtio_vq_state st;
	uint8_t pattern[4096], back[4096];
	uint64_t cap = 0;

	assert_int_equal(ops->get_device_id(dev), VIRTIO_ID_BLOCK);
	assert_int_equal(ops->get_num_queues(dev), 1);
	assert_int_equal(ops->get_vq_num_max(dev, 0), QSIZE);
	assert_int_equal(ops->get_vq_num_max(dev, 1), 0);
	assert_int_equal(ops->get_config_size(dev), sizeof(struct virtio_blk_config));
	ops->get_config(dev, 0, &cap, sizeof(cap));
	assert_int_equal(le64toh(cap), DISK_SIZE / 512);
	assert_true(ops->get_features(dev) & F(VIRTIO_F_VERSION_1));
	/* The backend offers ACCESS_PLATFORM (it has an IOTLB), but this front-end has no vIOMMU
	 * and sends no IOTLB updates: offered to the guest, a Linux driver would accept it (it
	 * keeps every transport feature offered) and the backend would then take ring and buffer
	 * addresses for IOVAs it can never translate. */
	assert_false(ops->get_features(dev) & F(VIRTIO_F_ACCESS_PLATFORM));
	/* Packed rings neither: the front-end keeps a 16-bit split-ring base (a packed ring's
	 * SET_VRING_BASE carries wrap counters, starting at 1, and GET_VRING_BASE 32 bits), so
	 * a driver that took RING_PACKED (Linux does) got a ring the backend never served. */
	assert_false(ops->get_features(dev) & F(VIRTIO_F_RING_PACKED));

	remote_start(r, F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_EVENT_IDX));
	assert_int_equal(ops->set_vq_num(dev, 0, 8), -EBUSY); /* running */
	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 13 + 1);
	assert_int_equal(gm_write(&r->gm, DATA, pattern, sizeof(pattern)), 0);
	assert_int_equal(remote_request(r, VIRTIO_BLK_T_OUT, 8, 4096), VIRTIO_BLK_S_OK);
	memset(back, 0, sizeof(back));
	assert_int_equal(gm_write(&r->gm, DATA, back, sizeof(back)), 0);
	assert_int_equal(remote_request(r, VIRTIO_BLK_T_IN, 8, 4096), VIRTIO_BLK_S_OK);
	assert_int_equal(gm_read(&r->gm, DATA, back, sizeof(back)), 0);
	assert_memory_equal(back, pattern, sizeof(back));

	/* quiesced: the ring stops on the backend and the base says how far it got */
	assert_int_equal(ops->get_vq_state(dev, 0, &st), -EBUSY); /* running */
	vu_remote_quiesce(dev);
	assert_int_equal(ops->get_vq_state(dev, 0, &st), 0);
	assert_int_equal(st.last_avail_idx, 2);
	assert_int_equal(st.used_idx, 2);
	ops->reset(dev);
	assert_int_equal(ops->get_status(dev), 0);
	assert_int_equal(ops->get_vq_state(dev, 0, &st), 0);
	assert_int_equal(st.last_avail_idx, 0); /* a reset starts the rings over */

	/* and the device works again after a fresh start */
	remote_start(r, F(VIRTIO_F_VERSION_1));
	assert_int_equal(remote_request(r, VIRTIO_BLK_T_IN, 8, 4096), VIRTIO_BLK_S_OK);
	assert_int_equal(gm_read(&r->gm, DATA, back, sizeof(back)), 0);
	assert_memory_equal(back, pattern, sizeof(back));
}

/* Features the backend refuses keep FEATURES_OK clear; queues cannot be readied before it. */
static void test_remote_refusals(void **state)
{
	struct rfx *r = *state;
	const struct virtio_device_ops *ops = r->h.ops;
	void *dev = r->h.dev;

	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(ops->set_vq_address(dev, 0, RINGS, RINGS + 0x1000, RINGS + 0x2000), 0);
	assert_int_equal(ops->set_vq_ready(dev, 0, true), -EINVAL); /* before FEATURES_OK */
	assert_int_equal(ops->set_features(dev, F(VIRTIO_F_VERSION_1) | F(62)), 0);
	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			     VIRTIO_STATUS_FEATURES_OK);
	assert_false(ops->get_status(dev) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(ops->set_vq_num(dev, 0, QSIZE * 2), -EINVAL);
	assert_int_equal(ops->set_vq_num(dev, 3, QSIZE), -EINVAL);
	assert_int_equal(vu_remote_kick_fd(r->rd, 3), -1);
	assert_true(vu_remote_kick_fd(r->rd, 0) >= 0);
}

static int remote_setup_hidden(void **state)
{
	remote_hidden = F(VIRTIO_F_EVENT_IDX);
	return remote_setup(state);
}

/* A feature the VMM hides (vm_virtio.c: net's control-queue features) is not offered, and a
 * driver that accepts it anyway does not get FEATURES_OK; without it the device works. */
static void test_remote_hidden_features(void **state)
{
	struct rfx *r = *state;
	const struct virtio_device_ops *ops = r->h.ops;
	void *dev = r->h.dev;

	remote_hidden = 0;
	assert_false(ops->get_features(dev) & F(VIRTIO_F_EVENT_IDX));
	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(ops->set_features(dev, F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_EVENT_IDX)), 0);
	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			     VIRTIO_STATUS_FEATURES_OK);
	assert_false(ops->get_status(dev) & VIRTIO_STATUS_FEATURES_OK);
	ops->set_status(dev, 0);
	remote_start(r, F(VIRTIO_F_VERSION_1));
	assert_int_equal(remote_request(r, VIRTIO_BLK_T_IN, 0, 512), VIRTIO_BLK_S_OK);
}

static void test_connect_nobody(void **state)
{
	struct guest_memory gm;
	struct vu_fe_config cfg = { .name = "none", .gm = &gm };
	struct vu_fe *fe = NULL;

	(void)state;
	assert_int_equal(vu_fe_connect(&cfg, "/tmp/vireo-no-such-socket", &fe), -ENOENT);
	assert_null(fe);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blk_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_checks, setup, teardown),
#define FK(t) cmocka_unit_test_setup_teardown(t, fake_setup, fake_teardown)
		FK(test_fake_good_ack),
		FK(test_fake_wrong_request),
		FK(test_fake_wrong_size),
		FK(test_fake_no_reply_flag),
		FK(test_fake_reply_with_fd),
		FK(test_fake_oversized),
		FK(test_fake_silent),
		FK(test_fake_not_reading),
		FK(test_fake_vring_base_other_ring),
		FK(test_fake_config_other_range),
		cmocka_unit_test(test_connect_nobody),
		cmocka_unit_test_setup_teardown(test_remote_blk, remote_setup, remote_teardown),
		cmocka_unit_test_setup_teardown(test_remote_refusals, remote_setup, remote_teardown),
		cmocka_unit_test_setup_teardown(test_remote_hidden_features, remote_setup_hidden,
						remote_teardown),
	};

	if (getenv("VIREO_DEBUG"))
		log_set_level(LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
