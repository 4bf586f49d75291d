# SPDX-License-Identifier: MIT
# tests/e2e/lib.sh - shared helpers for the end-to-end scripts; source it
# first thing:  . "$(dirname "$0")/lib.sh"
#
# Gives: $KVMIGD and $KVMIG (from $KVMIG_BUILD, default build/), a private
# temp dir $T removed on exit, agents on temp sockets stopped on exit, and
#   start_agent NAME [kvmigd args]   start kvmigd on $T/NAME.sock, wait for ping
#   stop_agent NAME [SIGNAL]         stop it (TERM), check exit 0 + socket gone
#   kv NAME ARGS...                  kvmig --agent $T/NAME.sock ARGS...
#   run CMD...                       run; sets RC, stdout in $OUT, stderr in $ERR
#   ok DESC CMD...                   CMD must succeed
#   bad DESC STATUS REGEX CMD...     CMD must fail (exit STATUS, or "any"
#                                    non-zero) with stderr matching REGEX
#                                    (grep -Ei) and nothing on stdout
#   jq_out FILTER                    jq -e FILTER on the last stdout, or fail
#   wait_until SECS DESC CMD...      poll CMD until it succeeds (bounded);
#                                    CMD runs afresh at each try, so it must
#                                    compute what it checks itself: pass
#                                    field_gt/field_is or a function, never
#                                    test "$(...)", which bash expands once,
#                                    before the first try
#   vm_field AGENT VM FILTER         one field of vm info --json
#   field_gt AGENT VM FILTER N       that field is a number above N (for wait_until)
#   field_is AGENT VM FILTER VALUE   that field equals VALUE (for wait_until)
#   counter AGENT VM FIELD           a guest_stats counter (fails when no such VM)
#   grows AGENT VM FIELD FLOOR       that counter is above FLOOR now (for wait_until)
#   state_is AGENT VM STATE          the VM's state is STATE (for wait_until)
#   gone AGENT VM                    the agent does not host VM
#   need_kvm AGENT WHAT              exit 77 loudly unless the agent has KVM
#   fail MSG / skip REASON           skip names its reason, as given
# Nothing here sleeps for synchronization: waits poll a condition with a
# deadline.
set -u

# tests/run.sh runs every tests/e2e/*.sh; this file is not a test by itself.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "lib.sh: helpers sourced by the e2e tests; nothing to run"
	exit 0
fi

