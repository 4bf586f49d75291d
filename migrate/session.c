/* SPDX-License-Identifier: MIT */
/*
 * session.c - a table of open parallel sessions with one lock and one
 * condition for all of them: sessions are few, their events (a join, a
 * round, a failure) come a few times per second, and one lock keeps the
 * lifetime rules obvious. Each session points at its table, whose lock
 * guards every field of every session in it.
 */
#include "migrate/session.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"

#define MAX_CHANNELS 64

struct session_table {
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* CLOCK_MONOTONIC */
	struct session *head;
};

struct session {
	struct session *next;
	struct session_table *t;
	uint64_t id;
	unsigned channels;
	struct session_info info;
	bool over;			/* channel 0 closed it */
	bool failed;
	char err[256];			/* the first secondary failure */
	uint64_t joined;		/* channels in the session now */
	uint64_t ever;			/* channels that ever joined */
	uint64_t complete;		/* channels that sent COMPLETE */
	uint32_t rounds[MAX_CHANNELS];	/* rounds ended, per channel */
	uint64_t pages[MAX_CHANNELS];
	struct mio *io[MAX_CHANNELS];
};

int session_table_create(struct session_table **out)
{
	struct session_table *t = calloc(1, sizeof(*t));
	pthread_condattr_t a;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &a);
	pthread_condattr_destroy(&a);
	*out = t;
	return 0;
}

void session_table_destroy(struct session_table *t)
{
	if (!t)
		return;
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static struct timespec deadline(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000l;
	if (ts.tv_nsec >= 1000000000l) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000l;
	}
	return ts;
}

static struct session *find(struct session_table *t, uint64_t id)
{
	struct session *s;

