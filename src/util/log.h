/* Logging for vireo: one line per event on stderr, prefixed with the subsystem, so that a
 * user sees which device or module complained. die() is for set-up before the guest runs. */
#ifndef VIREO_UTIL_LOG_H
#define VIREO_UTIL_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For messages a guest or a peer can trigger at will: the n-th such message of one source
 * (n counted by the caller from 0) is logged at lvl while n < loud, at debug level after;
 * the last loud one says so. */
void log_limited(unsigned long n, unsigned loud, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define pr_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
