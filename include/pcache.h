/*
 * pcache.h - a page cache in user space.
 *
 * pcache caches files in memory pages and writes them back to a pluggable
 * storage backend.  Its buffered write path follows the Linux kernel's
 * (generic_perform_write: write_begin -> copy -> write_end, page by page).
 *
 * Conventions, for every call below:
 *  - Errors are returned as negative errno values (-EINVAL, -EBADF, ...).
 *    No call sets errno and there is no global error state.
 *  - Calls that move bytes return ssize_t: the bytes moved, or a negative
 *    errno if none were.  Once some bytes have moved, a later error turns
 *    into a short count, exactly as read(2) and write(2) behave.
 *  - Files are named by integer descriptors.  Descriptors are process-wide
 *    (they work without the cache pointer) and carry a 15-bit generation, so
 *    a closed or made-up descriptor gives -EBADF, never a crash, until its
 *    slot has been reused 32767 times.
 *  - A bad buffer (NULL, unmapped, PROT_NONE) gives -EFAULT, or a short
 *    count if some bytes were copied first.  It never kills the process
 *    and never puts zeroes or stale bytes into the cache - under every
 *    write strategy but "naive", which exists to show that bug.
 *  - pcache catches faults in its copies with SIGSEGV/SIGBUS handlers it
 *    installs at the first pcache_create(), chaining to the handlers that
 *    were there before: install yours first.  A thread that blocks SIGSEGV
 *    or SIGBUS cannot have a copy fault caught (the kernel kills the
 *    process), and a view fault refused to it waits for ever: don't block
 *    them in threads that call pcache.
 *
 * All calls are thread-safe, except that pcache_destroy() must not run
 * while other calls use the same cache.
 */
#ifndef PCACHE_H
#define PCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#include <sys/mman.h>

#define PCACHE_VERSION_MAJOR 0
#define PCACHE_VERSION_MINOR 1

/* An opaque cache: one backend, one memory limit, its own files. */
struct pcache;

/*
 * Buffered write strategies (docs/write-path.md).  They differ only in how
 * bytes get from the caller's buffer into a locked page cache page.
 */
enum pcache_write_strategy {
	PCACHE_WRITE_NAIVE = 0,	/* 2.6.20: copy under the page lock, zero-pad on fault */
	PCACHE_WRITE_BOUNCE,	/* the 2007 RFC: copy to a temp page, then lock + memcpy */
	PCACHE_WRITE_BOUNCE_OPT,	/* bounce, skipping the temp copy where safe */
	PCACHE_WRITE_ATOMIC,	/* 2.6.24: fault in, lock, copy with faults disabled */
	PCACHE_WRITE_OPTIMISTIC,	/* 6.14: copy with faults disabled, fault in on no progress */
	PCACHE_WRITE_NR
};

struct pcache_config {
	/* Bytes of page cache the cache may hold.  0: PCACHE_DEFAULT_MEM_LIMIT. */
	uint64_t mem_limit;
	/* Largest file size; writes beyond give -EFBIG.  0: the default. */
	uint64_t max_file_size;
	/*
	 * Backend name: "memory" (the default when NULL); "dir" (files are real
	 * files under the directory backend_arg, written back by a flusher,
	 * evicted under memory pressure; src/backends/dir.c); or "synthetic" (for
	 * tests: files named "pattern-N" exist with N bytes of a known pattern
	 * that is read in page by page; see src/backends/synthetic.c).
	 */
	const char *backend;
	/* Backend argument, e.g. a backing directory; unused by "memory". */
	const char *backend_arg;
	/* One of enum pcache_write_strategy. */
	int write_strategy;
	/*
	 * Views: pages a view fault installs at once (the faulting page and
	 * uptodate neighbours; 1 turns fault-around off; 0: the default, 64;
	 * more than 256 acts as 256), and threads serving view faults (0: the
	 * default, 2; more than 16 acts as 16).
	 */
	unsigned int fault_around_pages;
	unsigned int fault_threads;
	/*
	 * Non-zero: a backend that has a perform_write op (the memory backend
	 * does) takes each write whole, with its own copy loop, instead of the
	 * page-by-page loop of write_strategy.  Off by default.
	 */
	int perform_write;
	/*
	 * The "dir" backend (backend_arg: the backing directory, which must
	 * exist): its block size, 512, 1024, 2048 or 4096 (0: 4096).  Each block
	 * of a page is read, dirtied and written on its own.
	 */
	unsigned int block_size;
	/*
	 * Writeback, for backends with storage ("dir").  Writers that dirty
	 * more than dirty_limit bytes are throttled until writeback catches up
	 * (0: a quarter of mem_limit).  A background flusher writes pages dirty
	 * for longer than dirty_expire_ms (0: 2000), waking every
	 * writeback_interval_ms (0: 200), and everything once dirty memory
	 * passes half of dirty_limit.
	 */
	uint64_t dirty_limit;
	unsigned int dirty_expire_ms;
	unsigned int writeback_interval_ms;
};

