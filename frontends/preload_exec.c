/*
 * preload_exec.c - exec and spawn: the cache is written back first.
 *
 * A new program image cannot reach this process's cache, so what the
 * program wrote and the cache still holds dirty would go with the old
 * image - where the kernel's page cache would have kept it.  The shell
 * does this all the time: `sh -c "echo x > f; cat f"` writes f itself and
 * then execs cat.  So before an exec the cache is written back to the
 * backing files (pcache_sync), which the new image then reads.
 *
 *  - Only the process that made the cache does it: a fork child has none
 *    (preload.c drops it).  So for fork-then-exec the parent writes back
 *    at fork (preload.c's fork handler), and for system, popen and
 *    posix_spawn here, before the child starts.
 *  - A clean cache is not synced again (preload_before_exec).
 *  - vfork is served by fork (below), so it writes back at fork too.  A
 *    child made with clone(CLONE_VM) past libc must not write back: it
 *    shares our memory but not our descriptors (preload_before_exec).
 *  - stdio buffers are not flushed: exec never flushes them.
 *  - If the exec fails, the program goes on with its cache written back,
 *    nothing else changed.
 *  - The memory backend has nowhere to write: its files end with the image.
 *
 * execl, execlp and execle gather their arguments and go to execv, execvp
 * and execve: glibc's own calls between them are internal, so each entry
 * point is interposed.
 */
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "preload.h"

int execvpe(const char *file, char *const argv[], char *const envp[]);
int execveat(int dirfd, const char *path, char *const argv[],
	     char *const envp[], int flags);

PRELOAD_API int execve(const char *path, char *const argv[], char *const envp[])
{
	preload_before_exec();
	return REAL(execve)(path, argv, envp);
}

PRELOAD_API int execv(const char *path, char *const argv[])
{
	preload_before_exec();
	return REAL(execv)(path, argv);
}

PRELOAD_API int execvp(const char *file, char *const argv[])
{
	preload_before_exec();
	return REAL(execvp)(file, argv);
}

PRELOAD_API int execvpe(const char *file, char *const argv[], char *const envp[])
{
	preload_before_exec();
	return REAL(execvpe)(file, argv, envp);
}

PRELOAD_API int fexecve(int fd, char *const argv[], char *const envp[])
{
	preload_before_exec();
	return REAL(fexecve)(fd, argv, envp);
}

PRELOAD_API int execveat(int dirfd, const char *path, char *const argv[],
			 char *const envp[], int flags)
{
	preload_before_exec();
	return REAL(execveat)(dirfd, path, argv, envp, flags);
}

/*
 * The arguments of an execl-style call, NULL-terminated, in a malloc'd
 * array; *@envp gets the pointer after the NULL if asked (execle).  NULL
 * (ENOMEM) if there is no memory.
 */
static char **gather(const char *arg0, va_list ap, char *const **envp)
{
	size_t n = 1, i;
	va_list count;
	char **argv;

	va_copy(count, ap);
	if (arg0)
		while (va_arg(count, char *))
			n++;
	va_end(count);
	argv = malloc((n + 1) * sizeof(*argv));
	if (!argv)
		return NULL;
	argv[0] = (char *)arg0;
	for (i = 1; arg0 && i < n; i++)
		argv[i] = va_arg(ap, char *);
	argv[arg0 ? n : 0] = NULL;
	if (arg0)
		(void)va_arg(ap, char *);	/* the NULL */
	if (envp)
		*envp = va_arg(ap, char *const *);
	return argv;
}

enum exec_kind { EXEC_V, EXEC_VP, EXEC_VE };

/* Run the gathered @argv as execv, execvp or execve would, then free it. */
static int exec_gathered(enum exec_kind kind, const char *path, char **argv,
			 char *const *envp)
{
	int r;

	if (!argv)
		return (int)preload_ret(-ENOMEM);
	if (kind == EXEC_VP)
		r = execvp(path, argv);
	else if (kind == EXEC_VE)
		r = execve(path, argv, envp);
	else
		r = execv(path, argv);
	free(argv);
	return r;
}

PRELOAD_API int execl(const char *path, const char *arg, ...)
{
	char **argv;
	va_list ap;

	va_start(ap, arg);
	argv = gather(arg, ap, NULL);
	va_end(ap);
	return exec_gathered(EXEC_V, path, argv, NULL);
}

PRELOAD_API int execlp(const char *file, const char *arg, ...)
{
	char **argv;
	va_list ap;

	va_start(ap, arg);
	argv = gather(arg, ap, NULL);
	va_end(ap);
	return exec_gathered(EXEC_VP, file, argv, NULL);
}

PRELOAD_API int execle(const char *path, const char *arg, ...)
{
	char *const *envp = NULL;
	char **argv;
	va_list ap;

	va_start(ap, arg);
	argv = gather(arg, ap, &envp);
	va_end(ap);
	return exec_gathered(EXEC_VE, path, argv, envp);
}

/*
 * Spawning: glibc's system, popen and posix_spawn start the child with
 * clone, which runs no fork handlers, so they write the cache back here.
 */
PRELOAD_API int system(const char *command)
{
	preload_before_exec();
	return REAL(system)(command);
}

PRELOAD_API FILE *popen(const char *command, const char *type)
{
	preload_before_exec();
	return REAL(popen)(command, type);
}

PRELOAD_API int posix_spawn(pid_t *pid, const char *path,
			    const posix_spawn_file_actions_t *actions,
			    const posix_spawnattr_t *attr, char *const argv[],
			    char *const envp[])
{
	preload_before_exec();
	return REAL(posix_spawn)(pid, path, actions, attr, argv, envp);
}

PRELOAD_API int posix_spawnp(pid_t *pid, const char *file,
			     const posix_spawn_file_actions_t *actions,
			     const posix_spawnattr_t *attr, char *const argv[],
			     char *const envp[])
{
	preload_before_exec();
	return REAL(posix_spawnp)(pid, file, actions, attr, argv, envp);
}

/*
 * vfork is fork here.  A vfork child shares our memory and runs no fork
 * handlers, so the parent could not write the cache back before the child
 * execs, and the child must not (see preload_before_exec).  POSIX allows
 * vfork to be fork, and a wrapper cannot call the real vfork: the child
 * would return through this function's frame, which the parent then
 * reuses.  The cost is fork's page-table copy (dash and Python's
 * subprocess use vfork for every command).
 */
PRELOAD_API pid_t vfork(void)
{
	return fork();
}
