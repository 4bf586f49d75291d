/* SPDX-License-Identifier: MIT */
/*
 * migopts.c - the migration options of the kvmig command line
 * (tools/migopts.h).
 */
#include "tools/migopts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "dirtylog/dirtylog.h"
#include "migrate/announce.h"
#include "migrate/migrate.h"
#include "protocol/channel.h"
#include "protocol/uri.h"

#define DEFAULT_XBZRLE (64ull << 20)
#define LIMIT_MIN(opt) ((unsigned long long)migrate_limit(opt)->min)
#define LIMIT_MAX(opt) ((unsigned long long)migrate_limit(opt)->max)

void migopts_init(struct migopts *mo)
{
	memset(mo, 0, sizeof(*mo));
	mo->postcopy = MIGRATE_POSTCOPY_OFF;
}

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

void migopts_check_uri(const char *what, const char *uri, const char *hint)
{
	struct uri u;
	char err[512];

	if (uri_parse(uri, &u, err, sizeof(err)) < 0)
		cli_usage_error(hint, "invalid %s: %s", what, err);
	if (!channel_ops_for(u.scheme)) {
		fprintf(stderr, "kvmig: %s %s: %s migration is not implemented yet\n", what, uri,
			uri_scheme_name(u.scheme));
		exit(CLI_EXIT_USAGE);
	}
}

