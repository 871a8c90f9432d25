/* Unit tests of virtio-net's tap host side (src/devices/virtio/net_tap.c and the tap paths of
 * net_dp.c): in a private network namespace (unshare, so nothing leaks onto the host) the
 * device opens a tap, the test watches the other end with an AF_PACKET socket. Frames the
 * guest sends come out of the tap byte for byte; frames injected into the tap arrive in the
 * guest's receive buffers (spread over several small mergeable buffers, num_buffers right);
 * with no receive buffers a frame waits in the kernel until buffers come; hostile tx chains
 * are refused and counted. Needs root and /dev/net/tun: skipped otherwise. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>

#include "devices/virtio/net.h"
#include "memory/guest_memory.h"
#include "vq_driver.h"

#define F(bit) (1ull << (bit))
#define MEM (2u << 20)
#define QSIZE 64
#define NQ 3
#define RINGS(q) (0x1000 + 0x2000ull * (q))
#define TXBUF 0x10000
#define RXBUF 0x40000
#define HDR VIRTIO_NET_HDR_LEN
#define ETHERTYPE 0x88b5 /* IEEE local experimental: nothing else in the namespace sends it */
#define TAP "vireo-ut0"

struct fx {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct virtio_dev_handle h;
	struct vqd d[NQ];
	uint64_t rx_addr[QSIZE];
	unsigned rx_next;
	int pkt; /* AF_PACKET socket on the tap */
};

static bool can_run;

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), rc;

	if (fd < 0)
		return -1;
	rc = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return rc;
}

/* A private network namespace without IPv6 (no router solicitations on the tap). */
static int group_setup(void **state)
{
	(void)state;
	can_run = geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0 &&
		  unshare(CLONE_NEWNET) == 0;
	if (can_run)
		write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	return 0;
}

static int if_up(const char *name)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (!rc)
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return rc;
}

static int setup(void **state)
{
	struct fx *fx;
	struct virtio_net_opts o = { .tap = TAP, .queue_size = QSIZE };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE) };

	if (!can_run) {
		*state = NULL;
		return 0;
	}
	fx = test_calloc(1, sizeof(*fx));
	assert_int_equal(gm_init(&fx->gm), 0);
	assert_true(gm_add_ram(&fx->gm, 0, MEM, 0) >= 0);
	assert_int_equal(virtio_net_create(&fx->vdev, &fx->gm, &o), 0);
	fx->h = virtio_device_handle(&fx->vdev);
	assert_int_equal(if_up(TAP), 0);
	fx->pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE));
	assert_true(fx->pkt >= 0);
	sll.sll_ifindex = (int)if_nametoindex(TAP);
	assert_true(sll.sll_ifindex > 0);
	assert_int_equal(bind(fx->pkt, (struct sockaddr *)&sll, sizeof(sll)), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (!fx)
		return 0;
	close(fx->pkt);
	virtio_device_destroy(&fx->vdev);
	for (unsigned q = 0; q < NQ; q++)
		vqd_destroy(&fx->d[q]);
	gm_destroy(&fx->gm);
	test_free(fx);
	return 0;
}

#define NEED_TAP(fx)                                                                     \
	do {                                                                              \
		if (!(fx)) {                                                              \
			print_message("skipped: needs root, /dev/net/tun and unshare\n"); \
			skip();                                                           \
		}                                                                         \
	} while (0)

static void bring_up(struct fx *fx, uint64_t net_features)
{
	const struct virtio_device_ops *ops = fx->h.ops;
	void *dev = fx->h.dev;
	uint64_t want = F(VIRTIO_F_VERSION_1) | net_features;

	assert_int_equal(ops->get_features(dev) & want, want);
	ops->set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(ops->set_features(dev, want), 0);
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < NQ; q++) {
		struct vqd *d = &fx->d[q];

		assert_int_equal(vqd_init(d, &fx->gm, RINGS(q), QSIZE, VQD_F_EVENT_IDX), 0);
		assert_int_equal(ops->set_vq_num(dev, q, QSIZE), 0);
		assert_int_equal(ops->set_vq_address(dev, q, d->desc, d->avail, d->used), 0);
		assert_int_equal(ops->set_vq_ready(dev, q, true), 0);
	}
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_DRIVER_OK);
	assert_true(ops->get_status(dev) & VIRTIO_STATUS_DRIVER_OK);
}

static void add_rx(struct fx *fx, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = RXBUF + (fx->rx_next++ % QSIZE) * 0x1000ull;
		struct vqd_buf b = { gpa, size, true };
		int id = vqd_add(&fx->d[0], &b, 1);

		assert_true(id >= 0);
		fx->rx_addr[id] = gpa;
	}
	fx->h.ops->kick_vq(fx->h.dev, 0);
}

static size_t make_frame(uint8_t *f, size_t len, unsigned seed)
{
	memset(f, 0xff, 6);                                             /* broadcast */
	memcpy(f + 6, ((uint8_t[]){ 0x02, 0, 0, 0, 0, 0x42 }), 6);
	f[12] = ETHERTYPE >> 8;
	f[13] = ETHERTYPE & 0xff;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(i * 13 + seed);
	return len;
}

