/* The vhost-user wire protocol (QEMU docs/interop/vhost-user.rst): request codes, feature
 * bits and message layouts. Only layouts live here; what each request does is in
 * vu_server.c's dispatch table and handlers.
 */
#ifndef VIREO_VHOST_USER_VU_PROTO_H
#define VIREO_VHOST_USER_VU_PROTO_H

#include <stdint.h>
#include <linux/vhost_types.h>

/* Front-end -> back-end requests. */
enum vu_request {
	VU_REQ_NONE = 0,
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_SEND_RARP = 19,
	VU_NET_SET_MTU = 20,
	VU_SET_BACKEND_REQ_FD = 21,
	VU_IOTLB_MSG = 22,
	VU_SET_VRING_ENDIAN = 23,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_GET_INFLIGHT_FD = 31,
	VU_SET_INFLIGHT_FD = 32,
	VU_RESET_DEVICE = 34,
	VU_GET_MAX_MEM_SLOTS = 36,
	VU_REQ_MAX = 41,
};

/* Back-end -> front-end requests (on the backend-request channel). */
#define VU_BACKEND_IOTLB_MSG 1
#define VU_BACKEND_CONFIG_CHANGE_MSG 2

/* Header flags. */
#define VU_VERSION        0x1u
#define VU_VERSION_MASK   0x3u
#define VU_FLAG_REPLY     (1u << 2)
#define VU_FLAG_NEED_REPLY (1u << 3)
#define VU_FLAGS_KNOWN    (VU_VERSION_MASK | VU_FLAG_REPLY | VU_FLAG_NEED_REPLY)

/* Virtio feature bits that belong to vhost-user itself. */
#define VU_F_PROTOCOL_FEATURES 30
#define VU_F_LOG_ALL 26 /* VHOST_F_LOG_ALL */

/* Protocol feature bits. */
#define VU_PF_MQ            0
#define VU_PF_LOG_SHMFD     1
#define VU_PF_RARP          2
#define VU_PF_REPLY_ACK     3
#define VU_PF_MTU           4
#define VU_PF_BACKEND_REQ   5
#define VU_PF_CROSS_ENDIAN  6
#define VU_PF_CONFIG        9
#define VU_PF_BACKEND_SEND_FD 10
#define VU_PF_INFLIGHT_SHMFD 12
#define VU_PF_RESET_DEVICE  13
#define VU_PF_CONFIGURE_MEM_SLOTS 15
#define VU_PF_STATUS        16

/* The u64 of SET_VRING_KICK/CALL/ERR: ring index in bits 0-7, "no fd" in bit 8. */
#define VU_VRING_IDX_MASK 0xffu
#define VU_VRING_NOFD     (1u << 8)

#define VU_MAX_FDS        8   /* fds in one message (QEMU's VHOST_MEMORY_BASELINE_NREGIONS) */
#define VU_MAX_MEM_REGIONS 8
#define VU_MAX_CONFIG     256 /* config space bytes in GET/SET_CONFIG */

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes that follow */
} __attribute__((packed));

struct vu_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
} __attribute__((packed));

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region regions[VU_MAX_MEM_REGIONS];
} __attribute__((packed));

struct vu_log_area {
	uint64_t mmap_size;
	uint64_t mmap_offset;
} __attribute__((packed));

struct vu_config_msg {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VU_MAX_CONFIG];
} __attribute__((packed));

#define VU_CONFIG_HDR_SIZE 12u
#define VU_MEM_HDR_SIZE 8u

/* The IOTLB payload: struct vhost_iotlb_msg (26 bytes of fields, 32 with padding). */
#define VU_IOTLB_SIZE ((uint32_t)sizeof(struct vhost_iotlb_msg))

union vu_payload {
	uint64_t u64;
	struct vhost_vring_state state;
	struct vhost_vring_addr addr;
	struct vu_mem_table mem;
	struct vu_log_area log;
	struct vu_config_msg config;
	struct vhost_iotlb_msg iotlb;
	uint8_t raw[sizeof(struct vu_mem_table)];
};

#define VU_MAX_PAYLOAD ((uint32_t)sizeof(union vu_payload))

/* One message as received: header, payload, and the fds that came with it (owned by the
 * message until a handler takes one and sets its slot to -1). */
struct vu_msg {
	struct vu_hdr hdr;
	union vu_payload payload;
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

const char *vu_request_name(uint32_t request);

#endif
