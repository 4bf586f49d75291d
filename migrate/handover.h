/* SPDX-License-Identifier: MIT */
/*
 * handover.h - the READY/GO hand-over at the end of a migration, and the
 * commit rule that decides where the guest runs when the job fails;
 * internal to migrate/.
 *
 * After COMPLETE the destination checks everything and builds the VM,
 * then says READY (with its verdict on the RAM digest). Until we answer
 * GO the guest is ours: any failure resumes it here (if the job paused
 * it) and the destination is told why with an ERROR frame. From GO on
 * (j->committed) it is the destination's, and we never run our copy
 * again, even if RESUMED does not come: one copy may stop, two must never
 * run. An ERROR from the destination after GO means it runs nothing, so
 * the copy here is ours again (committed goes back to false).
 *
 * Job thread only; it owns j->committed and j->paused.
 */
#ifndef KVMIG_MIGRATE_HANDOVER_H
#define KVMIG_MIGRATE_HANDOVER_H

#include "common/compiler.h"

struct migrate_job;

/*
 * After COMPLETE: READY in, GO out, RESUMED in (ACKs on the way are
 * skipped). Sets st.verified from RESUMED. Return: 0, or -errno with
 * j->err set (j->committed says whether GO went out).
 */
int handover_run(struct migrate_job *j) __must_check;

/*
 * The job failed with ret < 0 (j->err says why): apply the commit rule.
 * Before GO: ERROR to the destination, the throttle off, the guest resumed
 * if the job paused it. After GO: the copy here stays paused, j->err says
 * so and the failure is logged.
 */
void handover_fail(struct migrate_job *j, int ret);

/*
 * After RESUMED (pre-copy) or PC_DONE (post-copy) of a job with --announce:
 * read the destination's ANNOUNCED on channel 0 into st.announce, for at
 * most the announce schedule plus a slack; its absence is only a warning
 * (the job itself succeeded).
 */
void handover_wait_announced(struct migrate_job *j);

#endif
