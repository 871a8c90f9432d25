/* vhost-user back-end: connections, the dispatch table, and the requests about features,
 * ownership and config space. Rings are in vu_vring.c, memory and the dirty log in vu_mem.c,
 * the IOTLB in vu_iotlb.c.
 *
 * Every request is described once in `requests[]`: its payload size rule, how many fds it
 * may carry, the feature it needs and its handler. vu_server_process_one() checks all of
 * that before the handler runs, so a handler sees only well-formed messages.
 */
#include "vhost-user/vu_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

enum vu_size_rule { SZ_NONE, SZ_U64, SZ_STATE, SZ_ADDR, SZ_MEM, SZ_LOG, SZ_CONFIG, SZ_IOTLB };
enum vu_fd_rule {
	FD_NONE,   /* no fd */
	FD_ONE,    /* exactly one */
	FD_VRING,  /* one unless the u64 payload has VU_VRING_NOFD */
	FD_MEM,    /* one per memory region */
};
#define NO_FEATURE (-1)
#define F_PROTO VU_F_PROTOCOL_FEATURES /* "protocol features in use" */

struct vu_request_desc {
	const char *name;
	enum vu_size_rule size;
	enum vu_fd_rule fds;
	int feature;       /* virtio feature that must be negotiated, or NO_FEATURE */
	int proto_feature; /* protocol feature that must be negotiated, or NO_FEATURE */
	bool has_reply;    /* the request always answers (REPLY_ACK then does not apply) */
	int (*handler)(struct vu_server *s, struct vu_msg *m);
};

static int h_get_features(struct vu_server *s, struct vu_msg *m);
static int h_set_features(struct vu_server *s, struct vu_msg *m);
static int h_set_owner(struct vu_server *s, struct vu_msg *m);
static int h_reset_owner(struct vu_server *s, struct vu_msg *m);
static int h_get_protocol_features(struct vu_server *s, struct vu_msg *m);
static int h_set_protocol_features(struct vu_server *s, struct vu_msg *m);
static int h_get_queue_num(struct vu_server *s, struct vu_msg *m);
static int h_get_config(struct vu_server *s, struct vu_msg *m);
static int h_set_config(struct vu_server *s, struct vu_msg *m);

static const struct vu_request_desc requests[VU_REQ_MAX] = {
	[VU_GET_FEATURES] = { "GET_FEATURES", SZ_NONE, FD_NONE, NO_FEATURE, NO_FEATURE, true,
			      h_get_features },
	[VU_SET_FEATURES] = { "SET_FEATURES", SZ_U64, FD_NONE, NO_FEATURE, NO_FEATURE, false,
			      h_set_features },
	[VU_SET_OWNER] = { "SET_OWNER", SZ_NONE, FD_NONE, NO_FEATURE, NO_FEATURE, false,
			   h_set_owner },
	[VU_RESET_OWNER] = { "RESET_OWNER", SZ_NONE, FD_NONE, NO_FEATURE, NO_FEATURE, false,
			     h_reset_owner },
	[VU_SET_MEM_TABLE] = { "SET_MEM_TABLE", SZ_MEM, FD_MEM, NO_FEATURE, NO_FEATURE, false,
			       vu_h_mem_table },
	[VU_SET_LOG_BASE] = { "SET_LOG_BASE", SZ_LOG, FD_ONE, NO_FEATURE, VU_PF_LOG_SHMFD, true,
			      vu_h_log_base },
	[VU_SET_LOG_FD] = { "SET_LOG_FD", SZ_NONE, FD_ONE, NO_FEATURE, VU_PF_LOG_SHMFD, false,
			    vu_h_log_fd },
	[VU_SET_VRING_NUM] = { "SET_VRING_NUM", SZ_STATE, FD_NONE, NO_FEATURE, NO_FEATURE, false,
			       vu_h_vring_num },
	[VU_SET_VRING_ADDR] = { "SET_VRING_ADDR", SZ_ADDR, FD_NONE, NO_FEATURE, NO_FEATURE,
				false, vu_h_vring_addr },
	[VU_SET_VRING_BASE] = { "SET_VRING_BASE", SZ_STATE, FD_NONE, NO_FEATURE, NO_FEATURE,
				false, vu_h_vring_base },
	[VU_GET_VRING_BASE] = { "GET_VRING_BASE", SZ_STATE, FD_NONE, NO_FEATURE, NO_FEATURE,
				true, vu_h_get_vring_base },
	[VU_SET_VRING_KICK] = { "SET_VRING_KICK", SZ_U64, FD_VRING, NO_FEATURE, NO_FEATURE,
				false, vu_h_vring_kick },
	[VU_SET_VRING_CALL] = { "SET_VRING_CALL", SZ_U64, FD_VRING, NO_FEATURE, NO_FEATURE,
				false, vu_h_vring_call },
	[VU_SET_VRING_ERR] = { "SET_VRING_ERR", SZ_U64, FD_VRING, NO_FEATURE, NO_FEATURE, false,
			       vu_h_vring_err },
	[VU_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES", SZ_NONE, FD_NONE, NO_FEATURE,
				       NO_FEATURE, true, h_get_protocol_features },
	[VU_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES", SZ_U64, FD_NONE, NO_FEATURE,
				       NO_FEATURE, false, h_set_protocol_features },
	[VU_GET_QUEUE_NUM] = { "GET_QUEUE_NUM", SZ_NONE, FD_NONE, F_PROTO, VU_PF_MQ, true,
			       h_get_queue_num },
	[VU_SET_VRING_ENABLE] = { "SET_VRING_ENABLE", SZ_STATE, FD_NONE, F_PROTO, NO_FEATURE,
				  false, vu_h_vring_enable },
	[VU_SET_BACKEND_REQ_FD] = { "SET_BACKEND_REQ_FD", SZ_NONE, FD_ONE, F_PROTO,
				    VU_PF_BACKEND_REQ, false, vu_h_backend_req_fd },
	[VU_IOTLB_MSG] = { "IOTLB_MSG", SZ_IOTLB, FD_NONE, VIRTIO_F_ACCESS_PLATFORM, NO_FEATURE,
			   false, vu_h_iotlb_msg },
	[VU_GET_CONFIG] = { "GET_CONFIG", SZ_CONFIG, FD_NONE, F_PROTO, VU_PF_CONFIG, true,
			    h_get_config },
	[VU_SET_CONFIG] = { "SET_CONFIG", SZ_CONFIG, FD_NONE, F_PROTO, VU_PF_CONFIG, false,
			    h_set_config },
};

