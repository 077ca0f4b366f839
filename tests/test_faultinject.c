/*
 * test_faultinject.c - -ENOMEM and failing system calls are clean errors:
 * never a crash, a leak, a wrong error or lost data.
 *
 *  (a) -ENOMEM at every allocation of a full scenario (create, open with
 *      O_CREAT, pwrite, pwritev with 3 and with 10 segments, a write 64 MiB
 *      away (new memfd chunk, taller index), pread, ftruncate both ways,
 *      fsync, fstat, pcache_list, unlink, close, destroy), for each write
 *      strategy, twice:
 *        - "paused": the injection covers the I/O calls only; then it stops,
 *          and the file must hold exactly what the calls said they wrote
 *          (a model of the file is kept), with no page cached past its end,
 *          or not exist if its open failed; cleanup runs without injection.
 *        - "through": the injection covers cleanup too (unlink, close,
 *          destroy); whatever failed is retried once the injection stops.
 *      Every call must succeed, return a short count, or return -ENOMEM.
 *      After each run: no descriptor, memfd mapping or heap block leaked
 *      (LeakSanitizer, in the ASan build), and a fresh run with no
 *      injection succeeds and produces the right bytes.
 *      The first open of the process (which allocates the descriptor
 *      table) is failed at each allocation too, and so is an O_CREAT open
 *      with the descriptor table full (-EMFILE): no file may be left behind.
 *  (b) the system-call table (base/sys.h), `sys` restored after each case:
 *      memfd_create failing (its errno comes back, no file, nothing leaked,
 *      lookups that need no memfd unaffected); ftruncate and mmap failing
 *      when a write needs a new chunk (-errno or a short count that matches
 *      the size and the bytes; a retry works); fallocate failing when
 *      truncate punches (the truncated bytes still never come back).
 *
 * PCACHE_TEST_VERBOSE=1 prints what failed first at each budget.
 * Runs in well under a second in every build.
 */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pcache.h"
#include "base/alloc.h"
#include "base/sys.h"
#include "harness.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#endif

#define PAGE		4096
#define CHUNK		(16 * 1024 * 1024)	/* PCACHE_CHUNK_SHIFT 24 */
#define FILE_MAX	(8 * PAGE)
#define FAR_OFF		((size_t)4 * CHUNK + 5)	/* a new chunk, a taller index */
#define FAR_LEN		(PAGE + 200)
#define MAX_ERRNO	4095
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- leak accounting outside the heap ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Mappings of pcache's memfds ("/memfd:pcache:<name> (deleted)"). */
static int count_memfd_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "memfd:pcache:"))
			n++;
	fclose(f);
	return n;
}

/* Heap leaks, right after the run that made them (ASan build only). */
static void check_heap_leaks(const char *ctx)
{
#ifdef HAVE_LSAN
	static bool lsan_reported;

	if (!lsan_reported && __lsan_do_recoverable_leak_check()) {
		lsan_reported = true;
		CHECK(0, "%s: LeakSanitizer found leaks (report above)", ctx);
	}
#else
	(void)ctx;
#endif
}

/* ---- a model of the one file a scenario works on ---- */

struct model {
	unsigned char data[FILE_MAX];	/* bytes [0, FILE_MAX) */
	unsigned char far[FAR_LEN];	/* bytes [FAR_OFF, FAR_OFF + FAR_LEN) */
	size_t size;			/* anything else below size is a hole */
};

static unsigned char *model_at(struct model *m, size_t off)
{
	if (off < FILE_MAX)
		return &m->data[off];
	if (off >= FAR_OFF && off < FAR_OFF + FAR_LEN)
		return &m->far[off - FAR_OFF];
	return NULL;
}

static unsigned char model_byte(struct model *m, size_t off)
{
	unsigned char *p = model_at(m, off);

	return p ? *p : 0;
}

static void model_write(struct model *m, const unsigned char *buf, size_t n,
			size_t off)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = model_at(m, off + i);

		assert(p);
		*p = buf[i];
	}
	if (off + n > m->size)
		m->size = off + n;
}

static void model_truncate(struct model *m, size_t len)
{
	for (size_t off = len; off < m->size; off++) {
		unsigned char *p = model_at(m, off);

		if (p)
			*p = 0;
		else if (off < FAR_OFF)
			off = FAR_OFF - 1;	/* skip the hole */
	}
	m->size = len;
}

/* Pages the file may have in the cache: those that were ever written. */
static uint64_t model_max_pages(const struct model *m)
{
	uint64_t near = m->size < FILE_MAX ? m->size : FILE_MAX, n;

	n = (near + PAGE - 1) / PAGE;
	if (m->size > FAR_OFF)
		n += (m->size - 1) / PAGE - FAR_OFF / PAGE + 1;
	return n;
}

