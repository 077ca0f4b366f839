/*
 * radix.c - the tagged radix tree (see radix.h for the contract).
 *
 * Shape.  A node has 64 slots (RADIX_MAP_SHIFT = 6 bits of the index per
 * level).  A node at level @shift holds, in slot i, the subtree for indices
 * whose bits [shift, shift + 6) equal i; at shift 0 the slots hold items.
 * The root node's shift (root->shift) is the smallest multiple of 6 for
 * which every stored index is below 64 << shift, so a tree of indices below
 * 64 is one node and the full 64-bit space needs 11 levels (root shift 60,
 * of whose 64 slots only 16 can be used).  No item lives in the root
 * pointer itself: a non-empty tree always has at least one node, which
 * keeps the lookup loop free of special cases.
 *
 * Bitmaps.  Each node has one 64-bit word per tag plus one occupancy word,
 * tags[RADIX_PRESENT].  Bit i of tags[t] is set iff slot i holds an item
 * carrying tag t (leaf) or a subtree in which some item carries tag t
 * (interior).  So radix_tagged() reads one word of the root node, and the
 * walks find the next candidate slot with one count-trailing-zeros per level
 * instead of scanning slots; untagged subtrees are never entered.
 *
 * Invariants (checked by radix_check()):
 *  1. root->rnode == NULL iff root->count == 0; then root->shift == 0.
 *  2. root->shift is a multiple of 6, at most 60, equal to rnode->shift;
 *     a child's shift is its parent's minus 6; leaves have shift 0.
 *  3. Every node is non-empty: 1 <= count <= 64, count equals the number of
 *     non-NULL slots, and tags[RADIX_PRESENT] has exactly those bits set.
 *  4. node->parent / node->offset name the slot that points at the node.
 *  5. For every tag, a leaf's bits are a subset of its occupied slots, and an
 *     interior node's bit i is set iff child i has any bit of that tag set.
 *  6. The root is as low as it can be: if root->shift > 0, the root node uses
 *     some slot other than 0 (radix_shrink() restores this after deletes).
 *  7. root->count is the number of items in the leaves.
 *
 * Transitions.  radix_insert() grows the tree upwards (new roots with the
 * old root in slot 0) and downwards (missing nodes on the path), but first
 * counts and allocates every node it will need, so -ENOMEM leaves the tree
 * untouched.  radix_delete() clears the item's tags upwards, frees nodes
 * that became empty from the leaf up, then radix_shrink() drops root nodes
 * whose only child is slot 0.  Deletion never allocates.
 *
 * Locking: none here (see radix.h).  Readers only load; nothing is written
 * by lookups or walks, so concurrent readers under a shared lock are safe.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "radix.h"
#include "../base/alloc.h"
#include "../base/compiler.h"

#define RADIX_MAP_SHIFT		6
#define RADIX_MAP_SIZE		(1U << RADIX_MAP_SHIFT)
#define RADIX_MAP_MASK		((uint64_t)RADIX_MAP_SIZE - 1)
#define RADIX_MAX_SHIFT		60	/* root shift covering all 64 bits */
#define RADIX_MAX_LEVELS	(RADIX_MAX_SHIFT / RADIX_MAP_SHIFT + 1)

/* The occupancy map sits after the tag maps in node->tags[]. */
#define RADIX_PRESENT		RADIX_MAX_TAGS

struct radix_node {
	unsigned char shift;		/* index bits below this level */
	unsigned char offset;		/* our slot in the parent */
	unsigned char count;		/* non-NULL slots */
	struct radix_node *parent;	/* NULL for the root node */
	uint64_t tags[RADIX_MAX_TAGS + 1];
	void *slots[RADIX_MAP_SIZE];	/* items at shift 0, else nodes */
};

static inline uint64_t bit(unsigned int off)
{
	return (uint64_t)1 << off;
}

static inline unsigned int slot_of(uint64_t index, unsigned int shift)
{
	return (index >> shift) & RADIX_MAP_MASK;
}

