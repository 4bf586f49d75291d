/* SPDX-License-Identifier: MIT */
/*
 * cmd_events.c - kvmig events (tools/cmd_events.h): subscribe, then print
 * each event line as JSON or as one human line.
 */
#include "tools/cmd_events.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/parse.h"
#include "common/xio.h"
#include "tools/control.h"

#define PAGE_BYTES 4096.0

static void help_events(FILE *f)
{
	fprintf(f,
		"Usage: kvmig events [--vm NAME] [--count N] [--json]\n"
		"\n"
		"Follow the agent's events as they happen: each outgoing migration's\n"
		"started, every pre-copy round with its numbers, switchover, post-copy,\n"
		"post-copy link lost and resumed, completed, failed or cancelled (with\n"
		"the reason), and the migrations arriving here (incoming-started,\n"
		"incoming-arrived, incoming-failed). Only events after the subscription\n"
		"are shown; several clients may follow at once and all see the same\n"
		"events in the same order.\n"
		"\n"
		"Options:\n"
		"  --vm NAME   only the events of VM NAME\n"
		"  --count N   exit 0 after N events (default: follow until the agent stops)\n"
		"  --json      each event as the agent sent it: one JSON object per line\n"
		"              (tools/API.md, events.subscribe)\n"
		"\n"
		"Without --json each event is one line: local time, VM, what happened:\n"
		"  12:00:01.234 g1 round 3: 12.3 MiB sent, 1.2 MiB dirty at 3.0 MiB/s, link\n"
		"  8.0 MiB/s, expected downtime 150 ms\n"
		"(dirty: what is left to send, and how fast the guest dirties it; link: the\n"
		"measured rate)\n"
		"\n"
		"Exit status: 0 after --count N events; 1 when the agent cannot be reached,\n"
		"refuses, closes the stream (it stopped) or drops this client for reading\n"
		"too slowly (an \"overflow\" event); 2 bad usage. Ctrl-C just stops.\n");
}

static double mib(const json_t *ev, const char *key)
{
	return (double)cli_json_num(ev, key) / 1048576.0;
}

/* "12:00:01.234 g1" from time_ms, in local time. */
static void print_prefix(const json_t *ev)
{
	long long ms = cli_json_num(ev, "time_ms");
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char hms[16] = "??:??:??";
	const char *vm = cli_json_str(ev, "vm");

	if (localtime_r(&t, &tm))
		strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	printf("%s.%03lld %s", hms, ms % 1000, vm[0] ? vm : "-");
}

