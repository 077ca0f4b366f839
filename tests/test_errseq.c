/*
 * test_errseq.c - report each writeback error once to each observer
 * (src/base/errseq.h, after the kernel's lib/errseq.c).
 *
 *  (a) the semantics, step by step: a fresh errseq samples as 0; an error is
 *      reported once to each observer; an observer that samples after an
 *      unseen error still gets it (errseq_sample returns 0 then); once seen,
 *      a new observer does not; a later error reaches everyone again;
 *      errseq_check does not advance; 0, positive and out-of-range errors
 *      are ignored.
 *  (b) setters and checkers on one errseq from several threads: every
 *      report is an errno somebody set, and once the setters stop, each
 *      checker gets one final error exactly once (ThreadSanitizer clean).
 *  (c) SEEN means somebody was told: one checker against two setters; the
 *      checker must never leave an error marked seen that it did not report
 *      (a race detector: it passes when the interleaving does not occur).
 *  (d) end to end: mapping_set_error() on a cached file, then
 *      pcache_fsync() on its descriptors: -EIO once per descriptor, then 0;
 *      a descriptor opened after the error but before anyone saw it gets it
 *      too (the PostgreSQL fsync lesson); one opened after it was seen does
 *      not.  The memory backend never fails writeback, so the error is
 *      planted through the internal API.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "base/errseq.h"
#include "fs/fs.h"
#include "mm/page.h"
#include "harness.h"

static atomic_int thread_failures;

#define TCHECK(cond, ...) do {						\
	if (!(cond) && atomic_fetch_add(&thread_failures, 1) < 20) {	\
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

/* ---- (a) semantics ---- */

static void test_semantics(void)
{
	errseq_t eseq = 0, a, b, c, d, e;

	/* Fresh: nothing to report. */
	a = errseq_sample(&eseq);
	CHECK_EQ(a, 0);
	CHECK_EQ(errseq_check(&eseq, a), 0);
	CHECK_EQ(errseq_check_and_advance(&eseq, &a), 0);
	CHECK_EQ(a, 0);
	b = errseq_sample(&eseq);

	/* Ignored values change nothing. */
	errseq_set(&eseq, 0);
	errseq_set(&eseq, EIO);
	errseq_set(&eseq, -5000);	/* beyond MAX_ERRNO */
	CHECK_EQ(eseq, 0);
	CHECK_EQ(errseq_check(&eseq, a), 0);

	/* First error: each of two observers gets it once. */
	errseq_set(&eseq, -EIO);
	CHECK_EQ(errseq_check(&eseq, a), -EIO);
	CHECK_EQ(errseq_check(&eseq, a), -EIO);		/* check does not advance */
	CHECK_EQ(errseq_check(&eseq, b), -EIO);

	/* A new observer sampling the unseen error still gets it. */
	c = errseq_sample(&eseq);
	CHECK_EQ(c, 0);
	CHECK_EQ(errseq_check(&eseq, c), -EIO);

	CHECK_EQ(errseq_check_and_advance(&eseq, &a), -EIO);
	CHECK_EQ(errseq_check_and_advance(&eseq, &a), 0);
	CHECK_EQ(errseq_check(&eseq, a), 0);
	CHECK_EQ(errseq_check_and_advance(&eseq, &b), -EIO);
	CHECK_EQ(errseq_check_and_advance(&eseq, &b), 0);
	CHECK_EQ(errseq_check_and_advance(&eseq, &c), -EIO);
	CHECK_EQ(errseq_check_and_advance(&eseq, &c), 0);

	/* Once seen, a new observer does not get it. */
	d = errseq_sample(&eseq);
	CHECK(d != 0, "sample of a seen error is 0");
	CHECK_EQ(errseq_check(&eseq, d), 0);
	CHECK_EQ(errseq_check_and_advance(&eseq, &d), 0);

	/* The same errno again after it was seen is a new error for everyone. */
	errseq_set(&eseq, -EIO);
	e = errseq_sample(&eseq);
	CHECK_EQ(e, 0);
	CHECK_EQ(errseq_check(&eseq, a), -EIO);
	CHECK_EQ(errseq_check(&eseq, d), -EIO);
	CHECK_EQ(errseq_check_and_advance(&eseq, &a), -EIO);
	CHECK_EQ(errseq_check_and_advance(&eseq, &b), -EIO);
	CHECK_EQ(errseq_check_and_advance(&eseq, &c), -EIO);
	CHECK_EQ(errseq_check_and_advance(&eseq, &d), -EIO);
	CHECK_EQ(errseq_check_and_advance(&eseq, &e), -EIO);
	CHECK_EQ(errseq_check_and_advance(&eseq, &a), 0);
	CHECK_EQ(errseq_check_and_advance(&eseq, &d), 0);
	CHECK_EQ(errseq_check_and_advance(&eseq, &e), 0);

	/*
	 * Two errors before anybody looked: one report, of the latest errno
	 * (the kernel keeps only the last one).
	 */
	errseq_set(&eseq, -ENOSPC);
	errseq_set(&eseq, -EDQUOT);
	CHECK_EQ(errseq_check(&eseq, a), -EDQUOT);
	CHECK_EQ(errseq_check_and_advance(&eseq, &a), -EDQUOT);
	CHECK_EQ(errseq_check_and_advance(&eseq, &a), 0);
	CHECK_EQ(errseq_check_and_advance(&eseq, &b), -EDQUOT);
	CHECK_EQ(errseq_check_and_advance(&eseq, &b), 0);

	/* A different errno after it was seen reaches everyone too. */
	errseq_set(&eseq, -ENOSPC);
	CHECK_EQ(errseq_check_and_advance(&eseq, &a), -ENOSPC);
	CHECK_EQ(errseq_check_and_advance(&eseq, &b), -ENOSPC);
	CHECK_EQ(errseq_check_and_advance(&eseq, &c), -ENOSPC);
	CHECK_EQ(errseq_check_and_advance(&eseq, &e), -ENOSPC);
	CHECK_EQ(errseq_check_and_advance(&eseq, &c), 0);

	/* The largest errno fits. */
	errseq_set(&eseq, -4095);
	CHECK_EQ(errseq_check_and_advance(&eseq, &a), -4095);
	CHECK_EQ(errseq_check_and_advance(&eseq, &a), 0);

	/* Many errors in a row (counter increments): each reported once. */
	for (int i = 0; i < 100000; i++) {
		int err = i & 1 ? -EIO : -ENOSPC;

		errseq_set(&eseq, err);
		if (errseq_check_and_advance(&eseq, &a) != err ||
		    errseq_check_and_advance(&eseq, &a) != 0) {
			CHECK(0, "round %d of set/check lost or repeated %d", i, err);
			break;
		}
	}
	printf("semantics: ok\n");
}

