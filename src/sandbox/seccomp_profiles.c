/* The syscall allowlists, one table per concern; a profile is a list of tables.
 *
 * What runs under them: everything after the set-up that needs broad access. For `vireo run`
 * the vCPUs are created and configured and the kernel is loaded; what is left is KVM_RUN,
 * device emulation, console I/O and the exit path. For `vireo backend KIND` the device is
 * created (image or tap opened, vsock listener bound) and the vhost-user socket listens;
 * what is left is serving front-ends, one after another: every connection maps new memory
 * fds, starts threads and (blk) sets up io_uring, so those stay allowed.
 *
 * Never allowed after that: execve/execveat, fork (clone without CLONE_THREAD), ptrace,
 * open/openat of any path (refused with EACCES rather than fatal: glibc opens files lazily,
 * see base_rules), new executable mappings, sockets other than AF_UNIX, signals to
 * other processes, and anything not listed. When a legitimate path needs a new syscall,
 * run with --seccomp log, read the kernel's audit line (type=1326 ... syscall=N) and add it
 * here with a comment saying who needs it.
 *
 * Argument checks compare the low 32 bits where the kernel's parameter is an int (ioctl
 * requests, socket families, fcntl commands), since the upper half of the register is not
 * defined by the ABI for those. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/futex.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/ioctl.h>

#include "sandbox/seccomp.h"

#define LOW32 0xffffffffull

#define ALLOW(sys) { .nr = SCMP_SYS(sys) }
/* Allowed when (arg & mask) == value. */
#define ALLOW_IF(sys, argno, mask, value) \
	{ .nr = SCMP_SYS(sys), .ncond = 1, .cond = { { argno, 0, mask, value } } }
#define ALLOW_IF2(sys, a1, m1, v1, a2, m2, v2) \
	{ .nr = SCMP_SYS(sys), .ncond = 2, .cond = { { a1, 0, m1, v1 }, { a2, 0, m2, v2 } } }
#define ALLOW_IOCTL(req) ALLOW_IF(ioctl, 1, LOW32, (uint32_t)(req))
#define FAIL_WITH(sys, e) { .nr = SCMP_SYS(sys), .errno_ret = e }

#define GROUP(n, table) { .name = n, .rules = table, .nrules = sizeof(table) / sizeof(table[0]) }

