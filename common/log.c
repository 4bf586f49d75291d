/* SPDX-License-Identifier: MIT */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cur_level = -1;

static enum log_level level_from_env(void)
{
	const char *e = getenv("KVMIG_LOG");

	if (!e)
		return LOG_WARN;
	if (!strcmp(e, "error"))
		return LOG_ERR;
	if (!strcmp(e, "info"))
		return LOG_INFO;
	if (!strcmp(e, "debug"))
		return LOG_DEBUG;
	return LOG_WARN;
}

void log_set_level(enum log_level level)
{
	cur_level = (int)level;
}

enum log_level log_get_level(void)
{
	if (cur_level < 0)
		cur_level = (int)level_from_env();
	return (enum log_level)cur_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char buf[1024];
	va_list ap;

	_Static_assert(ARRAY_SIZE(names) == LOG_DEBUG + 1, "one name per level");
	if (level > log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "kvmig: %s: %s\n", names[level], buf);
}
