/*
 * test_badinput.c - bad input gets a clear error, never a crash, and
 * never costs data.
 *
 * Bad buffers (NULL, unmapped, PROT_NONE, half readable), bad vectors,
 * bad offsets and counts, and closed or made-up descriptors.  After every
 * group the file's bytes are compared with what it held before: a failed
 * or short call may only have written what it reported.
 */
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pcache.h"
#include "harness.h"

#define PAGE	4096
#define FSZ	(8 * PAGE)	/* size of the file the buffer cases overwrite */
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * An address in the kernel half.  AddressSanitizer's memcpy interceptor
 * aborts on it before the copy can fault (a "wild pointer"), so under ASan
 * a plain unmapped address stands in for it.
 */
#if defined(__SANITIZE_ADDRESS__)
#define KERNEL_PTR	((void *)0x2000)
#else
#define KERNEL_PTR	((void *)0xffff800000000000ull)
#endif

static unsigned char wbuf[4 * PAGE], rbuf[FSZ + 4 * PAGE];

static void *map(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		TEST_SKIP("mmap: %s", strerror(errno));
	return p;
}

/* An address that was mapped and is not any more. */
static void *unmapped(void)
{
	void *p = map(2 * PAGE, PROT_READ | PROT_WRITE);

	munmap(p, 2 * PAGE);
	return p;
}

static off_t fsize(int fd)
{
	struct stat st;

	CHECK_EQ(pcache_fstat(fd, &st), 0);
	return st.st_size;
}

/* The file must be @tag's pattern over [0, FSZ) and FSZ long. */
static void expect_intact(int fd, unsigned tag, int line)
{
	ssize_t n;
	long bad;

	memset(rbuf, 0, sizeof(rbuf));
	n = pcache_pread(fd, rbuf, sizeof(rbuf), 0);
	if (n != FSZ) {
		fprintf(stderr, "FAIL %s:%d: file size: read %zd, want %d\n", __FILE__, line, n, FSZ);
		test_failures++;
		return;
	}
	bad = pattern_check(rbuf, FSZ, tag, 0);
	if (bad >= 0) {
		fprintf(stderr, "FAIL %s:%d: file byte %ld is %#x, want %#x\n", __FILE__, line,
			bad, rbuf[bad], pattern_byte(tag, bad));
		test_failures++;
	}
}
#define EXPECT_INTACT(fd, tag) expect_intact(fd, tag, __LINE__)

static void refill(int fd, unsigned tag)
{
	static unsigned char b[FSZ];

	CHECK_EQ(pcache_ftruncate(fd, 0), 0);
	pattern_fill(b, FSZ, tag, 0);
	CHECK_EQ(pcache_pwrite(fd, b, FSZ, 0), FSZ);
}

/* Every call that takes a descriptor says -EBADF for @fd. */
static void expect_ebadf(int fd, const char *what)
{
	struct iovec iov = { wbuf, 10 };
	struct stat st;

#define BADF(call) CHECK((call) == -EBADF, "%s %d: %s = %lld", what, fd, #call, (long long)(call))
	BADF(pcache_pread(fd, rbuf, 10, 0));
	BADF(pcache_pwrite(fd, wbuf, 10, 0));
	BADF(pcache_read(fd, rbuf, 10));
	BADF(pcache_write(fd, wbuf, 10));
	BADF(pcache_preadv(fd, &iov, 1, 0));
	BADF(pcache_pwritev(fd, &iov, 1, 0));
	BADF(pcache_readv(fd, &iov, 1));
	BADF(pcache_writev(fd, &iov, 1));
	BADF(pcache_lseek(fd, 0, SEEK_SET));
	BADF(pcache_lseek(fd, 0, SEEK_END));
	BADF(pcache_ftruncate(fd, 0));
	BADF(pcache_fsync(fd));
	BADF(pcache_fdatasync(fd));
	BADF(pcache_fstat(fd, &st));
	BADF(pcache_close(fd));
	BADF(pcache_close(fd));
#undef BADF
}

static const int made_up[] = { -1, 0, 1, 2, 3, 12345678, INT_MAX, INT_MIN, -12345 };

static int list_nop(void *arg, const char *name, const struct stat *st)
{
	(void)arg, (void)name, (void)st;
	return 0;
}

