/* Tests for the runtime's life cycle and configuration: defaults, invalid configs, synthetic
 * topologies (config and KRILL_TOPOLOGY), start/wait/run rules, live-process counts, and
 * exact replay of deterministic runs for a seed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <cmocka.h>

#include "krill.h"

enum { T_GO = 1, T_MORE, T_DATA, T_END };

static void b_exit(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_exit(ctx, KR_NORMAL);
}

static void b_exit_on_end(kr_ctx *ctx, void *state, const kr_msg *m)
{
	if (m->tag == T_END)
		kr_exit(ctx, KR_NORMAL);
}

static kr_pid rt_spawn(kr_runtime *rt, kr_behaviour b, const void *state, size_t len)
{
	kr_pid pid = 0;
	assert_int_equal(kr_rt_spawn(rt, b, state, len, &pid), 0);
	return pid;
}

static void config_init_sets_the_documented_defaults(void **st)
{
	kr_config c;
	memset(&c, 0xa5, sizeof(c));
	kr_config_init(&c);
	assert_int_equal(c.schedulers, 0);
	assert_int_equal(c.per_pu, 0);
	assert_int_equal(c.pin, 1);
	assert_null(c.topology);
	assert_int_equal(c.batch, 256);
	assert_int_equal(c.max_procs, 0);
	assert_int_equal(c.max_msg, 1u << 20);
	assert_int_equal(c.spin_us, 50);
	assert_int_equal(c.slice_us, 100);
	assert_int_equal(c.deterministic, 0);
	assert_int_equal(c.stats, 1);
}

static _Atomic int ran;

static void b_mark(kr_ctx *ctx, void *state, const kr_msg *m)
{
	ran++;
	kr_exit(ctx, KR_NORMAL);
}

static void runtime_new_with_null_config_takes_the_defaults(void **st)
{
	kr_runtime *a = 0, *b = 0;
	kr_config c;
	kr_config_init(&c);
	assert_int_equal(kr_runtime_new(0, &a), 0);
	assert_int_equal(kr_runtime_new(&c, &b), 0);
	assert_non_null(a);
	assert_true(kr_schedulers(a) >= 1);
	assert_int_equal(kr_schedulers(a), kr_schedulers(b));
	assert_int_equal(kr_alive(a), 0);
	ran = 0;
	assert_int_equal(kr_rt_send(a, rt_spawn(a, b_mark, 0, 0), T_GO, 0, 0), 0);
	assert_int_equal(kr_run(a), 0);
	assert_int_equal(ran, 1);
	kr_runtime_free(a);
	kr_runtime_free(b);
}

static void expect_einval(kr_config *c)
{
	kr_runtime *sentinel = (kr_runtime *)&sentinel, *rt = sentinel;
	assert_int_equal(kr_runtime_new(c, &rt), -EINVAL);
	assert_ptr_equal(rt, sentinel); /* a failed call changes nothing */
	kr_config_init(c);
}

static void invalid_configs_are_einval(void **st)
{
	kr_config c;
	kr_config_init(&c);
	c.batch = 0;
	expect_einval(&c);
	c.max_msg = 0;
	expect_einval(&c);
	c.max_msg = (1u << 31) + 1;
	expect_einval(&c);
	c.schedulers = 5000;
	expect_einval(&c);
	c.topology = "garbage:3";
	expect_einval(&c);
	c.slice_us = 100001;
	expect_einval(&c);
	/* The largest documented max_msg and slice are fine. */
	kr_runtime *rt = 0;
	c.max_msg = 1u << 31;
	c.slice_us = 100000;
	c.topology = "pack:1 numa:1 core:1 pu:1";
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	kr_runtime_free(rt);
}

/* kr_runtime_new documents -EINVAL for a bad topology; a missing XML file is one. */
static void missing_topology_file_is_enoent(void **st)
{
	kr_config c;
	kr_runtime *rt = (kr_runtime *)&c;
	kr_config_init(&c);
	c.topology = "/nonexistent/krill-topology.xml";
	assert_int_equal(kr_runtime_new(&c, &rt), -ENOENT);
	assert_ptr_equal(rt, (kr_runtime *)&c); /* untouched */
}

