/*
 * perform_write.c - the buffered write loop, generic_perform_write(), and
 * the write strategies that decide how bytes get from the caller's buffer
 * into a locked page (docs/write-path.md).
 *
 * The loop, page by page (pos, bytes <= the rest of the page):
 *
 *     write_begin(pos, bytes)  -> page locked, ready
 *     copy source -> page      (how: the strategy)
 *     write_end(copied)        -> dirty, i_size, unlocked
 *
 * The strategies (BRIEF §3):
 *
 *   naive       2.6.20: copy straight from the source with the page locked.
 *               A faulting copy is zero-padded to the full length, as the
 *               old __copy_from_user did, and the zeroes are committed: the
 *               corruption of the seed, kept to prove the tests can see it.
 *               If the source is a view of the locked page, the copy's fault
 *               needs the lock we hold: the seed's deadlocks.
 *   bounce      the 2007 RFC: copy the source into this thread's bounce page
 *               with no lock held (a fault there is harmless), then lock the
 *               page and memcpy.  Only bytes really copied are committed.
 *   bounce-opt  bounce, but one copy where that is safe: (b) into a page
 *               that is already uptodate, in place, with no page lock held
 *               while copying (i_rwsem keeps other writers and truncate out;
 *               a short copy leaves old bytes, never zeroes; a page still
 *               dirty afterwards needs no commit: commit_not_needed); (a) a full-page
 *               write into a page that was not in the cache, copied with
 *               faults refused (it is locked and not uptodate, so a fault
 *               needing it must not wait); short: bounce for that page.
 *   atomic      2.6.24: fault the source in with no lock held, lock the
 *               page, copy with faults refused (copy_page_from_iter_atomic),
 *               write_end(copied); retry what came up short.
 *   optimistic  6.14: atomic without the up-front fault-in: copy first, and
 *               fault in only after a copy made no progress, page unlocked.
 *
 * Forward progress (xfstests generic/729): a source that is invalidated
 * again and again between fault-in and copy can make the atomic copies
 * fail forever; after PCACHE_MAX_ZERO_PROGRESS attempts without progress a
 * chunk falls back to the bounce copy, which cannot be starved.
 *
 * Return value (BRIEF §4): the bytes written before a fault, or -EFAULT if
 * none; the file's bytes and i_size match the return value.  A failed write
 * that left pages past i_size trims them (the seed's vmtruncate step).
 */
#include <errno.h>
#include <string.h>

#include "../fs/fs.h"
#include "../lib/iov_iter.h"
#include "filemap.h"
#include "page.h"

/* bounce-opt: pages copied at once by one in-place run (b). */
#define BOUNCE_OPT_RUN		64

#ifndef PCACHE_MAX_ZERO_PROGRESS
#define PCACHE_MAX_ZERO_PROGRESS	8
#endif

/* One per thread: the temp page of the bounce copy. */
static __thread char bounce_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

static int mapping_write_begin(struct file *file, struct address_space *mapping,
			       loff_t pos, unsigned int len,
			       struct page **pagep, void **fsdata)
{
	int err;

	assert(len && ((size_t)pos & ~PAGE_MASK) + len <= PAGE_SIZE);
	err = mapping->a_ops->write_begin(file, mapping, pos, len, pagep,
					  fsdata);
	assert(err || (PageLocked(*pagep) && (*pagep)->mapping == mapping));
	return err;
}

/*
 * After write_end committed @status of @copied bytes (or failed): put the
 * iterator back over what was copied but not committed.  Returns @status.
 */
static int uncopy_uncommitted(struct iov_iter *i, size_t copied, int status)
{
	if (status < 0)
		iov_iter_revert(i, copied);
	else if ((size_t)status < copied)
		iov_iter_revert(i, copied - status);
	return status;
}

static int mapping_write_end(struct file *file, struct address_space *mapping,
			     loff_t pos, unsigned int len, unsigned int copied,
			     struct page *page, void *fsdata)
{
	int ret;

