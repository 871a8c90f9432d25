/* vhost-user front-end: session set-up, memory table, rings and config as request/reply
 * pairs on one Unix socket. Message layouts and socket I/O are the library's (vu_proto.h,
 * vu_msg.c); this file adds the front-end's rules: which requests expect a reply, and what a
 * valid reply from an untrusted backend looks like.
 */
#include "vhost-user/frontend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "vhost-user/vu_msg.h"

/* Protocol features vireo's front-end can use. */
#define FE_PROTOCOL_FEATURES ((1ull << VU_PF_MQ) | (1ull << VU_PF_REPLY_ACK) | \
			      (1ull << VU_PF_CONFIG))
#define FE_OWN_FEATURES ((1ull << VU_F_PROTOCOL_FEATURES) | (1ull << VU_F_LOG_ALL))
/* Device features this front-end cannot carry, hidden from the driver (a Linux driver accepts
 * both whenever they are offered, and the backend then never completes a request):
 *   ACCESS_PLATFORM would make the backend take every address for an IOVA, and this front-end
 *   has no vIOMMU and sends no IOTLB updates (without it the memory table's guest-physical
 *   addresses are used);
 *   RING_PACKED: the rings are started and stopped with a split ring's 16-bit base, where a
 *   packed ring's carries the wrap counters (1 at the start) and, back, the used index too. */
#define FE_HIDDEN_FEATURES ((1ull << VIRTIO_F_ACCESS_PLATFORM) | (1ull << VIRTIO_F_RING_PACKED))

struct vu_fe {
	char name[32];
	struct guest_memory *gm;
	int sock;
	bool broken;
	uint64_t offered;           /* GET_FEATURES, as sent */
	uint64_t protocol;          /* negotiated protocol features */
	unsigned queue_num;
};

static bool has_pf(const struct vu_fe *fe, unsigned bit)
{
	return fe->protocol & (1ull << bit);
}

static bool has_proto(const struct vu_fe *fe)
{
	return fe->offered & (1ull << VU_F_PROTOCOL_FEATURES);
}

static int fe_fail(struct vu_fe *fe, uint32_t req, const char *why, int rc)
{
	pr_err("vhost-user front-end %s: %s: %s", fe->name, vu_request_name(req), why);
	fe->broken = true;
	return rc;
}

/* Receive the reply to req and check it: same request code, reply flag, no fds, exactly
 * want bytes of payload. */
static int recv_reply(struct vu_fe *fe, uint32_t req, struct vu_msg *m, uint32_t want)
{
	const char *why = NULL;
	int rc = vu_msg_recv_reply(fe->sock, m, &why);

	if (rc)
		return fe_fail(fe, req, rc == -EAGAIN ? "no reply in time" : why,
			       rc == -EAGAIN ? -ETIMEDOUT : rc);
	if (m->nfds) {
		vu_msg_close_fds(m);
		return fe_fail(fe, req, "reply carries file descriptors", -EPROTO);
	}
	if (m->hdr.request != req)
		return fe_fail(fe, req, "reply to another request", -EPROTO);
	if (m->hdr.size != want)
		return fe_fail(fe, req, "reply has the wrong size", -EPROTO);
	return 0;
}

/* Send one request. reply != NULL: the request has a reply of reply_size bytes, copied
 * there. Otherwise, with REPLY_ACK, ask for the status and turn a non-zero one into -EIO. */
static int fe_call(struct vu_fe *fe, uint32_t req, const void *payload, uint32_t size,
		   const int *fds, unsigned nfds, void *reply, uint32_t reply_size)
{
	struct vu_hdr h = { req, VU_VERSION, size };
	bool ack = !reply && has_pf(fe, VU_PF_REPLY_ACK);
	struct vu_msg m;
	int rc;

	if (fe->broken)
		return -ENOTCONN;
	if (ack)
		h.flags |= VU_FLAG_NEED_REPLY;
	rc = vu_msg_send(fe->sock, &h, payload, fds, nfds);
	if (rc)
		return fe_fail(fe, req, rc == -EAGAIN ? "backend does not read (send timed out)"
						      : "cannot send", rc == -EAGAIN ? -ETIMEDOUT : rc);
	if (!reply && !ack)
		return 0;
	rc = recv_reply(fe, req, &m, reply ? reply_size : sizeof(uint64_t));
	if (rc)
		return rc;
	if (reply) {
		memcpy(reply, &m.payload, reply_size);
		return 0;
	}
	if (m.payload.u64) {
		pr_err("vhost-user front-end %s: %s refused by the backend (status %llu)", fe->name,
		       vu_request_name(req), (unsigned long long)m.payload.u64);
		return -EIO;
	}
	return 0;
}

static int fe_u64(struct vu_fe *fe, uint32_t req, uint64_t v)
{
	return fe_call(fe, req, &v, sizeof(v), NULL, 0, NULL, 0);
}

