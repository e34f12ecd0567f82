/* krill-bench: throughput and memory benchmarks (spawn, ring, skynet, pingpong, fanin, crash,
 * idle, dist) written against the public API only, so they measure what a user of krill.h gets.
 * Each run prints one JSON object per result on stdout, to be collected and compared across
 * implementations. This file is the command line; each benchmark has a file of its own. */
#include "bench.h"
#include "cli.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

enum {
	B_SPAWN = 1,
	B_RING = 2,
	B_SKYNET = 4,
	B_PINGPONG = 8,
	B_FANIN = 16,
	B_IDLE = 32,
	B_CRASH = 64,
	B_DIST = 128, /* built with dist/ only (KRILL_BENCH_DIST) */
	B_ALL = 255
};

static const struct bench benches[] = {
    {"spawn", B_SPAWN, run_spawn, "spawn --procs processes with 8 bytes of state, exit them"},
    {"ring", B_RING, run_ring, "pass a token --laps times round a ring of --procs processes"},
    {"skynet", B_SKYNET, run_skynet, "tree with --fanout children a node, --leaves leaves"},
    {"pingpong", B_PINGPONG, run_pingpong, "--pairs pairs bounce a message --rounds times"},
    {"fanin", B_FANIN, run_fanin, "--producers each send --messages messages to one process"},
    {"idle", B_IDLE, run_idle, "CPU used by an idle runtime holding --procs waiting processes"},
    {"crash", B_CRASH, run_crash, "--children of a supervisor segfault and restart --cycles times"},
#ifdef KRILL_BENCH_DIST
    {"dist", B_DIST, run_dist,
     "krill-krill, krill-erlang, erlang-erlang nodes and the kernel floor: --rounds echoes, "
     "--messages one way; each node half the cores unless --schedulers"},
#endif
};

static const struct cli_option options[] = {
    {"schedulers", offsetof(struct params, schedulers), 0, UINT32_MAX, B_ALL,
     "scheduler threads (default 0: one per core)"},
    {"procs", offsetof(struct params, procs), 1, UINT32_MAX, B_SPAWN | B_RING | B_IDLE,
     "processes (spawn, idle: 1000000, ring: 10000)"},
    {"seconds", offsetof(struct params, seconds), 1, 3600, B_IDLE, "idle: seconds to measure (10)"},
    {"stats", offsetof(struct params, stats), 0, 1, B_ALL,
     "publish live stats for krilltop (1) or not (0)"},
    {"numa", offsetof(struct params, numa), 0, 1, B_ALL,
     "NUMA-aware stealing and memory (1) or flat stealing (0)"},
    {"laps", offsetof(struct params, laps), 1, UINT64_MAX, B_RING,
     "ring: times the token goes round (1000)"},
    {"leaves", offsetof(struct params, leaves), 1, UINT32_MAX, B_SKYNET,
     "skynet: leaf processes (1000000)"},
    {"fanout", offsetof(struct params, fanout), 2, 1u << 20, B_SKYNET,
     "skynet: children per node (10)"},
    {"pairs", offsetof(struct params, pairs), 1, UINT32_MAX, B_PINGPONG,
     "pingpong: independent pairs (1000)"},
    {"rounds", offsetof(struct params, rounds), 1, UINT64_MAX, B_PINGPONG | B_DIST,
     "pingpong: round trips per pair (10000); dist: round trips timed for p50/p99 (2000)"},
    {"producers", offsetof(struct params, producers), 1, UINT32_MAX, B_FANIN,
     "fanin: producer processes (2)"},
    {"limit", offsetof(struct params, limit), 0, UINT32_MAX, B_FANIN,
     "fanin: the consumer's mailbox limit, like a Go channel's buffer (0: none)"},
    {"messages", offsetof(struct params, messages), 1, UINT64_MAX, B_FANIN | B_DIST,
     "fanin: messages per producer (2000000); dist: messages sent one way (100000)"},
    {"size", offsetof(struct params, size), 8, 1u << 20, B_FANIN,
     "fanin: bytes a message, all written by the producer (8)"},
    {"zero-copy", offsetof(struct params, zero_copy), 0, 1, B_FANIN,
     "fanin: write each message in place and send it (kr_msg_buf, kr_send_buf) (1) "
     "or copy it (kr_send) (0)"},
    {"children", offsetof(struct params, children), 1, 1u << 24, B_CRASH,
     "crash: children of the supervisor (1000)"},
    {"cycles", offsetof(struct params, cycles), 1, UINT64_MAX / 2, B_CRASH,
     "crash: crash-and-restart cycles (1000000)"},
    {"stackful", offsetof(struct params, stackful), 0, 2, B_RING | B_SPAWN | B_SKYNET | B_PINGPONG,
     "ring, spawn, skynet, pingpong: the same program as straight-line functions (kr_spawn_fn, "
     "kr_receive) on the shared run stack (1) or on 16 KiB stacks of their own (2), or "
     "behaviours (0)"},
    {"floor", offsetof(struct params, floor), 0, 1, B_CRASH,
     "crash: also time the bare fault-and-jump loop, floor_rate and of_floor (1) or not (0)"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: krill-bench BENCH [--schedulers N] [--topology DESC] [options]\n"
		   "Runs one benchmark; prints one JSON object per result on stdout.\n"
		   "\nbenchmarks:\n");
	for (size_t i = 0; i < COUNT(benches); i++)
		fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
	cli_usage(f, options, COUNT(options), 20);
}