/*
 * Fill *cfg with the defaults: memory backend, bounce strategy - or the
 * strategy named by the environment variable PCACHE_WRITE_STRATEGY, if it
 * names one, and perform_write from PCACHE_PERFORM_WRITE=0/1 (how the pcache
 * tools are switched).
 */
void pcache_config_init(struct pcache_config *cfg);

/*
 * pcache_create - make a cache.
 * On success stores the cache in *out and returns 0.
 * Errors: -EINVAL (cfg or out NULL, unknown strategy, max_file_size not a
 * multiple of the page size), -ENOENT (unknown backend), -EOPNOTSUPP
 * (the machine's page size is not 4096), -ENOMEM, or the backend's mount
 * error.
 */
int pcache_create(const struct pcache_config *cfg, struct pcache **out);

/*
 * pcache_destroy - write back everything dirty and free the cache.
 * Errors: -EBUSY if descriptors of this cache are still open (nothing is
 * freed then); -EINVAL for NULL; a writeback error (-EIO, ...) is
 * returned after the cache has been freed.
 */
int pcache_destroy(struct pcache *pc);

/*
 * pcache_open - open (and maybe create) the file @name of the backend's
 * namespace.  @flags: O_RDONLY, O_WRONLY or O_RDWR, plus any of O_CREAT,
 * O_EXCL, O_TRUNC, O_APPEND, O_SYNC, O_DSYNC, O_DIRECTORY; other flags are
 * ignored, as open(2) does.  @mode is used only when creating.
 * The name "" is invalid; "." and "/" name the backend's root directory.
 * Returns a descriptor >= 0.
 * Errors: -EINVAL (NULL pc, bad access mode), -EFAULT (name NULL or not
 * readable),
 * -ENOENT, -EEXIST (O_CREAT|O_EXCL on an existing file), -EISDIR (the root
 * opened for writing), -ENOTDIR (O_DIRECTORY on a file, or a name with a
 * '/' with O_CREAT where the backend has no directories; without O_CREAT such
 * a name is -ENOENT), -EINVAL (O_CREAT | O_DIRECTORY), -ENAMETOOLONG,
 * -EMFILE, -ENOMEM.
 */
int pcache_open(struct pcache *pc, const char *name, int flags, mode_t mode);

/*
 * pcache_close - release a descriptor.  O_SYNC files were synced by each
 * write; close does not sync.  Errors: -EBADF.
 */
int pcache_close(int fd);

/*
 * Reading.  pcache_pread/pcache_preadv read at @offset and leave the file
 * position alone; pcache_read/pcache_readv read at the file position and
 * advance it.  A read at or past end of file returns 0; holes read as
 * zeroes.
 * Errors: -EBADF (bad fd or not open for reading), -EISDIR, -EINVAL
 * (negative offset, more than IOV_MAX segments, a segment whose length is
 * negative as ssize_t), -EFAULT (bad buffer, nothing read), -ENOMEM (more
 * than 8 segments and no memory to copy the array; a page to read into),
 * -ENOSPC (no room in the cache for a page to read into), -EIO (backend).
 * Totals are capped at MAX_RW_COUNT (INT_MAX rounded down to a page).
 */
ssize_t pcache_pread(int fd, void *buf, size_t count, off_t offset);
ssize_t pcache_preadv(int fd, const struct iovec *iov, int iovcnt, off_t offset);
ssize_t pcache_read(int fd, void *buf, size_t count);
ssize_t pcache_readv(int fd, const struct iovec *iov, int iovcnt);

/*
 * Writing.  Same shapes as reading.  With O_APPEND every write goes to the
 * end of file, atomically with respect to other writers, whatever @offset
 * says (as Linux does for pwrite).  With O_SYNC/O_DSYNC the written range
 * is written back before the call returns.
 * Returns the bytes written, which are exactly the bytes the file now holds
 * from this call; a fault in the middle of the source gives a short count.
 * Errors: -EBADF (bad fd or not open for writing), -EINVAL, -EFAULT (bad
 * buffer, nothing written), -EFBIG (offset at or past the configured maximum
 * size or RLIMIT_FSIZE; a write straddling the limit is short instead),
 * -ENOSPC (the memory limit is full of pages that cannot be evicted),
 * -ENOMEM, -EIO.
 */