	assert(PageLocked(page) && copied <= len);
	ret = mapping->a_ops->write_end(file, mapping, pos, len, copied, page,
					fsdata);
	assert(ret < 0 || (unsigned int)ret <= copied);
	return ret;
}

/*
 * Pages past i_size made by a write that then failed hold nothing: drop
 * them, as the kernel's write_failed() -> truncate_pagecache() does.
 */
void write_failed(struct address_space *mapping, loff_t to)
{
	struct inode *inode = mapping->host;
	loff_t isize = i_size_read(inode);

	if (to > isize) {
		truncate_inode_pages_range(mapping,
					   PAGE_ALIGN((uint64_t)isize) >> PAGE_SHIFT);
		if (mapping->a_ops->release_blocks)
			mapping->a_ops->release_blocks(inode, isize, to);
	}
}

/* One page's worth of the naive strategy: returns bytes copied or -errno. */
static ssize_t write_page_naive(struct file *file,
				struct address_space *mapping,
				struct iov_iter *i, loff_t pos, size_t bytes,
				struct pcache_strategy_stats *st)
{
	size_t offset = (size_t)pos & ~PAGE_MASK, copied;
	struct page *page;
	void *fsdata = NULL;
	int status;

	status = mapping_write_begin(file, mapping, pos, bytes, &page, &fsdata);
	if (status)
		return status;
	copied = copy_page_from_iter(page, offset, bytes, i);
	stat_add(mapping->host->i_sb, bytes_copied, copied);
	if (copied < bytes) {
		/* 2.6.20's __copy_from_user zero-padded what it could not copy. */
		zero_user_segment(page, offset + copied, offset + bytes);
		stat_count(&st->short_copies, 1);
	}
	/* ... and commit_write committed all of it, zeroes included. */
	status = mapping_write_end(file, mapping, pos, bytes, bytes, page,
				   fsdata);
	if (status < 0)
		return status;
	return copied ? (ssize_t)copied : -EFAULT;
}

/* One page's worth of the bounce strategy. */
static ssize_t write_page_bounce(struct file *file,
				 struct address_space *mapping,
				 struct iov_iter *i, loff_t pos, size_t bytes,
				 struct pcache_strategy_stats *st)
{
	size_t offset = (size_t)pos & ~PAGE_MASK, copied;
	struct page *page;
	void *fsdata = NULL;
	int status;

	/* No lock held: a fault here, even on a view of this page, is harmless. */
	copied = copy_from_iter(bounce_page + offset, bytes, i);
	stat_count(&st->bounce_bytes, copied);
	if (copied < bytes)
		stat_count(&st->short_copies, 1);
	if (!copied)
		return -EFAULT;

	status = mapping_write_begin(file, mapping, pos, copied, &page, &fsdata);
	if (status) {
		iov_iter_revert(i, copied);
		return status;
	}
	memcpy(page_address(page) + offset, bounce_page + offset, copied);
	stat_add(mapping->host->i_sb, bytes_copied, 2 * copied);
	status = mapping_write_end(file, mapping, pos, copied, copied, page,
				   fsdata);
	status = uncopy_uncommitted(i, copied, status);
	return status ? status : -EFAULT;
}

/*
 * One locked-page round with faults refused: write_begin, no-fault copy,
 * write_end.  Returns the bytes committed (0: none, the iterator is back
 * where it was) or a negative errno; *copiedp says how far the copy got.
 */
static ssize_t write_page_nofault_once(struct file *file,
				       struct address_space *mapping,
				       struct iov_iter *i, loff_t pos,
				       size_t bytes, size_t *copiedp)
{
	size_t offset = (size_t)pos & ~PAGE_MASK, copied;
	struct page *page;
	void *fsdata = NULL;
	int status;

	*copiedp = 0;
	status = mapping_write_begin(file, mapping, pos, bytes, &page, &fsdata);
	if (status)
		return status;
	copied = copy_page_from_iter_atomic(page, offset, bytes, i);
	stat_add(mapping->host->i_sb, bytes_copied, copied);
	status = mapping_write_end(file, mapping, pos, bytes, copied, page,
				   fsdata);
	*copiedp = copied;
	return uncopy_uncommitted(i, copied, status);
}

