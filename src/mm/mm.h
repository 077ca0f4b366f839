/*
 * mm.h - views (mapped files) and their fault handling: filemap_fault in
 * user space, over userfaultfd.
 *
 * A cache has one mm: one userfaultfd, the mm lock (mmap_sem), the list of
 * its views and the handler threads that serve their faults.  A view is a
 * MAP_SHARED mapping of a file's memfd (view offset = file offset, so it
 * shows the very bytes the cache holds) registered with the userfaultfd:
 *
 *   MISSING  the memfd has no page there (a hole): the handler makes the
 *            page (read_folio or zeroes), which instantiates it in the memfd;
 *   MINOR    the memfd has the page but this view has no PTE for it;
 *   WP       a store to a page installed write-protected: the page was clean.
 *
 * MISSING and MINOR are served alike, with UFFDIO_CONTINUE, so a view maps
 * the cache's own page: writes and stores are coherent by construction.
 * Writable views install clean pages write-protected; the first store
 * faults (WP), marks the page dirty and unprotects it (page_mkwrite), and
 * writeback protects it again in every view before cleaning it
 * (page_mkclean).
 *
 * Lock order (docs/locking.md): i_rwsem -> mm lock -> invalidate_lock ->
 * page lock -> i_mmap_lock -> i_pages_lock.
 */
#ifndef PCACHE_MM_H
#define PCACHE_MM_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "../base/compiler.h"
#include "../base/list.h"
#include "../base/lockdep.h"

struct address_space;
struct file;
struct inode;
struct page;
struct pcache;

/*
 * Fault-around: a userfaultfd round trip costs tens of microseconds here
 * (cross-CPU wake-ups), against ~0.3 us to install a page, so the default
 * window is larger than Linux's 64 KiB: 64 pages (256 KiB).
 */
#ifndef PCACHE_DEFAULT_FAULT_AROUND
#define PCACHE_DEFAULT_FAULT_AROUND	64	/* pages */
#endif
#define PCACHE_MAX_FAULT_AROUND		256
#ifndef PCACHE_DEFAULT_FAULT_THREADS
#define PCACHE_DEFAULT_FAULT_THREADS	2
#endif
#define PCACHE_MAX_FAULT_THREADS	16

/* A view: the vm_area_struct. */
struct view {
	char *start;			/* page aligned */
	size_t len;			/* bytes, page multiple */
	pgoff_t pgoff;			/* file page at start */
	int prot;			/* PROT_READ, PROT_WRITE */
	bool wp;			/* registered for write-protect faults */
	struct mm *mm;
	struct file *file;		/* referenced while the view lives */
	struct list_head i_mmap;	/* in the mapping's views (i_mmap_lock) */
};

struct mm_stats {
	uint64_t faults;		/* MISSING and MINOR faults served */
	uint64_t wp_faults;		/* write-protect faults served */
	uint64_t fault_around;		/* pages installed around a fault */
	uint64_t sigbus;		/* faults past end of file */
	uint64_t refused;		/* faults refused to no-fault copies */
	uint64_t populated;		/* pages installed by populate */
};

struct mm {
	struct pcache *pc;
	pthread_rwlock_t mmap_lock;	/* the mm lock: views, and every fault */
	int uffd;
	int stop_fd;			/* eventfd: wakes handlers to exit */
	unsigned int fault_around;	/* pages per fault, >= 1 */
	unsigned int nr_threads;
	pthread_t threads[PCACHE_MAX_FAULT_THREADS];

	struct view **views;		/* sorted by start; mmap_lock */
	size_t nr_views;
	size_t cap_views;

	struct mm_stats stats;		/* atomics */
};

/* The mm lock, told to the validator. */
static inline void mmap_read_lock(struct mm *mm)
{
	lockdep_acquire(LOCK_MM, &mm->mmap_lock, mm, 0, false);
	pthread_rwlock_rdlock(&mm->mmap_lock);
}

/* A reader that waits at most @ns: false if the lock stayed write-held. */
static inline bool mmap_read_trylock(struct mm *mm, long ns)
{
	struct timespec t = deadline_after_ns(ns);

	if (pthread_rwlock_timedrdlock(&mm->mmap_lock, &t))
		return false;
	lockdep_acquire(LOCK_MM, &mm->mmap_lock, mm, 0, true);
	return true;
}

static inline void mmap_write_lock(struct mm *mm)
{
	lockdep_acquire(LOCK_MM, &mm->mmap_lock, mm, 0, false);
	pthread_rwlock_wrlock(&mm->mmap_lock);
}

static inline void mmap_unlock(struct mm *mm)
{
	lockdep_release(LOCK_MM, &mm->mmap_lock);
	pthread_rwlock_unlock(&mm->mmap_lock);
}

/* The cache's mm, made on first use. NULL with *err set on failure. */
struct mm *mm_get(struct pcache *pc, int *err);
/* Stop the handlers and free the mm; no views may be left. */
void mm_destroy(struct mm *mm);

/* The fault path (fault.c). */
int mm_start_handlers(struct mm *mm);
/* Populate [start, end) of @view, holding the mm lock for write (mlock). */
int populate_view_range(struct view *view, char *start, char *end);

/* Called by writeback with @page locked: write-protect it in every view. */
void page_mkclean(struct page *page);
/* Truncation: drop every view's PTEs for file pages >= @index. */
void unmap_mapping_pages(struct address_space *mapping, pgoff_t index);
/* Drop every view's PTEs for file pages in [index, end). */
void unmap_mapping_range(struct address_space *mapping, pgoff_t index,
			 pgoff_t end);
/* The file grew to @new_eof pages: lift past-EOF poison below it. */
void unpoison_mapping(struct address_space *mapping, pgoff_t new_eof);
/* True if @mapping has views. */
bool mapping_mapped(struct address_space *mapping);

/* The view containing @addr in @mm (mmap_lock held), or NULL. */
struct view *find_view(struct mm *mm, const void *addr);

#endif /* PCACHE_MM_H */
