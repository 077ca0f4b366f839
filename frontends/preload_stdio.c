/*
 * preload_stdio.c - stdio streams on our files: fopen, fopen64, freopen,
 * freopen64, fdopen.
 *
 * glibc's fopen opens inside libc (__open_nocancel, a system call), and a
 * FILE made by fdopen reads and writes with libc's internal calls, so
 * neither would reach the shim: a stream on a path under the directory
 * would see the kernel's file (stale beside the cache with "dir", absent
 * with "memory"), and one on our descriptor number would get EBADF from
 * the O_PATH descriptor underneath.  So for a path that is ours, and for
 * a descriptor that is ours, the stream is made with fopencookie(): its
 * read, write, seek and close call the shim's own read, write, lseek and
 * close on a normal shim descriptor, opened as open() would open it.
 * Everything else goes to the next definition (dlsym RTLD_NEXT), untouched.
 *
 * MODE.  Read as glibc reads it (libio/fileops.c, libio/iofdopen.c): 'r',
 * 'w' or 'a' (else EINVAL), then for fopen up to six more characters of
 * which '+', 'x' (O_EXCL) and 'e' (O_CLOEXEC) count and the rest ('b',
 * 'm', 'c', anything) are ignored; for fdopen up to four, stopping at '+'.
 * ",ccs=" (a wide stream with a character set) gives EINVAL: a cookie
 * stream is byte-oriented, and the wide functions fail on it.  A NULL
 * mode gives EINVAL (glibc would crash).  "a" starts at the end, "a+" at
 * 0; both write at the end whatever the position (O_APPEND on the
 * descriptor).  fdopen() checks the descriptor's access mode (EINVAL) and
 * sets O_APPEND for "a", as glibc does; it does not dup, so fclose()
 * closes the descriptor.  A file fopen creates gets mode 0666 (the umask
 * is not applied, as for open; docs/preload.md).
 *
 * FILENO.  fopencookie() leaves _fileno at -2, so fileno() gives -1
 * (EBADF), and programs that fstat, fsync, flock or read(fileno(fp))
 * (libstdc++'s filebuf does its I/O that way) would fail.  So after
 * fopencookie() the stream's _fileno is set to the shim descriptor, and
 * fileno() returns it.  glibc's cookie stream does no I/O through _fileno
 * (its vtable, _IO_cookie_jumps, reads, writes, seeks and closes through
 * the cookie; _IO_file_doallocate stats with the cookie vtable's stat,
 * which fails, so the buffer is BUFSIZ); the field only has to be other
 * than -1 (closed) for fclose() to call the cookie's close.
 *
 * FREOPEN.  glibc's freopen() cannot take a cookie stream (it would turn
 * it into a file stream, writing through _wide_data, which is (void *)-1
 * on a cookie stream, and dup3 behind the shim's back), so freopen() of a
 * stream this file made is done here, in place, under the stream's lock:
 * flush (errors ignored, as glibc), drop buffered input and ungetc data,
 * open the new file (ours by name, another path through libc, NULL the
 * same file again: ours by the pcache name it was opened by, another
 * through /proc/self/fd as glibc does), dup it onto the old number so
 * fileno() stays the same (as glibc's freopen keeps it), and reset the
 * FILE's mode bits and buffer pointers.  Those bits (_IO_NO_READS and co.)
 * are glibc's libio.h values, unchanged since glibc 2.0.  On failure the
 * stream is closed and NULL returned, as glibc does.  freopen() onto a
 * path of ours of a stream this file did not make (stdout, a stream from
 * libc's fopen of another path) is passed to libc: its FILE has no room
 * for a cookie, so it reaches the kernel's file (docs/preload.md).
 *
 * EXIT.  The streams are in libc's list of all streams, so preload_fini's
 * fflush(NULL) writes them into the cache before the cache is synced: a
 * stream the program never closed is written back with "dir".
 *
 * The streams this file made are kept in a list (streams_lock, a leaf
 * lock, held across fork() like the descriptor table), for freopen() to
 * know them: a cookie cannot be read back from a FILE.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

/* glibc's libio.h flag bits (_flags), not in the installed headers. */
#define LIBIO_NO_READS		0x0004
#define LIBIO_NO_WRITES		0x0008
#define LIBIO_CURRENTLY_PUTTING	0x0800
#define LIBIO_IS_APPENDING	0x1000
#define LIBIO_MODE_BITS		(LIBIO_NO_READS | LIBIO_NO_WRITES | \
				 LIBIO_IS_APPENDING)

