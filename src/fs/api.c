/*
 * api.c - the public calls (include/pcache.h): argument checks, descriptor
 * lookup, then the VFS layer.  Nothing here touches pages.
 *
 * Every call validates what it is given before it trusts it: the cache
 * pointer against NULL, descriptors through fdget() (generation-checked),
 * user memory only through the fault-guarded copies.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../lib/iov_iter.h"
#include "../lib/uaccess.h"
#include "../mm/mm.h"
#include "fs.h"

#ifndef PCACHE_DEFAULT_MEM_LIMIT
#define PCACHE_DEFAULT_MEM_LIMIT	(1ull << 30)	/* 1 GiB */
#endif
#ifndef PCACHE_DEFAULT_MAX_FILE_SIZE
#define PCACHE_DEFAULT_MAX_FILE_SIZE	(1ull << 40)	/* 1 TiB */
#endif
#ifndef PCACHE_DEFAULT_STRATEGY
#define PCACHE_DEFAULT_STRATEGY		PCACHE_WRITE_BOUNCE
#endif

const char *const strategy_names[PCACHE_WRITE_NR] = {
	[PCACHE_WRITE_NAIVE]		= "naive",
	[PCACHE_WRITE_BOUNCE]		= "bounce",
	[PCACHE_WRITE_BOUNCE_OPT]	= "bounce-opt",
	[PCACHE_WRITE_ATOMIC]		= "atomic",
	[PCACHE_WRITE_OPTIMISTIC]	= "optimistic",
};


static const struct super_operations *const backends[] = {
	&memory_super_ops,
	&synthetic_super_ops,
	&dir_super_ops,
};

void pcache_config_init(struct pcache_config *cfg)
{
	const char *env;

	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_limit = PCACHE_DEFAULT_MEM_LIMIT;
	cfg->max_file_size = PCACHE_DEFAULT_MAX_FILE_SIZE;
	cfg->backend = "memory";
	cfg->write_strategy = PCACHE_DEFAULT_STRATEGY;
	/* The tools' knob: every cache they make uses it unless told otherwise. */
	env = getenv("PCACHE_WRITE_STRATEGY");
	if (env && pcache_strategy_from_name(env) >= 0)
		cfg->write_strategy = pcache_strategy_from_name(env);
	env = getenv("PCACHE_PERFORM_WRITE");
	if (env)
		cfg->perform_write = atoi(env) != 0;
}

int pcache_set_write_strategy(int fd, int strategy)
{
	struct file *file;

	if (strategy < 0 || strategy >= PCACHE_WRITE_NR)
		return -EINVAL;
	file = fdget(fd);
	if (!file)
		return -EBADF;
	/* Read once per write, under i_rwsem: a write in flight keeps its own. */
	__atomic_store_n(&file->f_strategy, strategy, __ATOMIC_RELAXED);
	fdput(file);
	return 0;
}

