#!/bin/bash
# SPDX-License-Identifier: MIT
# dirty_ring: the dirty ring is a property of the VM and travels with it
# (needs /dev/kvm, else exit 77). A memcheck guest started on agent a with
# --dirty-ring 4096 moves with --dirty-track ring to b (TCP), then from b
# to c (unix socket) with --dirty-track ring again, then back from c to a.
# After each move: the job completed and verified its RAM digest, the
# source no longer has the VM, the destination's vm info shows
# dirty_ring 4096 and the guest running, guest_stats.errors is 0 and
# progress keeps growing past the last value seen at the source. A ring
# that overflowed during a move is fine (every page is resent); a ring that
# kept overflowing would end the job with a clear error and fail here.
#
# KVMIG_E2E_TIMEOUT (default 120) bounds each wait, in seconds;
# KVMIG_E2E_DOWNTIME (default 2000) is the --max-downtime in ms (the
# nested test hosts move a few MiB/s; correctness is checked, not speed).
. "$(dirname "$0")/lib.sh"

start_agent a --listen "unix:$T/a.sock.mig"
need_kvm a "migrating a VM with its dirty ring between agents"
start_agent b --listen tcp:127.0.0.1:0
start_agent c --listen "unix:$T/c.sock.mig"
TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}
DT=${KVMIG_E2E_DOWNTIME:-2000}
declare -A URI=()
for n in a b c; do
	URI[$n]=$(kv "$n" agent version --json | jq -r .migrate_uri)
	[ -n "${URI[$n]}" ] && [ "${URI[$n]}" != null ] || fail "agent $n has no migrate_uri"
done

progress_above() {	# AGENT FLOOR: the VM's progress is above FLOOR now
	local v
	v=$(vm_field "$1" rg .guest_stats.progress 2>/dev/null) && [ "$v" -gt "$2" ]
}

has_no_vm() {	# AGENT
	! kv "$1" vm info rg --json >/dev/null 2>&1
}

check_vm() {	# AGENT: running with its ring, no errors
	ok "rg at $1: info" kv "$1" vm info rg --json
	jq_out '.state == "running" and .dirty_ring == 4096 and .guest_stats.errors == 0'
}

move() {	# FROM TO
	local from=$1 to=$2 p
	p=$(vm_field "$from" rg .guest_stats.progress) || fail "no progress at $from"
	log "migrate rg $from -> $to with --dirty-track ring"
	ok "rg: $from -> $to" kv "$from" migrate rg --to "${URI[$to]}" --dirty-track ring \
		--verify --max-downtime "$DT" --json
	cp "$OUT" "$T/mig-$from-$to.json"
	jq_out '.status == "completed" and .verified == true and (.ring_overflows | type) == "number"'
	echo "   ring overflows during the move: $(jq -r .ring_overflows "$OUT")," \
		"dirty_sync_count $(jq -r .dirty_sync_count "$OUT")"
	wait_until "$TIMEOUT" "rg gone from $from" has_no_vm "$from"
	check_vm "$to"
	p=$(vm_field "$to" rg .guest_stats.progress) || fail "no progress at $to"
	wait_until "$TIMEOUT" "rg's progress at $to to grow past $p" progress_above "$to" "$p"
	check_vm "$to"
}

ok "rg: start with --dirty-ring 4096" kv a vm start rg --mem 64M --vcpus 2 \
	--guest memcheck,workset=4M --dirty-ring 4096
check_vm a
wait_until "$TIMEOUT" "rg's progress at a" progress_above a 0

move a b
move b c
move c a

ok "rg: stop" kv a vm stop rg
for n in a b c; do no_vms_left "$n"; done
echo "PASS: $E2E_NAME"
