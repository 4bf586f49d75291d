/* SPDX-License-Identifier: MIT */
/*
 * cmd_migrate.c - kvmig migrate, and kvmig job info|cancel|postcopy|resume
 * (tools/cmd_migrate.h).
 */
#include "tools/cmd_migrate.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/parse.h"
#include "dirtylog/dirtylog.h"
#include "migrate/announce.h"
#include "migrate/migrate.h"
#include "protocol/channel.h"
#include "protocol/uri.h"

#define DEFAULT_XBZRLE (64ull << 20)
#define POLL_MS	       150 /* kvmig migrate polls job.info this often */

static void help_migrate(FILE *f)
{
	fprintf(f,
		"Usage: kvmig migrate NAME --to URI [OPTIONS]\n"
		"\n"
		"Live-migrate VM NAME from this agent to the agent listening on URI\n"
		"(kvmigd --listen): the guest keeps running while its memory is copied in\n"
		"rounds, then stops for a short stop-and-copy and resumes at the\n"
		"destination under the same name. If anything fails before the\n"
		"destination is told to start the VM, the guest runs on here unharmed.\n"
		"If the link fails after that, before the destination confirmed that\n"
		"the VM runs, the copy here stays paused (the destination may run it):\n"
		"check there, and only if it does not run there, kvmig vm resume NAME.\n"
		"A paused VM migrates too and arrives paused (kvmig vm resume NAME there\n"
		"runs it); a failure leaves it paused here.\n"
		"\n"
		"URI: tcp://HOST:PORT, unix:///PATH, tls://HOST:PORT (kvmigd --listen\n"
		"tls:HOST:PORT there; both ends show certificates, see --tls-dir) or\n"
		"ssh://[USER@]HOST[:PORT] (through the sshd there: no listener is exposed).\n"
		"\n"
		"Options:\n"
		"  --max-downtime MS      longest acceptable pause at switchover (default 300)\n"
		"  --bandwidth MiB/s      limit the stream (a number, fractions allowed;\n"
		"                         default and 0: unlimited)\n"
		"  --xbzrle[=CACHE]       send re-dirtied pages as XBZRLE deltas against a\n"
		"                         cache of CACHE bytes (K/M/G; default 64M)\n"
		"  --compress ALG         none (default), zstd[:LEVEL] (1..22) or lz4\n"
		"  --parallel N           connections carrying pages side by side, 1 to %d\n"
		"  --auto-converge        throttle the vCPUs when the guest dirties memory\n"
		"                         faster than the link moves it\n"
		"  --max-iterations N     give up after N precopy rounds (default 30; 0: never)\n"
		"  --timeout SEC          give up after SEC seconds (default: never)\n"
		"  --verify               compare a digest of all guest RAM on both sides\n"
		"  --strict-cpu           refuse when the destination's TSC rate differs\n"
		"  --dirty-track bitmap|ring   KVM dirty log (default) or dirty ring (the VM\n"
		"                         needs vm start --dirty-ring ENTRIES)\n"
		"  --tls-dir DIR          TLS credentials: ca-cert.pem, client-cert.pem,\n"
		"                         client-key.pem (default: the agent's --tls-dir)\n"
		"  --ssh-accept-new       ssh://: trust and record a host key that is not in\n"
		"                         ~/.ssh/known_hosts (a changed key is always refused)\n"
		"  --ssh-agent-port PORT  ssh://: the destination agent's TCP port on that host\n"
		"                         (default %u), reached through an SSH channel\n"
		"  --ssh-exec[=CMD]       ssh://: run CMD there (default '%s',\n"
		"                         which hands the stream to the agent of that\n"
		"                         host) and carry the stream on its stdin/stdout\n"
		"  --ssh-data ssh|tls     ssh://: carry the pages on the SSH channel (ssh,\n"
		"                         default), or only authenticate over SSH and move\n"
		"                         them on direct TLS connections opened with a\n"
		"                         one-time key (tls; much faster)\n"
		, MIGRATE_MAX_PARALLEL, CHANNEL_AGENT_PORT, MIGRATE_SSH_EXEC_CMD);
	fprintf(f,
		"  --detach               start the job and return; follow it with\n"
		"                         kvmig job info NAME\n"
		"  --json                 print the final statistics as one JSON object\n"
		"  --postcopy[=MODE]      move the guest first and its memory after: at the\n"
		"                         switchover the destination runs it and fetches each\n"
		"                         page it touches from here while the rest streams\n"
		"                         on. MODE auto (plain --postcopy): after the first\n"
		"                         full round, or as soon as pre-copy stops\n"
		"                         converging; now: at once, before any round;\n"
		"                         manual: only on kvmig job postcopy NAME; off: never\n"
		"                         (the default). From the switchover on, the\n"
		"                         destination owns the guest: when the link breaks,\n"
		"                         its vCPUs wait there for the pages they lack\n"
		"                         (nothing is lost) until kvmig job resume NAME\n"
		"                         [--to URI] or --postcopy-reconnect; only kvmig job\n"
		"                         cancel NAME gives up, and the pages not yet there\n"
		"                         are lost\n"
		"  --postcopy-reconnect SEC  after a broken link in post-copy, reconnect by\n"
		"                         itself for up to SEC seconds (0 to %llu; default 0:\n"
		"                         wait for kvmig job resume)\n"
		"  --announce IFACE       once the guest runs at the destination, send QEMU's\n"
		"                         RARP announce for its MAC on IFACE there (the\n"
		"                         destination refuses at the handshake when it has\n"
		"                         no IFACE; default: its kvmigd --announce)\n"
		"  --announce-rounds N    frames to send (default 5, 1 to 1000)\n"
		"  --announce-initial MS  the first gap (default 50, 1 to 100000)\n"
		"  --announce-step MS     each gap grows by MS (default 100, 0 to 100000)\n"
		"  --announce-max MS      no gap is longer (default 550): frames at\n"
		"                         0, 50, 200, 450 and 800 ms with the defaults\n"
		"\n"
		"Without --detach, kvmig waits for the end of the job. On a terminal (or\n"
		"with KVMIG_PROGRESS=1; KVMIG_PROGRESS=0 turns it off) it draws a\n"
		"progress line on stderr: the share of the stream sent (bytes\n"
		"sent against what is still dirty), the rate, the dirty memory left, the\n"
		"round, the expected downtime and the vCPU throttle; in post-copy the\n"
		"pages still missing at the destination and the requests it made. If\n"
		"the link breaks in post-copy (status postcopy-paused), it says so and\n"
		"keeps waiting. Ctrl-C cancels the migration (the guest stays here); a\n"
		"second Ctrl-C stops waiting. In post-copy, Ctrl-C only stops waiting:\n"
		"the job goes on (kvmig job cancel NAME gives up).\n"
		"At the end it prints the job statistics (the names of virsh domjobinfo\n"
		"and QEMU query-migrate; with --json one JSON object), also when the\n"
		"migration failed.\n"
		"\n"
		"Exit status: 0 the VM runs at the destination (and is gone here); 1 the\n"
		"migration failed or was cancelled ('kvmig: migration of NAME failed:\n"
		"<reason>' on stderr) or the agent refused it; 2 bad usage.\n",
		(unsigned long long)(migrate_limit(MIGRATE_OPT_POSTCOPY_RECONNECT)->max / 1000));
}