static int fe_get_u64(struct vu_fe *fe, uint32_t req, uint64_t *v)
{
	return fe_call(fe, req, NULL, 0, NULL, 0, v, sizeof(*v));
}

static int fe_state(struct vu_fe *fe, uint32_t req, unsigned idx, unsigned num)
{
	struct vhost_vring_state st = { .index = idx, .num = num };

	return fe_call(fe, req, &st, sizeof(st), NULL, 0, NULL, 0);
}

/* The session set-up every connection starts with. */
static int fe_handshake(struct vu_fe *fe)
{
	uint64_t pf = 0, qn = 0;
	int rc;

	rc = fe_call(fe, VU_SET_OWNER, NULL, 0, NULL, 0, NULL, 0);
	if (!rc)
		rc = fe_get_u64(fe, VU_GET_FEATURES, &fe->offered);
	if (rc || !has_proto(fe))
		return rc;
	rc = fe_get_u64(fe, VU_GET_PROTOCOL_FEATURES, &pf);
	if (!rc)
		rc = fe_u64(fe, VU_SET_PROTOCOL_FEATURES, pf & FE_PROTOCOL_FEATURES);
	if (rc)
		return rc;
	fe->protocol = pf & FE_PROTOCOL_FEATURES; /* REPLY_ACK applies from the next request */
	if (has_pf(fe, VU_PF_MQ)) {
		rc = fe_get_u64(fe, VU_GET_QUEUE_NUM, &qn);
		if (rc)
			return rc;
		if (qn == 0 || qn > 0xffff)
			return fe_fail(fe, VU_GET_QUEUE_NUM, "queue count out of range", -EPROTO);
		fe->queue_num = (unsigned)qn;
	}
	return 0;
}

int vu_fe_adopt(const struct vu_fe_config *cfg, int sock, struct vu_fe **out)
{
	unsigned ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct vu_fe *fe = calloc(1, sizeof(*fe));
	int rc;

	if (!fe) {
		close(sock);
		return -ENOMEM;
	}
	snprintf(fe->name, sizeof(fe->name), "%s", cfg->name ? cfg->name : "vhost-user");
	fe->gm = cfg->gm;
	fe->sock = sock;
	/* both ways: a backend that stops reading must not block a sender for ever either */
	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		rc = -errno;
		goto fail;
	}
	rc = fe_handshake(fe);
	if (rc)
		goto fail;
	pr_info("vhost-user front-end %s: features %#llx, protocol features %#llx, %u queue(s)",
		fe->name, (unsigned long long)vu_fe_device_features(fe),
		(unsigned long long)fe->protocol, fe->queue_num);
	*out = fe;
	return 0;
fail:
	vu_fe_destroy(fe);
	return rc;
}

int vu_fe_connect(const struct vu_fe_config *cfg, const char *path, struct vu_fe **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sock, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = -errno;
		close(sock);
		return rc;
	}
	return vu_fe_adopt(cfg, sock, out);
}

void vu_fe_destroy(struct vu_fe *fe)
{
	if (!fe)
		return;
	if (fe->sock >= 0)
		close(fe->sock);
	free(fe);
}

uint64_t vu_fe_device_features(const struct vu_fe *fe)
{
	return fe->offered & ~(FE_OWN_FEATURES | FE_HIDDEN_FEATURES);
}

uint64_t vu_fe_protocol_features(const struct vu_fe *fe)
{
	return fe->protocol;
}

unsigned vu_fe_queue_num(const struct vu_fe *fe)
{
	return fe->queue_num;
}

bool vu_fe_broken(const struct vu_fe *fe)
{
	return fe->broken;
}

int vu_fe_set_features(struct vu_fe *fe, uint64_t features)
{
	if (features & ~vu_fe_device_features(fe))
		return -EINVAL;
	if (has_proto(fe))
		features |= 1ull << VU_F_PROTOCOL_FEATURES;
	return fe_u64(fe, VU_SET_FEATURES, features);
}

int vu_fe_set_mem_table(struct vu_fe *fe)
{
	struct vu_mem_table t;
	int fds[VU_MAX_MEM_REGIONS];
	unsigned n = 0;

	memset(&t, 0, sizeof(t));
	for (unsigned i = 0; i < fe->gm->nregions; i++) {
		const struct gm_region *r = &fe->gm->regions[i];

		if (r->fd < 0) {
			pr_err("vhost-user front-end %s: region at %#llx has no fd to share",
			       fe->name, (unsigned long long)r->gpa);
			return -EINVAL;
		}
		if (n == VU_MAX_MEM_REGIONS)
			return -E2BIG;
		t.regions[n] = (struct vu_mem_region){ r->gpa, r->size, r->uaddr, r->fd_offset };
		fds[n++] = r->fd;
	}
	if (!n)
		return -EINVAL;
	t.nregions = n;
	return fe_call(fe, VU_SET_MEM_TABLE, &t, VU_MEM_HDR_SIZE + n * sizeof(t.regions[0]),
		       fds, n, NULL, 0);
}

