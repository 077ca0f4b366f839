/*
 * test_nofault - "page faults disabled" in user space: a view fault raised
 * inside copy_from_user_nofault() is refused, and the copy stops short.
 *
 * Layout of every case: the source starts in view page P-1 (present: it
 * was touched first) at offset @off and runs into page P, which is not
 * present (zapped with pcache_madvise(MADV_DONTNEED), or a hole of the
 * file).  For every @off in 0..4095:
 *   - copy_from_user_nofault() returns exactly the bytes at or after P as
 *     not copied; the bytes before P are copied exactly; the destination
 *     past them is untouched; view_refused goes up (by one, or by two
 *     when the fault was reported twice: see refused_check());
 *   - copy_from_user() of the same range is served (the fault is taken)
 *     and copies everything.
 * Also: a source that starts in P at every offset (nothing copied), a
 * hole (a MISSING fault), a writable view, copies in other threads,
 * several threads at once, and no-fault copies from anonymous memory,
 * present view pages and unmapped memory, which no refusal concerns.
 *
 * Internal header: lib/uaccess.h (pcache_create() calls uaccess_init()).
 * Exit 77 if views are unavailable (-EOPNOTSUPP).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "harness.h"
#include "watchdog.h"
#include "lib/uaccess.h"

#define PG		4096L
#define NPAGES		8
#define TAG_FILE	5
#define TAG_DST		9
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* Watchdog                                                            */
/* ------------------------------------------------------------------ */

/* The watchdog (current_case, set_case, watchdog_start): watchdog.h. */

/* ------------------------------------------------------------------ */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct pcache *pc;
static int fd;
static char *view;		/* read-only, NPAGES */
static char *wview;		/* read-write, NPAGES */
static char file_ref[NPAGES * PG];	/* what the file holds */
static char dst_ref[3 * PG];		/* the destination's background */

static struct pcache_stats stats(void)
{
	struct pcache_stats st;

	memset(&st, 0, sizeof(st));
	CHECK_EQ(pcache_stats(pc, &st), 0);
	return st;
}

/*
 * view_refused counts refused fault messages.  The handler bumps it after
 * it has sent the refusal, so it may still be behind when the copy
 * returns; and a copy's one fault can be reported twice (the thread is
 * woken spuriously, e.g. by the tail of an earlier fault's fault-around,
 * and faults again before the refusal signal lands), which counts twice.
 * refused_expect is the count this test can vouch for: refused_check()
 * waits (at most 2 s) for the counter to reach it, then takes the excess
 * as duplicates.  A copy that is refused must count at least once.
 */
static uint64_t refused_expect;
static int refused_lags, refused_checks, refused_dups;
static int refused_copies;	/* copies that were refused */

static void refused_check(const char *what)
{
	struct timespec ts = { 0, 20000 };
	uint64_t got = stats().view_refused;

	refused_checks++;
	if (got < refused_expect) {
		refused_lags++;
		for (int i = 0; i < 100000 && got < refused_expect; i++) {
			nanosleep(&ts, NULL);
			got = stats().view_refused;
		}
	}
	if (got < refused_expect) {
		CHECK(got >= refused_expect, "view_refused %llu, want at least %llu "
		      "after %s", (unsigned long long)got,
		      (unsigned long long)refused_expect, what);
	}
	refused_dups += (int)(got - refused_expect);
	refused_expect = got;
}

static void touch(const char *p)
{
	(void)*(const volatile char *)p;
}

/*
 * One refused copy from @v + (P-1) pages + @off, @n bytes, with page P
 * zapped (@hole: punched out of the file instead) and P-1 present.
 * Returns false if a check failed.
 */
static bool refused_case(char *v, int P, size_t off, size_t n, bool hole,
			 const char *what)
{
	static char dst[3 * PG];
	const char *src = v + (P - 1) * PG + off;
	size_t before = PG - off;	/* bytes before P */
	size_t left;
	int fails = test_failures;

	if (hole) {
		/* Punch P (and after) out of the file; P-1 keeps its bytes. */
		CHECK_EQ(pcache_ftruncate(fd, (off_t)P * PG), 0);
		CHECK_EQ(pcache_ftruncate(fd, NPAGES * PG), 0);
		memset(file_ref + P * PG, 0, (NPAGES - P) * PG);
	}
	/*
	 * P-1 present: touched, then populated with pcache_mlock(), whose mm
	 * lock (write) also waits out a handler still finishing the
	 * fault-around of an earlier fault, which could map P again after
	 * the zap below (see test_zap_after_fault()).
	 */
	touch(v + (P - 1) * PG);
	CHECK_EQ(pcache_mlock(v + (P - 1) * PG, PG), 0);
	CHECK_EQ(pcache_madvise(v + P * PG, PG, MADV_DONTNEED), 0);
	memcpy(dst, dst_ref, sizeof(dst));

	left = copy_from_user_nofault(dst, src, n);
	CHECK_EQ(left, n - before);
	CHECK(!memcmp(dst, file_ref + (P - 1) * PG + off, before),
	      "copied bytes differ");
	CHECK(!memcmp(dst + before, dst_ref + before, sizeof(dst) - before),
	      "destination past the copied bytes was touched");
	refused_expect++;
	refused_copies++;
	refused_check(what);

	/* Not a no-fault copy: the same fault is served. */
	memcpy(dst, dst_ref, sizeof(dst));
	left = copy_from_user(dst, src, n);
	CHECK_EQ(left, 0);
	CHECK(!memcmp(dst, file_ref + (P - 1) * PG + off, n), "plain copy differs");
	if (test_failures != fails) {
		fprintf(stderr, "  ^ %s: P %d off %zu n %zu\n", what, P, off, n);
		return false;
	}
	return true;
}

