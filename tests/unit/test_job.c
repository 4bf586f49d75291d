/* SPDX-License-Identifier: MIT */
/*
 * test_job.c - a job's event ring (migrate/job.h, behind migrate.h's
 * migrate_next_event): events come out in the order they went in with
 * consecutive seqs; an empty ring and a reader at the newest event get
 * nothing; a reader that fell more than MIGRATE_EVENT_RING behind gets
 * the oldest kept event, and the gap in seq says how many it lost; the
 * notify function runs once per event without the ring's lock (it reads
 * the ring itself); a reader on another thread, racing the writer, sees
 * every event exactly once and in order.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/job.h"

static void post_round(struct job_events *e, unsigned round)
{
	struct migrate_event ev;

	memset(&ev, 0, sizeof(ev));
	snprintf(ev.type, sizeof(ev.type), "round");
	ev.round = round;
	job_events_post(e, &ev);
}

static void test_job_events_order(void **unused)
{
	struct job_events e;
	struct migrate_event ev;
	uint64_t seq = 0;

	(void)unused;
	job_events_init(&e);
	assert_int_equal(job_events_next(&e, 0, &ev), 0);
	for (unsigned r = 0; r < 5; r++)
		post_round(&e, r);
	for (unsigned r = 0; r < 5; r++) {
		assert_int_equal(job_events_next(&e, seq, &ev), 1);
		assert_int_equal(ev.seq, seq + 1);
		assert_int_equal(ev.round, r);
		assert_string_equal(ev.type, "round");
		seq = ev.seq;
	}
	assert_int_equal(job_events_next(&e, seq, &ev), 0);
	/* a reader may start again from anywhere it has been */
	assert_int_equal(job_events_next(&e, 2, &ev), 1);
	assert_int_equal(ev.seq, 3);
	assert_int_equal(ev.round, 2);
	/* a seq from the future: nothing */
	assert_int_equal(job_events_next(&e, 99, &ev), 0);
	job_events_destroy(&e);
}

static void test_job_events_overflow(void **unused)
{
	static struct job_events e;	/* 128 events: off the stack */
	struct migrate_event ev;
	const unsigned extra = 10, n = MIGRATE_EVENT_RING + extra;
	uint64_t seq;

	(void)unused;
	job_events_init(&e);
	for (unsigned r = 0; r < n; r++)
		post_round(&e, r);
	/* events 1..extra were overwritten: the oldest kept comes, the gap shows */
	assert_int_equal(job_events_next(&e, 0, &ev), 1);
	assert_int_equal(ev.seq, extra + 1);
	assert_int_equal(ev.round, extra);
	assert_int_equal(job_events_next(&e, 3, &ev), 1);
	assert_int_equal(ev.seq, extra + 1);
	/* from there on, every kept event once, in order */
	for (seq = ev.seq; job_events_next(&e, seq, &ev); seq = ev.seq) {
		assert_int_equal(ev.seq, seq + 1);
		assert_int_equal(ev.round, ev.seq - 1);
	}
	assert_int_equal(seq, n);
	/* a reader exactly at the edge loses nothing */
	assert_int_equal(job_events_next(&e, extra, &ev), 1);
	assert_int_equal(ev.seq, extra + 1);
	job_events_destroy(&e);
}

struct notify_ctx {
	struct job_events *e;
	unsigned calls;
	uint64_t seen;	/* the newest seq the callback read from the ring */
};

static void notify(void *arg)
{
	struct notify_ctx *c = arg;
	struct migrate_event ev;

	c->calls++;
	/* reads the ring: would deadlock if the lock were held */
	while (job_events_next(c->e, c->seen, &ev))
		c->seen = ev.seq;
}

static void test_job_events_notify(void **unused)
{
	struct job_events e;
	struct notify_ctx c = {.e = &e};

	(void)unused;
	job_events_init(&e);
	post_round(&e, 0);	/* before a notify function: not announced */
	e.notify = notify;
	e.notify_ctx = &c;
	for (unsigned r = 1; r < 4; r++)
		post_round(&e, r);
	assert_int_equal(c.calls, 3);
	assert_int_equal(c.seen, 4);
	job_events_destroy(&e);
}

#define RACE_EVENTS 20000u

static void *writer(void *arg)
{
	struct job_events *e = arg;

	for (unsigned r = 0; r < RACE_EVENTS; r++)
		post_round(e, r);
	return NULL;
}

static void test_job_events_concurrent_reader(void **unused)
{
	static struct job_events e;
	struct migrate_event ev;
	uint64_t seq = 0, lost = 0, got = 0;
	pthread_t t;

	(void)unused;
	job_events_init(&e);
	assert_int_equal(pthread_create(&t, NULL, writer, &e), 0);
	while (seq < RACE_EVENTS) {
		if (!job_events_next(&e, seq, &ev))
			continue;
		assert_true(ev.seq > seq);
		/* the contents belong to the seq: never a torn or reused slot */
		assert_int_equal(ev.round, ev.seq - 1);
		lost += ev.seq - seq - 1;
		got++;
		seq = ev.seq;
	}
	pthread_join(t, NULL);
	assert_int_equal(got + lost, RACE_EVENTS);
	job_events_destroy(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job_events_order),
		cmocka_unit_test(test_job_events_overflow),
		cmocka_unit_test(test_job_events_notify),
		cmocka_unit_test(test_job_events_concurrent_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
