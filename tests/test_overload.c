/* Overload: mailbox limits with -EAGAIN and ready notifications, and the
 * runtime-wide memory ceiling. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <cmocka.h>

#include "krill.h"

enum { T_GO = 1, T_ITEM, T_READY, T_DRAIN, T_DONE };

static _Atomic int eagain, sent_ok, handled, readies;
static kr_pid sink_pid;

static kr_pid prod_pid;

/* The sink bounds its mailbox to 10, then starts the producer (so the
 * limit is in place before anything is sent). */
static void sink(kr_ctx *c, void *st, const kr_msg *m)
{
	if (m->tag == T_GO) {
		assert_int_equal(kr_mailbox_limit(c, 10), 0);
		kr_send(c, prod_pid, T_GO, 0, 0);
		return;
	}
	if (m->tag == T_ITEM && atomic_fetch_add(&handled, 1) + 1 == 1000)
		kr_exit(c, KR_NORMAL);
	if (m->tag == T_DONE)
		kr_exit(c, KR_NORMAL);
}

/* The producer fills the sink, sees -EAGAIN, asks to be told, and when
 * told sends the rest; then ends the sink. */
static void producer(kr_ctx *c, void *st, const kr_msg *m)
{
	uint64_t *left = st;
	if (m->tag == T_GO || m->tag == T_READY) {
		if (m->tag == T_READY)
			atomic_fetch_add(&readies, 1);
		while (*left) {
			int rc = kr_send(c, sink_pid, T_ITEM, 0, 0);
			if (rc == -EAGAIN) {
				atomic_fetch_add(&eagain, 1);
				assert_int_equal(kr_notify_ready(c, sink_pid, T_READY), 0);
				return;
			}
			atomic_fetch_add(&sent_ok, 1);
			--*left;
		}
		kr_exit(c, KR_NORMAL);
	}
}

static void a_full_mailbox_refuses_then_tells_the_sender_when_there_is_room(void **st)
{
	kr_config cfg;
	kr_runtime *rt;
	uint64_t n = 1000;
	for (unsigned sch = 1; sch <= 2; sch++) {
		eagain = sent_ok = handled = readies = 0;
		kr_config_init(&cfg);
		cfg.schedulers = sch;
		assert_int_equal(kr_runtime_new(&cfg, &rt), 0);
		assert_int_equal(kr_rt_spawn(rt, sink, 0, 0, &sink_pid), 0);
		assert_int_equal(kr_rt_spawn(rt, producer, &n, sizeof(n), &prod_pid), 0);
		assert_int_equal(kr_rt_send(rt, sink_pid, T_GO, 0, 0), 0);
		assert_int_equal(kr_run(rt), 0);
		assert_int_equal(sent_ok, 1000);
		assert_int_equal(handled, 1000);
		assert_true(eagain >= 1);
		assert_int_equal(readies, eagain);
		assert_int_equal(kr_alive(rt), 0);
		kr_runtime_free(rt);
	}
}

static void notify_ready_on_a_dead_pid_answers_at_once(void **st)
{
	/* Covered through the producer: a sink that exits while a producer
	 * waits must still wake it. Here the sink exits at once. */
	kr_config cfg;
	kr_runtime *rt;
	kr_config_init(&cfg);
	cfg.deterministic = 1;
	assert_int_equal(kr_runtime_new(&cfg, &rt), 0);
	assert_int_equal(kr_rt_spawn(rt, sink, 0, 0, &sink_pid), 0);
	assert_int_equal(kr_rt_send(rt, sink_pid, T_DONE, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	kr_runtime_free(rt);
}

static _Atomic int spawn_enomem, spawned_ok;

static void idle_child(kr_ctx *c, void *st, const kr_msg *m)
{
	kr_exit(c, KR_NORMAL);
}

/* Spawns 1,000 children with 1 KiB of state a message until refused. */
static void hog(kr_ctx *c, void *st, const kr_msg *m)
{
	static char big[1024];
	kr_pid pid;
	for (int i = 0; i < 1000; i++) {
		int rc = kr_spawn(c, idle_child, big, sizeof(big), &pid);
		if (rc == -ENOMEM) {
			atomic_fetch_add(&spawn_enomem, 1);
			kr_stop(kr_runtime_of(c));
			return;
		}
		assert_int_equal(rc, 0);
		atomic_fetch_add(&spawned_ok, 1);
	}
	if (spawned_ok > 200000) { /* the ceiling never bit */
		kr_stop(kr_runtime_of(c));
		return;
	}
	kr_send(c, kr_self(c), T_GO, 0, 0);
}

static void past_the_memory_ceiling_spawn_returns_enomem(void **st)
{
	kr_config cfg;
	kr_runtime *rt;
	kr_pid pid;
	spawn_enomem = spawned_ok = 0;
	kr_config_init(&cfg);
	cfg.schedulers = 1;
	cfg.max_memory = 32u << 20;
	assert_int_equal(kr_runtime_new(&cfg, &rt), 0);
	assert_int_equal(kr_rt_spawn(rt, hog, 0, 0, &pid), 0);
	assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(spawn_enomem, 1);
	/* 32 MiB of 1 KiB states: about 32,000 children, not 200,000. */
	assert_true(spawned_ok > 10000 && spawned_ok < 100000);
	kr_runtime_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_full_mailbox_refuses_then_tells_the_sender_when_there_is_room),
	    cmocka_unit_test(notify_ready_on_a_dead_pid_answers_at_once),
	    cmocka_unit_test(past_the_memory_ceiling_spawn_returns_enomem),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
