/*
 * torture.c - `pcache torture`: the seed's deadlocks and corruption, for real.
 *
 * The 2007 RFC names three deadlocks and one corruption of a buffered write
 * whose source buffer is a mapping of the cache (BRIEF §1).  This command
 * provokes each of them with real views (userfaultfd faults served by the
 * cache's handler threads) and real threads, under every write strategy,
 * and says what happened.  One (strategy, scenario) pair is a "cell":
 *
 *   same-page                write a page from a zapped view of that page
 *                            (whole page, across a page boundary, pwritev)
 *   abba-pages               two threads: file A's page from a view of B's,
 *                            and B's from a view of A's
 *   abba-mmap-lock           write P from a zapped view page while another
 *                            thread runs pcache_mlock (mm lock for write,
 *                            then P's page lock) over P
 *   efault-zeroes            a write over uptodate data whose source faults
 *                            part way (PROT_NONE, unmapped, a view page
 *                            past EOF): no zeroes, i_size matches
 *   short-copy-not-uptodate  a full-page write into an uncached page of the
 *                            "synthetic" backend, source faulting part way:
 *                            the page is never made uptodate with garbage
 *   forward-progress         a thread zaps the source view page in a tight
 *                            loop while the write retries (generic/729)
 *   truncate-race            truncate, pwrite and mapped reads at once
 *
 * Each cell runs in a child process (fork).  The child bumps a progress
 * counter in shared memory after every step; the parent watches it, and a
 * child that makes no progress for --timeout-ms is deadlocked: the parent
 * kills it (SIGKILL).  So "deadlock" means stuck, not slow.  The child's
 * exit says the rest: 0 ok, CHILD_CORRUPT (it saw wrong bytes or sizes,
 * and said what on stderr and in the shared detail), CHILD_ERROR (setup
 * failed), anything else (a signal, a sanitizer's exit code) is a crash.
 *
 * The lock validator's report count (pcache_stats.lockdep_reports, process
 * wide) is sampled by a child thread every few milliseconds through a
 * second cache that has no views, so the sampling never waits for the mm
 * lock that a deadlocked cell may be holding; the parent reads the last
 * sample even from a child it had to kill.
 *
 * The tool knows the expected matrix (expected_outcome()): naive deadlocks
 * in the first three scenarios and corrupts in the next two; every other
 * strategy is ok everywhere.  The exit status is 0 iff every cell has its
 * expected outcome (and, with --lockdep, the validator flagged naive in
 * the first three scenarios and nothing else).
 *
 * Only include/pcache.h is used: this is a client of the library.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "commands.h"

#define PG			4096
#define TORTURE_DEFAULT_ITERATIONS	1000ull
#define TORTURE_DEFAULT_TIMEOUT_MS	3000u
#define TORTURE_FAULT_THREADS	2
#define TORTURE_SAMPLE_MS	5	/* lockdep sampling period in the child */
#define TORTURE_POLL_MS		2	/* the parent's watchdog period */
#define TORTURE_CELL_LIMIT_MS	600000	/* even a progressing cell stops here */

/* Child exit statuses (anything else is a crash). */
#define CHILD_OK		0
#define CHILD_CORRUPT		3
#define CHILD_ERROR		4

#define DETAIL_LEN		512
#define WHERE_LEN		128

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

enum scenario {
	SCN_SAME_PAGE,
	SCN_ABBA_PAGES,
	SCN_ABBA_MMAP_LOCK,
	SCN_EFAULT_ZEROES,
	SCN_SHORT_COPY,
	SCN_FORWARD_PROGRESS,
	SCN_TRUNCATE_RACE,
	SCN_NR
};

static const char *const scenario_names[SCN_NR] = {
	[SCN_SAME_PAGE]		= "same-page",
	[SCN_ABBA_PAGES]	= "abba-pages",
	[SCN_ABBA_MMAP_LOCK]	= "abba-mmap-lock",
	[SCN_EFAULT_ZEROES]	= "efault-zeroes",
	[SCN_SHORT_COPY]	= "short-copy-not-uptodate",
	[SCN_FORWARD_PROGRESS]	= "forward-progress",
	[SCN_TRUNCATE_RACE]	= "truncate-race",
};

enum outcome { OUT_OK, OUT_DEADLOCK, OUT_CORRUPT, OUT_CRASH, OUT_ERROR, OUT_NR };

static const char *const outcome_names[OUT_NR] = {
	[OUT_OK]	= "ok",
	[OUT_DEADLOCK]	= "deadlock",
	[OUT_CORRUPT]	= "corrupt",
	[OUT_CRASH]	= "crash",
	[OUT_ERROR]	= "error",
};

/*
 * The matrix the seed predicts: 2.6.20's copy under the page lock deadlocks
 * on a view of the cache (1-3) and publishes the zeroes of a faulting copy
 * (4, 5); its other hazards do not apply to 6 and 7.  The fixes are ok.
 */
static enum outcome expected_outcome(int strategy, int scn)
{
	if (strategy != PCACHE_WRITE_NAIVE)
		return OUT_OK;
	switch (scn) {
	case SCN_SAME_PAGE:
	case SCN_ABBA_PAGES:
	case SCN_ABBA_MMAP_LOCK:
		return OUT_DEADLOCK;
	case SCN_EFAULT_ZEROES:
	case SCN_SHORT_COPY:
		return OUT_CORRUPT;
	default:
		return OUT_OK;
	}
}

/*
 * With --lockdep: naive takes a page lock before the mm lock in 1-3 and
 * must be flagged; the other strategies must be silent everywhere.  Naive
 * in 4-7 copies under a page lock too, from memory that may or may not be
 * a view: whether the validator flags that depends on its annotations, so
 * it is not checked.  Returns -1 "not checked", 0 "must be 0", 1 "> 0".
 */
static int expected_lockdep(int strategy, int scn)
{
	if (strategy != PCACHE_WRITE_NAIVE)
		return 0;
	return scn <= SCN_ABBA_MMAP_LOCK ? 1 : -1;
}

/* Shared between the parent and one child, MAP_SHARED | MAP_ANONYMOUS. */
struct cell_shm {
	_Atomic uint64_t progress;	/* bumped by the child after each step */
	_Atomic uint64_t iterations;	/* completed iterations */
	_Atomic uint64_t lockdep_reports;	/* the last sample */
	char where[WHERE_LEN];		/* the step the child is in */
	char detail[DETAIL_LEN];	/* the child's summary or complaint */
};

struct torture_opts {
	bool strategies[PCACHE_WRITE_NR];
	bool scenarios[SCN_NR];
	uint64_t iterations;
	unsigned int timeout_ms;
	uint64_t seed;
	bool json;
	bool lockdep;
	bool hold;	/* leave a deadlocked child for a debugger */
};

struct result {
	int strategy, scenario;
	enum outcome outcome, expected;
	uint64_t iterations;
	double ms;
	uint64_t lockdep_reports;
	bool unexpected;	/* outcome != expected, or lockdep off (--lockdep) */
	char detail[DETAIL_LEN + 192];
};

static struct torture_opts opts;

/* ---- small helpers (both sides) ------------------------------------------ */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static uint64_t below(uint64_t *rng, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)splitmix64(rng) * n) >> 64);
}

/* The byte pattern @tag puts at offset @off: never zero. */
static inline unsigned char tbyte(unsigned int tag, uint64_t off)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull + tag * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 29;
	return (unsigned char)(x | 1);
}

static void put_str(const char *s)
{
	ssize_t r = write(STDERR_FILENO, s, strlen(s));

	(void)r;
}

/* ---- the child: reporting ------------------------------------------------ */

static struct cell_shm *shm;		/* the child's cell */
static int cell_strategy, cell_scenario;
static uint64_t cell_iterations;
static uint64_t cell_seed;
static struct pcache *sampler_pc;	/* no views: its stats never wait */
static pthread_t sampler_thread;
static atomic_int sampler_stop;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

static void progress(void)
{
	atomic_fetch_add_explicit(&shm->progress, 1, memory_order_relaxed);
}

static void iteration_done(void)
{
	atomic_fetch_add_explicit(&shm->iterations, 1, memory_order_relaxed);
	progress();
}

/* What the child is about to do, for the parent's "deadlock" detail. */
static void where(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(shm->where, WHERE_LEN, fmt, ap);
	va_end(ap);
}

