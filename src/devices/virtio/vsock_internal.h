/* virtio-vsock internals shared by vsock.c (the device, its worker thread and queues) and
 * vsock_conn.c (connections: table, state machine, host Unix sockets).
 *
 * One worker thread per device does everything: it pops transmit packets, fills receive
 * buffers, and polls (epoll) the kick eventfd, the host listener, and every host socket.
 * Nothing else touches the queues or connections while it runs; the class's reset stops it
 * (join) before the queues go away. Host sockets are non-blocking and polled edge-triggered:
 * `readable` / `writable` remember an edge until a read / write returns EAGAIN, so a
 * connection whose guest side has no credit is simply not read (and costs nothing) until a
 * credit update arrives.
 */
#ifndef VIREO_DEVICES_VIRTIO_VSOCK_INTERNAL_H
#define VIREO_DEVICES_VIRTIO_VSOCK_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/vsock.h"

#define VSOCK_HASH_BUCKETS 1024
#define VSOCK_MAX_CONNS    4096
#define VSOCK_MAX_PENDING  64      /* host clients that have not sent their CONNECT line */
#define VSOCK_RST_QUEUE    256     /* RSTs for unknown connections waiting for rx buffers */
#define VSOCK_RX_BATCH     64      /* receive buffers filled by one readv */
#define VSOCK_LOCAL_PORT_BASE (1u << 30)

/* What an epoll event points at. */
enum vsock_ep_kind { EP_KICK, EP_LISTEN, EP_PENDING, EP_CONN };
struct vsock_ep {
	enum vsock_ep_kind kind;
};

/* Pending control packets of a connection (to the guest). */
#define VC_REQUEST        (1u << 0)
#define VC_RESPONSE       (1u << 1)
#define VC_CREDIT_UPDATE  (1u << 2)
#define VC_CREDIT_REQUEST (1u << 3)
#define VC_SHUTDOWN       (1u << 4)

enum vsock_conn_state {
	VC_CONNECTING,   /* host-initiated: REQUEST (to be) sent, waiting for RESPONSE */
	VC_ESTABLISHED,
};

/* Guest->host bytes the host socket has not taken yet (at most our buf_alloc). */
struct vsock_ring {
	uint8_t *buf;
	uint32_t cap, head, len;
};

struct vsock_conn {
	struct vsock_ep ep;
	uint32_t local_port, peer_port; /* host side, guest side */
	int fd;
	enum vsock_conn_state state;
	/* the guest's receive credit */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t rx_cnt;            /* payload bytes given to the guest */
	/* our receive credit */
	uint32_t fwd_cnt;           /* bytes from the guest written to the host socket */
	uint32_t announced_fwd;     /* fwd_cnt as last told to the guest */
	struct vsock_ring out;
	unsigned ctrl;              /* VC_* packets to send */
	uint32_t shut_flags;        /* flags of the pending / last SHUTDOWN we send */
	bool guest_shut_send, guest_shut_rcv; /* the guest's SHUTDOWN flags so far */
	bool host_shut_wr;        /* shutdown(SHUT_WR) done on the host socket */
	bool host_eof, host_hup;    /* read returned 0; peer closed both ways */
	bool readable, writable;    /* edge seen, no EAGAIN since */
	bool credit_requested;      /* CREDIT_REQUEST sent, no credit info since */
	bool close_after_flush;     /* guest closed: RST once `out` is flushed */
	int64_t deadline_ms;        /* 0: none */
	struct vsock_conn *hnext;   /* hash chain */
	struct vsock_conn *rnext, *rprev; /* the rx work list */
	bool on_rx;
	struct vsock_conn *anext, *aprev; /* all connections */
	char okline[32];            /* "OK <port>\n" not yet written (host-initiated) */
};

struct vsock_pending {
	struct vsock_ep ep;
	int fd;
	int64_t deadline_ms;
	struct vsock_pending *next, *prev;
};

struct vsock_rst { uint32_t local_port, peer_port; };

