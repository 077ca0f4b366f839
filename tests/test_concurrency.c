/*
 * test_concurrency.c - many threads on one cache.
 *
 *  (a) O_APPEND atomicity: threads append checksummed records through their
 *      own O_APPEND descriptors; every record must come out whole, once, and
 *      in each thread's order.
 *  (b) writers on disjoint, page-unaligned ranges that share pages, while
 *      readers check that every byte they see belongs to a generation the
 *      owning writer had finished or was writing; the final content is exact.
 *  (c) open/close/unlink churn with stale descriptors used afterwards:
 *      -EBADF, never a crash, and read-after-write holds on live ones.
 *
 * Sized to run in a few seconds under ThreadSanitizer.  The seed of (c) is
 * printed; PCACHE_TEST_SEED=<n> replays it.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "harness.h"

#define PAGE	4096

#if defined(__SANITIZE_THREAD__)
/*
 * With ThreadSanitizer's default history, the older access of a reported
 * race here is often "[failed to restore the stack]", which makes the
 * report (and any suppression matching on it) useless.  TSAN_OPTIONS from
 * the environment still override this.
 */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "history_size=7";
}
#endif

/* test_failures is not atomic: threads count here, main adds it up. */
static atomic_int thread_failures;

#define TFAIL(...) do {							\
	if (atomic_fetch_add(&thread_failures, 1) < 30) {		\
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)
#define TCHECK(cond, ...) do { if (!(cond)) TFAIL(#cond ": " __VA_ARGS__); } while (0)

static struct pcache *new_cache(int strategy)
{
	struct pcache_config cfg;
	struct pcache *pc = NULL;
	int rc;