	for (s = t->head; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

int session_open(struct session_table *t, uint64_t id, unsigned channels,
		 const struct session_info *info, struct session **out)
{
	struct session *s;

	*out = NULL;
	if (channels < 2 || channels > MAX_CHANNELS)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->t = t;
	s->id = id;
	s->channels = channels;
	s->info = *info;
	pthread_mutex_lock(&t->lock);
	if (find(t, id)) {
		pthread_mutex_unlock(&t->lock);
		free(s);
		return -EEXIST;
	}
	s->next = t->head;
	t->head = s;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	*out = s;
	return 0;
}

void session_close(struct session *s)
{
	struct session **pp;
	struct session_table *t;

	if (!s)
		return;
	t = s->t;
	pthread_mutex_lock(&t->lock);
	for (pp = &t->head; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	s->over = true;
	for (unsigned c = 1; c < s->channels; c++)
		if (s->joined & (1ull << c))
			mio_shutdown(s->io[c]);
	while (s->joined)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	free(s);
}

/* Under the lock: why the session cannot go on, or NULL. */
static const char *broken(const struct session *s, unsigned *chan)
{
	if (s->failed)
		return s->err;
	for (unsigned c = 1; c < s->channels; c++) {
		/* joined once and gone before COMPLETE: it failed (err says how) */
		if ((s->ever & (1ull << c)) && !(s->joined & (1ull << c)) &&
		    !(s->complete & (1ull << c))) {
			*chan = c;
			return "its stream ended";
		}
	}
	return NULL;
}

/* Wait until ready(s) holds for every secondary, or the session breaks. */
static int wait_all(struct session *s, int timeout_ms, bool (*ready)(const struct session *, unsigned, uint32_t),
		    uint32_t arg, const char *what, char *err, size_t errlen)
{
	struct timespec ts = deadline(timeout_ms);
	int ret = 0;

	pthread_mutex_lock(&s->t->lock);
	for (;;) {
		unsigned c, chan = 0;
		const char *why = broken(s, &chan);

		if (why) {
			ret = chan ? err_set(-ECONNRESET, err, errlen,
					     "parallel channel %u failed: %s", chan, why)
				   : err_set(-ECONNRESET, err, errlen, "%s", why);
			break;
		}
		for (c = 1; c < s->channels && ready(s, c, arg); c++)
			;
		if (c == s->channels)
			break;
		if (pthread_cond_timedwait(&s->t->cond, &s->t->lock, &ts) == ETIMEDOUT) {
			ret = err_set(-ETIMEDOUT, err, errlen,
				      "parallel channel %u %s within %d s", c,
				      (s->ever & (1ull << c)) ? what : "never connected",
				      timeout_ms / 1000);
			break;
		}
	}
	pthread_mutex_unlock(&s->t->lock);
	return ret;
}

static bool round_ended(const struct session *s, unsigned c, uint32_t round)
{
	return s->rounds[c] > round;
}

static bool completed(const struct session *s, unsigned c, uint32_t unused)
{
	(void)unused;
	return s->complete & (1ull << c);
}

int session_wait_round(struct session *s, uint32_t round, int timeout_ms, char *err,
		       size_t errlen)
{
	return wait_all(s, timeout_ms, round_ended, round, "did not end the round", err, errlen);
}

int session_wait_complete(struct session *s, int timeout_ms, uint64_t *pages, char *err,
			  size_t errlen)
{
	int ret = wait_all(s, timeout_ms, completed, 0, "did not complete", err, errlen);

	*pages = 0;
	if (ret == 0) {
		pthread_mutex_lock(&s->t->lock);
		for (unsigned c = 1; c < s->channels; c++)
			*pages += s->pages[c];
		pthread_mutex_unlock(&s->t->lock);
	}
	return ret;
}

int session_join(struct session_table *t, uint64_t id, unsigned channel, unsigned channels,
		 struct mio *io, int timeout_ms, struct session **out, struct session_info *info,
		 char *err, size_t errlen)
{
	struct timespec ts = deadline(timeout_ms);
	struct session *s;
	int ret = 0;

	*out = NULL;
	if (channel == 0 || channel >= channels || channels > MAX_CHANNELS)
		return err_set(-EBADMSG, err, errlen, "HELLO: channel %u of %u", channel, channels);
	pthread_mutex_lock(&t->lock);
	while (!(s = find(t, id))) {
		if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) == ETIMEDOUT) {
			ret = err_set(-ENOENT, err, errlen,
				      "no migration with session %016llx arrived within %d s for "
				      "its channel %u",
				      (unsigned long long)id, timeout_ms / 1000, channel);
			goto out;
		}
	}
	if (s->channels != channels)
		ret = err_set(-EBADMSG, err, errlen,
			      "HELLO: channel %u says %u channels, the session has %u", channel,
			      channels, s->channels);
	else if (s->ever & (1ull << channel))
		ret = err_set(-EBADMSG, err, errlen, "HELLO: channel %u of session %016llx twice",
			      channel, (unsigned long long)id);
	else if (s->over || s->failed)
		ret = err_set(-ECANCELED, err, errlen, "the migration of session %016llx failed",
			      (unsigned long long)id);
	if (ret < 0)
		goto out;
	s->ever |= 1ull << channel;
	s->joined |= 1ull << channel;
	s->io[channel] = io;
	*info = s->info;
	*out = s;
	pthread_cond_broadcast(&t->cond);
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int session_round(struct session *s, unsigned channel, uint32_t round)
{
	int ret = 0;

	pthread_mutex_lock(&s->t->lock);
	if (s->over || s->failed)
		ret = -ECANCELED;
	else
		s->rounds[channel] = round + 1;
	pthread_cond_broadcast(&s->t->cond);
	pthread_mutex_unlock(&s->t->lock);
	return ret;
}

void session_complete(struct session *s, unsigned channel, uint64_t pages)
{
	pthread_mutex_lock(&s->t->lock);
	s->complete |= 1ull << channel;
	s->pages[channel] = pages;
	pthread_cond_broadcast(&s->t->cond);
	pthread_mutex_unlock(&s->t->lock);
}

void session_leave(struct session *s, unsigned channel, int ret, const char *err)
{
	pthread_mutex_lock(&s->t->lock);
	if (ret < 0 && !s->failed && !s->over) {
		s->failed = true;
		snprintf(s->err, sizeof(s->err), "parallel channel %u failed: %s", channel,
			 err && err[0] ? err : strerror(-ret));
	}
	s->joined &= ~(1ull << channel);
	s->io[channel] = NULL;
	pthread_cond_broadcast(&s->t->cond);
	pthread_mutex_unlock(&s->t->lock);
}
