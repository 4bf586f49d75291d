/* SPDX-License-Identifier: MIT */
/*
 * agent_loop.c - the controller's epoll loop and the control connections.
 * See agent_loop.h.
 */
#define LOG_PREFIX "kvmigd: "
#include "tools/agent_loop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/log.h"
#include "protocol/channel.h"
#include "tools/agent_api.h"
#include "tools/agent_incoming.h"
#include "tools/control.h"
#include "tools/jobs.h"

#define JOB_POLL_MS  100  /* how often the loop looks at running jobs */
/*
 * A subscriber's unsent events may hold this many bytes (some hundreds of
 * events) beyond what its socket buffers; one more and it gets an
 * "overflow" event and is dropped (agent_loop.h).
 */
#define SUB_MAX_BYTES (256u << 10)
#define EV_LISTEN    0
#define EV_SIGNAL    1
#define EV_WAKE	     3
#define EV_CONN0     4
#define EV_MIGLISTEN0 1000	/* + the listener's index */

/* One control client, in a->conns[slot]; the controller's alone. */
struct agent_conn {
	int fd;
	unsigned slot;
	struct ctl_linebuf in;
	char *out;
	size_t out_len, out_off, out_cap;
	bool eof;  /* the client shut down its side */
	bool dead; /* write error: close without further work */
	int fds[CTL_MAX_FDS]; /* descriptors that came with the bytes (SCM_RIGHTS), */
	unsigned nfds;	      /* for the next request: incoming.adopt takes them */
	bool subscriber;      /* events.subscribe: from now on the connection carries events */
	bool dropping;	      /* it overflowed: no more events; closed once its output is out */
	char vm[AGENT_EVENT_VM_MAX]; /* its filter: only this VM's events ("": all) */
};

static void conn_drop_fds(struct agent_conn *c)
{
	while (c->nfds)
		close(c->fds[--c->nfds]);
}

/* ---- connections ---- */

static void conn_close(struct agent *a, struct agent_conn *c)
{
	if (c->subscriber && !c->dropping)
		a->subscribers--;
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	conn_drop_fds(c);
	ctl_linebuf_free(&c->in);
	free(c->out);
	a->conns[c->slot] = NULL;
	free(c);
}

/* Append len bytes of whole lines to c's output. Return: 0 or -ENOMEM. */
static int conn_append(struct agent_conn *c, const char *s, size_t len)
{
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > c->out_cap) {
		size_t ncap = MAX(c->out_len + len, 2 * c->out_cap);
		char *nb = realloc(c->out, ncap);

		if (!nb)
			return -ENOMEM;
		c->out = nb;
		c->out_cap = ncap;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out_len += len;
	return 0;
}

static int conn_queue(struct agent_conn *c, json_t *resp)
{
	size_t len;
	char *s = resp ? ctl_encode(resp, &len) : NULL;
	int ret;

	json_decref(resp);
	if (!s)
		return -ENOMEM;
	ret = conn_append(c, s, len);
	free(s);
	return ret;
}

static void conn_flush(struct agent_conn *c)
{
	while (c->out_off < c->out_len && !c->dead) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN /* = EWOULDBLOCK on Linux */)
				c->dead = true;
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
}

/* A subscriber's connection carries events only: what the client sends is dropped. */
static void conn_discard_input(struct agent_conn *c)
{
	char *line;
	size_t len;

	while (ctl_linebuf_next(&c->in, &line, &len) != 0)
		;
	if (c->eof)
		while (ctl_linebuf_take_rest(&c->in, &line, &len) != 0)
			;
}

