/* Tests for supervisors (core/sup/supervisor.c): the three strategies, restart types, restart
 * intensity, nested trees, orderly shutdown in reverse start order with shutdown_ms, children
 * started and stopped on request, native faults, start failures and argument checks.
 *
 * Each scenario is driven by a boss process: it spawns the supervisor (linked, trapping
 * exits), and its workers announce every (re)start to it with their pid (the init message
 * the supervisor sends). The boss records what it sees and the first failed check; the test
 * asserts on that after kr_run. Scenarios run with two schedulers, in deterministic mode
 * (several seeds) and with real threads. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "krill.h"

enum { T_GO = 1, T_INIT, T_HELLO, T_CRASH, T_WHICH, T_REPLY, T_QUIT, T_SUP };

/* Under ThreadSanitizer a fault's siglongjmp out of the handler (core/fault/fault.c) crashes the
 * program: there, a child told to segfault exits abnormally instead. */
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#else
#define TSAN 0
#endif

#define MAXC       8
#define CRASH_SEGV UINT32_MAX /* T_CRASH: fault instead of exiting */

/* worker flags */
#define W_ORDER    1u /* trap exits; on the supervisor's exit signal record the order, exit */
#define W_STUBBORN 2u /* trap exits and ignore them */

static uint64_t kri_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What workers saw at shutdown, in order. */
static _Atomic uint32_t norder;
static _Atomic uint32_t order[MAXC];
static _Atomic uint64_t order_ns[MAXC];

static void reset_order(void)
{
	atomic_store(&norder, 0);
	for (int i = 0; i < MAXC; i++) {
		atomic_store(&order[i], UINT32_MAX);
		atomic_store(&order_ns[i], 0);
	}
}

/* ---- workers ------------------------------------------------------------------------------ */

struct wargs {
	kr_pid boss;
	uint32_t idx, flags;
};

struct hello {
	uint32_t idx, pad;
	kr_pid self, sup; /* sup: from the init message */
};

/* A real store to address 0. Through a volatile pointer: GCC drops a literal null store (and
 * the call to a function made of one) as undefined. */
static volatile int *volatile null_ptr;

__attribute__((noinline, no_sanitize("undefined"))) static void segfault(void)
{
	*null_ptr = 1;
}

static void worker(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct wargs *w = state;
	switch (m->tag) {
	case T_INIT: {
		struct hello h = {.idx = w->idx, .self = kr_self(ctx)};
		if (m->len == sizeof(kr_pid))
			memcpy(&h.sup, m->data, sizeof(kr_pid));
		if (w->flags & (W_ORDER | W_STUBBORN))
			kr_trap_exit(ctx, 1);
		kr_send(ctx, w->boss, T_HELLO, &h, sizeof(h));
		return;
	}
	case T_CRASH: {
		uint32_t how;
		memcpy(&how, m->data, sizeof(how));
		if (how == CRASH_SEGV && !TSAN)
			segfault();
		if (how == CRASH_SEGV)
			how = KR_REASON_USER + 9;
		kr_exit(ctx, how);
		return;
	}
	case KR_TAG_EXIT: {
		kr_exit_info x;
		memcpy(&x, m->data, offsetof(kr_exit_info, payload));
		if (w->flags & W_STUBBORN)
			return;
		uint32_t k = atomic_fetch_add(&norder, 1);
		if (k < MAXC) {
			atomic_store(&order[k], w->idx);
			atomic_store(&order_ns[k], kri_now_ns());
		}
		kr_exit(ctx, x.reason);
		return;
	}
	}
}

/* ---- the boss ------------------------------------------------------------------------------ */

struct boss;
typedef void (*step_fn)(kr_ctx *ctx, struct boss *b, const kr_msg *m);

struct down {
	kr_pid pid;
	uint32_t reason, len;
	unsigned char payload[KR_PAYLOAD_MAX];
};

struct boss {
	step_fn setup; /* on T_GO: spawn the tree (default: flat, from the fields below) */
	step_fn step;  /* after the common bookkeeping, for every message */
	int det;
	/* the flat tree */
	kr_sup_flags flags;
	uint32_t n;
	uint32_t wflags[MAXC], restart[MAXC], shutdown_ms[MAXC];
	struct wargs wa[MAXC];
	/* what was seen */
	kr_pid sup;
	int phase;
	uint32_t count, polls;
	kr_pid first[MAXC], pid[MAXC], hsup[MAXC], other[MAXC];
	uint32_t hellos[MAXC], nhellos;
	kr_sup_child_info which[MAXC];
	uint32_t nwhich, which_total, nreplies;
	kr_sup_reply reps[MAXC];
	bool sup_down;
	uint32_t sup_reason, report_len;
	kr_sup_report report;
	struct down downs[4 * MAXC];
	uint32_t ndowns;
	uint64_t t0, t_down[MAXC];
	int fail; /* line of the first failed check */
	bool done;
};

#define CHECK(b, cond)                        \
	do {                                  \
		if (!(cond) && !(b)->fail)    \
			(b)->fail = __LINE__; \
	} while (0)

static kr_child_spec wspec(kr_ctx *ctx, struct boss *b, uint32_t i, const char *id)
{
	b->wa[i] = (struct wargs){.boss = kr_self(ctx), .idx = i, .flags = b->wflags[i]};
	return (kr_child_spec){
	    .id = id,
	    .start = worker,
	    .arg = &b->wa[i],
	    .arg_len = sizeof(b->wa[i]),
	    .restart = b->restart[i],
	    .shutdown_ms = b->shutdown_ms[i] ? b->shutdown_ms[i] : 1000,
	    .init_tag = T_INIT,
	};
}

static const char *const ids[MAXC] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"};

static void setup_flat(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	kr_child_spec spec[MAXC];
	for (uint32_t i = 0; i < b->n; i++)
		spec[i] = wspec(ctx, b, i, ids[i]);
	CHECK(b, kr_sup_spawn(ctx, &b->flags, spec, b->n, &b->sup) == 0);
}

static void crash(kr_ctx *ctx, struct boss *b, uint32_t i, uint32_t how)
{
	CHECK(b, kr_send(ctx, b->pid[i], T_CRASH, &how, sizeof(how)) == 0);
}

static void which(kr_ctx *ctx, struct boss *b, kr_pid sup)
{
	CHECK(b, kr_sup_which_children(ctx, sup, T_WHICH) == 0);
}

