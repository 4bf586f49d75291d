/* SPDX-License-Identifier: MIT */
/* clock.h - monotonic time helpers for stats, timeouts and rate limits. */
#ifndef KVMIG_COMMON_CLOCK_H
#define KVMIG_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_now_ms(void)
{
	return clock_now_ns() / 1000000ull;
}

#endif
