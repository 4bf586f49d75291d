/* SPDX-License-Identifier: MIT */
/*
 * xio.h - EINTR-safe whole-buffer I/O on blocking file descriptors.
 *
 * Return: 0 when all bytes moved, -errno on error; read_all returns
 * -ECONNRESET when the peer closed (EOF) before len bytes arrived and
 * -ENODATA when EOF came before the first byte.
 */
#ifndef KVMIG_COMMON_XIO_H
#define KVMIG_COMMON_XIO_H

#include <stddef.h>

#include "common/compiler.h"

int read_all(int fd, void *buf, size_t len) __must_check;
int write_all(int fd, const void *buf, size_t len) __must_check;

/*
 * A small file read whole (configuration, inventory): *buf (malloc'd, the
 * caller frees it; NUL-terminated after *len bytes) holds it.
 * Return: 0, -EFBIG when it is larger than max bytes, -errno.
 */
int read_file_max(const char *path, size_t max, char **buf, size_t *len) __must_check;

#endif
