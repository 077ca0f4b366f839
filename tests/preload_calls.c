/*
 * preload_calls.c - the shim's calls and bad input, from a plain-libc
 * program (no pcache header).
 *
 *	preload_calls DIR
 *
 * Run under libpcache-preload.so with PCACHE_PRELOAD_DIR=DIR.  Checks, in
 * one process (the memory backend keeps files only in the process):
 *  - a file under DIR is served by the cache: with the memory backend,
 *    nothing exists on disk under DIR after it is written;
 *  - numbers never collide: a real open made while pcache files are open
 *    gets a number of its own, and closing it leaves them working;
 *  - read/write/pread/pwrite/readv/writev/lseek/ftruncate/fstat/stat/
 *    fsync/fdatasync/unlink, dup/dup2/dup3/F_DUPFD sharing the position,
 *    F_GETFL/F_SETFL/F_GETFD/F_SETFD, O_PATH, rename (inside; EXDEV out);
 *  - mmap keeps working after close, and munmap releases it;
 *  - bad input: a PROT_NONE source (EFAULT, nothing written), a PROT_NONE
 *    destination (EFAULT), closing twice (EBADF), made-up and closed
 *    numbers (EBADF), a bad path pointer (EFAULT);
 *  - fork: the child gets EIO on an inherited descriptor and can still
 *    close it and open files of its own;
 *  - mode, owner, times: fchmod, chmod, fchmodat, fchown, chown, fchownat
 *    (other owners only as root), futimens, futimes, utimensat (UTIME_NOW,
 *    UTIME_OMIT, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH), utimes, lutimes,
 *    utime, futimesat: fstat and stat show the change at once, also after a
 *    path call on a file open and written in this process; with the dir
 *    backend so does the backing file (a raw fstatat, past the shim), and
 *    fsync keeps the set times.  Bad input: a bogus or O_PATH descriptor
 *    (EBADF), bad times, timeval and path pointers (EFAULT), a bad tv_nsec
 *    (EINVAL), a missing file (ENOENT).  "attr-keep" is left written, with
 *    mode 0640 and mtime 1234567890.5 set by path and no fsync, for
 *    test_preload.sh to check on disk after exit (dir backend).
 *  - link, linkat: the two names are one file in this process's cache (a
 *    write through one is read through the other, one st_ino, st_nlink 2),
 *    unlinking the first keeps the second; EEXIST, ENOENT, EXDEV to a path
 *    outside the directory.  "link-keep" is left written through its
 *    second name "link-keep2" with no fsync, for test_preload.sh to find
 *    under both names on disk after exit (dir backend).
 *  - stdio (fopen, fopen64, freopen, fdopen): a stream and a descriptor on
 *    one file agree both ways; fileno() is the shim's descriptor (fstat,
 *    fsync, F_GETFL, F_GETFD with 'e'); "w" truncates, "a" starts at the
 *    end and appends after fseek, "a+" reads anywhere and writes at the
 *    end; fwrite/fread of more than a buffer, fseek/ftell, getline;
 *    freopen to another file, to the same one (NULL) in other modes, out
 *    of the directory and back, keeping the number; fdopen of a shim
 *    descriptor (no dup: fclose closes it; EINVAL against its access mode;
 *    "a" sets O_APPEND).  Bad input: ENOENT, EEXIST ('x'), EINVAL (bad
 *    and ",ccs=" modes, a NULL mode), EFAULT (a bad path).  Outside the
 *    directory libc's own stream writes the disk.  "stdio-keep" is left
 *    written through a stream never closed, for test_preload.sh to find
 *    on disk after exit (dir backend).
 * Exit 0 pass, 1 fail.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "harness.h"

/*
 * ASan's and TSan's fopen interceptors read the path and the mode before
 * the shim sees them, and crash on a bad one: those two cases are left out.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_FOPEN "the sanitizer's fopen reads its arguments first"
#endif

#define PG 4096

static char dir[1024];

static const char *path(const char *name)
{
	static char buf[4][2048];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

#define CHECK_ERR(call, err) do {					\
	errno = 0;							\
	long r_ = (long)(call);						\
	CHECK(r_ == -1 && errno == (err), "%s: got %ld errno %d (%s), want " \
	      "-1 errno %d (%s)", #call, r_, errno, strerror(errno), err, \
	      strerror(err));						\
} while (0)

/* The memory backend writes nothing under DIR. */
static int memory_backend(void)
{
	const char *b = getenv("PCACHE_PRELOAD_BACKEND");

	return !b || !*b || !strcmp(b, "memory");
}

