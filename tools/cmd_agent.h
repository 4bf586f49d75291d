/* SPDX-License-Identifier: MIT */
/*
 * cmd_agent.h - kvmig agent ping|version|send: questions about the agent
 * itself (agent.* in tools/API.md), and a raw request line for debugging.
 *
 * agent send passes the caller's text to the agent as it is, malformed or
 * not, and prints the reply as JSON also without --json.
 */
#ifndef KVMIG_TOOLS_CMD_AGENT_H
#define KVMIG_TOOLS_CMD_AGENT_H

#include "tools/cli.h"

/* Return: the exit status (0; errors exit through tools/cli.h). */
int cmd_agent(const struct cli *cli);

#endif /* KVMIG_TOOLS_CMD_AGENT_H */
