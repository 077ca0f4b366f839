/*
 * test_radix.c - the tagged radix tree (src/mm/radix.c).
 *
 *  1. Edge indices, one at a time and all together: 0, 63, 64, 4095, 4096,
 *     2^32, UINT64_MAX - 1, UINT64_MAX; the root height each one needs and
 *     the shrink back after deletes; duplicates (-EEXIST), missing deletes
 *     (NULL), tags on missing slots (no-op), walks with max 0 / NULL indices.
 *  2. A model test: random inserts, deletes, tag set/clear/get, lookups,
 *     gang lookups (plain and tagged) and next_item, applied to the tree and
 *     to a flat array over a fixed universe of indices (a dense block plus
 *     sparse huge ones), compared after every step, radix_check() often.
 *     The seed is printed; RADIX_SEED=<n> replays a run.
 *  3. Two million sequential items: insert, look up, tag every third, walk
 *     the tag, delete all, the tree is empty.
 *  4. -ENOMEM: for each shape of insert (empty tree, grow, grow a lot, fill
 *     a path) make the Nth allocation fail for every N until the insert
 *     succeeds; each failure must leave the tree exactly as it was.  Leaks
 *     show up under ASan.
 *  5. radix_destroy() calls back in ascending order; readers on several
 *     threads at once (for TSan: lookups write nothing).
 */
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "base/alloc.h"
#include "base/compiler.h"
#include "mm/radix.h"

#define ALL_TAGS	((1u << RADIX_MAX_TAGS) - 1)

