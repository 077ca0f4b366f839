/*
 * fuse.h - pcache-fuse's internal interface (docs/fuse.md).
 *
 * pcache-fuse BACKING_DIR MOUNTPOINT serves BACKING_DIR through one pcache
 * with the "dir" backend, using libfuse's high-level (path based) API and
 * its multi-threaded loop.  Its files:
 *
 *	fuse.c		main: options, the cache's life (init/destroy), open files
 *	fuse_file.c	file data through pcache: open, create, read, write,
 *			truncate, fsync, fallocate, release; getattr
 *	fuse_ns.c	the namespace, on the backing directory with *at()
 *			calls: mkdir, rmdir, readdir, symlink, readlink, link,
 *			unlink, rename, chmod, chown, utimens, statfs
 *
 * THE KERNEL'S PAGE CACHE.  Files are opened without direct_io, with
 * keep_cache and auto_cache off and the writeback cache off.  The kernel's
 * page cache then sits in front of pcache as a write-through cache: every
 * write(2) reaches pcache before it returns, and stores through a shared
 * mapping reach it when the kernel writes the page back (msync, munmap,
 * fsync, or its own writeback).  The two stay coherent because pcache is
 * reached only through the mount (the backing directory must not be
 * changed behind its back, as for any pcache dir backend), and an open
 * drops the kernel's cached pages of the file.  direct_io for every file
 * would take the kernel's cache out of the way, but then a shared mmap of
 * a file on the mount fails (ENODEV): FUSE_DIRECT_IO_ALLOW_MMAP needs libfuse 3.16, and
 * Debian's is 3.14.
 *
 * O_DIRECT opens are not given direct_io either: the kernel serves them
 * through its own direct I/O path (fuse_direct_IO), which writes back and
 * invalidates the kernel's cached pages of the range around each request,
 * and sends the bytes to us unaligned as they came: pcache needs no
 * alignment.
 *
 * OPEN FILES.  fi->fh points at a struct pcache_fuse_file holding the
 * pcache descriptor.  All of them are on a list, so that destroy (after an
 * unmount that left files open, e.g. SIGTERM or a lazy unmount) can close
 * them before pcache_destroy writes everything back.
 *
 * LOCKING.  pcache is thread-safe; pf->files_lock guards only the list of
 * open files, and pf->rename_lock makes RENAME_NOREPLACE's check-then-rename
 * atomic with respect to other renames on the mount.
 */
#ifndef PCACHE_FUSE_H
#define PCACHE_FUSE_H

#define FUSE_USE_VERSION 35
#include <fuse.h>
#include <pthread.h>
#include <stdbool.h>

#include "pcache.h"

struct pcache_fuse_file {
	int pfd;			/* the pcache descriptor */
	struct pcache_fuse_file *prev, *next;	/* on pf->files */
};

struct pcache_fuse {
	const char *backing;		/* absolute path of BACKING_DIR */
	int rootfd;			/* O_DIRECTORY descriptor of it */
	struct pcache_config cfg;
	struct pcache *pc;		/* made by init, freed by destroy */
	int exit_status;		/* non-zero if the cache could not be made or written back */
	pthread_mutex_t files_lock;
	struct pcache_fuse_file files;	/* list head */
	pthread_mutex_t rename_lock;
};

/* The mount's state, from the calling request's context. */
static inline struct pcache_fuse *pcache_fuse(void)
{
	return fuse_get_context()->private_data;
}

/* A FUSE path ("/a/b") as a name relative to the backing directory ("a/b"; "/" is "."). */
static inline const char *pcache_fuse_rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

struct pcache_fuse_file *pcache_fuse_file_add(struct pcache_fuse *pf, int pfd);
void pcache_fuse_file_del(struct pcache_fuse *pf, struct pcache_fuse_file *file);
void pcache_fuse_chown_new(struct pcache_fuse *pf, const char *rel);

/*
 * The operations; fuse.c's one const table names them.  Each returns 0, a
 * byte count, or a negative errno, as libfuse expects.
 */
/* fuse_file.c */
int pcache_fuse_getattr(const char *path, struct stat *st, struct fuse_file_info *fi);
int pcache_fuse_open(const char *path, struct fuse_file_info *fi);
int pcache_fuse_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int pcache_fuse_read(const char *path, char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi);
int pcache_fuse_write(const char *path, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi);
int pcache_fuse_truncate(const char *path, off_t size, struct fuse_file_info *fi);
int pcache_fuse_flush(const char *path, struct fuse_file_info *fi);
int pcache_fuse_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int pcache_fuse_release(const char *path, struct fuse_file_info *fi);
int pcache_fuse_fallocate(const char *path, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi);
/* fuse_ns.c */
int pcache_fuse_mkdir(const char *path, mode_t mode);
int pcache_fuse_rmdir(const char *path);
int pcache_fuse_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			off_t off, struct fuse_file_info *fi,
			enum fuse_readdir_flags flags);
int pcache_fuse_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi);
int pcache_fuse_symlink(const char *target, const char *path);
int pcache_fuse_readlink(const char *path, char *buf, size_t size);
int pcache_fuse_link(const char *from, const char *to);
int pcache_fuse_unlink(const char *path);
int pcache_fuse_rename(const char *from, const char *to, unsigned int flags);
int pcache_fuse_chmod(const char *path, mode_t mode, struct fuse_file_info *fi);
int pcache_fuse_chown(const char *path, uid_t uid, gid_t gid,
		      struct fuse_file_info *fi);
int pcache_fuse_utimens(const char *path, const struct timespec tv[2],
			struct fuse_file_info *fi);
int pcache_fuse_statfs(const char *path, struct statvfs *st);

#endif /* PCACHE_FUSE_H */
