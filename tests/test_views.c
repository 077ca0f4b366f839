/*
 * test_views - mapped files (pcache_mmap and friends), one thread at a time.
 *
 *  (a) errors: every documented error of pcache_mmap, pcache_munmap,
 *      pcache_msync, pcache_madvise and pcache_mlock;
 *  (b) coherence: a table of operations (pwrite, store through a view,
 *      ftruncate down and up) at unaligned and page-crossing offsets, each
 *      followed by a byte-exact comparison of a trivially correct model with
 *      pread and with two views (one at a non-zero file offset): the part
 *      of the last page past end of file reads as zeroes, pages wholly past
 *      it raise SIGBUS, extended ranges read zeroes and never old data;
 *  (c) page_mkwrite / page_mkclean: a store to a clean page faults (WP),
 *      dirties it and unprotects it; writeback (pcache_fsync or
 *      pcache_msync MS_SYNC) write-protects it in every view, for 20 cycles
 *      over 2 views of one file;
 *  (d) truncation: SIGBUS in the touching thread (si_signo checked), the
 *      tail of the last page zeroed, pages punched, zeroes after extending;
 *  (e) many views of one file and views of many files; munmap/mmap while
 *      other threads fault; -EBUSY from pcache_close and pcache_destroy
 *      while a view lives, and success after pcache_munmap.
 *
 * The view_* fault counters are bumped after the faulting thread has been
 * woken, so exact checks on them first wait for them (stats_at_least()).
 *
 * Exit 77 if the kernel's userfaultfd cannot serve views (-EOPNOTSUPP).
 * A case that hangs is named by a SIGALRM watchdog before the test exits 1.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* ------------------------------------------------------------------ */
/* Watchdog: a hung case is named, then the test fails.                */
/* ------------------------------------------------------------------ */

/* The watchdog (current_case, set_case, watchdog_start): watchdog.h. */

/* ------------------------------------------------------------------ */
/* Catching SIGBUS / SIGSEGV from a touch                              */
/* ------------------------------------------------------------------ */

/*
 * Our handler is installed before pcache_create(), so the library's fault
 * guard chains to it for every fault that is not inside a guarded copy.
 */
static __thread sigjmp_buf *volatile catch_env;
static __thread volatile int caught_signo, caught_code;
static __thread volatile pid_t caught_tid;
static struct sigaction saved_action[2];

