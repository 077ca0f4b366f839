/*
 * stat.c - the shard numbers of the per-thread statistics (fs.h).
 *
 * A bit per shard in one process-wide word: a thread takes a free bit at
 * its first count and gives it back from a thread-exit destructor.  The
 * bit's release/acquire orders the old owner's last plain stores before
 * the new owner's first ones, so a shard never has two writers at once.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fs.h"

_Static_assert(STAT_SHARDS <= 64, "one bit per shard in a uint64_t");
_Static_assert(sizeof(struct stat_counters) % sizeof(uint64_t) == 0,
	       "stat_snapshot() sums the counters as an array of uint64_t");

__thread unsigned int stat_slot __attribute__((tls_model("initial-exec")));

static uint64_t slots_used;		/* atomic: bit n = shard n owned */
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static int slot_key_ok;

static void slot_release(void *arg)
{
	unsigned int slot = (unsigned int)(uintptr_t)arg;

	/* A destructor that counts again after this takes a shard again. */
	stat_slot = 0;
	if (slot >= 1 && slot <= STAT_SHARDS)
		__atomic_fetch_and(&slots_used, ~(1ull << (slot - 1)),
				   __ATOMIC_RELEASE);
}

static void slot_key_init(void)
{
	slot_key_ok = !pthread_key_create(&slot_key, slot_release);
}

unsigned int stat_slot_get(void)
{
	uint64_t used = __atomic_load_n(&slots_used, __ATOMIC_RELAXED);
	unsigned int n;

	pthread_once(&slot_once, slot_key_init);
	/* Without the destructor a shard would leak with its thread: share. */
	while (slot_key_ok && ~used) {
		n = (unsigned int)__builtin_ctzll(~used);
		if (n >= STAT_SHARDS)
			break;
		if (__atomic_compare_exchange_n(&slots_used, &used,
						used | 1ull << n, false,
						__ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			if (pthread_setspecific(slot_key, (void *)(uintptr_t)(n + 1))) {
				__atomic_fetch_and(&slots_used, ~(1ull << n),
						   __ATOMIC_RELEASE);
				break;
			}
			stat_slot = n + 1;
			return stat_slot;
		}
	}
	stat_slot = STAT_SHARDS + 1;
	return stat_slot;
}

void stat_snapshot(struct pcache *pc, struct stat_counters *sum)
{
	uint64_t *out = (uint64_t *)sum;
	size_t n = sizeof(*sum) / sizeof(uint64_t);

	memset(sum, 0, sizeof(*sum));
	for (unsigned int s = 0; s <= STAT_SHARDS; s++) {
		uint64_t *in = (uint64_t *)&pc->stats[s].c;

		for (size_t k = 0; k < n; k++)
			out[k] += __atomic_load_n(&in[k], __ATOMIC_RELAXED);
	}
}

uint64_t __stat_read(struct pcache *pc, size_t offset)
{
	uint64_t sum = 0;

	for (unsigned int s = 0; s <= STAT_SHARDS; s++)
		sum += __atomic_load_n((uint64_t *)((char *)&pc->stats[s].c + offset),
				       __ATOMIC_RELAXED);
	return sum;
}
