/* Tests for the way into the API: every public call given a NULL context or
 * runtime refuses it the one way include/krill.h states, without touching
 * anything (a crash here is a call that skipped the common entry). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "krill.h"

static void fn_nop(kr_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
}

static void b_nop(kr_ctx *ctx, void *state, const kr_msg *m)
{
}

static void every_context_call_refuses_a_null_ctx(void **st)
{
	kr_pid pid = 0;
	uint64_t ref = 0;
	kr_timer t = 0;
	kr_handle h = 0;
	char byte = 0;
	assert_int_equal(kr_self(NULL), 0);
	assert_null(kr_runtime_of(NULL));
	assert_int_equal(kr_spawn(NULL, b_nop, NULL, 0, &pid), -EINVAL);
	assert_int_equal(kr_send(NULL, 1, 1, &byte, 1), -EINVAL);
	assert_null(kr_msg_buf(NULL, 8));
	assert_int_equal(kr_send_buf(NULL, 1, 1, &byte), -EINVAL);
	kr_become(NULL, b_nop);
	kr_exit(NULL, KR_NORMAL);
	assert_int_equal(kr_exit_with(NULL, KR_REASON_USER, &byte, 1), -EINVAL);
	assert_int_equal(kr_link(NULL, 1), -EINVAL);
	assert_int_equal(kr_unlink(NULL, 1), -EINVAL);
	assert_int_equal(kr_spawn_link(NULL, b_nop, NULL, 0, &pid), -EINVAL);
	assert_int_equal(kr_monitor(NULL, 1, &ref), -EINVAL);
	assert_int_equal(kr_demonitor(NULL, 1), -EINVAL);
	kr_trap_exit(NULL, 1);
	assert_int_equal(kr_send_exit(NULL, 1, KR_KILL), -EINVAL);
	kr_defer(NULL);
	kr_undefer(NULL);
	assert_int_equal(kr_receive_timeout(NULL, 10), -EINVAL);
	assert_int_equal(kr_send_after(NULL, 1, 10, 1, &byte, 1, &t), -EINVAL);
	assert_int_equal(kr_cancel_timer(NULL, 1), -EINVAL);
	assert_int_equal(kr_mailbox_limit(NULL, 10), -EINVAL);
	assert_int_equal(kr_notify_ready(NULL, 1, 1), -EINVAL);
	assert_null(kr_alloc(NULL, 8));
	assert_null(kr_realloc(NULL, NULL, 8));
	assert_int_equal(kr_free(NULL, NULL), -EINVAL);
	assert_int_equal(kr_on_exit(NULL, (kr_exit_hook)0, NULL), -EINVAL);
	assert_int_equal(kr_io_listen(NULL, "127.0.0.1", 0, 1, &h), -EINVAL);
	assert_int_equal(kr_io_accept(NULL, 1), -EINVAL);
	assert_int_equal(kr_io_connect(NULL, "127.0.0.1", 1, 0, &h), -EINVAL);
	assert_int_equal(kr_io_udp(NULL, "127.0.0.1", 0, &h), -EINVAL);
	assert_int_equal(kr_io_recv(NULL, 1, KR_IO_ACTIVE), -EINVAL);
	assert_int_equal(kr_io_send(NULL, 1, &byte, 1), -EINVAL);
	assert_int_equal(kr_io_sendto(NULL, 1, &byte, 1, &byte, 1), -EINVAL);
	assert_int_equal(kr_io_shutdown(NULL, 1, 1), -EINVAL);
	assert_int_equal(kr_io_close(NULL, 1), -EINVAL);
	assert_int_equal(kr_io_give(NULL, 1, 1), -EINVAL);
	assert_int_equal(kr_io_port(NULL, 1), -EINVAL);
	assert_int_equal(kr_io_open(NULL, "/dev/null", 0, 0, 0), -EINVAL);
	assert_int_equal(kr_io_read(NULL, 1, 0, 1, 0), -EINVAL);
	assert_int_equal(kr_io_write(NULL, 1, 0, &byte, 1, 0), -EINVAL);
	assert_int_equal(kr_io_fsync(NULL, 1, 0), -EINVAL);
	kr_sup_flags f = {0};
	assert_int_equal(kr_sup_spawn(NULL, &f, NULL, 0, &pid), -EINVAL);
	assert_int_equal(kr_sup_start_child(NULL, 1, NULL, 1), -EINVAL);
	assert_int_equal(kr_sup_terminate_child(NULL, 1, 1, 1), -EINVAL);
	assert_int_equal(kr_sup_which_children(NULL, 1, 1), -EINVAL);
	const kr_msg *m = NULL;
	kr_msg req = {0, 0};
	assert_int_equal(kr_spawn_fn(NULL, fn_nop, NULL, 0, &pid), -EINVAL);
	assert_int_equal(kr_spawn_fn_link(NULL, fn_nop, NULL, 0, &pid), -EINVAL);
	assert_int_equal(kr_spawn_fn_opts(NULL, fn_nop, NULL, 0, NULL, &pid), -EINVAL);
	assert_int_equal(kr_receive(NULL, NULL, NULL, 0, &m), -EINVAL);
	assert_int_equal(kr_sleep(NULL, 1), -EINVAL);
	assert_int_equal(kr_call(NULL, 1, 1, &byte, 1, 10, &m), -EINVAL);
	assert_int_equal(kr_reply(NULL, &req, &byte, 1), -EINVAL);
}

static void every_runtime_call_refuses_a_null_runtime(void **st)
{
	kr_pid pid = 0;
	char buf[64];
	kr_sup_flags f = {0};
	kr_config_init(NULL);
	assert_int_equal(kr_runtime_new(NULL, NULL), -EINVAL);
	assert_int_equal(kr_start(NULL), -EINVAL);
	assert_int_equal(kr_wait(NULL), -EINVAL);
	assert_int_equal(kr_run(NULL), -EINVAL);
	kr_stop(NULL);
	assert_int_equal(kr_rt_spawn_fn(NULL, fn_nop, NULL, 0, &pid), -EINVAL);
	assert_int_equal(kr_rt_spawn_fn_opts(NULL, fn_nop, NULL, 0, NULL, &pid), -EINVAL);
	kr_runtime_free(NULL);
	assert_int_equal(kr_schedulers(NULL), 0);
	assert_int_equal(kr_alive(NULL), 0);
	assert_int_equal(kr_rt_spawn(NULL, b_nop, NULL, 0, &pid), -EINVAL);
	assert_int_equal(kr_rt_send(NULL, 1, 1, buf, 1), -EINVAL);
	assert_int_equal(kr_rt_exit(NULL, 1, KR_KILL), -EINVAL);
	assert_int_equal(kr_rt_sup_spawn(NULL, &f, NULL, 0, &pid), -EINVAL);
	assert_int_equal(kr_register(NULL, "x", 1), -EINVAL);
	assert_int_equal(kr_whereis(NULL, "x"), 0);
	assert_int_equal(kr_unregister(NULL, "x"), -EINVAL);
	assert_int_equal(kr_stats_snapshot(NULL, buf, sizeof(buf)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_context_call_refuses_a_null_ctx),
	    cmocka_unit_test(every_runtime_call_refuses_a_null_runtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
