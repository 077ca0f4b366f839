/*
 * test_uaccess - guarded copies stop at exactly the first bad byte.
 *
 * Every case lays out pages [P0 ok][P1 ok][P2 bad][P3 PROT_NONE fence],
 * where "bad" is PROT_NONE, unmapped, read-only (for the writing
 * helpers) or a memfd page beyond EOF (SIGBUS).  For every start offset in
 * P1 (step 1) and a handful in P0, and for lengths that stop short of P2,
 * end on its first byte, and run deep into it, each helper must report
 * exactly the bytes past P2's start as not done, the bytes before it must
 * be moved, and no byte outside [start, P2) may change on either side.
 * Forked children check that faults outside a guard reach the
 * application's handler, or kill with the right signal.  Last, a timing
 * line compares a 64-byte guarded copy with a plain memcpy().
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "lib/uaccess.h"

#define PG		4096UL
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define min(a, b)	((a) < (b) ? (a) : (b))
#define TAG_SRC		1	/* source bytes: pattern by offset from P0 */
#define TAG_DST		2	/* destination background */
#define TAG_RO		4	/* contents of a read-only bad page */

enum bad_kind { BAD_NONE, BAD_UNMAPPED, BAD_READONLY, BAD_BEYOND_EOF };

static const char *const bad_name[] = {
	[BAD_NONE] = "PROT_NONE", [BAD_UNMAPPED] = "unmapped",
	[BAD_READONLY] = "read-only", [BAD_BEYOND_EOF] = "beyond EOF",
};

struct layout {
	char *base;		/* P0 */
	char *bad;		/* P2 */
	enum bad_kind kind;
	int memfd;
};

/* Lengths: inside a page, a page, a page plus one, two and three pages. */
static const size_t lens[] = { 1, 2, 63, 64, 65, 4095, 4096, 4097, 8192, 12288 };
/* For every-offset sweeps (step 1) a shorter list keeps the run fast. */
static const size_t sweep_lens[] = { 1, 64, 4096, 4097, 8192 };

/*
 * pattern_check()/pattern_fill() through precomputed copies: the sweeps
 * compare and refill hundreds of megabytes, which per-byte pattern code
 * makes slow under TSan.  The result is the same byte-exact comparison.
 */
#define REF_LEN		(6 * PG)
static char ref_src[REF_LEN], ref_dst[REF_LEN];

static void ref_init(void)
{
	pattern_fill(ref_src, REF_LEN, TAG_SRC, 0);
	pattern_fill(ref_dst, REF_LEN, TAG_DST, 0);
}

static const char *ref_of(unsigned tag, uint64_t off, size_t len)
{
	if (off + len > REF_LEN)
		return NULL;
	if (tag == TAG_SRC)
		return ref_src + off;
	if (tag == TAG_DST)
		return ref_dst + off;
	return NULL;
}

static bool pattern_ok(const void *p, size_t len, unsigned tag, uint64_t off)
{
	const char *ref = ref_of(tag, off, len);

	if (ref && memcmp(p, ref, len) == 0)
		return true;
	return pattern_check(p, len, tag, off) == -1;
}

static void pattern_put(void *p, size_t len, unsigned tag, uint64_t off)
{
	const char *ref = ref_of(tag, off, len);

	if (ref)
		memcpy(p, ref, len);
	else
		pattern_fill(p, len, tag, off);
}

static void layout_make(struct layout *l, enum bad_kind kind)
{
	l->kind = kind;
	l->memfd = -1;
	if (kind == BAD_BEYOND_EOF) {
		l->memfd = memfd_create("uaccess-test", 0);
		if (l->memfd < 0 || ftruncate(l->memfd, 2 * PG) < 0)
			TEST_SKIP("memfd: %s", strerror(errno));
		l->base = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
			       l->memfd, 0);
	} else {
		l->base = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (l->base == MAP_FAILED)
		TEST_SKIP("mmap: %s", strerror(errno));
	l->bad = l->base + 2 * PG;
	pattern_put(l->base, 2 * PG, TAG_SRC, 0);
	mprotect(l->base + 3 * PG, PG, PROT_NONE);
	switch (kind) {
	case BAD_NONE:
		mprotect(l->bad, PG, PROT_NONE);
		break;
	case BAD_UNMAPPED:
		munmap(l->bad, PG);
		break;
	case BAD_READONLY:
		pattern_fill(l->bad, PG, TAG_RO, 0);
		mprotect(l->bad, PG, PROT_READ);
		break;
	case BAD_BEYOND_EOF:
		/* P2 and P3 are past the memfd's 2 pages: SIGBUS. */
		break;
	}
}

