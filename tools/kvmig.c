/* SPDX-License-Identifier: MIT */
/*
 * kvmig - the command-line client of the agent (kvmigd): main, the global
 * options and the command table.
 *
 * Each command turns into one request on the agent's control socket
 * (tools/API.md) and prints the reply: human-readable by default, or with
 * --json the reply object without its "ok" field, on one line of stdout.
 * Errors always go to stderr as "kvmig: <message>"; exit status 1 for an
 * error from the agent or the connection, 2 for bad usage and commands
 * that are not implemented yet. `kvmig migrate` is the one command that
 * talks more than once: it starts a job, then polls job.info until the
 * job ends, drawing a progress line on a terminal.
 *
 * The layout is kvmtool's builtin-<cmd>.c: one module per command group,
 * each with its own header (tools/cmd_vm.h, cmd_migrate.h with the job
 * commands, cmd_agent.h, cmd_events.h) declaring its entry point, so that a header says
 * what its group does and the house rule "one .h + one .c" holds; the
 * helpers they share are tools/cli.h. This file only parses the global
 * options and dispatches on the first command word.
 */
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "tools/cli.h"
#include "tools/cmd_agent.h"
#include "tools/cmd_bench.h"
#include "tools/cmd_drain.h"
#include "tools/cmd_events.h"
#include "tools/cmd_migrate.h"
#include "tools/cmd_vm.h"
#include "tools/control.h"


#define DEFAULT_TIMEOUT_S 600

static void help_main(FILE *f)
{
	fprintf(f,
		"Usage: kvmig [--agent PATH] [--json] [--timeout SEC] COMMAND ...\n"
		"\n"
		"Control a kvmig agent (kvmigd) through its unix socket.\n"
		"\n"
		"Commands:\n"
		"  vm start NAME [--mem SIZE] [--vcpus N] [--guest GUEST[,KEY=VALUE...]] [--mac "
		"MAC]\n"
		"           [--dirty-ring ENTRIES]\n"
		"  vm stop NAME              destroy a VM\n"
		"  vm pause NAME             stop its vCPUs; it stays here, paused\n"
		"  vm resume NAME            run a paused VM again\n"
		"  vm list                   list the agent's VMs\n"
		"  vm info NAME              state, sizes, guest counters, pause latency\n"
		"  vm console NAME           the guest's console output (newest 64 KiB)\n"
		"  vm save NAME FILE [--compress ALG]  snapshot a running VM into FILE (it keeps running)\n"
		"  vm restore FILE [--name NAME]   start a VM from a snapshot\n"
		"  migrate NAME --to URI [OPTIONS]   live-migrate a VM to another agent\n"
		"                            (kvmig migrate --help for the options)\n"
		"  job info NAME             statistics of NAME's migration job\n"
		"  job cancel NAME           cancel it; the VM runs on at the source\n"
		"  job postcopy NAME         switch it to post-copy now\n"
		"  job resume NAME [--to URI]  reconnect a post-copy whose link broke\n"
		"  events [--vm NAME] [--count N]  follow the agent's migration events\n"
		"                            (kvmig events --help)\n"
		"  agent ping                is the agent alive\n"
		"  agent version             agent version, API version, whether KVM works\n"
		"  agent send JSON           send one raw request line (for debugging)\n"
		"  drain --from AGENT --to AGENT[,AGENT...] [OPTIONS]   empty an agent of its VMs\n"
		"                            (kvmig drain --help for the options)\n"
		"  bench codec|channel|migrate [OPTIONS]  run a benchmark here, no agent\n"
		"                            (kvmig bench --help; channel between hosts too)\n"
		"  demo                      not implemented yet: run 'make demo' (exit status 2)\n"
		"\n"
		"Options (anywhere on the command line):\n"
		"  --agent PATH    the agent's control socket; default $KVMIG_AGENT,\n"
		"                  else " CTL_DEFAULT_AGENT "\n"
		"  --json          print the agent's reply as one JSON object on stdout\n"
		"  --timeout SEC   wait at most SEC seconds for a reply (default %d; 0: forever);\n"
		"                  after 'migrate' it is the migration's own --timeout\n"
		"  -h, --help      this help; 'kvmig vm --help' for the vm commands\n"
		"  -V, --version   print the version\n"
		"\n"
		"Errors go to stderr as 'kvmig: <message>', also with --json.\n"
		"Exit status: 0 success, 1 error, 2 bad usage or not implemented.\n",
		DEFAULT_TIMEOUT_S);
}

