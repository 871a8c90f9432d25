/* A driver thread and a device thread on one ring at once: the driver offers buffers and kicks
 * only when notification suppression says so; the device pops until the ring is empty, then
 * sleeps until kicked. A missed kick (a wrong barrier or avail-event update) leaves the device
 * asleep with buffers waiting, which the timed wait turns into a failure. Runs for split and
 * packed rings, with EVENT_IDX and with flags. */
#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include "vq_fixture.h"

#define REQUESTS 20000

struct race {
	struct fx *f;
	sem_t kick;
	unsigned done;
	unsigned kicks;
	unsigned stalls;
	bool failed;
};

static void *device_thread(void *arg)
{
	struct race *r = arg;
	struct fx *f = r->f;

	vq_enable_notify(&f->vq, true);
	while (r->done < REQUESTS) {
		int rc;

		while ((rc = vq_pop(&f->vq, &f->e)) == 1) {
			if (vq_push(&f->vq, &f->e, 4) < 0)
				break;
			r->done++;
		}
		if (rc < 0 || f->vq.broken) {
			r->failed = true;
			break;
		}
		if (r->done == REQUESTS)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		if (sem_timedwait(&r->kick, &ts) < 0) {
			r->stalls++; /* 5 s without a kick: fine if the driver is slow, */
			if (!vq_empty(&f->vq)) { /* a missed kick if buffers wait */
				r->failed = true;
				break;
			}
		}
	}
	return NULL;
}

static void race(struct fx *f)
{
	static struct race r;
	pthread_t t;
	unsigned offered = 0;
	uint32_t len;

	memset(&r, 0, sizeof(r));
	r.f = f;
	assert_int_equal(sem_init(&r.kick, 0, 0), 0);
	assert_int_equal(pthread_create(&t, NULL, device_thread, &r), 0);
	while (offered < REQUESTS && !r.failed) {
		struct vqd_buf b = { BUF_GPA + (offered % 64) * 64, 64, true };

		while (vqd_get_used(&f->d, &len) >= 0)
			;
		if (vqd_add(&f->d, &b, 1) < 0) {
			sched_yield(); /* ring full: wait for the device */
			continue;
		}
		offered++;
		if (vqd_kick_needed(&f->d)) {
			r.kicks++;
			sem_post(&r.kick);
		}
	}
	pthread_join(t, NULL);
	sem_destroy(&r.kick);
	print_message("%u requests, %u kicks, %u stalls\n", r.done, r.kicks, r.stalls);
	assert_false(r.failed);
	assert_int_equal(r.done, REQUESTS);
	assert_true(r.kicks >= 1);
	assert_false(f->vq.broken);
}

static int setup_split_event(void **s) { return fx_setup(s, VQD_F_EVENT_IDX); }
static int setup_split_flags(void **s) { return fx_setup(s, 0); }
static int setup_packed_event(void **s) { return fx_setup(s, VQD_F_PACKED | VQD_F_EVENT_IDX); }
static int setup_packed_flags(void **s) { return fx_setup(s, VQD_F_PACKED); }

static void test_race_split_event_idx(void **state) { race(*state); }
static void test_race_split_flags(void **state) { race(*state); }
static void test_race_packed_event_idx(void **state) { race(*state); }
static void test_race_packed_flags(void **state) { race(*state); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_race_split_event_idx, setup_split_event, fx_teardown),
		cmocka_unit_test_setup_teardown(test_race_split_flags, setup_split_flags, fx_teardown),
		cmocka_unit_test_setup_teardown(test_race_packed_event_idx, setup_packed_event, fx_teardown),
		cmocka_unit_test_setup_teardown(test_race_packed_flags, setup_packed_flags, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
