/* libFuzzer target for the virtio-vsock packet parser (src/devices/virtio/vsock_proto.c).
 * The input is a transmit buffer as a hostile driver could lay it out: the first byte picks
 * how the bytes are split into up to 8 iovecs (a header may straddle them), the next one picks
 * the guest cid, the rest is the packet. Checks: the parser never reads outside the buffers;
 * an accepted packet has a valid op, type STREAM, the right cids, a payload of exactly
 * hdr.len bytes that lies inside the buffers right after the header, and its header encodes
 * back to the bytes it was read from. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/vsock_proto.h"

#define MAX_IOV 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec iov[MAX_IOV], pay[4];
	uint8_t *copy, enc[VSOCK_HDR_LEN], raw[VSOCK_HDR_LEN];
	struct vsock_hdr h;
	unsigned n = 0, npay;
	uint64_t cid;
	size_t off = 0, len, sum = 0;
	enum vsock_err e;

	if (size < 2)
		return 0;
	unsigned split = data[0];
	cid = data[1] & 1 ? 3 : data[1];
	data += 2;
	size -= 2;
	/* a private copy per iovec, so ASan sees any read past a piece */
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	while (off < size && n < MAX_IOV) {
		size_t piece = n == MAX_IOV - 1 ? size - off : 1 + ((split * 31u + n * 17u) % 61u);

		if (piece > size - off)
			piece = size - off;
		iov[n].iov_base = malloc(piece);
		memcpy(iov[n].iov_base, copy + off, piece);
		iov[n].iov_len = piece;
		off += piece;
		n++;
	}
	len = off;
	e = vsock_parse(iov, n, len, cid, &h, pay, 4, &npay);
	(void)vsock_err_name(e);
	if (e == VSOCK_OK) {
		if (h.op < VIRTIO_VSOCK_OP_REQUEST || h.op > VIRTIO_VSOCK_OP_CREDIT_REQUEST ||
		    h.type != VIRTIO_VSOCK_TYPE_STREAM || h.src_cid != cid ||
		    h.dst_cid != VSOCK_HOST_CID || h.len > VSOCK_MAX_PAYLOAD ||
		    h.len > len - VSOCK_HDR_LEN || (h.op != VIRTIO_VSOCK_OP_RW && h.len))
			abort();
		for (unsigned i = 0; i < npay; i++) {
			uint8_t tmp[64];
			size_t k = pay[i].iov_len < sizeof(tmp) ? pay[i].iov_len : sizeof(tmp);

			memcpy(tmp, pay[i].iov_base, k); /* in bounds, or ASan stops us */
			memcpy(tmp, (uint8_t *)pay[i].iov_base + pay[i].iov_len - k, k);
			sum += pay[i].iov_len;
		}
		if (sum != h.len)
			abort();
		if (npay && memcmp(pay[0].iov_base, copy + VSOCK_HDR_LEN,
				   pay[0].iov_len))
			abort();
		vsock_hdr_encode(&h, enc);
		if (vsock_iov_to_buf(iov, n, 0, raw, VSOCK_HDR_LEN) != VSOCK_HDR_LEN ||
		    memcmp(enc, raw, VSOCK_HDR_LEN))
			abort();
	} else if (e != VSOCK_ERR_SHORT && len < VSOCK_HDR_LEN) {
		abort();
	}
	for (unsigned i = 0; i < n; i++)
		free(iov[i].iov_base);
	free(copy);
	return 0;
}
