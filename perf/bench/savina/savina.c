/* krill-savina: the Savina actor benchmarks (Imam & Sarkar, AGERE! 2014) on krill's public API
 * only, with the paper's inputs scaled up to this machine. This file holds the shared helpers
 * and the command line; the benchmarks are in savina_micro.c and savina_conc.c. Same command
 * line and JSON lines as krill-bench, plus "ok": every run checks its own result and exits 1
 * when the check fails. */

#include "savina.h"
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* splitmix64: a tiny, good generator a process can keep in 8 bytes of its state. */
uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Savina's fork-join "computation": sin squared of the angle the message carries. The result
 * must lie in [0, 1]; a worker that gets anything else fails the check. */
bool compute(double theta)
{
	double s = sin(theta);
	double r = s * s;
	return r >= 0.0 && r <= 1.0;
}

/* Spawn the root process from main, send it T_START, and run it to the end. */
int run_root(kr_runtime *rt, kr_behaviour b, const void *state, size_t len)
{
	kr_pid root;
	int rc = kr_rt_spawn(rt, b, state, len, &root);
	if (rc < 0)
		return bench_error("kr_rt_spawn", rc);
	if ((rc = kr_rt_send(rt, root, T_START, NULL, 0)) < 0)
		return bench_error("kr_rt_send", rc);
	return run_runtime(rt, NULL);
}

/* Print the result line: the keys every result has, the benchmark's own (extra, a printf
 * format giving ",\"key\":value" pairs), then ok. Returns the exit status for the check, and
 * says on stderr what was wrong when it failed. */
int report(kr_runtime *rt, const struct params *p, double seconds, double ops, bool ok,
	   const char *extra, ...)
{
	va_list ap;
	printf("{\"impl\":\"krill\",\"bench\":\"%s\",\"schedulers\":%u,\"topology\":",
	       p->bench->name, kr_schedulers(rt));
	cli_json_string(p->topology);
	printf(",\"seconds\":%.6f,\"rate\":%.1f,\"stats\":%d", seconds,
	       seconds > 0 ? ops / seconds : 0, (int)p->stats);
	va_start(ap, extra);
	/* va_start is above: clang 14's analyzer misreads it. */
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	vprintf(extra, ap);
	va_end(ap);
	uint64_t alive = kr_alive(rt);
	printf(",\"ok\":%s}\n", ok && alive == 0 ? "true" : "false");
	fflush(stdout);
	if (alive != 0)
		fprintf(stderr, "krill-savina: %s: %" PRIu64 " processes left alive\n",
			p->bench->name, alive);
	if (!ok)
		fprintf(stderr, "krill-savina: %s: the result check failed (see the JSON line)\n",
			p->bench->name);
	return ok && alive == 0 ? 0 : 1;
}

/* ---- command line --------------------------------------------------------------------- */

enum {
	B_PINGPONG = 1,
	B_COUNT = 2,
	B_FJCREATE = 4,
	B_FJTHROUGHPUT = 8,
	B_THREADRING = 16,
	B_CHAMENEOS = 32,
	B_BIG = 64,
	B_CONCDICT = 128,
	B_FIB = 256,
	B_BANK = 512,
	B_ALL = 1023
};

/* Defaults: the paper's inputs scaled up so a run takes ~0.1-0.5 s on krill here (2 cores);
 * the paper's own are in the help text. */
static const struct bench benches[] = {
    {"sv-pingpong", B_PINGPONG, run_pingpong, "one pair, --pings round trips (paper: 40k)"},
    {"sv-count", B_COUNT, run_count, "--messages increments to one counter (paper: 1M)"},
    {"sv-fjcreate", B_FJCREATE, run_fjcreate, "create --actors, one message each (paper: 40k)"},
    {"sv-fjthroughput", B_FJTHROUGHPUT, run_fjthroughput,
     "--messages to each of --actors (paper: 60 x 1k)"},
    {"sv-threadring", B_THREADRING, run_threadring,
     "token --hops round --actors (paper: 100, 100k)"},
    {"sv-chameneos", B_CHAMENEOS, run_chameneos,
     "--chameneos meet --meetings times (paper: 100, 200k)"},
    {"sv-big", B_BIG, run_big, "--actors each ping random peers --pings times (paper: 120 x 20k)"},
    {"sv-concdict", B_CONCDICT, run_concdict,
     "--workers x --messages on one map, --writes % (paper: 20 x 10k, 10%)"},
    {"sv-fib", B_FIB, run_fib, "fib(--n), a process per call (paper: 25)"},
    {"sv-bank", B_BANK, run_bank, "--transactions between --accounts (paper: 1000 accounts, 50k)"},
};