bool migopts_take(const struct cli *cli, int *i, json_t *req, struct migopts *mo,
		  const char *hint)
{
	const char *arg = cli->argv[*i], *v;
	uint64_t n;

	if (cli_take_opt(cli->argc, cli->argv, i, "--max-downtime", &v, hint)) {
		if (parse_u64(v, &n) < 0 || !migrate_opt_ok(MIGRATE_OPT_MAX_DOWNTIME, n))
			cli_usage_error(
				hint,
				"invalid --max-downtime '%s': expected milliseconds, "
				"%llu to %llu",
				v, LIMIT_MIN(MIGRATE_OPT_MAX_DOWNTIME),
				LIMIT_MAX(MIGRATE_OPT_MAX_DOWNTIME));
		json_object_set_new(req, "max_downtime_ms", json_integer((json_int_t)n));
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--bandwidth", &v, hint)) {
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
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--compress", &v, hint)) {
		char err[256];

		if (migrate_check_compress(v, err, sizeof(err)) < 0)
			cli_usage_error(hint, "invalid --compress: %s", err);
		cli_req_str(req, "compress", v);
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--parallel", &v, hint)) {
		if (parse_u64(v, &n) < 0 || !migrate_opt_ok(MIGRATE_OPT_PARALLEL, n))
			cli_usage_error(hint,
					"invalid --parallel '%s': expected %llu to %llu", v,
					LIMIT_MIN(MIGRATE_OPT_PARALLEL),
					LIMIT_MAX(MIGRATE_OPT_PARALLEL));
		json_object_set_new(req, "parallel", json_integer((json_int_t)n));
	} else if (!strcmp(arg, "--auto-converge")) {
		json_object_set_new(req, "auto_converge", json_true());
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--max-iterations", &v, hint)) {
		if (parse_u64(v, &n) < 0 || !migrate_opt_ok(MIGRATE_OPT_MAX_ITERATIONS, n))
			cli_usage_error(
				hint,
				"invalid --max-iterations '%s': expected a number of "
				"rounds, %llu to %llu",
				v, LIMIT_MIN(MIGRATE_OPT_MAX_ITERATIONS),
				LIMIT_MAX(MIGRATE_OPT_MAX_ITERATIONS));
		json_object_set_new(req, "max_iterations", json_integer((json_int_t)n));
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--timeout", &v, hint)) {
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
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--dirty-track", &v, hint)) {
		enum dirtylog_backend b;

		if (dirtylog_backend_by_name(v, &b) < 0)
			cli_usage_error(
				hint, "invalid --dirty-track '%s': expected bitmap or ring",
				v);
		cli_req_str(req, "dirty_track", v);
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--tls-dir", &v, hint)) {
		if (!v[0])
			cli_usage_error(hint, "invalid --tls-dir: empty");
		cli_req_str(req, "tls_dir", v);
	} else if (!strcmp(arg, "--ssh-accept-new")) {
		json_object_set_new(req, "ssh_accept_new", json_true());
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--ssh-agent-port", &v, hint)) {
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
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--ssh-data", &v, hint)) {
		if (strcmp(v, "ssh") && strcmp(v, "tls"))
			cli_usage_error(hint, "invalid --ssh-data '%s': expected ssh or tls",
					v);
		cli_req_str(req, "ssh_data", v);
	} else if (!strcmp(arg, "--postcopy")) {
		mo->postcopy = MIGRATE_POSTCOPY_AUTO;
		cli_req_str(req, "postcopy", migrate_postcopy_name(mo->postcopy));
	} else if (!strncmp(arg, "--postcopy=", 11)) {
		if (migrate_postcopy_parse(arg + 11, &mo->postcopy) < 0)
			cli_usage_error(hint,
					"invalid --postcopy '%s': expected auto, now, manual "
					"or off",
					arg + 11);
		cli_req_str(req, "postcopy", migrate_postcopy_name(mo->postcopy));
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--postcopy-reconnect", &v, hint)) {
		const uint64_t max_s = LIMIT_MAX(MIGRATE_OPT_POSTCOPY_RECONNECT) / 1000;

		if (parse_u64(v, &n) < 0 || n > max_s ||
		    !migrate_opt_ok(MIGRATE_OPT_POSTCOPY_RECONNECT, n * 1000))
			cli_usage_error(hint,
					"invalid %s '%s': expected seconds, %llu to %llu (0: "
					"wait for kvmig job resume)",
					migrate_limit(MIGRATE_OPT_POSTCOPY_RECONNECT)->flag, v,
					LIMIT_MIN(MIGRATE_OPT_POSTCOPY_RECONNECT) / 1000,
					(unsigned long long)max_s);
		mo->reconnect_ms = n * 1000;
		mo->reconnect_given = true;
		json_object_set_new(req, migrate_limit(MIGRATE_OPT_POSTCOPY_RECONNECT)->field,
				    json_integer((json_int_t)mo->reconnect_ms));
	} else if (cli_take_opt(cli->argc, cli->argv, i, "--announce", &v, hint)) {
		if (!v[0] || strlen(v) > 15 || strchr(v, '/') || strchr(v, ' '))
			cli_usage_error(hint,
					"invalid --announce '%s': expected an interface name "
					"of 1 to 15 bytes",
					v);
		cli_req_str(req, "announce", v);
	} else if (!strncmp(arg, "--announce-", 11) && announce_num_opt(cli, i, req, hint)) {
		/* --announce-rounds, -initial, -step, -max */
	} else {
		return false;
	}
	return true;
}

void migopts_done(const struct migopts *mo, const char *hint)
{
	if (mo->reconnect_given && mo->postcopy == MIGRATE_POSTCOPY_OFF)
		cli_usage_error(hint, "--postcopy-reconnect needs --postcopy[=MODE]");
}

void migopts_help(FILE *f)
{
	fprintf(f,
		"  --max-downtime MS      longest acceptable pause at switchover (default 300):\n"
		"                         a ceiling: pre-copy goes on while its rounds\n"
		"                         shrink the dirty set\n"
		"  --bandwidth MiB/s      limit the pre-copy stream (a number, fractions\n"
		"                         allowed; default and 0: unlimited); the paused\n"
		"                         guest's last pages and state go uncapped\n"
		"  --xbzrle[=CACHE]       send re-dirtied pages as XBZRLE deltas against a\n"
		"                         cache of CACHE bytes (K/M/G; default 64M)\n"
		"  --compress ALG         none (default), zstd[:LEVEL] (1..22), lz4, or auto:\n"
		"                         each round picks none, lz4 or zstd from the\n"
		"                         measured link and codec rates\n"
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
		, (unsigned long long)(migrate_limit(MIGRATE_OPT_POSTCOPY_RECONNECT)->max / 1000));
}
