/*
 * buffer.h - blocks smaller than a page: the kernel's buffer_head layer,
 * as three bitmaps in page->blocks.
 *
 * A mapping flagged AS_BLOCKS cuts each page into PAGE_SIZE >> i_blkbits
 * blocks (1, 2, 4 or 8).  Each block has its own state:
 *
 *   uptodate  the block's bytes in the page are the file's bytes
 *   dirty     the block must be written back (implies uptodate)
 *   mapped    storage is allocated for it (a hole or a new block is not)
 *
 * The page flags summarise them: PG_uptodate when every block is uptodate,
 * PG_dirty when any block is dirty.  So a page may be dirty and not
 * uptodate (page.h invariant 1): a write into part of a page not in the
 * cache reads in only the blocks it partly covers, writes the blocks it
 * covers, and leaves the others unread; writeback writes only dirty blocks,
 * and read_folio reads only the blocks that are not uptodate.
 *
 * Bits change with atomics.  Uptodate and mapped bits change under the page
 * lock; dirty bits are set under the page lock or with the page held stable
 * (a view store), and taken (cleared) by writeback under the page lock.
 */
#ifndef PCACHE_BUFFER_H
#define PCACHE_BUFFER_H

#include <stdbool.h>
#include <stdint.h>

#include "../mm/page.h"
#include "fs.h"

#define BLK_UPTODATE_SHIFT	0
#define BLK_DIRTY_SHIFT		8
#define BLK_MAPPED_SHIFT	16
#define BLK_MASK		0xffu

static inline unsigned int i_blocksize(const struct inode *inode)
{
	return 1u << inode->i_blkbits;
}

/* Every block of a page. */
static inline uint32_t blocks_all(const struct inode *inode)
{
	return (1u << (PAGE_SIZE >> inode->i_blkbits)) - 1;
}

/* Blocks that bytes [from, to) of a page touch (to > from). */
static inline uint32_t blocks_touched(const struct inode *inode, size_t from,
				      size_t to)
{
	unsigned int first = (unsigned int)(from >> inode->i_blkbits);
	unsigned int last = (unsigned int)((to - 1) >> inode->i_blkbits);

	return ((2u << last) - 1) & ~((1u << first) - 1);
}

/* Blocks that bytes [from, to) of a page cover whole. */
static inline uint32_t blocks_covered(const struct inode *inode, size_t from,
				      size_t to)
{
	size_t bs = i_blocksize(inode);
	size_t a = (from + bs - 1) & ~(bs - 1), b = to & ~(bs - 1);

	return a < b ? blocks_touched(inode, a, b) : 0;
}

static inline uint32_t page_blocks(const struct page *page, unsigned int shift)
{
	return (__atomic_load_n(&page->blocks, __ATOMIC_ACQUIRE) >> shift) & BLK_MASK;
}

static inline void set_page_blocks(struct page *page, unsigned int shift,
				   uint32_t mask)
{
	__atomic_fetch_or(&page->blocks, mask << shift, __ATOMIC_RELEASE);
}

static inline void clear_page_blocks(struct page *page, unsigned int shift,
				     uint32_t mask)
{
	__atomic_fetch_and(&page->blocks, ~(mask << shift), __ATOMIC_RELEASE);
}

/* Take the dirty blocks for writeback: they are clean from here on. */
static inline uint32_t take_dirty_blocks(struct page *page)
{
	uint32_t old = __atomic_fetch_and(&page->blocks,
					  ~(BLK_MASK << BLK_DIRTY_SHIFT),
					  __ATOMIC_ACQ_REL);

	return (old >> BLK_DIRTY_SHIFT) & BLK_MASK;
}

/*
 * Blocks @mask of a locked page are now uptodate; the page too if that was
 * the last of them.  Returns true if the page is uptodate.
 */
bool page_blocks_uptodate(struct inode *inode, struct page *page,
			  uint32_t mask);

/*
 * Commit bytes [from, to) of a locked page that a write filled: their
 * blocks are uptodate (a partly covered block was read in before the copy)
 * and dirty, and so is the page.
 */
void block_commit_write(struct inode *inode, struct page *page, size_t from,
			size_t to);

/*
 * The dirty_folio op of block mappings: a store through a view dirties the
 * whole page, so every block (the kernel's block_dirty_folio).
 */
bool block_dirty_folio(struct address_space *mapping, struct page *page);

/* The invalidate_folio op: truncated blocks are neither dirty nor mapped. */
void block_invalidate_folio(struct page *page, size_t offset, size_t len);

#endif /* PCACHE_BUFFER_H */
