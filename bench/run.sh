#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run the benchmarks and print their tables. Each bench prints the command
# that made it as its first line.
# Usage: bench/run.sh [BUILD_DIR] [bench options...]   (default build/)
set -eu
B=${1:-build}
[ $# -gt 0 ] && shift
echo "# bench/run.sh $B $*"
for b in bench_codec; do
	if [ ! -x "$B/bench/$b" ]; then
		echo "bench/run.sh: $B/bench/$b not built (make $B/bench/$b)" >&2
		exit 1
	fi
	"$B/bench/$b" "$@"
done
echo
"$B/bench/bench_channel"
echo
"$B/bench/bench_pagepath"
echo
bench/snapshot.sh "$B"
