/* SPDX-License-Identifier: MIT */
/*
 * test_converge.c - the precopy decision and the bandwidth limiter, fed
 * numbers: switch over exactly when dirty bytes over bandwidth fit the
 * downtime budget; throttle in QEMU's 20%+10% steps when dirtying outruns
 * sending; give up with a message that names the dirty rate and the
 * bandwidth; the token bucket holds a stream to its rate.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/converge.h"
#include "migrate/ratelimit.h"

#define MS 1000000ull
#define MIB (1ull << 20)

static void test_converge_switchover_threshold(void **unused)
{
	struct converge c;
	char msg[512];

	(void)unused;
	converge_init(&c, 300 * MS, 30, false, 90);
	/* 100 MiB/s: 30 MiB takes exactly 300 ms -> switch */
	assert_int_equal(converge_decide(&c, 3, 30 * MIB, 100 * MIB, 100 * MIB, 1000, msg,
					 sizeof(msg)),
			 CONVERGE_SWITCHOVER);
	assert_int_equal(c.expected_downtime_ns, 300 * MS);
	/* one page more does not fit */
	assert_int_equal(converge_decide(&c, 3, 30 * MIB + 4096, 100 * MIB, 100 * MIB, 1000, msg,
					 sizeof(msg)),
			 CONVERGE_CONTINUE);
	assert_true(c.expected_downtime_ns > 300 * MS);
}

static void test_converge_gives_up_with_reason(void **unused)
{
	struct converge c;
	char msg[512] = "";
	enum converge_action a = CONVERGE_CONTINUE;
	unsigned round;

	(void)unused;
	converge_init(&c, 300 * MS, 5, false, 90);
	for (round = 0; round < 10 && a != CONVERGE_GIVE_UP; round++)
		a = converge_decide(&c, round, 500 * MIB, 100 * MIB, 50 * MIB, 150000, msg,
				    sizeof(msg));
	assert_int_equal(a, CONVERGE_GIVE_UP);
	assert_int_equal(round, 5);
	assert_non_null(strstr(msg, "150000 pages/s"));
	assert_non_null(strstr(msg, "50 MiB/s"));
	assert_non_null(strstr(msg, "--auto-converge"));
}

static void test_converge_throttle_steps(void **unused)
{
	struct converge c;
	char msg[512];
	unsigned steps[8], n = 0;

	(void)unused;
	converge_init(&c, 300 * MS, 0, true, 90);
	/* dirtying (200 MiB per round) outruns sending (100 MiB per round) */
	for (unsigned round = 0; round < 40 && n < 8; round++) {
		enum converge_action a = converge_decide(&c, round, 200 * MIB, 100 * MIB,
							 100 * MIB, 50000, msg, sizeof(msg));

		assert_true(a == CONVERGE_CONTINUE || a == CONVERGE_THROTTLE);
		if (a == CONVERGE_THROTTLE)
			steps[n++] = c.throttle;
	}
	assert_int_equal(n, 8);
	assert_int_equal(steps[0], 20);
	assert_int_equal(steps[1], 30);
	assert_int_equal(steps[2], 40);
	assert_int_equal(steps[7], 90);
	/* calm rounds reset the streak: no throttle on one hot round */
	converge_init(&c, 300 * MS, 0, true, 90);
	assert_int_equal(converge_decide(&c, 1, 200 * MIB, 100 * MIB, 100 * MIB, 1, msg, 512),
			 CONVERGE_CONTINUE);
	assert_int_equal(converge_decide(&c, 2, 40 * MIB, 100 * MIB, 100 * MIB, 1, msg, 512),
			 CONVERGE_CONTINUE);
	assert_int_equal(converge_decide(&c, 3, 200 * MIB, 100 * MIB, 100 * MIB, 1, msg, 512),
			 CONVERGE_CONTINUE);
	assert_int_equal(c.throttle, 0);
}

/* At the maximum throttle, an estimate that stops improving ends the job. */
static void test_converge_gives_up_when_throttle_stalls(void **unused)
{
	struct converge c;
	enum converge_action a = CONVERGE_CONTINUE;
	char msg[512];
	unsigned round;

	(void)unused;
	converge_init(&c, 300 * MS, 0, true, 90);
	for (round = 0; round < 200; round++) {
		a = converge_decide(&c, round, 200 * MIB, 100 * MIB, 100 * MIB, 50000, msg,
				    sizeof(msg));
		if (a == CONVERGE_GIVE_UP)
			break;
	}
	assert_int_equal(a, CONVERGE_GIVE_UP);
	assert_int_equal(c.throttle, 90);
	assert_non_null(strstr(msg, "throttled to 90% for 5 rounds"));
	assert_non_null(strstr(msg, "50000 pages/s"));
	/* below the maximum, or still improving, it goes on */
	converge_init(&c, 300 * MS, 0, true, 90);
	for (round = 0; round < 30; round++)
		assert_int_not_equal(converge_decide(&c, round, (400 - round) * MIB, 100 * MIB,
						     100 * MIB, 1, msg, sizeof(msg)),
				     CONVERGE_GIVE_UP);
}

