/*
 * test_api.c - the public API's semantics, one case at a time.
 *
 * Every case builds what it needs on a fresh cache (memory backend unless
 * it says otherwise), checks every byte it reads back against a pattern,
 * and checks each documented error of include/pcache.h.  Cases that set
 * process-wide state (RLIMIT_FSIZE) run in a child process.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pcache.h"
#include "harness.h"

#define PAGE	4096
#define KiB	1024
#define MiB	(1024 * 1024)

static unsigned char *wbuf, *rbuf;	/* big scratch buffers */
#define BUFSZ	(2 * MiB + 4 * PAGE)

static struct pcache *new_cache(uint64_t mem_limit, uint64_t max_file_size, int strategy)
{
	struct pcache_config cfg;
	struct pcache *pc = NULL;
	int rc;

	pcache_config_init(&cfg);
	cfg.mem_limit = mem_limit;
	cfg.max_file_size = max_file_size;
	if (strategy >= 0)
		cfg.write_strategy = strategy;
	rc = pcache_create(&cfg, &pc);
	if (rc == -EOPNOTSUPP)
		return NULL;
	CHECK(rc == 0 && pc, "pcache_create: %d (%s)", rc, pcache_strerror(rc));
	if (rc) {
		fprintf(stderr, "cannot go on without a cache\n");
		exit(1);
	}
	return pc;
}

static struct pcache *default_cache(void)
{
	return new_cache(0, 0, -1);
}

static void destroy(struct pcache *pc)
{
	int rc = pcache_destroy(pc);

	CHECK_EQ(rc, 0);
}

static int open_new(struct pcache *pc, const char *name)
{
	int fd = pcache_open(pc, name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0, "open %s: %d", name, fd);
	return fd;
}

static off_t fsize(int fd)
{
	struct stat st;
	int rc = pcache_fstat(fd, &st);

	CHECK_EQ(rc, 0);
	return rc ? -1 : st.st_size;
}

static void close_ok(int fd)
{
	CHECK_EQ(pcache_close(fd), 0);
}

/* Write @len pattern bytes of @tag at @off (file offset = pattern offset). */
static void put(int fd, unsigned tag, off_t off, size_t len)
{
	unsigned char *b = malloc(len ? len : 1);

	pattern_fill(b, len, tag, off);
	CHECK_EQ(pcache_pwrite(fd, b, len, off), len);
	free(b);
}

/* Expect [off, off+len) to hold the pattern @tag (tag 0: zeroes). */
static void expect(int fd, unsigned tag, off_t off, size_t len, int line)
{
	unsigned char *b = malloc(len ? len : 1);
	ssize_t n = pcache_pread(fd, b, len, off);

	if (n != (ssize_t)len) {
		fprintf(stderr, "FAIL %s:%d: pread(%lld, %zu) = %zd\n", __FILE__, line,
			(long long)off, len, n);
		test_failures++;
	} else if (tag == 0) {
		for (size_t i = 0; i < len; i++)
			if (b[i]) {
				fprintf(stderr, "FAIL %s:%d: byte %lld is %#x, want 0\n",
					__FILE__, line, (long long)(off + i), b[i]);
				test_failures++;
				break;
			}
	} else {
		long bad = pattern_check(b, len, tag, off);

		if (bad >= 0) {
			fprintf(stderr, "FAIL %s:%d: byte %lld is %#x, want %#x (tag %u)\n",
				__FILE__, line, (long long)(off + bad), b[bad],
				pattern_byte(tag, off + bad), tag);
			test_failures++;
		}
	}
	free(b);
}
#define EXPECT(fd, tag, off, len) expect(fd, tag, off, len, __LINE__)

/* ---- create / destroy ------------------------------------------------ */

static void test_create_destroy(void)
{
	struct pcache_config cfg;
	struct pcache *pc = NULL;
	int fd;

	pcache_config_init(&cfg);
	CHECK(cfg.backend == NULL || strcmp(cfg.backend, "memory") == 0,
	      "default backend %s", cfg.backend);
	CHECK_EQ(cfg.write_strategy, PCACHE_WRITE_BOUNCE);
	CHECK_EQ(pcache_create(&cfg, &pc), 0);
	CHECK(pc != NULL, "no cache");
	CHECK_EQ(pcache_destroy(pc), 0);

	/* the explicit name of the default backend */
	pcache_config_init(&cfg);
	cfg.backend = "memory";
	CHECK_EQ(pcache_create(&cfg, &pc), 0);
	CHECK_EQ(pcache_destroy(pc), 0);

	pc = NULL;
	pcache_config_init(&cfg);
	CHECK_EQ(pcache_create(NULL, &pc), -EINVAL);
	CHECK_EQ(pcache_create(&cfg, NULL), -EINVAL);
	CHECK_EQ(pcache_destroy(NULL), -EINVAL);

	cfg.backend = "no-such-backend";
	CHECK_EQ(pcache_create(&cfg, &pc), -ENOENT);

	static const int bad_strategies[] = { PCACHE_WRITE_NR, PCACHE_WRITE_NR + 1, -1, INT_MAX, INT_MIN };
	for (size_t i = 0; i < sizeof(bad_strategies) / sizeof(bad_strategies[0]); i++) {
		pcache_config_init(&cfg);
		cfg.write_strategy = bad_strategies[i];
		CHECK(pcache_create(&cfg, &pc) == -EINVAL, "strategy %d accepted", bad_strategies[i]);
	}

	static const uint64_t bad_max[] = { 1, 100, PAGE - 1, PAGE + 1, MiB + 512, 3 * PAGE / 2 };
	for (size_t i = 0; i < sizeof(bad_max) / sizeof(bad_max[0]); i++) {
		pcache_config_init(&cfg);
		cfg.max_file_size = bad_max[i];
		CHECK(pcache_create(&cfg, &pc) == -EINVAL, "max_file_size %llu accepted",
		      (unsigned long long)bad_max[i]);
	}
	/* a page multiple is fine */
	pcache_config_init(&cfg);
	cfg.max_file_size = 16 * PAGE;
	CHECK_EQ(pcache_create(&cfg, &pc), 0);
	CHECK_EQ(pcache_destroy(pc), 0);

	/* every strategy either builds or says it is not built yet */
	for (int s = 0; s < PCACHE_WRITE_NR; s++) {
		int rc;

		pcache_config_init(&cfg);
		cfg.write_strategy = s;
		rc = pcache_create(&cfg, &pc);
		CHECK(rc == 0 || rc == -EOPNOTSUPP, "strategy %d: %d", s, rc);
		if (rc == 0)
			CHECK_EQ(pcache_destroy(pc), 0);
		else
			fprintf(stderr, "note: strategy %s not built\n", pcache_strategy_name(s));
	}

	/* destroy with an open descriptor: -EBUSY, and nothing is freed */
	pc = default_cache();
	fd = open_new(pc, "busy");
	put(fd, 1, 0, 3 * PAGE + 7);
	CHECK_EQ(pcache_destroy(pc), -EBUSY);
	EXPECT(fd, 1, 0, 3 * PAGE + 7);
	put(fd, 2, 100, 50);
	EXPECT(fd, 2, 100, 50);
	CHECK_EQ(fsize(fd), 3 * PAGE + 7);
	int fd2 = pcache_open(pc, "busy2", O_RDWR | O_CREAT, 0644);
	CHECK(fd2 >= 0, "open after -EBUSY: %d", fd2);
	CHECK_EQ(pcache_destroy(pc), -EBUSY);
	close_ok(fd);
	CHECK_EQ(pcache_destroy(pc), -EBUSY);	/* fd2 still open */
	close_ok(fd2);
	CHECK_EQ(pcache_destroy(pc), 0);
}

