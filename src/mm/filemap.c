/*
 * filemap.c - the page cache proper: the per-file index, the pages' memory,
 * the read path and truncation.  After the kernel's mm/filemap.c and
 * mm/truncate.c.
 *
 * Memory.  Each file's bytes live in a memfd at their file offset.  The
 * library reaches them through its own MAP_SHARED mappings of the memfd,
 * made lazily PCACHE_CHUNK_SHIFT bytes at a time and kept until the inode
 * goes, so page->addr never moves.  Views (the views issue) map the same
 * memfd, which is what makes write() and mmap coherent.
 *
 * Invariants:
 *  1. At most one page descriptor is alive per (file, index).  A page taken
 *     out of the index while another thread still holds a reference (a
 *     reader racing truncate) is marked PG_punch: its memory is punched when
 *     that last reference goes, and only if the index slot is still empty
 *     (a new page may already be using the same memfd offset).
 *  2. Pages are only ever touched through page->addr of a page in the index
 *     or referenced: touching any other part of the library's mapping would
 *     allocate memory in the memfd behind the cache's back.
 *  3. A newly created page is not uptodate and its bytes are undefined (a
 *     punched range reads zero, but a survivor of invariant 1 may not have
 *     been punched yet): write_begin/read_folio must fill it.
 *  4. i_size is lowered before pages are removed (truncate), and readers
 *     read i_size again after they have a page, so a reader never returns
 *     bytes past the new end.
 *
 * Lock order: i_rwsem -> page lock -> i_pages_lock / map_lock (leaves).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "../base/alloc.h"
#include "../base/lockdep.h"
#include "../base/sys.h"
#include "../fs/fs.h"
#include "../lib/iov_iter.h"
#include "filemap.h"
#include "mm.h"
#include "page.h"

#define CHUNK_SIZE	(1ull << PCACHE_CHUNK_SHIFT)

int mapping_init(struct address_space *mapping, struct inode *host,
		 const struct address_space_operations *a_ops,
		 const char *name)
{
	char memfd_name[64];

	memset(mapping, 0, sizeof(*mapping));
	snprintf(memfd_name, sizeof(memfd_name), "pcache:%s", name ? name : "");
	mapping->memfd = sys.memfd_create(memfd_name, MFD_CLOEXEC);
	if (mapping->memfd < 0)
		return sys_err();
	mapping->host = host;
	mapping->a_ops = a_ops;
	pthread_rwlock_init(&mapping->i_pages_lock, NULL);
	pthread_mutex_init(&mapping->map_lock, NULL);
	pthread_rwlock_init(&mapping->invalidate_lock, NULL);
	pthread_rwlock_init(&mapping->i_mmap_lock, NULL);
	INIT_LIST_HEAD(&mapping->i_mmap);
	mapping->poison_lo = UINT64_MAX;
	pthread_mutex_init(&mapping->poison_lock, NULL);
	radix_init(&mapping->i_pages);
	radix_init(&mapping->chunks);
	return 0;
}

static void unmap_chunk(void *item, uint64_t index, void *arg)
{
	sys.munmap(item, CHUNK_SIZE);
}

void mapping_destroy(struct address_space *mapping)
{
	assert(mapping->nrpages == 0);
	radix_destroy(&mapping->chunks, unmap_chunk, NULL);
	sys.close(mapping->memfd);
	pthread_rwlock_destroy(&mapping->i_mmap_lock);
	pthread_mutex_destroy(&mapping->poison_lock);
	pthread_rwlock_destroy(&mapping->invalidate_lock);
	pthread_mutex_destroy(&mapping->map_lock);
	pthread_rwlock_destroy(&mapping->i_pages_lock);
}

/*
 * Grow the memfd so that page @index is inside it.  RLIMIT_FSIZE applies
 * to the memfd too, and ftruncate() past it raises SIGXFSZ, so stay below
 * the limit: write_limit() already keeps file data below it, and the memfd
 * may end inside the page that holds the limit (that page stays usable).
 * map_lock held.
 */
