/*
 * page.h - page descriptors: refcount, flags, and the sleeping page lock.
 *
 * A page's bytes live in its file's memfd at offset index << PAGE_SHIFT;
 * page->addr is where the library's own mapping of the memfd shows them.
 *
 * Flags live in one 32-bit word, which is also the futex that lock_page()
 * and wait_on_page_writeback() sleep on.  PG_waiters says somebody sleeps
 * on the word, so unlock_page() makes a system call only when needed.
 *
 * Page flag transitions, and who makes them:
 *
 *          add_to_page_cache_locked()         read_folio / write_end
 *   (new) ---------------------------> locked ----------------------> uptodate
 *                                                                        |
 *        folio_mark_dirty(): set_page_dirty()  <- write_end / view store |
 *          dirty ---- writepages: clear_dirty_start_writeback() -----> writeback
 *          writeback ---- folio_end_writeback() ---------------------> clean
 *   delete_from_page_cache() (page locked, not writeback) ----> mapping = NULL
 *
 * Invariants:
 *  1. PG_dirty and PG_writeback are only set on uptodate pages - or, in a
 *     mapping with sub-page blocks (AS_BLOCKS, fs/buffer.h), on pages whose
 *     dirty blocks are uptodate (a partial write reads in only the blocks it
 *     partly covers, so the rest of the page may never have been read).
 *  2. PG_uptodate is never cleared while the page is in the index.
 *  3. A page in the index holds one reference for the index; the page is
 *     freed by the put_page() that drops the last reference.
 *  4. page->mapping and page->index change only under the page lock.
 */
#ifndef PCACHE_PAGE_H
#define PCACHE_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/compiler.h"
#include "../base/list.h"

struct address_space;

#define PG_locked	(1u << 0)
#define PG_waiters	(1u << 1)	/* someone sleeps on the flags futex */
#define PG_uptodate	(1u << 2)
#define PG_dirty	(1u << 3)
#define PG_writeback	(1u << 4)
#define PG_error	(1u << 5)
#define PG_punch	(1u << 6)	/* freed last by a ref holder: punch its memfd range then */
#define PG_referenced	(1u << 7)	/* used since reclaim last looked (mm/reclaim.c) */

struct page {
	uint32_t flags;			/* atomic; the futex word */
	int32_t refcount;		/* atomic */
	pgoff_t index;			/* offset in the file, in pages */
	struct address_space *mapping;	/* NULL once truncated away */
	struct address_space *home;	/* whose memfd holds the bytes; constant */
	char *addr;			/* the library's mapping of the bytes */
	struct list_head lru;		/* reclaim list, under the cache's lru_lock */
	uint32_t blocks;		/* atomic: block states (fs/buffer.h) */
	void *private;			/* the backend's */
};

static inline char *page_address(const struct page *page)
{
	return page->addr;
}

static inline uint32_t page_flags(const struct page *page)
{
	return __atomic_load_n(&page->flags, __ATOMIC_ACQUIRE);
}

#define PAGE_FLAG_FNS(name, bit)					\
static inline bool Page##name(const struct page *p)			\
{ return page_flags(p) & (bit); }					\
static inline void SetPage##name(struct page *p)			\
{ __atomic_fetch_or(&p->flags, (bit), __ATOMIC_RELEASE); }		\
static inline void ClearPage##name(struct page *p)			\
{ __atomic_fetch_and(&p->flags, ~(bit), __ATOMIC_RELEASE); }		\
static inline bool TestSetPage##name(struct page *p)			\
{ return __atomic_fetch_or(&p->flags, (bit), __ATOMIC_ACQ_REL) & (bit); } \
static inline bool TestClearPage##name(struct page *p)			\
{ return __atomic_fetch_and(&p->flags, ~(bit), __ATOMIC_ACQ_REL) & (bit); }

PAGE_FLAG_FNS(Locked, PG_locked)
PAGE_FLAG_FNS(Uptodate, PG_uptodate)
PAGE_FLAG_FNS(Dirty, PG_dirty)
PAGE_FLAG_FNS(Writeback, PG_writeback)
PAGE_FLAG_FNS(Error, PG_error)
PAGE_FLAG_FNS(Punch, PG_punch)
PAGE_FLAG_FNS(Referenced, PG_referenced)

/* Mark a page used, for reclaim's clock: one load when it already is. */
static inline void mark_page_accessed(struct page *page)
{
	if (!(page_flags(page) & PG_referenced))
		SetPageReferenced(page);
}

/* Allocate a descriptor (refcount 1, no flags, no mapping). NULL: -ENOMEM. */
struct page *page_alloc(void);

static inline void get_page(struct page *page)
{
	__atomic_fetch_add(&page->refcount, 1, __ATOMIC_RELAXED);
}

/* Drop a reference; the last one frees the descriptor. */
void put_page(struct page *page);

/*
 * Drop a reference; if it was the last, free the descriptor without
 * punching its memory (the caller punches a whole range at once) and
 * return true.
 */
bool put_page_testzero(struct page *page);

static inline int page_count(const struct page *page)
{
	return __atomic_load_n(&page->refcount, __ATOMIC_RELAXED);
}

/*
 * The page lock.  lock_page() sleeps (futex) until it owns PG_locked;
 * it may not be called with the page already locked by the caller (that
 * is the seed's deadlock 1, which the lock validator reports).
 */
void lock_page(struct page *page);
bool trylock_page(struct page *page);
void unlock_page(struct page *page);
/* Try for about @ns nanoseconds; false if the lock stayed busy. */
bool lock_page_timed(struct page *page, long ns);
/* Sleep until PG_locked is clear, without taking it. */
void wait_on_page_locked(struct page *page);

/* Writeback: set with the page locked; end_page_writeback() wakes waiters. */
void set_page_writeback(struct page *page);
void end_page_writeback(struct page *page);
void wait_on_page_writeback(struct page *page);

/* Debug: 0 if the descriptor's flags are consistent (invariants 1-2). */
int page_check(const struct page *page);

#endif /* PCACHE_PAGE_H */
