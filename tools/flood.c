/*
 * flood.c - `pcache flood`: a write flood on the dir backend, to show that
 * the memory limit holds and what the process's resident memory is.
 *
 * Three writer threads write --bytes in total, as fast as they can, into a
 * cache whose memory limit is --mem-limit:
 *   - seq:    two files, written front to back in 1 MiB pwrites, alternately
 *             (5/8 of the bytes);
 *   - random: one file, 64 KiB pwrites at random 64 KiB-aligned offsets,
 *             over a file of 3/16 of the bytes (1/4 of them: overwrites);
 *   - view:   one file of --view-size, truncated to size and mapped
 *             writable; whole pages stored through the view, a sequential
 *             pass then random pages (1/8 of the bytes).
 * A sampler thread reads pcache_stats every millisecond (pages_cached
 * must never pass the limit) and /proc/self/status every 10 ms (VmRSS,
 * RssAnon, RssShmem).  Then everything is fsynced, the cache destroyed,
 * and every backing file read back with plain pread and compared with what
 * was last written at each offset (a checksum per file is printed).
 *
 * Peak RSS.  Cached pages live in memfds mapped into the process, so they
 * count in RSS (RssShmem) while cached; a page also mapped in the view
 * counts twice (two mappings of one page).  The bound checked is
 *   peak VmHWM <= baseline + mem_limit + view_size + 16 MiB
 * where baseline is VmRSS once the cache, the files, the view and the
 * buffers exist and before any data is written (the binary, libc, the
 * threads, the writers' buffers), view_size is the most that can be mapped
 * twice, and 16 MiB covers malloc's arenas (page descriptors, index nodes,
 * one per thread) and the kernel's rounding.  Sanitized builds do not check
 * it (shadow memory and ASan's quarantine grow with the data), but still
 * print it and check pages_cached.
 *
 * Only include/pcache.h is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pcache.h"
#include "commands.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FLOOD_SANITIZED 1
#else
#define FLOOD_SANITIZED 0
#endif

#define MIB			((uint64_t)1 << 20)
#define FLOOD_PAGE		4096u
#define FLOOD_SEQ_IO		(1u << 20)
#define FLOOD_RAND_IO		(64u << 10)
#define FLOOD_SLACK		(16 * MIB)
#define FLOOD_NFILES		4

enum { F_SEQ0, F_SEQ1, F_RAND, F_VIEW };
static const char *const file_names[FLOOD_NFILES] = {
	"flood-seq-0", "flood-seq-1", "flood-random", "flood-view",
};

struct flood_opts {
	uint64_t mem_limit;
	uint64_t bytes;
	uint64_t view_size;
	unsigned block_size;
	uint64_t seed;
	const char *dir;
	bool keep;
};

static struct flood_opts opts;
static struct pcache *cache;
static int fds[FLOOD_NFILES];
static uint64_t file_size[FLOOD_NFILES];
static unsigned char *view;
/* What was last written: the version of each random chunk / view page. */
static uint32_t *rand_ver, *view_ver;
static uint64_t rand_chunks, view_pages;
static uint64_t seq_bytes, rand_bytes, view_bytes;	/* each writer's share */

static atomic_int writers_done;
static atomic_int failed;
static uint64_t peak_cached, over_limit_samples, samples, peak_dirty;
static uint64_t peak_rss_kb, peak_anon_kb, peak_shmem_kb;

/* ---- data: 8-byte words from (file, offset, version) --------------------- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* @len bytes (a multiple of 8) of file @f from @off (8-aligned), version @ver. */
static void fill(uint64_t *dst, unsigned f, uint64_t off, size_t len, uint32_t ver)
{
	uint64_t base = ((uint64_t)f << 56) ^ ((uint64_t)ver << 40);

	for (size_t k = 0; k < len / 8; k++)
		dst[k] = mix(base ^ (off / 8 + k));
}

static uint64_t splitmix64(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return mix(*state);
}

