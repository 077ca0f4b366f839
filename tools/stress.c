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
 *  - With --mmap each file also has two views (pcache_mmap): a writable one
 *    of the whole --max-size window on the O_RDWR descriptor and a
 *    read-only one from a page offset on the O_RDONLY descriptor.  The op
 *    mix then adds mapped reads (compared with the model up to i_size
 *    rounded up to a page: the rest of the last page must read as zeroes),
 *    mapped stores (only below i_size: they never extend the file), writes
 *    whose source is a view and reads whose destination is one (the seed's
 *    hazards, same file and across files), msync, madvise(MADV_DONTNEED),
 *    mlock (populate), unmap + remap, and touches of pages wholly past
 *    EOF, which must raise SIGBUS.  Every view access runs under a
 *    sigsetjmp guard (touch_copy), so an unexpected SIGBUS is reported as a
 *    mismatch instead of killing the run.  A file's views are unmapped
 *    before its descriptors are closed (a live view makes close -EBUSY).
 *    The full compares read every file through its views too.
 *
 * With --path DIR no cache is made: the same ops run as plain system calls
 * (openat, pread, pwritev, ftruncate, fsync, ...; views are mmap
 * MAP_SHARED) on files in DIR, e.g. a pcache-fuse mount, against the same
 * model.  The ops call through a table (struct stress_io), pcache's or the
 * system calls'; the few places where the kernel's rules differ from
 * pcache's test io->pcache_rules.  At the end every file is fsynced, and
 * --check-dir compares another directory's files (the mount's backing
 * directory) with the model.
 *
 * Only include/pcache.h is used: this is a client of the library.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
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
#define STRESS_MIN_MEM_LIMIT	(64u << 10)	/* --mem-limit: 16 pages at least */

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
	bool mmap;		/* --mmap: views and mapped ops */
	unsigned fault_around;	/* --fault-around (0: the library's) */
	unsigned fault_threads;	/* --fault-threads (0: the library's) */
	unsigned block_size;	/* --block-size (0: the backend's) */
	uint64_t mem_limit;	/* --mem-limit (0: see effective_mem_limit) */
	bool keep;		/* --keep: leave the temporary backing directory */
	const char *path;	/* --path: system calls on files in this directory */
	const char *check_dir;	/* --check-dir: compare its files at the end */
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
	/* --mmap: the views, or NULL (file offset x is at view + x) */
	unsigned char *view;	/* [0, view_len), read/write, on fd */
	unsigned char *rview;	/* [rview_off, view_len), read-only, on rfd */
	uint64_t rview_off;	/* page aligned */
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
static uint64_t view_len;	/* --mmap: bytes a view covers, model_cap page aligned */

/* The dir backend: its backing directory, made by us (removed unless --keep)? */
static bool dir_backend;
static char backing_dir[PATH_MAX];
static bool backing_dir_ours;
static uint64_t mem_limit;	/* the cache's, as configured */

static atomic_ullong ops_done;
static atomic_ullong mismatches;
static atomic_ullong early_fault_writes;	/* --path: see fault_write_ok */
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

/* ---- the calls: pcache's API, or system calls on --path DIR -------------- */

/*
 * Every call an op makes goes through @io, so the same ops, model and
 * checks run against pcache's API (the default) or against a real file
 * system: with --path DIR, plain system calls on files in DIR (a
 * pcache-fuse mount, or any directory).  Both tables return a negative
 * errno on failure, and mmap an error pointer (PCACHE_IS_ERR), so the op
 * code needs no mode tests except where the two really differ; those test
 * @pcache_rules:
 *  - pcache_close of a descriptor with a live view is -EBUSY; the kernel
 *    closes it (the mapping stays);
 *  - a closed descriptor's number is reused by the kernel's next open, so
 *    calls on a stale one are not errors there;
 *  - pcache refuses PROT_EXEC, a partial munmap, mlock of memory that is
 *    not a view, and msync running past a view; the kernel allows the
 *    first three, and the last one depends on what it mapped next door.
 */
struct stress_io {
	int (*open)(const char *name, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
	ssize_t (*preadv)(int fd, const struct iovec *iov, int cnt, off_t off);
	ssize_t (*pwritev)(int fd, const struct iovec *iov, int cnt, off_t off);
	ssize_t (*read)(int fd, void *buf, size_t n);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	ssize_t (*writev)(int fd, const struct iovec *iov, int cnt);
	off_t (*lseek)(int fd, off_t off, int whence);
	int (*ftruncate)(int fd, off_t len);
	int (*fsync)(int fd);
	int (*fdatasync)(int fd);
	int (*fstat)(int fd, struct stat *st);
	int (*unlink)(const char *name);
	void *(*mmap)(int fd, size_t len, int prot, off_t off);	/* MAP_SHARED */
	int (*munmap)(void *addr, size_t len);
	int (*msync)(void *addr, size_t len, int flags);
	int (*madvise)(void *addr, size_t len, int advice);
	int (*mlock)(void *addr, size_t len);	/* populate: fault the range in */
	bool pcache_rules;
};

static int pc_open(const char *name, int flags, mode_t mode)
{
	return pcache_open(cache, name, flags, mode);
}

static int pc_unlink(const char *name)
{
	return pcache_unlink(cache, name);
}

static const struct stress_io pcache_io = {
	.open = pc_open, .close = pcache_close, .pread = pcache_pread,
	.pwrite = pcache_pwrite, .preadv = pcache_preadv, .pwritev = pcache_pwritev,
	.read = pcache_read, .write = pcache_write, .writev = pcache_writev,
	.lseek = pcache_lseek, .ftruncate = pcache_ftruncate, .fsync = pcache_fsync,
	.fdatasync = pcache_fdatasync, .fstat = pcache_fstat, .unlink = pc_unlink,
	.mmap = pcache_mmap, .munmap = pcache_munmap, .msync = pcache_msync,
	.madvise = pcache_madvise, .mlock = pcache_mlock, .pcache_rules = true,
};

static int path_dirfd = -1;	/* --path: the directory, for openat/unlinkat */

/* A system call's result, with -errno for -1. */
#define SYS(call) ({ __typeof__(call) r_ = (call); r_ < 0 ? (__typeof__(r_))-errno : r_; })

static int sys_open(const char *name, int flags, mode_t mode)
{
	return SYS(openat(path_dirfd, name, flags | O_CLOEXEC, mode));
}
static int sys_close(int fd) { return SYS(close(fd)); }
static ssize_t sys_pread(int fd, void *buf, size_t n, off_t off)
{
	return SYS(pread(fd, buf, n, off));
}
static ssize_t sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return SYS(pwrite(fd, buf, n, off));
}
static ssize_t sys_preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return SYS(preadv(fd, iov, cnt, off));
}
static ssize_t sys_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return SYS(pwritev(fd, iov, cnt, off));
}
static ssize_t sys_read(int fd, void *buf, size_t n) { return SYS(read(fd, buf, n)); }
static ssize_t sys_write(int fd, const void *buf, size_t n) { return SYS(write(fd, buf, n)); }
static ssize_t sys_writev(int fd, const struct iovec *iov, int cnt)
{
	return SYS(writev(fd, iov, cnt));
}
static off_t sys_lseek(int fd, off_t off, int whence) { return SYS(lseek(fd, off, whence)); }
static int sys_ftruncate(int fd, off_t len) { return SYS(ftruncate(fd, len)); }
static int sys_fsync(int fd) { return SYS(fsync(fd)); }
static int sys_fdatasync(int fd) { return SYS(fdatasync(fd)); }
static int sys_fstat(int fd, struct stat *st) { return SYS(fstat(fd, st)); }
static int sys_unlink(const char *name) { return SYS(unlinkat(path_dirfd, name, 0)); }

static void *sys_mmap(int fd, size_t len, int prot, off_t off)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, off);

	return p == MAP_FAILED ? (void *)(intptr_t)-errno : p;
}
static int sys_munmap(void *addr, size_t len) { return SYS(munmap(addr, len)); }
static int sys_msync(void *addr, size_t len, int flags) { return SYS(msync(addr, len, flags)); }
static int sys_madvise(void *addr, size_t len, int advice)
{
	return SYS(madvise(addr, len, advice));
}

/*
 * The ops use mlock to populate a range (pcache_mlock locks nothing).  On
 * a real mapping the pages would stay locked: MADV_DONTNEED would then be
 * EINVAL, MS_INVALIDATE EBUSY, and RLIMIT_MEMLOCK would fill up.  So
 * unlock at once; mlock has faulted the range in (or failed) by then.
 * Called with syscall(2): ASan's mlock interceptor does nothing and
 * returns 0.
 */
static int sys_mlock(void *addr, size_t len)
{
	int ret = (int)SYS(syscall(SYS_mlock, addr, len));

	syscall(SYS_munlock, addr, len);
	return ret;
}

static const struct stress_io sys_io = {
	.open = sys_open, .close = sys_close, .pread = sys_pread,
	.pwrite = sys_pwrite, .preadv = sys_preadv, .pwritev = sys_pwritev,
	.read = sys_read, .write = sys_write, .writev = sys_writev,
	.lseek = sys_lseek, .ftruncate = sys_ftruncate, .fsync = sys_fsync,
	.fdatasync = sys_fdatasync, .fstat = sys_fstat, .unlink = sys_unlink,
	.mmap = sys_mmap, .munmap = sys_munmap, .msync = sys_msync,
	.madvise = sys_madvise, .mlock = sys_mlock, .pcache_rules = false,
};

