#!/bin/bash
# Run every test: cmocka unit tests, fuzz-corpus replays, KVM tests and the
# end-to-end scripts. Exit status 77 means skipped (printed loudly, with the
# test's own SKIPPED line as the reason).
# Prints "N passed, N failed, N skipped, N retried" last; exits non-zero on
# any failure.
#
# KVM, native or emulated: first, tests/vmhost/kvm-native.sh runs a probe VM
# whose guest must reach a known exit. When it does, every test runs here
# and nothing is retried. When it does not (no /dev/kvm, or a /dev/kvm that
# does not run a guest; KVMIG_FORCE_VMHOST=1 pretends so), the tests run
# here with /dev/kvm hidden (a private mount namespace binds a driverless
# device node over it), so the KVM tests skip, and then the skipped ones run
# once more in one QEMU-TCG virtual machine that has a nested /dev/kvm
# (tests/vmhost); their results replace the skips. KVMIG_VMHOST=0 turns the
# VM pass off. The first line printed says which and why.
#
# Bounds: every test runs for at most KVMIG_TEST_TIMEOUT seconds (600 here,
# 300 in the emulated VM). A test still running then has the stacks of its
# processes' threads appended to its log (gdb), is killed with its process
# group, and fails (status 124).
#
# Retries, in the emulated VM pass only (never natively). The emulated
# nested SVM (QEMU-TCG) now and then triple-faults a guest, and tests have
# hung with their emulated host (issue 4). A failed test runs once more when
#  - it hung (status 124) with no thread in destination or state-load code
#    (the gdb stacks in its log show no incoming_*, session_*, mdest_*,
#    vm_create_from_state or snapshot_restore frame), or
#  - its log reports a triple fault "in a VM booted here" (vm/vm.c names the
#    VM's origin in that message),
# and never when its log reports a triple fault "in a VM built from a state"
# (a migration destination or a restore): a failure after a state load is a
# failure. A retried test says RETRY with its reason; a second failure
# counts. Every retry is counted in the summary.
#
# Usage: tests/run.sh [--build DIR] [--list FILE] [PATTERN...]
#   a PATTERN selects the tests whose name contains it (any of them); --list
#   runs the tests of FILE (lines of name<TAB>argv..., as written for the VM
#   pass).
set -u
B=build
LIST=
while [ $# -gt 0 ]; do
	case "$1" in
	--build) B=$2; shift 2 ;;
	--list) LIST=$2; shift 2 ;;
	*) break ;;
	esac
done
FILTERS=("$@")
if [ -n "$LIST" ] && [ ! -r "$LIST" ]; then
	echo "tests/run.sh: cannot read the test list $LIST (a path inside the repository, when run in the VM)" >&2
	exit 2
fi
export KVMIG_BUILD=$B
pass=0; fail=0; skip=0; retried=0; failed=()
LOGDIR=$B/test-logs${LIST:+-vm}
mkdir -p "$LOGDIR"
SKIPLIST=$LOGDIR/skipped.list
: >"$SKIPLIST"

if [ -n "$LIST" ]; then
	TEST_TIMEOUT=${KVMIG_TEST_TIMEOUT:-300}
	echo "KVM: in the QEMU-TCG VM (tests/vmhost): the listed tests run here, bounded to $TEST_TIMEOUT s"
	KVM_NATIVE=0
	HIDE_KVM=
else
	TEST_TIMEOUT=${KVMIG_TEST_TIMEOUT:-600}
	HIDE_KVM=
	if why=$(tests/vmhost/kvm-native.sh "$B"); then
		KVM_NATIVE=1
		echo "KVM: $why: every test runs here, bounded to $TEST_TIMEOUT s, none retried"
	else
		KVM_NATIVE=0
		if [ "${KVMIG_VMHOST:-1}" != 0 ]; then
			echo "KVM: $why: the KVM tests run in a QEMU-TCG VM"
		else
			echo "KVM: $why: the KVM tests skip (KVMIG_VMHOST=0: no QEMU-TCG VM)"
		fi
		# A /dev/kvm that does not run guests would fail the KVM tests
		# here instead of skipping them: hide it from them.
		if [ -e /dev/kvm ]; then
			HIDE_KVM=$LOGDIR/no-kvm
			rm -f "$HIDE_KVM"
			if ! mknod "$HIDE_KVM" c 0 0 2>/dev/null ||
				! unshare --mount --propagation private -- \
					sh -c 'mount --bind "$0" /dev/kvm' "$HIDE_KVM" 2>/dev/null; then
				echo "KVM: cannot hide /dev/kvm from the tests here (needs root: mknod, unshare, mount): they use it"
				HIDE_KVM=
			fi
		fi
	fi
fi

# The pids of a process and all its descendants.
descendants() {
	local c
	echo "$1"
	for c in $(pgrep -P "$1"); do descendants "$c"; done
}

