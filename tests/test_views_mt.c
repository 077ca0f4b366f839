/*
 * test_views_mt - views under concurrency.
 *
 *  (a) 2, 4 and 8 threads fault on the same pages and on different pages
 *      of a read-only view (zapped between rounds, so every round faults
 *      again), and store into shared pages of a writable view of a file of
 *      holes; every byte is checked;
 *  (b) fault-around: a sequential first touch of N uptodate pages costs
 *      N/16 faults with fault_around_pages = 16 (view_faults +
 *      view_fault_around == N), and N faults with 1 (view_fault_around ==
 *      0); also from a view at an unaligned file offset, from a writable
 *      view, and from 4 threads on disjoint windows; timings printed;
 *  (c) dirty tracking: threads store while the main thread runs writeback
 *      cycles; at the end pages_dirty lies between the pages that must be
 *      dirty (stored after the last writeback returned) and the pages that
 *      may be (stored during it or later); after the last pcache_fsync
 *      nothing is dirty and pread shows every byte stored;
 *  (d) munmap races: threads touch a view while the main thread unmaps it
 *      (a touch after the unmap takes SIGSEGV, caught); the library must
 *      neither crash nor hang;
 *  (e) pcache_mlock populates: afterwards touching the pages takes no
 *      view fault; and mlock running concurrently with faulting and
 *      storing threads.
 *
 * Sized to run in a few seconds under ThreadSanitizer.  Exit 77 if views
 * are unavailable (-EOPNOTSUPP).  A hung case is named by a SIGALRM
 * watchdog before the test exits 1.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "harness.h"
#include "watchdog.h"

#define PG		4096L
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* test_failures is not atomic: threads count here, main adds it up. */
static atomic_int thread_failures;

#define TFAIL(...) do {							\
	if (atomic_fetch_add(&thread_failures, 1) < 30) {		\
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* Watchdog                                                            */
/* ------------------------------------------------------------------ */

/* The watchdog (current_case, set_case, watchdog_start): watchdog.h. */

/* ------------------------------------------------------------------ */
/* SIGSEGV / SIGBUS from a touch                                       */
/* ------------------------------------------------------------------ */

/* Installed before pcache_create(): the library's guard chains to it. */
static __thread sigjmp_buf *volatile catch_env;
static __thread volatile int caught_signo;
static struct sigaction saved_action[2];

static void catch_handler(int sig, siginfo_t *si, void *ctx)
{
	if (!catch_env) {
		put_str("FAIL: unexpected fault outside a test touch in case '");
		put_str(__atomic_load_n(&current_case, __ATOMIC_ACQUIRE));
		put_str("'\n");
		if (si->si_code <= 0)
			_exit(1);
		sigaction(sig, &saved_action[sig == SIGBUS], NULL);
		return;
	}
	caught_signo = si->si_signo;
	siglongjmp(*catch_env, 1);
}

static void catch_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = catch_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &saved_action[0]);
	sigaction(SIGBUS, &sa, &saved_action[1]);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static struct pcache *new_cache(unsigned int fault_around, unsigned int threads)
{
	struct pcache_config cfg;
	struct pcache *pc = NULL;
	int rc;

	pcache_config_init(&cfg);
	cfg.fault_around_pages = fault_around;
	cfg.fault_threads = threads;
	rc = pcache_create(&cfg, &pc);
	if (rc) {
		fprintf(stderr, "pcache_create: %s\n", pcache_strerror(rc));
		exit(1);
	}
	return pc;
}

static int open_file(struct pcache *pc, const char *name)
{
	int fd = pcache_open(pc, name, O_RDWR | O_CREAT, 0644);

	if (fd < 0) {
		fprintf(stderr, "pcache_open %s: %s\n", name, pcache_strerror(fd));
		exit(1);
	}
	return fd;
}

/* Reference bytes of a pattern, so threads compare with memcmp. */
static char *pattern_buf(unsigned tag, size_t len)
{
	char *b = malloc(len);

	pattern_fill(b, len, tag, 0);
	return b;
}

static void fill(int fd, const char *ref, size_t len)
{
	CHECK_EQ(pcache_pwrite(fd, ref, len, 0), len);
}

