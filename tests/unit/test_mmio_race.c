/* Several vCPUs on one virtio-mmio window at once, in front of virtio-blk with its own I/O
 * thread: one thread drives the device correctly (set-up, 8 reads, kick, wait, reset) over and
 * over, another pokes it like a hostile or buggy second vCPU (kicks of any queue, interrupt
 * acknowledgements, status reads and writes, queue selects, config reads, now and then a
 * reset) while the blk thread completes requests and raises interrupts. Nothing may crash
 * (ASan/UBSan builds), deadlock (an alarm turns a hang into a failure) or leave state behind:
 * after a final reset everything reads 0. The driver must also get work done between the
 * hostile resets. Kicks reach blk both ways vireo run has: QueueNotify exits (kick_vq) and,
 * as KVM would signal an ioeventfd, writes to the kick eventfd the transport hands the device
 * at DRIVER_OK (host->queue_kick) and takes back at reset, which the hostile thread fires at
 * any time. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/virtio_blk.h>

#include "devices/virtio/blk.h"
#include "memory/guest_memory.h"
#include "util/log.h"
#include "virtio/mmio.h"
#include "vq_driver.h"

#define MEM_SIZE  (4u << 20)
#define RING      0x10000
#define REQ_BASE  0x40000   /* request i: header at +0, data at +0x1000, status at +0x800 */
#define QSIZE     32
#define RUN_NS    1500000000ull

struct race {
	struct guest_memory gm;
	struct virtio_device vdev;
	struct virtio_mmio m;
	char path[32];
	atomic_bool stop;
	atomic_uint irqs;
	int kickfd;             /* what a KVM ioeventfd on QueueNotify would signal */
	atomic_uint kicks_routed;
	unsigned completed, rounds;
};

static void on_irq(void *opaque)
{
	atomic_fetch_add(&((struct race *)opaque)->irqs, 1);
}

/* host->queue_kick, as vm_virtio.c does it: at DRIVER_OK the device may take the kick
 * eventfd (blk polls it in its ring); at reset stale kicks are drained. */
