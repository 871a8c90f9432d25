/* sandbox_limit_removal() (src/sandbox/landlock.c): after it, a process removes files beneath
 * the directories it named and nowhere else, ".." or not. Each case runs in a forked child
 * (Landlock cannot be undone); the parent checks which files are left. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox/landlock.h"

struct dirs {
	char root[64];
	char own[96], other[96];  /* directories */
	char own_file[128], other_file[128], sneaky[192], sock[128];
};

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	close(fd);
}

static void make_dirs(struct dirs *d)
{
	snprintf(d->root, sizeof(d->root), "/tmp/vireo-landlock.XXXXXX");
	assert_non_null(mkdtemp(d->root));
	snprintf(d->own, sizeof(d->own), "%s/own", d->root);
	snprintf(d->other, sizeof(d->other), "%s/other", d->root);
	assert_int_equal(mkdir(d->own, 0700), 0);
	assert_int_equal(mkdir(d->other, 0700), 0);
	snprintf(d->own_file, sizeof(d->own_file), "%s/f", d->own);
	snprintf(d->other_file, sizeof(d->other_file), "%s/f", d->other);
	snprintf(d->sneaky, sizeof(d->sneaky), "%s/../other/f", d->own);
	snprintf(d->sock, sizeof(d->sock), "%s/backend.sock", d->own);
	touch(d->own_file);
	touch(d->other_file);
}

static void remove_dirs(struct dirs *d)
{
	unlink(d->own_file);
	unlink(d->other_file);
	rmdir(d->own);
	rmdir(d->other);
	rmdir(d->root);
}

/* Child exit codes: 0 all as expected, 77 no Landlock, else the step that went wrong. */
static int child(const struct dirs *d)
{
	const char *files[] = { d->sock, NULL };
	int rc = sandbox_limit_removal(files, 2);

	if (rc == -EOPNOTSUPP)
		return 77;
	if (rc)
		return 10;
	if (unlink(d->other_file) == 0 || errno != EACCES)
		return 11;
	if (unlink(d->sneaky) == 0 || errno != EACCES)
		return 12;
	if (rmdir(d->other) == 0 || errno != EACCES)
		return 13;
	if (unlink(d->own_file))
		return 14;
	return 0;
}

static void test_removal_limited_to_own_dirs(void **state)
{
	struct dirs d;
	struct stat st;
	int status;
	pid_t pid;

	(void)state;
	make_dirs(&d);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child(&d));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		remove_dirs(&d);
		skip();
	}
	if (WEXITSTATUS(status))
		fail_msg("child failed at step %d", WEXITSTATUS(status));
	assert_int_equal(stat(d.own_file, &st), -1);   /* removed where allowed */
	assert_int_equal(stat(d.other_file, &st), 0);  /* kept elsewhere */
	remove_dirs(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_removal_limited_to_own_dirs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
