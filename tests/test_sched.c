/* Tests for the scheduling policy (core/sched/sched.c, "Stealing only what waits"): a hub's
 * clients, which its wake-ups queue one after another and which drain as fast as they fill,
 * are not carried off by an idle scheduler one steal at a time, and the hub, woken by a
 * client elsewhere, stays where it ran (wake placement); a burst that outlasts the
 * cost of moving it is still shared, and so is one behind a long call. The counts come from
 * deterministic mode, so they replay for a seed; on a synthetic two-node topology a sink
 * marks its node for thieves of the other, and the nodes' counts of spinning schedulers
 * balance. Compaction (a thief gives back what it took
 * when spreading did not pay) judges by the runtime's rate, so its tests run in real time:
 * they assert where processes ran, never how fast. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "krill.h"
#include "krill_stats.h"
#include "core/sched/sched.h" /* ctx->s->id: where a process runs */

/* Under ThreadSanitizer every memory access costs many times its own, so the work that
 * parallelises swamps the cost of a line that crosses cores: there spreading fanin pays (the
 * rate judge, rightly, keeps it spread; seen: 0-5 of 600 late calls together), and only the
 * run's correctness is checked. */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif
#ifndef TSAN_BUILD
#define TSAN_BUILD 0
#endif

enum { T_GO = 1, T_REQ, T_REPLY, T_WORK };

/* ---- a hub and its clients ------------------------------------------------------------- */

#define CLIENTS 16
#define ROUNDS  400

struct client {
	kr_pid hub;
	unsigned left;
};

/* The hub's state: its clients still at work, and how often it ran on another scheduler than
 * the one before (hub_moves, as it exits). */
struct hub {
	unsigned clients, on, moves;
};
static unsigned hub_moves;

static void b_hub(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct hub *h = state;
	kr_pid from;
	if (m->tag != T_REQ)
		return;
	h->moves += ctx->s->id != h->on;
	h->on = ctx->s->id;
	memcpy(&from, m->data, sizeof(from));
	if (from) {
		kr_send(ctx, from, T_REPLY, 0, 0);
	} else if (--h->clients == 0) { /* a client said it was done */
		hub_moves = h->moves;
		kr_exit(ctx, KR_NORMAL);
	}
}

static void b_client(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct client *c = state;
	kr_pid self = kr_self(ctx), none = 0;
	if (c->left-- == 0) {
		kr_send(ctx, c->hub, T_REQ, &none, sizeof(none));
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	kr_send(ctx, c->hub, T_REQ, &self, sizeof(self));
}

struct counts {
	uint64_t stolen, given, stayed, msgs[2];
};

static struct counts run_counts(kr_runtime *rt)
{
	static _Alignas(64) unsigned char buf[1 << 18]; /* the segment, its names table included */
	struct counts k = {0};
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(kr_alive(rt), 0);
	assert_true(kr_stats_snapshot(rt, buf, sizeof(buf)) > 0);
	kr_stats_header *h = (kr_stats_header *)buf;
	for (uint32_t i = 0; i < h->nsched; i++) {
		k.stolen += kr_stats_sched_at(h, i)->stolen;
		k.given += kr_stats_sched_at(h, i)->given;
		k.stayed += kr_stats_sched_at(h, i)->stayed;
		if (i < 2)
			k.msgs[i] = kr_stats_sched_at(h, i)->msgs;
	}
	return k;
}

/* Run rt to its end (every process gone) and free it: the counts printed. */
static struct counts run_counted(kr_runtime *rt)
{
	struct counts k = run_counts(rt);
	kr_runtime_free(rt);
	print_message("stolen %llu given %llu; messages %llu and %llu\n",
		      (unsigned long long)k.stolen, (unsigned long long)k.given,
		      (unsigned long long)k.msgs[0], (unsigned long long)k.msgs[1]);
	return k;
}

static kr_runtime *rt_new_on(uint64_t seed, const char *topology, unsigned schedulers)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.topology = topology;
	c.deterministic = 1;
	c.seed = seed;
	c.schedulers = schedulers;
	c.stats = 1;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	return rt;
}

static kr_runtime *rt_new(uint64_t seed)
{
	return rt_new_on(seed, NULL, 2);
}

