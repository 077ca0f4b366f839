/*
 * writeback.c - dirty pages and writing them back (the kernel's
 * mm/page-writeback.c, synchronous).
 *
 * A page is dirty when PG_dirty is set; the index carries RADIX_TAG_DIRTY
 * for it, so writeback finds dirty pages without walking clean ones.
 *
 *   folio_mark_dirty()          clean -> dirty       (write_end, view store)
 *   clear_dirty_start_writeback() dirty -> writeback (page locked, before I/O)
 *   folio_end_writeback()       writeback -> done    (I/O finished)
 *
 * Tags change under the mapping's i_pages_lock (write side), flags with
 * atomics; PG_dirty is set before the tag and cleared before the tag, so a
 * tagged walk may see a clean page (skipped) but never miss a dirty one.
 * A page under writeback carries RADIX_TAG_WRITEBACK until its I/O ends; it
 * replaces the dirty tag in the same lock section, so a page being written
 * is always in one of the two tags and fsync either writes it or waits.
 *
 * Errors: a failed page write is recorded with mapping_set_error() in the
 * mapping's errseq_t; fsync reports it once per open file.
 *
 * The flusher (the kernel's wb_workfn).  Caches whose backend has storage
 * (no AS_UNEVICTABLE) run one thread that wakes every writeback_interval
 * and writes back, in the background (busy pages are skipped, not waited
 * for), every file dirty for longer than dirty_expire - or every dirty
 * file, when dirty memory is past bg_thresh.  A mapping's dirtied_when is
 * when it went from clean to dirty; the flusher clears it before writing
 * and puts it back if pages stayed dirty.
 *
 * Dirty throttling (balance_dirty_pages): a writer, after dirtying pages
 * and holding no page lock, kicks the flusher past bg_thresh and sleeps
 * past dirty_thresh until writeback brings the dirty (and writeback) pages
 * back under it.  The flusher never needs i_rwsem, which the writer holds.
 */
#include <errno.h>
#include <limits.h>
#include <time.h>

#include "../base/alloc.h"

#include "../fs/fs.h"
#include "filemap.h"
#include "mm.h"
#include "page.h"

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
	return (uint64_t)t.tv_sec * 1000000000 + (uint64_t)t.tv_nsec + 1;
}

/* The mapping has a dirty page: start its expiry clock if it was clean. */
static void mapping_note_dirty(struct address_space *mapping)
{
	uint64_t zero = 0;

	if (!__atomic_load_n(&mapping->dirtied_when, __ATOMIC_RELAXED))
		__atomic_compare_exchange_n(&mapping->dirtied_when, &zero,
					    mono_ns(), false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
}

bool filemap_dirty_folio(struct address_space *mapping, struct page *page)
{
	struct pcache *pc = mapping->host->i_sb;

	if (TestSetPageDirty(page))
		return false;
	__atomic_add_fetch(&pc->nr_dirty, 1, __ATOMIC_RELAXED);
	mapping_note_dirty(mapping);
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
		assert(PageLocked(pages[k]) &&
		       (PageUptodate(pages[k]) || (mapping->flags & AS_BLOCKS)));
		dirtied[k] = !TestSetPageDirty(pages[k]);
		newly += dirtied[k];
	}
	if (!newly)
		return;
	__atomic_add_fetch(&pc->nr_dirty, newly, __ATOMIC_RELAXED);
	mapping_note_dirty(mapping);
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
	/*
	 * Always the op, even for a dirty page: block_dirty_folio dirties
	 * every block, and a page dirty in one block (a write) that is
	 * stored to through a view must have the others dirtied too.
	 */
	if (mapping->a_ops->dirty_folio)
		return mapping->a_ops->dirty_folio(mapping, page);
	/* Fast path: already dirty, nothing to tag. */
	if (PageDirty(page))
		return false;
	return filemap_dirty_folio(mapping, page);
}

/*
 * Dirty -> writeback, page locked (the kernel's folio_clear_dirty_for_io()
 * then __folio_start_writeback()).  The index's dirty tag becomes the
 * writeback tag in one i_pages_lock section: a data-integrity sync
 * (filemap_write_and_wait_range) that misses the page in its dirty walk -
 * the flusher took it - finds it in its writeback wait.  Returns false if
 * the page was not dirty.
 */
static bool clear_dirty_start_writeback(struct address_space *mapping,
					struct page *page)
{
	struct pcache *pc = mapping->host->i_sb;