static void layout_free(struct layout *l)
{
	if (l->kind == BAD_UNMAPPED) {
		/* Nothing may have been mapped into the hole meanwhile. */
		CHECK(msync(l->bad, PG, MS_ASYNC) < 0 && errno == ENOMEM,
		      "the unmapped page got mapped during the test");
	}
	if (l->kind == BAD_READONLY)
		CHECK(pattern_check(l->bad, PG, TAG_RO, 0) == -1,
		      "read-only page modified");
	munmap(l->base, 4 * PG);
	if (l->memfd >= 0)
		close(l->memfd);
}

/* Bytes of [p, p+len) before the bad page (p is before it). */
static size_t good_bytes(const struct layout *l, const char *p, size_t len)
{
	if (p >= l->bad)
		return 0;
	return min(len, (size_t)(l->bad - p));
}

static char *dstbuf;		/* 4 pages + slack, destination of reads */
static char *srcbuf;		/* 4 pages, source of writes */


/* copy_from_user from @src (in the layout) to a background-filled buffer. */
static void check_copy_from(const struct layout *l, size_t s, size_t len)
{
	const char *src = l->base + s;
	/* Vary the destination's alignment too, to cross its page boundaries. */
	char *dst = dstbuf + 32 + (s * 7) % PG;
	size_t good = good_bytes(l, src, len);
	size_t left;

	pattern_put(dst - 32, len + 64, TAG_DST, 0);
	left = copy_from_user(dst, src, len);
	if (left != len - good) {
		CHECK_EQ(left, len - good);
		fprintf(stderr, "  %s: start %zu len %zu\n", bad_name[l->kind], s, len);
		return;
	}
	CHECK(pattern_ok(dst - 32, 32, TAG_DST, 0), "before dst, start %zu", s);
	CHECK(pattern_ok(dst, good, TAG_SRC, s), "copied bytes, start %zu len %zu", s, len);
	CHECK(pattern_ok(dst + good, len - good + 32, TAG_DST, 32 + good),
	      "bytes past the fault touched, start %zu len %zu", s, len);
}

/* copy_to_user / clear_user into the layout at @s; @zero selects clear_user. */
static void check_write_to(const struct layout *l, size_t s, size_t len, bool zero)
{
	char *dst = l->base + s;
	const char *src = srcbuf + (s * 13) % PG;
	size_t good = good_bytes(l, dst, len);
	size_t left, lo = s >= 64 ? s - 64 : 0;

	left = zero ? clear_user(dst, len) : copy_to_user(dst, src, len);
	if (left != len - good) {
		CHECK_EQ(left, len - good);
		fprintf(stderr, "  %s %s: start %zu len %zu\n",
			zero ? "clear_user" : "copy_to_user", bad_name[l->kind], s, len);
		return;
	}
	CHECK(pattern_ok(l->base + lo, s - lo, TAG_SRC, lo), "before dst, start %zu", s);
	if (zero) {
		static const char zeros[3 * PG];

		CHECK(memcmp(dst, zeros, good) == 0, "not cleared, start %zu len %zu", s, len);
	} else {
		CHECK(memcmp(dst, src, good) == 0, "copied bytes, start %zu len %zu", s, len);
	}
	CHECK(pattern_ok(dst + good, (size_t)(l->bad - dst) - good, TAG_SRC, s + good),
	      "bytes past the end touched, start %zu len %zu", s, len);
	/* Put the background back for the next case. */
	pattern_put(dst, good, TAG_SRC, s);
}

