/* SPDX-License-Identifier: MIT */
/*
 * test_uffd.c - migrate/uffd.h on a memfd, as guest RAM is: a thread that
 * touches a missing page blocks until the fault reader places it, and then
 * reads what was placed; a zero page; a page placed twice (the background
 * push and a fetch racing) is UFFD_ALREADY and keeps the first bytes; no
 * fault within the timeout is 0. SKIPPED where userfaultfd cannot be used
 * (not root, or a kernel without shmem support), with the reason.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "migrate/uffd.h"

#define PAGES 16
#define PG 4096

struct ram {
	int memfd;
	uint8_t *map;
	struct uffd u;
};

struct toucher {
	const volatile uint8_t *p;
	atomic_int done;
	uint8_t seen;
};

static void *touch(void *arg)
{
	struct toucher *t = arg;

	t->seen = *t->p;	/* blocks in the kernel until the page is placed */
	atomic_store(&t->done, 1);
	return NULL;
}

static int setup(void **state)
{
	static struct ram r;
	char err[256];
	int ret;

	r.memfd = memfd_create("test_uffd", MFD_CLOEXEC);
	if (r.memfd < 0 || ftruncate(r.memfd, PAGES * PG) < 0)
		return -1;
	r.map = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, r.memfd, 0);
	if (r.map == MAP_FAILED)
		return -1;
	ret = uffd_open(&r.u, err, sizeof(err));
	if (ret == 0)
		ret = uffd_register(&r.u, r.map, PAGES * PG, err, sizeof(err));
	if (ret < 0) {
		printf("SKIPPED: test_uffd: %s\n", err);
		fprintf(stderr, "SKIPPED: test_uffd: %s\n", err);
		_exit(77);
	}
	*state = &r;
	return 0;
}

static int teardown(void **state)
{
	struct ram *r = *state;

	uffd_close(&r->u);
	munmap(r->map, PAGES * PG);
	close(r->memfd);
	return 0;
}

static void test_uffd_fault_then_copy(void **state)
{
	struct ram *r = *state;
	struct toucher t = {.p = r->map + 3 * PG + 100};
	uint8_t page[PG];
	uint64_t addr = 0;
	pthread_t th;

	atomic_init(&t.done, 0);
	assert_int_equal(pthread_create(&th, NULL, touch, &t), 0);
	/* the fault is the toucher's, on page 3; it waits for us meanwhile */
	assert_int_equal(uffd_next_fault(&r->u, 10000, &addr), 1);
	assert_int_equal(addr, (uint64_t)(uintptr_t)(r->map + 3 * PG));
	assert_int_equal(atomic_load(&t.done), 0);
	memset(page, 0x5a, sizeof(page));
	page[100] = 0xc3;
	assert_int_equal(uffd_copy(&r->u, r->map + 3 * PG, page, PG), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(t.seen, 0xc3);
	assert_int_equal(r->map[3 * PG], 0x5a);
}

static void test_uffd_zero_and_already(void **state)
{
	struct ram *r = *state;
	uint8_t page[PG];

	assert_int_equal(uffd_zero(&r->u, r->map + 5 * PG, PG), 0);
	assert_int_equal(r->map[5 * PG + 7], 0);
	/* placed twice: the second is refused and the first bytes stay */
	memset(page, 0x11, sizeof(page));
	assert_int_equal(uffd_copy(&r->u, r->map + 6 * PG, page, PG), 0);
	memset(page, 0x22, sizeof(page));
	assert_int_equal(uffd_copy(&r->u, r->map + 6 * PG, page, PG), UFFD_ALREADY);
	assert_int_equal(uffd_zero(&r->u, r->map + 6 * PG, PG), UFFD_ALREADY);
	assert_int_equal(r->map[6 * PG + 1], 0x11);
	/* two pages in one call */
	{
		static uint8_t two[2 * PG];

		memset(two, 0x33, PG);
		memset(two + PG, 0x44, PG);
		assert_int_equal(uffd_copy(&r->u, r->map + 8 * PG, two, 2 * PG), 0);
		assert_int_equal(r->map[8 * PG + 4095], 0x33);
		assert_int_equal(r->map[9 * PG], 0x44);
	}
}

static void test_uffd_no_fault_times_out(void **state)
{
	struct ram *r = *state;
	uint64_t addr = 0;

	assert_int_equal(uffd_next_fault(&r->u, 50, &addr), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uffd_fault_then_copy),
		cmocka_unit_test(test_uffd_zero_and_already),
		cmocka_unit_test(test_uffd_no_fault_times_out),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
