/*
 * writeback.c - dirty pages and writing them back (the kernel's
 * mm/page-writeback.c, synchronous).
 *
 * A page is dirty when PG_dirty is set; the index carries RADIX_TAG_DIRTY
 * for it, so writeback finds dirty pages without walking clean ones.
 *
 *   folio_mark_dirty()          clean -> dirty       (write_end, view store)
 *   clear_page_dirty_for_io()   dirty -> clean       (page locked, before I/O)
 *   set_page_writeback()        -> writeback         (page locked)
 *   end_page_writeback()        writeback -> done    (I/O finished)
 *
 * Tags change under the mapping's i_pages_lock (write side), flags with
 * atomics; PG_dirty is set before the tag and cleared before the tag, so a
 * tagged walk may see a clean page (skipped) but never miss a dirty one.
 *
 * Errors: a failed page write is recorded with mapping_set_error() in the
 * mapping's errseq_t; fsync reports it once per open file.
 */
#include <errno.h>
#include <limits.h>

#include "../fs/fs.h"
#include "filemap.h"
#include "mm.h"
#include "page.h"

bool filemap_dirty_folio(struct address_space *mapping, struct page *page)
{
	struct pcache *pc = mapping->host->i_sb;

	if (TestSetPageDirty(page))
		return false;
	__atomic_add_fetch(&pc->nr_dirty, 1, __ATOMIC_RELAXED);
	pthread_rwlock_wrlock(&mapping->i_pages_lock);
	if (page->mapping == mapping)
		radix_tag_set(&mapping->i_pages, page->index, RADIX_TAG_DIRTY);
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	return true;
}

void mapping_mark_dirty_batch(struct address_space *mapping,
			      struct page **pages, unsigned int nr)
{
	struct pcache *pc = mapping->host->i_sb;
	unsigned int k, newly = 0;
	bool dirtied[nr];

	for (k = 0; k < nr; k++) {
		assert(PageLocked(pages[k]) && PageUptodate(pages[k]));
		dirtied[k] = !TestSetPageDirty(pages[k]);
		newly += dirtied[k];
	}
	if (!newly)
		return;
	__atomic_add_fetch(&pc->nr_dirty, newly, __ATOMIC_RELAXED);
	pthread_rwlock_wrlock(&mapping->i_pages_lock);
	for (k = 0; k < nr; k++)
		if (dirtied[k])
			radix_tag_set(&mapping->i_pages, pages[k]->index,
				      RADIX_TAG_DIRTY);
	pthread_rwlock_unlock(&mapping->i_pages_lock);
}

bool folio_mark_dirty(struct page *page)
{
	struct address_space *mapping = page->mapping;

	assert(PageUptodate(page));
	/* Fast path: already dirty, nothing to tag. */
	if (PageDirty(page))
		return false;
	if (mapping->a_ops->dirty_folio)
		return mapping->a_ops->dirty_folio(mapping, page);
	return filemap_dirty_folio(mapping, page);
}

bool clear_page_dirty_for_io(struct page *page)
{
	struct address_space *mapping = page->mapping;
	struct pcache *pc = mapping->host->i_sb;

	assert(PageLocked(page));
	if (!TestClearPageDirty(page))
		return false;
	__atomic_sub_fetch(&pc->nr_dirty, 1, __ATOMIC_RELAXED);
	pthread_rwlock_wrlock(&mapping->i_pages_lock);
	radix_tag_clear(&mapping->i_pages, page->index, RADIX_TAG_DIRTY);
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	return true;
}

void folio_end_writeback(struct page *page)
{
	struct pcache *pc = page->home->host->i_sb;

	end_page_writeback(page);
	__atomic_sub_fetch(&pc->nr_writeback, 1, __ATOMIC_RELAXED);
}

void mapping_set_error(struct address_space *mapping, int err)
{
	if (err < 0)
		errseq_set(&mapping->wb_err, err);
}

