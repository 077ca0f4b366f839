/*
 * stress.c - `pcache stress`: a model-based random test of the public API.
 *
 * Every operation is applied to pcache and to a model that is trivially
 * correct: for each file, a plain byte array and a size.  After every step
 * the harness compares what pcache returned with what the model predicts:
 * the return value, the bytes a read returned, the file size (fstat), the
 * file position where the op used one, and the byte range the op touched
 * (read back whole pages around it).  Every STRESS_FULL_CHECK ops, and at
 * the end, every file is read back in full and compared.  The first
 * mismatch stops the run (all threads) with a diagnostic on stderr.
 *
 * Design:
 *  - Each worker thread runs its share of the ops with its own PRNG
 *    (splitmix64), seeded from the run's seed and the thread number, so
 *    with --threads 1 a seed replays the same op sequence exactly.
 *  - Files are shared between threads.  To keep the model exact, one op on
 *    file F runs "apply to pcache + apply to model + compare" under F's
 *    mutex.  Threads mostly use their own files and sometimes another
 *    thread's, so pcache sees real concurrency on different files and
 *    handover of the same file between threads.
 *  - Model invariant: bytes of a model file at or past its size are zero,
 *    so holes and truncate-then-extend need no special case.
 *  - A "fault write" takes its source from a per-thread mapping whose last
 *    page is PROT_NONE, with the data running into that page: pcache must
 *    return exactly the readable byte count (or -EFAULT when none are
 *    readable) and the file must hold exactly those bytes (brief §4).
 *
 * Only include/pcache.h is used: this is a client of the library.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "commands.h"

#define STRESS_DEFAULT_OPS	100000ull
#define STRESS_DEFAULT_THREADS	4
#define STRESS_MAX_THREADS	4
#define STRESS_DEFAULT_FILES	4
#define STRESS_MAX_FILES	64
#define STRESS_DEFAULT_MAX_SIZE	(256u << 10)
#define STRESS_MAX_MAX_SIZE	(1ull << 30)
#define STRESS_FULL_CHECK	1000	/* ops between full compares */
#define STRESS_MAX_IO		(64u << 10)	/* largest single read/write */
#define STRESS_MAX_SEGS		8
#define STRESS_POOL_SIZE	(1u << 20)	/* random source bytes per thread */
#define STRESS_FAULT_PAGES	4	/* readable pages before the PROT_NONE one */
#define STRESS_CANARY		0xa5
#define STRESS_CANARY_TAIL	64	/* bytes past a read checked untouched */
#define STRESS_VERIFY_HEAD	(80u << 10)	/* window sizes of a range check */
#define STRESS_VERIFY_TAIL	(8u << 10)
#define STRESS_BUF_SIZE		(128u << 10)	/* read/verify scratch buffers */

struct stress_opts {
	uint64_t ops;
	uint64_t seed;
	int threads;
	int files;
	uint64_t max_size;
	int strategy;		/* -1: the library's default */
	const char *strategy_name;
	const char *backend;
	const char *backend_arg;
	bool verbose;
};

/* One file: its descriptors and its model.  Everything under @lock. */
struct sfile {
	pthread_mutex_t lock;
	int index;
	char name[32];
	int fd;			/* O_RDWR */
	int afd;		/* O_RDWR | O_APPEND */
	int rfd;		/* O_RDONLY */
	int stale_fd;		/* a descriptor closed by a reopen, or -1 */
	uint64_t pos;		/* model of fd's file position */
	uint64_t size;		/* model size */
	unsigned char *data;	/* model bytes; [size, cap + slack) are zero */
};

struct worker {
	int id;
	pthread_t thread;
	uint64_t rng;
	uint64_t nops;		/* ops this thread is to run */
	uint64_t done;		/* ops it ran */
	unsigned char *pool;	/* random bytes, sources of writes */
	unsigned char *rbuf;	/* read destination */
	unsigned char *vbuf;	/* verify scratch */
	unsigned char *gather;	/* a pwritev's bytes, concatenated */
	unsigned char *fault_map;	/* STRESS_FAULT_PAGES + 1 pages, last PROT_NONE */
	bool progress;		/* this thread prints progress */

	/* The op being run, for diagnostics. */
	uint64_t opno;		/* this thread's op number, from 0 */
	const char *op;
	int file;
	uint64_t off, len;
};

static struct stress_opts opts;
static struct pcache *cache;
static struct sfile *files;
static size_t page_size;
static uint64_t model_cap;	/* model bytes per file, excluding slack */
static size_t model_slack;

static atomic_ullong ops_done;
static atomic_ullong mismatches;
static atomic_int stop_run;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static bool progress_shown;

/* ---- PRNG: splitmix64 ---------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct worker *w)
{
	return splitmix64(&w->rng);
}

/* Uniform in [0, n); n > 0. */
static uint64_t below(struct worker *w, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rnd(w) * n) >> 64);
}

/* True with probability pct/100. */
static bool chance(struct worker *w, unsigned pct)
{
	return below(w, 100) < pct;
}

/* ---- diagnostics --------------------------------------------------------- */

/* "123", or "-14 (Bad address)" for an error; @buf holds 96 bytes. */
#define RET_STR_LEN 96
static const char *ret_str(long long v, char *buf)
{
	if (v < 0)
		snprintf(buf, RET_STR_LEN, "%lld (%s)", v, pcache_strerror((int)v));
	else
		snprintf(buf, RET_STR_LEN, "%lld", v);
	return buf;
}

/*
 * Report one mismatch: what the op was, then the message.  Stops the run:
 * the first mismatch is the interesting one, and later ones usually follow
 * from it.
 */
static void mismatch(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&mismatches, 1);
	atomic_store(&stop_run, 1);

	pthread_mutex_lock(&report_lock);
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = false;
	}
	fprintf(stderr, "stress: MISMATCH in thread %d, its op #%" PRIu64
		": %s file %d (%s) offset %" PRIu64 " length %" PRIu64 "\n",
		w->id, w->opno, w->op ? w->op : "?", w->file,
		w->file >= 0 ? files[w->file].name : "-", w->off, w->len);
	fputs("stress:   ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (w->file >= 0)
		fprintf(stderr, "stress:   model size of file %d: %" PRIu64 "\n",
			w->file, files[w->file].size);
	fprintf(stderr, "stress:   replay: pcache stress --seed %" PRIu64
		" --threads %d --files %d --max-size %" PRIu64 "%s%s%s%s%s%s"
		"  (--threads 1 replays the same op sequence)\n",
		opts.seed, opts.threads, opts.files, opts.max_size,
		opts.strategy_name ? " --strategy " : "",
		opts.strategy_name ? opts.strategy_name : "",
		opts.backend ? " --backend " : "", opts.backend ? opts.backend : "",
		opts.backend_arg ? " --backend-arg " : "",
		opts.backend_arg ? opts.backend_arg : "");
	pthread_mutex_unlock(&report_lock);
}

