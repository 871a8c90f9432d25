/* Logging: messages go to stderr as "vireo: <level>: text". The level is global and set
 * once from the command line (-v / -q) or VIREO_LOG=debug|info|warn|err. */
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum log_level cur_level = LOG_WARN;
static int level_from_env_done;

static void level_from_env(void)
{
	const char *e = getenv("VIREO_LOG");

	level_from_env_done = 1;
	if (!e)
		return;
	if (!strcmp(e, "debug"))
		cur_level = LOG_DEBUG;
	else if (!strcmp(e, "info"))
		cur_level = LOG_INFO;
	else if (!strcmp(e, "warn"))
		cur_level = LOG_WARN;
	else if (!strcmp(e, "err"))
		cur_level = LOG_ERR;
}

void log_set_level(enum log_level lvl)
{
	level_from_env_done = 1;
	cur_level = lvl;
}

enum log_level log_get_level(void)
{
	if (!level_from_env_done)
		level_from_env();
	return cur_level;
}

static void vlog(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One fprintf per line keeps lines from different threads whole. */
	fprintf(stderr, "vireo: %s: %s\n", names[lvl], buf);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > log_get_level())
		return;
	va_start(ap, fmt);
	vlog(lvl, fmt, ap);
	va_end(ap);
}

void log_limited(unsigned long n, unsigned loud, enum log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (n >= loud)
		lvl = LOG_DEBUG;
	if (lvl > log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(lvl, "%s%s", msg, n + 1 == loud ? " (more such at debug level)" : "");
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(2);
}
