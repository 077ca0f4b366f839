#!/bin/sh
# test_preload.sh - unmodified programs on pcache through the LD_PRELOAD
# shim, build/libpcache-preload.so (docs/preload.md).
#
# Run from the repository root by tests/run.sh, with BUILD set.  Every
# program runs under `timeout`, so a deadlock fails the test instead of
# hanging it.
#
# Parts 1-5 run on the memory backend (the shim's default is "dir"), where
# a file lives only in the process that made it, so every check there runs
# inside one process:
#  1. preload_calls: every interposed call, bad input (bogus and closed
#     descriptors, closing twice, PROT_NONE buffers: EBADF/EFAULT), fork;
#  2. preload_selfwrite: write() from an mmap of the same file, same and
#     overlapping pages, under bounce, bounce-opt, atomic and optimistic;
#     naive is run too, under a short timeout, and what it does is
#     reported, not judged (it is the seed's deadlock);
#  3. coreutils: cp and dd write into the directory (nothing reaches the
#     disk), cat does not see a real file placed there, and cp/cat/dd on
#     paths outside it pass through intact; awk writes a file with stdio
#     (fopen) and reads it back with open/read in the same process;
#  4. sqlite3: a rollback-journal and a WAL database built, changed and
#     checked in one sqlite3 process;
#  5. fio: psync, pvsync2 and mmap engines, verify=crc32c, --thread (so
#     the layout, the writes and the verify are one process).
# Cases that need files to outlive a process (cp then cmp, cat and dd
# reading what another process wrote, a second sqlite3 process, fio's
# default fork mode; preload_calls' mode, owner and times on the backing
# file, cp -p, touch -d and chmod seen on disk; a file written through a
# second hard link, on disk under both names; ln then cat; a stdio stream
# never closed, on disk after exit; awk appending to a file the cache
# holds; tee and sort through stdio; a file written then an exec of cat,
# from sh and from execl/execlp/execle) are part 6, on the "dir" backend.
#
# Exit 0 pass, 1 fail, 77 skip (the shim cannot be preloaded here, or the
# dir-backend part was skipped and everything else passed).

BUILD=${BUILD:-build}
ROOT=$(pwd)
# The one-process cases run on the memory backend (part 6 sets dir itself).
PCACHE_PRELOAD_BACKEND=${PCACHE_PRELOAD_BACKEND:-memory}
export PCACHE_PRELOAD_BACKEND
SHIM=$ROOT/$BUILD/libpcache-preload.so
T=${PRELOAD_TIMEOUT:-120}

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
note_skip() {
	echo "skipped: $*"
	skipped="$*"
}
failures=0
skipped=

if [ ! -f "$SHIM" ]; then
	echo "FAIL: $SHIM not found (run make first)" >&2
	exit 1
fi

# A sanitized shim needs its runtime loaded first in programs that were
# not built with it (cp, sqlite3, fio); the sanitized helpers link it
# themselves, and the order is the same.
PRELOAD=$SHIM
case "$SANITIZE" in
*address*)
	PRELOAD="$(gcc -print-file-name=libasan.so) $SHIM"
	# The programs' own leaks are not ours to report.
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" ;;
*thread*)
	PRELOAD="$(gcc -print-file-name=libtsan.so) $SHIM" ;;
esac
case "$SANITIZE" in
*undefined*)
	case "$SANITIZE" in
	*address*) ;;	# libasan carries the UBSan runtime
	*) PRELOAD="$(gcc -print-file-name=libubsan.so) $PRELOAD" ;;
	esac ;;
esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_preload.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
DIR=$TMP/dir
mkdir "$DIR"

# run [VAR=value...] PROGRAM ARGS: under the shim, with a timeout.
run() {
	timeout "$T" env LD_PRELOAD="$PRELOAD" PCACHE_PRELOAD_DIR="$DIR" "$@"
}

# Can the shim be preloaded here at all?
if ! run true 2>"$TMP/probe.err"; then
	echo "SKIP: cannot preload the shim here ($(head -n 1 "$TMP/probe.err"))"
	exit 77
fi

on_disk() {
	find "$DIR" -mindepth 1 | wc -l
}

head -c 3000000 /dev/urandom >"$TMP/src" ||
	{ echo "FAIL: no source file" >&2; exit 1; }

# 1. the calls and bad input
echo "== preload_calls"
if run "$BUILD/tests/preload_calls" "$DIR"; then :; else
	fail "preload_calls: exit status $?"
fi