static int memfd_grow(struct address_space *mapping, pgoff_t index,
		      uint64_t want)
{
	uint64_t need = index << PAGE_SHIFT;
	struct rlimit rl;

	if (!getrlimit(RLIMIT_FSIZE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    want > rl.rlim_cur)
		want = rl.rlim_cur;
	if (want <= need)
		return -EFBIG;
	if (sys.ftruncate(mapping->memfd, (off_t)want))
		return sys_err();
	__atomic_store_n(&mapping->memfd_size, want, __ATOMIC_RELAXED);
	return 0;
}

int mapping_cover(struct address_space *mapping, loff_t size)
{
	uint64_t end = PAGE_ALIGN((uint64_t)size);
	int err = 0;

	if (!end)
		return 0;
	pthread_mutex_lock(&mapping->map_lock);
	if (end > mapping->memfd_size)
		err = memfd_grow(mapping, (end >> PAGE_SHIFT) - 1, end);
	pthread_mutex_unlock(&mapping->map_lock);
	return err;
}

/*
 * The library's address of page @index: map its chunk if this is the
 * first page there, and grow the memfd to cover the page.
 */
static int mapping_page_address(struct address_space *mapping, pgoff_t index,
				char **addrp)
{
	uint64_t chunk = index >> (PCACHE_CHUNK_SHIFT - PAGE_SHIFT);
	uint64_t end = (chunk + 1) << PCACHE_CHUNK_SHIFT;
	char *base;
	int err = 0;

	pthread_mutex_lock(&mapping->map_lock);
	if ((index << PAGE_SHIFT) >= mapping->memfd_size) {
		err = memfd_grow(mapping, index, end);
		if (err)
			goto out_unlock;
	}
	base = radix_lookup(&mapping->chunks, chunk);
	if (!base) {
		base = sys.mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_NORESERVE, mapping->memfd,
				(off_t)(chunk << PCACHE_CHUNK_SHIFT));
		if (base == MAP_FAILED) {
			err = sys_err();
			goto out_unlock;
		}
		err = radix_insert(&mapping->chunks, chunk, base);
		if (err) {
			sys.munmap(base, CHUNK_SIZE);
			goto out_unlock;
		}
	}
	*addrp = base + ((index << PAGE_SHIFT) & (CHUNK_SIZE - 1));
out_unlock:
	pthread_mutex_unlock(&mapping->map_lock);
	return err;
}

static void punch_range(struct address_space *mapping, pgoff_t start,
			pgoff_t end)
{
	uint64_t limit = __atomic_load_n(&mapping->memfd_size, __ATOMIC_RELAXED);
	uint64_t from = start << PAGE_SHIFT, to;

	if (from >= limit || start >= end)
		return;
	to = end > (limit >> PAGE_SHIFT) ? limit : end << PAGE_SHIFT;
	/* Failure only leaves memory allocated; the data is gone either way. */
	sys.fallocate(mapping->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)from, (off_t)(to - from));
}

void filemap_punch_freed_page(struct page *page)
{
	struct address_space *home = page->home;

	/* Invariant 1: only if no newer page has taken the slot. */
	pthread_rwlock_wrlock(&home->i_pages_lock);
	if (!radix_lookup(&home->i_pages, page->index))
		punch_range(home, page->index, page->index + 1);
	pthread_rwlock_unlock(&home->i_pages_lock);
}

/* Find and reference; NULL if absent. */
static struct page *find_get_page(struct address_space *mapping, pgoff_t index)
{
	struct page *page;

	pthread_rwlock_rdlock(&mapping->i_pages_lock);
	page = radix_lookup(&mapping->i_pages, index);
	if (page)
		get_page(page);
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	if (page)
		mark_page_accessed(page);
	return page;
}

