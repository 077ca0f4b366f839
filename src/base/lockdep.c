/*
 * lockdep.c - the lock validator (see lockdep.h).
 *
 * Each thread's held-lock stack is published in a process-wide table by
 * thread id, so the view fault handler (another thread) can read the stack
 * of the thread whose fault it is about to serve.  That thread is blocked
 * in the fault, so its stack is not changing; the fields are still read and
 * written with atomics so the race detector has nothing to say.
 */
#include <execinfo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc.h"
#include "lockdep.h"

#define MAX_HELD	32
#define MAX_THREADS	1024
#define BT_DEPTH	12
#define REPORTS_SHOWN	4	/* per kind; all are counted */

struct held_lock {
	int class;			/* enum lock_class; atomic */
	const void *obj;		/* atomic */
	const void *owner;		/* atomic */
	uint64_t index;			/* atomic */
	int nbt;
	void *bt[BT_DEPTH];		/* where it was taken */
};

struct lockdep_thread {
	int tid;			/* atomic: 0 free */
	int depth;			/* atomic */
	int in_copy;			/* atomic: inside a guarded user copy */
	struct held_lock held[MAX_HELD];
};

#ifdef PCACHE_DEBUG
int lockdep_enabled = 1;
#else
int lockdep_enabled;
#endif

static struct lockdep_thread *threads[MAX_THREADS];	/* atomic pointers */
static __thread struct lockdep_thread *me;
static pthread_key_t thread_key;
static pthread_once_t lockdep_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t nr_reports;

enum report_kind {
	R_ORDER,		/* lower rank after higher */
	R_PAGE_ORDER,		/* page locks of a file in descending order */
	R_RECURSIVE,		/* a lock the thread holds */
	R_FAULT_HOLDING,	/* fault raised while holding a page lock */
	R_FAULT_SAME_PAGE,	/* fault needs the page its thread holds */
	R_NR
};

static const char *const kind_names[R_NR] = {
	[R_ORDER]		= "lock order inversion",
	[R_PAGE_ORDER]		= "page locks of one file in descending index order",
	[R_RECURSIVE]		= "recursive locking",
	[R_FAULT_HOLDING]	= "view fault raised while holding a page lock",
	[R_FAULT_SAME_PAGE]	= "view fault needs the page lock its own thread holds",
};

static const char *const class_names[] = {
	[LOCK_INODE]		= "i_rwsem",
	[LOCK_MM]		= "mm lock",
	[LOCK_INVALIDATE]	= "invalidate_lock",
	[LOCK_PAGE]		= "page lock",
};

static unsigned int shown[R_NR];

static void thread_gone(void *p)
{
	struct lockdep_thread *t = p;

	/*
	 * Never freed (the fault handler may be reading it right now) but
	 * kept in the table, free for the next thread: nothing leaks.
	 */
	__atomic_store_n(&t->depth, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->in_copy, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->tid, 0, __ATOMIC_RELEASE);
}

static void lockdep_setup(void)
{
	const char *env = getenv("PCACHE_LOCKDEP");

	pthread_key_create(&thread_key, thread_gone);
	if (env)
		__atomic_store_n(&lockdep_enabled, atoi(env) != 0,
				 __ATOMIC_RELAXED);
}

void lockdep_init(void)
{
	pthread_once(&lockdep_once, lockdep_setup);
}

uint64_t lockdep_reports(void)
{
	return __atomic_load_n(&nr_reports, __ATOMIC_RELAXED);
}

static struct lockdep_thread *this_thread(void)
{
	struct lockdep_thread *t = me;
	int i;

	int tid = (int)syscall(SYS_gettid);

