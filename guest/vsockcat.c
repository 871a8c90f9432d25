/* vsockcat: socat for AF_VSOCK, in vireo's default guest (and on the host, for the Unix-socket
 * side of vireo's virtio-vsock device in Firecracker's convention).
 *
 *   vsockcat listen PORT            accept one vsock connection on PORT
 *   vsockcat connect CID PORT       connect to CID:PORT (the host is CID 2)
 *   vsockcat uds-connect PATH PORT  host side: connect to the device's socket PATH, send
 *                                   "CONNECT PORT\n", expect "OK <n>\n"
 *   vsockcat uds-listen PATH        host side: accept one connection on PATH (PATH is the
 *                                   device's socket followed by _PORT)
 * Copy mode (the default): stdin goes to the socket (shutdown(SHUT_WR) at stdin EOF), the
 * socket to stdout; ends when both directions are done. Exit status 1 on a socket error
 * (reset by the peer, for example).
 *   vsockcat perf send|recv ENDPOINT... [--size N] [--bytes N] [--conns K]
 * sends N bytes in messages of --size bytes (default 64 KiB, 64 MiB) on each of K
 * connections (default 1), or receives until EOF, and prints
 *   "perf send|recv: B bytes in S s: X MB/s (size N, K conns)"   (MB = 10^6 bytes)
 * Built static with gcc and clang, -Werror clean.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

enum mode { M_LISTEN, M_CONNECT, M_UDS_CONNECT, M_UDS_LISTEN };

struct endpoint {
	enum mode mode;
	unsigned long cid, port;
	const char *path;
	int lfd; /* listening socket (listen modes) */
};

struct perf {
	bool send;
	size_t size;
	unsigned long long bytes;
	unsigned conns;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: vsockcat listen PORT | connect CID PORT | uds-connect PATH PORT | uds-listen PATH\n"
		"       vsockcat perf send|recv ENDPOINT... [--size N] [--bytes N] [--conns K]\n");
	exit(2);
}

static unsigned long num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		usage();
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end)
		usage();
	return (unsigned long)v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parse an endpoint at argv[i]; returns the index after it. */
static int parse_endpoint(int argc, char **argv, int i, struct endpoint *ep)
{
	if (i >= argc)
		usage();
	if (!strcmp(argv[i], "listen") && i + 1 < argc) {
		ep->mode = M_LISTEN;
		ep->port = num(argv[i + 1]);
		return i + 2;
	}
	if (!strcmp(argv[i], "connect") && i + 2 < argc) {
		ep->mode = M_CONNECT;
		ep->cid = num(argv[i + 1]);
		ep->port = num(argv[i + 2]);
		return i + 3;
	}
	if (!strcmp(argv[i], "uds-connect") && i + 2 < argc) {
		ep->mode = M_UDS_CONNECT;
		ep->path = argv[i + 1];
		ep->port = num(argv[i + 2]);
		return i + 3;
	}
	if (!strcmp(argv[i], "uds-listen") && i + 1 < argc) {
		ep->mode = M_UDS_LISTEN;
		ep->path = argv[i + 1];
		return i + 2;
	}
	usage();
	return 0;
}

static int uds_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		fprintf(stderr, "vsockcat: path too long: %s\n", path);
		return -1;
	}
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

static int ep_listen(struct endpoint *ep)
{
	struct sockaddr_vm vm = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY };
	struct sockaddr_un un;
	int fd, one = 1;

	if (ep->mode == M_LISTEN) {
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		vm.svm_port = (unsigned)ep->port;
		if (fd < 0 || bind(fd, (struct sockaddr *)&vm, sizeof(vm)))
			goto fail;
	} else {
		if (uds_addr(ep->path, &un))
			return -1;
		unlink(ep->path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof(un)))
			goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (listen(fd, 64))
		goto fail;
	ep->lfd = fd;
	return 0;
fail:
	perror("vsockcat: listen");
	return -1;
}

/* "CONNECT port\n" and the "OK n\n" answer, read a byte at a time (data may follow it). */
static int uds_handshake(int fd, unsigned long port)
{
	char line[64];
	size_t n = 0;
	int len = snprintf(line, sizeof(line), "CONNECT %lu\n", port);

	if (write(fd, line, (size_t)len) != len)
		return -1;
	while (n < sizeof(line) - 1) {
		if (read(fd, line + n, 1) != 1)
			break;
		if (line[n++] == '\n') {
			line[n] = 0;
			return strncmp(line, "OK ", 3) ? -1 : 0;
		}
	}
	fprintf(stderr, "vsockcat: no OK from %s for port %lu\n", "the device", port);
	return -1;
}

/* One connected socket for ep (accepts on listening endpoints). */
static int ep_open(struct endpoint *ep)
{
	struct sockaddr_vm vm = { .svm_family = AF_VSOCK };
	struct sockaddr_un un;
	int fd;

	if (ep->mode == M_LISTEN || ep->mode == M_UDS_LISTEN) {
		fd = accept(ep->lfd, NULL, NULL);
		if (fd < 0)
			perror("vsockcat: accept");
		return fd;
	}
	if (ep->mode == M_CONNECT) {
		vm.svm_cid = (unsigned)ep->cid;
		vm.svm_port = (unsigned)ep->port;
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd >= 0 && !connect(fd, (struct sockaddr *)&vm, sizeof(vm)))
			return fd;
	} else {
		if (uds_addr(ep->path, &un))
			return -1;
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd >= 0 && !connect(fd, (struct sockaddr *)&un, sizeof(un)) &&
		    !uds_handshake(fd, ep->port))
			return fd;
	}
	perror("vsockcat: connect");
	if (fd >= 0)
		close(fd);
	return -1;
}

