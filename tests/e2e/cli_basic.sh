#!/bin/bash
# SPDX-License-Identifier: MIT
# cli_basic: kvmigd and kvmig without any VM running, so it needs no KVM:
# help texts, usage errors, an unreachable agent, ping/version, the empty
# list, errors for unknown VMs (info, stop, console, save, pause, resume),
# bad --mem/--vcpus/--mac/--guest/names, vm pause/resume without a name,
# malformed and oversize requests, a stalled client not blocking others,
# refusing a second agent on a live socket, replacing a stale one, and a
# clean SIGTERM/SIGINT shutdown. The part with VMs is cli_vm.sh.
. "$(dirname "$0")/lib.sh"

log "help and usage (no agent needed)"
ok "kvmig --help" "$KVMIG" --help
grep -q "vm start NAME" "$OUT" && grep -q KVMIG_AGENT "$OUT" && grep -q /run/kvmig/kvmigd.sock "$OUT" ||
	fail "kvmig --help lacks vm start, KVMIG_AGENT or the default socket"
ok "kvmig vm --help" "$KVMIG" vm --help
grep -q "vm restore FILE" "$OUT" || fail "kvmig vm --help lacks vm restore"
grep -q "vm pause NAME" "$OUT" && grep -q "vm resume NAME" "$OUT" || fail "kvmig vm --help lacks vm pause/resume"
ok "kvmig vm pause --help" "$KVMIG" vm pause --help
grep -q "vm resume NAME" "$OUT" || fail "kvmig vm pause --help lacks vm resume"
ok "kvmig vm start --help" "$KVMIG" vm start --help
grep -q -- "--mem SIZE" "$OUT" || fail "kvmig vm start --help lacks --mem"
ok "kvmig --version" "$KVMIG" --version
ok "kvmigd --help" "$KVMIGD" --help
grep -q -- "--listen URI" "$OUT" && grep -qi "tls:HOST:PORT  TLS over TCP: needs --tls-dir" "$OUT" ||
	fail "kvmigd --help does not explain --listen tls:"
bad "kvmig without a command" 2 "usage" "$KVMIG"
bad "unknown command" 2 "unknown command 'frobnicate'" "$KVMIG" frobnicate
bad "unknown vm command" 2 "unknown vm command 'explode'" "$KVMIG" vm explode
bad "kvmig demo" 2 "'demo' is not implemented yet" "$KVMIG" demo x
bad "kvmig drain x" 2 "unexpected argument 'x'" "$KVMIG" drain x
bad "kvmig bench x" 2 "unknown bench 'x'" "$KVMIG" bench x
bad "kvmigd without --control" 2 "--control PATH is required" "$KVMIGD"
bad "kvmigd --listen tls: with no credentials there" 1 "$T/no-such-dir/server-cert.pem|$T/no-such-dir" \
	"$KVMIGD" --control "$T/l.sock" --listen tls:127.0.0.1:0 --tls-dir "$T/no-such-dir"
[ ! -e "$T/l.sock" ] || fail "kvmigd --listen tls: left its control socket behind after refusing"
bad "kvmigd with a stray argument" 2 "unexpected argument" "$KVMIGD" --control "$T/x.sock" extra

log "unreachable agent"
bad "--agent to nowhere" 1 "cannot reach agent at $T/none.sock" "$KVMIG" --agent "$T/none.sock" vm list
bad "KVMIG_AGENT to nowhere" 1 "cannot reach agent at $T/none2.sock" env KVMIG_AGENT="$T/none2.sock" "$KVMIG" vm list
bad "--json to nowhere" 1 "cannot reach agent" "$KVMIG" --agent "$T/none.sock" vm list --json
if [ ! -e /run/kvmig/kvmigd.sock ]; then
	bad "default socket" 1 "cannot reach agent at /run/kvmig/kvmigd.sock" env -u KVMIG_AGENT "$KVMIG" vm list
fi

log "agent a"
start_agent a
ok "ping" kv a agent ping
grep -q "alive" "$OUT" || fail "ping output: $(cat "$OUT")"
ok "ping --json" kv a agent ping --json
jq_out '.pid > 0 and .vms == 0 and (has("ok") | not)'
ok "version --json" kv a agent version --json
jq_out '(.version | type) == "string" and .api == 1 and (.kvm.available | type) == "boolean"'
if have_kvm a; then HAVE_KVM=1; else HAVE_KVM=0; fi

log "empty list, --json anywhere"
for args in "vm list --json" "--json vm list" "vm --json list"; do
	ok "$args" kv a $args
	[ "$(jq -c . "$OUT")" = '{"vms":[]}' ] || fail "$args printed $(cat "$OUT")"
	[ "$(jq -s length "$OUT")" = 1 ] || fail "$args printed more than one JSON value"
done
ok "vm list (human)" kv a vm list
grep -q "no VMs" "$OUT" || fail "vm list on an empty agent printed: $(cat "$OUT")"