/* ---- NULL cache, NULL names ------------------------------------------- */

static void test_null_args(struct pcache *pc)
{
	struct pcache_stats st;

	CHECK_EQ(pcache_open(NULL, "x", O_RDWR | O_CREAT, 0644), -EINVAL);
	CHECK_EQ(pcache_unlink(NULL, "x"), -EINVAL);
	CHECK_EQ(pcache_list(NULL, list_nop, NULL), -EINVAL);
	CHECK_EQ(pcache_stats(NULL, &st), -EINVAL);
	CHECK_EQ(pcache_destroy(NULL), -EINVAL);
	CHECK_EQ(pcache_open(pc, NULL, O_RDONLY, 0), -EFAULT);
	CHECK_EQ(pcache_unlink(pc, NULL), -EFAULT);
	CHECK(pcache_strategy_name(INT_MIN) == NULL, "name(INT_MIN)");
	CHECK(pcache_strerror(INT_MIN) != NULL, "strerror(INT_MIN)");
	CHECK(pcache_strerror(12345) != NULL, "strerror(12345)");

	struct pcache_config cfg;
	struct pcache *p2;
	pcache_config_init(&cfg);
	cfg.backend = "";
	CHECK_EQ(pcache_create(&cfg, &p2), -ENOENT);
}

/* ---- wholly bad buffers ------------------------------------------------ */

static void test_bad_buffers(struct pcache *pc, int fd, unsigned tag)
{
	void *none = map(2 * PAGE, PROT_NONE);
	void *ro = map(2 * PAGE, PROT_READ);
	void *const bad[] = { NULL, unmapped(), none, (void *)0x1000, KERNEL_PTR };
	static const off_t offs[] = { 0, 100, FSZ - 5, FSZ, FSZ + 3 * PAGE };

	for (size_t i = 0; i < NELEM(bad); i++) {
		for (size_t k = 0; k < NELEM(offs); k++) {
			off_t off = offs[k];
			struct iovec iov[2] = { { bad[i], 10 }, { wbuf, 10 } };

			CHECK(pcache_pwrite(fd, bad[i], 10, off) == -EFAULT, "pwrite buf %zu off %lld", i, (long long)off);
			CHECK(pcache_pwrite(fd, bad[i], 3 * PAGE, off) == -EFAULT, "pwrite buf %zu off %lld", i, (long long)off);
			CHECK(pcache_pwritev(fd, iov, 2, off) == -EFAULT, "pwritev buf %zu off %lld", i, (long long)off);
			if (off < FSZ) {
				CHECK(pcache_pread(fd, bad[i], 10, off) == -EFAULT, "pread buf %zu off %lld", i, (long long)off);
				CHECK(pcache_preadv(fd, iov, 2, off) == -EFAULT, "preadv buf %zu off %lld", i, (long long)off);
			} else {
				/* nothing to read: 0, or -EFAULT if checked first */
				ssize_t n = pcache_pread(fd, bad[i], 10, off);
				CHECK(n == 0 || n == -EFAULT, "pread at EOF buf %zu: %zd", i, n);
			}
			CHECK_EQ(fsize(fd), FSZ);	/* no i_size growth from a failed write */
		}
		/* at the file position: the position does not move */
		CHECK_EQ(pcache_lseek(fd, 7, SEEK_SET), 7);
		CHECK(pcache_write(fd, bad[i], 10) == -EFAULT, "write buf %zu", i);
		CHECK(pcache_read(fd, bad[i], 10) == -EFAULT, "read buf %zu", i);
		CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 7);
		EXPECT_INTACT(fd, tag);
	}
	CHECK_EQ(pcache_fstat(fd, NULL), -EFAULT);

	/* a read-only buffer can be written from, not read into */
	CHECK_EQ(pcache_pread(fd, ro, 10, 0), -EFAULT);
	CHECK_EQ(pcache_read(fd, ro, 10), -EFAULT);
	EXPECT_INTACT(fd, tag);
	CHECK_EQ(pcache_pwrite(fd, ro, 10, FSZ - 10), 10);	/* its zeroes are data */
	memset(rbuf, 0xee, 10);
	CHECK_EQ(pcache_pread(fd, rbuf, 10, FSZ - 10), 10);
	for (int i = 0; i < 10; i++)
		CHECK(rbuf[i] == 0, "byte %d of a write from a read-only buffer: %#x", i, rbuf[i]);
	refill(fd, tag);
	munmap(none, 2 * PAGE);
	munmap(ro, 2 * PAGE);
	(void)pc;
}

