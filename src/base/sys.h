/*
 * sys.h - the system calls pcache makes, behind a replaceable table, so a
 * test can make the Nth memfd_create, fallocate or mmap fail (STYLE §8).
 * Every call returns what the libc call returns (-1 with errno set, or
 * MAP_FAILED); sys_err() turns that into a negative errno.
 */
#ifndef PCACHE_SYS_H
#define PCACHE_SYS_H

#include <sys/types.h>
#include <sys/uio.h>

struct sys_ops {
	int (*memfd_create)(const char *name, unsigned int flags);
	int (*ftruncate)(int fd, off_t length);
	int (*fallocate)(int fd, int mode, off_t offset, off_t len);
	void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd,
		      off_t off);
	int (*munmap)(void *addr, size_t len);
	int (*close)(int fd);
	ssize_t (*pread)(int fd, void *buf, size_t count, off_t off);
	ssize_t (*preadv)(int fd, const struct iovec *iov, int iovcnt, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t count, off_t off);
	ssize_t (*pwritev)(int fd, const struct iovec *iov, int iovcnt, off_t off);
	int (*fsync)(int fd);
	int (*fdatasync)(int fd);
};

/* The table in use; tests may swap entries and must restore them. */
extern struct sys_ops sys;
/* The real system calls, for restoring. */
extern const struct sys_ops sys_default;

/* -errno of the last failed call (never 0). */
int sys_err(void);

#endif /* PCACHE_SYS_H */