static struct counts hub_run(uint64_t seed)
{
	kr_runtime *rt = rt_new(seed);
	struct hub h = {CLIENTS, 0, 0};
	kr_pid hub = 0, pid;
	assert_int_equal(kr_rt_spawn(rt, b_hub, &h, sizeof(h), &hub), 0);
	for (unsigned i = 0; i < CLIENTS; i++) {
		struct client c = {hub, ROUNDS};
		assert_int_equal(kr_rt_spawn(rt, b_client, &c, sizeof(c), &pid), 0);
		assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
	}
	struct counts k = run_counts(rt);
	kr_runtime_free(rt);
	return k;
}

static void a_hubs_clients_are_not_stolen_one_at_a_time(void **st)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct counts k = hub_run(seed);
		/* Some 13,000 messages, the hub's replies each waking a client on the hub's
		 * scheduler and queueing the one that was to run next. Taking every queued client
		 * moved 922-1,070 processes (seeds 1-4, before the rule); waiting for backlog
		 * that persists, 468-680 (deterministic mode still takes a young backlog now
		 * and then, and the hub moved with its group when a client elsewhere woke
		 * it: such a steal paid, and the thief's wait came down); with the hub left
		 * where it ran (bal_stays), 269-319. */
		print_message("seed %llu: stolen %llu given back %llu\n", (unsigned long long)seed,
			      (unsigned long long)k.stolen, (unsigned long long)k.given);
		assert_true(k.stolen < 800);
	}
}

/* Wake placement (balance.h's bal_stays): a hub woken by one of its clients from another
 * scheduler than the one it ran on stays there, and the client comes to it with the reply.
 * Pulled, it moved to every scheduler a thief had taken a client to, and its other clients
 * followed it one reply at a time: 498-1,038 moves of the hub a run (seeds 1-4, 312-680
 * clients stolen); staying, 60-76 (36-45 wakes left it where it was; 269-319 stolen). */
static void a_hub_woken_by_a_client_elsewhere_stays(void **st)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct counts k = hub_run(seed);
		print_message("seed %llu: hub moves %u stayed %llu stolen %llu given %llu\n",
			      (unsigned long long)seed, hub_moves, (unsigned long long)k.stayed,
			      (unsigned long long)k.stolen, (unsigned long long)k.given);
		assert_true(k.stayed > 0);
		assert_true(hub_moves < 200);
	}
}

/* The hand-over in deterministic mode: there a window is DET_WINDOW of a busy thief's runs and
 * one in DET_COMPACT gives back (no rates), so that replays explore processes handed back
 * while they are sent to. The same seed gives the same counts, and some seed gives back. */
static void processes_handed_back_replay_by_seed(void **st)
{
	uint64_t given = 0;
	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct counts a = hub_run(seed), b = hub_run(seed);
		assert_int_equal(a.stolen, b.stolen);
		assert_int_equal(a.given, b.given);
		assert_int_equal(a.msgs[0], b.msgs[0]);
		given += a.given;
	}
	assert_true(given > 0);
}

/* ---- a burst ----------------------------------------------------------------------------- */

#define WORKERS 2000
#define WORK    32

static void b_worker(kr_ctx *ctx, void *state, const kr_msg *m)
{
	unsigned *left = state;
	if (--*left == 0)
		kr_exit(ctx, KR_NORMAL);
	else
		kr_send(ctx, kr_self(ctx), T_WORK, 0, 0);
}

static void b_spawner(kr_ctx *ctx, void *state, const kr_msg *m)
{
	unsigned work = WORK;
	for (unsigned i = 0; i < WORKERS; i++) {
		kr_pid pid;
		if (kr_spawn(ctx, b_worker, &work, sizeof(work), &pid) == 0)
			kr_send(ctx, pid, T_GO, 0, 0);
	}
	kr_exit(ctx, KR_NORMAL);
}

static void a_burst_is_still_shared(void **st)
{
	kr_runtime *rt = rt_new(7);
	kr_pid pid;
	assert_int_equal(kr_rt_spawn(rt, b_spawner, 0, 0, &pid), 0);
	assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
	struct counts k = run_counted(rt);
	/* Each scheduler handled a good share of the 64,000 messages. */
	assert_true(k.stolen > 0);
	assert_true(k.msgs[0] > WORKERS * WORK / 4 && k.msgs[1] > WORKERS * WORK / 4);
}

/* ---- a backlog behind a long call ------------------------------------------------------- */

