/* SPDX-License-Identifier: MIT */
/*
 * migbench.c - one live migration measured end to end in one process
 * (bench/migbench.h): the destination thread, the watcher, the post-copy
 * switch, the run and its report.
 */
#include "bench/migbench.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/compiler.h"
#include "common/parse.h"
#include "migrate/incoming.h"
#include "migrate/migrate.h"
#include "migrate/mio.h"
#include "migrate/pcdest.h"
#include "migrate/session.h"
#include "protocol/channel.h"
#include "tests/helpers/mdest.h"
#include "vm/vm.h"

#define WARM_DEADLINE_NS  (300ull * 1000000000ull)
#define AFTER_PAGES	  4096			 /* the destination must have run this far ... */
#define AFTER_MIN_NS	  (1000ull * 1000000ull) /* ... and for at least this long */
#define AFTER_DEADLINE_NS (60ull * 1000000000ull)
#define RATE_WINDOW_US	  500000
#define ARM_LEAD_US	  50000	       /* gaps count from this long before migrate_start */
#define ENGINE_DEFAULT_BW (1ull << 30) /* migrate/source.c's bandwidth before a measurement */
/* migrate/converge.c's auto-converge steps (converge.h), shown in the settings */
#define THROTTLE_INITIAL_PCT 20
#define THROTTLE_STEP_PCT    10
#define THROTTLE_SAMPLE_EVERY 25 /* watcher samples between looks at throttle_pct (5 ms) */
#define SWITCH_POLL_US	  2000	/* post-copy: look for the switch this often (as qmp.py) */
#define FAULT_ACCEPT_MS	  30000	/* the fault channel comes right after channel 0's handshake */

/*
 * Bytes sent on the loopback interface so far (every direction, headers
 * included), or LO_UNKNOWN: what the migration really put on the wire,
 * counted the same way for kvmig and for QEMU.
 */
#define LO_UNKNOWN UINT64_MAX

static uint64_t lo_tx_bytes(void)
{
	FILE *f = fopen("/sys/class/net/lo/statistics/tx_bytes", "r");
	unsigned long long v;

	if (!f)
		return LO_UNKNOWN;
	if (fscanf(f, "%llu", &v) != 1)
		v = LO_UNKNOWN;
	fclose(f);
	return v;
}

static double ms_since(uint64_t t, uint64_t t0)
{
	return t ? ((double)t - (double)t0) / 1e6 : -1.0;
}
/* ---- the destination ------------------------------------------------------------ */

struct dest {
	struct channel_listener *l;
	pthread_t thread;
	struct vm *vm;		      /* joined: the thread's result */
	_Atomic(struct vm *) running; /* published once it runs, for the watcher */
	int ret;
	char err[512];
	char uri[160];
	unsigned channels;	/* --parallel */
	struct mdest_others *others;
	/* clock when the stream was accepted, the VM built, started, RESUMED sent */
	uint64_t t_accept, t_built, t_started, t_resumed;
	/* post-copy (--postcopy): the fault channel's thread, the receiver's figures */
	bool postcopy;
	bool fault_started;
	pthread_t fault_thread;
	int fault_ret;
	char fault_err[512];
	bool pc_ran;		/* the switch came: the receiver served post-copy */
	struct pcdest_stats pc;	/* its figures once every page was in place (or it failed) */
	uint64_t t_pc_done;	/* clock when every page was in place */
};

/* Where the destination's parallel channels meet (made by migbench_run, for its run). */
static struct session_table *sessions;
/* Where the destination's post-copy receivers meet their fault channels (the same). */
static struct pc_table *pcs;

/*
 * The post-copy fault channel: the source's second connection. Its
 * decoder finds channel 0's receiver in pcs and serves the stream until it
 * ends (incoming_run returns 1, and no VM).
 */
static void *fault_thread(void *arg)
{
	struct dest *d = arg;
	struct channel *ch = NULL;
	struct incoming *inc = NULL;
	struct vm *vm = NULL;
	struct mio io;
	char msg[256];

	d->fault_ret = channel_accept(d->l, FAULT_ACCEPT_MS, &ch, msg, sizeof(msg));
	if (!d->fault_ret) {
		d->fault_ret = channel_handshake(ch, msg, sizeof(msg));
		if (d->fault_ret < 0)
			channel_close(ch);
	}
	if (d->fault_ret < 0) {
		snprintf(d->fault_err, sizeof(d->fault_err), "fault channel: %s", msg);
		return NULL;
	}
	mio_channel_open(&io, ch);
	d->fault_ret = incoming_create(&io, &io, NULL, &inc);
	if (!d->fault_ret) {
		incoming_set_postcopy(inc, pcs);
		d->fault_ret = incoming_run(inc, &vm, d->fault_err, sizeof(d->fault_err));
	}
	if (d->fault_ret == 0) {
		vm_destroy(vm);
		d->fault_ret = -EPROTO;
		snprintf(d->fault_err, sizeof(d->fault_err),
			 "fault channel: a second channel 0 arrived");
	}
	incoming_destroy(inc);
	mio_close(&io);
	return NULL;
}

