/*
 * fuse.c - pcache-fuse: main, options, the cache's life, the open files.
 *
 *	pcache-fuse BACKING_DIR MOUNTPOINT [FUSE options]
 *		[-o mem_limit=SIZE] [-o block_size=N] [-o strategy=NAME]
 *
 * The design (which kernel caching, why) is in fuse.h and docs/fuse.md.
 *
 * LIFE OF THE CACHE.  main() checks the options by making and destroying a
 * cache (so a bad option is an error before anything is mounted), then
 * calls fuse_main(), which mounts, may daemonize (fork: pcache's threads
 * would not survive it, so the real cache is made afterwards, in init) and
 * runs the multi-threaded loop.  SIGINT, SIGTERM and SIGHUP end the loop
 * (libfuse's handlers); libfuse then unmounts and calls destroy, which
 * closes every pcache descriptor the kernel left open and destroys the
 * cache: pcache_destroy writes back everything dirty.  Exit status: 0
 * after an unmount; 8 (libfuse's fuse_main) when a signal or a loop error
 * ended the loop, with everything written back all the same; 1 for bad
 * arguments, a cache that could not be made, or a failed write-back at
 * exit (which outranks the 8).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuse.h"

static const struct fuse_operations pcache_fuse_ops;

struct pcache_fuse_file *pcache_fuse_file_add(struct pcache_fuse *pf, int pfd)
{
	struct pcache_fuse_file *file = malloc(sizeof(*file));

	if (!file)
		return NULL;
	file->pfd = pfd;
	pthread_mutex_lock(&pf->files_lock);
	file->next = pf->files.next;
	file->prev = &pf->files;
	pf->files.next->prev = file;
	pf->files.next = file;
	pthread_mutex_unlock(&pf->files_lock);
	return file;
}

/* Unlist and free @file; the caller has closed (or will close) its descriptor. */
void pcache_fuse_file_del(struct pcache_fuse *pf, struct pcache_fuse_file *file)
{
	pthread_mutex_lock(&pf->files_lock);
	file->prev->next = file->next;
	file->next->prev = file->prev;
	pthread_mutex_unlock(&pf->files_lock);
	free(file);
}

/*
 * The daemon runs as root and creates backing files as root: give a new
 * file, directory or symlink to the caller, as a kernel file system would.
 */
void pcache_fuse_chown_new(struct pcache_fuse *pf, const char *rel)
{
	struct fuse_context *ctx = fuse_get_context();

	if (geteuid() != 0 || (ctx->uid == 0 && ctx->gid == 0))
		return;
	/* Best effort: the file exists either way, as with a failing chown after creat. */
	if (fchownat(pf->rootfd, rel, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW))
		fprintf(stderr, "pcache-fuse: chown %s: %s\n", rel, strerror(errno));
}

static void *pcache_fuse_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct pcache_fuse *pf = pcache_fuse();
	int err;

	/* See fuse.h: the kernel's page cache, write-through, dropped at open. */
	cfg->direct_io = 0;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* Unlinking an open file renames it to .fuse_hidden*: pcache_rename keeps its data. */
	cfg->hard_remove = 0;
	cfg->use_ino = 1;	/* st_ino from the backing file: hard links show as such */
	cfg->readdir_ino = 1;

	err = pcache_create(&pf->cfg, &pf->pc);
	if (err) {
		fprintf(stderr, "pcache-fuse: pcache_create(%s): %s\n",
			pf->backing, pcache_strerror(err));
		pf->pc = NULL;
		pf->exit_status = 1;
		fuse_exit(fuse_get_context()->fuse);
	}
	return pf;
}

static void pcache_fuse_destroy(void *private_data)
{
	struct pcache_fuse *pf = private_data;
	struct pcache_fuse_file *file;
	int err;

	if (!pf->pc)
		return;
	/*
	 * Descriptors the kernel never released (files open at SIGTERM or at a
	 * lazy unmount): pcache_destroy refuses while any is open.
	 */
	pthread_mutex_lock(&pf->files_lock);
	while ((file = pf->files.next) != &pf->files) {
		file->prev->next = file->next;
		file->next->prev = file->prev;
		err = pcache_close(file->pfd);
		if (err)
			fprintf(stderr, "pcache-fuse: close: %s\n", pcache_strerror(err));
		free(file);
	}
	pthread_mutex_unlock(&pf->files_lock);

	err = pcache_sync(pf->pc);
	if (err) {
		fprintf(stderr, "pcache-fuse: writeback: %s\n", pcache_strerror(err));
		pf->exit_status = 1;
	}
	err = pcache_destroy(pf->pc);
	if (err) {
		fprintf(stderr, "pcache-fuse: pcache_destroy: %s\n", pcache_strerror(err));
		pf->exit_status = 1;
	}
	pf->pc = NULL;
}

static const struct fuse_operations pcache_fuse_ops = {
	.init		= pcache_fuse_init,
	.destroy	= pcache_fuse_destroy,
	/* fuse_file.c: data through pcache */
	.getattr	= pcache_fuse_getattr,
	.open		= pcache_fuse_open,
	.create		= pcache_fuse_create,
	.read		= pcache_fuse_read,
	.write		= pcache_fuse_write,
	.truncate	= pcache_fuse_truncate,
	.flush		= pcache_fuse_flush,
	.fsync		= pcache_fuse_fsync,
	.release	= pcache_fuse_release,
	.fallocate	= pcache_fuse_fallocate,
	/* fuse_ns.c: the namespace, on the backing directory */
	.mkdir		= pcache_fuse_mkdir,
	.rmdir		= pcache_fuse_rmdir,
	.readdir	= pcache_fuse_readdir,
	.fsyncdir	= pcache_fuse_fsyncdir,
	.symlink	= pcache_fuse_symlink,
	.readlink	= pcache_fuse_readlink,
	.link		= pcache_fuse_link,
	.unlink		= pcache_fuse_unlink,
	.rename		= pcache_fuse_rename,
	.chmod		= pcache_fuse_chmod,
	.chown		= pcache_fuse_chown,
	.utimens	= pcache_fuse_utimens,
	.statfs		= pcache_fuse_statfs,
};