static uint64_t below(uint64_t *rng, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)splitmix64(rng) * n) >> 64);
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("flood: FAIL: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	atomic_store(&failed, 1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- /proc/self/status ----------------------------------------------------- */

/* The value in kB of the field @name ("VmRSS:"), or 0. */
static uint64_t status_kb(const char *text, const char *name)
{
	const char *p = strstr(text, name);

	return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

static void read_status(uint64_t *rss, uint64_t *anon, uint64_t *shmem, uint64_t *hwm)
{
	char buf[4096];
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	*rss = *anon = *shmem = *hwm = 0;
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	*rss = status_kb(buf, "VmRSS:");
	*anon = status_kb(buf, "RssAnon:");
	*shmem = status_kb(buf, "RssShmem:");
	*hwm = status_kb(buf, "VmHWM:");
}

/* ---- the threads --------------------------------------------------------- */

static bool write_all(unsigned f, const void *buf, size_t len, uint64_t off)
{
	ssize_t got = pcache_pwrite(fds[f], buf, len, (off_t)off);

	if (got != (ssize_t)len) {
		fail("pcache_pwrite(%s, %zu bytes at %" PRIu64 ") returned %zd (%s)",
		     file_names[f], len, off, got, got < 0 ? pcache_strerror((int)got) : "short");
		return false;
	}
	return true;
}

static void *seq_writer(void *arg)
{
	uint64_t *buf = malloc(FLOOD_SEQ_IO);
	uint64_t off[2] = { 0, 0 }, left = seq_bytes;

	if (!buf) {
		fail("malloc");
		return NULL;
	}
	for (unsigned k = 0; left && !atomic_load(&failed); k ^= 1) {
		size_t n = left < FLOOD_SEQ_IO ? (size_t)left : FLOOD_SEQ_IO;

		fill(buf, F_SEQ0 + k, off[k], n, 0);
		if (!write_all(F_SEQ0 + k, buf, n, off[k]))
			break;
		off[k] += n;
		left -= n;
	}
	free(buf);
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

static void *rand_writer(void *arg)
{
	uint64_t *buf = malloc(FLOOD_RAND_IO), rng = opts.seed ^ 0x1234;

	if (!buf) {
		fail("malloc");
		return NULL;
	}
	for (uint64_t done = 0; done < rand_bytes && !atomic_load(&failed);
	     done += FLOOD_RAND_IO) {
		uint64_t c = below(&rng, rand_chunks);
		uint32_t ver = ++rand_ver[c];

		fill(buf, F_RAND, c * FLOOD_RAND_IO, FLOOD_RAND_IO, ver);
		if (!write_all(F_RAND, buf, FLOOD_RAND_IO, c * FLOOD_RAND_IO))
			break;
	}
	free(buf);
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

/* Whole pages through the view: a sequential pass, then random pages. */
static void *view_writer(void *arg)
{
	uint64_t rng = opts.seed ^ 0x5678, n = view_bytes / FLOOD_PAGE;

	for (uint64_t k = 0; k < n && !atomic_load(&failed); k++) {
		uint64_t pg = k < view_pages ? k : below(&rng, view_pages);
		uint32_t ver = ++view_ver[pg];

		fill((uint64_t *)(view + pg * FLOOD_PAGE), F_VIEW, pg * FLOOD_PAGE,
		     FLOOD_PAGE, ver);
	}
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

static void *sampler(void *arg)
{
	struct pcache_stats st;
	uint64_t limit, rss, anon, shmem, hwm;
	unsigned tick = 0;

	pcache_stats(cache, &st);
	limit = st.mem_limit_pages;
	while (atomic_load(&writers_done) < 3) {
		pcache_stats(cache, &st);
		samples++;
		if (st.pages_cached > peak_cached)
			peak_cached = st.pages_cached;
		if (st.pages_dirty > peak_dirty)
			peak_dirty = st.pages_dirty;
		if (st.pages_cached > limit)
			over_limit_samples++;
		if (tick++ % 10 == 0) {
			read_status(&rss, &anon, &shmem, &hwm);
			if (rss > peak_rss_kb)
				peak_rss_kb = rss;
			if (anon > peak_anon_kb)
				peak_anon_kb = anon;
			if (shmem > peak_shmem_kb)
				peak_shmem_kb = shmem;
		}
		usleep(1000);
	}
	return NULL;
}

/* ---- the check on disk ------------------------------------------------------ */

/* Compare backing file @f with what was last written; print its checksum. */
static bool check_file(const char *dir, unsigned f, uint64_t *io_buf, uint64_t *want)
{
	char path[PATH_MAX + 32];
	uint64_t sum_disk = 0xcbf29ce484222325ull, sum_want = sum_disk, off;
	struct stat st;
	bool ok = true;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file_names[f]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		fail("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	if ((uint64_t)st.st_size != file_size[f]) {
		fail("%s: size %lld, want %" PRIu64, path, (long long)st.st_size, file_size[f]);
		ok = false;
	}
	for (off = 0; ok && off < file_size[f]; off += FLOOD_SEQ_IO) {
		size_t n = file_size[f] - off < FLOOD_SEQ_IO ? (size_t)(file_size[f] - off) :
			   FLOOD_SEQ_IO;
		ssize_t got = pread(fd, io_buf, n, (off_t)off);

		if (got != (ssize_t)n) {
			fail("pread(%s, %zu at %" PRIu64 "): %zd", path, n, off, got);
			ok = false;
			break;
		}
		/* What was last written there, in units of its writer. */
		for (size_t at = 0; at < n;) {
			uint64_t o = off + at;
			size_t unit = f == F_RAND ? FLOOD_RAND_IO : f == F_VIEW ? FLOOD_PAGE : n;
			uint32_t ver = f == F_RAND ? rand_ver[o / FLOOD_RAND_IO] :
				       f == F_VIEW ? view_ver[o / FLOOD_PAGE] : 0;

			if (f == F_RAND && !ver)	/* never written: a hole */
				memset(want + at / 8, 0, unit);
			else
				fill(want + at / 8, f, o, unit, ver);
			at += unit;
		}
		for (size_t k = 0; k < n / 8; k++) {
			sum_disk = (sum_disk ^ io_buf[k]) * 0x100000001b3ull;
			sum_want = (sum_want ^ want[k]) * 0x100000001b3ull;
		}
		if (memcmp(io_buf, want, n)) {
			size_t k = 0;

			while (io_buf[k] == want[k])
				k++;
			fail("%s: differs from what was written at offset %" PRIu64,
			     path, off + 8 * k);
			ok = false;
		}
	}
	close(fd);
	if (ok)
		printf("flood: %-13s %4" PRIu64 " MiB on disk, checksum %016" PRIx64
		       " (matches what was written)\n", file_names[f], file_size[f] / MIB,
		       sum_disk);
	return ok;
}

/* ---- options ---------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
"usage: pcache flood [options]\n"
"\n"
"A write flood on the dir backend: three writer threads (sequential pwrites,\n"
"random pwrites, stores through a view) write --bytes into a cache limited to\n"
"--mem-limit, then fsync.  pages_cached is sampled every millisecond and must\n"
"stay within the limit; peak RSS must stay within baseline + limit + view\n"
"size + 16 MiB (not checked in sanitized builds); the backing files must hold\n"
"what was written.  Exit status 0 only when all three hold.\n"
"\n"
"  --mem-limit BYTES    the cache's memory limit, k/m/g allowed (default 64m)\n"
"  --bytes BYTES        bytes to write in all (default 512m)\n"
"  --view-size BYTES    the view file's size (default 16m)\n"
"  --block-size N       the dir backend's block size (default 4096)\n"
"  --seed S             random offsets (default 1)\n"
"  --dir DIR            backing directory (default: a temporary one under\n"
"                       $TMPDIR or /tmp, removed at the end)\n"
"  --keep               keep the temporary backing directory\n"
"  --help               this text\n");
}

#define bad_usage(...) usage_error("flood", __VA_ARGS__)

#define parse_size(s, out) parse_u64((s), true, (out))

enum {
	OPT_MEM_LIMIT = 256, OPT_BYTES, OPT_VIEW_SIZE, OPT_BLOCK_SIZE, OPT_SEED,
	OPT_DIR, OPT_KEEP, OPT_HELP,
};

static const struct option long_opts[] = {
	{ "mem-limit",	required_argument,	NULL, OPT_MEM_LIMIT },
	{ "bytes",	required_argument,	NULL, OPT_BYTES },
	{ "view-size",	required_argument,	NULL, OPT_VIEW_SIZE },
	{ "block-size",	required_argument,	NULL, OPT_BLOCK_SIZE },
	{ "seed",	required_argument,	NULL, OPT_SEED },
	{ "dir",	required_argument,	NULL, OPT_DIR },
	{ "keep",	no_argument,		NULL, OPT_KEEP },
	{ "help",	no_argument,		NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static int parse_args(int argc, char **argv)
{
	uint64_t v;
	int c;

	memset(&opts, 0, sizeof(opts));
	opts.mem_limit = 64 * MIB;
	opts.bytes = 512 * MIB;
	opts.view_size = 16 * MIB;
	opts.seed = 1;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_MEM_LIMIT:
			if (!parse_size(optarg, &v) || v < MIB || v % FLOOD_PAGE)
				return bad_usage("--mem-limit: '%s' is not a multiple of 4k,"
						 " at least 1m", optarg);
			opts.mem_limit = v;
			break;
		case OPT_BYTES:
			if (!parse_size(optarg, &v) || v < 16 * MIB || v > (64ull << 30))
				return bad_usage("--bytes: '%s' is not in 16m..64g", optarg);
			opts.bytes = v;
			break;
		case OPT_VIEW_SIZE:
			if (!parse_size(optarg, &v) || v < MIB || v % FLOOD_PAGE ||
			    v > (16ull << 30))
				return bad_usage("--view-size: '%s' is not a multiple of 4k"
						 " in 1m..16g", optarg);
			opts.view_size = v;
			break;
		case OPT_BLOCK_SIZE:
			if (!parse_size(optarg, &v) || v < 512 || v > 4096 || (v & (v - 1)))
				return bad_usage("--block-size: '%s' is not 512, 1024, 2048"
						 " or 4096", optarg);
			opts.block_size = (unsigned)v;
			break;
		case OPT_SEED:
			if (!parse_size(optarg, &opts.seed))
				return bad_usage("--seed: '%s' is not a number", optarg);
			break;
		case OPT_DIR:
			opts.dir = optarg;
			break;
		case OPT_KEEP:
			opts.keep = true;
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
	if (opts.keep && opts.dir)
		return bad_usage("--keep is for the temporary directory, not --dir");
	return -1;
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	return remove(path) ? -1 : 0;
}

int cmd_flood(int argc, char **argv)
{
	struct pcache_config cfg;
	struct pcache_stats st;
	pthread_t threads[4];
	char dir[PATH_MAX];
	bool own_dir = false;
	uint64_t base_rss, base_anon, base_shmem, hwm, bound, *io_buf = NULL,
		 *want = NULL, end_rss, end_anon, end_shmem;
	struct rusage ru;
	double t0, t_write, t_sync;
	int status, ret, nthreads = 0;

	status = parse_args(argc, argv);
	if (status >= 0)
		return status;
	for (unsigned f = 0; f < FLOOD_NFILES; f++)
		fds[f] = -1;
	seq_bytes = opts.bytes / 8 * 5 / FLOOD_SEQ_IO * FLOOD_SEQ_IO;
	rand_bytes = opts.bytes / 4 / FLOOD_RAND_IO * FLOOD_RAND_IO;
	view_bytes = (opts.bytes - seq_bytes - rand_bytes) / FLOOD_PAGE * FLOOD_PAGE;
	rand_chunks = opts.bytes / 16 * 3 / FLOOD_RAND_IO;
	view_pages = opts.view_size / FLOOD_PAGE;
	rand_ver = calloc(rand_chunks, sizeof(*rand_ver));
	view_ver = calloc(view_pages, sizeof(*view_ver));
	io_buf = malloc(FLOOD_SEQ_IO);
	want = malloc(FLOOD_SEQ_IO);
	if (!rand_ver || !view_ver || !io_buf || !want) {
		fprintf(stderr, "pcache flood: out of memory\n");
		return 1;
	}
	if (opts.dir) {
		snprintf(dir, sizeof(dir), "%s", opts.dir);
	} else {
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/pcache-flood.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			fprintf(stderr, "pcache flood: mkdtemp: %s\n", strerror(errno));
			return 1;
		}
		own_dir = true;
	}

	pcache_config_init(&cfg);
	cfg.backend = "dir";
	cfg.backend_arg = dir;
	cfg.mem_limit = opts.mem_limit;
	cfg.block_size = opts.block_size;
	printf("flood: %" PRIu64 " MiB in all (sequential %" PRIu64 ", random %" PRIu64
	       ", through a view %" PRIu64 "), mem limit %" PRIu64 " MiB, block size %u,"
	       " in %s\n", opts.bytes / MIB, seq_bytes / MIB, rand_bytes / MIB,
	       view_bytes / MIB, opts.mem_limit / MIB, opts.block_size ? opts.block_size : 4096,
	       dir);
	fflush(stdout);
	ret = pcache_create(&cfg, &cache);
	if (ret) {
		fprintf(stderr, "pcache flood: pcache_create: %s\n", pcache_strerror(ret));
		cache = NULL;
		goto out;
	}
	file_size[F_SEQ0] = (seq_bytes / FLOOD_SEQ_IO + 1) / 2 * FLOOD_SEQ_IO;
	file_size[F_SEQ1] = seq_bytes - file_size[F_SEQ0];
	file_size[F_VIEW] = opts.view_size;
	for (unsigned f = 0; f < FLOOD_NFILES; f++) {
		fds[f] = pcache_open(cache, file_names[f], O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fds[f] < 0) {
			fail("pcache_open(%s): %s", file_names[f], pcache_strerror(fds[f]));
			goto out;
		}
	}
	ret = pcache_ftruncate(fds[F_VIEW], (off_t)opts.view_size);
	if (ret) {
		fail("pcache_ftruncate: %s", pcache_strerror(ret));
		goto out;
	}
	view = pcache_mmap(fds[F_VIEW], opts.view_size, PROT_READ | PROT_WRITE, 0);
	if (PCACHE_IS_ERR(view)) {
		if (PCACHE_PTR_ERR(view) != -EOPNOTSUPP) {
			fail("pcache_mmap: %s", pcache_strerror(PCACHE_PTR_ERR(view)));
			view = NULL;
			goto out;
		}
		/* No views here: the view's share goes through pwrite. */
		printf("flood: views are not supported here: the view writer's pages"
		       " go through pcache_pwrite instead\n");
		view = NULL;
	}
	read_status(&base_rss, &base_anon, &base_shmem, &hwm);
	printf("flood: baseline before writing: VmRSS %" PRIu64 " MiB (RssAnon %" PRIu64
	       ", RssShmem %" PRIu64 ")\n", base_rss >> 10, base_anon >> 10,
	       base_shmem >> 10);
	fflush(stdout);

	t0 = now();
	if (pthread_create(&threads[nthreads], NULL, sampler, NULL) == 0)
		nthreads++;
	if (pthread_create(&threads[nthreads], NULL, seq_writer, NULL) == 0)
		nthreads++;
	if (pthread_create(&threads[nthreads], NULL, rand_writer, NULL) == 0)
		nthreads++;
	if (view) {
		if (pthread_create(&threads[nthreads], NULL, view_writer, NULL) == 0)
			nthreads++;
	} else {
		/* through pwrite, page by page, same data */
		uint64_t rng = opts.seed ^ 0x5678, *pg_buf = malloc(FLOOD_PAGE);

		for (uint64_t k = 0; pg_buf && k < view_bytes / FLOOD_PAGE; k++) {
			uint64_t pg = k < view_pages ? k : below(&rng, view_pages);

			fill(pg_buf, F_VIEW, pg * FLOOD_PAGE, FLOOD_PAGE, ++view_ver[pg]);
			if (!write_all(F_VIEW, pg_buf, FLOOD_PAGE, pg * FLOOD_PAGE))
				break;
		}
		free(pg_buf);
		atomic_fetch_add(&writers_done, 1);
	}
	if (nthreads != (view ? 4 : 3)) {
		fail("pthread_create");
		atomic_store(&writers_done, 3);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	t_write = now() - t0;
	for (unsigned f = 0; f < FLOOD_NFILES; f++) {
		ret = pcache_fsync(fds[f]);
		if (ret)
			fail("pcache_fsync(%s): %s", file_names[f], pcache_strerror(ret));
	}
	t_sync = now() - t0 - t_write;
	file_size[F_RAND] = 0;
	for (uint64_t c = 0; c < rand_chunks; c++)
		if (rand_ver[c])
			file_size[F_RAND] = (c + 1) * FLOOD_RAND_IO;
	pcache_stats(cache, &st);
	read_status(&end_rss, &end_anon, &end_shmem, &hwm);
	getrusage(RUSAGE_SELF, &ru);

	printf("flood: wrote %" PRIu64 " MiB in %.1f s (%.0f MiB/s), fsync %.1f s;"
	       " %llu pages reclaimed, %llu pages written back, %llu throttle waits"
	       " (%.1f s), %llu reclaim waits\n", opts.bytes / MIB, t_write,
	       t_write > 0 ? (double)(seq_bytes + rand_bytes + view_bytes) / MIB / t_write : 0,
	       t_sync, (unsigned long long)st.pages_reclaimed,
	       (unsigned long long)st.writeback_pages,
	       (unsigned long long)st.throttle_waits, st.throttle_ns / 1e9,
	       (unsigned long long)st.reclaim_waits);
	printf("flood: pages_cached peak %" PRIu64 " of a limit of %llu pages (%" PRIu64
	       " samples, %" PRIu64 " over the limit); dirty peak %" PRIu64 " pages\n",
	       peak_cached, (unsigned long long)st.mem_limit_pages, samples,
	       over_limit_samples, peak_dirty);
	if (over_limit_samples)
		fail("pages_cached went over the limit (%" PRIu64 " > %llu) in %" PRIu64
		     " samples", peak_cached, (unsigned long long)st.mem_limit_pages,
		     over_limit_samples);
	if (!samples)
		fail("the sampler took no sample");

	bound = (base_rss << 10) + opts.mem_limit + (view ? opts.view_size : 0) + FLOOD_SLACK;
	printf("flood: peak RSS %" PRIu64 " MiB (VmHWM; ru_maxrss %ld MiB) with a %" PRIu64
	       " MiB limit: baseline %" PRIu64 " MiB + %" PRIu64 " MiB; sampled peaks"
	       " RssShmem %" PRIu64 " MiB, RssAnon %" PRIu64 " MiB\n",
	       hwm >> 10, ru.ru_maxrss >> 10, opts.mem_limit / MIB, base_rss >> 10,
	       (hwm > base_rss ? hwm - base_rss : 0) >> 10, peak_shmem_kb >> 10,
	       peak_anon_kb >> 10);
	if (FLOOD_SANITIZED) {
		printf("flood: sanitized build: the RSS bound (%" PRIu64 " MiB) is not"
		       " checked (shadow memory, quarantine)\n", bound / MIB);
	} else if ((hwm << 10) > bound) {
		fail("peak RSS %" PRIu64 " MiB is over baseline + limit + view + %llu MiB"
		     " = %" PRIu64 " MiB", hwm >> 10, (unsigned long long)(FLOOD_SLACK / MIB), bound / MIB);
	} else {
		printf("flood: peak RSS within baseline %" PRIu64 " + limit %" PRIu64
		       " + view %" PRIu64 " + slack %llu = %" PRIu64 " MiB\n", base_rss >> 10,
		       opts.mem_limit / MIB, view ? opts.view_size / MIB : 0,
		       (unsigned long long)(FLOOD_SLACK / MIB), bound / MIB);
	}

out:
	if (view) {
		ret = pcache_munmap(view, opts.view_size);
		if (ret)
			fail("pcache_munmap: %s", pcache_strerror(ret));
	}
	for (unsigned f = 0; f < FLOOD_NFILES; f++)
		if (fds[f] >= 0 && cache)
			pcache_close(fds[f]);
	if (cache) {
		ret = pcache_destroy(cache);
		if (ret)
			fail("pcache_destroy: %s", pcache_strerror(ret));
		cache = NULL;
	}
	if (!atomic_load(&failed))
		for (unsigned f = 0; f < FLOOD_NFILES; f++)
			check_file(dir, f, io_buf, want);
	if (own_dir) {
		if (opts.keep || atomic_load(&failed))
			printf("flood: kept the backing directory %s\n", dir);
		else
			nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
	free(rand_ver);
	free(view_ver);
	free(io_buf);
	free(want);
	printf("flood: %s\n", atomic_load(&failed) ? "FAIL" : "pass");
	return atomic_load(&failed) ? 1 : 0;
}
