#!/bin/bash
# SPDX-License-Identifier: MIT
# paused_vm: a paused VM moves and is saved, as with virsh and QEMU, and
# arrives paused (needs /dev/kvm, else 77). For a memcheck guest on 2 vCPUs:
#   pause it in A; migrate it to B (--verify): the job completes, A no
#   longer has it, B has it paused with the progress it had when paused
#   and 0 errors; its counters do not move until `vm resume`, after which
#   progress grows and errors stay 0;
#   pause it in B, save it, restore the file in A under another name: it is
#   restored paused (again with its progress), and runs on once resumed;
#   a VM restored paused and never started moves again, paused.
# A running VM's save and restore stay as before (save_restore.sh).
. "$(dirname "$0")/lib.sh"

start_agent a --listen tcp:127.0.0.1:0
need_kvm a "migrating and saving paused guests"
start_agent b --listen tcp:127.0.0.1:0
A_URI=$(kv a agent version --json | jq -r .migrate_uri)
B_URI=$(kv b agent version --json | jq -r .migrate_uri)
TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}

# above AGENT VM FLOOR: the guest's progress is above FLOOR now.
above() {
	local v
	v=$(vm_field "$1" "$2" .guest_stats.progress) && [ "$v" -gt "$3" ]
}

# paused_with AGENT VM PROGRESS: paused, exactly that progress, no errors.
paused_with() {
	ok "vm info $2 at $1" kv "$1" vm info "$2" --json
	jq_out ".state == \"paused\" and .guest_stats.progress == $3 and .guest_stats.errors == 0"
}

log "a paused VM migrates and arrives paused"
ok "vm start m" kv a vm start m --mem 64M --vcpus 2 --guest memcheck,workset=8M --json
wait_until "$TIMEOUT" "m progress > 0" above a m 0
ok "vm pause m" kv a vm pause m --json
P=$(jq -r .guest_stats.progress "$OUT")
ok "migrate the paused m to B" kv a migrate m --to "$B_URI" --verify --json
jq_out '.status == "completed" and .transferred_bytes > 0'
bad "A no longer has m" 1 "no VM named 'm'" kv a vm info m
paused_with b m "$P"
ok "B's copy of m (human info)" kv b vm info m
grep -Eq "^state: +paused" "$OUT" || fail "vm info printed: $(cat "$OUT")"
# A paused guest cannot move its counter: read it again after an agent round trip.
ok "vm list at B" kv b vm list --json
jq_out '[.vms[] | select(.name == "m") | .state] == ["paused"]'
paused_with b m "$P"
ok "vm resume m at B" kv b vm resume m --json
jq_out '.state == "running"'
wait_until "$TIMEOUT" "m to run on at B past $P" above b m "$P"
[ "$(vm_field b m .guest_stats.errors)" = 0 ] || fail "m reports guest errors at B"

log "a paused VM is saved and restored paused"
ok "vm pause m at B" kv b vm pause m --json
P2=$(jq -r .guest_stats.progress "$OUT")
ok "vm save m at B" kv b vm save m "$T/m.snap" --json
paused_with b m "$P2"
ok "vm restore as m2 in A" kv a vm restore "$T/m.snap" --name m2 --json
jq_out ".name == \"m2\" and .state == \"paused\" and .guest_stats.progress == $P2"
paused_with a m2 "$P2"

log "a VM restored paused (never started) migrates, paused"
ok "migrate m2 (restored paused) to B" kv a migrate m2 --to "$B_URI" --json
jq_out '.status == "completed"'
paused_with b m2 "$P2"
ok "vm resume m2 at B" kv b vm resume m2 --json
wait_until "$TIMEOUT" "m2 to run at B past $P2" above b m2 "$P2"
[ "$(vm_field b m2 .guest_stats.errors)" = 0 ] || fail "m2 reports guest errors at B"

log "a running VM still arrives running"
ok "migrate m2 back to A, running" kv b migrate m2 --to "$A_URI" --json
jq_out '.status == "completed"'
ok "vm info m2 at A" kv a vm info m2 --json
jq_out '.state == "running"'
P3=$(jq -r .guest_stats.progress "$OUT")
wait_until "$TIMEOUT" "m2 to run on at A past $P3" above a m2 "$P3"

stop_agent a TERM
stop_agent b TERM
echo "PASS: $E2E_NAME"
