#!/bin/bash
# SPDX-License-Identifier: MIT
#
# End-to-end live migration, kvmig next to QEMU 7.2, over TCP loopback on one
# host: total time, downtime as each engine reports it, downtime as the guest
# sees it, bytes, rounds; then the raw loopback TCP throughput and kvmig's
# bulk-round throughput against it.
#
# Usage: bench/e2e.sh [BUILD_DIR]     (default build/; `make` first)
#        KVMIG_E2E_ONLY="1 4" bench/e2e.sh ...   runs only those scenarios
#
# Without /dev/kvm it reruns itself inside tests/vmhost/run-in-vm.sh (a
# QEMU-TCG VM with nested KVM) and says so; the table is printed from there.
#
# The same guest on both sides: kvmig's seqdirty (vm/guests/seqdirty.S) and
# bench/qemu/dirty.S (a boot sector, assembled here per working-set size)
# both increment one word in every 4 KiB page of [2 MiB, 2 MiB + WORKSET),
# pass after pass, on 1 vCPU, and report progress every 256 pages (kvmig:
# the guest event port; QEMU: one byte to isa-debugcon). Each scenario warms
# up to the same progress on both, then migrates with max downtime 300 ms.
# kvmig: build/bench/bench_migrate run (source VM and destination thread in
# one process); QEMU: two qemu-system-x86_64 -accel kvm processes driven by
# bench/qemu/qmp.py. Guest-seen downtime is sampled the same way for both
# (bench_migrate's sampler, every 200 us). Scenarios run kvmig then QEMU, one
# after the other, never at the same time. A migration that has not finished
# after the scenario's timeout is given up (kvmig --timeout, QEMU
# migrate_cancel): the 256 MiB working set keeps its size but is capped at
# 90 s, since under nested emulation neither engine may converge on it.
# Raw results (JSON, kvmig's stop-and-copy timeline) go to BUILD_DIR/bench/e2e-last/.
set -u
B=${1:-build}
cd "$(dirname "$0")/.." || exit 1
BM=$B/bench/bench_migrate
QEMU=$(command -v qemu-system-x86_64 || true)

# scenario: label | guest RAM | working set | kvmig options | qmp.py options | timeout s | warm pages
SCENARIOS=(
	"1G, 16M|1G|16M|||120|"
	"1G, 256M|1G|256M|||90|65536"
	"1G, 16M, xbzrle 64M|1G|16M|--xbzrle 64M|--xbzrle 64M|120|"
	"1G, 16M, zstd, 2 channels|1G|16M|--compress zstd --parallel 2|--zstd 2|120|"
	"1G, 16M, auto-converge|1G|16M|--auto-converge|--auto-converge|120|"
	"4G, 16M|4G|16M|||120|"
)

# ---- outside the VM: build what is missing, then go where /dev/kvm is -------
if [ -z "${KVMIG_E2E_IN_VM:-}" ]; then
	echo "# bench/e2e.sh $*"
	if [ ! -x "$BM" ]; then
		make --no-print-directory O="$B" "$BM" >&2 || exit 1
	fi
	mkdir -p "$B/bench/qemu"
	for ws in $(printf '%s\n' "${SCENARIOS[@]}" | cut -d'|' -f3 | sort -u); do
		img=$B/bench/qemu/dirty-$ws.img
		[ "$img" -nt bench/qemu/dirty.S ] && continue
		bytes=$(numfmt --from=iec "$ws")
		as --32 --defsym WORKSET="$bytes" -o "$B/bench/qemu/dirty-$ws.o" bench/qemu/dirty.S &&
			ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$img.tmp" \
				"$B/bench/qemu/dirty-$ws.o" || exit 1
		[ "$(stat -c %s "$img.tmp")" = 512 ] || { echo "dirty.S: not 512 bytes" >&2; exit 1; }
		truncate -s 1M "$img.tmp" && mv "$img.tmp" "$img"
	done
	if [ ! -c /dev/kvm ]; then
		echo "# no /dev/kvm here: running inside tests/vmhost/run-in-vm.sh" \
			"(QEMU-TCG VM, kvm_amd on emulated SVM, 2 vCPUs, 8G)"
		echo "# host: $(nproc) CPUs, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
		tests/vmhost/run-in-vm.sh --mem 8G --smp 2 --timeout 1800 \
			--env KVMIG_E2E_IN_VM=1 -- bench/e2e.sh "$B"
		rc=$?
		echo "# host load average after: $(cut -d' ' -f1-3 /proc/loadavg)" \
			"(the VM's 2 vCPUs are host threads: other load on the host slows them)"
		exit $rc
	fi
	export KVMIG_E2E_IN_VM=host
