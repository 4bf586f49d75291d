#!/bin/bash
# SPDX-License-Identifier: MIT
# migrate_tls: live migration over tls:// between two agents on loopback
# (needs /dev/kvm, else exit 77; the openssl CLI, else exit 77), with the
# certificates of tests/helpers/mkcerts.sh.
#
#   moves: a memcheck guest with --verify; then with --parallel 2 and
#     --compress zstd. After each: the job completed, verified; its stats
#     say transport.kind "tls", a cipher, ktls a boolean (false on kernels
#     without TLS); the destination runs the guest, its progress grows and
#     its errors stay 0.
#   refusals, each with its words on the source's stderr (and the
#     destination's log where it knows them), the guest running on at the
#     source, nothing at the destination: an untrusted CA, an expired
#     client certificate, an expired server certificate, a server
#     certificate without the name dialled, a client without a certificate,
#     plain tcp:// to the TLS listener.
# Loopback only: tests/netbed.sh (the namespaced two-host bed) is not on
# main yet.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || skip "the openssl CLI is not installed (certificates)"
C=$T/certs
sh "$(dirname "$0")/../helpers/mkcerts.sh" "$C" || fail "mkcerts.sh failed"
TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}
DT=${KVMIG_E2E_DOWNTIME:-2000}

start_agent src --tls-dir "$C/good"
need_kvm src "live migration over TLS"
start_agent dst --listen tls:127.0.0.1:0 --tls-dir "$C/good"
start_agent dstx --listen tls:127.0.0.1:0 --tls-dir "$C/expired"
start_agent dstw --listen tls:127.0.0.1:0 --tls-dir "$C/wrongname"
URI=$(kv dst agent version --json | jq -r .migrate_uri)
URIX=$(kv dstx agent version --json | jq -r .migrate_uri)
URIW=$(kv dstw agent version --json | jq -r .migrate_uri)
[[ $URI == tls://127.0.0.1:* ]] || fail "dst's migrate_uri is '$URI'"
PORT=${URI##*:}


# moved NAME AGENT: gone from src, running at AGENT with progress growing, errors 0
moved() {
	local p
	gone src "$1" || fail "$1: the source still has it"
	wait_until "$TIMEOUT" "$1 to run at $2" state_is "$2" "$1" running
	p=$(counter "$2" "$1" progress)
	wait_until "$TIMEOUT" "$1 progress > $p at $2" grows "$2" "$1" progress "$p"
	[ "$(counter "$2" "$1" errors)" = 0 ] || fail "$1: guest errors at $2"
	echo "   $1 runs at $2: progress $(counter "$2" "$1" progress), errors 0"
}

# transport_ok: the job stats of the last migrate --json ($OUT)
transport_ok() {
	jq_out '.status == "completed" and .transport.kind == "tls" and
		(.transport.cipher | length > 0) and (.transport.ktls | type) == "boolean"'
	local ktls
	ktls=$(jq -r .transport.ktls "$OUT")
	# no kernel TLS: the stats must say user space
	if [ ! -e /proc/net/tls_stat ] && [ "$ktls" != false ]; then
		fail "transport.ktls is $ktls on a kernel without TLS"
	fi
	echo "   transport: $(jq -c .transport "$OUT")"
}

# refused NAME DESC REGEX DSTAGENT DSTREGEX MIGRATE-ARGS...: the migration fails
# with REGEX on stderr; the destination's log says DSTREGEX (when given); the
# guest runs on at the source; the destination has nothing.
refused() {
	local name=$1 desc=$2 re=$3 da=$4 dre=$5 p; shift 5
	bad "$desc" any "$re" kv src migrate "$name" "$@"
	if [ -n "$dre" ]; then
		wait_until "$TIMEOUT" "$da's log to say /$dre/" grep -Eq -- "$dre" "$T/$da.log"
		echo "   $da: $(grep -E -- "$dre" "$T/$da.log" | tail -n 1)"
	fi
	wait_until "$TIMEOUT" "$name to run at the source" state_is src "$name" running
	p=$(counter src "$name" progress)
	wait_until "$TIMEOUT" "$name progress > $p at the source" grows src "$name" progress "$p"
	[ "$(counter src "$name" errors)" = 0 ] || fail "$name: guest errors at the source"
	gone "$da" "$name" || fail "$name: $da has it after the refusal"
	kv "$da" agent ping >/dev/null || fail "$da no longer answers"
}

log "moves over TLS"
ok "mc: start" kv src vm start mc --mem 64M --vcpus 1 --guest memcheck
wait_until "$TIMEOUT" "mc progress > 0" grows src mc progress 0
ok "mc: migrate over $URI --verify" kv src migrate mc --to "$URI" --verify --max-downtime "$DT" --json
transport_ok
jq_out '.verified == true or .verify.equal == true or (.verify | type) == "object"'
moved mc dst

ok "mc2: start" kv src vm start mc2 --mem 64M --vcpus 2 --guest memcheck
wait_until "$TIMEOUT" "mc2 progress > 0" grows src mc2 progress 0
ok "mc2: migrate --parallel 2 --compress zstd --verify" \
	kv src migrate mc2 --to "$URI" --parallel 2 --compress zstd --verify --max-downtime "$DT" --json
transport_ok
moved mc2 dst

log "refusals"
ok "r: start" kv src vm start r --mem 16M --vcpus 1 --guest memcheck
wait_until "$TIMEOUT" "r progress > 0" grows src r progress 0
refused r "untrusted CA (the source trusts another CA)" "unknown CA" dst "" \
	--json --to "$URI" --tls-dir "$C/otherca"
refused r "expired client certificate" "the server refused our certificate.*certificate expired" \
	dst "certificate expired: the client's certificate" --json --to "$URI" --tls-dir "$C/expired"
refused r "expired server certificate" "certificate expired: the server's certificate" \
	dstx "the client refused our certificate.*certificate expired" --json --to "$URIX"
refused r "wrong host name" "name mismatch: the server's certificate \(CN=server\) is not for '127.0.0.1'; it has DNS:wrong.example" \
	dstw "the client refused our certificate" --json --to "$URIW"
refused r "client without a certificate" "no client certificate" \
	dst "no client certificate: the client sent none" --json --to "$URI" --tls-dir "$C/noclient"
# the TLS listener closes on the plain hello: the source only sees the
# connection closed (a job ran over tcp: its failed stats are on stdout);
# the destination says why
run kv src migrate r --json --to "tcp://127.0.0.1:$PORT"
[ "$RC" != 0 ] || fail "plain tcp:// to the TLS listener: succeeded"
jq_out '.status == "failed" and (.error | test("closed the connection"))'
grep -Eq "closed the connection" "$ERR" || fail "plain tcp: stderr $(head -c 300 "$ERR")"
echo "ok: plain tcp:// to the TLS listener -> $(head -n 1 "$ERR")"
RE='the peer does not speak TLS \(plain TCP to a TLS listener\?\)'
wait_until "$TIMEOUT" "dst's log to say it" grep -Eq -- "$RE" "$T/dst.log"
echo "   dst: $(grep -E -- "$RE" "$T/dst.log" | tail -n 1)"
wait_until "$TIMEOUT" "r to run at the source" state_is src r running
P=$(counter src r progress)
wait_until "$TIMEOUT" "r progress > $P at the source" grows src r progress "$P"
[ "$(counter src r errors)" = 0 ] || fail "r: guest errors at the source"
gone dst r || fail "r: dst has it after the refusal"

log "a move after the refusals"
ok "r: migrate over $URI" kv src migrate r --to "$URI" --verify --max-downtime "$DT" --json
transport_ok
moved r dst
echo "PASS: $E2E_NAME"
