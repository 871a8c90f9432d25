/* Seccomp filters: a syscall allowlist per vireo process kind ("profile"), installed once the
 * set-up that needs broad access is over (files opened, VM created, socket listening) and
 * before the guest runs or the first front-end is served.
 *
 * Usage:
 *   enum sandbox_mode m;
 *   if (sandbox_parse_mode(optarg, &m)) -> bad --seccomp value
 *   ... open everything ...
 *   rc = sandbox_install(SANDBOX_BACKEND_BLK, 0, m);   // 0 or -errno; OFF installs nothing
 *   rc = sandbox_install(SANDBOX_VMM, SANDBOX_DEV_BLK | SANDBOX_DEV_RNG, m);
 *                      // vireo run with in-process devices: their syscalls are added
 *
 * The filter applies to every thread of the process (SECCOMP_FILTER_FLAG_TSYNC) and to
 * threads created later. A syscall outside the profile kills the whole process (SIGSYS,
 * SCMP_ACT_KILL_PROCESS, logged by the kernel's audit as type=1326 with syscall=N); in log
 * mode it is allowed and logged the same way, which is how a missing entry is found
 * (`dmesg | grep type=1326`, or ausearch). The tables are in sandbox/seccomp_profiles.c. */
#ifndef VIREO_SANDBOX_SECCOMP_H
#define VIREO_SANDBOX_SECCOMP_H

#include <stdint.h>

enum sandbox_mode {
	SANDBOX_ON,   /* the default: a forbidden syscall kills the process */
	SANDBOX_OFF,  /* no filter */
	SANDBOX_LOG,  /* forbidden syscalls are allowed and logged by the kernel */
};

enum sandbox_profile {
	SANDBOX_VMM,            /* `vireo run` once the vCPUs are set up */
	SANDBOX_BACKEND_RNG,    /* `vireo backend KIND` once its socket listens */
	SANDBOX_BACKEND_BLK,
	SANDBOX_BACKEND_NET,
	SANDBOX_BACKEND_VSOCK,
	SANDBOX_NPROFILES,
};

/* Device groups added to a profile (in-process virtio devices of `vireo run`; a backend's
 * profile already holds its device's group). */
enum {
	SANDBOX_DEV_RNG = 1u << 0,    /* getrandom */
	SANDBOX_DEV_BLK = 1u << 1,    /* io_uring */
	SANDBOX_DEV_NET = 1u << 2,    /* tap queue and offload ioctls */
	SANDBOX_DEV_VSOCK = 1u << 3,  /* Unix sockets to and from host peers */
	SANDBOX_DEV_VHOST_USER = 1u << 4, /* vireo run's vhost-user devices: messages with fds */
	SANDBOX_DEV_ALL = 0x1f,
	SANDBOX_NDEV_GROUPS = 5,
};

/* "on", "off", "log" -> *m. 0, or -EINVAL for anything else. */
int sandbox_parse_mode(const char *s, enum sandbox_mode *m);
const char *sandbox_mode_name(enum sandbox_mode m);

/* "vmm", "rng", "blk", "net", "vsock" -> the profile, or -ENOENT. */
int sandbox_profile_find(const char *name);
const char *sandbox_profile_name(enum sandbox_profile p);

/* Install profile p's filter, plus the groups of the SANDBOX_DEV_* bits in devices, on every
 * thread of the process (nothing for SANDBOX_OFF). 0 or -errno (-EINVAL for a bad profile
 * or device bit; libseccomp's error otherwise). Irreversible. */
int sandbox_install(enum sandbox_profile p, unsigned devices, enum sandbox_mode m);

/* The same in two steps, so that the BPF generation can overlap other set-up: prepare builds
 * the program (allocates; any thread, nothing installed), load installs it on every thread and
 * frees it. sandbox_filter_free() drops a prepared filter that will not be loaded. */
struct sock_filter;
struct sandbox_filter {
	struct sock_filter *insns;
	unsigned short len;
	enum sandbox_mode mode;
	enum sandbox_profile profile;
	unsigned devices;
};
int sandbox_prepare(struct sandbox_filter *f, enum sandbox_profile p, unsigned devices,
		    enum sandbox_mode m);
int sandbox_load(struct sandbox_filter *f);
void sandbox_filter_free(struct sandbox_filter *f);

/* --- the tables (seccomp_profiles.c), for the engine and the tests ---------------------- */

/* One condition on a syscall argument: (arg[argno] & mask) == value. With self_pid the value
 * is the calling process's id, taken when the filter is installed. */
struct sandbox_cond {
	uint8_t argno;
	uint8_t self_pid;
	uint64_t mask;
	uint64_t value;
};

/* Allow syscall nr when all conditions hold (rules for one syscall are alternatives), or,
 * with errno_ret != 0, fail it with that errno instead of killing. */
struct sandbox_rule {
	int nr;
	int errno_ret;
	unsigned ncond;
	struct sandbox_cond cond[2];
};

struct sandbox_group {
	const char *name;
	const struct sandbox_rule *rules;
	unsigned nrules;
};

#define SANDBOX_MAX_GROUPS 4

struct sandbox_profile_def {
	const char *name;
	const struct sandbox_group *groups[SANDBOX_MAX_GROUPS]; /* NULL-terminated */
};

extern const struct sandbox_profile_def sandbox_profiles[SANDBOX_NPROFILES];
/* The group of each SANDBOX_DEV_* bit, by bit number. */
extern const struct sandbox_group *const sandbox_device_groups[SANDBOX_NDEV_GROUPS];

#endif