/* The summary of a cell that went well (appended to, '; ' separated). */
static void note(const char *fmt, ...)
{
	size_t n = strlen(shm->detail);
	va_list ap;

	if (n && n < DETAIL_LEN - 2) {
		memcpy(shm->detail + n, "; ", 2);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(shm->detail + n, DETAIL_LEN - n, fmt, ap);
	va_end(ap);
}

static void sample_lockdep(void)
{
	struct pcache_stats st;

	if (sampler_pc && !pcache_stats(sampler_pc, &st))
		atomic_store(&shm->lockdep_reports, st.lockdep_reports);
}

/*
 * End the cell with @code (CHILD_CORRUPT or CHILD_ERROR): say what was
 * seen on stderr and in the detail.  The first thread to get here wins;
 * _exit() takes every other thread with it, stuck or not.
 */
static _Noreturn void cell_fail(int code, const char *fmt, ...)
{
	char msg[DETAIL_LEN];
	va_list ap;

	pthread_mutex_lock(&report_lock);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(shm->detail, DETAIL_LEN, "%s", msg);
	fprintf(stderr, "pcache torture: %s/%s: %s after %" PRIu64 " iterations: %s\n",
		pcache_strategy_name(cell_strategy), scenario_names[cell_scenario],
		code == CHILD_CORRUPT ? "CORRUPT" : "ERROR",
		atomic_load(&shm->iterations), msg);
	fflush(stderr);
	sample_lockdep();
	_exit(code);
}

#define corrupt(...)	cell_fail(CHILD_CORRUPT, __VA_ARGS__)
#define setup_error(...)	cell_fail(CHILD_ERROR, __VA_ARGS__)

static const char *err_str(long long v)
{
	static __thread char buf[64];

	if (v < 0)
		snprintf(buf, sizeof(buf), "%lld (%s)", v, pcache_strerror((int)v));
	else
		snprintf(buf, sizeof(buf), "%lld", v);
	return buf;
}

/*
 * Compare @len bytes read back at file offset @off with what they should
 * be; on a difference, end the cell as corrupt, saying where, what, and
 * how many bytes differ and how many of them are zero (the seed's zeroes).
 */
static void expect_bytes(const unsigned char *got, const unsigned char *want,
			 size_t len, uint64_t off, const char *what)
{
	size_t i, first = len, ndiff = 0, nzero = 0;

	if (!memcmp(got, want, len))
		return;
	for (i = 0; i < len; i++) {
		if (got[i] == want[i])
			continue;
		if (first == len)
			first = i;
		ndiff++;
		nzero += !got[i];
	}
	corrupt("%s: file offset %" PRIu64 " (page %" PRIu64 " +%" PRIu64 ") reads 0x%02x,"
		" want 0x%02x; %zu of %zu bytes differ, %zu of them zero",
		what, off + first, (off + first) / PG, (off + first) % PG,
		got[first], want[first], ndiff, len, nzero);
}

/* ---- the child: guarded touches of views -------------------------------- */

/*
 * SIGSEGV/SIGBUS in the test's own touches of views (a page past EOF gets
 * SIGBUS).  Installed before pcache_create(): the library's fault guard
 * keeps the faults inside its copies and passes the others on to this.
 */
static __thread sigjmp_buf *volatile catch_env;
static __thread volatile sig_atomic_t caught_sig;
static __thread const char *thread_role = "main";	/* for diagnostics */

static void catch_handler(int sig, siginfo_t *si, void *uc)
{
	char msg[200];

	if (catch_env) {
		caught_sig = sig;
		siglongjmp(*catch_env, 1);
	}
	/* A dying process: snprintf is safe enough here. */
	snprintf(msg, sizeof(msg), "%s (si_code %d, address %p) in the %s thread,"
		 " outside any guarded touch", sig == SIGBUS ? "SIGBUS" : "SIGSEGV",
		 si->si_code, si->si_addr, thread_role);
	if (shm)
		snprintf(shm->detail, DETAIL_LEN, "%s", msg);
	put_str("pcache torture: ");
	put_str(msg);
	put_str("\n");
	signal(sig, SIG_DFL);
	if (si->si_code <= 0)
		raise(sig);
	/* A real fault: returning re-runs the access, which now kills us. */
}

static void catch_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = catch_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
		setup_error("sigaction: %s", strerror(errno));
}

/*
 * Copy @len bytes of a view into @dst, a byte at a time.  Returns 0, or
 * the signal that stopped it (*@done bytes were copied).  The mask is
 * saved (sigsetjmp(.., 1)): under ThreadSanitizer a handler runs with all
 * signals blocked, and jumping out must not leave them so.
 */
static int touch_copy(unsigned char *dst, const unsigned char *src, size_t len,
		      size_t *done)
{
	sigjmp_buf env;
	volatile size_t i = 0;

	if (sigsetjmp(env, 1)) {
		catch_env = NULL;
		*done = i;
		return caught_sig;
	}
	catch_env = &env;
	for (; i < len; i++)
		dst[i] = ((const volatile unsigned char *)src)[i];
	catch_env = NULL;
	*done = len;
	return 0;
}

/* ---- the child: cache set-up --------------------------------------------- */

static struct pcache *cell_cache(const char *backend, int strategy)
{
	struct pcache_config cfg;
	struct pcache *pc = NULL;
	int rc;

	pcache_config_init(&cfg);
	cfg.write_strategy = strategy;
	cfg.backend = backend;
	cfg.fault_around_pages = 1;	/* exactly the zapped pages are missing */
	cfg.fault_threads = TORTURE_FAULT_THREADS;
	rc = pcache_create(&cfg, &pc);
	if (rc)
		setup_error("pcache_create(%s, %s): %s", backend ? backend : "memory",
			    pcache_strategy_name(strategy), pcache_strerror(rc));
	return pc;
}

static void cache_destroy(struct pcache *pc)
{
	int rc = pcache_destroy(pc);

	if (rc)
		setup_error("pcache_destroy: %s", pcache_strerror(rc));
}

static int open_file(struct pcache *pc, const char *name, int flags)
{
	int fd = pcache_open(pc, name, flags, 0644);

	if (fd < 0)
		setup_error("pcache_open(%s): %s", name, pcache_strerror(fd));
	return fd;
}

static void close_file(int fd)
{
	int rc = pcache_close(fd);

	if (rc)
		setup_error("pcache_close: %s", pcache_strerror(rc));
}

static unsigned char *map_view(int fd, size_t len, int prot, off_t off)
{
	void *p = pcache_mmap(fd, len, prot, off);

	if (PCACHE_IS_ERR(p))
		setup_error("pcache_mmap: %s%s", pcache_strerror(PCACHE_PTR_ERR(p)),
			    PCACHE_PTR_ERR(p) == -EOPNOTSUPP ?
			    " (userfaultfd unavailable)" : "");
	return p;
}

static void unmap_view(void *p, size_t len)
{
	int rc = pcache_munmap(p, len);

	if (rc)
		setup_error("pcache_munmap: %s", pcache_strerror(rc));
}

/* Make view pages not present, so the next touch faults. */
static void zap(void *addr, size_t len)
{
	int rc = pcache_madvise(addr, len, MADV_DONTNEED);

	if (rc)
		setup_error("pcache_madvise(DONTNEED): %s", pcache_strerror(rc));
}

static void must_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t r = pcache_pwrite(fd, buf, len, off);

	if (r != (ssize_t)len)
		setup_error("pcache_pwrite(%zu at %lld) from plain memory: %s",
			    len, (long long)off, err_str(r));
}

/* pread exactly @len bytes at @off (the file must hold them). */
static void must_pread(int fd, void *buf, size_t len, off_t off, const char *what)
{
	ssize_t r = pcache_pread(fd, buf, len, off);

	if (r != (ssize_t)len)
		corrupt("%s: pread(%zu at %lld) returned %s", what, len,
			(long long)off, err_str(r));
}

static void expect_size(int fd, uint64_t want, const char *what)
{
	struct stat st;
	int rc = pcache_fstat(fd, &st);

	if (rc)
		setup_error("pcache_fstat: %s", pcache_strerror(rc));
	if ((uint64_t)st.st_size != want)
		corrupt("%s: i_size is %lld, want %" PRIu64, what,
			(long long)st.st_size, want);
}

static unsigned char *xmalloc(size_t n)
{
	unsigned char *p = malloc(n);

	if (!p)
		setup_error("out of memory (%zu bytes)", n);
	return p;
}

