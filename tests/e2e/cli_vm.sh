#!/bin/bash
# SPDX-License-Identifier: MIT
# cli_vm: the vm commands with real VMs (needs /dev/kvm, else exit 77):
# two VMs at once in one agent, list and info carry the contract fields,
# guest counters move, console shows the guest's banner, a duplicate name
# is refused, stop removes a VM, and SIGTERM with VMs running shuts the
# agent down cleanly. cli_basic.sh covers everything that needs no VM.
. "$(dirname "$0")/lib.sh"

start_agent a
need_kvm a "vm start/list/info/console/stop with real VMs"

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
wait_until 60 "idle1 ticks > 0" test "$(vm_field a idle1 .guest_stats.ticks)" -gt 0
wait_until 60 "seq2 progress > 0" test "$(vm_field a seq2 .guest_stats.progress)" -gt 0
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
