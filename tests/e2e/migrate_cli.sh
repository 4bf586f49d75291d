#!/bin/bash
# SPDX-License-Identifier: MIT
# migrate_cli: the migration commands and the migration listener, with no
# VM needed (so no KVM):
#   - help texts; kvmigd --listen: tcp on 127.0.0.1 with a kernel-chosen
#     port and a unix socket work and the agents still answer; malformed
#     URIs (exit 2, uri_parse's reason), --incoming other than stdio (exit 2), a
#     port in use (exit 1); tcp:[::1]:0 takes a stream and names its IPv6
#     peer, and kvmig migrate takes its tcp://[::1]:PORT (where ::1 exists);
#   - kvmig migrate: an unknown VM, bad URIs and option values (found by the
#     CLI: exit 2; by the agent on raw requests: exit 1), bad --postcopy
#     modes, --postcopy-reconnect out of its limit and bad --announce
#     values refused (exit 2), bad postcopy fields of raw requests (exit
#     1); job info/cancel/postcopy/resume of unknown names (exit 1);
#   - raw streams sent to the listener: an empty connection, garbage, a
#     truncated synthetic stream (tests/tools/mksnap), one with a flipped
#     bit, one with frames out of order, one with a page outside RAM: each gets an ERROR back or a closed connection, the agent
#     logs one clear line, and no VM is left; a valid synthetic stream over
#     TCP and over the unix socket fails only at the VM build ("cannot open
#     /dev/kvm") and leaves no VM; so do the three channels of a parallel
#     stream, sent on three connections (the others before channel 0); a
#     lone channel 1 whose channel 0 never comes is refused after 10 s;
#   - a stream that stops after HELLO holds its name: vm list shows it as
#     "incoming", a second stream and vm start of that name are refused,
#     and the name is free again once the first stream goes away; an agent
#     stopped while a stream arrives shuts down cleanly.
# With KVM, "migrating to a port nobody listens on fails with cannot
# connect" runs here too (it needs a VM at the source); migrate_kvm.sh has
# the real migrations.
. "$(dirname "$0")/lib.sh"

MKSNAP=$B/tests/tools/mksnap

log "help texts"
ok "kvmig migrate --help" "$KVMIG" migrate --help
for w in "--to URI" "--max-downtime MS" "--bandwidth MiB/s" "--xbzrle\[=CACHE\]" "--compress" \
	"--parallel N" "--auto-converge" "--max-iterations N" "--timeout SEC" "--verify" \
	"--dirty-track bitmap\|ring" "--detach" "--postcopy\[=MODE\]" "--postcopy-reconnect SEC" \
	"manual: only on kvmig job postcopy NAME" "kvmig job resume NAME" "--announce IFACE" "--announce-rounds N" "--announce-max MS"; do
	grep -q -- "$w" "$OUT" || fail "kvmig migrate --help lacks '$w'"
done
ok "kvmig migrate x --help" "$KVMIG" migrate x --to tcp://h:1 --help
ok "kvmig job --help" "$KVMIG" job --help
grep -q "job info NAME" "$OUT" && grep -q "job cancel NAME" "$OUT" && grep -q "job postcopy NAME" "$OUT" &&
	grep -q "job resume NAME \[--to URI\]" "$OUT" || fail "kvmig job --help: $(cat "$OUT")"
! grep -qi "not implemented" "$OUT" || fail "kvmig job --help still says 'not implemented'"
ok "kvmig --help" "$KVMIG" --help
grep -q "migrate NAME --to URI" "$OUT" && grep -q "job info NAME" "$OUT" && grep -q "job resume NAME" "$OUT" ||
	fail "kvmig --help lacks migrate/job"
ok "kvmig vm --help" "$KVMIG" vm --help
grep -q -- "--dirty-ring ENTRIES" "$OUT" || fail "kvmig vm --help lacks --dirty-ring"
ok "kvmigd --help" "$KVMIGD" --help
grep -q "tcp:HOST:PORT" "$OUT" && grep -q "unix:PATH" "$OUT" || fail "kvmigd --help lacks the listen URIs"

log "kvmigd --listen: refused URIs"
bad "--incoming tcp" 2 "--incoming takes only 'stdio', not 'tcp'" "$KVMIGD" --incoming tcp
while IFS='|' read -r u why; do
	bad "--listen '$u'" 2 "invalid --listen: .*$why" "$KVMIGD" --control "$T/x.sock" --listen "$u"
done <<'EOF'
tcp:127.0.0.1|missing port in 'tcp:127\.0\.0\.1' \(expected tcp:HOST:PORT\)
tcp:127.0.0.1:99999|bad port '99999' in 'tcp:127\.0\.0\.1:99999': must be a number 0\.\.65535
tcp:127.0.0.1:4x|bad port '4x'
ftp:host:1|unsupported scheme 'ftp' in 'ftp:host:1' \(expected tcp:HOST:PORT, tls:HOST:PORT or unix:PATH\)
127.0.0.1:4444|'127\.0\.0\.1:4444' is not a listen address
unix:|missing socket path in 'unix:'
unix://rel.sock|a unix URI is unix:///ABSOLUTE/PATH
tcp:::1:80|'tcp:::1:80': put an IPv6 address in brackets
ssh:host|ssh needs no listener
EOF
[ ! -e "$T/x.sock" ] || fail "kvmigd created its control socket before refusing --listen"

