/* virtio-vsock packet header: parse (with every guest-controlled field checked) and encode.
 * See vsock_proto.h. */
#include "devices/virtio/vsock_proto.h"

#include <endian.h>
#include <string.h>

static const char *const err_names[VSOCK_ERR_COUNT] = {
	[VSOCK_OK] = "ok",
	[VSOCK_ERR_SHORT] = "short packet",
	[VSOCK_ERR_LEN] = "bad length",
	[VSOCK_ERR_CTRL_LEN] = "payload on a control packet",
	[VSOCK_ERR_OP] = "unknown op",
	[VSOCK_ERR_TYPE] = "bad type",
	[VSOCK_ERR_FLAGS] = "bad shutdown flags",
	[VSOCK_ERR_SRC_CID] = "bad src_cid",
	[VSOCK_ERR_DST_CID] = "bad dst_cid",
	[VSOCK_ERR_CREDIT] = "credit exceeded",
	[VSOCK_ERR_STATE] = "op invalid in state",
	[VSOCK_ERR_RX_BUF] = "bad receive buffer",
};

const char *vsock_err_name(enum vsock_err e)
{
	return (unsigned)e < VSOCK_ERR_COUNT ? err_names[e] : "?";
}

size_t vsock_iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	uint8_t *b = buf;
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t k = iov[i].iov_len - off;

		if (k > len - done)
			k = len - done;
		memcpy(b + done, (const uint8_t *)iov[i].iov_base + off, k);
		done += k;
		off = 0;
	}
	return done;
}

size_t vsock_buf_to_iov(const struct iovec *iov, unsigned n, size_t off, const void *buf,
			size_t len)
{
	const uint8_t *b = buf;
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t k = iov[i].iov_len - off;

		if (k > len - done)
			k = len - done;
		memcpy((uint8_t *)iov[i].iov_base + off, b + done, k);
		done += k;
		off = 0;
	}
	return done;
}

int vsock_iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len,
		    struct iovec *out, unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t take = iov[i].iov_len - off;

		if (take > len)
			take = len;
		if (k == max)
			return -1;
		out[k].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[k].iov_len = take;
		k++;
		len -= take;
		off = 0;
	}
	return len ? -1 : (int)k;
}

static void hdr_decode(const uint8_t *raw, struct vsock_hdr *h)
{
	struct virtio_vsock_hdr w;

	memcpy(&w, raw, sizeof(w));
	h->src_cid = le64toh(w.src_cid);
	h->dst_cid = le64toh(w.dst_cid);
	h->src_port = le32toh(w.src_port);
	h->dst_port = le32toh(w.dst_port);
	h->len = le32toh(w.len);
	h->type = le16toh(w.type);
	h->op = le16toh(w.op);
	h->flags = le32toh(w.flags);
	h->buf_alloc = le32toh(w.buf_alloc);
	h->fwd_cnt = le32toh(w.fwd_cnt);
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_LEN])
{
	struct virtio_vsock_hdr w = {
		.src_cid = htole64(h->src_cid), .dst_cid = htole64(h->dst_cid),
		.src_port = htole32(h->src_port), .dst_port = htole32(h->dst_port),
		.len = htole32(h->len), .type = htole16(h->type), .op = htole16(h->op),
		.flags = htole32(h->flags), .buf_alloc = htole32(h->buf_alloc),
		.fwd_cnt = htole32(h->fwd_cnt),
	};

	memcpy(out, &w, VSOCK_HDR_LEN);
}

/* Field checks in a fixed order: length and op first (what the packet is), then addressing
 * (who sent it to whom), then type and flags. */
static enum vsock_err hdr_check(const struct vsock_hdr *h, uint64_t total, uint64_t guest_cid)
{
	if (h->len > VSOCK_MAX_PAYLOAD || h->len > total - VSOCK_HDR_LEN)
		return VSOCK_ERR_LEN;
	if (h->op < VIRTIO_VSOCK_OP_REQUEST || h->op > VIRTIO_VSOCK_OP_CREDIT_REQUEST)
		return VSOCK_ERR_OP;
	if (h->op != VIRTIO_VSOCK_OP_RW && h->len)
		return VSOCK_ERR_CTRL_LEN;
	if (h->src_cid != guest_cid)
		return VSOCK_ERR_SRC_CID;
	if (h->dst_cid != VSOCK_HOST_CID)
		return VSOCK_ERR_DST_CID;
	if (h->type != VIRTIO_VSOCK_TYPE_STREAM)
		return VSOCK_ERR_TYPE;
	if (h->op == VIRTIO_VSOCK_OP_SHUTDOWN &&
	    (h->flags & ~(uint32_t)(VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND)))
		return VSOCK_ERR_FLAGS;
	return VSOCK_OK;
}

enum vsock_err vsock_parse(const struct iovec *iov, unsigned n, uint64_t total, uint64_t guest_cid,
			   struct vsock_hdr *h, struct iovec *payload, unsigned max_payload,
			   unsigned *npayload)
{
	uint8_t raw[VSOCK_HDR_LEN];
	enum vsock_err e;
	int k;

	*npayload = 0;
	if (total < VSOCK_HDR_LEN ||
	    vsock_iov_to_buf(iov, n, 0, raw, VSOCK_HDR_LEN) != VSOCK_HDR_LEN)
		return VSOCK_ERR_SHORT;
	hdr_decode(raw, h);
	e = hdr_check(h, total, guest_cid);
	if (e != VSOCK_OK)
		return e;
	k = vsock_iov_slice(iov, n, VSOCK_HDR_LEN, h->len, payload, max_payload);
	if (k < 0)
		return VSOCK_ERR_LEN;
	*npayload = (unsigned)k;
	return VSOCK_OK;
}
