/*
 * preload_attr.c - mode, owner and times: fchmod, fchown, futimens,
 * futimes (descriptors) and chmod, lchmod, fchmodat, chown, lchown,
 * fchownat, utimensat, utimes, lutimes, utime, futimesat (paths).
 *
 * A descriptor of ours is changed with pcache_fchmod, pcache_fchown or
 * pcache_futimens on the pcache descriptor behind it (O_PATH ones: EBADF,
 * as the kernel gives, except through AT_EMPTY_PATH).  With the dir
 * backend the mode and owner reach the backing file at once; the times
 * reach it at writeback, fsync and exit (the backend gives the backing file
 * the cache's times then).
 *
 * A path of ours:
 *  - memory backend (no file outside the cache): the cached file is opened
 *    by name (pcache_open O_RDONLY), changed with the descriptor call and
 *    closed.  A name the cache does not have is ENOENT.
 *  - dir backend: the call goes first to the backing file, which is the
 *    same path: the kernel resolves it, follows the symlink or not, checks
 *    permission and deals with directories and other file types.  Its
 *    error is the result.  Then, if the path names a regular file that this
 *    process has cached with other attributes (pcache_stat shows the
 *    cache's own attributes for a cached file and the backing file's for
 *    any other), the cache is given what the backing file now has, by a
 *    brief pcache_open by name and the descriptor call.  So stat agrees at
 *    once, and writeback keeps the new times instead of putting the
 *    cache's old ones back.  A file this process has not cached is not
 *    brought into the cache.  UTIME_NOW becomes the time the kernel set;
 *    UTIME_OMIT leaves the cache's own time (which may be newer than the
 *    backing file's, with data not written back yet).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <utime.h>

#include "preload.h"

/* Not declared without _FORTIFY_SOURCE or on older headers. */
int lchmod(const char *path, mode_t mode);

#define NOT_OURS	(-2)

/* A pointer libc's header calls nonnull, tested all the same. */
static __attribute__((noinline)) bool preload_nonnull(const void *p)
{
	return p != NULL;
}

enum change_kind { CHANGE_MODE, CHANGE_OWNER, CHANGE_TIMES };

struct change {
	enum change_kind kind;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec times[2];	/* may hold UTIME_NOW, UTIME_OMIT */
};

static long change_pfd(int pfd, const struct change *c)
{
	switch (c->kind) {
	case CHANGE_MODE:
		return pcache_fchmod(pfd, c->mode);
	case CHANGE_OWNER:
		return pcache_fchown(pfd, c->uid, c->gid);
	default:
		return pcache_futimens(pfd, c->times);
	}
}

/* Is @fd one of ours now?  (A racing close: the caller finds out later.) */
static bool fd_ours(int fd)
{
	struct preload_file *file;

	if (!preload_fd_maybe(fd))
		return false;
	file = preload_fd_get(fd);
	if (file)
		preload_file_put(file);
	return file;
}

/*
 * @fd is ours: change it and return as libc does; else NOT_OURS.
 * @path_ok: an O_PATH descriptor will do (AT_EMPTY_PATH).
 */
static int change_fd(int fd, const struct change *c, bool path_ok)
{
	struct preload_file *file = preload_fd_get(fd);
	long ret;

	if (!file)
		return NOT_OURS;
	if (file->path_only && !path_ok)
		ret = -EBADF;
	else
		ret = preload_file_pfd(file);
	if (ret >= 0)
		ret = change_pfd((int)ret, c);
	preload_file_put(file);
	return (int)preload_ret(ret);
}

/* The cached file @name, opened by name for the call. */
static long change_name(const char *name, const struct change *c)
{
	struct pcache *pc;
	int pfd, err;

	pc = preload_cache(&err);
	if (!pc)
		return err;
	pfd = pcache_open(pc, name, O_RDONLY, 0);
	if (pfd < 0)
		return pfd;
	err = (int)change_pfd(pfd, c);
	pcache_close(pfd);
	return err;
}