static const struct stress_io *io = &pcache_io;

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
	char msg[2048];
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
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* --path: the calls were system calls; "pcache_pread" is pread there */
	for (char *p; !io->pcache_rules && (p = strstr(msg, "pcache_"));)
		memmove(p, p + 7, strlen(p + 7) + 1);
	fprintf(stderr, "stress:   %s\n", msg);
	if (w->file >= 0)
		fprintf(stderr, "stress:   model size of file %d: %" PRIu64 "\n",
			w->file, files[w->file].size);
	fprintf(stderr, "stress:   replay: pcache stress --seed %" PRIu64
		" --threads %d --files %d --max-size %" PRIu64 "%s%s%s%s%s%s%s%s%s",
		opts.seed, opts.threads, opts.files, opts.max_size,
		opts.path ? " --path " : "", opts.path ? opts.path : "",
		opts.strategy_name ? " --strategy " : "",
		opts.strategy_name ? opts.strategy_name : "",
		opts.backend ? " --backend " : "", opts.backend ? opts.backend : "",
		opts.backend_arg ? " --backend-arg " : "",
		opts.backend_arg ? opts.backend_arg : "",
		opts.mmap ? " --mmap" : "");
	if (opts.block_size)
		fprintf(stderr, " --block-size %u", opts.block_size);
	if (dir_backend)
		fprintf(stderr, " --mem-limit %" PRIu64, mem_limit);
	fprintf(stderr, "  (--threads 1 replays the same op sequence)\n");
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

/* ---- touching views: a SIGBUS/SIGSEGV guard ------------------------------ */

/*
 * A view access that faults past EOF gets SIGBUS from the library's fault
 * handler (tgkill to the faulting thread).  touch_copy() runs a memcpy
 * under sigsetjmp, so the op can check that SIGBUS came exactly when it
 * should, and an unexpected one is a mismatch, not a dead run.  The
 * handler is installed before pcache_create(): the library's own fault
 * guard chains to it for faults outside its guarded copies.  As the
 * library's does, it uses SA_NODEFER and sigsetjmp(env, 0), so the touch
 * itself costs no system call.  Before jumping out, the handler sets the
 * mask of the interrupted context again: a runtime that ran it with more
 * signals blocked (TSan blocks them all) would otherwise leave SIGBUS
 * blocked, and the next touch past EOF would hang.
 */
static __thread sigjmp_buf *touch_env;
static __thread volatile sig_atomic_t touch_sig;
static __thread int touch_code;		/* si_code of the last caught signal */
static __thread void *touch_addr;	/* and si_addr */

static void touch_handler(int sig, siginfo_t *info, void *ctx)
{
	sigjmp_buf *env = touch_env;
	struct sigaction dfl;

	if (env) {
		touch_env = NULL;
		touch_sig = sig;
		touch_code = info->si_code;
		touch_addr = info->si_addr;
		pthread_sigmask(SIG_SETMASK, &((ucontext_t *)ctx)->uc_sigmask, NULL);
		siglongjmp(*env, 1);
	}
	/* Not a guarded touch: say so, then die of the signal as without us. */
	{
		char msg[160];
		int n = snprintf(msg, sizeof(msg), "\nstress: signal %d (si_code %d,"
				 " si_addr %p) outside any view access: the run dies of it\n",
				 sig, info->si_code, info->si_addr);

		if (write(STDERR_FILENO, msg, (size_t)n) < 0)
			n = 0;	/* nothing better to do */
	}
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	if (info->si_code <= 0)
		raise(sig);	/* sent: send it again; raised: the retry kills */
}

static int touch_install(void)
{
	static const int sigs[] = { SIGBUS, SIGSEGV };
	struct sigaction act;

	memset(&act, 0, sizeof(act));
	act.sa_sigaction = touch_handler;
	act.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&act.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &act, NULL) < 0)
			return -errno;
	return 0;
}

/* memcpy(@dst, @src, @n) with view faults caught: 0, or the signal number. */
static __attribute__((noinline)) int touch_copy(void *dst, const void *src, size_t n)
{
	sigjmp_buf env;

	if (sigsetjmp(env, 0))
		return touch_sig;
	touch_sig = 0;
	touch_env = &env;
	__asm__ __volatile__("" ::: "memory");
	memcpy(dst, src, n);
	__asm__ __volatile__("" ::: "memory");
	touch_env = NULL;
	return 0;
}

/* Where the last caught signal came from, for a diagnostic. */
static const char *touch_origin(void)
{
	static __thread char buf[96];

	if (touch_code <= 0)	/* SI_USER, SI_TKILL, SI_QUEUE: sent, not a fault */
		snprintf(buf, sizeof(buf), "si_code %d: sent with kill/tgkill, not raised"
			 " by this access", touch_code);
	else
		snprintf(buf, sizeof(buf), "si_code %d at %p", touch_code, touch_addr);
	return buf;
}

/* The address of file offset @off in @f's writable view, or its read-only one. */
static unsigned char *view_at(const struct sfile *f, bool ro, uint64_t off)
{
	return ro ? f->rview + (off - f->rview_off) : f->view + off;
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
	ssize_t got = io->pread(f->fd, w->vbuf, n, (off_t)off);
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
	int ret = io->fstat(fd, &st);

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
	off_t got = io->lseek(fd, 0, SEEK_CUR);
	char g[RET_STR_LEN];

	if (got == (off_t)want)
		return true;
	mismatch(w, "pcache_lseek(%s, 0, SEEK_CUR) returned %s, the model's position is %" PRIu64,
		 which, ret_str(got, g), want);
	return false;
}

/*
 * Compare [lo, hi) of the file, read through a view, with the model; the
 * range must lie below i_size rounded up to a page (the bytes of the last
 * page past EOF read as zeroes, as the model's do).
 */
static bool verify_view(struct worker *w, struct sfile *f, bool ro,
			uint64_t lo, uint64_t hi)
{
	const char *what = ro ? "read through the read-only view" :
				"read through the view";

	while (lo < hi) {
		size_t n = hi - lo < STRESS_BUF_SIZE ? (size_t)(hi - lo) : STRESS_BUF_SIZE;
		int sig = touch_copy(w->vbuf, view_at(f, ro, lo), n);

		if (sig) {
			mismatch(w, "%s: signal %d (%s, %s) reading %zu bytes at file"
				 " offset %" PRIu64 ", below i_size rounded up to a page (%" PRIu64 ")",
				 what, sig, strsignal(sig), touch_origin(), n, lo, align_up(f->size));
			return false;
		}
		if (!check_bytes(w, what, f->data + lo, w->vbuf, n, lo))
			return false;
		lo += n;
	}
	return true;
}

/*
 * Whole file: size, every byte, and a read at EOF returning 0; with views,
 * every byte through both of them as well, up to the end of the last page.
 */
static bool verify_file(struct worker *w, struct sfile *f)
{
	uint64_t end = align_up(f->size);

	if (!verify_size(w, f, f->fd) || !verify_span(w, f, 0, f->size + 1))
		return false;
	if (f->view && !verify_view(w, f, false, 0, end))
		return false;
	if (f->rview && end > f->rview_off &&
	    !verify_view(w, f, true, f->rview_off, end))
		return false;
	return true;
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
	got = io->pwrite(f->fd, src, n, (off_t)off);
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
	got = io->pwritev(f->fd, iov, nseg, (off_t)off);
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
	got = io->pread(fd, w->rbuf, n, (off_t)off);
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
	got = io->preadv(fd, iov, nseg, (off_t)off);
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
	pos = io->lseek(f->fd, (off_t)off, SEEK_SET);
	if (!check_ret(w, "pcache_lseek(SEEK_SET)", pos, (long long)off))
		return false;
	f->pos = off;
	if (vec) {
		struct iovec iov[2] = {
			{ (void *)src, n / 2 }, { (void *)(src + n / 2), n - n / 2 },
		};
		got = io->writev(f->fd, iov, 2);
	} else {
		got = io->write(f->fd, src, n);
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
		pos = io->lseek(f->fd, 0, SEEK_END);
		if (!check_ret(w, "pcache_lseek(0, SEEK_END)", pos, (long long)f->size))
			return false;
		off = f->size;
	} else if (chance(w, 10)) {
		int64_t delta = (int64_t)off - (int64_t)f->pos;

		pos = io->lseek(f->fd, (off_t)delta, SEEK_CUR);
		if (!check_ret(w, "pcache_lseek(SEEK_CUR)", pos, (long long)off))
			return false;
	} else {
		pos = io->lseek(f->fd, (off_t)off, SEEK_SET);
		if (!check_ret(w, "pcache_lseek(SEEK_SET)", pos, (long long)off))
			return false;
	}
	w->off = off;
	f->pos = off;
	memset(w->rbuf, STRESS_CANARY, n + 2 * STRESS_CANARY_TAIL);
	got = io->read(f->fd, w->rbuf, n);
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
	ret = io->ftruncate(f->fd, (off_t)len);
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
		got = io->pwrite(f->afd, src, n, (off_t)below(w, old + 1));
		if (!check_ret(w, "pcache_pwrite(O_APPEND)", got, (long long)n))
			return false;
		model_write(f, old, src, n);
		return after_write(w, f, old, old, n);
	}
	got = io->write(f->afd, src, n);
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
	ret = data ? io->fdatasync(fd) : io->fsync(fd);
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
	f->fd = io->open(f->name, O_RDWR | extra, 0644);
	if (f->fd < 0)
		return f->fd;
	f->afd = io->open(f->name, O_RDWR | O_APPEND, 0);
	if (f->afd < 0)
		return f->afd;
	f->rfd = io->open(f->name, O_RDONLY, 0);
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
		err = io->close(*fds[i]);
		if (err && !ret)
			ret = err;
		f->stale_fd = *fds[i];
		*fds[i] = -1;
	}
	return ret;
}

