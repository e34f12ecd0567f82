/* Stress through the public API, on 2 scheduler threads and in deterministic mode under several
 * seeds: many senders to one process, spawn/exit churn under sends to stale pids, and foreign
 * threads sending with kr_rt_send. Reproduce a failure with KRILL_SEED=<seed printed in it>. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/seed.h"

#include "krill.h"
#include "tests/guard.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Sanitizers run several times slower: a quarter of the work keeps each test within seconds. */
#define SCALE(n)   (SANITIZED ? (n) / 4 : (n))
#define WATCHDOG_S 60

enum { T_GO = 1, T_DATA = 2, T_KILL = 3, T_ACK = 4 };

static uint64_t seed;

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			fail_msg("KRILL_SEED=%llu run %s: %s", (unsigned long long)seed, run_name, \
				 #x);                                                              \
	} while (0)
#define CHECK_EQ(a, b)                                                                         \
	do {                                                                                   \
		unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b); \
		if (a_ != b_)                                                                  \
			fail_msg("KRILL_SEED=%llu run %s: %s == %llu, expected %s == %llu",    \
				 (unsigned long long)seed, run_name, #a, a_, #b, b_);          \
	} while (0)

static char run_name[64];

static kr_runtime *new_runtime(int deterministic, uint64_t s, uint64_t max_procs)
{
	kr_config cfg;
	kr_runtime *rt;
	kr_config_init(&cfg);
	cfg.schedulers = 2;
	cfg.pin = 0;
	cfg.deterministic = deterministic;
	cfg.seed = s;
	cfg.max_procs = max_procs;
	snprintf(run_name, sizeof run_name, deterministic ? "deterministic seed %llu" : "threads",
		 (unsigned long long)s);
	assert_int_equal(kr_runtime_new(&cfg, &rt), 0);
	return rt;
}

/* kr_run, or kr_wait once started, with a watchdog that stops a runtime that hangs
 * (a lost message keeps its receiver alive forever). Returns true if it had to. */
static int run_watched(kr_runtime *rt, int started)
{
	return !guard_run(rt, started != 0, WATCHDOG_S);
}

/* ---- many senders, one collector --------------------------------------------------------- */

#define MAXSENDERS 64

struct seqmsg {
	uint32_t from, seq;
};

/* The collector's record; only the collector writes it while the runtime runs. */
struct collect {
	uint32_t senders;
	uint64_t total, got, out_of_order, bad;
	uint32_t expect[MAXSENDERS];
	int exited;
};

static void collector(kr_ctx *ctx, void *st, const kr_msg *m)
{
	struct collect *c = *(struct collect **)st;
	struct seqmsg x;
	if (m->tag != T_DATA || m->len != sizeof x) {
		c->bad++;
		return;
	}
	memcpy(&x, m->data, sizeof x);
	if (x.from >= c->senders) {
		c->bad++;
		return;
	}
	if (x.seq != c->expect[x.from])
		c->out_of_order++;
	c->expect[x.from] = x.seq + 1;
	if (++c->got == c->total) {
		c->exited = 1;
		kr_exit(ctx, KR_NORMAL);
	}
}

struct sender {
	kr_pid to;
	uint32_t id, next, count;
	uint64_t rng;
};

static _Atomic uint64_t send_errors;

/* Sends a random-sized chunk each activation, then asks itself to go on. */
static void sender(kr_ctx *ctx, void *st, const kr_msg *m)
{
	struct sender *s = st;
	(void)m;
	uint32_t chunk = 1 + (uint32_t)(splitmix(&s->rng) % 200);
	for (uint32_t k = 0; k < chunk && s->next < s->count; k++) {
		struct seqmsg x = {s->id, s->next++};
		if (kr_send(ctx, s->to, T_DATA, &x, sizeof x))
			atomic_fetch_add(&send_errors, 1);
	}
	if (s->next < s->count) {
		if (kr_send(ctx, kr_self(ctx), T_GO, NULL, 0))
			atomic_fetch_add(&send_errors, 1);
	} else {
		kr_exit(ctx, KR_NORMAL);
	}
}

