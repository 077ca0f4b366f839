/*
 * test_iov_iter - the iterator moves exactly the bytes it says, in order.
 *
 * Table-driven: every segment shape (one segment; many small ones; 1-byte
 * segments; zero-length segments at the start, middle and end; segments
 * crossing page boundaries) is laid out in memory as each kind of
 * iterator (user iovec, kvec, pagevec over fake pages), then copied from,
 * copied to and zeroed in chunks of several sizes (1, 7, 64, 4096, 4097,
 * everything, a varying mix), with the iterator's count either the
 * segments' total or 5 bytes short of it.  After each run the whole memory
 * the segments live in is compared byte for byte with the expected image
 * (the stream pattern inside the segments, the untouched background
 * between them).  Then advance/revert round trips against a model,
 * import_iovec()'s validation, and user iovecs with a bad segment in the
 * middle.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "base/alloc.h"
#include "lib/iov_iter.h"
#include "lib/uaccess.h"
#include "mm/page.h"

#define PG		4096UL
#define MAXSEG		512
#define MAXTOTAL	(64 * 1024)
#define TAG_STREAM	1	/* the bytes of the read/write, by stream offset */
#define TAG_BG		2	/* background of the segments' memory */
#define END		SIZE_MAX

static const char *const kind_name[] = {
	[ITER_IOVEC] = "iovec", [ITER_KVEC] = "kvec", [ITER_PAGEVEC] = "pagevec",
};

/* ---- shapes ---- */

struct shape {
	const char *name;
	size_t lens[40];	/* ends with END; empty: generated */
	void (*gen)(size_t *lens, unsigned long *n);
};

static void gen_one_byte(size_t *lens, unsigned long *n)
{
	for (*n = 0; *n < 300; (*n)++)
		lens[*n] = 1;
}

static void gen_small(size_t *lens, unsigned long *n)
{
	for (*n = 0; *n < 200; (*n)++)
		lens[*n] = 1 + (*n * 37) % 61;
}

static void gen_zero_interleaved(size_t *lens, unsigned long *n)
{
	/* 0, 1, 0, 0, 2, 0, 0, 0, 3, ... with runs of empty segments */
	*n = 0;
	for (unsigned long k = 1; *n < MAXSEG - 20 && k < 40; k++) {
		for (unsigned long z = 0; z < k % 4; z++)
			lens[(*n)++] = 0;
		lens[(*n)++] = k * 13;
	}
	lens[(*n)++] = 0;
}

static const struct shape shapes[] = {
	{ .name = "one segment", .lens = { 8192 + 77, END } },
	{ .name = "one page", .lens = { 4096, END } },
	{ .name = "one byte", .lens = { 1, END } },
	{ .name = "1-byte segments", .lens = { END }, .gen = gen_one_byte },
	{ .name = "many small segments", .lens = { END }, .gen = gen_small },
	{ .name = "zero-length interleaved", .lens = { END }, .gen = gen_zero_interleaved },
	{ .name = "zero-length at start", .lens = { 0, 0, 0, 100, 4096, 5, END } },
	{ .name = "zero-length in middle", .lens = { 100, 0, 0, 4000, 0, 300, END } },
	{ .name = "zero-length at end", .lens = { 4097, 3, 5000, 0, 0, 0, END } },
	{ .name = "crossing pages", .lens = { 4095, 1, 4097, 8192, 2, 12288, 4093, END } },
	{ .name = "all empty", .lens = { 0, 0, 0, END } },
	{ .name = "no segments", .lens = { END } },
};

/* ---- one laid-out set of segments ---- */

struct segs {
	enum iter_type kind;
	unsigned long n;
	size_t total;
	char *base[MAXSEG];
	size_t len[MAXSEG];
	size_t off[MAXSEG];	/* stream offset of each segment */
	struct iovec iov[MAXSEG];
	struct kvec kvec[MAXSEG];
	struct page_vec pvec[MAXSEG];
	struct page page[MAXSEG];
	char *mem;		/* the memory all segments live in */
	size_t mem_len;
	char *bg;		/* mem's background, to reset it */
	char *image;		/* what mem must hold after an operation */
};

static struct segs S;
static char stream_ref[MAXTOTAL];	/* pattern TAG_STREAM, offset 0.. */
static char zero_ref[MAXTOTAL];
static char dstbuf[MAXTOTAL + 64];

