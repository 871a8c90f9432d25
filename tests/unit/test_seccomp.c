/* Seccomp profiles (src/sandbox/): each test forks a child that installs a profile and then
 * makes allowed and forbidden syscalls; the parent judges by what the child wrote to a pipe
 * (the allowed calls worked after the install) and by its wait status (SIGSYS for a
 * forbidden call, a normal exit in log mode). The child does as little as possible after
 * the install (raw syscalls, _exit), so that the test holds under ASan/UBSan too. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/kvm.h>

#include "sandbox/seccomp.h"

#define CHILD_INSTALL_FAILED 90
#define CHILD_SURVIVED 0

static int pfd[2];
static pid_t parent_pid;
static unsigned devs; /* SANDBOX_DEV_* groups the next child adds to its profile */

/* Something the profile allows, after the install: the byte reaches the parent. */
static void mark(char c)
{
	if (write(pfd[1], &c, 1) != 1)
		_exit(91);
}

struct outcome {
	int status;     /* waitpid status */
	char marks[16]; /* what the child wrote, NUL-terminated */
};

/* Fork; the child runs pre (if any), installs profile p in mode m, runs fn, and exits 0 if
 * it survived. */
static struct outcome run_child_pre(enum sandbox_profile p, enum sandbox_mode m,
				    void (*pre)(void), void (*fn)(void))
{
	struct outcome o = { 0 };
	size_t n = 0;
	pid_t pid;
	ssize_t r;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	parent_pid = getpid();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		if (pre)
			pre();
		if (sandbox_install(p, devs, m))
			_exit(CHILD_INSTALL_FAILED);
		fn();
		_exit(CHILD_SURVIVED);
	}
	close(pfd[1]);
	while (n < sizeof(o.marks) - 1 && (r = read(pfd[0], o.marks + n, sizeof(o.marks) - 1 - n)) > 0)
		n += (size_t)r;
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &o.status, 0), pid);
	return o;
}

static struct outcome run_child(enum sandbox_profile p, enum sandbox_mode m, void (*fn)(void))
{
	return run_child_pre(p, m, NULL, fn);
}

static void assert_killed_by_sigsys(const struct outcome *o)
{
	if (WIFEXITED(o->status))
		fail_msg("child exited with status %d instead of dying of SIGSYS",
			 WEXITSTATUS(o->status));
	assert_true(WIFSIGNALED(o->status));
	assert_int_equal(WTERMSIG(o->status), SIGSYS);
}

static void assert_exited_ok(const struct outcome *o)
{
	if (WIFSIGNALED(o->status))
		fail_msg("child died of signal %d", WTERMSIG(o->status));
	assert_true(WIFEXITED(o->status));
	assert_int_equal(WEXITSTATUS(o->status), CHILD_SURVIVED);
}

/* ---- the children's bodies ---------------------------------------------------------- */

static void do_execve(void)
{
	char *const argv[] = { "/bin/true", NULL }, *const envp[] = { NULL };

	mark('a');
	syscall(SYS_execve, "/bin/true", argv, envp); /* if allowed: /bin/true exits 0 */
	mark('x');
}

static void do_ptrace(void)
{
	mark('a');
	syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL);
	mark('x');
}

/* Opening is refused with EACCES (not fatal: glibc opens a few files lazily). */
static void do_open(void)
{
	long r = syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY);

	mark(r < 0 && errno == EACCES ? 'e' : 'x');
	r = syscall(SYS_open, "/etc/hostname", O_RDONLY);
	mark(r < 0 && errno == EACCES ? 'e' : 'x');
}

static void do_fork(void)
{
	mark('a');
	/* what fork() does: clone without CLONE_THREAD */
	if (syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0) == 0)
		_exit(0);
	mark('x');
}

static void do_mmap_exec(void)
{
	void *p;

	mark('a');
	p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mark(p == MAP_FAILED ? 'f' : 'x');
}

static void do_kill_parent(void)
{
	mark('a');
	syscall(SYS_kill, parent_pid, 0);
	mark('x');
}

/* A backend: Unix sockets yes (reconnects, vsock host listeners), IPv4 no. */
static void do_socket_inet(void)
{
	int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	mark(fd >= 0 ? 'u' : 'e');
	syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mark('x');
}

/* The VMM: KVM_RUN is allowed (on a bad fd: EBADF), creating a VM is not. */
static void do_kvm_ioctls(void)
{
	long r = syscall(SYS_ioctl, -1, KVM_RUN, 0);

	mark(r < 0 && errno == EBADF ? 'k' : 'e');
	syscall(SYS_ioctl, -1, KVM_CREATE_VM, 0);
	mark('x');
}

static void do_getrandom(void)
{
	char b[8];

	mark('a');
	mark(syscall(SYS_getrandom, b, sizeof(b), 0) == (long)sizeof(b) ? 'r' : 'e');
}