/* True if @index lies beyond what a root at @shift can reach. */
static inline bool beyond(uint64_t index, unsigned int shift)
{
	/* Two shifts: shift + 6 may be 66. */
	return (index >> shift) >> RADIX_MAP_SHIFT;
}

/* The smallest root shift whose tree can hold @index. */
static inline unsigned int shift_for(uint64_t index)
{
	unsigned int bits;

	if (index < RADIX_MAP_SIZE)
		return 0;
	bits = 64 - __builtin_clzll(index);
	return (bits - 1) / RADIX_MAP_SHIFT * RADIX_MAP_SHIFT;
}

void radix_init(struct radix_root *root)
{
	root->rnode = NULL;
	root->shift = 0;
	root->count = 0;
}

/* The leaf whose range covers @index, or NULL if there is none. */
static inline struct radix_node *lookup_leaf(const struct radix_root *root,
					     uint64_t index)
{
	struct radix_node *node = root->rnode;
	unsigned int shift = root->shift;

	if (unlikely(!node) || unlikely(beyond(index, shift)))
		return NULL;
	while (shift) {
		node = node->slots[slot_of(index, shift)];
		if (!node)
			return NULL;
		shift -= RADIX_MAP_SHIFT;
	}
	return node;
}

void *radix_lookup(const struct radix_root *root, uint64_t index)
{
	struct radix_node *leaf = lookup_leaf(root, index);

	return leaf ? leaf->slots[index & RADIX_MAP_MASK] : NULL;
}

/*
 * Set bit @off of @tag in @node and in each ancestor whose word was zero
 * until now; an ancestor of a node that already had the tag has it too.
 */
static void node_tag_set(struct radix_node *node, unsigned int off,
			 unsigned int tag)
{
	while (node) {
		uint64_t old = node->tags[tag];

		node->tags[tag] = old | bit(off);
		if (old)
			return;
		off = node->offset;
		node = node->parent;
	}
}

/* Clear bit @off of @tag in @node, and upwards while words become zero. */
static void node_tag_clear(struct radix_node *node, unsigned int off,
			   unsigned int tag)
{
	while (node) {
		if (!(node->tags[tag] & bit(off)))
			return;
		node->tags[tag] &= ~bit(off);
		if (node->tags[tag])
			return;
		off = node->offset;
		node = node->parent;
	}
}

static void node_link(struct radix_node *parent, unsigned int off,
		      void *entry)
{
	parent->slots[off] = entry;
	parent->tags[RADIX_PRESENT] |= bit(off);
	parent->count++;
}

static void node_unlink(struct radix_node *parent, unsigned int off)
{
	parent->slots[off] = NULL;
	parent->tags[RADIX_PRESENT] &= ~bit(off);
	parent->count--;
}

/*
 * How many nodes inserting at @index needs: 0 if the path exists,
 * -EEXIST if the slot is taken.  Touches nothing.
 */
static int insert_nodes_needed(const struct radix_root *root, uint64_t index)
{
	struct radix_node *node = root->rnode;
	unsigned int shift = root->shift;
	unsigned int top;

	if (!node)
		return shift_for(index) / RADIX_MAP_SHIFT + 1;
	if (beyond(index, shift)) {
		/*
		 * New roots from shift + 6 up to top, and below the new root
		 * a whole new path: index's slot in the new root is not 0
		 * (else a lower root would do), so nothing there exists yet.
		 */
		top = shift_for(index);
		return (top - shift) / RADIX_MAP_SHIFT + top / RADIX_MAP_SHIFT;
	}
	for (;;) {
		struct radix_node *child = node->slots[slot_of(index, shift)];

		if (!child)
			return shift / RADIX_MAP_SHIFT;
		if (!shift)
			return -EEXIST;
		node = child;
		shift -= RADIX_MAP_SHIFT;
	}
}