static void segs_free(struct segs *s)
{
	if (s->mem) {
		if (s->kind == ITER_PAGEVEC)
			free(s->mem);
		else
			munmap(s->mem, s->mem_len);
	}
	free(s->bg);
	free(s->image);
	s->mem = s->bg = s->image = NULL;
}

/*
 * Lay out @sh as @kind.  iovec/kvec: one mapping, segments separated by
 * small odd gaps starting 3 bytes before a page end, so most of them
 * straddle page boundaries.  pagevec: segments longer than a page are
 * split, and each segment gets its own fake page at an odd offset.
 */
static void segs_make(struct segs *s, const struct shape *sh, enum iter_type kind)
{
	size_t lens[MAXSEG];
	unsigned long n = 0;

	segs_free(s);
	if (sh->gen) {
		sh->gen(lens, &n);
	} else {
		for (size_t k = 0; sh->lens[k] != END; k++) {
			size_t len = sh->lens[k];

			if (kind != ITER_PAGEVEC) {
				lens[n++] = len;
				continue;
			}
			do {	/* split into pieces of at most a page (0 stays 0) */
				lens[n] = min(len, PG);
				len -= lens[n++];
			} while (len);
		}
	}

	s->kind = kind;
	s->n = n;
	s->total = 0;
	if (kind == ITER_PAGEVEC) {
		s->mem_len = (n ? n : 1) * PG;
		s->mem = aligned_alloc(PG, s->mem_len);
	} else {
		size_t need = PG;

		for (unsigned long k = 0; k < n; k++)
			need += lens[k] + 97;
		s->mem_len = (need + PG - 1) & ~(PG - 1);
		s->mem = mmap(NULL, s->mem_len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s->mem == MAP_FAILED)
			TEST_SKIP("mmap: %s", strerror(errno));
	}
	s->bg = malloc(s->mem_len);
	s->image = malloc(s->mem_len);
	pattern_fill(s->bg, s->mem_len, TAG_BG, 0);
	memcpy(s->mem, s->bg, s->mem_len);

	size_t cursor = PG - 3;
	for (unsigned long k = 0; k < n; k++) {
		size_t len = lens[k];

		if (kind == ITER_PAGEVEC) {
			size_t poff = (k * 37) % (PG - len + 1);

			memset(&s->page[k], 0, sizeof(s->page[k]));
			s->page[k].addr = s->mem + k * PG;
			s->pvec[k] = (struct page_vec){ &s->page[k], poff, len };
			s->base[k] = s->mem + k * PG + poff;
		} else {
			s->base[k] = s->mem + cursor;
			cursor += len + (k * 29) % 97;
		}
		s->len[k] = len;
		s->off[k] = s->total;
		s->total += len;
		s->iov[k] = (struct iovec){ s->base[k], len };
		s->kvec[k] = (struct kvec){ s->base[k], len };
	}
	if (s->total > MAXTOTAL)
		abort();
}

static void iter_make(struct iov_iter *it, const struct segs *s, int dir, size_t count)
{
	switch (s->kind) {
	case ITER_IOVEC:
		iov_iter_init(it, dir, s->iov, s->n, count);
		break;
	case ITER_KVEC:
		iov_iter_kvec(it, dir, s->kvec, s->n, count);
		break;
	case ITER_PAGEVEC:
		iov_iter_pagevec(it, dir, s->pvec, s->n, count);
		break;
	}
}

/* Fill the first @limit stream bytes of the segments from @ref, in mem and/or image. */
static void segs_put(struct segs *s, char *dst_mem, const char *ref, size_t limit)
{
	for (unsigned long k = 0; k < s->n && s->off[k] < limit; k++) {
		size_t len = min(s->len[k], limit - s->off[k]);

		memcpy(dst_mem + (s->base[k] - s->mem), ref + s->off[k], len);
	}
}

/* mem == image, byte for byte; report the first difference. */
static bool segs_check(const struct segs *s, const char *what)
{
	if (memcmp(s->mem, s->image, s->mem_len) == 0)
		return true;
	for (size_t b = 0; b < s->mem_len; b++)
		if (s->mem[b] != s->image[b]) {
			CHECK(0, "%s: memory differs at byte %zu of %zu", what, b, s->mem_len);
			break;
		}
	return false;
}

/* ---- chunked copies ---- */

/* Chunk sizes, cycled. */
struct plan {
	const char *name;
	size_t n;
	size_t chunks[8];
};

