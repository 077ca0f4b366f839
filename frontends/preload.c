/*
 * preload.c - the shim's set-up: environment, the one cache, fork, exit.
 *
 * ENVIRONMENT (read once, by the constructor or the first call)
 *
 *	PCACHE_PRELOAD_DIR	files under this directory go through pcache;
 *				unset: the shim passes every call to libc
 *	PCACHE_PRELOAD_BACKEND	the backend (default "memory" for now; "dir"
 *				once that backend lands, see BACKEND below)
 *	PCACHE_PRELOAD_MEM_LIMIT  bytes of page cache (K, M, G suffixes)
 *	PCACHE_PRELOAD_BLOCK_SIZE the dir backend's block size
 *	PCACHE_PRELOAD_DEBUG=1	say on stderr what the shim does
 *	PCACHE_WRITE_STRATEGY, PCACHE_PERFORM_WRITE	read by pcache_config_init
 *
 * THE CACHE is made on first use of a path under the directory, not in the
 * constructor, so a program that never touches it starts no threads and
 * installs no signal handlers.  pcache installs its SIGSEGV/SIGBUS handlers
 * then and chains to the ones in place; a handler the program installs
 * later replaces pcache's, and bad buffers then reach it (docs/preload.md).
 *
 * FORK.  pcache's handler threads do not exist in a child, and its locks
 * may have been held by them at fork().  The child therefore abandons the
 * parent's cache (it is never touched again, and leaks) and makes its own
 * on first use; descriptors inherited from the parent give EIO, and close
 * releases them.  With the memory backend the child sees none of the
 * parent's files.  The table and view locks are held across fork() so the
 * child's copy of the table is consistent.
 *
 * EXIT.  With the memory backend nothing outlives the process, so nothing
 * is done.  With a backend that has storage, the destructor flushes stdio,
 * fsyncs every open file and, if none is open, destroys the cache (which
 * writes everything back).  See the TODO at preload_fini().
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

/*
 * BACKEND: the one place the backend is chosen.  "dir": files are real
 * files under PCACHE_PRELOAD_DIR, shared with other processes and kept
 * after exit.  PCACHE_PRELOAD_BACKEND=memory keeps them in this process's
 * cache only.
 */
#ifndef PCACHE_PRELOAD_DEFAULT_BACKEND
#define PCACHE_PRELOAD_DEFAULT_BACKEND	"dir"
#endif

bool preload_enabled;
unsigned int preload_epoch;

static char *backend_dir;		/* PCACHE_PRELOAD_DIR, as given */
static const char *backend_name;
static uint64_t mem_limit;
static unsigned int block_size;
static bool debug;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pcache *cache;
static pid_t cache_pid;		/* the process that made it */
static int cache_err;			/* sticky: pcache_create failed */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

void *preload_dlsym(void **slot, const char *name)
{
	void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

	if (p)
		return p;
	p = dlsym(RTLD_NEXT, name);
	if (!p) {
		/* No stdio: this may run before libc is set up for it. */
		static const char msg[] = "libpcache-preload: no libc symbol ";
		syscall(SYS_write, 2, msg, sizeof(msg) - 1);
		syscall(SYS_write, 2, name, strlen(name));
		syscall(SYS_write, 2, "\n", 1);
		abort();
	}
	__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	return p;
}

void preload_debug(const char *fmt, ...)
{
	va_list ap;

	if (!debug)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "libpcache-preload[%d]: ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'k': case 'K': v <<= 10; break;
	case 'm': case 'M': v <<= 20; break;
	case 'g': case 'G': v <<= 30; break;
	}
	return v;
}

static void preload_atfork_prepare(void)
{
	/* Before any lock: the child may exec a program that reads the files. */
	preload_before_exec();
	pthread_mutex_lock(&cache_lock);
	preload_fdtable_atfork_prepare();
	preload_stdio_atfork_prepare();
}

static void preload_atfork_parent(void)
{
	preload_stdio_atfork_parent();
	preload_fdtable_atfork_parent();
	pthread_mutex_unlock(&cache_lock);
}

static void preload_atfork_child(void)
{
	pthread_mutex_init(&cache_lock, NULL);
	if (cache) {
		/* The parent's cache: abandoned, see FORK above. */
		cache = NULL;
		preload_epoch++;
	}
	preload_fdtable_atfork_child();
	preload_stdio_atfork_child();
}

