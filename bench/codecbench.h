/* SPDX-License-Identifier: MIT */
/*
 * codecbench.h - page codec throughput and ratio on page sets built here:
 * the measurement behind bench/bench_codec and `kvmig bench codec`.
 *
 * Sets (64 MiB each by default): zero pages; text pages cut at random
 * offsets from the plain-text files of /usr/share/common-licenses and
 * /usr/share/doc/ * /copyright (or generated words if there are none);
 * binary pages read from /usr/lib/x86_64-linux-gnu/ *.so* and /usr/bin/ *;
 * random pages; and XBZRLE pairs: the binary set as old pages and a copy
 * with 1, 64 or 1024 changed bytes per page as new pages.
 *
 * Each measurement times whole passes over its set, at least 3 and for at
 * least --time seconds, and reports the best pass, as zstd -b and lz4 -b
 * report their best run: other load on the machine only ever slows a pass.
 * Sets are bigger than the last-level cache, so the XBZRLE and zero-scan
 * figures include memory traffic; the "hot" columns rerun them on 64 pages
 * that stay in L2. Every decode is checked against its input outside the
 * timing (a page that does not round-trip is fatal, bench/benchutil.h).
 * Ratio is page bytes over payload bytes, with pages an encoder refused
 * (-ENOSPC) counted as sent raw. Last, unless --no-cli, zstd -b1 and
 * lz4 -b1 run with 4 KiB blocks on the same text and binary data, for
 * comparison (a tool that is not installed gets a line saying so).
 *
 * Output: the tables, row by row as they are measured, under a first line
 * "# COMMAND" naming the command that made them; or, with json, nothing
 * until one JSON object on one line at the end:
 *   {"bench": "codec", "command": "...", "settings": {"page_bytes",
 *    "mib", "pages", "time_s", "reference_cli"}, "cpu", "zero_scan_impl",
 *    "xbzrle_impl", "text_source", "binary_source",
 *    "codecs": [{"codec", "set", "enc_mb_per_s", "dec_mb_per_s", "ratio",
 *                "raw_pct"}, ...],
 *    "zero_scan": [{"impl", "zero_gb_per_s", "zero_hot_gb_per_s",
 *                   "binary_mpages_per_s"}, ...],
 *    "xbzrle": [{"changes", "encode": [{"impl", "gb_per_s",
 *                "hot_gb_per_s"}, ...], "dec_gb_per_s", "dec_hot_gb_per_s",
 *                "ratio", "overflow_pct"}, ...],
 *    "reference": [{"codec", "set", "tool", "ours_enc_mb_per_s",
 *                   "cli_enc_mb_per_s", "ours_dec_mb_per_s",
 *                   "cli_dec_mb_per_s", "ours_ratio", "cli_ratio"}, ...]
 *                 (a tool not found: its cli_* members null; no --no-cli:
 *                 reference is null),
 *    "total_s"}
 * MB is 10^6 bytes, GB 10^9.
 */
#ifndef KVMIG_BENCH_CODECBENCH_H
#define KVMIG_BENCH_CODECBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/compiler.h"

struct codecbench_opts {
	size_t mib;	/* --mib: MiB per page set (at least 64 pages are used) */
	double time_s;	/* --time: seconds per measurement (at least 3 passes) */
	bool cli;	/* the reference zstd/lz4 CLIs (--no-cli turns them off) */
};

/* The options' synopsis, for usage lines. */
#define CODECBENCH_SYNOPSIS "[--mib N] [--time SECS] [--no-cli]"

void codecbench_defaults(struct codecbench_opts *o);

/*
 * Parse argv[0..argc) (options only) into o, over its defaults.
 * Return: 0, or -EINVAL with the message in err.
 */
int codecbench_parse(int argc, char **argv, struct codecbench_opts *o, char *err,
		     size_t errlen) __must_check;

/*
 * Build the sets and run every measurement; print to out as above.
 * cmdline: the command to name (first line, and "command" in JSON).
 * Return: 0, or -errno with the message in err (a temporary file for the
 * reference CLIs that cannot be written).
 */
int codecbench_run(const struct codecbench_opts *o, const char *cmdline, bool json, FILE *out,
		   char *err, size_t errlen) __must_check;

#endif /* KVMIG_BENCH_CODECBENCH_H */