static void *map_ok(int fd, size_t len, int prot, off_t off)
{
	void *p = pcache_mmap(fd, len, prot, off);

	if (PCACHE_IS_ERR(p)) {
		if (PCACHE_PTR_ERR(p) == -EOPNOTSUPP)
			TEST_SKIP("pcache_mmap: -EOPNOTSUPP (userfaultfd unavailable)");
		fprintf(stderr, "FAIL: pcache_mmap: %s\n",
			pcache_strerror(PCACHE_PTR_ERR(p)));
		exit(1);
	}
	return p;
}

static struct pcache_stats stats(struct pcache *pc)
{
	struct pcache_stats st;

	memset(&st, 0, sizeof(st));
	CHECK_EQ(pcache_stats(pc, &st), 0);
	return st;
}

/*
 * The fault handler bumps its counters after the ioctl that wakes the
 * faulting thread, so they may lag the touch that caused them.  Wait (at
 * most 2 s) until faults + fault_around reach @want, then let late
 * increments land.
 */
static struct pcache_stats stats_faults_reach(struct pcache *pc, uint64_t want)
{
	struct pcache_stats st = stats(pc);

	for (int i = 0; i < 100000 && st.view_faults + st.view_fault_around < want; i++) {
		sleep_us(20);
		st = stats(pc);
	}
	sleep_us(2000);
	return stats(pc);
}

static pthread_barrier_t barrier;

/* ------------------------------------------------------------------ */
/* (a) threads faulting on the same and on different pages            */
/* ------------------------------------------------------------------ */

#define FT_PAGES	64
#define FT_ROUNDS	6

enum ft_mode { FT_SAME, FT_DIFFERENT, FT_STORE };

struct ft_arg {
	int id, nthreads;
	enum ft_mode mode;
	char *view;
	const char *ref;
};

static void *ft_thread(void *arg)
{
	struct ft_arg *a = arg;

	for (int r = 0; r < FT_ROUNDS; r++) {
		pthread_barrier_wait(&barrier);	/* the main thread zapped the view */
		for (int i = 0; i < FT_PAGES; i++) {
			/* Odd threads walk backwards: faults meet from both ends. */
			int p = a->id & 1 ? FT_PAGES - 1 - i : i;
			const char *vp = a->view + p * PG;

			switch (a->mode) {
			case FT_SAME:
				if (memcmp(vp, a->ref + p * PG, PG))
					TFAIL("same pages: thread %d round %d page %d differs",
					      a->id, r, p);
				break;
			case FT_DIFFERENT:
				if (p % a->nthreads != a->id)
					break;
				if (memcmp(vp, a->ref + p * PG, PG))
					TFAIL("different pages: thread %d round %d page %d",
					      a->id, r, p);
				break;
			case FT_STORE:
				/* Every thread stores its own bytes of every page. */
				for (int b = a->id + r; b < PG; b += a->nthreads * 7)
					((volatile char *)a->view)[p * PG + b] =
						a->ref[p * PG + b];
				break;
			}
		}
		pthread_barrier_wait(&barrier);
	}
	return NULL;
}

