/* krill-bench: throughput and memory benchmarks (spawn, ring, skynet, pingpong, fanin, crash,
 * idle) written against the public API only, so they measure what a user of krill.h gets. Each
 * run prints one JSON object per result on stdout, to be collected and compared across
 * implementations. */

#include <krill.h>

#include "cli.h"
#include "crashfloor.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

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

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double per_second(double ops, double seconds)
{
	return seconds > 0 ? ops / seconds : 0; /* JSON has no inf */
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
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

static void fail(kr_ctx *ctx, int status, const char *what, int rc, const kr_msg *msg)
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

static void fail_kr(kr_ctx *ctx, const char *what, int rc)
{
	fail(ctx, 2, what, rc, NULL);
}

static void unexpected(kr_ctx *ctx, const char *who, const kr_msg *msg)
{
	fail(ctx, 1, who, 0, msg);
}

static bool post(kr_ctx *ctx, kr_pid to, uint32_t tag, const void *data, size_t len)
{
	int rc = kr_send(ctx, to, tag, data, len);
	if (rc < 0)
		fail_kr(ctx, "kr_send", rc);
	return rc >= 0;
}

static bool post_u64(kr_ctx *ctx, kr_pid to, uint32_t tag, uint64_t v)
{
	return post(ctx, to, tag, &v, sizeof v);
}

static bool spawn(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	int rc = kr_spawn(ctx, b, state, len, out);
	if (rc < 0)
		fail_kr(ctx, "kr_spawn", rc);
	return rc >= 0;
}

/* Copy the payload out; memcpy rather than a cast keeps aliasing rules happy at no cost. */
static bool take(kr_ctx *ctx, const kr_msg *msg, void *out, size_t len, const char *who)
{
	if (msg->len != len) {
		unexpected(ctx, who, msg);
		return false;
	}
	memcpy(out, msg->data, len);
	return true;
}

/* ---- main-side helpers ---------------------------------------------------------------- */

struct params {
	const struct bench *bench;
	const char *topology; /* NULL: KRILL_TOPOLOGY or this machine */
	uint64_t schedulers, procs, laps, leaves, fanout, pairs, rounds, producers, messages;
	uint64_t children, cycles, limit, floor, size, zero_copy;
	uint64_t seconds, stats, numa;
};

struct bench {
	const char *name;
	unsigned bit; /* for struct cli_option.benches */
	int (*run)(kr_runtime *rt, const struct params *p);
	const char *summary;
};

static int kr_error(const char *what, int rc)
{
	fprintf(stderr, "krill-bench: %s: %s\n", what, strerror(-rc));
	return 2;
}

static int out_of_memory(void)
{
	fprintf(stderr, "krill-bench: out of memory\n");
	return 2;
}

/* Run until every process has exited (or a behaviour failed); *t_end is taken as soon as
 * kr_run returns. Returns the exit status. */
static int run_runtime(kr_runtime *rt, double *t_end)
{
	int rc = kr_run(rt);
	*t_end = now();
	if (rc < 0)
		return kr_error("kr_run", rc);
	if (!atomic_load(&failed))
		return 0;
	if (failure.status == 2)
		return kr_error(failure.what, failure.rc);
	fprintf(stderr, "krill-bench: %s: unexpected message (tag %" PRIu32 ", %" PRIu32
		" bytes)\n", failure.what, failure.tag, failure.len);
	return failure.status;
}

/* Resident set size in bytes: statm's second field counts resident pages. */
static int rss_bytes(uint64_t *out)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	int err = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -err : -EIO;
	buf[n] = '\0';
	unsigned long long size, resident;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return -EIO;
	*out = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
	return 0;
}

/* The keys every result has; the caller adds its own and ends with print_tail. */
static void print_head(kr_runtime *rt, const struct params *p, double seconds, double ops)
{
	printf("{\"impl\":\"krill\",\"bench\":\"%s\",\"schedulers\":%u,\"topology\":",
	       p->bench->name, kr_schedulers(rt));
	cli_json_string(p->topology);
	printf(",\"seconds\":%.6f,\"rate\":%.1f,\"stats\":%d,\"numa\":%d", seconds,
	       per_second(ops, seconds), (int)p->stats, (int)p->numa);
}

static void print_tail(void)
{
	puts("}");
	fflush(stdout);
}

/* ---- spawn ---------------------------------------------------------------------------- */

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
};

struct spawn_coord {
	struct spawn_run *run;
	uint64_t done, spawned;
};

