/* cli: the command line of the perf programs, on libc's getopt_long. Every program checks its
 * numbers with cli_number and reports getopt's errors with cli_getopt_error; krill-bench and
 * krill-savina share a table-driven form: BENCH, then numeric options, each stored in a
 * uint64_t field of the program's parameter struct, plus --topology DESC. */
#ifndef KRILL_PERF_CLI_H
#define KRILL_PERF_CLI_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* What a parse came to: go on, the usage was printed (exit 0), or a one-line error was
 * (exit 2). */
enum cli_status { CLI_OK, CLI_HELP, CLI_ERROR };

/* s as a plain decimal number in [min, max] into *out. Otherwise prints "PROG: OPT: 'S' is
 * not a number" or "PROG: OPT: N is out of range MIN..MAX" on stderr and returns false.
 * Inline so that the static analyzer sees the range a value is in. */
static inline bool cli_number(const char *prog, const char *opt, const char *s, uint64_t min,
			      uint64_t max, uint64_t *out)
{
	char *end;

	/* strtoull alone would accept blanks and a minus sign */
	if (!s || *s < '0' || *s > '9') {
		fprintf(stderr, "%s: %s: '%s' is not a number\n", prog, opt, s ? s : "");
		return false;
	}
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		fprintf(stderr, "%s: %s: '%s' is not a number\n", prog, opt, s);
		return false;
	}
	if (v < min || v > max) {
		fprintf(stderr, "%s: %s: %llu is out of range %" PRIu64 "..%" PRIu64 "\n", prog,
			opt, v, min, max);
		return false;
	}
	*out = v;
	return true;
}

/* One line on stderr for what getopt_long returned as c, ':' (a value is missing) or '?' (an
 * unknown option, or a value given to one that takes none), with opterr set to 0 and argv
 * the vector getopt_long was given. */
void cli_getopt_error(const char *prog, int c, char *const *argv);

struct cli_option {
	const char *name;
	size_t offset; /* of its uint64_t in the parameter struct */
	uint64_t min, max;
	unsigned benches; /* bits of the benchmarks it applies to */
	const char *help;
};

/* Which benchmark argv[1] names, in a table of n entries stride bytes apart, each starting
 * with its name (a const char *), into *index. --help or -h in its place prints usage. */
enum cli_status cli_bench(const char *prog, int argc, char **argv, const void *table, size_t n,
			  size_t stride, void (*usage)(FILE *f), size_t *index);

/* Print the options part of a usage text; width is the column of the help. */
void cli_usage(FILE *f, const struct cli_option *opts, size_t n, int width);

/* Parse argv[2..] for the benchmark named bench (bit bench_bit) into the struct at params;
 * --topology goes to *topology, --help prints usage. An option that does not apply to the
 * benchmark is an error, not ignored. */
enum cli_status cli_parse(const char *prog, int argc, char **argv, const struct cli_option *opts,
			  size_t n, const char *bench, unsigned bench_bit, void *params,
			  const char **topology, void (*usage)(FILE *f));

/* Print s on stdout as a JSON string (null for NULL). */
void cli_json_string(const char *s);

#endif