int pcache_set_append(int fd, int on)
{
	struct file *file = fdget(fd);
	int flags;

	if (!file)
		return -EBADF;
	if (file->f_mode & FMODE_DIR) {
		fdput(file);
		return -EISDIR;
	}
	/* Read by writes under i_rwsem (READ_ONCE): one whole value or the other. */
	flags = READ_ONCE(file->f_flags);
	while (!__atomic_compare_exchange_n(&file->f_flags, &flags,
					    on ? flags | O_APPEND : flags & ~O_APPEND,
					    false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
	fdput(file);
	return 0;
}

const char *pcache_strategy_name(int strategy)
{
	if (strategy < 0 || strategy >= PCACHE_WRITE_NR)
		return NULL;
	return strategy_names[strategy];
}

int pcache_strategy_from_name(const char *name)
{
	int i;

	if (!name)
		return -EINVAL;
	for (i = 0; i < PCACHE_WRITE_NR; i++)
		if (!strcmp(name, strategy_names[i]))
			return i;
	return -EINVAL;
}

const char *pcache_strerror(int err)
{
	const char *s = NULL;

	if (err > INT_MIN)
		s = strerrordesc_np(err < 0 ? -err : err);
	return s ? s : "Unknown error";
}

int pcache_create(const struct pcache_config *cfg, struct pcache **out)
{
	const struct super_operations *s_op = NULL;
	const char *bname;
	struct pcache *pc;
	unsigned int i;
	int err;

	if (!cfg || !out)
		return -EINVAL;
	if (sysconf(_SC_PAGESIZE) != (long)PAGE_SIZE)
		return -EOPNOTSUPP;
	if (cfg->write_strategy < 0 || cfg->write_strategy >= PCACHE_WRITE_NR)
		return -EINVAL;
	if (cfg->max_file_size & ~PAGE_MASK ||
	    cfg->max_file_size > (uint64_t)LLONG_MAX)
		return -EINVAL;
	bname = cfg->backend ? cfg->backend : "memory";
	for (i = 0; i < ARRAY_SIZE(backends); i++)
		if (!strcmp(bname, backends[i]->name))
			s_op = backends[i];
	if (!s_op)
		return -ENOENT;
	err = uaccess_init();
	if (err)
		return err;
	lockdep_init();

	pc = kzalloc(sizeof(*pc));
	if (!pc)
		return -ENOMEM;
	pc->cfg = *cfg;
	pc->cfg.backend = NULL;		/* not ours to keep */
	pc->cfg.backend_arg = NULL;
	pc->s_op = s_op;
	pc->s_maxbytes = (loff_t)(cfg->max_file_size ? cfg->max_file_size :
				  PCACHE_DEFAULT_MAX_FILE_SIZE);
	pc->mem_limit_pages = (cfg->mem_limit ? cfg->mem_limit :
			       PCACHE_DEFAULT_MEM_LIMIT) >> PAGE_SHIFT;
	err = icache_init(pc);
	if (err)
		goto out_free;
	pthread_mutex_init(&pc->ns_lock, NULL);
	INIT_LIST_HEAD(&pc->s_inodes);
	INIT_LIST_HEAD(&pc->lru);
	pthread_mutex_init(&pc->lru_lock, NULL);
	pc->s_blkbits = PAGE_SHIFT;
	if (s_op->mount) {
		err = s_op->mount(pc, cfg->backend_arg);
		if (err)
			goto out_free_hash;
	}
	err = wb_start(pc);
	if (err)
		goto out_unmount;
	*out = pc;
	return 0;

out_unmount:
	wb_stop(pc);
	if (s_op->unmount)
		s_op->unmount(pc);
out_free_hash:
	pthread_mutex_destroy(&pc->lru_lock);
	pthread_mutex_destroy(&pc->ns_lock);
	kfree(pc->dhash);
	kfree(pc->bhash);
out_free:
	kfree(pc);
	return err;
}

int pcache_destroy(struct pcache *pc)
{
	struct inode *inode, *next;
	struct list_head live;
	int err = 0;

	if (!pc)
		return -EINVAL;
	pthread_mutex_lock(&pc->ns_lock);
	if (__atomic_load_n(&pc->files_open, __ATOMIC_RELAXED)) {
		pthread_mutex_unlock(&pc->ns_lock);
		return -EBUSY;
	}
	/* Views hold their files open, so none can be left here. */
	if (pc->mm)
		mm_destroy(pc->mm);
	pc->mm = NULL;
	pc->dying = true;
	pthread_mutex_unlock(&pc->ns_lock);
	/* The flusher takes ns_lock and inode references: stop it first. */
	wb_stop(pc);
	pthread_mutex_lock(&pc->ns_lock);
	/*
	 * Take every name out of the icache; then nobody else can see the
	 * inodes.  With no file open, every live inode has a name, and its
	 * names' references are all it has: it is left with one, ours.
	 */
	INIT_LIST_HEAD(&live);
	list_splice_init(&pc->s_inodes, &live);
	list_for_each_entry(inode, &live, i_sb_list) {
		while (!list_empty(&inode->i_dentry))
			icache_remove(pc, list_first_entry(&inode->i_dentry,
							   struct dentry, d_alias));
		assert(inode->i_count > 0);
		inode->i_count = 1;
	}
	pthread_mutex_unlock(&pc->ns_lock);

	list_for_each_entry_safe(inode, next, &live, i_sb_list) {
		int e;

		e = filemap_write_and_wait_range(&inode->i_data, 0, LLONG_MAX);
		if (!e && pc->s_op->sync)
			e = pc->s_op->sync(inode, 0);
		if (!e) {
			/* Only an error no descriptor was told about. */
			errseq_t since = errseq_sample(&inode->i_data.wb_err);

			e = errseq_check_and_advance(&inode->i_data.wb_err, &since);
		}
		if (e && !err)
			err = e;
		iput(inode);	/* off @live, and evicted */
	}
	if (pc->s_op->unmount)
		pc->s_op->unmount(pc);
	pthread_mutex_destroy(&pc->lru_lock);
	pthread_mutex_destroy(&pc->ns_lock);
	kfree(pc->dhash);
	kfree(pc->bhash);
	kfree(pc);
	return err;
}

/*
 * Copy a name from the caller into @buf (PATH_MAX bytes), as getname()
 * does, and check it.  The name is normalised: leading, repeated and "."
 * components go, so the root ("/", ".", "./") comes back as "".  Returns 0
 * with *namep pointing into @buf.
 */
static int getname(const char *uname, char *buf, const char **namep)
{
	const char *name;
	bool trailing;
	char *r, *w;
	long len;

	if (!uname)
		return -EFAULT;
	len = strncpy_from_user(buf, uname, PATH_MAX);
	if (len < 0)
		return (int)len;
	if (len == PATH_MAX)
		return -ENAMETOOLONG;
	if (!len)
		return -ENOENT;
	trailing = buf[len - 1] == '/';
	/* One spelling per file, so one inode: "/a//./b" is "a/b". */
	for (r = w = buf; *r;) {
		size_t n;

		while (*r == '/')
			r++;
		if (r[0] == '.' && (r[1] == '/' || !r[1])) {
			r++;
			continue;
		}
		for (n = 0; r[n] && r[n] != '/'; n++)
			;
		if (!n)
			break;
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		if (w != buf)
			*w++ = '/';
		memmove(w, r, n);
		w += n;
		r += n;
	}
	*w = '\0';
	name = buf;
	/* Every file is a regular file: "file/" is not a directory. */
	if (*name && trailing)
		return -ENOTDIR;
	*namep = name;
	return 0;
}

/* Two names, for rename and link: each as getname(). */
static int getname2(const char *uold, char *obuf, const char **oldp,
		    const char *unew, char *nbuf, const char **newp)
{
	return getname(uold, obuf, oldp) ?: getname(unew, nbuf, newp);
}

static int open_root(struct pcache *pc, int flags)
{
	struct file *file;
	int fd;

	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)))
		return -EISDIR;
	file = fd_alloc(&fd);
	if (!file)
		return fd;
	file->f_sb = pc;
	file->f_mode = FMODE_READ | FMODE_DIR;
	file->f_flags = flags;
	__atomic_add_fetch(&pc->files_open, 1, __ATOMIC_RELAXED);
	fd_publish(fd);
	return fd;
}

