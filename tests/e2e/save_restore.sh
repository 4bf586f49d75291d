#!/bin/bash
# SPDX-License-Identifier: MIT
# save_restore: save a running VM in agent A, restore it in agent B, and
# check that the guest goes on where it stopped (needs /dev/kvm, else 77).
# For each guest (idle, seqdirty, randdirty, memcheck) x (1, 2 vCPUs) at
# 64 MiB, plus two 4 GiB guests (RAM is a sparse memfd, so untouched RAM
# costs nothing and is not written to the file):
#   start in A, wait for progress, save, stop in A, restore in B;
#   B's VM has the same config and MAC, progress starts at least at the
#   value read before the save and keeps growing, errors stay 0, and idle's
#   timer ticks keep coming.
# Also: a relative save path (the CLI makes it absolute; the agents run in
# /), a restore under the saved name, and a name clash refused.
. "$(dirname "$0")/lib.sh"

start_agent a
need_kvm a "save/restore of running guests"
start_agent b

TIMEOUT=${KVMIG_E2E_TIMEOUT:-60}

one_case() {
	local guest=$1 vcpus=$2 mem=$3 args=${4:-} name p0 t0 src r0 rt0 snap
	name=$guest-${vcpus}c-$mem
	snap=$T/$name.snap
	log "$name: start in A"
	ok "$name: start" kv a vm start "$name" --mem "$mem" --vcpus "$vcpus" --guest "$guest${args:+,$args}" --json
	wait_until "$TIMEOUT" "$name progress > 0 in A" grows a "$name" progress 0
	[ "$guest" != idle ] || wait_until "$TIMEOUT" "$name ticks > 0 in A" grows a "$name" ticks 0
	ok "$name: info in A" kv a vm info "$name" --json
	src=$(jq -c '{mem_bytes, vcpus, guest, guest_args, mac}' "$OUT")
	p0=$(jq -r .guest_stats.progress "$OUT")
	t0=$(jq -r .guest_stats.ticks "$OUT")

	ok "$name: save" kv a vm save "$name" "$snap" --json
	jq_out ".name == \"$name\" and .file_bytes > 0 and (.pause_ms | type) == \"number\" and (.elapsed_ms | type) == \"number\""
	jq_out "(.ram_pages + .zero_pages) == $(numfmt --from=iec "$mem") / 4096"
	[ "$(stat -c %s "$snap")" = "$(jq -r .file_bytes "$OUT")" ] || fail "$name: file size differs from file_bytes"
	[ "$(stat -c %s "$snap")" -lt $((512 << 20)) ] || fail "$name: snapshot of $(stat -c %s "$snap") bytes: untouched RAM was written"
	echo "   saved $(jq -r '"\(.file_bytes) bytes, paused \(.pause_ms) ms, \(.ram_pages) pages + \(.zero_pages) zero"' "$OUT")"
	ok "$name: A's VM runs on after the save" kv a vm info "$name" --json
	jq_out ".state == \"running\" and .guest_stats.progress >= $p0"
	ok "$name: stop in A" kv a vm stop "$name"

	log "$name: restore in B"
	ok "$name: restore" kv b vm restore "$snap" --json
	jq_out ".name == \"$name\" and .state == \"running\""
	[ "$(jq -c '{mem_bytes, vcpus, guest, guest_args, mac}' "$OUT")" = "$src" ] ||
		fail "$name: restored config $(jq -c '{mem_bytes, vcpus, guest, guest_args, mac}' "$OUT") differs from $src"
	r0=$(jq -r .guest_stats.progress "$OUT")
	rt0=$(jq -r .guest_stats.ticks "$OUT")
	[ "$r0" -ge "$p0" ] || fail "$name: progress went back: $r0 after restore, $p0 before the save"
	[ "$rt0" -ge "$t0" ] || fail "$name: ticks went back: $rt0 after restore, $t0 before the save"
	wait_until "$TIMEOUT" "$name progress > $r0 in B" grows b "$name" progress "$r0"
	[ "$guest" != idle ] || wait_until "$TIMEOUT" "$name ticks > $rt0 in B" grows b "$name" ticks "$rt0"
	ok "$name: info in B" kv b vm info "$name" --json
	jq_out '.guest_stats.errors == 0 and .state == "running"'
	echo "   progress $p0 before save -> $r0 at restore -> $(jq -r .guest_stats.progress "$OUT") now; errors 0"
	ok "$name: stop in B" kv b vm stop "$name"
}

for guest in idle seqdirty randdirty memcheck; do
	args=
	[ "$guest" = idle ] || args=workset=4M
	for vcpus in 1 2; do
		one_case "$guest" "$vcpus" 64M "$args"
	done
done
one_case memcheck 2 4G workset=8M
one_case seqdirty 1 4G

log "relative save path, restore under the saved name, name clash"
ok "start rel" kv a vm start rel --mem 64M --guest seqdirty,workset=4M
wait_until "$TIMEOUT" "rel progress > 0" grows a rel progress 0
mkdir "$T/cwd"
(cd "$T/cwd" && "$KVMIG" --agent "$T/a.sock" vm save rel rel.snap --json) >"$OUT" 2>"$ERR" ||
	fail "save to a relative path: $(cat "$ERR")"
jq_out ".path == \"$T/cwd/rel.snap\""
[ -s "$T/cwd/rel.snap" ] || fail "relative save did not write $T/cwd/rel.snap"
echo "ok: relative save path became $T/cwd/rel.snap"
ok "restore rel into A under a new name while rel runs" kv a vm restore "$T/cwd/rel.snap" --name rel-copy --json
jq_out '.name == "rel-copy" and .origin == "restore"'
bad "restore rel again under its saved name" 1 "a VM named 'rel' already exists" kv a vm restore "$T/cwd/rel.snap"
ok "list" kv a vm list --json
jq_out '[.vms[].name] == ["rel", "rel-copy"]'
ok "stop rel" kv a vm stop rel
ok "stop rel-copy" kv a vm stop rel-copy
no_vms_left a
no_vms_left b
stop_agent a
stop_agent b
echo "PASS: $E2E_NAME"
