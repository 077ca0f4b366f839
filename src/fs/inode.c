/*
 * inode.c - inodes, and the icache: names (dentries) -> inodes.
 *
 * Two hashes, both under ns_lock: dhash finds a dentry by name; bhash
 * finds a live inode by the backend's identity of its file (i_bdev,
 * i_bino), so that a second name of a hard-linked file is cached as a
 * second dentry of the same inode, not as a second copy of the file.
 *
 * Invariants (ns_lock held):
 *  1. i_nlink = the inode's dentries; each is in dhash and holds one
 *     i_count.  i_count = i_nlink + open files.  At 0 the inode is evicted:
 *     it is in neither hash, nobody can find it, so eviction runs without
 *     the ns_lock.
 *  2. An inode is on s_inodes, and in bhash if it has an identity, from its
 *     first name until its last iput.  An unlinked open inode stays in
 *     bhash: its file may have a name the cache never looked up.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "fs.h"

#define ICACHE_HASH_BITS	10	/* to start with; doubles as names come */

static uint64_t name_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	while (*name)
		h = (h ^ (unsigned char)*name++) * 1099511628211ull;
	return h;
}

static uint64_t backing_hash(dev_t dev, ino_t ino)
{
	return ((uint64_t)ino ^ ((uint64_t)dev << 32)) * 0x9e3779b97f4a7c15ull >> 20;
}

static struct dentry **dhash_slot(struct pcache *pc, const char *name)
{
	return &pc->dhash[name_hash(name) & ((1u << pc->hash_bits) - 1)];
}

static struct inode **bhash_slot(struct pcache *pc, dev_t dev, ino_t ino)
{
	return &pc->bhash[backing_hash(dev, ino) & ((1u << pc->hash_bits) - 1)];
}

int icache_init(struct pcache *pc)
{
	pc->hash_bits = ICACHE_HASH_BITS;
	pc->dhash = kzalloc(sizeof(*pc->dhash) << pc->hash_bits);
	pc->bhash = kzalloc(sizeof(*pc->bhash) << pc->hash_bits);
	if (pc->dhash && pc->bhash)
		return 0;
	kfree(pc->dhash);
	kfree(pc->bhash);
	return -ENOMEM;
}

struct dentry *d_lookup(struct pcache *pc, const char *name)
{
	struct dentry *d;

	for (d = *dhash_slot(pc, name); d; d = d->d_hash_next)
		if (!strcmp(d->d_name, name))
			return d;
	return NULL;
}

struct inode *icache_find(struct pcache *pc, const char *name)
{
	struct dentry *d = d_lookup(pc, name);

	return d ? d->d_inode : NULL;
}

struct inode *icache_find_backing(struct pcache *pc, dev_t dev, ino_t ino)
{
	struct inode *inode;

	if (!ino)
		return NULL;
	for (inode = *bhash_slot(pc, dev, ino); inode; inode = inode->i_bhash_next)
		if (inode->i_bino == ino && inode->i_bdev == dev)
			return inode;
	return NULL;
}

static void bhash_add(struct pcache *pc, struct inode *inode)
{
	struct inode **slot = bhash_slot(pc, inode->i_bdev, inode->i_bino);

	inode->i_bhash_next = *slot;
	*slot = inode;
}

static void bhash_del(struct pcache *pc, struct inode *inode)
{
	struct inode **p = bhash_slot(pc, inode->i_bdev, inode->i_bino);

	while (*p != inode)
		p = &(*p)->i_bhash_next;
	*p = inode->i_bhash_next;
	inode->i_bhash_next = NULL;
}

static void dhash_add(struct pcache *pc, struct dentry *d)
{
	struct dentry **slot = dhash_slot(pc, d->d_name);

	d->d_hash_next = *slot;
	*slot = d;
}

static void dhash_del(struct pcache *pc, struct dentry *d)
{
	struct dentry **p = dhash_slot(pc, d->d_name);

	while (*p != d)
		p = &(*p)->d_hash_next;
	*p = d->d_hash_next;
	d->d_hash_next = NULL;
}

