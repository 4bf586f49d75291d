#!/bin/bash
# Run every test: cmocka unit tests, fuzz-corpus replays, KVM tests and the
# end-to-end scripts. Exit status 77 means skipped (printed loudly).
# Prints "N passed, N failed, N skipped" last; exits non-zero on any failure.
#
# Without /dev/kvm, the tests that skipped for want of it are run again in
# one QEMU-TCG virtual machine that has a nested /dev/kvm (tests/vmhost),
# and their results replace the skips. KVMIG_VMHOST=0 turns that off.
#
# Usage: tests/run.sh [--build DIR] [--list FILE] [PATTERN]
#   PATTERN filters test names; --list runs the tests of FILE (lines of
#   name<TAB>argv..., as written for the VM pass).
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
FILTER=${1:-}
export KVMIG_BUILD=$B
pass=0; fail=0; skip=0; failed=()
LOGDIR=$B/test-logs${LIST:+-vm}
mkdir -p "$LOGDIR"
SKIPLIST=$LOGDIR/skipped.list
: >"$SKIPLIST"

# The pids of a process and all its descendants.
descendants() {
	local c
	echo "$1"
	for c in $(pgrep -P "$1"); do descendants "$c"; done
}

# bounded LOG COMMAND...: in the emulated VM, run COMMAND (its output in
# LOG) for at most KVMIG_TEST_TIMEOUT seconds (300). A test still running
# then has the stacks of all its processes' threads appended to LOG (gdb),
# is killed with its process group, and the status is 124.
bounded() {
	local log=$1 secs=${KVMIG_TEST_TIMEOUT:-300} pid dog rc
	shift
	rm -f "$log.hung"
	setsid "$@" >"$log" 2>&1 </dev/null &
	pid=$!
	(
		sleep "$secs"
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
	pkill -P "$dog" 2>/dev/null
	kill "$dog" 2>/dev/null
	wait "$dog" 2>/dev/null
	[ -e "$log.hung" ] && { rm -f "$log.hung"; rc=124; }
	return $rc
}

run_one() {	# name, command...
	local name=$1; shift
	if [ -n "$FILTER" ] && [[ "$name" != *$FILTER* ]]; then return; fi
	local log=$LOGDIR/$(echo "$name" | tr '/ ' '__').log
	local t0=$(date +%s%N) rc
	if [ -n "$LIST" ]; then
		# in the emulated VM a test can hang with its host: bound each one
		bounded "$log" "$@"
		rc=$?
		# The emulated nested SVM (QEMU-TCG) now and then triple-faults a
		# guest, and has corrupted its own host kernel in that path; tests
		# have also hung there (see the issue 4 notes: the stacks of a hung
		# test are in its log). A test that failed either way runs once
		# more, and says so; a second failure counts.
		if [ $rc != 0 ] && [ $rc != 77 ] && { [ $rc = 124 ] || grep -q "triple fault" "$log"; }; then
			echo "RETRY   $name: $([ $rc = 124 ] && echo "it hung (stacks in $log.first)" || echo "a guest triple-faulted under the emulated nested SVM (log: $log.first)"); once more"
			grep -m3 "triple fault\|rip 0x\|still running" "$log" | sed 's/^/    | /'
			mv "$log" "$log.first"
			bounded "$log" "$@"
			rc=$?
		fi
	else
		"$@" >"$log" 2>&1 </dev/null
		rc=$?
	fi
	[ $rc = 124 ] && echo "*** killed after ${KVMIG_TEST_TIMEOUT:-300} s ***" >>"$log"
	local ds=$(( ($(date +%s%N) - t0) / 100000000 ))
	local dt=$((ds / 10)).$((ds % 10))
	if [ $rc = 0 ]; then
		pass=$((pass + 1)); echo "PASS    $name (${dt}s)"
	elif [ $rc = 77 ]; then
		skip=$((skip + 1)); echo "SKIPPED $name: $(grep -m1 -i skip "$log" || echo 'needs /dev/kvm')"
		(IFS=$'\t'; echo "$name"$'\t'"$*") >>"$SKIPLIST"
	else
		fail=$((fail + 1)); failed+=("$name"); echo "FAIL    $name (exit $rc, ${dt}s; log $log)"
		tail -n 30 "$log" | sed 's/^/    | /'
	fi
}

# In the emulated VM the agent-level live-migration matrix takes longer
# than `make test` may: it runs there with KVMIG_LONG=1 (make test-long);
# tests/kvm/test_migrate covers the engine in every run, tests/kvm/test_vm
# save/restore. save_restore.sh is there until it is proven in the VM.
VM_LONG_ONLY="e2e/migrate_kvm e2e/save_restore"

if [ -n "$LIST" ]; then
	while IFS=$'\t' read -r -a argv; do
		[ ${#argv[@]} -ge 2 ] || continue
		if [ -z "${KVMIG_LONG:-}" ] && [[ " $VM_LONG_ONLY " == *" ${argv[0]} "* ]]; then
			skip=$((skip + 1))
			echo "SKIPPED ${argv[0]}: SKIPPED: too slow under emulation for make test; runs in make test-long (KVMIG_LONG=1)"
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
		esac
	done < <(grep -E '^(PASS|FAIL) ' "$vmlog")
	return "$vmrc"
}

if [ -z "$LIST" ] && [ -s "$SKIPLIST" ] && [ ! -c /dev/kvm ] && [ "${KVMIG_VMHOST:-1}" != 0 ]; then
	n=$(wc -l <"$SKIPLIST")
	echo
	echo "--- no /dev/kvm here: running the $n skipped test(s) in a QEMU-TCG VM with nested KVM (tests/vmhost) ---"
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

echo
if [ $skip -gt 0 ]; then
	echo "*** $skip test(s) SKIPPED (see above) ***"
fi
for f in "${failed[@]:-}"; do [ -n "$f" ] && echo "failed: $f"; done
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