	if (likely(t))
		return t;
	/* A record a finished thread left behind? */
	for (i = 0; i < MAX_THREADS; i++) {
		int zero = 0;

		t = __atomic_load_n(&threads[i], __ATOMIC_ACQUIRE);
		if (t && __atomic_compare_exchange_n(&t->tid, &zero, tid, 0,
						     __ATOMIC_ACQ_REL,
						     __ATOMIC_RELAXED))
			goto found;
	}
	t = calloc(1, sizeof(*t));	/* not kmalloc: no fault injection here */
	if (!t)
		return NULL;
	t->tid = tid;
	for (i = 0; i < MAX_THREADS; i++) {
		struct lockdep_thread *none = NULL;

		if (__atomic_compare_exchange_n(&threads[i], &none, t, 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			break;
	}
found:
	me = t;
	pthread_setspecific(thread_key, t);
	return t;
}

static struct lockdep_thread *find_thread(int tid)
{
	int i;

	for (i = 0; i < MAX_THREADS; i++) {
		struct lockdep_thread *t = __atomic_load_n(&threads[i],
							   __ATOMIC_ACQUIRE);

		if (t && __atomic_load_n(&t->tid, __ATOMIC_ACQUIRE) == tid)
			return t;
	}
	return NULL;
}

static void describe(const struct held_lock *h, char *buf, size_t len)
{
	int class = __atomic_load_n(&h->class, __ATOMIC_RELAXED);

	if (class == LOCK_PAGE)
		snprintf(buf, len, "page lock of page %llu of mapping %p",
			 (unsigned long long)__atomic_load_n(&h->index, __ATOMIC_RELAXED),
			 __atomic_load_n(&h->owner, __ATOMIC_RELAXED));
	else
		snprintf(buf, len, "%s %p", class_names[class],
			 __atomic_load_n(&h->obj, __ATOMIC_RELAXED));
}

/*
 * Report @kind: @what is the new lock or the fault, @held the lock it
 * conflicts with (and its thread @tid).  Backtraces: here, and where the
 * held lock was taken.
 */
static void report(enum report_kind kind, const char *what,
		   const struct held_lock *held, int tid)
{
	char desc[128];
	void *bt[BT_DEPTH];
	int n;

	__atomic_add_fetch(&nr_reports, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&report_lock);
	if (shown[kind]++ >= REPORTS_SHOWN) {
		pthread_mutex_unlock(&report_lock);
		return;
	}
	describe(held, desc, sizeof(desc));
	fprintf(stderr,
		"pcache lockdep: %s\n"
		"  thread %d: %s\n"
		"  while thread %d holds %s\n"
		"  backtrace here:\n",
		kind_names[kind], (int)syscall(SYS_gettid), what, tid, desc);
	n = backtrace(bt, BT_DEPTH);
	backtrace_symbols_fd(bt, n, 2);
	fprintf(stderr, "  %s was taken at:\n", desc);
	backtrace_symbols_fd(held->bt, held->nbt, 2);
	if (shown[kind] == REPORTS_SHOWN)
		fprintf(stderr, "pcache lockdep: further '%s' reports are counted, not shown\n",
			kind_names[kind]);
	pthread_mutex_unlock(&report_lock);
}

void __lockdep_acquire(enum lock_class class, const void *obj,
		       const void *owner, uint64_t index, bool try)
{
	struct lockdep_thread *t = this_thread();
	struct held_lock *h;
	char what[128];
	int i, depth;

	if (!t)
		return;
	depth = __atomic_load_n(&t->depth, __ATOMIC_RELAXED);
	if (!try) {
		for (i = 0; i < depth; i++) {
			const struct held_lock *o = &t->held[i];
			enum report_kind kind;

			if (o->obj == obj)
				kind = R_RECURSIVE;
			else if (o->class > (int)class)
				kind = R_ORDER;
			else if (class == LOCK_PAGE && o->class == LOCK_PAGE &&
				 o->owner == owner && o->index > index)
				kind = R_PAGE_ORDER;
			else
				continue;
			if (class == LOCK_PAGE)
				snprintf(what, sizeof(what),
					 "takes the page lock of page %llu of mapping %p",
					 (unsigned long long)index, owner);
			else
				snprintf(what, sizeof(what), "takes %s %p",
					 class_names[class], obj);
			report(kind, what, o, t->tid);
			break;
		}
	}
	if (depth == MAX_HELD)
		return;		/* too deep to track; nothing real gets here */
	h = &t->held[depth];
	__atomic_store_n(&h->class, (int)class, __ATOMIC_RELAXED);
	__atomic_store_n(&h->obj, obj, __ATOMIC_RELAXED);
	__atomic_store_n(&h->owner, owner, __ATOMIC_RELAXED);
	__atomic_store_n(&h->index, index, __ATOMIC_RELAXED);
	h->nbt = backtrace(h->bt, BT_DEPTH);
	__atomic_store_n(&t->depth, depth + 1, __ATOMIC_RELEASE);
}

void __lockdep_release(enum lock_class class, const void *obj)
{
	struct lockdep_thread *t = me;
	int i, depth;

	if (!t)
		return;
	depth = __atomic_load_n(&t->depth, __ATOMIC_RELAXED);
	/* Locks are not always released in reverse order: find it. */
	for (i = depth - 1; i >= 0; i--) {
		if (t->held[i].obj != obj)
			continue;
		for (; i < depth - 1; i++) {
			struct held_lock *d = &t->held[i], *s = &t->held[i + 1];

			__atomic_store_n(&d->class, s->class, __ATOMIC_RELAXED);
			__atomic_store_n(&d->obj, s->obj, __ATOMIC_RELAXED);
			__atomic_store_n(&d->owner, s->owner, __ATOMIC_RELAXED);
			__atomic_store_n(&d->index, s->index, __ATOMIC_RELAXED);
			d->nbt = s->nbt;
			memcpy(d->bt, s->bt, sizeof(d->bt));
		}
		__atomic_store_n(&t->depth, depth - 1, __ATOMIC_RELEASE);
		return;
	}
	/* Released a lock taken before the validator was on: ignore. */
}

void __lockdep_user_copy(int delta)
{
	struct lockdep_thread *t = this_thread();

	if (t)
		__atomic_add_fetch(&t->in_copy, delta, __ATOMIC_RELEASE);
}

void __lockdep_fault(int tid, const void *owner, uint64_t index, bool page_known)
{
	struct lockdep_thread *t = find_thread(tid);
	char what[128];
	int i, depth;

	/*
	 * Library threads fault on views only inside a guarded copy.  If the
	 * thread is not in one, the message is stale (another fault's install
	 * already woke it): its locks say nothing about this fault.
	 */
	if (!t || !__atomic_load_n(&t->in_copy, __ATOMIC_ACQUIRE))
		return;
	depth = __atomic_load_n(&t->depth, __ATOMIC_ACQUIRE);
	for (i = 0; i < depth && i < MAX_HELD; i++) {
		const struct held_lock *h = &t->held[i];

		if (__atomic_load_n(&h->class, __ATOMIC_RELAXED) != LOCK_PAGE)
			continue;
		if (!page_known) {
			snprintf(what, sizeof(what),
				 "serves a view fault of thread %d, which takes the mm lock", tid);
			report(R_FAULT_HOLDING, what, h, tid);
			return;
		}
		if (__atomic_load_n(&h->owner, __ATOMIC_RELAXED) == owner &&
		    __atomic_load_n(&h->index, __ATOMIC_RELAXED) == index) {
			snprintf(what, sizeof(what),
				 "serves a view fault of thread %d that needs page %llu",
				 tid, (unsigned long long)index);
			report(R_FAULT_SAME_PAGE, what, h, tid);
			return;
		}
	}
}