# bounded LOG COMMAND...: run COMMAND (its output in LOG) for at most
# TEST_TIMEOUT seconds. A test still running then has the stacks of all its
# processes' threads appended to LOG (gdb), is killed with its process
# group, and the status is 124.
bounded() {
	local log=$1 secs=$TEST_TIMEOUT pid dog rc
	shift
	rm -f "$log.hung"
	setsid "$@" >"$log" 2>&1 </dev/null &
	pid=$!
	(
		# TERM (the test ended first) ends the watch and its sleep
		trap 'kill $nap 2>/dev/null; wait $nap; exit 0' TERM
		sleep "$secs" &
		nap=$!
		wait $nap
		trap - TERM
		touch "$log.hung"
		echo "*** still running after $secs s: the stacks of its processes ***"
		for p in $(descendants "$pid"); do
			echo "--- pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
			gdb -p "$p" -batch -ex 'thread apply all bt' 2>&1 |
				grep -v '^\[New LWP\|^Using host libthread\|^\[Thread debugging'
		done
		kill -TERM -- "-$pid"
		sleep 5
		kill -KILL -- "-$pid" 2>/dev/null
	) >>"$log" 2>&1 &
	dog=$!
	wait "$pid"
	rc=$?
	# a watch that fired kills the test's process group, then ends
	[ -e "$log.hung" ] || kill "$dog" 2>/dev/null
	wait "$dog" 2>/dev/null
	[ -e "$log.hung" ] && { rm -f "$log.hung"; rc=124; }
	return $rc
}

# gdb frames of the destination's and the state loader's code
DEST_FRAMES='^#[0-9]+ +(0x[0-9a-f]+ in )?(incoming_|session_|mdest_|vm_create_from_state|snapshot_restore)[a-z_]* \('

# retry_reason LOG RC: in the emulated VM, why a failed test may run once
# more (printed; status 0), or status 1 when it may not (see the header).
retry_reason() {
	local log=$1 rc=$2
	[ -n "$LIST" ] && [ "$rc" != 0 ] && [ "$rc" != 77 ] || return 1
	grep -q "triple fault in a VM built from a state" "$log" && return 1
	if [ "$rc" = 124 ]; then
		# not when a thread hung in destination or state-load code
		grep -qE "$DEST_FRAMES" "$log" && return 1
		echo "it hung (stacks in $log.first)"
	elif grep -q "triple fault in a VM booted here" "$log"; then
		echo "a VM booted here (no state loaded) triple-faulted under the emulated nested SVM (log: $log.first)"
	else
		return 1
	fi
}

