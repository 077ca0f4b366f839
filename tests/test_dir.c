/*
 * test_dir.c - the "dir" backend (src/backends/dir.c): real files under a
 * backing directory, blocks smaller than a page, writeback, errseq, dirty
 * throttling and reclaim.  Block sizes 512, 1024, 2048 and 4096, each with
 * the write_begin/write_end loop (perform_write = 0) and the backend's
 * perform_write (= 1).  What reached the backing files is read back with
 * plain libc and compared byte for byte with a model.
 *
 *  (a) round trip: a table of write shapes (in blocks, across block and
 *      page boundaries, past EOF leaving holes, multi-segment pwritev),
 *      compared through pcache, in the backing file after fsync, and
 *      through a new cache (cold reads).
 *  (b) sub-page read-modify-write on a file that is on disk but not
 *      cached: a write reads in exactly the blocks it covers only in
 *      part (the pread log: offsets and lengths, one pread per run of
 *      blocks in a page); a whole-block write reads nothing.  Reading the
 *      pages back then reads only the blocks the write did not touch (never
 *      over a dirty block), and every byte is right.
 *  (c) holes: a page in a hole reads as zeroes with no pread, before and
 *      after fsync and in a new cache; the hole stays a hole in the backing
 *      file (SEEK_DATA, FIEMAP); truncating down then up frees the blocks.
 *  (d) ENOSPC part way: allocations fail past a space limit (after
 *      allocating what fits, as a filesystem does), or from the Nth one on.
 *      The write returns the short count of the pages that fit, the size
 *      says so, the backing file has no block allocated past EOF after
 *      fsync (FIEMAP: SEEK_DATA cannot see fallocated blocks), and
 *      nothing stale appears when the file grows again.  Both with exact
 *      allocation (PCACHE_DIR_RESERVE=0) and with 1 MiB reservations: a
 *      space limit cuts the write at the same byte either way.
 *  (e) backend calls per MiB of an 8 MiB sequential write, both paths
 *      (printed): allocating exactly, perform_write must allocate less;
 *      with 1 MiB reservations both make one fallocate per MiB.
 *  (f) O_SYNC, O_DSYNC, pcache_fdatasync, pcache_fsync and pcache_msync
 *      (MS_SYNC) each reach the backing file's fsync or fdatasync exactly
 *      once, and the bytes are in the backing file when the call returns.
 *  (g) reclaim: a 2 MiB limit, a 16 MiB file written and read: the limit
 *      holds (sampled), pages are reclaimed, the data is right; a view's
 *      pages are zapped by reclaim and fault back in with the right bytes
 *      (stores through a writable view survive reclaim too).
 *  (h) dirty throttling: 256 KiB dirty limit, a backend that takes 1 ms per
 *      write call and 16 MB/s: writers are throttled and dirty pages stay
 *      under the limit
 *      (sampled); the flusher writes expired pages with no fsync; an fsync
 *      while the flusher's write of the pages is in flight waits for it.
 *  (i) errseq: EIO from the backing file's writes is reported by fsync once
 *      per open file, to a file opened after an error nobody saw, not to
 *      one opened after it was seen; no data is lost.
 *  (j) random writes into a new file (fio's 4 KiB shape and any other)
 *      while allocations past a random limit fail, exact and reserving:
 *      each write returns what the page loop says, its bytes have storage
 *      in the backing file when it returns (FIEMAP), fsyncs succeed; after
 *      each fsync nothing is allocated past EOF and pages no write touched
 *      are holes again; the file is right at the end; reserving makes
 *      fewer fallocate calls.  The seed is printed (PCACHE_TEST_SEED).
 *
 * PCACHE_DIR_IO is unset: io_uring writes do not go through the system
 * call table, so nothing here could count or fail them.
 */
#include <pthread.h>
#include <sys/mman.h>

#include "dir_harness.h"

static const unsigned int block_sizes[] = { 512, 1024, 2048, 4096 };

static int open_file(struct pcache *pc, const char *name, int flags)
{
	int fd = pcache_open(pc, name, flags, 0644);

	if (fd < 0) {
		fprintf(stderr, "FAIL: pcache_open(%s): %s\n", name, pcache_strerror(fd));
		backing_dir_remove();
		exit(1);
	}
	return fd;
}

/* pwrite tag's pattern and record it in the model; returns what pwrite did. */
static ssize_t write_pattern(int fd, struct model *m, unsigned tag, size_t off,
			     size_t len)
{
	unsigned char *buf = malloc(len);
	ssize_t got;

	pattern_fill(buf, len, tag, off);
	got = pcache_pwrite(fd, buf, len, (off_t)off);
	if (got > 0 && m)
		model_write(m, buf, (size_t)got, off);
	free(buf);
	return got;
}

/* ---- (a) round trip ---- */

/* off = a pages + b blocks + c bytes, len likewise; nseg: pwritev segments. */
struct shape {
	long op, ob, oc, lp, lb, lc;
	int nseg;
};

static const struct shape shapes[] = {
	{ 0, 0, 0,	0, 0, 1,	1 },	/* one byte */
	{ 0, 0, 1,	0, 1, -2,	1 },	/* inside the first block */
	{ 0, 1, -1,	0, 0, 2,	1 },	/* across a block boundary */
	{ 0, 1, 0,	0, 1, 0,	1 },	/* exactly one block */
	{ 1, 0, -1,	0, 0, 2,	1 },	/* across a page boundary */
	{ 1, -1, 7,	0, 2, 0,	2 },	/* from a page's last block on */
	{ 3, 0, 5,	2, 0, 100,	3 },	/* pages, unaligned */
	{ 0, 0, 0,	5, 0, 0,	1 },	/* whole pages over all of that */
	{ 7, 1, 0,	1, 0, 0,	4 },	/* a page's worth at a block */
	{ 20, 0, -3,	0, 0, 10,	1 },	/* past EOF: a hole before it */
	{ 12, 0, 100,	3, 0, 0,	5 },	/* inside the hole */
	{ 30, 0, 0,	0, 0, 1,	1 },	/* far past EOF */
	{ 2, 0, 0,	0, 3, 17,	7 },
};

static void test_round_trip(unsigned int bs, int pw)
{
	struct dir_cfg dc = { .block_size = bs, .perform_write = pw };
	struct pcache *pc = dir_cache(&dc);
	struct model m;
	char ctx[96];
	int fd;

	model_init(&m, 40 * PAGE);
	fd = open_file(pc, "rt", O_CREAT | O_RDWR);
	for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
		const struct shape *s = &shapes[i];
		long off = s->op * PAGE + s->ob * (long)bs + s->oc;
		long len = s->lp * PAGE + s->lb * (long)bs + s->lc;
		unsigned char *buf = malloc((size_t)len);
		struct iovec iov[8];
		long done = 0;
		ssize_t got;

		snprintf(ctx, sizeof(ctx), "round trip bs %u pw %d shape %zu (%ld+%ld)",
			 bs, pw, i, off, len);
		pattern_fill(buf, (size_t)len, (unsigned)i + 1, (uint64_t)off);
		/* Uneven segments: the k-th of n is about len*(k+1)/(n(n+1)/2). */
		for (int k = 0; k < s->nseg; k++) {
			long seg = k == s->nseg - 1 ? len - done :
				   len * (k + 1) * 2 / (s->nseg * (s->nseg + 1));

			iov[k] = (struct iovec){ buf + done, (size_t)seg };
			done += seg;
		}
		got = pcache_pwritev(fd, iov, s->nseg, off);
		CHECK(got == len, "%s: pwritev returned %zd", ctx, got);
		if (got > 0)
			model_write(&m, buf, (size_t)got, (size_t)off);
		free(buf);
		check_cached(fd, &m, ctx);
	}
	snprintf(ctx, sizeof(ctx), "round trip bs %u pw %d", bs, pw);
	CHECK_EQ(pcache_fsync(fd), 0);
	check_backing("rt", &m, ctx);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);

	/* A new cache reads it all from the backing file. */
	pc = dir_cache(&dc);
	fd = open_file(pc, "rt", O_RDWR);
	snprintf(ctx, sizeof(ctx), "round trip bs %u pw %d, cold", bs, pw);
	check_cached(fd, &m, ctx);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "rt"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	model_free(&m);
}

