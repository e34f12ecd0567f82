/* Tests for the name registry: kr_register / kr_whereis / kr_unregister, their errors, names
 * dropped when their process exits (also while another thread registers), and a table of
 * 10,000 names growing. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/proc/proc.h" /* pid_make, pid_idx, pid_gen: to forge pids never issued */
#include "krill.h"

enum { T_GO = 1, T_END };

static kr_runtime *rt_new(unsigned schedulers)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.schedulers = schedulers;
	c.pin = 0;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	return rt;
}

static void b_exit_on_end(kr_ctx *ctx, void *state, const kr_msg *m)
{
	if (m->tag == T_END)
		kr_exit(ctx, KR_NORMAL);
}

static void b_exit(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_exit(ctx, KR_NORMAL);
}

static kr_pid rt_spawn(kr_runtime *rt, kr_behaviour b)
{
	kr_pid pid = 0;
	assert_int_equal(kr_rt_spawn(rt, b, 0, 0, &pid), 0);
	return pid;
}

static void register_whereis_unregister_round_trip(void **st)
{
	kr_runtime *rt = rt_new(1);
	char longest[KR_NAME_MAX + 1];
	memset(longest, 'n', KR_NAME_MAX);
	longest[KR_NAME_MAX] = 0;
	kr_pid p = rt_spawn(rt, b_exit_on_end), q = rt_spawn(rt, b_exit_on_end);
	assert_true(kr_whereis(rt, "alpha") == 0);
	assert_int_equal(kr_register(rt, "alpha", p), 0);
	assert_true(kr_whereis(rt, "alpha") == p);
	assert_true(kr_whereis(rt, "alph") == 0);
	assert_true(kr_whereis(rt, "alphab") == 0);
	assert_int_equal(kr_unregister(rt, "alpha"), 0);
	assert_true(kr_whereis(rt, "alpha") == 0);
	/* Unregistered, p may take another name, and the name another pid. */
	assert_int_equal(kr_register(rt, "beta", p), 0);
	assert_int_equal(kr_register(rt, "alpha", q), 0);
	assert_true(kr_whereis(rt, "beta") == p);
	assert_true(kr_whereis(rt, "alpha") == q);
	assert_int_equal(kr_unregister(rt, "alpha"), 0);
	assert_int_equal(kr_register(rt, longest, q), 0);
	assert_true(kr_whereis(rt, longest) == q);
	kr_runtime_free(rt);
}

/* One scheduler: A names itself and exits; B runs after A's exit, finds the name gone and
 * takes it. */
static kr_pid a_pid, b_pid, b_saw_before, b_saw_after;
static int a_rc, b_rc;

static void b_named_a(kr_ctx *ctx, void *state, const kr_msg *m)
{
	a_rc = kr_register(kr_runtime_of(ctx), "self-named", kr_self(ctx));
	kr_send(ctx, b_pid, T_GO, 0, 0);
	kr_exit(ctx, KR_NORMAL);
}

static void b_named_b(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	b_saw_before = kr_whereis(rt, "self-named");
	b_rc = kr_register(rt, "self-named", kr_self(ctx));
	b_saw_after = kr_whereis(rt, "self-named");
	kr_exit(ctx, KR_NORMAL);
}

