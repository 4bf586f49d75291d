/* SPDX-License-Identifier: MIT */
/*
 * ratelimit.h - a token bucket for --bandwidth.
 *
 * Tokens (bytes) accrue at rate bytes/s up to a burst of 50 ms worth;
 * ratelimit_take() returns how long the caller must sleep before sending n
 * bytes and charges them. The caller sleeps (no busy waiting). rate 0 means
 * unlimited. Pure: time is passed in, so it is tested without clocks.
 */
#ifndef KVMIG_MIGRATE_RATELIMIT_H
#define KVMIG_MIGRATE_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
	uint64_t rate;		/* bytes per second, 0 = unlimited */
	uint64_t burst;		/* bucket size in bytes */
	double tokens;
	uint64_t last_ns;
};

void ratelimit_init(struct ratelimit *rl, uint64_t rate, uint64_t now_ns);

/* Charge n bytes at now_ns. Return: nanoseconds to wait before sending. */
uint64_t ratelimit_take(struct ratelimit *rl, uint64_t n, uint64_t now_ns);

/*
 * Change the rate at now_ns (a host-wide budget re-split among the jobs):
 * the tokens earned so far at the old rate are kept up to the new burst,
 * a debt is repaid at the new rate; from unlimited the bucket starts full.
 */
void ratelimit_set_rate(struct ratelimit *rl, uint64_t rate, uint64_t now_ns);

/* Charge n bytes and sleep as long as needed. */
void ratelimit_wait(struct ratelimit *rl, uint64_t n);

#endif