static void synthetic_topology_gives_one_scheduler_per_core(void **st)
{
	kr_config c;
	kr_runtime *rt;
	kr_config_init(&c);
	c.topology = "pack:2 numa:2 core:4 pu:1";
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_schedulers(rt), 16);
	/* 16 schedulers on however many CPUs we have still run (pinning is ignored). */
	ran = 0;
	for (int i = 0; i < 40; i++)
		assert_int_equal(kr_rt_send(rt, rt_spawn(rt, b_mark, 0, 0), T_GO, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(ran, 40);
	kr_runtime_free(rt);

	c.topology = "pack:2 numa:2 core:4 pu:2";
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_schedulers(rt), 16);
	kr_runtime_free(rt);
	c.per_pu = 1;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_schedulers(rt), 32);
	kr_runtime_free(rt);
	c.per_pu = 0;
	c.schedulers = 3;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_schedulers(rt), 3);
	kr_runtime_free(rt);
}

static void krill_topology_variable_sets_the_topology(void **st)
{
	kr_config c;
	kr_runtime *rt = 0;
	int rc;
	assert_int_equal(setenv("KRILL_TOPOLOGY", "pack:2 numa:2 core:4 pu:1", 1), 0);
	rc = kr_runtime_new(0, &rt);
	unsigned n = rc == 0 ? kr_schedulers(rt) : 0;
	kr_runtime_free(rc == 0 ? rt : 0);
	/* An explicit topology wins over the variable. */
	kr_config_init(&c);
	c.topology = "pack:1 numa:1 core:3 pu:1";
	int rc2 = kr_runtime_new(&c, &rt);
	unsigned n2 = rc2 == 0 ? kr_schedulers(rt) : 0;
	kr_runtime_free(rc2 == 0 ? rt : 0);
	assert_int_equal(setenv("KRILL_TOPOLOGY", "garbage:3", 1), 0);
	int rc3 = kr_runtime_new(0, &rt);
	if (rc3 == 0)
		kr_runtime_free(rt);
	unsetenv("KRILL_TOPOLOGY");
	assert_int_equal(rc, 0);
	assert_int_equal(n, 16);
	assert_int_equal(rc2, 0);
	assert_int_equal(n2, 3);
	assert_int_equal(rc3, -EINVAL);
}

