/*
 * preload.h - the LD_PRELOAD shim's internal interface (docs/preload.md).
 *
 * The shim (build/libpcache-preload.so) puts every file under the
 * directory PCACHE_PRELOAD_DIR into one pcache, for dynamically linked
 * programs that know nothing of pcache.  Its files:
 *
 *	preload.c		set-up: environment, the cache, fork, exit
 *	preload_fdtable.c	descriptor numbers -> pcache files; live views
 *	preload_path.c		which paths are ours, and their pcache names
 *	preload_ns.c		path calls: open, stat, unlink, rename, link, access
 *	preload_io.c		descriptor calls: read, write, lseek, fcntl, dup
 *	preload_attr.c		mode, owner and times: chmod, chown, utimensat
 *	preload_mmap.c		mmap, munmap, msync, madvise
 *	preload_stdio.c		fopen, freopen, fdopen: cookie streams
 *	preload_exec.c		exec, vfork, system, popen, posix_spawn: write back first
 *	preload_libc.c		libc for the library objects inside the shim
 *	preload.syms		the interposed symbols (exports and renames)
 *
 * DESCRIPTORS
 *
 * A pcache file opened through the shim owns a real kernel descriptor: an
 * O_PATH | O_CLOEXEC open of /dev/null, or with a backend of real files
 * an open of the backing file itself, used only for POSIX record locks
 * (preload_open_name).  The program sees that number, so
 * it can never collide with a descriptor the kernel hands out, and dup,
 * dup2, dup3 and F_DUPFD make more real numbers the same way.  The table
 * (preload_fdtable.c) maps a number to a struct preload_file, which holds
 * the pcache descriptor; numbers dup'ed from one another share it, and so
 * share the file position and status flags, like an open file
 * description.  A number the table does not know is passed to libc
 * untouched: that is every descriptor of the program that is not ours,
 * and so a closed or made-up number gets the kernel's own EBADF.
 *
 * If the shim is bypassed (a glibc standard stream moved onto one of our
 * numbers does its I/O inside libc; a program execs), the number behind a
 * pcache file is an O_PATH descriptor: read and write on it fail with
 * EBADF, never silently reach /dev/null.  The real descriptor is always
 * close-on-exec (the table keeps the FD_CLOEXEC the program asked for, for
 * F_GETFD), because a new program image could not reach the pcache file
 * anyway.
 *
 * REFERENCES AND LOCKING
 *
 * A struct preload_file is referenced by each table slot that names it, by
 * each live view of it, and by each call in flight on it.  The last
 * reference closes the pcache descriptor (pcache_close() refuses while a
 * view exists, and a view holds a reference, so it cannot refuse then).
 * Lock order: fdtable lock -> views lock; neither is held across a call
 * into pcache, except pcache_close() from a put with no lock held.
 *
 * RECURSION
 *
 * The library objects are linked into the shim with their libc calls
 * renamed (open -> preload_libc_open, ...; see the Makefile and
 * preload_libc.c), so the cache never re-enters the shim: its own opens,
 * reads of the userfaultfd, mmaps of memfds and, with the "dir" backend,
 * its I/O on backing files go straight to libc.
 */
#ifndef PCACHE_PRELOAD_H
#define PCACHE_PRELOAD_H

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pcache.h"

/* The shim's exported entry points. */
#define PRELOAD_API __attribute__((visibility("default")))

/*
 * REAL(name) - the next definition of libc's @name (dlsym RTLD_NEXT),
 * looked up on first use at each call site.  dlsym may allocate; the
 * shim does not interpose the allocator, so that cannot recurse.
 */
void *preload_dlsym(void **slot, const char *name);
#define REAL(name) ({							\
	static void *slot_;						\
	(__typeof__(&name))preload_dlsym(&slot_, #name);		\
})