static void stop_sup(kr_ctx *ctx, struct boss *b)
{
	CHECK(b, kr_send_exit(ctx, b->sup, KR_SHUTDOWN) == 0);
}

static void finish(kr_ctx *ctx, struct boss *b)
{
	b->done = true;
	kr_exit(ctx, KR_NORMAL);
}

static void monitor(kr_ctx *ctx, struct boss *b, kr_pid pid)
{
	uint64_t ref;
	CHECK(b, kr_monitor(ctx, pid, &ref) == 0);
}

static const struct down *down_of(const struct boss *b, kr_pid pid)
{
	for (uint32_t i = 0; i < b->ndowns; i++)
		if (b->downs[i].pid == pid)
			return &b->downs[i];
	return 0;
}

static void boss(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct boss *b = *(struct boss **)state;
	kr_exit_info x;
	/* Nothing for 20 s (virtual in deterministic mode): fail rather than hang. */
	kr_receive_timeout(ctx, 20000);
	switch (m->tag) {
	case KR_TAG_TIMEOUT:
		CHECK(b, !"timed out");
		kr_stop(kr_runtime_of(ctx));
		return;
	case T_GO:
		kr_trap_exit(ctx, 1);
		(b->setup ? b->setup : setup_flat)(ctx, b, m);
		break;
	case T_HELLO: {
		struct hello h;
		CHECK(b, m->len == sizeof(h));
		memcpy(&h, m->data, sizeof(h));
		CHECK(b, h.idx < MAXC);
		if (h.idx >= MAXC)
			return;
		if (!b->hellos[h.idx])
			b->first[h.idx] = h.self;
		CHECK(b, h.self != b->pid[h.idx]);
		b->pid[h.idx] = h.self;
		b->hsup[h.idx] = h.sup;
		b->hellos[h.idx]++;
		b->nhellos++;
		break;
	}
	case T_WHICH: {
		kr_sup_children hdr;
		CHECK(b, m->len >= sizeof(hdr));
		memcpy(&hdr, m->data, sizeof(hdr));
		CHECK(b,
		      hdr.n <= MAXC && m->len == sizeof(hdr) + hdr.n * sizeof(kr_sup_child_info));
		b->nwhich = hdr.n <= MAXC ? hdr.n : 0;
		b->which_total = hdr.total;
		memcpy(b->which, m->data + sizeof(hdr), b->nwhich * sizeof(kr_sup_child_info));
		break;
	}
	case T_REPLY:
		CHECK(b, m->len == sizeof(kr_sup_reply) && b->nreplies < MAXC);
		if (b->nreplies < MAXC)
			memcpy(&b->reps[b->nreplies++], m->data, sizeof(kr_sup_reply));
		break;
	case KR_TAG_EXIT:
		memcpy(&x, m->data, m->len < sizeof(x) ? m->len : sizeof(x));
		if (x.pid == b->sup) {
			b->sup_down = true;
			b->sup_reason = x.reason;
			b->report_len = x.len;
			if (x.len == sizeof(b->report))
				memcpy(&b->report, x.payload, sizeof(b->report));
		}
		break;
	case KR_TAG_DOWN:
		memcpy(&x, m->data, m->len < sizeof(x) ? m->len : sizeof(x));
		if (b->ndowns < 4 * MAXC) {
			struct down *d = &b->downs[b->ndowns++];
			d->pid = x.pid;
			d->reason = x.reason;
			d->len = x.len;
			memcpy(d->payload, x.payload, x.len);
		}
		break;
	}
	b->step(ctx, b, m);
}

static void run_boss(struct boss *b, int det, uint64_t seed, uint64_t max_procs)
{
	kr_config c;
	kr_runtime *rt;
	kr_pid pid;
	kr_config_init(&c);
	c.schedulers = 2;
	c.deterministic = det;
	c.seed = seed;
	c.stats = 0;
	c.max_procs = max_procs;
	b->det = det;
	reset_order();
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	struct boss *bp = b;
	assert_int_equal(kr_rt_spawn(rt, boss, &bp, sizeof(bp), &pid), 0);
	assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	if (b->fail)
		fail_msg("scenario check at line %d failed (deterministic %d, seed %llu)", b->fail,
			 det, (unsigned long long)seed);
	assert_true(b->done);
	/* Nothing else lives: the supervisor, its children and its helper are gone. */
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

/* Run a scenario in deterministic mode for a few seeds, then with two real schedulers;
 * init fills a zeroed boss, check (may be NULL) asserts on it after the run. */
static void in_every_mode(void (*init)(struct boss *), void (*check)(struct boss *))
{
	static const uint64_t seeds[] = {1, 7, 42, 1234};
	struct boss *b = malloc(sizeof(*b));
	assert_non_null(b);
	for (size_t k = 0; k <= sizeof(seeds) / sizeof(seeds[0]); k++) {
		bool det = k < sizeof(seeds) / sizeof(seeds[0]);
		memset(b, 0, sizeof(*b));
		init(b);
		run_boss(b, det, det ? seeds[k] : 1, 0);
		if (check)
			check(b);
	}
	free(b);
}

/* Common end: once the supervisor is down (after stop_sup), check and finish. */
static void await_shutdown(kr_ctx *ctx, struct boss *b)
{
	if (!b->sup_down)
		return;
	CHECK(b, b->sup_reason == KR_SHUTDOWN);
	CHECK(b, b->report_len == 0);
	finish(ctx, b);
}

/* ---- one_for_one ------------------------------------------------------------------------- */

static void s_one_for_one(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	switch (b->phase) {
	case 0:
		if (b->nhellos == 3) {
			for (uint32_t i = 0; i < 3; i++)
				CHECK(b, b->hsup[i] == b->sup); /* the init message names it */
			crash(ctx, b, 1, KR_REASON_USER);
			b->phase = 1;
		}
		return;
	case 1:
		if (b->nhellos == 4) {
			CHECK(b, b->hellos[1] == 2 && b->pid[1] != b->first[1]);
			which(ctx, b, b->sup);
			b->phase = 2;
		}
		return;
	case 2:
		if (m->tag == T_WHICH) {
			CHECK(b, b->nwhich == 3 && b->which_total == 3);
			CHECK(b, b->which[0].pid == b->first[0]);
			CHECK(b, b->which[1].pid == b->pid[1]);
			CHECK(b, b->which[2].pid == b->first[2]);
			for (uint32_t i = 0; i < 3; i++) {
				CHECK(b, strcmp(b->which[i].id, ids[i]) == 0);
				CHECK(b, b->which[i].restart == KR_PERMANENT);
				CHECK(b, b->which[i].flags == 0);
			}
			stop_sup(ctx, b);
			b->phase = 3;
		}
		return;
	case 3:
		if (b->sup_down) {
			CHECK(b, b->nhellos == 4);
			await_shutdown(ctx, b);
		}
		return;
	}
}

static void i_one_for_one(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ONE, 10, 60000};
	b->n = 3;
	b->step = s_one_for_one;
}