static bool on_queue_kick(void *opaque, unsigned idx, bool enable)
{
	struct race *r = opaque;
	eventfd_t stale;

	if (!enable) {
		eventfd_read(r->kickfd, &stale);
		return false;
	}
	if (!virtio_device_set_kick_fd(&r->vdev, idx, r->kickfd))
		return false;
	atomic_fetch_add(&r->kicks_routed, 1);
	return true;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void wr(struct race *r, unsigned off, uint32_t v)
{
	virtio_mmio_access(&r->m, off, &v, 4, true);
}

static uint32_t rd(struct race *r, unsigned off)
{
	uint32_t v = 0;

	virtio_mmio_access(&r->m, off, &v, 4, false);
	return v;
}

/* One round of a correct driver; returns requests completed. */
static unsigned driver_round(struct race *r, struct vqd *d)
{
	unsigned done = 0;
	uint64_t t0;

	wr(r, VIRTIO_MMIO_STATUS, 0);
	wr(r, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(r, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(r, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(r, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(r, VIRTIO_MMIO_STATUS, 11);
	vqd_destroy(d);
	if (vqd_init(d, &r->gm, RING, QSIZE, 0))
		return 0;
	wr(r, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(r, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(r, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)d->desc);
	wr(r, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)d->avail);
	wr(r, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)d->used);
	wr(r, VIRTIO_MMIO_QUEUE_READY, 1);
	wr(r, VIRTIO_MMIO_STATUS, 15);
	for (unsigned i = 0; i < 8; i++) {
		uint64_t base = REQ_BASE + (uint64_t)i * 0x2000;
		struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = i };
		struct vqd_buf b[3] = { { base, sizeof(h), false }, { base + 0x1000, 512, true },
					{ base + 0x800, 1, true } };

		gm_write(&r->gm, base, &h, sizeof(h));
		if (vqd_add(d, b, 3) < 0)
			break;
	}
	wr(r, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	t0 = now_ns();
	while (done < 8 && now_ns() - t0 < 50000000ull) {
		uint32_t len;

		if (vqd_get_used(d, &len) >= 0)
			done++;
		else
			usleep(50);
		wr(r, VIRTIO_MMIO_INTERRUPT_ACK, rd(r, VIRTIO_MMIO_INTERRUPT_STATUS));
	}
	return done;
}

static void *driver_thread(void *arg)
{
	struct race *r = arg;
	struct vqd d = { 0 };

	while (!atomic_load(&r->stop)) {
		r->completed += driver_round(r, &d);
		r->rounds++;
	}
	vqd_destroy(&d);
	return NULL;
}

static void *hostile_thread(void *arg)
{
	struct race *r = arg;
	unsigned seed = 12345;

	while (!atomic_load(&r->stop)) {
		unsigned x = (unsigned)rand_r(&seed);
		uint64_t cfg;

		switch (x % 8) {
		case 0:
			if (x & 0x100)
				eventfd_write(r->kickfd, 1); /* an ioeventfd kick */
			else
				wr(r, VIRTIO_MMIO_QUEUE_NOTIFY, (x >> 9) % 3);
			break;
		case 1: wr(r, VIRTIO_MMIO_INTERRUPT_ACK, x >> 8); break;
		case 2: (void)rd(r, VIRTIO_MMIO_INTERRUPT_STATUS); break;
		case 3: (void)rd(r, VIRTIO_MMIO_STATUS); break;
		case 4: virtio_mmio_access(&r->m, VIRTIO_MMIO_CONFIG + (x >> 8) % 64, &cfg, 8, false);
			break;
		case 5: (void)rd(r, VIRTIO_MMIO_QUEUE_READY); break;
		case 6: wr(r, VIRTIO_MMIO_QUEUE_NUM, x >> 20); break; /* refused while ready */
		case 7:
			if ((x >> 8) % 512 == 0)
				wr(r, VIRTIO_MMIO_STATUS, 0); /* a reset now and then */
			break;
		}
	}
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "test_mmio_race: deadlock (no progress for 20 s)\n";
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(2);
}

static void test_two_vcpus_and_a_device_thread(void **state)
{
	struct race *r = test_calloc(1, sizeof(*r));
	struct virtio_blk_config_opts o = { .serial = "race" };
	struct virtio_mmio_host host = { on_irq, on_queue_kick, NULL, NULL };
	pthread_t a, b;
	int fd;

	(void)state;
	host.opaque = r;
	strcpy(r->path, "/tmp/vireo-mmio-race-XXXXXX");
	fd = mkstemp(r->path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	o.path = r->path;
	r->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(r->kickfd >= 0);
	assert_int_equal(gm_init(&r->gm), 0);
	assert_true(gm_add_ram(&r->gm, 0, MEM_SIZE, 0) >= 0);
	host.gm = &r->gm;
	assert_int_equal(virtio_blk_create(&r->vdev, &r->gm, &o), 0);
	assert_int_equal(virtio_mmio_init(&r->m, virtio_device_handle(&r->vdev), &host, "race"), 0);

	signal(SIGALRM, on_alarm);
	alarm(20);
	assert_int_equal(pthread_create(&a, NULL, driver_thread, r), 0);
	assert_int_equal(pthread_create(&b, NULL, hostile_thread, r), 0);
	usleep(RUN_NS / 1000);
	atomic_store(&r->stop, true);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	alarm(0);

	wr(r, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(r, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(r, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(rd(r, VIRTIO_MMIO_QUEUE_READY), 0);
	print_message("%u rounds, %u requests completed, %u interrupts, %lu accesses refused, "
		      "kick fd taken %u times\n", r->rounds, r->completed, atomic_load(&r->irqs),
		      (unsigned long)atomic_load(&r->m.refused), atomic_load(&r->kicks_routed));
	assert_true(r->completed > 0);
	assert_true(atomic_load(&r->irqs) > 0);
	assert_true(atomic_load(&r->kicks_routed) > 0);

	virtio_mmio_destroy(&r->m);
	virtio_device_destroy(&r->vdev);
	gm_destroy(&r->gm);
	close(r->kickfd);
	unlink(r->path);
	test_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_vcpus_and_a_device_thread),
	};

	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