/* ---- (b) sub-page read-modify-write ---- */

struct rmw_case {
	long off_b, off_c;	/* offset in the case's first page: blocks + bytes */
	long len_p, len_b, len_c;
	const char *what;
};

static const struct rmw_case rmw_cases[] = {
	{ 1, 0,		0, 1, 0,	"one whole block" },
	{ 0, 0,		1, 0, 0,	"one whole page" },
	{ 0, 0,		2, 0, 0,	"two whole pages" },
	{ 0, 0,		0, 2, 0,	"two whole blocks" },
	{ 0, 7,		0, 0, 10,	"inside one block" },
	{ 0, 100,	0, 1, 0,	"partly over two blocks" },
	{ 0, 100,	0, 3, 0,	"partial first and last block, whole between" },
	{ 0, -100,	0, 0, 200,	"across the page boundary, partial blocks" },
	{ 0, -100,	1, 0, 200,	"partial blocks in two pages, a whole page between" },
	{ 1, 0,		0, -1, 0,	"whole blocks to the end of the page" },
	{ 0, 0,		1, 0, -1,	"a page but its last byte" },
	{ 0, 1,		1, 0, -1,	"a page but its first byte" },
};

/* Pages between cases: a case touches pages [base - 1, base + 3], none shares one. */
#define RMW_STRIDE	6

static void expect_reads(unsigned int bs, long off, long len, struct read_rec *exp,
			 int *nexp, long *touched_blocks)
{
	long nb = PAGE / bs;

	*nexp = 0;
	*touched_blocks = 0;
	for (long p = off / PAGE; p <= (off + len - 1) / PAGE; p++) {
		long run_start = -1;

		for (long b = 0; b <= nb; b++) {
			long bstart = p * PAGE + b * (long)bs, bend = bstart + (long)bs;
			bool touched = b < nb && bstart < off + len && bend > off;
			bool partial = touched && (bstart < off || bend > off + len);

			*touched_blocks += touched;
			if (partial && run_start < 0)
				run_start = bstart;
			if (!partial && run_start >= 0) {
				exp[(*nexp)++] = (struct read_rec){ run_start,
					(size_t)(bstart - run_start) };
				run_start = -1;
			}
		}
	}
}

static void test_rmw(unsigned int bs, int pw)
{
	struct dir_cfg dc = { .block_size = bs, .perform_write = pw,
			      .dirty_expire_ms = 60000 };
	size_t fsize = (ARRAY_SIZE(rmw_cases) + 1) * RMW_STRIDE * PAGE;
	struct pcache *pc;
	struct model m;
	unsigned char *buf = malloc(fsize);
	char ctx[160];
	int fd;

	/* On disk before the cache exists: nothing of it is cached. */
	rm_backing_files();
	model_init(&m, fsize);
	pattern_fill(buf, fsize, 99, 0);
	model_write(&m, buf, fsize, 0);
	real_write("rmw", buf, fsize, 0);
	pc = dir_cache(&dc);
	fd = open_file(pc, "rmw", O_RDWR);

	for (size_t i = 0; i < ARRAY_SIZE(rmw_cases); i++) {
		const struct rmw_case *c = &rmw_cases[i];
		long base = (long)(i + 1) * RMW_STRIDE * PAGE;
		long off = base + c->off_b * (long)bs + c->off_c;
		long len = c->len_p * PAGE + c->len_b * (long)bs + c->len_c;
		struct read_rec exp[16], got[64];
		long touched, first_pg, last_pg, want_bytes, bytes = 0;
		int nexp, n;
		struct pcache_stats before, after;
		ssize_t w;

		if (len <= 0)	/* e.g. "whole blocks to the end" with bs = PAGE */
			continue;
		snprintf(ctx, sizeof(ctx), "rmw bs %u pw %d: %s (%ld+%ld)", bs, pw,
			 c->what, off, len);
		expect_reads(bs, off, len, exp, &nexp, &touched);

		before = stats_of(pc);
		read_log_start();
		w = write_pattern(fd, &m, (unsigned)i + 1, (size_t)off, (size_t)len);
		n = read_log_stop(got, ARRAY_SIZE(got));
		after = stats_of(pc);
		CHECK(w == len, "%s: pwrite returned %zd", ctx, w);
		CHECK(n == nexp, "%s: the write made %d preads, want %d (the blocks it "
		      "covers only in part)", ctx, n, nexp);
		CHECK_EQ(after.backend_reads - before.backend_reads, nexp);
		for (int k = 0; k < n && k < nexp; k++)
			CHECK(got[k].off == exp[k].off && got[k].len == exp[k].len,
			      "%s: pread %d was [%lld, +%zu), want [%lld, +%zu)", ctx, k,
			      (long long)got[k].off, got[k].len, (long long)exp[k].off,
			      exp[k].len);

		/* Read the pages back: only the untouched blocks come from disk. */
		first_pg = off / PAGE;
		last_pg = (off + len - 1) / PAGE;
		want_bytes = ((last_pg - first_pg + 1) * (PAGE / bs) - touched) * (long)bs;
		read_log_start();
		CHECK_EQ(pcache_pread(fd, buf, (size_t)((last_pg - first_pg + 1) * PAGE),
				      first_pg * PAGE), (last_pg - first_pg + 1) * PAGE);
		n = read_log_stop(got, ARRAY_SIZE(got));
		for (int k = 0; k < n; k++) {
			long lo = got[k].off, hi = lo + (long)got[k].len;

			bytes += (long)got[k].len;
			/* The written blocks are dirty: never read over them. */
			CHECK(hi <= off / bs * bs || lo >= round_up(off + len, bs),
			      "%s: read_folio read [%ld, %ld), over blocks the write touched "
			      "[%ld, %ld)", ctx, lo, hi, off / bs * bs, round_up(off + len, bs));
		}
		CHECK(bytes == want_bytes, "%s: read_folio read %ld bytes, want %ld (the "
		      "blocks the write did not touch)", ctx, bytes, want_bytes);
		model_cmp(&m, buf, (size_t)((last_pg - first_pg + 1) * PAGE),
			  (size_t)(first_pg * PAGE), ctx);
	}
	snprintf(ctx, sizeof(ctx), "rmw bs %u pw %d", bs, pw);
	check_cached(fd, &m, ctx);
	CHECK_EQ(pcache_fsync(fd), 0);
	check_backing("rmw", &m, ctx);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "rmw"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	model_free(&m);
	free(buf);
}

/* ---- (c) holes ---- */

/* Read [off, off+len) through pcache: it must be zeroes, with no pread. */
static void check_hole_read(int fd, long off, long len, const char *ctx)
{
	unsigned char *buf = malloc((size_t)len);
	struct read_rec got[8];
	ssize_t r;
	int n;

	memset(buf, 0xee, (size_t)len);
	read_log_start();
	r = pcache_pread(fd, buf, (size_t)len, off);
	n = read_log_stop(got, ARRAY_SIZE(got));
	CHECK(r == len, "%s: pread of the hole returned %zd", ctx, r);
	CHECK(n == 0, "%s: reading the hole [%ld, +%ld) made %d preads (first [%lld, +%zu))",
	      ctx, off, len, n, n ? (long long)got[0].off : 0LL, n ? got[0].len : 0);
	for (long i = 0; i < len; i++)
		if (buf[i]) {
			CHECK(0, "%s: byte %ld of the hole is 0x%02x", ctx, off + i, buf[i]);
			break;
		}
	free(buf);
}

