#!/bin/bash
# SPDX-License-Identifier: MIT
# migrate_ssh_exec: live migration over ssh:// --ssh-exec between two agents
# on loopback that have NO migration listener at all: a real sshd on
# 127.0.0.1 (tests/helpers/sshd.sh: own host key, own authorized key, no
# PAM) runs `kvmigd --incoming stdio --control SOCK`, which hands its
# stdin/stdout to the agent behind SOCK (incoming.adopt) and stays until
# the stream ends (sshd stops feeding a command's stdin once it exits).
# Needs /dev/kvm and sshd, else exit 77 with the reason.
#
#   without ssh: `kvmigd --incoming stdio` with no agent there, or a bad
#     --incoming value, fails in words; an adopted stream that ends at once
#     (stdin /dev/null) makes the helper exit 1 saying the migration failed,
#     and leaves nothing at the agent;
#   refusal through ssh: no agent behind --control: the helper's reason
#     comes back in the source's error, the guest runs on at the source with
#     0 errors, nothing at the destination;
#   migrations (memcheck, --verify): src -> dst with --ssh-accept-new (the
#     brief's command line), dst -> src (the same sshd runs the helper for
#     the other agent), src -> dst with --parallel 2 --compress zstd (two
#     helpers, two adopted streams). Each: completed, verified,
#     transport.kind "ssh" with a cipher, the guest runs at the target with
#     its progress growing and 0 errors; afterwards no helper process is
#     left;
#   the destination agent stopped while a slow (--bandwidth 1) migration
#     arrives on an adopted stream: it exits promptly with status 0, the
#     source's job fails, the guest runs on at the source;
#   --ssh-data tls through --ssh-exec: dst restarted with --listen
#     tls:127.0.0.1:0 and no --tls-dir (one-time keys only): the KEY frame
#     goes through the helper, --parallel 2 lanes run over TLS with it
#     (transport.kind "ssh+tls", a TLS cipher, verified); back to src, which
#     has no tls: listener: refused in words, the guest runs on at dst.
#
# KVMIG_E2E_TIMEOUT (default 120) bounds each wait, in seconds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../helpers/sshd.sh"

TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}
DT=${KVMIG_E2E_DOWNTIME:-2000}

sshd_e2e

start_agent src
need_kvm src "live migration over ssh --ssh-exec"
start_agent dst
for n in src dst; do
	kv $n agent version --json >"$OUT" || fail "agent version on $n"
	jq_out '(.listens // []) == [] and (.migrate_uris // []) == []'
done
echo "ok: neither agent listens for migrations"
SSH_URI=ssh://root@127.0.0.1:$SSHD_PORT
KD=$KVMIGD
exec_for() { echo "$KD --incoming stdio --control $T/$1.sock"; }

# helpers of this test still running (read-only look at the process list)
no_helpers() { ! pgrep -f -- "--incoming stdio --control $T/" >/dev/null; }

start_vm() {	# NAME
	ok "$1: start" kv src vm start "$1" --mem 64M --vcpus 1 --guest memcheck,workset=4M
	wait_until "$TIMEOUT" "$1 progress > 0" grows src "$1" progress 0
}

runs_at() {	# AGENT NAME: runs there, progress grows, 0 errors
	local p
	wait_until "$TIMEOUT" "$2 to run at $1" state_is "$1" "$2" running
	p=$(counter "$1" "$2" progress)
	wait_until "$TIMEOUT" "$2 progress > $p at $1" grows "$1" "$2" progress "$p"
	[ "$(counter "$1" "$2" errors)" = 0 ] || fail "$2: guest errors at $1"
}

migrated() {	# NAME FROM TO migrate-options...
	local name=$1 from=$2 to=$3; shift 3
	ok "$name: $from -> $to over $SSH_URI --ssh-exec $*" kv "$from" migrate "$name" \
		--to "$SSH_URI" --ssh-exec="$(exec_for "$to")" --verify --max-downtime "$DT" --json "$@"
	jq_out '.status == "completed" and .verified == true and .transport.kind == "ssh" and
		(.transport.cipher | length) > 0'
	echo "   $(jq -r '"\(.status) in \(.total_ms) ms, \(.mbps) Mbit/s, transport \(.transport.kind) \(.transport.cipher), verified \(.verified)"' "$OUT")"
	gone "$from" "$name" || fail "$name: still at $from"
	runs_at "$to" "$name"
	grep -q "incoming migration on the stdio of ssh from 127.0.0.1" "$T/$to.log" ||
		fail "$to's log does not name the adopted stream"
	wait_until "$TIMEOUT" "the helpers to exit" no_helpers
	echo "   $name runs at $to: progress $(counter "$to" "$name" progress), errors 0; no helper left"
}

