/* SPDX-License-Identifier: MIT */
#include "tools/jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/codec.h"
#include "tools/control.h"

struct job_record {
	bool used;
	char name[VM_NAME_MAX];
	char uri[JOBS_URI_MAX];
	struct migrate_job *job; /* NULL once reaped */
	struct migrate_stats final;
	uint64_t seq; /* order of creation, for eviction */
	uint64_t ev_seq; /* the job's newest event handed to the sink */
};

struct jobs {
	struct job_record r[JOBS_MAX_RECORDS];
	uint64_t seq;
	jobs_event_fn sink;
	void (*notify)(void *ctx);
	void *ctx;
};

struct jobs *jobs_new(void)
{
	return calloc(1, sizeof(struct jobs));
}

void jobs_free(struct jobs *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < JOBS_MAX_RECORDS; i++)
		if (t->r[i].used && t->r[i].job)
			migrate_job_free(t->r[i].job); /* joins: should not happen */
	free(t);
}

static struct job_record *find(struct jobs *t, const char *name)
{
	for (size_t i = 0; i < JOBS_MAX_RECORDS; i++)
		if (t->r[i].used && !strcmp(t->r[i].name, name))
			return &t->r[i];
	return NULL;
}

int jobs_add(struct jobs *t, const char *name, const char *uri, struct migrate_job *job)
{
	struct job_record *rec = find(t, name);

	if (rec && rec->job)
		return -EBUSY;
	if (!rec) {
		/* a free slot, else the oldest finished record */
		for (size_t i = 0; i < JOBS_MAX_RECORDS; i++) {
			struct job_record *c = &t->r[i];

			if (!c->used) {
				rec = c;
				break;
			}
			if (!c->job && (!rec || c->seq < rec->seq))
				rec = c;
		}
		if (!rec)
			return -ENOSPC;
	}
	memset(rec, 0, sizeof(*rec));
	rec->used = true;
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	snprintf(rec->uri, sizeof(rec->uri), "%s", uri);
	rec->job = job;
	rec->seq = ++t->seq;
	if (t->notify)
		migrate_set_event_notify(job, t->notify, t->ctx);
	return 0;
}

void jobs_set_event_sink(struct jobs *t, jobs_event_fn sink, void (*notify)(void *ctx), void *ctx)
{
	t->sink = sink;
	t->notify = notify;
	t->ctx = ctx;
}

static void take_events(struct jobs *t, struct job_record *rec)
{
	struct migrate_event ev;

	while (migrate_next_event(rec->job, rec->ev_seq, &ev)) {
		uint64_t lost = ev.seq - rec->ev_seq - 1;

		rec->ev_seq = ev.seq;
		if (t->sink)
			t->sink(t->ctx, rec->name, rec->uri, &ev, lost);
	}
}

void jobs_poll_events(struct jobs *t)
{
	for (size_t i = 0; i < JOBS_MAX_RECORDS; i++)
		if (t->r[i].used && t->r[i].job)
			take_events(t, &t->r[i]);
}

struct migrate_job *jobs_running(struct jobs *t, const char *name)
{
	struct job_record *rec = find(t, name);

	return rec ? rec->job : NULL;
}

bool jobs_any_running(const struct jobs *t)
{
	for (size_t i = 0; i < JOBS_MAX_RECORDS; i++)
		if (t->r[i].used && t->r[i].job)
			return true;
	return false;
}

int jobs_get(struct jobs *t, const char *name, struct migrate_stats *st, char *uri, bool *running)
{
	struct job_record *rec = find(t, name);

	if (!rec)
		return -ENOENT;
	if (rec->job)
		migrate_get_stats(rec->job, st);
	else
		*st = rec->final;
	if (uri)
		snprintf(uri, JOBS_URI_MAX, "%s", rec->uri);
	if (running)
		*running = rec->job != NULL;
	return 0;
}

int jobs_set_uri(struct jobs *t, const char *name, const char *uri)
{
	struct job_record *rec = find(t, name);

	if (!rec || !rec->job)
		return -ENOENT;
	snprintf(rec->uri, sizeof(rec->uri), "%s", uri);
	return 0;
}

void jobs_forget(struct jobs *t, const char *name)
{
	struct job_record *rec = find(t, name);

	if (rec && !rec->job)
		memset(rec, 0, sizeof(*rec));
}

static void reap_one(struct jobs *t, struct job_record *rec, jobs_done_fn done, void *ctx)
{
	int result = migrate_wait(rec->job);

	take_events(t, rec);
	migrate_get_stats(rec->job, &rec->final);
	migrate_job_free(rec->job);
	rec->job = NULL;
	if (done)
		done(ctx, rec->name, result, &rec->final);
}

void jobs_reap(struct jobs *t, jobs_done_fn done, void *ctx)
{
	for (size_t i = 0; i < JOBS_MAX_RECORDS; i++) {
		struct job_record *rec = &t->r[i];

		if (rec->used && rec->job && migrate_finished(rec->job))
			reap_one(t, rec, done, ctx);
	}
}

