/*
 * fault.c - serving view faults: filemap_fault, page_mkwrite and
 * page_mkclean in user space, over userfaultfd.
 *
 * Handler threads read fault messages from the cache's userfaultfd and
 * serve each the way the kernel's filemap_fault() does:
 *
 *   (refuse it, before any lock, if the thread is in a no-fault copy)
 *   mm lock (read) -> find the view -> invalidate_lock (read)
 *     -> i_size check (SIGBUS past end of file)
 *     -> find or create the page -> lock_page -> read it in if not uptodate
 *     -> UFFDIO_CONTINUE it, and up to fault_around - 1 uptodate
 *        neighbours whose lock we can trylock (do_fault_around)
 *     -> unlock_page
 *
 * Write-protect faults (a store to a clean page of a writable view) are
 * page_mkwrite: lock the page, wait for writeback (stable pages), mark it
 * dirty, unprotect.  page_mkclean() runs the other way, from writeback with
 * the page locked: it write-protects the page in every writable view, so
 * the next store faults again.
 *
 * Why refusal comes first: the seed's third deadlock.  A writer holding a
 * page lock faults; populate holds the mm lock for write and waits for that
 * page.  A no-fault copy must never wait for the mm lock, so its fault is
 * refused before the handler takes anything.
 *
 * A fault past end of file gets SIGBUS, sent to the faulting thread (which
 * is blocked in the fault, so the signal interrupts it).  A fault the
 * handler cannot serve for lack of memory gets SIGBUS too, as VM_FAULT_OOM
 * without an OOM killer would.
 *
 * Lock order: mm lock -> invalidate_lock -> page locks (the faulting page
 * with lock_page; neighbours only with trylock) -> i_pages_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../fs/buffer.h"
#include "../fs/fs.h"
#include "../lib/uaccess.h"
#include "filemap.h"
#include "mm.h"
#include "page.h"

/* Debian 12's uapi headers are 6.1; the kernel knows more. */
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP		((__u64)1 << 1)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON		(1 << 14)
#endif
#ifndef UFFDIO_POISON
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON	_IOWR(UFFDIO, 0x08, struct uffdio_poison)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW		_IO(0xAA, 0x00)
#endif

#define UFFD_FEATURES	(UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM | \
			 UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_THREAD_ID | \
			 UFFD_FEATURE_POISON)

#define mm_stat(mm, field, n) \
	__atomic_fetch_add(&(mm)->stats.field, (n), __ATOMIC_RELAXED)

static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int dev;

	if (fd >= 0)
		return fd;
	/* Without CAP_SYS_PTRACE the syscall says EPERM; the device may not. */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd < 0 ? -errno : fd;
}

static pthread_mutex_t mm_create_lock = PTHREAD_MUTEX_INITIALIZER;

struct mm *mm_get(struct pcache *pc, int *errp)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURES };
	struct mm *mm;
	int err;

	mm = __atomic_load_n(&pc->mm, __ATOMIC_ACQUIRE);
	if (mm)
		return mm;
	pthread_mutex_lock(&mm_create_lock);
	mm = pc->mm;
	if (mm)
		goto out_unlock;
	err = -ENOMEM;
	mm = kzalloc(sizeof(*mm));
	if (!mm)
		goto out_err;
	mm->pc = pc;
	mm->stop_fd = -1;
	mm->uffd = uffd_open();
	if (mm->uffd < 0) {
		err = mm->uffd == -EPERM || mm->uffd == -ENOENT ? -EOPNOTSUPP : mm->uffd;
		goto out_free;
	}
	if (ioctl(mm->uffd, UFFDIO_API, &api) < 0) {
		err = -EOPNOTSUPP;	/* the kernel lacks a feature views need */
		goto out_close;
	}
	mm->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (mm->stop_fd < 0) {
		err = -errno;
		goto out_close;
	}
	pthread_rwlock_init(&mm->mmap_lock, NULL);
	mm->fault_around = pc->cfg.fault_around_pages ? pc->cfg.fault_around_pages :
			   PCACHE_DEFAULT_FAULT_AROUND;
	mm->nr_threads = pc->cfg.fault_threads ? pc->cfg.fault_threads :
			 PCACHE_DEFAULT_FAULT_THREADS;
	if (mm->nr_threads > PCACHE_MAX_FAULT_THREADS)
		mm->nr_threads = PCACHE_MAX_FAULT_THREADS;
	err = mm_start_handlers(mm);
	if (err)
		goto out_lock;
	__atomic_store_n(&pc->mm, mm, __ATOMIC_RELEASE);
