#!/bin/bash
# SPDX-License-Identifier: MIT
# postcopy: post-copy migration between two agents on loopback (needs
# /dev/kvm, else exit 77): the guest moves first, its memory after, on
# demand (userfaultfd at the destination).
#
#   matrix: memcheck, seqdirty, randdirty x 1 and 2 vCPUs (each pair once), --postcopy
#     (after the first full round) and --postcopy=now, over TCP and TLS,
#     mostly with --verify, once with --parallel 2: the job completed in post-copy (postcopy.active,
#     pages pushed or requested), verified when asked, the destination
#     runs the VM and its progress grows past the last value read at the
#     source, memcheck's errors stay 0.
#   a guest pre-copy cannot move (1 ms of downtime allowed: one page at the
#     cap): without --postcopy the move fails and the guest runs on; with
#     --postcopy it completes.
#   --postcopy=manual and `kvmig job postcopy`: pre-copy until the switch.
#   the link cut during post-copy (tests/helpers/tcpcut.py resets every
#     relayed connection): both sides wait (source postcopy-paused, the
#     destination's VM in state postcopy with link "lost" and pages
#     missing), then `kvmig job resume NAME --to URI` finishes it: 0
#     errors, digest verified, 1 reconnect. Again with
#     --postcopy-reconnect: the source reconnects by itself once the
#     relay heals.
#   the source agent killed (SIGKILL) during post-copy: the destination
#     reports the guest as waiting for pages (state postcopy, link lost,
#     pages missing) and never claims success; `vm stop` there gives it
#     up and reports the pages lost; its agent still stops cleanly.
#
# Nothing depends on guest or host speed. Only randdirty honours rate=;
# memcheck and seqdirty run flat out. Where pre-copy must not converge, the
# downtime allowed (1 ms) is below one page at the --bandwidth cap, so it
# cannot at any guest speed; elsewhere post-copy needs no convergence, and
# each guest has touched its working set before it moves; "during
# post-copy" is a state the test reads (status postcopy with pages still
# missing), and each cut is made while the capped push still has seconds
# of pages to send.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || skip "the openssl CLI is not installed (certificates)"
command -v python3 >/dev/null || skip "python3 is not installed (tests/helpers/tcpcut.py)"
C=$T/certs
sh "$(dirname "$0")/../helpers/mkcerts.sh" "$C" || fail "mkcerts.sh failed"
TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}

