/* SPDX-License-Identifier: MIT */
/*
 * agent_incoming.c - the destination side of a migration: accepting the
 * connections, one thread per stream, reserving and registering the VM.
 * See agent_incoming.h.
 */
#define LOG_PREFIX "kvmigd: "
#include "tools/agent_incoming.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "migrate/announce.h"
#include "migrate/incoming.h"
#include "migrate/mio.h"
#include "migrate/pcdest.h"
#include "protocol/channel.h"
#include "protocol/frame.h"
#include "tools/agent_limits.h"
#include "tools/agent_loop.h"
#include "tools/control.h"
#include "tools/jobs.h"
#include "tools/registry.h"
#include "vm/vm.h"

#define LINGER_MS    2000 /* a refused stream's input is drained this long */

/* One accepted migration connection and the thread that receives it. */
struct agent_inconn {
	struct agent *a;
	struct channel *ch; /* the connection; the thread's mio owns and closes it */
	int shut_fd;	    /* a duplicate of its socket the controller may shutdown() */
	pthread_t thread;
	_Atomic bool done;
	char peer[384];
	char name[VM_NAME_MAX]; /* the reserved name, "" until HELLO reserved it */
	pthread_mutex_t ann_lock; /* guards ann and live against agent_incoming_shutdown */
	struct announcer *ann;	  /* the RARP rounds after the resume, while they run */
	struct channel *live;	  /* the channel until the thread closes it: shutdown wakes
				   * it where shut_fd cannot (an adopted pipe pair) */
	int notify_fd;		  /* incoming.adopt: told the outcome at the end, or -1 */
	bool ok;		  /* the thread: the VM arrived and runs (or stays paused) */
};

/*
 * The end of an adopted stream: `kvmigd --incoming stdio` waits for this
 * line on its control connection (it must outlive the stream: sshd stops
 * feeding its stdin once it exits).
 */
