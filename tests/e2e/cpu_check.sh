#!/bin/bash
# SPDX-License-Identifier: MIT
# cpu_check: the destination checks the guest's CPU before any page moves
# (needs /dev/kvm, else exit 77). Agents on loopback:
#   src    hosts the guests (the whole CPUID its KVM supports)
#   hide   --cpu-hide FEATURE, a feature this host's KVM offers (so every
#          guest started at src has it): a migration there fails naming it,
#          no page moves (the job's normal_pages is 0), the guest runs on at
#          the source (its progress grows afterwards) and hide hosts nothing
#   tsc    --tsc-khz twice the real rate: a migration there succeeds with a
#          warning in tsc's log; with --strict-cpu it is refused, naming
#          both rates, and the guest runs on at the source
#   dst    no mask: a migration with the check on (and --strict-cpu)
#          succeeds and the guest runs there; from there, hide still
#          refuses it (the guest keeps the CPUID it was given at src)
# Also: an unknown --cpu-hide name stops kvmigd with exit 2.
. "$(dirname "$0")/lib.sh"

TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}
DT=${KVMIG_E2E_DOWNTIME:-2000}

bad "unknown --cpu-hide name" 2 "--cpu-hide: unknown CPU feature 'avx9'" "$KVMIGD" --control "$T/x.sock" --cpu-hide sse2,avx9

start_agent src
need_kvm src "the CPU check of migrations"
run "$KVMIGD" --cpu-features
[ "$RC" = 0 ] || fail "kvmigd --cpu-features: exit $RC: $(cat "$ERR")"
FEATURES=$(sed -n 's/^features: //p' "$OUT" | tr -d ' ' | tr ',' '\n')
HOST_TSC=$(sed -n 's/^tsc_khz: //p' "$OUT")
[[ $HOST_TSC =~ ^[0-9]+$ ]] && [ "$HOST_TSC" -gt 0 ] || fail "no TSC rate in: $(cat "$OUT")"
FEATURE=
for f in sse2 cx16 fxsr cmov; do
	grep -qx "$f" <<<"$FEATURES" && { FEATURE=$f; break; }
done
[ -n "$FEATURE" ] || fail "none of sse2 cx16 fxsr cmov in this host's KVM features: $FEATURES"
log "hiding $FEATURE (this host's KVM offers it); host TSC $HOST_TSC kHz"
# the mask is what --cpu-features reports
run "$KVMIGD" --cpu-features --cpu-hide "$FEATURE"
sed -n 's/^features: //p' "$OUT" | tr -d ' ' | tr ',' '\n' | grep -qx "$FEATURE" &&
	fail "--cpu-features --cpu-hide $FEATURE still lists it"

start_agent hide --listen tcp:127.0.0.1:0 --cpu-hide "$FEATURE"
start_agent tsc --listen tcp:127.0.0.1:0 --tsc-khz $((HOST_TSC * 2))
start_agent dst --listen tcp:127.0.0.1:0
HIDE_URI=$(kv hide agent version --json | jq -r .migrate_uri)
TSC_URI=$(kv tsc agent version --json | jq -r .migrate_uri)
DST_URI=$(kv dst agent version --json | jq -r .migrate_uri)

# refused DESC REGEX CMD...: a migration that fails (exit 1; kvmig migrate
# prints the failed job's statistics on stdout) with stderr matching REGEX
refused() {
	local desc=$1 re=$2; shift 2
	run "$@"
	[ "$RC" = 1 ] || fail "$desc: exit status $RC, expected 1 (stderr: $(head -c 300 "$ERR"))"
	grep -Eq -- "$re" "$ERR" || fail "$desc: stderr does not match /$re/: $(head -c 600 "$ERR")"
	echo "ok: $desc -> $(head -n 1 "$ERR")"
}

progress() {	# AGENT VM
	vm_field "$1" "$2" .guest_stats.progress
}

