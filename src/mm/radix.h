/*
 * radix.h - a tagged radix tree mapping 64-bit indices to pointers.
 *
 * It is each file's page index (index = file offset >> PAGE_SHIFT, item =
 * struct page *), and the per-file table of library mappings of the memfd.
 * Shaped after the kernel's radix tree / xarray: 64 slots per node, a per-node
 * bitmap per tag, tags propagated to the root so "is anything dirty" and
 * "next dirty page after N" cost O(height), not a scan.
 *
 * Locking: none inside.  The caller serialises writers (insert, delete, tag
 * set/clear) against everything else; lookups and walks may run together
 * under a shared lock.  No call sleeps except for allocation.
 *
 * Items must be non-NULL and have their low bit clear (pointers do).
 */
#ifndef PCACHE_RADIX_H
#define PCACHE_RADIX_H

#include <stdbool.h>
#include <stdint.h>

#define RADIX_TAG_DIRTY		0	/* page is dirty */
#define RADIX_TAG_WRITEBACK	1	/* page is under writeback */
#define RADIX_TAG_TOWRITE	2	/* page picked for this writeback pass */
#define RADIX_MAX_TAGS		3

struct radix_node;

struct radix_root {
	struct radix_node *rnode;	/* NULL: empty tree */
	unsigned int shift;		/* shift of the root node's level */
	uint64_t count;			/* items stored */
};

void radix_init(struct radix_root *root);

/* The item at @index, or NULL. */
void *radix_lookup(const struct radix_root *root, uint64_t index);

/*
 * Store @item at @index.  Returns 0, -EEXIST if the slot is taken (the tree
 * is unchanged), or -ENOMEM (the tree is unchanged).
 */
int radix_insert(struct radix_root *root, uint64_t index, void *item);

/*
 * Remove and return the item at @index (NULL if none).  Its tags go with it;
 * nodes left empty are freed and the tree shrinks back.
 */
void *radix_delete(struct radix_root *root, uint64_t index);

/* Tags.  Setting or clearing a tag on an empty slot is a no-op. */
void radix_tag_set(struct radix_root *root, uint64_t index, unsigned int tag);
void radix_tag_clear(struct radix_root *root, uint64_t index, unsigned int tag);
bool radix_tag_get(const struct radix_root *root, uint64_t index, unsigned int tag);
/* True if any item in the tree carries @tag: O(1). */
bool radix_tagged(const struct radix_root *root, unsigned int tag);

/*
 * Range walks, in ascending index order.  Fill up to @max items with index
 * >= @first (and their indices into @indices, which may be NULL); return how
 * many were found.  The _tag variant returns only items carrying @tag and
 * skips untagged subtrees without visiting them.
 */
unsigned int radix_gang_lookup(const struct radix_root *root, void **items,
			       uint64_t *indices, uint64_t first,
			       unsigned int max);
unsigned int radix_gang_lookup_tag(const struct radix_root *root, void **items,
				   uint64_t *indices, uint64_t first,
				   unsigned int max, unsigned int tag);

/*
 * Find the first index >= @first whose slot is empty, or holds an item
 * (radix_next_hole / radix_next_item).  Return UINT64_MAX if none.
 * Used for SEEK_HOLE / SEEK_DATA.
 */
uint64_t radix_next_item(const struct radix_root *root, uint64_t first);

/*
 * Free every node, calling @fn (if not NULL) on each item first, in
 * ascending order.  The tree is empty afterwards.
 */
void radix_destroy(struct radix_root *root,
		   void (*fn)(void *item, uint64_t index, void *arg), void *arg);

/* Debug: check every invariant (tags propagated, counts right); 0 if sound. */
int radix_check(const struct radix_root *root);

#endif /* PCACHE_RADIX_H */
