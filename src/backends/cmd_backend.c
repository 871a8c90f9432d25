/* `vireo backend KIND --socket PATH [options]`: serve one virtio device over vhost-user.
 *
 * The device is an in-process virtio device (src/devices/virtio/) behind the device-ops
 * interface; the vhost-user library (src/vhost-user/) turns the front-end's messages into ops
 * calls. This file holds the option parsing, the kind table and a small epoll loop that polls
 * what the library asks for. SIGTERM/SIGINT end the process cleanly; a front-end that
 * disconnects may reconnect (server mode: the next one is accepted; client mode: the backend
 * reconnects every second).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "backends/backend.h"
#include "sandbox/landlock.h"
#include "sandbox/seccomp.h"
#include "util/log.h"
#include "vhost-user/vu_server.h"

#define TOKEN_SIGNAL 1u

static const struct backend_kind *const kinds[] = {
	&backend_kind_rng,
	&backend_kind_blk,
	&backend_kind_net,
	&backend_kind_vsock,
};

struct backend_loop {
	int epfd;
	struct vu_server *srv;
	int sfd;                          /* signalfd: SIGTERM/INT/HUP end, SIGUSR1 reports */
	const struct backend_kind *kind;
	struct virtio_device *vdev;
};

static int loop_watch(void *opaque, int fd, uint32_t token)
{
	struct backend_loop *l = opaque;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = token };

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) && errno == EEXIST)
		epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
	return 0;
}

static void loop_unwatch(void *opaque, int fd)
{
	struct backend_loop *l = opaque;

	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void usage_all(FILE *f)
{
	fprintf(f, "usage: vireo backend KIND --socket PATH [options]\n"
		   "Serve one virtio device to a vhost-user front-end (QEMU, Cloud Hypervisor,\n"
		   "DPDK virtio-user, vireo). Kinds:\n");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		fprintf(f, "  %-6s %s\n", kinds[i]->name, kinds[i]->summary);
	fprintf(f, "vireo backend KIND --help lists the options of one kind.\n");
}

static void usage_kind(FILE *f, const struct backend_kind *k)
{
	fprintf(f, "usage: vireo backend %s --socket PATH [options]\n%s\n\n"
		   "common options:\n"
		   "  --socket PATH      the vhost-user Unix socket (required)\n"
		   "  --client           connect to PATH (the front-end listens) instead of listening;\n"
		   "                     reconnects every second after a disconnect\n"
		   "  --seccomp MODE     syscall filter once the socket is up: on (default: a\n"
		   "                     syscall outside the %s allowlist kills the backend), log\n"
		   "                     (allowed, logged by the kernel's audit), off\n"
		   "  -v, --verbose      log more (twice: debug)\n"
		   "  -h, --help         this text\n",
		   k->name, k->summary, k->name);
	if (k->help)
		fprintf(f, "%s options:\n%s", k->name, k->help);
}

static const struct backend_kind *find_kind(const char *name)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kinds[i]->name, name))
			return kinds[i];
	return NULL;
}

/* Options common to all kinds; the rest go to the kind. Returns 0, 1 (help shown) or 2. */
static int parse_args(const struct backend_kind *k, int argc, char **argv,
		      struct backend_opts *o)
{
	int verbose = 0;

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int used;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage_kind(stdout, k);
			return 1;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbose++;
		} else if (!strcmp(a, "--client")) {
			o->client = true;
		} else if (!strcmp(a, "--seccomp")) {
			enum sandbox_mode m;

			if (!v)
				goto missing;
			if (sandbox_parse_mode(v, &m)) {
				fprintf(stderr, "vireo backend %s: --seccomp %s: not on, off or log\n",
					k->name, v);
				return 2;
			}
			o->seccomp = m;
			i++;
		} else if (!strcmp(a, "--socket")) {
			if (!v)
				goto missing;
			o->socket = v;
			i++;
		} else {
			used = k->parse ? k->parse(o, a, v) : -1;
			if (used < 0) {
				if (used == -2)
					goto missing;
				if (used == -3) {
					fprintf(stderr, "vireo backend %s: bad value '%s' for %s\n",
						k->name, v, a);
					return 2;
				}
				fprintf(stderr, "vireo backend %s: unknown option '%s'\n", k->name, a);
				return 2;
			}
			i += used;
		}
	}
	if (verbose)
		log_set_level(verbose > 1 ? LOG_DEBUG : LOG_INFO);
	if (!o->socket) {
		fprintf(stderr, "vireo backend %s: --socket PATH is required\n", k->name);
		return 2;
	}
	return 0;
missing:
	fprintf(stderr, "vireo backend %s: a value is missing after the last option\n", k->name);
	return 2;
}

static int signal_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

