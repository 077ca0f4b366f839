/*
 * preload_selfwrite.c - an "unmodified" program (plain libc, no pcache
 * header) that writes into a file from an mmap of that same file.
 *
 *	preload_selfwrite PATH
 *
 * Run under libpcache-preload.so with PATH under PCACHE_PRELOAD_DIR, the
 * write's source is a pcache view of the very pages being written: the
 * seed's deadlock (the writer holds the page lock, the view fault needs
 * it), reached by code that knows nothing of pcache.  Each case maps the
 * file afresh, so the source pages are not present and the copy faults.
 *
 * Cases (byte ranges never overlap, so any copy order gives the same
 * bytes; the pages do):
 *	same page		source and destination in page 1
 *	overlapping pages	source pages 0-1, destination pages 1-2
 *	extending		source pages 0-2, destination pages 2-4 (write(),
 *				extending the file)
 *	writev			two segments from the map into page 2
 * After each, the file (pread) and the map must equal a model.
 * Exit 0 pass, 1 fail.  A deadlock never exits: run it under timeout.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "harness.h"

#define PG	4096
#define NPAGES	4
#define MAXLEN	(6 * PG)

static unsigned char model[MAXLEN];
static size_t model_size;

/* Check the file against the model through pread and through a new map. */
static void verify(int fd, const char *what)
{
	static unsigned char buf[MAXLEN];
	struct stat st;
	ssize_t n;
	long i;
	unsigned char *map;

	CHECK(fstat(fd, &st) == 0, "%s: fstat: %s", what, strerror(errno));
	CHECK_EQ(st.st_size, model_size);
	n = pread(fd, buf, sizeof(buf), 0);
	CHECK_EQ(n, model_size);
	for (i = 0; n > 0 && i < n; i++)
		if (buf[i] != model[i]) {
			CHECK(0, "%s: pread byte %ld is %#x, want %#x", what,
			      i, buf[i], model[i]);
			break;
		}
	map = mmap(NULL, model_size, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED, "%s: mmap: %s", what, strerror(errno));
	if (map == MAP_FAILED)
		return;
	CHECK(memcmp(map, model, model_size) == 0, "%s: the map differs", what);
	munmap(map, model_size);
}

/* pwrite (or write at @dst) from the map at @src, @len bytes. */
static void selfwrite(int fd, size_t src, size_t dst, size_t len, int how,
		      const char *what)
{
	size_t maplen = model_size;
	unsigned char *map;
	ssize_t n;

	map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED, "%s: mmap: %s", what, strerror(errno));
	if (map == MAP_FAILED)
		return;
	if (how == 0) {
		n = pwrite(fd, map + src, len, (off_t)dst);
	} else if (how == 1) {
		CHECK_EQ(lseek(fd, (off_t)dst, SEEK_SET), dst);
		n = write(fd, map + src, len);
	} else {
		struct iovec iov[2] = {
			{ map + src, len / 2 },
			{ map + src + len / 2 + 7, len - len / 2 },
		};

		n = pwritev(fd, iov, 2, (off_t)dst);
		memmove(model + dst, model + src, len / 2);
		memmove(model + dst + len / 2, model + src + len / 2 + 7,
			len - len / 2);
		len = 0;	/* model done */
		if (dst + iov[0].iov_len + iov[1].iov_len > model_size)
			model_size = dst + iov[0].iov_len + iov[1].iov_len;
	}
	CHECK(n >= 0, "%s: %s", what, strerror(errno));
	if (len) {
		CHECK_EQ(n, len);
		memmove(model + dst, model + src, len);
		if (dst + len > model_size)
			model_size = dst + len;
	}
	munmap(map, maplen);
	verify(fd, what);
	printf("%s: ok\n", what);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int fd, i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "FAIL open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (i = 0; i < NPAGES * PG; i++)
		model[i] = (unsigned char)('a' + i / PG + (i % 251));
	model_size = NPAGES * PG;
	CHECK_EQ(write(fd, model, model_size), model_size);
	verify(fd, "initial");

	selfwrite(fd, PG + 100, PG + 2000, 1000, 0, "same page (pwrite)");
	selfwrite(fd, 3000, PG + 3500, 2000, 0, "overlapping pages (pwrite)");
	selfwrite(fd, 0, 2 * PG + 100, 2 * PG + 50, 1,
		  "pages 0-2 into pages 2-4, extending (write)");
	selfwrite(fd, 2 * PG + 10, 2 * PG + 2100, 1500, 2,
		  "same page (pwritev)");
	CHECK(close(fd) == 0, "close: %s", strerror(errno));
	return test_exit();
}
