/*
 * filemap.h - the address space of a cached file, the address-space
 * operations a backend provides, and the page cache calls the core makes.
 *
 * The lock order (docs/locking.md holds the full table):
 *
 *   cache ns_lock            (namespace: open, unlink, list)
 *     inode i_rwsem          (writes, truncate: exclusive; never for reads)
 *       mm lock              (views: read per fault, write for mmap/mlock)
 *         invalidate_lock    (faults/page-creating reads: shared; truncate: excl.)
 *           page lock        (several only in ascending index order)
 *            poison_lock     (i_size growth vs. past-EOF poison in views)
 *             i_mmap_lock    (the file's views)
 *               i_pages_lock (the index; a leaf: nothing sleeps under it)
 *               map_lock     (the memfd mappings; a leaf)
 *
 * A file's f_pos_lock comes before i_rwsem.  Leaf locks, holding nothing
 * else: the descriptor table lock, the view table lock, i_lock (times).
 */
#ifndef PCACHE_FILEMAP_H
#define PCACHE_FILEMAP_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "../base/compiler.h"
#include "../base/errseq.h"
#include "../base/list.h"
#include "../base/lockdep.h"
#include "radix.h"

struct file;
struct inode;
struct iov_iter;
struct page;
struct address_space;

/* How much to write back, for ->writepages. */
struct writeback_control {
	loff_t range_start;		/* first byte */
	loff_t range_end;		/* last byte, inclusive (LLONG_MAX: all) */
	bool sync;			/* wait for pages already under writeback */
	unsigned long nr_written;	/* out: pages written */
};

/*
 * The address-space operations: how a backend moves pages between the
 * cache and its storage.  A backend fills one const table with designated
 * initialisers; the core calls each op through a mapping_*() wrapper.
 * "Locked" means the page lock; every op may sleep unless it says not.
 */
struct address_space_operations {
	/*
	 * read_folio - fill @page from storage.
	 * Entry: page locked, referenced, in the index, not uptodate.
	 * Exit: page still locked (the caller unlocks: pcache's backends are
	 * synchronous, unlike the kernel's).  Returns 0 after filling all
	 * PAGE_SIZE bytes (zeroes past end of file) and SetPageUptodate(), or
	 * a negative errno with the page left not uptodate.
	 * NULL: the cache is the only copy of the data (memory backend); a page
	 * missing from the index is a hole and reads as zeroes.
	 */
	int (*read_folio)(struct file *file, struct page *page);

	/*
	 * readahead - optional: fill @nr pages at once.  Same contract as
	 * read_folio for each page; pages the op could not fill stay not
	 * uptodate (the caller falls back to read_folio for them).
	 */
	void (*readahead)(struct address_space *mapping, struct page **pages,
			  unsigned int nr);

	/*
	 * write_begin - get the page that bytes [pos, pos+len) go into, ready
	 * to take them.  len never crosses a page boundary.
	 * Entry: i_rwsem held exclusive; no page locked.
	 * Exit on success (0): *pagep locked and referenced, in the index; if
	 * it is not uptodate, the op has read in (or zeroed) whatever of it is
	 * outside [pos, pos+len) that must be, so that write_end can mark it
	 * uptodate after a full copy.  *fsdata is passed to write_end.
	 * On error (negative errno) nothing is locked and nothing is left in the
	 * index past i_size.
	 */
	int (*write_begin)(struct file *file, struct address_space *mapping,
			   loff_t pos, unsigned int len, struct page **pagep,
			   void **fsdata);

	/*
	 * write_end - commit @copied of the @len bytes write_begin prepared.
	 * Entry: page locked and referenced (from write_begin); i_rwsem held.
	 * The op marks the committed bytes dirty, raises i_size if
	 * pos + committed is past it, then unlocks and releases the page.
	 * Returns the bytes committed.  A short copy (copied < len) into a page
	 * that is not uptodate commits 0: the page is never marked uptodate
	 * with bytes nobody wrote (BRIEF §4).  Negative errno on failure.
	 */
	int (*write_end)(struct file *file, struct address_space *mapping,
			 loff_t pos, unsigned int len, unsigned int copied,
			 struct page *page, void *fsdata);

