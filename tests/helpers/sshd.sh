#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/helpers/sshd.sh - a real sshd for the SSH transport's tests, with
# its own host key, config and authorized key (no PAM), on a loopback (or
# namespace) address and a free port, stopped by its PID. The recipe of
# shared/test-recipes.md ("A real sshd for tests").
#
# Sourced:   . tests/helpers/sshd.sh
#   sshd_start DIR [LISTEN_ADDR]   (default 127.0.0.1) sets SSHD_PORT,
#       SSHD_PID, SSHD_DIR, SSHD_HOME; DIR gets host_ed25519 (the host key),
#       host2_ed25519 (another one, for "changed host key" tests),
#       other_ed25519 (a client key the server does not accept) and the
#       client's home SSHD_HOME=DIR/home with .ssh/id_ed25519 (the key the
#       server accepts) and no known_hosts yet. Returns 77 with a reason on
#       stderr when sshd is missing (openssh-server) or cannot run here.
#   sshd_home      export HOME=$SSHD_HOME and unset SSH_AUTH_SOCK: ~/.ssh is
#       then the test's own, never the real user's (call it in the process
#       that connects, or pass HOME= to it)
#   sshd_stop      kill the sshd by its PID and wait for it
#   sshd_e2e       in tests/e2e: sshd_start on 127.0.0.1 (or skip), sshd_stop on exit, sshd_home
# Run:       tests/helpers/sshd.sh start DIR [LISTEN_ADDR]   prints the port
#            tests/helpers/sshd.sh stop DIR                  (for C tests)
#
# Pitfalls (test-recipes.md): sshd needs an absolute path and /run/sshd; its
# stdio is redirected (an inherited pipe would hang the harness); ed25519
# keys only (libssh2 1.10 signs RSA with SHA-1, which sshd 9.2 refuses).

SSHD_BIN=${SSHD_BIN:-/usr/sbin/sshd}

# is PORT listening on ADDR? (re-evaluated at each call)
sshd_listening() {
	ss -Hltn "sport = :$2" 2>/dev/null | grep -q "$1:$2"
}

sshd_start() {
	local dir=$1 addr=${2:-127.0.0.1} port try i
	if [ ! -x "$SSHD_BIN" ]; then
		echo "sshd_start: $SSHD_BIN is missing (apt-get install openssh-server; 'make deps' installs it)" >&2
		return 77
	fi
	command -v ssh-keygen >/dev/null || { echo "sshd_start: ssh-keygen is missing" >&2; return 77; }
	command -v ss >/dev/null || { echo "sshd_start: ss (iproute2) is missing" >&2; return 77; }
	if [ "$(id -u)" != 0 ]; then
		echo "sshd_start: a test sshd needs root here (privilege separation, /run/sshd)" >&2
		return 77
	fi
	case $dir in /*) ;; *) dir=$(pwd)/$dir ;; esac
	mkdir -p "$dir/home/.ssh" /run/sshd || return 1
	chmod 700 "$dir/home" "$dir/home/.ssh"
	for k in host_ed25519 host2_ed25519 other_ed25519 home/.ssh/id_ed25519; do
		rm -f "$dir/$k" "$dir/$k.pub"
		ssh-keygen -q -t ed25519 -N '' -C "kvmig-test-$k" -f "$dir/$k" || return 1
	done
	cp "$dir/home/.ssh/id_ed25519.pub" "$dir/authorized_keys"
	chmod 600 "$dir/authorized_keys"
	# a free port: one nobody listens on; if another process takes it
	# between the check and sshd's bind, sshd says so and the next is tried
	for try in 1 2 3 4 5; do
		port=$((20000 + (RANDOM * 32768 + RANDOM + $$) % 40000))
		sshd_listening "$addr" "$port" && continue
		cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress $addr
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
AllowTcpForwarding yes
UseDNS no
MaxStartups 100:30:200
LogLevel VERBOSE
EOF
		"$SSHD_BIN" -t -f "$dir/sshd_config" >"$dir/sshd-t.log" 2>&1 ||
			{ echo "sshd_start: sshd -t: $(cat "$dir/sshd-t.log")" >&2; return 1; }
		"$SSHD_BIN" -D -e -f "$dir/sshd_config" </dev/null >"$dir/sshd.log" 2>&1 &
		SSHD_PID=$!
		for i in $(seq 100); do
			sshd_listening "$addr" "$port" && break
			kill -0 "$SSHD_PID" 2>/dev/null || break
			sleep 0.1
		done
		if sshd_listening "$addr" "$port" && kill -0 "$SSHD_PID" 2>/dev/null; then
			SSHD_PORT=$port
			SSHD_DIR=$dir
			SSHD_HOME=$dir/home
			echo "$SSHD_PID" >"$dir/sshd.mypid"
			echo "$SSHD_PORT" >"$dir/sshd.port"
			return 0
		fi
		kill "$SSHD_PID" 2>/dev/null
		wait "$SSHD_PID" 2>/dev/null
		grep -q "Address already in use" "$dir/sshd.log" && continue
		echo "sshd_start: sshd did not start: $(tail -n 5 "$dir/sshd.log")" >&2
		return 1
	done
	echo "sshd_start: no free port after 5 tries" >&2
	return 1
}

sshd_home() {
	export HOME=$SSHD_HOME
	unset SSH_AUTH_SOCK
}

sshd_stop() {
	local pid=${SSHD_PID:-} i
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	SSHD_PID=
	return 0
}

# sshd_e2e: for tests/e2e scripts (after lib.sh: T, skip, fail, cleanup):
# an sshd on 127.0.0.1, or SKIPPED with its reason; stopped on exit; HOME
# is the test's own (sshd_home) from here on.
sshd_e2e() {
	local rc=0
	sshd_start "$T/sshd" 127.0.0.1 2>"$T/sshd-start.err" || rc=$?
	case $rc in
	0) ;;
	77) skip "$(cat "$T/sshd-start.err")" ;;
	*) fail "sshd did not start: $(cat "$T/sshd-start.err")" ;;
	esac
	trap 'sshd_stop; cleanup' EXIT
	sshd_home
	echo "ok: sshd on 127.0.0.1:$SSHD_PORT (pid $SSHD_PID), HOME=$HOME"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case ${1:-} in
	start)
		[ -n "${2:-}" ] || { echo "usage: $0 start DIR [LISTEN_ADDR]" >&2; exit 2; }
		sshd_start "$2" "${3:-}" || exit $?
		echo "$SSHD_PORT"
		;;
	stop)
		[ -r "${2:-}/sshd.mypid" ] || exit 0
		SSHD_PID=$(cat "$2/sshd.mypid")
		sshd_stop
		rm -f "$2/sshd.mypid"
		;;
	*)
		echo "usage: $0 start DIR [LISTEN_ADDR] | stop DIR" >&2
		exit 2
		;;
	esac
fi