out_unlock:
	pthread_mutex_unlock(&mm_create_lock);
	return mm;

out_lock:
	pthread_rwlock_destroy(&mm->mmap_lock);
	close(mm->stop_fd);
out_close:
	close(mm->uffd);
out_free:
	kfree(mm);
out_err:
	pthread_mutex_unlock(&mm_create_lock);
	*errp = err;
	return NULL;
}

static void mm_stop_handlers(struct mm *mm, unsigned int n)
{
	uint64_t one = 1;
	unsigned int i;

	if (write(mm->stop_fd, &one, sizeof(one)) != sizeof(one))
		abort();	/* an eventfd write of 1 cannot fail */
	for (i = 0; i < n; i++)
		pthread_join(mm->threads[i], NULL);
}

void mm_destroy(struct mm *mm)
{
	assert(mm->nr_views == 0);
	mm_stop_handlers(mm, mm->nr_threads);
	pthread_rwlock_destroy(&mm->mmap_lock);
	close(mm->stop_fd);
	close(mm->uffd);
	kfree(mm->views);
	kfree(mm);
}

struct view *find_view(struct mm *mm, const void *addr)
{
	size_t lo = 0, hi = mm->nr_views;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct view *v = mm->views[mid];

		if ((const char *)addr < v->start)
			hi = mid;
		else if ((const char *)addr >= v->start + v->len)
			lo = mid + 1;
		else
			return v;
	}
	return NULL;
}

static char *view_addr(const struct view *view, pgoff_t index)
{
	return view->start + ((index - view->pgoff) << PAGE_SHIFT);
}

static pgoff_t view_end_index(const struct view *view)
{
	return view->pgoff + (view->len >> PAGE_SHIFT);
}

static void uffd_wake(struct mm *mm, char *addr, size_t len)
{
	struct uffdio_range r = { .start = (uintptr_t)addr, .len = len };

	ioctl(mm->uffd, UFFDIO_WAKE, &r);
}

static bool index_past_eof(struct address_space *mapping, pgoff_t index)
{
	loff_t isize = i_size_read(mapping->host);

	return index >= (PAGE_ALIGN((uint64_t)isize) >> PAGE_SHIFT);
}

/*
 * A fault the cache cannot serve (no memory, a backend error): SIGBUS to
 * the thread, which is blocked in that fault.  (If the message were a stale
 * duplicate the signal could reach a thread that has moved on; errors are
 * rare, end of file is the common case and goes through fault_past_eof.)
 */
static void send_sigbus(struct mm *mm, int tid)
{
	mm_stat(mm, sigbus, 1);
	syscall(SYS_tgkill, getpid(), tid, SIGBUS);
}

/*
 * A fault past end of file: UFFDIO_POISON the page, so the retried access
 * gets the kernel's own SIGBUS (BUS_ADRERR, at the faulting address), as a
 * touch past EOF of a real file mapping does.  Unlike a signal sent to the
 * thread, a poisoned page is right even when the message is stale: it only
 * says "this page is past EOF".  When the file grows over it, the poison
 * must go: i_size_grow() zaps from mapping->poison_lo up.  The check and
 * the poisoning happen under poison_lock, which i_size_grow() takes around
 * raising i_size: so the file cannot grow between "past EOF" and the
 * poison, where an access could already hit a page that is inside the file.
 */
