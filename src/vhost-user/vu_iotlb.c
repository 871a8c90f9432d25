/* vhost-user IOTLB (S10): with VIRTIO_F_ACCESS_PLATFORM negotiated, every address the device
 * uses (rings and buffers) is an IOVA. The device reaches guest memory only through entries
 * the front-end sent with IOTLB_MSG updates, each with access permissions; invalidations
 * remove them. A miss is reported to the front-end on the backend-request channel and the
 * device thread waits (bounded) for the update; without one the access is refused.
 *
 * The table is a small cache: overlapping and invalidated entries are dropped whole, and
 * when it is full the oldest entry goes (a later miss brings it back).
 */
#include "vhost-user/vu_internal.h"

#include <errno.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define VU_IOTLB_MISS_WAIT_MS 1000

bool vu_iotlb_active(const struct vu_server *s)
{
	return s->set_iotlb && vu_has_feature(s, VIRTIO_F_ACCESS_PLATFORM);
}

int vu_ring_addr_to_gpa(struct vu_server *s, uint64_t addr, uint64_t len, uint64_t *gpa)
{
	if (vu_iotlb_active(s)) {
		*gpa = addr; /* an IOVA: the queue translates it through the IOTLB */
		return 0;
	}
	return gm_uaddr_to_gpa(s->gm, addr, len, gpa);
}

void vu_iotlb_reset(struct vu_server *s)
{
	pthread_mutex_lock(&s->iotlb_lock);
	s->niotlb = 0;
	pthread_cond_broadcast(&s->iotlb_cond);
	pthread_mutex_unlock(&s->iotlb_lock);
	pthread_mutex_lock(&s->backend_lock);
	if (s->backend_fd >= 0)
		close(s->backend_fd);
	s->backend_fd = -1;
	pthread_mutex_unlock(&s->backend_lock);
}

static void drop_range(struct vu_server *s, uint64_t iova, uint64_t size)
{
	unsigned j = 0;

	for (unsigned i = 0; i < s->niotlb; i++) {
		struct vu_iotlb_entry *e = &s->iotlb[i];

		if (e->iova < iova + size && iova < e->iova + e->size)
			continue;
		s->iotlb[j++] = *e;
	}
	s->niotlb = j;
}

int vu_h_iotlb_msg(struct vu_server *s, struct vu_msg *m)
{
	const struct vhost_iotlb_msg *im = &m->payload.iotlb;
	uint64_t end;

	if (im->type != VHOST_IOTLB_UPDATE && im->type != VHOST_IOTLB_INVALIDATE) {
		vu_fail(s, "IOTLB message of an unknown or unexpected type");
		return -EINVAL;
	}
	if (!im->size || __builtin_add_overflow(im->iova, im->size, &end) ||
	    (im->type == VHOST_IOTLB_UPDATE &&
	     (__builtin_add_overflow(im->uaddr, im->size, &end) ||
	      (im->perm & ~VHOST_ACCESS_RW) || !im->perm))) {
		vu_fail(s, "IOTLB entry empty, overflowing or with bad permissions");
		return -EINVAL;
	}
	pthread_mutex_lock(&s->iotlb_lock);
	drop_range(s, im->iova, im->size);
	if (im->type == VHOST_IOTLB_INVALIDATE)
		s->iotlb_invalidations++;
	if (im->type == VHOST_IOTLB_UPDATE) {
		s->iotlb_updates++;
		if (s->niotlb == VU_IOTLB_MAX) {
			memmove(&s->iotlb[0], &s->iotlb[1], (VU_IOTLB_MAX - 1) * sizeof(s->iotlb[0]));
			s->niotlb--;
		}
		s->iotlb[s->niotlb++] = (struct vu_iotlb_entry){ im->iova, im->size, im->uaddr,
								 im->perm };
		pthread_cond_broadcast(&s->iotlb_cond);
	}
	pthread_mutex_unlock(&s->iotlb_lock);
	vu_iotlb_changed(s, im);
	return 0;
}

