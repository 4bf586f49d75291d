#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/netbed.sh - the two-host test bed: two hosts and a switch built from
# network namespaces, with a kvmigd agent in each host.
#
#              namespace $NB-sw: bridge br0
#               port p-src          port p-dst
#                  | veth               | veth
#   $NB-src: eth0 10.77.0.1/24     $NB-dst: eth0 10.77.0.2/24
#
# Sourced (by e2e tests, after tests/e2e/lib.sh if they use it):
#   . tests/netbed.sh
#   netbed_up [PREFIX]        build the bed (PREFIX: unique, default nb$$;
#                             namespace names are global). Without root, ip
#                             or veth/bridge support: prints "SKIPPED:
#                             <reason>" and exits 77 (what tests/run.sh
#                             counts as a skip). Installs the EXIT trap that
#                             tears everything down, failure included (an
#                             EXIT trap set before, like lib.sh's, still runs
#                             after it).
#   netbed_agent src|dst [kvmigd args...]
#                             start kvmigd in that host: control socket
#                             $(netbed_sock H), --listen tcp:<its eth0
#                             address>:0, log $NB_DIR/H.log; waits until it
#                             answers. NB_URI_<H> holds its migrate URI
#                             (tcp://10.77.0.2:PORT). NB_SCHEME=tls makes it
#                             --listen tls:... (give --tls-dir DIR too);
#                             the agent inherits the caller's environment
#                             (HOME=DIR netbed_agent src: its ~/.ssh).
#   netbed_kv src|dst ARGS... kvmig --agent $(netbed_sock H) ARGS...
#   netbed_exec src|dst|sw CMD...   run CMD in that namespace
#   netbed_sock src|dst       the agent's control socket path
#   netbed_addr src|dst       10.77.0.1 / 10.77.0.2
#   netbed_ns src|dst|sw      the namespace name
#   netbed_stop_agent src|dst stop that agent (TERM, then KILL after 10 s)
#   netbed_down               stop the agents, delete the namespaces (idempotent)
# Variables: NB (the prefix), NB_DIR (a private temp dir, removed by
# netbed_down), NETBED_SKIP (77). KVMIGD/KVMIG default to $KVMIG_BUILD
# (build/) binaries.
#
# Run by hand:  tests/netbed.sh up PREFIX    build it and start both agents
#                                           (they keep running; prints how
#                                           to reach them)
#               tests/netbed.sh down PREFIX  stop those agents, delete it
#
# Traffic goes only to the addresses of the namespaces built here.

NETBED_SKIP=77
NB_SRC_ADDR=10.77.0.1
NB_DST_ADDR=10.77.0.2
declare -A NB_PID=()

netbed__say_skip() {
	echo "************************************************************************"
	echo "SKIPPED: ${E2E_NAME:-netbed}: $*"
	echo "************************************************************************"
	echo "SKIPPED: ${E2E_NAME:-netbed}: $*" >&2
	exit "$NETBED_SKIP"
}

netbed__fail() {
	echo "FAIL: netbed: $*" >&2
	exit 1
}

netbed_ns() {
	case $1 in
	src | dst | sw) echo "$NB-$1" ;;
	*) netbed__fail "no host '$1' (src, dst or sw)" ;;
	esac
}

netbed_addr() {
	case $1 in
	src) echo $NB_SRC_ADDR ;;
	dst) echo $NB_DST_ADDR ;;
	*) netbed__fail "no host '$1' (src or dst)" ;;
	esac
}

netbed_sock() { echo "$NB_DIR/$1.sock"; }

netbed_exec() {
	local h=$1
	shift
	ip netns exec "$(netbed_ns "$h")" "$@"
}

netbed_kv() {
	local h=$1
	shift
	"$KVMIG" --agent "$(netbed_sock "$h")" "$@"
}

# Why the bed cannot be built here, or nothing (it can).
netbed__why_not() {
	[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, veth, a bridge)"; return; }
	command -v ip >/dev/null || { echo "needs ip (apt-get install iproute2)"; return; }
	command -v bridge >/dev/null || { echo "needs bridge (apt-get install iproute2)"; return; }
}

