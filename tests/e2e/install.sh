#!/bin/bash
# SPDX-License-Identifier: MIT
# install: `make install` and `make uninstall` (tools/module.mk), no KVM
# needed.
#   - make install DESTDIR=$T/root PREFIX=/usr lays out kvmig and kvmigd
#     (0755), the systemd unit, the configuration and its example, the man
#     pages and the docs (0644) where packagers expect them; the unit names
#     the installed paths; the defaults (make -n) are /usr/local and /etc;
#   - the installed programs run (--version), the installed kvmigd starts
#     with the installed configuration (the example) and tells a service
#     manager it is ready and stopping ($NOTIFY_SOCKET, Type=notify);
#   - the man pages format without a warning (man --warnings, else groff)
#     and man finds them in the installed tree;
#   - the unit passes systemd-analyze verify without a warning, for an
#     install whose paths exist (PREFIX=$T/p); where systemd-analyze is
#     missing that part says it is skipped and why;
#   - a changed kvmigd.conf survives make install and make uninstall;
#     make uninstall removes everything else, and the configuration too
#     once it is the example again.
. "$(dirname "$0")/lib.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
R=$T/root
mk() { make -s -C "$REPO" O="$B" "$@"; }

log "make install DESTDIR=\$T/root PREFIX=/usr"
ok "make install" mk install DESTDIR="$R" PREFIX=/usr
grep -q "kvmigd.conf" "$OUT" || fail "make install did not say it installed kvmigd.conf: $(cat "$OUT")"
mode_is() {	# FILE MODE
	[ -f "$1" ] || fail "$1 is not installed"
	[ "$(stat -c %a "$1")" = "$2" ] || fail "$1 has mode $(stat -c %a "$1"), expected $2"
}
for f in usr/bin/kvmig usr/bin/kvmigd; do
	mode_is "$R/$f" 755
	[ -x "$R/$f" ] || fail "$R/$f is not executable"
done
for f in usr/lib/systemd/system/kvmigd.service etc/kvmig/kvmigd.conf etc/kvmig/kvmigd.conf.example \
	usr/share/man/man1/kvmig.1 usr/share/man/man8/kvmigd.8 usr/share/man/man5/kvmigd.conf.5 \
	usr/share/doc/kvmig/README.md usr/share/doc/kvmig/API.md usr/share/doc/kvmig/kvmigd.conf.example; do
	mode_is "$R/$f" 644
done
n=$(find "$R" -type f | wc -l)
[ "$n" = 11 ] || fail "make install put $n files, expected 11: $(find "$R" -type f)"
echo "   11 files: $(cd "$R" && find . -type f | sort | tr '\n' ' ')"
cmp -s "$R/etc/kvmig/kvmigd.conf" "$REPO/tools/kvmigd.conf.example" ||
	fail "the installed kvmigd.conf is not the example"
UNIT=$R/usr/lib/systemd/system/kvmigd.service
grep -qx "ExecStart=/usr/bin/kvmigd --config /etc/kvmig/kvmigd.conf" "$UNIT" ||
	fail "the unit's ExecStart: $(grep ExecStart "$UNIT")"
for l in Type=notify RuntimeDirectory=kvmig Restart=on-failure "DeviceAllow=/dev/kvm rw" \
	"DeviceAllow=/dev/userfaultfd rw" WantedBy=multi-user.target; do
	grep -qx "$l" "$UNIT" || fail "the unit lacks '$l'"
done
! grep -q "@[A-Z]*@" "$UNIT" || fail "the unit kept a placeholder: $(grep "@[A-Z]*@" "$UNIT")"
ok "the defaults (make -n install)" mk -n install DESTDIR="$T/d"
for p in "$T/d/usr/local/bin" "$T/d/usr/local/lib/systemd/system" "$T/d/etc/kvmig" \
	"$T/d/usr/local/share/man/man8"; do
	grep -q -- "$p" "$OUT" || fail "make -n install does not use $p: $(head -c 600 "$OUT")"
