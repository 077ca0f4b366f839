/*
 * dir.c - the directory backend: each cached file is a real file under a
 * backing directory (pcache_config.backend_arg), cut into blocks of
 * pcache_config.block_size bytes (512 to 4096) with the block layer of
 * fs/buffer.h.  This is where the seed's "filesystems and the buffer layer"
 * live:
 *
 *  - read_folio reads only the blocks of a page that are not uptodate, and
 *    tells holes apart (SEEK_DATA/SEEK_HOLE): a page in a hole is zeroed,
 *    not read, and its blocks are left unmapped.
 *  - write_begin on a page that is not uptodate reads in only the blocks
 *    the write partly covers (a whole-block overwrite reads nothing), and
 *    gets storage for the blocks it touches that are not mapped - the
 *    get_block() step, and where ENOSPC shows.  Storage is reserved in
 *    aligned chunks (PCACHE_DIR_RESERVE, default 1 MiB: one fallocate
 *    with FALLOC_FL_KEEP_SIZE per chunk, remembered in di->resv); if a
 *    chunk does not fit, exactly the write's blocks are allocated, and
 *    only that failing fails the write (dir_reserve).  A write that then
 *    fails frees what was allocated past i_size (release_blocks, called by
 *    write_failed) and returns its short count.
 *  - perform_write gets storage for the whole write with one dir_reserve
 *    and copies in batches (mm/write_batch.c); if that fails it falls back
 *    to the page-by-page loop, which finds how far the space goes.
 *  - writepages writes only dirty blocks, runs of them gathered into
 *    iovecs, clamped to i_size: one pwritev per contiguous run, or all runs
 *    of a batch in one io_uring submission (PCACHE_DIR_IO=uring; see
 *    docs/performance.md for why pwritev is the default).  A failed write
 *    redirties its pages (nothing is dropped) and is recorded in the
 *    mapping's errseq_t.
 *  - setsize frees the blocks past the new end (holes stay holes), blocks
 *    allocated past the backing file's end too, and never gives the
 *    backing file a size the file never had (dir_trim_to); sync gives back
 *    what reservations did not use (holes stay holes, nothing stays
 *    allocated past EOF), makes the backing file's size i_size, gives it
 *    the cache's times (as writeback does) and fsyncs it.
 *
 * The backing file's size lags i_size while appended data is dirty:
 * disk_size is what pcache last made it.  Bytes past disk_size read as
 * zeroes without a system call.  Backing files must not be changed behind
 * the cache's back while the cache has them open.
 *
 * Names may contain '/' (existing subdirectories); they are resolved with
 * openat2(RESOLVE_BENEATH), so no name reaches outside the directory, and
 * a ".." component is refused (-EACCES): the core caches by name, and the
 * name must be the file's one spelling.  (Hard links and symlinks between
 * cached files still alias: see docs/api.md.)
 * The calls that move or keep data (pread, preadv, pwrite(v), fallocate,
 * ftruncate, fsync, fdatasync) go through the sys table (fault injection);
 * namespace calls (openat2, unlinkat, renameat, fstatat) and lseek, fstat,
 * futimens, fchmod, fchown (setattr: mode and owner are the backing
 * file's) are made directly.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/sys.h"
#include "../fs/buffer.h"
#include "../fs/fs.h"
#include "../lib/iov_iter.h"
#include "../mm/page.h"
#include "../mm/radix.h"

struct dir_sb {
	int dirfd;
	loff_t resv_size;		/* reservation chunk (bytes), 0: exact */
	loff_t fs_block;		/* the backing file system's block size */
	bool uring;			/* write back with io_uring, else pwritev */
	pthread_mutex_t ring_lock;	/* one submitter at a time (a leaf) */
	struct io_uring ring;
};

struct dir_inode {
	int fd;
	/*
	 * Atomic: fd is open read-only, because the process may not write the
	 * file (EACCES, EROFS) when it was looked up.  dir_open upgrades it.
	 */
	bool rdonly;
	loff_t disk_size;		/* atomic: the backing file's size */
	/*
	 * Atomic: the end of the highest block fallocate was asked for since
	 * the last truncate - blocks may be allocated up to here even past
	 * disk_size (appends not written back yet).  Changed under i_rwsem.
	 */
	loff_t alloc_end;
	pthread_mutex_t ext_lock;	/* a leaf */
	loff_t data_lo, data_hi;	/* a known data extent (ext_lock) */
	/*
	 * A leaf, held around every call that can change the backing file's
	 * size: writeback's writes, sync's and truncate's ftruncates.  So a
	 * size read under it is the file's, and sync never shrinks the file
	 * under pages the flusher has just written past the i_size it read.
	 */
	pthread_mutex_t size_lock;
	/*
	 * Chunks (resv_size bytes, aligned) that dir_reserve allocated whole,
	 * and chunks whose reservation failed (allocated exactly until the
	 * next sync or truncate), as sparse bitmaps: radix index = chunk / 64,
	 * item = a kmalloc'd struct resv_word.  Read and changed under i_rwsem
	 * only (writes, truncate, dir_sync's trylock).  Zeroed by
	 * dir_fill_inode's kzalloc, which is radix_init(); freed by dir_evict.
	 */
	struct radix_root resv;
};

struct resv_word {
	uint64_t ok, failed;		/* one bit per chunk */
};

static inline struct dir_inode *DI(const struct inode *inode)
{
	return inode->i_private;
}

static inline struct dir_sb *DSB(const struct pcache *pc)
{
	return pc->s_fs_info;
}

static loff_t disk_size(const struct dir_inode *di)
{
	return __atomic_load_n(&di->disk_size, __ATOMIC_ACQUIRE);
}