/* ---- every vireo process: memory, threads, signals, time, I/O on fds it holds ---------- */
static const struct sandbox_rule base_rules[] = {
	/* I/O on descriptors opened during set-up or received over a socket */
	ALLOW(read), ALLOW(write), ALLOW(readv), ALLOW(writev), ALLOW(close),
	ALLOW(fstat),
	/* glibc's fstat() is newfstatat(fd, "", AT_EMPTY_PATH): only that form, no paths */
	ALLOW_IF(newfstatat, 3, AT_EMPTY_PATH, AT_EMPTY_PATH),
	/* stdio asks whether stdout/stderr are terminals on first use (isatty) */
	ALLOW_IOCTL(TCGETS),
	ALLOW(poll), ALLOW(ppoll),
	ALLOW(epoll_wait), ALLOW(epoll_pwait), ALLOW(epoll_ctl),
	/* anonymous notifiers made per queue or connection (no path, no new privilege) */
	ALLOW(eventfd2), ALLOW(epoll_create1),
	/* memory: malloc, thread stacks, guest memory fds; never a new executable mapping */
	ALLOW_IF(mmap, 2, PROT_EXEC, 0),
	ALLOW_IF(mprotect, 2, PROT_EXEC, 0),
	ALLOW(munmap), ALLOW(mremap), ALLOW(brk),
	/* thread stacks given back (glibc), MADV_POPULATE_WRITE / MADV_DONTNEED of DMA pins */
	ALLOW(madvise),
	/* gm_discard() gives memfd-backed guest pages back: hole punching only */
	ALLOW_IF(fallocate, 1, LOW32, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE),
	/* No file is opened after set-up. glibc still tries a few lazily (when a thread's malloc
	 * heap shrinks it reads /proc/sys/vm/overcommit_memory; arena sizing may read
	 * /sys/devices/system/cpu/online): they fail with EACCES and glibc falls back. */
	FAIL_WITH(openat, EACCES), FAIL_WITH(open, EACCES),
	/* threads: pthread_create is clone3 first (refused with ENOSYS: its flags sit in
	 * memory seccomp cannot read), then clone, allowed only with CLONE_THREAD: no fork */
	FAIL_WITH(clone3, ENOSYS),
	ALLOW_IF(clone, 0, CLONE_THREAD, CLONE_THREAD),
	ALLOW(futex), ALLOW(set_robust_list), ALLOW(rseq), ALLOW(sched_yield),
	ALLOW(gettid), ALLOW(getpid),
	/* read-only: pthread_getattr_np() asks it (sanitizer runtimes do, in every new thread) */
	ALLOW(sched_getaffinity),
	ALLOW(exit), ALLOW(exit_group),
	/* signals: masks, handlers (glibc installs one lazily), returns from handlers */
	ALLOW(rt_sigprocmask), ALLOW(rt_sigaction), ALLOW(rt_sigreturn), ALLOW(sigaltstack),
	/* the kernel resumes an interrupted poll or timed wait with it after a stop and continue
	 * (SIGSTOP/SIGCONT, Ctrl-Z, a debugger, bench/boot_once's memory sample): without it a
	 * continued vireo died of SIGSYS (seen: syscall 219 in the audit log) */
	ALLOW(restart_syscall),
	/* pthread_kill (vCPU kicks) and raise: only this process's threads */
	{ .nr = SCMP_SYS(tgkill), .ncond = 1, .cond = { { 0, 1, LOW32, 0 } } },
	/* time: vDSO fallbacks, timed waits (vhost-user IOTLB miss, reconnect delay) */
	ALLOW(clock_gettime), ALLOW(gettimeofday), ALLOW(clock_nanosleep), ALLOW(nanosleep),
	/* getrlimit(RLIMIT_MEMLOCK) for the DMA pin limit: read-only, this process only */
	ALLOW_IF2(prlimit64, 0, ~0ull, 0, 2, ~0ull, 0),
};

/* ---- `vireo run`: vCPU threads and the main loop once the guest runs ------------------- */
static const struct sandbox_rule vmm_rules[] = {
	ALLOW_IOCTL(KVM_RUN),
	/* device interrupts (serial) from vCPU threads */
	ALLOW_IOCTL(KVM_IRQ_LINE),
	/* PVM emulation fallbacks (arch/x86/emul_fallback.c) and the debug dump at exit */
	ALLOW_IOCTL(KVM_GET_REGS), ALLOW_IOCTL(KVM_SET_REGS), ALLOW_IOCTL(KVM_GET_SREGS),
	ALLOW_IOCTL(KVM_GET_FPU), ALLOW_IOCTL(KVM_SET_FPU),
	ALLOW_IOCTL(KVM_GET_VCPU_EVENTS), ALLOW_IOCTL(KVM_SET_VCPU_EVENTS),
	ALLOW_IOCTL(KVM_TRANSLATE),
	/* the serial console gives the terminal its saved mode back at exit (tcsetattr) */
	ALLOW_IOCTL(TCSETS), ALLOW_IOCTL(TCSETSW), ALLOW_IOCTL(TCSETSF),
	/* virtio-mmio devices (core/vm_virtio.c): kick ioeventfds come and go with DRIVER_OK
	 * and reset, irqfds are deassigned at exit */
	ALLOW_IOCTL(KVM_IOEVENTFD), ALLOW_IOCTL(KVM_IRQFD),
};