static const struct plan plans[] = {
	{ "1", 1, { 1 } },
	{ "7", 1, { 7 } },
	{ "64", 1, { 64 } },
	{ "4096", 1, { 4096 } },
	{ "4097", 1, { 4097 } },
	{ "all", 1, { SIZE_MAX } },
	/* with a 0-byte copy, which must be a no-op */
	{ "mixed", 7, { 1, 4095, 3, 64, 0, 8191, 2 } },
};

static size_t plan_chunk(const struct plan *p, size_t step)
{
	return p->chunks[step % p->n];
}

enum op { OP_FROM, OP_TO, OP_ZERO };
static const char *const op_name[] = { "copy_from_iter", "copy_to_iter", "iov_iter_zero" };

static void run_plan(struct segs *s, enum op op, const struct plan *p, size_t count,
		     const char *shape)
{
	struct iov_iter it;
	size_t pos = 0, got, want;
	char what[160];

	snprintf(what, sizeof(what), "%s %s, %s, chunks %s, count %zu",
		 op_name[op], kind_name[s->kind], shape, p->name, count);

	memcpy(s->mem, s->bg, s->mem_len);
	memcpy(s->image, s->bg, s->mem_len);
	if (op == OP_FROM) {
		segs_put(s, s->mem, stream_ref, s->total);
		segs_put(s, s->image, stream_ref, s->total);
		pattern_fill(dstbuf, sizeof(dstbuf), TAG_BG, 0);
	}
	iter_make(&it, s, op == OP_FROM ? ITER_SOURCE : ITER_DEST, count);

	for (size_t step = 0; pos < count && step < 4 * MAXTOTAL; step++) {
		size_t c = plan_chunk(p, step);

		want = min(c, count - pos);
		switch (op) {
		case OP_FROM:
			got = copy_from_iter(dstbuf + pos, c, &it);
			break;
		case OP_TO:
			got = copy_to_iter(stream_ref + pos, c, &it);
			break;
		default:
			got = iov_iter_zero(c, &it);
			break;
		}
		if (got != want) {
			CHECK(got == want, "%s: step %zu moved %zu, want %zu", what, step, got, want);
			return;
		}
		pos += got;
		if (iov_iter_count(&it) != count - pos) {
			CHECK_EQ(iov_iter_count(&it), count - pos);
			return;
		}
	}
	/* Exhausted: one more copy moves nothing. */
	got = op == OP_FROM ? copy_from_iter(dstbuf + pos, 100, &it)
			    : op == OP_TO ? copy_to_iter(stream_ref, 100, &it)
					  : iov_iter_zero(100, &it);
	CHECK(got == 0, "%s: moved %zu past the end", what, got);

	if (op == OP_FROM) {
		CHECK(memcmp(dstbuf, stream_ref, count) == 0, "%s: wrong bytes", what);
		CHECK(pattern_check(dstbuf + count, 64, TAG_BG, count) == -1,
		      "%s: wrote past count", what);
	} else {
		segs_put(s, s->image, op == OP_TO ? stream_ref : zero_ref, count);
	}
	segs_check(s, what);
}

static void test_shapes(void)
{
	static const enum iter_type kinds[] = { ITER_IOVEC, ITER_KVEC, ITER_PAGEVEC };
	int runs = 0;

	for (size_t sh = 0; sh < ARRAY_SIZE(shapes); sh++)
		for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
			segs_make(&S, &shapes[sh], kinds[k]);
			for (enum op op = OP_FROM; op <= OP_ZERO; op++)
				for (size_t p = 0; p < ARRAY_SIZE(plans); p++) {
					run_plan(&S, op, &plans[p], S.total, shapes[sh].name);
					if (S.total > 5)
						run_plan(&S, op, &plans[p], S.total - 5,
							 shapes[sh].name);
					runs++;
				}
		}
	segs_free(&S);
	printf("shapes: %d chunked runs\n", runs);
}

/* ---- advance / revert against a model ---- */

static unsigned rng_state;

static unsigned rng(void)
{
	rng_state = rng_state * 1103515245 + 12345;
	return rng_state >> 8;
}

/* A small copy at the current position must read the stream there; undo it. */
static bool peek_ok(struct iov_iter *it, size_t pos)
{
	char buf[16];
	size_t n = min(sizeof(buf), iov_iter_count(it));
	size_t got = copy_from_iter(buf, n, it);

	iov_iter_revert(it, got);
	return got == n && memcmp(buf, stream_ref + pos, n) == 0;
}