static void do_init(void)
{
	const char *env;

	debug = (env = getenv("PCACHE_PRELOAD_DEBUG")) && *env && *env != '0';
	env = getenv("PCACHE_PRELOAD_DIR");
	if (!env || !*env)
		return;
	backend_dir = strdup(env);
	env = getenv("PCACHE_PRELOAD_BACKEND");
	backend_name = env && *env ? env : PCACHE_PRELOAD_DEFAULT_BACKEND;
	env = getenv("PCACHE_PRELOAD_MEM_LIMIT");
	mem_limit = env ? parse_size(env) : 0;
	env = getenv("PCACHE_PRELOAD_BLOCK_SIZE");
	block_size = env ? (unsigned int)parse_size(env) : 0;
	if (!backend_dir)
		return;
	pthread_atfork(preload_atfork_prepare, preload_atfork_parent,
		       preload_atfork_child);
	__atomic_store_n(&preload_enabled, true, __ATOMIC_RELEASE);
	preload_debug("directory %s, backend %s", backend_dir, backend_name);
}

bool preload_files_private(void)
{
	return backend_name && !strcmp(backend_name, "memory");
}

const char *preload_dir(void)
{
	return backend_dir;
}

void preload_init(void)
{
	pthread_once(&init_once, do_init);
}

__attribute__((constructor))
static void preload_ctor(void)
{
	preload_init();
}

struct pcache *preload_cache(int *err)
{
	struct pcache_config cfg;
	struct pcache *pc;
	int ret;

	pc = __atomic_load_n(&cache, __ATOMIC_ACQUIRE);
	if (pc)
		return pc;
	pthread_mutex_lock(&cache_lock);
	pc = cache;
	if (pc || cache_err)
		goto out_unlock;
	pcache_config_init(&cfg);	/* PCACHE_WRITE_STRATEGY and co. */
	cfg.backend = backend_name;
	cfg.backend_arg = backend_dir;
	cfg.mem_limit = mem_limit;
	cfg.block_size = block_size;
	ret = pcache_create(&cfg, &pc);
	if (ret < 0) {
		cache_err = ret;
		pc = NULL;
		fprintf(stderr, "libpcache-preload: cannot make the cache "
			"(backend \"%s\", directory %s): %s\n",
			backend_name, backend_dir, pcache_strerror(ret));
		goto out_unlock;
	}
	preload_debug("cache made: backend %s, strategy %s", backend_name,
		      pcache_strategy_name(cfg.write_strategy));
	cache_pid = getpid();
	__atomic_store_n(&cache, pc, __ATOMIC_RELEASE);
out_unlock:
	pthread_mutex_unlock(&cache_lock);
	if (!pc)
		*err = cache_err;
	return pc;
}

static int open_at_exit;

static void sync_at_exit(int fd, struct preload_file *file)
{
	int pfd = preload_file_pfd(file);

	open_at_exit++;
	if (pfd >= 0 && !file->path_only)
		pcache_fsync(pfd);
}

/*
 * Another program may be about to read the files (exec, fork, spawn):
 * write the cache back if anything in it is dirty.  A clean cache costs a
 * statistics read, so a program that forks often pays only after writing.
 */
void preload_before_exec(void)
{
	struct pcache *pc = __atomic_load_n(&cache, __ATOMIC_ACQUIRE);
	struct pcache_stats st;
	int err;

	if (!pc || !strcmp(backend_name, "memory"))
		return;
	/*
	 * A vfork child shares our memory but not our descriptors (it may
	 * have closed the backing files already, as Python's subprocess does):
	 * writing back from it would record its EBADFs as our errors.
	 */
	if (getpid() != cache_pid)
		return;
	if (!pcache_stats(pc, &st) && !st.pages_dirty && !st.pages_writeback)
		return;
	err = pcache_sync(pc);
	preload_debug("exec or fork: cache written back (%d)", err);
}

/*
 * At exit everything dirty is written back, open files or not
 * (pcache_sync).  The cache is torn down only if nothing is open or mapped,
 * so threads the program left running keep working.  Data written after
 * this point (a later stdio flush, another thread) stays in memory and is
 * lost, as _exit() loses everything.
 */
__attribute__((destructor))
static void preload_fini(void)
{
	struct pcache *pc = __atomic_load_n(&cache, __ATOMIC_ACQUIRE);

	if (!pc || !strcmp(backend_name, "memory"))
		return;
	fflush(NULL);
	open_at_exit = 0;
	preload_fd_for_each(sync_at_exit);
	pcache_sync(pc);
	if (open_at_exit || preload_views_any())
		return;
	/* Later opens (another destructor, a stdio flush) get EIO. */
	pthread_mutex_lock(&cache_lock);
	cache_err = -EIO;
	__atomic_store_n(&cache, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&cache_lock);
	pcache_destroy(pc);
}
