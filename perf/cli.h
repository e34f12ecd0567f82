/* cli: the command line krill-bench and krill-savina share: BENCH, then
 * --name VALUE (or --name=VALUE) numeric options, each stored in a uint64_t
 * field of the program's parameter struct, plus --topology DESC; and the
 * one piece of their JSON output that needs escaping. */
#ifndef KRILL_PERF_CLI_H
#define KRILL_PERF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cli_option {
	const char *name;
	size_t offset; /* of its uint64_t in the parameter struct */
	uint64_t min, max;
	unsigned benches; /* bits of the benchmarks it applies to */
	const char *help;
};

/* Which benchmark argv[1] names, in a table of n entries stride bytes apart,
 * each starting with its name (a const char *). Returns its index; -1 after
 * printing usage for --help anywhere (exit 0); -2 after a one-line error
 * (exit 2). */
int cli_bench(const char *prog, int argc, char **argv, const void *table, size_t n, size_t stride,
	      void (*usage)(FILE *f));

/* Print the options part of a usage text; width is the column of the help. */
void cli_usage(FILE *f, const struct cli_option *opts, size_t n, int width);

/* Parse argv[2..] for the benchmark named bench (bit bench_bit) into the
 * struct at params; --topology goes to *topology. Returns false after
 * printing a one-line error prefixed with prog. */
bool cli_parse(const char *prog, int argc, char **argv, const struct cli_option *opts, size_t n,
	       const char *bench, unsigned bench_bit, void *params, const char **topology);

/* Print s on stdout as a JSON string (null for NULL). */
void cli_json_string(const char *s);

#endif
