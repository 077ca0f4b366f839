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
 *    close it and open files of its own.
 * Exit 0 pass, 1 fail.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

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

int main(int argc, char **argv)
{
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[1]);

	fd = open("/dev/null", O_RDONLY);	/* not ours: passes through */
	CHECK(fd >= 0, "open /dev/null: %s", strerror(errno));
	close(fd);
	test_io();
	test_mmap();
	test_badinput();
	test_fork();
	if (memory_backend())
		CHECK_EQ(entries_on_disk(), 0);
	if (!test_failures)
		printf("preload_calls: all checks passed\n");
	return test_exit();
}