/* ---- (b) concurrent setters and checkers ---- */

#define SETTERS		2
#define CHECKERS	3
#ifdef __SANITIZE_THREAD__
#define SET_ITERS	10000
#else
#define SET_ITERS	50000
#endif

static errseq_t shared_eseq;
static atomic_int setters_running;
static atomic_int checkers_done_final;
static atomic_bool final_set;

static const int set_errs[SETTERS] = { -EIO, -ENOSPC };
#define FINAL_ERR	(-EDQUOT)

static void *setter_fn(void *arg)
{
	int err = set_errs[(intptr_t)arg];

	for (int i = 0; i < SET_ITERS; i++) {
		errseq_set(&shared_eseq, err);
		if ((i & 255) == 0)
			sched_yield();
	}
	atomic_fetch_sub(&setters_running, 1);
	return NULL;
}

static void *checker_fn(void *arg)
{
	errseq_t since = errseq_sample(&shared_eseq);
	long reports = 0, iters = 0;
	int err;

	while (atomic_load(&setters_running)) {
		err = errseq_check_and_advance(&shared_eseq, &since);
		TCHECK(err == 0 || err == set_errs[0] || err == set_errs[1],
		       "checker got %d, which nobody set", err);
		if (err)
			reports++;
		err = errseq_check(&shared_eseq, since);
		TCHECK(err == 0 || err == set_errs[0] || err == set_errs[1],
		       "errseq_check got %d, which nobody set", err);
		if ((++iters & 63) == 0)
			sched_yield();	/* leave the setters some CPU */
	}
	/* Drain whatever the setters left, then wait for the final error. */
	errseq_check_and_advance(&shared_eseq, &since);
	TCHECK(errseq_check_and_advance(&shared_eseq, &since) == 0,
	       "an error reported twice after the setters stopped");
	atomic_fetch_add(&checkers_done_final, 1);
	while (!atomic_load(&final_set))
		sched_yield();
	err = errseq_check_and_advance(&shared_eseq, &since);
	TCHECK(err == FINAL_ERR, "final error: got %d, want %d", err, FINAL_ERR);
	err = errseq_check_and_advance(&shared_eseq, &since);
	TCHECK(err == 0, "final error reported twice: got %d", err);
	return (void *)reports;
}