/* Counts the measured parts multiply; refuse what would wrap. */
static bool check_products(const struct params *p)
{
	const char *what = NULL;
	if (p->bench->bit == B_RING && p->laps > UINT64_MAX / p->procs)
		what = "--procs * --laps";
	else if (p->bench->bit == B_PINGPONG && p->rounds > UINT64_MAX / 2 / p->pairs)
		what = "2 * --pairs * --rounds";
	else if (p->bench->bit == B_FANIN && p->messages > UINT64_MAX / p->producers)
		what = "--producers * --messages";
	else if (p->bench->bit == B_DIST && p->rounds > SIZE_MAX / sizeof(double))
		what = "--rounds * 8 bytes";
	if (what)
		fprintf(stderr, "krill-bench: %s overflows 64 bits\n", what);
	return !what;
}

const char *harness_prog = "krill-bench";

int main(int argc, char **argv)
{
	struct params p = {
	    .procs = 10000,
	    .laps = 1000,
	    .leaves = 1000000,
	    .fanout = 10,
	    .pairs = 1000,
	    /* 20 M messages, 0.2-0.4 s: at 1,000 rounds a run lasted 20-40 ms
	     * and its rate swung 2x with the VM's second vCPU waking up. */
	    .rounds = 10000,
	    .producers = 2,
	    .messages = 2000000,
	    .size = 8,
	    .seconds = 10,
	    .children = 1000,
	    .cycles = 1000000,
	    .floor = 1,
	    .stats = 1,
	    .numa = 1,
	};
	kr_config cfg;
	kr_runtime *rt;
	int rc;

	size_t b;
	enum cli_status st = cli_bench("krill-bench", argc, argv, benches, COUNT(benches),
				       sizeof(benches[0]), usage, &b);
	if (st == CLI_OK) {
		p.bench = &benches[b];
		if (p.bench->bit == B_SPAWN || p.bench->bit == B_IDLE)
			p.procs = 1000000;
		if (p.bench->bit == B_DIST) { /* small: the three pairs in well under 20 s */
			p.messages = 100000;
			p.rounds = 2000;
		}
		st = cli_parse("krill-bench", argc, argv, options, COUNT(options), p.bench->name,
			       p.bench->bit, &p, &p.topology, usage);
	}
	if (st != CLI_OK)
		return st == CLI_HELP ? 0 : 2;
	if (!check_products(&p))
		return 2;

	/* dist: its nodes share this machine, where a cluster's would each have one: unless
	 * --schedulers says otherwise every node of the run (the erl ones too, +S) gets half the
	 * cores. With all of them each, four scheduler threads took turns on two vCPUs and a
	 * woken one waited out another's slice (docs/performance.md, "Distribution"). */
	if (p.bench->bit == B_DIST && !p.schedulers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;
		p.schedulers = n > 1 ? (uint64_t)n : 1;
	}
	kr_config_init(&cfg);
	cfg.schedulers = (unsigned)p.schedulers;
	cfg.stats = (int)p.stats;
	/* dist: two krill nodes (this process and its re-run) share this machine's cores with
	 * each other and with the erl nodes. Pinned, each runtime puts scheduler i on CPU i, and
	 * when the two nodes' busy schedulers sit on different CPUs every hop of a round trip
	 * wakes a halted vCPU: p50 about 2x and p99 in milliseconds in most runs
	 * (docs/performance.md, "Distribution"). Unpinned, as erl's schedulers are by default
	 * (+sbt u), the kernel places the woken thread. Two nodes of a cluster on one set of
	 * cores is this benchmark's setup, not a deployment's. */
	if (p.bench->bit == B_DIST)
		cfg.pin = 0;
	cfg.numa = (int)p.numa;
	if (p.topology)
		cfg.topology = p.topology;
	if ((rc = kr_runtime_new(&cfg, &rt)) < 0)
		return bench_error("kr_runtime_new", rc);
	int status = p.bench->run(rt, &p);
	kr_runtime_free(rt);
	return status;
}
