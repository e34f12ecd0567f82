/* krill-bench pingpong: --pairs independent pairs bouncing a message --rounds times.
 * Written on krill.h alone; main.c picks it from the command line. */
#include "bench.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* The coordinator starts every pinger with the round count; the pinger introduces itself to
 * its ponger and serves the ball, whose payload is the round trips left. When it reaches 0
 * the pinger stops its ponger, reports T_DONE and exits. The ponger's state is just the
 * pinger's pid; the pinger also needs the coordinator's, so it holds 16 bytes. */
struct pp_run {
	const kr_pid *pingers;
	uint64_t pairs, rounds;
	double t_start, t_end; /* written by the coordinator */
	uint64_t done;
};

struct pp_coord {
	struct pp_run *run;
	uint64_t done;
};

struct pinger {
	kr_pid ponger, coord;
};

static void pinger(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct pinger *s = state;
	uint64_t left;

	switch (msg->tag) {
	case T_BALL:
		if (!take(ctx, msg, &left, sizeof left, "pinger"))
			return;
		if (--left > 0) {
			post_u64(ctx, s->ponger, T_BALL, left);
			return;
		}
		if (post(ctx, s->ponger, T_STOP, NULL, 0))
			post(ctx, s->coord, T_DONE, NULL, 0);
		kr_exit(ctx, KR_NORMAL);
		return;
	case T_GO:
		if (!take(ctx, msg, &left, sizeof left, "pinger"))
			return;
		/* One sender, so the ponger gets T_INIT before the ball. */
		if (post_u64(ctx, s->ponger, T_INIT, kr_self(ctx)))
			post_u64(ctx, s->ponger, T_BALL, left);
		return;
	}
	unexpected(ctx, "pinger", msg);
}

static void ponger(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	kr_pid *peer = state;
	uint64_t left;

	switch (msg->tag) {
	case T_BALL:
		if (take(ctx, msg, &left, sizeof left, "ponger"))
			post_u64(ctx, *peer, T_BALL, left);
		return;
	case T_INIT:
		take(ctx, msg, peer, sizeof *peer, "ponger");
		return;
	case T_STOP:
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "ponger", msg);
}

/* --stackful: the pair as straight-line code; the pinger's arg is its struct pinger. */
static void ponger_fn(kr_ctx *ctx, void *arg)
{
	const kr_msg *m;
	kr_pid peer;
	uint64_t left;
	if (!recv_tag(ctx, T_INIT, &m) || !take(ctx, m, &peer, sizeof peer, "ponger fn"))
		return;
	for (;;) {
		if (!recv_tag(ctx, 0, &m) || m->tag == T_STOP)
			return;
		if (!take(ctx, m, &left, sizeof left, "ponger fn"))
			return;
		post_u64(ctx, peer, T_BALL, left);
	}
}

static void pinger_fn(kr_ctx *ctx, void *arg)
{
	const struct pinger *s = arg;
	const kr_msg *m;
	uint64_t left;
	if (!recv_tag(ctx, T_GO, &m) || !take(ctx, m, &left, sizeof left, "pinger fn"))
		return;
	if (!post_u64(ctx, s->ponger, T_INIT, kr_self(ctx)) ||
	    !post_u64(ctx, s->ponger, T_BALL, left))
		return;
	for (;;) {
		if (!recv_tag(ctx, T_BALL, &m) || !take(ctx, m, &left, sizeof left, "pinger fn"))
			return;
		if (--left > 0) {
			post_u64(ctx, s->ponger, T_BALL, left);
			continue;
		}
		if (post(ctx, s->ponger, T_STOP, NULL, 0))
			post(ctx, s->coord, T_DONE, NULL, 0);
		return;
	}
}

static void pp_coordinator(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct pp_coord *c = state;
	struct pp_run *run = c->run;

	switch (msg->tag) {
	case T_START:
		run->t_start = now();
		for (uint64_t i = 0; i < run->pairs; i++)
			if (!post_u64(ctx, run->pingers[i], T_GO, run->rounds))
				return;
		return;
	case T_DONE:
		if (++c->done < run->pairs)
			return;
		run->t_end = now();
		run->done = c->done;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "pingpong coordinator", msg);
}

int run_pingpong(kr_runtime *rt, const struct params *p)
{
	uint64_t pairs = p->pairs;
	kr_pid *pingers = malloc(pairs * sizeof *pingers);
	struct pp_run run = {.pingers = pingers, .pairs = pairs, .rounds = p->rounds};
	struct pp_coord cs = {.run = &run};
	static const kr_pid no_peer;
	kr_pid coord;
	double t_end;
	int rc, status = 2;

	if (!pingers)
		return out_of_memory();
	if ((rc = kr_rt_spawn(rt, pp_coordinator, &cs, sizeof cs, &coord)) < 0) {
		status = bench_error("kr_rt_spawn", rc);
		goto out;
	}
	for (uint64_t i = 0; i < pairs; i++) {
		struct pinger s = {.coord = coord};
		kr_fn_opts o = {.stack = p->stackful == 2 ? 16 * 1024 : 0};
		if (p->stackful) {
			if ((rc = kr_rt_spawn_fn_opts(rt, ponger_fn, NULL, 0, &o, &s.ponger)) < 0 ||
			    (rc = kr_rt_spawn_fn_opts(rt, pinger_fn, &s, sizeof s, &o,
						      &pingers[i])) < 0) {
				status = bench_error("kr_rt_spawn_fn", rc);
				goto out;
			}
		} else if ((rc = kr_rt_spawn(rt, ponger, &no_peer, sizeof no_peer, &s.ponger)) <
			       0 ||
			   (rc = kr_rt_spawn(rt, pinger, &s, sizeof s, &pingers[i])) < 0) {
			status = bench_error("kr_rt_spawn", rc);
			goto out;
		}
	}
	if ((rc = kr_rt_send(rt, coord, T_START, NULL, 0)) < 0) {
		status = bench_error("kr_rt_send", rc);
		goto out;
	}
	if ((status = run_runtime(rt, &t_end)) != 0)
		goto out;

	double secs = run.t_end - run.t_start;
	print_head(rt, p, secs, 2.0 * (double)pairs * (double)p->rounds);
	double msgs = 2.0 * (double)pairs * (double)p->rounds;
	printf(",\"pairs\":%" PRIu64 ",\"rounds\":%" PRIu64 ",\"messages_total\":%" PRIu64
	       ",\"pairs_done\":%" PRIu64 ",\"stackful\":%d,\"ns_per_msg\":%.1f",
	       pairs, p->rounds, 2 * pairs * p->rounds, run.done, (int)p->stackful,
	       msgs > 0 ? secs * 1e9 / msgs : 0.0);
	print_tail();
	if (run.done != pairs) {
		fprintf(stderr, "krill-bench: pingpong: %" PRIu64 " of %" PRIu64 " pairs done\n",
			run.done, pairs);
		status = 1;
	}
out:
	free(pingers);
	return status;
}
