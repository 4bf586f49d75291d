#!/bin/bash
# SPDX-License-Identifier: MIT
#
# End-to-end live migration, kvmig next to QEMU 7.2, over TCP loopback on one
# host: total time, downtime as each engine reports it, downtime as the guest
# sees it, bytes, rounds, the guest's dirty rate; then the raw loopback TCP
# throughput and kvmig's bulk-round throughput against it.
#
# Usage: bench/e2e.sh [BUILD_DIR]     (default build/; `make` first)
#        KVMIG_E2E_ONLY="1 4" bench/e2e.sh ...   runs only those scenarios
#
# Where: natively when `bench_migrate probe` runs a guest on this host's
# /dev/kvm; otherwise (no /dev/kvm, or one that runs no guest) it reruns
# itself inside tests/vmhost/run-in-vm.sh (a QEMU-TCG VM with nested KVM)
# and says so; the table is printed from there. QEMU uses -accel kvm on the
# same /dev/kvm as kvmig.
#
# The same guest on both sides: kvmig's seqdirty (vm/guests/seqdirty.S) and
# bench/qemu/dirty.S (a boot sector, assembled here per working-set size)
# both run in long mode with 2 MiB pages and increment one word in every
# 4 KiB page of [2 MiB, 2 MiB + WORKSET), pass after pass, on 1 vCPU, and
# report progress every 256 pages (kvmig: the guest event port; QEMU: one
# byte to isa-debugcon). Each guest's pace just before the move is measured
# (0.5 s) and printed, so the reader can see that they dirty alike. Each
# scenario warms up to the same progress on both, then migrates.
#
# The same limits for both engines, from one scenario line (SCENARIOS):
#  - max downtime DOWNTIME_MS (kvmig --max-downtime, QEMU downtime-limit);
#  - bandwidth: both capped at the same bytes/s, or kvmig unlimited and QEMU
#    at QEMU_UNLIMITED_BW (QEMU 7.2 caps at 128 MiB/s by default, which made
#    an earlier version of this table unfair);
#  - no round limit (kvmig --max-iterations 0; QEMU has none): both stop at
#    the scenario's timeout (kvmig --timeout, QEMU migrate_cancel);
#  - XBZRLE cache size; multifd channels and compression (kvmig --parallel
#    and --compress zstd:1, QEMU multifd-channels, multifd-compression zstd,
#    multifd-zstd-level 1);
#  - auto-converge: throttle 20% first, then +10% per step, at most 90%
#    (kvmig's fixed steps, migrate/converge.h; QEMU cpu-throttle-initial 20,
#    cpu-throttle-increment 10, max-cpu-throttle 90, tailslow off);
#  - post-copy, switched by hand MS ms after the migration started (kvmig
#    --postcopy manual and bench_migrate's migrate_postcopy() call at MS;
#    QEMU capability postcopy-ram on both sides, postcopy-blocktime on the
#    destination, migrate-start-postcopy at MS), or at once ("now": kvmig
#    --postcopy now, QEMU migrate-start-postcopy right after migrate); the
#    bandwidth cap holds after the switch too (QEMU max-postcopy-bandwidth
#    = max-bandwidth; kvmig's one --bandwidth caps its background push).
#    These scenarios get a table of their own: total, downtime, when the
#    switch happened, fault latency p50/p99 (kvmig's; QEMU 7.2 reports
#    none), vCPU blocked time (kvmig's blocked_ms; QEMU's destination
#    postcopy-vcpu-blocktime, summed over vCPUs), page requests, bytes.
# kvmig's effective options (its JSON "settings") and QEMU's as read back by
# query-migrate-parameters/-capabilities (qmp.py refuses values QEMU did
# not take) are printed per scenario above the table, with the command
# lines; a difference between the two is flagged there.
#
# kvmig: build/bench/bench_migrate run (source VM and destination thread in
# one process); QEMU: two qemu-system-x86_64 -accel kvm processes driven by
# bench/qemu/qmp.py. A QEMU migration counts only with status "completed"
# and a destination that runs the guest on; anything else is a FAIL in the
# table with its status below it. Guest-seen downtime is sampled the same
# way for both (bench_migrate's sampler, every 200 us). Scenarios run kvmig
# then QEMU, one after the other, never at the same time.
# Raw results (JSON, kvmig's stop-and-copy timeline) go to BUILD_DIR/bench/e2e-last/.
set -u
B=${1:-build}
cd "$(dirname "$0")/.." || exit 1
BM=$B/bench/bench_migrate
QEMU=$(command -v qemu-system-x86_64 || true)
DOWNTIME_MS=300
QEMU_UNLIMITED_BW=$((1 << 40))	# bytes/s: "unlimited" for QEMU, far above any loopback
THROTTLE="20 10 90"		# auto-converge: initial %, step %, maximum %
CMD=${KVMIG_E2E_CMD:-bench/e2e.sh $*}
[ -n "${KVMIG_E2E_ONLY:-}" ] && CMD="KVMIG_E2E_ONLY=\"$KVMIG_E2E_ONLY\" $CMD"