static void test_advance_revert(void)
{
	static const enum iter_type kinds[] = { ITER_IOVEC, ITER_KVEC, ITER_PAGEVEC };
	unsigned seed = 12345;

	for (size_t sh = 0; sh < ARRAY_SIZE(shapes); sh++)
		for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
			struct iov_iter it, start;
			size_t pos = 0, count;
			bool ok = true;

			segs_make(&S, &shapes[sh], kinds[k]);
			memcpy(S.mem, S.bg, S.mem_len);
			segs_put(&S, S.mem, stream_ref, S.total);
			count = S.total;
			iter_make(&it, &S, ITER_SOURCE, count);
			start = it;
			rng_state = seed = seed * 31 + 7;

			for (int step = 0; step < 300 && ok; step++) {
				size_t n;

				switch (rng() % 5) {
				case 0:	/* advance, sometimes past the end */
				case 1:
					n = rng() % (count / 3 + 2);
					iov_iter_advance(&it, n);
					pos = min(count, pos + n);
					break;
				case 2:	/* revert at most what was advanced */
					n = pos ? rng() % (pos + 1) : 0;
					iov_iter_revert(&it, n);
					pos -= n;
					break;
				case 3:	/* copy, then check the bytes */
					n = rng() % 5000;
					n = copy_from_iter(dstbuf, n, &it);
					if (memcmp(dstbuf, stream_ref + pos, n) != 0)
						ok = false;
					pos += n;
					break;
				case 4:	/* revert by 0: nothing at all */
					n = it.iov_offset;
					iov_iter_revert(&it, 0);
					if (n != it.iov_offset)
						ok = false;
					break;
				}
				if (iov_iter_count(&it) != count - pos || !peek_ok(&it, pos))
					ok = false;
			}
			CHECK(ok, "advance/revert %s %s: diverged from the model (seed %u)",
			      kind_name[S.kind], shapes[sh].name, seed);

			/* All the way back: the same state as fresh, and a full re-copy. */
			iov_iter_revert(&it, pos);
			CHECK(iov_iter_count(&it) == count, "%s %s: count after full revert",
			      kind_name[S.kind], shapes[sh].name);
			CHECK(it.nr_segs <= start.nr_segs, "%s %s: reverted past the start",
			      kind_name[S.kind], shapes[sh].name);
			memset(dstbuf, 0, count + 16);
			CHECK_EQ(copy_from_iter(dstbuf, SIZE_MAX, &it), count);
			CHECK(memcmp(dstbuf, stream_ref, count) == 0, "%s %s: re-copy differs",
			      kind_name[S.kind], shapes[sh].name);

			/* Advance to the very end, then revert it all. */
			iter_make(&it, &S, ITER_SOURCE, count);
			iov_iter_advance(&it, count);
			CHECK_EQ(iov_iter_count(&it), 0);
			iov_iter_revert(&it, count);
			CHECK_EQ(copy_from_iter(dstbuf, SIZE_MAX, &it), count);
			CHECK(memcmp(dstbuf, stream_ref, count) == 0, "%s %s: re-copy differs",
			      kind_name[S.kind], shapes[sh].name);
		}
	segs_free(&S);
}

/* Revert lands on the right segment across runs of empty segments. */
static void test_revert_across_empty(void)
{
	char a[10], b[10];
	struct iovec iov[] = { { a, 10 }, { NULL, 0 }, { NULL, 0 }, { b, 10 }, { NULL, 0 } };
	struct iov_iter it;
	char out[20];

	pattern_fill(a, 10, TAG_STREAM, 0);
	pattern_fill(b, 10, TAG_STREAM, 10);
	iov_iter_init(&it, ITER_SOURCE, iov, ARRAY_SIZE(iov), 20);
	CHECK_EQ(copy_from_iter(out, 12, &it), 12);
	CHECK(it.iov == &iov[3] && it.iov_offset == 2, "after 12: seg %td off %zu",
	      it.iov - iov, it.iov_offset);
	iov_iter_revert(&it, 3);	/* back over b's 2 bytes and two empties */
	CHECK(it.iov == &iov[0] && it.iov_offset == 9 && it.nr_segs == 5,
	      "after revert 3: seg %td off %zu nr %lu", it.iov - iov, it.iov_offset, it.nr_segs);
	CHECK_EQ(copy_from_iter(out, 20, &it), 11);
	CHECK(pattern_check(out, 11, TAG_STREAM, 9) == -1, "bytes after revert");
	/* At the very end (past the trailing empty segment), back by 20. */
	iov_iter_revert(&it, 20);
	CHECK(it.iov == &iov[0] && it.iov_offset == 0 && it.nr_segs == 5,
	      "full revert: seg %td off %zu", it.iov - iov, it.iov_offset);
	/* A revert larger than any read or write is refused. */
	iov_iter_revert(&it, MAX_RW_COUNT + 1);
	CHECK_EQ(iov_iter_count(&it), 20);
}

