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
 */
#include <errno.h>
#include <string.h>

#include "../fs/fs.h"
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

static const struct address_space_operations memory_aops = {
	.read_folio	= NULL,		/* holes read as zeroes */
	.write_begin	= simple_write_begin,
	.write_end	= simple_write_end,
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
