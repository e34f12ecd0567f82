/* Tests for kr_process_info and kr_process_next: exact figures for a runtime at rest and for
 * a process asking about itself, the snapshot another thread gets while the runtime runs,
 * the errors, the size field, and a walk that sees every live process and no dead one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "krill.h"

enum { T_GO = 1, T_KEEP, T_DATA, T_QUIT };

static kr_runtime *rt_new(unsigned schedulers, int deterministic)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.schedulers = schedulers;
	c.pin = 0;
	c.deterministic = deterministic;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	return rt;
}

static kr_pid rt_spawn(kr_runtime *rt, kr_behaviour b, const void *state, size_t len)
{
	kr_pid pid = 0;
	assert_int_equal(kr_rt_spawn(rt, b, state, len, &pid), 0);
	return pid;
}

static int info_of(kr_runtime *rt, kr_pid pid, kr_proc_info *in)
{
	memset(in, 0xa5, sizeof(*in));
	in->size = sizeof(*in);
	return kr_process_info(rt, pid, in);
}

/* Keeps (defers) every T_KEEP. Its state is 32 bytes: a big state of its own. */
static void b_keeper(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	if (m->tag == T_KEEP)
		kr_defer(ctx);
}

/* On T_GO: links to the keeper (its state), monitors it, and sends it three T_KEEP. */
static void b_boss(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid keeper;
	uint64_t ref;
	memcpy(&keeper, state, sizeof(keeper));
	if (m->tag != T_GO)
		return;
	assert_int_equal(kr_link(ctx, keeper), 0);
	assert_int_equal(kr_monitor(ctx, keeper, &ref), 0);
	for (uint64_t i = 0; i < 3; i++)
		assert_int_equal(kr_send(ctx, keeper, T_KEEP, &i, sizeof(i)), 0);
}

static void b_quitter(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	(void)m;
	kr_exit(ctx, KR_NORMAL);
}

/* Sizes the arena rounds to (its 16-byte classes): the figures below are built from them. */
#define SLOT    64u
#define BIG     48u  /* 16 bytes of length in front of 32 of state */
#define SIDE    128u /* the side record, 120 bytes, in the arena's 128-byte class */
#define MONVEC4 64u  /* a monitor vector's first table: 4 of 16 bytes */
#define ENV8    32u  /* an envelope: 16 bytes and 8 of data */

static void a_runtime_at_rest_is_told_exactly(void **st)
{
	(void)st;
	kr_runtime *rt = rt_new(2, 1);
	unsigned char big[32] = {1};
	kr_pid keeper = rt_spawn(rt, b_keeper, big, sizeof(big));
	kr_pid boss = rt_spawn(rt, b_boss, &keeper, sizeof(keeper));
	kr_pid quitter = rt_spawn(rt, b_quitter, 0, 0);
	assert_int_equal(kr_register(rt, "keeper", keeper), 0);
	kr_proc_info in;

	/* Before the run: nothing handled, nothing waiting (a foreign send waits in the
	 * runtime's inject queue, not in the mailbox). */
	assert_int_equal(kr_rt_send(rt, boss, T_GO, 0, 0), 0);
	assert_int_equal(kr_rt_send(rt, quitter, T_QUIT, 0, 0), 0);
	assert_int_equal(info_of(rt, keeper, &in), 0);
	assert_int_equal(in.flags, KR_INFO_EXACT | KR_INFO_MAILBOX | KR_INFO_SIDE);
	assert_int_equal(in.alive, 1);
	assert_int_equal(in.mailbox, 0);
	assert_int_equal(in.memory, SLOT + BIG);
	assert_int_equal(in.handled, 0);

	assert_int_equal(kr_run(rt), 0);

	assert_int_equal(info_of(rt, keeper, &in), 0);
	assert_int_equal(in.size, sizeof(in));
	assert_int_equal(in.flags, KR_INFO_EXACT | KR_INFO_MAILBOX | KR_INFO_SIDE);
	assert_int_equal(in.pid, keeper);
	assert_int_equal(in.alive, 1);
	assert_int_equal(in.sched, -1);
	assert_string_equal(in.name, "keeper");
	assert_int_equal(in.mailbox, 3); /* deferred: still its to handle */
	assert_int_equal(in.links, 1);
	assert_int_equal(in.monitors, 0);
	assert_int_equal(in.monitored_by, 1);
	/* Its side record came with the link, before the three messages. */
	assert_int_equal(in.handled, 3);
	assert_int_equal(in.memory, SLOT + BIG + SIDE + MONVEC4 + 3 * ENV8);

	assert_int_equal(info_of(rt, boss, &in), 0);
	assert_string_equal(in.name, "");
	assert_int_equal(in.mailbox, 0);
	assert_int_equal(in.links, 1);
	assert_int_equal(in.monitors, 1);
	assert_int_equal(in.monitored_by, 0);
	/* The side record came during T_GO, which is counted. */
	assert_int_equal(in.handled, 1);
	assert_int_equal(in.memory, SLOT + SIDE + MONVEC4);

	/* An exited process: only its pid and alive = 0. */
	assert_int_equal(info_of(rt, quitter, &in), 0);
	assert_int_equal(in.pid, quitter);
	assert_int_equal(in.alive, 0);
	assert_int_equal(in.flags, 0);
	assert_int_equal(in.mailbox, 0);
	assert_int_equal(in.memory, 0);
	assert_string_equal(in.name, "");

	/* The walk: the two alive, in slot order (spawn order here), not the quitter. */
	uint64_t cur = 0;
	kr_pid pid;
	assert_int_equal(kr_process_next(rt, &cur, &pid), 1);
	assert_int_equal(pid, keeper);
	assert_int_equal(kr_process_next(rt, &cur, &pid), 1);
	assert_int_equal(pid, boss);
	assert_int_equal(kr_process_next(rt, &cur, &pid), 0);
	assert_int_equal(kr_process_next(rt, &cur, &pid), 0); /* and stays at the end */
	kr_runtime_free(rt);
}

