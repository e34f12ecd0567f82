/* krill-bench skynet: a tree of processes, --fanout children a node, --leaves leaves, that
 * sums the leaves' ordinals.
 * Written on krill.h alone; main.c picks it from the command line. */
#include "bench.h"

#include <inttypes.h>
#include <stdio.h>

/* A node covering leaf ordinals [lo, lo + size) splits them into min(fanout, size) near-equal
 * parts and spawns a child per part; a part of one is a leaf, which has no state at all and
 * answers with its ordinal. Sums and process counts flow up; each node exits once it has
 * sent its own. The root is a coordinator outside the tree that times it. */
struct sky_run {
	uint64_t leaves, fanout, stackful;
	double t_start, t_end; /* written by the root */
	uint64_t sum, procs;
};

struct sky_span {
	kr_pid parent;
	uint64_t lo, size, fanout;
	uint64_t stackful; /* --stackful (sky_fn only) */
};

struct sky_sum {
	uint64_t sum, procs;
};

struct sky_node {
	kr_pid parent;
	uint64_t pending;
	struct sky_sum acc;
};

static void sky_leaf(kr_ctx *ctx, void *state, const kr_msg *msg);
static void sky_node(kr_ctx *ctx, void *state, const kr_msg *msg);

static bool sky_start(kr_ctx *ctx, uint64_t lo, uint64_t size, uint64_t fanout)
{
	static const struct sky_node fresh;
	struct sky_span span = {.parent = kr_self(ctx), .lo = lo, .size = size, .fanout = fanout};
	kr_pid pid;
	bool ok = size == 1 ? spawn(ctx, sky_leaf, NULL, 0, &pid)
			    : spawn(ctx, sky_node, &fresh, sizeof fresh, &pid);
	return ok && post(ctx, pid, T_SPAN, &span, sizeof span);
}

static void sky_leaf(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct sky_span span;

	if (msg->tag != T_SPAN) {
		unexpected(ctx, "skynet leaf", msg);
		return;
	}
	if (!take(ctx, msg, &span, sizeof span, "skynet leaf"))
		return;
	struct sky_sum sum = {.sum = span.lo, .procs = 1};
	post(ctx, span.parent, T_SUM, &sum, sizeof sum);
	kr_exit(ctx, KR_NORMAL);
}

static void sky_node(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct sky_node *n = state;
	struct sky_span span;
	struct sky_sum sum;

	switch (msg->tag) {
	case T_SPAN: {
		if (!take(ctx, msg, &span, sizeof span, "skynet node"))
			return;
		uint64_t k = min_u64(span.fanout, span.size);
		n->parent = span.parent;
		n->pending = k; /* children's sums arrive in later calls, never during this one */
		for (uint64_t i = 0; i < k; i++) {
			uint64_t a = i * span.size / k, b = (i + 1) * span.size / k;
			if (!sky_start(ctx, span.lo + a, b - a, span.fanout))
				return;
		}
		return;
	}
	case T_SUM:
		if (!take(ctx, msg, &sum, sizeof sum, "skynet node"))
			return;
		n->acc.sum += sum.sum;
		n->acc.procs += sum.procs;
		if (--n->pending > 0)
			return;
		n->acc.procs++; /* this node */
		post(ctx, n->parent, T_SUM, &n->acc, sizeof n->acc);
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "skynet node", msg);
}

/* --stackful: a node as straight-line code, its span its arg: a leaf answers and returns; a
 * node spawns its children and blocks for their sums. */