/* Anonymous memory: @rw readable pages, then one PROT_NONE page. */
static unsigned char *map_faulting(size_t rw)
{
	unsigned char *p = mmap(NULL, (rw + 1) * PG, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		setup_error("mmap: %s", strerror(errno));
	if (mprotect(p + rw * PG, PG, PROT_NONE))
		setup_error("mprotect: %s", strerror(errno));
	return p;
}

/* The strategy's counters, for the summary. */
static void note_stats(struct pcache *pc)
{
	struct pcache_stats st;
	const struct pcache_strategy_stats *s;

	if (pcache_stats(pc, &st))
		return;
	s = &st.strategy[cell_strategy];
	note("writes %" PRIu64 ", short copies %" PRIu64 ", retries %" PRIu64
	     ", fallbacks %" PRIu64 ", view faults %" PRIu64 ", refused %" PRIu64,
	     s->writes, s->short_copies, s->retries, s->fallbacks,
	     st.view_faults, st.view_refused);
}

/* ---- 1. same-page --------------------------------------------------------- */

#define SP_PAGES	8

/*
 * The seed's deadlock 1 (2,8): the writer locks page P and copies from a
 * view of P that is not present; serving that fault needs P's lock.  Three
 * shapes: the whole page, 4096 bytes from P+100 (two pages, two faults),
 * and a pwritev of uneven segments (one empty) over two pages.  Source and
 * destination are the same bytes, so the file must not change at all.
 */
static void scn_same_page(void)
{
	struct pcache *pc = cell_cache(NULL, cell_strategy);
	int fd = open_file(pc, "same-page", O_RDWR | O_CREAT);
	unsigned char *ref = xmalloc(SP_PAGES * PG), *got = xmalloc(SP_PAGES * PG);
	unsigned char *view;
	uint64_t i;

	for (i = 0; i < SP_PAGES * PG; i++)
		ref[i] = tbyte(1, i);
	must_pwrite(fd, ref, SP_PAGES * PG, 0);
	view = map_view(fd, SP_PAGES * PG, PROT_READ, 0);

	for (i = 0; i < cell_iterations; i++) {
		unsigned int shape = i % 3, p;
		ssize_t r, want;
		uint64_t off;

		switch (shape) {
		case 0:
			p = (unsigned int)(i / 3 % SP_PAGES);
			off = (uint64_t)p * PG;
			want = PG;
			zap(view + off, PG);
			where("pwrite page %u from its own zapped view page", p);
			r = pcache_pwrite(fd, view + off, PG, (off_t)off);
			break;
		case 1:
			p = (unsigned int)(i / 3 % (SP_PAGES - 1));
			off = (uint64_t)p * PG + 100;
			want = PG;
			zap(view + (uint64_t)p * PG, 2 * PG);
			where("pwrite 4096 bytes at page %u +100 from the same zapped view bytes", p);
			r = pcache_pwrite(fd, view + off, PG, (off_t)off);
			break;
		default: {
			/* Uneven segments, one empty; 8092 bytes over pages p, p+1. */
			static const size_t seg[] = { 1, 0, 4000, 3000, 1091 };
			struct iovec iov[ARRAY_SIZE(seg)];
			size_t k, at = 0;

			p = (unsigned int)(i / 3 % (SP_PAGES - 1));
			off = (uint64_t)p * PG + 50;
			for (k = 0; k < ARRAY_SIZE(seg); k++) {
				iov[k].iov_base = view + off + at;
				iov[k].iov_len = seg[k];
				at += seg[k];
			}
			want = (ssize_t)at;
			zap(view + (uint64_t)p * PG, 2 * PG);
			where("pwritev %zu segments at page %u +50 from the same zapped view bytes",
			      ARRAY_SIZE(seg), p);
			r = pcache_pwritev(fd, iov, (int)ARRAY_SIZE(seg), (off_t)off);
			break;
		}
		}
		progress();
		if (r != want)
			corrupt("write of %zd bytes at %" PRIu64 " from a view of the same"
				" bytes returned %s", want, off, err_str(r));
		must_pread(fd, got, SP_PAGES * PG, 0, "same-page");
		expect_bytes(got, ref, SP_PAGES * PG, 0,
			     "after writing bytes onto themselves from a view");
		expect_size(fd, SP_PAGES * PG, "same-page");
		iteration_done();
	}
	note_stats(pc);
	unmap_view(view, SP_PAGES * PG);
	close_file(fd);
	cache_destroy(pc);
	free(ref);
	free(got);
}

/* ---- 2. abba-pages -------------------------------------------------------- */

#define AB_PAGES	4

/*
 * The seed's deadlock 2 (2,8;2,8): thread 0 writes file A's page from a
 * view of file B's, thread 1 writes B's from a view of A's (two files: a
 * writer holds its inode's i_rwsem, so two writers of one file never run
 * at once).  A holds tag 1 and B tag 2, both indexed by the offset within
 * the page; since every copy keeps in-page offsets, each byte of either
 * file is always one of the two patterns at its offset, and never zero.
 */
struct abba {
	pthread_barrier_t start, end;
	int fd[2];
	unsigned char *view[2];
	unsigned int page;	/* this round: pages page, page + 1 */
	size_t off, len;	/* within the file, from page * PG */
	bool stop;
};

struct abba_thread {
	struct abba *ab;
	int id;
};

static void *abba_thread_main(void *arg)
{
	struct abba_thread *t = arg;
	struct abba *ab = t->ab;
	int me = t->id, other = !t->id;

	thread_role = me ? "writer of B" : "writer of A";
	for (;;) {
		off_t pos;
		ssize_t r;

		pthread_barrier_wait(&ab->start);
		if (ab->stop)
			break;
		pos = (off_t)ab->page * PG + (off_t)ab->off;
		r = pcache_pwrite(ab->fd[me], ab->view[other] + pos, ab->len, pos);
		if (r != (ssize_t)ab->len)
			corrupt("thread %d: write of %zu bytes at %lld of file %c from a view"
				" of file %c returned %s", me, ab->len, (long long)pos,
				'A' + me, 'A' + other, err_str(r));
		progress();
		pthread_barrier_wait(&ab->end);
	}
	return NULL;
}

static void abba_check(int fd, const unsigned char *a, const unsigned char *b,
		       unsigned char *got, char name)
{
	size_t i;

	must_pread(fd, got, AB_PAGES * PG, 0, "abba-pages");
	for (i = 0; i < AB_PAGES * PG; i++) {
		unsigned char x = a[i % PG], y = b[i % PG];

		if (got[i] != x && got[i] != y)
			corrupt("file %c offset %zu (page %zu +%zu) reads 0x%02x, want one of"
				" 0x%02x (A's pattern) or 0x%02x (B's)", name, i, i / PG,
				i % PG, got[i], x, y);
	}
}

static void scn_abba_pages(void)
{
	struct pcache *pc = cell_cache(NULL, cell_strategy);
	unsigned char *pat[2], *buf, *got;
	struct abba_thread th[2];
	pthread_t tid[2];
	struct abba ab;
	uint64_t i, rng = cell_seed;
	int k;

	memset(&ab, 0, sizeof(ab));
	buf = xmalloc(AB_PAGES * PG);
	got = xmalloc(AB_PAGES * PG);
	for (k = 0; k < 2; k++) {
		pat[k] = xmalloc(PG);
		for (i = 0; i < PG; i++)
			pat[k][i] = tbyte(1 + (unsigned int)k, i);
		for (i = 0; i < AB_PAGES * PG; i++)
			buf[i] = pat[k][i % PG];
		ab.fd[k] = open_file(pc, k ? "abba-B" : "abba-A", O_RDWR | O_CREAT);
		must_pwrite(ab.fd[k], buf, AB_PAGES * PG, 0);
		ab.view[k] = map_view(ab.fd[k], AB_PAGES * PG, PROT_READ, 0);
	}
	pthread_barrier_init(&ab.start, NULL, 3);
	pthread_barrier_init(&ab.end, NULL, 3);
	for (k = 0; k < 2; k++) {
		th[k] = (struct abba_thread){ &ab, k };
		if (pthread_create(&tid[k], NULL, abba_thread_main, &th[k]))
			setup_error("pthread_create failed");
	}

	for (i = 0; i < cell_iterations; i++) {
		ab.page = (unsigned int)(i % (AB_PAGES - 1));
		switch (i % 4) {
		case 0: case 1:
			ab.off = 0;
			ab.len = PG;
			break;
		case 2:	/* across the page boundary */
			ab.off = 1 + below(&rng, PG - 1);
			ab.len = PG;
			break;
		default:	/* part of one page */
			ab.off = below(&rng, PG - 1);
			ab.len = 1 + below(&rng, PG - ab.off);
			break;
		}
		for (k = 0; k < 2; k++)
			zap(ab.view[k] + (size_t)ab.page * PG, 2 * PG);
		where("two threads write A's page %u from B's view and B's from A's"
		      " (+%zu, %zu bytes)", ab.page, ab.off, ab.len);
		pthread_barrier_wait(&ab.start);
		pthread_barrier_wait(&ab.end);
		abba_check(ab.fd[0], pat[0], pat[1], got, 'A');
		abba_check(ab.fd[1], pat[0], pat[1], got, 'B');
		iteration_done();
	}
	ab.stop = true;
	pthread_barrier_wait(&ab.start);
	for (k = 0; k < 2; k++)
		pthread_join(tid[k], NULL);
	note_stats(pc);
	for (k = 0; k < 2; k++) {
		unmap_view(ab.view[k], AB_PAGES * PG);
		close_file(ab.fd[k]);
		free(pat[k]);
	}
	pthread_barrier_destroy(&ab.start);
	pthread_barrier_destroy(&ab.end);
	cache_destroy(pc);
	free(buf);
	free(got);
}

/* ---- 3. abba-mmap-lock ---------------------------------------------------- */

#define AM_MLOCK_PAGES	16	/* populated in a loop; P is 0 or 1 */
#define AM_SRC_PAGES	3	/* the source: the 3 pages after them */
#define AM_PAGES	(AM_MLOCK_PAGES + AM_SRC_PAGES)

/*
 * The seed's deadlock 3 (2,6;c,g): the writer locks page P and copies from
 * a zapped view page Q past the populated range, so the copy faults and
 * the handler wants the mm lock for read; meanwhile another thread runs
 * pcache_mlock over pages 0-15 in a loop, which holds the mm lock for
 * write and wants P's lock.  The writer escapes if the handler gets the mm
 * lock before the populating thread is back for it (likelier when threads
 * are preempted on a busy machine), so each write gives the deadlock
 * several chances: each destination page is copied from half of one
 * zapped source page and half of the next, two faults per page lock held.
 * Populating 16 pages keeps the mm lock held long (the writer's faults
 * wait for gaps in it: on a loaded machine the fixed strategies' cells
 * slow down, from ~0.25 s to several seconds).  The file holds one
 * 64-byte pattern over and over, and the source is shifted by a multiple
 * of 64 bytes, so the file must not change.
 */
struct mlocker {
	unsigned char *view;
	atomic_int stop;
	_Atomic uint64_t calls;
};

static void *mlocker_main(void *arg)
{
	struct mlocker *m = arg;

	thread_role = "mlock";
	while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
		int rc = pcache_mlock(m->view, AM_MLOCK_PAGES * PG);

		if (rc)
			setup_error("pcache_mlock: %s", pcache_strerror(rc));
		atomic_fetch_add_explicit(&m->calls, 1, memory_order_relaxed);
	}
	return NULL;
}