/* The next frame of our ethertype on the tap's far side, or -1 after two seconds. */
static ssize_t tap_recv(struct fx *fx, uint8_t *buf, size_t len)
{
	struct pollfd p = { fx->pkt, POLLIN, 0 };

	if (poll(&p, 1, 2000) != 1)
		return -1;
	return recv(fx->pkt, buf, len, 0);
}

static int send_tx(struct fx *fx, const struct vqd_buf *b, unsigned n)
{
	int id = vqd_add(&fx->d[1], b, n);

	assert_true(id >= 0);
	fx->h.ops->kick_vq(fx->h.dev, 1);
	return id;
}

/* Guest -> tap: the frame comes out unchanged; the tx chain is returned. */
static void test_tap_tx(void **state)
{
	struct fx *fx = *state;
	uint8_t f[1000], got[2000], hdr[HDR] = { 0 };
	struct vqd_buf b[2] = { { TXBUF, HDR, false }, { TXBUF + 0x100, sizeof(f), false } };
	struct virtio_net_stats s;
	uint32_t len;
	int id;

	NEED_TAP(fx);
	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF));
	make_frame(f, sizeof(f), 1);
	assert_int_equal(gm_write(&fx->gm, TXBUF, hdr, HDR), 0);
	assert_int_equal(gm_write(&fx->gm, TXBUF + 0x100, f, sizeof(f)), 0);
	id = send_tx(fx, b, 2);
	assert_int_equal(tap_recv(fx, got, sizeof(got)), sizeof(f));
	assert_memory_equal(got, f, sizeof(f));
	assert_int_equal(vqd_wait_used(&fx->d[1], &len), id);
	virtio_net_get_stats(&fx->vdev, &s);
	assert_int_equal(s.tx_packets, 1);
	assert_int_equal(s.tx_bytes, sizeof(f));
}

/* Tap -> guest over three 400-byte mergeable buffers (the part beyond the first buffer goes
 * through the bounce buffer). */
static void test_tap_rx_mergeable(void **state)
{
	struct fx *fx = *state;
	uint8_t f[1000], got[HDR + 1000];
	struct virtio_net_hdr_v1 h;
	size_t have = 0;

	NEED_TAP(fx);
	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF));
	add_rx(fx, 3, 400);
	make_frame(f, sizeof(f), 2);
	assert_int_equal(send(fx->pkt, f, sizeof(f), 0), sizeof(f));
	for (int k = 0; k < 3; k++) {
		uint32_t len = 0;
		int id = vqd_wait_used(&fx->d[0], &len);

		assert_true(id >= 0);
		assert_int_equal(len, k < 2 ? 400 : HDR + sizeof(f) - 800);
		assert_int_equal(gm_read(&fx->gm, fx->rx_addr[id], got + have, len), 0);
		have += len;
	}
	memcpy(&h, got, sizeof(h));
	assert_int_equal(le16toh(h.num_buffers), 3);
	assert_memory_equal(got + HDR, f, sizeof(f));
}

/* No receive buffers: the frame stays in the tap until the driver offers some. */
static void test_tap_rx_waits_for_buffers(void **state)
{
	struct fx *fx = *state;
	uint8_t f[200], got[HDR + 200];
	struct virtio_net_stats s;
	uint32_t len = 0;
	int id;

	NEED_TAP(fx);
	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF));
	make_frame(f, sizeof(f), 3);
	assert_int_equal(send(fx->pkt, f, sizeof(f), 0), sizeof(f));
	usleep(50000);
	assert_int_equal(vqd_get_used(&fx->d[0], &len), -EAGAIN);
	add_rx(fx, 1, 2048);
	id = vqd_wait_used(&fx->d[0], &len);
	assert_true(id >= 0);
	assert_int_equal(len, HDR + sizeof(f));
	assert_int_equal(gm_read(&fx->gm, fx->rx_addr[id], got, len), 0);
	assert_memory_equal(got + HDR, f, sizeof(f));
	virtio_net_get_stats(&fx->vdev, &s);
	assert_int_equal(s.rx_packets, 1);
	assert_int_equal(s.rx_dropped, 0);
}

/* A tx chain shorter than the header and one over 64 KiB: refused, counted, nothing sent. */
static void test_tap_hostile_tx(void **state)
{
	struct fx *fx = *state;
	struct vqd_buf shorty[] = { { TXBUF, HDR - 1, false } };
	struct vqd_buf huge[] = { { TXBUF, HDR, false },
				  { 0x100000, VIRTIO_NET_MAX_FRAME + 1, false } };
	struct virtio_net_stats s;
	uint8_t got[64];
	uint32_t len;

	NEED_TAP(fx);
	bring_up(fx, F(VIRTIO_NET_F_MRG_RXBUF));
	assert_true(send_tx(fx, shorty, 1) >= 0);
	assert_true(vqd_wait_used(&fx->d[1], &len) >= 0);
	assert_true(send_tx(fx, huge, 2) >= 0);
	assert_true(vqd_wait_used(&fx->d[1], &len) >= 0);
	assert_int_equal(tap_recv(fx, got, sizeof(got)), -1);
	virtio_net_get_stats(&fx->vdev, &s);
	assert_int_equal(s.tx_errors, 2);
	assert_int_equal(s.tx_packets, 0);
	assert_false(fx->h.ops->get_status(fx->h.dev) & VIRTIO_STATUS_NEEDS_RESET);
}

