/* SPDX-License-Identifier: MIT */
#include "migrate/converge.h"

#include <stdint.h>
#include <stdio.h>

void converge_init(struct converge *c, uint64_t max_downtime_ns, unsigned max_iterations,
		   bool auto_converge, unsigned max_throttle)
{
	c->max_downtime_ns = max_downtime_ns;
	c->max_iterations = max_iterations;
	c->auto_converge = auto_converge;
	c->max_throttle = max_throttle;
	c->fixed_ns = CONVERGE_FIXED_NS;
	c->round_ns = 0;
	c->left_ns = 0;
	c->lag_ns = 0;
	c->throttle = 0;
	c->hot_rounds = 0;
	c->stalled = 0;
	c->best_ns = UINT64_MAX;
	c->prev_dirty_bytes = UINT64_MAX;
	c->expected_downtime_ns = 0;
	c->fits = false;
	c->reason = "";
}

uint64_t converge_estimate(const struct converge *c, uint64_t dirty_bytes, uint64_t bandwidth,
			   uint64_t dirty_rate)
{
	double more = (double)dirty_rate * 4096.0 * (double)c->lag_ns / 1e9;

	if (!bandwidth)
		bandwidth = 1;
	return c->fixed_ns + (uint64_t)(((double)dirty_bytes + more) * 1e9 / (double)bandwidth);
}

/*
 * Under the ceiling: go on while the rounds shrink the dirty set, switch
 * when they stop or a limit says so. Return: the reason to switch, or
 * NULL for another round.
 */
static const char *fit_decide(const struct converge *c, unsigned round, uint64_t dirty_bytes)
{
	bool shrinking = c->prev_dirty_bytes == UINT64_MAX ||
			 dirty_bytes * 100 < c->prev_dirty_bytes * (100 - CONVERGE_SHRINK_PCT);

	if (c->expected_downtime_ns - c->fixed_ns <= CONVERGE_TINY_NS)
		return "dirty set negligible";
	if (!shrinking)
		return "dirty set stopped shrinking";
	if (c->max_iterations && round + 1 >= c->max_iterations)
		return "max-iterations";
	/* the next round (as long as this one) and the switchover must fit */
	if (c->left_ns && c->left_ns < c->round_ns + c->expected_downtime_ns)
		return "timeout near";
	return NULL;
}

enum converge_action converge_decide(struct converge *c, unsigned round, uint64_t dirty_bytes,
				     uint64_t sent_bytes, uint64_t bandwidth, uint64_t dirty_rate,
				     char *msg, size_t msglen)
{
	/* MiB/s in the messages, rounded: a 1 MiB/s link measured at 0.99 is not "0 MiB/s" */
	uint64_t mib_s = (bandwidth + (1u << 19)) >> 20;
	uint64_t dirty_mib_s = (dirty_rate * 4096 + (1u << 19)) >> 20;

	c->expected_downtime_ns = converge_estimate(c, dirty_bytes, bandwidth, dirty_rate);
	c->fits = c->expected_downtime_ns <= c->max_downtime_ns;
	if (c->fits) {
		const char *why = fit_decide(c, round, dirty_bytes);

		c->prev_dirty_bytes = dirty_bytes;
		c->hot_rounds = 0;
		if (why) {
			c->reason = why;
			return CONVERGE_SWITCHOVER;
		}
		return CONVERGE_CONTINUE;
	}
	c->prev_dirty_bytes = dirty_bytes;
	if (round == 0)
		return CONVERGE_CONTINUE; /* the bulk round says little about dirtying */
	if (dirty_bytes * 2 > sent_bytes)
		c->hot_rounds++;
	else
		c->hot_rounds = 0;
	if (c->expected_downtime_ns < c->best_ns) {
		c->best_ns = c->expected_downtime_ns;
		c->stalled = 0;
	} else if (c->auto_converge && c->throttle >= c->max_throttle) {
		c->stalled++;
	}
	if (c->stalled >= CONVERGE_STALL) {
		snprintf(msg, msglen,
			 "precopy did not converge: with the vCPUs throttled to %u%% for %u rounds "
			 "the guest still dirties %llu pages/s (%llu MiB/s) and the link moves "
			 "%llu MiB/s; %llu MiB stay dirty, an expected downtime of %llu ms over "
			 "the %llu ms allowed; try a larger --max-downtime or more --bandwidth",
			 c->throttle, c->stalled, (unsigned long long)dirty_rate,
			 (unsigned long long)dirty_mib_s, (unsigned long long)mib_s,
			 (unsigned long long)(dirty_bytes >> 20),
			 (unsigned long long)(c->expected_downtime_ns / 1000000),
			 (unsigned long long)(c->max_downtime_ns / 1000000));
		return CONVERGE_GIVE_UP;
	}
	if (c->max_iterations && round + 1 >= c->max_iterations) {
		snprintf(msg, msglen,
			 "precopy did not converge after %u rounds: the guest dirties %llu pages/s "
			 "(%llu MiB/s) and the link moves %llu MiB/s; %llu MiB stay dirty, an "
			 "expected downtime of %llu ms over the %llu ms allowed%s",
			 round + 1, (unsigned long long)dirty_rate,
			 (unsigned long long)dirty_mib_s, (unsigned long long)mib_s,
			 (unsigned long long)(dirty_bytes >> 20),
			 (unsigned long long)(c->expected_downtime_ns / 1000000),
			 (unsigned long long)(c->max_downtime_ns / 1000000),
			 c->auto_converge ? " (even with the vCPUs throttled)"
					  : "; try --auto-converge, a larger --max-downtime or "
					    "more --bandwidth");
		return CONVERGE_GIVE_UP;
	}
	if (c->auto_converge && c->hot_rounds >= 2 && c->throttle < c->max_throttle) {
		c->throttle = c->throttle ? c->throttle + 10 : 20;
		if (c->throttle > c->max_throttle)
			c->throttle = c->max_throttle;
		c->hot_rounds = 0;
		return CONVERGE_THROTTLE;
	}
	return CONVERGE_CONTINUE;
}