static void notify_end(struct agent_inconn *ic, const char *err)
{
	json_t *o;
	char *line;
	size_t len;

	if (ic->notify_fd < 0)
		return;
	o = json_pack("{s:s, s:b}", "event", "incoming.end", "ok", ic->ok);
	if (o && !ic->ok)
		json_object_set_new(o, "error", ctl_string_lossy(err, strlen(err)));
	line = o ? ctl_encode(o, &len) : NULL;
	/* one short line into an idle socket: the non-blocking send does not fail for room */
	if (line && send(ic->notify_fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		pr_debug("incoming.adopt: the stdio process is gone: %s", strerror(errno));
	free(line);
	json_decref(o);
	close(ic->notify_fd);
	ic->notify_fd = -1;
}

/*
 * An event of this stream's VM for the subscribers (events.subscribe):
 * incoming-started (its name is reserved), incoming-arrived (it runs or
 * stays paused here, every page in place), incoming-failed (err says
 * why; nothing is left here). ist, when not NULL, adds the stream's
 * figures.
 */
static void in_event(struct agent_inconn *ic, const char *type, uint64_t t0,
		     const struct incoming_stats *ist, uint64_t mem_bytes, const char *err)
{
	struct agent *a = ic->a;
	struct timespec ts;
	json_t *o = json_object();

	if (!o)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_object_set_new(o, "event", json_string(type));
	json_object_set_new(o, "time_ms", json_integer((json_int_t)((uint64_t)ts.tv_sec * 1000 +
								 (uint64_t)ts.tv_nsec / 1000000)));
	json_object_set_new(o, "vm", ctl_string_lossy(ic->name, strlen(ic->name)));
	json_object_set_new(o, "from", ctl_string_lossy(ic->peer, strlen(ic->peer)));
	if (mem_bytes)
		json_object_set_new(o, "total_bytes", json_integer((json_int_t)mem_bytes));
	if (ist) {
		json_object_set_new(o, "total_ms",
				    json_integer((json_int_t)((clock_now_ns() - t0) / 1000000)));
		json_object_set_new(o, "transferred_bytes", json_integer((json_int_t)ist->bytes));
		json_object_set_new(o, "paused", json_boolean(ist->paused));
		json_object_set_new(o, "postcopy", json_boolean(ist->postcopy));
		json_object_set_new(o, "verified", json_boolean(ist->digest_ok));
		/* the VM build: prepared during pre-copy, or built (again) at COMPLETE */
		json_object_set_new(o, "vm_prebuilt", json_boolean(ist->vm_prebuilt));
		json_object_set_new(o, "vm_rebuilt", json_boolean(ist->vm_rebuilt));
		json_object_set_new(o, "complete_to_ready_us",
				    json_integer((json_int_t)ist->complete_to_ready_us));
	}
	if (err)
		json_object_set_new(o, "error", ctl_string_lossy(err, strlen(err)));
	pthread_mutex_lock(&a->lock);
	agent_loop_post_event(a, o);
	pthread_mutex_unlock(&a->lock);
	agent_loop_wake(a);
}

/*
 * The guest runs here since resume_ns: announce its MAC where the
 * migration (or --announce of this agent) says. Return: the sender, or
 * NULL (nothing to announce, or it could not start: *st says why).
 */
static struct announcer *announce_begin(struct agent_inconn *ic, struct incoming *inc,
					struct vm *vm, uint64_t resume_ns, struct announce_stats *st)
{
	struct announcer *ann = NULL;
	struct announce_sched s;
	const char *iface;
	char err[256];
	int ret;

	if (!incoming_announce(inc, &iface, &s))
		return NULL;
	ret = announce_start(iface, &s, vm_get_config(vm)->mac, resume_ns, &ann, err, sizeof(err));
	if (ret < 0) {
		st->error = ret;
		pr_warn("VM '%s' runs, but its RARP announce on %s failed: %s", ic->name, iface,
			err);
		return NULL;
	}
	pthread_mutex_lock(&ic->ann_lock);
	ic->ann = ann;
	pthread_mutex_unlock(&ic->ann_lock);
	return ann;
}

/* The rounds are over (or were cancelled): the stats, here and at the source. */
static void announce_end(struct agent_inconn *ic, struct incoming *inc, struct announcer *ann,
			 struct announce_stats *st)
{
	const char *iface = "";
	struct announce_sched s;

	if (ann) {
		announce_wait(ann, st);
		pthread_mutex_lock(&ic->ann_lock);
		ic->ann = NULL;
		pthread_mutex_unlock(&ic->ann_lock);
		announce_free(ann);
		(void)incoming_announce(inc, &iface, &s);
		pr_info("VM '%s': %u RARP frame(s) on %s, the first %llu.%03llu ms after the resume",
			ic->name, st->frames, iface, (unsigned long long)(st->first_us / 1000),
			(unsigned long long)(st->first_us % 1000));
	}
	if (incoming_send_announced(inc, st) < 0)
		pr_warn("VM '%s': the source could not be told about the RARP announce", ic->name);
}

/*
 * After a refusal: send FIN behind the ERROR frame, then read and drop
 * what the source still sends for a short while. Closing with unread
 * input would make the kernel answer with a reset, which can destroy the
 * ERROR frame before the source reads it.
 */
static void linger_close(int fd)
{
	uint64_t deadline = clock_now_ms() + LINGER_MS;
	char buf[16384];

	if (shutdown(fd, SHUT_WR) < 0)
		return;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t now = clock_now_ms();
		ssize_t n;

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			return;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}

/*
 * The hello hook: HELLO named the VM. Reserve the name so that nothing
 * else takes it while the pages arrive, or refuse the stream.
 */
static int reserve_name(void *ctx, const char *name, uint64_t mem_bytes, char *err, size_t errlen)
{
	struct agent_inconn *ic = ctx;
	struct agent *a = ic->a;
	int ret = registry_check_name(name, err, errlen);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&a->lock);
	if (a->closing) {
		ret = -ESHUTDOWN;
		snprintf(err, errlen, "the destination agent is shutting down");
	} else if (!registry_find(a->reg, name) &&
		   ((ret = agent_limits_admit_incoming(a, err, errlen)) < 0 ||
		    (ret = agent_limits_admit_mem(a, name, mem_bytes, err, errlen)) < 0)) {
		/* max_incoming, guest_mem: refused at HELLO, before anything is allocated */
	} else {
		ret = registry_reserve(a->reg, name, mem_bytes, REG_ORIGIN_MIGRATE, ic->peer);
		if (ret == -EEXIST)
			snprintf(err, errlen, "a VM named '%s' already exists on the destination",
				 name);
		else if (ret == -ENOSPC)
			snprintf(err, errlen,
				 "the destination already hosts %d VMs, the most it can",
				 REGISTRY_MAX_VMS);
		else if (ret < 0)
			snprintf(err, errlen, "cannot reserve the name '%s': %s", name,
				 strerror(-ret));
		else
			snprintf(ic->name, sizeof(ic->name), "%s", name);
	}
	pthread_mutex_unlock(&a->lock);
	if (ret == 0) {
		pr_info("incoming migration of VM '%s' (%llu MiB) from %s", name,
			(unsigned long long)(mem_bytes >> 20), ic->peer);
		in_event(ic, "incoming-started", 0, NULL, mem_bytes, NULL);
	} else if (ret == -EBUSY || ret == -ENOMEM) {
		pr_warn("refusing the migration of VM '%s' from %s: %s", name, ic->peer, err);
	}
	return ret;
}

/*
 * The key hook (--ssh-data tls): the source, authenticated by this host's
 * sshd, hands over a one-time key; the first tls: listener takes TLS
 * connections that hold it, until it expires or the migration it opened
 * ends (forget_key).
 */
static int take_key(void *ctx, const struct wire_key *k, uint16_t *port, char *err,
		    size_t errlen)
{
	struct agent_inconn *ic = ctx;
	struct agent *a = ic->a;

	for (unsigned i = 0; i < a->nlisten; i++) {
		int ret = channel_listener_add_psk(a->ml[i], k->identity, k->key, k->key_len,
						   clock_now_ms() + k->lifetime_ms);

		if (ret == -EOPNOTSUPP)
			continue;
		if (ret < 0) {
			snprintf(err, errlen, "the destination cannot take the key: %s",
				 strerror(-ret));
			return ret;
		}
		*port = channel_listener_port(a->ml[i]);
		pr_info("one-time TLS key '%.8s...' from %s for %s (%u ms)", k->identity, ic->peer,
			a->ml_addr[i], k->lifetime_ms);
		return 0;
	}
	snprintf(err, errlen,
		 "the destination agent has no tls: listener for --ssh-data tls (kvmigd --listen "
		 "tls:HOST:PORT)");
	return -EOPNOTSUPP;
}

/* A connection opened with a one-time key: the key goes with the migration. */
static void forget_key(struct agent *a, struct mio *io)
{
	struct channel_info info;

	mio_get_info(io, &info);
	if (strncmp(info.peer, "psk:", 4))
		return;
	for (unsigned i = 0; i < a->nlisten; i++)
		channel_listener_remove_psk(a->ml[i], info.peer + 4);
}

/* What the log calls the stream: "of VM 'web1' from tcp:..." or "from ...". */
static const char *stream_desc(const struct agent_inconn *ic, char *buf, size_t cap)
{
	if (ic->name[0])
		snprintf(buf, cap, "of VM '%s' from %s", ic->name, ic->peer);
	else
		snprintf(buf, cap, "from %s", ic->peer);
	return buf;
}

/*
 * Post-copy: the guest runs here (state "postcopy") while its missing
 * pages arrive. Return: 0 once every page is in place; or -errno when
 * the source gave up or the agent shuts down: the guest cannot run on
 * without its pages, so it is destroyed here, and err says what was lost.
 */
static int postcopy_wait(struct agent_inconn *ic, struct incoming *inc, char *err, size_t errlen)
{
	struct agent *a = ic->a;
	struct registry_entry *e;
	struct pcdest_stats ps;
	struct vm *vm;
	int ret;

	pthread_mutex_lock(&a->lock);
	e = registry_find(a->reg, ic->name);
	if (e) {
		e->phase = REG_PHASE_POSTCOPY;
		e->pc = incoming_pcdest(inc);
	}
	pthread_mutex_unlock(&a->lock);
	pcdest_get_stats(incoming_pcdest(inc), &ps);
	pr_info("VM '%s' runs here in post-copy: %llu pages still to come from %s", ic->name,
		(unsigned long long)ps.pages_missing, ic->peer);
	ret = incoming_run_postcopy(inc, err, errlen);
	pcdest_get_stats(incoming_pcdest(inc), &ps);
	pthread_mutex_lock(&a->lock);
	e = registry_find(a->reg, ic->name);
	if (e)
		e->pc = NULL;
	pthread_mutex_unlock(&a->lock);
	/* every page is here, or none will come: the faults are ordinary again */
	incoming_postcopy_end(inc);
	if (ret == 0) {
		pr_info("VM '%s': post-copy done: %llu pages placed, %llu requests, p50 %u us, "
			"p99 %u us, vCPUs blocked %llu ms, %u reconnect(s)",
			ic->name, (unsigned long long)ps.pages_placed,
			(unsigned long long)ps.requests, ps.p50_us, ps.p99_us,
			(unsigned long long)ps.blocked_us / 1000, ps.reconnects);
		return 0;
	}
	pr_err("VM '%s' is lost in post-copy: %s; it is destroyed here", ic->name, err);
	pthread_mutex_lock(&a->lock);
	vm = registry_remove(a->reg, ic->name);
	pthread_mutex_unlock(&a->lock);
	vm_destroy(vm);
	return ret;
}

/*
 * One incoming migration: run the decoder (it checks every frame and
 * answers the source on the same socket), then register, start and
 * announce the VM. Any failure leaves nothing behind: the reservation is
 * dropped and a VM that was built is destroyed.
 */
static void *incoming_thread(void *arg)
{
	struct agent_inconn *ic = arg;
	struct agent *a = ic->a;
	struct incoming *inc = NULL;
	struct incoming_stats ist;
	struct vm *vm = NULL;
	struct mio io;
	char err[WIRE_MAX_MSG] = "", desc[512];
	uint64_t t0 = clock_now_ns(), resume_ns;
	struct announcer *ann = NULL;
	struct announce_stats ast = { 0 };
	int ret;

	/* a TLS connection proves who it is here, off the event loop */
	ret = channel_handshake(ic->ch, err, sizeof(err));
	if (ret < 0)
		pr_err("incoming connection from %s refused: %s", ic->peer, err);
	/* takes the channel: mio_close() closes it */
	mio_channel_open(&io, ic->ch);
	ic->ch = NULL;
	if (ret < 0)
		goto close;
	ret = incoming_create(&io, &io, NULL, &inc);
	if (ret == 0)
		incoming_set_sessions(inc, a->sessions);
	if (ret < 0) {
		pr_err("incoming migration %s failed: out of memory",
		       stream_desc(ic, desc, sizeof(desc)));
		goto close;
	}
	incoming_set_postcopy(inc, a->pcs);
	incoming_set_hello_hook(inc, reserve_name, ic);
	incoming_set_key_hook(inc, take_key, ic);
	incoming_set_announce_default(inc, a->announce, NULL);
	if (a->cpu)
		incoming_set_host_cpu(inc, a->cpu);
	ret = incoming_run(inc, &vm, err, sizeof(err));
	if (ret < 0) {
		pr_err("incoming migration %s failed: %s", stream_desc(ic, desc, sizeof(desc)),
		       err[0] ? err : strerror(-ret));
		goto drop;
	}
	if (ret == 2) {
		pr_debug("key exchange with %s done", ic->peer);
		goto close;
	}
	if (ret > 0) {
		/* a parallel channel: its pages are in; channel 0's thread builds the VM */
		pr_debug("parallel migration channel from %s done", ic->peer);
		goto close;
	}
	pthread_mutex_lock(&a->lock);
	ret = a->closing ? -ESHUTDOWN : registry_attach(a->reg, vm);
	pthread_mutex_unlock(&a->lock);
	if (ret < 0) {
		snprintf(err, sizeof(err), "%s",
			 ret == -ESHUTDOWN ? "the destination agent is shutting down"
					   : "cannot register the VM");
		(void)incoming_send_error(inc, ret, err);
		vm_destroy(vm);
		pr_err("incoming migration %s failed: %s", stream_desc(ic, desc, sizeof(desc)),
		       err);
		goto drop;
	}
	/* the registry holds the VM now; phase "incoming" keeps it ours */
	ret = incoming_handover(inc, err, sizeof(err));
	if (ret < 0) {
		/* no GO: the source keeps (or takes back) the guest */
		pr_err("incoming migration %s failed before GO: %s; the VM built here is "
		       "destroyed",
		       stream_desc(ic, desc, sizeof(desc)), err);
		goto drop;
	}
	incoming_get_stats(inc, &ist);
	/* a guest that left its source paused stays paused (vm resume starts it) */
	ret = ist.paused ? 0 : vm_start(vm);
	if (ret < 0) {
		snprintf(err, sizeof(err), "cannot start the VM on the destination: %s",
			 strerror(-ret));
		(void)incoming_send_error(inc, ret, err);
		pr_err("incoming migration %s failed: %s", stream_desc(ic, desc, sizeof(desc)),
		       err);
		goto drop;
	}
	resume_ns = clock_now_ns();
	/* the first frame leaves now, before RESUMED: the network learns the new port first */
	if (!ist.paused)
		ann = announce_begin(ic, inc, vm, resume_ns, &ast);
	ret = incoming_send_resumed(inc);
	if (ret < 0) {
		/* after GO the guest is ours: the source keeps its copy paused */
		pr_warn("incoming migration %s: the VM is here (%s), but the source could not "
			"be told (%s); its copy stays paused there",
			stream_desc(ic, desc, sizeof(desc)), ist.paused ? "paused" : "running",
			strerror(-ret));
	}
	if (incoming_pcdest(inc)) {
		ret = postcopy_wait(ic, inc, err, sizeof(err));
		if (ret < 0) {
			announce_end(ic, inc, ann, &ast);
			in_event(ic, "incoming-failed", t0, NULL, 0, err[0] ? err : strerror(-ret));
			goto close;
		}
	}
	pthread_mutex_lock(&a->lock);
	{
		struct registry_entry *e = registry_find(a->reg, ic->name);

		if (e) {
			e->phase = REG_PHASE_NONE;
			e->added_ns = clock_now_ns();
		}
	}
	jobs_forget(a->jobs, ic->name);
	pthread_mutex_unlock(&a->lock);
	announce_end(ic, inc, ann, &ast);
	incoming_get_stats(inc, &ist);
	pr_info("VM '%s' migrated in from %s and %s: %llu bytes, %llu pages in %u rounds, "
		"%llu ms%s, %u RARP frame(s)",
		ic->name, ic->peer, ist.paused ? "stays paused, as it left" : "runs", (unsigned long long)ist.bytes, (unsigned long long)ist.pages,
		ist.rounds, (unsigned long long)((clock_now_ns() - t0) / 1000000),
		ist.digest_ok ? ", RAM digest verified" : "", ist.announce.frames);
	ic->ok = true;
	in_event(ic, "incoming-arrived", t0, &ist, 0, NULL);
	goto close;
drop:
	/* the userfaultfd goes first: no vCPU may stay blocked on a fault */
	incoming_postcopy_end(inc);
	if (ic->name[0]) {
		struct vm *old;

		pthread_mutex_lock(&a->lock);
		old = registry_remove(a->reg, ic->name);
		pthread_mutex_unlock(&a->lock);
		vm_destroy(old);
		in_event(ic, "incoming-failed", t0, NULL, 0,
			 err[0] ? err : ret < 0 ? strerror(-ret) : "the migration failed");
	}
	linger_close(ic->shut_fd);
close:
	incoming_destroy(inc);
	forget_key(a, &io);
	pthread_mutex_lock(&ic->ann_lock);
	ic->live = NULL;
	pthread_mutex_unlock(&ic->ann_lock);
	mio_close(&io);
	notify_end(ic, err[0] ? err : "the migration failed");
	atomic_store(&ic->done, true);
	agent_loop_wake(a);
	return NULL;
}

/* "tcp:10.0.0.2:51234", "tcp:[::1]:40000" or "unix:/run/kvmig/mig.sock (pid 4242)". */
static void describe_peer(const char *ml_addr, int fd, char *out, size_t cap)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(out, cap, "a peer of %s", ml_addr);
		return;
	}
	if (ss.ss_family == AF_UNIX) {
		struct ucred cr;
		socklen_t cl = sizeof(cr);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0)
			snprintf(out, cap, "%s (pid %d)", ml_addr, (int)cr.pid);
		else
			snprintf(out, cap, "%s", ml_addr);
		return;
	}
	if (ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)&ss)->sin6_addr)) {
		/* an IPv4 peer of a listener on every address (dual-stack): show it as IPv4 */
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = s6->sin6_port};

		memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], sizeof(s4.sin_addr));
		memcpy(&ss, &s4, sizeof(s4));
		sl = sizeof(s4);
	}
	if (getnameinfo((const struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(out, cap, "an unknown peer");
	else if (ss.ss_family == AF_INET6)
		snprintf(out, cap, "tcp:[%.64s]:%.8s", host, port);
	else
		snprintf(out, cap, "tcp:%.64s:%.8s", host, port);
}

/*
 * The migration listener is readable: take every connection that waits
 * (channel_accept_pending never blocks the loop) and give each a thread.
 */
int agent_incoming_start(struct agent *a, struct channel *ch, const char *peer, int notify_fd,
			 char *err, size_t errlen)
{
	struct agent_inconn *ic;
	unsigned slot;
	int ret;

	for (slot = 0; slot < AGENT_MAX_INCOMING && a->inc[slot]; slot++)
		;
	ic = slot < AGENT_MAX_INCOMING ? calloc(1, sizeof(*ic)) : NULL;
	if (!ic) {
		snprintf(err, errlen, "%s", slot < AGENT_MAX_INCOMING
						    ? "out of memory"
						    : "too many migrations arriving at once");
		channel_close(ch);
		return slot < AGENT_MAX_INCOMING ? -ENOMEM : -EBUSY;
	}
	ic->a = a;
	ic->ch = ch;
	ic->live = ch;
	ic->notify_fd = notify_fd;
	pthread_mutex_init(&ic->ann_lock, NULL);
	ic->shut_fd = fcntl(channel_fd(ch), F_DUPFD_CLOEXEC, 0);
	snprintf(ic->peer, sizeof(ic->peer), "%s", peer);
	ret = ic->shut_fd < 0 ? errno : pthread_create(&ic->thread, NULL, incoming_thread, ic);
	if (ret) {
		snprintf(err, errlen, "%s", strerror(ret));
		if (ic->shut_fd >= 0)
			close(ic->shut_fd);
		channel_close(ch);
		pthread_mutex_destroy(&ic->ann_lock);
		free(ic);
		return -ret;
	}
	pr_debug("migration connection from %s", ic->peer);
	a->inc[slot] = ic;
	return 0;
}

void agent_incoming_accept(struct agent *a, unsigned listener)
{
	const char *ml_addr = a->ml_addr[listener];

	for (;;) {
		struct channel *ch;
		char err[256], peer[256];
		int ret;

		ret = channel_accept_pending(a->ml[listener], AGENT_INCOMING_IO_TIMEOUT_MS, &ch, err,
					     sizeof(err));
		if (ret == -EAGAIN)
			return;
		if (ret < 0) {
			pr_warn("accepting on %s: %s", ml_addr, err);
			return;
		}
		describe_peer(ml_addr, channel_fd(ch), peer, sizeof(peer));
		if (agent_incoming_start(a, ch, peer, -1, err, sizeof(err)) < 0)
			pr_warn("refusing a migration connection from %s on %s: %s", peer, ml_addr,
				err);
	}
}

/* Join the incoming threads that are done (all: every one, after shutdown()). */
static void reap_incoming(struct agent *a, bool all)
{
	for (unsigned i = 0; i < AGENT_MAX_INCOMING; i++) {
		struct agent_inconn *ic = a->inc[i];

		if (!ic || (!all && !atomic_load(&ic->done)))
			continue;
		pthread_join(ic->thread, NULL);
		close(ic->shut_fd);
		pthread_mutex_destroy(&ic->ann_lock);
		free(ic);
		a->inc[i] = NULL;
	}
}

void agent_incoming_reap(struct agent *a)
{
	reap_incoming(a, false);
}

void agent_incoming_shutdown(struct agent *a)
{
	unsigned nin = 0;

	for (unsigned i = 0; i < AGENT_MAX_INCOMING; i++) {
		if (a->inc[i] && !atomic_load(&a->inc[i]->done)) {
			pthread_mutex_lock(&a->inc[i]->ann_lock);
			if (a->inc[i]->ann)
				announce_cancel(a->inc[i]->ann);
			/* a socket's shutdown(2) through shut_fd; a pipe pair has none */
			if (a->inc[i]->live)
				channel_shutdown(a->inc[i]->live, SHUT_RDWR);
			pthread_mutex_unlock(&a->inc[i]->ann_lock);
			shutdown(a->inc[i]->shut_fd, SHUT_RDWR);
			nin++;
		}
	}
	if (nin)
		pr_info("closing %u incoming migration%s", nin, nin == 1 ? "" : "s");
	/* a post-copy waiting for its source gives up: the agent goes */
	if (a->pcs)
		pc_table_shutdown(a->pcs);
	reap_incoming(a, true);
}
