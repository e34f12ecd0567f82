/* bench.h: what krill-bench's files share: message tags, the parameters, the helpers of
 * common.c (failure recording, checked send and spawn, the result line) and the run
 * function of each benchmark. Internal to krill-bench. */
#ifndef KRILL_PERF_BENCH_H
#define KRILL_PERF_BENCH_H

#include <krill.h>

#include "harness.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Message tags. Every behaviour checks the tag (and payload length) of what it gets, so a
 * misdelivered message fails the run instead of skewing it. */
enum {
	T_START = 1, /* main -> coordinator: begin the measured part */
	T_GO,        /* start or continue a batch of work (also sent to self) */
	T_DONE,      /* worker -> coordinator: my part is finished */
	T_KILL,      /* spawn: start or continue sending exits to my children */
	T_EXIT,      /* spawn: child, exit now */
	T_INIT,      /* ring, pingpong: here is your peer */
	T_READY,     /* ring: node -> head, initialised */
	T_TOKEN,     /* ring: the token, payload the hops made so far */
	T_STOP,      /* ring, pingpong: forward if you have to, then exit */
	T_SPAN,      /* skynet: parent -> child, the leaf range to cover */
	T_SUM,       /* skynet: child -> parent, the sum of its range */
	T_BALL,      /* pingpong: payload the round trips left */
	T_ITEM,      /* fanin: producer -> consumer, payload a sequence number */
	T_UP,        /* crash: supervisor -> child, the init message (payload its pid) */
	T_BORN,      /* crash: child -> driver, payload the child's pid */
	T_CRASH,     /* crash: fault now, payload 0 or the pid to send T_STAMP to first (to a
		      * child); driver -> watcher: crash this pid, payload the pid */
	T_STAMP,     /* crash: child -> watcher, payload CLOCK_MONOTONIC ns just before the fault */
	T_ADDED,     /* crash: supervisor -> driver, a kr_sup_reply for kr_sup_start_child */
};

/* Work per behaviour call for processes that loop: big enough to amortise the self-message,
 * small enough that one process does not hold its scheduler for long. */
enum {
	SPAWN_CHUNK = 10000, /* children a spawner creates, or tells to exit, per call */
	SEND_CHUNK = 1000,   /* messages a fanin producer sends per call */
};

struct params {
	const struct bench *bench;
	const char *topology; /* NULL: KRILL_TOPOLOGY or this machine */
	uint64_t schedulers, procs, laps, leaves, fanout, pairs, rounds, producers, messages;
	uint64_t children, cycles, limit, floor, size, zero_copy;
	uint64_t seconds, stats, numa, stackful;
};

struct bench {
	const char *name;
	unsigned bit; /* for struct cli_option.benches */
	int (*run)(kr_runtime *rt, const struct params *p);
	const char *summary;
};

static inline double per_second(double ops, double seconds)
{
	return seconds > 0 ? ops / seconds : 0; /* JSON has no inf */
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* common.c */
int rss_bytes(uint64_t *out);
void print_head(kr_runtime *rt, const struct params *p, double seconds, double ops);
void print_tail(void);

/* One file each; each returns the exit status. */
/* --stackful: spawn fn (linked: no) on the shared run stack (stackful 1) or a 16 KiB stack of
 * its own (2), and a blocking receive of tag (0: any); false (recorded) on failure. */
bool spawn_fn(kr_ctx *ctx, uint64_t stackful, kr_fn fn, const void *arg, size_t len, kr_pid *out);
bool recv_tag(kr_ctx *ctx, uint32_t tag, const kr_msg **m);

int run_spawn(kr_runtime *rt, const struct params *p);
int run_ring(kr_runtime *rt, const struct params *p);
int run_skynet(kr_runtime *rt, const struct params *p);
int run_pingpong(kr_runtime *rt, const struct params *p);
int run_fanin(kr_runtime *rt, const struct params *p);
int run_idle(kr_runtime *rt, const struct params *p);
int run_crash(kr_runtime *rt, const struct params *p);
int run_dist(kr_runtime *rt, const struct params *p); /* dist.c, with dist/ only */

#endif