/* Put a new root above the old one, the old root in its slot 0. */
static void radix_grow(struct radix_root *root, struct radix_node *node)
{
	struct radix_node *old = root->rnode;
	unsigned int t;

	node->shift = root->shift + RADIX_MAP_SHIFT;
	node->parent = NULL;
	node->offset = 0;
	for (t = 0; t <= RADIX_PRESENT; t++)
		if (old->tags[t])
			node->tags[t] = bit(0);
	node->slots[0] = old;
	node->count = 1;
	old->parent = node;
	old->offset = 0;
	root->rnode = node;
	root->shift = node->shift;
}

int radix_insert(struct radix_root *root, uint64_t index, void *item)
{
	struct radix_node *new[2 * RADIX_MAX_LEVELS];
	struct radix_node *node;
	unsigned int shift, nr = 0;
	int need, i;

	if (WARN_ON_ONCE(!item || ((uintptr_t)item & 1)))
		return -EINVAL;

	need = insert_nodes_needed(root, index);
	if (need < 0)
		return need;
	for (i = 0; i < need; i++) {
		new[i] = kzalloc(sizeof(struct radix_node));
		if (unlikely(!new[i]))
			goto out_free_nodes;
	}

	/* Nothing below can fail: every node we link is in new[]. */
	if (!root->rnode) {
		node = new[nr++];
		node->shift = shift_for(index);
		root->rnode = node;
		root->shift = node->shift;
	}
	while (beyond(index, root->shift))
		radix_grow(root, new[nr++]);

	node = root->rnode;
	for (shift = root->shift; shift; shift -= RADIX_MAP_SHIFT) {
		unsigned int off = slot_of(index, shift);
		struct radix_node *child = node->slots[off];

		if (!child) {
			child = new[nr++];
			child->shift = shift - RADIX_MAP_SHIFT;
			child->parent = node;
			child->offset = off;
			node_link(node, off, child);
		}
		node = child;
	}
	assert(nr == (unsigned int)need);
	node_link(node, index & RADIX_MAP_MASK, item);
	root->count++;
	return 0;

out_free_nodes:
	while (i--)
		kfree(new[i]);
	return -ENOMEM;
}

/* Drop root nodes that only use slot 0 (the kernel's radix_tree_shrink). */
static void radix_shrink(struct radix_root *root)
{
	while (root->shift) {
		struct radix_node *node = root->rnode;
		struct radix_node *child = node->slots[0];

		if (node->count != 1 || !child)
			return;
		child->parent = NULL;
		child->offset = 0;
		root->rnode = child;
		root->shift = child->shift;
		kfree(node);
	}
}

void *radix_delete(struct radix_root *root, uint64_t index)
{
	struct radix_node *node = lookup_leaf(root, index);
	unsigned int off = index & RADIX_MAP_MASK;
	unsigned int t;
	void *item;

	if (!node)
		return NULL;
	item = node->slots[off];
	if (!item)
		return NULL;

	/* Tags first, so the nodes freed below carry none up the tree. */
	for (t = 0; t < RADIX_MAX_TAGS; t++)
		node_tag_clear(node, off, t);
	node_unlink(node, off);
	root->count--;

	while (!node->count) {
		struct radix_node *parent = node->parent;

		if (!parent) {
			kfree(node);
			radix_init(root);
			return item;
		}
		node_unlink(parent, node->offset);
		kfree(node);
		node = parent;
	}
	radix_shrink(root);
	return item;
}

void radix_tag_set(struct radix_root *root, uint64_t index, unsigned int tag)
{
	struct radix_node *leaf;
	unsigned int off = index & RADIX_MAP_MASK;

	if (WARN_ON_ONCE(tag >= RADIX_MAX_TAGS))
		return;
	leaf = lookup_leaf(root, index);
	if (leaf && leaf->slots[off])
		node_tag_set(leaf, off, tag);
}

void radix_tag_clear(struct radix_root *root, uint64_t index, unsigned int tag)
{
	struct radix_node *leaf;

	if (WARN_ON_ONCE(tag >= RADIX_MAX_TAGS))
		return;
	leaf = lookup_leaf(root, index);
	if (leaf)
		node_tag_clear(leaf, index & RADIX_MAP_MASK, tag);
}