static void fault_past_eof(struct view *view, struct address_space *mapping,
			   pgoff_t index, int tid)
{
	char *addr = view_addr(view, index);
	struct uffdio_poison p = {
		.range = { (uintptr_t)addr, PAGE_SIZE },
		.mode = 0,
	};
	uint64_t lo;

	pthread_mutex_lock(&mapping->poison_lock);
	if (!index_past_eof(mapping, index)) {
		/* It grew since the caller looked: the retry will be served. */
		pthread_mutex_unlock(&mapping->poison_lock);
		uffd_wake(view->mm, addr, PAGE_SIZE);
		return;
	}
	mm_stat(view->mm, sigbus, 1);	/* before the ioctl wakes the thread */
	if (ioctl(view->mm->uffd, UFFDIO_POISON, &p) < 0) {
		struct uffdio_writeprotect unwp = {
			.range = p.range,
			.mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE,
		};

		if (errno != EEXIST) {
			pthread_mutex_unlock(&mapping->poison_lock);
			uffd_wake(view->mm, addr, PAGE_SIZE);
			return;
		}
		/*
		 * Past EOF nothing is mapped, so the entry in the way is the
		 * uffd-wp marker a zap of a write-protected page leaves
		 * behind: clear it, then poison.
		 */
		ioctl(view->mm->uffd, UFFDIO_WRITEPROTECT, &unwp);
		if (ioctl(view->mm->uffd, UFFDIO_POISON, &p) < 0) {
			/*
			 * Still in the way: another handler poisoned it first
			 * (a duplicate message for the same fault).  Its
			 * poison does the job; never signal on a guess.
			 */
			pthread_mutex_unlock(&mapping->poison_lock);
			uffd_wake(view->mm, addr, PAGE_SIZE);
			return;
		}
	}
	lo = __atomic_load_n(&mapping->poison_lo, __ATOMIC_RELAXED);
	if (index < lo)
		__atomic_store_n(&mapping->poison_lo, index, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&mapping->poison_lock);
}

/*
 * Map @nr pages of @view from @index with UFFDIO_CONTINUE, without waking
 * anyone: the caller wakes the faulting page once everything is in place,
 * so a thread cannot run (and zap a page) while the handler still maps
 * around it.  A page some other fault mapped first (-EEXIST) is skipped.
 * Returns the pages this call mapped.
 */
static unsigned int continue_range(struct view *view, pgoff_t index,
				   unsigned int nr, bool wp)
{
	struct mm *mm = view->mm;
	unsigned int done = 0;

	while (nr) {
		struct uffdio_continue c = {
			.range = { (uintptr_t)view_addr(view, index),
				   (uint64_t)nr << PAGE_SHIFT },
			.mode = UFFDIO_CONTINUE_MODE_DONTWAKE |
				(wp ? UFFDIO_CONTINUE_MODE_WP : 0),
		};
		unsigned int mapped;

		if (!ioctl(mm->uffd, UFFDIO_CONTINUE, &c))
			return done + nr;
		if (errno == EAGAIN && c.mapped <= 0)
			continue;	/* the mm is changing: retry */
		mapped = c.mapped > 0 ? (unsigned int)(c.mapped >> PAGE_SHIFT) : 0;
		done += mapped;
		index += mapped;
		nr -= mapped;
		if (!nr)
			break;
		/* This page: already mapped (EEXIST) or gone (punched). */
		index++;
		nr--;
	}
	return done;
}

/*
 * Clean pages of writable views go in write-protected: page_mkwrite.  So
 * do dirty pages of a block mapping with a clean block (a write dirtied
 * only some): a store must take the fault that dirties every block, or
 * writeback, which writes only dirty blocks, would lose it.
 */
static bool install_wp(const struct view *view, const struct page *page)
{
	const struct address_space *mapping = page->mapping;

	if (!view->wp || !PageDirty(page))
		return view->wp;
	return (mapping->flags & AS_BLOCKS) &&
	       page_blocks(page, BLK_DIRTY_SHIFT) != blocks_all(mapping->host);
}

/*
 * Install the locked, uptodate page @page at @index, and the uptodate pages
 * around it in the fault-around window, in runs of one ioctl each.
 */
