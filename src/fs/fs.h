/*
 * fs.h - caches, inodes, open files and the backend ("filesystem") seam.
 *
 * A struct pcache is one mounted backend: its namespace (the icache maps
 * names to inodes through dentries), its memory limit and statistics.  An
 * inode is one cached file; its address_space holds the pages.  A dentry
 * is one name of it: a file with hard links is one inode under several
 * names, found by the backend's (st_dev, st_ino) when a second name is
 * looked up.  A struct file is one open descriptor.
 *
 * Lifetimes (all counts change under the cache's ns_lock, except files'):
 *  - inode->i_count: one per dentry (cached name, i_nlink of them) plus one
 *    per open file.  The last iput() evicts: every page is dropped and the
 *    memfd closed.
 *  - file->f_count: one for the descriptor table, one per call in flight
 *    (fdget/fdput).  The last fput() releases the inode.
 *
 * The backend seam is two const tables: super_operations (namespace and
 * whole-file calls) here, and address_space_operations (pages) in
 * mm/filemap.h.  A new backend is one new file under src/backends/.
 */
#ifndef PCACHE_FS_H
#define PCACHE_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

#include "pcache.h"
#include "../base/compiler.h"
#include "../base/errseq.h"
#include "../base/lockdep.h"
#include "../mm/filemap.h"

struct pcache;
struct mm;

/* A name in the icache (ns_lock for every field). */
struct dentry {
	char *d_name;
	struct inode *d_inode;
	struct dentry *d_hash_next;	/* pc->dhash chain */
	struct list_head d_alias;	/* d_inode->i_dentry */
};

struct inode {
	struct pcache *i_sb;
	struct list_head i_dentry;	/* its names: dentry.d_alias (ns_lock) */
	uint64_t i_ino;
	unsigned int i_blkbits;		/* block size of AS_BLOCKS mappings */
	mode_t i_mode;			/* changed under i_rwsem + i_lock (setattr_copy) */
	uid_t i_uid;			/* as i_mode; meaningful once i_owner_set */
	gid_t i_gid;
	bool i_owner_set;		/* as i_mode; false: the owner is the caller */
	unsigned int i_nlink;		/* cached names (ns_lock; 0: unlinked) */
	int i_count;			/* ns_lock */
	/*
	 * The backend's identity of the file, set by lookup/create: two names
	 * with the same (i_bdev, i_bino) are one inode.  i_bino 0: none.
	 */
	dev_t i_bdev;
	ino_t i_bino;
	struct inode *i_bhash_next;	/* pc->bhash chain while live (ns_lock) */

	loff_t i_size;			/* i_size_read/write; written under i_rwsem */
	pthread_mutex_t i_rwsem;	/* writes, truncate (only ever exclusive: a mutex) */
	pthread_mutex_t i_lock;		/* times, mode, owner (leaf) */
	struct timespec i_atime, i_mtime, i_ctime;
	uint64_t i_mtime_stamp;		/* atomic: i_mtime in ns, for inode_touch's shortcut */

	struct address_space i_data;
	struct list_head i_sb_list;	/* pc->s_inodes while i_count > 0 (ns_lock) */
	uint64_t i_sync_gen;		/* the last pcache_sync that took it (ns_lock) */
	void *i_private;		/* the backend's */
};

static inline loff_t i_size_read(const struct inode *inode)
{
	return __atomic_load_n(&inode->i_size, __ATOMIC_ACQUIRE);
}

/* Caller holds i_rwsem exclusive (and for writes, the page lock). */
static inline void i_size_write(struct inode *inode, loff_t size)
{
	__atomic_store_n(&inode->i_size, size, __ATOMIC_RELEASE);
}

static inline void inode_lock(struct inode *inode)
{
	lockdep_acquire(LOCK_INODE, &inode->i_rwsem, inode, 0, false);
	pthread_mutex_lock(&inode->i_rwsem);
}

static inline void inode_unlock(struct inode *inode)
{
	lockdep_release(LOCK_INODE, &inode->i_rwsem);
	pthread_mutex_unlock(&inode->i_rwsem);
}

#define FMODE_READ	(1u << 0)
#define FMODE_WRITE	(1u << 1)
#define FMODE_DIR	(1u << 2)	/* the backend's root directory */

struct file {
	struct inode *f_inode;		/* NULL for the root directory */
	struct pcache *f_sb;
	unsigned int f_mode;		/* FMODE_* */
	int f_flags;			/* open(2) flags */
	int f_strategy;			/* enum pcache_write_strategy */
	pthread_mutex_t f_pos_lock;	/* read/write/lseek at f_pos */
	loff_t f_pos;
	errseq_t f_wb_err;		/* writeback errors seen so far */
	unsigned int f_nr_views;	/* atomic: live views made through it */
	uint64_t f_ra_next;		/* racy hint: the page a sequential read wants next */
};

