/*
 * crash.c - `pcache crash`: is every fsynced byte in the backing file after
 * the process dies?
 *
 * Each iteration:
 *  1. The parent draws a random sequence of operations on a few files of the
 *     dir backend (pwrite, pwritev, writes on O_SYNC and O_DSYNC descriptors,
 *     ftruncate, stores through a writable view, fsync, fdatasync,
 *     msync(MS_SYNC) of part of a view) from the iteration's seed, into
 *     memory shared with the child (MAP_SHARED | MAP_ANONYMOUS), and a kill
 *     point.  The bytes op i writes at offset p are crash_byte(i, p): the
 *     parent needs no copy of them.
 *  2. It forks.  The child makes its own cache (a small memory limit, a
 *     short dirty expiry: the flusher and reclaim write back on their own
 *     all the time), opens the files and runs the ops in order, storing
 *     "op i started" before and "op i done" after each in the shared log.
 *     The parent never makes a cache, so it forks single-threaded (TSan).
 *  3. When the child has started the kill-point op - at once, or after a
 *     random spin, so the kill lands inside it - the parent SIGKILLs it.
 *  4. The parent replays the ops against a model and reads every backing
 *     file with plain open/pread.  For each byte p, let A be the last
 *     completed op that made p durable (fsync/fdatasync of its file, an
 *     msync(MS_SYNC) range holding p, an O_SYNC/O_DSYNC write covering p;
 *     or the file's creation).  The byte must be the model's value at A, or
 *     a value some op started after A put at p: a write covering p (its
 *     byte), a truncate to at most p (zero).  Bytes no op touched after A
 *     must therefore be exactly what A made durable.  Past the end of the
 *     backing file a byte reads as zero.  The size: after the last
 *     completed fsync, fdatasync, msync or O_SYNC write, the backing file's
 *     size must lie between the smallest size a later op could have given
 *     it (the synced size, or a later truncate's) and the largest (the
 *     synced size, or a later write's end or truncate's).
 *
 * Iteration k runs with seed S + k, so `pcache crash --seed S+k
 * --iterations 1` replays its op sequence (the kill point too; where in
 * that op the kill lands, and what the flusher had written by then, are
 * timing).  Only include/pcache.h is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "commands.h"

#define CRASH_DEFAULT_ITERATIONS 100
#define CRASH_DEFAULT_OPS	200
#define CRASH_MAX_OPS		100000
#define CRASH_DEFAULT_FILES	3
#define CRASH_MAX_FILES		16
#define CRASH_DEFAULT_MAX_SIZE	(256u << 10)
#define CRASH_MAX_MAX_SIZE	(16u << 20)
#define CRASH_MAX_IO		(128u << 10)	/* largest write */
#define CRASH_TIMEOUT_S		120		/* an iteration's child, at most */
#define CRASH_PAGE		4096u

enum crash_op_type {
	C_PWRITE, C_PWRITEV, C_OSYNC_WRITE, C_ODSYNC_WRITE, C_TRUNCATE,
	C_VIEW_STORE, C_FSYNC, C_FDATASYNC, C_MSYNC,
};

static const char *const op_names[] = {
	[C_PWRITE] = "pwrite", [C_PWRITEV] = "pwritev",
	[C_OSYNC_WRITE] = "pwrite(O_SYNC)", [C_ODSYNC_WRITE] = "pwrite(O_DSYNC)",
	[C_TRUNCATE] = "ftruncate", [C_VIEW_STORE] = "store through the view",
	[C_FSYNC] = "fsync", [C_FDATASYNC] = "fdatasync",
	[C_MSYNC] = "msync(MS_SYNC)",
};

struct crash_op {
	uint8_t type;
	uint8_t file;
	uint64_t off;		/* write/store: offset; truncate: new size; msync: start */
	uint64_t len;		/* write/store/msync: length */
};

/*
 * The shared log.  The child stores started = i + 1 before op i and
 * done = i + 1 after it (release); the parent reads them (acquire) and,
 * once the child is dead, they are final.
 */
struct crash_log {
	uint64_t started;
	uint64_t done;
	int child_failed;	/* the child stopped on an unexpected result */
	int no_views;		/* views not supported: stores became pwrites */
	char msg[512];
	struct crash_op ops[];
};

struct crash_opts {
	uint64_t seed;
	unsigned iterations;
	unsigned ops;
	unsigned files;
	uint64_t max_size;
	unsigned block_size;	/* 0: a random one per iteration */
	const char *dir;	/* parent of the iteration directories */
	bool keep;
	bool verbose;
	bool list_ops;		/* print each iteration's setup and ops, run nothing */
};