/* ---- (a) -ENOMEM scenarios ---- */

struct run {
	const char *ctx;	/* "paused n=12 bounce" */
	long n;			/* injection budget; -1: none */
	int strategy;
	struct pcache *pc;
	int fd;			/* -1: not open */
	bool created;		/* the file exists (open O_CREAT succeeded) */
	bool unlinked;
	struct model m;
	int nfail;		/* calls that returned an error or a short count */
	char first_fail[96];
};

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

static bool is_errno(long rc)
{
	return rc < 0 && rc >= -MAX_ERRNO;
}

/*
 * The result of one call under injection: @rc is a byte count (0..@want)
 * or 0 for calls without one, or a negative errno, which must be -ENOMEM
 * (nothing else can fail here).  Returns true if the call failed.
 */
static bool account(struct run *r, const char *what, long rc, long want)
{
	bool failed = rc < 0 || rc < want;

	if (rc < 0)
		CHECK(rc == -ENOMEM, "%s: %s returned %ld (%s), want -ENOMEM or success",
		      r->ctx, what, rc, is_errno(rc) ? pcache_strerror((int)rc) : "not an errno");
	else
		CHECK(rc <= want, "%s: %s returned %ld, more than the %ld asked",
		      r->ctx, what, rc, want);
	if (r->n < 0)
		CHECK(!failed, "%s: %s returned %ld with no injection (want %ld)",
		      r->ctx, what, rc, want);
	if (failed && !r->nfail++)
		snprintf(r->first_fail, sizeof(r->first_fail), "%s -> %ld", what, rc);
	return failed;
}

/* Compare [off, off+len) of the file with the model; false if the read failed. */
static bool verify_range(struct run *r, const char *when, size_t off, size_t len,
			 bool must_read)
{
	static unsigned char buf[FILE_MAX + PAGE];
	size_t want = off >= r->m.size ? 0 : min_sz(len, r->m.size - off);
	ssize_t got;

	assert(len <= sizeof(buf));
	memset(buf, 0xee, len);
	got = pcache_pread(r->fd, buf, len, (off_t)off);
	if (got < 0 && !must_read) {
		account(r, "pread", got, 0);
		return false;
	}
	CHECK(got == (ssize_t)want, "%s: %s: pread(%zu, %zu) returned %zd, want %zu",
	      r->ctx, when, off, len, got, want);
	for (size_t i = 0; got > 0 && i < (size_t)got && i < want; i++) {
		if (buf[i] != model_byte(&r->m, off + i)) {
			CHECK(0, "%s: %s: byte at %zu is 0x%02x, want 0x%02x",
			      r->ctx, when, off + i, buf[i], model_byte(&r->m, off + i));
			break;
		}
	}
	return true;
}

/* The whole file against the model: size, every byte written, and EOF. */
static void verify_file(struct run *r, const char *when, bool must_read)
{
	struct stat st;
	int rc;

	if (!verify_range(r, when, 0, FILE_MAX + PAGE, must_read))
		return;
	if (r->m.size > FILE_MAX &&
	    !verify_range(r, when, FAR_OFF - PAGE, 2 * PAGE + FAR_LEN, must_read))
		return;
	rc = pcache_fstat(r->fd, &st);
	if (rc < 0 && !must_read) {
		account(r, "fstat", rc, 0);
		return;
	}
	CHECK(rc == 0 && (size_t)st.st_size == r->m.size,
	      "%s: %s: fstat rc %d size %lld, want size %zu",
	      r->ctx, when, rc, (long long)st.st_size, r->m.size);
	if (must_read) {
		/* No page was left behind past the end by a failed write. */
		struct pcache_stats ps;

		CHECK_EQ(pcache_stats(r->pc, &ps), 0);
		CHECK(ps.pages_cached <= model_max_pages(&r->m),
		      "%s: %s: %llu pages cached for a file of %zu bytes, at most %llu expected",
		      r->ctx, when, (unsigned long long)ps.pages_cached, r->m.size,
		      (unsigned long long)model_max_pages(&r->m));
	}
}

static void do_pwrite(struct run *r, const char *what, unsigned tag,
		      size_t len, size_t off)
{
	unsigned char buf[4 * PAGE + 200];
	ssize_t got;

	pattern_fill(buf, len, tag, off);
	got = pcache_pwrite(r->fd, buf, len, (off_t)off);
	account(r, what, got, (long)len);
	if (got > 0)
		model_write(&r->m, buf, (size_t)got, off);
}

