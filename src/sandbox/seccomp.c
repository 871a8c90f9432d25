/* Seccomp filter installation with libseccomp (see seccomp.h): turns a profile's rule tables
 * into one BPF filter and loads it on all threads at once (TSYNC). */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
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
	for (unsigned b = 0; !rc && b < 4; b++)
		if (devices & (1u << b))
			rc = add_group(ctx, p->name, sandbox_device_groups[b], self);
	return rc;
}

int sandbox_install(enum sandbox_profile p, unsigned devices, enum sandbox_mode m)
{
	scmp_filter_ctx ctx;
	int rc;

	if (m == SANDBOX_OFF)
		return 0;
	if ((unsigned)p >= SANDBOX_NPROFILES || (m != SANDBOX_ON && m != SANDBOX_LOG) ||
	    (devices & ~(unsigned)SANDBOX_DEV_ALL))
		return -EINVAL;
	ctx = seccomp_init(m == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	/* Every thread now, and (inherited) every thread created later. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	/* log mode also logs the calls refused with an errno (open) */
	if (!rc && m == SANDBOX_LOG)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
	if (!rc)
		rc = build(ctx, &sandbox_profiles[p], devices);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (!rc)
		pr_debug("seccomp: profile %s (devices %#x) installed (%s)",
			 sandbox_profiles[p].name, devices, sandbox_mode_name(m));
	return rc > 0 ? -ESRCH : rc; /* TSYNC failure may come back as a thread id */
}
