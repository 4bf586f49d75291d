/* SPDX-License-Identifier: MIT */
/*
 * bench_channel.c - throughput of protocol/channel.h against the bare pump
 * of the same transport, and against raw TCP, in the same run: the program
 * bench/run.sh runs. The measurement and its table are bench/chanbench.h's,
 * which `kvmig bench channel` runs too (also between two hosts: --listen
 * on one, --to on the other).
 *
 * Usage: bench_channel [--gib N] [--repeat R] [--transport tcp|unix|tls|tls-psk]
 *                      [--cipher aes128gcm|chacha20] [--streams N] [--tls-dir DIR]
 *        bench_channel --listen ADDR [--once] [--tls-dir DIR] [--cipher C]
 *        bench_channel --to URI [--gib N] [--streams N] [--tls-dir DIR] [--cipher C]
 * Exit status: 0; 1 when a measurement failed; 2 bad usage.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench/benchutil.h"
#include "bench/chanbench.h"

int main(int argc, char **argv)
{
	struct chanbench_opts o;
	char err[512], *cmd;
	int ret;

	bench_set_prog("bench_channel");
	chanbench_defaults(&o);
	if (chanbench_parse(argc - 1, argv + 1, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_channel: %s\nusage: %s " CHANBENCH_SYNOPSIS "\n", err,
			argv[0]);
		return 2;
	}
	cmd = bench_cmdline(argc, argv);
	ret = chanbench_run(&o, cmd, false, stdout, err, sizeof(err));
	free(cmd);
	if (ret < 0) {
		fprintf(stderr, "bench_channel: %s\n", err);
		return 1;
	}
	return 0;
}
