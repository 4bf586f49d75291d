/* SPDX-License-Identifier: MIT */
/*
 * agent_limits.h - what kvmigd takes on at once: max_incoming (migrations
 * arriving), max_outgoing (jobs running) and the bandwidth budget the
 * outgoing jobs share (kvmigd.conf(5), tools/agentconf.h).
 *
 * Counting uses the registry, whose phases say it exactly: an arriving
 * migration is an entry in phase "incoming" (its name reserved at HELLO)
 * or, at the destination of a post-copy, "postcopy" until its last page
 * is in; a running job is an entry in phase "migrating" (from
 * migrate.start until the job is reaped). So an arrival is refused at its
 * HELLO, before anything is allocated, with an ERROR the source reports
 * (the guest runs on there); a migrate.start over the limit is refused
 * before it connects.
 *
 * The budget: each running job's cap is min(its own --bandwidth,
 * budget / running jobs), set again (migrate_set_bandwidth) whenever a job
 * starts or ends. The spare share of a job whose own cap is lower is not
 * handed to the others: a cap never depends on what another job asked.
 *
 * Threads: every function runs with agent.lock held (the controller, or
 * an incoming thread at HELLO).
 */
#ifndef KVMIG_TOOLS_AGENT_LIMITS_H
#define KVMIG_TOOLS_AGENT_LIMITS_H

#include <jansson.h>
#include <stddef.h>

#include "common/compiler.h"
#include "tools/agent.h"

/* Return: migrations arriving now (phases incoming and postcopy). */
unsigned agent_limits_incoming(struct agent *a);

/* Return: migration jobs running now (phase migrating). */
unsigned agent_limits_outgoing(struct agent *a);

/*
 * May one more migration arrive? Return: 0, or -EBUSY with "the
 * destination agent runs N incoming migrations already (max_incoming N)".
 */
int agent_limits_admit_incoming(struct agent *a, char *err, size_t errlen) __must_check;

/* May one more job start? Return: 0, or -EBUSY with the reason. */
int agent_limits_admit_outgoing(struct agent *a, char *err, size_t errlen) __must_check;

/*
 * A new VM of mem bytes for name (vm start, restore, an incoming HELLO):
 * within --guest-mem with every VM this agent hosts or reserved.
 * Return: 0, or -ENOMEM with a message saying what is free.
 */
int agent_limits_admit_mem(struct agent *a, const char *name, uint64_t mem, char *err,
			   size_t errlen) __must_check;

/* Split the budget among the running jobs again (nothing without one). */
void agent_limits_share(struct agent *a);

/*
 * The fields agent.version adds (tools/API.md): limits {max_incoming,
 * max_outgoing, bandwidth_budget}, incoming, outgoing, bandwidth_in_use,
 * mem_total_bytes, mem_free_bytes, vms_mem_bytes. Return: a new object,
 * or NULL when out of memory.
 */
json_t *agent_limits_json(struct agent *a);

#endif /* KVMIG_TOOLS_AGENT_LIMITS_H */