# runs_at_source NAME: running at src, progress grows after the refusal, no errors
runs_at_source() {
	local p
	field_is src "$1" .state running || fail "$1 is not running at the source"
	p=$(progress src "$1") || fail "$1: no progress at the source"
	wait_until "$TIMEOUT" "$1 progress > $p at the source" field_gt src "$1" .guest_stats.progress "$p"
	[ "$(vm_field src "$1" .guest_stats.errors)" = 0 ] || fail "$1: guest errors at the source"
	echo "ok: $1 runs on at the source"
}

ok "g1: start" kv src vm start g1 --mem 64M --guest memcheck,workset=4M
wait_until "$TIMEOUT" "g1 progress > 0" field_gt src g1 .guest_stats.progress 0

log "a feature the destination lacks"
refused "g1 to hide" "migration of g1 failed: the destination refused: the destination's CPU lacks $FEATURE \(the guest uses it\); the guest stays on the source" \
	kv src migrate g1 --to "$HIDE_URI" --max-downtime "$DT"
ok "g1: job info" kv src job info g1 --json
jq_out '.status == "failed" and .normal_pages == 0 and .duplicate_pages == 0 and .dirty_sync_count == 0'
runs_at_source g1
no_vms_left hide
grep -q "the destination's CPU lacks $FEATURE (the guest uses it)" "$T/hide.log" || fail "hide did not log the refusal"
# a VM started at hide (its CPUID without the hidden feature) runs
ok "h1: start at hide" kv hide vm start h1 --mem 64M --guest memcheck,workset=4M
wait_until "$TIMEOUT" "h1 progress > 0" field_gt hide h1 .guest_stats.progress 0
ok "stop h1" kv hide vm stop h1

log "a TSC rate difference: a warning, or a refusal with --strict-cpu"
refused "g1 to tsc, strict" "the destination refused: the destination's TSC runs at $((HOST_TSC * 2)) kHz, the guest's at $HOST_TSC kHz, and --strict-cpu refuses any TSC difference; the guest stays on the source" \
	kv src migrate g1 --to "$TSC_URI" --max-downtime "$DT" --strict-cpu
runs_at_source g1
no_vms_left tsc
P=$(progress src g1)
ok "g1 to tsc, not strict" kv src migrate g1 --to "$TSC_URI" --max-downtime "$DT"
grep -q "VM 'g1': the destination's TSC runs at $((HOST_TSC * 2)) kHz, the guest's at $HOST_TSC kHz" "$T/tsc.log" ||
	fail "tsc did not warn about the TSC rate"
wait_until "$TIMEOUT" "g1 progress > $P at tsc" field_gt tsc g1 .guest_stats.progress "$P"
[ "$(vm_field tsc g1 .guest_stats.errors)" = 0 ] || fail "g1: guest errors at tsc"
ok "stop g1 at tsc" kv tsc vm stop g1

log "the normal path, strict: same CPU, same TSC"
ok "g2: start" kv src vm start g2 --mem 64M --vcpus 2 --guest memcheck,workset=4M
wait_until "$TIMEOUT" "g2 progress > 0" field_gt src g2 .guest_stats.progress 0
P=$(progress src g2)
ok "g2 to dst, strict, verified" kv src migrate g2 --to "$DST_URI" --max-downtime "$DT" --strict-cpu --verify --json
jq_out '.status == "completed" and .verified == true'
wait_until "$TIMEOUT" "g2 progress > $P at dst" field_gt dst g2 .guest_stats.progress "$P"
[ "$(vm_field dst g2 .guest_stats.errors)" = 0 ] || fail "g2: guest errors at dst"
grep -q "TSC runs at" "$T/dst.log" && fail "dst warned about a TSC difference it does not have"
# the guest keeps the CPUID it was given at src: from dst, hide still refuses it
refused "g2 from dst to hide" "the destination's CPU lacks $FEATURE \(the guest uses it\)" \
	kv dst migrate g2 --to "$HIDE_URI" --max-downtime "$DT"
field_is dst g2 .state running || fail "g2 does not run at dst after the refusal"
ok "stop g2" kv dst vm stop g2

log "shutdown"
for a in hide tsc dst; do no_vms_left $a; done
for a in src hide tsc dst; do stop_agent $a; done
echo "PASS: $E2E_NAME"
