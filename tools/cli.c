/* SPDX-License-Identifier: MIT */
/*
 * cli.c - the helpers every kvmig command shares (tools/cli.h): calling the
 * agent, printing its replies, parsing command words.
 */
#include "tools/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/parse.h"
#include "tools/control.h"

void cli_die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("kvmig: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

void cli_usage_error(const char *hint, const char *fmt, ...)
{
	va_list ap;

	fputs("kvmig: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s'.\n", hint);
	exit(CLI_EXIT_USAGE);
}

/* ---- talking to the agent ---- */

/*
 * Send one request line and return the successful reply; an "ok":false
 * reply or a connection problem ends the program with status 1.
 */
json_t *cli_call_line(const struct cli *cli, const char *line, size_t len)
{
	char err[1024];
	json_t *resp;
	int fd, ret;

	fd = ctl_connect(cli->agent, err, sizeof(err));
	if (fd < 0)
		cli_die(CLI_EXIT_ERR, "%s", err);
	ret = ctl_call_line(fd, line, len, &resp, cli->timeout_ms, err, sizeof(err));
	close(fd);
	if (ret < 0)
		cli_die(CLI_EXIT_ERR, "%s", err);
	if (!json_is_true(json_object_get(resp, "ok"))) {
		const char *msg = json_string_value(json_object_get(resp, "error"));

		cli_die(CLI_EXIT_ERR, "%s",
			msg ? msg : "the agent reported an error without a message");
	}
	json_object_del(resp, "ok");
	json_object_del(resp, "id");
	return resp;
}

/*
 * Like cli_call(), but an error from the agent or the connection comes back
 * as false with the message in err instead of ending the program.
 */
json_t *cli_try_call_reply(const struct cli *cli, json_t *req, char *err, size_t errlen)
{
	size_t len;
	char *line = req ? ctl_encode(req, &len) : NULL;
	json_t *resp = NULL;
	int fd, ret;

	json_decref(req);
	if (!line) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fd = ctl_connect(cli->agent, err, errlen);
	if (fd >= 0) {
		ret = ctl_call_line(fd, line, len, &resp, cli->timeout_ms, err, errlen);
		close(fd);
		if (ret == 0 && !json_is_true(json_object_get(resp, "ok"))) {
			const char *msg = json_string_value(json_object_get(resp, "error"));

			snprintf(err, errlen, "%s", msg ? msg : "the agent reported an error");
			json_decref(resp);
			resp = NULL;
		} else if (ret < 0) {
			resp = NULL;
		}
	}
	free(line);
	if (resp) {
		json_object_del(resp, "ok");
		json_object_del(resp, "id");
	}
	return resp;
}

bool cli_try_call(const struct cli *cli, json_t *req, char *err, size_t errlen)
{
	json_t *r = cli_try_call_reply(cli, req, err, errlen);

	json_decref(r);
	return r != NULL;
}

json_t *cli_call(const struct cli *cli, json_t *req)
{
	size_t len;
	char *line = req ? ctl_encode(req, &len) : NULL;
	json_t *resp;

	if (!line)
		cli_die(CLI_EXIT_ERR, "out of memory");
	json_decref(req);
	resp = cli_call_line(cli, line, len);
	free(line);
	return resp;
}

json_t *cli_request(const char *method)
{
	json_t *r = json_object();

	if (r)
		json_object_set_new(r, "method", json_string(method));
	return r;
}

/* Add a string field; user text that is not UTF-8 becomes '?'. */
void cli_req_str(json_t *req, const char *key, const char *val)
{
	json_object_set_new(req, key, ctl_string_lossy(val, strlen(val)));
}

void cli_print_json(const json_t *o)
{
	size_t len;
	char *s = ctl_encode(o, &len);

	if (!s)
		cli_die(CLI_EXIT_ERR, "out of memory");
	fwrite(s, 1, len, stdout);
	free(s);
}

const char *cli_json_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

long long cli_json_num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* "64M" for exact multiples, else "1.5M" style with one decimal. */
const char *cli_size_str(long long v, char *buf, size_t cap)
{
	static const char units[] = "KMGT";
	double x = (double)v;
	int u = -1;

	if (v < 1024 || v % 1024 == 0)
		return format_size((uint64_t)v, buf, cap);
	while (x >= 1024.0 && u < 3) {
		x /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f%c", x, units[u]);
	return buf;
}

/* Print an object as aligned "key: value" lines, nested keys joined by '.'. */
struct kv {
	char key[96];
	char val[512];
};

static void flatten(json_t *o, const char *prefix, struct kv *kv, size_t *n, size_t max)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		char full[96];

		if (*n >= max)
			return;
		snprintf(full, sizeof(full), "%s%s%s", prefix, prefix[0] ? "." : "", key);
		if (json_is_object(v)) {
			flatten(v, full, kv, n, max);
			continue;
		}
		snprintf(kv[*n].key, sizeof(kv[*n].key), "%s", full);
		switch (json_typeof(v)) {
		case JSON_STRING:
			snprintf(kv[*n].val, sizeof(kv[*n].val), "%s", json_string_value(v));
			break;
		case JSON_INTEGER: {
			long long x = json_integer_value(v);
			size_t kl = strlen(key);
			char sz[32];

			if (kl > 6 && !strcmp(key + kl - 6, "_bytes") && x >= 1024)
				snprintf(kv[*n].val, sizeof(kv[*n].val), "%lld (%s)", x,
					 cli_size_str(x, sz, sizeof(sz)));
			else
				snprintf(kv[*n].val, sizeof(kv[*n].val), "%lld", x);
			break;
		}
		case JSON_REAL:
			snprintf(kv[*n].val, sizeof(kv[*n].val), "%.3f", json_real_value(v));
			break;
		case JSON_TRUE:
			snprintf(kv[*n].val, sizeof(kv[*n].val), "yes");
			break;
		case JSON_FALSE:
			snprintf(kv[*n].val, sizeof(kv[*n].val), "no");
			break;
		case JSON_NULL:
			snprintf(kv[*n].val, sizeof(kv[*n].val), "-");
			break;
		case JSON_ARRAY:
		case JSON_OBJECT: {
			char *s = json_dumps(v, JSON_COMPACT);

			snprintf(kv[*n].val, sizeof(kv[*n].val), "%s", s ? s : "?");
			free(s);
			break;
		}
		}
		(*n)++;
	}
}

