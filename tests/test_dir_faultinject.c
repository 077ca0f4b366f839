/*
 * test_dir_faultinject.c - the "dir" backend's system calls fail, and
 * nothing that was acknowledged is lost.
 *
 *  (a) a random sequence of operations (pwrite, pwritev, pread, ftruncate,
 *      fsync, fdatasync, on two descriptors of one file that was on disk
 *      before the cache opened it) runs while the Nth pread, pwrite/pwritev,
 *      fsync/fdatasync or allocating fallocate fails with EIO or ENOSPC -
 *      once, or from the Nth call on - for N swept over 1..SWEEP_N, each run
 *      with its own block size, write path, and allocation (exact, or
 *      1 MiB reservations).  After every operation:
 *        - the error surfaced correctly: a write or read whose backend call
 *          failed returns the injected -errno or a short count (never a
 *          full count on the write_begin path unless every failed call was
 *          a chunk reservation, which the exact allocation of the write's
 *          own blocks follows; never another errno); one
 *          with no failure returns the full count; ftruncate returns 0;
 *          fsync returns the injected -errno if its writes or its sync
 *          failed, or if a writeback error happened since this
 *          descriptor's last fsync (errseq: once per open file), else 0;
 *        - the file read through pcache equals a model, byte for byte (the
 *          injection paused for the check).
 *      Then the injection stops and a final fsync on each descriptor must
 *      report what that descriptor has not seen and then succeed; the
 *      backing file must hold every byte an fsync acknowledged and not
 *      overwritten since (checked first, on its own), and in fact the whole
 *      model (a failed page write is retried, never dropped); no block may
 *      stay allocated past EOF (FIEMAP); a new cache reads the same bytes.
 *      The flusher is idle here (long expiry, default dirty limit), so a
 *      run is a function of its seed.
 *  (b) the flusher's Nth backing write fails (no fsync running): the data
 *      stays dirty and is written by a later pass, and the next fsync
 *      reports the error once.
 *
 * The seed is printed; PCACHE_TEST_SEED=<seed> replays a run, and
 * PCACHE_TEST_VERBOSE=1 prints every operation.
 */
#include <pthread.h>

#include "dir_harness.h"

#define SWEEP_N		12
#define NR_OPS		40
#define MAX_PAGES	48		/* files stay below this, mostly */
#define MAX_FILE	(MAX_PAGES * PAGE + 4 * PAGE)
#define MAX_IO		(3 * PAGE + 512)

static const unsigned int block_sizes[] = { 512, 1024, 2048, 4096 };
static bool verbose;

/* ---- a replayable generator (splitmix64) ---- */

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static long rnd(uint64_t *s, long n)
{
	return (long)(rnd_next(s) % (uint64_t)n);
}

/* An offset that likes block and page boundaries. */
static long rnd_off(uint64_t *s, unsigned int bs, long max)
{
	long page = rnd(s, max / PAGE), in;

	switch (rnd(s, 4)) {
	case 0:  in = 0; break;
	case 1:  in = rnd(s, PAGE / bs) * (long)bs; break;
	case 2:  in = rnd(s, PAGE / bs) * (long)bs + rnd(s, 7) - 3; break;
	default: in = rnd(s, PAGE); break;
	}
	in = in < 0 ? 0 : in;
	return page * PAGE + in;
}

static long rnd_len(uint64_t *s, unsigned int bs)
{
	switch (rnd(s, 4)) {
	case 0:  return 1 + rnd(s, bs);
	case 1:  return (1 + rnd(s, 2 * PAGE / bs)) * (long)bs;
	case 2:  return PAGE;
	default: return 1 + rnd(s, MAX_IO);
	}
}

/* ---- one run ---- */

struct run {
	char ctx[128];
	enum inj_kind kind;
	int err;
	long n;
	bool sticky;
	unsigned int bs;
	int pw;
	bool resv;		/* 1 MiB reservations, or exact allocation */
	uint64_t rng;

