#!/bin/bash
# Run every test: cmocka unit tests, fuzz-corpus replays, KVM tests and the
# end-to-end scripts. Exit status 77 means skipped (printed loudly).
# Prints "N passed, N failed, N skipped" last; exits non-zero on any failure.
# Usage: tests/run.sh [--build DIR] [PATTERN]   (PATTERN filters test names)
set -u
B=build
while [ $# -gt 0 ]; do
	case "$1" in
	--build) B=$2; shift 2 ;;
	*) break ;;
	esac
done
FILTER=${1:-}
export KVMIG_BUILD=$B
pass=0; fail=0; skip=0; failed=()
LOGDIR=$B/test-logs
mkdir -p "$LOGDIR"

run_one() {	# name, command...
	local name=$1; shift
	if [ -n "$FILTER" ] && [[ "$name" != *$FILTER* ]]; then return; fi
	local log=$LOGDIR/$(echo "$name" | tr '/ ' '__').log
	local t0=$(date +%s%N)
	"$@" >"$log" 2>&1 </dev/null
	local rc=$?
	local ds=$(( ($(date +%s%N) - t0) / 100000000 ))
	local dt=$((ds / 10)).$((ds % 10))
	if [ $rc = 0 ]; then
		pass=$((pass + 1)); echo "PASS    $name (${dt}s)"
	elif [ $rc = 77 ]; then
		skip=$((skip + 1)); echo "SKIPPED $name: $(grep -m1 -i skip "$log" || echo 'needs /dev/kvm')"
	else
		fail=$((fail + 1)); failed+=("$name"); echo "FAIL    $name (exit $rc, ${dt}s; log $log)"
		tail -n 30 "$log" | sed 's/^/    | /'
	fi
}

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

echo
if [ $skip -gt 0 ]; then
	echo "*** $skip test(s) SKIPPED (see above) ***"
fi
for f in "${failed[@]:-}"; do [ -n "$f" ] && echo "failed: $f"; done
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
