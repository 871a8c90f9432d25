/* vhost-user rings: SET_VRING_* requests, and starting/stopping a ring on the device.
 *
 * A ring is runnable while it has a size, addresses, a kick fd, the memory table, and is
 * enabled (rings start disabled once VHOST_USER_F_PROTOCOL_FEATURES is negotiated). The
 * device-ops model is virtio's: queues are set up, then DRIVER_OK starts the device. vhost-user
 * starts and stops rings one at a time, so whenever the set of runnable rings changes the
 * device is stopped (bases saved, reset) and started again on the new set (vu_dev_sync).
 * Ring addresses are front-end user addresses (or IOVAs under the IOTLB); they are
 * translated and checked against guest memory before the device sees them. GET_VRING_BASE
 * stops the ring and returns its base.
 */
#include "vhost-user/vu_internal.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

void vu_vrings_init(struct vu_server *s)
{
	for (unsigned i = 0; i < VU_MAX_RINGS; i++) {
		struct vu_vring *r = &s->rings[i];

		r->s = s;
		r->idx = i;
		r->kick_fd = r->call_fd = r->err_fd = -1;
		pthread_mutex_init(&r->call_lock, NULL);
	}
}

/* The device wants the driver interrupted: bring the dirty log up to date first, so that
 * the front-end never sees a used entry whose pages are not logged yet. */
static void call_cb(void *opaque, unsigned idx)
{
	struct vu_vring *r = opaque;

	(void)idx;
	vu_log_flush(r->s);
	pthread_mutex_lock(&r->call_lock);
	if (r->call_fd >= 0)
		eventfd_write(r->call_fd, 1);
	pthread_mutex_unlock(&r->call_lock);
}

/* The device's config callback: it failed (NEEDS_RESET: each running ring's error eventfd
 * is signalled, QEMU reports "vhost vring error") or its config space changed (the front-end
 * is told on the backend channel when CONFIG and BACKEND_REQ were negotiated). It runs under
 * the device's lock, so it only signals. */
static void config_cb(void *opaque)
{
	struct vu_server *s = opaque;
	struct vu_hdr h = { VU_BACKEND_CONFIG_CHANGE_MSG, VU_VERSION, 0 };

	if (s->dev.ops->get_status(s->dev.dev) & VIRTIO_STATUS_NEEDS_RESET) {
		for (unsigned i = 0; i < s->nrings; i++) {
			struct vu_vring *r = &s->rings[i];

			pthread_mutex_lock(&r->call_lock);
			if (r->running && r->err_fd >= 0)
				eventfd_write(r->err_fd, 1);
			pthread_mutex_unlock(&r->call_lock);
		}
		return;
	}
	if (!vu_has_pf(s, VU_PF_CONFIG) || !vu_has_pf(s, VU_PF_BACKEND_REQ))
		return;
	vu_backend_send(s, &h, NULL);
}

static bool packed(const struct vu_server *s)
{
	return vu_has_feature(s, VIRTIO_F_RING_PACKED);
}

/* Bytes of the three ring areas for a ring of num entries (event fields included). */
static void ring_sizes(const struct vu_server *s, unsigned num, uint64_t *d, uint64_t *a,
		       uint64_t *u)
{
	*d = 16ull * num;
	if (packed(s)) {
		*a = 4;
		*u = 4;
	} else {
		*a = 6 + 2ull * num;
		*u = 6 + 8ull * num;
	}
}

static int ring_gpas(struct vu_vring *r, uint64_t *desc, uint64_t *avail, uint64_t *used)
{
	uint64_t dl, al, ul;

	ring_sizes(r->s, r->num, &dl, &al, &ul);
	if (vu_ring_addr_to_gpa(r->s, r->addr.desc_user_addr, dl, desc) ||
	    vu_ring_addr_to_gpa(r->s, r->addr.avail_user_addr, al, avail) ||
	    vu_ring_addr_to_gpa(r->s, r->addr.used_user_addr, ul, used)) {
		vu_fail(r->s, "vring address outside guest memory");
		return -EFAULT;
	}
	return 0;
}

