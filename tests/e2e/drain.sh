#!/bin/bash
# SPDX-License-Identifier: MIT
# drain: kvmig drain empties one agent onto two others, on loopback (needs
# /dev/kvm, else exit 77 with the reason).
#
#   --dry-run: a plan for every VM, and nothing moves.
#   six guests of mixed sizes and kinds (memcheck, seqdirty, randdirty,
#     idle; 1 and 2 vCPUs; one paused), --max-parallel 2, each move capped
#     by --bandwidth so that the drain lasts seconds on any host, with a
#     downtime allowed that covers the unpaced guests' whole working set
#     (so each move converges at any guest speed): all arrive
#     (the paused one paused), every memcheck reports 0 errors, progress
#     grows at the destination, the report lists each VM with where it went,
#     the source is empty, exit status 0; at most 2 moves ran at once (the
#     report's peak_parallel, and the source agent's job events, read by a
#     `kvmig events --json` subscriber).
#   a destination killed (SIGKILL) while a move to it runs: that VM runs on
#     at the source, is retried on the other destination and arrives there
#     with 0 errors; the report names the failed attempt.
#   room (kvmigd --guest-mem 48M): agent.version's mem_free_bytes says so, a
#     vm start beyond it is refused; a destination without room is not
#     chosen; with no destination that has room the VM stays running at the
#     source, the report says why and the exit status is 1.
#   bad usage: no --from, an agent that is no socket, an unknown --order.
#
# Nothing waits on time: the destination is killed once the source's job
# info shows a move to it under way (at 2 MiB/s a 64 MiB guest with an 8 MiB
# working set takes seconds whatever the host's speed), and every check
# re-reads its condition.
. "$(dirname "$0")/lib.sh"

TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}

start_agent src
need_kvm src "kvmig drain"
start_agent d1 --listen tcp:127.0.0.1:0
start_agent d2 --listen tcp:127.0.0.1:0
SRC=$T/src.sock D1=$T/d1.sock D2=$T/d2.sock

start_vm() {	# NAME MEM VCPUS GUEST
	ok "start $1" kv src vm start "$1" --mem "$2" --vcpus "$3" --guest "$4"
	wait_until "$TIMEOUT" "$1 progress > 0" grows src "$1" progress 0
}
declare -A WHERE=()
arrived() {	# VM STATE: at d1 or d2 in STATE, with progress growing and 0 errors
	local a p
	for a in d1 d2; do
		state_is "$a" "$1" "$2" && WHERE[$1]=$a
	done
	[ -n "${WHERE[$1]:-}" ] || fail "$1 is at neither destination in state $2"
	a=${WHERE[$1]}
	[ "$(counter "$a" "$1" errors)" = 0 ] || fail "$1: guest errors at $a"
	if [ "$2" = running ]; then
		p=$(counter "$a" "$1" progress)
		wait_until "$TIMEOUT" "$1 progress > $p at $a" grows "$a" "$1" progress "$p"
	fi
	echo "ok: $1 $2 at $a, 0 errors"
}

log "bad usage"
bad "no --from" 2 "usage: kvmig drain --from AGENT" "$KVMIG" drain --to "$D1"
bad "an agent that is not a socket path" 2 "'nowhere': no such agent in the inventory" \
	"$KVMIG" drain --from nowhere --to "$D1"
bad "unknown --order" 2 "invalid --order 'random'" "$KVMIG" drain --from "$SRC" --to "$D1" --order random
bad "a source that is a destination" 1 "is the source" "$KVMIG" drain --from "$SRC" --to "$SRC"

log "six guests"
# Every move converges whatever the guest's speed: randdirty is paced (rate=
# pages/s) well under the 16 MiB/s cap; memcheck and seqdirty run flat out,
# but the 2 s of downtime allowed covers their whole working set (4 MiB: 250 ms
# at the cap).
start_vm g1 64M 1 memcheck,workset=4M
start_vm g2 96M 1 seqdirty,workset=4M
start_vm g3 128M 2 randdirty,workset=8M,rate=500,hot=0
start_vm g4 32M 1 idle
start_vm g5 48M 2 memcheck,workset=4M
start_vm g6 64M 1 memcheck,workset=2M
ok "pause g6" kv src vm pause g6