static void run_fault_threads(struct pcache *pc, int nthreads, enum ft_mode mode)
{
	static const char *const names[] = { "same pages", "different pages",
					     "stores to shared pages" };
	int fd = open_file(pc, "ft");
	char *ref = pattern_buf(40 + (unsigned)nthreads, FT_PAGES * PG);
	char *got = malloc(FT_PAGES * PG);
	struct ft_arg args[8];
	pthread_t th[8];
	char *view;
	double t0;
	struct pcache_stats s0, s1;

	if (mode == FT_STORE) {
		/* A file of holes: stores hit MISSING faults, then WP faults. */
		CHECK_EQ(pcache_ftruncate(fd, 0), 0);
		CHECK_EQ(pcache_ftruncate(fd, FT_PAGES * PG), 0);
		view = map_ok(fd, FT_PAGES * PG, PROT_READ | PROT_WRITE, 0);
	} else {
		fill(fd, ref, FT_PAGES * PG);
		view = map_ok(fd, FT_PAGES * PG, PROT_READ, 0);
	}
	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1);
	for (int i = 0; i < nthreads; i++) {
		args[i] = (struct ft_arg){ i, nthreads, mode, view, ref };
		pthread_create(&th[i], NULL, ft_thread, &args[i]);
	}
	s0 = stats(pc);
	t0 = now();
	for (int r = 0; r < FT_ROUNDS; r++) {
		CHECK_EQ(pcache_madvise(view, FT_PAGES * PG, MADV_DONTNEED), 0);
		if (mode == FT_STORE && r)
			CHECK_EQ(pcache_fsync(fd), 0);	/* and protect: WP faults */
		pthread_barrier_wait(&barrier);
		pthread_barrier_wait(&barrier);
	}
	t0 = now() - t0;
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&barrier);
	s1 = stats(pc);

	if (mode == FT_STORE) {
		/* The stored bytes are the pattern's; all others are zero. */
		char *want = calloc(1, FT_PAGES * PG);

		for (int id = 0; id < nthreads; id++)
			for (int r = 0; r < FT_ROUNDS; r++)
				for (int p = 0; p < FT_PAGES; p++)
					for (int b = id + r; b < PG; b += nthreads * 7)
						want[p * PG + b] = ref[p * PG + b];
		CHECK_EQ(pcache_pread(fd, got, FT_PAGES * PG, 0), FT_PAGES * PG);
		CHECK(!memcmp(got, want, FT_PAGES * PG),
		      "%d threads storing: pread differs", nthreads);
		CHECK(!memcmp(view, want, FT_PAGES * PG),
		      "%d threads storing: view differs", nthreads);
		free(want);
	}
	printf("  %d threads, %-22s %d rounds x %d pages: %5llu faults %5llu around "
	       "%5llu wp, %.1f ms\n", nthreads, names[mode], FT_ROUNDS, FT_PAGES,
	       (unsigned long long)(s1.view_faults - s0.view_faults),
	       (unsigned long long)(s1.view_fault_around - s0.view_fault_around),
	       (unsigned long long)(s1.view_wp_faults - s0.view_wp_faults), t0 * 1e3);
	CHECK_EQ(pcache_munmap(view, FT_PAGES * PG), 0);
	CHECK_EQ(pcache_close(fd), 0);
	free(ref);
	free(got);
}

static void test_fault_threads(void)
{
	static const int counts[] = { 2, 4, 8 };
	struct pcache *pcs[2] = { new_cache(0, 0), new_cache(1, 4) };

	set_case("threads faulting on the same and different pages", 60);
	printf("faulting threads (fault-around 16, 2 handlers / fault-around 1, "
	       "4 handlers):\n");
	for (int c = 0; c < 2; c++)
		for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
			run_fault_threads(pcs[c], counts[i], FT_SAME);
			run_fault_threads(pcs[c], counts[i], FT_DIFFERENT);
			run_fault_threads(pcs[c], counts[i], FT_STORE);
		}
	CHECK_EQ(pcache_destroy(pcs[0]), 0);
	CHECK_EQ(pcache_destroy(pcs[1]), 0);
}

/* ------------------------------------------------------------------ */
/* (b) fault-around counts                                             */
/* ------------------------------------------------------------------ */

#define FA_PAGES	256

struct fa_arg {
	const char *view;
	int first, n;
};

static void *fa_thread(void *arg)
{
	struct fa_arg *a = arg;

	pthread_barrier_wait(&barrier);
	for (int p = a->first; p < a->first + a->n; p++)
		(void)((const volatile char *)a->view)[p * PG + 11];
	return NULL;
}

/*
 * Touch @npages pages of a fresh view (file offset @pgoff pages) once each,
 * sequentially, from @nthreads threads on disjoint 16-page-aligned blocks.
 * Checks faults + fault_around == npages; returns the faults.
 */
