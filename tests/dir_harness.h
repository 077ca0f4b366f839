/*
 * dir_harness.h - what the "dir" backend's tests share: a temporary backing
 * directory, plain-libc access to the backing files (to check what really
 * reached them), and a system-call table (base/sys.h) of wrappers that
 * count, log, slow down and fail the backend's calls.
 *
 * The wrappers are installed once, before the first cache exists, and
 * removed (sys = sys_default) after the last one is destroyed: the
 * flusher and the view fault threads read the table, so swapping entries
 * while a cache lives would be a data race.  What the wrappers do is
 * switched with atomics instead (inj_*).
 *
 * The test's own reads and writes of backing files use libc directly,
 * never the table, so they are not counted.
 */
#ifndef PCACHE_TEST_DIR_HARNESS_H
#define PCACHE_TEST_DIR_HARNESS_H

#include <dirent.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "base/sys.h"
#include "harness.h"

#define PAGE		4096L
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static char backing_dir[64];
static long fs_block;		/* the backing filesystem's block size */

/* ---- the backing directory ---- */

static inline void rm_backing_files(void)
{
	DIR *d = opendir(backing_dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static inline void backing_dir_remove(void)
{
	if (!backing_dir[0])
		return;
	rm_backing_files();
	rmdir(backing_dir);
	backing_dir[0] = 0;
}

/*
 * Extents (allocated blocks, written or only fallocated) of an open file
 * that overlap [start, start + len): -errno if FIEMAP fails.  Unlike
 * st_blocks this counts no metadata, and unlike SEEK_DATA it sees blocks
 * past EOF and fallocated (unwritten) ones.
 */
static inline long fd_extents(int fd, off_t start, off_t len)
{
	struct fiemap fm = {
		.fm_start = (uint64_t)start,
		.fm_length = (uint64_t)len,
		.fm_flags = FIEMAP_FLAG_SYNC,
		.fm_extent_count = 0,	/* just count them */
	};

	if (ioctl(fd, FS_IOC_FIEMAP, &fm))
		return -errno;
	return (long)fm.fm_mapped_extents;
}

/*
 * Make the backing directory; exit 77 if its filesystem cannot do what
 * the backend relies on (fallocate, hole punching, SEEK_DATA/SEEK_HOLE) or
 * what the tests check with (FIEMAP).
 */
static inline void backing_dir_make(const char *prefix)
{
	char path[128];
	struct statfs sfs;
	off_t data;
	int fd;

	snprintf(backing_dir, sizeof(backing_dir), "/tmp/%s-XXXXXX", prefix);
	if (!mkdtemp(backing_dir)) {
		fprintf(stderr, "FAIL: mkdtemp(%s): %s\n", backing_dir, strerror(errno));
		exit(1);
	}
	if (statfs(backing_dir, &sfs) == 0 && sfs.f_bsize > 0)
		fs_block = (long)sfs.f_bsize;
	else
		fs_block = 4096;
	snprintf(path, sizeof(path), "%s/probe", backing_dir);
	fd = open(path, O_CREAT | O_RDWR, 0644);
	if (fd < 0) {
		fprintf(stderr, "FAIL: create %s: %s\n", path, strerror(errno));
		backing_dir_remove();
		exit(1);
	}
	/*
	 * A hole, then one block of data: SEEK_DATA must skip the hole.  (The
	 * punch is inside EOF: ext4 ignores punches past it.)
	 */
	if (ftruncate(fd, 65 * fs_block) ||
	    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4 * fs_block) ||
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      4 * fs_block)) {
		int e = errno;

		close(fd);
		backing_dir_remove();
		TEST_SKIP("the filesystem of /tmp cannot fallocate or punch holes (%s); "
			  "the dir backend needs both", strerror(e));
	}
	if (pwrite(fd, "x", 1, 64 * fs_block) != 1) {
		fprintf(stderr, "FAIL: pwrite %s: %s\n", path, strerror(errno));
		close(fd);
		backing_dir_remove();
		exit(1);
	}
	fsync(fd);
	data = lseek(fd, 0, SEEK_DATA);
	{
		long in_hole = fd_extents(fd, 0, 64 * fs_block);
		long at_data = fd_extents(fd, 64 * fs_block, fs_block);

		if (in_hole != 0 || at_data != 1) {
			close(fd);
			unlink(path);
			backing_dir_remove();
			TEST_SKIP("FIEMAP does not work on the filesystem of /tmp (%ld extents "
				  "in a hole, %ld at data: %s); the tests check allocation "
				  "with it", in_hole, at_data,
				  in_hole < 0 ? strerror((int)-in_hole) : "wrong counts");
		}
	}
	close(fd);
	unlink(path);
	if (data != 64 * fs_block) {
		backing_dir_remove();
		TEST_SKIP("the filesystem of /tmp does not report holes with SEEK_DATA "
			  "(SEEK_DATA(0) gave %lld for a file whose data starts at %ld)",
			  (long long)data, 64 * fs_block);
	}
}

