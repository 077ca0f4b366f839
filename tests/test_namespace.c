/*
 * test_namespace.c - pcache_rename and pcache_stat, on the memory backend
 * (the icache is the namespace) and on the dir backend (real files):
 *
 *  - rename moves a file's bytes and open descriptors to the new name;
 *  - rename over an existing file replaces it: its open descriptors keep
 *    the old bytes (as after unlink), its name shows the renamed file;
 *  - a file renamed to itself is untouched; a missing source is -ENOENT;
 *    the root is -EBUSY; '..' is -EACCES on dir; a '/' in the new name is
 *    -ENOTDIR on memory;
 *  - dir: the backing directory shows the rename; renaming a directory
 *    that holds a cached file renames with it (the cached file follows,
 *    open descriptor and all); a subdirectory's file renames;
 *  - dir: pcache_futimens sets the cache's times, the backing file takes
 *    them at fsync, and a later write moves mtime to now;
 *  - stat of a cached file reports the cache's size (unwritten data
 *    included); stat of an uncached backing file and of a directory works;
 *    the root is a directory; a missing name is -ENOENT.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "harness.h"

static void check_bytes(int fd, const char *want)
{
	char buf[64] = { 0 };
	ssize_t n = pcache_pread(fd, buf, sizeof(buf) - 1, 0);

	CHECK(n == (ssize_t)strlen(want) && !strcmp(buf, want),
	      "read %zd bytes '%s', want '%s'", n, buf, want);
}

static void run(const char *backend, const char *dir)
{
	struct pcache_config cfg;
	struct pcache *pc;
	struct stat st;
	int a, b, b2;

	pcache_config_init(&cfg);
	cfg.backend = backend;
	cfg.backend_arg = dir;
	CHECK_EQ(pcache_create(&cfg, &pc), 0);
	a = pcache_open(pc, "a", O_RDWR | O_CREAT, 0644);
	b = pcache_open(pc, "b", O_RDWR | O_CREAT, 0644);
	CHECK(a >= 0 && b >= 0, "open: %d %d", a, b);
	CHECK_EQ(pcache_pwrite(a, "alpha", 5, 0), 5);
	CHECK_EQ(pcache_pwrite(b, "beta!!", 6, 0), 6);

	/* stat: the cache's size, before any writeback. */
	CHECK_EQ(pcache_stat(pc, "a", &st), 0);
	CHECK_EQ(st.st_size, 5);
	CHECK(S_ISREG(st.st_mode), "mode %o", st.st_mode);
	CHECK_EQ(pcache_stat(pc, "/", &st), 0);
	CHECK(S_ISDIR(st.st_mode), "root mode %o", st.st_mode);
	CHECK_EQ(pcache_stat(pc, "nope", &st), -ENOENT);
	CHECK_EQ(pcache_stat(pc, NULL, &st), -EFAULT);
	CHECK_EQ(pcache_stat(pc, "a", NULL), -EFAULT);

	/* Over an existing file: b's descriptor keeps b's bytes. */
	CHECK_EQ(pcache_rename(pc, "a", "b"), 0);
	CHECK_EQ(pcache_stat(pc, "a", &st), -ENOENT);
	CHECK_EQ(pcache_stat(pc, "b", &st), 0);
	CHECK_EQ(st.st_size, 5);
	check_bytes(a, "alpha");
	check_bytes(b, "beta!!");
	b2 = pcache_open(pc, "b", O_RDONLY, 0);
	CHECK(b2 >= 0, "open b: %d", b2);
	check_bytes(b2, "alpha");
	/* Writes through the old descriptor reach the new name. */
	CHECK_EQ(pcache_pwrite(a, "A", 1, 0), 1);
	check_bytes(b2, "Alpha");

	CHECK_EQ(pcache_rename(pc, "b", "b"), 0);
	check_bytes(b2, "Alpha");
	CHECK_EQ(pcache_rename(pc, "missing", "x"), -ENOENT);
	CHECK_EQ(pcache_rename(pc, "/", "x"), -EBUSY);
	CHECK_EQ(pcache_rename(pc, "b", "."), -EBUSY);
	CHECK_EQ(pcache_rename(NULL, "b", "x"), -EINVAL);
	CHECK_EQ(pcache_rename(pc, NULL, "x"), -EFAULT);

	if (!dir) {
		CHECK_EQ(pcache_rename(pc, "b", "d/x"), -ENOTDIR);
	} else {
		char path[512];
		struct stat kst;
		int fd;

		CHECK_EQ(pcache_rename(pc, "b", "../x"), -EACCES);
		CHECK_EQ(pcache_fsync(a), 0);
		snprintf(path, sizeof(path), "%s/b", dir);
		CHECK(stat(path, &kst) == 0 && kst.st_size == 5,
		      "backing b after fsync");
		snprintf(path, sizeof(path), "%s/a", dir);
		CHECK(stat(path, &kst) != 0, "backing a still there");

		/* A subdirectory: a file in it renames; the directory with a
		 * cached file in it does not. */
		snprintf(path, sizeof(path), "%s/sub", dir);
		CHECK(mkdir(path, 0755) == 0, "mkdir");
		fd = pcache_open(pc, "sub/f", O_RDWR | O_CREAT, 0644);
		CHECK(fd >= 0, "open sub/f: %d", fd);
		CHECK_EQ(pcache_pwrite(fd, "sub", 3, 0), 3);
		CHECK_EQ(pcache_rename(pc, "sub", "sub2"), 0);
		CHECK_EQ(pcache_stat(pc, "sub/f", &st), -ENOENT);
		CHECK_EQ(pcache_stat(pc, "sub2/f", &st), 0);
		CHECK_EQ(st.st_size, 3);
		/* The open descriptor follows; a new open finds the same file. */
		CHECK_EQ(pcache_pwrite(fd, "S", 1, 0), 1);
		{
			int fd2 = pcache_open(pc, "sub2/f", O_RDONLY, 0);

			CHECK(fd2 >= 0, "open sub2/f: %d", fd2);
			check_bytes(fd2, "Sub");
			pcache_close(fd2);
		}
		CHECK_EQ(pcache_rename(pc, "sub2", "sub"), 0);
		CHECK_EQ(pcache_rename(pc, "sub/f", "sub/g"), 0);
		CHECK_EQ(pcache_stat(pc, "sub/g", &st), 0);
		CHECK_EQ(st.st_size, 3);
		CHECK_EQ(pcache_stat(pc, "sub", &st), 0);
		CHECK(S_ISDIR(st.st_mode), "sub mode %o", st.st_mode);
		CHECK_EQ(pcache_close(fd), 0);

		/*
		 * futimens: the cache's times, which the backing file takes at
		 * fsync; a later write moves mtime to now again.
		 */
		{
			struct timespec t[2] = { { 1000000000, 5 }, { 1000000001, 7 } };
			struct timespec now;

			CHECK_EQ(pcache_futimens(a, t), 0);
			CHECK_EQ(pcache_fstat(a, &st), 0);
			CHECK(st.st_mtim.tv_sec == 1000000001 &&
			      st.st_mtim.tv_nsec == 7, "cached mtime %ld",
			      (long)st.st_mtim.tv_sec);
			CHECK_EQ(pcache_fsync(a), 0);
			snprintf(path, sizeof(path), "%s/b", dir);
			CHECK(stat(path, &kst) == 0 && kst.st_mtim.tv_sec == 1000000001 &&
			      kst.st_atim.tv_sec == 1000000000, "backing times %ld %ld",
			      (long)kst.st_mtim.tv_sec, (long)kst.st_atim.tv_sec);
			CHECK_EQ(pcache_pwrite(a, "x", 1, 4), 1);
			clock_gettime(CLOCK_REALTIME, &now);
			CHECK_EQ(pcache_fstat(a, &st), 0);
			CHECK(st.st_mtim.tv_sec >= now.tv_sec - 2,
			      "mtime after a write: %ld", (long)st.st_mtim.tv_sec);
			t[0].tv_nsec = 1000000000;
			CHECK_EQ(pcache_futimens(a, t), -EINVAL);
			CHECK_EQ(pcache_futimens(-1, NULL), -EBADF);
			CHECK_EQ(pcache_futimens(a, NULL), 0);
		}

		/* An uncached backing file: stat and rename by the backend. */
		snprintf(path, sizeof(path), "%s/plain", dir);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		CHECK(fd >= 0 && write(fd, "12345678", 8) == 8, "plain file");
		close(fd);
		CHECK_EQ(pcache_stat(pc, "plain", &st), 0);
		CHECK_EQ(st.st_size, 8);
		CHECK_EQ(pcache_rename(pc, "plain", "plain2"), 0);
		CHECK_EQ(pcache_stat(pc, "plain2", &st), 0);
		CHECK_EQ(pcache_stat(pc, "plain", &st), -ENOENT);
	}
	CHECK_EQ(pcache_close(a), 0);
	CHECK_EQ(pcache_close(b), 0);
	CHECK_EQ(pcache_close(b2), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
}

int main(void)
{
	char dir[] = "/tmp/test_namespace.XXXXXX";
	char cmd[64];

	run("memory", NULL);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	run("dir", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	return test_exit();
}