static void *dest_thread(void *arg)
{
	struct dest *d = arg;
	struct channel *ch = NULL;
	struct incoming *inc = NULL;
	struct vm *vm = NULL;
	struct mio io;
	char msg[256];

	d->ret = channel_accept(d->l, 30000, &ch, msg, sizeof(msg));
	if (d->ret < 0) {
		snprintf(d->err, sizeof(d->err), "accept: %s", msg);
		return NULL;
	}
	d->ret = channel_handshake(ch, msg, sizeof(msg));
	if (d->ret < 0) {
		snprintf(d->err, sizeof(d->err), "handshake: %s", msg);
		channel_close(ch);
		return NULL;
	}
	d->t_accept = clock_now_ns();
	mio_channel_open(&io, ch);
	if (d->channels > 1)
		d->others = mdest_others_start(d->l, d->channels - 1, sessions);
	if (d->postcopy) {
		/* accepting before channel 0's HELLO_ACK: the source connects it right after */
		if (pthread_create(&d->fault_thread, NULL, fault_thread, d))
			bench_fatal("pthread_create: %s", strerror(errno));
		d->fault_started = true;
	}
	d->ret = incoming_create(&io, &io, "dst", &inc);
	if (!d->ret)
		incoming_set_sessions(inc, sessions);
	if (!d->ret && d->postcopy)
		incoming_set_postcopy(inc, pcs);
	if (!d->ret)
		d->ret = incoming_run(inc, &vm, d->err, sizeof(d->err));
	d->t_built = clock_now_ns();
	if (!d->ret)
		d->ret = incoming_handover(inc, d->err, sizeof(d->err));
	if (d->ret && vm) {
		/* a post-copy receiver's userfaultfd goes first */
		incoming_postcopy_end(inc);
		vm_destroy(vm);
		vm = NULL;
	}
	if (!d->ret)
		d->ret = vm_start(vm);
	d->t_started = clock_now_ns();
	if (!d->ret)
		atomic_store(&d->running, vm);
	if (!d->ret)
		d->ret = incoming_send_resumed(inc);
	d->t_resumed = clock_now_ns();
	if (!d->ret && incoming_pcdest(inc)) {
		/* the guest runs here; its missing pages come now */
		d->pc_ran = true;
		d->ret = incoming_run_postcopy(inc, d->err, sizeof(d->err));
		d->t_pc_done = clock_now_ns();
		pcdest_get_stats(incoming_pcdest(inc), &d->pc);
	}
	/*
	 * Every page is here, or none will come (a failure: the status says
	 * so; the VM stays for the watcher and goes after it in cmd_run).
	 */
	if (inc)
		incoming_postcopy_end(inc);
	incoming_destroy(inc);
	mio_close(&io);
	d->vm = vm;
	return NULL;
}

/* Before the watcher starts: nothing runs there yet. */
static void dest_init(struct dest *d)
{
	memset(d, 0, sizeof(*d));
	atomic_init(&d->running, NULL);
}

/*
 * After the warm-up: channel_accept's wait is bounded. With tls_dir the
 * destination listens on TLS (the same credentials directory serves both
 * ends, as in tests/helpers/mkcerts.sh's layout).
 */
static void dest_start(struct dest *d, const char *tls_dir)
{
	struct channel_opts co = {.tls_dir = tls_dir};
	char msg[256];

	if (channel_listen_opts(tls_dir ? "tls:127.0.0.1:0" : "tcp:127.0.0.1:0", &co, &d->l, msg,
				sizeof(msg)))
		bench_fatal("listen: %s", msg);
	snprintf(d->uri, sizeof(d->uri), "%s://127.0.0.1:%u", tls_dir ? "tls" : "tcp",
		 channel_listener_port(d->l));
	if (pthread_create(&d->thread, NULL, dest_thread, d))
		bench_fatal("pthread_create: %s", strerror(errno));
}

/* ---- the watcher ----------------------------------------------------------------- */

void migbench_gaps_sample(struct migbench_gaps *g, uint64_t p, uint64_t now)
{
	if (!g->samples) {
		g->last_inc_ns = now;
		g->last_p = p;
	} else if (now - g->prev_ns > g->max_sample_ns) {
		g->max_sample_ns = now - g->prev_ns;
	}
	g->prev_ns = now;
	g->samples++;
	if (p > g->last_p) {
		if (now - g->last_inc_ns > g->gap_ns) {
			g->gap_ns = now - g->last_inc_ns;
			g->gap_start_ns = g->last_inc_ns;
		}
		g->last_inc_ns = now;
		g->last_p = p;
	}
}

const char *migbench_sampler_sched(void)
{
	struct sched_param sp = { .sched_priority = 1 };

	return pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) ? "other" : "fifo";
}

void migbench_gaps_end(struct migbench_gaps *g, uint64_t now)
{
	if (g->samples && now - g->last_inc_ns > g->gap_ns) {
		g->gap_ns = now - g->last_inc_ns;
		g->gap_start_ns = g->last_inc_ns;
	}
}

