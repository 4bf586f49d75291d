#!/bin/bash
# SPDX-License-Identifier: MIT
# tools/demo.sh BUILD_DIR - the demo behind `make demo`.
#
# Two agents on loopback: A runs a memcheck guest that keeps dirtying and
# re-verifying its memory; B listens for migrations. The guest moves from
# A to B live (progress bar, then the statistics), and B shows it going on
# from where it was with no memory errors; A no longer has it.
# Without /dev/kvm the demo runs itself inside a QEMU-TCG VM that offers a
# nested /dev/kvm (tests/vmhost/run-in-vm.sh; KVMIG_VMHOST=0 turns that
# off and shows only the agent). Everything it started is stopped on exit.
set -u
B=${1:-build}
if [ "${KVMIG_VMHOST:-1}" != 0 ] && [ -z "${KVMIG_IN_VMHOST:-}" ] &&
	! why=$(tests/vmhost/kvm-native.sh "$B"); then
	echo "demo: KVM: $why; running the demo inside a QEMU-TCG VM"
	echo "demo: with a nested /dev/kvm (tests/vmhost). Guest code is emulated there:"
	echo "demo: expect every step, and the timings, to be much slower than on real KVM."
	exec tests/vmhost/run-in-vm.sh --timeout 900 --env KVMIG_IN_VMHOST=1 --env KVMIG_PROGRESS=1 \
		-- tools/demo.sh "$B"
fi
KVMIGD=$B/kvmigd
KVMIG=$B/kvmig
for p in "$KVMIGD" "$KVMIG"; do
	[ -x "$p" ] || { echo "demo: $p is missing; run make first" >&2; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/kvmig-demo.XXXXXX")
PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -t 1 ]; then
	step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	step() { printf '\n== %s\n' "$*"; }
fi
show() {	# print a command, then run it
	echo "\$ $*"
	"$@"
}
die() { echo "demo: $*" >&2; exit 1; }

# A counter from `kvmig vm info` (human output: "guest_stats.progress: N").
stat_of() {	# agent-socket vm field
	"$KVMIG" --agent "$1" vm info "$2" | awk -v k="guest_stats.$3:" '$1 == k { print $2 }'
}

# Poll until a counter exceeds a floor; bounded, no fixed sleeps.
wait_above() {	# agent-socket vm field floor seconds
	local deadline=$((SECONDS + $5)) v
	while :; do
		v=$(stat_of "$1" "$2" "$3")
		[ -n "$v" ] && [ "$v" -gt "$4" ] && { echo "$v"; return 0; }
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

start_agent() {	# name [kvmigd options]
	local sock=$T/$1.sock i name=$1
	shift
	"$KVMIGD" --control "$sock" "$@" 2>"$T/$name.log" &
	PIDS+=($!)
	for i in $(seq 100); do
		"$KVMIG" --agent "$sock" agent ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$T/$name.log" >&2
	die "agent $name did not come up"
}

A=$T/a.sock
B2=$T/b.sock
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

step "Start agent A, and agent B listening for migrations on tcp:127.0.0.1:$PORT"
start_agent a
start_agent b --listen "tcp:127.0.0.1:$PORT"
show "$KVMIG" --agent "$A" agent ping

KVM=$("$KVMIG" --agent "$A" agent version | awk '$1 == "kvm.available:" { print $2 }')
if [ "$KVM" != yes ]; then
	why=$("$KVMIG" --agent "$A" agent version | sed -n 's/^kvm.error: *//p')
	cat <<EOF

************************************************************************
*  THE REST OF THE DEMO NEEDS /dev/kvm, WHICH THIS MACHINE LACKS.
*  ($why)
*  Shown: two agents start and answer. On a host with KVM (or with the
*  QEMU-TCG VM of tests/vmhost, the default), a memcheck guest moves live
*  from A to B and checks every page on arrival.
************************************************************************
EOF
	show "$KVMIG" --agent "$A" vm list
	exit 0
fi

step "A: start a memcheck guest: 256 MiB RAM, 2 vCPUs, 16 MiB working set it keeps rewriting"
show "$KVMIG" --agent "$A" vm start db1 --mem 256M --vcpus 2 --guest memcheck,workset=16M ||
	die "vm start failed"
echo "waiting for the guest to write its whole working set once..."
wait_above "$A" db1 progress 8192 300 >/dev/null || die "no progress within 300 s"
show "$KVMIG" --agent "$A" vm info db1

step "Move it live from A to B (it keeps running until the last moment)"
before=$(stat_of "$A" db1 progress)
show "$KVMIG" --agent "$A" migrate db1 --to "tcp://127.0.0.1:$PORT" --verify --auto-converge \
	|| die "the migration failed"

step "A no longer has it; B runs it"
show "$KVMIG" --agent "$A" vm list
show "$KVMIG" --agent "$B2" vm list
arrived=$(stat_of "$B2" db1 progress)
now=$(wait_above "$B2" db1 progress "$arrived" 120) || die "the guest makes no progress on B"
errors=$(stat_of "$B2" db1 errors)
show "$KVMIG" --agent "$B2" vm console db1

step "Result"
echo "guest progress on A before the move: $before"
echo "guest progress on B at arrival:      $arrived"
echo "guest progress on B now:             $now"
echo "pages that failed the guest's own check on B: $errors"
[ "$arrived" -ge "$before" ] || die "progress went backwards"
[ "$errors" = 0 ] || die "the guest found corrupted memory"
echo "OK: the guest moved while it ran, continued where it was, and every page it checked was intact."
show "$KVMIG" --agent "$B2" vm stop db1