# label | guest RAM | working set | bandwidth (bytes/s, 0 = unlimited) | xbzrle cache |
#   channels | compression | auto-converge (1) | timeout s | warm pages (default 2 passes) |
#   transport (tcp, or tls: both engines on TLS 1.3 with the same certificates, mutual
#   authentication: kvmig --tls-dir, QEMU tls-creds-x509 verify-peer=on) |
#   post-copy (empty: none; MS: switched by hand MS ms after the start; now: at once)
SCENARIOS=(
	"1G, 16M|1G|16M|0||1|none||120|"
	"1G, 256M|1G|256M|0||1|none||90|65536"
	"1G, 16M, both at 100 MiB/s|1G|16M|100M||1|none||120|"
	"1G, 16M, xbzrle 64M|1G|16M|0|64M|1|none||120|"
	"1G, 16M, zstd, 2 channels|1G|16M|0||2|zstd||120|"
	"1G, 256M, 256 MiB/s, auto-converge|1G|256M|256M||1|none|1|90|65536"
	"4G, 16M|4G|16M|0||1|none||120|"
	"1G, 256M, TLS|1G|256M|0||1|none||90|65536|tls"
	"1G, 256M, TLS, 2 channels|1G|256M|0||2|none||90|65536|tls"
	"1G, 256M, 256 MiB/s, post-copy at 0.2 s|1G|256M|256M||1|none||60|65536|tcp|200"
)

# ---- outside the VM: build what is missing, then go where KVM runs guests ---
if [ -z "${KVMIG_E2E_IN_VM:-}" ]; then
	echo "# command: $CMD"
	echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC'); uptime before: $(uptime)"
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
	if ! probe=$("$BM" probe 2>&1); then
		echo "# KVM probe failed here ($probe): running inside tests/vmhost/run-in-vm.sh" \
			"(QEMU-TCG VM, kvm_amd on emulated SVM, 2 vCPUs, 8G)"
		echo "# host: $(nproc) CPUs"
		tests/vmhost/run-in-vm.sh --mem 8G --smp 2 --timeout 1800 \
			--env KVMIG_E2E_IN_VM=1 --env "KVMIG_E2E_ONLY=${KVMIG_E2E_ONLY:-}" \
			--env "KVMIG_E2E_CMD=$CMD" -- bench/e2e.sh "$B"
		rc=$?
		echo "# host uptime after: $(uptime)" \
			"(the VM's 2 vCPUs are host threads: other load on the host slows them)"
		exit $rc
	fi
	echo "# KVM probe passed (a seqdirty guest ran on /dev/kvm): running natively"
	export KVMIG_E2E_IN_VM=host
fi

# ---- where KVM runs guests ------------------------------------------------
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
	"$QEMU" --version | head -1 >"$D/qemu_version"
	say "QEMU: $(cat "$D/qemu_version")"
else
	say "QEMU: qemu-system-x86_64 not found: QEMU columns skipped"
fi
uptime >"$D/uptime_before"

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