ok "drain --dry-run" "$KVMIG" drain --from "$SRC" --to "$D1,$D2" --dry-run --json
jq_out '.dry_run == true and (.vms | length) == 6 and all(.vms[]; .result == "planned" and (.to | type) == "string")'
# smallest first: g4 (32M) leads, g3 (128M) is last
jq_out '.vms[0].name == "g4" and .vms[5].name == "g3"'
[ "$(kv src vm list --json | jq '.vms | length')" = 6 ] || fail "--dry-run moved something"
[ "$(kv d1 vm list --json | jq '.vms | length')" = 0 ] || fail "--dry-run: d1 got a VM"
ok "drain --dry-run (text)" "$KVMIG" drain --from "$SRC" --to "$D1,$D2" --dry-run
grep -q "nothing was moved (--dry-run)" "$OUT" || fail "dry-run text: $(cat "$OUT")"
echo "   $(head -n 1 "$OUT")"

# the source's job events, to count the moves running at once
kv src events --json >"$T/events.jsonl" 2>"$T/events.err" &
EVENTS=$!
subscribed() { [ "$(kv src agent ping --json | jq .subscribers)" -ge 1 ]; }
wait_until 20 "the event subscriber" subscribed
ok "drain six guests" "$KVMIG" drain --from "$SRC" --to "$D1,$D2" --max-parallel 2 --bandwidth 16 \
	--max-downtime 2000 --verify --json
cp "$OUT" "$T/drain1.json"
jq -e '.drained == true and .moved == 6 and .stayed == 0 and (.vms | length) == 6' "$T/drain1.json" \
	>/dev/null || fail "report: $(cat "$T/drain1.json")"
jq -e 'all(.vms[]; .result == "moved" and (.to == '"\"$D1\""' or .to == '"\"$D2\""') and
	.transferred_bytes > 0)' "$T/drain1.json" >/dev/null || fail "report: $(cat "$T/drain1.json")"
p=$(jq .peak_parallel "$T/drain1.json")
[ "$p" -ge 1 ] && [ "$p" -le 2 ] || fail "peak_parallel $p with --max-parallel 2"
echo "ok: report: $(jq -c '[.vms[] | {name, to: (.to | split("/") | last), downtime_ms}]' "$T/drain1.json"), peak $p"
[ "$(kv src vm list --json | jq '.vms | length')" = 0 ] || fail "the source is not empty"
# every move's end is in the events once the drain is over; at most 2 ran at once
ended6() { [ "$(jq -s '[.[] | select(.event == "completed")] | length' "$T/events.jsonl")" -ge 6 ]; }
wait_until 20 "6 completed events" ended6
kill $EVENTS 2>/dev/null; wait $EVENTS 2>/dev/null
most=$(jq -s 'reduce .[] as $e ({n: 0, max: 0, on: {}};
	if $e.event == "started" then .on[$e.vm] = true | .n = ([.on[] | select(.)] | length)
	elif ($e.event | IN("completed", "failed", "cancelled")) then .on[$e.vm] = false |
		.n = ([.on[] | select(.)] | length)
	else . end | .max = ([.max, .n] | max)) | .max' "$T/events.jsonl")
[ "$most" -ge 1 ] && [ "$most" -le 2 ] || fail "the events show $most moves at once (--max-parallel 2)"
echo "ok: the source's events: at most $most moves at once, $(grep -c . "$T/events.jsonl") events"
for g in g1 g2 g3 g4 g5; do arrived $g running; done
arrived g6 paused

