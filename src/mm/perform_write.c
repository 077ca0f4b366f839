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
 * Strategies built so far (the strategies issue adds bounce-opt, atomic and
 * optimistic on top of the views' no-fault copy):
 *
 *   naive   2.6.20: copy straight from the source with the page locked.  A
 *           faulting copy is zero-padded to the full length, as the old
 *           __copy_from_user did, and the zeroes are committed: the
 *           corruption of the seed, kept to prove the tests can see it.
 *           If the source is a view of the locked page, the copy's fault
 *           needs the lock we hold: the seed's deadlocks.
 *   bounce  the 2007 RFC: copy the source into this thread's bounce page
 *           with no lock held (a fault there is harmless), then lock the
 *           page and memcpy.  Only bytes that were really copied are
 *           committed.
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
static void write_failed(struct address_space *mapping, loff_t to)
{
	struct inode *inode = mapping->host;
	loff_t isize = i_size_read(inode);

	if (to > isize)
		truncate_inode_pages_range(mapping,
					   PAGE_ALIGN((uint64_t)isize) >> PAGE_SHIFT);
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
		__atomic_fetch_add(&st->short_copies, 1, __ATOMIC_RELAXED);
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
	__atomic_fetch_add(&st->bounce_bytes, copied, __ATOMIC_RELAXED);
	if (copied < bytes)
		__atomic_fetch_add(&st->short_copies, 1, __ATOMIC_RELAXED);
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
	if (status < 0) {
		iov_iter_revert(i, copied);
		return status;
	}
	if ((size_t)status < copied)
		iov_iter_revert(i, copied - status);
	return status ? status : -EFAULT;
}

ssize_t generic_perform_write(struct file *file, struct iov_iter *i,
			      loff_t pos)
{
	struct address_space *mapping = file_mapping(file);
	struct pcache *pc = mapping->host->i_sb;
	struct pcache_strategy_stats *st = &pc->stats.strategy[file->f_strategy];
	ssize_t written = 0, status = 0;

	if (mapping->a_ops->perform_write) {
		written = mapping->a_ops->perform_write(file, i, pos);
		goto out;
	}
	while (iov_iter_count(i)) {
		size_t offset = (size_t)pos & ~PAGE_MASK;
		size_t bytes = min(PAGE_SIZE - offset, iov_iter_count(i));
		size_t before = iov_iter_count(i);

		switch (file->f_strategy) {
		case PCACHE_WRITE_NAIVE:
			status = write_page_naive(file, mapping, i, pos, bytes, st);
			break;
		case PCACHE_WRITE_BOUNCE:
			status = write_page_bounce(file, mapping, i, pos, bytes, st);
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
		/* A short page (fault part way) ends the write. */
		if ((size_t)status < bytes || before - iov_iter_count(i) < bytes)
			break;
	}
out:
	if (written > 0) {
		__atomic_fetch_add(&st->writes, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&st->bytes, (uint64_t)written, __ATOMIC_RELAXED);
		stat_add(pc, bytes_written, (uint64_t)written);
	}
	return written ? written : status;
}