/* Find or create the inode for @name and take a reference for a file. */
static int open_inode(struct pcache *pc, const char *name, int flags,
		      mode_t mode, struct inode **inodep)
{
	struct inode *inode;
	int err;

	pthread_mutex_lock(&pc->ns_lock);
	inode = icache_find(pc, name);
	if (inode) {
		if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
			err = -EEXIST;
			goto out_unlock;
		}
	} else {
		inode = inode_alloc(pc);
		if (!inode) {
			err = -ENOMEM;
			goto out_unlock;
		}
		err = pc->s_op->lookup(pc, name, inode);
		if (!err && (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
			err = -EEXIST;
		if (!err) {
			/* Another name of a cached file (a hard link): that inode. */
			struct inode *alias = icache_find_backing(pc, inode->i_bdev,
								  inode->i_bino);

			if (alias) {
				inode_free(inode);
				inode = alias;
				err = icache_insert(pc, inode, name);
				if (err)
					goto out_unlock;
				goto found;
			}
		}
		/* Memory for the pages only once the file is sure to be opened. */
		if (!err || (err == -ENOENT && (flags & O_CREAT)))
			err = inode_init_mapping(inode, name) ?: err;
		if (err == -ENOENT && (flags & O_CREAT))
			err = pc->s_op->create(pc, name, mode, inode);
		if (!err)
			err = icache_insert(pc, inode, name);
		if (err) {
			inode_free(inode);
			goto out_unlock;
		}
	}
found:
	if (flags & O_DIRECTORY) {
		err = -ENOTDIR;
		goto out_unlock;
	}
	iget(inode);
	*inodep = inode;
	err = 0;
out_unlock:
	pthread_mutex_unlock(&pc->ns_lock);
	return err;
}

int pcache_open(struct pcache *pc, const char *uname, int flags, mode_t mode)
{
	char buf[PATH_MAX];
	const char *name;
	unsigned int fmode;
	struct inode *inode;
	struct file *file;
	int fd, err;

	if (!pc)
		return -EINVAL;
	err = getname(uname, buf, &name);
	if (err)
		return err;
	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		fmode = FMODE_READ;
		break;
	case O_WRONLY:
		fmode = FMODE_WRITE;
		break;
	case O_RDWR:
		fmode = FMODE_READ | FMODE_WRITE;
		break;
	default:
		return -EINVAL;
	}
	if (!*name)
		return open_root(pc, flags);
	/* Linux 6.4+: "create a directory, maybe" makes no sense. */
	if ((flags & (O_CREAT | O_DIRECTORY)) == (O_CREAT | O_DIRECTORY))
		return -EINVAL;

	/* The descriptor first, as Linux: a failed open creates nothing. */
	file = fd_alloc(&fd);
	if (!file)
		return fd;
	err = open_inode(pc, name, flags, mode, &inode);
	if (err) {
		fd_discard(fd);
		return err;
	}
	/* O_TRUNC writes the file whatever the access mode: it needs write. */
	if (pc->s_op->open)
		err = pc->s_op->open(inode, flags & O_TRUNC ? fmode | FMODE_WRITE : fmode);
	if (err) {
		iput(inode);
		fd_discard(fd);
		return err;
	}
	file->f_inode = inode;
	file->f_sb = pc;
	file->f_mode = fmode;
	file->f_flags = flags;
	file->f_strategy = pc->cfg.write_strategy;
	file->f_wb_err = errseq_sample(&inode->i_data.wb_err);
	__atomic_add_fetch(&pc->files_open, 1, __ATOMIC_RELAXED);
	/* Linux truncates on O_TRUNC whatever the access mode. */
	if (flags & O_TRUNC) {
		err = vfs_truncate(file, 0);
		if (err) {
			file_release(file);
			fd_discard(fd);
			return err;
		}
	}
	fd_publish(fd);
	return fd;
}