E2E_NAME=$(basename "$0" .sh)
B=${KVMIG_BUILD:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
KVMIGD=$B/kvmigd
KVMIG=$B/kvmig
T=$(mktemp -d "${TMPDIR:-/tmp}/kvmig-$E2E_NAME.XXXXXX")
OUT=$T/stdout
ERR=$T/stderr
RC=0
KVM_REASON=
declare -A AGENT_PID=()

fail() {
	echo "FAIL: $E2E_NAME: $*"
	echo "FAIL: $E2E_NAME: $*" >&2
	for n in "${!AGENT_PID[@]}"; do
		echo "--- last lines of agent $n's log ($T/$n.log):"
		tail -n 15 "$T/$n.log" 2>/dev/null | sed 's/^/    /'
	done
	exit 1
}

# Exit 77 with a banner run.sh shows (it greps the first line saying "skip").
# The reason is the caller's: need_kvm says "needs /dev/kvm", a missing
# tool says which.
skip() {
	echo "************************************************************************"
	echo "SKIPPED: $E2E_NAME: $*"
	echo "************************************************************************"
	echo "SKIPPED: $E2E_NAME: $*" >&2
	exit 77
}

cleanup() {
	local n pid i
	for n in "${!AGENT_PID[@]}"; do
		pid=${AGENT_PID[$n]}
		kill -TERM "$pid" 2>/dev/null || continue
		for i in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$KVMIGD" ] && [ -x "$KVMIG" ] || fail "$KVMIGD or $KVMIG is missing: build first (make)"
command -v jq >/dev/null || fail "jq is required (apt-get install jq; 'make deps' installs it)"

log() { echo "== $*"; }

run() {
	"$@" >"$OUT" 2>"$ERR"
	RC=$?
}

ok() {
	local desc=$1; shift
	run "$@"
	[ "$RC" = 0 ] || fail "$desc: exit status $RC: $(head -c 600 "$ERR")"
	echo "ok: $desc"
}

bad() {
	local desc=$1 want=$2 re=$3; shift 3
	run "$@"
	[ "$RC" != 0 ] || fail "$desc: succeeded, expected an error"
	[ "$want" = any ] || [ "$RC" = "$want" ] ||
		fail "$desc: exit status $RC, expected $want (stderr: $(head -c 300 "$ERR"))"
	[ ! -s "$OUT" ] || fail "$desc: printed on stdout: $(head -c 300 "$OUT")"
	grep -Eiq -- "$re" "$ERR" || fail "$desc: stderr does not match /$re/: $(head -c 600 "$ERR")"
	echo "ok: $desc -> $(head -n 1 "$ERR")"
}

jq_out() {
	jq -e "$1" "$OUT" >/dev/null 2>&1 || fail "stdout does not satisfy jq '$1': $(head -c 600 "$OUT")"
}

wait_until() {
	local secs=$1 desc=$2; shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for: $desc"
		sleep 0.1
	done
}

kv() {
	local a=$1; shift
	"$KVMIG" --agent "$T/$a.sock" "$@"
}

# Start kvmigd with its working directory at / so that relative paths the
# CLI failed to make absolute would show up as errors.
start_agent() {
	local n=$1; shift
	(cd / && exec "$KVMIGD" --control "$T/$n.sock" "$@") >"$T/$n.log" 2>&1 &
	AGENT_PID[$n]=$!
	wait_until 10 "agent $n to answer on $T/$n.sock" kv "$n" agent ping
	echo "ok: agent $n up (pid ${AGENT_PID[$n]})"
}

stop_agent() {
	local n=$1 sig=${2:-TERM} pid=${AGENT_PID[$1]} st i
	kill -"$sig" "$pid" || fail "agent $n (pid $pid) is gone already"
	for i in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "agent $n did not exit within 20s of SIG$sig"
	wait "$pid"
	st=$?
	unset "AGENT_PID[$n]"
	[ "$st" = 0 ] || fail "agent $n exited with status $st after SIG$sig"
	[ ! -e "$T/$n.sock" ] || fail "agent $n left its socket $T/$n.sock behind"
	echo "ok: agent $n stopped by SIG$sig, socket removed"
}

vm_field() {
	kv "$1" vm info "$2" --json | jq -er "$3"
}

# field_gt AGENT VM FILTER N: the field is a number greater than N. Reads
# the field each time it runs, so it is a condition for wait_until.
field_gt() {
	local v
	v=$(vm_field "$1" "$2" "$3" 2>/dev/null) && [[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt "$4" ]
}

# field_is AGENT VM FILTER VALUE: the field equals VALUE (read each time).
field_is() {
	[ "$(vm_field "$1" "$2" "$3" 2>/dev/null)" = "$4" ]
}

# Is KVM usable, as the agent sees it? Sets KVM_REASON when not.
have_kvm() {
	local v
	v=$(kv "$1" agent version --json) || fail "agent version failed"
	if [ "$(jq -r .kvm.available <<<"$v")" = true ]; then
		return 0
	fi
	KVM_REASON=$(jq -r '.kvm.error // "unknown reason"' <<<"$v")
	return 1
}

need_kvm() {
	have_kvm "$1" || skip "$2 needs /dev/kvm: $KVM_REASON"
}

# Assert that agent NAME hosts no VM and still answers.
no_vms_left() {
	local v
	v=$(kv "$1" vm list --json) || fail "vm list on agent $1 failed"
	[ "$(jq -c . <<<"$v")" = '{"vms":[]}' ] || fail "agent $1 has VMs left: $v"
	kv "$1" agent ping >/dev/null || fail "agent $1 no longer answers ping"
}

counter() {	# AGENT VM FIELD
	local j
	j=$(kv "$1" vm info "$2" --json 2>/dev/null) || return 1
	jq -er ".guest_stats.$3" <<<"$j"
}

grows() {	# AGENT VM FIELD FLOOR
	local v
	v=$(counter "$1" "$2" "$3") && [ "$v" -gt "$4" ]
}

state_is() { [ "$(vm_field "$1" "$2" .state 2>/dev/null)" = "$3" ]; }

gone() { ! kv "$1" vm list --json | jq -e --arg n "$2" '.vms[] | select(.name == $n)' >/dev/null; }
