/*
 * file.c - the process-wide descriptor table.
 *
 * A descriptor is (generation << 16) | slot.  Slots hold their struct file
 * inline and are never freed, only reused (the memory is type-stable, as
 * SLAB_TYPESAFE_BY_RCU objects are), so looking one up needs no lock:
 *
 *   fdget(fd):  read the slot's state; if it is not "live with this
 *               generation", -EBADF.  Otherwise take a reference only if
 *               the count is not zero, then read the state again: if the
 *               slot was closed and reused in between, drop the reference
 *               and report -EBADF.  A stale descriptor can thus touch a
 *               reused slot's count for a moment, never its file.
 *   fd_close:   under the table lock, mark the slot not live and drop the
 *               table's reference.  The last reference (maybe a call still
 *               in flight) releases the file and frees the slot.
 *
 * Generations are 15 bits and skip 0, so a closed descriptor stays invalid
 * until its slot has been reused 32767 times; descriptors are always > 0.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "../base/alloc.h"
#include "fs.h"

#define FD_SLOT_BITS	16
#define FD_BLOCK_SHIFT	10
#define FD_BLOCK_SIZE	(1u << FD_BLOCK_SHIFT)
#define FD_NR_BLOCKS	((1u << FD_SLOT_BITS) / FD_BLOCK_SIZE)
#define FD_GEN_MASK	0x7fffu

/*
 * A cache line (or two) per slot: every call writes refs twice, and two
 * threads working on two descriptors must not share a line.
 */
struct fd_slot {
	struct file file;
	uint32_t state;		/* (gen << 1) | live; atomic */
	int32_t refs;		/* atomic */
	uint32_t gen;		/* last generation handed out (table lock) */
	uint32_t next_free;	/* free list link (table lock) */
	uint32_t nr;		/* this slot's number */
} __attribute__((aligned(64)));

static struct {
	pthread_mutex_t lock;
	struct fd_slot *blocks[FD_NR_BLOCKS];	/* published with release */
	uint32_t nr_slots;			/* slots ever allocated */
	uint32_t free_head;			/* slot + 1; 0: empty */
} fdt = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct fd_slot *slot_of(uint32_t nr)
{
	struct fd_slot *block;

	block = __atomic_load_n(&fdt.blocks[nr >> FD_BLOCK_SHIFT],
				__ATOMIC_ACQUIRE);
	return block ? &block[nr & (FD_BLOCK_SIZE - 1)] : NULL;
}

struct file *fd_alloc(int *fdp)
{
	struct fd_slot *s;
	uint32_t nr;

	pthread_mutex_lock(&fdt.lock);
	if (fdt.free_head) {
		nr = fdt.free_head - 1;
		s = slot_of(nr);
		fdt.free_head = s->next_free;
	} else {
		if (fdt.nr_slots == (1u << FD_SLOT_BITS)) {
			pthread_mutex_unlock(&fdt.lock);
			*fdp = -EMFILE;
			return NULL;
		}
		nr = fdt.nr_slots;
		if (!fdt.blocks[nr >> FD_BLOCK_SHIFT]) {
			struct fd_slot *block;
			char *raw;

			/* Never freed, so it may start past the allocation. */
			raw = kzalloc(FD_BLOCK_SIZE * sizeof(*block) + 64);
			if (!raw) {
				pthread_mutex_unlock(&fdt.lock);
				*fdp = -ENOMEM;
				return NULL;
			}
			block = (struct fd_slot *)(((uintptr_t)raw + 63) &
						   ~(uintptr_t)63);
			__atomic_store_n(&fdt.blocks[nr >> FD_BLOCK_SHIFT],
					 block, __ATOMIC_RELEASE);
		}
		fdt.nr_slots++;
		s = slot_of(nr);
		s->nr = nr;
	}
	s->gen = (s->gen + 1) & FD_GEN_MASK;
	if (!s->gen)
		s->gen = 1;
	pthread_mutex_unlock(&fdt.lock);

	memset(&s->file, 0, sizeof(s->file));
	pthread_mutex_init(&s->file.f_pos_lock, NULL);
	*fdp = (int)((s->gen << FD_SLOT_BITS) | nr);
	return &s->file;
}

static void slot_free(struct fd_slot *s, uint32_t nr)
{
	pthread_mutex_lock(&fdt.lock);
	s->next_free = fdt.free_head;
	fdt.free_head = nr + 1;
	pthread_mutex_unlock(&fdt.lock);
}

void fd_publish(int fd)
{
	uint32_t nr = (uint32_t)fd & ((1u << FD_SLOT_BITS) - 1);
	struct fd_slot *s = slot_of(nr);

	__atomic_store_n(&s->refs, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->state, ((uint32_t)fd >> FD_SLOT_BITS) << 1 | 1,
			 __ATOMIC_RELEASE);
}

void fd_discard(int fd)
{
	uint32_t nr = (uint32_t)fd & ((1u << FD_SLOT_BITS) - 1);
	struct fd_slot *s = slot_of(nr);

	pthread_mutex_destroy(&s->file.f_pos_lock);
	slot_free(s, nr);
}

static bool fd_decode(int fd, uint32_t *nr, uint32_t *live_state)
{
	uint32_t gen;

	if (fd <= 0)
		return false;
	*nr = (uint32_t)fd & ((1u << FD_SLOT_BITS) - 1);
	gen = (uint32_t)fd >> FD_SLOT_BITS;
	if (!gen || gen > FD_GEN_MASK || *nr >= (1u << FD_SLOT_BITS))
		return false;
	*live_state = gen << 1 | 1;
	return true;
}

struct file *fdget(int fd)
{
	uint32_t nr, live;
	struct fd_slot *s;
	int32_t refs;

	if (!fd_decode(fd, &nr, &live))
		return NULL;
	s = slot_of(nr);
	if (!s || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != live)
		return NULL;
	refs = __atomic_load_n(&s->refs, __ATOMIC_RELAXED);
	do {
		if (refs <= 0)
			return NULL;
	} while (!__atomic_compare_exchange_n(&s->refs, &refs, refs + 1, 1,
					      __ATOMIC_ACQUIRE,
					      __ATOMIC_RELAXED));
	/* The slot may have been closed and reused since we read state. */
	if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != live) {
		fdput(&s->file);
		return NULL;
	}
	return &s->file;
}

void fdput(struct file *file)
{
	struct fd_slot *s = container_of(file, struct fd_slot, file);

	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL))
		return;
	/* Last reference: the slot is dead, nobody can find it. */
	file_release(file);
	pthread_mutex_destroy(&file->f_pos_lock);
	slot_free(s, s->nr);
}

int fd_close(int fd)
{
	uint32_t nr, live;
	struct fd_slot *s;

	if (!fd_decode(fd, &nr, &live))
		return -EBADF;
	pthread_mutex_lock(&fdt.lock);
	s = slot_of(nr);
	if (!s || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != live) {
		pthread_mutex_unlock(&fdt.lock);
		return -EBADF;
	}
	__atomic_store_n(&s->state, live & ~1u, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&fdt.lock);
	fdput(&s->file);
	return 0;
}