static void check_fault_in(const struct layout *l, size_t s, size_t len, bool write)
{
	char *p = l->base + s;
	size_t good = good_bytes(l, p, len), left;

	left = write ? fault_in_writeable(p, len) : fault_in_readable(p, len);
	if (left != len - good) {
		CHECK_EQ(left, len - good);
		fprintf(stderr, "  %s %s: start %zu len %zu\n",
			write ? "writeable" : "readable", bad_name[l->kind], s, len);
	}
}

/* Starts: every byte of P1, every 61st of P0, and a few inside P2. */
static void for_each_case(const struct layout *l,
			  void (*fn)(const struct layout *, size_t, size_t, bool),
			  bool arg)
{
	for (size_t s = 0; s < PG; s += 61)
		for (size_t k = 0; k < ARRAY_SIZE(lens); k++)
			fn(l, s, lens[k], arg);
	for (size_t s = PG; s < 2 * PG; s++)
		for (size_t k = 0; k < ARRAY_SIZE(sweep_lens); k++)
			fn(l, s, sweep_lens[k], arg);
	/* The boundaries themselves, with every length. */
	static const size_t edges[] = { PG - 1, 2 * PG - 4096, 2 * PG - 65, 2 * PG - 64,
					2 * PG - 2, 2 * PG - 1 };
	for (size_t e = 0; e < ARRAY_SIZE(edges); e++)
		for (size_t k = 0; k < ARRAY_SIZE(lens); k++)
			fn(l, edges[e], lens[k], arg);
}

static void copy_from_case(const struct layout *l, size_t s, size_t len, bool unused)
{
	check_copy_from(l, s, len);
}

static void write_case(const struct layout *l, size_t s, size_t len, bool zero)
{
	check_write_to(l, s, len, zero);
}

static void fault_in_case(const struct layout *l, size_t s, size_t len, bool write)
{
	check_fault_in(l, s, len, write);
}

static void test_sources(void)
{
	static const enum bad_kind kinds[] = { BAD_NONE, BAD_UNMAPPED, BAD_BEYOND_EOF };

	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		struct layout l;

		layout_make(&l, kinds[k]);
		for_each_case(&l, copy_from_case, false);
		for_each_case(&l, fault_in_case, false);
		/* Starting inside the bad page: nothing at all. */
		for (size_t s = 0; s < PG; s += 509) {
			CHECK_EQ(copy_from_user(dstbuf, l.bad + s, 100), 100);
			CHECK_EQ(fault_in_readable(l.bad + s, 5000), 5000);
		}
		layout_free(&l);
	}
}

static void test_destinations(void)
{
	static const enum bad_kind kinds[] = { BAD_NONE, BAD_UNMAPPED, BAD_READONLY,
					       BAD_BEYOND_EOF };

	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		struct layout l;

		layout_make(&l, kinds[k]);
		for_each_case(&l, write_case, false);
		for_each_case(&l, write_case, true);
		for_each_case(&l, fault_in_case, true);
		/* fault_in_writeable must not change a byte it touched. */
		CHECK(pattern_check(l.base, 2 * PG, TAG_SRC, 0) == -1,
		      "fault_in_writeable changed memory (%s)", bad_name[l.kind]);
		if (l.kind == BAD_READONLY) {
			/* Readable, so fault_in_readable gets through. */
			CHECK_EQ(fault_in_readable(l.base + 100, 3 * PG - 200), 0);
			CHECK_EQ(copy_from_user(dstbuf, l.bad + 10, 100), 0);
		}
		layout_free(&l);
	}
}