/*
 * --mmap: map @f's two views, the read-only one from @rview_off.  Returns 0
 * or a negative errno (the views that were made stay, for unmap_views).
 */
static int map_views(struct sfile *f, uint64_t rview_off)
{
	void *v;

	v = io->mmap(f->fd, view_len, PROT_READ | PROT_WRITE, 0);
	if (PCACHE_IS_ERR(v))
		return PCACHE_PTR_ERR(v);
	f->view = v;
	v = io->mmap(f->rfd, view_len - rview_off, PROT_READ, (off_t)rview_off);
	if (PCACHE_IS_ERR(v))
		return PCACHE_PTR_ERR(v);
	f->rview = v;
	f->rview_off = rview_off;
	return 0;
}

/* Unmap @f's views; the first error, or 0. */
static int unmap_views(struct sfile *f)
{
	int ret = 0, err;

	if (f->view) {
		ret = io->munmap(f->view, view_len);
		f->view = NULL;
	}
	if (f->rview) {
		err = io->munmap(f->rview, view_len - f->rview_off);
		if (err && !ret)
			ret = err;
		f->rview = NULL;
	}
	return ret;
}

/* A page offset for a read-only view: 0 half the time, else in the first half. */
static uint64_t rand_rview_off(struct worker *w)
{
	uint64_t pages = view_len / page_size;

	return chance(w, 50) ? 0 : below(w, (pages + 1) / 2) * page_size;
}

/* Close the file's descriptors and open new ones; sometimes with O_TRUNC. */
static bool op_reopen(struct worker *w, struct sfile *f)
{
	bool trunc = chance(w, 10);
	int ret;

	w->op = trunc ? "close+reopen(O_TRUNC)" : "close+reopen";
	w->off = 0; w->len = f->size;
	if (opts.mmap) {
		/* A live view keeps its descriptor busy (pcache's rule). */
		if (io->pcache_rules && chance(w, 20)) {
			ret = io->close(chance(w, 50) ? f->fd : f->rfd);
			if (!check_ret(w, "pcache_close of a descriptor with a live view",
				       ret, -EBUSY))
				return false;
		}
		ret = unmap_views(f);
		if (!check_ret(w, "pcache_munmap", ret, 0))
			return false;
	}
	ret = close_fds(f);
	if (!check_ret(w, "pcache_close", ret, 0))
		return false;
	ret = open_fds(f, trunc ? O_TRUNC : 0);
	if (!check_ret(w, "pcache_open", ret < 0 ? ret : 0, 0))
		return false;
	if (trunc)
		model_truncate(f, 0);
	if (opts.mmap) {
		ret = map_views(f, rand_rview_off(w));
		if (!check_ret(w, "pcache_mmap", ret, 0))
			return false;
		if (!verify_view(w, f, false, 0, align_up(f->size) < page_size ?
				 align_up(f->size) : page_size))
			return false;
	}
	return verify_pos(w, f->fd, 0, "fd") &&
	       verify_range(w, f, 0, page_size);
}

/*
 * May a write whose source turns unreadable after @readable bytes return
 * @got?  pcache: exactly @readable, or -EFAULT when it is 0.  The kernel
 * may stop earlier (POSIX allows a short count, or EFAULT): FUSE (Linux
 * 6.18, fuse_fill_write_pages) returns EFAULT when the first page it
 * copies into takes source bytes on both sides of the bad address and the
 * readable source page is not mapped yet, e.g. a page of another file on
 * the mount.  So in --path mode any count from 1 to @readable or -EFAULT is
 * taken; the file must then hold exactly those bytes (the caller checks).
 */
static bool fault_write_ok(ssize_t got, size_t readable)
{
	if (got == (readable ? (ssize_t)readable : -EFAULT))
		return true;
	if (io->pcache_rules)
		return false;
	if (got == -EFAULT || (got > 0 && (size_t)got < readable)) {
		atomic_fetch_add(&early_fault_writes, 1);
		return true;
	}
	return false;
}

/*
 * After a write at @off that copied nothing (-EFAULT).  pcache leaves the
 * size alone; Linux (6.18: ext4, tmpfs) extends a file to @off first, so
 * a failed write past EOF leaves a hole up to @off.  In --path mode take
 * that size into the model if it is exactly @off (verify_size checks it).
 */
static bool after_efault(struct worker *w, struct sfile *f, uint64_t off)
{
	struct stat st;

	if (io->pcache_rules || off <= f->size)
		return true;
	if (!check_ret(w, "pcache_fstat", io->fstat(f->fd, &st), 0))
		return false;
	if ((uint64_t)st.st_size == off)
		model_truncate(f, off);
	return true;
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
	got = io->pwrite(f->fd, src, n, (off_t)off);
	want = readable ? (long long)readable : -EFAULT;
	if (!fault_write_ok(got, readable)) {
		mismatch(w, "pcache_pwrite of %zu bytes, of which the first %zu are readable,"
			 " returned %s; the model expects %s",
			 n, readable, ret_str(got, g), ret_str(want, e));
		return false;
	}
	if (got < 0 && !after_efault(w, f, off))
		return false;
	n = got < 0 ? 0 : (size_t)got;
	model_write(f, off, src, n);
	return after_write(w, f, old, off, n) &&
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
		got = io->pwrite(f->fd, &byte, 1, -1);
		return check_ret(w, "pcache_pwrite", got, -EINVAL);
	case 1:
		w->op = "pread at offset -1";
		got = io->pread(f->fd, w->rbuf, 1, -1);
		return check_ret(w, "pcache_pread", got, -EINVAL);
	case 2:
		w->op = "ftruncate to -1";
		got = io->ftruncate(f->fd, -1);
		return check_ret(w, "pcache_ftruncate", got, -EINVAL);
	case 3:
		w->op = "pwrite on an O_RDONLY descriptor";
		got = io->pwrite(f->rfd, &byte, 1, 0);
		return check_ret(w, "pcache_pwrite", got, -EBADF);
	case 4:
		w->op = "ftruncate on an O_RDONLY descriptor";
		got = io->ftruncate(f->rfd, 0);
		return check_ret(w, "pcache_ftruncate", got, -EINVAL);
	case 5:
		w->op = "pwritev with a negative segment length";
		iov.iov_base = &byte;
		iov.iov_len = (size_t)-1;
		got = io->pwritev(f->fd, &iov, 1, 0);
		return check_ret(w, "pcache_pwritev", got, -EINVAL);
	case 6:
		w->op = "preadv with IOV_MAX + 1 segments";
		for (int i = 0; i < IOV_MAX + 1; i++) {
			many[i].iov_base = w->rbuf;
			many[i].iov_len = 1;
		}
		got = io->preadv(f->fd, many, IOV_MAX + 1, 0);
		return check_ret(w, "pcache_preadv", got, -EINVAL);
	case 7:
		w->op = "pread on a closed descriptor";
		if (f->stale_fd < 0 || !io->pcache_rules)
			return true;	/* the kernel reuses the number */
		got = io->pread(f->stale_fd, w->rbuf, 1, 0);
		return check_ret(w, "pcache_pread", got, -EBADF);
	default:
		w->op = "pread into NULL";
		w->off = off; w->len = 16;
		got = io->pread(f->fd, NULL, 16, (off_t)off);
		return check_ret(w, "pcache_pread", got, f->size ? -EFAULT : 0);
	}
}

/* ---- mapped ops (--mmap) --------------------------------------------------- */

/*
 * Views are touched only below i_size rounded up to a page (the "readable
 * end"); stores only below i_size.  Pages from the readable end to the end
 * of the view are wholly past EOF: touching them must raise SIGBUS.
 */
static uint64_t readable_end(const struct sfile *f)
{
	return align_up(f->size);
}

/* An offset in [lo, end), end > lo: anywhere, or near a page boundary or the end. */
static uint64_t rand_off_below(struct worker *w, uint64_t lo, uint64_t end)
{
	uint64_t r = below(w, 100), off;

	if (r < 60) {
		off = lo + below(w, end - lo);
	} else if (r < 80) {
		off = align_down(lo + below(w, end - lo)) + below(w, 33);
		off = off >= 16 ? off - 16 : 0;
	} else {
		uint64_t back = 1 + below(w, end - lo < 2 * page_size ?
					     end - lo : 2 * page_size);

		off = end - back;
	}
	return off < lo ? lo : off >= end ? end - 1 : off;
}

/* A length for a view access at @off that stays below @end. */
static size_t rand_len_below(struct worker *w, uint64_t off, uint64_t end)
{
	size_t n = rand_len(w);

	return off + n > end ? (size_t)(end - off) : n;
}

/* Read a range through one of the views and compare it with the model. */
static bool op_map_read(struct worker *w, struct sfile *f)
{
	uint64_t end = readable_end(f), off;
	bool ro = chance(w, 30) && end > f->rview_off;
	size_t n;

	w->op = ro ? "read through the read-only view" : "read through the view";
	if (!end)
		return true;	/* nothing may be touched */
	off = rand_off_below(w, ro ? f->rview_off : 0, end);
	n = rand_len_below(w, off, end);
	w->off = off; w->len = n;
	return verify_view(w, f, ro, off, off + n);
}

/* A store through the writable view, below i_size; pread must see it. */
static bool op_map_store(struct worker *w, struct sfile *f)
{
	uint64_t off;
	const unsigned char *src;
	size_t n;
	int sig;

	w->op = "store through the view";
	if (!f->size)
		return true;
	off = rand_off_below(w, 0, f->size);
	n = rand_len_below(w, off, f->size);
	src = rand_src(w, n);
	w->off = off; w->len = n;
	sig = touch_copy(f->view + off, src, n);
	if (sig) {
		mismatch(w, "signal %d (%s, %s) storing %zu bytes at file offset %" PRIu64
			 " through the view, below i_size", sig, strsignal(sig),
			 touch_origin(), n, off);
		return false;
	}
	model_write(f, off, src, n);	/* below i_size: never extends */
	return verify_range(w, f, off, off + n);
}