static const struct cli_option options[] = {
    {"schedulers", offsetof(struct params, schedulers), 0, UINT32_MAX, B_ALL,
     "scheduler threads (default 0: one per core)"},
    {"stats", offsetof(struct params, stats), 0, 1, B_ALL,
     "publish live stats for krilltop (1) or not (0)"},
    {"pings", offsetof(struct params, pings), 1, UINT32_MAX, B_PINGPONG | B_BIG,
     "pingpong: round trips (1000000); big: pings per actor (20000)"},
    {"messages", offsetof(struct params, messages), 1, UINT32_MAX,
     B_COUNT | B_FJTHROUGHPUT | B_CONCDICT,
     "count (10000000), fjthroughput per actor (50000), concdict per worker (50000)"},
    {"actors", offsetof(struct params, actors), 1, UINT32_MAX,
     B_FJCREATE | B_FJTHROUGHPUT | B_THREADRING | B_BIG,
     "fjcreate (1000000), fjthroughput (60), threadring (100), big (120, >= 2)"},
    {"hops", offsetof(struct params, hops), 1, UINT32_MAX, B_THREADRING,
     "threadring: token passes (5000000)"},
    {"chameneos", offsetof(struct params, chameneos), 2, UINT32_MAX, B_CHAMENEOS,
     "chameneos: creatures (100)"},
    {"meetings", offsetof(struct params, meetings), 1, UINT32_MAX, B_CHAMENEOS,
     "chameneos: meetings (1000000)"},
    {"workers", offsetof(struct params, workers), 1, UINT32_MAX, B_CONCDICT,
     "concdict: workers (20)"},
    {"writes", offsetof(struct params, writes), 0, 100, B_CONCDICT,
     "concdict: percent of requests that write (10)"},
    {"n", offsetof(struct params, n), 1, 40, B_FIB, "fib: which Fibonacci number (30)"},
    {"accounts", offsetof(struct params, accounts), 2, UINT32_MAX, B_BANK, "bank: accounts (1000)"},
    {"transactions", offsetof(struct params, transactions), 1, UINT32_MAX, B_BANK,
     "bank: transfers (500000)"},
    {"window", offsetof(struct params, window), 1, UINT32_MAX, B_BANK,
     "bank: transfers outstanding at once (1000)"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void set_defaults(struct params *p)
{
	p->stats = 1;
	p->writes = 10;
	p->n = 30;
	p->accounts = 1000;
	p->transactions = 500000;
	p->window = 1000;
	p->chameneos = 100;
	p->meetings = 1000000;
	p->hops = 5000000;
	p->workers = 20;
	switch (p->bench->bit) {
	case B_PINGPONG:
		p->pings = 1000000;
		break;
	case B_BIG:
		p->pings = 20000;
		p->actors = 120;
		break;
	case B_COUNT:
		p->messages = 10000000;
		break;
	case B_FJCREATE:
		p->actors = 1000000;
		break;
	case B_FJTHROUGHPUT:
		p->actors = 60;
		p->messages = 50000;
		break;
	case B_THREADRING:
		p->actors = 100;
		break;
	case B_CONCDICT:
		p->messages = 50000;
		break;
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: krill-savina BENCH [--schedulers N] [--topology DESC] [options]\n"
		   "Runs one Savina benchmark; prints one JSON object on stdout, with \"ok\" the\n"
		   "result of its check (exit status 1 when false).\n\nbenchmarks:\n");
	for (size_t i = 0; i < COUNT(benches); i++)
		fprintf(f, "  %-16s %s\n", benches[i].name, benches[i].summary);
	cli_usage(f, options, COUNT(options), 22);
}

const char *harness_prog = "krill-savina";

int main(int argc, char **argv)
{
	struct params p = {0};
	kr_config cfg;
	kr_runtime *rt;
	int rc;

	size_t b;
	enum cli_status st = cli_bench("krill-savina", argc, argv, benches, COUNT(benches),
				       sizeof(benches[0]), usage, &b);
	if (st == CLI_OK) {
		p.bench = &benches[b];
		set_defaults(&p);
		st = cli_parse("krill-savina", argc, argv, options, COUNT(options), p.bench->name,
			       p.bench->bit, &p, &p.topology, usage);
	}
	if (st != CLI_OK)
		return st == CLI_HELP ? 0 : 2;
	if (p.bench->bit == B_BIG && p.actors < 2) {
		fprintf(stderr, "krill-savina: big needs --actors >= 2\n");
		return 2;
	}

	kr_config_init(&cfg);
	cfg.schedulers = (unsigned)p.schedulers;
	cfg.stats = (int)p.stats;
	if (p.topology)
		cfg.topology = p.topology;
	if ((rc = kr_runtime_new(&cfg, &rt)) < 0)
		return bench_error("kr_runtime_new", rc);
	int status = p.bench->run(rt, &p);
	kr_runtime_free(rt);
	return status;
}