static void one_for_one_restarts_only_the_crashed_child(void **st)
{
	in_every_mode(i_one_for_one, 0);
}

/* ---- one_for_all and rest_for_one -------------------------------------------------------- */

/* Crash child b->count of b->n; expect the children from b->other[0] on restarted. */
static void s_restart_group(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	uint32_t victim = b->count, from = (uint32_t)b->other[0];
	uint32_t expect = b->n + (b->n - from);
	switch (b->phase) {
	case 0:
		if (b->nhellos == b->n) {
			crash(ctx, b, victim, KR_REASON_USER);
			b->phase = 1;
		}
		return;
	case 1:
		if (b->nhellos == expect) {
			which(ctx, b, b->sup);
			b->phase = 2;
		}
		return;
	case 2:
		if (m->tag != T_WHICH)
			return;
		CHECK(b, b->nwhich == b->n);
		for (uint32_t i = 0; i < b->n; i++) {
			CHECK(b, b->which[i].pid == b->pid[i]);
			CHECK(b, b->hellos[i] == (i < from ? 1u : 2u));
			CHECK(b, (b->pid[i] == b->first[i]) == (i < from));
		}
		stop_sup(ctx, b);
		b->phase = 3;
		return;
	case 3:
		if (b->sup_down) {
			CHECK(b, b->nhellos == expect); /* nobody restarted twice */
			await_shutdown(ctx, b);
		}
		return;
	}
}

static void i_one_for_all(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ALL, 10, 60000};
	b->n = 4;
	b->count = 2;    /* the victim */
	b->other[0] = 0; /* restarted from the first */
	b->step = s_restart_group;
}

static void one_for_all_restarts_every_child(void **st)
{
	in_every_mode(i_one_for_all, 0);
}

/* Two children of a one_for_all supervisor crash at once: one restart of everyone (the
 * second exit is taken as the shutdown of that child), counted once. */
static void s_two_crashes(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	switch (b->phase) {
	case 0:
		if (b->nhellos == 4) {
			crash(ctx, b, 1, KR_REASON_USER);
			crash(ctx, b, 3, CRASH_SEGV);
			b->phase = 1;
		}
		return;
	case 1:
		if (b->nhellos == 8) {
			which(ctx, b, b->sup);
			b->phase = 2;
		}
		return;
	case 2:
		if (m->tag != T_WHICH)
			return;
		for (uint32_t i = 0; i < 4; i++) {
			CHECK(b, b->hellos[i] == 2 && b->which[i].pid == b->pid[i]);
			CHECK(b, b->pid[i] != b->first[i]);
		}
		/* intensity 1: the two crashes were one restart; one more is allowed */
		crash(ctx, b, 0, KR_REASON_USER);
		b->phase = 3;
		return;
	case 3:
		if (b->nhellos == 12) {
			stop_sup(ctx, b);
			b->phase = 4;
		}
		return;
	case 4:
		if (b->sup_down) {
			CHECK(b, b->nhellos == 12);
			await_shutdown(ctx, b);
		}
		return;
	}
}

static void i_two_crashes(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ALL, 2, 60000};
	b->n = 4;
	b->step = s_two_crashes;
}

static void one_for_all_restarts_everyone_once_when_two_children_crash_together(void **st)
{
	in_every_mode(i_two_crashes, 0);
}

static void i_rest_for_one(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_REST_FOR_ONE, 10, 60000};
	b->n = 4;
	b->count = 1;
	b->other[0] = 1; /* the victim and those after it */
	b->step = s_restart_group;
}

static void rest_for_one_restarts_the_crashed_child_and_those_started_after_it(void **st)
{
	in_every_mode(i_rest_for_one, 0);
}

static void i_rest_for_one_last(struct boss *b)
{
	i_rest_for_one(b);
	b->count = 3;
	b->other[0] = 3; /* the last one: alone */
}

static void rest_for_one_with_the_last_child_restarts_it_alone(void **st)
{
	in_every_mode(i_rest_for_one_last, 0);
}

/* ---- restart types ---------------------------------------------------------------------- */

/* c0 transient crashes abnormally (restarted), then exits normally; c1 transient exits
 * with KR_SHUTDOWN; c2 temporary crashes; c3 permanent exits normally (restarted). */
static void s_restart_types(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	switch (b->phase) {
	case 0:
		if (b->nhellos == 4) {
			crash(ctx, b, 0, KR_REASON_USER + 1);
			b->phase = 1;
		}
		return;
	case 1:
		if (m->tag == T_HELLO && b->hellos[0] == 2) {
			crash(ctx, b, 0, KR_NORMAL);
			crash(ctx, b, 1, KR_SHUTDOWN);
			crash(ctx, b, 2, KR_REASON_USER);
			crash(ctx, b, 3, KR_NORMAL);
			b->phase = 2;
		}
		return;
	case 2:
		if (b->hellos[3] == 2) {
			which(ctx, b, b->sup);
			b->phase = 3;
		}
		return;
	case 3:
		if (m->tag != T_WHICH)
			return;
		/* The exits reach the supervisor in any order: ask until all are seen. */
		if (b->nwhich != 3 || b->which[0].pid || b->which[1].pid) {
			CHECK(b, ++b->polls < 100000);
			which(ctx, b, b->sup);
			return;
		}
		CHECK(b, strcmp(b->which[0].id, "c0") == 0 && b->which[0].restart == KR_TRANSIENT);
		CHECK(b, strcmp(b->which[1].id, "c1") == 0 && b->which[1].restart == KR_TRANSIENT);
		CHECK(b, strcmp(b->which[2].id, "c3") == 0 && b->which[2].pid == b->pid[3]);
		stop_sup(ctx, b);
		b->phase = 4;
		return;
	case 4:
		if (b->sup_down) {
			CHECK(b, b->hellos[0] == 2 && b->hellos[1] == 1 && b->hellos[2] == 1);
			CHECK(b, b->hellos[3] == 2);
			await_shutdown(ctx, b);
		}
		return;
	}
}