/* A fake item for @index: non-NULL, low bit clear, differs between indices. */
static void *item_for(uint64_t index)
{
	uint64_t x = index;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (void *)(uintptr_t)((x & ~3ull) | 2);
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static bool tree_empty(const struct radix_root *root)
{
	return !root->rnode && !root->count && !root->shift;
}

/* ---- 1. edge cases ---- */

static const struct {
	uint64_t index;
	unsigned int shift;	/* root shift of a tree holding only it */
} edges[] = {
	{ 0,			0 },
	{ 63,			0 },
	{ 64,			6 },
	{ 4095,			6 },
	{ 4096,			12 },
	{ 1ull << 32,		30 },
	{ UINT64_MAX - 1,	60 },
	{ UINT64_MAX,		60 },
};

static void test_edge_single(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(edges); i++) {
		uint64_t idx = edges[i].index, got_idx;
		struct radix_root root;
		void *items[4];

		radix_init(&root);
		CHECK_EQ(radix_insert(&root, idx, item_for(idx)), 0);
		CHECK_EQ(root.shift, edges[i].shift);
		CHECK_EQ(root.count, 1);
		CHECK(radix_lookup(&root, idx) == item_for(idx), "idx %#llx",
		      (unsigned long long)idx);
		if (idx)
			CHECK(!radix_lookup(&root, idx - 1), "below %#llx",
			      (unsigned long long)idx);
		if (idx != UINT64_MAX)
			CHECK(!radix_lookup(&root, idx + 1), "above %#llx",
			      (unsigned long long)idx);
		CHECK(!radix_lookup(&root, idx ^ (1ull << 63)), "far");
		CHECK_EQ(radix_insert(&root, idx, item_for(idx + 1)), -EEXIST);
		CHECK(radix_lookup(&root, idx) == item_for(idx), "dup kept");
		CHECK_EQ(radix_check(&root), 0);

		CHECK_EQ(radix_next_item(&root, 0), idx);
		CHECK_EQ(radix_next_item(&root, idx), idx);
		if (idx != UINT64_MAX)
			CHECK_EQ(radix_next_item(&root, idx + 1), UINT64_MAX);
		CHECK_EQ(radix_gang_lookup(&root, items, &got_idx, 0, 4), 1);
		CHECK(items[0] == item_for(idx), "gang item");
		CHECK_EQ(got_idx, idx);
		CHECK_EQ(radix_gang_lookup(&root, items, NULL, idx, 4), 1);
		if (idx != UINT64_MAX)
			CHECK_EQ(radix_gang_lookup(&root, items, NULL, idx + 1, 4), 0);

		/* Tags: on the item, on missing neighbours, propagation. */
		CHECK(!radix_tagged(&root, RADIX_TAG_DIRTY), "fresh untagged");
		radix_tag_set(&root, idx ^ 1, RADIX_TAG_DIRTY);
		radix_tag_set(&root, idx ^ (1ull << 40), RADIX_TAG_DIRTY);
		CHECK(!radix_tagged(&root, RADIX_TAG_DIRTY), "tag on missing");
		CHECK(!radix_tag_get(&root, idx ^ 1, RADIX_TAG_DIRTY), "missing");
		radix_tag_set(&root, idx, RADIX_TAG_DIRTY);
		radix_tag_set(&root, idx, RADIX_TAG_DIRTY);
		radix_tag_set(&root, idx, RADIX_TAG_TOWRITE);
		CHECK(radix_tag_get(&root, idx, RADIX_TAG_DIRTY), "tag get");
		CHECK(!radix_tag_get(&root, idx, RADIX_TAG_WRITEBACK), "other");
		CHECK(radix_tagged(&root, RADIX_TAG_DIRTY), "tagged");
		CHECK(radix_tagged(&root, RADIX_TAG_TOWRITE), "tagged");
		CHECK(!radix_tagged(&root, RADIX_TAG_WRITEBACK), "not tagged");
		CHECK_EQ(radix_gang_lookup_tag(&root, items, &got_idx, 0, 4,
					       RADIX_TAG_DIRTY), 1);
		CHECK_EQ(got_idx, idx);
		CHECK_EQ(radix_gang_lookup_tag(&root, items, NULL, 0, 4,
					       RADIX_TAG_WRITEBACK), 0);
		radix_tag_clear(&root, idx ^ 1, RADIX_TAG_DIRTY);
		CHECK(radix_tagged(&root, RADIX_TAG_DIRTY), "clear on missing");
		radix_tag_clear(&root, idx, RADIX_TAG_DIRTY);
		radix_tag_clear(&root, idx, RADIX_TAG_DIRTY);
		CHECK(!radix_tagged(&root, RADIX_TAG_DIRTY), "cleared");
		CHECK_EQ(radix_check(&root), 0);

		/* Delete takes the remaining tag along; the tree empties. */
		CHECK(!radix_delete(&root, idx ^ 1), "delete missing");
		CHECK(radix_delete(&root, idx) == item_for(idx), "delete");
		CHECK(!radix_delete(&root, idx), "delete twice");
		CHECK(tree_empty(&root), "empty after delete of %#llx",
		      (unsigned long long)idx);
		CHECK(!radix_tagged(&root, RADIX_TAG_TOWRITE), "tag gone");
		CHECK_EQ(radix_next_item(&root, 0), UINT64_MAX);
		CHECK_EQ(radix_check(&root), 0);

		/* Operations on an empty tree. */
		radix_tag_set(&root, idx, RADIX_TAG_DIRTY);
		radix_tag_clear(&root, idx, RADIX_TAG_DIRTY);
		CHECK(!radix_tag_get(&root, idx, RADIX_TAG_DIRTY), "empty");
		CHECK(!radix_lookup(&root, idx), "empty lookup");
		CHECK_EQ(radix_gang_lookup(&root, items, NULL, 0, 4), 0);
		CHECK(tree_empty(&root), "still empty");
	}
}