/* ---- import_iovec ---- */

static void test_import_iovec(void)
{
	struct iovec fast[UIO_FASTIOV], *iov = (struct iovec *)1;
	static struct iovec big[UIO_MAXIOV + 1];
	struct iov_iter it;
	char buf[64];
	long ret;

	for (int k = 0; k <= UIO_MAXIOV; k++)
		big[k] = (struct iovec){ buf + k % 64, 1 };

	/* Counts. */
	CHECK_EQ(import_iovec(ITER_SOURCE, big, UIO_MAXIOV + 1, fast, UIO_FASTIOV, &iov, &it), -EINVAL);
	CHECK(iov == NULL, "*iovp not cleared on error");
	CHECK_EQ(import_iovec(ITER_SOURCE, big, -1, fast, UIO_FASTIOV, &iov, &it), -EINVAL);
	CHECK_EQ(import_iovec(ITER_SOURCE, big, INT32_MIN, fast, UIO_FASTIOV, &iov, &it), -EINVAL);
	ret = import_iovec(ITER_SOURCE, big, UIO_MAXIOV, fast, UIO_FASTIOV, &iov, &it);
	CHECK_EQ(ret, UIO_MAXIOV);
	CHECK(iov != NULL && iov != fast, "a big array must be allocated");
	CHECK_EQ(iov_iter_count(&it), UIO_MAXIOV);
	CHECK_EQ(it.nr_segs, UIO_MAXIOV);
	kfree(iov);

	/* Zero segments: fine, even with no array at all. */
	iov = (struct iovec *)1;
	CHECK_EQ(import_iovec(ITER_SOURCE, NULL, 0, fast, UIO_FASTIOV, &iov, &it), 0);
	CHECK(iov == NULL, "*iovp for nr_segs 0");
	CHECK_EQ(iov_iter_count(&it), 0);
	CHECK_EQ(copy_from_iter(buf, 10, &it), 0);

	/* NULL or unreadable arrays. */
	CHECK_EQ(import_iovec(ITER_SOURCE, NULL, 1, fast, UIO_FASTIOV, &iov, &it), -EFAULT);
	char *none = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (none == MAP_FAILED)
		TEST_SKIP("mmap: %s", strerror(errno));
	mprotect(none + PG, PG, PROT_NONE);
	CHECK_EQ(import_iovec(ITER_SOURCE, (struct iovec *)(none + PG), 3, fast, UIO_FASTIOV,
			      &iov, &it), -EFAULT);
	CHECK_EQ(import_iovec(ITER_SOURCE, (struct iovec *)(none + PG), 30, fast, UIO_FASTIOV,
			      &iov, &it), -EFAULT);
	CHECK(iov == NULL, "*iovp after -EFAULT with an allocation");
	/* An array whose tail runs into the bad page. */
	struct iovec *edge = (struct iovec *)(none + PG) - 2;
	edge[0] = (struct iovec){ buf, 1 };
	edge[1] = (struct iovec){ buf, 2 };
	CHECK_EQ(import_iovec(ITER_SOURCE, edge, 2, fast, UIO_FASTIOV, &iov, &it), 3);
	CHECK_EQ(import_iovec(ITER_SOURCE, edge, 3, fast, UIO_FASTIOV, &iov, &it), -EFAULT);
	/* A negative length read before the fault wins, as the kernel reads in order. */
	edge[1].iov_len = (size_t)-1;
	CHECK_EQ(import_iovec(ITER_SOURCE, edge, 3, fast, UIO_FASTIOV, &iov, &it), -EINVAL);

	/* Negative lengths, first, middle and last; and exactly SSIZE_MAX + 1. */
	struct iovec neg[5];
	for (int where = 0; where < 5; where++) {
		for (int k = 0; k < 5; k++)
			neg[k] = (struct iovec){ buf, 10 };
		neg[where].iov_len = where == 2 ? (size_t)SSIZE_MAX + 1 : (size_t)-5;
		CHECK_EQ(import_iovec(ITER_SOURCE, neg, 5, fast, UIO_FASTIOV, &iov, &it), -EINVAL);
		CHECK_EQ(import_iovec(ITER_SOURCE, neg, 5, fast, 2, &iov, &it), -EINVAL);
		CHECK(iov == NULL, "*iovp after -EINVAL");
	}
	/* SSIZE_MAX itself is not negative: capped. */
	neg[0] = (struct iovec){ (void *)0x10000, SSIZE_MAX };
	CHECK_EQ(import_iovec(ITER_SOURCE, neg, 1, fast, UIO_FASTIOV, &iov, &it), MAX_RW_COUNT);

	/* A range that wraps the address space is not user memory. */
	struct iovec wrap[2] = { { buf, 1 }, { (void *)-100, 200 } };
	CHECK_EQ(import_iovec(ITER_SOURCE, wrap, 2, fast, UIO_FASTIOV, &iov, &it), -EFAULT);

	/* The total is capped at MAX_RW_COUNT by shortening segments (no copying). */
	struct iovec huge[4] = {
		{ (void *)0x10000000, 0x40000000 }, { (void *)0x50000000, 0x40000000 },
		{ (void *)0x90000000, 0x40000000 }, { (void *)0xd0000000, 7 },
	};
	ret = import_iovec(ITER_DEST, huge, 4, fast, UIO_FASTIOV, &iov, &it);
	CHECK_EQ(ret, MAX_RW_COUNT);
	CHECK(iov == NULL, "fits in fast");
	CHECK_EQ(iov_iter_count(&it), MAX_RW_COUNT);
	CHECK_EQ(fast[0].iov_len, 0x40000000);
	CHECK_EQ(fast[1].iov_len, MAX_RW_COUNT - 0x40000000);
	CHECK_EQ(fast[2].iov_len, 0);
	CHECK_EQ(fast[3].iov_len, 0);
	CHECK_EQ(huge[1].iov_len, 0x40000000);	/* the caller's array is not touched */
	CHECK(!it.data_source, "direction");
	/* Same, through an allocated copy. */
	ret = import_iovec(ITER_SOURCE, huge, 4, fast, 2, &iov, &it);
	CHECK_EQ(ret, MAX_RW_COUNT);
	CHECK(iov != NULL && iov[1].iov_len == MAX_RW_COUNT - 0x40000000, "allocated copy");
	CHECK(it.data_source, "direction");
	kfree(iov);

	/* The array is copied: later changes to the caller's do not matter. */
	char src[30];
	struct iovec mine[3] = { { src, 10 }, { src + 10, 0 }, { src + 10, 20 } };
	pattern_fill(src, 30, TAG_STREAM, 0);
	CHECK_EQ(import_iovec(ITER_SOURCE, mine, 3, fast, UIO_FASTIOV, &iov, &it), 30);
	mine[0].iov_base = NULL;
	mine[2].iov_len = 1;
	CHECK_EQ(copy_from_iter(buf, 64, &it), 30);
	CHECK(pattern_check(buf, 30, TAG_STREAM, 0) == -1, "imported copy");

	/* -ENOMEM from the allocation hook. */
	alloc_fail_after(0);
	iov = (struct iovec *)1;
	CHECK_EQ(import_iovec(ITER_SOURCE, big, 100, fast, UIO_FASTIOV, &iov, &it), -ENOMEM);
	CHECK(iov == NULL, "*iovp after -ENOMEM");
	CHECK_EQ(import_iovec(ITER_SOURCE, big, UIO_FASTIOV, fast, UIO_FASTIOV, &iov, &it),
		 UIO_FASTIOV);	/* fast: no allocation needed */
	alloc_fail_after(-1);

	/* import_single_range. */
	struct iovec one;
	CHECK_EQ(import_single_range(ITER_SOURCE, buf, (size_t)-1, &one, &it), -EINVAL);
	CHECK_EQ(import_single_range(ITER_SOURCE, buf, (size_t)SSIZE_MAX + 1, &one, &it), -EINVAL);
	CHECK_EQ(import_single_range(ITER_SOURCE, (void *)0x10000, SSIZE_MAX, &one, &it),
		 MAX_RW_COUNT);
	CHECK_EQ(iov_iter_count(&it), MAX_RW_COUNT);
	CHECK_EQ(import_single_range(ITER_SOURCE, (void *)-100, 200, &one, &it), -EFAULT);
	CHECK_EQ(import_single_range(ITER_DEST, buf, 0, &one, &it), 0);
	CHECK_EQ(import_single_range(ITER_SOURCE, src, 30, &one, &it), 30);
	CHECK(one.iov_base == src && one.iov_len == 30 && it.nr_segs == 1, "single segment");
	CHECK_EQ(copy_from_iter(buf, 64, &it), 30);
	CHECK(pattern_check(buf, 30, TAG_STREAM, 0) == -1, "single range copy");

	munmap(none, 2 * PG);
}