static void do_pwritev(struct run *r, const char *what, unsigned tag,
		       const size_t *lens, int nseg, size_t off)
{
	unsigned char buf[4 * PAGE + 200], *p = buf;
	struct iovec iov[16];
	size_t total = 0;
	ssize_t got;

	for (int i = 0; i < nseg; i++) {
		iov[i].iov_base = p;
		iov[i].iov_len = lens[i];
		p += lens[i];
		total += lens[i];
	}
	pattern_fill(buf, total, tag, off);
	got = pcache_pwritev(r->fd, iov, nseg, (off_t)off);
	account(r, what, got, (long)total);
	if (got > 0)
		model_write(&r->m, buf, (size_t)got, off);
}

static void do_ftruncate(struct run *r, const char *what, size_t len)
{
	int rc = pcache_ftruncate(r->fd, (off_t)len);

	if (!account(r, what, rc, 0))
		model_truncate(&r->m, len);
}

struct list_arg {
	const char *name;
	int found;
	off_t size;
};

static int list_fn(void *arg, const char *name, const struct stat *st)
{
	struct list_arg *a = arg;

	if (!strcmp(name, a->name)) {
		a->found++;
		a->size = st->st_size;
	}
	return 0;
}

/* The I/O part of the scenario: everything but unlink, close, destroy. */
static void scenario_io(struct run *r)
{
	struct pcache_config cfg;
	struct list_arg la = { .name = "f" };
	int rc;

	pcache_config_init(&cfg);
	cfg.write_strategy = r->strategy;
	rc = pcache_create(&cfg, &r->pc);
	if (account(r, "pcache_create", rc, 0)) {
		r->pc = NULL;
		return;
	}
	r->fd = pcache_open(r->pc, "f", O_CREAT | O_RDWR, 0644);
	if (account(r, "pcache_open(O_CREAT)", r->fd < 0 ? r->fd : 0, 0)) {
		r->fd = -1;
		return;
	}
	r->created = true;

	do_pwrite(r, "pwrite 3 pages + 100", 1, 3 * PAGE + 100, 0);
	{
		static const size_t lens[3] = { 1000, 5000, 700 };

		do_pwritev(r, "pwritev 3 segments", 2, lens, 3, 2 * PAGE + 3000);
	}
	{
		/* More than UIO_FASTIOV segments: import_iovec allocates. */
		static const size_t lens[10] = { 123, 1, 400, 77, 123, 1000,
						 9, 123, 256, 100 };

		do_pwritev(r, "pwritev 10 segments", 3, lens, 10, 6 * PAGE - 500);
	}
	/* Far away: a new chunk of the memfd and a taller page index. */
	do_pwrite(r, "pwrite far away", 6, FAR_LEN, FAR_OFF);
	verify_file(r, "after the writes", false);
	do_ftruncate(r, "ftruncate down to PAGE+10", PAGE + 10);
	do_pwrite(r, "pwrite past a hole", 4, 300, 5 * PAGE + 7);
	do_ftruncate(r, "ftruncate up to 7 pages + 1", 7 * PAGE + 1);
	do_pwrite(r, "pwrite a whole page into a hole", 5, PAGE, 3 * PAGE);
	rc = pcache_fsync(r->fd);
	account(r, "fsync", rc, 0);
	rc = pcache_fdatasync(r->fd);
	account(r, "fdatasync", rc, 0);
	verify_file(r, "after truncate and fsync", false);
	rc = pcache_list(r->pc, list_fn, &la);
	if (!account(r, "pcache_list", rc, 0))
		CHECK(la.found == 1 && (size_t)la.size == r->m.size,
		      "%s: pcache_list found \"f\" %d times, size %lld, want once, %zu",
		      r->ctx, la.found, (long long)la.size, r->m.size);
}

/* Cleanup under whatever injection is in force: close what opened, destroy. */
static void scenario_cleanup(struct run *r)
{
	int rc;

	if (r->created && !r->unlinked) {
		rc = pcache_unlink(r->pc, "f");
		if (!account(r, "unlink", rc, 0))
			r->unlinked = true;
	}
	if (r->fd >= 0) {
		rc = pcache_close(r->fd);
		if (!account(r, "close", rc, 0))
			r->fd = -1;
	}
	if (r->pc && r->fd < 0) {
		rc = pcache_destroy(r->pc);
		if (!account(r, "destroy", rc, 0))
			r->pc = NULL;
	}
}