static bool ts_equal(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/*
 * dir: the backing file @bpath was changed as @c asked.  If this process
 * caches it as @name with other attributes, give the cache the backing
 * file's.  Best effort: the call itself has succeeded.
 */
static void sync_cached(const char *bpath, int flags, const char *name,
			const struct change *c)
{
	struct change now = *c;
	struct stat kst, pst;
	struct pcache *pc;
	int err;

	if (REAL(fstatat)(AT_FDCWD, bpath, &kst, flags & AT_SYMLINK_NOFOLLOW) ||
	    !S_ISREG(kst.st_mode))
		return;
	pc = preload_cache(&err);
	if (!pc || pcache_stat(pc, name, &pst) || !S_ISREG(pst.st_mode))
		return;
	switch (c->kind) {
	case CHANGE_MODE:
		if ((pst.st_mode & 07777) == (kst.st_mode & 07777))
			return;
		now.mode = kst.st_mode & 07777;
		break;
	case CHANGE_OWNER:
		if (pst.st_uid == kst.st_uid && pst.st_gid == kst.st_gid)
			return;
		now.uid = kst.st_uid;
		now.gid = kst.st_gid;
		break;
	case CHANGE_TIMES:
		if ((c->times[0].tv_nsec == UTIME_OMIT ||
		     ts_equal(&pst.st_atim, &kst.st_atim)) &&
		    (c->times[1].tv_nsec == UTIME_OMIT ||
		     ts_equal(&pst.st_mtim, &kst.st_mtim)))
			return;
		if (c->times[0].tv_nsec != UTIME_OMIT)
			now.times[0] = kst.st_atim;
		if (c->times[1].tv_nsec != UTIME_OMIT)
			now.times[1] = kst.st_mtim;
		break;
	}
	change_name(name, &now);
}

/* dir: make the change on the backing file; 0 or a negative errno. */
static int change_backing(const char *bpath, int flags, const struct change *c)
{
	int nofollow = flags & AT_SYMLINK_NOFOLLOW, r;

	switch (c->kind) {
	case CHANGE_MODE:
		r = REAL(fchmodat)(AT_FDCWD, bpath, c->mode, flags);
		break;
	case CHANGE_OWNER:
		r = REAL(fchownat)(AT_FDCWD, bpath, c->uid, c->gid, nofollow);
		break;
	default:
		r = REAL(utimensat)(AT_FDCWD, bpath, c->times, nofollow);
		break;
	}
	return r ? -errno : 0;
}

typedef int (*fill_fn)(struct change *c, const void *arg);

/*
 * A path call: NOT_OURS, or the result as libc gives it.  @fill, if set,
 * completes @c from the program's @arg (the times), reading it without
 * faulting: a bad pointer is EFAULT, as the system call gives (glibc's own
 * utimes and utime would crash converting it).
 */
static int path_common(int dirfd, const char *path, int flags,
		       int valid_flags, struct change *c, fill_fn fill,
		       const void *arg)
{
	char name[PRELOAD_NAME_MAX], bpath[2 * PRELOAD_NAME_MAX];
	char first;
	int r;

	/* AT_EMPTY_PATH with "": the descriptor itself, O_PATH ones too. */
	if ((flags & AT_EMPTY_PATH) && path &&
	    !preload_copy_in(&first, path, 1) && !first && fd_ours(dirfd)) {
		r = fill ? fill(c, arg) : 0;
		if (r < 0)
			return (int)preload_ret(r);
		r = change_fd(dirfd, c, true);
		if (r != NOT_OURS)
			return r;
	}
	r = preload_path(dirfd, path, name);
	if (r == 0)
		return NOT_OURS;
	if (r < 0)
		return (int)preload_ret(r);
	/* "" is no file (it would normalise to the directory it is in). */
	if (!preload_copy_in(&first, path, 1) && !first)
		return (int)preload_ret(-ENOENT);
	r = fill ? fill(c, arg) : 0;
	if (r < 0)
		return (int)preload_ret(r);
	if (flags & ~valid_flags)
		return (int)preload_ret(-EINVAL);
	if (preload_files_private())
		return (int)preload_ret(change_name(name, c));
	r = preload_backing_path(name, bpath, sizeof(bpath));
	if (!r)
		r = change_backing(bpath, flags, c);
	if (!r)
		sync_cached(bpath, flags, name, c);
	return (int)preload_ret(r);
}

/* ---- mode ---- */

PRELOAD_API int fchmod(int fd, mode_t mode)
{
	struct change c = { .kind = CHANGE_MODE, .mode = mode };
	int r = change_fd(fd, &c, false);

	return r != NOT_OURS ? r : REAL(fchmod)(fd, mode);
}

static int chmod_common(int dirfd, const char *path, mode_t mode, int flags)
{
	struct change c = { .kind = CHANGE_MODE, .mode = mode };

	return path_common(dirfd, path, flags, AT_SYMLINK_NOFOLLOW, &c, NULL,
			   NULL);
}

PRELOAD_API int chmod(const char *path, mode_t mode)
{
	int r = chmod_common(AT_FDCWD, path, mode, 0);

	return r != NOT_OURS ? r : REAL(chmod)(path, mode);
}

PRELOAD_API int lchmod(const char *path, mode_t mode)
{
	int r = chmod_common(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW);

	return r != NOT_OURS ? r : REAL(lchmod)(path, mode);
}

PRELOAD_API int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	int r = chmod_common(dirfd, path, mode, flags);

	return r != NOT_OURS ? r : REAL(fchmodat)(dirfd, path, mode, flags);
}