static void disk_size_raise(struct dir_inode *di, loff_t size)
{
	loff_t old = disk_size(di);

	while (size > old &&
	       !__atomic_compare_exchange_n(&di->disk_size, &old, size, false,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

/* The data extent cache only shrinks by truncation and punching. */
static void forget_extents(struct dir_inode *di)
{
	pthread_mutex_lock(&di->ext_lock);
	di->data_lo = di->data_hi = 0;
	pthread_mutex_unlock(&di->ext_lock);
}

/*
 * Where does data start at or after @pos (a page), below @end?  Returns
 * the offset, @end if [pos, end) is all hole, or a negative errno.
 */
static loff_t dir_seek_data(struct inode *inode, loff_t pos, loff_t end)
{
	struct dir_inode *di = DI(inode);
	struct pcache *pc = inode->i_sb;
	loff_t data, hole;

	pthread_mutex_lock(&di->ext_lock);
	if (pos >= di->data_lo && pos < di->data_hi) {
		pthread_mutex_unlock(&di->ext_lock);
		return pos;
	}
	pthread_mutex_unlock(&di->ext_lock);

	stat_add(pc, backend_other, 1);
	data = lseek(di->fd, pos, SEEK_DATA);
	if (data < 0)
		return errno == ENXIO ? end : -errno;
	if (data >= end)
		return end;
	stat_add(pc, backend_other, 1);
	hole = lseek(di->fd, data, SEEK_HOLE);
	if (hole > data) {
		pthread_mutex_lock(&di->ext_lock);
		di->data_lo = data;
		di->data_hi = hole;
		pthread_mutex_unlock(&di->ext_lock);
	}
	return data;
}

/* Read [pos, pos+len) of the backing file into @dst; zeroes past its end. */
static int dir_read(struct inode *inode, loff_t pos, char *dst, size_t len)
{
	struct dir_inode *di = DI(inode);
	loff_t disk = disk_size(di);
	size_t done = 0;

	while (done < len && pos + (loff_t)done < disk) {
		size_t want = (size_t)min((uint64_t)(len - done),
					  (uint64_t)(disk - pos - (loff_t)done));
		ssize_t n;

		stat_add(inode->i_sb, backend_reads, 1);
		n = sys.pread(di->fd, dst + done, want, pos + (loff_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_err();
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	memset(dst + done, 0, len - done);
	return 0;
}

/* Allocate storage for [pos, pos+len): get_block(create=1), in one call. */
static int dir_alloc(struct inode *inode, loff_t pos, loff_t len)
{
	struct dir_inode *di = DI(inode);

	/* Before the call: a failing fallocate may have allocated part of it. */
	if (pos + len > __atomic_load_n(&di->alloc_end, __ATOMIC_RELAXED))
		__atomic_store_n(&di->alloc_end, pos + len, __ATOMIC_RELAXED);
	stat_add(inode->i_sb, backend_allocs, 1);
	if (sys.fallocate(DI(inode)->fd, FALLOC_FL_KEEP_SIZE, pos, len))
		return sys_err();
	return 0;
}

/*
 * Reservation: allocation in aligned chunks.
 *
 * Allocating exactly the blocks of each write is what makes random writes
 * into a new file slow: ext4 gets one unwritten extent per write, in random
 * order, and converting tens of thousands of them at fsync costs seconds
 * (docs/performance.md).  So a write that needs blocks allocates the whole
 * aligned chunks (resv_size, default 1 MiB) around them in one fallocate,
 * and records them (di->resv) so that later writes into them make no call.
 *
 * The guarantee stays exact: if the chunks cannot be allocated, the exact
 * blocks are tried, and only their failure fails the write.  A reservation
 * is speculative, so the cache gives back what it did not use at sync
 * (resv_release): reserved pages inside the file that neither hold data in
 * the backing file nor are in the cache are punched out again, and blocks
 * past the end are freed - holes stay holes, and nothing stays allocated
 * past EOF.  Near a full file system (less than PCACHE_DIR_RESV_ROOM chunks
 * free) the backend allocates exactly, as before, so its own reservations
 * cannot take the last blocks from a write.  All of it runs under i_rwsem.
 */
#ifndef PCACHE_DIR_RESV_ROOM
#define PCACHE_DIR_RESV_ROOM	64
#endif
#define RESV_BITS	64		/* chunks per radix item */

static struct resv_word *resv_word(struct dir_inode *di, uint64_t chunk)
{
	return radix_lookup(&di->resv, chunk / RESV_BITS);
}

static bool resv_test(struct dir_inode *di, uint64_t chunk)
{
	struct resv_word *w = resv_word(di, chunk);

	return w && (w->ok >> (chunk % RESV_BITS) & 1);
}

static bool resv_failed(struct dir_inode *di, uint64_t chunk)
{
	struct resv_word *w = resv_word(di, chunk);

	return w && (w->failed >> (chunk % RESV_BITS) & 1);
}

/* Record chunks [first, last] reserved (or failed); on ENOMEM some stay unrecorded. */
static void resv_set(struct dir_inode *di, uint64_t first, uint64_t last, bool ok)
{
	for (uint64_t c = first; c <= last; c++) {
		struct resv_word *w = resv_word(di, c);

		if (!w) {
			w = kzalloc(sizeof(*w));
			if (!w)
				return;
			if (radix_insert(&di->resv, c / RESV_BITS, w)) {
				kfree(w);
				return;
			}
		}
		if (ok)
			w->ok |= 1ull << (c % RESV_BITS);
		else
			w->failed |= 1ull << (c % RESV_BITS);
	}
}

/* Forget the chunks at and after @chunk (their blocks were freed). */
static void resv_forget_from(struct dir_inode *di, uint64_t chunk)
{
	uint64_t idx = chunk / RESV_BITS;
	void *items[16];
	uint64_t indices[16];
	unsigned int n;

	while ((n = radix_gang_lookup(&di->resv, items, indices, idx, 16))) {
		for (unsigned int k = 0; k < n; k++) {
			struct resv_word *w = items[k];
			uint64_t keep = indices[k] == chunk / RESV_BITS ?
					(1ull << (chunk % RESV_BITS)) - 1 : 0;

			w->ok &= keep;
			w->failed &= keep;
			if (!w->ok && !w->failed)
				kfree(radix_delete(&di->resv, indices[k]));
		}
		idx = indices[n - 1] + 1;
	}
}

/* Room for speculation: more than PCACHE_DIR_RESV_ROOM chunks free. */
static bool resv_room(struct dir_inode *di, loff_t size)
{
	struct statfs st;

	return !fstatfs(di->fd, &st) &&
	       (uint64_t)st.f_bavail * (uint64_t)st.f_bsize >
	       (uint64_t)size * PCACHE_DIR_RESV_ROOM;
}

/*
 * Storage for [pos, pos+len) (blocks): nothing to do if its chunks are
 * reserved; else reserve the chunks it touches that are not, in one call;
 * if that fails, allocate exactly [pos, pos+len) - whose error is the
 * write's.  Caller holds i_rwsem.
 */
static int dir_reserve(struct inode *inode, loff_t pos, loff_t len)
{
	struct dir_inode *di = DI(inode);
	loff_t size = DSB(inode->i_sb)->resv_size;
	uint64_t first, last;

	if (!size)
		return dir_alloc(inode, pos, len);
	first = (uint64_t)pos / (uint64_t)size;
	last = (uint64_t)(pos + len - 1) / (uint64_t)size;
	while (first <= last && resv_test(di, first))
		first++;
	while (last > first && resv_test(di, last))
		last--;
	if (first > last)
		return 0;
	if (!resv_failed(di, first) && !resv_failed(di, last) && resv_room(di, size) &&
	    (loff_t)((last + 1) * (uint64_t)size) <= inode->i_sb->s_maxbytes) {
		if (!dir_alloc(inode, (loff_t)(first * (uint64_t)size),
			       (loff_t)((last - first + 1) * (uint64_t)size))) {
			resv_set(di, first, last, true);
			return 0;
		}
		resv_set(di, first, last, false);
	}
	/* The chunks do not fit: only the write's own blocks must. */
	return dir_alloc(inode, pos, len);
}

static loff_t round_up_to(loff_t v, loff_t a)
{
	return (v + a - 1) / a * a;
}

/*
 * Punch the pages of [from, to) that the backing file holds only as
 * unwritten extents: allocated, never written.  SEEK_DATA cannot say so
 * (ext4 counts an unwritten extent with page-cache folios as data, and the
 * kernel's readahead puts zeroed folios there), FIEMAP can, once the
 * backing file's page cache is written (FIEMAP_FLAG_SYNC: fsync follows
 * anyway).  Caller holds size_lock, so no writeback lands in between.
 */
static void punch_unwritten(struct inode *inode, loff_t from, loff_t to)
{
	struct dir_inode *di = DI(inode);
	struct {
		struct fiemap fm;
		struct fiemap_extent ext[32];
	} q;

	while (from < to) {
		unsigned int i;

		memset(&q, 0, sizeof(q));
		q.fm.fm_start = (uint64_t)from;
		q.fm.fm_length = (uint64_t)(to - from);
		q.fm.fm_flags = FIEMAP_FLAG_SYNC;
		q.fm.fm_extent_count = ARRAY_SIZE(q.ext);
		stat_add(inode->i_sb, backend_other, 1);
		if (ioctl(di->fd, FS_IOC_FIEMAP, &q.fm) || !q.fm.fm_mapped_extents)
			return;
		for (i = 0; i < q.fm.fm_mapped_extents; i++) {
			struct fiemap_extent *e = &q.ext[i];
			loff_t a = max((loff_t)e->fe_logical, from);
			loff_t b = min((loff_t)(e->fe_logical + e->fe_length), to);

			a = (a + PAGE_SIZE - 1) & ~(loff_t)(PAGE_SIZE - 1);
			b &= ~(loff_t)(PAGE_SIZE - 1);
			if ((e->fe_flags & FIEMAP_EXTENT_UNWRITTEN) && b > a) {
				stat_add(inode->i_sb, backend_allocs, 1);
				sys.fallocate(di->fd, FALLOC_FL_PUNCH_HOLE |
					      FALLOC_FL_KEEP_SIZE, a, b - a);
			}
		}
		{
			struct fiemap_extent *e = &q.ext[q.fm.fm_mapped_extents - 1];

			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				return;
			from = (loff_t)(e->fe_logical + e->fe_length);
		}
	}
}

/* The first page at or after @idx that is dirty or under writeback, or @last. */
static uint64_t next_busy(struct address_space *mapping, uint64_t idx,
			  uint64_t last)
{
	void *page;
	uint64_t d = last, w = last;

	pthread_rwlock_rdlock(&mapping->i_pages_lock);
	if (!radix_gang_lookup_tag(&mapping->i_pages, &page, &d, idx, 1,
				   RADIX_TAG_DIRTY))
		d = last;
	if (!radix_gang_lookup_tag(&mapping->i_pages, &page, &w, idx, 1,
				   RADIX_TAG_WRITEBACK))
		w = last;
	pthread_rwlock_unlock(&mapping->i_pages_lock);
	return min(min(d, w), last);
}

/*
 * Give back the unused part of every reservation inside the file, and
 * forget them all.  A reserved page may be punched only if it is neither
 * dirty nor under writeback (its bytes are not in the backing file yet:
 * it keeps its blocks) and the backing file never had it written (a page
 * written back since is data: punch_unwritten).  The tags are looked at before size_lock (leaf
 * locks do not nest); writes are excluded by i_rwsem, and a page that a
 * view dirties after the look loses its reservation, which is all a view
 * store ever had: its blocks are allocated at writeback.  The data check
 * and the punch are under size_lock, so no writeback writes between them.
 * Caller holds i_rwsem.
 */
static void release_chunk(struct inode *inode, uint64_t c)
{
	struct dir_inode *di = DI(inode);
	struct address_space *mapping = &inode->i_data;
	uint64_t size = (uint64_t)DSB(inode->i_sb)->resv_size;
	uint64_t end = ((uint64_t)i_size_read(inode) + PAGE_SIZE - 1) >> PAGE_SHIFT;
	uint64_t idx = c * size >> PAGE_SHIFT;
	uint64_t last = min((c + 1) * size >> PAGE_SHIFT, end);

	/* Runs between dirty pages, punched in turn. */
	while (idx < last) {
		uint64_t next = next_busy(mapping, idx, last);

		if (next > idx) {
			pthread_mutex_lock(&di->size_lock);
			punch_unwritten(inode, (loff_t)(idx << PAGE_SHIFT),
					(loff_t)(next << PAGE_SHIFT));
			pthread_mutex_unlock(&di->size_lock);
		}
		idx = next + 1;
	}
}

/*
 * Every chunk: given back, and forgotten.  Failed ones too: a fallocate
 * that fails with ENOSPC may keep what it allocated before it ran out (ext4
 * does), and their space may be free by the next write.
 */
static void resv_release(struct inode *inode)
{
	struct dir_inode *di = DI(inode);
	void *items[16];
	uint64_t indices[16];
	unsigned int n;

	while ((n = radix_gang_lookup(&di->resv, items, indices, 0, 16))) {
		for (unsigned int k = 0; k < n; k++) {
			struct resv_word *w = items[k];
			uint64_t any = w->ok | w->failed;

			kfree(radix_delete(&di->resv, indices[k]));
			for (unsigned int b = 0; b < RESV_BITS; b++)
				if (any >> b & 1)
					release_chunk(inode, indices[k] * RESV_BITS + b);
		}
	}
}

/* inode_lock's trylock: the flusher-side callers must not wait for a writer. */
static bool dir_inode_trylock(struct inode *inode)
{
	if (pthread_mutex_trylock(&inode->i_rwsem))
		return false;
	lockdep_acquire(LOCK_INODE, &inode->i_rwsem, inode, 0, true);
	return true;
}

/* Read the blocks @mask of a locked page (runs of them, one pread each). */
static int read_blocks(struct inode *inode, struct page *page, uint32_t mask)
{
	unsigned int bits = inode->i_blkbits, nb = PAGE_SIZE >> bits, b = 0;
	loff_t base = (loff_t)(page->index << PAGE_SHIFT);

	while (b < nb) {
		unsigned int e;
		int err;

		if (!(mask & (1u << b))) {
			b++;
			continue;
		}
		for (e = b; e < nb && (mask & (1u << e)); e++)
			;
		err = dir_read(inode, base + ((loff_t)b << bits),
			       page_address(page) + ((size_t)b << bits),
			       (size_t)(e - b) << bits);
		if (err)
			return err;
		b = e;
	}
	return 0;
}

static int dir_read_folio(struct file *file, struct page *page)
{
	struct inode *inode = page->mapping->host;
	unsigned int bits = inode->i_blkbits;
	loff_t base = (loff_t)(page->index << PAGE_SHIFT);
	loff_t end = base + PAGE_SIZE, data;
	uint32_t need = blocks_all(inode) & ~page_blocks(page, BLK_UPTODATE_SHIFT);
	uint32_t hole = 0;
	int err;

	/* Never over a dirty block: those bytes are newer than the disk's. */
	need &= ~page_blocks(page, BLK_DIRTY_SHIFT);
	if (base >= disk_size(DI(inode))) {
		data = end;
	} else {
		data = dir_seek_data(inode, base, end);
		if (data < 0)
			return (int)data;
	}
	/* Blocks wholly before the data are holes: zeroes, nothing mapped. */
	if (data > base)
		hole = blocks_covered(inode, 0, (size_t)(data - base)) & need;
	for (unsigned int b = 0; b < (PAGE_SIZE >> bits); b++)
		if (hole & (1u << b))
			memset(page_address(page) + ((size_t)b << bits), 0,
			       (size_t)1 << bits);
	err = read_blocks(inode, page, need & ~hole);
	if (err)
		return err;
	set_page_blocks(page, BLK_MAPPED_SHIFT, need & ~hole);
	/* Dirty blocks are uptodate already: every block is now. */
	page_blocks_uptodate(inode, page, blocks_all(inode));
	return 0;
}

/*
 * readahead: @nr new pages, consecutive and locked, with no block of them
 * uptodate: one preadv for all of them after the hole check of the first.
 * A page the op cannot fill is left not uptodate (read_folio retries it).
 */
static void dir_readahead(struct address_space *mapping, struct page **pages,
			  unsigned int nr)
{
	struct inode *inode = mapping->host;
	struct dir_inode *di = DI(inode);
	loff_t base = (loff_t)(pages[0]->index << PAGE_SHIFT);
	loff_t end = base + ((loff_t)nr << PAGE_SHIFT), disk = disk_size(di);
	loff_t data = end, pos;
	struct iovec iov[32];
	unsigned int first = 0, i, n = 0;
	ssize_t got;

	if (nr > ARRAY_SIZE(iov))
		return;
	if (base < disk) {
		data = dir_seek_data(inode, base, end);
		if (data < 0)
			return;
	}
	/* Pages wholly in the hole before the data, or past the disk's end. */
	while (first < nr && (base + ((loff_t)(first + 1) << PAGE_SHIFT) <= data ||
			      base + ((loff_t)first << PAGE_SHIFT) >= disk)) {
		zero_user_segment(pages[first], 0, PAGE_SIZE);
		page_blocks_uptodate(inode, pages[first], blocks_all(inode));
		first++;
	}
	if (first == nr)
		return;
	pos = base + ((loff_t)first << PAGE_SHIFT);
	for (i = first; i < nr; i++) {
		char *addr = page_address(pages[i]);

		if (n && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == addr)
			iov[n - 1].iov_len += PAGE_SIZE;
		else
			iov[n++] = (struct iovec){ addr, PAGE_SIZE };
	}
	stat_add(inode->i_sb, backend_reads, 1);
	got = sys.preadv(di->fd, iov, (int)n, pos);
	if (got < 0)
		return;
	for (i = first; i < nr; i++) {
		loff_t off = (loff_t)(i - first) << PAGE_SHIFT;

		if (off >= got && pos + off < disk)
			break;		/* short read inside the file: read_folio */
		if (off + (loff_t)PAGE_SIZE > got)
			zero_user_segment(pages[i], off < got ? (size_t)(got - off) : 0,
					  PAGE_SIZE);
		set_page_blocks(pages[i], BLK_MAPPED_SHIFT, blocks_all(inode));
		page_blocks_uptodate(inode, pages[i], blocks_all(inode));
	}
}

/*
 * Get a locked page that is not uptodate ready for bytes [from, to): read
 * in the blocks the write covers only in part.  With @alloc, allocate the
 * touched blocks that are not mapped (write_begin; perform_write allocated
 * the whole write already).
 */
static int prepare_blocks(struct inode *inode, struct page *page, size_t from,
			  size_t to, bool alloc)
{
	unsigned int bits = inode->i_blkbits;
	uint32_t touched = blocks_touched(inode, from, to);
	uint32_t partial = touched & ~blocks_covered(inode, from, to) &
			   ~page_blocks(page, BLK_UPTODATE_SHIFT);
	uint32_t unmapped = touched & ~page_blocks(page, BLK_MAPPED_SHIFT);
	loff_t base = (loff_t)(page->index << PAGE_SHIFT);
	int err;

	if (partial) {
		err = read_blocks(inode, page, partial);
		if (err)
			return err;
		set_page_blocks(page, BLK_UPTODATE_SHIFT, partial);
	}
	if (alloc && unmapped) {
		unsigned int first = (unsigned int)__builtin_ctz(unmapped);
		unsigned int last = 31 - (unsigned int)__builtin_clz(unmapped);

		err = dir_reserve(inode, base + ((loff_t)first << bits),
				  (loff_t)(last - first + 1) << bits);
		if (err)
			return err;
	}
	set_page_blocks(page, BLK_MAPPED_SHIFT, touched);
	return 0;
}

static int dir_write_begin(struct file *file, struct address_space *mapping,
			   loff_t pos, unsigned int len, struct page **pagep,
			   void **fsdata)
{
	size_t from = (size_t)pos & ~PAGE_MASK;
	struct page *page;
	int err;

	err = grab_cache_page_write_begin(mapping, (uint64_t)pos >> PAGE_SHIFT,
					  &page);
	if (err)
		return err;
	/*
	 * An uptodate page is written in place and its unmapped blocks (read
	 * from a hole) get storage at writeback: bounce-opt copies into it
	 * before write_begin, so write_begin must not fail for it.
	 */
	if (!PageUptodate(page)) {
		err = prepare_blocks(mapping->host, page, from, from + len, true);
		if (err) {
			unlock_page(page);
			put_page(page);
			return err;
		}
	}
	*pagep = page;
	return 0;
}

static int dir_write_end(struct file *file, struct address_space *mapping,
			 loff_t pos, unsigned int len, unsigned int copied,
			 struct page *page, void *fsdata)
{
	struct inode *inode = mapping->host;
	size_t from = (size_t)pos & ~PAGE_MASK;

	/* A short copy into a page not uptodate commits nothing (BRIEF §4). */
	if (!PageUptodate(page) && copied < len)
		copied = 0;
	if (copied) {
		block_commit_write(inode, page, from, from + copied);
		if (pos + copied > i_size_read(inode))
			i_size_grow(inode, pos + copied);
	}
	unlock_page(page);
	put_page(page);
	return (int)copied;
}

/* perform_write's batches: pages are prepared as write_begin would. */
static int dir_batch_prepare(struct file *file, struct page *page,
			     size_t from, size_t to)
{
	return prepare_blocks(page->mapping->host, page, from, to, false);
}

static void dir_batch_commit(struct page *page, size_t from, size_t to)
{
	struct inode *inode = page->mapping->host;
	uint32_t mask = blocks_touched(inode, from, to);

	page_blocks_uptodate(inode, page, mask);
	set_page_blocks(page, BLK_DIRTY_SHIFT, mask);
}

static const struct write_batch_ops dir_batch_ops = {
	.prepare	= dir_batch_prepare,
	.commit		= dir_batch_commit,
};

static ssize_t dir_perform_write(struct file *file, struct iov_iter *i,
				 loff_t pos)
{
	struct inode *inode = file->f_inode;
	loff_t bs = i_blocksize(inode);
	loff_t start = pos & ~(bs - 1);
	loff_t end = (pos + (loff_t)iov_iter_count(i) + bs - 1) & ~(bs - 1);

	/* Every block of the write in one call; if that fails, find out where. */
	if (dir_reserve(inode, start, end - start))
		return generic_perform_write_pages(file, i, pos);
	return batch_perform_write(file, i, pos, &dir_batch_ops);
}

/*
 * The file is now @size bytes (truncate, or a failed write's cleanup):
 * free every block allocated past it in the backing file, and none below
 * it (a crash may come at any point: test_crash.sh).
 *
 * Blocks may be allocated past the backing file's end (fallocate with
 * FALLOC_FL_KEEP_SIZE: reservations, and appends not written back), and
 * neither a growing truncate nor a punch past EOF frees them on ext4.  A
 * truncate to the backing file's own size does (ext4, xfs): it frees
 * everything past its end and moves nothing.  So:
 *   @size below the backing size: truncate to @size (a shrink frees);
 *   else: first grow the backing file to @size - the blocks between its
 *   old end and @size may hold acknowledged writes not written back yet,
 *   which must keep their storage - then truncate to @size again if
 *   anything was allocated past it.
 * The backing file only ever gets a size the file has.  Caller holds
 * i_rwsem.
 */
static int dir_trim_to(struct inode *inode, loff_t size)
{
	struct dir_inode *di = DI(inode);
	struct dir_sb *sb = DSB(inode->i_sb);
	int err = 0;

	forget_extents(di);
	pthread_mutex_lock(&di->size_lock);
	if (size > disk_size(di)) {
		stat_add(inode->i_sb, backend_other, 1);
		if (sys.ftruncate(di->fd, size))
			err = sys_err();
		else
			disk_size_raise(di, size);
	}
	pthread_mutex_unlock(&di->size_lock);
	/*
	 * The chunk @size cuts keeps its blocks below @size: give back the
	 * unused (of a failed reservation too, see resv_release).  After the
	 * grow: ext4 ignores a punch past the backing file's end.
	 */
	if (!err && sb->resv_size) {
		uint64_t c = (uint64_t)size / (uint64_t)sb->resv_size;

		if (resv_test(di, c) || resv_failed(di, c))
			release_chunk(inode, c);
	}
	pthread_mutex_lock(&di->size_lock);
	if (!err && (size < disk_size(di) ||
		     __atomic_load_n(&di->alloc_end, __ATOMIC_RELAXED) >
		     round_up_to(size, sb->fs_block))) {
		stat_add(inode->i_sb, backend_other, 1);
		if (sys.ftruncate(di->fd, size))
			err = sys_err();
		else
			__atomic_store_n(&di->disk_size, size, __ATOMIC_RELEASE);
	}
	if (!err)
		__atomic_store_n(&di->alloc_end, size, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&di->size_lock);
	/* Chunks from the one @size falls in are reserved no more (or not known to be). */
	if (sb->resv_size)
		resv_forget_from(di, (uint64_t)size / (uint64_t)sb->resv_size);
	return err;
}

/*
 * A failed write allocated blocks in [size, end) past i_size: give them
 * back (the kernel's ext2_write_failed truncates).  If that fails, blocks
 * stay past EOF, or the backing file is longer than the file until the
 * next truncate or sync: never wrong bytes below i_size, and the error goes
 * to errseq for fsync to report.
 */
static void dir_release_blocks(struct inode *inode, loff_t size, loff_t end)
{
	int err;

	if (end <= size ||
	    __atomic_load_n(&DI(inode)->alloc_end, __ATOMIC_RELAXED) <= size)
		return;
	err = dir_trim_to(inode, size);
	if (err)
		mapping_set_error(&inode->i_data, err);
}

/*
 * Writeback.  write_cache_pages() hands us each dirty page locked, marked
 * writeback; we take its dirty blocks and queue them as iovecs in runs of
 * contiguous file bytes.  A batch is written when full and at the end; only
 * then do its pages end writeback (they stay stable until then).
 */
#define WB_PAGES	64
#define WB_IOVS		256
#define WB_RUNS		64

struct wb_run {
	loff_t pos;
	size_t len;
	unsigned int iov, nr_iov;
};

struct wb_batch {
	struct inode *inode;
	unsigned int nr_pages, nr_iov, nr_runs;
	struct page *pages[WB_PAGES];
	uint32_t masks[WB_PAGES];	/* dirty blocks taken from each page */
	struct iovec iov[WB_IOVS];
	struct wb_run runs[WB_RUNS];
	int err;
};

/* pwritev a run whole (short writes continue). */
static int write_run_sync(struct dir_inode *di, struct pcache *pc,
			  struct iovec *iov, unsigned int nr, loff_t pos,
			  size_t skip)
{
	while (nr) {
		ssize_t n;

		while (nr && skip >= iov->iov_len) {
			skip -= iov->iov_len;
			pos += (loff_t)iov->iov_len;
			iov++;
			nr--;
		}
		if (!nr)
			break;
		iov->iov_base = (char *)iov->iov_base + skip;
		iov->iov_len -= skip;
		skip = 0;
		stat_add(pc, backend_writes, 1);
		n = sys.pwritev(di->fd, iov, (int)nr, pos);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_err();
		}
		if (n == 0)
			return -EIO;
		skip = (size_t)n;
	}
	return 0;
}

/* All runs in one submission; a short write is finished with pwritev. */
static int write_runs_uring(struct dir_sb *sb, struct dir_inode *di,
			    struct pcache *pc, struct wb_batch *wb)
{
	unsigned int r, done = 0;
	int err = 0;

	pthread_mutex_lock(&sb->ring_lock);
	for (r = 0; r < wb->nr_runs; r++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&sb->ring);

		io_uring_prep_writev(sqe, di->fd, &wb->iov[wb->runs[r].iov],
				     wb->runs[r].nr_iov, (uint64_t)wb->runs[r].pos);
		io_uring_sqe_set_data64(sqe, r);
	}
	stat_add(pc, backend_writes, wb->nr_runs);
	if (io_uring_submit_and_wait(&sb->ring, wb->nr_runs) < 0)
		err = -EIO;
	while (done < wb->nr_runs) {
		struct io_uring_cqe *cqe;
		struct wb_run *run;

		if (io_uring_wait_cqe(&sb->ring, &cqe)) {
			err = err ?: -EIO;
			break;
		}
		run = &wb->runs[io_uring_cqe_get_data64(cqe)];
		if (cqe->res < 0)
			err = err ?: cqe->res;
		else if ((size_t)cqe->res < run->len)
			err = err ?: write_run_sync(di, pc, &wb->iov[run->iov],
						    run->nr_iov, run->pos,
						    (size_t)cqe->res);
		io_uring_cqe_seen(&sb->ring, cqe);
		done++;
	}
	pthread_mutex_unlock(&sb->ring_lock);
	return err;
}

static void wb_flush(struct wb_batch *wb)
{
	struct inode *inode = wb->inode;
	struct address_space *mapping = &inode->i_data;
	struct dir_inode *di = DI(inode);
	struct pcache *pc = inode->i_sb;
	struct dir_sb *sb = DSB(pc);
	loff_t end = 0;
	unsigned int r, p;
	int err = 0;

	pthread_mutex_lock(&di->size_lock);
	if (sb->uring && wb->nr_runs > 1) {
		err = write_runs_uring(sb, di, pc, wb);
	} else {
		for (r = 0; r < wb->nr_runs && !err; r++)
			err = write_run_sync(di, pc, &wb->iov[wb->runs[r].iov],
					     wb->runs[r].nr_iov, wb->runs[r].pos, 0);
	}
	for (r = 0; r < wb->nr_runs; r++)
		end = max(end, wb->runs[r].pos + (loff_t)wb->runs[r].len);
	if (!err)
		disk_size_raise(di, end);
	pthread_mutex_unlock(&di->size_lock);
	for (p = 0; p < wb->nr_pages; p++) {
		struct page *page = wb->pages[p];

		if (err) {
			/* Keep the data: dirty again, retried by later writeback. */
			set_page_blocks(page, BLK_DIRTY_SHIFT, wb->masks[p]);
			filemap_dirty_folio(mapping, page);
			stat_add(pc, writeback_errors, 1);
		}
		folio_end_writeback(page);
	}
	if (err) {
		mapping_set_error(mapping, err);
		if (!wb->err)
			wb->err = err;
	}
	wb->nr_pages = wb->nr_iov = wb->nr_runs = 0;
}

static void wb_add(struct wb_batch *wb, char *addr, loff_t pos, size_t len)
{
	struct wb_run *run = wb->nr_runs ? &wb->runs[wb->nr_runs - 1] : NULL;

	if (run && run->pos + (loff_t)run->len == pos) {
		struct iovec *last = &wb->iov[wb->nr_iov - 1];

		run->len += len;
		if ((char *)last->iov_base + last->iov_len == addr) {
			last->iov_len += len;
			return;
		}
		if (wb->nr_iov < WB_IOVS && run->nr_iov < IOV_MAX) {
			wb->iov[wb->nr_iov++] = (struct iovec){ addr, len };
			run->nr_iov++;
			return;
		}
		run->len -= len;
	}
	/* A new run (the caller made room). */
	run = &wb->runs[wb->nr_runs++];
	*run = (struct wb_run){ .pos = pos, .len = len, .iov = wb->nr_iov,
				.nr_iov = 1 };
	wb->iov[wb->nr_iov++] = (struct iovec){ addr, len };
}

static int dir_writepage(struct page *page, struct writeback_control *wbc,
			 void *data)
{
	struct wb_batch *wb = data;
	struct inode *inode = wb->inode;
	unsigned int bits = inode->i_blkbits, nb = PAGE_SIZE >> bits, b = 0;
	loff_t base = (loff_t)(page->index << PAGE_SHIFT);
	/* Read under the page lock: it covers every byte committed to the page. */
	loff_t isize = i_size_read(inode);
	uint32_t mask = take_dirty_blocks(page), queued = 0;

	if (!mask)		/* dirtied as a whole page before it had blocks */
		mask = page_blocks(page, BLK_UPTODATE_SHIFT);
	/* Room for this page's runs (at most one per two blocks, plus one). */
	if (wb->nr_pages == WB_PAGES || wb->nr_iov + nb > WB_IOVS ||
	    wb->nr_runs + nb > WB_RUNS)
		wb_flush(wb);
	wb->pages[wb->nr_pages] = page;
	wb->masks[wb->nr_pages++] = mask;
	while (b < nb) {
		loff_t pos = base + ((loff_t)b << bits);
		unsigned int e;
		size_t len;

		if (!(mask & (1u << b))) {
			b++;
			continue;
		}
		for (e = b; e < nb && (mask & (1u << e)); e++)
			;
		/* Never past i_size: the backing file must not grow beyond it. */
		if (pos >= isize)
			break;
		len = (size_t)min((uint64_t)(e - b) << bits,
				  (uint64_t)(isize - pos));
		wb_add(wb, page_address(page) + ((size_t)b << bits), pos, len);
		queued |= ((2u << (e - 1)) - 1) & ~((1u << b) - 1);
		b = e;
	}
	/* Blocks past i_size (being truncated away) stay as they were. */
	if (mask & ~queued) {
		set_page_blocks(page, BLK_DIRTY_SHIFT, mask & ~queued);
		filemap_dirty_folio(page->mapping, page);
	}
	wb->masks[wb->nr_pages - 1] = queued;
	return 0;
}

/*
 * The backing file takes the cache's times: the data's mtime is when it
 * was written to the cache (or what pcache_futimens set), not when it was
 * written back.
 */
static void dir_set_times(struct inode *inode)
{
	struct timespec t[2];

	pthread_mutex_lock(&inode->i_lock);
	t[0] = inode->i_atime;
	t[1] = inode->i_mtime;
	pthread_mutex_unlock(&inode->i_lock);
	stat_add(inode->i_sb, backend_other, 1);
	futimens(DI(inode)->fd, t);	/* best effort: times, not data */
}

static int dir_writepages(struct address_space *mapping,
			  struct writeback_control *wbc)
{
	struct wb_batch *wb = kmalloc(sizeof(*wb));
	int err;

	if (!wb)
		return -ENOMEM;
	wb->inode = mapping->host;
	wb->nr_pages = wb->nr_iov = wb->nr_runs = 0;
	wb->err = 0;
	err = write_cache_pages(mapping, wbc, dir_writepage, wb);
	if (wb->nr_pages)
		wb_flush(wb);
	if (!err)
		err = wb->err;
	kfree(wb);
	if (wbc->nr_written)
		dir_set_times(mapping->host);
	return err;
}

static const struct address_space_operations dir_aops = {
	.read_folio	= dir_read_folio,
	.readahead	= dir_readahead,
	.write_begin	= dir_write_begin,
	.write_end	= dir_write_end,
	.perform_write	= dir_perform_write,
	.writepages	= dir_writepages,
	.dirty_folio	= block_dirty_folio,
	.invalidate_folio = block_invalidate_folio,
	.release_blocks	= dir_release_blocks,
};

/* Namespace. */

/* openat2 beneath the backing directory: no name escapes it. */
static int dir_openat(struct pcache *pc, const char *name, int flags,
		      mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	stat_add(pc, backend_other, 1);
	fd = syscall(SYS_openat2, DSB(pc)->dirfd, name, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

static int dir_fill_inode(struct pcache *pc, int fd, struct inode *inode)
{
	struct dir_inode *di;
	struct stat st;

	if (fstat(fd, &st))
		return sys_err();
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	di = kzalloc(sizeof(*di));
	if (!di)
		return -ENOMEM;
	di->fd = fd;
	di->disk_size = st.st_size;
	pthread_mutex_init(&di->ext_lock, NULL);
	pthread_mutex_init(&di->size_lock, NULL);
	inode->i_private = di;
	inode->i_bdev = st.st_dev;
	inode->i_bino = st.st_ino;
	inode->i_size = st.st_size;
	inode->i_mode = st.st_mode;
	inode->i_atime = st.st_atim;
	inode->i_mtime = st.st_mtim;
	inode->i_ctime = st.st_ctim;
	return 0;
}

static bool name_beneath(const char *name);

static int dir_open_inode(struct pcache *pc, const char *name, int flags,
			  mode_t mode, struct inode *inode)
{
	int fd, err;

	/* ".." could name a cached file a second way, or leave the directory. */
	if (!name_beneath(name))
		return -EACCES;
	fd = dir_openat(pc, name, flags, mode);
	if (fd == -EXDEV)	/* a symlink pointing out of the directory */
		return -EACCES;
	if (fd < 0)
		return fd;
	err = dir_fill_inode(pc, fd, inode);
	if (err) {
		sys.close(fd);
		if (flags & O_CREAT)
			unlinkat(DSB(pc)->dirfd, name, 0);
	}
	return err;
}

/*
 * Read-write if the process may write the file, else read-only (opens for
 * writing then fail in dir_open, with the backing file's error).
 */
static int dir_lookup(struct pcache *pc, const char *name, struct inode *inode)
{
	int err = dir_open_inode(pc, name, O_RDWR, 0, inode);

	if (err != -EACCES && err != -EROFS && err != -ETXTBSY)
		return err;
	err = dir_open_inode(pc, name, O_RDONLY, 0, inode);
	if (!err)
		DI(inode)->rdonly = true;
	return err;
}

/*
 * A file is opened for writing: if its backing fd is read-only, open the
 * backing file again for writing - the kernel checks the permission now,
 * as for any open - and put the new description under the same fd
 * number (dup3), so nothing holding the number sees a change.  No write
 * can be in flight on a read-only fd.
 */
static int dir_open(struct inode *inode, unsigned int fmode)
{
	struct dir_inode *di = DI(inode);
	char proc[64];
	int fd, err = 0;

	if (!(fmode & FMODE_WRITE) || !__atomic_load_n(&di->rdonly, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&di->size_lock);
	if (di->rdonly) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", di->fd);
		stat_add(inode->i_sb, backend_other, 1);
		fd = open(proc, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
		} else {
			if (syscall(SYS_dup3, fd, di->fd, O_CLOEXEC) < 0)
				err = -errno;
			else
				__atomic_store_n(&di->rdonly, false, __ATOMIC_RELEASE);
			sys.close(fd);
		}
	}
	pthread_mutex_unlock(&di->size_lock);
	return err;
}

static int dir_create(struct pcache *pc, const char *name, mode_t mode,
		      struct inode *inode)
{
	return dir_open_inode(pc, name, O_RDWR | O_CREAT | O_EXCL, mode & 07777,
			      inode);
}

/* No ".." component: unlinkat has no RESOLVE_BENEATH. */
static bool name_beneath(const char *name)
{
	const char *p = name;

	while (*p) {
		if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || !p[2]))
			return false;
		p = strchr(p, '/');
		if (!p)
			break;
		p++;
	}
	return true;
}

static int dir_unlink(struct pcache *pc, const char *name)
{
	if (!name_beneath(name))
		return -EACCES;
	stat_add(pc, backend_other, 1);
	return unlinkat(DSB(pc)->dirfd, name, 0) ? -errno : 0;
}

static int dir_rename(struct pcache *pc, const char *old, const char *new)
{
	if (!name_beneath(old) || !name_beneath(new))
		return -EACCES;
	stat_add(pc, backend_other, 1);
	return renameat(DSB(pc)->dirfd, old, DSB(pc)->dirfd, new) ? -errno : 0;
}

static int dir_link(struct pcache *pc, const char *old, const char *new)
{
	if (!name_beneath(old) || !name_beneath(new))
		return -EACCES;
	stat_add(pc, backend_other, 1);
	return linkat(DSB(pc)->dirfd, old, DSB(pc)->dirfd, new, 0) ? -errno : 0;
}

static int dir_getattr(struct pcache *pc, const char *name, struct stat *st)
{
	if (!name_beneath(name))
		return -EACCES;
	stat_add(pc, backend_other, 1);
	return fstatat(DSB(pc)->dirfd, name, st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

static int dir_list(struct pcache *pc, pcache_list_fn fn, void *arg)
{
	int fd = dup(DSB(pc)->dirfd), ret = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		struct inode *inode = icache_find(pc, de->d_name);
		struct stat st;

		if (!inode) {
			if (fstatat(DSB(pc)->dirfd, de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
				continue;
			/* Maybe another name of a cached file (a hard link). */
			inode = icache_find_backing(pc, st.st_dev, st.st_ino);
		}
		/* A cached file's size and times are the cache's. */
		if (inode)
			generic_fillattr(inode, &st);
		ret = fn(arg, de->d_name, &st);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

/*
 * Who the file is, its links, owner and mode are the backing file's: they
 * change behind the cache's back (link, chmod, chown on the directory).
 */
static void dir_fillattr(struct inode *inode, struct stat *st)
{
	struct stat b;

	if (fstat(DI(inode)->fd, &b))
		return;		/* the cache's, then */
	st->st_dev = b.st_dev;
	st->st_ino = b.st_ino;
	st->st_nlink = b.st_nlink;
	st->st_mode = b.st_mode;
	st->st_uid = b.st_uid;
	st->st_gid = b.st_gid;
}

static int dir_setsize(struct inode *inode, loff_t size)
{
	return dir_trim_to(inode, size);
}

/*
 * Called with no lock held.  Reservations are given back (resv_release,
 * then blocks past EOF) only if i_rwsem can be had at once: a write holds
 * it between reserving and growing i_size, and a sync must not wait for a
 * throttled writer.  A sync that meets a write leaves them to the next.
 */
static int dir_sync(struct inode *inode, int datasync)
{
	struct dir_inode *di = DI(inode);
	bool locked = dir_inode_trylock(inode);
	loff_t isize = i_size_read(inode);
	int err = 0;

	/*
	 * An append written back whole may still end in a hole: the size too.
	 * Only ever up (size_lock: the flusher may have written past @isize).
	 */
	pthread_mutex_lock(&di->size_lock);
	if (disk_size(di) < isize) {
		stat_add(inode->i_sb, backend_other, 1);
		if (sys.ftruncate(di->fd, isize))
			err = sys_err();
		else
			disk_size_raise(di, isize);
	}
	pthread_mutex_unlock(&di->size_lock);
	/*
	 * After the size: ext4 ignores a punch past the backing file's end
	 * (it returns 0 and frees nothing), and resv_release punches up to
	 * i_size.
	 */
	if (!err && locked && di->resv.count)
		resv_release(inode);
	pthread_mutex_lock(&di->size_lock);
	/*
	 * Blocks reserved past EOF: a truncate to the backing file's own size
	 * frees them (see dir_trim_to).  Under i_rwsem the file is i_size long
	 * and no write is between reserving and committing.
	 */
	if (!err && locked &&
	    __atomic_load_n(&di->alloc_end, __ATOMIC_RELAXED) >
	    round_up_to(disk_size(di), DSB(inode->i_sb)->fs_block)) {
		stat_add(inode->i_sb, backend_other, 1);
		if (sys.ftruncate(di->fd, disk_size(di)))
			err = sys_err();
		else
			__atomic_store_n(&di->alloc_end, disk_size(di), __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&di->size_lock);
	if (locked)
		inode_unlock(inode);
	if (err)
		return err;
	/* Times set with no data written since (pcache_futimens). */
	dir_set_times(inode);
	stat_add(inode->i_sb, backend_syncs, 1);
	err = datasync ? sys.fdatasync(di->fd) : sys.fsync(di->fd);
	return err ? sys_err() : 0;
}

static void resv_free(void *item, uint64_t index, void *arg)
{
	kfree(item);
}

static void dir_evict(struct inode *inode)
{
	struct dir_inode *di = DI(inode);

	if (!di)
		return;
	sys.close(di->fd);
	radix_destroy(&di->resv, resv_free, NULL);
	pthread_mutex_destroy(&di->ext_lock);
	pthread_mutex_destroy(&di->size_lock);
	kfree(di);
	inode->i_private = NULL;
}

/*
 * PCACHE_DIR_RESERVE: the reservation chunk in bytes (a power of two from
 * the page size to 64 MiB; a K or M suffix), or 0 to allocate exactly the
 * blocks of each write.  Anything else: the default.
 */
#ifndef PCACHE_DEFAULT_DIR_RESERVE
#define PCACHE_DEFAULT_DIR_RESERVE	(1 << 20)
#endif

static loff_t dir_resv_size(void)
{
	const char *env = getenv("PCACHE_DIR_RESERVE");
	unsigned long long v;
	char *end;

	if (!env || !*env)
		return PCACHE_DEFAULT_DIR_RESERVE;
	v = strtoull(env, &end, 0);
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end)
		return PCACHE_DEFAULT_DIR_RESERVE;
	if (v == 0)
		return 0;
	if (v < PAGE_SIZE || v > (64u << 20) || (v & (v - 1)))
		return PCACHE_DEFAULT_DIR_RESERVE;
	return (loff_t)v;
}

static int dir_mount(struct pcache *pc, const char *arg)
{
	const char *io = getenv("PCACHE_DIR_IO");
	struct statfs sfs;
	struct dir_sb *sb;
	unsigned int bs = pc->cfg.block_size ? pc->cfg.block_size : PAGE_SIZE;

	if (!arg || !*arg)
		return -EINVAL;
	if (bs < 512 || bs > PAGE_SIZE || (bs & (bs - 1)))
		return -EINVAL;
	sb = kzalloc(sizeof(*sb));
	if (!sb)
		return -ENOMEM;
	sb->dirfd = open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sb->dirfd < 0) {
		int err = -errno;

		kfree(sb);
		return err;
	}
	sb->resv_size = dir_resv_size();
	sb->fs_block = fstatfs(sb->dirfd, &sfs) || sfs.f_bsize <= 0 ? 512 : (loff_t)sfs.f_bsize;
	pthread_mutex_init(&sb->ring_lock, NULL);
	if (io && !strcmp(io, "uring"))
		sb->uring = !io_uring_queue_init(WB_RUNS, &sb->ring, 0);
	pc->s_blkbits = (unsigned int)__builtin_ctz(bs);
	pc->s_fs_info = sb;
	return 0;
}

static void dir_unmount(struct pcache *pc)
{
	struct dir_sb *sb = DSB(pc);

	if (sb->uring)
		io_uring_queue_exit(&sb->ring);
	pthread_mutex_destroy(&sb->ring_lock);
	close(sb->dirfd);
	kfree(sb);
}

/*
 * Mode and owner are the backing file's: the kernel checks permission and
 * drops set-id bits, and the inode then takes what the file has.  i_rwsem
 * held (notify_change).
 */
static int dir_setattr(struct inode *inode, const struct iattr *attr)
{
	struct dir_inode *di = DI(inode);
	unsigned int chown_bits = ATTR_UID | ATTR_GID | ATTR_KILL_SUID;
	struct iattr now = { .ia_valid = ATTR_MODE | ATTR_UID | ATTR_GID };
	struct stat st;

	stat_add(inode->i_sb, backend_other, 1);
	if ((attr->ia_valid & ATTR_MODE) && fchmod(di->fd, attr->ia_mode & 07777))
		return -errno;
	if ((attr->ia_valid & chown_bits) &&
	    fchown(di->fd, attr->ia_valid & ATTR_UID ? attr->ia_uid : (uid_t)-1,
		   attr->ia_valid & ATTR_GID ? attr->ia_gid : (gid_t)-1))
		return -errno;
	if (fstat(di->fd, &st))
		return -errno;
	now.ia_mode = st.st_mode & 07777;
	now.ia_uid = st.st_uid;
	now.ia_gid = st.st_gid;
	setattr_copy(inode, &now);
	return 0;
}

const struct super_operations dir_super_ops = {
	.name		= "dir",
	.a_ops		= &dir_aops,
	.as_flags	= AS_BLOCKS,
	.mount		= dir_mount,
	.unmount	= dir_unmount,
	.lookup		= dir_lookup,
	.open		= dir_open,
	.create		= dir_create,
	.unlink		= dir_unlink,
	.rename		= dir_rename,
	.link		= dir_link,
	.getattr	= dir_getattr,
	.fillattr	= dir_fillattr,
	.list		= dir_list,
	.setsize	= dir_setsize,
	.sync		= dir_sync,
	.setattr	= dir_setattr,
	.evict		= dir_evict,
};
