/* bench/boot_once: run one VMM command once (vireo run, or QEMU) and measure it from the
 * outside, the same way for any VMM, for `make bench-boot` (bench/boot.sh).
 *
 *   boot_once [--banner STR] [--marker STR] [--ram-mib N] [--timeout S] [--log FILE] -- CMD...
 *
 * Times are taken on CLOCK_MONOTONIC from just before fork():
 *   banner_ms  the console (the child's stdout) first holds STR;
 *   exit_ms    the process has exited (pidfd readable), minus the time it was stopped below.
 * Memory, sampled once when the console first holds the marker line (the guest's last line
 * before it powers off): the child is stopped (SIGSTOP, waited for), /proc/PID/smaps is read,
 * and it is continued. rss_kib is the sum of Rss over all mappings; guest_kib the Rss of the
 * guest-RAM mapping(s), i.e. the mappings exactly --ram-mib in size (vireo's memfd, QEMU's
 * RAM block); overhead_kib = rss_kib - guest_kib: what the VMM process itself keeps resident
 * (its code and libraries, heap, stacks, copies of kernel and initrd). priv_overhead_kib is
 * the same for Private_Clean + Private_Dirty (without shared library pages other processes
 * also map). -1 where a figure could not be taken (no marker, the process already gone).
 * From vireo's `--timing` lines on stderr: setup_ms is vireo's own "first KVM_RUN" figure
 * (from its clock origin), launch_setup_ms the same from before fork() here (exec and dynamic
 * linking included), using the origin vireo prints. One line of key=value pairs on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX (4u << 20)

struct sample {
	long rss_kib, guest_kib, priv_kib, guest_priv_kib;
	int nguest;
};

struct buf {
	char *p;
	size_t len;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: boot_once [--banner STR] [--marker STR] [--ram-mib N] "
		"[--timeout S] [--log FILE] -- CMD [ARGS...]\n");
	exit(2);
}

/* Append what fd has to b (kept NUL-terminated, at most BUF_MAX); 0 at EOF. */
static ssize_t slurp(int fd, struct buf *b, FILE *log)
{
	char tmp[65536];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n <= 0)
		return n;
	if (log)
		fwrite(tmp, 1, n, log);
	if (b->len + n + 1 > BUF_MAX)
		n = BUF_MAX - 1 - b->len;
	memcpy(b->p + b->len, tmp, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n ? n : 1;
}

/* smaps of pid: total Rss, and the Rss of mappings exactly ram_kib large. -1 on failure. */
static int read_smaps(pid_t pid, long ram_kib, struct sample *s)
{
	char path[64], line[512];
	long size = 0, rss = 0, pc = 0, pd = 0;
	bool in_vma = false;
	FILE *f;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	for (;;) {
		bool eof = !fgets(line, sizeof(line), f);
		unsigned long a, b;

		/* A new VMA header (or EOF) closes the previous one. */
		if (eof || sscanf(line, "%lx-%lx ", &a, &b) == 2) {
			if (in_vma) {
				s->rss_kib += rss;
				s->priv_kib += pc + pd;
				if (size == ram_kib) {
					s->guest_kib += rss;
					s->guest_priv_kib += pc + pd;
					s->nguest++;
				}
			}
			if (eof)
				break;
			in_vma = true;
			size = rss = pc = pd = 0;
			continue;
		}
		sscanf(line, "Size: %ld kB", &size);
		sscanf(line, "Rss: %ld kB", &rss);
		sscanf(line, "Private_Clean: %ld kB", &pc);
		sscanf(line, "Private_Dirty: %ld kB", &pd);
	}
	fclose(f);
	return s->rss_kib > 0 ? 0 : -1;
}

/* vireo's stderr: "timing: first KVM_RUN at X ms" and "timing: clock origin N ns". */
static void parse_vireo(const char *err, uint64_t t0, double *setup, double *launch_setup)
{
	const char *p = strstr(err, "timing: first KVM_RUN at ");
	const char *o = strstr(err, "timing: clock origin ");
	unsigned long long origin;

	*setup = *launch_setup = -1;
	if (p)
		*setup = strtod(p + strlen("timing: first KVM_RUN at "), NULL);
	if (p && o && sscanf(o, "timing: clock origin %llu ns", &origin) == 1 && origin >= t0)
		*launch_setup = *setup + (origin - t0) / 1e6;
}

static pid_t spawn(char **argv, int out[2], int err[2])
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		execvp(argv[0], argv);
		fprintf(stderr, "boot_once: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Stop the child, read its smaps, continue it. Returns the ns it was stopped, or 0 (and
 * *gone = true) when it exited first (its status then in *status). */
static uint64_t sample_stopped(pid_t pid, long ram_kib, struct sample *s, bool *gone,
			       int *status)
{
	uint64_t t = now_ns();
	int st;

	if (kill(pid, SIGSTOP) < 0 || waitpid(pid, &st, WUNTRACED) != pid) {
		*gone = true;
		return 0;
	}
	if (!WIFSTOPPED(st)) {
		*gone = true;
		*status = st;
		return 0;
	}
	if (read_smaps(pid, ram_kib, s))
		s->rss_kib = -1;
	kill(pid, SIGCONT);
	return now_ns() - t;
}

struct opts {
	const char *banner, *marker, *logpath;
	long ram_kib;
	double timeout_s;
	char **cmd;
};

/* One run's state and results. */
struct run {
	pid_t pid;
	int pidfd, out, err, status;   /* status: waitpid's, -1 until reaped */
	struct buf con, errbuf;
	struct sample s;
	uint64_t t0, t_banner, t_exit, stopped;
	bool sampled, gone, reaped, timed_out;
	FILE *log;
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
	int i;