/* No injection now: whatever the scenario could not clean up must go. */
static void scenario_finish(struct run *r)
{
	struct pcache_stats st;
	int rc;

	if (r->created && !r->unlinked) {
		rc = pcache_unlink(r->pc, "f");
		CHECK_EQ(rc, 0);
	}
	if (r->fd >= 0) {
		rc = pcache_close(r->fd);
		CHECK(rc == 0, "%s: close after the injection: %d", r->ctx, rc);
		r->fd = -1;
	}
	if (r->pc) {
		/* Every page and inode went with the unlinked, closed file. */
		rc = pcache_stats(r->pc, &st);
		CHECK(rc == 0 && st.pages_cached == 0 && st.pages_dirty == 0 &&
		      st.inodes == 0 && st.files_open == 0,
		      "%s: after cleanup: %llu pages, %llu dirty, %llu inodes, %llu open",
		      r->ctx, (unsigned long long)st.pages_cached,
		      (unsigned long long)st.pages_dirty,
		      (unsigned long long)st.inodes,
		      (unsigned long long)st.files_open);
		rc = pcache_destroy(r->pc);
		CHECK(rc == 0, "%s: destroy after the injection: %d", r->ctx, rc);
		r->pc = NULL;
	}
}

/*
 * One run with budget @n (-1: none).  @paused: stop the injection after
 * the I/O and check the file there.  Returns the number of failed calls.
 */
static int run_scenario(long n, bool paused, int strategy)
{
	static struct run r;
	int fds = count_fds(), maps = count_memfd_maps(), nfail;
	char ctx[64];

	snprintf(ctx, sizeof(ctx), "%s n=%ld %s", paused ? "paused" : "through", n,
		 pcache_strategy_name(strategy));
	memset(&r, 0, sizeof(r));
	r.ctx = ctx;
	r.n = n;
	r.strategy = strategy;
	r.fd = -1;

	alloc_fail_after(n);
	scenario_io(&r);
	if (paused) {
		alloc_fail_after(-1);
		if (r.fd >= 0) {
			verify_file(&r, "after the injection stopped", true);
		} else if (r.pc) {
			/* The failed O_CREAT open left nothing behind. */
			int fd = pcache_open(r.pc, "f", O_RDONLY, 0);

			CHECK(fd == -ENOENT, "%s: failed open (%s) left \"f\" behind: "
			      "open without O_CREAT returned %d", ctx, r.first_fail, fd);
			if (fd >= 0) {
				pcache_close(fd);
				r.created = true;
			}
		}
	}
	scenario_cleanup(&r);
	alloc_fail_after(-1);
	scenario_finish(&r);

	CHECK(count_fds() == fds, "%s: %d descriptors leaked", ctx, count_fds() - fds);
	CHECK(count_memfd_maps() == maps, "%s: %d memfd mappings leaked", ctx,
	      count_memfd_maps() - maps);
	check_heap_leaks(ctx);
	nfail = r.nfail;
	if (getenv("PCACHE_TEST_VERBOSE") && n >= 0)
		printf("  %s: %d failed calls, first: %s\n", ctx, nfail, nfail ? r.first_fail : "-");
	return nfail;
}

static void test_enomem(bool paused, int strategy)
{
	long n, clean_in_a_row = 0, first_clean = -1;

	for (n = 0; n < 5000 && clean_in_a_row < 3; n++) {
		int nfail = run_scenario(n, paused, strategy);

		if (nfail) {
			clean_in_a_row = 0;
			first_clean = -1;
		} else if (!clean_in_a_row++) {
			first_clean = n;
		}
		/* The cache works again with no injection, bytes and all. */
		CHECK_EQ(run_scenario(-1, paused, strategy), 0);
	}
	CHECK(clean_in_a_row == 3, "%s %s: still failing at n=%ld",
	      paused ? "paused" : "through", pcache_strategy_name(strategy), n);
	printf("-ENOMEM %-7s %-6s: a full scenario makes %ld allocations; "
	       "every earlier failure was clean\n",
	       paused ? "paused" : "through", pcache_strategy_name(strategy),
	       first_clean);
}

/* ---- (b) the system-call table ---- */

static long sc_calls;		/* calls of the stubbed entry so far */
static long sc_fail_at;		/* > 0: only that call fails; < 0: from -that on */
static int sc_errno;

static bool sc_should_fail(void)
{
	long c = __atomic_add_fetch(&sc_calls, 1, __ATOMIC_RELAXED);

	if (sc_fail_at > 0)
		return c == sc_fail_at;
	return sc_fail_at < 0 && c >= -sc_fail_at;
}