static void test_edge_all(void)
{
	size_t n = ARRAY_SIZE(edges);
	uint64_t indices[16];
	void *items[16];
	struct radix_root root;

	/* Insert in reverse, so the tree starts tall. */
	radix_init(&root);
	for (size_t i = n; i--; )
		CHECK_EQ(radix_insert(&root, edges[i].index,
				      item_for(edges[i].index)), 0);
	CHECK_EQ(root.count, n);
	CHECK_EQ(root.shift, 60);
	CHECK_EQ(radix_check(&root), 0);
	CHECK_EQ(radix_gang_lookup(&root, items, indices, 0, 16), n);
	for (size_t i = 0; i < n; i++) {
		CHECK_EQ(indices[i], edges[i].index);
		CHECK(items[i] == item_for(edges[i].index), "item %zu", i);
	}
	/* Walks resuming just past each item, and max 0. */
	for (size_t i = 0; i + 1 < n; i++) {
		CHECK_EQ(radix_next_item(&root, edges[i].index + 1),
			 edges[i + 1].index);
		CHECK_EQ(radix_gang_lookup(&root, items, indices,
					   edges[i].index + 1, 1), 1);
		CHECK_EQ(indices[0], edges[i + 1].index);
	}
	CHECK_EQ(radix_gang_lookup(&root, items, indices, 0, 0), 0);

	/* Tag the odd ones; the tagged walk sees exactly those. */
	for (size_t i = 1; i < n; i += 2)
		radix_tag_set(&root, edges[i].index, RADIX_TAG_WRITEBACK);
	CHECK_EQ(radix_gang_lookup_tag(&root, items, indices, 0, 16,
				       RADIX_TAG_WRITEBACK), n / 2);
	for (size_t i = 1; i < n; i += 2)
		CHECK_EQ(indices[i / 2], edges[i].index);
	CHECK_EQ(radix_check(&root), 0);

	/* Delete from the top: the root shrinks to what the rest needs. */
	for (size_t i = n; i-- > 1; ) {
		CHECK(radix_delete(&root, edges[i].index) ==
		      item_for(edges[i].index), "delete %zu", i);
		CHECK_EQ(root.shift, edges[i - 1].shift);
		CHECK_EQ(radix_check(&root), 0);
	}
	CHECK(!radix_tagged(&root, RADIX_TAG_WRITEBACK), "odd tags gone");
	CHECK(radix_delete(&root, 0) == item_for(0), "delete 0");
	CHECK(tree_empty(&root), "empty");
}

/* Two items; delete the second; the root must come down to @after. */
static const struct {
	uint64_t keep, drop;
	unsigned int both, after;
} shrinks[] = {
	{ 5,		1ull << 40,	36,	0 },
	{ 64,		4096,		12,	6 },
	{ 0,		UINT64_MAX,	60,	0 },
	{ 4096,		1ull << 32,	30,	12 },
	{ 1ull << 32,	5,		30,	30 },	/* keep is in slot 4: stays */
	{ 63,		64,		6,	0 },
	{ 1ull << 60,	0,		60,	60 },
};

static void test_shrink(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(shrinks); i++) {
		struct radix_root root;

		radix_init(&root);
		CHECK_EQ(radix_insert(&root, shrinks[i].keep,
				      item_for(shrinks[i].keep)), 0);
		CHECK_EQ(radix_insert(&root, shrinks[i].drop,
				      item_for(shrinks[i].drop)), 0);
		radix_tag_set(&root, shrinks[i].keep, RADIX_TAG_DIRTY);
		CHECK_EQ(root.shift, shrinks[i].both);
		CHECK(radix_delete(&root, shrinks[i].drop) ==
		      item_for(shrinks[i].drop), "case %zu", i);
		CHECK_EQ(root.shift, shrinks[i].after);
		CHECK_EQ(radix_check(&root), 0);
		CHECK(radix_tagged(&root, RADIX_TAG_DIRTY), "tag survives");
		CHECK(radix_lookup(&root, shrinks[i].keep) ==
		      item_for(shrinks[i].keep), "case %zu", i);
		radix_destroy(&root, NULL, NULL);
		CHECK(tree_empty(&root), "destroyed");
	}
}

/* ---- 2. model test ---- */

#define MODEL_DENSE	5000	/* indices 0..4999: three levels */
#define MODEL_SPARSE	600
#define MODEL_OPS	200000