/* Compare a return value with the model's prediction. */
static bool check_ret(struct worker *w, const char *call, long long got,
		      long long want)
{
	char g[RET_STR_LEN], e[RET_STR_LEN];

	if (got == want)
		return true;
	mismatch(w, "%s returned %s, the model expects %s",
		 call, ret_str(got, g), ret_str(want, e));
	return false;
}

/* Up to 16 bytes as hex into @buf (3 * 16 + 1 bytes). */
static const char *hex_bytes(const unsigned char *p, size_t n, char *buf)
{
	buf[0] = 0;
	for (size_t i = 0; i < n && i < 16; i++)
		sprintf(buf + 3 * i, " %02x", p[i]);
	return buf;
}

/*
 * Compare @n bytes read from file offset @off with the model's.  @what
 * names the read.  On a difference, report the first differing offset and
 * the bytes from there.
 */
static bool check_bytes(struct worker *w, const char *what,
			const unsigned char *want, const unsigned char *got,
			size_t n, uint64_t off)
{
	char hw[3 * 16 + 1], hg[3 * 16 + 1];
	size_t i, ndiff = 0;

	if (memcmp(want, got, n) == 0)
		return true;
	for (i = 0; want[i] == got[i]; i++)
		;
	for (size_t j = i; j < n; j++)
		ndiff += want[j] != got[j];
	mismatch(w, "%s: data differs at file offset %" PRIu64
		 " (byte %zu of %zu read at %" PRIu64 "): expected 0x%02x, got 0x%02x;"
		 " %zu of the %zu bytes from there differ\n"
		 "stress:   expected from there:%s\n"
		 "stress:   got from there:     %s",
		 what, off + i, i, n, off, want[i], got[i], ndiff, n - i,
		 hex_bytes(want + i, n - i, hw), hex_bytes(got + i, n - i, hg));
	return false;
}

/* ---- the model ----------------------------------------------------------- */

static void model_write(struct sfile *f, uint64_t off, const void *src, size_t n)
{
	if (n == 0)
		return;
	memcpy(f->data + off, src, n);
	if (off + n > f->size)
		f->size = off + n;
}

static void model_truncate(struct sfile *f, uint64_t len)
{
	if (len < f->size)
		memset(f->data + len, 0, f->size - len);
	f->size = len;
}

/* Bytes a read of @n at @off returns. */
static size_t model_read_count(const struct sfile *f, uint64_t off, size_t n)
{
	if (off >= f->size)
		return 0;
	return f->size - off < n ? (size_t)(f->size - off) : n;
}

/* ---- comparisons against pcache ------------------------------------------ */

static uint64_t align_down(uint64_t x)
{
	return x & ~(uint64_t)(page_size - 1);
}

static uint64_t align_up(uint64_t x)
{
	return align_down(x + page_size - 1);
}

/* Read [off, off + n) through fd and compare count and bytes; n <= STRESS_BUF_SIZE. */
static bool verify_piece(struct worker *w, struct sfile *f, uint64_t off, size_t n)
{
	size_t want = model_read_count(f, off, n);
	ssize_t got = pcache_pread(f->fd, w->vbuf, n, (off_t)off);
	char g[RET_STR_LEN];

	if (got != (ssize_t)want) {
		mismatch(w, "verify: pcache_pread(%zu bytes at %" PRIu64
			 ") returned %s, the model expects %zu",
			 n, off, ret_str(got, g), want);
		return false;
	}
	return check_bytes(w, "verify pread", f->data + off, w->vbuf, want, off);
}

/* Compare the file's bytes in [lo, hi) with the model, in pieces. */
static bool verify_span(struct worker *w, struct sfile *f, uint64_t lo, uint64_t hi)
{
	while (lo < hi) {
		size_t n = hi - lo < STRESS_BUF_SIZE ? (size_t)(hi - lo) : STRESS_BUF_SIZE;

		if (!verify_piece(w, f, lo, n))
			return false;
		lo += n;
	}
	return true;
}

/*
 * Compare the range an op touched, widened to whole pages (neighbours in
 * the same page must not change either).  Long ranges are checked at both
 * ends only; the periodic full compare covers the middle.
 */
static bool verify_range(struct worker *w, struct sfile *f, uint64_t lo, uint64_t hi)
{
	lo = align_down(lo);
	hi = align_up(hi);
	if (hi <= lo)
		hi = lo + page_size;
	if (hi > model_cap + model_slack)
		hi = model_cap + model_slack;
	if (hi - lo <= STRESS_VERIFY_HEAD + STRESS_VERIFY_TAIL)
		return verify_span(w, f, lo, hi);
	return verify_span(w, f, lo, lo + STRESS_VERIFY_HEAD) &&
	       verify_span(w, f, hi - STRESS_VERIFY_TAIL, hi);
}

/* fstat's st_size against the model. */
static bool verify_size(struct worker *w, struct sfile *f, int fd)
{
	struct stat st;
	int ret = pcache_fstat(fd, &st);

	if (!check_ret(w, "pcache_fstat", ret, 0))
		return false;
	if ((uint64_t)st.st_size != f->size) {
		mismatch(w, "fstat: st_size %lld, the model's size is %" PRIu64,
			 (long long)st.st_size, f->size);
		return false;
	}
	return true;
}

/* The file position of @fd against @want. */
static bool verify_pos(struct worker *w, int fd, uint64_t want, const char *which)
{
	off_t got = pcache_lseek(fd, 0, SEEK_CUR);
	char g[RET_STR_LEN];

	if (got == (off_t)want)
		return true;
	mismatch(w, "pcache_lseek(%s, 0, SEEK_CUR) returned %s, the model's position is %" PRIu64,
		 which, ret_str(got, g), want);
	return false;
}

/* Whole file: size, every byte, and a read at EOF returning 0. */
static bool verify_file(struct worker *w, struct sfile *f)
{
	return verify_size(w, f, f->fd) &&
	       verify_span(w, f, 0, f->size + 1);
}

/* Every file in full, each under its own lock. */
static bool verify_all(struct worker *w)
{
	const char *op = w->op;
	bool ok = true;

	w->op = "full compare";
	for (int i = 0; i < opts.files && ok; i++) {
		struct sfile *f = &files[i];

		pthread_mutex_lock(&f->lock);
		w->file = i;
		w->off = 0;
		w->len = f->size;
		ok = verify_file(w, f);
		pthread_mutex_unlock(&f->lock);
	}
	w->op = op;
	return ok;
}