/*
 * Bad pointers the library must not dereference blindly: an unmapped
 * name, an unmapped vector array, a bad stat buffer.  Each runs in its own
 * child, so a crash is reported as a failure of that case alone.
 */
static const char *const pointer_cases[] = {
	"pcache_list(pc, NULL, NULL)",
	"pcache_strategy_from_name(NULL)",
	"pcache_open(pc, (char *)0x1000, O_RDONLY)",
	"pcache_open(pc, unmapped, O_RDWR | O_CREAT)",
	"pcache_open(pc, PROT_NONE, O_RDONLY)",
	"pcache_unlink(pc, unmapped)",
	"pcache_pwritev(fd, unmapped iov, 2)",
	"pcache_preadv(fd, unmapped iov, 2)",
	"pcache_writev(fd, PROT_NONE iov, 1)",
	"pcache_fstat(fd, unmapped)",
	"pcache_fstat(fd, read-only)",
	"pcache_fstat(fd, PROT_NONE)",
	"pcache_fstat(fd, (void *)0x1000)",
	"pcache_fstat(fd, kernel address)",
};
static const long pointer_want[] = {
	-EINVAL, -EINVAL, -EFAULT, -EFAULT, -EFAULT, -EFAULT, -EFAULT,
	-EFAULT, -EFAULT, -EFAULT, -EFAULT, -EFAULT, -EFAULT, -EFAULT,
};

static long pointer_case(int i, struct pcache *pc, int fd)
{
	void *gone = unmapped();
	void *ro = map(PAGE, PROT_READ);
	void *none = map(PAGE, PROT_NONE);

	switch (i) {
	case 0: return pcache_list(pc, NULL, NULL);
	case 1: return pcache_strategy_from_name(NULL);
	case 2: return pcache_open(pc, (const char *)0x1000, O_RDONLY, 0);
	case 3: return pcache_open(pc, gone, O_RDWR | O_CREAT, 0644);
	case 4: return pcache_open(pc, none, O_RDONLY, 0);
	case 5: return pcache_unlink(pc, gone);
	case 6: return pcache_pwritev(fd, gone, 2, 0);
	case 7: return pcache_preadv(fd, gone, 2, 0);
	case 8: return pcache_writev(fd, none, 1);
	case 9: return pcache_fstat(fd, gone);
	case 10: return pcache_fstat(fd, ro);
	case 11: return pcache_fstat(fd, none);
	case 12: return pcache_fstat(fd, (void *)0x1000);
	default: return pcache_fstat(fd, KERNEL_PTR);
	}
}

static void test_bad_pointers(struct pcache *pc, int fd)
{
	for (size_t i = 0; i < NELEM(pointer_cases); i++) {
		int status;
		pid_t pid;

		fflush(NULL);
		pid = fork();
		if (pid < 0) {
			CHECK(0, "fork: %s", strerror(errno));
			return;
		}
		if (pid == 0) {
			long r;

			alarm(30);
			r = pointer_case(i, pc, fd);
			if (r != pointer_want[i])
				fprintf(stderr, "FAIL %s: %ld, want %ld\n", pointer_cases[i], r, pointer_want[i]);
			_exit(r != pointer_want[i]);
		}
		if (waitpid(pid, &status, 0) != pid)
			CHECK(0, "waitpid: %s", strerror(errno));
		else if (WIFSIGNALED(status))
			CHECK(0, "%s: killed by signal %d", pointer_cases[i], WTERMSIG(status));
		else if (WEXITSTATUS(status))
			test_failures++;	/* the child said what */
	}
}

/* ---- half readable buffers: exact short counts ------------------------- */

static const size_t starts[] = { 0, 1, 100, 4095 };	/* buffer start in its first page */
static const off_t woffs[] = { 0, 1, 4095, 4096, 5000, FSZ - 10, FSZ, FSZ + 3000 };
static const size_t extras[] = { 1, 100, PAGE };	/* bytes asked beyond the good page */