struct model {
	uint64_t *index;	/* the universe, sorted, unique */
	bool *present;
	unsigned char *tags;
	size_t n, count;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void model_init(struct model *m)
{
	size_t n = 0, cap = MODEL_DENSE + MODEL_SPARSE + 16;
	static const uint64_t fixed[] = {
		UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 63, UINT64_MAX - 64,
		1ull << 63, (1ull << 63) - 1, 1ull << 32, (1ull << 32) - 1,
		1ull << 60, 4096 * 64, 4096 * 64 - 1,
	};

	m->index = malloc(cap * sizeof(*m->index));
	for (uint64_t i = 0; i < MODEL_DENSE; i++)
		m->index[n++] = i;
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		m->index[n++] = fixed[i];
	/* Sparse: random bit lengths, a few clustered in one leaf. */
	for (size_t i = 0; i < MODEL_SPARSE; i++) {
		unsigned int bits = 13 + rnd_below(52);
		uint64_t v = rnd() >> (64 - bits) | (1ull << (bits - 1));

		if (i % 4)
			v = (m->index[n - 1] & ~63ull) | rnd_below(64);
		m->index[n++] = v;
	}
	qsort(m->index, n, sizeof(*m->index), cmp_u64);
	m->n = 0;
	for (size_t i = 0; i < n; i++)
		if (!m->n || m->index[m->n - 1] != m->index[i])
			m->index[m->n++] = m->index[i];
	m->present = calloc(m->n, sizeof(*m->present));
	m->tags = calloc(m->n, sizeof(*m->tags));
	m->count = 0;
}

static void model_free(struct model *m)
{
	free(m->index);
	free(m->present);
	free(m->tags);
}

/* First position whose index is >= @first. */
static size_t model_lower_bound(const struct model *m, uint64_t first)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->index[mid] < first)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The model's gang lookup: tag < 0 for all items. */
static unsigned int model_gang(const struct model *m, uint64_t *out,
			       uint64_t first, unsigned int max, int tag)
{
	unsigned int n = 0;

	for (size_t p = model_lower_bound(m, first); p < m->n && n < max; p++)
		if (m->present[p] && (tag < 0 || (m->tags[p] & (1u << tag))))
			out[n++] = m->index[p];
	return n;
}

/* Compare a walk of the tree with the model's; true if they agree. */
static bool compare_gang(const struct radix_root *root, const struct model *m,
			 uint64_t first, unsigned int max, int tag)
{
	uint64_t want[128], got_idx[128];
	void *got[128];
	unsigned int nw, ng;

	nw = model_gang(m, want, first, max, tag);
	if (tag < 0)
		ng = radix_gang_lookup(root, got, got_idx, first, max);
	else
		ng = radix_gang_lookup_tag(root, got, got_idx, first, max, tag);
	if (ng != nw) {
		CHECK_EQ(ng, nw);
		return false;
	}
	for (unsigned int i = 0; i < nw; i++) {
		if (got_idx[i] != want[i] || got[i] != item_for(want[i])) {
			CHECK(false, "gang(%#llx, %u, tag %d)[%u]: %#llx, want %#llx",
			      (unsigned long long)first, max, tag, i,
			      (unsigned long long)got_idx[i],
			      (unsigned long long)want[i]);
			return false;
		}
	}
	return true;
}

/* Everything, in batches: items and each tag; radix_tagged(). */
static bool compare_all(const struct radix_root *root, const struct model *m)
{
	for (int tag = -1; tag < RADIX_MAX_TAGS; tag++) {
		uint64_t first = 0, idx[128];
		void *items[128];
		size_t seen = 0;
		bool any = false;

		for (size_t p = 0; p < m->n; p++)
			if (m->present[p] && (tag < 0 || (m->tags[p] & (1u << tag))))
				any = true;
		if (tag >= 0 && radix_tagged(root, tag) != any) {
			CHECK(false, "radix_tagged(%d) = %d", tag, !any);
			return false;
		}
		for (;;) {
			unsigned int n;

			if (!compare_gang(root, m, first, 128, tag))
				return false;
			if (tag < 0)
				n = radix_gang_lookup(root, items, idx, first, 128);
			else
				n = radix_gang_lookup_tag(root, items, idx,
							  first, 128, tag);
			seen += n;
			if (n < 128 || idx[n - 1] == UINT64_MAX)
				break;
			first = idx[n - 1] + 1;
		}
		if (tag < 0 && seen != m->count) {
			CHECK_EQ(seen, m->count);
			return false;
		}
	}
	return true;
}

