/* libFuzzer target for the vhost-user message parser and dispatcher (src/vhost-user/): the
 * input is a byte stream a front-end sends on the socket (any number of messages, cut
 * anywhere), served by a vu_server with virtio-rng behind it until the connection ends.
 * With the first input byte odd, a 64 KiB memfd travels with the first message, so that
 * memory tables, log areas and eventfd-taking requests get a real fd. Whatever the bytes,
 * the server must neither crash nor leak, and must be ready for the next connection. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio/rng.h"
#include "memory/guest_memory.h"
#include "util/log.h"
#include "vhost-user/vu_server.h"

static struct guest_memory gm;
static struct virtio_device vdev;
static struct vu_server *srv;
static int memfd = -1;

static void init_once(void)
{
	struct vu_server_config cfg;

	log_set_level(LOG_ERR);
	if (gm_init(&gm) || virtio_rng_create(&vdev, &gm))
		abort();
	cfg = (struct vu_server_config){
		.name = "fuzz", .dev = virtio_device_handle(&vdev), .gm = &gm,
		.set_iotlb = virtio_device_set_iotlb, .quiesce = virtio_device_quiesce,
	};
	if (vu_server_create(&cfg, &srv))
		abort();
	memfd = memfd_create("fuzz-guest", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, 65536))
		abort();
}

/* Send the first n bytes with memfd attached. */
static void send_with_fd(int sock, const uint8_t *data, size_t n)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)data, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	memset(cbuf, 0, sizeof(cbuf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &memfd, sizeof(int));
	sendmsg(sock, &mh, MSG_NOSIGNAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	size_t off = 0;

	if (!srv)
		init_once();
	if (size < 1 || size > 60000)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	if (data[0] & 1 && size > 1) {
		off = size - 1 < 12 ? size - 1 : 12;
		send_with_fd(sv[1], data + 1, off);
	}
	off += 1;
	if (off < size && send(sv[1], data + off, size - off, MSG_NOSIGNAL) < 0)
		abort();
	shutdown(sv[1], SHUT_WR); /* the server reads to the end, never waits */
	if (vu_server_adopt(srv, sv[0]))
		abort();
	for (int i = 0; i < 1000 && vu_server_connected(srv); i++)
		vu_server_process_one(srv);
	if (vu_server_connected(srv))
		abort(); /* more messages than the input could hold: a loop */
	close(sv[1]);
	return 0;
}
