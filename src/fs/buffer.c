/*
 * buffer.c - the page-level calls of the block layer (buffer.h): what the
 * kernel's fs/buffer.c does with buffer_heads, done with three bitmaps.
 */
#include "buffer.h"

bool page_blocks_uptodate(struct inode *inode, struct page *page,
			  uint32_t mask)
{
	assert(PageLocked(page));
	set_page_blocks(page, BLK_UPTODATE_SHIFT, mask);
	if (page_blocks(page, BLK_UPTODATE_SHIFT) != blocks_all(inode))
		return false;
	SetPageUptodate(page);
	return true;
}

void block_commit_write(struct inode *inode, struct page *page, size_t from,
			size_t to)
{
	uint32_t mask = blocks_touched(inode, from, to);

	page_blocks_uptodate(inode, page, mask);
	set_page_blocks(page, BLK_DIRTY_SHIFT, mask);
	/* Not folio_mark_dirty(): that would dirty every block. */
	filemap_dirty_folio(page->mapping, page);
}

bool block_dirty_folio(struct address_space *mapping, struct page *page)
{
	set_page_blocks(page, BLK_DIRTY_SHIFT, blocks_all(mapping->host));
	return filemap_dirty_folio(mapping, page);
}

void block_invalidate_folio(struct page *page, size_t offset, size_t len)
{
	struct inode *inode = page->mapping->host;
	uint32_t gone = blocks_covered(inode, offset, offset + len);

	clear_page_blocks(page, BLK_DIRTY_SHIFT, gone);
	clear_page_blocks(page, BLK_MAPPED_SHIFT, gone);
}
