/*
 * preload_fdtable.c - which real descriptors are pcache files, and the
 * views the program mapped.
 *
 * The table is indexed by descriptor number: 1024 chunks of 1024 slots,
 * a chunk allocated when a number in it is first installed and never
 * freed, so a reader may load a chunk pointer without a lock.
 *
 * Invariants:
 *  1. A slot's file pointer changes only under fdtable_lock, and a slot
 *     holds one reference on its file.
 *  2. preload_fd_get() takes its reference under fdtable_lock, so a file
 *     cannot be freed between the load and the increment.
 *  3. The lock-free preload_fd_maybe() may be stale: it is only the fast
 *     path that sends a number to libc when no pcache file is there.  A
 *     number being installed is not yet known to the program (open has not
 *     returned it), and a number being removed is being closed, so the
 *     race is the program's own close-vs-use race, as with the kernel.
 *  4. Views: each entry holds one reference on its file; views_lock is
 *     taken after fdtable_lock when both are needed, never before.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "preload.h"

#define CHUNK_SHIFT	10
#define CHUNK_SLOTS	(1u << CHUNK_SHIFT)
#define NR_CHUNKS	(PRELOAD_FD_MAX >> CHUNK_SHIFT)

struct slot {
	struct preload_file *file;
	bool cloexec;
};

static struct slot *chunks[NR_CHUNKS];
static pthread_mutex_t fdtable_lock = PTHREAD_MUTEX_INITIALIZER;

struct preload_file *preload_file_new(int pfd, int flags)
{
	struct preload_file *file = calloc(1, sizeof(*file));

	if (!file)
		return NULL;
	file->pfd = pfd;
	file->refs = 1;
	file->flags = flags;
	file->epoch = __atomic_load_n(&preload_epoch, __ATOMIC_RELAXED);
	return file;
}

void preload_file_get(struct preload_file *file)
{
	__atomic_add_fetch(&file->refs, 1, __ATOMIC_RELAXED);
}

void preload_file_put(struct preload_file *file)
{
	if (__atomic_sub_fetch(&file->refs, 1, __ATOMIC_ACQ_REL))
		return;
	/* A parent's file: its cache is abandoned, never call into it. */
	if (file->epoch == __atomic_load_n(&preload_epoch, __ATOMIC_RELAXED))
		pcache_close(file->pfd);
	free(file->name);
	free(file);
}

int preload_file_pfd(const struct preload_file *file)
{
	if (file->epoch != __atomic_load_n(&preload_epoch, __ATOMIC_RELAXED))
		return -EIO;
	return file->pfd;
}

static struct slot *slot_of(int fd)
{
	struct slot *chunk;

	if (fd < 0 || fd >= PRELOAD_FD_MAX)
		return NULL;
	chunk = __atomic_load_n(&chunks[fd >> CHUNK_SHIFT], __ATOMIC_ACQUIRE);
	return chunk ? &chunk[fd & (CHUNK_SLOTS - 1)] : NULL;
}

bool preload_fd_maybe(int fd)
{
	struct slot *slot = slot_of(fd);

	return slot && __atomic_load_n(&slot->file, __ATOMIC_ACQUIRE);
}

struct preload_file *preload_fd_get(int fd)
{
	struct preload_file *file;
	struct slot *slot = slot_of(fd);

	if (!slot || !__atomic_load_n(&slot->file, __ATOMIC_ACQUIRE))
		return NULL;
	pthread_mutex_lock(&fdtable_lock);
	file = slot->file;
	if (file)
		preload_file_get(file);
	pthread_mutex_unlock(&fdtable_lock);
	return file;
}

void preload_fd_lock(void)
{
	pthread_mutex_lock(&fdtable_lock);
}

void preload_fd_unlock(void)
{
	pthread_mutex_unlock(&fdtable_lock);
}

int __preload_fd_install(int fd, struct preload_file *file, bool cloexec,
			 struct preload_file **old)
{
	struct slot *chunk, *slot;