/*
 * A second file for an op that works on two, locked with trylock (the
 * caller holds @f's lock; a blocking lock could deadlock with a thread
 * doing the same the other way round).  NULL if there is none free.
 */
static struct sfile *lock_other_file(struct worker *w, struct sfile *f)
{
	struct sfile *g;

	if (opts.files < 2)
		return NULL;
	g = &files[(f->index + 1 + below(w, opts.files - 1)) % opts.files];
	return pthread_mutex_trylock(&g->lock) == 0 ? g : NULL;
}

/*
 * pwrite whose source is a view: the seed's hazards.  The source is a view
 * of the same file (a disjoint range, often the very page being written:
 * deadlock 1) or of another file (deadlock 2 when two threads cross).
 * Every source byte lies below the source's readable end, so the write must
 * be whole.
 */
static bool op_map_src_write(struct worker *w, struct sfile *f)
{
	struct sfile *g = chance(w, 50) ? lock_other_file(w, f) : NULL;
	struct sfile *src_file = g ? g : f;
	uint64_t end = readable_end(src_file), s, d, old = f->size;
	bool ro;
	size_t n;
	ssize_t got;
	bool ok;

	if (!end) {
		if (g)
			pthread_mutex_unlock(&g->lock);
		return op_pwrite(w, f);
	}
	n = rand_len(w);
	if (n > end)
		n = (size_t)end;
	if (n > model_cap)
		n = (size_t)model_cap;
	s = below(w, end - n + 1);
	if (chance(w, 50)) {
		/* near the source: often the very page it lies in */
		d = s + below(w, 2 * page_size);
		d = d >= page_size ? d - page_size : 0;
	} else {
		d = rand_off(w, f);
	}
	if (d > model_cap - n)
		d = model_cap - n;
	if (!g && d < s + n && s < d + n) {
		/* same file: the ranges must not overlap; move d past s + n (a small gap) */
		if (s + n + (d % 64) + n <= model_cap)
			d = s + n + d % 64;
		else if (s >= n)
			d = s - n;
		else
			return op_pwrite(w, f);
	}
	ro = chance(w, 30) && s >= src_file->rview_off;
	w->op = g ? "pwrite from another file's view" : "pwrite from the file's own view";
	w->off = d; w->len = n;
	memcpy(w->gather, src_file->data + s, n);
	got = io->pwrite(f->fd, view_at(src_file, ro, s), n, (off_t)d);
	ok = check_ret(w, "pcache_pwrite", got, (long long)n);
	if (g)
		pthread_mutex_unlock(&g->lock);
	if (!ok)
		return false;
	model_write(f, d, w->gather, n);
	return after_write(w, f, old, d, n) && verify_pos(w, f->fd, f->pos, "fd");
}

/*
 * pread whose destination is the writable view of a file, below its
 * i_size: copy_to_user into a mapping of the cache.  Same file (disjoint
 * ranges) or another.
 */
static bool op_map_dst_read(struct worker *w, struct sfile *f)
{
	struct sfile *g = chance(w, 50) ? lock_other_file(w, f) : NULL;
	struct sfile *dst_file = g ? g : f;
	uint64_t s = rand_read_off(w, f), d;
	size_t n, want;
	ssize_t got;
	bool ok;

	w->op = g ? "pread into another file's view" : "pread into the file's own view";
	if (!dst_file->size) {
		if (g)
			pthread_mutex_unlock(&g->lock);
		return true;
	}
	d = rand_off_below(w, 0, dst_file->size);
	n = rand_len_below(w, d, dst_file->size);
	if (!g && s < d + n && d < s + n) {
		/* same file: source and destination must not overlap */
		if (s >= d)
			n = (size_t)(s - d);
		else
			s = d + n + below(w, page_size);
	}
	w->off = s; w->len = n;
	want = model_read_count(f, s, n);
	memcpy(w->gather, f->data + s, want);
	got = io->pread(f->fd, dst_file->view + d, n, (off_t)s);
	ok = check_ret(w, "pcache_pread into a view", got, (long long)want);
	if (ok) {
		model_write(dst_file, d, w->gather, want);	/* below its i_size */
		/* through the view, and through pread (the destination file) */
		ok = verify_view(w, dst_file, false, align_down(d),
				 align_up(d + n) < readable_end(dst_file) ?
				 align_up(d + n) : readable_end(dst_file)) &&
		     verify_range(w, dst_file, d, d + n);
	}
	if (g)
		pthread_mutex_unlock(&g->lock);
	return ok;
}

/*
 * pwrite whose source is another file's view and runs from below its
 * readable end into a page wholly past its EOF: that page is a bad
 * address (SIGBUS), so the write must be short by exactly the bytes past
 * the readable end, or -EFAULT when it starts there (brief §4).
 */
static bool op_map_fault_write(struct worker *w, struct sfile *f)
{
	struct sfile *g = lock_other_file(w, f);
	uint64_t end, s, d, old = f->size, unreadable;
	size_t readable, n;
	long long want;
	ssize_t got;
	char gs[RET_STR_LEN], ws[RET_STR_LEN];

	if (!g)
		return op_fault_write(w, f);
	end = readable_end(g);
	if (end >= view_len) {
		pthread_mutex_unlock(&g->lock);
		return op_fault_write(w, f);
	}
	unreadable = view_len - end;
	if (chance(w, 20)) {
		readable = 0;
		s = end + below(w, unreadable < page_size ? unreadable : page_size);
		n = 1 + below(w, view_len - s < page_size ? view_len - s : page_size);
	} else {
		readable = end ? 1 + below(w, end < 4 * page_size ? end : 4 * page_size) : 0;
		s = end - readable;
		n = readable + 1 + below(w, unreadable < page_size ? unreadable : page_size);
	}
	if (n > model_cap) {
		pthread_mutex_unlock(&g->lock);
		return op_fault_write(w, f);
	}
	d = rand_off(w, f);
	if (d + n > model_cap)
		d = model_cap - n;
	w->op = "pwrite from another file's view, running past its EOF";
	w->off = d; w->len = n;
	memcpy(w->gather, g->data + s, readable);
	got = io->pwrite(f->fd, g->view + s, n, (off_t)d);
	pthread_mutex_unlock(&g->lock);
	want = readable ? (long long)readable : -EFAULT;
	if (!fault_write_ok(got, readable)) {
		mismatch(w, "pcache_pwrite of %zu bytes from a view, of which the first %zu"
			 " are below the source's EOF page, returned %s; the model expects %s",
			 n, readable, ret_str(got, gs), ret_str(want, ws));
		return false;
	}
	if (got < 0 && !after_efault(w, f, d))
		return false;
	n = got < 0 ? 0 : (size_t)got;
	model_write(f, d, w->gather, n);
	return after_write(w, f, old, d, n);
}

/* A page-aligned range [*a, *a + *len) inside a view of @f, 1 page or more. */
static void rand_view_range(struct worker *w, const struct sfile *f, bool ro,
			    uint64_t *a, size_t *len)
{
	uint64_t lo = ro ? f->rview_off : 0;
	uint64_t pages = (view_len - lo) / page_size, first, nr;

	if (chance(w, 10)) {
		first = 0;
		nr = pages;	/* the whole view */
	} else {
		first = below(w, pages);
		nr = 1 + below(w, pages - first < 16 ? pages - first : 16);
	}
	*a = lo + first * page_size;
	*len = (size_t)(nr * page_size);
	if (chance(w, 30) && *len > 1)
		*len -= below(w, page_size);	/* lengths round up to a page */
}

static bool op_msync(struct worker *w, struct sfile *f)
{
	bool ro = chance(w, 30);
	uint64_t r = below(w, 100), a;
	size_t len;
	int flags, ret;

	rand_view_range(w, f, ro, &a, &len);
	w->off = a; w->len = len;
	if (r < 4) {
		w->op = "msync of an unaligned address";
		ret = io->msync(view_at(f, ro, a) + 1 + below(w, page_size - 1), len,
				   MS_SYNC);
		return check_ret(w, "pcache_msync", ret, -EINVAL);
	}
	if (r < 8) {
		w->op = "msync running past the end of the view";
		if (!io->pcache_rules)
			return true;	/* the kernel may have mapped the next page */
		a = view_len - page_size;
		ret = io->msync(view_at(f, ro, a), 2 * page_size, MS_SYNC);
		return check_ret(w, "pcache_msync", ret, -ENOMEM);
	}
	flags = r < 75 ? MS_SYNC : r < 90 ? MS_ASYNC : MS_SYNC | MS_INVALIDATE;
	w->op = flags == MS_ASYNC ? "msync(MS_ASYNC)" : "msync(MS_SYNC)";
	ret = io->msync(view_at(f, ro, a), len, flags);
	if (!check_ret(w, "pcache_msync", ret, 0))
		return false;
	/* clean now (write-protected again): the next store must fault and work */
	if (f->size > a && chance(w, 50)) {
		uint64_t off = a + below(w, (f->size < a + len ? f->size : a + len) - a);
		const unsigned char *src = rand_src(w, 1);

		if (touch_copy(f->view + off, src, 1)) {
			mismatch(w, "signal storing 1 byte at %" PRIu64 " through the view"
				 " after msync, below i_size", off);
			return false;
		}
		model_write(f, off, src, 1);
		return verify_range(w, f, off, off + 1);
	}
	return true;
}

