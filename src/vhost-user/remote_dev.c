/* The device-ops of a vhost-user device in another process (see remote_dev.h): virtio's
 * status machine on this side, the rings and the I/O on the backend's side.
 */
#include "vhost-user/remote_dev.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "vhost-user/vu_proto.h"

#define RD_DEFAULT_QUEUE_MAX 256
#define RD_VENDOR_ID 0x1af4u
#define RD_STOP_TOKEN UINT32_MAX

struct rd_queue {
	unsigned num;
	uint64_t desc, driver, device;
	bool ready;
	bool running;                /* started on the backend (read by kick_vq without lock) */
	uint16_t base;               /* last_avail_idx to start from / where it stopped */
	int kick_fd, call_fd;        /* ours, for the object's lifetime */
	int ext_call_fd;             /* the VMM's (irqfd), or -1 */
	virtio_vq_cb cb;
	void *cb_opaque;
};

struct vu_remote {
	char name[32];
	struct vu_fe *fe;
	struct guest_memory *gm;
	pthread_mutex_t lock;
	uint32_t device_id;
	unsigned nq, queue_max, config_size;
	uint64_t hidden_features;    /* never offered, refused at FEATURES_OK */
	uint8_t status;
	uint64_t driver_features;
	virtio_config_cb config_cb;
	void *config_cb_opaque;
	struct rd_queue q[VIRTIO_MAX_QUEUES];
	int epfd, stop_fd;
	pthread_t poller;
	bool poller_started;
};

static struct vu_remote *to_rd(void *dev)
{
	return dev;
}

static struct rd_queue *queue_of(struct vu_remote *rd, unsigned idx)
{
	return idx < rd->nq ? &rd->q[idx] : NULL;
}

/* ---- the call poller -------------------------------------------------------------------- */

static void *poller_thread(void *arg)
{
	struct vu_remote *rd = arg;

	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(rd->epfd, evs, 8, -1);

		for (int i = 0; i < n; i++) {
			uint32_t idx = evs[i].data.u32;
			virtio_vq_cb cb;
			void *opaque;
			eventfd_t v;

			if (idx == RD_STOP_TOKEN)
				return NULL;
			if (eventfd_read(rd->q[idx].call_fd, &v))
				continue;
			pthread_mutex_lock(&rd->lock);
			cb = rd->q[idx].running ? rd->q[idx].cb : NULL;
			opaque = rd->q[idx].cb_opaque;
			pthread_mutex_unlock(&rd->lock);
			if (cb)
				cb(opaque, idx);
		}
		if (n < 0 && errno != EINTR) {
			pr_err("vhost-user %s: call poller: %s", rd->name, strerror(errno));
			return NULL;
		}
	}
}

/* ---- starting and stopping ------------------------------------------------------------- */

/* Stop every running queue; each one's base is where the backend stopped. */
static void stop_queues(struct vu_remote *rd)
{
	for (unsigned i = 0; i < rd->nq; i++) {
		struct rd_queue *q = &rd->q[i];
		uint16_t base;

		if (!q->running)
			continue;
		__atomic_store_n(&q->running, false, __ATOMIC_RELEASE);
		if (vu_fe_vring_stop(rd->fe, i, &base) == 0)
			q->base = base;
		else
			pr_warn("vhost-user %s: queue %u: no base from the backend", rd->name, i);
	}
}

static int start_queues(struct vu_remote *rd)
{
	int rc = vu_fe_set_mem_table(rd->fe);

	for (unsigned i = 0; i < rd->nq && !rc; i++) {
		struct rd_queue *q = &rd->q[i];
		struct vu_fe_vring r = {
			.num = q->num, .desc = q->desc, .avail = q->driver, .used = q->device,
			.base = q->base, .kick_fd = q->kick_fd,
			.call_fd = q->ext_call_fd >= 0 ? q->ext_call_fd : q->call_fd,
		};

		if (!q->ready)
			continue;
		rc = vu_fe_vring_start(rd->fe, i, &r);
		if (!rc)
			__atomic_store_n(&q->running, true, __ATOMIC_RELEASE);
	}
	if (rc) {
		pr_err("vhost-user %s: cannot start the device: %s", rd->name, strerror(-rc));
		stop_queues(rd);
	}
	return rc;
}

/* Back to the state after creation (callbacks and external call fds stay, as in-process). */
static void reset_locked(struct vu_remote *rd)
{
	stop_queues(rd);
	for (unsigned i = 0; i < rd->nq; i++) {
		struct rd_queue *q = &rd->q[i];

		q->num = rd->queue_max;
		q->desc = q->driver = q->device = 0;
		q->ready = false;
		q->base = 0;
	}
	rd->status = 0;
	rd->driver_features = 0;
}

/* ---- the ops ----------------------------------------------------------------------------- */