struct stream_mode {
	int flags;		/* open(2) flags */
	char cookie[3];		/* "r", "w", "a", "r+", "w+" or "a+" */
};

/* A stream of ours: the fopencookie() cookie. */
struct preload_stream {
	FILE *fp;
	int fd;			/* the descriptor; -1 after a failed freopen */
	struct preload_stream *next, **pprev;	/* under streams_lock */
};

static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;
static struct preload_stream *streams;

static void streams_add(struct preload_stream *s)
{
	pthread_mutex_lock(&streams_lock);
	s->next = streams;
	if (streams)
		streams->pprev = &s->next;
	s->pprev = &streams;
	streams = s;
	pthread_mutex_unlock(&streams_lock);
}

static void streams_remove(struct preload_stream *s)
{
	pthread_mutex_lock(&streams_lock);
	*s->pprev = s->next;
	if (s->next)
		s->next->pprev = s->pprev;
	pthread_mutex_unlock(&streams_lock);
}

static struct preload_stream *streams_find(FILE *fp)
{
	struct preload_stream *s;

	pthread_mutex_lock(&streams_lock);
	for (s = streams; s && s->fp != fp; s = s->next)
		;
	pthread_mutex_unlock(&streams_lock);
	return s;
}

void preload_stdio_atfork_prepare(void)
{
	pthread_mutex_lock(&streams_lock);
}

void preload_stdio_atfork_parent(void)
{
	pthread_mutex_unlock(&streams_lock);
}

void preload_stdio_atfork_child(void)
{
	pthread_mutex_init(&streams_lock, NULL);
}

/*
 * The cookie functions, called by libc with the stream locked (or by a
 * program that took the locking on itself).  They call the shim's own
 * read, write, lseek and close, so the descriptor may also be one that
 * is not ours (a stream of ours freopen'ed to another path).
 */