static int stub_memfd_create(const char *name, unsigned int flags)
{
	if (sc_should_fail()) {
		errno = sc_errno;
		return -1;
	}
	return sys_default.memfd_create(name, flags);
}

static int stub_ftruncate(int fd, off_t len)
{
	if (sc_should_fail()) {
		errno = sc_errno;
		return -1;
	}
	return sys_default.ftruncate(fd, len);
}

static int stub_fallocate(int fd, int mode, off_t off, off_t len)
{
	if (sc_should_fail()) {
		errno = sc_errno;
		return -1;
	}
	return sys_default.fallocate(fd, mode, off, len);
}

static void *stub_mmap(void *addr, size_t len, int prot, int flags, int fd,
		       off_t off)
{
	if (sc_should_fail()) {
		errno = sc_errno;
		return MAP_FAILED;
	}
	return sys_default.mmap(addr, len, prot, flags, fd, off);
}

/* Start failing: @at > 0 the at-th call only, @at < 0 every call from -at. */
static void sc_arm(long at, int err)
{
	sc_calls = 0;
	sc_fail_at = at;
	sc_errno = err;
}

static void sys_restore(void)
{
	sys = sys_default;
	sc_fail_at = 0;
}

static struct pcache *new_cache(void)
{
	struct pcache_config cfg;
	struct pcache *pc = NULL;
	int rc;

	pcache_config_init(&cfg);
	rc = pcache_create(&cfg, &pc);
	if (rc) {
		fprintf(stderr, "FAIL: pcache_create: %d\n", rc);
		exit(1);
	}
	return pc;
}

static int count_named(struct pcache *pc, const char *name)
{
	struct list_arg la = { .name = name };

	CHECK_EQ(pcache_list(pc, list_fn, &la), 0);
	return la.found;
}

/* Read [off, off+len) and compare with @tag's pattern (0: zeroes). */
static void check_range(int fd, size_t off, size_t len, unsigned tag,
			const char *what)
{
	static unsigned char buf[4 * PAGE];
	ssize_t got;
	long bad = -1;

	assert(len <= sizeof(buf));
	got = pcache_pread(fd, buf, len, (off_t)off);
	CHECK(got == (ssize_t)len, "%s: pread(%zu, %zu) returned %zd", what, off, len, got);
	if (got <= 0)
		return;
	for (size_t i = 0; i < (size_t)got && bad < 0; i++)
		if (buf[i] != (tag ? pattern_byte(tag, off + i) : 0))
			bad = (long)i;
	CHECK(bad < 0, "%s: byte at file offset %zu is 0x%02x, want 0x%02x", what,
	      off + bad, bad < 0 ? 0 : buf[bad],
	      bad < 0 ? 0 : (tag ? pattern_byte(tag, off + bad) : 0));
}

static off_t file_size(int fd)
{
	struct stat st;

	if (pcache_fstat(fd, &st))
		return -1;
	return st.st_size;
}

