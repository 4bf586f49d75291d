/* SPDX-License-Identifier: MIT */
/*
 * cmd_events.h - kvmig events [--vm NAME] [--count N] [--json]: follow the
 * agent's event stream (events.subscribe in tools/API.md).
 *
 * One connection: the events.subscribe request, its reply, then one event
 * per line until the agent closes the stream. Each event is printed as it
 * comes, stdout flushed after each: with --json the event object as the
 * agent sent it, one per line; otherwise one human line ("12:00:01.234 g1
 * round 3: 12.3 MiB sent, ..."), local time. --count N ends with status 0
 * after N events (for scripts). The stream ending (the agent stopped) or
 * the agent dropping a subscriber that read too slowly ("overflow") ends
 * with status 1 and a message on stderr.
 */
#ifndef KVMIG_TOOLS_CMD_EVENTS_H
#define KVMIG_TOOLS_CMD_EVENTS_H

#include "tools/cli.h"

/* Return: the exit status (0 after --count events; errors exit through tools/cli.h). */
int cmd_events(const struct cli *cli);

#endif /* KVMIG_TOOLS_CMD_EVENTS_H */