void cli_print_kv(json_t *o)
{
	struct kv kv[128];
	size_t n = 0, w = 0;

	flatten(o, "", kv, &n, ARRAY_SIZE(kv));
	for (size_t i = 0; i < n; i++)
		w = MAX(w, strlen(kv[i].key));
	for (size_t i = 0; i < n; i++)
		printf("%s:%*s %s\n", kv[i].key, (int)(w - strlen(kv[i].key)), "", kv[i].val);
}

/* ---- argument helpers ---- */

/* Make a relative path absolute against our working directory. */
void cli_abs_path(const char *path, char *out, size_t cap)
{
	char cwd[PATH_MAX];

	if (path[0] == '/') {
		if ((size_t)snprintf(out, cap, "%s", path) >= cap)
			cli_die(CLI_EXIT_USAGE, "path too long: %s", path);
		return;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		cli_die(CLI_EXIT_ERR, "cannot get the working directory: %s", strerror(errno));
	if ((size_t)snprintf(out, cap, "%s/%s", strcmp(cwd, "/") ? cwd : "", path) >= cap)
		cli_die(CLI_EXIT_USAGE, "path too long: %s", path);
}

/*
 * Option parser for command words: "--opt VALUE" or "--opt=VALUE".
 * Return: true (and *val) when argv[*i] is opt; advances *i past the value.
 */
bool cli_take_opt(int argc, char **argv, int *i, const char *opt, const char **val,
		  const char *hint)
{
	size_t ol = strlen(opt);

	if (strncmp(argv[*i], opt, ol))
		return false;
	if (argv[*i][ol] == '=') {
		*val = argv[*i] + ol + 1;
		return true;
	}
	if (argv[*i][ol])
		return false;
	if (*i + 1 >= argc)
		cli_usage_error(hint, "option %s needs a value", opt);
	*val = argv[++*i];
	return true;
}

bool cli_is_help(const char *s)
{
	return !strcmp(s, "--help") || !strcmp(s, "-h") || !strcmp(s, "help");
}

/* Check that a command got exactly n positional words after argv[0..1]. */
void cli_want_args(const struct cli *cli, int n, const char *synopsis)
{
	if (cli->argc - 2 != n)
		cli_usage_error("kvmig vm --help", "usage: kvmig %s", synopsis);
	for (int i = 2; i < cli->argc; i++)
		if (cli->argv[i][0] == '-' && cli->argv[i][1])
			cli_usage_error("kvmig vm --help", "unknown option '%s'; usage: kvmig %s",
					cli->argv[i], synopsis);
}
