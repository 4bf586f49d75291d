/* SPDX-License-Identifier: MIT */
#include "common/xio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return done ? -ECONNRESET : -ENODATA;
		done += (size_t)n;
	}
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

int read_file_max(const char *path, size_t max, char **buf, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *b;
	size_t n;
	int ret = 0;

	*buf = NULL;
	if (!f)
		return -errno;
	b = malloc(max + 2);
	if (!b) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(b, 1, max + 1, f);
	if (ferror(f))
		ret = errno ? -errno : -EIO;
	else if (n > max)
		ret = -EFBIG;
	fclose(f);
	if (ret < 0) {
		free(b);
		return ret;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}
