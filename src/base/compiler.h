/*
 * compiler.h - the small vocabulary every pcache source file shares:
 * branch hints, container_of, page geometry, ONCE accessors, WARN_ON_ONCE.
 * Internal: nothing here is exported from the library.
 */
#ifndef PCACHE_COMPILER_H
#define PCACHE_COMPILER_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define min(a, b)	((a) < (b) ? (a) : (b))
#define max(a, b)	((a) > (b) ? (a) : (b))

/* pcache's page is the machine's base page; checked at pcache_create(). */
#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#define PAGE_MASK	(~(PAGE_SIZE - 1))
#define offset_in_page(p)	((size_t)(uintptr_t)(p) & ~PAGE_MASK)
#define PAGE_ALIGN(x)	(((x) + PAGE_SIZE - 1) & PAGE_MASK)

typedef uint64_t pgoff_t;
typedef int64_t loff_t;

/* Linux caps one read/write at this many bytes (fs/read_write.c). */
#define MAX_RW_COUNT	((size_t)(0x7fffffff & PAGE_MASK))
#ifndef UIO_MAXIOV
#define UIO_MAXIOV	1024
#endif
#define UIO_FASTIOV	8

#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* Caller misuse that we survive: complain once per site, carry on. */
#define WARN_ON_ONCE(cond) ({						\
	static int __warned;						\
	int __c = !!(cond);						\
	if (unlikely(__c) && !__atomic_exchange_n(&__warned, 1,	\
						 __ATOMIC_RELAXED))	\
		fprintf(stderr, "pcache: WARNING at %s:%d: %s\n",	\
			__FILE__, __LINE__, #cond);			\
	unlikely(__c);							\
})

/*
 * The CLOCK_REALTIME deadline @ns from now, for pthread_*_timed*lock (which
 * ThreadSanitizer intercepts, unlike the CLOCK_MONOTONIC "clock" variants).
 */
#include <time.h>
static inline struct timespec deadline_after_ns(long ns)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += ns;
	while (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

/*
 * Deliberate races, told to ThreadSanitizer.  A reader copies out of a
 * cached page without its lock, as the kernel's filemap_read() does, while
 * a writer holding the lock may be storing into it: the reader may see old
 * or new bytes, as read(2) racing write(2) may.  Only that copy is hidden
 * from TSan; everything else stays checked.
 *
 * Trap: TSan clears the ignore state while a signal handler runs and puts
 * it back when the handler returns.  A guarded copy that faults leaves its
 * handler by siglongjmp(), so the state stays cleared: after a copy that
 * came up short, the region has already ended and racy_reads_end() must
 * not be called again.
 */
#ifdef __SANITIZE_THREAD__
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define racy_reads_begin()	AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define racy_reads_end()	AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define racy_reads_begin()	do { } while (0)
#define racy_reads_end()	do { } while (0)
#endif

#endif /* PCACHE_COMPILER_H */
