/*
 * bench.c - `pcache bench`: figures measured side by side in one run.
 *
 * Every figure is a ratio to a reference measured in the same run on the
 * same machine (BRIEF §6: absolute figures are noisy on a virtual machine).
 * The reference is the kernel's own page cache: a memfd (tmpfs) whose
 * pages are cached, mapped MAP_SHARED.
 *
 * Layout: a table of sections (bench_sections[]), each a function that
 * measures and calls add_result() once per figure.  `--section NAME` runs
 * some of them; `--json FILE` writes every figure as one object of an
 * array.  A new group of benchmarks is one new function and one new line
 * in the table.  The "write" section keeps its own, richer records
 * (struct wresult: workload, size, method, threads, GB/s, ns/op) and its
 * own tables; --plot FILE.png draws it with gnuplot.
 *
 * Method: each measurement is repeated (--reps, default 11, 5 with --quick)
 * and reported as the median and the best (the minimum time); ratios use
 * the medians.  Times come from clock_gettime(CLOCK_MONOTONIC) around the
 * measured loop only (mapping and unmapping are outside it).  Page touches
 * are volatile loads, so the compiler keeps every one.
 *
 * Only include/pcache.h is used: this is a client of the library.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "commands.h"

#define BENCH_DEFAULT_REPS	11
#define BENCH_QUICK_REPS	5
#define BENCH_MAX_REPS		101
#define BENCH_MAX_RESULTS	64
#define BENCH_FAULT_PAGES	4096		/* first-touch section: pages per view */
#define BENCH_READ_SIZE		(64u << 20)	/* sequential-read section: bytes */
#define BENCH_READ_CHUNK	(64u << 10)	/* memcpy size of a mapped read */
#define BENCH_FILL_CHUNK	(1u << 20)	/* pwrite size when filling a file */

struct bench_opts {
	bool quick;
	int reps;
	const char *json;
	const char *plot;		/* --plot FILE.png, or NULL */
	const char *sections;		/* comma-separated names, or NULL: all */
	unsigned fault_threads;		/* 0: the library's default */
};

/* One figure. */
struct bench_result {
	const char *section;
	char name[64];
	const char *unit;		/* "us/page", "GB/s" */
	bool higher_is_better;
	double median, best;
	int reps;
	int ref;			/* index of the reference result, or -1 */
	double faults_per_run;		/* view faults served per run, or -1 */
	double around_per_run;		/* fault-around pages per run, or -1 */
	double wp_per_run;		/* WP faults per run, or -1 */
};

struct bench_section {
	const char *name;
	const char *title;
	int (*run)(void);		/* 0, 77 (skipped, said why), or 1 */
};

static struct bench_opts opts;
static size_t page_size;
static struct bench_result results[BENCH_MAX_RESULTS];
static int nresults;
static const char *cur_section;
static double t_start;
static bool progress_shown;
static volatile uint64_t sink;		/* keeps the touch loops' loads */
static unsigned char *fill_buf;		/* BENCH_FILL_CHUNK bytes of pattern */
static unsigned char *copy_buf;		/* BENCH_READ_CHUNK bytes: read destination */

