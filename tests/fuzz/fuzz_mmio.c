/* libFuzzer target for the virtio-mmio register file (src/virtio/mmio.c) in front of a real
 * virtio-rng device on 64 KiB of guest memory: a hostile guest's whole view of the device.
 * The input is one byte (odd: a correct driver set the device up first, ring at 0x1000) and
 * a sequence of 11-byte operations:
 *   byte 0: bits 0-1 size (1, 2, 4, 8), bit 2 write, bit 3 "guest memory" instead of MMIO
 *   bytes 1-2: offset (MMIO: 0..0xffff, so past the 4 KiB window too; memory: & 0xfff8)
 *   bytes 3-10: the value
 * Guest memory writes let the input build rings and chains the device then walks on a
 * QueueNotify. Checked after every access: no crash or out-of-bounds access (ASan/UBSan),
 * MagicValue and Version always read right, reads outside the window or of bad widths
 * read 0, InterruptStatus holds only the two defined bits, Status 0 really resets. The host's
 * kick routing (what vm_virtio.c turns into KVM ioeventfds) takes every queue offered, as for
 * a vhost-user device, and must stay balanced: a queue is routed only when it is not, unrouted
 * only when it is, and nothing is left routed after the final reset. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/rng.h"
#include "memory/guest_memory.h"
#include "util/log.h"
#include "virtio/mmio.h"

#define MEM_SIZE (64u << 10)

static struct guest_memory gm;
static unsigned irqs;

static void on_irq(void *opaque)
{
	(void)opaque;
	irqs++;
}

static bool routed[VIRTIO_MAX_QUEUES];

static bool on_queue_kick(void *opaque, unsigned idx, bool enable)
{
	(void)opaque;
	if (idx >= VIRTIO_MAX_QUEUES || routed[idx] == enable)
		abort(); /* routed twice, or unrouted without being routed */
	routed[idx] = enable;
	return enable;
}

static uint32_t rd32(struct virtio_mmio *m, unsigned off)
{
	uint32_t v = 0xdeadbeef;

	virtio_mmio_access(m, off, &v, 4, false);
	return v;
}

static void check(struct virtio_mmio *m)
{
	if (rd32(m, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC ||
	    rd32(m, VIRTIO_MMIO_VERSION) != 2 ||
	    (rd32(m, VIRTIO_MMIO_INTERRUPT_STATUS) & ~3u))
		abort();
}

static void mmio_op(struct virtio_mmio *m, unsigned off, unsigned size, bool wr, uint64_t v)
{
	uint64_t buf = v, mask = size == 8 ? ~0ull : (1ull << (8 * size)) - 1;

	virtio_mmio_access(m, off, &buf, size, wr);
	if (wr)
		return;
	if (off + size > VIRTIO_MMIO_SIZE && (buf & mask))
		abort(); /* outside the window: zeros */
	if (off < VIRTIO_MMIO_CONFIG && (size != 4 || (off & 3)) && (buf & mask))
		abort(); /* control registers: only aligned 32-bit reads give anything */
}

static void wr32(struct virtio_mmio *m, unsigned off, uint32_t v)
{
	virtio_mmio_access(m, off, &v, 4, true);
}

/* A correct driver's set-up (split ring of 16 at 0x1000/0x1100/0x1200, DRIVER_OK), so that
 * the input's memory writes and kicks reach the device's queue walker at once. */
static void driver_setup(struct virtio_mmio *m)
{
	wr32(m, VIRTIO_MMIO_STATUS, 1);
	wr32(m, VIRTIO_MMIO_STATUS, 3);
	wr32(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(m, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr32(m, VIRTIO_MMIO_STATUS, 11);
	wr32(m, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr32(m, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
	wr32(m, VIRTIO_MMIO_QUEUE_DRIVER_LOW, 0x1100);
	wr32(m, VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0x1200);
	wr32(m, VIRTIO_MMIO_QUEUE_READY, 1);
	wr32(m, VIRTIO_MMIO_STATUS, 15);
	if (rd32(m, VIRTIO_MMIO_STATUS) != 15)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_ERR);
	if (gm_init(&gm) || gm_add_ram(&gm, 0, MEM_SIZE, 0) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned sizes[4] = { 1, 2, 4, 8 };
	struct virtio_mmio_host host = { on_irq, on_queue_kick, NULL, &gm };
	struct virtio_device vdev;
	struct virtio_mmio m;
	static uint8_t zero[MEM_SIZE];

	gm_write(&gm, 0, zero, sizeof(zero));
	if (virtio_rng_create(&vdev, &gm) || virtio_mmio_init(&m, virtio_device_handle(&vdev),
							       &host, "fuzz-mmio"))
		abort();
	if (size && (data[0] & 1)) /* first byte odd: start from a live device */
		driver_setup(&m);
	for (size_t i = 1; i + 11 <= size; i += 11) {
		unsigned sz = sizes[data[i] & 3], off = data[i + 1] | data[i + 2] << 8;
		bool wr = data[i] & 4;
		uint64_t v;

		memcpy(&v, data + i + 3, 8);
		if (data[i] & 8)
			gm_write(&gm, (off & 0xfff8) % MEM_SIZE, &v, 8);
		else
			mmio_op(&m, off, sz, wr, v);
		check(&m);
	}
	/* Status 0 resets whatever the input did. */
	uint32_t zero32 = 0;
	virtio_mmio_access(&m, VIRTIO_MMIO_STATUS, &zero32, 4, true);
	if (rd32(&m, VIRTIO_MMIO_STATUS) || rd32(&m, VIRTIO_MMIO_INTERRUPT_STATUS) ||
	    rd32(&m, VIRTIO_MMIO_QUEUE_READY))
		abort();
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if (routed[q])
			abort(); /* a kick route outlived the reset */
	virtio_mmio_destroy(&m);
	virtio_device_destroy(&vdev);
	return 0;
}