static void test_converge_bulk_round_never_gives_up(void **unused)
{
	struct converge c;
	char msg[512];

	(void)unused;
	converge_init(&c, 1 * MS, 1, false, 90);
	assert_int_equal(converge_decide(&c, 0, 4000 * MIB, 1, 1, 1, msg, sizeof(msg)),
			 CONVERGE_CONTINUE);
}

static void test_ratelimit_holds_rate(void **unused)
{
	struct ratelimit rl;
	uint64_t now = 1000 * MS, sent = 0, start = now;

	(void)unused;
	ratelimit_init(&rl, 10 * MIB, now);
	/* send 100 MiB in 1 MiB frames, advancing time by the waits asked for */
	while (sent < 100 * MIB) {
		now += ratelimit_take(&rl, MIB, now);
		sent += MIB;
	}
	/* 100 MiB at 10 MiB/s: 10 s, minus the initial burst (50 ms) */
	assert_true(now - start >= 9900 * MS);
	assert_true(now - start <= 10000 * MS);
	/* unlimited never waits */
	ratelimit_init(&rl, 0, now);
	assert_int_equal(ratelimit_take(&rl, 1ull << 40, now), 0);
}

/*
 * A re-split budget (migrate_set_bandwidth): the new rate holds from the
 * change on, a debt made at the old rate is repaid at the new one, and
 * from unlimited the bucket starts with one burst.
 */
static void test_ratelimit_set_rate(void **unused)
{
	struct ratelimit rl;
	uint64_t now = 1000 * MS, t0, sent;

	(void)unused;
	ratelimit_init(&rl, 10 * MIB, now);
	/* 20 MiB at 10 MiB/s, then halve the rate: the next 20 MiB take 4 s */
	for (sent = 0; sent < 20 * MIB; sent += MIB)
		now += ratelimit_take(&rl, MIB, now);
	ratelimit_set_rate(&rl, 5 * MIB, now);
	assert_int_equal(rl.burst, 5 * MIB / 20);
	t0 = now;
	for (sent = 0; sent < 20 * MIB; sent += MIB)
		now += ratelimit_take(&rl, MIB, now);
	assert_true(now - t0 >= 3900 * MS);
	assert_true(now - t0 <= 4100 * MS);
	/* a debt: 4 MiB charged at once at 4 MiB/s is a second to wait */
	ratelimit_init(&rl, 4 * MIB, now);
	assert_true(ratelimit_take(&rl, 4 * MIB + 4 * MIB / 20, now) >= 999 * MS);
	/* the rate doubles before the wait is over: the debt is repaid at 8 MiB/s */
	ratelimit_set_rate(&rl, 8 * MIB, now);
	assert_true(ratelimit_take(&rl, 0, now) <= 501 * MS);
	assert_true(ratelimit_take(&rl, 0, now) >= 499 * MS);
	/* unlimited, then capped: one burst, then the rate */
	ratelimit_init(&rl, 0, now);
	assert_int_equal(ratelimit_take(&rl, 1ull << 30, now), 0);
	ratelimit_set_rate(&rl, 2 * MIB, now + MS);
	assert_int_equal(ratelimit_take(&rl, 2 * MIB / 20, now + MS), 0);
	assert_true(ratelimit_take(&rl, 2 * MIB, now + MS) >= 999 * MS);
	/* and unlimited again never waits */
	ratelimit_set_rate(&rl, 0, now + 2 * MS);
	assert_int_equal(ratelimit_take(&rl, 1ull << 40, now + 2 * MS), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_converge_switchover_threshold),
		cmocka_unit_test(test_converge_gives_up_with_reason),
		cmocka_unit_test(test_converge_throttle_steps),
		cmocka_unit_test(test_converge_gives_up_when_throttle_stalls),
		cmocka_unit_test(test_converge_bulk_round_never_gives_up),
		cmocka_unit_test(test_ratelimit_holds_rate),
		cmocka_unit_test(test_ratelimit_set_rate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
