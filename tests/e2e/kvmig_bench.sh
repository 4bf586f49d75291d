#!/bin/bash
# SPDX-License-Identifier: MIT
# kvmig_bench: `kvmig bench codec|channel|migrate` from the built binary,
# every run bounded by its options (a few MiB, hundredths of a second per
# measurement) so the whole test takes seconds:
#  - codec --json: a figure for every codec and set, non-zero throughput,
#    ratios that say what the data is (zero pages compress hundreds of
#    times, random pages not at all and go raw, text in between; XBZRLE
#    shrinks less as more bytes change), the command and the settings;
#    the table names its command on its first line;
#  - channel on loopback (--json: the tcp and unix rows);
#  - channel between a sink (--listen ...:0 --once, which prints its port
#    first) and a sender (--to) over tcp and tls (tests/helpers/mkcerts.sh
#    certificates): bytes received equal bytes sent on both sides, MB/s
#    above 0, the TLS version and suite named; the table's text form;
#  - the same through ssh:// (tests/helpers/sshd.sh on loopback) to a sink
#    on tcp:127.0.0.1 (that part skipped, saying why, without sshd);
#  - bad input: an unknown bench, option or cipher suite, a malformed URI,
#    tls without --tls-dir (exit 2); no peer at the address, a certificate
#    from another CA, tcp to a tls sink (exit 1);
#  - migrate --json with a 64 MiB guest, and its table over TLS, when
#    /dev/kvm runs guests; without it, that part is skipped with the
#    reason (the whole test exits 77 after the rest passed, so the
#    QEMU-TCG VM pass of tests/run.sh runs it there).
. "$(dirname "$0")/lib.sh"

C=$T/certs
SINKS=()

# Sinks still running at exit (a failed step) are stopped by their PID.
stop_sinks() {
	local p
	for p in "${SINKS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	return 0
}
trap 'stop_sinks; cleanup' EXIT

# start_sink NAME ARGS...: kvmig bench channel --json --once ARGS... in the
# background, its JSON lines in $T/NAME.out; waits for the line saying
# where it listens and sets SINK_URI and SINK_PID.
start_sink() {
	local n=$1; shift
	"$KVMIG" bench channel --json --once "$@" >"$T/$n.out" 2>"$T/$n.err" &
	SINK_PID=$!
	SINKS+=("$SINK_PID")
	wait_until 10 "sink $n to say where it listens" grep -q '"event": "listening"' "$T/$n.out"
	SINK_URI=$(head -n 1 "$T/$n.out" | jq -er .uri) || fail "sink $n: no uri in $(head -n 1 "$T/$n.out")"
	echo "ok: sink $n listens at $SINK_URI (pid $SINK_PID)"
}

# end_sink NAME STATUS: the --once sink exits by itself with STATUS.
end_sink() {
	local st
	wait_until 20 "sink $1 to exit after its session" sh -c "! kill -0 $SINK_PID 2>/dev/null"
	wait "$SINK_PID"
	st=$?
	[ "$st" = "$2" ] || fail "sink $1 exited with $st, expected $2: $(cat "$T/$1.err")"
}

log "help"
ok "kvmig --help" "$KVMIG" --help
grep -q "bench codec|channel|migrate" "$OUT" || fail "kvmig --help does not list bench"
ok "kvmig bench --help" "$KVMIG" bench --help
for w in "bench codec" "bench channel" "bench migrate"; do
	grep -q "$w" "$OUT" || fail "kvmig bench --help lacks $w"
done
ok "kvmig bench codec --help" "$KVMIG" bench codec --help
grep -q -- "--mib N" "$OUT" && grep -q -- "--no-cli" "$OUT" || fail "bench codec --help lacks its options"
ok "kvmig bench channel --help" "$KVMIG" bench channel --help
grep -q -- "--listen ADDR" "$OUT" && grep -q -- "--to URI" "$OUT" && grep -q -- "--once" "$OUT" ||
	fail "bench channel --help lacks --listen, --to or --once"
ok "kvmig bench migrate --help" "$KVMIG" bench migrate --help
grep -q -- "--workset SIZE" "$OUT" && grep -q "/dev/kvm" "$OUT" || fail "bench migrate --help lacks --workset or /dev/kvm"