/* Negotiate on the device: ACKNOWLEDGE|DRIVER, set_features, FEATURES_OK. */
int vu_negotiate_device(struct vu_server *s)
{
	const struct virtio_device_ops *ops = s->dev.ops;
	uint64_t f = vu_device_features(s);
	uint8_t st;
	int rc;

	ops->set_status(s->dev.dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	rc = ops->set_features(s->dev.dev, f);
	if (rc)
		return rc;
	st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	ops->set_status(s->dev.dev, st);
	if (!(ops->get_status(s->dev.dev) & VIRTIO_STATUS_FEATURES_OK))
		return -EINVAL;
	return 0;
}

/* Hand ring r to the (not yet live) device. */
static int ring_setup(struct vu_vring *r)
{
	struct vu_server *s = r->s;
	const struct virtio_device_ops *ops = s->dev.ops;
	void *dev = s->dev.dev;
	uint64_t desc, avail, used;
	int rc;

	rc = ring_gpas(r, &desc, &avail, &used);
	if (rc)
		return rc;
	pr_info("%s: ring %u starts at base %u (used %u), size %u", s->name, r->idx,
		r->base.last_avail_idx, r->base.used_idx, r->num);
	rc = ops->set_vq_num(dev, r->idx, r->num);
	if (!rc)
		rc = ops->set_vq_address(dev, r->idx, desc, avail, used);
	if (!rc)
		rc = ops->set_vq_state(dev, r->idx, &r->base);
	if (rc) {
		vu_fail(s, "the device refused the ring set-up");
		return rc;
	}
	ops->set_vq_cb(dev, r->idx, call_cb, r);
	rc = ops->set_vq_ready(dev, r->idx, true);
	if (rc || !ops->get_vq_ready(dev, r->idx)) {
		vu_fail(s, "the device refused the rings (outside guest memory or misaligned?)");
		return rc ? rc : -EINVAL;
	}
	return 0;
}

static bool ring_runnable(const struct vu_vring *r)
{
	return r->kick_fd >= 0 && r->enabled && r->addr_set && r->num && r->s->nmaps;
}

/* Stop the device: it is quiesced (what is in flight completes), every running ring's base
 * is saved, then the device is reset. */
void vu_dev_stop(struct vu_server *s)
{
	const struct virtio_device_ops *ops = s->dev.ops;

	if (!s->dev_started)
		return;
	for (unsigned i = 0; i < s->nrings; i++) {
		struct vu_vring *r = &s->rings[i];

		if (!r->running)
			continue;
		if (s->watch.unwatch && r->kick_fd >= 0 && !r->device_kick)
			s->watch.unwatch(s->watch.opaque, r->kick_fd);
	}
	if (s->quiesce)
		s->quiesce(s->dev.dev);
	for (unsigned i = 0; i < s->nrings; i++) {
		struct vu_vring *r = &s->rings[i];

		if (!r->running)
			continue;
		ops->get_vq_state(s->dev.dev, r->idx, &r->base);
		pr_info("%s: ring %u stopped at base %u (used %u)", s->name, r->idx,
			r->base.last_avail_idx, r->base.used_idx);
		if (!s->quiesce)
			r->base.used_idx = r->base.last_avail_idx;
	}
	ops->reset(s->dev.dev);
	for (unsigned i = 0; i < s->nrings; i++)
		s->rings[i].running = s->rings[i].device_kick = false;
	s->dev_started = false;
	vu_log_flush(s);
	pr_debug("%s: device stopped", s->name);
}

/* Under the IOTLB: whether every runnable ring's areas are mapped (misses are sent for the
 * first gap of each, without waiting: the answers arrive as messages on this thread). */
static bool rings_translatable(struct vu_server *s)
{
	bool ok = true;

	if (!vu_iotlb_active(s))
		return true;
	for (unsigned i = 0; i < s->nrings; i++) {
		struct vu_vring *r = &s->rings[i];
		uint64_t dl, al, ul;

		if (!ring_runnable(r))
			continue;
		ring_sizes(s, r->num, &dl, &al, &ul);
		ok &= vu_iotlb_ready(s, r->addr.desc_user_addr, dl,
				     packed(s) ? VQ_ACCESS_READ | VQ_ACCESS_WRITE : VQ_ACCESS_READ);
		ok &= vu_iotlb_ready(s, r->addr.avail_user_addr, al, VQ_ACCESS_READ);
		ok &= vu_iotlb_ready(s, r->addr.used_user_addr, ul, VQ_ACCESS_WRITE);
	}
	return ok;
}

/* Start the device on every runnable ring. */
static int dev_start(struct vu_server *s)
{
	const struct virtio_device_ops *ops = s->dev.ops;
	void *dev = s->dev.dev;
	unsigned n = 0;
	uint8_t st;
	int rc;

	if (!s->features_set) {
		vu_fail(s, "ring started before SET_FEATURES");
		return -EPROTO;
	}
	if (!rings_translatable(s)) {
		s->iotlb_start_pending = true; /* misses sent: the updates start it */
		pr_debug("%s: start waits for IOTLB entries of the rings", s->name);
		return 0;
	}
	ops->reset(dev);
	rc = vu_negotiate_device(s);
	if (rc) {
		vu_fail(s, "the device refused the features");
		return rc;
	}
	if (s->set_iotlb)
		s->set_iotlb(dev, vu_iotlb_active(s) ? &s->vq_iotlb : NULL);
	ops->set_config_cb(dev, config_cb, s);
	for (unsigned i = 0; i < s->nrings && !rc; i++)
		if (ring_runnable(&s->rings[i])) {
			rc = ring_setup(&s->rings[i]);
			n++;
		}
	if (rc)
		goto fail;
	for (unsigned i = 0; i < s->nrings && s->set_kick_fd; i++)
		if (ring_runnable(&s->rings[i]))
			s->rings[i].device_kick = s->set_kick_fd(dev, i, s->rings[i].kick_fd);
	ops->set_status(dev, ops->get_status(dev) | VIRTIO_STATUS_DRIVER_OK);
	st = ops->get_status(dev);
	if (!(st & VIRTIO_STATUS_DRIVER_OK) ||
	    (st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))) {
		vu_fail(s, "the device failed to start");
		rc = -EIO;
		goto fail;
	}
	s->dev_started = true;
	for (unsigned i = 0; i < s->nrings; i++) {
		struct vu_vring *r = &s->rings[i];

		if (!ring_runnable(r))
			continue;
		r->running = true;
		if (s->watch.watch && !r->device_kick)
			s->watch.watch(s->watch.opaque, r->kick_fd, VU_TOKEN_KICK(r->idx));
	}
	pr_debug("%s: device started on %u rings", s->name, n);
	for (unsigned i = 0; i < s->nrings; i++)
		if (s->rings[i].running)
			ops->kick_vq(dev, i); /* buffers may already be waiting */
	return 0;
fail:
	ops->reset(dev);
	for (unsigned i = 0; i < s->nrings; i++)
		s->rings[i].device_kick = false;
	return rc;
}

