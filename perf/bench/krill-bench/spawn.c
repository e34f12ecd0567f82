/* krill-bench spawn: spawn and hold --procs processes of 8 bytes of state: the spawn rate,
 * the bytes a process costs (RSS) and the rate of exits.
 * Written on krill.h alone; main.c picks it from the command line. */
#include "bench.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One spawner per scheduler fills its slice of pids, then reports to the coordinator. When
 * all have, the coordinator reads RSS and sends every spawner T_KILL; spawners tell their
 * children to exit and exit themselves, and kr_run returns when the last child is gone. The
 * pid array is the only shared memory, and each slice is only touched by its own spawner. */
struct spawn_run {
	kr_pid *pids;
	kr_pid *spawners;
	uint64_t nspawners, procs;
	/* Written by the coordinator, read by main after kr_run. */
	double t_start, t_spawned, t_kill;
	uint64_t rss_before, rss_held, spawned;
	/* --stackful: the children blocked in their receive so far (relaxed: a count the
	 * coordinator polls, nothing is published through it). */
	uint64_t stackful;
	_Atomic uint64_t blocked;
};

struct spawn_coord {
	struct spawn_run *run;
	uint64_t done, spawned;
};

struct spawner {
	kr_pid *pids;
	kr_pid coord;
	struct spawn_run *run;
	uint64_t lo, hi, next; /* slice [lo, hi); next: cursor of the current phase */
};

static void spawn_child(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	/* The counter is only there to give the child the 8 bytes of state being measured. */
	uint64_t *seen = state;
	++*seen;
	if (msg->tag != T_EXIT) {
		unexpected(ctx, "spawn child", msg);
		return;
	}
	kr_exit(ctx, KR_NORMAL);
}

/* --stackful: the child as straight-line code, measured blocked in kr_receive. Its arg is
 * the run (8 bytes, as the behaviour's state). */
static void spawn_child_fn(kr_ctx *ctx, void *arg)
{
	struct spawn_run *run = *(struct spawn_run **)arg;
	const kr_msg *m;
	atomic_fetch_add_explicit(&run->blocked, 1, memory_order_relaxed);
	if (recv_tag(ctx, 0, &m) && m->tag != T_EXIT)
		unexpected(ctx, "spawn child fn", m);
}

static void spawner(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	static const uint64_t zero;
	struct spawner *s = state;
	uint64_t i = s->next, end = min_u64(s->next + SPAWN_CHUNK, s->hi);

	switch (msg->tag) {
	case T_GO:
		for (; i < end; i++)
			if (s->run->stackful
				? !spawn_fn(ctx, s->run->stackful, spawn_child_fn, &s->run,
					    sizeof s->run, &s->pids[i])
				: !spawn(ctx, spawn_child, &zero, sizeof zero, &s->pids[i]))
				return;
		s->next = end;
		if (end < s->hi) {
			post(ctx, kr_self(ctx), T_GO, NULL, 0);
			return;
		}
		s->next = s->lo; /* the kill phase walks the slice again */
		post_u64(ctx, s->coord, T_DONE, s->hi - s->lo);
		return;
	case T_KILL:
		for (; i < end; i++)
			if (!post(ctx, s->pids[i], T_EXIT, NULL, 0))
				return;
		s->next = end;
		if (end < s->hi)
			post(ctx, kr_self(ctx), T_KILL, NULL, 0);
		else
			kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "spawner", msg);
}

static void spawn_coordinator(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct spawn_coord *c = state;
	struct spawn_run *run = c->run;
	uint64_t n;
	int rc;

	switch (msg->tag) {
	case T_START:
		/* Read here rather than in main so scheduler threads and their stacks exist. */
		if ((rc = rss_bytes(&run->rss_before)) < 0) {
			fail_kr(ctx, "/proc/self/statm", rc);
			return;
		}
		run->t_start = now();
		for (uint64_t i = 0; i < run->nspawners; i++)
			if (!post(ctx, run->spawners[i], T_GO, NULL, 0))
				return;
		return;
	case T_DONE:
		if (!take(ctx, msg, &n, sizeof n, "spawn coordinator"))
			return;
		c->spawned += n;
		if (++c->done < run->nspawners)
			return;
		run->t_spawned = now();
		/* fall through */
	case T_GO:
		/* --stackful: measured once every child has run to its receive. */
		if (run->stackful &&
		    atomic_load_explicit(&run->blocked, memory_order_relaxed) < c->spawned) {
			post(ctx, kr_self(ctx), T_GO, NULL, 0);
			return;
		}
		if ((rc = rss_bytes(&run->rss_held)) < 0) {
			fail_kr(ctx, "/proc/self/statm", rc);
			return;
		}
		run->spawned = c->spawned;
		run->t_kill = now();
		for (uint64_t i = 0; i < run->nspawners; i++)
			if (!post(ctx, run->spawners[i], T_KILL, NULL, 0))
				return;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "spawn coordinator", msg);
}

int run_spawn(kr_runtime *rt, const struct params *p)
{
	uint64_t n = p->procs, ns = kr_schedulers(rt);
	struct spawn_run run = {.procs = n, .nspawners = ns ? ns : 1, .stackful = p->stackful};
	kr_pid coord;
	double t_end;
	int rc, status = 2;

	run.pids = malloc(n * sizeof *run.pids);
	run.spawners = malloc(run.nspawners * sizeof *run.spawners);
	if (!run.pids || !run.spawners) {
		status = out_of_memory();
		goto out;
	}
	/* Touch every page now so the array is in the "before" RSS. A non-zero fill stops the
	 * compiler from turning malloc + memset into calloc, whose pages stay untouched. */
	memset(run.pids, 0xff, n * sizeof *run.pids);

	struct spawn_coord cs = {.run = &run};
	if ((rc = kr_rt_spawn(rt, spawn_coordinator, &cs, sizeof cs, &coord)) < 0) {
		status = bench_error("kr_rt_spawn", rc);
		goto out;
	}
	for (uint64_t i = 0; i < run.nspawners; i++) {
		struct spawner s = {
		    .pids = run.pids,
		    .coord = coord,
		    .run = &run,
		    .lo = i * n / run.nspawners,
		    .hi = (i + 1) * n / run.nspawners,
		};
		s.next = s.lo;
		if ((rc = kr_rt_spawn(rt, spawner, &s, sizeof s, &run.spawners[i])) < 0) {
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

	double spawn_s = run.t_spawned - run.t_start, exit_s = t_end - run.t_kill;
	double growth = (double)run.rss_held - (double)run.rss_before;
	uint64_t alive = kr_alive(rt);
	print_head(rt, p, spawn_s, (double)n);
	printf(",\"procs\":%" PRIu64 ",\"spawn_rate\":%.1f,\"exit_rate\":%.1f"
	       ",\"spawn_seconds\":%.6f,\"exit_seconds\":%.6f,\"bytes_per_proc\":%.1f"
	       ",\"rss_before_bytes\":%" PRIu64 ",\"rss_peak_bytes\":%" PRIu64 ",\"stackful\":%d",
	       n, per_second((double)n, spawn_s), per_second((double)n, exit_s), spawn_s, exit_s,
	       growth / (double)n, run.rss_before, run.rss_held, (int)p->stackful);
	print_tail();
	if (run.spawned != n || alive != 0) {
		fprintf(stderr,
			"krill-bench: spawn: spawned %" PRIu64 " of %" PRIu64 ", %" PRIu64
			" left alive\n",
			run.spawned, n, alive);
		status = 1;
	}
out:
	free(run.pids);
	free(run.spawners);
	return status;
}