static inline void real_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", backing_dir, name);
}

static inline int real_open(const char *name, int flags)
{
	char path[256];

	real_path(path, sizeof(path), name);
	return open(path, flags | O_CLOEXEC, 0644);
}

/* Read the backing file whole into @buf (@cap bytes); returns its size. */
static inline ssize_t real_read_all(const char *name, unsigned char *buf, size_t cap)
{
	int fd = real_open(name, O_RDONLY);
	ssize_t n, done = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)done < cap && (n = pread(fd, buf + done, cap - done, done)) > 0)
		done += n;
	close(fd);
	return done;
}

/* Write a backing file with libc, as if it had been there before pcache. */
static inline void real_write(const char *name, const void *buf, size_t len, off_t off)
{
	int fd = real_open(name, O_CREAT | O_WRONLY);

	if (fd < 0 || pwrite(fd, buf, len, off) != (ssize_t)len) {
		fprintf(stderr, "FAIL: writing backing file %s: %s\n", name, strerror(errno));
		exit(1);
	}
	close(fd);
}

/* SEEK_DATA on the backing file from @off: the offset, or -errno. */
static inline off_t real_seek_data(const char *name, off_t off)
{
	int fd = real_open(name, O_RDONLY);
	off_t r;

	if (fd < 0)
		return -errno;
	r = lseek(fd, off, SEEK_DATA);
	if (r < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Extents of the backing file overlapping [start, start + len) (see fd_extents). */
static inline long real_extents(const char *name, off_t start, off_t len)
{
	int fd = real_open(name, O_RDONLY);
	long n;

	if (fd < 0)
		return -errno;
	n = fd_extents(fd, start, len);
	close(fd);
	return n;
}

/* Extents at or past @start: blocks allocated there. */
static inline long real_extents_from(const char *name, off_t start)
{
	return real_extents(name, start, (off_t)(FIEMAP_MAX_OFFSET - (uint64_t)start));
}

/* ---- a model of one file ---- */

struct model {
	unsigned char *data;
	size_t size, cap;
};

static inline void model_init(struct model *m, size_t cap)
{
	m->data = calloc(1, cap);
	m->cap = cap;
	m->size = 0;
	if (!m->data) {
		fprintf(stderr, "FAIL: out of memory\n");
		exit(1);
	}
}

static inline void model_free(struct model *m)
{
	free(m->data);
	m->data = NULL;
}

static inline void model_write(struct model *m, const void *buf, size_t len, size_t off)
{
	if (off + len > m->cap) {
		fprintf(stderr, "FAIL: model too small (%zu > %zu)\n", off + len, m->cap);
		exit(1);
	}
	memcpy(m->data + off, buf, len);
	if (off + len > m->size)
		m->size = off + len;
}

static inline void model_truncate(struct model *m, size_t len)
{
	if (len < m->size)
		memset(m->data + len, 0, m->size - len);
	m->size = len;
}

/* Compare @got (@n bytes at file offset @off) with the model; report the first difference. */
static inline bool model_cmp(const struct model *m, const unsigned char *got, size_t n,
		      size_t off, const char *ctx)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char want = off + i < m->size ? m->data[off + i] : 0;

		if (got[i] != want) {
			CHECK(0, "%s: byte at file offset %zu is 0x%02x, want 0x%02x",
			      ctx, off + i, got[i], want);
			return false;
		}
	}
	return true;
}