/* madvise: DONTNEED zaps the range; the data stays and the next touch refaults. */
static bool op_madvise(struct worker *w, struct sfile *f)
{
	static const int other[] = { MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL,
				     MADV_WILLNEED };
	bool ro = chance(w, 30);
	int advice = chance(w, 80) ? MADV_DONTNEED : other[below(w, 4)];
	uint64_t a, hi, end = readable_end(f);
	size_t len;
	int ret;

	rand_view_range(w, f, ro, &a, &len);
	w->op = advice == MADV_DONTNEED ? "madvise(MADV_DONTNEED)" : "madvise(other)";
	w->off = a; w->len = len;
	ret = io->madvise(view_at(f, ro, a), len, advice);
	if (!check_ret(w, "pcache_madvise", ret, 0))
		return false;
	/* read part of it back, below the readable end */
	hi = a + (len < 2 * page_size ? len : 2 * page_size);
	if (hi > end)
		hi = end;
	return a >= hi || verify_view(w, f, ro, a, hi);
}

/*
 * mlock: populate a range below the readable end (mm lock for write, the
 * fault logic in this thread), then read it back.  A range reaching a page
 * wholly past EOF is -ENOMEM.
 */
static bool op_mlock(struct worker *w, struct sfile *f)
{
	uint64_t end = readable_end(f), off;
	bool ro = chance(w, 30) && end > f->rview_off;
	uint64_t lo = ro ? f->rview_off : 0;
	size_t n;
	int ret;

	if (end < view_len && (end <= lo || chance(w, 15))) {
		w->op = "mlock reaching past EOF";
		off = lo + below(w, view_len - lo);
		if (off < end)
			n = (size_t)(end - off) + 1 + below(w, view_len - end);
		else
			n = 1 + below(w, view_len - off);
		w->off = off; w->len = n;
		ret = io->mlock(view_at(f, ro, off), n);
		return check_ret(w, "pcache_mlock", ret, -ENOMEM);
	}
	w->op = "mlock (populate)";
	if (end <= lo)
		return true;
	off = rand_off_below(w, lo, end);
	n = 1 + below(w, end - off < 16 * page_size ? end - off : 16 * page_size);
	w->off = off; w->len = n;
	ret = io->mlock(view_at(f, ro, off), n);
	if (!check_ret(w, "pcache_mlock", ret, 0))
		return false;
	return verify_view(w, f, ro, off, off + n);
}

/* Touch a page wholly past EOF: SIGBUS, and nothing changes. */
static bool op_map_sigbus(struct worker *w, struct sfile *f)
{
	uint64_t end = readable_end(f), lo, off;
	bool store = chance(w, 40), ro = !store && chance(w, 30);
	unsigned char *addr;
	size_t n;
	int sig;

	if (end >= view_len)
		return op_map_read(w, f);
	lo = ro && f->rview_off > end ? f->rview_off : end;
	off = align_down(lo + below(w, view_len - lo)) + below(w, page_size);
	n = 1 + below(w, page_size - off % page_size < 64 ?
			 page_size - off % page_size : 64);
	w->op = store ? "store to a page past EOF" : "read of a page past EOF";
	w->off = off; w->len = n;
	addr = view_at(f, ro, off);
	sig = store ? touch_copy(addr, rand_src(w, n), n) : touch_copy(w->vbuf, addr, n);
	if (sig != SIGBUS) {
		mismatch(w, "touching file offset %" PRIu64 " through the view, in a page"
			 " wholly past EOF (size %" PRIu64 "), gave %s%s, not SIGBUS", off,
			 f->size, sig ? "signal " : "no signal", sig ? strsignal(sig) : "");
		return false;
	}
	return verify_range(w, f, off, off + n);
}

/* Unmap the views and map them again (the read-only one maybe elsewhere). */
static bool op_remap(struct worker *w, struct sfile *f)
{
	int ret;

	w->op = "munmap + mmap the views"; w->off = 0; w->len = view_len;
	ret = unmap_views(f);
	if (!check_ret(w, "pcache_munmap", ret, 0))
		return false;
	ret = map_views(f, rand_rview_off(w));
	if (!check_ret(w, "pcache_mmap", ret, 0))
		return false;
	return f->size == 0 || verify_view(w, f, false, align_down(f->size - 1),
					   readable_end(f));
}

/* View calls with arguments the header says must fail, and how. */
static bool op_map_bad_args(struct worker *w, struct sfile *f)
{
	void *p = NULL;
	long long got;
	int prot = PROT_READ;

	w->off = 0; w->len = view_len;
	switch (below(w, 10)) {
	case 0:
		w->op = "mmap at an unaligned offset";
		p = io->mmap(f->fd, page_size, prot, 1 + below(w, page_size - 1));
		got = PCACHE_IS_ERR(p) ? PCACHE_PTR_ERR(p) : 0;
		if (!PCACHE_IS_ERR(p))
			io->munmap(p, page_size);
		return check_ret(w, "pcache_mmap", got, -EINVAL);
	case 1:
		w->op = "mmap of length 0";
		p = io->mmap(f->fd, 0, prot, 0);
		got = PCACHE_IS_ERR(p) ? PCACHE_PTR_ERR(p) : 0;
		return check_ret(w, "pcache_mmap", got, -EINVAL);
	case 2:
		w->op = "mmap PROT_WRITE on an O_RDONLY descriptor";
		p = io->mmap(f->rfd, page_size, PROT_READ | PROT_WRITE, 0);
		got = PCACHE_IS_ERR(p) ? PCACHE_PTR_ERR(p) : 0;
		if (!PCACHE_IS_ERR(p))
			io->munmap(p, page_size);
		return check_ret(w, "pcache_mmap", got, -EACCES);
	case 3:
		w->op = "mmap with PROT_EXEC";
		if (!io->pcache_rules)
			return true;	/* the kernel allows it (but on noexec) */
		p = io->mmap(f->fd, page_size, PROT_READ | PROT_EXEC, 0);
		got = PCACHE_IS_ERR(p) ? PCACHE_PTR_ERR(p) : 0;
		if (!PCACHE_IS_ERR(p))
			io->munmap(p, page_size);
		return check_ret(w, "pcache_mmap", got, -EINVAL);
	case 4:
		w->op = "mmap of a closed descriptor";
		if (f->stale_fd < 0 || !io->pcache_rules)
			return true;	/* the kernel reuses the number */
		p = io->mmap(f->stale_fd, page_size, prot, 0);
		got = PCACHE_IS_ERR(p) ? PCACHE_PTR_ERR(p) : 0;
		if (!PCACHE_IS_ERR(p))
			io->munmap(p, page_size);
		return check_ret(w, "pcache_mmap", got, -EBADF);
	case 5:
		w->op = "munmap of part of a view";
		if (!io->pcache_rules)
			return true;	/* the kernel would do it */
		got = io->munmap(f->view, view_len > page_size ? view_len - page_size :
				    view_len + page_size);
		return check_ret(w, "pcache_munmap", got, -EINVAL);
	case 6:
		w->op = "madvise with an unknown advice";
		got = io->madvise(f->view, page_size, 12345);
		return check_ret(w, "pcache_madvise", got, -EINVAL);
	case 7:
		w->op = "msync with MS_SYNC | MS_ASYNC";
		got = io->msync(f->view, page_size, MS_SYNC | MS_ASYNC);
		return check_ret(w, "pcache_msync", got, -EINVAL);
	case 8:
		w->op = "mlock of memory that is not a view";
		if (!io->pcache_rules)
			return true;	/* the kernel allows it */
		got = io->mlock(w->rbuf, page_size);
		return check_ret(w, "pcache_mlock", got, -ENOMEM);
	default:
		w->op = "close of a descriptor with a live view";
		if (!io->pcache_rules)
			return true;	/* the kernel would close it */
		got = io->close(f->fd);
		return check_ret(w, "pcache_close", got, -EBUSY);
	}
}

/* ---- worker loop ---------------------------------------------------------- */

enum stress_op {
	OP_PWRITE, OP_PWRITEV, OP_PREAD, OP_PREADV, OP_SEEK_WRITE, OP_SEEK_READ,
	OP_TRUNCATE, OP_APPEND, OP_SYNC, OP_FSTAT, OP_REOPEN, OP_FAULT_WRITE,
	OP_BAD_ARGS,
	/* --mmap only */
	OP_MAP_READ, OP_MAP_STORE, OP_MAP_SRC_WRITE, OP_MAP_DST_READ,
	OP_MAP_FAULT_WRITE, OP_MSYNC, OP_MADVISE, OP_MLOCK, OP_MAP_SIGBUS,
	OP_REMAP, OP_MAP_BAD_ARGS, OP_NR
};

/* Relative weights, per mille of the plain mix. */
static const unsigned op_weight[OP_NR] = {
	[OP_PWRITE] = 240, [OP_PWRITEV] = 100, [OP_PREAD] = 200, [OP_PREADV] = 80,
	[OP_SEEK_WRITE] = 60, [OP_SEEK_READ] = 50, [OP_TRUNCATE] = 60,
	[OP_APPEND] = 80, [OP_SYNC] = 20, [OP_FSTAT] = 40, [OP_REOPEN] = 5,
	[OP_FAULT_WRITE] = 15, [OP_BAD_ARGS] = 10,
};

/* Added with --mmap: about a third of all ops touch views. */
static const unsigned mmap_op_weight[OP_NR] = {
	[OP_MAP_READ] = 150, [OP_MAP_STORE] = 140, [OP_MAP_SRC_WRITE] = 60,
	[OP_MAP_DST_READ] = 40, [OP_MAP_FAULT_WRITE] = 10, [OP_MSYNC] = 20,
	[OP_MADVISE] = 25, [OP_MLOCK] = 12, [OP_MAP_SIGBUS] = 6, [OP_REMAP] = 3,
	[OP_MAP_BAD_ARGS] = 5,
};