static uint64_t fault_around_run(unsigned int fa, int prot, int pgoff, int npages,
				 int nthreads, double *us_per_page)
{
	struct pcache *pc = new_cache(fa, 0);
	int fd = open_file(pc, "fa");
	char *ref = pattern_buf(50, FA_PAGES * PG);
	struct fa_arg args[4];
	pthread_t th[4];
	struct pcache_stats s0, s1;
	char *view;
	double t;

	fill(fd, ref, FA_PAGES * PG);		/* every page uptodate */
	CHECK_EQ(pcache_fsync(fd), 0);		/* and clean */
	view = map_ok(fd, (size_t)npages * PG, prot, (off_t)pgoff * PG);
	s0 = stats(pc);
	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1);
	for (int i = 0; i < nthreads; i++) {
		args[i].view = view;
		args[i].n = npages / nthreads;
		args[i].first = i * args[i].n;
		pthread_create(&th[i], NULL, fa_thread, &args[i]);
	}
	t = now();
	pthread_barrier_wait(&barrier);
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	t = now() - t;
	pthread_barrier_destroy(&barrier);
	s1 = stats_faults_reach(pc, s0.view_faults + s0.view_fault_around +
				(uint64_t)npages);
	s1.view_faults -= s0.view_faults;
	s1.view_fault_around -= s0.view_fault_around;
	CHECK_EQ(s1.view_faults + s1.view_fault_around, npages);
	if (fa == 1) {
		CHECK_EQ(s1.view_faults, npages);
		CHECK_EQ(s1.view_fault_around, 0);
	} else {
		/* About npages / fa: one more per unaligned edge. */
		CHECK(s1.view_faults <= (uint64_t)(npages / (int)fa + 2 * nthreads),
		      "%llu faults for %d pages with fault-around %u",
		      (unsigned long long)s1.view_faults, npages, fa);
	}
	CHECK(!memcmp(view, ref + (size_t)pgoff * PG, (size_t)npages * PG),
	      "fault-around view content");
	*us_per_page = t * 1e6 / npages;
	CHECK_EQ(pcache_munmap(view, (size_t)npages * PG), 0);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	free(ref);
	return s1.view_faults;
}

static void test_fault_around(void)
{
	static const struct {
		unsigned int fa;
		int prot, pgoff, npages, threads;
		const char *what;
	} runs[] = {
		{ 16, PROT_READ, 0, FA_PAGES, 1, "read-only view" },
		{ 1, PROT_READ, 0, FA_PAGES, 1, "read-only view" },
		{ 16, PROT_READ | PROT_WRITE, 0, FA_PAGES, 1, "writable view (WP)" },
		{ 1, PROT_READ | PROT_WRITE, 0, FA_PAGES, 1, "writable view (WP)" },
		{ 16, PROT_READ, 5, FA_PAGES - 5, 1, "view at file page 5" },
		{ 16, PROT_READ, 0, FA_PAGES, 4, "4 threads, own blocks" },
		{ 1, PROT_READ, 0, FA_PAGES, 4, "4 threads, own blocks" },
		{ 64, PROT_READ, 0, FA_PAGES, 1, "read-only view" },
	};

	set_case("fault-around counts", 60);
	printf("fault-around (a sequential first touch, 1 byte per page):\n");
	for (size_t i = 0; i < ARRAY_SIZE(runs); i++) {
		double us;
		uint64_t faults = fault_around_run(runs[i].fa, runs[i].prot,
						   runs[i].pgoff, runs[i].npages,
						   runs[i].threads, &us);

		printf("  fault_around_pages %2u, %-24s %3d pages: %3llu faults "
		       "(%.3f per page), %6.2f us per page\n", runs[i].fa,
		       runs[i].what, runs[i].npages, (unsigned long long)faults,
		       (double)faults / runs[i].npages, us);
	}
}

/* ------------------------------------------------------------------ */
/* (c) dirty tracking across writeback cycles                          */
/* ------------------------------------------------------------------ */

#define DT_PAGES	16
#define DT_THREADS	4
#define DT_CYCLES	41

static atomic_int dt_epoch;	/* writebacks completed */
static atomic_bool dt_stop;

struct dt_arg {
	int id;
	char *view;
	unsigned char *last;	/* the value this thread stored last, per byte */
	int first_epoch[DT_PAGES];	/* epoch read before the last store */
	int after_epoch[DT_PAGES];	/* epoch read after it, max over stores */
	bool stored_at_end[DT_PAGES];	/* a store began after the last writeback */
	long stores;
};

static void *dt_thread(void *arg)
{
	struct dt_arg *a = arg;
	unsigned int seed = 12345u + (unsigned)a->id;
	unsigned char v = 0;

	for (int p = 0; p < DT_PAGES; p++)
		a->after_epoch[p] = -1;
	pthread_barrier_wait(&barrier);
	while (!atomic_load(&dt_stop)) {
		int before = atomic_load(&dt_epoch), after;
		/*
		 * In epoch e, store only to the 4 pages of group e % 4, so at
		 * the end some pages must be dirty, some may be, and the rest
		 * must be clean.
		 */
		int p = (before % 4) * (DT_PAGES / 4) + (int)(rand_r(&seed) % (DT_PAGES / 4));
		/* This thread's bytes: offsets id, id + 4, id + 8, ... */
		int b = a->id + DT_THREADS * (int)(rand_r(&seed) % (PG / DT_THREADS));

		if (!++v)
			v = 1;
		((volatile unsigned char *)a->view)[p * PG + b] = v;
		after = atomic_load(&dt_epoch);
		a->last[p * PG + b] = v;
		a->first_epoch[p] = before;
		if (after > a->after_epoch[p])
			a->after_epoch[p] = after;
		a->stores++;
	}
	return NULL;
}