ssize_t pcache_pwrite(int fd, const void *buf, size_t count, off_t offset);
ssize_t pcache_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset);
ssize_t pcache_write(int fd, const void *buf, size_t count);
ssize_t pcache_writev(int fd, const struct iovec *iov, int iovcnt);

/*
 * pcache_set_write_strategy - the write strategy for later writes through
 * @fd (each open file starts with its cache's).  Errors: -EBADF, -EINVAL.
 */
int pcache_set_write_strategy(int fd, int strategy);

/*
 * pcache_set_append - turn O_APPEND on (@on non-zero) or off for later
 * writes through @fd, as fcntl(F_SETFL) does.  A write in flight keeps
 * the mode it started with.  Errors: -EBADF, -EISDIR (the root).
 */
int pcache_set_append(int fd, int on);

/*
 * pcache_lseek - SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE.
 * Returns the new position.  Errors: -EBADF, -EINVAL (bad whence, a
 * resulting position < 0 or past the maximum file size, a negative offset
 * with SEEK_DATA/SEEK_HOLE), -EOVERFLOW, -ENXIO (SEEK_DATA/SEEK_HOLE at or
 * past end of file, or on the root directory).
 */
off_t pcache_lseek(int fd, off_t offset, int whence);

/*
 * pcache_ftruncate - set the file size.  Shrinking drops the pages past the
 * new end and zeroes the tail of the last partial page; growing leaves a
 * hole that reads as zeroes.
 * Errors: -EBADF, -EINVAL (negative length, or fd not open for writing, as
 * ftruncate(2) reports it), -EFBIG (beyond the maximum size or, when
 * growing, RLIMIT_FSIZE), -EIO.
 */
int pcache_ftruncate(int fd, off_t length);

/*
 * pcache_fsync/pcache_fdatasync - write back the file's dirty pages and
 * sync the backend.  A writeback error is reported once to each open file
 * that has not seen it yet (errseq semantics).  Errors: -EBADF, -EIO, ...
 */
int pcache_fsync(int fd);
int pcache_fdatasync(int fd);

/*
 * pcache_sync - syncfs: write back every dirty page of every file of the
 * cache, open or closed, and sync the backend's files.  Returns 0 or the
 * first error (-EIO, -ENOSPC, ...); errors are also left for each file's
 * next pcache_fsync, as writeback errors always are.  Errors: -EINVAL (NULL).
 */
int pcache_sync(struct pcache *pc);

/*
 * pcache_futimens - set the file's access and modification times, as
 * futimens(2): @times NULL sets both to now; an element's tv_nsec may be
 * UTIME_NOW or UTIME_OMIT.  The change time becomes now.  Backends with
 * storage (dir) give their files the cache's times at writeback and fsync.
 * Errors: -EBADF, -EISDIR (the root), -EFAULT (@times unreadable), -EINVAL
 * (a tv_nsec out of range).
 */
int pcache_futimens(int fd, const struct timespec times[2]);

/*
 * pcache_fchmod - set the file's permission bits, as fchmod(2): the bits
 * of @mode outside 07777 are ignored.  pcache_fchown - set its owner and
 * group, as fchown(2): (uid_t)-1 / (gid_t)-1 leave that one alone; a chown
 * drops S_ISUID (and S_ISGID when S_IXGRP is set).  The change time
 * becomes now.  A backend with storage (dir) changes its file at once, and
 * the kernel decides who may; memory and synthetic keep the owner in the
 * cache and allow what Linux allows (owner or root for chmod; root to give
 * a file away; the owner to change the group to one of its groups).  A file
 * never chowned is shown as the caller's (getuid/getgid).
 * Errors: -EBADF, -EISDIR (the root), -EPERM, or the backend's
 * (dir: fchmod(2)'s and fchown(2)'s, e.g. -EROFS, -EINVAL).
 */
int pcache_fchmod(int fd, mode_t mode);
int pcache_fchown(int fd, uid_t uid, gid_t gid);

/*
 * pcache_fstat - st_size, st_mode, st_blocks, st_nlink, st_uid, st_gid,
 * times.  Errors: -EBADF, -EFAULT.
 */
int pcache_fstat(int fd, struct stat *st);

/*
 * pcache_unlink - remove @name from the namespace.  Open descriptors keep
 * working; the data goes with the last close.
 * Errors: -ENOENT, -EISDIR (the root), -EFAULT (name NULL or not readable),
 * -EINVAL (NULL pc), -ENAMETOOLONG.
 */