static unsigned op_weights[OP_NR];	/* this run's: op_weight (+ mmap_op_weight) */
static unsigned op_weight_total;

static void op_weights_init(void)
{
	op_weight_total = 0;
	for (int op = 0; op < OP_NR; op++) {
		op_weights[op] = op_weight[op] + (opts.mmap ? mmap_op_weight[op] : 0);
		op_weight_total += op_weights[op];
	}
}

static enum stress_op pick_op(struct worker *w)
{
	uint64_t r = below(w, op_weight_total);
	int op;

	for (op = 0; op < OP_NR - 1; op++) {
		if (r < op_weights[op])
			break;
		r -= op_weights[op];
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
	case OP_MAP_READ:	return op_map_read(w, f);
	case OP_MAP_STORE:	return op_map_store(w, f);
	case OP_MAP_SRC_WRITE:	return op_map_src_write(w, f);
	case OP_MAP_DST_READ:	return op_map_dst_read(w, f);
	case OP_MAP_FAULT_WRITE: return op_map_fault_write(w, f);
	case OP_MSYNC:		return op_msync(w, f);
	case OP_MADVISE:	return op_madvise(w, f);
	case OP_MLOCK:		return op_mlock(w, f);
	case OP_MAP_SIGBUS:	return op_map_sigbus(w, f);
	case OP_REMAP:		return op_remap(w, f);
	case OP_MAP_BAD_ARGS:	return op_map_bad_args(w, f);
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
"and the exit status is 0 only when M is 0.  With --backend dir, every file\n"
"is then fsynced and its backing file compared with the model, and so is\n"
"every file read back through a fresh cache.\n"
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
"  --backend-arg ARG    backend argument, e.g. a backing directory; with\n"
"                       --backend dir and none, a temporary directory is\n"
"                       made (and removed at the end)\n"
"  --mmap               give each file views (pcache_mmap) and add mapped\n"
"                       reads and stores, writes from views, reads into\n"
"                       views, msync, madvise, mlock and SIGBUS past EOF;\n"
"                       exit status 77 if views are not supported here\n"
"  --fault-around N     pages a view fault installs (default: the library's)\n"
"  --fault-threads N    view fault handler threads (default: the library's)\n"
"  --block-size N       the dir backend's block size: 512, 1024, 2048, 4096\n"
"                       (default: the backend's, 4096); needs --backend dir\n"
"  --mem-limit BYTES    the cache's memory limit, k/m/g allowed (default: the\n"
"                       library's; with --backend dir, half of files x\n"
"                       max size, so that reclaim runs)\n"
"  --keep               --backend dir without --backend-arg: keep the\n"
"                       temporary backing directory (its name is printed)\n"
"  --path DIR           no cache: the same ops with system calls (open, pread,\n"
"                       pwritev, ftruncate, fsync, ...; with --mmap, mmap\n"
"                       MAP_SHARED, msync, madvise, mlock) on files stress-N\n"
"                       in DIR, e.g. a pcache-fuse mount, against the same\n"
"                       model; at the end every file is fsynced, and its\n"
"                       size and POSIX cksum printed; the files stay\n"
"                       there\n"
"  --check-dir DIR2     with --path: after that fsync, compare DIR2's files\n"
"                       (e.g. pcache-fuse's backing directory) with the model\n"
"  --verbose            log every op to stderr\n"
"  --help               this text\n",
		(unsigned long long)STRESS_DEFAULT_OPS, STRESS_MAX_THREADS,
		STRESS_DEFAULT_THREADS, STRESS_MAX_FILES, STRESS_DEFAULT_FILES,
		STRESS_DEFAULT_MAX_SIZE);
}

#define bad_usage(...) usage_error("stress", __VA_ARGS__)

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
	OPT_MMAP, OPT_FAULT_AROUND, OPT_FAULT_THREADS, OPT_BLOCK_SIZE,
	OPT_MEM_LIMIT, OPT_KEEP, OPT_PATH, OPT_CHECK_DIR,
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
	{ "mmap",		no_argument,		NULL, OPT_MMAP },
	{ "fault-around",	required_argument,	NULL, OPT_FAULT_AROUND },
	{ "fault-threads",	required_argument,	NULL, OPT_FAULT_THREADS },
	{ "block-size",		required_argument,	NULL, OPT_BLOCK_SIZE },
	{ "mem-limit",		required_argument,	NULL, OPT_MEM_LIMIT },
	{ "keep",		no_argument,		NULL, OPT_KEEP },
	{ "path",		required_argument,	NULL, OPT_PATH },
	{ "check-dir",		required_argument,	NULL, OPT_CHECK_DIR },
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
			opts.mmap = true;
			break;
		case OPT_FAULT_AROUND:
			if (!parse_u64(optarg, false, &v) || v < 1 || v > 1024)
				return bad_usage("--fault-around: '%s' is not in 1..1024", optarg);
			opts.fault_around = (unsigned)v;
			break;
		case OPT_FAULT_THREADS:
			if (!parse_u64(optarg, false, &v) || v < 1 || v > 16)
				return bad_usage("--fault-threads: '%s' is not in 1..16", optarg);
			opts.fault_threads = (unsigned)v;
			break;
		case OPT_BLOCK_SIZE:
			if (!parse_u64(optarg, false, &v) || v < 512 || v > 4096 ||
			    (v & (v - 1)))
				return bad_usage("--block-size: '%s' is not 512, 1024, 2048"
						 " or 4096", optarg);
			opts.block_size = (unsigned)v;
			break;
		case OPT_MEM_LIMIT:
			if (!parse_u64(optarg, true, &v) || v < STRESS_MIN_MEM_LIMIT ||
			    v > (1ull << 40))
				return bad_usage("--mem-limit: '%s' is not a size in %u..1TiB",
						 optarg, STRESS_MIN_MEM_LIMIT);
			opts.mem_limit = v;
			break;
		case OPT_KEEP:
			opts.keep = true;
			break;
		case OPT_PATH:
			opts.path = optarg;
			break;
		case OPT_CHECK_DIR:
			opts.check_dir = optarg;
			break;
		case ':':
			return bad_usage("option '%s' needs an argument", argv[optind - 1]);
		case '?':
			if (optopt >= OPT_OPS)	/* a no_argument option given '=value' */
				return bad_usage("option '%s' takes no argument",
						 argv[optind - 1]);
			return bad_usage("unknown option '%s'", argv[optind - 1]);
		default:
			return bad_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	if (opts.block_size && !(opts.backend && !strcmp(opts.backend, "dir")))
		return bad_usage("--block-size needs --backend dir");
	if (opts.keep && !(opts.backend && !strcmp(opts.backend, "dir") &&
			   !opts.backend_arg))
		return bad_usage("--keep needs --backend dir without --backend-arg");
	if (opts.path && (opts.backend || opts.backend_arg || opts.strategy_name ||
			  opts.mem_limit || opts.fault_around || opts.fault_threads))
		return bad_usage("--path runs no cache: it takes none of --backend,"
				 " --backend-arg, --strategy, --mem-limit, --fault-around,"
				 " --fault-threads");
	if (opts.check_dir && !opts.path)
		return bad_usage("--check-dir needs --path");
	return -1;
}

/*
 * --mmap: a short deterministic check of a view at EOF before the random
 * run (one file, four pages mapped): the rest of the last page reads as
 * zeroes, pages wholly past EOF raise SIGBUS on load and store (also after
 * a truncate that unmaps mapped pages), mlock stops at EOF, a live view
 * keeps its descriptor busy.  Returns 0, -EOPNOTSUPP when views are not
 * supported here, or -EIO after reporting a mismatch.
 */