selected() {	# name: does it match a PATTERN (or are there none)?
	local f
	[ ${#FILTERS[@]} = 0 ] && return 0
	for f in "${FILTERS[@]}"; do
		[[ "$1" == *"$f"* ]] && return 0
	done
	return 1
}

run_one() {	# name, command...
	local name=$1; shift
	selected "$name" || return
	local log=$LOGDIR/$(echo "$name" | tr '/ ' '__').log
	local t0=$(date +%s%N) rc why cmd=("$@")
	[ -n "$HIDE_KVM" ] && cmd=(unshare --mount --propagation private -- \
		sh -c 'mount --bind "$0" /dev/kvm || exit 125; exec "$@"' "$HIDE_KVM" "$@")
	bounded "$log" "${cmd[@]}"
	rc=$?
	if why=$(retry_reason "$log" $rc); then
		retried=$((retried + 1))
		echo "RETRY   $name: $why; once more"
		grep -m3 "triple fault\|rip 0x\|still running" "$log" | sed 's/^/    | /'
		mv "$log" "$log.first"
		bounded "$log" "${cmd[@]}"
		rc=$?
	fi
	[ $rc = 124 ] && echo "*** killed after $TEST_TIMEOUT s ***" >>"$log"
	local ds=$(( ($(date +%s%N) - t0) / 100000000 ))
	local dt=$((ds / 10)).$((ds % 10))
	if [ $rc = 0 ]; then
		pass=$((pass + 1)); echo "PASS    $name (${dt}s)"
	elif [ $rc = 77 ]; then
		why=$(grep -m1 '^SKIPPED' "$log" | sed 's/^SKIPPED:\{0,1\} *//')
		skip=$((skip + 1)); echo "SKIPPED $name: ${why:-exit 77 without a SKIPPED line (log $log)}"
		(IFS=$'\t'; echo "$name"$'\t'"$*") >>"$SKIPLIST"
	else
		fail=$((fail + 1)); failed+=("$name"); echo "FAIL    $name (exit $rc, ${dt}s; log $log)"
		tail -n 30 "$log" | sed 's/^/    | /'
	fi
}

# In the emulated VM the agent-level live-migration matrix takes longer
# than `make test` may: it runs there with KVMIG_LONG=1 (make test-long);
# tests/kvm/test_migrate covers the engine in every run, tests/kvm/test_vm
# save/restore. Where KVM is native both run in every `make test`.
VM_LONG_ONLY="e2e/migrate_kvm e2e/save_restore"

if [ -n "$LIST" ]; then
	while IFS=$'\t' read -r -a argv; do
		[ ${#argv[@]} -ge 2 ] || continue
		if [ -z "${KVMIG_LONG:-}" ] && [[ " $VM_LONG_ONLY " == *" ${argv[0]} "* ]]; then
			skip=$((skip + 1))
			echo "SKIPPED ${argv[0]}: too slow under emulation for make test; runs in make test-long (KVMIG_LONG=1)"
			continue
		fi
		run_one "${argv[0]}" "${argv[@]:1}"
	done <"$LIST"
else
	for t in "$B"/tests/unit/test_*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		case "$t" in *.o|*.d) continue ;; esac
		run_one "unit/$(basename "$t")" "$t"
	done
	for t in "$B"/tests/fuzz/*-replay; do
		[ -x "$t" ] || continue
		n=$(basename "$t" -replay)
		run_one "fuzz-replay/$n" "$t" "tests/fuzz/corpus/$n"
	done
	for t in "$B"/tests/kvm/*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		case "$t" in *.o|*.d) continue ;; esac
		run_one "kvm/$(basename "$t")" "$t"
	done
	for t in tests/e2e/*.sh; do
		[ -f "$t" ] || continue
		case "$t" in */lib.sh) continue ;; esac
		run_one "e2e/$(basename "$t" .sh)" bash "$t"
	done
fi

# The skipped KVM tests, once more, in a VM with a nested /dev/kvm.
# vm_pass LIST LOG: one VM runs the tests of LIST; their results count.
vm_pass() {
	local list=$1 vmlog=$2 vmrc verdict name
	tests/vmhost/run-in-vm.sh --timeout "${KVMIG_VMHOST_TIMEOUT:-900}" -- \
		tests/run.sh --build "$B" --list "$list" 2>&1 | tee "$vmlog" | grep -E '^(PASS|FAIL|SKIPPED|RETRY|    \|)'
	vmrc=${PIPESTATUS[0]}
	while read -r verdict name _; do
		case "$verdict" in
		PASS) pass=$((pass + 1)); skip=$((skip - 1)) ;;
		FAIL) fail=$((fail + 1)); skip=$((skip - 1)); failed+=("$name (in the VM)") ;;
		RETRY) retried=$((retried + 1)) ;;
		esac
	done < <(grep -E '^(PASS|FAIL|RETRY) ' "$vmlog")
	return "$vmrc"
}

if [ -z "$LIST" ] && [ -s "$SKIPLIST" ] && [ "$KVM_NATIVE" = 0 ] && [ "${KVMIG_VMHOST:-1}" != 0 ]; then
	n=$(wc -l <"$SKIPLIST")
	echo
	echo "--- no native KVM here: running the $n skipped test(s) in a QEMU-TCG VM with nested KVM (tests/vmhost) ---"
	vm_pass "$SKIPLIST" "$LOGDIR/vmhost.log"
	vmrc=$?
	if [ "$vmrc" -ge 124 ]; then
		# The emulated host itself can wedge (see the issue 4 notes): the
		# tests it did not finish get one more VM.
		again=$LOGDIR/skipped-again.list
		: >"$again"
		while IFS=$'\t' read -r name rest; do
			grep -qE "^(PASS|FAIL) +$name " "$LOGDIR/vmhost.log" || printf '%s\t%s\n' "$name" "$rest" >>"$again"
		done <"$SKIPLIST"
		echo "*** the KVM VM did not finish (exit $vmrc; log $LOGDIR/vmhost.log) ***"
		tail -n 20 "$LOGDIR/vmhost.log" | sed 's/^/    | /'
		if [ -s "$again" ]; then
			echo "--- once more, in a new VM, the $(wc -l <"$again") test(s) it did not finish ---"
			vm_pass "$again" "$LOGDIR/vmhost-again.log"
			vmrc=$?
			if [ "$vmrc" -ge 124 ]; then
				echo "*** the second KVM VM did not finish either (exit $vmrc; log $LOGDIR/vmhost-again.log): what it did not run stays SKIPPED ***"
				tail -n 20 "$LOGDIR/vmhost-again.log" | sed 's/^/    | /'
			fi
		fi
	fi
fi
[ -n "$HIDE_KVM" ] && rm -f "$HIDE_KVM"

echo
if [ $skip -gt 0 ]; then
	echo "*** $skip test(s) SKIPPED (see above) ***"
fi
for f in "${failed[@]:-}"; do [ -n "$f" ] && echo "failed: $f"; done
echo "$pass passed, $fail failed, $skip skipped, $retried retried"
[ $fail = 0 ]
