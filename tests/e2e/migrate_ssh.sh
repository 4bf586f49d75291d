#!/bin/bash
# SPDX-License-Identifier: MIT
# migrate_ssh: live migration over ssh:// between two agents on loopback,
# through a real sshd on 127.0.0.1 started by the test
# (tests/helpers/sshd.sh: own host key, own authorized key, no PAM). Needs
# /dev/kvm and sshd, else exit 77 with the reason.
#
# HOME is the test's temp home (sshd_home) for every process here, the
# source agent included (it is the one that connects): ~/.ssh/known_hosts
# and ~/.ssh/id_ed25519 are the test's own, never the real user's.
#
#   refusals, each leaving the guest running at the source with 0 errors
#     and nothing at the destination: unknown host key without
#     --ssh-accept-new (nothing recorded), a changed host key (even with
#     --ssh-accept-new), a user key the server does not accept, no sshd
#     there, nothing listening at --ssh-agent-port;
#   migrations (memcheck, --verify): the first with --ssh-accept-new
#     (which records the key), then without it: plain, --parallel 2,
#     --compress zstd, --postcopy=now (its fault channel a second SSH
#     connection). Each: completed, verified, transport.kind "ssh" and
#     a cipher, the guest runs at the destination with 0 errors and its
#     progress grows there.
#   --ssh-exec end to end (kvmigd --incoming stdio, no listener at all):
#     tests/e2e/migrate_ssh_exec.sh; tests/unit/test_channel_ssh covers the
#     exec channel itself.
#
# KVMIG_E2E_TIMEOUT (default 120) bounds each wait, in seconds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../helpers/sshd.sh"

TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}
DT=${KVMIG_E2E_DOWNTIME:-2000}

sshd_e2e

start_agent src
need_kvm src "live migration over SSH"
start_agent dst --listen tcp:127.0.0.1:0
DST_URI=$(kv dst agent version --json | jq -r .migrate_uri)
AGENT_PORT=${DST_URI##*:}
[[ $DST_URI == tcp://127.0.0.1:* ]] || fail "dst's migrate_uri is '$DST_URI'"
SSH_URI=ssh://root@127.0.0.1:$SSHD_PORT
KNOWN=$HOME/.ssh/known_hosts


start_vm() {	# NAME
	ok "$1: start" kv src vm start "$1" --mem 64M --vcpus 1 --guest memcheck,workset=4M
	wait_until "$TIMEOUT" "$1 progress > 0" grows src "$1" progress 0
}

runs_at_source() {	# NAME
	local p
	wait_until "$TIMEOUT" "$1 to run at the source" state_is src "$1" running
	p=$(counter src "$1" progress)
	wait_until "$TIMEOUT" "$1 progress > $p at the source" grows src "$1" progress "$p"
	[ "$(counter src "$1" errors)" = 0 ] || fail "$1: guest errors at the source"
	wait_until "$TIMEOUT" "dst to drop $1" gone dst "$1"
}

refused() {	# DESC REGEX NAME migrate-options...
	local desc=$1 re=$2 name=$3; shift 3
	bad "$desc" any "$re" kv src migrate "$name" --to "$@"
	runs_at_source "$name"
	echo "   $name still runs at the source, nothing at dst"
}

migrated() {	# NAME migrate-options...
	local name=$1 p0; shift
	ok "$name: migrate $*" kv src migrate "$name" --to "$SSH_URI" --ssh-agent-port "$AGENT_PORT" \
		--verify --max-downtime "$DT" --json "$@"
	jq_out '.status == "completed" and .verified == true and .transport.kind == "ssh" and
		(.transport.cipher | length) > 0'
	echo "   $(jq -r '"\(.status) in \(.total_ms) ms, \(.mbps) Mbit/s, transport \(.transport.kind) \(.transport.cipher), verified \(.verified)"' "$OUT")"
	cp "$OUT" "$T/job.json"	# the job's stats, for the caller
	gone src "$name" || fail "$name: still at the source"
	wait_until "$TIMEOUT" "$name to run at dst" state_is dst "$name" running
	p0=$(counter dst "$name" progress)
	wait_until "$TIMEOUT" "$name progress > $p0 at dst" grows dst "$name" progress "$p0"
	[ "$(counter dst "$name" errors)" = 0 ] || fail "$name: guest errors at dst"
	ok "$name: stop at dst" kv dst vm stop "$name"
}

log "refusals"
start_vm g
refused "unknown host key" "unknown SSH host key for \[127\.0\.0\.1\]:$SSHD_PORT \(ssh-ed25519 SHA256:.*pass --ssh-accept-new" \
	g "$SSH_URI" --ssh-agent-port "$AGENT_PORT"
[ ! -e "$KNOWN" ] || fail "the refused key was recorded in $KNOWN"

echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$SSHD_DIR/host2_ed25519.pub")" >"$KNOWN"
refused "changed host key" "the SSH host key of \[127\.0\.0\.1\]:$SSHD_PORT has CHANGED.*line 1" \
	g "$SSH_URI" --ssh-agent-port "$AGENT_PORT" --ssh-accept-new
rm -f "$KNOWN"

mv "$HOME/.ssh/id_ed25519" "$T/id.saved"; mv "$HOME/.ssh/id_ed25519.pub" "$T/id.pub.saved"
cp "$SSHD_DIR/other_ed25519" "$HOME/.ssh/id_ed25519"; cp "$SSHD_DIR/other_ed25519.pub" "$HOME/.ssh/id_ed25519.pub"
refused "wrong user key" "SSH authentication as root@\[127\.0\.0\.1\]:$SSHD_PORT failed: the server accepted none of: ~/.ssh/id_ed25519" \
	g "$SSH_URI" --ssh-agent-port "$AGENT_PORT" --ssh-accept-new
mv "$T/id.saved" "$HOME/.ssh/id_ed25519"; mv "$T/id.pub.saved" "$HOME/.ssh/id_ed25519.pub"
rm -f "$KNOWN"

NOPORT=
for p in $(seq 29000 29200); do
	ss -Hltn "sport = :$p" | grep -q . || { NOPORT=$p; break; }
done
[ -n "$NOPORT" ] || fail "no free port in 29000-29200"
refused "no sshd there" "no SSH server at 127\.0\.0\.1 port $NOPORT: connection refused" \
	g "ssh://root@127.0.0.1:$NOPORT" --ssh-accept-new
refused "nothing at the agent port" "could not connect to 127\.0\.0\.1:$NOPORT there" \
	g "$SSH_URI" --ssh-agent-port "$NOPORT" --ssh-accept-new
rm -f "$KNOWN"

log "migrations over ssh://"
migrated g --ssh-accept-new
grep -q "^\[127\.0\.0\.1\]:$SSHD_PORT ssh-ed25519 " "$KNOWN" || fail "--ssh-accept-new did not record the key in $KNOWN"
[ "$(stat -c %a "$KNOWN")" = 600 ] || fail "$KNOWN is not mode 600"
start_vm g2
migrated g2
start_vm g3
migrated g3 --parallel 2
start_vm g4
migrated g4 --compress zstd
start_vm g5
migrated g5 --postcopy=now
jq -e '.postcopy.active == true and .postcopy.pages_pushed + .postcopy.requests > 0' "$T/job.json" \
	>/dev/null || fail "g5: not a post-copy: $(jq -c .postcopy "$T/job.json")"
echo "   post-copy over ssh: $(jq -c '.postcopy | {requests, pages_pushed, fault_latency_us_p50}' "$T/job.json")"
echo "PASS: migrate_ssh"