static void test_partial_write(int fd, unsigned tag, int strategy)
{
	unsigned char *buf = map(2 * PAGE, PROT_READ | PROT_WRITE);
	unsigned ntag = tag + 1;

	memset(buf + PAGE, 0x5a, PAGE);
	mprotect(buf + PAGE, PAGE, PROT_NONE);
	/* kind 0: pwrite; kind 1: the same bytes through a vector */
	for (int kind = 0; kind < 2; kind++) {
		for (size_t i = 0; i < NELEM(starts); i++)
		for (size_t j = 0; j < NELEM(woffs); j++)
		for (size_t k = 0; k < NELEM(extras); k++) {
			size_t s = starts[i], good = PAGE - s, count = good + extras[k];
			off_t off = woffs[j], end = off + good;
			off_t size = end > FSZ ? end : FSZ;
			ssize_t n;

			refill(fd, tag);
			pattern_fill(buf + s, good, ntag, off);
			if (kind == 0) {
				n = pcache_pwrite(fd, buf + s, count, off);
			} else {
				/* good half, then the half that crosses into PROT_NONE */
				struct iovec iov[3] = {
					{ buf + s, good / 2 },
					{ buf + s + good / 2, good - good / 2 + extras[k] },
					{ wbuf, 10 },
				};
				n = pcache_pwritev(fd, iov, 3, off);
			}
			CHECK(n == (ssize_t)good, "strategy %d kind %d: write(buf+%zu, %zu, %lld) = %zd, want %zu",
			      strategy, kind, s, count, (long long)off, n, good);
			CHECK(fsize(fd) == size, "strategy %d kind %d: write(buf+%zu, %zu, %lld): size %lld, want %lld",
			      strategy, kind, s, count, (long long)off, (long long)fsize(fd), (long long)size);

			/* old | zeroes (hole) | new | old, nothing else */
			memset(rbuf, 0xee, sizeof(rbuf));
			CHECK_EQ(pcache_pread(fd, rbuf, sizeof(rbuf), 0), size);
			for (off_t b = 0; b < size; b++) {
				unsigned char want;

				if (b >= off && b < end)
					want = pattern_byte(ntag, b);
				else if (b < FSZ)
					want = pattern_byte(tag, b);
				else
					want = 0;
				if (rbuf[b] != want) {
					CHECK(0, "strategy %d kind %d: write(buf+%zu, %zu, %lld): byte %lld = %#x, want %#x (%s)",
					      strategy, kind, s, count, (long long)off, (long long)b,
					      rbuf[b], want, b >= end && b < FSZ ? "old data after the fault" :
					      b >= off && b < end ? "new data" : "outside the write");
					break;
				}
			}
		}
	}
	munmap(buf, 2 * PAGE);
}

static void test_partial_read(int fd, unsigned tag)
{
	unsigned char *buf = map(2 * PAGE, PROT_READ | PROT_WRITE);
	static const off_t roffs[] = { 0, 1, 4095, 4096, 5000 };

	refill(fd, tag);
	for (int kind = 0; kind < 2; kind++) {
		/* kind 0: second page PROT_NONE; kind 1: read-only */
		mprotect(buf + PAGE, PAGE, kind ? PROT_READ : PROT_NONE);
		for (size_t i = 0; i < NELEM(starts); i++)
		for (size_t j = 0; j < NELEM(roffs); j++) {
			size_t s = starts[i], good = PAGE - s;
			off_t off = roffs[j];
			ssize_t n;

			memset(buf, 0xee, PAGE);
			n = pcache_pread(fd, buf + s, 2 * PAGE, off);
			CHECK(n == (ssize_t)good, "kind %d: pread(buf+%zu, %d, %lld) = %zd, want %zu",
			      kind, s, 2 * PAGE, (long long)off, n, good);
			CHECK(pattern_check(buf + s, good, tag, off) < 0,
			      "kind %d: pread(buf+%zu, off %lld) bytes wrong", kind, s, (long long)off);

			/* vector: a good segment, then the half-bad one */
			struct iovec iov[2] = { { rbuf, 10 }, { buf + s, 2 * PAGE } };
			memset(buf, 0xee, PAGE);
			n = pcache_preadv(fd, iov, 2, off);
			CHECK(n == (ssize_t)(10 + good), "kind %d: preadv(10 + buf+%zu, %lld) = %zd, want %zu",
			      kind, s, (long long)off, n, 10 + good);
			CHECK(pattern_check(rbuf, 10, tag, off) < 0, "preadv first segment");
			CHECK(pattern_check(buf + s, good, tag, off + 10) < 0,
			      "kind %d: preadv(buf+%zu, off %lld) bytes wrong", kind, s, (long long)off);
		}
		/* when the file ends before the bad page, nothing faults */
		memset(buf, 0xee, PAGE);
		CHECK_EQ(pcache_pread(fd, buf + 100, 2 * PAGE, FSZ - 10), 10);
		CHECK_EQ(pattern_check(buf + 100, 10, tag, FSZ - 10), -1);
		/* the position moves by what was read */
		CHECK_EQ(pcache_lseek(fd, 3, SEEK_SET), 3);
		CHECK_EQ(pcache_read(fd, buf + 96, 2 * PAGE), PAGE - 96);
		CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 3 + PAGE - 96);
		CHECK_EQ(pattern_check(buf + 96, PAGE - 96, tag, 3), -1);
	}
	EXPECT_INTACT(fd, tag);
	munmap(buf, 2 * PAGE);
}

