/*
 * iov_iter.c - iterating over the pieces of one read or write, after the
 * kernel's lib/iov_iter.c.
 *
 * STATE
 *
 * The iterator points at its current segment (iov / kvec / pvec, all one
 * pointer in a union), nr_segs counts the segments left including that one,
 * iov_offset is how much of the current segment is consumed, and count is
 * what is left of the whole iterator - which may end before the segments do
 * (count is the caller's, the segments only say where the bytes are).
 *
 * Invariants (between calls):
 *  1. count never grows except by iov_iter_revert();
 *  2. nothing moves more than count bytes;
 *  3. iov_offset <= the current segment's length; a copy or advance that
 *     finishes a segment exactly steps to the next one (iov_offset 0);
 *  4. every copy advances by exactly the bytes it moved and returns that.
 *
 * USER MEMORY
 *
 * ITER_IOVEC segments are user memory: the copies go through uaccess and
 * stop at the first piece that comes up short (a fault), leaving the
 * iterator just past the last byte moved.  Nothing is zero-filled.  The
 * other kinds are library memory and never come up short.
 *
 * One walker, iterate(), serves every copy: it hands each non-empty slice
 * (address, length) of the next @len bytes to a step function that returns
 * what it could NOT do, as the kernel's iterate_and_advance() does.
 */
#include <errno.h>
#include <string.h>
#include <sys/types.h>

#include "../base/alloc.h"
#include "../base/compiler.h"
#include "../mm/page.h"
#include "iov_iter.h"
#include "uaccess.h"

/* ---- segments of every kind, seen as (base, len) ---- */

static inline char *seg_base(const struct iov_iter *i, unsigned long k)
{
	switch (i->type) {
	case ITER_IOVEC:
		return i->iov[k].iov_base;
	case ITER_KVEC:
		return i->kvec[k].iov_base;
	default:
		return page_address(i->pvec[k].page) + i->pvec[k].offset;
	}
}

static inline size_t seg_len(const struct iov_iter *i, unsigned long k)
{
	switch (i->type) {
	case ITER_IOVEC:
		return i->iov[k].iov_len;
	case ITER_KVEC:
		return i->kvec[k].iov_len;
	default:
		return i->pvec[k].len;
	}
}

/* Step the current segment by @k (negative: back), nr_segs with it. */
static inline void seg_move(struct iov_iter *i, long k)
{
	switch (i->type) {
	case ITER_IOVEC:
		i->iov += k;
		break;
	case ITER_KVEC:
		i->kvec += k;
		break;
	default:
		i->pvec += k;
		break;
	}
	i->nr_segs -= k;
}

/* ---- setup ---- */

static void iter_setup(struct iov_iter *i, enum iter_type type, int direction,
		       const void *segs, unsigned long nr_segs, size_t count)
{
	WARN_ON_ONCE(direction != ITER_DEST && direction != ITER_SOURCE);
	i->type = type;
	i->data_source = direction == ITER_SOURCE;
	i->iov_offset = 0;
	i->count = count;
	i->iov = segs;		/* the union: any member will do */
	i->nr_segs = nr_segs;
}

void iov_iter_init(struct iov_iter *i, int direction, const struct iovec *iov,
		   unsigned long nr_segs, size_t count)
{
	iter_setup(i, ITER_IOVEC, direction, iov, nr_segs, count);
}

void iov_iter_kvec(struct iov_iter *i, int direction, const struct kvec *kvec,
		   unsigned long nr_segs, size_t count)
{
	iter_setup(i, ITER_KVEC, direction, kvec, nr_segs, count);
}

void iov_iter_pagevec(struct iov_iter *i, int direction,
		      const struct page_vec *pvec, unsigned long nr_segs,
		      size_t count)
{
	iter_setup(i, ITER_PAGEVEC, direction, pvec, nr_segs, count);
}

/* ---- importing a caller's iovec ---- */

/* access_ok(): a range that wraps the address space is never user memory. */
static inline bool range_ok(const void *base, size_t len)
{
	return (uintptr_t)base + len >= (uintptr_t)base;
}

long import_iovec(int direction, const struct iovec *uvec, int nr_segs,
		  struct iovec *fast, unsigned int nr_fast,
		  struct iovec **iovp, struct iov_iter *i)
{
	struct iovec *iov = fast;
	size_t bytes, left, total = 0;
	long err;