static void do_fault_around(struct view *view, struct address_space *mapping,
			    struct page *page, pgoff_t index)
{
	struct mm *mm = view->mm;
	unsigned int n = mm->fault_around, nr, i, run_nr = 0;
	struct page *batch[PCACHE_MAX_FAULT_AROUND], *locked[PCACHE_MAX_FAULT_AROUND];
	pgoff_t ws, we, eof, run_start = 0, idx;
	unsigned int nlocked = 0, found;
	uint64_t indices[PCACHE_MAX_FAULT_AROUND];
	bool run_wp = false;

	if (n > ARRAY_SIZE(batch))
		n = ARRAY_SIZE(batch);
	/* The window: aligned like the kernel's, inside the view and the file. */
	ws = n > 1 ? index - index % n : index;
	if (ws < view->pgoff)
		ws = view->pgoff;
	we = ws + n;
	if (we > view_end_index(view))
		we = view_end_index(view);
	eof = PAGE_ALIGN((uint64_t)i_size_read(mapping->host)) >> PAGE_SHIFT;
	if (we > eof)
		we = eof;
	if (we <= index)
		we = index + 1;
	nr = (unsigned int)(we - ws);

	found = 0;
	if (nr > 1) {
		pthread_rwlock_rdlock(&mapping->i_pages_lock);
		found = radix_gang_lookup(&mapping->i_pages, (void **)batch,
					  indices, ws, nr);
		for (i = 0; i < found; i++) {
			if (indices[i] >= we) {
				found = i;
				break;
			}
			get_page(batch[i]);
		}
		pthread_rwlock_unlock(&mapping->i_pages_lock);
	}

	i = 0;
	for (idx = ws; idx < we; idx++) {
		struct page *p = NULL;
		bool ok, wp;

		while (i < found && indices[i] < idx)
			i++;
		if (idx == index) {
			p = page;
			ok = true;
		} else if (i < found && indices[i] == idx) {
			p = batch[i];
			ok = p != page && PageUptodate(p) && trylock_page(p);
			if (ok && (p->mapping != mapping || !PageUptodate(p))) {
				unlock_page(p);
				ok = false;
			}
			if (ok)
				locked[nlocked++] = p;
		} else {
			ok = false;
		}
		wp = ok && install_wp(view, p);
		if (run_nr && (!ok || wp != run_wp)) {
			unsigned int got = continue_range(view, run_start, run_nr, run_wp);

			if (run_start > index || run_start + run_nr <= index)
				mm_stat(mm, fault_around, got);
			else if (got)
				mm_stat(mm, fault_around, got - 1);
			run_nr = 0;
		}
		if (!ok)
			continue;
		if (!run_nr) {
			run_start = idx;
			run_wp = wp;
		}
		run_nr++;
	}
	if (run_nr) {
		unsigned int got = continue_range(view, run_start, run_nr, run_wp);

		if (run_start > index || run_start + run_nr <= index)
			mm_stat(mm, fault_around, got);
		else if (got)
			mm_stat(mm, fault_around, got - 1);
	}
	/*
	 * Counted before the wake: a woken thread may read the statistics.
	 * Wake the faulting page only: a wake of the whole window also wakes
	 * threads blocked on other faults there (a write-protect fault, say),
	 * which then fault again - and the second message, served later, is
	 * stale.  Threads faulting on the neighbours get their own message
	 * served (-EEXIST, then this wake for their page).
	 */
	mm_stat(mm, faults, 1);
	uffd_wake(mm, view_addr(view, index), PAGE_SIZE);
	for (i = 0; i < nlocked; i++)
		unlock_page(locked[i]);
	for (i = 0; i < found; i++)
		put_page(batch[i]);
}

/*
 * Find or create page @index and make it uptodate; returned locked and
 * referenced.  Caller holds invalidate_lock (read) and checked i_size.
 */
static int fault_get_page(struct view *view, struct address_space *mapping,
			  pgoff_t index, struct page **pagep, unsigned int nowait)
{
	struct page *page;
	int err;

	err = filemap_get_page(mapping, index, FGP_LOCK | FGP_CREAT | nowait,
			       &page);
	if (err)
		return err;
	if (!PageUptodate(page)) {
		err = mapping_read_folio(view->file, page);
		if (err) {
			unlock_page(page);
			put_page(page);
			return err;
		}
	}
	*pagep = page;
	return 0;
}