	/*
	 * perform_write - optional: take the whole write.  The seed's second
	 * proposal: the backend runs its own copy loop over @from (with the
	 * core's safe copy helpers), need not be page based, and may batch its
	 * allocations across the write.
	 * Entry: i_rwsem held exclusive; @from already trimmed to the limits.
	 * Returns bytes written (and has advanced @from by them, updated i_size
	 * and dirtied the pages), or a negative errno if none were.
	 */
	ssize_t (*perform_write)(struct file *file, struct iov_iter *from,
				 loff_t pos);

	/*
	 * writepages - write the dirty pages of @wbc's range to storage.
	 * Entry: no locks.  Usually write_cache_pages() with a per-page callback.
	 * Errors are recorded with mapping_set_error() and also returned.
	 */
	int (*writepages)(struct address_space *mapping,
			  struct writeback_control *wbc);

	/*
	 * dirty_folio - mark @page dirty; return true if it was clean.
	 * Entry: page locked, or the caller otherwise holds it stable.
	 * NULL: filemap_dirty_folio() (set PG_dirty, tag the index).
	 * Must not sleep.
	 */
	bool (*dirty_folio)(struct address_space *mapping, struct page *page);

	/*
	 * invalidate_folio - bytes [offset, offset+len) of @page are being
	 * truncated away: drop the backend's private state for them.
	 * Entry: page locked.  Optional.
	 */
	void (*invalidate_folio)(struct page *page, size_t offset, size_t len);

	/*
	 * release_blocks - a write failed after allocating storage for bytes
	 * [size, end), past i_size (@size): free it, as the kernel's
	 * ext2_write_failed() truncates blocks.  Called by write_failed() with
	 * i_rwsem held, after the pages past i_size are gone.  Optional.
	 */
	void (*release_blocks)(struct inode *inode, loff_t size, loff_t end);
};

/*
 * A backend's perform_write may run the generic batched copy loop
 * (batch_perform_write, mm/write_batch.c), which locks up to 16 pages,
 * copies into them with faults refused, and commits them together.
 */
struct write_batch_ops {
	/*
	 * prepare - a locked page that is not uptodate will take bytes
	 * [from, to): make the rest of what those bytes' blocks hold valid
	 * (zero or read it).  0 or negative errno (the page is then left out).
	 */
	int (*prepare)(struct file *file, struct page *page, size_t from,
		       size_t to);
	/*
	 * commit - bytes [from, to) of a locked page were copied in: mark
	 * what is now uptodate (the page, or its blocks) and dirty blocks.
	 * The loop then tags the pages dirty and moves i_size.
	 */
	void (*commit)(struct page *page, size_t from, size_t to);
};

ssize_t batch_perform_write(struct file *file, struct iov_iter *from,
			    loff_t pos, const struct write_batch_ops *ops);

#define AS_UNEVICTABLE	(1u << 0)	/* pages can't be dropped: the cache is the store */
#define AS_BLOCKS	(1u << 1)	/* pages carry sub-page block states (fs/buffer.h) */

struct address_space {
	struct inode *host;
	const struct address_space_operations *a_ops;
	unsigned int flags;		/* AS_* */

	pthread_rwlock_t i_pages_lock;	/* protects i_pages, nrpages */
	struct radix_root i_pages;	/* index -> struct page * */
	uint64_t nrpages;

	int memfd;			/* the bytes; file offset = memfd offset */
	pthread_mutex_t map_lock;	/* protects chunks, memfd_size */
	struct radix_root chunks;	/* chunk number -> library mapping */
	uint64_t memfd_size;

	errseq_t wb_err;		/* last writeback error */
	uint64_t dirtied_when;		/* atomic: monotonic ns it went clean -> dirty; 0 clean */
	unsigned int nr_reclaim;	/* atomic: reclaimers holding one of its pages */