static void i_restart_types(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ONE, 10, 60000};
	b->n = 4;
	b->restart[0] = KR_TRANSIENT;
	b->restart[1] = KR_TRANSIENT;
	b->restart[2] = KR_TEMPORARY;
	b->restart[3] = KR_PERMANENT;
	b->step = s_restart_types;
}

static void transient_restarts_after_abnormal_exit_only_and_temporary_never(void **st)
{
	in_every_mode(i_restart_types, 0);
}

/* ---- restart intensity ------------------------------------------------------------------- */

static void s_intensity(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	if (m->tag == T_HELLO) {
		struct hello h;
		memcpy(&h, m->data, sizeof(h));
		monitor(ctx, b, h.self);
	}
	switch (b->phase) {
	case 0:
		if (b->nhellos == 3) {
			crash(ctx, b, 0, KR_REASON_USER);
			b->phase = 1;
		}
		return;
	case 1:
		/* Two restarts are allowed; the third crash is one too many. */
		if (m->tag == T_HELLO) {
			crash(ctx, b, 0, KR_REASON_USER);
			if (b->hellos[0] == 3)
				b->phase = 2;
		}
		return;
	case 2:
		if (b->sup_down && b->ndowns == 5) {
			CHECK(b, b->sup_reason == KR_SHUTDOWN);
			CHECK(b, b->report_len == sizeof(kr_sup_report));
			CHECK(b, b->report.cause == KR_SUP_INTENSITY);
			CHECK(b, b->report.err == 0);
			CHECK(b, strcmp(b->report.id, "c0") == 0);
			CHECK(b, b->nhellos == 5);
			/* every child ever started is gone: 3 crashes, 2 shut down */
			for (uint32_t i = 1; i < 3; i++) {
				const struct down *d = down_of(b, b->pid[i]);
				CHECK(b, d && d->reason == KR_SHUTDOWN);
			}
			finish(ctx, b);
		}
		return;
	}
}

static void i_intensity(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ONE, 2, 60000};
	b->n = 3;
	b->step = s_intensity;
}

static void more_restarts_than_intensity_end_the_supervisor_and_all_children(void **st)
{
	in_every_mode(i_intensity, 0);
}

static void s_zero_intensity(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	if (b->phase == 0 && b->nhellos == 2) {
		crash(ctx, b, 1, KR_REASON_USER);
		b->phase = 1;
	} else if (b->phase == 1 && b->sup_down) {
		CHECK(b, b->sup_reason == KR_SHUTDOWN && b->report.cause == KR_SUP_INTENSITY);
		CHECK(b, strcmp(b->report.id, "c1") == 0 && b->nhellos == 2);
		finish(ctx, b);
	}
}

static void i_zero_intensity(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ALL, 0, 1000};
	b->n = 2;
	b->step = s_zero_intensity;
}

static void intensity_zero_gives_up_at_the_first_exit_to_restart(void **st)
{
	in_every_mode(i_zero_intensity, 0);
}

/* ---- nested trees ------------------------------------------------------------------------- */

/* top (one_for_one): a = 0, s1 = supervisor (one_for_one, intensity 5) of g1 = 2, g2 = 3,
 * then b = 1. g1 crashes 5 times: only g1 restarts. A sixth crash: s1 gives up, top
 * restarts s1 (new g1 and g2), a and b keep their pids. */
static void setup_nested(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	kr_child_spec g[2] = {wspec(ctx, b, 2, "g1"), wspec(ctx, b, 3, "g2")};
	kr_sup_flags sf = {KR_ONE_FOR_ONE, 5, 60000}, tf = {KR_ONE_FOR_ONE, 3, 60000};
	kr_child_spec s1;
	CHECK(b, kr_sup_child("s1", &sf, g, 2, &s1) == 0);
	CHECK(b, s1.restart == KR_PERMANENT && s1.shutdown_ms == KR_INFINITY);
	kr_child_spec top[3] = {wspec(ctx, b, 0, "a"), s1, wspec(ctx, b, 1, "b")};
	CHECK(b, kr_sup_spawn(ctx, &tf, top, 3, &b->sup) == 0);
	kr_sup_child_free(&s1);
	CHECK(b, s1.arg == 0);
}

static void s_nested(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	kr_pid *top = b->other; /* top's children at first: a, s1, b */
	switch (b->phase) {
	case 0:
		if (b->nhellos == 4) {
			which(ctx, b, b->sup);
			b->phase = 1;
		}
		return;
	case 1:
		if (m->tag != T_WHICH)
			return;
		CHECK(b, b->nwhich == 3);
		CHECK(b,
		      b->which[1].flags == KR_SUP_SUPERVISOR && strcmp(b->which[1].id, "s1") == 0);
		CHECK(b, b->which[0].flags == 0 && b->which[0].pid == b->pid[0]);
		for (int i = 0; i < 3; i++)
			top[i] = b->which[i].pid;
		CHECK(b, b->hsup[2] == top[1] && b->hsup[3] == top[1] && b->hsup[0] == b->sup);
		monitor(ctx, b, top[1]);
		crash(ctx, b, 2, KR_REASON_USER);
		b->phase = 2;
		return;
	case 2:
		if (m->tag != T_HELLO)
			return;
		CHECK(b, b->nhellos == 4 + (b->hellos[2] - 1));
		if (b->hellos[2] < 6) {
			crash(ctx, b, 2, CRASH_SEGV);
			return;
		}
		which(ctx, b, top[1]);
		b->phase = 3;
		return;
	case 3:
		if (m->tag != T_WHICH)
			return;
		CHECK(b, b->nwhich == 2 && b->which[0].pid == b->pid[2]);
		CHECK(b, b->which[1].pid == b->first[3] && b->hellos[3] == 1);
		which(ctx, b, b->sup);
		b->phase = 4;
		return;
	case 4:
		if (m->tag != T_WHICH)
			return;
		for (int i = 0; i < 3; i++)
			CHECK(b, b->which[i].pid == top[i]);
		CHECK(b, b->hellos[0] == 1 && b->hellos[1] == 1);
		crash(ctx, b, 2, KR_REASON_USER); /* the sixth: s1 gives up */
		b->phase = 5;
		return;
	case 5:
		if (b->hellos[2] == 7 && b->hellos[3] == 2) {
			which(ctx, b, b->sup);
			b->phase = 6;
		}
		return;
	case 6: {
		if (m->tag != T_WHICH)
			return;
		CHECK(b, b->nwhich == 3);
		CHECK(b, b->which[0].pid == top[0] && b->which[2].pid == top[2]);
		CHECK(b, b->which[1].pid != top[1] && b->which[1].pid == b->hsup[2]);
		CHECK(b, b->hsup[3] == b->which[1].pid && b->pid[3] != b->first[3]);
		CHECK(b, b->hellos[0] == 1 && b->hellos[1] == 1);
		const struct down *d = down_of(b, top[1]);
		kr_sup_report r;
		CHECK(b, d && d->reason == KR_SHUTDOWN && d->len == sizeof(r));
		if (d && d->len == sizeof(r)) {
			memcpy(&r, d->payload, sizeof(r));
			CHECK(b, r.cause == KR_SUP_INTENSITY && strcmp(r.id, "g1") == 0);
		}
		stop_sup(ctx, b);
		b->phase = 7;
		return;
	}
	case 7:
		await_shutdown(ctx, b);
		return;
	}
}

