/*
 * preload_ns.c - the calls that take a path: open, creat, stat, statx,
 * access, truncate, unlink, rename, link; with their 64-bit, __*_2 (fortify) and
 * __xstat (pre-2.33 glibc) entry points.
 *
 * A path that is not ours (preload_path() returns 0) goes to the next
 * definition of the same symbol, untouched.  Ours are served by the cache:
 *
 *  - open: pcache_open() with the access mode and O_CREAT, O_EXCL,
 *    O_TRUNC, O_APPEND, O_SYNC, O_DSYNC, O_DIRECTORY; the rest (O_NOFOLLOW,
 *    O_NONBLOCK, O_DIRECT, O_NOATIME, O_LARGEFILE) means nothing to the
 *    cache and is kept only for F_GETFL.  O_PATH opens the file read-only
 *    for fstat and refuses reads.  O_TMPFILE: EOPNOTSUPP.  The umask is
 *    not applied to the mode (pcache_open takes it as given).
 *  - stat, lstat, fstatat, statx, access: pcache_stat() (the cache's
 *    size and times for a cached file; the backend's stat for the rest).
 *  - rename: pcache_rename() inside the directory.  Between the directory
 *    and elsewhere it is EXDEV, as between file systems, and programs copy.
 *    renameat2's flags (RENAME_NOREPLACE, RENAME_EXCHANGE): EINVAL.
 *  - link: pcache_link() inside the directory, so both names are one
 *    cached file; between the directory and elsewhere EXDEV.  linkat's
 *    AT_SYMLINK_FOLLOW on the dir backend goes to the kernel (pcache_link
 *    links a symlink itself), and the cache finds the new name's file when
 *    it is first looked up; the memory backend has no symlinks.
 *  - unlinkat(AT_REMOVEDIR) goes to the kernel: directories under
 *    PCACHE_PRELOAD_DIR are real directories.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "preload.h"

/* glibc < 2.33 binaries call these; the headers no longer declare them. */
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st,
		 int flags);
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
int renameat2(int olddirfd, const char *oldpath, int newdirfd,
	      const char *newpath, unsigned int flags);

/* Status flags F_GETFL shows; the cache itself acts on O_APPEND/O_*SYNC. */
#define KEPT_FLAGS (O_APPEND | O_NONBLOCK | O_SYNC | O_DSYNC | O_DIRECT | \
		    O_NOATIME | O_ASYNC)
#define PCACHE_FLAGS (O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_SYNC | \
		      O_DSYNC | O_DIRECTORY)

static bool needs_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

/* An O_RDWR (or O_RDONLY) descriptor of the backing file, or -1. */
static int backing_lock_fd(const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", preload_dir(), name) >=
	    (int)sizeof(path))
		return -1;
	fd = REAL(open)(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		fd = REAL(open)(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	return fd;
}

int preload_open_name(const char *name, int flags, mode_t mode)
{
	struct preload_file *file;
	bool path_only = flags & O_PATH;
	struct pcache *pc;
	int pfd, fd, err;

	if ((flags & O_TMPFILE) == O_TMPFILE)
		return -EOPNOTSUPP;
	pc = preload_cache(&err);
	if (!pc)
		return err;
	if (path_only)
		pfd = pcache_open(pc, name, O_RDONLY | (flags & O_DIRECTORY), 0);
	else
		pfd = pcache_open(pc, name, (flags & O_ACCMODE) |
				  (flags & PCACHE_FLAGS), mode & 07777);
	if (pfd < 0)
		return pfd;
	/*
	 * The number the program sees: owned, so nothing else gets it.  With
	 * a backend of real files it is an open of the backing file itself,
	 * used for nothing but POSIX record locks, so that they work between
	 * processes as the kernel's do.  Its bytes are never read or written
	 * through it: the cache holds them.
	 */
	fd = -1;
	if (!preload_files_private() && !path_only)
		fd = backing_lock_fd(name);
	if (fd < 0)
		fd = REAL(open)("/dev/null", O_PATH | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out_close;
	}
	err = -ENOMEM;
	file = preload_file_new(pfd, path_only ? O_PATH | O_LARGEFILE :
				(flags & O_ACCMODE) | (flags & KEPT_FLAGS) |
				O_LARGEFILE);
	if (!file)
		goto out_close_fd;
	file->path_only = path_only;
	file->name = strdup(name);	/* NULL: freopen(NULL) gives ENOMEM */
	err = preload_fd_install(fd, file, flags & O_CLOEXEC);
	preload_file_put(file);		/* the slot holds it now */
	if (err < 0) {
		REAL(close)(fd);
		return err;
	}
	preload_debug("open %s flags %#x -> fd %d (pcache %d)", name, flags,
		      fd, pfd);
	return fd;

out_close_fd:
	REAL(close)(fd);
out_close:
	pcache_close(pfd);
	return err;
}

int preload_stat_name(const char *name, struct stat *st)
{
	struct pcache *pc;
	int err;

	pc = preload_cache(&err);
	if (!pc)
		return err;
	return pcache_stat(pc, name, st);
}

/* open, openat and friends: ours, or -2 (not ours: call libc). */
#define NOT_OURS	(-2)
static int open_common(int dirfd, const char *path, int flags, mode_t mode)
{
	char name[PRELOAD_NAME_MAX];
	int r = preload_path(dirfd, path, name);

	if (r == 0)
		return NOT_OURS;
	if (r < 0)
		return (int)preload_ret(r);
	return (int)preload_ret(preload_open_name(name, flags, mode));
}

#define OPEN_MODE(flags) ({						\
	mode_t m_ = 0;							\
	if (needs_mode(flags)) {					\
		va_list ap;						\
		va_start(ap, flags);					\
		m_ = (mode_t)va_arg(ap, int);				\
		va_end(ap);						\
	}								\
	m_;								\
})

