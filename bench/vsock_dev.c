/* The virtio-vsock device on its own, without a VM: MB/s through vireo's device between a
 * mock guest driver (vq_driver.h rings in memory, driven by this thread the way Linux 6.1's
 * virtio_transport does it: 64 KiB transmit packets, 4 KiB receive buffers, credit updates)
 * and a host peer thread on the Unix socket. It shows what the device side can carry, the
 * ceiling for `make bench-vsock`; the guest's own costs are not in it.
 *   build/bench/vsock_dev [MB]     (default 2000 MB each way)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio/vsock.h"
#include "../tests/unit/vq_driver.h"

#define QSIZE 256
#define CID 3
#define PORT 5000
#define GPORT 7000
#define MEM (64u << 20)
#define RXBUF 4096
#define RX_GPA (8ull << 20)   /* receive buffer slot i at RX_GPA + i * 8 KiB */
#define TXH_GPA (4ull << 20)  /* transmit header slot i at TXH_GPA + i * 64 */
#define TXP_GPA (16ull << 20) /* one 64 KiB payload, reused */
#define GUEST_BUF_ALLOC (256u * 1024) /* Linux's default */

struct bench {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct virtio_dev_handle h;
	struct vqd rx, tx;
	uint64_t rx_gpa[QSIZE];
	char uds[96];
	uint64_t total;
	bool g2h;
	int lfd;
	/* guest side of the connection */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt, rx_bytes, fwd_announced;
	bool connected;
	double host_start, host_end;
	uint64_t host_bytes;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void post_rx(struct bench *b, unsigned slot)
{
	uint64_t gpa = RX_GPA + 8192ull * slot;
	struct vqd_buf v[2] = { { gpa, VSOCK_HDR_LEN, true }, { gpa + 64, RXBUF, true } };
	int id = vqd_add(&b->rx, v, 2);

	if (id >= 0)
		b->rx_gpa[id] = gpa;
}

static void kick(struct bench *b, struct vqd *d, unsigned idx)
{
	if (vqd_kick_needed(d))
		b->h.ops->kick_vq(b->h.dev, idx);
}

static int send_pkt(struct bench *b, uint16_t op, uint32_t len)
{
	static unsigned slot;
	struct vsock_hdr h = { .src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = GPORT,
			       .dst_port = PORT, .len = len, .type = VIRTIO_VSOCK_TYPE_STREAM,
			       .op = op, .buf_alloc = GUEST_BUF_ALLOC, .fwd_cnt = b->rx_bytes };
	uint8_t raw[VSOCK_HDR_LEN];
	uint64_t hg = TXH_GPA + 64ull * (slot++ % QSIZE);
	struct vqd_buf v[2] = { { hg, VSOCK_HDR_LEN, false }, { TXP_GPA, len, false } };

	vsock_hdr_encode(&h, raw);
	gm_write(&b->gm, hg, raw, VSOCK_HDR_LEN);
	if (vqd_add(&b->tx, v, len ? 2 : 1) < 0)
		return -ENOSPC;
	b->fwd_announced = b->rx_bytes;
	if (op == VIRTIO_VSOCK_OP_RW)
		b->tx_cnt += len;
	return 0;
}

/* Reap used entries: transmit slots back, receive packets parsed and buffers re-posted. */
static void reap(struct bench *b)
{
	uint32_t len;
	int id;
	unsigned posted = 0;

	while (vqd_get_used(&b->tx, &len) >= 0)
		;
	while ((id = vqd_get_used(&b->rx, &len)) >= 0) {
		struct virtio_vsock_hdr w;

		gm_read(&b->gm, b->rx_gpa[id], &w, sizeof(w));
		b->peer_buf_alloc = le32toh(w.buf_alloc);
		b->peer_fwd_cnt = le32toh(w.fwd_cnt);
		if (le16toh(w.op) == VIRTIO_VSOCK_OP_RESPONSE)
			b->connected = true;
		if (le16toh(w.op) == VIRTIO_VSOCK_OP_RW)
			b->rx_bytes += le32toh(w.len);
		post_rx(b, (unsigned)(b->rx_gpa[id] - RX_GPA) / 8192);
		posted++;
	}
	if (posted)
		kick(b, &b->rx, 0);
}

static void *host_thread(void *arg)
{
	struct bench *b = arg;
	size_t sz = 256 * 1024;
	char *buf = malloc(sz);
	int fd = accept(b->lfd, NULL, NULL);

	memset(buf, 0x5a, sz);
	b->host_start = now();
	while (b->host_bytes < b->total) {
		ssize_t n = b->g2h ? read(fd, buf, sz)
				   : write(fd, buf, b->total - b->host_bytes < sz ? b->total - b->host_bytes : sz);

		if (n <= 0)
			break;
		b->host_bytes += (uint64_t)n;
	}
	b->host_end = now();
	close(fd);
	free(buf);
	return NULL;
}

static double run(struct bench *b, bool g2h)
{
	pthread_t t;
	uint64_t done = 0;

	b->g2h = g2h;
	b->host_bytes = 0;
	b->host_start = b->host_end = 0;
	b->connected = false;
	b->tx_cnt = b->rx_bytes = b->fwd_announced = 0;
	pthread_create(&t, NULL, host_thread, b);
	send_pkt(b, VIRTIO_VSOCK_OP_REQUEST, 0);
	kick(b, &b->tx, 1);
	while (!b->connected)
		reap(b);
	while (__atomic_load_n(&b->host_bytes, __ATOMIC_RELAXED) < b->total) {
		bool sent = false;

		reap(b);
		if (g2h) {
			while (done < b->total && b->tx.num_free >= 2 &&
			       b->peer_buf_alloc - (b->tx_cnt - b->peer_fwd_cnt) >= VSOCK_MAX_PAYLOAD) {
				uint32_t l = b->total - done < VSOCK_MAX_PAYLOAD ? (uint32_t)(b->total - done)
										 : VSOCK_MAX_PAYLOAD;
				send_pkt(b, VIRTIO_VSOCK_OP_RW, l);
				done += l;
				sent = true;
			}
		} else if (b->rx_bytes - b->fwd_announced >= GUEST_BUF_ALLOC / 4 && b->tx.num_free) {
			send_pkt(b, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
			sent = true;
		}
		if (sent)
			kick(b, &b->tx, 1);
		else if (!g2h && b->host_end > 0)
			break;
		else
			sched_yield();
	}
	pthread_join(t, NULL);
	/* close: the guest's RST */
	send_pkt(b, VIRTIO_VSOCK_OP_RST, 0);
	kick(b, &b->tx, 1);
	for (int i = 0; i < 1000; i++)
		reap(b);
	if (!g2h)
		while (b->rx_bytes < b->total && now() - b->host_end < 2)
			reap(b);
	return (double)b->total / (b->host_end - b->host_start) / 1e6;
}

static int setup(struct bench *b)
{
	struct virtio_vsock_config_opts o = { .guest_cid = CID, .uds = b->uds };
	const struct virtio_device_ops *ops;
	struct vqd *q[2] = { &b->rx, &b->tx };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (gm_init(&b->gm) || gm_add_ram(&b->gm, 0, MEM, 0) < 0 ||
	    virtio_vsock_create(&b->vdev, &b->gm, &o))
		return -1;
	b->h = virtio_device_handle(&b->vdev);
	ops = b->h.ops;
	ops->set_status(b->h.dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	ops->set_features(b->h.dev, (1ull << VIRTIO_F_VERSION_1) | VQD_F_EVENT_IDX);
	ops->set_status(b->h.dev, ops->get_status(b->h.dev) | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned i = 0; i < 2; i++) {
		if (vqd_init(q[i], &b->gm, 0x10000 + 0x10000ull * i, QSIZE, VQD_F_EVENT_IDX))
			return -1;
		ops->set_vq_num(b->h.dev, i, QSIZE);
		ops->set_vq_address(b->h.dev, i, q[i]->desc, q[i]->avail, q[i]->used);
		ops->set_vq_ready(b->h.dev, i, true);
	}
	ops->set_status(b->h.dev, ops->get_status(b->h.dev) | VIRTIO_STATUS_DRIVER_OK);
	for (unsigned i = 0; i < QSIZE / 2; i++)
		post_rx(b, i);
	b->h.ops->kick_vq(b->h.dev, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", b->uds, PORT);
	b->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (b->lfd < 0 || bind(b->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(b->lfd, 4))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench b;
	char dir[] = "/tmp/vireo-bvsockdev.XXXXXX";
	double g2h, h2g;

	b.total = (argc > 1 ? strtoull(argv[1], NULL, 0) : 2000) * 1000000ull;
	if (!mkdtemp(dir))
		return 1;
	snprintf(b.uds, sizeof(b.uds), "%s/v.sock", dir);
	if (setup(&b)) {
		fprintf(stderr, "vsock_dev: set-up failed\n");
		return 1;
	}
	g2h = run(&b, true);
	h2g = run(&b, false);
	printf("vsock device alone (no VM, mock driver, 1 connection): guest->host %.0f MB/s "
	       "(64 KiB packets), host->guest %.0f MB/s (4 KiB receive buffers)\n", g2h, h2g);
	virtio_device_destroy(&b.vdev);
	vqd_destroy(&b.rx);
	vqd_destroy(&b.tx);
	gm_destroy(&b.gm);
	unlink(b.uds);
	char p[128];

	snprintf(p, sizeof(p), "%s_%u", b.uds, PORT);
	unlink(p);
	rmdir(dir);
	return 0;
}