static void i_nested(struct boss *b)
{
	b->setup = setup_nested;
	b->step = s_nested;
}

static void crash_storm_in_a_grandchild_restarts_only_within_its_subtree(void **st)
{
	in_every_mode(i_nested, 0);
}

/* ---- orderly shutdown ---------------------------------------------------------------------- */

static void s_order(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	if (b->phase == 0 && b->nhellos == b->n) {
		stop_sup(ctx, b);
		b->phase = 1;
	} else if (b->phase == 1) {
		await_shutdown(ctx, b);
	}
}

static void i_order(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ONE, 1, 1000};
	b->n = 5;
	for (int i = 0; i < 5; i++)
		b->wflags[i] = W_ORDER;
	b->step = s_order;
}

static void c_order(struct boss *b)
{
	assert_int_equal(atomic_load(&norder), 5);
	for (uint32_t k = 0; k < 5; k++)
		assert_int_equal(atomic_load(&order[k]), 4 - k);
}

static void orderly_shutdown_stops_children_in_reverse_start_order(void **st)
{
	in_every_mode(i_order, c_order);
}

/* c0 records, c1 ignores KR_SHUTDOWN (200 ms, then killed), c2 records, c3 ignores it but
 * has shutdown_ms 0 (killed at once). */
static void s_stubborn(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	if (m->tag == T_HELLO) {
		struct hello h;
		memcpy(&h, m->data, sizeof(h));
		if (h.idx == 1 || h.idx == 3)
			monitor(ctx, b, h.self);
	}
	if (m->tag == KR_TAG_DOWN)
		b->t_down[b->ndowns - 1] = kri_now_ns();
	if (b->phase == 0 && b->nhellos == 4) {
		b->t0 = kri_now_ns();
		stop_sup(ctx, b);
		b->phase = 1;
	} else if (b->phase == 1 && b->sup_down && b->ndowns == 2) {
		const struct down *d1 = down_of(b, b->pid[1]), *d3 = down_of(b, b->pid[3]);
		CHECK(b, d1 && d1->reason == KR_KILLED);
		CHECK(b, d3 && d3->reason == KR_KILLED);
		CHECK(b, b->downs[0].pid == b->pid[3]); /* c3 went first */
		if (!b->det) {
			uint64_t t1 = b->t_down[1] - b->t0;
			CHECK(b, t1 >= 200000000u && t1 < 5000000000u);
		}
		await_shutdown(ctx, b);
	}
}

static void i_stubborn(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ONE, 1, 1000};
	b->n = 4;
	b->wflags[0] = W_ORDER;
	b->wflags[1] = W_STUBBORN;
	b->shutdown_ms[1] = 200;
	b->wflags[2] = W_ORDER;
	b->wflags[3] = W_STUBBORN;
	b->shutdown_ms[3] = 0; /* wspec: 0 means the default; set below */
	b->step = s_stubborn;
}

static void c_stubborn(struct boss *b)
{
	assert_int_equal(atomic_load(&norder), 2);
	assert_int_equal(atomic_load(&order[0]), 2);
	assert_int_equal(atomic_load(&order[1]), 0);
	if (!b->det) /* c0 was only asked after c1's 200 ms were up */
		assert_true(atomic_load(&order_ns[1]) - b->t0 >= 200000000u);
}

static void setup_stubborn(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	kr_child_spec spec[4];
	for (uint32_t i = 0; i < 4; i++)
		spec[i] = wspec(ctx, b, i, ids[i]);
	spec[3].shutdown_ms = 0; /* brutal kill */
	CHECK(b, kr_sup_spawn(ctx, &b->flags, spec, 4, &b->sup) == 0);
}

static void i_stubborn_full(struct boss *b)
{
	i_stubborn(b);
	b->setup = setup_stubborn;
}

static void shutdown_kills_a_child_that_ignores_it_after_shutdown_ms(void **st)
{
	in_every_mode(i_stubborn_full, c_stubborn);
}

/* The parent's exit (any reason) shuts the supervisor down with that reason. */
static void parent(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct boss *b = *(struct boss **)state;
	if (m->tag == T_GO) {
		kr_child_spec spec[3];
		for (uint32_t i = 0; i < 3; i++)
			spec[i] = wspec(ctx, b, i, ids[i]);
		for (uint32_t i = 0; i < 3; i++)
			b->wa[i].boss = b->other[0];
		kr_pid sup;
		CHECK(b, kr_sup_spawn(ctx, &b->flags, spec, 3, &sup) == 0);
		kr_send(ctx, b->other[0], T_SUP, &sup, sizeof(sup));
	} else if (m->tag == T_QUIT) {
		kr_exit(ctx, KR_REASON_USER + 7);
	}
}

static void setup_parent(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	struct boss *bp = b;
	b->other[0] = kr_self(ctx);
	CHECK(b, kr_spawn(ctx, parent, &bp, sizeof(bp), &b->other[1]) == 0);
	CHECK(b, kr_send(ctx, b->other[1], T_GO, 0, 0) == 0);
}