static uint64_t op_get_features(void *dev)
{
	return vu_fe_device_features(to_rd(dev)->fe) & ~to_rd(dev)->hidden_features;
}

static int op_set_features(void *dev, uint64_t features)
{
	struct vu_remote *rd = to_rd(dev);
	int rc = 0;

	pthread_mutex_lock(&rd->lock);
	if (rd->status & VIRTIO_STATUS_FEATURES_OK)
		rc = -EBUSY;
	else
		rd->driver_features = features;
	pthread_mutex_unlock(&rd->lock);
	return rc;
}

static uint64_t op_get_driver_features(void *dev)
{
	return to_rd(dev)->driver_features;
}

/* Queue settings: only while the queue is not ready and the device not started. */
static struct rd_queue *settable(struct vu_remote *rd, unsigned idx, int *rc)
{
	struct rd_queue *q = queue_of(rd, idx);

	*rc = !q ? -EINVAL : (q->ready || (rd->status & VIRTIO_STATUS_DRIVER_OK)) ? -EBUSY : 0;
	return *rc ? NULL : q;
}

static int op_set_vq_address(void *dev, unsigned idx, uint64_t desc, uint64_t driver,
			     uint64_t device)
{
	struct vu_remote *rd = to_rd(dev);
	struct rd_queue *q;
	int rc;

	pthread_mutex_lock(&rd->lock);
	q = settable(rd, idx, &rc);
	if (q) {
		q->desc = desc;
		q->driver = driver;
		q->device = device;
	}
	pthread_mutex_unlock(&rd->lock);
	return rc;
}

static int op_set_vq_num(void *dev, unsigned idx, unsigned num)
{
	struct vu_remote *rd = to_rd(dev);
	struct rd_queue *q;
	int rc;

	pthread_mutex_lock(&rd->lock);
	q = settable(rd, idx, &rc);
	if (q && (!num || num > rd->queue_max))
		rc = -EINVAL;
	else if (q)
		q->num = num;
	pthread_mutex_unlock(&rd->lock);
	return rc;
}

static unsigned op_get_vq_num_max(void *dev, unsigned idx)
{
	struct vu_remote *rd = to_rd(dev);

	return idx < rd->nq ? rd->queue_max : 0;
}

static void op_kick_vq(void *dev, unsigned idx)
{
	struct vu_remote *rd = to_rd(dev);

	if (idx < rd->nq && __atomic_load_n(&rd->q[idx].running, __ATOMIC_ACQUIRE))
		eventfd_write(rd->q[idx].kick_fd, 1);
}

static void op_set_vq_cb(void *dev, unsigned idx, virtio_vq_cb cb, void *opaque)
{
	struct vu_remote *rd = to_rd(dev);

	pthread_mutex_lock(&rd->lock);
	if (idx < rd->nq) {
		rd->q[idx].cb = cb;
		rd->q[idx].cb_opaque = opaque;
	}
	pthread_mutex_unlock(&rd->lock);
}

static int op_set_vq_ready(void *dev, unsigned idx, bool ready)
{
	struct vu_remote *rd = to_rd(dev);
	struct rd_queue *q;
	int rc = 0;

	pthread_mutex_lock(&rd->lock);
	q = queue_of(rd, idx);
	if (!q)
		rc = -EINVAL;
	else if (rd->status & VIRTIO_STATUS_DRIVER_OK)
		rc = -EBUSY;
	else if (ready && (!(rd->status & VIRTIO_STATUS_FEATURES_OK) || !q->desc))
		rc = -EINVAL;
	else
		q->ready = ready;
	pthread_mutex_unlock(&rd->lock);
	return rc;
}

static bool op_get_vq_ready(void *dev, unsigned idx)
{
	struct vu_remote *rd = to_rd(dev);
	bool r;

	pthread_mutex_lock(&rd->lock);
	r = idx < rd->nq && rd->q[idx].ready;
	pthread_mutex_unlock(&rd->lock);
	return r;
}

/* The base: what was set, or where the backend stopped (vhost-user reports only the avail
 * index; the used index equals it once the backend has finished what it popped). */
static int op_get_vq_state(void *dev, unsigned idx, struct virtio_vq_state *st)
{
	struct vu_remote *rd = to_rd(dev);
	int rc = 0;

	pthread_mutex_lock(&rd->lock);
	if (idx >= rd->nq)
		rc = -EINVAL;
	else if (rd->q[idx].running)
		rc = -EBUSY; /* only a stopped ring has a base to read */
	else
		*st = (struct virtio_vq_state){ rd->q[idx].base, rd->q[idx].base };
	pthread_mutex_unlock(&rd->lock);
	return rc;
}

