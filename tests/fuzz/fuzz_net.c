/* libFuzzer target for virtio-net's request parsers (src/devices/virtio/net*.c), in loopback
 * mode: the input is a first byte of settings, then records of 8 bytes, each a transmit chain
 * or a control command a driver posts:
 *   settings: bit 0 MRG_RXBUF, bit 1 packed ring, bits 2-7 receive buffer size (x 64 + 12)
 *   record:   u8 kind (bit 0: control command, else tx chain), u8 a, u8 b, u8 flags,
 *             u16 length, u8 seed, u8 spare
 *     tx:   length + (a << 16 when flags bit 3) bytes in 1 + flags%3 descriptors, flags bit 2 a
 *           device-writable descriptor at the end, bit 4 the buffer runs off guest memory
 *     ctrl: class a, command b, length % 64 bytes of data, flags bit 0 no ack byte
 * The driver keeps offering receive buffers as they are used. Every chain must come back
 * (unless a refused chain made the device ask for a reset), the frames received must carry
 * a num_buffers that matches the chains they took, and counters must add up. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_net.h>

#include "devices/virtio/net.h"
#include "memory/guest_memory.h"
#include "util/log.h"
#include "vq_driver.h"

#define MEM (2u << 20)
#define QSIZE 64
#define NQ 3
#define RINGS(q) (0x1000 + 0x2000ull * (q))
#define CTRLBUF 0x8000
#define TXBUF 0x10000     /* up to 0x20000 per chain */
#define RXBUF 0x100000    /* 64 rx buffers of up to 4 KiB */
#define REC 8
#define HDR VIRTIO_NET_HDR_LEN

static struct guest_memory gm;
static struct virtio_device vdev;
static struct virtio_dev_handle h;
static struct vqd d[NQ];
static uint32_t rx_size;

static void check(int cond)
{
	if (!cond)
		abort();
}

static void init_once(void)
{
	struct virtio_net_opts o = { .loopback = true, .queue_size = QSIZE };

	log_set_level(LOG_ERR);
	check(gm_init(&gm) == 0 && gm_add_ram(&gm, 0, MEM, 0) >= 0);
	check(virtio_net_create(&vdev, &gm, &o) == 0);
	h = virtio_device_handle(&vdev);
}

static void bring_up(uint8_t settings)
{
	const struct virtio_device_ops *ops = h.ops;
	uint64_t ring = settings & 2 ? VQD_F_PACKED : VQD_F_EVENT_IDX;
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_CTRL_VQ) |
		     (1ull << VIRTIO_NET_F_CTRL_RX) | ring;

	if (settings & 1)
		f |= 1ull << VIRTIO_NET_F_MRG_RXBUF;
	ops->reset(h.dev);
	ops->set_status(h.dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	check(ops->set_features(h.dev, f) == 0);
	ops->set_status(h.dev, ops->get_status(h.dev) | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < NQ; q++) {
		vqd_destroy(&d[q]);
		check(vqd_init(&d[q], &gm, RINGS(q), QSIZE, ring) == 0);
		ops->set_vq_num(h.dev, q, QSIZE);
		ops->set_vq_address(h.dev, q, d[q].desc, d[q].avail, d[q].used);
		check(ops->set_vq_ready(h.dev, q, true) == 0);
	}
	ops->set_status(h.dev, ops->get_status(h.dev) | VIRTIO_STATUS_DRIVER_OK);
	rx_size = (uint32_t)(settings >> 2) * 64 + HDR;
}

static void add_rx(unsigned slot)
{
	struct vqd_buf b = { RXBUF + 0x1000ull * (slot % QSIZE), rx_size, true };

	vqd_add(&d[0], &b, 1);
}

static int post_tx(const uint8_t *r)
{
	uint8_t flags = r[3], seed[64];
	uint32_t len = (uint32_t)(r[4] | r[5] << 8) + (flags & 8 ? (uint32_t)r[1] << 16 : 0);
	uint64_t addr;
	struct vqd_buf b[4];
	unsigned n = 1 + flags % 3, k;
	uint32_t part;

	if (len > 0x20000)
		len = 0x20000;
	addr = flags & 16 ? MEM - len / 2 : TXBUF;
	part = len / n;
	memset(seed, r[6], sizeof(seed));
	if (!(flags & 16))
		gm_write(&gm, TXBUF, seed, len < sizeof(seed) ? len : sizeof(seed));
	for (k = 0; k < n; k++)
		b[k] = (struct vqd_buf){ addr + k * part, k + 1 == n ? len - k * part : part, false };
	if (flags & 4)
		b[n++] = (struct vqd_buf){ RXBUF - 0x100, 16, true };
	return vqd_add(&d[1], b, n);
}