/*
 * filemap_fault: a MISSING or MINOR fault. mm lock held (read).
 * Returns false if a lock was busy: the fault is retried later.
 */
static bool filemap_fault(struct view *view, pgoff_t index, bool write, int tid)
{
	struct address_space *mapping = file_mapping(view->file);
	struct page *page;
	int err;

	if (!filemap_invalidate_trylock_shared(mapping))
		return false;
	if (index_past_eof(mapping, index)) {
		fault_past_eof(view, mapping, index, tid);
		goto out;
	}
	lockdep_fault(tid, mapping, index, true);
	err = fault_get_page(view, mapping, index, &page, FGP_NOWAIT);
	if (err == -EAGAIN) {
		filemap_invalidate_unlock(mapping);
		return false;
	}
	if (err) {
		send_sigbus(view->mm, tid);
		goto out;
	}
	if (write && view->wp) {
		/* A store that maps the page: page_mkwrite at once. */
		wait_on_page_writeback(page);
		folio_mark_dirty(page);
	}
	do_fault_around(view, mapping, page, index);
	unlock_page(page);
	put_page(page);
out:
	filemap_invalidate_unlock(mapping);
	return true;
}

/* page_mkwrite: a store to a write-protected (clean) page.  As filemap_fault. */
static bool do_wp_fault(struct view *view, pgoff_t index, int tid)
{
	struct address_space *mapping = file_mapping(view->file);
	char *addr = view_addr(view, index);
	struct uffdio_writeprotect wp = {
		.range = { (uintptr_t)addr, PAGE_SIZE },
		.mode = 0,
	};
	struct page *page;
	int err;

	if (!filemap_invalidate_trylock_shared(mapping))
		return false;
	if (index_past_eof(mapping, index)) {
		fault_past_eof(view, mapping, index, tid);
		goto out;
	}
	lockdep_fault(tid, mapping, index, true);
	err = filemap_get_page(mapping, index, FGP_LOCK | FGP_NOWAIT, &page);
	if (err == -EAGAIN) {
		filemap_invalidate_unlock(mapping);
		return false;
	}
	if (err) {
		/* Gone since (truncated and punched): the retry faults anew. */
		uffd_wake(view->mm, addr, PAGE_SIZE);
		goto out;
	}
	wait_on_page_writeback(page);
	if (PageUptodate(page))
		folio_mark_dirty(page);
	mm_stat(view->mm, wp_faults, 1);	/* before the ioctl wakes the thread */
	while (ioctl(view->mm->uffd, UFFDIO_WRITEPROTECT, &wp) < 0 && errno == EAGAIN)
		;
	unlock_page(page);
	put_page(page);
out:
	filemap_invalidate_unlock(mapping);
	return true;
}

/*
 * Serve one fault message.  Returns false if it must be retried later:
 * a handler never sleeps on a lock (see fault_thread).
 */
static bool handle_fault(struct mm *mm, const struct uffd_msg *msg)
{
	char *addr = (char *)(uintptr_t)(msg->arg.pagefault.address & PAGE_MASK);
	uint64_t flags = msg->arg.pagefault.flags;
	int tid = (int)msg->arg.pagefault.feat.ptid;
	struct view *view;
	pgoff_t index;

	bool done = true;

	/* Before any lock: a no-fault copy must never wait (see the top). */
	if (uaccess_refuse_fault(tid, &mm->stats.refused))
		return true;
	/* The fault path takes the mm lock: is @tid holding a page lock? */
	lockdep_fault(tid, NULL, 0, false);
	if (!mmap_read_trylock(mm, FGP_NOWAIT_NS))
		return false;
	view = find_view(mm, addr);
	if (!view) {
		/* Unmapped meanwhile: let the thread retry into its SIGSEGV. */
		uffd_wake(mm, addr, PAGE_SIZE);
		goto out;
	}
	index = view->pgoff + ((size_t)(addr - view->start) >> PAGE_SHIFT);
	if (flags & UFFD_PAGEFAULT_FLAG_WP)
		done = do_wp_fault(view, index, tid);
	else
		done = filemap_fault(view, index, flags & UFFD_PAGEFAULT_FLAG_WRITE,
				     tid);
out:
	mmap_unlock(mm);
	return done;
}

