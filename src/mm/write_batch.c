/*
 * write_batch.c - the batched copy loop a backend's perform_write can use
 * (the seed's second proposal: the backend takes the whole write).
 *
 * Instead of a write_begin/copy/write_end round trip per page, the loop
 * takes up to WRITE_BATCH pages at a time:
 *
 *   find or make the pages, lock them in ascending order, ops->prepare the
 *   ones that are not uptodate -> one no-fault copy per run of pages that
 *   sit side by side in the library's mapping -> ops->commit each page the
 *   copy filled -> tag them dirty under one lock -> move i_size once ->
 *   unlock -> throttle (balance_dirty_pages_ratelimited).
 *
 * The rules are write_end's: a page not uptodate that the copy did not fill
 * commits nothing, and i_size moves only by what was committed.  A refused
 * or faulting copy unlocks everything, faults the source in and goes again;
 * after PCACHE_MAX_ZERO_PROGRESS tries without progress one page goes
 * through the bounce copy, so a source that keeps being invalidated cannot
 * stall the write.  Pages are locked in index order only (docs/locking.md).
 */
#include <errno.h>

#include "../fs/fs.h"
#include "../lib/iov_iter.h"
#include "filemap.h"
#include "page.h"

#define WRITE_BATCH	16
#ifndef PCACHE_MAX_ZERO_PROGRESS
#define PCACHE_MAX_ZERO_PROGRESS	8
#endif

/* Bytes [*from, *to) of page @k of a batch starting at @pos, @len long. */
static void batch_span(loff_t pos, size_t len, unsigned int k, size_t *from,
		       size_t *to)
{
	uint64_t first = (uint64_t)pos >> PAGE_SHIFT;
	uint64_t start = max((uint64_t)pos, (first + k) << PAGE_SHIFT);
	uint64_t end = min((uint64_t)pos + len, (first + k + 1) << PAGE_SHIFT);

	*from = (size_t)start & ~PAGE_MASK;
	*to = *from + (size_t)(end - start);
}

/* Lock and prepare the pages of [pos, pos+len); returns how many. */
static unsigned int lock_batch(struct file *file, struct address_space *mapping,
			       loff_t pos, size_t len, struct page **pages,
			       const struct write_batch_ops *ops, int *err)
{
	pgoff_t first = (uint64_t)pos >> PAGE_SHIFT;
	pgoff_t last = ((uint64_t)pos + len - 1) >> PAGE_SHIFT;
	unsigned int nr = 0;

	for (; first + nr <= last; nr++) {
		struct page *page;
		size_t from, to;

		*err = grab_cache_page_write_begin(mapping, first + nr, &page);
		if (*err)
			break;
		if (!PageUptodate(page)) {
			batch_span(pos, len, nr, &from, &to);
			*err = ops->prepare(file, page, from, to);
			if (*err) {
				unlock_page(page);
				put_page(page);
				break;
			}
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

ssize_t batch_perform_write(struct file *file, struct iov_iter *i, loff_t pos,
			    const struct write_batch_ops *ops)
{
	struct address_space *mapping = file_mapping(file);
	struct inode *inode = mapping->host;
	struct page *pages[WRITE_BATCH];
	unsigned int tries = 0, nr, k;
	loff_t start = pos;
	ssize_t written = 0;
	int err = 0;

	while (iov_iter_count(i)) {
		size_t from = (size_t)pos & ~PAGE_MASK;
		size_t len = min(iov_iter_count(i), WRITE_BATCH * PAGE_SIZE - from);
		size_t copied, committed;

		nr = lock_batch(file, mapping, pos, len, pages, ops, &err);
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
		k = committed ? (unsigned int)((from + committed - 1) >> PAGE_SHIFT) + 1 : 0;
		for (unsigned int p = 0; p < k; p++) {
			size_t pf, pt;

			batch_span(pos, committed, p, &pf, &pt);
			ops->commit(pages[p], pf, pt);
		}
		if (k)
			mapping_mark_dirty_batch(mapping, pages, k);
		if (committed && pos + (loff_t)committed > i_size_read(inode))
			i_size_grow(inode, pos + (loff_t)committed);
		for (k = 0; k < nr; k++) {
			unlock_page(pages[k]);
			put_page(pages[k]);
		}
		balance_dirty_pages_ratelimited(mapping);

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