void jobs_shutdown(struct jobs *t, jobs_done_fn done, void *ctx)
{
	for (size_t i = 0; i < JOBS_MAX_RECORDS; i++)
		if (t->r[i].used && t->r[i].job)
			migrate_cancel(t->r[i].job);
	for (size_t i = 0; i < JOBS_MAX_RECORDS; i++)
		if (t->r[i].used && t->r[i].job)
			reap_one(t, &t->r[i], done, ctx);
}

/* ---- the API object ---- */

static void put_u64(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void put_real(json_t *o, const char *key, double v)
{
	/* three decimals are plenty and keep the output stable */
	json_object_set_new(o, key, json_real((double)(long long)(v * 1000.0 + 0.5) / 1000.0));
}

json_t *jobs_stats_json(const char *name, const char *uri, const struct migrate_stats *st)
{
	json_t *o = json_object(), *x = json_object(), *c = json_object(), *p = json_object();
	json_t *t = json_object();

	if (!o || !x || !c || !p || !t) {
		json_decref(o);
		json_decref(x);
		json_decref(c);
		json_decref(p);
		json_decref(t);
		return NULL;
	}
	if (name)
		json_object_set_new(o, "name", ctl_string_lossy(name, strlen(name)));
	if (uri)
		json_object_set_new(o, "uri", ctl_string_lossy(uri, strlen(uri)));
	json_object_set_new(o, "status", json_string(st->status[0] ? st->status : "setup"));
	put_u64(o, "total_ms", st->total_ms);
	put_u64(o, "downtime_ms", st->downtime_ms);
	put_u64(o, "setup_ms", st->setup_ms);
	put_u64(o, "expected_downtime_ms", st->expected_downtime_ms);
	put_u64(o, "transferred_bytes", st->transferred_bytes);
	put_u64(o, "total_bytes", st->total_bytes);
	put_u64(o, "remaining_bytes", st->remaining_bytes);
	put_u64(o, "duplicate_pages", st->duplicate_pages);
	put_u64(o, "normal_pages", st->normal_pages);
	put_u64(o, "dirty_sync_count", st->dirty_sync_count);
	put_u64(o, "dirty_pages_rate", st->dirty_pages_rate);
	put_real(o, "mbps", st->mbps);

	put_u64(x, "cache_size", st->xbzrle.cache_size);
	put_u64(x, "bytes", st->xbzrle.bytes);
	put_u64(x, "pages", st->xbzrle.pages);
	put_u64(x, "cache_miss", st->xbzrle.cache_miss);
	put_u64(x, "overflow", st->xbzrle.overflow);
	json_object_set_new(o, "xbzrle", x);

	put_real(c, "ratio", st->compression.ratio);
	put_real(c, "busy", st->compression.busy);
	put_u64(c, "pages", st->compression.pages);
	json_object_set_new(c, "mode", json_string(st->compression.mode));
	json_object_set_new(c, "codec", json_string(st->compression.codec));
	json_object_set_new(c, "reason", json_string(st->compression.reason));
	put_u64(c, "switches", st->compression.switches);
	json_object_set_new(o, "compression", c);

	/* design.md's names; "p99" is the older alias of fault_latency_us_p99 */
	put_u64(p, "requests", st->postcopy.requests);
	put_u64(p, "pages_pushed", st->postcopy.pages_pushed);
	put_u64(p, "fault_latency_us_p50", st->postcopy.fault_latency_us_p50);
	put_u64(p, "p99", st->postcopy.fault_latency_us_p99);
	put_u64(p, "fault_latency_us_p99", st->postcopy.fault_latency_us_p99);
	put_u64(p, "blocked_ms", st->postcopy.blocked_ms);
	put_u64(p, "bytes_after_switchover", st->postcopy.bytes_after_switchover);
	/* extensions */
	put_u64(p, "pages_missing", st->postcopy.pages_missing);
	put_u64(p, "reconnects", st->postcopy.reconnects);
	json_object_set_new(p, "active", json_boolean(st->postcopy.active));
	json_object_set_new(o, "postcopy", p);

	/* kind is empty only before the connection exists */
	json_object_set_new(t, "kind", json_string(st->transport.kind[0] ? st->transport.kind : ""));
	json_object_set_new(t, "cipher", json_string(st->transport.cipher));
	json_object_set_new(t, "ktls", json_boolean(st->transport.ktls));
	json_object_set_new(o, "transport", t);

	{
		json_t *an = json_object();

		if (an) {
			put_u64(an, "frames", st->announce.frames);
			put_real(an, "first_ms", (double)st->announce.first_us / 1000.0);
			json_object_set_new(o, "announce", an);
		}
	}

	{
		/* the switchover's timeline: start_us from the job's start, the rest from it */
		json_t *sw = json_object();

		if (sw) {
			put_u64(sw, "start_us", st->switchover.start_us);
			put_u64(sw, "paused_us", st->switchover.paused_us);
			put_u64(sw, "synced_us", st->switchover.synced_us);
			put_u64(sw, "pages_us", st->switchover.pages_us);
			put_u64(sw, "state_us", st->switchover.state_us);
			put_u64(sw, "sent_us", st->switchover.sent_us);
			put_u64(sw, "ready_us", st->switchover.ready_us);
			put_u64(sw, "resumed_us", st->switchover.resumed_us);
			put_u64(sw, "pages", st->switchover.pages);
			put_u64(sw, "bytes", st->switchover.bytes);
			put_u64(sw, "state_bytes", st->switchover.state_bytes);
			put_u64(sw, "expected_us", st->switchover.expected_us);
			json_object_set_new(sw, "reason", json_string(st->switchover.reason));
			json_object_set_new(o, "switchover", sw);
		}
	}

	/* extensions */
	put_u64(o, "round", st->round);
	put_u64(o, "throttle_pct", st->throttle_pct);
	put_u64(o, "bandwidth", st->bandwidth);
	put_u64(o, "bandwidth_limit", st->bandwidth_limit);
	put_u64(o, "ring_overflows", st->ring_overflows);
	put_u64(o, "parallel", st->parallel);
	json_object_set_new(o, "verified", json_boolean(st->verified));
	/* a post-copy waiting to resume says why too */
	if (!strcmp(st->status, "failed") || !strcmp(st->status, "cancelled") ||
	    (!strcmp(st->status, "postcopy-paused") && st->error[0])) {
		const char *e = st->error[0] ? st->error : "unknown error";

		/* the text may quote the destination: keep it valid UTF-8 */
		json_object_set_new(o, "error", ctl_string_lossy(e, strnlen(e, sizeof(st->error))));
	}
	return o;
}

/* ---- the event object ---- */

json_t *jobs_event_json(const char *name, const char *uri, const struct migrate_event *ev,
			uint64_t lost)
{
	json_t *o = json_object();
	const char *t = ev->type;

	if (!o)
		return NULL;
	json_object_set_new(o, "event", json_string(t));
	put_u64(o, "time_ms", ev->time_ms);
	json_object_set_new(o, "vm", ctl_string_lossy(name, strlen(name)));
	json_object_set_new(o, "to", ctl_string_lossy(uri, strlen(uri)));
	json_object_set_new(o, "status", json_string(ev->status));
	if (!strcmp(t, "started")) {
		put_u64(o, "setup_ms", ev->setup_ms);
		put_u64(o, "total_bytes", ev->total_bytes);
	} else if (!strcmp(t, "round")) {
		put_u64(o, "round", ev->round);
		put_u64(o, "transferred_bytes", ev->transferred_bytes);
		put_u64(o, "remaining_bytes", ev->remaining_bytes);
		put_u64(o, "dirty_pages_rate", ev->dirty_pages_rate);
		put_real(o, "mbps", ev->mbps);
		put_u64(o, "bandwidth", ev->bandwidth);
		put_u64(o, "expected_downtime_ms", ev->expected_downtime_ms);
		put_u64(o, "throttle_pct", ev->throttle_pct);
		json_object_set_new(o, "codec", json_string(ev->codec));
		json_object_set_new(o, "codec_reason", json_string(ev->codec_reason));
	} else if (!strcmp(t, "switchover")) {
		json_object_set_new(o, "mode", json_string(ev->mode));
		put_u64(o, "rounds", ev->rounds);
		put_u64(o, "transferred_bytes", ev->transferred_bytes);
		put_u64(o, "remaining_bytes", ev->remaining_bytes);
		json_object_set_new(o, "reason", json_string(ev->reason));
		put_u64(o, "expected_downtime_ms", ev->expected_downtime_ms);
		json_object_set_new(o, "codec", json_string(ev->codec));
		json_object_set_new(o, "codec_reason", json_string(ev->codec_reason));
	} else if (!strcmp(t, "postcopy")) {
		put_u64(o, "downtime_ms", ev->downtime_ms);
		put_u64(o, "transferred_bytes", ev->transferred_bytes);
		put_u64(o, "remaining_bytes", ev->remaining_bytes);
	} else if (!strcmp(t, "postcopy-paused")) {
		put_u64(o, "remaining_bytes", ev->remaining_bytes);
	} else if (!strcmp(t, "resumed")) {
		put_u64(o, "reconnects", ev->reconnects);
		put_u64(o, "remaining_bytes", ev->remaining_bytes);
	} else if (!strcmp(t, "completed")) {
		put_u64(o, "total_ms", ev->total_ms);
		put_u64(o, "downtime_ms", ev->downtime_ms);
		put_u64(o, "transferred_bytes", ev->transferred_bytes);
		json_object_set_new(o, "verified", json_boolean(ev->verified));
	} else if (!strcmp(t, "failed") || !strcmp(t, "cancelled")) {
		put_u64(o, "total_ms", ev->total_ms);
		put_u64(o, "transferred_bytes", ev->transferred_bytes);
	}
	if (ev->error[0])
		json_object_set_new(o, "error",
				    ctl_string_lossy(ev->error, strnlen(ev->error, sizeof(ev->error))));
	else if (!strcmp(t, "failed") || !strcmp(t, "cancelled"))
		json_object_set_new(o, "error", json_string("unknown error"));
	if (lost)
		put_u64(o, "lost", lost);
	return o;
}
