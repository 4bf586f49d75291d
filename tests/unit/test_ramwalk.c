/* SPDX-License-Identifier: MIT */
/*
 * test_ramwalk.c - the data runs of a sparse memfd: runs in whole pages
 * (a partial page is data), holes between them, the walk bounded by its
 * range, and a descriptor whose holes cannot be known read whole.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vm/ramwalk.h"

#define PG RAMWALK_PAGE

static int sparse(uint64_t pages)
{
	int fd = memfd_create("ramwalk", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(pages * PG)), 0);
	return fd;
}

static void put(int fd, uint64_t off, size_t len)
{
	char buf[64];

	memset(buf, 0x5a, sizeof(buf));
	assert_true(len <= sizeof(buf));
	assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
}

/* Collect the runs of [from, end) as (first, n) pairs. */
static unsigned walk(int fd, uint64_t from, uint64_t end, uint64_t *runs, unsigned max)
{
	uint64_t pos = from, first, n;
	unsigned k = 0;

	while (ramwalk_next(fd, &pos, end, &first, &n)) {
		assert_true(k < max);
		assert_true(n >= 1);
		assert_true(first >= from && first + n <= end);
		runs[2 * k] = first;
		runs[2 * k + 1] = n;
		k++;
	}
	assert_int_equal(pos, end);
	return k;
}

static void test_ramwalk_runs_and_holes(void **unused)
{
	uint64_t r[16];
	int fd = sparse(1024);

	(void)unused;
	assert_int_equal(walk(fd, 0, 1024, r, 8), 0);	/* all hole */
	put(fd, 5 * PG, 8);				/* page 5 */
	put(fd, 100 * PG + PG - 1, 2);			/* the end of 100, the start of 101 */
	put(fd, 1023 * PG + 7, 1);			/* the last page, partly */
	assert_int_equal(walk(fd, 0, 1024, r, 8), 3);
	assert_int_equal(r[0], 5);
	assert_int_equal(r[1], 1);
	assert_int_equal(r[2], 100);
	assert_int_equal(r[3], 2);
	assert_int_equal(r[4], 1023);
	assert_int_equal(r[5], 1);
	close(fd);
}

static void test_ramwalk_bounded_range(void **unused)
{
	uint64_t r[16];
	int fd = sparse(256);

	(void)unused;
	for (uint64_t p = 10; p < 20; p++)
		put(fd, p * PG, 8);
	/* a range that starts and ends inside the run clips it */
	assert_int_equal(walk(fd, 12, 15, r, 8), 1);
	assert_int_equal(r[0], 12);
	assert_int_equal(r[1], 3);
	/* a range past the data, and an empty range */
	assert_int_equal(walk(fd, 20, 256, r, 8), 0);
	assert_int_equal(walk(fd, 7, 7, r, 8), 0);
	close(fd);
}

static void test_ramwalk_unknown_holes_read_whole(void **unused)
{
	uint64_t r[4];
	int p[2];

	(void)unused;
	assert_int_equal(walk(-1, 3, 40, r, 2), 1);	/* no memfd: all data */
	assert_int_equal(r[0], 3);
	assert_int_equal(r[1], 37);
	assert_int_equal(pipe(p), 0);			/* lseek fails with ESPIPE */
	assert_int_equal(walk(p[0], 0, 9, r, 2), 1);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], 9);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ramwalk_runs_and_holes),
		cmocka_unit_test(test_ramwalk_bounded_range),
		cmocka_unit_test(test_ramwalk_unknown_holes_read_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