static void test_concurrent(void)
{
	pthread_t s[SETTERS], c[CHECKERS];
	long total = 0;

	atomic_store(&setters_running, SETTERS);
	for (intptr_t i = 0; i < CHECKERS; i++)
		pthread_create(&c[i], NULL, checker_fn, NULL);
	for (intptr_t i = 0; i < SETTERS; i++)
		pthread_create(&s[i], NULL, setter_fn, (void *)i);
	for (int i = 0; i < SETTERS; i++)
		pthread_join(s[i], NULL);
	while (atomic_load(&checkers_done_final) < CHECKERS)
		sched_yield();
	errseq_set(&shared_eseq, FINAL_ERR);
	atomic_store(&final_set, true);
	for (int i = 0; i < CHECKERS; i++) {
		void *r;

		pthread_join(c[i], &r);
		total += (long)r;
	}
	/* The final error was seen: a new observer does not get it. */
	errseq_t late = errseq_sample(&shared_eseq);
	CHECK_EQ(errseq_check(&shared_eseq, late), 0);
	printf("concurrent: %d setters x %d, %d checkers, %ld reports\n",
	       SETTERS, SET_ITERS, CHECKERS, total);
}

/*
 * (c) SEEN means "somebody was told".  With a single checker, only the checker
 * ever marks an error seen (errseq_set clears SEEN), so after each of its
 * errseq_check_and_advance() calls, a seen value (errseq_sample() != 0)
 * must be the very value it was told about: its new since.  Otherwise an
 * error was marked seen that nobody was told about, and an observer that
 * opens now samples it as seen and never gets it (the PostgreSQL case).
 * The kernel's algorithm only ever marks the exact value it read
 * (cmpxchg(old, old | SEEN)); a blind fetch_or(SEEN) after a failed
 * cmpxchg marks whatever a racing setter stored in between.
 */
static errseq_t race_eseq;
static atomic_bool race_stop;

static void *race_setter_fn(void *arg)
{
	long i = (intptr_t)arg;

	/* Alternate errnos so that every set changes the word. */
	while (!atomic_load_explicit(&race_stop, memory_order_relaxed))
		errseq_set(&race_eseq, (i++ & 1) ? -EIO : -ENOSPC);
	return NULL;
}