static void test_holes(unsigned int bs, int pw)
{
	struct dir_cfg dc = { .block_size = bs, .perform_write = pw,
			      .dirty_expire_ms = 60000 };
	struct pcache *pc = dir_cache(&dc);
	struct model m;
	char ctx[96];
	off_t data;
	long n;
	int fd;

	/* Data, a long hole, data. */
	snprintf(ctx, sizeof(ctx), "holes bs %u pw %d", bs, pw);
	model_init(&m, 64 * PAGE);
	fd = open_file(pc, "hole", O_CREAT | O_RDWR);
	CHECK_EQ(write_pattern(fd, &m, 1, 0, PAGE + 7), PAGE + 7);
	CHECK_EQ(pcache_ftruncate(fd, 48 * PAGE + 5), 0);
	model_truncate(&m, 48 * PAGE + 5);
	CHECK_EQ(write_pattern(fd, &m, 2, 40 * PAGE + 100, 2 * PAGE), 2 * PAGE);
	/* Past what the backing file holds yet: zeroes without a call. */
	check_hole_read(fd, 10 * PAGE, 10 * PAGE, ctx);
	CHECK_EQ(pcache_fsync(fd), 0);
	check_hole_read(fd, 21 * PAGE, 10 * PAGE, ctx);
	check_cached(fd, &m, ctx);
	check_backing("hole", &m, ctx);
	data = real_seek_data("hole", round_up(PAGE + 7, fs_block));
	CHECK(data > 2 * PAGE && data <= 40 * PAGE + 100,
	      "%s: SEEK_DATA after the first data gives %lld: the hole [%ld, %ld) "
	      "was filled in the backing file", ctx, (long long)data, 2 * PAGE, 40 * PAGE);
	n = real_extents("hole", round_up(PAGE + 7, fs_block), 40 * PAGE - round_up(PAGE + 7, fs_block));
	CHECK(n == 0, "%s: %ld extents allocated in the hole [%ld, %ld) of the backing file",
	      ctx, n, round_up(PAGE + 7, fs_block), 40 * PAGE);
	CHECK_EQ(pcache_close(fd), 0);

	/* Truncate down, then up: the blocks go and a hole is left. */
	fd = open_file(pc, "trunc", O_CREAT | O_RDWR);
	{
		struct model t;
		long small = 2 * PAGE + 100;

		model_init(&t, 16 * PAGE);
		CHECK_EQ(write_pattern(fd, &t, 3, 0, 16 * PAGE), 16 * PAGE);
		CHECK_EQ(pcache_fsync(fd), 0);
		CHECK_EQ(pcache_ftruncate(fd, small), 0);
		CHECK_EQ(pcache_ftruncate(fd, 16 * PAGE), 0);
		model_truncate(&t, (size_t)small);
		model_truncate(&t, 16 * PAGE);
		check_hole_read(fd, round_up(small, PAGE), 16 * PAGE - round_up(small, PAGE), ctx);
		CHECK_EQ(pcache_fsync(fd), 0);
		check_cached(fd, &t, ctx);
		check_backing("trunc", &t, ctx);
		data = real_seek_data("trunc", round_up(small, fs_block));
		CHECK(data == -ENXIO, "%s: truncated down to %ld and up to %ld: SEEK_DATA(%ld) "
		      "on the backing file gives %lld, want -ENXIO (a hole)", ctx, small,
		      16 * PAGE, round_up(small, fs_block), (long long)data);
		n = real_extents_from("trunc", round_up(small, fs_block));
		CHECK(n == 0, "%s: %ld extents allocated past %ld after truncating to %ld and "
		      "up again", ctx, n, round_up(small, fs_block), small);
		CHECK_EQ(pcache_close(fd), 0);
		CHECK_EQ(pcache_destroy(pc), 0);

		/* A new cache: the holes are read as holes, with no pread. */
		pc = dir_cache(&dc);
		fd = open_file(pc, "trunc", O_RDWR);
		check_hole_read(fd, 3 * PAGE, 13 * PAGE, ctx);
		check_cached(fd, &t, ctx);
		CHECK_EQ(pcache_close(fd), 0);
		model_free(&t);
	}
	fd = open_file(pc, "hole", O_RDWR);
	check_hole_read(fd, 2 * PAGE, 38 * PAGE, ctx);
	check_hole_read(fd, 43 * PAGE, 5 * PAGE + 5, ctx);
	check_cached(fd, &m, ctx);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "hole"), 0);
	CHECK_EQ(pcache_unlink(pc, "trunc"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	model_free(&m);
}

/* ---- (d) ENOSPC part way ---- */

struct enospc_case {
	long pre;		/* bytes on disk before (libc) */
	long pos, len;		/* the write */
	long limit;		/* allocations past it fail (< 0: none) */
	long nth;		/* or: allocations from the nth on fail (0: none) */
};

/*
 * The write's short count when allocations fail as @c says (page-by-page
 * loop).  @resv: the backend reserves 1 MiB chunks.  A reservation that
 * fails is followed by the exact allocation, so a space limit cuts the
 * write exactly where it did without reservations; but the first page's
 * chunk covers all of these writes, so from the nth call on means "the
 * first fails" or "none".
 */
static long enospc_expect(const struct enospc_case *c, unsigned int bs, int pw,
			  bool resv)
{
	long end = c->pos + c->len;

	if (c->nth) {
		/* perform_write allocates the whole write in one call first. */
		if (pw || resv)
			return c->nth == 1 ? -ENOSPC : c->len;
		/* A page of a new file: one allocation each. */
		long stop = (c->pos / PAGE + c->nth - 1) * PAGE;

		return stop <= c->pos ? -ENOSPC : (stop < end ? stop - c->pos : c->len);
	}
	if (c->limit < 0)
		return c->len;
	for (long p = c->pos / PAGE; p * PAGE < end; p++) {
		long pend = (p + 1) * PAGE < end ? (p + 1) * PAGE : end;

		if (round_up(pend, bs) > c->limit)
			return p * PAGE <= c->pos ? -ENOSPC : p * PAGE - c->pos;
	}
	return c->len;
}

static const struct enospc_case enospc_cases[] = {
	/* A space limit in the middle of a page and of a block. */
	{ 0,		1000,		10 * PAGE,	5 * PAGE + 700,	0 },
	/* At a page boundary, over data on disk. */
	{ 3 * PAGE + 50, 2 * PAGE + 10,	8 * PAGE,	6 * PAGE,	0 },
	/* At a block boundary inside a page. */
	{ PAGE,		PAGE - 3,	6 * PAGE,	4 * PAGE + 2048, 0 },
	/* The first page does not fit. */
	{ PAGE + 10,	2 * PAGE + 5,	3 * PAGE,	2 * PAGE + 6,	0 },
	/* Everything fits. */
	{ 0,		123,		4 * PAGE,	5 * PAGE,	0 },
	/* The nth allocation fails, and every one after it. */
	{ 0,		0,		8 * PAGE,	-1,		1 },
	{ 0,		500,		8 * PAGE,	-1,		2 },
	{ 0,		2 * PAGE + 1,	8 * PAGE,	-1,		4 },
	{ 0,		PAGE,		6 * PAGE - 1,	-1,		6 },
};

static void test_enospc(unsigned int bs, int pw, bool resv)
{
	struct dir_cfg dc = { .block_size = bs, .perform_write = pw,
			      .dirty_expire_ms = 60000, .reserve = resv ? "1M" : "0" };
	struct pcache *pc = dir_cache(&dc);

	for (size_t i = 0; i < ARRAY_SIZE(enospc_cases); i++) {
		const struct enospc_case *c = &enospc_cases[i];
		long want = enospc_expect(c, bs, pw, resv), size, n;
		struct model m;
		char name[32], ctx[160];
		ssize_t got;
		int fd;

		snprintf(name, sizeof(name), "nospc%zu", i);
		snprintf(ctx, sizeof(ctx), "ENOSPC bs %u pw %d %s case %zu (pre %ld, "
			 "write %ld+%ld, limit %ld, nth %ld)", bs, pw,
			 resv ? "reserving" : "exact", i, c->pre, c->pos, c->len,
			 c->limit, c->nth);
		model_init(&m, 32 * PAGE);
		if (c->pre) {
			unsigned char *b = malloc((size_t)c->pre);

			pattern_fill(b, (size_t)c->pre, 50, 0);
			real_write(name, b, (size_t)c->pre, 0);
			model_write(&m, b, (size_t)c->pre, 0);
			free(b);
		}
		fd = open_file(pc, name, O_CREAT | O_RDWR);
		STORE(inj_alloc_limit, c->limit);
		if (c->nth)
			inj_arm(INJ_ALLOC, c->nth, ENOSPC, true);
		got = write_pattern(fd, &m, (unsigned)i + 1, (size_t)c->pos, (size_t)c->len);
		inj_arm(INJ_ALLOC, 0, 0, false);
		CHECK(got == want, "%s: pwrite returned %zd, want %ld", ctx, got, want);
		/* The file is what was written, nothing more. */
		check_cached(fd, &m, ctx);
		CHECK_EQ(pcache_pread(fd, ctx, 1, (off_t)m.size), 0);
		CHECK_EQ(pcache_fsync(fd), 0);
		STORE(inj_alloc_limit, -1);
		check_backing(name, &m, ctx);
		n = real_extents_from(name, round_up((long)m.size, fs_block));
		CHECK(n == 0, "%s: the backing file of %zu bytes has %ld extents allocated "
		      "past EOF: blocks instantiated by the failed write were left there",
		      ctx, m.size, n);

		/* Grow it again: the failed range holds no stale bytes or garbage. */
		size = (long)m.size;
		CHECK_EQ(write_pattern(fd, &m, 77, (size_t)size + 3 * PAGE, 1), 1);
		check_cached(fd, &m, ctx);
		CHECK_EQ(pcache_fsync(fd), 0);
		check_backing(name, &m, ctx);
		CHECK_EQ(pcache_close(fd), 0);
		CHECK_EQ(pcache_unlink(pc, name), 0);
		model_free(&m);
	}
	CHECK_EQ(pcache_destroy(pc), 0);
}

/* ---- (e) backend calls per MiB ---- */

#define SEQ_BYTES	(8L << 20)
#define SEQ_CHUNK	(64L << 10)

struct calls {
	double total, allocs, reads, writes, syncs, other;
};

static struct calls seq_write_calls(unsigned int bs, int pw, const char *reserve)
{
	struct dir_cfg dc = { .block_size = bs, .perform_write = pw, .reserve = reserve };
	struct pcache *pc = dir_cache(&dc);
	unsigned char *buf = malloc(SEQ_CHUNK);
	struct pcache_stats a, b;
	struct calls c;
	double mib = (double)SEQ_BYTES / (1 << 20);
	char ctx[64];
	int fd = open_file(pc, "seq", O_CREAT | O_RDWR | O_TRUNC);

	snprintf(ctx, sizeof(ctx), "sequential bs %u pw %d reserve %s", bs, pw, reserve);
	a = stats_of(pc);
	for (long off = 0; off < SEQ_BYTES; off += SEQ_CHUNK) {
		pattern_fill(buf, SEQ_CHUNK, 5, (uint64_t)off);
		CHECK_EQ(pcache_pwrite(fd, buf, SEQ_CHUNK, off), SEQ_CHUNK);
	}
	CHECK_EQ(pcache_fsync(fd), 0);
	b = stats_of(pc);
	c.allocs = (double)(b.backend_allocs - a.backend_allocs) / mib;
	c.reads = (double)(b.backend_reads - a.backend_reads) / mib;
	c.writes = (double)(b.backend_writes - a.backend_writes) / mib;
	c.syncs = (double)(b.backend_syncs - a.backend_syncs) / mib;
	c.other = (double)(b.backend_other - a.backend_other) / mib;
	c.total = c.allocs + c.reads + c.writes + c.syncs + c.other;
	if (pw)
		CHECK(b.perform_write_calls > a.perform_write_calls,
		      "%s: perform_write was never used", ctx);
	/* Spot-check the backing file (every byte: 8 MiB compare). */
	{
		unsigned char *disk = malloc(SEQ_BYTES + PAGE);
		ssize_t n = real_read_all("seq", disk, SEQ_BYTES + PAGE);

		CHECK(n == SEQ_BYTES, "%s: backing file has %zd bytes", ctx, n);
		if (n > 0) {
			long bad = pattern_check(disk, (size_t)n, 5, 0);

			CHECK(bad < 0, "%s: backing file byte %ld is wrong", ctx, bad);
		}
		free(disk);
	}
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "seq"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	free(buf);
	return c;
}

static void test_calls_per_mib(unsigned int bs)
{
	struct calls wb = seq_write_calls(bs, 0, "0"), pw = seq_write_calls(bs, 1, "0");
	struct calls rwb = seq_write_calls(bs, 0, "1M"), rpw = seq_write_calls(bs, 1, "1M");

	printf("block size %4u, 8 MiB in 64 KiB writes + fsync:\n", bs);
	printf("  exact, write_begin path: %.1f backend calls/MiB (allocs %.1f, reads %.1f; "
	       "writes %.1f, syncs %.2f, other %.2f)\n", wb.total, wb.allocs, wb.reads,
	       wb.writes, wb.syncs, wb.other);
	printf("  exact, perform_write:    %.1f backend calls/MiB (allocs %.1f, reads %.1f; "
	       "writes %.1f, syncs %.2f, other %.2f)\n", pw.total, pw.allocs, pw.reads,
	       pw.writes, pw.syncs, pw.other);
	printf("  1 MiB reservations, write_begin path: %.1f calls/MiB (allocs %.1f), "
	       "perform_write: %.1f (allocs %.1f)\n", rwb.total, rwb.allocs, rpw.total,
	       rpw.allocs);
	CHECK(pw.allocs < wb.allocs, "bs %u: perform_write made %.1f allocation calls/MiB, "
	      "not fewer than the write_begin path's %.1f", bs, pw.allocs, wb.allocs);
	/* One fallocate per 1 MiB chunk, whichever path fills it. */
	CHECK(rwb.allocs <= 1.0 && rpw.allocs <= 1.0, "bs %u: with 1 MiB reservations "
	      "the write_begin path made %.1f and perform_write %.1f allocation calls/MiB, "
	      "want at most 1", bs, rwb.allocs, rpw.allocs);
	/* A sequential write into a new file reads nothing. */
	CHECK(wb.reads == 0 && pw.reads == 0 && rwb.reads == 0 && rpw.reads == 0,
	      "bs %u: a sequential write into a new file read %.1f / %.1f / %.1f / %.1f "
	      "times per MiB", bs, wb.reads, pw.reads, rwb.reads, rpw.reads);
}

/* ---- (f) sync calls reach the backing file ---- */

struct sync_counts {
	long fsyncs, fdatasyncs;
};

static struct sync_counts sync_counts(void)
{
	return (struct sync_counts){ LOAD(inj_fsyncs), LOAD(inj_fdatasyncs) };
}

static void check_sync(struct sync_counts before, long fsyncs, long fdatasyncs,
		       const char *name, const struct model *m, const char *ctx)
{
	struct sync_counts after = sync_counts();

	CHECK(after.fsyncs - before.fsyncs == fsyncs &&
	      after.fdatasyncs - before.fdatasyncs == fdatasyncs,
	      "%s: the backing file got %ld fsync and %ld fdatasync calls, want %ld and %ld",
	      ctx, after.fsyncs - before.fsyncs, after.fdatasyncs - before.fdatasyncs,
	      fsyncs, fdatasyncs);
	check_backing(name, m, ctx);
}

static void test_sync_calls(unsigned int bs)
{
	/* The flusher must not write anything behind the test's back. */
	struct dir_cfg dc = { .block_size = bs, .dirty_expire_ms = 600000,
			      .writeback_interval_ms = 600000 };
	struct pcache *pc = dir_cache(&dc);
	struct sync_counts c;
	struct model m;
	char ctx[64];
	int fd;

	model_init(&m, 16 * PAGE);

	snprintf(ctx, sizeof(ctx), "O_SYNC write, bs %u", bs);
	fd = open_file(pc, "sync", O_CREAT | O_RDWR | O_SYNC);
	c = sync_counts();
	CHECK_EQ(write_pattern(fd, &m, 1, 100, 3 * PAGE + 10), 3 * PAGE + 10);
	check_sync(c, 1, 0, "sync", &m, ctx);
	CHECK_EQ(pcache_close(fd), 0);

	snprintf(ctx, sizeof(ctx), "O_DSYNC write, bs %u", bs);
	fd = open_file(pc, "sync", O_RDWR | O_DSYNC);
	c = sync_counts();
	CHECK_EQ(write_pattern(fd, &m, 2, 2 * PAGE + 7, PAGE), PAGE);
	check_sync(c, 0, 1, "sync", &m, ctx);
	CHECK_EQ(pcache_close(fd), 0);

	fd = open_file(pc, "sync", O_RDWR);
	snprintf(ctx, sizeof(ctx), "pcache_fdatasync, bs %u", bs);
	CHECK_EQ(write_pattern(fd, &m, 3, 5 * PAGE + 1, 2000), 2000);
	c = sync_counts();
	CHECK_EQ(pcache_fdatasync(fd), 0);
	check_sync(c, 0, 1, "sync", &m, ctx);

	snprintf(ctx, sizeof(ctx), "pcache_fsync, bs %u", bs);
	CHECK_EQ(write_pattern(fd, &m, 4, 7 * PAGE - 5, 3000), 3000);
	c = sync_counts();
	CHECK_EQ(pcache_fsync(fd), 0);
	check_sync(c, 1, 0, "sync", &m, ctx);

	snprintf(ctx, sizeof(ctx), "pcache_msync(MS_SYNC), bs %u", bs);
	{
		size_t len = (size_t)round_up((long)m.size, PAGE);
		unsigned char *v = pcache_mmap(fd, len, PROT_READ | PROT_WRITE, 0);

		if (PCACHE_IS_ERR(v) && PCACHE_PTR_ERR(v) == -EOPNOTSUPP) {
			printf("SKIP part: %s: userfaultfd cannot serve views here\n", ctx);
		} else if (PCACHE_IS_ERR(v)) {
			CHECK(0, "%s: pcache_mmap: %s", ctx, pcache_strerror(PCACHE_PTR_ERR(v)));
		} else {
			unsigned char b[1500];

			pattern_fill(b, sizeof(b), 5, PAGE + 300);
			memcpy(v + PAGE + 300, b, sizeof(b));	/* stores through the view */
			model_write(&m, b, sizeof(b), PAGE + 300);
			c = sync_counts();
			CHECK_EQ(pcache_msync(v, len, MS_SYNC), 0);
			check_sync(c, 1, 0, "sync", &m, ctx);
			CHECK_EQ(pcache_munmap(v, len), 0);
		}
	}
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "sync"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	model_free(&m);
}

/* ---- a thread sampling the stats ---- */

struct sampler {
	struct pcache *pc;
	pthread_t thread;
	int stop;			/* atomic */
	uint64_t max_cached, max_dirty, max_dirty_wb, samples;
};

static void *sampler_fn(void *arg)
{
	struct sampler *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		struct pcache_stats st = stats_of(s->pc);

		if (st.pages_cached > s->max_cached)
			s->max_cached = st.pages_cached;
		if (st.pages_dirty > s->max_dirty)
			s->max_dirty = st.pages_dirty;
		if (st.pages_dirty + st.pages_writeback > s->max_dirty_wb)
			s->max_dirty_wb = st.pages_dirty + st.pages_writeback;
		s->samples++;
		usleep(50);
	}
	return NULL;
}