int vu_h_backend_req_fd(struct vu_server *s, struct vu_msg *m)
{
	struct timeval tv = { .tv_sec = VU_BACKEND_SEND_WAIT_MS / 1000 };
	int fd = vu_msg_take_fd(m, 0);

	/* a front-end that stops reading the channel must not stall a sender for ever */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pthread_mutex_lock(&s->backend_lock);
	if (s->backend_fd >= 0)
		close(s->backend_fd);
	s->backend_fd = fd;
	pthread_mutex_unlock(&s->backend_lock);
	return 0;
}

/* One message on the backend channel. When it cannot go out in VU_BACKEND_SEND_WAIT_MS (the
 * front-end does not read) or fails otherwise, the channel is given up: later sends fail at
 * once instead of each waiting again, with the backend lock (and often the device's) held. */
int vu_backend_send(struct vu_server *s, const struct vu_hdr *h, const void *payload)
{
	int rc = -ENOTCONN;

	pthread_mutex_lock(&s->backend_lock);
	if (s->backend_fd >= 0)
		rc = vu_msg_send(s->backend_fd, h, payload, NULL, 0);
	if (rc && s->backend_fd >= 0) { /* timed out, or cut mid-message: the stream is lost */
		pr_err("%s: backend channel closed: %s", s->name,
		       rc == -EAGAIN || rc == -EWOULDBLOCK ? "the front-end does not read it"
							  : strerror(-rc));
		close(s->backend_fd);
		s->backend_fd = -1;
	}
	pthread_mutex_unlock(&s->backend_lock);
	return rc;
}

static const struct vu_iotlb_entry *find(const struct vu_server *s, uint64_t iova, int access)
{
	for (unsigned i = 0; i < s->niotlb; i++) {
		const struct vu_iotlb_entry *e = &s->iotlb[i];

		if (iova >= e->iova && iova - e->iova < e->size && (e->perm & access) == access)
			return e;
	}
	return NULL;
}

/* Tell the front-end about a miss; false when there is no channel to tell it on. */
static bool send_miss(struct vu_server *s, uint64_t iova, int access)
{
	struct vu_hdr h = { VU_BACKEND_IOTLB_MSG, VU_VERSION, VU_IOTLB_SIZE };
	struct vhost_iotlb_msg im = { .iova = iova, .perm = (uint8_t)access,
				      .type = VHOST_IOTLB_MISS };

	return vu_backend_send(s, &h, &im) == 0;
}

/* uaddr (front-end address) to gpa, clipped to the guest memory region holding it. */
static uint64_t uaddr_to_gpa(const struct guest_memory *gm, uint64_t uaddr, uint64_t len,
			     uint64_t *gpa)
{
	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->regions[i];
		uint64_t off = uaddr - r->uaddr;

		if (uaddr >= r->uaddr && off < r->size) {
			*gpa = r->gpa + off;
			return len < r->size - off ? len : r->size - off;
		}
	}
	return 0;
}

struct covered_arg {
	uint64_t iova;
	int access;
};

static bool covered(struct vu_server *s, const void *p)
{
	const struct covered_arg *a = p;
	bool ok;

	pthread_mutex_lock(&s->iotlb_lock);
	ok = find(s, a->iova, a->access) != NULL;
	pthread_mutex_unlock(&s->iotlb_lock);
	return ok;
}

static bool on_loop_thread(const struct vu_server *s)
{
	return s->in_loop && pthread_equal(pthread_self(), s->loop_thread);
}