	*iovp = NULL;
	if (nr_segs < 0 || nr_segs > UIO_MAXIOV)
		return -EINVAL;
	if (nr_segs == 0) {
		iov_iter_init(i, direction, fast, 0, 0);
		return 0;
	}
	if (!uvec)
		return -EFAULT;
	if ((unsigned int)nr_segs > nr_fast) {
		iov = kmalloc(nr_segs * sizeof(*iov));
		if (!iov)
			return -ENOMEM;
	}

	/*
	 * The array itself is user memory and may fault part way.  The
	 * kernel reads it entry by entry, rejecting a negative length as it
	 * goes, so a bad length before the fault wins over the fault.
	 */
	bytes = nr_segs * sizeof(*iov);
	left = copy_from_user(iov, uvec, bytes);
	for (int seg = 0; seg < nr_segs; seg++) {
		if ((seg + 1) * sizeof(*iov) > bytes - left) {
			err = -EFAULT;
			goto out_free;
		}
		if ((ssize_t)iov[seg].iov_len < 0) {
			err = -EINVAL;
			goto out_free;
		}
	}

	/*
	 * SUSv4 wants EINVAL if the total overflows ssize_t; Linux instead
	 * caps every read/write at MAX_RW_COUNT, shortening the segment that
	 * crosses it (and leaving the later ones in place, unreachable).
	 */
	for (int seg = 0; seg < nr_segs; seg++) {
		size_t len = iov[seg].iov_len;

		if (!range_ok(iov[seg].iov_base, len)) {
			err = -EFAULT;
			goto out_free;
		}
		if (len > MAX_RW_COUNT - total) {
			len = MAX_RW_COUNT - total;
			iov[seg].iov_len = len;
		}
		total += len;
	}

	iov_iter_init(i, direction, iov, nr_segs, total);
	if (iov != fast)
		*iovp = iov;
	return (long)total;

out_free:
	if (iov != fast)
		kfree(iov);
	return err;
}

long import_single_range(int direction, void *buf, size_t len,
			 struct iovec *iov, struct iov_iter *i)
{
	if ((ssize_t)len < 0)
		return -EINVAL;
	if (len > MAX_RW_COUNT)
		len = MAX_RW_COUNT;
	if (!range_ok(buf, len))
		return -EFAULT;
	iov->iov_base = buf;
	iov->iov_len = len;
	iov_iter_init(i, direction, iov, 1, len);
	return (long)len;
}

/* ---- the walker ---- */

/*
 * A step does @len bytes at @base, the slice that starts @progress bytes
 * into this copy, and returns the bytes it could NOT do (0 unless @base is
 * user memory that faulted).
 */
typedef size_t (*step_fn)(char *base, size_t progress, size_t len, void *priv);

static inline size_t iterate(struct iov_iter *i, size_t bytes, void *priv,
			     step_fn user_step, step_fn mem_step)
{
	step_fn step = iter_is_user(i) ? user_step : mem_step;
	size_t len = min(bytes, i->count), progress = 0;
	size_t skip = i->iov_offset;
	unsigned long k = 0;

	if (unlikely(!len))
		return 0;
	while (len && k < i->nr_segs) {
		size_t slen = seg_len(i, k);
		size_t part = min(len, slen - skip);

		if (likely(part)) {
			size_t done = part - step(seg_base(i, k) + skip, progress,
						  part, priv);

			progress += done;
			skip += done;
			len -= done;
			/* Short (a fault), or finished inside this segment. */
			if (skip < slen)
				break;
		}
		k++;
		skip = 0;
	}
	seg_move(i, k);
	i->iov_offset = skip;
	i->count -= progress;
	return progress;
}

/* The kernel's page_copy_sane(): the range must stay inside the page. */
static inline bool page_copy_sane(size_t offset, size_t bytes)
{
	return offset <= PAGE_SIZE && bytes <= PAGE_SIZE - offset;
}

/* copy_from_iter: segments -> priv (the destination buffer). */
static size_t from_user_step(char *base, size_t progress, size_t len, void *to)
{
	return copy_from_user((char *)to + progress, base, len);
}

static size_t from_mem_step(char *base, size_t progress, size_t len, void *to)
{
	memcpy((char *)to + progress, base, len);
	return 0;
}

/* copy_to_iter: priv (the source buffer) -> segments. */
static size_t to_user_step(char *base, size_t progress, size_t len, void *from)
{
	return copy_to_user(base, (const char *)from + progress, len);
}

static size_t to_mem_step(char *base, size_t progress, size_t len, void *from)
{
	memcpy(base, (const char *)from + progress, len);
	return 0;
}

