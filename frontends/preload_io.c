/*
 * preload_io.c - the calls that take a descriptor: read and write in all
 * their shapes, lseek, ftruncate, fsync, fstat, close, dup, fcntl, and the
 * calls that must not reach the kernel with one of our numbers (ioctl,
 * copy_file_range, sendfile, fadvise, fallocate).  fchmod, fchown,
 * futimens and futimes are pcache_fchmod, pcache_fchown and
 * pcache_futimens, in preload_attr.c with the path calls of their kind.
 *
 * A number that is not ours goes to the next definition of the same
 * symbol.  A number that is ours is served by the pcache descriptor behind
 * it; pcache's negative errno becomes -1 and errno, so a write from a
 * PROT_NONE buffer gives EFAULT as the kernel does.
 *
 * What the cache cannot do is refused with the error a file system
 * without the feature gives, so programs take their usual fallback:
 *	copy_file_range		EXDEV (cp, cat fall back to read/write)
 *	sendfile		EINVAL
 *	ioctl			ENOTTY (FIOCLEX and FIONCLEX work)
 *	fallocate		EOPNOTSUPP, except mode 0 (extends the size;
 *				the cache reserves no space) and KEEP_SIZE alone
 *	(F_SETFL changing O_APPEND goes to pcache_set_append)
 *	F_OFD_* locks		EINVAL
 * POSIX record locks (F_SETLK, F_SETLKW, F_GETLK) are granted without
 * a lock table when no other process can open the file (the memory
 * backend): the locks of one process never conflict with each other.
 * With the dir backend they are the kernel's own locks on the backing file:
 * the descriptor number is an open of it (preload_ns.c).
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preload.h"

/* Not in the headers without _FORTIFY_SOURCE. */
ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen);
ssize_t __pread_chk(int fd, void *buf, size_t count, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t count, off64_t off,
		      size_t buflen);
void __chk_fail(void) __attribute__((noreturn));
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int close_range(unsigned int first, unsigned int last, int flags);
void closefrom(int lowfd);
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC	(1U << 2)
#endif

/* The pcache descriptor for I/O through @file, or a negative errno. */
static int io_pfd(const struct preload_file *file)
{
	if (file->path_only)
		return -EBADF;
	return preload_file_pfd(file);
}

/*
 * FILE_CALL(fd, real_call, expr): if @fd is ours, evaluate @expr with
 * `pfd` the pcache descriptor (or its error) and `file` the file, and
 * return it as libc would; otherwise return @real_call.
 */
#define FILE_CALL(fd, real_call, expr) do {				\
	struct preload_file *file = preload_fd_get(fd);		\
	long pfd, ret_;							\
									\
	if (!file)							\
		return real_call;					\
	pfd = io_pfd(file);						\
	ret_ = pfd < 0 ? pfd : (long)(expr);				\
	preload_file_put(file);						\
	return preload_ret(ret_);					\
} while (0)

PRELOAD_API ssize_t read(int fd, void *buf, size_t count)
{
	FILE_CALL(fd, REAL(read)(fd, buf, count), pcache_read(pfd, buf, count));
}

PRELOAD_API ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	if (count > buflen)
		__chk_fail();
	return read(fd, buf, count);
}

PRELOAD_API ssize_t write(int fd, const void *buf, size_t count)
{
	FILE_CALL(fd, REAL(write)(fd, buf, count),
		  pcache_write(pfd, buf, count));
}

PRELOAD_API ssize_t pread(int fd, void *buf, size_t count, off_t off)
{
	FILE_CALL(fd, REAL(pread)(fd, buf, count, off),
		  pcache_pread(pfd, buf, count, off));
}

PRELOAD_API ssize_t pread64(int fd, void *buf, size_t count, off64_t off)
{
	FILE_CALL(fd, REAL(pread64)(fd, buf, count, off),
		  pcache_pread(pfd, buf, count, off));
}

PRELOAD_API ssize_t __pread_chk(int fd, void *buf, size_t count, off_t off,
				size_t buflen)
{
	if (count > buflen)
		__chk_fail();
	return pread(fd, buf, count, off);
}

PRELOAD_API ssize_t __pread64_chk(int fd, void *buf, size_t count, off64_t off,
				  size_t buflen)
{
	if (count > buflen)
		__chk_fail();
	return pread64(fd, buf, count, off);
}

PRELOAD_API ssize_t pwrite(int fd, const void *buf, size_t count, off_t off)
{
	FILE_CALL(fd, REAL(pwrite)(fd, buf, count, off),
		  pcache_pwrite(pfd, buf, count, off));
}

