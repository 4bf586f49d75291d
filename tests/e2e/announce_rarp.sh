#!/bin/bash
# SPDX-License-Identifier: MIT
# announce_rarp: the RARP announce after a migration between two hosts
# (tests/netbed.sh: namespaces src and dst on a bridge; needs root, KVM
# and tcpdump, else exit 77 with the reason).
#
#   A memcheck guest with a known MAC moves from the src agent to the dst
#   agent over tcp://10.77.0.2 with --announce eth0. tcpdump on the
#   bridge's p-dst port (-Q in: what dst sent; ether proto 0x8035; -c 5,
#   bounded by timeout) captures the announce, live before the migration
#   starts. Checked: exactly 5 frames; every byte of each is QEMU's frame
#   for that MAC; the rounds leave in order, none before its slot of the
#   schedule (0, 50, 200, 450, 800 ms after the first, 10 ms of capture
#   jitter allowed) and none more than 3 s late (a slow host may delay, the
#   order and the growing spacing must hold); the bridge learnt the MAC on
#   p-dst (and had not before); the job's stats say announce.frames 5 and
#   a first_ms between 0 and 2000; the guest runs at dst with 0 errors.
#   A second guest moved with --postcopy=now --announce eth0: completed in
#   post-copy, and the job still reports the 5 frames (their report comes
#   after the last page).
#   Then a bad interface (--announce eth9): refused at the handshake with
#   "no interface 'eth9' on this host", the guest runs on at src, dst has
#   nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../netbed.sh"

command -v tcpdump >/dev/null || skip "needs tcpdump (apt-get install tcpdump; make deps installs it)"
command -v timeout >/dev/null || skip "needs timeout (coreutils)"
netbed_up "ra$$"
netbed_agent src
v=$(netbed_kv src agent version --json) || fail "agent version on src"
[ "$(jq -r .kvm.available <<<"$v")" = true ] ||
	skip "the RARP announce test needs /dev/kvm: $(jq -r '.kvm.error // "unknown"' <<<"$v")"
netbed_agent dst
TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}
DT=${KVMIG_E2E_DOWNTIME:-2000}
MAC=52:54:00:7a:11:05

counter() {	# HOST VM FIELD
	netbed_kv "$1" vm info "$2" --json 2>/dev/null | jq -er ".guest_stats.$3"
}
grows() {	# HOST VM FIELD FLOOR
	local c
	c=$(counter "$1" "$2" "$3") && [ "$c" -gt "$4" ]
}
fdb_has() {	# MAC PORT: the bridge learnt MAC on PORT
	netbed_exec sw bridge fdb show br br0 | grep -qi "^$1 dev $2 "
}
td_live() { grep -q 'listening on' "$T/td.err"; }

ok "g1: start" netbed_kv src vm start g1 --mem 64M --vcpus 1 --guest memcheck,workset=4M --mac $MAC
wait_until "$TIMEOUT" "g1 progress > 0" grows src g1 progress 0
fdb_has $MAC p-src && fail "the bridge knows $MAC before the guest sent anything"
fdb_has $MAC p-dst && fail "the bridge knows $MAC on p-dst before the migration"

# the capture: live before the migration starts, bounded in frames and time
netbed_exec sw timeout 120 tcpdump -i p-dst -Q in -nn -U -c 5 -w "$T/rarp.pcap" \
	'ether proto 0x8035' 2>"$T/td.err" &
TD=$!
wait_until 20 "tcpdump to listen on p-dst" td_live
echo "ok: tcpdump listens on p-dst"

ok "g1: migrate with --announce eth0" netbed_kv src migrate g1 --to "$NB_URI_dst" --announce eth0 \
	--max-downtime "$DT" --json
cp "$OUT" "$T/job.json"
jq -e '.status == "completed"' "$T/job.json" >/dev/null || fail "job: $(cat "$T/job.json")"
jq -e '.announce.frames == 5' "$T/job.json" >/dev/null ||
	fail "job stats: announce is $(jq -c .announce "$T/job.json"), expected 5 frames"
jq -e '.announce.first_ms | type == "number" and . >= 0 and . < 2000' "$T/job.json" >/dev/null ||
	fail "job stats: announce.first_ms is $(jq -c .announce.first_ms "$T/job.json")"
echo "ok: job stats announce $(jq -c .announce "$T/job.json")"
wait "$TD" || fail "tcpdump ended with status $? (timeout: fewer than 5 frames?): $(cat "$T/td.err")"

# every byte of each frame
want="ffffffffffff${MAC//:/}80350001080006040003${MAC//:/}00000000${MAC//:/}00000000$(printf '0%.0s' $(seq 36))"
tcpdump -r "$T/rarp.pcap" -nn -tt -xx 2>/dev/null | awk '
	/^[0-9]+\.[0-9]+ / { if (hex != "") print t, hex; t = $1; hex = ""; next }
	/^[ \t]+0x[0-9a-f]+:/ { for (i = 2; i <= NF; i++) hex = hex $i }
	END { if (hex != "") print t, hex }' >"$T/frames"