static void s_parent(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	if (m->tag == T_SUP) {
		memcpy(&b->sup, m->data, sizeof(kr_pid));
		monitor(ctx, b, b->sup);
	}
	if (m->tag == T_HELLO) {
		struct hello h;
		memcpy(&h, m->data, sizeof(h));
		monitor(ctx, b, h.self);
	}
	if (b->phase == 0 && b->sup && b->nhellos == 3) {
		CHECK(b, kr_send(ctx, b->other[1], T_QUIT, 0, 0) == 0);
		b->phase = 1;
	} else if (b->phase == 1 && b->ndowns == 4) {
		const struct down *d = down_of(b, b->sup);
		CHECK(b, d && d->reason == KR_REASON_USER + 7 && d->len == 0);
		for (uint32_t i = 0; i < 3; i++) {
			d = down_of(b, b->pid[i]);
			CHECK(b, d && d->reason == KR_SHUTDOWN); /* as the supervisor told them */
		}
		finish(ctx, b);
	}
}

static void i_parent(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ONE, 1, 1000};
	for (int i = 0; i < 3; i++)
		b->wflags[i] = W_ORDER;
	b->setup = setup_parent;
	b->step = s_parent;
}

static void c_parent(struct boss *b)
{
	assert_int_equal(atomic_load(&norder), 3);
	for (uint32_t k = 0; k < 3; k++)
		assert_int_equal(atomic_load(&order[k]), 2 - k);
}

static void exit_of_the_parent_shuts_the_supervisor_down_with_its_reason(void **st)
{
	in_every_mode(i_parent, c_parent);
}

/* KR_KILL ends a supervisor at once: its linked children die with it and nothing leaks
 * (the ASan build checks). */
static void s_killed(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	if (m->tag == T_HELLO) {
		struct hello h;
		memcpy(&h, m->data, sizeof(h));
		monitor(ctx, b, h.self);
	}
	if (b->phase == 0 && b->nhellos == 3) {
		CHECK(b, kr_send_exit(ctx, b->sup, KR_KILL) == 0);
		b->phase = 1;
	} else if (b->phase == 1 && b->sup_down && b->ndowns == 3) {
		CHECK(b, b->sup_reason == KR_KILLED);
		for (uint32_t i = 0; i < 3; i++) {
			const struct down *d = down_of(b, b->pid[i]);
			CHECK(b, d && d->reason == KR_KILLED);
		}
		finish(ctx, b);
	}
}

static void i_killed(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_REST_FOR_ONE, 1, 1000};
	b->n = 3;
	b->step = s_killed;
}

static void killed_supervisor_takes_its_children_along_and_leaks_nothing(void **st)
{
	in_every_mode(i_killed, 0);
}

/* ---- dynamic children ----------------------------------------------------------------------- */

static void setup_dynamic(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	setup_flat(ctx, b, m);
	static const uint32_t types[4] = {0, KR_TEMPORARY, KR_PERMANENT, KR_TRANSIENT};
	for (uint32_t i = 1; i < 4; i++) {
		kr_child_spec s = wspec(ctx, b, i, "conn");
		s.restart = types[i];
		CHECK(b, kr_sup_start_child(ctx, b->sup, &s, T_REPLY) == 0);
	}
}

static void s_dynamic(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	switch (b->phase) {
	case 0:
		if (b->nhellos == 4 && b->nreplies == 3) {
			for (uint32_t i = 1; i < 4; i++)
				CHECK(b, b->reps[i - 1].rc == 0 && b->reps[i - 1].pid == b->pid[i]);
			which(ctx, b, b->sup);
			b->phase = 1;
		}
		return;
	case 1:
		if (m->tag != T_WHICH)
			return;
		CHECK(b, b->nwhich == 4 && b->which_total == 4);
		CHECK(b, strcmp(b->which[0].id, "c0") == 0 && b->which[0].flags == 0);
		for (uint32_t i = 1; i < 4; i++) {
			CHECK(b, strcmp(b->which[i].id, "conn") == 0);
			CHECK(b,
			      b->which[i].flags == KR_SUP_DYNAMIC && b->which[i].pid == b->pid[i]);
		}
		CHECK(b,
		      b->which[1].restart == KR_TEMPORARY && b->which[2].restart == KR_PERMANENT);
		crash(ctx, b, 2, CRASH_SEGV);     /* permanent: restarted */
		crash(ctx, b, 1, KR_REASON_USER); /* temporary: forgotten */
		CHECK(b, kr_sup_terminate_child(ctx, b->sup, b->pid[3], T_REPLY) == 0);
		CHECK(b, kr_sup_terminate_child(ctx, b->sup, b->pid[3], T_REPLY) == 0);
		CHECK(b, kr_sup_terminate_child(ctx, b->sup, b->sup, T_REPLY) == 0);
		b->phase = 2;
		return;
	case 2:
		if (b->nreplies == 6 && b->hellos[2] == 2) {
			CHECK(b, b->reps[3].rc == 0 && b->reps[3].pid == b->pid[3]);
			CHECK(b, b->reps[4].rc == -ENOENT && b->reps[4].pid == b->pid[3]);
			CHECK(b, b->reps[5].rc == -ENOENT);
			which(ctx, b, b->sup);
			b->phase = 3;
		}
		return;
	case 3:
		if (m->tag != T_WHICH)
			return;
		if (b->nwhich != 2) { /* the temporary child's exit may not be in yet */
			CHECK(b, ++b->polls < 100000);
			which(ctx, b, b->sup);
			return;
		}
		CHECK(b, b->which[0].pid == b->first[0]);
		CHECK(b, b->which[1].pid == b->pid[2] && b->pid[2] != b->first[2]);
		stop_sup(ctx, b);
		b->phase = 4;
		return;
	case 4:
		if (b->sup_down) {
			CHECK(b, b->hellos[1] == 1 && b->hellos[3] == 1);
			await_shutdown(ctx, b);
		}
		return;
	}
}

static void i_dynamic(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ONE, 10, 60000};
	b->n = 1;
	b->setup = setup_dynamic;
	b->step = s_dynamic;
}

static void dynamic_children_start_restart_and_terminate_on_request(void **st)
{
	in_every_mode(i_dynamic, 0);
}

