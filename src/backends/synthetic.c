/*
 * synthetic.c - a backend whose storage is a formula: for tests that need
 * pages the cache does not have yet, with known bytes behind them.
 *
 * A file named "pattern-N" exists from the start (lookup finds it) with
 * N bytes, byte o being synthetic_byte(o); other names are created empty
 * and behave like the memory backend's files.  Pages are read in with
 * read_folio (counted in read_folio_calls), so a page of a pattern file is
 * not uptodate until it is read or wholly written: this is the "short copy
 * into a page that is not uptodate" case of BRIEF §4, with something other
 * than zeroes to lose.  Written data stays in the cache (AS_UNEVICTABLE);
 * writeback cleans pages as the memory backend does.
 *
 * A write into a page that is not uptodate reads it in first unless it
 * covers the whole page, as block_write_begin() does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fs/fs.h"
#include "../mm/page.h"

/* What the backend "stores" at byte @off of a pattern file. */
static inline unsigned char synthetic_byte(uint64_t off)
{
	return (unsigned char)((off * 131 + (off >> 12) * 7 + 5) | 1);
}

/* inode->i_private: how many bytes of the pattern the file still holds. */
static uint64_t backing_size(const struct inode *inode)
{
	return (uint64_t)(uintptr_t)__atomic_load_n(&inode->i_private,
						    __ATOMIC_RELAXED);
}

static int synthetic_read_folio(struct file *file, struct page *page)
{
	struct inode *inode = page->mapping->host;
	uint64_t base = page->index << PAGE_SHIFT, backed = backing_size(inode);
	unsigned char *p = (unsigned char *)page_address(page);
	size_t i;

	for (i = 0; i < PAGE_SIZE; i++)
		p[i] = base + i < backed ? synthetic_byte(base + i) : 0;
	SetPageUptodate(page);
	return 0;
}

static int synthetic_write_begin(struct file *file,
				 struct address_space *mapping, loff_t pos,
				 unsigned int len, struct page **pagep,
				 void **fsdata)
{
	struct page *page;
	int err;

	err = grab_cache_page_write_begin(mapping, (uint64_t)pos >> PAGE_SHIFT,
					  &page);
	if (err)
		return err;
	/* A partial write keeps the rest of the page: read it in first. */
	if (!PageUptodate(page) && len != PAGE_SIZE) {
		err = mapping_read_folio(file, page);
		if (err) {
			unlock_page(page);
			put_page(page);
			return err;
		}
	}
	*pagep = page;
	return 0;
}

static int synthetic_writepage(struct page *page, struct writeback_control *wbc,
			       void *data)
{
	folio_end_writeback(page);
	return 0;
}

static int synthetic_writepages(struct address_space *mapping,
				struct writeback_control *wbc)
{
	return write_cache_pages(mapping, wbc, synthetic_writepage, NULL);
}

static const struct address_space_operations synthetic_aops = {
	.read_folio	= synthetic_read_folio,
	.write_begin	= synthetic_write_begin,
	.write_end	= simple_write_end,	/* short into !uptodate commits 0 */
	.writepages	= synthetic_writepages,
	.dirty_folio	= filemap_dirty_folio,
};

static int synthetic_lookup(struct pcache *pc, const char *name,
			    struct inode *inode)
{
	unsigned long long size;
	char end;

	if (sscanf(name, "pattern-%llu%c", &size, &end) != 1)
		return -ENOENT;
	inode->i_size = (loff_t)size;
	inode->i_private = (void *)(uintptr_t)size;
	return 0;
}

static int synthetic_create(struct pcache *pc, const char *name, mode_t mode,
			    struct inode *inode)
{
	if (strchr(name, '/'))
		return -ENOTDIR;
	inode->i_mode = S_IFREG | (mode & 07777);
	return 0;
}

static int synthetic_unlink(struct pcache *pc, const char *name)
{
	return 0;
}

static int synthetic_setsize(struct inode *inode, loff_t size)
{
	/* Shrinking forgets the pattern past the end; growing adds a hole. */
	if ((uint64_t)size < backing_size(inode))
		__atomic_store_n(&inode->i_private, (void *)(uintptr_t)size,
				 __ATOMIC_RELAXED);
	return 0;
}

const struct super_operations synthetic_super_ops = {
	.name		= "synthetic",
	.a_ops		= &synthetic_aops,
	.as_flags	= AS_UNEVICTABLE,
	.lookup		= synthetic_lookup,
	.create		= synthetic_create,
	.unlink		= synthetic_unlink,
	.list		= icache_list,
	.setsize	= synthetic_setsize,
};