/* Make a new locked page at @index and put it in the index. */
static int add_new_page(struct address_space *mapping, pgoff_t index,
			unsigned int fgp, struct page **pagep)
{
	struct pcache *pc = mapping->host->i_sb;
	struct page *page;
	int err;

	err = cache_charge_page(pc, fgp & FGP_NOWAIT);
	if (err)
		return err;
	page = page_alloc();
	if (!page) {
		err = -ENOMEM;
		goto out_uncharge;
	}
	err = mapping_page_address(mapping, index, &page->addr);
	if (err)
		goto out_free;
	page->index = index;
	page->mapping = mapping;
	page->home = mapping;
	page->flags = PG_locked;
	get_page(page);		/* the index's reference */

	pthread_rwlock_wrlock(&mapping->i_pages_lock);
	err = radix_insert(&mapping->i_pages, index, page);
	if (!err)
		mapping->nrpages++;
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	if (err) {
		/* -EEXIST: somebody else added it first; the caller retries. */
		page->flags = 0;
		page->refcount = 1;
		goto out_free;
	}
	/* Born locked: tell the validator, as a trylock. */
	lockdep_acquire(LOCK_PAGE, page, mapping, index, true);
	lru_add(page);
	*pagep = page;
	return 0;

out_free:
	put_page(page);
out_uncharge:
	cache_uncharge_page(pc);
	return err;
}

int filemap_get_page(struct address_space *mapping, pgoff_t index,
		     unsigned int fgp, struct page **pagep)
{
	struct page *page;
	int err;

repeat:
	page = find_get_page(mapping, index);
	if (!page) {
		if (!(fgp & FGP_CREAT))
			return -ENOENT;
		err = add_new_page(mapping, index, fgp, &page);
		if (err == -EEXIST)
			goto repeat;
		if (err)
			return err;
		if (!(fgp & FGP_LOCK))
			unlock_page(page);
		*pagep = page;
		return 0;
	}
	if (fgp & FGP_LOCK) {
		if (fgp & FGP_NOWAIT) {
			if (!lock_page_timed(page, FGP_NOWAIT_NS)) {
				put_page(page);
				return -EAGAIN;
			}
		} else {
			lock_page(page);
		}
		/* Truncated while we slept for the lock? */
		if (unlikely(page->mapping != mapping)) {
			unlock_page(page);
			put_page(page);
			goto repeat;
		}
	}
	*pagep = page;
	return 0;
}

void delete_from_page_cache(struct page *page)
{
	struct address_space *mapping = page->mapping;
	struct pcache *pc = mapping->host->i_sb;

	assert(PageLocked(page) && !PageWriteback(page));
	pthread_rwlock_wrlock(&mapping->i_pages_lock);
	radix_delete(&mapping->i_pages, page->index);
	mapping->nrpages--;
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	lru_del(page);
	/* Truncation discards dirty data: it has no file offset any more. */
	if (TestClearPageDirty(page))
		__atomic_sub_fetch(&pc->nr_dirty, 1, __ATOMIC_RELAXED);
	WRITE_ONCE(page->mapping, NULL);
	cache_uncharge_page(pc);
	put_page(page);		/* the index's reference */
}

void truncate_inode_pages_range(struct address_space *mapping,
				pgoff_t start_index)
{
	struct page *batch[16];
	pgoff_t next = start_index, run_start = start_index;
	unsigned int n, i;

	for (;;) {
		pthread_rwlock_rdlock(&mapping->i_pages_lock);
		n = radix_gang_lookup(&mapping->i_pages, (void **)batch, NULL,
				      next, ARRAY_SIZE(batch));
		for (i = 0; i < n; i++)
			get_page(batch[i]);
		pthread_rwlock_unlock(&mapping->i_pages_lock);
		if (!n)
			break;
		for (i = 0; i < n; i++) {
			struct page *page = batch[i];
			pgoff_t index = page->index;	/* the page may go with our put */

			next = index + 1;
			lock_page(page);
			wait_on_page_writeback(page);
			if (page->mapping == mapping) {
				if (mapping->a_ops->invalidate_folio)
					mapping->a_ops->invalidate_folio(page, 0,
									 PAGE_SIZE);
				delete_from_page_cache(page);
			}
			/* Invariant 1: a survivor punches itself when freed. */
			SetPagePunch(page);
			unlock_page(page);
			if (!put_page_testzero(page)) {
				punch_range(mapping, run_start, index);
				run_start = index + 1;
			}
		}
	}
	punch_range(mapping, run_start, UINT64_MAX >> PAGE_SHIFT);
}