PRELOAD_API ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t off)
{
	FILE_CALL(fd, REAL(pwrite64)(fd, buf, count, off),
		  pcache_pwrite(pfd, buf, count, off));
}

PRELOAD_API ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	FILE_CALL(fd, REAL(readv)(fd, iov, iovcnt),
		  pcache_readv(pfd, iov, iovcnt));
}

PRELOAD_API ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	FILE_CALL(fd, REAL(writev)(fd, iov, iovcnt),
		  pcache_writev(pfd, iov, iovcnt));
}

PRELOAD_API ssize_t preadv(int fd, const struct iovec *iov, int iovcnt,
			   off_t off)
{
	FILE_CALL(fd, REAL(preadv)(fd, iov, iovcnt, off),
		  pcache_preadv(pfd, iov, iovcnt, off));
}

PRELOAD_API ssize_t preadv64(int fd, const struct iovec *iov, int iovcnt,
			     off64_t off)
{
	FILE_CALL(fd, REAL(preadv64)(fd, iov, iovcnt, off),
		  pcache_preadv(pfd, iov, iovcnt, off));
}

PRELOAD_API ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt,
			    off_t off)
{
	FILE_CALL(fd, REAL(pwritev)(fd, iov, iovcnt, off),
		  pcache_pwritev(pfd, iov, iovcnt, off));
}

PRELOAD_API ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt,
			      off64_t off)
{
	FILE_CALL(fd, REAL(pwritev64)(fd, iov, iovcnt, off),
		  pcache_pwritev(pfd, iov, iovcnt, off));
}

/*
 * preadv2/pwritev2: offset -1 is the file position.  RWF_HIPRI is a hint;
 * RWF_DSYNC/RWF_SYNC sync the file after the write, as O_DSYNC/O_SYNC
 * would; RWF_NOWAIT, RWF_APPEND and unknown flags: EOPNOTSUPP.
 */
static long rw2(int pfd, const struct iovec *iov, int iovcnt, off_t off,
		int flags, bool write)
{
	long ret;
	int err;

	if (flags & ~(RWF_HIPRI | RWF_DSYNC | RWF_SYNC))
		return -EOPNOTSUPP;
	if (!write)
		return off == -1 ? pcache_readv(pfd, iov, iovcnt) :
			pcache_preadv(pfd, iov, iovcnt, off);
	ret = off == -1 ? pcache_writev(pfd, iov, iovcnt) :
		pcache_pwritev(pfd, iov, iovcnt, off);
	if (ret > 0 && (flags & (RWF_DSYNC | RWF_SYNC))) {
		err = flags & RWF_SYNC ? pcache_fsync(pfd) : pcache_fdatasync(pfd);
		if (err < 0)
			return err;
	}
	return ret;
}

PRELOAD_API ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt,
			    off_t off, int flags)
{
	FILE_CALL(fd, REAL(preadv2)(fd, iov, iovcnt, off, flags),
		  rw2(pfd, iov, iovcnt, off, flags, false));
}

PRELOAD_API ssize_t preadv64v2(int fd, const struct iovec *iov, int iovcnt,
			       off64_t off, int flags)
{
	FILE_CALL(fd, REAL(preadv64v2)(fd, iov, iovcnt, off, flags),
		  rw2(pfd, iov, iovcnt, off, flags, false));
}

PRELOAD_API ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt,
			     off_t off, int flags)
{
	FILE_CALL(fd, REAL(pwritev2)(fd, iov, iovcnt, off, flags),
		  rw2(pfd, iov, iovcnt, off, flags, true));
}

PRELOAD_API ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt,
				off64_t off, int flags)
{
	FILE_CALL(fd, REAL(pwritev64v2)(fd, iov, iovcnt, off, flags),
		  rw2(pfd, iov, iovcnt, off, flags, true));
}

PRELOAD_API off_t lseek(int fd, off_t off, int whence)
{
	FILE_CALL(fd, REAL(lseek)(fd, off, whence),
		  pcache_lseek(pfd, off, whence));
}

PRELOAD_API off64_t lseek64(int fd, off64_t off, int whence)
{
	FILE_CALL(fd, REAL(lseek64)(fd, off, whence),
		  pcache_lseek(pfd, off, whence));
}

PRELOAD_API int ftruncate(int fd, off_t length)
{
	FILE_CALL(fd, REAL(ftruncate)(fd, length),
		  pcache_ftruncate(pfd, length));
}