/* Options: -o mem_limit=SIZE,block_size=N,strategy=NAME. */
struct pcache_fuse_opts {
	char *mem_limit;
	char *block_size;
	char *strategy;
	int help;
	char *backing;
};

enum { KEY_HELP };

#define PCACHE_FUSE_OPT(t, m) { t, offsetof(struct pcache_fuse_opts, m), 1 }
static const struct fuse_opt pcache_fuse_opt_spec[] = {
	PCACHE_FUSE_OPT("mem_limit=%s", mem_limit),
	PCACHE_FUSE_OPT("block_size=%s", block_size),
	PCACHE_FUSE_OPT("strategy=%s", strategy),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_END
};

static int pcache_fuse_opt_proc(void *data, const char *arg, int key,
				struct fuse_args *outargs)
{
	struct pcache_fuse_opts *o = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!o->backing) {
			o->backing = strdup(arg);	/* the first: BACKING_DIR */
			return 0;
		}
		return 1;			/* the mount point, for libfuse */
	case KEY_HELP:
		o->help = 1;
		return 1;			/* libfuse prints its options too */
	}
	return 1;
}

/* "64M", "1g", "4096": bytes, or -1. */
static long long parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end += (end[0] == 'i' && end[1] == 'B') ? 2 : 1;
	return *end ? -1 : (long long)v;
}

static void usage(const char *prog)
{
	printf("usage: %s BACKING_DIR MOUNTPOINT [options]\n"
	       "\n"
	       "Serves BACKING_DIR through pcache (dir backend) at MOUNTPOINT.\n"
	       "\n"
	       "pcache options:\n"
	       "    -o mem_limit=SIZE      page cache size (K, M, G suffixes)\n"
	       "    -o block_size=N        dir backend block size: 512, 1024, 2048, 4096\n"
	       "    -o strategy=NAME       naive, bounce, bounce-opt, atomic, optimistic\n"
	       "\n", prog);
}

static int pcache_fuse_configure(struct pcache_fuse *pf, const struct pcache_fuse_opts *o)
{
	struct pcache *probe;
	long long v;
	int err;

	pcache_config_init(&pf->cfg);
	pf->cfg.backend = "dir";
	pf->cfg.backend_arg = pf->backing;
	if (o->mem_limit) {
		v = parse_size(o->mem_limit);
		if (v <= 0) {
			fprintf(stderr, "pcache-fuse: bad mem_limit: %s\n", o->mem_limit);
			return -1;
		}
		pf->cfg.mem_limit = v;
	}
	if (o->block_size) {
		v = parse_size(o->block_size);
		if (v <= 0 || v > 4096) {
			fprintf(stderr, "pcache-fuse: bad block_size: %s\n", o->block_size);
			return -1;
		}
		pf->cfg.block_size = v;
	}
	if (o->strategy) {
		err = pcache_strategy_from_name(o->strategy);
		if (err < 0) {
			fprintf(stderr, "pcache-fuse: unknown strategy: %s\n", o->strategy);
			return -1;
		}
		pf->cfg.write_strategy = err;
	}
	/* Try the configuration now, before mounting; init makes the real one. */
	err = pcache_create(&pf->cfg, &probe);
	if (err) {
		fprintf(stderr, "pcache-fuse: %s: %s\n", pf->backing, pcache_strerror(err));
		return -1;
	}
	pcache_destroy(probe);
	return 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct pcache_fuse_opts o = { 0 };
	struct pcache_fuse pf = { .rootfd = -1 };
	char *fsname;
	int ret;

	if (fuse_opt_parse(&args, &o, pcache_fuse_opt_spec, pcache_fuse_opt_proc))
		return 1;
	if (o.help) {
		usage(argv[0]);
		return fuse_main(args.argc, args.argv, &pcache_fuse_ops, NULL);
	}
	if (!o.backing) {
		usage(argv[0]);
		return 1;
	}
	/* Absolute: fuse_main's daemon changes directory to /. */
	pf.backing = realpath(o.backing, NULL);
	if (!pf.backing) {
		fprintf(stderr, "pcache-fuse: %s: %s\n", o.backing, strerror(errno));
		return 1;
	}
	pf.rootfd = open(pf.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pf.rootfd < 0) {
		fprintf(stderr, "pcache-fuse: %s: %s\n", pf.backing, strerror(errno));
		return 1;
	}
	if (pcache_fuse_configure(&pf, &o))
		return 1;
	pthread_mutex_init(&pf.files_lock, NULL);
	pthread_mutex_init(&pf.rename_lock, NULL);
	pf.files.next = pf.files.prev = &pf.files;

	/*
	 * default_permissions: the kernel checks modes against getattr, since
	 * the daemon itself acts as root on the backing directory.
	 */
	if (asprintf(&fsname, "-osubtype=pcache,fsname=%s,default_permissions",
		     pf.backing) < 0 || fuse_opt_add_arg(&args, fsname))
		return 1;
	ret = fuse_main(args.argc, args.argv, &pcache_fuse_ops, &pf);
	fuse_opt_free_args(&args);
	free(fsname);
	close(pf.rootfd);
	free((char *)pf.backing);
	free(o.backing);
	free(o.mem_limit);
	free(o.block_size);
	free(o.strategy);
	/* A failed write-back at exit outranks libfuse's 8 for "ended by a signal". */
	return pf.exit_status ? pf.exit_status : ret;
}