# 2. writes from a map of the same file
for s in bounce bounce-opt atomic optimistic; do
	echo "== preload_selfwrite, strategy $s"
	run PCACHE_WRITE_STRATEGY=$s "$BUILD/tests/preload_selfwrite" "$DIR/self"
	status=$?
	[ "$status" -eq 124 ] && fail "preload_selfwrite $s: deadlock (timed out after ${T}s)"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ] &&
		fail "preload_selfwrite $s: exit status $status"
done
echo "== preload_selfwrite, strategy naive (expected to deadlock or corrupt; not judged)"
timeout 10 env LD_PRELOAD="$PRELOAD" PCACHE_PRELOAD_DIR="$DIR" \
	PCACHE_WRITE_STRATEGY=naive "$BUILD/tests/preload_selfwrite" "$DIR/self" \
	>"$TMP/naive.out" 2>&1
status=$?
case $status in
124) echo "naive: deadlocked (killed by timeout after 10s), as the seed does" ;;
0)   echo "naive: completed with the right bytes (the deadlock was not hit)" ;;
*)   echo "naive: exit status $status:"; sed 's/^/  /' "$TMP/naive.out" | head -n 5 ;;
esac

# 3. coreutils
echo "== coreutils (one process each)"
if run cp "$TMP/src" "$DIR/cp.out"; then
	[ "$(on_disk)" -eq 0 ] || [ "$PCACHE_PRELOAD_BACKEND" = dir ] ||
		fail "cp: the file reached the disk, not the cache"
else
	fail "cp into the directory: exit status $?"
fi
run dd if="$TMP/src" of="$DIR/dd.out" bs=64k 2>"$TMP/dd.err" ||
	fail "dd into the directory: exit status $?"
grep -q "^3000000 bytes" "$TMP/dd.err" ||
	fail "dd: $(tail -n 1 "$TMP/dd.err")"
echo "real file" >"$DIR/real"
if [ "${PCACHE_PRELOAD_BACKEND:-memory}" = memory ]; then
	if run cat "$DIR/real" >"$TMP/cat.out" 2>"$TMP/cat.err"; then
		fail "cat saw a real file under the directory: not served by the cache"
	else
		grep -q "No such file" "$TMP/cat.err" ||
			fail "cat: $(cat "$TMP/cat.err")"
	fi
fi
rm -f "$DIR/real"
# Outside the directory everything passes through.
run cp "$TMP/src" "$TMP/cp.plain" && cmp "$TMP/src" "$TMP/cp.plain" ||
	fail "cp outside the directory"
run cat "$TMP/src" >"$TMP/cat.plain" && cmp "$TMP/src" "$TMP/cat.plain" ||
	fail "cat outside the directory"
run dd if="$TMP/src" of="$TMP/dd.plain" bs=1M 2>/dev/null &&
	cmp "$TMP/src" "$TMP/dd.plain" || fail "dd outside the directory"

# stdio: awk writes with fopen (print > and print >>) and reads with open
# and read (getline <), in one process, so the stream and the descriptor
# must agree; with the memory backend nothing reaches the disk.
AWK=$(command -v mawk || command -v awk)
awk_prog='{ print > F } END { close(F); while ((getline l < F) > 0) n++; print n + 0
	print "appended" >> F; close(F); while ((getline l < F) > 0) k++; print k + 0 }'
seq 1 2000 >"$TMP/lines"
echo "== $AWK: print > and >> (fopen), then getline < (open) of the same file"
got=$(run "$AWK" -v F="$DIR/awk.out" "$awk_prog" "$TMP/lines" | tr '\n' ' ')
[ "$got" = "2000 2001 " ] || fail "awk: read back '$got', want '2000 2001 '"
[ "$(on_disk)" -eq 0 ] || [ "$PCACHE_PRELOAD_BACKEND" = dir ] ||
	fail "awk: the file reached the disk, not the cache"

# 4. sqlite3
if command -v sqlite3 >/dev/null 2>&1; then
	for mode in delete wal; do
		echo "== sqlite3, journal_mode=$mode"
		run sqlite3 "$DIR/db-$mode" >"$TMP/sql.out" 2>&1 <<EOF
pragma journal_mode=$mode;
create table t(a integer primary key, b text);
begin;
insert into t(b) select printf('row %d %s', value, hex(zeroblob(value % 200)))
	from generate_series(1, 5000);
commit;
update t set b = upper(b) where a % 3 = 0;
delete from t where a % 5 = 0;
create index tb on t(b);
select count(*), sum(length(b)) from t;
pragma integrity_check;
EOF
		status=$?
		cat "$TMP/sql.out"
		want="4000|835112"
		[ "$status" -eq 0 ] || fail "sqlite3 $mode: exit status $status"
		grep -qx "$want" "$TMP/sql.out" || fail "sqlite3 $mode: want $want"
		grep -qx ok "$TMP/sql.out" || fail "sqlite3 $mode: integrity_check"
	done
