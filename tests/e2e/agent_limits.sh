#!/bin/bash
# SPDX-License-Identifier: MIT
# agent_limits: the limits of a kvmigd configured by --config FILE (needs
# /dev/kvm, else exit 77). Four agents on loopback:
#   dst   max_incoming 1 (its file also names a control socket and a
#         listen address; the --control of the command line wins)
#   dst2  no limits: a second destination
#   src   max_outgoing 1
#   src2  bandwidth 4 (MiB/s, the budget its outgoing jobs share)
#
#   - agent.version shows the file, the limits, the counts and the memory
#     (mem_total_bytes, mem_free_bytes, vms_mem_bytes the guests' RAM);
#   - max_outgoing 1: with one job running on src, a second migrate is
#     refused before it connects, naming the limit; its guest runs on;
#   - max_incoming 1: with one migration arriving at dst, a second one (from
#     src2) is refused at its HELLO with a message the source shows; the
#     guest runs on at its source with 0 errors and dst never lists it;
#   - the budget: a job alone gets min(its --bandwidth, budget) as its
#     bandwidth_limit (job info); a second job halves the budget for both;
#     when one ends the other gets its share back;
#   - once the running jobs are cancelled, the guests run at their sources
#     with 0 errors, and a migration to dst that is now within its limit
#     completes.
# Nothing depends on speed: the jobs that must keep running move a
# randdirty guest paced (rate=) far above the caps with 1 ms of downtime
# allowed, so they never converge; what is checked is the caps they were
# given, not the rates they reached.
. "$(dirname "$0")/lib.sh"

TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}
# a guest that keeps a migration going until the test ends it (as migrate_kvm)
ENDLESS_GUEST=randdirty,workset=4M,rate=8192,hot=0
ENDLESS="--max-downtime 1 --max-iterations 0 --timeout 200"
MIB=1048576

cat >"$T/dst.conf" <<EOF
# the destination: one migration arrives at a time
control = $T/not-this.sock   # the command line's --control wins
listen = tcp:127.0.0.1:0
max_incoming = 1
EOF
cat >"$T/src.conf" <<EOF
max_outgoing = 1
EOF
cat >"$T/src2.conf" <<EOF
bandwidth = 4	# MiB/s shared by the outgoing jobs
EOF