/* Serve every complete request buffered on c while its output drains. */
static void conn_process(struct agent *a, struct agent_conn *c)
{
	while (!c->dead && !a->quit) {
		char *line;
		size_t len;
		json_t *resp;
		int r;

		if (c->subscriber) {
			conn_discard_input(c);
			return;
		}
		if (c->out_len > c->out_off) {
			conn_flush(c);
			if (c->out_len > c->out_off)
				return; /* wait for EPOLLOUT */
		}
		r = ctl_linebuf_next(&c->in, &line, &len);
		if (r == 0 && c->eof)
			r = ctl_linebuf_take_rest(&c->in, &line, &len);
		if (r == 0)
			return;
		if (r == -EMSGSIZE) {
			resp = ctl_response_error("bad request: line longer than %u bytes",
						  CTL_REQUEST_MAX);
		} else {
			pthread_mutex_lock(&a->lock);
			a->req_fds = c->fds;
			a->req_nfds = &c->nfds;
			a->req_conn_fd = c->fd;
			a->req_subscribe = false;
			resp = agent_api_handle_request(a, line, len);
			a->req_fds = NULL;
			a->req_nfds = NULL;
			a->req_conn_fd = -1;
			if (a->req_subscribe) {
				/* the reply goes first, then only events */
				c->subscriber = true;
				snprintf(c->vm, sizeof(c->vm), "%s", a->req_subscribe_vm);
				a->subscribers++;
				a->req_subscribe = false;
				pr_debug("client %u subscribed to the events%s%s", c->slot,
					 c->vm[0] ? " of VM " : "", c->vm);
			}
			pthread_mutex_unlock(&a->lock);
		}
		/* descriptors belong to the request they came with: what it left is closed */
		conn_drop_fds(c);
		if (conn_queue(c, resp) < 0)
			c->dead = true;
	}
}

/*
 * What c waits for: a client, its next request (EPOLLIN) or room for its
 * replies (EPOLLOUT), one at a time; a subscriber, room for its events
 * and, until it shut its side down, input (dropped) so that its close is
 * seen. EPOLLHUP and EPOLLERR come anyway.
 */