/* The whole file through pcache: its size and every byte. */
static inline void check_cached(int fd, const struct model *m, const char *ctx)
{
	unsigned char *buf = malloc(m->size + PAGE);
	struct stat st;
	ssize_t got;

	CHECK_EQ(pcache_fstat(fd, &st), 0);
	CHECK(st.st_size == (off_t)m->size, "%s: pcache size %lld, want %zu", ctx,
	      (long long)st.st_size, m->size);
	got = pcache_pread(fd, buf, m->size + PAGE, 0);
	CHECK(got == (ssize_t)m->size, "%s: pcache_pread of the whole file gave %zd, want %zu",
	      ctx, got, m->size);
	if (got > 0)
		model_cmp(m, buf, (size_t)got, 0, ctx);
	free(buf);
}

/* The backing file: its size and every byte. */
static inline void check_backing(const char *name, const struct model *m, const char *ctx)
{
	unsigned char *buf = malloc(m->size + PAGE);
	ssize_t got = real_read_all(name, buf, m->size + PAGE);

	CHECK(got == (ssize_t)m->size, "%s: backing file %s holds %zd bytes, want %zu",
	      ctx, name, got, m->size);
	if (got > 0)
		model_cmp(m, buf, (size_t)got, 0, ctx);
	free(buf);
}

/* ---- the system-call wrappers ---- */

enum inj_kind { INJ_PREAD, INJ_WRITE, INJ_SYNC, INJ_ALLOC, INJ_NR };

static const char *const inj_kind_name[INJ_NR] = {
	[INJ_PREAD] = "pread", [INJ_WRITE] = "pwrite/pwritev",
	[INJ_SYNC] = "fsync/fdatasync", [INJ_ALLOC] = "fallocate",
};

/* All atomics (__atomic_*, relaxed unless noted). */
static long inj_preads, inj_pwrites, inj_fsyncs, inj_fdatasyncs, inj_allocs,
	inj_punches, inj_ftruncates;
static int inj_write_delay_us;	/* sleep before every pwrite/pwritev, */
static int inj_write_page_us;	/* and this much more per 4 KiB it writes */
static int inj_writes_in_flight;	/* pwrite/pwritev calls not returned yet */
static int inj_write_errno;	/* every pwrite/pwritev fails with it */
static long inj_alloc_limit = -1;	/* allocations reaching past it: ENOSPC */
/* Fail the n-th call of a kind (counted from inj_arm), once or from then on. */
static long inj_calls[INJ_NR], inj_fail_at[INJ_NR];
static int inj_fail_errno[INJ_NR];
static bool inj_fail_sticky[INJ_NR];
static long inj_failed[INJ_NR];	/* failures injected so far */
/*
 * Allocations at least this long are the backend's chunk reservations
 * (PCACHE_DIR_RESERVE); injected failures of those are also counted in
 * inj_failed_resv.  LONG_MAX: none is.
 */
static long inj_resv_len = LONG_MAX;
static long inj_failed_resv;
/* Non-zero: no call is counted or failed (the test's own checking reads). */
static int inj_paused;

/* The pread log: every pread of a backing file while logging is on. */
#define READ_LOG_MAX	4096
struct read_rec {
	off_t off;
	size_t len;
};
static pthread_mutex_t read_log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct read_rec read_log[READ_LOG_MAX];
static int read_log_n;
static bool read_log_on;

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define INC(x)		__atomic_add_fetch(&(x), 1, __ATOMIC_RELAXED)