/* ---- choosing offsets and lengths ---------------------------------------- */

/* A length 0..64 KiB, biased to small. */
static size_t rand_len(struct worker *w)
{
	uint64_t r = below(w, 100);

	if (r < 4)
		return 0;
	if (r < 50)
		return below(w, 65);
	if (r < 80)
		return below(w, page_size + 1);
	if (r < 95)
		return below(w, 4 * page_size + 1);
	return below(w, STRESS_MAX_IO + 1);
}

/*
 * An offset in [0, model_cap]: inside the file, near a page boundary,
 * just past EOF (a hole), or anywhere.
 */
static uint64_t rand_off(struct worker *w, const struct sfile *f)
{
	uint64_t r = below(w, 100), off;

	if (r < 40) {
		off = below(w, f->size + 1);
	} else if (r < 60) {
		uint64_t pages = model_cap / page_size + 1;

		off = below(w, pages) * page_size;
		off += below(w, 33);
		off = off >= 16 ? off - 16 : 0;
	} else if (r < 80) {
		off = f->size + below(w, 3 * page_size);
	} else {
		off = below(w, model_cap + 1);
	}
	return off > model_cap ? model_cap : off;
}

/* A write length for offset @off, capped so the file stays within model_cap. */
static size_t rand_write_len(struct worker *w, uint64_t off)
{
	size_t n = rand_len(w);

	if (off + n > model_cap)
		n = (size_t)(model_cap - off);
	return n;
}

/* Source bytes: a random place in the pool (never the same for long). */
static const unsigned char *rand_src(struct worker *w, size_t n)
{
	return w->pool + below(w, STRESS_POOL_SIZE - n + 1);
}

/* ---- the ops ------------------------------------------------------------- */

/* Checks after a write of @got bytes at @off: data range and any hole before it. */
static bool after_write(struct worker *w, struct sfile *f, uint64_t old_size,
			uint64_t off, size_t got)
{
	if (off > old_size && got > 0 && !verify_range(w, f, old_size, off))
		return false;
	return verify_range(w, f, off, off + got);
}

static bool op_pwrite(struct worker *w, struct sfile *f)
{
	uint64_t off = rand_off(w, f), old = f->size;
	size_t n = rand_write_len(w, off);
	const unsigned char *src = rand_src(w, n);
	ssize_t got;

	w->op = "pwrite"; w->off = off; w->len = n;
	got = pcache_pwrite(f->fd, src, n, (off_t)off);
	if (!check_ret(w, "pcache_pwrite", got, (long long)n))
		return false;
	model_write(f, off, src, n);
	return after_write(w, f, old, off, n) && verify_pos(w, f->fd, f->pos, "fd");
}

/*
 * Build 0..8 segments (1..8 mostly) over @budget bytes, some zero-length,
 * each from its own place in @base (a pool or the read buffer, with gaps).
 * Returns the segment count; *total gets the sum.
 */
static int rand_iov(struct worker *w, struct iovec *iov, unsigned char *base,
		    size_t base_len, size_t budget, size_t *total, bool spread)
{
	int nseg = chance(w, 2) ? 0 : 1 + (int)below(w, STRESS_MAX_SEGS);
	size_t sum = 0, at = 0;

	for (int i = 0; i < nseg; i++) {
		size_t n = chance(w, 15) ? 0 : rand_len(w) / (chance(w, 50) ? 1 : 4);

		if (n > budget - sum)
			n = budget - sum;
		if (spread) {
			iov[i].iov_base = base + below(w, base_len - n + 1);
		} else {
			/* disjoint pieces with gaps: the gaps must stay untouched */
			at += below(w, 64);
			if (at + n > base_len)
				n = at >= base_len ? 0 : base_len - at;
			iov[i].iov_base = base + at;
			at += n;
		}
		iov[i].iov_len = n;
		sum += n;
	}
	*total = sum;
	return nseg;
}

