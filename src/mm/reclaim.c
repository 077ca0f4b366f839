/*
 * reclaim.c - memory accounting and page reclaim: the configured memory
 * limit is enforced by a clock over the pages of evictable mappings (the
 * kernel's mm/vmscan.c, much reduced).
 *
 * Every page of a mapping without AS_UNEVICTABLE sits on the cache's LRU
 * list from add_new_page() until it leaves the index.  A page charged past
 * the limit makes its allocator reclaim (direct reclaim):
 *
 *   rotate through the list; a page used since the last pass
 *   (PG_referenced) gets a second chance; a dirty or writeback page wakes
 *   the flusher and is passed over ("dirty pages are written back first");
 *   the others are candidates -> reclaim_page():
 *     trylock the page (never wait: the allocator may hold page locks)
 *     -> zap it from every view (its PTEs map the memfd page)
 *     -> under i_pages_lock: still clean, and no reference but the index's
 *        and ours?  then out of the index, off the LRU
 *     -> unlock; the last put punches the memfd page (PG_punch).
 *
 * Why this is safe without invalidate_lock: every path that installs the
 * page in a view (fault, fault-around, populate) holds the page lock, and
 * every path that reaches its bytes without the lock (readers, bounce-opt's
 * in-place copy, writeback) holds a reference taken under i_pages_lock -
 * which the reference check under that lock excludes.  A store through a
 * view needs page_mkwrite (page lock) to dirty a clean page.
 *
 * If no page can be reclaimed, the allocator waits for writeback to clean
 * some (wb_done), for at most RECLAIM_TIMEOUT_NS; a fault handler (nowait)
 * gets -EAGAIN and defers its fault instead.  pcache_mlock pins nothing.
 *
 * Lock order: page lock -> i_mmap_lock -> i_pages_lock; lru_lock is a leaf
 * (pages are only trylocked after it is dropped).
 */
#include <errno.h>
#include <sched.h>

#include "../fs/fs.h"
#include "filemap.h"
#include "mm.h"
#include "page.h"

#define RECLAIM_BATCH		32
#define RECLAIM_TIMEOUT_NS	(30ll * 1000000000)

static bool mapping_evictable(const struct address_space *mapping)
{
	return !(mapping->flags & AS_UNEVICTABLE);
}

void lru_add(struct page *page)
{
	struct pcache *pc = page->mapping->host->i_sb;

	if (!mapping_evictable(page->mapping))
		return;
	pthread_mutex_lock(&pc->lru_lock);
	list_add_tail(&page->lru, &pc->lru);
	pc->nr_lru++;
	pthread_mutex_unlock(&pc->lru_lock);
}

void lru_del(struct page *page)
{
	struct pcache *pc = page->mapping->host->i_sb;

	if (!mapping_evictable(page->mapping))
		return;
	pthread_mutex_lock(&pc->lru_lock);
	if (!list_empty(&page->lru)) {
		list_del_init(&page->lru);
		pc->nr_lru--;
	}
	pthread_mutex_unlock(&pc->lru_lock);
}

/* Try to evict one clean page; the caller holds a reference. */
static bool reclaim_page(struct pcache *pc, struct page *page)
{
	struct address_space *mapping;
	bool done = false;

	if (!trylock_page(page))
		return false;
	mapping = page->mapping;
	if (!mapping || PageDirty(page) || PageWriteback(page))
		goto out_unlock;
	/* Views first: after this, only a fault (page lock) can map it. */
	unmap_mapping_range(mapping, page->index, page->index + 1);

	pthread_rwlock_wrlock(&mapping->i_pages_lock);
	/* The index's reference and ours: nobody is reading it. */
	if (page_count(page) == 2 && !PageDirty(page) && !PageWriteback(page)) {
		radix_delete(&mapping->i_pages, page->index);
		mapping->nrpages--;
		done = true;
	}
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	if (!done)
		goto out_unlock;
	lru_del(page);
	WRITE_ONCE(page->mapping, NULL);
	cache_uncharge_page(pc);
	stat_add(pc, pages_reclaimed, 1);
	SetPagePunch(page);	/* our put frees it: punch the memfd page then */
	unlock_page(page);
	put_page(page);		/* the index's reference */
	return true;

out_unlock:
	unlock_page(page);
	return false;
}