struct vsock_dev {
	struct virtio_device_class cls;
	struct virtio_device *vdev;
	uint64_t guest_cid;
	char uds[VIRTIO_VSOCK_UDS_MAX + 1]; /* "<uds>_<port>" must fit sun_path */
	unsigned qsize;
	unsigned connect_timeout_ms, close_timeout_ms; /* see virtio_vsock_config_opts */
	unsigned tick_ms;            /* how often deadlines are checked */
	int listen_fd, kick_fd, epfd;
	struct vsock_ep kick_ep, listen_ep;
	pthread_t thread;
	bool started;
	volatile bool stop;
	bool broken;
	bool transport_reset;       /* send TRANSPORT_RESET when the event queue allows */
	struct virtqueue *rxq, *txq, *evq;
	bool rx_pushed, tx_pushed, ev_pushed;
	struct vq_elem txe, eve;
	struct vq_elem *rxe;        /* RX_BATCH elements */
	const struct vq_elem *rx_ptrs[VSOCK_RX_BATCH]; /* for vq_push_batch */
	struct iovec *rx_iov;       /* payload iovecs of one batched read */
	struct iovec pay[VQ_MAX_IOV];
	/* connections */
	struct vsock_conn *hash[VSOCK_HASH_BUCKETS];
	struct vsock_conn *all;
	struct vsock_conn *rx_head, *rx_tail;
	unsigned nconns;
	uint32_t next_local_port;
	struct vsock_pending *pending;
	unsigned npending;
	struct vsock_rst rst[VSOCK_RST_QUEUE];
	unsigned rst_head, rst_len;
	struct virtio_vsock_stats stats; /* updated with relaxed atomics by the worker */
};

#define VSOCK_STAT_ADD(d, f, n) __atomic_add_fetch(&(d)->stats.f, (n), __ATOMIC_RELAXED)

int64_t vsock_now_ms(void);
void vsock_count_err(struct vsock_dev *d, enum vsock_err e, const struct vsock_hdr *h);

/* vsock_conn.c */
int vsock_listen(struct vsock_dev *d);
struct vsock_conn *vsock_conn_find(struct vsock_dev *d, uint32_t local, uint32_t peer);
/* A packet from the guest (checked by vsock_parse) for connection (dst_port, src_port). */
void vsock_conn_guest_pkt(struct vsock_dev *d, const struct vsock_hdr *h,
			  const struct iovec *pay, unsigned npay);
void vsock_conn_event(struct vsock_dev *d, struct vsock_ep *ep, uint32_t events);
void vsock_conns_timeouts(struct vsock_dev *d);
bool vsock_conns_have_deadlines(const struct vsock_dev *d);
/* Close every connection and pending client (device reset / destroy). Returns how many
 * connections were open. */
unsigned vsock_conns_close_all(struct vsock_dev *d);
void vsock_rx_list_add(struct vsock_dev *d, struct vsock_conn *c);
void vsock_rx_list_del(struct vsock_dev *d, struct vsock_conn *c);
/* Queue an RST to the guest for (local, peer) and close c when not NULL. */
void vsock_reset_conn(struct vsock_dev *d, struct vsock_conn *c, uint32_t local, uint32_t peer);
/* The guest's credit for connection c (bytes we may still send). */
uint32_t vsock_peer_credit(const struct vsock_conn *c);
/* Whether c should be on the rx list (control packets, or data we can send). */
bool vsock_conn_wants_rx(const struct vsock_conn *c);
/* Re-evaluate c's rx work (adds it to the rx list); asks for credit when starved. */
void vsock_conn_update_rx(struct vsock_dev *d, struct vsock_conn *c);
/* Reading from the host returned 0 (peer shut down writing) or an error. */
void vsock_conn_host_eof(struct vsock_dev *d, struct vsock_conn *c);
/* After a packet with credit info went to the guest. */
void vsock_conn_sent_credit(struct vsock_conn *c);

#endif
