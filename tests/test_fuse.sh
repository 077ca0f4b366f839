#!/bin/sh
# test_fuse.sh - real programs on a pcache-fuse mount (docs/fuse.md).
#
# Mounts a temporary backing directory, runs coreutils, python3 (mmap,
# O_DIRECT from an unaligned buffer), sqlite3 and fio on it, compares every
# file with cmp (through the mount, and in the backing directory after the
# daemon has gone), then checks the ways a mount ends: SIGTERM, and an
# unmount while a file is open (EBUSY, then a lazy unmount).
# Skips (77) only if /dev/fuse or fusermount3 is missing.  Every command
# runs under timeout; the trap always unmounts.
set -u
BUILD=${BUILD:-build}
FUSE=$BUILD/pcache-fuse
T=30			# seconds for any one command

[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
command -v fusermount3 >/dev/null 2>&1 || { echo "SKIP: no fusermount3"; exit 77; }
[ -x "$FUSE" ] || { echo "FAIL: $FUSE not built"; exit 1; }

tmp=$(mktemp -d /tmp/pcache-fuse.XXXXXX)
B=$tmp/backing M=$tmp/mnt
mkdir -p "$B" "$M"
pid=""
cleanup() {
	for p in $(jobs -p); do kill "$p" 2>/dev/null; done
	mountpoint -q "$M" && { fusermount3 -u "$M" 2>/dev/null || fusermount3 -u -z "$M"; }
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fails=0
ok()   { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() {	# check DESCRIPTION COMMAND...: run under timeout
	d=$1; shift
	if timeout $T "$@"; then ok "$d"; else fail "$d (exit $?)"; fi
}

mount_fs() {	# mount_fs [options]: start the daemon, wait for the mount
	"$FUSE" "$B" "$M" -f "$@" >>"$tmp/daemon.log" 2>&1 &
	pid=$!
	i=0
	while ! mountpoint -q "$M"; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
			echo "FAIL: the mount did not appear"; cat "$tmp/daemon.log"; exit 1
		fi
		sleep 0.1
	done
}

wait_daemon() {	# wait_daemon ["STATUS..."]: the daemon must exit with one of them (0) within $T seconds
	i=0
	while kill -0 $pid 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt $((T * 10)) ] && { fail "daemon still running"; return; }
		sleep 0.1
	done
	wait $pid; rc=$?
	pid=""
	case " ${1:-0} " in
	*" $rc "*) ok "daemon exited $rc" ;;
	*) fail "daemon exit status $rc (want ${1:-0})" ;;
	esac
}

umount_fs() {
	timeout $T fusermount3 -u "$M" || fail "fusermount3 -u"
	wait_daemon
}

dd if=/dev/urandom of="$tmp/rand" bs=64k count=80 status=none	# 5 MiB
dd if=/dev/urandom of="$tmp/small" bs=1 count=12345 status=none