/* ---- `vireo backend`: the vhost-user server, in both modes ------------------------------ */
static const struct sandbox_rule vhost_user_rules[] = {
	/* server mode: the next front-end; messages carry fds (memory, eventfds) */
	ALLOW(accept4), ALLOW(recvmsg), ALLOW(sendmsg), ALLOW(recvfrom), ALLOW(sendto),
	/* client mode reconnects (and vsock reaches host listeners): Unix sockets only */
	ALLOW_IF(socket, 0, LOW32, AF_UNIX), ALLOW(connect),
	ALLOW(shutdown),
	/* send/receive timeouts on each new connection and the backend channel */
	ALLOW_IF2(setsockopt, 1, LOW32, SOL_SOCKET, 2, LOW32, SO_RCVTIMEO),
	ALLOW_IF2(setsockopt, 1, LOW32, SOL_SOCKET, 2, LOW32, SO_SNDTIMEO),
	/* memory fds are checked for seals (vu_mem.c) */
	ALLOW_IF(fcntl, 1, LOW32, F_GET_SEALS),
	ALLOW_IF(fcntl, 1, LOW32, F_GETFL), ALLOW_IF(fcntl, 1, LOW32, F_GETFD),
	/* at exit the backend removes its socket (and vsock its host listener) */
	ALLOW(unlink),
};

/* ---- blk: io_uring per queue, set up again for every front-end ------------------------- */
static const struct sandbox_rule blk_rules[] = {
	/* reads, writes, flushes and discards all go through the ring (fixed file) */
	ALLOW(io_uring_setup), ALLOW(io_uring_enter), ALLOW(io_uring_register),
};

/* ---- net: the tap queues follow the driver's queue pairs and offloads -------------------- */
static const struct sandbox_rule net_rules[] = {
	ALLOW_IOCTL(TUNSETQUEUE),    /* attach / detach a queue (VQ_PAIRS_SET) */
	ALLOW_IOCTL(TUNSETOFFLOAD),  /* the offloads the guest negotiated */
};

/* ---- rng ------------------------------------------------------------------------------- */
static const struct sandbox_rule rng_rules[] = {
	ALLOW(getrandom),
};

/* ---- vireo run's vhost-user devices (vhost-user/remote_dev.c, --disk/--net vhost_user=on):
 * the connection is made during set-up; DRIVER_OK and reset send messages (memory table and
 * ring fds) and read the replies, from vCPU threads ------------------------------------ */
static const struct sandbox_rule vhost_user_frontend_rules[] = {
	ALLOW(sendmsg), ALLOW(recvmsg),
	ALLOW(sendto), ALLOW(recvfrom), /* send()/recv() of message bodies */
};

/* ---- vsock: host peers on Unix sockets (also in vhost_user_rules for the backend) -------- */
static const struct sandbox_rule vsock_rules[] = {
	ALLOW(accept4),                        /* host clients on the UDS listener */
	ALLOW_IF(socket, 0, LOW32, AF_UNIX), ALLOW(connect), /* guest connects: UDS_<port> */
	ALLOW(sendmsg), ALLOW(sendto), ALLOW(recvfrom),      /* data, CONNECT/OK lines */
	ALLOW(shutdown),                       /* half-closes */
	ALLOW(unlink),                         /* the listener's socket file, at exit */
};

static const struct sandbox_group base = GROUP("base", base_rules);
static const struct sandbox_group vmm = GROUP("vmm", vmm_rules);
static const struct sandbox_group vhost_user = GROUP("vhost-user", vhost_user_rules);
static const struct sandbox_group blk = GROUP("blk", blk_rules);
static const struct sandbox_group net = GROUP("net", net_rules);
static const struct sandbox_group rng = GROUP("rng", rng_rules);
static const struct sandbox_group vsock = GROUP("vsock", vsock_rules);
static const struct sandbox_group vhost_user_frontend =
	GROUP("vhost-user-frontend", vhost_user_frontend_rules);

const struct sandbox_group *const sandbox_device_groups[SANDBOX_NDEV_GROUPS] = {
	&rng, &blk, &net, &vsock, &vhost_user_frontend,
};

/* `vireo run` adds the groups of its in-process devices when it installs (vm.c). */
const struct sandbox_profile_def sandbox_profiles[SANDBOX_NPROFILES] = {
	[SANDBOX_VMM] = { "vmm", { &base, &vmm } },
	[SANDBOX_BACKEND_RNG] = { "rng", { &base, &vhost_user, &rng } },
	[SANDBOX_BACKEND_BLK] = { "blk", { &base, &vhost_user, &blk } },
	[SANDBOX_BACKEND_NET] = { "net", { &base, &vhost_user, &net } },
	[SANDBOX_BACKEND_VSOCK] = { "vsock", { &base, &vhost_user, &vsock } },
};