#define JOB_USAGE                                                                                \
	"usage: kvmig job info NAME | job cancel NAME | job postcopy NAME | job resume NAME "     \
	"[--to URI]"

static void help_job(FILE *f)
{
	fprintf(f, "Usage: kvmig job info NAME | job cancel NAME | job postcopy NAME\n"
		   "       kvmig job resume NAME [--to URI]\n"
		   "\n"
		   "  job info NAME     statistics of the migration job of VM NAME: live while\n"
		   "                    it runs, final after it ended (kept until a new job\n"
		   "                    starts or another VM takes the name)\n"
		   "  job cancel NAME   cancel the running job; before the switchover the VM\n"
		   "                    runs on at the source; in post-copy this gives up the\n"
		   "                    guest, and the pages the destination lacks are lost\n"
		   "  job postcopy NAME switch a job in pre-copy to post-copy now (it must have\n"
		   "                    been started with --postcopy[=MODE], e.g. =manual): the\n"
		   "                    guest runs at the destination, its pages follow\n"
		   "  job resume NAME [--to URI]\n"
		   "                    reconnect a post-copy whose link broke (job info says\n"
		   "                    postcopy-paused; the guest waits at the destination,\n"
		   "                    nothing is lost), to URI or to where it went first\n"
		   "\n"
		   "Every command takes --json.\n");
}

