/* SPDX-License-Identifier: MIT */
/*
 * pcdest.h - the destination side of a post-copy migration (issue 10).
 * (Design comment: see the .c until the module lands.)
 */
#ifndef KVMIG_MIGRATE_PCDEST_H
#define KVMIG_MIGRATE_PCDEST_H

#include <stdbool.h>
#include <stdint.h>

struct pcdest;

/* What a post-copy receiver reports while pages still arrive (any thread). */
struct pcdest_stats {
	uint64_t pages_missing;		/* pages not in place yet */
	uint64_t pages_placed;		/* placed from the streams since the switchover */
	uint64_t requests;		/* PAGE_REQ sent */
	uint64_t faults;		/* guest faults on pages that were not there */
	uint64_t blocked_us;		/* vCPU time spent waiting on faults */
	uint32_t p50_us, p99_us;	/* fault latency: request sent to page in place */
	bool link_up;			/* the source is connected */
	uint64_t link_down_ms;		/* since when the link is lost (0: up) */
	unsigned reconnects;		/* resumes after a broken link */
};

void pcdest_get_stats(struct pcdest *pd, struct pcdest_stats *st);

#endif
