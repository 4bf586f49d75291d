/* SPDX-License-Identifier: MIT */
/*
 * retpath.h - the return path of a migration: what the destination says
 * back; internal to migrate/.
 *
 * The handshake, on every channel: HELLO out, HELLO_ACK back, whose caps
 * must cover what the HELLO asked for. Then on channel 0 only: ACK(round)
 * once every channel's pages of that round are in the destination's RAM
 * (the ACK taker advances j->acked; an ACK of a round not yet ended is a
 * protocol error); READY and RESUMED, read by the hand-over (handover.h);
 * and ERROR, at any point, which fails the job with the destination's
 * reason (-EREMOTEIO). Precopy reads the return path without blocking after
 * each chunk (retpath_poll) and blocks on it only to wait for an ACK before
 * the switchover.
 *
 * Job thread only: frames are read into j->rbuf, j->acked is its own.
 * Every failure is recorded with job_fail; callers pass the -errno on.
 */
#ifndef KVMIG_MIGRATE_RETPATH_H
#define KVMIG_MIGRATE_RETPATH_H

#include <stdint.h>

#include "common/compiler.h"
#include "migrate/mio.h"
#include "protocol/frame.h"

struct lane;
struct migrate_job;

/* HELLO on lane ln's connection, and the destination's HELLO_ACK. Return: 0, -errno. */
int retpath_handshake(struct migrate_job *j, struct lane *ln) __must_check;

/*
 * Read one return-path frame from io into j->rbuf, waiting at most
 * timeout_ms (0: only what is there). An ERROR frame fails the job.
 * Return: 0 and *h, -ETIMEDOUT (j->err not set: the caller decides), or
 * -errno with j->err set (-EREMOTEIO: the destination refused).
 */
int retpath_read_on(struct migrate_job *j, struct mio *io, int timeout_ms,
		    struct frame_hdr *h) __must_check;

/* retpath_read_on on channel 0. */
int retpath_read(struct migrate_job *j, int timeout_ms, struct frame_hdr *h) __must_check;

/* Consume whatever the destination said meanwhile (ACKs, or an ERROR). Return: 0, -errno. */
int retpath_poll(struct migrate_job *j);

/*
 * Wait until the destination ACKed round `round`: every channel's pages of
 * it are in its RAM. Checks for cancel and the job's timeout meanwhile.
 * Return: 0, or -errno with j->err set.
 */
int retpath_wait_acked(struct migrate_job *j, uint32_t round, int timeout_ms) __must_check;

#endif