static bool op_pwritev(struct worker *w, struct sfile *f)
{
	struct iovec iov[STRESS_MAX_SEGS];
	uint64_t off = rand_off(w, f), old = f->size;
	size_t total, at = 0;
	int nseg = rand_iov(w, iov, w->pool, STRESS_POOL_SIZE,
			    model_cap - off < STRESS_MAX_IO ? model_cap - off : STRESS_MAX_IO,
			    &total, true);
	ssize_t got;

	w->op = "pwritev"; w->off = off; w->len = total;
	for (int i = 0; i < nseg; i++) {
		memcpy(w->gather + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	got = pcache_pwritev(f->fd, iov, nseg, (off_t)off);
	if (!check_ret(w, "pcache_pwritev", got, (long long)total))
		return false;
	model_write(f, off, w->gather, total);
	return after_write(w, f, old, off, total) && verify_pos(w, f->fd, f->pos, "fd");
}

/* True if all @n bytes at @p are STRESS_CANARY. */
static bool is_canary(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == STRESS_CANARY && memcmp(p, p + 1, n - 1) == 0);
}

/* Check a read's result: count, bytes, and the buffer past the count untouched. */
static bool check_read(struct worker *w, struct sfile *f, const char *call,
		       ssize_t got, uint64_t off, size_t n)
{
	size_t want = model_read_count(f, off, n);
	size_t tail;

	if (!check_ret(w, call, got, (long long)want))
		return false;
	if (!check_bytes(w, call, f->data + off, w->rbuf, want, off))
		return false;
	tail = n - want < STRESS_CANARY_TAIL ? n - want : STRESS_CANARY_TAIL;
	tail += STRESS_CANARY_TAIL;	/* and past the end of the buffer */
	for (size_t i = 0; i < tail; i++) {
		if (w->rbuf[want + i] != STRESS_CANARY) {
			mismatch(w, "%s returned %zd but changed the caller's buffer at byte %zu"
				 " (0x%02x, was 0x%02x)", call, got, want + i,
				 w->rbuf[want + i], STRESS_CANARY);
			return false;
		}
	}
	return true;
}

static uint64_t rand_read_off(struct worker *w, const struct sfile *f)
{
	/* mostly inside the file; sometimes straddling or past EOF */
	if (chance(w, 85) && f->size > 0)
		return below(w, f->size);
	return rand_off(w, f);
}

static bool op_pread(struct worker *w, struct sfile *f)
{
	uint64_t off = rand_read_off(w, f);
	size_t n = rand_len(w);
	int fd = chance(w, 25) ? f->rfd : chance(w, 20) ? f->afd : f->fd;
	ssize_t got;

	w->op = "pread"; w->off = off; w->len = n;
	memset(w->rbuf, STRESS_CANARY, n + 2 * STRESS_CANARY_TAIL);
	got = pcache_pread(fd, w->rbuf, n, (off_t)off);
	return check_read(w, f, "pcache_pread", got, off, n) &&
	       verify_pos(w, f->fd, f->pos, "fd");
}

static bool op_preadv(struct worker *w, struct sfile *f)
{
	struct iovec iov[STRESS_MAX_SEGS];
	uint64_t off = rand_read_off(w, f);
	size_t total, want, at = 0, end = 0;
	int nseg, fd = chance(w, 25) ? f->rfd : f->fd;
	ssize_t got;

	nseg = rand_iov(w, iov, w->rbuf, STRESS_BUF_SIZE - 2 * STRESS_CANARY_TAIL,
			STRESS_MAX_IO, &total, false);
	for (int i = 0; i < nseg; i++) {
		size_t e = (size_t)((unsigned char *)iov[i].iov_base - w->rbuf) +
			   iov[i].iov_len;

		end = e > end ? e : end;
	}
	end += STRESS_CANARY_TAIL;
	memset(w->rbuf, STRESS_CANARY, end);
	w->op = "preadv"; w->off = off; w->len = total;
	got = pcache_preadv(fd, iov, nseg, (off_t)off);
	want = model_read_count(f, off, total);
	if (!check_ret(w, "pcache_preadv", got, (long long)want))
		return false;
	/* gather what landed in the segments, then compare as one read */
	for (int i = 0; i < nseg && at < want; i++) {
		size_t n = iov[i].iov_len < want - at ? iov[i].iov_len : want - at;

		memcpy(w->vbuf + at, iov[i].iov_base, n);
		at += n;
	}
	if (!check_bytes(w, "pcache_preadv", f->data + off, w->vbuf, want, off))
		return false;
	/* everything outside the bytes read must still be canary */
	at = 0;
	for (int i = 0; i < nseg; i++) {
		size_t n = iov[i].iov_len < want - at ? iov[i].iov_len : want - at;

		memset(iov[i].iov_base, STRESS_CANARY, n);
		at += n;
	}
	if (!is_canary(w->rbuf, end)) {
		size_t i = 0;

		while (w->rbuf[i] == STRESS_CANARY)
			i++;
		mismatch(w, "pcache_preadv returned %zd but wrote byte %zu of the"
			 " buffer, outside the bytes it read", got, i);
		return false;
	}
	return verify_pos(w, f->fd, f->pos, "fd");
}

/* lseek(SEEK_SET) then write or writev at the file position. */
static bool op_seek_write(struct worker *w, struct sfile *f)
{
	uint64_t off = rand_off(w, f), old = f->size;
	size_t n = rand_write_len(w, off);
	const unsigned char *src = rand_src(w, n);
	bool vec = chance(w, 30);
	off_t pos;
	ssize_t got;

	w->op = vec ? "lseek+writev" : "lseek+write"; w->off = off; w->len = n;
	pos = pcache_lseek(f->fd, (off_t)off, SEEK_SET);
	if (!check_ret(w, "pcache_lseek(SEEK_SET)", pos, (long long)off))
		return false;
	f->pos = off;
	if (vec) {
		struct iovec iov[2] = {
			{ (void *)src, n / 2 }, { (void *)(src + n / 2), n - n / 2 },
		};
		got = pcache_writev(f->fd, iov, 2);
	} else {
		got = pcache_write(f->fd, src, n);
	}
	if (!check_ret(w, vec ? "pcache_writev" : "pcache_write", got, (long long)n))
		return false;
	model_write(f, off, src, n);
	f->pos = off + n;
	return after_write(w, f, old, off, n) && verify_pos(w, f->fd, f->pos, "fd");
}

/* lseek (SEEK_SET, or SEEK_END / SEEK_CUR) then read at the file position. */
static bool op_seek_read(struct worker *w, struct sfile *f)
{
	uint64_t off = rand_read_off(w, f);
	size_t n = rand_len(w);
	off_t pos;
	ssize_t got;

	w->op = "lseek+read"; w->off = off; w->len = n;
	if (chance(w, 10)) {
		pos = pcache_lseek(f->fd, 0, SEEK_END);
		if (!check_ret(w, "pcache_lseek(0, SEEK_END)", pos, (long long)f->size))
			return false;
		off = f->size;
	} else if (chance(w, 10)) {
		int64_t delta = (int64_t)off - (int64_t)f->pos;

		pos = pcache_lseek(f->fd, (off_t)delta, SEEK_CUR);
		if (!check_ret(w, "pcache_lseek(SEEK_CUR)", pos, (long long)off))
			return false;
	} else {
		pos = pcache_lseek(f->fd, (off_t)off, SEEK_SET);
		if (!check_ret(w, "pcache_lseek(SEEK_SET)", pos, (long long)off))
			return false;
	}
	w->off = off;
	f->pos = off;
	memset(w->rbuf, STRESS_CANARY, n + 2 * STRESS_CANARY_TAIL);
	got = pcache_read(f->fd, w->rbuf, n);
	if (!check_read(w, f, "pcache_read", got, off, n))
		return false;
	f->pos = off + (size_t)got;
	return verify_pos(w, f->fd, f->pos, "fd");
}

static bool op_truncate(struct worker *w, struct sfile *f)
{
	uint64_t r = below(w, 100), old = f->size, len;
	int ret;

	if (r < 10)
		len = 0;
	else if (r < 45)
		len = below(w, f->size + 1);	/* shrink */
	else if (r < 75)
		len = f->size + below(w, 2 * page_size + 1);	/* extend, unaligned */
	else if (r < 85)
		len = align_down(below(w, model_cap + 1));	/* page aligned */
	else
		len = below(w, model_cap + 1);
	if (len > model_cap)
		len = model_cap;
	/* files near the cap shrink more often, so sizes keep moving */
	if (old > model_cap / 4 * 3 && chance(w, 30))
		len = below(w, old + 1);

	w->op = len < old ? "truncate (shrink)" : "truncate (extend)";
	w->off = len; w->len = old;
	ret = pcache_ftruncate(f->fd, (off_t)len);
	if (!check_ret(w, "pcache_ftruncate", ret, 0))
		return false;
	model_truncate(f, len);
	/* around the new end (tail of the last page zeroed), and the old one */
	if (!verify_range(w, f, len > page_size ? len - page_size : 0, len + page_size))
		return false;
	if (len > old && !verify_range(w, f, old, len))
		return false;
	return verify_pos(w, f->fd, f->pos, "fd");
}

static bool op_append(struct worker *w, struct sfile *f)
{
	uint64_t old = f->size;
	size_t n = rand_write_len(w, old);
	const unsigned char *src = rand_src(w, n);
	ssize_t got;

	w->op = "append"; w->off = old; w->len = n;
	if (chance(w, 20)) {
		/* pwrite on an O_APPEND descriptor still appends, as on Linux */
		got = pcache_pwrite(f->afd, src, n, (off_t)below(w, old + 1));
		if (!check_ret(w, "pcache_pwrite(O_APPEND)", got, (long long)n))
			return false;
		model_write(f, old, src, n);
		return after_write(w, f, old, old, n);
	}
	got = pcache_write(f->afd, src, n);
	if (!check_ret(w, "pcache_write(O_APPEND)", got, (long long)n))
		return false;
	model_write(f, old, src, n);
	if (!after_write(w, f, old, old, n))
		return false;
	/*
	 * The position moved to the end of what was written.  A zero-length
	 * write may leave it alone (Linux does), so check only n > 0.
	 */
	return n == 0 || verify_pos(w, f->afd, old + n, "afd");
}

static bool op_sync(struct worker *w, struct sfile *f)
{
	bool data = chance(w, 50);
	int fd = chance(w, 30) ? f->rfd : f->fd;
	int ret;

	w->op = data ? "fdatasync" : "fsync"; w->off = 0; w->len = 0;
	ret = data ? pcache_fdatasync(fd) : pcache_fsync(fd);
	return check_ret(w, data ? "pcache_fdatasync" : "pcache_fsync", ret, 0);
}

static bool op_fstat(struct worker *w, struct sfile *f)
{
	int which = (int)below(w, 3);
	int fd = which == 0 ? f->fd : which == 1 ? f->afd : f->rfd;

	w->op = "fstat"; w->off = 0; w->len = 0;
	return verify_size(w, f, fd);
}

/* Open the three descriptors of @f; flags may add O_TRUNC / O_CREAT. */
static int open_fds(struct sfile *f, int extra)
{
	f->fd = pcache_open(cache, f->name, O_RDWR | extra, 0644);
	if (f->fd < 0)
		return f->fd;
	f->afd = pcache_open(cache, f->name, O_RDWR | O_APPEND, 0);
	if (f->afd < 0)
		return f->afd;
	f->rfd = pcache_open(cache, f->name, O_RDONLY, 0);
	if (f->rfd < 0)
		return f->rfd;
	f->pos = 0;
	return 0;
}

static int close_fds(struct sfile *f)
{
	int ret = 0, err;
	int *fds[3] = { &f->fd, &f->afd, &f->rfd };

	for (int i = 0; i < 3; i++) {
		if (*fds[i] < 0)
			continue;
		err = pcache_close(*fds[i]);
		if (err && !ret)
			ret = err;
		f->stale_fd = *fds[i];
		*fds[i] = -1;
	}
	return ret;
}

/* Close the file's descriptors and open new ones; sometimes with O_TRUNC. */
static bool op_reopen(struct worker *w, struct sfile *f)
{
	bool trunc = chance(w, 10);
	int ret;

	w->op = trunc ? "close+reopen(O_TRUNC)" : "close+reopen";
	w->off = 0; w->len = f->size;
	ret = close_fds(f);
	if (!check_ret(w, "pcache_close", ret, 0))
		return false;
	ret = open_fds(f, trunc ? O_TRUNC : 0);
	if (!check_ret(w, "pcache_open", ret < 0 ? ret : 0, 0))
		return false;
	if (trunc)
		model_truncate(f, 0);
	return verify_pos(w, f->fd, 0, "fd") &&
	       verify_range(w, f, 0, page_size);
}

/*
 * A write whose source runs from readable memory into a PROT_NONE page.
 * pcache must return exactly the readable bytes (-EFAULT if there are
 * none) and the file must hold exactly those bytes.
 */
static bool op_fault_write(struct worker *w, struct sfile *f)
{
	uint64_t r = below(w, 100), off, old = f->size;
	size_t readable, extra = 1 + below(w, page_size), n;
	unsigned char *guard = w->fault_map + STRESS_FAULT_PAGES * page_size;
	unsigned char *src;
	long long want;
	ssize_t got;
	char g[RET_STR_LEN], e[RET_STR_LEN];

	if (r < 20)
		readable = 0;
	else if (r < 70)
		readable = below(w, page_size);
	else
		readable = below(w, STRESS_FAULT_PAGES * page_size + 1);
	n = readable + extra;
	if (n > model_cap)
		return op_pwrite(w, f);
	off = rand_off(w, f);
	if (off + n > model_cap)
		off = model_cap - n;
	src = guard - readable;
	memcpy(src, rand_src(w, readable), readable);

	w->op = "pwrite (source partly PROT_NONE)"; w->off = off; w->len = n;
	got = pcache_pwrite(f->fd, src, n, (off_t)off);
	want = readable ? (long long)readable : -EFAULT;
	if (got != want) {
		mismatch(w, "pcache_pwrite of %zu bytes, of which the first %zu are readable,"
			 " returned %s; the model expects %s",
			 n, readable, ret_str(got, g), ret_str(want, e));
		return false;
	}
	model_write(f, off, src, readable);
	return after_write(w, f, old, off, readable) &&
	       verify_size(w, f, f->fd);
}

/* Calls with arguments the header says must fail, and how. */
static bool op_bad_args(struct worker *w, struct sfile *f)
{
	struct iovec many[IOV_MAX + 1];
	unsigned char byte = 0x5a;
	uint64_t off = f->size ? below(w, f->size) : 0;
	struct iovec iov;
	long long got;

	w->off = 0; w->len = 1;
	switch (below(w, 9)) {
	case 0:
		w->op = "pwrite at offset -1";
		got = pcache_pwrite(f->fd, &byte, 1, -1);
		return check_ret(w, "pcache_pwrite", got, -EINVAL);
	case 1:
		w->op = "pread at offset -1";
		got = pcache_pread(f->fd, w->rbuf, 1, -1);
		return check_ret(w, "pcache_pread", got, -EINVAL);
	case 2:
		w->op = "ftruncate to -1";
		got = pcache_ftruncate(f->fd, -1);
		return check_ret(w, "pcache_ftruncate", got, -EINVAL);
	case 3:
		w->op = "pwrite on an O_RDONLY descriptor";
		got = pcache_pwrite(f->rfd, &byte, 1, 0);
		return check_ret(w, "pcache_pwrite", got, -EBADF);
	case 4:
		w->op = "ftruncate on an O_RDONLY descriptor";
		got = pcache_ftruncate(f->rfd, 0);
		return check_ret(w, "pcache_ftruncate", got, -EINVAL);
	case 5:
		w->op = "pwritev with a negative segment length";
		iov.iov_base = &byte;
		iov.iov_len = (size_t)-1;
		got = pcache_pwritev(f->fd, &iov, 1, 0);
		return check_ret(w, "pcache_pwritev", got, -EINVAL);
	case 6:
		w->op = "preadv with IOV_MAX + 1 segments";
		for (int i = 0; i < IOV_MAX + 1; i++) {
			many[i].iov_base = w->rbuf;
			many[i].iov_len = 1;
		}
		got = pcache_preadv(f->fd, many, IOV_MAX + 1, 0);
		return check_ret(w, "pcache_preadv", got, -EINVAL);
	case 7:
		w->op = "pread on a closed descriptor";
		if (f->stale_fd < 0)
			return true;
		got = pcache_pread(f->stale_fd, w->rbuf, 1, 0);
		return check_ret(w, "pcache_pread", got, -EBADF);
	default:
		w->op = "pread into NULL";
		w->off = off; w->len = 16;
		got = pcache_pread(f->fd, NULL, 16, (off_t)off);
		return check_ret(w, "pcache_pread", got, f->size ? -EFAULT : 0);
	}
}

/* ---- worker loop ---------------------------------------------------------- */

enum stress_op {
	OP_PWRITE, OP_PWRITEV, OP_PREAD, OP_PREADV, OP_SEEK_WRITE, OP_SEEK_READ,
	OP_TRUNCATE, OP_APPEND, OP_SYNC, OP_FSTAT, OP_REOPEN, OP_FAULT_WRITE,
	OP_BAD_ARGS, OP_NR
};

/* Relative weights, per mille. */
static const unsigned op_weight[OP_NR] = {
	[OP_PWRITE] = 240, [OP_PWRITEV] = 100, [OP_PREAD] = 200, [OP_PREADV] = 80,
	[OP_SEEK_WRITE] = 60, [OP_SEEK_READ] = 50, [OP_TRUNCATE] = 60,
	[OP_APPEND] = 80, [OP_SYNC] = 20, [OP_FSTAT] = 40, [OP_REOPEN] = 5,
	[OP_FAULT_WRITE] = 15, [OP_BAD_ARGS] = 10,
};

static unsigned op_weight_total;

static enum stress_op pick_op(struct worker *w)
{
	uint64_t r = below(w, op_weight_total);
	int op;

	for (op = 0; op < OP_NR - 1; op++) {
		if (r < op_weight[op])
			break;
		r -= op_weight[op];
	}
	return (enum stress_op)op;
}

/*
 * Which file: mostly one of this thread's own (f % threads == id), so
 * threads work on different files in parallel; sometimes any file.
 */
static int pick_file(struct worker *w)
{
	int own = 0;

	if (opts.files < opts.threads || chance(w, 15))
		return (int)below(w, opts.files);
	for (int i = w->id; i < opts.files; i += opts.threads)
		own++;
	return w->id + opts.threads * (int)below(w, own);
}

static bool run_op(struct worker *w, enum stress_op op, struct sfile *f)
{
	switch (op) {
	case OP_PWRITE:		return op_pwrite(w, f);
	case OP_PWRITEV:	return op_pwritev(w, f);
	case OP_PREAD:		return op_pread(w, f);
	case OP_PREADV:		return op_preadv(w, f);
	case OP_SEEK_WRITE:	return op_seek_write(w, f);
	case OP_SEEK_READ:	return op_seek_read(w, f);
	case OP_TRUNCATE:	return op_truncate(w, f);
	case OP_APPEND:		return op_append(w, f);
	case OP_SYNC:		return op_sync(w, f);
	case OP_FSTAT:		return op_fstat(w, f);
	case OP_REOPEN:		return op_reopen(w, f);
	case OP_FAULT_WRITE:	return op_fault_write(w, f);
	case OP_BAD_ARGS:	return op_bad_args(w, f);
	case OP_NR:		break;
	}
	return false;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void show_progress(uint64_t done)
{
	pthread_mutex_lock(&report_lock);
	fprintf(stderr, "\rstress: %" PRIu64 " / %" PRIu64 " ops, %llu mismatches",
		done, opts.ops, (unsigned long long)atomic_load(&mismatches));
	progress_shown = true;
	pthread_mutex_unlock(&report_lock);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	double last = now();

	for (w->opno = 0; w->opno < w->nops; w->opno++) {
		enum stress_op op;
		struct sfile *f;
		uint64_t total;
		bool ok;

		if (atomic_load_explicit(&stop_run, memory_order_relaxed))
			break;
		op = pick_op(w);
		w->file = pick_file(w);
		f = &files[w->file];
		w->op = NULL;
		w->off = w->len = 0;

		pthread_mutex_lock(&f->lock);
		ok = run_op(w, op, f);
		/* every step: st_size against the model */
		if (ok && op != OP_FSTAT)
			ok = verify_size(w, f, f->fd);
		if (ok && opts.verbose)
			fprintf(stderr, "t%d #%" PRIu64 " %s file %d off %" PRIu64
				" len %" PRIu64 " -> size %" PRIu64 "\n", w->id, w->opno,
				w->op, w->file, w->off, w->len, f->size);
		pthread_mutex_unlock(&f->lock);
		w->done++;
		total = atomic_fetch_add(&ops_done, 1) + 1;
		if (!ok)
			break;
		if (total % STRESS_FULL_CHECK == 0 && !verify_all(w))
			break;
		if (w->progress && (w->opno & 1023) == 0) {
			double t = now();

			if (t - last >= 0.25) {
				show_progress(total);
				last = t;
			}
		}
	}
	return NULL;
}

/* ---- setup ---------------------------------------------------------------- */

static int worker_init(struct worker *w, int id)
{
	uint64_t s = opts.seed ^ (0x51ed270b27a3c1d5ull * (uint64_t)(id + 1));
	size_t map_len = (STRESS_FAULT_PAGES + 1) * page_size;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->rng = splitmix64(&s);
	w->file = -1;
	w->pool = malloc(STRESS_POOL_SIZE);
	w->rbuf = malloc(STRESS_BUF_SIZE);
	w->vbuf = malloc(STRESS_BUF_SIZE);
	w->gather = malloc(STRESS_MAX_IO);
	if (!w->pool || !w->rbuf || !w->vbuf || !w->gather)
		return -ENOMEM;
	for (size_t i = 0; i < STRESS_POOL_SIZE; i += 8) {
		uint64_t x = rnd(w);

		memcpy(w->pool + i, &x, 8);
	}
	w->fault_map = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->fault_map == MAP_FAILED) {
		w->fault_map = NULL;
		return -errno;
	}
	if (mprotect(w->fault_map + STRESS_FAULT_PAGES * page_size, page_size,
		     PROT_NONE))
		return -errno;
	return 0;
}

static void worker_free(struct worker *w)
{
	free(w->pool);
	free(w->rbuf);
	free(w->vbuf);
	free(w->gather);
	if (w->fault_map)
		munmap(w->fault_map, (STRESS_FAULT_PAGES + 1) * page_size);
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: pcache stress [options]\n"
"\n"
"A model-based random test: random reads, writes, truncates, appends, syncs\n"
"and reopens from 1-4 threads, each applied to pcache and to a plain model and\n"
"compared after every step.  The last line printed is\n"
"  ops N, mismatches M, seed S\n"
"and the exit status is 0 only when M is 0.\n"
"\n"
"  --ops N              operations to run (default %llu)\n"
"  --seed S             PRNG seed (default: from the clock; always printed);\n"
"                       with --threads 1 a seed replays the same ops\n"
"  --threads T          worker threads, 1-%d (default %d)\n"
"  --files F            files shared by the threads, 1-%d (default %d)\n"
"  --max-size BYTES     file size bound, suffix k/m allowed (default %u)\n"
"  --strategy NAME      write strategy: naive, bounce, bounce-opt, atomic,\n"
"                       optimistic (default: the library's)\n"
"  --backend NAME       backend (default: the library's, \"memory\")\n"
"  --backend-arg ARG    backend argument, e.g. a backing directory\n"
"  --verbose            log every op to stderr\n"
"  --help               this text\n",
		(unsigned long long)STRESS_DEFAULT_OPS, STRESS_MAX_THREADS,
		STRESS_DEFAULT_THREADS, STRESS_MAX_FILES, STRESS_DEFAULT_FILES,
		STRESS_DEFAULT_MAX_SIZE);
}