static inline struct address_space *file_mapping(const struct file *file)
{
	return &file->f_inode->i_data;
}

/*
 * struct iattr - a change of mode or owner (pcache_fchmod, pcache_fchown),
 * as the kernel's: ia_valid says which fields mean something.
 * ATTR_KILL_SUID/ATTR_KILL_SGID ask for the set-id bits to go, as a chown
 * of a regular file does (ATTR_KILL_SGID only when S_IXGRP is set).
 */
#define ATTR_MODE	(1u << 0)
#define ATTR_UID	(1u << 1)
#define ATTR_GID	(1u << 2)
#define ATTR_KILL_SUID	(1u << 3)
#define ATTR_KILL_SGID	(1u << 4)

struct iattr {
	unsigned int ia_valid;
	mode_t ia_mode;			/* permission bits only (07777) */
	uid_t ia_uid;
	gid_t ia_gid;
};

/*
 * super_operations - the backend's namespace and whole-file calls.
 * All are called with the cache's ns_lock held unless noted, and may sleep.
 */
struct super_operations {
	const char *name;
	const struct address_space_operations *a_ops;
	unsigned int as_flags;		/* AS_* for every mapping */

	/* mount: parse @arg, set pc->s_fs_info.  0 or negative errno. */
	int (*mount)(struct pcache *pc, const char *arg);
	void (*unmount)(struct pcache *pc);

	/*
	 * lookup - @name is not in the icache: does the backend have it?
	 * Fill i_mode, i_size, i_private (and i_bdev, i_bino if the backend
	 * has hard links) and return 0, or -ENOENT.  If another cached inode
	 * has the same identity, the core evicts this one and caches @name as
	 * a second name of that one.
	 */
	int (*lookup)(struct pcache *pc, const char *name, struct inode *inode);
	/* create - make @name (it does not exist); same filling as lookup. */
	int (*create)(struct pcache *pc, const char *name, mode_t mode,
		      struct inode *inode);
	/*
	 * open - a file of @inode is being opened with FMODE_* @fmode: may it
	 * be?  0 or a negative errno (-EACCES).  Called without the ns_lock.
	 * NULL: every open may.
	 */
	int (*open)(struct inode *inode, unsigned int fmode);
	/* unlink - remove @name (the inode stays cached while open). */
	int (*unlink)(struct pcache *pc, const char *name);
	/*
	 * rename - @old becomes @new, replacing it if it exists.  NULL: the
	 * namespace is the icache (only cached names exist); the core does it.
	 */
	int (*rename)(struct pcache *pc, const char *old, const char *new);
	/*
	 * link - make @new a second name of @old's file (it may not be
	 * cached).  NULL: the core links cached names in the icache.
	 */
	int (*link)(struct pcache *pc, const char *old, const char *new);
	/*
	 * getattr - stat @name, which is not cached (any file type).  NULL:
	 * only cached names exist.
	 */
	int (*getattr)(struct pcache *pc, const char *name, struct stat *st);
	/*
	 * fillattr - a cached file's attributes the cache does not keep
	 * (st_dev, st_ino, st_nlink, owner, mode): @st holds the cache's, to
	 * be corrected.  NULL: the cache's are the file's.  ns_lock may be held.
	 */
	void (*fillattr)(struct inode *inode, struct stat *st);
	/* list - call @fn for each name; stop and return its non-zero value. */
	int (*list)(struct pcache *pc, pcache_list_fn fn, void *arg);
	/*
	 * setsize - the file is now @size bytes (truncate).  Called with
	 * i_rwsem held exclusive and without the ns_lock, after the page cache
	 * has been truncated.
	 */
	int (*setsize)(struct inode *inode, loff_t size);
	/*
	 * sync - make written-back data durable (fsync/fdatasync).  Called
	 * without the ns_lock after writepages.  NULL: nothing to do.
	 */
	int (*sync)(struct inode *inode, int datasync);
	/*
	 * setattr - change the file's mode and/or owner (@attr), in the
	 * backend's storage first, then in the inode with setattr_copy().
	 * The backend checks permission (dir: the kernel does, on the backing
	 * file).  Called through notify_change(): i_rwsem held, no ns_lock;
	 * may sleep.  0 or a negative errno; on error the inode is unchanged.
	 * NULL: simple_setattr() - the inode is the only copy of the file's
	 * attributes (memory, synthetic).
	 */
	int (*setattr)(struct inode *inode, const struct iattr *attr);
	/*
	 * evict - the inode leaves the cache (or was never published): free
	 * i_private if set.  No ns_lock.
	 */
	void (*evict)(struct inode *inode);
};

/* Built-in backends (src/backends/). */
extern const struct super_operations memory_super_ops;
extern const struct super_operations synthetic_super_ops;	/* for tests */
extern const struct super_operations dir_super_ops;

