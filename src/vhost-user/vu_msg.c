/* Reading and writing vhost-user messages on a Unix socket. A message is a 12-byte header,
 * a payload of hdr.size bytes and up to VU_MAX_FDS file descriptors carried with the header.
 * Everything about the header that does not depend on the request (version, unknown flags,
 * payload larger than any request's, truncated fds) is refused here, before anything
 * request-specific runs.
 */
#include "vhost-user/vu_msg.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

void vu_msg_close_fds(struct vu_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++) {
		if (m->fds[i] >= 0)
			close(m->fds[i]);
		m->fds[i] = -1;
	}
	m->nfds = 0;
}

/* Take fd i out of the message: the caller owns it now. */
int vu_msg_take_fd(struct vu_msg *m, unsigned i)
{
	int fd;

	if (i >= m->nfds)
		return -1;
	fd = m->fds[i];
	m->fds[i] = -1;
	return fd;
}

static int collect_fds(struct msghdr *mh, struct vu_msg *m)
{
	struct cmsghdr *c;
	int rc = 0;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		unsigned n, i;
		int *fds;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(c);
		for (i = 0; i < n; i++) {
			if (m->nfds < VU_MAX_FDS)
				m->fds[m->nfds++] = fds[i];
			else {
				close(fds[i]);
				rc = -E2BIG;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		rc = -E2BIG;
	return rc;
}

/* Read exactly len bytes (the socket has a receive timeout, so a stalled peer ends here). */
static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(fd, (char *)buf + done, len - done, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += n;
	}
	return 0;
}

int vu_msg_check_hdr(const struct vu_hdr *h, const char **why)
{
	if ((h->flags & VU_VERSION_MASK) != VU_VERSION) {
		*why = "unsupported protocol version";
		return -EPROTO;
	}
	if (h->flags & ~VU_FLAGS_KNOWN) {
		*why = "unknown header flags";
		return -EPROTO;
	}
	if (h->flags & VU_FLAG_REPLY) {
		*why = "reply flag set on a request";
		return -EPROTO;
	}
	if (h->size > VU_MAX_PAYLOAD) {
		*why = "payload larger than any request's";
		return -EMSGSIZE;
	}
	return 0;
}

/* Both directions: a request (reply flag refused) or a reply (reply flag required). */
static int msg_recv(int sock, struct vu_msg *m, bool reply, const char **why)
{
	char cbuf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
	struct iovec iov = { &m->hdr, sizeof(m->hdr) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	ssize_t n;
	int rc;

	memset(&m->hdr, 0, sizeof(m->hdr));
	m->nfds = 0;
	*why = NULL;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		*why = "peer closed the connection";
		return -ECONNRESET;
	}
	if (n < 0) {
		*why = "recvmsg failed";
		return -errno;
	}
	rc = collect_fds(&mh, m);
	if (rc) {
		*why = "more file descriptors than any request carries";
		goto fail;
	}
	if ((size_t)n < sizeof(m->hdr)) {
		rc = read_full(sock, (char *)&m->hdr + n, sizeof(m->hdr) - n);
		if (rc) {
			*why = "short header";
			rc = rc == -ECONNRESET ? -EPROTO : rc; /* the peer left mid-message */
			goto fail;
		}
	}
	if (reply) {
		struct vu_hdr h = m->hdr;

		if (!(h.flags & VU_FLAG_REPLY)) {
			*why = "reply flag missing on a reply";
			rc = -EPROTO;
			goto fail;
		}
		h.flags &= ~VU_FLAG_REPLY;
		rc = vu_msg_check_hdr(&h, why);
	} else {
		rc = vu_msg_check_hdr(&m->hdr, why);
	}
	if (rc)
		goto fail;
	memset(&m->payload, 0, sizeof(m->payload));
	rc = read_full(sock, &m->payload, m->hdr.size);
	if (rc) {
		*why = "short payload";
		rc = rc == -ECONNRESET ? -EPROTO : rc;
		goto fail;
	}
	return 0;
fail:
	vu_msg_close_fds(m);
	return rc;
}

int vu_msg_recv(int sock, struct vu_msg *m, const char **why)
{
	return msg_recv(sock, m, false, why);
}

int vu_msg_recv_reply(int sock, struct vu_msg *m, const char **why)
{
	return msg_recv(sock, m, true, why);
}

int vu_msg_send(int sock, const struct vu_hdr *hdr, const void *payload, const int *fds,
		unsigned nfds)
{
	char cbuf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
	struct iovec iov[2] = {
		{ (void *)hdr, sizeof(*hdr) },
		{ (void *)payload, hdr->size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = hdr->size ? 2 : 1 };
	size_t total = sizeof(*hdr) + hdr->size;
	ssize_t n;

	if (nfds > VU_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != total)
		return -EIO; /* a message never fits partially into a Unix stream socket here */
	return 0;
}

static const char *const req_names[VU_REQ_MAX] = {
	[VU_GET_FEATURES] = "GET_FEATURES",
	[VU_SET_FEATURES] = "SET_FEATURES",
	[VU_SET_OWNER] = "SET_OWNER",
	[VU_RESET_OWNER] = "RESET_OWNER",
	[VU_SET_MEM_TABLE] = "SET_MEM_TABLE",
	[VU_SET_LOG_BASE] = "SET_LOG_BASE",
	[VU_SET_LOG_FD] = "SET_LOG_FD",
	[VU_SET_VRING_NUM] = "SET_VRING_NUM",
	[VU_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[VU_SET_VRING_BASE] = "SET_VRING_BASE",
	[VU_GET_VRING_BASE] = "GET_VRING_BASE",
	[VU_SET_VRING_KICK] = "SET_VRING_KICK",
	[VU_SET_VRING_CALL] = "SET_VRING_CALL",
	[VU_SET_VRING_ERR] = "SET_VRING_ERR",
	[VU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VU_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
	[VU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[VU_SEND_RARP] = "SEND_RARP",
	[VU_NET_SET_MTU] = "NET_SET_MTU",
	[VU_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
	[VU_IOTLB_MSG] = "IOTLB_MSG",
	[VU_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
	[VU_GET_CONFIG] = "GET_CONFIG",
	[VU_SET_CONFIG] = "SET_CONFIG",
	[VU_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
	[VU_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
	[VU_RESET_DEVICE] = "RESET_DEVICE",
	[VU_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
};

const char *vu_request_name(uint32_t request)
{
	if (request < VU_REQ_MAX && req_names[request])
		return req_names[request];
	return "UNKNOWN";
}
