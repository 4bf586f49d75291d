/* SPDX-License-Identifier: MIT */
/*
 * pcdest.h - the destination side of a post-copy migration: the guest runs
 * here while its missing pages still arrive.
 *
 * At the switchover the source names the pages this side must drop and
 * fetch (NEEDED: dirtied after it sent them, or never sent). At COMPLETE
 * (pcdest_arm) they are punched out of the RAM memfd, the memory-slot view
 * is registered with userfaultfd in missing mode and a fault thread starts.
 * The guest then runs; a vCPU touching a missing page blocks in the
 * kernel, the fault thread reads the fault and asks the source for the
 * page with PAGE_REQ on the fault channel (a connection of its own, so a
 * requested page never queues behind the background stream); a page that
 * was never needed (a hole: zero on both sides) is placed as a zero page
 * here without asking. Pages arrive on the fault channel (the answers)
 * and on channel 0 (the source's background push) and are placed
 * atomically with UFFDIO_COPY, which wakes the vCPUs waiting on them; a
 * page already in place is never overwritten (a late duplicate is
 * dropped). When the last needed page is in place the receiver sends
 * PC_DONE on channel 0 (with its fault-latency and blocked-time figures
 * and, with --verify, whether the order-free RAM digest matched) and the
 * userfaultfd is released.
 *
 * Recovery: a stream that breaks (EOF, an I/O error, a malformed frame)
 * only detaches: nothing placed is lost, and the vCPUs wait on their
 * faults. The source reconnects with HELLO(RESUME) and HELLO(FAULT) on new
 * connections, which arrive at the agent like any migration stream and
 * find this receiver by session id in a struct pc_table; the resumed
 * channel 0 is told which pages are still missing (WANT frames), the new
 * fault channel gets the requests still outstanding. Only an ERROR from
 * the source (it gave up) or pcdest_abandon() ends a receiver that is not
 * done: the guest cannot run on without the pages it lacks.
 *
 * Threads: the owner (the incoming thread of channel 0) creates, arms,
 * serves channel 0 and waits; the fault thread; one thread per attached
 * fault or resumed stream (pc_table_*). Placement and the needed bitmap
 * are lock-free (an atomic bit per page); pd->lock guards the streams,
 * the waiting faults and the figures.
 */
#ifndef KVMIG_MIGRATE_PCDEST_H
#define KVMIG_MIGRATE_PCDEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

struct mio;
struct pcdest;
struct pc_table;
struct wire_bitmap;
struct wire_hello;

/* What a post-copy receiver reports while pages still arrive (any thread). */
struct pcdest_stats {
	uint64_t pages_missing;		/* pages not in place yet */
	uint64_t pages_placed;		/* placed from the streams since the switchover */
	uint64_t requests;		/* PAGE_REQ sent */
	uint64_t faults;		/* guest faults on pages that were not there */
	uint64_t blocked_us;		/* vCPU time spent waiting on faults */
	uint32_t p50_us, p99_us;	/* fault latency: request sent to page in place */
	bool link_up;			/* the source is connected (channel 0) */
	uint64_t link_down_ms;		/* how long the link has been lost (0: up) */
	unsigned reconnects;		/* resumes after a broken link */
	bool done;			/* every page is in place */
	uint64_t first_missing;		/* the lowest page not in place (UINT64_MAX: none) */
	unsigned nwaiting;		/* faults waiting now (vCPUs blocked, and repeats) */
	uint64_t waiting[4];		/* the pages of the first of them */
};

/* A table of the receivers that take FAULT and RESUME streams; the agent has one. */
int pc_table_create(struct pc_table **out) __must_check;
/* Every receiver must be gone first. Accepts NULL. */
void pc_table_destroy(struct pc_table *t);

/*
 * Abandon every receiver of the table that is not done (agent shutdown):
 * their waits return -ESHUTDOWN.
 */
void pc_table_shutdown(struct pc_table *t);

/*
 * Whether this host can serve post-copy (userfaultfd on shared memory).
 * Return: 0, or -errno with the reason in err.
 */
int pcdest_probe(char *err, size_t errlen) __must_check;

/*
 * A receiver for session (channel 0's HELLO chose WIRE_CAP_POSTCOPY), in
 * table t, for RAM of ram_bytes: the memfd ram_fd, the slot view KVM maps
 * (registered later) and the alias (read for the digest); all borrowed,
 * valid until pcdest_destroy. caps: the negotiated WIRE_CAP_* (codecs).
 * Return: 0, or -errno with a message.
 */
int pcdest_create(struct pc_table *t, uint64_t session, uint32_t caps, int ram_fd,
		  uint8_t *slot_view, uint8_t *alias, uint64_t ram_bytes, struct pcdest **out,
		  char *err, size_t errlen) __must_check;

/*
 * Stop the fault thread, release the userfaultfd (a vCPU still waiting is
 * woken: call it before the VM goes, or once every page is in place), shut
 * down attached streams and wait for their threads to leave, leave the
 * table. Accepts NULL.
 */
void pcdest_destroy(struct pcdest *pd);

/* A NEEDED frame: these pages must be fetched. Return: 0. */
int pcdest_needed(struct pcdest *pd, const struct wire_bitmap *b);

/*
 * At COMPLETE, before the VM is built: drop the needed pages from RAM,
 * compute the digest of what is already here (digest_alg
 * WIRE_DIGEST_PAGES: the source's is digest), register the slot view and
 * start the fault thread. Return: 0, or -errno with a message.
 */
int pcdest_arm(struct pcdest *pd, uint8_t digest_alg, const uint8_t *digest, char *err,
	       size_t errlen) __must_check;

/*
 * The owner, after GO: receive the background push on channel 0 (in for
 * the frames, ret for PC_DONE; the caller keeps them open until this
 * returns) until every page is in place, then wait out a broken link
 * until a resumed stream finishes the job. Return: 0 (every page in
 * place, PC_DONE sent), -ECANCELED (the source gave up), -ESHUTDOWN
 * (abandoned), with err saying how many pages never arrived.
 */
int pcdest_run(struct pcdest *pd, struct mio *in, struct mio *ret, char *err,
	       size_t errlen) __must_check;

/* Give up (the VM is going away): pcdest_run returns -ESHUTDOWN. */
void pcdest_abandon(struct pcdest *pd);

void pcdest_get_stats(struct pcdest *pd, struct pcdest_stats *st);

/*
 * A stream whose HELLO carries WIRE_HELLO_FAULT or WIRE_HELLO_RESUME
 * (checked by the caller): find its receiver in t, answer HELLO_ACK on
 * ret, and serve it until it ends. FAULT: PAGE_REQ out, PAGES in. RESUME:
 * WANT out, then channel 0's background push (and PC_DONE) as
 * pcdest_run. Return: 0 when the stream ended (the receiver lives on), or
 * -errno with a message (no such session: the stream is refused).
 */
int pc_table_serve(struct pc_table *t, const struct wire_hello *h, struct mio *in,
		   struct mio *ret, char *err, size_t errlen) __must_check;

#endif