int pcache_unlink(struct pcache *pc, const char *name);

/*
 * pcache_rename - rename file @old to @new, atomically replacing @new if it
 * exists (its open descriptors keep working, as after an unlink).  Open
 * descriptors of @old follow the file.  Renaming a file to itself, or to
 * another name of itself, does nothing.
 * On a backend with directories (dir), renaming a directory moves the
 * cached files below it too.
 * Errors: -EINVAL (NULL pc), -EFAULT, -ENOENT, -EBUSY (the root),
 * -ENOTDIR ('/' in @new where the backend has no directories),
 * -ENAMETOOLONG, -EACCES (dir: a ".." component), -ENOMEM, or the backend's
 * error (dir: rename(2)'s, e.g. -EISDIR, -EXDEV).
 */
int pcache_rename(struct pcache *pc, const char *old, const char *new);

/*
 * pcache_link - make @new another name of file @old, as link(2): the two
 * names are one cached file.  On the dir backend the backing file is linked
 * (linkat; symlinks are not followed); on the memory backend both are names
 * in the cache.  Errors: -EINVAL (NULL pc), -EFAULT, -ENOENT, -EEXIST,
 * -EPERM (@old is the root), -EACCES (".."), -ENAMETOOLONG, -ENOMEM, and
 * link(2)'s errors on the dir backend.
 */
int pcache_link(struct pcache *pc, const char *old, const char *new);

/*
 * pcache_stat - stat(2) by name: a cached file's attributes are the
 * cache's (size and times include unwritten data); a name the backend has
 * but the cache does not is stat'ed by the backend (dir: any file type,
 * symlinks not followed).  "" and "/" are the root directory.
 * Errors: -EINVAL (NULL pc), -EFAULT, -ENOENT, -ENAMETOOLONG, -EACCES.
 */
int pcache_stat(struct pcache *pc, const char *name, struct stat *st);

/*
 * pcache_list - call @fn once per file in the backend's namespace, in no
 * particular order.  @fn returns 0 to go on, anything else to stop; that
 * value is then returned.  Errors: -EINVAL (NULL pc or fn), -ENOMEM, or the
 * backend's error.
 */
typedef int (*pcache_list_fn)(void *arg, const char *name, const struct stat *st);
int pcache_list(struct pcache *pc, pcache_list_fn fn, void *arg);

/*
 * Views: mapped files (the views are served by userfaultfd).
 *
 * pcache_mmap - map @length bytes of file @fd from @offset (a multiple of the
 * page size), MAP_SHARED: the view shows the cache's own pages, so writes
 * through pcache_pwrite() appear in every view at once, and stores through a
 * writable view are seen by pcache_pread() and marked dirty.  Pages are
 * mapped on first touch (a fault served by the cache's handler threads,
 * installing up to fault_around_pages uptodate neighbours).  Touching a page
 * wholly past end of file raises SIGBUS in the touching thread, as the
 * kernel does; the rest of the last page reads as zeroes.
 * @prot: PROT_READ or PROT_READ | PROT_WRITE, nothing else (the descriptor
 * must be open for reading, and for writing too if PROT_WRITE).
 * Returns the view's address, or an error pointer: test it with
 * PCACHE_IS_ERR() and get the negative errno with PCACHE_PTR_ERR().
 * Errors: -EBADF, -EACCES (access mode), -EINVAL (length 0, offset not
 * aligned or negative, any other prot), -ENODEV (a directory),
 * -EOVERFLOW (offset + length past the maximum file size), -EOPNOTSUPP (the
 * kernel's userfaultfd lacks what views need), -ENOMEM.
 *
 * A view keeps its descriptor busy: pcache_close() on it, and
 * pcache_destroy() of its cache, give -EBUSY until it is unmapped.
 */
#define PCACHE_IS_ERR(p)	((uintptr_t)(p) >= (uintptr_t)-4095)
#define PCACHE_PTR_ERR(p)	((int)(intptr_t)(p))
void *pcache_mmap(int fd, size_t length, int prot, off_t offset);

/*
 * pcache_munmap - remove a whole view (@addr and @length as pcache_mmap
 * returned and took them; unmapping part of a view is not supported).
 * Dirty data stays in the cache.  Errors: -EINVAL.
 */
int pcache_munmap(void *addr, size_t length);

/*
 * pcache_msync - MS_SYNC: write back the view's dirty pages in the range
 * and sync the backend; MS_ASYNC: write them back without the backend sync.  MS_INVALIDATE is
 * accepted (views are always coherent).  Errors: -EINVAL (bad flags,
 * unaligned addr), -ENOMEM (the range is not inside one view), -EIO.
 */