/* ---- native faults ------------------------------------------------------------------------- */

static void s_segfault(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	switch (b->phase) {
	case 0:
		if (b->nhellos == 2) {
			monitor(ctx, b, b->pid[0]);
			crash(ctx, b, 0, CRASH_SEGV);
			b->phase = 1;
		}
		return;
	case 1:
		if (b->hellos[0] == 2 && b->ndowns == 1) {
			kr_fault f;
			CHECK(b, b->downs[0].pid == b->first[0]);
			CHECK(b, b->downs[0].reason == KR_FAULT && b->downs[0].len == sizeof(f));
			memcpy(&f, b->downs[0].payload, sizeof(f));
			CHECK(b, f.signo == SIGSEGV && f.addr == 0);
			which(ctx, b, b->sup);
			b->phase = 2;
		}
		return;
	case 2:
		if (m->tag != T_WHICH)
			return;
		CHECK(b, b->which[0].pid == b->pid[0] && b->pid[0] != b->first[0]);
		CHECK(b, b->which[1].pid == b->first[1]);
		stop_sup(ctx, b);
		b->phase = 3;
		return;
	case 3:
		await_shutdown(ctx, b);
		return;
	}
}

static void i_segfault(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ONE, 10, 60000};
	b->n = 2;
	b->step = s_segfault;
}

static void child_that_segfaults_is_restarted(void **st)
{
	if (TSAN)
		skip();
	in_every_mode(i_segfault, 0);
}

/* ---- start failures ------------------------------------------------------------------------ */

/* max_procs 4: the boss, the supervisor, its janitor and c0; c1 cannot be spawned. */
static void s_start_failure(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	if (!b->sup_down)
		return;
	CHECK(b, b->sup_reason == KR_SHUTDOWN);
	CHECK(b, b->report_len == sizeof(kr_sup_report));
	CHECK(b, b->report.cause == KR_SUP_START_FAILED && b->report.err == -EAGAIN);
	CHECK(b, strcmp(b->report.id, "c1") == 0);
	finish(ctx, b);
}

static void child_that_cannot_start_ends_the_supervisor_with_a_report(void **st)
{
	struct boss *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	for (int det = 1; det >= 0; det--) {
		memset(b, 0, sizeof(*b));
		b->flags = (kr_sup_flags){KR_ONE_FOR_ONE, 10, 60000};
		b->n = 3;
		b->step = s_start_failure;
		run_boss(b, det, 3, 4);
	}
	free(b);
}

/* ---- from the main thread, and argument checks ---------------------------------------------- */

static _Atomic int main_hellos;

static void counter(kr_ctx *ctx, void *state, const kr_msg *m)
{
	if (m->tag == T_HELLO)
		atomic_fetch_add(&main_hellos, 1);
	else if (m->tag == T_SUP) {
		kr_pid sup;
		uint64_t ref;
		memcpy(&sup, m->data, sizeof(sup));
		kr_monitor(ctx, sup, &ref);
	} else if (m->tag == KR_TAG_DOWN) {
		kr_exit_info x;
		memcpy(&x, m->data, offsetof(kr_exit_info, payload));
		atomic_store(&main_hellos, x.reason == KR_SHUTDOWN ? -1 : -2);
		kr_exit(ctx, KR_NORMAL);
	}
}

static void supervisor_spawned_from_main_thread_stops_on_rt_exit(void **st)
{
	kr_config c;
	kr_runtime *rt;
	kr_pid cnt, sup;
	kr_config_init(&c);
	c.schedulers = 2;
	c.stats = 0;
	reset_order();
	atomic_store(&main_hellos, 0);
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_rt_spawn(rt, counter, 0, 0, &cnt), 0);
	struct wargs wa[3];
	kr_child_spec spec[3];
	for (uint32_t i = 0; i < 3; i++) {
		wa[i] = (struct wargs){.boss = cnt, .idx = i, .flags = W_ORDER};
		spec[i] = (kr_child_spec){.id = ids[i],
					  .start = worker,
					  .arg = &wa[i],
					  .arg_len = sizeof(wa[i]),
					  .shutdown_ms = 5000,
					  .init_tag = T_INIT};
	}
	kr_sup_flags f = {KR_ONE_FOR_ALL, 3, 5000};
	assert_int_equal(kr_rt_sup_spawn(rt, &f, spec, 3, &sup), 0);
	memset(wa, 0, sizeof(wa)); /* copied: the caller's specs need not outlive the call */
	assert_int_equal(kr_rt_send(rt, cnt, T_SUP, &sup, sizeof(sup)), 0);
	assert_int_equal(kr_start(rt), 0);
	for (int i = 0; i < 10000 && atomic_load(&main_hellos) < 3; i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, 0);
	}
	assert_int_equal(atomic_load(&main_hellos), 3);
	assert_int_equal(kr_rt_exit(rt, sup, KR_SHUTDOWN), 0);
	assert_int_equal(kr_wait(rt), 0);
	assert_int_equal(atomic_load(&main_hellos), -1);
	assert_int_equal(atomic_load(&norder), 3);
	for (uint32_t k = 0; k < 3; k++)
		assert_int_equal(atomic_load(&order[k]), 2 - k);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

static void idle(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_exit(ctx, KR_NORMAL);
}

