#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tcpcut.py - a TCP relay the e2e tests can cut, for broken-link tests.

    tcpcut.py PORTFILE TARGET_HOST TARGET_PORT

Listens on 127.0.0.1 on a kernel-chosen port (written to PORTFILE once it
listens) and relays every connection to TARGET. Signals:
    SIGUSR1  cut: every relayed connection is reset (SO_LINGER 0) on both
             sides, and new connections are refused (closed at once)
    SIGUSR2  heal: new connections are relayed again
Each cut and heal is logged on stderr with the number of connections it
touched, so a test can wait for "cut N" before it looks at the peers.
"""
import os
import selectors
import signal
import socket
import struct
import sys

def main():
    portfile, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(64)
    lsn.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsn, selectors.EVENT_READ, None)
    peers = {}          # socket -> its other end
    state = {"cut": False, "pending": None}
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    sel.register(rfd, selectors.EVENT_READ, "signal")

    def on_signal(signum, _frame):
        os.write(wfd, b"c" if signum == signal.SIGUSR1 else b"h")

    signal.signal(signal.SIGUSR1, on_signal)
    signal.signal(signal.SIGUSR2, on_signal)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % lsn.getsockname()[1])
    os.rename(tmp, portfile)

    def drop(s):
        other = peers.pop(s, None)
        for x in (s, other):
            if x is None:
                continue
            peers.pop(x, None)
            try:
                sel.unregister(x)
            except (KeyError, ValueError):
                pass
            try:
                x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            x.close()

    while True:
        for key, _ in sel.select():
            if key.data == "signal":
                for c in os.read(rfd, 64):
                    if c == ord("c"):
                        n = len(peers) // 2
                        for s in list(peers):
                            if s in peers:
                                drop(s)
                        state["cut"] = True
                        print("tcpcut: cut %d" % n, file=sys.stderr, flush=True)
                    else:
                        state["cut"] = False
                        print("tcpcut: heal", file=sys.stderr, flush=True)
                continue
            s = key.fileobj
            if s is lsn:
                try:
                    c, _ = lsn.accept()
                except BlockingIOError:
                    continue
                if state["cut"]:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    c.close()
                    continue
                try:
                    t = socket.create_connection((host, port), timeout=5)
                except OSError:
                    c.close()
                    continue
                for x in (c, t):
                    x.setblocking(False)
                    x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peers[c], peers[t] = t, c
                sel.register(c, selectors.EVENT_READ, None)
                sel.register(t, selectors.EVENT_READ, None)
                continue
            if s not in peers:
                continue
            try:
                data = s.recv(262144)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                drop(s)
                continue
            other = peers[s]
            try:
                other.setblocking(True)
                other.sendall(data)
                other.setblocking(False)
            except OSError:
                drop(s)

if __name__ == "__main__":
    main()