static void test_seen_means_told(void)
{
	pthread_t s[2];
	errseq_t since = 0, v = 0;
	long iters = 0, bad = 0;
	struct timespec t0, t1;

	for (intptr_t i = 0; i < 2; i++)
		pthread_create(&s[i], NULL, race_setter_fn, (void *)i);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int k = 0; k < 1000; k++) {
			iters++;
			errseq_check_and_advance(&race_eseq, &since);
			v = errseq_sample(&race_eseq);
			if (v && v != since) {
				bad++;
				break;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (!bad && (t1.tv_sec - t0.tv_sec) * 1000 +
		 (t1.tv_nsec - t0.tv_nsec) / 1000000 < 1000);
	atomic_store(&race_stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(s[i], NULL);
	CHECK(!bad, "after %ld checks: errseq_check_and_advance marked an error "
	      "seen that it did not report (word 0x%x seen, checker told about "
	      "0x%x): a new observer would never get it", iters, v, since);
	printf("seen means told: %ld checks against 2 setters%s\n", iters,
	       bad ? ", VIOLATED" : "");
}

/* ---- (d) end to end through fsync ---- */

static void plant_error(int fd, int err)
{
	struct file *file = fdget(fd);

	if (!file) {
		fprintf(stderr, "FAIL: fdget(%d) failed\n", fd);
		exit(1);
	}
	mapping_set_error(&file->f_inode->i_data, err);
	fdput(file);
}

static void test_fsync(void)
{
	struct pcache_config cfg;
	struct pcache *pc;
	char buf[10000];
	int fd1, fd2, fd3, fd4, fd5, rc;

	pcache_config_init(&cfg);
	rc = pcache_create(&cfg, &pc);
	if (rc) {
		fprintf(stderr, "FAIL: pcache_create: %d\n", rc);
		exit(1);
	}
	fd1 = pcache_open(pc, "f", O_CREAT | O_RDWR, 0644);
	fd2 = pcache_open(pc, "f", O_RDWR, 0);
	CHECK(fd1 > 0 && fd2 > 0, "open: %d %d", fd1, fd2);
	pattern_fill(buf, sizeof(buf), 1, 0);
	CHECK_EQ(pcache_pwrite(fd1, buf, sizeof(buf), 0), sizeof(buf));
	CHECK_EQ(pcache_fsync(fd1), 0);
	CHECK_EQ(pcache_fsync(fd2), 0);

	/* One error: each descriptor gets it once, a late opener too. */
	plant_error(fd1, -EIO);
	int late = pcache_open(pc, "f", O_RDONLY, 0);
	CHECK(late > 0, "open: %d", late);
	CHECK_EQ(pcache_fsync(fd1), -EIO);
	CHECK_EQ(pcache_fsync(fd1), 0);
	CHECK_EQ(pcache_fdatasync(fd2), -EIO);
	CHECK_EQ(pcache_fsync(fd2), 0);
	CHECK_EQ(pcache_fdatasync(fd1), 0);
	CHECK_EQ(pcache_fsync(late), -EIO);
	CHECK_EQ(pcache_fsync(late), 0);
	CHECK_EQ(pcache_close(late), 0);

	/* Seen: a descriptor opened now does not get it. */
	fd3 = pcache_open(pc, "f", O_RDONLY, 0);
	CHECK(fd3 > 0, "open: %d", fd3);
	CHECK_EQ(pcache_fsync(fd3), 0);

	/*
	 * A second error, and a descriptor opened before anybody fsynced:
	 * it gets the error too (PostgreSQL closes and reopens before fsync).
	 */
	plant_error(fd2, -EIO);
	fd4 = pcache_open(pc, "f", O_WRONLY, 0);
	CHECK(fd4 > 0, "open: %d", fd4);
	CHECK_EQ(pcache_fsync(fd4), -EIO);
	CHECK_EQ(pcache_fsync(fd4), 0);
	/* ... and its fsync did not use it up for the others. */
	CHECK_EQ(pcache_fsync(fd1), -EIO);
	CHECK_EQ(pcache_fsync(fd2), -EIO);
	CHECK_EQ(pcache_fsync(fd3), -EIO);
	CHECK_EQ(pcache_fsync(fd1), 0);
	CHECK_EQ(pcache_fsync(fd2), 0);
	CHECK_EQ(pcache_fsync(fd3), 0);

	/* Seen again: a later descriptor gets nothing. */
	fd5 = pcache_open(pc, "f", O_RDWR, 0);
	CHECK(fd5 > 0, "open: %d", fd5);
	CHECK_EQ(pcache_fsync(fd5), 0);

	/* An error raised while dirty data is written back is reported too. */
	CHECK_EQ(pcache_pwrite(fd5, buf, 100, 0), 100);
	plant_error(fd5, -ENOSPC);
	CHECK_EQ(pcache_fsync(fd5), -ENOSPC);
	CHECK_EQ(pcache_fsync(fd5), 0);
	/* The data is intact: errors are reported, not made up. */
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(pcache_pread(fd1, buf, sizeof(buf), 0), sizeof(buf));
	CHECK_EQ(pattern_check(buf, sizeof(buf), 1, 0), -1);

	/* A closed-and-reopened file: a fresh sample, reported error seen. */
	CHECK_EQ(pcache_close(fd1), 0);
	fd1 = pcache_open(pc, "f", O_RDWR, 0);
	CHECK(fd1 > 0, "open: %d", fd1);
	CHECK_EQ(pcache_fsync(fd1), 0);

	/* Another file of the same cache is not affected. */
	int g = pcache_open(pc, "g", O_CREAT | O_RDWR, 0644);
	CHECK(g > 0, "open g: %d", g);
	CHECK_EQ(pcache_fsync(g), 0);

	CHECK_EQ(pcache_close(g), 0);
	CHECK_EQ(pcache_close(fd1), 0);
	CHECK_EQ(pcache_close(fd2), 0);
	CHECK_EQ(pcache_close(fd3), 0);
	CHECK_EQ(pcache_close(fd4), 0);
	CHECK_EQ(pcache_close(fd5), 0);
	rc = pcache_destroy(pc);
	/*
	 * destroy reports any error the file ever had (errseq_check against 0),
	 * even one every descriptor has already been told about.
	 */
	CHECK(rc == 0 || rc == -ENOSPC, "pcache_destroy: %d", rc);
	printf("fsync end to end: ok (destroy returned %d)\n", rc);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_semantics();
	test_concurrent();
	test_seen_means_told();
	test_fsync();
	test_failures += atomic_load(&thread_failures);
	return test_exit();
}