struct watch {
	struct vm *src;
	struct dest *dst;
	_Atomic(struct migrate_job *) job;
	atomic_bool stop;
	pthread_t thread;
	uint64_t t_migrate;	   /* clock at migrate_start */
	atomic_bool arm;	   /* start counting gaps (reset them) */
	struct migbench_gaps g;	   /* read after the join */
	const char *sched;	   /* the sampler's policy; read after the join */
	uint64_t bulk_bps;	   /* read after the join */
	unsigned max_throttle;	   /* highest throttle_pct seen; read after the join */
	_Atomic uint64_t progress; /* for the main thread's waits */
};

static void *watch_thread(void *arg)
{
	struct watch *w = arg;
	const struct timespec period = { 0, MIGBENCH_WATCH_PERIOD_US * 1000 };
	bool armed = false;

	w->sched = migbench_sampler_sched();

	while (!atomic_load(&w->stop)) {
		struct migrate_job *job = atomic_load(&w->job);
		struct vm *dvm = atomic_load(&w->dst->running);
		struct vm_guest_stats st;
		uint64_t p;

		vm_get_stats(w->src, &st);
		p = st.progress;
		if (dvm) {
			vm_get_stats(dvm, &st);
			p = MAX(p, st.progress);
		}
		if (!armed && atomic_load(&w->arm)) {
			/* the warm-up's stalls (first touches) are not the migration's */
			memset(&w->g, 0, sizeof(w->g));
			armed = true;
		}
		migbench_gaps_sample(&w->g, p, clock_now_ns());
		atomic_store(&w->progress, p);
		if (job && (!w->bulk_bps || !(w->g.samples % THROTTLE_SAMPLE_EVERY))) {
			struct migrate_stats ms;

			migrate_get_stats(job, &ms);
			if (!w->bulk_bps)
				w->bulk_bps = ms.bandwidth;
			w->max_throttle = MAX(w->max_throttle, ms.throttle_pct);
		}
		nanosleep(&period, NULL);
	}
	migbench_gaps_end(&w->g, clock_now_ns());
	return NULL;
}

/* Wait until the guest's progress reaches p and min_ns passed. Return: false after deadline_ns. */
static bool wait_progress(struct watch *w, uint64_t p, uint64_t min_ns, uint64_t deadline_ns)
{
	uint64_t t0 = clock_now_ns();

	while (atomic_load(&w->progress) < p || clock_now_ns() - t0 < min_ns) {
		if (clock_now_ns() - t0 > deadline_ns)
			return false;
		usleep(2000);
	}
	return true;
}

/* ---- run: one migration ------------------------------------------------------------ */

/* A post-copy's switch, as the source saw it. */
struct pc_switch {
	uint64_t after_ms;	/* --postcopy-after (manual), 0 = none */
	uint64_t t_asked;	/* clock when migrate_postcopy() returned 0 */
	uint64_t t_seen;	/* clock when the job was first seen past pre-copy */
	char err[256];		/* migrate_postcopy()'s refusal, "" = none */
};

/*
 * With --postcopy: at after_ms from t0 (manual mode) ask for the switch,
 * then poll the job's status every SWITCH_POLL_US until it leaves
 * pre-copy (setup, active) or ends. Both moments go to *s.
 */
static void pc_switch_run(struct migrate_job *job, uint64_t t0, struct pc_switch *s)
{
	struct migrate_stats ms;

	if (s->after_ms) {
		uint64_t at = t0 + s->after_ms * 1000000ull;
		struct timespec ts = { (time_t)(at / 1000000000ull), (long)(at % 1000000000ull) };

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		if (migrate_postcopy(job, s->err, sizeof(s->err)) == 0)
			s->t_asked = clock_now_ns();
	}
	while (!migrate_finished(job)) {
		migrate_get_stats(job, &ms);
		if (strcmp(ms.status, "setup") && strcmp(ms.status, "active")) {
			s->t_seen = clock_now_ns();
			return;
		}
		usleep(SWITCH_POLL_US);
	}
	migrate_get_stats(job, &ms);
	if (ms.postcopy.active)
		s->t_seen = clock_now_ns();	/* switched and done between two looks */
}

/* ---- options --------------------------------------------------------------------- */

void migbench_defaults(struct migbench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mem = 1ull << 30;
	o->workset = 16ull << 20;
	o->vcpus = 1;
	migrate_opts_defaults(&o->mo);
	o->mo.max_downtime_ms = 300;
}

/* The source VM's config: seqdirty over the working set. */
static void src_config(const struct migbench_opts *o, struct vm_config *cfg)
{
	vm_config_defaults(cfg, "src");
	cfg->mem_bytes = o->mem;
	cfg->vcpus = o->vcpus;
	cfg->dirty_ring = o->dirty_ring;
	snprintf(cfg->guest, sizeof(cfg->guest), "seqdirty");
	snprintf(cfg->guest_args, sizeof(cfg->guest_args), "workset=%lluK",
		 (unsigned long long)(o->workset >> 10));
}

