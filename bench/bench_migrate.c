/* SPDX-License-Identifier: MIT */
/*
 * bench_migrate.c - one live migration on real KVM, measured end to end,
 * in one process: a source VM running seqdirty, and a destination thread
 * that accepts the stream on TCP loopback, builds the VM, starts it and
 * confirms (as tests/kvm/test_migrate.c does). bench/e2e.sh runs it once
 * per scenario, next to the same scenario under QEMU, and builds the table.
 *
 *   bench_migrate run [--mem SIZE] [--workset SIZE] [--vcpus N] [--xbzrle SIZE]
 *                     [--compress none|zstd[:L]|lz4] [--parallel N] [--auto-converge] [--verify]
 *                     [--max-downtime MS] [--bandwidth BYTES_PER_S] [--max-iterations N]
 *                     [--warm PAGES] [--timeout MS]
 *                     [--postcopy off|auto|now|manual] [--postcopy-after MS]
 *   bench_migrate tcp [--mib N]
 *   bench_migrate watch SRC_FILE DST_FILE
 *   bench_migrate probe
 *
 * run: start the guest, let it dirty until its progress reaches --warm
 * pages (default two passes over the working set, so every page of it holds
 * data), measure its pace for 0.5 s (pages_per_s), migrate, and print one
 * JSON object:
 *  - total_ms, downtime_ms, transferred_bytes, dirty_sync_count, status,
 *    error: the engine's job statistics (migrate_stats);
 *  - guest_downtime_ms: the longest interval in which the guest made no
 *    progress, as the VMM sees it. A watcher thread samples
 *    vm_get_stats().progress of the source and (once it runs) of the
 *    destination every WATCH_PERIOD_US, from ARM_LEAD_US before
 *    migrate_start until the destination has run on for a while; the guest's progress is the
 *    larger of the two (the destination's counter starts at the source's
 *    final value, carried in the state). guest_gap_at_ms says where that
 *    interval began, from migrate_start; watch_max_sample_us is the
 *    largest spacing of the samples (the resolution actually achieved);
 *  - max_throttle_pct: the highest auto-converge throttle the watcher saw
 *    (it looks every THROTTLE_SAMPLE_EVERY samples);
 *  - mig_pages_per_s: the source guest's pace while it migrates (progress
 *    from migrate_start to its pause, or to the end of a failed job);
 *  - dst_*_at_ms: when the destination accepted, built the VM, started it
 *    and sent RESUMED, from migrate_start;
 *  - lo_bytes: the loopback interface's tx_bytes over the migration;
 *  - bulk_bytes_per_s: the bandwidth the engine measured for round 0 (its
 *    bytes over its time): the first non-zero migrate_stats.bandwidth,
 *    which the source sets after round 0 and only averages from round 1 on.
 *    The watcher samples it at the same period; a round 1 is far longer.
 *    0 when round 0 sent too little to be measured (the engine then
 *    assumes 1 GiB/s; with zstd a 16 MiB round 0 is well under 1 MiB).
 *  - settings: the engine options the job ran with (migrate_opts after
 *    the defaults and the command line), so the table can show them next to
 *    QEMU's query-migrate-parameters.
 *  - postcopy: with --postcopy, the job's post-copy figures (the "postcopy"
 *    object of the job stats: requests, pages_pushed, fault latency p50/p99,
 *    blocked_ms, bytes_after_switchover, ...), when the switch was asked
 *    for (switch_asked_at_ms) and when the job was first seen past pre-copy
 *    (switch_at_ms: status device or postcopy, polled every
 *    SWITCH_POLL_US: the source guest pauses there), and the destination
 *    receiver's own count (dst_faults, dst_pages_placed, dst_done_at_ms).
 * Post-copy: the destination thread serves it as the agent does
 * (tools/agent_incoming.c): channel 0's decoder gets a post-copy table,
 * a second thread takes the fault channel (the connection the source
 * opens right after channel 0's handshake) and serves it inside
 * incoming_run(); after RESUMED, incoming_run_postcopy() takes the pages
 * still missing, and the receiver is released once every one is in place.
 * --postcopy manual with --postcopy-after MS calls migrate_postcopy() MS
 * after migrate_start (the QEMU side sends migrate-start-postcopy as long
 * after `migrate`): a timed step of the benchmark, not a synchronisation.
 * With post-copy, mig_pages_per_s counts up to switch_at_ms (the guest
 * pauses there), and --parallel must be 1 (the fault channel and the
 * parallel ones would race for the same accept here).
 * The guest's progress counts pages written, reported every 256 pages.
 * --bandwidth takes bytes/s (K/M/G suffixes are binary), 0 = unlimited.
 *
 * tcp: the raw loopback TCP throughput in the same run: --mib MiB (default
 * 1024) written in 1 MiB write()s on one thread and read() on another over a
 * connection made by channel_listen/connect/accept (so with the channel's
 * socket options). Prints {"tcp_bytes_per_s": ...}.
 *
 * watch SRC_FILE DST_FILE: the same guest-seen downtime for QEMU, whose
 * guest (bench/qemu/dirty.S) writes one byte per 256 pages to a debugcon
 * file on each side: samples the sum of both sizes every WATCH_PERIOD_US
 * until SIGTERM, then prints guest_downtime_ms and gap_start_ns (on
 * CLOCK_MONOTONIC, as Python's time.monotonic()). bench/qemu/qmp.py runs it.
 *
 * probe: does KVM really run a guest here? Starts a small seqdirty VM and
 * waits (up to PROBE_DEADLINE_NS) until its progress reaches PROBE_PAGES:
 * exit 0 when it did, 1 when the VM could not be built or made no progress,
 * 77 without /dev/kvm. bench/e2e.sh runs natively when it passes.
 *
 * Exit status: 0 (also when the migration itself failed: status says so),
 * 1 on a setup error, 77 without /dev/kvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/xio.h"
#include "migrate/incoming.h"
#include "migrate/migrate.h"
#include "migrate/mio.h"
#include "migrate/pcdest.h"
#include "migrate/session.h"
#include "protocol/channel.h"
#include "tests/helpers/mdest.h"
#include "vm/vm.h"

#define WATCH_PERIOD_US	  200
#define WARM_DEADLINE_NS  (300ull * 1000000000ull)
#define AFTER_PAGES	  4096			 /* the destination must have run this far ... */
#define AFTER_MIN_NS	  (1000ull * 1000000ull) /* ... and for at least this long */
#define AFTER_DEADLINE_NS (60ull * 1000000000ull)
#define RATE_WINDOW_US	  500000
#define ARM_LEAD_US	  50000	       /* gaps count from this long before migrate_start */
#define ENGINE_DEFAULT_BW (1ull << 30) /* migrate/source.c's bandwidth before a measurement */
#define PUMP_BUF	  (1u << 20)
#define PROBE_PAGES	  1024
#define PROBE_DEADLINE_NS (30ull * 1000000000ull)
/* migrate/converge.c's auto-converge steps (converge.h), shown in the settings */
#define THROTTLE_INITIAL_PCT 20
#define THROTTLE_STEP_PCT    10
#define THROTTLE_SAMPLE_EVERY 25 /* watcher samples between looks at throttle_pct (5 ms) */
#define SWITCH_POLL_US	  2000	/* post-copy: look for the switch this often (as qmp.py) */
#define FAULT_ACCEPT_MS	  30000	/* the fault channel comes right after channel 0's handshake */