/* A vhost-user front-end's message calls (on a bad fd: only whether seccomp lets them through). */
static void do_sendmsg_recvfrom(void)
{
	struct msghdr m = { 0 };
	char b[8];

	mark('a');
	mark(syscall(SYS_sendmsg, -1, &m, 0) < 0 && errno == EBADF ? 's' : 'e');
	mark(syscall(SYS_recvfrom, -1, b, sizeof(b), 0, NULL, NULL) < 0 && errno == EBADF ?
	     'r' : 'e');
}

static void *thread_mark(void *arg)
{
	mark(*(char *)arg);
	return NULL;
}

/* Threads stay possible after the install (pthread_create: clone3 -> ENOSYS -> clone). */
static void do_thread(void)
{
	pthread_t t;
	char c = 't';

	if (pthread_create(&t, NULL, thread_mark, &c) == 0 && pthread_join(t, NULL) == 0)
		mark('j');
}

/* A thread that existed before the install is filtered too (TSYNC) and takes the whole
 * process down (KILL_PROCESS). */
static int go_pipe[2];

static void *thread_forbidden(void *arg)
{
	char c;

	(void)arg;
	if (read(go_pipe[0], &c, 1) == 1)
		syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL);
	return NULL;
}

static pthread_t early_thread;

static void start_early_thread(void)
{
	if (pthread_create(&early_thread, NULL, thread_forbidden, NULL))
		_exit(93);
}

static void do_early_thread(void)
{
	mark('a');
	if (write(go_pipe[1], "g", 1) != 1)
		_exit(92);
	pthread_join(early_thread, NULL);
	mark('x');
}

