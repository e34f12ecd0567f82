/* savina.h: what the Savina benchmark files share: message tags, the parameters, the
 * helpers of savina.c (failure recording, checked send and spawn, the result line) and the
 * run function of each benchmark. Internal to krill-savina. */
#ifndef KRILL_PERF_SAVINA_H
#define KRILL_PERF_SAVINA_H

#include <krill.h>

#include "harness.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Message tags. Behaviours check the tag and payload length of what they get, so a
 * misdelivered message fails the run instead of skewing it. */
enum {
	T_START = 1, /* main -> root: begin the measured part */
	T_GO,        /* start or continue a batch of work (also sent to self) */
	T_INIT,      /* the pids a process needs */
	T_DONE,      /* worker -> coordinator: my part is finished */
	T_STOP,      /* finish: report if asked to, then exit */
	T_COUNT,     /* a count reported on the way out */
	T_PING,      /* pingpong, big: payload the sender's pid */
	T_PONG,      /* pingpong, big: the answer */
	T_INC,       /* count: one increment */
	T_GET,       /* count: payload the pid to send the total to */
	T_WORK,      /* fjcreate, fjthroughput: payload the angle to compute on */
	T_TOKEN,     /* threadring: payload the hops left */
	T_MEET,      /* chameneos: a struct cham_meet */
	T_CHANGE,    /* chameneos: partner -> partner, payload the new colour */
	T_READ,      /* concdict: a struct dict_req */
	T_WRITE,     /* concdict: a struct dict_req */
	T_VALUE,     /* concdict: a struct dict_reply */
	T_FIB,       /* fib: payload n */
	T_RESULT,    /* fib: payload fib(n) */
	T_TRANSFER,  /* bank: teller -> source, a struct bank_transfer */
	T_CREDIT,    /* bank: source -> destination, a struct bank_credit */
	T_ACK,       /* bank: destination -> source, credit done */
	T_REPLY,     /* bank: source -> teller, transfer done */
};

/* Work per behaviour call for processes that loop over many sends or spawns: big enough to
 * amortise the self-message, small enough that one process does not hold its scheduler. */
enum { CHUNK = 1000 };

struct params {
	const struct bench *bench;
	const char *topology; /* NULL: KRILL_TOPOLOGY or this machine */
	uint64_t schedulers, stats;
	uint64_t pings, messages, actors, hops, chameneos, meetings, workers, writes, n;
	uint64_t accounts, transactions, window;
};

struct bench {
	const char *name;
	unsigned bit; /* for struct cli_option.benches */
	int (*run)(kr_runtime *rt, const struct params *p);
	const char *summary;
};

uint64_t rnd(uint64_t *s);
bool compute(double theta);

int run_root(kr_runtime *rt, kr_behaviour b, const void *state, size_t len);
int report(kr_runtime *rt, const struct params *p, double seconds, double ops, bool ok,
	   const char *extra, ...) __attribute__((format(printf, 6, 7)));

/* savina_micro.c */
int run_pingpong(kr_runtime *rt, const struct params *p);
int run_count(kr_runtime *rt, const struct params *p);
int run_fjcreate(kr_runtime *rt, const struct params *p);
int run_fjthroughput(kr_runtime *rt, const struct params *p);
int run_threadring(kr_runtime *rt, const struct params *p);
int run_chameneos(kr_runtime *rt, const struct params *p);
int run_big(kr_runtime *rt, const struct params *p);
/* savina_conc.c */
int run_concdict(kr_runtime *rt, const struct params *p);
int run_fib(kr_runtime *rt, const struct params *p);
int run_bank(kr_runtime *rt, const struct params *p);

#endif
