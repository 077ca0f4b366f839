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
 * array.  A new group of benchmarks (the write strategies, later) is one
 * new function and one new line in the table.
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
#include <sys/mman.h>
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
	va_list ap;

	if (!isatty(STDERR_FILENO) || now() - t_start < 1.0)
		return;
	fputs("\r\033[Kbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	progress_shown = true;
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

/* ---- the command ---------------------------------------------------------- */

static const struct bench_section bench_sections[] = {
	{ "view-fault", "first touch of a cached page through a view (us per page, lower is better)",
	  bench_view_fault },
	{ "view-read", "sequential mapped read, 64 MiB, memcpy 64 KiB at a time (GB/s, higher is better)",
	  bench_view_read },
	{ "view-wp", "store faults (us per page, lower is better)",
	  bench_view_wp },
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
"  --fault-threads N    view fault handler threads (default: the library's)\n"
"  --help               this text\n"
"\n"
"sections:\n", BENCH_QUICK_REPS, BENCH_DEFAULT_REPS, BENCH_MAX_REPS);
	for (size_t i = 0; i < NR_SECTIONS; i++)
		fprintf(out, "  %-12s %s\n", bench_sections[i].name, bench_sections[i].title);
}

static int bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("pcache bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'pcache bench --help'.\n", stderr);
	return 2;
}

enum { OPT_QUICK = 256, OPT_REPS, OPT_SECTION, OPT_JSON, OPT_FAULT_THREADS, OPT_HELP };

static const struct option long_opts[] = {
	{ "quick",		no_argument,		NULL, OPT_QUICK },
	{ "reps",		required_argument,	NULL, OPT_REPS },
	{ "section",		required_argument,	NULL, OPT_SECTION },
	{ "json",		required_argument,	NULL, OPT_JSON },
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
		fflush(stdout);
	}
	printf("\n%.1f s\n", now() - t_start);
	if (opts.json && write_json(opts.json))
		failed++;
	free(fill_buf);
	free(copy_buf);
	fill_buf = copy_buf = NULL;
	if (failed)
		return 1;
	return ran && skipped == ran ? 77 : 0;
}