/*
 * A handler thread.  It never sleeps long on a lock: a fault whose mm lock,
 * invalidate_lock or page lock stays busy for FGP_NOWAIT_NS is kept aside
 * and tried again after the messages that came in meanwhile.  (The short
 * wait, rather than a trylock, keeps a looping mlock() from starving it.)  So a blocked fault can never stop
 * the handler from refusing another thread's fault - the thread that holds
 * the very page lock we want may be inside a no-fault copy, waiting for its
 * refusal (the optimistic strategy's ABBA case).  A fault that stays blocked
 * (only naive's deadlocks do that) costs a retry every DEFER_NS.
 */
#define DEFER_MAX	64
#define DEFER_NS	50000
#ifndef PCACHE_FAULT_SPIN_NS
#define PCACHE_FAULT_SPIN_NS	50000	/* spin this long for the next fault */
#endif

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Poll the userfaultfd by reading it for PCACHE_FAULT_SPIN_NS; true if messages came. */
static bool spin_until_ns(int uffd, struct uffd_msg *msgs, ssize_t *n)
{
	uint64_t end = mono_ns() + PCACHE_FAULT_SPIN_NS;

	do {
		*n = read(uffd, msgs, 16 * sizeof(*msgs));
		if (*n > 0)
			return true;
		if (errno != EAGAIN && errno != EINTR)
			return false;
		sched_yield();
	} while (mono_ns() < end);
	return false;
}

static void *fault_thread(void *arg)
{
	struct mm *mm = arg;
	struct uffd_msg msgs[16], deferred[DEFER_MAX];
	unsigned int ndeferred = 0;
	struct pollfd pfd[2] = {
		{ .fd = mm->uffd, .events = POLLIN },
		{ .fd = mm->stop_fd, .events = POLLIN },
	};

	for (;;) {
		ssize_t n = read(mm->uffd, msgs, sizeof(msgs));
		unsigned int i, kept;

		if (n > 0) {
got:
			for (i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
				if (msgs[i].event != UFFD_EVENT_PAGEFAULT ||
				    handle_fault(mm, &msgs[i]))
					continue;
				if (ndeferred < DEFER_MAX)
					deferred[ndeferred++] = msgs[i];
				else	/* out of room: wait for this one */
					while (!handle_fault(mm, &msgs[i]))
						sched_yield();
			}
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			break;
		/*
		 * Faults come in bursts (a thread walking a view).  Waking a
		 * handler from poll() costs a cross-CPU wake-up, tens of us on
		 * a virtual machine - more than serving the fault.  So spin on
		 * the (non-blocking) read a little before sleeping.
		 */
		if (spin_until_ns(mm->uffd, msgs, &n))
			goto got;
		for (i = kept = 0; i < ndeferred; i++)
			if (!handle_fault(mm, &deferred[i]))
				deferred[kept++] = deferred[i];
		ndeferred = kept;
		/* Nothing queued: sleep until a fault, the stop signal, or a retry. */
		if (ndeferred) {
			struct timespec ts = { 0, DEFER_NS };

			if (ppoll(pfd, 2, &ts, NULL) < 0 && errno != EINTR)
				break;
		} else if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
			break;
		}
		if (pfd[1].revents)
			break;
	}
	return NULL;
}

