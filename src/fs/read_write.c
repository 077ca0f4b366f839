/*
 * read_write.c - the VFS layer between the public calls and the page
 * cache: write checks and locking, truncate, fsync, lseek (the kernel's
 * fs/read_write.c, mm/filemap.c's generic_file_write_iter, fs/open.c).
 *
 * Locking: a write holds i_rwsem exclusive from the O_APPEND position
 * through the last page, so appends are atomic and i_size only moves under
 * it.  Reads take no inode lock (as filemap_read: page locks and i_size
 * rechecks are enough).  The file position (read/write/lseek without an
 * offset) is serialised by f_pos_lock, taken before i_rwsem.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>

#include "../lib/iov_iter.h"
#include "../mm/mm.h"
#include "../mm/page.h"
#include "fs.h"

/*
 * The size limit for a write at @pos: the configured maximum and, when the
 * write would grow the file, RLIMIT_FSIZE.  getrlimit() is a system call,
 * so it is asked only for writes that extend the file (an overwrite below
 * i_size cannot newly exceed a limit the file already satisfies... unless
 * the limit was lowered; Linux checks every write, pcache checks extends).
 */
static loff_t write_limit(struct inode *inode, loff_t pos, size_t count)
{
	loff_t limit = inode->i_sb->s_maxbytes;
	struct rlimit rl;

	if ((uint64_t)pos + count > (uint64_t)i_size_read(inode) &&
	    !getrlimit(RLIMIT_FSIZE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    (loff_t)rl.rlim_cur < limit)
		limit = (loff_t)rl.rlim_cur;
	return limit;
}

/* generic_write_checks: the position, and the limits. 0 = nothing to do. */
static ssize_t generic_write_checks(struct file *file, struct iov_iter *from,
				    loff_t *pos)
{
	struct inode *inode = file->f_inode;
	size_t count = iov_iter_count(from);
	loff_t limit;

	if (!count)
		return 0;
	if (READ_ONCE(file->f_flags) & O_APPEND)	/* pcache_set_append */
		*pos = i_size_read(inode);
	if (*pos < 0)
		return -EINVAL;
	limit = write_limit(inode, *pos, count);
	if (*pos >= limit)
		return -EFBIG;
	if ((uint64_t)count > (uint64_t)(limit - *pos))
		iov_iter_truncate(from, (size_t)(limit - *pos));
	return (ssize_t)iov_iter_count(from);
}

ssize_t vfs_write_iter(struct file *file, struct iov_iter *from, loff_t *ppos,
		       bool use_fpos)
{
	struct inode *inode = file->f_inode;
	loff_t pos = *ppos, isize;
	ssize_t ret;

	inode_lock(inode);
	ret = generic_write_checks(file, from, &pos);
	if (ret > 0) {
		isize = i_size_read(inode);
		if (pos > isize)
			pagecache_isize_extended(inode, isize, pos);
		ret = generic_perform_write(file, from, pos);
		if (ret > 0)
			inode_touch(inode, true, false);
	}
	inode_unlock(inode);

	if (ret > 0) {
		/* Linux moves f_pos to the end of an O_APPEND write, pwrite aside. */
		if (use_fpos)
			*ppos = pos + ret;
		if (file->f_flags & O_DSYNC) {
			int err = vfs_fsync_range(file, pos, pos + ret - 1,
						  (file->f_flags & O_SYNC) != O_SYNC);
			if (err)
				ret = err;
		}
	}
	return ret;
}

ssize_t vfs_read_iter(struct file *file, struct iov_iter *to, loff_t pos)
{
	if (pos < 0)
		return -EINVAL;
	if (!iov_iter_count(to))
		return 0;
	return filemap_read(file, to, pos);
}

int vfs_truncate(struct file *file, loff_t length)
{
	struct inode *inode = file->f_inode;
	struct pcache *pc = inode->i_sb;
	loff_t old;
	int err = 0;

	if (length < 0)
		return -EINVAL;
	if (length > pc->s_maxbytes)
		return -EFBIG;
	inode_lock(inode);
	old = i_size_read(inode);
	if (length > old && length > write_limit(inode, old, (size_t)(length - old))) {
		err = -EFBIG;
		goto out_unlock;
	}
	if (length < old) {
		struct address_space *mapping = &inode->i_data;

		/*
		 * Invariant 4 of filemap.c: the size drops before the pages go;
		 * invalidate_lock keeps view faults from mapping them again.
		 */
		filemap_invalidate_lock(mapping);
		i_size_write(inode, length);
		truncate_pagecache(inode, length);
		unmap_mapping_pages(mapping, PAGE_ALIGN((uint64_t)length) >> PAGE_SHIFT);
		filemap_invalidate_unlock(mapping);
	} else if (length > old) {
		/* Views must fault on the new hole, not hit the memfd's end. */
		err = mapping_cover(&inode->i_data, length);
		if (err)
			goto out_unlock;
		pagecache_isize_extended(inode, old, length);
		i_size_grow(inode, length);
	}
	if (pc->s_op->setsize)
		err = pc->s_op->setsize(inode, length);
	inode_touch(inode, true, false);
out_unlock:
	inode_unlock(inode);
	return err;
}

int vfs_fsync_range(struct file *file, loff_t start, loff_t end, int datasync)
{
	struct inode *inode = file->f_inode;
	struct pcache *pc = inode->i_sb;
	int err, err2;

	err = filemap_write_and_wait_range(&inode->i_data, start, end);
	if (!err && pc->s_op->sync)
		err = pc->s_op->sync(inode, datasync);
	/* Report each writeback error once to this file (errseq). */
	err2 = errseq_check_and_advance(&inode->i_data.wb_err, &file->f_wb_err);
	return err ? err : err2;
}

/* SEEK_DATA / SEEK_HOLE where a page missing from the index is a hole. */
static loff_t seek_hole_data(struct address_space *mapping, loff_t offset,
			     loff_t isize, int whence)
{
	pgoff_t index = (uint64_t)offset >> PAGE_SHIFT;
	loff_t found;

	pthread_rwlock_rdlock(&mapping->i_pages_lock);
	if (whence == SEEK_DATA) {
		uint64_t next = radix_next_item(&mapping->i_pages, index);

		found = next == UINT64_MAX ? isize : (loff_t)(next << PAGE_SHIFT);
		if (found >= isize)
			found = -ENXIO;
	} else {
		while ((loff_t)(index << PAGE_SHIFT) < isize &&
		       radix_lookup(&mapping->i_pages, index))
			index++;
		found = (loff_t)(index << PAGE_SHIFT);
		if (found > isize)
			found = isize;
	}
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	if (found >= 0 && found < offset)
		found = offset;
	return found;
}

off_t vfs_llseek(struct file *file, off_t offset, int whence)
{
	struct inode *inode = file->f_inode;
	loff_t isize = inode ? i_size_read(inode) : 0, pos;

	pthread_mutex_lock(&file->f_pos_lock);
	switch (whence) {
	case SEEK_SET:
		pos = offset;
		break;
	case SEEK_CUR:
		if (__builtin_add_overflow(file->f_pos, offset, &pos))
			pos = -EOVERFLOW;
		else if (pos < 0)
			pos = -EINVAL;
		goto check;
	case SEEK_END:
		if (__builtin_add_overflow(isize, offset, &pos))
			pos = -EOVERFLOW;
		else if (pos < 0)
			pos = -EINVAL;
		goto check;
	case SEEK_DATA:
	case SEEK_HOLE:
		if (!inode || offset < 0 || offset >= isize) {
			pos = offset < 0 ? -EINVAL : -ENXIO;
			goto check;
		}
		if (!inode->i_data.a_ops->read_folio)
			pos = seek_hole_data(&inode->i_data, offset, isize, whence);
		else
			pos = whence == SEEK_DATA ? offset : isize;
		goto check;
	default:
		pos = -EINVAL;
		goto check;
	}
	if (pos < 0)
		pos = -EINVAL;
check:
	if (pos >= 0 && inode && pos > inode->i_sb->s_maxbytes)
		pos = -EINVAL;
	if (pos >= 0)
		file->f_pos = pos;
	pthread_mutex_unlock(&file->f_pos_lock);
	return (off_t)pos;
}

void file_release(struct file *file)
{
	struct pcache *pc = file->f_sb;

	__atomic_sub_fetch(&pc->files_open, 1, __ATOMIC_RELAXED);
	if (file->f_inode)
		iput(file->f_inode);
}