static void print_human(const json_t *ev)
{
	const char *t = cli_json_str(ev, "event"), *err = cli_json_str(ev, "error");

	print_prefix(ev);
	if (!strcmp(t, "started")) {
		printf(" started: to %s, %.1f MiB of RAM, setup %lld ms", cli_json_str(ev, "to"),
		       mib(ev, "total_bytes"), cli_json_num(ev, "setup_ms"));
	} else if (!strcmp(t, "round")) {
		printf(" round %lld: %.1f MiB sent, %.1f MiB dirty", cli_json_num(ev, "round"),
		       mib(ev, "transferred_bytes"), mib(ev, "remaining_bytes"));
		/* the rate is known from the second sync on */
		if (cli_json_num(ev, "dirty_pages_rate"))
			printf(" at %.1f MiB/s", (double)cli_json_num(ev, "dirty_pages_rate") *
							 PAGE_BYTES / 1048576.0);
		printf(", link %.1f MiB/s, expected downtime %lld ms", mib(ev, "bandwidth"),
		       cli_json_num(ev, "expected_downtime_ms"));
		if (cli_json_num(ev, "throttle_pct"))
			printf(", throttle %lld%%", cli_json_num(ev, "throttle_pct"));
		/* --compress auto: what the round ended with, and why */
		if (cli_json_str(ev, "codec_reason")[0] &&
		    strcmp(cli_json_str(ev, "codec_reason"), "fixed"))
			printf(", codec %s (%s)", cli_json_str(ev, "codec"),
			       cli_json_str(ev, "codec_reason"));
	} else if (!strcmp(t, "switchover")) {
		long long n = cli_json_num(ev, "rounds");

		printf(" switchover (%s) after %lld pre-copy round%s: the guest is paused, %.1f MiB "
		       "left",
		       cli_json_str(ev, "mode"), n, n == 1 ? "" : "s", mib(ev, "remaining_bytes"));
		if (cli_json_str(ev, "reason")[0])
			printf(" (%s)", cli_json_str(ev, "reason"));
	} else if (!strcmp(t, "postcopy")) {
		printf(" post-copy: the guest runs at the destination after %lld ms of downtime, "
		       "%.1f MiB follow",
		       cli_json_num(ev, "downtime_ms"), mib(ev, "remaining_bytes"));
	} else if (!strcmp(t, "postcopy-paused")) {
		printf(" post-copy paused: %s; %.1f MiB still to send", err,
		       mib(ev, "remaining_bytes"));
	} else if (!strcmp(t, "resumed")) {
		printf(" post-copy resumed (reconnect %lld): %.1f MiB still to send",
		       cli_json_num(ev, "reconnects"), mib(ev, "remaining_bytes"));
	} else if (!strcmp(t, "completed")) {
		printf(" completed in %lld ms: downtime %lld ms, %.1f MiB sent%s",
		       cli_json_num(ev, "total_ms"), cli_json_num(ev, "downtime_ms"),
		       mib(ev, "transferred_bytes"),
		       json_is_true(json_object_get(ev, "verified")) ? ", RAM digest verified" : "");
	} else if (!strcmp(t, "failed") || !strcmp(t, "cancelled")) {
		printf(" %s after %lld ms: %s", t, cli_json_num(ev, "total_ms"), err);
	} else if (!strcmp(t, "incoming-started")) {
		printf(" arriving from %s (%.1f MiB of RAM)", cli_json_str(ev, "from"),
		       mib(ev, "total_bytes"));
	} else if (!strcmp(t, "incoming-arrived")) {
		printf(" arrived from %s in %lld ms: %.1f MiB received%s%s%s",
		       cli_json_str(ev, "from"), cli_json_num(ev, "total_ms"),
		       mib(ev, "transferred_bytes"),
		       json_is_true(json_object_get(ev, "postcopy")) ? ", post-copy" : "",
		       json_is_true(json_object_get(ev, "paused")) ? ", stays paused" : "",
		       json_is_true(json_object_get(ev, "verified")) ? ", RAM digest verified" : "");
	} else if (!strcmp(t, "incoming-failed")) {
		printf(" arriving from %s failed: %s", cli_json_str(ev, "from"), err);
	} else if (!strcmp(t, "overflow")) {
		printf(" overflow: %s", err);
	} else {
		/* a newer agent's event: its name, and the reason if it has one */
		printf(" %s%s%s", t, err[0] ? ": " : "", err);
	}
	if (cli_json_num(ev, "lost"))
		printf(" (%lld earlier event(s) of this job lost)", cli_json_num(ev, "lost"));
	putchar('\n');
}

/* The first line is the reply: ends the program unless it says ok. */
static void check_reply(const struct cli *cli, const char *line, size_t len)
{
	char err[512];
	json_t *r;

	if (ctl_parse_object(line, len, &r, err, sizeof(err)) < 0)
		cli_die(CLI_EXIT_ERR, "the agent at %s answered with %s", cli->agent, err);
	if (!json_is_true(json_object_get(r, "ok"))) {
		const char *msg = json_string_value(json_object_get(r, "error"));

		cli_die(CLI_EXIT_ERR, "%s", msg ? msg : "the agent refused without a message");
	}
	json_decref(r);
}

/* Wait for the fd to be readable within the reply timeout. */
static void wait_reply(const struct cli *cli, int fd, uint64_t deadline_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int ret;

	if (cli->timeout_ms <= 0)
		return;
	do {
		uint64_t now = clock_now_ms();

		if (now >= deadline_ms)
			cli_die(CLI_EXIT_ERR, "no answer from the agent at %s within %d s", cli->agent,
				cli->timeout_ms / 1000);
		ret = poll(&p, 1, (int)(deadline_ms - now));
	} while (ret == 0 || (ret < 0 && errno == EINTR));
}

