/*
 * memory.c - the memory backend: files live only in the cache, as ramfs.
 *
 * It is the smallest complete backend, and so the example of the seam:
 *
 *  - super_operations: the namespace is the icache itself (a file exists
 *    iff the cache holds its inode), so lookup finds nothing the cache
 *    doesn't already have, create and unlink have nothing to do, and list
 *    walks the icache.
 *  - address_space_operations: there is no storage to read, so read_folio
 *    is NULL (a page nobody wrote is a hole: zeroes); write_begin/write_end
 *    are the generic "simple" pair; writepages "writes" a dirty page by
 *    declaring it clean, which lets fsync and the dirty/clean cycle behave
 *    as with a real backend.
 *  - AS_UNEVICTABLE: pages are the only copy of the data; the memory limit
 *    therefore acts as the filesystem's size (-ENOSPC when full).
 *  - perform_write (used when pcache_config.perform_write is set): the
 *    seed's second proposal, with the core's batched copy loop
 *    (mm/write_batch.c): a page not in the cache is a hole, so preparing it
 *    is zeroing what the write will not cover.
 */
#include <errno.h>
#include <string.h>

#include "../fs/fs.h"
#include "../lib/iov_iter.h"
#include "../mm/page.h"

static int memory_writepage(struct page *page, struct writeback_control *wbc,
			    void *data)
{
	/* The page is the storage: nothing to copy anywhere. */
	folio_end_writeback(page);
	return 0;
}

static int memory_writepages(struct address_space *mapping,
			     struct writeback_control *wbc)
{
	return write_cache_pages(mapping, wbc, memory_writepage, NULL);
}

/* perform_write's batches: a page not uptodate is a hole. */
static int memory_batch_prepare(struct file *file, struct page *page,
				size_t from, size_t to)
{
	zero_user_segment(page, 0, from);
	zero_user_segment(page, to, PAGE_SIZE);
	return 0;
}

static void memory_batch_commit(struct page *page, size_t from, size_t to)
{
	SetPageUptodate(page);
}

static const struct write_batch_ops memory_batch_ops = {
	.prepare	= memory_batch_prepare,
	.commit		= memory_batch_commit,
};

static ssize_t memory_perform_write(struct file *file, struct iov_iter *i,
				    loff_t pos)
{
	return batch_perform_write(file, i, pos, &memory_batch_ops);
}

static const struct address_space_operations memory_aops = {
	.read_folio	= NULL,		/* holes read as zeroes */
	.write_begin	= simple_write_begin,
	.write_end	= simple_write_end,
	.perform_write	= memory_perform_write,
	.writepages	= memory_writepages,
	.dirty_folio	= filemap_dirty_folio,
};

static int memory_lookup(struct pcache *pc, const char *name,
			 struct inode *inode)
{
	return -ENOENT;		/* not in the icache: does not exist */
}

static int memory_create(struct pcache *pc, const char *name, mode_t mode,
			 struct inode *inode)
{
	/* Flat namespace: no directories to create files in. */
	if (strchr(name, '/'))
		return -ENOTDIR;
	inode->i_mode = S_IFREG | (mode & 07777);
	return 0;
}

static int memory_unlink(struct pcache *pc, const char *name)
{
	return 0;
}

const struct super_operations memory_super_ops = {
	.name		= "memory",
	.a_ops		= &memory_aops,
	.as_flags	= AS_UNEVICTABLE,
	.lookup		= memory_lookup,
	.create		= memory_create,
	.unlink		= memory_unlink,
	.list		= icache_list,
};