/* ---- vectors ------------------------------------------------------------ */

static void test_bad_iov(int fd, unsigned tag)
{
	int n = IOV_MAX + 1;
	struct iovec *iov = calloc(n, sizeof(*iov));
	void *gone = unmapped();

	refill(fd, tag);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_SET), 0);
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = wbuf + (i % 64);
		iov[i].iov_len = 1;
	}
	CHECK_EQ(pcache_pwritev(fd, iov, IOV_MAX + 1, 0), -EINVAL);
	CHECK_EQ(pcache_preadv(fd, iov, IOV_MAX + 1, 0), -EINVAL);
	CHECK_EQ(pcache_writev(fd, iov, IOV_MAX + 1), -EINVAL);
	CHECK_EQ(pcache_readv(fd, iov, IOV_MAX + 1), -EINVAL);
	CHECK_EQ(pcache_pwritev(fd, iov, INT_MAX, 0), -EINVAL);
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 0);
	EXPECT_INTACT(fd, tag);

	/* IOV_MAX itself is fine */
	for (int i = 0; i < IOV_MAX; i++) {
		iov[i].iov_base = rbuf + FSZ + i;
		iov[i].iov_len = 1;
	}
	CHECK_EQ(pcache_preadv(fd, iov, IOV_MAX, 0), IOV_MAX);
	CHECK_EQ(pattern_check(rbuf + FSZ, IOV_MAX, tag, 0), -1);
	for (int i = 0; i < IOV_MAX; i++)
		iov[i].iov_base = (void *)(rbuf + FSZ + i);
	CHECK_EQ(pcache_pwritev(fd, iov, IOV_MAX, 0), IOV_MAX);
	EXPECT_INTACT(fd, tag);

	CHECK_EQ(pcache_pwritev(fd, iov, -1, 0), -EINVAL);
	CHECK_EQ(pcache_preadv(fd, iov, -1, 0), -EINVAL);
	CHECK_EQ(pcache_writev(fd, iov, INT_MIN), -EINVAL);
	CHECK_EQ(pcache_readv(fd, iov, -1), -EINVAL);
	CHECK_EQ(pcache_pwritev(fd, iov, 0, 0), 0);
	CHECK_EQ(pcache_preadv(fd, iov, 0, 0), 0);
	CHECK_EQ(pcache_pwritev(fd, NULL, 0, 0), 0);

	CHECK_EQ(pcache_pwritev(fd, NULL, 1, 0), -EFAULT);
	CHECK_EQ(pcache_preadv(fd, NULL, 1, 0), -EFAULT);
	CHECK_EQ(pcache_writev(fd, NULL, 1), -EFAULT);
	CHECK_EQ(pcache_readv(fd, NULL, 1), -EFAULT);

	/* a negative (as ssize_t) length anywhere: -EINVAL, nothing written */
	static const size_t bad_lens[] = { (size_t)-1, (size_t)SSIZE_MAX + 1, (size_t)-4096 };
	for (size_t i = 0; i < NELEM(bad_lens); i++) {
		struct iovec v[3] = { { wbuf, 10 }, { wbuf, bad_lens[i] }, { wbuf, 10 } };

		pattern_fill(wbuf, 10, tag + 7, 0);
		CHECK(pcache_pwritev(fd, v + 1, 1, 0) == -EINVAL, "len %#zx alone", bad_lens[i]);
		CHECK(pcache_pwritev(fd, v, 3, 0) == -EINVAL, "len %#zx second", bad_lens[i]);
		CHECK(pcache_pwritev(fd, v, 3, FSZ) == -EINVAL, "len %#zx at EOF", bad_lens[i]);
		CHECK(pcache_preadv(fd, v, 3, 0) == -EINVAL, "preadv len %#zx", bad_lens[i]);
		CHECK(pcache_writev(fd, v, 3) == -EINVAL, "writev len %#zx", bad_lens[i]);
		CHECK(pcache_readv(fd, v, 3) == -EINVAL, "readv len %#zx", bad_lens[i]);
	}
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), 0);
	EXPECT_INTACT(fd, tag);

	/* zero-length segments are skipped, even with a bad base */
	struct iovec z[4] = { { NULL, 0 }, { wbuf, 10 }, { gone, 0 }, { wbuf + 10, 5 } };
	pattern_fill(wbuf, 15, tag, 100);	/* same bytes the file has */
	CHECK_EQ(pcache_pwritev(fd, z, 4, 100), 15);
	z[1].iov_base = rbuf + FSZ;
	z[3].iov_base = rbuf + FSZ + 10;
	CHECK_EQ(pcache_preadv(fd, z, 4, 100), 15);
	CHECK_EQ(pattern_check(rbuf + FSZ, 15, tag, 100), -1);
	EXPECT_INTACT(fd, tag);

	/* a good segment, then a NULL one: short count */
	struct iovec h[2] = { { wbuf, 100 }, { NULL, 100 } };
	pattern_fill(wbuf, 100, tag + 9, 50);
	CHECK_EQ(pcache_pwritev(fd, h, 2, 50), 100);
	memset(rbuf, 0, sizeof(rbuf));
	CHECK_EQ(pcache_pread(fd, rbuf, FSZ, 0), FSZ);
	CHECK_EQ(pattern_check(rbuf, 50, tag, 0), -1);
	CHECK_EQ(pattern_check(rbuf + 50, 100, tag + 9, 50), -1);
	CHECK_EQ(pattern_check(rbuf + 150, FSZ - 150, tag, 150), -1);
	h[0].iov_base = rbuf + FSZ;
	CHECK_EQ(pcache_preadv(fd, h, 2, 50), 100);
	CHECK_EQ(pattern_check(rbuf + FSZ, 100, tag + 9, 50), -1);
	free(iov);
}

