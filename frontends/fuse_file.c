/*
 * fuse_file.c - file data through pcache: open, create, read, write,
 * truncate, flush, fsync, release, fallocate; and getattr, which merges the
 * cache's size and times into the backing file's attributes.
 *
 * Open flags.  Only the access mode, O_CREAT, O_EXCL and O_TRUNC reach
 * pcache_open.  O_APPEND and O_SYNC/O_DSYNC are the kernel's business: it
 * computes the append offset itself, and calls fsync after a synchronous
 * write.  Passing O_APPEND on would be wrong, not just redundant: the
 * kernel writes back pages dirtied through a shared mapping through any
 * writable handle of the file, and pcache would append them at end of file.
 * O_DIRECT is served by the kernel's direct I/O path (fuse.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse.h"

#define PCACHE_OPEN_FLAGS (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC)

static struct pcache_fuse_file *fh_file(struct fuse_file_info *fi)
{
	return (struct pcache_fuse_file *)(uintptr_t)fi->fh;
}

static int later(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec != b->tv_sec ? a->tv_sec > b->tv_sec : a->tv_nsec > b->tv_nsec;
}

/*
 * Type, mode, owner, links and inode number are the backing file's (chmod
 * and chown act on it); a regular file's size, blocks and mtime are the
 * cache's, which include data not yet written back.  ctime is the later
 * of the two, so a chmod shows.  utimens sets both the backing file's and
 * the cache's times (fuse_ns.c).
 */
int pcache_fuse_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct pcache_fuse *pf = pcache_fuse();
	const char *rel = pcache_fuse_rel(path);
	struct stat cst;
	int err;

	if (fstatat(pf->rootfd, rel, st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (!S_ISREG(st->st_mode) || !pf->pc)
		return 0;
	err = fi ? pcache_fstat(fh_file(fi)->pfd, &cst) : pcache_stat(pf->pc, rel, &cst);
	if (err)
		return err;
	st->st_size = cst.st_size;
	st->st_blocks = cst.st_blocks;
	st->st_mtim = cst.st_mtim;
	if (later(&cst.st_ctim, &st->st_ctim))
		st->st_ctim = cst.st_ctim;
	return 0;
}

static int open_common(const char *path, int flags, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct pcache_fuse *pf = pcache_fuse();
	const char *rel = pcache_fuse_rel(path);
	struct pcache_fuse_file *file;
	int pfd;

	if (!pf->pc)
		return -EIO;
	pfd = pcache_open(pf->pc, rel, flags & PCACHE_OPEN_FLAGS, mode);
	if (pfd < 0)
		return pfd;
	if (flags & O_CREAT)
		pcache_fuse_chown_new(pf, rel);
	file = pcache_fuse_file_add(pf, pfd);
	if (!file) {
		pcache_close(pfd);
		return -ENOMEM;
	}
	fi->fh = (uintptr_t)file;
	/* See fuse.h: the kernel's cache stays on, and is dropped at each open. */
	fi->direct_io = 0;
	fi->keep_cache = 0;
	return 0;
}

int pcache_fuse_open(const char *path, struct fuse_file_info *fi)
{
	return open_common(path, fi->flags, 0, fi);
}

int pcache_fuse_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return open_common(path, fi->flags | O_CREAT, mode, fi);
}

/* A page cache read is short only at end of file: loop over short counts. */
int pcache_fuse_read(const char *path, char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	int pfd = fh_file(fi)->pfd;
	size_t done = 0;
	ssize_t n;

	if (size > INT_MAX)
		size = INT_MAX;
	while (done < size) {
		n = pcache_pread(pfd, buf + done, size - done, off + done);
		if (n < 0)
			return done ? (int)done : (int)n;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

int pcache_fuse_write(const char *path, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	int pfd = fh_file(fi)->pfd;
	size_t done = 0;
	ssize_t n;

	if (size > INT_MAX)
		size = INT_MAX;
	while (done < size) {
		n = pcache_pwrite(pfd, buf + done, size - done, off + done);
		if (n < 0)
			return done ? (int)done : (int)n;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

int pcache_fuse_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct pcache_fuse *pf = pcache_fuse();
	int pfd, err;

	if (fi)
		return pcache_ftruncate(fh_file(fi)->pfd, size);
	if (!pf->pc)
		return -EIO;
	pfd = pcache_open(pf->pc, pcache_fuse_rel(path), O_WRONLY, 0);
	if (pfd < 0)
		return pfd;
	err = pcache_ftruncate(pfd, size);
	pcache_close(pfd);
	return err;
}

/* close(2) does not write back, on a kernel file system nor here. */
int pcache_fuse_flush(const char *path, struct fuse_file_info *fi)
{
	return 0;
}

int pcache_fuse_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int pfd = fh_file(fi)->pfd;

	return datasync ? pcache_fdatasync(pfd) : pcache_fsync(pfd);
}

int pcache_fuse_release(const char *path, struct fuse_file_info *fi)
{
	struct pcache_fuse_file *file = fh_file(fi);
	int err = pcache_close(file->pfd);

	pcache_fuse_file_del(pcache_fuse(), file);
	return err;
}

/*
 * Mode 0 and FALLOC_FL_KEEP_SIZE reserve the blocks in the backing file
 * (so a full disk says ENOSPC now, not at writeback), and mode 0 then
 * extends the file through pcache, which owns its size.  Punching holes,
 * zeroing and collapsing ranges would change data the cache holds behind
 * its back: EOPNOTSUPP, as file systems without them answer.
 * The size check and the extension are not atomic in pcache, but the
 * kernel holds the inode lock across fallocate and across buffered writes
 * and truncates of the same file, so nothing changes the size in between.
 */
int pcache_fuse_fallocate(const char *path, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi)
{
	struct pcache_fuse *pf = pcache_fuse();
	struct pcache_fuse_file *file = fh_file(fi);
	struct stat st;
	int bfd, err;

	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	bfd = openat(pf->rootfd, pcache_fuse_rel(path), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (bfd < 0)
		return -errno;
	err = fallocate(bfd, FALLOC_FL_KEEP_SIZE, off, len) ? -errno : 0;
	close(bfd);
	if (err)
		return err;
	if (mode & FALLOC_FL_KEEP_SIZE)
		return 0;
	err = pcache_fstat(file->pfd, &st);
	if (!err && off + len > st.st_size)
		err = pcache_ftruncate(file->pfd, off + len);
	return err;
}