void zero_user_segment(struct page *page, size_t from, size_t to)
{
	if (from < to)
		memset(page_address(page) + from, 0, to - from);
}

void truncate_pagecache(struct inode *inode, loff_t newsize)
{
	struct address_space *mapping = &inode->i_data;
	size_t partial = (size_t)newsize & ~PAGE_MASK;
	struct page *page;

	/* The page that holds the new end keeps its head, loses its tail. */
	if (partial &&
	    !filemap_get_page(mapping, (pgoff_t)newsize >> PAGE_SHIFT, FGP_LOCK,
			      &page)) {
		wait_on_page_writeback(page);
		/*
		 * Even if the page is not uptodate, as the kernel's
		 * truncate_inode_partial_folio(): with sub-page blocks its
		 * blocks past the end may be uptodate (a write filled them),
		 * and stay so; zeroes are what they hold when the file grows.
		 */
		zero_user_segment(page, partial, PAGE_SIZE);
		if (mapping->a_ops->invalidate_folio)
			mapping->a_ops->invalidate_folio(page, partial,
							 PAGE_SIZE - partial);
		unlock_page(page);
		put_page(page);
	}
	truncate_inode_pages_range(mapping, PAGE_ALIGN((uint64_t)newsize) >> PAGE_SHIFT);
}

static void drop_page_final(void *item, uint64_t index, void *arg)
{
	struct page *page = item;
	struct pcache *pc = arg;

	assert(page_count(page) == 1);
	lru_del(page);
	if (TestClearPageDirty(page))
		__atomic_sub_fetch(&pc->nr_dirty, 1, __ATOMIC_RELAXED);
	page->mapping = NULL;
	cache_uncharge_page(pc);
	/* The memfd goes too: no punching. */
	put_page_testzero(page);
}

void truncate_inode_pages_final(struct address_space *mapping)
{
	radix_destroy(&mapping->i_pages, drop_page_final, mapping->host->i_sb);
	mapping->nrpages = 0;
}

void pagecache_isize_extended(struct inode *inode, loff_t from, loff_t to)
{
	size_t partial = (size_t)from & ~PAGE_MASK;
	struct page *page;

	if (!partial || to <= from)
		return;
	if (filemap_get_page(&inode->i_data, (pgoff_t)from >> PAGE_SHIFT,
			     FGP_LOCK, &page))
		return;
	/* Not uptodate too: an uptodate block may end there (truncate_pagecache). */
	zero_user_segment(page, partial, PAGE_SIZE);
	/*
	 * Blocks past @from were clean (truncate cleared them) but are now
	 * inside the file, and a view may map the page writable: make the next
	 * store fault, so that page_mkwrite dirties every block (the kernel's
	 * folio_mkclean here).  Else writeback, which writes only dirty
	 * blocks, drops what is stored there.
	 */
	if (inode->i_data.flags & AS_BLOCKS)
		page_mkclean(page);
	unlock_page(page);
	put_page(page);
}

void i_size_grow(struct inode *inode, loff_t size)
{
	struct address_space *mapping = &inode->i_data;

	/* Against fault_past_eof(): no page is poisoned as past EOF meanwhile. */
	pthread_mutex_lock(&mapping->poison_lock);
	i_size_write(inode, size);
	unpoison_mapping(mapping, PAGE_ALIGN((uint64_t)size) >> PAGE_SHIFT);
	pthread_mutex_unlock(&mapping->poison_lock);
}