	assert(PageLocked(page));
	if (!TestClearPageDirty(page))
		return false;
	__atomic_sub_fetch(&pc->nr_dirty, 1, __ATOMIC_RELAXED);
	set_page_writeback(page);
	__atomic_add_fetch(&pc->nr_writeback, 1, __ATOMIC_RELAXED);
	pthread_rwlock_wrlock(&mapping->i_pages_lock);
	radix_tag_clear(&mapping->i_pages, page->index, RADIX_TAG_DIRTY);
	radix_tag_set(&mapping->i_pages, page->index, RADIX_TAG_WRITEBACK);
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	return true;
}

void folio_end_writeback(struct page *page)
{
	struct address_space *mapping = page->home;
	struct pcache *pc = mapping->host->i_sb;

	/* The I/O is done: a waiter that misses the page has nothing to wait for. */
	pthread_rwlock_wrlock(&mapping->i_pages_lock);
	if (page->mapping == mapping)
		radix_tag_clear(&mapping->i_pages, page->index, RADIX_TAG_WRITEBACK);
	pthread_rwlock_unlock(&mapping->i_pages_lock);
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
			/* Background writeback passes over busy pages. */
			if (wbc->sync) {
				lock_page(page);
			} else if (!trylock_page(page)) {
				put_page(page);
				continue;
			}
			if (page->mapping != mapping || !PageDirty(page))
				goto next;
			if (PageWriteback(page)) {
				if (!wbc->sync)
					goto next;
				wait_on_page_writeback(page);
			}
			/* Stores through views must fault again once it is clean. */
			page_mkclean(page);
			if (!clear_dirty_start_writeback(mapping, page))
				goto next;
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

/* The flusher. */

void wakeup_flusher(struct pcache *pc)
{
	if (!pc->wb_running ||
	    __atomic_exchange_n(&pc->wb_kicked, 1, __ATOMIC_ACQ_REL))
		return;
	pthread_mutex_lock(&pc->wb_lock);
	pthread_cond_signal(&pc->wb_wake);
	pthread_mutex_unlock(&pc->wb_lock);
}

void wb_wait_progress(struct pcache *pc, long ns)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += ns;
	t.tv_sec += t.tv_nsec / 1000000000;
	t.tv_nsec %= 1000000000;
	pthread_mutex_lock(&pc->wb_lock);
	pthread_cond_timedwait(&pc->wb_done, &pc->wb_lock, &t);
	pthread_mutex_unlock(&pc->wb_lock);
}

static uint64_t dirty_pages(struct pcache *pc)
{
	return __atomic_load_n(&pc->nr_dirty, __ATOMIC_RELAXED) +
	       __atomic_load_n(&pc->nr_writeback, __ATOMIC_RELAXED);
}

