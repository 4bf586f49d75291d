#!/bin/bash
# SPDX-License-Identifier: MIT
# hosts_transports: live migration between two hosts (tests/netbed.sh:
# namespaces src 10.77.0.1 and dst 10.77.0.2 on a bridge) over the
# authenticated transports. Needs root (namespaces), /dev/kvm and the
# openssl CLI; the ssh moves also need sshd (tests/helpers/sshd.sh), else
# they say SKIPPED for that part with the reason and the rest still runs.
#
#   tls://10.77.0.2: a memcheck guest moved with --verify, then back and
#     forth with --parallel 2 --compress zstd (every --parallel channel its
#     own TLS connection). After each move: the job completed and verified,
#     transport.kind "tls" with a cipher, the guest runs at the other host
#     with its progress growing and 0 errors.
#   ssh://root@10.77.0.2 (an sshd in the dst host, started here with its
#     own keys and config; the source agent's HOME is a test directory, so
#     its known_hosts is this test's): direct-tcpip to the dst agent's port
#     with --ssh-accept-new (the key is recorded), then without it (the
#     recorded key is accepted); --ssh-exec (kvmigd --incoming stdio on the
#     dst host); --ssh-data tls (SSH authenticates, the pages run over TLS
#     opened with a one-time key). Each with --verify, zstd and --parallel 2
#     where the transport takes them; transport.kind says which path carried
#     the pages.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../netbed.sh"

command -v openssl >/dev/null || skip "the openssl CLI is not installed (certificates)"
netbed_up "ht$$"
C=$NB_DIR/certs
sh "$(dirname "$0")/../helpers/mkcerts.sh" "$C" >"$NB_DIR/mkcerts.log" 2>&1 ||
	fail "mkcerts.sh failed: $(tail -n 3 "$NB_DIR/mkcerts.log")"
TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}
DT=${KVMIG_E2E_DOWNTIME:-2000}

# an sshd in the dst host, with its own keys; the source agent's HOME holds
# the client key it accepts and this test's known_hosts
SSHD=$(dirname "$0")/../helpers/sshd.sh
SSH_WHY=
if [ ! -r "$SSHD" ]; then
	SSH_WHY="tests/helpers/sshd.sh is not in this tree"
elif ! SSHPORT=$(netbed_exec dst "$SSHD" start "$NB_DIR/sshd" "$(netbed_addr dst)" 2>"$NB_DIR/sshd.err"); then
	SSH_WHY=$(tail -n 1 "$NB_DIR/sshd.err")
else
	NETBED_PREV_TRAP2=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
	trap '"$SSHD" stop "$NB_DIR/sshd"; eval "$NETBED_PREV_TRAP2"' EXIT
	echo "ok: sshd in the dst host on $(netbed_addr dst):$SSHPORT"
fi

HOME=$NB_DIR/sshd/home NB_SCHEME=tls netbed_agent src --tls-dir "$C/good"
v=$(netbed_kv src agent version --json) || fail "agent version on src"
[ "$(jq -r .kvm.available <<<"$v")" = true ] ||
	skip "migrations between hosts need /dev/kvm: $(jq -r '.kvm.error // "unknown"' <<<"$v")"