/* One iteration's setup, drawn from its seed. */
struct crash_iter {
	uint64_t seed;
	unsigned block_size;
	uint64_t mem_limit;
	unsigned dirty_expire_ms, writeback_interval_ms;
	int perform_write;
	unsigned kill_op;	/* kill once op kill_op - 1 has started ... */
	unsigned spin_us;	/* ... and this much later (0: at once) */
	char dir[PATH_MAX];
};

static struct crash_opts opts;
static uint64_t cap;		/* bytes per file, a multiple of the page size */

/* ---- PRNG and the bytes -------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t *rng, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)splitmix64(rng) * n) >> 64);
}

/* The byte op @i writes at file offset @p: never 0, so a hole shows. */
static unsigned char crash_byte(unsigned i, uint64_t p)
{
	uint64_t x = p * 0x9e3779b97f4a7c15ull + (i + 1) * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 29;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 32;
	return (unsigned char)(x | 1);
}

static void crash_fill(unsigned char *buf, unsigned i, uint64_t off, size_t len)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = crash_byte(i, off + k);
}

static bool op_writes(const struct crash_op *op)
{
	return op->type <= C_ODSYNC_WRITE || op->type == C_VIEW_STORE;
}

/* ---- drawing an iteration ------------------------------------------------ */

static uint64_t rand_len(uint64_t *rng)
{
	uint64_t r = below(rng, 100);

	if (r < 40)
		return 1 + below(rng, 512);
	if (r < 70)
		return 1 + below(rng, 8192);
	return 1 + below(rng, CRASH_MAX_IO);
}

static void draw_ops(uint64_t *rng, struct crash_op *ops, unsigned n)
{
	uint64_t size[CRASH_MAX_FILES] = { 0 };

	for (unsigned i = 0; i < n; i++) {
		struct crash_op *op = &ops[i];
		uint64_t r = below(rng, 100), f = below(rng, opts.files), off, len;

		op->file = (uint8_t)f;
		if (r < 30)
			op->type = C_PWRITE;
		else if (r < 40)
			op->type = C_PWRITEV;
		else if (r < 45)
			op->type = C_OSYNC_WRITE;
		else if (r < 50)
			op->type = C_ODSYNC_WRITE;
		else if (r < 60)
			op->type = C_TRUNCATE;
		else if (r < 75)
			op->type = C_VIEW_STORE;
		else if (r < 85)
			op->type = C_FSYNC;
		else if (r < 92)
			op->type = C_FDATASYNC;
		else
			op->type = C_MSYNC;

		switch (op->type) {
		case C_TRUNCATE:
			r = below(rng, 100);
			if (r < 10)
				len = 0;
			else if (r < 55)
				len = below(rng, size[f] + 1);
			else if (r < 80)
				len = size[f] + below(rng, 3 * CRASH_PAGE);
			else
				len = below(rng, cap + 1);
			op->off = len < cap ? len : cap;
			op->len = 0;
			size[f] = op->off;
			break;
		case C_VIEW_STORE:
			if (!size[f]) {		/* nothing to store to: write */
				op->type = C_PWRITE;
				goto write;
			}
			off = below(rng, size[f]);
			len = rand_len(rng);
			op->off = off;
			op->len = len < size[f] - off ? len : size[f] - off;
			break;
		case C_MSYNC:
			off = below(rng, cap / CRASH_PAGE) * CRASH_PAGE;
			len = (1 + below(rng, 16)) * CRASH_PAGE;
			op->off = off;
			op->len = len < cap - off ? len : cap - off;
			break;
		case C_FSYNC:
		case C_FDATASYNC:
			op->off = op->len = 0;
			break;
		default:
write:
			r = below(rng, 100);
			if (r < 50)
				off = below(rng, size[f] + 1);
			else if (r < 75)
				off = size[f] + below(rng, 3 * CRASH_PAGE);
			else
				off = below(rng, cap);
			if (off >= cap)
				off = cap - 1;
			len = rand_len(rng);
			op->off = off;
			op->len = len < cap - off ? len : cap - off;
			if (off + op->len > size[f])
				size[f] = off + op->len;
			break;
		}
	}
}

static void draw_iter(struct crash_iter *it, uint64_t seed, uint64_t *rng)
{
	static const unsigned bs[] = { 512, 1024, 2048, 4096 };
	static const uint64_t limits[] = { 256u << 10, 1u << 20, 64u << 20 };

	*rng = seed;
	it->seed = seed;
	it->block_size = bs[below(rng, 4)];	/* drawn always: same ops either way */
	if (opts.block_size)
		it->block_size = opts.block_size;
	it->mem_limit = limits[below(rng, 3)];
	it->dirty_expire_ms = 1 + (unsigned)below(rng, 100);
	it->writeback_interval_ms = 1 + (unsigned)below(rng, 20);
	it->perform_write = (int)below(rng, 2);
	it->kill_op = 1 + (unsigned)below(rng, opts.ops);
	it->spin_us = below(rng, 2) ? (unsigned)below(rng, 2000) : 0;
}

