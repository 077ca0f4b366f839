/*
 * harness.h - what every test program shares.
 *
 * A test is one program per feature.  It exits 0 (pass), 1 (fail) or
 * 77 (skip, after saying why).  CHECK() reports every failed expectation
 * with its location and keeps going, so one run shows all the failures;
 * test_exit() turns the count into the exit status.
 */
#ifndef PCACHE_TEST_HARNESS_H
#define PCACHE_TEST_HARNESS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		test_failures++;					\
	}								\
} while (0)

/* Compare two integers, printing both on mismatch. */
#define CHECK_EQ(got, want) do {					\
	long long __g = (long long)(got), __w = (long long)(want);	\
	if (__g != __w) {						\
		fprintf(stderr, "FAIL %s:%d: %s == %s: got %lld, want %lld\n", \
			__FILE__, __LINE__, #got, #want, __g, __w);	\
		test_failures++;					\
	}								\
} while (0)

#define TEST_SKIP(...) do {						\
	fprintf(stderr, "SKIP: " __VA_ARGS__);				\
	fputc('\n', stderr);						\
	exit(77);							\
} while (0)

static inline int test_exit(void)
{
	if (test_failures) {
		fprintf(stderr, "%d check(s) failed\n", test_failures);
		return 1;
	}
	return 0;
}

/* The byte a pattern puts at file offset @off, for tag @tag (never 0 for tag > 0). */
static inline unsigned char pattern_byte(unsigned tag, uint64_t off)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull + tag * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 29;
	return (unsigned char)(x | 1);
}

static inline void pattern_fill(void *buf, size_t len, unsigned tag, uint64_t off)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = pattern_byte(tag, off + i);
}

/* Index of the first byte that differs from the pattern, or -1. */
static inline long pattern_check(const void *buf, size_t len, unsigned tag, uint64_t off)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern_byte(tag, off + i))
			return (long)i;
	return -1;
}

#endif /* PCACHE_TEST_HARNESS_H */