	struct pcache *pc;
	int fd[2];
	struct model m;
	unsigned char *ack;	/* byte i's current value was acknowledged by an fsync */
	long err_gen;		/* writeback errors recorded so far (errseq sets) */
	long seen[2];		/* err_gen when each descriptor last checked */
	long fired;		/* injected failures in this run */
	int step;
};

static void pause_inj(bool on)
{
	STORE(inj_paused, on ? 1 : 0);
}

/*
 * The file through pcache against the model, injection paused: the size,
 * and the bytes of [off, off+len) - or all of them if len < 0.  (Reading
 * caches pages, and pages already cached are read without a pread: whole
 * checks are kept for every VERIFY_ALL steps so that preads still happen.)
 */
#define VERIFY_ALL	10

static void verify(struct run *r, long off, long len)
{
	unsigned char buf[MAX_IO];
	char ctx[200];
	struct stat st;

	snprintf(ctx, sizeof(ctx), "%s, after step %d", r->ctx, r->step);
	pause_inj(true);
	if (len < 0) {
		check_cached(r->fd[0], &r->m, ctx);
	} else if (len > 0) {
		long want = off >= (long)r->m.size ? 0 :
			    (off + len > (long)r->m.size ? (long)r->m.size - off : len);
		ssize_t got = pcache_pread(r->fd[0], buf, (size_t)len, off);

		CHECK(got == want, "%s: pread(%ld+%ld) gave %zd, want %ld", ctx, off, len,
		      got, want);
		if (got > 0)
			model_cmp(&r->m, buf, (size_t)got, (size_t)off, ctx);
	}
	CHECK_EQ(pcache_fstat(r->fd[1], &st), 0);
	CHECK(st.st_size == (off_t)r->m.size, "%s: size %lld, want %zu", ctx,
	      (long long)st.st_size, r->m.size);
	pause_inj(false);
}

static void mark_changed(struct run *r, size_t from, size_t to)
{
	if (to > from)
		memset(r->ack + from, 0, to - from);
}

static long fired_since(struct run *r, enum inj_kind k, long before)
{
	return LOAD(inj_failed[k]) - before;
}

/* What a write or read did, given what was injected during it. */
static void check_io_result(struct run *r, const char *what, ssize_t got, long want,
			    long fired, bool full_ok_after_failure)
{
	if (!fired) {
		CHECK(got == want, "%s, step %d: %s returned %zd with no failure injected, "
		      "want %ld", r->ctx, r->step, what, got, want);
		return;
	}
	if (got < 0)
		CHECK(got == -r->err, "%s, step %d: %s returned %zd (%s), want the injected "
		      "%d or a short count", r->ctx, r->step, what, got,
		      pcache_strerror((int)got), -r->err);
	else if (got == want)
		CHECK(full_ok_after_failure, "%s, step %d: %s returned the full count %ld "
		      "although its backend call failed", r->ctx, r->step, what, want);
	else
		CHECK(got < want, "%s, step %d: %s returned %zd, more than %ld", r->ctx,
		      r->step, what, got, want);
}