/* Log mode: the forbidden call goes through (getppid is in no profile). */
static void do_getppid(void)
{
	mark((pid_t)syscall(SYS_getppid) == parent_pid ? 'p' : 'e');
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_parse_mode(void **state)
{
	enum sandbox_mode m = SANDBOX_OFF;

	(void)state;
	assert_int_equal(sandbox_parse_mode("on", &m), 0);
	assert_int_equal(m, SANDBOX_ON);
	assert_int_equal(sandbox_parse_mode("log", &m), 0);
	assert_int_equal(m, SANDBOX_LOG);
	assert_int_equal(sandbox_parse_mode("off", &m), 0);
	assert_int_equal(m, SANDBOX_OFF);
	assert_int_equal(sandbox_parse_mode("yes", &m), -EINVAL);
	assert_int_equal(sandbox_parse_mode("", &m), -EINVAL);
	assert_int_equal(sandbox_parse_mode(NULL, &m), -EINVAL);
	assert_string_equal(sandbox_mode_name(SANDBOX_LOG), "log");
}

static void test_profile_names(void **state)
{
	static const char *const backends[] = { "rng", "blk", "net", "vsock" };

	(void)state;
	assert_int_equal(sandbox_profile_find("vmm"), SANDBOX_VMM);
	for (unsigned i = 0; i < 4; i++) {
		int p = sandbox_profile_find(backends[i]);

		assert_true(p > SANDBOX_VMM && p < SANDBOX_NPROFILES);
		assert_string_equal(sandbox_profile_name(p), backends[i]);
	}
	assert_int_equal(sandbox_profile_find("fs"), -ENOENT);
	assert_int_equal(sandbox_install(SANDBOX_NPROFILES, 0, SANDBOX_ON), -EINVAL);
	assert_int_equal(sandbox_install(SANDBOX_VMM, (unsigned)SANDBOX_DEV_ALL + 1, SANDBOX_ON), -EINVAL);
}

/* Every profile: the filter installs, and execve, ptrace, fork, executable memory and
 * signals to other processes kill the process. */
static void test_forbidden_everywhere(void **state)
{
	void (*const bodies[])(void) = {
		do_execve, do_ptrace, do_fork, do_mmap_exec, do_kill_parent,
	};

	(void)state;
	for (int p = 0; p < SANDBOX_NPROFILES; p++) {
		for (unsigned i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
			struct outcome o = run_child(p, SANDBOX_ON, bodies[i]);

			if (strcmp(o.marks, "a"))
				fail_msg("profile %s, case %u: the child wrote '%s', not 'a'",
					 sandbox_profile_name(p), i, o.marks);
			assert_killed_by_sigsys(&o);
		}
	}
}

static void test_open_refused(void **state)
{
	(void)state;
	for (int p = 0; p < SANDBOX_NPROFILES; p++) {
		struct outcome o = run_child(p, SANDBOX_ON, do_open);

		assert_string_equal(o.marks, "ee");
		assert_exited_ok(&o);
	}
}

static void test_backend_sockets(void **state)
{
	(void)state;
	for (int p = SANDBOX_BACKEND_RNG; p < SANDBOX_NPROFILES; p++) {
		struct outcome o = run_child(p, SANDBOX_ON, do_socket_inet);

		assert_string_equal(o.marks, "u");
		assert_killed_by_sigsys(&o);
	}
}

static void test_vmm_ioctls(void **state)
{
	struct outcome o;

	(void)state;
	o = run_child(SANDBOX_VMM, SANDBOX_ON, do_kvm_ioctls);
	assert_string_equal(o.marks, "k");
	assert_killed_by_sigsys(&o);
	/* a backend has no business with KVM at all */
	o = run_child(SANDBOX_BACKEND_BLK, SANDBOX_ON, do_kvm_ioctls);
	assert_string_equal(o.marks, "");
	assert_killed_by_sigsys(&o);
}

/* vireo run with in-process devices: each device's group adds its syscalls, and only those. */
static void test_vmm_device_groups(void **state)
{
	struct outcome o;

	(void)state;
	devs = SANDBOX_DEV_RNG;
	o = run_child(SANDBOX_VMM, SANDBOX_ON, do_getrandom);
	assert_string_equal(o.marks, "ar");
	assert_exited_ok(&o);
	devs = SANDBOX_DEV_BLK | SANDBOX_DEV_NET;
	o = run_child(SANDBOX_VMM, SANDBOX_ON, do_getrandom);
	assert_string_equal(o.marks, "a");
	assert_killed_by_sigsys(&o);
	devs = SANDBOX_DEV_VSOCK;
	o = run_child(SANDBOX_VMM, SANDBOX_ON, do_socket_inet);
	assert_string_equal(o.marks, "u");
	assert_killed_by_sigsys(&o);
	devs = 0;
	o = run_child(SANDBOX_VMM, SANDBOX_ON, do_socket_inet);
	assert_string_equal(o.marks, "");
	assert_killed_by_sigsys(&o);
	devs = SANDBOX_DEV_VHOST_USER; /* --disk vhost_user=on: messages, nothing else */
	o = run_child(SANDBOX_VMM, SANDBOX_ON, do_sendmsg_recvfrom);
	assert_string_equal(o.marks, "asr");
	assert_exited_ok(&o);
	o = run_child(SANDBOX_VMM, SANDBOX_ON, do_getrandom);
	assert_string_equal(o.marks, "a");
	assert_killed_by_sigsys(&o);
	devs = 0;
	o = run_child(SANDBOX_VMM, SANDBOX_ON, do_sendmsg_recvfrom);
	assert_string_equal(o.marks, "a");
	assert_killed_by_sigsys(&o);
}

static void test_threads_allowed(void **state)
{
	(void)state;
	for (int p = 0; p < SANDBOX_NPROFILES; p++) {
		struct outcome o = run_child(p, SANDBOX_ON, do_thread);

		assert_string_equal(o.marks, "tj");
		assert_exited_ok(&o);
	}
}

static void test_existing_threads_filtered(void **state)
{
	struct outcome o;

	(void)state;
	assert_int_equal(pipe2(go_pipe, O_CLOEXEC), 0);
	o = run_child_pre(SANDBOX_BACKEND_NET, SANDBOX_ON, start_early_thread, do_early_thread);
	close(go_pipe[0]);
	close(go_pipe[1]);
	assert_string_equal(o.marks, "a"); /* the main thread never got past the join */
	assert_killed_by_sigsys(&o);
}

static void test_log_mode_does_not_kill(void **state)
{
	(void)state;
	for (int p = 0; p < SANDBOX_NPROFILES; p++) {
		struct outcome o = run_child(p, SANDBOX_LOG, do_getppid);

		assert_string_equal(o.marks, "p");
		assert_exited_ok(&o);
	}
	/* the same call with the filter on is fatal */
	struct outcome o = run_child(SANDBOX_BACKEND_RNG, SANDBOX_ON, do_getppid);

	assert_string_equal(o.marks, "");
	assert_killed_by_sigsys(&o);
}

/* A prepared filter does nothing until it is loaded; dropping it installs nothing. */
static void prepare_and_drop(void)
{
	struct sandbox_filter f;

	if (sandbox_prepare(&f, SANDBOX_BACKEND_RNG, 0, SANDBOX_ON) || !f.insns || !f.len)
		_exit(94);
	sandbox_filter_free(&f);
}

static void test_prepare_without_load(void **state)
{
	struct outcome o;

	(void)state;
	o = run_child_pre(SANDBOX_BACKEND_RNG, SANDBOX_OFF, prepare_and_drop, do_socket_inet);
	assert_string_equal(o.marks, "ux");
	assert_exited_ok(&o);
}

static void test_off_installs_nothing(void **state)
{
	struct outcome o;

	(void)state;
	o = run_child(SANDBOX_BACKEND_BLK, SANDBOX_OFF, do_socket_inet);
	assert_string_equal(o.marks, "ux");
	assert_exited_ok(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_mode),
		cmocka_unit_test(test_profile_names),
		cmocka_unit_test(test_forbidden_everywhere),
		cmocka_unit_test(test_open_refused),
		cmocka_unit_test(test_backend_sockets),
		cmocka_unit_test(test_vmm_ioctls),
		cmocka_unit_test(test_vmm_device_groups),
		cmocka_unit_test(test_threads_allowed),
		cmocka_unit_test(test_existing_threads_filtered),
		cmocka_unit_test(test_log_mode_does_not_kill),
		cmocka_unit_test(test_prepare_without_load),
		cmocka_unit_test(test_off_installs_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
