#!/bin/sh
# test_stress.sh - the model-based random test, `pcache stress`.
#
# Run from the repository root by tests/run.sh, with BUILD set to the build
# directory (build, build/san-thread, ...).  When SANITIZE is set the runs
# are shorter: sanitized builds are many times slower.
#
#  1. 1M ops (100k sanitized), seed 1, the default 4 threads;
#  2. one thread and another seed (a replayable sequence);
#  3. the same seed twice with --threads 1 --verbose: identical op logs;
#  4. reserved and unknown options are refused with exit status 2.
#
# Every run must exit 0 and end with exactly "ops N, mismatches 0, seed S".
# Exit 0 (pass) or 1 (fail).

BUILD=${BUILD:-build}
PCACHE=$BUILD/pcache

if [ -n "$SANITIZE" ]; then
	OPS=100000
else
	OPS=1000000
fi

if [ ! -x "$PCACHE" ]; then
	echo "FAIL: $PCACHE not found (run make first)" >&2
	exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_stress.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# run_stress OPS SEED [more options]: one run, checked.
run_stress() {
	ops=$1
	seed=$2
	shift 2
	echo "pcache stress --ops $ops --seed $seed $*"
	"$PCACHE" stress --ops "$ops" --seed "$seed" "$@" >"$TMP/out"
	status=$?
	last=$(tail -n 1 "$TMP/out")
	sed -n '$!p' "$TMP/out"
	echo "$last"
	want="ops $ops, mismatches 0, seed $seed"
	if [ "$status" -ne 0 ]; then
		fail "pcache stress --ops $ops --seed $seed $*: exit status $status"
	fi
	if [ "$last" != "$want" ]; then
		fail "pcache stress --ops $ops --seed $seed $*: last line '$last', want '$want'"
	fi
}

# 1, 2
run_stress "$OPS" 1
run_stress $((OPS / 4)) 2 --threads 1

# 3: a seed replays the same op sequence with one thread
REPLAY_OPS=20000
for i in 1 2; do
	"$PCACHE" stress --ops $REPLAY_OPS --seed 3 --threads 1 --verbose \
		>"$TMP/replay$i.out" 2>"$TMP/replay$i.log" ||
		fail "replay run $i: exit status $?"
done
if ! cmp -s "$TMP/replay1.log" "$TMP/replay2.log"; then
	fail "--seed 3 --threads 1 twice: the op logs differ"
elif [ "$(wc -l <"$TMP/replay1.log")" -lt $REPLAY_OPS ]; then
	fail "--verbose logged fewer than $REPLAY_OPS ops"
else
	echo "replay: --seed 3 --threads 1 gives the same $REPLAY_OPS ops twice"
fi

# 4: options that must be refused, with exit status 2 and a message
for args in "--mmap" "--block-size 1024" "--no-such-option" "--threads 5" \
	    "--ops" "--strategy no-such-strategy" "extra-argument"; do
	# shellcheck disable=SC2086
	"$PCACHE" stress $args >"$TMP/usage.out" 2>"$TMP/usage.err"
	status=$?
	if [ "$status" -ne 2 ]; then
		fail "pcache stress $args: exit status $status, want 2"
	elif [ ! -s "$TMP/usage.err" ]; then
		fail "pcache stress $args: no message on stderr"
	fi
done

if [ "$failures" -ne 0 ]; then
	echo "test_stress: $failures failure(s)" >&2
	exit 1
fi
echo "test_stress: pass"
exit 0