int vu_fe_get_config(struct vu_fe *fe, unsigned offset, void *buf, unsigned len)
{
	struct vu_config_msg c;
	int rc;

	if (!has_pf(fe, VU_PF_CONFIG))
		return -EOPNOTSUPP;
	if (len > VU_MAX_CONFIG || offset > VU_MAX_CONFIG - len)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	c.offset = offset;
	c.size = len;
	rc = fe_call(fe, VU_GET_CONFIG, &c, VU_CONFIG_HDR_SIZE + len, NULL, 0, &c,
		     VU_CONFIG_HDR_SIZE + len);
	if (rc)
		return rc;
	if (c.offset != offset || c.size != len)
		return fe_fail(fe, VU_GET_CONFIG, "reply for another range", -EPROTO);
	memcpy(buf, c.region, len);
	return 0;
}

int vu_fe_set_config(struct vu_fe *fe, unsigned offset, const void *buf, unsigned len)
{
	struct vu_config_msg c;

	if (!has_pf(fe, VU_PF_CONFIG))
		return -EOPNOTSUPP;
	if (len > VU_MAX_CONFIG || offset > VU_MAX_CONFIG - len)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	c.offset = offset;
	c.size = len;
	memcpy(c.region, buf, len);
	return fe_call(fe, VU_SET_CONFIG, &c, VU_CONFIG_HDR_SIZE + len, NULL, 0, NULL, 0);
}

/* Front-end ("user") address of [gpa, gpa+len), which must lie in one region. */
static int ring_uaddr(struct vu_fe *fe, uint64_t gpa, uint64_t len, uint64_t *uaddr)
{
	const struct gm_region *r = gm_find_region(fe->gm, gpa);

	if (!r || !gm_translate(fe->gm, gpa, len))
		return -EFAULT;
	*uaddr = r->uaddr + (gpa - r->gpa);
	return 0;
}

static int fe_vring_fd(struct vu_fe *fe, uint32_t req, unsigned idx, int fd)
{
	uint64_t v = idx | (fd < 0 ? VU_VRING_NOFD : 0);

	return fe_call(fe, req, &v, sizeof(v), &fd, fd < 0 ? 0 : 1, NULL, 0);
}

int vu_fe_vring_start(struct vu_fe *fe, unsigned idx, const struct vu_fe_vring *r)
{
	struct vhost_vring_addr a = { .index = idx };
	uint64_t n = r->num, d, av, u;
	int rc;

	if (idx > VU_VRING_IDX_MASK || !n || n > 32768 || (fe->queue_num && idx >= fe->queue_num))
		return -EINVAL;
	if (ring_uaddr(fe, r->desc, 16 * n, &d) || ring_uaddr(fe, r->avail, 6 + 2 * n, &av) ||
	    ring_uaddr(fe, r->used, 6 + 8 * n, &u)) {
		pr_err("vhost-user front-end %s: ring %u outside guest memory", fe->name, idx);
		return -EFAULT;
	}
	a.desc_user_addr = d;
	a.avail_user_addr = av;
	a.used_user_addr = u;
	rc = fe_state(fe, VU_SET_VRING_NUM, idx, r->num);
	if (!rc)
		rc = fe_state(fe, VU_SET_VRING_BASE, idx, r->base);
	if (!rc)
		rc = fe_call(fe, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL, 0);
	if (!rc)
		rc = fe_vring_fd(fe, VU_SET_VRING_KICK, idx, r->kick_fd);
	if (!rc)
		rc = fe_vring_fd(fe, VU_SET_VRING_CALL, idx, r->call_fd);
	if (!rc && has_proto(fe))
		rc = fe_state(fe, VU_SET_VRING_ENABLE, idx, 1);
	return rc;
}

int vu_fe_vring_stop(struct vu_fe *fe, unsigned idx, uint16_t *base)
{
	struct vhost_vring_state st = { .index = idx };
	int rc = 0;

	if (idx > VU_VRING_IDX_MASK)
		return -EINVAL;
	if (has_proto(fe))
		rc = fe_state(fe, VU_SET_VRING_ENABLE, idx, 0);
	if (!rc)
		rc = fe_call(fe, VU_GET_VRING_BASE, &st, sizeof(st), NULL, 0, &st, sizeof(st));
	if (rc)
		return rc;
	if (st.index != idx || st.num > 0xffff)
		return fe_fail(fe, VU_GET_VRING_BASE, "reply for another ring or out of range",
			       -EPROTO);
	*base = (uint16_t)st.num;
	return 0;
}
