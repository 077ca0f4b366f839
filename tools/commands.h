/*
 * commands.h - the subcommands of build/pcache.  Each takes the arguments
 * after its own name (argv[0] is the subcommand name) and returns the
 * process exit status.
 */
#ifndef PCACHE_TOOLS_COMMANDS_H
#define PCACHE_TOOLS_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

int cmd_bench(int argc, char **argv);
int cmd_crash(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_flood(int argc, char **argv);
int cmd_stress(int argc, char **argv);
int cmd_torture(int argc, char **argv);

/* Command-line helpers (cli.c). */
/* "pcache CMD: message" and "Try 'pcache CMD --help'." on stderr; returns 2. */
int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* An unsigned number; with @suffix, k/m/g (KiB/MiB/GiB, then "iB" or "B"). */
bool parse_u64(const char *s, bool suffix, uint64_t *out);

/* The "dir" section of pcache bench (bench_dir.c). */
int bench_dir(bool quick, int reps);

#endif