/* ---- open -------------------------------------------------------------- */

static void test_open(void)
{
	struct pcache *pc = default_cache();
	struct stat st;
	char name[300];
	int fd, rc;

	fd = pcache_open(pc, "f", O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0, "O_CREAT: %d", fd);
	CHECK_EQ(fsize(fd), 0);
	put(fd, 3, 0, 10000);
	close_ok(fd);

	/* O_CREAT on an existing file opens it, contents kept */
	fd = pcache_open(pc, "f", O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0, "O_CREAT existing: %d", fd);
	CHECK_EQ(fsize(fd), 10000);
	EXPECT(fd, 3, 0, 10000);
	close_ok(fd);

	CHECK_EQ(pcache_open(pc, "f", O_RDWR | O_CREAT | O_EXCL, 0644), -EEXIST);
	CHECK_EQ(pcache_open(pc, "missing", O_RDWR, 0), -ENOENT);
	CHECK_EQ(pcache_open(pc, "missing", O_RDONLY, 0), -ENOENT);
	CHECK_EQ(pcache_open(pc, "missing", O_RDWR | O_TRUNC, 0), -ENOENT);

	/* O_CREAT|O_EXCL on a new name creates it */
	fd = pcache_open(pc, "excl", O_RDWR | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0, "O_EXCL new: %d", fd);
	close_ok(fd);
	CHECK_EQ(pcache_open(pc, "excl", O_RDWR | O_CREAT | O_EXCL, 0644), -EEXIST);

	/* O_TRUNC empties the file */
	fd = pcache_open(pc, "f", O_RDWR | O_TRUNC, 0);
	CHECK(fd >= 0, "O_TRUNC: %d", fd);
	CHECK_EQ(fsize(fd), 0);
	CHECK_EQ(pcache_pread(fd, rbuf, 100, 0), 0);
	/* and re-extending shows zeroes, not the old data */
	CHECK_EQ(pcache_ftruncate(fd, 10000), 0);
	EXPECT(fd, 0, 0, 10000);
	put(fd, 3, 0, 10000);
	close_ok(fd);

	/* access modes */
	fd = pcache_open(pc, "f", O_RDONLY, 0);
	CHECK(fd >= 0, "O_RDONLY: %d", fd);
	CHECK_EQ(pcache_pwrite(fd, wbuf, 10, 0), -EBADF);
	CHECK_EQ(pcache_write(fd, wbuf, 10), -EBADF);
	struct iovec iov = { wbuf, 10 };
	CHECK_EQ(pcache_pwritev(fd, &iov, 1, 0), -EBADF);
	CHECK_EQ(pcache_writev(fd, &iov, 1), -EBADF);
	EXPECT(fd, 3, 0, 10000);
	close_ok(fd);

	fd = pcache_open(pc, "f", O_WRONLY, 0);
	CHECK(fd >= 0, "O_WRONLY: %d", fd);
	CHECK_EQ(pcache_pread(fd, rbuf, 10, 0), -EBADF);
	CHECK_EQ(pcache_read(fd, rbuf, 10), -EBADF);
	iov.iov_base = rbuf;
	CHECK_EQ(pcache_preadv(fd, &iov, 1, 0), -EBADF);
	CHECK_EQ(pcache_readv(fd, &iov, 1), -EBADF);
	put(fd, 4, 0, 10);
	close_ok(fd);
	fd = pcache_open(pc, "f", O_RDONLY, 0);
	EXPECT(fd, 4, 0, 10);
	EXPECT(fd, 3, 10, 10000 - 10);
	close_ok(fd);

	CHECK_EQ(pcache_open(pc, "f", O_ACCMODE, 0), -EINVAL);
	CHECK_EQ(pcache_open(pc, "f", O_ACCMODE | O_CREAT, 0644), -EINVAL);
	CHECK_EQ(pcache_open(NULL, "f", O_RDONLY, 0), -EINVAL);

	/* the root directory */
	static const char *const roots[] = { ".", "/" };
	for (int i = 0; i < 2; i++) {
		fd = pcache_open(pc, roots[i], O_RDONLY, 0);
		CHECK(fd >= 0, "open(\"%s\", O_RDONLY): %d", roots[i], fd);
		if (fd >= 0) {
			CHECK_EQ(pcache_fstat(fd, &st), 0);
			CHECK(S_ISDIR(st.st_mode), "root mode %o", st.st_mode);
			CHECK_EQ(pcache_pread(fd, rbuf, 10, 0), -EISDIR);
			CHECK_EQ(pcache_read(fd, rbuf, 10), -EISDIR);
			iov.iov_base = rbuf;
			CHECK_EQ(pcache_preadv(fd, &iov, 1, 0), -EISDIR);
			rc = pcache_pwrite(fd, wbuf, 10, 0);
			CHECK(rc == -EBADF || rc == -EISDIR, "pwrite on dir: %d", rc);
			rc = pcache_ftruncate(fd, 0);
			CHECK(rc == -EINVAL || rc == -EISDIR || rc == -EBADF, "ftruncate on dir: %d", rc);
			close_ok(fd);
		}
		fd = pcache_open(pc, roots[i], O_RDONLY | O_DIRECTORY, 0);
		CHECK(fd >= 0, "open(\"%s\", O_DIRECTORY): %d", roots[i], fd);
		if (fd >= 0)
			close_ok(fd);
		CHECK_EQ(pcache_open(pc, roots[i], O_WRONLY, 0), -EISDIR);
		CHECK_EQ(pcache_open(pc, roots[i], O_RDWR, 0), -EISDIR);
		CHECK_EQ(pcache_open(pc, roots[i], O_RDWR | O_CREAT, 0644), -EISDIR);
		CHECK_EQ(pcache_open(pc, roots[i], O_WRONLY | O_TRUNC, 0), -EISDIR);
	}

	CHECK_EQ(pcache_open(pc, "f", O_RDONLY | O_DIRECTORY, 0), -ENOTDIR);
	CHECK_EQ(pcache_open(pc, "f", O_RDWR | O_DIRECTORY, 0), -ENOTDIR);

	/* names with a '/': the memory backend has no directories */
	static const char *const slashed[] = { "a/b", "f/x", "a/", "f/", "/f/g" };
	for (size_t i = 0; i < sizeof(slashed) / sizeof(slashed[0]); i++) {
		rc = pcache_open(pc, slashed[i], O_RDWR | O_CREAT, 0644);
		CHECK(rc == -ENOTDIR || rc == -ENOENT, "open(\"%s\", O_CREAT): %d", slashed[i], rc);
		if (rc >= 0)
			pcache_close(rc);
		rc = pcache_open(pc, slashed[i], O_RDONLY, 0);
		CHECK(rc == -ENOTDIR || rc == -ENOENT, "open(\"%s\"): %d", slashed[i], rc);
		if (rc >= 0)
			pcache_close(rc);
	}

	/* name lengths: 255 is NAME_MAX, 256 is too long */
	memset(name, 'n', sizeof(name));
	name[255] = '\0';
	fd = pcache_open(pc, name, O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0, "255-char name: %d", fd);
	if (fd >= 0)
		close_ok(fd);
	name[255] = 'n';
	name[256] = '\0';
	CHECK_EQ(pcache_open(pc, name, O_RDWR | O_CREAT, 0644), -ENAMETOOLONG);
	CHECK_EQ(pcache_open(pc, name, O_RDONLY, 0), -ENAMETOOLONG);
	name[299] = '\0';
	CHECK_EQ(pcache_open(pc, name, O_RDONLY, 0), -ENAMETOOLONG);

	CHECK_EQ(pcache_open(pc, "", O_RDONLY, 0), -ENOENT);
	CHECK_EQ(pcache_open(pc, "", O_RDWR | O_CREAT, 0644), -ENOENT);
	CHECK_EQ(pcache_open(pc, NULL, O_RDONLY, 0), -EFAULT);
	CHECK_EQ(pcache_open(pc, NULL, O_RDWR | O_CREAT, 0644), -EFAULT);

	/* flags open(2) ignores are ignored */
	fd = pcache_open(pc, "f", O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | O_NOATIME, 0);
	CHECK(fd >= 0, "ignored flags: %d", fd);
	if (fd >= 0)
		close_ok(fd);

	destroy(pc);
}

