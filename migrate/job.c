/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "migrate: "
#include "migrate/job.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "vm/vm.h"

int job_fail(struct migrate_job *j, int ret, const char *fmt, ...)
{
	va_list ap;

	if (!j->err[0]) {
		va_start(ap, fmt);
		vsnprintf(j->err, sizeof(j->err), fmt, ap);
		va_end(ap);
	}
	return ret;
}

int job_check_abort(struct migrate_job *j)
{
	if (atomic_load(&j->cancel))
		return job_fail(j, -ECANCELED, "cancelled by the user");
	if (j->deadline_ns && clock_now_ns() > j->deadline_ns)
		return job_fail(j, -ETIMEDOUT, "the migration ran past its %llu ms timeout",
				(unsigned long long)j->o.timeout_ms);
	return 0;
}

int job_send_ctrl(struct migrate_job *j, ssize_t n)
{
	int ret;

	if (n < 0)
		return job_fail(j, (int)n, "cannot build a control frame: %s", strerror((int)-n));
	ret = mio_write(&j->lanes[0].rl_io, j->ctrl, (size_t)n);
	if (!ret)
		ret = mio_flush(&j->lanes[0].rl_io);
	if (ret < 0)
		return job_fail(j, ret, "the destination is gone: %s", strerror(-ret));
	return 0;
}

void job_set_status(struct migrate_job *j, const char *s)
{
	pthread_mutex_lock(&j->lock);
	snprintf(j->st.status, sizeof(j->st.status), "%s", s);
	pthread_mutex_unlock(&j->lock);
}

/* ---- events ------------------------------------------------------------------ */

void job_events_init(struct job_events *e)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->lock, NULL);
}

void job_events_destroy(struct job_events *e)
{
	pthread_mutex_destroy(&e->lock);
}

uint64_t job_events_post(struct job_events *e, struct migrate_event *ev)
{
	void (*fn)(void *ctx);
	void *ctx;
	uint64_t seq;

	pthread_mutex_lock(&e->lock);
	seq = ++e->last;
	ev->seq = seq;
	e->ring[(seq - 1) % MIGRATE_EVENT_RING] = *ev;
	fn = e->notify;
	ctx = e->notify_ctx;
	pthread_mutex_unlock(&e->lock);
	if (fn)
		fn(ctx);
	return seq;
}

int job_events_next(struct job_events *e, uint64_t after_seq, struct migrate_event *ev)
{
	uint64_t oldest, seq;
	int ret = 0;

	pthread_mutex_lock(&e->lock);
	oldest = e->last > MIGRATE_EVENT_RING ? e->last - MIGRATE_EVENT_RING + 1 : 1;
	if (after_seq < e->last) {
		seq = after_seq + 1 < oldest ? oldest : after_seq + 1;
		*ev = e->ring[(seq - 1) % MIGRATE_EVENT_RING];
		ret = 1;
	}
	pthread_mutex_unlock(&e->lock);
	return ret;
}

void job_event_init(struct migrate_job *j, struct migrate_event *ev, const char *type)
{
	const struct migrate_stats *st = &j->st;
	struct timespec ts;

	memset(ev, 0, sizeof(*ev));
	clock_gettime(CLOCK_REALTIME, &ts);
	ev->time_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	snprintf(ev->type, sizeof(ev->type), "%s", type);
	pthread_mutex_lock(&j->lock);
	snprintf(ev->status, sizeof(ev->status), "%s", st->status);
	ev->round = st->round;
	ev->throttle_pct = st->throttle_pct;
	ev->reconnects = st->postcopy.reconnects;
	ev->verified = st->verified;
	ev->setup_ms = st->setup_ms;
	ev->total_ms = (clock_now_ns() - j->t0_ns) / 1000000;
	ev->downtime_ms = st->downtime_ms;
	ev->expected_downtime_ms = st->expected_downtime_ms;
	ev->transferred_bytes = st->transferred_bytes;
	ev->total_bytes = st->total_bytes;
	ev->remaining_bytes = st->remaining_bytes;
	ev->dirty_pages_rate = st->dirty_pages_rate;
	ev->bandwidth = st->bandwidth;
	ev->mbps = st->mbps;
	snprintf(ev->codec, sizeof(ev->codec), "%s", st->compression.codec);
	snprintf(ev->codec_reason, sizeof(ev->codec_reason), "%s", st->compression.reason);
	pthread_mutex_unlock(&j->lock);
}

void job_event_post(struct migrate_job *j, struct migrate_event *ev)
{
	uint64_t seq = job_events_post(&j->events, ev);

	pr_debug("%s: event %llu: %s", vm_get_config(j->vm)->name, (unsigned long long)seq,
		 ev->type);
}

void job_event(struct migrate_job *j, const char *type)
{
	struct migrate_event ev;

	job_event_init(j, &ev, type);
	job_event_post(j, &ev);
}