static void sampler_start(struct sampler *s, struct pcache *pc)
{
	memset(s, 0, sizeof(*s));
	s->pc = pc;
	if (pthread_create(&s->thread, NULL, sampler_fn, s)) {
		fprintf(stderr, "FAIL: pthread_create\n");
		exit(1);
	}
}

static void sampler_stop(struct sampler *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	pthread_join(s->thread, NULL);
}

/* ---- (g) reclaim ---- */

#define RECLAIM_LIMIT	(2L << 20)
#define RECLAIM_FILE	(16L << 20)

/* Compare [off, off+len) of a view or buffer with tag's pattern. */
static void check_pattern(const unsigned char *p, size_t len, unsigned tag, uint64_t off,
			  const char *ctx)
{
	long bad = pattern_check(p, len, tag, off);

	CHECK(bad < 0, "%s: byte at file offset %llu is 0x%02x, want 0x%02x", ctx,
	      (unsigned long long)(off + (uint64_t)(bad < 0 ? 0 : bad)),
	      bad < 0 ? 0 : p[bad], bad < 0 ? 0 : pattern_byte(tag, off + (uint64_t)bad));
}

static void test_reclaim(unsigned int bs)
{
	struct dir_cfg dc = { .block_size = bs, .mem_limit = RECLAIM_LIMIT };
	struct pcache *pc = dir_cache(&dc);
	unsigned char *buf = malloc(SEQ_CHUNK);
	struct pcache_stats st;
	struct sampler s;
	uint64_t limit = RECLAIM_LIMIT / PAGE;
	char ctx[64];
	int fd, fd2;

	snprintf(ctx, sizeof(ctx), "reclaim bs %u", bs);
	fd = open_file(pc, "big", O_CREAT | O_RDWR);
	sampler_start(&s, pc);
	for (long off = 0; off < RECLAIM_FILE; off += SEQ_CHUNK) {
		pattern_fill(buf, SEQ_CHUNK, 6, (uint64_t)off);
		CHECK_EQ(pcache_pwrite(fd, buf, SEQ_CHUNK, off), SEQ_CHUNK);
	}
	for (long off = 0; off < RECLAIM_FILE; off += SEQ_CHUNK) {
		CHECK_EQ(pcache_pread(fd, buf, SEQ_CHUNK, off), SEQ_CHUNK);
		check_pattern(buf, SEQ_CHUNK, 6, (uint64_t)off, ctx);
	}
	sampler_stop(&s);
	st = stats_of(pc);
	/*
	 * Slack 1: a page is charged before reclaim makes room for it
	 * (cache_charge_page), so the one thread allocating may hold the
	 * count one over the limit while it reclaims.
	 */
	CHECK(s.max_cached <= limit + 1, "%s: %llu pages cached at most (%llu samples), "
	      "the limit is %llu", ctx, (unsigned long long)s.max_cached,
	      (unsigned long long)s.samples, (unsigned long long)limit);
	CHECK(st.pages_reclaimed > 0, "%s: nothing was reclaimed", ctx);
	printf("reclaim bs %u: 16 MiB through a 2 MiB cache: at most %llu of %llu pages "
	       "cached (%llu samples), %llu reclaimed, %llu reclaim waits\n", bs,
	       (unsigned long long)s.max_cached, (unsigned long long)limit,
	       (unsigned long long)s.samples, (unsigned long long)st.pages_reclaimed,
	       (unsigned long long)st.reclaim_waits);

	/* A view over the file: reclaim zaps its pages; they fault back in. */
	{
		size_t vlen = 256 * PAGE;	/* 1 MiB: half the limit */
		unsigned char *v = pcache_mmap(fd, vlen, PROT_READ | PROT_WRITE, 0);

		if (PCACHE_IS_ERR(v) && PCACHE_PTR_ERR(v) == -EOPNOTSUPP) {
			printf("SKIP part: %s views: userfaultfd cannot serve views here\n", ctx);
		} else if (PCACHE_IS_ERR(v)) {
			CHECK(0, "%s: pcache_mmap: %s", ctx, pcache_strerror(PCACHE_PTR_ERR(v)));
		} else {
			uint64_t reclaimed, faults;
			unsigned char b[300];

			check_pattern(v, vlen, 6, 0, "view before reclaim");
			/* Stores into a few pages: dirty pages must be written, not lost. */
			pattern_fill(b, sizeof(b), 8, 5 * PAGE - 100);
			memcpy(v + 5 * PAGE - 100, b, sizeof(b));
			st = stats_of(pc);
			reclaimed = st.pages_reclaimed;
			faults = st.view_faults;
			/* Read 4 MiB of another part of the file: the view's pages go. */
			fd2 = open_file(pc, "big", O_RDONLY);
			for (long off = 8L << 20; off < (12L << 20); off += SEQ_CHUNK) {
				CHECK_EQ(pcache_pread(fd2, buf, SEQ_CHUNK, off), SEQ_CHUNK);
				check_pattern(buf, SEQ_CHUNK, 6, (uint64_t)off, ctx);
			}
			st = stats_of(pc);
			CHECK(st.pages_reclaimed - reclaimed >= 256,
			      "%s: only %llu pages reclaimed while reading 4 MiB through 2 MiB",
			      ctx, (unsigned long long)(st.pages_reclaimed - reclaimed));
			CHECK(st.pages_cached <= limit + 1, "%s: %llu pages cached", ctx,
			      (unsigned long long)st.pages_cached);
			/* Every page of the view faults back in, with the right bytes. */
			check_pattern(v, 5 * PAGE - 100, 6, 0, "view after reclaim");
			check_pattern(v + 5 * PAGE - 100, sizeof(b), 8, 5 * PAGE - 100,
				      "view stores after reclaim");
			check_pattern(v + 5 * PAGE + 200, vlen - 5 * PAGE - 200, 6,
				      5 * PAGE + 200, "view after reclaim");
			CHECK(stats_of(pc).view_faults > faults, "%s: the view's pages were "
			      "never zapped: touching them again made no fault", ctx);
			CHECK_EQ(pcache_pread(fd2, buf, sizeof(b), 5 * PAGE - 100), sizeof(b));
			check_pattern(buf, sizeof(b), 8, 5 * PAGE - 100, "pread of the view's stores");
			CHECK_EQ(pcache_munmap(v, vlen), 0);
			CHECK_EQ(pcache_close(fd2), 0);
			CHECK_EQ(pcache_fsync(fd), 0);
			{
				unsigned char d[sizeof(b)];
				int rfd = real_open("big", O_RDONLY);

				CHECK(rfd >= 0 && pread(rfd, d, sizeof(d), 5 * PAGE - 100) ==
				      (ssize_t)sizeof(d), "%s: reading the backing file", ctx);
				check_pattern(d, sizeof(d), 8, 5 * PAGE - 100,
					      "backing file after view stores and reclaim");
				if (rfd >= 0)
					close(rfd);
			}
		}
	}
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "big"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	free(buf);
}