static void scn_abba_mmap_lock(void)
{
	struct pcache *pc = cell_cache(NULL, cell_strategy);
	int fd = open_file(pc, "abba-mmap-lock", O_RDWR | O_CREAT);
	unsigned char *ref = xmalloc(AM_PAGES * PG), *got = xmalloc(AM_PAGES * PG);
	struct mlocker m;
	pthread_t tid;
	uint64_t i, rng = cell_seed;

	for (i = 0; i < AM_PAGES * PG; i++)
		ref[i] = tbyte(3, i % 64);
	must_pwrite(fd, ref, AM_PAGES * PG, 0);
	memset(&m, 0, sizeof(m));
	m.view = map_view(fd, AM_PAGES * PG, PROT_READ, 0);
	if (pthread_create(&tid, NULL, mlocker_main, &m))
		setup_error("pthread_create failed");

	for (i = 0; i < cell_iterations; i++) {
		size_t shift, pos, len;
		uint64_t calls;
		ssize_t r;

		switch (i % 3) {
		case 0:	pos = 0; len = 2 * PG; break;		/* pages 0, 1 */
		case 1:	pos = PG; len = PG; break;		/* page 1 */
		default: pos = below(&rng, PG); len = PG; break;	/* across 0-1 */
		}
		/* Source: half a page off the destination's page offset. */
		shift = (pos + PG / 2) % PG;
		/* Be sure the populating thread runs now, not just scheduled. */
		where("waiting for the mlock thread");
		calls = atomic_load(&m.calls);
		while (atomic_load(&m.calls) < calls + 1)
			sched_yield();
		zap(m.view + AM_MLOCK_PAGES * PG, AM_SRC_PAGES * PG);
		where("pwrite %zu bytes at %zu from zapped view pages %d.. (+%zu) while a"
		      " thread mlocks pages 0-%d", len, pos, AM_MLOCK_PAGES, shift,
		      AM_MLOCK_PAGES - 1);
		r = pcache_pwrite(fd, m.view + AM_MLOCK_PAGES * PG + shift, len,
				  (off_t)pos);
		progress();
		if (r != (ssize_t)len)
			corrupt("write of %zu bytes at %zu from view pages %d.. (+%zu)"
				" returned %s", len, pos, AM_MLOCK_PAGES, shift, err_str(r));
		must_pread(fd, got, AM_PAGES * PG, 0, "abba-mmap-lock");
		expect_bytes(got, ref, AM_PAGES * PG, 0,
			     "after copying identical pages onto each other");
		iteration_done();
	}
	atomic_store(&m.stop, 1);
	pthread_join(tid, NULL);
	note("mlock calls %" PRIu64, atomic_load(&m.calls));
	note_stats(pc);
	unmap_view(m.view, AM_PAGES * PG);
	close_file(fd);
	cache_destroy(pc);
	free(ref);
	free(got);
}

/* ---- 4. efault-zeroes ----------------------------------------------------- */

#define EZ_PAGES	16
#define EZ_SIZE		((uint64_t)EZ_PAGES * PG)
#define EZ_MAXLEN	(2 * PG + 500)
#define EZ_SRC_PAGES	3	/* readable pages before the faulting one */
#define EZ_BUF		(EZ_SIZE + EZ_MAXLEN + PG)

enum ez_kind { EZ_PROT_NONE, EZ_UNMAPPED, EZ_PAST_EOF, EZ_KINDS };

static const char *const ez_kind_names[EZ_KINDS] = {
	"PROT_NONE", "unmapped", "a view page past EOF",
};

/*
 * The seed's corruption: a write over uptodate data whose source faults
 * after k bytes.  The file must hold the new bytes exactly up to the
 * returned count and the old bytes after it, and i_size must match
 * (writes may run past EOF).  2.6.20's copy_from_user zero-filled the
 * rest and commit_write published it: naive must show zeroes.
 */
static void scn_efault_zeroes(void)
{
	struct pcache *pc = cell_cache(NULL, cell_strategy);
	int fd = open_file(pc, "efault", O_RDWR | O_CREAT);
	int gfd = open_file(pc, "efault-short", O_RDWR | O_CREAT);
	unsigned char *old = xmalloc(EZ_BUF), *want = xmalloc(EZ_BUF);
	unsigned char *got = xmalloc(EZ_BUF), *gref = xmalloc(PG);
	unsigned char *pn = map_faulting(EZ_SRC_PAGES), *gview;
	uint64_t i, rng = cell_seed, under = 0, efaults = 0, kinds[EZ_KINDS] = { 0 };

	memset(old, 0, EZ_BUF);
	for (i = 0; i < EZ_SIZE; i++)
		old[i] = tbyte(4, i);
	for (i = 0; i < PG; i++)
		gref[i] = tbyte(5, i);
	must_pwrite(fd, old, EZ_SIZE, 0);
	/* The short file: one page; its view's second page is past EOF. */
	must_pwrite(gfd, gref, PG, 0);
	gview = map_view(gfd, 2 * PG, PROT_READ, 0);

	for (i = 0; i < cell_iterations; i++) {
		enum ez_kind kind = (enum ez_kind)(i % EZ_KINDS);
		size_t len = 1 + below(&rng, EZ_MAXLEN), kmax, k, n, j;
		uint64_t off = below(&rng, EZ_SIZE), size;
		unsigned char *src, *m = NULL;
		ssize_t r;

		kmax = len - 1;
		if (kind == EZ_PAST_EOF && kmax > PG)
			kmax = PG;
		k = below(&rng, kmax + 1);
		if (below(&rng, 4) == 0 && PG - off % PG <= kmax)
			k = PG - off % PG;	/* the fault at a page boundary */
		else if (below(&rng, 8) == 0)
			k = 0;			/* nothing readable: -EFAULT */

		switch (kind) {
		case EZ_PROT_NONE:
			src = pn + EZ_SRC_PAGES * PG - k;
			for (j = 0; j < k; j++)
				src[j] = tbyte(6, off + j);
			break;
		case EZ_UNMAPPED:
			/* A fresh hole each time, so nothing can have moved in. */
			m = mmap(NULL, (EZ_SRC_PAGES + 1) * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED)
				setup_error("mmap: %s", strerror(errno));
			if (munmap(m + EZ_SRC_PAGES * PG, PG))
				setup_error("munmap: %s", strerror(errno));
			src = m + EZ_SRC_PAGES * PG - k;
			for (j = 0; j < k; j++)
				src[j] = tbyte(6, off + j);
			break;
		default:
			src = gview + PG - k;
			if (i / EZ_KINDS % 2)
				zap(gview, PG);	/* the readable part faults in too */
			break;
		}
		kinds[kind]++;

		where("pwrite %zu bytes at %" PRIu64 " from %s after %zu readable bytes",
		      len, off, ez_kind_names[kind], k);
		r = pcache_pwrite(fd, src, len, (off_t)off);
		progress();
		if (r < 0 && r != -EFAULT)
			corrupt("pwrite of %zu bytes at %" PRIu64 " from %s after %zu"
				" readable bytes returned %s", len, off,
				ez_kind_names[kind], k, err_str(r));
		n = r < 0 ? 0 : (size_t)r;
		if (n > k || (k == 0 && r != -EFAULT))
			corrupt("pwrite of %zu bytes at %" PRIu64 " from %s with only %zu"
				" readable bytes returned %s", len, off,
				ez_kind_names[kind], k, err_str(r));
		under += n < k;
		efaults += r == -EFAULT;

		/* What the file must hold: the old bytes, the new up to n. */
		memcpy(want, old, EZ_BUF);
		memcpy(want + off, src == gview + PG - k ? gref + PG - k : src, n);
		size = n && off + n > EZ_SIZE ? off + n : EZ_SIZE;
		expect_size(fd, size, "after a write whose source faulted");
		r = pcache_pread(fd, got, EZ_BUF, 0);
		if (r != (ssize_t)size)
			corrupt("pread of the whole file returned %s, want %" PRIu64,
				err_str(r), size);
		{
			char what[160];

			snprintf(what, sizeof(what), "pwrite of %zu bytes at %" PRIu64
				 " from %s after %zu readable bytes returned %zu",
				 len, off, ez_kind_names[kind], k, n);
			expect_bytes(got, want, size, 0, what);
		}
		if (m && munmap(m, EZ_SRC_PAGES * PG))
			setup_error("munmap: %s", strerror(errno));

		/* Put the old bytes back. */
		if (size > EZ_SIZE && pcache_ftruncate(fd, (off_t)EZ_SIZE))
			setup_error("pcache_ftruncate failed");
		if (n && off < EZ_SIZE)
			must_pwrite(fd, old + off, n < EZ_SIZE - off ? n : EZ_SIZE - off,
				    (off_t)off);
		iteration_done();
	}
	note("sources: %" PRIu64 " PROT_NONE, %" PRIu64 " unmapped, %" PRIu64
	     " past EOF; %" PRIu64 " -EFAULT, %" PRIu64 " returned less than readable",
	     kinds[0], kinds[1], kinds[2], efaults, under);
	note_stats(pc);
	unmap_view(gview, 2 * PG);
	close_file(fd);
	close_file(gfd);
	cache_destroy(pc);
	munmap(pn, (EZ_SRC_PAGES + 1) * PG);
	free(old);
	free(want);
	free(got);
	free(gref);
}