static void test_dirty_tracking(void)
{
	struct pcache *pc = new_cache(0, 0);
	int fd = open_file(pc, "dirty");
	unsigned char *want, *got;
	struct dt_arg args[DT_THREADS];
	pthread_t th[DT_THREADS];
	struct pcache_stats st;
	int must = 0, may = 0, final;
	long stores = 0;
	char *view;
	double t;

	set_case("dirty tracking across writeback cycles", 60);
	got = malloc(DT_PAGES * PG);
	want = calloc(1, DT_PAGES * PG);
	CHECK_EQ(pcache_ftruncate(fd, DT_PAGES * PG), 0);
	view = map_ok(fd, DT_PAGES * PG, PROT_READ | PROT_WRITE, 0);
	atomic_store(&dt_epoch, 0);
	atomic_store(&dt_stop, false);
	pthread_barrier_init(&barrier, NULL, DT_THREADS + 1);
	for (int i = 0; i < DT_THREADS; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].id = i;
		args[i].view = view;
		args[i].last = calloc(1, DT_PAGES * PG);
		pthread_create(&th[i], NULL, dt_thread, &args[i]);
	}
	t = now();
	pthread_barrier_wait(&barrier);
	for (int c = 0; c < DT_CYCLES; c++) {
		sleep_us(500);
		if (c % 2)
			CHECK_EQ(pcache_fsync(fd), 0);
		else
			CHECK_EQ(pcache_msync(view, DT_PAGES * PG, MS_SYNC), 0);
		atomic_fetch_add(&dt_epoch, 1);
	}
	sleep_us(500);		/* stores after the last writeback */
	atomic_store(&dt_stop, true);
	for (int i = 0; i < DT_THREADS; i++)
		pthread_join(th[i], NULL);
	t = now() - t;
	pthread_barrier_destroy(&barrier);

	/*
	 * Epoch e = writebacks completed.  A store that began at epoch
	 * DT_CYCLES came after the last writeback: its page must be dirty.  A
	 * page whose stores all ended before epoch DT_CYCLES - 1 was read was
	 * cleaned after them by the last writeback: it must be clean.
	 */
	for (int p = 0; p < DT_PAGES; p++) {
		bool m = false, y = false;

		for (int i = 0; i < DT_THREADS; i++) {
			if (args[i].after_epoch[p] < 0)
				continue;
			m |= args[i].first_epoch[p] == DT_CYCLES;
			y |= args[i].after_epoch[p] >= DT_CYCLES - 1;
		}
		must += m;
		may += y;
	}
	st = stats(pc);
	CHECK(st.pages_dirty >= (uint64_t)must && st.pages_dirty <= (uint64_t)may,
	      "pages_dirty %llu: want between %d (stored after the last "
	      "writeback) and %d", (unsigned long long)st.pages_dirty, must, may);
	final = (int)st.pages_dirty;

	/* No store lost: each byte is its owner's last value. */
	for (int i = 0; i < DT_THREADS; i++) {
		for (long o = i; o < DT_PAGES * PG; o += DT_THREADS)
			want[o] = args[i].last[o];
		stores += args[i].stores;
	}
	/*
	 * Nothing stores any more, so after writeback nothing is dirty -
	 * except that a stale write-protect fault message (several threads
	 * faulting on one page at once) may still be in a handler's hands and
	 * dirty a page again: a spurious writeback, never a lost store
	 * (docs/write-path.md).  Let the handlers drain, then write back.
	 */
	CHECK_EQ(pcache_fsync(fd), 0);
	usleep(50000);
	CHECK_EQ(pcache_fsync(fd), 0);
	st = stats(pc);
	CHECK_EQ(st.pages_dirty, 0);
	CHECK_EQ(pcache_pread(fd, got, DT_PAGES * PG, 0), DT_PAGES * PG);
	CHECK(!memcmp(got, want, DT_PAGES * PG), "a store was lost (pread)");
	CHECK(!memcmp(view, want, DT_PAGES * PG), "a store was lost (view)");
	printf("dirty tracking: %d threads, %ld stores, %d writebacks in %.0f ms, "
	       "%llu WP faults, %llu pages written back; at the end %d dirty "
	       "(must %d, may %d)\n", DT_THREADS, stores, DT_CYCLES, t * 1e3,
	       (unsigned long long)st.view_wp_faults,
	       (unsigned long long)st.writeback_pages, final, must, may);
	CHECK_EQ(pcache_munmap(view, DT_PAGES * PG), 0);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	for (int i = 0; i < DT_THREADS; i++)
		free(args[i].last);
	free(want);
	free(got);
}