static int bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("pcache stress: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'pcache stress --help'.\n", stderr);
	return 2;
}

/* Parse an unsigned number, with an optional k/m/g suffix if @suffix. */
static bool parse_u64(const char *s, bool suffix, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return false;
	if (suffix && *end) {
		int shift = 0;

		switch (*end) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: return false;
		}
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B')
			end++;
		if (v > (UINT64_MAX >> shift))
			return false;
		v <<= shift;
	}
	if (*end)
		return false;
	*out = v;
	return true;
}

static uint64_t clock_seed(void)
{
	struct timespec ts;
	uint64_t s;

	clock_gettime(CLOCK_REALTIME, &ts);
	s = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	s ^= (uint64_t)getpid() << 32;
	/* a small, easy to type number is enough */
	return splitmix64(&s) % 1000000000ull;
}

enum {
	OPT_OPS = 256, OPT_SEED, OPT_THREADS, OPT_FILES, OPT_MAX_SIZE,
	OPT_STRATEGY, OPT_BACKEND, OPT_BACKEND_ARG, OPT_VERBOSE, OPT_HELP,
	OPT_MMAP, OPT_BLOCK_SIZE,
};

static const struct option long_opts[] = {
	{ "ops",		required_argument,	NULL, OPT_OPS },
	{ "seed",		required_argument,	NULL, OPT_SEED },
	{ "threads",		required_argument,	NULL, OPT_THREADS },
	{ "files",		required_argument,	NULL, OPT_FILES },
	{ "max-size",		required_argument,	NULL, OPT_MAX_SIZE },
	{ "strategy",		required_argument,	NULL, OPT_STRATEGY },
	{ "backend",		required_argument,	NULL, OPT_BACKEND },
	{ "backend-arg",	required_argument,	NULL, OPT_BACKEND_ARG },
	{ "verbose",		no_argument,		NULL, OPT_VERBOSE },
	{ "help",		no_argument,		NULL, OPT_HELP },
	/* reserved: later issues add them */
	{ "mmap",		optional_argument,	NULL, OPT_MMAP },
	{ "block-size",		required_argument,	NULL, OPT_BLOCK_SIZE },
	{ NULL, 0, NULL, 0 },
};

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, bool *seed_given)
{
	uint64_t v;
	int c;

	memset(&opts, 0, sizeof(opts));
	opts.ops = STRESS_DEFAULT_OPS;
	opts.threads = STRESS_DEFAULT_THREADS;
	opts.files = STRESS_DEFAULT_FILES;
	opts.max_size = STRESS_DEFAULT_MAX_SIZE;
	opts.strategy = -1;
	*seed_given = false;

	optind = 0;	/* glibc: rescan from argv[1], whatever ran getopt before */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_OPS:
			if (!parse_u64(optarg, false, &opts.ops))
				return bad_usage("--ops: '%s' is not a number", optarg);
			break;
		case OPT_SEED:
			if (!parse_u64(optarg, false, &opts.seed))
				return bad_usage("--seed: '%s' is not a number", optarg);
			*seed_given = true;
			break;
		case OPT_THREADS:
			if (!parse_u64(optarg, false, &v) || v < 1 || v > STRESS_MAX_THREADS)
				return bad_usage("--threads: '%s' is not in 1..%d",
						 optarg, STRESS_MAX_THREADS);
			opts.threads = (int)v;
			break;
		case OPT_FILES:
			if (!parse_u64(optarg, false, &v) || v < 1 || v > STRESS_MAX_FILES)
				return bad_usage("--files: '%s' is not in 1..%d",
						 optarg, STRESS_MAX_FILES);
			opts.files = (int)v;
			break;
		case OPT_MAX_SIZE:
			if (!parse_u64(optarg, true, &v) || v < 1 || v > STRESS_MAX_MAX_SIZE)
				return bad_usage("--max-size: '%s' is not a size in 1..%llu",
						 optarg, (unsigned long long)STRESS_MAX_MAX_SIZE);
			opts.max_size = v;
			break;
		case OPT_STRATEGY:
			opts.strategy = pcache_strategy_from_name(optarg);
			if (opts.strategy < 0)
				return bad_usage("--strategy: unknown strategy '%s'"
						 " (naive, bounce, bounce-opt, atomic, optimistic)",
						 optarg);
			opts.strategy_name = optarg;
			break;
		case OPT_BACKEND:
			opts.backend = optarg;
			break;
		case OPT_BACKEND_ARG:
			opts.backend_arg = optarg;
			break;
		case OPT_VERBOSE:
			opts.verbose = true;
			break;
		case OPT_HELP:
			usage(stdout);
			return 0;
		case OPT_MMAP:
			return bad_usage("--mmap is not supported yet");
		case OPT_BLOCK_SIZE:
			return bad_usage("--block-size is not supported yet");
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

static int files_init(void)
{
	int ret;

	files = calloc((size_t)opts.files, sizeof(*files));
	if (!files)
		return -ENOMEM;
	for (int i = 0; i < opts.files; i++) {
		struct sfile *f = &files[i];

		pthread_mutex_init(&f->lock, NULL);
		f->index = i;
		f->fd = f->afd = f->rfd = f->stale_fd = -1;
	}
	for (int i = 0; i < opts.files; i++) {
		struct sfile *f = &files[i];

		snprintf(f->name, sizeof(f->name), "stress-%d", i);
		f->data = calloc(1, model_cap + model_slack);
		if (!f->data)
			return -ENOMEM;
		ret = open_fds(f, O_CREAT | O_TRUNC);
		if (ret < 0) {
			fprintf(stderr, "pcache stress: pcache_open(%s): %s\n",
				f->name, pcache_strerror(ret));
			return ret;
		}
	}
	return 0;
}

/*
 * The end: close every descriptor, reopen each file read-only and compare
 * it in full (its data must outlive its descriptors), close again.
 */
static bool files_final_check(struct worker *w)
{
	bool ok = true;
	int ret;

	for (int i = 0; i < opts.files && ok; i++) {
		struct sfile *f = &files[i];

		w->file = i;
		w->op = "final close";
		w->off = 0; w->len = f->size;
		ret = close_fds(f);
		if (!check_ret(w, "pcache_close", ret, 0))
			return false;
		w->op = "final reopen + full compare";
		f->fd = pcache_open(cache, f->name, O_RDONLY, 0);
		if (!check_ret(w, "pcache_open(O_RDONLY)", f->fd < 0 ? f->fd : 0, 0))
			return false;
		ok = verify_file(w, f);
		ret = pcache_close(f->fd);
		f->fd = -1;
		if (ok)
			ok = check_ret(w, "pcache_close", ret, 0);
	}
	return ok;
}

static void files_free(void)
{
	if (!files)
		return;
	for (int i = 0; i < opts.files; i++) {
		close_fds(&files[i]);
		free(files[i].data);
		pthread_mutex_destroy(&files[i].lock);
	}
	free(files);
	files = NULL;
}

int cmd_stress(int argc, char **argv)
{
	struct worker workers[STRESS_MAX_THREADS];
	struct pcache_config cfg;
	bool seed_given, setup_ok = false;
	int status, ret, nworkers = 0;
	double t0, elapsed;
	uint64_t done;

	status = parse_args(argc, argv, &seed_given);
	if (status >= 0)
		return status;
	if (!seed_given)
		opts.seed = clock_seed();
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	model_cap = opts.max_size;
	/* verify_range reads whole pages and one past: keep them in the model */
	model_slack = 2 * page_size + STRESS_MAX_IO;
	op_weight_total = 0;
	for (int op = 0; op < OP_NR; op++)
		op_weight_total += op_weight[op];
	atomic_store(&ops_done, 0);
	atomic_store(&mismatches, 0);
	atomic_store(&stop_run, 0);

	pcache_config_init(&cfg);
	if (opts.strategy >= 0)
		cfg.write_strategy = opts.strategy;
	if (opts.backend)
		cfg.backend = opts.backend;
	if (opts.backend_arg)
		cfg.backend_arg = opts.backend_arg;

	printf("stress: seed %" PRIu64 ", %" PRIu64 " ops, %d thread%s, %d file%s,"
	       " max size %" PRIu64 ", strategy %s, backend %s\n",
	       opts.seed, opts.ops, opts.threads, opts.threads == 1 ? "" : "s",
	       opts.files, opts.files == 1 ? "" : "s", opts.max_size,
	       pcache_strategy_name(cfg.write_strategy) ?
	       pcache_strategy_name(cfg.write_strategy) : "?",
	       cfg.backend ? cfg.backend : "memory");
	fflush(stdout);

	ret = pcache_create(&cfg, &cache);
	if (ret) {
		fprintf(stderr, "pcache stress: pcache_create: %s%s\n", pcache_strerror(ret),
			ret == -EOPNOTSUPP ? " (this write strategy is not built yet)" : "");
		cache = NULL;
		goto out;
	}
	ret = files_init();
	if (ret)
		goto out_free_files;
	for (nworkers = 0; nworkers < opts.threads; nworkers++) {
		struct worker *w = &workers[nworkers];

		ret = worker_init(w, nworkers);
		if (ret) {
			fprintf(stderr, "pcache stress: worker setup: %s\n", strerror(-ret));
			nworkers++;
			goto out_free_workers;
		}
		w->nops = opts.ops / opts.threads +
			  ((uint64_t)nworkers < opts.ops % opts.threads);
	}
	workers[0].progress = isatty(STDERR_FILENO) && !opts.verbose;
	setup_ok = true;

	t0 = now();
	if (opts.threads == 1) {
		worker_main(&workers[0]);	/* same thread: simplest to debug */
	} else {
		int started;

		for (started = 0; started < opts.threads; started++) {
			ret = pthread_create(&workers[started].thread, NULL,
					     worker_main, &workers[started]);
			if (ret) {
				fprintf(stderr, "pcache stress: pthread_create: %s\n",
					strerror(ret));
				atomic_store(&stop_run, 1);
				setup_ok = false;
				break;
			}
		}
		for (int i = 0; i < started; i++)
			pthread_join(workers[i].thread, NULL);
	}
	elapsed = now() - t0;
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = false;
	}

	/* the end: one more full compare, then everything through close + reopen */
	if (!atomic_load(&stop_run)) {
		struct worker *w = &workers[0];

		w->opno = w->done;
		if (verify_all(w))
			files_final_check(w);
	}
	done = atomic_load(&ops_done);
	printf("stress: %" PRIu64 " ops in %.2f s (%.0f ops/s)\n", done, elapsed,
	       elapsed > 0 ? done / elapsed : 0.0);

out_free_workers:
	for (int i = 0; i < nworkers; i++)
		worker_free(&workers[i]);
out_free_files:
	files_free();
	if (cache) {
		ret = pcache_destroy(cache);
		if (ret) {
			fprintf(stderr, "pcache stress: pcache_destroy: %s\n",
				pcache_strerror(ret));
			setup_ok = false;
		}
		cache = NULL;
	}
out:
	free(files);
	files = NULL;
	printf("ops %llu, mismatches %llu, seed %" PRIu64 "\n",
	       (unsigned long long)atomic_load(&ops_done),
	       (unsigned long long)atomic_load(&mismatches), opts.seed);
	fflush(stdout);
	return setup_ok && atomic_load(&mismatches) == 0 ? 0 : 1;
}
