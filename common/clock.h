/* SPDX-License-Identifier: MIT */
/* clock.h - monotonic and thread CPU time helpers for stats, timeouts and rate limits. */
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

/*
 * CPU time of the calling thread: what a piece of work cost, without the
 * time the thread was preempted (a system call, unlike clock_now_ns()).
 */
static inline uint64_t clock_thread_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_now_ms(void)
{
	return clock_now_ns() / 1000000ull;
}

#endif
