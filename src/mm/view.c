/*
 * view.c - making and unmaking views: pcache_mmap, pcache_munmap,
 * pcache_msync, pcache_madvise, pcache_mlock (the kernel's mm/mmap.c and
 * mm/mlock.c, over a userfaultfd-registered MAP_SHARED memfd mapping).
 *
 * Every view is in three places: its mm's sorted array (found by the fault
 * handler, under the mm lock), its file's i_mmap list (found by writeback
 * and truncate, under i_mmap_lock) and the process-wide table below (found
 * by the public calls, which are given only an address).
 *
 * Unmapping takes the mm lock for write, so no fault is being served on the
 * view when it goes; it leaves i_mmap before the mapping goes, so nobody
 * write-protects or zaps an address that is no longer the view's.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "../base/alloc.h"
#include "../base/sys.h"
#include "../fs/fs.h"
#include "filemap.h"
#include "mm.h"
#include "page.h"

/* All views of the process, sorted by start: the public calls' lookup. */
static struct {
	pthread_mutex_t lock;
	struct view **v;
	size_t nr, cap;
} all_views = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Insert @view into a sorted array; -ENOMEM. */
static int views_insert(struct view ***arr, size_t *nr, size_t *cap,
			struct view *view)
{
	size_t i;

	if (*nr == *cap) {
		size_t ncap = *cap ? 2 * *cap : 16;
		struct view **n = krealloc(*arr, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		*arr = n;
		*cap = ncap;
	}
	for (i = *nr; i > 0 && (*arr)[i - 1]->start > view->start; i--)
		(*arr)[i] = (*arr)[i - 1];
	(*arr)[i] = view;
	(*nr)++;
	return 0;
}

static void views_remove(struct view **arr, size_t *nr, struct view *view)
{
	size_t i;

	for (i = 0; i < *nr && arr[i] != view; i++)
		;
	assert(i < *nr);
	memmove(&arr[i], &arr[i + 1], (*nr - i - 1) * sizeof(*arr));
	(*nr)--;
}

/*
 * The mm of the view that holds @addr, from the process table.  A view may
 * go as soon as the table lock is dropped, so callers take the mm lock and
 * find the view again with view_locked(); an mm outlives its views.
 */
static struct mm *lookup_mm(const void *addr)
{
	struct mm *mm = NULL;
	size_t i;

	pthread_mutex_lock(&all_views.lock);
	for (i = 0; i < all_views.nr; i++) {
		struct view *v = all_views.v[i];

		if ((const char *)addr >= v->start &&
		    (const char *)addr < v->start + v->len) {
			mm = v->mm;
			break;
		}
	}
	pthread_mutex_unlock(&all_views.lock);
	return mm;
}

/* The view of @mm holding [addr, addr+len) whole; mm lock held. */
static struct view *view_locked(struct mm *mm, const void *addr, size_t len)
{
	struct view *v = find_view(mm, addr);

	if (!v || len > (size_t)(v->start + v->len - (const char *)addr))
		return NULL;
	return v;
}

static void *err_ptr(int err)
{
	return (void *)(intptr_t)err;
}

void *pcache_mmap(int fd, size_t length, int prot, off_t offset)
{
	struct uffdio_register reg;
	struct address_space *mapping;
	struct view *view;
	struct file *file;
	struct mm *mm;
	size_t len;
	void *addr;
	int err;

	file = fdget(fd);
	if (!file)
		return err_ptr(-EBADF);
	err = -ENODEV;
	if (file->f_mode & FMODE_DIR)
		goto out_put;
	err = -EACCES;
	if (!(file->f_mode & FMODE_READ) ||
	    ((prot & PROT_WRITE) && !(file->f_mode & FMODE_WRITE)))
		goto out_put;
	err = -EINVAL;
	if (!length || offset < 0 || ((uint64_t)offset & ~PAGE_MASK) ||
	    (prot != PROT_READ && prot != (PROT_READ | PROT_WRITE)) ||
	    length > SIZE_MAX - PAGE_SIZE)
		goto out_put;
	len = PAGE_ALIGN(length);
	err = -EOVERFLOW;
	if ((uint64_t)offset + len > (uint64_t)file->f_sb->s_maxbytes)
		goto out_put;

	mm = mm_get(file->f_sb, &err);
	if (!mm)
		goto out_put;
	mapping = file_mapping(file);
	err = mapping_cover(mapping, min((uint64_t)i_size_read(mapping->host),
					 (uint64_t)offset + len));
	if (err)
		goto out_put;
	err = -ENOMEM;
	view = kzalloc(sizeof(*view));
	if (!view)
		goto out_put;
	addr = sys.mmap(NULL, len, prot, MAP_SHARED,
			mapping->memfd, offset);
	if (addr == MAP_FAILED) {
		err = sys_err();
		goto out_free;
	}
	view->start = addr;
	view->len = len;
	view->pgoff = (uint64_t)offset >> PAGE_SHIFT;
	view->prot = prot;
	view->wp = prot & PROT_WRITE;
	view->mm = mm;
	view->file = file;		/* keeps fdget's reference */

	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)addr;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR;
	if (view->wp)
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
	if (ioctl(mm->uffd, UFFDIO_REGISTER, &reg) < 0) {
		err = errno == EINVAL ? -EOPNOTSUPP : -errno;
		goto out_unmap;
	}

