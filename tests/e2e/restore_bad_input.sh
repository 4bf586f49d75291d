#!/bin/bash
# SPDX-License-Identifier: MIT
# restore_bad_input: vm restore from files that are not good snapshots.
# Each must fail with a clear error naming the problem, a non-zero exit,
# no VM left behind, and the agent still serving.
#
#   always: a nonexistent file, an empty file, random garbage, a directory;
#   from a good snapshot: truncated (four places), one flipped byte (five
#   places: HELLO, PAGES, STATE, a frame type, the last CRC), another
#   stream version, a bad magic and another state-section version (each
#   re-sealed with a correct CRC so the check behind the CRC is reached),
#   bytes appended.
#
# The good snapshot is a real one when the agent has KVM. Without KVM it is
# the synthetic stream of tests/tools/mksnap (a valid file of a plausible
# VM): restoring it unchanged must fail only for want of KVM, so every other
# error comes from the damage. Without mksnap and KVM, or without python3
# (used to walk frames and recompute CRC32C), that part exits 77, loudly.
. "$(dirname "$0")/lib.sh"

MKSNAP=$B/tests/tools/mksnap
start_agent b

# restore FILE must fail with stderr matching REGEX, leaving nothing behind.
# File names are chosen so that REGEX cannot match the path in the message.
bad_restore() {
	local desc=$1 file=$2 re=$3
	bad "$desc" 1 "$re" kv b vm restore "$file" --name victim
	grep -q -- "$file" "$ERR" || fail "$desc: the error does not name the file: $(cat "$ERR")"
	no_vms_left b
}

log "files that are no snapshot at all"
bad_restore "nonexistent file" "$T/nonexistent.snap" "No such file or directory"
: >"$T/zero-length.snap"
bad_restore "empty file" "$T/zero-length.snap" "is empty"
head -c 65536 /dev/urandom >"$T/random.snap"
bad_restore "random garbage" "$T/random.snap" "not a (valid|kvmig) snapshot"
mkdir "$T/adir"
bad_restore "a directory" "$T/adir" "directory"
bad "restore with a bad --name" 1 "name 'bad/name'" kv b vm restore "$T/random.snap" --name "bad/name"
no_vms_left b

command -v python3 >/dev/null || skip "damaged-snapshot cases need python3 to edit frames"

# snap.py: walk the frames of a snapshot file and edit them.
#   frames FILE                   "offset type length" per frame
#   flip FILE OFFSET              invert one byte
#   patch FILE OFFSET HEX         overwrite bytes, then re-seal the frame
#                                 holding OFFSET with a correct CRC32C
cat >"$T/snap.py" <<'EOF'
import struct, sys
def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff
def frames(buf):
    off, out = 0, []
    while off + 8 <= len(buf):
        typ, _flags, ln = struct.unpack_from("<HHI", buf, off)
        out.append((off, typ, ln))
        off += 8 + ln + 4
    return out
cmd, path = sys.argv[1], sys.argv[2]
buf = bytearray(open(path, "rb").read())
if cmd == "frames":
    for off, typ, ln in frames(buf):
        print(off, typ, ln)
    sys.exit(0)
off = int(sys.argv[3])
if cmd == "flip":
    buf[off] ^= 0xff
elif cmd == "patch":
    new = bytes.fromhex(sys.argv[4])
    buf[off:off + len(new)] = new
    for f, _typ, ln in frames(buf):
        if f <= off < f + 8 + ln:
            struct.pack_into("<I", buf, f + 8 + ln, crc32c(buf[f:f + 8 + ln]))
            break
    else:
        sys.exit("offset %d is in no frame" % off)
open(path, "wb").write(buf)
EOF
snap() { python3 "$T/snap.py" "$@" || fail "snap.py $*"; }

start_agent a
if have_kvm a; then
	log "a real snapshot to damage"
	ok "vm start src" kv a vm start src --mem 64M --vcpus 2 --guest memcheck,workset=4M
	wait_until 60 "src progress > 0" field_gt a src .guest_stats.progress 0
	ok "vm save src" kv a vm save src "$T/good.snap"
	ok "vm stop src" kv a vm stop src
	KIND=real
