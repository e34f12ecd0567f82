/* cli: the perf programs' command line (cli.h) on getopt_long. Strict: a value is a plain
 * decimal number within the option's range, and errors are one line on stderr. */
#include "cli.h"

#include <getopt.h>
#include <string.h>

void cli_getopt_error(const char *prog, int c, char *const *argv)
{
	/* getopt_long has stepped past the option at fault (unless it was a short one in a
	 * group, where optopt names it). */
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	bool is_long = strncmp(arg, "--", 2) == 0;
	int len = is_long ? (int)strcspn(arg, "=") : 2;
	char shortopt[3] = {'-', (char)optopt, '\0'};

	if (!is_long && optopt > 0 && optopt < 128)
		arg = shortopt;
	if (c == ':')
		fprintf(stderr, "%s: %.*s needs a value\n", prog, len, arg);
	else if (is_long && optopt != 0) /* getopt_long names a known option that way */
		fprintf(stderr, "%s: %.*s takes no value\n", prog, len, arg);
	else
		fprintf(stderr, "%s: unknown option %.*s (see --help)\n", prog, len, arg);
}

void cli_usage(FILE *f, const struct cli_option *opts, size_t n, int width)
{
	fprintf(f,
		"\noptions (--name VALUE or --name=VALUE):\n"
		"  --%-*s hwloc synthetic description or XML file\n"
		"    %*s (default: $KRILL_TOPOLOGY, else this machine)\n",
		width - 4, "topology DESC", width - 4, "");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  --%s N%*s %s\n", opts[i].name,
			(int)(width - 6 - strlen(opts[i].name)), "", opts[i].help);
	fprintf(f, "  --%-*s this text\n", width - 4, "help");
}

enum cli_status cli_bench(const char *prog, int argc, char **argv, const void *table, size_t n,
			  size_t stride, void (*usage)(FILE *f), size_t *index)
{
	if (argc < 2) {
		fprintf(stderr, "%s: no benchmark given (see --help)\n", prog);
		return CLI_ERROR;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return CLI_HELP;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = *(const char *const *)((const char *)table + i * stride);
		if (strcmp(argv[1], name) == 0) {
			*index = i;
			return CLI_OK;
		}
	}
	fprintf(stderr, "%s: unknown benchmark '%s' (see --help)\n", prog, argv[1]);
	return CLI_ERROR;
}

/* getopt_long's value for the table's option i; clear of 1, ':', '?' and the short ones. */
enum { OPT_FIRST = 256, OPT_MAX = 32 };

enum cli_status cli_parse(const char *prog, int argc, char **argv, const struct cli_option *opts,
			  size_t n, const char *bench, unsigned bench_bit, void *params,
			  const char **topology, void (*usage)(FILE *f))
{
	struct option lo[OPT_MAX + 3] = {
	    {"topology", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	};
	int c;

	if (n > OPT_MAX) {
		fprintf(stderr, "%s: %zu options, cli.c holds %d\n", prog, n, (int)OPT_MAX);
		return CLI_ERROR;
	}
	for (size_t i = 0; i < n; i++)
		lo[i + 2] =
		    (struct option){opts[i].name, required_argument, NULL, OPT_FIRST + (int)i};
	/* argv + 1: BENCH stands where getopt_long expects the program's name. "-" returns
	 * other arguments in place (as 1) instead of moving them to the end; ":" reports a
	 * missing value apart from an unknown option. */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "-:h", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return CLI_HELP;
		}
		if (c == 't') {
			*topology = optarg;
			continue;
		}
		if (c == 1) {
			fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog,
				optarg);
			return CLI_ERROR;
		}
		if (c < OPT_FIRST || c >= OPT_FIRST + (int)n) {
			cli_getopt_error(prog, c, argv + 1);
			return CLI_ERROR;
		}
		const struct cli_option *o = &opts[c - OPT_FIRST];
		if (!(o->benches & bench_bit)) {
			fprintf(stderr, "%s: --%s does not apply to %s\n", prog, o->name, bench);
			return CLI_ERROR;
		}
		char opt[40];
		snprintf(opt, sizeof opt, "--%s", o->name);
		if (!cli_number(prog, opt, optarg, o->min, o->max,
				(uint64_t *)((char *)params + o->offset)))
			return CLI_ERROR;
	}
	if (optind < argc - 1) { /* after "--" */
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog,
			argv[optind + 1]);
		return CLI_ERROR;
	}
	return CLI_OK;
}

void cli_json_string(const char *s)
{
	if (!s) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}