n=$(wc -l <"$T/frames")
[ "$n" = 5 ] || fail "captured $n RARP frames on p-dst, expected 5: $(cat "$T/frames")"
k=0
while read -r ts hex; do
	[ "$hex" = "$want" ] || fail "frame $k differs from QEMU's announce for $MAC:
    got  $hex
    want $want"
	k=$((k + 1))
done <"$T/frames"
echo "ok: 5 frames, each byte for byte the announce of $MAC (60 bytes)"

# the spacing: in order, never early, bounded lateness
awk -v nominal="0 50 200 450 800" '
	BEGIN { split(nominal, nom, " ") }
	NR == 1 { t0 = $1 }
	{
		off = ($1 - t0) * 1000
		if (NR > 1 && off <= prev) { printf "frame %d at %.1f ms is not after frame %d (%.1f ms)\n", NR - 1, off, NR - 2, prev; bad = 1 }
		if (off < nom[NR] - 10) { printf "frame %d left at %.1f ms, before its slot at %d ms\n", NR - 1, off, nom[NR]; bad = 1 }
		if (off > nom[NR] + 3000) { printf "frame %d left at %.1f ms, more than 3 s after its slot at %d ms\n", NR - 1, off, nom[NR]; bad = 1 }
		printf "    frame %d: +%.1f ms (slot %d ms)\n", NR - 1, off, nom[NR]
		prev = off
	}
	END { exit bad }' "$T/frames" >"$T/spacing" || fail "round spacing: $(cat "$T/spacing")"
cat "$T/spacing"
echo "ok: the rounds keep QEMU's schedule (0/50/200/450/800 ms, lateness tolerated)"

fdb_has $MAC p-dst || fail "bridge fdb has no '$MAC dev p-dst': $(netbed_exec sw bridge fdb show br br0 | grep -i "$MAC")"
echo "ok: bridge fdb: $MAC dev p-dst"

# the guest goes on at dst
p=$(counter dst g1 progress) || fail "g1 is not at dst"
wait_until "$TIMEOUT" "g1 progress at dst > $p" grows dst g1 progress "$p"
[ "$(counter dst g1 errors)" = 0 ] || fail "g1 reports memory errors at dst"
echo "ok: g1 runs at dst, 0 errors"

# post-copy: the announce's report comes after the last page (PC_DONE)
ok "g3: start" netbed_kv src vm start g3 --mem 64M --vcpus 1 --guest memcheck,workset=4M \
	--mac 52:54:00:7a:11:06
wait_until "$TIMEOUT" "g3 progress > 0" grows src g3 progress 0
ok "g3: migrate --postcopy=now --announce eth0" netbed_kv src migrate g3 --to "$NB_URI_dst" \
	--postcopy=now --announce eth0 --json
cp "$OUT" "$T/job3.json"
jq -e '.status == "completed" and .postcopy.active == true' "$T/job3.json" >/dev/null ||
	fail "g3 job: $(cat "$T/job3.json")"
jq -e '.announce.frames == 5' "$T/job3.json" >/dev/null ||
	fail "g3 job stats: announce is $(jq -c .announce "$T/job3.json"), expected 5 frames"
p=$(counter dst g3 progress) || fail "g3 is not at dst"
wait_until "$TIMEOUT" "g3 progress at dst > $p" grows dst g3 progress "$p"
[ "$(counter dst g3 errors)" = 0 ] || fail "g3 reports memory errors at dst"
echo "ok: g3 moved in post-copy, announce $(jq -c .announce "$T/job3.json"), 0 errors at dst"

# a bad interface: refused at the handshake, the guest stays at src
ok "g2: start" netbed_kv src vm start g2 --mem 64M --vcpus 1 --guest memcheck,workset=4M
wait_until "$TIMEOUT" "g2 progress > 0" grows src g2 progress 0
# (kvmig prints the failed job's statistics on stdout, the reason on stderr)
run netbed_kv src migrate g2 --to "$NB_URI_dst" --announce eth9
[ "$RC" = 1 ] || fail "migrate --announce eth9: exit status $RC, expected 1"
grep -q "no interface 'eth9' on this host" "$ERR" ||
	fail "migrate --announce eth9: stderr does not name the interface: $(head -c 600 "$ERR")"
echo "ok: migrate --announce eth9 -> $(head -n 1 "$ERR")"
jq -e '.transferred_bytes' <<<"$(netbed_kv src job info g2 --json)" >/dev/null || fail "no job info for g2"
[ "$(netbed_kv src job info g2 --json | jq -r .normal_pages)" = 0 ] ||
	fail "pages moved before the refusal: $(netbed_kv src job info g2 --json | jq -c .)"
[ "$(netbed_kv src vm info g2 --json | jq -r .state)" = running ] || fail "g2 is not running at src"
p=$(counter src g2 progress)
wait_until "$TIMEOUT" "g2 progress at src > $p" grows src g2 progress "$p"
netbed_kv dst vm list --json | jq -e '[.vms[] | select(.name == "g2")] | length == 0' >/dev/null ||
	fail "dst hosts g2 after the refusal"
echo "ok: refused at the handshake, g2 runs on at src, nothing at dst"
echo "PASS: announce_rarp"
