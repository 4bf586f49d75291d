#!/bin/bash
# SPDX-License-Identifier: MIT
# tools/demo.sh BUILD_DIR - the demo behind `make demo`.
#
# Starts an agent on a temporary socket. With KVM: runs a memcheck guest,
# waits for it to make progress, shows vm info, saves it to a file,
# restores it into a second agent, and shows that it goes on from where it
# stopped with no memory errors. Without /dev/kvm it says so loudly, shows
# what works without VMs (the agent, ping, vm list) and exits 0.
# Everything it started is stopped and removed on exit.
set -u
B=${1:-build}
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

start_agent() {	# name
	local sock=$T/$1.sock i
	"$KVMIGD" --control "$sock" 2>"$T/$1.log" &
	PIDS+=($!)
	for i in $(seq 100); do
		"$KVMIG" --agent "$sock" agent ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$T/$1.log" >&2
	die "agent $1 did not come up"
}

A=$T/a.sock
B2=$T/b.sock

step "Start agent A (kvmigd --control $A)"
start_agent a
show "$KVMIG" --agent "$A" agent ping
show "$KVMIG" --agent "$A" vm list

KVM=$("$KVMIG" --agent "$A" agent version | awk '$1 == "kvm.available:" { print $2 }')
if [ "$KVM" != yes ]; then
	why=$("$KVMIG" --agent "$A" agent version | sed -n 's/^kvm.error: *//p')
	cat <<EOF

************************************************************************
*  THE REST OF THE DEMO NEEDS /dev/kvm, WHICH THIS MACHINE LACKS.
*  ($why)
*  Shown: the agent starts, answers ping and lists its (no) VMs.
*  On a host with KVM, this demo runs a memcheck guest, saves it,
*  restores it in a second agent and shows it continue without errors.
************************************************************************
EOF
	show "$KVMIG" --agent "$A" vm start demo --mem 64M --guest memcheck,workset=4M
	echo "(expected: vm start fails without KVM)"
	exit 0
fi

step "Start a memcheck guest: 64 MiB RAM, 4 MiB working set, 2 vCPUs"
show "$KVMIG" --agent "$A" vm start demo --mem 64M --vcpus 2 --guest memcheck,workset=4M ||
	die "vm start failed"
echo "waiting for the guest to make progress..."
wait_above "$A" demo progress 0 60 >/dev/null || die "no progress within 60 s"
show "$KVMIG" --agent "$A" vm info demo
show "$KVMIG" --agent "$A" vm console demo

step "Save it to a file (the guest pauses briefly, then runs on)"
before=$(stat_of "$A" demo progress)
show "$KVMIG" --agent "$A" vm save demo "$T/demo.snap" || die "vm save failed"
ls -l "$T/demo.snap"
show "$KVMIG" --agent "$A" vm stop demo

step "Start agent B and restore the snapshot there"
start_agent b
show "$KVMIG" --agent "$B2" vm restore "$T/demo.snap" || die "vm restore failed"
restored=$(stat_of "$B2" demo progress)
now=$(wait_above "$B2" demo progress "$restored" 60) || die "the restored guest makes no progress"
errors=$(stat_of "$B2" demo errors)
show "$KVMIG" --agent "$B2" vm list

step "Result"
echo "progress before the save:  $before"
echo "progress at restore:       $restored   (continues from the saved point)"
echo "progress now, in agent B:  $now"
echo "memory errors seen by the guest: $errors"
[ "$restored" -ge "$before" ] || die "progress went backwards"
[ "$errors" = 0 ] || die "the guest found corrupted memory"
echo "OK: the guest continued where it stopped, and every page it checked was intact."
show "$KVMIG" --agent "$B2" vm stop demo