int pcache_close(int fd)
{
	struct file *file = fdget(fd);
	bool busy;

	if (!file)
		return -EBADF;
	/* A view needs its file: unmap it first (issue: views keep fds busy). */
	busy = __atomic_load_n(&file->f_nr_views, __ATOMIC_RELAXED) != 0;
	fdput(file);
	if (busy)
		return -EBUSY;
	return fd_close(fd);
}

/*
 * Resolve @fd for a read (@dir ITER_DEST) or write (ITER_SOURCE) at
 * @offset (ignored with @use_fpos): a referenced file, or NULL and *@err.
 */
static struct file *fdget_io(int fd, int dir, off_t offset, bool use_fpos,
			     ssize_t *err)
{
	unsigned int fmode = dir == ITER_SOURCE ? FMODE_WRITE : FMODE_READ;
	struct file *file = fdget(fd);

	if (!file) {
		*err = -EBADF;
		return NULL;
	}
	if (!(file->f_mode & fmode))
		*err = -EBADF;
	else if (file->f_mode & FMODE_DIR)
		*err = -EISDIR;
	else if (!use_fpos && offset < 0)
		*err = -EINVAL;
	else
		return file;
	fdput(file);
	return NULL;
}

/* @iter is set up; run the read or write at @pos or at the file position. */
static ssize_t do_io(struct file *file, struct iov_iter *iter, loff_t pos,
		     bool use_fpos)
{
	ssize_t ret;

	if (use_fpos) {
		pthread_mutex_lock(&file->f_pos_lock);
		pos = file->f_pos;
	}
	if (iter->data_source) {
		ret = vfs_write_iter(file, iter, &pos, use_fpos);
	} else {
		ret = vfs_read_iter(file, iter, pos);
		pos += ret > 0 ? ret : 0;
	}
	if (use_fpos) {
		file->f_pos = pos;
		pthread_mutex_unlock(&file->f_pos_lock);
	}
	return ret;
}

static ssize_t do_rw(int fd, int dir, void *buf, size_t count, off_t offset,
		     bool use_fpos)
{
	struct iov_iter iter;
	struct iovec iov;
	struct file *file;
	ssize_t ret;

	file = fdget_io(fd, dir, offset, use_fpos, &ret);
	if (!file)
		return ret;
	ret = import_single_range(dir, buf, count, &iov, &iter);
	if (ret >= 0)
		ret = do_io(file, &iter, offset, use_fpos);
	fdput(file);
	return ret;
}

static ssize_t do_rwv(int fd, int dir, const struct iovec *uvec, int iovcnt,
		      off_t offset, bool use_fpos)
{
	struct iovec fast[UIO_FASTIOV], *iov = NULL;
	struct iov_iter iter;
	struct file *file;
	ssize_t ret;

	file = fdget_io(fd, dir, offset, use_fpos, &ret);
	if (!file)
		return ret;
	ret = import_iovec(dir, uvec, iovcnt, fast, UIO_FASTIOV, &iov, &iter);
	if (ret >= 0)
		ret = do_io(file, &iter, offset, use_fpos);
	kfree(iov);
	fdput(file);
	return ret;
}

ssize_t pcache_pread(int fd, void *buf, size_t count, off_t offset)
{
	return do_rw(fd, ITER_DEST, buf, count, offset, false);
}