log "bad input"
bad "kvmig bench without a bench" 2 "usage: kvmig bench" "$KVMIG" bench
bad "unknown bench" 2 "unknown bench 'frobnicate'" "$KVMIG" bench frobnicate
bad "unknown codec option" 2 "unknown option '--bogus'" "$KVMIG" bench codec --bogus
bad "codec --mib 0" 2 "bad --mib '0'" "$KVMIG" bench codec --mib 0
bad "unknown cipher suite" 2 "unknown --cipher 'rot13'" "$KVMIG" bench channel --cipher rot13
bad "malformed --to" 2 "bad --to: .*foo://x" "$KVMIG" bench channel --to foo://x
bad "--to without a port" 2 "bad --to" "$KVMIG" bench channel --to tcp://127.0.0.1
bad "malformed --listen" 2 "bad --listen" "$KVMIG" bench channel --listen tcp:127.0.0.1:99999
bad "tls without --tls-dir" 2 "needs --tls-dir" "$KVMIG" bench channel --to tls://127.0.0.1:4444
bad "--listen and --to" 2 "exclude each other" "$KVMIG" bench channel --listen tcp:127.0.0.1:0 --to tcp://127.0.0.1:1
bad "--repeat with --to" 2 "for loopback" "$KVMIG" bench channel --to tcp://127.0.0.1:1 --repeat 2
bad "--streams 9" 2 "bad --streams '9'" "$KVMIG" bench channel --streams 9
bad "migrate: unknown compression" 2 "unknown compression 'foo'" "$KVMIG" bench migrate --compress foo
bad "migrate: a guest that does not fit" 2 "the guest" "$KVMIG" bench migrate --mem 64M --workset 128M

log "codec"
ok "bench codec --json" "$KVMIG" bench codec --json --mib 1 --time 0.01 --no-cli
[ "$(wc -l <"$OUT")" = 1 ] || fail "bench codec --json printed more than one line"
jq_out '.bench == "codec" and (.command | test("kvmig bench codec --json --mib 1 --time 0.01 --no-cli$"))'
jq_out '.settings.mib == 1 and .settings.pages == 256 and .settings.time_s == 0.01 and
	.settings.reference_cli == false and .reference == null'
# every codec on every set, each with a throughput both ways
jq_out '[.codecs[] | .codec] | unique == ["lz4", "lz4hc:9", "zstd:1", "zstd:3"]'
jq_out '(.codecs | length) == 16 and all(.codecs[]; .enc_mb_per_s > 0 and .dec_mb_per_s > 0)'
# what the ratios must say about the data
jq_out 'all(.codecs[] | select(.set == "zero"); .ratio > 50 and .raw_pct == 0)'
jq_out 'all(.codecs[] | select(.set == "random"); .ratio <= 1.01 and .raw_pct >= 99)'
jq_out 'all(.codecs[] | select(.set == "text"); .ratio > 1.5 and .ratio < 50)'
jq_out '(.zero_scan | length) >= 1 and all(.zero_scan[]; .zero_gb_per_s > 0 and .binary_mpages_per_s > 0)'
jq_out '[.xbzrle[] | .changes] == [1, 64, 1024] and all(.xbzrle[]; (.encode | length) >= 1 and
	all(.encode[]; .gb_per_s > 0) and .dec_gb_per_s > 0)'
jq_out '.xbzrle[0].ratio > .xbzrle[1].ratio and .xbzrle[1].ratio > .xbzrle[2].ratio and .xbzrle[0].ratio > 100'
echo "ok: codec figures: $(jq -c '[.codecs[] | select(.codec == "zstd:1") | {(.set): .ratio}] | add' "$OUT")"
ok "bench codec (the table)" "$KVMIG" bench codec --mib 1 --time 0.01 --no-cli
head -n 1 "$OUT" | grep -q '^# .*kvmig bench codec --mib 1 --time 0.01 --no-cli$' ||
	fail "the codec table does not start with its command: $(head -n 1 "$OUT")"
