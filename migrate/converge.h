/* SPDX-License-Identifier: MIT */
/*
 * converge.h - the precopy decision after each round, made from measured
 * numbers only.
 *
 * expected downtime = fixed costs + (remaining dirty bytes + what the
 * guest dirties before the pause) / measured bandwidth. The fixed costs
 * are what a switchover costs besides the pages: the state captured and
 * sent, the destination's load and its READY/GO/RESUMED (fixed_ns;
 * CONVERGE_FIXED_NS unless the caller knows better). Between the last
 * sync and the pause the source waits for the destination to apply the
 * round (lag_ns, measured at the last attempt; 0 before): the guest
 * dirties up to dirty_rate x lag_ns more meanwhile. max_downtime is a ceiling, not a target: while the estimate
 * fits under it, pre-copy goes on as long as each round shrinks the dirty
 * set meaningfully (by more than CONVERGE_SHRINK_PCT%), since another
 * round then buys a shorter downtime; it switches over when
 *  - the dirty set stopped shrinking ("dirty set stopped shrinking"),
 *  - what is left is negligible: it would send within CONVERGE_TINY_NS
 *    ("dirty set negligible"),
 *  - the user's limits say so: the last of max_iterations rounds
 *    ("max-iterations"), or the --timeout would fall within the next
 *    round ("timeout near").
 * Over the ceiling, with auto-converge, throttle the vCPUs when dirtying
 * outran sending (the pages dirtied during a round exceed half of what the
 * round sent) in two rounds in a row: first by 20%, then 10% more each
 * time, up to VM_MAX_THROTTLE (QEMU's steps). Give up after
 * max_iterations rounds (or when the throttle is at its maximum and the
 * estimate stopped shrinking), saying which limit was hit with the dirty
 * rate and the bandwidth seen. Pure: fed numbers, tested without a VM.
 */
#ifndef KVMIG_MIGRATE_CONVERGE_H
#define KVMIG_MIGRATE_CONVERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONVERGE_STALL 5
#define CONVERGE_SHRINK_PCT 10		/* a round must shrink the dirty set by more */
#define CONVERGE_TINY_NS 1000000ull	/* pages that send within 1 ms: nothing to gain */
/*
 * The fixed costs of a stop-and-copy, a constant measured on this
 * project's machine (native /dev/kvm, 2 cores, bench_migrate 1 GiB / 16
 * MiB, bench/results/switchover-2026-12-03.txt and the runs of 2026-12-06):
 * state capture ~0.5 ms, state and COMPLETE sent ~0.1 ms; the destination's
 * load (COMPLETE to READY) 0.3-0.6 ms into the VM prepared during
 * pre-copy, 7-10 ms where it is built again there (a dirty ring, whose
 * size HELLO does not carry); READY to RESUMED 0.2-5 ms. The constant
 * covers the rebuild, so the ceiling holds for every kind; for the
 * others it errs on the safe side by some 6-10 ms.
 */
#define CONVERGE_FIXED_NS 12000000ull

enum converge_action {
	CONVERGE_CONTINUE,	/* another precopy round */
	CONVERGE_SWITCHOVER,	/* stop and copy now; why in reason */
	CONVERGE_THROTTLE,	/* another round, with *throttle raised */
	CONVERGE_GIVE_UP,	/* limits reached; reason in msg */
};

struct converge {
	uint64_t max_downtime_ns;
	unsigned max_iterations;	/* 0: no limit */
	bool auto_converge;
	unsigned max_throttle;
	uint64_t fixed_ns;		/* the fixed costs (CONVERGE_FIXED_NS after init) */
	/*
	 * Inputs the caller may set before each converge_decide() (0:
	 * unknown): how long the round took, and the time left until the
	 * --timeout (0: none).
	 */
	uint64_t round_ns, left_ns;
	uint64_t lag_ns;		/* input: the last sync-to-pause wait measured (0: none) */
	unsigned throttle;		/* current throttle % */
	unsigned hot_rounds;		/* consecutive rounds dirtying outran sending */
	unsigned stalled;		/* rounds at the maximum throttle without a new best */
	uint64_t best_ns;		/* lowest expected downtime so far */
	uint64_t prev_dirty_bytes;	/* the last round's dirty set (UINT64_MAX: none yet) */
	uint64_t expected_downtime_ns;	/* of the last decision, fixed costs included */
	bool fits;			/* the last estimate was under max_downtime */
	const char *reason;		/* CONVERGE_SWITCHOVER: why (a static string) */
};

void converge_init(struct converge *c, uint64_t max_downtime_ns, unsigned max_iterations,
		   bool auto_converge, unsigned max_throttle);

/*
 * Decide after round `round` (0 = bulk). dirty_bytes: what is dirty now;
 * sent_bytes: what the round sent; bandwidth: measured bytes/s;
 * dirty_rate: pages/s. Sets expected_downtime_ns, fits and, on
 * CONVERGE_SWITCHOVER, reason; on CONVERGE_GIVE_UP the message in msg.
 */
enum converge_action converge_decide(struct converge *c, unsigned round, uint64_t dirty_bytes,
				     uint64_t sent_bytes, uint64_t bandwidth, uint64_t dirty_rate,
				     char *msg, size_t msglen);

/*
 * The estimate for dirty_bytes at bandwidth bytes/s with the guest
 * dirtying dirty_rate pages/s, fixed costs and lag included (what
 * converge_decide() compares with max_downtime).
 */
uint64_t converge_estimate(const struct converge *c, uint64_t dirty_bytes, uint64_t bandwidth,
			   uint64_t dirty_rate);

#endif
