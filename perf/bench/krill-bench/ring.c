/* krill-bench ring: a token passed --laps times round a ring of --procs processes.
 * Written on krill.h alone; main.c picks it from the command line. */
#include "bench.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* Node 0 is the head: it counts laps and times them; the others hold only the next pid. Every
 * member gets T_INIT with its successor; nodes answer T_READY so the token starts only once
 * the ring is closed. After the last lap the head sends T_STOP round and exits; each node
 * forwards it and exits, and the last one's T_STOP to the dead head is dropped. */
struct ring_run {
	uint64_t procs, laps;
	double t_start, t_end; /* written by the head */
	uint64_t hops;
};

struct ring_head {
	kr_pid next;
	struct ring_run *run;
	uint64_t ready, laps;
};

struct kri_ring_init {
	kr_pid next, head;
};

static void ring_node(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	kr_pid *next = state;
	struct kri_ring_init init;
	uint64_t hops;

	switch (msg->tag) {
	case T_TOKEN:
		if (take(ctx, msg, &hops, sizeof hops, "ring node"))
			post_u64(ctx, *next, T_TOKEN, hops + 1);
		return;
	case T_INIT:
		if (!take(ctx, msg, &init, sizeof init, "ring node"))
			return;
		*next = init.next;
		post(ctx, init.head, T_READY, NULL, 0);
		return;
	case T_STOP:
		post(ctx, *next, T_STOP, NULL, 0);
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "ring node", msg);
}

/* Start the token once every member has its successor. */
static void ring_ready(kr_ctx *ctx, struct ring_head *h)
{
	if (++h->ready < h->run->procs)
		return;
	h->run->t_start = now();
	post_u64(ctx, h->next, T_TOKEN, 1); /* hops counts the one being made */
}

static void ring_head(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct ring_head *h = state;
	struct kri_ring_init init;
	uint64_t hops;

	switch (msg->tag) {
	case T_TOKEN:
		if (!take(ctx, msg, &hops, sizeof hops, "ring head"))
			return;
		if (++h->laps < h->run->laps) {
			post_u64(ctx, h->next, T_TOKEN, hops + 1);
			return;
		}
		h->run->t_end = now();
		h->run->hops = hops;
		if (h->next != kr_self(ctx)) /* a ring of one has nobody to stop */
			post(ctx, h->next, T_STOP, NULL, 0);
		kr_exit(ctx, KR_NORMAL);
		return;
	case T_INIT:
		if (take(ctx, msg, &init, sizeof init, "ring head")) {
			h->next = init.next;
			ring_ready(ctx, h); /* the head's own init counts as one member ready */
		}
		return;
	case T_READY:
		ring_ready(ctx, h);
		return;
	}
	unexpected(ctx, "ring head", msg);
}

/* --stackful: the same ring as straight-line code. A member blocks in kr_receive for its
 * successor, then for tokens; the head also waits for every member's T_READY before it
 * starts the token. */
struct ring_fn_arg {
	struct ring_run *run;
	int head;
};

static int ring_tag(const kr_msg *m, void *tag)
{
	return m->tag == (uint32_t)(uintptr_t)tag;
}

static bool ring_recv(kr_ctx *ctx, uint32_t tag, const kr_msg **m)
{
	int rc = kr_receive(ctx, tag ? ring_tag : NULL, (void *)(uintptr_t)tag, KR_INFINITY, m);
	if (rc < 0)
		fail_kr(ctx, "kr_receive", rc);
	return rc == 0;
}

static void ring_fn(kr_ctx *ctx, void *arg)
{
	const struct ring_fn_arg *a = arg;
	struct ring_run *run = a->run;
	struct kri_ring_init init;
	const kr_msg *m;
	uint64_t hops, laps = 0;
	if (!ring_recv(ctx, T_INIT, &m) || !take(ctx, m, &init, sizeof init, "ring fn"))
		return;
	if (!a->head) {
		post(ctx, init.head, T_READY, NULL, 0);
		for (;;) {
			if (!ring_recv(ctx, 0, &m))
				return;
			if (m->tag == T_STOP) {
				post(ctx, init.next, T_STOP, NULL, 0);
				return;
			}
			if (!take(ctx, m, &hops, sizeof hops, "ring fn"))
				return;
			post_u64(ctx, init.next, T_TOKEN, hops + 1);
		}
	}
	for (uint64_t ready = 1; ready < run->procs; ready++)
		if (!ring_recv(ctx, T_READY, &m))
			return;
	run->t_start = now();
	post_u64(ctx, init.next, T_TOKEN, 1);
	for (;;) {
		if (!ring_recv(ctx, T_TOKEN, &m) || !take(ctx, m, &hops, sizeof hops, "ring head"))
			return;
		if (++laps < run->laps) {
			post_u64(ctx, init.next, T_TOKEN, hops + 1);
			continue;
		}
		run->t_end = now();
		run->hops = hops;
		if (init.next != kr_self(ctx))
			post(ctx, init.next, T_STOP, NULL, 0);
		return;
	}
}

int run_ring(kr_runtime *rt, const struct params *p)
{
	uint64_t n = p->procs, total = p->procs * p->laps;
	struct ring_run run = {.procs = n, .laps = p->laps};
	struct ring_head head = {.run = &run};
	static const kr_pid no_next;
	kr_pid *ring = malloc(n * sizeof *ring);
	double t_end;
	int rc, status = 2;

	if (!ring)
		return out_of_memory();
	for (uint64_t i = 0; i < n; i++) {
		struct ring_fn_arg fa = {&run, i == 0};
		kr_fn_opts o = {.stack = p->stackful == 2 ? 16 * 1024 : 0};
		if (p->stackful)
			rc = kr_rt_spawn_fn_opts(rt, ring_fn, &fa, sizeof fa, &o, &ring[i]);
		else if (i == 0)
			rc = kr_rt_spawn(rt, ring_head, &head, sizeof head, &ring[0]);
		else
			rc = kr_rt_spawn(rt, ring_node, &no_next, sizeof no_next, &ring[i]);
		if (rc < 0) {
			status = bench_error(p->stackful ? "kr_rt_spawn_fn" : "kr_rt_spawn", rc);
			goto out;
		}
	}
	for (uint64_t i = 0; i < n; i++) {
		struct kri_ring_init init = {.next = ring[(i + 1) % n], .head = ring[0]};
		if ((rc = kr_rt_send(rt, ring[i], T_INIT, &init, sizeof init)) < 0) {
			status = bench_error("kr_rt_send", rc);
			goto out;
		}
	}
	free(ring);
	ring = NULL;
	if ((status = run_runtime(rt, &t_end)) != 0)
		goto out;

	double secs = run.t_end - run.t_start;
	print_head(rt, p, secs, (double)total);
	printf(",\"procs\":%" PRIu64 ",\"laps\":%" PRIu64 ",\"hops\":%" PRIu64
	       ",\"stackful\":%d,\"ns_per_hop\":%.1f",
	       n, p->laps, run.hops, (int)p->stackful, total ? secs * 1e9 / (double)total : 0.0);
	print_tail();
	if (run.hops != total) {
		fprintf(stderr, "krill-bench: ring: %" PRIu64 " hops, expected %" PRIu64 "\n",
			run.hops, total);
		status = 1;
	}
out:
	free(ring);
	return status;
}
