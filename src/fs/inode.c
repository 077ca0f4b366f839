/*
 * inode.c - inodes and the icache (name -> inode).
 *
 * Invariants (ns_lock held):
 *  1. An inode is in the icache iff i_name != NULL iff i_nlink > 0.
 *  2. i_count = (linked ? 1 : 0) + open files.  At 0 the inode is evicted:
 *     it is out of the icache, nobody can find it, so eviction runs
 *     without the ns_lock.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "fs.h"

static uint64_t name_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	while (*name)
		h = (h ^ (unsigned char)*name++) * 1099511628211ull;
	return h;
}

static struct inode **ihash_slot(struct pcache *pc, const char *name)
{
	return &pc->ihash[name_hash(name) & ((1u << pc->ihash_bits) - 1)];
}

struct inode *icache_find(struct pcache *pc, const char *name)
{
	struct inode *inode;

	for (inode = *ihash_slot(pc, name); inode; inode = inode->i_hash_next)
		if (!strcmp(inode->i_name, name))
			return inode;
	return NULL;
}

/* Double the buckets when the chains get long; ns_lock held. */
static void ihash_grow(struct pcache *pc)
{
	unsigned int old_bits = pc->ihash_bits, i;
	struct inode **old = pc->ihash, **new;

	new = kzalloc(sizeof(*new) << (old_bits + 1));
	if (!new)
		return;		/* longer chains, still correct */
	pc->ihash = new;
	pc->ihash_bits = old_bits + 1;
	for (i = 0; i < (1u << old_bits); i++) {
		struct inode *inode = old[i], *next;

		for (; inode; inode = next) {
			struct inode **slot = ihash_slot(pc, inode->i_name);

			next = inode->i_hash_next;
			inode->i_hash_next = *slot;
			*slot = inode;
		}
	}
	kfree(old);
}

int icache_insert(struct pcache *pc, struct inode *inode, const char *name)
{
	struct inode **slot;

	if (!inode->i_name) {
		inode->i_name = kmalloc(strlen(name) + 1);
		if (!inode->i_name)
			return -ENOMEM;
		strcpy(inode->i_name, name);
	}
	slot = ihash_slot(pc, inode->i_name);
	inode->i_hash_next = *slot;
	*slot = inode;
	WRITE_ONCE(inode->i_nlink, 1);
	inode->i_count++;
	if (list_empty(&inode->i_sb_list))
		list_add_tail(&inode->i_sb_list, &pc->s_inodes);
	if (++pc->nr_inodes > (2ull << pc->ihash_bits))
		ihash_grow(pc);
	return 0;
}

void icache_remove(struct pcache *pc, struct inode *inode)
{
	struct inode **p = ihash_slot(pc, inode->i_name);

	while (*p != inode)
		p = &(*p)->i_hash_next;
	*p = inode->i_hash_next;
	inode->i_hash_next = NULL;
	kfree(inode->i_name);
	inode->i_name = NULL;
	WRITE_ONCE(inode->i_nlink, 0);
	pc->nr_inodes--;
	/* The caller drops the icache's reference with iput(). */
}

/* @inode is now called @name (ns_lock held; @name is not in the icache). */
int icache_rename(struct pcache *pc, struct inode *inode, const char *name)
{
	char *copy = kmalloc(strlen(name) + 1);

	if (!copy)
		return -ENOMEM;
	strcpy(copy, name);
	icache_rename_to(pc, inode, copy);
	return 0;
}

/* As icache_rename, with a name already allocated: it cannot fail. */
void icache_rename_to(struct pcache *pc, struct inode *inode, char *copy)
{
	struct inode **p, **slot;

	for (p = ihash_slot(pc, inode->i_name); *p != inode; p = &(*p)->i_hash_next)
		;
	*p = inode->i_hash_next;
	kfree(inode->i_name);
	inode->i_name = copy;
	slot = ihash_slot(pc, copy);
	inode->i_hash_next = *slot;
	*slot = inode;
}

int icache_list(struct pcache *pc, pcache_list_fn fn, void *arg)
{
	unsigned int i;

	for (i = 0; i < (1u << pc->ihash_bits); i++) {
		struct inode *inode;

		for (inode = pc->ihash[i]; inode; inode = inode->i_hash_next) {
			struct stat st;
			int ret;

			generic_fillattr(inode, &st);
			ret = fn(arg, inode->i_name, &st);
			if (ret)
				return ret;
		}
	}
	return 0;
}