PRELOAD_API int ftruncate64(int fd, off64_t length)
{
	FILE_CALL(fd, REAL(ftruncate64)(fd, length),
		  pcache_ftruncate(pfd, length));
}

PRELOAD_API int fsync(int fd)
{
	FILE_CALL(fd, REAL(fsync)(fd), pcache_fsync(pfd));
}

PRELOAD_API int fdatasync(int fd)
{
	FILE_CALL(fd, REAL(fdatasync)(fd), pcache_fdatasync(pfd));
}

/* fstat works on O_PATH descriptors too. */
static long file_fstat(struct preload_file *file, struct stat *st)
{
	int pfd = preload_file_pfd(file);

	return pfd < 0 ? pfd : pcache_fstat(pfd, st);
}

#define STAT_CALL(fd, real_call, st) do {				\
	struct preload_file *file = preload_fd_get(fd);		\
	long ret_;							\
									\
	if (!file)							\
		return real_call;					\
	ret_ = file_fstat(file, (struct stat *)(st));			\
	preload_file_put(file);						\
	return (int)preload_ret(ret_);					\
} while (0)

PRELOAD_API int fstat(int fd, struct stat *st)
{
	STAT_CALL(fd, REAL(fstat)(fd, st), st);
}

PRELOAD_API int fstat64(int fd, struct stat64 *st)
{
	STAT_CALL(fd, REAL(fstat64)(fd, st), st);
}

PRELOAD_API int __fxstat(int ver, int fd, struct stat *st)
{
	if (ver != 0 && ver != 1)
		return REAL(__fxstat)(ver, fd, st);
	STAT_CALL(fd, REAL(__fxstat)(ver, fd, st), st);
}

PRELOAD_API int __fxstat64(int ver, int fd, struct stat64 *st)
{
	if (ver != 0 && ver != 1)
		return REAL(__fxstat64)(ver, fd, st);
	STAT_CALL(fd, REAL(__fxstat64)(ver, fd, st), st);
}

/*
 * close: forget the number, then close the real descriptor.  A second
 * close finds nothing in the table and gets the kernel's EBADF.
 */
PRELOAD_API int close(int fd)
{
	struct preload_file *file = preload_fd_remove(fd);
	int ret;

	if (!file)
		return REAL(close)(fd);
	ret = REAL(close)(fd);
	preload_file_put(file);
	return ret;
}

PRELOAD_API int close_range(unsigned int first, unsigned int last, int flags)
{
	if (first <= last) {
		if (flags & CLOSE_RANGE_CLOEXEC)
			preload_fd_cloexec_range(first, last);
		else
			preload_fd_remove_range(first, last);
	}
	return REAL(close_range)(first, last, flags);
}

PRELOAD_API void closefrom(int lowfd)
{
	if (lowfd >= 0)
		preload_fd_remove_range((unsigned int)lowfd, ~0u);
	REAL(closefrom)(lowfd);
}

/* Give @file a new real number >= @minfd (F_DUPFD semantics). */
static int dup_file(int fd, struct preload_file *file, int minfd, bool cloexec)
{
	int newfd = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, minfd);
	int err;

	if (newfd < 0)
		return -errno;
	err = preload_fd_install(newfd, file, cloexec);
	if (err < 0) {
		REAL(close)(newfd);
		return err;
	}
	return newfd;
}

PRELOAD_API int dup(int fd)
{
	struct preload_file *file = preload_fd_get(fd);
	int ret;

	if (!file)
		return REAL(dup)(fd);
	ret = dup_file(fd, file, 0, false);
	preload_file_put(file);
	return (int)preload_ret(ret);
}

/*
 * dup2/dup3: the real dup and the table update happen under the table
 * lock, so @newfd never names the old file's slot with the new file's
 * descriptor (or the reverse).  Whatever @newfd was is released.
 */
static int dup3_common(int oldfd, int newfd, int flags, bool is_dup2)
{
	struct preload_file *file, *old = NULL;
	int ret, err = 0;

	file = preload_fd_get(oldfd);
	if (!file && !preload_fd_maybe(newfd))
		return is_dup2 ? REAL(dup2)(oldfd, newfd) :
			REAL(dup3)(oldfd, newfd, flags);
	if (oldfd == newfd) {
		if (file)
			preload_file_put(file);
		if (is_dup2)
			return file ? newfd : REAL(dup2)(oldfd, newfd);
		errno = EINVAL;
		return -1;
	}
	preload_fd_lock();
	/* Our numbers are always close-on-exec underneath. */
	ret = file ? REAL(dup3)(oldfd, newfd, O_CLOEXEC | (flags & ~O_CLOEXEC)) :
		is_dup2 ? REAL(dup2)(oldfd, newfd) :
		REAL(dup3)(oldfd, newfd, flags);
	if (ret >= 0) {
		if (file)
			err = __preload_fd_install(newfd, file,
						   flags & O_CLOEXEC, &old);
		else
			old = __preload_fd_remove(newfd);
	}
	preload_fd_unlock();
	if (old)
		preload_file_put(old);
	if (file)
		preload_file_put(file);
	if (err < 0) {
		REAL(close)(newfd);
		return (int)preload_ret(err);
	}
	return ret;
}

