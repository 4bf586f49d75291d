#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""qmp.py - drive one QEMU live migration over QMP and measure it.

Usage: qmp.py --watcher BENCH_MIGRATE --src SOCK --dst SOCK
              --uri tcp:127.0.0.1:PORT --src-log FILE --dst-log FILE
              [--warm BYTES] [--downtime MS] [--max-bandwidth BYTES_PER_S]
              [--xbzrle SIZE] [--multifd CHANNELS] [--compression none|zstd]
              [--zstd-level N] [--auto-converge] [--throttle-initial PCT]
              [--throttle-increment PCT] [--max-throttle PCT] [--timeout SECS]

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
# the parameters shown under "settings" (query-migrate-parameters)
SHOWN = ("max-bandwidth", "downtime-limit", "xbzrle-cache-size", "multifd-channels",
         "multifd-compression", "multifd-zstd-level", "cpu-throttle-initial",
         "cpu-throttle-increment", "max-cpu-throttle", "cpu-throttle-tailslow", "tls-creds",
         "tls-hostname")


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
    a = ap.parse_args()

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
    if caps:
        src.cmd("migrate-set-capabilities",
                capabilities=[{"capability": c, "state": True} for c in caps])
    want = {"downtime-limit": a.downtime, "max-bandwidth": a.max_bandwidth}
    want_dst = {}
    if a.tls_creds:
        want["tls-creds"] = a.tls_creds
        want_dst["tls-creds"] = a.tls_creds
        if a.tls_hostname:
            want["tls-hostname"] = a.tls_hostname
    if a.xbzrle:
        want["xbzrle-cache-size"] = a.xbzrle
    if a.multifd:
        dst.cmd("migrate-set-capabilities",
                capabilities=[{"capability": "multifd", "state": True}])
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
        if side == "src" or w:
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
    while True:
        info = src.cmd("query-migrate")
        status = info.get("status", "?")
        max_throttle = max(max_throttle, info.get("cpu-throttle-percentage", 0))
        if "ram" in info:
            last_active = info
        if status in ("completed", "failed", "cancelled"):
            break
        if not cancelled and time.monotonic() - t_migrate > a.timeout:
            src.cmd("migrate_cancel")
            cancelled = True
        time.sleep(0.02)
    lo1 = lo_tx_bytes()
    # the source guest's pace while migrating: until it stopped, or the end
    src_end = os.path.getsize(a.src_log)
    t_src = info.get("total-time", 0) - (info.get("downtime", 0) if status == "completed" else 0)
    if not t_src:
        t_src = (time.monotonic() - t_migrate) * 1e3
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
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