PRELOAD_API int open(const char *path, int flags, ...)
{
	mode_t mode = OPEN_MODE(flags);
	int r = open_common(AT_FDCWD, path, flags, mode);

	return r != NOT_OURS ? r : REAL(open)(path, flags, mode);
}

PRELOAD_API int open64(const char *path, int flags, ...)
{
	mode_t mode = OPEN_MODE(flags);
	int r = open_common(AT_FDCWD, path, flags, mode);

	return r != NOT_OURS ? r : REAL(open64)(path, flags, mode);
}

PRELOAD_API int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = OPEN_MODE(flags);
	int r = open_common(dirfd, path, flags, mode);

	return r != NOT_OURS ? r : REAL(openat)(dirfd, path, flags, mode);
}

PRELOAD_API int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = OPEN_MODE(flags);
	int r = open_common(dirfd, path, flags, mode);

	return r != NOT_OURS ? r : REAL(openat64)(dirfd, path, flags, mode);
}

/* The fortified opens: no mode argument, so O_CREAT here is a bug. */
static void check_open_2(int flags)
{
	if (needs_mode(flags)) {
		fprintf(stderr, "*** invalid open call: O_CREAT or O_TMPFILE "
			"without mode ***: terminated\n");
		abort();
	}
}

PRELOAD_API int __open_2(const char *path, int flags)
{
	int r;

	check_open_2(flags);
	r = open_common(AT_FDCWD, path, flags, 0);
	return r != NOT_OURS ? r : REAL(__open_2)(path, flags);
}

PRELOAD_API int __open64_2(const char *path, int flags)
{
	int r;

	check_open_2(flags);
	r = open_common(AT_FDCWD, path, flags, 0);
	return r != NOT_OURS ? r : REAL(__open64_2)(path, flags);
}

PRELOAD_API int __openat_2(int dirfd, const char *path, int flags)
{
	int r;

	check_open_2(flags);
	r = open_common(dirfd, path, flags, 0);
	return r != NOT_OURS ? r : REAL(__openat_2)(dirfd, path, flags);
}

PRELOAD_API int __openat64_2(int dirfd, const char *path, int flags)
{
	int r;

	check_open_2(flags);
	r = open_common(dirfd, path, flags, 0);
	return r != NOT_OURS ? r : REAL(__openat64_2)(dirfd, path, flags);
}

PRELOAD_API int creat(const char *path, mode_t mode)
{
	int flags = O_CREAT | O_WRONLY | O_TRUNC;
	int r = open_common(AT_FDCWD, path, flags, mode);

	return r != NOT_OURS ? r : REAL(creat)(path, mode);
}

PRELOAD_API int creat64(const char *path, mode_t mode)
{
	int flags = O_CREAT | O_WRONLY | O_TRUNC;
	int r = open_common(AT_FDCWD, path, flags, mode);

	return r != NOT_OURS ? r : REAL(creat64)(path, mode);
}

