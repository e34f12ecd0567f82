/* cli: option parsing for the benchmark programs (cli.h). Strict: a value
 * is a plain decimal number within the option's range, and an option that
 * does not apply to the chosen benchmark is an error, not ignored. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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

int cli_bench(const char *prog, int argc, char **argv, const void *table, size_t n, size_t stride,
	      void (*usage)(FILE *f))
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return -1;
		}
	}
	if (argc < 2) {
		fprintf(stderr, "%s: no benchmark given (see --help)\n", prog);
		return -2;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = *(const char *const *)((const char *)table + i * stride);
		if (strcmp(argv[1], name) == 0)
			return (int)i;
	}
	fprintf(stderr, "%s: unknown benchmark '%s' (see --help)\n", prog, argv[1]);
	return -2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!isdigit((unsigned char)*s)) /* strtoull would accept blanks and a minus sign */
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

bool cli_parse(const char *prog, int argc, char **argv, const struct cli_option *opts, size_t n,
	       const char *bench, unsigned bench_bit, void *params, const char **topology)
{
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i], *name = arg + 2, *val = NULL;
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, arg);
			return false;
		}
		size_t len = strcspn(name, "=");
		if (name[len] == '=')
			val = name + len + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			fprintf(stderr, "%s: %s needs a value\n", prog, arg);
			return false;
		}
		if (len == strlen("topology") && strncmp(name, "topology", len) == 0) {
			*topology = val;
			continue;
		}
		const struct cli_option *o = NULL;
		for (size_t j = 0; j < n && !o; j++)
			if (strlen(opts[j].name) == len && !strncmp(opts[j].name, name, len))
				o = &opts[j];
		if (!o) {
			fprintf(stderr, "%s: unknown option --%.*s (see --help)\n", prog, (int)len,
				name);
			return false;
		}
		if (!(o->benches & bench_bit)) {
			fprintf(stderr, "%s: --%s does not apply to %s\n", prog, o->name, bench);
			return false;
		}
		uint64_t v;
		if (!parse_u64(val, &v)) {
			fprintf(stderr, "%s: --%s: '%s' is not a number\n", prog, o->name, val);
			return false;
		}
		if (v < o->min || v > o->max) {
			fprintf(stderr,
				"%s: --%s: %" PRIu64 " is out of range %" PRIu64 "..%" PRIu64 "\n",
				prog, o->name, v, o->min, o->max);
			return false;
		}
		*(uint64_t *)((char *)params + o->offset) = v;
	}
	return true;
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