/* ---- migration ---- */

/*
 * --announce-rounds N, --announce-initial MS, --announce-step MS,
 * --announce-max MS into the request's announce_* fields. Return: false
 * when argv[*i] is none of them.
 */
static bool announce_num_opt(const struct cli *cli, int *i, json_t *req, const char *hint)
{
	static const struct {
		const char *flag, *field;
		uint64_t min, max;
	} o[] = {
		{ "--announce-rounds", "announce_rounds", 1, ANNOUNCE_MAX_ROUNDS },
		{ "--announce-initial", "announce_initial_ms", 1, ANNOUNCE_MAX_MS },
		{ "--announce-step", "announce_step_ms", 0, ANNOUNCE_MAX_MS },
		{ "--announce-max", "announce_max_ms", 1, ANNOUNCE_MAX_MS },
	};
	const char *v;
	uint64_t n;

	for (size_t k = 0; k < sizeof(o) / sizeof(o[0]); k++) {
		if (!cli_take_opt(cli->argc, cli->argv, i, o[k].flag, &v, hint))
			continue;
		if (parse_u64(v, &n) < 0 || n < o[k].min || n > o[k].max)
			cli_usage_error(hint, "invalid %s '%s': expected %llu to %llu", o[k].flag, v,
					(unsigned long long)o[k].min, (unsigned long long)o[k].max);
		json_object_set_new(req, o[k].field, json_integer((json_int_t)n));
		return true;
	}
	return false;
}

static volatile sig_atomic_t interrupts;

static void on_sigint(int sig)
{
	(void)sig;
	interrupts++;
}

/*
 * Check a destination URI with the parser the agent's channel uses
 * (protocol/uri.h): tcp://HOST:PORT (HOST a name, IPv4 or [IPv6]),
 * unix:///PATH; tls:// and ssh:// are the contract's too, but their
 * transports are not in this build yet (exit 2).
 */
static void check_uri(const char *uri, const char *hint)
{
	struct uri u;
	char err[512];

	if (uri_parse(uri, &u, err, sizeof(err)) < 0)
		cli_usage_error(hint, "invalid --to: %s", err);
	if (!channel_ops_for(u.scheme)) {
		fprintf(stderr, "kvmig: --to %s: %s migration is not implemented yet\n", uri,
			uri_scheme_name(u.scheme));
		exit(CLI_EXIT_USAGE);
	}
}

