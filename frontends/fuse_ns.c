/*
 * fuse_ns.c - the namespace: mkdir, rmdir, readdir, fsyncdir, symlink,
 * readlink, link, unlink, rename, chmod, chown, utimens, statfs.
 *
 * These act on the backing directory with *at() calls relative to
 * pf->rootfd, except where pcache holds state under the name: unlink and
 * rename of files go through pcache_unlink and pcache_rename, which keep
 * the cache's names right (open descriptors follow a rename and survive an
 * unlink).  The kernel has resolved every path component before it sends
 * a request, so the paths reaching us hold no symlinks to follow.
 *
 * Notes (docs/fuse.md):
 *  - rename of a directory moves the cached names below it (pcache_rename).
 *  - link is linkat alone: pcache caches a file once, whatever its names.
 *  - utimens sets the backing file's times and the cache's (pcache_futimens).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fuse.h"

int pcache_fuse_mkdir(const char *path, mode_t mode)
{
	struct pcache_fuse *pf = pcache_fuse();
	const char *rel = pcache_fuse_rel(path);

	if (mkdirat(pf->rootfd, rel, mode))
		return -errno;
	pcache_fuse_chown_new(pf, rel);
	return 0;
}

int pcache_fuse_rmdir(const char *path)
{
	return unlinkat(pcache_fuse()->rootfd, pcache_fuse_rel(path), AT_REMOVEDIR) ?
		-errno : 0;
}

/*
 * The whole directory in one call (offset 0 to the filler): libfuse keeps
 * it for the following readdir requests.  Attributes come from getattr,
 * which has the cache's sizes.
 */
int pcache_fuse_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			off_t off, struct fuse_file_info *fi,
			enum fuse_readdir_flags flags)
{
	struct pcache_fuse *pf = pcache_fuse();
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int fd;

	fd = openat(pf->rootfd, pcache_fuse_rel(path),
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	memset(&st, 0, sizeof(st));
	while ((de = readdir(dir))) {
		st.st_ino = de->d_ino;
		st.st_mode = DTTOIF(de->d_type);
		if (filler(buf, de->d_name, &st, 0, 0))
			break;
	}
	closedir(dir);
	return 0;
}

int pcache_fuse_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	int fd, err;

	fd = openat(pcache_fuse()->rootfd, pcache_fuse_rel(path),
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = fsync(fd) ? -errno : 0;
	close(fd);
	return err;
}

int pcache_fuse_symlink(const char *target, const char *path)
{
	struct pcache_fuse *pf = pcache_fuse();
	const char *rel = pcache_fuse_rel(path);

	if (symlinkat(target, pf->rootfd, rel))
		return -errno;
	pcache_fuse_chown_new(pf, rel);
	return 0;
}

int pcache_fuse_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n;

	if (!size)
		return -EINVAL;
	n = readlinkat(pcache_fuse()->rootfd, pcache_fuse_rel(path), buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/*
 * The new name needs nothing from pcache: looked up, it is found to be the
 * cached file by its (st_dev, st_ino), so both names share one cache entry.
 */
int pcache_fuse_link(const char *from, const char *to)
{
	struct pcache_fuse *pf = pcache_fuse();

	return linkat(pf->rootfd, pcache_fuse_rel(from), pf->rootfd,
		      pcache_fuse_rel(to), 0) ? -errno : 0;
}

int pcache_fuse_unlink(const char *path)
{
	struct pcache_fuse *pf = pcache_fuse();
	const char *rel = pcache_fuse_rel(path);
	struct stat st;

	if (fstatat(pf->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (S_ISREG(st.st_mode) && pf->pc)
		return pcache_unlink(pf->pc, rel);
	return unlinkat(pf->rootfd, rel, 0) ? -errno : 0;
}

/*
 * pcache_rename for everything: it renames the backing name and moves the
 * cache's entry with it.  RENAME_NOREPLACE is a check under rename_lock
 * (atomic against other renames on the mount, not against a create of
 * the target racing with it); RENAME_EXCHANGE is EINVAL, which mv and
 * friends take as "not supported here".
 */
int pcache_fuse_rename(const char *from, const char *to, unsigned int flags)
{
	struct pcache_fuse *pf = pcache_fuse();
	const char *nrel = pcache_fuse_rel(to);
	struct stat st;
	int err;

	if (!pf->pc)
		return -EIO;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	pthread_mutex_lock(&pf->rename_lock);
	if ((flags & RENAME_NOREPLACE) &&
	    !fstatat(pf->rootfd, nrel, &st, AT_SYMLINK_NOFOLLOW))
		err = -EEXIST;
	else
		err = pcache_rename(pf->pc, pcache_fuse_rel(from), nrel);
	pthread_mutex_unlock(&pf->rename_lock);
	return err;
}

int pcache_fuse_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return fchmodat(pcache_fuse()->rootfd, pcache_fuse_rel(path), mode, 0) ?
		-errno : 0;
}

int pcache_fuse_chown(const char *path, uid_t uid, gid_t gid,
		      struct fuse_file_info *fi)
{
	return fchownat(pcache_fuse()->rootfd, pcache_fuse_rel(path), uid, gid,
			AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

/*
 * The backing file's times, and the cache's (pcache_futimens), which stat
 * shows and which the dir backend gives the backing file at writeback.
 */
int pcache_fuse_utimens(const char *path, const struct timespec tv[2],
			struct fuse_file_info *fi)
{
	struct pcache_fuse *pf = pcache_fuse();
	const char *rel = pcache_fuse_rel(path);
	struct stat st;
	int pfd, err;

	if (utimensat(pf->rootfd, rel, tv, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (fstatat(pf->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) ||
	    !S_ISREG(st.st_mode) || !pf->pc)
		return 0;
	if (fi)
		return pcache_futimens(((struct pcache_fuse_file *)(uintptr_t)fi->fh)->pfd,
				       tv);
	pfd = pcache_open(pf->pc, rel, O_RDONLY, 0);
	if (pfd < 0)
		return pfd;
	err = pcache_futimens(pfd, tv);
	pcache_close(pfd);
	return err;
}

int pcache_fuse_statfs(const char *path, struct statvfs *st)
{
	return fstatvfs(pcache_fuse()->rootfd, st) ? -errno : 0;
}