static int op_set_vq_state(void *dev, unsigned idx, const struct virtio_vq_state *st)
{
	struct vu_remote *rd = to_rd(dev);
	struct rd_queue *q;
	int rc;

	pthread_mutex_lock(&rd->lock);
	q = settable(rd, idx, &rc);
	if (q)
		q->base = st->last_avail_idx;
	pthread_mutex_unlock(&rd->lock);
	return rc;
}

static unsigned config_clip(struct vu_remote *rd, unsigned offset, unsigned len)
{
	if (offset >= rd->config_size)
		return 0;
	return len < rd->config_size - offset ? len : rd->config_size - offset;
}

static void op_get_config(void *dev, unsigned offset, void *buf, unsigned len)
{
	struct vu_remote *rd = to_rd(dev);
	unsigned n = config_clip(rd, offset, len);

	memset(buf, 0, len);
	if (!n)
		return;
	pthread_mutex_lock(&rd->lock);
	if (vu_fe_get_config(rd->fe, offset, buf, n))
		memset(buf, 0, len);
	pthread_mutex_unlock(&rd->lock);
}

static void op_set_config(void *dev, unsigned offset, const void *buf, unsigned len)
{
	struct vu_remote *rd = to_rd(dev);
	unsigned n = config_clip(rd, offset, len);

	if (!n)
		return;
	pthread_mutex_lock(&rd->lock);
	vu_fe_set_config(rd->fe, offset, buf, n);
	pthread_mutex_unlock(&rd->lock);
}

static unsigned op_get_config_size(void *dev)
{
	return to_rd(dev)->config_size;
}

static void op_set_config_cb(void *dev, virtio_config_cb cb, void *opaque)
{
	struct vu_remote *rd = to_rd(dev);

	pthread_mutex_lock(&rd->lock);
	rd->config_cb = cb;
	rd->config_cb_opaque = opaque;
	pthread_mutex_unlock(&rd->lock);
}

static uint8_t op_get_status(void *dev)
{
	struct vu_remote *rd = to_rd(dev);
	uint8_t s;

	pthread_mutex_lock(&rd->lock);
	s = rd->status;
	pthread_mutex_unlock(&rd->lock);
	return s;
}

/* FEATURES_OK and DRIVER_OK are where the backend hears about the driver. */
static void op_set_status(void *dev, uint8_t status)
{
	struct vu_remote *rd = to_rd(dev);
	uint8_t old;

	pthread_mutex_lock(&rd->lock);
	old = rd->status;
	if (status == 0) {
		reset_locked(rd);
		goto out;
	}
	if (old & ~status & ~VIRTIO_STATUS_NEEDS_RESET) {
		pr_warn("vhost-user %s: status 0x%x would clear bits of 0x%x: refused", rd->name,
			status, old);
		goto out;
	}
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    (!(rd->driver_features & (1ull << VIRTIO_F_VERSION_1)) ||
	     (rd->driver_features & rd->hidden_features) ||
	     vu_fe_set_features(rd->fe, rd->driver_features)))
		status &= ~VIRTIO_STATUS_FEATURES_OK;
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(status & VIRTIO_STATUS_FEATURES_OK))
			status &= ~VIRTIO_STATUS_DRIVER_OK;
		else if (start_queues(rd))
			status |= VIRTIO_STATUS_NEEDS_RESET;
	}
	rd->status = status | (old & VIRTIO_STATUS_NEEDS_RESET);
out:
	pthread_mutex_unlock(&rd->lock);
}

static void op_reset(void *dev)
{
	struct vu_remote *rd = to_rd(dev);

	pthread_mutex_lock(&rd->lock);
	reset_locked(rd);
	pthread_mutex_unlock(&rd->lock);
}

static uint32_t op_get_vendor_id(void *dev)
{
	(void)dev;
	return RD_VENDOR_ID;
}

static uint32_t op_get_device_id(void *dev)
{
	return to_rd(dev)->device_id;
}

static unsigned op_get_num_queues(void *dev)
{
	return to_rd(dev)->nq;
}

static const struct virtio_device_ops remote_ops = {
	.get_features = op_get_features,
	.set_features = op_set_features,
	.set_vq_address = op_set_vq_address,
	.set_vq_num = op_set_vq_num,
	.get_vq_num_max = op_get_vq_num_max,
	.kick_vq = op_kick_vq,
	.set_vq_cb = op_set_vq_cb,
	.set_vq_ready = op_set_vq_ready,
	.get_vq_ready = op_get_vq_ready,
	.get_vq_state = op_get_vq_state,
	.set_vq_state = op_set_vq_state,
	.get_config = op_get_config,
	.set_config = op_set_config,
	.get_config_size = op_get_config_size,
	.set_config_cb = op_set_config_cb,
	.get_status = op_get_status,
	.set_status = op_set_status,
	.get_vendor_id = op_get_vendor_id,
	.get_device_id = op_get_device_id,
	.get_num_queues = op_get_num_queues,
	.reset = op_reset,
	.get_driver_features = op_get_driver_features,
};