/* Every offset within a page, the fault at P. */
static void test_every_offset(char *v, const char *what)
{
	double t = now();
	uint64_t r0 = refused_expect;
	int bad = 0;

	for (size_t off = 0; off < PG && bad < 10; off++) {
		int P = 1 + (int)(off % (NPAGES - 2));
		/* Lengths: to the end of P, into P+1, or just P's first byte. */
		size_t n = off % 3 == 0 ? 2 * PG - off :
			   off % 3 == 1 ? 2 * PG - off + 100 : PG - off + 1;

		bad += !refused_case(v, P, off, n, false, what);
	}
	t = now() - t;
	printf("%s: 4096 offsets, view_refused +%llu, %.1f us per case "
	       "(zap + refused copy + served copy)\n", what,
	       (unsigned long long)(refused_expect - r0), t * 1e6 / 4096);
}

/* The source starts inside P: nothing at all is copied. */
static void test_start_in_missing(void)
{
	static char dst[2 * PG];
	size_t left;

	set_case("source starts in the missing page", 30);
	for (size_t off = 0; off < PG; off++) {
		int P = 2 + (int)(off % 4);
		size_t n = off & 1 ? PG - off : PG;

		CHECK_EQ(pcache_mlock(view, PG), 0);	/* a barrier: see refused_case() */
		CHECK_EQ(pcache_madvise(view + P * PG, PG, MADV_DONTNEED), 0);
		memcpy(dst, dst_ref, sizeof(dst));
		left = copy_from_user_nofault(dst, view + P * PG + off, n);
		CHECK_EQ(left, n);
		CHECK(!memcmp(dst, dst_ref, sizeof(dst)), "destination touched, off %zu", off);
		refused_expect++;
		refused_copies++;
		refused_check("a copy starting in the missing page");
	}
}

/* P is a hole of the file: a MISSING fault, refused the same way. */
static void test_holes(void)
{
	set_case("refused MISSING faults (holes)", 30);
	for (size_t off = 0; off < PG; off += 257)
		refused_case(view, 3 + (int)(off % 3), off, 2 * PG - off, true,
			     "hole");
	refused_case(view, 4, PG - 1, PG + 1, true, "hole");
	/* Give the file its pattern back for what follows. */
	pattern_fill(file_ref, sizeof(file_ref), TAG_FILE, 0);
	CHECK_EQ(pcache_pwrite(fd, file_ref, sizeof(file_ref), 0), sizeof(file_ref));
}

/* No-fault copies that no view fault concerns. */
static void test_not_refused(void)
{
	static char dst[2 * PG];
	char *anon, *gone;
	size_t left;

	set_case("no-fault copies without view faults", 30);
	/* Anonymous memory, never touched: the kernel serves the fault. */
	anon = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(anon != MAP_FAILED, "mmap");
	munmap(anon + 2 * PG, PG);	/* a hole after the 2 pages */
	memset(dst, 0x55, sizeof(dst));
	left = copy_from_user_nofault(dst, anon + 10, PG + 10);
	CHECK_EQ(left, 0);
	for (size_t i = 0; i < PG + 10; i++)
		if (dst[i]) {
			CHECK(0, "anonymous zero page copied as %#x at %zu", dst[i] & 0xff, i);
			break;
		}
	/* Anonymous memory with data. */
	memcpy(anon, file_ref, 2 * PG);
	left = copy_from_user_nofault(dst, anon + 1, 2 * PG - 1);
	CHECK_EQ(left, 0);
	CHECK(!memcmp(dst, file_ref + 1, 2 * PG - 1), "anonymous copy");
	/* Unmapped memory: a guarded SIGSEGV, nothing copied. */
	gone = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(gone, PG);
	CHECK_EQ(copy_from_user_nofault(dst, gone, 100), 100);
	CHECK_EQ(copy_from_user_nofault(dst, anon + PG, 2 * PG), PG);
	munmap(anon, 2 * PG);
	/* View pages that are present: no fault at all. */
	touch(view + 2 * PG);
	touch(view + 3 * PG);
	left = copy_from_user_nofault(dst, view + 2 * PG + 5, PG + 7);
	CHECK_EQ(left, 0);
	CHECK(!memcmp(dst, file_ref + 2 * PG + 5, PG + 7), "present view pages");
	refused_check("no-fault copies that need no view fault");
}