/* -EMFILE: open until the table is full (if it fills within a bound). */
static void test_emfile(void)
{
	enum { BOUND = 1 << 18 };
	struct pcache *pc = default_cache();
	int *fds = malloc(BOUND * sizeof(int));
	int n = 0, rc = 0;

	close_ok(open_new(pc, "m"));
	while (n < BOUND) {
		rc = pcache_open(pc, "m", O_RDONLY, 0);
		if (rc < 0)
			break;
		fds[n++] = rc;
	}
	if (n == BOUND) {
		fprintf(stderr, "note: no -EMFILE within %d descriptors\n", BOUND);
	} else {
		CHECK(rc == -EMFILE, "open #%d: %d, want -EMFILE", n, rc);
		CHECK(n > 0, "no descriptor at all");
		if (n > 0) {
			/* one close makes room for one open */
			close_ok(fds[--n]);
			rc = pcache_open(pc, "m", O_RDONLY, 0);
			CHECK(rc >= 0, "open after close: %d", rc);
			if (rc >= 0)
				fds[n++] = rc;
		}
	}
	for (int i = 0; i < n; i++)
		close_ok(fds[i]);
	free(fds);
	destroy(pc);
}

/* ---- pwrite / pread ------------------------------------------------- */

static const off_t rw_offsets[] = { 0, 1, 4095, 4096, 4097, 8191 };
static const size_t rw_lengths[] = { 1, 4095, 4096, 4097, 3 * 4096 + 5, MiB };
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void check_range(const unsigned char *b, size_t len, unsigned tag, off_t off,
			const char *what, off_t o, size_t l, int s)
{
	if (tag == 0) {
		for (size_t i = 0; i < len; i++)
			if (b[i]) {
				CHECK(0, "%s: strategy %d, write (%lld, %zu): byte %lld = %#x, want 0",
				      what, s, (long long)o, l, (long long)(off + i), b[i]);
				return;
			}
		return;
	}
	long bad = pattern_check(b, len, tag, off);
	CHECK(bad < 0, "%s: strategy %d, write (%lld, %zu): byte %lld = %#x, want %#x",
	      what, s, (long long)o, l, (long long)(off + bad), b[bad < 0 ? 0 : bad],
	      pattern_byte(tag, off + (bad < 0 ? 0 : bad)));
}

static void rw_case(struct pcache *pc, int s, off_t off, size_t len, unsigned tag)
{
	size_t end = off + len;
	size_t pre = end + PAGE + 7;	/* prefill reaches past the write */
	int fd;

	/* into an empty file: a hole before, EOF right after */
	fd = open_new(pc, "rw");
	pattern_fill(wbuf, len, tag, off);
	CHECK_EQ(pcache_pwrite(fd, wbuf, len, off), len);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 0);	/* pwrite leaves the position */
	CHECK_EQ(fsize(fd), end);
	memset(rbuf, 0xee, end + 10);
	CHECK_EQ(pcache_pread(fd, rbuf, end + 10, 0), end);
	check_range(rbuf, off, 0, 0, "hole before", off, len, s);
	check_range(rbuf + off, len, tag, off, "new data", off, len, s);
	/* the exact range */
	CHECK_EQ(pcache_pread(fd, rbuf, len, off), len);
	check_range(rbuf, len, tag, off, "exact read", off, len, s);
	/* an odd sub-range */
	if (len > 3) {
		CHECK_EQ(pcache_pread(fd, rbuf, len - 2, off + 1), len - 2);
		check_range(rbuf, len - 2, tag, off + 1, "sub-range read", off, len, s);
	}
	close_ok(fd);

	/* over existing data: the bytes around the write must stay */
	fd = open_new(pc, "rw");
	pattern_fill(wbuf, pre, tag + 1, 0);
	CHECK_EQ(pcache_pwrite(fd, wbuf, pre, 0), pre);
	pattern_fill(wbuf, len, tag, off);
	CHECK_EQ(pcache_pwrite(fd, wbuf, len, off), len);
	CHECK_EQ(fsize(fd), pre);
	memset(rbuf, 0xee, pre);
	CHECK_EQ(pcache_pread(fd, rbuf, pre + 100, 0), pre);
	check_range(rbuf, off, tag + 1, 0, "old data before", off, len, s);
	check_range(rbuf + off, len, tag, off, "overwrite", off, len, s);
	check_range(rbuf + end, pre - end, tag + 1, end, "old data after", off, len, s);
	close_ok(fd);
}

static void test_rw_table(void)
{
	unsigned tag = 10;

	for (int s = 0; s < PCACHE_WRITE_NR; s++) {
		struct pcache *pc = new_cache(0, 0, s);

		if (!pc)
			continue;
		for (size_t i = 0; i < NELEM(rw_offsets); i++)
			for (size_t j = 0; j < NELEM(rw_lengths); j++, tag += 2)
				rw_case(pc, s, rw_offsets[i], rw_lengths[j], tag);
		destroy(pc);
	}
}