static inline void inj_arm(enum inj_kind k, long n, int err, bool sticky)
{
	STORE(inj_calls[k], 0);
	STORE(inj_failed[k], 0);
	STORE(inj_fail_errno[k], err);
	STORE(inj_fail_sticky[k], sticky);
	__atomic_store_n(&inj_fail_at[k], n, __ATOMIC_RELEASE);
}

static inline void inj_disarm_all(void)
{
	for (int k = 0; k < INJ_NR; k++)
		__atomic_store_n(&inj_fail_at[k], 0, __ATOMIC_RELEASE);
	STORE(inj_write_errno, 0);
	STORE(inj_write_delay_us, 0);
	STORE(inj_write_page_us, 0);
	STORE(inj_alloc_limit, -1);
}

/* Should this call of kind @k fail?  Returns the errno, or 0. */
static inline int inj_should_fail(enum inj_kind k)
{
	long at = __atomic_load_n(&inj_fail_at[k], __ATOMIC_ACQUIRE), c;

	if (at <= 0 || LOAD(inj_paused))
		return 0;
	c = INC(inj_calls[k]);
	if (c == at || (c > at && LOAD(inj_fail_sticky[k]))) {
		INC(inj_failed[k]);
		return LOAD(inj_fail_errno[k]);
	}
	return 0;
}

static inline ssize_t wrap_pread(int fd, void *buf, size_t count, off_t off)
{
	int err = inj_should_fail(INJ_PREAD);

	INC(inj_preads);
	if (err) {
		errno = err;
		return -1;
	}
	pthread_mutex_lock(&read_log_lock);
	if (read_log_on && read_log_n < READ_LOG_MAX)
		read_log[read_log_n++] = (struct read_rec){ off, count };
	pthread_mutex_unlock(&read_log_lock);
	return sys_default.pread(fd, buf, count, off);
}

static inline int write_fault(size_t bytes)
{
	long us = LOAD(inj_write_delay_us) +
		  (long)(bytes / PAGE) * LOAD(inj_write_page_us);
	int err;

	if (us)
		usleep((useconds_t)us);
	err = inj_should_fail(INJ_WRITE);
	return err ? err : LOAD(inj_write_errno);
}

static inline ssize_t wrap_pwrite(int fd, const void *buf, size_t count, off_t off)
{
	int err = write_fault(count);

	INC(inj_pwrites);
	if (err) {
		errno = err;
		return -1;
	}
	return sys_default.pwrite(fd, buf, count, off);
}

static inline ssize_t wrap_pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	size_t bytes = 0;
	ssize_t ret;
	int err;

	for (int i = 0; i < n; i++)
		bytes += iov[i].iov_len;
	INC(inj_writes_in_flight);
	err = write_fault(bytes);
	INC(inj_pwrites);
	if (err) {
		__atomic_sub_fetch(&inj_writes_in_flight, 1, __ATOMIC_RELAXED);
		errno = err;
		return -1;
	}
	ret = sys_default.pwritev(fd, iov, n, off);
	__atomic_sub_fetch(&inj_writes_in_flight, 1, __ATOMIC_RELAXED);
	return ret;
}

static inline int wrap_fsync(int fd)
{
	int err = inj_should_fail(INJ_SYNC);

	INC(inj_fsyncs);
	if (err) {
		errno = err;
		return -1;
	}
	return sys_default.fsync(fd);
}

static inline int wrap_fdatasync(int fd)
{
	int err = inj_should_fail(INJ_SYNC);

	INC(inj_fdatasyncs);
	if (err) {
		errno = err;
		return -1;
	}
	return sys_default.fdatasync(fd);
}

/*
 * Punching always works (a full disk can still free space).  An allocation
 * reaching past inj_alloc_limit allocates what fits below it and fails with
 * ENOSPC, as a filesystem running out of space part way does.
 */
