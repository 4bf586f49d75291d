/* SPDX-License-Identifier: MIT */
/*
 * cmd_drain.h - kvmig drain: empty an agent of its VMs onto others
 * (tools/drain.h does the work; this parses the command line, draws one
 * progress line per VM on a terminal and prints the report).
 *
 * Agents are named by their control socket (a path, as --agent takes it)
 * or by a name of --inventory FILE (tools/inventory.h). Every migrate
 * option (tools/migopts.h) applies to each move. The first SIGINT starts
 * no more moves and lets the running ones end; a second cancels them.
 */
#ifndef KVMIG_TOOLS_CMD_DRAIN_H
#define KVMIG_TOOLS_CMD_DRAIN_H

#include "tools/cli.h"

/* Return: the exit status: 0 the source is empty, 1 some VM stayed there. */
int cmd_drain(const struct cli *cli);

#endif /* KVMIG_TOOLS_CMD_DRAIN_H */
