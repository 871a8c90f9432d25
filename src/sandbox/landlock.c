/* Landlock next to seccomp: a backend has to remove its own socket files at exit, so its
 * seccomp profile allows unlink(2); a path is a string seccomp cannot check, so Landlock
 * limits file removal to the directories of those sockets (resolved by the kernel, ".."
 * included). Nothing else on the file system is handled here: opening, creating and
 * renaming are already refused by the seccomp profiles. */
#include "sandbox/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/landlock.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

#define REMOVALS (LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR)

/* Allow removing files beneath the directory holding path. 0 or -errno. */
static int allow_dir_of(int ruleset, const char *path)
{
	struct landlock_path_beneath_attr pb = { .allowed_access = LANDLOCK_ACCESS_FS_REMOVE_FILE };
	char *copy = strdup(path);
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	pb.parent_fd = open(dirname(copy), O_PATH | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (pb.parent_fd < 0)
		return -errno;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0))
		rc = -errno;
	close(pb.parent_fd);
	return rc;
}

int sandbox_limit_removal(const char *const *files, unsigned n)
{
	struct landlock_ruleset_attr attr = { .handled_access_fs = REMOVALS };
	int ruleset, rc = 0;

	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		return errno == ENOSYS || errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	for (unsigned i = 0; !rc && i < n; i++)
		if (files[i])
			rc = allow_dir_of(ruleset, files[i]);
	if (!rc && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		rc = -errno;
	if (!rc && syscall(SYS_landlock_restrict_self, ruleset, 0))
		rc = -errno;
	close(ruleset);
	return rc;
}