/* Two CPU-bound processes woken together by one send each: each spins until the other has
 * started. On one scheduler the second waits behind the first for ever (the bound below
 * ends the test as failed); the other scheduler must take it while the first call runs,
 * though that backlog is young and its owner cannot look at it. The watchdog is off, so
 * only the steal policy can bring them together. */
static atomic_int started, met, gave_up;

static void b_spinner(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	(void)m;
	atomic_fetch_add(&started, 1);
	for (unsigned long i = 0; atomic_load(&started) < 2; i++) {
		if (i > 4000000000ul) { /* seconds: nobody came */
			atomic_store(&gave_up, 1);
			break;
		}
	}
	atomic_fetch_add(&met, 1);
	kr_exit(ctx, KR_NORMAL);
}

static void b_pair_parent(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	/* First let the schedulers go to sleep: the other must be woken. */
	if (m->tag == T_GO) {
		kr_send_after(ctx, kr_self(ctx), 50, T_WORK, 0, 0, 0);
		return;
	}
	for (int i = 0; i < 2; i++) {
		kr_pid pid;
		if (kr_spawn(ctx, b_spinner, 0, 0, &pid) == 0)
			kr_send(ctx, pid, T_GO, 0, 0);
	}
	kr_exit(ctx, KR_NORMAL);
}

static void backlog_behind_a_long_call_is_taken(void **st)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_pid pid;
	kr_config_init(&c);
	c.schedulers = 2;
	c.pin = 0;
	c.watchdog_ms = 0;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	atomic_store(&started, 0);
	atomic_store(&met, 0);
	atomic_store(&gave_up, 0);
	assert_int_equal(kr_rt_spawn(rt, b_pair_parent, 0, 0, &pid), 0);
	assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	kr_runtime_free(rt);
	assert_int_equal(atomic_load(&met), 2);
	assert_int_equal(atomic_load(&gave_up), 0);
}

/* ---- many to one ----------------------------------------------------------------------- */

/* Two producers each send CHUNK messages a call to one consumer and queue themselves again,
 * as krill-bench fanin does; on one scheduler the consumer's backlog must not grow with the
 * run. A run's budget counts sends, so each producer's call spends its whole turn; the
 * consumer, given one budget a turn, handled 256 of every 2,000 sent and its mailbox grew
 * by some 1,700 a round (to 69,760 here), every envelope a fresh allocation. One thread
 * (deterministic mode), so the counts need no atomics. */
#define CHUNK 1000
#define CALLS 40
#define NPROD 2

static struct {
	uint64_t sent, received, max_backlog;
} m2o;

static void b_producer(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct client *c = state; /* hub: the consumer; left: calls to go */
	for (unsigned i = 0; i < CHUNK; i++)
		if (kr_send(ctx, c->hub, T_WORK, 0, 0) == 0)
			m2o.sent++;
	if (--c->left == 0)
		kr_exit(ctx, KR_NORMAL);
	else
		kr_send(ctx, kr_self(ctx), T_GO, 0, 0);
}

static void b_consumer(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	if (m2o.sent - m2o.received > m2o.max_backlog)
		m2o.max_backlog = m2o.sent - m2o.received;
	if (++m2o.received == (uint64_t)NPROD * CHUNK * CALLS)
		kr_exit(ctx, KR_NORMAL);
}

static void a_many_to_one_backlog_stays_bounded(void **st)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_pid consumer, pid;
	kr_config_init(&c);
	c.deterministic = 1;
	c.schedulers = 1;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	memset(&m2o, 0, sizeof(m2o));
	assert_int_equal(kr_rt_spawn(rt, b_consumer, 0, 0, &consumer), 0);
	for (unsigned i = 0; i < NPROD; i++) {
		struct client p = {consumer, CALLS};
		assert_int_equal(kr_rt_spawn(rt, b_producer, &p, sizeof(p), &pid), 0);
		assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
	}
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
	print_message("max backlog %llu\n", (unsigned long long)m2o.max_backlog);
	assert_int_equal(m2o.received, (uint64_t)NPROD * CHUNK * CALLS);
	/* A round's sends, and what one more round brings: not the run's. */
	assert_true(m2o.max_backlog <= 2 * NPROD * CHUNK);
}