/* The event loop: returns when a signal arrives. */
static void run_loop(struct backend_loop *l, const struct backend_opts *o)
{
	bool warned = false;

	for (;;) {
		struct epoll_event evs[16];
		int n, timeout = -1;

		if (o->client && !vu_server_connected(l->srv)) {
			int rc = vu_server_connect(l->srv, o->socket);

			if (rc && !warned) {
				pr_warn("backend: cannot connect to %s (%s); retrying every second",
					o->socket, strerror(-rc));
				warned = true;
			} else if (!rc) {
				warned = false;
			}
			if (rc)
				timeout = 1000;
		}
		n = epoll_wait(l->epfd, evs, 16, timeout);
		if (n < 0 && errno != EINTR) {
			pr_err("backend: epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			uint32_t token = (uint32_t)evs[i].data.u64;

			if (token == TOKEN_SIGNAL) {
				struct signalfd_siginfo si;

				if (read(l->sfd, &si, sizeof(si)) == sizeof(si) &&
				    si.ssi_signo == SIGUSR1) {
					if (l->kind->report)
						l->kind->report(l->vdev);
					continue;
				}
				return;
			}
			vu_server_handle(l->srv, token);
		}
	}
}

/* Confine the process before it serves anyone: file removal limited to the directories of
 * its own sockets (Landlock: at exit it removes them; seccomp cannot check paths), then the
 * kind's syscall allowlist. No worker thread exists yet, so both cover every thread. 0, or
 * -errno with one error line. */
static int sandbox(const struct backend_kind *k, const struct backend_opts *o)
{
	const char *own_files[] = { o->client ? NULL : o->socket, o->uds };
	int rc;

	if (o->seccomp == SANDBOX_OFF)
		return 0;
	rc = sandbox_limit_removal(own_files, 2);
	if (rc == -EOPNOTSUPP)
		pr_info("backend %s: no Landlock in this kernel: unlink not limited", k->name);
	else if (rc) {
		fprintf(stderr, "vireo backend %s: cannot limit file removal (Landlock): %s\n",
			k->name, strerror(-rc));
		return rc;
	}
	rc = sandbox_install(sandbox_profile_find(k->name), 0, o->seccomp);
	if (rc)
		fprintf(stderr, "vireo backend %s: cannot install the seccomp filter: %s\n",
			k->name, strerror(-rc));
	return rc;
}

int cmd_backend(int argc, char **argv)
{
	struct backend_opts o = { .seccomp = SANDBOX_ON };
	struct backend_loop l = { .epfd = -1 };
	struct guest_memory gm;
	struct virtio_device vdev;
	const struct backend_kind *k;
	struct vu_server_config cfg;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TOKEN_SIGNAL };
	int rc, sfd, status = 2;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage_all(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	k = find_kind(argv[1]);
	if (!k) {
		fprintf(stderr, "vireo backend: unknown kind '%s'\n", argv[1]);
		usage_all(stderr);
		return 2;
	}
	rc = parse_args(k, argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (gm_init(&gm))
		return 2;
	rc = k->create(&vdev, &gm, &o);
	if (rc) {
		fprintf(stderr, "vireo backend %s: %s\n", k->name, strerror(-rc));
		goto out_gm;
	}
	sfd = signal_fd();
	l.sfd = sfd;
	l.kind = k;
	l.vdev = &vdev;
	l.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || l.epfd < 0 || epoll_ctl(l.epfd, EPOLL_CTL_ADD, sfd, &ev)) {
		perror("vireo backend: epoll/signalfd");
		goto out_dev;
	}
	cfg = (struct vu_server_config){
		.name = k->vu_name, .dev = virtio_device_handle(&vdev), .gm = &gm,
		.set_iotlb = virtio_device_set_iotlb, .quiesce = virtio_device_quiesce,
		.set_kick_fd = virtio_device_set_kick_fd,
		.watch = { loop_watch, loop_unwatch, &l },
	};
	rc = vu_server_create(&cfg, &l.srv);
	if (!rc && !o.client)
		rc = vu_server_listen(l.srv, o.socket);
	if (rc) {
		fprintf(stderr, "vireo backend %s: %s: %s\n", k->name, o.socket, strerror(-rc));
		goto out_srv;
	}
	/* Everything that needs broad access is done: device created, socket listening. */
	rc = sandbox(k, &o);
	if (rc)
		goto out_srv;
	pr_info("backend %s: serving on %s (%s mode, seccomp %s)", k->name, o.socket,
		o.client ? "client" : "server", sandbox_mode_name(o.seccomp));
	run_loop(&l, &o);
	pr_info("backend %s: exiting", k->name);
	if (k->report)
		k->report(&vdev);
	status = 0;
out_srv:
	vu_server_destroy(l.srv);
	if (!o.client && status == 0)
		unlink(o.socket);
out_dev:
	if (l.epfd >= 0)
		close(l.epfd);
	if (sfd >= 0)
		close(sfd);
	virtio_device_destroy(&vdev);
out_gm:
	gm_destroy(&gm);
	return status;
}
