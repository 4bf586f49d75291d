/* SPDX-License-Identifier: MIT */
/*
 * converge.h - the precopy decision after each round, made from measured
 * numbers only.
 *
 * expected downtime = remaining dirty bytes / measured bandwidth. Switch
 * over when it is at most max_downtime. Otherwise, with auto-converge,
 * throttle the vCPUs when dirtying outran sending (the pages dirtied during
 * a round exceed half of what the round sent) in two rounds in a row:
 * first by 20%, then 10% more each time, up to VM_MAX_THROTTLE (QEMU's
 * steps). Give up after max_iterations rounds (or when the throttle is at
 * its maximum and the estimate stopped shrinking), saying which limit was
 * hit with the dirty rate and the bandwidth seen. Pure: fed numbers, tested
 * without a VM.
 */
#ifndef KVMIG_MIGRATE_CONVERGE_H
#define KVMIG_MIGRATE_CONVERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONVERGE_STALL 5

enum converge_action {
	CONVERGE_CONTINUE,	/* another precopy round */
	CONVERGE_SWITCHOVER,	/* stop and copy now */
	CONVERGE_THROTTLE,	/* another round, with *throttle raised */
	CONVERGE_GIVE_UP,	/* limits reached; reason in msg */
};

struct converge {
	uint64_t max_downtime_ns;
	unsigned max_iterations;	/* 0: no limit */
	bool auto_converge;
	unsigned max_throttle;
	unsigned throttle;		/* current throttle % */
	unsigned hot_rounds;		/* consecutive rounds dirtying outran sending */
	unsigned stalled;		/* rounds at the maximum throttle without a new best */
	uint64_t best_ns;		/* lowest expected downtime so far */
	uint64_t expected_downtime_ns;	/* of the last decision */
	const char *reason;		/* CONVERGE_SWITCHOVER: why (a static string) */
};

void converge_init(struct converge *c, uint64_t max_downtime_ns, unsigned max_iterations,
		   bool auto_converge, unsigned max_throttle);

/*
 * Decide after round `round` (0 = bulk). dirty_bytes: what is dirty now;
 * sent_bytes / round_ns: what the round sent and how long it took;
 * bandwidth: measured bytes/s; dirty_rate: pages/s.
 */
enum converge_action converge_decide(struct converge *c, unsigned round, uint64_t dirty_bytes,
				     uint64_t sent_bytes, uint64_t bandwidth, uint64_t dirty_rate,
				     char *msg, size_t msglen);

#endif
