/*
 * passthrough.c - build/fuse-passthrough: a plain libfuse passthrough with
 * the kernel's writeback cache on, the yardstick bench/fio.sh measures
 * pcache-fuse against (docs/performance.md).  Not part of pcache.
 *
 *	build/fuse-passthrough BACKING_DIR MOUNTPOINT [FUSE options]
 *
 * High-level (path based) libfuse 3 API, multi-threaded loop.  Every
 * operation is forwarded to BACKING_DIR with an *at() call on a descriptor
 * of it; an open file's backing descriptor is kept in fi->fh.  In init the
 * writeback cache is asked for (FUSE_CAP_WRITEBACK_CACHE), so the kernel's
 * page cache absorbs writes and sends them to us later, in large batches:
 * the design of libfuse's example/passthrough_ll with -o writeback.  It
 * follows that example in two details the writeback cache requires: a
 * write-only open is opened read-write (the kernel may read to fill a
 * partial page), and O_APPEND is dropped (the kernel computes the offsets).
 *
 * Kept minimal: enough for fio, coreutils and a shell (getattr, access,
 * opendir, readdir, releasedir, mkdir, rmdir, unlink, rename, truncate,
 * utimens, chmod, open, create, read, write, flush, release, fsync,
 * fallocate, statfs).  No symlinks, links, xattrs or locks.
 */
#define FUSE_USE_VERSION 35
#include <fuse.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int rootfd = -1;		/* O_DIRECTORY descriptor of BACKING_DIR */
static int writeback;		/* the kernel granted the writeback cache */

/* "/a/b" -> "a/b"; "/" -> "." */
static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static void *pt_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->use_ino = 1;
	cfg->nullpath_ok = 1;	/* ops with a handle use it, not the path */
	if (conn->capable & FUSE_CAP_WRITEBACK_CACHE) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		writeback = 1;
	}
	return NULL;
}

static int pt_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	int r = fi ? fstat((int)fi->fh, st)
		   : fstatat(rootfd, rel(path), st, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

static int pt_access(const char *path, int mask)
{
	return faccessat(rootfd, rel(path), mask, 0) < 0 ? -errno : 0;
}

static int pt_opendir(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(rootfd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	fi->fh = (uintptr_t)d;
	return 0;
}

/* The whole listing in one call, with offsets 0: libfuse buffers it. */
static int pt_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	DIR *d = (DIR *)(uintptr_t)fi->fh;
	struct dirent *de;

	rewinddir(d);
	while ((de = readdir(d))) {
		struct stat st = { .st_ino = de->d_ino, .st_mode = DTTOIF(de->d_type) };
		if (fill(buf, de->d_name, &st, 0, 0))
			break;
	}
	return 0;
}

static int pt_releasedir(const char *path, struct fuse_file_info *fi)
{
	closedir((DIR *)(uintptr_t)fi->fh);
	return 0;
}

static int pt_mkdir(const char *path, mode_t mode)
{
	return mkdirat(rootfd, rel(path), mode) < 0 ? -errno : 0;
}

static int pt_rmdir(const char *path)
{
	return unlinkat(rootfd, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int pt_unlink(const char *path)
{
	return unlinkat(rootfd, rel(path), 0) < 0 ? -errno : 0;
}

static int pt_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags)
		return -EINVAL;
	return renameat(rootfd, rel(from), rootfd, rel(to)) < 0 ? -errno : 0;
}

static int pt_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int r = fi ? fchmod((int)fi->fh, mode) : fchmodat(rootfd, rel(path), mode, 0);
	return r < 0 ? -errno : 0;
}

static int pt_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (fi)
		return ftruncate((int)fi->fh, size) < 0 ? -errno : 0;
	int fd = openat(rootfd, rel(path), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ftruncate(fd, size) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int pt_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	int r = fi ? futimens((int)fi->fh, tv)
		   : utimensat(rootfd, rel(path), tv, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

/* The writeback cache's two requirements (see the top of the file). */
static int open_flags(int flags)
{
	if (writeback) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags | O_CLOEXEC;
}

static int pt_open(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(rootfd, rel(path), open_flags(fi->flags) & ~O_CREAT);
	if (fd < 0)
		return -errno;
	fi->fh = fd;
	return 0;
}

static int pt_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int fd = openat(rootfd, rel(path), open_flags(fi->flags) | O_CREAT, mode);
	if (fd < 0)
		return -errno;
	fi->fh = fd;
	return 0;
}

static int pt_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	ssize_t n = pread((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int pt_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	ssize_t n = pwrite((int)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int pt_flush(const char *path, struct fuse_file_info *fi)
{
	return 0;	/* close does not write back, as on a kernel file system */
}

static int pt_release(const char *path, struct fuse_file_info *fi)
{
	close((int)fi->fh);
	return 0;
}

static int pt_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int r = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
	return r < 0 ? -errno : 0;
}

static int pt_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	return fallocate((int)fi->fh, mode, off, len) < 0 ? -errno : 0;
}

static int pt_statfs(const char *path, struct statvfs *sv)
{
	return fstatvfs(rootfd, sv) < 0 ? -errno : 0;
}

static const struct fuse_operations pt_ops = {
	.init		= pt_init,
	.getattr	= pt_getattr,
	.access		= pt_access,
	.opendir	= pt_opendir,
	.readdir	= pt_readdir,
	.releasedir	= pt_releasedir,
	.mkdir		= pt_mkdir,
	.rmdir		= pt_rmdir,
	.unlink		= pt_unlink,
	.rename		= pt_rename,
	.chmod		= pt_chmod,
	.truncate	= pt_truncate,
	.utimens	= pt_utimens,
	.open		= pt_open,
	.create		= pt_create,
	.read		= pt_read,
	.write		= pt_write,
	.flush		= pt_flush,
	.release	= pt_release,
	.fsync		= pt_fsync,
	.fallocate	= pt_fallocate,
	.statfs		= pt_statfs,
};

int main(int argc, char *argv[])
{
	if (argc < 3 || argv[1][0] == '-') {
		fprintf(stderr, "usage: %s BACKING_DIR MOUNTPOINT [FUSE options]\n", argv[0]);
		return 1;
	}
	/* Opened before fuse_main's daemon changes directory to /. */
	rootfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1], strerror(errno));
		return 1;
	}
	/* libfuse sees: argv[0] MOUNTPOINT [options]; umask 0: modes as asked. */
	argv[1] = argv[0];
	umask(0);
	return fuse_main(argc - 1, argv + 1, &pt_ops, NULL);
}