/* ---- 5. short-copy-not-uptodate ------------------------------------------ */

#define SC_PAGES	64
#define SC_NAME		"pattern-262144"	/* SC_PAGES pages */

/*
 * BRIEF §4: a short copy into a page that is not uptodate writes nothing
 * into that page.  Backend "synthetic": the file's pages hold a known
 * pattern that is read in page by page, so a page not yet cached has
 * something other than zeroes to lose.  A full-page write (the case where
 * write_begin does not read the page in) from a source that faults after k
 * bytes, into a page that was never cached: afterwards the bytes before
 * the returned count are new and the rest is the backend's pattern.  Pages
 * are used from the last down, and the file is unlinked and opened again
 * (a fresh inode) when they run out, so every write meets an uncached page.
 */
static void scn_short_copy(void)
{
	static const size_t ks[] = { PG / 2, 1, 100, PG - 1, 0 };
	struct pcache *ref_pc, *pc;
	unsigned char *ref = xmalloc(SC_PAGES * PG), *model = xmalloc(SC_PAGES * PG);
	unsigned char *got = xmalloc(3 * PG), *buf = map_faulting(1);
	uint64_t i, rng = cell_seed, under = 0, efaults = 0, reopens = 0;
	int fd;

	/* The pattern, read in by a separate cache. */
	ref_pc = cell_cache("synthetic", PCACHE_WRITE_BOUNCE);
	fd = open_file(ref_pc, SC_NAME, O_RDONLY);
	must_pread(fd, ref, SC_PAGES * PG, 0, "the reference cache");
	for (i = 0; i < SC_PAGES * PG; i++)
		if (!ref[i])
			setup_error("the synthetic pattern has a zero at %" PRIu64, i);
	close_file(fd);
	cache_destroy(ref_pc);

	pc = cell_cache("synthetic", cell_strategy);
	fd = open_file(pc, SC_NAME, O_RDWR);
	memcpy(model, ref, SC_PAGES * PG);	/* what the file holds */
	for (i = 0; i < cell_iterations; i++) {
		uint64_t slot = i % SC_PAGES, p = SC_PAGES - 1 - slot, lo, hi;
		size_t k = i % 6 < ARRAY_SIZE(ks) ? ks[i % 6] : below(&rng, PG), n, j;
		unsigned char *src = buf + PG - k;
		char what[160];
		ssize_t r;

		if (slot == 0 && i) {
			/* Out of uncached pages: a fresh inode of the same file. */
			close_file(fd);
			if (pcache_unlink(pc, SC_NAME))
				setup_error("pcache_unlink(%s) failed", SC_NAME);
			fd = open_file(pc, SC_NAME, O_RDWR);
			memcpy(model, ref, SC_PAGES * PG);
			reopens++;
		}
		for (j = 0; j < k; j++)
			src[j] = tbyte(7 + (unsigned int)(i & 1), j);
		where("full-page pwrite into uncached page %" PRIu64 " from a source"
		      " that faults after %zu bytes", p, k);
		r = pcache_pwrite(fd, src, PG, (off_t)(p * PG));
		progress();
		if ((r < 0 && r != -EFAULT) || r > (ssize_t)k ||
		    (k == 0 && r != -EFAULT))
			corrupt("full-page pwrite into uncached page %" PRIu64 " from a source"
				" with %zu readable bytes returned %s", p, k, err_str(r));
		n = r < 0 ? 0 : (size_t)r;
		under += n < k;
		efaults += r == -EFAULT;
		expect_size(fd, SC_PAGES * PG, "after a short full-page write");

		/* Pages p-1..p+1: page p is the pattern after the new n bytes. */
		memcpy(model + p * PG, src, n);
		lo = p ? p - 1 : p;
		hi = p + 1 < SC_PAGES ? p + 2 : p + 1;
		must_pread(fd, got, (hi - lo) * PG, (off_t)(lo * PG), "short-copy");
		snprintf(what, sizeof(what), "full-page pwrite into uncached page %" PRIu64
			 " from a source with %zu readable bytes returned %zu", p, k, n);
		expect_bytes(got, model + lo * PG, (hi - lo) * PG, lo * PG, what);
		iteration_done();
	}
	note("%" PRIu64 " fresh inodes, %" PRIu64 " -EFAULT, %" PRIu64
	     " returned less than readable", reopens + 1, efaults, under);
	note_stats(pc);
	close_file(fd);
	cache_destroy(pc);
	munmap(buf, 2 * PG);
	free(ref);
	free(model);
	free(got);
}

/* ---- 6. forward-progress -------------------------------------------------- */

#define FP_PAGES	4

/*
 * xfstests generic/729: a thread zaps the source view pages (2-3) in a
 * tight loop while the writer writes pages 0-1 from them, so a source
 * faulted in is gone again by the time the no-fault copy runs.  Every
 * write must complete, in bounded time (the watchdog's), with every byte;
 * the strategies that copy with faults refused get there by falling back
 * to the bounce copy after a bounded number of zero-progress retries.  The
 * detail reports the slowest write and the strategy's retries and
 * fallbacks: optimistic retries on nearly every write (its first copy meets
 * a zapped page); atomic's window between fault-in and copy is too short to
 * be hit often from outside.  The invalidator yields between zaps: without
 * that, on two CPUs, the fault-in itself is starved (a page installed by
 * the handler is zapped again before the faulting thread gets to retry its
 * access), and single writes took up to 0.4 s.
 */
struct invalidator {
	unsigned char *view;
	atomic_int stop;
	_Atomic uint64_t zaps;
};

static void *invalidator_main(void *arg)
{
	struct invalidator *v = arg;

	thread_role = "invalidator";
	while (!atomic_load_explicit(&v->stop, memory_order_relaxed)) {
		zap(v->view + 2 * PG, 2 * PG);
		atomic_fetch_add_explicit(&v->zaps, 1, memory_order_relaxed);
		/* Two CPUs are common in CI: let the fault handlers run too. */
		sched_yield();
	}
	return NULL;
}