/*
 * stat and friends.  stat_common() returns NOT_OURS, or the result as
 * libc gives it.  AT_EMPTY_PATH on one of our descriptors is an fstat.
 */
static int stat_common(int dirfd, const char *path, struct stat *st, int flags)
{
	char name[PRELOAD_NAME_MAX];
	struct preload_file *file;
	int r;

	if ((flags & AT_EMPTY_PATH) && (!path || !path[0]) &&
	    (file = preload_fd_get(dirfd))) {
		r = preload_file_pfd(file);
		if (r >= 0)
			r = pcache_fstat(r, st);
		preload_file_put(file);
		return (int)preload_ret(r);
	}
	r = preload_path(dirfd, path, name);
	if (r == 0)
		return NOT_OURS;
	if (r > 0)
		r = preload_stat_name(name, st);
	return (int)preload_ret(r);
}

PRELOAD_API int stat(const char *path, struct stat *st)
{
	int r = stat_common(AT_FDCWD, path, st, 0);

	return r != NOT_OURS ? r : REAL(stat)(path, st);
}

PRELOAD_API int stat64(const char *path, struct stat64 *st)
{
	int r = stat_common(AT_FDCWD, path, (struct stat *)st, 0);

	return r != NOT_OURS ? r : REAL(stat64)(path, st);
}

PRELOAD_API int lstat(const char *path, struct stat *st)
{
	int r = stat_common(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);

	return r != NOT_OURS ? r : REAL(lstat)(path, st);
}

PRELOAD_API int lstat64(const char *path, struct stat64 *st)
{
	int r = stat_common(AT_FDCWD, path, (struct stat *)st,
			    AT_SYMLINK_NOFOLLOW);

	return r != NOT_OURS ? r : REAL(lstat64)(path, st);
}

PRELOAD_API int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	int r = stat_common(dirfd, path, st, flags);

	return r != NOT_OURS ? r : REAL(fstatat)(dirfd, path, st, flags);
}

PRELOAD_API int fstatat64(int dirfd, const char *path, struct stat64 *st,
			  int flags)
{
	int r = stat_common(dirfd, path, (struct stat *)st, flags);

	return r != NOT_OURS ? r : REAL(fstatat64)(dirfd, path, st, flags);
}

/* x86-64: _STAT_VER_KERNEL 0 and _STAT_VER_LINUX 1 both mean struct stat. */
static bool stat_ver_ok(int ver)
{
	return ver == 0 || ver == 1;
}

PRELOAD_API int __xstat(int ver, const char *path, struct stat *st)
{
	int r = stat_ver_ok(ver) ? stat_common(AT_FDCWD, path, st, 0) : NOT_OURS;

	return r != NOT_OURS ? r : REAL(__xstat)(ver, path, st);
}

PRELOAD_API int __xstat64(int ver, const char *path, struct stat64 *st)
{
	int r = stat_ver_ok(ver) ?
		stat_common(AT_FDCWD, path, (struct stat *)st, 0) : NOT_OURS;

	return r != NOT_OURS ? r : REAL(__xstat64)(ver, path, st);
}

PRELOAD_API int __lxstat(int ver, const char *path, struct stat *st)
{
	int r = stat_ver_ok(ver) ?
		stat_common(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW) : NOT_OURS;

	return r != NOT_OURS ? r : REAL(__lxstat)(ver, path, st);
}

PRELOAD_API int __lxstat64(int ver, const char *path, struct stat64 *st)
{
	int r = stat_ver_ok(ver) ?
		stat_common(AT_FDCWD, path, (struct stat *)st,
			    AT_SYMLINK_NOFOLLOW) : NOT_OURS;

	return r != NOT_OURS ? r : REAL(__lxstat64)(ver, path, st);
}

PRELOAD_API int __fxstatat(int ver, int dirfd, const char *path,
			   struct stat *st, int flags)
{
	int r = stat_ver_ok(ver) ? stat_common(dirfd, path, st, flags) :
		NOT_OURS;

	return r != NOT_OURS ? r : REAL(__fxstatat)(ver, dirfd, path, st, flags);
}

PRELOAD_API int __fxstatat64(int ver, int dirfd, const char *path,
			     struct stat64 *st, int flags)
{
	int r = stat_ver_ok(ver) ?
		stat_common(dirfd, path, (struct stat *)st, flags) : NOT_OURS;

