#!/bin/bash
# SPDX-License-Identifier: MIT
# compress_auto: --compress auto between two agents on loopback (needs
# /dev/kvm, else exit 77).
#
#   the CLI: --help lists auto; auto:1 is refused (exit 2), and so is
#     vm save --compress auto (a file has no link to measure);
#   a capped move: memcheck (its pages compress: every body qword is the
#     same) over 4 MiB, --bandwidth 4 --verify: the job completes verified,
#     compression.mode is auto, pages were compressed (ratio > 1.1), and
#     some round ended on lz4 or zstd with reason link-bound (a 4 MiB/s link
#     moves 1024 raw pages/s; either codec shrinks these pages 100-fold, so
#     it wins on any CPU that encodes 1100 pages/s);
#   an uncapped move of another memcheck: whatever the host's speed picks,
#     the job completes verified and the codec and its reason agree, in the
#     statistics and in every round event (none goes with cpu-bound or
#     no-gain, lz4 and zstd with link-bound, probe with any);
#   a fixed --compress lz4: mode and codec lz4, reason fixed, in the
#     statistics and the round events;
#   after each move the guest runs at the destination with 0 errors (memcheck
#     re-verifies every page) and its progress grows.
#
# Nothing depends on host or guest speed beyond the capped move's 1100
# pages/s; waits poll the agents and the event subscriber's file.
. "$(dirname "$0")/lib.sh"

start_agent src
need_kvm src "--compress auto migrations"
start_agent dst --listen tcp:127.0.0.1:0
URI=$(kv dst agent version --json | jq -r .migrate_uri)
[[ $URI == tcp://127.0.0.1:* ]] || fail "dst's migrate_uri is '$URI'"
TIMEOUT=${KVMIG_E2E_TIMEOUT:-120}
DT=${KVMIG_E2E_DOWNTIME:-2000}

log "the CLI"
ok "kvmig migrate --help" kv src migrate --help
grep -q -- "lz4, or auto" "$OUT" || fail "kvmig migrate --help does not list auto: $(grep -- --compress "$OUT")"
bad "--compress auto:1" 2 "bad compression 'auto:1': auto takes no level" \
	kv src migrate g0 --to "$URI" --compress auto:1
bad "vm save --compress auto" 2 "auto is for migrations" kv src vm save g0 "$T/g0.snap" --compress auto

subscribers_are() {	# AGENT N
	[ "$(kv "$1" agent ping --json | jq .subscribers)" = "$2" ]
}
has_event() {	# VM EVENT
	jq -e --arg v "$1" --arg e "$2" 'select(.vm == $v and .event == $e)' "$T/ev.json" | grep -q .
}
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; cleanup' EXIT	# lib.sh's cleanup stops the agents
"$KVMIG" --agent "$T/src.sock" events --json >"$T/ev.json" 2>"$T/ev.err" &
PIDS+=($!)
wait_until 10 "the event subscriber" subscribers_are src 1

# codec .c with reason .r: what autocomp.h allows together
AGREE='(.r == "probe") or (.c == "none" and (.r == "cpu-bound" or .r == "no-gain")) or
	((.c == "lz4" or .c == "zstd") and .r == "link-bound")'

# rounds VM FILTER: every round event of VM satisfies FILTER (at least one)
rounds_all() {
	jq -se --arg v "$1" "[.[] | select(.vm == \$v and .event == \"round\")] |
		length > 0 and all(.[]; $2)" "$T/ev.json" >/dev/null ||
		fail "$1's round events fail '$2': $(jq -c --arg v "$1" 'select(.vm == $v and .event == "round") | {round, codec, codec_reason}' "$T/ev.json")"
}
rounds_any() {
	jq -se --arg v "$1" "[.[] | select(.vm == \$v and .event == \"round\")] | any(.[]; $2)" \
		"$T/ev.json" >/dev/null ||
		fail "no round event of $1 has '$2': $(jq -c --arg v "$1" 'select(.vm == $v and .event == "round") | {round, codec, codec_reason}' "$T/ev.json")"
}

# move VM [options]: migrate VM (a memcheck guest) with --verify, then check
# that it runs at the destination; the statistics stay in $T/VM.json
move() {
	local v=$1 p0; shift
	ok "$v: start" kv src vm start "$v" --mem 64M --guest memcheck,workset=4M
	wait_until "$TIMEOUT" "$v to write and check its working set" grows src "$v" progress 4096
	ok "$v: migrate $*" kv src migrate "$v" --to "$URI" --verify --max-downtime "$DT" --json "$@"
	cp "$OUT" "$T/$v.json"
	jq_out '.status == "completed" and .verified == true'
	wait_until "$TIMEOUT" "$v's completed event" has_event "$v" completed
	gone src "$v" || fail "$v: the source still has the VM"
	wait_until "$TIMEOUT" "$v to run at dst" state_is dst "$v" running
	p0=$(counter dst "$v" progress)
	wait_until "$TIMEOUT" "$v progress > $p0 at dst" grows dst "$v" progress "$p0"
	[ "$(counter dst "$v" errors)" = 0 ] || fail "$v: guest errors at dst: $(kv dst vm info "$v" --json | jq -c .guest_stats)"
	echo "   $v: $(jq -c '.compression' "$T/$v.json")"
}

log "a capped move: the link is the bottleneck"
move g1 --compress auto --bandwidth 4
OUT=$T/g1.json
jq_out '.compression.mode == "auto" and .compression.pages > 0 and .compression.ratio > 1.1'
jq_out "{c: .compression.codec, r: .compression.reason} | $AGREE"
rounds_all g1 '(.codec | type) == "string" and (.codec_reason | type) == "string"'
rounds_all g1 "{c: .codec, r: .codec_reason} | $AGREE"
rounds_any g1 '(.codec == "lz4" or .codec == "zstd") and .codec_reason == "link-bound"'
jq -se '[.[] | select(.vm == "g1" and .event == "switchover")] |
	length == 1 and ((.[0].codec | type) == "string") and ((.[0].codec_reason | type) == "string")' \
	"$T/ev.json" >/dev/null ||
	fail "g1's switchover event lacks codec and codec_reason: $(jq -c 'select(.vm == "g1" and .event == "switchover")' "$T/ev.json")"
echo "ok: g1 compressed on a capped link: $(jq -c --arg v g1 'select(.vm == $v and .event == "round") | [.round, .codec, .codec_reason]' "$T/ev.json" | tr '\n' ' ')"

log "an uncapped move: whatever this host picks, codec and reason agree"
move g2 --compress auto
OUT=$T/g2.json
jq_out '.compression.mode == "auto"'
jq_out '.compression.codec == "none" or .compression.codec == "lz4" or .compression.codec == "zstd"'
jq_out "{c: .compression.codec, r: .compression.reason} | $AGREE"
jq_out '(.compression.switches | type) == "number"'
rounds_all g2 "{c: .codec, r: .codec_reason} | $AGREE"
echo "ok: g2 uncapped: $(jq -c --arg v g2 'select(.vm == $v and .event == "round") | [.round, .codec, .codec_reason]' "$T/ev.json" | tr '\n' ' ')"

log "a fixed codec says so"
move g3 --compress lz4
OUT=$T/g3.json
jq_out '.compression.mode == "lz4" and .compression.codec == "lz4" and .compression.reason == "fixed" and
	.compression.switches == 0'
rounds_all g3 '.codec == "lz4" and .codec_reason == "fixed"'
echo "ok: g3 with --compress lz4: fixed"
echo "PASS: $E2E_NAME"