/* Double both tables when the chains get long; ns_lock held. */
static void icache_grow(struct pcache *pc)
{
	unsigned int old_bits = pc->hash_bits, i;
	struct dentry **old_d = pc->dhash, **new_d;
	struct inode **old_b = pc->bhash, **new_b;

	new_d = kzalloc(sizeof(*new_d) << (old_bits + 1));
	new_b = kzalloc(sizeof(*new_b) << (old_bits + 1));
	if (!new_d || !new_b) {
		kfree(new_d);
		kfree(new_b);
		return;		/* longer chains, still correct */
	}
	pc->dhash = new_d;
	pc->bhash = new_b;
	pc->hash_bits = old_bits + 1;
	for (i = 0; i < (1u << old_bits); i++) {
		struct dentry *d, *dnext;
		struct inode *inode, *inext;

		for (d = old_d[i]; d; d = dnext) {
			dnext = d->d_hash_next;
			dhash_add(pc, d);
		}
		for (inode = old_b[i]; inode; inode = inext) {
			inext = inode->i_bhash_next;
			bhash_add(pc, inode);
		}
	}
	kfree(old_d);
	kfree(old_b);
}

/* Cache @inode under @name, which is not in the icache. */
int icache_insert(struct pcache *pc, struct inode *inode, const char *name)
{
	struct dentry *d = kmalloc(sizeof(*d));

	if (d)
		d->d_name = kmalloc(strlen(name) + 1);
	if (!d || !d->d_name) {
		kfree(d);
		return -ENOMEM;
	}
	strcpy(d->d_name, name);
	d->d_inode = inode;
	dhash_add(pc, d);
	list_add_tail(&d->d_alias, &inode->i_dentry);
	WRITE_ONCE(inode->i_nlink, inode->i_nlink + 1);	/* fillattr reads it unlocked */
	if (inode->i_nlink == 1)
		pc->nr_inodes++;
	inode->i_count++;
	if (list_empty(&inode->i_sb_list)) {
		list_add_tail(&inode->i_sb_list, &pc->s_inodes);
		if (inode->i_bino)
			bhash_add(pc, inode);
	}
	if (++pc->nr_names > (2ull << pc->hash_bits))
		icache_grow(pc);
	return 0;
}

void icache_remove(struct pcache *pc, struct dentry *d)
{
	struct inode *inode = d->d_inode;

	dhash_del(pc, d);
	list_del_init(&d->d_alias);
	kfree(d->d_name);
	kfree(d);
	WRITE_ONCE(inode->i_nlink, inode->i_nlink - 1);
	if (!inode->i_nlink)
		pc->nr_inodes--;
	pc->nr_names--;
	/* The caller drops the name's reference with iput(). */
}

/*
 * @dentry is now called @copy, which is not in the icache: a name the
 * caller allocated, which the dentry now owns.  It cannot fail.
 */
void icache_rename(struct pcache *pc, struct dentry *dentry, char *copy)
{
	dhash_del(pc, dentry);
	kfree(dentry->d_name);
	dentry->d_name = copy;
	dhash_add(pc, dentry);
}

int icache_list(struct pcache *pc, pcache_list_fn fn, void *arg)
{
	unsigned int i;

	for (i = 0; i < (1u << pc->hash_bits); i++) {
		struct dentry *d;

		for (d = pc->dhash[i]; d; d = d->d_hash_next) {
			struct stat st;
			int ret;

			generic_fillattr(d->d_inode, &st);
			ret = fn(arg, d->d_name, &st);
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
	if (inode->i_sb->s_op->fillattr)
		inode->i_sb->s_op->fillattr(inode, st);
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
	INIT_LIST_HEAD(&inode->i_dentry);
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
	if (last && !list_empty(&inode->i_sb_list)) {
		list_del_init(&inode->i_sb_list);
		if (inode->i_bino)
			bhash_del(pc, inode);
	}
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

/* A change to the inode, not its data (a name added or gone): ctime. */
void inode_touch_ctime(struct inode *inode)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	pthread_mutex_lock(&inode->i_lock);
	inode->i_ctime = now;
	pthread_mutex_unlock(&inode->i_lock);
}