/* Protocol features this back-end implements. */
static uint64_t server_protocol_features(const struct vu_server *s)
{
	uint64_t pf = (1ull << VU_PF_MQ) | (1ull << VU_PF_LOG_SHMFD) |
		      (1ull << VU_PF_REPLY_ACK);

	if (s->dev.ops->get_config_size(s->dev.dev))
		pf |= 1ull << VU_PF_CONFIG;

	if (s->set_iotlb)
		pf |= 1ull << VU_PF_BACKEND_REQ;
	return pf;
}

void vu_fail(struct vu_server *s, const char *why)
{
	if (!s->last_error)
		s->last_error = why;
}

/* ---- payload size and fd rules ---------------------------------------------------------- */

static bool size_ok(enum vu_size_rule rule, const struct vu_msg *m)
{
	uint32_t sz = m->hdr.size;

	switch (rule) {
	case SZ_NONE:
		return sz == 0;
	case SZ_U64:
		return sz == sizeof(uint64_t);
	case SZ_STATE:
		return sz == sizeof(struct vhost_vring_state);
	case SZ_ADDR:
		return sz == sizeof(struct vhost_vring_addr);
	case SZ_LOG:
		return sz == sizeof(struct vu_log_area);
	case SZ_IOTLB:
		return sz == VU_IOTLB_SIZE;
	case SZ_MEM:
		return vu_mem_table_size_ok(m);
	case SZ_CONFIG:
		return sz >= VU_CONFIG_HDR_SIZE && m->payload.config.size <= VU_MAX_CONFIG &&
		       sz == VU_CONFIG_HDR_SIZE + m->payload.config.size;
	}
	return false;
}

static bool fds_ok(enum vu_fd_rule rule, const struct vu_msg *m)
{
	switch (rule) {
	case FD_NONE:
		return m->nfds == 0;
	case FD_ONE:
		return m->nfds == 1;
	case FD_VRING:
		return m->nfds == ((m->payload.u64 & VU_VRING_NOFD) ? 0u : 1u);
	case FD_MEM:
		return m->nfds == m->payload.mem.nregions;
	}
	return false;
}