start_agent src --config "$T/src.conf"
need_kvm src "the agent's limits"
start_agent src2 --config "$T/src2.conf"
start_agent dst --config "$T/dst.conf"
start_agent dst2 --listen tcp:127.0.0.1:0
[ ! -e "$T/not-this.sock" ] || fail "dst serves the file's control socket, not --control's"
DST=$(kv dst agent version --json | jq -r .migrate_uri)
DST2=$(kv dst2 agent version --json | jq -r .migrate_uri)
[[ $DST == tcp://127.0.0.1:* ]] || fail "dst's migrate_uri is '$DST' (the file's listen)"

log "agent.version: the file, the limits, the counts, the memory"
ok "dst: agent version" kv dst agent version --json
jq_out ".config == \"$T/dst.conf\" and .limits == {\"max_incoming\":1,\"max_outgoing\":0,\"bandwidth_budget\":0,\"guest_mem_bytes\":0}
	and .incoming == 0 and .outgoing == 0 and .bandwidth_in_use == 0 and .vms_mem_bytes == 0
	and .mem_total_bytes > 0 and .mem_free_bytes > 0 and .mem_free_bytes <= .mem_total_bytes"
ok "src2: agent version" kv src2 agent version --json
jq_out ".limits.bandwidth_budget == $((4 * MIB)) and .limits.max_outgoing == 0"
ok "dst2: agent version" kv dst2 agent version --json
jq_out '.config == null and .limits == {"max_incoming":0,"max_outgoing":0,"bandwidth_budget":0,"guest_mem_bytes":0}'

job_status_is() {	# AGENT VM STATUS: job info says STATUS
	[ "$(kv "$1" job info "$2" --json 2>/dev/null | jq -r .status)" = "$3" ]
}
limit_is() {	# AGENT VM BYTES: job info's bandwidth_limit
	[ "$(kv "$1" job info "$2" --json 2>/dev/null | jq -r .bandwidth_limit)" = "$3" ]
}
start_vm() {	# AGENT NAME GUEST
	ok "$2: start at $1" kv "$1" vm start "$2" --mem 32M --guest "$3"
	wait_until "$TIMEOUT" "$2 progress > 0 at $1" grows "$1" "$2" progress 0
}
# runs_at AGENT NAME: the guest runs at AGENT, makes progress, 0 errors,
# and no destination has it
runs_at() {
	local p
	wait_until "$TIMEOUT" "$2 to run at $1" state_is "$1" "$2" running
	p=$(counter "$1" "$2" progress)
	wait_until "$TIMEOUT" "$2 progress > $p at $1" grows "$1" "$2" progress "$p"
	[ "$(counter "$1" "$2" errors)" = 0 ] || fail "$2: guest errors at $1"
	wait_until "$TIMEOUT" "dst to drop $2" gone dst "$2"
	wait_until "$TIMEOUT" "dst2 to drop $2" gone dst2 "$2"
	echo "   $2 runs at $1: progress $(counter "$1" "$2" progress), errors 0"
}

start_vm src a "$ENDLESS_GUEST"
start_vm src b memcheck,workset=2M
start_vm src2 c memcheck,workset=2M
start_vm src2 d "$ENDLESS_GUEST"
start_vm src2 e "$ENDLESS_GUEST"
ok "src2: agent version" kv src2 agent version --json
jq_out ".vms_mem_bytes == $((3 * 32 * MIB))"

log "one migration arrives at dst (max_incoming 1), one runs from src (max_outgoing 1)"
# shellcheck disable=SC2086 # ENDLESS is a list of options
ok "a: migrate --detach to dst (endless, --bandwidth 3)" kv src migrate a --to "$DST" --detach --bandwidth 3 $ENDLESS
wait_until "$TIMEOUT" "a to be incoming at dst" state_is dst a incoming
ok "dst: agent version" kv dst agent version --json
jq_out '.incoming == 1 and .outgoing == 0 and .vms_mem_bytes == 33554432'
ok "src: agent version" kv src agent version --json
jq_out '.outgoing == 1 and .incoming == 0'
# no budget at src: the cap is the job's own
wait_until "$TIMEOUT" "a's bandwidth_limit to be its --bandwidth" limit_is src a $((3 * MIB))

log "max_outgoing 1: a second job at src is refused before it connects"
bad "b: migrate beyond max_outgoing" 1 \
	"^kvmig: cannot migrate VM 'b': this agent runs 1 outgoing migration already \\(max_outgoing 1\\)" \
	kv src migrate b --to "$DST2"
bad "b: no job was started" 1 "no migration job for 'b'" kv src job info b
runs_at src b

log "max_incoming 1: a second migration to dst is refused at its HELLO"
run "$KVMIG" --agent "$T/src2.sock" migrate c --to "$DST" --json
[ "$RC" = 1 ] || fail "c: kvmig migrate exited $RC, expected 1: $(head -c 600 "$ERR")"
grep -q "^kvmig: migration of c failed: the destination refused: the destination agent runs 1 incoming migration already (max_incoming 1)" "$ERR" ||
	fail "c: stderr $(cat "$ERR")"
echo "   $(head -n 1 "$ERR")"
jq_out '.status == "failed" and (.error | test("max_incoming 1"))'
runs_at src2 c
grep -q "refusing the migration of VM 'c' from tcp:127.0.0.1:[0-9]*: the destination agent runs 1 incoming migration already (max_incoming 1)" "$T/dst.log" ||
	fail "dst did not log the refusal: $(grep "'c'" "$T/dst.log")"
ok "dst: agent version" kv dst agent version --json
jq_out '.incoming == 1'
job_status_is src a active || fail "a's job is not active any more: $(kv src job info a --json)"

log "src2's budget of 4 MiB/s: split between its running jobs"
# shellcheck disable=SC2086
ok "d: migrate --detach to dst2 (--bandwidth 3)" kv src2 migrate d --to "$DST2" --detach --bandwidth 3 $ENDLESS
wait_until "$TIMEOUT" "d to be incoming at dst2" state_is dst2 d incoming
# alone: min(3, 4 / 1)
wait_until "$TIMEOUT" "d's bandwidth_limit to be 3 MiB/s" limit_is src2 d $((3 * MIB))
# shellcheck disable=SC2086
ok "e: migrate --detach to dst2 (no --bandwidth of its own)" kv src2 migrate e --to "$DST2" --detach $ENDLESS
wait_until "$TIMEOUT" "e to be incoming at dst2" state_is dst2 e incoming
# two jobs: min(3, 4 / 2) and min(unlimited, 4 / 2)
wait_until "$TIMEOUT" "d's bandwidth_limit to be 2 MiB/s" limit_is src2 d $((2 * MIB))
wait_until "$TIMEOUT" "e's bandwidth_limit to be 2 MiB/s" limit_is src2 e $((2 * MIB))
ok "src2: agent version" kv src2 agent version --json
jq_out '.outgoing == 2 and .bandwidth_in_use >= 0'
ok "e: job info (human)" kv src2 job info e
grep -Eq "^bandwidth_limit: +$((2 * MIB))" "$OUT" || fail "e: job info printed $(cat "$OUT")"
ok "e: job cancel" kv src2 job cancel e
wait_until "$TIMEOUT" "e's job to be cancelled" job_status_is src2 e cancelled
# one job again: d gets min(3, 4 / 1) back
wait_until "$TIMEOUT" "d's bandwidth_limit to be 3 MiB/s again" limit_is src2 d $((3 * MIB))
runs_at src2 e

log "the running jobs cancelled: the guests run on, and dst takes a migration again"
ok "a: job cancel" kv src job cancel a
ok "d: job cancel" kv src2 job cancel d
wait_until "$TIMEOUT" "a's job to be cancelled" job_status_is src a cancelled
wait_until "$TIMEOUT" "d's job to be cancelled" job_status_is src2 d cancelled
runs_at src a
runs_at src2 d
wait_until "$TIMEOUT" "dst to count no incoming migration" \
	eval '[ "$(kv dst agent version --json | jq .incoming)" = 0 ]'
ok "c: migrate to dst, now within max_incoming" kv src2 migrate c --to "$DST" --json --max-downtime 2000
jq_out '.status == "completed"'
gone src2 c || fail "c: src2 still has it after a completed migration"
wait_until "$TIMEOUT" "c to run at dst" state_is dst c running
p=$(counter dst c progress)
wait_until "$TIMEOUT" "c progress > $p at dst" grows dst c progress "$p"
[ "$(counter dst c errors)" = 0 ] || fail "c: guest errors at dst"
ok "b: migrate from src, now within max_outgoing" kv src migrate b --to "$DST2" --json --max-downtime 2000
jq_out '.status == "completed"'
wait_until "$TIMEOUT" "b to run at dst2" state_is dst2 b running
[ "$(counter dst2 b errors)" = 0 ] || fail "b: guest errors at dst2"
echo "   c runs at dst, b at dst2, errors 0"

for n in src src2 dst dst2; do stop_agent "$n"; done
echo "agent_limits: all checks passed"
