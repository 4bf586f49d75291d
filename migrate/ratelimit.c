/* SPDX-License-Identifier: MIT */
#include "migrate/ratelimit.h"

#include <time.h>

#include "common/clock.h"

void ratelimit_init(struct ratelimit *rl, uint64_t rate, uint64_t now_ns)
{
	rl->rate = rate;
	rl->burst = rate / 20 ? rate / 20 : 1;
	rl->tokens = (double)rl->burst;
	rl->last_ns = now_ns;
}

uint64_t ratelimit_take(struct ratelimit *rl, uint64_t n, uint64_t now_ns)
{
	double deficit;

	if (!rl->rate)
		return 0;
	if (now_ns > rl->last_ns) {
		rl->tokens += (double)(now_ns - rl->last_ns) * (double)rl->rate / 1e9;
		if (rl->tokens > (double)rl->burst)
			rl->tokens = (double)rl->burst;
		rl->last_ns = now_ns;
	}
	rl->tokens -= (double)n;
	if (rl->tokens >= 0)
		return 0;
	deficit = -rl->tokens;
	return (uint64_t)(deficit * 1e9 / (double)rl->rate);
}

void ratelimit_set_rate(struct ratelimit *rl, uint64_t rate, uint64_t now_ns)
{
	uint64_t old = rl->rate;

	if (old && rate)
		(void)ratelimit_take(rl, 0, now_ns);	/* the tokens earned at the old rate */
	rl->rate = rate;
	rl->burst = rate / 20 ? rate / 20 : 1;
	if (!old) {
		rl->tokens = (double)rl->burst;
		rl->last_ns = now_ns;
	} else if (rl->tokens > (double)rl->burst) {
		rl->tokens = (double)rl->burst;
	}
	if (now_ns > rl->last_ns)
		rl->last_ns = now_ns;
}

void ratelimit_wait(struct ratelimit *rl, uint64_t n)
{
	uint64_t ns = ratelimit_take(rl, n, clock_now_ns());
	struct timespec ts;

	if (!ns)
		return;
	ts.tv_sec = (time_t)(ns / 1000000000ull);
	ts.tv_nsec = (long)(ns % 1000000000ull);
	while (nanosleep(&ts, &ts) != 0)
		;
}