ssize_t pcache_pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	return do_rw(fd, ITER_SOURCE, (void *)buf, count, offset, false);
}

ssize_t pcache_read(int fd, void *buf, size_t count)
{
	return do_rw(fd, ITER_DEST, buf, count, 0, true);
}

ssize_t pcache_write(int fd, const void *buf, size_t count)
{
	return do_rw(fd, ITER_SOURCE, (void *)buf, count, 0, true);
}

ssize_t pcache_preadv(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
	return do_rwv(fd, ITER_DEST, iov, iovcnt, offset, false);
}

ssize_t pcache_pwritev(int fd, const struct iovec *iov, int iovcnt,
		       off_t offset)
{
	return do_rwv(fd, ITER_SOURCE, iov, iovcnt, offset, false);
}

ssize_t pcache_readv(int fd, const struct iovec *iov, int iovcnt)
{
	return do_rwv(fd, ITER_DEST, iov, iovcnt, 0, true);
}

ssize_t pcache_writev(int fd, const struct iovec *iov, int iovcnt)
{
	return do_rwv(fd, ITER_SOURCE, iov, iovcnt, 0, true);
}

off_t pcache_lseek(int fd, off_t offset, int whence)
{
	struct file *file = fdget(fd);
	off_t ret;

	if (!file)
		return -EBADF;
	ret = vfs_llseek(file, offset, whence);
	fdput(file);
	return ret;
}

int pcache_ftruncate(int fd, off_t length)
{
	struct file *file;
	int err;

	if (length < 0)
		return -EINVAL;
	file = fdget(fd);
	if (!file)
		return -EBADF;
	/* ftruncate(2): a descriptor not open for writing is -EINVAL. */
	if (!(file->f_mode & FMODE_WRITE))
		err = -EINVAL;
	else
		err = vfs_truncate(file, length);
	fdput(file);
	return err;
}

static int do_fsync(int fd, int datasync)
{
	struct file *file = fdget(fd);
	int err = 0;

	if (!file)
		return -EBADF;
	if (file->f_inode)
		err = vfs_fsync_range(file, 0, LLONG_MAX, datasync);
	fdput(file);
	return err;
}

int pcache_fsync(int fd)
{
	return do_fsync(fd, 0);
}

int pcache_fdatasync(int fd)
{
	return do_fsync(fd, 1);
}

/*
 * syncfs: every file of the cache, open or not.  Inodes are pinned with
 * i_count, a batch at a time, under ns_lock; the writeback runs without it.
 */
int pcache_sync(struct pcache *pc)
{
	struct inode *batch[64], *inode;
	uint64_t gen;
	int err = 0;

	if (!pc)
		return -EINVAL;
	gen = __atomic_add_fetch(&pc->sync_gen, 1, __ATOMIC_RELAXED);
	for (;;) {
		unsigned int n = 0, i;

		pthread_mutex_lock(&pc->ns_lock);
		list_for_each_entry(inode, &pc->s_inodes, i_sb_list) {
			if (inode->i_sync_gen == gen)
				continue;
			inode->i_sync_gen = gen;
			iget(inode);
			batch[n++] = inode;
			if (n == ARRAY_SIZE(batch))
				break;
		}
		pthread_mutex_unlock(&pc->ns_lock);
		if (!n)
			break;
		for (i = 0; i < n; i++) {
			int e = filemap_write_and_wait_range(&batch[i]->i_data,
							     0, LLONG_MAX);

			if (!e && pc->s_op->sync)
				e = pc->s_op->sync(batch[i], 0);
			if (e && !err)
				err = e;
			iput(batch[i]);
		}
	}
	return err;
}