static void errors_and_the_size_field(void **st)
{
	(void)st;
	kr_runtime *rt = rt_new(1, 1);
	kr_pid p = rt_spawn(rt, b_keeper, 0, 0);
	kr_proc_info in;
	uint64_t cur = 0;
	assert_int_equal(info_of(0, p, &in), -EINVAL);
	assert_int_equal(kr_process_info(rt, p, 0), -EINVAL);
	in.size = offsetof(kr_proc_info, handled); /* older than any version */
	assert_int_equal(kr_process_info(rt, p, &in), -EINVAL);
	/* Never issued: an even generation, or a slot never used. */
	assert_int_equal(info_of(rt, p + (1ull << 32), &in), -ESRCH);
	assert_int_equal(info_of(rt, (3ull << 32) | 12345, &in), -ESRCH);
	assert_int_equal(kr_process_next(0, &cur, &p), -EINVAL);
	assert_int_equal(kr_process_next(rt, 0, &p), -EINVAL);
	assert_int_equal(kr_process_next(rt, &cur, 0), -EINVAL);

	/* A caller built with a larger struct (a later version's): only ours is written,
	 * and size keeps the caller's. */
	unsigned char buf[sizeof(kr_proc_info) + 16];
	memset(buf, 0x5a, sizeof(buf));
	kr_proc_info *big = (kr_proc_info *)(void *)buf;
	big->size = sizeof(buf);
	assert_int_equal(kr_process_info(rt, p, big), 0);
	assert_int_equal(big->size, sizeof(buf));
	assert_int_equal(big->alive, 1);
	for (size_t i = sizeof(kr_proc_info); i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0x5a);
	assert_int_equal(kr_rt_send(rt, p, T_DATA, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	kr_runtime_free(rt);
}

/* What a process saw of itself, asked from its own behaviour on a running runtime. */
static struct {
	int rc[2];
	kr_proc_info in[2];
	_Atomic int done;
} self;

static void b_self(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	kr_runtime *rt = kr_runtime_of(ctx);
	int k = m->tag == T_GO ? 0 : 1;
	if (m->tag == T_GO)
		/* One message waits behind the one being handled. */
		assert_int_equal(kr_send(ctx, kr_self(ctx), T_DATA, 0, 0), 0);
	self.in[k].size = sizeof(self.in[k]);
	self.rc[k] = kr_process_info(rt, kr_self(ctx), &self.in[k]);
	if (m->tag == T_DATA)
		atomic_store(&self.done, 1);
}

static void a_process_sees_itself_exactly(void **st)
{
	(void)st;
	kr_runtime *rt = rt_new(2, 0);
	kr_pid p = rt_spawn(rt, b_self, 0, 0);
	assert_int_equal(kr_start(rt), 0);
	assert_int_equal(kr_rt_send(rt, p, T_GO, 0, 0), 0);
	while (!atomic_load(&self.done))
		usleep(1000);
	kr_stop(rt);
	assert_int_equal(kr_wait(rt), 0);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(self.rc[k], 0);
		assert_int_equal(self.in[k].flags, KR_INFO_EXACT | KR_INFO_MAILBOX | KR_INFO_SIDE);
		assert_int_equal(self.in[k].alive, 1);
		assert_true(self.in[k].sched >= 0 && self.in[k].sched < 2);
		assert_int_equal(self.in[k].handled, 0); /* no side record */
	}
	/* During T_GO, T_DATA waited (the message being handled does not count, though it
	 * was handled where it lay in the mailbox word); during T_DATA, nothing. */
	assert_int_equal(self.in[0].mailbox, 1);
	assert_int_equal(self.in[0].memory, SLOT + 16);
	assert_int_equal(self.in[1].mailbox, 0);
	assert_int_equal(self.in[1].memory, SLOT);
	kr_runtime_free(rt);
}

/* Another thread, while the runtime runs: a snapshot of what it may read. */
static void others_get_a_snapshot_while_it_runs(void **st)
{
	(void)st;
	kr_runtime *rt = rt_new(1, 0);
	unsigned char big[32] = {0};
	kr_pid p = rt_spawn(rt, b_keeper, big, sizeof(big));
	assert_int_equal(kr_register(rt, "waiting", p), 0);
	kr_proc_info in;
	assert_int_equal(kr_start(rt), 0);
	assert_int_equal(info_of(rt, p, &in), 0);
	assert_int_equal(in.flags, 0);
	assert_int_equal(in.alive, 1);
	assert_string_equal(in.name, "waiting");
	assert_int_equal(in.sched, -1); /* idle: no scheduler runs it */
	assert_int_equal(in.mailbox, 0);
	assert_int_equal(in.memory, SLOT); /* its big state is its owner's to read */
	assert_int_equal(in.links + in.monitors + in.monitored_by, 0);
	assert_int_equal(in.handled, 0);
	kr_stop(rt);
	assert_int_equal(kr_wait(rt), 0);
	/* At rest again: exact. */
	assert_int_equal(info_of(rt, p, &in), 0);
	assert_int_equal(in.flags, KR_INFO_EXACT | KR_INFO_MAILBOX | KR_INFO_SIDE);
	assert_int_equal(in.memory, SLOT + BIG);
	kr_runtime_free(rt);
}

/* 33,000 processes (two chunks of the table), every third told to quit: the walk returns
 * exactly the others, each once. */
static void the_walk_sees_every_live_process_once(void **st)
{
	(void)st;
	enum { N = 33000 };
	kr_runtime *rt = rt_new(2, 1);
	kr_pid *pids = calloc(N, sizeof(*pids));
	unsigned char *seen = calloc(N, 1);
	assert_non_null(pids);
	assert_non_null(seen);
	for (int i = 0; i < N; i++) {
		pids[i] = rt_spawn(rt, b_quitter, 0, 0);
		if (i % 3 == 0)
			assert_int_equal(kr_rt_send(rt, pids[i], T_QUIT, 0, 0), 0);
	}
	assert_int_equal(kr_run(rt), 0);
	uint64_t cur = 0, n = 0;
	kr_pid pid;
	int rc;
	while ((rc = kr_process_next(rt, &cur, &pid)) == 1) {
		/* Spawned from one thread into a fresh table: slot i holds pids[i]. */
		uint32_t idx = (uint32_t)pid;
		assert_true(idx < N);
		assert_int_equal(pids[idx], pid);
		assert_true(idx % 3 != 0);
		assert_int_equal(seen[idx], 0);
		seen[idx] = 1;
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, N - (N + 2) / 3);
	assert_int_equal(n, kr_alive(rt));
	free(pids);
	free(seen);
	kr_runtime_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_runtime_at_rest_is_told_exactly),
	    cmocka_unit_test(errors_and_the_size_field),
	    cmocka_unit_test(a_process_sees_itself_exactly),
	    cmocka_unit_test(others_get_a_snapshot_while_it_runs),
	    cmocka_unit_test(the_walk_sees_every_live_process_once),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