	*old = NULL;
	if (fd < 0 || fd >= PRELOAD_FD_MAX)
		return -EMFILE;
	chunk = chunks[fd >> CHUNK_SHIFT];
	if (!chunk) {
		chunk = calloc(CHUNK_SLOTS, sizeof(*chunk));
		if (!chunk)
			return -ENOMEM;
		__atomic_store_n(&chunks[fd >> CHUNK_SHIFT], chunk,
				 __ATOMIC_RELEASE);
	}
	slot = &chunk[fd & (CHUNK_SLOTS - 1)];
	preload_file_get(file);
	*old = slot->file;
	slot->cloexec = cloexec;
	__atomic_store_n(&slot->file, file, __ATOMIC_RELEASE);
	return 0;
}

int preload_fd_install(int fd, struct preload_file *file, bool cloexec)
{
	struct preload_file *old;
	int err;

	pthread_mutex_lock(&fdtable_lock);
	err = __preload_fd_install(fd, file, cloexec, &old);
	pthread_mutex_unlock(&fdtable_lock);
	if (old)
		preload_file_put(old);
	return err;
}

struct preload_file *__preload_fd_remove(int fd)
{
	struct slot *slot = slot_of(fd);
	struct preload_file *file;

	if (!slot)
		return NULL;
	file = slot->file;
	__atomic_store_n(&slot->file, NULL, __ATOMIC_RELEASE);
	slot->cloexec = false;
	return file;
}

struct preload_file *preload_fd_remove(int fd)
{
	struct preload_file *file;

	if (!preload_fd_maybe(fd))
		return NULL;
	pthread_mutex_lock(&fdtable_lock);
	file = __preload_fd_remove(fd);
	pthread_mutex_unlock(&fdtable_lock);
	return file;
}

int preload_fd_getfd(int fd)
{
	struct slot *slot = slot_of(fd);
	int ret = -EBADF;

	pthread_mutex_lock(&fdtable_lock);
	if (slot && slot->file)
		ret = slot->cloexec ? FD_CLOEXEC : 0;
	pthread_mutex_unlock(&fdtable_lock);
	return ret;
}

int preload_fd_setfd(int fd, int fdflags)
{
	struct slot *slot = slot_of(fd);
	int ret = -EBADF;

	pthread_mutex_lock(&fdtable_lock);
	if (slot && slot->file) {
		slot->cloexec = fdflags & FD_CLOEXEC;
		ret = 0;
	}
	pthread_mutex_unlock(&fdtable_lock);
	return ret;
}

/* Call @fn on each slot in [lo, hi] that holds a file, under the lock. */
static void for_range(unsigned int lo, unsigned int hi,
		      void (*fn)(int fd, struct slot *slot, void *arg), void *arg)
{
	unsigned int fd;

	if (hi >= PRELOAD_FD_MAX)
		hi = PRELOAD_FD_MAX - 1;
	for (fd = lo; fd <= hi; fd++) {
		struct slot *chunk = chunks[fd >> CHUNK_SHIFT];

		if (!chunk) {
			fd |= CHUNK_SLOTS - 1;	/* skip the chunk */
			continue;
		}
		if (chunk[fd & (CHUNK_SLOTS - 1)].file)
			fn((int)fd, &chunk[fd & (CHUNK_SLOTS - 1)], arg);
	}
}

struct put_list {
	struct preload_file **files;
	size_t nr, cap;
};

static void remove_one(int fd, struct slot *slot, void *arg)
{
	struct put_list *list = arg;
	struct preload_file *file = __preload_fd_remove(fd);

	if (list->nr == list->cap) {
		size_t cap = list->cap ? 2 * list->cap : 16;
		struct preload_file **f = realloc(list->files, cap * sizeof(*f));

		if (!f)
			return;	/* the reference leaks; the number is free */
		list->files = f;
		list->cap = cap;
	}
	list->files[list->nr++] = file;
}

void preload_fd_remove_range(unsigned int lo, unsigned int hi)
{
	struct put_list list = { 0 };
	size_t i;

	pthread_mutex_lock(&fdtable_lock);
	for_range(lo, hi, remove_one, &list);
	pthread_mutex_unlock(&fdtable_lock);
	for (i = 0; i < list.nr; i++)
		preload_file_put(list.files[i]);
	free(list.files);
}

static void cloexec_one(int fd, struct slot *slot, void *arg)
{
	slot->cloexec = true;
}