fi

# ---- where /dev/kvm is ------------------------------------------------------
[ -c /dev/kvm ] || { echo "bench/e2e.sh: no /dev/kvm" >&2; exit 1; }
D=$(mktemp -d /tmp/kvmig-e2e.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT
say() { echo ".. $*"; }

where="this host"
[ "$KVMIG_E2E_IN_VM" = 1 ] && where="the vmhost VM (QEMU-TCG, nested KVM: guest code is emulated)"
say "on $where: $(uname -r), $(nproc) CPUs, $(sed -n 's/^model name.*: //p' /proc/cpuinfo | head -1)"
if [ -n "$QEMU" ]; then
	say "QEMU: $("$QEMU" --version | head -1)"
else
	say "QEMU: qemu-system-x86_64 not found: QEMU columns skipped"
fi

say "raw loopback TCP, 1 GiB"
"$BM" tcp --mib 1024 >"$D/tcp.json" 2>"$D/tcp.err" || echo '{}' >"$D/tcp.json"

# qemu_start SIDE MEM IMG [ARGS...]: start one QEMU in the background
qemu_start() {
	local side=$1 mem=$2 img=$3
	shift 3
	cp "$img" "$D/$side.img"
	"$QEMU" -accel kvm -machine pc -nodefaults -no-user-config -smp 1 -m "$mem" \
		-display none -serial none -monitor none \
		-qmp "unix:$D/$side.qmp,server=on,wait=off" \
		-drive "file=$D/$side.img,format=raw,if=ide" \
		-chardev "file,id=dbg,path=$D/$side.log" \
		-device isa-debugcon,iobase=0xe9,chardev=dbg "$@" 2>"$D/$side.err" &
	PIDS+=($!)
}

i=0
for sc in "${SCENARIOS[@]}"; do
	IFS='|' read -r label mem ws kopts qopts tmo warm <<<"$sc"
	i=$((i + 1))
	if [ -n "${KVMIG_E2E_ONLY:-}" ] && ! [[ " $KVMIG_E2E_ONLY " == *" $i "* ]]; then
		echo '{"status": "not run (KVMIG_E2E_ONLY)"}' | tee "$D/k$i.json" >"$D/q$i.json"
		continue
	fi
	[ -n "$warm" ] || warm=$((2 * $(numfmt --from=iec "$ws") / 4096))
	say "[$i/${#SCENARIOS[@]}] $label: kvmig"
	# shellcheck disable=SC2086
	if ! KVMIG_LOG=debug "$BM" run --mem "$mem" --workset "$ws" --warm "$warm" --timeout $((tmo * 1000)) \
		$kopts >"$D/k$i.json" 2>"$D/k$i.err"; then
		printf '{"status": "error: %s"}\n' "$(tail -1 "$D/k$i.err" | tr -d '"\\')" >"$D/k$i.json"
	fi
	[ -n "$QEMU" ] || continue
	say "[$i/${#SCENARIOS[@]}] $label: QEMU"
	rm -f "$D"/src.* "$D"/dst.*
	PIDS=()
	qemu_start src "$mem" "$B/bench/qemu/dirty-$ws.img"
	qemu_start dst "$mem" "$B/bench/qemu/dirty-$ws.img" -incoming defer
	port=$((20000 + RANDOM % 20000))
	# shellcheck disable=SC2086
	if ! python3 bench/qemu/qmp.py --watcher "$BM" --src "$D/src.qmp" --dst "$D/dst.qmp" \
		--uri "tcp:127.0.0.1:$port" --src-log "$D/src.log" --dst-log "$D/dst.log" \
		--warm $((warm / 256)) --downtime 300 --timeout "$tmo" $qopts \
		>"$D/q$i.json" 2>"$D/q$i.err"; then
		printf '{"status": "error: %s"}\n' \
			"$(cat "$D/q$i.err" "$D/src.err" "$D/dst.err" | grep . | tail -1 | tr -d '"\\')" \
			>"$D/q$i.json"
	fi
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	PIDS=()
done

# ---- the table --------------------------------------------------------------
printf '%s\n' "${SCENARIOS[@]}" >"$D/scenarios"
# the raw results (JSON, stderr with kvmig's stop-and-copy timeline) stay in the build dir
rm -rf "$B/bench/e2e-last" && mkdir -p "$B/bench/e2e-last" && cp "$D"/*.json "$D"/*.err \
	"$D/scenarios" "$B/bench/e2e-last/" 2>/dev/null
python3 - "$D" "${QEMU:+1}" <<'EOF'
import json, os, sys

d, have_qemu = sys.argv[1], sys.argv[2] == "1"
scen = [l.rstrip("\n").split("|") for l in open(os.path.join(d, "scenarios"))]
MiB = 1 << 20


def load(name):
    try:
        with open(os.path.join(d, name)) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return {"status": "no result"}


def size(v):
    return int(v[:-1]) << {"K": 10, "M": 20, "G": 30}[v[-1]]


tcp = load("tcp.json")
tcp_bps = tcp.get("tcp_bytes_per_s", 0)
n = len(scen)
K = [load("k%d.json" % (i + 1)) for i in range(n)]
Q = [load("q%d.json" % (i + 1)) if have_qemu else {} for i in range(n)]


def ok(r):
    return r.get("status") == "completed"


def label(i):
    s = scen[i][0]
    if scen[i][2] == "256M":
        s += " [%s s cap]" % scen[i][5]
    return s


def cols(r):
    if "total_ms" not in r:
        return "%6s %7s %8s %8s %5s" % ("-", "-", "-", "-", "-")
    if not ok(r):
        return "%6d %7s %8s %8.1f %5d" % (r["total_ms"], "FAIL", "-",
                                          r["transferred_bytes"] / MiB, r["dirty_sync_count"])
    return "%6d %7d %8.0f %8.1f %5d" % (r["total_ms"], r["downtime_ms"], r["guest_downtime_ms"],
                                        r["transferred_bytes"] / MiB, r["dirty_sync_count"])


def ratio(a, b):
    return "%6.2f" % (a / b) if b else "%6s" % "-"


def wire(r, i):
    """Bytes for the bytes ratio: loopback bytes for zstd (QEMU's counter is uncompressed)."""
    if "zstd" in scen[i][0] and r.get("lo_bytes", -1) > 0:
        return r["lo_bytes"]
    return r["transferred_bytes"]


W = 38
qname = "QEMU 7.2" if have_qemu else "QEMU: not installed, skipped"
sub = "%-*s | %6s %7s %8s %8s %5s | %6s %7s %8s %8s %5s | %6s %6s %6s %6s" % (
    W, "", "total", "dt_eng", "dt_guest", "MiB", "rnds", "total", "dt_eng", "dt_guest", "MiB",
    "rnds", "dt_eng", "dt_gst", "total", "bytes")
print("%-*s | %-39s | %-39s | %s" % (W, "scenario (guest RAM, working set)", "kvmig", qname,
                                     "kvmig/QEMU"))
print(sub)
print("-" * len(sub))
for i in range(n):
    k, q = K[i], Q[i]
    if have_qemu and ok(k) and ok(q):
        r = "%s %s %s %s" % (ratio(k["downtime_ms"], q["downtime_ms"]),
                             ratio(k["guest_downtime_ms"], q["guest_downtime_ms"]),
                             ratio(k["total_ms"], q["total_ms"]), ratio(wire(k, i), wire(q, i)))
    else:
        r = "%6s %6s %6s %6s" % ("n/a", "n/a", "n/a", "n/a")
    print("%-*s | %s | %s | %s" % (W, label(i), cols(k), cols(q) if have_qemu else "%39s" % "-", r))

print()
print("ms; MiB = 2^20 bytes; MB/s = 10^6 bytes/s. rnds = dirty_sync_count. FAIL = did not complete (below).")
print("dt_eng: each engine's own downtime. kvmig: source paused -> destination confirmed the VM runs")
print("  (RESUMED). QEMU: source stopped -> source done sending (destination load and start not included).")
print("dt_guest: longest interval in which the guest's page counter grew on neither side, sampled every")
print("  200 us by the same sampler, from 50 ms before the migration until the destination ran >= 4096")
print("  pages and >= 1 s. Its resolution is the sampler's largest spacing (below).")
print("MiB: kvmig transferred_bytes, QEMU ram.transferred. QEMU 7.2 counts multifd pages at 4 KiB")
print("  uncompressed, so its zstd MiB is not wire bytes: the zstd bytes ratio uses loopback bytes.")

print()
print("%-*s | %-20s | %-15s | %-23s | %-19s | %-15s | %-13s" % (
    W, "details", "kvmig bulk round", "avg MB/s", "loopback MiB (lo tx)", "page writes/s k|Q",
    "dt_guest at ms", "sampler max us"))
print("%-*s | %8s %11s | %7s %7s | %7s %7s %7s | %9s %9s | %7s %7s | %6s %6s" % (
    W, "", "MB/s", "of raw TCP", "kvmig", "QEMU", "kvmig", "QEMU", "ratio", "before", "during",
    "kvmig", "QEMU", "kvmig", "QEMU"))


def avg(r):
    return "%7.1f" % (r["transferred_bytes"] / r["total_ms"] / 1e3) if r.get("total_ms") \
        else "%7s" % "-"


def gap(r):
    return "%7.0f" % r["guest_gap_at_ms"] if "guest_gap_at_ms" in r else "%7s" % "-"


for i in range(n):
    k, q = K[i], Q[i]
    bulk = k.get("bulk_bytes_per_s", 0)
    bulk_s = ("%8.1f %10.0f%%" % (bulk / 1e6, 100.0 * bulk / tcp_bps)) if bulk and tcp_bps \
        else "%8s %11s" % ("-", "-")
    kl, ql = k.get("lo_bytes", -1), q.get("lo_bytes", -1)
    lo = "%7s %7s %7s" % ("%.1f" % (kl / MiB) if kl >= 0 else "-",
                          "%.1f" % (ql / MiB) if ql >= 0 else "-",
                          ratio(kl, ql).strip() if kl > 0 and ql > 0 else "-")
    pace = [("%.0fk|%.0fk" % (k.get(key, 0) / 1e3, q.get(key, 0) / 1e3))
            for key in ("pages_per_s", "mig_pages_per_s")]
    print("%-*s | %s | %s %s | %s | %9s %9s | %s %s | %6s %6s" % (
        W, label(i), bulk_s, avg(k), avg(q), lo, pace[0], pace[1], gap(k), gap(q),
        k.get("watch_max_sample_us", "-"), q.get("watch_max_sample_us", "-")))

notes = []
for i in range(n):
    for who, r in (("kvmig", K[i]), ("QEMU", Q[i] if have_qemu else None)):
        if r is None or ok(r):
            continue
        extra = ""
        if "src_state" in r:
            extra = " (source guest %s, its progress stopped %.0f ms after the migration" \
                    " started, the switchover came at %d ms; destination guest %s)" % (
                        r["src_state"], r["guest_gap_at_ms"], r["total_ms"] - r["downtime_ms"],
                        r["dst_state"])
        notes.append("%s, %s: %s%s%s" % (label(i), who, r.get("status", "?"), extra,
                                         ": " + r["error"] if r.get("error") else ""))
        if who == "kvmig":
            try:
                with open(os.path.join(d, "k%d.err" % (i + 1))) as f:
                    notes += ["    " + l.strip() for l in f if l.startswith("kvmig: error")]
            except OSError:
                pass
if notes:
    print()
    print("did not complete:")
    for s in notes:
        print("  " + s)

print()
print("avg MB/s: transferred bytes / total time. page writes/s: the guest's own pace over 0.5 s before")
print("  the migration, and while it migrated (source side, until its pause). dt_guest at: where the")
print("  longest no-progress interval began, ms after the migration started (at the switchover when it")
print("  is near total - dt_eng). bulk round '-': round 0 sent under 1 MiB (zstd), too little to measure.")
if tcp_bps:
    print("raw loopback TCP (1 GiB, 1 MiB write()/read() on 2 threads, the channel's socket options, no"
          " guest running): %.1f MB/s" % (tcp_bps / 1e6))
    order = sorted(range(n), key=lambda i: (size(scen[i][2]), size(scen[i][1])), reverse=True)
    best = next((i for i in order if K[i].get("bulk_bytes_per_s", 0)), order[0])
    b = K[best].get("bulk_bytes_per_s", 0)
    print("kvmig bulk round (round 0 bytes / its time, the engine's own measurement), on its largest"
          " bulk round (%s): %.1f MB/s = %.2f x raw TCP" % (label(best), b / 1e6, b / tcp_bps))
else:
    print("raw loopback TCP: no result (%s)" % tcp.get("status", "?"))
EOF