elif [ -x "$MKSNAP" ]; then
	log "a synthetic snapshot to damage (no KVM: $KVM_REASON)"
	"$MKSNAP" "$T/good.snap" --vcpus 2 --pages 300 || fail "mksnap failed"
	bad_restore "the undamaged synthetic snapshot fails only for want of KVM" "$T/good.snap" "kvm"
	KIND=synthetic
else
	skip "damaged-snapshot cases need a snapshot to damage: a real one needs /dev/kvm ($KVM_REASON), a synthetic one $MKSNAP (not built)"
fi
SIZE=$(stat -c %s "$T/good.snap")
snap frames "$T/good.snap" >"$T/frames"
echo "$KIND snapshot: $SIZE bytes, $(wc -l <"$T/frames") frames"
# Frame types (protocol/wire.h): 1 HELLO, 2 PAGES, 5 STATE, 6 COMPLETE.
read -r HELLO_OFF _ _ < <(awk '$2 == 1' "$T/frames" | head -n 1)
read -r PAGES_OFF _ PAGES_LEN < <(awk '$2 == 2' "$T/frames" | head -n 1)
read -r STATE_OFF _ STATE_LEN < <(awk '$2 == 5' "$T/frames" | tail -n 1)
[ "$HELLO_OFF" = 0 ] && [ -n "$PAGES_OFF" ] && [ -n "$STATE_OFF" ] ||
	fail "unexpected frame layout: $(tr '\n' ';' <"$T/frames")"
SECOND_OFF=$(awk 'NR == 2 { print $1 }' "$T/frames")

variant() {	# name: a fresh copy of the good file
	cp "$T/good.snap" "$T/$1.snap"
	echo "$T/$1.snap"
}

log "truncated"
for cut in 4 10 $((SIZE / 2)) $((SIZE - 1)); do
	head -c "$cut" "$T/good.snap" >"$T/cut-$cut.snap"
	bad_restore "cut to $cut of $SIZE bytes" "$T/cut-$cut.snap" "truncated"
done

log "one flipped byte"
f=$(variant flip-hello); snap flip "$f" 30
bad_restore "byte flipped in HELLO" "$f" "checksum mismatch"
f=$(variant flip-pages); snap flip "$f" $((PAGES_OFF + 8 + PAGES_LEN / 2))
bad_restore "byte flipped in PAGES" "$f" "checksum mismatch"
f=$(variant flip-state); snap flip "$f" $((STATE_OFF + 8 + STATE_LEN / 2))
bad_restore "byte flipped in the last STATE" "$f" "checksum mismatch"
f=$(variant flip-type); snap flip "$f" "$SECOND_OFF"
bad_restore "frame type flipped" "$f" "unknown frame type"
f=$(variant flip-crc); snap flip "$f" $((SIZE - 1))
bad_restore "last CRC byte flipped" "$f" "checksum mismatch"

log "other versions and magic (re-sealed, so the CRC is right)"
f=$(variant version2); snap patch "$f" 16 0200	# HELLO: magic u64 at 8, version u16 at 16
bad_restore "stream version 2" "$f" "stream version 2"
f=$(variant magic); snap patch "$f" 8 4b564d4947585858
bad_restore "bad magic" "$f" "bad magic"
f=$(variant secver); snap patch "$f" $((STATE_OFF + 8 + 2)) 6300	# state section version u16
bad_restore "state section version 99" "$f" "version 99"

log "bytes appended"
f=$(variant tail); printf 'extra' >>"$f"
bad_restore "bytes after the end" "$f" "after the end"

if [ "$KIND" = real ]; then
	log "the good snapshot restores in the same agent"
	ok "vm restore good" kv b vm restore "$T/good.snap" --name good --json
	jq_out '.name == "good" and .state == "running" and .guest_stats.errors == 0'
	ok "vm stop good" kv b vm stop good
else
	log "still: the undamaged synthetic snapshot fails only for want of KVM"
	bad_restore "undamaged synthetic snapshot" "$T/good.snap" "kvm"
fi
no_vms_left b
stop_agent b
stop_agent a
echo "PASS: $E2E_NAME ($KIND snapshot)"