log "a destination killed mid-drain"
# memcheck stamps its 4 MiB first (progress 1024); at 1 MiB/s round 0 takes 4 s,
# and 5 s of downtime allowed covers the whole working set: it converges at any
# guest speed, after seconds
start_vm h1 64M 1 memcheck,workset=4M
start_vm h2 64M 1 memcheck,workset=4M
wait_until "$TIMEOUT" "h1 to stamp its working set" grows src h1 progress 1024
wait_until "$TIMEOUT" "h2 to stamp its working set" grows src h2 progress 1024
"$KVMIG" drain --from "$SRC" --to "$D1,$D2" --max-parallel 2 --bandwidth 1 --max-downtime 5000 --json \
	>"$T/drain2.json" 2>"$T/drain2.err" &
DRAIN=$!
to_d1() {	# the VM whose move to d1 runs now
	local g
	for g in h1 h2; do
		kv src job info "$g" --json 2>/dev/null |
			jq -e --arg u "$(kv d1 agent version --json | jq -r .migrate_uri)" \
				'.status == "active" and .uri == $u' >/dev/null && { echo "$g"; return 0; }
	done
	return 1
}
wait_until "$TIMEOUT" "a move to d1 under way" to_d1
VICTIM=$(to_d1)
kill -KILL "${AGENT_PID[d1]}"
wait "${AGENT_PID[d1]}" 2>/dev/null
unset "AGENT_PID[d1]"
echo "ok: d1 killed while $VICTIM moved to it"
wait $DRAIN
RC=$?
[ "$RC" = 0 ] || fail "drain after a lost destination: exit $RC: $(cat "$T/drain2.err")"
jq -e --arg v "$VICTIM" --arg d2 "$D2" --arg d1 "$D1" '.drained == true and
	(.vms[] | select(.name == $v) | .to == $d2 and (.failed_attempts | length) == 1 and
	 .failed_attempts[0].to == $d1)' "$T/drain2.json" >/dev/null ||
	fail "report after d1 died: $(cat "$T/drain2.json")"
echo "ok: $VICTIM retried on d2: $(jq -c --arg v "$VICTIM" '.vms[] | select(.name == $v) | .failed_attempts' "$T/drain2.json")"
for g in h1 h2; do
	state_is d2 $g running || fail "$g is not running at d2"
	p=$(counter d2 $g progress)
	wait_until "$TIMEOUT" "$g progress > $p at d2" grows d2 $g progress "$p"
	[ "$(counter d2 $g errors)" = 0 ] || fail "$g: guest errors at d2"
done
echo "ok: h1 and h2 run on at d2, 0 errors"
log "room: --guest-mem"
start_agent d3 --listen tcp:127.0.0.1:0 --guest-mem 48M
D3=$T/d3.sock
[ "$(kv d3 agent version --json | jq .mem_free_bytes)" = $((48 << 20)) ] ||
	fail "d3 mem_free_bytes: $(kv d3 agent version --json | jq -c '{mem_free_bytes, limits}')"
bad "vm start beyond --guest-mem" 1 "needs 64 MiB, but this agent hosts at most 48 MiB of guest RAM" \
	kv d3 vm start toobig --mem 64M --guest idle
start_vm r1 64M 1 idle
ok "drain r1 to d3 or d2" "$KVMIG" drain --from "$SRC" --to "$D3,$D2" --json
jq -e --arg d2 "$D2" '.drained == true and .vms[0].name == "r1" and .vms[0].to == $d2' "$OUT" \
	>/dev/null || fail "r1's drain: $(cat "$OUT")"
[ "$(kv d3 vm list --json | jq '.vms | length')" = 0 ] || fail "d3 without room got a VM"
echo "ok: r1 went to d2, not to d3 (48 MiB free)"
start_vm r2 64M 1 idle
run "$KVMIG" drain --from "$SRC" --to "$D3" --json
[ "$RC" = 1 ] || fail "drain with no room anywhere: exit $RC, expected 1"
jq_out '.drained == false and .vms[0].result == "stayed" and
	(.vms[0].reason | test("no destination can take its 64 MiB.*has 48 MiB free"))'
state_is src r2 running || fail "r2 does not run at the source"
echo "ok: no room anywhere: r2 stays, exit 1: $(jq -r '.vms[0].reason' "$OUT")"
echo "PASS: drain"
