/* SPDX-License-Identifier: MIT */
/*
 * bench_pagepath.c - the page path without a VM: the real sender and
 * receiver moving a memfd "RAM" over loopback TCP, against raw TCP and a
 * bare read + CRC32C + write pipeline in the same run, with CPU time and
 * instructions per page on each side. The measurement and its table are
 * bench/pagebench.h's.
 *
 * Usage: bench_pagepath [--mib N] [--mix zero:Z,text:T,random:R]
 *                       [--compress none|zstd[:L]|lz4[:A]] [--warm-dst] [--insn] [--json]
 * Exit status: 0; 1 when a measurement failed (the destination differs
 * from the source, a broken stream); 2 bad usage.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench/benchutil.h"
#include "bench/pagebench.h"

int main(int argc, char **argv)
{
	struct pagebench_opts o;
	char err[512], *cmd;

	bench_set_prog("bench_pagepath");
	pagebench_defaults(&o);
	if (pagebench_parse(argc - 1, argv + 1, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_pagepath: %s\nusage: %s " PAGEBENCH_SYNOPSIS "\n", err,
			argv[0]);
		return 2;
	}
	cmd = bench_cmdline(argc, argv);
	pagebench_run(&o, cmd, stdout);
	free(cmd);
	return 0;
}
