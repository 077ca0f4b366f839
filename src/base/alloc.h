/*
 * alloc.h - every allocation pcache makes goes through here, so a test can
 * make the Nth one fail (-ENOMEM paths are tested, not hoped for).
 */
#ifndef PCACHE_ALLOC_H
#define PCACHE_ALLOC_H

#include <stddef.h>

void *kmalloc(size_t size);
void *kzalloc(size_t size);
void *krealloc(void *p, size_t size);
void kfree(void *p);

/*
 * Fault injection: after @n more successful allocations, every allocation
 * fails until alloc_fail_after(-1) is called.  -1 (the default) disables it.
 */
void alloc_fail_after(long n);

#endif /* PCACHE_ALLOC_H */
