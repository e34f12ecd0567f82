/* Watchdog: a behaviour that never returns is found, its scheduler's queue
 * is taken by another, and KR_KILL ends it with KR_KILLED. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "krill.h"

enum { T_GO = 1, T_WORK };

static _Atomic int looping, down_reason = -1, worked;
static kr_pid spinner_pid;

static void spinner(kr_ctx *c, void *st, const kr_msg *m)
{
	atomic_store(&looping, 1);
	for (;;)
		; /* a runaway: never returns */
}

static void worker(kr_ctx *c, void *st, const kr_msg *m)
{
	atomic_fetch_add(&worked, 1);
	kr_exit(c, KR_NORMAL);
}

/* Starts the spinner and waits for its DOWN. (Not by a timer: timers of
 * the stuck scheduler wait with it, see core/fault/watchdog.c.) */
static void boss(kr_ctx *c, void *st, const kr_msg *m)
{
	uint64_t ref;
	if (m->tag == T_GO) {
		assert_int_equal(kr_spawn(c, spinner, 0, 0, &spinner_pid), 0);
		assert_int_equal(kr_monitor(c, spinner_pid, &ref), 0);
		assert_int_equal(kr_send(c, spinner_pid, T_GO, 0, 0), 0);
		return;
	}
	if (m->tag == KR_TAG_DOWN) {
		const kr_exit_info *x = (const void *)m->data;
		atomic_store(&down_reason, (int)x->reason);
		kr_exit(c, KR_NORMAL);
	}
}

static void a_runaway_behaviour_is_killed_and_the_rest_goes_on(void **st)
{
	kr_config cfg;
	kr_runtime *rt;
	kr_pid b, w[8];
	kr_config_init(&cfg);
	cfg.schedulers = 2;
	cfg.watchdog_ms = 50;
	assert_int_equal(kr_runtime_new(&cfg, &rt), 0);
	assert_int_equal(kr_rt_spawn(rt, boss, 0, 0, &b), 0);
	assert_int_equal(kr_rt_send(rt, b, T_GO, 0, 0), 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(kr_rt_spawn(rt, worker, 0, 0, &w[i]), 0);
		assert_int_equal(kr_rt_send(rt, w[i], T_WORK, 0, 0), 0);
	}
	assert_int_equal(kr_start(rt), 0);
	while (!atomic_load(&looping))
		nanosleep(&(struct timespec){0, 1000000}, 0);
	/* Past the watchdog's 50 ms, then kill it from this thread. */
	nanosleep(&(struct timespec){0, 200000000}, 0);
	assert_int_equal(worked, 8); /* the other scheduler did the rest */
	assert_int_equal(kr_rt_exit(rt, spinner_pid, KR_KILL), 0);
	assert_int_equal(kr_wait(rt), 0);
	assert_int_equal(looping, 1);
	assert_int_equal(down_reason, KR_KILLED);
	assert_int_equal(worked, 8);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_runaway_behaviour_is_killed_and_the_rest_goes_on),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
