#!/bin/bash
# SPDX-License-Identifier: MIT
# tools/demo-hosts.sh BUILD_DIR - the demo behind `make demo-hosts`.
#
# `make demo` across two hosts: tests/netbed.sh builds hosts src
# (10.77.0.1) and dst (10.77.0.2) as network namespaces on a bridge, with
# an agent in each. A memcheck guest moves from src to dst over TCP with
# --announce eth0; tcpdump on the bridge shows dst's RARP frames, and the
# bridge's table shows the guest's MAC on dst's port. Needs root (and KVM;
# without it, only the bed and the agents are shown). Everything it
# started is torn down on exit.
set -u
B=${1:-build}
export KVMIG_BUILD=$B
. tests/netbed.sh

if [ -t 1 ]; then
	step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	step() { printf '\n== %s\n' "$*"; }
fi
show() { echo "\$ $*"; "$@"; }
die() { echo "demo-hosts: $*" >&2; exit 1; }
stat_of() {	# host vm field
	netbed_kv "$1" vm info "$2" --json 2>/dev/null | jq -er ".guest_stats.$3"
}
wait_above() {	# host vm field floor seconds
	local deadline=$((SECONDS + $5)) v
	while :; do
		v=$(stat_of "$1" "$2" "$3") && [ "$v" -gt "$4" ] && { echo "$v"; return 0; }
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

step "Two hosts and a switch (network namespaces), an agent in each"
netbed_up "dh$$"
netbed_agent src
netbed_agent dst --announce eth0
show ip -n "$NB-sw" -br link show master br0
[ "$(netbed_kv src agent version --json | jq -r .kvm.available)" = true ] || {
	echo "demo-hosts: no usable /dev/kvm here: shown are the hosts and their agents only"
	show netbed_kv dst agent version
	exit 0
}

MAC=52:54:00:de:70:01
step "src: start a memcheck guest (MAC $MAC)"
show netbed_kv src vm start db1 --mem 128M --vcpus 1 --guest memcheck,workset=8M --mac $MAC ||
	die "vm start failed"
wait_above src db1 progress 2048 300 >/dev/null || die "no progress within 300 s"

step "Capture RARP on the switch's port to dst"
netbed_exec sw timeout 60 tcpdump -i p-dst -Q in -nn -e -U -c 5 'ether proto 0x8035' \
	>"$NB_DIR/td.out" 2>"$NB_DIR/td.err" &
TD=$!
for i in $(seq 200); do grep -q 'listening on' "$NB_DIR/td.err" && break; sleep 0.1; done

step "Move it live from src to dst over TCP, announcing it on dst's eth0"
before=$(stat_of src db1 progress)
show netbed_kv src migrate db1 --to "$NB_URI_dst" --verify --announce eth0 --max-downtime 2000 ||
	die "the migration failed"
wait "$TD"
echo "\$ tcpdump -i p-dst -Q in 'ether proto 0x8035'   (in $NB-sw)"
cat "$NB_DIR/td.out"
show netbed_exec sw bridge fdb show br br0 | grep -i "$MAC"

step "dst runs it"
show netbed_kv dst vm list
arrived=$(stat_of dst db1 progress)
now=$(wait_above dst db1 progress "$arrived" 120) || die "the guest makes no progress on dst"
echo "progress at src before: $before; at dst on arrival: $arrived; now: $now;" \
	"errors: $(stat_of dst db1 errors)"
echo "OK: the guest moved between the hosts, the switch learnt its new port from the RARP frames."