done
grep -q "s|@BINDIR@|/usr/local/bin|g" "$OUT" || fail "the unit's default ExecStart is not in /usr/local/bin"

log "the installed programs"
ok "kvmig --version" "$R/usr/bin/kvmig" --version
grep -Eq "^kvmig [0-9]+\.[0-9]+\.[0-9]+ " "$OUT" || fail "kvmig --version printed $(cat "$OUT")"
want=$("$KVMIG" --version)
[ "$(cat "$OUT")" = "$want" ] || fail "installed kvmig says $(cat "$OUT"), the build $want"
ok "kvmigd --version" "$R/usr/bin/kvmigd" --version
grep -Eq "^kvmigd [0-9]+\.[0-9]+\.[0-9]+ " "$OUT" || fail "kvmigd --version printed $(cat "$OUT")"

# The installed kvmigd with the installed configuration (its control
# socket moved into $T), under a stand-in for systemd's notify socket.
if command -v python3 >/dev/null; then
	python3 - "$T/notify" "$T/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "w") as log:
	for _ in range(2):
		log.write(s.recv(4096).decode() + "\n")
		log.flush()
EOF
	NOTIFY_PID=$!
	wait_until 10 "the notify socket" test -S "$T/notify"
	export NOTIFY_SOCKET=$T/notify
else
	echo "SKIPPED part: the READY=1/STOPPING=1 check: python3 is not installed"
