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
#include "migrate/migrate.h"
#include "protocol/channel.h"
#include "protocol/uri.h"
#include "tools/migopts.h"

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
		"Options:\n");
	migopts_help(f);
	fprintf(f,
		"  --detach               start the job and return; follow it with\n"
		"                         kvmig job info NAME\n"
		"  --json                 print the final statistics as one JSON object\n"
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
		"<reason>' on stderr) or the agent refused it; 2 bad usage.\n");
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


static volatile sig_atomic_t interrupts;

static void on_sigint(int sig)
{
	(void)sig;
	interrupts++;
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

int cmd_migrate(const struct cli *cli)
{
	static const char hint[] = "kvmig migrate --help";
	static const char syn[] = "migrate NAME --to URI [OPTIONS]";
	const char *name = NULL, *to = NULL, *v;
	struct migopts mo;
	bool detach = false;
	json_t *req, *r;

	for (int i = 1; i < cli->argc; i++) {
		if (!strcmp(cli->argv[i], "--help") || !strcmp(cli->argv[i], "-h")) {
			help_migrate(stdout);
			return 0;
		}
	}
	req = cli_request("migrate.start");
	migopts_init(&mo);
	for (int i = 1; i < cli->argc; i++) {
		const char *arg = cli->argv[i];

		if (cli_take_opt(cli->argc, cli->argv, &i, "--to", &v, hint)) {
			to = v;
		} else if (migopts_take(cli, &i, req, &mo, hint)) {
			/* a migration option */
		} else if (!strcmp(arg, "--detach")) {
			detach = true;
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
	migopts_done(&mo, hint);
	migopts_check_uri("--to", to, hint);
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
	return follow_job(cli, name, mo.reconnect_ms);
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
		migopts_check_uri("--to", to, hint);
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
