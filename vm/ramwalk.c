/* SPDX-License-Identifier: MIT */
#include "vm/ramwalk.h"

#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

bool ramwalk_next(int fd, uint64_t *pos, uint64_t end, uint64_t *first, uint64_t *n)
{
	off_t data, hole;
	uint64_t a, b;

	if (*pos >= end)
		return false;
	if (fd < 0) {
		*first = *pos;
		*n = end - *pos;
		*pos = end;
		return true;
	}
	data = lseek(fd, (off_t)(*pos * RAMWALK_PAGE), SEEK_DATA);
	if (data < 0 && errno != ENXIO) {
		/* holes unknown: count the rest as data (read, never lost) */
		*first = *pos;
		*n = end - *pos;
		*pos = end;
		return true;
	}
	if (data < 0 || (uint64_t)data >= end * RAMWALK_PAGE) {
		*pos = end;	/* ENXIO: no data from *pos on */
		return false;
	}
	hole = lseek(fd, data, SEEK_HOLE);
	a = (uint64_t)data / RAMWALK_PAGE;
	b = hole < 0 ? end : ((uint64_t)hole + RAMWALK_PAGE - 1) / RAMWALK_PAGE;
	if (b > end)
		b = end;
	if (a < *pos)
		a = *pos;
	*first = a;
	*n = b - a;
	*pos = b;
	return *n > 0;
}