static void op_write(struct run *r, int k, bool vec)
{
	long off = rnd_off(&r->rng, r->bs, MAX_PAGES * PAGE);
	long len = rnd_len(&r->rng, r->bs);
	unsigned char buf[MAX_IO];
	struct iovec iov[4];
	int nseg = vec ? 2 + (int)rnd(&r->rng, 3) : 1;
	long before_rd = LOAD(inj_failed[INJ_PREAD]), before_al = LOAD(inj_failed[INJ_ALLOC]);
	long before_resv = LOAD(inj_failed_resv);
	long fired, done = 0;
	bool absorbed;
	ssize_t got;
	char what[64];

	pattern_fill(buf, (size_t)len, (unsigned)r->step + 1, (uint64_t)off);
	for (int i = 0; i < nseg; i++) {
		long seg = i == nseg - 1 ? len - done : rnd(&r->rng, len - done + 1);

		iov[i] = (struct iovec){ buf + done, (size_t)seg };
		done += seg;
	}
	got = pcache_pwritev(r->fd[k], iov, nseg, off);
	snprintf(what, sizeof(what), "pwritev(fd%d, %d segs, %ld+%ld)", k, nseg, off, len);
	if (verbose)
		printf("  %d: %s = %zd\n", r->step, what, got);
	fired = fired_since(r, INJ_PREAD, before_rd) + fired_since(r, INJ_ALLOC, before_al);
	r->fired += fired;
	/*
	 * perform_write may absorb a one-time failure: its batch allocation
	 * falls back to the page loop, and a batch retries a page whose read
	 * failed.  The write_begin loop stops at the first failure - except
	 * that a failed chunk reservation is followed by the exact allocation
	 * of the page's blocks, and only that one's failure is the write's.
	 */
	absorbed = r->pw || (fired_since(r, INJ_PREAD, before_rd) == 0 &&
			     fired_since(r, INJ_ALLOC, before_al) ==
			     LOAD(inj_failed_resv) - before_resv);
	check_io_result(r, what, got, len, fired, absorbed);
	if (got > 0) {
		model_write(&r->m, buf, (size_t)got, (size_t)off);
		mark_changed(r, (size_t)off, (size_t)off + (size_t)got);
	}
	/* The bytes written, or that nothing of a failed write shows. */
	verify(r, off, len);
}

static void op_read(struct run *r, int k)
{
	long off = rnd_off(&r->rng, r->bs, MAX_PAGES * PAGE);
	long len = rnd_len(&r->rng, r->bs);
	long want = off >= (long)r->m.size ? 0 :
		    (off + len > (long)r->m.size ? (long)r->m.size - off : len);
	long before = LOAD(inj_failed[INJ_PREAD]), fired;
	unsigned char buf[MAX_IO];
	char what[64];
	ssize_t got;

	got = pcache_pread(r->fd[k], buf, (size_t)len, off);
	snprintf(what, sizeof(what), "pread(fd%d, %ld+%ld)", k, off, len);
	if (verbose)
		printf("  %d: %s = %zd\n", r->step, what, got);
	fired = fired_since(r, INJ_PREAD, before);
	r->fired += fired;
	check_io_result(r, what, got, want, fired, false);
	if (got > 0) {
		char ctx[256];

		snprintf(ctx, sizeof(ctx), "%s, step %d: %s", r->ctx, r->step, what);
		model_cmp(&r->m, buf, (size_t)got, (size_t)off, ctx);
	}
}

static void op_truncate(struct run *r, int k)
{
	long len = rnd(&r->rng, 3) ? rnd_off(&r->rng, r->bs, MAX_PAGES * PAGE) : 0;
	long old = (long)r->m.size;
	int rc = pcache_ftruncate(r->fd[k], len);

	if (verbose)
		printf("  %d: ftruncate(fd%d, %ld) = %d\n", r->step, k, len, rc);
	CHECK(rc == 0, "%s, step %d: ftruncate(%ld) returned %d (%s)", r->ctx, r->step,
	      len, rc, pcache_strerror(rc));
	if (rc == 0) {
		model_truncate(&r->m, (size_t)len);
		/* Truncated bytes change (to gone, or zeroes when grown again). */
		mark_changed(r, (size_t)(len < old ? len : old), MAX_FILE);
	}
	/* Around the old and new end: zeroes past it, never old bytes. */
	verify(r, (len < old ? len : old) / PAGE * PAGE, 2 * PAGE);
}