/* ---- offsets and counts ------------------------------------------------ */

static void test_bad_offsets(int fd, unsigned tag)
{
	static const off_t negs[] = { -1, -4096, LLONG_MIN };
	struct iovec iov = { wbuf, 10 };
	ssize_t n;

	refill(fd, tag);
	for (size_t i = 0; i < NELEM(negs); i++) {
		CHECK(pcache_pwrite(fd, wbuf, 10, negs[i]) == -EINVAL, "pwrite at %lld", (long long)negs[i]);
		CHECK(pcache_pread(fd, rbuf, 10, negs[i]) == -EINVAL, "pread at %lld", (long long)negs[i]);
		CHECK(pcache_pwritev(fd, &iov, 1, negs[i]) == -EINVAL, "pwritev at %lld", (long long)negs[i]);
		CHECK(pcache_preadv(fd, &iov, 1, negs[i]) == -EINVAL, "preadv at %lld", (long long)negs[i]);
		CHECK(pcache_pwrite(fd, wbuf, 0, negs[i]) == -EINVAL, "pwrite 0 at %lld", (long long)negs[i]);
	}
	EXPECT_INTACT(fd, tag);

	/* offset + count overflows loff_t */
	n = pcache_pwrite(fd, wbuf, 100, LLONG_MAX - 10);
	CHECK(n == -EFBIG || n == -EINVAL, "pwrite at LLONG_MAX-10: %zd", n);
	n = pcache_pwritev(fd, &iov, 1, LLONG_MAX - 5);
	CHECK(n == -EFBIG || n == -EINVAL, "pwritev at LLONG_MAX-5: %zd", n);
	n = pcache_pwrite(fd, wbuf, 1, LLONG_MAX);
	CHECK(n == -EFBIG || n == -EINVAL, "pwrite at LLONG_MAX: %zd", n);
	n = pcache_pread(fd, rbuf, 100, LLONG_MAX - 10);
	CHECK(n == 0 || n == -EINVAL, "pread at LLONG_MAX-10: %zd", n);
	/* at the file position */
	off_t p = pcache_lseek(fd, LLONG_MAX - 10, SEEK_SET);
	if (p == LLONG_MAX - 10) {
		n = pcache_write(fd, wbuf, 100);
		CHECK(n == -EFBIG || n == -EINVAL, "write at position LLONG_MAX-10: %zd", n);
		CHECK_EQ(pcache_lseek(fd, 0, SEEK_CUR), LLONG_MAX - 10);
	}
	CHECK_EQ(pcache_lseek(fd, 0, SEEK_SET), 0);
	EXPECT_INTACT(fd, tag);

	/*
	 * Counts above SSIZE_MAX and above MAX_RW_COUNT: -EINVAL, or capped;
	 * the buffer has one good page followed by PROT_NONE, so a capped
	 * call moves exactly one page.
	 */
	unsigned char *g = map(2 * PAGE, PROT_READ | PROT_WRITE);
	mprotect(g + PAGE, PAGE, PROT_NONE);
	static const size_t counts[] = { (size_t)SSIZE_MAX + 1, SIZE_MAX, (size_t)INT_MAX + 1, (size_t)INT_MAX, 1ull << 40 };
	for (size_t i = 0; i < NELEM(counts); i++) {
		int may_einval = counts[i] > (size_t)SSIZE_MAX;

		pattern_fill(g, PAGE, tag, 0);	/* the bytes the file has */
		n = pcache_pwrite(fd, g, counts[i], 0);
		CHECK(n == PAGE || (may_einval && n == -EINVAL), "pwrite count %#zx: %zd", counts[i], n);
		EXPECT_INTACT(fd, tag);
		memset(g, 0, PAGE);
		n = pcache_pread(fd, g, counts[i], 0);
		CHECK(n == PAGE || (may_einval && n == -EINVAL), "pread count %#zx: %zd", counts[i], n);
		if (n == PAGE)
			CHECK_EQ(pattern_check(g, PAGE, tag, 0), -1);
		/* a vector segment of such a length */
		struct iovec v = { g, counts[i] };
		pattern_fill(g, PAGE, tag, 0);
		n = pcache_pwritev(fd, &v, 1, 0);
		/* here a length negative as ssize_t is -EINVAL, as the header says */
		CHECK(may_einval ? n == -EINVAL : n == PAGE, "pwritev len %#zx: %zd", counts[i], n);
		EXPECT_INTACT(fd, tag);
	}
	munmap(g, 2 * PAGE);
}

