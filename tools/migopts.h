/* SPDX-License-Identifier: MIT */
/*
 * migopts.h - the migration options of the kvmig command line (--bandwidth,
 * --compress, --postcopy, --tls-dir, ...), shared by every command that
 * starts migrations: kvmig migrate (one VM) and kvmig drain (each move).
 *
 * migopts_take() parses one option into the fields of a migrate.start
 * request (tools/API.md), checked against the limits the agent applies
 * (migrate/opts.h) so that a bad value is a usage error before anything
 * is sent; migopts_done() checks what needs another option;
 * migopts_help() prints their help lines, so both commands say the same.
 * Errors end the program (tools/cli.h).
 */
#ifndef KVMIG_TOOLS_MIGOPTS_H
#define KVMIG_TOOLS_MIGOPTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "migrate/opts.h"
#include "tools/cli.h"

struct migopts {
	enum migrate_postcopy postcopy;	/* --postcopy[=MODE] */
	uint64_t reconnect_ms;		/* --postcopy-reconnect */
	bool reconnect_given;
};

/* Zeroed: no option seen. */
void migopts_init(struct migopts *mo);

/*
 * If cli->argv[*i] is a migration option, take it (and its value: *i moves
 * on), set its field in req and return true; else false. hint: the help
 * command a usage error names.
 */
bool migopts_take(const struct cli *cli, int *i, json_t *req, struct migopts *mo,
		  const char *hint);

/* After the last option: the combinations that need another (usage error). */
void migopts_done(const struct migopts *mo, const char *hint);

/* The help lines of the options, as "  --opt ...  what it does\n". */
void migopts_help(FILE *f);

/*
 * A destination URI, checked with the parser the agent's channel uses
 * (protocol/uri.h): a usage error names what is wrong (what: the option).
 */
void migopts_check_uri(const char *what, const char *uri, const char *hint);

#endif /* KVMIG_TOOLS_MIGOPTS_H */