/*
 * atomic and optimistic: copy with faults refused, under the page lock.
 * Returns the bytes committed (> 0), or a negative errno.
 */
static ssize_t write_page_atomic(struct file *file,
				 struct address_space *mapping,
				 struct iov_iter *i, loff_t pos, size_t bytes,
				 struct pcache_strategy_stats *st, bool prefault)
{
	bool fault_in = prefault;
	unsigned int tries = 0;
	ssize_t status;
	size_t copied;

	for (;;) {
		/* No lock held: a view fault here is served normally. */
		if (fault_in && fault_in_iov_iter_readable(i, bytes) == bytes)
			return -EFAULT;
		status = write_page_nofault_once(file, mapping, i, pos, bytes,
						 &copied);
		if (status < 0)
			return status;
		if (copied < bytes)
			stat_count(&st->short_copies, 1);
		if (status > 0)
			return status;

		/* No progress: page unlocked now, its faults can be served. */
		stat_count(&st->retries, 1);
		if (++tries >= PCACHE_MAX_ZERO_PROGRESS) {
			stat_count(&st->fallbacks, 1);
			return write_page_bounce(file, mapping, i, pos, bytes, st);
		}
		if (copied) {
			/* Short into a !uptodate page: retry what we did get. */
			bytes = copied;
			fault_in = prefault;
		} else {
			fault_in = true;
		}
	}
}

/*
 * After an in-place copy into @page (uptodate, referenced, i_rwsem held)
 * that ends at file offset @end: can the commit be skipped?  Yes if the
 * page is still dirty and not under writeback: writeback has yet to take
 * it and will write what was copied.  The caller has fenced its stores
 * before this load (a Dekker pair with writeback's atomic clear of
 * PG_dirty before it reads the bytes: either we see the page clean and
 * commit it under its lock, or writeback sees our bytes).  Not with
 * sub-page blocks, where only dirty blocks are written, and not when
 * i_size must move.
 */
static bool commit_not_needed(struct address_space *mapping, struct page *page,
			      loff_t end)
{
	return !(mapping->flags & AS_BLOCKS) &&
	       end <= i_size_read(mapping->host) &&
	       (page_flags(page) & (PG_dirty | PG_writeback)) == PG_dirty;
}

/* bounce-opt: one copy where it is safe (see the top), else bounce. */
static ssize_t write_page_bounce_opt(struct file *file,
				     struct address_space *mapping,
				     struct iov_iter *i, loff_t pos,
				     size_t bytes,
				     struct pcache_strategy_stats *st)
{
	size_t offset = (size_t)pos & ~PAGE_MASK, copied;
	pgoff_t index = (uint64_t)pos >> PAGE_SHIFT;
	struct page *page, *locked;
	void *fsdata = NULL;
	int status;

	if (filemap_get_page(mapping, index, 0, &page)) {
		/* (a) Not cached: a full page can go straight into a new one. */
		if (bytes != PAGE_SIZE)
			return write_page_bounce(file, mapping, i, pos, bytes, st);
		status = write_page_nofault_once(file, mapping, i, pos, bytes,
						 &copied);
		if (status)
			return status;
		/* Refused or faulted: the temp page copes with anything. */
		stat_count(&st->short_copies, 1);
		stat_count(&st->fallbacks, 1);
		return write_page_bounce(file, mapping, i, pos, bytes, st);
	}
	if (!PageUptodate(page)) {
		put_page(page);
		return write_page_bounce(file, mapping, i, pos, bytes, st);
	}