read -r th_init th_step th_max <<<"$THROTTLE"
i=0
for sc in "${SCENARIOS[@]}"; do
	IFS='|' read -r label mem ws bw xbz chans comp ac tmo warm transport pc <<<"$sc"
	i=$((i + 1))
	if [ -n "${KVMIG_E2E_ONLY:-}" ] && ! [[ " $KVMIG_E2E_ONLY " == *" $i "* ]]; then
		echo '{"status": "not run (KVMIG_E2E_ONLY)"}' | tee "$D/k$i.json" >"$D/q$i.json"
		continue
	fi
	[ -n "$warm" ] || warm=$((2 * $(numfmt --from=iec "$ws") / 4096))
	bwb=$(numfmt --from=iec "$bw")
	# one scenario line -> both engines' options
	kopts=(--mem "$mem" --workset "$ws" --warm "$warm" --timeout $((tmo * 1000))
		--max-downtime "$DOWNTIME_MS" --bandwidth "$bwb" --max-iterations 0)
	qopts=(--warm $((warm / 256)) --timeout "$tmo" --downtime "$DOWNTIME_MS")
	if [ "$bwb" = 0 ]; then
		qopts+=(--max-bandwidth "$QEMU_UNLIMITED_BW")
	else
		qopts+=(--max-bandwidth "$bwb")
	fi
	if [ -n "$xbz" ]; then
		kopts+=(--xbzrle "$xbz")
		qopts+=(--xbzrle "$xbz")
	fi
	if [ "$chans" -gt 1 ] || [ "$comp" != none ]; then
		kc=$comp
		[ "$comp" = zstd ] && kc=zstd:1
		kopts+=(--parallel "$chans" --compress "$kc")
		qopts+=(--multifd "$chans" --compression "$comp" --zstd-level 1)
	fi
	qtls_src=() qtls_dst=()
	if [ "${transport:-tcp}" = tls ]; then
		if [ ! -f "$D/certs/good/ca-cert.pem" ]; then
			tests/helpers/mkcerts.sh "$D/certs" >"$D/certs.log" 2>&1 ||
				{ echo "bench/e2e.sh: tests/helpers/mkcerts.sh failed: $(tail -1 "$D/certs.log")" >&2; exit 1; }
		fi
		kopts+=(--tls-dir "$D/certs/good")
		qtls_src=(-object "tls-creds-x509,id=tls0,dir=$D/certs/good,endpoint=client,verify-peer=on")
		qtls_dst=(-object "tls-creds-x509,id=tls0,dir=$D/certs/good,endpoint=server,verify-peer=on")
		qopts+=(--tls-creds tls0 --tls-hostname localhost)
	fi
	if [ -n "$ac" ]; then
		kopts+=(--auto-converge)
		qopts+=(--auto-converge --throttle-initial "$th_init" --throttle-increment "$th_step"
			--max-throttle "$th_max")
	fi
	if [ "${pc:-}" = now ]; then
		kopts+=(--postcopy now)
		qopts+=(--postcopy-after 0)
	elif [ -n "${pc:-}" ]; then
		kopts+=(--postcopy manual --postcopy-after "$pc")
		qopts+=(--postcopy-after "$(printf '%d.%03d' $((pc / 1000)) $((pc % 1000)))")
	fi
	echo "$BM run ${kopts[*]}" >"$D/k$i.cmd"
	say "[$i/${#SCENARIOS[@]}] $label: kvmig"
	if ! KVMIG_LOG=debug "$BM" run "${kopts[@]}" >"$D/k$i.json" 2>"$D/k$i.err"; then
		printf '{"status": "error: %s"}\n' "$(tail -1 "$D/k$i.err" | tr -d '"\\')" >"$D/k$i.json"
	fi
	[ -n "$QEMU" ] || continue
	say "[$i/${#SCENARIOS[@]}] $label: QEMU"
	rm -f "$D"/src.* "$D"/dst.*
	PIDS=()
	qemu_start src "$mem" "$B/bench/qemu/dirty-$ws.img" "${qtls_src[@]}"
	qemu_start dst "$mem" "$B/bench/qemu/dirty-$ws.img" -incoming defer "${qtls_dst[@]}"
	port=$((20000 + RANDOM % 20000))
	qargs=(--watcher "$BM" --src "$D/src.qmp" --dst "$D/dst.qmp" --uri "tcp:127.0.0.1:$port"
		--src-log "$D/src.log" --dst-log "$D/dst.log" "${qopts[@]}")
	echo "python3 bench/qemu/qmp.py ${qopts[*]}" >"$D/q$i.cmd"
	# bounded: warm-up (300 s) + the move (tmo) + slack; QEMU 7.2 multifd over TLS was seen to hang here
	if ! timeout $((tmo + 420)) python3 bench/qemu/qmp.py "${qargs[@]}" >"$D/q$i.json" 2>"$D/q$i.err"; then
		printf '{"status": "error: %s"}\n' \
			"$(cat "$D/q$i.err" "$D/src.err" "$D/dst.err" | grep -v warning: | grep . |
				tail -1 | tr -d '"\\')" >"$D/q$i.json"
	fi
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	PIDS=()
done
uptime >"$D/uptime_after"

