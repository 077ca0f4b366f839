/*
 * memory.c - the memory backend: files live only in the cache, as ramfs.
 *
 * It is the smallest complete backend, and so the example of the seam:
 *
 *  - super_operations: the namespace is the icache itself (a file exists
 *    iff the cache holds its inode), so lookup finds nothing the cache
 *    doesn't already have, create and unlink have nothing to do, and list
 *    walks the icache.
 *  - address_space_operations: there is no storage to read, so read_folio
 *    is NULL (a page nobody wrote is a hole: zeroes); write_begin/write_end
 *    are the generic "simple" pair; writepages "writes" a dirty page by
 *    declaring it clean, which lets fsync and the dirty/clean cycle behave
 *    as with a real backend.
 *  - AS_UNEVICTABLE: pages are the only copy of the data; the memory limit
 *    therefore acts as the filesystem's size (-ENOSPC when full).
 *  - perform_write (used when pcache_config.perform_write is set): the
 *    seed's second proposal.  The whole write runs in one loop, up to
 *    PERFORM_WRITE_BATCH pages at a time: pages are found or made and locked
 *    together (ascending), the bytes are copied with one no-fault copy per
 *    run of pages that sit side by side in the library's mapping, the batch
 *    is tagged dirty under one lock and i_size moves once - instead of a
 *    write_begin/copy/write_end round trip per page.  A refused or faulting
 *    copy unlocks everything, faults the source in and goes again; after
 *    PCACHE_MAX_ZERO_PROGRESS tries without progress one page goes through
 *    the bounce copy, so a source that keeps being invalidated cannot stall
 *    it.  Same rules as write_end: a page not uptodate that the copy did not
 *    fill commits nothing, and i_size moves only by what was committed.
 */
#include <errno.h>
#include <string.h>

#include "../fs/fs.h"
#include "../lib/iov_iter.h"
#include "../mm/page.h"

static int memory_writepage(struct page *page, struct writeback_control *wbc,
			    void *data)
{
	/* The page is the storage: nothing to copy anywhere. */
	folio_end_writeback(page);
	return 0;
}

static int memory_writepages(struct address_space *mapping,
			     struct writeback_control *wbc)
{
	return write_cache_pages(mapping, wbc, memory_writepage, NULL);
}

#define PERFORM_WRITE_BATCH	16
#ifndef PCACHE_MAX_ZERO_PROGRESS
#define PCACHE_MAX_ZERO_PROGRESS	8
#endif

/* Lock the pages of [pos, pos+len), creating holes; returns how many. */
static unsigned int lock_batch(struct address_space *mapping, loff_t pos,
			       size_t len, struct page **pages, int *err)
{
	pgoff_t first = (uint64_t)pos >> PAGE_SHIFT;
	pgoff_t last = ((uint64_t)pos + len - 1) >> PAGE_SHIFT;
	size_t from = (size_t)pos & ~PAGE_MASK;
	size_t to = (size_t)(((uint64_t)pos + len - 1) & ~PAGE_MASK) + 1;
	unsigned int nr = 0;

	for (; first + nr <= last; nr++) {
		struct page *page;

		*err = grab_cache_page_write_begin(mapping, first + nr, &page);
		if (*err)
			break;
		/* A hole: zero what this write will not cover. */
		if (!PageUptodate(page)) {
			if (nr == 0)
				zero_user_segment(page, 0, from);
			if (first + nr == last)
				zero_user_segment(page, to, PAGE_SIZE);
		}
		pages[nr] = page;
	}
	return nr;
}

/* Copy into the locked pages: one no-fault copy per contiguous run. */
static size_t copy_batch(struct page **pages, unsigned int nr, size_t from,
			 size_t len, struct iov_iter *i)
{
	size_t copied = 0;
	unsigned int k = 0;

	while (k < nr && copied < len) {
		unsigned int j = k;
		size_t run, got;

		while (j + 1 < nr &&
		       page_address(pages[j + 1]) == page_address(pages[j]) + PAGE_SIZE)
			j++;
		run = min((size_t)(j - k + 1) * PAGE_SIZE - (k ? 0 : from),
			  len - copied);
		got = copy_from_iter_atomic(page_address(pages[k]) + (k ? 0 : from),
					    run, i);
		copied += got;
		if (got < run)
			break;
		k = j + 1;
	}
	return copied;
}