/* ---- (h) dirty throttling and the flusher ---- */

#define DIRTY_LIMIT	(256L << 10)

static void test_throttle(unsigned int bs, int pw)
{
	struct dir_cfg dc = { .block_size = bs, .perform_write = pw,
			      .dirty_limit = DIRTY_LIMIT };
	struct pcache *pc = dir_cache(&dc);
	unsigned char *src = malloc(SEQ_BYTES);
	uint64_t thresh = DIRTY_LIMIT / PAGE;
	/*
	 * Slack: a writer checks the limit after each step, so it may dirty
	 * one step's pages past it: a page on the write_begin path, a batch of
	 * up to 16 pages (write_batch.c's WRITE_BATCH) with perform_write.
	 */
	uint64_t slack = pw ? 16 : 1;
	struct pcache_stats st;
	struct sampler s;
	uint64_t t0;
	char ctx[64];
	int fd;

	snprintf(ctx, sizeof(ctx), "throttle bs %u pw %d", bs, pw);
	fd = open_file(pc, "flood", O_CREAT | O_RDWR);
	/* The source is ready: the writer does nothing but write. */
	pattern_fill(src, SEQ_BYTES, 7, 0);
	/*
	 * A slow disk: 1 ms per write call and 16 MB/s, slower than any
	 * writer, ThreadSanitizer's included.
	 */
	STORE(inj_write_delay_us, 1000);
	STORE(inj_write_page_us, 250);
	sampler_start(&s, pc);
	t0 = now_ms();
	for (long off = 0; off < SEQ_BYTES; off += SEQ_CHUNK)
		CHECK_EQ(pcache_pwrite(fd, src + off, SEQ_CHUNK, off), SEQ_CHUNK);
	t0 = now_ms() - t0;
	sampler_stop(&s);
	STORE(inj_write_delay_us, 0);
	STORE(inj_write_page_us, 0);
	st = stats_of(pc);
	CHECK(st.throttle_waits > 0, "%s: the writer was never throttled", ctx);
	CHECK(s.max_dirty <= thresh + slack, "%s: %llu pages dirty at most (%llu samples), "
	      "the limit is %llu pages + %llu slack", ctx, (unsigned long long)s.max_dirty,
	      (unsigned long long)s.samples, (unsigned long long)thresh,
	      (unsigned long long)slack);
	printf("throttle bs %u pw %d: 8 MiB to a 16 MB/s backend: %llu ms, %llu "
	       "throttle waits (%llu ms), at most %llu dirty (+ writeback: %llu) of a %llu "
	       "page limit, %llu samples\n", bs, pw, (unsigned long long)t0,
	       (unsigned long long)st.throttle_waits,
	       (unsigned long long)(st.throttle_ns / 1000000),
	       (unsigned long long)s.max_dirty, (unsigned long long)s.max_dirty_wb,
	       (unsigned long long)thresh, (unsigned long long)s.samples);
	CHECK_EQ(pcache_fsync(fd), 0);
	{
		unsigned char *disk = malloc(SEQ_BYTES + PAGE);
		ssize_t n = real_read_all("flood", disk, SEQ_BYTES + PAGE);

		CHECK(n == SEQ_BYTES, "%s: backing file has %zd bytes", ctx, n);
		if (n > 0)
			check_pattern(disk, (size_t)n, 7, 0, ctx);
		free(disk);
	}
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "flood"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	free(src);
}