	return r != NOT_OURS ? r :
		REAL(__fxstatat64)(ver, dirfd, path, st, flags);
}

static void stat_to_statx(const struct stat *st, struct statx *stx)
{
	memset(stx, 0, sizeof(*stx));
	stx->stx_mask = STATX_BASIC_STATS;
	stx->stx_blksize = (uint32_t)st->st_blksize;
	stx->stx_nlink = (uint32_t)st->st_nlink;
	stx->stx_uid = st->st_uid;
	stx->stx_gid = st->st_gid;
	stx->stx_mode = (uint16_t)st->st_mode;
	stx->stx_ino = st->st_ino;
	stx->stx_size = (uint64_t)st->st_size;
	stx->stx_blocks = (uint64_t)st->st_blocks;
	stx->stx_atime.tv_sec = st->st_atim.tv_sec;
	stx->stx_atime.tv_nsec = (uint32_t)st->st_atim.tv_nsec;
	stx->stx_mtime.tv_sec = st->st_mtim.tv_sec;
	stx->stx_mtime.tv_nsec = (uint32_t)st->st_mtim.tv_nsec;
	stx->stx_ctime.tv_sec = st->st_ctim.tv_sec;
	stx->stx_ctime.tv_nsec = (uint32_t)st->st_ctim.tv_nsec;
	stx->stx_dev_major = major(st->st_dev);
	stx->stx_dev_minor = minor(st->st_dev);
}

PRELOAD_API int statx(int dirfd, const char *path, int flags,
		      unsigned int mask, struct statx *stx)
{
	struct stat st;
	int r = stat_common(dirfd, path, &st, flags);

	if (r == NOT_OURS)
		return REAL(statx)(dirfd, path, flags, mask, stx);
	if (r == 0)
		stat_to_statx(&st, stx);
	return r;
}

/* access: the cache keeps no owners, so the mode bits alone decide X_OK. */
static int access_common(int dirfd, const char *path, int mode)
{
	char name[PRELOAD_NAME_MAX];
	struct stat st;
	int r = preload_path(dirfd, path, name);

	if (r == 0)
		return NOT_OURS;
	if (r > 0)
		r = preload_stat_name(name, &st);
	if (r == 0 && (mode & X_OK) && !(st.st_mode & 0111))
		r = -EACCES;
	return (int)preload_ret(r);
}

PRELOAD_API int access(const char *path, int mode)
{
	int r = access_common(AT_FDCWD, path, mode);

	return r != NOT_OURS ? r : REAL(access)(path, mode);
}

PRELOAD_API int faccessat(int dirfd, const char *path, int mode, int flags)
{
	int r = access_common(dirfd, path, mode);

	return r != NOT_OURS ? r : REAL(faccessat)(dirfd, path, mode, flags);
}

PRELOAD_API int euidaccess(const char *path, int mode)
{
	int r = access_common(AT_FDCWD, path, mode);

	return r != NOT_OURS ? r : REAL(euidaccess)(path, mode);
}

static int truncate_common(const char *path, off_t length)
{
	char name[PRELOAD_NAME_MAX];
	struct pcache *pc;
	int r = preload_path(AT_FDCWD, path, name);
	int pfd;

	if (r == 0)
		return NOT_OURS;
	if (r < 0)
		return (int)preload_ret(r);
	pc = preload_cache(&r);
	if (!pc)
		return (int)preload_ret(r);
	pfd = pcache_open(pc, name, O_WRONLY, 0);
	if (pfd < 0)
		return (int)preload_ret(pfd);
	r = pcache_ftruncate(pfd, length);
	pcache_close(pfd);
	return (int)preload_ret(r);
}

PRELOAD_API int truncate(const char *path, off_t length)
{
	int r = truncate_common(path, length);

	return r != NOT_OURS ? r : REAL(truncate)(path, length);
}

PRELOAD_API int truncate64(const char *path, off64_t length)
{
	int r = truncate_common(path, length);

	return r != NOT_OURS ? r : REAL(truncate64)(path, length);
}