/* The tap's offloads are offered in pairs the spec allows, and refused without checksums. */
static void test_tap_offload_features(void **state)
{
	struct fx *fx = *state;
	uint64_t f;

	NEED_TAP(fx);
	f = fx->h.ops->get_features(fx->h.dev);
	assert_true(f & F(VIRTIO_NET_F_CSUM));
	assert_true(f & F(VIRTIO_NET_F_GUEST_CSUM));
	assert_true(f & F(VIRTIO_NET_F_HOST_TSO4));
	fx->h.ops->set_status(fx->h.dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(fx->h.ops->set_features(fx->h.dev, F(VIRTIO_F_VERSION_1) |
						 F(VIRTIO_NET_F_HOST_TSO4)), 0);
	fx->h.ops->set_status(fx->h.dev, fx->h.ops->get_status(fx->h.dev) |
				      VIRTIO_STATUS_FEATURES_OK);
	assert_false(fx->h.ops->get_status(fx->h.dev) & VIRTIO_STATUS_FEATURES_OK);
}

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Two pairs on a multi-queue tap with the control queue: the driver starts with one pair, so
 * the second tap queue is detached (and its pair thread must not spin on the detached fd's
 * EPOLLERR); after VQ_PAIRS_SET 2 both queues are attached again. */
static void test_tap_two_pairs_detach(void **state)
{
	struct virtio_net_opts o = { .tap = "vireo-ut1", .queue_pairs = 2, .queue_size = QSIZE };
	struct virtio_device vdev;
	struct virtio_dev_handle hh;
	struct vqd q[5];
	uint64_t f = F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_MQ);
	uint8_t cmd[4] = { VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2, 0 }, ack = 0xee;
	struct vqd_buf b[2] = { { 0x8000, 4, false }, { 0x8100, 1, true } };
	double t0, used;
	uint32_t len;
	struct fx *fx = *state;

	NEED_TAP(fx);
	assert_int_equal(virtio_net_create(&vdev, &fx->gm, &o), 0);
	hh = virtio_device_handle(&vdev);
	hh.ops->set_status(hh.dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(hh.ops->set_features(hh.dev, f), 0);
	hh.ops->set_status(hh.dev, hh.ops->get_status(hh.dev) | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(vqd_init(&q[i], &fx->gm, 0x20000 + 0x2000ull * i, QSIZE, 0), 0);
		hh.ops->set_vq_num(hh.dev, i, QSIZE);
		hh.ops->set_vq_address(hh.dev, i, q[i].desc, q[i].avail, q[i].used);
		assert_int_equal(hh.ops->set_vq_ready(hh.dev, i, true), 0);
	}
	hh.ops->set_status(hh.dev, hh.ops->get_status(hh.dev) | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(if_up("vireo-ut1"), 0);
	assert_int_equal(virtio_net_active_pairs(&vdev), 1);
	for (unsigned i = 0; i < 8; i++) { /* receive buffers on both pairs */
		struct vqd_buf r = { 0x40000 + 0x1000ull * i, 2048, true };

		assert_true(vqd_add(&q[i & 1 ? 2 : 0], &r, 1) >= 0);
	}
	hh.ops->kick_vq(hh.dev, 0);
	hh.ops->kick_vq(hh.dev, 2);
	usleep(50000);
	t0 = cpu_seconds();
	usleep(300000);
	used = cpu_seconds() - t0;
	assert_true(used < 0.1); /* idle: nobody spins */
	assert_int_equal(gm_write(&fx->gm, 0x8000, cmd, 4), 0);
	assert_int_equal(gm_write(&fx->gm, 0x8100, &ack, 1), 0);
	assert_true(vqd_add(&q[4], b, 2) >= 0);
	hh.ops->kick_vq(hh.dev, 4);
	assert_true(vqd_get_used(&q[4], &len) >= 0);
	assert_int_equal(gm_read(&fx->gm, 0x8100, &ack, 1), 0);
	assert_int_equal(ack, VIRTIO_NET_OK);
	assert_int_equal(virtio_net_active_pairs(&vdev), 2);
	t0 = cpu_seconds();
	usleep(300000);
	assert_true(cpu_seconds() - t0 < 0.1);
	virtio_device_destroy(&vdev);
	for (unsigned i = 0; i < 5; i++)
		vqd_destroy(&q[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_tap_tx),
		T(test_tap_rx_mergeable),
		T(test_tap_rx_waits_for_buffers),
		T(test_tap_hostile_tx),
		T(test_tap_offload_features),
		T(test_tap_two_pairs_detach),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