static void test_memfd_create(void)
{
	struct pcache *pc = new_cache();
	int fds = count_fds(), maps = count_memfd_maps(), fd, fd2;
	struct pcache_stats st;

	/* The first memfd_create fails: the O_CREAT open of a new file. */
	sys.memfd_create = stub_memfd_create;
	sc_arm(1, EMFILE);
	fd = pcache_open(pc, "new", O_CREAT | O_RDWR, 0644);
	sys_restore();
	CHECK(is_errno(fd), "open with memfd_create failing returned %d", fd);
	/* The system call's error, not a made-up one. */
	CHECK(fd == -EMFILE, "memfd_create failed with EMFILE; pcache_open "
	      "returned %d (%s), want -EMFILE", fd, pcache_strerror(fd));
	CHECK_EQ(pcache_open(pc, "new", O_RDWR, 0), -ENOENT);
	CHECK_EQ(count_named(pc, "new"), 0);
	CHECK_EQ(pcache_stats(pc, &st), 0);
	CHECK_EQ(st.inodes, 0);
	CHECK_EQ(st.files_open, 0);
	CHECK_EQ(count_fds(), fds);
	CHECK_EQ(count_memfd_maps(), maps);

	/* The second file's memfd fails: the first is untouched. */
	sys.memfd_create = stub_memfd_create;
	sc_arm(2, ENFILE);
	fd = pcache_open(pc, "a", O_CREAT | O_RDWR, 0644);
	fd2 = pcache_open(pc, "b", O_CREAT | O_RDWR, 0644);
	sys_restore();
	CHECK(fd > 0, "open a: %d", fd);
	CHECK(is_errno(fd2), "open b with memfd_create failing returned %d", fd2);
	CHECK(fd2 == -ENFILE, "memfd_create failed with ENFILE; pcache_open "
	      "returned %d (%s), want -ENFILE", fd2, pcache_strerror(fd2));
	CHECK_EQ(pcache_open(pc, "b", O_RDWR, 0), -ENOENT);
	{
		char buf[5000];

		pattern_fill(buf, sizeof(buf), 7, 0);
		CHECK_EQ(pcache_pwrite(fd, buf, sizeof(buf), 0), sizeof(buf));
		check_range(fd, 0, sizeof(buf), 7, "file a after b's failed open");
	}
	/*
	 * Calls that need no new memfd are not affected: opening the cached
	 * file, and looking up a name that does not exist (-ENOENT, whatever
	 * memfd_create would say).
	 */
	sys.memfd_create = stub_memfd_create;
	sc_arm(-1, EMFILE);
	fd2 = pcache_open(pc, "a", O_RDONLY, 0);
	CHECK(fd2 > 0, "open of the cached file a with memfd_create failing: %d", fd2);
	if (fd2 > 0)
		CHECK_EQ(pcache_close(fd2), 0);
	fd2 = pcache_open(pc, "missing", O_RDONLY, 0);
	CHECK(fd2 == -ENOENT, "open of a missing name without O_CREAT, memfd_create "
	      "failing with EMFILE: returned %d (%s), want -ENOENT", fd2,
	      pcache_strerror(fd2));
	CHECK_EQ(pcache_unlink(pc, "missing"), -ENOENT);
	sys_restore();

	/* With the real call back, b can be made. */
	fd2 = pcache_open(pc, "b", O_CREAT | O_RDWR, 0644);
	CHECK(fd2 > 0, "open b after restore: %d", fd2);
	CHECK_EQ(pcache_close(fd2), 0);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	CHECK_EQ(count_fds(), fds);
	CHECK_EQ(count_memfd_maps(), maps);
	check_heap_leaks("memfd_create");
	printf("memfd_create failing: clean\n");
}

/*
 * ftruncate (growing the memfd) or mmap (mapping a chunk) failing for a
 * write that needs a new chunk: the bytes before it land, the rest do not,
 * and the count, the size and the bytes agree.
 */
static void test_grow_fails(const char *what, int which)
{
	struct pcache *pc = new_cache();
	int fds = count_fds(), maps = count_memfd_maps(), fd;
	char ctx[64], buf[3 * PAGE];
	ssize_t got;

	fd = pcache_open(pc, "g", O_CREAT | O_RDWR, 0644);
	CHECK(fd > 0, "open: %d", fd);

	/* The very first page of a file needs both calls. */
	if (which == 0)
		sys.ftruncate = stub_ftruncate;
	else
		sys.mmap = stub_mmap;
	sc_arm(1, which == 0 ? ENOSPC : ENOMEM);
	pattern_fill(buf, PAGE, 1, 0);
	got = pcache_pwrite(fd, buf, 100, 0);
	snprintf(ctx, sizeof(ctx), "%s failing, first write", what);
	CHECK(got == (which == 0 ? -ENOSPC : -ENOMEM),
	      "%s: pwrite returned %zd, want %d", ctx, got, which == 0 ? -ENOSPC : -ENOMEM);
	CHECK_EQ(file_size(fd), 0);
	check_range(fd, 0, 0, 1, ctx);
	/* Only the first call failed: the same write works now. */
	CHECK_EQ(pcache_pwrite(fd, buf, PAGE, 0), PAGE);
	sys_restore();
	check_range(fd, 0, PAGE, 1, ctx);

	/* A write across the end of the first chunk: chunk 1 can't be had. */
	if (which == 0)
		sys.ftruncate = stub_ftruncate;
	else
		sys.mmap = stub_mmap;
	sc_arm(-1, which == 0 ? ENOSPC : ENOMEM);
	snprintf(ctx, sizeof(ctx), "%s failing, write across chunks", what);
	pattern_fill(buf, sizeof(buf), 2, CHUNK - PAGE - 10);
	got = pcache_pwrite(fd, buf, sizeof(buf), CHUNK - PAGE - 10);
	CHECK(got == PAGE + 10, "%s: pwrite returned %zd, want the short count %d",
	      ctx, got, PAGE + 10);
	CHECK(file_size(fd) == CHUNK - PAGE - 10 + (got > 0 ? got : 0),
	      "%s: size %lld after a write of %zd", ctx, (long long)file_size(fd), got);
	check_range(fd, CHUNK - PAGE - 10, PAGE + 10, 2, ctx);
	CHECK_EQ(pcache_pread(fd, buf, 100, CHUNK), 0);	/* EOF */
	/* Entirely in the new chunk: nothing written, size unchanged. */
	got = pcache_pwrite(fd, buf, 100, CHUNK + 5);
	CHECK(got == (which == 0 ? -ENOSPC : -ENOMEM),
	      "%s: pwrite in chunk 1 returned %zd", ctx, got);
	CHECK_EQ(file_size(fd), CHUNK);
	/* The earlier data is intact. */
	check_range(fd, 0, PAGE, 1, ctx);
	/* A hole page of chunk 0 needs neither call. */
	pattern_fill(buf, 50, 3, 7 * PAGE + 1);
	CHECK_EQ(pcache_pwrite(fd, buf, 50, 7 * PAGE + 1), 50);
	CHECK(sc_calls >= 1, "%s: the stub was never called", ctx);
	sys_restore();
	check_range(fd, 7 * PAGE, 1, 0, ctx);
	check_range(fd, 7 * PAGE + 1, 50, 3, ctx);
	check_range(fd, 7 * PAGE + 51, PAGE - 51, 0, ctx);

	/* Back to the real calls: chunk 1 works, and nothing was lost. */
	pattern_fill(buf, sizeof(buf), 4, CHUNK - 10);
	CHECK_EQ(pcache_pwrite(fd, buf, sizeof(buf), CHUNK - 10), sizeof(buf));
	check_range(fd, CHUNK - 10, sizeof(buf), 4, ctx);
	check_range(fd, CHUNK - PAGE - 10, PAGE, 2, ctx);
	check_range(fd, 0, PAGE, 1, ctx);
	CHECK_EQ(file_size(fd), CHUNK - 10 + sizeof(buf));

	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "g"), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	CHECK_EQ(count_fds(), fds);
	CHECK_EQ(count_memfd_maps(), maps);
	check_heap_leaks(what);
	printf("%s failing: clean\n", what);
}