/* ------------------------------------------------------------------ */
/* (d) munmap races                                                    */
/* ------------------------------------------------------------------ */

#define MR_PAGES	32
#define MR_THREADS	4
#define MR_ROUNDS	40

static char *_Atomic mr_view;
static atomic_uint mr_seq;		/* odd: mr_view is mapped */
static atomic_bool mr_stop;
static const char *mr_ref;

struct mr_arg {
	int id;
	unsigned int seed;	/* here, not a local: it lives across siglongjmp */
	long touches, late, checked;
};

/*
 * A touch that may race with the unmap by design: the view can be unmapped
 * (SIGSEGV) or its address reused by the next round's pcache_mmap() while
 * this reads it.  ThreadSanitizer rightly calls that a race with the
 * mapping, so this copy is not instrumented; the seq check decides whether
 * the bytes count.
 */
#if defined(__clang__) || __GNUC__ >= 8
__attribute__((no_sanitize("thread")))
#endif
static __attribute__((noinline)) void racy_read(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = ((const volatile char *)src)[i];
}

static void *mr_thread(void *arg)
{
	struct mr_arg *a = arg;
	sigjmp_buf env;

	/* One sigsetjmp: a caught SIGSEGV comes back here and goes on. */
	if (sigsetjmp(env, 1)) {
		catch_env = NULL;
		a->late++;
	}
	while (!atomic_load(&mr_stop)) {
		unsigned int s1 = atomic_load(&mr_seq), s2;
		char *v = atomic_load(&mr_view);
		char buf[64];
		int p;

		if (!(s1 & 1)) {
			sched_yield();
			continue;
		}
		p = (int)(rand_r(&a->seed) % MR_PAGES);
		catch_env = &env;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		racy_read(buf, v + p * PG + a->id * 64, sizeof(buf));
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		catch_env = NULL;
		a->touches++;
		/* Only a read the view was mapped all through is checked. */
		s2 = atomic_load(&mr_seq);
		if (s1 == s2) {
			a->checked++;
			if (memcmp(buf, mr_ref + p * PG + a->id * 64, sizeof(buf)))
				TFAIL("munmap race: thread %d read wrong bytes, page %d",
				      a->id, p);
		}
	}
	return NULL;
}

static void test_munmap_race(void)
{
	struct pcache *pc = new_cache(0, 0);
	int fd = open_file(pc, "munmap-race");
	char *ref = pattern_buf(60, MR_PAGES * PG);
	struct mr_arg args[MR_THREADS];
	pthread_t th[MR_THREADS];
	long touches = 0, late = 0, checked = 0;
	double t;

	set_case("munmap racing faulting threads", 60);
	fill(fd, ref, MR_PAGES * PG);
	mr_ref = ref;
	atomic_store(&mr_seq, 0);
	atomic_store(&mr_stop, false);
	for (int i = 0; i < MR_THREADS; i++) {
		args[i] = (struct mr_arg){ .id = i, .seed = 777u + (unsigned)i };
		pthread_create(&th[i], NULL, mr_thread, &args[i]);
	}
	t = now();
	for (int r = 0; r < MR_ROUNDS; r++) {
		char *v = map_ok(fd, MR_PAGES * PG,
				 r & 1 ? PROT_READ : PROT_READ | PROT_WRITE, 0);

		atomic_store(&mr_view, v);
		atomic_fetch_add(&mr_seq, 1);		/* mapped */
		sleep_us(300 + 50 * (r % 7));
		/* Zap, so the touchers are in faults when the view goes. */
		CHECK_EQ(pcache_madvise(v, MR_PAGES * PG, MADV_DONTNEED), 0);
		atomic_fetch_add(&mr_seq, 1);		/* going */
		CHECK_EQ(pcache_munmap(v, MR_PAGES * PG), 0);
		if (r % 4 == 3)
			sleep_us(200);	/* let late touches hit the hole */
	}
	atomic_store(&mr_stop, true);
	for (int i = 0; i < MR_THREADS; i++) {
		pthread_join(th[i], NULL);
		touches += args[i].touches;
		late += args[i].late;
		checked += args[i].checked;
	}
	t = now() - t;
	CHECK_EQ(stats(pc).views, 0);
	printf("munmap race: %d rounds, %d threads: %ld touches (%ld checked), "
	       "%ld late touches took SIGSEGV, %.0f ms\n", MR_ROUNDS, MR_THREADS,
	       touches, checked, late, t * 1e3);
	CHECK(checked > 0, "no touch was checked");
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	free(ref);
}

