/*
 * test_page.c - the page descriptor and its sleeping lock (src/mm/page.c).
 *
 *  (a) basics: trylock/lock/unlock, the flag helpers, get_page/put_page/
 *      put_page_testzero on descriptors from page_alloc() (no mapping, no
 *      home, never PG_punch, so freeing them touches no memfd).
 *  (b) mutual exclusion: 4 threads increment a plain counter under
 *      lock_page; the count is exact, and ThreadSanitizer sees the lock as
 *      synchronising (no report on the counter).
 *  (c) nobody spins: waiters in lock_page, wait_on_page_writeback and
 *      wait_on_page_locked block for ~300 ms of wall time while using a few
 *      ms of CPU at most (CLOCK_THREAD_CPUTIME_ID around the wait).
 *  (d) mixed waiters: lock waiters and writeback waiters share PG_waiters;
 *      whichever bit clears first, everybody wakes.  A watchdog turns a lost
 *      wakeup into a failure with a message instead of a hang.
 *  (e) page_check() catches dirty or writeback without uptodate.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "mm/page.h"
#include "harness.h"

/* test_failures is not atomic: threads count here, main adds it up. */
static atomic_int thread_failures;

#define TCHECK(cond, ...) do {						\
	if (!(cond)) {							\
		atomic_fetch_add(&thread_failures, 1);			\
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

#define HOLD_MS		300	/* how long the holder keeps the page */
#define MIN_WAIT_MS	150	/* a waiter must have waited at least this */
#define MAX_CPU_MS	30	/* and burnt at most this much CPU doing it */

static double now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts))
		;
}

static struct page *new_page(void)
{
	struct page *page = page_alloc();

	if (!page) {
		fprintf(stderr, "FAIL: page_alloc returned NULL\n");
		exit(1);
	}
	return page;
}

/* ---- watchdog: a lost wakeup fails with a message, not a hang ---- */

static const char *_Atomic watchdog_what;	/* NULL: disarmed */
static _Atomic double watchdog_deadline;

static void *watchdog_fn(void *arg)
{
	for (;;) {
		const char *what = atomic_load(&watchdog_what);

		if (what && now_ms(CLOCK_MONOTONIC) > atomic_load(&watchdog_deadline)) {
			fprintf(stderr, "FAIL: watchdog: %s: still blocked after "
				"the deadline (lost wakeup?)\n", what);
			_exit(1);
		}
		sleep_ms(20);
	}
	return NULL;
}

static void watchdog_arm(const char *what, long ms)
{
	atomic_store(&watchdog_deadline, now_ms(CLOCK_MONOTONIC) + ms);
	atomic_store(&watchdog_what, what);
}

static void watchdog_disarm(void)
{
	atomic_store(&watchdog_what, NULL);
}

/* ---- (a) basics ---- */