/* Bring the device in line with the rings: started on exactly the runnable ones (restarted
 * when that set changes or force is set), stopped when none is runnable. */
int vu_dev_sync(struct vu_server *s, bool force)
{
	bool same = s->dev_started, any = false;

	for (unsigned i = 0; i < s->nrings; i++) {
		bool want = ring_runnable(&s->rings[i]);

		any |= want;
		if (want != s->rings[i].running)
			same = false;
	}
	if (same && !force)
		return 0;
	vu_dev_stop(s);
	return any ? dev_start(s) : 0;
}

void vu_handle_kick(struct vu_server *s, unsigned idx)
{
	struct vu_vring *r = &s->rings[idx];
	eventfd_t v;

	if (r->kick_fd < 0 || eventfd_read(r->kick_fd, &v) < 0)
		return;
	if (r->running)
		s->dev.ops->kick_vq(s->dev.dev, idx);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void vu_vrings_reset(struct vu_server *s)
{
	vu_dev_stop(s);
	for (unsigned i = 0; i < s->nrings; i++) {
		struct vu_vring *r = &s->rings[i];

		close_fd(&r->kick_fd);
		pthread_mutex_lock(&r->call_lock);
		close_fd(&r->err_fd);
		close_fd(&r->call_fd);
		pthread_mutex_unlock(&r->call_lock);
		r->num = 0;
		r->addr_set = false;
		r->enabled = false;
		r->base = (struct virtio_vq_state){ 0, 0 };
	}
}

/* ---- requests ------------------------------------------------------------------------------ */

static struct vu_vring *ring_of(struct vu_server *s, uint64_t index, const char *req)
{
	if (index >= s->nrings) {
		vu_fail(s, "ring index out of range");
		pr_err("%s: %s for ring %llu, the device has %u", s->name, req,
		       (unsigned long long)index, s->nrings);
		return NULL;
	}
	return &s->rings[index];
}

/* SET_VRING_KICK/CALL/ERR: a ring index and the NOFD bit in a u64, nothing else. */
static struct vu_vring *ring_of_fd_msg(struct vu_server *s, const struct vu_msg *m,
				       const char *req)
{
	if (m->payload.u64 & ~(uint64_t)(VU_VRING_IDX_MASK | VU_VRING_NOFD)) {
		vu_fail(s, "unknown bits beside the ring index in SET_VRING_KICK/CALL/ERR");
		return NULL;
	}
	return ring_of(s, m->payload.u64 & VU_VRING_IDX_MASK, req);
}

int vu_h_vring_num(struct vu_server *s, struct vu_msg *m)
{
	struct vu_vring *r = ring_of(s, m->payload.state.index, "SET_VRING_NUM");
	unsigned num = m->payload.state.num, max;

	if (!r)
		return -EINVAL;
	max = s->dev.ops->get_vq_num_max(s->dev.dev, r->idx);
	if (num == 0 || num > max || num > VQ_MAX_SIZE ||
	    (!packed(s) && (num & (num - 1)))) {
		vu_fail(s, "ring size zero, too large, or not a power of two");
		return -EINVAL;
	}
	if (r->running) {
		vu_fail(s, "SET_VRING_NUM on a running ring");
		return -EBUSY;
	}
	r->num = num;
	return 0;
}

int vu_h_vring_addr(struct vu_server *s, struct vu_msg *m)
{
	struct vhost_vring_addr *a = &m->payload.addr;
	struct vu_vring *r = ring_of(s, a->index, "SET_VRING_ADDR");
	bool same;

	if (!r)
		return -EINVAL;
	if (a->flags & ~(1u << VHOST_VRING_F_LOG)) {
		vu_fail(s, "unknown SET_VRING_ADDR flags");
		return -EINVAL;
	}
	/* the used ring's log range, for the largest ring SET_VRING_NUM may set later */
	if ((a->flags & (1u << VHOST_VRING_F_LOG)) &&
	    a->log_guest_addr > UINT64_MAX - (6 + 8ull * VQ_MAX_SIZE)) {
		vu_fail(s, "used ring log address overflows");
		return -EINVAL;
	}
	same = r->addr_set && a->desc_user_addr == r->addr.desc_user_addr &&
	       a->avail_user_addr == r->addr.avail_user_addr &&
	       a->used_user_addr == r->addr.used_user_addr;
	if (r->running && same) { /* logging switched on or off (migration) */
		r->addr = *a;
		return 0;
	}
	r->addr = *a;
	r->addr_set = true;
	if (r->num && s->nmaps) { /* check now, so that a bad address is refused by this message */
		uint64_t d, av, u;
		int rc = ring_gpas(r, &d, &av, &u);

		if (rc)
			return rc;
	}
	return vu_dev_sync(s, r->running);
}

int vu_h_vring_base(struct vu_server *s, struct vu_msg *m)
{
	struct vu_vring *r = ring_of(s, m->payload.state.index, "SET_VRING_BASE");
	uint32_t num = m->payload.state.num;

	if (!r)
		return -EINVAL;
	if (r->running) {
		vu_fail(s, "SET_VRING_BASE on a running ring");
		return -EBUSY;
	}
	if (packed(s)) {
		r->base.last_avail_idx = num & 0xffff;
		r->base.used_idx = num >> 16;
	} else {
		if (num > 0xffff) {
			vu_fail(s, "split ring base over 16 bits");
			return -EINVAL;
		}
		r->base.last_avail_idx = num;
		r->base.used_idx = num; /* nothing is in flight across a stop */
	}
	return 0;
}

int vu_h_get_vring_base(struct vu_server *s, struct vu_msg *m)
{
	struct vu_vring *r = ring_of(s, m->payload.state.index, "GET_VRING_BASE");

	if (!r)
		return -EINVAL;
	/* stopped before its kick fd closes: a device that reads the fd itself (blk) must not
	 * touch the number once it is closed and perhaps reused */
	if (r->running)
		vu_dev_stop(s);
	close_fd(&r->kick_fd); /* a stopped ring starts again with the next SET_VRING_KICK */
	vu_dev_sync(s, false);
	m->payload.state.num = r->base.last_avail_idx;
	if (packed(s))
		m->payload.state.num |= (uint32_t)r->base.used_idx << 16;
	return 0;
}

int vu_h_vring_kick(struct vu_server *s, struct vu_msg *m)
{
	struct vu_vring *r = ring_of_fd_msg(s, m, "SET_VRING_KICK");

	if (!r)
		return -EINVAL;
	if (m->payload.u64 & VU_VRING_NOFD) {
		vu_fail(s, "rings without a kick fd (polling) are not supported");
		return -EOPNOTSUPP;
	}
	if (r->running)
		vu_dev_stop(s);
	close_fd(&r->kick_fd);
	r->kick_fd = vu_msg_take_fd(m, 0);
	return vu_dev_sync(s, false);
}

int vu_h_vring_call(struct vu_server *s, struct vu_msg *m)
{
	struct vu_vring *r = ring_of_fd_msg(s, m, "SET_VRING_CALL");
	int fd;

	if (!r)
		return -EINVAL;
	fd = (m->payload.u64 & VU_VRING_NOFD) ? -1 : vu_msg_take_fd(m, 0);
	pthread_mutex_lock(&r->call_lock);
	close_fd(&r->call_fd);
	r->call_fd = fd;
	pthread_mutex_unlock(&r->call_lock);
	return 0;
}

int vu_h_vring_err(struct vu_server *s, struct vu_msg *m)
{
	struct vu_vring *r = ring_of_fd_msg(s, m, "SET_VRING_ERR");
	int fd;

	if (!r)
		return -EINVAL;
	fd = (m->payload.u64 & VU_VRING_NOFD) ? -1 : vu_msg_take_fd(m, 0);
	pthread_mutex_lock(&r->call_lock); /* the device's config callback signals it */
	close_fd(&r->err_fd);
	r->err_fd = fd;
	pthread_mutex_unlock(&r->call_lock);
	return 0;
}

int vu_h_vring_enable(struct vu_server *s, struct vu_msg *m)
{
	struct vu_vring *r = ring_of(s, m->payload.state.index, "SET_VRING_ENABLE");

	if (!r)
		return -EINVAL;
	if (m->payload.state.num > 1) {
		vu_fail(s, "SET_VRING_ENABLE with a value other than 0 or 1");
		return -EINVAL;
	}
	r->enabled = m->payload.state.num;
	return vu_dev_sync(s, false);
}