/* ------------------------------------------------------------------ */
/* (e) mlock                                                           */
/* ------------------------------------------------------------------ */

#define ML_PAGES	64
#define ML_THREADS	4

static atomic_bool ml_stop;

struct ml_arg {
	int id;
	char *view;
	const char *ref;
	long passes;
};

static void *ml_thread(void *arg)
{
	struct ml_arg *a = arg;
	unsigned int seed = 99u + (unsigned)a->id;

	pthread_barrier_wait(&barrier);
	while (!atomic_load(&ml_stop)) {
		int p = (int)(rand_r(&seed) % ML_PAGES);
		int n = 1 + (int)(rand_r(&seed) % 8);

		if (p + n > ML_PAGES)
			n = ML_PAGES - p;
		if (a->id == 0) {
			/* The storer: its bytes are offsets 0..63 of each page. */
			for (int i = 0; i < n; i++)
				((volatile char *)a->view)[(p + i) * PG + (a->passes & 63)] =
					a->ref[(p + i) * PG + (a->passes & 63)];
		} else {
			if (pcache_madvise(a->view + p * PG, (size_t)n * PG, MADV_DONTNEED))
				TFAIL("madvise");
			for (int i = 0; i < n; i++)
				if (memcmp(a->view + (p + i) * PG + 64,
					   a->ref + (p + i) * PG + 64, PG - 64))
					TFAIL("mlock race: page %d differs", p + i);
		}
		a->passes++;
	}
	return NULL;
}