static void scn_forward_progress(void)
{
	struct pcache *pc = cell_cache(NULL, cell_strategy);
	int fd = open_file(pc, "forward-progress", O_RDWR | O_CREAT);
	unsigned char *ref = xmalloc(FP_PAGES * PG), *got = xmalloc(FP_PAGES * PG);
	struct invalidator v;
	double worst = 0;
	pthread_t tid;
	uint64_t i;

	for (i = 0; i < FP_PAGES * PG; i++)
		ref[i] = tbyte(8, i % PG);
	must_pwrite(fd, ref, FP_PAGES * PG, 0);
	memset(&v, 0, sizeof(v));
	v.view = map_view(fd, FP_PAGES * PG, PROT_READ, 0);
	if (pthread_create(&tid, NULL, invalidator_main, &v))
		setup_error("pthread_create failed");

	for (i = 0; i < cell_iterations; i++) {
		size_t src, dst, len;
		uint64_t zaps;
		double t0, dt;
		ssize_t r;

		switch (i % 3) {
		case 0:	src = 2 * PG; dst = 0; len = 2 * PG; break;
		case 1:	src = 2 * PG + 100; dst = 100; len = PG; break;
		default: src = 3 * PG; dst = PG; len = PG; break;
		}
		/* Be sure the invalidator is running now, not just scheduled. */
		where("waiting for the invalidator to zap");
		zaps = atomic_load(&v.zaps);
		while (atomic_load(&v.zaps) < zaps + 2)
			sched_yield();
		where("pwrite %zu bytes at %zu from view offset %zu, zapped again and"
		      " again by another thread", len, dst, src);
		t0 = now_ms();
		r = pcache_pwrite(fd, v.view + src, len, (off_t)dst);
		dt = now_ms() - t0;
		progress();
		if (dt > worst)
			worst = dt;
		if (r != (ssize_t)len)
			corrupt("pwrite of %zu bytes from a valid (but invalidated) view"
				" returned %s", len, err_str(r));
		must_pread(fd, got, FP_PAGES * PG, 0, "forward-progress");
		expect_bytes(got, ref, FP_PAGES * PG, 0,
			     "after copying identical pages onto each other");
		iteration_done();
	}
	atomic_store(&v.stop, 1);
	pthread_join(tid, NULL);
	note("slowest write %.2f ms, %" PRIu64 " zaps", worst, atomic_load(&v.zaps));
	note_stats(pc);
	unmap_view(v.view, FP_PAGES * PG);
	close_file(fd);
	cache_destroy(pc);
	free(ref);
	free(got);
}

/* ---- 7. truncate-race ----------------------------------------------------- */

#define TR_PAGES	8
#define TR_MAX		((uint64_t)TR_PAGES * PG)
#define TR_UNCHECKED	3	/* racing truncates per checked one */

/*
 * Truncate (shrinking and growing), pwrite and reads through a view, all
 * at once.  The writer only ever writes tag 9's byte for each offset, so
 * any byte anyone reads is either that or zero.  The truncater runs
 * unchecked truncates that race everything, and each iteration one
 * checked sequence that excludes the writer (a test lock; the mapped
 * reader still races it): shrink to s1, grow to s2, and then [s1, s2) must
 * read as zeroes through pread and through the view (no stale data past
 * the old EOF) and fstat must say s2.  Touches past EOF get SIGBUS, which
 * is expected and counted.
 */
struct trunc_race {
	int fd;
	unsigned char *view;
	const unsigned char *ref;
	pthread_rwlock_t lock;	/* writer shared, checked sequence exclusive */
	atomic_int stop;
	uint64_t writes, touches, sigbus, sigsegv, preads;
	uint64_t seed;
};

static void *tr_writer(void *arg)
{
	struct trunc_race *t = arg;
	uint64_t rng = t->seed ^ 0x57;

	thread_role = "writer";
	while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		uint64_t off = below(&rng, TR_MAX), max = TR_MAX - off;
		size_t len = 1 + below(&rng, max < 2 * PG ? max : 2 * PG);
		ssize_t r;

		pthread_rwlock_rdlock(&t->lock);
		r = pcache_pwrite(t->fd, t->ref + off, len, (off_t)off);
		pthread_rwlock_unlock(&t->lock);
		if (r != (ssize_t)len)
			corrupt("writer: pwrite of %zu bytes at %" PRIu64 " returned %s",
				len, off, err_str(r));
		t->writes++;
	}
	return NULL;
}

/* Every byte of @got (file offset @off) is zero or the writer's. */
static void tr_expect_zero_or_ref(const struct trunc_race *t,
				  const unsigned char *got, size_t len,
				  uint64_t off, const char *what)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (got[i] && got[i] != t->ref[off + i])
			corrupt("%s: offset %" PRIu64 " reads 0x%02x, which is neither 0"
				" nor the only byte ever written there (0x%02x)", what,
				off + i, got[i], t->ref[off + i]);
}

static void *tr_reader(void *arg)
{
	struct trunc_race *t = arg;
	uint64_t rng = t->seed ^ 0x3c;
	unsigned char buf[256];

	thread_role = "mapped reader";
	while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		uint64_t off = below(&rng, TR_MAX);
		size_t len = 1 + below(&rng, sizeof(buf)), done;
		int sig;

		if (off + len > TR_MAX)
			len = TR_MAX - off;
		if (below(&rng, 8) == 0) {
			ssize_t r = pcache_pread(t->fd, buf, len, (off_t)off);

			if (r < 0)
				corrupt("reader: pread returned %s", err_str(r));
			tr_expect_zero_or_ref(t, buf, (size_t)r, off, "reader: pread");
			t->preads++;
			continue;
		}
		sig = touch_copy(buf, t->view + off, len, &done);
		if (sig == SIGBUS)
			t->sigbus++;	/* past EOF: expected */
		else if (sig)
			t->sigsegv++;
		tr_expect_zero_or_ref(t, buf, done, off, "reader: view");
		t->touches++;
	}
	return NULL;
}

static void tr_truncate(int fd, uint64_t size)
{
	int rc = pcache_ftruncate(fd, (off_t)size);

	if (rc)
		corrupt("pcache_ftruncate(%" PRIu64 ") returned %s", size, err_str(rc));
}

static void scn_truncate_race(void)
{
	struct pcache *pc = cell_cache(NULL, cell_strategy);
	unsigned char *ref = xmalloc(TR_MAX), *got = xmalloc(TR_MAX + 1);
	pthread_rwlockattr_t attr;
	struct trunc_race t;
	pthread_t tid[2];
	uint64_t i, j, rng = cell_seed;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < TR_MAX; i++)
		ref[i] = tbyte(9, i);
	t.ref = ref;
	t.seed = cell_seed;
	t.fd = open_file(pc, "truncate-race", O_RDWR | O_CREAT);
	must_pwrite(t.fd, ref, TR_MAX, 0);
	t.view = map_view(t.fd, TR_MAX, PROT_READ, 0);
	/* Writer-preferring: the writer must not starve the checked sequences. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&t.lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (pthread_create(&tid[0], NULL, tr_writer, &t) ||
	    pthread_create(&tid[1], NULL, tr_reader, &t))
		setup_error("pthread_create failed");

	for (i = 0; i < cell_iterations; i++) {
		uint64_t s1, s2;
		size_t done;
		ssize_t r;
		int sig;

		for (j = 0; j < TR_UNCHECKED; j++) {
			uint64_t s = below(&rng, TR_MAX + 1);

			where("racing ftruncate(%" PRIu64 ")", s);
			tr_truncate(t.fd, s);
			progress();
		}

		where("checked sequence: waiting for the writer");
		pthread_rwlock_wrlock(&t.lock);
		s1 = below(&rng, TR_MAX + 1);
		if (below(&rng, 4) == 0)
			s1 -= s1 % PG;
		s2 = s1 + below(&rng, TR_MAX - s1 + 1);
		where("checked sequence: shrink to %" PRIu64 ", grow to %" PRIu64, s1, s2);
		tr_truncate(t.fd, s1);
		expect_size(t.fd, s1, "after shrinking");
		tr_truncate(t.fd, s2);
		expect_size(t.fd, s2, "after growing");
		r = pcache_pread(t.fd, got, TR_MAX + 1, 0);
		if (r != (ssize_t)s2)
			corrupt("pread of the whole file after truncating to %" PRIu64
				" returned %s", s2, err_str(r));
		tr_expect_zero_or_ref(&t, got, s1, 0, "below the shrunk size");
		if (s2 > s1) {
			unsigned char *zero = calloc(1, s2 - s1);
			char what[128];

			if (!zero)
				setup_error("out of memory");
			snprintf(what, sizeof(what), "pread after shrinking to %" PRIu64
				 " and growing to %" PRIu64 " (must be zeroes)", s1, s2);
			expect_bytes(got + s1, zero, s2 - s1, s1, what);
			sig = touch_copy(got, t.view + s1, s2 - s1, &done);
			if (sig)
				corrupt("view read of [%" PRIu64 ", %" PRIu64 ") got %s after"
					" %zu bytes, although i_size is %" PRIu64 " and nothing"
					" truncates now", s1, s2, strsignal(sig), done, s2);
			snprintf(what, sizeof(what), "view after shrinking to %" PRIu64
				 " and growing to %" PRIu64 " (must be zeroes)", s1, s2);
			expect_bytes(got, zero, s2 - s1, s1, what);
			free(zero);
		}
		r = pcache_pread(t.fd, got, 1, (off_t)s2);
		if (r != 0)
			corrupt("pread at EOF (%" PRIu64 ") returned %s", s2, err_str(r));
		pthread_rwlock_unlock(&t.lock);
		iteration_done();
	}
	atomic_store(&t.stop, 1);
	where("joining the writer and the mapped reader");
	pthread_join(tid[0], NULL);
	pthread_join(tid[1], NULL);
	note("%" PRIu64 " writes, %" PRIu64 " view reads (%" PRIu64 " SIGBUS past EOF,"
	     " %" PRIu64 " SIGSEGV), %" PRIu64 " preads", t.writes, t.touches,
	     t.sigbus, t.sigsegv, t.preads);
	note_stats(pc);
	unmap_view(t.view, TR_MAX);
	close_file(t.fd);
	cache_destroy(pc);
	pthread_rwlock_destroy(&t.lock);
	free(ref);
	free(got);
}

/* ---- the child ------------------------------------------------------------ */

