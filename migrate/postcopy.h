/* SPDX-License-Identifier: MIT */
/*
 * postcopy.h - the source side of post-copy, after the switchover;
 * internal to migrate/ (the destination's side is pcdest.h).
 *
 * Once GO went out the guest runs at the destination with the pages of
 * the needed set (j->bitmap) still here. Two threads serve it: the fault
 * server answers each PAGE_REQ of the fault channel at once (raw pages,
 * no rate limit: a vCPU waits), and the job thread pushes the rest on
 * channel 0 (behind --bandwidth, with --compress, never XBZRLE: the
 * destination dropped the copies a delta would apply to), starting near
 * the latest request. A bit of j->bitmap is cleared by whoever sends the
 * page first (atomically), so a page normally goes once. Every page stays
 * here until the destination's PC_DONE says all are in place.
 *
 * A broken link (an I/O error on either channel, or a malformed frame from
 * the destination) is not the end: both channels are closed, the job
 * waits in status postcopy-paused, and reconnects (HELLO RESUME, then the
 * destination's WANT frames become the needed set, then a new fault
 * channel) when migrate_resume asks, or by itself during
 * --postcopy-reconnect. Only a cancel or --timeout gives up, and the
 * error says how many pages never reached the destination.
 *
 * Job thread only, except where a function says otherwise.
 */
#ifndef KVMIG_MIGRATE_POSTCOPY_H
#define KVMIG_MIGRATE_POSTCOPY_H

#include "common/compiler.h"

struct migrate_job;
struct mio;

/*
 * After channel 0's handshake chose WIRE_CAP_POSTCOPY: open the fault
 * channel. Return: 0, or -errno with j->err set.
 */
int postcopy_open_fault(struct migrate_job *j) __must_check;

/*
 * The destination runs the guest (RESUMED came): serve its faults, push
 * the needed pages, survive broken links, until PC_DONE.
 * Return: 0, or -errno with j->err set (the guest is lost: it says why).
 */
int postcopy_serve(struct migrate_job *j) __must_check;

/* Wake a job waiting to resume (cancel, resume). Any thread, under j->lock. */
void postcopy_kick(struct migrate_job *j);

#endif