/*
 * fallocate (punching truncated pages out of the memfd) failing: the memory
 * stays allocated, but truncate is still right: nothing past the new end
 * reads back, and growing again gives zeroes, not the old bytes.
 */
static void test_fallocate_fails(int strategy)
{
	struct pcache_config cfg;
	struct pcache *pc = NULL;
	int fds = count_fds(), maps = count_memfd_maps(), fd, rc;
	char buf[3 * PAGE], ctx[64];

	snprintf(ctx, sizeof(ctx), "fallocate failing (%s)", pcache_strategy_name(strategy));
	pcache_config_init(&cfg);
	cfg.write_strategy = strategy;
	rc = pcache_create(&cfg, &pc);
	CHECK(rc == 0, "pcache_create: %d", rc);
	if (rc)
		return;
	fd = pcache_open(pc, "t", O_CREAT | O_RDWR, 0644);
	CHECK(fd > 0, "open: %d", fd);
	pattern_fill(buf, sizeof(buf), 9, 0);
	CHECK_EQ(pcache_pwrite(fd, buf, sizeof(buf), 0), sizeof(buf));

	sys.fallocate = stub_fallocate;
	sc_arm(-1, EOPNOTSUPP);
	rc = pcache_ftruncate(fd, PAGE + 100);
	CHECK(rc == 0, "%s: ftruncate down returned %d", ctx, rc);
	CHECK(sc_calls >= 1, "%s: truncate never punched", ctx);
	CHECK_EQ(file_size(fd), PAGE + 100);
	CHECK_EQ(pcache_pread(fd, buf, 10, PAGE + 100), 0);
	CHECK_EQ(pcache_pread(fd, buf, 10, 2 * PAGE + 5), 0);
	check_range(fd, 0, PAGE + 100, 9, ctx);

	/* Grow again: the old bytes must not come back. */
	rc = pcache_ftruncate(fd, 3 * PAGE);
	CHECK(rc == 0, "%s: ftruncate up returned %d", ctx, rc);
	check_range(fd, 0, PAGE + 100, 9, ctx);
	check_range(fd, PAGE + 100, 2 * PAGE - 100, 0, ctx);

	/* A partial write into a truncated page: the rest of it is zeroes. */
	pattern_fill(buf, 10, 10, 2 * PAGE + 500);
	CHECK_EQ(pcache_pwrite(fd, buf, 10, 2 * PAGE + 500), 10);
	check_range(fd, 2 * PAGE, 500, 0, ctx);
	check_range(fd, 2 * PAGE + 500, 10, 10, ctx);
	check_range(fd, 2 * PAGE + 510, PAGE - 510, 0, ctx);
	check_range(fd, PAGE + 100, PAGE - 100, 0, ctx);

	/* Shrink to 0 and grow: all zeroes. */
	CHECK_EQ(pcache_ftruncate(fd, 0), 0);
	CHECK_EQ(pcache_ftruncate(fd, 3 * PAGE), 0);
	check_range(fd, 0, 3 * PAGE, 0, ctx);
	/* Unlink and close with punching still failing. */
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_unlink(pc, "t"), 0);
	sys_restore();
	CHECK_EQ(pcache_destroy(pc), 0);
	CHECK_EQ(count_fds(), fds);
	CHECK_EQ(count_memfd_maps(), maps);
	check_heap_leaks(ctx);
	printf("%s: clean\n", ctx);
}