static int entries_on_disk(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_io(void)
{
	char buf[3 * PG], back[3 * PG];
	struct iovec iov[2];
	struct stat st;
	int fd, fd2, fd3, realfd;

	pattern_fill(buf, sizeof(buf), 1, 0);
	fd = open(path("io"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK_EQ(write(fd, buf, PG), PG);
	iov[0] = (struct iovec){ buf + PG, 100 };
	iov[1] = (struct iovec){ buf + PG + 100, PG - 100 };
	CHECK_EQ(writev(fd, iov, 2), PG);
	CHECK_EQ(pwrite(fd, buf + 2 * PG, PG, 2 * PG), PG);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 2 * PG);
	CHECK_EQ(lseek(fd, 0, SEEK_END), 3 * PG);
	CHECK(fstat(fd, &st) == 0 && st.st_size == 3 * PG && S_ISREG(st.st_mode),
	      "fstat");
	CHECK(stat(path("io"), &st) == 0 && st.st_size == 3 * PG, "stat");
	CHECK(stat(path("./sub/../io"), &st) == 0 && st.st_size == 3 * PG,
	      "stat of a non-normal spelling");
	CHECK_EQ(access(path("io"), R_OK | W_OK), 0);
	if (memory_backend())
		CHECK_EQ(entries_on_disk(), 0);

	/* A real descriptor opened now gets a number of its own. */
	realfd = open("/dev/zero", O_RDONLY);
	CHECK(realfd >= 0 && realfd != fd, "real open gave %d (pcache %d)",
	      realfd, fd);
	CHECK_EQ(read(realfd, back, 10), 10);
	CHECK_EQ(close(realfd), 0);

	memset(back, 0, sizeof(back));
	CHECK_EQ(pread(fd, back, sizeof(back), 0), 3 * PG);
	CHECK(memcmp(back, buf, sizeof(buf)) == 0, "pread bytes");

	/* dup, dup2, dup3, F_DUPFD share the position and the flags. */
	fd2 = dup(fd);
	CHECK(fd2 >= 0 && fd2 != fd, "dup");
	CHECK_EQ(lseek(fd, PG, SEEK_SET), PG);
	CHECK_EQ(lseek(fd2, 0, SEEK_CUR), PG);
	fd3 = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	CHECK(fd3 >= 100, "F_DUPFD_CLOEXEC gave %d", fd3);
	CHECK_EQ(fcntl(fd3, F_GETFD), FD_CLOEXEC);
	CHECK_EQ(fcntl(fd2, F_GETFD), 0);
	CHECK_EQ(fcntl(fd2, F_SETFD, FD_CLOEXEC), 0);
	CHECK_EQ(fcntl(fd2, F_GETFD), FD_CLOEXEC);
	CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	CHECK_EQ(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	CHECK(fcntl(fd3, F_GETFL) & O_NONBLOCK, "F_SETFL is shared");
	/* O_APPEND on: a pwrite goes to the end (as Linux); off again. */
	{
		struct stat ast;
		off_t size;

		CHECK(fstat(fd, &ast) == 0, "fstat");
		size = ast.st_size;
		CHECK_EQ(fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK), 0);
		CHECK(fcntl(fd, F_GETFL) & O_APPEND, "F_GETFL shows O_APPEND");
		CHECK_EQ(pwrite(fd, "Z", 1, 0), 1);
		CHECK(fstat(fd, &ast) == 0 && ast.st_size == size + 1,
		      "append-mode pwrite went to the end");
		CHECK_EQ(ftruncate(fd, size), 0);
		CHECK_EQ(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
		CHECK_EQ(pwrite(fd, buf, 1, 0), 1);
		CHECK(fstat(fd, &ast) == 0 && ast.st_size == size,
		      "pwrite at 0 after O_APPEND went off");
	}
	CHECK_EQ(dup2(fd, 200), 200);
	CHECK_EQ(read(200, back, PG), PG);
	CHECK(memcmp(back, buf + PG, PG) == 0, "read through dup2");
	CHECK_EQ(lseek(fd3, 0, SEEK_CUR), 2 * PG);
	/* dup2 of a real descriptor onto one of ours releases ours. */
	realfd = open("/dev/zero", O_RDONLY);
	CHECK_EQ(dup2(realfd, 200), 200);
	CHECK_EQ(read(200, back, 4), 4);
	CHECK(back[0] == 0, "200 is /dev/zero now");
	CHECK_EQ(close(200), 0);
	CHECK_EQ(close(realfd), 0);
	CHECK_EQ(dup3(fd, 201, O_CLOEXEC), 201);
	CHECK_EQ(fcntl(201, F_GETFD), FD_CLOEXEC);
	CHECK_ERR(dup3(fd, fd, 0), EINVAL);
	CHECK_EQ(close(201), 0);
	CHECK_EQ(close(fd3), 0);
	CHECK_EQ(close(fd), 0);
	CHECK_EQ(pread(fd2, back, PG, 0), PG);	/* the dup still works */
	CHECK_EQ(ftruncate(fd2, 100), 0);
	CHECK(fstat(fd2, &st) == 0 && st.st_size == 100, "ftruncate");
	CHECK_EQ(fsync(fd2), 0);
	CHECK_EQ(fdatasync(fd2), 0);
	CHECK_EQ(close(fd2), 0);

	/* O_PATH: fstat yes, read no. */
	fd = open(path("io"), O_PATH);
	CHECK(fd >= 0, "O_PATH open: %s", strerror(errno));
	CHECK(fstat(fd, &st) == 0 && st.st_size == 100, "O_PATH fstat");
	CHECK_ERR(read(fd, back, 1), EBADF);
	CHECK_EQ(close(fd), 0);

	/* rename inside the directory: the file moves, bytes and all. */
	CHECK_EQ(rename(path("io"), path("io2")), 0);
	CHECK_ERR(stat(path("io"), &st), ENOENT);
	CHECK(stat(path("io2"), &st) == 0 && st.st_size == 100, "stat io2");
	CHECK_EQ(rename(path("io2"), path("io")), 0);
	CHECK_ERR(rename(path("nonesuch"), path("io3")), ENOENT);
	CHECK_ERR(renameat2(AT_FDCWD, path("io"), AT_FDCWD, path("io3"),
			    RENAME_NOREPLACE), EINVAL);
	CHECK_ERR(rename(path("io"), "/tmp/preload-calls-io"), EXDEV);
	CHECK_EQ(unlink(path("io")), 0);
	CHECK_ERR(open(path("io"), O_RDONLY), ENOENT);
	CHECK_ERR(stat(path("io"), &st), ENOENT);
	CHECK_ERR(unlink(path("io")), ENOENT);
}

static void test_mmap(void)
{
	char buf[2 * PG];
	char *map;
	int fd;

	pattern_fill(buf, sizeof(buf), 2, 0);
	fd = open(path("map"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK_EQ(write(fd, buf, sizeof(buf)), sizeof(buf));
	map = mmap(NULL, sizeof(buf), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED, "mmap: %s", strerror(errno));
	CHECK_EQ(close(fd), 0);		/* the map outlives the descriptor */
	if (map == MAP_FAILED)
		return;
	CHECK(memcmp(map, buf, sizeof(buf)) == 0, "map shows the file");
	map[10] = 'X';
	CHECK_EQ(msync(map, PG, MS_SYNC), 0);
	CHECK_ERR(munmap(map + PG, PG), EINVAL);	/* part of a view */
	CHECK_EQ(munmap(map, sizeof(buf)), 0);
	fd = open(path("map"), O_RDONLY);
	CHECK_EQ(pread(fd, buf, 20, 0), 20);
	CHECK(buf[10] == 'X', "a store through the map reached the file");
	CHECK_ERR(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
		  EACCES);
	CHECK_EQ(close(fd), 0);
	CHECK_EQ(unlink(path("map")), 0);
}

static void test_badinput(void)
{
	char *none = mmap(NULL, 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	char buf[PG];
	struct stat st;
	int fd;

	CHECK(none != MAP_FAILED, "mmap PROT_NONE");
	fd = open(path("bad"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK_EQ(write(fd, "0123456789", 10), 10);
	CHECK_ERR(write(fd, none, PG), EFAULT);
	CHECK_ERR(pwrite(fd, none, PG, 0), EFAULT);
	CHECK(fstat(fd, &st) == 0 && st.st_size == 10,
	      "a faulting write changed the size to %lld",
	      (long long)st.st_size);
	CHECK_EQ(pread(fd, buf, 10, 0), 10);
	CHECK(memcmp(buf, "0123456789", 10) == 0, "a faulting write changed bytes");
	CHECK_ERR(pread(fd, none, 10, 0), EFAULT);
	CHECK_ERR(open((const char *)none, O_RDONLY), EFAULT);
	CHECK_EQ(close(fd), 0);
	CHECK_ERR(close(fd), EBADF);		/* twice */
	CHECK_ERR(read(fd, buf, 1), EBADF);	/* closed */
	CHECK_ERR(write(fd, buf, 1), EBADF);
	CHECK_ERR(lseek(fd, 0, SEEK_SET), EBADF);
	CHECK_ERR(fstat(fd, &st), EBADF);
	CHECK_ERR(read(-1, buf, 1), EBADF);	/* made up */
	CHECK_ERR(write(987654, buf, 1), EBADF);
	CHECK_ERR(close(987654), EBADF);
	CHECK_ERR(dup(987654), EBADF);
	CHECK_ERR(fcntl(987654, F_GETFL), EBADF);
	CHECK_EQ(unlink(path("bad")), 0);
	munmap(none, 2 * PG);
}

/* The backing file, past the shim (a raw system call). */
static int raw_stat(const char *p, struct stat *st)
{
	return (int)syscall(SYS_newfstatat, AT_FDCWD, p, st, 0);
}

#define CHECK_TS(ts, sec, nsec)						\
	CHECK((ts).tv_sec == (sec) && (ts).tv_nsec == (nsec),		\
	      "%s: %lld.%09ld, want %lld.%09ld", #ts, (long long)(ts).tv_sec, \
	      (long)(ts).tv_nsec, (long long)(sec), (long)(nsec))

/* fstat of @fd, stat of @p and (dir) the backing file show mode @mode. */
static void check_mode(int fd, const char *p, mode_t mode)
{
	struct stat st;

	CHECK(fstat(fd, &st) == 0 && st.st_mode == (S_IFREG | mode),
	      "fstat mode %o, want %o", (unsigned)st.st_mode, (unsigned)mode);
	CHECK(stat(p, &st) == 0 && st.st_mode == (S_IFREG | mode),
	      "stat mode %o, want %o", (unsigned)st.st_mode, (unsigned)mode);
	if (!memory_backend())
		CHECK(raw_stat(p, &st) == 0 && st.st_mode == (S_IFREG | mode),
		      "backing mode %o, want %o", (unsigned)st.st_mode,
		      (unsigned)mode);
}

static void check_owner(int fd, const char *p, uid_t uid, gid_t gid)
{
	struct stat st;

	CHECK(fstat(fd, &st) == 0 && st.st_uid == uid && st.st_gid == gid,
	      "fstat ids %u:%u, want %u:%u", (unsigned)st.st_uid,
	      (unsigned)st.st_gid, (unsigned)uid, (unsigned)gid);
	CHECK(stat(p, &st) == 0 && st.st_uid == uid && st.st_gid == gid,
	      "stat ids %u:%u", (unsigned)st.st_uid, (unsigned)st.st_gid);
	if (!memory_backend())
		CHECK(raw_stat(p, &st) == 0 && st.st_uid == uid &&
		      st.st_gid == gid, "backing ids %u:%u",
		      (unsigned)st.st_uid, (unsigned)st.st_gid);
}

static void test_attr(void)
{
	char *none = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	char p[2048], buf[5000];
	struct timespec ts[2], before;
	struct timeval tv[2];
	struct utimbuf ub;
	struct stat st;
	int fd, pfd, dfd;

	snprintf(p, sizeof(p), "%s", path("attr"));	/* path() rotates */
	memset(buf, 'a', sizeof(buf));
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK_EQ(write(fd, buf, sizeof(buf)), sizeof(buf));

	/* Mode: by descriptor and by path, the open file sees both. */
	CHECK_EQ(fchmod(fd, 0600), 0);
	check_mode(fd, p, 0600);
	CHECK_EQ(chmod(p, 0640), 0);
	check_mode(fd, p, 0640);
	CHECK_EQ(fchmodat(AT_FDCWD, p, 0604, 0), 0);
	check_mode(fd, p, 0604);
	CHECK_EQ(chmod(path("./sub/../attr"), 0660), 0);
	check_mode(fd, p, 0660);

	/* Owner: -1 leaves it; other owners as root only. */
	CHECK_EQ(fchown(fd, (uid_t)-1, (gid_t)-1), 0);
	check_owner(fd, p, getuid(), getgid());
	if (geteuid() == 0) {
		CHECK_EQ(fchown(fd, 4321, 8765), 0);
		check_owner(fd, p, 4321, 8765);
		CHECK_EQ(chown(p, 1111, (gid_t)-1), 0);
		check_owner(fd, p, 1111, 8765);
		CHECK_EQ(lchown(p, (uid_t)-1, 2222), 0);
		check_owner(fd, p, 1111, 2222);
		CHECK_EQ(fchownat(fd, "", 3333, 3333, AT_EMPTY_PATH), 0);
		check_owner(fd, p, 3333, 3333);
		CHECK_EQ(fchownat(AT_FDCWD, p, getuid(), getgid(), 0), 0);
		check_owner(fd, p, getuid(), getgid());
	}
	check_mode(fd, p, 0660);

	/* Times by descriptor. */
	ts[0] = (struct timespec){ 1000000001, 100 };
	ts[1] = (struct timespec){ 1000000002, 200 };
	CHECK_EQ(futimens(fd, ts), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_TS(st.st_atim, 1000000001, 100);
	CHECK_TS(st.st_mtim, 1000000002, 200);
	tv[0] = (struct timeval){ 1000000003, 3 };
	tv[1] = (struct timeval){ 1000000004, 4 };
	CHECK_EQ(futimes(fd, tv), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_TS(st.st_atim, 1000000003, 3000);
	CHECK_TS(st.st_mtim, 1000000004, 4000);

	/*
	 * By path, on a file this process has written (the write moves mtime
	 * to now first): the cache takes the times, UTIME_OMIT keeps one.
	 */
	CHECK_EQ(pwrite(fd, "b", 1, 10), 1);
	ts[0] = (struct timespec){ 0, UTIME_OMIT };
	ts[1] = (struct timespec){ 1234567890, 500000000 };
	CHECK_EQ(utimensat(AT_FDCWD, p, ts, 0), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_TS(st.st_atim, 1000000003, 3000);
	CHECK_TS(st.st_mtim, 1234567890, 500000000);
	ts[0] = (struct timespec){ 1111111111, 1 };
	ts[1] = (struct timespec){ 0, UTIME_OMIT };
	CHECK_EQ(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
	CHECK(stat(p, &st) == 0, "stat");
	CHECK_TS(st.st_atim, 1111111111, 1);
	CHECK_TS(st.st_mtim, 1234567890, 500000000);
	/* The write is not written back yet; fsync gives the file the times. */
	CHECK_EQ(fsync(fd), 0);
	if (!memory_backend()) {
		CHECK(raw_stat(p, &st) == 0 && st.st_size == sizeof(buf),
		      "backing size %lld", (long long)st.st_size);
		CHECK_TS(st.st_atim, 1111111111, 1);
		CHECK_TS(st.st_mtim, 1234567890, 500000000);
	}
	/* UTIME_NOW: now, the other left alone. */
	clock_gettime(CLOCK_REALTIME, &before);
	ts[0] = (struct timespec){ 0, UTIME_NOW };
	ts[1] = (struct timespec){ 0, UTIME_OMIT };
	CHECK_EQ(utimensat(AT_FDCWD, p, ts, 0), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK(st.st_atim.tv_sec >= before.tv_sec - 1 &&
	      st.st_atim.tv_sec <= before.tv_sec + 5, "UTIME_NOW atime %lld",
	      (long long)st.st_atim.tv_sec);
	CHECK_TS(st.st_mtim, 1234567890, 500000000);
	/* NULL: both now. */
	CHECK_EQ(utimensat(AT_FDCWD, p, NULL, 0), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK(st.st_mtim.tv_sec >= before.tv_sec - 1, "NULL times: mtime %lld",
	      (long long)st.st_mtim.tv_sec);
	/* The other path calls. */
	tv[0] = (struct timeval){ 1200000000, 0 };
	tv[1] = (struct timeval){ 1200000001, 250000 };
	CHECK_EQ(utimes(p, tv), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_TS(st.st_mtim, 1200000001, 250000000);
	tv[1].tv_sec = 1200000002;
	CHECK_EQ(lutimes(p, tv), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_TS(st.st_mtim, 1200000002, 250000000);
	tv[1].tv_sec = 1200000003;
	CHECK_EQ(futimesat(AT_FDCWD, p, tv), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_TS(st.st_mtim, 1200000003, 250000000);
	tv[1].tv_sec = 1200000004;
	CHECK_EQ(futimesat(fd, NULL, tv), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_TS(st.st_mtim, 1200000004, 250000000);
	ub = (struct utimbuf){ .actime = 1300000000, .modtime = 1300000001 };
	CHECK_EQ(utime(p, &ub), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_TS(st.st_atim, 1300000000, 0);
	CHECK_TS(st.st_mtim, 1300000001, 0);
	ts[0] = (struct timespec){ 1300000002, 0 };
	ts[1] = (struct timespec){ 1300000003, 0 };
	CHECK_EQ(utimensat(fd, "", ts, AT_EMPTY_PATH), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_TS(st.st_mtim, 1300000003, 0);
	CHECK_EQ(fsync(fd), 0);
	if (!memory_backend()) {
		CHECK(raw_stat(p, &st) == 0, "raw stat");
		CHECK_TS(st.st_atim, 1300000002, 0);
		CHECK_TS(st.st_mtim, 1300000003, 0);
	}

	/* Bad input: the kernel's errors, nothing changed, no crash. */
	CHECK_ERR(fchmod(987654, 0644), EBADF);
	CHECK_ERR(fchown(987654, 0, 0), EBADF);
	CHECK_ERR(futimens(987654, NULL), EBADF);
	CHECK_ERR(utimensat(AT_FDCWD, p, (const struct timespec *)none, 0),
		  EFAULT);
	CHECK_ERR(futimens(fd, (const struct timespec *)none), EFAULT);
	CHECK_ERR(utimes(p, (const struct timeval *)none), EFAULT);
	CHECK_ERR(futimes(fd, (const struct timeval *)none), EFAULT);
	CHECK_ERR(utime(p, (const struct utimbuf *)none), EFAULT);
	CHECK_ERR(chmod((const char *)none, 0644), EFAULT);
	CHECK_ERR(utimensat(AT_FDCWD, (const char *)none, NULL, 0), EFAULT);
	ts[0] = (struct timespec){ 0, 1000000000 };
	ts[1] = (struct timespec){ 0, 0 };
	CHECK_ERR(utimensat(AT_FDCWD, p, ts, 0), EINVAL);
	CHECK_ERR(futimens(fd, ts), EINVAL);
	tv[0].tv_usec = 1000000;
	CHECK_ERR(utimes(p, tv), EINVAL);
	CHECK_ERR(chmod(path("nonesuch"), 0644), ENOENT);
	CHECK_ERR(utimensat(AT_FDCWD, path("nonesuch"), NULL, 0), ENOENT);
	CHECK_ERR(chown(path("nonesuch"), (uid_t)-1, (gid_t)-1), ENOENT);
	/* "" at a real directory under DIR names nothing (not "d"). */
	CHECK_EQ(mkdir(path("d"), 0755), 0);
	dfd = (int)syscall(SYS_openat, AT_FDCWD, path("d"), O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0, "open d past the shim: %s", strerror(errno));
	CHECK_ERR(fchmodat(dfd, "", 0700, 0), ENOENT);
	CHECK_ERR(utimensat(dfd, "", NULL, 0), ENOENT);
	CHECK_ERR(fchownat(dfd, "", (uid_t)-1, (gid_t)-1, 0), ENOENT);
	CHECK(raw_stat(path("d"), &st) == 0 && (st.st_mode & 07777) == 0755,
	      "d's mode %o", (unsigned)st.st_mode);
	close(dfd);
	CHECK_EQ(rmdir(path("d")), 0);
	pfd = open(p, O_PATH);
	CHECK(pfd >= 0, "O_PATH open: %s", strerror(errno));
	CHECK_ERR(fchmod(pfd, 0644), EBADF);
	CHECK_ERR(futimens(pfd, NULL), EBADF);
	CHECK_EQ(close(pfd), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_TS(st.st_mtim, 1300000003, 0);
	check_mode(fd, p, 0660);
	CHECK_EQ(close(fd), 0);
	CHECK_ERR(fchmod(fd, 0644), EBADF);	/* closed */
	CHECK_EQ(unlink(p), 0);

	/*
	 * For test_preload.sh: written, then mode and times set by path, no
	 * fsync; the backing file must have them after exit (dir).
	 */
	fd = open(path("attr-keep"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open attr-keep: %s", strerror(errno));
	CHECK_EQ(write(fd, buf, sizeof(buf)), sizeof(buf));
	ts[0] = (struct timespec){ 1234567000, 0 };
	ts[1] = (struct timespec){ 1234567890, 500000000 };
	CHECK_EQ(utimensat(AT_FDCWD, path("attr-keep"), ts, 0), 0);
	CHECK_EQ(chmod(path("attr-keep"), 0640), 0);
	CHECK_EQ(close(fd), 0);
	munmap(none, PG);
}

static void test_fork(void)
{
	int fd = open(path("forked"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	int status;
	pid_t pid;

	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK_EQ(write(fd, "parent", 6), 6);
	pid = fork();
	if (pid == 0) {
		char buf[8];
		int bad = 0, fd2;

		errno = 0;
		if (pread(fd, buf, 6, 0) != -1 || errno != EIO)
			bad |= 1;
		if (close(fd) != 0)
			bad |= 2;
		fd2 = open(path("child"), O_RDWR | O_CREAT, 0644);
		if (fd2 < 0 || write(fd2, "child", 5) != 5 ||
		    pread(fd2, buf, 5, 0) != 5 || memcmp(buf, "child", 5))
			bad |= 4;
		_exit(bad);
	}
	CHECK(pid > 0, "fork");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status),
	      "child died");
	CHECK_EQ(WEXITSTATUS(status), 0);
	CHECK_EQ(pwrite(fd, "PARENT", 6, 0), 6);	/* the parent is unharmed */
	CHECK_EQ(close(fd), 0);
}

static void test_link(void)
{
	struct stat st1, st2;
	char buf[16] = { 0 };
	int a, b;

	a = open(path("link-a"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(a >= 0, "open link-a: %s", strerror(errno));
	CHECK_EQ(write(a, "first", 5), 5);
	unlink(path("link-b"));
	CHECK_EQ(link(path("link-a"), path("link-b")), 0);
	b = open(path("link-b"), O_RDWR);
	CHECK(b >= 0, "open link-b: %s", strerror(errno));
	CHECK_EQ(pread(b, buf, sizeof(buf) - 1, 0), 5);
	CHECK(!strcmp(buf, "first"), "link-b reads '%s'", buf);
	CHECK_EQ(pwrite(b, "+second", 7, 5), 7);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(pread(a, buf, sizeof(buf) - 1, 0), 12);
	CHECK(!strcmp(buf, "first+second"), "link-a reads '%s'", buf);
	CHECK(fstat(a, &st1) == 0 && fstat(b, &st2) == 0, "fstat");
	CHECK(st1.st_ino == st2.st_ino && st1.st_nlink == 2 && st2.st_size == 12,
	      "ino %lu/%lu nlink %lu size %lld", (unsigned long)st1.st_ino,
	      (unsigned long)st2.st_ino, (unsigned long)st1.st_nlink,
	      (long long)st2.st_size);
	CHECK(stat(path("link-b"), &st2) == 0 && st2.st_size == 12, "stat link-b");
	CHECK_ERR(link(path("link-a"), path("link-b")), EEXIST);
	CHECK_ERR(link(path("nonesuch"), path("link-c")), ENOENT);
	CHECK_ERR(link(path("link-a"), "/tmp/pcache-link-outside"), EXDEV);
	CHECK_ERR(linkat(AT_FDCWD, path("link-a"), AT_FDCWD, path("link-c"), 0x8000),
		  EINVAL);
	CHECK_EQ(unlink(path("link-a")), 0);
	CHECK(fstat(b, &st2) == 0 && st2.st_nlink == 1, "nlink after unlink");
	CHECK_EQ(close(a), 0);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(pread(b, buf, sizeof(buf) - 1, 0), 12);
	CHECK(!strcmp(buf, "first+second"), "link-b after unlink reads '%s'", buf);
	CHECK_EQ(close(b), 0);
	CHECK_EQ(unlink(path("link-b")), 0);

	/* Written through the second name only, left for test_preload.sh. */
	a = open(path("link-keep"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(a >= 0, "open link-keep: %s", strerror(errno));
	CHECK_EQ(write(a, "kept", 4), 4);
	unlink(path("link-keep2"));
	CHECK_EQ(linkat(AT_FDCWD, path("link-keep"), AT_FDCWD, path("link-keep2"), 0), 0);
	b = open(path("link-keep2"), O_WRONLY | O_APPEND);
	CHECK(b >= 0, "open link-keep2: %s", strerror(errno));
	CHECK_EQ(write(b, "+both", 5), 5);
	CHECK_EQ(close(b), 0);
	CHECK_EQ(close(a), 0);
}

/* The whole of file @p, through a descriptor (not stdio), into @buf. */
static ssize_t read_all(const char *p, char *buf, size_t size)
{
	int fd = open(p, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, buf, size, 0);
	close(fd);
	return n;
}

/* A stream call that must fail with @err. */
#define CHECK_STREAM_ERR(call, err) do {				\
	errno = 0;							\
	FILE *f_ = (call);						\
	CHECK(!f_ && errno == (err), "%s: got %p errno %d (%s), want NULL " \
	      "errno %d (%s)", #call, (void *)f_, errno, strerror(errno), \
	      err, strerror(err));					\
	if (f_)								\
		fclose(f_);						\
} while (0)

#define CHECK_FILE(p, want) do {					\
	char got_[256];							\
	ssize_t n_ = read_all((p), got_, sizeof(got_) - 1);		\
	got_[n_ > 0 ? n_ : 0] = '\0';					\
	CHECK(n_ == (ssize_t)strlen(want) && !strcmp(got_, (want)),	\
	      "%s holds '%s' (%zd bytes), want '%s'", (p), got_, n_, (want)); \
} while (0)

/* fopen "w", fprintf, fclose: a descriptor then sees it; "w" truncates. */
static void stdio_write_read(void)
{
	char line[64];
	struct stat st;
	FILE *fp;

	fp = fopen(path("st-w"), "w");
	CHECK(fp, "fopen w: %s", strerror(errno));
	if (!fp)
		return;
	CHECK_EQ(fprintf(fp, "hello %d\n", 42), 9);
	CHECK(fileno(fp) >= 0, "fileno of a stream of ours: %d (%s)",
	      fileno(fp), strerror(errno));
	CHECK_EQ(fflush(fp), 0);
	CHECK(fstat(fileno(fp), &st) == 0 && st.st_size == 9 &&
	      S_ISREG(st.st_mode), "fstat(fileno) after fflush: size %lld",
	      (long long)st.st_size);
	CHECK_EQ(fsync(fileno(fp)), 0);
	CHECK_EQ(fcntl(fileno(fp), F_GETFL) & O_ACCMODE, O_WRONLY);
	CHECK_EQ(fgetc(fp), EOF);		/* "w" cannot read */
	CHECK(ferror(fp), "a read from a \"w\" stream sets the error");
	clearerr(fp);
	CHECK_EQ(fclose(fp), 0);
	CHECK_FILE(path("st-w"), "hello 42\n");
	CHECK(stat(path("st-w"), &st) == 0 && st.st_size == 9, "stat size %lld",
	      (long long)st.st_size);

	fp = fopen(path("st-w"), "r");
	CHECK(fp, "fopen r: %s", strerror(errno));
	if (!fp)
		return;
	CHECK(fgets(line, sizeof(line), fp) && !strcmp(line, "hello 42\n"),
	      "fgets read '%s'", line);
	CHECK_EQ(fputc('x', fp), EOF);		/* "r" cannot write */
	CHECK_EQ(fclose(fp), 0);

	fp = fopen(path("st-w"), "wb");		/* truncates */
	CHECK(fp, "fopen wb: %s", strerror(errno));
	if (fp)
		CHECK_EQ(fclose(fp), 0);
	CHECK(stat(path("st-w"), &st) == 0 && st.st_size == 0,
	      "\"w\" did not truncate: size %lld", (long long)st.st_size);
	CHECK_EQ(unlink(path("st-w")), 0);
}

/* A descriptor and a stream on one file in one process agree. */
static void stdio_coherence(void)
{
	char line[64] = "";
	FILE *fp;
	int fd;

	fd = open(path("st-co"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK_EQ(write(fd, "by write\n", 9), 9);
	fp = fopen(path("st-co"), "r+");
	CHECK(fp, "fopen r+: %s", strerror(errno));
	if (!fp || fd < 0)
		goto out;
	CHECK(fgets(line, sizeof(line), fp) && !strcmp(line, "by write\n"),
	      "fgets after write() read '%s'", line);
	/* ... and the other way: the stream's bytes, the descriptor reads. */
	CHECK_EQ(fseek(fp, 0, SEEK_CUR), 0);	/* reading to writing */
	CHECK_EQ(fputs("by stdio\n", fp), 1);
	CHECK_EQ(fflush(fp), 0);
	memset(line, 0, sizeof(line));
	CHECK_EQ(pread(fd, line, sizeof(line) - 1, 0), 18);
	CHECK(!strcmp(line, "by write\nby stdio\n"), "pread read '%s'", line);
	/* A write() after the stream read: the stream sees it after a seek. */
	CHECK_EQ(pwrite(fd, "BY", 2, 9), 2);
	CHECK_EQ(fseek(fp, 9, SEEK_SET), 0);
	CHECK(fgets(line, sizeof(line), fp) && !strcmp(line, "BY stdio\n"),
	      "fgets after pwrite() read '%s'", line);
	/* read() on fileno() is the stream's own file. */
	CHECK_EQ(pread(fileno(fp), line, 2, 0), 2);
	CHECK(!memcmp(line, "by", 2), "pread(fileno) read '%.2s'", line);
out:
	if (fp)
		CHECK_EQ(fclose(fp), 0);
	if (fd >= 0)
		CHECK_EQ(close(fd), 0);
	unlink(path("st-co"));
}

/* "a" and "a+" write at the end whatever the position; "a+" reads. */
static void stdio_append(void)
{
	char buf[64] = "";
	FILE *fp;

	fp = fopen(path("st-a"), "w");
	CHECK(fp, "fopen w: %s", strerror(errno));
	if (!fp)
		return;
	fputs("0123456789", fp);
	CHECK_EQ(fclose(fp), 0);

	fp = fopen(path("st-a"), "a");
	CHECK(fp, "fopen a: %s", strerror(errno));
	if (!fp)
		return;
	CHECK_EQ(ftell(fp), 10);		/* "a" starts at the end */
	CHECK(fcntl(fileno(fp), F_GETFL) & O_APPEND, "\"a\" is O_APPEND");
	CHECK_EQ(fseek(fp, 2, SEEK_SET), 0);
	CHECK_EQ(fputs("AB", fp), 1);
	CHECK_EQ(fflush(fp), 0);
	CHECK_EQ(ftell(fp), 12);
	CHECK_EQ(fclose(fp), 0);
	CHECK_FILE(path("st-a"), "0123456789AB");

	fp = fopen(path("st-a"), "a+");
	CHECK(fp, "fopen a+: %s", strerror(errno));
	if (!fp)
		return;
	CHECK_EQ(ftell(fp), 0);			/* "a+" reads from the start */
	CHECK(fgets(buf, 5, fp) && !strcmp(buf, "0123"), "a+ read '%s'", buf);
	CHECK_EQ(fseek(fp, 1, SEEK_SET), 0);
	CHECK_EQ(fputs("cd", fp), 1);
	CHECK_EQ(fseek(fp, 10, SEEK_SET), 0);
	CHECK(fgets(buf, sizeof(buf), fp) && !strcmp(buf, "ABcd"),
	      "a+ read back '%s'", buf);
	CHECK_EQ(fclose(fp), 0);
	CHECK_FILE(path("st-a"), "0123456789ABcd");
	CHECK_EQ(unlink(path("st-a")), 0);
}

/* fwrite and fread much more than a buffer, fseek, ftell, getline. */
static void stdio_large(void)
{
	enum { SIZE = 5 * PG + 123 };
	char *buf = malloc(SIZE), *back = malloc(SIZE), *line = NULL;
	size_t cap = 0;
	FILE *fp;
	int i;

	pattern_fill(buf, SIZE, 7, 0);
	fp = fopen(path("st-big"), "w+");
	CHECK(fp, "fopen w+: %s", strerror(errno));
	if (!fp || !buf || !back)
		goto out;
	CHECK_EQ(fwrite(buf, 1, 100, fp), 100);	/* buffered, then large */
	CHECK_EQ(fwrite(buf + 100, 1, SIZE - 100, fp), SIZE - 100);
	CHECK_EQ(ftell(fp), SIZE);
	CHECK_EQ(fseek(fp, 0, SEEK_SET), 0);
	memset(back, 0, SIZE);
	CHECK_EQ(fread(back, 1, SIZE, fp), SIZE);
	CHECK(!memcmp(back, buf, SIZE), "fread bytes differ");
	CHECK_EQ(fread(back, 1, 1, fp), 0);
	CHECK(feof(fp), "fread past the end sets EOF");
	CHECK_EQ(fseek(fp, -123, SEEK_END), 0);
	CHECK_EQ(ftell(fp), SIZE - 123);
	CHECK_EQ(fread(back, 1, 200, fp), 123);
	CHECK(!memcmp(back, buf + SIZE - 123, 123), "fread at the end differ");
	memset(back, 0, SIZE);
	CHECK_EQ(pread(fileno(fp), back, SIZE, 0), SIZE);
	CHECK(!memcmp(back, buf, SIZE), "pread of the stream's file differs");

	/* Lines. */
	CHECK_EQ(fseek(fp, 0, SEEK_SET), 0);
	CHECK_EQ(ftruncate(fileno(fp), 0), 0);
	for (i = 0; i < 1000; i++)
		fprintf(fp, "line %d\n", i);
	rewind(fp);
	for (i = 0; getline(&line, &cap, fp) > 0; i++) {
		char want[32];

		snprintf(want, sizeof(want), "line %d\n", i);
		if (strcmp(line, want)) {
			CHECK(0, "getline %d read '%s'", i, line);
			break;
		}
	}
	CHECK_EQ(i, 1000);
out:
	if (fp)
		CHECK_EQ(fclose(fp), 0);
	unlink(path("st-big"));
	free(line);
	free(buf);
	free(back);
}

/* freopen of a stream of ours: another file, the same one, outside. */
static void stdio_freopen(const char *outside)
{
	char line[64] = "";
	FILE *fp, *fp2;
	int fd;

	fp = fopen(path("st-r1"), "w");
	CHECK(fp, "fopen: %s", strerror(errno));
	if (!fp)
		return;
	fd = fileno(fp);
	fputs("one\n", fp);			/* flushed by freopen */
	fp2 = freopen(path("st-r2"), "w", fp);
	CHECK(fp2 == fp, "freopen returned %p, want %p (%s)", (void *)fp2,
	      (void *)fp, strerror(errno));
	if (!fp2)
		return;
	CHECK_FILE(path("st-r1"), "one\n");
	CHECK_EQ(fileno(fp), fd);		/* the number is kept */
	fputs("two\n", fp);
	/* NULL: the same file again, in a new mode. */
	fp2 = freopen(NULL, "r", fp);
	CHECK(fp2 == fp, "freopen(NULL, r): %s", strerror(errno));
	if (!fp2)
		return;
	CHECK(fgets(line, sizeof(line), fp) && !strcmp(line, "two\n"),
	      "after freopen(NULL) read '%s'", line);
	CHECK_EQ(fputc('x', fp), EOF);
	fp2 = freopen(NULL, "a+", fp);
	CHECK(fp2 == fp, "freopen(NULL, a+): %s", strerror(errno));
	if (!fp2)
		return;
	CHECK_EQ(fputs("three\n", fp), 1);
	rewind(fp);
	CHECK(fgets(line, sizeof(line), fp) && !strcmp(line, "two\n"),
	      "a+ after freopen read '%s'", line);
	/* To a path outside the directory: still a working stream. */
	fp2 = freopen(outside, "w+", fp);
	CHECK(fp2 == fp, "freopen outside: %s", strerror(errno));
	if (!fp2)
		return;
	CHECK_EQ(fileno(fp), fd);
	fputs("outside\n", fp);
	CHECK_EQ(fflush(fp), 0);
	CHECK_FILE(outside, "outside\n");
	/* And back in. */
	fp2 = freopen(path("st-r2"), "r", fp);
	CHECK(fp2 == fp, "freopen back: %s", strerror(errno));
	if (!fp2)
		return;
	CHECK(fgets(line, sizeof(line), fp) && !strcmp(line, "two\n"),
	      "back in read '%s'", line);
	/* A bad mode closes the stream: NULL, EINVAL; fclose frees it. */
	errno = 0;
	CHECK(freopen(path("st-r2"), "z", fp) == NULL && errno == EINVAL,
	      "freopen bad mode: errno %d", errno);
	CHECK_ERR(fcntl(fd, F_GETFD), EBADF);
	fclose(fp);
	CHECK_FILE(path("st-r2"), "two\nthree\n");
	unlink(outside);
	CHECK_EQ(unlink(path("st-r1")), 0);
	CHECK_EQ(unlink(path("st-r2")), 0);
}

/* fdopen of a shim descriptor: no dup, and fclose closes it. */
static void stdio_fdopen(void)
{
	char line[64] = "";
	FILE *fp;
	int fd;

	fd = open(path("st-fd"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK_EQ(write(fd, "head\n", 5), 5);
	fp = fdopen(fd, "r+");
	CHECK(fp, "fdopen r+: %s", strerror(errno));
	if (!fp)
		return;
	CHECK_EQ(fileno(fp), fd);
	CHECK_EQ(fwrite("tail\n", 1, 5, fp), 5);	/* at the descriptor's 5 */
	CHECK_EQ(fclose(fp), 0);
	CHECK_ERR(fcntl(fd, F_GETFD), EBADF);	/* fclose closed it */
	CHECK_FILE(path("st-fd"), "head\ntail\n");

	fd = open(path("st-fd"), O_RDONLY);
	CHECK_STREAM_ERR(fdopen(fd, "w"), EINVAL);	/* the access mode says no */
	CHECK_STREAM_ERR(fdopen(fd, "r+"), EINVAL);
	CHECK_STREAM_ERR(fdopen(fd, "q"), EINVAL);
	fp = fdopen(fd, "rb");
	CHECK(fp, "fdopen rb: %s", strerror(errno));
	if (fp) {
		CHECK(fgets(line, sizeof(line), fp) && !strcmp(line, "head\n"),
		      "fdopen rb read '%s'", line);
		CHECK_EQ(fclose(fp), 0);
	}

	/* "a" sets O_APPEND on the descriptor, as glibc's fdopen does. */
	fd = open(path("st-fd"), O_WRONLY);
	fp = fdopen(fd, "a");
	CHECK(fp, "fdopen a: %s", strerror(errno));
	if (!fp)
		return;
	CHECK(fcntl(fd, F_GETFL) & O_APPEND, "fdopen \"a\" set O_APPEND");
	CHECK_EQ(ftell(fp), 10);
	fputs("more\n", fp);
	CHECK_EQ(fclose(fp), 0);
	CHECK_FILE(path("st-fd"), "head\ntail\nmore\n");
	CHECK_EQ(unlink(path("st-fd")), 0);
}

static void stdio_errors(void)
{
	char *none = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	FILE *fp;

	CHECK_STREAM_ERR(fopen(path("st-none"), "r"), ENOENT);
	CHECK_STREAM_ERR(fopen(path("st-none"), "r+"), ENOENT);
	CHECK_STREAM_ERR(fopen64(path("st-none"), "rb"), ENOENT);
	CHECK_STREAM_ERR(fopen(path("st-none"), ""), EINVAL);
	CHECK_STREAM_ERR(fopen(path("st-none"), "+w"), EINVAL);
	CHECK_STREAM_ERR(fopen(path("st-none"), "w,ccs=UTF-8"), EINVAL);
#ifndef SANITIZER_FOPEN
	CHECK_STREAM_ERR(fopen((const char *)none, "r"), EFAULT);
#else
	printf("preload_calls: fopen of a bad path not run: %s\n", SANITIZER_FOPEN);
#endif
	CHECK_ERR(stat(path("st-none"), &(struct stat){ 0 }), ENOENT);

	fp = fopen(path("st-x"), "wxe");	/* 'x': O_EXCL; 'e': O_CLOEXEC */
	CHECK(fp, "fopen wx: %s", strerror(errno));
	if (fp) {
		CHECK_EQ(fcntl(fileno(fp), F_GETFD), FD_CLOEXEC);
		CHECK_EQ(fclose(fp), 0);
	}
	CHECK_STREAM_ERR(fopen(path("st-x"), "wx"), EEXIST);
	CHECK_STREAM_ERR(fopen64(path("st-x"), "a+x"), EEXIST);
	fp = fopen(path("st-x"), "w+bm");	/* 'b' and 'm' ignored */
	CHECK(fp, "fopen w+bm: %s", strerror(errno));
	if (fp) {
		CHECK_EQ(fcntl(fileno(fp), F_GETFD), 0);
		CHECK_EQ(fcntl(fileno(fp), F_GETFL) & O_ACCMODE, O_RDWR);
		CHECK_EQ(fclose(fp), 0);
	}
	CHECK_EQ(unlink(path("st-x")), 0);
	munmap(none, PG);
}

/* Outside the directory, libc's own streams. */
static void stdio_outside(const char *outside)
{
	FILE *fp = fopen(outside, "w");
	struct stat st;

	CHECK(fp, "fopen %s: %s", outside, strerror(errno));
	if (!fp)
		return;
	CHECK_EQ(fputs("plain\n", fp), 1);
	CHECK_EQ(fclose(fp), 0);
	/* On disk, past the shim. */
	CHECK(raw_stat(outside, &st) == 0 && st.st_size == 6,
	      "%s on disk: size %lld", outside, (long long)st.st_size);
	fp = fopen(outside, "r");
	CHECK(fp && fileno(fp) >= 0, "fopen r outside");
	if (fp)
		fclose(fp);
	CHECK_EQ(unlink(outside), 0);
}

/*
 * stdio: see the file comment.  "stdio-keep" is left written through a
 * stream that is never closed, for test_preload.sh to find on disk after
 * exit (dir backend).
 */
static void test_stdio(void)
{
	const char *mode_null = NULL;
	char outside[64];
	FILE *fp;

	snprintf(outside, sizeof(outside), "/tmp/preload_calls_stdio.%d",
		 (int)getpid());
	stdio_write_read();
	stdio_coherence();
	stdio_append();
	stdio_large();
	stdio_freopen(outside);
	stdio_fdopen();
	stdio_errors();
	stdio_outside(outside);

	fp = fopen(path("stdio-keep"), "w");
	CHECK(fp, "fopen stdio-keep: %s", strerror(errno));
	if (fp)
		CHECK_EQ(fprintf(fp, "never closed %d\n", 7), 15);
	/* Last: glibc's own fopen crashes on a NULL mode. */
#ifndef SANITIZER_FOPEN
	CHECK_STREAM_ERR(fopen(path("st-none"), mode_null), EINVAL);
#else
	(void)mode_null;
	printf("preload_calls: fopen with a NULL mode not run: %s\n", SANITIZER_FOPEN);
#endif
}

/*
 * preload_calls DIR execl|execlp|execle: write "<how>-kept" to DIR/<how>
 * with write(2), leave it dirty in the cache, and exec cat on it: cat (a
 * new image, with a cache of its own) must print it.  test_preload.sh
 * checks what cat printed.
 */
static int test_exec(const char *how)
{
	char buf[64];
	int fd, n;

	n = snprintf(buf, sizeof(buf), "%s-kept\n", how);
	fd = open(path(how), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, (size_t)n) != n || close(fd)) {
		perror("preload_calls exec: write");
		return 1;
	}
	if (!strcmp(how, "execl"))
		execl("/bin/cat", "cat", path(how), (char *)NULL);
	else if (!strcmp(how, "execlp"))
		execlp("cat", "cat", path(how), (char *)NULL);
	else if (!strcmp(how, "execle"))
		execle("/bin/cat", "cat", path(how), (char *)NULL, environ);
	perror("preload_calls exec");
	return 1;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: %s DIR [execl|execlp|execle]\n", argv[0]);
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	if (argc == 3)
		return test_exec(argv[2]);

	fd = open("/dev/null", O_RDONLY);	/* not ours: passes through */
	CHECK(fd >= 0, "open /dev/null: %s", strerror(errno));
	close(fd);
	test_io();
	test_mmap();
	test_badinput();
	/* test_preload.sh sets it under TSan with the dir backend: see there. */
	if (getenv("PRELOAD_CALLS_NO_FORK"))
		printf("preload_calls: fork case not run: %s\n",
		       getenv("PRELOAD_CALLS_NO_FORK"));
	else
		test_fork();
	test_attr();
	test_link();
	test_stdio();
	if (memory_backend())
		CHECK_EQ(entries_on_disk(), 0);
	if (!test_failures)
		printf("preload_calls: all checks passed\n");
	return test_exit();
}