static void test_eof_and_holes(void)
{
	struct pcache *pc = default_cache();
	int fd = open_new(pc, "eof");

	put(fd, 5, 0, 10000);
	CHECK_EQ(pcache_pread(fd, rbuf, 100, 10000), 0);	/* at EOF */
	CHECK_EQ(pcache_pread(fd, rbuf, 100, 10001), 0);	/* past EOF */
	CHECK_EQ(pcache_pread(fd, rbuf, 100, 1 << 30), 0);
	CHECK_EQ(pcache_pread(fd, rbuf, 100, LLONG_MAX - 200), 0);
	CHECK_EQ(pcache_pread(fd, rbuf, 0, 0), 0);		/* zero length */
	CHECK_EQ(pcache_pwrite(fd, wbuf, 0, 50000), 0);	/* zero length does not extend */
	CHECK_EQ(fsize(fd), 10000);
	/* straddling EOF: short, up to EOF */
	CHECK_EQ(pcache_pread(fd, rbuf, 100, 9950), 50);
	CHECK_EQ(pattern_check(rbuf, 50, 5, 9950), -1);
	CHECK_EQ(pcache_pread(fd, rbuf, MiB, 4096), 10000 - 4096);
	CHECK_EQ(pattern_check(rbuf, 10000 - 4096, 5, 4096), -1);
	close_ok(fd);

	/* a write at 1 MiB into an empty file: everything before reads as zeroes */
	fd = open_new(pc, "hole");
	put(fd, 6, MiB, 10);
	CHECK_EQ(fsize(fd), MiB + 10);
	memset(rbuf, 0xee, MiB + 10);
	CHECK_EQ(pcache_pread(fd, rbuf, MiB + 10, 0), MiB + 10);
	check_range(rbuf, MiB, 0, 0, "hole", MiB, 10, -1);
	CHECK_EQ(pattern_check(rbuf + MiB, 10, 6, MiB), -1);
	/* filling part of the hole leaves the rest zero */
	put(fd, 7, 3 * PAGE + 11, 5000);
	EXPECT(fd, 0, 0, 3 * PAGE + 11);
	EXPECT(fd, 7, 3 * PAGE + 11, 5000);
	EXPECT(fd, 0, 3 * PAGE + 11 + 5000, MiB - (3 * PAGE + 11 + 5000));
	EXPECT(fd, 6, MiB, 10);
	close_ok(fd);
	destroy(pc);
}

/* ---- vectors ----------------------------------------------------------- */

/* Segment lengths, ended by -1. */
static const long iov_shapes[][12] = {
	{ 1, -1 },
	{ 0, -1 },
	{ 0, 5, 0, -1 },
	{ 4096, -1 },
	{ 4095, 1, 4097, -1 },
	{ 0, 0, 0, 8192, 0, 3, -1 },
	{ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -1 },
	{ 100, 0, 5000, 0, 1, 0, 12289, -1 },
	{ MiB / 2, 0, MiB / 2 + 3, -1 },
};
static const off_t iov_offsets[] = { 0, 1, 4095, 10000 };

static void test_iov(void)
{
	struct pcache *pc = default_cache();
	unsigned tag = 300;

	for (size_t i = 0; i < NELEM(iov_shapes); i++) {
		for (size_t k = 0; k < NELEM(iov_offsets); k++, tag++) {
			struct iovec iov[12];
			off_t off = iov_offsets[k];
			size_t total = 0, pos = 0;
			int n = 0;
			int fd = open_new(pc, "iov");

			/* source segments sit 13 bytes apart in wbuf */
			for (n = 0; iov_shapes[i][n] >= 0; n++) {
				size_t l = iov_shapes[i][n];

				iov[n].iov_base = wbuf + pos;
				iov[n].iov_len = l;
				pattern_fill(wbuf + pos, l, tag, off + total);
				pos += l + 13;
				total += l;
			}
			CHECK(pcache_pwritev(fd, iov, n, off) == (ssize_t)total,
			      "pwritev shape %zu off %lld", i, (long long)off);
			CHECK_EQ(fsize(fd), total ? off + total : 0);
			if (total) {
				EXPECT(fd, 0, 0, off);
				EXPECT(fd, tag, off, total);
			}

			/* read back with the same shape into gapped buffers */
			memset(rbuf, 0xee, pos + 16);
			pos = 0;
			for (int j = 0; j < n; j++) {
				iov[j].iov_base = rbuf + pos;
				pos += iov[j].iov_len + 13;
			}
			CHECK(pcache_preadv(fd, iov, n, off) == (ssize_t)total,
			      "preadv shape %zu off %lld", i, (long long)off);
			size_t at = 0;
			pos = 0;
			for (int j = 0; j < n; j++) {
				size_t l = iov[j].iov_len;

				CHECK(pattern_check(rbuf + pos, l, tag, off + at) < 0,
				      "preadv shape %zu seg %d", i, j);
				for (int g = 0; g < 13; g++)
					CHECK(rbuf[pos + l + g] == 0xee,
					      "preadv shape %zu wrote the gap after seg %d", i, j);
				pos += l + 13;
				at += l;
			}

			/* readv/writev at the file position */
			CHECK_EQ(pcache_lseek(fd, off, SEEK_SET), off);
			CHECK(pcache_readv(fd, iov, n) == (ssize_t)total, "readv shape %zu", i);
			CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), off + total);
			CHECK_EQ(pcache_lseek(fd, 0, SEEK_END), total ? off + total : 0);
			pos = 0;
			for (int j = 0; j < n; j++) {
				iov[j].iov_base = wbuf + pos;
				pattern_fill(wbuf + pos, iov[j].iov_len, tag + 1000,
					     (total ? off + total : 0) + pos - 13 * j);
				pos += iov[j].iov_len + 13;
			}
			CHECK(pcache_writev(fd, iov, n) == (ssize_t)total, "writev shape %zu", i);
			if (total) {
				EXPECT(fd, tag, off, total);
				EXPECT(fd, tag + 1000, off + total, total);
			}
			close_ok(fd);
		}
	}
	destroy(pc);
}

/* ---- file position, lseek --------------------------------------------- */

