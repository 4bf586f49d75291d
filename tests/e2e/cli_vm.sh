#!/bin/bash
# SPDX-License-Identifier: MIT
# cli_vm: the vm commands with real VMs (needs /dev/kvm, else exit 77):
# two VMs at once in one agent, list and info carry the contract fields,
# guest counters move, console shows the guest's banner, a duplicate name
# is refused, pause stops the guest's counters and resume lets them go on
# (state paused/running in info and list; pausing twice, resuming a
# running VM are errors; save keeps it paused; paused_vm.sh migrates one),
# pause and resume are refused while a migration owns the VM (migrating at
# the source, incoming at the destination) and work again after the job
# is cancelled, stop removes a VM, and SIGTERM with VMs running shuts the
# agent down cleanly. cli_basic.sh covers everything that needs no VM.
. "$(dirname "$0")/lib.sh"

start_agent a
need_kvm a "vm start/list/info/console/pause/resume/stop with real VMs"

log "start two VMs"
ok "vm start idle1" kv a vm start idle1 --mem 64M --vcpus 1 --guest idle --json
jq_out '.name == "idle1" and .state == "running" and .mem_bytes == 67108864 and .vcpus == 1 and .guest == "idle"'
MAC1=$(jq -r .mac "$OUT")
[[ $MAC1 =~ ^52:54:00(:[0-9a-f]{2}){3}$ ]] || fail "generated MAC '$MAC1' is not 52:54:00:xx:xx:xx"
ok "vm start seq2 (human output)" kv a vm start seq2 --mem 64M --vcpus 2 --guest seqdirty,workset=4M --mac 52:54:00:AA:bb:cc
grep -q "started VM seq2" "$OUT" || fail "vm start printed: $(cat "$OUT")"
bad "duplicate name" 1 "a VM named 'idle1' already exists" kv a vm start idle1 --mem 64M

log "list"
ok "vm list --json" kv a vm list --json
jq_out '.vms | length == 2'
jq_out '[.vms[].name] == ["idle1", "seq2"]'
jq_out 'all(.vms[]; has("name") and has("state") and has("mem_bytes") and has("vcpus") and has("guest") and has("mac"))'
jq_out '.vms[1].mac == "52:54:00:aa:bb:cc" and .vms[1].vcpus == 2 and .vms[1].guest_args == "workset=4M"'
ok "vm list (human)" kv a vm list
grep -q "^idle1 .*running" "$OUT" && grep -q "^seq2 " "$OUT" || fail "vm list printed: $(cat "$OUT")"

log "info"
ok "vm info idle1 --json" kv a vm info idle1 --json
jq_out '.name == "idle1" and (.state | IN("running", "paused", "migrating", "postcopy", "stopped"))'
jq_out '.mem_bytes == 67108864 and .vcpus == 1 and .guest == "idle" and (.guest_args | type) == "string"'
jq_out ".mac == \"$MAC1\""
jq_out '(.guest_stats | (.progress | type) == "number" and (.errors | type) == "number" and (.ticks | type) == "number")'
jq_out '(.pause_latency | has("count") and has("last_us") and has("max_us"))'
jq_out 'has("ok") | not'
wait_until 60 "idle1 ticks > 0" field_gt a idle1 .guest_stats.ticks 0
wait_until 60 "seq2 progress > 0" field_gt a seq2 .guest_stats.progress 0
[ "$(vm_field a seq2 .guest_stats.errors)" = 0 ] || fail "seq2 reports guest errors"
ok "vm info seq2 (human)" kv a vm info seq2
grep -Eq "^state: +running" "$OUT" && grep -Eq "^guest_stats.progress: +[0-9]+" "$OUT" ||
	fail "vm info printed: $(cat "$OUT")"

log "console"
wait_until 30 "idle1 console shows the guest banner" bash -c "'$KVMIG' --agent '$T/a.sock' vm console idle1 | grep -q 'kvmig guest'"
ok "vm console idle1" kv a vm console idle1
[ -s "$OUT" ] || fail "vm console printed nothing"
echo "console: $(head -n 2 "$OUT" | tr -d '\r')"
ok "vm console idle1 --json" kv a vm console idle1 --json
jq_out '.name == "idle1" and (.console | contains("kvmig guest"))'

