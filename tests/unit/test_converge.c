/* SPDX-License-Identifier: MIT */
/*
 * test_converge.c - the precopy decision and the bandwidth limiter, fed
 * numbers: the estimate (fixed costs + dirty bytes over bandwidth, plus
 * what the guest dirties during the lag) is a ceiling; under it pre-copy
 * goes on while rounds shrink the dirty set and switches when they stop,
 * when what is left is negligible, at max-iterations or near the timeout,
 * each with its reason; throttle in QEMU's 20%+10% steps when dirtying
 * outruns sending; give up with a message that names the dirty rate and
 * the bandwidth; the token bucket holds a stream to its rate.
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

/* converge_decide at 1000 pages/s of dirtying, with its message discarded */
static enum converge_action decide(struct converge *c, unsigned round, uint64_t dirty,
				   uint64_t bw)
{
	char msg[512];

	return converge_decide(c, round, dirty, 100 * MIB, bw, 1000, msg, sizeof(msg));
}

static void test_converge_switchover_threshold(void **unused)
{
	struct converge c;

	(void)unused;
	converge_init(&c, 300 * MS, 30, false, 90);
	assert_int_equal(c.fixed_ns, CONVERGE_FIXED_NS);
	c.fixed_ns = 0;
	/* 100 MiB/s: 30 MiB takes exactly 300 ms: it fits; the first one goes on */
	assert_int_equal(decide(&c, 3, 30 * MIB, 100 * MIB), CONVERGE_CONTINUE);
	assert_true(c.fits);
	assert_int_equal(c.expected_downtime_ns, 300 * MS);
	/* the same again: it stopped shrinking */
	assert_int_equal(decide(&c, 4, 30 * MIB, 100 * MIB), CONVERGE_SWITCHOVER);
	assert_string_equal(c.reason, "dirty set stopped shrinking");
	/* one page more does not fit */
	converge_init(&c, 300 * MS, 30, false, 90);
	c.fixed_ns = 0;
	assert_int_equal(decide(&c, 3, 30 * MIB + 4096, 100 * MIB), CONVERGE_CONTINUE);
	assert_false(c.fits);
	assert_true(c.expected_downtime_ns > 300 * MS);
	assert_int_equal(decide(&c, 4, 30 * MIB + 4096, 100 * MIB), CONVERGE_CONTINUE);
}

/* The fixed costs count: pages that fit alone do not fit with them. */
static void test_converge_fixed_costs_hold_the_ceiling(void **unused)
{
	struct converge c;

	(void)unused;
	converge_init(&c, 300 * MS, 30, false, 90);
	c.fixed_ns = 20 * MS;
	/* 29 MiB at 100 MiB/s: 290 ms of pages, 310 ms with the fixed costs */
	assert_int_equal(decide(&c, 1, 29 * MIB, 100 * MIB), CONVERGE_CONTINUE);
	assert_int_equal(c.expected_downtime_ns, 310 * MS);
	assert_false(c.fits);
	assert_int_equal(decide(&c, 2, 29 * MIB, 100 * MIB), CONVERGE_CONTINUE);
	assert_false(c.fits);
	/* 28 MiB: 300 ms, on the ceiling; 3% less than 29 MiB is no shrink: switch */
	assert_int_equal(decide(&c, 3, 28 * MIB, 100 * MIB), CONVERGE_SWITCHOVER);
	assert_true(c.fits);
	/*
	 * The lag: 100 ms of dirtying at 2560 pages/s (10 MiB/s) before the
	 * pause adds 1 MiB, 10 ms at 100 MiB/s.
	 */
	c.lag_ns = 100 * MS;
	assert_int_equal(converge_estimate(&c, 28 * MIB, 100 * MIB, 2560), 310 * MS);
	assert_int_equal(converge_estimate(&c, 28 * MIB, 100 * MIB, 0), 300 * MS);
}

/* Under the ceiling, a shrinking dirty set goes on; a stall switches. */
static void test_converge_goes_on_while_shrinking(void **unused)
{
	static const uint64_t seq[] = {100, 80, 60, 45, 36}; /* MiB, each > 10% less */
	struct converge c;
	unsigned round;

	(void)unused;
	converge_init(&c, 300 * MS, 30, false, 90);
	for (round = 0; round < 5; round++) {
		assert_int_equal(decide(&c, round, seq[round] * MIB, 1000 * MIB),
				 CONVERGE_CONTINUE);
		assert_true(c.fits);
	}
	/* 33 MiB is 8% less than 36: not meaningful */
	assert_int_equal(decide(&c, round, 33 * MIB, 1000 * MIB), CONVERGE_SWITCHOVER);
	assert_string_equal(c.reason, "dirty set stopped shrinking");
	assert_int_equal(c.expected_downtime_ns, CONVERGE_FIXED_NS + 33 * MS);
	/* a dirty set that grows stops too */
	converge_init(&c, 300 * MS, 30, false, 90);
	assert_int_equal(decide(&c, 1, 50 * MIB, 1000 * MIB), CONVERGE_CONTINUE);
	assert_int_equal(decide(&c, 2, 60 * MIB, 1000 * MIB), CONVERGE_SWITCHOVER);
	/* the bulk round's dirty set has nothing to compare with: one more round */
	converge_init(&c, 300 * MS, 30, false, 90);
	assert_int_equal(decide(&c, 0, 50 * MIB, 1000 * MIB), CONVERGE_CONTINUE);
}