static bool feature_ok(const struct vu_server *s, const struct vu_request_desc *d)
{
	if (d->feature == F_PROTO) {
		/* offered in GET_FEATURES; in use once acked or once the front-end asked for it */
		if (!vu_has_feature(s, F_PROTO) && !s->protocol_set)
			return false;
	} else if (d->feature != NO_FEATURE && !vu_has_feature(s, d->feature)) {
		return false;
	}
	if (d->proto_feature != NO_FEATURE && !vu_has_pf(s, d->proto_feature))
		return false;
	return true;
}

/* Which check refuses this message, or NULL when it may go to its handler. */
static const char *check_msg(struct vu_server *s, const struct vu_msg *m,
			     const struct vu_request_desc **out)
{
	const struct vu_request_desc *d;

	if (m->hdr.request >= VU_REQ_MAX || !requests[m->hdr.request].handler)
		return "unknown or unsupported request";
	d = &requests[m->hdr.request];
	*out = d;
	if (!size_ok(d->size, m))
		return "payload size wrong for this request";
	if (!fds_ok(d->fds, m))
		return "wrong number of file descriptors for this request";
	if (!feature_ok(s, d))
		return "request needs a feature that was not negotiated";
	return NULL;
}

/* ---- replies ------------------------------------------------------------------------------ */

static int send_reply(struct vu_server *s, struct vu_msg *m)
{
	struct vu_hdr h = { m->hdr.request, VU_VERSION | VU_FLAG_REPLY, m->hdr.size };

	return vu_msg_send(s->conn_fd, &h, &m->payload, NULL, 0);
}

static int send_ack(struct vu_server *s, uint32_t request, uint64_t status)
{
	struct vu_hdr h = { request, VU_VERSION | VU_FLAG_REPLY, sizeof(uint64_t) };

	return vu_msg_send(s->conn_fd, &h, &status, NULL, 0);
}

static void reply_u64(struct vu_msg *m, uint64_t v)
{
	m->hdr.size = sizeof(uint64_t);
	m->payload.u64 = v;
}

/* ---- feature and ownership requests ------------------------------------------------------ */

#define VU_OWN_FEATURES ((1ull << VU_F_PROTOCOL_FEATURES) | (1ull << VU_F_LOG_ALL))

uint64_t vu_offered_features(struct vu_server *s)
{
	uint64_t f = s->dev.ops->get_features(s->dev.dev);

	if (s->set_iotlb)
		f |= 1ull << VIRTIO_F_ACCESS_PLATFORM; /* the IOTLB lives here, not in the device */
	return f | VU_OWN_FEATURES;
}

uint64_t vu_device_features(struct vu_server *s)
{
	uint64_t dev = s->dev.ops->get_features(s->dev.dev);

	return s->features & ~VU_OWN_FEATURES &
	       (dev | ~(1ull << VIRTIO_F_ACCESS_PLATFORM));
}

static int h_get_features(struct vu_server *s, struct vu_msg *m)
{
	reply_u64(m, vu_offered_features(s));
	return 0;
}

static int h_set_features(struct vu_server *s, struct vu_msg *m)
{
	uint64_t f = m->payload.u64, old = s->features;
	int rc;

	if (f & ~vu_offered_features(s)) {
		vu_fail(s, "SET_FEATURES acks features that were not offered");
		return -EINVAL;
	}
	if (s->features_set && !((f ^ old) & ~VU_OWN_FEATURES)) {
		s->features = f; /* only F_LOG_ALL (migration) or the protocol bit changed */
		return 0;
	}
	if (s->dev_started) {
		vu_fail(s, "SET_FEATURES changes device features while rings run");
		return -EBUSY;
	}
	s->features = f;
	s->features_set = true;
	/* Negotiate now so that a refusal answers this message; rings restart it anyway. */
	s->dev.ops->reset(s->dev.dev);
	rc = vu_negotiate_device(s);
	s->dev.ops->reset(s->dev.dev);
	if (rc) {
		s->features_set = false;
		vu_fail(s, "the device refused the features");
		return rc;
	}
	if (!vu_has_feature(s, VU_F_PROTOCOL_FEATURES))
		for (unsigned i = 0; i < s->nrings; i++)
			s->rings[i].enabled = true;
	return 0;
}

static int h_set_owner(struct vu_server *s, struct vu_msg *m)
{
	(void)m;
	s->owner = true;
	return 0;
}