int migbench_parse(int argc, char **argv, struct migbench_opts *o, char *err, size_t errlen)
{
	/* the options with a number (K, M, G suffixes), in the order of the chain below */
	static const char *const sized[] = {
		"--mem", "--workset", "--vcpus", "--xbzrle", "--parallel", "--max-downtime",
		"--bandwidth", "--warm", "--timeout", "--max-iterations", "--postcopy-after",
		"--dirty-ring",
	};
	struct migrate_opts *mo = &o->mo;
	struct vm_config cfg;
	char e[256];

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;
		uint64_t v = 0;
		size_t k;
		int r = 0;

		if (!strcmp(arg, "--auto-converge")) {
			mo->auto_converge = true;
			continue;
		}
		if (!strcmp(arg, "--verify")) {
			mo->verify = true;
			continue;
		}
		if (!strcmp(arg, "--paused")) {
			o->paused = true;
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(sized); k++)
			if ((r = bench_take_opt(argc, argv, &i, sized[k], &val, err, errlen)) != 0)
				break;
		if (r < 0)
			return r;
		if (r > 0) {
			if (parse_size(val, &v) < 0)
				return err_set(-EINVAL, err, errlen, "bad %s '%s': a number (K, M, G suffixes)",
					   sized[k], val);
			if ((k == 2 || k == 4 || k == 9 || k == 11) && v > UINT32_MAX)
				return err_set(-EINVAL, err, errlen, "bad %s '%s': too large", sized[k], val);
			if (k == 0)
				o->mem = v;
			else if (k == 1)
				o->workset = v;
			else if (k == 2)
				o->vcpus = (unsigned)v;
			else if (k == 3)
				mo->xbzrle_cache_bytes = v;
			else if (k == 4)
				mo->parallel = (unsigned)v;
			else if (k == 5)
				mo->max_downtime_ms = v;
			else if (k == 6)
				mo->bandwidth = v;
			else if (k == 7)
				o->warm = v;
			else if (k == 8)
				mo->timeout_ms = v;
			else if (k == 9)
				mo->max_iterations = (unsigned)v;
			else if (k == 10)
				o->postcopy_after_ms = v;
			else
				o->dirty_ring = (uint32_t)v;
			if (k == 11)
				mo->dirty_track = v ? DIRTYLOG_RING : DIRTYLOG_BITMAP;
			continue;
		}
		if ((r = bench_take_opt(argc, argv, &i, "--compress", &val, err, errlen)) != 0) {
			if (r < 0)
				return r;
			snprintf(mo->compress, sizeof(mo->compress), "%s", val);
		} else if ((r = bench_take_opt(argc, argv, &i, "--tls-dir", &val, err, errlen)) !=
			   0) {
			if (r < 0)
				return r;
			if (strlen(val) >= sizeof(mo->tls_dir))
				return err_set(-EINVAL, err, errlen, "--tls-dir: a path of at most %zu bytes",
					   sizeof(mo->tls_dir) - 1);
			snprintf(mo->tls_dir, sizeof(mo->tls_dir), "%s", val);
		} else if ((r = bench_take_opt(argc, argv, &i, "--postcopy", &val, err, errlen)) !=
			   0) {
			if (r < 0)
				return r;
			if (migrate_postcopy_parse(val, &mo->postcopy) < 0)
				return err_set(-EINVAL, err, errlen,
					   "--postcopy takes off, auto, now or manual, not '%s'",
					   val);
		} else {
			return err_set(-EINVAL, err, errlen, "unknown option %s", arg);
		}
	}
	if ((mo->postcopy == MIGRATE_POSTCOPY_MANUAL) != (o->postcopy_after_ms != 0))
		return err_set(-EINVAL, err, errlen,
			   "--postcopy manual needs --postcopy-after MS (> 0), and only it takes "
			   "one");
	if (mo->postcopy != MIGRATE_POSTCOPY_OFF && mo->parallel > 1)
		return err_set(-EINVAL, err, errlen,
			   "--postcopy with --parallel %u: not in this bench (one accept for both)",
			   mo->parallel);
	if (migrate_opts_check(mo, e, sizeof(e)) < 0)
		return err_set(-EINVAL, err, errlen, "%s", e);
	src_config(o, &cfg);
	if (vm_config_check(&cfg, e, sizeof(e)) < 0)
		return err_set(-EINVAL, err, errlen, "the guest (--mem, --workset, --vcpus): %s", e);
	return 0;
}

/* ---- the report ------------------------------------------------------------------ */

static void jint(json_t *o, const char *k, long long v)
{
	bench_json_set(o, k, json_integer(v));
}

static void jreal(json_t *o, const char *k, double v, int decimals)
{
	bench_json_set(o, k, bench_json_real(v, decimals));
}

/* A string member; bytes that are not printable ASCII (a guest's console) become '?'. */
static void jstr(json_t *o, const char *k, const char *v)
{
	json_t *s = json_string(v);

	if (!s) {
		char *c = bench_alloc(strlen(v) + 1);

		for (size_t i = 0; v[i]; i++)
			c[i] = (v[i] >= 0x20 && v[i] < 0x7f) || v[i] == '\n' ? v[i] : '?';
		c[strlen(v)] = 0;
		s = json_string(c);
		free(c);
	}
	bench_json_set(o, k, s);
}

