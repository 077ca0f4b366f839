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
 *  - dir, hard links: a second name of a cached file (linked behind the
 *    cache's back) is the same cached file: stat and list of it show the
 *    cache's size before any writeback, writes through either name are
 *    read through the other, one inode is counted, st_ino and st_nlink are
 *    the backing file's; unlinking one name leaves the other; an unlinked
 *    open file is still found by a name it has only in the backing
 *    directory; rename of a name onto another name of the same file changes
 *    nothing; the bytes reach the backing file once, at destroy.
 *  - pcache_link, memory and dir: the new name is the same file (writes
 *    through one read through the other, st_nlink 2, one inode), unlinking
 *    the first name keeps the data; errors: a missing source, an existing
 *    target, the root, NULL names; on dir, a directory source is -EPERM and
 *    the backing directory holds the link.
 *  - dir, files the process may not write (run as "nobody" when root):
 *    a read-only file opens for reading and reads; for writing, or with
 *    O_TRUNC, it is -EACCES and nothing changes; once its owner makes it
 *    writable, a new open for writing works on the same cached file and
 *    its write reaches the backing file.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
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

static int list_find(void *arg, const char *name, const struct stat *st)
{
	struct stat *want = arg;

	if (!strcmp(name, "h2")) {
		*want = *st;
		return 1;
	}
	return 0;
}

static void backing_link(const char *dir, const char *from, const char *to)
{
	char a[512], b[512];

	snprintf(a, sizeof(a), "%s/%s", dir, from);
	snprintf(b, sizeof(b), "%s/%s", dir, to);
	CHECK(link(a, b) == 0, "link %s %s: %s", a, b, strerror(errno));
}

static void check_backing(const char *dir, const char *name, const char *want)
{
	char path[512], buf[64] = { 0 };
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	CHECK(n == (ssize_t)strlen(want) && !strcmp(buf, want),
	      "backing %s: %zd bytes '%s', want '%s'", name, n, buf, want);
}

static void hard_links(const char *dir)
{
	struct pcache_config cfg;
	struct pcache_stats stats;
	struct stat st, st1, st2, kst;
	struct pcache *pc;
	char path[512];
	int h1, h2, h4, h5;

	pcache_config_init(&cfg);
	cfg.backend = "dir";
	cfg.backend_arg = dir;
	CHECK_EQ(pcache_create(&cfg, &pc), 0);
	h1 = pcache_open(pc, "h1", O_RDWR | O_CREAT | O_EXCL, 0644);
	CHECK(h1 >= 0, "open h1: %d", h1);
	CHECK_EQ(pcache_pwrite(h1, "one", 3, 0), 3);
	backing_link(dir, "h1", "h2");
	check_backing(dir, "h2", "");	/* nothing written back yet */

	/* Before h2 is opened: stat and list of it are the cached file's. */
	CHECK_EQ(pcache_stat(pc, "h2", &st), 0);
	CHECK_EQ(st.st_size, 3);
	CHECK_EQ(st.st_nlink, 2);
	snprintf(path, sizeof(path), "%s/h1", dir);
	CHECK(stat(path, &kst) == 0, "stat backing h1");
	CHECK_EQ(st.st_ino, kst.st_ino);
	memset(&st, 0, sizeof(st));
	CHECK_EQ(pcache_list(pc, list_find, &st), 1);
	CHECK_EQ(st.st_size, 3);

	/* Each name writes, the other reads: one file, one inode. */
	h2 = pcache_open(pc, "h2", O_RDWR, 0);
	CHECK(h2 >= 0, "open h2: %d", h2);
	check_bytes(h2, "one");
	CHECK_EQ(pcache_pwrite(h2, "two", 3, 3), 3);
	check_bytes(h1, "onetwo");
	CHECK_EQ(pcache_pwrite(h1, "O", 1, 0), 1);
	check_bytes(h2, "Onetwo");
	CHECK_EQ(pcache_fstat(h1, &st1), 0);
	CHECK_EQ(pcache_fstat(h2, &st2), 0);
	CHECK(st1.st_ino == st2.st_ino && st1.st_ino == kst.st_ino,
	      "st_ino %lu %lu, backing %lu", (unsigned long)st1.st_ino,
	      (unsigned long)st2.st_ino, (unsigned long)kst.st_ino);
	CHECK_EQ(st2.st_nlink, 2);
	CHECK_EQ(st2.st_size, 6);
	CHECK_EQ(pcache_stats(pc, &stats), 0);
	CHECK_EQ(stats.inodes, 1);

	/* Unlink one name: the other still has the file. */
	CHECK_EQ(pcache_unlink(pc, "h1"), 0);
	CHECK_EQ(pcache_stat(pc, "h1", &st), -ENOENT);
	CHECK_EQ(pcache_stat(pc, "h2", &st), 0);
	CHECK_EQ(st.st_nlink, 1);
	CHECK_EQ(st.st_size, 6);
	CHECK_EQ(pcache_close(h1), 0);
	check_bytes(h2, "Onetwo");

	/* A rename onto another name of the same file changes nothing. */
	backing_link(dir, "h2", "h3");
	CHECK_EQ(pcache_rename(pc, "h2", "h3"), 0);
	CHECK_EQ(pcache_stat(pc, "h2", &st), 0);
	CHECK_EQ(st.st_size, 6);
	CHECK_EQ(pcache_stat(pc, "h3", &st), 0);
	CHECK_EQ(st.st_size, 6);
	CHECK_EQ(pcache_pwrite(h2, "!", 1, 6), 1);
	CHECK_EQ(pcache_close(h2), 0);

	/* An unlinked open file is found by the name only the directory has. */
	h4 = pcache_open(pc, "h4", O_RDWR | O_CREAT | O_EXCL, 0644);
	CHECK(h4 >= 0, "open h4: %d", h4);
	CHECK_EQ(pcache_pwrite(h4, "four", 4, 0), 4);
	backing_link(dir, "h4", "h5");
	CHECK_EQ(pcache_unlink(pc, "h4"), 0);
	h5 = pcache_open(pc, "h5", O_RDWR, 0);
	CHECK(h5 >= 0, "open h5: %d", h5);
	check_bytes(h5, "four");
	CHECK_EQ(pcache_pwrite(h5, "FIVE", 4, 4), 4);
	check_bytes(h4, "fourFIVE");
	CHECK_EQ(pcache_close(h4), 0);
	CHECK_EQ(pcache_close(h5), 0);

	CHECK_EQ(pcache_destroy(pc), 0);
	check_backing(dir, "h2", "Onetwo!");
	check_backing(dir, "h3", "Onetwo!");
	check_backing(dir, "h5", "fourFIVE");
}

static void link_api(const char *backend, const char *dir)
{
	struct pcache_config cfg;
	struct pcache_stats stats;
	struct pcache *pc;
	struct stat st;
	int a, b;

	pcache_config_init(&cfg);
	cfg.backend = backend;
	cfg.backend_arg = dir;
	CHECK_EQ(pcache_create(&cfg, &pc), 0);
	a = pcache_open(pc, "la", O_RDWR | O_CREAT | O_EXCL, 0644);
	CHECK(a >= 0, "open la: %d", a);
	CHECK_EQ(pcache_pwrite(a, "link", 4, 0), 4);
	CHECK_EQ(pcache_link(pc, "la", "lb"), 0);
	CHECK_EQ(pcache_link(pc, "la", "lb"), -EEXIST);
	CHECK_EQ(pcache_link(pc, "nope", "lc"), -ENOENT);
	CHECK_EQ(pcache_link(pc, "/", "lc"), -EPERM);
	CHECK_EQ(pcache_link(pc, "la", "/"), -EEXIST);
	CHECK_EQ(pcache_link(pc, NULL, "lc"), -EFAULT);
	CHECK_EQ(pcache_link(pc, "la", NULL), -EFAULT);
	CHECK_EQ(pcache_link(NULL, "la", "lc"), -EINVAL);
	b = pcache_open(pc, "lb", O_RDWR, 0);
	CHECK(b >= 0, "open lb: %d", b);
	check_bytes(b, "link");
	CHECK_EQ(pcache_pwrite(b, "ed", 2, 4), 2);
	check_bytes(a, "linked");
	CHECK_EQ(pcache_fstat(a, &st), 0);
	CHECK_EQ(st.st_nlink, 2);
	CHECK_EQ(pcache_stats(pc, &stats), 0);
	CHECK_EQ(stats.inodes, 1);
	CHECK_EQ(pcache_unlink(pc, "la"), 0);
	CHECK_EQ(pcache_fstat(b, &st), 0);
	CHECK_EQ(st.st_nlink, 1);
	CHECK_EQ(pcache_close(a), 0);
	CHECK_EQ(pcache_close(b), 0);
	b = pcache_open(pc, "lb", O_RDONLY, 0);
	CHECK(b >= 0, "open lb again: %d", b);
	check_bytes(b, "linked");
	CHECK_EQ(pcache_close(b), 0);
	if (dir) {
		char path[512];

		snprintf(path, sizeof(path), "%s/ldir", dir);
		CHECK(mkdir(path, 0755) == 0, "mkdir ldir");
		CHECK_EQ(pcache_link(pc, "ldir", "ldir2"), -EPERM);
		CHECK_EQ(pcache_link(pc, "lb", "ldir/lb"), 0);
		CHECK_EQ(pcache_link(pc, "lb", "../lx"), -EACCES);
	} else {
		CHECK_EQ(pcache_link(pc, "lb", "d/lb"), -ENOENT);
	}
	CHECK_EQ(pcache_destroy(pc), 0);
	if (dir) {
		check_backing(dir, "lb", "linked");
		check_backing(dir, "ldir/lb", "linked");
	}
}

static void readonly_files(const char *dir)
{
	struct pcache_config cfg;
	struct pcache *pc;
	char path[512];
	int fd, r, w;

	snprintf(path, sizeof(path), "%s/ro", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0444);
	CHECK(fd >= 0 && write(fd, "read-only", 9) == 9, "make %s", path);
	close(fd);
	pcache_config_init(&cfg);
	cfg.backend = "dir";
	cfg.backend_arg = dir;
	CHECK_EQ(pcache_create(&cfg, &pc), 0);
	r = pcache_open(pc, "ro", O_RDONLY, 0);
	CHECK(r >= 0, "open ro for reading: %d", r);
	check_bytes(r, "read-only");
	CHECK_EQ(pcache_open(pc, "ro", O_RDWR, 0), -EACCES);
	CHECK_EQ(pcache_open(pc, "ro", O_WRONLY, 0), -EACCES);
	CHECK_EQ(pcache_open(pc, "ro", O_RDONLY | O_TRUNC, 0), -EACCES);
	check_bytes(r, "read-only");
	CHECK(chmod(path, 0644) == 0, "chmod: %s", strerror(errno));
	w = pcache_open(pc, "ro", O_RDWR, 0);
	CHECK(w >= 0, "open for writing after chmod: %d", w);
	CHECK_EQ(pcache_pwrite(w, "READ", 4, 0), 4);
	check_bytes(r, "READ-only");
	CHECK_EQ(pcache_fsync(w), 0);
	check_backing(dir, "ro", "READ-only");
	CHECK_EQ(pcache_close(w), 0);
	CHECK_EQ(pcache_close(r), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
}

/* As "nobody" if we are root (root may write anything), in a child. */
static void readonly_files_unprivileged(const char *dir)
{
	int status;
	pid_t pid;

	if (geteuid() != 0) {
		readonly_files(dir);
		return;
	}
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		if (chmod(dir, 0777) || setgid(65534) || setuid(65534)) {
			perror("drop to nobody");
			_exit(1);
		}
		readonly_files(dir);
		_exit(test_exit());
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "as nobody: status %#x", status);
}

int main(void)
{
	char dir[] = "/tmp/test_namespace.XXXXXX";
	char cmd[64];

	run("memory", NULL);
	link_api("memory", NULL);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	run("dir", dir);
	hard_links(dir);
	link_api("dir", dir);
	readonly_files_unprivileged(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	return test_exit();
}