int write_cache_pages(struct address_space *mapping,
		      struct writeback_control *wbc, writepage_t writepage,
		      void *data)
{
	struct pcache *pc = mapping->host->i_sb;
	pgoff_t index = (uint64_t)wbc->range_start >> PAGE_SHIFT;
	pgoff_t end = (uint64_t)wbc->range_end >> PAGE_SHIFT;
	struct page *batch[16];
	uint64_t indices[16];
	unsigned int n, i;
	int ret = 0;

	while (index <= end) {
		pthread_rwlock_rdlock(&mapping->i_pages_lock);
		n = radix_gang_lookup_tag(&mapping->i_pages, (void **)batch,
					  indices, index, ARRAY_SIZE(batch),
					  RADIX_TAG_DIRTY);
		for (i = 0; i < n; i++)
			get_page(batch[i]);
		pthread_rwlock_unlock(&mapping->i_pages_lock);
		if (!n)
			break;
		for (i = 0; i < n; i++) {
			struct page *page = batch[i];
			int err;

			index = indices[i] + 1;
			if (indices[i] > end) {
				put_page(page);
				continue;
			}
			lock_page(page);
			if (page->mapping != mapping || !PageDirty(page))
				goto next;
			if (PageWriteback(page)) {
				if (!wbc->sync)
					goto next;
				wait_on_page_writeback(page);
			}
			/* Stores through views must fault again once it is clean. */
			page_mkclean(page);
			if (!clear_page_dirty_for_io(page))
				goto next;
			set_page_writeback(page);
			__atomic_add_fetch(&pc->nr_writeback, 1, __ATOMIC_RELAXED);
			err = writepage(page, wbc, data);
			if (err) {
				mapping_set_error(mapping, err);
				if (!ret)
					ret = err;
			} else {
				wbc->nr_written++;
				stat_add(pc, writeback_pages, 1);
			}
next:
			unlock_page(page);
			put_page(page);
		}
		if (index == 0)		/* wrapped past the last index */
			break;
	}
	return ret;
}

/* Wait for writeback already in flight on the range's pages. */
static void wait_range_writeback(struct address_space *mapping, pgoff_t index,
				 pgoff_t end)
{
	struct page *batch[16];
	uint64_t indices[16];
	unsigned int n, i;

	while (index <= end) {
		pthread_rwlock_rdlock(&mapping->i_pages_lock);
		n = radix_gang_lookup_tag(&mapping->i_pages, (void **)batch,
					  indices, index, ARRAY_SIZE(batch),
					  RADIX_TAG_WRITEBACK);
		for (i = 0; i < n; i++)
			get_page(batch[i]);
		pthread_rwlock_unlock(&mapping->i_pages_lock);
		if (!n)
			return;
		for (i = 0; i < n; i++) {
			index = indices[i] + 1;
			if (indices[i] <= end)
				wait_on_page_writeback(batch[i]);
			put_page(batch[i]);
		}
		if (index == 0)
			return;
	}
}

int filemap_write_and_wait_range(struct address_space *mapping, loff_t start,
				 loff_t end)
{
	struct writeback_control wbc = {
		.range_start = start,
		.range_end = end,
		.sync = true,
	};
	int err = 0;
	bool dirty;

	if (!mapping->a_ops->writepages)
		return 0;

	pthread_rwlock_rdlock(&mapping->i_pages_lock);
	dirty = radix_tagged(&mapping->i_pages, RADIX_TAG_DIRTY);
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	if (dirty)
		err = mapping->a_ops->writepages(mapping, &wbc);
	/*
	 * Synchronous backends end writeback inside writepage; backends that
	 * batch I/O tag pages RADIX_TAG_WRITEBACK and are waited for here.
	 */
	wait_range_writeback(mapping, (uint64_t)start >> PAGE_SHIFT,
			     (uint64_t)end >> PAGE_SHIFT);
	return err;
}
