/*
 * pcache.c - the pcache command: one binary, one subcommand per job.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "bench",  cmd_bench,  "benchmarks side by side with the kernel's page cache" },
	{ "crash",  cmd_crash,  "crash safety: kill a child that fsyncs, check the backing files" },
	{ "demo",   cmd_demo,   "a short tour: writes, reads, truncate, faults, stats" },
	{ "flood",  cmd_flood,  "write flood on the dir backend: the memory limit and peak RSS" },
	{ "stress", cmd_stress, "model-based random test: pcache vs a trivially correct model" },
	{ "torture", cmd_torture, "the 2007 RFC's deadlocks and corruption, per write strategy" },
};

static int usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: pcache COMMAND [OPTIONS]\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'pcache COMMAND --help' describes a command's options.\n");
	return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help"))
		return usage(stdout);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "pcache: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