int mm_start_handlers(struct mm *mm)
{
	sigset_t all, old;
	unsigned int i;
	int err = 0;

	/* Handler threads take no signals: they are the application's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < mm->nr_threads; i++) {
		err = -pthread_create(&mm->threads[i], NULL, fault_thread, mm);
		if (err)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		mm_stop_handlers(mm, i);
	return err;
}

int populate_view_range(struct view *view, char *start, char *end)
{
	struct address_space *mapping = file_mapping(view->file);
	pgoff_t index = view->pgoff + ((size_t)(start - view->start) >> PAGE_SHIFT);
	pgoff_t last = view->pgoff + ((size_t)(end - view->start) >> PAGE_SHIFT);
	struct page *pages[64];
	int err = 0;

	/*
	 * The caller holds the mm lock for write, as make_pages_present did
	 * under mlock(): this thread runs the fault logic itself.
	 */
	while (index < last && !err) {
		unsigned int nr = 0, i, run = 0;
		pgoff_t first = index;
		bool run_wp = false;

		filemap_invalidate_lock_shared(mapping);
		while (index < last && nr < ARRAY_SIZE(pages)) {
			if (index_past_eof(mapping, index)) {
				err = -ENOMEM;	/* mlock(2): pages that cannot be made present */
				break;
			}
			err = fault_get_page(view, mapping, index, &pages[nr], 0);
			if (err)
				break;
			nr++;
			index++;
		}
		/* Install the locked pages in runs of equal protection. */
		for (i = 0; i <= nr; i++) {
			bool wp = i < nr && install_wp(view, pages[i]);

			if (run && (i == nr || wp != run_wp)) {
				mm_stat(view->mm, populated,
					continue_range(view, first + i - run, run, run_wp));
				run = 0;
			}
			if (i == nr)
				break;
			if (!run)
				run_wp = wp;
			run++;
		}
		if (nr)
			uffd_wake(view->mm, view_addr(view, first),
				  (size_t)nr << PAGE_SHIFT);
		for (i = 0; i < nr; i++) {
			unlock_page(pages[i]);
			put_page(pages[i]);
		}
		filemap_invalidate_unlock(mapping);
	}
	return err;
}

bool mapping_mapped(struct address_space *mapping)
{
	return __atomic_load_n(&mapping->nr_views, __ATOMIC_ACQUIRE) != 0;
}

void page_mkclean(struct page *page)
{
	struct address_space *mapping = page->mapping;
	struct view *view;

	assert(PageLocked(page));
	if (!mapping_mapped(mapping))
		return;
	pthread_rwlock_rdlock(&mapping->i_mmap_lock);
	list_for_each_entry(view, &mapping->i_mmap, i_mmap) {
		struct uffdio_writeprotect wp;

		if (!view->wp || page->index < view->pgoff ||
		    page->index >= view_end_index(view))
			continue;
		wp.range.start = (uintptr_t)view_addr(view, page->index);
		wp.range.len = PAGE_SIZE;
		wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
		while (ioctl(view->mm->uffd, UFFDIO_WRITEPROTECT, &wp) < 0 &&
		       errno == EAGAIN)
			;
	}
	pthread_rwlock_unlock(&mapping->i_mmap_lock);
}

void unpoison_mapping(struct address_space *mapping, pgoff_t new_eof)
{
	uint64_t lo = __atomic_load_n(&mapping->poison_lo, __ATOMIC_RELAXED);

	/* poison_lock held.  Poison now inside the file: zap (MADV_DONTNEED lifts it). */
	if (lo < new_eof) {
		unmap_mapping_range(mapping, lo, new_eof);
		__atomic_store_n(&mapping->poison_lo, new_eof, __ATOMIC_RELAXED);
	}
}

void unmap_mapping_pages(struct address_space *mapping, pgoff_t index)
{
	unmap_mapping_range(mapping, index, UINT64_MAX);
}

void unmap_mapping_range(struct address_space *mapping, pgoff_t index,
			 pgoff_t end)
{
	struct view *view;

	if (!mapping_mapped(mapping))
		return;
	pthread_rwlock_rdlock(&mapping->i_mmap_lock);
	list_for_each_entry(view, &mapping->i_mmap, i_mmap) {
		pgoff_t from = max(index, view->pgoff);
		pgoff_t to = min(end, view_end_index(view));

		if (from >= to)
			continue;
		/* Zap: the next touch faults again and sees the file as it is. */
		madvise(view_addr(view, from), (size_t)(to - from) << PAGE_SHIFT,
			MADV_DONTNEED);
	}
	pthread_rwlock_unlock(&mapping->i_mmap_lock);
}
