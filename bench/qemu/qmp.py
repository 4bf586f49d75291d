#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""qmp.py - drive one QEMU live migration over QMP and measure it.

Usage: qmp.py --watcher BENCH_MIGRATE --src SOCK --dst SOCK
              --uri tcp:127.0.0.1:PORT --src-log FILE --dst-log FILE
              [--warm BYTES] [--downtime MS] [--max-bandwidth BYTES_PER_S]
              [--xbzrle SIZE] [--multifd CHANNELS] [--compression none|zstd]
              [--zstd-level N] [--auto-converge] [--throttle-initial PCT]
              [--throttle-increment PCT] [--max-throttle PCT] [--timeout SECS]
              [--postcopy-after SECS]

Both QEMUs are already started: the source runs bench/qemu/dirty.S, the
destination waits with `-incoming defer`. The guest writes one byte to its
isa-debugcon file per 256 pages dirtied, so the size of the source's plus
the destination's debugcon file is the guest's progress.

Steps: qmp_capabilities on both; migration capabilities and parameters
(max-bandwidth and downtime-limit on the source, always set, so that QEMU's
own default of 128 MiB/s never caps it; xbzrle + xbzrle-cache-size;
multifd + multifd-channels + multifd-compression (+ multifd-zstd-level) on
both sides; auto-converge + cpu-throttle-initial/-increment +
max-cpu-throttle, tailslow off); then query-migrate-parameters and
query-migrate-capabilities on both read back what QEMU will really use: a
value that differs from the one asked for is an error, and the source's
(and for multifd the destination's) effective values are printed under
"settings"; migrate-incoming on the destination; wait until the source's file holds
--warm bytes, then measure the guest's pace for 0.5 s (pages_per_s);
start the watcher; 50 ms later `migrate` on the source; poll query-migrate
every 20 ms until it completes or fails, or cancel it after --timeout;
then let the destination run on for a while.

Post-copy (--postcopy-after SECS): capability postcopy-ram on both sides
and postcopy-blocktime on the destination, max-postcopy-bandwidth = the
max-bandwidth (so the post-copy phase has the same cap), then
migrate-start-postcopy SECS after `migrate` (0: right after it). From the
request on, query-migrate is polled every SWITCH_POLL_S until the status
leaves "active" (switch_at_ms: QEMU stops the guest there), then every 20 ms
again. Once the source says completed, the destination's query-migrate is
polled until it says completed too, and its postcopy-blocktime and
postcopy-vcpu-blocktime (ms) are the vCPUs' blocked time. QEMU 7.2 reports
no per-fault latency. The source's ram.postcopy-requests and
ram.postcopy-bytes go under "postcopy" too.

Guest-seen downtime: `bench_migrate watch` (--watcher) samples the sizes
of both debugcon files every 200 us, the same sampler kvmig's run uses,
from before `migrate` until the destination has grown by AFTER_BYTES and
run for at least AFTER_MIN_S; the longest interval in which neither grew
is guest_downtime_ms.

Bytes on the wire: QEMU 7.2 counts a multifd page in ram.transferred at
its full 4 KiB, compressed or not, so lo_bytes (the loopback interface's
tx_bytes over the migration, both directions, headers included) is given
too.

Success is status "completed" in the source's query-migrate and a
destination that runs the guest on (query-status "running" and its
debugcon file growing); anything else is reported in status as it is.

Prints one JSON object: status, total_ms, downtime_ms, setup_ms,
transferred_bytes (ram.transferred), dirty_sync_count, guest_downtime_ms,
guest_gap_at_ms (from `migrate`), watch_max_sample_us, settings,
max_throttle_pct (the highest cpu-throttle-percentage of the 20 ms polls),
and more.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

AFTER_BYTES = 16          # 4096 pages at the destination ...
AFTER_MIN_S = 1.0         # ... and at least this long
AFTER_DEADLINE_S = 60.0
RATE_WINDOW_S = 0.5
SWITCH_POLL_S = 0.002     # post-copy: look for the switch this often (as bench_migrate)
# the parameters shown under "settings" (query-migrate-parameters)
SHOWN = ("max-bandwidth", "downtime-limit", "xbzrle-cache-size", "multifd-channels",
         "multifd-compression", "multifd-zstd-level", "cpu-throttle-initial",
         "cpu-throttle-increment", "max-cpu-throttle", "cpu-throttle-tailslow", "tls-creds",
         "tls-hostname", "max-postcopy-bandwidth")


class Qmp:
    def __init__(self, path, timeout=30.0):
        end = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rwb", buffering=0)
        self._read()                      # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.f.write(json.dumps(req).encode() + b"\n")
        r = self._read()
        if "error" in r:
            raise RuntimeError("%s: %s" % (name, r["error"].get("desc", r["error"])))
        return r.get("return")


def lo_tx_bytes():
    try:
        with open("/sys/class/net/lo/statistics/tx_bytes") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def size_arg(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1].upper()] if s[-1].upper() in mult else int(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--uri", required=True)
    ap.add_argument("--src-log", required=True)
    ap.add_argument("--dst-log", required=True)
    ap.add_argument("--warm", type=int, default=128)
    ap.add_argument("--downtime", type=int, default=300)
    ap.add_argument("--max-bandwidth", type=size_arg, required=True)
    ap.add_argument("--xbzrle", type=size_arg, default=0)
    ap.add_argument("--multifd", type=int, default=0, metavar="CHANNELS")
    ap.add_argument("--compression", default="none", choices=("none", "zstd"))
    ap.add_argument("--zstd-level", type=int, default=1)
    ap.add_argument("--auto-converge", action="store_true")
    ap.add_argument("--throttle-initial", type=int, default=20)
    ap.add_argument("--throttle-increment", type=int, default=10)
    ap.add_argument("--max-throttle", type=int, default=99)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--watcher", required=True, metavar="BENCH_MIGRATE")
    ap.add_argument("--tls-creds", default="", metavar="ID",
                    help="a tls-creds-x509 object both QEMUs were started with")
    ap.add_argument("--tls-hostname", default="")
    ap.add_argument("--postcopy-after", type=float, default=None, metavar="SECS",
                    help="post-copy: migrate-start-postcopy this long after migrate")
    a = ap.parse_args()
    postcopy = a.postcopy_after is not None

    src, dst = Qmp(a.src), Qmp(a.dst)
    if a.compression != "none" and not a.multifd:
        sys.exit("qmp.py: --compression needs --multifd (QEMU 7.2 compresses on multifd channels)")
    caps = []
    if a.xbzrle:
        caps.append("xbzrle")
    if a.multifd:
        caps.append("multifd")
    if a.auto_converge:
        caps.append("auto-converge")
    dst_caps = []
    if postcopy:
        caps.append("postcopy-ram")
        dst_caps = ["postcopy-ram", "postcopy-blocktime"]
    if caps:
        src.cmd("migrate-set-capabilities",
                capabilities=[{"capability": c, "state": True} for c in caps])
    want = {"downtime-limit": a.downtime, "max-bandwidth": a.max_bandwidth}
    if postcopy:
        want["max-postcopy-bandwidth"] = a.max_bandwidth
    want_dst = {}
    if a.tls_creds:
        want["tls-creds"] = a.tls_creds
        want_dst["tls-creds"] = a.tls_creds
        if a.tls_hostname:
            want["tls-hostname"] = a.tls_hostname
    if a.xbzrle:
        want["xbzrle-cache-size"] = a.xbzrle
    if a.multifd:
        dst_caps.append("multifd")
    if dst_caps:
        dst.cmd("migrate-set-capabilities",
                capabilities=[{"capability": c, "state": True} for c in dst_caps])
    if a.multifd:
        want_dst = {"multifd-channels": a.multifd, "multifd-compression": a.compression}
        if a.compression == "zstd":
            want_dst["multifd-zstd-level"] = a.zstd_level
        want.update(want_dst)
    if a.auto_converge:
        want.update({"cpu-throttle-initial": a.throttle_initial,
                     "cpu-throttle-increment": a.throttle_increment,
                     "max-cpu-throttle": a.max_throttle, "cpu-throttle-tailslow": False})
    src.cmd("migrate-set-parameters", **want)
    if want_dst:
        dst.cmd("migrate-set-parameters", **want_dst)
    # what QEMU will use: read back, compare, show
    settings = {}
    for side, q, w in (("src", src, want), ("dst", dst, want_dst)):
        got = q.cmd("query-migrate-parameters")
        bad = ["%s=%s (asked %s)" % (k, got.get(k), v) for k, v in w.items() if got.get(k) != v]
        if bad:
            sys.exit("qmp.py: %s: QEMU did not take: %s" % (side, ", ".join(bad)))
        on = sorted(c["capability"] for c in q.cmd("query-migrate-capabilities") if c["state"])
        missing = sorted(set(caps if side == "src" else dst_caps) - set(on))
        if missing:
            sys.exit("qmp.py: %s: QEMU did not take the capabilities %s" % (side, missing))
        if side == "src" or w or dst_caps:
            settings[side] = dict({k: got[k] for k in SHOWN if k in got}, capabilities=on)
    dst.cmd("migrate-incoming", uri=a.uri)

    # warm-up: the guest has dirtied its working set a few times
    t_warm = time.monotonic()
    end = time.monotonic() + 300
    while os.path.getsize(a.src_log) < a.warm:
        if time.monotonic() > end:
            sys.exit("qmp.py: warm-up: %d of %d debugcon bytes after 300 s"
                     % (os.path.getsize(a.src_log), a.warm))
        time.sleep(0.01)

    t_warm = time.monotonic() - t_warm
    # the guest's own pace just before the migration
    rate = os.path.getsize(a.src_log)
    time.sleep(RATE_WINDOW_S)
    rate = (os.path.getsize(a.src_log) - rate) * 256 / RATE_WINDOW_S
    w = subprocess.Popen([a.watcher, "watch", a.src_log, a.dst_log],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(0.05)
    lo0 = lo_tx_bytes()
    src0 = os.path.getsize(a.src_log)
    t_migrate = time.monotonic()
    src.cmd("migrate", uri=a.uri)
    info = {}
    status = "?"
    cancelled = False
    last_active = {}
    max_throttle = 0
    t_pc_asked = t_pc_seen = None
    pc_error = ""
    while True:
        if postcopy and t_pc_asked is None and not pc_error and \
                time.monotonic() - t_migrate >= a.postcopy_after:
            try:
                src.cmd("migrate-start-postcopy")
                t_pc_asked = time.monotonic()
            except RuntimeError as e:
                pc_error = str(e)
        info = src.cmd("query-migrate")
        status = info.get("status", "?")
        max_throttle = max(max_throttle, info.get("cpu-throttle-percentage", 0))
        if "ram" in info:
            last_active = info
        if t_pc_asked is not None and t_pc_seen is None and status not in ("setup", "active"):
            t_pc_seen = time.monotonic()
        if status in ("completed", "failed", "cancelled"):
            break
        if not cancelled and time.monotonic() - t_migrate > a.timeout:
            src.cmd("migrate_cancel")
            cancelled = True
        if t_pc_asked is not None and t_pc_seen is None:
            time.sleep(SWITCH_POLL_S)
        elif postcopy and t_pc_asked is None and not pc_error:
            # wake for the switch on time
            time.sleep(max(0.0, min(0.02, t_migrate + a.postcopy_after - time.monotonic())))
        else:
            time.sleep(0.02)
    lo1 = lo_tx_bytes()
    # the source guest's pace while migrating: until it stopped, or the end
    src_end = os.path.getsize(a.src_log)
    t_src = info.get("total-time", 0) - (info.get("downtime", 0) if status == "completed" else 0)
    if t_pc_seen is not None:
        t_src = (t_pc_seen - t_migrate) * 1e3       # post-copy: it stopped at the switch
    if not t_src:
        t_src = (time.monotonic() - t_migrate) * 1e3
    pc_dst = {}
    if postcopy and status == "completed":
        # the destination's own view: its blocktime figures come with its "completed"
        end = time.monotonic() + AFTER_DEADLINE_S
        while True:
            pc_dst = dst.cmd("query-migrate")
            if pc_dst.get("status") == "completed" or time.monotonic() > end:
                break
            time.sleep(0.01)
    dst_status = "-"
    if status == "completed":
        dst_status = "?"
        end = time.monotonic() + AFTER_DEADLINE_S
        d0 = os.path.getsize(a.dst_log)
        t_done = time.monotonic()
        while time.monotonic() < end:
            dst_status = dst.cmd("query-status").get("status", "?")
            if (dst_status == "running" and os.path.getsize(a.dst_log) >= d0 + AFTER_BYTES
                    and time.monotonic() - t_done >= AFTER_MIN_S):
                break
            time.sleep(0.01)
        if os.path.getsize(a.dst_log) < d0 + AFTER_BYTES:
            status = "completed, but the destination guest did not run on (%s)" % dst_status
        elif postcopy and pc_dst.get("status") != "completed":
            status = "completed at the source, but the destination says %s" \
                % pc_dst.get("status", "nothing")
    w.send_signal(signal.SIGTERM)
    wj = json.loads(w.communicate()[0])

    if cancelled:
        # a cancelled job reports no counters: keep the last ones seen, and the wall time
        info = dict(last_active, **{"total-time": round((time.monotonic() - t_migrate) * 1e3),
                                    "downtime": 0})
    ram = info.get("ram", {})
    out = {
        "status": "cancelled after %.0f s (no convergence)" % a.timeout if cancelled else status,
        "error": info.get("error-desc", ""),
        "total_ms": info.get("total-time", 0),
        "downtime_ms": info.get("downtime", 0),
        "setup_ms": info.get("setup-time", 0),
        "transferred_bytes": ram.get("transferred", 0),
        "dirty_sync_count": ram.get("dirty-sync-count", 0),
        "normal_pages": ram.get("normal", 0),
        "duplicate_pages": ram.get("duplicate", 0),
        "xbzrle_pages": info.get("xbzrle-cache", {}).get("pages", 0),
        "throttle_pct": info.get("cpu-throttle-percentage", 0),
        "max_throttle_pct": max_throttle,
        "settings": settings,
        "dst_status": dst_status,
        "guest_downtime_ms": wj["guest_downtime_ms"],
        "guest_gap_at_ms": round((wj["gap_start_ns"] / 1e9 - t_migrate) * 1e3, 1),
        "watch_samples": wj["watch_samples"],
        "watch_max_sample_us": wj["watch_max_sample_us"],
        "src_log_bytes": wj["src_bytes"],
        "dst_log_bytes": wj["dst_bytes"],
        "warm_ms": round(t_warm * 1e3),
        "pages_per_s": round(rate),
        "lo_bytes": lo1 - lo0 if lo0 is not None and lo1 is not None else -1,
        "mig_pages_per_s": round((src_end - src0) * 256 * 1e3 / t_src) if t_src > 0 else 0,
    }
    if postcopy:
        def at(t):
            return round((t - t_migrate) * 1e3, 1) if t is not None else -1
        vcpu_bt = pc_dst.get("postcopy-vcpu-blocktime", [])
        out["postcopy"] = {
            "after_ms": round(a.postcopy_after * 1e3),
            "switch_error": pc_error,
            "switch_asked_at_ms": at(t_pc_asked),
            "switch_at_ms": at(t_pc_seen),
            "requests": ram.get("postcopy-requests", 0),
            "postcopy_bytes": ram.get("postcopy-bytes", 0),
            "precopy_bytes": ram.get("precopy-bytes", 0),
            "downtime_bytes": ram.get("downtime-bytes", 0),
            "dst_status": pc_dst.get("status", "?"),
            "blocktime_ms": pc_dst.get("postcopy-blocktime", -1),
            "vcpu_blocktime_ms": vcpu_bt,
            "blocked_ms": sum(vcpu_bt) if "postcopy-vcpu-blocktime" in pc_dst else -1,
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