static int unlink_common(int dirfd, const char *path, int flags)
{
	char name[PRELOAD_NAME_MAX];
	struct pcache *pc;
	int r;

	if (flags & AT_REMOVEDIR)
		return NOT_OURS;	/* a real directory */
	r = preload_path(dirfd, path, name);
	if (r == 0)
		return NOT_OURS;
	if (r < 0)
		return (int)preload_ret(r);
	pc = preload_cache(&r);
	if (!pc)
		return (int)preload_ret(r);
	return (int)preload_ret(pcache_unlink(pc, name));
}

PRELOAD_API int unlink(const char *path)
{
	int r = unlink_common(AT_FDCWD, path, 0);

	return r != NOT_OURS ? r : REAL(unlink)(path);
}

PRELOAD_API int unlinkat(int dirfd, const char *path, int flags)
{
	int r = unlink_common(dirfd, path, flags);

	return r != NOT_OURS ? r : REAL(unlinkat)(dirfd, path, flags);
}

/*
 * The two paths of rename or link: 0 with both ours (their names in
 * @oldname, @newname), NOT_OURS with neither, else -1 with errno: EXDEV
 * for one of each, as between file systems, or the path's error.
 */
static int two_names(int olddirfd, const char *oldpath, char *oldname,
		     int newdirfd, const char *newpath, char *newname)
{
	int o = preload_path(olddirfd, oldpath, oldname), n;

	if (o < 0)
		return (int)preload_ret(o);
	n = preload_path(newdirfd, newpath, newname);
	if (n < 0)
		return (int)preload_ret(n);
	if (!o && !n)
		return NOT_OURS;
	if (!o || !n)
		return (int)preload_ret(-EXDEV);
	return 0;
}

/* See the comment at the top. */
static int rename_common(int olddirfd, const char *oldpath, int newdirfd,
			 const char *newpath, unsigned int flags)
{
	char oldname[PRELOAD_NAME_MAX], newname[PRELOAD_NAME_MAX];
	int r = two_names(olddirfd, oldpath, oldname, newdirfd, newpath, newname);
	struct pcache *pc;
	int err;

	if (r)
		return r;
	if (flags)
		return (int)preload_ret(-EINVAL);
	pc = preload_cache(&err);
	if (!pc)
		return (int)preload_ret(err);
	return (int)preload_ret(pcache_rename(pc, oldname, newname));
}

PRELOAD_API int rename(const char *oldpath, const char *newpath)
{
	int r = rename_common(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);

	return r != NOT_OURS ? r : REAL(rename)(oldpath, newpath);
}

PRELOAD_API int renameat(int olddirfd, const char *oldpath, int newdirfd,
			 const char *newpath)
{
	int r = rename_common(olddirfd, oldpath, newdirfd, newpath, 0);

	return r != NOT_OURS ? r :
		REAL(renameat)(olddirfd, oldpath, newdirfd, newpath);
}

PRELOAD_API int renameat2(int olddirfd, const char *oldpath, int newdirfd,
			  const char *newpath, unsigned int flags)
{
	int r = rename_common(olddirfd, oldpath, newdirfd, newpath, flags);

	return r != NOT_OURS ? r :
		REAL(renameat2)(olddirfd, oldpath, newdirfd, newpath, flags);
}

/* See the comment at the top. */
static int link_common(int olddirfd, const char *oldpath, int newdirfd,
		       const char *newpath, int flags)
{
	char oldname[PRELOAD_NAME_MAX], newname[PRELOAD_NAME_MAX];
	int r = two_names(olddirfd, oldpath, oldname, newdirfd, newpath, newname);
	struct pcache *pc;
	int err;

	if (r)
		return r;
	if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH))
		return (int)preload_ret(-EINVAL);
	if ((flags & AT_SYMLINK_FOLLOW) && !preload_files_private())
		return NOT_OURS;
	pc = preload_cache(&err);
	if (!pc)
		return (int)preload_ret(err);
	return (int)preload_ret(pcache_link(pc, oldname, newname));
}

PRELOAD_API int link(const char *oldpath, const char *newpath)
{
	int r = link_common(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);

	return r != NOT_OURS ? r : REAL(link)(oldpath, newpath);
}

PRELOAD_API int linkat(int olddirfd, const char *oldpath, int newdirfd,
		       const char *newpath, int flags)
{
	int r = link_common(olddirfd, oldpath, newdirfd, newpath, flags);

	return r != NOT_OURS ? r :
		REAL(linkat)(olddirfd, oldpath, newdirfd, newpath, flags);
}