static void bad_flags_and_specs_are_refused_and_spawn_nothing(void **st)
{
	kr_runtime *rt;
	kr_config c;
	kr_pid sup = 0;
	kr_config_init(&c);
	c.deterministic = 1;
	c.stats = 0;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	kr_sup_flags f = {KR_ONE_FOR_ONE, 1, 1000};
	kr_child_spec ok = {.id = "a", .start = idle};
	kr_child_spec s[2] = {ok, ok};
	s[1].id = "b";

	kr_sup_flags bad = f;
	assert_int_equal(kr_rt_sup_spawn(rt, 0, s, 2, &sup), -EINVAL);
	assert_int_equal(kr_rt_sup_spawn(rt, &f, s, 2, 0), -EINVAL);
	assert_int_equal(kr_rt_sup_spawn(0, &f, s, 2, &sup), -EINVAL);
	bad.strategy = 3;
	assert_int_equal(kr_rt_sup_spawn(rt, &bad, s, 2, &sup), -EINVAL);
	bad = f;
	bad.period_ms = 0;
	assert_int_equal(kr_rt_sup_spawn(rt, &bad, s, 2, &sup), -EINVAL);
	assert_int_equal(kr_rt_sup_spawn(rt, &f, 0, 2, &sup), -EINVAL);

	static const char *const bad_ids[] = {0, "", "0123456789abcdef0123456789abcdef"};
	for (size_t i = 0; i < 3; i++) {
		s[1].id = bad_ids[i];
		assert_int_equal(kr_rt_sup_spawn(rt, &f, s, 2, &sup), -EINVAL);
	}
	s[1].id = "0123456789abcdef0123456789abcde"; /* 31: the longest */
	kr_child_spec probe;
	assert_int_equal(kr_sup_child("x", &f, s, 2, &probe), 0);
	kr_sup_child_free(&probe);
	s[1] = ok;
	assert_int_equal(kr_rt_sup_spawn(rt, &f, s, 2, &sup), -EEXIST);
	s[1].id = "b";
	s[1].start = 0;
	assert_int_equal(kr_rt_sup_spawn(rt, &f, s, 2, &sup), -EINVAL);
	s[1].start = idle;
	s[1].arg_len = 4;
	assert_int_equal(kr_rt_sup_spawn(rt, &f, s, 2, &sup), -EINVAL);
	s[1].arg_len = 0;
	s[1].restart = 3;
	assert_int_equal(kr_rt_sup_spawn(rt, &f, s, 2, &sup), -EINVAL);
	s[1].restart = KR_TEMPORARY;
	s[1].init_tag = KR_TAG_SYSTEM;
	assert_int_equal(kr_rt_sup_spawn(rt, &f, s, 2, &sup), -EINVAL);
	s[1].init_tag = 0;

	kr_child_spec nested;
	assert_int_equal(kr_sup_child(0, &f, s, 2, &nested), -EINVAL);
	assert_int_equal(kr_sup_child("n", &bad, s, 2, &nested), -EINVAL);
	assert_int_equal(kr_sup_child("n", &f, s, 2, 0), -EINVAL);
	kr_sup_child_free(0);
	kr_sup_child_free(&ok); /* not a supervisor's: left alone */
	assert_non_null(ok.start);
	assert_int_equal(kr_alive(rt), 0);

	/* A valid tree with a nested supervisor, shut down from the main thread before it runs. */
	assert_int_equal(kr_sup_child("n", &f, s, 2, &nested), 0);
	kr_child_spec top[2] = {s[0], nested};
	assert_int_equal(kr_rt_sup_spawn(rt, &f, top, 2, &sup), 0);
	kr_sup_child_free(&nested);
	assert_int_equal(kr_rt_exit(rt, sup, KR_SHUTDOWN), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

/* A supervisor with no children is fine, and gets requests it answers. */
static void s_empty(kr_ctx *ctx, struct boss *b, const kr_msg *m)
{
	if (b->phase == 0) {
		which(ctx, b, b->sup);
		CHECK(b, kr_sup_terminate_child(ctx, b->sup, kr_self(ctx), T_REPLY) == 0);
		kr_child_spec bad = {.start = 0};
		CHECK(b, kr_sup_start_child(ctx, b->sup, &bad, T_REPLY) == -EINVAL);
		bad.start = idle;
		CHECK(b, kr_sup_start_child(ctx, b->sup, &bad, KR_TAG_SYSTEM) == -EINVAL);
		/* An id longer than KR_SUP_ID_MAX is refused (NULL and "" are fine). */
		char id99[100];
		memset(id99, 'i', 99);
		id99[99] = 0;
		bad.id = id99;
		CHECK(b, kr_sup_start_child(ctx, b->sup, &bad, T_REPLY) == -EINVAL);
		bad.id = 0;
		CHECK(b, kr_sup_which_children(ctx, b->sup, KR_TAG_SYSTEM) == -EINVAL);
		CHECK(b, kr_send(ctx, b->sup, 12345, "junk", 4) == 0); /* dropped */
		b->phase = 1;
	} else if (b->phase == 1 && m->tag == T_REPLY) { /* answers come in request order */
		CHECK(b, b->nwhich == 0 && b->which_total == 0);
		CHECK(b, b->reps[0].rc == -ENOENT);
		stop_sup(ctx, b);
		b->phase = 2;
	} else if (b->phase == 2) {
		await_shutdown(ctx, b);
	}
}

static void i_empty(struct boss *b)
{
	b->flags = (kr_sup_flags){KR_ONE_FOR_ALL, 0, 1};
	b->n = 0;
	b->step = s_empty;
}

static void supervisor_without_children_answers_requests(void **st)
{
	in_every_mode(i_empty, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(one_for_one_restarts_only_the_crashed_child),
	    cmocka_unit_test(one_for_all_restarts_every_child),
	    cmocka_unit_test(one_for_all_restarts_everyone_once_when_two_children_crash_together),
	    cmocka_unit_test(rest_for_one_restarts_the_crashed_child_and_those_started_after_it),
	    cmocka_unit_test(rest_for_one_with_the_last_child_restarts_it_alone),
	    cmocka_unit_test(transient_restarts_after_abnormal_exit_only_and_temporary_never),
	    cmocka_unit_test(more_restarts_than_intensity_end_the_supervisor_and_all_children),
	    cmocka_unit_test(intensity_zero_gives_up_at_the_first_exit_to_restart),
	    cmocka_unit_test(crash_storm_in_a_grandchild_restarts_only_within_its_subtree),
	    cmocka_unit_test(orderly_shutdown_stops_children_in_reverse_start_order),
	    cmocka_unit_test(shutdown_kills_a_child_that_ignores_it_after_shutdown_ms),
	    cmocka_unit_test(exit_of_the_parent_shuts_the_supervisor_down_with_its_reason),
	    cmocka_unit_test(killed_supervisor_takes_its_children_along_and_leaks_nothing),
	    cmocka_unit_test(dynamic_children_start_restart_and_terminate_on_request),
	    cmocka_unit_test(child_that_segfaults_is_restarted),
	    cmocka_unit_test(child_that_cannot_start_ends_the_supervisor_with_a_report),
	    cmocka_unit_test(supervisor_spawned_from_main_thread_stops_on_rt_exit),
	    cmocka_unit_test(bad_flags_and_specs_are_refused_and_spawn_nothing),
	    cmocka_unit_test(supervisor_without_children_answers_requests),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
