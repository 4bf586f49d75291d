/* SPDX-License-Identifier: MIT */
/*
 * err.h - the (err, errlen) convention: a function that fails writes one
 * human-readable sentence into a caller buffer and returns -errno.
 */
#ifndef KVMIG_COMMON_ERR_H
#define KVMIG_COMMON_ERR_H

#include <stddef.h>

#include "common/compiler.h"

/* Format a message into err (when err and errlen are set); return ret. */
int err_set(int ret, char *err, size_t errlen, const char *fmt, ...) PRINTF_FMT(4, 5);

#endif