log "kvmigd --incoming stdio without ssh"
bad "--incoming other" 2 "--incoming takes only 'stdio'" "$KVMIGD" --incoming tcp
bad "no agent there" 1 "kvmigd --incoming stdio: .*$T/none\.sock.*is kvmigd running" \
	"$KVMIGD" --incoming stdio --control "$T/none.sock"
# (its stdout is the stream's write end: /dev/null, not the captured stdout)
bad "stream ends at once" 1 "kvmigd --incoming stdio: the migration failed: " \
	sh -c 'exec "$0" --incoming stdio --control "$1" </dev/null >/dev/null' "$KVMIGD" "$T/dst.sock"
no_vms_left dst
# the default control socket is $KVMIG_AGENT
bad "stream ends at once (\$KVMIG_AGENT)" 1 "the migration failed" \
	env KVMIG_AGENT="$T/dst.sock" sh -c 'exec "$0" --incoming stdio </dev/null >/dev/null' "$KVMIGD"
no_vms_left dst

log "refusal through ssh"
start_vm g
p=$(counter src g progress)
# (the job started, so the CLI prints its failed stats on stdout: check status and stderr)
run kv src migrate g --to "$SSH_URI" --ssh-accept-new \
	--ssh-exec="$KD --incoming stdio --control $T/none.sock"
[ "$RC" = 1 ] || fail "--ssh-exec to no agent: exit status $RC, expected 1"
grep -q "exited with status 1: kvmigd --incoming stdio: cannot reach agent at" "$ERR" ||
	fail "--ssh-exec to no agent: stderr does not say why: $(head -c 600 "$ERR")"
echo "ok: --ssh-exec to no agent -> $(head -n 1 "$ERR")"
runs_at src g
gone dst g || fail "dst has g after the refused --ssh-exec"
no_vms_left dst
echo "   g still runs at the source, nothing at dst"

log "migrations over ssh --ssh-exec, no listener anywhere"
migrated g src dst --ssh-accept-new
migrated g dst src
migrated g src dst --parallel 2 --compress zstd
[ "$(grep -c "incoming migration on the stdio of ssh from" "$T/dst.log")" -ge 3 ] ||
	fail "dst adopted fewer than 3 streams (1 + 2 for --parallel 2)"
ok "g: stop at dst" kv dst vm stop g

log "the destination agent stops while a migration arrives on an adopted stream"
start_vm s
p=$(counter src s progress)
(kv src migrate s --to "$SSH_URI" --ssh-exec="$(exec_for dst)" --bandwidth 1 --max-downtime 10 \
	>"$T/slow.out" 2>"$T/slow.err"; echo $? >"$T/slow.rc") &
SLOW=$!
wait_until "$TIMEOUT" "s to be arriving at dst" state_is dst s incoming
stop_agent dst
wait "$SLOW"
[ "$(cat "$T/slow.rc")" != 0 ] || fail "the migration to the stopped agent succeeded"
echo "ok: the source's job failed: $(head -n 1 "$T/slow.err")"
runs_at src s
wait_until "$TIMEOUT" "the helper to exit" no_helpers

log "--ssh-data tls over --ssh-exec: the key goes through the helper, the pages over TLS"
# dst again, now with a tls: listener and no --tls-dir: it serves one-time keys only
start_agent dst --listen tls:127.0.0.1:0
ok "s: src -> dst --ssh-exec --ssh-data tls" kv src migrate s --to "$SSH_URI" \
	--ssh-exec="$(exec_for dst)" --ssh-data tls --parallel 2 --verify --max-downtime "$DT" --json
jq_out '.status == "completed" and .verified == true and .transport.kind == "ssh+tls" and
	(.transport.cipher | startswith("TLS_"))'
echo "   transport $(jq -c .transport "$OUT")"
gone src s || fail "s: still at src"
runs_at dst s
grep -q "one-time TLS key" "$T/dst.log" || fail "dst's log does not show the key exchange"
wait_until "$TIMEOUT" "the helpers to exit" no_helpers
# back to src, which has no tls: listener: refused in words, s runs on at dst
run kv dst migrate s --to "$SSH_URI" --ssh-exec="$(exec_for src)" --ssh-data tls
[ "$RC" != 0 ] || fail "--ssh-data tls to an agent without a tls: listener succeeded"
grep -q "no tls: listener" "$ERR" || fail "--ssh-data tls refusal does not say why: $(head -c 600 "$ERR")"
echo "ok: --ssh-data tls to src (no tls: listener) -> $(head -n 1 "$ERR")"
runs_at dst s
gone src s || fail "src has s after the refused --ssh-data tls"
wait_until "$TIMEOUT" "the helpers to exit" no_helpers
echo "PASS: migrate_ssh_exec"