void generic_fillattr(struct inode *inode, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = inode->i_ino;
	st->st_nlink = READ_ONCE(inode->i_nlink);	/* no ns_lock here */
	st->st_size = i_size_read(inode);
	st->st_blksize = PAGE_SIZE;
	pthread_rwlock_rdlock(&inode->i_data.i_pages_lock);
	st->st_blocks = inode->i_data.nrpages * (PAGE_SIZE / 512);
	pthread_rwlock_unlock(&inode->i_data.i_pages_lock);
	pthread_mutex_lock(&inode->i_lock);
	st->st_mode = inode->i_mode;	/* i_lock: setattr_copy */
	st->st_atim = inode->i_atime;
	st->st_mtim = inode->i_mtime;
	st->st_ctim = inode->i_ctime;
	st->st_uid = inode->i_owner_set ? inode->i_uid : getuid();
	st->st_gid = inode->i_owner_set ? inode->i_gid : getgid();
	pthread_mutex_unlock(&inode->i_lock);
}

struct inode *inode_alloc(struct pcache *pc)
{
	struct inode *inode = kzalloc(sizeof(*inode));
	struct timespec now;

	if (!inode)
		return NULL;
	inode->i_sb = pc;
	inode->i_blkbits = pc->s_blkbits;
	inode->i_mode = S_IFREG | 0644;
	INIT_LIST_HEAD(&inode->i_sb_list);
	inode->i_data.memfd = -1;
	pthread_mutex_init(&inode->i_rwsem, NULL);
	pthread_mutex_init(&inode->i_lock, NULL);
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	inode->i_atime = inode->i_mtime = inode->i_ctime = now;
	return inode;
}

int inode_init_mapping(struct inode *inode, const char *name)
{
	struct pcache *pc = inode->i_sb;
	int err;

	err = mapping_init(&inode->i_data, inode, pc->s_op->a_ops, name);
	if (err)
		return err;
	inode->i_data.flags = pc->s_op->as_flags;
	inode->i_ino = ++pc->next_ino;
	return 0;
}

void inode_free(struct inode *inode)
{
	if (inode->i_private && inode->i_sb->s_op->evict)
		inode->i_sb->s_op->evict(inode);
	if (inode->i_data.memfd >= 0) {
		lru_evict_mapping(&inode->i_data);
		truncate_inode_pages_final(&inode->i_data);
		mapping_destroy(&inode->i_data);
	}
	pthread_mutex_destroy(&inode->i_lock);
	pthread_mutex_destroy(&inode->i_rwsem);
	kfree(inode->i_name);
	kfree(inode);
}

void iget(struct inode *inode)
{
	inode->i_count++;
}

void iput(struct inode *inode)
{
	struct pcache *pc = inode->i_sb;
	bool last;

	pthread_mutex_lock(&pc->ns_lock);
	assert(inode->i_count > 0);
	last = --inode->i_count == 0;
	if (last)
		list_del_init(&inode->i_sb_list);
	pthread_mutex_unlock(&pc->ns_lock);
	if (!last)
		return;
	/* Unlinked and closed: nobody can reach it any more (evict: inode_free). */
	inode_free(inode);
}

/* Coarse time, as the kernel's current_time(): a clock read per write is not free. */
void inode_touch(struct inode *inode, bool mtime, bool atime)
{
	struct timespec now;

	uint64_t stamp;

	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	/*
	 * file_update_time's shortcut: a write in the same coarse tick as the
	 * last one changes nothing, so it need not take the lock.
	 */
	stamp = (uint64_t)now.tv_sec * 1000000000 + (uint64_t)now.tv_nsec;
	if (mtime && !atime &&
	    __atomic_load_n(&inode->i_mtime_stamp, __ATOMIC_RELAXED) == stamp)
		return;
	pthread_mutex_lock(&inode->i_lock);
	if (mtime) {
		inode->i_mtime = inode->i_ctime = now;
		__atomic_store_n(&inode->i_mtime_stamp, stamp, __ATOMIC_RELAXED);
	}
	if (atime)
		inode->i_atime = now;
	pthread_mutex_unlock(&inode->i_lock);
}
