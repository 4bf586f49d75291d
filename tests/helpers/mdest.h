/* SPDX-License-Identifier: MIT */
/*
 * mdest.h - the other channels of a parallel migration, for in-process
 * tests and benches that play the destination themselves: after the
 * caller accepted channel 0 (the source connects it first), accept n more
 * connections and run each through incoming_run() on its own thread,
 * where they join channel 0's session (migrate/session.h).
 */
#ifndef KVMIG_TESTS_HELPERS_MDEST_H
#define KVMIG_TESTS_HELPERS_MDEST_H

#include <stddef.h>

#include "protocol/channel.h"

struct mdest_others;

/* Start accepting n connections on l (n may be 0). NULL when out of memory. */
struct mdest_others *mdest_others_start(struct channel_listener *l, unsigned n);

/*
 * Wait for them all. Return 0 when every one ran to its COMPLETE; else
 * -errno with the first failure in err.
 */
int mdest_others_join(struct mdest_others *o, char *err, size_t errlen);

#endif