static void *sampler_main(void *arg)
{
	thread_role = "lockdep sampler";
	while (!atomic_load(&sampler_stop)) {
		sample_lockdep();
		sleep_ms(TORTURE_SAMPLE_MS);
	}
	return NULL;
}

static void (*const scenario_fns[SCN_NR])(void) = {
	[SCN_SAME_PAGE]		= scn_same_page,
	[SCN_ABBA_PAGES]	= scn_abba_pages,
	[SCN_ABBA_MMAP_LOCK]	= scn_abba_mmap_lock,
	[SCN_EFAULT_ZEROES]	= scn_efault_zeroes,
	[SCN_SHORT_COPY]	= scn_short_copy,
	[SCN_FORWARD_PROGRESS]	= scn_forward_progress,
	[SCN_TRUNCATE_RACE]	= scn_truncate_race,
};

static _Noreturn void child_main(int strategy, int scn, struct cell_shm *s)
{
	struct pcache_config cfg;
	int rc;

	shm = s;
	cell_strategy = strategy;
	cell_scenario = scn;
	cell_iterations = opts.iterations;
	cell_seed = opts.seed * 0x100000001b3ull + (uint64_t)scn * 131 + (uint64_t)strategy;
	where("setting up");

	/* Before any pcache_create(): the library's guard chains to it. */
	catch_install();
	pcache_config_init(&cfg);
	rc = pcache_create(&cfg, &sampler_pc);
	if (rc)
		setup_error("pcache_create (the lockdep sampler's): %s", pcache_strerror(rc));
	if (pthread_create(&sampler_thread, NULL, sampler_main, NULL))
		setup_error("pthread_create failed");

	scenario_fns[scn]();

	where("finishing");
	atomic_store(&sampler_stop, 1);
	pthread_join(sampler_thread, NULL);
	sample_lockdep();
	cache_destroy(sampler_pc);
	fflush(NULL);
	exit(CHILD_OK);	/* exit, not _exit: a leak checker gets to look */
}

/* ---- the parent ----------------------------------------------------------- */

static bool show_progress;

static void run_cell(int strategy, int scn, unsigned int nr, unsigned int of,
		     struct result *res)
{
	struct cell_shm *s;
	uint64_t last_progress = 0;
	double t0, last_change, last_shown = 0, t;
	const char *sname = pcache_strategy_name(strategy);
	int status = 0;
	pid_t pid, parent = getpid();
	bool killed = false, stuck = false;

	memset(res, 0, sizeof(*res));
	res->strategy = strategy;
	res->scenario = scn;
	res->expected = expected_outcome(strategy, scn);

	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	if (s == MAP_FAILED) {
		res->outcome = OUT_ERROR;
		snprintf(res->detail, sizeof(res->detail), "mmap: %s", strerror(errno));
		goto out;
	}
	fflush(NULL);
	t0 = now_ms();
	pid = fork();
	if (pid < 0) {
		res->outcome = OUT_ERROR;
		snprintf(res->detail, sizeof(res->detail), "fork: %s", strerror(errno));
		munmap(s, sizeof(*s));
		goto out;
	}
	if (pid == 0) {
		/* Die with the parent: a deadlocked child must not outlive it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(CHILD_ERROR);
		child_main(strategy, scn, s);
	}

	last_change = t0;
	for (;;) {
		uint64_t p;
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			status = 0;
			break;
		}
		t = now_ms();
		p = atomic_load(&s->progress);
		if (p != last_progress) {
			last_progress = p;
			last_change = t;
		} else if (t - last_change >= opts.timeout_ms) {
			stuck = true;
		}
		if (stuck && opts.hold) {
			fprintf(stderr, "pcache torture: %s / %s: no progress for %u ms;"
				" child %d left running for a debugger (gdb -p %d);"
				" waiting for it to end\n", sname, scenario_names[scn],
				opts.timeout_ms, (int)pid, (int)pid);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			killed = true;
			break;
		}
		if (stuck || t - t0 >= TORTURE_CELL_LIMIT_MS) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			killed = true;
			break;
		}
		if (show_progress && t - last_shown >= 100) {
			fprintf(stderr, "\r\033[K[%u/%u] %s / %s: %" PRIu64 "/%" PRIu64,
				nr, of, sname, scenario_names[scn],
				atomic_load(&s->iterations), opts.iterations);
			last_shown = t;
		}
		sleep_ms(TORTURE_POLL_MS);
	}
	res->ms = now_ms() - t0;
	if (show_progress)
		fputs("\r\033[K", stderr);

	res->iterations = atomic_load(&s->iterations);
	res->lockdep_reports = atomic_load(&s->lockdep_reports);
	s->where[WHERE_LEN - 1] = '\0';
	s->detail[DETAIL_LEN - 1] = '\0';
	if (killed) {
		res->outcome = OUT_DEADLOCK;
		if (stuck)
			snprintf(res->detail, sizeof(res->detail),
				 "no progress for %u ms, killed; stuck in: %s",
				 opts.timeout_ms, s->where);
		else
			snprintf(res->detail, sizeof(res->detail),
				 "still running after %d s (livelock?), killed; in: %s",
				 TORTURE_CELL_LIMIT_MS / 1000, s->where);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_OK &&
		   res->iterations == opts.iterations) {
		res->outcome = OUT_OK;
		snprintf(res->detail, sizeof(res->detail), "%s", s->detail);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_CORRUPT) {
		res->outcome = OUT_CORRUPT;
		snprintf(res->detail, sizeof(res->detail), "%s", s->detail);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_ERROR) {
		res->outcome = OUT_ERROR;
		snprintf(res->detail, sizeof(res->detail), "%s", s->detail);
	} else if (WIFSIGNALED(status)) {
		res->outcome = OUT_CRASH;
		snprintf(res->detail, sizeof(res->detail), "killed by signal %d (%s)%s%s;"
			 " main thread in: %s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), s->detail[0] ? ": " : "",
			 s->detail, s->where);
	} else {
		res->outcome = OUT_CRASH;
		snprintf(res->detail, sizeof(res->detail),
			 "exit status %d after %" PRIu64 " of %" PRIu64 " iterations, in: %s",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1, res->iterations,
			 opts.iterations, s->where);
	}
	munmap(s, sizeof(*s));
out:
	res->unexpected = res->outcome != res->expected;
	if (opts.lockdep) {
		int want = expected_lockdep(strategy, scn);

		if ((want == 0 && res->lockdep_reports) ||
		    (want == 1 && !res->lockdep_reports))
			res->unexpected = true;
	}
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* One object per line, so that line tools can read it too. */
static void print_json(const struct result *r, size_t n)
{
	size_t i;

	printf("[\n");
	for (i = 0; i < n; i++) {
		printf("  {\"strategy\": \"%s\", \"scenario\": \"%s\", \"outcome\": \"%s\","
		       " \"expected\": \"%s\", \"iterations\": %" PRIu64 ", \"ms\": %.0f,"
		       " \"lockdep_reports\": %" PRIu64 ", \"detail\": ",
		       pcache_strategy_name(r[i].strategy), scenario_names[r[i].scenario],
		       outcome_names[r[i].outcome], outcome_names[r[i].expected],
		       r[i].iterations, r[i].ms, r[i].lockdep_reports);
		json_string(stdout, r[i].detail);
		printf("}%s\n", i + 1 < n ? "," : "");
	}
	printf("]\n");
}

static void print_table(const struct result *r, size_t n)
{
	int st, scn;
	size_t i;

	printf("%-24s", "scenario");
	for (st = 0; st < PCACHE_WRITE_NR; st++)
		if (opts.strategies[st])
			printf(" %-13s", pcache_strategy_name(st));
	printf("\n");
	for (scn = 0; scn < SCN_NR; scn++) {
		if (!opts.scenarios[scn])
			continue;
		printf("%-24s", scenario_names[scn]);
		for (i = 0; i < n; i++) {
			char cell[32];

			if (r[i].scenario != scn)
				continue;
			snprintf(cell, sizeof(cell), "%s%s", outcome_names[r[i].outcome],
				 r[i].unexpected ? "!" : "");
			if (r[i].lockdep_reports)
				snprintf(cell + strlen(cell), sizeof(cell) - strlen(cell),
					 " L%" PRIu64, r[i].lockdep_reports);
			printf(" %-13s", cell);
		}
		printf("\n");
	}
	printf("\n('!': not the expected outcome; 'L<n>': lock validator reports)\n\n");
	for (i = 0; i < n; i++)
		printf("%-10s %-24s %-8s %5" PRIu64 " it %7.0f ms  lockdep %" PRIu64 "  %s\n",
		       pcache_strategy_name(r[i].strategy), scenario_names[r[i].scenario],
		       outcome_names[r[i].outcome], r[i].iterations, r[i].ms,
		       r[i].lockdep_reports, r[i].detail);
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: pcache torture [options]\n"
"\n"
"Provoke the deadlocks and the corruption of the 2007 RFC \"mm: buffered write\n"
"deadlock fix\" with real views and threads, under each write strategy.  Each\n"
"(strategy, scenario) cell runs in a child process watched by the parent:\n"
"  ok        every iteration ran and verified\n"
"  deadlock  no progress for --timeout-ms: the child was killed\n"
"  corrupt   the child read back wrong bytes or sizes (said on stderr)\n"
"  crash     the child died of a signal or exited unexpectedly\n"
"  error     the child could not set up (e.g. views unavailable)\n"
"Expected: naive deadlocks in same-page, abba-pages and abba-mmap-lock and\n"
"corrupts in efault-zeroes and short-copy-not-uptodate; every other cell is ok.\n"
"The exit status is 0 iff every cell run is as expected.\n"
"\n"
"  --strategy S[,S..]   naive, bounce, bounce-opt, atomic, optimistic, or all\n"
"                       (default all)\n"
"  --scenario X[,X..]   same-page, abba-pages, abba-mmap-lock, efault-zeroes,\n"
"                       short-copy-not-uptodate, forward-progress,\n"
"                       truncate-race, or all (default all)\n"
"  --iterations N       iterations per cell (default %llu)\n"
"  --timeout-ms T       no progress for T ms is a deadlock (default %u)\n"
"  --seed S             PRNG seed of the random offsets (default 1)\n"
"  --json               print a JSON array, one object per cell: strategy,\n"
"                       scenario, outcome, expected, iterations, ms,\n"
"                       lockdep_reports, detail\n"
"  --lockdep            run the children with PCACHE_LOCKDEP=1 and expect the\n"
"                       validator to flag naive in the first three scenarios\n"
"                       and nothing else\n"
"  --hold               leave a deadlocked child running (its pid is printed)\n"
"                       for a debugger, and wait until it is killed\n"
"  --help               this text\n",
		(unsigned long long)TORTURE_DEFAULT_ITERATIONS,
		TORTURE_DEFAULT_TIMEOUT_MS);
}

#define bad_usage(...) usage_error("torture", __VA_ARGS__)

static int scenario_from_name(const char *name)
{
	int i;

	for (i = 0; i < SCN_NR; i++)
		if (!strcmp(name, scenario_names[i]))
			return i;
	return -1;
}

/* "all" or a comma-separated list of names; false on an unknown name. */
static bool parse_list(const char *arg, bool *set, int nr, int (*lookup)(const char *))
{
	char *copy, *tok, *save = NULL;
	bool ok = true;
	int i;

	memset(set, 0, (size_t)nr * sizeof(*set));
	if (!strcmp(arg, "all")) {
		for (i = 0; i < nr; i++)
			set[i] = true;
		return true;
	}
	copy = strdup(arg);
	if (!copy)
		return false;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		i = lookup(tok);
		if (i < 0) {
			ok = false;
			break;
		}
		set[i] = true;
	}
	free(copy);
	for (i = 0; ok && i < nr && !set[i]; i++)
		;
	return ok && i < nr;
}