/* Savina's fjcreate, in small: a coordinator spawns CHUNK workers a call, sends each one
 * message, and queues itself again; each worker replies and exits. The coordinator's call
 * spends its whole budget (a budget counts sends), so it goes to the back of the queue, behind
 * the workers it woke past the ring (the overflow), as BEAM queues a process whose reductions
 * ran out. Into the ring instead, it ran again ahead of them but for one pop in 61: 525,000 of
 * a million workers were queued at once (here 31,269 of 40,000), each slot and envelope fresh
 * memory, and the run was a third page faults. */
static struct {
	uint64_t spawned, done, max_out;
} fjc;

static void b_fj_worker(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid *coord = state;
	(void)m;
	kr_send(ctx, *coord, T_REPLY, 0, 0);
	kr_exit(ctx, KR_NORMAL);
}

static void b_fj_coordinator(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	if (m->tag == T_REPLY) {
		if (fjc.spawned - fjc.done > fjc.max_out)
			fjc.max_out = fjc.spawned - fjc.done;
		if (++fjc.done == (uint64_t)CHUNK * CALLS)
			kr_exit(ctx, KR_NORMAL);
		return;
	}
	kr_pid self = kr_self(ctx), pid;
	for (unsigned i = 0; i < CHUNK; i++)
		if (kr_spawn(ctx, b_fj_worker, &self, sizeof(self), &pid) == 0 &&
		    kr_send(ctx, pid, T_WORK, 0, 0) == 0)
			fjc.spawned++;
	if (fjc.spawned < (uint64_t)CHUNK * CALLS)
		kr_send(ctx, self, T_GO, 0, 0);
}

static void a_spawner_does_not_run_ahead_of_its_children(void **st)
{
	kr_runtime *rt = rt_new_on(1, NULL, 1);
	kr_pid pid;
	memset(&fjc, 0, sizeof(fjc));
	assert_int_equal(kr_rt_spawn(rt, b_fj_coordinator, 0, 0, &pid), 0);
	assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
	print_message("most workers outstanding %llu\n", (unsigned long long)fjc.max_out);
	assert_int_equal(fjc.done, (uint64_t)CHUNK * CALLS);
	/* A call's workers, and the next call's: not the run's. */
	assert_true(fjc.max_out <= 2 * CHUNK);
}

/* ---- compaction ------------------------------------------------------------------------ */

/* fanin at 2 schedulers, in real time: the idle scheduler steals the producers at the start;
 * before compaction they stayed there for good (they queue themselves again, so the thief
 * never ran dry to judge its steal), and every message crossed cores. Now the thief judges its
 * steal every few ms by the runtime's rate and gives them back. Each producer call counts
 * whether it ran on the scheduler the consumer last ran on; in the second half of the run most
 * must have. Before compaction: 0 of 1,200 (steals 1, the producers on scheduler 1). */
#define RT_CALLS 600
static struct {
	_Atomic unsigned consumer_on;
	_Atomic uint64_t received, together, apart;
	uint64_t total; /* messages the consumer waits for */
} rtf;

static void b_rt_producer(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct client *c = state;
	(void)m;
	for (unsigned i = 0; i < CHUNK; i++)
		kr_send(ctx, c->hub, T_WORK, 0, 0);
	if (c->left <= RT_CALLS / 2) {
		bool with =
		    ctx->s->id == atomic_load_explicit(&rtf.consumer_on, memory_order_relaxed);
		atomic_fetch_add_explicit(with ? &rtf.together : &rtf.apart, 1,
					  memory_order_relaxed);
	}
	if (--c->left == 0)
		kr_exit(ctx, KR_NORMAL);
	else
		kr_send(ctx, kr_self(ctx), T_GO, 0, 0);
}

static void b_rt_consumer(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	(void)m;
	atomic_store_explicit(&rtf.consumer_on, ctx->s->id, memory_order_relaxed);
	uint64_t n = atomic_load_explicit(&rtf.received, memory_order_relaxed) + 1;
	atomic_store_explicit(&rtf.received, n, memory_order_relaxed);
	if (n == rtf.total)
		kr_exit(ctx, KR_NORMAL);
}

static kr_runtime *rt_real_on(const char *topology)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.topology = topology;
	c.schedulers = 2;
	c.pin = 0;
	c.stats = 1;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	return rt;
}

static kr_runtime *rt_real(void)
{
	return rt_real_on(NULL);
}