static void test_lseek(void)
{
	struct pcache *pc = default_cache();
	int fd = open_new(pc, "pos");
	off_t r;

	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 0);
	pattern_fill(wbuf, 5000, 20, 0);
	CHECK_EQ(pcache_write(fd, wbuf, 3000), 3000);
	CHECK_EQ(pcache_write(fd, wbuf + 3000, 2000), 2000);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 5000);
	CHECK_EQ(pcache_read(fd, rbuf, 100), 0);	/* at EOF */
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_SET), 0);
	CHECK_EQ(pcache_read(fd, rbuf, 4000), 4000);
	CHECK_EQ(pcache_read(fd, rbuf + 4000, 4000), 1000);
	CHECK_EQ(pattern_check(rbuf, 5000, 20, 0), -1);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 5000);

	CHECK_EQ(pcache_lseek(fd, 100, SEEK_SET), 100);
	CHECK_EQ(pcache_lseek(fd, 50, SEEK_CUR), 150);
	CHECK_EQ(pcache_lseek(fd, -20, SEEK_CUR), 130);
	CHECK_EQ(pcache_read(fd, rbuf, 10), 10);
	CHECK_EQ(pattern_check(rbuf, 10, 20, 130), -1);
	CHECK_EQ(pcache_lseek(fd, -100, SEEK_END), 4900);
	CHECK_EQ(pcache_read(fd, rbuf, 1000), 100);
	CHECK_EQ(pattern_check(rbuf, 100, 20, 4900), -1);
	/* pread/pwrite leave the position alone */
	CHECK_EQ(pcache_pread(fd, rbuf, 10, 0), 10);
	CHECK_EQ(pcache_pwrite(fd, wbuf, 10, 0), 10);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 5000);

	/* a position past EOF is allowed; a write there leaves a hole */
	CHECK_EQ(pcache_lseek(fd, 1000, SEEK_END), 6000);
	CHECK_EQ(fsize(fd), 5000);
	pattern_fill(wbuf, 10, 21, 6000);
	CHECK_EQ(pcache_write(fd, wbuf, 10), 10);
	CHECK_EQ(fsize(fd), 6010);
	EXPECT(fd, 0, 5000, 1000);
	EXPECT(fd, 21, 6000, 10);

	/* negative results and bad whence: -EINVAL, position unchanged */
	CHECK_EQ(pcache_lseek(fd, 7, SEEK_SET), 7);
	CHECK_EQ(pcache_lseek(fd, -1, SEEK_SET), -EINVAL);
	CHECK_EQ(pcache_lseek(fd, -8, SEEK_CUR), -EINVAL);
	CHECK_EQ(pcache_lseek(fd, -6011, SEEK_END), -EINVAL);
	CHECK_EQ(pcache_lseek(fd, LLONG_MIN, SEEK_CUR), -EINVAL);
	CHECK_EQ(pcache_lseek(fd, 0, 42), -EINVAL);
	CHECK_EQ(pcache_lseek(fd, 0, -1), -EINVAL);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 7);
	CHECK_EQ(pcache_lseek(fd, -6010, SEEK_END), 0);

	/* overflowing the position: -EINVAL or -EOVERFLOW, never a wrap */
	r = pcache_lseek(fd, LLONG_MAX - 1, SEEK_SET);
	CHECK(r == LLONG_MAX - 1 || r == -EINVAL, "lseek to LLONG_MAX-1: %lld", (long long)r);
	if (r < 0)
		CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 0);
	r = pcache_lseek(fd, LLONG_MAX, SEEK_END);
	CHECK(r == -EINVAL || r == -EOVERFLOW, "SEEK_END + LLONG_MAX: %lld", (long long)r);
	CHECK_EQ(pcache_lseek(fd, 3, SEEK_SET), 3);
	r = pcache_lseek(fd, LLONG_MAX, SEEK_CUR);
	CHECK(r == -EINVAL || r == -EOVERFLOW, "SEEK_CUR + LLONG_MAX: %lld", (long long)r);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 3);

	/* SEEK_DATA / SEEK_HOLE on a fully written file */
	close_ok(fd);
	fd = open_new(pc, "pos");
	put(fd, 22, 0, 10000);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_DATA), 0);
	CHECK_EQ(pcache_lseek(fd, 5000, SEEK_DATA), 5000);
	CHECK_EQ(pcache_lseek(fd, 9999, SEEK_DATA), 9999);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_HOLE), 10000);
	CHECK_EQ(pcache_lseek(fd, 9999, SEEK_HOLE), 10000);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 10000);	/* it moved the position */
	CHECK_EQ(pcache_lseek(fd, 123, SEEK_SET), 123);
	CHECK_EQ(pcache_lseek(fd, 10000, SEEK_DATA), -ENXIO);
	CHECK_EQ(pcache_lseek(fd, 10000, SEEK_HOLE), -ENXIO);
	CHECK_EQ(pcache_lseek(fd, 20000, SEEK_DATA), -ENXIO);
	CHECK_EQ(pcache_lseek(fd, 20000, SEEK_HOLE), -ENXIO);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 123);
	/* a file with a leading hole: answers inside the file */
	put(fd, 22, MiB, 10);
	r = pcache_lseek(fd, 0, SEEK_DATA);
	CHECK(r >= 0 && r <= MiB, "SEEK_DATA over a hole: %lld", (long long)r);
	r = pcache_lseek(fd, 0, SEEK_HOLE);
	CHECK(r >= 0 && r <= MiB + 10, "SEEK_HOLE: %lld", (long long)r);
	r = pcache_lseek(fd, MiB + 5, SEEK_DATA);
	CHECK_EQ(r, MiB + 5);
	r = pcache_lseek(fd, MiB + 5, SEEK_HOLE);
	CHECK_EQ(r, MiB + 10);
	close_ok(fd);

	/* an empty file has neither data nor holes */
	fd = open_new(pc, "empty");
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_DATA), -ENXIO);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_HOLE), -ENXIO);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_END), 0);
	close_ok(fd);
	destroy(pc);
}

/* ---- O_APPEND ---------------------------------------------------------- */

static void test_append(void)
{
	struct pcache *pc = default_cache();
	int fd = open_new(pc, "app"), afd;

	put(fd, 30, 0, 1000);
	afd = pcache_open(pc, "app", O_WRONLY | O_APPEND, 0);
	CHECK(afd >= 0, "open O_APPEND: %d", afd);

	/* pwrite at 0 lands at EOF, as on Linux */
	pattern_fill(wbuf, 100, 31, 1000);
	CHECK_EQ(pcache_pwrite(afd, wbuf, 100, 0), 100);
	CHECK_EQ(fsize(fd), 1100);
	EXPECT(fd, 30, 0, 1000);
	EXPECT(fd, 31, 1000, 100);

	/* write at position 0 lands at EOF and leaves the position there */
	CHECK_EQ(pcache_lseek(afd, 0, SEEK_SET), 0);
	pattern_fill(wbuf, 5000, 32, 1100);
	CHECK_EQ(pcache_write(afd, wbuf, 5000), 5000);
	CHECK_EQ(pcache_lseek(afd, 0, SEEK_CUR), 6100);
	CHECK_EQ(fsize(fd), 6100);
	EXPECT(fd, 30, 0, 1000);
	EXPECT(fd, 31, 1000, 100);
	EXPECT(fd, 32, 1100, 5000);

	/* another descriptor extends the file; the appender follows the new EOF */
	put(fd, 33, 6100, 10);
	struct iovec iov[3] = { { wbuf, 3 }, { wbuf + 3, 0 }, { wbuf + 3, 4096 } };
	pattern_fill(wbuf, 4099, 34, 6110);
	CHECK_EQ(pcache_pwritev(afd, iov, 3, 17), 4099);
	CHECK_EQ(fsize(fd), 6110 + 4099);
	EXPECT(fd, 33, 6100, 10);
	EXPECT(fd, 34, 6110, 4099);
	pattern_fill(wbuf, 4099, 35, 6110 + 4099);
	CHECK_EQ(pcache_writev(afd, iov, 3), 4099);
	CHECK_EQ(pcache_lseek(afd, 0, SEEK_CUR), 6110 + 2 * 4099);
	EXPECT(fd, 35, 6110 + 4099, 4099);
	close_ok(afd);

	/* O_APPEND|O_RDWR: reads use the position, writes go to EOF */
	afd = pcache_open(pc, "app", O_RDWR | O_APPEND, 0);
	CHECK(afd >= 0, "open O_RDWR|O_APPEND: %d", afd);
	CHECK_EQ(pcache_read(afd, rbuf, 1000), 1000);
	CHECK_EQ(pattern_check(rbuf, 1000, 30, 0), -1);
	off_t end = fsize(fd);
	pattern_fill(wbuf, 1, 36, end);
	CHECK_EQ(pcache_write(afd, wbuf, 1), 1);
	CHECK_EQ(pcache_lseek(afd, 0, SEEK_CUR), end + 1);
	EXPECT(fd, 36, end, 1);
	EXPECT(fd, 30, 0, 1000);
	close_ok(afd);
	close_ok(fd);
	destroy(pc);
}

/* ---- ftruncate --------------------------------------------------------- */