int pcache_futimens(int fd, const struct timespec utimes[2])
{
	struct timespec t[2], now;
	struct file *file;
	struct inode *inode;
	int err = 0, k;

	if (utimes) {
		if (copy_from_user(t, utimes, sizeof(t)))
			return -EFAULT;
	} else {
		t[0].tv_nsec = t[1].tv_nsec = UTIME_NOW;
	}
	for (k = 0; k < 2; k++)
		if (t[k].tv_nsec != UTIME_NOW && t[k].tv_nsec != UTIME_OMIT &&
		    (t[k].tv_nsec < 0 || t[k].tv_nsec >= 1000000000))
			return -EINVAL;
	file = fdget(fd);
	if (!file)
		return -EBADF;
	inode = file->f_inode;
	if (!inode) {
		fdput(file);
		return -EISDIR;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	for (k = 0; k < 2; k++)
		if (t[k].tv_nsec == UTIME_NOW)
			t[k] = now;
	pthread_mutex_lock(&inode->i_lock);
	if (t[0].tv_nsec != UTIME_OMIT)
		inode->i_atime = t[0];
	if (t[1].tv_nsec != UTIME_OMIT) {
		inode->i_mtime = t[1];
		/* inode_touch's shortcut must not keep this time for a later write. */
		__atomic_store_n(&inode->i_mtime_stamp, 0, __ATOMIC_RELAXED);
	}
	inode->i_ctime = now;
	pthread_mutex_unlock(&inode->i_lock);
	fdput(file);
	return err;
}

int pcache_fstat(int fd, struct stat *st)
{
	struct file *file = fdget(fd);
	struct stat kst;
	int err = 0;

	if (!file)
		return -EBADF;
	if (file->f_inode) {
		generic_fillattr(file->f_inode, &kst);
	} else {
		memset(&kst, 0, sizeof(kst));
		kst.st_mode = S_IFDIR | 0755;
		kst.st_nlink = 2;
		kst.st_blksize = PAGE_SIZE;
		kst.st_uid = getuid();
		kst.st_gid = getgid();
	}
	if (copy_to_user(st, &kst, sizeof(kst)))
		err = -EFAULT;
	fdput(file);
	return err;
}

int pcache_unlink(struct pcache *pc, const char *uname)
{
	struct inode *inode = NULL;
	struct dentry *dentry;
	char buf[PATH_MAX];
	const char *name;
	int err;

	if (!pc)
		return -EINVAL;
	err = getname(uname, buf, &name);
	if (err)
		return err;
	if (!*name)
		return -EISDIR;
	pthread_mutex_lock(&pc->ns_lock);
	dentry = d_lookup(pc, name);
	if (!dentry && !(pc->s_op->as_flags & AS_UNEVICTABLE)) {
		/* Not cached: the backend may still have it. */
		err = pc->s_op->unlink(pc, name);
	} else if (!dentry) {
		err = -ENOENT;
	} else {
		err = pc->s_op->unlink(pc, name);
		if (!err) {
			inode = dentry->d_inode;
			icache_remove(pc, dentry);
		}
	}
	pthread_mutex_unlock(&pc->ns_lock);
	if (inode) {
		inode_touch_ctime(inode);
		iput(inode);	/* the name's reference */
	}
	return err;
}

/*
 * The cached files under directory @dir, which is becoming @to: their new
 * names, made before anything changes (so the rename cannot fail half
 * way).  ns_lock held.  Returns how many (0: none), or -ENOMEM.
 */
struct moved {
	struct dentry *dentry;
	char *name;
};

static long names_under(struct pcache *pc, const char *dir, const char *to,
			struct moved **movedp)
{
	size_t n = strlen(dir), cap = 0, nr = 0;
	struct moved *v = NULL, *bigger;
	unsigned int i;

	for (i = 0; i < (1u << pc->hash_bits); i++) {
		struct dentry *d;

		for (d = pc->dhash[i]; d; d = d->d_hash_next) {
			if (strncmp(d->d_name, dir, n) || d->d_name[n] != '/')
				continue;
			if (nr == cap) {
				cap = cap ? 2 * cap : 8;
				bigger = krealloc(v, cap * sizeof(*v));
				if (!bigger)
					goto out_nomem;
				v = bigger;
			}
			v[nr].dentry = d;
			v[nr].name = kmalloc(strlen(to) + strlen(d->d_name + n) + 1);
			if (!v[nr].name)
				goto out_nomem;
			strcpy(v[nr].name, to);
			strcat(v[nr].name, d->d_name + n);
			nr++;
		}
	}
	*movedp = v;
	return (long)nr;

out_nomem:
	while (nr)
		kfree(v[--nr].name);
	kfree(v);
	return -ENOMEM;
}

int pcache_rename(struct pcache *pc, const char *uold, const char *unew)
{
	char obuf[PATH_MAX], nbuf[PATH_MAX];
	struct dentry *dentry, *tdentry;
	struct inode *inode, *target;
	struct moved *moved = NULL;
	char *new_name = NULL;
	long nr_moved = 0;
	const char *old, *new;
	int err;

	if (!pc)
		return -EINVAL;
	err = getname2(uold, obuf, &old, unew, nbuf, &new);
	if (err)
		return err;
	if (!*old || !*new)
		return -EBUSY;		/* the root */
	pthread_mutex_lock(&pc->ns_lock);
	dentry = d_lookup(pc, old);
	tdentry = d_lookup(pc, new);
	inode = dentry ? dentry->d_inode : NULL;
	target = tdentry ? tdentry->d_inode : NULL;
	if (inode == target && inode) {
		err = 0;		/* two names of one file: nothing to do */
		target = NULL;
		goto out_unlock;
	}
	if (dentry) {
		/* Memory for the new name first: past the backend's rename, no failing. */
		new_name = kmalloc(strlen(new) + 1);
		if (!new_name) {
			err = -ENOMEM;
			target = NULL;
			goto out_unlock;
		}
		strcpy(new_name, new);
	} else if (pc->s_op->rename) {
		/* Maybe a directory: the cached files in it move with it. */
		nr_moved = names_under(pc, old, new, &moved);
		if (nr_moved < 0) {
			err = (int)nr_moved;
			target = NULL;
			goto out_unlock;
		}
	}
	if (!pc->s_op->rename) {
		/* Only cached names exist. */
		err = !inode ? -ENOENT : strchr(new, '/') ? -ENOTDIR : 0;
	} else {
		err = pc->s_op->rename(pc, old, new);
	}
	for (long k = 0; k < nr_moved; k++) {
		if (!err)
			icache_rename(pc, moved[k].dentry, moved[k].name);
		else
			kfree(moved[k].name);
	}
	kfree(moved);
	if (!err && tdentry)
		icache_remove(pc, tdentry);	/* open descriptors keep @target */
	else
		target = NULL;
	if (dentry) {
		if (!err)
			icache_rename(pc, dentry, new_name);
		else
			kfree(new_name);
	}
out_unlock:
	pthread_mutex_unlock(&pc->ns_lock);
	if (inode && !err)
		inode_touch_ctime(inode);
	if (target)
		iput(target);	/* the name's reference */
	return err;
}

int pcache_link(struct pcache *pc, const char *uold, const char *unew)
{
	char obuf[PATH_MAX], nbuf[PATH_MAX];
	struct inode *inode = NULL;
	struct dentry *dentry;
	const char *old, *new;
	int err;

	if (!pc)
		return -EINVAL;
	err = getname2(uold, obuf, &old, unew, nbuf, &new);
	if (err)
		return err;
	if (!*old)
		return -EPERM;		/* the root: a directory */
	if (!*new)
		return -EEXIST;
	pthread_mutex_lock(&pc->ns_lock);
	dentry = d_lookup(pc, old);
	if (pc->s_op->link) {
		err = pc->s_op->link(pc, old, new);
		/* Cache the new name now if we can; if not, a lookup will find it. */
		if (!err && dentry && !d_lookup(pc, new) &&
		    !icache_insert(pc, dentry->d_inode, new))
			inode = dentry->d_inode;
	} else {
		/* Only cached names exist. */
		err = !dentry ? -ENOENT : d_lookup(pc, new) ? -EEXIST :
		      strchr(new, '/') ? -ENOENT : 0;
		if (!err)
			err = icache_insert(pc, dentry->d_inode, new);
		if (!err)
			inode = dentry->d_inode;
	}
	pthread_mutex_unlock(&pc->ns_lock);
	if (inode)
		inode_touch_ctime(inode);
	return err;
}

int pcache_stat(struct pcache *pc, const char *uname, struct stat *st)
{
	char buf[PATH_MAX];
	struct inode *inode;
	struct stat kst;
	const char *name;
	int err;

	if (!pc)
		return -EINVAL;
	err = getname(uname, buf, &name);
	if (err)
		return err;
	if (!*name) {
		memset(&kst, 0, sizeof(kst));
		kst.st_mode = S_IFDIR | 0755;
		kst.st_nlink = 2;
		kst.st_uid = getuid();
		kst.st_gid = getgid();
		err = 0;
	} else {
		pthread_mutex_lock(&pc->ns_lock);
		inode = icache_find(pc, name);
		if (!inode && pc->s_op->getattr) {
			err = pc->s_op->getattr(pc, name, &kst);
			/* Another name of a cached file: the cache's size and times. */
			if (!err && S_ISREG(kst.st_mode))
				inode = icache_find_backing(pc, kst.st_dev, kst.st_ino);
		} else if (!inode) {
			err = -ENOENT;
		}
		if (inode)
			generic_fillattr(inode, &kst);
		pthread_mutex_unlock(&pc->ns_lock);
	}
	if (!err && copy_to_user(st, &kst, sizeof(kst)))
		err = -EFAULT;
	return err;
}

struct name_list {
	struct name_entry {
		char *name;
		struct stat st;
	} *v;
	size_t n, cap;
	int err;
};

static int collect_name(void *arg, const char *name, const struct stat *st)
{
	struct name_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct name_entry *v = krealloc(l->v, cap * sizeof(*v));

		if (!v)
			return l->err = -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].name = kmalloc(strlen(name) + 1);
	if (!l->v[l->n].name)
		return l->err = -ENOMEM;
	strcpy(l->v[l->n].name, name);
	l->v[l->n].st = *st;
	l->n++;
	return 0;
}