log "unknown VM"
for c in info stop console pause resume; do
	bad "vm $c ghost" 1 "^kvmig: no VM named 'ghost'" kv a vm $c ghost
	bad "vm $c ghost --json" 1 "^kvmig: no VM named 'ghost'" kv a vm $c ghost --json
done
bad "vm save ghost" 1 "no VM named 'ghost'" kv a vm save ghost "$T/ghost.snap"
[ ! -e "$T/ghost.snap" ] || fail "vm save of an unknown VM left a file"

log "usage errors (exit 2, found by the CLI)"
bad "vm start without a name" 2 "usage: kvmig vm start NAME" kv a vm start
bad "--mem 12Q" 2 "invalid --mem '12Q'" kv a vm start v --mem 12Q
bad "--mem empty" 2 "invalid --mem ''" kv a vm start v --mem ""
bad "--mem -5" 2 "invalid --mem '-5'" kv a vm start v --mem=-5
bad "--mem 1.5G" 2 "invalid --mem" kv a vm start v --mem 1.5G
bad "--mem without value" 2 "needs a value" kv a vm start v --mem
bad "--vcpus abc" 2 "invalid --vcpus 'abc'" kv a vm start v --vcpus abc
bad "--vcpus -1" 2 "invalid --vcpus" kv a vm start v --vcpus -1
bad "--vcpus 2x" 2 "invalid --vcpus" kv a vm start v --vcpus 2x
for m in 52:54:00:12:34 52-54-00-12-34-56 52:54:00:12:34:5g 52:54:00:12:34:567 525400123456 "52:54:00:12:34:56 "; do
	bad "--mac '$m'" 2 "invalid MAC address" kv a vm start v --mac "$m"
done
bad "--mac multicast" 2 "multicast" kv a vm start v --mac 01:00:5e:00:00:01
bad "--mac zero" 2 "all zeros" kv a vm start v --mac 00:00:00:00:00:00
bad "--guest empty" 2 "invalid --guest" kv a vm start v --guest ""
bad "--guest ,args" 2 "invalid --guest" kv a vm start v --guest ,workset=4M
bad "unknown option" 2 "unknown option '--bogus'" kv a vm start v --bogus
bad "two names" 2 "unexpected argument 'w'" kv a vm start v w
bad "vm info without name" 2 "usage: kvmig vm info NAME" kv a vm info
bad "vm info two names" 2 "usage: kvmig vm info NAME" kv a vm info a b
for c in pause resume; do
	bad "vm $c without name" 2 "usage: kvmig vm $c NAME" kv a vm $c
	bad "vm $c --json without name" 2 "usage: kvmig vm $c NAME" kv a vm $c --json
	bad "vm $c two names" 2 "usage: kvmig vm $c NAME" kv a vm $c a b
	bad "vm $c unknown option" 2 "unknown option '--bogus'" kv a vm $c --bogus
done
bad "vm save without file" 2 "usage: kvmig vm save NAME FILE" kv a vm save v
bad "vm restore without file" 2 "usage: kvmig vm restore FILE" kv a vm restore
bad "--timeout x" 2 "invalid --timeout" kv a --timeout x vm list

log "bad values (exit 1, judged by the agent)"
bad "--mem 1M" 1 "mem|size" kv a vm start v --mem 1M
bad "--mem 63M" 1 "mem|size" kv a vm start v --mem 63M
bad "--mem 128G" 1 "mem|size" kv a vm start v --mem 128G
bad "--mem 0" 1 "mem|size" kv a vm start v --mem 0
bad "--vcpus 0" 1 "vcpus" kv a vm start v --vcpus 0
bad "--vcpus 9" 1 "vcpus" kv a vm start v --vcpus 9
bad "--vcpus huge" any "vcpus" kv a vm start v --vcpus 4294967297
bad "--guest nosuch" 1 "guest 'nosuch'" kv a vm start v --guest nosuch
bad "--guest with unknown argument" 1 "bogus" kv a vm start v --guest idle,bogus=1
bad "--guest workset larger than RAM" 1 "workset" kv a vm start v --mem 64M --guest memcheck,workset=1G
bad "name with /" 1 "name 'bad/name'" kv a vm start bad/name
bad "name starting with ." 1 "must not start with" kv a vm start .hidden
bad "name too long" 1 "longer than" kv a vm start "$(printf 'n%.0s' $(seq 70))"
if [ $HAVE_KVM = 0 ]; then
	bad "vm start without KVM" 1 "KVM is not available" kv a vm start v --mem 64M
	bad "vm start --json without KVM" 1 "KVM is not available" kv a vm start v --json
fi
no_vms_left a

