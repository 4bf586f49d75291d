/* SPDX-License-Identifier: MIT */
/*
 * log.h - leveled logging to stderr.
 *
 * Each .c file may define LOG_PREFIX ("vm: ") before including this header;
 * messages are printed as "kvmig: <prefix><text>". The level comes from the
 * KVMIG_LOG environment variable (error, warn, info, debug) or log_set_level().
 * Thread-safe: one fprintf per message.
 */
#ifndef KVMIG_COMMON_LOG_H
#define KVMIG_COMMON_LOG_H

#include "common/compiler.h"

enum log_level {
	LOG_ERR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) PRINTF_FMT(2, 3);

#define pr_err(...) log_msg(LOG_ERR, LOG_PREFIX __VA_ARGS__)
#define pr_warn(...) log_msg(LOG_WARN, LOG_PREFIX __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, LOG_PREFIX __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, LOG_PREFIX __VA_ARGS__)

#endif
