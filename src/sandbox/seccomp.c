/* Seccomp filter installation with libseccomp (see seccomp.h): turns a profile's rule tables
 * into one BPF program (sandbox_prepare) and loads it on all threads at once (sandbox_load,
 * SECCOMP_FILTER_FLAG_TSYNC). */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

static const char *const mode_names[] = {
	[SANDBOX_ON] = "on", [SANDBOX_OFF] = "off", [SANDBOX_LOG] = "log",
};

int sandbox_parse_mode(const char *s, enum sandbox_mode *m)
{
	for (unsigned i = 0; s && i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (!strcmp(s, mode_names[i])) {
			*m = (enum sandbox_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *sandbox_mode_name(enum sandbox_mode m)
{
	return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[m] : "?";
}

int sandbox_profile_find(const char *name)
{
	for (int i = 0; name && i < SANDBOX_NPROFILES; i++)
		if (!strcmp(sandbox_profiles[i].name, name))
			return i;
	return -ENOENT;
}

const char *sandbox_profile_name(enum sandbox_profile p)
{
	return (unsigned)p < SANDBOX_NPROFILES ? sandbox_profiles[p].name : "?";
}

static int add_rule(scmp_filter_ctx ctx, const struct sandbox_rule *r, pid_t self)
{
	struct scmp_arg_cmp cmp[2];
	uint32_t action = r->errno_ret ? SCMP_ACT_ERRNO((uint32_t)r->errno_ret) : SCMP_ACT_ALLOW;

	if (r->ncond > 2)
		return -EINVAL;
	for (unsigned i = 0; i < r->ncond; i++) {
		const struct sandbox_cond *c = &r->cond[i];
		uint64_t v = c->self_pid ? (uint64_t)self : c->value;

		cmp[i] = (struct scmp_arg_cmp){
			.arg = c->argno, .op = SCMP_CMP_MASKED_EQ, .datum_a = c->mask,
			.datum_b = v & c->mask,
		};
	}
	return seccomp_rule_add_array(ctx, action, r->nr, r->ncond, cmp);
}

static int add_group(scmp_filter_ctx ctx, const char *profile, const struct sandbox_group *grp,
		     pid_t self)
{
	for (unsigned i = 0; i < grp->nrules; i++) {
		int rc = add_rule(ctx, &grp->rules[i], self);

		if (rc) {
			char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE,
								     grp->rules[i].nr);

			pr_err("seccomp: profile %s, group %s: rule for %s: %s", profile, grp->name,
			       name ? name : "?", strerror(-rc));
			free(name);
			return rc;
		}
	}
	return 0;
}

/* Build profile p's filter, with the device groups in devices, in ctx. 0 or -errno. */
static int build(scmp_filter_ctx ctx, const struct sandbox_profile_def *p, unsigned devices)
{
	pid_t self = getpid();
	int rc = 0;

	for (unsigned g = 0; !rc && g < SANDBOX_MAX_GROUPS && p->groups[g]; g++)
		rc = add_group(ctx, p->name, p->groups[g], self);
	for (unsigned b = 0; !rc && b < SANDBOX_NDEV_GROUPS; b++)
		if (devices & (1u << b))
			rc = add_group(ctx, p->name, sandbox_device_groups[b], self);
	return rc;
}

/* libseccomp generates the BPF program into a memfd; it is read back so that loading it later
 * is one system call (vireo run prepares while its vCPUs are set up). */
static int export_bpf(scmp_filter_ctx ctx, struct sandbox_filter *f)
{
	int fd = memfd_create("vireo-seccomp", MFD_CLOEXEC), rc;
	off_t len;

	if (fd < 0)
		return -errno;
	rc = seccomp_export_bpf(ctx, fd);
	len = rc ? 0 : lseek(fd, 0, SEEK_CUR);
	if (!rc && (len <= 0 || len % sizeof(struct sock_filter) ||
		    len / sizeof(struct sock_filter) > BPF_MAXINSNS))
		rc = -EINVAL;
	if (!rc) {
		f->insns = malloc((size_t)len);
		f->len = (unsigned short)(len / sizeof(struct sock_filter));
		if (!f->insns)
			rc = -ENOMEM;
		else if (pread(fd, f->insns, (size_t)len, 0) != len)
			rc = -EIO;
	}
	close(fd);
	return rc;
}

int sandbox_prepare(struct sandbox_filter *f, enum sandbox_profile p, unsigned devices,
		    enum sandbox_mode m)
{
	scmp_filter_ctx ctx;
	int rc;

	*f = (struct sandbox_filter){ .mode = m, .profile = p, .devices = devices };
	if (m == SANDBOX_OFF)
		return 0;
	if ((unsigned)p >= SANDBOX_NPROFILES || (m != SANDBOX_ON && m != SANDBOX_LOG) ||
	    (devices & ~(unsigned)SANDBOX_DEV_ALL))
		return -EINVAL;
	ctx = seccomp_init(m == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	/* a binary tree over syscall numbers: KVM_RUN and the I/O calls need not walk a list */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (!rc)
		rc = build(ctx, &sandbox_profiles[p], devices);
	if (!rc)
		rc = export_bpf(ctx, f);
	seccomp_release(ctx);
	if (rc)
		sandbox_filter_free(f);
	return rc;
}

int sandbox_load(struct sandbox_filter *f)
{
	struct sock_fprog prog = { .len = f->len, .filter = f->insns };
	/* every thread now, and (inherited) every thread created later; log mode also logs
	 * the calls refused with an errno (open) */
	unsigned flags = SECCOMP_FILTER_FLAG_TSYNC |
			 (f->mode == SANDBOX_LOG ? SECCOMP_FILTER_FLAG_LOG : 0);
	long r;

	if (f->mode == SANDBOX_OFF)
		return 0;
	if (!f->insns)
		return -EINVAL;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (r > 0)
		return -ESRCH; /* thread r could not be synchronized */
	if (r < 0)
		return -errno;
	pr_debug("seccomp: profile %s (devices %#x) installed (%s), %u instructions",
		 sandbox_profiles[f->profile].name, f->devices, sandbox_mode_name(f->mode), f->len);
	sandbox_filter_free(f);
	return 0;
}

void sandbox_filter_free(struct sandbox_filter *f)
{
	free(f->insns);
	f->insns = NULL;
	f->len = 0;
}

int sandbox_install(enum sandbox_profile p, unsigned devices, enum sandbox_mode m)
{
	struct sandbox_filter f;
	int rc = sandbox_prepare(&f, p, devices, m);

	if (!rc)
		rc = sandbox_load(&f);
	sandbox_filter_free(&f);
	return rc;
}
