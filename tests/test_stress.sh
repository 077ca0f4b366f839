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
#  4. bad and unknown options (--block-size without --backend dir among
#     them) are refused with exit status 2;
#  5. --mmap (views: mapped reads and stores, writes from views, reads into
#     views, msync, madvise, mlock, SIGBUS past EOF): 1M ops (50k
#     sanitized), seed 1, 4 threads; then one thread and another seed;
#     then the replay check of 3 with --mmap.
#
# Every run must exit 0 and end with exactly "ops N, mismatches 0, seed S".
# Exit 0 (pass) or 1 (fail).  If views are not supported here (pcache_mmap
# gives -EOPNOTSUPP: `pcache stress --mmap` exits 77), the --mmap part is
# skipped and, when everything else passed, the script exits 77.

BUILD=${BUILD:-build}
PCACHE=$BUILD/pcache

if [ -n "$SANITIZE" ]; then
	OPS=100000
	MMAP_OPS=50000
else
	OPS=1000000
	MMAP_OPS=1000000
fi

if [ ! -x "$PCACHE" ]; then
	echo "FAIL: $PCACHE not found (run make first)" >&2
	exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_stress.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

failures=0
mmap_skipped=""

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# run_stress OPS SEED [more options]: one run, checked.  With --mmap, exit
# status 77 (views not supported here) sets mmap_skipped instead of failing.
run_stress() {
	ops=$1
	seed=$2
	shift 2
	echo "pcache stress --ops $ops --seed $seed $*"
	"$PCACHE" stress --ops "$ops" --seed "$seed" "$@" >"$TMP/out" 2>"$TMP/err"
	status=$?
	cat "$TMP/err" >&2
	case " $* " in
	*" --mmap "*)
		if [ "$status" -eq 77 ]; then
			mmap_skipped=$(tail -n 1 "$TMP/err")
			echo "skipped: $mmap_skipped"
			return
		fi ;;
	esac
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
for args in "--mmap=yes" "--fault-around 0" "--fault-threads 17" \
	    "--block-size 1024" "--no-such-option" "--threads 5" \
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

# 5: views
run_stress "$MMAP_OPS" 1 --mmap
if [ -z "$mmap_skipped" ]; then
	run_stress $((MMAP_OPS / 5)) 4 --mmap --threads 1
	for i in 1 2; do
		"$PCACHE" stress --ops $REPLAY_OPS --seed 3 --threads 1 --verbose --mmap \
			>"$TMP/mreplay$i.out" 2>"$TMP/mreplay$i.log" ||
			fail "--mmap replay run $i: exit status $?"
	done
	if ! cmp -s "$TMP/mreplay1.log" "$TMP/mreplay2.log"; then
		fail "--mmap --seed 3 --threads 1 twice: the op logs differ"
	elif [ "$(wc -l <"$TMP/mreplay1.log")" -lt $REPLAY_OPS ]; then
		fail "--mmap --verbose logged fewer than $REPLAY_OPS ops"
	else
		echo "replay: --mmap --seed 3 --threads 1 gives the same $REPLAY_OPS ops twice"
	fi
fi

if [ "$failures" -ne 0 ]; then
	echo "test_stress: $failures failure(s)" >&2
	exit 1
fi
if [ -n "$mmap_skipped" ]; then
	echo "SKIP: the --mmap runs (everything else passed): $mmap_skipped"
	exit 77
fi
echo "test_stress: pass"
exit 0