/* ---- timing and reporting ------------------------------------------------ */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A progress line on stderr once the run has taken more than a second. */
static void progress(const char *fmt, ...)
{
	static double last;
	bool tty = isatty(STDERR_FILENO);
	double t = now();
	va_list ap;

	if (t - t_start < 1.0)
		return;
	/* not a terminal: one plain line a second at most */
	if (!tty && t - last < 1.0)
		return;
	last = t;
	fputs(tty ? "\r\033[Kbench: " : "bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (!tty)
		fputc('\n', stderr);
	progress_shown = tty;
}

static void progress_clear(void)
{
	if (progress_shown)
		fputs("\r\033[K", stderr);
	progress_shown = false;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median and minimum of @n samples (sorts them). */
static void summarize(double *v, int n, double *median, double *min)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	*min = v[0];
	*median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Record a figure from @n per-run times (seconds) for @work units of work
 * per run: "us/page" reports time per unit, "GB/s" units per time.
 * @ref: the index of the figure to compare with, or -1.  Returns the index.
 */
static int add_result(const char *name, const char *unit, double *secs, int n,
		      double work, int ref)
{
	struct bench_result *r;
	double med, min;

	if (nresults == BENCH_MAX_RESULTS)
		return -1;
	r = &results[nresults];
	memset(r, 0, sizeof(*r));
	r->section = cur_section;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->unit = unit;
	r->reps = n;
	r->ref = ref;
	r->faults_per_run = r->around_per_run = r->wp_per_run = -1;
	summarize(secs, n, &med, &min);
	if (!strcmp(unit, "GB/s")) {
		r->higher_is_better = true;
		r->median = work / med / 1e9;
		r->best = work / min / 1e9;
	} else {
		r->median = med / work * 1e6;
		r->best = min / work * 1e6;
	}
	return nresults++;
}

static void set_fault_counts(int idx, const struct pcache_stats *a,
			     const struct pcache_stats *b, int runs)
{
	if (idx < 0)
		return;
	results[idx].faults_per_run = (double)(b->view_faults - a->view_faults) / runs;
	results[idx].around_per_run =
		(double)(b->view_fault_around - a->view_fault_around) / runs;
	results[idx].wp_per_run = (double)(b->view_wp_faults - a->view_wp_faults) / runs;
}

static void print_section(const char *name)
{
	bool any = false;

	for (int i = 0; i < nresults; i++) {
		const struct bench_result *r = &results[i];
		char ratio[32] = "", faults[64] = "";

		if (strcmp(r->section, name))
			continue;
		if (!any) {
			printf("  %-40s %10s %10s %9s  %s\n", "", "median", "best",
			       "vs kernel", "faults per run");
			any = true;
		}
		if (r->ref >= 0 && results[r->ref].median > 0)
			snprintf(ratio, sizeof(ratio), "%8.2fx",
				 r->median / results[r->ref].median);
		else if (r->ref < 0 && strstr(r->name, "kernel"))
			snprintf(ratio, sizeof(ratio), "%9s", "1");
		if (r->faults_per_run >= 0) {
			int n = snprintf(faults, sizeof(faults), "%.0f", r->faults_per_run);

			if (r->around_per_run > 0)
				n += snprintf(faults + n, sizeof(faults) - n, " (+%.0f around)",
					      r->around_per_run);
			if (r->wp_per_run > 0)
				snprintf(faults + n, sizeof(faults) - n, ", %.0f wp",
					 r->wp_per_run);
		}
		printf("  %-40s %10.3f %10.3f %9s  %s\n", r->name, r->median, r->best,
		       ratio, faults);
	}
}

static void json_number(FILE *f, const char *key, double v)
{
	fprintf(f, ", \"%s\": %.6g", key, v);
}

static int write_json_write(FILE *f, int n);

static int write_json(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "pcache bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fputs("[\n", f);
	for (int i = 0; i < nresults; i++) {
		const struct bench_result *r = &results[i];

		/* names are fixed ASCII text without quotes or backslashes */
		fprintf(f, "  {\"section\": \"%s\", \"name\": \"%s\", \"unit\": \"%s\"",
			r->section, r->name, r->unit);
		json_number(f, "median", r->median);
		json_number(f, "best", r->best);
		fprintf(f, ", \"reps\": %d, \"higher_is_better\": %s", r->reps,
			r->higher_is_better ? "true" : "false");
		if (r->ref >= 0) {
			fprintf(f, ", \"reference\": \"%s\"", results[r->ref].name);
			json_number(f, "ratio", r->median / results[r->ref].median);
		}
		if (r->faults_per_run >= 0) {
			json_number(f, "faults_per_run", r->faults_per_run);
			json_number(f, "fault_around_per_run", r->around_per_run);
			json_number(f, "wp_faults_per_run", r->wp_per_run);
		}
		fprintf(f, "}%s\n", i + 1 < nresults ? "," : "");
	}
	write_json_write(f, nresults);
	fputs("]\n", f);
	if (fclose(f)) {
		fprintf(stderr, "pcache bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the files: pcache's and the kernel's --------------------------------- */

/* A cache holding one file of @len bytes, every page cached and uptodate. */
struct pc_file {
	struct pcache *pc;
	int fd;
	size_t len;
};

/*
 * Make a cache with @fault_around pages per view fault and a file of @len
 * bytes written through pcache_pwrite (so every page is cached and
 * uptodate); with @clean, fsync it too (clean pages go into writable views
 * write-protected).  Returns 0 or a negative errno.
 */
static int pc_file_make(struct pc_file *pf, unsigned fault_around, size_t len,
			bool clean)
{
	struct pcache_config cfg;
	int ret;

	memset(pf, 0, sizeof(*pf));
	pf->fd = -1;
	pf->len = len;
	pcache_config_init(&cfg);
	cfg.fault_around_pages = fault_around;
	cfg.fault_threads = opts.fault_threads;
	ret = pcache_create(&cfg, &pf->pc);
	if (ret)
		return ret;
	pf->fd = pcache_open(pf->pc, "bench", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (pf->fd < 0)
		return pf->fd;
	for (size_t off = 0; off < len; off += BENCH_FILL_CHUNK) {
		size_t n = len - off < BENCH_FILL_CHUNK ? len - off : BENCH_FILL_CHUNK;
		ssize_t got = pcache_pwrite(pf->fd, fill_buf, n, (off_t)off);

		if (got != (ssize_t)n)
			return got < 0 ? (int)got : -EIO;
	}
	return clean ? pcache_fsync(pf->fd) : 0;
}

static void pc_file_free(struct pc_file *pf)
{
	if (pf->fd >= 0)
		pcache_close(pf->fd);
	if (pf->pc)
		pcache_destroy(pf->pc);
	memset(pf, 0, sizeof(*pf));
	pf->fd = -1;
}

/* A memfd (tmpfs) of @len bytes written with pwrite: its pages are cached. */
static int kernel_file_make(size_t len)
{
	int fd = memfd_create("pcache-bench", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len; off += BENCH_FILL_CHUNK) {
		size_t n = len - off < BENCH_FILL_CHUNK ? len - off : BENCH_FILL_CHUNK;

		if (pwrite(fd, fill_buf, n, (off_t)off) != (ssize_t)n) {
			int err = -errno;

			close(fd);
			return err ? err : -EIO;
		}
	}
	return fd;
}

/* A view of the whole file, or NULL after saying why (*err set). */
static unsigned char *pc_view(struct pc_file *pf, int prot, int *err)
{
	void *v = pcache_mmap(pf->fd, pf->len, prot, 0);

	if (PCACHE_IS_ERR(v)) {
		*err = PCACHE_PTR_ERR(v);
		progress_clear();
		if (*err == -EOPNOTSUPP)
			printf("  skipped: views are not supported here (pcache_mmap: %s)\n",
			       pcache_strerror(*err));
		else
			fprintf(stderr, "pcache bench: pcache_mmap: %s\n", pcache_strerror(*err));
		return NULL;
	}
	return v;
}

static unsigned char *kernel_view(int fd, size_t len, int prot)
{
	void *v = mmap(NULL, len, prot, MAP_SHARED, fd, 0);

	if (v == MAP_FAILED) {
		fprintf(stderr, "pcache bench: mmap: %s\n", strerror(errno));
		return NULL;
	}
	return v;
}

/* ---- the measured loops --------------------------------------------------- */

/* Load one byte of each page, in order.  Returns the seconds it took. */
static double touch_read(const unsigned char *p, size_t pages)
{
	const volatile unsigned char *v = p;
	uint64_t sum = 0;
	double t0 = now();

	for (size_t i = 0; i < pages; i++)
		sum += v[i * page_size];
	t0 = now() - t0;
	sink += sum;
	return t0;
}

/* Store one byte to each page, in order (the byte it already holds). */
static double touch_write(unsigned char *p, size_t pages)
{
	volatile unsigned char *v = p;
	double t0 = now();

	for (size_t i = 0; i < pages; i++)
		v[i * page_size] = fill_buf[(i * page_size) % BENCH_FILL_CHUNK];
	return now() - t0;
}

/* Copy the whole mapping out, BENCH_READ_CHUNK at a time (as read(2) would). */
static double read_seq(const unsigned char *p, size_t len)
{
	double t0 = now();

	for (size_t off = 0; off < len; off += BENCH_READ_CHUNK) {
		memcpy(copy_buf, p + off, BENCH_READ_CHUNK);
		__asm__ __volatile__("" : : "r"(copy_buf) : "memory");
	}
	return now() - t0;
}

/* ---- section: first-touch fault cost -------------------------------------- */

/*
 * A view of a file whose pages are all cached and uptodate but not mapped
 * in the view: one load per page, in order.  A fresh view every run, so
 * every run faults every page in; the cost per page is the handler's round
 * trip divided by the pages each fault installs (fault-around).  The
 * reference is the kernel's first touch of a fresh MAP_SHARED mapping of a
 * memfd whose pages are cached (the kernel's own fault-around applies).
 */
static int bench_view_fault(void)
{
	static const unsigned around[] = { 1, 16, 64, 256 };
	size_t pages = BENCH_FAULT_PAGES, len = pages * page_size;
	double secs[BENCH_MAX_REPS];
	int kref, kfd, err = 0;

	kfd = kernel_file_make(len);
	if (kfd < 0) {
		fprintf(stderr, "pcache bench: memfd: %s\n", strerror(-kfd));
		return 1;
	}
	for (int r = 0; r < opts.reps; r++) {
		unsigned char *v = kernel_view(kfd, len, PROT_READ);

		if (!v) {
			close(kfd);
			return 1;
		}
		progress("%s: kernel (%d/%d)", cur_section, r + 1, opts.reps);
		secs[r] = touch_read(v, pages);
		munmap(v, len);
	}
	close(kfd);
	kref = add_result("kernel, memfd MAP_SHARED", "us/page", secs, opts.reps,
			  (double)pages, -1);

	for (size_t a = 0; a < sizeof(around) / sizeof(around[0]); a++) {
		struct pcache_stats st0, st1;
		struct pc_file pf;
		char name[64];
		int idx;

		err = pc_file_make(&pf, around[a], len, false);
		if (err) {
			fprintf(stderr, "pcache bench: setting up a cache: %s\n",
				pcache_strerror(err));
			pc_file_free(&pf);
			return 1;
		}
		pcache_stats(pf.pc, &st0);
		for (int r = 0; r < opts.reps; r++) {
			unsigned char *v = pc_view(&pf, PROT_READ, &err);

			if (!v) {
				pc_file_free(&pf);
				return err == -EOPNOTSUPP ? 77 : 1;
			}
			progress("%s: pcache, fault-around %u (%d/%d)", cur_section,
				 around[a], r + 1, opts.reps);
			secs[r] = touch_read(v, pages);
			pcache_munmap(v, len);
		}
		pcache_stats(pf.pc, &st1);
		pc_file_free(&pf);
		snprintf(name, sizeof(name), "pcache, fault-around %u%s", around[a],
			 around[a] == 1 ? " (off)" : "");
		idx = add_result(name, "us/page", secs, opts.reps, (double)pages, kref);
		set_fault_counts(idx, &st0, &st1, opts.reps);
	}
	return 0;
}

/* ---- section: sequential mapped reads ------------------------------------- */

/*
 * Copy a whole 64 MiB mapping out, 64 KiB at a time: cold (a fresh
 * mapping, so every page faults in on the way) and warm (the same mapping
 * again, every page present).  pcache with fault-around 16 (the default)
 * and 64; the kernel's memfd as the reference.
 */
static int bench_view_read(void)
{
	static const unsigned around[] = { 16, 64, 256 };
	size_t len = BENCH_READ_SIZE;
	double cold[BENCH_MAX_REPS], warm[BENCH_MAX_REPS];
	int kcold, kwarm, kfd, err = 0;
	unsigned char *v;

	kfd = kernel_file_make(len);
	if (kfd < 0) {
		fprintf(stderr, "pcache bench: memfd: %s\n", strerror(-kfd));
		return 1;
	}
	for (int r = 0; r < opts.reps; r++) {
		progress("%s: kernel (%d/%d)", cur_section, r + 1, opts.reps);
		v = kernel_view(kfd, len, PROT_READ);
		if (!v) {
			close(kfd);
			return 1;
		}
		cold[r] = read_seq(v, len);
		warm[r] = read_seq(v, len);
		munmap(v, len);
	}
	close(kfd);
	kcold = add_result("kernel, memfd MAP_SHARED, cold", "GB/s", cold, opts.reps,
			   (double)len, -1);
	kwarm = add_result("kernel, memfd MAP_SHARED, warm", "GB/s", warm, opts.reps,
			   (double)len, -1);

	for (size_t a = 0; a < sizeof(around) / sizeof(around[0]); a++) {
		struct pcache_stats st0, st1;
		struct pc_file pf;
		char name[64];
		int idx;

		err = pc_file_make(&pf, around[a], len, false);
		if (err) {
			fprintf(stderr, "pcache bench: setting up a cache: %s\n",
				pcache_strerror(err));
			pc_file_free(&pf);
			return 1;
		}
		pcache_stats(pf.pc, &st0);
		for (int r = 0; r < opts.reps; r++) {
			progress("%s: pcache, fault-around %u (%d/%d)", cur_section,
				 around[a], r + 1, opts.reps);
			v = pc_view(&pf, PROT_READ, &err);
			if (!v) {
				pc_file_free(&pf);
				return err == -EOPNOTSUPP ? 77 : 1;
			}
			cold[r] = read_seq(v, len);
			warm[r] = read_seq(v, len);
			pcache_munmap(v, len);
		}
		pcache_stats(pf.pc, &st1);
		pc_file_free(&pf);
		snprintf(name, sizeof(name), "pcache, fault-around %u, cold", around[a]);
		idx = add_result(name, "GB/s", cold, opts.reps, (double)len, kcold);
		set_fault_counts(idx, &st0, &st1, opts.reps);
		snprintf(name, sizeof(name), "pcache, fault-around %u, warm", around[a]);
		add_result(name, "GB/s", warm, opts.reps, (double)len, kwarm);
	}
	return 0;
}

/* ---- section: write faults ------------------------------------------------ */

/*
 * The first store to a clean page: page_mkwrite.  pcache maps clean pages
 * write-protected; a store raises a WP fault that marks the page dirty and
 * unprotects it.  Measured on a writable view whose 4096 clean pages are
 * all mapped (pcache_mlock), one store per page, then msync(MS_SYNC) (not
 * timed) cleans and re-protects them for the next run.  Also: the first
 * store to a cached page not mapped yet (a write fault, which maps it and
 * dirties it, plus fault-around neighbours mapped write-protected).
 * The kernel's reference is its first store to a fresh MAP_SHARED memfd
 * mapping (shmem has no page_mkwrite, so this is not the same operation:
 * it is what a store fault costs there).
 */
static int bench_view_wp(void)
{
	size_t pages = BENCH_FAULT_PAGES, len = pages * page_size;
	double secs[BENCH_MAX_REPS];
	struct pcache_stats st0, st1;
	struct pc_file pf;
	int kref, kfd, idx, err, ret = 1;
	unsigned char *v;

	kfd = kernel_file_make(len);
	if (kfd < 0) {
		fprintf(stderr, "pcache bench: memfd: %s\n", strerror(-kfd));
		return 1;
	}
	for (int r = 0; r < opts.reps; r++) {
		progress("%s: kernel (%d/%d)", cur_section, r + 1, opts.reps);
		v = kernel_view(kfd, len, PROT_READ | PROT_WRITE);
		if (!v) {
			close(kfd);
			return 1;
		}
		secs[r] = touch_write(v, pages);
		munmap(v, len);
	}
	close(kfd);
	kref = add_result("kernel, first store, fresh mapping", "us/page", secs,
			  opts.reps, (double)pages, -1);

	err = pc_file_make(&pf, 0, len, true);
	if (err) {
		fprintf(stderr, "pcache bench: setting up a cache: %s\n", pcache_strerror(err));
		goto out;
	}
	/* WP faults: every page mapped and clean, then one store each */
	v = pc_view(&pf, PROT_READ | PROT_WRITE, &err);
	if (!v) {
		ret = err == -EOPNOTSUPP ? 77 : 1;
		goto out;
	}
	err = pcache_mlock(v, len);
	if (err) {
		fprintf(stderr, "pcache bench: pcache_mlock: %s\n", pcache_strerror(err));
		pcache_munmap(v, len);
		goto out;
	}
	pcache_stats(pf.pc, &st0);
	for (int r = 0; r < opts.reps; r++) {
		progress("%s: pcache, WP faults (%d/%d)", cur_section, r + 1, opts.reps);
		secs[r] = touch_write(v, pages);
		pcache_msync(v, len, MS_SYNC);	/* clean + write-protect again */
	}
	pcache_stats(pf.pc, &st1);
	pcache_munmap(v, len);
	idx = add_result("pcache, WP fault (page mapped, clean)", "us/page", secs,
			 opts.reps, (double)pages, kref);
	set_fault_counts(idx, &st0, &st1, opts.reps);

	/* first store to cached pages not mapped yet (default fault-around) */
	pcache_stats(pf.pc, &st0);
	for (int r = 0; r < opts.reps; r++) {
		progress("%s: pcache, first store (%d/%d)", cur_section, r + 1, opts.reps);
		v = pc_view(&pf, PROT_READ | PROT_WRITE, &err);
		if (!v)
			goto out;
		secs[r] = touch_write(v, pages);
		pcache_msync(v, len, MS_SYNC);
		pcache_munmap(v, len);
	}
	pcache_stats(pf.pc, &st1);
	idx = add_result("pcache, first store, fresh view", "us/page", secs,
			 opts.reps, (double)pages, kref);
	set_fault_counts(idx, &st0, &st1, opts.reps);
	ret = 0;
out:
	pc_file_free(&pf);
	return ret;
}

/* ---- section: write strategies -------------------------------------------- */

/*
 * Buffered writes, measured in one run on the same buffers: memcpy (the
 * limit: one copy), each pcache write strategy, the memory backend's
 * perform_write, and the kernel's pwrite into a memfd (tmpfs).
 *
 *  - sizes 64 B .. 1 MiB; workloads: overwrite of cached pages (files
 *    pre-filled to BENCH_W_FILE bytes, offsets cycle through the range) and
 *    append (the file truncated to 0 before each run, outside the timing;
 *    writes at increasing offsets, new pages, at most the range per run);
 *  - sources: anonymous memory, or a pre-faulted read-only view
 *    (pcache_mmap + pcache_mlock) of a file of another cache;
 *  - threads: 1; 2 on two files; 2 on one file at disjoint halves.
 *
 * Each run does at most BENCH_W_OPS ops (BENCH_W_OPS_QUICK with --quick)
 * and at most BENCH_W_BYTES bytes per thread.  The time of a 2-thread run is
 * from the first thread's start to the last thread's end; GB/s and ns/op
 * are aggregates (all bytes / wall time, wall time / all ops).
 * memcpy copies into a pre-faulted anonymous buffer at the same offsets (it
 * never allocates pages, also for append).
 */
#define BENCH_W_FILE		(32u << 20)	/* bytes per destination file */
#define BENCH_W_SRC		(16u << 20)	/* bytes of each source */
#define BENCH_W_OPS		40000u
#define BENCH_W_OPS_QUICK	10000u
#define BENCH_W_BYTES		(128u << 20)
#define BENCH_W_BYTES_QUICK	(32u << 20)
#define BENCH_W_MAX		600

enum { WM_MEMCPY, WM_KERNEL, WM_STRAT0 /* + strategy */,
       WM_PERFORM = WM_STRAT0 + PCACHE_WRITE_NR, WM_NR };
enum { WL_1, WL_2FILES, WL_2SAME, WL_NR };
static const size_t w_sizes[] = { 64, 512, 4096, 65536, 1u << 20 };
#define W_NSIZES (sizeof(w_sizes) / sizeof(w_sizes[0]))

struct wresult {
	const char *workload, *source, *method;
	size_t size;
	int threads;
	const char *layout;		/* "one file", "different files", "same file" */
	double gbps, ns_per_op, best_gbps;
	double vs_memcpy, vs_kernel;	/* ratios of median throughput, or 0 */
	int reps;
};

static struct wresult wresults[BENCH_W_MAX];
static int nwresults;

static const char *wm_name(int m)
{
	if (m == WM_MEMCPY)
		return "memcpy";
	if (m == WM_KERNEL)
		return "kernel pwrite";
	if (m == WM_PERFORM)
		return "perform_write";
	return pcache_strategy_name(m - WM_STRAT0);
}

/* The destinations: per method, two files (or two buffers for memcpy). */
struct wdest {
	int fd[2];		/* pcache or kernel descriptors */
	unsigned char *buf[2];	/* memcpy */
};

struct wjob {
	int method;
	int fd;
	unsigned char *dst;
	const unsigned char *src;
	size_t src_off, size, ops;
	off_t base;
	size_t range;
	pthread_barrier_t *bar;
	double t0, t1;
	int err;
};

static void *wjob_run(void *arg)
{
	struct wjob *j = arg;
	size_t off = 0, soff = j->src_off;

	if (j->bar)
		pthread_barrier_wait(j->bar);
	j->t0 = now();
	for (size_t i = 0; i < j->ops; i++) {
		const unsigned char *s = j->src + soff;

		if (j->method == WM_MEMCPY) {
			memcpy(j->dst + j->base + off, s, j->size);
			__asm__ __volatile__("" : : "r"(j->dst) : "memory");
		} else if (j->method == WM_KERNEL) {
			if (pwrite(j->fd, s, j->size, j->base + (off_t)off) != (ssize_t)j->size) {
				j->err = errno ? -errno : -EIO;
				break;
			}
		} else {
			ssize_t n = pcache_pwrite(j->fd, s, j->size, j->base + (off_t)off);

			if (n != (ssize_t)j->size) {
				j->err = n < 0 ? (int)n : -EIO;
				break;
			}
		}
		off += j->size;
		if (off + j->size > j->range)
			off = 0;
		soff += j->size;
		if (soff + j->size > BENCH_W_SRC)
			soff = 0;
	}
	j->t1 = now();
	return NULL;
}

static int w_truncate(int method, int fd, off_t len)
{
	if (method == WM_MEMCPY)
		return 0;
	if (method == WM_KERNEL)
		return ftruncate(fd, len) ? -errno : 0;
	return pcache_ftruncate(fd, len);
}

/* Make a destination file whole again (BENCH_W_FILE bytes of data, cached). */
static int w_fill(int method, int fd)
{
	for (size_t off = 0; off < BENCH_W_FILE; off += BENCH_FILL_CHUNK) {
		ssize_t n = method == WM_KERNEL ?
			pwrite(fd, fill_buf, BENCH_FILL_CHUNK, (off_t)off) :
			pcache_pwrite(fd, fill_buf, BENCH_FILL_CHUNK, (off_t)off);

		if (n != BENCH_FILL_CHUNK)
			return n < 0 ? (method == WM_KERNEL ? -errno : (int)n) : -EIO;
	}
	return 0;
}

static int w_size_of(int method, int fd, off_t *size)
{
	struct stat st;
	int ret = method == WM_KERNEL ? (fstat(fd, &st) ? -errno : 0) : pcache_fstat(fd, &st);

	*size = ret ? 0 : st.st_size;
	return ret;
}

/*
 * One measurement: @reps runs of @method writing @size-byte ops.  Returns 0
 * and the per-run seconds in @secs, ops per run in *total_ops.
 */
static int w_measure(int method, struct wdest *d, const unsigned char *src, bool append,
		     int layout, size_t size, double *secs, size_t *total_ops)
{
	int nthreads = layout == WL_1 ? 1 : 2;
	size_t range = layout == WL_2SAME ? BENCH_W_FILE / 2 : BENCH_W_FILE;
	size_t maxops = opts.quick ? BENCH_W_OPS_QUICK : BENCH_W_OPS;
	size_t maxbytes = opts.quick ? BENCH_W_BYTES_QUICK : BENCH_W_BYTES;
	size_t ops = maxbytes / size < maxops ? maxbytes / size : maxops;
	struct wjob jobs[2];
	pthread_barrier_t bar;
	int ret = 0;

	if (append && ops > range / size)
		ops = range / size;
	if (ops < 1)
		ops = 1;
	*total_ops = ops * (size_t)nthreads;
	if (method != WM_MEMCPY && !append) {
		for (int t = 0; t < (layout == WL_2FILES ? 2 : 1); t++) {
			off_t sz;

			ret = w_size_of(method, d->fd[t], &sz);
			if (!ret && sz < (off_t)BENCH_W_FILE)
				ret = w_fill(method, d->fd[t]);
			if (ret)
				return ret;
		}
	}
	if (method >= WM_STRAT0 && method < WM_PERFORM) {
		for (int t = 0; t < 2; t++) {
			ret = pcache_set_write_strategy(d->fd[t], method - WM_STRAT0);
			if (ret)
				return ret;
		}
	}
	for (int r = 0; r < opts.reps && !ret; r++) {
		pthread_t th[2];

		if (append) {
			for (int t = 0; t < (layout == WL_2FILES ? 2 : 1) && !ret; t++)
				ret = w_truncate(method, d->fd[t], 0);
			if (ret)
				break;
		}
		for (int t = 0; t < nthreads; t++) {
			struct wjob *j = &jobs[t];
			int f = layout == WL_2FILES ? t : 0;

			memset(j, 0, sizeof(*j));
			j->method = method;
			j->fd = d->fd[f];
			j->dst = d->buf[f];
			j->src = src;
			j->src_off = t * (BENCH_W_SRC / 2);
			j->size = size;
			j->ops = ops;
			j->base = layout == WL_2SAME ? (off_t)(t * range) : 0;
			j->range = range;
		}
		if (nthreads == 1) {
			wjob_run(&jobs[0]);
			secs[r] = jobs[0].t1 - jobs[0].t0;
			ret = jobs[0].err;
			continue;
		}
		pthread_barrier_init(&bar, NULL, 2);
		jobs[0].bar = jobs[1].bar = &bar;
		if (pthread_create(&th[0], NULL, wjob_run, &jobs[0])) {
			pthread_barrier_destroy(&bar);
			return -EAGAIN;
		}
		if (pthread_create(&th[1], NULL, wjob_run, &jobs[1])) {
			/* let the first one go alone: it waits on the barrier */
			jobs[1].bar = NULL;
			pthread_barrier_wait(&bar);
			pthread_join(th[0], NULL);
			pthread_barrier_destroy(&bar);
			return -EAGAIN;
		}
		pthread_join(th[0], NULL);
		pthread_join(th[1], NULL);
		pthread_barrier_destroy(&bar);
		secs[r] = (jobs[0].t1 > jobs[1].t1 ? jobs[0].t1 : jobs[1].t1) -
			  (jobs[0].t0 < jobs[1].t0 ? jobs[0].t0 : jobs[1].t0);
		ret = jobs[0].err ? jobs[0].err : jobs[1].err;
	}
	return ret;
}

static struct pcache *w_caches[2];	/* strategies (per fd), perform_write */
static struct pcache *w_src_cache;
static int w_src_fd = -1;
static unsigned char *w_src_view, *w_src_anon;
static struct wdest w_dest[WM_NR];

static void w_teardown(void)
{
	for (int m = 0; m < WM_NR; m++) {
		for (int t = 0; t < 2; t++) {
			if (m == WM_MEMCPY && w_dest[m].buf[t])
				munmap(w_dest[m].buf[t], BENCH_W_FILE);
			else if (m == WM_KERNEL && w_dest[m].fd[t] >= 0)
				close(w_dest[m].fd[t]);
			else if (m != WM_MEMCPY && m != WM_KERNEL && w_dest[m].fd[t] >= 0)
				pcache_close(w_dest[m].fd[t]);
		}
	}
	memset(w_dest, 0, sizeof(w_dest));
	if (w_src_view)
		pcache_munmap(w_src_view, BENCH_W_SRC);
	if (w_src_fd >= 0)
		pcache_close(w_src_fd);
	if (w_src_cache)
		pcache_destroy(w_src_cache);
	for (int i = 0; i < 2; i++)
		if (w_caches[i])
			pcache_destroy(w_caches[i]);
	if (w_src_anon)
		munmap(w_src_anon, BENCH_W_SRC);
	w_src_view = w_src_anon = NULL;
	w_src_fd = -1;
	w_src_cache = w_caches[0] = w_caches[1] = NULL;
}

static int w_setup(void)
{
	struct pcache_config cfg;
	int ret;
	void *v;

	for (int m = 0; m < WM_NR; m++)
		w_dest[m].fd[0] = w_dest[m].fd[1] = -1;
	for (int i = 0; i < 2; i++) {
		pcache_config_init(&cfg);
		cfg.mem_limit = 4ull * BENCH_W_FILE * 2;
		cfg.write_strategy = PCACHE_WRITE_BOUNCE;
		cfg.perform_write = i;
		ret = pcache_create(&cfg, &w_caches[i]);
		if (ret)
			return ret;
	}
	for (int m = 0; m < WM_NR; m++) {
		for (int t = 0; t < 2; t++) {
			static const char *const names[2] = { "a", "b" };

			if (m == WM_MEMCPY) {
				v = mmap(NULL, BENCH_W_FILE, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
				if (v == MAP_FAILED)
					return -errno;
				w_dest[m].buf[t] = v;
				memset(v, 0x5a, BENCH_W_FILE);
			} else if (m == WM_KERNEL) {
				w_dest[m].fd[t] = memfd_create("pcache-bench-w", MFD_CLOEXEC);
				if (w_dest[m].fd[t] < 0)
					return -errno;
			} else if (m == WM_PERFORM || m == WM_STRAT0) {
				/* one pair of files per cache; the strategies share theirs */
				w_dest[m].fd[t] = pcache_open(w_caches[m == WM_PERFORM], names[t],
							      O_RDWR | O_CREAT | O_TRUNC, 0644);
				if (w_dest[m].fd[t] < 0)
					return w_dest[m].fd[t];
			} else {
				w_dest[m].fd[t] = pcache_open(w_caches[0], names[t], O_RDWR, 0);
				if (w_dest[m].fd[t] < 0)
					return w_dest[m].fd[t];
			}
		}
	}
	/* sources: anonymous memory, and a pre-faulted view of another cache's file */
	v = mmap(NULL, BENCH_W_SRC, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (v == MAP_FAILED)
		return -errno;
	w_src_anon = v;
	for (size_t off = 0; off < BENCH_W_SRC; off += BENCH_FILL_CHUNK)
		memcpy(w_src_anon + off, fill_buf, BENCH_FILL_CHUNK);
	pcache_config_init(&cfg);
	cfg.fault_around_pages = 256;
	ret = pcache_create(&cfg, &w_src_cache);
	if (ret)
		return ret;
	w_src_fd = pcache_open(w_src_cache, "src", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (w_src_fd < 0)
		return w_src_fd;
	if (pcache_pwrite(w_src_fd, w_src_anon, BENCH_W_SRC, 0) != BENCH_W_SRC)
		return -EIO;
	ret = pcache_fsync(w_src_fd);
	if (ret)
		return ret;
	v = pcache_mmap(w_src_fd, BENCH_W_SRC, PROT_READ, 0);
	if (PCACHE_IS_ERR(v))
		return PCACHE_PTR_ERR(v);
	w_src_view = v;
	return pcache_mlock(w_src_view, BENCH_W_SRC);
}

static const char *size_name(size_t size, char *buf, size_t n)
{
	if (size >= (1u << 20))
		snprintf(buf, n, "%zu MiB", size >> 20);
	else if (size >= 1024)
		snprintf(buf, n, "%zu KiB", size >> 10);
	else
		snprintf(buf, n, "%zu B", size);
	return buf;
}

static int bench_write(void)
{
	static const char *const layouts[WL_NR] = { "one file", "different files", "same file" };
	double secs[BENCH_MAX_REPS];
	int ret, groups = 0, ngroups = 2 * 2 * WL_NR;

	ret = w_setup();
	if (ret) {
		progress_clear();
		if (ret == -EOPNOTSUPP)
			printf("  skipped: views are not supported here (%s)\n", pcache_strerror(ret));
		else
			fprintf(stderr, "pcache bench: write setup: %s\n", pcache_strerror(ret));
		w_teardown();
		return ret == -EOPNOTSUPP ? 77 : 1;
	}
	for (int wl = 0; wl < 2; wl++) {
		for (int s = 0; s < 2; s++) {
			const unsigned char *src = s ? w_src_view : w_src_anon;

			for (int lay = 0; lay < WL_NR; lay++) {
				groups++;
				for (size_t z = 0; z < W_NSIZES; z++) {
					int first = nwresults;
					char sz[24];

					for (int m = 0; m < WM_NR && nwresults < BENCH_W_MAX; m++) {
						struct wresult *w = &wresults[nwresults];
						double med, min;
						size_t ops;

						progress("%s: group %d/%d, %s, %s", cur_section, groups,
							 ngroups, size_name(w_sizes[z], sz, sizeof(sz)),
							 wm_name(m));
						ret = w_measure(m, &w_dest[m], src, wl == 1, lay,
								w_sizes[z], secs, &ops);
						if (ret) {
							progress_clear();
							fprintf(stderr, "pcache bench: write, %s: %s\n",
								wm_name(m), pcache_strerror(ret));
							w_teardown();
							return 1;
						}
						summarize(secs, opts.reps, &med, &min);
						memset(w, 0, sizeof(*w));
						w->workload = wl ? "append" : "overwrite";
						w->source = s ? "view" : "anon";
						w->method = wm_name(m);
						w->size = w_sizes[z];
						w->threads = lay == WL_1 ? 1 : 2;
						w->layout = layouts[lay];
						w->gbps = (double)ops * w_sizes[z] / med / 1e9;
						w->best_gbps = (double)ops * w_sizes[z] / min / 1e9;
						w->ns_per_op = med / (double)ops * 1e9;
						w->reps = opts.reps;
						nwresults++;
					}
					for (int i = first; i < nwresults; i++) {
						wresults[i].vs_memcpy = wresults[i].gbps /
									wresults[first + WM_MEMCPY].gbps;
						wresults[i].vs_kernel = wresults[i].gbps /
									wresults[first + WM_KERNEL].gbps;
					}
				}
			}
		}
	}
	w_teardown();
	return 0;
}

static void print_write(void)
{
	const char *wl = NULL, *src = NULL, *lay = NULL;
	size_t size = 0;

	for (int i = 0; i < nwresults; i++) {
		const struct wresult *w = &wresults[i];
		char sz[24];

		if (w->workload != wl || w->source != src || w->layout != lay) {
			wl = w->workload;
			src = w->source;
			lay = w->layout;
			size = 0;
			printf("\n  %s, source %s, %d thread%s%s%s\n", wl,
			       !strcmp(src, "anon") ? "anonymous memory" : "a view of a cached file",
			       w->threads, w->threads > 1 ? "s" : "",
			       w->threads > 1 ? ", " : "", w->threads > 1 ? lay : "");
			printf("  %-8s %-14s %9s %10s %9s %9s\n", "size", "method", "GB/s",
			       "ns/op", "x memcpy", "x kernel");
		}
		printf("  %-8s %-14s %9.3f %10.1f %9.2f %9.2f\n",
		       w->size != size ? size_name(w->size, sz, sizeof(sz)) : "",
		       w->method, w->gbps, w->ns_per_op, w->vs_memcpy, w->vs_kernel);
		size = w->size;
	}
}

static const struct wresult *w_find(const char *wl, const char *src, const char *lay,
				    size_t size, const char *method)
{
	for (int i = 0; i < nwresults; i++) {
		const struct wresult *w = &wresults[i];

		if (!strcmp(w->workload, wl) && !strcmp(w->source, src) &&
		    !strcmp(w->layout, lay) && w->size == size && !strcmp(w->method, method))
			return w;
	}
	return NULL;
}

/* The best of the five write strategies (by median GB/s). */
static const struct wresult *w_best(const char *wl, const char *src, const char *lay,
				    size_t size)
{
	const struct wresult *best = NULL;

	for (int m = WM_STRAT0; m < WM_PERFORM; m++) {
		const struct wresult *w = w_find(wl, src, lay, size, wm_name(m));

		if (w && (!best || w->gbps > best->gbps))
			best = w;
	}
	return best;
}

/* The targets, checked against this run (anonymous source). */
static void print_write_targets(void)
{
	const struct wresult *b, *k, *bo, *one, *two;
	static const size_t ksizes[] = { 4096, 64 };
	static const double kgoal[] = { 3, 6 };

	if (!nwresults)
		return;
	printf("\n  targets (this run, anonymous source, medians; best of the five"
	       " strategies, perform_write in brackets):\n");
	b = w_best("overwrite", "anon", "one file", 1u << 20);
	if (b)
		printf("  %-6s best strategy >= 0.95x memcpy, 1 MiB overwrite: %s %.2fx"
		       " (perform_write %.2fx)\n",
		       b->vs_memcpy >= 0.95 ? "met" : "MISSED", b->method, b->vs_memcpy,
		       w_find("overwrite", "anon", "one file", 1u << 20, "perform_write")->vs_memcpy);
	for (int i = 0; i < 2; i++) {
		char sz[24];

		b = w_best("overwrite", "anon", "one file", ksizes[i]);
		if (b)
			printf("  %-6s best strategy >= %.0fx kernel pwrite, %s overwrite:"
			       " %s %.2fx (perform_write %.2fx)\n",
			       b->vs_kernel >= kgoal[i] ? "met" : "MISSED",
			       kgoal[i], size_name(ksizes[i], sz, sizeof(sz)), b->method,
			       b->vs_kernel, w_find("overwrite", "anon", "one file", ksizes[i],
						    "perform_write")->vs_kernel);
	}
	for (size_t z = 0; z < W_NSIZES; z++) {
		char sz[24];

		b = w_best("overwrite", "anon", "one file", w_sizes[z]);
		bo = w_find("overwrite", "anon", "one file", w_sizes[z], "bounce-opt");
		if (b && bo)
			printf("  %-6s bounce-opt within 10%% of the best, %s overwrite:"
			       " %.2fx of %s\n", bo->gbps >= 0.9 * b->gbps ? "met" : "MISSED",
			       size_name(w_sizes[z], sz, sizeof(sz)), bo->gbps / b->gbps,
			       b->method);
	}
	for (size_t z = 0; z < W_NSIZES; z++) {
		char sz[24];

		one = w_best("overwrite", "anon", "one file", w_sizes[z]);
		if (!one)
			continue;
		two = w_find("overwrite", "anon", "different files", w_sizes[z], one->method);
		k = w_find("overwrite", "anon", "different files", w_sizes[z], "memcpy");
		if (two)
			printf("  %-6s 2 threads, 2 files >= 1.8x 1 thread, %s overwrite, %s:"
			       " %.2fx (memcpy: %.2fx)\n",
			       two->gbps >= 1.8 * one->gbps ? "met" : "MISSED",
			       size_name(w_sizes[z], sz, sizeof(sz)), one->method,
			       two->gbps / one->gbps,
			       k ? k->gbps / w_find("overwrite", "anon", "one file",
						    w_sizes[z], "memcpy")->gbps : 0);
	}
}

/* The write section's figures, after @n earlier objects. */
static int write_json_write(FILE *f, int n)
{
	for (int i = 0; i < nwresults; i++) {
		const struct wresult *w = &wresults[i];

		fprintf(f, "%s  {\"section\": \"write\", \"workload\": \"%s\", \"source\": \"%s\","
			" \"method\": \"%s\", \"size\": %zu, \"threads\": %d, \"layout\": \"%s\"",
			n + i ? ",\n" : "", w->workload, w->source, w->method, w->size,
			w->threads, w->layout);
		json_number(f, "gbps", w->gbps);
		json_number(f, "ns_per_op", w->ns_per_op);
		json_number(f, "best_gbps", w->best_gbps);
		json_number(f, "vs_memcpy", w->vs_memcpy);
		json_number(f, "vs_kernel", w->vs_kernel);
		fprintf(f, ", \"reps\": %d, \"unit\": \"GB/s\", \"higher_is_better\": true}", w->reps);
	}
	if (nwresults)
		fputc('\n', f);
	return 0;
}

/*
 * --plot: GB/s against write size, one curve per method, for overwrite and
 * append from anonymous memory on one thread, drawn by gnuplot.
 */
static bool have_gnuplot(void)
{
	return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

static int write_plot(const char *png)
{
	static const char *const wls[2] = { "overwrite", "append" };
	char dat[] = "/tmp/pcache-bench-XXXXXX";
	int dfd = mkstemp(dat), status;
	FILE *f, *g;

	if (dfd < 0 || !(f = fdopen(dfd, "w"))) {
		fprintf(stderr, "pcache bench: --plot: temporary file: %s\n", strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	/* one block per (workload, method), separated by two blank lines */
	for (int w = 0; w < 2; w++)
		for (int m = 0; m < WM_NR; m++) {
			for (size_t z = 0; z < W_NSIZES; z++) {
				const struct wresult *r = w_find(wls[w], "anon", "one file",
								 w_sizes[z], wm_name(m));

				if (r)
					fprintf(f, "%zu %.6g\n", r->size, r->gbps);
			}
			fputs("\n\n", f);
		}
	fclose(f);
	g = popen("gnuplot", "w");
	if (!g) {
		fprintf(stderr, "pcache bench: --plot: cannot run gnuplot: %s\n", strerror(errno));
		unlink(dat);
		return -1;
	}
	fprintf(g, "set terminal pngcairo size 1400,600 noenhanced\n");
	fprintf(g, "set output '%s'\n", png);
	fprintf(g, "set multiplot layout 1,2\n");
	fprintf(g, "set logscale x 2\nset xlabel 'write size (bytes)'\nset ylabel 'GB/s'\n");
	fprintf(g, "set key top left\nset grid\n");
	fprintf(g, "set xtics (\"64\" 64, \"512\" 512, \"4K\" 4096, \"64K\" 65536,"
		" \"1M\" 1048576)\n");
	for (int w = 0; w < 2; w++) {
		fprintf(g, "set title '%s, anonymous source, 1 thread'\nplot ", wls[w]);
		for (int m = 0; m < WM_NR; m++)
			fprintf(g, "%s'%s' index %d with linespoints title '%s'", m ? ", " : "",
				dat, w * WM_NR + m, wm_name(m));
		fputc('\n', g);
	}
	fprintf(g, "unset multiplot\n");
	status = pclose(g);
	unlink(dat);
	if (status) {
		fprintf(stderr, "pcache bench: --plot: gnuplot failed (status %d)\n", status);
		return -1;
	}
	return 0;
}

/* ---- the command ---------------------------------------------------------- */

/* tools/bench_dir.c prints its own tables. */
static int bench_dir_section(void)
{
	return bench_dir(opts.quick, opts.reps);
}

static const struct bench_section bench_sections[] = {
	{ "view-fault", "first touch of a cached page through a view (us per page, lower is better)",
	  bench_view_fault },
	{ "view-read", "sequential mapped read, 64 MiB, memcpy 64 KiB at a time (GB/s, higher is better)",
	  bench_view_read },
	{ "view-wp", "store faults (us per page, lower is better)",
	  bench_view_wp },
	{ "write", "buffered writes: memcpy, the write strategies, perform_write, kernel pwrite (GB/s, higher is better)",
	  bench_write },
	{ "dir", "the dir backend: writeback by pwritev vs io_uring, calls per MiB, fill + fsync vs the kernel",
	  bench_dir_section },
};

#define NR_SECTIONS (sizeof(bench_sections) / sizeof(bench_sections[0]))

static bool section_selected(const char *name)
{
	const char *p = opts.sections;
	size_t n = strlen(name);

	if (!p)
		return true;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

static void usage(FILE *out)
{
	fprintf(out,
"usage: pcache bench [options]\n"
"\n"
"Benchmarks measured side by side in one run, each against the kernel's own\n"
"page cache (a memfd mapped MAP_SHARED) as the reference.  Each figure is\n"
"the median of --reps runs (the best run is shown too); ratios use medians.\n"
"\n"
"  --quick              fewer repetitions (%d instead of %d)\n"
"  --reps N             repetitions of each measurement, 1-%d\n"
"  --section LIST       run only these sections (comma-separated)\n"
"  --json FILE          also write every figure to FILE, as a JSON array\n"
"  --plot FILE.png      draw the write section (GB/s by size) with gnuplot\n"
"  --fault-threads N    view fault handler threads (default: the library's)\n"
"  --help               this text\n"
"\n"
"sections:\n", BENCH_QUICK_REPS, BENCH_DEFAULT_REPS, BENCH_MAX_REPS);
	for (size_t i = 0; i < NR_SECTIONS; i++)
		fprintf(out, "  %-12s %s\n", bench_sections[i].name, bench_sections[i].title);
}

#define bad_usage(...) usage_error("bench", __VA_ARGS__)

enum { OPT_QUICK = 256, OPT_REPS, OPT_SECTION, OPT_JSON, OPT_PLOT, OPT_FAULT_THREADS, OPT_HELP };

static const struct option long_opts[] = {
	{ "quick",		no_argument,		NULL, OPT_QUICK },
	{ "reps",		required_argument,	NULL, OPT_REPS },
	{ "section",		required_argument,	NULL, OPT_SECTION },
	{ "json",		required_argument,	NULL, OPT_JSON },
	{ "plot",		required_argument,	NULL, OPT_PLOT },
	{ "fault-threads",	required_argument,	NULL, OPT_FAULT_THREADS },
	{ "help",		no_argument,		NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv)
{
	char *end;
	long v;
	int c;

	memset(&opts, 0, sizeof(opts));
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_QUICK:
			opts.quick = true;
			break;
		case OPT_REPS:
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > BENCH_MAX_REPS)
				return bad_usage("--reps: '%s' is not in 1..%d", optarg,
						 BENCH_MAX_REPS);
			opts.reps = (int)v;
			break;
		case OPT_SECTION:
			opts.sections = optarg;
			break;
		case OPT_JSON:
			opts.json = optarg;
			break;
		case OPT_PLOT:
			opts.plot = optarg;
			break;
		case OPT_FAULT_THREADS:
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 16)
				return bad_usage("--fault-threads: '%s' is not in 1..16", optarg);
			opts.fault_threads = (unsigned)v;
			break;
		case OPT_HELP:
			usage(stdout);
			return 0;
		case ':':
			return bad_usage("option '%s' needs an argument", argv[optind - 1]);
		default:
			return bad_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	if (!opts.reps)
		opts.reps = opts.quick ? BENCH_QUICK_REPS : BENCH_DEFAULT_REPS;
	if (opts.plot && !have_gnuplot()) {
		fprintf(stderr, "pcache bench: --plot needs gnuplot, which is not installed"
			" (Debian: apt-get install gnuplot-nox)\n");
		return 2;
	}
	if (opts.sections) {
		/* every name given must be a section */
		const char *p = opts.sections;

		while (*p) {
			const char *e = strchr(p, ',');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			bool known = false;

			for (size_t i = 0; i < NR_SECTIONS; i++)
				known |= strlen(bench_sections[i].name) == len &&
					 !strncmp(bench_sections[i].name, p, len);
			if (!known)
				return bad_usage("--section: unknown section '%.*s'",
						 (int)len, p);
			if (!e)
				break;
			p = e + 1;
		}
	}
	return -1;
}

int cmd_bench(int argc, char **argv)
{
	int status, ran = 0, skipped = 0, failed = 0;

	status = parse_args(argc, argv);
	if (status >= 0)
		return status;
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	fill_buf = malloc(BENCH_FILL_CHUNK);
	copy_buf = malloc(BENCH_READ_CHUNK);
	if (!fill_buf || !copy_buf) {
		fprintf(stderr, "pcache bench: out of memory\n");
		free(fill_buf);
		free(copy_buf);
		return 1;
	}
	for (size_t i = 0; i < BENCH_FILL_CHUNK; i++)
		fill_buf[i] = (unsigned char)(i * 131 + 7 + (i >> 12));
	nresults = 0;
	nwresults = 0;
	t_start = now();

	printf("pcache bench: %d repetitions per figure (median and best shown;"
	       " ratios use medians), page size %zu\n", opts.reps, page_size);
	for (size_t i = 0; i < NR_SECTIONS; i++) {
		const struct bench_section *s = &bench_sections[i];

		if (!section_selected(s->name))
			continue;
		cur_section = s->name;
		printf("\n%s: %s\n", s->name, s->title);
		fflush(stdout);
		status = s->run();
		progress_clear();
		ran++;
		if (status == 77)
			skipped++;
		else if (status)
			failed++;
		print_section(s->name);
		if (s->run == bench_write) {
			print_write();
			print_write_targets();
		}
		fflush(stdout);
	}
	printf("\n%.1f s\n", now() - t_start);
	if (opts.json && write_json(opts.json))
		failed++;
	if (opts.plot) {
		if (!nwresults)
			fprintf(stderr, "pcache bench: --plot: the write section did not run\n");
		if (!nwresults || write_plot(opts.plot))
			failed++;
	}
	free(fill_buf);
	free(copy_buf);
	fill_buf = copy_buf = NULL;
	if (failed)
		return 1;
	return ran && skipped == ran ? 77 : 0;
}
