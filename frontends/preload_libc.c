/*
 * preload_libc.c - libc, for the library objects linked into the shim.
 *
 * The Makefile renames, in a relocatable copy of the library objects,
 * every reference to a symbol in preload.syms: the library's open() becomes
 * preload_libc_open(), defined here as the next definition of open (libc).
 * So the cache never calls the shim's own open, read, mmap...: no
 * recursion, no lock taken twice, and with the "dir" backend its I/O on
 * the backing files is not mistaken for the program's.
 *
 * A library call of an interposed symbol with no trampoline here fails
 * the shim's link (--no-undefined): add one line below.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preload.h"

#define LIBC(ret, name, params, args)					\
	ret preload_libc_##name params;					\
	ret preload_libc_##name params { return REAL(name) args; }

LIBC(ssize_t, read, (int fd, void *buf, size_t n), (fd, buf, n))
LIBC(ssize_t, write, (int fd, const void *buf, size_t n), (fd, buf, n))
LIBC(ssize_t, pread, (int fd, void *buf, size_t n, off_t off),
     (fd, buf, n, off))
LIBC(ssize_t, pwrite, (int fd, const void *buf, size_t n, off_t off),
     (fd, buf, n, off))
LIBC(ssize_t, preadv, (int fd, const struct iovec *iov, int cnt, off_t off),
     (fd, iov, cnt, off))
LIBC(ssize_t, pwritev, (int fd, const struct iovec *iov, int cnt, off_t off),
     (fd, iov, cnt, off))
LIBC(int, close, (int fd), (fd))
LIBC(int, fsync, (int fd), (fd))
LIBC(int, fdatasync, (int fd), (fd))
LIBC(int, ftruncate, (int fd, off_t len), (fd, len))
LIBC(int, fallocate, (int fd, int mode, off_t off, off_t len),
     (fd, mode, off, len))
LIBC(off_t, lseek, (int fd, off_t off, int whence), (fd, off, whence))
LIBC(int, fstat, (int fd, struct stat *st), (fd, st))
LIBC(int, fchmod, (int fd, mode_t mode), (fd, mode))
LIBC(int, fchown, (int fd, uid_t uid, gid_t gid), (fd, uid, gid))
LIBC(int, futimens, (int fd, const struct timespec t[2]), (fd, t))
LIBC(int, fstatat, (int dirfd, const char *path, struct stat *st, int flags),
     (dirfd, path, st, flags))
LIBC(int, stat, (const char *path, struct stat *st), (path, st))
LIBC(int, unlink, (const char *path), (path))
LIBC(int, unlinkat, (int dirfd, const char *path, int flags),
     (dirfd, path, flags))
LIBC(int, rename, (const char *a, const char *b), (a, b))
LIBC(int, linkat, (int da, const char *a, int db, const char *b, int flags),
     (da, a, db, b, flags))
LIBC(int, renameat, (int da, const char *a, int db, const char *b),
     (da, a, db, b))
LIBC(int, dup, (int fd), (fd))
LIBC(void *, mmap, (void *addr, size_t len, int prot, int flags, int fd,
		    off_t off), (addr, len, prot, flags, fd, off))
LIBC(int, munmap, (void *addr, size_t len), (addr, len))
LIBC(int, madvise, (void *addr, size_t len, int advice), (addr, len, advice))
LIBC(int, msync, (void *addr, size_t len, int flags), (addr, len, flags))

/* The variadic ones: the optional argument is passed on as libc reads it. */
int preload_libc_open(const char *path, int flags, ...);
int preload_libc_open(const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = va_arg(ap, int);
	va_end(ap);
	return REAL(open)(path, flags, mode);
}

int preload_libc_openat(int dirfd, const char *path, int flags, ...);
int preload_libc_openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = va_arg(ap, int);
	va_end(ap);
	return REAL(openat)(dirfd, path, flags, mode);
}

int preload_libc_fcntl(int fd, int cmd, ...);
int preload_libc_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return REAL(fcntl)(fd, cmd, arg);
}

int preload_libc_ioctl(int fd, unsigned long req, ...);
int preload_libc_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	return REAL(ioctl)(fd, req, arg);
}