/* ---- descriptors -------------------------------------------------------- */

static void test_descriptors(struct pcache *pc, unsigned tag)
{
	int fd, ro, wo, a, b;

	/* access modes */
	ro = pcache_open(pc, "d", O_RDONLY, 0);
	wo = pcache_open(pc, "d", O_WRONLY, 0);
	CHECK(ro >= 0 && wo >= 0, "open: %d %d", ro, wo);
	struct iovec iov = { wbuf, 10 };
	CHECK_EQ(pcache_pwrite(ro, wbuf, 10, 0), -EBADF);
	CHECK_EQ(pcache_write(ro, wbuf, 10), -EBADF);
	CHECK_EQ(pcache_pwritev(ro, &iov, 1, 0), -EBADF);
	CHECK_EQ(pcache_writev(ro, &iov, 1), -EBADF);
	CHECK_EQ(pcache_pwrite(ro, NULL, 10, 0), -EBADF);	/* the descriptor is checked first */
	CHECK_EQ(pcache_pread(wo, rbuf, 10, 0), -EBADF);
	CHECK_EQ(pcache_read(wo, rbuf, 10), -EBADF);
	CHECK_EQ(pcache_preadv(wo, &iov, 1, 0), -EBADF);
	CHECK_EQ(pcache_readv(wo, &iov, 1), -EBADF);
	EXPECT_INTACT(ro, tag);
	CHECK_EQ(pcache_close(wo), 0);

	/* only ro is open now: values near it are all made up */
	static const int deltas[] = { 1, -1, 2, 64, 0x100, 0x10000, 0x100000, 0x1000000 };
	for (size_t i = 0; i < NELEM(deltas); i++) {
		int cand[3] = { ro + deltas[i], ro ^ deltas[i], ro ^ (int)((unsigned)deltas[i] << 7) };

		for (int c = 0; c < 3; c++)
			if (cand[c] != ro && cand[c] != wo)
				expect_ebadf(cand[c], "near a valid descriptor");
	}
	expect_ebadf(ro | INT_MIN, "valid with the sign bit");
	expect_ebadf(wo, "closed");
	EXPECT_INTACT(ro, tag);

	/* a closed descriptor stays bad after its slot is reused */
	a = ro;
	for (int round = 0; round < 200; round++) {
		CHECK_EQ(pcache_close(a), 0);
		b = pcache_open(pc, round & 1 ? "d" : "other", O_RDWR | O_CREAT, 0644);
		CHECK(b >= 0, "open: %d", b);
		CHECK(b != a, "round %d: reopened descriptor %d equals the closed one", round, b);
		if (b == a)
			break;
		expect_ebadf(a, "closed, slot reused");
		CHECK_EQ(pcache_pwrite(b, wbuf, 0, 0), 0);
		a = b;
	}
	CHECK_EQ(pcache_close(a), 0);
	expect_ebadf(a, "closed last");

	fd = pcache_open(pc, "d", O_RDONLY, 0);
	EXPECT_INTACT(fd, tag);	/* the stale descriptors wrote nothing */
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_close(fd), -EBADF);	/* double close */
	for (size_t i = 0; i < NELEM(made_up); i++)
		expect_ebadf(made_up[i], "made up, nothing open");
}