static void jbool(json_t *o, const char *k, bool v)
{
	bench_json_set(o, k, json_boolean(v));
}

static json_t *jobj(json_t *parent, const char *k)
{
	json_t *o = json_object();

	bench_json_set(parent, k, o);
	return o;
}

static long long jget(const json_t *o, const char *path)
{
	const json_t *v = json_object_get(o, path);

	return json_is_integer(v) ? json_integer_value(v) : (long long)json_number_value(v);
}

/* The table of `kvmig bench migrate`: the object's main members. */
static void print_table(FILE *f, const char *cmdline, const json_t *j)
{
	const json_t *s = json_object_get(j, "settings"), *t = json_object_get(j, "transport");
	const json_t *pc = json_object_get(j, "postcopy");
	const json_t *sw = json_object_get(j, "switchover");
	const char *err = json_string_value(json_object_get(j, "error"));
	const char *cipher = json_string_value(json_object_get(t, "cipher"));
	char bw[64], xbz[64];

	if (jget(s, "bandwidth"))
		snprintf(bw, sizeof(bw), "%lld bytes/s", jget(s, "bandwidth"));
	else
		snprintf(bw, sizeof(bw), "unlimited");
	if (jget(s, "xbzrle_cache_bytes"))
		snprintf(xbz, sizeof(xbz), "%lld MiB", jget(s, "xbzrle_cache_bytes") >> 20);
	else
		snprintf(xbz, sizeof(xbz), "off");
	if (cmdline)
		fprintf(f, "$ %s\n", cmdline);
	fprintf(f, "guest: %lld MiB, seqdirty over %lld MiB, %lld vCPU%s, %lld pages/s before the "
		   "migration\n",
		jget(j, "mem_bytes") >> 20, jget(j, "workset_bytes") >> 20, jget(s, "vcpus"),
		jget(s, "vcpus") > 1 ? "s" : "", jget(j, "pages_per_s"));
	fprintf(f, "settings: max-downtime %lld ms, bandwidth %s, compress %s, parallel %lld, "
		   "xbzrle %s, auto-converge %s, postcopy %s; over %s%s%s%s\n",
		jget(s, "max_downtime_ms"), bw, json_string_value(json_object_get(s, "compress")),
		jget(s, "parallel"), xbz,
		json_is_true(json_object_get(s, "auto_converge")) ? "on" : "off",
		json_string_value(json_object_get(s, "postcopy")),
		json_string_value(json_object_get(t, "kind")), cipher && cipher[0] ? " " : "",
		cipher ? cipher : "", json_is_true(json_object_get(t, "ktls")) ? " (kTLS)" : "");
	fprintf(f, "%-10s %9s %12s %13s %9s %9s %7s %15s\n", "status", "total ms", "downtime ms",
		"guest saw ms", "setup ms", "MiB sent", "rounds", "pages/s during");
	fprintf(f, "%-10s %9lld %12lld %13.1f %9lld %9.1f %7lld %15lld\n",
		json_string_value(json_object_get(j, "status")), jget(j, "total_ms"),
		jget(j, "downtime_ms"),
		json_number_value(json_object_get(j, "guest_downtime_ms")), jget(j, "setup_ms"),
		(double)jget(j, "transferred_bytes") / (1 << 20), jget(j, "dirty_sync_count"),
		jget(j, "mig_pages_per_s"));
	if (sw && jget(sw, "start_us"))
		fprintf(f,
			"switchover at %.1f ms (%s; expected %.1f ms), in us from it: paused %lld, "
			"synced %lld, %lld pages (%.1f MiB) sent %lld, state captured %lld, sent "
			"%lld (state %lld bytes), READY %lld, RESUMED %lld\n",
			(double)jget(sw, "start_us") / 1000.0,
			json_string_value(json_object_get(sw, "reason")),
			(double)jget(sw, "expected_us") / 1000.0, jget(sw, "paused_us"),
			jget(sw, "synced_us"), jget(sw, "pages"), (double)jget(sw, "bytes") / (1 << 20),
			jget(sw, "pages_us"), jget(sw, "state_us"), jget(sw, "sent_us"),
			jget(sw, "state_bytes"), jget(sw, "ready_us"), jget(sw, "resumed_us"));
	if (pc)
		fprintf(f,
			"postcopy: active %s, requests %lld, pages pushed %lld, fault latency "
			"p50 %lld us, p99 %lld us, vCPUs blocked %lld ms, %lld bytes after the "
			"switchover\n",
			json_is_true(json_object_get(pc, "active")) ? "yes" : "no",
			jget(pc, "requests"), jget(pc, "pages_pushed"),
			jget(pc, "fault_latency_us_p50"), jget(pc, "fault_latency_us_p99"),
			jget(pc, "blocked_ms"), jget(pc, "bytes_after_switchover"));
	if (json_number_value(json_object_get(j, "compression_ratio")) > 0.0 ||
	    strcmp(json_string_value(json_object_get(s, "compress")), "none"))
		fprintf(f, "compression: ratio %.2f, last codec %s (%s), %lld switches\n",
			json_number_value(json_object_get(j, "compression_ratio")),
			json_string_value(json_object_get(j, "compression_codec")),
			json_string_value(json_object_get(j, "compression_reason")),
			jget(j, "compression_switches"));
	if (json_is_true(json_object_get(j, "verified")))
		fprintf(f, "verified: the digests of all guest RAM are equal on both sides\n");
	if (err && err[0])
		fprintf(f, "error: %s\n", err);
	fflush(f);
}