static void start_twice_is_ealready(void **st)
{
	kr_config c;
	kr_runtime *rt;
	kr_config_init(&c);
	c.schedulers = 2;
	c.pin = 0;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	kr_pid p = rt_spawn(rt, b_exit_on_end, 0, 0);
	assert_int_equal(kr_start(rt), 0);
	assert_int_equal(kr_start(rt), -EALREADY);
	assert_int_equal(kr_rt_send(rt, p, T_END, 0, 0), 0);
	assert_int_equal(kr_wait(rt), 0);
	assert_int_equal(kr_start(rt), -EALREADY); /* stopped is not restartable */
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

static void start_in_deterministic_mode_is_einval_and_run_still_works(void **st)
{
	kr_config c;
	kr_runtime *rt;
	kr_config_init(&c);
	c.deterministic = 1;
	c.seed = 3;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	ran = 0;
	kr_pid p = rt_spawn(rt, b_mark, 0, 0);
	assert_int_equal(kr_start(rt), -EINVAL);
	assert_int_equal(kr_rt_send(rt, p, T_GO, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(ran, 1);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

/* Once a runtime has stopped, waiting again returns at once with 0, in either mode. */
static void wait_after_the_run_returns_zero(void **st)
{
	for (int det = 0; det < 2; det++) {
		kr_config c;
		kr_runtime *rt;
		kr_config_init(&c);
		c.schedulers = 2;
		c.pin = 0;
		c.deterministic = det;
		assert_int_equal(kr_runtime_new(&c, &rt), 0);
		ran = 0;
		assert_int_equal(kr_rt_send(rt, rt_spawn(rt, b_mark, 0, 0), T_GO, 0, 0), 0);
		int rc1 = kr_run(rt);
		int rc2 = kr_wait(rt);
		kr_runtime_free(rt);
		assert_int_equal(rc1, 0);
		assert_int_equal(ran, 1);
		assert_int_equal(rc2, 0);
	}
}

/* kr_wait on a runtime never started has nothing to wait for (and kr_start may never come):
 * -EINVAL at once. In deterministic mode kr_wait is the run, so it runs. */
static void wait_on_a_runtime_never_started_is_einval(void **st)
{
	kr_config c;
	kr_runtime *rt;
	kr_config_init(&c);
	c.schedulers = 1;
	c.pin = 0;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_wait(rt), -EINVAL);
	kr_runtime_free(rt);
	c.deterministic = 1;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_wait(rt), 0);
	kr_runtime_free(rt);
}

/* Once kr_stop was called, or the run is over, a thread's spawn, send and exit signal would
 * never take effect: each is refused with -ESHUTDOWN (they once returned 0). */
static void expect_refused(kr_runtime *rt, kr_pid p)
{
	kr_pid out = 777;
	assert_int_equal(kr_rt_spawn(rt, b_exit, 0, 0, &out), -ESHUTDOWN);
	assert_true(out == 777);
	assert_int_equal(kr_rt_send(rt, p, T_GO, 0, 0), -ESHUTDOWN);
	assert_int_equal(kr_rt_exit(rt, p, KR_KILL), -ESHUTDOWN);
}

static void a_stopped_runtime_refuses_thread_spawns_sends_and_exits(void **st)
{
	for (int det = 0; det < 2; det++) {
		kr_config c;
		kr_runtime *rt;
		kr_config_init(&c);
		c.schedulers = 2;
		c.pin = 0;
		c.deterministic = det;
		assert_int_equal(kr_runtime_new(&c, &rt), 0);
		kr_pid p = rt_spawn(rt, b_exit_on_end, 0, 0);
		if (!det) {
			assert_int_equal(kr_start(rt), 0);
			kr_stop(rt);
			expect_refused(rt, p); /* stopping */
		}
		assert_int_equal(kr_run(rt), 0);
		expect_refused(rt, p); /* stopped (deterministic: the run is over, p left alive) */
		assert_int_equal(kr_alive(rt), 1);
		kr_runtime_free(rt);
	}
}

/* A program may start an empty runtime and spawn into it afterwards (a server reading its
 * configuration first): the runtime stops for lack of processes only once kr_wait waits. */
static _Atomic int started_late_ran;

static void b_count_and_exit(kr_ctx *ctx, void *state, const kr_msg *m)
{
	atomic_fetch_add(&started_late_ran, 1);
	kr_exit(ctx, KR_NORMAL);
}

static void an_empty_started_runtime_waits_for_spawns_until_kr_wait(void **st)
{
	for (unsigned n = 1; n <= 2; n++) {
		kr_config c;
		kr_runtime *rt;
		kr_config_init(&c);
		c.schedulers = n;
		c.pin = 0;
		c.stats = 0;
		atomic_store(&started_late_ran, 0);
		assert_int_equal(kr_runtime_new(&c, &rt), 0);
		assert_int_equal(kr_start(rt), 0);
		/* Long enough for every scheduler to find nothing and park. */
		struct timespec ms50 = {0, 50000000};
		nanosleep(&ms50, 0);
		for (int i = 0; i < 3; i++) {
			kr_pid p;
			assert_int_equal(kr_rt_spawn(rt, b_count_and_exit, 0, 0, &p), 0);
			assert_int_equal(kr_rt_send(rt, p, T_GO, 0, 0), 0);
			nanosleep(&ms50, 0); /* it runs and exits: empty again */
		}
		assert_int_equal(kr_wait(rt), 0); /* now empty and waited for: it stops */
		assert_int_equal(atomic_load(&started_late_ran), 3);
		assert_int_equal(kr_alive(rt), 0);
		kr_runtime_free(rt);
	}
}

/* ---- deterministic replay ---------------------------------------------------------------- */

/* Racers each send M numbered messages to a collector, one per run (continuing through their
 * own mailbox), and each also spawns a helper that sends one more; the collector records the
 * arrival order, which depends on run order, steals and timers. */
#define NRACERS 8
#define M       24
#define TRACE   (NRACERS * (M + 1) + NRACERS)
static uint16_t trace[TRACE];
static int ntrace;

struct racer {
	kr_pid collector;
	uint16_t id, sent;
};

static void b_collector(kr_ctx *ctx, void *state, const kr_msg *m)
{
	uint16_t v;
	memcpy(&v, m->data, sizeof(v));
	if (ntrace < TRACE)
		trace[ntrace] = v;
	if (++ntrace == TRACE)
		kr_exit(ctx, KR_NORMAL);
}

static void b_helper(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct racer *r = state;
	uint16_t v = (uint16_t)(0x8000 | r->id);
	kr_send(ctx, r->collector, T_DATA, &v, sizeof(v));
	kr_exit(ctx, KR_NORMAL);
}

static void b_racer(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct racer *r = state;
	uint16_t v = (uint16_t)(r->id << 8 | r->sent);
	kr_send(ctx, r->collector, T_DATA, &v, sizeof(v));
	if (r->sent == 3) {
		kr_pid h;
		if (kr_spawn(ctx, b_helper, r, sizeof(*r), &h) == 0)
			kr_send_after(ctx, h, (uint64_t)r->id % 3, T_GO, 0, 0, 0);
	}
	if (++r->sent <= M)
		kr_send(ctx, kr_self(ctx), T_MORE, 0, 0);
	else
		kr_exit(ctx, KR_NORMAL);
}

/* Runs the workload with seed; returns the number of arrivals recorded (trace filled). */
static int run_race(uint64_t seed)
{
	kr_config c;
	kr_runtime *rt;
	kr_config_init(&c);
	c.deterministic = 1;
	c.seed = seed;
	c.topology = "pack:1 numa:2 core:2 pu:1"; /* the same 4 schedulers on any machine */
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_schedulers(rt), 4);
	ntrace = 0;
	memset(trace, 0, sizeof(trace));
	kr_pid col = rt_spawn(rt, b_collector, 0, 0);
	for (uint16_t i = 0; i < NRACERS; i++) {
		struct racer r = {col, i, 0};
		kr_pid p = rt_spawn(rt, b_racer, &r, sizeof(r));
		assert_int_equal(kr_rt_send(rt, p, T_GO, 0, 0), 0);
	}
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
	return ntrace;
}

static void deterministic_runs_replay_exactly_for_a_seed(void **st)
{
	static uint16_t first[TRACE];
	assert_int_equal(run_race(42), TRACE);
	memcpy(first, trace, sizeof(first));
	assert_int_equal(run_race(42), TRACE);
	assert_memory_equal(first, trace, sizeof(first));
	int differ = 0;
	for (uint64_t seed = 1; seed <= 10; seed++) {
		assert_int_equal(run_race(seed), TRACE);
		differ += memcmp(first, trace, sizeof(first)) != 0;
	}
	assert_true(differ >= 1);
}

/* ---- kr_alive -------------------------------------------------------------------------- */

static uint64_t alive_inside[2];

static void b_parent(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	kr_pid kids[4];
	alive_inside[0] = kr_alive(rt);
	for (int i = 0; i < 4; i++) {
		bool go = i < 2;
		if (kr_spawn(ctx, go ? b_exit : b_exit_on_end, 0, 0, &kids[i]) == 0 && go)
			kr_send(ctx, kids[i], T_GO, 0, 0);
	}
	alive_inside[1] = kr_alive(rt);
	kr_exit(ctx, KR_NORMAL);
}

static void alive_counts_spawns_minus_exits(void **st)
{
	kr_config c;
	kr_runtime *rt;
	kr_config_init(&c);
	c.deterministic = 1;
	c.schedulers = 2;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_alive(rt), 0);
	kr_pid p1 = rt_spawn(rt, b_parent, 0, 0);
	kr_pid p2 = rt_spawn(rt, b_exit, 0, 0);
	rt_spawn(rt, b_exit_on_end, 0, 0); /* never told to end */
	assert_int_equal(kr_alive(rt), 3);
	assert_int_equal(kr_rt_send(rt, p1, T_GO, 0, 0), 0);
	assert_int_equal(kr_rt_send(rt, p2, T_GO, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0); /* deterministic: returns once nothing can happen */
	assert_true(alive_inside[0] >= 2 && alive_inside[0] <= 3); /* p2 may have exited */
	assert_int_equal(alive_inside[1], alive_inside[0] + 4);
	/* Left: the never-ended one and p1's two waiting children. */
	assert_int_equal(kr_alive(rt), 3);
	kr_runtime_free(rt);
}

/* kr_config.slice_us: the scheduler thread's own view (sched_getattr) from a behaviour. */
struct sattr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

static int get_attr(struct sattr *a)
{
	memset(a, 0, sizeof(*a));
	return (int)syscall(SYS_sched_getattr, 0, a, (unsigned)sizeof(*a), 0);
}

static struct sattr seen;

static void b_probe(kr_ctx *ctx, void *state, const kr_msg *m)
{
	assert_int_equal(get_attr(&seen), 0);
	kr_exit(ctx, KR_NORMAL);
}

struct slice_run {
	unsigned slice_us;
	struct sattr creator; /* the thread that started the runtime */
	struct sattr sched;   /* its scheduler */
};

/* On a thread of its own at nice 3 (nice is per thread; the test's main thread keeps
 * its own, which an unprivileged run could not lower back), so a slice request that
 * reset nice to 0 would show. */
static void *slice_thread(void *arg)
{
	struct slice_run *r = arg;
	kr_config c;
	kr_runtime *rt;
	assert_int_equal(setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 3), 0);
	assert_int_equal(get_attr(&r->creator), 0);
	kr_config_init(&c);
	c.schedulers = 1;
	c.pin = 0;
	c.slice_us = r->slice_us;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_rt_send(rt, rt_spawn(rt, b_probe, 0, 0), T_GO, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	kr_runtime_free(rt);
	r->sched = seen;
	return 0;
}

static void run_slice(struct slice_run *r)
{
	pthread_t t;
	assert_int_equal(pthread_create(&t, 0, slice_thread, r), 0);
	assert_int_equal(pthread_join(t, 0), 0);
}

/* Does this kernel keep a fair thread's slice (EEVDF's custom slice, Linux 6.12)? Asked
 * on a thread that then ends, so the test's threads keep theirs. */
static void *probe_thread(void *arg)
{
	struct sattr a;
	int *ok = arg;
	if (get_attr(&a) == 0 && a.policy == SCHED_OTHER) {
		a.size = sizeof(a);
		a.flags = 0;
		a.runtime = 200000;
		*ok = syscall(SYS_sched_setattr, 0, &a, 0) == 0 && get_attr(&a) == 0 &&
		      a.runtime == 200000;
	}
	return 0;
}

static void schedulers_ask_for_the_configured_slice_and_keep_their_nice(void **st)
{
	int ok = 0;
	pthread_t t;
	assert_int_equal(pthread_create(&t, 0, probe_thread, &ok), 0);
	assert_int_equal(pthread_join(t, 0), 0);
	if (!ok)
		skip(); /* no custom slices here: slice_us is documented as ignored */
	struct slice_run def = {.slice_us = 100}, off = {.slice_us = 0}, big = {.slice_us = 5000};
	run_slice(&def);
	assert_int_equal(def.sched.runtime, 100000);
	assert_int_equal(def.sched.nice, 3);
	assert_int_equal(def.sched.policy, SCHED_OTHER);
	run_slice(&big);
	assert_int_equal(big.sched.runtime, 5000000);
	assert_int_equal(big.sched.nice, 3);
	/* 0: the scheduler keeps what its creator had. */
	run_slice(&off);
	assert_int_equal(off.sched.runtime, off.creator.runtime);
	assert_int_equal(off.sched.nice, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(config_init_sets_the_documented_defaults),
	    cmocka_unit_test(runtime_new_with_null_config_takes_the_defaults),
	    cmocka_unit_test(invalid_configs_are_einval),
	    cmocka_unit_test(missing_topology_file_is_enoent),
	    cmocka_unit_test(synthetic_topology_gives_one_scheduler_per_core),
	    cmocka_unit_test(krill_topology_variable_sets_the_topology),
	    cmocka_unit_test(start_twice_is_ealready),
	    cmocka_unit_test(start_in_deterministic_mode_is_einval_and_run_still_works),
	    cmocka_unit_test(wait_after_the_run_returns_zero),
	    cmocka_unit_test(wait_on_a_runtime_never_started_is_einval),
	    cmocka_unit_test(a_stopped_runtime_refuses_thread_spawns_sends_and_exits),
	    cmocka_unit_test(an_empty_started_runtime_waits_for_spawns_until_kr_wait),
	    cmocka_unit_test(deterministic_runs_replay_exactly_for_a_seed),
	    cmocka_unit_test(alive_counts_spawns_minus_exits),
	    cmocka_unit_test(schedulers_ask_for_the_configured_slice_and_keep_their_nice),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