static void test_ftruncate(void)
{
	struct pcache *pc = default_cache();
	int fd = open_new(pc, "tr"), rfd;
	static const off_t cuts[] = { 5000, 4096, 4095, 1, 8191, 8193 };

	for (size_t i = 0; i < NELEM(cuts); i++) {
		off_t cut = cuts[i];

		CHECK_EQ(pcache_ftruncate(fd, 0), 0);
		put(fd, 40 + i, 0, 3 * PAGE);
		CHECK_EQ(pcache_ftruncate(fd, cut), 0);
		CHECK_EQ(fsize(fd), cut);
		CHECK_EQ(pcache_pread(fd, rbuf, 3 * PAGE, 0), cut);
		CHECK_EQ(pattern_check(rbuf, cut, 40 + i, 0), -1);
		/* extend: the old tail of the last partial page must read zero */
		CHECK_EQ(pcache_ftruncate(fd, 3 * PAGE), 0);
		CHECK_EQ(fsize(fd), 3 * PAGE);
		EXPECT(fd, 40 + i, 0, cut);
		EXPECT(fd, 0, cut, 3 * PAGE - cut);
		/* extending by a write past EOF must not resurrect it either */
		CHECK_EQ(pcache_ftruncate(fd, cut), 0);
		put(fd, 50 + i, 3 * PAGE, 1);
		EXPECT(fd, 40 + i, 0, cut);
		EXPECT(fd, 0, cut, 3 * PAGE - cut);
		EXPECT(fd, 50 + i, 3 * PAGE, 1);
	}

	/* extend an empty file: zeroes */
	CHECK_EQ(pcache_ftruncate(fd, 0), 0);
	CHECK_EQ(fsize(fd), 0);
	CHECK_EQ(pcache_pread(fd, rbuf, 10, 0), 0);
	CHECK_EQ(pcache_ftruncate(fd, MiB + 3), 0);
	CHECK_EQ(fsize(fd), MiB + 3);
	EXPECT(fd, 0, 0, MiB + 3);
	CHECK_EQ(pcache_ftruncate(fd, MiB + 3), 0);	/* same size: no-op */
	CHECK_EQ(fsize(fd), MiB + 3);

	/* to zero after data */
	put(fd, 60, 0, 2 * PAGE);
	CHECK_EQ(pcache_ftruncate(fd, 0), 0);
	CHECK_EQ(fsize(fd), 0);
	CHECK_EQ(pcache_pread(fd, rbuf, 10, 0), 0);
	CHECK_EQ(pcache_ftruncate(fd, 2 * PAGE), 0);
	EXPECT(fd, 0, 0, 2 * PAGE);

	CHECK_EQ(pcache_ftruncate(fd, -1), -EINVAL);
	CHECK_EQ(pcache_ftruncate(fd, LLONG_MIN), -EINVAL);
	CHECK_EQ(fsize(fd), 2 * PAGE);

	rfd = pcache_open(pc, "tr", O_RDONLY, 0);
	CHECK(rfd >= 0, "open O_RDONLY: %d", rfd);
	CHECK_EQ(pcache_ftruncate(rfd, 0), -EINVAL);
	CHECK_EQ(fsize(fd), 2 * PAGE);
	close_ok(rfd);
	close_ok(fd);
	destroy(pc);

	/* beyond the maximum file size */
	pc = new_cache(0, MiB, -1);
	fd = open_new(pc, "tr");
	CHECK_EQ(pcache_ftruncate(fd, MiB + 1), -EFBIG);
	CHECK_EQ(pcache_ftruncate(fd, 2 * MiB), -EFBIG);
	CHECK_EQ(pcache_ftruncate(fd, LLONG_MAX), -EFBIG);
	CHECK_EQ(fsize(fd), 0);
	CHECK_EQ(pcache_ftruncate(fd, MiB), 0);
	CHECK_EQ(fsize(fd), MiB);
	close_ok(fd);
	destroy(pc);
}

/* ---- -EFBIG ---------------------------------------------------------- */

static void test_efbig_max_size(void)
{
	struct pcache *pc = new_cache(0, MiB, -1);
	int fd = open_new(pc, "big");

	CHECK_EQ(pcache_pwrite(fd, wbuf, 1, MiB), -EFBIG);
	CHECK_EQ(pcache_pwrite(fd, wbuf, 4096, MiB + 4096), -EFBIG);
	CHECK_EQ(fsize(fd), 0);

	/* straddling: short up to the limit */
	pattern_fill(wbuf, 4096, 70, MiB - 100);
	CHECK_EQ(pcache_pwrite(fd, wbuf, 4096, MiB - 100), 100);
	CHECK_EQ(fsize(fd), MiB);
	EXPECT(fd, 70, MiB - 100, 100);
	EXPECT(fd, 0, 0, MiB - 100);
	CHECK_EQ(pcache_pwrite(fd, wbuf, 1, MiB), -EFBIG);

	/* vectors straddle the same way */
	CHECK_EQ(pcache_ftruncate(fd, 0), 0);
	struct iovec iov[2] = { { wbuf, 3000 }, { wbuf + 3000, 3000 } };
	pattern_fill(wbuf, 6000, 71, MiB - 4000);
	CHECK_EQ(pcache_pwritev(fd, iov, 2, MiB - 4000), 4000);
	CHECK_EQ(fsize(fd), MiB);
	EXPECT(fd, 71, MiB - 4000, 4000);

	/* writing the whole maximum works */
	CHECK_EQ(pcache_ftruncate(fd, 0), 0);
	pattern_fill(wbuf, MiB + 10, 72, 0);
	CHECK_EQ(pcache_pwrite(fd, wbuf, MiB + 10, 0), MiB);
	EXPECT(fd, 72, 0, MiB);

	/* and the file position at the limit */
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_END), MiB);
	CHECK_EQ(pcache_write(fd, wbuf, 1), -EFBIG);
	close_ok(fd);
	destroy(pc);
}

/* RLIMIT_FSIZE, in a child so the limit stays there. */
static int rlimit_child(void)
{
	struct rlimit rl = { 64 * KiB, 64 * KiB };
	struct pcache *pc;
	int fd;

	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl))
		return 77;
	pc = default_cache();
	fd = open_new(pc, "rl");
	pattern_fill(wbuf, 1000, 80, 64 * KiB - 10);
	CHECK_EQ(pcache_pwrite(fd, wbuf, 1000, 64 * KiB - 10), 10);
	CHECK_EQ(fsize(fd), 64 * KiB);
	EXPECT(fd, 80, 64 * KiB - 10, 10);
	CHECK_EQ(pcache_pwrite(fd, wbuf, 1, 64 * KiB), -EFBIG);
	CHECK_EQ(pcache_pwrite(fd, wbuf, 100, 128 * KiB), -EFBIG);
	CHECK_EQ(pcache_ftruncate(fd, 128 * KiB), -EFBIG);
	CHECK_EQ(fsize(fd), 64 * KiB);
	/* below the limit all is normal */
	pattern_fill(wbuf, 100, 81, 0);
	CHECK_EQ(pcache_pwrite(fd, wbuf, 100, 0), 100);
	EXPECT(fd, 81, 0, 100);
	close_ok(fd);
	destroy(pc);
	return test_failures ? 1 : 0;
}