/* The result of a pcache call as libc returns it: -1 and errno. */
static inline long preload_ret(long ret)
{
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

/* preload.c */
extern bool preload_enabled;		/* PCACHE_PRELOAD_DIR was set */
void preload_init(void);
const char *preload_dir(void);		/* PCACHE_PRELOAD_DIR, or NULL */
/* No other process can open our files (the memory backend). */
bool preload_files_private(void);
/* The cache, made on first use; NULL with *err set if it cannot be made. */
struct pcache *preload_cache(int *err);
/* Bumped in a fork child: files of an older epoch belong to the parent. */
extern unsigned int preload_epoch;
void preload_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * An exec, fork or spawn is coming: write the cache back if this process
 * has one and it is dirty (preload_exec.c, preload.c's fork handler).
 */
void preload_before_exec(void);

/* preload_fdtable.c */
struct preload_file {
	int pfd;		/* the pcache descriptor */
	unsigned int refs;	/* slots + views + calls in flight (atomic) */
	int flags;		/* status flags, as F_GETFL reports them */
	unsigned int epoch;	/* preload_epoch when opened */
	bool path_only;		/* O_PATH: no reads, writes or maps */
	char *name;		/* the pcache name it was opened by, or NULL
				 * (freopen(NULL) reopens it; stale after a
				 * rename, as a path held by the program) */
};

struct preload_file *preload_file_new(int pfd, int flags);
void preload_file_get(struct preload_file *file);
void preload_file_put(struct preload_file *file);
/* The pcache descriptor, or -EIO for a file left by a parent process. */
int preload_file_pfd(const struct preload_file *file);

/* A reference to the file behind descriptor @fd, or NULL if not ours. */
struct preload_file *preload_fd_get(int fd);
/* Quick test, no reference: may @fd be ours?  (false: certainly not.) */
bool preload_fd_maybe(int fd);
/*
 * Install @file at the real descriptor @fd (the slot takes a reference)
 * with FD_CLOEXEC @cloexec.  A file already there is released.  Errors:
 * -EMFILE (@fd past the table's PRELOAD_FD_MAX), -ENOMEM.
 */
#define PRELOAD_FD_MAX	(1 << 20)
int preload_fd_install(int fd, struct preload_file *file, bool cloexec);
/* Forget @fd; returns its file (the slot's reference) or NULL. */
struct preload_file *preload_fd_remove(int fd);
int preload_fd_getfd(int fd);			/* FD_CLOEXEC or -EBADF */
int preload_fd_setfd(int fd, int fdflags);	/* 0 or -EBADF */
/* Forget every descriptor in [lo, hi] (close_range). */
void preload_fd_remove_range(unsigned int lo, unsigned int hi);
/* Mark [lo, hi] close-on-exec (close_range CLOSE_RANGE_CLOEXEC). */
void preload_fd_cloexec_range(unsigned int lo, unsigned int hi);
/*
 * The table lock, for dup2/dup3: the real dup and the slot update must be
 * one step, or another thread could see the new number half-made.
 */
void preload_fd_lock(void);
void preload_fd_unlock(void);
/* Caller holds the table lock; a replaced file is returned, not put. */
int __preload_fd_install(int fd, struct preload_file *file, bool cloexec,
			 struct preload_file **old);
struct preload_file *__preload_fd_remove(int fd);
/* Fork: hold the locks across fork(), reset them in the child. */
void preload_fdtable_atfork_prepare(void);
void preload_fdtable_atfork_parent(void);
void preload_fdtable_atfork_child(void);
/* Each live file, with a reference held (for exit).  */
void preload_fd_for_each(void (*fn)(int fd, struct preload_file *file));

/* Views: the pcache mappings the program made through mmap(). */
int preload_view_add(void *addr, size_t len, struct preload_file *file);
/*
 * Take the view that starts at @addr out of the list.  Returns 1 (found,
 * *len and *file filled, the caller now owns the view's reference), 0 (the
 * range touches no view) or -EINVAL (it overlaps a view but is not
 * exactly one: partial unmapping is not supported).
 */
int preload_view_take(void *addr, size_t len, size_t *vlen,
		      struct preload_file **file);
/* Is [addr, addr+len) inside one view?  (No locks held on return.) */
bool preload_view_covers(const void *addr, size_t len);
bool preload_views_any(void);

/* preload_path.c */
/*
 * preload_path - is the file @path (relative to @dirfd, an AT_FDCWD or a
 * real descriptor) under PCACHE_PRELOAD_DIR?  Returns 1 and its pcache
 * name in @name, 0 if it is not ours (including the directory itself),
 * or a negative errno (-EFAULT: @path not readable, -ENAMETOOLONG,
 * -ENOTDIR: @dirfd is a pcache file).
 */
#define PRELOAD_NAME_MAX 4096
int preload_path(int dirfd, const char *path, char *name);
/*
 * Copy @len bytes of the program's @src (times, a timeval) without
 * faulting, as preload_path reads paths: 0 or -EFAULT.
 */
int preload_copy_in(void *dst, const void *src, size_t len);
/*
 * The path of the file the cache calls @name, under the directory as
 * preload_path() matched it (normalised, absolute): what the dir backend
 * opens, whatever spelling the program used.  0 or -ENAMETOOLONG.
 */
int preload_backing_path(const char *name, char *buf, size_t size);

/* preload_ns.c */
/* Open @name in the cache; returns a real descriptor or a negative errno. */
int preload_open_name(const char *name, int flags, mode_t mode);
int preload_stat_name(const char *name, struct stat *st);

/* preload_stdio.c: its list of streams, held across fork() */
void preload_stdio_atfork_prepare(void);
void preload_stdio_atfork_parent(void);
void preload_stdio_atfork_child(void);

#endif /* PCACHE_PRELOAD_H */