int pcache_msync(void *addr, size_t length, int flags);

/*
 * pcache_madvise - MADV_DONTNEED zaps the range's page table entries (the
 * data stays in the cache; the next touch faults again).  MADV_NORMAL,
 * MADV_RANDOM, MADV_SEQUENTIAL and MADV_WILLNEED are accepted and do
 * nothing.  Errors: -EINVAL, -ENOMEM (not inside one view).
 */
int pcache_madvise(void *addr, size_t length, int advice);

/*
 * pcache_mlock - populate: make every page of the range present now.  It
 * takes the cache's mm lock for write and runs the fault logic in the
 * calling thread, as 2.6.20's make_pages_present() did under mlock(2).
 * Pages are not pinned: the cache may still evict them.
 * Errors: -EINVAL, -ENOMEM (not inside one view, or part of the range is
 * past end of file), -ENOSPC/-EIO (a page could not be had).
 */
int pcache_mlock(void *addr, size_t length);

struct pcache_strategy_stats {
	uint64_t writes;	/* write calls served by this strategy */
	uint64_t bytes;		/* bytes they wrote */
	uint64_t short_copies;	/* page copies that stopped short on a fault */
	uint64_t retries;	/* page copies retried after a short copy */
	uint64_t fallbacks;	/* chunks that fell back to the bounce copy */
	uint64_t bounce_bytes;	/* bytes that went through a temp page */
};

struct pcache_stats {
	uint64_t pages_cached;	/* pages in the cache now */
	uint64_t pages_dirty;	/* of which dirty */
	uint64_t pages_writeback;	/* of which under writeback */
	uint64_t mem_limit_pages;	/* the limit, in pages */
	uint64_t files_open;	/* open descriptors */
	uint64_t inodes;	/* files in the namespace (unlinked-but-open not counted) */
	uint64_t bytes_written;	/* bytes accepted by writes */
	uint64_t bytes_read;	/* bytes returned by reads */
	uint64_t bytes_copied;	/* bytes moved by the library's copies (both copies of a bounce) */
	uint64_t read_folio_calls;	/* backend page reads */
	uint64_t writeback_pages;	/* pages written back */
	uint64_t perform_write_calls;	/* writes taken whole by a backend's perform_write */
	struct pcache_strategy_stats strategy[PCACHE_WRITE_NR];
	uint64_t views;			/* live views */
	uint64_t view_faults;		/* missing/minor view faults served */
	uint64_t view_wp_faults;	/* write-protect faults (first store to a clean page) */
	uint64_t view_fault_around;	/* extra pages installed around faults */
	uint64_t view_sigbus;		/* faults answered with SIGBUS: past EOF, or no page to be had */
	uint64_t view_refused;		/* faults refused to no-fault copies */
	uint64_t view_populated;	/* pages installed by pcache_mlock */
	uint64_t lockdep_reports;	/* lock validator reports, process-wide (PCACHE_LOCKDEP=1) */
	/* Storage and memory pressure (the "dir" backend). */
	uint64_t backend_reads;		/* preads of backing files */
	uint64_t backend_writes;	/* pwrite/pwritev calls, or io_uring writes */
	uint64_t backend_allocs;	/* fallocate calls (block allocation, punching) */
	uint64_t backend_syncs;		/* fsync/fdatasync calls */
	uint64_t backend_other;		/* lseek (holes), ftruncate, open, unlink */
	uint64_t pages_reclaimed;	/* clean pages evicted to stay under mem_limit */
	uint64_t reclaim_waits;		/* allocations that waited for writeback to free memory */
	uint64_t throttle_waits;	/* writers paused by dirty throttling */
	uint64_t throttle_ns;		/* time they spent paused */
	uint64_t flusher_runs;		/* background writeback passes that wrote pages */
	uint64_t writeback_errors;	/* failed page writes (each reported through errseq) */
};

/* pcache_stats - a snapshot.  Errors: -EINVAL (NULL). */
int pcache_stats(struct pcache *pc, struct pcache_stats *st);

/* Strategy names ("naive", "bounce", "bounce-opt", "atomic", "optimistic"). */
const char *pcache_strategy_name(int strategy);	/* NULL if out of range */
int pcache_strategy_from_name(const char *name);	/* -EINVAL if unknown or NULL */

/* A short text for a negative errno returned by pcache, like strerror(). */
const char *pcache_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* PCACHE_H */
