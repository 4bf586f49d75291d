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
	c->throttle = 0;
	c->hot_rounds = 0;
	c->stalled = 0;
	c->best_ns = UINT64_MAX;
	c->expected_downtime_ns = 0;
	c->reason = "";
}

enum converge_action converge_decide(struct converge *c, unsigned round, uint64_t dirty_bytes,
				     uint64_t sent_bytes, uint64_t bandwidth, uint64_t dirty_rate,
				     char *msg, size_t msglen)
{
	/* MiB/s in the messages, rounded: a 1 MiB/s link measured at 0.99 is not "0 MiB/s" */
	uint64_t mib_s = (bandwidth + (1u << 19)) >> 20;
	uint64_t dirty_mib_s = (dirty_rate * 4096 + (1u << 19)) >> 20;

	if (!bandwidth)
		bandwidth = 1;
	c->expected_downtime_ns =
		(uint64_t)((double)dirty_bytes * 1e9 / (double)bandwidth);
	if (c->expected_downtime_ns <= c->max_downtime_ns) {
		c->reason = "estimate under max-downtime";
		return CONVERGE_SWITCHOVER;
	}
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