static void test_flusher(unsigned int bs)
{
	struct dir_cfg dc = { .block_size = bs, .dirty_expire_ms = 50,
			      .writeback_interval_ms = 20 };
	struct pcache *pc = dir_cache(&dc);
	struct pcache_stats st;
	struct model m;
	uint64_t t0 = now_ms();
	int fd;

	model_init(&m, 8 * PAGE);
	fd = open_file(pc, "expire", O_CREAT | O_RDWR);
	/* Few pages: far below the background threshold; only age writes them. */
	CHECK_EQ(write_pattern(fd, &m, 9, 300, 5 * PAGE), 5 * PAGE);
	do {
		usleep(10000);
		st = stats_of(pc);
	} while ((st.pages_dirty || !st.flusher_runs) && now_ms() - t0 < 5000);
	CHECK(st.flusher_runs > 0, "flusher bs %u: no flusher run in 5 s", bs);
	CHECK(st.pages_dirty == 0, "flusher bs %u: %llu pages still dirty after 5 s", bs,
	      (unsigned long long)st.pages_dirty);
	/* No fsync: the flusher alone put the bytes there. */
	check_backing("expire", &m, "flusher, no fsync");
	printf("flusher bs %u: 5 dirty pages written back with no fsync after %llu ms "
	       "(expire 50 ms), %llu flusher runs\n", bs,
	       (unsigned long long)(now_ms() - t0), (unsigned long long)st.flusher_runs);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "expire"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	model_free(&m);
}

/*
 * fsync while the flusher's write of the same pages is in flight: the pages
 * are clean already (the flusher took them), so fsync must wait for their
 * writeback to end before it syncs the backing file and returns.
 */
static void test_fsync_waits_for_flusher(unsigned int bs)
{
	struct dir_cfg dc = { .block_size = bs, .dirty_expire_ms = 20,
			      .writeback_interval_ms = 10 };
	struct pcache *pc = dir_cache(&dc);
	struct model m;
	uint64_t t0;
	int fd, rc;

	model_init(&m, 8 * PAGE);
	fd = open_file(pc, "inflight", O_CREAT | O_RDWR);
	STORE(inj_write_delay_us, 300000);	/* each backing write takes 300 ms */
	CHECK_EQ(write_pattern(fd, &m, 11, 0, 4 * PAGE + 10), 4 * PAGE + 10);
	t0 = now_ms();
	while (!LOAD(inj_writes_in_flight) && now_ms() - t0 < 5000)
		usleep(1000);
	CHECK(LOAD(inj_writes_in_flight) > 0, "fsync vs flusher: the flusher never started "
	      "writing in 5 s");
	rc = pcache_fsync(fd);
	CHECK_EQ(rc, 0);
	/* Returned: the bytes must be in the backing file now. */
	check_backing("inflight", &m, "fsync while the flusher's write of the pages is in flight");
	STORE(inj_write_delay_us, 0);
	printf("fsync during the flusher's write (bs %u): returned after %llu ms\n", bs,
	       (unsigned long long)(now_ms() - t0));
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "inflight"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	model_free(&m);
}

