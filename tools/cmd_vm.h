/* SPDX-License-Identifier: MIT */
/*
 * cmd_vm.h - kvmig vm: the VM commands (start, stop, pause, resume, list,
 * info, console, save, restore), one agent request each (vm.* in
 * tools/API.md).
 *
 * The command words are cli->argv ("vm", the subcommand, its arguments).
 * --help or -h after any vm command word, and "kvmig vm help", print the
 * vm help on stdout. save and restore pass FILE to the agent, which opens
 * it: a relative FILE is made absolute against kvmig's own working
 * directory first. Errors end the program (tools/cli.h).
 */
#ifndef KVMIG_TOOLS_CMD_VM_H
#define KVMIG_TOOLS_CMD_VM_H

#include "tools/cli.h"

/* Return: the exit status (0; errors exit through tools/cli.h). */
int cmd_vm(const struct cli *cli);

#endif /* KVMIG_TOOLS_CMD_VM_H */
