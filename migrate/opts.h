/* SPDX-License-Identifier: MIT */
/*
 * opts.h - a migration's options, their defaults and their limits: one
 * table that the CLI (kvmig migrate --max-downtime ...), the agent
 * (migrate.start's fields) and the engine (migrate_start) all check
 * against, so a limit is written once and every layer names it the same.
 *
 * Each numeric option has a struct migrate_limit: its migrate.start field,
 * its kvmig flag, the range of the field's value (in the field's unit:
 * ms, bytes, bytes/s, rounds, channels) and whether 0 means "off" below the
 * range. migrate_opts_check() checks a whole struct migrate_opts,
 * including the names of the codec and the dirty tracking. Pure; any
 * thread.
 */
#ifndef KVMIG_MIGRATE_OPTS_H
#define KVMIG_MIGRATE_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "dirtylog/dirtylog.h"

#define MIGRATE_MAX_PARALLEL 8

/* When a job switches to post-copy (--postcopy[=MODE]). */
enum migrate_postcopy {
	MIGRATE_POSTCOPY_OFF,		/* never: pre-copy only (the default) */
	MIGRATE_POSTCOPY_AUTO,		/* --postcopy: after the first full round, or as soon
					 * as pre-copy stops converging */
	MIGRATE_POSTCOPY_NOW,		/* --postcopy=now: at once, before any pre-copy round */
	MIGRATE_POSTCOPY_MANUAL,	/* --postcopy=manual: only on `kvmig job postcopy` */
};

struct migrate_opts {
	uint64_t max_downtime_ms;	/* --max-downtime, default 300 */
	uint64_t bandwidth;		/* --bandwidth in bytes/s, 0 = unlimited */
	size_t xbzrle_cache_bytes;	/* --xbzrle[=CACHE], 0 = off */
	char compress[32];		/* --compress none|zstd[:L]|lz4|auto */
	unsigned parallel;		/* --parallel N, 1..MIGRATE_MAX_PARALLEL */
	bool auto_converge;
	unsigned max_iterations;	/* --max-iterations, default 30 */
	uint64_t timeout_ms;		/* --timeout, 0 = none */
	bool verify;
	enum dirtylog_backend dirty_track;
	bool strict_cpu;		/* --strict-cpu: a TSC rate difference refuses */
	enum migrate_postcopy postcopy;	/* --postcopy[=now|manual] */
	uint64_t postcopy_reconnect_ms;	/* --postcopy-reconnect SECONDS (in ms): after a
					 * broken link in post-copy, reconnect by itself
					 * for this long; 0 = wait for `job resume` */

	/* the transport (tls://, ssh://): protocol/channel.h's struct channel_opts */
	char tls_dir[256];		/* --tls-dir; "" = the agent's --tls-dir */
	bool ssh_accept_new;		/* --ssh-accept-new: record an unknown host key */
	unsigned ssh_agent_port;	/* --ssh-agent-port, 0 = CHANNEL_AGENT_PORT */
	char ssh_exec[256];		/* --ssh-exec[=CMD]: run CMD there (default
					 * MIGRATE_SSH_EXEC_CMD) and use its stdio; "" = off */
	bool ssh_data_tls;		/* --ssh-data tls: pages over one-time TLS */

	/* the RARP announce at the destination (migrate/announce.h) */
	char announce[16];		/* --announce IFACE there; "" = the agent's default */
	unsigned announce_rounds;	/* --announce-rounds, default 5 */
	unsigned announce_initial_ms;	/* --announce-initial, default 50 */
	unsigned announce_step_ms;	/* --announce-step, default 100 */
	unsigned announce_max_ms;	/* --announce-max, default 550 */
};

void migrate_opts_defaults(struct migrate_opts *o);

/* "off", "auto", "now", "manual"; and back (-EINVAL for another name). */
const char *migrate_postcopy_name(enum migrate_postcopy m);
int migrate_postcopy_parse(const char *s, enum migrate_postcopy *m) __must_check;

/* The remote command --ssh-exec runs (its stdin/stdout carry the stream). */
#define MIGRATE_SSH_EXEC_CMD "kvmigd --incoming stdio"

struct channel_opts;

/*
 * The channel options of o's transport fields; the strings point into o,
 * so co lives no longer than o.
 */
void migrate_opts_channel(const struct migrate_opts *o, struct channel_opts *co);

/* The numeric options. */
enum migrate_opt {
	MIGRATE_OPT_MAX_DOWNTIME,
	MIGRATE_OPT_BANDWIDTH,
	MIGRATE_OPT_XBZRLE_CACHE,
	MIGRATE_OPT_PARALLEL,
	MIGRATE_OPT_MAX_ITERATIONS,
	MIGRATE_OPT_TIMEOUT,
	MIGRATE_OPT_SSH_AGENT_PORT,
	MIGRATE_OPT_POSTCOPY_RECONNECT,
	MIGRATE_OPT_COUNT,
};

struct migrate_limit {
	const char *field;	/* migrate.start field, e.g. "max_downtime_ms" */
	const char *flag;	/* kvmig migrate option, e.g. "--max-downtime" */
	uint64_t min, max;	/* the field's range, in the field's unit */
	bool zero_off;		/* 0 is allowed too, and means off / unlimited */
};

const struct migrate_limit *migrate_limit(enum migrate_opt opt);

/* Whether v is a value option opt takes (in the field's unit). */
bool migrate_opt_ok(enum migrate_opt opt, uint64_t v);

/*
 * migrate_opt_ok() with the API's message: Return 0, or -EINVAL and "field
 * 'parallel' must be between 1 and 8, not 0" in err.
 */
int migrate_opt_check(enum migrate_opt opt, uint64_t v, char *err, size_t errlen) __must_check;

/*
 * A --compress value: none, zstd[:LEVEL] (1..22), lz4[:ACCEL] or auto
 * (each round picks none, lz4 or zstd: migrate/autocomp.h).
 * Return: 0, or -EINVAL with a message saying what is wrong.
 */
int migrate_check_compress(const char *s, char *err, size_t errlen) __must_check;

/* Whether a --compress value that passed migrate_check_compress is auto. */
bool migrate_compress_auto(const char *s);

/*
 * Every option of o within its limits and every name known. Return: 0, or
 * -EINVAL with a message naming the migrate.start field, its range and
 * the value ("field 'parallel' must be between 1 and 8, not 0").
 */
int migrate_opts_check(const struct migrate_opts *o, char *err, size_t errlen) __must_check;

#endif