static int post_ctrl(const uint8_t *r)
{
	uint8_t hdr[2] = { r[1], r[2] }, data[64];
	uint32_t len = r[4] % 64;
	struct vqd_buf b[3];
	unsigned n = 0;

	memset(data, r[6], sizeof(data));
	gm_write(&gm, CTRLBUF, hdr, 2);
	gm_write(&gm, CTRLBUF + 0x10, data, len);
	b[n++] = (struct vqd_buf){ CTRLBUF, 2, false };
	if (len)
		b[n++] = (struct vqd_buf){ CTRLBUF + 0x10, len, false };
	if (!(r[3] & 1))
		b[n++] = (struct vqd_buf){ CTRLBUF + 0x100, 1, true };
	return vqd_add(&d[2], b, n);
}

/* Take the next received frame, if there is one: all its chains (num_buffers of them) must
 * be there at once. Each chain taken is offered again. */
static bool take_rx(unsigned *slot)
{
	uint32_t len, want = 1;
	struct virtio_net_hdr_v1 hdr;
	int id = vqd_get_used(&d[0], &len);

	if (id == -EAGAIN)
		return false;
	for (unsigned k = 0; k < want; k++) {
		if (k)
			id = vqd_get_used(&d[0], &len);
		check(id >= 0 && len <= rx_size);
		if (k == 0) {
			check(len >= HDR);
			check(gm_read(&gm, RXBUF + 0x1000ull * ((unsigned)id % QSIZE), &hdr,
				      sizeof(hdr)) == 0);
			want = le16toh(hdr.num_buffers);
			check(want >= 1 && want <= VIRTIO_NET_MAX_RX_BUFS);
		}
		add_rx((*slot)++);
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned nrec, tx = 0, tx_done = 0, slot = 0;
	struct virtio_net_stats before, after;
	uint32_t len;

	if (!h.ops)
		init_once();
	if (size < 1)
		return 0;
	nrec = (unsigned)((size - 1) / REC);
	if (nrec > 24)
		nrec = 24;
	bring_up(data[0]);
	virtio_net_get_stats(&vdev, &before);
	for (; slot < QSIZE; slot++)
		add_rx(slot);
	h.ops->kick_vq(h.dev, 0);
	for (unsigned i = 0; i < nrec; i++) {
		const uint8_t *r = data + 1 + REC * i;

		if (r[0] & 1) {
			if (post_ctrl(r) >= 0) {
				h.ops->kick_vq(h.dev, 2); /* answered at once, under the device lock */
				check(vqd_get_used(&d[2], &len) >= 0 ||
				      (h.ops->get_status(h.dev) & VIRTIO_STATUS_NEEDS_RESET));
			}
		} else if (post_tx(r) >= 0) {
			tx++;
		}
	}
	h.ops->kick_vq(h.dev, 1);
	for (int t = 0; t < 4000 && tx_done < tx; t++) {
		if (h.ops->get_status(h.dev) & VIRTIO_STATUS_NEEDS_RESET)
			break;
		while (vqd_get_used(&d[1], &len) >= 0)
			tx_done++;
		if (take_rx(&slot))
			h.ops->kick_vq(h.dev, 0);
		else
			usleep(50);
	}
	if (h.ops->get_status(h.dev) & VIRTIO_STATUS_NEEDS_RESET) {
		h.ops->reset(h.dev);
		return 0;
	}
	check(tx_done == tx);
	while (take_rx(&slot))
		;
	h.ops->reset(h.dev);
	virtio_net_get_stats(&vdev, &after);
	/* every chain was either a frame (delivered or dropped for size) or refused */
	check(after.tx_packets - before.tx_packets + after.tx_errors - before.tx_errors == tx);
	check(after.rx_packets - before.rx_packets + after.rx_dropped - before.rx_dropped ==
	      after.tx_packets - before.tx_packets);
	return 0;
}