struct spawner {
	kr_pid *pids;
	kr_pid coord;
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

static void spawner(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	static const uint64_t zero;
	struct spawner *s = state;
	uint64_t i = s->next, end = min_u64(s->next + SPAWN_CHUNK, s->hi);

	switch (msg->tag) {
	case T_GO:
		for (; i < end; i++)
			if (!spawn(ctx, spawn_child, &zero, sizeof zero, &s->pids[i]))
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

static int run_spawn(kr_runtime *rt, const struct params *p)
{
	uint64_t n = p->procs, ns = kr_schedulers(rt);
	struct spawn_run run = {.procs = n, .nspawners = ns ? ns : 1};
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
		status = kr_error("kr_rt_spawn", rc);
		goto out;
	}
	for (uint64_t i = 0; i < run.nspawners; i++) {
		struct spawner s = {
			.pids = run.pids,
			.coord = coord,
			.lo = i * n / run.nspawners,
			.hi = (i + 1) * n / run.nspawners,
		};
		s.next = s.lo;
		if ((rc = kr_rt_spawn(rt, spawner, &s, sizeof s, &run.spawners[i])) < 0) {
			status = kr_error("kr_rt_spawn", rc);
			goto out;
		}
	}
	if ((rc = kr_rt_send(rt, coord, T_START, NULL, 0)) < 0) {
		status = kr_error("kr_rt_send", rc);
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
	       ",\"rss_before_bytes\":%" PRIu64 ",\"rss_peak_bytes\":%" PRIu64,
	       n, per_second((double)n, spawn_s), per_second((double)n, exit_s), spawn_s, exit_s,
	       growth / (double)n, run.rss_before, run.rss_held);
	print_tail();
	if (run.spawned != n || alive != 0) {
		fprintf(stderr, "krill-bench: spawn: spawned %" PRIu64 " of %" PRIu64
			", %" PRIu64 " left alive\n", run.spawned, n, alive);
		status = 1;
	}
out:
	free(run.pids);
	free(run.spawners);
	return status;
}

/* ---- ring ----------------------------------------------------------------------------- */

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

struct ring_init {
	kr_pid next, head;
};

static void ring_node(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	kr_pid *next = state;
	struct ring_init init;
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
	struct ring_init init;
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

static int run_ring(kr_runtime *rt, const struct params *p)
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
	if ((rc = kr_rt_spawn(rt, ring_head, &head, sizeof head, &ring[0])) < 0) {
		status = kr_error("kr_rt_spawn", rc);
		goto out;
	}
	for (uint64_t i = 1; i < n; i++) {
		if ((rc = kr_rt_spawn(rt, ring_node, &no_next, sizeof no_next, &ring[i])) < 0) {
			status = kr_error("kr_rt_spawn", rc);
			goto out;
		}
	}
	for (uint64_t i = 0; i < n; i++) {
		struct ring_init init = {.next = ring[(i + 1) % n], .head = ring[0]};
		if ((rc = kr_rt_send(rt, ring[i], T_INIT, &init, sizeof init)) < 0) {
			status = kr_error("kr_rt_send", rc);
			goto out;
		}
	}
	free(ring);
	ring = NULL;
	if ((status = run_runtime(rt, &t_end)) != 0)
		goto out;

	double secs = run.t_end - run.t_start;
	print_head(rt, p, secs, (double)total);
	printf(",\"procs\":%" PRIu64 ",\"laps\":%" PRIu64 ",\"hops\":%" PRIu64, n, p->laps,
	       run.hops);
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

/* ---- skynet --------------------------------------------------------------------------- */

/* A node covering leaf ordinals [lo, lo + size) splits them into min(fanout, size) near-equal
 * parts and spawns a child per part; a part of one is a leaf, which has no state at all and
 * answers with its ordinal. Sums and process counts flow up; each node exits once it has
 * sent its own. The root is a coordinator outside the tree that times it. */
struct sky_run {
	uint64_t leaves, fanout;
	double t_start, t_end; /* written by the root */
	uint64_t sum, procs;
};

struct sky_span {
	kr_pid parent;
	uint64_t lo, size, fanout;
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

static void sky_root(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct sky_run *run = *(struct sky_run **)state;
	struct sky_sum sum;

	switch (msg->tag) {
	case T_START:
		run->t_start = now();
		sky_start(ctx, 0, run->leaves, run->fanout);
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

static int run_skynet(kr_runtime *rt, const struct params *p)
{
	uint64_t n = p->leaves;
	struct sky_run run = {.leaves = n, .fanout = p->fanout};
	struct sky_run *runp = &run;
	kr_pid root;
	double t_end;
	int rc, status;

	if ((rc = kr_rt_spawn(rt, sky_root, &runp, sizeof runp, &root)) < 0)
		return kr_error("kr_rt_spawn", rc);
	if ((rc = kr_rt_send(rt, root, T_START, NULL, 0)) < 0)
		return kr_error("kr_rt_send", rc);
	if ((status = run_runtime(rt, &t_end)) != 0)
		return status;

	/* n * (n - 1) / 2 without overflowing the intermediate product */
	uint64_t expected = n % 2 == 0 ? n / 2 * (n - 1) : (n - 1) / 2 * n;
	uint64_t expected_procs = sky_expected_procs(n, p->fanout);
	bool ok = run.sum == expected && run.procs == expected_procs;
	double secs = run.t_end - run.t_start;
	print_head(rt, p, secs, (double)run.procs);
	printf(",\"leaves\":%" PRIu64 ",\"fanout\":%" PRIu64 ",\"result\":%" PRIu64
	       ",\"expected\":%" PRIu64 ",\"ok\":%s,\"processes\":%" PRIu64,
	       n, p->fanout, run.sum, expected, ok ? "true" : "false", run.procs);
	print_tail();
	if (!ok) {
		fprintf(stderr, "krill-bench: skynet: sum %" PRIu64 " over %" PRIu64
			" processes, expected %" PRIu64 " over %" PRIu64 "\n",
			run.sum, run.procs, expected, expected_procs);
		return 1;
	}
	return 0;
}

/* ---- pingpong ------------------------------------------------------------------------- */

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

static int run_pingpong(kr_runtime *rt, const struct params *p)
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
		status = kr_error("kr_rt_spawn", rc);
		goto out;
	}
	for (uint64_t i = 0; i < pairs; i++) {
		struct pinger s = {.coord = coord};
		if ((rc = kr_rt_spawn(rt, ponger, &no_peer, sizeof no_peer, &s.ponger)) < 0 ||
		    (rc = kr_rt_spawn(rt, pinger, &s, sizeof s, &pingers[i])) < 0) {
			status = kr_error("kr_rt_spawn", rc);
			goto out;
		}
	}
	if ((rc = kr_rt_send(rt, coord, T_START, NULL, 0)) < 0) {
		status = kr_error("kr_rt_send", rc);
		goto out;
	}
	if ((status = run_runtime(rt, &t_end)) != 0)
		goto out;

	double secs = run.t_end - run.t_start;
	print_head(rt, p, secs, 2.0 * (double)pairs * (double)p->rounds);
	printf(",\"pairs\":%" PRIu64 ",\"rounds\":%" PRIu64 ",\"messages_total\":%" PRIu64
	       ",\"pairs_done\":%" PRIu64, pairs, p->rounds, 2 * pairs * p->rounds, run.done);
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

/* ---- fanin ---------------------------------------------------------------------------- */

/* The consumer doubles as coordinator: it starts the producers and exits once it has every
 * message. Producers send SEND_CHUNK items per call and re-queue themselves with T_GO. Items
 * carry their sequence number so the consumer's checksum catches corrupted payloads.
 * With --limit the consumer bounds its mailbox (kr_mailbox_limit), as Go's fanin bounds its
 * channel: a producer that meets a full mailbox stops and asks to be told (kr_notify_ready)
 * when there is room, instead of piling up messages the consumer cannot keep up with. */
struct fanin_run {
	const kr_pid *producers;
	uint64_t nproducers, messages, limit, size;
	double t_start, t_end; /* written by the consumer */
	uint64_t received, sum;
};

struct consumer {
	struct fanin_run *run;
	uint64_t received, sum, total;
};

struct producer {
	kr_pid consumer;
	uint64_t next, count, size;
	unsigned char *buf; /* copied and over 8 bytes: where the item is written first */
	bool zero_copy;
};

/* An item of size bytes: its sequence number, then that number's low byte over the rest,
 * written in full as a real producer writes its data. */
static void item_fill(unsigned char *b, uint64_t i, uint64_t size)
{
	memcpy(b, &i, sizeof i);
	memset(b + sizeof i, (int)(i & 0xff), size - sizeof i);
}

/* Send item i by copy (kr_send) or written in place (kr_msg_buf, kr_send_buf). */
static int send_item(kr_ctx *ctx, struct producer *s, uint64_t i)
{
	if (s->zero_copy) {
		unsigned char *b = kr_msg_buf(ctx, s->size);
		if (!b)
			return -ENOMEM;
		item_fill(b, i, s->size);
		return kr_send_buf(ctx, s->consumer, T_ITEM, b); /* on -EAGAIN b goes with the call */
	}
	if (!s->buf) /* 8 bytes: the number is the item */
		return kr_send(ctx, s->consumer, T_ITEM, &i, sizeof i);
	item_fill(s->buf, i, s->size);
	return kr_send(ctx, s->consumer, T_ITEM, s->buf, s->size);
}

static void consumer(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct consumer *c = state;
	struct fanin_run *run = c->run;
	uint64_t v;
	int rc;

	switch (msg->tag) {
	case T_ITEM:
		if (msg->len != run->size) {
			unexpected(ctx, "consumer", msg);
			return;
		}
		memcpy(&v, msg->data, sizeof v);
		/* A big item is read to its end, as a real consumer would. */
		if (msg->len > sizeof v && msg->data[msg->len - 1] != (unsigned char)(v & 0xff)) {
			unexpected(ctx, "consumer", msg);
			return;
		}
		c->sum += v;
		if (++c->received < c->total)
			return;
		run->t_end = now();
		run->received = c->received;
		run->sum = c->sum;
		kr_exit(ctx, KR_NORMAL);
		return;
	case T_START:
		run->t_start = now();
		if (run->limit && (rc = kr_mailbox_limit(ctx, (uint32_t)run->limit)) < 0) {
			fail_kr(ctx, "kr_mailbox_limit", rc);
			return;
		}
		for (uint64_t i = 0; i < run->nproducers; i++)
			if (!post(ctx, run->producers[i], T_GO, NULL, 0))
				return;
		return;
	}
	unexpected(ctx, "consumer", msg);
}

static void producer(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct producer *s = state;
	uint64_t end = min_u64(s->next + SEND_CHUNK, s->count);

	if (msg->tag != T_GO) {
		unexpected(ctx, "producer", msg);
		return;
	}
	for (uint64_t i = s->next; i < end; i++) {
		int rc = send_item(ctx, s, i);
		if (rc == -EAGAIN) { /* the consumer's mailbox is full: resume when it has room */
			s->next = i;
			if ((rc = kr_notify_ready(ctx, s->consumer, T_GO)) < 0)
				fail_kr(ctx, "kr_notify_ready", rc);
			return;
		}
		if (rc < 0) {
			fail_kr(ctx, "kr_send", rc);
			return;
		}
	}
	s->next = end;
	if (end < s->count)
		post(ctx, kr_self(ctx), T_GO, NULL, 0);
	else
		kr_exit(ctx, KR_NORMAL);
}

static int run_fanin(kr_runtime *rt, const struct params *p)
{
	uint64_t np = p->producers, k = p->messages, total = np * k;
	kr_pid *producers = malloc(np * sizeof *producers);
	struct fanin_run run = {.producers = producers,
				.nproducers = np,
				.messages = k,
				.limit = p->limit,
				.size = p->size};
	bool staged = !p->zero_copy && p->size > sizeof(uint64_t);
	unsigned char *bufs = staged ? calloc(np, p->size) : NULL;
	struct consumer cs = {.run = &run, .total = total};
	kr_pid cons;
	double t_end;
	int rc, status = 2;

	if (!producers || (staged && !bufs)) {
		free(producers);
		free(bufs);
		return out_of_memory();
	}
	if ((rc = kr_rt_spawn(rt, consumer, &cs, sizeof cs, &cons)) < 0) {
		status = kr_error("kr_rt_spawn", rc);
		goto out;
	}
	for (uint64_t i = 0; i < np; i++) {
		struct producer s = {.consumer = cons,
				     .count = k,
				     .size = p->size,
				     .buf = bufs ? bufs + i * p->size : NULL,
				     .zero_copy = p->zero_copy != 0};
		if ((rc = kr_rt_spawn(rt, producer, &s, sizeof s, &producers[i])) < 0) {
			status = kr_error("kr_rt_spawn", rc);
			goto out;
		}
	}
	if ((rc = kr_rt_send(rt, cons, T_START, NULL, 0)) < 0) {
		status = kr_error("kr_rt_send", rc);
		goto out;
	}
	if ((status = run_runtime(rt, &t_end)) != 0)
		goto out;

	/* np * k * (k - 1) / 2, modulo 2^64 like the consumer's sum */
	uint64_t expected_sum = np * (k % 2 == 0 ? k / 2 * (k - 1) : (k - 1) / 2 * k);
	double secs = run.t_end - run.t_start;
	print_head(rt, p, secs, (double)total);
	printf(",\"producers\":%" PRIu64 ",\"messages\":%" PRIu64 ",\"limit\":%" PRIu64
	       ",\"size\":%" PRIu64 ",\"zero_copy\":%d,\"bytes_per_s\":%.0f"
	       ",\"messages_total\":%" PRIu64 ",\"received\":%" PRIu64,
	       np, k, p->limit, p->size, (int)p->zero_copy,
	       per_second((double)total * (double)p->size, secs), total, run.received);
	print_tail();
	if (run.received != total || run.sum != expected_sum) {
		fprintf(stderr, "krill-bench: fanin: received %" PRIu64 " of %" PRIu64
			" messages, checksum %s\n", run.received, total,
			run.sum == expected_sum ? "ok" : "wrong");
		status = 1;
	}
out:
	free(producers);
	free(bufs);
	return status;
}

/* ---- idle ----------------------------------------------------------------------------- */

/* --procs processes spawned from the main thread wait for a message while the runtime sits
 * idle for --seconds; the figure is the CPU the whole program used meanwhile (getrusage),
 * in percent of one core. An idle runtime should sleep, not spin. */
static void idle_child(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	kr_exit(ctx, KR_NORMAL);
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static int run_idle(kr_runtime *rt, const struct params *p)
{
	kr_pid *pids = malloc(p->procs * sizeof(*pids));
	uint64_t state = 0;
	int rc;
	if (!pids)
		return out_of_memory();
	for (uint64_t i = 0; i < p->procs; i++) {
		rc = kr_rt_spawn(rt, idle_child, &state, sizeof(state), &pids[i]);
		if (rc < 0) {
			free(pids);
			return kr_error("kr_rt_spawn", rc);
		}
	}
	rc = kr_start(rt);
	if (rc < 0) {
		free(pids);
		return kr_error("kr_start", rc);
	}
	/* Let the schedulers finish their start-up spin before measuring. */
	usleep(200000);
	double c0 = cpu_seconds(), t0 = now();
	usleep((useconds_t)(p->seconds * 1000000));
	double cpu = cpu_seconds() - c0, wall = now() - t0;
	for (uint64_t i = 0; i < p->procs; i++)
		kr_rt_send(rt, pids[i], 0, NULL, 0);
	double t_end;
	int status = run_runtime(rt, &t_end);
	free(pids);
	if (status)
		return status;
	print_head(rt, p, wall, 0);
	printf(",\"procs\":%" PRIu64 ",\"cpu_seconds\":%.4f,\"cpu_percent\":%.3f", p->procs, cpu,
	       100.0 * cpu / wall);
	print_tail();
	return 0;
}

/* ---- crash --------------------------------------------------------------------------- */

/* A one_for_one supervisor of --children children, with an intensity no run reaches. Each
 * child, when the supervisor's init message says it is up, announces itself to the driver;
 * the driver answers T_CRASH and the child faults (a real store to address 0), the runtime
 * contains the fault, the supervisor gets the exit and starts the child again, which
 * announces itself again: one cycle. The clock runs from the moment every first child is up
 * to the moment the --cycles-th restarted child is.
 * kill_to_down: every so often the driver hands a child to the watcher instead, an otherwise
 * idle process, which monitors it and tells it to crash with a timestamp (sent to the
 * watcher just before the fault); the figure is from that stamp to the DOWN at the watcher.
 * One sample at a time; a child handed over meanwhile is crashed unwatched.
 * floor_rate: once the runtime has stopped, the same --cycles bare fault-and-jump cycles on
 * as many threads (crashfloor.c), what the kernel alone allows; of_floor is rate over it. */
enum { CRASH_SAMPLES = 10000 };

struct crash_run {
	uint64_t children, cycles;
	kr_pid *first; /* the first incarnations, crashed together at the start */
	uint64_t *lat_ns; /* written by the watcher */
	/* Written by the driver (nlat by the watcher), read by main after kr_run. */
	double t_start, t_end;
	uint64_t rss_start, rss_end, born, nlat;
	uint32_t sup_reason;
};

struct crash_driver {
	struct crash_run *run;
	kr_pid sup, watcher;
	uint64_t born, crashes, every;
};

struct crash_watcher {
	struct crash_run *run;
	kr_pid watched;
	uint64_t stamp;
	bool stamped;
};

/* A real store to address 0. The pointer is volatile (zero at run time) so the compiler can
 * neither fold the store nor drop it as undefined; UBSan is told it is meant. */
static int *volatile crash_null;

__attribute__((noinline, no_sanitize("undefined"))) static void crash_now(void)
{
	*(volatile int *)crash_null = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void crash_child(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	kr_pid driver, self = kr_self(ctx);
	kr_pid stamp_to;

	memcpy(&driver, state, sizeof driver);
	switch (msg->tag) {
	case T_UP:
		post(ctx, driver, T_BORN, &self, sizeof self);
		return;
	case T_CRASH:
		/* payload: 0, or the watcher to send the time of the fault to */
		if (!take(ctx, msg, &stamp_to, sizeof stamp_to, "crash child"))
			return;
		if (stamp_to)
			post_u64(ctx, stamp_to, T_STAMP, mono_ns());
		crash_now();
		return;
	}
	unexpected(ctx, "crash child", msg);
}

static void crash_watcher(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct crash_watcher *w = state;
	struct crash_run *run = w->run;
	kr_exit_info x;
	kr_pid pid, self = kr_self(ctx), none = 0;
	uint64_t ref;
	int rc;

	switch (msg->tag) {
	case T_CRASH: /* from the driver: crash this one */
		if (!take(ctx, msg, &pid, sizeof pid, "crash watcher"))
			return;
		if (w->watched || run->nlat == CRASH_SAMPLES) {
			post(ctx, pid, T_CRASH, &none, sizeof none);
			return;
		}
		if ((rc = kr_monitor(ctx, pid, &ref)) < 0) {
			fail_kr(ctx, "kr_monitor", rc);
			return;
		}
		w->watched = pid;
		w->stamped = false;
		post(ctx, pid, T_CRASH, &self, sizeof self);
		return;
	case T_STAMP:
		if (take(ctx, msg, &w->stamp, sizeof w->stamp, "crash watcher"))
			w->stamped = true;
		return;
	case KR_TAG_DOWN:
		memcpy(&x, msg->data, offsetof(kr_exit_info, payload));
		if (x.pid != w->watched || !w->stamped || x.reason != KR_FAULT) {
			unexpected(ctx, "crash watcher", msg);
			return;
		}
		run->lat_ns[run->nlat++] = mono_ns() - w->stamp;
		w->watched = 0;
		return;
	case T_STOP:
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "crash watcher", msg);
}

/* Crash pid, through the watcher every d->every crashes. */
static bool crash_one(kr_ctx *ctx, struct crash_driver *d, kr_pid pid)
{
	static const kr_pid none;
	if (d->crashes++ % d->every == 0)
		return post(ctx, d->watcher, T_CRASH, &pid, sizeof pid);
	return post(ctx, pid, T_CRASH, &none, sizeof none);
}

static void crash_driver(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct crash_driver *d = state;
	struct crash_run *run = d->run;
	kr_exit_info x;
	kr_pid pid;
	int rc;

	switch (msg->tag) {
	case T_START: {
		kr_pid self = kr_self(ctx);
		kr_sup_flags flags = {KR_ONE_FOR_ONE, UINT32_MAX, 1000};
		kr_child_spec spec = {
			.id = "crasher",
			.start = crash_child,
			.arg = &self,
			.arg_len = sizeof self,
			.restart = KR_PERMANENT,
			.shutdown_ms = 1000,
			.init_tag = T_UP,
		};
		struct crash_watcher w = {.run = run};
		if (!spawn(ctx, crash_watcher, &w, sizeof w, &d->watcher))
			return;
		/* Trap exits: the supervisor's end, which we ask for, must not end us. */
		kr_trap_exit(ctx, 1);
		if ((rc = kr_sup_spawn(ctx, &flags, &spec, 1, &d->sup)) < 0) {
			fail_kr(ctx, "kr_sup_spawn", rc);
			return;
		}
		/* The others as children started on request (ids need not be unique
		 * there): the same spec, the same restarts. */
		for (uint64_t i = 1; i < run->children; i++)
			if ((rc = kr_sup_start_child(ctx, d->sup, &spec, T_ADDED)) < 0) {
				fail_kr(ctx, "kr_sup_start_child", rc);
				return;
			}
		return;
	}
	case T_ADDED: {
		kr_sup_reply r;
		if (take(ctx, msg, &r, sizeof r, "crash driver") && r.rc < 0)
			fail_kr(ctx, "kr_sup_start_child", r.rc);
		return;
	}
	case T_BORN:
		if (!take(ctx, msg, &pid, sizeof pid, "crash driver"))
			return;
		if (++d->born <= run->children) {
			run->first[d->born - 1] = pid;
			if (d->born < run->children)
				return;
			if ((rc = rss_bytes(&run->rss_start)) < 0) {
				fail_kr(ctx, "/proc/self/statm", rc);
				return;
			}
			run->t_start = now();
			for (uint64_t i = 0; i < run->children && d->crashes < run->cycles; i++)
				if (!crash_one(ctx, d, run->first[i]))
					return;
			return;
		}
		if (d->born < run->children + run->cycles) {
			if (d->crashes < run->cycles)
				crash_one(ctx, d, pid);
			return;
		}
		/* Every cycle done: the last restarted child is up. */
		run->t_end = now();
		run->born = d->born;
		if ((rc = rss_bytes(&run->rss_end)) < 0) {
			fail_kr(ctx, "/proc/self/statm", rc);
			return;
		}
		post(ctx, d->watcher, T_STOP, NULL, 0);
		if ((rc = kr_send_exit(ctx, d->sup, KR_SHUTDOWN)) < 0)
			fail_kr(ctx, "kr_send_exit", rc);
		return;
	case KR_TAG_EXIT:
		memcpy(&x, msg->data, offsetof(kr_exit_info, payload));
		if (x.pid != d->sup) {
			unexpected(ctx, "crash driver", msg);
			return;
		}
		run->sup_reason = x.reason;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "crash driver", msg);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int run_crash(kr_runtime *rt, const struct params *p)
{
	struct crash_run run = {.children = p->children, .cycles = p->cycles};
	kr_pid driver;
	double t_end;
	int rc, status = 2;

	run.first = malloc(run.children * sizeof *run.first);
	run.lat_ns = malloc(CRASH_SAMPLES * sizeof *run.lat_ns);
	if (!run.first || !run.lat_ns) {
		status = out_of_memory();
		goto out;
	}
	/* Aim at twice the samples kept: one at a time, some find the watcher busy. */
	struct crash_driver d = {.run = &run};
	d.every = run.cycles / (2 * CRASH_SAMPLES) > 1 ? run.cycles / (2 * CRASH_SAMPLES) : 1;
	if ((rc = kr_rt_spawn(rt, crash_driver, &d, sizeof d, &driver)) < 0) {
		status = kr_error("kr_rt_spawn", rc);
		goto out;
	}
	if ((rc = kr_rt_send(rt, driver, T_START, NULL, 0)) < 0) {
		status = kr_error("kr_rt_send", rc);
		goto out;
	}
	if ((status = run_runtime(rt, &t_end)) != 0)
		goto out;

	double secs = run.t_end - run.t_start, med = 0, p99 = 0;
	if (run.nlat) {
		qsort(run.lat_ns, run.nlat, sizeof *run.lat_ns, cmp_u64);
		med = (double)run.lat_ns[run.nlat / 2] / 1e3;
		p99 = (double)run.lat_ns[run.nlat * 99 / 100] / 1e3;
	}
	uint64_t alive = kr_alive(rt);
	/* The floor after the run, when the runtime's handler is gone again: the same cycles on
	 * as many threads, with nothing but the kernel's fault and the jump back. */
	double floor_rate = 0, rate = per_second((double)run.cycles, secs);
	if (p->floor && (rc = crash_floor(kr_schedulers(rt), run.cycles, &floor_rate)) < 0) {
		status = kr_error("crash floor", rc);
		goto out;
	}
	print_head(rt, p, secs, (double)run.cycles);
	printf(",\"children\":%" PRIu64 ",\"cycles\":%" PRIu64 ",\"restarts\":%" PRIu64
	       ",\"kill_to_down_us\":%.2f,\"kill_to_down_p99_us\":%.2f,\"kill_to_down_samples\":%"
	       PRIu64 ",\"rss_start_bytes\":%" PRIu64 ",\"rss_end_bytes\":%" PRIu64,
	       run.children, run.cycles, run.born - run.children, med, p99, run.nlat,
	       run.rss_start, run.rss_end);
	if (p->floor)
		printf(",\"floor_rate\":%.1f,\"of_floor\":%.3f", floor_rate,
		       floor_rate > 0 ? rate / floor_rate : 0);
	print_tail();
	if (run.born != run.children + run.cycles || run.sup_reason != KR_SHUTDOWN || alive != 0) {
		fprintf(stderr, "krill-bench: crash: %" PRIu64 " of %" PRIu64 " restarts, supervisor"
			" reason %" PRIu32 ", %" PRIu64 " left alive\n", run.born - run.children,
			run.cycles, run.sup_reason, alive);
		status = 1;
	}
out:
	free(run.first);
	free(run.lat_ns);
	return status;
}

/* ---- command line --------------------------------------------------------------------- */

enum { B_SPAWN = 1, B_RING = 2, B_SKYNET = 4, B_PINGPONG = 8, B_FANIN = 16, B_IDLE = 32,
       B_CRASH = 64, B_ALL = 127 };

static const struct bench benches[] = {
	{"spawn", B_SPAWN, run_spawn, "spawn --procs processes with 8 bytes of state, exit them"},
	{"ring", B_RING, run_ring, "pass a token --laps times round a ring of --procs processes"},
	{"skynet", B_SKYNET, run_skynet, "tree with --fanout children a node, --leaves leaves"},
	{"pingpong", B_PINGPONG, run_pingpong, "--pairs pairs bounce a message --rounds times"},
	{"fanin", B_FANIN, run_fanin, "--producers each send --messages messages to one process"},
	{"idle", B_IDLE, run_idle, "CPU used by an idle runtime holding --procs waiting processes"},
	{"crash", B_CRASH, run_crash, "--children of a supervisor segfault and restart --cycles times"},
};


static const struct cli_option options[] = {
	{"schedulers", offsetof(struct params, schedulers), 0, UINT32_MAX, B_ALL,
	 "scheduler threads (default 0: one per core)"},
	{"procs", offsetof(struct params, procs), 1, UINT32_MAX, B_SPAWN | B_RING | B_IDLE,
	 "processes (spawn, idle: 1000000, ring: 10000)"},
	{"seconds", offsetof(struct params, seconds), 1, 3600, B_IDLE,
	 "idle: seconds to measure (10)"},
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
	{"rounds", offsetof(struct params, rounds), 1, UINT64_MAX, B_PINGPONG,
	 "pingpong: round trips per pair (10000)"},
	{"producers", offsetof(struct params, producers), 1, UINT32_MAX, B_FANIN,
	 "fanin: producer processes (2)"},
	{"limit", offsetof(struct params, limit), 0, UINT32_MAX, B_FANIN,
	 "fanin: the consumer's mailbox limit, like a Go channel's buffer (0: none)"},
	{"messages", offsetof(struct params, messages), 1, UINT64_MAX, B_FANIN,
	 "fanin: messages per producer (2000000)"},
	{"size", offsetof(struct params, size), 8, 1u << 20, B_FANIN,
	 "fanin: bytes a message, all written by the producer (8)"},
	{"zero-copy", offsetof(struct params, zero_copy), 0, 1, B_FANIN,
	 "fanin: write each message in place and send it (kr_msg_buf, kr_send_buf) (1) "
	 "or copy it (kr_send) (0)"},
	{"children", offsetof(struct params, children), 1, 1u << 24, B_CRASH,
	 "crash: children of the supervisor (1000)"},
	{"cycles", offsetof(struct params, cycles), 1, UINT64_MAX / 2, B_CRASH,
	 "crash: crash-and-restart cycles (1000000)"},
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

/* Fills p from argv[2..]; returns false after printing the error. */
static bool parse_options(int argc, char **argv, struct params *p)
{
	return cli_parse("krill-bench", argc, argv, options, COUNT(options), p->bench->name,
			 p->bench->bit, p, &p->topology);
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
	if (what)
		fprintf(stderr, "krill-bench: %s overflows 64 bits\n", what);
	return !what;
}

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

	int b = cli_bench("krill-bench", argc, argv, benches, COUNT(benches), sizeof(benches[0]), usage);
	if (b < 0)
		return b == -1 ? 0 : 2;
	p.bench = &benches[b];
	if (p.bench->bit == B_SPAWN || p.bench->bit == B_IDLE)
		p.procs = 1000000;
	if (!parse_options(argc, argv, &p) || !check_products(&p))
		return 2;

	kr_config_init(&cfg);
	cfg.schedulers = (unsigned)p.schedulers;
	cfg.stats = (int)p.stats;
	cfg.numa = (int)p.numa;
	if (p.topology)
		cfg.topology = p.topology;
	if ((rc = kr_runtime_new(&cfg, &rt)) < 0)
		return kr_error("kr_runtime_new", rc);
	int status = p.bench->run(rt, &p);
	kr_runtime_free(rt);
	return status;
}
