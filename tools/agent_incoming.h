/* SPDX-License-Identifier: MIT */
/*
 * agent_incoming.h - migrations arriving on the agent's --listen socket.
 *
 * The controller accepts each connection that waits on the migration
 * listener and gives it a thread that runs the incoming decoder
 * (migrate/incoming.h). HELLO reserves the VM's name in the registry
 * (state "incoming"), so nothing else takes it while the pages arrive; once
 * the stream is in, the thread attaches the VM, hands it over (READY/GO),
 * starts it and hands the entry to the controller (phase NONE). Any failure
 * leaves nothing behind: the reservation is dropped, a VM that was built
 * is destroyed, and a refused stream's input is drained before the close
 * so that the source reads the ERROR frame.
 *
 * Threads: agent_incoming_*() run on the controller, which owns the table
 * of connections (a->inc). Each incoming thread owns its connection and
 * takes agent.lock only for a moment (reserve, attach, hand over, drop);
 * when done it sets its flag and wakes the loop (agent_loop_wake()).
 */
#ifndef KVMIG_TOOLS_AGENT_INCOMING_H
#define KVMIG_TOOLS_AGENT_INCOMING_H

#include "tools/agent.h"

/*
 * The migration listener is readable: take every connection that waits
 * (never blocks the loop) and give each a thread. A connection beyond
 * AGENT_MAX_INCOMING, or one whose thread cannot start, is closed (logged).
 */
void agent_incoming_accept(struct agent *a, unsigned listener);

/*
 * Run one incoming migration on ch (taken, closed on failure too), as if
 * accepted: a stream handed over by `kvmigd --incoming stdio`
 * (incoming.adopt). peer names it in the log. notify_fd (taken; -1 for
 * none) gets one line at the end, {"event":"incoming.end","ok":BOOL
 * [,"error":TEXT]}. Return: 0, -EBUSY (too many arriving), -errno; err
 * says why (notify_fd is then the caller's again).
 */
struct channel;
#define AGENT_INCOMING_IO_TIMEOUT_MS 30000 /* a silent source fails its stream */
int agent_incoming_start(struct agent *a, struct channel *ch, const char *peer, int notify_fd,
			 char *err, size_t errlen) __must_check;

/* Join the incoming threads that are done and free their records. */
void agent_incoming_reap(struct agent *a);

/*
 * At shutdown, after a->closing is set and the listener closed: shut the
 * arriving streams down and join every incoming thread. Call without
 * agent.lock: the threads take it to drop their reservation.
 */
void agent_incoming_shutdown(struct agent *a);

#endif /* KVMIG_TOOLS_AGENT_INCOMING_H */
