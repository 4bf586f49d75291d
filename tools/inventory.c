/* SPDX-License-Identifier: MIT */
/*
 * inventory.c - the agents of a fleet by name (tools/inventory.h).
 */
#include "tools/inventory.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xio.h"
#include "protocol/uri.h"

#define INV_FILE_MAX (1u << 20)

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= INV_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* The next blank-separated word of [*p, end): its start and length; 0 at the end. */
static size_t next_word(const char **p, const char *end, const char **w)
{
	const char *s = *p;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	*w = s;
	while (s < end && *s != ' ' && *s != '\t')
		s++;
	*p = s;
	return (size_t)(s - *w);
}

static int parse_line(struct inventory *inv, const char *s, const char *end, const char *file,
		      unsigned line, char *err, size_t errlen)
{
	const char *w[4];
	size_t n[4];
	unsigned k = 0;
	struct inv_agent *a;
	struct uri u;
	char msg[300];

	for (const char *q = s; q < end; q++) {
		if (*q == '#') {
			end = q;
			break;
		}
	}
	while (k < 4 && (n[k] = next_word(&s, end, &w[k])) > 0)
		k++;
	if (k == 0)
		return 0;
	if (k == 1 || k == 4)
		return err_set(-EINVAL, err, errlen,
			       "%s:%u: expected NAME CONTROL-SOCKET [MIGRATION-URI], got %u field%s",
			       file, line, k == 4 ? 4 : 1, k == 1 ? "" : "s or more");
	if (!name_ok(w[0], n[0]))
		return err_set(-EINVAL, err, errlen,
			       "%s:%u: agent name '%.*s': use 1 to 63 letters, digits, '-', '_' "
			       "or '.'",
			       file, line, (int)MIN(n[0], (size_t)80), w[0]);
	for (unsigned i = 0; i < inv->n; i++) {
		if (strlen(inv->a[i].name) == n[0] && !memcmp(inv->a[i].name, w[0], n[0]))
			return err_set(-EINVAL, err, errlen, "%s:%u: agent '%.*s' is listed twice",
				       file, line, (int)n[0], w[0]);
	}
	if (w[1][0] != '/' || n[1] >= INV_PATH_MAX)
		return err_set(-EINVAL, err, errlen,
			       "%s:%u: control socket '%.*s': expected an absolute path of at most "
			       "%d bytes",
			       file, line, (int)MIN(n[1], (size_t)200), w[1], INV_PATH_MAX - 1);
	if (inv->n == INV_MAX_AGENTS)
		return err_set(-EINVAL, err, errlen, "%s:%u: more than %d agents", file, line,
			       INV_MAX_AGENTS);
	a = &inv->a[inv->n];
	memset(a, 0, sizeof(*a));
	memcpy(a->name, w[0], n[0]);
	memcpy(a->control, w[1], n[1]);
	if (k == 3) {
		if (n[2] >= INV_URI_MAX)
			return err_set(-EINVAL, err, errlen, "%s:%u: the URI is longer than %d bytes",
				       file, line, INV_URI_MAX - 1);
		memcpy(a->uri, w[2], n[2]);
		if (uri_parse(a->uri, &u, msg, sizeof(msg)) < 0)
			return err_set(-EINVAL, err, errlen, "%s:%u: %s", file, line, msg);
	}
	inv->n++;
	return 0;
}

int inventory_parse(struct inventory *inv, const char *text, size_t len, const char *name,
		    char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned line = 0;

	inv->n = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		int ret;

		line++;
		if (memchr(p, '\0', (size_t)(e - p)))
			return err_set(-EINVAL, err, errlen, "%s:%u: a NUL byte", name, line);
		ret = parse_line(inv, p, e > p && e[-1] == '\r' ? e - 1 : e, name, line, err,
				 errlen);
		if (ret < 0)
			return ret;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

int inventory_load(struct inventory *inv, const char *path, char *err, size_t errlen)
{
	size_t n;
	char *buf;
	int ret = read_file_max(path, INV_FILE_MAX, &buf, &n);

	if (ret == -EFBIG)
		ret = err_set(ret, err, errlen, "the inventory %s is larger than 1 MiB", path);
	else if (ret < 0)
		ret = err_set(ret, err, errlen, "cannot open the inventory %s: %s", path,
			      strerror(-ret));
	else
		ret = inventory_parse(inv, buf, n, path, err, errlen);
	free(buf);
	return ret;
}

const struct inv_agent *inventory_find(const struct inventory *inv, const char *name)
{
	for (unsigned i = 0; i < inv->n; i++)
		if (!strcmp(inv->a[i].name, name))
			return &inv->a[i];
	return NULL;
}
