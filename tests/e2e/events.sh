#!/bin/bash
# SPDX-License-Identifier: MIT
# events: the agent's event stream (events.subscribe, kvmig events) while
# several jobs run at once (needs /dev/kvm, else exit 77).
#
#   three subscribers on the source agent (two `kvmig events --json`, one
#     human), subscribed before any job (the agent's subscriber count says
#     so), and one `--json` on the destination agent;
#   two clients start two migrations at once (memcheck and randdirty), then a
#     --postcopy=now move, then a job that cannot converge, cancelled once
#     its bulk round is over (a fourth subscriber, --vm g4 --count 2, must
#     exit 0 by itself after g4's first two events);
#   then: both --json subscribers hold exactly the same lines; seq strictly
#     increases; the two concurrent jobs' events interleave; each VM's
#     events go started, round (numbers 0, 1, 2, ...), switchover
#     (stop-and-copy), completed, whose figures are the job's final
#     statistics; the post-copy move goes started, switchover (postcopy),
#     postcopy, completed; the cancelled job ends with cancelled and its
#     reason; every event names its VM and destination; the human lines
#     have the documented shape; the destination reports incoming-started
#     then incoming-arrived for each VM that arrived, incoming-failed for
#     the cancelled one; the subscribers exit 1 saying the stream closed
#     when the agent stops.
#
# Nothing depends on guest speed: randdirty guests are paced (rate=) under
# each link cap (--bandwidth), the cancelled one paced far above its cap
# with 1 ms allowed; memcheck ignores rate= and runs flat out, so its moves
# either allow a downtime that covers its whole working set or are
# post-copies; waits poll the subscribers' files and the agents.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip "python3 is not installed (tests/helpers/tcpcut.py)"
TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}
DT=${KVMIG_E2E_DOWNTIME:-2000}
start_agent src
need_kvm src "job events"
start_agent dst --listen tcp:127.0.0.1:0
URI=$(kv dst agent version --json | jq -r .migrate_uri)
[[ $URI == tcp://127.0.0.1:* ]] || fail "dst's migrate_uri is '$URI'"

ok "events --help" kv src events --help
grep -q -- "--count N" "$OUT" && grep -q -- "--vm NAME" "$OUT" || fail "events --help: $(cat "$OUT")"
bad "events --count 0" 2 "invalid --count" kv src events --count 0
bad "events --vm with a bad name" 1 "events.subscribe: .*name" kv src events --vm '-x'
bad "events on no agent" 1 "cannot reach agent" "$KVMIG" --agent "$T/none.sock" events

subscribers_are() {	# AGENT N
	[ "$(kv "$1" agent ping --json | jq .subscribers)" = "$2" ]
}
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; cleanup' EXIT	# lib.sh's cleanup stops the agents
"$KVMIG" --agent "$T/src.sock" events --json >"$T/s1.json" 2>"$T/s1.err" &
S1=$!
"$KVMIG" --agent "$T/src.sock" events --json >"$T/s2.json" 2>"$T/s2.err" &
S2=$!
"$KVMIG" --agent "$T/src.sock" events >"$T/s3.txt" 2>"$T/s3.err" &
S3=$!
"$KVMIG" --agent "$T/dst.sock" events --json >"$T/d.json" 2>"$T/d.err" &
SD=$!
PIDS+=("$S1" "$S2" "$S3" "$SD")
wait_until 10 "three subscribers on src" subscribers_are src 3
wait_until 10 "one subscriber on dst" subscribers_are dst 1
echo "ok: subscribed: 3 on src, 1 on dst"

start_vm() {	# NAME GUEST
	ok "start $1" kv src vm start "$1" --mem 64M --guest "$2"
}
start_vm g1 memcheck,workset=4M,rate=512
start_vm g2 randdirty,workset=4M,rate=512,hot=0
start_vm g3 memcheck,workset=4M,rate=512
start_vm g4 randdirty,workset=4M,rate=8192,hot=0
start_vm g5 memcheck,workset=8M,rate=2000
for v in g1 g2 g3 g4 g5; do
	wait_until "$TIMEOUT" "$v to write 256 pages" grows src "$v" progress 256
done

echo "== two clients, two migrations at once"
# g2 (randdirty, paced): 2 MiB/s of dirtying under an 8 MiB/s cap and 50 ms
# allowed: a few rounds. g1 is memcheck, which runs flat out (rate= paces
# randdirty only): 1 s allowed covers its whole 4 MiB at the cap (500 ms),
# so it converges at any guest speed.
"$KVMIG" --agent "$T/src.sock" migrate g1 --to "$URI" --bandwidth 8 --max-downtime 1000 \
	--verify --json >"$T/m1.json" 2>"$T/m1.err" &
M1=$!
"$KVMIG" --agent "$T/src.sock" migrate g2 --to "$URI" --bandwidth 8 --max-downtime 50 \
	--json >"$T/m2.json" 2>"$T/m2.err" &
M2=$!
PIDS+=("$M1" "$M2")
wait "$M1" || fail "migrate g1: $(cat "$T/m1.err")"
wait "$M2" || fail "migrate g2: $(cat "$T/m2.err")"
echo "ok: g1 and g2 migrated"

echo "== a post-copy move"
ok "migrate g3 --postcopy=now" kv src migrate g3 --to "$URI" --bandwidth 8 --postcopy=now --json

echo "== a cancelled job"
"$KVMIG" --agent "$T/src.sock" events --vm g4 --count 2 --json >"$T/s4.json" 2>"$T/s4.err" &
S4=$!
PIDS+=("$S4")
wait_until 10 "the --count subscriber" subscribers_are src 4
ok "migrate g4 (detached, cannot converge)" kv src migrate g4 --to "$URI" --bandwidth 2 \
	--max-downtime 1 --max-iterations 0 --timeout 200 --detach
has_event() {	# FILE VM EVENT
	jq -e --arg v "$2" --arg e "$3" 'select(.vm == $v and .event == $e)' "$1" | grep -q .
}
wait_until "$TIMEOUT" "g4's bulk round to end" has_event "$T/s1.json" g4 round
ok "job cancel g4" kv src job cancel g4
wait_until "$TIMEOUT" "g4's cancelled event" has_event "$T/s1.json" g4 cancelled
wait_until "$TIMEOUT" "g4's cancelled event for the other subscriber" has_event "$T/s2.json" g4 cancelled
wait_until "$TIMEOUT" "g4 to run at the source again" state_is src g4 running
wait_until "$TIMEOUT" "the --count 2 subscriber to exit" bash -c "! kill -0 $S4"
wait "$S4" || fail "events --count 2 exited with status $?: $(cat "$T/s4.err")"
[ "$(jq -s -c 'map(.event)' "$T/s4.json")" = '["started","round"]' ] ||
	fail "events --vm g4 --count 2: $(cat "$T/s4.json")"
echo "ok: events --vm g4 --count 2 printed started and round, then exited 0"

echo "== a post-copy whose link breaks, then job resume"
python3 "$(dirname "$0")/../helpers/tcpcut.py" "$T/cut.port" 127.0.0.1 "${URI##*:}" \
	2>"$T/cut.log" &
PIDS+=("$!")
CUT=$!
wait_until 10 "tcpcut to listen" test -s "$T/cut.port"
RELAY=tcp://127.0.0.1:$(cat "$T/cut.port")
in_postcopy() {	# VM: the source pushes and pages are still missing
	local j
	j=$(kv src job info "$1" --json) &&
		jq -e '.status == "postcopy" and .postcopy.pages_missing > 0' <<<"$j" >/dev/null
}
job_is() { [ "$(kv src job info "$1" --json | jq -r .status)" = "$2" ]; }
ok "migrate g5 via the relay" kv src migrate g5 --to "$RELAY" --bandwidth 2 --postcopy=now \
	--verify --detach
wait_until "$TIMEOUT" "g5 to be in post-copy" in_postcopy g5
kill -USR1 "$CUT"
wait_until "$TIMEOUT" "g5's postcopy-paused event" has_event "$T/s1.json" g5 postcopy-paused
ok "job resume g5 --to the destination" kv src job resume g5 --to "$URI"
wait_until "$TIMEOUT" "g5's completed event" has_event "$T/s1.json" g5 completed
wait_until "$TIMEOUT" "g5's completed event for the other subscriber" has_event "$T/s2.json" g5 completed
for v in g1 g2 g3 g5; do
	wait_until "$TIMEOUT" "$v's incoming-arrived at dst" has_event "$T/d.json" "$v" incoming-arrived
done
wait_until "$TIMEOUT" "g4's incoming-failed at dst" has_event "$T/d.json" g4 incoming-failed

echo "== the subscribers end when the agents stop"
stop_agent src
stop_agent dst
for p in "$S1" "$S2" "$S3" "$SD"; do
	wait "$p"
	st=$?
	[ "$st" = 1 ] || fail "a subscriber (pid $p) exited with $st after its agent stopped"
done
for f in s1 s2 s3 d; do
	grep -q "closed the event stream" "$T/$f.err" || fail "$f: $(cat "$T/$f.err")"
done
echo "ok: every subscriber exited 1: $(head -n 1 "$T/s1.err")"

echo "== what the subscribers saw"
[ -s "$T/s1.json" ] || fail "the first subscriber saw nothing"
cmp -s "$T/s1.json" "$T/s2.json" ||
	fail "the two subscribers differ: $(diff "$T/s1.json" "$T/s2.json" | head -n 10)"
echo "ok: both --json subscribers hold the same $(wc -l <"$T/s1.json") events in the same order"
EV=$(jq -s -c . "$T/s1.json") || fail "s1.json is not JSON lines"
jqe() {	# DESC FILTER: on every source event, as an array
	jq -e "$2" <<<"$EV" >/dev/null || fail "$1: $(jq -c "$3" <<<"$EV" 2>/dev/null | head -c 2000)"
}
jqe "seq strictly increases" \
	'[.[].seq] as $s | all(range(1; $s | length); $s[.] > $s[. - 1])' '[.[].seq]'
jqe "every event names its VM, destination, status and time" \
	'all(.[]; (.vm | test("^g[1-5]$")) and (.to == "'"$URI"'" or (.vm == "g5" and .to == "'"$RELAY"'")) and
		(.status | type == "string") and .time_ms > 1000000000000)' '.'
events_of() {	# VM: its event types, space-separated
	jq -r --arg v "$1" '[.[] | select(.vm == $v) | .event] | join(" ")' <<<"$EV"
}
rounds_of() {	# VM: its round numbers, space-separated
	jq -r --arg v "$1" '[.[] | select(.vm == $v and .event == "round") | .round] | join(" ")' <<<"$EV"
}
for v in g1 g2; do
	e=$(events_of "$v")
	[[ $e =~ ^started( round)+\ switchover\ completed$ ]] || fail "$v's events: $e"
	r=$(rounds_of "$v")
	[ "$r" = "$(seq -s ' ' 0 $(($(wc -w <<<"$r") - 1)))" ] || fail "$v's rounds: $r"
	jq -e --arg v "$v" '([.[] | select(.vm == $v and .event == "round")] | length) as $n |
		[.[] | select(.vm == $v and .event == "switchover")][0] |
		.mode == "stop-and-copy" and .status == "device" and .rounds == $n' <<<"$EV" >/dev/null ||
		fail "$v's switchover: $(jq -c --arg v "$v" '.[] | select(.vm == $v and .event == "switchover")' <<<"$EV")"
	jq -e --arg v "$v" '[.[] | select(.vm == $v and .event == "round")] |
		all(.transferred_bytes > 0 and (.remaining_bytes | type == "number") and
		    (.mbps | type == "number") and (.expected_downtime_ms | type == "number") and
		    (.dirty_pages_rate | type == "number") and (.throttle_pct | type == "number"))' \
		<<<"$EV" >/dev/null || fail "$v's round events lack their numbers"
	# the completed event carries the job's final statistics
	m=$T/m${v#g}.json
	jq -e --arg v "$v" --slurpfile m "$m" '[.[] | select(.vm == $v and .event == "completed")][0] |
		.status == "completed" and .total_ms == $m[0].total_ms and
		.downtime_ms == $m[0].downtime_ms and .transferred_bytes == $m[0].transferred_bytes and
		.verified == $m[0].verified' <<<"$EV" >/dev/null ||
		fail "$v's completed event is not its final statistics: $(jq -c --arg v "$v" '.[] |
			select(.vm == $v and .event == "completed")' <<<"$EV") vs $(jq -c '{total_ms,
			downtime_ms, transferred_bytes, verified}' "$m")"
	echo "ok: $v: $e (rounds $r)"
done
jqe "g1 verified" '[.[] | select(.vm == "g1" and .event == "completed")][0].verified == true' '.'
# the jobs ran at once: each started before the other completed
jqe "the two jobs' events interleave" \
	'(to_entries | map(select(.value.vm == "g1" or .value.vm == "g2")) |
	  (map(select(.value.event == "started")) | map(.key) | max) <
	  (map(select(.value.event == "completed")) | map(.key) | min))' \
	'[.[] | select(.vm == "g1" or .vm == "g2") | "\(.vm) \(.event)"]'
e=$(events_of g3)
[ "$e" = "started switchover postcopy completed" ] || fail "g3's events: $e"
jqe "g3's switchover is post-copy's, then the guest runs there" \
	'[.[] | select(.vm == "g3")] | (.[1].mode == "postcopy") and .[1].rounds == 0 and
	 (.[2].status == "postcopy") and
	 (.[2].downtime_ms | type == "number") and .[2].remaining_bytes > 0' '[.[] | select(.vm == "g3")]'
echo "ok: g3: $e"
e=$(events_of g4)
[[ $e =~ ^started( round)+\ cancelled$ ]] || fail "g4's events: $e"
jqe "g4 cancelled with its reason" \
	'[.[] | select(.vm == "g4" and .event == "cancelled")][0] |
	 .status == "cancelled" and (.error | test("cancelled by the user"))' \
	'[.[] | select(.vm == "g4")][-1]'
echo "ok: g4: started, $(rounds_of g4 | wc -w) round(s), cancelled: $(jq -r '[.[] | select(.vm == "g4")][-1].error' <<<"$EV")"

e=$(events_of g5)
[ "$e" = "started switchover postcopy postcopy-paused resumed completed" ] || fail "g5's events: $e"
jqe "g5: paused with the reason, resumed to the new URI, completed verified" \
	'[.[] | select(.vm == "g5")] | (.[3].error | test("link lost")) and .[3].remaining_bytes > 0 and
	 .[3].status == "postcopy-paused" and .[4].reconnects == 1 and .[4].status == "postcopy" and
	 .[4].to == "'"$URI"'" and .[5].verified == true' '[.[] | select(.vm == "g5")]'
echo "ok: g5: $e ($(jq -r '[.[] | select(.vm == "g5" and .event == "postcopy-paused")][0].error' <<<"$EV"))"

# the human lines
grep -Eq '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} g1 started: to tcp://' "$T/s3.txt" &&
	grep -Eq '^[0-9:.]+ g1 round 0: [0-9.]+ MiB sent, [0-9.]+ MiB dirty( at [0-9.]+ MiB/s)?, link [0-9.]+ MiB/s, expected downtime [0-9]+ ms' "$T/s3.txt" &&
	grep -Eq '^[0-9:.]+ g1 switchover \(stop-and-copy\) after [1-9][0-9]* pre-copy rounds?: the guest is paused' "$T/s3.txt" &&
	grep -Eq '^[0-9:.]+ g3 switchover \(postcopy\) after 0 pre-copy rounds' "$T/s3.txt" &&
	grep -Eq '^[0-9:.]+ g1 completed in [0-9]+ ms: downtime [0-9]+ ms, [0-9.]+ MiB sent, RAM digest verified$' "$T/s3.txt" &&
	grep -Eq '^[0-9:.]+ g3 post-copy: the guest runs at the destination' "$T/s3.txt" &&
	grep -Eq '^[0-9:.]+ g4 cancelled after [0-9]+ ms: cancelled by the user' "$T/s3.txt" ||
	fail "the human lines: $(head -c 3000 "$T/s3.txt")"
[ "$(wc -l <"$T/s3.txt")" = "$(wc -l <"$T/s1.json")" ] ||
	fail "the human subscriber saw $(wc -l <"$T/s3.txt") events, the --json ones $(wc -l <"$T/s1.json")"
echo "ok: the human lines, e.g.: $(grep ' g1 round 0' "$T/s3.txt")"

# the destination's side
DEV=$(jq -s -c . "$T/d.json") || fail "d.json is not JSON lines"
for v in g1 g2 g3 g5; do
	e=$(jq -r --arg v "$v" '[.[] | select(.vm == $v) | .event] | join(" ")' <<<"$DEV")
	[ "$e" = "incoming-started incoming-arrived" ] || fail "dst: $v's events: $e"
done
jq -e '[.[] | select(.vm == "g3" and .event == "incoming-arrived")][0].postcopy == true' \
	<<<"$DEV" >/dev/null || fail "dst: g3 did not arrive in post-copy"
e=$(jq -r '[.[] | select(.vm == "g4") | .event] | join(" ")' <<<"$DEV")
[ "$e" = "incoming-started incoming-failed" ] || fail "dst: g4's events: $e"
jq -e '[.[].seq] as $s | all(range(1; $s | length); $s[.] > $s[. - 1])' <<<"$DEV" >/dev/null ||
	fail "dst: seq does not increase"
echo "ok: the destination: incoming-started and incoming-arrived for g1-g3 and g5, incoming-failed for g4"
echo "PASS: events"