	/*
	 * (b) Uptodate: copy in place with no page lock held, so a fault on a
	 * view of this very page can be served.  i_rwsem keeps writers and
	 * truncate out; our reference keeps the page in the cache.  A short
	 * copy leaves the old bytes after it: the page stays whole.
	 */
	wait_on_page_writeback(page);
	copied = copy_page_from_iter(page, offset, bytes, i);
	stat_add(mapping->host->i_sb, bytes_copied, copied);
	if (!copied) {
		put_page(page);
		return -EFAULT;
	}
	if (copied < bytes)
		stat_count(&st->short_copies, 1);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (commit_not_needed(mapping, page, pos + (loff_t)copied)) {
		put_page(page);
		return (ssize_t)copied;
	}
	status = mapping_write_begin(file, mapping, pos, copied, &locked,
				     &fsdata);
	if (status) {
		iov_iter_revert(i, copied);
		put_page(page);
		return status;
	}
	assert(locked == page);	/* i_rwsem + our reference: the same page */
	status = mapping_write_end(file, mapping, pos, copied, copied, locked,
				   fsdata);
	put_page(page);
	status = uncopy_uncommitted(i, copied, status);
	return status ? status : -EFAULT;
}

/*
 * bounce-opt (b) over a run of cached, uptodate pages that are contiguous
 * in the library's mapping: one guarded copy for the whole run, then a
 * write_begin/write_end commit per page.  A locked instruction right after
 * a page copy (lock, unlock, refcount) waits for that copy's stores to
 * drain; copying the run first pays that once per run, not once per page.
 * The rules are (b)'s: no page lock while copying, i_rwsem keeps writers
 * and truncate out, our references keep the pages in the cache, a short
 * copy leaves old bytes after it and commits only what was copied.
 * Returns bytes committed, 0 if there is no run of two pages here (the
 * caller goes page by page), or a negative errno.
 */
static ssize_t write_run_bounce_opt(struct file *file,
				    struct address_space *mapping,
				    struct iov_iter *i, loff_t pos,
				    struct pcache_strategy_stats *st)
{
	size_t offset = (size_t)pos & ~PAGE_MASK, copied, done = 0, len;
	pgoff_t index = (uint64_t)pos >> PAGE_SHIFT, last;
	struct page *pages[BOUNCE_OPT_RUN], *page, *locked;
	uint64_t indices[BOUNCE_OPT_RUN];
	unsigned int nr = 0, found, k;
	void *fsdata = NULL;
	ssize_t status = 0;

	len = min(iov_iter_count(i), BOUNCE_OPT_RUN * PAGE_SIZE - offset);
	last = ((uint64_t)pos + len - 1) >> PAGE_SHIFT;
	/* The run's pages under one hold of the index lock. */
	pthread_rwlock_rdlock(&mapping->i_pages_lock);
	found = radix_gang_lookup(&mapping->i_pages, (void **)pages, indices,
				  index, (unsigned int)(last - index + 1));
	for (; nr < found; nr++) {
		page = pages[nr];
		if (indices[nr] != index + nr || !PageUptodate(page) ||
		    (nr && page_address(page) !=
			   page_address(pages[0]) + (size_t)nr * PAGE_SIZE))
			break;
		get_page(page);
	}
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	if (nr < 2)
		goto out_put;
	len = min(len, (size_t)nr * PAGE_SIZE - offset);
	for (k = 0; k < nr; k++)
		wait_on_page_writeback(pages[k]);
	copied = copy_from_iter(page_address(pages[0]) + offset, len, i);
	stat_add(mapping->host->i_sb, bytes_copied, copied);
	if (copied < len)
		stat_count(&st->short_copies, 1);
	status = -EFAULT;
	/* Pages already dirty need no commit (commit_not_needed). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (k = 0; done < copied; k++) {
		size_t from = k ? 0 : offset;
		size_t bytes = min(PAGE_SIZE - from, copied - done);

		if (commit_not_needed(mapping, pages[k],
				      pos + (loff_t)(done + bytes))) {
			done += bytes;
			continue;
		}
		status = mapping_write_begin(file, mapping, pos + (loff_t)done,
					     bytes, &locked, &fsdata);
		if (status)
			break;
		assert(locked == pages[k]);	/* as in (b) */
		status = mapping_write_end(file, mapping, pos + (loff_t)done,
					   bytes, bytes, locked, fsdata);
		if (status < 0)
			break;
		done += status;
		if ((size_t)status < bytes)
			break;
	}
	if (done < copied)
		iov_iter_revert(i, copied - done);
	if (done)
		status = (ssize_t)done;