struct stat_counters {
	uint64_t bytes_written;
	uint64_t bytes_read;
	uint64_t bytes_copied;
	uint64_t read_folio_calls;
	uint64_t writeback_pages;
	uint64_t perform_write_calls;
	struct pcache_strategy_stats strategy[PCACHE_WRITE_NR];
	uint64_t backend_reads, backend_writes, backend_allocs, backend_syncs,
		 backend_other;
	uint64_t pages_reclaimed, reclaim_waits;
	uint64_t throttle_waits, throttle_ns, flusher_runs, writeback_errors;
};

/*
 * Statistics are per-thread shards, summed by stat_snapshot().  A thread
 * owns one of STAT_SHARDS shard numbers (process-wide: the same number in
 * every cache), taken at its first count and given back when it exits.
 * The owner is the only writer of its shard, so a count is a plain load
 * and store: no locked instruction on the write path (a locked add right
 * after a page copy also waits for the copy's stores to drain), and no
 * cache line written by two threads.  Threads beyond STAT_SHARDS share the
 * last shard with atomic adds.  A shard given back keeps its sums; the next
 * owner adds to them.  Hazard: a signal handler that counts on the thread
 * it interrupted, between that thread's load and store, loses its count
 * (a lost count: the counters are statistics, or only asked "did it grow").
 */
#define STAT_SHARDS	32

struct stat_shard {
	struct stat_counters c;
	char pad[64];	/* no line holds two shards' counters, aligned or not */
};

extern __thread unsigned int stat_slot __attribute__((tls_model("initial-exec")));
unsigned int stat_slot_get(void);	/* 1 + shard number; STAT_SHARDS + 1: shared */

static inline struct stat_counters *stat_this(struct pcache *pc);

static inline void stat_count(uint64_t *counter, uint64_t n)
{
	if (unlikely(stat_slot > STAT_SHARDS))
		__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
	else
		__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n,
				 __ATOMIC_RELAXED);
}

#define stat_add(pc, field, n)	stat_count(&stat_this(pc)->field, (n))

/* The sums over all shards (each counter read once; not a consistent cut). */
void stat_snapshot(struct pcache *pc, struct stat_counters *sum);

/*
 * One counter's sum.  Each shard only grows, so of two calls in a row the
 * later never returns less: enough to ask "did it grow since?".
 */
uint64_t __stat_read(struct pcache *pc, size_t offset);
#define stat_read(pc, field) \
	__stat_read((pc), offsetof(struct stat_counters, field))

struct pcache {
	struct pcache_config cfg;
	const struct super_operations *s_op;
	void *s_fs_info;		/* the backend's */
	loff_t s_maxbytes;
	uint64_t mem_limit_pages;

	pthread_mutex_t ns_lock;
	struct dentry **dhash;		/* name -> dentry, ns_lock */
	struct inode **bhash;		/* (i_bdev, i_bino) -> inode, ns_lock */
	unsigned int hash_bits;		/* of both */
	uint64_t nr_names;		/* dentries (ns_lock) */
	uint64_t nr_inodes;		/* inodes with a name (ns_lock) */
	uint64_t next_ino;		/* ns_lock */
	uint64_t files_open;		/* atomic */
	bool dying;			/* ns_lock: destroy has begun */

	uint64_t nr_pages;		/* atomic: pages charged */
	uint64_t nr_dirty;		/* atomic */
	uint64_t nr_writeback;		/* atomic */
	unsigned int s_blkbits;		/* block size for new inodes */
	struct list_head s_inodes;	/* every live inode (ns_lock) */
	uint64_t sync_gen;		/* pcache_sync calls (atomic) */

	/* Reclaim (mm/reclaim.c): a clock over the pages of evictable mappings. */
	pthread_mutex_t lru_lock;	/* a leaf; pages only trylocked under it */
	struct list_head lru;		/* page.lru */
	uint64_t nr_lru;		/* lru_lock */

	/* Writeback (mm/writeback.c): the flusher and dirty throttling. */
	bool wb_running;
	bool wb_stop;			/* wb_lock */
	int wb_kicked;			/* atomic: work is waiting */
	pthread_t wb_thread;
	pthread_mutex_t wb_lock;	/* a leaf */
	pthread_cond_t wb_wake;		/* the flusher sleeps on it */
	pthread_cond_t wb_done;		/* throttled writers and reclaim sleep on it */
	uint64_t dirty_thresh;		/* pages: writers wait above it */
	uint64_t bg_thresh;		/* pages: the flusher writes everything above it */
	uint64_t dirty_expire_ns;
	uint64_t wb_interval_ns;

	struct stat_shard stats[STAT_SHARDS + 1];	/* stat_add() */
	struct mm *mm;			/* views; made by the first pcache_mmap */
};

