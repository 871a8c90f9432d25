/* virtio-vsock packets (virtio 1.2, 5.10): the 44-byte header, checked and encoded.
 *
 * Everything here is pure (no device state), so the parser can be fuzzed on its own
 * (tests/fuzz/fuzz_vsock.c). vsock_parse() copies the header out of the guest's buffers once
 * (no double fetch) and checks every field the guest controls before anything acts on it.
 */
#ifndef VIREO_DEVICES_VIRTIO_VSOCK_PROTO_H
#define VIREO_DEVICES_VIRTIO_VSOCK_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_vsock.h>

#define VSOCK_HDR_LEN      44u            /* sizeof(struct virtio_vsock_hdr) */
#define VSOCK_HOST_CID     2u             /* VMADDR_CID_HOST */
#define VSOCK_MAX_PAYLOAD  (64u * 1024)   /* largest RW payload a driver may send */

/* Why a packet from the guest was refused (counted per reason). */
enum vsock_err {
	VSOCK_OK = 0,
	VSOCK_ERR_SHORT,      /* buffer shorter than the header */
	VSOCK_ERR_LEN,        /* hdr.len larger than the buffer or than VSOCK_MAX_PAYLOAD */
	VSOCK_ERR_CTRL_LEN,   /* a payload on a packet other than RW */
	VSOCK_ERR_OP,         /* unknown op */
	VSOCK_ERR_TYPE,       /* type other than STREAM */
	VSOCK_ERR_FLAGS,      /* SHUTDOWN flags outside RCV|SEND */
	VSOCK_ERR_SRC_CID,    /* src_cid is not the guest's cid */
	VSOCK_ERR_DST_CID,    /* dst_cid is not the host */
	VSOCK_ERR_CREDIT,     /* RW beyond the credit we advertised */
	VSOCK_ERR_STATE,      /* op not valid for the connection's state */
	VSOCK_ERR_RX_BUF,     /* receive buffer too small for a header, or read-only */
	VSOCK_ERR_COUNT
};
const char *vsock_err_name(enum vsock_err e);

/* A header in host byte order. */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

/* Check a packet the guest sent: iov[0..n) holds total bytes (the device-readable part of a
 * transmit chain). On VSOCK_OK, *h is the header and payload[0..*npayload) the hdr.len bytes
 * after it (pointers into iov; at most max_payload entries, else VSOCK_ERR_LEN). */
enum vsock_err vsock_parse(const struct iovec *iov, unsigned n, uint64_t total, uint64_t guest_cid,
			   struct vsock_hdr *h, struct iovec *payload, unsigned max_payload,
			   unsigned *npayload);

/* The header in wire format (little endian). */
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_LEN]);

/* Copy len bytes into / out of iovecs at byte offset off. Return bytes copied. */
size_t vsock_iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t vsock_buf_to_iov(const struct iovec *iov, unsigned n, size_t off, const void *buf,
			size_t len);
/* The iovecs covering bytes [off, off + len) of iov[0..n): at most max entries in out.
 * Returns how many, or -1 when the range does not fit (in iov or in max entries). */
int vsock_iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len,
		    struct iovec *out, unsigned max);

#endif