/* Back to the state of a new connection, memory and fds included. */
static void reset_session(struct vu_server *s)
{
	vu_vrings_reset(s);
	s->dev.ops->reset(s->dev.dev);
	if (s->set_iotlb)
		s->set_iotlb(s->dev.dev, NULL);
	vu_iotlb_reset(s);
	vu_log_unmap(s);
	vu_mem_unmap_all(s);
	s->features = 0;
	s->features_set = false;
	s->owner = false;
}

static int h_reset_owner(struct vu_server *s, struct vu_msg *m)
{
	(void)m;
	vu_vrings_reset(s);
	s->dev.ops->reset(s->dev.dev);
	s->features = 0;
	s->features_set = false;
	s->owner = false;
	return 0;
}

static int h_get_protocol_features(struct vu_server *s, struct vu_msg *m)
{
	reply_u64(m, server_protocol_features(s));
	return 0;
}

static int h_set_protocol_features(struct vu_server *s, struct vu_msg *m)
{
	if (m->payload.u64 & ~server_protocol_features(s)) {
		vu_fail(s, "SET_PROTOCOL_FEATURES acks features that were not offered");
		return -EINVAL;
	}
	s->protocol_features = m->payload.u64;
	s->protocol_set = true;
	return 0;
}

static int h_get_queue_num(struct vu_server *s, struct vu_msg *m)
{
	reply_u64(m, s->nrings);
	return 0;
}

static int h_get_config(struct vu_server *s, struct vu_msg *m)
{
	struct vu_config_msg *c = &m->payload.config;

	if ((uint64_t)c->offset + c->size > VU_MAX_CONFIG) {
		vu_fail(s, "GET_CONFIG range outside config space");
		return -EINVAL;
	}
	memset(c->region, 0, sizeof(c->region));
	s->dev.ops->get_config(s->dev.dev, c->offset, c->region, c->size);
	return 0; /* the reply is the request with the data filled in */
}

static int h_set_config(struct vu_server *s, struct vu_msg *m)
{
	struct vu_config_msg *c = &m->payload.config;

	if ((uint64_t)c->offset + c->size > VU_MAX_CONFIG) {
		vu_fail(s, "SET_CONFIG range outside config space");
		return -EINVAL;
	}
	s->dev.ops->set_config(s->dev.dev, c->offset, c->region, c->size);
	return 0;
}

/* ---- connections --------------------------------------------------------------------------- */

static void close_conn(struct vu_server *s)
{
	if (s->conn_fd < 0)
		return;
	reset_session(s);
	while (s->ndeferred)
		vu_msg_close_fds(&s->deferred[--s->ndeferred]);
	if (s->watch.unwatch)
		s->watch.unwatch(s->watch.opaque, s->conn_fd);
	close(s->conn_fd);
	s->conn_fd = -1;
	if (s->listen_fd >= 0 && s->watch.watch)
		s->watch.watch(s->watch.opaque, s->listen_fd, VU_TOKEN_LISTEN);
}

static int set_conn(struct vu_server *s, int fd)
{
	struct timeval tv = { .tv_sec = 2 }; /* a peer that stalls mid-message is dropped */

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	s->conn_fd = fd;
	s->last_error = NULL;
	s->inline_error = 0;
	s->log_pages = s->log_flushes = s->log_bases = 0;
	s->protocol_features = 0;
	s->protocol_set = false;
	s->dev.ops->reset(s->dev.dev);
	if (s->listen_fd >= 0 && s->watch.unwatch)
		s->watch.unwatch(s->watch.opaque, s->listen_fd);
	if (s->watch.watch)
		return s->watch.watch(s->watch.opaque, fd, VU_TOKEN_CONN);
	return 0;
}

int vu_server_adopt(struct vu_server *s, int fd)
{
	if (s->conn_fd >= 0)
		return -EBUSY;
	return set_conn(s, fd);
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* The socket appears at `path` only once it listens: it is bound under a temporary name and
 * renamed into place, so a front-end that sees the file never gets ECONNREFUSED (a plain
 * bind + listen leaves a window where the file exists but nobody listens). */
int vu_server_listen(struct vu_server *s, const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	char tmp[sizeof(sa.sun_path) + 32];
	int fd, rc;

	rc = unix_addr(path, &sa);
	if (rc)
		return rc;
	if (!stat(path, &st) && S_ISSOCK(st.st_mode))
		unlink(path);
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	if (unix_addr(tmp, &sa)) {
		/* No room for the temporary name: bind in place (the short window remains). */
		unix_addr(path, &sa);
		tmp[0] = '\0';
	} else {
		unlink(tmp);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4) ||
	    (tmp[0] && rename(tmp, path))) {
		rc = -errno;
		if (tmp[0])
			unlink(tmp);
		close(fd);
		return rc;
	}
	s->listen_fd = fd;
	if (s->conn_fd < 0 && s->watch.watch)
		return s->watch.watch(s->watch.opaque, fd, VU_TOKEN_LISTEN);
	return 0;
}