static void test_basics(void)
{
	struct page *page = new_page();

	CHECK_EQ(page_count(page), 1);
	CHECK_EQ(page_flags(page), 0);
	CHECK(page->mapping == NULL && page->home == NULL, "page_alloc: mapping/home not NULL");
	CHECK(!PagePunch(page), "page_alloc: PG_punch set");

	/* trylock / lock / unlock */
	CHECK(trylock_page(page), "trylock on an unlocked page failed");
	CHECK(PageLocked(page), "trylock did not set PG_locked");
	CHECK(!trylock_page(page), "trylock on a locked page succeeded");
	CHECK(PageLocked(page), "failed trylock cleared PG_locked");
	unlock_page(page);
	CHECK(!PageLocked(page), "unlock left PG_locked");
	CHECK(!(page_flags(page) & PG_waiters), "uncontended unlock left PG_waiters");
	lock_page(page);
	CHECK(PageLocked(page), "lock_page did not set PG_locked");
	unlock_page(page);
	CHECK_EQ(page_flags(page), 0);
	/* The waits return at once when the bit is clear. */
	wait_on_page_locked(page);
	wait_on_page_writeback(page);

	/* Flag helpers: each touches only its own bit. */
	struct { const char *name; uint32_t bit;
		 bool (*test)(const struct page *); void (*set)(struct page *);
		 void (*clear)(struct page *); bool (*tset)(struct page *);
		 bool (*tclear)(struct page *); } f[] = {
#define F(n, b) { #n, b, Page##n, SetPage##n, ClearPage##n, TestSetPage##n, TestClearPage##n }
		F(Locked, PG_locked), F(Uptodate, PG_uptodate), F(Dirty, PG_dirty),
		F(Writeback, PG_writeback), F(Error, PG_error), F(Punch, PG_punch),
#undef F
	};
	for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
		CHECK(!f[i].test(page), "%s set on a clean page", f[i].name);
		f[i].set(page);
		CHECK(f[i].test(page), "Set%s did not set it", f[i].name);
		CHECK_EQ(page_flags(page), f[i].bit);
		f[i].set(page);
		CHECK_EQ(page_flags(page), f[i].bit);
		CHECK(f[i].tset(page), "TestSet%s on a set bit returned false", f[i].name);
		f[i].clear(page);
		CHECK(!f[i].test(page), "Clear%s did not clear it", f[i].name);
		CHECK_EQ(page_flags(page), 0);
		CHECK(!f[i].tset(page), "TestSet%s on a clear bit returned true", f[i].name);
		CHECK(f[i].test(page), "TestSet%s did not set it", f[i].name);
		CHECK(f[i].tclear(page), "TestClear%s on a set bit returned false", f[i].name);
		CHECK(!f[i].tclear(page), "TestClear%s on a clear bit returned true", f[i].name);
		CHECK_EQ(page_flags(page), 0);
	}
	/* Bits are independent. */
	SetPageUptodate(page);
	SetPageDirty(page);
	CHECK_EQ(page_flags(page), PG_uptodate | PG_dirty);
	ClearPageDirty(page);
	CHECK_EQ(page_flags(page), PG_uptodate);

	/* Writeback flag transitions through the real calls. */
	lock_page(page);
	set_page_writeback(page);
	CHECK(PageWriteback(page) && PageLocked(page), "set_page_writeback");
	unlock_page(page);
	CHECK(PageWriteback(page) && !PageLocked(page), "unlock cleared writeback");
	end_page_writeback(page);
	CHECK_EQ(page_flags(page), PG_uptodate);
	ClearPageUptodate(page);

	/* References. */
	get_page(page);
	CHECK_EQ(page_count(page), 2);
	get_page(page);
	CHECK_EQ(page_count(page), 3);
	put_page(page);
	CHECK_EQ(page_count(page), 2);
	CHECK(!put_page_testzero(page), "put_page_testzero freed with refs left");
	CHECK_EQ(page_count(page), 1);
	CHECK(put_page_testzero(page), "put_page_testzero: last ref not reported");
	/* page is freed: ASan reports a leak or a use-after-free if not. */

	/* The last put_page() frees too (ASan would report a leak otherwise). */
	page = new_page();
	SetPageUptodate(page);		/* an uptodate, clean page frees fine */
	get_page(page);
	put_page(page);
	CHECK_EQ(page_count(page), 1);
	put_page(page);
}

/* ---- (b) mutual exclusion ---- */

#define MX_THREADS	4
#ifdef __SANITIZE_THREAD__
#define MX_ITERS	20000
#else
#define MX_ITERS	200000
#endif

static struct page *mx_page;
static long mx_counter;		/* plain: only the page lock protects it */
static long mx_contended;	/* trylock failures (under the lock too) */

static void *mx_fn(void *arg)
{
	for (int i = 0; i < MX_ITERS; i++) {
		bool got = trylock_page(mx_page);

		if (!got)
			lock_page(mx_page);
		TCHECK(PageLocked(mx_page), "lock_page returned without PG_locked");
		long v = mx_counter;	/* non-atomic read-modify-write */
		if ((i & 1023) == 0)
			sched_yield();	/* widen the window */
		mx_counter = v + 1;
		if (!got)
			mx_contended++;
		unlock_page(mx_page);
	}
	return NULL;
}