/*
 * pcache_madvise(MADV_DONTNEED) promises that the next touch faults again.
 * Here the touch after it is a no-fault copy, so "faults" means "is
 * refused".  The zap comes right after a served fault on page 0 whose
 * fault-around window (the view's 8 pages) is split by present pages into
 * 4 UFFDIO_CONTINUE runs: the faulting thread is woken by the first run
 * while the handler still installs the others, and when the thread wakes
 * fast, its zap of page 6 comes before the handler maps page 6 again.
 * (How often depends on wake-up latency: on this machine kind about 1 try
 * in 10 with -O2, fewer under the sanitizers.)
 */
#define ZAF_ITERS	2000
#define ZAF_PAUSE	100e-6	/* seconds between the zap and the touch */

static void test_zap_after_fault(void)
{
	static char dst[PG];
	const int target = NPAGES - 2;	/* an even page, late in the window */
	int missed = 0;
	size_t left;
	double t = now(), t0;

	set_case("zap right after a served fault", 60);
	for (int i = 0; i < ZAF_ITERS; i++) {
		/* Odd pages present, even pages not, all in the cache. */
		CHECK_EQ(pcache_mlock(view, NPAGES * PG), 0);
		for (int p = 0; p < NPAGES; p += 2)
			CHECK_EQ(pcache_madvise(view + p * PG, PG, MADV_DONTNEED), 0);
		touch(view);	/* served: page 0, then fault-around of 2, 4, 6 */
		CHECK_EQ(pcache_madvise(view + target * PG, PG, MADV_DONTNEED), 0);
		/* Nobody else touches the view: the page must stay unmapped. */
		t0 = now();
		while (now() - t0 < ZAF_PAUSE)
			;
		left = copy_from_user_nofault(dst, view + target * PG, 64);
		if (left == 64) {
			refused_expect++;
			refused_copies++;
		} else {
			missed++;
		}
	}
	t = now() - t;
	refused_check("zap right after a served fault");
	CHECK(missed == 0, "pcache_madvise(MADV_DONTNEED) did not make the next "
	      "touch fault in %d of %d tries: the handler was still installing "
	      "the fault-around of the previous fault (which had already woken "
	      "its thread) and mapped the zapped page again", missed, ZAF_ITERS);
	printf("zap after a served fault: %d of %d zapped pages were mapped again "
	       "by a late fault-around (%.0f us per try)\n", missed, ZAF_ITERS,
	       t * 1e6 / ZAF_ITERS);
}

/* ------------------------------------------------------------------ */
/* Other threads                                                       */
/* ------------------------------------------------------------------ */

struct nf_thread {
	char *view;		/* this thread's own file: fault-around of */
	int fd;			/* another thread's fault cannot map our P */
	int page;		/* this thread's P */
	int iters;
	int errors;
};

static pthread_barrier_t nf_barrier;

static void *nofault_thread(void *arg)
{
	struct nf_thread *t = arg;
	char dst[2 * PG];

	pthread_barrier_wait(&nf_barrier);
	for (int i = 0; i < t->iters; i++) {
		size_t off = (size_t)(i * 97 + t->page * 13) % PG;
		const char *src = t->view + (t->page - 1) * PG + off;
		size_t n = 2 * PG - off, left;

		touch(t->view + (t->page - 1) * PG);
		/* As in refused_case(); mlock here also races the others' copies. */
		if (pcache_mlock(t->view + (t->page - 1) * PG, PG) ||
		    pcache_madvise(t->view + t->page * PG, PG, MADV_DONTNEED))
			t->errors++;
		left = copy_from_user_nofault(dst, src, n);
		if (left != n - (PG - off) ||
		    memcmp(dst, file_ref + (t->page - 1) * PG + off, PG - off)) {
			if (t->errors++ < 3)
				fprintf(stderr, "FAIL: thread page %d off %zu: left %zu, "
					"want %zu\n", t->page, off, left, n - (PG - off));
		}
		left = copy_from_user(dst, src, n);
		if (left || memcmp(dst, file_ref + (t->page - 1) * PG + off, n)) {
			if (t->errors++ < 3)
				fprintf(stderr, "FAIL: thread page %d off %zu: plain copy "
					"left %zu\n", t->page, off, left);
		}
	}
	return NULL;
}