# --- 1. coreutils, namespace ----------------------------------------------
mount_fs -o mem_limit=32M,block_size=1024,strategy=optimistic
check "cp in"            cp "$tmp/rand" "$M/rand"
check "cmp through mount" cmp "$tmp/rand" "$M/rand"
check "cat round trip"   sh -c "cat '$tmp/small' > '$M/small' && cat '$M/small' | cmp - '$tmp/small'"
check "dd conv=notrunc"  dd if="$tmp/small" of="$M/rand" bs=1000 seek=7 conv=notrunc status=none
dd if="$tmp/small" of="$tmp/rand" bs=1000 seek=7 conv=notrunc status=none
check "cmp after dd"     cmp "$tmp/rand" "$M/rand"
check "overwrite (O_TRUNC)" sh -c "echo a-longer-line > '$M/ow' && echo b > '$M/ow' && [ \"\$(cat '$M/ow')\" = b ]"
check "append (O_APPEND)" sh -c "echo c >> '$M/ow' && [ \"\$(cat '$M/ow')\" = \"\$(printf 'b\\nc')\" ]"
check "mkdir"            mkdir -p "$M/d1/d2"
check "rename into dir"  mv "$M/small" "$M/d1/d2/small"
check "cmp after rename" cmp "$tmp/small" "$M/d1/d2/small"
[ -e "$M/small" ] && fail "old name still there" || ok "old name gone"
check "symlink"          ln -s d1/d2/small "$M/sl"
[ "$(readlink "$M/sl")" = d1/d2/small ] && ok "readlink" || fail "readlink"
check "cmp via symlink"  cmp "$tmp/small" "$M/sl"
check "chmod"            chmod 640 "$M/rand"
[ "$(stat -c %a "$M/rand")" = 640 ] && ok "mode 640" || fail "mode $(stat -c %a "$M/rand")"
check "truncate down"    truncate -s 1000 "$M/d1/d2/small"
[ "$(stat -c %s "$M/d1/d2/small")" = 1000 ] && ok "size 1000" || fail "size after truncate"
check "truncate up"      truncate -s 20000 "$M/d1/d2/small"
head -c 1000 "$tmp/small" > "$tmp/small.t"; truncate -s 20000 "$tmp/small.t"
check "cmp after truncates" cmp "$tmp/small.t" "$M/d1/d2/small"
check "hard link"        ln "$M/rand" "$M/rand.link"
check "cmp hard link"    cmp "$tmp/rand" "$M/rand.link"
# Two names, one cached file: a write through one is read through the
# other, even with the other's pages cached.
check "hard link: write one name, read the other" sh -c "
	printf AAAA > '$M/hl1' && ln '$M/hl1' '$M/hl2' && cat '$M/hl2' >/dev/null &&
	printf BB | dd of='$M/hl1' bs=1 seek=1 conv=notrunc status=none &&
	[ \"\$(cat '$M/hl2')\" = ABBA ] &&
	printf C | dd of='$M/hl2' bs=1 seek=4 conv=notrunc status=none &&
	[ \"\$(cat '$M/hl1')\" = ABBAC ] &&
	[ \"\$(stat -c '%h %s' '$M/hl1')\" = '2 5' ] && [ \"\$(stat -c %i '$M/hl1')\" = \"\$(stat -c %i '$M/hl2')\" ]"
check "fallocate -l"     fallocate -l 65536 "$M/falloc"
[ "$(stat -c %s "$M/falloc")" = 65536 ] && ok "fallocate size" || fail "fallocate size"
if timeout $T fallocate -p -o 0 -l 4096 "$M/falloc" 2>"$tmp/err"; then
	fail "punch hole accepted"
else
	ok "punch hole refused: $(cat "$tmp/err")"
fi
check "unlink"           rm "$M/rand.link" "$M/sl"
check "rmdir busy dir refused" sh -c "! rmdir '$M/d1/d2' 2>/dev/null"
check "mkdir + rmdir"    sh -c "mkdir '$M/e' && rmdir '$M/e'"
echo "statfs: $(stat -f -c 'bsize=%S blocks=%b' "$M")"
# A directory holding cached files renames, and the files keep their bytes
# under the new names (pcache_rename moves the cached names with it).
# touch -d on a cached file: stat shows it, and so does the backing file
# once written back (checked after the unmount below).
check "touch -d a cached file" touch -d @1000000000 "$M/d1/d2/small"
[ "$(stat -c %Y "$M/d1/d2/small")" = 1000000000 ] && ok "mtime shown" ||
	fail "mtime after touch: $(stat -c %Y "$M/d1/d2/small")"
check "rename of a directory with cached files" mv "$M/d1" "$M/d3"
check "cmp under the renamed dir" cmp "$tmp/small.t" "$M/d3/d2/small"
check "old name gone" sh -c "! test -e '$M/d1'"
check "rename it back" mv "$M/d3" "$M/d1"
check "rename of an empty dir" sh -c "mkdir '$M/e1' && mv '$M/e1' '$M/e2' && rmdir '$M/e2'"
# Unlinked while open: libfuse hides it as .fuse_hidden*; it must still
# read and write, and be gone from the backing directory after close.
cat > "$tmp/unlinked.sh" <<'SH'
exec 3<>"$1/gone"
echo abc >&3
rm "$1/gone" || exit 1
echo def >&3
[ "$(cat /proc/self/fd/3)" = "$(printf 'abc\ndef')" ]
SH
check "unlink while open: still reads and writes" sh "$tmp/unlinked.sh" "$M"
[ -z "$(ls -A "$B" | grep -e '^gone$' -e fuse_hidden)" ] && ok "no hidden file left" ||
	fail "left behind: $(ls -A "$B")"

# --- 2. mmap and O_DIRECT (python3) ----------------------------------------
cat > "$tmp/mm.py" <<'PY'
import mmap, os, sys
p = sys.argv[1]
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 3 * 4096)
m = mmap.mmap(fd, 3 * 4096)
m[100:105] = b"MMAP1"
assert os.pread(fd, 5, 100) == b"MMAP1", "read(2) sees a store through mmap"
os.pwrite(fd, b"WRITE", 4094)          # straddles a page boundary
assert m[4094:4099] == b"WRITE", "mmap sees write(2)"
m.flush(); m.close(); os.close(fd)
# O_DIRECT from a buffer 3 bytes into an allocation, at offset 777.
fd = os.open(p, os.O_RDWR | os.O_DIRECT)
buf = bytearray(os.urandom(8192 + 3))
src = memoryview(buf)[3:3 + 5000]
n = os.pwritev(fd, [src], 777)
assert n == 5000, "O_DIRECT write returned %d" % n
dst = bytearray(5000 + 5)
n = os.preadv(fd, [memoryview(dst)[5:]], 777)
assert n == 5000 and dst[5:] == src, "O_DIRECT read back"
os.close(fd)
fd = os.open(p, os.O_RDONLY)
m = mmap.mmap(fd, 3 * 4096, prot=mmap.PROT_READ)
assert m[777:5777] == src, "mmap sees the O_DIRECT write"
assert m[100:105] == b"MMAP1"
print("mmap and O_DIRECT: coherent")
# write(2) from a PROT_NONE buffer: EFAULT, as the kernel gives it.
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
bad = libc.mmap(None, 4096, 0, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)  # PROT_NONE
fd = os.open(p, os.O_WRONLY)
r = libc.pwrite(fd, ctypes.c_void_p(bad), ctypes.c_size_t(4096), ctypes.c_long(0))
e = ctypes.get_errno()
assert r == -1 and e == errno.EFAULT, "PROT_NONE write: %d %s" % (r, os.strerror(e))
print("write from PROT_NONE: %s" % os.strerror(e))
os.close(fd)
PY
if command -v python3 >/dev/null 2>&1; then
	check "python3 mmap/O_DIRECT" python3 "$tmp/mm.py" "$M/mm"
	cp "$M/mm" "$tmp/mm.expect"
else
	echo "(no python3: mmap/O_DIRECT not run)"
fi

# --- 3. sqlite3 -------------------------------------------------------------
if command -v sqlite3 >/dev/null 2>&1; then
	out=$(timeout $T sqlite3 "$M/db.sqlite" \
		"create table t(a integer, b text);
		 insert into t values (1, 'one'), (2, 'two');
		 insert into t select a + 2, b || '+' from t;
		 select count(*), sum(a), group_concat(b) from t;" 2>&1)
	echo "sqlite3 printed: $out"
	[ "$out" = "4|10|one,two,one+,two+" ] && ok "sqlite3" || fail "sqlite3"
	out=$(timeout $T sqlite3 "$M/db.sqlite" "pragma integrity_check;" 2>&1)
	[ "$out" = ok ] && ok "sqlite3 integrity_check" || fail "integrity_check: $out"
else
	echo "(no sqlite3: not run)"
fi

# --- 4. fio with verify -----------------------------------------------------
if command -v fio >/dev/null 2>&1; then
	for e in psync pvsync2 mmap; do
		out=$(cd "$tmp" && timeout 120 fio --name=v-$e --filename="$M/fio-$e" \
			--ioengine=$e --rw=randwrite --bs=4k --size=16m \
			--verify=crc32c --do_verify=1 --verify_fatal=1 \
			--verify_state_save=0 2>&1)
		rc=$?
		echo "$out" | grep -E 'err=|WRITE:|READ:|verify' | sed "s/^/  fio $e: /"
		[ $rc -eq 0 ] && echo "$out" | grep -q 'err= 0' && ok "fio $e verify=crc32c" ||
			fail "fio $e (exit $rc)"
	done
	# Four threads' jobs at once on the multi-threaded loop.
	out=$(cd "$tmp" && timeout 120 fio --name=mt --directory="$M" --numjobs=4 \
		--thread --ioengine=psync --rw=randwrite --bs=4k --size=8m \
		--verify=crc32c --verify_fatal=1 --verify_state_save=0 \
		--group_reporting 2>&1)
	rc=$?
	echo "$out" | grep -E 'err=|WRITE:|READ:' | sed "s/^/  fio 4 jobs: /"
	[ $rc -eq 0 ] && ok "fio 4 jobs verify=crc32c" || fail "fio 4 jobs (exit $rc)"
else
	echo "(no fio: not run)"
fi

cp "$M/db.sqlite" "$tmp/db.expect" 2>/dev/null
umount_fs
check "backing rand"      cmp "$tmp/rand" "$B/rand"
check "backing truncated" cmp "$tmp/small.t" "$B/d1/d2/small"
check "backing hard links" sh -c "[ \"\$(cat '$B/hl1')\" = ABBAC ] && [ \"\$(cat '$B/hl2')\" = ABBAC ]"
[ "$(stat -c %Y "$B/d1/d2/small")" = 1000000000 ] && ok "backing mtime from touch -d" ||
	fail "backing mtime $(stat -c %Y "$B/d1/d2/small")"
[ -f "$tmp/mm.expect" ] && check "backing mm" cmp "$tmp/mm.expect" "$B/mm"
[ -f "$tmp/db.expect" ] && check "backing db" cmp "$tmp/db.expect" "$B/db.sqlite"
[ "$(stat -c %a "$B/rand")" = 640 ] && ok "backing mode" || fail "backing mode"

# --- 5. SIGTERM: unmount, write everything back -----------------------------
mount_fs -o mem_limit=64M
dd if=/dev/urandom of="$tmp/term" bs=1M count=8 status=none
check "write before SIGTERM" cp "$tmp/term" "$M/term"
kill -TERM $pid
wait_daemon 8		# libfuse's fuse_main: "ended by a signal"
mountpoint -q "$M" && fail "still mounted after SIGTERM" || ok "unmounted by SIGTERM"
check "backing after SIGTERM" cmp "$tmp/term" "$B/term"

# --- 6. unmount with a file open --------------------------------------------
mount_fs
mkfifo "$tmp/go"
# Holds the file open, writes more once told to through the fifo.
timeout $T sh -c "exec 3>'$M/open'; echo first >&3; read x < '$tmp/go'; echo second >&3" &
holder=$!
sleep 0.5
if timeout $T fusermount3 -u "$M" 2>"$tmp/err"; then
	fail "unmount with an open file succeeded"
else
	echo "fusermount3 -u printed: $(cat "$tmp/err")"
	grep -q 'busy' "$tmp/err" && ok "unmount busy: a clear error" || fail "unclear error"
fi
check "lazy unmount"      fusermount3 -u -z "$M"
mountpoint -q "$M" && fail "still mounted" || ok "detached"
echo go > "$tmp/go"
wait $holder && ok "open file still writable after lazy unmount" || fail "holder"
# After a lazy unmount libfuse may see the connection end before the
# kernel's DESTROY (ECONNABORTED, then fuse_main's 8): the data must be in
# the backing file either way, which the next check proves.
wait_daemon "0 8"
printf 'first\nsecond\n' > "$tmp/open.expect"
check "backing after lazy unmount" cmp "$tmp/open.expect" "$B/open"

echo "--- daemon log ---"; cat "$tmp/daemon.log"
[ $fails -eq 0 ] && { echo "test_fuse: all passed"; exit 0; }
echo "test_fuse: $fails failed"; exit 1