static ssize_t stream_read(void *cookie, char *buf, size_t size)
{
	struct preload_stream *s = cookie;
	ssize_t n;

	do
		n = read(s->fd, buf, size);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Never negative (fopencookie(3)); short means an error, errno says it. */
static ssize_t stream_write(void *cookie, const char *buf, size_t size)
{
	struct preload_stream *s = cookie;
	size_t done = 0;

	while (done < size) {
		ssize_t n = write(s->fd, buf + done, size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int stream_seek(void *cookie, off64_t *off, int whence)
{
	struct preload_stream *s = cookie;
	off_t pos = lseek(s->fd, *off, whence);

	if (pos < 0)
		return -1;
	*off = pos;
	return 0;
}

static int stream_close(void *cookie)
{
	struct preload_stream *s = cookie;
	int ret = 0;

	streams_remove(s);
	if (s->fd >= 0)
		ret = close(s->fd);
	free(s);
	return ret;
}

static const cookie_io_functions_t stream_io = {
	.read = stream_read,
	.write = stream_write,
	.seek = stream_seek,
	.close = stream_close,
};

/* See MODE above.  0 or -EINVAL. */
static int parse_mode(const char *mode, bool for_fdopen, struct stream_mode *m)
{
	int i, last = for_fdopen ? 4 : 6;

	if (!mode)
		return -EINVAL;
	switch (mode[0]) {
	case 'r':
		m->flags = O_RDONLY;
		break;
	case 'w':
		m->flags = O_WRONLY | O_CREAT | O_TRUNC;
		break;
	case 'a':
		m->flags = O_WRONLY | O_CREAT | O_APPEND;
		break;
	default:
		return -EINVAL;
	}
	m->cookie[0] = mode[0];
	m->cookie[1] = m->cookie[2] = '\0';
	for (i = 1; i <= last && mode[i]; i++) {
		if (mode[i] == '+') {
			m->flags = (m->flags & ~O_ACCMODE) | O_RDWR;
			m->cookie[1] = '+';
			if (for_fdopen)
				break;
		} else if (mode[i] == 'x' && !for_fdopen) {
			m->flags |= O_EXCL;
		} else if (mode[i] == 'e' && !for_fdopen) {
			m->flags |= O_CLOEXEC;
		}
	}
	if (!for_fdopen && strstr(mode + 1, ",ccs="))
		return -EINVAL;
	return 0;
}

/* "a": the stream starts at the end of the file ("a+" at 0). */
static bool starts_at_end(const struct stream_mode *m)
{
	return m->cookie[0] == 'a' && m->cookie[1] != '+';
}

/* The FILE's libio mode bits for @m, as fopencookie() sets them. */
static int libio_mode(const struct stream_mode *m)
{
	int bits = m->cookie[0] == 'r' ? LIBIO_NO_WRITES :
		m->cookie[0] == 'w' ? LIBIO_NO_READS :
		LIBIO_NO_READS | LIBIO_IS_APPENDING;

	if (m->cookie[1] == '+')
		bits &= LIBIO_IS_APPENDING;
	return bits;
}

static FILE *fail(int err)
{
	errno = -err;
	return NULL;
}

/* A stream on descriptor @fd; on failure NULL, errno set, @fd left open. */
static FILE *stream_new(int fd, const struct stream_mode *m)
{
	struct preload_stream *s = malloc(sizeof(*s));
	FILE *fp;

	if (!s)
		return fail(-ENOMEM);
	s->fd = fd;
	fp = fopencookie(s, m->cookie, stream_io);
	if (!fp) {
		free(s);
		return fail(-ENOMEM);
	}
	s->fp = fp;
	fp->_fileno = fd;		/* see FILENO above */
	streams_add(s);
	return fp;
}

/*
 * fopen and fopen64 of @path: ours (*ours set; NULL and errno on error)
 * or not (*ours clear: the caller calls libc).
 */
static FILE *open_stream(const char *path, const char *mode, bool *ours)
{
	char name[PRELOAD_NAME_MAX];
	struct stream_mode m;
	int r = preload_path(AT_FDCWD, path, name);
	FILE *fp;
	int fd;

	*ours = r != 0;
	if (r <= 0)
		return r < 0 ? fail(r) : NULL;
	r = parse_mode(mode, false, &m);
	if (r < 0)
		return fail(r);
	fd = preload_open_name(name, m.flags, 0666);
	if (fd < 0)
		return fail(fd);
	if (starts_at_end(&m))
		lseek(fd, 0, SEEK_END);
	fp = stream_new(fd, &m);
	if (!fp) {
		int err = errno;

		close(fd);
		errno = err;
	}
	preload_debug("fopen %s \"%s\" -> %p (fd %d)", name, mode, (void *)fp,
		      fp ? fd : -1);
	return fp;
}

PRELOAD_API FILE *fopen(const char *path, const char *mode)
{
	bool ours;
	FILE *fp = open_stream(path, mode, &ours);

	return ours ? fp : REAL(fopen)(path, mode);
}

PRELOAD_API FILE *fopen64(const char *path, const char *mode)
{
	bool ours;
	FILE *fp = open_stream(path, mode, &ours);

	return ours ? fp : REAL(fopen64)(path, mode);
}

PRELOAD_API FILE *fdopen(int fd, const char *mode)
{
	struct preload_file *file = preload_fd_get(fd);
	struct stream_mode m;
	int fl, acc, r;

	if (!file)
		return REAL(fdopen)(fd, mode);
	preload_file_put(file);
	r = parse_mode(mode, true, &m);
	if (r < 0)
		return fail(r);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return NULL;
	acc = m.flags & O_ACCMODE;
	if (((fl & O_ACCMODE) == O_RDONLY && acc != O_RDONLY) ||
	    ((fl & O_ACCMODE) == O_WRONLY && acc != O_WRONLY))
		return fail(-EINVAL);
	/* glibc: "a" sets O_APPEND, and then "a" (not "a+") seeks to the end. */
	if (m.cookie[0] == 'a' && !(fl & O_APPEND)) {
		if (fcntl(fd, F_SETFL, fl | O_APPEND) < 0)
			return NULL;
		if (starts_at_end(&m))
			lseek(fd, 0, SEEK_END);
	}
	return stream_new(fd, &m);
}

/* A new descriptor for @s's stream reopened at @path (NULL: the same file). */
static int reopen_fd(struct preload_stream *s, const char *path,
		     const struct stream_mode *m)
{
	char name[PRELOAD_NAME_MAX];
	int r, fd;

	if (!path) {
		struct preload_file *file;
		char proc[64];

		if (s->fd < 0)
			return -EBADF;
		file = preload_fd_get(s->fd);
		if (file) {
			r = file->name ?
				preload_open_name(file->name, m->flags, 0666) :
				-ENOMEM;
			preload_file_put(file);
			return r;
		}
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", s->fd);
		fd = REAL(open)(proc, m->flags, 0666);
		return fd < 0 ? -errno : fd;
	}
	r = preload_path(AT_FDCWD, path, name);
	if (r < 0)
		return r;
	if (r > 0)
		return preload_open_name(name, m->flags, 0666);
	fd = REAL(open)(path, m->flags, 0666);
	return fd < 0 ? -errno : fd;
}

/* Caller holds @fp's lock: make @fp an empty stream of mode @bits. */
static void __stream_reset(FILE *fp, int bits)
{
	fp->_flags &= ~(LIBIO_MODE_BITS | LIBIO_CURRENTLY_PUTTING |
			_IO_EOF_SEEN | _IO_ERR_SEEN);
	fp->_flags |= bits;
	fp->_IO_read_base = fp->_IO_read_ptr = fp->_IO_read_end =
		fp->_IO_buf_base;
	fp->_IO_write_base = fp->_IO_write_ptr = fp->_IO_write_end =
		fp->_IO_buf_base;
	fp->_offset = -1;
}

/* freopen of a stream of ours: see FREOPEN above. */
static FILE *reopen_stream(struct preload_stream *s, const char *path,
			   const char *mode, FILE *fp)
{
	struct stream_mode m;
	int fd, old, err;

	flockfile(fp);
	fflush_unlocked(fp);
	__fpurge(fp);
	err = parse_mode(mode, false, &m);
	fd = err < 0 ? err : reopen_fd(s, path, &m);
	if (fd >= 0 && starts_at_end(&m))
		lseek(fd, 0, SEEK_END);
	old = s->fd;
	/* Keep the number, as glibc does; dup3 releases the old file. */
	if (fd >= 0 && old >= 0) {
		if (dup3(fd, old, m.flags & O_CLOEXEC) < 0) {
			err = -errno;
			close(old);
			close(fd);
			fd = err;
		} else {
			close(fd);
			fd = old;
		}
	} else if (old >= 0) {
		close(old);
	}
	s->fd = fd >= 0 ? fd : -1;
	fp->_fileno = fd >= 0 ? fd : -2;	/* -2: fclose still calls close */
	__stream_reset(fp, fd >= 0 ? libio_mode(&m) :
		       LIBIO_NO_READS | LIBIO_NO_WRITES);
	funlockfile(fp);
	preload_debug("freopen %s \"%s\" %p -> fd %d", path ? path : "(same)",
		      mode ? mode : "(null)", (void *)fp, fd);
	return fd >= 0 ? fp : fail(fd);
}

/* A stream libc made, reopened onto a path of ours: said, then to libc. */
static void note_foreign(const char *path)
{
	char name[PRELOAD_NAME_MAX];

	if (path && preload_path(AT_FDCWD, path, name) > 0)
		preload_debug("freopen %s: not a stream of the shim's, so it "
			      "opens the kernel's file", name);
}

PRELOAD_API FILE *freopen(const char *path, const char *mode, FILE *fp)
{
	struct preload_stream *s = fp ? streams_find(fp) : NULL;

	if (s)
		return reopen_stream(s, path, mode, fp);
	note_foreign(path);
	return REAL(freopen)(path, mode, fp);
}

PRELOAD_API FILE *freopen64(const char *path, const char *mode, FILE *fp)
{
	struct preload_stream *s = fp ? streams_find(fp) : NULL;

	if (s)
		return reopen_stream(s, path, mode, fp);
	note_foreign(path);
	return REAL(freopen64)(path, mode, fp);
}