static void sky_fn(kr_ctx *ctx, void *arg)
{
	const struct sky_span *span = arg;
	struct sky_sum acc = {.sum = span->lo, .procs = 1}, sum;
	if (span->size > 1) {
		uint64_t k = min_u64(span->fanout, span->size), stackful = span->stackful;
		acc.sum = 0;
		for (uint64_t i = 0; i < k; i++) {
			uint64_t a = i * span->size / k, b = (i + 1) * span->size / k;
			struct sky_span c = {kr_self(ctx), span->lo + a, b - a, span->fanout,
					     stackful};
			kr_pid pid;
			if (!spawn_fn(ctx, stackful, sky_fn, &c, sizeof c, &pid))
				return;
		}
		for (uint64_t i = 0; i < k; i++) {
			const kr_msg *m;
			if (!recv_tag(ctx, T_SUM, &m) ||
			    !take(ctx, m, &sum, sizeof sum, "skynet fn"))
				return;
			acc.sum += sum.sum;
			acc.procs += sum.procs;
		}
	}
	post(ctx, span->parent, T_SUM, &acc, sizeof acc);
}

static void sky_root(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct sky_run *run = *(struct sky_run **)state;
	struct sky_sum sum;

	switch (msg->tag) {
	case T_START:
		run->t_start = now();
		if (run->stackful) {
			struct sky_span span = {kr_self(ctx), 0, run->leaves, run->fanout,
						run->stackful};
			kr_pid pid;
			spawn_fn(ctx, run->stackful, sky_fn, &span, sizeof span, &pid);
		} else {
			sky_start(ctx, 0, run->leaves, run->fanout);
		}
		return;
	case T_SUM:
		run->t_end = now();
		if (!take(ctx, msg, &sum, sizeof sum, "skynet root"))
			return;
		run->sum = sum.sum;
		run->procs = sum.procs;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "skynet root", msg);
}

/* Processes in the tree, by the same split as sky_node: parts have size q or q + 1, and
 * r = size % k of them have q + 1. */
static uint64_t sky_expected_procs(uint64_t size, uint64_t fanout)
{
	if (size == 1)
		return 1;
	if (size == 0 || fanout == 0) /* no tree; the options keep both at least 1 */
		return 0;
	uint64_t k = min_u64(fanout, size), q = size / k, r = size % k;
	uint64_t n = 1 + (k - r) * sky_expected_procs(q, fanout);
	if (r > 0)
		n += r * sky_expected_procs(q + 1, fanout);
	return n;
}

int run_skynet(kr_runtime *rt, const struct params *p)
{
	uint64_t n = p->leaves;
	struct sky_run run = {.leaves = n, .fanout = p->fanout, .stackful = p->stackful};
	struct sky_run *runp = &run;
	kr_pid root;
	double t_end;
	int rc, status;

	if ((rc = kr_rt_spawn(rt, sky_root, &runp, sizeof runp, &root)) < 0)
		return bench_error("kr_rt_spawn", rc);
	if ((rc = kr_rt_send(rt, root, T_START, NULL, 0)) < 0)
		return bench_error("kr_rt_send", rc);
	if ((status = run_runtime(rt, &t_end)) != 0)
		return status;

	/* n * (n - 1) / 2 without overflowing the intermediate product */
	uint64_t expected = n % 2 == 0 ? n / 2 * (n - 1) : (n - 1) / 2 * n;
	uint64_t expected_procs = sky_expected_procs(n, p->fanout);
	bool ok = run.sum == expected && run.procs == expected_procs;
	double secs = run.t_end - run.t_start;
	print_head(rt, p, secs, (double)run.procs);
	printf(",\"leaves\":%" PRIu64 ",\"fanout\":%" PRIu64 ",\"result\":%" PRIu64
	       ",\"expected\":%" PRIu64 ",\"ok\":%s,\"processes\":%" PRIu64 ",\"stackful\":%d",
	       n, p->fanout, run.sum, expected, ok ? "true" : "false", run.procs, (int)p->stackful);
	print_tail();
	if (!ok) {
		fprintf(stderr,
			"krill-bench: skynet: sum %" PRIu64 " over %" PRIu64
			" processes, expected %" PRIu64 " over %" PRIu64 "\n",
			run.sum, run.procs, expected, expected_procs);
		return 1;
	}
	return 0;
}