# ---- the table --------------------------------------------------------------
printf '%s\n' "${SCENARIOS[@]}" >"$D/scenarios"
# the raw results (JSON, stderr with kvmig's stop-and-copy timeline) stay in the build dir
rm -rf "$B/bench/e2e-last" && mkdir -p "$B/bench/e2e-last" && cp "$D"/*.json "$D"/*.err \
	"$D"/*.cmd "$D/scenarios" "$D"/uptime_* "$D/qemu_version" "$B/bench/e2e-last/" 2>/dev/null
python3 - "$D" "${QEMU:+1}" "$QEMU_UNLIMITED_BW" <<'EOF'
import json, os, sys

d, have_qemu, qemu_unlimited = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
scen = [l.rstrip("\n").split("|") for l in open(os.path.join(d, "scenarios"))]
for sc in scen:
    sc.extend([""] * (12 - len(sc)))   # warm, transport and post-copy may be left out
MiB = 1 << 20
LABEL, MEM, WS, BW, XBZ, CHANS, COMP, AC, TMO, WARM, TRANSPORT, POSTCOPY = range(12)


def load(name):
    try:
        with open(os.path.join(d, name)) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return {"status": "no result"}


def text(name, default="?"):
    try:
        with open(os.path.join(d, name)) as f:
            return f.read().strip()
    except OSError:
        return default


def size(v):
    return int(v[:-1]) << {"K": 10, "M": 20, "G": 30}[v[-1]] if v[-1] in "KMG" else int(v)


tcp = load("tcp.json")
tcp_bps = tcp.get("tcp_bytes_per_s", 0)
n = len(scen)
K = [load("k%d.json" % (i + 1)) for i in range(n)]
Q = [load("q%d.json" % (i + 1)) if have_qemu else {} for i in range(n)]
qver = text("qemu_version", "")
qname = ("QEMU " + qver.split()[3]) if have_qemu and len(qver.split()) > 3 else \
    "QEMU" if have_qemu else "QEMU: not installed, skipped"


def ran(r):
    return not r.get("status", "").startswith("not run")


def ok(r):
    return r.get("status") == "completed"


def label(i):
    s = scen[i][LABEL]
    if scen[i][WS] == "256M" and not scen[i][POSTCOPY]:
        s += " [%s s cap]" % scen[i][TMO]
    return s


def rate(v):
    if v >= 1 << 40:
        return "%g TiB/s" % (v / (1 << 40))
    return "%g MiB/s" % (v / MiB)


# ---- the settings: what each engine really ran with --------------------------
print("machine load (uptime) before: %s" % text("uptime_before"))
print("machine load (uptime) after:  %s" % text("uptime_after"))
print("%s; kvmig and QEMU run one after the other, never at the same time."
      % (qver or "QEMU not installed"))
print()
print("settings, per scenario: kvmig's options as its job ran with them (bench_migrate's"
      " \"settings\"), QEMU's")
print("as the source QEMU reported them back (query-migrate-parameters/-capabilities; for"
      " multifd the")
print("destination too). 'unlimited' for QEMU = max-bandwidth %s (%d B/s)%s."
      % (rate(qemu_unlimited), qemu_unlimited,
         ", %.0fx the raw loopback TCP below" % (qemu_unlimited / tcp_bps) if tcp_bps else ""))
mismatch = []
for i in range(n):
    k, q = K[i], Q[i]
    if not ran(k):
        continue
    ks, qs = k.get("settings"), (q.get("settings") or {}).get("src")
    print("[%d] %s" % (i + 1, label(i)))
    print("    command kvmig: %s" % text("k%d.cmd" % (i + 1)))
    if ks:
        print("    kvmig: max-downtime %d ms, bandwidth %s, max-iterations %s, timeout %d s,"
              " xbzrle %s, compress %s, parallel %d, auto-converge %s" % (
                  ks["max_downtime_ms"], rate(ks["bandwidth"]) if ks["bandwidth"] else "unlimited",
                  ks["max_iterations"] or "none", ks["timeout_ms"] // 1000,
                  "%d MiB" % (ks["xbzrle_cache_bytes"] // MiB) if ks["xbzrle_cache_bytes"] else "off",
                  ks["compress"], ks["parallel"],
                  "on (%d%% + %d%%/step, max %d%%)" % (ks["throttle_initial_pct"],
                                                      ks["throttle_step_pct"],
                                                      ks["max_throttle_pct"])
                  if ks["auto_converge"] else "off"))
        kpc = ks.get("postcopy", "off")
        if kpc != "off":
            print("    kvmig post-copy: --postcopy %s%s; --bandwidth caps the background push"
                  " after the switch (requested pages go at once, on the fault channel)" % (
                      kpc, ", migrate_postcopy() at %d ms" % ks["postcopy_after_ms"]
                      if kpc == "manual" else ""))
        kt = k.get("transport") or {}
        print("    kvmig transport: %s%s%s" % (
            kt.get("kind", "?"), ", cipher " + kt["cipher"] if kt.get("cipher") else "",
            ", kernel TLS" if kt.get("ktls") else ""))
    else:
        print("    kvmig: no settings reported (%s)" % k.get("status", "?"))
    if not have_qemu:
        continue
    print("    command QEMU:  %s" % text("q%d.cmd" % (i + 1)))
    if qs:
        caps = qs.get("capabilities", [])
        s = "downtime-limit %d ms, max-bandwidth %s, capabilities [%s]" % (
            qs["downtime-limit"], rate(qs["max-bandwidth"]), " ".join(caps))
        if qs.get("tls-creds"):
            s += ", tls-creds %s (tls-creds-x509 verify-peer=on, tls-hostname %s; GnuTLS" \
                 " default priority)" % (qs["tls-creds"], qs.get("tls-hostname") or "-")
        if "xbzrle" in caps:
            s += ", xbzrle-cache-size %d MiB" % (qs["xbzrle-cache-size"] // MiB)
        if "multifd" in caps:
            dst = (q["settings"].get("dst") or {})
            s += ", multifd-channels %d (dst %s), multifd-compression %s (dst %s)" % (
                qs["multifd-channels"], dst.get("multifd-channels", "?"),
                qs["multifd-compression"], dst.get("multifd-compression", "?"))
            if qs["multifd-compression"] == "zstd":
                s += ", multifd-zstd-level %d" % qs["multifd-zstd-level"]
        if "auto-converge" in caps:
            s += ", cpu-throttle-initial %d%%, -increment %d%%, max-cpu-throttle %d%%, " \
                 "tailslow %s" % (qs["cpu-throttle-initial"], qs["cpu-throttle-increment"],
                                  qs["max-cpu-throttle"], qs["cpu-throttle-tailslow"])
        print("    QEMU:  " + s)
        qpc = q.get("postcopy")
        if "postcopy-ram" in caps:
            qd = (q["settings"].get("dst") or {})
            print("    QEMU post-copy: max-postcopy-bandwidth %s, destination capabilities [%s],"
                  " migrate-start-postcopy %s" % (
                      rate(qs.get("max-postcopy-bandwidth", 0)),
                      " ".join(qd.get("capabilities", [])),
                      "at %d ms" % qpc["after_ms"] if qpc and qpc["after_ms"]
                      else "right after migrate" if qpc else "?"))
        if ks:
            # the same limits, or say where not
            diff = []
            if ks["max_downtime_ms"] != qs["downtime-limit"]:
                diff.append("downtime")
            kb = ks["bandwidth"] or qemu_unlimited
            if kb != qs["max-bandwidth"]:
                diff.append("bandwidth")
            if ks["xbzrle_cache_bytes"] != (qs["xbzrle-cache-size"] if "xbzrle" in caps else 0):
                diff.append("xbzrle")
            qch = qs["multifd-channels"] if "multifd" in caps else 1
            qcomp = qs["multifd-compression"] if "multifd" in caps else "none"
            if ks["parallel"] != qch or ks["compress"].split(":")[0] != qcomp:
                diff.append("channels/compression")
            if ks["auto_converge"] != ("auto-converge" in caps) or ks["auto_converge"] and (
                    ks["throttle_initial_pct"], ks["throttle_step_pct"], ks["max_throttle_pct"]) != (
                    qs["cpu-throttle-initial"], qs["cpu-throttle-increment"], qs["max-cpu-throttle"]):
                diff.append("auto-converge")
            kpc, qpc = ks.get("postcopy", "off"), q.get("postcopy")
            qdc = ((q["settings"].get("dst") or {}).get("capabilities", []))
            if (kpc != "off") != ("postcopy-ram" in caps) or kpc != "off" and (
                    "postcopy-ram" not in qdc or not qpc or
                    (ks["postcopy_after_ms"] if kpc == "manual" else 0) != qpc["after_ms"] or
                    qs.get("max-postcopy-bandwidth") != kb):
                diff.append("post-copy")
            if diff:
                mismatch.append("[%d] %s" % (i + 1, ", ".join(diff)))
                print("    SETTINGS DIFFER: " + ", ".join(diff))
    else:
        print("    QEMU:  no settings reported (%s)" % q.get("status", "?"))
print("same for both everywhere: 1 vCPU, TCP loopback (TLS on top where the scenario says so), no round limit (both stop at the"
      " scenario's timeout).")
if mismatch:
    print("WARNING: the engines' settings differ in " + "; ".join(mismatch))
print()

# ---- the table ----------------------------------------------------------------


def cols(r):
    if not ran(r):
        return "%6s %7s %8s %8s %5s %6s" % ("-", "-", "-", "-", "-", "-")
    dirty = "%6.0f" % (r["pages_per_s"] / 1e3) if "pages_per_s" in r else "%6s" % "-"
    if not ok(r):
        return "%6s %7s %8s %8s %5s %s" % ("FAIL", "-", "-", "-", "-", dirty)
    return "%6d %7d %8.0f %8.1f %5d %s" % (r["total_ms"], r["downtime_ms"], r["guest_downtime_ms"],
                                           r["transferred_bytes"] / MiB, r["dirty_sync_count"],
                                           dirty)


def ratio(a, b):
    return "%6.2f" % (a / b) if b else "%6s" % "-"


def wire(r, i):
    """Bytes for the bytes ratio: loopback bytes for zstd (QEMU's counter is uncompressed)
    and post-copy (QEMU's ram.transferred leaves its return path's page requests out)."""
    if (scen[i][COMP] == "zstd" or scen[i][POSTCOPY]) and r.get("lo_bytes", -1) > 0:
        return r["lo_bytes"]
    return r["transferred_bytes"]


W = 50
sub = "%-*s | %6s %7s %8s %8s %5s %6s | %6s %7s %8s %8s %5s %6s | %6s %6s %6s %6s" % (
    W, "", "total", "dt_eng", "dt_guest", "MiB", "rnds", "dirty", "total", "dt_eng", "dt_guest",
    "MiB", "rnds", "dirty", "dt_eng", "dt_gst", "total", "bytes")
print("%-*s | %-46s | %-46s | %s" % (W, "scenario (guest RAM, working set, limits)", "kvmig",
                                     qname, "kvmig/QEMU"))
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
    print("%-*s | %s | %s | %s" % (W, "[%d] %s" % (i + 1, label(i)), cols(k),
                                   cols(q) if have_qemu else "%46s" % "-", r))

print()
print("ms; MiB = 2^20 bytes; MB/s = 10^6 bytes/s. rnds = dirty_sync_count. FAIL = did not complete:")
print("  its status is below (for QEMU: query-migrate not 'completed', or the destination did not")
print("  run on); a FAIL has no figures and no ratios. '-' = not run.")
print("dirty: the guest's own pace just before the migration, k page writes/s over 0.5 s (both guests")
print("  write one word per 4 KiB page, sequentially, in long mode with 2 MiB pages).")
print("dt_eng: each engine's own downtime. kvmig: source paused -> destination confirmed the VM runs")
print("  (RESUMED). QEMU: source stopped -> source done sending (destination load and start not included).")
print("dt_guest: longest interval in which the guest's page counter grew on neither side, sampled every")
print("  200 us by the same sampler, from 50 ms before the migration until the destination ran >= 4096")
print("  pages and >= 1 s. The sampler thread runs SCHED_FIFO (watch_sched 'fifo' in each engine's")
print("  JSON) so that neither engine's threads keep it waiting for a CPU; its resolution is the")
print("  sampler's largest spacing (below).")
print("MiB: kvmig transferred_bytes, QEMU ram.transferred. QEMU 7.2 counts multifd pages at 4 KiB")
print("  uncompressed, so its zstd MiB is not wire bytes: the zstd bytes ratio uses loopback bytes.")
print("  Post-copy rows use loopback bytes (both directions, every channel) for the ratio too, so that")
print("  each engine's fault requests and answers count.")

# ---- post-copy: its own table -------------------------------------------------


def pc_cols(r, who):
    p = r.get("postcopy") or {}
    if not ok(r) or not p:
        return "%6s %6s %6s %6s %6s %7s %6s %7s %7s" % (
            ("FAIL" if ran(r) else "-",) + ("-",) * 8)
    if who == "kvmig":
        lat = "%6d %6d" % (p["fault_latency_us_p50"], p["fault_latency_us_p99"])
        blocked, after = p["blocked_ms"], p["bytes_after_switchover"]
    else:
        lat = "%6s %6s" % ("n/a", "n/a")
        blocked, after = p["blocked_ms"], p["postcopy_bytes"]
    lo = r.get("lo_bytes", -1)
    return "%6d %6d %6.0f %s %7s %6d %7s %7.1f" % (
        r["total_ms"], r["downtime_ms"], p["switch_at_ms"], lat,
        "%d" % blocked if blocked >= 0 else "?", p["requests"],
        "%.1f" % (lo / MiB) if lo >= 0 else "-", after / MiB)


pcl = [i for i in range(n) if scen[i][POSTCOPY] and ran(K[i])]
if pcl:
    print()
    print("post-copy: the switch asked for by hand at the scenario's time after the start, the same"
          " for both")
    print("  (kvmig: bench_migrate calls migrate_postcopy(); QEMU: qmp.py sends"
          " migrate-start-postcopy)")
    sub = "%-*s | %6s %6s %6s %6s %6s %7s %6s %7s %7s | %6s %6s %6s %6s %6s %7s %6s %7s %7s |" \
          " %6s %6s %6s %6s" % (
              W, "", "total", "dt_eng", "switch", "p50us", "p99us", "blk_ms", "reqs", "MiB_lo",
              "MiB_pc", "total", "dt_eng", "switch", "p50us", "p99us", "blk_ms", "reqs", "MiB_lo",
              "MiB_pc", "total", "dt_eng", "blk_ms", "bytes")
    blk = len(pc_cols({"status": "not run"}, "kvmig"))
    print("%-*s | %-*s | %-*s | %s" % (W, "scenario", blk, "kvmig", blk, qname, "kvmig/QEMU"))
    print(sub)
    print("-" * len(sub))
    for i in pcl:
        k, q = K[i], Q[i]
        kp, qp = k.get("postcopy") or {}, q.get("postcopy") or {}
        if have_qemu and ok(k) and ok(q) and kp and qp:
            r = "%s %s %s %s" % (ratio(k["total_ms"], q["total_ms"]),
                                 ratio(k["downtime_ms"], q["downtime_ms"]),
                                 ratio(kp["blocked_ms"], qp["blocked_ms"])
                                 if qp["blocked_ms"] >= 0 else "%6s" % "-",
                                 ratio(k["lo_bytes"], q["lo_bytes"])
                                 if k.get("lo_bytes", -1) > 0 and q.get("lo_bytes", -1) > 0
                                 else "%6s" % "-")
        else:
            r = "%6s %6s %6s %6s" % ("n/a", "n/a", "n/a", "n/a")
        print("%-*s | %s | %s | %s" % (W, "[%d] %s" % (i + 1, label(i)), pc_cols(k, "kvmig"),
                                       pc_cols(q, "QEMU") if have_qemu else "%*s" % (blk, "-"),
                                       r))
    print()
    print("total, dt_eng: as above (kvmig: until the destination's PC_DONE, every page in place;"
          " QEMU: until the")
    print("  source's query-migrate says completed). switch: ms from the start until the job was"
          " first seen past")
    print("  pre-copy (kvmig status device/postcopy, QEMU postcopy-active; both polled every 2 ms"
          " once asked; the")
    print("  source guest stops there). p50us/p99us: kvmig's fault latency, request sent to page"
          " in place (QEMU 7.2")
    print("  reports none: n/a). blk_ms: vCPU time blocked on missing pages (kvmig blocked_ms;"
          " QEMU the destination's")
    print("  postcopy-vcpu-blocktime, summed over vCPUs). reqs: pages the destination asked for"
          " (kvmig requests;")
    print("  QEMU ram.postcopy-requests). MiB_lo: loopback bytes over the whole migration, both"
          " directions (the bytes")
    print("  ratio). MiB_pc: sent after the switch (kvmig bytes_after_switchover, both channels;"
          " QEMU ram.postcopy-bytes).")
    for i in pcl:
        for who, r in (("kvmig", K[i]), ("QEMU", Q[i] if have_qemu else {})):
            p = r.get("postcopy") or {}
            if p.get("switch_error"):
                print("  [%d] %s: the switch was refused: %s" % (i + 1, who, p["switch_error"]))
            if ok(r) and p and p.get("switch_at_ms", -1) < 0:
                print("  [%d] %s: completed without switching to post-copy" % (i + 1, who))
        qp = (Q[i] if have_qemu else {}).get("postcopy") or {}
        kp = K[i].get("postcopy") or {}
        if kp or qp:
            print("  [%d] the switch asked for at: kvmig %s ms, QEMU %s ms; seen past pre-copy at:"
                  " kvmig %s ms, QEMU %s ms" % (
                      i + 1, kp.get("switch_asked_at_ms", "-"), qp.get("switch_asked_at_ms", "-"),
                      kp.get("switch_at_ms", "-"), qp.get("switch_at_ms", "-")))
        if qp.get("vcpu_blocktime_ms"):
            print("  [%d] QEMU postcopy-blocktime (all vCPUs blocked at once) %d ms, per vCPU %s ms"
                  % (i + 1, qp["blocktime_ms"], qp["vcpu_blocktime_ms"]))
        if kp:
            print("  [%d] kvmig: %d pages pushed after the switch, %d faults at the destination,"
                  " every page in place at %.0f ms" % (i + 1, kp["pages_pushed"], kp["dst_faults"],
                                                       kp["dst_done_at_ms"]))

print()
print("%-*s | %-20s | %-15s | %-23s | %-19s | %-15s | %-13s | %-9s" % (
    W, "details", "kvmig bulk round", "avg MB/s", "loopback MiB (lo tx)", "page writes/s k|Q",
    "dt_guest at ms", "sampler max us", "throttle%"))
print("%-*s | %8s %11s | %7s %7s | %7s %7s %7s | %9s %9s | %7s %7s | %6s %6s | %4s %4s" % (
    W, "", "MB/s", "of raw TCP", "kvmig", "QEMU", "kvmig", "QEMU", "ratio", "before", "during",
    "kvmig", "QEMU", "kvmig", "QEMU", "k", "Q"))


def avg(r):
    return "%7.1f" % (r["transferred_bytes"] / r["total_ms"] / 1e3) if ok(r) and r.get("total_ms") \
        else "%7s" % "-"


def gap(r):
    return "%7.0f" % r["guest_gap_at_ms"] if ok(r) and "guest_gap_at_ms" in r else "%7s" % "-"


for i in range(n):
    k, q = K[i], Q[i]
    if not ran(k):
        continue
    bulk = k.get("bulk_bytes_per_s", 0)
    bulk_s = ("%8.1f %10.0f%%" % (bulk / 1e6, 100.0 * bulk / tcp_bps)) if bulk and tcp_bps \
        else "%8s %11s" % ("-", "-")
    kl, ql = k.get("lo_bytes", -1), q.get("lo_bytes", -1)
    lo = "%7s %7s %7s" % ("%.1f" % (kl / MiB) if kl >= 0 else "-",
                          "%.1f" % (ql / MiB) if ql >= 0 else "-",
                          ratio(kl, ql).strip() if kl > 0 and ql > 0 else "-")
    pace = [("%.0fk|%.0fk" % (k.get(key, 0) / 1e3, q.get(key, 0) / 1e3))
            for key in ("pages_per_s", "mig_pages_per_s")]
    print("%-*s | %s | %s %s | %s | %9s %9s | %s %s | %6s %6s | %4s %4s" % (
        W, "[%d] %s" % (i + 1, label(i)), bulk_s, avg(k), avg(q), lo, pace[0], pace[1], gap(k),
        gap(q), k.get("watch_max_sample_us", "-"), q.get("watch_max_sample_us", "-"),
        k.get("max_throttle_pct", "-"), q.get("max_throttle_pct", "-")))

notes = []
for i in range(n):
    for who, r in (("kvmig", K[i]), ("QEMU", Q[i] if have_qemu else None)):
        if r is None or ok(r) or not ran(r):
            continue
        extra = ""
        if "total_ms" in r:
            extra = " (after %d ms, %.1f MiB sent in %d rounds, throttle %d%%)" % (
                r["total_ms"], r.get("transferred_bytes", 0) / MiB, r.get("dirty_sync_count", 0),
                r.get("throttle_pct", 0))
        if "src_state" in r:
            extra += " (source guest %s, its progress stopped %.0f ms after the migration" \
                     " started, the switchover came at %d ms; destination guest %s)" % (
                         r["src_state"], r["guest_gap_at_ms"], r["total_ms"] - r["downtime_ms"],
                         r["dst_state"])
        notes.append("[%d] %s, %s: %s%s%s" % (i + 1, label(i), who, r.get("status", "?"), extra,
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
print("throttle%: the highest auto-converge throttle seen while it migrated (kvmig: every 5 ms;")
print("  QEMU: cpu-throttle-percentage, every 20 ms); 0 = never throttled.")
if tcp_bps:
    print("raw loopback TCP (1 GiB, 1 MiB write()/read() on 2 threads, the channel's socket options, no"
          " guest running): %.1f MB/s" % (tcp_bps / 1e6))
    order = sorted(range(n), key=lambda i: (size(scen[i][WS]), size(scen[i][MEM])), reverse=True)
    best = next((i for i in order if K[i].get("bulk_bytes_per_s", 0)), None)
    if best is None:
        # a post-copy switch cuts round 0 short: no measurement
        print("kvmig bulk round: none measured in the scenarios that ran")
    else:
        b = K[best]["bulk_bytes_per_s"]
        print("kvmig bulk round (round 0 bytes / its time, the engine's own measurement), on its"
              " largest bulk round (%s): %.1f MB/s = %.2f x raw TCP" % (label(best), b / 1e6,
                                                                        b / tcp_bps))
else:
    print("raw loopback TCP: no result (%s)" % tcp.get("status", "?"))
EOF