int pcache_list(struct pcache *pc, pcache_list_fn fn, void *arg)
{
	struct name_list l = { 0 };
	size_t i;
	int ret;

	if (!pc || !fn)
		return -EINVAL;
	/* Snapshot under the lock, call back without it: @fn may call us. */
	pthread_mutex_lock(&pc->ns_lock);
	ret = pc->s_op->list(pc, collect_name, &l);
	pthread_mutex_unlock(&pc->ns_lock);
	for (i = 0; !ret && i < l.n; i++)
		ret = fn(arg, l.v[i].name, &l.v[i].st);
	for (i = 0; i < l.n; i++)
		kfree(l.v[i].name);
	kfree(l.v);
	return ret;
}

int pcache_stats(struct pcache *pc, struct pcache_stats *st)
{
	struct stat_counters sum;

	if (!pc || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
	st->pages_cached = LOAD(pc->nr_pages);
	st->pages_dirty = LOAD(pc->nr_dirty);
	st->pages_writeback = LOAD(pc->nr_writeback);
	st->mem_limit_pages = pc->mem_limit_pages;
	st->lockdep_reports = lockdep_reports();
	stat_snapshot(pc, &sum);
	st->backend_reads = sum.backend_reads;
	st->backend_writes = sum.backend_writes;
	st->backend_allocs = sum.backend_allocs;
	st->backend_syncs = sum.backend_syncs;
	st->backend_other = sum.backend_other;
	st->pages_reclaimed = sum.pages_reclaimed;
	st->reclaim_waits = sum.reclaim_waits;
	st->throttle_waits = sum.throttle_waits;
	st->throttle_ns = sum.throttle_ns;
	st->flusher_runs = sum.flusher_runs;
	st->writeback_errors = sum.writeback_errors;
	st->files_open = LOAD(pc->files_open);
	pthread_mutex_lock(&pc->ns_lock);
	st->inodes = pc->nr_inodes;
	pthread_mutex_unlock(&pc->ns_lock);
	st->bytes_written = sum.bytes_written;
	st->bytes_read = sum.bytes_read;
	st->bytes_copied = sum.bytes_copied;
	st->read_folio_calls = sum.read_folio_calls;
	st->writeback_pages = sum.writeback_pages;
	st->perform_write_calls = sum.perform_write_calls;
	memcpy(st->strategy, sum.strategy, sizeof(st->strategy));
	if (__atomic_load_n(&pc->mm, __ATOMIC_ACQUIRE)) {
		struct mm *mm = pc->mm;

		mmap_read_lock(mm);
		st->views = mm->nr_views;
		mmap_unlock(mm);
		st->view_faults = LOAD(mm->stats.faults);
		st->view_wp_faults = LOAD(mm->stats.wp_faults);
		st->view_fault_around = LOAD(mm->stats.fault_around);
		st->view_sigbus = LOAD(mm->stats.sigbus);
		st->view_refused = LOAD(mm->stats.refused);
		st->view_populated = LOAD(mm->stats.populated);
	}
#undef LOAD
	return 0;
}

/* pcache_fchmod/pcache_fchown: the checks, then notify_change (attr.c). */
static int do_setattr(int fd, const struct iattr *attr)
{
	struct file *file = fdget(fd);
	struct inode *inode;
	int err;

	if (!file)
		return -EBADF;
	inode = file->f_inode;
	if (!inode) {
		fdput(file);
		return -EISDIR;
	}
	err = notify_change(inode, attr);
	fdput(file);
	return err;
}

int pcache_fchmod(int fd, mode_t mode)
{
	struct iattr attr = {
		.ia_valid = ATTR_MODE,
		.ia_mode = mode & 07777,	/* fchmod(2) ignores the rest */
	};

	return do_setattr(fd, &attr);
}

int pcache_fchown(int fd, uid_t uid, gid_t gid)
{
	/* A chown of a regular file drops its set-id bits, as Linux's does. */
	struct iattr attr = { .ia_valid = ATTR_KILL_SUID | ATTR_KILL_SGID };

	if (uid != (uid_t)-1) {
		attr.ia_valid |= ATTR_UID;
		attr.ia_uid = uid;
	}
	if (gid != (gid_t)-1) {
		attr.ia_valid |= ATTR_GID;
		attr.ia_gid = gid;
	}
	return do_setattr(fd, &attr);
}