start_agent src --tls-dir "$C/good"
need_kvm src "post-copy migration"
start_agent dst --listen tcp:127.0.0.1:0 --listen tls:127.0.0.1:0 --tls-dir "$C/good"
kv dst agent version --json >"$T/ver.json" || fail "agent version"
TCP_URI=$(jq -r '.migrate_uris[] | select(startswith("tcp://"))' "$T/ver.json")
TLS_URI=$(jq -r '.migrate_uris[] | select(startswith("tls://"))' "$T/ver.json")
[[ $TCP_URI == tcp://127.0.0.1:* && $TLS_URI == tls://127.0.0.1:* ]] ||
	fail "dst's migrate_uris: $(cat "$T/ver.json")"

job_field() {	# VM FILTER: of job info on src
	kv src job info "$1" --json | jq -er "$2"
}
job_is() {	# VM STATUS
	[ "$(job_field "$1" .status 2>/dev/null)" = "$2" ]
}
in_postcopy() {	# VM: the source pushes and pages are still missing
	job_is "$1" postcopy && [ "$(job_field "$1" .postcopy.pages_missing)" -gt 0 ]
}
dst_pc() {	# VM FILTER VALUE: the destination's postcopy object
	[ "$(vm_field dst "$1" ".postcopy$2" 2>/dev/null)" = "$3" ]
}

# VM: it left the source, runs at dst, progresses, and memcheck is clean
moved() {
	local p
	gone src "$1" || fail "$1: the source still has it"
	wait_until "$TIMEOUT" "$1 to run at dst" state_is dst "$1" running
	p=$(counter dst "$1" progress)
	[ "$p" -ge "${LAST[$1]}" ] || fail "$1: progress went back from ${LAST[$1]} to $p"
	wait_until "$TIMEOUT" "$1 progress > $p at dst" grows dst "$1" progress "$p"
	[ "$(counter dst "$1" errors)" = 0 ] || fail "$1: guest errors at dst"
}

declare -A LAST=()
# NAME GUEST VCPUS URI MODE VERIFY [OPTION...]: start, migrate in post-copy, check, stop
pc_move() {
	local n=$1 g=$2 v=$3 uri=$4 mode=$5 verify=$6 st
	shift 6
	ok "start $n" kv src vm start "$n" --guest "$g,workset=8M,rate=2000" --mem 64M --vcpus "$v"
	# one pass over the working set: its pages hold data before pre-copy reads them
	wait_until "$TIMEOUT" "$n to touch its working set" grows src "$n" progress 2048
	LAST[$n]=$(counter src "$n" progress)
	run kv src migrate "$n" --to "$uri" --postcopy"$mode" $verify --bandwidth 4 \
		--max-downtime 300 --json "$@"
	[ "$RC" = 0 ] || fail "$n ($g, $v vCPU, $uri, --postcopy$mode): exit $RC: $(cat "$ERR")"
	st=$OUT
	jq -e '.status == "completed" and .postcopy.active == true and
		(.postcopy.pages_pushed + .postcopy.requests) > 0 and .postcopy.pages_missing == 0 and
		.postcopy.bytes_after_switchover > 0' "$st" >/dev/null ||
		fail "$n: not a completed post-copy: $(jq -c '{status,postcopy}' "$st")"
	if [ -n "$verify" ]; then
		jq -e '.verified == true' "$st" >/dev/null || fail "$n: digest not verified"
	fi
	if [ "$mode" = "" ]; then
		# after one full round: the bulk round ran, then the switch
		jq -e '.dirty_sync_count >= 2' "$st" >/dev/null ||
			fail "$n: --postcopy switched before the first full round"
	fi
	moved "$n"
	echo "   $n ($g, $v vCPU, ${uri%%:*}, --postcopy$mode): $(jq -c '{total_ms,downtime_ms,
		r: .postcopy.requests, pushed: .postcopy.pages_pushed,
		p50: .postcopy.fault_latency_us_p50, p99: .postcopy.fault_latency_us_p99,
		blocked: .postcopy.blocked_ms}' "$st")"
	ok "stop $n at dst" kv dst vm stop "$n"
}

echo "== matrix"
pc_move a1 memcheck 1 "$TCP_URI" "" --verify
pc_move a2 seqdirty 2 "$TLS_URI" "=now" --verify
pc_move a3 randdirty 1 "$TCP_URI" "=now" --verify
pc_move a4 memcheck 2 "$TLS_URI" "=now" ""
pc_move a5 randdirty 2 "$TLS_URI" "" --verify
pc_move a6 memcheck 2 "$TCP_URI" "" --verify --parallel 2
pc_move a7 seqdirty 1 "$TCP_URI" "" --verify

echo "== a guest pre-copy cannot move: 16 MiB/s of dirtying over a 4 MiB/s link"
ok "start hot" kv src vm start hot --guest memcheck,workset=16M,rate=4096 --mem 64M
wait_until "$TIMEOUT" "hot to touch its working set" grows src hot progress 4096
# 1 ms of downtime allowed: pre-copy alone gives up, whatever the guest's speed
run kv src migrate hot --to "$TCP_URI" --bandwidth 4 --max-downtime 1 --max-iterations 3 --json
[ "$RC" = 1 ] || fail "hot without --postcopy: exit $RC, expected 1 (no convergence)"
jq -e '.status == "failed"' "$OUT" >/dev/null || fail "hot: $(jq -c '{status,error}' "$OUT")"
wait_until "$TIMEOUT" "hot to run on at the source" state_is src hot running
echo "ok: pre-copy alone cannot move hot: $(jq -r .error "$OUT")"
LAST[hot]=$(counter src hot progress)
run kv src migrate hot --to "$TCP_URI" --bandwidth 4 --max-downtime 1 --max-iterations 30 \
	--postcopy --verify --json
[ "$RC" = 0 ] || fail "hot: exit $RC: $(cat "$ERR")"
jq -e '.status == "completed" and .verified and .postcopy.active' "$OUT" >/dev/null ||
	fail "hot: $(jq -c '{status,error,postcopy}' "$OUT")"
moved hot
ok "stop hot" kv dst vm stop hot

echo "== --postcopy=manual, then kvmig job postcopy"
ok "start man" kv src vm start man --guest memcheck,workset=8M,rate=4096 --mem 64M
wait_until "$TIMEOUT" "man to touch its working set" grows src man progress 2048
LAST[man]=$(counter src man progress)
# 1 ms of downtime allowed (one page at 4 MiB/s): pre-copy cannot converge however
# slowly the guest runs, so only `job postcopy` ends it
ok "migrate man (detached)" kv src migrate man --to "$TCP_URI" --bandwidth 4 --postcopy=manual \
	--max-downtime 1 --max-iterations 0 --detach
wait_until "$TIMEOUT" "man's pre-copy to reach round 1" \
	bash -c "[ \"\$($KVMIG --agent $T/src.sock job info man --json | jq .dirty_sync_count)\" -ge 1 ]"
job_is man active || fail "man: --postcopy=manual switched by itself: $(job_field man .status)"
ok "job postcopy man" kv src job postcopy man
bad "job postcopy man twice" 1 "already" kv src job postcopy man
wait_until "$TIMEOUT" "man to complete" job_is man completed
[ "$(job_field man .postcopy.active)" = true ] || fail "man: completed without post-copy"
moved man
ok "stop man" kv dst vm stop man

echo "== the link cut during post-copy, then job resume --to"
python3 "$(dirname "$0")/../helpers/tcpcut.py" "$T/cut.port" 127.0.0.1 "${TCP_URI##*:}" \
	2>"$T/cut.log" &
CUT=$!
trap 'kill $CUT 2>/dev/null; cleanup' EXIT	# lib.sh's cleanup stops the agents
wait_until 10 "tcpcut to listen" test -s "$T/cut.port"
RELAY=tcp://127.0.0.1:$(cat "$T/cut.port")
cut_count() { grep -c '^tcpcut: cut' "$T/cut.log"; }
cut_above() { [ "$(cut_count)" -gt "$1" ]; }	# N: the relay cut more than N times

ok "start cut" kv src vm start cut --guest memcheck,workset=16M,rate=4000 --mem 64M --vcpus 2
wait_until "$TIMEOUT" "cut to touch its working set" grows src cut progress 4096
LAST[cut]=$(counter src cut progress)
ok "migrate cut via the relay" kv src migrate cut --to "$RELAY" --bandwidth 2 --postcopy=now \
	--verify --detach
wait_until "$TIMEOUT" "cut to be in post-copy" in_postcopy cut
kill -USR1 $CUT
wait_until 10 "the relay to cut" cut_above 0
wait_until "$TIMEOUT" "the source to wait for a resume" job_is cut postcopy-paused
wait_until "$TIMEOUT" "the destination to see the link lost" dst_pc cut .link lost
state_is dst cut postcopy || fail "cut: destination state $(vm_field dst cut .state)"
[ "$(vm_field dst cut .postcopy.pages_missing)" -gt 0 ] || fail "cut: nothing missing at dst?"
job_field cut .error | grep -qi "link lost" || fail "cut: no reason in job info: $(job_field cut .error)"
ok "resume to a closed port (it fails there, later)" kv src job resume cut --to tcp://127.0.0.1:1
wait_until "$TIMEOUT" "the failed resume to be reported" \
	bash -c "$KVMIG --agent $T/src.sock job info cut --json | jq -r .error | grep -q 'resume over tcp://127.0.0.1:1 failed'"
job_is cut postcopy-paused || fail "cut: a failed resume ended the job: $(job_field cut .status)"
ok "resume cut directly" kv src job resume cut --to "$TCP_URI"
wait_until "$TIMEOUT" "cut to complete" job_is cut completed
jq -e '.verified == true and .postcopy.reconnects == 1' <(kv src job info cut --json) >/dev/null ||
	fail "cut: $(kv src job info cut --json | jq -c '{verified,postcopy}')"
moved cut
ok "stop cut" kv dst vm stop cut

echo "== the link cut, and --postcopy-reconnect"
kill -USR2 $CUT
ok "start auto" kv src vm start auto --guest memcheck,workset=16M,rate=4000 --mem 64M
wait_until "$TIMEOUT" "auto to touch its working set" grows src auto progress 4096
LAST[auto]=$(counter src auto progress)
ok "migrate auto via the relay" kv src migrate auto --to "$RELAY" --bandwidth 2 --postcopy=now \
	--postcopy-reconnect 60 --verify --detach
wait_until "$TIMEOUT" "auto to be in post-copy" in_postcopy auto
n=$(cut_count)
kill -USR1 $CUT
wait_until 10 "the relay to cut" cut_above "$n"
wait_until "$TIMEOUT" "the destination to see the link lost" dst_pc auto .link lost
kill -USR2 $CUT
wait_until "$TIMEOUT" "auto to complete by itself" job_is auto completed
[ "$(job_field auto .postcopy.reconnects)" -ge 1 ] || fail "auto: no reconnect counted"
[ "$(job_field auto .verified)" = true ] || fail "auto: digest not verified"
moved auto
ok "stop auto" kv dst vm stop auto

echo "== the source agent killed during post-copy"
ok "start lost" kv src vm start lost --guest memcheck,workset=16M,rate=4000 --mem 64M
wait_until "$TIMEOUT" "lost to touch its working set" grows src lost progress 4096
ok "migrate lost" kv src migrate lost --to "$TCP_URI" --bandwidth 1 --postcopy=now --detach
wait_until "$TIMEOUT" "lost to be in post-copy" in_postcopy lost
kill -KILL "${AGENT_PID[src]}"
wait "${AGENT_PID[src]}" 2>/dev/null
unset 'AGENT_PID[src]'
wait_until "$TIMEOUT" "the destination to see the link lost" dst_pc lost .link lost
state_is dst lost postcopy || fail "lost: destination state $(vm_field dst lost .state)"
missing=$(vm_field dst lost .postcopy.pages_missing)
[ "$missing" -gt 0 ] || fail "lost: the destination reports nothing missing"
grep -q "VM 'lost' migrated in" "$T/dst.log" && fail "lost: the destination claims the migration succeeded"
grep -q "VM 'lost': post-copy done" "$T/dst.log" && fail "lost: the destination claims post-copy is done"
echo "   the destination waits for $missing pages; state postcopy, link lost"
# only the user gives it up there: vm stop says what is lost
ok "vm stop lost at dst (gives the post-copy up)" kv dst vm stop lost --json
jq -e '.pages_lost > 0' "$OUT" >/dev/null || fail "lost: vm stop did not report the lost pages"
wait_until "$TIMEOUT" "lost to be gone at dst" gone dst lost
grep -q "VM 'lost' is lost in post-copy: .*pages never arrived" "$T/dst.log" ||
	fail "lost: the destination did not say what was lost"
stop_agent dst
echo "PASS: postcopy"