PRELOAD_API int dup2(int oldfd, int newfd)
{
	return dup3_common(oldfd, newfd, 0, true);
}

PRELOAD_API int dup3(int oldfd, int newfd, int flags)
{
	return dup3_common(oldfd, newfd, flags, false);
}

#define SETFL_FLAGS (O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK)

static long setfl(struct preload_file *file, int flags)
{
	int old = __atomic_load_n(&file->flags, __ATOMIC_RELAXED), new;

	if ((old ^ flags) & O_APPEND) {
		int err = pcache_set_append(preload_file_pfd(file),
					    flags & O_APPEND);

		if (err)
			return err;
	}
	do {
		new = (old & ~SETFL_FLAGS) | (flags & SETFL_FLAGS);
	} while (!__atomic_compare_exchange_n(&file->flags, &old, new, false,
					      __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return 0;
}

/* POSIX record locks; see the comment at the top. */
static long record_lock(int fd, struct preload_file *file, int cmd,
			struct flock *fl)
{
	int acc = file->flags & O_ACCMODE;

	if (!fl)
		return -EFAULT;
	if (!preload_files_private()) {
		long ret;

		if (file->path_only)
			return -EBADF;
		ret = REAL(fcntl)(fd, cmd, fl);
		return ret < 0 ? -errno : ret;
	}
	switch (fl->l_type) {
	case F_RDLCK:
		if (cmd != F_GETLK && (acc == O_WRONLY || file->path_only))
			return -EBADF;
		break;
	case F_WRLCK:
		if (cmd != F_GETLK && (acc == O_RDONLY || file->path_only))
			return -EBADF;
		break;
	case F_UNLCK:
		break;
	default:
		return -EINVAL;
	}
	if (cmd == F_GETLK)
		fl->l_type = F_UNLCK;
	return 0;
}

static long fcntl_file(int fd, struct preload_file *file, int cmd, void *arg)
{
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return dup_file(fd, file, (int)(intptr_t)arg,
				cmd == F_DUPFD_CLOEXEC);
	case F_GETFD:
		return preload_fd_getfd(fd);
	case F_SETFD:
		return preload_fd_setfd(fd, (int)(intptr_t)arg);
	case F_GETFL:
		return __atomic_load_n(&file->flags, __ATOMIC_RELAXED);
	case F_SETFL:
		return file->path_only ? -EBADF :
			setfl(file, (int)(intptr_t)arg);
	case F_GETLK:
	case F_SETLK:
	case F_SETLKW:
		return record_lock(fd, file, cmd, arg);
	default:
		/* Leases, owners, signals, seals, pipe sizes, OFD locks. */
		return -EINVAL;
	}
}

#define FCNTL_ARG(cmd) ({						\
	va_list ap;							\
	void *a_;							\
	va_start(ap, cmd);						\
	a_ = va_arg(ap, void *);					\
	va_end(ap);							\
	a_;								\
})

PRELOAD_API int fcntl(int fd, int cmd, ...)
{
	void *arg = FCNTL_ARG(cmd);
	struct preload_file *file = preload_fd_get(fd);
	long ret;

	if (!file)
		return REAL(fcntl)(fd, cmd, arg);
	ret = fcntl_file(fd, file, cmd, arg);
	preload_file_put(file);
	return (int)preload_ret(ret);
}

PRELOAD_API int fcntl64(int fd, int cmd, ...)
{
	void *arg = FCNTL_ARG(cmd);
	struct preload_file *file = preload_fd_get(fd);
	long ret;

	if (!file)
		return REAL(fcntl64)(fd, cmd, arg);
	ret = fcntl_file(fd, file, cmd, arg);
	preload_file_put(file);
	return (int)preload_ret(ret);
}