/* Write back one inode in the background; the flusher holds a reference. */
static unsigned long writeback_inode(struct inode *inode)
{
	struct address_space *mapping = &inode->i_data;
	struct writeback_control wbc = {
		.range_start = 0,
		.range_end = LLONG_MAX,
		.sync = false,
	};
	uint64_t when = __atomic_exchange_n(&mapping->dirtied_when, 0,
					    __ATOMIC_ACQ_REL);
	bool dirty;

	mapping->a_ops->writepages(mapping, &wbc);
	pthread_rwlock_rdlock(&mapping->i_pages_lock);
	dirty = radix_tagged(&mapping->i_pages, RADIX_TAG_DIRTY);
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	/* Busy pages were passed over: they keep their age. */
	if (dirty && when) {
		uint64_t zero = 0;

		__atomic_compare_exchange_n(&mapping->dirtied_when, &zero, when,
					    false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	}
	return wbc.nr_written;
}

#define WB_INODES	64

/* One pass: returns true if more is left to do at once. */
static bool wb_do_writeback(struct pcache *pc)
{
	struct inode *batch[WB_INODES];
	uint64_t now = mono_ns();
	bool all = dirty_pages(pc) > pc->bg_thresh;
	unsigned long written = 0;
	unsigned int n = 0, i;
	struct inode *inode;

	pthread_mutex_lock(&pc->ns_lock);
	list_for_each_entry(inode, &pc->s_inodes, i_sb_list) {
		uint64_t when = __atomic_load_n(&inode->i_data.dirtied_when,
						__ATOMIC_RELAXED);

		if (!when || (!all && now - when < pc->dirty_expire_ns))
			continue;
		iget(inode);
		batch[n++] = inode;
		if (n == WB_INODES)
			break;
	}
	/* Round robin: the next pass starts after the last one written. */
	if (n == WB_INODES)
		list_move(&pc->s_inodes, &batch[n - 1]->i_sb_list);
	pthread_mutex_unlock(&pc->ns_lock);

	for (i = 0; i < n; i++) {
		written += writeback_inode(batch[i]);
		iput(batch[i]);
		/* Throttled writers and reclaim re-check after each file. */
		pthread_mutex_lock(&pc->wb_lock);
		pthread_cond_broadcast(&pc->wb_done);
		pthread_mutex_unlock(&pc->wb_lock);
	}
	if (written)
		stat_add(pc, flusher_runs, 1);
	return n == WB_INODES || (written && dirty_pages(pc) > pc->bg_thresh);
}

static void *wb_thread_fn(void *arg)
{
	struct pcache *pc = arg;
	bool more = false;

	pthread_mutex_lock(&pc->wb_lock);
	while (!pc->wb_stop) {
		if (!more && !__atomic_load_n(&pc->wb_kicked, __ATOMIC_ACQUIRE)) {
			struct timespec t;

			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += (long)(pc->wb_interval_ns % 1000000000);
			t.tv_sec += (time_t)(pc->wb_interval_ns / 1000000000) +
				    t.tv_nsec / 1000000000;
			t.tv_nsec %= 1000000000;
			pthread_cond_timedwait(&pc->wb_wake, &pc->wb_lock, &t);
			if (pc->wb_stop)
				break;
		}
		__atomic_store_n(&pc->wb_kicked, 0, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&pc->wb_lock);
		more = wb_do_writeback(pc);
		pthread_mutex_lock(&pc->wb_lock);
		pthread_cond_broadcast(&pc->wb_done);
	}
	pthread_mutex_unlock(&pc->wb_lock);
	return NULL;
}

int wb_start(struct pcache *pc)
{
	uint64_t limit = pc->mem_limit_pages;
	int err;

	pthread_mutex_init(&pc->wb_lock, NULL);
	pthread_cond_init(&pc->wb_wake, NULL);
	pthread_cond_init(&pc->wb_done, NULL);
	if (pc->s_op->as_flags & AS_UNEVICTABLE)
		return 0;
	pc->dirty_thresh = pc->cfg.dirty_limit ? pc->cfg.dirty_limit >> PAGE_SHIFT
					       : limit / 4;
	if (pc->dirty_thresh > limit / 2)	/* reclaim needs clean pages */
		pc->dirty_thresh = limit / 2;
	if (!pc->dirty_thresh)
		pc->dirty_thresh = 1;
	pc->bg_thresh = pc->dirty_thresh / 2;
	pc->dirty_expire_ns = (uint64_t)(pc->cfg.dirty_expire_ms ?
					 pc->cfg.dirty_expire_ms : 2000) * 1000000;
	pc->wb_interval_ns = (uint64_t)(pc->cfg.writeback_interval_ms ?
					pc->cfg.writeback_interval_ms : 200) * 1000000;
	err = pthread_create(&pc->wb_thread, NULL, wb_thread_fn, pc);
	if (err)
		return -err;
	pc->wb_running = true;
	return 0;
}

void wb_stop(struct pcache *pc)
{
	if (pc->wb_running) {
		pthread_mutex_lock(&pc->wb_lock);
		pc->wb_stop = true;
		pthread_cond_signal(&pc->wb_wake);
		pthread_mutex_unlock(&pc->wb_lock);
		pthread_join(pc->wb_thread, NULL);
		pc->wb_running = false;
	}
	pthread_cond_destroy(&pc->wb_done);
	pthread_cond_destroy(&pc->wb_wake);
	pthread_mutex_destroy(&pc->wb_lock);
}

#define THROTTLE_WAIT_NS	2000000		/* 2 ms per look */
#define THROTTLE_MAX_NS		(10ll * 1000000000)	/* then let the write go */

void balance_dirty_pages_ratelimited(struct address_space *mapping)
{
	struct pcache *pc = mapping->host->i_sb;
	uint64_t start, waited, errors;

	if (!pc->wb_running || dirty_pages(pc) <= pc->bg_thresh)
		return;
	wakeup_flusher(pc);
	if (dirty_pages(pc) <= pc->dirty_thresh)
		return;
	start = mono_ns();
	errors = stat_read(pc, writeback_errors);
	stat_add(pc, throttle_waits, 1);
	do {
		wb_wait_progress(pc, THROTTLE_WAIT_NS);
		wakeup_flusher(pc);
		waited = mono_ns() - start;
		/*
		 * Writeback failing (the pages stay dirty, and fsync reports it)
		 * must not hang writers: stop waiting for it.
		 */
		if (stat_read(pc, writeback_errors) != errors)
			break;
	} while (dirty_pages(pc) > pc->dirty_thresh && waited < THROTTLE_MAX_NS);
	stat_add(pc, throttle_ns, waited);
}