/* What is left sends within a millisecond: switch at once, even after the bulk round. */
static void test_converge_negligible_switches(void **unused)
{
	struct converge c;

	(void)unused;
	converge_init(&c, 300 * MS, 30, false, 90);
	assert_int_equal(decide(&c, 0, 0, 1000 * MIB), CONVERGE_SWITCHOVER);
	assert_string_equal(c.reason, "dirty set negligible");
	assert_int_equal(c.expected_downtime_ns, CONVERGE_FIXED_NS);
	converge_init(&c, 300 * MS, 30, false, 90);
	assert_int_equal(decide(&c, 0, MIB, 1000 * MIB), CONVERGE_SWITCHOVER);
	converge_init(&c, 300 * MS, 30, false, 90);
	assert_int_equal(decide(&c, 0, 2 * MIB, 1000 * MIB), CONVERGE_CONTINUE);
	/* but never over the ceiling */
	converge_init(&c, 5 * MS, 30, false, 90);
	assert_int_equal(decide(&c, 0, 0, 1000 * MIB), CONVERGE_CONTINUE);
	assert_false(c.fits);
}

/* The user's limits end a shrinking pre-copy that fits, each with its reason. */
static void test_converge_limits_switch_with_reason(void **unused)
{
	struct converge c;

	(void)unused;
	/* max-iterations: the last round switches, shrinking or not */
	converge_init(&c, 300 * MS, 3, false, 90);
	assert_int_equal(decide(&c, 0, 100 * MIB, 1000 * MIB), CONVERGE_CONTINUE);
	assert_int_equal(decide(&c, 1, 80 * MIB, 1000 * MIB), CONVERGE_CONTINUE);
	assert_int_equal(decide(&c, 2, 60 * MIB, 1000 * MIB), CONVERGE_SWITCHOVER);
	assert_string_equal(c.reason, "max-iterations");
	/* the timeout: another 200 ms round and the switchover do not fit in 250 ms */
	converge_init(&c, 300 * MS, 0, false, 90);
	c.round_ns = 200 * MS;
	c.left_ns = 10000 * MS;
	assert_int_equal(decide(&c, 0, 100 * MIB, 1000 * MIB), CONVERGE_CONTINUE);
	c.left_ns = 250 * MS;
	assert_int_equal(decide(&c, 1, 80 * MIB, 1000 * MIB), CONVERGE_SWITCHOVER);
	assert_string_equal(c.reason, "timeout near");
	/* over the ceiling the same limits give up, with the reason in the message */
	converge_init(&c, 300 * MS, 3, false, 90);
	c.round_ns = 200 * MS;
	c.left_ns = 250 * MS;
	assert_int_equal(decide(&c, 0, 500 * MIB, 100 * MIB), CONVERGE_CONTINUE);
	assert_int_equal(decide(&c, 1, 400 * MIB, 100 * MIB), CONVERGE_CONTINUE);
	{
		char msg[512] = "";

		assert_int_equal(converge_decide(&c, 2, 300 * MIB, 100 * MIB, 100 * MIB, 1000,
						 msg, sizeof(msg)),
				 CONVERGE_GIVE_UP);
		assert_non_null(strstr(msg, "did not converge after 3 rounds"));
	}
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
		cmocka_unit_test(test_converge_fixed_costs_hold_the_ceiling),
		cmocka_unit_test(test_converge_goes_on_while_shrinking),
		cmocka_unit_test(test_converge_negligible_switches),
		cmocka_unit_test(test_converge_limits_switch_with_reason),
		cmocka_unit_test(test_converge_gives_up_with_reason),
		cmocka_unit_test(test_converge_throttle_steps),
		cmocka_unit_test(test_converge_gives_up_when_throttle_stalls),
		cmocka_unit_test(test_converge_bulk_round_never_gives_up),
		cmocka_unit_test(test_ratelimit_holds_rate),
		cmocka_unit_test(test_ratelimit_set_rate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
