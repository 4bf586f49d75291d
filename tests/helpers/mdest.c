/* SPDX-License-Identifier: MIT */
#include "tests/helpers/mdest.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/incoming.h"
#include "migrate/mio.h"

#define ACCEPT_TIMEOUT_MS 30000

struct other {
	struct channel *ch;
	unsigned cut_after;	/* frames before its connection is cut (0: never) */
	struct session_table *sessions;
	pthread_t thread;
	bool started;
	int ret;
	char err[512];
};

struct mdest_others {
	struct channel_listener *l;
	unsigned n;
	pthread_t acceptor;
	int ret;
	char err[512];
	struct other o[];
};

static void *other_thread(void *arg)
{
	struct other *o = arg;
	struct incoming *inc = NULL;
	struct vm *vm = NULL;
	struct mdest_cut cut;
	struct mio io, *in = &io;

	mio_channel_open(&io, o->ch);
	if (o->cut_after) {
		mdest_cut_open(&cut, &io, o->cut_after);
		in = &cut.io;
	}
	o->ret = incoming_create(in, &io, NULL, &inc);
	if (!o->ret)
		incoming_set_sessions(inc, o->sessions);
	if (!o->ret)
		o->ret = incoming_run(inc, &vm, o->err, sizeof(o->err));
	if (o->ret == 0) {
		/* a VM from a connection that should have been a parallel channel */
		vm_destroy(vm);
		o->ret = -EPROTO;
		snprintf(o->err, sizeof(o->err), "a second channel 0 arrived");
	}
	incoming_destroy(inc);
	mio_close(&io);
	return NULL;
}

static void *acceptor_thread(void *arg)
{
	struct mdest_others *m = arg;

	for (unsigned i = 0; i < m->n; i++) {
		struct other *o = &m->o[i];
		char msg[256];
		int ret = channel_accept(m->l, ACCEPT_TIMEOUT_MS, &o->ch, msg, sizeof(msg));

		if (ret == 0) {
			ret = channel_handshake(o->ch, msg, sizeof(msg));
			if (ret < 0) {
				channel_close(o->ch);
				o->ch = NULL;
			}
		}
		if (ret < 0) {
			m->ret = ret;
			snprintf(m->err, sizeof(m->err), "accept of channel %u: %s", i + 1, msg);
			break;
		}
		ret = pthread_create(&o->thread, NULL, other_thread, o);
		if (ret) {
			channel_close(o->ch);
			m->ret = -ret;
			snprintf(m->err, sizeof(m->err), "pthread_create: %s", strerror(ret));
			break;
		}
		o->started = true;
	}
	return NULL;
}

struct mdest_others *mdest_others_start(struct channel_listener *l, unsigned n,
					struct session_table *sessions)
{
	return mdest_others_start_cut(l, n, sessions, 0, 0);
}

struct mdest_others *mdest_others_start_cut(struct channel_listener *l, unsigned n,
					    struct session_table *sessions, unsigned channel,
					    unsigned frames)
{
	struct mdest_others *m = calloc(1, sizeof(*m) + n * sizeof(m->o[0]));

	if (!m)
		return NULL;
	m->l = l;
	m->n = n;
	for (unsigned i = 0; i < n; i++)
		m->o[i].sessions = sessions;
	if (channel >= 1 && channel <= n)
		m->o[channel - 1].cut_after = frames;
	if (pthread_create(&m->acceptor, NULL, acceptor_thread, m)) {
		free(m);
		return NULL;
	}
	return m;
}

int mdest_others_join(struct mdest_others *m, char *err, size_t errlen)
{
	int ret;

	pthread_join(m->acceptor, NULL);
	ret = m->ret;
	if (ret < 0)
		snprintf(err, errlen, "%s", m->err);
	for (unsigned i = 0; i < m->n; i++) {
		struct other *o = &m->o[i];

		if (!o->started)
			continue;
		pthread_join(o->thread, NULL);
		if (o->ret < 0 && ret >= 0) {
			ret = o->ret;
			snprintf(err, errlen, "channel %u: %s", i + 1, o->err);
		}
	}
	free(m);
	return ret < 0 ? ret : 0;
}

/* ---- a connection cut after N frames ------------------------------------- */

static int cut_read_frame(struct mio *io, uint8_t *buf, size_t cap, struct frame_hdr *h,
			  char *err, size_t errlen)
{
	struct mdest_cut *c = io->priv;
	int ret;

	if (c->seen >= c->frames) {
		if (c->seen++ == c->frames)
			mio_shutdown(c->inner);
		snprintf(err, errlen, "this side cut the connection after %u frames", c->frames);
		return -ECANCELED;
	}
	ret = mio_read_frame(c->inner, buf, cap, h, err, errlen);
	io->bytes_in = c->inner->bytes_in;
	if (ret == 0)
		c->seen++;
	return ret;
}

static int cut_wait(struct mio *io, int timeout_ms)
{
	struct mdest_cut *c = io->priv;

	return mio_wait_readable(c->inner, timeout_ms);
}

static void cut_shutdown(struct mio *io)
{
	struct mdest_cut *c = io->priv;

	mio_shutdown(c->inner);
}

void mdest_cut_open(struct mdest_cut *c, struct mio *inner, unsigned frames)
{
	memset(c, 0, sizeof(*c));
	c->inner = inner;
	c->frames = frames;
	c->io.read_frame = cut_read_frame;
	c->io.wait = cut_wait;
	c->io.shutdown = cut_shutdown;
	c->io.priv = c;
}
