/* Landlock beside the seccomp filters: file removal limited to given directories.
 *
 * Usage (before sandbox_install, whose profiles do not allow the landlock syscalls):
 *   const char *socks[] = { "/run/blk.sock", NULL };
 *   rc = sandbox_limit_removal(socks, 2);  // unlink works beneath /run/ only
 *
 * Applies to the calling thread and the threads it creates afterwards (Landlock domains are
 * per thread and inherited), so it is called before the process starts its worker threads. */
#ifndef VIREO_SANDBOX_LANDLOCK_H
#define VIREO_SANDBOX_LANDLOCK_H

/* From now on the calling thread (and threads it creates) may remove files only beneath the
 * directories holding files[0..n) (NULL entries skipped), and no directory anywhere. 0,
 * -EOPNOTSUPP when the kernel has no Landlock (nothing changed), or -errno. */
int sandbox_limit_removal(const char *const *files, unsigned n);

#endif