PRELOAD_API int ioctl(int fd, unsigned long req, ...)
{
	void *arg = FCNTL_ARG(req);
	struct preload_file *file = preload_fd_get(fd);
	long ret = -ENOTTY;

	if (!file)
		return REAL(ioctl)(fd, req, arg);
	if (req == FIOCLEX || req == FIONCLEX)
		ret = preload_fd_setfd(fd, req == FIOCLEX ? FD_CLOEXEC : 0);
	preload_file_put(file);
	return (int)preload_ret(ret);
}

/* Is either descriptor ours?  (For the calls we refuse.) */
static bool either_ours(int a, int b)
{
	struct preload_file *file;

	if ((file = preload_fd_get(a)) || (file = preload_fd_get(b))) {
		preload_file_put(file);
		return true;
	}
	return false;
}

PRELOAD_API ssize_t copy_file_range(int fd_in, off64_t *off_in, int fd_out,
				    off64_t *off_out, size_t len,
				    unsigned int flags)
{
	if (either_ours(fd_in, fd_out))
		return preload_ret(-EXDEV);
	return REAL(copy_file_range)(fd_in, off_in, fd_out, off_out, len, flags);
}

PRELOAD_API ssize_t sendfile(int out_fd, int in_fd, off_t *off, size_t count)
{
	if (either_ours(in_fd, out_fd))
		return preload_ret(-EINVAL);
	return REAL(sendfile)(out_fd, in_fd, off, count);
}

PRELOAD_API ssize_t sendfile64(int out_fd, int in_fd, off64_t *off,
			       size_t count)
{
	if (either_ours(in_fd, out_fd))
		return preload_ret(-EINVAL);
	return REAL(sendfile64)(out_fd, in_fd, off, count);
}

/* posix_fadvise returns the error number; advice is only advice. */
static int fadvise_file(struct preload_file *file, off_t len, int advice)
{
	if (file->path_only)
		return EBADF;
	if (len < 0 || advice < POSIX_FADV_NORMAL || advice > POSIX_FADV_NOREUSE)
		return EINVAL;
	return 0;
}

PRELOAD_API int posix_fadvise(int fd, off_t off, off_t len, int advice)
{
	struct preload_file *file = preload_fd_get(fd);
	int ret;

	if (!file)
		return REAL(posix_fadvise)(fd, off, len, advice);
	ret = fadvise_file(file, len, advice);
	preload_file_put(file);
	return ret;
}

PRELOAD_API int posix_fadvise64(int fd, off64_t off, off64_t len, int advice)
{
	struct preload_file *file = preload_fd_get(fd);
	int ret;

	if (!file)
		return REAL(posix_fadvise64)(fd, off, len, advice);
	ret = fadvise_file(file, len, advice);
	preload_file_put(file);
	return ret;
}

/* fallocate mode 0: the size grows to cover the range; holes read zero. */
static long fallocate_pfd(int pfd, int mode, off_t off, off_t len)
{
	struct stat st;
	long err;

	if (off < 0 || len <= 0)
		return -EINVAL;
	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return -EOPNOTSUPP;
	err = pcache_fstat(pfd, &st);
	if (err < 0)
		return err;
	if (mode & FALLOC_FL_KEEP_SIZE || off + len <= st.st_size)
		return 0;
	return pcache_ftruncate(pfd, off + len);
}

PRELOAD_API int fallocate(int fd, int mode, off_t off, off_t len)
{
	FILE_CALL(fd, REAL(fallocate)(fd, mode, off, len),
		  fallocate_pfd(pfd, mode, off, len));
}

PRELOAD_API int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	FILE_CALL(fd, REAL(fallocate64)(fd, mode, off, len),
		  fallocate_pfd(pfd, mode, off, len));
}

static int posix_fallocate_file(struct preload_file *file, off_t off, off_t len)
{
	int pfd = io_pfd(file);
	long ret = pfd < 0 ? pfd : fallocate_pfd(pfd, 0, off, len);

	return ret == -EOPNOTSUPP ? EINVAL : (int)-ret;
}

PRELOAD_API int posix_fallocate(int fd, off_t off, off_t len)
{
	struct preload_file *file = preload_fd_get(fd);
	int ret;

	if (!file)
		return REAL(posix_fallocate)(fd, off, len);
	ret = posix_fallocate_file(file, off, len);
	preload_file_put(file);
	return ret;
}

PRELOAD_API int posix_fallocate64(int fd, off64_t off, off64_t len)
{
	struct preload_file *file = preload_fd_get(fd);
	int ret;

	if (!file)
		return REAL(posix_fallocate64)(fd, off, len);
	ret = posix_fallocate_file(file, off, len);
	preload_file_put(file);
	return ret;
}