/* NULL, wild, non-canonical and wrapping pointers; zero lengths. */
static void test_odd_pointers(void)
{
	char buf[64];
	static char *const wild[] = {
		NULL, (char *)16, (char *)4095,
		(char *)0x8000000000000000ull,	/* non-canonical: #GP, SI_KERNEL */
		(char *)0xffffffffff600000ull,	/* kernel half */
	};

	pattern_fill(buf, sizeof(buf), TAG_DST, 0);
	for (size_t k = 0; k < ARRAY_SIZE(wild); k++) {
		CHECK_EQ(copy_from_user(buf, wild[k], 16), 16);
		CHECK_EQ(copy_to_user(wild[k], buf, 16), 16);
		CHECK_EQ(clear_user(wild[k], 8), 8);
		CHECK_EQ(fault_in_readable(wild[k], 1), 1);
		CHECK_EQ(fault_in_writeable(wild[k], 100), 100);
		CHECK_EQ(fault_in_readable(wild[k], 3 * PG), 3 * PG);
	}
	CHECK(pattern_check(buf, sizeof(buf), TAG_DST, 0) == -1, "buffer touched");

	/* Ranges that wrap the address space never start. */
	CHECK_EQ(copy_from_user(buf, (char *)-16, 32), 32);
	CHECK_EQ(fault_in_readable((char *)-16, 32), 32);
	CHECK_EQ(fault_in_writeable(buf, SIZE_MAX), SIZE_MAX);

	/* Zero lengths touch nothing and succeed, whatever the pointer. */
	CHECK_EQ(copy_from_user(buf, NULL, 0), 0);
	CHECK_EQ(copy_to_user(NULL, buf, 0), 0);
	CHECK_EQ(clear_user(NULL, 0), 0);
	CHECK_EQ(fault_in_readable(NULL, 0), 0);
	CHECK_EQ(fault_in_writeable(NULL, 0), 0);
	CHECK(pattern_check(buf, sizeof(buf), TAG_DST, 0) == -1, "buffer touched");
}

/*
 * The thread's signal mask as the kernel has it: asked with the raw system
 * call, because TSan intercepts pthread_sigmask() and may not tell.
 */
static uint64_t kernel_sigmask(void)
{
	uint64_t mask = 0;

	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &mask, sizeof(mask));
	return mask;
}

/* After guarded faults the thread's signal mask is what it was. */
static void test_mask_restored(void)
{
	uint64_t before = kernel_sigmask(), after;
	char buf[8];

	for (int k = 0; k < 3; k++) {
		CHECK_EQ(copy_from_user(buf, NULL, sizeof(buf)), sizeof(buf));
		after = kernel_sigmask();
		CHECK(after == before, "signal mask %#llx, was %#llx",
		      (unsigned long long)after, (unsigned long long)before);
	}
}

/* fault_in_writeable racing with atomic increments must lose none. */
static unsigned char race_byte;
static const int race_rounds = 100000;

