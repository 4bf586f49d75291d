/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.h - kvmig bench codec|channel|migrate: the benchmarks of
 * bench/ from the installed binary, with the same tables, so that an
 * operator can measure a host and the link between two hosts.
 *
 * No agent is involved: each bench runs in the kvmig process, through the
 * modules the bench/ programs link too (bench/codecbench.h,
 * bench/chanbench.h, bench/migbench.h), which parse the same options and
 * print the same tables, or with --json one JSON object with the figures,
 * the command line and the settings (the sink of `bench channel --listen`:
 * one object per line). `bench channel --listen ADDR` on one host and
 * `bench channel --to URI` on another measure the link between them, as
 * iperf does. kvmig's global --timeout SEC bounds `bench migrate`'s
 * migration (its --timeout).
 *
 * Exit status (tools/cli.h): 0; 2 for bad usage (an unknown bench or
 * option, a malformed address); 1 when a bench could not run or measure
 * (no peer at --to, a refused handshake, bytes lost, no usable /dev/kvm).
 */
#ifndef KVMIG_TOOLS_CMD_BENCH_H
#define KVMIG_TOOLS_CMD_BENCH_H

#include "tools/cli.h"

/* Return: the exit status (0; errors exit through tools/cli.h). */
int cmd_bench(const struct cli *cli);

#endif /* KVMIG_TOOLS_CMD_BENCH_H */