NORETURN PRINTF_FMT(1, 2) static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_migrate: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	switch (*end) {
	case 'G':
	case 'g':
		v <<= 10;
		/* fall through */
	case 'M':
	case 'm':
		v <<= 10;
		/* fall through */
	case 'K':
	case 'k':
		v <<= 10;
		end++;
		break;
	default:
		break;
	}
	if (end == s || *end)
		die("bad size '%s'", s);
	return v;
}

static void json_str(const char *key, const char *s, bool comma)
{
	printf("\"%s\": \"", key);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	printf("\"%s", comma ? ", " : "");
}

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

/* Where the destination's parallel channels meet (made in main, kept to the end). */
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
			die("pthread_create: %s", strerror(errno));
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
		die("listen: %s", msg);
	snprintf(d->uri, sizeof(d->uri), "%s://127.0.0.1:%u", tls_dir ? "tls" : "tcp",
		 channel_listener_port(d->l));
	if (pthread_create(&d->thread, NULL, dest_thread, d))
		die("pthread_create: %s", strerror(errno));
}

/* ---- the watcher ----------------------------------------------------------------- */

/*
 * The longest interval without guest progress, from samples of a counter
 * that only grows: the time between two samples that saw it grow (or from
 * the last growth to the end). Its error is one sample spacing.
 */