static void names_are_removed_when_their_process_exits(void **st)
{
	kr_runtime *rt = rt_new(1);
	a_rc = b_rc = 1;
	b_pid = rt_spawn(rt, b_named_b);
	a_pid = rt_spawn(rt, b_named_a);
	kr_pid c = rt_spawn(rt, b_exit);
	assert_int_equal(kr_register(rt, "from-main", c), 0);
	assert_int_equal(kr_rt_send(rt, a_pid, T_GO, 0, 0), 0);
	assert_int_equal(kr_rt_send(rt, c, T_GO, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(a_rc, 0);
	assert_true(b_saw_before == 0);
	assert_int_equal(b_rc, 0);
	assert_true(b_saw_after == b_pid);
	assert_true(kr_whereis(rt, "self-named") == 0);
	assert_true(kr_whereis(rt, "from-main") == 0);
	assert_int_equal(kr_unregister(rt, "from-main"), -ENOENT);
	kr_runtime_free(rt);
}

static void taken_name_or_named_pid_is_eexist(void **st)
{
	kr_runtime *rt = rt_new(1);
	kr_pid p = rt_spawn(rt, b_exit_on_end), q = rt_spawn(rt, b_exit_on_end);
	assert_int_equal(kr_register(rt, "n", p), 0);
	assert_int_equal(kr_register(rt, "n", q), -EEXIST);
	assert_int_equal(kr_register(rt, "n", p), -EEXIST);
	assert_int_equal(kr_register(rt, "m", p), -EEXIST);
	assert_true(kr_whereis(rt, "n") == p);
	assert_true(kr_whereis(rt, "m") == 0);
	assert_int_equal(kr_register(rt, "m", q), 0); /* q was left unnamed */
	assert_true(kr_whereis(rt, "m") == q);
	kr_runtime_free(rt);
}

static void dead_or_never_issued_pid_is_esrch(void **st)
{
	kr_runtime *rt = rt_new(1);
	kr_pid dead = rt_spawn(rt, b_exit), live = rt_spawn(rt, b_exit_on_end);
	assert_int_equal(kr_rt_send(rt, dead, T_GO, 0, 0), 0);
	assert_int_equal(kr_rt_send(rt, live, T_END, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	uint32_t i = pid_idx(dead), g = pid_gen(dead);
	kr_pid bad[] = {dead,
			live,
			0,
			pid_make(i, g + 2),
			pid_make(i, g + 1),
			pid_make(i + 7, 1),
			pid_make(1u << 24, 1),
			pid_make(UINT32_MAX, 1)};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_int_equal(kr_register(rt, "x", bad[k]), -ESRCH);
	assert_true(kr_whereis(rt, "x") == 0);
	assert_int_equal(kr_unregister(rt, "x"), -ENOENT);
	kr_runtime_free(rt);
}

static void null_empty_and_too_long_names_are_einval(void **st)
{
	kr_runtime *rt = rt_new(1);
	kr_pid p = rt_spawn(rt, b_exit_on_end);
	char n64[KR_NAME_MAX + 2], n100[101];
	memset(n64, 'x', sizeof(n64));
	n64[KR_NAME_MAX + 1] = 0;
	memset(n100, 'y', sizeof(n100));
	n100[100] = 0;
	assert_int_equal(strlen(n64), 64);
	assert_int_equal(kr_register(rt, 0, p), -EINVAL);
	assert_int_equal(kr_register(rt, "", p), -EINVAL);
	assert_int_equal(kr_register(rt, n64, p), -EINVAL);
	assert_int_equal(kr_register(rt, n100, p), -EINVAL);
	assert_true(kr_whereis(rt, n64) == 0);
	n64[KR_NAME_MAX] = 0; /* 63 bytes: fine, and proves p was left unnamed */
	assert_int_equal(kr_register(rt, n64, p), 0);
	assert_true(kr_whereis(rt, n64) == p);
	assert_true(kr_whereis(rt, 0) == 0);
	assert_true(kr_whereis(rt, "") == 0);
	assert_true(kr_unregister(rt, 0) < 0);
	assert_true(kr_whereis(rt, n64) == p);
	kr_runtime_free(rt);
}

/* A name that cannot be registered cannot be unregistered either: -EINVAL, as kr_register
 * (Erlang: badarg); -ENOENT is for a valid name nobody holds. */
static void unregistering_an_empty_too_long_or_null_name_is_einval(void **st)
{
	kr_runtime *rt = rt_new(1);
	char n64[KR_NAME_MAX + 2];
	memset(n64, 'x', sizeof(n64));
	n64[KR_NAME_MAX + 1] = 0;
	assert_int_equal(kr_unregister(rt, ""), -EINVAL);
	assert_int_equal(kr_unregister(rt, 0), -EINVAL);
	assert_int_equal(kr_unregister(rt, n64), -EINVAL);
	n64[KR_NAME_MAX] = 0;
	assert_int_equal(kr_unregister(rt, n64), -ENOENT);
	kr_runtime_free(rt);
}

static void unregistering_an_unknown_name_is_enoent(void **st)
{
	kr_runtime *rt = rt_new(1);
	kr_pid p = rt_spawn(rt, b_exit_on_end);
	assert_int_equal(kr_unregister(rt, "ghost"), -ENOENT);
	assert_int_equal(kr_register(rt, "ghost", p), 0);
	assert_int_equal(kr_unregister(rt, "ghost"), 0);
	assert_int_equal(kr_unregister(rt, "ghost"), -ENOENT);
	assert_true(kr_whereis(rt, "ghost") == 0);
	kr_runtime_free(rt);
}

#define NNAMES 10000

static void ten_thousand_names_survive_table_growth(void **st)
{
	kr_runtime *rt = rt_new(1);
	static kr_pid pids[NNAMES];
	char name[32];
	for (int i = 0; i < NNAMES; i++) {
		pids[i] = rt_spawn(rt, b_exit_on_end);
		snprintf(name, sizeof(name), "proc-%d", i);
		assert_int_equal(kr_register(rt, name, pids[i]), 0);
	}
	for (int i = 0; i < NNAMES; i++) {
		snprintf(name, sizeof(name), "proc-%d", i);
		assert_true(kr_whereis(rt, name) == pids[i]);
	}
	for (int i = 1; i < NNAMES; i += 2) {
		snprintf(name, sizeof(name), "proc-%d", i);
		assert_int_equal(kr_unregister(rt, name), 0);
	}
	for (int i = 0; i < NNAMES; i++) {
		snprintf(name, sizeof(name), "proc-%d", i);
		assert_true(kr_whereis(rt, name) == (i & 1 ? 0 : pids[i]));
	}
	/* The unnamed half takes new names; the named half is still refused one. */
	for (int i = 0; i < NNAMES; i++) {
		snprintf(name, sizeof(name), "again-%d", i);
		assert_int_equal(kr_register(rt, name, pids[i]), i & 1 ? 0 : -EEXIST);
	}
	assert_true(kr_whereis(rt, "again-9999") == pids[9999]);
	assert_true(kr_whereis(rt, "again-9998") == 0);
	assert_true(kr_whereis(rt, "proc-10000") == 0);
	kr_runtime_free(rt); /* frees every name (LSan) */
}

/* A foreign thread registers names for processes that exit concurrently: each register
 * succeeds or finds the process dead, and no name outlives its process. */
#define NRACE 400
static kr_pid race_pids[NRACE];
static int race_rc[NRACE];

static void *registrar(void *arg)
{
	kr_runtime *rt = arg;
	char name[32];
	for (int i = 0; i < NRACE; i++) {
		snprintf(name, sizeof(name), "racer-%d", i);
		race_rc[i] = kr_register(rt, name, race_pids[i]);
	}
	return 0;
}

static void names_registered_during_exits_do_not_outlive_their_process(void **st)
{
	kr_runtime *rt = rt_new(2);
	pthread_t th;
	char name[32];
	for (int i = 0; i < NRACE; i++)
		race_pids[i] = rt_spawn(rt, b_exit);
	assert_int_equal(kr_start(rt), 0);
	assert_int_equal(pthread_create(&th, 0, registrar, rt), 0);
	for (int i = 0; i < NRACE; i++)
		assert_int_equal(kr_rt_send(rt, race_pids[i], T_GO, 0, 0), 0);
	assert_int_equal(kr_wait(rt), 0);
	pthread_join(th, 0);
	for (int i = 0; i < NRACE; i++) {
		snprintf(name, sizeof(name), "racer-%d", i);
		assert_true(race_rc[i] == 0 || race_rc[i] == -ESRCH);
		assert_true(kr_whereis(rt, name) == 0);
	}
	kr_runtime_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(register_whereis_unregister_round_trip),
	    cmocka_unit_test(names_are_removed_when_their_process_exits),
	    cmocka_unit_test(taken_name_or_named_pid_is_eexist),
	    cmocka_unit_test(dead_or_never_issued_pid_is_esrch),
	    cmocka_unit_test(null_empty_and_too_long_names_are_einval),
	    cmocka_unit_test(unregistering_an_unknown_name_is_enoent),
	    cmocka_unit_test(unregistering_an_empty_too_long_or_null_name_is_einval),
	    cmocka_unit_test(ten_thousand_names_survive_table_growth),
	    cmocka_unit_test(names_registered_during_exits_do_not_outlive_their_process),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