static uint64_t model_next_item(const struct model *m, uint64_t first)
{
	for (size_t p = model_lower_bound(m, first); p < m->n; p++)
		if (m->present[p])
			return m->index[p];
	return UINT64_MAX;
}

/* The least root shift that reaches @index. */
static unsigned int shift_of(uint64_t index)
{
	unsigned int shift = 0;

	while (shift < 60 && index >> shift >= 64)
		shift += 6;
	return shift;
}

/* The root shift for the items below position @end: the least reaching all. */
static unsigned int model_shift_below(const struct model *m, size_t end)
{
	for (size_t p = end; p--; )
		if (m->present[p])
			return shift_of(m->index[p]);
	return 0;
}

static unsigned int model_shift(const struct model *m)
{
	return model_shift_below(m, m->n);
}

/* Delete every item at or above @cut, from the top down, checking each. */
static void model_cut(struct radix_root *root, struct model *m, uint64_t cut)
{
	for (size_t p = m->n; p-- && m->index[p] >= cut; ) {
		if (!m->present[p])
			continue;
		CHECK(radix_delete(root, m->index[p]) == item_for(m->index[p]),
		      "cut %#llx", (unsigned long long)m->index[p]);
		m->present[p] = false;
		m->tags[p] = 0;
		m->count--;
		/* Nothing at or above p is left: the root came down to fit. */
		CHECK_EQ(root->shift, model_shift_below(m, p));
	}
	CHECK_EQ(radix_check(root), 0);
}

/* A random "first" for walks: an index, next to one, or anywhere. */
static uint64_t random_first(const struct model *m)
{
	uint64_t v = m->index[rnd_below(m->n)];

	switch (rnd_below(5)) {
	case 0:
		return v;
	case 1:
		return v + 1;
	case 2:
		return v - 1;
	case 3:
		return rnd() >> rnd_below(64);
	default:
		return 0;
	}
}

static void test_model(uint64_t seed)
{
	struct radix_root root;
	struct model m;
	int failures = test_failures;
	unsigned int insert_bias = 60;

	rng_state = seed;
	model_init(&m);
	radix_init(&root);

	for (long op = 0; op < MODEL_OPS; op++) {
		/* Mostly the dense block, sometimes the sparse giants. */
		size_t p = rnd_below(4) ? rnd_below(MODEL_DENSE) : rnd_below(m.n);
		uint64_t idx = m.index[p];
		unsigned int tag = rnd_below(RADIX_MAX_TAGS);
		unsigned int r = rnd_below(100);
		void *got;

		/*
		 * Phases: fill up, then drain, so the tree grows and shrinks;
		 * between phases cut everything above a random index, so the
		 * tree also lives at every height and regrows from each.
		 */
		if (op % 20000 == 0) {
			insert_bias = insert_bias == 60 ? 15 : 60;
			model_cut(&root, &m, rnd() >> rnd_below(64));
		}

		if (r < 45) {
			if (rnd_below(100) < insert_bias) {
				unsigned int shift = m.count ? root.shift : 0;
				int ret = radix_insert(&root, idx, item_for(idx));

				CHECK_EQ(ret, m.present[p] ? -EEXIST : 0);
				/* Grown exactly as far as @idx needs. */
				CHECK_EQ(root.shift, max(shift, shift_of(idx)));
				if (!m.present[p])
					m.count++;
				m.present[p] = true;
			} else {
				got = radix_delete(&root, idx);
				CHECK(got == (m.present[p] ? item_for(idx) : NULL),
				      "delete %#llx", (unsigned long long)idx);
				if (m.present[p])
					m.count--;
				m.present[p] = false;
				m.tags[p] = 0;
			}
		} else if (r < 60) {
			radix_tag_set(&root, idx, tag);
			if (m.present[p])
				m.tags[p] |= 1u << tag;
		} else if (r < 70) {
			radix_tag_clear(&root, idx, tag);
			m.tags[p] &= ~(1u << tag);
		} else if (r < 78) {
			got = radix_lookup(&root, idx);
			CHECK(got == (m.present[p] ? item_for(idx) : NULL),
			      "lookup %#llx", (unsigned long long)idx);
		} else if (r < 84) {
			CHECK_EQ(radix_tag_get(&root, idx, tag),
				 !!(m.tags[p] & (1u << tag)));
		} else if (r < 90) {
			compare_gang(&root, &m, random_first(&m),
				     1 + rnd_below(100), -1);
		} else if (r < 96) {
			compare_gang(&root, &m, random_first(&m),
				     1 + rnd_below(100), tag);
		} else {
			uint64_t first = random_first(&m);

			CHECK_EQ(radix_next_item(&root, first),
				 model_next_item(&m, first));
		}
		CHECK_EQ(root.count, m.count);

		if (op % 100 == 99) {
			CHECK_EQ(radix_check(&root), 0);
			CHECK_EQ(root.shift, model_shift(&m));
			if (op % 5000 == 4999)
				compare_all(&root, &m);
		}
		if (test_failures != failures) {
			fprintf(stderr, "model test: seed %llu failed at op %ld "
				"(replay: RADIX_SEED=%llu)\n",
				(unsigned long long)seed, op,
				(unsigned long long)seed);
			break;
		}
	}

	/* Drain in random order; everything must come back, then empty. */
	for (size_t left = m.count; left; ) {
		size_t p = rnd_below(m.n);

		if (!m.present[p])
			continue;
		CHECK(radix_delete(&root, m.index[p]) == item_for(m.index[p]),
		      "drain %#llx", (unsigned long long)m.index[p]);
		m.present[p] = false;
		left--;
		if (left % 512 == 0)
			CHECK_EQ(radix_check(&root), 0);
	}
	CHECK(tree_empty(&root), "empty after drain");
	radix_destroy(&root, NULL, NULL);
	model_free(&m);
}