log "agents with --listen"
start_agent dst --listen tcp:127.0.0.1:0
ok "dst version" kv dst agent version --json
jq_out '(.listen | test("^tcp:127\\.0\\.0\\.1:[0-9]+$")) and (.migrate_uri | test("^tcp://127\\.0\\.0\\.1:[0-9]+$"))'
TCP_URI=$(jq -r .migrate_uri "$OUT")
TCP_ADDR=$(jq -r .listen "$OUT")
PORT=${TCP_URI##*:}
[ "$PORT" -gt 0 ] || fail "no port in $TCP_URI"
grep -q "accepting migrations on $TCP_ADDR" "$T/dst.log" || fail "dst does not log its listener"
echo "dst listens on $TCP_ADDR"
start_agent udst --listen "unix:$T/mig.sock"
[ -S "$T/mig.sock" ] || fail "no unix listener socket at $T/mig.sock"
ok "udst version" kv udst agent version --json
jq_out ".listen == \"unix:$T/mig.sock\" and .migrate_uri == \"unix://$T/mig.sock\""
start_agent src
ok "src version" kv src agent version --json
jq_out '.listen == null and .migrate_uri == null'
bad "a second listener on the same port" 1 "cannot listen on tcp:127.0.0.1:$PORT: Address already in use" \
	timeout 10 "$KVMIGD" --control "$T/y.sock" --listen "tcp:127.0.0.1:$PORT"
[ ! -e "$T/y.sock" ] || fail "a kvmigd that could not listen left its control socket"
bad "a second listener on a live unix socket" 1 "another process listens there" \
	timeout 10 "$KVMIGD" --control "$T/y.sock" --listen "unix:$T/mig.sock"
[ -S "$T/mig.sock" ] || fail "the refused agent removed udst's listener socket"
for a in dst udst src; do
	ok "$a still answers" kv $a agent ping
	no_vms_left $a
done

log "kvmig migrate: usage errors (exit 2, found by the CLI)"
bad "no --to" 2 "usage: kvmig migrate NAME --to URI" kv src migrate ghost
bad "no name" 2 "usage: kvmig migrate NAME --to URI" kv src migrate --to "$TCP_URI"
bad "two names" 2 "unexpected argument 'b'" kv src migrate a b --to "$TCP_URI"
bad "unknown option" 2 "unknown option '--bogus'" kv src migrate a --to "$TCP_URI" --bogus
bad "--to without value" 2 "needs a value" kv src migrate a --to
bad "listen-style URI" 2 "tcp:HOST:PORT is the form of kvmigd --listen" kv src migrate a --to "$TCP_ADDR"
bad "listen-style unix URI" 2 "unix:PATH is the form of kvmigd --listen" kv src migrate a --to "unix:$T/mig.sock"
while IFS='|' read -r u why; do
	bad "--to '$u'" 2 "invalid --to: .*$why" kv src migrate a --to "$u"
done <<'EOF'
127.0.0.1:4444|'127\.0\.0\.1:4444' is not a URI \(expected tcp://HOST:PORT
tcp://127.0.0.1|missing port in 'tcp://127\.0\.0\.1' \(expected tcp://HOST:PORT\)
tcp://127.0.0.1:|bad port '' in 'tcp://127\.0\.0\.1:'
tcp://:4444|missing host in 'tcp://:4444'
tcp://127.0.0.1:0|bad port '0' .*must be a number 1\.\.65535
tcp://127.0.0.1:70000|bad port '70000'
tcp://127.0.0.1:44x|bad port '44x'
tcp://::1:4444|put an IPv6 address in brackets
tcp://[::1:4444|unterminated '\['
tcp://[::g]:4444|bad IPv6 address '::g'
unix://relative.sock|'unix://relative\.sock': a unix URI is unix:///ABSOLUTE/PATH \(three slashes\)
unix://|a unix URI is unix:///ABSOLUTE/PATH
http://h:1|unsupported scheme 'http' in 'http://h:1'
EOF
bad "--ssh-data foo" 2 "invalid --ssh-data 'foo': expected ssh or tls" kv src migrate a --to ssh://root@h --ssh-data foo
bad "--ssh-agent-port 0" 2 "invalid --ssh-agent-port '0': expected a TCP port" kv src migrate a --to ssh://root@h --ssh-agent-port 0
bad "--ssh-agent-port 65536" 2 "invalid --ssh-agent-port '65536'" kv src migrate a --to ssh://root@h --ssh-agent-port 65536
bad "--tls-dir ''" 2 "invalid --tls-dir: empty" kv src migrate a --to tls://127.0.0.1:4444 --tls-dir ""
bad "--parallel 0" 2 "invalid --parallel '0': expected 1 to 8" kv src migrate a --to "$TCP_URI" --parallel 0
bad "--parallel 9" 2 "invalid --parallel '9'" kv src migrate a --to "$TCP_URI" --parallel 9
bad "--parallel x" 2 "invalid --parallel 'x'" kv src migrate a --to "$TCP_URI" --parallel x
bad "--compress foo" 2 "unknown compression 'foo'" kv src migrate a --to "$TCP_URI" --compress foo
bad "--compress zstd:99" 2 "bad compression 'zstd:99'.*1 to 22" kv src migrate a --to "$TCP_URI" --compress zstd:99
bad "--compress none:1" 2 "bad compression 'none:1'" kv src migrate a --to "$TCP_URI" --compress none:1
bad "--max-downtime x" 2 "invalid --max-downtime 'x'" kv src migrate a --to "$TCP_URI" --max-downtime x
bad "--max-downtime 0" 2 "invalid --max-downtime '0'" kv src migrate a --to "$TCP_URI" --max-downtime 0
bad "--max-downtime -5" 2 "invalid --max-downtime '-5'" kv src migrate a --to "$TCP_URI" --max-downtime=-5
bad "--bandwidth -1" 2 "invalid --bandwidth '-1'" kv src migrate a --to "$TCP_URI" --bandwidth -1
bad "--bandwidth 5x" 2 "invalid --bandwidth '5x'" kv src migrate a --to "$TCP_URI" --bandwidth 5x
bad "--bandwidth empty" 2 "invalid --bandwidth ''" kv src migrate a --to "$TCP_URI" --bandwidth ""
bad "--bandwidth nan" 2 "invalid --bandwidth 'nan'" kv src migrate a --to "$TCP_URI" --bandwidth nan
bad "--dirty-track x" 2 "invalid --dirty-track 'x': expected bitmap or ring" kv src migrate a --to "$TCP_URI" --dirty-track x
bad "--xbzrle=12Q" 2 "invalid --xbzrle cache '12Q'" kv src migrate a --to "$TCP_URI" --xbzrle=12Q
bad "--xbzrle=1K" 2 "invalid --xbzrle cache '1K'" kv src migrate a --to "$TCP_URI" --xbzrle=1K
bad "--max-iterations -3" 2 "invalid --max-iterations '-3'" kv src migrate a --to "$TCP_URI" --max-iterations -3
bad "--timeout x (the migration's)" 2 "invalid --timeout 'x': expected seconds" kv src migrate a --to "$TCP_URI" --timeout x
bad "--postcopy=sideways" 2 "invalid --postcopy 'sideways': expected auto, now, manual or off" kv src migrate a --to "$TCP_URI" --postcopy=sideways
bad "--postcopy=" 2 "invalid --postcopy '': expected auto" kv src migrate a --to "$TCP_URI" --postcopy=
bad "--postcopy-reconnect -1" 2 "invalid --postcopy-reconnect '-1': expected seconds, 0 to 86400" kv src migrate a --to "$TCP_URI" --postcopy --postcopy-reconnect -1
bad "--postcopy-reconnect 86401" 2 "invalid --postcopy-reconnect '86401': expected seconds, 0 to 86400" kv src migrate a --to "$TCP_URI" --postcopy --postcopy-reconnect 86401
bad "--postcopy-reconnect huge" 2 "invalid --postcopy-reconnect '99999999999999999999'" kv src migrate a --to "$TCP_URI" --postcopy --postcopy-reconnect 99999999999999999999
bad "--postcopy-reconnect without value" 2 "needs a value" kv src migrate a --to "$TCP_URI" --postcopy --postcopy-reconnect
bad "--postcopy-reconnect without --postcopy" 2 "--postcopy-reconnect needs --postcopy" kv src migrate a --to "$TCP_URI" --postcopy-reconnect 5
bad "--postcopy-reconnect with --postcopy=off" 2 "--postcopy-reconnect needs --postcopy" kv src migrate a --to "$TCP_URI" --postcopy=off --postcopy-reconnect 5
bad "--announce a/b" 2 "invalid --announce 'a/b'" kv src migrate a --to "$TCP_URI" --announce a/b
bad "--announce-rounds 0" 2 "invalid --announce-rounds '0'" kv src migrate a --to "$TCP_URI" --announce-rounds 0
bad "--announce without value" 2 "needs a value" kv src migrate a --to "$TCP_URI" --announce
bad "vm start --dirty-ring x" 2 "invalid --dirty-ring 'x'" kv src vm start v --dirty-ring x
bad "vm start --dirty-ring 100 (agent)" 1 "power of two from [0-9]+ to 65536" kv src vm start v --dirty-ring 100
bad "raw: vm.start dirty_ring huge" 1 "power of two from [0-9]+ to 65536" kv src agent send '{"method":"vm.start","name":"v","dirty_ring":99999999999}'
bad "job without command" 2 "usage: kvmig job info NAME" kv src job
bad "job info without name" 2 "usage: kvmig job info NAME" kv src job info
bad "job frob" 2 "usage: kvmig job info NAME" kv src job frob x
bad "job postcopy without name" 2 "usage: kvmig job info NAME .*job postcopy NAME" kv src job postcopy
bad "job postcopy two names" 2 "usage: kvmig job info NAME" kv src job postcopy a b
bad "job postcopy --to" 2 "unknown option '--to'; usage: kvmig job postcopy NAME" kv src job postcopy a --to "$TCP_URI"
bad "job resume without name" 2 "job resume NAME \[--to URI\]" kv src job resume --to "$TCP_URI"
bad "job resume bad --to" 2 "invalid --to: .*missing port" kv src job resume a --to tcp://127.0.0.1
bad "job resume --to without value" 2 "needs a value" kv src job resume a --to

log "kvmig migrate: errors from the agent (exit 1)"
bad "migrate unknown VM" 1 "^kvmig: no VM named 'ghost'" kv src migrate ghost --to "$TCP_URI"
bad "migrate unknown VM --json" 1 "^kvmig: no VM named 'ghost'" kv src migrate ghost --to "$TCP_URI" --json
bad "migrate unknown VM --detach" 1 "^kvmig: no VM named 'ghost'" kv src migrate ghost --to "$TCP_URI" --detach
bad "migrate unknown VM, every option" 1 "no VM named 'ghost'" kv src migrate ghost --to "unix://$T/mig.sock" \
	--max-downtime 50 --bandwidth 12.5 --xbzrle=8M --compress zstd:3 --parallel 1 --auto-converge \
	--max-iterations 7 --timeout 30 --verify --dirty-track ring --postcopy=manual --postcopy-reconnect 30
bad "job info ghost" 1 "^kvmig: no migration job for 'ghost'" kv src job info ghost
bad "job info ghost --json" 1 "no migration job for 'ghost'" kv src job info ghost --json
bad "job cancel ghost" 1 "^kvmig: no migration job for 'ghost'" kv src job cancel ghost
bad "job postcopy ghost" 1 "^kvmig: no migration job for 'ghost'" kv src job postcopy ghost
bad "job postcopy ghost --json" 1 "^kvmig: no migration job for 'ghost'" kv src job postcopy ghost --json
bad "job resume ghost" 1 "^kvmig: no migration job for 'ghost'" kv src job resume ghost
bad "job resume ghost --to" 1 "^kvmig: no migration job for 'ghost'" kv src job resume ghost --to "$TCP_URI"
bad "raw: job.resume uri 5" 1 "job.resume: field 'uri' must be a string" kv src agent send '{"method":"job.resume","name":"ghost","uri":5}'
bad "raw: job.postcopy uri" 1 "job.postcopy: unknown field 'uri'" kv src agent send '{"method":"job.postcopy","name":"ghost","uri":"x"}'
bad "raw: job.postcopy without name" 1 "job.postcopy: missing field 'name'" kv src agent send '{"method":"job.postcopy"}'
ms() { kv src agent send "{\"method\":\"migrate.start\",\"name\":\"ghost\",\"uri\":\"$TCP_URI\"$1}"; }
bad "raw: parallel 0" 1 "field 'parallel' must be between 1 and 8, not 0" ms ',"parallel":0'
bad "raw: compress foo" 1 "unknown compression 'foo'" ms ',"compress":"foo"'
bad "raw: dirty_track x" 1 "unknown dirty tracking 'x'" ms ',"dirty_track":"x"'
bad "raw: verify yes" 1 "field 'verify' must be true or false" ms ',"verify":"yes"'
bad "raw: auto_converge 1" 1 "field 'auto_converge' must be true or false" ms ',"auto_converge":1'
bad "raw: max_downtime_ms 0" 1 "field 'max_downtime_ms' must be between 1" ms ',"max_downtime_ms":0'
bad "raw: bandwidth -1" 1 "field 'bandwidth' must be a non-negative integer" ms ',"bandwidth":-1'
bad "raw: xbzrle_cache_bytes 100" 1 "0 \\(off\\) or between 4096 and" ms ',"xbzrle_cache_bytes":100'
bad "raw: unknown field" 1 "migrate.start: unknown field 'post_copy'" ms ',"post_copy":true'
bad "raw: postcopy sideways" 1 "migrate.start: field 'postcopy' must be off, auto, now or manual \\(or true = auto, false = off\\), not 'sideways'" ms ',"postcopy":"sideways"'
bad "raw: postcopy 1" 1 "field 'postcopy' must be off, auto, now or manual .*, got a number" ms ',"postcopy":1'
bad "raw: postcopy null" 1 "field 'postcopy' must be .*, got null" ms ',"postcopy":null'
bad "raw: postcopy_reconnect_ms too large" 1 "field 'postcopy_reconnect_ms' must be between 0 and 86400000, not 86400001" ms ',"postcopy":"auto","postcopy_reconnect_ms":86400001'
bad "raw: postcopy_reconnect_ms -1" 1 "field 'postcopy_reconnect_ms' must be a non-negative integer" ms ',"postcopy_reconnect_ms":-1'
for pc in true false '"off"' '"auto"' '"now"' '"manual"'; do
	bad "raw: postcopy $pc accepted, unknown VM" 1 "no VM named 'ghost'" ms ",\"postcopy\":$pc,\"postcopy_reconnect_ms\":86400000"
done
bad "raw: valid options, unknown VM" 1 "no VM named 'ghost'" ms ',"parallel":1,"compress":"lz4","verify":true,"dirty_track":"bitmap"'
bad "raw: no uri" 1 "missing field 'uri'" kv src agent send '{"method":"migrate.start","name":"ghost"}'
bad "raw: empty uri" 1 "field 'uri' is empty" kv src agent send '{"method":"migrate.start","name":"ghost","uri":""}'
bad "raw: job.info without name" 1 "job.info: missing field 'name'" kv src agent send '{"method":"job.info"}'
bad "raw: vm.start dirty_ring 3" 1 "power of two" kv src agent send '{"method":"vm.start","name":"v","dirty_ring":3}'
no_vms_left src

if have_kvm src; then
	log "cannot connect (a VM at the source)"
	ok "vm start c1" kv src vm start c1 --mem 64M --guest idle
	FREE=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
	bad "migrate to a closed port" 1 "cannot migrate VM 'c1': cannot connect to tcp://127.0.0.1:$FREE: Connection refused" \
		kv src migrate c1 --to "tcp://127.0.0.1:$FREE"
	bad "migrate to a missing unix socket" 1 "cannot migrate VM 'c1': cannot connect to unix://$T/none.sock" \
		kv src migrate c1 --to "unix://$T/none.sock"
	bad "no job after a refused start" 1 "no migration job for 'c1'" kv src job info c1
	[ "$(vm_field src c1 .state)" = running ] || fail "c1 does not run after the refused migrations"
	ok "vm stop c1" kv src vm stop c1
else
	echo "note: 'migrate to a port nobody listens on' needs a VM at the source (KVM: $KVM_REASON);" \
		"it runs here when KVM works, and in migrate_kvm.sh"
fi

command -v python3 >/dev/null || skip "raw streams need python3"

# stream.py ADDR FILE [--frames N] [--hold FLAGFILE]: connect to a listener
# (tcp:HOST:PORT or unix:PATH), send FILE (or its first N frames), wait for
# FLAGFILE to exist with --hold, shut down the sending side, read the
# replies until the agent closes and print them: "FRAME <type>" per frame,
# "ERROR <message>" for ERROR frames, "RESET" on a reset, "CLOSED" last.
cat >"$T/stream.py" <<'EOF'
import os, socket, struct, sys, time
NAMES = {1: "HELLO", 2: "PAGES", 3: "END_ROUND", 4: "SWITCHOVER", 5: "STATE", 6: "COMPLETE",
         7: "ERROR", 16: "HELLO_ACK", 17: "ACK", 18: "RESUMED", 19: "PAGE_REQ"}
addr, path, opts = sys.argv[1], sys.argv[2], sys.argv[3:]
data = open(path, "rb").read()
if "--frames" in opts:
    off = 0
    for _ in range(int(opts[opts.index("--frames") + 1])):
        off += 8 + struct.unpack_from("<I", data, off + 4)[0] + 4
    data = data[:off]
if addr.startswith("tcp:"):
    host, port = addr[4:].rsplit(":", 1)
    s = socket.create_connection((host.strip("[]"), int(port)), timeout=60)
else:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(addr[5:])
try:
    s.sendall(data)
except OSError as e:
    print("SEND-FAILED", e.strerror)
if "--hold" in opts:
    flag = opts[opts.index("--hold") + 1]
    print("HOLDING", flush=True)
    deadline = time.time() + 120
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.05)
try:
    s.shutdown(socket.SHUT_WR)
except OSError:
    pass
buf = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
except ConnectionResetError:
    print("RESET")
off = 0
while off + 8 <= len(buf):
    typ, _flags, ln = struct.unpack_from("<HHI", buf, off)
    body = buf[off + 8:off + 8 + ln]
    if typ == 7 and len(body) >= 6:
        mlen = struct.unpack_from("<H", body, 4)[0]
        print("ERROR", body[6:6 + mlen].decode("utf-8", "replace"))
    else:
        print("FRAME", NAMES.get(typ, typ))
    off += 8 + ln + 4
print("CLOSED")
EOF

# send DESC ADDR FILE [stream.py options]: run stream.py; its output in $OUT.
send() {
	local desc=$1; shift
	run timeout 60 python3 "$T/stream.py" "$@"
	[ "$RC" = 0 ] || fail "$desc: stream.py exit $RC: $(cat "$ERR")"
	grep -q '^CLOSED$' "$OUT" || fail "$desc: the agent did not close the connection: $(cat "$OUT")"
	! grep -q '^FRAME RESUMED$' "$OUT" || fail "$desc: the agent answered RESUMED"
}

# refused DESC AGENT ADDR FILE REGEX [options]: the stream must get an
# ERROR (matching REGEX when one came back) or a closed connection, the
# agent must log one line "incoming migration ... failed: <REGEX>", and the
# agent's VMs must be what they were (none, but for the held-name case).
refused() {
	local desc=$1 a=$2 addr=$3 file=$4 re=$5 before vms; shift 5
	before=$(grep -c "incoming migration .*failed" "$T/$a.log")
	vms=$(kv "$a" vm list --json | jq -c .) || fail "vm list on $a failed"
	send "$desc" "$addr" "$file" "$@"
	if grep -q '^ERROR' "$OUT"; then
		grep -Eq "^ERROR .*($re)" "$OUT" || fail "$desc: ERROR does not match /$re/: $(grep '^ERROR' "$OUT")"
	fi
	[ "$(grep -c "incoming migration .*failed" "$T/$a.log")" = $((before + 1)) ] ||
		fail "$desc: the agent did not log exactly one failure line"
	grep "incoming migration .*failed" "$T/$a.log" | tail -n 1 | grep -Eq -- "$re" ||
		fail "$desc: the log line does not match /$re/: $(grep "incoming migration .*failed" "$T/$a.log" | tail -n 1)"
	[ "$(kv "$a" vm list --json | jq -c .)" = "$vms" ] ||
		fail "$desc: the VMs of $a changed: $(kv "$a" vm list --json)"
	kv "$a" agent ping >/dev/null || fail "$desc: $a no longer answers"
	echo "ok: $desc -> $(grep -m1 -E '^(ERROR|RESET)' "$OUT" || echo 'connection closed')"
	echo "    log: $(grep "incoming migration .*failed" "$T/$a.log" | tail -n 1 | sed 's/^kvmig: error: kvmigd: //')"
}

log "raw streams into the TCP listener"
: >"$T/empty.bin"
refused "an empty connection" dst "$TCP_ADDR" "$T/empty.bin" "the stream is empty"
head -c 65536 /dev/urandom >"$T/garbage.bin"
refused "64 KiB of garbage" dst "$TCP_ADDR" "$T/garbage.bin" "magic|frame|version|type|checksum"
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/http.bin"
refused "an HTTP request" dst "$TCP_ADDR" "$T/http.bin" "magic|frame|version|type|checksum|ended"

[ -x "$MKSNAP" ] || fail "$MKSNAP is missing: build it (make $MKSNAP)"
"$MKSNAP" "$T/good.bin" --vcpus 2 --pages 300 || fail "mksnap failed"
SIZE=$(stat -c %s "$T/good.bin")
for cut in 4 $((SIZE / 2)) $((SIZE - 1)); do
	head -c "$cut" "$T/good.bin" >"$T/cut-$cut.bin"
	refused "a stream cut to $cut of $SIZE bytes" dst "$TCP_ADDR" "$T/cut-$cut.bin" "ended|truncated|closed the connection"
done
refused "a stream that stops after HELLO" dst "$TCP_ADDR" "$T/good.bin" "ended after 1 frames" --frames 1
# one flipped bit in the middle of a frame: its checksum no longer matches
python3 - "$T/good.bin" "$T/flipped.bin" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[len(d) // 2] ^= 0x10
open(sys.argv[2], "wb").write(d)
PY
refused "a stream with one flipped bit" dst "$TCP_ADDR" "$T/flipped.bin" "checksum mismatch"
# frames out of order: the SWITCHOVER frame left out, so STATE follows PAGES
python3 - "$T/good.bin" "$T/noswitch.bin" <<'PY'
import struct, sys
d, out, off = open(sys.argv[1], "rb").read(), b"", 0
while off < len(d):
    typ, _, ln = struct.unpack_from("<HHI", d, off)
    if typ != 4:
        out += d[off:off + 12 + ln]
    off += 12 + ln
open(sys.argv[2], "wb").write(out)
PY
refused "frames out of order (no SWITCHOVER)" dst "$TCP_ADDR" "$T/noswitch.bin" \
	"STATE frame out of order: expected PAGES, END_ROUND or SWITCHOVER"
"$MKSNAP" "$T/outside.bin" --vcpus 1 --pages 10 --bad-page 99999999 || fail "mksnap --bad-page failed"
refused "a page outside RAM" dst "$TCP_ADDR" "$T/outside.bin" "page 99999999 lies outside the [0-9]+ pages of guest RAM"
"$MKSNAP" "$T/bigname.bin" --name "bad/name" || fail "mksnap --name failed"
refused "a VM name with a slash" dst "$TCP_ADDR" "$T/bigname.bin" "name 'bad/name'"

log "an IPv6 listener: tcp:[::1]:0"
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
	start_agent v6 --listen "tcp:[::1]:0"
	ok "v6 version" kv v6 agent version --json
	jq_out '(.listen | test("^tcp:\\[::1\\]:[1-9][0-9]*$")) and (.migrate_uri | test("^tcp://\\[::1\\]:[1-9][0-9]*$"))'
	V6_ADDR=$(jq -r .listen "$OUT")
	V6_URI=$(jq -r .migrate_uri "$OUT")
	grep -qF "accepting migrations on $V6_ADDR" "$T/v6.log" || fail "v6 does not log its listener"
	refused "a stream that stops after HELLO, over IPv6" v6 "$V6_ADDR" "$T/good.bin" "ended after 1 frames" --frames 1
	grep -Eq "incoming migration of VM 'gen' from tcp:\[::1\]:[0-9]+ failed" "$T/v6.log" ||
		fail "v6 does not name its IPv6 peer: $(grep 'incoming migration' "$T/v6.log")"
	# kvmig takes the IPv6 URI (the agent, not the CLI, finds the VM missing)
	bad "migrate to $V6_URI" 1 "no VM named 'ghost'" kv src migrate ghost --to "$V6_URI"
	stop_agent v6
else
	echo "note: no IPv6 loopback here: the [::1] listener is not tested"
fi

log "a valid synthetic stream fails only at the VM build"
if have_kvm dst; then
	# with KVM the synthetic VM may well build and run: either is fine, nothing may linger
	send "valid stream over TCP (KVM)" "$TCP_ADDR" "$T/good.bin"
	echo "note: with KVM the synthetic stream got: $(tr '\n' ' ' <"$OUT")"
	kv dst vm stop gen >/dev/null 2>&1
	no_vms_left dst
else
	refused "a valid synthetic stream over TCP" dst "$TCP_ADDR" "$T/good.bin" "cannot build the VM: cannot open /dev/kvm"
	grep -q '^FRAME HELLO_ACK$' "$OUT" || fail "no HELLO_ACK for a valid HELLO: $(cat "$OUT")"
	grep -q '^ERROR cannot build the VM: cannot open /dev/kvm' "$OUT" ||
		fail "the source was not told why: $(cat "$OUT")"
	refused "a valid synthetic stream over the unix socket" udst "unix:$T/mig.sock" "$T/good.bin" \
		"cannot build the VM: cannot open /dev/kvm"
	grep -q "from unix:$T/mig.sock (pid [0-9]*)" "$T/udst.log" || fail "udst does not name the unix peer"
	"$MKSNAP" "$T/zstd.bin" --compress zstd --pages 100 || fail "mksnap --compress zstd failed"
	refused "a valid zstd stream" dst "$TCP_ADDR" "$T/zstd.bin" "cannot open /dev/kvm"

	log "a parallel migration: channels on their own connections meet in one session"
	for c in 0 1 2; do
		"$MKSNAP" "$T/par$c.bin" --compress lz4 --pages 900 --channels 3 --channel $c \
			--session 4242 || fail "mksnap --channel $c failed"
	done
	# the other channels first: they wait for channel 0
	for c in 2 1; do
		timeout 60 python3 "$T/stream.py" "$TCP_ADDR" "$T/par$c.bin" >"$T/par$c.out" 2>&1 &
		eval "PAR$c=\$!"
	done
	refused "channel 0 of a 3-channel stream" dst "$TCP_ADDR" "$T/par0.bin" \
		"cannot build the VM: cannot open /dev/kvm"
	wait "$PAR1" "$PAR2"
	for c in 1 2; do
		grep -q '^FRAME HELLO_ACK$' "$T/par$c.out" || fail "channel $c got no HELLO_ACK: $(cat "$T/par$c.out")"
		! grep -q '^ERROR' "$T/par$c.out" || fail "channel $c got an ERROR: $(cat "$T/par$c.out")"
	done
	echo "ok: channels 1 and 2 joined channel 0's session; all three streams checked out"
	"$MKSNAP" "$T/lone.bin" --pages 10 --channels 2 --channel 1 --session 777 ||
		fail "mksnap --channel 1 failed"
	refused "a channel whose channel 0 never comes" dst "$TCP_ADDR" "$T/lone.bin" \
		"no migration with session 0000000000000309 arrived within 10 s for its channel 1"
fi

log "a stream that stalls after HELLO holds its name"
"$MKSNAP" "$T/dup.bin" --name dup --pages 20 || fail "mksnap --name dup failed"
python3 "$T/stream.py" "$TCP_ADDR" "$T/dup.bin" --frames 1 --hold "$T/release" >"$T/held.out" 2>&1 &
HELD=$!
held_incoming() { [ "$(kv dst vm list --json | jq -r '.vms[] | select(.name == "dup") | .state')" = incoming ]; }
wait_until 20 "dup to show as incoming on dst" held_incoming
ok "vm list shows dup as incoming" kv dst vm list
grep -Eq '^dup +incoming +16M +- ' "$OUT" || fail "vm list: $(cat "$OUT")"
ok "vm info dup" kv dst vm info dup --json
jq_out '.name == "dup" and .state == "incoming" and .mem_bytes == 16777216 and .origin == "migrate" and (.source | startswith("tcp:127.0.0.1:")) and (.incoming_ms | type) == "number"'
bad "vm stop of an incoming VM" 1 "VM 'dup' is busy \\(incoming\\)" kv dst vm stop dup
bad "vm console of an incoming VM" 1 "busy \\(incoming\\)" kv dst vm console dup
bad "vm save of an incoming VM" 1 "busy \\(incoming\\)" kv dst vm save dup "$T/dup.snap"
bad "vm start of the reserved name" 1 "a VM named 'dup' already exists" kv dst vm start dup
bad "migrate of an incoming VM" 1 "busy \\(incoming\\)" kv dst migrate dup --to "unix://$T/mig.sock"
refused "a second stream of the same name" dst "$TCP_ADDR" "$T/dup.bin" "a VM named 'dup' already exists on the destination"
held_incoming || fail "the refused duplicate dropped the first stream's reservation"
touch "$T/release"
wait "$HELD" || fail "the held stream client failed: $(cat "$T/held.out")"
grep -q '^CLOSED$' "$T/held.out" || fail "held stream: $(cat "$T/held.out")"
no_vms_left dst
grep -q "incoming migration of VM 'dup' from tcp:127.0.0.1:[0-9]* failed: the stream ended after 1 frames" "$T/dst.log" ||
	fail "dst did not log the end of the held stream"
echo "ok: the name is free again"

log "an agent stopped while a stream arrives"
start_agent h --listen tcp:127.0.0.1:0
H_ADDR=$(kv h agent version --json | jq -r .listen)
rm -f "$T/release"
python3 "$T/stream.py" "$H_ADDR" "$T/dup.bin" --frames 1 --hold "$T/release" >"$T/held.out" 2>&1 &
HELD=$!
wait_until 20 "dup to show as incoming on h" bash -c "'$KVMIG' --agent '$T/h.sock' vm list --json | jq -e '.vms[0].state == \"incoming\"'"
stop_agent h TERM
grep -q "closing 1 incoming migration" "$T/h.log" || fail "h did not say it closed the arriving stream"
touch "$T/release"
wait "$HELD" || fail "the held stream client failed: $(cat "$T/held.out")"
grep -q '^CLOSED$' "$T/held.out" || fail "held stream after shutdown: $(cat "$T/held.out")"

log "kvmig migrate against a scripted agent: follow, progress, final output, Ctrl-C"
# fake_agent.py SOCK LOG: answers migrate.start and job.info like kvmigd
# would for a job that goes setup -> active (bytes growing) -> completed;
# VM "fails" ends failed, VM "slow" stays active until job.cancel; VMs
# "pc*" switch to post-copy at poll 5, lose the link at polls 6 and 7
# (postcopy-paused), get it back and complete at poll 9, except "pcslow",
# which stays in post-copy. job.postcopy and job.resume answer as kvmigd
# does when the engine takes them. Every request is appended to LOG.
cat >"$T/fake_agent.py" <<'EOF2'
import json, os, socket, sys
path, logf = sys.argv[1], sys.argv[2]
jobs = {}
def stats(name):
    j = jobs[name]
    j["polls"] += 1
    n = j["polls"]
    st = {"name": name, "uri": j["uri"], "status": "active", "total_ms": 100 * n,
          "downtime_ms": 0, "setup_ms": 50, "expected_downtime_ms": 40 * n,
          "transferred_bytes": (1 << 20) * n, "total_bytes": 64 << 20,
          "remaining_bytes": max(0, (32 << 20) - (1 << 20) * n), "duplicate_pages": 0,
          "normal_pages": 256 * n, "dirty_sync_count": n // 3, "dirty_pages_rate": 1000,
          "mbps": 83.886, "xbzrle": {"cache_size": 0, "bytes": 0, "pages": 0, "cache_miss": 0,
          "overflow": 0}, "compression": {"ratio": 0.0, "busy": 0.0, "pages": 0},
          "postcopy": {"requests": 0, "pages_pushed": 0, "fault_latency_us_p50": 0, "p99": 0,
          "fault_latency_us_p99": 0, "blocked_ms": 0, "bytes_after_switchover": 0,
          "pages_missing": 0, "reconnects": 0, "active": False}, "round": n // 3, "throttle_pct": 20 if n > 4 else 0,
          "bandwidth": 10485760, "ring_overflows": 0, "parallel": 1, "verified": False}
    if n <= 2:
        st["status"] = "setup"
    if j["cancel"]:
        st.update(status="cancelled", error="cancelled by the user")
    elif name == "fails" and n >= 6:
        st.update(status="failed", error="precopy did not converge after 5 rounds: the guest "
                  "dirties 51200 pages/s (200 MiB/s) and the link moves 1 MiB/s")
    elif name.startswith("pc") and n >= 5 and (n < 9 or name == "pcslow"):
        paused = n in (6, 7) and name != "pcslow"
        st["status"] = "postcopy-paused" if paused else "postcopy"
        st["postcopy"].update(requests=7 * n, pages_pushed=300 * n, fault_latency_us_p50=150,
                              bytes_after_switchover=(n - 4) * 524288,
                              fault_latency_us_p99=900, p99=900, pages_missing=4000 - 400 * n,
                              active=True, reconnects=1 if n >= 8 else 0)
    elif name.startswith("pc") and n >= 9:
        st.update(status="completed", remaining_bytes=0, downtime_ms=3)
        st["postcopy"].update(active=True, reconnects=1, requests=63)
    elif name != "slow" and not name.startswith("pc") and n >= 8:
        st.update(status="completed", remaining_bytes=0, downtime_ms=12, verified=True)
    return st
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(16)
while True:
    c, _ = srv.accept()
    f = c.makefile("rwb")
    line = f.readline()
    if not line:
        c.close()
        continue
    req = json.loads(line)
    with open(logf, "a") as lf:
        lf.write(line.decode())
    m, name = req.get("method"), req.get("name")
    if m == "migrate.start":
        jobs[name] = {"uri": req["uri"], "polls": 0, "cancel": False}
        r = {"ok": True, "name": name, "uri": req["uri"], "status": "setup"}
    elif m == "job.info" and name in jobs:
        r = {"ok": True}
        r.update(stats(name))
    elif m == "job.cancel" and name in jobs:
        jobs[name]["cancel"] = True
        r = {"ok": True, "name": name, "status": "cancelling"}
    elif m == "job.postcopy" and name in jobs:
        r = {"ok": True, "name": name, "status": "switching"}
    elif m == "job.resume" and name in jobs:
        jobs[name]["uri"] = req.get("uri") or jobs[name]["uri"]
        r = {"ok": True, "name": name, "uri": jobs[name]["uri"], "status": "resuming"}
    else:
        r = {"ok": False, "error": "no migration job for '%s'" % name}
    f.write((json.dumps(r) + "\n").encode())
    f.flush()
    c.close()
EOF2
python3 "$T/fake_agent.py" "$T/fake.sock" "$T/fake.requests" >"$T/fake.log" 2>&1 &
AGENT_PID[fake]=$!
wait_until 10 "the scripted agent to listen" test -S "$T/fake.sock"
ok "migrate, every option, --json" kv fake migrate web1 --to tcp://10.0.0.2:4444 --json \
	--max-downtime 50 --bandwidth 12.5 --xbzrle=8M --compress zstd:3 --parallel 2 --auto-converge \
	--max-iterations 7 --timeout 30 --verify --dirty-track ring
[ "$(jq -s length "$OUT")" = 1 ] || fail "--json printed more than one object: $(cat "$OUT")"
jq_out '.status == "completed" and .name == "web1" and .verified == true and .remaining_bytes == 0'
grep -m1 migrate.start "$T/fake.requests" | jq -e '. == {"method":"migrate.start","name":"web1",
	"uri":"tcp://10.0.0.2:4444","max_downtime_ms":50,"bandwidth":13107200,"xbzrle_cache_bytes":8388608,
	"compress":"zstd:3","parallel":2,"auto_converge":true,"max_iterations":7,"timeout_ms":30000,
	"verify":true,"dirty_track":"ring"}' >/dev/null ||
	fail "the migrate.start request: $(grep -m1 migrate.start "$T/fake.requests")"
[ "$(grep -c '"job.info"' "$T/fake.requests")" -ge 8 ] || fail "kvmig did not poll job.info until the end"
[ ! -s "$ERR" ] || fail "stderr without a terminal and without KVMIG_PROGRESS: $(cat "$ERR")"
ok "migrate --xbzrle (default cache), human output, KVMIG_PROGRESS=1" env KVMIG_PROGRESS=1 \
	"$KVMIG" --agent "$T/fake.sock" migrate web2 --to unix:///run/x.sock --xbzrle
grep -q '"xbzrle_cache_bytes":67108864' "$T/fake.requests" || fail "--xbzrle did not ask for a 64M cache"
grep -q "^migration of web2 to unix:///run/x.sock: completed after 800 ms, downtime 12 ms" "$OUT" &&
	grep -Eq '^xbzrle\.cache_size: +0$' "$OUT" && grep -Eq '^postcopy\.p99: +0$' "$OUT" ||
	fail "human output: $(cat "$OUT")"
grep -q "setting up" "$ERR" && grep -Eq '\[#+\.*\] +[0-9]+%.*MiB/s.*MiB left.*round [0-9]+.*exp\. downtime [0-9]+ ms' "$ERR" &&
	grep -q "throttle 20%" "$ERR" || fail "no progress line on stderr: $(cat -v "$ERR" | head -c 600)"
echo "progress line: $(tr '\r' '\n' <"$ERR" | grep -m1 MiB/s)"
run "$KVMIG" --agent "$T/fake.sock" migrate fails --to tcp://10.0.0.2:4444
[ "$RC" = 1 ] || fail "a failed job: exit $RC"
grep -q "^kvmig: migration of fails failed: precopy did not converge after 5 rounds: the guest dirties" "$ERR" ||
	fail "a failed job: stderr $(cat "$ERR")"
grep -Eq '^status: +failed$' "$OUT" || fail "a failed job prints its statistics too: $(cat "$OUT")"
echo "ok: a failed job -> $(cat "$ERR")"
run "$KVMIG" --agent "$T/fake.sock" migrate fails2 --to tcp://10.0.0.2:4444 --detach --json
[ "$RC" = 0 ] && [ "$(jq -c . "$OUT")" = '{"name":"fails2","uri":"tcp://10.0.0.2:4444","status":"setup"}' ] ||
	fail "--detach --json: $RC $(cat "$OUT")"
[ "$(grep -c '"fails2"' "$T/fake.requests")" = 1 ] || fail "--detach polled job.info"
echo "ok: --detach --json -> $(cat "$OUT")"
"$KVMIG" --agent "$T/fake.sock" migrate slow --to tcp://10.0.0.2:4444 >"$T/slow.out" 2>"$T/slow.err" &
SLOW=$!
wait_until 20 "kvmig to poll the slow job" grep -q '"job.info","name":"slow"' "$T/fake.requests"
kill -INT "$SLOW"
wait "$SLOW"
rc=$?
[ "$rc" = 1 ] || fail "Ctrl-C: exit $rc: $(cat "$T/slow.err")"
grep -q '"job.cancel","name":"slow"' "$T/fake.requests" || fail "Ctrl-C did not send job.cancel"
grep -q "cancelling the migration of slow" "$T/slow.err" &&
	grep -q "^kvmig: migration of slow failed: cancelled by the user" "$T/slow.err" ||
	fail "Ctrl-C: stderr $(cat "$T/slow.err")"
grep -Eq '^status: +cancelled$' "$T/slow.out" || fail "Ctrl-C: stdout $(cat "$T/slow.out")"
echo "ok: Ctrl-C cancels -> $(tail -n 1 "$T/slow.err")"

log "kvmig migrate --postcopy, job postcopy, job resume (the scripted agent)"
ok "migrate --postcopy --postcopy-reconnect 30, KVMIG_PROGRESS=1" env KVMIG_PROGRESS=1 \
	"$KVMIG" --agent "$T/fake.sock" migrate pc1 --to tcp://10.0.0.2:4444 --postcopy --postcopy-reconnect 30
grep -m1 '"migrate.start","name":"pc1"' "$T/fake.requests" |
	jq -e '.postcopy == "auto" and .postcopy_reconnect_ms == 30000' >/dev/null ||
	fail "--postcopy --postcopy-reconnect 30: $(grep -m1 '"pc1"' "$T/fake.requests")"
# it waited through postcopy and postcopy-paused (not final states) to the end
[ "$(grep -c '"job.info","name":"pc1"' "$T/fake.requests")" = 9 ] ||
	fail "kvmig did not poll pc1 until it completed: $(grep -c '"job.info","name":"pc1"' "$T/fake.requests") polls"
grep -q "^migration of pc1 to tcp://10.0.0.2:4444: completed" "$OUT" && grep -Eq '^postcopy\.active: +yes$' "$OUT" ||
	fail "pc1 human output: $(cat "$OUT")"
tr '\r' '\n' <"$ERR" | grep -Eq '^post-copy: 2000 pages missing at the destination, 35 requests, 1500 pushed, 0\.5 MiB sent since the switchover .*fault p50 150 us' ||
	fail "no post-copy progress line: $(cat -v "$ERR" | head -c 900)"
tr '\r' '\n' <"$ERR" | grep -q '^post-copy PAUSED (link lost): ' || fail "no paused progress line: $(cat -v "$ERR" | head -c 900)"
[ "$(grep -c "the link to the destination is lost" "$ERR")" = 1 ] &&
	grep -q "post-copy of pc1: the link to the destination is lost; the guest waits there for its 1600 missing pages" "$ERR" &&
	grep -q "It reconnects by itself for up to 30 s (--postcopy-reconnect); or run 'kvmig job resume pc1 \[--to URI\]'" "$ERR" &&
	grep -q "the link to the destination is back; post-copy of pc1 goes on" "$ERR" ||
	fail "pc1: the link notices: $(cat -v "$ERR" | head -c 1200)"
echo "ok: post-copy progress: $(tr '\r' '\n' <"$ERR" | grep -m1 'link to the destination is lost')"
ok "migrate --postcopy=manual, no terminal" "$KVMIG" --agent "$T/fake.sock" migrate pc2 --to tcp://10.0.0.2:4444 --postcopy=manual --json
grep -m1 '"migrate.start","name":"pc2"' "$T/fake.requests" | jq -e '.postcopy == "manual" and (has("postcopy_reconnect_ms") | not)' >/dev/null ||
	fail "--postcopy=manual: $(grep -m1 '"pc2"' "$T/fake.requests")"
jq_out '.status == "completed" and .postcopy.active == true and .postcopy.reconnects == 1'
# without a terminal only the link notices reach stderr, no progress line
grep -q "post-copy of pc2: the link to the destination is lost; .*Run 'kvmig job resume pc2 \[--to URI\]' to go on" "$ERR" &&
	grep -q "link to the destination is back" "$ERR" && ! grep -q "MiB/s" "$ERR" && ! grep -q "reconnects by itself" "$ERR" ||
	fail "pc2 stderr: $(cat -v "$ERR")"
for m in now off auto; do
	ok "migrate --postcopy=$m --detach" kv fake migrate "pcd$m" --to tcp://10.0.0.2:4444 --postcopy=$m --detach
	grep -m1 "\"migrate.start\",\"name\":\"pcd$m\"" "$T/fake.requests" | jq -e ".postcopy == \"$m\"" >/dev/null ||
		fail "--postcopy=$m: $(grep -m1 "pcd$m" "$T/fake.requests")"
done
ok "job postcopy pcdnow" kv fake job postcopy pcdnow
grep -q "^switching the migration of pcdnow to post-copy" "$OUT" || fail "job postcopy: $(cat "$OUT")"
tail -n 1 "$T/fake.requests" | jq -e '. == {"method":"job.postcopy","name":"pcdnow"}' >/dev/null ||
	fail "job postcopy request: $(tail -n 1 "$T/fake.requests")"
ok "job resume pcdnow --to --json" kv fake job resume pcdnow --to tcp://10.0.0.3:4444 --json
jq_out '. == {"name":"pcdnow","uri":"tcp://10.0.0.3:4444","status":"resuming"}'
tail -n 1 "$T/fake.requests" | jq -e '. == {"method":"job.resume","name":"pcdnow","uri":"tcp://10.0.0.3:4444"}' >/dev/null ||
	fail "job resume --to request: $(tail -n 1 "$T/fake.requests")"
ok "job resume pcdnow" kv fake job resume pcdnow
grep -q "^resuming the post-copy of pcdnow to tcp://10.0.0.3:4444" "$OUT" || fail "job resume: $(cat "$OUT")"
tail -n 1 "$T/fake.requests" | jq -e '. == {"method":"job.resume","name":"pcdnow"}' >/dev/null ||
	fail "job resume request (no uri): $(tail -n 1 "$T/fake.requests")"
"$KVMIG" --agent "$T/fake.sock" migrate pcslow --to tcp://10.0.0.2:4444 --postcopy >"$T/pcslow.out" 2>"$T/pcslow.err" &
SLOW=$!
# the 6th poll is sent after kvmig read the 5th answer, the first in post-copy
pcslow_polls() { [ "$(grep -c '"job.info","name":"pcslow"' "$T/fake.requests")" -ge "$1" ]; }
wait_until 20 "kvmig to see pcslow in post-copy" pcslow_polls 6
kill -INT "$SLOW"
wait "$SLOW"
rc=$?
[ "$rc" = 130 ] || fail "Ctrl-C in post-copy: exit $rc: $(cat "$T/pcslow.err")"
! grep -q '"job.cancel","name":"pcslow"' "$T/fake.requests" || fail "Ctrl-C in post-copy sent job.cancel"
grep -q "stopped waiting; the migration of pcslow is in post-copy .*kvmig job cancel pcslow gives it up" "$T/pcslow.err" ||
	fail "Ctrl-C in post-copy: stderr $(cat "$T/pcslow.err")"
[ ! -s "$T/pcslow.out" ] || fail "Ctrl-C in post-copy printed statistics: $(cat "$T/pcslow.out")"
echo "ok: Ctrl-C in post-copy only stops waiting -> $(tail -n 1 "$T/pcslow.err")"
kill "${AGENT_PID[fake]}"
wait "${AGENT_PID[fake]}" 2>/dev/null
unset "AGENT_PID[fake]"

log "the agents still answer"
for a in dst udst src; do
	ok "$a ping" kv $a agent ping
	no_vms_left $a
done
stop_agent udst
[ ! -e "$T/mig.sock" ] || fail "udst left its listener socket $T/mig.sock"
stop_agent dst
stop_agent src
echo "PASS: $E2E_NAME"