/* This thread's shard of @pc's statistics. */
static inline struct stat_counters *stat_this(struct pcache *pc)
{
	unsigned int slot = stat_slot;

	if (unlikely(!slot))
		slot = stat_slot_get();
	return &pc->stats[slot - 1].c;
}

/*
 * icache (inode.c).  Caller holds ns_lock.  icache_remove drops a name;
 * the caller then drops the name's inode reference with iput().
 */
int icache_init(struct pcache *pc);
struct dentry *d_lookup(struct pcache *pc, const char *name);
struct inode *icache_find(struct pcache *pc, const char *name);
struct inode *icache_find_backing(struct pcache *pc, dev_t dev, ino_t ino);
int icache_insert(struct pcache *pc, struct inode *inode, const char *name);
void icache_remove(struct pcache *pc, struct dentry *dentry);
void icache_rename(struct pcache *pc, struct dentry *dentry, char *name);
int icache_list(struct pcache *pc, pcache_list_fn fn, void *arg);
void generic_fillattr(struct inode *inode, struct stat *st);

/* Inodes (inode.c). */
/* An inode with no memory yet (ns_lock held); then its memfd and index. */
struct inode *inode_alloc(struct pcache *pc);
int inode_init_mapping(struct inode *inode, const char *name);
void inode_free(struct inode *inode);	/* the last iput, or never published */
void iget(struct inode *inode);		/* ns_lock held */
void iput(struct inode *inode);		/* takes ns_lock */
void inode_touch(struct inode *inode, bool mtime, bool atime);
void inode_touch_ctime(struct inode *inode);

/*
 * Attribute changes (attr.c).  notify_change() takes i_rwsem and calls the
 * backend's setattr (or simple_setattr).  setattr_prepare() is the
 * kernel's permission check (owner or root may chmod; only root may give a
 * file away; the owner may change its group to one of its own groups);
 * setattr_copy() writes @attr into the inode under i_lock, the change time
 * becomes now.
 */
int notify_change(struct inode *inode, const struct iattr *attr);
int setattr_prepare(struct inode *inode, const struct iattr *attr);
void setattr_copy(struct inode *inode, const struct iattr *attr);
int simple_setattr(struct inode *inode, const struct iattr *attr);

/*
 * Memory accounting (mm/reclaim.c): charge one page to the cache.  Over the
 * limit, clean pages are reclaimed; if none can be, the caller waits for
 * writeback - or, @nowait (a fault handler), gets -EAGAIN.  -ENOSPC when
 * nothing can be evicted (unevictable backends, or writeback stuck).
 */
int cache_charge_page(struct pcache *pc, bool nowait);
void cache_uncharge_page(struct pcache *pc);
void lru_add(struct page *page);	/* a new page of an evictable mapping */
void lru_del(struct page *page);	/* page locked, leaving the index */
/* The inode is going: its pages leave the LRU, and reclaimers let go. */
void lru_evict_mapping(struct address_space *mapping);

/* Writeback threads (mm/writeback.c). */
int wb_start(struct pcache *pc);	/* 0 or -errno; nothing for unevictable backends */
void wb_stop(struct pcache *pc);
void wakeup_flusher(struct pcache *pc);
/* Sleep until the flusher finishes a piece of work, at most @ns. */
void wb_wait_progress(struct pcache *pc, long ns);

/*
 * Descriptors (file.c).  A struct file lives in a slot of the process-wide
 * descriptor table and is never freed, only reused with a new generation.
 *   fd_alloc:   reserve a slot; the caller fills the returned file, then
 *               fd_publish() makes the descriptor usable, or fd_discard()
 *               gives the slot back.
 *   fdget:      a referenced file, or NULL (-EBADF) for a bad or stale fd.
 *   fd_close:   unpublish; the last fdput() calls file_release().
 */
struct file *fd_alloc(int *fdp);	/* NULL: -EMFILE or -ENOMEM in *fdp */
void fd_publish(int fd);
void fd_discard(int fd);
struct file *fdget(int fd);
void fdput(struct file *file);
int fd_close(int fd);			/* 0 or -EBADF */

/* Read/write/truncate/sync at the VFS level (read_write.c). */
ssize_t vfs_write_iter(struct file *file, struct iov_iter *from, loff_t *ppos,
		       bool use_fpos);
ssize_t vfs_read_iter(struct file *file, struct iov_iter *to, loff_t pos);
int vfs_truncate(struct file *file, loff_t length);
int vfs_fsync_range(struct file *file, loff_t start, loff_t end, int datasync);
off_t vfs_llseek(struct file *file, off_t offset, int whence);
void file_release(struct file *file);	/* the last fput */

/* Strategy names (api.c). */
extern const char *const strategy_names[PCACHE_WRITE_NR];

#endif /* PCACHE_FS_H */