/* ---- user iovecs with a bad segment ---- */

/*
 * Segments A (good), B (bad from its first byte, or good for @lead bytes
 * and then bad), C (good).  Every user operation must stop exactly at the
 * first bad byte of B.
 */
static void bad_middle_case(size_t lead, size_t a_len, size_t b_len, bool unmapped)
{
	char *m = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *bad = m + 4 * PG, *empty = m;	/* an empty segment may point anywhere */
	struct iovec iov[5];
	struct iov_iter it;
	size_t good, total, left;

	if (m == MAP_FAILED)
		TEST_SKIP("mmap: %s", strerror(errno));
	/* A ends right where B starts, crossing a page; C after the bad page. */
	char *b = bad - lead, *a = b - a_len - 13, *c = bad + PG + 5;
	iov[0] = (struct iovec){ a, a_len };
	iov[1] = (struct iovec){ empty, 0 };
	iov[2] = (struct iovec){ b, b_len };
	iov[3] = (struct iovec){ c, 100 };
	iov[4] = (struct iovec){ empty, 0 };
	total = a_len + b_len + 100;
	/* B may end before the bad page: then everything is good. */
	good = lead >= b_len ? total : a_len + lead;
	pattern_fill(a, a_len, TAG_STREAM, 0);
	pattern_fill(b, min(lead, b_len), TAG_STREAM, a_len);
	pattern_fill(c, 100, TAG_STREAM, a_len + b_len);
	if (unmapped)
		munmap(bad, PG);
	else
		mprotect(bad, PG, PROT_NONE);

	/* copy_from_iter: exactly the good bytes, iterator right after them. */
	iov_iter_init(&it, ITER_SOURCE, iov, 5, total);
	pattern_fill(dstbuf, total + 16, TAG_BG, 0);
	CHECK_EQ(copy_from_iter(dstbuf, total, &it), good);
	CHECK(pattern_check(dstbuf, good, TAG_STREAM, 0) == -1, "bytes before the bad one");
	CHECK(pattern_check(dstbuf + good, total + 16 - good, TAG_BG, good) == -1,
	      "destination past the fault touched");
	CHECK_EQ(iov_iter_count(&it), total - good);
	CHECK_EQ(copy_from_iter(dstbuf, total, &it), 0);	/* still stuck */
	CHECK_EQ(iov_iter_count(&it), total - good);
	if (good < total) {
		/* Skipping the bad part lets C through. */
		iov_iter_advance(&it, b_len - lead);
		CHECK_EQ(copy_from_iter(dstbuf, total, &it), 100);
		CHECK(pattern_check(dstbuf, 100, TAG_STREAM, a_len + b_len) == -1, "C's bytes");
	}

	/* Fault-in: from the start, from inside A, and of only the good part. */
	iov_iter_init(&it, ITER_SOURCE, iov, 5, total);
	left = fault_in_iov_iter_readable(&it, total);
	CHECK_EQ(left, total - good);
	CHECK_EQ(fault_in_iov_iter_readable(&it, good), 0);
	CHECK_EQ(fault_in_iov_iter_readable(&it, total + 50), total - good + 50);
	if (a_len > 7) {
		iov_iter_advance(&it, 7);
		CHECK_EQ(fault_in_iov_iter_readable(&it, total - 7), total - good);
		CHECK_EQ(iov_iter_count(&it), total - 7);	/* fault-in consumes nothing */
	}

	/* copy_to_iter and iov_iter_zero stop at the same byte. */
	iov_iter_init(&it, ITER_DEST, iov, 5, total);
	CHECK_EQ(copy_to_iter(stream_ref, total, &it), good);
	CHECK(memcmp(a, stream_ref, a_len) == 0 && memcmp(b, stream_ref + a_len, min(lead, b_len)) == 0,
	      "copy_to_iter bytes");
	CHECK(pattern_check(c, 100, TAG_STREAM, a_len + b_len) == -1 || good == total,
	      "C written past the fault");
	iov_iter_init(&it, ITER_DEST, iov, 5, total);
	CHECK_EQ(iov_iter_zero(total, &it), good);
	CHECK(memcmp(a, zero_ref, a_len) == 0 && memcmp(b, zero_ref, min(lead, b_len)) == 0,
	      "iov_iter_zero bytes");

	munmap(m, 8 * PG);
}

