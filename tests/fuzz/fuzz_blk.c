/* libFuzzer target for virtio-blk's request parser (src/devices/virtio/blk.c): the input is
 * a batch of requests a driver posts at once, each 16 bytes:
 *   u32 type, u32 sector (low bits of the header's u64; bit 31 set: all high bits set too),
 *   u16 data length, u8 flags (bit 0 data device-writable, bit 1 no status byte, bit 2 data
 *   placed across the end of guest memory, bit 3 split data into two descriptors),
 *   u8 data seed (the data buffer's first 16 bytes, e.g. a discard segment, repeat it)
 * The device runs on a 64-sector image in a memfd. Every request must come back (used ring)
 * within 5 s, pins must all be released, and nothing may be written outside guest
 * memory (ASan) or past the image's end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

#include "devices/virtio/blk.h"
#include "memory/guest_memory.h"
#include "util/log.h"
#include "vq_driver.h"

#define MEM (1u << 20)
#define RINGS 0x1000
#define HDRS 0x8000
#define STAT 0x9000
#define DATA 0x10000
#define QSIZE 64
#define SECTORS 64
#define REQ 16

static struct guest_memory gm;
static struct virtio_device vdev;
static struct virtio_dev_handle h;
static struct vqd d;
static int imgfd = -1;

/* A failed check names itself: the crash report alone does not say which one it was. */
#define check(cond) check_at((cond), #cond, __LINE__)
static void check_at(int cond, const char *what, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_blk: check failed at line %d: %s\n", line, what);
		abort();
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void init_once(void)
{
	char path[64];
	struct virtio_blk_config_opts o = { .serial = "fuzz" };

	log_set_level(LOG_ERR);
	imgfd = memfd_create("fuzz-disk", MFD_CLOEXEC);
	check(imgfd >= 0 && ftruncate(imgfd, SECTORS * 512) == 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", imgfd);
	o.path = path;
	check(gm_init(&gm) == 0 && gm_add_ram(&gm, 0, MEM, 0) >= 0);
	gm_set_pin_limit(&gm, MEM);
	check(virtio_blk_create(&vdev, &gm, &o) == 0);
	h = virtio_device_handle(&vdev);
}

static void bring_up(void)
{
	const struct virtio_device_ops *ops = h.ops;

	ops->reset(h.dev);
	vqd_destroy(&d);
	ops->set_status(h.dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	ops->set_features(h.dev, ops->get_features(h.dev) & ~(1ull << VIRTIO_F_RING_PACKED) &
				 ~(1ull << VIRTIO_F_EVENT_IDX));
	ops->set_status(h.dev, ops->get_status(h.dev) | VIRTIO_STATUS_FEATURES_OK);
	check(vqd_init(&d, &gm, RINGS, QSIZE, 0) == 0);
	ops->set_vq_num(h.dev, 0, QSIZE);
	ops->set_vq_address(h.dev, 0, d.desc, d.avail, d.used);
	check(ops->set_vq_ready(h.dev, 0, true) == 0);
	ops->set_status(h.dev, ops->get_status(h.dev) | VIRTIO_STATUS_DRIVER_OK);
}

static int post(unsigned i, const uint8_t *r)
{
	uint32_t type, sec32, len;
	uint64_t sector, data = DATA + 0x4000 * i;
	uint8_t flags = r[10], seed[16];
	struct virtio_blk_outhdr hdr;
	struct vqd_buf b[4];
	unsigned n = 0;

	memcpy(&type, r, 4);
	memcpy(&sec32, r + 4, 4);
	len = (uint32_t)(r[8] | r[9] << 8) % 0x4000;
	sector = sec32 & 0x80000000u ? ~0ull << 31 | sec32 : sec32;
	hdr = (struct virtio_blk_outhdr){ .type = type, .sector = sector };
	check(gm_write(&gm, HDRS + 16 * i, &hdr, sizeof(hdr)) == 0);
	for (int k = 0; k < 16; k++)
		seed[k] = (uint8_t)(r[11] + r[k % REQ]);
	check(gm_write(&gm, data, seed, sizeof(seed)) == 0);
	if (flags & 4)
		data = MEM - len / 2; /* runs off the end of guest memory */
	b[n++] = (struct vqd_buf){ HDRS + 16 * i, sizeof(hdr), false };
	if (len && (flags & 8) && len > 1) {
		b[n++] = (struct vqd_buf){ data, len / 2, flags & 1 };
		b[n++] = (struct vqd_buf){ data + len / 2, len - len / 2, flags & 1 };
	} else if (len) {
		b[n++] = (struct vqd_buf){ data, len, flags & 1 };
	}
	if (!(flags & 2))
		b[n++] = (struct vqd_buf){ STAT + i, 1, true };
	return vqd_add(&d, b, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned nreq = (unsigned)(size / REQ), posted = 0, done = 0;
	struct stat st;
	uint32_t len;

	if (!h.ops)
		init_once();
	if (nreq > 16)
		nreq = 16;
	bring_up();
	for (unsigned i = 0; i < nreq; i++)
		if (post(i, data + REQ * i) >= 0)
			posted++;
	h.ops->kick_vq(h.dev, 0);
	/* a wall-clock bound, not a count of 100 us sleeps (about 0.2 s, which a loaded host can
	 * exceed without anything being wrong) */
	for (uint64_t t0 = now_ms(); done < posted && now_ms() - t0 < 5000;) {
		if (vqd_get_used(&d, &len) >= 0) {
			done++;
			continue;
		}
		if (h.ops->get_status(h.dev) & VIRTIO_STATUS_NEEDS_RESET)
			break; /* a chain the walker refused: the device asks for a reset */
		usleep(100);
	}
	check(done == posted || (h.ops->get_status(h.dev) & VIRTIO_STATUS_NEEDS_RESET));
	h.ops->reset(h.dev); /* stops the queue thread: in flight work has completed */
	check(gm_pinned_bytes(&gm) == 0);
	check(fstat(imgfd, &st) == 0 && st.st_size == SECTORS * 512);
	return 0;
}