log "pause and resume"
P0=$(vm_field a seq2 .guest_stats.progress)
ok "vm pause seq2 --json" kv a vm pause seq2 --json
jq_out '.name == "seq2" and .state == "paused" and .guest == "seqdirty" and .vcpus == 2'
jq_out '(.pause_latency.count >= 1) and (.guest_stats.progress | type) == "number"'
jq_out 'has("ok") | not'
[ "$(jq -s length "$OUT")" = 1 ] || fail "vm pause --json printed more than one JSON value"
P1=$(jq -r .guest_stats.progress "$OUT")
[ "$P1" -ge "$P0" ] || fail "seq2 progress went back from $P0 to $P1"
ok "vm pause idle1 (human)" kv a vm pause idle1
grep -q "^paused VM idle1 (progress [0-9]*, errors 0, ticks [0-9]*)" "$OUT" || fail "vm pause printed: $(cat "$OUT")"
K1=$(vm_field a idle1 .guest_stats.ticks)
[ "$(vm_field a seq2 .state)" = paused ] || fail "vm info seq2 does not say paused"
ok "vm list with paused VMs" kv a vm list --json
jq_out '[.vms[].state] == ["paused", "paused"]'
ok "vm info seq2 (human) while paused" kv a vm info seq2
grep -Eq "^state: +paused" "$OUT" || fail "vm info printed: $(cat "$OUT")"
bad "vm pause seq2 again" 1 "^kvmig: VM 'seq2' is already paused" kv a vm pause seq2
bad "vm pause seq2 again --json" 1 "^kvmig: VM 'seq2' is already paused" kv a vm pause seq2 --json
# a paused VM migrates (and arrives paused): tests/e2e/paused_vm.sh
ok "vm save seq2 while paused" kv a vm save seq2 "$T/seq2.snap" --json
[ "$(vm_field a seq2 .state)" = paused ] || fail "vm save resumed the paused seq2"
# no event can be in flight: vm pause returned after every vCPU parked
sleep 2
P2=$(vm_field a seq2 .guest_stats.progress)
K2=$(vm_field a idle1 .guest_stats.ticks)
[ "$P2" = "$P1" ] || fail "seq2 progress moved while paused: $P1 -> $P2"
[ "$K2" = "$K1" ] || fail "idle1 ticks moved while paused: $K1 -> $K2"
echo "ok: counters stood still for 2 s (seq2 progress $P1, idle1 ticks $K1)"
ok "vm resume seq2 --json" kv a vm resume seq2 --json
jq_out '.name == "seq2" and .state == "running" and (has("ok") | not)'
jq_out ".guest_stats.progress >= $P1"	# the guest runs again as the reply is built
ok "vm resume idle1 (human)" kv a vm resume idle1
grep -q "^resumed VM idle1 " "$OUT" || fail "vm resume printed: $(cat "$OUT")"
bad "vm resume seq2 again" 1 "^kvmig: VM 'seq2' is already running" kv a vm resume seq2
bad "vm resume seq2 again --json" 1 "^kvmig: VM 'seq2' is already running" kv a vm resume seq2 --json
wait_until 60 "seq2 progress to go on after resume" field_gt a seq2 .guest_stats.progress "$P1"
wait_until 60 "idle1 ticks to go on after resume" field_gt a idle1 .guest_stats.ticks "$K1"
[ "$(vm_field a seq2 .guest_stats.errors)" = 0 ] || fail "seq2 reports guest errors after resume"
ok "vm list after resume" kv a vm list --json
jq_out '[.vms[].state] == ["running", "running"]'

log "pause and resume while a migration owns the VM"
start_agent d --listen tcp:127.0.0.1:0
D_URI=$(kv d agent version --json | jq -r .migrate_uri)
# 1 MiB/s against a 4 MiB working set rewritten all the time, 1 ms allowed
# downtime: the job cannot converge and runs until it is cancelled
ok "migrate seq2 --detach (cannot converge)" kv a migrate seq2 --to "$D_URI" --detach --bandwidth 1 --max-downtime 1
wait_until 60 "seq2 to be incoming at d" field_is d seq2 .state incoming
[ "$(vm_field a seq2 .state)" = migrating ] || fail "seq2 is not migrating at the source"
bad "vm pause while migrating" 1 "^kvmig: VM 'seq2' is busy \\(migrating\\)" kv a vm pause seq2
bad "vm resume while migrating" 1 "^kvmig: VM 'seq2' is busy \\(migrating\\)" kv a vm resume seq2 --json
bad "vm pause while incoming" 1 "^kvmig: VM 'seq2' is busy \\(incoming\\)" kv d vm pause seq2 --json
bad "vm resume while incoming" 1 "^kvmig: VM 'seq2' is busy \\(incoming\\)" kv d vm resume seq2
ok "job cancel seq2" kv a job cancel seq2
wait_until 60 "the seq2 job to end" bash -c "'$KVMIG' --agent '$T/a.sock' job info seq2 --json | jq -e '.status == \"cancelled\"'"
wait_until 60 "seq2 to run at the source again" field_is a seq2 .state running
wait_until 60 "d to drop the incoming seq2" bash -c "! '$KVMIG' --agent '$T/d.sock' vm info seq2"
ok "vm pause seq2 after the job" kv a vm pause seq2 --json
jq_out '.state == "paused"'
ok "vm resume seq2 after the job" kv a vm resume seq2 --json
jq_out '.state == "running"'
P3=$(vm_field a seq2 .guest_stats.progress)
wait_until 60 "seq2 progress to go on" field_gt a seq2 .guest_stats.progress "$P3"
stop_agent d TERM

log "stop"
ok "vm stop idle1" kv a vm stop idle1 --json
jq_out '.name == "idle1" and (.guest_stats.ticks > 0)'
ok "vm list after stop" kv a vm list --json
jq_out '[.vms[].name] == ["seq2"]'
bad "vm info after stop" 1 "no VM named 'idle1'" kv a vm info idle1
bad "vm stop again" 1 "no VM named 'idle1'" kv a vm stop idle1

log "the name can be used again"
ok "vm start idle1 again" kv a vm start idle1 --guest idle --json
jq_out '.name == "idle1" and .mem_bytes == 67108864'

log "SIGTERM with VMs running"
stop_agent a TERM
echo "PASS: $E2E_NAME"