/* fanin (b_rt_producer, b_rt_consumer) spawned in rt, ready to run. */
static void fanin_start(kr_runtime *rt)
{
	kr_pid consumer, pid;
	memset(&rtf, 0, sizeof(rtf));
	rtf.total = (uint64_t)NPROD * CHUNK * RT_CALLS;
	assert_int_equal(kr_rt_spawn(rt, b_rt_consumer, 0, 0, &consumer), 0);
	for (unsigned i = 0; i < NPROD; i++) {
		struct client p = {consumer, RT_CALLS};
		assert_int_equal(kr_rt_spawn(rt, b_rt_producer, &p, sizeof(p), &pid), 0);
		assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
	}
}

/* One fanin run at 2 schedulers: 1 if the thief gave back, 0 if not, -1 if nothing was
 * stolen (nothing to judge). How many late producer calls then ran with the consumer is
 * printed, not asserted: the consumer, woken by a producer on the thief, sometimes moves
 * there itself (before compaction 460 and 470 of 600 late calls were together in two runs
 * in three, 0-74 in the rest), and on a loaded machine (CI runs tests side by side) the
 * share swings with the load: 189-600 of 600 seen. */
static int many_to_one_together(void)
{
	kr_runtime *rt = rt_real();
	fanin_start(rt);
	struct counts k = run_counted(rt);
	uint64_t with = atomic_load(&rtf.together), apart = atomic_load(&rtf.apart);
	print_message("late producer calls with the consumer %llu, apart %llu\n",
		      (unsigned long long)with, (unsigned long long)apart);
	assert_int_equal(with + apart, (uint64_t)NPROD * (RT_CALLS / 2));
	if (!k.stolen)
		return -1;
	return k.given > 0;
}

/* Two NUMA nodes (a synthetic topology), fanin: the consumer, a sink, marks its node for
 * thieves of the other (run.c's note_sink; sched.c's node_sink gives that node's backlog a
 * mark's wait, balance.h's bal_marked), and the mark names a scheduler of that node.
 * Deterministic mode, so the run replays; there the one thief's own wait soon outgrows the
 * mark's, so what the mark changes shows in krill-sim at 8 x 32 (docs/performance.md), not
 * here. */
#define TWO_NODES "pack:2 numa:1 core:1 pu:1"
static void a_sink_marks_its_node(void **st)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		kr_runtime *rt = rt_new_on(seed, TWO_NODES, 2);
		fanin_start(rt);
		run_counts(rt);
		assert_int_not_equal(rt->s[0].place.numa, rt->s[1].place.numa);
		unsigned marked = 0;
		for (unsigned node = 0; node < 2; node++) {
			unsigned by = atomic_load(&rt->nodes[node].sink_by);
			if (!by)
				continue;
			marked++;
			assert_true(by <= rt->n);
			assert_int_equal(rt->s[by - 1].place.numa, node);
		}
		assert_true(marked > 0);
		kr_runtime_free(rt);
	}
}

/* A node's count of schedulers spinning without work (thieves of other nodes wait longer
 * while it is not zero: balance.h's bal_far_wait) goes up and down with each scheduler's own
 * spinning, and a drift would skew every later steal: after a real-time run on two nodes,
 * every scheduler gone, each count is back at zero. */
static void node_spin_counts_balance(void **st)
{
	for (int i = 0; i < 3; i++) {
		kr_runtime *rt = rt_real_on(TWO_NODES);
		fanin_start(rt);
		assert_int_equal(kr_run(rt), 0);
		for (unsigned node = 0; node < 2; node++)
			assert_int_equal(atomic_load(&rt->nodes[node].spinning), 0);
		kr_runtime_free(rt);
	}
}

/* Given back (before compaction nothing ever was). The judge reads this machine's rate, and on a
 * loaded one two threads can get more CPU than one (other programs busy on both cores): then
 * spreading pays and the run stays apart (2 runs in 11 at load 5). So up to three tries, each
 * counting only if something was stolen; before compaction all three are apart. */
static void many_to_one_at_two_schedulers_is_compacted(void **st)
{
	int together = -1;
	for (int tries = 0; tries < 3 && together != 1; tries++) {
		int r = many_to_one_together();
		together = r > together ? r : together;
	}
	if (together < 0)
		print_message("no try stole anything: nothing to judge\n");
	else if (!TSAN_BUILD)
		assert_int_equal(together, 1);
}