out_put:
	while (nr)
		put_page(pages[--nr]);
	return status;
}

ssize_t write_chunk_bounce(struct file *file, struct iov_iter *i, loff_t pos,
			   size_t bytes)
{
	struct address_space *mapping = file_mapping(file);
	struct pcache *pc = mapping->host->i_sb;

	return write_page_bounce(file, mapping, i, pos, bytes,
				 &stat_this(pc)->strategy[PCACHE_WRITE_BOUNCE]);
}

ssize_t generic_perform_write(struct file *file, struct iov_iter *i,
			      loff_t pos)
{
	struct address_space *mapping = file_mapping(file);
	struct pcache *pc = mapping->host->i_sb;
	ssize_t written;

	if (mapping->a_ops->perform_write && pc->cfg.perform_write) {
		written = mapping->a_ops->perform_write(file, i, pos);
		if (written > 0) {
			stat_add(pc, perform_write_calls, 1);
			stat_add(pc, bytes_written, (uint64_t)written);
		}
		return written;
	}
	return generic_perform_write_pages(file, i, pos);
}

ssize_t generic_perform_write_pages(struct file *file, struct iov_iter *i,
				    loff_t pos)
{
	struct address_space *mapping = file_mapping(file);
	struct pcache *pc = mapping->host->i_sb;
	int strategy = READ_ONCE(file->f_strategy);	/* one per write */
	struct pcache_strategy_stats *st = &stat_this(pc)->strategy[strategy];
	ssize_t written = 0, status = 0;

	while (iov_iter_count(i)) {
		size_t offset = (size_t)pos & ~PAGE_MASK;
		size_t bytes = min(PAGE_SIZE - offset, iov_iter_count(i));
		size_t before = iov_iter_count(i);

		switch (strategy) {
		case PCACHE_WRITE_NAIVE:
			status = write_page_naive(file, mapping, i, pos, bytes, st);
			break;
		case PCACHE_WRITE_BOUNCE:
			status = write_page_bounce(file, mapping, i, pos, bytes, st);
			break;
		case PCACHE_WRITE_BOUNCE_OPT:
			status = 0;
			if (bytes < iov_iter_count(i))
				status = write_run_bounce_opt(file, mapping, i,
							      pos, st);
			if (!status)
				status = write_page_bounce_opt(file, mapping, i,
							       pos, bytes, st);
			break;
		case PCACHE_WRITE_ATOMIC:
		case PCACHE_WRITE_OPTIMISTIC:
			status = write_page_atomic(file, mapping, i, pos, bytes, st,
						   strategy == PCACHE_WRITE_ATOMIC);
			break;
		default:
			status = -EOPNOTSUPP;
			break;
		}
		if (status < 0) {
			write_failed(mapping, pos + (loff_t)bytes);
			break;
		}
		pos += status;
		written += status;
		balance_dirty_pages_ratelimited(mapping);
		/*
		 * 2.6.20 stopped at the first short copy (after committing its
		 * zeroes).  The others go on: a short copy may have been a refused
		 * view fault, and the next round faults in; a real fault gives a
		 * round with no progress, which ends the write with -EFAULT.
		 */
		if (strategy == PCACHE_WRITE_NAIVE &&
		    before - iov_iter_count(i) < bytes)
			break;
	}
	if (written > 0) {
		stat_count(&st->writes, 1);
		stat_count(&st->bytes, (uint64_t)written);
		stat_add(pc, bytes_written, (uint64_t)written);
	}
	return written ? written : status;
}
