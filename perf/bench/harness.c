/* harness: failure recording for behaviours, checked sends and spawns, and the run of a
 * runtime, for krill-bench and krill-savina alike (harness.h). */
#include "harness.h"

#include <krill_stats.h>

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- failures inside behaviours ------------------------------------------------------- */

/* A behaviour cannot exit the program, so the first failure is recorded and the runtime
 * stopped; main reports it after kr_run returns, which orders these writes before its reads. */
static atomic_bool failed;
static struct {
	int status;       /* exit status: 2 for a kr_* error, 1 for an unexpected message */
	const char *what; /* the call that failed, or the behaviour that got the message */
	int rc;
	uint32_t tag, len;
} failure;

void fail(kr_ctx *ctx, int status, const char *what, int rc, const kr_msg *msg)
{
	if (!atomic_exchange(&failed, true)) {
		failure.status = status;
		failure.what = what;
		failure.rc = rc;
		if (msg) {
			failure.tag = msg->tag;
			failure.len = msg->len;
		}
	}
	kr_stop(kr_runtime_of(ctx));
}

void fail_kr(kr_ctx *ctx, const char *what, int rc)
{
	fail(ctx, 2, what, rc, NULL);
}

void unexpected(kr_ctx *ctx, const char *who, const kr_msg *msg)
{
	fail(ctx, 1, who, 0, msg);
}

bool post(kr_ctx *ctx, kr_pid to, uint32_t tag, const void *data, size_t len)
{
	int rc = kr_send(ctx, to, tag, data, len);
	if (rc < 0)
		fail_kr(ctx, "kr_send", rc);
	return rc >= 0;
}

bool post_u64(kr_ctx *ctx, kr_pid to, uint32_t tag, uint64_t v)
{
	return post(ctx, to, tag, &v, sizeof v);
}

bool spawn(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	int rc = kr_spawn(ctx, b, state, len, out);
	if (rc < 0)
		fail_kr(ctx, "kr_spawn", rc);
	return rc >= 0;
}

/* Copy the payload out; memcpy rather than a cast keeps aliasing rules happy at no cost. */
bool take(kr_ctx *ctx, const kr_msg *msg, void *out, size_t len, const char *who)
{
	if (msg->len != len) {
		unexpected(ctx, who, msg);
		return false;
	}
	memcpy(out, msg->data, len);
	return true;
}

/* ---- main-side helpers ---------------------------------------------------------------- */

int bench_error(const char *what, int rc)
{
	fprintf(stderr, "%s: %s: %s\n", harness_prog, what, strerror(-rc));
	return 2;
}

int out_of_memory(void)
{
	fprintf(stderr, "%s: out of memory\n", harness_prog);
	return 2;
}

/* Run until every process has exited (or a behaviour failed); *t_end is taken as soon as
 * kr_run returns. Returns the exit status. */
/* KRILL_BENCH_STATS=1: each scheduler's scheduling counters on stderr after the run (the
 * figures of docs/performance.md's "Scaling from 1 to 2 schedulers"). */
static void dump_stats(kr_runtime *rt)
{
	const char *env = getenv("KRILL_BENCH_STATS");
	if (!env || *env != '1')
		return;
	/* Sized by the runtime: the names table alone outgrew a fixed 64 KiB,
	 * and the snapshot then failed (-ENOSPC) without a word. */
	size_t len = (kr_stats_size(kr_schedulers(rt)) + 63) & ~(size_t)63;
	void *buf = aligned_alloc(64, len);
	if (!buf)
		return;
	int rc = kr_stats_snapshot(rt, buf, len);
	if (rc < 0) {
		fprintf(stderr, "%s: kr_stats_snapshot: %d\n", harness_prog, rc);
		free(buf);
		return;
	}
	kr_stats_header *h = (kr_stats_header *)buf;
	for (uint32_t i = 0; i < h->nsched; i++) {
		const kr_stats_sched *b = kr_stats_sched_at(h, i);
		fprintf(stderr,
			"sched %u: runs %" PRIu64 " msgs %" PRIu64 " steals %" PRIu64
			" stolen %" PRIu64 " given %" PRIu64 " stayed %" PRIu64 " sleeps %" PRIu64
			" wakeups %" PRIu64 " woke %" PRIu64 " lone_fails %" PRIu64
			" idle_ms %.1f busy_ms %.1f\n",
			i, b->runs, b->msgs, b->steals[0] + b->steals[1] + b->steals[2], b->stolen,
			b->given, b->stayed, b->sleeps, b->wakeups, b->woke, b->lone_fails,
			(double)b->idle_ns / 1e6, (double)b->busy_ns / 1e6);
	}
	free(buf);
}

int run_runtime(kr_runtime *rt, double *t_end)
{
	int rc = kr_run(rt);
	if (t_end)
		*t_end = now();
	dump_stats(rt);
	if (rc < 0)
		return bench_error("kr_run", rc);
	if (!atomic_load(&failed))
		return 0;
	if (failure.status == 2)
		return bench_error(failure.what, failure.rc);
	fprintf(stderr, "%s: %s: unexpected message (tag %" PRIu32 ", %" PRIu32 " bytes)\n",
		harness_prog, failure.what, failure.tag, failure.len);
	return failure.status;
}