static void test_mlock(void)
{
	struct pcache *pc = new_cache(1, 0);	/* one page per fault: countable */
	int fd = open_file(pc, "mlock");
	char *ref = pattern_buf(70, ML_PAGES * PG);
	struct ml_arg args[ML_THREADS];
	pthread_t th[ML_THREADS];
	struct pcache_stats s0, s1;
	long passes = 0;
	int mlocks = 0;
	char *view, *got;
	double t;

	set_case("mlock populates", 30);
	fill(fd, ref, ML_PAGES * PG);
	view = map_ok(fd, ML_PAGES * PG, PROT_READ | PROT_WRITE, 0);
	s0 = stats(pc);
	t = now();
	CHECK_EQ(pcache_mlock(view, ML_PAGES * PG), 0);
	t = now() - t;
	s1 = stats(pc);
	CHECK_EQ(s1.view_populated - s0.view_populated, ML_PAGES);
	for (int p = 0; p < ML_PAGES; p++)
		(void)((volatile char *)view)[p * PG + 100];
	sleep_us(2000);
	s0 = stats(pc);
	CHECK_EQ(s0.view_faults - s1.view_faults, 0);
	CHECK(!memcmp(view, ref, ML_PAGES * PG), "view after mlock");
	printf("mlock: %d pages populated in %.1f us (%.2f us per page); touching "
	       "them took %llu faults\n", ML_PAGES, t * 1e6, t * 1e6 / ML_PAGES,
	       (unsigned long long)(s0.view_faults - s1.view_faults));

	/* Holes: mlock makes them, zero-filled. */
	CHECK_EQ(pcache_ftruncate(fd, 16 * PG), 0);
	CHECK_EQ(pcache_ftruncate(fd, ML_PAGES * PG), 0);
	memset(ref + 16 * PG, 0, (ML_PAGES - 16) * PG);
	s0 = stats(pc);
	CHECK_EQ(pcache_mlock(view + 16 * PG, (ML_PAGES - 16) * PG), 0);
	s1 = stats(pc);
	CHECK_EQ(s1.view_populated - s0.view_populated, ML_PAGES - 16);
	CHECK_EQ(s1.pages_cached, ML_PAGES);
	for (int p = 16; p < ML_PAGES; p++)
		(void)((volatile char *)view)[p * PG];
	sleep_us(2000);
	CHECK_EQ(stats(pc).view_faults, s1.view_faults);
	CHECK(!memcmp(view, ref, ML_PAGES * PG), "view after mlock of holes");
	pattern_fill(ref, ML_PAGES * PG, 70, 0);
	fill(fd, ref, ML_PAGES * PG);

	/* mlock against faulting, zapping and storing threads. */
	set_case("mlock concurrent with faulting threads", 60);
	atomic_store(&ml_stop, false);
	pthread_barrier_init(&barrier, NULL, ML_THREADS + 1);
	for (int i = 0; i < ML_THREADS; i++) {
		args[i] = (struct ml_arg){ .id = i, .view = view, .ref = ref };
		pthread_create(&th[i], NULL, ml_thread, &args[i]);
	}
	pthread_barrier_wait(&barrier);
	t = now();
	while (now() - t < 0.4 || mlocks < 20) {
		int p = mlocks % 3 ? mlocks % ML_PAGES : 0;
		size_t n = mlocks % 3 ? (size_t)(ML_PAGES - p) : ML_PAGES;

		CHECK_EQ(pcache_mlock(view + p * PG, n * PG), 0);
		if (mlocks % 5 == 0)
			CHECK_EQ(pcache_fsync(fd), 0);	/* WP faults for the storer */
		mlocks++;
	}
	atomic_store(&ml_stop, true);
	for (int i = 0; i < ML_THREADS; i++) {
		pthread_join(th[i], NULL);
		passes += args[i].passes;
	}
	pthread_barrier_destroy(&barrier);
	got = malloc(ML_PAGES * PG);
	CHECK_EQ(pcache_pread(fd, got, ML_PAGES * PG, 0), ML_PAGES * PG);
	CHECK(!memcmp(got, ref, ML_PAGES * PG), "content after the mlock race");
	/* Populated once more, nothing faults. */
	CHECK_EQ(pcache_mlock(view, ML_PAGES * PG), 0);
	sleep_us(2000);
	s0 = stats(pc);
	CHECK(!memcmp(view, ref, ML_PAGES * PG), "view after the mlock race");
	sleep_us(2000);
	CHECK_EQ(stats(pc).view_faults, s0.view_faults);
	printf("mlock race: %d mlocks against %d threads (%ld passes) in %.0f ms, "
	       "%llu faults, %llu pages populated\n", mlocks, ML_THREADS, passes,
	       (now() - t) * 1e3, (unsigned long long)s0.view_faults,
	       (unsigned long long)s0.view_populated);
	free(got);
	CHECK_EQ(pcache_munmap(view, ML_PAGES * PG), 0);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	free(ref);
}

/* ------------------------------------------------------------------ */

static void probe(void)
{
	struct pcache *pc = new_cache(0, 0);
	int fd = open_file(pc, "probe");
	void *v = pcache_mmap(fd, PG, PROT_READ, 0);

	if (PCACHE_IS_ERR(v)) {
		if (PCACHE_PTR_ERR(v) == -EOPNOTSUPP)
			TEST_SKIP("pcache_mmap: -EOPNOTSUPP (userfaultfd unavailable)");
		fprintf(stderr, "FAIL: pcache_mmap probe: %s\n",
			pcache_strerror(PCACHE_PTR_ERR(v)));
		exit(1);
	}
	pcache_munmap(v, PG);
	pcache_close(fd);
	pcache_destroy(pc);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} parts[] = {
		{ "faulting threads", test_fault_threads },
		{ "fault-around", test_fault_around },
		{ "dirty tracking", test_dirty_tracking },
		{ "munmap race", test_munmap_race },
		{ "mlock", test_mlock },
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	watchdog_start();
	catch_install();	/* before pcache_create: the library chains to us */
	probe();
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		double t = now();
		int f = test_failures + atomic_load(&thread_failures);

		parts[i].fn();
		printf("%-16s %s  %.3f s\n", parts[i].name,
		       test_failures + atomic_load(&thread_failures) == f ? "ok  " : "FAIL",
		       now() - t);
	}
	alarm(0);
	test_failures += atomic_load(&thread_failures);
	return test_exit();
}