uint64_t vu_iotlb_xlate(void *opaque, uint64_t iova, uint64_t len, int access, uint64_t *gpa)
{
	struct vu_server *s = opaque;
	const struct vu_iotlb_entry *e;
	struct timespec deadline;
	uint64_t n = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += VU_IOTLB_MISS_WAIT_MS / 1000;
	pthread_mutex_lock(&s->iotlb_lock);
	e = find(s, iova, access);
	if (!e && on_loop_thread(s)) {
		/* the update arrives on the connection this thread serves: read it here */
		struct covered_arg a = { iova, access };

		pthread_mutex_unlock(&s->iotlb_lock);
		if (send_miss(s, iova, access)) {
			s->iotlb_misses++;
			s->pumping = true;
			vu_pump_inline(s, covered, &a, VU_IOTLB_MISS_WAIT_MS);
			s->pumping = false;
		}
		pthread_mutex_lock(&s->iotlb_lock);
		e = find(s, iova, access);
	} else if (!e && send_miss(s, iova, access)) {
		s->iotlb_misses++;
		while (!(e = find(s, iova, access)) &&
		       !pthread_cond_timedwait(&s->iotlb_cond, &s->iotlb_lock, &deadline))
			;
	}
	if (e) {
		uint64_t room = e->size - (iova - e->iova);

		n = uaddr_to_gpa(s->gm, e->uaddr + (iova - e->iova), len < room ? len : room, gpa);
	}
	pthread_mutex_unlock(&s->iotlb_lock);
	if (!n)
		pr_warn("%s: IOTLB: no %s mapping for iova 0x%llx", s->name,
			access & VQ_ACCESS_WRITE ? "writable" : "readable",
			(unsigned long long)iova);
	return n;
}

bool vu_iotlb_ready(struct vu_server *s, uint64_t iova, uint64_t len, int access)
{
	uint64_t at = iova, end = iova + len;

	pthread_mutex_lock(&s->iotlb_lock);
	while (at < end) {
		const struct vu_iotlb_entry *e = find(s, at, access);

		if (!e)
			break;
		at = e->iova + e->size;
		if (at <= e->iova) /* entry reaches the top of the address space */
			at = end;
	}
	pthread_mutex_unlock(&s->iotlb_lock);
	if (at >= end)
		return true;
	if (send_miss(s, at, access))
		s->iotlb_misses++;
	return false;
}

/* Do [a, a+alen) and [b, b+blen) overlap? Compared on inclusive last addresses, clamped at
 * 2^64 - 1, so that a range the peer ends at or beyond the top of the IOVA space (an
 * invalidation of "everything from X") still counts. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	uint64_t alast, blast;

	if (!alen || !blen)
		return false;
	alast = a + (alen - 1) < a ? UINT64_MAX : a + (alen - 1);
	blast = b + (blen - 1) < b ? UINT64_MAX : b + (blen - 1);
	return a <= blast && b <= alast;
}

/* Ring areas of the running rings that [iova, iova+size) touches. */
static bool hits_running_ring(struct vu_server *s, uint64_t iova, uint64_t size)
{
	for (unsigned i = 0; i < s->nrings; i++) {
		const struct vu_vring *r = &s->rings[i];
		uint64_t a[3] = { r->addr.desc_user_addr, r->addr.avail_user_addr,
				  r->addr.used_user_addr };

		if (!r->running)
			continue;
		for (int k = 0; k < 3; k++)
			if (ranges_overlap(a[k], 16ull * r->num + 6, iova, size))
				return true;
	}
	return false;
}

/* After an IOTLB change: start what waited for translations; restart rings whose areas
 * were invalidated (the device holds pointers to them). Not while pumping inline. */
void vu_iotlb_changed(struct vu_server *s, const struct vhost_iotlb_msg *im)
{
	if (s->pumping || !vu_iotlb_active(s))
		return;
	if (im->type == VHOST_IOTLB_INVALIDATE && s->dev_started &&
	    hits_running_ring(s, im->iova, im->size)) {
		pr_debug("%s: IOTLB invalidation under a running ring: restarting", s->name);
		vu_dev_stop(s);
		vu_dev_sync(s, false);
	} else if (im->type == VHOST_IOTLB_UPDATE && s->iotlb_start_pending) {
		s->iotlb_start_pending = false;
		vu_dev_sync(s, false);
	}
}