struct gaps {
	uint64_t samples, prev_ns, max_sample_ns;
	uint64_t last_p, last_inc_ns;
	uint64_t gap_ns, gap_start_ns;
};

static void gaps_sample(struct gaps *g, uint64_t p, uint64_t now)
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

static void gaps_end(struct gaps *g, uint64_t now)
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
	struct gaps g;		   /* read after the join */
	uint64_t bulk_bps;	   /* read after the join */
	unsigned max_throttle;	   /* highest throttle_pct seen; read after the join */
	_Atomic uint64_t progress; /* for the main thread's waits */
};

static void *watch_thread(void *arg)
{
	struct watch *w = arg;
	const struct timespec period = { 0, WATCH_PERIOD_US * 1000 };
	bool armed = false;

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
		gaps_sample(&w->g, p, clock_now_ns());
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
	gaps_end(&w->g, clock_now_ns());
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

static int cmd_run(int argc, char **argv)
{
	uint64_t mem = 1ull << 30, workset = 16ull << 20, warm = 0, t_warm, lo0, lo1, rate, p0,
		 t_src;
	unsigned vcpus = 1;
	struct migrate_opts o;
	struct vm_config cfg;
	struct migrate_job *job;
	struct migrate_stats ms;
	struct vm_guest_stats a, b;
	uint64_t dst_first = 0;
	const char *src_state;
	bool stalled = false;
	struct watch w;
	struct dest d;
	struct pc_switch pcs_sw = { 0 };
	struct vm *src = NULL;
	char err[512];
	int ret;

	migrate_opts_defaults(&o);
	o.max_downtime_ms = 300;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(arg, "--auto-converge")) {
			o.auto_converge = true;
			continue;
		}
		if (!strcmp(arg, "--verify")) {
			o.verify = true;
			continue;
		}
		if (!val)
			die("%s needs a value", arg);
		i++;
		if (!strcmp(arg, "--mem"))
			mem = parse_size(val);
		else if (!strcmp(arg, "--workset"))
			workset = parse_size(val);
		else if (!strcmp(arg, "--vcpus"))
			vcpus = (unsigned)parse_size(val);
		else if (!strcmp(arg, "--xbzrle"))
			o.xbzrle_cache_bytes = parse_size(val);
		else if (!strcmp(arg, "--compress"))
			snprintf(o.compress, sizeof(o.compress), "%s", val);
		else if (!strcmp(arg, "--parallel"))
			o.parallel = (unsigned)parse_size(val);
		else if (!strcmp(arg, "--max-downtime"))
			o.max_downtime_ms = parse_size(val);
		else if (!strcmp(arg, "--bandwidth"))
			o.bandwidth = parse_size(val);
		else if (!strcmp(arg, "--warm"))
			warm = parse_size(val);
		else if (!strcmp(arg, "--timeout"))
			o.timeout_ms = parse_size(val);
		else if (!strcmp(arg, "--max-iterations"))
			o.max_iterations = (unsigned)parse_size(val);
		else if (!strcmp(arg, "--tls-dir"))
			snprintf(o.tls_dir, sizeof(o.tls_dir), "%s", val);
		else if (!strcmp(arg, "--postcopy")) {
			if (migrate_postcopy_parse(val, &o.postcopy) < 0)
				die("--postcopy takes off, auto, now or manual, not '%s'", val);
		} else if (!strcmp(arg, "--postcopy-after"))
			pcs_sw.after_ms = parse_size(val);
		else
			die("unknown option %s", arg);
	}
	if (!warm)
		warm = 2 * workset / VM_PAGE_SIZE;
	if ((o.postcopy == MIGRATE_POSTCOPY_MANUAL) != (pcs_sw.after_ms != 0))
		die("--postcopy manual needs --postcopy-after MS (> 0), and only it takes one");
	if (o.postcopy != MIGRATE_POSTCOPY_OFF && o.parallel > 1)
		die("--postcopy with --parallel %u: not in this bench (one accept for both)",
		    o.parallel);

	if (vm_kvm_available(err, sizeof(err))) {
		fprintf(stderr, "bench_migrate: SKIPPED: %s\n", err);
		return 77;
	}
	vm_config_defaults(&cfg, "src");
	cfg.mem_bytes = mem;
	cfg.vcpus = vcpus;
	snprintf(cfg.guest, sizeof(cfg.guest), "seqdirty");
	snprintf(cfg.guest_args, sizeof(cfg.guest_args), "workset=%lluK",
		 (unsigned long long)(workset >> 10));
	if (vm_create(&cfg, &src, err, sizeof(err)))
		die("vm_create: %s", err);
	if (vm_start(src))
		die("vm_start failed");

	dest_init(&d);
	memset(&w, 0, sizeof(w));
	w.src = src;
	w.dst = &d;
	atomic_init(&w.job, NULL);
	atomic_init(&w.stop, false);
	atomic_init(&w.progress, 0);
	atomic_init(&w.arm, false);
	if (pthread_create(&w.thread, NULL, watch_thread, &w))
		die("pthread_create: %s", strerror(errno));
	t_warm = clock_now_ns();
	if (!wait_progress(&w, warm, 0, WARM_DEADLINE_NS)) {
		printf("{\"status\": \"error: warm-up: progress %llu of %llu after %llu s\"}\n",
		       (unsigned long long)atomic_load(&w.progress), (unsigned long long)warm,
		       (unsigned long long)(WARM_DEADLINE_NS / 1000000000ull));
		atomic_store(&w.stop, true);
		pthread_join(w.thread, NULL);
		vm_destroy(src);
		return 1;
	}
	t_warm = clock_now_ns() - t_warm;
	/* the guest's own pace just before the migration */
	rate = atomic_load(&w.progress);
	usleep(RATE_WINDOW_US);
	rate = (atomic_load(&w.progress) - rate) * 1000000ull / RATE_WINDOW_US;
	d.channels = o.parallel;
	d.postcopy = o.postcopy != MIGRATE_POSTCOPY_OFF;
	dest_start(&d, o.tls_dir[0] ? o.tls_dir : NULL);

	atomic_store(&w.arm, true);
	usleep(ARM_LEAD_US);
	lo0 = lo_tx_bytes();
	p0 = atomic_load(&w.progress);
	w.t_migrate = clock_now_ns();
	if (migrate_start(src, d.uri, &o, &job, err, sizeof(err)))
		die("migrate_start: %s", err);
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
	if (d.others && mdest_others_join(d.others, err, sizeof(err)) < 0 && !d.ret)
		die("a parallel channel failed: %s", err);
	channel_listener_close(d.l);
	if (!ret && d.ret == 0 && d.vm) {
		/* the guest runs on at the destination: watch it for a while */
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

	printf("{");
	if (stalled) {
		char st[160], con[VM_CONSOLE_BYTES];
		size_t n = vm_console_read(d.vm, con, sizeof(con));

		vm_get_stats(d.vm, &b);
		snprintf(st, sizeof(st),
			 "completed, but the destination guest made no progress in %llu s",
			 (unsigned long long)(AFTER_DEADLINE_NS / 1000000000ull));
		json_str("status", st, true);
		json_str("src_state", src_state, true);
		json_str("dst_state", vm_run_state_name(vm_get_run_state(d.vm)), true);
		printf("\"src_final_progress\": %llu, \"dst_first_progress\": %llu, "
		       "\"dst_progress\": %llu, \"dst_errors\": %llu, \"dst_events\": %llu, ",
		       (unsigned long long)a.progress, (unsigned long long)dst_first,
		       (unsigned long long)b.progress, (unsigned long long)b.errors,
		       (unsigned long long)b.events);
		json_str("dst_console_tail", con + (n > 300 ? n - 300 : 0), true);
	} else {
		json_str("status", ms.status, true);
	}
	json_str("error", ret ? (ms.error[0] ? ms.error : d.err) : "", true);
	printf("\"mem_bytes\": %llu, \"workset_bytes\": %llu, \"warm_pages\": %llu, ",
	       (unsigned long long)mem, (unsigned long long)workset, (unsigned long long)warm);
	printf("\"verified\": %s, ", ms.verified ? "true" : "false");
	printf("\"settings\": {\"max_downtime_ms\": %llu, \"bandwidth\": %llu, "
	       "\"xbzrle_cache_bytes\": %llu, ",
	       (unsigned long long)o.max_downtime_ms, (unsigned long long)o.bandwidth,
	       (unsigned long long)o.xbzrle_cache_bytes);
	json_str("compress", o.compress, true);
	printf("\"parallel\": %u, \"auto_converge\": %s, \"throttle_initial_pct\": %u, "
	       "\"throttle_step_pct\": %u, \"max_throttle_pct\": %u, \"max_iterations\": %u, "
	       "\"timeout_ms\": %llu, \"vcpus\": %u, \"postcopy_after_ms\": %llu, ",
	       o.parallel, o.auto_converge ? "true" : "false", THROTTLE_INITIAL_PCT,
	       THROTTLE_STEP_PCT, VM_MAX_THROTTLE, o.max_iterations,
	       (unsigned long long)o.timeout_ms, vcpus, (unsigned long long)pcs_sw.after_ms);
	json_str("postcopy", migrate_postcopy_name(o.postcopy), false);
	printf("}, ");
	if (o.postcopy != MIGRATE_POSTCOPY_OFF) {
		/* the job's figures as the job stats JSON names them (tools/jobs.c) */
		printf("\"postcopy\": {\"active\": %s, \"requests\": %llu, \"pages_pushed\": %llu, "
		       "\"fault_latency_us_p50\": %llu, \"fault_latency_us_p99\": %llu, "
		       "\"blocked_ms\": %llu, \"bytes_after_switchover\": %llu, "
		       "\"pages_missing\": %llu, \"reconnects\": %u, ",
		       ms.postcopy.active ? "true" : "false",
		       (unsigned long long)ms.postcopy.requests,
		       (unsigned long long)ms.postcopy.pages_pushed,
		       (unsigned long long)ms.postcopy.fault_latency_us_p50,
		       (unsigned long long)ms.postcopy.fault_latency_us_p99,
		       (unsigned long long)ms.postcopy.blocked_ms,
		       (unsigned long long)ms.postcopy.bytes_after_switchover,
		       (unsigned long long)ms.postcopy.pages_missing, ms.postcopy.reconnects);
		json_str("switch_error", pcs_sw.err, true);
		printf("\"switch_asked_at_ms\": %.1f, \"switch_at_ms\": %.1f, "
		       "\"dst_faults\": %llu, \"dst_requests\": %llu, \"dst_pages_placed\": %llu, "
		       "\"dst_blocked_us\": %llu, \"dst_p50_us\": %u, \"dst_p99_us\": %u, "
		       "\"dst_done_at_ms\": %.1f}, ",
		       ms_since(pcs_sw.t_asked, w.t_migrate), ms_since(pcs_sw.t_seen, w.t_migrate),
		       (unsigned long long)d.pc.faults, (unsigned long long)d.pc.requests,
		       (unsigned long long)d.pc.pages_placed, (unsigned long long)d.pc.blocked_us,
		       d.pc.p50_us, d.pc.p99_us, ms_since(d.t_pc_done, w.t_migrate));
	}
	printf("\"transport\": {");
	json_str("kind", ms.transport.kind, true);
	json_str("cipher", ms.transport.cipher, true);
	printf("\"ktls\": %s}, ", ms.transport.ktls ? "true" : "false");
	printf("\"total_ms\": %llu, \"downtime_ms\": %llu, \"setup_ms\": %llu, ",
	       (unsigned long long)ms.total_ms, (unsigned long long)ms.downtime_ms,
	       (unsigned long long)ms.setup_ms);
	printf("\"guest_downtime_ms\": %.1f, \"guest_gap_at_ms\": %.1f, ", (double)w.g.gap_ns / 1e6,
	       ((double)w.g.gap_start_ns - (double)w.t_migrate) / 1e6);
	printf("\"watch_samples\": %llu, \"watch_max_sample_us\": %.0f, ",
	       (unsigned long long)w.g.samples, (double)w.g.max_sample_ns / 1e3);
	printf("\"transferred_bytes\": %llu, \"dirty_sync_count\": %llu, ",
	       (unsigned long long)ms.transferred_bytes, (unsigned long long)ms.dirty_sync_count);
	printf("\"normal_pages\": %llu, \"duplicate_pages\": %llu, \"throttle_pct\": %u, "
	       "\"max_throttle_pct\": %u, ",
	       (unsigned long long)ms.normal_pages, (unsigned long long)ms.duplicate_pages,
	       ms.throttle_pct, MAX(w.max_throttle, ms.throttle_pct));
	printf("\"xbzrle_pages\": %llu, \"compression_ratio\": %.2f, ",
	       (unsigned long long)ms.xbzrle.pages, ms.compression.ratio);
	printf("\"pages_per_s\": %llu, \"mig_pages_per_s\": %.0f, ", (unsigned long long)rate,
	       t_src ? (double)(a.progress - p0) * 1000.0 / (double)t_src : 0.0);
	printf("\"dst_accept_at_ms\": %.1f, \"dst_built_at_ms\": %.1f, "
	       "\"dst_started_at_ms\": %.1f, "
	       "\"dst_resumed_at_ms\": %.1f, ",
	       ms_since(d.t_accept, w.t_migrate), ms_since(d.t_built, w.t_migrate),
	       ms_since(d.t_started, w.t_migrate), ms_since(d.t_resumed, w.t_migrate));
	printf("\"warm_ms\": %.0f, \"lo_bytes\": %lld, ", (double)t_warm / 1e6,
	       lo0 != LO_UNKNOWN && lo1 != LO_UNKNOWN ? (long long)(lo1 - lo0) : -1ll);
	/* the engine's guess when round 0 sent under 1 MiB (compressed): not a measurement */
	printf("\"bulk_bytes_per_s\": %llu}\n",
	       w.bulk_bps == ENGINE_DEFAULT_BW ? 0ull : (unsigned long long)w.bulk_bps);
	fflush(stdout);

	vm_destroy(d.vm);
	vm_destroy(src);
	return 0;
}

