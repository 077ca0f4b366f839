#!/bin/sh
# test_stress_dir.sh - `pcache stress` on the dir backend: the model-based
# random test over real backing files, with sub-page blocks, a small memory
# limit (reclaim and dirty throttling run all the time), the flusher, and
# views.  After each run every file is fsynced and its backing file is
# compared with the model (plain open/pread), then read back through a
# fresh cache.
#
# Run from the repository root by tests/run.sh, with BUILD set to the build
# directory.  When SANITIZE is set the runs are shorter.
#
#  1. issue 5's figure: --block-size 1024 --mmap, 1M ops (50k sanitized),
#     seed 1, 4 threads, the default memory limit of stress (half the data);
#  2. block sizes 512, 2048 and 4096, with and without views, one thread
#     and four, other seeds;
#  3. --backend-arg: an existing directory, left in place with the files;
#     --keep: the temporary directory is kept; otherwise temporary backing
#     directories are removed (TMPDIR is checked empty at the end);
#  4. --block-size / --mem-limit / --keep usage errors exit 2.
#
# Every run must exit 0, end with "ops N, mismatches 0, seed S", print
# "stress: backend check: ... backing files match the model, a fresh cache
# matches the model", and have reclaimed pages (the limit was reached).
# Views not supported here (exit 77): the --mmap runs are skipped, and the
# script exits 77 if everything else passed.

BUILD=${BUILD:-build}
PCACHE=$BUILD/pcache

if [ -n "$SANITIZE" ]; then
	OPS=50000
else
	OPS=1000000
fi
SMALL=$((OPS / 10))

if [ ! -x "$PCACHE" ]; then
	echo "FAIL: $PCACHE not found (run make first)" >&2
	exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_stress_dir.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir "$TMP/tmp" "$TMP/backing"

failures=0
mmap_skipped=""

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# run_stress OPS SEED [more options]: one dir-backend run, checked.
run_stress() {
	ops=$1
	seed=$2
	shift 2
	echo "pcache stress --backend dir --ops $ops --seed $seed $*"
	start=$(date +%s)
	TMPDIR="$TMP/tmp" "$PCACHE" stress --backend dir --ops "$ops" --seed "$seed" "$@" \
		>"$TMP/out" 2>"$TMP/err"
	status=$?
	secs=$(($(date +%s) - start))
	cat "$TMP/err" >&2
	case " $* " in
	*" --mmap "*)
		if [ "$status" -eq 77 ]; then
			mmap_skipped=$(tail -n 1 "$TMP/err")
			echo "skipped: $mmap_skipped"
			return
		fi ;;
	esac
	cat "$TMP/out"
	echo "(${secs} s)"
	last=$(tail -n 1 "$TMP/out")
	want="ops $ops, mismatches 0, seed $seed"
	args="--ops $ops --seed $seed $*"
	[ "$status" -eq 0 ] || fail "pcache stress $args: exit status $status"
	[ "$last" = "$want" ] || fail "pcache stress $args: last line '$last', want '$want'"
	grep -q '^stress: backend check: .*backing files match the model, a fresh cache matches the model$' \
		"$TMP/out" || fail "pcache stress $args: no passing backend check line"
	reclaimed=$(sed -n 's/^stress: memory: \([0-9]*\) pages reclaimed.*/\1/p' "$TMP/out")
	if [ -z "$reclaimed" ] || [ "$reclaimed" -eq 0 ]; then
		fail "pcache stress $args: no page was reclaimed ('${reclaimed}')"
	fi
}

# 1: the command, with a seed
run_stress "$OPS" 1 --block-size 1024 --mmap

# 2: other block sizes and shapes
run_stress "$SMALL" 2 --block-size 512 --mmap
run_stress "$SMALL" 3 --block-size 2048 --threads 1
run_stress "$SMALL" 4 --block-size 4096 --mmap --threads 2
run_stress "$SMALL" 5 --block-size 512 --files 8 --max-size 64k

# 3: a given directory stays, with the files in it; --keep keeps ours
run_stress $((SMALL / 5)) 6 --block-size 1024 --backend-arg "$TMP/backing"
for i in 0 1 2 3; do
	[ -f "$TMP/backing/stress-$i" ] || fail "--backend-arg: $TMP/backing/stress-$i is missing"
done
TMPDIR="$TMP/tmp" "$PCACHE" stress --backend dir --ops 1000 --seed 7 --keep \
	>"$TMP/out" 2>&1 || fail "--keep run: exit status $?"
kept=$(sed -n 's/^stress: kept the backing directory \(.*\)$/\1/p' "$TMP/out")
if [ -z "$kept" ] || [ ! -f "$kept/stress-0" ]; then
	fail "--keep: no backing directory kept ('$kept')"
else
	rm -rf "$kept"
fi
leftover=$(ls -A "$TMP/tmp")
[ -z "$leftover" ] || fail "temporary backing directories left behind: $leftover"

# 4: usage errors
for args in "--backend dir --block-size 1000" "--backend dir --block-size 8192" \
	    "--block-size 1024" "--backend memory --block-size 1024" \
	    "--backend dir --mem-limit 1" "--backend dir --mem-limit lots" \
	    "--backend dir --backend-arg $TMP/backing --keep" "--keep"; do
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
	echo "test_stress_dir: $failures failure(s)" >&2
	exit 1
fi
if [ -n "$mmap_skipped" ]; then
	echo "SKIP: the --mmap runs (everything else passed): $mmap_skipped"
	exit 77
fi
echo "test_stress_dir: pass"
exit 0