static void test_bad_middle(void)
{
	static const struct { size_t lead, a_len, b_len; } cases[] = {
		{ 0, 5000, 100 },	/* B's first byte is bad */
		{ 0, 1, 1 },
		{ 100, 5000, 300 },	/* B good for 100 bytes, then bad */
		{ 1, 4096, 4096 },
		{ 4095, 3, 4097 },
		{ 50, 10, 50 },		/* B ends exactly at the bad page: all good */
	};

	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		bad_middle_case(cases[k].lead, cases[k].a_len, cases[k].b_len, false);
		bad_middle_case(cases[k].lead, cases[k].a_len, cases[k].b_len, true);
	}
}

/* ---- pages, directions, kinds that cannot fault ---- */

static void test_pages_and_misuse(void)
{
	char *mem = aligned_alloc(PG, 2 * PG);
	struct page pg;
	struct kvec kv[2];
	struct iov_iter it;

	memset(&pg, 0, sizeof(pg));
	pg.addr = mem;
	pattern_fill(mem, 2 * PG, TAG_BG, 0);
	pattern_fill(dstbuf, PG, TAG_STREAM, 0);

	/* copy_page_from_iter: into the page at an offset, only there. */
	kv[0] = (struct kvec){ dstbuf, 100 };
	kv[1] = (struct kvec){ dstbuf + 100, PG - 100 };
	iov_iter_kvec(&it, ITER_SOURCE, kv, 2, PG);
	CHECK_EQ(copy_page_from_iter(&pg, 1000, 3000, &it), 3000);
	CHECK(pattern_check(mem, 1000, TAG_BG, 0) == -1, "before the offset");
	CHECK(pattern_check(mem + 1000, 3000, TAG_STREAM, 0) == -1, "page bytes");
	CHECK(pattern_check(mem + 4000, PG + 96, TAG_BG, 4000) == -1, "past the range");
	/* Past the page end: refused, nothing moves. */
	CHECK_EQ(copy_page_from_iter(&pg, 4000, 97, &it), 0);
	CHECK_EQ(copy_page_from_iter(&pg, PG + 1, 0, &it), 0);
	CHECK_EQ(iov_iter_count(&it), PG - 3000);

	/* copy_page_to_iter: out of the page. */
	kv[0] = (struct kvec){ dstbuf, PG };
	iov_iter_kvec(&it, ITER_DEST, kv, 1, PG);
	memset(dstbuf, 0, PG);
	CHECK_EQ(copy_page_to_iter(&pg, 1000, 3096, &it), 3096);
	CHECK(pattern_check(dstbuf, 3000, TAG_STREAM, 0) == -1, "page to iter");
	CHECK(pattern_check(dstbuf + 3000, 96, TAG_BG, 4000) == -1, "page to iter tail");

	/* Wrong direction: a warning and nothing moved. */
	iov_iter_kvec(&it, ITER_DEST, kv, 1, PG);
	CHECK_EQ(copy_from_iter(mem, 10, &it), 0);
	CHECK_EQ(copy_page_from_iter(&pg, 0, 10, &it), 0);
	CHECK_EQ(iov_iter_count(&it), PG);
	iov_iter_kvec(&it, ITER_SOURCE, kv, 1, PG);
	CHECK_EQ(copy_to_iter(mem, 10, &it), 0);
	CHECK_EQ(iov_iter_zero(10, &it), 0);
	CHECK_EQ(copy_page_to_iter(&pg, 0, 10, &it), 0);
	CHECK_EQ(iov_iter_count(&it), PG);

	/* Fault-in is a user-memory matter: 0 for the other kinds. */
	CHECK_EQ(fault_in_iov_iter_readable(&it, 100), 0);
	struct page_vec pv = { &pg, 0, 10 };
	iov_iter_pagevec(&it, ITER_SOURCE, &pv, 1, 10);
	CHECK_EQ(fault_in_iov_iter_readable(&it, 100), 0);
	CHECK(!iter_is_user(&it), "pagevec is not user");

	/* Copies stop at count even when the segments go on. */
	iov_iter_kvec(&it, ITER_SOURCE, kv, 1, 10);
	CHECK_EQ(copy_from_iter(mem, 100, &it), 10);
	free(mem);
}

int main(void)
{
	CHECK_EQ(uaccess_init(), 0);
	pattern_fill(stream_ref, sizeof(stream_ref), TAG_STREAM, 0);

	test_shapes();
	test_advance_revert();
	test_revert_across_empty();
	test_import_iovec();
	test_bad_middle();
	test_pages_and_misuse();
	return test_exit();
}
