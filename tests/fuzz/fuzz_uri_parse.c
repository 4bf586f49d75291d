/* SPDX-License-Identifier: MIT */
/*
 * fuzz_uri_parse - arbitrary text (cut at the first NUL) through both
 * channel address parsers of protocol/uri.h: the connect URI (tcp://,
 * tls://, unix:///, ssh://) and the --listen address (tcp:, tls:, unix:).
 * Each must return 0 or -EINVAL with a message; whatever one accepts has
 * every field terminated and in range, and formats to a canonical text that
 * parses back to the same struct (and formats to the same text again).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/uri.h"
#include "tests/fuzz/fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*parse_fn)(const char *s, struct uri *u, char *err, size_t errlen);
typedef int (*format_fn)(const struct uri *u, char *buf, size_t cap);

static void check_fields(const struct uri *u)
{
	CHECK((unsigned)u->scheme < URI_SCHEME_COUNT);
	CHECK(memchr(u->host, 0, sizeof(u->host)));
	CHECK(memchr(u->user, 0, sizeof(u->user)));
	CHECK(memchr(u->path, 0, sizeof(u->path)));
	if (u->scheme == URI_UNIX)
		CHECK(u->path[0] && !u->host[0] && !u->port && !u->user[0]);
	else
		CHECK(!u->path[0] && u->host[0] != '-' && u->user[0] != '-');
	if (u->scheme != URI_SSH)
		CHECK(!u->user[0]);
}

static void one(const char *s, parse_fn parse, format_fn format)
{
	struct uri u, v;
	char err[256], text[512], text2[512];
	int ret, n;

	err[0] = '\0';
	ret = parse(s, &u, err, sizeof(err));
	if (ret) {
		CHECK(ret == -EINVAL && err[0]);
		return;
	}
	check_fields(&u);
	n = format(&u, text, sizeof(text));
	if (n < 0) {
		/* the one form without a text: an ssh or relative unix address */
		CHECK(n == -EINVAL);
		return;
	}
	CHECK((size_t)n == strlen(text));
	err[0] = '\0';
	if (parse(text, &v, err, sizeof(err))) {
		fprintf(stderr, "'%s' formats to '%s', which fails: %s\n", s, text, err);
		abort();
	}
	CHECK(!memcmp(&u, &v, sizeof(u)));
	CHECK(format(&v, text2, sizeof(text2)) == n && !strcmp(text, text2));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	one(s, uri_parse, uri_format);
	one(s, uri_parse_listen, uri_format_listen);
	free(s);
	return 0;
}
