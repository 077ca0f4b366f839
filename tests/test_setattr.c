/*
 * test_setattr.c - pcache_fchmod and pcache_fchown, on the memory backend
 * (the inode is the only copy of mode and owner) and on the dir backend
 * (the backing file's mode and owner, changed at once):
 *
 *  - fchmod changes the permission bits pcache_fstat and pcache_stat show,
 *    keeps the file type, ignores bits outside 07777, moves ctime to now;
 *  - fchown changes uid and/or gid ((uid_t)-1 / (gid_t)-1 leave one
 *    alone) and drops S_ISUID, and S_ISGID with S_IXGRP;
 *  - dir: the backing file has the new mode and owner at once, and keeps
 *    them after a write and its writeback (fsync);
 *  - a file never chowned shows the caller's uid and gid;
 *  - bad input: a bogus or closed descriptor is -EBADF, the root -EISDIR;
 *    as a non-root user, giving a file away is -EPERM.
 * Run as root for the chown cases with other owners (skipped otherwise).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "harness.h"

static void check_mode(int fd, mode_t want)
{
	struct stat st;

	CHECK_EQ(pcache_fstat(fd, &st), 0);
	CHECK(st.st_mode == (S_IFREG | want), "mode %o, want %o",
	      (unsigned)st.st_mode, (unsigned)(S_IFREG | want));
}

static void run(const char *backend, const char *dir)
{
	struct pcache_config cfg;
	struct timespec before;
	struct pcache *pc;
	struct stat st, kst;
	char path[256];
	int fd, ro, root;

	pcache_config_init(&cfg);
	cfg.backend = backend;
	cfg.backend_arg = dir;
	CHECK_EQ(pcache_create(&cfg, &pc), 0);
	fd = pcache_open(pc, "f", O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0, "open: %d", fd);
	CHECK_EQ(pcache_pwrite(fd, "hello", 5, 0), 5);
	snprintf(path, sizeof(path), "%s/f", dir ? dir : "");

	/* Never chowned: the caller's ids. */
	CHECK_EQ(pcache_fstat(fd, &st), 0);
	CHECK(st.st_uid == getuid() && st.st_gid == getgid(), "ids %u:%u",
	      (unsigned)st.st_uid, (unsigned)st.st_gid);

	/* chmod: the permission bits, the type kept, ctime now. */
	usleep(20000);
	clock_gettime(CLOCK_REALTIME, &before);
	CHECK_EQ(pcache_fchmod(fd, 0600), 0);
	check_mode(fd, 0600);
	CHECK_EQ(pcache_fstat(fd, &st), 0);
	CHECK(st.st_ctim.tv_sec > before.tv_sec ||
	      (st.st_ctim.tv_sec == before.tv_sec &&
	       st.st_ctim.tv_nsec >= before.tv_nsec), "ctime did not move");
	CHECK_EQ(pcache_stat(pc, "f", &st), 0);
	CHECK_EQ(st.st_mode, S_IFREG | 0600);
	CHECK_EQ(pcache_fchmod(fd, S_IFDIR | 0751), 0);	/* type bits ignored */
	check_mode(fd, 0751);
	/* Any descriptor will do, read-only too (as fchmod(2)). */
	ro = pcache_open(pc, "f", O_RDONLY, 0);
	CHECK(ro >= 0, "open ro: %d", ro);
	CHECK_EQ(pcache_fchmod(ro, 0640), 0);
	check_mode(fd, 0640);
	CHECK_EQ(pcache_close(ro), 0);
	if (dir) {
		CHECK(stat(path, &kst) == 0 && kst.st_mode == (S_IFREG | 0640),
		      "backing mode %o", (unsigned)kst.st_mode);
		/* Writeback and fsync leave the mode alone. */
		CHECK_EQ(pcache_pwrite(fd, "world", 5, 5), 5);
		CHECK_EQ(pcache_fsync(fd), 0);
		CHECK(stat(path, &kst) == 0 && kst.st_mode == (S_IFREG | 0640) &&
		      kst.st_size == 10, "after fsync: mode %o size %lld",
		      (unsigned)kst.st_mode, (long long)kst.st_size);
	}

	/* chown: -1 leaves one alone; set-id bits go. */
	CHECK_EQ(pcache_fchmod(fd, 06750), 0);
	check_mode(fd, 06750);
	CHECK_EQ(pcache_fchown(fd, (uid_t)-1, (gid_t)-1), 0);
	check_mode(fd, 0750);		/* S_ISGID with S_IXGRP goes too */
	CHECK_EQ(pcache_fchmod(fd, 02640), 0);
	CHECK_EQ(pcache_fchown(fd, (uid_t)-1, getgid()), 0);
	check_mode(fd, 02640);		/* S_ISGID without S_IXGRP stays */
	CHECK_EQ(pcache_fchmod(fd, 0644), 0);
	if (geteuid() == 0) {
		CHECK_EQ(pcache_fchown(fd, 1234, (gid_t)-1), 0);
		CHECK_EQ(pcache_fstat(fd, &st), 0);
		CHECK(st.st_uid == 1234 && st.st_gid == getgid(), "ids %u:%u",
		      (unsigned)st.st_uid, (unsigned)st.st_gid);
		CHECK_EQ(pcache_fchown(fd, (uid_t)-1, 5678), 0);
		CHECK_EQ(pcache_stat(pc, "f", &st), 0);
		CHECK(st.st_uid == 1234 && st.st_gid == 5678, "ids %u:%u",
		      (unsigned)st.st_uid, (unsigned)st.st_gid);
		if (dir) {
			CHECK(stat(path, &kst) == 0 && kst.st_uid == 1234 &&
			      kst.st_gid == 5678, "backing ids %u:%u",
			      (unsigned)kst.st_uid, (unsigned)kst.st_gid);
			CHECK_EQ(pcache_pwrite(fd, "!", 1, 0), 1);
			CHECK_EQ(pcache_fsync(fd), 0);
			CHECK(stat(path, &kst) == 0 && kst.st_uid == 1234 &&
			      kst.st_mode == (S_IFREG | 0644),
			      "after fsync: uid %u mode %o",
			      (unsigned)kst.st_uid, (unsigned)kst.st_mode);
		}
		CHECK_EQ(pcache_fchown(fd, getuid(), getgid()), 0);
	} else {
		CHECK_EQ(pcache_fchown(fd, getuid() + 1, (gid_t)-1), -EPERM);
		check_mode(fd, 0644);
	}

	/* Bad input. */
	CHECK_EQ(pcache_fchmod(-1, 0644), -EBADF);
	CHECK_EQ(pcache_fchmod(987654, 0644), -EBADF);
	CHECK_EQ(pcache_fchown(-1, 0, 0), -EBADF);
	root = pcache_open(pc, "/", O_RDONLY, 0);
	CHECK(root >= 0, "open root: %d", root);
	CHECK_EQ(pcache_fchmod(root, 0700), -EISDIR);
	CHECK_EQ(pcache_fchown(root, (uid_t)-1, (gid_t)-1), -EISDIR);
	CHECK_EQ(pcache_close(root), 0);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_fchmod(fd, 0644), -EBADF);	/* closed */
	CHECK_EQ(pcache_destroy(pc), 0);
}

int main(void)
{
	char dir[] = "/tmp/test_setattr.XXXXXX";
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
	if (geteuid() != 0)
		printf("not root: the chown cases with other owners were not run\n");
	return test_exit();
}
