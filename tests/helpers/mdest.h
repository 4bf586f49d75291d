/* SPDX-License-Identifier: MIT */
/*
 * mdest.h - the other channels of a parallel migration, for in-process
 * tests and benches that play the destination themselves: after the
 * caller accepted channel 0 (the source connects it first), accept n more
 * connections and run each through incoming_run() on its own thread,
 * where they join channel 0's session (migrate/session.h).
 *
 * For fault tests: a connection that breaks after N frames (struct
 * mdest_cut), and mdest_others_start_cut() whose channel k breaks so.
 */
#ifndef KVMIG_TESTS_HELPERS_MDEST_H
#define KVMIG_TESTS_HELPERS_MDEST_H

#include <stddef.h>

#include "migrate/mio.h"
#include "protocol/channel.h"

struct mdest_others;

struct session_table;

/*
 * Start accepting n connections on l (n may be 0); they meet channel 0 in
 * sessions, the table the caller gave channel 0's incoming too. NULL when
 * out of memory.
 */
struct mdest_others *mdest_others_start(struct channel_listener *l, unsigned n,
					struct session_table *sessions);

/*
 * The same, but the connection of channel `channel` (1..n; 0: none) is
 * cut after `frames` frames, as with struct mdest_cut: a parallel channel
 * dropped mid-stream.
 */
struct mdest_others *mdest_others_start_cut(struct channel_listener *l, unsigned n,
					    struct session_table *sessions, unsigned channel,
					    unsigned frames);

/*
 * A link cut mid-stream, seen from the destination: a stream that reads
 * frames from inner and, when asked for frame number `frames` + 1, shuts
 * inner down (mio_shutdown: shutdown(SHUT_RDWR), no clean close) and
 * fails with -ECANCELED. Hand &cut->io to incoming_create() as the stream
 * and inner as the return path; inner stays the caller's to close.
 */
struct mdest_cut {
	struct mio io;
	struct mio *inner;
	unsigned frames;	/* frames to let through */
	unsigned seen;		/* frames read so far */
};

void mdest_cut_open(struct mdest_cut *c, struct mio *inner, unsigned frames);

/*
 * Wait for them all. Return 0 when every one ran to its COMPLETE; else
 * -errno with the first failure in err.
 */
int mdest_others_join(struct mdest_others *o, char *err, size_t errlen);

#endif
