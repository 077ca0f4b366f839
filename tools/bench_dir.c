/*
 * bench_dir.c - the "dir" section of `pcache bench`: the directory backend
 * against the kernel, and the writeback I/O choice, in one run.
 *
 * Figures (each the median of @reps runs, ratios from medians):
 *  - writeback of scattered runs (every other page of a file dirty) and of
 *    a sequential file, by pwritev (one call per run) and by io_uring (all
 *    runs of a batch in one submission): why pwritev is the default;
 *  - backend calls per MiB written, page-by-page (write_begin/write_end)
 *    against perform_write (one allocation per write);
 *  - a 64 KiB-write file fill plus fsync through pcache's dir backend,
 *    against pwrite plus fsync on the same file system by the kernel.
 *
 * The backing directory is a fresh one under $TMPDIR (default /var/tmp, a
 * disk file system; /tmp may be tmpfs), removed afterwards.  Only
 * include/pcache.h is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "commands.h"

#define DIR_FILE	(64u << 20)
#define DIR_FILE_QUICK	(16u << 20)
#define DIR_CHUNK	(64u << 10)

static double dnow(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[n / 2];
}

static char *make_dir(char *buf, size_t n)
{
	const char *t = getenv("TMPDIR");

	snprintf(buf, n, "%s/pcache-bench-XXXXXX", t && *t ? t : "/var/tmp");
	return mkdtemp(buf);
}

static void remove_dir(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "bench: could not remove %s\n", dir);
}

static int dir_cache(const char *dir, bool uring, bool perform_write,
		     struct pcache **pc)
{
	struct pcache_config cfg;
	int err;

	pcache_config_init(&cfg);
	cfg.backend = "dir";
	cfg.backend_arg = dir;
	cfg.mem_limit = 1ull << 30;
	cfg.dirty_limit = 512ull << 20;
	/* Only the measured fsync writes back: no flusher in the way. */
	cfg.dirty_expire_ms = 3600u * 1000;
	cfg.writeback_interval_ms = 3600u * 1000;
	cfg.perform_write = perform_write;
	if (uring)
		setenv("PCACHE_DIR_IO", "uring", 1);
	else
		unsetenv("PCACHE_DIR_IO");
	err = pcache_create(&cfg, pc);
	unsetenv("PCACHE_DIR_IO");
	return err;
}

/* Time the fdatasync of a file with every other page (sparse) or all dirty. */
static int wb_measure(const char *dir, bool uring, bool sparse, size_t size,
		      int reps, const unsigned char *buf, double *med)
{
	struct pcache *pc;
	double t[64];
	int fd, r, err;

	err = dir_cache(dir, uring, false, &pc);
	if (err)
		return err;
	fd = pcache_open(pc, "wb", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		pcache_destroy(pc);
		return fd;
	}
	for (size_t off = 0; off < size; off += DIR_CHUNK)
		pcache_pwrite(fd, buf, DIR_CHUNK, (off_t)off);
	err = pcache_fdatasync(fd);
	for (r = 0; r < reps && !err; r++) {
		double t0;

		if (sparse) {
			for (size_t off = 0; off < size; off += 8192)
				pcache_pwrite(fd, buf, 4096, (off_t)off);
		} else {
			for (size_t off = 0; off < size; off += DIR_CHUNK)
				pcache_pwrite(fd, buf, DIR_CHUNK, (off_t)off);
		}
		t0 = dnow();
		err = pcache_fdatasync(fd);
		t[r] = dnow() - t0;
	}
	pcache_close(fd);
	pcache_destroy(pc);
	if (!err)
		*med = median(t, reps);
	return err;
}

/* Fill a new file with 64 KiB writes and fsync: pcache (dir) or the kernel. */
static int fill_measure(const char *dir, int how, size_t size, int reps,
			const unsigned char *buf, double *med,
			struct pcache_stats *calls)
{
	double t[64];
	int r, err = 0;