int main(void)
{
	struct pcache_config cfg;
	struct pcache *pc;
	unsigned tag = 1;
	int fd, rc;

	/* before the process opened anything, every number is made up */
	for (size_t i = 0; i < NELEM(made_up); i++)
		expect_ebadf(made_up[i], "before any open");

	pcache_config_init(&cfg);
	rc = pcache_create(&cfg, &pc);
	if (rc)
		TEST_SKIP("pcache_create: %d", rc);
	test_null_args(pc);

	fd = pcache_open(pc, "d", O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0, "open: %d", fd);
	refill(fd, tag);
	test_bad_buffers(pc, fd, tag);
	refill(fd, tag);
	test_partial_read(fd, tag);
	test_bad_iov(fd, tag);
	test_bad_offsets(fd, tag);
	refill(fd, tag);
	test_bad_pointers(pc, fd);
	EXPECT_INTACT(fd, tag);
	CHECK_EQ(pcache_close(fd), 0);
	test_descriptors(pc, tag);
	CHECK_EQ(pcache_destroy(pc), 0);

	/* half-readable sources, under every strategy that must be exact */
	for (int s = 0; s < PCACHE_WRITE_NR; s++) {
		if (s == PCACHE_WRITE_NAIVE)
			continue;	/* zero-pads on a fault by design */
		pcache_config_init(&cfg);
		cfg.write_strategy = s;
		rc = pcache_create(&cfg, &pc);
		if (rc == -EOPNOTSUPP) {
			fprintf(stderr, "note: strategy %s not built\n", pcache_strategy_name(s));
			continue;
		}
		CHECK_EQ(rc, 0);
		if (rc)
			continue;
		fd = pcache_open(pc, "p", O_RDWR | O_CREAT, 0644);
		CHECK(fd >= 0, "open: %d", fd);
		test_partial_write(fd, 20 + 2 * s, s);
		refill(fd, 40);
		test_bad_buffers(pc, fd, 40);
		CHECK_EQ(pcache_close(fd), 0);
		CHECK_EQ(pcache_destroy(pc), 0);
	}
	return test_exit();
}