int cmd_events(const struct cli *cli)
{
	const char *vm = NULL, *v;
	uint64_t count = 0, seen = 0, deadline;
	bool replied = false;
	struct ctl_linebuf lb;
	char err[1024], *line;
	json_t *req;
	size_t len;
	int fd, ret;

	for (int i = 1; i < cli->argc; i++) {
		const char *a = cli->argv[i];

		if (cli_is_help(a)) {
			help_events(stdout);
			return 0;
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--vm", &v, "kvmig events --help")) {
			if (!v[0])
				cli_usage_error("kvmig events --help", "--vm needs a VM name");
			vm = v;
		} else if (cli_take_opt(cli->argc, cli->argv, &i, "--count", &v,
					"kvmig events --help")) {
			if (parse_u64(v, &count) < 0 || count == 0)
				cli_usage_error("kvmig events --help",
						"invalid --count '%s': expected a number of events, "
						"at least 1",
						v);
		} else {
			cli_usage_error("kvmig events --help", "unexpected argument '%s'", a);
		}
	}
	req = cli_request("events.subscribe");
	if (!req)
		cli_die(CLI_EXIT_ERR, "out of memory");
	if (vm)
		cli_req_str(req, "vm", vm);
	line = ctl_encode(req, &len);
	json_decref(req);
	if (!line || ctl_linebuf_init(&lb, CTL_RESPONSE_MAX) < 0)
		cli_die(CLI_EXIT_ERR, "out of memory");
	fd = ctl_connect(cli->agent, err, sizeof(err));
	if (fd < 0)
		cli_die(CLI_EXIT_ERR, "%s", err);
	ret = write_all(fd, line, len);
	if (ret < 0)
		cli_die(CLI_EXIT_ERR, "cannot send to the agent at %s: %s", cli->agent,
			strerror(-ret));
	free(line);
	deadline = clock_now_ms() + (uint64_t)(cli->timeout_ms > 0 ? cli->timeout_ms : 0);
	for (;;) {
		ssize_t n;
		int r;

		while ((r = ctl_linebuf_next(&lb, &line, &len)) != 0) {
			json_t *ev;

			if (r < 0)
				cli_die(CLI_EXIT_ERR, "the agent sent a line longer than %u bytes",
					CTL_RESPONSE_MAX);
			if (!replied) {
				check_reply(cli, line, len);
				replied = true;
				continue;
			}
			if (ctl_parse_object(line, len, &ev, err, sizeof(err)) < 0)
				cli_die(CLI_EXIT_ERR, "the agent sent a bad event: %s", err);
			if (cli->json) {
				fwrite(line, 1, len, stdout);
				putchar('\n');
			} else {
				print_human(ev);
			}
			/* a reader that went away (| head) ends us: SIGPIPE is ignored */
			if (fflush(stdout) != 0 || ferror(stdout))
				cli_die(CLI_EXIT_ERR, "cannot write the events: %s", strerror(errno));
			if (!strcmp(cli_json_str(ev, "event"), "overflow"))
				cli_die(CLI_EXIT_ERR, "the agent dropped this subscriber: %s",
					cli_json_str(ev, "error"));
			json_decref(ev);
			if (count && ++seen == count) {
				ctl_linebuf_free(&lb);
				close(fd);
				return 0;
			}
		}
		if (!replied)
			wait_reply(cli, fd, deadline);
		n = ctl_linebuf_read(&lb, fd);
		if (n == 0)
			cli_die(CLI_EXIT_ERR, "the agent at %s closed the event stream%s", cli->agent,
				replied ? " (it stopped)" : " without an answer");
		if (n < 0 && n != -EINTR)
			cli_die(CLI_EXIT_ERR, "reading events from the agent at %s: %s", cli->agent,
				strerror((int)-n));
	}
}