static void many_senders_round(int deterministic, uint64_t s, uint32_t nsenders, uint32_t count)
{
	static struct collect c;
	kr_runtime *rt = new_runtime(deterministic, s, 0);
	kr_pid cp;
	memset(&c, 0, sizeof c);
	c.senders = nsenders;
	c.total = (uint64_t)nsenders * count;
	atomic_store(&send_errors, 0);
	struct collect *cptr = &c;
	assert_int_equal(kr_rt_spawn(rt, collector, &cptr, sizeof cptr, &cp), 0);
	uint64_t r = s;
	for (uint32_t i = 0; i < nsenders; i++) {
		struct sender st = {cp, i, 0, count, splitmix(&r)};
		kr_pid p;
		assert_int_equal(kr_rt_spawn(rt, sender, &st, sizeof st, &p), 0);
		assert_int_equal(kr_rt_send(rt, p, T_GO, NULL, 0), 0);
	}
	int hung = run_watched(rt, 0);
	uint64_t alive = kr_alive(rt);
	kr_runtime_free(rt);
	CHECK(!hung);
	CHECK_EQ(atomic_load(&send_errors), 0);
	CHECK_EQ(c.bad, 0);
	CHECK_EQ(c.out_of_order, 0);
	CHECK_EQ(c.got, c.total);
	for (uint32_t i = 0; i < nsenders; i++)
		CHECK_EQ(c.expect[i], count);
	CHECK(c.exited);
	CHECK_EQ(alive, 0);
}

static void many_senders_to_one_process_all_arrive_each_in_order(void **state)
{
	(void)state;
	many_senders_round(0, seed, 64, SCALE(10000));
	for (uint64_t k = 0; k < 3; k++)
		many_senders_round(1, seed + k, 64, SCALE(10000));
}

/* ---- spawn/exit churn under sends to stale pids --------------------------------------------- */

/* Every message carries the pid it was sent to; every receiver checks it is that pid. */
#define RECENT 1024

static struct churn {
	_Atomic kr_pid recent[RECENT]; /* pids spawned lately, most of them dead */
	_Atomic uint64_t nrecent;
	_Atomic uint64_t spawned, exited, mismatches, send_errors, spawn_errors, received,
	    stale_sends, reused, eagain;
} ch;

static void check_target(kr_ctx *ctx, const kr_msg *m)
{
	kr_pid to;
	if (m->len != sizeof to) {
		atomic_fetch_add(&ch.mismatches, 1);
		return;
	}
	memcpy(&to, m->data, sizeof to);
	if (to != kr_self(ctx))
		atomic_fetch_add(&ch.mismatches, 1);
	atomic_fetch_add_explicit(&ch.received, 1, memory_order_relaxed);
}

static int send_to(kr_ctx *ctx, kr_pid to, uint32_t tag)
{
	int rc = kr_send(ctx, to, tag, &to, sizeof to);
	if (rc)
		atomic_fetch_add(&ch.send_errors, 1);
	return rc;
}

static void finish(kr_ctx *ctx)
{
	atomic_fetch_add(&ch.exited, 1);
	kr_exit(ctx, KR_NORMAL);
}

/* Lives until its spawner sends T_KILL (stale senders' messages may reach it first), then
 * acknowledges and exits. Its state is its spawner's pid. */
static void ephemeral(kr_ctx *ctx, void *st, const kr_msg *m)
{
	check_target(ctx, m);
	if (m->tag == T_KILL) {
		send_to(ctx, *(kr_pid *)st, T_ACK);
		finish(ctx);
	}
}

#define MAXBATCH 64

struct spawner {
	uint32_t left, batch, nprev, pending;
	kr_pid prev[MAXBATCH]; /* the batch spawned last activation, still alive */
};

/* Each activation ends the previous batch and spawns the next, publishing the pids for
 * the stale senders: so a pid is live for a while, then dead, then its slot reused. The
 * next activation waits for every acknowledgement, so at most two batches are alive. */