/* fanin with a bounded mailbox at 2 schedulers (krill-bench fanin --limit, issue #19): a
 * producer that meets a full mailbox asks to be told when there is room (kr_notify_ready), and
 * the consumer's scheduler, answering, wakes it there: the producer goes home after one call.
 * Such a steal bought one long call of sends that all crossed cores, and was judged paid for
 * its run time alone, so the thief's wait fell to none and it took the next producer at once:
 * 300-4,000 steals a run of 16 M messages, at 0.42 x the rate of one scheduler. A run whose
 * sends were refused by a full mailbox was held back by its consumer, not by a core: its run
 * time no longer pays for its move (balance.h, bal_paid), the wait grows, and the producers
 * stay with the consumer. Counted here (debug build, load 2-3): processes stolen in a run of
 * 1.2 M messages, before the fix 700-1,300 in most tries (7-114 in 4 of 18), after 5-9. Up to
 * three tries (a loaded machine can starve one scheduler's thread long enough that its backlog
 * is rightly taken); every try must end correctly. */
#define B_LIMIT     1024
#define B_STOLEN_OK 24
static struct {
	_Atomic uint64_t received, refused;
} bf;

struct bproducer {
	kr_pid consumer;
	unsigned left; /* messages to go */
};

static void b_bounded_producer(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct bproducer *b = state;
	(void)m;
	for (unsigned i = 0; i < CHUNK && b->left; i++) {
		int rc = kr_send(ctx, b->consumer, T_WORK, 0, 0);
		if (rc == -EAGAIN) {
			atomic_fetch_add_explicit(&bf.refused, 1, memory_order_relaxed);
			assert_int_equal(kr_notify_ready(ctx, b->consumer, T_GO), 0);
			return;
		}
		assert_int_equal(rc, 0);
		b->left--;
	}
	if (!b->left)
		kr_exit(ctx, KR_NORMAL);
	else
		kr_send(ctx, kr_self(ctx), T_GO, 0, 0);
}

static void b_bounded_consumer(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	if (m->tag == T_GO) {
		assert_int_equal(kr_mailbox_limit(ctx, B_LIMIT), 0);
		return;
	}
	uint64_t n = atomic_load_explicit(&bf.received, memory_order_relaxed) + 1;
	atomic_store_explicit(&bf.received, n, memory_order_relaxed);
	if (n == (uint64_t)NPROD * CHUNK * RT_CALLS)
		kr_exit(ctx, KR_NORMAL);
}

/* One bounded fanin run at 2 schedulers: the processes stolen. */
static uint64_t bounded_many_to_one_stolen(void)
{
	kr_runtime *rt = rt_real();
	kr_pid consumer, pid;
	memset(&bf, 0, sizeof(bf));
	assert_int_equal(kr_rt_spawn(rt, b_bounded_consumer, 0, 0, &consumer), 0);
	/* The limit is set before any producer runs: the consumer's first message. */
	assert_int_equal(kr_rt_send(rt, consumer, T_GO, 0, 0), 0);
	for (unsigned i = 0; i < NPROD; i++) {
		struct bproducer p = {consumer, CHUNK * RT_CALLS};
		assert_int_equal(kr_rt_spawn(rt, b_bounded_producer, &p, sizeof(p), &pid), 0);
		assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
	}
	struct counts k = run_counted(rt);
	print_message("refused sends %llu\n", (unsigned long long)atomic_load(&bf.refused));
	assert_int_equal(atomic_load(&bf.received), (uint64_t)NPROD * CHUNK * RT_CALLS);
	return k.stolen;
}

static void bounded_many_to_one_at_two_schedulers_stays_together(void **st)
{
	uint64_t least = UINT64_MAX;
	for (int tries = 0; tries < 3 && least > B_STOLEN_OK; tries++) {
		uint64_t n = bounded_many_to_one_stolen();
		least = n < least ? n : least;
	}
	/* Under TSan spreading pays (above): only the runs' correctness. */
	if (!TSAN_BUILD)
		assert_true(least <= B_STOLEN_OK);
}

/* Pairs whose every message waits 50 us (a blocking call: a scheduler's thread asleep, not
 * the CPU, so two schedulers double the rate however loaded the machine is) parallelise: at 2
 * schedulers the runtime handles messages about twice as fast as with one asleep, the thief's
 * steal is judged paid, and it keeps its share. (With the wait a CPU loop instead, on this
 * 2-core VM while two other programs each kept a core busy, the runtime was no faster at 2
 * schedulers than at 1 (870-880 messages a ms both), and compaction rightly gave back.) */
