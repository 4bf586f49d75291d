/* SPDX-License-Identifier: MIT */
/*
 * benchutil.c - the benchmark modules' shared helpers (bench/benchutil.h).
 */
#include "bench/benchutil.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "bench";

void bench_set_prog(const char *p)
{
	prog = p;
}

const char *bench_prog(void)
{
	return prog;
}

void bench_fatal(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void *bench_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		bench_fatal("out of memory (%zu bytes)", n);
	return p;
}

/* Characters a POSIX shell takes literally in an unquoted word. */
static bool shell_plain(const char *s)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789-_./:=,@+%";

	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr(plain, *s))
			return false;
	return true;
}

char *bench_cmdline(int argc, char *const *argv)
{
	size_t cap = 1, n = 0;
	char *s;

	/* worst case: every byte a quote, which takes 4 ('\''), plus the quotes and a space */
	for (int i = 0; i < argc; i++)
		cap += 4 * strlen(argv[i]) + 3;
	s = bench_alloc(cap);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (i)
			s[n++] = ' ';
		if (shell_plain(a)) {
			memcpy(s + n, a, strlen(a));
			n += strlen(a);
			continue;
		}
		s[n++] = '\'';
		for (; *a; a++) {
			if (*a == '\'') {
				memcpy(s + n, "'\\''", 4);
				n += 4;
			} else {
				s[n++] = *a;
			}
		}
		s[n++] = '\'';
	}
	s[n] = 0;
	return s;
}

char *bench_self_cmdline(void)
{
	FILE *f = fopen("/proc/self/cmdline", "rb");
	char buf[8192], *args[512], *s;
	size_t len;
	int argc = 0;

	if (!f)
		return NULL;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (!len)
		return NULL;
	buf[len] = 0;
	for (size_t at = 0; at < len && argc < (int)ARRAY_SIZE(args); at += strlen(buf + at) + 1)
		args[argc++] = buf + at;
	s = bench_cmdline(argc, args);
	return s;
}

int bench_take_opt(int argc, char **argv, int *i, const char *opt, const char **val, char *err,
		   size_t errlen)
{
	size_t ol = strlen(opt);

	if (strncmp(argv[*i], opt, ol))
		return 0;
	if (argv[*i][ol] == '=') {
		*val = argv[*i] + ol + 1;
		return 1;
	}
	if (argv[*i][ol])
		return 0;
	if (*i + 1 >= argc) {
		snprintf(err, errlen, "%s needs a value", opt);
		return -EINVAL;
	}
	*val = argv[++*i];
	return 1;
}

int bench_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return v[n / 2];
}

json_t *bench_json_real(double v, int decimals)
{
	double scale = pow(10.0, decimals);

	return json_real(round(v * scale) / scale);
}

void bench_json_set(json_t *o, const char *key, json_t *v)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		bench_fatal("out of memory (JSON)");
}

void bench_json_print(FILE *f, json_t *o)
{
	/* 12 significant digits: the rounded reals print as the tables do */
	char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));

	if (!s)
		bench_fatal("out of memory (JSON)");
	fprintf(f, "%s\n", s);
	fflush(f);
	free(s);
	json_decref(o);
}