static void spawner(kr_ctx *ctx, void *st, const kr_msg *m)
{
	struct spawner *s = st;
	check_target(ctx, m);
	if (m->tag == T_ACK && --s->pending)
		return;
	for (uint32_t k = 0; k < s->nprev; k++)
		send_to(ctx, s->prev[k], T_KILL);
	s->pending = s->nprev;
	s->nprev = 0;
	kr_pid self = kr_self(ctx);
	for (uint32_t k = 0; k < s->batch && s->left; k++, s->left--) {
		kr_pid p;
		int rc = kr_spawn(ctx, ephemeral, &self, sizeof self, &p);
		if (rc == -EAGAIN) {
			/* Slots of the dead wait until no scheduler can still reach them:
			 * try again on the next activation. */
			atomic_fetch_add(&ch.eagain, 1);
			break;
		}
		if (rc) {
			atomic_fetch_add(&ch.spawn_errors, 1);
			continue;
		}
		atomic_fetch_add(&ch.spawned, 1);
		if (p >> 32 > 1)
			atomic_fetch_add_explicit(&ch.reused, 1, memory_order_relaxed);
		uint64_t n = atomic_fetch_add(&ch.nrecent, 1);
		atomic_store(&ch.recent[n % RECENT], p);
		s->prev[s->nprev++] = p;
	}
	if (s->pending)
		return; /* the last acknowledgement starts the next activation */
	if (s->left || s->nprev)
		send_to(ctx, self, T_GO);
	else
		finish(ctx);
}

struct stale {
	uint32_t rounds, per_round;
	uint64_t rng;
};

/* Sends to random recently spawned pids: mostly dead ones, some whose slot has a new
 * incarnation by now. */
static void stale_sender(kr_ctx *ctx, void *st, const kr_msg *m)
{
	struct stale *s = st;
	check_target(ctx, m);
	uint64_t n = atomic_load(&ch.nrecent);
	for (uint32_t k = 0; k < s->per_round && n; k++) {
		kr_pid to = atomic_load(&ch.recent[splitmix(&s->rng) % (n < RECENT ? n : RECENT)]);
		if (!to)
			continue;
		send_to(ctx, to, T_DATA);
		atomic_fetch_add_explicit(&ch.stale_sends, 1, memory_order_relaxed);
	}
	if (--s->rounds)
		send_to(ctx, kr_self(ctx), T_GO);
	else
		finish(ctx);
}

static void churn_round(int deterministic, uint64_t s, uint32_t per_spawner)
{
	enum { SPAWNERS = 2, STALE = 6 };
	/* A small pid space: slots are reused within a few thousand spawns. */
	kr_runtime *rt = new_runtime(deterministic, s, 4096);
	memset(&ch, 0, sizeof ch);
	uint64_t r = s;
	for (int i = 0; i < SPAWNERS + STALE; i++) {
		kr_pid p;
		if (i < SPAWNERS) {
			struct spawner sp = {
			    per_spawner, 1 + (uint32_t)(splitmix(&r) % MAXBATCH), 0, 0, {0}};
			assert_int_equal(kr_rt_spawn(rt, spawner, &sp, sizeof sp, &p), 0);
		} else {
			struct stale sl = {per_spawner / 16, 16, splitmix(&r)};
			assert_int_equal(kr_rt_spawn(rt, stale_sender, &sl, sizeof sl, &p), 0);
		}
		atomic_fetch_add(&ch.spawned, 1);
		assert_int_equal(kr_rt_send(rt, p, T_GO, &p, sizeof p), 0);
	}
	int hung = run_watched(rt, 0);
	uint64_t alive = kr_alive(rt);
	kr_runtime_free(rt);
	CHECK(!hung);
	CHECK_EQ(atomic_load(&ch.mismatches), 0);
	CHECK_EQ(atomic_load(&ch.send_errors), 0);
	CHECK_EQ(atomic_load(&ch.spawn_errors), 0);
	CHECK_EQ(atomic_load(&ch.spawned), SPAWNERS + STALE + (uint64_t)SPAWNERS * per_spawner);
	CHECK_EQ(atomic_load(&ch.exited), atomic_load(&ch.spawned));
	CHECK_EQ(alive, 0);
	/* The test means something only if stale pids met reused slots. */
	CHECK(atomic_load(&ch.reused) > 0);
	CHECK(atomic_load(&ch.stale_sends) > 0);
}

static void stale_pids_never_reach_a_later_incarnation_under_spawn_exit_churn(void **state)
{
	(void)state;
	churn_round(0, seed, SCALE(40000));
	for (uint64_t k = 0; k < 3; k++)
		churn_round(1, seed + k, SCALE(20000));
}

/* ---- foreign threads ------------------------------------------------------------------------ */

#define FOREIGN 4

struct foreign {
	kr_runtime *rt;
	kr_pid to;
	uint32_t id, count;
	_Atomic uint64_t *errors;
};

