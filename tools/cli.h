/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what every command of kvmig (the agent's command-line client)
 * shares: the parsed command line, one call to the agent, output, and the
 * option parsing of command words.
 *
 * Each command turns into one request on the agent's control socket
 * (tools/API.md) and prints the reply: human-readable by default, or with
 * --json the reply object without its "ok" field, on one line of stdout.
 * Errors always go to stderr as "kvmig: <message>"; exit status 1
 * (CLI_EXIT_ERR) for an error from the agent or the connection, 2
 * (CLI_EXIT_USAGE) for bad usage and commands that are not implemented
 * yet. So the helpers here end the program on an error instead of
 * returning it (tools/ is the one place allowed to exit()); only
 * cli_try_call() hands an error back.
 *
 * Single-threaded: a kvmig process runs one command. The command groups
 * (tools/cmd_*.h) use these helpers; tools/kvmig.c fills struct cli.
 */
#ifndef KVMIG_TOOLS_CLI_H
#define KVMIG_TOOLS_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"

enum { CLI_EXIT_ERR = 1, CLI_EXIT_USAGE = 2 };

struct cli {
	const char *agent;
	bool json;
	int timeout_ms;
	int argc; /* the command words, global options removed */
	char **argv;
};

/* Print "kvmig: <message>" on stderr and exit with status. */
void NORETURN cli_die(int status, const char *fmt, ...) PRINTF_FMT(2, 3);

/* Like cli_die(CLI_EXIT_USAGE, ...), followed by "Try '<hint>'.". */
void NORETURN cli_usage_error(const char *hint, const char *fmt, ...) PRINTF_FMT(2, 3);

/* ---- talking to the agent ---- */

/* Return: {"method": method}, or NULL when out of memory (cli_call dies then). */
json_t *cli_request(const char *method);

/* Add a string field; user text that is not UTF-8 becomes '?'. */
void cli_req_str(json_t *req, const char *key, const char *val);

/*
 * Send req (consumed) and return the successful reply without its "ok"
 * and "id" fields; an "ok":false reply or a connection problem ends the
 * program with status 1. The caller frees the reply.
 */
json_t *cli_call(const struct cli *cli, json_t *req);

/* cli_call() for a request line as it is (len bytes, no newline needed). */
json_t *cli_call_line(const struct cli *cli, const char *line, size_t len);

/*
 * Like cli_call(), but an error from the agent or the connection comes
 * back as false with the message in err instead of ending the program;
 * the reply itself is dropped. req is consumed.
 */
bool cli_try_call(const struct cli *cli, json_t *req, char *err, size_t errlen);

/* cli_try_call() that keeps the reply (without "ok" and "id"): NULL on an error. */
json_t *cli_try_call_reply(const struct cli *cli, json_t *req, char *err, size_t errlen);

/* ---- output ---- */

/* The object as one line of JSON on stdout. */
void cli_print_json(const json_t *o);

/* An object as aligned "key: value" lines, nested keys joined by '.'. */
void cli_print_kv(json_t *o);

/* A string member, or "" when missing. */
const char *cli_json_str(const json_t *o, const char *key);

/* An integer member, or 0 when missing. */
long long cli_json_num(const json_t *o, const char *key);

/* "64M" for exact multiples, else "1.5M" style with one decimal. Return: buf. */
const char *cli_size_str(long long v, char *buf, size_t cap);

/* ---- argument helpers ---- */

/* Make a relative path absolute against our working directory. */
void cli_abs_path(const char *path, char *out, size_t cap);

/*
 * Option parser for command words: "--opt VALUE" or "--opt=VALUE"; a
 * missing VALUE is a usage error with hint.
 * Return: true (and *val) when argv[*i] is opt; advances *i past the value.
 */
bool cli_take_opt(int argc, char **argv, int *i, const char *opt, const char **val,
		  const char *hint);

/* Is s "--help", "-h" or "help"? */
bool cli_is_help(const char *s);

/*
 * Check that a command got exactly n positional words after argv[0..1]
 * and no options (the vm commands; a usage error names synopsis).
 */
void cli_want_args(const struct cli *cli, int n, const char *synopsis);

#endif /* KVMIG_TOOLS_CLI_H */