int vu_server_connect(struct vu_server *s, const char *path)
{
	struct sockaddr_un sa;
	int fd, rc;

	if (s->conn_fd >= 0)
		return -EBUSY;
	rc = unix_addr(path, &sa);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = -errno;
		close(fd);
		return rc;
	}
	pr_info("%s: connected to %s", s->name, path);
	return set_conn(s, fd);
}

static int accept_conn(struct vu_server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (s->conn_fd >= 0) { /* one front-end at a time */
		pr_warn("%s: refusing a second front-end while one is connected", s->name);
		close(fd);
		return 0;
	}
	pr_info("%s: front-end connected", s->name);
	return set_conn(s, fd);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static int end_conn(struct vu_server *s, const struct vu_msg *m, int rc)
{
	if (s->log_bases)
		pr_info("%s: dirty log: %llu log areas, %llu device-written pages logged in %llu "
			"flushes", s->name, (unsigned long long)s->log_bases,
			(unsigned long long)s->log_pages, (unsigned long long)s->log_flushes);
	if (vu_iotlb_active(s))
		pr_info("%s: IOTLB (VIRTIO_F_ACCESS_PLATFORM): %llu updates, %llu invalidations, "
			"%llu misses", s->name, (unsigned long long)s->iotlb_updates,
			(unsigned long long)s->iotlb_invalidations,
			(unsigned long long)s->iotlb_misses);
	if (rc == -ECONNRESET && !s->last_error)
		pr_info("%s: front-end disconnected", s->name);
	else
		pr_err("%s: closing the connection: %s (request %s, %d)", s->name,
		       s->last_error ? s->last_error : strerror(-rc),
		       vu_request_name(m->hdr.request), m->hdr.request);
	if (rc != -ECONNRESET || s->last_error)
		s->refused++;
	close_conn(s);
	return rc;
}

/* Check, run and answer one received message. Returns the handler's result; the caller
 * ends the connection on failure. */
static int dispatch(struct vu_server *s, struct vu_msg *m)
{
	const struct vu_request_desc *d = NULL;
	const char *why = check_msg(s, m, &d);
	int rc;

	if (why) {
		vu_fail(s, why);
		vu_msg_close_fds(m);
		return -EPROTO;
	}
	pr_debug("%s: %s size %u fds %u", s->name, d->name, m->hdr.size, m->nfds);
	rc = d->handler(s, m);
	vu_msg_close_fds(m); /* whatever the handler did not take */
	if (d->has_reply && !rc)
		rc = send_reply(s, m);
	else if (!d->has_reply && (m->hdr.flags & VU_FLAG_NEED_REPLY) &&
		 vu_has_pf(s, VU_PF_REPLY_ACK))
		send_ack(s, m->hdr.request, rc ? 1 : 0);
	if (rc)
		vu_fail(s, "request failed");
	return rc;
}

int vu_server_process_one(struct vu_server *s)
{
	struct vu_msg m;
	const char *why;
	int rc;

	if (s->conn_fd < 0)
		return -ENOTCONN;
	s->loop_thread = pthread_self();
	s->in_loop = true;
	if (s->ndeferred) { /* read while an IOTLB miss was being resolved */
		m = s->deferred[0];
		memmove(&s->deferred[0], &s->deferred[1], --s->ndeferred * sizeof(m));
	} else {
		rc = vu_msg_recv(s->conn_fd, &m, &why);
		if (rc) {
			s->in_loop = false;
			if (rc != -ECONNRESET)
				vu_fail(s, why);
			return end_conn(s, &m, rc);
		}
	}
	rc = dispatch(s, &m);
	if (!rc)
		rc = s->inline_error;
	s->in_loop = false;
	if (rc)
		return end_conn(s, &m, rc);
	return 0;
}

/* On the server's own thread, inside a handler or a kick, a device asked for an IOVA the
 * IOTLB lacks: read messages until `done(s)` says the update arrived (IOTLB messages are
 * handled now, others kept for later), at most until the deadline. Errors are recorded and
 * end the connection once the current event is over. */
void vu_pump_inline(struct vu_server *s, bool (*done)(struct vu_server *, const void *),
		    const void *arg, int timeout_ms)
{
	struct pollfd pf = { s->conn_fd, POLLIN, 0 };

	while (!s->inline_error && !done(s, arg)) {
		struct vu_msg m;
		const char *why;
		int rc;

		if (poll(&pf, 1, timeout_ms) <= 0)
			return;
		rc = vu_msg_recv(s->conn_fd, &m, &why);
		if (rc) {
			vu_fail(s, rc == -ECONNRESET ? "peer closed the connection" : why);
			s->inline_error = rc;
			return;
		}
		if (m.hdr.request == VU_IOTLB_MSG) {
			s->inline_error = dispatch(s, &m);
		} else if (s->ndeferred < VU_MAX_DEFERRED) {
			s->deferred[s->ndeferred++] = m;
		} else {
			vu_msg_close_fds(&m);
			vu_fail(s, "too many requests while waiting for an IOTLB update");
			s->inline_error = -ENOBUFS;
		}
	}
}

int vu_server_handle(struct vu_server *s, uint32_t token)
{
	int rc = -EINVAL;

	if (token == VU_TOKEN_LISTEN)
		return s->listen_fd >= 0 ? accept_conn(s) : -EBADF;
	if (token == VU_TOKEN_CONN) {
		rc = vu_server_process_one(s);
	} else if (token >= VU_TOKEN_KICK(0) && token < VU_TOKEN_KICK(s->nrings)) {
		s->loop_thread = pthread_self();
		s->in_loop = true;
		vu_handle_kick(s, token - VU_TOKEN_KICK(0));
		s->in_loop = false;
		rc = 0;
		if (s->inline_error) {
			struct vu_msg none = { .hdr.request = VU_IOTLB_MSG };

			rc = end_conn(s, &none, s->inline_error);
		}
	}
	while (!rc && s->ndeferred && s->conn_fd >= 0)
		rc = vu_server_process_one(s);
	return rc;
}

int vu_server_create(const struct vu_server_config *cfg, struct vu_server **out)
{
	struct vu_server *s;
	unsigned n;

	if (!cfg->dev.ops || !cfg->gm)
		return -EINVAL;
	n = cfg->dev.ops->get_num_queues(cfg->dev.dev);
	if (n == 0 || n > VU_MAX_RINGS)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(s->name, sizeof(s->name), "%s", cfg->name ? cfg->name : "vhost-user");
	s->dev = cfg->dev;
	s->gm = cfg->gm;
	s->set_iotlb = cfg->set_iotlb;
	s->quiesce = cfg->quiesce;
	s->set_kick_fd = cfg->set_kick_fd;
	s->watch = cfg->watch;
	s->listen_fd = s->conn_fd = s->backend_fd = s->log_fd = -1;
	s->nrings = n;
	pthread_mutex_init(&s->log_lock, NULL);
	pthread_mutex_init(&s->backend_lock, NULL);
	pthread_mutex_init(&s->iotlb_lock, NULL);
	pthread_cond_init(&s->iotlb_cond, NULL);
	s->vq_iotlb.xlate = vu_iotlb_xlate;
	s->vq_iotlb.opaque = s;
	vu_vrings_init(s);
	*out = s;
	return 0;
}

void vu_server_destroy(struct vu_server *s)
{
	if (!s)
		return;
	close_conn(s);
	if (s->listen_fd >= 0) {
		if (s->watch.unwatch)
			s->watch.unwatch(s->watch.opaque, s->listen_fd);
		close(s->listen_fd);
	}
	for (unsigned i = 0; i < VU_MAX_RINGS; i++)
		pthread_mutex_destroy(&s->rings[i].call_lock);
	pthread_mutex_destroy(&s->log_lock);
	pthread_mutex_destroy(&s->backend_lock);
	pthread_mutex_destroy(&s->iotlb_lock);
	pthread_cond_destroy(&s->iotlb_cond);
	free(s->dirty_buf);
	free(s);
}

bool vu_server_connected(const struct vu_server *s)
{
	return s->conn_fd >= 0;
}

const char *vu_server_last_error(const struct vu_server *s)
{
	return s->last_error;
}

uint64_t vu_server_refused(const struct vu_server *s)
{
	return s->refused;
}