/* ---- owner ---- */

PRELOAD_API int fchown(int fd, uid_t uid, gid_t gid)
{
	struct change c = { .kind = CHANGE_OWNER, .uid = uid, .gid = gid };
	int r = change_fd(fd, &c, false);

	return r != NOT_OURS ? r : REAL(fchown)(fd, uid, gid);
}

static int chown_common(int dirfd, const char *path, uid_t uid, gid_t gid,
			int flags)
{
	struct change c = { .kind = CHANGE_OWNER, .uid = uid, .gid = gid };

	return path_common(dirfd, path, flags,
			   AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH, &c, NULL, NULL);
}

PRELOAD_API int chown(const char *path, uid_t uid, gid_t gid)
{
	int r = chown_common(AT_FDCWD, path, uid, gid, 0);

	return r != NOT_OURS ? r : REAL(chown)(path, uid, gid);
}

PRELOAD_API int lchown(const char *path, uid_t uid, gid_t gid)
{
	int r = chown_common(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);

	return r != NOT_OURS ? r : REAL(lchown)(path, uid, gid);
}

PRELOAD_API int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid,
			 int flags)
{
	int r = chown_common(dirfd, path, uid, gid, flags);

	return r != NOT_OURS ? r :
		REAL(fchownat)(dirfd, path, uid, gid, flags);
}

/* ---- times ---- */

/* The program's timespec[2] (NULL: both now), read without faulting. */
static int fill_timespec(struct change *c, const void *arg)
{
	const struct timespec *ts = arg;
	int k;

	if (!ts) {
		c->times[0].tv_nsec = c->times[1].tv_nsec = UTIME_NOW;
		return 0;
	}
	if (preload_copy_in(c->times, ts, sizeof(c->times)))
		return -EFAULT;
	for (k = 0; k < 2; k++)
		if (c->times[k].tv_nsec != UTIME_NOW &&
		    c->times[k].tv_nsec != UTIME_OMIT &&
		    (c->times[k].tv_nsec < 0 || c->times[k].tv_nsec >= 1000000000))
			return -EINVAL;
	return 0;
}

