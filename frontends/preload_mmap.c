/*
 * preload_mmap.c - mmap of a pcache file is a pcache view.
 *
 * mmap(MAP_SHARED) of one of our descriptors is pcache_mmap(): the view
 * shows the cache's own pages, so write() and stores through the map are
 * coherent, stores dirty the pages, and touching a page wholly past end of
 * file raises SIGBUS (docs/api.md, pcache_mmap).  The view holds a
 * reference on the file, so the program may close the descriptor and keep
 * using the map, as with the kernel; munmap() of the whole view releases it.
 *
 * Differences from the kernel, each refused rather than faked:
 *  - prot is PROT_READ or PROT_READ|PROT_WRITE (PROT_WRITE alone is taken
 *    as both, as x86 does); PROT_EXEC or PROT_NONE: EINVAL.
 *  - MAP_FIXED, MAP_FIXED_NOREPLACE: EINVAL (pcache places its views).
 *  - munmap() of part of a view, or of a range that covers part of one:
 *    EINVAL.  mremap() of a view: EINVAL (programs fall back to munmap and
 *    mmap; sqlite does).  mprotect() and mlock() are not intercepted: do
 *    not call them on views.
 *  - MAP_PRIVATE read-only is a read-only view: it shows later writes to
 *    the file (POSIX leaves that unspecified; Linux shows them until a page
 *    is copied on write).  MAP_PRIVATE writable is a private copy made at
 *    mmap time, in anonymous memory: it does not see later writes, and
 *    pages past end of file read as zeroes instead of raising SIGBUS.
 *  - MAP_POPULATE and the other hint flags are ignored.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/mman.h>

#include "preload.h"

static void *map_err(long err)
{
	errno = (int)-err;
	return MAP_FAILED;
}

/* A private writable mapping: a copy of the file's bytes, now. */
static void *map_private_copy(int pfd, size_t len, int prot, off_t off)
{
	char *addr = REAL(mmap)(NULL, len, prot | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t done = 0;

	if (addr == MAP_FAILED)
		return MAP_FAILED;
	while (done < len) {
		ssize_t n = pcache_pread(pfd, addr + done, len - done,
					 off + (off_t)done);

		if (n < 0) {
			REAL(munmap)(addr, len);
			return map_err(n);
		}
		if (n == 0)
			break;		/* end of file: the rest stays zero */
		done += (size_t)n;
	}
	if (!(prot & PROT_WRITE))
		REAL(mprotect)(addr, len, prot);
	return addr;
}

static void *map_file(struct preload_file *file, size_t len, int prot,
		      int flags, off_t off)
{
	int type = flags & MAP_TYPE;
	int pfd = preload_file_pfd(file);
	void *addr;
	int err;

	if (file->path_only)
		return map_err(-EBADF);
	if (pfd < 0)
		return map_err(pfd);
	if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) ||
	    (prot & PROT_EXEC) || !(prot & (PROT_READ | PROT_WRITE)))
		return map_err(-EINVAL);
	if (type != MAP_SHARED && type != MAP_SHARED_VALIDATE &&
	    type != MAP_PRIVATE)
		return map_err(-EINVAL);
	if (type == MAP_PRIVATE && (prot & PROT_WRITE)) {
		if ((file->flags & O_ACCMODE) == O_WRONLY)
			return map_err(-EACCES);
		if (!len || (off & 4095))
			return map_err(-EINVAL);
		return map_private_copy(pfd, len, prot, off);
	}
	addr = pcache_mmap(pfd, len, prot & PROT_WRITE ?
			   PROT_READ | PROT_WRITE : PROT_READ, off);
	if (PCACHE_IS_ERR(addr))
		return map_err(PCACHE_PTR_ERR(addr));
	err = preload_view_add(addr, len, file);
	if (err < 0) {
		pcache_munmap(addr, len);
		return map_err(err);
	}
	preload_debug("mmap %zu bytes at %lld -> view %p", len, (long long)off,
		      addr);
	return addr;
}

PRELOAD_API void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		       off_t off)
{
	struct preload_file *file;
	void *ret;

	if ((flags & MAP_ANONYMOUS) || !(file = preload_fd_get(fd)))
		return REAL(mmap)(addr, len, prot, flags, fd, off);
	ret = map_file(file, len, prot, flags, off);
	preload_file_put(file);
	return ret;
}

PRELOAD_API void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
			 off64_t off)
{
	struct preload_file *file;
	void *ret;

	if ((flags & MAP_ANONYMOUS) || !(file = preload_fd_get(fd)))
		return REAL(mmap64)(addr, len, prot, flags, fd, off);
	ret = map_file(file, len, prot, flags, off);
	preload_file_put(file);
	return ret;
}

PRELOAD_API int munmap(void *addr, size_t len)
{
	struct preload_file *file;
	size_t vlen;
	int r;

	r = preload_view_take(addr, len, &vlen, &file);
	if (r == 0)
		return REAL(munmap)(addr, len);
	if (r < 0)
		return (int)preload_ret(r);
	r = pcache_munmap(addr, vlen);
	preload_file_put(file);
	return (int)preload_ret(r);
}

PRELOAD_API void *mremap(void *old, size_t old_len, size_t new_len,
			 int flags, ...)
{
	void *new_addr = NULL;
	va_list ap;

	if (preload_view_covers(old, old_len))
		return map_err(-EINVAL);
	va_start(ap, flags);
	if (flags & MREMAP_FIXED)
		new_addr = va_arg(ap, void *);
	va_end(ap);
	return REAL(mremap)(old, old_len, new_len, flags, new_addr);
}

PRELOAD_API int msync(void *addr, size_t len, int flags)
{
	if (!preload_view_covers(addr, len))
		return REAL(msync)(addr, len, flags);
	return (int)preload_ret(pcache_msync(addr, len, flags));
}

PRELOAD_API int madvise(void *addr, size_t len, int advice)
{
	if (!preload_view_covers(addr, len))
		return REAL(madvise)(addr, len, advice);
	return (int)preload_ret(pcache_madvise(addr, len, advice));
}

/* glibc's posix_madvise ignores POSIX_MADV_DONTNEED; so do we. */
PRELOAD_API int posix_madvise(void *addr, size_t len, int advice)
{
	if (!preload_view_covers(addr, len))
		return REAL(posix_madvise)(addr, len, advice);
	if (advice == POSIX_MADV_DONTNEED)
		return 0;
	return -pcache_madvise(addr, len, advice);
}
