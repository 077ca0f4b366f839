/*
 * lockdep.h - the lock validator: it sees a deadlock coming before it
 * happens, as the kernel's lockdep does, for the locks of the write path.
 *
 * Every thread keeps the stack of the locks it holds (class, object, page
 * index, where it took them).  Two checks:
 *
 *  1. Order.  Taking a lock of a lower rank than one already held is an
 *     inversion (the global order of docs/locking.md: i_rwsem < mm lock <
 *     invalidate_lock < page lock), and so are two page locks of one file
 *     taken in descending index order, and a lock its thread already holds.
 *  2. Faults.  When a view fault is about to be served, the thread that
 *     raised it is looked up: if it holds a page lock, serving the fault
 *     takes the mm lock after a page lock (an inversion: the seed's
 *     deadlocks 2 and 3), and if it holds the very page the fault needs,
 *     serving it can never finish (deadlock 1).  Both are reported before
 *     the handler blocks.  A fault refused to a no-fault copy takes no lock
 *     and is not checked.
 *
 * Reports go to stderr with backtraces (of the report and of where the
 * held lock was taken), at most a few per kind; lockdep_reports() counts
 * them all.  The validator is off unless PCACHE_LOCKDEP=1 is in the
 * environment when the first cache is created, or the build is DEBUG=1
 * (then PCACHE_LOCKDEP=0 turns it off).  Off, each hook is one predictable
 * branch.
 */
#ifndef PCACHE_LOCKDEP_H
#define PCACHE_LOCKDEP_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

enum lock_class {
	LOCK_INODE = 1,		/* inode i_rwsem */
	LOCK_MM,		/* the mm lock */
	LOCK_INVALIDATE,	/* address_space invalidate_lock */
	LOCK_PAGE,		/* a page lock */
};

extern int lockdep_enabled;

void lockdep_init(void);
uint64_t lockdep_reports(void);

void __lockdep_acquire(enum lock_class class, const void *obj,
		       const void *owner, uint64_t index, bool try);
void __lockdep_release(enum lock_class class, const void *obj);
void __lockdep_fault(int tid, const void *owner, uint64_t index, bool page_known);
void __lockdep_user_copy(int delta);

/* uaccess: this thread enters (+1) or leaves (-1) a guarded user copy. */
static inline void lockdep_user_copy(int delta)
{
	if (unlikely(lockdep_enabled))
		__lockdep_user_copy(delta);
}

/*
 * @obj is the lock; @owner and @index say which page of which file (for
 * page locks: the mapping and page index).  Call acquire before blocking
 * (so an inversion is reported before it can deadlock), or after a
 * successful trylock with @try set (a trylock cannot deadlock: recorded,
 * not checked).
 */
static inline void lockdep_acquire(enum lock_class class, const void *obj,
				   const void *owner, uint64_t index, bool try)
{
	if (unlikely(lockdep_enabled))
		__lockdep_acquire(class, obj, owner, index, try);
}

static inline void lockdep_release(enum lock_class class, const void *obj)
{
	if (unlikely(lockdep_enabled))
		__lockdep_release(class, obj);
}

/*
 * A view fault of thread @tid is about to be served.  Before the mm lock:
 * page_known false.  Before the faulting page's lock: page_known true,
 * with the page's @owner (mapping) and @index.
 */
static inline void lockdep_fault(int tid, const void *owner, uint64_t index,
				 bool page_known)
{
	if (unlikely(lockdep_enabled))
		__lockdep_fault(tid, owner, index, page_known);
}

#endif /* PCACHE_LOCKDEP_H */