	/*
	 * Views.  invalidate_lock keeps faults from installing pages while
	 * truncate removes them (faults: shared; truncate: exclusive).
	 */
	pthread_rwlock_t invalidate_lock;
	pthread_rwlock_t i_mmap_lock;	/* protects i_mmap, nr_views */
	struct list_head i_mmap;	/* struct view.i_mmap */
	unsigned int nr_views;
	pthread_mutex_t poison_lock;	/* i_size growth vs. past-EOF poisoning */
	uint64_t poison_lo;		/* lowest page poisoned past EOF (poison_lock) */
};

/* How long the fault handler waits for a lock before it puts a fault aside. */
#define FGP_NOWAIT_NS	1000000		/* 1 ms */

/* invalidate_lock: shared for faults and page-creating reads, exclusive for truncate. */
static inline void filemap_invalidate_lock(struct address_space *mapping)
{
	lockdep_acquire(LOCK_INVALIDATE, &mapping->invalidate_lock, mapping, 0, false);
	pthread_rwlock_wrlock(&mapping->invalidate_lock);
}

static inline void filemap_invalidate_lock_shared(struct address_space *mapping)
{
	lockdep_acquire(LOCK_INVALIDATE, &mapping->invalidate_lock, mapping, 0, false);
	pthread_rwlock_rdlock(&mapping->invalidate_lock);
}

static inline bool filemap_invalidate_trylock_shared(struct address_space *mapping)
{
	/* Wait a little: a queued reader is not starved by a looping writer. */
	struct timespec t = deadline_after_ns(FGP_NOWAIT_NS);

	if (pthread_rwlock_timedrdlock(&mapping->invalidate_lock, &t))
		return false;
	lockdep_acquire(LOCK_INVALIDATE, &mapping->invalidate_lock, mapping, 0, true);
	return true;
}

static inline void filemap_invalidate_unlock(struct address_space *mapping)
{
	lockdep_release(LOCK_INVALIDATE, &mapping->invalidate_lock);
	pthread_rwlock_unlock(&mapping->invalidate_lock);
}

/* The library maps each memfd in chunks of this many bytes, lazily. */
#ifndef PCACHE_CHUNK_SHIFT
#define PCACHE_CHUNK_SHIFT	24
#endif

int mapping_init(struct address_space *mapping, struct inode *host,
		 const struct address_space_operations *a_ops,
		 const char *name);
/* Every page must be gone (truncate_inode_pages_final). */
void mapping_destroy(struct address_space *mapping);

/*
 * Make the memfd cover [0, size): a view touching a hole below i_size must
 * fault into the handler, not get the kernel's SIGBUS for a memfd too short.
 */
int mapping_cover(struct address_space *mapping, loff_t size);

/* Flags for filemap_get_page(). */
#define FGP_LOCK	(1u << 0)	/* return the page locked */
#define FGP_CREAT	(1u << 1)	/* create it (not uptodate) if missing */
#define FGP_NOWAIT	(1u << 2)	/* with FGP_LOCK: -EAGAIN rather than sleep long */

/*
 * filemap_get_page - find the page at @index, and take a reference.
 * With FGP_CREAT a missing page is created (locked, not uptodate) and
 * charged to the cache's memory limit; with FGP_LOCK the page is returned
 * locked and still in the mapping (a truncated page is retried).
 * Returns 0 with *pagep set, -ENOENT if missing and no FGP_CREAT,
 * -ENOSPC/-ENOMEM if a page could not be had.
 */
int filemap_get_page(struct address_space *mapping, pgoff_t index,
		     unsigned int fgp, struct page **pagep);

/*
 * Remove a locked page from its mapping (truncate).  The page keeps the
 * caller's reference; the index's reference is dropped.
 * Entry: page locked, not under writeback.
 */
void delete_from_page_cache(struct page *page);

/*
 * truncate_inode_pages_range - drop every page with index >= @start_index.
 * Waits for locked pages and writeback; dirty data is discarded.  Punches
 * the memfd range.  Caller holds i_rwsem exclusive and has lowered i_size.
 */
void truncate_inode_pages_range(struct address_space *mapping,
				pgoff_t start_index);

/* i_size has dropped to @newsize: zero the tail page, drop the rest. */
void truncate_pagecache(struct inode *inode, loff_t newsize);

/* Drop everything: inode eviction.  No page may still be referenced. */
void truncate_inode_pages_final(struct address_space *mapping);

