/* harness: what krill-bench and krill-savina share around their benchmarks: recording the
 * first failure inside a behaviour (which cannot exit the program), checked sends and spawns,
 * and running a runtime until it is done, then saying what failed. */
#ifndef KRILL_PERF_HARNESS_H
#define KRILL_PERF_HARNESS_H

#include <krill.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The program's name, in front of every message it prints (set by main). */
extern const char *harness_prog;

double now(void); /* CLOCK_MONOTONIC, in seconds */

/* In a behaviour: fail records the first failure (status 2 for a kr_* error, 1 for an
 * unexpected message) and stops the runtime; run_runtime reports it once kr_run returned. */
void fail(kr_ctx *ctx, int status, const char *what, int rc, const kr_msg *msg);
void fail_kr(kr_ctx *ctx, const char *what, int rc);
void unexpected(kr_ctx *ctx, const char *who, const kr_msg *msg);
bool post(kr_ctx *ctx, kr_pid to, uint32_t tag, const void *data, size_t len);
bool post_u64(kr_ctx *ctx, kr_pid to, uint32_t tag, uint64_t v);
bool spawn(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out);
/* Copy the payload out if it is len bytes, else fail as unexpected. */
bool take(kr_ctx *ctx, const kr_msg *msg, void *out, size_t len, const char *who);

/* In main: print "PROG: what: strerror(-rc)" and return the exit status 2. */
int bench_error(const char *what, int rc);
int out_of_memory(void);
/* Run until every process has exited (or a behaviour failed); *t_end, if given, is taken as
 * soon as kr_run returns. Returns the exit status. */
int run_runtime(kr_runtime *rt, double *t_end);

#endif
