/* SPDX-License-Identifier: MIT */
/*
 * bench_codec.c - page codec throughput and ratio: the program bench/run.sh
 * runs. The measurement and its table are bench/codecbench.h's, which
 * `kvmig bench codec` runs too.
 *
 * Usage: bench_codec [--mib N] [--time SECS] [--no-cli]
 * Exit status: 0; 1 when a measurement failed; 2 bad usage.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench/benchutil.h"
#include "bench/codecbench.h"

int main(int argc, char **argv)
{
	struct codecbench_opts o;
	char err[256], *cmd;
	int ret;

	bench_set_prog("bench_codec");
	codecbench_defaults(&o);
	if (codecbench_parse(argc - 1, argv + 1, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_codec: %s\nusage: %s " CODECBENCH_SYNOPSIS "\n", err,
			argv[0]);
		return 2;
	}
	cmd = bench_cmdline(argc, argv);
	ret = codecbench_run(&o, cmd, false, stdout, err, sizeof(err));
	free(cmd);
	if (ret < 0) {
		fprintf(stderr, "bench_codec: %s\n", err);
		return 1;
	}
	return 0;
}
