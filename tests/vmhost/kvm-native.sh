#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/vmhost/kvm-native.sh [BUILD_DIR] - can the KVM tests run on this host?
#
# Native KVM means: /dev/kvm exists and a probe VM runs a guest to a known
# exit (kvm_probe's "realmode": OUT 0x42 to port 0x10 gives KVM_EXIT_IO with
# that byte, then HLT gives KVM_EXIT_HLT; "irqchip": the same with the
# in-kernel irqchip and PIT, as kvmig builds its VMs). A /dev/kvm that opens
# but does not run a guest (seen on nested hosts) is no KVM.
#
# Prints one line, "native (...)" or "none here (why)", and exits 0 for
# native, 1 for none. KVMIG_FORCE_VMHOST=1 says none (to try the QEMU-TCG
# path on a KVM host). The probe is BUILD_DIR/tests/vmhost/kvm_probe (make
# builds it; compiled here when missing); its output is in
# BUILD_DIR/tests/vmhost/kvm_probe.log.
set -u
B=${1:-build}
PROBE=$B/tests/vmhost/kvm_probe
PLOG=$B/tests/vmhost/kvm_probe.log
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

if [ -n "${KVMIG_FORCE_VMHOST:-}" ] && [ "$KVMIG_FORCE_VMHOST" != 0 ]; then
	echo "none here (KVMIG_FORCE_VMHOST=$KVMIG_FORCE_VMHOST; the probe was not asked)"
	exit 1
fi
if [ ! -e /dev/kvm ]; then
	echo "none here (no /dev/kvm)"
	exit 1
fi
mkdir -p "$(dirname "$PROBE")"
if [ ! -x "$PROBE" ] &&
	! gcc -std=gnu11 -O2 -static -pthread -o "$PROBE" "$HERE/kvm_probe.c" >"$PLOG" 2>&1; then
	echo "none here (cannot build $PROBE: $(head -n 1 "$PLOG"))"
	exit 1
fi
timeout -k 5 60 "$PROBE" realmode irqchip >"$PLOG" 2>&1
rc=$?
if [ $rc = 0 ]; then
	echo "native (probe guest reached its exit: $(grep -m1 '^PASS realmode' "$PLOG" |
		sed 's/^PASS realmode *//'))"
	exit 0
fi
why=$(grep -m1 -E '^(FAIL|SKIP) ' "$PLOG" | sed 's/  */ /g')
[ $rc = 124 ] && why="the probe guest did not reach its exit within 60 s"
echo "none here (/dev/kvm does not run a guest: ${why:-kvm_probe exit $rc}; log $PLOG)"
exit 1