/* ---- the child ------------------------------------------------------------ */

static void child_fail(struct crash_log *log, unsigned i, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(log->msg, sizeof(log->msg), "op %u (%s): ", i,
		     i < opts.ops ? op_names[log->ops[i].type] : "setup");
	va_start(ap, fmt);
	vsnprintf(log->msg + n, sizeof(log->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	__atomic_store_n(&log->child_failed, 1, __ATOMIC_RELEASE);
	_exit(1);
}

/* Run the ops; never returns (waits to be killed, or _exits on a failure). */
static void child_main(struct crash_log *log, const struct crash_iter *it)
{
	struct pcache_config cfg;
	struct pcache *pc;
	int fd[CRASH_MAX_FILES], sfd[CRASH_MAX_FILES], dfd[CRASH_MAX_FILES];
	unsigned char *view[CRASH_MAX_FILES] = { NULL };
	unsigned char *buf = malloc(CRASH_MAX_IO);
	int ret;

	if (!buf)
		child_fail(log, opts.ops, "malloc");
	pcache_config_init(&cfg);
	cfg.backend = "dir";
	cfg.backend_arg = it->dir;
	cfg.block_size = it->block_size;
	cfg.mem_limit = it->mem_limit;
	cfg.dirty_expire_ms = it->dirty_expire_ms;
	cfg.writeback_interval_ms = it->writeback_interval_ms;
	cfg.perform_write = it->perform_write;
	ret = pcache_create(&cfg, &pc);
	if (ret)
		child_fail(log, opts.ops, "pcache_create: %s", pcache_strerror(ret));
	for (unsigned f = 0; f < opts.files; f++) {
		char name[32];

		snprintf(name, sizeof(name), "crash-%u", f);
		fd[f] = pcache_open(pc, name, O_RDWR | O_CREAT | O_TRUNC, 0644);
		sfd[f] = pcache_open(pc, name, O_WRONLY | O_SYNC, 0);
		dfd[f] = pcache_open(pc, name, O_WRONLY | O_DSYNC, 0);
		if (fd[f] < 0 || sfd[f] < 0 || dfd[f] < 0)
			child_fail(log, opts.ops, "pcache_open(%s): %s", name,
				   pcache_strerror(fd[f] < 0 ? fd[f] : sfd[f] < 0 ? sfd[f] : dfd[f]));
		if (log->no_views)
			continue;
		view[f] = pcache_mmap(fd[f], cap, PROT_READ | PROT_WRITE, 0);
		if (PCACHE_IS_ERR(view[f])) {
			if (PCACHE_PTR_ERR(view[f]) != -EOPNOTSUPP)
				child_fail(log, opts.ops, "pcache_mmap: %s",
					   pcache_strerror(PCACHE_PTR_ERR(view[f])));
			view[f] = NULL;
			log->no_views = 1;
		}
	}

	for (unsigned i = 0; i < opts.ops; i++) {
		const struct crash_op *op = &log->ops[i];
		unsigned f = op->file;
		size_t len = (size_t)op->len;
		ssize_t got = 0;
		bool store_by_write = op->type == C_VIEW_STORE && !view[f];

		__atomic_store_n(&log->started, i + 1, __ATOMIC_RELEASE);
		if (op_writes(op) && op->type != C_VIEW_STORE)
			crash_fill(buf, i, op->off, len);
		switch (op->type) {
		case C_PWRITE:
		case C_OSYNC_WRITE:
		case C_ODSYNC_WRITE:
			got = pcache_pwrite(op->type == C_PWRITE ? fd[f] :
					    op->type == C_OSYNC_WRITE ? sfd[f] : dfd[f],
					    buf, len, (off_t)op->off);
			if (got != (ssize_t)len)
				child_fail(log, i, "returned %zd (%s), want %zu", got,
					   got < 0 ? pcache_strerror((int)got) : "short", len);
			break;
		case C_PWRITEV: {
			struct iovec iov[3] = {
				{ buf, len / 3 }, { buf + len / 3, len / 3 },
				{ buf + 2 * (len / 3), len - 2 * (len / 3) },
			};

			got = pcache_pwritev(fd[f], iov, 3, (off_t)op->off);
			if (got != (ssize_t)len)
				child_fail(log, i, "returned %zd (%s), want %zu", got,
					   got < 0 ? pcache_strerror((int)got) : "short", len);
			break;
		}
		case C_TRUNCATE:
			ret = pcache_ftruncate(fd[f], (off_t)op->off);
			if (ret)
				child_fail(log, i, "%s", pcache_strerror(ret));
			break;
		case C_VIEW_STORE:
			if (store_by_write) {
				crash_fill(buf, i, op->off, len);
				got = pcache_pwrite(fd[f], buf, len, (off_t)op->off);
				if (got != (ssize_t)len)
					child_fail(log, i, "(as pwrite) returned %zd", got);
				break;
			}
			/* Byte by byte from the pattern: the store is the copy. */
			for (size_t k = 0; k < len; k++)
				view[f][op->off + k] = crash_byte(i, op->off + k);
			break;
		case C_FSYNC:
		case C_FDATASYNC:
			ret = op->type == C_FSYNC ? pcache_fsync(fd[f]) : pcache_fdatasync(fd[f]);
			if (ret)
				child_fail(log, i, "%s", pcache_strerror(ret));
			break;
		case C_MSYNC:
			ret = view[f] ? pcache_msync(view[f] + op->off, len, MS_SYNC) :
				pcache_fsync(fd[f]);
			if (ret)
				child_fail(log, i, "%s", pcache_strerror(ret));
			break;
		}
		__atomic_store_n(&log->done, i + 1, __ATOMIC_RELEASE);
	}
	/* All done: the kill comes all the same (nothing more is synced). */
	for (;;)
		pause();
}

/* ---- the parent's check ---------------------------------------------------- */

struct file_check {
	unsigned char *cur;	/* the model now */
	uint64_t size;
	unsigned char *ack;	/* the model's byte when it was last made durable */
	int32_t *ack_op;	/* the op that did it, -1: creation */
	uint64_t ack_size;	/* the size at the last size-durable op */
	int32_t ack_size_op;
	unsigned char *disk;	/* the backing file, zeroes past its end */
	uint64_t disk_size;
};

static void make_durable(struct file_check *fc, uint64_t lo, uint64_t hi, int32_t i)
{
	if (hi > cap)
		hi = cap;
	for (uint64_t p = lo; p < hi; p++) {
		fc->ack[p] = fc->cur[p];
		fc->ack_op[p] = i;
	}
}

/* Apply op @i to the model of its file. */
static void model_apply(struct file_check *fc, const struct crash_op *op, unsigned i)
{
	if (op->type == C_TRUNCATE) {
		if (op->off < fc->size)
			memset(fc->cur + op->off, 0, fc->size - op->off);
		fc->size = op->off;
	} else if (op_writes(op)) {
		crash_fill(fc->cur + op->off, i, op->off, (size_t)op->len);
		if (op->off + op->len > fc->size)
			fc->size = op->off + op->len;
	}
}

/* Can op @j (started after the byte was made durable) have put @v at @p? */
static bool op_may_put(const struct crash_op *op, unsigned j, uint64_t p,
		       unsigned char v, uint64_t size_before)
{
	if (op->type == C_TRUNCATE)
		return v == 0 && p >= (op->off < size_before ? op->off : size_before);
	if (op_writes(op))
		return p >= op->off && p < op->off + op->len && v == crash_byte(j, p);
	return false;
}

static int read_backing(const char *dir, unsigned f, struct file_check *fc, char *err,
			size_t errlen)
{
	char path[PATH_MAX + 32];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/crash-%u", dir, f);
	memset(fc->disk, 0, cap);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fc->disk_size = (uint64_t)st.st_size;
	for (uint64_t off = 0; off < cap && off < fc->disk_size;) {
		ssize_t n = pread(fd, fc->disk + off, cap - off, (off_t)off);

		if (n <= 0)
			break;
		off += (uint64_t)n;
	}
	close(fd);
	return 0;
}

struct iter_result {
	uint64_t bytes_durable;	/* bytes some completed op made durable */
	uint64_t bytes_untouched;	/* of which no later op touched: exact */
	unsigned long mismatches;
};

/*
 * Replay the ops the child started against the model; compare every
 * backing file.  Reports each bad file (first byte, counts); returns the
 * figures in @res.
 */
static void check_iteration(const struct crash_iter *it, const struct crash_log *log,
			    struct file_check *fcs, struct iter_result *res)
{
	uint64_t started = log->started, done = log->done;
	/* per file, over the ops after its last size-durable op */
	uint64_t size_lo[CRASH_MAX_FILES], size_hi[CRASH_MAX_FILES];
	uint64_t *size_before = calloc(started ? started : 1, sizeof(*size_before));

	memset(res, 0, sizeof(*res));
	for (unsigned f = 0; f < opts.files; f++) {
		struct file_check *fc = &fcs[f];

		memset(fc->cur, 0, cap);
		memset(fc->ack, 0, cap);
		for (uint64_t p = 0; p < cap; p++)
			fc->ack_op[p] = -1;
		fc->size = fc->ack_size = 0;
		fc->ack_size_op = -1;
	}
	for (unsigned i = 0; i < started; i++) {
		const struct crash_op *op = &log->ops[i];
		struct file_check *fc = &fcs[op->file];
		bool completed = i < done;

		size_before[i] = fc->size;
		model_apply(fc, op, i);
		if (!completed)
			continue;
		switch (op->type) {
		case C_FSYNC:
		case C_FDATASYNC:
			make_durable(fc, 0, cap, (int32_t)i);
			fc->ack_size = fc->size;
			fc->ack_size_op = (int32_t)i;
			break;
		case C_MSYNC:
			make_durable(fc, op->off, op->off + op->len, (int32_t)i);
			fc->ack_size = fc->size;
			fc->ack_size_op = (int32_t)i;
			break;
		case C_OSYNC_WRITE:
			make_durable(fc, op->off, op->off + op->len, (int32_t)i);
			fc->ack_size = fc->size;
			fc->ack_size_op = (int32_t)i;
			break;
		case C_ODSYNC_WRITE:
			make_durable(fc, op->off, op->off + op->len, (int32_t)i);
			break;
		default:
			break;
		}
	}
	for (unsigned f = 0; f < opts.files; f++) {
		size_lo[f] = size_hi[f] = fcs[f].ack_size;
	}
	for (unsigned i = 0; i < started; i++) {
		const struct crash_op *op = &log->ops[i];
		unsigned f = op->file;

		if ((int32_t)i <= fcs[f].ack_size_op)
			continue;
		if (op->type == C_TRUNCATE) {
			size_lo[f] = op->off < size_lo[f] ? op->off : size_lo[f];
			size_hi[f] = op->off > size_hi[f] ? op->off : size_hi[f];
		} else if (op_writes(op) && op->off + op->len > size_hi[f]) {
			size_hi[f] = op->off + op->len;
		}
	}

	for (unsigned f = 0; f < opts.files; f++) {
		struct file_check *fc = &fcs[f];
		unsigned long bad = 0;
		uint64_t first_bad = 0;
		char err[PATH_MAX + 64];

		if (read_backing(it->dir, f, fc, err, sizeof(err))) {
			printf("crash:   MISMATCH: %s\n", err);
			res->mismatches++;
			continue;
		}
		if (fc->disk_size < size_lo[f] || fc->disk_size > size_hi[f]) {
			printf("crash:   MISMATCH: file crash-%u: backing file size %" PRIu64
			       ", want %" PRIu64 "..%" PRIu64 " (durable size %" PRIu64
			       " from op %d)\n", f, fc->disk_size, size_lo[f], size_hi[f],
			       fc->ack_size, fc->ack_size_op);
			res->mismatches++;
		}
		for (uint64_t p = 0; p < cap; p++) {
			unsigned char v = fc->disk[p];
			bool ok = v == fc->ack[p], touched = false;
			int32_t a = fc->ack_op[p];

			for (unsigned j = (unsigned)(a + 1); j < started && !ok; j++) {
				const struct crash_op *op = &log->ops[j];

				if (op->file != f)
					continue;
				ok = op_may_put(op, j, p, v, size_before[j]);
			}
			if (a >= 0) {
				res->bytes_durable++;
				for (unsigned j = (unsigned)(a + 1); j < started && !touched; j++) {
					const struct crash_op *op = &log->ops[j];

					touched = op->file == f &&
						  (op_may_put(op, j, p, 0, size_before[j]) ||
						   (op_writes(op) && p >= op->off &&
						    p < op->off + op->len));
				}
				res->bytes_untouched += !touched;
			}
			if (!ok) {
				if (!bad)
					first_bad = p;
				bad++;
			}
		}
		if (bad) {
			uint64_t p = first_bad;
			int wrote = -1;

			/* Whose byte is it?  (An op before the durable one: stale.) */
			for (unsigned j = 0; j < started; j++) {
				const struct crash_op *op = &log->ops[j];

				if (op->file == f && op_writes(op) && p >= op->off &&
				    p < op->off + op->len && fc->disk[p] == crash_byte(j, p))
					wrote = (int)j;
			}

			printf("crash:   MISMATCH: file crash-%u: %lu bytes hold a value no op"
			       " could have left there; the first at offset %" PRIu64
			       ": 0x%02x in the backing file (size %" PRIu64 "), durable value"
			       " 0x%02x from op %d (model size %" PRIu64 " now)\n",
			       f, bad, p, fc->disk[p], fc->disk_size, fc->ack[p],
			       fc->ack_op[p], fc->size);
			if (wrote >= 0)
				printf("crash:   that byte is what op %d (%s of %" PRIu64 " bytes at %"
				       PRIu64 ") wrote there\n", wrote, op_names[log->ops[wrote].type],
				       log->ops[wrote].len, log->ops[wrote].off);
			if (opts.verbose)
				for (unsigned j = 0; j < started; j++)
					if (log->ops[j].file == f)
						printf("crash:     op %u: %s off %" PRIu64 " len %"
						       PRIu64 "%s\n", j, op_names[log->ops[j].type],
						       log->ops[j].off, log->ops[j].len,
						       j < log->done ? "" : " (not done)");
			res->mismatches++;
		}
	}
	free(size_before);
}

/* ---- driving an iteration -------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	return remove(path) ? -1 : 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void spin_us(unsigned us)
{
	double end = now() + us / 1e6;

	while (now() < end)
		;
}

/* One iteration: returns its mismatches, or -1 if it could not be run. */
static long run_iteration(unsigned k, struct crash_log *log, size_t log_size,
			  struct file_check *fcs, struct iter_result *res)
{
	struct crash_iter it;
	uint64_t rng;
	pid_t pid;
	int status;
	double deadline;
	bool killed_mid_op;

	draw_iter(&it, opts.seed + k, &rng);
	memset(log, 0, log_size);
	draw_ops(&rng, log->ops, opts.ops);
	snprintf(it.dir, sizeof(it.dir), "%s/crash-%" PRIu64 ".XXXXXX", opts.dir, it.seed);
	if (!mkdtemp(it.dir)) {
		fprintf(stderr, "pcache crash: mkdtemp(%s): %s\n", it.dir, strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "pcache crash: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0)
		child_main(log, &it);

	/* Wait for the kill point (or for the child to stop by itself). */
	deadline = now() + CRASH_TIMEOUT_S;
	while (__atomic_load_n(&log->started, __ATOMIC_ACQUIRE) < it.kill_op) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			goto reaped;
		if (now() > deadline) {
			fprintf(stderr, "pcache crash: seed %" PRIu64 ": the child has run"
				" only %" PRIu64 " ops in %d s\n", it.seed,
				__atomic_load_n(&log->started, __ATOMIC_ACQUIRE), CRASH_TIMEOUT_S);
			break;
		}
		sched_yield();
	}
	if (it.spin_us)
		spin_us(it.spin_us);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
reaped:
	if (log->child_failed || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
		printf("crash: iteration %u, seed %" PRIu64 ": FAIL: the child %s%s\n", k,
		       it.seed, log->child_failed ? "stopped: " : "died unexpectedly",
		       log->child_failed ? log->msg : "");
		if (!log->child_failed)
			printf("crash:   wait status 0x%x\n", status);
		res->mismatches = 1;
		return 1;
	}
	killed_mid_op = log->started > log->done;
	check_iteration(&it, log, fcs, res);
	if (opts.verbose || res->mismatches) {
		printf("crash: iteration %u, seed %" PRIu64 ": block %u, mem limit %" PRIu64
		       " KiB, expire %u ms, %s; killed %s op %" PRIu64 " (%s) of %u;"
		       " %" PRIu64 " bytes durable, %" PRIu64 " of them untouched since;"
		       " %lu mismatches%s\n", k, it.seed, it.block_size, it.mem_limit >> 10,
		       it.dirty_expire_ms, it.perform_write ? "perform_write" : "write_begin",
		       killed_mid_op ? "in" : "after", killed_mid_op ? log->started - 1 :
		       log->done - 1, op_names[log->ops[log->started - 1].type], opts.ops,
		       res->bytes_durable, res->bytes_untouched, res->mismatches,
		       log->no_views ? " (no views here: stores were pwrites)" : "");
		if (res->mismatches)
			printf("crash:   replay: pcache crash --seed %" PRIu64 " --iterations 1"
			       " --ops %u --files %u --max-size %" PRIu64 " --block-size %u;"
			       " backing directory kept: %s\n", it.seed, opts.ops, opts.files,
			       opts.max_size, it.block_size, it.dir);
	}
	if (!res->mismatches && !opts.keep)
		nftw(it.dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	return (long)res->mismatches;
}

/* ---- options ---------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
"usage: pcache crash [options]\n"
"\n"
"Crash safety of the dir backend: a child process runs random writes,\n"
"truncates, stores through a view, fsyncs, fdatasyncs, msyncs and O_SYNC/\n"
"O_DSYNC writes and is killed with SIGKILL at a random point; then every byte\n"
"a completed sync made durable must be in the backing files (bytes that later\n"
"ops touched may hold the old value or any later one).  The last line is\n"
"  iterations N, mismatches M, seed S\n"
"and the exit status is 0 only when M is 0.\n"
"\n"
"  --iterations N       children to kill (default %u)\n"
"  --seed S             seed of iteration 0; iteration k uses S + k, and\n"
"                       --seed S+k --iterations 1 replays its ops (default:\n"
"                       from the clock; always printed)\n"
"  --ops N              operations per child (default %u)\n"
"  --files F            files, 1-%d (default %d)\n"
"  --max-size BYTES     file size bound, k/m allowed (default %u)\n"
"  --block-size N       512, 1024, 2048 or 4096 (default: random per iteration)\n"
"  --dir DIR            where the backing directories go (default: $TMPDIR or\n"
"                       /tmp); each is removed after a clean iteration\n"
"  --keep               keep every backing directory\n"
"  --verbose            a line per iteration (and a bad file's ops)\n"
"  --list-ops           print each iteration's setup and ops; run nothing\n"
"  --help               this text\n",
		CRASH_DEFAULT_ITERATIONS, CRASH_DEFAULT_OPS, CRASH_MAX_FILES,
		CRASH_DEFAULT_FILES, CRASH_DEFAULT_MAX_SIZE);
}

#define bad_usage(...) usage_error("crash", __VA_ARGS__)

enum {
	OPT_ITERATIONS = 256, OPT_SEED, OPT_OPS, OPT_FILES, OPT_MAX_SIZE,
	OPT_BLOCK_SIZE, OPT_DIR, OPT_KEEP, OPT_VERBOSE, OPT_HELP, OPT_LIST_OPS,
};

static const struct option long_opts[] = {
	{ "iterations",	required_argument,	NULL, OPT_ITERATIONS },
	{ "seed",	required_argument,	NULL, OPT_SEED },
	{ "ops",	required_argument,	NULL, OPT_OPS },
	{ "files",	required_argument,	NULL, OPT_FILES },
	{ "max-size",	required_argument,	NULL, OPT_MAX_SIZE },
	{ "block-size",	required_argument,	NULL, OPT_BLOCK_SIZE },
	{ "dir",	required_argument,	NULL, OPT_DIR },
	{ "keep",	no_argument,		NULL, OPT_KEEP },
	{ "verbose",	no_argument,		NULL, OPT_VERBOSE },
	{ "help",	no_argument,		NULL, OPT_HELP },
	{ "list-ops",	no_argument,		NULL, OPT_LIST_OPS },
	{ NULL, 0, NULL, 0 },
};

static int parse_args(int argc, char **argv, bool *seed_given)
{
	uint64_t v;
	int c;

	memset(&opts, 0, sizeof(opts));
	opts.iterations = CRASH_DEFAULT_ITERATIONS;
	opts.ops = CRASH_DEFAULT_OPS;
	opts.files = CRASH_DEFAULT_FILES;
	opts.max_size = CRASH_DEFAULT_MAX_SIZE;
	*seed_given = false;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_ITERATIONS:
			if (!parse_u64(optarg, false, &v) || v < 1 || v > 1000000)
				return bad_usage("--iterations: '%s' is not in 1..1000000", optarg);
			opts.iterations = (unsigned)v;
			break;
		case OPT_SEED:
			if (!parse_u64(optarg, false, &opts.seed))
				return bad_usage("--seed: '%s' is not a number", optarg);
			*seed_given = true;
			break;
		case OPT_OPS:
			if (!parse_u64(optarg, false, &v) || v < 1 || v > CRASH_MAX_OPS)
				return bad_usage("--ops: '%s' is not in 1..%d", optarg, CRASH_MAX_OPS);
			opts.ops = (unsigned)v;
			break;
		case OPT_FILES:
			if (!parse_u64(optarg, false, &v) || v < 1 || v > CRASH_MAX_FILES)
				return bad_usage("--files: '%s' is not in 1..%d", optarg,
						 CRASH_MAX_FILES);
			opts.files = (unsigned)v;
			break;
		case OPT_MAX_SIZE:
			if (!parse_u64(optarg, true, &v) || v < CRASH_PAGE ||
			    v > CRASH_MAX_MAX_SIZE)
				return bad_usage("--max-size: '%s' is not a size in %u..%u",
						 optarg, CRASH_PAGE, CRASH_MAX_MAX_SIZE);
			opts.max_size = v;
			break;
		case OPT_BLOCK_SIZE:
			if (!parse_u64(optarg, false, &v) || v < 512 || v > 4096 ||
			    (v & (v - 1)))
				return bad_usage("--block-size: '%s' is not 512, 1024, 2048"
						 " or 4096", optarg);
			opts.block_size = (unsigned)v;
			break;
		case OPT_DIR:
			opts.dir = optarg;
			break;
		case OPT_KEEP:
			opts.keep = true;
			break;
		case OPT_VERBOSE:
			opts.verbose = true;
			break;
		case OPT_LIST_OPS:
			opts.list_ops = true;
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

int cmd_crash(int argc, char **argv)
{
	struct file_check fcs[CRASH_MAX_FILES];
	struct iter_result res;
	struct crash_log *log;
	size_t log_size;
	bool seed_given;
	unsigned long total_bad = 0, mid_op = 0;
	uint64_t durable = 0, untouched = 0;
	unsigned k, ran = 0;
	int status;
	double t0;

	status = parse_args(argc, argv, &seed_given);
	if (status >= 0)
		return status;
	if (!seed_given) {
		struct timespec ts;
		uint64_t s;

		clock_gettime(CLOCK_REALTIME, &ts);
		s = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		opts.seed = splitmix64(&s) % 1000000000ull;
	}
	if (!opts.dir) {
		const char *tmp = getenv("TMPDIR");

		opts.dir = tmp && *tmp ? tmp : "/tmp";
	}
	cap = (opts.max_size + CRASH_PAGE - 1) / CRASH_PAGE * CRASH_PAGE;
	log_size = sizeof(*log) + (size_t)opts.ops * sizeof(struct crash_op);
	log = mmap(NULL, log_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (log == MAP_FAILED) {
		fprintf(stderr, "pcache crash: mmap: %s\n", strerror(errno));
		return 1;
	}
	for (unsigned f = 0; f < opts.files; f++) {
		fcs[f].cur = malloc(cap);
		fcs[f].ack = malloc(cap);
		fcs[f].disk = malloc(cap);
		fcs[f].ack_op = malloc(cap * sizeof(int32_t));
		if (!fcs[f].cur || !fcs[f].ack || !fcs[f].disk || !fcs[f].ack_op) {
			fprintf(stderr, "pcache crash: out of memory\n");
			return 1;
		}
	}
	printf("crash: seed %" PRIu64 ", %u iterations of %u ops, %u files, max size %"
	       PRIu64 ", block size %s, in %s\n", opts.seed, opts.iterations, opts.ops,
	       opts.files, opts.max_size, opts.block_size ? "fixed" : "random", opts.dir);
	fflush(stdout);

	if (opts.list_ops) {
		for (k = 0; k < opts.iterations; k++) {
			struct crash_iter it;
			uint64_t rng;

			draw_iter(&it, opts.seed + k, &rng);
			draw_ops(&rng, log->ops, opts.ops);
			printf("iteration %u, seed %" PRIu64 ": block %u, mem limit %" PRIu64
			       " KiB, expire %u ms, interval %u ms, %s, kill in op %u"
			       " (+%u us)\n", k, it.seed, it.block_size, it.mem_limit >> 10,
			       it.dirty_expire_ms, it.writeback_interval_ms,
			       it.perform_write ? "perform_write" : "write_begin",
			       it.kill_op - 1, it.spin_us);
			for (unsigned i = 0; i < opts.ops; i++)
				printf("  op %u: file %u %s off %" PRIu64 " len %" PRIu64 "\n",
				       i, log->ops[i].file, op_names[log->ops[i].type],
				       log->ops[i].off, log->ops[i].len);
		}
		goto out;
	}
	t0 = now();
	for (k = 0; k < opts.iterations; k++) {
		long bad = run_iteration(k, log, log_size, fcs, &res);

		if (bad < 0)
			break;
		ran++;
		total_bad += (unsigned long)bad;
		durable += res.bytes_durable;
		untouched += res.bytes_untouched;
		mid_op += log->started > log->done;
	}
	printf("crash: %u children killed in %.1f s (%lu inside an op); %" PRIu64
	       " bytes were durable at the kill, %" PRIu64 " of them untouched since"
	       " (checked exactly)\n", ran, now() - t0, mid_op, durable, untouched);
	printf("iterations %u, mismatches %lu, seed %" PRIu64 "\n", ran, total_bad, opts.seed);
out:
	for (unsigned f = 0; f < opts.files; f++) {
		free(fcs[f].cur);
		free(fcs[f].ack);
		free(fcs[f].disk);
		free(fcs[f].ack_op);
	}
	munmap(log, log_size);
	return opts.list_ops || (ran == opts.iterations && total_bad == 0) ? 0 : 1;
}
