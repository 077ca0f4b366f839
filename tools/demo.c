/*
 * demo.c - `pcache demo`: a short, honest tour of the cache on the memory
 * backend.  Every line it prints is checked as it goes; a step whose result
 * is not what the line claims makes the demo fail (exit 1).  It ends with
 * the seed's story: the torture matrix (pcache torture, quickly) and what
 * each write strategy costs, measured in the same run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pcache.h"
#include "commands.h"

extern char **environ;
static int failures;

#define STEP(ok, ...) do {						\
	int __ok = (ok);						\
	printf("  [%s] ", __ok ? " ok " : "FAIL");			\
	printf(__VA_ARGS__);						\
	putchar('\n');							\
	failures += !__ok;						\
} while (0)

static void fill(unsigned char *p, size_t n, unsigned char seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7 + (i >> 12));
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/*
 * Overwrite 8 KiB of known data from a source whose second page is
 * PROT_NONE, under @strategy.  Returns what the file then holds in the
 * overwritten range, judged against the write's return value.
 */
static void fault_tour(int strategy)
{
	const size_t pg = 4096;
	struct pcache_config cfg;
	struct pcache *pc;
	unsigned char *src, old[8192], now[8192];
	ssize_t n;
	int fd, zeroes = 0, stale_ok;

	pcache_config_init(&cfg);
	cfg.write_strategy = strategy;
	cfg.perform_write = 0;		/* the strategy's own page loop */
	if (pcache_create(&cfg, &pc)) {
		STEP(0, "create a cache with strategy %s", pcache_strategy_name(strategy));
		return;
	}
	fd = pcache_open(pc, "victim", O_RDWR | O_CREAT, 0644);
	fill(old, sizeof(old), 0x40);
	pcache_pwrite(fd, old, sizeof(old), 0);

	src = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(src, 0xAB, pg);
	mprotect(src + pg, pg, PROT_NONE);
	/* 6000 bytes from 4096 - 1000: 1000 readable, then the fault. */
	n = pcache_pwrite(fd, src + pg - 1000, 6000, 0);
	pcache_pread(fd, now, sizeof(now), 0);
	for (size_t i = (n > 0 ? (size_t)n : 0); i < 6000; i++)
		zeroes += now[i] == 0 && old[i] != 0;
	stale_ok = n > 0 && all_bytes(now, (size_t)n, 0xAB) &&
		   !memcmp(now + n, old + n, sizeof(old) - (size_t)n);
	printf("  %-7s pwrite(6000 bytes, fault after 1000) = %zd; bytes after it: %s\n",
	       pcache_strategy_name(strategy), n,
	       stale_ok ? "old data, intact" : "CORRUPTED");
	if (strategy == PCACHE_WRITE_NAIVE)
		STEP(zeroes > 0, "naive published %d zero bytes past the count it returned "
		     "(the 2007 corruption, reproduced)", zeroes);
	else
		STEP(n == 1000 && stale_ok, "%s: short count, new bytes exactly up to it, "
		     "nothing else changed", pcache_strategy_name(strategy));
	munmap(src, 2 * pg);
	pcache_close(fd);
	pcache_destroy(pc);
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/*
 * What each strategy costs: 4 KiB overwrites of a cached 4 MiB file from
 * anonymous memory, the median of 5 rounds, all strategies in this run;
 * and how many bytes each copies per byte written.
 */
static void strategy_costs(void)
{
	const size_t sz = 4096, file = 4 << 20;
	unsigned char *src = malloc(file);
	int s;

	memset(src, 0x5a, file);
	printf("  %-11s %12s %16s\n", "strategy", "ns / 4 KiB", "bytes copied/B");
	for (s = 0; s < PCACHE_WRITE_NR; s++) {
		struct pcache_config cfg;
		struct pcache_stats st;
		struct pcache *pc;
		double t[5], tmp;
		int fd, r, i, j;

		pcache_config_init(&cfg);
		cfg.write_strategy = s;
		cfg.perform_write = 0;
		if (pcache_create(&cfg, &pc))
			continue;
		fd = pcache_open(pc, "cost", O_RDWR | O_CREAT, 0644);
		pcache_pwrite(fd, src, file, 0);
		pcache_stats(pc, &st);
		for (r = 0; r < 5; r++) {
			double t0 = now_ns();

			for (size_t off = 0; off < file; off += sz)
				pcache_pwrite(fd, src + off, sz, (off_t)off);
			t[r] = (now_ns() - t0) / (file / sz);
		}
		for (i = 0; i < 5; i++)
			for (j = i + 1; j < 5; j++)
				if (t[j] < t[i])
					tmp = t[i], t[i] = t[j], t[j] = tmp;
		{
			struct pcache_stats st2;

			pcache_stats(pc, &st2);
			printf("  %-11s %12.0f %16.2f\n", pcache_strategy_name(s), t[2],
			       (double)(st2.bytes_copied - st.bytes_copied) /
			       (double)(st2.bytes_written - st.bytes_written));
		}
		pcache_close(fd);
		pcache_destroy(pc);
	}
	free(src);
}

/* The seed's story on one screen: the torture matrix, then the cost. */
static void seed_story(void)
{
	/*
	 * A fresh process: torture installs its signal handlers before its
	 * first cache, which this one (with caches behind it) cannot do.
	 */
	char *targv[] = { "pcache", "torture", "--iterations", "100",
			  "--timeout-ms", "1500", NULL };
	int rc = -1, status;
	pid_t pid;

	printf("\n7. the 2007 story: each strategy against the RFC's hazards\n"
	       "   (real views and threads; naive is 2.6.20, bounce the RFC's patch)\n");
	fflush(stdout);
	if (!posix_spawn(&pid, "/proc/self/exe", NULL, NULL, targv, environ) &&
	    waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		rc = WEXITSTATUS(status);
	STEP(rc == 0, "the matrix is the expected one: naive deadlocks or corrupts, the rest are ok");
	printf("\n8. what safety costs (this run)\n");
	strategy_costs();
}

int cmd_demo(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "quick", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	int quick = 0;
	struct pcache_config cfg;
	struct pcache_stats st;
	struct pcache *pc;
	unsigned char *buf, *back;
	size_t big = 3 * 4096 + 100;
	off_t off;
	int fd, err, c;

	while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
		if (c == 'h') {
			printf("usage: pcache demo [--quick]\n"
			       "  A tour of the page cache on the memory backend, then the 2007 RFC's\n"
			       "  story: the torture matrix and each write strategy's cost.\n"
			       "  --quick  the tour only\n");
			return 0;
		}
		if (c == 'q') {
			quick = 1;
			continue;
		}
		fprintf(stderr, "usage: pcache demo [--quick]\n");
		return 2;
	}

	pcache_config_init(&cfg);
	err = pcache_create(&cfg, &pc);
	if (err) {
		fprintf(stderr, "pcache demo: create: %s\n", pcache_strerror(err));
		return 1;
	}
	printf("pcache demo: memory backend, write strategy '%s'\n\n",
	       pcache_strategy_name(cfg.write_strategy));

	buf = malloc(big);
	back = calloc(1, 2 << 20);
	fill(buf, big, 1);

	printf("1. writes and reads\n");
	fd = pcache_open(pc, "hello", O_RDWR | O_CREAT | O_TRUNC, 0644);
	STEP(fd > 0, "open(\"hello\", O_RDWR|O_CREAT) = descriptor %d", fd);
	STEP(pcache_pwrite(fd, buf, big, 0) == (ssize_t)big,
	     "pwrite %zu bytes at 0 (3 pages and a bit)", big);
	STEP(pcache_pread(fd, back, big, 0) == (ssize_t)big && !memcmp(back, buf, big),
	     "pread them back: byte-identical");
	STEP(pcache_pread(fd, back, 100, (off_t)big) == 0, "pread at end of file returns 0");

	printf("2. holes\n");
	STEP(pcache_pwrite(fd, "tail", 4, 1 << 20) == 4, "pwrite 4 bytes at 1 MiB");
	STEP(pcache_pread(fd, back, 1 << 20, 0) == 1 << 20 &&
	     all_bytes(back + big, (1 << 20) - big, 0),
	     "the %zu bytes between read back as zeroes", (size_t)(1 << 20) - big);
	off = pcache_lseek(fd, (off_t)big + 4096, SEEK_DATA);
	STEP(off == 1 << 20, "lseek(SEEK_DATA) past the data finds 1 MiB (%lld)", (long long)off);

	printf("3. truncate\n");
	STEP(pcache_ftruncate(fd, 5000) == 0, "ftruncate to 5000 bytes");
	STEP(pcache_ftruncate(fd, 12288) == 0, "ftruncate back up to 12288");
	STEP(pcache_pread(fd, back, 12288, 0) == 12288 && !memcmp(back, buf, 5000) &&
	     all_bytes(back + 5000, 12288 - 5000, 0),
	     "first 5000 bytes kept, the rest (old tail included) reads as zeroes");

	printf("4. a source buffer that faults part way\n");
	fault_tour(PCACHE_WRITE_BOUNCE);
	fault_tour(PCACHE_WRITE_NAIVE);
	STEP(pcache_pwrite(fd, NULL, 10, 0) == -EFAULT, "pwrite from NULL: -EFAULT, no crash");

	printf("5. fsync and statistics\n");
	pcache_stats(pc, &st);
	printf("       before fsync: %llu pages cached, %llu dirty\n",
	       (unsigned long long)st.pages_cached, (unsigned long long)st.pages_dirty);
	STEP(st.pages_dirty > 0, "written pages are dirty");
	STEP(pcache_fsync(fd) == 0, "fsync");
	pcache_stats(pc, &st);
	printf("       after fsync:  %llu pages cached, %llu dirty, %llu written back\n",
	       (unsigned long long)st.pages_cached, (unsigned long long)st.pages_dirty,
	       (unsigned long long)st.writeback_pages);
	STEP(st.pages_dirty == 0, "no dirty pages left");
	printf("       %llu bytes written, %llu read, %llu copied in all "
	       "(bounce copies each byte twice: %llu through the temp page)\n",
	       (unsigned long long)st.bytes_written, (unsigned long long)st.bytes_read,
	       (unsigned long long)st.bytes_copied,
	       (unsigned long long)st.strategy[PCACHE_WRITE_BOUNCE].bounce_bytes);

	printf("6. clean up\n");
	STEP(pcache_destroy(pc) == -EBUSY, "destroy with a file open: -EBUSY");
	STEP(pcache_close(fd) == 0 && pcache_close(fd) == -EBADF,
	     "close, and close again: -EBADF");
	STEP(pcache_pread(fd, back, 1, 0) == -EBADF, "pread on the closed descriptor: -EBADF");
	STEP(pcache_destroy(pc) == 0, "destroy");

	free(buf);
	free(back);

	if (!quick)
		seed_story();
	printf("\n%s: %d step(s) failed\n", failures ? "FAILED" : "demo done", failures);
	return failures ? 1 : 0;
}