#define PAIRS      16
#define PAIR_ROUND 200

static void b_pair(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct client *c = state; /* hub: the partner; left: messages to go */
	struct timespec ts = {0, 50000};
	if (m->tag == T_GO && m->len == sizeof(kr_pid))
		memcpy(&c->hub, m->data, sizeof(c->hub));
	nanosleep(&ts, 0);
	if (c->hub)
		kr_send(ctx, c->hub, T_WORK, 0, 0);
	if (--c->left == 0)
		kr_exit(ctx, KR_NORMAL);
}

static void pairs_at_two_schedulers_still_spread(void **st)
{
	kr_runtime *rt = rt_real();
	for (unsigned i = 0; i < PAIRS; i++) {
		struct client a = {0, PAIR_ROUND}, b = {0, PAIR_ROUND};
		kr_pid pa, pb;
		assert_int_equal(kr_rt_spawn(rt, b_pair, &a, sizeof(a), &pa), 0);
		b.hub = pa;
		assert_int_equal(kr_rt_spawn(rt, b_pair, &b, sizeof(b), &pb), 0);
		/* a learns its partner from its first message, which b's first send answers. */
		assert_int_equal(kr_rt_send(rt, pa, T_GO, &pb, sizeof(pb)), 0);
	}
	struct counts k = run_counted(rt);
	uint64_t lo = k.msgs[0] < k.msgs[1] ? k.msgs[0] : k.msgs[1], all = k.msgs[0] + k.msgs[1];
	/* An even split is half; a first give-back to sample the runtime's rate alone costs a
	 * millisecond or two of it. */
	assert_true(lo >= all / 5);
}

/* Tasks at 2 schedulers, each a blocking call of 10 us (so that two threads double the rate
 * however loaded the machine is) and an exit: a thief busy with a batch for a window finds
 * what it ran since its steal exited, and keeps it. The window used to ask too whether each
 * task ran a move's time, by a clock a busy thief never reads (its last look): 0 ns, so tasks
 * never paid a window, and with the runtime's rate alone not yet measured the first window
 * gave the batch back blind, a 1.28 ms sleep each time. Counted here before the fix: 893-1,315
 * of the 2,000 given back; after, none. */
#define TASKS 2000

static void b_task(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct timespec ts = {0, 10000};
	(void)state;
	(void)m;
	nanosleep(&ts, 0);
	kr_exit(ctx, KR_NORMAL);
}

static void b_task_spawner(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	(void)m;
	for (unsigned i = 0; i < TASKS; i++) {
		kr_pid pid;
		assert_int_equal(kr_spawn(ctx, b_task, 0, 0, &pid), 0);
		assert_int_equal(kr_send(ctx, pid, T_GO, 0, 0), 0);
	}
	kr_exit(ctx, KR_NORMAL);
}

static void tasks_that_exit_are_not_given_back(void **st)
{
	kr_runtime *rt = rt_real();
	kr_pid pid;
	assert_int_equal(kr_rt_spawn(rt, b_task_spawner, 0, 0, &pid), 0);
	assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
	struct counts k = run_counted(rt);
	assert_true(k.stolen > 0);
	assert_int_equal(k.given, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(backlog_behind_a_long_call_is_taken),
	    cmocka_unit_test(a_hubs_clients_are_not_stolen_one_at_a_time),
	    cmocka_unit_test(a_burst_is_still_shared),
	    cmocka_unit_test(a_many_to_one_backlog_stays_bounded),
	    cmocka_unit_test(a_spawner_does_not_run_ahead_of_its_children),
	    cmocka_unit_test(processes_handed_back_replay_by_seed),
	    cmocka_unit_test(a_hub_woken_by_a_client_elsewhere_stays),
	    cmocka_unit_test(many_to_one_at_two_schedulers_is_compacted),
	    cmocka_unit_test(a_sink_marks_its_node),
	    cmocka_unit_test(node_spin_counts_balance),
	    cmocka_unit_test(pairs_at_two_schedulers_still_spread),
	    cmocka_unit_test(tasks_that_exit_are_not_given_back),
	    cmocka_unit_test(bounded_many_to_one_at_two_schedulers_stays_together),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
