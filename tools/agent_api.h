/* SPDX-License-Identifier: MIT */
/*
 * agent_api.h - the control API's methods (tools/API.md): one request line
 * in, one complete JSON response out.
 *
 * The method table names each method, its handler and the fields it takes
 * besides "method" and "id"; an unknown field is refused before the
 * handler runs. Every field of a request is checked before the VM it names
 * is looked at, so a bad request is answered the same whatever the agent
 * hosts. migrate.start hands the VM to a job thread (phase "migrating");
 * agent_api_job_done() takes it back when the job is reaped.
 *
 * Threads: the controller only, with agent.lock held (tools/agent.h). The
 * handlers touch the registry and the job table, and a VM only while its
 * entry's phase is REG_PHASE_NONE.
 */
#ifndef KVMIG_TOOLS_AGENT_API_H
#define KVMIG_TOOLS_AGENT_API_H

#include <jansson.h>
#include <stddef.h>

#include "migrate/migrate.h"
#include "tools/agent.h"

/*
 * Serve one request line (len bytes, no '\n'). Jobs that ended are reaped
 * first, so every answer sees their outcome.
 * Return: the response (a new reference, with the request's "id" if it had
 * one), or NULL when out of memory.
 */
json_t *agent_api_handle_request(struct agent *a, const char *line, size_t len);

/*
 * A job ended: the jobs_reap()/jobs_shutdown() callback (tools/jobs.h),
 * ctx the struct agent, called under agent.lock. A completed job's source
 * VM is destroyed; a failed one's goes back to phase NONE and runs on
 * here (or stays paused).
 */
void agent_api_job_done(void *ctx, const char *name, int result,
			const struct migrate_stats *st);

#endif /* KVMIG_TOOLS_AGENT_API_H */