static void conn_arm(struct agent *a, struct agent_conn *c)
{
	struct epoll_event ev = {0};
	bool want_out = c->out_len > c->out_off;

	if (c->subscriber)
		ev.events = (c->eof ? 0 : EPOLLIN) | (want_out ? EPOLLOUT : 0);
	else
		ev.events = want_out ? EPOLLOUT : EPOLLIN;
	ev.data.u64 = EV_CONN0 + c->slot;
	epoll_ctl(a->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Must c be closed now? */
static bool conn_done(const struct agent_conn *c)
{
	bool want_out = c->out_len > c->out_off;

	if (c->dead)
		return true;
	if (c->subscriber)
		return c->dropping && !want_out;
	return c->eof && !want_out;
}

static void conn_event(struct agent *a, struct agent_conn *c, uint32_t events)
{
	/* a subscriber gone (both sides closed): nothing more to send it */
	if (c->subscriber && (events & (EPOLLHUP | EPOLLERR)))
		c->dead = true;
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->eof && !c->dead &&
	    (c->out_len == c->out_off || c->subscriber)) {
		int fds[CTL_MAX_FDS];
		unsigned nfds;
		ssize_t n = ctl_linebuf_read_fds(&c->in, c->fd, fds, &nfds);

		if (nfds) {
			conn_drop_fds(c);
			memcpy(c->fds, fds, nfds * sizeof(int));
			c->nfds = nfds;
		}
		if (n == 0)
			c->eof = true;
		else if (n < 0 && n != -EAGAIN)
			c->dead = true;
	}
	if ((events & EPOLLERR) && !(events & EPOLLIN))
		c->dead = true;
	conn_process(a, c);
	conn_flush(c);
	if (conn_done(c)) {
		conn_close(a, c);
		return;
	}
	conn_arm(a, c);
}

/* ---- events ---- */

/*
 * c read too slowly: its unsent events stay (whole lines), the overflow
 * line goes behind them, and nothing more; the connection closes once
 * that is out. seq is the first event it does not get.
 */
static void sub_overflow(struct agent *a, struct agent_conn *c, uint64_t seq)
{
	json_t *o = json_object();
	struct timespec ts;
	char msg[200];

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(msg, sizeof(msg),
		 "this subscriber read too slowly: more than %u KiB of events waited for it; "
		 "events from seq %llu on are not sent (subscribe again)",
		 SUB_MAX_BYTES >> 10, (unsigned long long)seq);
	json_object_set_new(o, "event", json_string("overflow"));
	json_object_set_new(o, "seq", json_integer((json_int_t)seq));
	json_object_set_new(o, "time_ms", json_integer((json_int_t)((uint64_t)ts.tv_sec * 1000 +
								 (uint64_t)ts.tv_nsec / 1000000)));
	json_object_set_new(o, "error", json_string(msg));
	c->dropping = true;
	a->subscribers--;	/* it receives nothing more */
	if (conn_queue(c, o) < 0)
		c->dead = true;
	pr_warn("event subscriber %u dropped: it read too slowly (at seq %llu)", c->slot,
		(unsigned long long)seq);
}

void agent_loop_publish(struct agent *a, const char *vm, json_t *ev)
{
	uint64_t seq = ++a->event_seq;
	size_t len;
	char *line;

	json_object_set_new(ev, "seq", json_integer((json_int_t)seq));
	line = ctl_encode(ev, &len);
	json_decref(ev);
	if (!line) {
		pr_warn("event %llu lost: out of memory", (unsigned long long)seq);
		return;
	}
	for (unsigned i = 0; i < AGENT_MAX_CONNS; i++) {
		struct agent_conn *c = a->conns[i];

		if (!c || !c->subscriber || c->dropping || c->dead)
			continue;
		if (c->vm[0] && (!vm || strcmp(c->vm, vm)))
			continue;
		if (c->out_len - c->out_off + len > SUB_MAX_BYTES)
			sub_overflow(a, c, seq);
		else if (conn_append(c, line, len) < 0)
			c->dead = true;
		conn_flush(c);
		if (!c->dead)
			conn_arm(a, c);
	}
	free(line);
}

void agent_loop_post_event(struct agent *a, json_t *ev)
{
	if (a->n_in_events == AGENT_MAX_IN_EVENTS) {
		a->in_events_lost++;
		json_decref(ev);
		return;
	}
	a->in_events[a->n_in_events++] = ev;
}

/* The engine's jobs' events (jobs_set_event_sink), under the lock. */
static void job_event(void *ctx, const char *name, const char *uri, const struct migrate_event *ev,
		      uint64_t lost)
{
	struct agent *a = ctx;
	json_t *o = jobs_event_json(name, uri, ev, lost);

	if (lost)
		pr_warn("VM '%s': %llu job event(s) lost (the agent fell %u events behind)", name,
			(unsigned long long)lost, MIGRATE_EVENT_RING);
	if (o)
		agent_loop_publish(a, name, o);
}

static void job_notify(void *ctx)
{
	agent_loop_wake(ctx);
}

/* Under the lock: every event waiting, the jobs' and the incoming threads', out. */
static void publish_pending(struct agent *a)
{
	jobs_poll_events(a->jobs);
	for (unsigned i = 0; i < a->n_in_events; i++) {
		json_t *o = a->in_events[i];

		a->in_events[i] = NULL;
		agent_loop_publish(a, json_string_value(json_object_get(o, "vm")), o);
	}
	a->n_in_events = 0;
	if (a->in_events_lost) {
		pr_warn("%llu incoming event(s) lost: the queue was full",
			(unsigned long long)a->in_events_lost);
		a->in_events_lost = 0;
	}
}

/* Close the subscribers that publishing found dead or done (not during a request). */
static void sweep_subscribers(struct agent *a)
{
	for (unsigned i = 0; i < AGENT_MAX_CONNS; i++) {
		struct agent_conn *c = a->conns[i];

		if (c && c->subscriber && conn_done(c))
			conn_close(a, c);
	}
}

static void accept_clients(struct agent *a)
{
	for (;;) {
		struct epoll_event ev = {.events = EPOLLIN};
		struct agent_conn *c;
		unsigned slot;
		int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN /* = EWOULDBLOCK on Linux */)
				pr_warn("accept: %s", strerror(errno));
			return;
		}
		for (slot = 0; slot < AGENT_MAX_CONNS && a->conns[slot]; slot++)
			;
		c = slot < AGENT_MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
		if (!c || ctl_linebuf_init(&c->in, CTL_REQUEST_MAX) < 0) {
			static const char msg[] =
				"{\"ok\":false,\"error\":\"agent busy: too many connections\"}\n";

			pr_warn("refusing a client: %s",
				slot < AGENT_MAX_CONNS ? "out of memory" : "too many connections");
			if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				pr_debug("refusal not sent: %s", strerror(errno));
			close(fd);
			free(c);
			continue;
		}
		c->fd = fd;
		c->slot = slot;
		ev.data.u64 = EV_CONN0 + slot;
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			pr_warn("epoll_ctl: %s", strerror(errno));
			ctl_linebuf_free(&c->in);
			free(c);
			close(fd);
			continue;
		}
		a->conns[slot] = c;
	}
}