/* The program's timeval[2] (NULL: both now), as utimes(2) checks it. */
static int fill_timeval(struct change *c, const void *arg)
{
	const struct timeval *tv = arg;
	struct timeval t[2];
	int k;

	if (!tv)
		return fill_timespec(c, NULL);
	if (preload_copy_in(t, tv, sizeof(t)))
		return -EFAULT;
	for (k = 0; k < 2; k++) {
		if (t[k].tv_usec < 0 || t[k].tv_usec >= 1000000)
			return -EINVAL;
		c->times[k].tv_sec = t[k].tv_sec;
		c->times[k].tv_nsec = t[k].tv_usec * 1000;
	}
	return 0;
}

static int fill_utimbuf(struct change *c, const void *arg)
{
	const struct utimbuf *ub = arg;
	struct utimbuf b;

	if (!ub)
		return fill_timespec(c, NULL);
	if (preload_copy_in(&b, ub, sizeof(b)))
		return -EFAULT;
	c->times[0] = (struct timespec){ .tv_sec = b.actime };
	c->times[1] = (struct timespec){ .tv_sec = b.modtime };
	return 0;
}

/* A descriptor's times from @arg, read by @fill (EFAULT before EBADF). */
static int times_fd(int fd, fill_fn fill, const void *arg)
{
	struct change c = { .kind = CHANGE_TIMES };
	int err;

	if (!fd_ours(fd))
		return NOT_OURS;
	err = fill(&c, arg);
	if (err)
		return (int)preload_ret(err);
	return change_fd(fd, &c, false);
}

static int times_path(int dirfd, const char *path, int flags, int valid_flags,
		      fill_fn fill, const void *arg)
{
	struct change c = { .kind = CHANGE_TIMES };

	return path_common(dirfd, path, flags, valid_flags, &c, fill, arg);
}

PRELOAD_API int futimens(int fd, const struct timespec times[2])
{
	int r = times_fd(fd, fill_timespec, times);

	return r != NOT_OURS ? r : REAL(futimens)(fd, times);
}

PRELOAD_API int futimes(int fd, const struct timeval tv[2])
{
	int r = times_fd(fd, fill_timeval, tv);

	return r != NOT_OURS ? r : REAL(futimes)(fd, tv);
}

PRELOAD_API int utimensat(int dirfd, const char *path,
			  const struct timespec times[2], int flags)
{
	int r = NOT_OURS;

	/* NULL: glibc's EINVAL (futimens is that call). */
	if (preload_nonnull(path))
		r = times_path(dirfd, path, flags,
			       AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH,
			       fill_timespec, times);
	return r != NOT_OURS ? r : REAL(utimensat)(dirfd, path, times, flags);
}

PRELOAD_API int utimes(const char *path, const struct timeval tv[2])
{
	int r = times_path(AT_FDCWD, path, 0, 0, fill_timeval, tv);

	return r != NOT_OURS ? r : REAL(utimes)(path, tv);
}

PRELOAD_API int lutimes(const char *path, const struct timeval tv[2])
{
	int r = times_path(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW,
			   AT_SYMLINK_NOFOLLOW, fill_timeval, tv);

	return r != NOT_OURS ? r : REAL(lutimes)(path, tv);
}

/* futimesat: a NULL path is the descriptor itself, as futimes. */
PRELOAD_API int futimesat(int dirfd, const char *path,
			  const struct timeval tv[2])
{
	int r = path ? times_path(dirfd, path, 0, 0, fill_timeval, tv) :
		times_fd(dirfd, fill_timeval, tv);

	return r != NOT_OURS ? r : REAL(futimesat)(dirfd, path, tv);
}

PRELOAD_API int utime(const char *path, const struct utimbuf *times)
{
	int r = times_path(AT_FDCWD, path, 0, 0, fill_utimbuf, times);

	return r != NOT_OURS ? r : REAL(utime)(path, times);
}