fi
KVMIGD=$R/usr/bin/kvmigd
start_agent inst --config "$R/etc/kvmig/kvmigd.conf"
unset NOTIFY_SOCKET
ok "agent version (the installed configuration)" kv inst agent version --json
jq_out ".config == \"$R/etc/kvmig/kvmigd.conf\" and .control == \"$T/inst.sock\" and .state_dir == \"/var/lib/kvmig\"
	and .listens == [] and .limits == {\"max_incoming\":0,\"max_outgoing\":0,\"bandwidth_budget\":0,\"guest_mem_bytes\":0}"
if [ -n "${NOTIFY_PID:-}" ]; then
	wait_until 10 "READY=1 on the notify socket" grep -qx READY=1 "$T/notify.log"
	echo "ok: kvmigd said READY=1 once it served $T/inst.sock"
fi
stop_agent inst
if [ -n "${NOTIFY_PID:-}" ]; then
	wait "$NOTIFY_PID" || fail "the notify socket's reader failed: $(cat "$T/notify.log")"
	[ "$(cat "$T/notify.log")" = "$(printf 'READY=1\nSTOPPING=1')" ] ||
		fail "the notify socket got: $(cat "$T/notify.log")"
	echo "ok: kvmigd said STOPPING=1 at SIGTERM"
fi

log "the man pages"
for p in man1/kvmig.1 man8/kvmigd.8 man5/kvmigd.conf.5; do
	f=$R/usr/share/man/$p
	if command -v man >/dev/null; then
		LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" >"$T/man.out" 2>"$T/man.err" ||
			fail "man -l $p failed: $(cat "$T/man.err")"
		what="man --warnings"
	elif command -v groff >/dev/null; then
		groff -man -ww -z "$f" 2>"$T/man.err" || fail "groff $p failed: $(cat "$T/man.err")"
		what="groff -man -ww -z"
	else
		echo "SKIPPED part: formatting $p: neither man nor groff is installed"
		continue
	fi
	[ ! -s "$T/man.err" ] || fail "$what $p warns: $(cat "$T/man.err")"
	echo "ok: $p formats without a warning ($what)"
done
if command -v man >/dev/null; then
	for n in "1 kvmig" "8 kvmigd" "5 kvmigd.conf"; do
		# shellcheck disable=SC2086 # section and name
		ok "man finds $n" man -M "$R/usr/share/man" -w $n
	done
	LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$R/usr/share/man/man8/kvmigd.8" 2>/dev/null | grep -q -- "--max-incoming N" ||
		fail "kvmigd.8 does not document --max-incoming"
	LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$R/usr/share/man/man5/kvmigd.conf.5" 2>/dev/null | grep -q "max_outgoing = N" ||
		fail "kvmigd.conf.5 does not document max_outgoing"
fi
# every kvmigd option is in its man page, and every kvmig command in its own
unroff() { sed 's/\\-/-/g' "$1"; }
for o in $("$KVMIGD" --help | grep -Eo -- '--[a-z][a-z-]+' | sort -u); do
	unroff "$R/usr/share/man/man8/kvmigd.8" | grep -q -- "$o" || fail "kvmigd.8 lacks $o (kvmigd --help has it)"
done
for o in $("$R/usr/bin/kvmig" migrate --help | grep -Eo -- '^  --[a-z][a-z-]+' | sort -u); do
	unroff "$R/usr/share/man/man1/kvmig.1" | grep -q -- "$o" || fail "kvmig.1 lacks migrate $o (kvmig migrate --help has it)"
done
echo "ok: kvmigd.8 has every option of kvmigd --help, kvmig.1 every one of kvmig migrate --help"

log "systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
	# an install whose paths exist here, so that verify can check ExecStart and the man pages
	P=$T/p
	ok "make install PREFIX=\$T/p" mk install PREFIX="$P" SYSCONFDIR="$P/etc"
	PU=$P/lib/systemd/system/kvmigd.service
	grep -qx "ExecStart=$P/bin/kvmigd --config $P/etc/kvmig/kvmigd.conf" "$PU" ||
		fail "the unit's ExecStart with PREFIX: $(grep ExecStart "$PU")"
	MANPATH=$P/share/man: systemd-analyze verify "$PU" >"$T/verify.out" 2>&1 ||
		fail "systemd-analyze verify failed: $(cat "$T/verify.out")"
	[ ! -s "$T/verify.out" ] || fail "systemd-analyze verify warns: $(cat "$T/verify.out")"
	echo "ok: systemd-analyze verify: no error, no warning ($(systemd-analyze --version | head -n 1))"
	ok "make uninstall PREFIX=\$T/p" mk uninstall PREFIX="$P" SYSCONFDIR="$P/etc"
else
	echo "SKIPPED part: systemd-analyze verify: systemd-analyze is not installed (apt-get install systemd)"
fi

log "a changed kvmigd.conf is kept; make uninstall removes the rest"
echo "max_incoming = 3" >>"$R/etc/kvmig/kvmigd.conf"
ok "make install again" mk install DESTDIR="$R" PREFIX=/usr
grep -q "keeping $R/etc/kvmig/kvmigd.conf" "$OUT" || fail "make install did not say it kept kvmigd.conf: $(cat "$OUT")"
grep -qx "max_incoming = 3" "$R/etc/kvmig/kvmigd.conf" || fail "make install replaced the changed kvmigd.conf"
ok "make uninstall" mk uninstall DESTDIR="$R" PREFIX=/usr
grep -q "keeping $R/etc/kvmig/kvmigd.conf" "$OUT" || fail "make uninstall did not say it kept kvmigd.conf: $(cat "$OUT")"
left=$(cd "$R" && find . -type f | sort | tr '\n' ' ')
[ "$left" = "./etc/kvmig/kvmigd.conf " ] || fail "make uninstall left: $left"
cp "$REPO/tools/kvmigd.conf.example" "$R/etc/kvmig/kvmigd.conf"
ok "make uninstall (the configuration is the example again)" mk uninstall DESTDIR="$R" PREFIX=/usr
left=$(find "$R" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
[ ! -e "$R/etc/kvmig" ] || fail "make uninstall left the empty $R/etc/kvmig"
echo "install: all checks passed"