/*
 * The first open of the process allocates the descriptor table's first
 * block; make that and every allocation before it fail once.  A failed
 * O_CREAT open must not leave the file behind.  Must run first.
 */
static void test_first_open(void)
{
	int fds = count_fds(), maps = count_memfd_maps();
	long n;

	for (n = 0; n < 100; n++) {
		struct pcache *pc = new_cache();
		int fd, fd2;

		alloc_fail_after(n);
		fd = pcache_open(pc, "f", O_CREAT | O_RDWR, 0644);
		alloc_fail_after(-1);
		if (fd >= 0) {
			CHECK_EQ(pcache_close(fd), 0);
			CHECK_EQ(pcache_destroy(pc), 0);
			break;
		}
		CHECK(fd == -ENOMEM, "first open, n=%ld: returned %d, want -ENOMEM", n, fd);
		fd2 = pcache_open(pc, "f", O_RDONLY, 0);
		CHECK(fd2 == -ENOENT, "first open, n=%ld: pcache_open(O_CREAT) returned %d "
		      "but created \"f\" anyway (open without O_CREAT returned %d, "
		      "want -ENOENT)", n, fd, fd2);
		if (fd2 >= 0)
			pcache_close(fd2);
		CHECK_EQ(pcache_destroy(pc), 0);
	}
	CHECK_EQ(count_fds(), fds);
	CHECK_EQ(count_memfd_maps(), maps);
	check_heap_leaks("first open");
	printf("first open of the process: %ld allocations, every earlier failure seen\n", n);
}

/*
 * The descriptor table full: -EMFILE, and an O_CREAT open that fails for
 * it must not create the file (Linux reserves the descriptor first).
 */
static void test_emfile(void)
{
	enum { MAX_TRY = 70000 };
	struct pcache *pc = new_cache();
	int *fds = calloc(MAX_TRY, sizeof(*fds)), n = 0, fd = 0;

	fds[n] = pcache_open(pc, "x", O_CREAT | O_RDWR, 0644);
	CHECK(fds[n] > 0, "open x: %d", fds[n]);
	n++;
	while (n < MAX_TRY) {
		fd = pcache_open(pc, "x", O_RDONLY, 0);
		if (fd < 0)
			break;
		fds[n++] = fd;
	}
	CHECK(fd == -EMFILE, "after %d descriptors open returned %d, want -EMFILE", n, fd);
	fd = pcache_open(pc, "y", O_CREAT | O_RDWR, 0644);
	CHECK(fd == -EMFILE, "O_CREAT open with the table full returned %d, want -EMFILE", fd);
	if (fd >= 0)
		fds[n++] = fd;
	CHECK(count_named(pc, "y") == 0,
	      "pcache_open(\"y\", O_CREAT) failed with %d but created \"y\"", fd);
	for (int i = 0; i < n; i++)
		CHECK_EQ(pcache_close(fds[i]), 0);
	free(fds);
	CHECK_EQ(pcache_destroy(pc), 0);
	check_heap_leaks("emfile");
	printf("descriptor table full after %d opens: -EMFILE\n", n);
}

int main(void)
{
	static const int strategies[] = { PCACHE_WRITE_BOUNCE, PCACHE_WRITE_NAIVE };

	setvbuf(stdout, NULL, _IOLBF, 0);
	test_first_open();	/* first: no descriptor may have been opened yet */
	for (size_t i = 0; i < ARRAY_SIZE(strategies); i++) {
		test_enomem(true, strategies[i]);
		test_enomem(false, strategies[i]);
	}
	test_memfd_create();
	test_grow_fails("ftruncate", 0);
	test_grow_fails("mmap", 1);
	for (size_t i = 0; i < ARRAY_SIZE(strategies); i++)
		test_fallocate_fails(strategies[i]);
	test_emfile();
	sys_restore();
	alloc_fail_after(-1);
	return test_exit();
}