static void *race_incr(void *arg)
{
	for (int k = 0; k < race_rounds; k++)
		__atomic_fetch_add(&race_byte, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void test_writeable_race(void)
{
	pthread_t t;
	unsigned char start = __atomic_load_n(&race_byte, __ATOMIC_RELAXED);

	pthread_create(&t, NULL, race_incr, NULL);
	for (int k = 0; k < race_rounds; k++)
		CHECK_EQ(fault_in_writeable(&race_byte, 1), 0);
	pthread_join(t, NULL);
	CHECK_EQ(__atomic_load_n(&race_byte, __ATOMIC_RELAXED),
		 (unsigned char)(start + race_rounds));
}

/* Four threads fault inside guards at once, each checking its own result. */
struct mt_arg {
	const struct layout *l;
	unsigned seed;
	int failures;
};

static void *mt_worker(void *p)
{
	struct mt_arg *a = p;
	char *dst = malloc(3 * PG);
	unsigned x = a->seed;
	stack_t ss = { .ss_sp = malloc(64 * 1024), .ss_size = 64 * 1024 };

	/* Half the threads take their faults on an alternate signal stack. */
	if (a->seed % 2 && sigaltstack(&ss, NULL) < 0)
		a->failures++;

	for (int k = 0; k < 3000; k++) {
		x = x * 1103515245 + 12345;
		size_t s = (x >> 8) % (2 * PG);
		size_t len = 1 + (x >> 4) % (2 * PG);
		size_t good = good_bytes(a->l, a->l->base + s, len);

		if (copy_from_user(dst, a->l->base + s, len) != len - good ||
		    !pattern_ok(dst, good, TAG_SRC, s))
			a->failures++;
		if (fault_in_readable(a->l->base + s, len) != len - good)
			a->failures++;
	}
	free(dst);
	if (a->seed % 2) {
		stack_t off = { .ss_flags = SS_DISABLE };

		sigaltstack(&off, NULL);
	}
	free(ss.ss_sp);
	return NULL;
}

static void test_threads(void)
{
	struct layout l;
	pthread_t t[4];
	struct mt_arg args[4];

	layout_make(&l, BAD_NONE);
	for (int k = 0; k < 4; k++) {
		args[k] = (struct mt_arg){ .l = &l, .seed = 17u * (k + 1), .failures = 0 };	/* 17, 34, 51, 68 */
		pthread_create(&t[k], NULL, mt_worker, &args[k]);
	}
	for (int k = 0; k < 4; k++) {
		pthread_join(t[k], NULL);
		CHECK(args[k].failures == 0, "thread %d: %d bad results", k, args[k].failures);
	}
	layout_free(&l);
}

/*
 * Guarded copies from a signal handler that interrupts guarded copies (an
 * application's handler calling write(2) through the LD_PRELOAD shim): a
 * fast timer fires while this thread copies and faults in a loop, and
 * each handler run makes a faulting copy of its own.
 *
 * Not under TSan: TSan defers an asynchronous signal and runs its handler
 * later with every signal blocked, SIGSEGV included, and the kernel kills
 * a process whose thread faults with SIGSEGV blocked.  (The same is true
 * without TSan for a handler whose sa_mask blocks SIGSEGV, or any thread
 * that blocks it: a faulting guarded copy there kills the process.)
 */
static const struct layout *nest_layout;
static volatile int nest_runs, nest_bad;

static void nest_handler(int sig)
{
	const size_t s = 2 * PG - 100;	/* 100 good bytes, then the bad page */
	size_t len = nest_runs % 2 ? 200 : 100;	/* faulting, or not */
	char buf[256];
	int saved_errno = errno;

	if (copy_from_user(buf, nest_layout->base + s, len) != len - 100 ||
	    !pattern_ok(buf, 100, TAG_SRC, s))
		nest_bad++;
	nest_runs++;
	errno = saved_errno;
}

static double now_ns(void);

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static void test_nested(void)
{
#ifdef UNDER_TSAN
	printf("nested guards from a signal handler: skipped under TSan\n");
	return;
#endif
	struct itimerval on = { { 0, 50 }, { 0, 50 } }, off = { { 0, 0 }, { 0, 0 } };
	struct sigaction act, old;
	struct layout l;
	int bad = 0, copies = 0;
	double t0;

	layout_make(&l, BAD_NONE);
	nest_layout = &l;
	memset(&act, 0, sizeof(act));
	act.sa_handler = nest_handler;
	act.sa_flags = SA_RESTART;
	sigemptyset(&act.sa_mask);
	sigaction(SIGALRM, &act, &old);
	setitimer(ITIMER_REAL, &on, NULL);
	for (t0 = now_ns(); now_ns() - t0 < 200e6; copies++) {
		size_t s = (copies * 7919u) % (2 * PG), len = 2 * PG;
		size_t good = good_bytes(&l, l.base + s, len);

		if (copy_from_user(dstbuf, l.base + s, len) != len - good ||
		    !pattern_ok(dstbuf, good, TAG_SRC, s))
			bad++;
	}
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	CHECK(bad == 0, "%d of %d interrupted copies wrong", bad, copies);
	CHECK(nest_bad == 0, "%d of %d copies in the handler wrong", nest_bad, nest_runs);
	CHECK(nest_runs > 0, "the timer never fired");
	printf("nested guards: %d copies, %d handler copies among them\n",
	       copies, nest_runs);
	layout_free(&l);
}

/* ---- chaining: each case runs in a forked child ---- */

static sigjmp_buf app_env;
static void *volatile app_addr;
static volatile int app_calls;

static void app_siginfo_handler(int sig, siginfo_t *info, void *ctx)
{
	app_calls++;
	app_addr = info->si_addr;
	siglongjmp(app_env, sig);
}

static void app_plain_handler(int sig)
{
	_exit(43);
}

static char *mprotect_fix_page;

static void app_fixing_handler(int sig)
{
	app_calls++;
	mprotect(mprotect_fix_page, PG, PROT_READ | PROT_WRITE);
}

static void no_core(void)
{
	struct rlimit r = { 0, 0 };

	setrlimit(RLIMIT_CORE, &r);
}

static void set_action(int sig, void (*h)(int), void (*sa)(int, siginfo_t *, void *),
		       int flags)
{
	struct sigaction act;

	memset(&act, 0, sizeof(act));
	sigemptyset(&act.sa_mask);
	if (sa) {
		act.sa_sigaction = sa;
		act.sa_flags = SA_SIGINFO | flags;
	} else {
		act.sa_handler = h;
		act.sa_flags = flags;
	}
	if (sigaction(sig, &act, NULL) < 0)
		_exit(90);
}

static char *none_page(void)
{
	char *p = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		_exit(91);
	return p;
}

/* A guarded fault is still swallowed with the application's handler behind. */
static void child_guard_still_works(char *bad)
{
	char buf[16];

	if (copy_from_user(buf, bad, sizeof(buf)) != sizeof(buf))
		_exit(92);
}

static void child_siginfo_longjmp(void)
{
	char *bad = none_page();

	set_action(SIGSEGV, NULL, app_siginfo_handler, 0);
	if (uaccess_init())
		_exit(93);
	child_guard_still_works(bad);
	if (app_calls)
		_exit(94);	/* a guarded fault leaked to the application */
	for (int round = 0; round < 2; round++) {
		if (sigsetjmp(app_env, 1) == 0) {
			(void)*(volatile char *)(bad + 5);
			_exit(95);	/* no fault? */
		}
		if (app_addr != bad + 5 || app_calls != round + 1)
			_exit(96);
		/* The mask was restored by the app's siglongjmp: guards work. */
		child_guard_still_works(bad);
	}
	_exit(42);
}

static void child_plain_handler(void)
{
	char *bad = none_page();

	set_action(SIGSEGV, app_plain_handler, NULL, 0);
	uaccess_init();
	child_guard_still_works(bad);
	(void)*(volatile char *)bad;
	_exit(95);
}

/* A handler that fixes the page and returns: the access is retried. */
static void child_fix_and_return(void)
{
	char *p = none_page();

	mprotect_fix_page = p;
	set_action(SIGSEGV, app_fixing_handler, NULL, SA_RESETHAND);
	uaccess_init();
	child_guard_still_works(p);
	*(volatile char *)(p + 9) = 7;
	if (app_calls != 1 || p[9] != 7)
		_exit(96);
	/* SA_RESETHAND: the second real fault gets the default action. */
	mprotect(p, PG, PROT_NONE);
	child_guard_still_works(p);
	no_core();
	(void)*(volatile char *)p;
	_exit(95);
}

static void child_default(void)
{
	char *bad = none_page();

	set_action(SIGSEGV, SIG_DFL, NULL, 0);
	uaccess_init();
	child_guard_still_works(bad);
	no_core();
	(void)*(volatile char *)bad;
	_exit(95);
}

static void child_ignored(void)
{
	char *bad = none_page();

	set_action(SIGSEGV, SIG_IGN, NULL, 0);
	uaccess_init();
	child_guard_still_works(bad);
	/* A sent SIGSEGV is ignored, as the kernel would ... */
	raise(SIGSEGV);
	/* ... but a real fault is not. */
	no_core();
	(void)*(volatile char *)bad;
	_exit(95);
}

static void child_sent_default(void)
{
	set_action(SIGSEGV, SIG_DFL, NULL, 0);
	uaccess_init();
	no_core();
	raise(SIGSEGV);
	_exit(95);
}

static void child_sigbus_default(void)
{
	int fd = memfd_create("uaccess-bus", 0);
	char *p;

	set_action(SIGBUS, SIG_DFL, NULL, 0);
	uaccess_init();
	if (fd < 0 || ftruncate(fd, PG) < 0)
		_exit(91);
	p = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		_exit(91);
	if (copy_from_user(&fd, p + PG - 2, sizeof(fd)) != sizeof(fd) - 2)
		_exit(92);
	no_core();
	(void)*(volatile char *)(p + PG);
	_exit(95);
}

struct child_case {
	const char *name;
	void (*fn)(void);
	int exit_code;		/* expected _exit() status, or -1 */
	int term_sig;		/* expected killing signal, or 0 */
};

static const struct child_case child_cases[] = {
	{ "SA_SIGINFO handler siglongjmps", child_siginfo_longjmp, 42, 0 },
	{ "plain handler _exits", child_plain_handler, 43, 0 },
	{ "handler fixes page, SA_RESETHAND", child_fix_and_return, -1, SIGSEGV },
	{ "SIG_DFL: killed by SIGSEGV", child_default, -1, SIGSEGV },
	{ "SIG_IGN: real fault still kills", child_ignored, -1, SIGSEGV },
	{ "SIG_DFL: sent SIGSEGV kills", child_sent_default, -1, SIGSEGV },
	{ "SIGBUS SIG_DFL beyond EOF", child_sigbus_default, -1, SIGBUS },
};

static void test_chaining(void)
{
	for (size_t k = 0; k < ARRAY_SIZE(child_cases); k++) {
		const struct child_case *c = &child_cases[k];
		int status;
		pid_t pid;

		fflush(NULL);
		pid = fork();
		if (pid < 0)
			TEST_SKIP("fork: %s", strerror(errno));
		if (pid == 0) {
			c->fn();
			_exit(99);
		}
		if (waitpid(pid, &status, 0) != pid) {
			CHECK(0, "waitpid failed for %s", c->name);
			continue;
		}
		if (c->term_sig) {
			CHECK(WIFSIGNALED(status) && WTERMSIG(status) == c->term_sig,
			      "%s: status 0x%x (exit %d, signal %d)", c->name, status,
			      WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		} else {
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == c->exit_code,
			      "%s: status 0x%x (exit %d, signal %d)", c->name, status,
			      WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		}
	}
}

/* ---- cost of the guard ---- */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void measure_guard(void)
{
	static char src[128], dst[128];
	volatile size_t n = 64;	/* a run-time size: memcpy stays a real call */
	const int iters = 1 << 21;
	double plain = 1e30, guarded = 1e30, t;

	pattern_fill(src, sizeof(src), TAG_SRC, 0);
	for (int round = 0; round < 5; round++) {
		t = now_ns();
		for (int k = 0; k < iters; k++) {
			memcpy(dst, src, n);
			__asm__ volatile("" : : "r"(dst) : "memory");
		}
		plain = min(plain, (now_ns() - t) / iters);
		t = now_ns();
		for (int k = 0; k < iters; k++) {
			if (copy_from_user(dst, src, n))
				abort();
			__asm__ volatile("" : : "r"(dst) : "memory");
		}
		guarded = min(guarded, (now_ns() - t) / iters);
	}
	printf("64 B copy: memcpy %.2f ns, copy_from_user %.2f ns (guard +%.2f ns)\n",
	       plain, guarded, guarded - plain);

	/* And the slow path: one fault, signal, siglongjmp. */
	{
		struct layout l;
		const int faults = 2000;

		layout_make(&l, BAD_NONE);
		t = now_ns();
		for (int k = 0; k < faults; k++)
			if (copy_from_user(dst, l.bad - 32, 64) != 32)
				abort();
		printf("faulting 64 B copy: %.0f ns\n", (now_ns() - t) / faults);
		layout_free(&l);
	}
}

int main(void)
{
	/* First, while this process has not installed its guard yet. */
	test_chaining();

	CHECK_EQ(uaccess_init(), 0);
	CHECK_EQ(uaccess_init(), 0);	/* idempotent */

	dstbuf = mmap(NULL, 5 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	srcbuf = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dstbuf == MAP_FAILED || srcbuf == MAP_FAILED)
		TEST_SKIP("mmap: %s", strerror(errno));
	pattern_fill(srcbuf, 4 * PG, 3, 0);
	ref_init();

	test_odd_pointers();
	test_mask_restored();
	test_sources();
	test_destinations();
	test_writeable_race();
	test_threads();
	test_nested();
	test_mask_restored();
	measure_guard();
	return test_exit();
}