static void op_sync(struct run *r, int k, bool datasync)
{
	long before_wr = LOAD(inj_failed[INJ_WRITE]), before_sy = LOAD(inj_failed[INJ_SYNC]);
	long wr, sy;
	bool unseen = r->err_gen > r->seen[k];
	int rc = datasync ? pcache_fdatasync(r->fd[k]) : pcache_fsync(r->fd[k]);

	wr = fired_since(r, INJ_WRITE, before_wr);
	sy = fired_since(r, INJ_SYNC, before_sy);
	r->fired += wr + sy;
	if (verbose)
		printf("  %d: %s(fd%d) = %d (write failures %ld, sync failures %ld, "
		       "unseen error %d)\n", r->step, datasync ? "fdatasync" : "fsync", k, rc,
		       wr, sy, unseen);
	/* Each failed page write is recorded in the mapping's errseq. */
	r->err_gen += wr;
	if (wr || sy || unseen)
		CHECK(rc == -r->err, "%s, step %d: %s(fd%d) returned %d; want %d (%ld write "
		      "failures, %ld sync failures in it, unseen earlier error: %s)", r->ctx,
		      r->step, datasync ? "fdatasync" : "fsync", k, rc, -r->err, wr, sy,
		      unseen ? "yes" : "no");
	else
		CHECK(rc == 0, "%s, step %d: %s(fd%d) returned %d (%s) with nothing failing",
		      r->ctx, r->step, datasync ? "fdatasync" : "fsync", k, rc,
		      pcache_strerror(rc));
	r->seen[k] = r->err_gen;
	if (rc == 0)
		memset(r->ack, 1, MAX_FILE);
}

/* Every byte an fsync acknowledged, and then the whole model, on disk. */
static void check_durable(struct run *r)
{
	unsigned char *disk = malloc(MAX_FILE + PAGE);
	ssize_t n = real_read_all("f", disk, MAX_FILE + PAGE);
	long ext;

	CHECK(n == (ssize_t)r->m.size, "%s: after the final fsync the backing file holds "
	      "%zd bytes, want %zu", r->ctx, n, r->m.size);
	for (size_t i = 0; i < r->m.size; i++) {
		unsigned char got = (ssize_t)i < n ? disk[i] : 0;

		if (r->ack[i] && got != r->m.data[i]) {
			CHECK(0, "%s: fsynced byte at %zu lost: backing file has 0x%02x, want "
			      "0x%02x", r->ctx, i, got, r->m.data[i]);
			break;
		}
	}
	if (n > 0)
		model_cmp(&r->m, disk, (size_t)n, 0, r->ctx);
	ext = real_extents_from("f", round_up((long)r->m.size, fs_block));
	CHECK(ext == 0, "%s: %ld extents allocated past EOF (%zu) in the backing file",
	      r->ctx, ext, r->m.size);
	free(disk);
}

static struct pcache *run_cache(struct run *r)
{
	struct dir_cfg dc = { .block_size = r->bs, .perform_write = r->pw,
			      .dirty_expire_ms = 600000, .writeback_interval_ms = 600000,
			      .reserve = r->resv ? "1M" : "0" };

	return dir_cache(&dc);
}

