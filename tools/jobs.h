/* SPDX-License-Identifier: MIT */
/*
 * jobs.h - the agent's outgoing migration jobs, by VM name.
 *
 * A record holds a running job (migrate/migrate.h), and once the job has
 * ended and been reaped, its final statistics, so that job.info still
 * answers after completion. A name has at most one record: starting a new
 * job replaces the old one, and jobs_forget() drops it when the name is
 * reused by another VM. Finished records beyond JOBS_MAX_RECORDS are
 * dropped oldest first; running jobs are never dropped.
 *
 * jobs_stats_json() turns statistics into the API object: the names of
 * design.md (virsh domjobinfo / QEMU query-migrate) plus kvmig's
 * extensions.
 *
 * Threads: the agent's controller thread, under the agent lock. The jobs
 * themselves run on their own threads; this table only starts, queries,
 * cancels and reaps them.
 */
#ifndef KVMIG_TOOLS_JOBS_H
#define KVMIG_TOOLS_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "migrate/migrate.h"
#include "tools/registry.h"

#define JOBS_MAX_RECORDS (2 * REGISTRY_MAX_VMS)
#define JOBS_URI_MAX	 256

struct jobs;

/* Return: an empty table, or NULL when out of memory. */
struct jobs *jobs_new(void);

/*
 * Free the table. Every job must have ended and been reaped first
 * (jobs_shutdown). Accepts NULL.
 */
void jobs_free(struct jobs *t);

/*
 * Record a job that migrate_start() just started for VM name; the table
 * owns it from now on. Replaces the name's finished record.
 * Return: 0; -EBUSY when the name has a running job; -ENOSPC when the
 * table is full of running jobs.
 */
int jobs_add(struct jobs *t, const char *name, const char *uri,
	     struct migrate_job *job) __must_check;

/* Return: the running job of name, or NULL. */
struct migrate_job *jobs_running(struct jobs *t, const char *name);

/* Return: whether any job still runs (not yet reaped). */
bool jobs_any_running(const struct jobs *t);

/*
 * The latest statistics of name's job: live while it runs, final after.
 * uri (JOBS_URI_MAX bytes, may be NULL) receives the destination.
 * Return: 0, or -ENOENT when name has no record.
 */
int jobs_get(struct jobs *t, const char *name, struct migrate_stats *st, char *uri,
	     bool *running) __must_check;

/*
 * The destination of name's running job is now uri (job.resume --to URI),
 * what jobs_get() reports from now on (truncated to JOBS_URI_MAX - 1).
 * Return: 0, or -ENOENT when name has no running job.
 */
int jobs_set_uri(struct jobs *t, const char *name, const char *uri) __must_check;

/* Drop name's finished record (the name now belongs to another VM). */
void jobs_forget(struct jobs *t, const char *name);

/*
 * Called for each job that ended: name, migrate_wait()'s result (0: the
 * destination runs the VM; the source VM is paused and must be destroyed),
 * the final statistics.
 */
typedef void (*jobs_done_fn)(void *ctx, const char *name, int result,
			     const struct migrate_stats *st);

/*
 * Job events (migrate.h's migrate_next_event): sink gets each event of
 * each job once, in the job's order, with the record's name and uri;
 * lost is how many of that job's events the engine's ring dropped before
 * they were taken (0 unless the controller fell MIGRATE_EVENT_RING
 * behind). notify is set on every job added from now on and runs on the
 * job's thread after each event (migrate_set_event_notify): it should
 * wake the controller, which then calls jobs_poll_events().
 */
typedef void (*jobs_event_fn)(void *ctx, const char *name, const char *uri,
			      const struct migrate_event *ev, uint64_t lost);
void jobs_set_event_sink(struct jobs *t, jobs_event_fn sink, void (*notify)(void *ctx),
			 void *ctx);

/* Hand every running job's new events to the sink. */
void jobs_poll_events(struct jobs *t);

/*
 * Reap the jobs that have finished, calling done for each; a job's last
 * events (completed, failed or cancelled) go to the sink before done.
 */
void jobs_reap(struct jobs *t, jobs_done_fn done, void *ctx);

/* Cancel every running job, wait for them all, calling done for each. */
void jobs_shutdown(struct jobs *t, jobs_done_fn done, void *ctx);

/*
 * The API object for statistics: status, total_ms, downtime_ms, ...,
 * xbzrle {...}, compression {...}, postcopy {...}, the extensions, and
 * "error" when the job failed or was cancelled. name and uri are added
 * when not NULL. Return: a new object, or NULL when out of memory.
 */
json_t *jobs_stats_json(const char *name, const char *uri, const struct migrate_stats *st);

/*
 * The API object of an event (tools/API.md, events.subscribe): "event"
 * (its type), "time_ms", "vm" (name), "to" (uri), "status", and the
 * statistics that type carries, named as in jobs_stats_json(); "lost"
 * when lost > 0. The agent adds its "seq". Return: a new object, or NULL
 * when out of memory.
 */
json_t *jobs_event_json(const char *name, const char *uri, const struct migrate_event *ev,
			uint64_t lost);

#endif
