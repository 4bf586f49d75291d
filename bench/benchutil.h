/* SPDX-License-Identifier: MIT */
/*
 * benchutil.h - what the benchmark modules share: their programs' name in
 * messages, the fatal path, option words, the command line that made a
 * table, medians and JSON output.
 *
 * The measuring code of the benchmarks lives in three modules,
 * bench/codecbench.h (page codecs), bench/chanbench.h (channels, on
 * loopback or between two hosts) and bench/migbench.h (one live migration
 * in one process), archived into $(O)/bench/libbench.a. Two kinds of
 * program link them: the bench/ programs (bench_codec, bench_channel,
 * bench_migrate; bench/run.sh and bench/e2e.sh run them from the build
 * tree) and the installed `kvmig bench` (tools/cmd_bench.h). Each module
 * parses its own options, so both spell them alike, and prints its own
 * table (or its JSON object), so both print the same.
 *
 * Errors: a bad option or an unusable peer comes back as -errno with a
 * message, so each program exits with its own convention (kvmig: 2 for
 * bad usage, 1 otherwise). A benchmark that finds its own results wrong (a
 * page that does not round-trip, frames lost) or cannot allocate or start
 * a thread has no figure to report: bench_fatal() prints
 * "<prog>: <message>" on stderr and exits with status 1.
 */
#ifndef KVMIG_BENCH_BENCHUTIL_H
#define KVMIG_BENCH_BENCHUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/compiler.h"

/* The name in front of messages: "bench_codec", "kvmig" (default "bench"). */
void bench_set_prog(const char *prog);
const char *bench_prog(void);

/* "<prog>: <message>" on stderr, exit status 1. */
void NORETURN bench_fatal(const char *fmt, ...) PRINTF_FMT(1, 2);

/* malloc(n), or bench_fatal(). */
void *bench_alloc(size_t n);

/*
 * The command words joined by spaces, each quoted for a POSIX shell where
 * it needs it, so the line can be pasted back. Return: a malloc'd string
 * (the caller frees it; bench_fatal() when out of memory).
 */
char *bench_cmdline(int argc, char *const *argv);

/* The same for this process, from /proc/self/cmdline (NULL if unreadable). */
char *bench_self_cmdline(void);

/*
 * An option word: "--opt VALUE" or "--opt=VALUE" at argv[*i]; advances *i
 * past the value. Return: 1 and *val, 0 when argv[*i] is not opt,
 * -EINVAL ("--opt needs a value" in err).
 */
int bench_take_opt(int argc, char **argv, int *i, const char *opt, const char **val, char *err,
		   size_t errlen) __must_check;

/* A finite number with nothing after it. Return: 0, -EINVAL. */
int bench_parse_double(const char *s, double *out) __must_check;

/* The median of v[0..n), n >= 1 (sorts v). */
double bench_median(double *v, int n);

/* A real rounded to `decimals` places, as the tables print it (NULL: no memory). */
json_t *bench_json_real(double v, int decimals);

/* Set key to a new reference (json_object_set_new), bench_fatal() when out of memory. */
void bench_json_set(json_t *o, const char *key, json_t *v);

/* o on one line of f, keys in insertion order; then o's reference is dropped. */
void bench_json_print(FILE *f, json_t *o);

#endif /* KVMIG_BENCH_BENCHUTIL_H */