static void test_mutual_exclusion(void)
{
	pthread_t t[MX_THREADS];

	mx_page = new_page();
	for (int i = 0; i < MX_THREADS; i++)
		pthread_create(&t[i], NULL, mx_fn, NULL);
	for (int i = 0; i < MX_THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(mx_counter, (long)MX_THREADS * MX_ITERS);
	CHECK_EQ(page_flags(mx_page) & (PG_locked | PG_waiters), 0);
	printf("mutual exclusion: %d threads x %d, %ld contended acquisitions\n",
	       MX_THREADS, MX_ITERS, mx_contended);
	put_page(mx_page);
}

/* ---- (c) no spinning ---- */

enum wait_kind { WAIT_LOCK, WAIT_WRITEBACK, WAIT_LOCKED };
static const char *const wait_names[] = {
	[WAIT_LOCK] = "lock_page",
	[WAIT_WRITEBACK] = "wait_on_page_writeback",
	[WAIT_LOCKED] = "wait_on_page_locked",
};

struct waiter {
	pthread_t thread;
	struct page *page;
	enum wait_kind kind;
	atomic_int *started;
	double wall_ms, cpu_ms;
	bool woke_too_early;	/* the bit it waited for was still set */
};

static void *waiter_fn(void *arg)
{
	struct waiter *w = arg;
	double wall0, cpu0;

	atomic_fetch_add(w->started, 1);
	wall0 = now_ms(CLOCK_MONOTONIC);
	cpu0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
	switch (w->kind) {
	case WAIT_LOCK:
		lock_page(w->page);
		break;
	case WAIT_WRITEBACK:
		wait_on_page_writeback(w->page);
		w->woke_too_early = PageWriteback(w->page);
		break;
	case WAIT_LOCKED:
		wait_on_page_locked(w->page);
		break;
	}
	w->cpu_ms = now_ms(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	w->wall_ms = now_ms(CLOCK_MONOTONIC) - wall0;
	if (w->kind == WAIT_LOCK) {
		if (!PageLocked(w->page))
			w->woke_too_early = true;
		unlock_page(w->page);
	}
	return NULL;
}

static void test_no_spin(enum wait_kind kind)
{
	enum { NW = 3 };
	struct page *page = new_page();
	struct waiter w[NW];
	atomic_int started = 0;
	char what[96];

	snprintf(what, sizeof(what), "no-spin %s", wait_names[kind]);
	SetPageUptodate(page);
	lock_page(page);
	if (kind == WAIT_WRITEBACK) {
		set_page_writeback(page);
		unlock_page(page);
	}
	for (int i = 0; i < NW; i++) {
		w[i] = (struct waiter){ .page = page, .kind = kind, .started = &started };
		pthread_create(&w[i].thread, NULL, waiter_fn, &w[i]);
	}
	while (atomic_load(&started) < NW)
		sleep_ms(1);
	watchdog_arm(what, 10000);
	sleep_ms(HOLD_MS);
	/* Everyone must still be waiting: the bit is still set. */
	if (kind == WAIT_WRITEBACK)
		end_page_writeback(page);
	else
		unlock_page(page);
	for (int i = 0; i < NW; i++)
		pthread_join(w[i].thread, NULL);
	watchdog_disarm();

	for (int i = 0; i < NW; i++) {
		printf("%-24s waiter %d: wall %6.1f ms, cpu %5.2f ms\n",
		       wait_names[kind], i, w[i].wall_ms, w[i].cpu_ms);
		CHECK(!w[i].woke_too_early, "%s returned with the bit still set", what);
		CHECK(w[i].wall_ms >= MIN_WAIT_MS,
		      "%s waiter %d returned after %.1f ms: it did not wait",
		      what, i, w[i].wall_ms);
		CHECK(w[i].cpu_ms < MAX_CPU_MS,
		      "%s waiter %d used %.1f ms of CPU in %.1f ms: spinning",
		      what, i, w[i].cpu_ms, w[i].wall_ms);
	}
	CHECK_EQ(page_flags(page) & (PG_locked | PG_writeback | PG_waiters), 0);
	ClearPageUptodate(page);
	put_page(page);
}

/* ---- (d) mixed waiters on one page ---- */

struct mixed_round {
	struct page *page;
	atomic_int started;
	atomic_int lock_holders;	/* must never exceed 1 */
	atomic_int woken;
};

struct mixed_waiter {
	pthread_t thread;
	struct mixed_round *r;
	bool writeback;
};

static void *mixed_fn(void *arg)
{
	struct mixed_waiter *mw = arg;
	struct mixed_round *r = mw->r;

	atomic_fetch_add(&r->started, 1);
	if (mw->writeback) {
		wait_on_page_writeback(r->page);
		TCHECK(!PageWriteback(r->page), "writeback waiter woke with PG_writeback set");
	} else {
		lock_page(r->page);
		TCHECK(atomic_fetch_add(&r->lock_holders, 1) == 0,
		       "two lock holders at once");
		atomic_fetch_sub(&r->lock_holders, 1);
		unlock_page(r->page);
	}
	atomic_fetch_add(&r->woken, 1);
	return NULL;
}

/*
 * One round: the page is locked and under writeback; @nlock lock waiters and
 * @nwb writeback waiters sleep on it; then the owner drops the two bits in
 * the order @lock_first says, with @gap_us between them.
 */
static void mixed_round(int nlock, int nwb, bool lock_first, long settle_us,
			long gap_us)
{
	struct mixed_round r = { .page = new_page() };
	struct mixed_waiter mw[8];
	int n = nlock + nwb;

	SetPageUptodate(r.page);
	lock_page(r.page);
	set_page_writeback(r.page);
	for (int i = 0; i < n; i++) {
		mw[i] = (struct mixed_waiter){ .r = &r, .writeback = i >= nlock };
		pthread_create(&mw[i].thread, NULL, mixed_fn, &mw[i]);
	}
	while (atomic_load(&r.started) < n)
		sched_yield();
	if (settle_us)
		usleep(settle_us);
	if (lock_first) {
		unlock_page(r.page);
		if (gap_us)
			usleep(gap_us);
		end_page_writeback(r.page);
	} else {
		end_page_writeback(r.page);
		if (gap_us)
			usleep(gap_us);
		unlock_page(r.page);
	}
	for (int i = 0; i < n; i++)
		pthread_join(mw[i].thread, NULL);
	CHECK_EQ(atomic_load(&r.woken), n);
	CHECK_EQ(page_flags(r.page) & (PG_locked | PG_writeback | PG_waiters), 0);
	ClearPageUptodate(r.page);
	put_page(r.page);
}

static void test_mixed_waiters(void)
{
#ifdef __SANITIZE_THREAD__
	const int rounds = 150;
#else
	const int rounds = 600;
#endif
	/* Slow rounds: everybody is certainly asleep before the bits drop. */
	watchdog_arm("mixed waiters (slow rounds)", 20000);
	mixed_round(3, 3, true, 50000, 100000);
	mixed_round(3, 3, false, 50000, 100000);
	mixed_round(1, 4, true, 50000, 100000);
	mixed_round(4, 1, false, 50000, 100000);
	watchdog_disarm();

	/* Fast rounds: bits drop while waiters are still going to sleep. */
	watchdog_arm("mixed waiters (racing rounds)", 30000);
	for (int i = 0; i < rounds; i++)
		mixed_round(2, 2, i & 1, (i % 3) * 50, (i % 5) * 20);
	watchdog_disarm();
	printf("mixed waiters: 4 slow rounds, %d racing rounds, all woke\n", rounds);
}

/* ---- (e) page_check ---- */

static void test_page_check(void)
{
	struct page *page = new_page();
	struct page fake = { .refcount = 0 };

	CHECK_EQ(page_check(page), 0);
	SetPageDirty(page);
	CHECK(page_check(page) != 0, "dirty without uptodate passed page_check");
	SetPageUptodate(page);
	CHECK_EQ(page_check(page), 0);
	ClearPageDirty(page);
	ClearPageUptodate(page);
	SetPageWriteback(page);
	CHECK(page_check(page) != 0, "writeback without uptodate passed page_check");
	SetPageUptodate(page);
	CHECK_EQ(page_check(page), 0);
	ClearPageWriteback(page);
	ClearPageUptodate(page);
	SetPageUptodate(page);
	CHECK_EQ(page_check(page), 0);
	ClearPageUptodate(page);
	/* A descriptor with no references left is not a live page. */
	CHECK(page_check(&fake) != 0, "refcount 0 passed page_check");
	put_page(page);
}

int main(void)
{
	pthread_t wd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_create(&wd, NULL, watchdog_fn, NULL);
	pthread_detach(wd);

	test_basics();
	test_page_check();
	test_mutual_exclusion();
	test_no_spin(WAIT_LOCK);
	test_no_spin(WAIT_WRITEBACK);
	test_no_spin(WAIT_LOCKED);
	test_mixed_waiters();

	test_failures += atomic_load(&thread_failures);
	return test_exit();
}