static void catch_handler(int sig, siginfo_t *si, void *ctx)
{
	if (!catch_env) {
		put_str("FAIL: unexpected fault outside a test touch in case '");
		put_str(__atomic_load_n(&current_case, __ATOMIC_ACQUIRE));
		put_str("'\n");
		if (si->si_code <= 0)
			_exit(1);
		/* A real fault: re-execute under the previous action. */
		sigaction(sig, &saved_action[sig == SIGBUS], NULL);
		return;
	}
	caught_signo = si->si_signo;
	caught_code = si->si_code;
	caught_tid = gettid_();
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

/*
 * Copy @n bytes from @src to @dst (either may be a view); 0, or the signal
 * that stopped it.  The mask is saved, so a jump out of a handler that ran
 * with signals blocked leaves it as it was.
 */
static int try_copy(void *dst, const void *src, size_t n)
{
	sigjmp_buf env;

	if (sigsetjmp(env, 1)) {
		catch_env = NULL;
		return caught_signo;
	}
	caught_signo = 0;
	catch_env = &env;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	memcpy(dst, src, n);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	catch_env = NULL;
	return 0;
}

static int try_read(const char *p)
{
	char c;

	return try_copy(&c, p, 1);
}

static int try_write(char *p, char v)
{
	return try_copy(p, &v, 1);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static struct pcache *new_cache(unsigned int fault_around)
{
	struct pcache_config cfg;
	struct pcache *pc = NULL;
	int rc;

	pcache_config_init(&cfg);
	cfg.fault_around_pages = fault_around;
	rc = pcache_create(&cfg, &pc);
	if (rc) {
		fprintf(stderr, "pcache_create: %s\n", pcache_strerror(rc));
		exit(1);
	}
	return pc;
}

static int open_file(struct pcache *pc, const char *name, int flags)
{
	int fd = pcache_open(pc, name, flags | O_CREAT, 0644);

	if (fd < 0) {
		fprintf(stderr, "pcache_open %s: %s\n", name, pcache_strerror(fd));
		exit(1);
	}
	return fd;
}

static void fill(int fd, unsigned tag, off_t off, size_t len)
{
	char *buf = malloc(len);
	ssize_t n;

	pattern_fill(buf, len, tag, (uint64_t)off);
	n = pcache_pwrite(fd, buf, len, off);
	CHECK_EQ(n, len);
	free(buf);
}

static struct pcache_stats stats(struct pcache *pc)
{
	struct pcache_stats st;

	memset(&st, 0, sizeof(st));
	CHECK_EQ(pcache_stats(pc, &st), 0);
	return st;
}

/*
 * The fault handler bumps view_faults / view_wp_faults after the ioctl
 * that wakes the faulting thread, so a counter may still be behind when
 * the touch returns.  Wait (at most 2 s) for it to reach @want; count the
 * times it was behind.  Exact deltas are checked on what this returns.
 */
static int stat_lags, stat_checks;

static uint64_t stat_field(const struct pcache_stats *st, size_t off)
{
	uint64_t v;

	memcpy(&v, (const char *)st + off, sizeof(v));
	return v;
}

static struct pcache_stats stats_at_least(struct pcache *pc, size_t off, uint64_t want)
{
	struct pcache_stats st = stats(pc);
	struct timespec ts = { 0, 20000 };

	stat_checks++;
	if (stat_field(&st, off) >= want)
		return st;
	stat_lags++;
	for (int i = 0; i < 100000 && stat_field(&st, off) < want; i++) {
		nanosleep(&ts, NULL);
		st = stats(pc);
	}
	return st;
}

#define STATS_AT_LEAST(pc, field, want) \
	stats_at_least(pc, offsetof(struct pcache_stats, field), (want))

/* For "nothing more happened" checks: let a late counter land first. */
static struct pcache_stats stats_settled(struct pcache *pc)
{
	struct timespec ts = { 0, 2000000 };

	nanosleep(&ts, NULL);
	return stats(pc);
}

static void *map_ok(int fd, size_t len, int prot, off_t off)
{
	void *p = pcache_mmap(fd, len, prot, off);

	if (PCACHE_IS_ERR(p)) {
		if (PCACHE_PTR_ERR(p) == -EOPNOTSUPP)
			TEST_SKIP("pcache_mmap: userfaultfd cannot serve views here");
		fprintf(stderr, "FAIL: pcache_mmap(len %zu off %lld): %s (case %s)\n",
			len, (long long)off, pcache_strerror(PCACHE_PTR_ERR(p)),
			__atomic_load_n(&current_case, __ATOMIC_ACQUIRE));
		exit(1);
	}
	return p;
}

static void unmap_ok(void *p, size_t len)
{
	CHECK_EQ(pcache_munmap(p, len), 0);
}

static size_t bytes_nonzero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return i;
	return (size_t)-1;
}

/* ------------------------------------------------------------------ */
/* (a) errors                                                          */
/* ------------------------------------------------------------------ */

#define CHECK_ERRPTR(expr, want) do {					\
	void *__p = (expr);						\
	if (!PCACHE_IS_ERR(__p)) {					\
		CHECK(PCACHE_IS_ERR(__p), "%s: got a view, want %s",	\
		      #expr, #want);					\
		pcache_munmap(__p, PG);					\
	} else {							\
		CHECK_EQ(PCACHE_PTR_ERR(__p), want);			\
	}								\
} while (0)

static void test_errors(void)
{
	struct pcache *pc = new_cache(0);
	int fd = open_file(pc, "err", O_RDWR);
	int rd = open_file(pc, "err", O_RDONLY);
	int wr = open_file(pc, "err", O_WRONLY);
	int dir, closed;
	char *v, *anon;

	set_case("errors", 30);
	CHECK_EQ(pcache_ftruncate(fd, 2 * PG), 0);

	/* pcache_mmap */
	CHECK_ERRPTR(pcache_mmap(-1, PG, PROT_READ, 0), -EBADF);
	CHECK_ERRPTR(pcache_mmap(123456789, PG, PROT_READ, 0), -EBADF);
	closed = open_file(pc, "err", O_RDWR);
	CHECK_EQ(pcache_close(closed), 0);
	CHECK_ERRPTR(pcache_mmap(closed, PG, PROT_READ, 0), -EBADF);
	CHECK_ERRPTR(pcache_mmap(rd, PG, PROT_READ | PROT_WRITE, 0), -EACCES);
	CHECK_ERRPTR(pcache_mmap(wr, PG, PROT_READ, 0), -EACCES);
	CHECK_ERRPTR(pcache_mmap(wr, PG, PROT_READ | PROT_WRITE, 0), -EACCES);
	CHECK_ERRPTR(pcache_mmap(fd, 0, PROT_READ, 0), -EINVAL);
	CHECK_ERRPTR(pcache_mmap(fd, PG, PROT_READ, 1), -EINVAL);
	CHECK_ERRPTR(pcache_mmap(fd, PG, PROT_READ, PG / 2), -EINVAL);
	CHECK_ERRPTR(pcache_mmap(fd, PG, PROT_READ, -PG), -EINVAL);
	CHECK_ERRPTR(pcache_mmap(fd, PG, PROT_READ | PROT_EXEC, 0), -EINVAL);
	CHECK_ERRPTR(pcache_mmap(fd, PG, PROT_EXEC, 0), -EINVAL);
	CHECK_ERRPTR(pcache_mmap(fd, PG, PROT_READ, (off_t)1 << 41), -EOVERFLOW);
	dir = pcache_open(pc, ".", O_RDONLY, 0);
	CHECK(dir >= 0, "open \".\": %s", pcache_strerror(dir));
	if (dir >= 0) {
		CHECK_ERRPTR(pcache_mmap(dir, PG, PROT_READ, 0), -ENODEV);
		CHECK_EQ(pcache_close(dir), 0);
	}
	/* The good ones, for contrast. */
	v = map_ok(rd, PG, PROT_READ, 0);
	CHECK(!PCACHE_IS_ERR(v), "a view is not an error pointer");
	unmap_ok(v, PG);
	v = map_ok(fd, 3 * PG, PROT_READ | PROT_WRITE, PG);	/* past EOF: allowed */
	unmap_ok(v, 3 * PG);

	/* pcache_munmap */
	anon = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(anon != MAP_FAILED, "anonymous mmap");
	v = map_ok(fd, 4 * PG, PROT_READ | PROT_WRITE, 0);
	CHECK_EQ(pcache_munmap(anon, PG), -EINVAL);
	CHECK_EQ(pcache_munmap(NULL, PG), -EINVAL);
	CHECK_EQ(pcache_munmap(v, 5 * PG), -EINVAL);
	CHECK_EQ(pcache_munmap(v, 3 * PG), -EINVAL);
	CHECK_EQ(pcache_munmap(v, 0), -EINVAL);
	CHECK_EQ(pcache_munmap(v + PG, 3 * PG), -EINVAL);
	CHECK_EQ(pcache_munmap(v + 1, 4 * PG), -EINVAL);

	/* pcache_msync */
	CHECK_EQ(pcache_msync(v, PG, MS_SYNC | MS_ASYNC), -EINVAL);
	CHECK_EQ(pcache_msync(v, PG, 0x10000), -EINVAL);
	CHECK_EQ(pcache_msync(v + 1, PG, MS_SYNC), -EINVAL);
	CHECK_EQ(pcache_msync(anon, PG, MS_SYNC), -ENOMEM);
	CHECK_EQ(pcache_msync(v + 3 * PG, 2 * PG, MS_SYNC), -ENOMEM);
	CHECK_EQ(pcache_msync(v, PG, MS_SYNC), 0);
	CHECK_EQ(pcache_msync(v, 4 * PG, MS_ASYNC), 0);
	CHECK_EQ(pcache_msync(v, 4 * PG, MS_INVALIDATE), 0);

	/* pcache_madvise */
	CHECK_EQ(pcache_madvise(v, PG, 12345), -EINVAL);
	CHECK_EQ(pcache_madvise(v, PG, MADV_HUGEPAGE), -EINVAL);
	CHECK_EQ(pcache_madvise(v + 1, PG, MADV_DONTNEED), -EINVAL);
	CHECK_EQ(pcache_madvise(anon, PG, MADV_DONTNEED), -ENOMEM);
	CHECK_EQ(pcache_madvise(v + 2 * PG, 3 * PG, MADV_DONTNEED), -ENOMEM);
	CHECK_EQ(pcache_madvise(v, 4 * PG, MADV_DONTNEED), 0);
	CHECK_EQ(pcache_madvise(v, 4 * PG, MADV_WILLNEED), 0);
	CHECK_EQ(pcache_madvise(v, 4 * PG, MADV_SEQUENTIAL), 0);

	/* pcache_mlock: the file has 2 pages, the view 4. */
	CHECK_EQ(pcache_mlock(v, 4 * PG), -ENOMEM);
	CHECK_EQ(pcache_mlock(v + 2 * PG, PG), -ENOMEM);
	CHECK_EQ(pcache_mlock(anon, PG), -ENOMEM);
	CHECK_EQ(pcache_mlock(v + 3 * PG, 2 * PG), -ENOMEM);
	CHECK_EQ(pcache_mlock(v, 2 * PG), 0);
	CHECK_EQ(pcache_ftruncate(fd, 2 * PG + 10), 0);
	CHECK_EQ(pcache_mlock(v, 3 * PG), 0);		/* a partial last page is in */
	CHECK_EQ(pcache_mlock(v + 100, 2 * PG), 0);	/* unaligned start is rounded */

	unmap_ok(v, 4 * PG);
	CHECK_EQ(pcache_munmap(v, 4 * PG), -EINVAL);	/* twice */
	CHECK_EQ(pcache_msync(v, PG, MS_SYNC), -ENOMEM);	/* gone */
	munmap(anon, 4 * PG);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_close(rd), 0);
	CHECK_EQ(pcache_close(wr), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
}

/* ------------------------------------------------------------------ */
/* (b) coherence table                                                 */
/* ------------------------------------------------------------------ */

enum op_kind { OP_PWRITE, OP_STORE, OP_TRUNC };

struct coh_op {
	enum op_kind kind;
	off_t off;		/* OP_TRUNC: the new size */
	size_t len;
	const char *what;
};

#define VA_PAGES	16	/* view A: the file from 0, read-write */
#define VB_PGOFF	4	/* view B: file pages 4..11, read-only */
#define VB_PAGES	8
#define MODEL_MAX	(20 * PG)

static const struct coh_op coh_ops[] = {
	{ OP_PWRITE, 0, 1, "pwrite 1 byte at 0 (views made on an empty file)" },
	{ OP_PWRITE, 1, 4095, "pwrite rest of page 0" },
	{ OP_PWRITE, 4095, 2, "pwrite across page 0/1" },
	{ OP_PWRITE, 100, 10000, "pwrite unaligned, 3 pages" },
	{ OP_PWRITE, 0, 8 * PG + 1000, "pwrite whole file, partial last page" },
	{ OP_STORE, 0, 1, "store 1 byte at 0" },
	{ OP_STORE, 4095, 2, "store across page 0/1" },
	{ OP_STORE, 5000, 3000, "store unaligned inside page 1" },
	{ OP_STORE, 8 * PG + 999, 1, "store the last byte" },
	{ OP_STORE, 8 * PG, 1000, "store the partial last page" },
	{ OP_STORE, 1, 3 * PG + 7, "store 3 pages, unaligned both ends" },
	{ OP_PWRITE, 8 * PG + 500, 3000, "pwrite extending across a page" },
	{ OP_PWRITE, 10 * PG + 17, 100, "pwrite extending past a hole" },
	{ OP_STORE, 9 * PG + 5, 200, "store into the hole" },
	{ OP_STORE, 4 * PG - 3, 6, "store across view B's start" },
	{ OP_TRUNC, 5 * PG + 123, 0, "truncate down, unaligned" },
	{ OP_TRUNC, 7 * PG, 0, "extend: zeroes, not old data" },
	{ OP_STORE, 6 * PG + 10, 50, "store into the extended range" },
	{ OP_PWRITE, 5 * PG + 100, 100, "pwrite across the old end" },
	{ OP_TRUNC, 3 * PG, 0, "truncate down, aligned" },
	{ OP_TRUNC, 3 * PG + 1, 0, "extend by one byte" },
	{ OP_PWRITE, 3 * PG - 10, 20, "pwrite across the end, extending" },
	{ OP_TRUNC, 0, 0, "truncate to 0" },
	{ OP_TRUNC, 12 * PG + 4000, 0, "extend to 12 pages + 4000: all holes" },
	{ OP_STORE, 11 * PG + 4090, 20, "store across view B's end" },
	{ OP_PWRITE, 15 * PG + 4000, 96, "pwrite to exactly the view's end" },
	{ OP_STORE, 16 * PG - 1, 1, "store the view's last byte" },
	{ OP_PWRITE, 16 * PG, 10, "pwrite past the view's end" },
	{ OP_TRUNC, 1, 0, "truncate to 1 byte" },
	{ OP_STORE, 0, 1, "store the only byte" },
	{ OP_PWRITE, 2 * PG + 7, 4096, "pwrite past a hole again" },
};

static unsigned char model[MODEL_MAX];
static int coh_sigbus;		/* SIGBUS caught past EOF */
static off_t model_size;

/*
 * One view against the model: file bytes below EOF equal it, the rest of
 * the page holding EOF is zero, and every page wholly past EOF raises
 * SIGBUS in this thread.
 */
static void verify_view(const char *view, off_t pgoff, size_t pages,
			const char *name, size_t step)
{
	static char buf[PG];

	for (size_t p = 0; p < pages; p++) {
		off_t foff = (pgoff + (off_t)p) * PG;
		const char *vp = view + p * PG;
		int sig;

		if (foff < model_size) {
			size_t in = (size_t)(model_size - foff < PG ? model_size - foff : PG);
			size_t bad;

			sig = try_copy(buf, vp, PG);
			if (sig) {
				CHECK(!sig, "step %zu: view %s page %zu (file page %lld) "
				      "below EOF %lld raised signal %d", step, name, p,
				      (long long)(pgoff + (off_t)p), (long long)model_size, sig);
				continue;
			}
			if (memcmp(buf, model + foff, in)) {
				size_t i = 0;

				while (buf[i] == (char)model[foff + i])
					i++;
				CHECK(0, "step %zu: view %s differs from the model at file "
				      "offset %lld (got %#x want %#x)", step, name,
				      (long long)(foff + (off_t)i), buf[i] & 0xff,
				      model[foff + i]);
			}
			bad = bytes_nonzero(buf + in, PG - in);
			CHECK(bad == (size_t)-1, "step %zu: view %s: byte past EOF at "
			      "file offset %lld is not zero", step, name,
			      (long long)(foff + (off_t)in + (off_t)bad));
		} else {
			pid_t me = gettid_();

			sig = try_read(vp);
			coh_sigbus += sig == SIGBUS;
			CHECK(sig == SIGBUS, "step %zu: view %s page %zu (file page %lld) "
			      "past EOF %lld: got signal %d, want SIGBUS", step, name, p,
			      (long long)(pgoff + (off_t)p), (long long)model_size, sig);
			if (sig)
				CHECK(caught_tid == me, "SIGBUS went to tid %d, not the "
				      "toucher %d", (int)caught_tid, (int)me);
		}
	}
}

static void verify_all(int fd, const char *va, const char *vb, size_t step)
{
	static unsigned char buf[MODEL_MAX + PG];
	struct stat st;
	ssize_t n;

	CHECK_EQ(pcache_fstat(fd, &st), 0);
	CHECK_EQ(st.st_size, model_size);
	n = pcache_pread(fd, buf, sizeof(buf), 0);
	CHECK_EQ(n, model_size);
	if (n == model_size && memcmp(buf, model, (size_t)n))
		CHECK(0, "step %zu: pread differs from the model", step);
	verify_view(va, 0, VA_PAGES, "A", step);
	verify_view(vb, VB_PGOFF, VB_PAGES, "B", step);
}

static void test_coherence(void)
{
	struct pcache *pc = new_cache(0);
	int fd = open_file(pc, "coherence", O_RDWR);
	char *va, *vb;
	size_t i;

	set_case("coherence table", 60);
	va = map_ok(fd, VA_PAGES * PG, PROT_READ | PROT_WRITE, 0);
	vb = map_ok(fd, VB_PAGES * PG, PROT_READ, VB_PGOFF * PG);
	model_size = 0;
	memset(model, 0, sizeof(model));
	verify_all(fd, va, vb, 0);

	for (i = 0; i < ARRAY_SIZE(coh_ops); i++) {
		const struct coh_op *op = &coh_ops[i];
		unsigned tag = (unsigned)i + 1;
		int fails = test_failures;

		switch (op->kind) {
		case OP_PWRITE:
			fill(fd, tag, op->off, op->len);
			pattern_fill(model + op->off, op->len, tag, (uint64_t)op->off);
			if (op->off + (off_t)op->len > model_size)
				model_size = op->off + (off_t)op->len;
			break;
		case OP_STORE: {
			char *src = malloc(op->len);
			int sig;

			if (op->off + (off_t)op->len > model_size ||
			    op->off + (off_t)op->len > VA_PAGES * PG) {
				fprintf(stderr, "bad table entry %zu\n", i);
				exit(1);
			}
			pattern_fill(src, op->len, tag, (uint64_t)op->off);
			sig = try_copy(va + op->off, src, op->len);
			CHECK(!sig, "step %zu: store through view A raised %d", i + 1, sig);
			memcpy(model + op->off, src, op->len);
			free(src);
			break;
		}
		case OP_TRUNC:
			CHECK_EQ(pcache_ftruncate(fd, op->off), 0);
			if (op->off < model_size)
				memset(model + op->off, 0, (size_t)(model_size - op->off));
			model_size = op->off;
			break;
		}
		verify_all(fd, va, vb, i + 1);
		if (test_failures != fails)
			fprintf(stderr, "  ^ step %zu: %s (off %lld len %zu)\n", i + 1,
				op->what, (long long)op->off, op->len);
	}
	printf("coherence: %zu table steps verified through pread and 2 views; "
	       "%d SIGBUS past EOF (%llu sent by the fault handler)\n",
	       ARRAY_SIZE(coh_ops), coh_sigbus,
	       (unsigned long long)stats(pc).view_sigbus);
	unmap_ok(va, VA_PAGES * PG);
	unmap_ok(vb, VB_PAGES * PG);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
}

/* ------------------------------------------------------------------ */
/* (c) page_mkwrite / page_mkclean cycles                              */
/* ------------------------------------------------------------------ */

#define CYC_PAGES	4
#define CYCLES		20

static void test_mkwrite_cycle(void)
{
	struct pcache *pc = new_cache(0);
	int fd = open_file(pc, "cycle", O_RDWR);
	struct pcache_stats s0, s1;
	char *va, *vb, want[CYC_PAGES * PG], got[CYC_PAGES * PG];
	int cyc, p;

	set_case("mkwrite/mkclean cycles", 60);
	fill(fd, 1, 0, CYC_PAGES * PG);
	pattern_fill(want, sizeof(want), 1, 0);
	CHECK_EQ(pcache_fsync(fd), 0);
	va = map_ok(fd, CYC_PAGES * PG, PROT_READ | PROT_WRITE, 0);
	vb = map_ok(fd, CYC_PAGES * PG, PROT_READ | PROT_WRITE, 0);

	/* Map every page in both views, clean: installed write-protected. */
	for (p = 0; p < CYC_PAGES; p++) {
		CHECK_EQ(try_read(va + p * PG), 0);
		CHECK_EQ(try_read(vb + p * PG), 0);
	}
	s0 = stats_settled(pc);
	CHECK_EQ(s0.pages_dirty, 0);
	CHECK_EQ(s0.view_wp_faults, 0);
	CHECK_EQ(s0.views, 2);

	for (cyc = 0; cyc < CYCLES; cyc++) {
		int fails = test_failures;
		off_t o = 1 * PG + cyc * 7;

		/* page_mkwrite through A: one WP fault, the page is dirty. */
		s0 = stats_settled(pc);
		CHECK_EQ(try_write(va + o, (char)(cyc + 1)), 0);
		want[o] = (char)(cyc + 1);
		s1 = STATS_AT_LEAST(pc, view_wp_faults, s0.view_wp_faults + 1);
		CHECK_EQ(s1.view_wp_faults - s0.view_wp_faults, 1);
		CHECK_EQ(s1.pages_dirty, 1);
		CHECK_EQ(s1.view_faults - s0.view_faults, 0);

		/* Unprotected in A now: no further fault. */
		CHECK_EQ(try_write(va + o + 1, (char)(cyc + 2)), 0);
		want[o + 1] = (char)(cyc + 2);
		s0 = stats_settled(pc);
		CHECK_EQ(s0.view_wp_faults - s1.view_wp_faults, 0);

		/* B's mapping is still protected: its own page_mkwrite. */
		CHECK_EQ(try_write(vb + o + 2, (char)(cyc + 3)), 0);
		want[o + 2] = (char)(cyc + 3);
		s1 = STATS_AT_LEAST(pc, view_wp_faults, s0.view_wp_faults + 1);
		CHECK_EQ(s1.view_wp_faults - s0.view_wp_faults, 1);
		CHECK_EQ(s1.pages_dirty, 1);
		CHECK_EQ(try_write(vb + o + 3, (char)(cyc + 4)), 0);
		want[o + 3] = (char)(cyc + 4);
		CHECK_EQ(stats_settled(pc).view_wp_faults, s1.view_wp_faults);

		/* The stores are the file's bytes. */
		CHECK_EQ(pcache_pread(fd, got, sizeof(got), 0), sizeof(got));
		CHECK(!memcmp(got, want, sizeof(got)), "cycle %d: pread after stores", cyc);

		/* page_mkclean: writeback protects the page in both views. */
		s0 = stats(pc);
		if (cyc % 3 == 0)
			CHECK_EQ(pcache_fsync(fd), 0);
		else if (cyc % 3 == 1)
			CHECK_EQ(pcache_msync(va + PG, PG, MS_SYNC), 0);
		else
			CHECK_EQ(pcache_msync(vb, CYC_PAGES * PG, MS_SYNC), 0);
		s1 = stats(pc);
		CHECK_EQ(s1.pages_dirty, 0);
		CHECK_EQ(s1.writeback_pages - s0.writeback_pages, 1);
		/* Protected, not zapped: reading needs no fault. */
		CHECK_EQ(try_read(va + o), 0);
		CHECK_EQ(try_read(vb + o), 0);
		CHECK_EQ(stats_settled(pc).view_faults, s1.view_faults);
		if (test_failures != fails)
			fprintf(stderr, "  ^ cycle %d (writeback by %s)\n", cyc,
				cyc % 3 == 0 ? "fsync" : "msync MS_SYNC");
	}

	/* All pages dirty through alternating views; msync of a sub-range. */
	s0 = stats_settled(pc);
	for (p = 0; p < CYC_PAGES; p++) {
		char *v = p & 1 ? vb : va;

		CHECK_EQ(try_write(v + p * PG + 11, 'x'), 0);
		want[p * PG + 11] = 'x';
	}
	s1 = STATS_AT_LEAST(pc, view_wp_faults, s0.view_wp_faults + CYC_PAGES);
	CHECK_EQ(s1.view_wp_faults - s0.view_wp_faults, CYC_PAGES);
	CHECK_EQ(s1.pages_dirty, CYC_PAGES);
	CHECK_EQ(pcache_msync(va, 2 * PG, MS_SYNC), 0);
	CHECK_EQ(stats(pc).pages_dirty, CYC_PAGES - 2);
	CHECK_EQ(pcache_msync(vb + 2 * PG, 2 * PG, MS_ASYNC), 0);	/* starts it */
	CHECK_EQ(pcache_fsync(fd), 0);
	CHECK_EQ(stats(pc).pages_dirty, 0);

	/* A store that maps the page (no PTE yet) dirties it at once. */
	CHECK_EQ(pcache_madvise(va, CYC_PAGES * PG, MADV_DONTNEED), 0);
	s0 = stats_settled(pc);
	CHECK_EQ(try_write(va + 3 * PG, 'y'), 0);
	want[3 * PG] = 'y';
	STATS_AT_LEAST(pc, view_faults, s0.view_faults + 1);
	s1 = stats_settled(pc);
	CHECK_EQ(s1.view_faults - s0.view_faults, 1);
	CHECK_EQ(s1.view_wp_faults - s0.view_wp_faults, 0);
	CHECK_EQ(s1.pages_dirty, 1);
	CHECK_EQ(pcache_fsync(fd), 0);
	/* ... and a store to a page first mapped clean by a read faults twice. */
	CHECK_EQ(try_read(va + 2 * PG), 0);
	s0 = stats_settled(pc);
	CHECK_EQ(try_write(va + 2 * PG, 'z'), 0);
	want[2 * PG] = 'z';
	STATS_AT_LEAST(pc, view_wp_faults, s0.view_wp_faults + 1);
	s1 = stats_settled(pc);
	CHECK_EQ(s1.view_wp_faults - s0.view_wp_faults, 1);
	CHECK_EQ(s1.pages_dirty, 1);

	CHECK_EQ(pcache_pread(fd, got, sizeof(got), 0), sizeof(got));
	CHECK(!memcmp(got, want, sizeof(got)), "pread after all cycles");
	s1 = stats_settled(pc);
	printf("mkwrite/mkclean: %d cycles x 2 views: %llu WP faults, %llu faults, "
	       "%llu pages written back; a fault counter was still behind when "
	       "the touch returned in %d of %d checks\n", CYCLES,
	       (unsigned long long)s1.view_wp_faults,
	       (unsigned long long)s1.view_faults,
	       (unsigned long long)s1.writeback_pages, stat_lags, stat_checks);
	unmap_ok(va, CYC_PAGES * PG);
	unmap_ok(vb, CYC_PAGES * PG);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
}

/* ------------------------------------------------------------------ */
/* (d) truncation                                                      */
/* ------------------------------------------------------------------ */

struct touch_arg {
	const char *addr;
	bool write;
	int sig;
	pid_t tid, caught;
};

static void *touch_thread(void *arg)
{
	struct touch_arg *t = arg;

	t->tid = gettid_();
	t->sig = t->write ? try_write((char *)t->addr, 1) : try_read(t->addr);
	t->caught = caught_tid;
	return NULL;
}

/* Touch @addr from a new thread; the signal it got (0: none). */
static int touch_in_thread(const char *addr, bool write)
{
	struct touch_arg t = { .addr = addr, .write = write };
	pthread_t th;

	caught_signo = 0;
	pthread_create(&th, NULL, touch_thread, &t);
	pthread_join(th, NULL);
	if (t.sig)
		CHECK(t.caught == t.tid, "the signal was taken by tid %d, not by "
		      "the touching thread %d", (int)t.caught, (int)t.tid);
	CHECK_EQ(caught_signo, 0);	/* and not by this one */
	return t.sig;
}

static void test_truncate(void)
{
	struct pcache *pc = new_cache(0);
	int fd = open_file(pc, "trunc", O_RDWR);
	const off_t small = 3 * PG + 100;
	struct pcache_stats s0, s1;
	char buf[8 * PG];
	char *v;
	int p;

	set_case("truncate", 30);
	fill(fd, 7, 0, 8 * PG);
	v = map_ok(fd, 8 * PG, PROT_READ | PROT_WRITE, 0);
	/* Every page mapped and dirty in the view. */
	for (p = 0; p < 8; p++)
		CHECK_EQ(try_write(v + p * PG + 5, v[p * PG + 5]), 0);
	CHECK_EQ(stats(pc).pages_cached, 8);

	CHECK_EQ(pcache_ftruncate(fd, small), 0);
	s0 = stats(pc);
	CHECK_EQ(s0.pages_cached, 4);	/* pages past the end are punched */
	CHECK_EQ(s0.pages_dirty, 4);
	CHECK_EQ(try_copy(buf, v, 4 * PG), 0);
	CHECK_EQ(pattern_check(buf, (size_t)small, 7, 0), -1);
	CHECK_EQ(bytes_nonzero(buf + small, 4 * PG - (size_t)small), -1);
	CHECK_EQ(pcache_pread(fd, buf, PG, small), 0);
	/* Wholly past EOF: SIGBUS, in the touching thread, read or write. */
	for (p = 4; p < 8; p++) {
		CHECK_EQ(touch_in_thread(v + p * PG, false), SIGBUS);
		CHECK_EQ(touch_in_thread(v + p * PG + PG - 1, true), SIGBUS);
		CHECK_EQ(try_read(v + p * PG + 17), SIGBUS);
		/* The kernel's own SIGBUS: the page was poisoned past EOF. */
		CHECK_EQ(caught_code, BUS_ADRERR);
	}
	s1 = stats(pc);
	/* One poisoning per page; later touches get SIGBUS from the kernel. */
	CHECK_EQ(s1.view_sigbus - s0.view_sigbus, 4);
	CHECK_EQ(s1.pages_cached, 4);	/* the touches instantiated nothing */

	/* Extend: the old bytes must not come back. */
	CHECK_EQ(pcache_ftruncate(fd, 8 * PG), 0);
	CHECK_EQ(try_copy(buf, v, 8 * PG), 0);
	CHECK_EQ(pattern_check(buf, (size_t)small, 7, 0), -1);
	CHECK_EQ(bytes_nonzero(buf + small, 8 * PG - (size_t)small), -1);
	CHECK_EQ(pcache_pread(fd, buf, 8 * PG, 0), 8 * PG);
	CHECK_EQ(bytes_nonzero(buf + small, 8 * PG - (size_t)small), -1);

	/* Store into the extended range, then read it back by pread. */
	CHECK_EQ(try_write(v + 6 * PG + 1, 'Q'), 0);
	CHECK_EQ(pcache_pread(fd, buf, 2, 6 * PG), 2);
	CHECK(buf[0] == 0 && buf[1] == 'Q', "store past the old EOF: %#x %#x",
	      buf[0] & 0xff, buf[1] & 0xff);

	/* To 0 and back: everything reads zero, through a second view too. */
	CHECK_EQ(pcache_ftruncate(fd, 0), 0);
	CHECK_EQ(touch_in_thread(v, false), SIGBUS);
	CHECK_EQ(stats(pc).pages_cached, 0);
	CHECK_EQ(pcache_ftruncate(fd, 5 * PG - 1), 0);
	CHECK_EQ(try_copy(buf, v, 5 * PG), 0);
	CHECK_EQ(bytes_nonzero(buf, 5 * PG), -1);
	CHECK_EQ(touch_in_thread(v + 5 * PG, true), SIGBUS);

	/* Truncate with the partial page dirty through the view. */
	CHECK_EQ(try_copy(v + PG, "0123456789", 10), 0);
	CHECK_EQ(pcache_ftruncate(fd, PG + 4), 0);
	CHECK_EQ(try_copy(buf, v + PG, PG), 0);
	CHECK(!memcmp(buf, "0123", 4), "head of the partial page kept");
	CHECK_EQ(bytes_nonzero(buf + 4, PG - 4), -1);
	CHECK_EQ(touch_in_thread(v + 2 * PG, false), SIGBUS);

	printf("truncate: %llu SIGBUS delivered by the fault handler\n",
	       (unsigned long long)stats(pc).view_sigbus);
	unmap_ok(v, 8 * PG);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
}

/* ------------------------------------------------------------------ */
/* (e) many views                                                      */
/* ------------------------------------------------------------------ */

#define MANY_PAGES	32
#define MANY_VIEWS	16
#define MANY_FILES	8

struct vdesc {
	char *addr;
	size_t len;
	off_t off;
	int fd;
	unsigned tag;
};

static void check_view_pattern(const struct vdesc *d, const char *what)
{
	char *buf = malloc(d->len);
	int sig = try_copy(buf, d->addr, d->len);
	long bad;

	CHECK(!sig, "%s: signal %d", what, sig);
	if (!sig) {
		bad = pattern_check(buf, d->len, d->tag, (uint64_t)d->off);
		CHECK(bad == -1, "%s: view at file offset %lld differs at +%ld",
		      what, (long long)d->off, bad);
	}
	free(buf);
}

struct fault_loop {
	struct vdesc d;
	int iters;
	int sigs;
};

static void *fault_loop_thread(void *arg)
{
	struct fault_loop *f = arg;

	for (int i = 0; i < f->iters; i++) {
		/* Zap our own view: every pass faults every page again. */
		if (pcache_madvise(f->d.addr, f->d.len, MADV_DONTNEED))
			f->sigs++;
		char *buf = malloc(f->d.len);

		if (try_copy(buf, f->d.addr, f->d.len) ||
		    pattern_check(buf, f->d.len, f->d.tag, (uint64_t)f->d.off) != -1)
			f->sigs++;
		free(buf);
	}
	return NULL;
}

static void test_many_views(void)
{
	struct pcache *pc = new_cache(0);
	int fd = open_file(pc, "many", O_RDWR);
	int fds[MANY_FILES], fd2;
	struct vdesc views[MANY_VIEWS], fviews[MANY_FILES][2];
	struct fault_loop loops[4];
	pthread_t th[4];
	char name[32];
	int i, j, sig;

	set_case("many views", 60);
	fill(fd, 3, 0, MANY_PAGES * PG);
	for (i = 0; i < MANY_VIEWS; i++) {
		struct vdesc *d = &views[i];

		d->off = (off_t)(i % 8) * PG;
		d->len = (size_t)(1 + (i * 5) % 16) * PG;
		d->fd = fd;
		d->tag = 3;
		d->addr = map_ok(fd, d->len, i & 1 ? PROT_READ : PROT_READ | PROT_WRITE,
				 d->off);
	}
	for (i = 0; i < MANY_FILES; i++) {
		snprintf(name, sizeof(name), "file%d", i);
		fds[i] = open_file(pc, name, O_RDWR);
		fill(fds[i], 10 + i, 0, 4 * PG);
		for (j = 0; j < 2; j++) {
			struct vdesc *d = &fviews[i][j];

			d->off = j * PG;
			d->len = (size_t)(4 - j) * PG;
			d->fd = fds[i];
			d->tag = 10 + i;
			d->addr = map_ok(fds[i], d->len, PROT_READ | PROT_WRITE, d->off);
		}
	}
	CHECK_EQ(stats(pc).views, MANY_VIEWS + 2 * MANY_FILES);
	for (i = 0; i < MANY_VIEWS; i++)
		check_view_pattern(&views[i], "many views of one file");
	for (i = 0; i < MANY_FILES; i++)
		for (j = 0; j < 2; j++)
			check_view_pattern(&fviews[i][j], "views of many files");

	/* A store through one view is in every view of that file, and no other. */
	/* View 2 (read-write) shows file page 2 at its start. */
	CHECK(views[2].off == 2 * PG && views[2].len > PG, "layout of view 2");
	CHECK_EQ(try_write(views[2].addr + 9, '#'), 0);
	for (i = 0, j = 0; i < MANY_VIEWS; i++) {
		off_t fo = 2 * PG + 9 - views[i].off;

		if (fo >= 0 && fo < (off_t)views[i].len) {
			CHECK(views[i].addr[fo] == '#', "view %d does not see the store", i);
			j++;
		}
	}
	CHECK(j >= 5, "only %d views show file page 2", j);
	CHECK_EQ(try_write(views[2].addr + 9, (char)pattern_byte(3, 2 * PG + 9)), 0);
	CHECK_EQ(try_write(fviews[5][1].addr, '%'), 0);
	CHECK(fviews[5][0].addr[PG] == '%', "same file, other view");
	for (i = 0; i < MANY_FILES; i++)
		if (i != 5)
			CHECK(fviews[i][0].addr[PG] == (char)pattern_byte(10 + i, PG),
			      "file %d changed by a store to file 5", i);
	CHECK_EQ(try_write(fviews[5][1].addr, (char)pattern_byte(15, PG)), 0);

	/* A read-only view refuses stores with SIGSEGV. */
	sig = try_write(views[1].addr, 'r');
	CHECK_EQ(sig, SIGSEGV);
	CHECK(views[1].addr[0] == (char)pattern_byte(3, views[1].off), "RO view changed");

	/*
	 * munmap/mmap churn on the same files while 4 threads fault their own
	 * views again and again.
	 */
	for (i = 0; i < 4; i++) {
		loops[i].d = i < 2 ? views[2 + i] : fviews[i][0];
		loops[i].iters = 40;
		loops[i].sigs = 0;
		pthread_create(&th[i], NULL, fault_loop_thread, &loops[i]);
	}
	for (int round = 0; round < 60; round++) {
		struct vdesc d = views[4 + round % 8];

		CHECK_EQ(pcache_munmap(d.addr, d.len), 0);
		d.addr = map_ok(d.fd, d.len, PROT_READ, d.off);
		check_view_pattern(&d, "a view remade during faults");
		views[4 + round % 8] = d;
		j = round % MANY_FILES;
		CHECK_EQ(pcache_munmap(fviews[j][1].addr, fviews[j][1].len), 0);
		fviews[j][1].addr = map_ok(fds[j], fviews[j][1].len,
					   PROT_READ | PROT_WRITE, fviews[j][1].off);
		check_view_pattern(&fviews[j][1], "a file view remade during faults");
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(loops[i].sigs == 0, "fault loop %d: %d bad passes", i, loops[i].sigs);
	}

	/* -EBUSY while a view lives; another descriptor of the file is free. */
	fd2 = open_file(pc, "many", O_RDWR);
	CHECK_EQ(pcache_close(fd2), 0);
	CHECK_EQ(pcache_close(fd), -EBUSY);
	CHECK_EQ(pcache_destroy(pc), -EBUSY);
	CHECK_EQ(pcache_pread(fd, name, 4, 0), 4);	/* still open */
	check_view_pattern(&views[3], "after -EBUSY");
	for (i = 0; i < MANY_VIEWS; i++)
		unmap_ok(views[i].addr, views[i].len);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), -EBUSY);	/* the other files' views */
	for (i = 0; i < MANY_FILES; i++) {
		CHECK_EQ(pcache_close(fds[i]), -EBUSY);
		unmap_ok(fviews[i][0].addr, fviews[i][0].len);
		CHECK_EQ(pcache_close(fds[i]), -EBUSY);
		unmap_ok(fviews[i][1].addr, fviews[i][1].len);
		CHECK_EQ(pcache_close(fds[i]), 0);
	}
	CHECK_EQ(stats(pc).views, 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	printf("many views: %d views of one file, %d of %d files, 60 remap rounds "
	       "under 4 faulting threads\n", MANY_VIEWS, 2 * MANY_FILES, MANY_FILES);
}

/* ------------------------------------------------------------------ */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void probe(void)
{
	struct pcache *pc = new_cache(0);
	int fd = open_file(pc, "probe", O_RDWR);
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
		{ "errors", test_errors },
		{ "coherence", test_coherence },
		{ "mkwrite", test_mkwrite_cycle },
		{ "truncate", test_truncate },
		{ "many views", test_many_views },
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	watchdog_start();
	catch_install();	/* before pcache_create: the library chains to us */
	probe();
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		double t = now();
		int f = test_failures;

		parts[i].fn();
		printf("%-12s %s  %.3f s\n", parts[i].name,
		       test_failures == f ? "ok  " : "FAIL", now() - t);
	}
	alarm(0);
	return test_exit();
}