	*o = (struct opts){ .ram_kib = 256 * 1024, .timeout_s = 60 };
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--banner"))
			o->banner = argv[++i];
		else if (!strcmp(argv[i], "--marker"))
			o->marker = argv[++i];
		else if (!strcmp(argv[i], "--ram-mib"))
			o->ram_kib = atol(argv[++i]) * 1024;
		else if (!strcmp(argv[i], "--timeout"))
			o->timeout_s = atof(argv[++i]);
		else if (!strcmp(argv[i], "--log"))
			o->logpath = argv[++i];
		else
			usage();
	}
	if (i + 1 >= argc)
		usage();
	o->cmd = argv + i + 1;
}

/* Fork and exec the command with its stdout and stderr on pipes; 0 or -1. */
static int start(const struct opts *o, struct run *r)
{
	int out[2], err[2];

	r->con.p = calloc(1, BUF_MAX);
	r->errbuf.p = calloc(1, BUF_MAX);
	r->status = -1;
	if (!r->con.p || !r->errbuf.p || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		return -1;
	if (o->logpath && !(r->log = fopen(o->logpath, "w")))
		return -1;
	r->t0 = now_ns();
	r->pid = spawn(o->cmd, out, err);
	if (r->pid < 0)
		return -1;
	close(out[1]);
	close(err[1]);
	r->out = out[0];
	r->err = err[0];
	r->pidfd = syscall(SYS_pidfd_open, r->pid, 0);
	if (r->pidfd < 0) {
		perror("pidfd_open");
		kill(r->pid, SIGKILL);
		return -1;
	}
	return 0;
}

/* After new console output: the banner's time, and the memory sample at the marker. */
static void check_console(const struct opts *o, struct run *r)
{
	if (o->banner && !r->t_banner && strstr(r->con.p, o->banner))
		r->t_banner = now_ns();
	if (!o->marker || r->sampled || r->t_exit || !strstr(r->con.p, o->marker))
		return;
	r->sampled = true;
	r->stopped += sample_stopped(r->pid, o->ram_kib, &r->s, &r->gone, &r->status);
	if (r->gone) {
		r->reaped = r->status != -1;
		if (!r->t_exit)
			r->t_exit = now_ns();
	}
}

/* Read console and stderr until both end and the process has exited (killed at the
 * timeout), then reap it. */
static void watch(const struct opts *o, struct run *r)
{
	struct pollfd pfd[3] = { { r->out, POLLIN, 0 }, { r->err, POLLIN, 0 },
				 { r->pidfd, POLLIN, 0 } };
	uint64_t deadline = r->t0 + (uint64_t)(o->timeout_s * 1e9);

	while (pfd[0].fd >= 0 || pfd[1].fd >= 0 || (!r->t_exit && !r->gone)) {
		uint64_t now = now_ns();
		int ms = now >= deadline ? 0 : (int)((deadline - now) / 1000000) + 1;

		if (now >= deadline && !r->t_exit) {
			r->timed_out = true;
			kill(r->pid, SIGKILL);
			deadline = now + 5000000000ull;
		}
		if (poll(pfd, 3, ms) < 0 && errno != EINTR)
			break;
		if (pfd[2].fd >= 0 && (pfd[2].revents & POLLIN)) {
			r->t_exit = now_ns();
			pfd[2].fd = -1;
		}
		for (int k = 0; k < 2; k++) {
			if (pfd[k].fd < 0 || !(pfd[k].revents & (POLLIN | POLLHUP)))
				continue;
			if (slurp(pfd[k].fd, k ? &r->errbuf : &r->con, k ? NULL : r->log) <= 0)
				pfd[k].fd = -1;
		}
		check_console(o, r);
	}
	if (!r->reaped && waitpid(r->pid, &r->status, 0) != r->pid)
		r->status = -1;
	if (r->log)
		fclose(r->log);
}

static void report(const struct run *r)
{
	const struct sample *s = &r->s;
	bool mem = s->rss_kib >= 0 && s->nguest;
	double setup, launch_setup;
	char st[16];

	if (r->timed_out)
		snprintf(st, sizeof(st), "timeout");
	else
		snprintf(st, sizeof(st), "%d", r->status < 0 ? -1 : WIFEXITED(r->status) ?
			 WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status));
	parse_vireo(r->errbuf.p, r->t0, &setup, &launch_setup);
	printf("status=%s banner_ms=%.3f exit_ms=%.3f stopped_ms=%.3f setup_ms=%.3f "
	       "launch_setup_ms=%.3f rss_kib=%ld guest_kib=%ld overhead_kib=%ld "
	       "priv_overhead_kib=%ld guest_maps=%d\n",
	       st, r->t_banner ? (r->t_banner - r->t0) / 1e6 : -1.0,
	       r->t_exit ? (r->t_exit - r->t0 - r->stopped) / 1e6 : -1.0, r->stopped / 1e6,
	       setup, launch_setup, s->rss_kib, s->rss_kib < 0 ? -1 : s->guest_kib,
	       mem ? s->rss_kib - s->guest_kib : -1, mem ? s->priv_kib - s->guest_priv_kib : -1,
	       s->nguest);
}

int main(int argc, char **argv)
{
	struct run r = { .s = { .rss_kib = -1 } };
	struct opts o;

	parse_opts(argc, argv, &o);
	if (start(&o, &r))
		return 2;
	watch(&o, &r);
	report(&r);
	return 0;
}
