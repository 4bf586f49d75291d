#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Snapshot save/restore time and file size for 64 MiB, 1 GiB and 4 GiB
# memcheck guests with 16 MiB touched (untouched RAM must not be written
# page by page), and the vCPU pause latency seen by the saves.
# Usage: bench/snapshot.sh [BUILD_DIR]
set -u
B=${1:-build}
echo "# bench/snapshot.sh $B"
if ! "$B/kvmig" --help >/dev/null 2>&1; then
	echo "bench/snapshot.sh: build first (make)" >&2
	exit 1
fi
if [ ! -c /dev/kvm ]; then
	echo "SKIPPED: snapshot bench needs /dev/kvm"
	exit 0
fi
D=$(mktemp -d /tmp/kvmig-bench-snap.XXXXXX)
SOCK=$D/a.sock
"$B/kvmigd" --control "$SOCK" 2>"$D/agent.log" &
AGENT=$!
trap 'kill $AGENT 2>/dev/null; wait $AGENT 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
K() { "$B/kvmig" --agent "$SOCK" "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d=d[k]
print(d)' "$1"; }

printf '%-6s %10s %10s %10s %12s %12s %10s\n' mem touched file_MiB save_ms pause_ms restore_ms pages
for mem in 64M 1G 4G; do
	K vm start s --mem $mem --guest memcheck,workset=16M >/dev/null || exit 1
	# one full generation written: every page of the working set touched
	for _ in $(seq 600); do
		p=$(K vm info s --json | jget guest_stats.progress)
		[ "$p" -ge 8192 ] && break
		sleep 0.1
	done
	out=$(K vm save s "$D/s.snap" --json) || exit 1
	K vm stop s >/dev/null
	rout=$(K vm restore "$D/s.snap" --json) || exit 1
	K vm stop s >/dev/null
	printf '%-6s %10s %10.1f %10s %12s %12s %10s\n' $mem 16M \
		"$(echo "$out" | jget file_bytes | awk '{print $1/1048576}')" \
		"$(echo "$out" | jget elapsed_ms)" "$(echo "$out" | jget pause_ms)" \
		"$(echo "$rout" | jget elapsed_ms)" "$(echo "$out" | jget ram_pages)"
	rm -f "$D/s.snap"
done

# pause latency: 50 pause/resume cycles through saves of a busy 2-vCPU guest
K vm start p --mem 64M --vcpus 2 --guest seqdirty,workset=4M >/dev/null || exit 1
for i in $(seq 20); do K vm save p "$D/p.snap" >/dev/null || exit 1; done
echo
echo "vCPU pause latency over 20 pauses of a busy 2-vCPU guest (us):"
K vm info p --json | python3 -c 'import json,sys; p=json.load(sys.stdin)["pause_latency"]
print("count %d  last %d  max %d  mean %d" % (p["count"], p["last_us"], p["max_us"], p["total_us"] // max(p["count"], 1)))'
