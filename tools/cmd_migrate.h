/* SPDX-License-Identifier: MIT */
/*
 * cmd_migrate.h - kvmig migrate and kvmig job info|cancel|postcopy|resume:
 * starting a migration job, following it and steering it.
 *
 * The job commands live here with migrate because a job is a migration:
 * both read the job.info statistics and print them the same way, and
 * without --detach migrate is itself a job.info loop. cmd_migrate()
 * checks every option against the limits the agent applies
 * (migrate/opts.h) before it sends migrate.start, then, unless --detach,
 * polls job.info until the job ends, drawing a progress line on stderr
 * when it is a terminal (or KVMIG_PROGRESS=1). From the request on, the
 * first SIGINT cancels the job and a second stops waiting (exit 130); once
 * the job is in post-copy the first only stops waiting (a cancel would give
 * the guest up). The handler is installed by cmd_migrate() and only counts.
 */
#ifndef KVMIG_TOOLS_CMD_MIGRATE_H
#define KVMIG_TOOLS_CMD_MIGRATE_H

#include "tools/cli.h"

/* Return: the exit status: 0 the VM runs at the destination, 1 failed or cancelled. */
int cmd_migrate(const struct cli *cli);

/* Return: the exit status (0; errors exit through tools/cli.h). */
int cmd_job(const struct cli *cli);

#endif /* KVMIG_TOOLS_CMD_MIGRATE_H */