static inline int wrap_fallocate(int fd, int mode, off_t off, off_t len)
{
	long limit = LOAD(inj_alloc_limit);
	int err;

	if (mode & FALLOC_FL_PUNCH_HOLE) {
		INC(inj_punches);
		return sys_default.fallocate(fd, mode, off, len);
	}
	INC(inj_allocs);
	err = inj_should_fail(INJ_ALLOC);
	if (err && len >= LOAD(inj_resv_len))
		INC(inj_failed_resv);
	if (!err && limit >= 0 && off + len > limit) {
		if (off < limit)
			sys_default.fallocate(fd, mode, off, limit - off);
		err = ENOSPC;
	}
	if (err) {
		errno = err;
		return -1;
	}
	return sys_default.fallocate(fd, mode, off, len);
}

static inline int wrap_ftruncate(int fd, off_t len)
{
	INC(inj_ftruncates);
	return sys_default.ftruncate(fd, len);
}

/* Before the first cache. */
static inline void wrappers_install(void)
{
	sys.pread = wrap_pread;
	sys.pwrite = wrap_pwrite;
	sys.pwritev = wrap_pwritev;
	sys.fsync = wrap_fsync;
	sys.fdatasync = wrap_fdatasync;
	sys.fallocate = wrap_fallocate;
	sys.ftruncate = wrap_ftruncate;
}

/* After the last cache is destroyed. */
static inline void wrappers_remove(void)
{
	inj_disarm_all();
	sys = sys_default;
}

static inline void read_log_start(void)
{
	pthread_mutex_lock(&read_log_lock);
	read_log_n = 0;
	read_log_on = true;
	pthread_mutex_unlock(&read_log_lock);
}

/* Stop logging; returns the number of preads logged (copied to @out). */
static inline int read_log_stop(struct read_rec *out, int max)
{
	int n;

	pthread_mutex_lock(&read_log_lock);
	read_log_on = false;
	n = read_log_n < max ? read_log_n : max;
	memcpy(out, read_log, (size_t)n * sizeof(*out));
	CHECK(read_log_n < READ_LOG_MAX, "the pread log overflowed");
	pthread_mutex_unlock(&read_log_lock);
	return n;
}

/* ---- caches ---- */

struct dir_cfg {
	unsigned int block_size;
	int perform_write;
	uint64_t mem_limit, dirty_limit;
	unsigned int dirty_expire_ms, writeback_interval_ms;
	/*
	 * PCACHE_DIR_RESERVE while the cache mounts: the backend's allocation
	 * chunk ("0": exact, a write allocates only its own blocks).  NULL:
	 * whatever the environment says (tests unset it: the default).
	 */
	const char *reserve;
};

static inline struct pcache *dir_cache(const struct dir_cfg *dc)
{
	struct pcache_config cfg;
	struct pcache *pc = NULL;
	int rc;

	pcache_config_init(&cfg);
	cfg.backend = "dir";
	cfg.backend_arg = backing_dir;
	cfg.block_size = dc->block_size;
	cfg.perform_write = dc->perform_write;
	cfg.mem_limit = dc->mem_limit;
	cfg.dirty_limit = dc->dirty_limit;
	cfg.dirty_expire_ms = dc->dirty_expire_ms;
	cfg.writeback_interval_ms = dc->writeback_interval_ms;
	if (dc->reserve)
		setenv("PCACHE_DIR_RESERVE", dc->reserve, 1);
	rc = pcache_create(&cfg, &pc);
	if (dc->reserve)
		unsetenv("PCACHE_DIR_RESERVE");
	if (rc) {
		fprintf(stderr, "FAIL: pcache_create(dir, block size %u): %s\n",
			dc->block_size, pcache_strerror(rc));
		backing_dir_remove();
		exit(1);
	}
	return pc;
}

static inline struct pcache_stats stats_of(struct pcache *pc)
{
	struct pcache_stats st;

	if (pcache_stats(pc, &st)) {
		fprintf(stderr, "FAIL: pcache_stats\n");
		exit(1);
	}
	return st;
}

static inline uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static inline long round_up(long x, long a)
{
	return (x + a - 1) / a * a;
}

#endif /* PCACHE_TEST_DIR_HARNESS_H */