static size_t zero_user_step(char *base, size_t progress, size_t len, void *unused)
{
	return clear_user(base, len);
}

static size_t zero_mem_step(char *base, size_t progress, size_t len, void *unused)
{
	memset(base, 0, len);
	return 0;
}

size_t copy_from_iter(void *to, size_t bytes, struct iov_iter *i)
{
	if (WARN_ON_ONCE(!i->data_source))
		return 0;
	return iterate(i, bytes, to, from_user_step, from_mem_step);
}

/* The no-fault copy: a view fault is refused and the copy comes up short. */
static size_t from_user_nofault_step(char *base, size_t progress, size_t len,
				     void *to)
{
	return copy_from_user_nofault((char *)to + progress, base, len);
}

size_t copy_from_iter_atomic(void *to, size_t bytes, struct iov_iter *i)
{
	if (WARN_ON_ONCE(!i->data_source))
		return 0;
	return iterate(i, bytes, to, from_user_nofault_step, from_mem_step);
}

size_t copy_page_from_iter_atomic(struct page *page, size_t offset,
				  size_t bytes, struct iov_iter *i)
{
	if (WARN_ON_ONCE(!i->data_source || !page_copy_sane(offset, bytes)))
		return 0;
	return iterate(i, bytes, page_address(page) + offset,
		       from_user_nofault_step, from_mem_step);
}

size_t copy_to_iter(const void *from, size_t bytes, struct iov_iter *i)
{
	if (WARN_ON_ONCE(i->data_source))
		return 0;
	return iterate(i, bytes, (void *)from, to_user_step, to_mem_step);
}

size_t iov_iter_zero(size_t bytes, struct iov_iter *i)
{
	if (WARN_ON_ONCE(i->data_source))
		return 0;
	return iterate(i, bytes, NULL, zero_user_step, zero_mem_step);
}

size_t copy_page_from_iter(struct page *page, size_t offset, size_t bytes,
			   struct iov_iter *i)
{
	if (WARN_ON_ONCE(!page_copy_sane(offset, bytes)))
		return 0;
	return copy_from_iter(page_address(page) + offset, bytes, i);
}

size_t copy_page_to_iter(struct page *page, size_t offset, size_t bytes,
			 struct iov_iter *i)
{
	if (WARN_ON_ONCE(!page_copy_sane(offset, bytes)))
		return 0;
	return copy_to_iter(page_address(page) + offset, bytes, i);
}

/* ---- moving without copying ---- */

void iov_iter_advance(struct iov_iter *i, size_t bytes)
{
	size_t skip;
	unsigned long k = 0;

	bytes = min(bytes, i->count);
	if (!bytes)
		return;
	i->count -= bytes;
	/* Count from the start of the current segment. */
	skip = bytes + i->iov_offset;
	while (k < i->nr_segs) {
		size_t slen = seg_len(i, k);

		if (skip < slen)
			break;
		skip -= slen;
		k++;
	}
	seg_move(i, k);
	i->iov_offset = skip;
}

void iov_iter_revert(struct iov_iter *i, size_t unroll)
{
	if (!unroll)
		return;
	/*
	 * Going back past the first segment cannot be seen from here (the
	 * iterator does not remember where its array starts); what can be
	 * seen is a revert larger than any one read or write, as the kernel
	 * checks.
	 */
	if (WARN_ON_ONCE(unroll > MAX_RW_COUNT))
		return;
	i->count += unroll;
	if (unroll <= i->iov_offset) {
		i->iov_offset -= unroll;
		return;
	}
	unroll -= i->iov_offset;
	/* Walk back whole segments; zero-length ones cost nothing. */
	for (;;) {
		size_t slen;

		seg_move(i, -1);
		slen = seg_len(i, 0);
		if (unroll <= slen) {
			i->iov_offset = slen - unroll;
			return;
		}
		unroll -= slen;
	}
}

size_t fault_in_iov_iter_readable(const struct iov_iter *i, size_t bytes)
{
	size_t count, skip = i->iov_offset;

	if (!iter_is_user(i))
		return 0;
	/* Bytes past the iterator's end cannot be faulted in: they count. */
	count = min(bytes, i->count);
	bytes -= count;
	for (unsigned long k = 0; count && k < i->nr_segs; k++, skip = 0) {
		size_t len = min(count, seg_len(i, k) - skip);
		size_t left;

		if (!len)
			continue;
		left = fault_in_readable(seg_base(i, k) + skip, len);
		count -= len - left;
		if (left)
			break;
	}
	return count + bytes;
}
