/* vhost-user message I/O on a Unix stream socket (no event loop, no state). */
#ifndef VIREO_VHOST_USER_VU_MSG_H
#define VIREO_VHOST_USER_VU_MSG_H

#include "vhost-user/vu_proto.h"

/* Receive one message: header (with its fds), then hdr.size payload bytes. Refuses what no
 * request could be (bad version or flags, payload > VU_MAX_PAYLOAD, too many fds): returns
 * -errno with *why set and no fd left open. -ECONNRESET when the peer closed. */
int vu_msg_recv(int sock, struct vu_msg *m, const char **why);
/* The front-end's side: receive one reply (the same checks, but the reply flag required). */
int vu_msg_recv_reply(int sock, struct vu_msg *m, const char **why);
/* The request-independent header checks vu_msg_recv applies (0 or -errno with *why). */
int vu_msg_check_hdr(const struct vu_hdr *h, const char **why);
/* Send header + hdr->size payload bytes with nfds fds in one sendmsg. */
int vu_msg_send(int sock, const struct vu_hdr *hdr, const void *payload, const int *fds,
		unsigned nfds);
void vu_msg_close_fds(struct vu_msg *m);
int vu_msg_take_fd(struct vu_msg *m, unsigned i);

#endif
