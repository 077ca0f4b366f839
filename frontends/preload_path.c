/*
 * preload_path.c - which paths are under PCACHE_PRELOAD_DIR, and their
 * names in the cache.
 *
 * A path is made absolute (with the working directory, or the directory a
 * real @dirfd names in /proc/self/fd) and normalised lexically: empty and
 * "." components dropped, ".." taking off the one before it (at "/" it
 * stays "/", as the kernel does).  It is ours if it then lies strictly
 * under the directory, spelt either as PCACHE_PRELOAD_DIR was given
 * (made absolute and normalised) or as realpath() resolves it.  Its name in
 * the cache is the rest, e.g. "f" or "sub/f" - so "DIR/a/../f",
 * "DIR//./f" and "f" run in DIR all name "f", and "DIR/../x" is not ours.
 * The directory itself is not ours: it is a real directory.
 *
 * Lexical ".." differs from the kernel only where a component is a
 * symlink; the cache has none, and a path that reaches the directory
 * through a symlink of its own (other than the two spellings above) is
 * not recognised (docs/preload.md).
 *
 * The program's path string is read with process_vm_readv() on our own
 * process, so an unreadable pointer gives EFAULT, as the kernel gives,
 * instead of a crash inside the shim.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preload.h"

#define PAGE	4096UL

static char dir_given[PATH_MAX];	/* normalised, absolute; "" if none */
static char dir_real[PATH_MAX];		/* realpath(); "" if it failed */
static pthread_once_t dirs_once = PTHREAD_ONCE_INIT;

/* Normalise absolute @in into @out (size PRELOAD_NAME_MAX * 2). */
static int normalise(const char *in, char *out, size_t size)
{
	size_t len = 0;
	const char *p = in;

	while (*p) {
		const char *start;
		size_t n;

		while (*p == '/')
			p++;
		start = p;
		while (*p && *p != '/')
			p++;
		n = (size_t)(p - start);
		if (n == 0 || (n == 1 && start[0] == '.'))
			continue;
		if (n == 2 && start[0] == '.' && start[1] == '.') {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;		/* the '/' before it */
			continue;
		}
		if (len + 1 + n + 1 > size)
			return -ENAMETOOLONG;
		out[len++] = '/';
		memcpy(out + len, start, n);
		len += n;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return 0;
}

static void dirs_init(void)
{
	const char *dir = preload_dir();
	char buf[2 * PATH_MAX], cwd[PATH_MAX];

	if (!dir)
		return;
	if (dir[0] == '/') {
		snprintf(buf, sizeof(buf), "%s", dir);
	} else if (getcwd(cwd, sizeof(cwd))) {
		snprintf(buf, sizeof(buf), "%s/%s", cwd, dir);
	} else {
		buf[0] = '\0';
	}
	if (!buf[0] || normalise(buf, dir_given, sizeof(dir_given)) < 0)
		dir_given[0] = '\0';
	if (!realpath(dir, dir_real))
		dir_real[0] = '\0';
	preload_debug("directory %s (real %s)", dir_given, dir_real);
}

/*
 * Copy the NUL-terminated @path into @buf (PATH_MAX bytes) without
 * faulting: one process_vm_readv, its remote side cut at page boundaries
 * (transfers stop at the first iovec element that faults).
 */
static int read_path(const char *path, char *buf)
{
	struct iovec local = { buf, PATH_MAX }, remote[3];
	uintptr_t a = (uintptr_t)path;
	size_t left = PATH_MAX;
	int n = 0;
	ssize_t got;

	if (!path)
		return -EFAULT;
	while (left && n < 3) {
		size_t piece = PAGE - (a & (PAGE - 1));

		if (piece > left)
			piece = left;
		remote[n].iov_base = (void *)a;
		remote[n].iov_len = piece;
		a += piece;
		left -= piece;
		n++;
	}
	got = process_vm_readv(getpid(), &local, 1, remote, n, 0);
	if (got < 0) {
		if (errno != ENOSYS && errno != EPERM)
			return -EFAULT;
		/* Not allowed here (seccomp): read it directly. */
		got = (ssize_t)strnlen(path, PATH_MAX);
		memcpy(buf, path, got < PATH_MAX ? got + 1 : PATH_MAX);
	}
	if (!memchr(buf, '\0', (size_t)got))
		return got == PATH_MAX ? -ENAMETOOLONG : -EFAULT;
	return 0;
}

/* The name under @dir of the normalised @abs, or NULL. */
static const char *under(const char *abs, const char *dir)
{
	size_t n = strlen(dir);

	if (!n)
		return NULL;
	if (n == 1)			/* the directory is "/" */
		return abs[1] ? abs + 1 : NULL;
	if (strncmp(abs, dir, n) || abs[n] != '/' || !abs[n + 1])
		return NULL;
	return abs + n + 1;
}

int preload_path(int dirfd, const char *path, char *name)
{
	char rel[PATH_MAX], base[PATH_MAX], full[2 * PATH_MAX + 2];
	char abs[2 * PATH_MAX + 2];
	const char *rest;
	int err;

	if (!__atomic_load_n(&preload_enabled, __ATOMIC_ACQUIRE))
		return 0;
	pthread_once(&dirs_once, dirs_init);
	err = read_path(path, rel);
	if (err)
		return err;
	if (rel[0] == '/') {
		err = normalise(rel, abs, sizeof(abs));
	} else {
		if (dirfd == AT_FDCWD) {
			if (!getcwd(base, sizeof(base)))
				return 0;	/* let libc say why */
		} else {
			char link[64];
			ssize_t n;

			if (preload_fd_maybe(dirfd)) {
				struct preload_file *f = preload_fd_get(dirfd);

				if (f) {
					preload_file_put(f);
					return -ENOTDIR;
				}
			}
			snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
			n = readlink(link, base, sizeof(base) - 1);
			if (n <= 0 || base[0] != '/')
				return 0;	/* not a directory we know */
			base[n] = '\0';
		}
		snprintf(full, sizeof(full), "%s/%s", base, rel);
		err = normalise(full, abs, sizeof(abs));
	}
	if (err)
		return err;
	rest = under(abs, dir_given);
	if (!rest)
		rest = under(abs, dir_real);
	if (!rest)
		return 0;
	if (strlen(rest) >= PRELOAD_NAME_MAX)
		return -ENAMETOOLONG;
	strcpy(name, rest);
	return 1;
}

int preload_copy_in(void *dst, const void *src, size_t len)
{
	struct iovec local = { dst, len }, remote = { (void *)src, len };
	ssize_t got;

	if (!src)
		return -EFAULT;
	got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (got < 0 && (errno == ENOSYS || errno == EPERM)) {
		memcpy(dst, src, len);	/* not allowed here (seccomp) */
		return 0;
	}
	return got == (ssize_t)len ? 0 : -EFAULT;
}

int preload_backing_path(const char *name, char *buf, size_t size)
{
	const char *dir;

	pthread_once(&dirs_once, dirs_init);
	dir = dir_given[0] ? dir_given : dir_real;
	if (snprintf(buf, size, "%s/%s", dir, name) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}
