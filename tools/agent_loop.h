/* SPDX-License-Identifier: MIT */
/*
 * agent_loop.h - the controller's epoll loop: the control socket and its
 * clients, the migration listener, a signalfd for SIGTERM/SIGINT and an
 * eventfd the other threads use to wake it.
 *
 * Requests are served one at a time in arrival order: a long request
 * (vm.save of a big VM) delays the others, whose bytes wait in their
 * sockets, but each connection has its own input and output buffer, so
 * replies never mix. Output is written without blocking; a client that
 * does not read its replies only stalls itself. The loop wakes every
 * JOB_POLL_MS while jobs run and reaps those that ended
 * (agent_api_job_done()), and joins the incoming threads that are done.
 *
 * Threads: the controller calls everything here except agent_loop_wake(),
 * which any thread may call. The loop owns sfd, epfd, wakefd and the
 * clients (conns); it borrows the control socket (lfd) and the migration
 * listener from main.
 */
#ifndef KVMIG_TOOLS_AGENT_LOOP_H
#define KVMIG_TOOLS_AGENT_LOOP_H

#include "tools/agent.h"

/*
 * Block SIGTERM/SIGINT (call before any other thread exists, so that every
 * thread inherits the mask), open sfd, epfd and wakefd and add them, lfd
 * and the migration listener (if any) to the epoll set.
 * Return: 0, or -errno (logged for the fds it could not open).
 */
int agent_loop_init(struct agent *a);

/* Serve until a signal sets a->quit, or epoll_wait fails (logged; quit stays false). */
void agent_loop_run(struct agent *a);

/* Wake the loop from any thread, so that it reaps what ended. */
void agent_loop_wake(struct agent *a);

/*
 * Events (events.subscribe in tools/API.md). The loop gathers them at
 * each turn, woken by the jobs (each job event writes wakefd) and the
 * incoming threads: every job's events in the job's order, then what the
 * incoming threads queued. agent_loop_publish() numbers each with the
 * agent's next seq and appends it as one line to every subscriber whose
 * filter it passes, so every subscriber sees the same events in the same
 * order, seq strictly increasing. Writing never blocks the loop: a
 * subscriber's unsent events are bounded (SUB_MAX_BYTES in agent_loop.c);
 * one that falls further behind gets an "overflow" event in their place,
 * receives nothing more, and is closed once that line is out. A
 * subscriber's connection carries only events: what the client sends is
 * dropped; the subscription ends when the client closes it.
 */

/* Controller, under agent.lock: number ev (consumed) and queue it to the subscribers of vm. */
void agent_loop_publish(struct agent *a, const char *vm, json_t *ev);

/*
 * Any thread, with agent.lock held: queue ev (consumed; its "vm" member
 * picks the subscribers) for the controller to publish; then wake it
 * (agent_loop_wake). A full queue drops it (logged).
 */
void agent_loop_post_event(struct agent *a, json_t *ev);

/* Close every control client (at shutdown, once the loop has returned). */
void agent_loop_close_clients(struct agent *a);

/* Close sfd, epfd and wakefd; after every thread that may wake the loop is joined. */
void agent_loop_fini(struct agent *a);

#endif /* KVMIG_TOOLS_AGENT_LOOP_H */