/* ---- life cycle -------------------------------------------------------------------------- */

static int create_fds(struct vu_remote *rd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = RD_STOP_TOKEN };

	rd->epfd = epoll_create1(EPOLL_CLOEXEC);
	rd->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rd->epfd < 0 || rd->stop_fd < 0 || epoll_ctl(rd->epfd, EPOLL_CTL_ADD, rd->stop_fd, &ev))
		return -errno;
	for (unsigned i = 0; i < rd->nq; i++) {
		struct rd_queue *q = &rd->q[i];

		q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_fd < 0 || q->call_fd < 0)
			return -errno;
		ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = i };
		if (epoll_ctl(rd->epfd, EPOLL_CTL_ADD, q->call_fd, &ev))
			return -errno;
	}
	return 0;
}

int vu_remote_create(const struct vu_remote_config *cfg, struct vu_remote **out)
{
	struct vu_fe_config fc = { .name = cfg->name, .gm = cfg->gm };
	struct vu_remote *rd;
	int rc;

	if (cfg->config_size > VU_MAX_CONFIG || cfg->num_queues > VIRTIO_MAX_QUEUES ||
	    cfg->queue_max > 32768)
		return -EINVAL;
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	snprintf(rd->name, sizeof(rd->name), "%s", cfg->name ? cfg->name : "remote");
	pthread_mutex_init(&rd->lock, NULL);
	rd->epfd = rd->stop_fd = -1;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		rd->q[i].kick_fd = rd->q[i].call_fd = rd->q[i].ext_call_fd = -1;
	rd->gm = cfg->gm;
	rd->device_id = cfg->device_id;
	rd->config_size = cfg->config_size;
	rd->hidden_features = cfg->hidden_features;
	rd->queue_max = cfg->queue_max ? cfg->queue_max : RD_DEFAULT_QUEUE_MAX;
	rc = vu_fe_connect(&fc, cfg->socket, &rd->fe);
	if (rc)
		goto fail;
	rd->nq = cfg->num_queues ? cfg->num_queues :
		 vu_fe_queue_num(rd->fe) ? vu_fe_queue_num(rd->fe) : 1;
	if (rd->nq > VIRTIO_MAX_QUEUES) {
		rc = -E2BIG;
		goto fail;
	}
	rc = create_fds(rd);
	if (!rc)
		rc = -pthread_create(&rd->poller, NULL, poller_thread, rd);
	if (rc)
		goto fail;
	rd->poller_started = true;
	reset_locked(rd);
	*out = rd;
	return 0;
fail:
	pr_err("vhost-user %s: %s: %s", rd->name, cfg->socket, strerror(-rc));
	vu_remote_destroy(rd);
	return rc;
}

void vu_remote_destroy(struct vu_remote *rd)
{
	if (!rd)
		return;
	if (rd->fe) {
		pthread_mutex_lock(&rd->lock);
		stop_queues(rd);
		pthread_mutex_unlock(&rd->lock);
	}
	if (rd->poller_started) {
		eventfd_write(rd->stop_fd, 1);
		pthread_join(rd->poller, NULL);
	}
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		if (rd->q[i].kick_fd >= 0)
			close(rd->q[i].kick_fd);
		if (rd->q[i].call_fd >= 0)
			close(rd->q[i].call_fd);
	}
	if (rd->epfd >= 0)
		close(rd->epfd);
	if (rd->stop_fd >= 0)
		close(rd->stop_fd);
	vu_fe_destroy(rd->fe);
	pthread_mutex_destroy(&rd->lock);
	free(rd);
}

struct virtio_dev_handle vu_remote_handle(struct vu_remote *rd)
{
	return (struct virtio_dev_handle){ &remote_ops, rd };
}

void vu_remote_quiesce(void *dev)
{
	struct vu_remote *rd = to_rd(dev);

	pthread_mutex_lock(&rd->lock);
	stop_queues(rd);
	pthread_mutex_unlock(&rd->lock);
}

int vu_remote_kick_fd(struct vu_remote *rd, unsigned idx)
{
	return idx < rd->nq ? rd->q[idx].kick_fd : -1;
}

int vu_remote_set_call_fd(struct vu_remote *rd, unsigned idx, int fd)
{
	int rc = 0;

	pthread_mutex_lock(&rd->lock);
	if (idx >= rd->nq)
		rc = -EINVAL;
	else if (rd->q[idx].running)
		rc = -EBUSY;
	else
		rd->q[idx].ext_call_fd = fd;
	pthread_mutex_unlock(&rd->lock);
	return rc;
}
