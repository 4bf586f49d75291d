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
	struct mio io;

	mio_channel_open(&io, o->ch);
	o->ret = incoming_create(&io, &io, NULL, &inc);
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

struct mdest_others *mdest_others_start(struct channel_listener *l, unsigned n)
{
	struct mdest_others *m = calloc(1, sizeof(*m) + n * sizeof(m->o[0]));

	if (!m)
		return NULL;
	m->l = l;
	m->n = n;
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