log "relative paths are made absolute by the CLI"
(cd "$T" && "$KVMIG" --agent "$T/a.sock" vm restore nosuch.snap) >"$OUT" 2>"$ERR" && fail "restore of a missing file succeeded"
grep -q "$T/nosuch.snap" "$ERR" || fail "relative path not made absolute: $(cat "$ERR")"
echo "ok: relative restore path -> $(head -n 1 "$ERR")"

log "raw requests"
bad "malformed JSON" 1 "malformed JSON at column" kv a agent send 'garbage'
bad "not an object" 1 "expected a JSON object, got an array" kv a agent send '[1,2]'
bad "no method" 1 "missing field 'method'" kv a agent send '{"name":"x"}'
bad "unknown method" 1 "unknown method 'vm.explode'" kv a agent send '{"method":"vm.explode"}'
bad "unknown field" 1 "unknown field 'bogus'" kv a agent send '{"method":"vm.list","bogus":1}'
bad "missing name" 1 "missing field 'name'" kv a agent send '{"method":"vm.info"}'
bad "name not a string" 1 "must be a string" kv a agent send '{"method":"vm.info","name":5}'
bad "vm.pause without name" 1 "vm.pause: missing field 'name'" kv a agent send '{"method":"vm.pause"}'
bad "vm.resume unknown field" 1 "vm.resume: unknown field 'bogus'" kv a agent send '{"method":"vm.resume","name":"x","bogus":1}'
bad "mem_bytes negative" 1 "non-negative integer" kv a agent send '{"method":"vm.start","name":"x","mem_bytes":-1}'
bad "mem_bytes a string" 1 "non-negative integer" kv a agent send '{"method":"vm.start","name":"x","mem_bytes":"64M"}'
ok "request with id" kv a agent send '{"method":"agent.ping","id":42}'
bad "oversize request" 1 "longer than 65536 bytes" kv a agent send "{\"method\":\"vm.info\",\"name\":\"$(head -c 70000 /dev/zero | tr '\0' x)\"}"
ok "ping after the bad requests" kv a agent ping

if command -v python3 >/dev/null; then
	log "several clients: a stalled client does not block others; pipelined requests"
	cat >"$T/clients.py" <<'EOF'
import json, socket, subprocess, sys
path, kvmig = sys.argv[1], sys.argv[2]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s
def lines(s, n):
    buf = b""
    while buf.count(b"\n") < n:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return [json.loads(l) for l in buf.split(b"\n") if l.strip()]
stalled = conn()
stalled.sendall(b'{"method":"agent.')          # half a request, then silence
idle = conn()                                   # connected, says nothing
r = subprocess.run([kvmig, "--agent", path, "--timeout", "5", "agent", "ping"],
                   capture_output=True, text=True)
assert r.returncode == 0, "ping blocked by a stalled client: " + r.stderr
stalled.sendall(b'ping","id":1}\n')
(resp,) = lines(stalled, 1)
assert resp["ok"] is True and resp["id"] == 1, resp
p = conn()
p.sendall(b'{"method":"agent.ping","id":1}\n{"method":"vm.info","name":"zz","id":2}\n'
          b'garbage\n\n{"method":"vm.list","id":4}\r\n')
rs = lines(p, 4)
assert [x.get("id") for x in rs] == [1, 2, None, 4], rs
assert rs[0]["ok"] and not rs[1]["ok"] and not rs[2]["ok"] and rs[3]["vms"] == [], rs
h = conn()                                      # request then half-close
h.sendall(b'{"method":"agent.ping","id":9}')
h.shutdown(socket.SHUT_WR)
(resp,) = lines(h, 1)
assert resp["ok"] and resp["id"] == 9, resp
for s in (stalled, idle, p, h):
    s.close()
print("clients ok")
EOF
	ok "clients" python3 "$T/clients.py" "$T/a.sock" "$KVMIG"
else
	echo "note: python3 not found; the multi-client check did not run"
fi

log "a second agent on a live socket is refused"
bad "second agent" 1 "another agent already serves $T/a.sock" timeout 10 "$KVMIGD" --control "$T/a.sock"
ok "first agent still answers" kv a agent ping

log "a file that is not a socket is left alone"
echo data >"$T/file.sock"
bad "agent on a regular file" 1 "not a socket" timeout 10 "$KVMIGD" --control "$T/file.sock"
[ "$(cat "$T/file.sock")" = data ] || fail "kvmigd touched a regular file"

log "a stale socket is replaced"
start_agent b
kill -KILL "${AGENT_PID[b]}"
{ wait "${AGENT_PID[b]}"; } 2>/dev/null
unset "AGENT_PID[b]"
[ -S "$T/b.sock" ] || fail "no stale socket after SIGKILL"
bad "dead agent" 1 "cannot reach agent" kv b agent ping
start_agent b
grep -q "replacing stale socket" "$T/b.log" || fail "agent b did not say it replaced the stale socket"

log "clean shutdown"
stop_agent a TERM
stop_agent b INT
echo "PASS: $E2E_NAME"