else
	fail "sqlite3 not installed (sh .ci/deps installs it)"
fi

# 5. fio, one process (--thread)
if command -v fio >/dev/null 2>&1; then
	for engine in psync pvsync2 mmap; do
		for rw in randwrite write; do
			echo "== fio --ioengine=$engine --rw=$rw --verify=crc32c --thread"
			run fio --name=v --directory="$DIR" --ioengine=$engine \
				--rw=$rw --bs=4k --size=16m --verify=crc32c \
				--do_verify=1 --verify_state_save=0 --thread >"$TMP/fio.out" 2>&1
			status=$?
			grep -E "err=|verify|WRITE:|READ:" "$TMP/fio.out" | sed 's/^ *//'
			[ "$status" -eq 0 ] || fail "fio $engine $rw: exit status $status"
			grep -q "err= 0" "$TMP/fio.out" || fail "fio $engine $rw: an error"
			grep -q "READ: bw=" "$TMP/fio.out" ||
				fail "fio $engine $rw: the verify read nothing"
		done
	done
else
	fail "fio not installed (sh .ci/deps installs it)"
fi

# 6. what needs files to outlive a process: the dir backend.
# (cp, not dd: dd's aligned_alloc(4096, 512) is refused by ASan's allocator.)
if run PCACHE_PRELOAD_BACKEND=dir cp /dev/null "$DIR/probe" \
	2>"$TMP/dir.err"; then
	echo "== the dir backend: across processes"
	rm -rf "$DIR"/*
	D="PCACHE_PRELOAD_BACKEND=dir"
	run $D cp "$TMP/src" "$DIR/a" && run $D cmp "$TMP/src" "$DIR/a" ||
		fail "dir: cp then cmp"
	run $D cat "$DIR/a" >"$TMP/cat.back" && cmp "$TMP/src" "$TMP/cat.back" ||
		fail "dir: cat back"
	run $D dd if="$DIR/a" of="$DIR/b" bs=1M 2>/dev/null &&
		run $D cmp "$TMP/src" "$DIR/b" || fail "dir: dd then cmp"
	run $D sqlite3 "$DIR/x.db" "create table t(a); insert into t values (42);" &&
		[ "$(run $D sqlite3 "$DIR/x.db" "select a from t;")" = 42 ] ||
		fail "dir: a second sqlite3 process"

	echo "== the dir backend: mode, owner and times"
	# The calls with the dir backend: the backing file checked in the
	# process (a raw fstatat) and, for attr-keep, after it exits.
	# Under TSan, fork() after the dir cache's flusher started is TSan's
	# die_after_fork (exit 66); the plain and ASan builds run the case.
	case "$SANITIZE" in
	*thread*) nofork="TSan cannot follow fork() in a multithreaded process" ;;
	*) nofork= ;;
	esac
	run $D ${nofork:+env PRELOAD_CALLS_NO_FORK="$nofork"} "$BUILD/tests/preload_calls" "$DIR" ||
		fail "dir: preload_calls: exit status $?"
	want="640 1234567890 2009-02-13 23:31:30.500000000 +0000 5000"
	got=$(TZ=UTC0 stat -c '%a %Y %y %s' "$DIR/attr-keep" 2>&1)
	[ "$got" = "$want" ] ||
		fail "dir: attr-keep on disk after exit: '$got', want '$want'"
	# link-keep was written through its second name: both names show it.
	for n in link-keep link-keep2; do
		got=$(cat "$DIR/$n" 2>&1)
		[ "$got" = "kept+both" ] || fail "dir: $n on disk after exit: '$got'"
	done
	[ "$(stat -c %h "$DIR/link-keep")" = 2 ] || fail "dir: link-keep has $(stat -c %h "$DIR/link-keep") links"
	# ln through the shim, then cat of the new name.
	run $D ln "$DIR/link-keep" "$DIR/link-ln" && [ "$(run $D cat "$DIR/link-ln")" = "kept+both" ] ||
		fail "dir: ln then cat"
	echo "== the dir backend: exec"
	# The shell writes a file itself, then execs cat (its last command):
	# the cache is written back before the exec, so cat reads it.
	got=$(run $D sh -c "echo exec-kept > '$DIR/ex'; exec cat '$DIR/ex'")
	[ "$got" = exec-kept ] || fail "dir: sh writes then execs cat: cat read '$got'"
	# And with a fork: the shell runs cat in a child (it is not the last
	# command), so the shell writes back at fork.
	got=$(run $D sh -c "echo fork-kept > '$DIR/fk'; cat '$DIR/fk'; true")
	[ "$got" = fork-kept ] || fail "dir: sh writes then forks cat: cat read '$got'"
	# And through system(3) (posix_spawn inside glibc: no fork handler).
	got=$(run $D awk -v F="$DIR/sy" 'BEGIN { print "system-kept" > F; system("cat " F) }')
	[ "$got" = system-kept ] || fail "dir: awk writes then system(cat): cat read '$got'"
	for how in execl execlp execle; do
		got=$(run $D "$BUILD/tests/preload_calls" "$DIR" $how)
		[ "$got" = $how-kept ] || fail "dir: $how: cat read '$got'"
	done
	echo "== the dir backend: stdio"
	# preload_calls left stdio-keep written through a stream never closed.
	got=$(cat "$DIR/stdio-keep" 2>&1)
	[ "$got" = "never closed 7" ] ||
		fail "dir: stdio-keep on disk after exit: '$got'"
	# awk again: the cache now holds the file when awk appends to it, so an
	# append past the cache would leave the second getline loop stale.
	got=$(run $D "$AWK" -v F="$DIR/awk.out" "$awk_prog" "$TMP/lines" | tr '\n' ' ')
	[ "$got" = "2000 2001 " ] || fail "dir: awk read back '$got', want '2000 2001 '"
	{ cat "$TMP/lines"; echo appended; } | cmp - "$DIR/awk.out" ||
		fail "dir: awk.out on disk"
	# tee writes with fopen; sort reads with open and fdopen.
	run $D tee "$DIR/tee.out" <"$TMP/lines" >/dev/null &&
		cmp "$TMP/lines" "$DIR/tee.out" || fail "dir: tee into the directory"
	sort "$TMP/lines" >"$TMP/sorted.want"
	run $D sort "$DIR/tee.out" >"$TMP/sorted" &&
		cmp "$TMP/sorted.want" "$TMP/sorted" || fail "dir: sort of a file in the directory"
	# cp -p keeps mode and times (to the nanosecond) after cp exits.
	head -c 200000 /dev/urandom >"$TMP/psrc"
	chmod 0751 "$TMP/psrc"
	touch -m -d '2001-02-03 04:05:06.123456789' "$TMP/psrc"
	touch -a -d '2002-03-04 05:06:07.987654321' "$TMP/psrc"
	want=$(stat -c '%a %x %y %s' "$TMP/psrc")
	run $D cp -p "$TMP/psrc" "$DIR/p" || fail "dir: cp -p: exit status $?"
	got=$(stat -c '%a %x %y %s' "$DIR/p")
	[ "$got" = "$want" ] || fail "dir: cp -p kept '$got', want '$want'"
	cmp "$TMP/psrc" "$DIR/p" || fail "dir: cp -p: the bytes differ"
	# touch -d and chmod by a later process: on disk and in its own stat.
	run $D touch -d '@1000000000.25' "$DIR/p" || fail "dir: touch -d"
	got=$(stat -c '%X.%Y' "$DIR/p")
	[ "$got" = "1000000000.1000000000" ] || fail "dir: touch -d: times $got"
	run $D chmod 0604 "$DIR/p" || fail "dir: chmod"
	[ "$(stat -c %a "$DIR/p")" = 604 ] ||
		fail "dir: chmod: mode $(stat -c %a "$DIR/p") on disk"
	[ "$(run $D stat -c %a "$DIR/p")" = 604 ] ||
		fail "dir: chmod: mode $(run $D stat -c %a "$DIR/p") through the shim"
	case "$SANITIZE" in
	*thread*)
		# Not a skip of the feature: the plain and ASan builds run it.
		echo "not run under TSan: fio's fork mode forks its job after the" \
			"cache's flusher thread started, and TSan cannot follow fork()" \
			"in a multithreaded process (die_after_fork)"
		;;
	*)
		for engine in psync pvsync2 mmap; do
			run $D fio --name=v --directory="$DIR" --ioengine=$engine \
				--rw=randwrite --bs=4k --size=16m --verify=crc32c \
				--verify_state_save=0 >"$TMP/fio.out" 2>&1 ||
				fail "dir: fio $engine (fork mode)"
		done
		;;
	esac
else
	note_skip "cp/cat/dd round trips across processes, a second sqlite3" \
		"process and fio's fork mode need PCACHE_PRELOAD_BACKEND=dir," \
		"which failed here: $(head -n 3 "$TMP/dir.err")"
fi

if [ "$failures" -ne 0 ]; then
	echo "test_preload: $failures failure(s)" >&2
	exit 1
fi
if [ -n "$skipped" ]; then
	# As test_stress.sh does: a skipped part makes the test a skip.
	echo "SKIP: everything else passed; $skipped"
	exit 77
fi
echo "test_preload: pass"
exit 0
