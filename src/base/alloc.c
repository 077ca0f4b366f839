/*
 * alloc.c - the allocation hook (see alloc.h).
 */
#include <stdlib.h>

#include "alloc.h"
#include "compiler.h"

static long alloc_budget = -1;	/* -1: never fail */

static int alloc_should_fail(void)
{
	long b = __atomic_load_n(&alloc_budget, __ATOMIC_RELAXED);

	if (likely(b < 0))
		return 0;
	/* Count down to zero, then stay there: every later call fails. */
	while (b > 0) {
		if (__atomic_compare_exchange_n(&alloc_budget, &b, b - 1, 0,
						__ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			return 0;
		if (b < 0)
			return 0;
	}
	return 1;
}

void *kmalloc(size_t size)
{
	if (alloc_should_fail())
		return NULL;
	return malloc(size);
}

void *kzalloc(size_t size)
{
	if (alloc_should_fail())
		return NULL;
	return calloc(1, size);
}

void *krealloc(void *p, size_t size)
{
	if (alloc_should_fail())
		return NULL;
	return realloc(p, size);
}

void kfree(void *p)
{
	free(p);
}

void alloc_fail_after(long n)
{
	__atomic_store_n(&alloc_budget, n, __ATOMIC_RELAXED);
}
