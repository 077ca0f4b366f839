#!/bin/sh
# test_stress_fuse.sh - `pcache stress --path` on a pcache-fuse mount: the
# project's model-based random checker driving the mount with plain system
# calls, mapped ops (mmap MAP_SHARED, msync, madvise, mlock, SIGBUS past
# EOF) included (issue 7).
#
#  1. sanity of the mode itself: --path on a plain temporary directory (the
#     kernel alone), without and with --mmap;
#  2. pcache-fuse on a temporary backing directory, with a 1 MiB memory
#     limit (the files total 2 MiB: reclaim runs) and 1 KiB blocks:
#     stress --path MNT/plain (seed 1), then --path MNT/mmap --mmap
#     (seed 1); each fsyncs every file at the end and, with --check-dir,
#     compares the backing files with the model while mounted;
#  3. unmount (the daemon must exit 0), then the backing files' cksum(1)
#     must equal what each run printed for its files.
#
# Every run must exit 0 and end with "ops N, mismatches 0, seed S".
# Skips (77) only if /dev/fuse or fusermount3 is missing.  Every command
# runs under timeout; the trap always unmounts.  When SANITIZE is set the
# runs are shorter.
set -u
BUILD=${BUILD:-build}
PCACHE=$BUILD/pcache
FUSE=$BUILD/pcache-fuse
T=30			# seconds for a mount or unmount
TS=240			# seconds for one stress run

if [ -n "${SANITIZE:-}" ]; then
	OPS=20000
else
	OPS=200000
fi

for b in "$PCACHE" "$FUSE"; do
	[ -x "$b" ] || { echo "FAIL: $b not built (run make first)"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pcache-stress-fuse.XXXXXX") || exit 1
B=$tmp/backing M=$tmp/mnt P=$tmp/plain
mkdir -p "$B" "$M" "$P/plain" "$P/mmap"
pid=""
cleanup() {
	mountpoint -q "$M" && { fusermount3 -u "$M" 2>/dev/null || fusermount3 -u -z "$M"; }
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fails=0
ok()   { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# run_stress NAME [options]: one run, output in $tmp/NAME.out, checked.
run_stress() {
	name=$1; shift
	echo "+ $PCACHE stress $*"
	timeout $TS "$PCACHE" stress "$@" >"$tmp/$name.out" 2>&1
	rc=$?
	cat "$tmp/$name.out"
	if [ $rc -eq 0 ] && tail -n 1 "$tmp/$name.out" | grep -q '^ops [0-9]*, mismatches 0, seed'; then
		ok "stress $name"
	else
		fail "stress $name (exit $rc)"
	fi
}

# check_cksums NAME DIR: DIR's files have the size and cksum run NAME printed.
check_cksums() {
	n=0 bad=0
	while read -r f size sum; do
		[ -n "$f" ] || continue
		got=$(cd "$2" && cksum "$f" 2>&1)
		[ "$got" = "$sum $size $f" ] || { echo "  $2/$f: cksum says '$got'," \
			"stress printed '$sum $size $f'"; bad=$((bad + 1)); }
		n=$((n + 1))
	done <<EOF
$(sed -n 's/^stress: file \([^:]*\): \([0-9]*\) bytes, cksum \([0-9]*\)$/\1 \2 \3/p' "$tmp/$1.out")
EOF
	if [ $n -gt 0 ] && [ $bad -eq 0 ]; then
		ok "$2: $n files match the cksums stress $1 printed"
	else
		fail "$2: $bad of $n files differ from what stress $1 printed (none: no cksums)"
	fi
}

# --- 1. the mode itself, on the kernel alone ------------------------------
run_stress plain-dir --path "$P/plain" --ops $((OPS / 4)) --seed 1
check_cksums plain-dir "$P/plain"
run_stress plain-dir-mmap --path "$P/mmap" --ops $((OPS / 4)) --seed 1 --mmap
check_cksums plain-dir-mmap "$P/mmap"

# --- 2. on a pcache-fuse mount ----------------------------------------------
nofuse=""
[ -c /dev/fuse ] || nofuse="no /dev/fuse"
command -v fusermount3 >/dev/null 2>&1 || nofuse="no fusermount3"
if [ -n "$nofuse" ]; then
	[ $fails -eq 0 ] && { echo "SKIP: $nofuse"; exit 77; }
	echo "test_stress_fuse: $fails failed ($nofuse: the mount was not tried)"; exit 1
fi

echo "+ $FUSE $B $M -f -o mem_limit=1M,block_size=1024"
"$FUSE" "$B" "$M" -f -o mem_limit=1M,block_size=1024 >"$tmp/daemon.log" 2>&1 &
pid=$!
i=0
while ! mountpoint -q "$M"; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
		echo "FAIL: the mount did not appear"; cat "$tmp/daemon.log"; exit 1
	fi
	sleep 0.1
done
mkdir "$M/plain" "$M/mmap" || { fail "mkdir on the mount"; exit 1; }

run_stress fuse --path "$M/plain" --check-dir "$B/plain" --ops $OPS --seed 1
run_stress fuse-mmap --path "$M/mmap" --check-dir "$B/mmap" --ops $OPS --seed 1 --mmap
grep -q 'check dir: .* match the model' "$tmp/fuse.out" &&
	ok "backing files match after fsync (plain)" || fail "backing check (plain)"
grep -q 'check dir: .* match the model' "$tmp/fuse-mmap.out" &&
	ok "backing files match after fsync (mmap)" || fail "backing check (mmap)"

# --- 3. unmount; the backing files must still be what stress reported ------
echo "+ fusermount3 -u $M"
timeout $T fusermount3 -u "$M" || fail "fusermount3 -u"
i=0
while kill -0 $pid 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt $((T * 10)) ] && { fail "daemon still running"; break; }
	sleep 0.1
done
wait $pid; rc=$?
pid=""
[ $rc -eq 0 ] && ok "daemon exited 0" || { fail "daemon exit status $rc"; cat "$tmp/daemon.log"; }
check_cksums fuse "$B/plain"
check_cksums fuse-mmap "$B/mmap"

[ $fails -eq 0 ] && { echo "test_stress_fuse: all passed"; exit 0; }
echo "test_stress_fuse: $fails failed"; exit 1