static void run_in_child(const char *what, int (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		CHECK(0, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		alarm(60);
		_exit(fn());
	}
	if (waitpid(pid, &status, 0) != pid) {
		CHECK(0, "waitpid: %s", strerror(errno));
		return;
	}
	if (WIFSIGNALED(status))
		CHECK(0, "%s: child killed by signal %d", what, WTERMSIG(status));
	else if (WEXITSTATUS(status) == 77)
		fprintf(stderr, "note: %s skipped\n", what);
	else
		CHECK(WEXITSTATUS(status) == 0, "%s: child failed", what);
}

/* ---- fsync, fstat, unlink, list -------------------------------------- */

struct listing {
	int calls;
	int n;
	char names[16][300];
	off_t sizes[16];
	int stop_with;
};

static int list_cb(void *arg, const char *name, const struct stat *st)
{
	struct listing *l = arg;

	l->calls++;
	if (l->n < 16) {
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
		l->sizes[l->n] = S_ISREG(st->st_mode) ? st->st_size : -1;
		l->n++;
	}
	return l->stop_with;
}

static int listed_size(const struct listing *l, const char *name)
{
	int found = 0;
	off_t size = -2;

	for (int i = 0; i < l->n; i++)
		if (strcmp(l->names[i], name) == 0) {
			found++;
			size = l->sizes[i];
		}
	CHECK(found <= 1, "%s listed %d times", name, found);
	return found ? size : -2;
}

static void test_sync_stat_unlink_list(void)
{
	struct pcache *pc = default_cache();
	struct listing l;
	struct stat st;
	static const struct { const char *name; off_t size; } files[] = {
		{ "zero", 0 }, { "one", 1 }, { "page+1", 4097 }, { "mib", MiB },
	};
	int fds[4], fd;

	for (int i = 0; i < 4; i++) {
		fds[i] = open_new(pc, files[i].name);
		if (files[i].size)
			put(fds[i], 90 + i, 0, files[i].size);
		CHECK_EQ(pcache_fsync(fds[i]), 0);
		CHECK_EQ(pcache_fdatasync(fds[i]), 0);
		memset(&st, 0xff, sizeof(st));
		CHECK_EQ(pcache_fstat(fds[i], &st), 0);
		CHECK_EQ(st.st_size, files[i].size);
		CHECK(S_ISREG(st.st_mode), "%s: mode %o", files[i].name, st.st_mode);
		CHECK_EQ(st.st_nlink, 1);
		CHECK(st.st_blocks >= 0, "st_blocks %lld", (long long)st.st_blocks);
	}

	memset(&l, 0, sizeof(l));
	CHECK_EQ(pcache_list(pc, list_cb, &l), 0);
	CHECK_EQ(l.n, 4);
	for (int i = 0; i < 4; i++)
		CHECK(listed_size(&l, files[i].name) == files[i].size, "%s listed with size %d",
		      files[i].name, listed_size(&l, files[i].name));

	/* stop early: the callback's value comes back */
	static const int stops[] = { 42, -123, 1 };
	for (int i = 0; i < 3; i++) {
		memset(&l, 0, sizeof(l));
		l.stop_with = stops[i];
		CHECK_EQ(pcache_list(pc, list_cb, &l), stops[i]);
		CHECK_EQ(l.calls, 1);
	}
	CHECK_EQ(pcache_list(NULL, list_cb, &l), -EINVAL);

	/* unlink: gone from the namespace, the open descriptor keeps working */
	fd = fds[2];
	CHECK_EQ(pcache_unlink(pc, "page+1"), 0);
	memset(&l, 0, sizeof(l));
	CHECK_EQ(pcache_list(pc, list_cb, &l), 0);
	CHECK_EQ(l.n, 3);
	CHECK_EQ(listed_size(&l, "page+1"), -2);
	CHECK_EQ(pcache_open(pc, "page+1", O_RDWR, 0), -ENOENT);
	CHECK_EQ(pcache_unlink(pc, "page+1"), -ENOENT);
	EXPECT(fd, 92, 0, 4097);
	put(fd, 99, 4097, 5000);
	EXPECT(fd, 99, 4097, 5000);
	EXPECT(fd, 92, 0, 4097);
	CHECK_EQ(pcache_fstat(fd, &st), 0);
	CHECK_EQ(st.st_size, 9097);
	CHECK_EQ(st.st_nlink, 0);
	CHECK_EQ(pcache_fsync(fd), 0);

	/* the name can be created again, as a new empty file */
	int nfd = pcache_open(pc, "page+1", O_RDWR | O_CREAT | O_EXCL, 0644);
	CHECK(nfd >= 0, "re-create: %d", nfd);
	CHECK_EQ(fsize(nfd), 0);
	put(nfd, 98, 0, 10);
	EXPECT(fd, 92, 0, 4097);		/* the old file is separate */
	CHECK_EQ(fsize(fd), 9097);
	close_ok(nfd);
	close_ok(fd);

	CHECK_EQ(pcache_unlink(pc, "never"), -ENOENT);
	CHECK_EQ(pcache_unlink(pc, ""), -ENOENT);
	CHECK_EQ(pcache_unlink(pc, "."), -EISDIR);
	CHECK_EQ(pcache_unlink(pc, "/"), -EISDIR);
	CHECK_EQ(pcache_unlink(pc, NULL), -EFAULT);
	CHECK_EQ(pcache_unlink(NULL, "zero"), -EINVAL);
	char name[300];
	memset(name, 'x', sizeof(name));
	name[256] = '\0';
	CHECK_EQ(pcache_unlink(pc, name), -ENAMETOOLONG);

	for (int i = 0; i < 4; i++)
		if (i != 2)
			close_ok(fds[i]);
	/* unlink of a closed file drops it */
	CHECK_EQ(pcache_unlink(pc, "mib"), 0);
	CHECK_EQ(pcache_open(pc, "mib", O_RDONLY, 0), -ENOENT);
	memset(&l, 0, sizeof(l));
	CHECK_EQ(pcache_list(pc, list_cb, &l), 0);
	CHECK_EQ(l.n, 3);
	CHECK_EQ(listed_size(&l, "zero"), 0);
	CHECK_EQ(listed_size(&l, "one"), 1);
	CHECK_EQ(listed_size(&l, "page+1"), 10);
	destroy(pc);

	/* files outlive their descriptors, within one cache */
	pc = default_cache();
	fd = open_new(pc, "keep");
	put(fd, 97, 0, 3 * PAGE + 1);
	close_ok(fd);
	fd = pcache_open(pc, "keep", O_RDONLY, 0);
	CHECK(fd >= 0, "reopen: %d", fd);
	EXPECT(fd, 97, 0, 3 * PAGE + 1);
	close_ok(fd);
	destroy(pc);
}

/* ---- stats ------------------------------------------------------------- */

static struct pcache_stats stats(struct pcache *pc)
{
	struct pcache_stats st;

	memset(&st, 0, sizeof(st));
	CHECK_EQ(pcache_stats(pc, &st), 0);
	return st;
}

static void test_stats(void)
{
	struct pcache *pc = new_cache(8 * MiB, 0, -1);
	struct pcache_stats a, b;
	int fd, fd2;

	a = stats(pc);
	CHECK_EQ(a.files_open, 0);
	CHECK_EQ(a.pages_cached, 0);
	CHECK_EQ(a.pages_dirty, 0);
	CHECK_EQ(a.mem_limit_pages, 8 * MiB / PAGE);

	fd = open_new(pc, "s");
	fd2 = pcache_open(pc, "s", O_RDONLY, 0);
	b = stats(pc);
	CHECK_EQ(b.files_open, 2);
	CHECK(b.inodes >= 1, "inodes %llu", (unsigned long long)b.inodes);

	put(fd, 100, 0, 3 * PAGE);
	b = stats(pc);
	CHECK(b.pages_cached >= a.pages_cached + 3, "pages_cached %llu",
	      (unsigned long long)b.pages_cached);
	CHECK(b.pages_dirty > 0, "pages_dirty %llu after a write", (unsigned long long)b.pages_dirty);
	CHECK_EQ(b.bytes_written - a.bytes_written, 3 * PAGE);
	CHECK(b.strategy[PCACHE_WRITE_BOUNCE].writes >= a.strategy[PCACHE_WRITE_BOUNCE].writes + 1,
	      "bounce writes not counted");
	CHECK_EQ(b.strategy[PCACHE_WRITE_BOUNCE].bytes - a.strategy[PCACHE_WRITE_BOUNCE].bytes, 3 * PAGE);

	CHECK_EQ(pcache_fsync(fd), 0);
	a = stats(pc);
	CHECK_EQ(a.pages_dirty, 0);
	CHECK(a.pages_cached >= 3, "pages_cached %llu after fsync", (unsigned long long)a.pages_cached);
	CHECK_EQ(pcache_pread(fd2, rbuf, 3 * PAGE + 100, 0), 3 * PAGE);
	b = stats(pc);
	CHECK_EQ(b.bytes_read - a.bytes_read, 3 * PAGE);
	CHECK_EQ(b.bytes_written, a.bytes_written);

	/* fdatasync cleans too */
	put(fd, 101, 5 * PAGE, 10);
	b = stats(pc);
	CHECK(b.pages_dirty > 0, "pages_dirty %llu", (unsigned long long)b.pages_dirty);
	CHECK_EQ(pcache_fdatasync(fd), 0);
	CHECK_EQ(stats(pc).pages_dirty, 0);

	close_ok(fd2);
	CHECK_EQ(stats(pc).files_open, 1);
	close_ok(fd);
	CHECK_EQ(stats(pc).files_open, 0);

	/* O_SYNC and O_DSYNC writes leave nothing dirty */
	static const int syncs[] = { O_SYNC, O_DSYNC };
	for (int i = 0; i < 2; i++) {
		fd = pcache_open(pc, "sync", O_RDWR | O_CREAT | syncs[i], 0644);
		CHECK(fd >= 0, "open O_SYNC: %d", fd);
		put(fd, 102 + i, 0, 2 * PAGE + 5);
		CHECK_EQ(stats(pc).pages_dirty, 0);
		EXPECT(fd, 102 + i, 0, 2 * PAGE + 5);
		close_ok(fd);
	}

	CHECK_EQ(pcache_stats(NULL, &a), -EINVAL);
	CHECK_EQ(pcache_stats(pc, NULL), -EINVAL);
	destroy(pc);
}

/* ---- names, strerror ---------------------------------------------------- */

static void test_names(void)
{
	static const char *const names[PCACHE_WRITE_NR] = {
		[PCACHE_WRITE_NAIVE] = "naive",
		[PCACHE_WRITE_BOUNCE] = "bounce",
		[PCACHE_WRITE_BOUNCE_OPT] = "bounce-opt",
		[PCACHE_WRITE_ATOMIC] = "atomic",
		[PCACHE_WRITE_OPTIMISTIC] = "optimistic",
	};

	for (int s = 0; s < PCACHE_WRITE_NR; s++) {
		const char *n = pcache_strategy_name(s);

		CHECK(n && strcmp(n, names[s]) == 0, "strategy %d named %s", s, n ? n : "(null)");
		CHECK_EQ(pcache_strategy_from_name(names[s]), s);
		if (n)
			CHECK_EQ(pcache_strategy_from_name(n), s);
	}
	CHECK(pcache_strategy_name(-1) == NULL, "name(-1)");
	CHECK(pcache_strategy_name(PCACHE_WRITE_NR) == NULL, "name(NR)");
	CHECK_EQ(pcache_strategy_from_name("nope"), -EINVAL);
	CHECK_EQ(pcache_strategy_from_name(""), -EINVAL);
	CHECK_EQ(pcache_strategy_from_name("bounce-"), -EINVAL);
	CHECK_EQ(pcache_strategy_from_name("bounc"), -EINVAL);

	static const int errs[] = { -ENOENT, -EINVAL, -EBADF, -EFAULT, -EFBIG, -ENOSPC, -EIO, -EBUSY };
	for (size_t i = 0; i < NELEM(errs); i++) {
		const char *t = pcache_strerror(errs[i]);

		CHECK(t && *t, "strerror(%d)", errs[i]);
	}
	CHECK(pcache_strerror(-ENOENT) && pcache_strerror(-EIO) &&
	      strcmp(pcache_strerror(-ENOENT), pcache_strerror(-EIO)) != 0, "strerror texts differ");
	CHECK(pcache_strerror(0) != NULL, "strerror(0)");
	CHECK(pcache_strerror(-99999) != NULL, "strerror(-99999)");
}

/* ---- memory limit ------------------------------------------------------ */

static void test_mem_limit(void)
{
	struct pcache *pc = new_cache(MiB, 0, -1);
	int fd = open_new(pc, "full");
	ssize_t n;

	pattern_fill(wbuf, 2 * MiB, 110, 0);
	n = pcache_pwrite(fd, wbuf, 2 * MiB, 0);
	CHECK(n > 0 && n <= MiB, "2 MiB into a 1 MiB cache: %zd", n);
	if (n <= 0)
		n = 0;
	CHECK_EQ(fsize(fd), n);
	CHECK_EQ(pcache_pwrite(fd, wbuf + n, 2 * MiB - n, n), -ENOSPC);
	CHECK_EQ(pcache_pwrite(fd, wbuf, PAGE, 4 * MiB), -ENOSPC);
	CHECK_EQ(fsize(fd), n);
	/* nothing that was accepted is lost */
	EXPECT(fd, 110, 0, n);
	CHECK_EQ(pcache_fsync(fd), 0);
	EXPECT(fd, 110, 0, n);
	/* overwriting cached pages needs no new page */
	pattern_fill(wbuf, 100, 111, 10);
	CHECK_EQ(pcache_pwrite(fd, wbuf, 100, 10), 100);
	EXPECT(fd, 111, 10, 100);
	EXPECT(fd, 110, 110, n - 110);
	close_ok(fd);

	/* unlinking the last reference gives the memory back */
	CHECK_EQ(pcache_unlink(pc, "full"), 0);
	fd = open_new(pc, "again");
	pattern_fill(wbuf, MiB / 2, 112, 0);
	CHECK_EQ(pcache_pwrite(fd, wbuf, MiB / 2, 0), MiB / 2);
	EXPECT(fd, 112, 0, MiB / 2);
	close_ok(fd);
	destroy(pc);
}

int main(void)
{
	wbuf = malloc(BUFSZ);
	rbuf = malloc(BUFSZ);
	if (!wbuf || !rbuf)
		TEST_SKIP("no memory for buffers");

	run_in_child("RLIMIT_FSIZE", rlimit_child);	/* first: before any library thread exists */
	test_create_destroy();
	test_open();
	test_emfile();
	test_rw_table();
	test_eof_and_holes();
	test_iov();
	test_lseek();
	test_append();
	test_ftruncate();
	test_efbig_max_size();
	test_sync_stat_unlink_list();
	test_stats();
	test_names();
	test_mem_limit();

	free(wbuf);
	free(rbuf);
	return test_exit();
}