	for (r = 0; r < reps && !err; r++) {
		struct pcache_stats a, b;
		struct pcache *pc = NULL;
		char path[4200];
		double t0;
		int fd;

		if (how == 0) {		/* the kernel */
			snprintf(path, sizeof(path), "%s/k", dir);
			fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
			if (fd < 0)
				return -errno;
			t0 = dnow();
			for (size_t off = 0; off < size; off += DIR_CHUNK)
				if (pwrite(fd, buf, DIR_CHUNK, (off_t)off) != DIR_CHUNK)
					err = -EIO;
			if (fsync(fd))
				err = -errno;
			t[r] = dnow() - t0;
			close(fd);
			unlink(path);
			continue;
		}
		err = dir_cache(dir, false, how == 2, &pc);
		if (err)
			return err;
		fd = pcache_open(pc, "p", O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			pcache_destroy(pc);
			return fd;
		}
		pcache_stats(pc, &a);
		t0 = dnow();
		for (size_t off = 0; off < size; off += DIR_CHUNK)
			if (pcache_pwrite(fd, buf, DIR_CHUNK, (off_t)off) != DIR_CHUNK)
				err = -EIO;
		if (!err)
			err = pcache_fsync(fd);
		t[r] = dnow() - t0;
		pcache_stats(pc, &b);
		calls->backend_allocs = b.backend_allocs - a.backend_allocs;
		calls->backend_reads = b.backend_reads - a.backend_reads;
		calls->backend_writes = b.backend_writes - a.backend_writes;
		calls->backend_other = b.backend_other - a.backend_other;
		calls->backend_syncs = b.backend_syncs - a.backend_syncs;
		pcache_close(fd);
		pcache_unlink(pc, "p");
		pcache_destroy(pc);
	}
	if (!err)
		*med = median(t, reps);
	return err;
}

static double per_mib(const struct pcache_stats *c, size_t size)
{
	return (double)(c->backend_allocs + c->backend_reads + c->backend_writes +
			c->backend_other + c->backend_syncs) / ((double)size / (1 << 20));
}

int bench_dir(bool quick, int reps)
{
	size_t size = quick ? DIR_FILE_QUICK : DIR_FILE;
	double wb[2][2], fill[3];
	struct pcache_stats calls[3] = { 0 };
	unsigned char *buf;
	char dir[4096];
	int err = 0;

	if (reps > 64)
		reps = 64;
	if (!make_dir(dir, sizeof(dir))) {
		fprintf(stderr, "bench: dir: cannot make a directory: %s\n",
			strerror(errno));
		return 1;
	}
	buf = malloc(DIR_CHUNK);
	if (!buf) {
		remove_dir(dir);
		return 1;
	}
	memset(buf, 0x5a, DIR_CHUNK);
	for (int io = 0; io < 2 && !err; io++)
		for (int sp = 0; sp < 2 && !err; sp++)
			err = wb_measure(dir, io, sp, size, reps, buf, &wb[io][sp]);
	for (int how = 0; how < 3 && !err; how++)
		err = fill_measure(dir, how, size, reps, buf, &fill[how], &calls[how]);
	free(buf);
	remove_dir(dir);
	if (err) {
		fprintf(stderr, "bench: dir: %s\n", pcache_strerror(err));
		return 1;
	}

	printf("\n== dir: the directory backend (%zu MiB files under %s) ==\n",
	       size >> 20, getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp");
	printf("writeback (fdatasync of the dirty pages), median of %d:\n", reps);
	printf("  %-34s %10s %10s %8s\n", "", "pwritev", "io_uring", "uring/pv");
	printf("  %-34s %8.1fms %8.1fms %7.2fx\n", "scattered: every other 4 KiB page",
	       wb[0][1] * 1e3, wb[1][1] * 1e3, wb[1][1] / wb[0][1]);
	printf("  %-34s %8.1fms %8.1fms %7.2fx\n", "sequential: every page",
	       wb[0][0] * 1e3, wb[1][0] * 1e3, wb[1][0] / wb[0][0]);
	printf("fill a new file with 64 KiB writes, then fsync:\n");
	printf("  %-34s %8.1fms %7.2f GB/s  %6.2fx kernel  %7.1f backend calls/MiB (alloc %llu, write %llu)\n",
	       "pcache dir, write_begin/write_end", fill[1] * 1e3,
	       (double)size / fill[1] / 1e9, fill[0] / fill[1], per_mib(&calls[1], size),
	       (unsigned long long)calls[1].backend_allocs,
	       (unsigned long long)calls[1].backend_writes);
	printf("  %-34s %8.1fms %7.2f GB/s  %6.2fx kernel  %7.1f backend calls/MiB (alloc %llu, write %llu)\n",
	       "pcache dir, perform_write", fill[2] * 1e3,
	       (double)size / fill[2] / 1e9, fill[0] / fill[2], per_mib(&calls[2], size),
	       (unsigned long long)calls[2].backend_allocs,
	       (unsigned long long)calls[2].backend_writes);
	printf("  %-34s %8.1fms %7.2f GB/s\n", "kernel pwrite + fsync", fill[0] * 1e3,
	       (double)size / fill[0] / 1e9);
	return 0;
}
