#!/bin/sh
# run.sh - run tests, each with a timeout, and end with "N passed, N failed".
#
#   sh tests/run.sh TEST...       (make check calls it; BUILD and SANITIZE
#                                  come from the environment)
#
# A test is a program (exit 0 pass, 77 skip, anything else fail) or a shell
# script run with sh.  A test still running after PCACHE_TEST_TIMEOUT
# seconds (default 300) is presumed deadlocked: its threads' backtraces are
# printed (gdb, if installed) before it is killed and counted as failed.
set -u
timeout_s=${PCACHE_TEST_TIMEOUT:-300}
logdir=${BUILD:-build}/test-logs
mkdir -p "$logdir"

# Sanitizer runtimes: fail on the first report, and say where.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=7}

pass=0 fail=0 skip=0 failed_names=""

diagnose() {	# $1 = pid, $2 = log
	echo "=== TIMEOUT after ${timeout_s}s: presumed deadlock; thread backtraces follow ===" >>"$2"
	if command -v gdb >/dev/null 2>&1; then
		gdb -p "$1" -batch -ex "thread apply all bt" >>"$2" 2>&1
	else
		echo "(gdb not installed: no backtraces)" >>"$2"
	fi
	kill -KILL "$1" 2>/dev/null
}

for t in "$@"; do
	name=$(basename "$t")
	log="$logdir/$name.log"
	start=$(date +%s.%N)
	case "$t" in
	*.sh) sh "$t" >"$log" 2>&1 & ;;
	*)    "$t" >"$log" 2>&1 & ;;
	esac
	pid=$!
	(
		sleep "$timeout_s" & spid=$!
		trap 'kill $spid 2>/dev/null; exit 0' TERM
		wait $spid
		kill -0 "$pid" 2>/dev/null && diagnose "$pid" "$log"
	) &
	watcher=$!
	wait "$pid"
	rc=$?
	kill "$watcher" 2>/dev/null
	wait "$watcher" 2>/dev/null
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	case $rc in
	0)  pass=$((pass + 1)); printf 'PASS  %-28s %6ss\n' "$name" "$secs" ;;
	77) skip=$((skip + 1)); printf 'SKIP  %-28s %s\n' "$name" "$(grep -m1 SKIP "$log")" ;;
	*)  fail=$((fail + 1)); failed_names="$failed_names $name"
	    printf 'FAIL  %-28s %6ss (exit %d)\n' "$name" "$secs" "$rc"
	    echo "----- last lines of $log -----"
	    tail -n 60 "$log"
	    echo "-----" ;;
	esac
done

[ "$skip" -gt 0 ] && echo "$skip skipped"
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