static int write_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy mode: stdin -> socket, socket -> stdout, until both are done. */
static int relay(int s)
{
	static char buf[64 * 1024];
	bool in_open = true, sock_open = true;

	while (in_open || sock_open) {
		struct pollfd p[2] = { { in_open ? 0 : -1, POLLIN, 0 }, { sock_open ? s : -1, POLLIN, 0 } };
		ssize_t n;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents) {
			n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				in_open = false;
				shutdown(s, SHUT_WR);
			} else if (write_all(s, buf, (size_t)n)) {
				perror("vsockcat: socket write");
				return 1;
			}
		}
		if (p[1].revents) {
			n = read(s, buf, sizeof(buf));
			if (n < 0) {
				perror("vsockcat: socket read");
				return 1;
			}
			if (n == 0)
				sock_open = false;
			else if (write_all(1, buf, (size_t)n))
				return 1;
		}
	}
	return 0;
}

/* ---- perf ---------------------------------------------------------------------------------- */

struct worker {
	pthread_t t;
	int fd;
	const struct perf *p;
	unsigned long long done;
	double start, end;
	int err;
};

static void *perf_conn(void *arg)
{
	struct worker *w = arg;
	char *buf = malloc(w->p->size);
	char tail[4096];

	if (!buf) {
		w->err = 1;
		return NULL;
	}
	memset(buf, 0x5a, w->p->size);
	w->start = now();
	if (w->p->send) {
		while (w->done < w->p->bytes) {
			size_t n = w->p->bytes - w->done < w->p->size ? w->p->bytes - w->done : w->p->size;

			if (write_all(w->fd, buf, n)) {
				w->err = 1;
				break;
			}
			w->done += n;
		}
		shutdown(w->fd, SHUT_WR);
		while (read(w->fd, tail, sizeof(tail)) > 0) /* until the receiver closes */
			;
	} else {
		ssize_t n;

		while ((n = read(w->fd, buf, w->p->size)) > 0)
			w->done += (unsigned long long)n;
		if (n < 0)
			w->err = 1;
	}
	w->end = now();
	close(w->fd);
	free(buf);
	return NULL;
}

static int perf(struct endpoint *ep, const struct perf *p)
{
	struct worker *w = calloc(p->conns, sizeof(*w));
	unsigned long long total = 0;
	double t0 = 0, t1 = 0, secs;
	int err = 0;

	if (!w)
		return 1;
	for (unsigned i = 0; i < p->conns; i++) {
		w[i].p = p;
		w[i].fd = ep_open(ep);
		if (w[i].fd < 0)
			return 1;
	}
	for (unsigned i = 0; i < p->conns; i++)
		pthread_create(&w[i].t, NULL, perf_conn, &w[i]);
	for (unsigned i = 0; i < p->conns; i++) {
		pthread_join(w[i].t, NULL);
		total += w[i].done;
		err |= w[i].err;
		if (!i || w[i].start < t0)
			t0 = w[i].start;
		if (w[i].end > t1)
			t1 = w[i].end;
	}
	secs = t1 - t0 > 1e-6 ? t1 - t0 : 1e-6;
	printf("perf %s: %llu bytes in %.3f s: %.1f MB/s (size %zu, %u conns)%s\n",
	       p->send ? "send" : "recv", total, secs, (double)total / secs / 1e6, p->size,
	       p->conns, err ? " (errors)" : "");
	fflush(stdout);
	free(w);
	return err;
}

int main(int argc, char **argv)
{
	struct endpoint ep = { .lfd = -1 };
	struct perf p = { .size = 64 * 1024, .bytes = 64ull << 20, .conns = 1 };
	bool is_perf = argc > 2 && !strcmp(argv[1], "perf");
	int i = 1, s, rc;

	signal(SIGPIPE, SIG_IGN); /* a peer that goes away is an error message, not a silent death */
	if (is_perf) {
		if (strcmp(argv[2], "send") && strcmp(argv[2], "recv"))
			usage();
		p.send = !strcmp(argv[2], "send");
		i = 3;
	}
	i = parse_endpoint(argc, argv, i, &ep);
	for (; i < argc; i += 2) {
		if (i + 1 >= argc || !is_perf)
			usage();
		if (!strcmp(argv[i], "--size"))
			p.size = num(argv[i + 1]);
		else if (!strcmp(argv[i], "--bytes"))
			p.bytes = num(argv[i + 1]);
		else if (!strcmp(argv[i], "--conns"))
			p.conns = (unsigned)num(argv[i + 1]);
		else
			usage();
	}
	if (!p.size || !p.conns || p.conns > 1024)
		usage();
	if ((ep.mode == M_LISTEN || ep.mode == M_UDS_LISTEN) && ep_listen(&ep))
		return 1;
	if (is_perf)
		return perf(&ep, &p);
	s = ep_open(&ep);
	if (s < 0)
		return 1;
	rc = relay(s);
	close(s);
	return rc;
}