bool radix_tag_get(const struct radix_root *root, uint64_t index,
		   unsigned int tag)
{
	struct radix_node *leaf;

	if (WARN_ON_ONCE(tag >= RADIX_MAX_TAGS))
		return false;
	leaf = lookup_leaf(root, index);
	return leaf && (leaf->tags[tag] & bit(index & RADIX_MAP_MASK));
}

bool radix_tagged(const struct radix_root *root, unsigned int tag)
{
	if (WARN_ON_ONCE(tag >= RADIX_MAX_TAGS))
		return false;
	return root->rnode && root->rnode->tags[tag];
}

/*
 * From slot @off of @node (RADIX_MAP_SIZE: "past this node"), find the
 * first leaf slot at or after *@pindex whose bit in map @map is set.
 * *@pindex must lie in @node's range; its bits at @node's level equal @off
 * unless @off is past them.  Returns the leaf and sets *@pindex to the
 * slot's index, or returns NULL.  Each step down picks the lowest set bit
 * at or after the position, each step up resumes after the parent's slot
 * for this node, so a walk never enters a subtree without a hit.
 */
static const struct radix_node *walk_next(const struct radix_node *node,
					  unsigned int off, uint64_t *pindex,
					  unsigned int map)
{
	uint64_t index = *pindex;

	for (;;) {
		unsigned int shift = node->shift;
		uint64_t bits = 0;
		unsigned int next;

		if (off < RADIX_MAP_SIZE)
			bits = node->tags[map] & (~(uint64_t)0 << off);
		if (!bits) {
			if (!node->parent)
				return NULL;
			off = node->offset + 1;
			node = node->parent;
			continue;
		}
		next = __builtin_ctzll(bits);
		if (next != slot_of(index, shift)) {
			/* Skipped ahead: lower levels start at slot 0. */
			uint64_t high = 0;

			if (shift + RADIX_MAP_SHIFT < 64)
				high = index >> (shift + RADIX_MAP_SHIFT)
					     << (shift + RADIX_MAP_SHIFT);
			index = high | ((uint64_t)next << shift);
		}
		if (!shift) {
			*pindex = index;
			return node;
		}
		node = node->slots[next];
		off = slot_of(index, shift - RADIX_MAP_SHIFT);
	}
}

static unsigned int gang_lookup(const struct radix_root *root, void **items,
				uint64_t *indices, uint64_t first,
				unsigned int max, unsigned int map)
{
	const struct radix_node *node = root->rnode;
	uint64_t index = first;
	unsigned int off, n = 0;

	if (!node || !max || beyond(first, root->shift))
		return 0;
	off = slot_of(first, root->shift);
	while ((node = walk_next(node, off, &index, map))) {
		uint64_t bits = node->tags[map] &
				(~(uint64_t)0 << (index & RADIX_MAP_MASK));
		uint64_t base = index & ~RADIX_MAP_MASK;

		/* walk_next() found a hit, so bits is not zero. */
		do {
			unsigned int o = __builtin_ctzll(bits);

			items[n] = node->slots[o];
			if (indices)
				indices[n] = base | o;
			bits &= bits - 1;
		} while (++n < max && bits);
		if (n == max)
			break;
		off = RADIX_MAP_SIZE;
	}
	return n;
}

unsigned int radix_gang_lookup(const struct radix_root *root, void **items,
			       uint64_t *indices, uint64_t first,
			       unsigned int max)
{
	return gang_lookup(root, items, indices, first, max, RADIX_PRESENT);
}

unsigned int radix_gang_lookup_tag(const struct radix_root *root, void **items,
				   uint64_t *indices, uint64_t first,
				   unsigned int max, unsigned int tag)
{
	if (WARN_ON_ONCE(tag >= RADIX_MAX_TAGS))
		return 0;
	return gang_lookup(root, items, indices, first, max, tag);
}