/* ---- (i) errseq ---- */

static void test_errseq_fsync(unsigned int bs)
{
	struct dir_cfg dc = { .block_size = bs, .dirty_expire_ms = 600000,
			      .writeback_interval_ms = 600000 };
	struct pcache *pc = dir_cache(&dc);
	struct model m;
	int fd1, fd2, fd3, rc;

	model_init(&m, 8 * PAGE);
	fd1 = open_file(pc, "eio", O_CREAT | O_RDWR);
	fd2 = open_file(pc, "eio", O_RDWR);
	CHECK_EQ(write_pattern(fd1, &m, 1, 10, 3 * PAGE + 5), 3 * PAGE + 5);

	STORE(inj_write_errno, EIO);
	rc = pcache_fsync(fd1);
	CHECK(rc == -EIO, "errseq: fsync with the backing file's writes failing returned %d", rc);
	/* The pages stayed dirty: a retry fails again rather than claim success. */
	rc = pcache_fsync(fd1);
	CHECK(rc == -EIO, "errseq: second fsync, writes still failing, returned %d "
	      "(want -EIO: the data is still not on disk)", rc);
	CHECK(stats_of(pc).writeback_errors > 0, "errseq: writeback_errors not counted");
	STORE(inj_write_errno, 0);

	/* fd2 has not seen the error: once, and the data lands now. */
	rc = pcache_fsync(fd2);
	CHECK(rc == -EIO, "errseq: fsync on the other descriptor returned %d, want -EIO once", rc);
	check_backing("eio", &m, "errseq: after the injection is removed");
	CHECK_EQ(pcache_fsync(fd2), 0);
	CHECK_EQ(pcache_fsync(fd1), 0);
	/* Opened after the error was seen: not told. */
	fd3 = open_file(pc, "eio", O_RDWR);
	CHECK_EQ(pcache_fsync(fd3), 0);
	/* Rewritten and synced: 0, and the new bytes are there. */
	CHECK_EQ(write_pattern(fd1, &m, 2, PAGE, PAGE + 77), PAGE + 77);
	CHECK_EQ(pcache_fsync(fd1), 0);
	CHECK_EQ(pcache_fdatasync(fd2), 0);
	check_backing("eio", &m, "errseq: rewritten");
	CHECK_EQ(pcache_close(fd3), 0);
	CHECK_EQ(pcache_close(fd2), 0);
	CHECK_EQ(pcache_close(fd1), 0);
	CHECK_EQ(pcache_unlink(pc, "eio"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	model_free(&m);
}

/* An error the flusher met, that no fsync has reported yet. */
static void test_errseq_unseen(unsigned int bs)
{
	struct dir_cfg dc = { .block_size = bs, .dirty_expire_ms = 30,
			      .writeback_interval_ms = 10 };
	struct pcache *pc = dir_cache(&dc);
	struct pcache_stats st;
	struct model m;
	uint64_t t0;
	int fd1, fd2, fd3, rc;

	model_init(&m, 8 * PAGE);
	fd1 = open_file(pc, "unseen", O_CREAT | O_RDWR);
	/* Every pwrite and pwritev of the backing files fails. */
	STORE(inj_write_errno, EIO);
	CHECK_EQ(write_pattern(fd1, &m, 3, 0, 2 * PAGE + 9), 2 * PAGE + 9);
	t0 = now_ms();
	do {
		usleep(5000);
		st = stats_of(pc);
	} while (!st.writeback_errors && now_ms() - t0 < 5000);
	CHECK(st.writeback_errors > 0, "errseq: the flusher met no error in 5 s");
	STORE(inj_write_errno, 0);

	/* Opened after the error, which nobody has seen: told on first fsync. */
	fd2 = open_file(pc, "unseen", O_RDWR);
	rc = pcache_fsync(fd2);
	CHECK(rc == -EIO, "errseq: a descriptor opened after an unseen writeback error "
	      "got %d from its first fsync, want -EIO", rc);
	CHECK_EQ(pcache_fsync(fd2), 0);
	/* fd1 was open all along and never told: once. */
	rc = pcache_fsync(fd1);
	CHECK(rc == -EIO, "errseq: the writer's descriptor got %d, want -EIO once", rc);
	CHECK_EQ(pcache_fsync(fd1), 0);
	fd3 = open_file(pc, "unseen", O_RDWR);
	CHECK_EQ(pcache_fsync(fd3), 0);
	check_backing("unseen", &m, "errseq: unseen error, after the injection");
	CHECK_EQ(pcache_close(fd3), 0);
	CHECK_EQ(pcache_close(fd2), 0);
	CHECK_EQ(pcache_close(fd1), 0);
	CHECK_EQ(pcache_unlink(pc, "unseen"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	model_free(&m);
}

/* ---- (j) random writes into a new file under a space limit ---- */

#define RND_SPAN	(4L << 20)	/* the writes land in [0, RND_SPAN) */
#define RND_WRITES	400
#define RND_SYNC_EVERY	50
#define RESV_CHUNK	(1L << 20)	/* the reservation asked for ("1M") */
#define MAX_EXT		4096

static uint64_t rnd_state;

static long rnd(long n)
{
	uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (long)((z ^ (z >> 31)) % (uint64_t)n);
}

/*
 * Allocated extents of the backing file (not delayed ones), sorted: how
 * many.  @unwritten (if not NULL): whether each is allocated but unwritten.
 */
static int real_alloc_extents(const char *name, long *start, long *end,
			      bool *unwritten, int max)
{
	size_t sz = sizeof(struct fiemap) + (size_t)max * sizeof(struct fiemap_extent);
	struct fiemap *fm = calloc(1, sz);
	int fd = real_open(name, O_RDONLY), n = 0;

	CHECK(fd >= 0, "open backing %s: %s", name, strerror(errno));
	fm->fm_length = FIEMAP_MAX_OFFSET;
	fm->fm_extent_count = (unsigned)max;
	if (fd >= 0 && ioctl(fd, FS_IOC_FIEMAP, fm) == 0) {
		CHECK(fm->fm_mapped_extents < (unsigned)max, "%s: more than %d extents", name,
		      max - 1);
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent *e = &fm->fm_extents[i];

			if (e->fe_flags & FIEMAP_EXTENT_DELALLOC)
				continue;
			if (unwritten)
				unwritten[n] = e->fe_flags & FIEMAP_EXTENT_UNWRITTEN;
			start[n] = (long)e->fe_logical;
			end[n++] = (long)(e->fe_logical + e->fe_length);
		}
	} else {
		CHECK(0, "FIEMAP %s: %s", name, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	free(fm);
	return n;
}

/* Is [a, b) covered by the extents / touched by any of them? */
static bool ext_covers(const long *start, const long *end, int n, long a, long b)
{
	for (int i = 0; i < n && a < b; i++)
		if (start[i] <= a && end[i] > a)
			a = end[i];
	return a >= b;
}

static bool ext_touches(const long *start, const long *end, int n, long a, long b)
{
	for (int i = 0; i < n; i++)
		if (start[i] < b && end[i] > a)
			return true;
	return false;
}

/* What the write returns under the limit: the page loop's answer (see (d)). */
static long limit_expect(long pos, long len, unsigned int bs, long limit)
{
	long end = pos + len;

	for (long p = pos / PAGE; p * PAGE < end; p++) {
		long pend = (p + 1) * PAGE < end ? (p + 1) * PAGE : end;

		if (round_up(pend, bs) > limit)
			return p * PAGE <= pos ? -ENOSPC : p * PAGE - pos;
	}
	return len;
}

/*
 * After an fsync: nothing allocated past EOF, and in the chunks wholly below
 * the limit no page that no write touched is still allocated and unwritten
 * (the reservations' unused part was given back).  Chunks reaching the
 * limit are not checked: allocations that failed there left what fitted,
 * as a file system does.
 *
 * An untouched page may still be allocated *and written* (zeroes) when it
 * lies within ZEROOUT_PAGES of a written page: ext4 converts a write into
 * an unwritten extent by zeroing small unwritten neighbours rather than
 * splitting the extent (extent_max_zeroout_kb, 32 KiB by default), so such
 * gaps are data by the time the cache looks.  Anything farther is a page
 * the give-back missed.
 */
#define ZEROOUT_PAGES	(32768 / PAGE)

static bool touched_near(const unsigned char *touched, long p, long nr)
{
	for (long q = p - ZEROOUT_PAGES; q <= p + ZEROOUT_PAGES; q++)
		if (q >= 0 && q < nr && touched[q])
			return true;
	return false;
}

static void check_given_back(const char *name, const unsigned char *touched,
			     long size, long limit, const char *ctx)
{
	static long es[MAX_EXT], ee[MAX_EXT];
	static bool eu[MAX_EXT];
	int n = real_alloc_extents(name, es, ee, eu, MAX_EXT);
	long below = limit / RESV_CHUNK * RESV_CHUNK;
	long nr = RND_SPAN / PAGE + 1;

	CHECK(!ext_touches(es, ee, n, round_up(size, fs_block), FIEMAP_MAX_OFFSET),
	      "%s: blocks allocated past EOF (%ld) after fsync", ctx, size);
	if (fs_block != PAGE)
		return;
	for (long p = 0; p * PAGE < below && p * PAGE < size; p++) {
		if (touched[p])
			continue;
		for (int i = 0; i < n; i++) {
			if (es[i] >= (p + 1) * PAGE || ee[i] <= p * PAGE)
				continue;
			if (eu[i] || !touched_near(touched, p, nr)) {
				CHECK(0, "%s: page %ld was never written but is allocated "
				      "(%s) in the backing file after fsync", ctx, p,
				      eu[i] ? "unwritten" : "written, far from any write");
				return;
			}
		}
	}
}

/*
 * Random writes into a new file while allocations past a limit fail (after
 * allocating what fits).  Every write returns exactly what the page loop
 * says (a failed reservation must not cut it short, nor let a write past
 * the limit through); the bytes of every write acknowledged have storage
 * in the backing file when it returns (no delayed allocation to fail at
 * writeback); every fsync succeeds; the file is the model at the end, in
 * the cache and in the backing file.  Returns the fallocate calls made by
 * the writes that land wholly in chunks below the limit (all: in *all).
 */
static long test_random_enospc(unsigned int bs, int pw, bool resv, uint64_t seed,
			       long *all)
{
	struct dir_cfg dc = { .block_size = bs, .perform_write = pw,
			      .dirty_expire_ms = 600000, .writeback_interval_ms = 600000,
			      .reserve = resv ? "1M" : "0" };
	struct pcache *pc = dir_cache(&dc);
	static long es[MAX_EXT], ee[MAX_EXT];
	unsigned char *touched = calloc(RND_SPAN / PAGE + 1, 1);
	long limit, allocs, below = 0;
	struct model m;
	char ctx[128];
	int fd;

	rnd_state = seed;
	limit = RESV_CHUNK + rnd(2 * RESV_CHUNK) / 512 * 512;
	snprintf(ctx, sizeof(ctx), "random ENOSPC bs %u pw %d %s, limit %ld, seed %llu",
		 bs, pw, resv ? "reserving" : "exact", limit, (unsigned long long)seed);
	model_init(&m, RND_SPAN + 4 * PAGE);
	fd = open_file(pc, "rnd", O_CREAT | O_RDWR | O_TRUNC);
	STORE(inj_alloc_limit, limit);
	allocs = LOAD(inj_allocs);
	for (int i = 0; i < RND_WRITES; i++) {
		/* Half like fio's 4 KiB random writes, half any shape. */
		long off = rnd(2) ? rnd(RND_SPAN / PAGE) * PAGE : rnd(RND_SPAN);
		long len = off % PAGE ? 1 + rnd(3 * PAGE) : PAGE;
		long want = limit_expect(off, len, bs, limit);
		long before = LOAD(inj_allocs);
		ssize_t got = write_pattern(fd, &m, (unsigned)i + 1, (size_t)off, (size_t)len);

		if (off + len <= limit / RESV_CHUNK * RESV_CHUNK)
			below += LOAD(inj_allocs) - before;

		CHECK(got == want, "%s: write %d (%ld+%ld) returned %zd, want %ld", ctx, i,
		      off, len, got, want);
		if (got > 0) {
			int n = real_alloc_extents("rnd", es, ee, NULL, MAX_EXT);

			for (long p = off / PAGE; p * PAGE < off + got; p++)
				touched[p] = 1;
			CHECK(ext_covers(es, ee, n, off / fs_block * fs_block,
					 round_up(off + got, fs_block)),
			      "%s: write %d (%ld+%zd) returned without storage for its "
			      "bytes in the backing file", ctx, i, off, got);
		}
		if ((i + 1) % RND_SYNC_EVERY == 0) {
			CHECK_EQ(pcache_fsync(fd), 0);
			check_given_back("rnd", touched, (long)m.size, limit, ctx);
		}
	}
	*all = LOAD(inj_allocs) - allocs;
	STORE(inj_alloc_limit, -1);
	CHECK_EQ(pcache_fsync(fd), 0);
	check_cached(fd, &m, ctx);
	check_backing("rnd", &m, ctx);
	check_given_back("rnd", touched, (long)m.size, limit, ctx);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "rnd"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	model_free(&m);
	free(touched);
	return below;
}

static void test_random_enospc_all(uint64_t seed)
{
	long sum_exact = 0, sum_resv = 0;

	for (size_t i = 0; i < ARRAY_SIZE(block_sizes); i++) {
		unsigned int bs = block_sizes[i];

		for (int pw = 0; pw <= 1; pw++) {
			long exact_all, resv_all;
			long exact = test_random_enospc(bs, pw, false, seed + i, &exact_all);
			long resv = test_random_enospc(bs, pw, true, seed + i, &resv_all);

			printf("random writes under a space limit, bs %u pw %d: fallocate calls "
			       "exact %ld, reserving %ld (by writes below the limit's chunk: "
			       "%ld, %ld)\n", bs, pw, exact_all, resv_all, exact, resv);
			sum_exact += exact;
			sum_resv += resv;
		}
	}
	/*
	 * Below the limit, about one call per chunk and sync interval.  Summed
	 * over the runs: one run can come near half (a limit on a chunk
	 * boundary makes every failed write's trim forget the chunk below it,
	 * which the next write there reserves again).
	 */
	CHECK(2 * sum_resv < sum_exact, "below the limit reserving made %ld fallocate "
	      "calls in all, exact allocation %ld: not half", sum_resv, sum_exact);
}

int main(void)
{
	const char *env = getenv("PCACHE_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) :
			((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();

	setvbuf(stdout, NULL, _IOLBF, 0);
	unsetenv("PCACHE_DIR_IO");
	unsetenv("PCACHE_DIR_RESERVE");
	backing_dir_make("pcache-test-dir");
	wrappers_install();
	printf("backing directory %s (filesystem block %ld), seed %llu (replay: "
	       "PCACHE_TEST_SEED=%llu)\n", backing_dir, fs_block, (unsigned long long)seed,
	       (unsigned long long)seed);

	for (size_t i = 0; i < ARRAY_SIZE(block_sizes); i++) {
		unsigned int bs = block_sizes[i];

		for (int pw = 0; pw <= 1; pw++) {
			test_round_trip(bs, pw);
			test_rmw(bs, pw);
			test_holes(bs, pw);
			test_enospc(bs, pw, false);
			test_enospc(bs, pw, true);
		}
		test_sync_calls(bs);
		printf("block size %u: round trip, read-modify-write, holes, ENOSPC, sync "
		       "calls: done\n", bs);
	}
	for (size_t i = 0; i < ARRAY_SIZE(block_sizes); i++)
		test_calls_per_mib(block_sizes[i]);
	test_reclaim(1024);
	test_throttle(2048, 0);
	test_throttle(2048, 1);
	test_flusher(512);
	test_fsync_waits_for_flusher(1024);
	test_errseq_fsync(512);
	test_errseq_unseen(4096);
	test_random_enospc_all(seed);

	wrappers_remove();
	backing_dir_remove();
	return test_exit();
}