/* ---- probe: does a guest run here? ------------------------------------------------ */

static int cmd_probe(void)
{
	struct vm_config cfg;
	struct vm_guest_stats st = { 0 };
	struct vm *vm = NULL;
	char err[512];
	uint64_t t0;

	if (vm_kvm_available(err, sizeof(err))) {
		fprintf(stderr, "bench_migrate: probe: %s\n", err);
		return 77;
	}
	vm_config_defaults(&cfg, "probe");
	cfg.mem_bytes = 64ull << 20;
	cfg.vcpus = 1;
	snprintf(cfg.guest, sizeof(cfg.guest), "seqdirty");
	snprintf(cfg.guest_args, sizeof(cfg.guest_args), "workset=1M");
	if (vm_create(&cfg, &vm, err, sizeof(err))) {
		fprintf(stderr, "bench_migrate: probe: vm_create: %s\n", err);
		return 1;
	}
	if (vm_start(vm)) {
		fprintf(stderr, "bench_migrate: probe: vm_start failed\n");
		vm_destroy(vm);
		return 1;
	}
	t0 = clock_now_ns();
	for (;;) {
		vm_get_stats(vm, &st);
		if (st.progress >= PROBE_PAGES || vm_dead_vcpus(vm) ||
		    clock_now_ns() - t0 > PROBE_DEADLINE_NS)
			break;
		usleep(2000);
	}
	vm_destroy(vm);
	if (st.progress < PROBE_PAGES) {
		fprintf(stderr, "bench_migrate: probe: the guest made %llu of %u pages of progress\n",
			(unsigned long long)st.progress, PROBE_PAGES);
		return 1;
	}
	printf("{\"probe\": \"ok\", \"ms\": %.0f}\n", (double)(clock_now_ns() - t0) / 1e6);
	return 0;
}