void agent_loop_wake(struct agent *a)
{
	uint64_t one = 1;

	if (write(a->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_debug("eventfd write: %s", strerror(errno));
}

int agent_loop_init(struct agent *a)
{
	struct epoll_event ev = {.events = EPOLLIN};
	sigset_t set;

	/*
	 * Block the shutdown signals before any vCPU thread exists, so every
	 * thread inherits the mask and they arrive only through the signalfd.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -EINVAL;
	a->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->sfd < 0 || a->epfd < 0 || a->wakefd < 0) {
		pr_err("signalfd/epoll/eventfd: %s", strerror(errno));
		return -errno;
	}
	ev.data.u64 = EV_WAKE;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->wakefd, &ev) < 0)
		return -errno;
	for (unsigned i = 0; i < a->nlisten; i++) {
		ev.data.u64 = EV_MIGLISTEN0 + i;
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, channel_listener_fd(a->ml[i]), &ev) < 0)
			return -errno;
	}
	ev.data.u64 = EV_SIGNAL;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->sfd, &ev) < 0)
		return -errno;
	ev.data.u64 = EV_LISTEN;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->lfd, &ev) < 0)
		return -errno;
	jobs_set_event_sink(a->jobs, job_event, job_notify, a);
	return 0;
}

void agent_loop_run(struct agent *a)
{
	while (!a->quit) {
		struct epoll_event evs[16];
		int n, timeout_ms;

		pthread_mutex_lock(&a->lock);
		publish_pending(a);
		jobs_reap(a->jobs, agent_api_job_done, a);
		timeout_ms = jobs_any_running(a->jobs) ? JOB_POLL_MS : -1;
		pthread_mutex_unlock(&a->lock);
		sweep_subscribers(a);
		agent_incoming_reap(a);
		n = epoll_wait(a->epfd, evs, (int)ARRAY_SIZE(evs), timeout_ms);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			pr_err("epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n && !a->quit; i++) {
			uint64_t k = evs[i].data.u64;

			if (k == EV_LISTEN) {
				accept_clients(a);
			} else if (k >= EV_MIGLISTEN0 && k < EV_MIGLISTEN0 + a->nlisten) {
				agent_incoming_accept(a, (unsigned)(k - EV_MIGLISTEN0));
			} else if (k == EV_WAKE) {
				uint64_t v;

				if (read(a->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					pr_debug("eventfd read: %s", strerror(errno));
			} else if (k == EV_SIGNAL) {
				struct signalfd_siginfo si;

				if (read(a->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
					pr_info("got %s, shutting down",
						strsignal((int)si.ssi_signo));
					a->quit = true;
				}
			} else if (k - EV_CONN0 < AGENT_MAX_CONNS && a->conns[k - EV_CONN0]) {
				conn_event(a, a->conns[k - EV_CONN0], evs[i].events);
			}
		}
	}
}

void agent_loop_close_clients(struct agent *a)
{
	for (unsigned i = 0; i < AGENT_MAX_CONNS; i++)
		if (a->conns[i])
			conn_close(a, a->conns[i]);
}

void agent_loop_fini(struct agent *a)
{
	for (unsigned i = 0; i < a->n_in_events; i++)
		json_decref(a->in_events[i]);
	a->n_in_events = 0;
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->sfd >= 0)
		close(a->sfd);
	if (a->wakefd >= 0)
		close(a->wakefd);
}