/* Returns the number of failures injected. */
static long run_one(enum inj_kind kind, int err, long n, bool sticky, uint64_t seed,
		    unsigned int idx)
{
	static struct run r;
	long pre;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.err = err;
	r.n = n;
	r.sticky = sticky;
	r.rng = seed ^ (0x2545f4914f6cdd1dull * (idx + 1));
	r.bs = block_sizes[rnd(&r.rng, ARRAY_SIZE(block_sizes))];
	r.pw = (int)rnd(&r.rng, 2);
	r.resv = rnd(&r.rng, 2);
	snprintf(r.ctx, sizeof(r.ctx), "run %u: %s %s %s n=%ld, bs %u, pw %d, %s", idx,
		 inj_kind_name[kind], err == EIO ? "EIO" : "ENOSPC",
		 sticky ? "from" : "at", n, r.bs, r.pw, r.resv ? "reserving" : "exact");
	if (verbose)
		printf("%s\n", r.ctx);
	model_init(&r.m, MAX_FILE);
	r.ack = calloc(1, MAX_FILE);

	/* On disk before the cache: reads and partial writes must pread it. */
	rm_backing_files();
	pre = rnd(&r.rng, 40 * PAGE);
	{
		unsigned char *b = malloc((size_t)pre + 1);

		pattern_fill(b, (size_t)pre, 1000 + idx, 0);
		real_write("f", b, (size_t)pre, 0);
		model_write(&r.m, b, (size_t)pre, 0);
		memset(r.ack, 1, (size_t)pre);
		free(b);
	}
	r.pc = run_cache(&r);
	r.fd[0] = pcache_open(r.pc, "f", O_RDWR, 0);
	r.fd[1] = pcache_open(r.pc, "f", O_RDWR, 0);
	CHECK(r.fd[0] >= 0 && r.fd[1] >= 0, "%s: open: %d %d", r.ctx, r.fd[0], r.fd[1]);
	if (r.fd[0] < 0 || r.fd[1] < 0)
		exit(test_exit());

	inj_arm(kind, n, err, sticky);
	for (r.step = 0; r.step < NR_OPS; r.step++) {
		int k = (int)rnd(&r.rng, 2);
		long op = rnd(&r.rng, 100);

		if (op < 35)
			op_write(&r, k, false);
		else if (op < 50)
			op_write(&r, k, true);
		else if (op < 65)
			op_read(&r, k);
		else if (op < 75)
			op_truncate(&r, k);
		else
			op_sync(&r, k, op >= 90);
		if (op >= 75)
			verify(&r, 0, 0);	/* the size; the others checked bytes */
		if ((r.step + 1) % VERIFY_ALL == 0)
			verify(&r, 0, -1);
	}
	verify(&r, 0, -1);
	inj_arm(kind, 0, 0, false);

	/* No more failures: each descriptor hears what it has not, then 0. */
	for (int k = 0; k < 2; k++) {
		op_sync(&r, k, false);
		r.step++;
		op_sync(&r, k, false);
		r.step++;
	}
	check_durable(&r);
	CHECK_EQ(pcache_close(r.fd[1]), 0);
	CHECK_EQ(pcache_close(r.fd[0]), 0);
	CHECK_EQ(pcache_destroy(r.pc), 0);

	/* A new cache reads it back from the backing file. */
	r.pc = run_cache(&r);
	r.fd[0] = pcache_open(r.pc, "f", O_RDONLY, 0);
	CHECK(r.fd[0] >= 0, "%s: reopen: %d", r.ctx, r.fd[0]);
	if (r.fd[0] >= 0) {
		char ctx[160];

		snprintf(ctx, sizeof(ctx), "%s, new cache", r.ctx);
		check_cached(r.fd[0], &r.m, ctx);
		CHECK_EQ(pcache_close(r.fd[0]), 0);
	}
	CHECK_EQ(pcache_destroy(r.pc), 0);
	model_free(&r.m);
	free(r.ack);
	return r.fired;
}

/* ---- (b) the flusher's writes fail ---- */

#define FLUSH_RUNS	8	/* separate dirty runs: one pwritev each */