/* ---- tcp: the raw loopback throughput ------------------------------------------ */

struct pump {
	int fd;
	uint64_t bytes;
	int ret;
};

static void *pump_reader(void *arg)
{
	struct pump *p = arg;
	uint8_t *buf = malloc(PUMP_BUF);
	uint64_t got = 0;

	if (!buf) {
		p->ret = -ENOMEM;
		return NULL;
	}
	while (got < p->bytes) {
		ssize_t n = read(p->fd, buf, PUMP_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			p->ret = -EIO;
			break;
		}
		got += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

static int cmd_tcp(int argc, char **argv)
{
	uint64_t bytes = 1ull << 30, t0;
	struct channel_listener *l;
	struct channel *tx, *rx;
	struct pump p = { 0 };
	char err[256], uri[256];
	uint8_t *buf;
	pthread_t t;
	double secs;

	for (int i = 0; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--mib"))
			bytes = parse_size(argv[i + 1]) << 20;
		else
			die("unknown option %s", argv[i]);
	}
	buf = malloc(PUMP_BUF);
	if (!buf)
		die("out of memory");
	for (size_t i = 0; i < PUMP_BUF; i++)
		buf[i] = (uint8_t)(i * 131u + (i >> 12));
	if (channel_listen("tcp:127.0.0.1:0", &l, err, sizeof(err)))
		die("listen: %s", err);
	if (channel_listener_uri(l, uri, sizeof(uri)) < 0)
		die("listener URI");
	if (channel_connect(uri, 10000, &tx, err, sizeof(err)))
		die("connect %s: %s", uri, err);
	if (channel_accept(l, 10000, &rx, err, sizeof(err)))
		die("accept: %s", err);
	channel_listener_close(l);
	p.fd = channel_fd(rx);
	p.bytes = bytes;
	t0 = clock_now_ns();
	if (pthread_create(&t, NULL, pump_reader, &p))
		die("pthread_create: %s", strerror(errno));
	for (uint64_t sent = 0; sent < bytes; sent += PUMP_BUF)
		if (write_all(channel_fd(tx), buf, PUMP_BUF))
			die("write: %s", strerror(errno));
	pthread_join(t, NULL);
	secs = (double)(clock_now_ns() - t0) / 1e9;
	if (p.ret)
		die("read: %s", strerror(-p.ret));
	channel_close(tx);
	channel_close(rx);
	free(buf);
	printf("{\"tcp_bytes\": %llu, \"tcp_ms\": %.1f, \"tcp_bytes_per_s\": %.0f}\n",
	       (unsigned long long)bytes, secs * 1e3, (double)bytes / secs);
	return 0;
}

/* ---- watch: the same sampling for QEMU's debugcon files -------------------------- */

static volatile sig_atomic_t watch_stop;

static void on_term(int sig)
{
	(void)sig;
	watch_stop = 1;
}

/* Size of the file at path, opened once it exists (fd cached in *fd). */
static uint64_t file_size(const char *path, int *fd)
{
	struct stat st;

	if (*fd < 0)
		*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0 || fstat(*fd, &st))
		return 0;
	return (uint64_t)st.st_size;
}

static int cmd_watch(int argc, char **argv)
{
	const struct timespec period = { 0, WATCH_PERIOD_US * 1000 };
	struct sigaction sa;
	struct gaps g;
	int fs = -1, fd = -1;
	uint64_t s = 0, d = 0;

	if (argc != 2)
		die("usage: bench_migrate watch SRC_FILE DST_FILE");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	memset(&g, 0, sizeof(g));
	while (!watch_stop) {
		s = file_size(argv[0], &fs);
		d = file_size(argv[1], &fd);
		gaps_sample(&g, s + d, clock_now_ns());
		nanosleep(&period, NULL);
	}
	gaps_end(&g, clock_now_ns());
	printf("{\"guest_downtime_ms\": %.1f, \"gap_start_ns\": %llu, \"watch_samples\": %llu, "
	       "\"watch_max_sample_us\": %.0f, \"src_bytes\": %llu, \"dst_bytes\": %llu}\n",
	       (double)g.gap_ns / 1e6, (unsigned long long)g.gap_start_ns,
	       (unsigned long long)g.samples, (double)g.max_sample_ns / 1e3, (unsigned long long)s,
	       (unsigned long long)d);
	return 0;
}

int main(int argc, char **argv)
{
	if (session_table_create(&sessions) < 0 || pc_table_create(&pcs) < 0) {
		fprintf(stderr, "bench_migrate: out of memory\n");
		return 1;
	}
	if (argc >= 2 && !strcmp(argv[1], "run")) {
		int ret = cmd_run(argc - 2, argv + 2);

		/* every receiver left it with its VM */
		pc_table_destroy(pcs);
		return ret;
	}
	if (argc >= 2 && !strcmp(argv[1], "tcp"))
		return cmd_tcp(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "watch"))
		return cmd_watch(argc - 2, argv + 2);
	if (argc == 2 && !strcmp(argv[1], "probe"))
		return cmd_probe();
	fprintf(stderr, "usage: bench_migrate run [--mem SIZE] [--workset SIZE] [--vcpus N] "
			"[--xbzrle SIZE] [--compress C] [--parallel N] [--auto-converge] [--verify] [--max-downtime MS] "
			"[--bandwidth BYTES_PER_S] [--warm PAGES] [--timeout MS] [--max-iterations N]\n"
			"                        [--postcopy off|auto|now|manual] [--postcopy-after MS]\n"
			"                        [--tls-dir DIR]  (TLS with the credentials of DIR, both ends)\n"
			"       bench_migrate tcp [--mib N]\n"
			"       bench_migrate watch SRC_FILE DST_FILE\n"
			"       bench_migrate probe\n");
	return 2;
}