	pcache_config_init(&cfg);
	if (strategy >= 0)
		cfg.write_strategy = strategy;
	rc = pcache_create(&cfg, &pc);
	if (rc == -EOPNOTSUPP)
		return NULL;
	if (rc) {
		fprintf(stderr, "FAIL: pcache_create: %d\n", rc);
		exit(1);
	}
	return pc;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- (a) O_APPEND atomicity -------------------------------------------- */

#define A_THREADS	4
#define A_RECORDS	2000
#define A_RECSZ		100	/* not a divisor of the page size: records straddle pages */

struct append_arg {
	struct pcache *pc;
	unsigned tid;
};

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* magic(4) tid(4) seq(4) payload(84) checksum(4) */
static void make_record(unsigned char *r, uint32_t tid, uint32_t seq)
{
	uint32_t magic = 0x444e5041, sum;	/* "APND" */

	memcpy(r, &magic, 4);
	memcpy(r + 4, &tid, 4);
	memcpy(r + 8, &seq, 4);
	pattern_fill(r + 12, A_RECSZ - 16, tid * 100000 + seq + 1, 0);
	sum = fnv1a(r, A_RECSZ - 4);
	memcpy(r + A_RECSZ - 4, &sum, 4);
}

static void *append_thread(void *p)
{
	struct append_arg *a = p;
	unsigned char rec[A_RECSZ];
	int fd = pcache_open(a->pc, "append", O_WRONLY | O_APPEND, 0);

	if (fd < 0) {
		TFAIL("thread %u: open: %d", a->tid, fd);
		return NULL;
	}
	for (uint32_t seq = 0; seq < A_RECORDS; seq++) {
		struct iovec iov[3] = { { rec, 37 }, { rec + 37, 0 }, { rec + 37, A_RECSZ - 37 } };
		ssize_t n;

		make_record(rec, a->tid, seq);
		switch (seq % 3) {
		case 0:
			n = pcache_write(fd, rec, A_RECSZ);
			break;
		case 1:
			n = pcache_pwrite(fd, rec, A_RECSZ, 0);	/* O_APPEND wins over the offset */
			break;
		default:
			n = pcache_writev(fd, iov, 3);
			break;
		}
		if (n != A_RECSZ) {
			TFAIL("thread %u seq %u: append returned %zd", a->tid, seq, n);
			break;
		}
	}
	TCHECK(pcache_close(fd) == 0, "close");
	return NULL;
}

static void test_append(void)
{
	struct pcache *pc = new_cache(-1);
	struct append_arg args[A_THREADS];
	pthread_t th[A_THREADS];
	size_t total = (size_t)A_THREADS * A_RECORDS * A_RECSZ;
	unsigned char *buf = malloc(total + A_RECSZ);
	static unsigned char seen[A_THREADS][A_RECORDS];
	int64_t last[A_THREADS];
	struct stat st;
	int fd;

	fd = pcache_open(pc, "append", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open: %d", fd);
	for (unsigned t = 0; t < A_THREADS; t++) {
		args[t].pc = pc;
		args[t].tid = t;
		CHECK_EQ(pthread_create(&th[t], NULL, append_thread, &args[t]), 0);
	}
	for (unsigned t = 0; t < A_THREADS; t++)
		pthread_join(th[t], NULL);

	CHECK_EQ(pcache_fstat(fd, &st), 0);
	CHECK_EQ(st.st_size, total);
	CHECK_EQ(pcache_pread(fd, buf, total + A_RECSZ, 0), total);

	memset(seen, 0, sizeof(seen));
	for (int t = 0; t < A_THREADS; t++)
		last[t] = -1;
	int bad = 0;
	for (size_t i = 0; i < total / A_RECSZ && bad < 10; i++) {
		unsigned char *r = buf + i * A_RECSZ;
		unsigned char want[A_RECSZ];
		uint32_t tid, seq;

		memcpy(&tid, r + 4, 4);
		memcpy(&seq, r + 8, 4);
		if (tid >= A_THREADS || seq >= A_RECORDS) {
			CHECK(0, "record %zu at %zu: garbage header tid %u seq %u", i, i * A_RECSZ, tid, seq);
			bad++;
			continue;
		}
		make_record(want, tid, seq);
		if (memcmp(r, want, A_RECSZ) != 0) {
			CHECK(0, "record %zu (thread %u seq %u) is torn or corrupt", i, tid, seq);
			bad++;
			continue;
		}
		if (seen[tid][seq]++) {
			CHECK(0, "thread %u seq %u appears twice", tid, seq);
			bad++;
		}
		if ((int64_t)seq <= last[tid]) {
			CHECK(0, "thread %u: seq %u after %lld", tid, seq, (long long)last[tid]);
			bad++;
		}
		last[tid] = seq;
	}
	for (int t = 0; t < A_THREADS && !bad; t++)
		for (int s = 0; s < A_RECORDS; s++)
			if (!seen[t][s]) {
				CHECK(0, "thread %d seq %d missing", t, s);
				break;
			}
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	free(buf);
}

/* ---- (b) disjoint writers, checking readers --------------------------- */

#define B_WRITERS	4
#define B_READERS	2
#define B_BASE		1000
#define B_STRIDE	10007	/* regions share their boundary pages */
#define B_FILESZ	(B_BASE + B_WRITERS * B_STRIDE + 500)
#define B_MAXLAG	16	/* a read spanning more generations is not checked */

static off_t region_start(int w) { return B_BASE + (off_t)w * B_STRIDE; }
/* Odd regions end one byte early: a one-byte gap that must stay zero. */
static size_t region_len(int w) { return B_STRIDE - (w & 1); }
static unsigned gen_tag(int w, unsigned g) { return 1 + w * 100000 + g; }

struct shared_b {
	struct pcache *pc;
	int gens;
	int fd_shared;		/* writers 0 and 1 share this descriptor */
	atomic_uint started[B_WRITERS];	/* generation being written */
	atomic_uint done[B_WRITERS];	/* last generation fully written */
	atomic_int stop;
	atomic_long reads, unchecked;
};

struct b_arg {
	struct shared_b *sh;
	int id;
};

static void *b_writer(void *p)
{
	struct b_arg *a = p;
	struct shared_b *sh = a->sh;
	int w = a->id, fd;
	off_t start = region_start(w);
	size_t len = region_len(w);
	unsigned char *buf = malloc(len);
	static const size_t chunks[] = { 0, 97, 333, 4096, 5000, 4095 };	/* 0: whole region */

	if (w < 2)
		fd = sh->fd_shared;
	else
		fd = pcache_open(sh->pc, "shared", w == 3 ? O_RDWR | O_DSYNC : O_WRONLY, 0);
	if (fd < 0) {
		TFAIL("writer %d: open: %d", w, fd);
		free(buf);
		return NULL;
	}
	for (unsigned g = 1; g <= (unsigned)sh->gens; g++) {
		size_t chunk = chunks[(g + w) % 6], at = 0;

		atomic_store(&sh->started[w], g);
		pattern_fill(buf, len, gen_tag(w, g), start);
		if (chunk == 0)
			chunk = len;
		while (at < len) {
			size_t n = len - at < chunk ? len - at : chunk;
			ssize_t r;

			if (g & 1) {
				r = pcache_pwrite(fd, buf + at, n, start + at);
			} else {
				struct iovec iov[2] = { { buf + at, n / 2 }, { buf + at + n / 2, n - n / 2 } };
				r = pcache_pwritev(fd, iov, 2, start + at);
			}
			if (r != (ssize_t)n) {
				TFAIL("writer %d gen %u: write(%zu at %lld) = %zd", w, g, n,
				      (long long)(start + at), r);
				goto out;
			}
			at += n;
		}
		atomic_store(&sh->done[w], g);
	}
out:
	if (w >= 2)
		TCHECK(pcache_close(fd) == 0, "close");
	free(buf);
	return NULL;
}

/* Which region a byte belongs to, or -1 for a gap. */
static int region_of(off_t b)
{
	if (b < B_BASE)
		return -1;
	int w = (b - B_BASE) / B_STRIDE;
	if (w >= B_WRITERS || b >= region_start(w) + (off_t)region_len(w))
		return -1;
	return w;
}

static void *b_reader(void *p)
{
	struct b_arg *a = p;
	struct shared_b *sh = a->sh;
	unsigned char *buf = malloc(B_FILESZ + 100);
	int fd = pcache_open(sh->pc, "shared", O_RDONLY, 0);
	int errors = 0;

	if (fd < 0) {
		TFAIL("reader %d: open: %d", a->id, fd);
		free(buf);
		return NULL;
	}
	while (!atomic_load(&sh->stop) && errors < 3) {
		unsigned lo[B_WRITERS], hi[B_WRITERS];
		/* alternate: the whole file, or a window across a region boundary */
		int whole = atomic_fetch_add(&sh->reads, 1) & 1;
		off_t from = whole ? 0 : region_start(1 + a->id) - 3000;
		size_t want = whole ? B_FILESZ : 6000;
		ssize_t n;

		for (int w = 0; w < B_WRITERS; w++)
			lo[w] = atomic_load(&sh->done[w]);
		n = pcache_pread(fd, buf, whole ? want + 100 : want, from);	/* whole: stops at EOF */
		for (int w = 0; w < B_WRITERS; w++)
			hi[w] = atomic_load(&sh->started[w]);
		if (n != (ssize_t)want) {
			TFAIL("reader %d: pread(%zu at %lld) = %zd", a->id, want, (long long)from, n);
			errors++;
			continue;
		}
		for (int w = 0; w < B_WRITERS; w++)
			if (hi[w] - lo[w] > B_MAXLAG) {
				atomic_fetch_add(&sh->unchecked, 1);
				goto next;
			}
		for (size_t i = 0; i < want; i++) {
			off_t b = from + i;
			int w = region_of(b);
			unsigned g;

			if (w < 0) {
				if (buf[i] != 0) {
					TFAIL("reader %d: gap byte %lld = %#x, want 0", a->id, (long long)b, buf[i]);
					errors++;
					break;
				}
				continue;
			}
			for (g = lo[w]; g <= hi[w]; g++)
				if (buf[i] == pattern_byte(gen_tag(w, g), b))
					break;
			if (g > hi[w]) {
				TFAIL("reader %d: byte %lld (writer %d) = %#x, in no generation %u..%u",
				      a->id, (long long)b, w, buf[i], lo[w], hi[w]);
				errors++;
				break;
			}
		}
next:		;
	}
	TCHECK(pcache_close(fd) == 0, "close");
	free(buf);
	return NULL;
}

static void test_disjoint(int strategy, int gens)
{
	struct pcache *pc = new_cache(strategy);
	struct shared_b *sh;
	struct b_arg wa[B_WRITERS], ra[B_READERS];
	pthread_t wt[B_WRITERS], rt[B_READERS];
	unsigned char *buf;
	int fd;

	if (!pc)
		return;
	sh = calloc(1, sizeof(*sh));
	buf = malloc(B_FILESZ + 100);
	sh->pc = pc;
	sh->gens = gens;
	fd = pcache_open(pc, "shared", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open: %d", fd);
	sh->fd_shared = fd;
	CHECK_EQ(pcache_ftruncate(fd, B_FILESZ), 0);
	for (int w = 0; w < B_WRITERS; w++) {	/* generation 0 */
		pattern_fill(buf, region_len(w), gen_tag(w, 0), region_start(w));
		CHECK_EQ(pcache_pwrite(fd, buf, region_len(w), region_start(w)), region_len(w));
	}

	for (int r = 0; r < B_READERS; r++) {
		ra[r] = (struct b_arg){ sh, r };
		CHECK_EQ(pthread_create(&rt[r], NULL, b_reader, &ra[r]), 0);
	}
	for (int w = 0; w < B_WRITERS; w++) {
		wa[w] = (struct b_arg){ sh, w };
		CHECK_EQ(pthread_create(&wt[w], NULL, b_writer, &wa[w]), 0);
	}
	for (int w = 0; w < B_WRITERS; w++)
		pthread_join(wt[w], NULL);
	atomic_store(&sh->stop, 1);
	for (int r = 0; r < B_READERS; r++)
		pthread_join(rt[r], NULL);

	/* final content: every region at its last generation, gaps zero */
	struct stat st;
	CHECK_EQ(pcache_fstat(fd, &st), 0);
	CHECK_EQ(st.st_size, B_FILESZ);
	CHECK_EQ(pcache_pread(fd, buf, B_FILESZ + 100, 0), B_FILESZ);
	for (off_t b = 0; b < B_FILESZ; b++) {
		int w = region_of(b);
		unsigned char want = w < 0 ? 0 : pattern_byte(gen_tag(w, gens), b);

		if (buf[b] != want) {
			CHECK(0, "strategy %s: final byte %lld (writer %d) = %#x, want %#x",
			      pcache_strategy_name(strategy < 0 ? PCACHE_WRITE_BOUNCE : strategy),
			      (long long)b, w, buf[b], want);
			break;
		}
	}
	fprintf(stderr, "disjoint, strategy %s: %d generations, %ld reads, %ld too stale to check\n",
		pcache_strategy_name(strategy < 0 ? PCACHE_WRITE_BOUNCE : strategy), gens,
		atomic_load(&sh->reads), atomic_load(&sh->unchecked));
	CHECK(atomic_load(&sh->reads) > atomic_load(&sh->unchecked), "no read was checked");
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	free(buf);
	free(sh);
}

/* ---- (c) open/close/unlink churn, stale descriptors -------------------- */

#define C_THREADS	4
#define C_NAMES		4
#define C_ITERS		10000
#define C_LOCAL		6
#define C_STALE		256
#define C_SLICE		(16 * 1024)	/* each thread writes only its own slice of a file */

static atomic_int stale_ring[C_STALE];
static atomic_uint stale_next;
static const char *const c_names[C_NAMES] = { "c0", "c1", "c2", "c3" };

struct c_arg {
	struct pcache *pc;
	int tid;
	uint64_t seed;
};

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void stale_push(int fd)
{
	atomic_store(&stale_ring[atomic_fetch_add(&stale_next, 1) % C_STALE], fd);
}

static void check_stale(int fd, int tid)
{
	unsigned char b[16] = { 0 };
	struct stat st;
	long long r;

#define STALE(call) do { if ((r = (call)) != -EBADF) TFAIL("thread %d: stale %d: %s = %lld", tid, fd, #call, r); } while (0)
	switch (fd & 7) {	/* vary which call; all must say -EBADF */
	case 0: STALE(pcache_pread(fd, b, sizeof(b), 0)); break;
	case 1: STALE(pcache_pwrite(fd, b, sizeof(b), 0)); break;
	case 2: STALE(pcache_fstat(fd, &st)); break;
	case 3: STALE(pcache_lseek(fd, 0, SEEK_END)); break;
	case 4: STALE(pcache_ftruncate(fd, 0)); break;
	case 5: STALE(pcache_fsync(fd)); break;
	case 6: STALE(pcache_close(fd)); break;
	default: STALE(pcache_read(fd, b, sizeof(b))); break;
	}
	STALE(pcache_close(fd));
#undef STALE
}

static void *churn_thread(void *p)
{
	struct c_arg *a = p;
	uint64_t s = a->seed;
	int fds[C_LOCAL], nfd = 0;
	unsigned char *wb = malloc(5000), *rb = malloc(5000);

	for (int it = 0; it < C_ITERS; it++) {
		const char *name = c_names[xorshift(&s) % C_NAMES];
		int op = xorshift(&s) % 10, fd, rc, k;

		switch (op) {
		case 0:
		case 1:		/* open, creating */
			if (nfd == C_LOCAL) {
				TCHECK(pcache_close(fds[0]) == 0, "close");
				stale_push(fds[0]);
				fds[0] = fds[--nfd];
			}
			fd = pcache_open(a->pc, name, O_RDWR | O_CREAT, 0644);
			if (fd < 0)
				TFAIL("thread %d: open(%s, O_CREAT) = %d", a->tid, name, fd);
			else
				fds[nfd++] = fd;
			break;
		case 2:		/* open, maybe missing */
			fd = pcache_open(a->pc, name, O_RDONLY, 0);
			if (fd >= 0) {
				TCHECK(pcache_close(fd) == 0, "close");
				stale_push(fd);
			} else {
				TCHECK(fd == -ENOENT, "thread %d: open(%s) = %d", a->tid, name, fd);
			}
			break;
		case 3:
		case 4:		/* write and read back in this thread's slice */
			if (!nfd)
				break;
			fd = fds[xorshift(&s) % nfd];
			{
				size_t len = 1 + xorshift(&s) % 4999;
				off_t off = (off_t)a->tid * C_SLICE + xorshift(&s) % (C_SLICE - len);
				unsigned tag = 1 + a->tid * 1000 + it % 1000;
				ssize_t n;

				pattern_fill(wb, len, tag, off);
				n = pcache_pwrite(fd, wb, len, off);
				if (n != (ssize_t)len) {
					TFAIL("thread %d: pwrite(%zu at %lld) = %zd", a->tid, len, (long long)off, n);
					break;
				}
				n = pcache_pread(fd, rb, len, off);
				if (n != (ssize_t)len || pattern_check(rb, len, tag, off) >= 0)
					TFAIL("thread %d: read after write (%zu at %lld): %zd, first bad byte %ld",
					      a->tid, len, (long long)off, n, pattern_check(rb, len, tag, off));
			}
			break;
		case 5:		/* close */
			if (!nfd)
				break;
			k = xorshift(&s) % nfd;
			TCHECK(pcache_close(fds[k]) == 0, "close");
			stale_push(fds[k]);
			fds[k] = fds[--nfd];
			break;
		case 6:		/* unlink */
			rc = pcache_unlink(a->pc, name);
			TCHECK(rc == 0 || rc == -ENOENT, "thread %d: unlink(%s) = %d", a->tid, name, rc);
			break;
		case 7:
		case 8:		/* someone's stale descriptor */
			fd = atomic_load(&stale_ring[xorshift(&s) % C_STALE]);
			if (fd != INT_MIN)
				check_stale(fd, a->tid);
			break;
		default:	/* fstat a live one */
			if (nfd) {
				struct stat st;

				rc = pcache_fstat(fds[xorshift(&s) % nfd], &st);
				TCHECK(rc == 0 && S_ISREG(st.st_mode), "thread %d: fstat = %d", a->tid, rc);
			}
			break;
		}
	}
	while (nfd) {
		TCHECK(pcache_close(fds[--nfd]) == 0, "close");
		stale_push(fds[nfd]);
	}
	free(wb);
	free(rb);
	return NULL;
}

static void test_churn(uint64_t seed)
{
	struct pcache *pc = new_cache(-1);
	struct c_arg args[C_THREADS];
	pthread_t th[C_THREADS];
	struct pcache_stats st;

	for (int i = 0; i < C_STALE; i++)
		atomic_store(&stale_ring[i], INT_MIN);
	for (int t = 0; t < C_THREADS; t++) {
		args[t] = (struct c_arg){ pc, t, seed * 0x9e3779b97f4a7c15ull + t + 1 };
		CHECK_EQ(pthread_create(&th[t], NULL, churn_thread, &args[t]), 0);
	}
	for (int t = 0; t < C_THREADS; t++)
		pthread_join(th[t], NULL);

	CHECK_EQ(pcache_stats(pc, &st), 0);
	CHECK_EQ(st.files_open, 0);
	unsigned pushed = atomic_load(&stale_next);
	for (unsigned i = 0; i < C_STALE && i < pushed; i++)
		check_stale(atomic_load(&stale_ring[i]), -1);
	CHECK_EQ(pcache_destroy(pc), 0);
}

int main(void)
{
	const char *env = getenv("PCACHE_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;
	double t0 = now(), t1, t2;

	fprintf(stderr, "seed %llu (PCACHE_TEST_SEED to replay)\n", (unsigned long long)seed);
	test_append();
	t1 = now();
	test_disjoint(-1, 1500);
	for (int s = 0; s < PCACHE_WRITE_NR; s++)
		if (s != PCACHE_WRITE_BOUNCE)
			test_disjoint(s, 300);
	t2 = now();
	test_churn(seed);
	fprintf(stderr, "append %.2fs, disjoint %.2fs, churn %.2fs\n", t1 - t0, t2 - t1, now() - t2);

	test_failures += atomic_load(&thread_failures);
	return test_exit();
}