# dst: TLS for the other host, plain TCP on its loopback for ssh:// tunnels
NB_SCHEME=tls netbed_agent dst --tls-dir "$C/good" --listen tcp:127.0.0.1:0
[[ $NB_URI_dst == tls://10.77.0.2:* ]] || fail "dst's migrate_uri is '$NB_URI_dst'"
[[ $NB_URI_src == tls://10.77.0.1:* ]] || fail "src's migrate_uri is '$NB_URI_src'"
v=$(netbed_kv dst agent version --json)
TUNNEL=$(jq -r '.migrate_uris[1]' <<<"$v")
[[ $TUNNEL == tcp://127.0.0.1:* ]] || fail "dst's second listener: $(jq -c .migrate_uris <<<"$v")"
TPORT=${TUNNEL##*:}
echo "ok: dst listens on $(jq -c .listens <<<"$v")"

counter() {	# HOST VM FIELD
	netbed_kv "$1" vm info "$2" --json 2>/dev/null | jq -er ".guest_stats.$3"
}
grows() {	# HOST VM FIELD FLOOR
	local c
	c=$(counter "$1" "$2" "$3") && [ "$c" -gt "$4" ]
}
runs_at() { [ "$(netbed_kv "$1" vm info "$2" --json 2>/dev/null | jq -r .state)" = running ]; }
gone() { ! netbed_kv "$1" vm list --json | jq -e --arg n "$2" '.vms[] | select(.name == $n)' >/dev/null; }

# move VM FROM TO KIND URI [migrate options...]: completed, verified, carried by KIND, runs at TO
move() {
	local vm=$1 from=$2 to=$3 kind=$4 uri=$5 p
	shift 5
	ok "$vm: $from -> $to over $uri $*" netbed_kv "$from" migrate "$vm" --to "$uri" --verify \
		--max-downtime "$DT" --json "$@"
	jq -e '.status == "completed" and .verified == true' "$OUT" >/dev/null ||
		fail "$vm: job did not complete verified: $(head -c 800 "$OUT")"
	jq -e --arg k "$kind" '.transport.kind == $k and (.transport.cipher | length > 0)' "$OUT" \
		>/dev/null || fail "$vm: transport is $(jq -c .transport "$OUT"), expected kind $kind"
	echo "   transport $(jq -c .transport "$OUT")"
	gone "$from" "$vm" || fail "$vm: $from still has it"
	wait_until "$TIMEOUT" "$vm to run at $to" runs_at "$to" "$vm"
	p=$(counter "$to" "$vm" progress)
	wait_until "$TIMEOUT" "$vm progress > $p at $to" grows "$to" "$vm" progress "$p"
	[ "$(counter "$to" "$vm" errors)" = 0 ] || fail "$vm: guest errors at $to"
	echo "   $vm runs at $to: progress $(counter "$to" "$vm" progress), errors 0"
}

ok "g1: start" netbed_kv src vm start g1 --mem 64M --vcpus 2 --guest memcheck,workset=8M
wait_until "$TIMEOUT" "g1 progress > 0" grows src g1 progress 0

log "TLS between the hosts"
move g1 src dst tls "$NB_URI_dst"
move g1 dst src tls "$NB_URI_src" --parallel 2 --compress zstd
move g1 src dst tls "$NB_URI_dst" --parallel 2 --compress zstd
move g1 dst src tls "$NB_URI_src"

log "SSH between the hosts"
if [ -n "$SSH_WHY" ]; then
	echo "SKIPPED (part): the ssh moves: $SSH_WHY"
else
	SSHURI=ssh://root@$(netbed_addr dst):$SSHPORT
	KNOWN=$NB_DIR/sshd/home/.ssh/known_hosts
	[ ! -s "$KNOWN" ] || fail "known_hosts is not empty before the first ssh move"
	move g1 src dst ssh "$SSHURI" --ssh-agent-port "$TPORT" --ssh-accept-new --compress zstd
	grep -q "ssh-ed25519" "$KNOWN" || fail "--ssh-accept-new recorded no host key in $KNOWN"
	move g1 dst src tls "$NB_URI_src"
	# the recorded key is trusted now, without --ssh-accept-new
	move g1 src dst ssh "$SSHURI" --ssh-agent-port "$TPORT" --parallel 2
	move g1 dst src tls "$NB_URI_src"
	# --ssh-exec: sshd runs kvmigd --incoming stdio there, which hands the stream to dst's agent
	KD=$(cd "$(dirname "$KVMIGD")" && pwd)/kvmigd
	move g1 src dst ssh "$SSHURI" --ssh-exec="$KD --incoming stdio --control $(netbed_sock dst)"
	move g1 dst src tls "$NB_URI_src"
	# no agent behind that control socket: the reason comes back through ssh
	p=$(counter src g1 progress)
	run netbed_kv src migrate g1 --to "$SSHURI" --ssh-exec="$KD --incoming stdio --control $NB_DIR/none.sock"
	[ "$RC" = 1 ] || fail "--ssh-exec to no agent: exit status $RC, expected 1"
	grep -q "exited with status 1: kvmigd --incoming stdio: cannot reach agent at" "$ERR" ||
		fail "--ssh-exec to no agent: stderr does not say why: $(head -c 600 "$ERR")"
	echo "ok: --ssh-exec to no agent -> $(head -n 1 "$ERR")"
	runs_at src g1 || fail "g1 does not run at src after the refused --ssh-exec"
	wait_until "$TIMEOUT" "g1 progress at src > $p" grows src g1 progress "$p"
	gone dst g1 || fail "dst has g1 after the refused --ssh-exec"
	# --ssh-data tls: SSH authenticates and hands over a one-time key; the pages run on TLS
	move g1 src dst ssh+tls "$SSHURI" --ssh-agent-port "$TPORT" --ssh-data tls --parallel 2 \
		--compress zstd
	grep -q "one-time TLS key" "$NB_DIR/dst.log" || fail "dst's log does not show the key exchange"
	move g1 dst src tls "$NB_URI_src"
fi
echo "PASS: hosts_transports"