grep -Eq '^lz4hc:9 +random ' "$OUT" && grep -q "zero-page scan" "$OUT" && grep -q "^xbzrle  " "$OUT" ||
	fail "the codec table lacks rows: $(head -c 600 "$OUT")"

log "channel on loopback"
ok "bench channel --json (loopback)" "$KVMIG" bench channel --json --gib 0.02 --repeat 1
jq_out '.mode == "loopback" and .settings.repeat == 1 and ([.results[] | .transport] == ["tcp", "unix"])'
jq_out 'all(.results[]; .channel_mb_per_s > 0 and .bare_mb_per_s > 0 and .channel_over_tcp > 0)'

sh "$(dirname "$0")/../helpers/mkcerts.sh" "$C" >"$T/mkcerts.log" 2>&1 || fail "mkcerts.sh failed: $(cat "$T/mkcerts.log")"

log "channel between a sink and a sender: tcp"
start_sink tcp --listen tcp:127.0.0.1:0
[[ $SINK_URI =~ ^tcp://127\.0\.0\.1:[0-9]+$ ]] || fail "sink uri $SINK_URI"
ok "bench channel --to $SINK_URI --streams 2" "$KVMIG" bench channel --json --to "$SINK_URI" --gib 0.03 --streams 2
jq_out '.mode == "to" and .streams == 2 and .transport.kind == "tcp" and .bytes_sent > 0 and
	.bytes_received == .bytes_sent and .pages_received == .frames * 512 and .mb_per_s > 0 and
	.sink_mb_per_s > 0 and (.command | test("--to tcp://"))'
sent=$(jq -r .bytes_sent "$OUT")
end_sink tcp 0
got=$(sed -n 2p "$T/tcp.out" | jq -er 'select(.event == "received") | .bytes_received') ||
	fail "sink tcp reported no session: $(cat "$T/tcp.out")"
[ "$got" = "$sent" ] || fail "the sink received $got bytes, the sender sent $sent"
sed -n 2p "$T/tcp.out" | jq -e '.streams == 2 and .mb_per_s > 0 and .frames > 0' >/dev/null ||
	fail "sink tcp's session: $(sed -n 2p "$T/tcp.out")"
echo "ok: tcp: $sent bytes sent and received"
# its port is free again: nobody there
bad "no peer" 1 "refused" "$KVMIG" bench channel --to "$SINK_URI" --gib 0.01

log "channel between a sink and a sender: tls"
start_sink tls --listen tls:127.0.0.1:0 --tls-dir "$C/good"
[[ $SINK_URI =~ ^tls:// ]] || fail "tls sink uri $SINK_URI"
ok "bench channel --to $SINK_URI" "$KVMIG" bench channel --to "$SINK_URI" --tls-dir "$C/good" --gib 0.03
head -n 1 "$OUT" | grep -q "^\$ .*kvmig bench channel --to $SINK_URI" || fail "the table does not start with its command"
grep -Eq '^tls +TLSv1\.3 +TLS_[A-Z0-9_]+ +(yes|no) +1 ' "$OUT" ||
	fail "the tls table does not name the version, suite and kTLS: $(cat "$OUT")"
sent=$(awk '$1 == "tls" { print $7 }' "$OUT")
recv=$(awk '$1 == "tls" { print $8 }' "$OUT")
[ -n "$sent" ] && [ "$sent" = "$recv" ] && [ "$sent" -gt 0 ] || fail "tls: sent '$sent', received '$recv'"
end_sink tls 0
sed -n 2p "$T/tls.out" | jq -e --argjson b "$sent" '.event == "received" and .bytes_received == $b and
	.transport.kind == "tls" and .transport.version == "TLSv1.3" and (.transport.cipher | length) > 0 and
	(.transport.ktls | type) == "boolean" and .mb_per_s > 0' >/dev/null ||
	fail "sink tls's session: $(sed -n 2p "$T/tls.out")"
echo "ok: tls: $sent bytes sent and received"

start_sink tls2 --listen tls:127.0.0.1:0 --tls-dir "$C/good"
ok "bench channel --to tls --cipher chacha20 --json" "$KVMIG" bench channel --json --to "$SINK_URI" \
	--tls-dir "$C/good" --cipher chacha20 --gib 0.02
jq_out '.transport.cipher == "TLS_CHACHA20_POLY1305_SHA256" and .bytes_received == .bytes_sent and .settings.cipher == "chacha20"'
end_sink tls2 0

start_sink tls3 --listen tls:127.0.0.1:0 --tls-dir "$C/good"
bad "a certificate from another CA" 1 "unknown CA" "$KVMIG" bench channel --to "$SINK_URI" --tls-dir "$C/otherca" --gib 0.01
end_sink tls3 1
sed -n 2p "$T/tls3.out" | jq -e '.event == "failed" and (.error | length) > 0' >/dev/null ||
	fail "sink tls3 did not report the failed handshake: $(cat "$T/tls3.out")"

start_sink tls4 --listen tls:127.0.0.1:0 --tls-dir "$C/good"
bad "tcp to a tls sink" 1 "bench channel: .*stream 0" "$KVMIG" bench channel --to "${SINK_URI/tls:/tcp:}" --gib 0.01
end_sink tls4 1

log "channel through ssh://"
. "$(dirname "$0")/../helpers/sshd.sh"
rc=0
sshd_start "$T/sshd" 127.0.0.1 2>"$T/sshd-start.err" || rc=$?
if [ "$rc" = 0 ]; then
	trap 'stop_sinks; sshd_stop; cleanup' EXIT
	sshd_home
	start_sink ssh --listen tcp:127.0.0.1:0
	ok "bench channel --to ssh://" "$KVMIG" bench channel --json --to "ssh://$(id -un)@127.0.0.1:$SSHD_PORT" \
		--ssh-agent-port "${SINK_URI##*:}" --ssh-accept-new --gib 0.02
	jq_out '.transport.kind == "ssh" and .bytes_sent > 0 and .bytes_received == .bytes_sent and .mb_per_s > 0'
	end_sink ssh 0
	echo "ok: ssh: $(jq -r .bytes_sent "$OUT") bytes sent and received ($(jq -r .transport.cipher "$OUT"))"
elif [ "$rc" = 77 ]; then
	echo "skip: the ssh:// part: $(cat "$T/sshd-start.err")"
else
	fail "sshd did not start: $(cat "$T/sshd-start.err")"
fi

log "migrate"
run "$KVMIG" bench migrate --json --mem 64M --workset 2M
if [ "$RC" = 1 ] && grep -q "needs a working /dev/kvm" "$ERR"; then
	skip "$(head -n 1 "$ERR" | sed 's/^kvmig: //') (the help, codec and channel parts passed)"
fi
[ "$RC" = 0 ] || fail "bench migrate --json: exit status $RC: $(head -c 600 "$ERR")"
[ "$(wc -l <"$OUT")" = 1 ] || fail "bench migrate --json printed more than one line"
jq_out '.bench == "migrate" and (.command | test("kvmig bench migrate --json --mem 64M --workset 2M$"))'
jq_out '.status == "completed" and .error == "" and .mem_bytes == 67108864 and .workset_bytes == 2097152'
jq_out '.total_ms > 0 and .downtime_ms <= .total_ms and .transferred_bytes > .workset_bytes and
	.dirty_sync_count >= 1 and .pages_per_s > 0 and .guest_downtime_ms > 0 and .transport.kind == "tcp"'
jq_out '.settings.vcpus == 1 and .settings.max_downtime_ms == 300 and .settings.compress == "none" and
	.settings.timeout_ms == 600000 and .settings.postcopy == "off"'
echo "ok: migrate: $(jq -c '{total_ms, downtime_ms, guest_downtime_ms, transferred_bytes}' "$OUT")"
ok "bench migrate over tls, the table" "$KVMIG" bench migrate --mem 64M --workset 2M --tls-dir "$C/good" --verify --timeout 60
head -n 1 "$OUT" | grep -q '^\$ .*kvmig bench migrate' || fail "the migrate table does not start with its command"
grep -q "over tls TLS_" "$OUT" && grep -Eq '^completed +[0-9]+ +[0-9]+ ' "$OUT" && grep -q "digests .* equal" "$OUT" ||
	fail "the migrate table: $(cat "$OUT")"
echo "ok: all bench parts passed"