static int strategy_lookup(const char *name)
{
	int i = pcache_strategy_from_name(name);

	return i < 0 ? -1 : i;
}

enum {
	OPT_STRATEGY = 256, OPT_SCENARIO, OPT_ITERATIONS, OPT_TIMEOUT, OPT_SEED,
	OPT_JSON, OPT_LOCKDEP, OPT_HOLD, OPT_HELP,
};

static const struct option long_opts[] = {
	{ "strategy",	required_argument,	NULL, OPT_STRATEGY },
	{ "scenario",	required_argument,	NULL, OPT_SCENARIO },
	{ "iterations",	required_argument,	NULL, OPT_ITERATIONS },
	{ "timeout-ms",	required_argument,	NULL, OPT_TIMEOUT },
	{ "seed",	required_argument,	NULL, OPT_SEED },
	{ "json",	no_argument,		NULL, OPT_JSON },
	{ "lockdep",	no_argument,		NULL, OPT_LOCKDEP },
	{ "hold",	no_argument,		NULL, OPT_HOLD },
	{ "help",	no_argument,		NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv)
{
	uint64_t v;
	int c, i;

	memset(&opts, 0, sizeof(opts));
	for (i = 0; i < PCACHE_WRITE_NR; i++)
		opts.strategies[i] = true;
	for (i = 0; i < SCN_NR; i++)
		opts.scenarios[i] = true;
	opts.iterations = TORTURE_DEFAULT_ITERATIONS;
	opts.timeout_ms = TORTURE_DEFAULT_TIMEOUT_MS;
	opts.seed = 1;

	optind = 0;	/* glibc: rescan from argv[1] */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_STRATEGY:
			if (!parse_list(optarg, opts.strategies, PCACHE_WRITE_NR,
					strategy_lookup))
				return bad_usage("--strategy: '%s' is not 'all' or a list of"
						 " naive, bounce, bounce-opt, atomic,"
						 " optimistic", optarg);
			break;
		case OPT_SCENARIO:
			if (!parse_list(optarg, opts.scenarios, SCN_NR, scenario_from_name))
				return bad_usage("--scenario: '%s' is not 'all' or a list of"
						 " scenario names", optarg);
			break;
		case OPT_ITERATIONS:
			if (!parse_u64(optarg, false, &opts.iterations) || !opts.iterations)
				return bad_usage("--iterations: '%s' is not a number >= 1",
						 optarg);
			break;
		case OPT_TIMEOUT:
			if (!parse_u64(optarg, false, &v) || v < 10 || v > 3600000)
				return bad_usage("--timeout-ms: '%s' is not in 10..3600000",
						 optarg);
			opts.timeout_ms = (unsigned int)v;
			break;
		case OPT_SEED:
			if (!parse_u64(optarg, false, &opts.seed))
				return bad_usage("--seed: '%s' is not a number", optarg);
			break;
		case OPT_JSON:
			opts.json = true;
			break;
		case OPT_LOCKDEP:
			opts.lockdep = true;
			break;
		case OPT_HOLD:
			opts.hold = true;
			break;
		case OPT_HELP:
			usage(stdout);
			return 0;
		case ':':
			return bad_usage("option '%s' needs an argument", argv[optind - 1]);
		default:
			return bad_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	return -1;
}

int cmd_torture(int argc, char **argv)
{
	struct result *results;
	unsigned int n = 0, of = 0, bad = 0;
	double t0;
	int status, st, scn;

	status = parse_args(argc, argv);
	if (status >= 0)
		return status;
	if (opts.lockdep && setenv("PCACHE_LOCKDEP", "1", 1)) {
		fprintf(stderr, "pcache torture: setenv: %s\n", strerror(errno));
		return 1;
	}
	show_progress = isatty(STDERR_FILENO);
	for (scn = 0; scn < SCN_NR; scn++)
		for (st = 0; st < PCACHE_WRITE_NR; st++)
			of += opts.scenarios[scn] && opts.strategies[st];
	results = calloc(of, sizeof(*results));
	if (!results) {
		fprintf(stderr, "pcache torture: out of memory\n");
		return 1;
	}
	if (!opts.json) {
		printf("pcache torture: %" PRIu64 " iterations per cell, deadlock after %u ms"
		       " without progress, seed %" PRIu64 "%s\n\n", opts.iterations,
		       opts.timeout_ms, opts.seed, opts.lockdep ? ", PCACHE_LOCKDEP=1" : "");
		fflush(stdout);
	}

	t0 = now_ms();
	for (scn = 0; scn < SCN_NR; scn++)
		for (st = 0; st < PCACHE_WRITE_NR; st++) {
			if (!opts.scenarios[scn] || !opts.strategies[st])
				continue;
			run_cell(st, scn, n + 1, of, &results[n]);
			bad += results[n].unexpected;
			n++;
		}

	if (opts.json)
		print_json(results, n);
	else
		print_table(results, n);
	fflush(stdout);
	for (unsigned int i = 0; i < n; i++) {
		const struct result *r = &results[i];

		if (!r->unexpected)
			continue;
		fprintf(stderr, "pcache torture: unexpected: %s / %s: %s (expected %s)",
			pcache_strategy_name(r->strategy), scenario_names[r->scenario],
			outcome_names[r->outcome], outcome_names[r->expected]);
		if (opts.lockdep && expected_lockdep(r->strategy, r->scenario) >= 0)
			fprintf(stderr, ", lockdep reports %" PRIu64 " (expected %s)",
				r->lockdep_reports,
				expected_lockdep(r->strategy, r->scenario) ? "> 0" : "0");
		fprintf(stderr, ": %s\n", r->detail);
	}
	fprintf(stderr, "pcache torture: %u cells in %.1f s: %u as expected, %u not\n",
		n, (now_ms() - t0) / 1e3, n - bad, bad);
	free(results);
	return bad ? 1 : 0;
}