/* ---- 3. two million in a row ---- */

#define SEQ_COUNT	2000000ull

static void test_sequential(void)
{
	struct radix_root root;
	uint64_t idx[512], want = 0, found = 0, bad = 0;
	void *items[512];
	unsigned int n;

	radix_init(&root);
	for (uint64_t i = 0; i < SEQ_COUNT; i++)
		bad += radix_insert(&root, i, item_for(i)) != 0;
	CHECK_EQ(bad, 0);
	CHECK_EQ(root.count, SEQ_COUNT);
	for (uint64_t i = 0; i < SEQ_COUNT; i++)
		bad += radix_lookup(&root, i) != item_for(i);
	CHECK_EQ(bad, 0);
	CHECK(!radix_lookup(&root, SEQ_COUNT), "past the end");
	for (uint64_t i = 0; i < SEQ_COUNT; i += 3)
		radix_tag_set(&root, i, RADIX_TAG_DIRTY);
	CHECK_EQ(radix_check(&root), 0);

	for (uint64_t first = 0;
	     (n = radix_gang_lookup_tag(&root, items, idx, first, 512,
					RADIX_TAG_DIRTY));
	     first = idx[n - 1] + 1) {
		for (unsigned int i = 0; i < n; i++, want += 3)
			bad += idx[i] != want || items[i] != item_for(want);
		found += n;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(found, (SEQ_COUNT + 2) / 3);
	CHECK(!radix_tagged(&root, RADIX_TAG_WRITEBACK), "other tag");

	for (uint64_t i = 0; i < SEQ_COUNT; i++)
		bad += radix_delete(&root, i) != item_for(i);
	CHECK_EQ(bad, 0);
	CHECK(tree_empty(&root), "empty after deleting all");
	CHECK(!radix_tagged(&root, RADIX_TAG_DIRTY), "no tag left");
}

/* ---- 4. -ENOMEM ---- */

struct snapshot {
	unsigned int n, shift;
	uint64_t count, index[64];
	void *item[64];
	unsigned char tags[64];
};

static void take_snapshot(const struct radix_root *root, struct snapshot *s)
{
	s->shift = root->shift;
	s->count = root->count;
	s->n = radix_gang_lookup(root, s->item, s->index, 0, 64);
	for (unsigned int i = 0; i < s->n; i++) {
		s->tags[i] = 0;
		for (unsigned int t = 0; t < RADIX_MAX_TAGS; t++)
			if (radix_tag_get(root, s->index[i], t))
				s->tags[i] |= 1u << t;
	}
}

static bool same_snapshot(const struct snapshot *a, const struct snapshot *b)
{
	if (a->n != b->n || a->shift != b->shift || a->count != b->count)
		return false;
	for (unsigned int i = 0; i < a->n; i++)
		if (a->index[i] != b->index[i] || a->item[i] != b->item[i] ||
		    a->tags[i] != b->tags[i])
			return false;
	return true;
}

static const struct {
	const char *what;
	uint64_t tree[4];	/* indices present before the insert */
	unsigned int ntree;
	uint64_t insert;
	int nodes;		/* allocations the insert needs */
} nomem[] = {
	{ "empty tree, top index",	{ 0 }, 0,	UINT64_MAX,	11 },
	{ "empty tree, index 0",	{ 0 }, 0,	0,		1 },
	{ "grow one level",		{ 5, 9 }, 2,	64,		2 },
	{ "grow from 1 to 11 levels",	{ 0, 10 }, 2,	UINT64_MAX,	20 },
	{ "fill a path",		{ 0, 1ull << 40 }, 2,
					(1ull << 40) + (1ull << 20),	3 },
	{ "leaf exists",		{ 0, 63 }, 2,	1,		0 },
	{ "grow, tagged tree",		{ 1, 4096, 1ull << 33 }, 3,
					1ull << 59,			13 },
};

static void test_enomem(void)
{
	for (size_t c = 0; c < ARRAY_SIZE(nomem); c++) {
		int first_ok = -1;

		for (int n = 0; n <= 25 && first_ok < 0; n++) {
			struct snapshot before, after;
			struct radix_root root;
			int ret;

			radix_init(&root);
			for (unsigned int i = 0; i < nomem[c].ntree; i++) {
				uint64_t idx = nomem[c].tree[i];

				CHECK_EQ(radix_insert(&root, idx, item_for(idx)), 0);
				radix_tag_set(&root, idx, i % RADIX_MAX_TAGS);
			}
			take_snapshot(&root, &before);

			alloc_fail_after(n);
			ret = radix_insert(&root, nomem[c].insert,
					   item_for(nomem[c].insert));
			alloc_fail_after(-1);

			CHECK_EQ(radix_check(&root), 0);
			if (ret == 0) {
				first_ok = n;
				CHECK(radix_lookup(&root, nomem[c].insert) ==
				      item_for(nomem[c].insert), "%s", nomem[c].what);
				CHECK_EQ(root.count, nomem[c].ntree + 1);
			} else {
				CHECK_EQ(ret, -ENOMEM);
				take_snapshot(&root, &after);
				CHECK(same_snapshot(&before, &after),
				      "%s: tree changed by failed insert (n=%d)",
				      nomem[c].what, n);
				CHECK(!radix_lookup(&root, nomem[c].insert),
				      "%s: half inserted", nomem[c].what);
			}
			radix_destroy(&root, NULL, NULL);
		}
		CHECK(first_ok == nomem[c].nodes, "%s: first success at n=%d, "
		      "want %d", nomem[c].what, first_ok, nomem[c].nodes);
	}
}

/* ---- 5. destroy, concurrent readers, misuse ---- */

struct destroy_log {
	uint64_t last;
	size_t calls, bad;
};

static void destroy_cb(void *item, uint64_t index, void *arg)
{
	struct destroy_log *log = arg;

	if ((log->calls && index <= log->last) || item != item_for(index))
		log->bad++;
	log->last = index;
	log->calls++;
}

static void test_destroy(void)
{
	struct destroy_log log = { 0 };
	struct radix_root root;
	size_t n = 0;

	radix_init(&root);
	for (size_t i = 0; i < 3000; i++) {
		uint64_t idx = i % 3 ? rnd() >> rnd_below(64) : rnd_below(10000);

		n += radix_insert(&root, idx, item_for(idx)) == 0;
		if (i % 5 == 0)
			radix_tag_set(&root, idx, RADIX_TAG_DIRTY);
	}
	CHECK_EQ(root.count, n);
	CHECK_EQ(radix_check(&root), 0);
	radix_destroy(&root, destroy_cb, &log);
	CHECK_EQ(log.calls, n);
	CHECK_EQ(log.bad, 0);
	CHECK(tree_empty(&root), "empty after destroy");
	radix_destroy(&root, destroy_cb, &log);
	CHECK_EQ(log.calls, n);
}

#define READERS		4
#define READER_ITEMS	100000

static struct radix_root shared_root;

static void *reader(void *arg)
{
	uint64_t state = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	uintptr_t bad = 0;
	uint64_t idx[64];
	void *items[64];

	for (int i = 0; i < 100000; i++) {
		uint64_t k;

		state ^= state << 13;
		state ^= state >> 7;
		state ^= state << 17;
		k = state % (2 * READER_ITEMS);
		bad += radix_lookup(&shared_root, k) !=
		       (k % 2 ? NULL : item_for(k));
		if (i % 64 == 0) {
			unsigned int n = radix_gang_lookup_tag(&shared_root,
					items, idx, k, 64, RADIX_TAG_DIRTY);

			for (unsigned int j = 0; j < n; j++)
				bad += idx[j] % 8 != 0;
		}
	}
	return (void *)bad;
}

static void test_concurrent_readers(void)
{
	pthread_t threads[READERS];

	radix_init(&shared_root);
	for (uint64_t i = 0; i < 2 * READER_ITEMS; i += 2) {
		radix_insert(&shared_root, i, item_for(i));
		if (i % 8 == 0)
			radix_tag_set(&shared_root, i, RADIX_TAG_DIRTY);
	}
	for (uintptr_t t = 0; t < READERS; t++)
		CHECK_EQ(pthread_create(&threads[t], NULL, reader, (void *)t), 0);
	for (int t = 0; t < READERS; t++) {
		void *bad;

		pthread_join(threads[t], &bad);
		CHECK_EQ((uintptr_t)bad, 0);
	}
	radix_destroy(&shared_root, NULL, NULL);
}

static void test_misuse(void)
{
	struct radix_root root;
	void *items[2];

	fprintf(stderr, "test_radix: misuse test, WARNINGs expected\n");
	radix_init(&root);
	/* Items must be non-NULL with the low bit clear (WARNs once each). */
	CHECK_EQ(radix_insert(&root, 1, NULL), -EINVAL);
	CHECK_EQ(radix_insert(&root, 1, (void *)(uintptr_t)3), -EINVAL);
	CHECK(tree_empty(&root), "misuse left the tree empty");
	CHECK_EQ(radix_insert(&root, 1, item_for(1)), 0);
	radix_tag_set(&root, 1, RADIX_MAX_TAGS);
	CHECK(!radix_tag_get(&root, 1, RADIX_MAX_TAGS), "bad tag");
	CHECK_EQ(radix_gang_lookup_tag(&root, items, NULL, 0, 2,
				       RADIX_MAX_TAGS), 0);
	CHECK_EQ(radix_check(&root), 0);
	radix_destroy(&root, NULL, NULL);
}

int main(void)
{
	const char *env = getenv("RADIX_SEED");
	uint64_t seed;

	if (env)
		seed = strtoull(env, NULL, 0);
	else
		seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
	printf("test_radix: seed %llu (replay: RADIX_SEED=%llu)\n",
	       (unsigned long long)seed, (unsigned long long)seed);

	test_edge_single();
	test_edge_all();
	test_shrink();
	test_misuse();
	test_model(seed);
	rng_state = seed ^ 0x5555;
	test_destroy();
	test_sequential();
	test_enomem();
	test_concurrent_readers();
	return test_exit();
}