static ssize_t memory_perform_write(struct file *file, struct iov_iter *i,
				    loff_t pos)
{
	struct address_space *mapping = file_mapping(file);
	struct inode *inode = mapping->host;
	struct page *pages[PERFORM_WRITE_BATCH];
	unsigned int tries = 0, nr, k;
	loff_t start = pos;
	ssize_t written = 0;
	int err = 0;

	while (iov_iter_count(i)) {
		size_t from = (size_t)pos & ~PAGE_MASK;
		size_t len = min(iov_iter_count(i),
				 PERFORM_WRITE_BATCH * PAGE_SIZE - from);
		size_t copied, committed;

		nr = lock_batch(mapping, pos, len, pages, &err);
		if (!nr)
			break;
		len = min(len, (size_t)nr * PAGE_SIZE - from);
		copied = copy_batch(pages, nr, from, len, i);
		stat_add(inode->i_sb, bytes_copied, copied);

		/* A page not uptodate that the copy did not fill commits nothing. */
		committed = copied;
		if (copied < len) {
			k = (unsigned int)((from + copied) >> PAGE_SHIFT);
			if (!PageUptodate(pages[k]))
				committed = k ? (size_t)k * PAGE_SIZE - from : 0;
			iov_iter_revert(i, copied - committed);
		}
		/* Pages wholly or partly committed: uptodate, dirty. */
		k = committed ? (unsigned int)((from + committed - 1) >> PAGE_SHIFT) + 1 : 0;
		for (unsigned int p = 0; p < k; p++)
			SetPageUptodate(pages[p]);
		if (k)
			mapping_mark_dirty_batch(mapping, pages, k);
		if (committed && pos + (loff_t)committed > i_size_read(inode))
			i_size_grow(inode, pos + (loff_t)committed);
		for (k = 0; k < nr; k++) {
			unlock_page(pages[k]);
			put_page(pages[k]);
		}

		pos += committed;
		written += committed;
		if (committed) {
			tries = 0;
			continue;
		}
		/* No progress: nothing is locked now; make the source present. */
		if (++tries >= PCACHE_MAX_ZERO_PROGRESS) {
			ssize_t n = write_chunk_bounce(file, i, pos,
				min(iov_iter_count(i), PAGE_SIZE - from));

			if (n < 0) {
				err = (int)n;
				break;
			}
			pos += n;
			written += n;
			tries = 0;
			continue;
		}
		if (fault_in_iov_iter_readable(i, min(iov_iter_count(i),
						      PAGE_SIZE - from)) ==
		    min(iov_iter_count(i), PAGE_SIZE - from)) {
			err = -EFAULT;
			break;
		}
	}
	if (iov_iter_count(i))
		write_failed(mapping, start + written + (loff_t)iov_iter_count(i));
	return written ? written : err;
}

static const struct address_space_operations memory_aops = {
	.read_folio	= NULL,		/* holes read as zeroes */
	.write_begin	= simple_write_begin,
	.write_end	= simple_write_end,
	.perform_write	= memory_perform_write,
	.writepages	= memory_writepages,
	.dirty_folio	= filemap_dirty_folio,
};

static int memory_lookup(struct pcache *pc, const char *name,
			 struct inode *inode)
{
	return -ENOENT;		/* not in the icache: does not exist */
}

static int memory_create(struct pcache *pc, const char *name, mode_t mode,
			 struct inode *inode)
{
	/* Flat namespace: no directories to create files in. */
	if (strchr(name, '/'))
		return -ENOTDIR;
	inode->i_mode = S_IFREG | (mode & 07777);
	return 0;
}

static int memory_unlink(struct pcache *pc, const char *name)
{
	return 0;
}

const struct super_operations memory_super_ops = {
	.name		= "memory",
	.a_ops		= &memory_aops,
	.as_flags	= AS_UNEVICTABLE,
	.lookup		= memory_lookup,
	.create		= memory_create,
	.unlink		= memory_unlink,
	.list		= icache_list,
};