int mapping_read_folio(struct file *file, struct page *page)
{
	struct address_space *mapping = page->mapping;
	struct pcache *pc = mapping->host->i_sb;
	int err;

	assert(PageLocked(page) && !PageUptodate(page));
	if (!mapping->a_ops->read_folio) {
		/* The cache is the only copy: a page nobody wrote is a hole. */
		zero_user_segment(page, 0, PAGE_SIZE);
		SetPageUptodate(page);
		return 0;
	}
	stat_add(pc, read_folio_calls, 1);
	err = mapping->a_ops->read_folio(file, page);
	assert(err || PageUptodate(page));
	return err;
}

/*
 * Readahead: a read that misses at the page after the last one this file
 * read (a sequential reader) creates the missing pages after it too, up to
 * READAHEAD_PAGES and end of file, and has the backend fill them with one
 * ->readahead call.  Pages it could not fill stay not uptodate (a later
 * reader calls read_folio).  Caller holds invalidate_lock shared; returns
 * the first page, locked, or NULL if it could not be made.
 */
#define READAHEAD_PAGES	32

static struct page *page_cache_readahead(struct file *file,
					 struct address_space *mapping,
					 pgoff_t index)
{
	uint64_t isize = (uint64_t)i_size_read(mapping->host);
	pgoff_t end = min(index + READAHEAD_PAGES, PAGE_ALIGN(isize) >> PAGE_SHIFT);
	struct page *pages[READAHEAD_PAGES];
	unsigned int nr = 0, i;

	while (index + nr < end) {
		/* Only pages nobody has: stop at the first that exists. */
		/* Past the first page, never wait for memory. */
		if (add_new_page(mapping, index + nr, nr ? FGP_NOWAIT : 0,
				 &pages[nr]))
			break;
		nr++;
	}
	if (!nr)
		return NULL;
	stat_add(mapping->host->i_sb, read_folio_calls, 1);
	mapping->a_ops->readahead(mapping, pages, nr);
	for (i = 1; i < nr; i++) {
		unlock_page(pages[i]);
		put_page(pages[i]);
	}
	return pages[0];
}

/*
 * An uptodate, referenced page for reading @index, or NULL for a hole of a
 * backend without read_folio (no page is made for it), or ERR in *errp.
 */
static struct page *filemap_get_read_page(struct file *file,
					  struct address_space *mapping,
					  pgoff_t index, int *errp)
{
	struct page *page;
	int err;

	page = find_get_page(mapping, index);
	if (!page) {
		if (!mapping->a_ops->read_folio)
			return NULL;
		/* No page may appear while truncate removes them. */
		filemap_invalidate_lock_shared(mapping);
		page = NULL;
		if (mapping->a_ops->readahead &&
		    READ_ONCE(file->f_ra_next) == index)
			page = page_cache_readahead(file, mapping, index);
		err = page ? 0 : filemap_get_page(mapping, index,
						  FGP_LOCK | FGP_CREAT, &page);
		filemap_invalidate_unlock(mapping);
		if (err)
			goto out_err;
	} else if (likely(PageUptodate(page))) {
		return page;
	} else {
		lock_page(page);
		if (page->mapping != mapping) {
			/* Truncated: what was there is gone, reread the size. */
			unlock_page(page);
			put_page(page);
			return filemap_get_read_page(file, mapping, index, errp);
		}
	}
	if (!PageUptodate(page)) {
		err = mapping_read_folio(file, page);
		if (err) {
			unlock_page(page);
			put_page(page);
			goto out_err;
		}
	}
	unlock_page(page);
	return page;

out_err:
	*errp = err;
	return NULL;
}