static int mmap_selfcheck(struct worker *w)
{
	const char *name = "stress-mmap-check";
	unsigned char *v, *vbuf = w->vbuf, byte = 0x5a;
	size_t pg = page_size, len = 4 * pg;
	struct pcache_stats st0, st1;
	long long got;
	int fd, sig;

	w->op = "mmap self-check"; w->file = -1; w->off = 0; w->len = len;
	if (io->pcache_rules)
		pcache_stats(cache, &st0);
	fd = io->open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (!check_ret(w, "pcache_open", fd < 0 ? fd : 0, 0))
		return -EIO;
	got = io->pwrite(fd, w->pool, 100, 0);
	if (!check_ret(w, "pcache_pwrite", got, 100))
		return -EIO;
	v = io->mmap(fd, len, PROT_READ | PROT_WRITE, 0);
	if (PCACHE_IS_ERR(v)) {
		io->close(fd);
		io->unlink(name);
		if (PCACHE_PTR_ERR(v) == -EOPNOTSUPP)
			return -EOPNOTSUPP;
		check_ret(w, "pcache_mmap", PCACHE_PTR_ERR(v), 0);
		return -EIO;
	}

#define SC_EXPECT(what, got, want) \
	do { if (!check_ret(w, what, (long long)(got), (long long)(want))) return -EIO; } while (0)

	/* 100 bytes, then zeroes to the end of the page */
	sig = touch_copy(vbuf, v, pg);
	SC_EXPECT("reading page 0 of a 100-byte file through a view: signal", sig, 0);
	if (memcmp(vbuf, w->pool, 100) || vbuf[100] || memcmp(vbuf + 100, vbuf + 101, pg - 101)) {
		mismatch(w, "a view of a 100-byte file: page 0 is not the 100 bytes"
			 " followed by zeroes");
		return -EIO;
	}
	SC_EXPECT("reading page 1 of a 100-byte file through a view: signal",
		  touch_copy(vbuf, v + pg, 1), SIGBUS);
	SC_EXPECT("storing to page 3 of a 100-byte file through a view: signal",
		  touch_copy(v + 3 * pg + 5, &byte, 1), SIGBUS);
	SC_EXPECT("pcache_mlock of pages 0-1 of a 100-byte file", io->mlock(v, 2 * pg),
		  -ENOMEM);
	SC_EXPECT("pcache_mlock of page 0 of a 100-byte file", io->mlock(v + 10, 1), 0);

	/* grown: page 1 reads as zeroes, page 2 is still past EOF */
	SC_EXPECT("pcache_ftruncate to a page + 1", io->ftruncate(fd, (off_t)pg + 1), 0);
	sig = touch_copy(vbuf, v + pg, pg);
	SC_EXPECT("reading page 1 after growing the file to cover it: signal", sig, 0);
	if (vbuf[0] || memcmp(vbuf, vbuf + 1, pg - 1)) {
		mismatch(w, "a view of a page of hole: not all zeroes");
		return -EIO;
	}
	SC_EXPECT("reading page 2 of a file of a page + 1: signal",
		  touch_copy(vbuf, v + 2 * pg, 1), SIGBUS);
	SC_EXPECT("storing the last byte below EOF through a view: signal",
		  touch_copy(v + pg, &byte, 1), 0);
	vbuf[0] = 0;
	SC_EXPECT("pcache_pread of a byte stored through a view",
		  io->pread(fd, vbuf, 2, (off_t)pg), 1);
	SC_EXPECT("pcache_pread of a byte stored through a view: the byte", vbuf[0], byte);

	/* shrunk: the mapped page 1 must be unmapped, and fault to SIGBUS */
	SC_EXPECT("pcache_ftruncate to 50", io->ftruncate(fd, 50), 0);
	SC_EXPECT("reading page 1 (mapped before) after truncating to 50: signal",
		  touch_copy(vbuf, v + pg, 1), SIGBUS);
	SC_EXPECT("storing to page 1 after truncating to 50: signal",
		  touch_copy(v + pg, &byte, 1), SIGBUS);
	sig = touch_copy(vbuf, v, pg);
	SC_EXPECT("reading page 0 after truncating to 50: signal", sig, 0);
	if (memcmp(vbuf, w->pool, 50) || vbuf[50] || memcmp(vbuf + 50, vbuf + 51, pg - 51)) {
		mismatch(w, "a view of a file truncated to 50 bytes: page 0 is not the"
			 " 50 bytes followed by zeroes");
		return -EIO;
	}

	if (io->pcache_rules)
		SC_EXPECT("pcache_close of a descriptor with a live view",
			  io->close(fd), -EBUSY);
	SC_EXPECT("pcache_munmap", io->munmap(v, len), 0);
	SC_EXPECT("pcache_close", io->close(fd), 0);
	SC_EXPECT("pcache_unlink", io->unlink(name), 0);
	if (!io->pcache_rules)
		return 0;
	pcache_stats(cache, &st1);
	/*
	 * A page past EOF is poisoned once; touching it again gets the
	 * kernel's SIGBUS without a fault.  5 touches hit 4 distinct pages.
	 */
	if (st1.view_sigbus - st0.view_sigbus < 4) {
		mismatch(w, "pcache_stats: view_sigbus went up by %llu, after 5 touches of 4 pages past EOF",
			 (unsigned long long)(st1.view_sigbus - st0.view_sigbus));
		return -EIO;
	}
#undef SC_EXPECT
	return 0;
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
		if (opts.mmap) {
			ret = map_views(f, (uint64_t)(i % 3) * page_size % view_len);
			if (ret < 0) {
				fprintf(stderr, "pcache stress: pcache_mmap(%s): %s\n",
					f->name, pcache_strerror(ret));
				return ret;
			}
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
		w->op = "final munmap";
		w->off = 0; w->len = f->size;
		ret = unmap_views(f);
		if (!check_ret(w, "pcache_munmap", ret, 0))
			return false;
		w->op = "final close";
		ret = close_fds(f);
		if (!check_ret(w, "pcache_close", ret, 0))
			return false;
		w->op = "final reopen + full compare";
		f->fd = io->open(f->name, O_RDONLY, 0);
		if (!check_ret(w, "pcache_open(O_RDONLY)", f->fd < 0 ? f->fd : 0, 0))
			return false;
		ok = verify_file(w, f);
		ret = io->close(f->fd);
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
		unmap_views(&files[i]);
		close_fds(&files[i]);
		free(files[i].data);
		pthread_mutex_destroy(&files[i].lock);
	}
	free(files);
	files = NULL;
}

/* ---- the dir backend: backing directory and the check against it -------- */

/* --backend dir without --backend-arg: a fresh directory under $TMPDIR. */
static int backing_dir_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	if (opts.backend_arg) {
		snprintf(backing_dir, sizeof(backing_dir), "%s", opts.backend_arg);
		return 0;
	}
	snprintf(backing_dir, sizeof(backing_dir), "%s/pcache-stress.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(backing_dir))
		return -errno;
	backing_dir_ours = true;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	return remove(path) ? -1 : 0;
}

static void backing_dir_remove(void)
{
	if (nftw(backing_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS))
		fprintf(stderr, "pcache stress: removing %s: %s\n", backing_dir,
			strerror(errno));
}

/*
 * Compare @f's backing file, read with plain open/pread (not through
 * pcache), with the model: size and every byte.
 */
static bool check_backing_file(struct worker *w, struct sfile *f)
{
	char path[PATH_MAX + 40];
	uint64_t off = 0;
	struct stat st;
	bool ok = true;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", backing_dir, f->name);
	w->op = "compare the backing file (open/pread)";
	w->off = 0; w->len = f->size;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		mismatch(w, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	if ((uint64_t)st.st_size != f->size) {
		mismatch(w, "%s: st_size %lld after fsync, the model's size is %" PRIu64,
			 path, (long long)st.st_size, f->size);
		ok = false;
	}
	while (ok && off < f->size) {
		size_t n = f->size - off < STRESS_BUF_SIZE ? (size_t)(f->size - off) :
			   STRESS_BUF_SIZE;
		ssize_t got = pread(fd, w->vbuf, n, (off_t)off);

		if (got != (ssize_t)n) {
			mismatch(w, "pread(%s, %zu bytes at %" PRIu64 ") returned %zd (%s)",
				 path, n, off, got, got < 0 ? strerror(errno) : "short");
			ok = false;
			break;
		}
		ok = check_bytes(w, "pread of the backing file", f->data + off,
				 w->vbuf, n, off);
		off += n;
	}
	close(fd);
	return ok;
}

/*
 * The dir backend's end: fsync every file; compare every backing file with
 * the model; then destroy the cache, make a fresh one on the same directory
 * and compare every file read through it.  The descriptors and views are
 * closed already (files_final_check).  Prints what it compared.
 */
static bool backend_check(struct worker *w, const struct pcache_config *cfg)
{
	unsigned long long before = atomic_load(&mismatches), disk_bad, fresh_bad;
	uint64_t bytes = 0;
	bool ok = true;
	int ret;

	for (int i = 0; i < opts.files && ok; i++) {
		struct sfile *f = &files[i];
		int fd;

		w->file = i;
		w->op = "final fsync";
		w->off = 0; w->len = f->size;
		fd = pcache_open(cache, f->name, O_RDONLY, 0);
		if (!check_ret(w, "pcache_open(O_RDONLY)", fd < 0 ? fd : 0, 0))
			return false;
		ret = pcache_fsync(fd);
		ok = check_ret(w, "pcache_fsync", ret, 0);
		ret = pcache_close(fd);
		ok = ok && check_ret(w, "pcache_close", ret, 0);
	}
	for (int i = 0; i < opts.files && ok; i++) {
		w->file = i;
		ok = check_backing_file(w, &files[i]);
		bytes += files[i].size;
	}
	disk_bad = atomic_load(&mismatches) - before;

	if (ok) {
		w->file = -1;
		w->op = "pcache_destroy + pcache_create (a fresh cache)";
		ret = pcache_destroy(cache);
		cache = NULL;
		if (!check_ret(w, "pcache_destroy", ret, 0))
			return false;
		ret = pcache_create(cfg, &cache);
		if (ret)
			cache = NULL;
		if (!check_ret(w, "pcache_create", ret, 0))
			return false;
	}
	for (int i = 0; i < opts.files && ok; i++) {
		struct sfile *f = &files[i];

		w->file = i;
		w->op = "read back through a fresh cache";
		w->off = 0; w->len = f->size;
		f->fd = pcache_open(cache, f->name, O_RDONLY, 0);
		if (!check_ret(w, "pcache_open(O_RDONLY)", f->fd < 0 ? f->fd : 0, 0))
			return false;
		ok = verify_file(w, f);
		ret = pcache_close(f->fd);
		f->fd = -1;
		ok = ok && check_ret(w, "pcache_close", ret, 0);
	}
	fresh_bad = atomic_load(&mismatches) - before - disk_bad;
	printf("stress: backend check: %d file%s, %" PRIu64 " bytes, after fsync:"
	       " backing files %s, a fresh cache %s\n",
	       opts.files, opts.files == 1 ? "" : "s", bytes,
	       disk_bad ? "MISMATCH" : "match the model",
	       !ok && !fresh_bad && !disk_bad ? "not compared" :
	       disk_bad ? "not compared" : fresh_bad ? "MISMATCH" : "matches the model");
	return ok;
}

/* ---- --path: the end ------------------------------------------------------ */

/* POSIX cksum (CRC-32, polynomial 0x04c11db7, then the length): cksum(1)'s. */
static uint32_t posix_cksum(const unsigned char *p, uint64_t n)
{
	static uint32_t table[256];
	uint32_t crc = 0;

	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i << 24;

			for (int k = 0; k < 8; k++)
				c = c & 0x80000000u ? (c << 1) ^ 0x04c11db7u : c << 1;
			table[i] = c;
		}
	}
	for (uint64_t i = 0; i < n; i++)
		crc = (crc << 8) ^ table[(crc >> 24) ^ p[i]];
	for (; n; n >>= 8)
		crc = (crc << 8) ^ table[(crc >> 24) ^ (n & 0xff)];
	return ~crc;
}