void preload_fd_cloexec_range(unsigned int lo, unsigned int hi)
{
	pthread_mutex_lock(&fdtable_lock);
	for_range(lo, hi, cloexec_one, NULL);
	pthread_mutex_unlock(&fdtable_lock);
}

static void each_one(int fd, struct slot *slot, void *arg)
{
	void (*fn)(int, struct preload_file *) = arg;

	fn(fd, slot->file);
}

/* Runs @fn under the table lock: @fn must not call back into the table. */
void preload_fd_for_each(void (*fn)(int fd, struct preload_file *file))
{
	pthread_mutex_lock(&fdtable_lock);
	for_range(0, PRELOAD_FD_MAX - 1, each_one, (void *)fn);
	pthread_mutex_unlock(&fdtable_lock);
}

/* Views. */

struct view {
	char *addr;
	size_t len;
	struct preload_file *file;
};

static pthread_mutex_t views_lock = PTHREAD_MUTEX_INITIALIZER;
static struct view *views;
static size_t nr_views, cap_views;

bool preload_views_any(void)
{
	return __atomic_load_n(&nr_views, __ATOMIC_ACQUIRE) != 0;
}

int preload_view_add(void *addr, size_t len, struct preload_file *file)
{
	int err = 0;

	pthread_mutex_lock(&views_lock);
	if (nr_views == cap_views) {
		size_t cap = cap_views ? 2 * cap_views : 16;
		struct view *v = realloc(views, cap * sizeof(*v));

		if (!v) {
			err = -ENOMEM;
			goto out_unlock;
		}
		views = v;
		cap_views = cap;
	}
	preload_file_get(file);
	views[nr_views] = (struct view){ .addr = addr, .len = len, .file = file };
	__atomic_store_n(&nr_views, nr_views + 1, __ATOMIC_RELEASE);
out_unlock:
	pthread_mutex_unlock(&views_lock);
	return err;
}

static bool overlaps(const struct view *v, const char *addr, size_t len)
{
	return addr < v->addr + v->len && v->addr < addr + len;
}

int preload_view_take(void *addr, size_t len, size_t *vlen,
		      struct preload_file **file)
{
	int ret = 0;
	size_t i;

	if (!preload_views_any())
		return 0;
	pthread_mutex_lock(&views_lock);
	for (i = 0; i < nr_views; i++) {
		struct view *v = &views[i];

		if (!overlaps(v, addr, len))
			continue;
		if (v->addr != (char *)addr ||
		    (len + 4095) / 4096 != v->len / 4096) {
			ret = -EINVAL;
			break;
		}
		*vlen = v->len;
		*file = v->file;
		*v = views[nr_views - 1];
		__atomic_store_n(&nr_views, nr_views - 1, __ATOMIC_RELEASE);
		ret = 1;
		break;
	}
	pthread_mutex_unlock(&views_lock);
	return ret;
}

bool preload_view_covers(const void *addr, size_t len)
{
	const char *a = addr;
	bool ret = false;
	size_t i;

	if (!preload_views_any())
		return false;
	pthread_mutex_lock(&views_lock);
	for (i = 0; i < nr_views; i++)
		if (overlaps(&views[i], a, len ? len : 1)) {
			ret = true;
			break;
		}
	pthread_mutex_unlock(&views_lock);
	return ret;
}

void preload_fdtable_atfork_prepare(void)
{
	pthread_mutex_lock(&fdtable_lock);
	pthread_mutex_lock(&views_lock);
}

void preload_fdtable_atfork_parent(void)
{
	pthread_mutex_unlock(&views_lock);
	pthread_mutex_unlock(&fdtable_lock);
}

void preload_fdtable_atfork_child(void)
{
	size_t i;

	pthread_mutex_init(&views_lock, NULL);
	pthread_mutex_init(&fdtable_lock, NULL);
	/*
	 * The parent's views: without UFFD_FEATURE_EVENT_FORK the child's
	 * copies of them are plain shared mappings of the memfds, no longer
	 * served by pcache.  Forget them; munmap passes to the kernel.
	 */
	for (i = 0; i < nr_views; i++)
		preload_file_put(views[i].file);
	nr_views = 0;
}
