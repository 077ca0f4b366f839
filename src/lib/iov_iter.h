/*
 * iov_iter.h - an iterator over the pieces of one read or write, after the
 * kernel's lib/iov_iter.c.
 *
 * Three kinds:
 *   ITER_IOVEC    the caller's iovec array: user memory, copies may fault
 *                 (they go through uaccess and may come up short);
 *   ITER_KVEC     library memory: never faults;
 *   ITER_PAGEVEC  (page, offset, len) triples in the cache: never faults.
 *
 * An iterator is a *source* (data_source = true: the bytes of a write) or a
 * *destination* (the buffer of a read).  Copies advance the iterator by what
 * they moved; zero-length segments are skipped.  The segment array is not
 * copied: it must outlive the iterator.
 */
#ifndef PCACHE_IOV_ITER_H
#define PCACHE_IOV_ITER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

struct page;

enum iter_type {
	ITER_IOVEC,
	ITER_KVEC,
	ITER_PAGEVEC,
};

#define ITER_DEST	0	/* READ: data flows into the iterator */
#define ITER_SOURCE	1	/* WRITE: data flows out of the iterator */

struct kvec {
	void *iov_base;
	size_t iov_len;
};

struct page_vec {
	struct page *page;
	unsigned int offset;
	unsigned int len;
};

struct iov_iter {
	unsigned char type;		/* enum iter_type */
	bool data_source;		/* ITER_SOURCE or ITER_DEST */
	size_t iov_offset;		/* bytes consumed of the current segment */
	size_t count;			/* bytes left in the whole iterator */
	union {
		const struct iovec *iov;
		const struct kvec *kvec;
		const struct page_vec *pvec;
	};
	unsigned long nr_segs;		/* segments left, the current one included */
};

static inline size_t iov_iter_count(const struct iov_iter *i)
{
	return i->count;
}

static inline bool iter_is_user(const struct iov_iter *i)
{
	return i->type == ITER_IOVEC;
}

/* Set up an iterator of each kind over @count bytes of @nr_segs segments. */
void iov_iter_init(struct iov_iter *i, int direction, const struct iovec *iov,
		   unsigned long nr_segs, size_t count);
void iov_iter_kvec(struct iov_iter *i, int direction, const struct kvec *kvec,
		   unsigned long nr_segs, size_t count);
void iov_iter_pagevec(struct iov_iter *i, int direction,
		      const struct page_vec *pvec, unsigned long nr_segs,
		      size_t count);

/*
 * import_iovec - validate a caller's iovec array and set up a user iterator
 * over it, as the kernel's import_iovec() does.
 *  - nr_segs < 0 or > UIO_MAXIOV (IOV_MAX): -EINVAL;
 *  - uvec NULL with nr_segs > 0, or the array itself unreadable: -EFAULT;
 *  - a segment length negative as ssize_t: -EINVAL;
 *  - the total is capped at MAX_RW_COUNT by shortening segments.
 * The array is copied: into @fast (room for @nr_fast segments) if it fits,
 * else into a new allocation returned in *@iovp, which the caller kfree()s
 * (*@iovp is NULL when @fast was used).  Returns the total byte count, or a
 * negative errno (nothing to free then).
 */
long import_iovec(int direction, const struct iovec *uvec, int nr_segs,
		  struct iovec *fast, unsigned int nr_fast,
		  struct iovec **iovp, struct iov_iter *i);

/*
 * import_single_range - one user buffer; -EINVAL if len is negative as
 * ssize_t; capped at MAX_RW_COUNT.  @iov is storage for the one segment.
 */
long import_single_range(int direction, void *buf, size_t len,
			 struct iovec *iov, struct iov_iter *i);

/*
 * Copies.  Each moves up to @bytes (never more than iov_iter_count()),
 * advances the iterator by what it moved and returns that.  For ITER_IOVEC
 * the result is short if the user memory faulted; the other kinds never
 * come up short.  copy_from_iter needs a source, copy_to_iter and
 * iov_iter_zero a destination.
 */
size_t copy_from_iter(void *to, size_t bytes, struct iov_iter *i);
size_t copy_to_iter(const void *from, size_t bytes, struct iov_iter *i);
size_t iov_iter_zero(size_t bytes, struct iov_iter *i);

/* The same, to or from page_address(page) + offset; offset+bytes <= PAGE_SIZE. */
size_t copy_page_from_iter(struct page *page, size_t offset, size_t bytes,
			   struct iov_iter *i);
size_t copy_page_to_iter(struct page *page, size_t offset, size_t bytes,
			 struct iov_iter *i);

/*
 * copy_page_from_iter_atomic - the copy with "page faults disabled": a
 * fault on a view is refused (uaccess.h: copy_from_user_nofault) and the
 * copy comes up short instead of waiting for the fault handler, which may
 * need the page lock the caller holds.  Faults the kernel serves itself
 * (anonymous memory) are not affected.
 */
size_t copy_page_from_iter_atomic(struct page *page, size_t offset,
				  size_t bytes, struct iov_iter *i);
/* The same into any library memory (several pages that sit side by side). */
size_t copy_from_iter_atomic(void *to, size_t bytes, struct iov_iter *i);

/* Move forward / back by @bytes (revert: at most what was advanced). */
void iov_iter_advance(struct iov_iter *i, size_t bytes);
void iov_iter_revert(struct iov_iter *i, size_t bytes);

/*
 * Fault in the next @bytes of a user source (without consuming them).
 * Returns the bytes that could NOT be faulted in; 0 for kvec/pagevec.
 */
size_t fault_in_iov_iter_readable(const struct iov_iter *i, size_t bytes);

/* Shorten the iterator to at most @count bytes (limits on a write). */
static inline void iov_iter_truncate(struct iov_iter *i, size_t count)
{
	if (i->count > count)
		i->count = count;
}

#endif /* PCACHE_IOV_ITER_H */