static void test_threads(void)
{
	struct nf_thread t[3];
	pthread_t th[3];
	uint64_t want = 0;
	char name[16];
	double t0;
	int i;

	set_case("no-fault copies in other threads", 60);
	for (i = 0; i < (int)ARRAY_SIZE(t); i++) {
		snprintf(name, sizeof(name), "nf%d", i);
		t[i] = (struct nf_thread){ .page = 1 + 3 * i, .iters = 300 };
		t[i].fd = pcache_open(pc, name, O_RDWR | O_CREAT, 0644);
		CHECK(t[i].fd >= 0, "open %s", name);
		CHECK_EQ(pcache_pwrite(t[i].fd, file_ref, sizeof(file_ref), 0),
			 sizeof(file_ref));
		t[i].view = pcache_mmap(t[i].fd, NPAGES * PG, PROT_READ, 0);
		if (PCACHE_IS_ERR(t[i].view)) {
			CHECK(0, "view of %s", name);
			exit(test_exit());
		}
	}
	pthread_barrier_init(&nf_barrier, NULL, ARRAY_SIZE(t));
	t0 = now();
	for (i = 0; i < (int)ARRAY_SIZE(t); i++) {
		want += (uint64_t)t[i].iters;
		pthread_create(&th[i], NULL, nofault_thread, &t[i]);
	}
	for (i = 0; i < (int)ARRAY_SIZE(t); i++) {
		pthread_join(th[i], NULL);
		CHECK(t[i].errors == 0, "thread %d: %d errors", i, t[i].errors);
	}
	t0 = now() - t0;
	pthread_barrier_destroy(&nf_barrier);
	refused_expect += want;
	refused_copies += (int)want;
	refused_check("the threads' copies");
	for (i = 0; i < (int)ARRAY_SIZE(t); i++) {
		CHECK_EQ(pcache_munmap(t[i].view, NPAGES * PG), 0);
		CHECK_EQ(pcache_close(t[i].fd), 0);
	}
	printf("threads: %d threads at once x %d refused copies each, "
	       "%.1f us per zap + refused + served copy\n",
	       (int)ARRAY_SIZE(t), t[0].iters, t0 * 1e6 / (double)want);
}

int main(void)
{
	struct pcache_config cfg;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	watchdog_start();
	set_case("setup", 30);
	pcache_config_init(&cfg);
	rc = pcache_create(&cfg, &pc);
	if (rc) {
		fprintf(stderr, "pcache_create: %s\n", pcache_strerror(rc));
		return 1;
	}
	fd = pcache_open(pc, "nofault", O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0, "open: %d", fd);
	pattern_fill(file_ref, sizeof(file_ref), TAG_FILE, 0);
	pattern_fill(dst_ref, sizeof(dst_ref), TAG_DST, 0);
	CHECK_EQ(pcache_pwrite(fd, file_ref, sizeof(file_ref), 0), sizeof(file_ref));
	view = pcache_mmap(fd, NPAGES * PG, PROT_READ, 0);
	if (PCACHE_IS_ERR(view)) {
		if (PCACHE_PTR_ERR(view) == -EOPNOTSUPP)
			TEST_SKIP("pcache_mmap: -EOPNOTSUPP (userfaultfd unavailable)");
		fprintf(stderr, "FAIL: pcache_mmap: %s\n",
			pcache_strerror(PCACHE_PTR_ERR(view)));
		return 1;
	}
	wview = pcache_mmap(fd, NPAGES * PG, PROT_READ | PROT_WRITE, 0);
	CHECK(!PCACHE_IS_ERR(wview), "read-write view");
	if (PCACHE_IS_ERR(wview))
		return test_exit();

	set_case("every offset, read-only view", 60);
	test_every_offset(view, "read-only view");
	set_case("every offset, read-write view", 60);
	test_every_offset(wview, "read-write view");
	test_start_in_missing();
	test_holes();
	test_not_refused();
	test_threads();
	test_zap_after_fault();

	{
		struct timespec ts = { 0, 20000000 };

		nanosleep(&ts, NULL);	/* let a late duplicate land */
		refused_check("the end");
	}
	printf("view_refused %llu for %d refused copies (%d counted twice: the "
	       "fault was reported again before the refusal landed); view_faults "
	       "%llu; view_refused was behind when the copy returned in %d of %d "
	       "checks\n", (unsigned long long)stats().view_refused,
	       refused_copies, refused_dups,
	       (unsigned long long)stats().view_faults, refused_lags,
	       refused_checks);
	set_case("teardown", 30);
	CHECK_EQ(pcache_munmap(view, NPAGES * PG), 0);
	CHECK_EQ(pcache_munmap(wview, NPAGES * PG), 0);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	alarm(0);
	return test_exit();
}