ssize_t filemap_read(struct file *file, struct iov_iter *to, loff_t pos)
{
	struct address_space *mapping = file_mapping(file);
	struct inode *inode = mapping->host;
	ssize_t done = 0;
	int err = 0;

	while (iov_iter_count(to)) {
		pgoff_t index = (uint64_t)pos >> PAGE_SHIFT;
		size_t offset = (size_t)pos & ~PAGE_MASK, nr, copied;
		struct page *page;
		loff_t isize;

		if (pos >= i_size_read(inode))
			break;
		page = filemap_get_read_page(file, mapping, index, &err);
		WRITE_ONCE(file->f_ra_next, index + 1);
		if (!page && err)
			break;
		/* Invariant 4: the size may have dropped while we got the page. */
		isize = i_size_read(inode);
		if (pos >= isize) {
			if (page)
				put_page(page);
			break;
		}
		nr = min((uint64_t)(PAGE_SIZE - offset), (uint64_t)(isize - pos));
		nr = min(nr, iov_iter_count(to));
		if (page) {
			/* No page lock: a writer may be storing (compiler.h). */
			racy_reads_begin();
			copied = copy_page_to_iter(page, offset, nr, to);
			if (copied == nr)	/* else a fault ended it (compiler.h) */
				racy_reads_end();
			put_page(page);
		} else {
			copied = iov_iter_zero(nr, to);
		}
		pos += copied;
		done += copied;
		if (copied < nr) {
			err = -EFAULT;
			break;
		}
	}
	if (done) {
		stat_add(inode->i_sb, bytes_read, (uint64_t)done);
		stat_add(inode->i_sb, bytes_copied, (uint64_t)done);
	}
	return done ? done : err;
}

int grab_cache_page_write_begin(struct address_space *mapping, pgoff_t index,
				struct page **pagep)
{
	struct page *page;
	int err;

	err = filemap_get_page(mapping, index, FGP_LOCK | FGP_CREAT, &page);
	if (err)
		return err;
	/* Stable pages: don't change bytes the backend is writing out. */
	wait_on_page_writeback(page);
	*pagep = page;
	return 0;
}

/*
 * simple_write_begin/simple_write_end - for backends whose pages are the
 * only copy of the data (ramfs's simple_write_begin/end): a page that is
 * not uptodate is a hole, so its bytes outside the write are zeroes.
 */
int simple_write_begin(struct file *file, struct address_space *mapping,
		       loff_t pos, unsigned int len, struct page **pagep,
		       void **fsdata)
{
	size_t from = (size_t)pos & ~PAGE_MASK;
	struct page *page;
	int err;

	err = grab_cache_page_write_begin(mapping, (uint64_t)pos >> PAGE_SHIFT,
					  &page);
	if (err)
		return err;
	if (!PageUptodate(page) && len != PAGE_SIZE) {
		zero_user_segment(page, 0, from);
		zero_user_segment(page, from + len, PAGE_SIZE);
	}
	*pagep = page;
	return 0;
}

int simple_write_end(struct file *file, struct address_space *mapping,
		     loff_t pos, unsigned int len, unsigned int copied,
		     struct page *page, void *fsdata)
{
	struct inode *inode = mapping->host;
	loff_t end = pos + copied;

	if (!PageUptodate(page)) {
		if (copied < len) {
			/* BRIEF §4: a short copy into a new page commits nothing. */
			copied = 0;
			goto out_unlock;
		}
		SetPageUptodate(page);
	}
	/*
	 * Nothing copied, nothing grows: Linux's simple_write_end() would move
	 * i_size to pos here, leaving a file longer than any write made it
	 * (BRIEF §4: i_size must match what the writes returned).
	 */
	if (copied) {
		if (end > i_size_read(inode))
			i_size_grow(inode, end);
		folio_mark_dirty(page);
	}
out_unlock:
	unlock_page(page);
	put_page(page);
	return (int)copied;
}