/*
 * --path's end, after files_final_check: fsync every file (on a pcache-fuse
 * mount, that writes pcache's dirty pages to the backing files); with
 * --check-dir, compare the files there with the model (plain open/pread);
 * print each file's size and cksum, for checks after the run (e.g. of the
 * backing files after unmount).
 */
static bool path_check(struct worker *w)
{
	uint64_t bytes = 0;
	bool ok = true;
	int fd, ret;

	for (int i = 0; i < opts.files && ok; i++) {
		struct sfile *f = &files[i];

		w->file = i;
		w->op = "final fsync";
		w->off = 0; w->len = f->size;
		fd = io->open(f->name, O_RDONLY, 0);
		if (!check_ret(w, "open(O_RDONLY)", fd < 0 ? fd : 0, 0))
			return false;
		ok = check_ret(w, "fsync", io->fsync(fd), 0);
		ret = io->close(fd);
		ok = ok && check_ret(w, "close", ret, 0);
	}
	if (ok && opts.check_dir) {
		snprintf(backing_dir, sizeof(backing_dir), "%s", opts.check_dir);
		for (int i = 0; i < opts.files && ok; i++) {
			w->file = i;
			ok = check_backing_file(w, &files[i]);
			bytes += files[i].size;
		}
		printf("stress: check dir: %d file%s, %" PRIu64 " bytes, after fsync:"
		       " the files in %s %s\n", opts.files, opts.files == 1 ? "" : "s",
		       bytes, opts.check_dir, ok ? "match the model" : "MISMATCH");
	}
	for (int i = 0; i < opts.files && ok; i++)
		printf("stress: file %s: %" PRIu64 " bytes, cksum %" PRIu32 "\n",
		       files[i].name, files[i].size,
		       posix_cksum(files[i].data, files[i].size));
	return ok;
}

int cmd_stress(int argc, char **argv)
{
	struct worker workers[STRESS_MAX_THREADS];
	struct pcache_config cfg;
	struct pcache_stats st;
	bool seed_given, setup_ok = false, skipped = false;
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
	view_len = align_up(model_cap);
	op_weights_init();
	atomic_store(&ops_done, 0);
	atomic_store(&mismatches, 0);
	atomic_store(&early_fault_writes, 0);
	atomic_store(&stop_run, 0);

	pcache_config_init(&cfg);
	if (opts.strategy >= 0)
		cfg.write_strategy = opts.strategy;
	if (opts.backend)
		cfg.backend = opts.backend;
	if (opts.backend_arg)
		cfg.backend_arg = opts.backend_arg;
	cfg.fault_around_pages = opts.fault_around;
	cfg.fault_threads = opts.fault_threads;
	cfg.block_size = opts.block_size;
	dir_backend = opts.backend && !strcmp(opts.backend, "dir");
	backing_dir_ours = false;
	if (opts.mem_limit)
		cfg.mem_limit = opts.mem_limit;
	else if (dir_backend)	/* half the data: reclaim must run */
		cfg.mem_limit = (uint64_t)opts.files * opts.max_size / 2;
	cfg.mem_limit &= ~(uint64_t)(page_size - 1);
	if (cfg.mem_limit < STRESS_MIN_MEM_LIMIT)
		cfg.mem_limit = STRESS_MIN_MEM_LIMIT;
	mem_limit = cfg.mem_limit;
	io = opts.path ? &sys_io : &pcache_io;

	if (opts.path)
		printf("stress: seed %" PRIu64 ", %" PRIu64 " ops, %d thread%s, %d file%s,"
		       " max size %" PRIu64 ", system calls on files in %s%s\n",
		       opts.seed, opts.ops, opts.threads, opts.threads == 1 ? "" : "s",
		       opts.files, opts.files == 1 ? "" : "s", opts.max_size,
		       opts.path, opts.mmap ? ", mmap" : "");
	else
		printf("stress: seed %" PRIu64 ", %" PRIu64 " ops, %d thread%s, %d file%s,"
		       " max size %" PRIu64 ", strategy %s, backend %s%s\n",
		       opts.seed, opts.ops, opts.threads, opts.threads == 1 ? "" : "s",
		       opts.files, opts.files == 1 ? "" : "s", opts.max_size,
		       pcache_strategy_name(cfg.write_strategy) ?
		       pcache_strategy_name(cfg.write_strategy) : "?",
		       cfg.backend ? cfg.backend : "memory", opts.mmap ? ", views" : "");
	if (dir_backend) {
		ret = backing_dir_setup();
		if (ret) {
			fprintf(stderr, "pcache stress: mkdtemp: %s\n", strerror(-ret));
			goto out;
		}
		cfg.backend_arg = backing_dir;
		printf("stress: dir backend in %s%s, block size %u, mem limit %" PRIu64
		       " KiB\n", backing_dir, backing_dir_ours ? " (temporary)" : "",
		       opts.block_size ? opts.block_size : 4096,
		       cfg.mem_limit >> 10);
	}
	fflush(stdout);

	/* before pcache_create: the library's fault guard chains to it */
	if (opts.mmap && (ret = touch_install()) < 0) {
		fprintf(stderr, "pcache stress: sigaction: %s\n", strerror(-ret));
		goto out;
	}

	if (opts.path) {
		path_dirfd = open(opts.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (path_dirfd < 0) {
			fprintf(stderr, "pcache stress: --path %s: %s\n", opts.path,
				strerror(errno));
			goto out;
		}
	} else if ((ret = pcache_create(&cfg, &cache))) {
		fprintf(stderr, "pcache stress: pcache_create: %s%s\n", pcache_strerror(ret),
			ret == -EOPNOTSUPP ? " (this write strategy is not built yet)" : "");
		cache = NULL;
		goto out;
	}
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
	if (opts.mmap) {
		ret = mmap_selfcheck(&workers[0]);
		if (ret == -EOPNOTSUPP) {
			fprintf(stderr, "pcache stress: --mmap: views are not supported here"
				" (pcache_mmap: %s: this kernel's userfaultfd lacks"
				" MINOR/WP faults on shared memory, or /dev/userfaultfd"
				" is not usable)\n", pcache_strerror(ret));
			skipped = true;
			goto out_free_workers;
		}
		if (ret)
			goto out_free_workers;
		printf("stress: view self-check at EOF passed\n");
		fflush(stdout);
	}
	ret = files_init();
	if (ret)
		goto out_free_workers;
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

	done = atomic_load(&ops_done);
	printf("stress: %" PRIu64 " ops in %.2f s (%.0f ops/s)\n", done, elapsed,
	       elapsed > 0 ? done / elapsed : 0.0);

	/*
	 * The end: one more full compare, then everything through close +
	 * reopen; with the dir backend, the backing files and a fresh cache.
	 */
	if (!atomic_load(&stop_run)) {
		struct worker *w = &workers[0];
		bool ok, have_st;

		w->opno = w->done;
		ok = verify_all(w) && files_final_check(w);
		have_st = cache && pcache_stats(cache, &st) == 0;
		if (have_st && opts.mmap)
			printf("stress: views: %llu faults (+%llu pages around them), %llu wp faults,"
			       " %llu pages populated, %llu SIGBUS\n",
			       (unsigned long long)st.view_faults,
			       (unsigned long long)st.view_fault_around,
			       (unsigned long long)st.view_wp_faults,
			       (unsigned long long)st.view_populated,
			       (unsigned long long)st.view_sigbus);
		if (have_st && dir_backend)
			printf("stress: memory: %llu pages reclaimed, %llu reclaim waits,"
			       " %llu throttle waits, %llu pages written back,"
			       " %llu flusher runs\n",
			       (unsigned long long)st.pages_reclaimed,
			       (unsigned long long)st.reclaim_waits,
			       (unsigned long long)st.throttle_waits,
			       (unsigned long long)st.writeback_pages,
			       (unsigned long long)st.flusher_runs);
		if (ok && dir_backend)
			backend_check(w, &cfg);
		if (opts.path)
			printf("stress: %llu faulting writes stopped before the bad address"
			       " (short, or EFAULT with bytes readable)\n",
			       (unsigned long long)atomic_load(&early_fault_writes));
		if (ok && opts.path)
			path_check(w);
	}

out_free_workers:
	files_free();
	for (int i = 0; i < nworkers; i++)
		worker_free(&workers[i]);
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
	if (path_dirfd >= 0) {
		close(path_dirfd);
		path_dirfd = -1;
	}
	if (backing_dir_ours) {
		if (opts.keep || atomic_load(&mismatches))
			printf("stress: kept the backing directory %s\n", backing_dir);
		else
			backing_dir_remove();
	}
	printf("ops %llu, mismatches %llu, seed %" PRIu64 "\n",
	       (unsigned long long)atomic_load(&ops_done),
	       (unsigned long long)atomic_load(&mismatches), opts.seed);
	fflush(stdout);
	if (skipped)
		return 77;
	return setup_ok && atomic_load(&mismatches) == 0 ? 0 : 1;
}