uint64_t radix_next_item(const struct radix_root *root, uint64_t first)
{
	const struct radix_node *node = root->rnode;
	uint64_t index = first;

	if (!node || beyond(first, root->shift))
		return UINT64_MAX;
	node = walk_next(node, slot_of(first, root->shift), &index,
			 RADIX_PRESENT);
	return node ? index : UINT64_MAX;
}

static void destroy_node(struct radix_node *node, uint64_t base,
			 void (*fn)(void *item, uint64_t index, void *arg),
			 void *arg)
{
	uint64_t bits = node->tags[RADIX_PRESENT];

	while (bits) {
		unsigned int o = __builtin_ctzll(bits);
		uint64_t index = base | ((uint64_t)o << node->shift);

		bits &= bits - 1;
		if (node->shift)
			destroy_node(node->slots[o], index, fn, arg);
		else if (fn)
			fn(node->slots[o], index, arg);
	}
	kfree(node);
}

void radix_destroy(struct radix_root *root,
		   void (*fn)(void *item, uint64_t index, void *arg), void *arg)
{
	struct radix_node *node = root->rnode;

	/* Empty the root first: @fn sees a tree it must not walk anyway. */
	radix_init(root);
	if (node)
		destroy_node(node, 0, fn, arg);
}

static int check_fail(const char *why, const struct radix_node *node,
		      uint64_t base)
{
	fprintf(stderr, "radix_check: %s (node %p, shift %u, base %#llx)\n",
		why, (const void *)node, node ? node->shift : 0,
		(unsigned long long)base);
	return -1;
}

static int check_node(const struct radix_node *node,
		      const struct radix_node *parent, unsigned int offset,
		      unsigned int shift, uint64_t base, uint64_t *items)
{
	uint64_t present = 0;
	unsigned int o, t;

	if (node->shift != shift)
		return check_fail("wrong shift", node, base);
	if (node->parent != parent || (parent && node->offset != offset))
		return check_fail("wrong parent or offset", node, base);
	for (o = 0; o < RADIX_MAP_SIZE; o++)
		if (node->slots[o])
			present |= bit(o);
	if (!present)
		return check_fail("empty node left in the tree", node, base);
	if (present != node->tags[RADIX_PRESENT])
		return check_fail("occupancy map differs from slots", node, base);
	if (node->count != __builtin_popcountll(present))
		return check_fail("count differs from slots in use", node, base);
	for (t = 0; t < RADIX_MAX_TAGS; t++)
		if (node->tags[t] & ~present)
			return check_fail("tag set on an empty slot", node, base);

	for (o = 0; o < RADIX_MAP_SIZE; o++) {
		uint64_t index = base | ((uint64_t)o << shift);
		const struct radix_node *child = node->slots[o];

		if (!child)
			continue;
		if (!shift) {
			if ((uintptr_t)node->slots[o] & 1)
				return check_fail("item with low bit set",
						  node, index);
			(*items)++;
			continue;
		}
		if (check_node(child, node, o, shift - RADIX_MAP_SHIFT, index,
			       items))
			return -1;
		for (t = 0; t < RADIX_MAX_TAGS; t++)
			if (!!(node->tags[t] & bit(o)) != !!child->tags[t])
				return check_fail("tag not propagated",
						  node, index);
	}
	return 0;
}

int radix_check(const struct radix_root *root)
{
	const struct radix_node *node = root->rnode;
	uint64_t items = 0;

	if (!node) {
		if (root->count || root->shift)
			return check_fail("empty tree with count or shift",
					  NULL, 0);
		return 0;
	}
	if (root->shift % RADIX_MAP_SHIFT || root->shift > RADIX_MAX_SHIFT)
		return check_fail("bad root shift", node, 0);
	if (root->shift && node->count == 1 && node->slots[0])
		return check_fail("root not shrunk", node, 0);
	if (check_node(node, NULL, 0, root->shift, 0, &items))
		return -1;
	if (items != root->count) {
		fprintf(stderr, "radix_check: root count %llu, %llu items\n",
			(unsigned long long)root->count,
			(unsigned long long)items);
		return -1;
	}
	return 0;
}
