/*
 * page.c - page descriptors and the sleeping page lock.
 *
 * The page lock is one bit of page->flags, and page->flags is a futex.
 *
 *   lock_page:    try to set PG_locked; if it was set, set PG_waiters and
 *                 FUTEX_WAIT on the flags word as we saw it; retry on wake.
 *   unlock_page:  clear PG_locked and PG_waiters in one atomic op; if
 *                 PG_waiters was set, FUTEX_WAKE everybody sleeping on the
 *                 word.
 *
 * Waking everybody (not one) is what keeps this correct with a single
 * waiters bit: a woken waiter that loses the race sets PG_waiters again
 * before it sleeps, so no sleeper is ever left without a waker.  Page locks
 * are rarely contended by more than two threads, so the herd is small.
 * Writeback waits use the same word and the same bit.
 *
 * Nobody spins: a waiter either owns the bit or sleeps in the kernel.
 * Other flag changes (dirty, uptodate) make FUTEX_WAIT return EAGAIN; the
 * waiter rechecks and sleeps again.
 */
#include <errno.h>
#include <limits.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/lockdep.h"
#include "filemap.h"
#include "page.h"

static void futex_wait(uint32_t *word, uint32_t val, const struct timespec *rel)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}

static void futex_wake_all(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

struct page *page_alloc(void)
{
	struct page *page = kzalloc(sizeof(*page));

	if (!page)
		return NULL;
	page->refcount = 1;
	INIT_LIST_HEAD(&page->lru);
	return page;
}

static void page_free(struct page *page, bool punch)
{
	assert(!(page_flags(page) & (PG_locked | PG_dirty | PG_writeback)));
	if (punch && PagePunch(page))
		filemap_punch_freed_page(page);
	kfree(page);
}

void put_page(struct page *page)
{
	int old = __atomic_fetch_sub(&page->refcount, 1, __ATOMIC_ACQ_REL);

	assert(old > 0);
	if (old == 1)
		page_free(page, true);
}

bool put_page_testzero(struct page *page)
{
	int old = __atomic_fetch_sub(&page->refcount, 1, __ATOMIC_ACQ_REL);

	assert(old > 0);
	if (old != 1)
		return false;
	page_free(page, false);
	return true;
}

static inline const void *page_owner(const struct page *page)
{
	return __atomic_load_n(&page->mapping, __ATOMIC_RELAXED);
}

bool trylock_page(struct page *page)
{
	if (__atomic_fetch_or(&page->flags, PG_locked, __ATOMIC_ACQUIRE) &
	    PG_locked)
		return false;
	lockdep_acquire(LOCK_PAGE, page, page_owner(page), page->index, true);
	return true;
}

/* Sleep until none of @bits is set in page->flags (or @rel passes: false). */
static bool wait_on_page_bits_timed(struct page *page, uint32_t bits,
				    const struct timespec *rel)
{
	for (;;) {
		uint32_t old = page_flags(page);

		if (!(old & bits))
			return true;
		if (!(old & PG_waiters)) {
			uint32_t want = old | PG_waiters;

			if (!__atomic_compare_exchange_n(&page->flags, &old,
							 want, 0,
							 __ATOMIC_ACQ_REL,
							 __ATOMIC_ACQUIRE))
				continue;
			old = want;
		}
		futex_wait(&page->flags, old, rel);
		if (rel && (page_flags(page) & bits))
			return false;	/* timed out, or woken and lost: caller retries */
	}
}

static void wait_on_page_bits(struct page *page, uint32_t bits)
{
	wait_on_page_bits_timed(page, bits, NULL);
}

bool lock_page_timed(struct page *page, long ns)
{
	struct timespec rel = { ns / 1000000000, ns % 1000000000 };

	if (trylock_page(page))
		return true;
	if (wait_on_page_bits_timed(page, PG_locked, &rel) && trylock_page(page))
		return true;
	return false;
}

void lock_page(struct page *page)
{
	/* Checked before we can block: the report comes before the deadlock. */
	lockdep_acquire(LOCK_PAGE, page, page_owner(page), page->index, false);
	while (__atomic_fetch_or(&page->flags, PG_locked, __ATOMIC_ACQUIRE) &
	       PG_locked)
		wait_on_page_bits(page, PG_locked);
}

void unlock_page(struct page *page)
{
	uint32_t old;

	lockdep_release(LOCK_PAGE, page);
	old = __atomic_fetch_and(&page->flags, ~(PG_locked | PG_waiters),
				 __ATOMIC_RELEASE);
	assert(old & PG_locked);
	if (old & PG_waiters)
		futex_wake_all(&page->flags);
}

void wait_on_page_locked(struct page *page)
{
	wait_on_page_bits(page, PG_locked);
}

void set_page_writeback(struct page *page)
{
	assert(PageLocked(page));
	__atomic_fetch_or(&page->flags, PG_writeback, __ATOMIC_RELEASE);
}

void end_page_writeback(struct page *page)
{
	uint32_t old = __atomic_fetch_and(&page->flags,
					  ~(PG_writeback | PG_waiters),
					  __ATOMIC_RELEASE);

	assert(old & PG_writeback);
	/*
	 * PG_waiters is shared with lock waiters: clearing it here means we
	 * must wake them too, or a lock waiter could sleep forever.
	 */
	if (old & PG_waiters)
		futex_wake_all(&page->flags);
}

void wait_on_page_writeback(struct page *page)
{
	wait_on_page_bits(page, PG_writeback);
}

int page_check(const struct page *page)
{
	uint32_t f = page_flags(page);

	const struct address_space *mapping = page_owner(page);

	if ((f & (PG_dirty | PG_writeback)) && !(f & PG_uptodate) &&
	    !(mapping && (mapping->flags & AS_BLOCKS)))
		return -1;
	if (page_count(page) <= 0)
		return -1;
	return 0;
}