/* A rate in MiB/s: a non-negative decimal number. */
static int parse_mib_s(const char *s, uint64_t *bytes_s)
{
	char *end;
	double v;

	if (!s[0] || !((s[0] >= '0' && s[0] <= '9') || s[0] == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < 0 || v > 1e9)
		return -EINVAL;
	*bytes_s = (uint64_t)(v * 1048576.0);
	if (v > 0 && *bytes_s == 0)
		*bytes_s = 1;
	return 0;
}

static double json_real_or_int(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static bool job_over(const char *status)
{
	return !strcmp(status, "completed") || !strcmp(status, "failed") ||
	       !strcmp(status, "cancelled");
}

/* The guest runs at the destination and its pages still come from here. */
static bool in_postcopy(const char *status)
{
	return !strcmp(status, "postcopy") || !strcmp(status, "postcopy-paused");
}

/* One progress line on stderr, redrawn in place. */
static void draw_progress(const json_t *st, double rate_bs)
{
	const char *status = cli_json_str(st, "status");
	uint64_t sent = (uint64_t)cli_json_num(st, "transferred_bytes");
	uint64_t left = (uint64_t)cli_json_num(st, "remaining_bytes");
	double pct = sent + left ? 100.0 * (double)sent / (double)(sent + left) : 0.0;
	long long thr = cli_json_num(st, "throttle_pct");
	char bar[26];
	size_t fill = (size_t)(pct / 4.0);

	if (!strcmp(status, "setup")) {
		fprintf(stderr, "\r%s: setting up\033[K", status);
		return;
	}
	if (in_postcopy(status)) {
		const json_t *pc = json_object_get(st, "postcopy");

		long long p50 = cli_json_num(pc, "fault_latency_us_p50");

		fprintf(stderr,
			"\r%s: %lld pages missing at the destination, %lld requests, %lld pushed, "
			"%.1f MiB sent since the switchover",
			!strcmp(status, "postcopy") ? "post-copy" : "post-copy PAUSED (link lost)",
			cli_json_num(pc, "pages_missing"), cli_json_num(pc, "requests"),
			cli_json_num(pc, "pages_pushed"),
			(double)cli_json_num(pc, "bytes_after_switchover") / 1048576.0);
		if (rate_bs > 0.0)
			fprintf(stderr, "  %.1f MiB/s", rate_bs / 1048576.0);
		if (p50) /* the destination's figure, known at the end */
			fprintf(stderr, "  fault p50 %lld us", p50);
		fprintf(stderr, "\033[K");
		return;
	}
	for (size_t i = 0; i < sizeof(bar) - 1; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[sizeof(bar) - 1] = '\0';
	fprintf(stderr,
		"\r[%s] %3.0f%%  %7.1f MiB/s  %8.1f MiB left  round %lld  exp. downtime %lld ms",
		bar, pct > 99.0 && strcmp(status, "completed") ? 99.0 : pct, rate_bs / 1048576.0,
		(double)left / 1048576.0, cli_json_num(st, "round"),
		cli_json_num(st, "expected_downtime_ms"));
	if (thr)
		fprintf(stderr, "  throttle %lld%%", thr);
	if (!strcmp(status, "device"))
		fprintf(stderr, "  stop-and-copy");
	fprintf(stderr, "\033[K");
}

static json_t *job_info(const struct cli *cli, const char *name)
{
	json_t *req = cli_request("job.info");

	cli_req_str(req, "name", name);
	return cli_call(cli, req);
}

/* Print final statistics: one JSON object, or a summary and a table. */
static void print_stats(const struct cli *cli, json_t *st)
{
	if (cli->json) {
		cli_print_json(st);
		return;
	}
	printf("migration of %s to %s: %s after %lld ms, downtime %lld ms, %.1f MiB sent at "
	       "%.1f Mbit/s\n",
	       cli_json_str(st, "name"), cli_json_str(st, "uri"), cli_json_str(st, "status"),
	       cli_json_num(st, "total_ms"), cli_json_num(st, "downtime_ms"),
	       (double)cli_json_num(st, "transferred_bytes") / 1048576.0,
	       json_real_or_int(st, "mbps"));
	cli_print_kv(st);
}

/*
 * A post-copy's link went down or came back (status postcopy-paused, and
 * back to postcopy): one line on stderr, terminal or not, since the user
 * may have to act. reconnect_ms: --postcopy-reconnect (0: by hand).
 */
static void postcopy_link_notice(const char *name, const json_t *st, bool paused,
				 uint64_t reconnect_ms, bool drawn)
{
	const char *nl = drawn ? "\n" : "";

	if (!paused) {
		fprintf(stderr, "%skvmig: the link to the destination is back; post-copy of %s goes on\n",
			nl, name);
		return;
	}
	fprintf(stderr,
		"%skvmig: post-copy of %s: the link to the destination is lost; the guest waits "
		"there for its %lld missing pages (nothing is lost). ",
		nl, name, cli_json_num(json_object_get(st, "postcopy"), "pages_missing"));
	if (reconnect_ms)
		fprintf(stderr,
			"It reconnects by itself for up to %llu s (--postcopy-reconnect); or run "
			"'kvmig job resume %s [--to URI]'\n",
			(unsigned long long)(reconnect_ms / 1000), name);
	else
		fprintf(stderr, "Run 'kvmig job resume %s [--to URI]' to go on\n", name);
}

/*
 * Poll the job until it ends; print its statistics. reconnect_ms is the
 * job's --postcopy-reconnect, for the message when its link breaks.
 * Return: exit status.
 */
static int follow_job(const struct cli *cli, const char *name, uint64_t reconnect_ms)
{
	const char *force = getenv("KVMIG_PROGRESS");
	bool tty = force && force[0] ? strcmp(force, "0") != 0 : isatty(STDERR_FILENO);
	bool cancel_sent = false, drawn = false, postcopy = false, paused = false;
	uint64_t last_bytes = 0;
	long long last_ms = -1;
	double rate = 0.0;
	json_t *st;
	int status;

	for (;;) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = POLL_MS * 1000000L};
		const char *s;

		if (interrupts >= 2) {
			fprintf(stderr,
				"%skvmig: stopped waiting; the job goes on in the agent (kvmig job "
				"info %s)\n",
				drawn ? "\n" : "", name);
			exit(130);
		}
		if (interrupts >= 1 && postcopy) {
			/* cancelling now would give the guest up: only stop waiting */
			fprintf(stderr,
				"%skvmig: stopped waiting; the migration of %s is in post-copy (the "
				"guest runs at the destination) and goes on in the agent: kvmig job "
				"info %s follows it, kvmig job cancel %s gives it up\n",
				drawn ? "\n" : "", name, name, name);
			exit(130);
		}
		if (interrupts == 1 && !cancel_sent) {
			json_t *req = cli_request("job.cancel");
			char err[1024];

			cli_req_str(req, "name", name);
			/* the job may have ended meanwhile: then job.info says how */
			if (cli_try_call(cli, req, err, sizeof(err)))
				fprintf(stderr,
					"%skvmig: cancelling the migration of %s (Ctrl-C again to "
					"stop waiting)\n",
					drawn ? "\n" : "", name);
			else
				fprintf(stderr, "%skvmig: %s\n", drawn ? "\n" : "", err);
			cancel_sent = true;
			drawn = false;
		}
		st = job_info(cli, name);
		s = cli_json_str(st, "status");
		if (job_over(s))
			break;
		if (in_postcopy(s)) {
			bool now_paused = !strcmp(s, "postcopy-paused");

			if (now_paused != paused)
				postcopy_link_notice(name, st, now_paused, reconnect_ms,
						     tty && drawn);
			if (now_paused != paused)
				drawn = false;
			paused = now_paused;
			if (!postcopy) {
				/* another byte counter from here on: start the rate afresh */
				last_ms = -1;
				last_bytes = 0;
				rate = 0.0;
			}
			postcopy = true;
		}
		if (tty) {
			/* in post-copy the stream's bytes count from the switchover on */
			uint64_t bytes = postcopy ? (uint64_t)cli_json_num(json_object_get(st, "postcopy"),
									  "bytes_after_switchover")
						  : (uint64_t)cli_json_num(st, "transferred_bytes");
			long long ms = cli_json_num(st, "total_ms");

			/*
			 * The engine publishes its counters in steps (per chunk
			 * of pages), so the rate is taken between two changes
			 * of the byte count, not between two polls.
			 */
			if (bytes != last_bytes) {
				if (last_ms >= 0 && ms > last_ms && bytes > last_bytes)
					rate = (double)(bytes - last_bytes) * 1000.0 /
					       (double)(ms - last_ms);
				last_ms = ms;
				last_bytes = bytes;
			}
			if (rate <= 0.0)
				rate = json_real_or_int(st, "bandwidth");
			draw_progress(st, rate);
			drawn = true;
		}
		json_decref(st);
		nanosleep(&ts, NULL);
	}
	if (drawn)
		fprintf(stderr, "\r\033[K");
	print_stats(cli, st);
	fflush(stdout);
	status = strcmp(cli_json_str(st, "status"), "completed") ? CLI_EXIT_ERR : 0;
	if (status)
		fprintf(stderr, "kvmig: migration of %s failed: %s\n", name,
			json_object_get(st, "error") ? cli_json_str(st, "error")
						     : cli_json_str(st, "status"));
	json_decref(st);
	return status;
}

/* A migration option's range (migrate/opts.h), for messages. */
#define LIMIT_MIN(opt) ((unsigned long long)migrate_limit(opt)->min)
#define LIMIT_MAX(opt) ((unsigned long long)migrate_limit(opt)->max)

int cmd_migrate(const struct cli *cli)
{
	static const char hint[] = "kvmig migrate --help";
	static const char syn[] = "migrate NAME --to URI [OPTIONS]";
	const char *name = NULL, *to = NULL, *v;
	enum migrate_postcopy postcopy = MIGRATE_POSTCOPY_OFF;
	bool detach = false, reconnect_given = false;
	uint64_t reconnect_ms = 0;
	json_t *req, *r;

	for (int i = 1; i < cli->argc; i++) {
		if (!strcmp(cli->argv[i], "--help") || !strcmp(cli->argv[i], "-h")) {
			help_migrate(stdout);
			return 0;
		}
	}
	req = cli_request("migrate.start");
	for (int i = 1; i < cli->argc; i++) {
		const char *arg = cli->argv[i];
		uint64_t n;

		if (cli_take_opt(cli->argc, cli->argv, &i, "--to", &v, hint)) {
			to = v;
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--max-downtime", &v, hint)) {
			if (parse_u64(v, &n) < 0 || !migrate_opt_ok(MIGRATE_OPT_MAX_DOWNTIME, n))
				cli_usage_error(
					hint,
					"invalid --max-downtime '%s': expected milliseconds, "
					"%llu to %llu",
					v, LIMIT_MIN(MIGRATE_OPT_MAX_DOWNTIME),
					LIMIT_MAX(MIGRATE_OPT_MAX_DOWNTIME));
			json_object_set_new(req, "max_downtime_ms", json_integer((json_int_t)n));
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--bandwidth", &v, hint)) {
			if (parse_mib_s(v, &n) < 0)
				cli_usage_error(
					hint,
					"invalid --bandwidth '%s': expected MiB/s, a number "
					"such as 50 or 12.5 (0: unlimited)",
					v);
			json_object_set_new(req, "bandwidth", json_integer((json_int_t)n));
		} else if (!strcmp(arg, "--xbzrle")) {
			json_object_set_new(req, "xbzrle_cache_bytes",
					    json_integer((json_int_t)DEFAULT_XBZRLE));
		} else if (!strncmp(arg, "--xbzrle=", 9)) {
			if (parse_size(arg + 9, &n) < 0 || n == 0 ||
			    !migrate_opt_ok(MIGRATE_OPT_XBZRLE_CACHE, n))
				cli_usage_error(
					hint,
					"invalid --xbzrle cache '%s': expected a size from 4K "
					"to 1T, such as 64M",
					arg + 9);
			json_object_set_new(req, "xbzrle_cache_bytes", json_integer((json_int_t)n));
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--compress", &v, hint)) {
			char err[256];

			if (migrate_check_compress(v, err, sizeof(err)) < 0)
				cli_usage_error(hint, "invalid --compress: %s", err);
			cli_req_str(req, "compress", v);
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--parallel", &v, hint)) {
			if (parse_u64(v, &n) < 0 || !migrate_opt_ok(MIGRATE_OPT_PARALLEL, n))
				cli_usage_error(hint,
						"invalid --parallel '%s': expected %llu to %llu", v,
						LIMIT_MIN(MIGRATE_OPT_PARALLEL),
						LIMIT_MAX(MIGRATE_OPT_PARALLEL));
			json_object_set_new(req, "parallel", json_integer((json_int_t)n));
		} else if (!strcmp(arg, "--auto-converge")) {
			json_object_set_new(req, "auto_converge", json_true());
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--max-iterations", &v, hint)) {
			if (parse_u64(v, &n) < 0 || !migrate_opt_ok(MIGRATE_OPT_MAX_ITERATIONS, n))
				cli_usage_error(
					hint,
					"invalid --max-iterations '%s': expected a number of "
					"rounds, %llu to %llu",
					v, LIMIT_MIN(MIGRATE_OPT_MAX_ITERATIONS),
					LIMIT_MAX(MIGRATE_OPT_MAX_ITERATIONS));
			json_object_set_new(req, "max_iterations", json_integer((json_int_t)n));
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--timeout", &v, hint)) {
			if (parse_u64(v, &n) < 0 || n > UINT64_MAX / 1000 ||
			    !migrate_opt_ok(MIGRATE_OPT_TIMEOUT, n * 1000))
				cli_usage_error(
					hint, "invalid --timeout '%s': expected seconds, 0 to %llu",
					v, LIMIT_MAX(MIGRATE_OPT_TIMEOUT) / 1000);
			json_object_set_new(req, "timeout_ms",
					    json_integer((json_int_t)(n * 1000)));
		} else if (!strcmp(arg, "--verify")) {
			json_object_set_new(req, "verify", json_true());
		} else if (!strcmp(arg, "--strict-cpu")) {
			json_object_set_new(req, "strict_cpu", json_true());
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--dirty-track", &v, hint)) {
			enum dirtylog_backend b;

			if (dirtylog_backend_by_name(v, &b) < 0)
				cli_usage_error(
					hint, "invalid --dirty-track '%s': expected bitmap or ring",
					v);
			cli_req_str(req, "dirty_track", v);
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--tls-dir", &v, hint)) {
			if (!v[0])
				cli_usage_error(hint, "invalid --tls-dir: empty");
			cli_req_str(req, "tls_dir", v);
		} else if (!strcmp(arg, "--ssh-accept-new")) {
			json_object_set_new(req, "ssh_accept_new", json_true());
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--ssh-agent-port", &v, hint)) {
			if (parse_u64(v, &n) < 0 || !n ||
			    !migrate_opt_ok(MIGRATE_OPT_SSH_AGENT_PORT, n))
				cli_usage_error(hint,
						"invalid --ssh-agent-port '%s': expected a TCP port, "
						"1 to 65535",
						v);
			json_object_set_new(req, "ssh_agent_port", json_integer((json_int_t)n));
		} else if (!strcmp(arg, "--ssh-exec")) {
			cli_req_str(req, "ssh_exec", MIGRATE_SSH_EXEC_CMD);
		} else if (!strncmp(arg, "--ssh-exec=", 11)) {
			if (!arg[11] || strlen(arg + 11) > 255)
				cli_usage_error(hint, "invalid --ssh-exec: expected a command of 1 "
						      "to 255 bytes");
			cli_req_str(req, "ssh_exec", arg + 11);
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--ssh-data", &v, hint)) {
			if (strcmp(v, "ssh") && strcmp(v, "tls"))
				cli_usage_error(hint, "invalid --ssh-data '%s': expected ssh or tls",
						v);
			cli_req_str(req, "ssh_data", v);
		} else if (!strcmp(arg, "--detach")) {
			detach = true;
		} else if (!strcmp(arg, "--postcopy")) {
			postcopy = MIGRATE_POSTCOPY_AUTO;
			cli_req_str(req, "postcopy", migrate_postcopy_name(postcopy));
		} else if (!strncmp(arg, "--postcopy=", 11)) {
			if (migrate_postcopy_parse(arg + 11, &postcopy) < 0)
				cli_usage_error(hint,
						"invalid --postcopy '%s': expected auto, now, manual "
						"or off",
						arg + 11);
			cli_req_str(req, "postcopy", migrate_postcopy_name(postcopy));
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--postcopy-reconnect", &v, hint)) {
			const uint64_t max_s = LIMIT_MAX(MIGRATE_OPT_POSTCOPY_RECONNECT) / 1000;

			if (parse_u64(v, &n) < 0 || n > max_s ||
			    !migrate_opt_ok(MIGRATE_OPT_POSTCOPY_RECONNECT, n * 1000))
				cli_usage_error(hint,
						"invalid %s '%s': expected seconds, %llu to %llu (0: "
						"wait for kvmig job resume)",
						migrate_limit(MIGRATE_OPT_POSTCOPY_RECONNECT)->flag, v,
						LIMIT_MIN(MIGRATE_OPT_POSTCOPY_RECONNECT) / 1000,
						(unsigned long long)max_s);
			reconnect_ms = n * 1000;
			reconnect_given = true;
			json_object_set_new(req, migrate_limit(MIGRATE_OPT_POSTCOPY_RECONNECT)->field,
					    json_integer((json_int_t)reconnect_ms));
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--announce", &v, hint)) {
			if (!v[0] || strlen(v) > 15 || strchr(v, '/') || strchr(v, ' '))
				cli_usage_error(hint,
						"invalid --announce '%s': expected an interface name "
						"of 1 to 15 bytes",
						v);
			cli_req_str(req, "announce", v);
		} else if (!strncmp(arg, "--announce-", 11) && announce_num_opt(cli, &i, req, hint)) {
			/* --announce-rounds, -initial, -step, -max */
		} else if (arg[0] == '-' && arg[1]) {
			cli_usage_error(hint, "unknown option '%s' for migrate", arg);
		} else if (!name) {
			name = arg;
		} else {
			cli_usage_error(hint, "unexpected argument '%s'; usage: kvmig %s", arg,
					syn);
		}
	}
	if (!name || !to)
		cli_usage_error(hint, "usage: kvmig %s", syn);
	if (reconnect_given && postcopy == MIGRATE_POSTCOPY_OFF)
		cli_usage_error(hint, "--postcopy-reconnect needs --postcopy[=MODE]");
	check_uri(to, hint);
	cli_req_str(req, "name", name);
	cli_req_str(req, "uri", to);
	if (!detach) {
		/* from here on, Ctrl-C cancels the job (even one not started yet) */
		struct sigaction sa = {.sa_handler = on_sigint};

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: sleeps end early */
	}
	r = cli_call(cli, req);
	if (detach) {
		if (cli->json) {
			cli_print_json(r);
		} else {
			printf("migration of %s to %s started (%s); follow it with 'kvmig job info "
			       "%s'\n",
			       cli_json_str(r, "name"), cli_json_str(r, "uri"),
			       cli_json_str(r, "status"), cli_json_str(r, "name"));
		}
		json_decref(r);
		return 0;
	}
	json_decref(r);
	return follow_job(cli, name, reconnect_ms);
}

/* ---- job commands ---- */

/* Print a job request's answer: the JSON object, or what happens now. */
static void print_job_answer(const struct cli *cli, const char *sub, json_t *r)
{
	const char *name = cli_json_str(r, "name");

	if (cli->json) {
		cli_print_json(r);
	} else if (!strcmp(sub, "cancel")) {
		printf("cancelling the migration of %s; 'kvmig job info %s' shows when it stopped\n",
		       name, name);
	} else if (!strcmp(sub, "postcopy")) {
		printf("switching the migration of %s to post-copy; 'kvmig job info %s' shows when "
		       "it did (status postcopy)\n",
		       name, name);
	} else {
		printf("resuming the post-copy of %s to %s; 'kvmig job info %s' shows when it goes "
		       "on (status postcopy)\n",
		       name, cli_json_str(r, "uri"), name);
	}
}

int cmd_job(const struct cli *cli)
{
	static const char hint[] = "kvmig job --help";
	const char *sub = cli->argc > 1 ? cli->argv[1] : "", *name = NULL, *to = NULL, *v;
	json_t *req, *r;

	for (int i = 1; i < cli->argc; i++) {
		if ((i == 1 && cli_is_help(cli->argv[i])) || !strcmp(cli->argv[i], "--help") ||
		    !strcmp(cli->argv[i], "-h")) {
			help_job(stdout);
			return 0;
		}
	}
	if (strcmp(sub, "info") && strcmp(sub, "cancel") && strcmp(sub, "postcopy") &&
	    strcmp(sub, "resume"))
		cli_usage_error(hint, JOB_USAGE);
	for (int i = 2; i < cli->argc; i++) {
		const char *arg = cli->argv[i];

		if (!strcmp(sub, "resume") &&
		    cli_take_opt(cli->argc, cli->argv, &i, "--to", &v, hint)) {
			to = v;
		} else if (arg[0] == '-' && arg[1]) {
			cli_usage_error(hint, "unknown option '%s'; usage: kvmig job %s NAME%s", arg,
					sub, strcmp(sub, "resume") ? "" : " [--to URI]");
		} else if (!name) {
			name = arg;
		} else {
			cli_usage_error(hint, JOB_USAGE);
		}
	}
	if (!name)
		cli_usage_error(hint, JOB_USAGE);
	if (to)
		check_uri(to, hint);
	if (!strcmp(sub, "info")) {
		r = job_info(cli, name);
		if (cli->json)
			cli_print_json(r);
		else
			cli_print_kv(r);
		json_decref(r);
		return 0;
	}
	req = cli_request(!strcmp(sub, "cancel")	 ? "job.cancel"
			  : !strcmp(sub, "postcopy") ? "job.postcopy"
						     : "job.resume");
	cli_req_str(req, "name", name);
	if (to)
		cli_req_str(req, "uri", to);
	r = cli_call(cli, req);
	print_job_answer(cli, sub, r);
	json_decref(r);
	return 0;
}
