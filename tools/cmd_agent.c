/* SPDX-License-Identifier: MIT */
/*
 * cmd_agent.c - kvmig agent ping|version|send (tools/cmd_agent.h).
 */
#include "tools/cmd_agent.h"

#include <stdio.h>
#include <string.h>

int cmd_agent(const struct cli *cli)
{
	const char *sub = cli->argc > 1 ? cli->argv[1] : "";
	json_t *r;

	if (!strcmp(sub, "ping") && cli->argc == 2) {
		r = cli_call(cli, cli_request("agent.ping"));
		if (cli->json)
			cli_print_json(r);
		else
			printf("agent at %s is alive (pid %lld, %lld VMs)\n", cli->agent,
			       cli_json_num(r, "pid"), cli_json_num(r, "vms"));
	} else if (!strcmp(sub, "version") && cli->argc == 2) {
		r = cli_call(cli, cli_request("agent.version"));
		if (cli->json)
			cli_print_json(r);
		else
			cli_print_kv(r);
	} else if (!strcmp(sub, "send") && cli->argc == 3) {
		/* The caller's text as it is, malformed or not: a debugging aid. */
		r = cli_call_line(cli, cli->argv[2], strlen(cli->argv[2]));
		cli_print_json(r);
	} else {
		cli_usage_error("kvmig --help",
				"usage: kvmig agent ping | agent version | agent send JSON");
	}
	json_decref(r);
	return 0;
}