/* ---- the run --------------------------------------------------------------------- */

int migbench_run(const struct migbench_opts *opts, const char *cmdline, bool json, FILE *f,
		 char *err, size_t errlen)
{
	uint64_t mem = opts->mem, workset = opts->workset, warm = opts->warm;
	uint64_t t_warm, lo0, lo1, rate, p0, t_src;
	unsigned vcpus = opts->vcpus;
	struct migrate_opts o = opts->mo;
	struct vm_config cfg;
	struct migrate_job *job;
	struct migrate_stats ms;
	struct vm_guest_stats a, b;
	uint64_t dst_first = 0;
	const char *src_state;
	bool stalled = false;
	struct watch w;
	struct dest d;
	struct pc_switch pcs_sw = { .after_ms = opts->postcopy_after_ms };
	struct vm *src = NULL;
	char msg[512];
	json_t *j, *s;
	int ret;

	if (!warm)
		warm = 2 * workset / VM_PAGE_SIZE;
	ret = vm_kvm_available(msg, sizeof(msg));
	if (ret < 0) {
		snprintf(err, errlen, "%s", msg);
		return -ENODEV;
	}
	src_config(opts, &cfg);
	ret = vm_create(&cfg, &src, msg, sizeof(msg));
	if (ret < 0) {
		snprintf(err, errlen, "vm_create: %s", msg);
		return ret;
	}
	if (vm_start(src)) {
		vm_destroy(src);
		snprintf(err, errlen, "vm_start failed");
		return -EIO;
	}
	if (session_table_create(&sessions) < 0 || pc_table_create(&pcs) < 0)
		bench_fatal("out of memory");

	dest_init(&d);
	memset(&w, 0, sizeof(w));
	w.src = src;
	w.dst = &d;
	atomic_init(&w.job, NULL);
	atomic_init(&w.stop, false);
	atomic_init(&w.progress, 0);
	atomic_init(&w.arm, false);
	if (pthread_create(&w.thread, NULL, watch_thread, &w))
		bench_fatal("pthread_create: %s", strerror(errno));
	t_warm = clock_now_ns();
	if (!wait_progress(&w, warm, 0, WARM_DEADLINE_NS)) {
		snprintf(err, errlen, "warm-up: progress %llu of %llu after %llu s",
			 (unsigned long long)atomic_load(&w.progress), (unsigned long long)warm,
			 (unsigned long long)(WARM_DEADLINE_NS / 1000000000ull));
		atomic_store(&w.stop, true);
		pthread_join(w.thread, NULL);
		vm_destroy(src);
		pc_table_destroy(pcs);
		session_table_destroy(sessions);
		return -ETIMEDOUT;
	}
	t_warm = clock_now_ns() - t_warm;
	/* the guest's own pace just before the migration */
	rate = atomic_load(&w.progress);
	usleep(RATE_WINDOW_US);
	rate = (atomic_load(&w.progress) - rate) * 1000000ull / RATE_WINDOW_US;
	if (opts->paused && vm_pause(src, NULL) < 0)
		bench_fatal("vm_pause failed");
	d.channels = o.parallel;
	d.postcopy = o.postcopy != MIGRATE_POSTCOPY_OFF;
	dest_start(&d, o.tls_dir[0] ? o.tls_dir : NULL);

	atomic_store(&w.arm, true);
	usleep(ARM_LEAD_US);
	lo0 = lo_tx_bytes();
	p0 = atomic_load(&w.progress);
	w.t_migrate = clock_now_ns();
	if (migrate_start(src, d.uri, &o, &job, msg, sizeof(msg)))
		bench_fatal("migrate_start: %s", msg);
	atomic_store(&w.job, job);
	if (o.postcopy != MIGRATE_POSTCOPY_OFF)
		pc_switch_run(job, w.t_migrate, &pcs_sw);
	ret = migrate_wait(job);
	lo1 = lo_tx_bytes();
	migrate_get_stats(job, &ms);
	/* the source guest's pace while migrating: until its pause, or the end */
	vm_get_stats(src, &a);
	src_state = vm_run_state_name(vm_get_run_state(src));
	t_src = ms.total_ms - (ret ? 0 : ms.downtime_ms);
	if (ms.postcopy.active && pcs_sw.t_seen)
		t_src = (pcs_sw.t_seen - w.t_migrate) / 1000000ull;	/* it paused there */
	pthread_join(d.thread, NULL);
	if (d.fault_started) {
		pthread_join(d.fault_thread, NULL);
		/* the fault channel matters only to a job that switched */
		if (d.fault_ret < 0 && !d.ret && ms.postcopy.active) {
			d.ret = d.fault_ret;
			snprintf(d.err, sizeof(d.err), "%s", d.fault_err);
		}
	}
	if (d.others && mdest_others_join(d.others, msg, sizeof(msg)) < 0 && !d.ret)
		bench_fatal("a parallel channel failed: %s", msg);
	channel_listener_close(d.l);
	if (!ret && d.ret == 0 && d.vm) {
		/* the guest runs on at the destination: watch it for a while */
		if (opts->paused && vm_resume(d.vm) < 0)
			bench_fatal("vm_resume at the destination failed");
		vm_get_stats(d.vm, &b);
		dst_first = b.progress;
		stalled = !wait_progress(&w, a.progress + AFTER_PAGES, AFTER_MIN_NS,
					 AFTER_DEADLINE_NS);
		if (stalled) {
			/* twice, a second apart: is any vCPU moving at all? */
			vm_debug_dump(d.vm);
			sleep(1);
			vm_debug_dump(d.vm);
		}
	}
	atomic_store(&w.stop, true);
	pthread_join(w.thread, NULL);
	atomic_store(&w.job, NULL);
	migrate_job_free(job);

	j = json_object();
	if (!j)
		bench_fatal("out of memory (JSON)");
	if (cmdline) {
		jstr(j, "bench", "migrate");
		jstr(j, "command", cmdline);
	}
	if (stalled) {
		char st[160], con[VM_CONSOLE_BYTES];
		size_t n = vm_console_read(d.vm, con, sizeof(con));

		vm_get_stats(d.vm, &b);
		snprintf(st, sizeof(st),
			 "completed, but the destination guest made no progress in %llu s",
			 (unsigned long long)(AFTER_DEADLINE_NS / 1000000000ull));
		jstr(j, "status", st);
		jstr(j, "src_state", src_state);
		jstr(j, "dst_state", vm_run_state_name(vm_get_run_state(d.vm)));
		jint(j, "src_final_progress", (long long)a.progress);
		jint(j, "dst_first_progress", (long long)dst_first);
		jint(j, "dst_progress", (long long)b.progress);
		jint(j, "dst_errors", (long long)b.errors);
		jint(j, "dst_events", (long long)b.events);
		jstr(j, "dst_console_tail", con + (n > 300 ? n - 300 : 0));
	} else {
		jstr(j, "status", ms.status);
	}
	jstr(j, "error", ret ? (ms.error[0] ? ms.error : d.err) : "");
	jint(j, "mem_bytes", (long long)mem);
	jint(j, "workset_bytes", (long long)workset);
	jint(j, "warm_pages", (long long)warm);
	jbool(j, "verified", ms.verified);
	jbool(j, "paused", opts->paused);
	s = jobj(j, "settings");
	jint(s, "max_downtime_ms", (long long)o.max_downtime_ms);
	jint(s, "bandwidth", (long long)o.bandwidth);
	jint(s, "xbzrle_cache_bytes", (long long)o.xbzrle_cache_bytes);
	jstr(s, "compress", o.compress);
	jint(s, "parallel", o.parallel);
	jbool(s, "auto_converge", o.auto_converge);
	jint(s, "throttle_initial_pct", THROTTLE_INITIAL_PCT);
	jint(s, "throttle_step_pct", THROTTLE_STEP_PCT);
	jint(s, "max_throttle_pct", VM_MAX_THROTTLE);
	jint(s, "max_iterations", o.max_iterations);
	jint(s, "timeout_ms", (long long)o.timeout_ms);
	jint(s, "vcpus", vcpus);
	jint(s, "dirty_ring", opts->dirty_ring);
	jint(s, "postcopy_after_ms", (long long)pcs_sw.after_ms);
	jstr(s, "postcopy", migrate_postcopy_name(o.postcopy));
	if (o.postcopy != MIGRATE_POSTCOPY_OFF) {
		/* the job's figures as the job stats JSON names them (tools/jobs.c) */
		json_t *p = jobj(j, "postcopy");

		jbool(p, "active", ms.postcopy.active);
		jint(p, "requests", (long long)ms.postcopy.requests);
		jint(p, "pages_pushed", (long long)ms.postcopy.pages_pushed);
		jint(p, "fault_latency_us_p50", (long long)ms.postcopy.fault_latency_us_p50);
		jint(p, "fault_latency_us_p99", (long long)ms.postcopy.fault_latency_us_p99);
		jint(p, "blocked_ms", (long long)ms.postcopy.blocked_ms);
		jint(p, "bytes_after_switchover", (long long)ms.postcopy.bytes_after_switchover);
		jint(p, "pages_missing", (long long)ms.postcopy.pages_missing);
		jint(p, "reconnects", ms.postcopy.reconnects);
		jstr(p, "switch_error", pcs_sw.err);
		jreal(p, "switch_asked_at_ms", ms_since(pcs_sw.t_asked, w.t_migrate), 1);
		jreal(p, "switch_at_ms", ms_since(pcs_sw.t_seen, w.t_migrate), 1);
		jint(p, "dst_faults", (long long)d.pc.faults);
		jint(p, "dst_requests", (long long)d.pc.requests);
		jint(p, "dst_pages_placed", (long long)d.pc.pages_placed);
		jint(p, "dst_blocked_us", (long long)d.pc.blocked_us);
		jint(p, "dst_p50_us", d.pc.p50_us);
		jint(p, "dst_p99_us", d.pc.p99_us);
		jreal(p, "dst_done_at_ms", ms_since(d.t_pc_done, w.t_migrate), 1);
	}
	{
		/* the downtime's timeline, as the job stats JSON names it (tools/jobs.c) */
		json_t *sw = jobj(j, "switchover");

		jint(sw, "start_us", (long long)ms.switchover.start_us);
		jint(sw, "paused_us", (long long)ms.switchover.paused_us);
		jint(sw, "synced_us", (long long)ms.switchover.synced_us);
		jint(sw, "pages_us", (long long)ms.switchover.pages_us);
		jint(sw, "state_us", (long long)ms.switchover.state_us);
		jint(sw, "sent_us", (long long)ms.switchover.sent_us);
		jint(sw, "ready_us", (long long)ms.switchover.ready_us);
		jint(sw, "resumed_us", (long long)ms.switchover.resumed_us);
		jint(sw, "pages", (long long)ms.switchover.pages);
		jint(sw, "bytes", (long long)ms.switchover.bytes);
		jint(sw, "state_bytes", (long long)ms.switchover.state_bytes);
		jint(sw, "expected_us", (long long)ms.switchover.expected_us);
		jstr(sw, "reason", ms.switchover.reason);
	}
	s = jobj(j, "transport");
	jstr(s, "kind", ms.transport.kind);
	jstr(s, "cipher", ms.transport.cipher);
	jbool(s, "ktls", ms.transport.ktls);
	jint(j, "total_ms", (long long)ms.total_ms);
	jint(j, "downtime_ms", (long long)ms.downtime_ms);
	jint(j, "setup_ms", (long long)ms.setup_ms);
	jreal(j, "guest_downtime_ms", (double)w.g.gap_ns / 1e6, 1);
	jreal(j, "guest_gap_at_ms", ((double)w.g.gap_start_ns - (double)w.t_migrate) / 1e6, 1);
	jint(j, "watch_samples", (long long)w.g.samples);
	jint(j, "watch_max_sample_us", llround((double)w.g.max_sample_ns / 1e3));
	json_object_set_new(j, "watch_sched", json_string(w.sched));
	jint(j, "transferred_bytes", (long long)ms.transferred_bytes);
	jint(j, "dirty_sync_count", (long long)ms.dirty_sync_count);
	jint(j, "normal_pages", (long long)ms.normal_pages);
	jint(j, "duplicate_pages", (long long)ms.duplicate_pages);
	jint(j, "throttle_pct", ms.throttle_pct);
	jint(j, "max_throttle_pct", MAX(w.max_throttle, ms.throttle_pct));
	jint(j, "xbzrle_pages", (long long)ms.xbzrle.pages);
	jreal(j, "compression_ratio", ms.compression.ratio, 2);
	jstr(j, "compression_codec", ms.compression.codec);
	jstr(j, "compression_reason", ms.compression.reason);
	jint(j, "compression_switches", ms.compression.switches);
	jint(j, "pages_per_s", (long long)rate);
	jint(j, "mig_pages_per_s",
	     t_src ? llround((double)(a.progress - p0) * 1000.0 / (double)t_src) : 0);
	jreal(j, "dst_accept_at_ms", ms_since(d.t_accept, w.t_migrate), 1);
	jreal(j, "dst_built_at_ms", ms_since(d.t_built, w.t_migrate), 1);
	jreal(j, "dst_started_at_ms", ms_since(d.t_started, w.t_migrate), 1);
	jreal(j, "dst_resumed_at_ms", ms_since(d.t_resumed, w.t_migrate), 1);
	jint(j, "warm_ms", llround((double)t_warm / 1e6));
	jint(j, "lo_bytes", lo0 != LO_UNKNOWN && lo1 != LO_UNKNOWN ? (long long)(lo1 - lo0) : -1ll);
	/* the engine's guess when round 0 sent under 1 MiB (compressed): not a measurement */
	jint(j, "bulk_bytes_per_s", w.bulk_bps == ENGINE_DEFAULT_BW ? 0ll : (long long)w.bulk_bps);
	if (json) {
		bench_json_print(f, j);
	} else {
		print_table(f, cmdline, j);
		json_decref(j);
	}

	vm_destroy(d.vm);
	vm_destroy(src);
	/* every receiver left it with its VM */
	pc_table_destroy(pcs);
	session_table_destroy(sessions);
	pcs = NULL;
	sessions = NULL;
	if (stalled) {
		snprintf(err, errlen, "the migration completed, but the destination guest made no "
				      "progress");
		return 1;
	}
	if (ret || d.ret) {
		snprintf(err, errlen, "the migration did not complete: %s",
			 ms.error[0] ? ms.error : d.err[0] ? d.err : ms.status);
		return 1;
	}
	return 0;
}
