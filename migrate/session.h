/* SPDX-License-Identifier: MIT */
/*
 * session.h - the channels of one parallel migration, meeting at the
 * destination.
 *
 * A `--parallel N` source opens N connections that each start with HELLO
 * carrying the same random session id and their channel number. Channel 0
 * carries the control frames (END_ROUND, SWITCHOVER, STATE, COMPLETE) and
 * its share of the pages; channels 1..N-1 carry PAGES, an END_ROUND after
 * each round and a COMPLETE (their page count) at the end. Each page always
 * travels on the same channel, so the pages of one channel apply in order
 * and per-channel XBZRLE caches and compressors stay in step.
 *
 * The connections are accepted independently (each on its own thread) and
 * find each other in a struct session_table that the receiver owns (the
 * agent has one; a test makes its own): channel 0 publishes the session
 * with the RAM it fills; a secondary joins it (waiting a while for
 * channel 0 if it came first) and decodes its pages into that RAM. The
 * table outlives every session in it: destroy it only after the threads
 * that decode streams have ended.
 *
 * Barriers: channel 0 ACKs END_ROUND r only once every secondary has ended
 * round r too (so an ACK means "all of round r is in RAM"), and treats
 * COMPLETE only after every secondary has sent its COMPLETE. A failure on
 * any channel fails the session: channel 0 shuts the secondaries' streams
 * down and waits for them to leave before it frees the RAM, so no
 * secondary ever writes into freed memory.
 */
#ifndef KVMIG_MIGRATE_SESSION_H
#define KVMIG_MIGRATE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "migrate/mio.h"

struct session;
struct session_table;

/* An empty table of sessions, and its end (accepts NULL). Return: 0, -ENOMEM. */
int session_table_create(struct session_table **out) __must_check;
void session_table_destroy(struct session_table *t);

/* What a secondary needs to decode its pages. */
struct session_info {
	uint8_t *ram;		/* the RAM channel 0 fills */
	int ram_fd;		/* the same RAM as a file (migrate/pageplace.h) */
	uint64_t ram_bytes;
	uint32_t caps;		/* negotiated WIRE_CAP_* */
};

/*
 * Channel 0: publish session id for `channels` channels (2..64). Return 0,
 * -EEXIST (the id is in use), -ENOMEM.
 */
int session_open(struct session_table *t, uint64_t id, unsigned channels,
		 const struct session_info *info, struct session **out) __must_check;

/*
 * Channel 0 is done with the session: failed or not, mark it over, shut
 * down the streams of the secondaries still in it and wait until they
 * left. After this the RAM may be freed. s may be NULL.
 */
void session_close(struct session *s);

/* Channel 0: every secondary has ended round `round`. 0, or -errno and err. */
int session_wait_round(struct session *s, uint32_t round, int timeout_ms, char *err,
		       size_t errlen) __must_check;

/* Channel 0: every secondary sent COMPLETE; *pages: their pages in all. */
int session_wait_complete(struct session *s, int timeout_ms, uint64_t *pages, char *err,
			  size_t errlen) __must_check;

/*
 * A secondary: join session id as `channel` of `channels`, waiting up to
 * timeout_ms for channel 0 to publish it. io is shut down if the session
 * fails. Return 0, *out and *info; or -errno and err.
 */
int session_join(struct session_table *t, uint64_t id, unsigned channel, unsigned channels,
		 struct mio *io, int timeout_ms, struct session **out, struct session_info *info,
		 char *err, size_t errlen) __must_check;

/* A secondary ended round `round`. Return -ECANCELED when the session failed. */
int session_round(struct session *s, unsigned channel, uint32_t round) __must_check;

/* A secondary sent COMPLETE after `pages` pages. */
void session_complete(struct session *s, unsigned channel, uint64_t pages);

/*
 * A secondary leaves, with ret < 0 and err when it failed (which fails
 * the session). It must not touch the RAM after this.
 */
void session_leave(struct session *s, unsigned channel, int ret, const char *err);

#endif