static void test_flusher_fails(long n, unsigned int bs)
{
	struct dir_cfg dc = { .block_size = bs, .dirty_expire_ms = 20,
			      .writeback_interval_ms = 10 };
	struct pcache *pc;
	struct pcache_stats st;
	struct model m;
	char ctx[64];
	uint64_t t0;
	int fd, rc;

	snprintf(ctx, sizeof(ctx), "flusher write %ld fails (bs %u)", n, bs);
	rm_backing_files();
	model_init(&m, (FLUSH_RUNS + 1) * 2 * PAGE);
	pc = dir_cache(&dc);
	fd = pcache_open(pc, "f", O_CREAT | O_RDWR, 0644);
	CHECK(fd >= 0, "%s: open: %d", ctx, fd);
	/* Armed before the writes: the flusher may start at once. */
	inj_arm(INJ_WRITE, n, EIO, false);
	for (int i = 0; i < FLUSH_RUNS; i++) {
		unsigned char b[700];
		long off = (long)i * 2 * PAGE + 100;

		pattern_fill(b, sizeof(b), (unsigned)i + 1, (uint64_t)off);
		CHECK_EQ(pcache_pwrite(fd, b, sizeof(b), off), sizeof(b));
		model_write(&m, b, sizeof(b), (size_t)off);
	}
	/* The flusher meets the failure, and a later pass writes it all. */
	t0 = now_ms();
	do {
		usleep(5000);
		st = stats_of(pc);
	} while ((st.pages_dirty || st.pages_writeback || !LOAD(inj_failed[INJ_WRITE])) &&
		 now_ms() - t0 < 5000);
	CHECK(LOAD(inj_failed[INJ_WRITE]) == 1, "%s: %ld failures injected, want 1",
	      ctx, LOAD(inj_failed[INJ_WRITE]));
	CHECK(st.writeback_errors >= 1, "%s: no writeback error counted", ctx);
	CHECK(st.pages_dirty == 0, "%s: %llu pages still dirty after 5 s: the failed "
	      "page was not retried", ctx, (unsigned long long)st.pages_dirty);
	/* No fsync yet: the flusher alone retried and wrote every byte. */
	check_backing("f", &m, ctx);
	inj_arm(INJ_WRITE, 0, 0, false);
	rc = pcache_fsync(fd);
	CHECK(rc == -EIO, "%s: the first fsync after the flusher's failure returned %d, "
	      "want -EIO", ctx, rc);
	CHECK_EQ(pcache_fsync(fd), 0);
	check_backing("f", &m, ctx);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	model_free(&m);
}

int main(void)
{
	static const int errs[] = { EIO, ENOSPC };
	const char *env = getenv("PCACHE_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) :
			((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	unsigned int idx = 0;
	uint64_t t0 = now_ms();

	setvbuf(stdout, NULL, _IOLBF, 0);
	verbose = getenv("PCACHE_TEST_VERBOSE") != NULL;
	/* io_uring writes bypass the system call table: nothing to fail. */
	unsetenv("PCACHE_DIR_IO");
	unsetenv("PCACHE_DIR_RESERVE");
	STORE(inj_resv_len, 1L << 20);	/* no exact allocation here is that long */
	backing_dir_make("pcache-test-dirfi");
	wrappers_install();
	printf("seed %llu (replay: PCACHE_TEST_SEED=%llu)\n", (unsigned long long)seed,
	       (unsigned long long)seed);

	for (int kind = 0; kind < INJ_NR; kind++) {
		for (size_t e = 0; e < ARRAY_SIZE(errs); e++) {
			long runs_fired = 0, total = 0;

			for (long n = 1; n <= SWEEP_N + 2; n++) {
				/* 1..SWEEP_N once; then from the 1st and the 4th on. */
				bool sticky = n > SWEEP_N;
				long at = !sticky ? n : (n == SWEEP_N + 1 ? 1 : 4);
				long f = run_one((enum inj_kind)kind, errs[e], at, sticky, seed, idx++);

				runs_fired += f > 0;
				total += f;
			}
			printf("%-15s %-6s: %2d runs (N = 1..%d once, from 1 and from 4 on), a "
			       "failure injected in %ld, %ld in all\n", inj_kind_name[kind],
			       errs[e] == EIO ? "EIO" : "ENOSPC", SWEEP_N + 2, SWEEP_N,
			       runs_fired, total);
			CHECK(runs_fired > 0, "%s %s: no run ever injected a failure",
			      inj_kind_name[kind], errs[e] == EIO ? "EIO" : "ENOSPC");
		}
	}
	for (long n = 1; n <= FLUSH_RUNS; n++)
		test_flusher_fails(n, block_sizes[n % ARRAY_SIZE(block_sizes)]);
	printf("flusher: its Nth backing write failing, N = 1..%d: retried, reported once "
	       "by the next fsync\n", FLUSH_RUNS);
	printf("%u random runs of %d operations in %llu ms\n", idx, NR_OPS,
	       (unsigned long long)(now_ms() - t0));

	wrappers_remove();
	backing_dir_remove();
	return test_exit();
}