/*
 * Inode eviction against reclaim: a candidate's mapping is pinned
 * (nr_reclaim, taken under lru_lock while the page is on the LRU) until the
 * reclaimer is done with it, so eviction takes every page off the LRU, then
 * waits for the pins, and only then tears the index down.
 */
void lru_evict_mapping(struct address_space *mapping)
{
	struct page *batch[16];
	uint64_t next = 0;
	unsigned int n, i;

	if (!mapping_evictable(mapping))
		return;
	do {
		/* Nobody else can reach the index of an inode being evicted. */
		n = radix_gang_lookup(&mapping->i_pages, (void **)batch, NULL,
				      next, ARRAY_SIZE(batch));
		for (i = 0; i < n; i++) {
			lru_del(batch[i]);
			next = batch[i]->index + 1;
		}
	} while (n && next);
	while (__atomic_load_n(&mapping->nr_reclaim, __ATOMIC_ACQUIRE))
		sched_yield();
}

/* One pass of the clock: reclaim up to @nr pages; returns how many. */
static unsigned int shrink_lru(struct pcache *pc, unsigned int nr)
{
	struct address_space *pinned[RECLAIM_BATCH];
	struct page *cand[RECLAIM_BATCH];
	unsigned int n = 0, got = 0, i;
	uint64_t scan;
	bool dirty = false;

	pthread_mutex_lock(&pc->lru_lock);
	for (scan = pc->nr_lru; scan && n < nr && n < RECLAIM_BATCH; scan--) {
		struct page *page = list_first_entry(&pc->lru, struct page, lru);

		list_move_tail(&page->lru, &pc->lru);
		if (TestClearPageReferenced(page))
			continue;
		if (page_flags(page) & (PG_dirty | PG_writeback)) {
			dirty = true;
			continue;
		}
		if (PageLocked(page))
			continue;
		/* On the LRU, the index's reference keeps it alive. */
		get_page(page);
		pinned[n] = page->mapping;
		__atomic_add_fetch(&pinned[n]->nr_reclaim, 1, __ATOMIC_ACQ_REL);
		cand[n++] = page;
	}
	pthread_mutex_unlock(&pc->lru_lock);

	for (i = 0; i < n; i++) {
		got += reclaim_page(pc, cand[i]);
		put_page(cand[i]);	/* may punch: the mapping is still pinned */
		__atomic_sub_fetch(&pinned[i]->nr_reclaim, 1, __ATOMIC_ACQ_REL);
	}
	if (dirty)
		wakeup_flusher(pc);
	return got;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000 + (uint64_t)t.tv_nsec;
}

/*
 * Take one page of the limit, if one is free.  Never counts past the limit,
 * not even for a moment: pages_cached is read by pcache_stats(), and a
 * count raised first and checked after showed one page over the limit per
 * thread in direct reclaim.
 */
static bool try_charge(struct pcache *pc)
{
	uint64_t n = __atomic_load_n(&pc->nr_pages, __ATOMIC_RELAXED);

	while (n < pc->mem_limit_pages)
		if (__atomic_compare_exchange_n(&pc->nr_pages, &n, n + 1, true,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return true;
	return false;
}

int cache_charge_page(struct pcache *pc, bool nowait)
{
	uint64_t start = 0, errors = 0;

	if (likely(try_charge(pc)))
		return 0;
	/* The memory backend's pages are its only copy: full is full. */
	if (!pc->wb_running)
		return -ENOSPC;
	for (;;) {
		shrink_lru(pc, RECLAIM_BATCH);
		if (try_charge(pc))
			return 0;
		wakeup_flusher(pc);
		if (nowait)
			return -EAGAIN;
		if (!start) {
			start = now_ns();
			errors = stat_read(pc, writeback_errors);
			stat_add(pc, reclaim_waits, 1);
		} else if (now_ns() - start > RECLAIM_TIMEOUT_NS ||
			   /* the dirty pages cannot be written: full is full */
			   stat_read(pc, writeback_errors) != errors) {
			break;
		}
		wb_wait_progress(pc, 2000000);
	}
	return -ENOSPC;
}

void cache_uncharge_page(struct pcache *pc)
{
	__atomic_sub_fetch(&pc->nr_pages, 1, __ATOMIC_RELAXED);
}