netbed_up() {
	local why h out
	NB=${1:-nb$$}
	why=$(netbed__why_not)
	[ -z "$why" ] || netbed__say_skip "$why"
	B=${KVMIG_BUILD:-${B:-build}}
	case $B in /*) ;; *) B=$(pwd)/$B ;; esac
	KVMIGD=${KVMIGD:-$B/kvmigd}
	KVMIG=${KVMIG:-$B/kvmig}
	[ -x "$KVMIGD" ] && [ -x "$KVMIG" ] || netbed__fail "$KVMIGD or $KVMIG is missing: build first (make)"
	NB_DIR=${NB_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/kvmig-netbed-$NB.XXXXXX")}
	if [ -z "${NETBED_NO_TRAP:-}" ]; then
		# run our teardown first, then whatever EXIT trap was there
		NETBED_PREV_TRAP=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
		trap 'netbed_down; eval "$NETBED_PREV_TRAP"' EXIT
	fi
	# the first namespace tells whether this host lets us make them at all
	if ! out=$(ip netns add "$NB-sw" 2>&1); then
		netbed__say_skip "cannot create a network namespace: $out"
	fi
	NB_MADE=("$NB-sw")
	for h in src dst; do
		ip netns add "$NB-$h" || netbed__fail "ip netns add $NB-$h failed"
		NB_MADE+=("$NB-$h")
	done
	for h in sw src dst; do
		ip -n "$NB-$h" link set lo up || netbed__fail "lo up in $NB-$h"
	done
	if ! out=$(ip -n "$NB-sw" link add br0 type bridge 2>&1); then
		netbed__say_skip "this kernel has no bridge device: $out"
	fi
	ip -n "$NB-sw" link set br0 up || netbed__fail "br0 up"
	for h in src dst; do
		if ! out=$(ip -n "$NB-sw" link add "p-$h" type veth peer name eth0 netns "$NB-$h" 2>&1); then
			netbed__say_skip "this kernel has no veth pairs: $out"
		fi
		ip -n "$NB-sw" link set "p-$h" master br0 up || netbed__fail "p-$h into br0"
		ip netns exec "$NB-$h" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 >/dev/null 2>&1
		ip -n "$NB-$h" addr add "$(netbed_addr $h)/24" dev eth0 || netbed__fail "address of $h"
		ip -n "$NB-$h" link set eth0 up || netbed__fail "eth0 up in $h"
	done
	# the bridge (STP off) forwards as soon as its ports are up; a ping proves it
	if command -v ping >/dev/null &&
		! ip netns exec "$NB-src" ping -c 1 -W 5 "$NB_DST_ADDR" >/dev/null 2>&1; then
		netbed__fail "$NB-src cannot reach $NB_DST_ADDR through the bridge"
	fi
	echo "ok: netbed $NB up (src $NB_SRC_ADDR, dst $NB_DST_ADDR, bridge br0 in $NB-sw)"
}

netbed_agent() {
	local h=$1 sock i uri
	shift
	sock=$(netbed_sock "$h")
	(cd / && exec ip netns exec "$(netbed_ns "$h")" "$KVMIGD" --control "$sock" \
		--listen "${NB_SCHEME:-tcp}:$(netbed_addr "$h"):0" "$@") >"$NB_DIR/$h.log" 2>&1 &
	NB_PID[$h]=$!
	for i in $(seq 100); do
		netbed_kv "$h" agent ping >/dev/null 2>&1 && break
		kill -0 "${NB_PID[$h]}" 2>/dev/null ||
			netbed__fail "agent $h exited: $(tail -n 5 "$NB_DIR/$h.log")"
		sleep 0.1
	done
	uri=$(netbed_kv "$h" agent version --json 2>/dev/null | jq -r .migrate_uri) ||
		netbed__fail "agent $h does not answer on $sock: $(tail -n 5 "$NB_DIR/$h.log")"
	case $h in
	src) NB_URI_src=$uri ;;
	dst) NB_URI_dst=$uri ;;
	esac
	echo "ok: agent $h up in $(netbed_ns "$h") (pid ${NB_PID[$h]}, $uri)"
}

netbed_stop_agent() {
	local h=$1 pid=${NB_PID[$1]:-} i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "NB_PID[$h]"
}

netbed_down() {
	local h n
	for h in "${!NB_PID[@]}"; do
		netbed_stop_agent "$h"
	done
	for n in "${NB_MADE[@]:-}"; do
		[ -n "$n" ] && ip netns del "$n" 2>/dev/null
	done
	NB_MADE=()
	[ -n "${NB_DIR:-}" ] && [ -z "${NETBED_KEEP_DIR:-}" ] && rm -rf "$NB_DIR"
	return 0
}

# ---- run by hand -------------------------------------------------------------

netbed__main() {
	local cmd=${1:-} h
	NB=${2:-}
	case $cmd in
	up)
		[ -n "$NB" ] || netbed__fail "usage: tests/netbed.sh up PREFIX"
		NB_DIR=${TMPDIR:-/tmp}/kvmig-netbed-$NB
		[ ! -e "$NB_DIR" ] || netbed__fail "$NB_DIR exists: 'tests/netbed.sh down $NB' first"
		mkdir -p "$NB_DIR"
		NETBED_NO_TRAP=1
		trap 'netbed_down' EXIT	# on a failure half-way only: cleared below
		netbed_up "$NB"
		for h in src dst; do
			netbed_agent "$h"
			echo "${NB_PID[$h]}" >"$NB_DIR/$h.pid"
		done
		trap - EXIT
		echo "agents: $KVMIG --agent $NB_DIR/src.sock ... (10.77.0.1)"
		echo "        $KVMIG --agent $NB_DIR/dst.sock ... (migrate to $NB_URI_dst)"
		echo "logs:   $NB_DIR/src.log $NB_DIR/dst.log; tear down: tests/netbed.sh down $NB"
		;;
	down)
		[ -n "$NB" ] || netbed__fail "usage: tests/netbed.sh down PREFIX"
		NB_DIR=${TMPDIR:-/tmp}/kvmig-netbed-$NB
		for h in src dst; do
			[ -r "$NB_DIR/$h.pid" ] && NB_PID[$h]=$(cat "$NB_DIR/$h.pid")
		done
		for h in "${!NB_PID[@]}"; do
			kill -TERM "${NB_PID[$h]}" 2>/dev/null
		done
		for h in "${!NB_PID[@]}"; do
			for i in $(seq 100); do kill -0 "${NB_PID[$h]}" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "${NB_PID[$h]}" 2>/dev/null
		done
		NB_PID=()
		NB_MADE=("$NB-sw" "$NB-src" "$NB-dst")
		netbed_down
		echo "netbed $NB down"
		;;
	*)
		echo "usage: tests/netbed.sh up|down PREFIX" >&2
		exit 2
		;;
	esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	netbed__main "$@"
fi