static void *foreign_main(void *arg)
{
	struct foreign *f = arg;
	for (uint32_t i = 0; i < f->count; i++) {
		struct seqmsg x = {f->id, i};
		if (kr_rt_send(f->rt, f->to, T_DATA, &x, sizeof x))
			atomic_fetch_add(f->errors, 1);
		if ((i & 1023) == 0)
			sched_yield(); /* let the schedulers drain now and then */
	}
	return NULL;
}

static void foreign_threads_send_to_one_process_each_in_order(void **state)
{
	(void)state;
	static struct collect c;
	static _Atomic uint64_t errors;
	uint32_t count = SCALE(50000);
	kr_runtime *rt = new_runtime(0, seed, 0);
	pthread_t th[FOREIGN];
	struct foreign f[FOREIGN];
	kr_pid cp;
	memset(&c, 0, sizeof c);
	atomic_store(&errors, 0);
	c.senders = FOREIGN;
	c.total = (uint64_t)FOREIGN * count;
	struct collect *cptr = &c;
	assert_int_equal(kr_rt_spawn(rt, collector, &cptr, sizeof cptr, &cp), 0);
	assert_int_equal(kr_start(rt), 0);
	for (uint32_t i = 0; i < FOREIGN; i++) {
		f[i] = (struct foreign){rt, cp, i, count, &errors};
		assert_int_equal(pthread_create(&th[i], NULL, foreign_main, &f[i]), 0);
	}
	/* Join the senders first: kr_wait must not race their kr_rt_send (see below). */
	for (uint32_t i = 0; i < FOREIGN; i++)
		pthread_join(th[i], NULL);
	int hung = run_watched(rt, 1);
	uint64_t alive = kr_alive(rt);
	kr_runtime_free(rt);
	CHECK(!hung);
	CHECK_EQ(atomic_load(&errors), 0);
	CHECK_EQ(c.bad, 0);
	CHECK_EQ(c.out_of_order, 0);
	CHECK_EQ(c.got, c.total);
	for (uint32_t i = 0; i < FOREIGN; i++)
		CHECK_EQ(c.expect[i], count);
	CHECK_EQ(alive, 0);
}

/* kr_rt_send is for any thread, before kr_start too, so foreign threads may be sending
 * while the main thread starts and waits for the runtime (inject() reads rt->state, which
 * kr_start and kr_wait write: it must be atomic, or ThreadSanitizer reports a race). */
static void foreign_threads_may_send_while_the_runtime_starts_and_stops(void **state)
{
	(void)state;
	static struct collect c;
	static _Atomic uint64_t errors;
	uint32_t count = SCALE(20000);
	kr_runtime *rt = new_runtime(0, seed, 0);
	pthread_t th[FOREIGN];
	struct foreign f[FOREIGN];
	kr_pid cp;
	memset(&c, 0, sizeof c);
	atomic_store(&errors, 0);
	c.senders = FOREIGN;
	c.total = (uint64_t)FOREIGN * count;
	struct collect *cptr = &c;
	assert_int_equal(kr_rt_spawn(rt, collector, &cptr, sizeof cptr, &cp), 0);
	for (uint32_t i = 0; i < FOREIGN; i++) {
		f[i] = (struct foreign){rt, cp, i, count, &errors};
		assert_int_equal(pthread_create(&th[i], NULL, foreign_main, &f[i]), 0);
	}
	/* Let them get going (a sleep orders nothing), then start and wait while they send. */
	nanosleep(&(struct timespec){0, 5000000}, NULL);
	int hung = run_watched(rt, 0);
	for (uint32_t i = 0; i < FOREIGN; i++)
		pthread_join(th[i], NULL);
	uint64_t alive = kr_alive(rt);
	kr_runtime_free(rt);
	CHECK(!hung);
	CHECK_EQ(atomic_load(&errors), 0);
	CHECK_EQ(c.out_of_order, 0);
	CHECK_EQ(c.got, c.total);
	CHECK_EQ(alive, 0);
}

static int setup(void **state)
{
	(void)state;
	seed = seed_from_env();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(many_senders_to_one_process_all_arrive_each_in_order),
	    cmocka_unit_test(stale_pids_never_reach_a_later_incarnation_under_spawn_exit_churn),
	    cmocka_unit_test(foreign_threads_send_to_one_process_each_in_order),
	    cmocka_unit_test(foreign_threads_may_send_while_the_runtime_starts_and_stops),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
