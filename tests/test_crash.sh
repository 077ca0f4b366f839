#!/bin/sh
# test_crash.sh - crash safety of the dir backend, `pcache crash`.
#
# A child process runs random writes, truncates, stores through a view,
# fsyncs, fdatasyncs, msync(MS_SYNC)s and O_SYNC/O_DSYNC writes and is
# SIGKILLed at a random point; every byte a completed sync made durable
# must then be in the backing files (tools/crash.c says exactly what is
# checked).  Run from the repository root by tests/run.sh, with BUILD set.
#
#  1. 400 children of 200 ops each (60 sanitized), seed 1000;
#  2. 40 children of 2000 ops each (8 sanitized), seed 5000;
#  3. one block size for all, 20 children (5 sanitized), seed 9000;
#  4. --list-ops twice with one seed prints the same ops (replay), and
#     another seed other ops;
#  5. the backing directories of clean iterations are removed.
#
# Every run must exit 0 and end with "iterations N, mismatches 0, seed S".

BUILD=${BUILD:-build}
PCACHE=$BUILD/pcache

if [ -n "$SANITIZE" ]; then
	N1=60 N2=8 N3=5
else
	N1=400 N2=40 N3=20
fi

if [ ! -x "$PCACHE" ]; then
	echo "FAIL: $PCACHE not found (run make first)" >&2
	exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_crash.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir "$TMP/dirs"

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

run_crash() {	# ITERATIONS SEED [options]
	n=$1
	seed=$2
	shift 2
	echo "pcache crash --iterations $n --seed $seed $*"
	"$PCACHE" crash --iterations "$n" --seed "$seed" --dir "$TMP/dirs" "$@" >"$TMP/out" 2>&1
	status=$?
	cat "$TMP/out"
	last=$(tail -n 1 "$TMP/out")
	want="iterations $n, mismatches 0, seed $seed"
	[ "$status" -eq 0 ] || fail "pcache crash --iterations $n --seed $seed $*: exit status $status"
	[ "$last" = "$want" ] || fail "pcache crash --seed $seed $*: last line '$last', want '$want'"
}

run_crash "$N1" 1000
run_crash "$N2" 5000 --ops 2000
run_crash "$N3" 9000 --block-size 512 --files 2 --max-size 1m

"$PCACHE" crash --seed 42 --iterations 3 --list-ops >"$TMP/l1" 2>&1
"$PCACHE" crash --seed 42 --iterations 3 --list-ops >"$TMP/l2" 2>&1
"$PCACHE" crash --seed 43 --iterations 3 --list-ops >"$TMP/l3" 2>&1
if ! cmp -s "$TMP/l1" "$TMP/l2"; then
	fail "--list-ops --seed 42 twice: the ops differ"
elif cmp -s "$TMP/l1" "$TMP/l3"; then
	fail "--list-ops: seeds 42 and 43 give the same ops"
elif [ "$(grep -c '  op ' "$TMP/l1")" -ne 600 ]; then
	fail "--list-ops: not 3 x 200 ops listed"
else
	echo "replay: --seed 42 lists the same 600 ops twice"
fi

leftover=$(ls -A "$TMP/dirs")
[ -z "$leftover" ] || fail "backing directories left behind: $leftover"

if [ "$failures" -ne 0 ]; then
	echo "test_crash: $failures failure(s)" >&2
	exit 1
fi
echo "test_crash: pass"
exit 0