/* Called by the page freeing a PG_punch page: punch its memfd page. */
void filemap_punch_freed_page(struct page *page);

/* Zero the bytes of @page in [from, to). */
void zero_user_segment(struct page *page, size_t from, size_t to);

/*
 * i_size grows from @from to @to: zero the cached tail of the old last page
 * past @from (a view could have written there) and, with sub-page blocks,
 * write-protect that page in views so the next store dirties its blocks,
 * as the kernel's pagecache_isize_extended().  Caller holds i_rwsem
 * exclusive.
 */
void pagecache_isize_extended(struct inode *inode, loff_t from, loff_t to);

/* The read path: copy from the cache (reading pages in) to @to. */
ssize_t filemap_read(struct file *file, struct iov_iter *to, loff_t pos);

/*
 * The buffered write (perform_write.c).  Caller holds i_rwsem.
 * generic_perform_write hands the write to the backend's perform_write op
 * if it has one and the cache enables it, else runs the page-by-page loop
 * of the file's strategy: generic_perform_write_pages, which a backend's
 * perform_write may also fall back to.
 */
ssize_t generic_perform_write(struct file *file, struct iov_iter *from,
			      loff_t pos);
ssize_t generic_perform_write_pages(struct file *file, struct iov_iter *from,
				    loff_t pos);

/*
 * For a backend's perform_write: write up to @bytes (inside one page) at
 * @pos with the bounce copy, which makes progress whatever the source does.
 * Returns bytes written or a negative errno (-EFAULT: nothing readable).
 */
ssize_t write_chunk_bounce(struct file *file, struct iov_iter *i, loff_t pos,
			   size_t bytes);

/* Mark @nr locked, uptodate pages of @mapping dirty, tagging under one lock. */
void mapping_mark_dirty_batch(struct address_space *mapping,
			      struct page **pages, unsigned int nr);

/*
 * Raise i_size to @size (i_rwsem held).  Every growth goes through here:
 * views may hold past-EOF poison (mm/fault.c) that must go when the file
 * grows over it.
 */
void i_size_grow(struct inode *inode, loff_t size);

/* A write made pages past i_size and then failed: drop them again. */
void write_failed(struct address_space *mapping, loff_t to);

/* Generic helpers a backend's write_begin / write_end may use. */
int grab_cache_page_write_begin(struct address_space *mapping, pgoff_t index,
				struct page **pagep);
int simple_write_begin(struct file *file, struct address_space *mapping,
		       loff_t pos, unsigned int len, struct page **pagep,
		       void **fsdata);
int simple_write_end(struct file *file, struct address_space *mapping,
		     loff_t pos, unsigned int len, unsigned int copied,
		     struct page *page, void *fsdata);

/* Writeback (writeback.c). */
bool filemap_dirty_folio(struct address_space *mapping, struct page *page);
bool folio_mark_dirty(struct page *page);
void mapping_set_error(struct address_space *mapping, int err);
/* I/O on a page under writeback finished: wake waiters, count it. */
void folio_end_writeback(struct page *page);

/*
 * write_cache_pages - walk the dirty pages of @wbc's range in index order;
 * for each: lock, clear dirty, set writeback, call @writepage (which must
 * call folio_end_writeback(), synchronously or later), unlock.  A failed
 * @writepage should redirty the page if the data must not be lost.  Returns the first error.
 */
typedef int (*writepage_t)(struct page *page, struct writeback_control *wbc,
			   void *data);
int write_cache_pages(struct address_space *mapping,
		      struct writeback_control *wbc, writepage_t writepage,
		      void *data);
int filemap_write_and_wait_range(struct address_space *mapping, loff_t start,
				 loff_t end);

/*
 * Dirty throttling (balance_dirty_pages): a writer that has just dirtied
 * pages of @mapping, holding no page lock, waits here while the cache's
 * dirty memory is above its limit.  Free when below half of it.
 */
void balance_dirty_pages_ratelimited(struct address_space *mapping);

/* Thin wrappers over the ops (statistics and assertions live here). */
int mapping_read_folio(struct file *file, struct page *page);

#endif /* PCACHE_FILEMAP_H */