/*
 * Take the global options out of argv wherever they are; what is left are
 * the command words. "--" ends option processing.
 */
static void parse_globals(struct cli *cli, int argc, char **argv)
{
	const char *env = getenv("KVMIG_AGENT");
	bool dashdash = false;

	cli->agent = env && env[0] ? env : CTL_DEFAULT_AGENT;
	cli->timeout_ms = DEFAULT_TIMEOUT_S * 1000;
	cli->argv = calloc((size_t)argc + 1, sizeof(char *));
	if (!cli->argv)
		cli_die(CLI_EXIT_ERR, "out of memory");
	cli->argc = 0;
	for (int i = 1; i < argc; i++) {
		const char *v;

		if (!dashdash && cli->argc > 0 && !strcmp(cli->argv[0], "migrate") &&
		    !strncmp(argv[i], "--timeout", 9) && (!argv[i][9] || argv[i][9] == '=')) {
			/* after "migrate", --timeout is the migration's own */
			cli->argv[cli->argc++] = argv[i];
			if (!argv[i][9] && i + 1 < argc)
				cli->argv[cli->argc++] = argv[++i];
		} else if (dashdash) {
			cli->argv[cli->argc++] = argv[i];
		} else if (!strcmp(argv[i], "--")) {
			dashdash = true;
		} else if (!strcmp(argv[i], "--json")) {
			cli->json = true;
		} else if (cli_take_opt(argc, argv, &i, "--agent", &v, "kvmig --help")) {
			if (!v[0])
				cli_usage_error("kvmig --help", "--agent needs a socket path");
			cli->agent = v;
		} else if (cli_take_opt(argc, argv, &i, "--timeout", &v, "kvmig --help")) {
			uint64_t s;

			if (parse_u64(v, &s) < 0 || s > INT_MAX / 1000)
				cli_usage_error("kvmig --help",
						"invalid --timeout '%s': expected seconds", v);
			cli->timeout_ms = (int)s * 1000;
		} else {
			cli->argv[cli->argc++] = argv[i];
		}
	}
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(const struct cli *cli); /* Return: the exit status */
	} cmds[] = {
		{"vm", cmd_vm},
		{"agent", cmd_agent},
		{"migrate", cmd_migrate},
		{"job", cmd_job},
		{"events", cmd_events},
		{"drain", cmd_drain},
		{"bench", cmd_bench},
	};
	static const char *const later[] = {"demo"};
	struct cli cli = {0};
	const char *cmd;

	signal(SIGPIPE, SIG_IGN);
	parse_globals(&cli, argc, argv);
	if (cli.argc == 0) {
		help_main(stderr);
		return CLI_EXIT_USAGE;
	}
	cmd = cli.argv[0];
	if (cli_is_help(cmd)) {
		help_main(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) {
		if (cli.json)
			printf("{\"version\":\"%s\",\"api\":%d}\n", KVMIG_VERSION, CTL_API_VERSION);
		else
			printf("kvmig %s (control API %d)\n", KVMIG_VERSION, CTL_API_VERSION);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(cmd, cmds[i].name))
			return cmds[i].fn(&cli);
	for (size_t i = 0; i < ARRAY_SIZE(later); i++) {
		if (!strcmp(cmd, later[i])) {
			fprintf(stderr, "kvmig: '%s' is not implemented yet\n", cmd);
			if (!strcmp(cmd, "demo"))
				fprintf(stderr, "kvmig: run 'make demo' in the source tree\n");
			return CLI_EXIT_USAGE;
		}
	}
	cli_usage_error("kvmig --help", "unknown command '%s'", cmd);
}