	mmap_write_lock(mm);
	err = views_insert(&mm->views, &mm->nr_views, &mm->cap_views, view);
	if (!err) {
		pthread_mutex_lock(&all_views.lock);
		err = views_insert(&all_views.v, &all_views.nr, &all_views.cap, view);
		pthread_mutex_unlock(&all_views.lock);
		if (err)
			views_remove(mm->views, &mm->nr_views, view);
	}
	if (!err) {
		pthread_rwlock_wrlock(&mapping->i_mmap_lock);
		list_add_tail(&view->i_mmap, &mapping->i_mmap);
		__atomic_add_fetch(&mapping->nr_views, 1, __ATOMIC_RELEASE);
		pthread_rwlock_unlock(&mapping->i_mmap_lock);
		__atomic_add_fetch(&file->f_nr_views, 1, __ATOMIC_RELAXED);
	}
	mmap_unlock(mm);
	if (err)
		goto out_unregister;
	return addr;

out_unregister:
	ioctl(mm->uffd, UFFDIO_UNREGISTER, &reg.range);
out_unmap:
	sys.munmap(addr, len);
out_free:
	kfree(view);
out_put:
	fdput(file);
	return err_ptr(err);
}

int pcache_munmap(void *addr, size_t length)
{
	struct uffdio_range range;
	struct address_space *mapping;
	struct file *file;
	struct view *view;
	struct mm *mm;

	if (!addr || offset_in_page(addr) || !length)
		return -EINVAL;
	mm = lookup_mm(addr);
	if (!mm)
		return -EINVAL;
	mmap_write_lock(mm);
	view = find_view(mm, addr);
	if (!view || view->start != (char *)addr ||
	    view->len != PAGE_ALIGN(length)) {
		mmap_unlock(mm);
		return -EINVAL;
	}
	file = view->file;
	mapping = file_mapping(file);
	pthread_mutex_lock(&all_views.lock);
	views_remove(all_views.v, &all_views.nr, view);
	pthread_mutex_unlock(&all_views.lock);
	views_remove(mm->views, &mm->nr_views, view);
	pthread_rwlock_wrlock(&mapping->i_mmap_lock);
	list_del_init(&view->i_mmap);
	__atomic_sub_fetch(&mapping->nr_views, 1, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&mapping->i_mmap_lock);
	/* Unregistering wakes threads still blocked in a fault here. */
	range.start = (uintptr_t)view->start;
	range.len = view->len;
	ioctl(mm->uffd, UFFDIO_UNREGISTER, &range);
	sys.munmap(view->start, view->len);
	mmap_unlock(mm);

	__atomic_sub_fetch(&file->f_nr_views, 1, __ATOMIC_RELAXED);
	fdput(file);
	kfree(view);
	return 0;
}

/* The file byte range [*start, *end] that [addr, addr+len) of @view shows. */
static void view_file_range(const struct view *view, const void *addr,
			    size_t len, loff_t *start, loff_t *end)
{
	size_t off = (size_t)((const char *)addr - view->start);

	*start = (loff_t)((view->pgoff << PAGE_SHIFT) + off);
	*end = *start + (loff_t)len - 1;
}

int pcache_msync(void *addr, size_t length, int flags)
{
	struct view *view;
	loff_t start, end;
	struct mm *mm;
	int err = 0;

	if (offset_in_page(addr) ||
	    (flags & ~(MS_SYNC | MS_ASYNC | MS_INVALIDATE)) ||
	    ((flags & MS_SYNC) && (flags & MS_ASYNC)))
		return -EINVAL;
	if (!length)
		return 0;
	mm = lookup_mm(addr);
	if (!mm)
		return -ENOMEM;
	mmap_read_lock(mm);
	view = view_locked(mm, addr, PAGE_ALIGN(length));
	if (!view) {
		err = -ENOMEM;
	} else {
		view_file_range(view, addr, PAGE_ALIGN(length), &start, &end);
		if (flags & MS_SYNC)
			err = vfs_fsync_range(view->file, start, end, 0);
		else if (flags & MS_ASYNC)
			err = filemap_write_and_wait_range(file_mapping(view->file),
							   start, end);
	}
	mmap_unlock(mm);
	return err;
}

int pcache_madvise(void *addr, size_t length, int advice)
{
	struct view *view;
	struct mm *mm;
	int err = 0;

	if (offset_in_page(addr))
		return -EINVAL;
	switch (advice) {
	case MADV_NORMAL:
	case MADV_RANDOM:
	case MADV_SEQUENTIAL:
	case MADV_WILLNEED:
	case MADV_DONTNEED:
		break;
	default:
		return -EINVAL;
	}
	if (!length)
		return 0;
	mm = lookup_mm(addr);
	if (!mm)
		return -ENOMEM;
	mmap_read_lock(mm);
	view = view_locked(mm, addr, PAGE_ALIGN(length));
	if (!view)
		err = -ENOMEM;
	else if (advice == MADV_DONTNEED &&
		 madvise(addr, PAGE_ALIGN(length), MADV_DONTNEED) < 0)
		err = -errno;
	mmap_unlock(mm);
	return err;
}

int pcache_mlock(void *addr, size_t length)
{
	char *start = (char *)((uintptr_t)addr & PAGE_MASK);
	char *end;
	struct view *view;
	struct mm *mm;
	int err;

	if (!length)
		return 0;
	if ((char *)addr + length < (char *)addr)
		return -EINVAL;
	end = (char *)PAGE_ALIGN((uintptr_t)addr + length);
	mm = lookup_mm(start);
	if (!mm)
		return -ENOMEM;
	/* The lock shape of 2.6.20's mlock: mm lock for write, then faults. */
	mmap_write_lock(mm);
	view = view_locked(mm, start, (size_t)(end - start));
	if (!view)
		err = -ENOMEM;
	else
		err = populate_view_range(view, start, end);
	mmap_unlock(mm);
	return err;
}
