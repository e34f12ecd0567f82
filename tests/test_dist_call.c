/* Tests for gen_server calls across nodes (dist/gen_call.c: kr_node_call,
 * kr_node_call_send/result, kr_node_gen_call_in, kr_node_gen_reply) and
 * for net_ticktime (dist/conn.c), against real Erlang nodes (escripts
 * under tests/dist/) and a second krill node, on 127.0.0.1 with an epmd
 * of our own (tests/dist_harness.h). Every wait is bounded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "krill.h"
#include "krill_dist.h"

#include "dist_harness.h"

#define COOKIE "krilltest"

/* A request {Atom, N} or {Atom, N, M}. */
static void req(ei_x_buff *x, const char *atom, long n, long m, int arity)
{
	ei_x_new_with_version(x); /* no cmocka assert: processes run on other threads */
	ei_x_encode_tuple_header(x, arity);
	ei_x_encode_atom(x, atom);
	ei_x_encode_long(x, n);
	if (arity == 3)
		ei_x_encode_long(x, m);
}

/* A reply's term (its data, version byte first). */
static const char *mterm(const kr_msg *m)
{
	return (const char *)kr_msg_data(m);
}

/* Is the term t (version byte first) {Atom, N}? */
static int is_pair(const char *t, const char *atom, long n)
{
	int i = 0, v, ar;
	char a[MAXATOMLEN];
	long got;
	return !ei_decode_version(t, &i, &v) && !ei_decode_tuple_header(t, &i, &ar) && ar == 2 &&
	       !ei_decode_atom(t, &i, a) && !strcmp(a, atom) && !ei_decode_long(t, &i, &got) &&
	       got == n;
}

/* Is the term t (version byte first) the integer n? */
static int is_long(const char *t, long n)
{
	int i = 0, v;
	long got;
	return !ei_decode_version(t, &i, &v) && !ei_decode_long(t, &i, &got) && got == n;
}

/* The DOWN of a failed call: its reason. */
static uint32_t down_reason(const kr_msg *m)
{
	kr_exit_info x;
	memset(&x, 0, sizeof(x));
	if (m->tag == KR_TAG_DOWN)
		memcpy(&x, m->data, m->len < sizeof(x) ? m->len : sizeof(x));
	return m->tag == KR_TAG_DOWN ? x.reason : UINT32_MAX;
}

/* A KR_TAG_DIST {server, Pid}: the pid. */
static int server_pid(kr_ctx *ctx, const kr_msg *m, kr_pid *out)
{
	if (m->tag != KR_TAG_DIST)
		return -1;
	const char *t = kr_dist_msg_term((const kr_dist_msg *)m->data);
	int i = 0, v, ar;
	char a[MAXATOMLEN];
	erlang_pid e;
	if (ei_decode_version(t, &i, &v) || ei_decode_tuple_header(t, &i, &ar) || ar != 2 ||
	    ei_decode_atom(t, &i, a) || strcmp(a, "server") || ei_decode_pid(t, &i, &e))
		return -1;
	return kr_node_pid_from_ei(kr_runtime_of(ctx), &e, out);
}

/* ---- arguments ---------------------------------------------------------------- */

static atomic_int bad_done;
static atomic_int local_noproc; /* kr_node_monitor_name of a name here nobody holds */
static uint64_t local_ref;

/* Each refusal the header documents, from a behaviour (1 when all hold). */
static void bad_args(kr_ctx *ctx, void *st, const kr_msg *m)
{
	uint64_t *call = st; /* the call to a name nobody holds */
	if (*call && m->tag == KR_TAG_DOWN && ((const kr_exit_info *)m->data)->ref == local_ref) {
		const kr_exit_info *e = (const kr_exit_info *)m->data;
		atomic_store(&local_noproc, e->reason == KR_NOPROC && e->pid == 0 ? 1 : -1);
		return;
	}
	if (*call) {
		if (kr_node_call_result(ctx, m, *call, 0, 0) == -ESRCH &&
		    down_reason(m) == KR_NOPROC && atomic_load(&bad_done) == 2)
			atomic_store(&bad_done, 1);
		return;
	}
	ei_x_buff x, raw;
	const kr_msg *r;
	uint64_t ref;
	kr_node_from from;
	const char *b;
	int i, ok = 1;
	ei_x_new_with_version(&x);
	ei_x_encode_atom(&x, "hi");
	ei_x_new(&raw); /* no version byte */
	ei_x_encode_atom(&raw, "hi");
	memset(&from, 0, sizeof(from));
#define OK(e)                                                           \
	do {                                                            \
		if (!(e)) {                                             \
			fprintf(stderr, "not as documented: %s\n", #e); \
			ok = 0;                                         \
		}                                                       \
	} while (0)
	OK(kr_node_call(ctx, kr_self(ctx), &x, 10, &r) == -EPERM);
	OK(kr_node_call_name(ctx, "x", "kbad@127.0.0.1", &x, 10, &r) == -EPERM);
	OK(kr_node_call(ctx, kr_self(ctx), &raw, 10, &r) == -EINVAL);
	OK(kr_node_call(ctx, kr_self(ctx), &x, 10, 0) == -EINVAL);
	OK(kr_node_call_send(ctx, kr_self(ctx), &raw, &ref) == -EINVAL);
	OK(kr_node_call_send(ctx, kr_self(ctx), &x, 0) == -EINVAL);
	OK(kr_node_call_send_name(ctx, 0, "kbad@127.0.0.1", &x, &ref) == -EINVAL);
	OK(kr_node_call_send_name(ctx, "", "kbad@127.0.0.1", &x, &ref) == -EINVAL);
	OK(kr_node_call_send_name(ctx, "x", "nohost", &x, &ref) == -EINVAL);
	OK(kr_node_call_result(ctx, m, 0, 0, 0) == -EINVAL);
	OK(kr_node_call_result(ctx, 0, 1, 0, 0) == -EINVAL);
	OK(kr_node_call_result(ctx, m, 1, 0, 0) == 0);       /* not a reply */
	OK(kr_node_gen_call_in(ctx, m, &from, &b, &i) == 0); /* not a call */
	OK(kr_node_gen_call_in(ctx, m, 0, &b, &i) == -EINVAL);
	OK(kr_node_gen_reply(ctx, &from, &x) == -EINVAL); /* from empty */
	OK(kr_node_gen_reply(ctx, 0, &x) == -EINVAL);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	OK(kr_node_monitor_name(ctx, 0, "kbad@127.0.0.1", &ref) == -EINVAL);
	OK(kr_node_monitor_name(ctx, "", "kbad@127.0.0.1", &ref) == -EINVAL);
	OK(kr_node_monitor_name(ctx, longname, "kbad@127.0.0.1", &ref) == -EINVAL);
	OK(kr_node_monitor_name(ctx, "x", "nohost", &ref) == -EINVAL);
	OK(kr_node_monitor_name(ctx, "x", 0, &ref) == -EINVAL);
	OK(kr_node_monitor_name(ctx, "x", "kbad@127.0.0.1", 0) == -EINVAL);
	OK(kr_node_monitor_name(ctx, "nobody", "kbad@127.0.0.1", &local_ref) == 0);
	/* A name of this node nobody holds: DOWN noproc at once. */
	OK(kr_node_call_send_name(ctx, "nobody", "kbad@127.0.0.1", &x, call) == 0);
	ei_x_free(&x);
	ei_x_free(&raw);
	atomic_store(&bad_done, ok ? 2 : -1);
}

static atomic_int not_node_rc;

static void not_node(kr_ctx *ctx, void *st, const kr_msg *m)
{
	(void)st;
	(void)m;
	ei_x_buff x;
	uint64_t ref;
	kr_node_from from = {.pid = kr_self(ctx), .len = 1};
	const char *b;
	int i;
	ei_x_new_with_version(&x);
	ei_x_encode_atom(&x, "hi");
	atomic_store(&not_node_rc, kr_node_call_send(ctx, kr_self(ctx), &x, &ref) == -EINVAL &&
				       kr_node_monitor_name(ctx, "x", "a@b", &ref) == -EINVAL &&
				       kr_node_gen_reply(ctx, &from, &x) == -EINVAL &&
				       kr_node_gen_call_in(ctx, m, &from, &b, &i) == -EINVAL);
	ei_x_free(&x);
	kr_exit(ctx, KR_NORMAL);
}

static void bad_arguments_are_refused(void **st)
{
	(void)st;
	kr_config c;
	kr_runtime *rt;
	kr_pid keep, p;
	uint64_t zero = 0;
	/* Not a node: -EINVAL. */
	kr_config_init(&c);
	c.schedulers = 1;
	c.stats = 0;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	atomic_store(&not_node_rc, 0);
	assert_int_equal(kr_rt_spawn(rt, not_node, 0, 0, &p), 0);
	assert_int_equal(kr_rt_send(rt, p, 1, 0, 0), 0);
	assert_int_equal(kr_start(rt), 0);
	kr_wait(rt);
	kr_runtime_free(rt);
	assert_int_equal(atomic_load(&not_node_rc), 1);
	atomic_store(&bad_done, 0);
	atomic_store(&local_noproc, 0);
	rt = dh_node_up("kbad@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, bad_args, &zero, sizeof(zero), &p), 0);
	assert_int_equal(kr_rt_send(rt, p, 1, 0, 0), 0);
	dh_wait_flag(&bad_done, 10000);
	for (int i = 0; i < 500 && atomic_load(&bad_done) == 2; i++)
		sleep_ms(10);
	assert_int_equal(atomic_load(&bad_done), 1);
	assert_int_equal(dh_wait_flag(&local_noproc, 5000), 1);
	dh_node_down(rt);
}

/* ---- krill calls an Erlang gen_server ---------------------------------------- */

static struct {
	const char *erl; /* the Erlang node */
	kr_pid srv;      /* its gen_server */
	atomic_int echo, by_name, timed_out, no_stray, after_late, stackless, done;
	atomic_int die_rc, die_reason, nc_rc, nc_reason, nobody_rc, nobody_reason, calling;
	atomic_int mon_noproc, mon_reason, mon_gone, mon_nc; /* by name: reason + 1 */
	atomic_int demon;    /* 1: a monitor by name taken off got no DOWN */
	atomic_int watchers; /* 1 + how many monitored the server during a call */
	int late_msgs;       /* messages that came in while nothing waited (the late reply) */
} C;

static int any(const kr_msg *m, void *arg)
{
	(void)m;
	(void)arg;
	return 1;
}

/* The stackless caller: gets the server's pid from the test's client (tag
 * 1), calls {echo, 9} without blocking, takes the reply. */
static void sclient(kr_ctx *ctx, void *st, const kr_msg *m)
{
	uint64_t *ref = st;
	const char *t;
	uint32_t len;
	if (m->tag == 1) {
		kr_pid to;
		memcpy(&to, m->data, sizeof(to));
		ei_x_buff x;
		req(&x, "echo", 9, 0, 2);
		if (kr_node_call_send(ctx, to, &x, ref))
			atomic_store(&C.stackless, -1);
		ei_x_free(&x);
		return;
	}
	int rc = kr_node_call_result(ctx, m, *ref, &t, &len);
	if (rc == 1 && is_pair(t, "ok", 9) && len > 1)
		atomic_store(&C.stackless, 1);
	else if (rc)
		atomic_store(&C.stackless, -2);
}

static void client(kr_ctx *ctx, void *arg)
{
	const kr_pid *sc = arg; /* the stackless caller */
	const kr_msg *m;
	kr_runtime *rt = kr_runtime_of(ctx);
	if (kr_receive(ctx, any, 0, 20000, &m) || server_pid(ctx, m, &C.srv))
		return;
	ei_x_buff x;
	req(&x, "echo", 42, 0, 2);
	int rc0 = kr_node_call(ctx, C.srv, &x, 5000, &m);
	if (!rc0 && is_pair(mterm(m), "ok", 42))
		atomic_store(&C.echo, 1);

	ei_x_free(&x);
	req(&x, "echo", 7, 0, 2);
	if (!kr_node_call_name(ctx, "erlsrv", C.erl, &x, 5000, &m) && is_pair(mterm(m), "ok", 7))
		atomic_store(&C.by_name, 1);
	ei_x_free(&x);
	/* A reply that comes after the call gave up is dropped. */
	kr_node_info before, after;
	kr_node_info_get(rt, &before);
	req(&x, "late", 400, 1, 3);
	if (kr_node_call(ctx, C.srv, &x, 100, &m) == -ETIMEDOUT)
		atomic_store(&C.timed_out, 1);
	ei_x_free(&x);
	if (kr_receive(ctx, any, 0, 1500, &m) == -ETIMEDOUT)
		atomic_store(&C.no_stray, 1);
	kr_node_info_get(rt, &after);
	C.late_msgs = (int)(after.msgs_in - before.msgs_in);
	req(&x, "echo", 2, 0, 2);
	if (!kr_node_call(ctx, C.srv, &x, 5000, &m) && is_pair(mterm(m), "ok", 2))
		atomic_store(&C.after_late, 1);
	ei_x_free(&x);
	kr_send(ctx, *sc, 1, &C.srv, sizeof(C.srv));
	atomic_store(&C.done, 1);
	kr_receive(ctx, any, 0, KR_INFINITY, &m); /* until the runtime stops */
}

/* tests/dist/erl_server.escript as C.erl, for the client of the krill node
 * knode: its pid, its stdout on *out, "ready" read. */
static pid_t erl_server(const char *knode, int *out)
{
	pid_t erl = dh_escript("erl_server.escript", C.erl, COOKIE, knode, 0, out);
	assert_true(erl > 0);
	assert_int_equal(dh_ready(*out, 20000), 0);
	return erl;
}

static void krill_calls_an_erlang_gen_server_by_pid_and_name_and_drops_a_late_reply(void **st)
{
	(void)st;
	memset(&C, 0, sizeof(C));
	C.erl = "erlsrv1@127.0.0.1";
	kr_pid keep, sc, cl;
	kr_runtime *rt = dh_node_up("kcall1@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	uint64_t ref0 = 0;
	assert_int_equal(kr_rt_spawn(rt, sclient, &ref0, sizeof(ref0), &sc), 0);
	assert_int_equal(kr_rt_spawn_fn(rt, client, &sc, sizeof(sc), &cl), 0);
	assert_int_equal(kr_register(rt, "client", cl), 0);
	int out;
	pid_t erl = erl_server("kcall1@127.0.0.1", &out);
	int done = dh_wait_flag(&C.done, 20000);
	int stackless = dh_wait_flag(&C.stackless, 10000);
	dh_kill(erl, out);
	assert_int_equal(done, 1);
	assert_int_equal(atomic_load(&C.echo), 1);
	assert_int_equal(atomic_load(&C.by_name), 1);
	assert_int_equal(atomic_load(&C.timed_out), 1);
	assert_true(C.late_msgs >= 1);                 /* the late reply did come... */
	assert_int_equal(atomic_load(&C.no_stray), 1); /* ...and was not received */
	assert_int_equal(atomic_load(&C.after_late), 1);
	assert_int_equal(stackless, 1);
	dh_node_down(rt);
}

/* Is the DOWN's reason the atom bye (an Erlang term)? */
static bool is_bye(const kr_msg *m)
{
	const kr_exit_info *e = (const kr_exit_info *)kr_msg_data(m);
	int i = 0, v;
	char a[MAXATOMLEN];
	return e->reason == KR_REASON_TERM &&
	       !ei_decode_version((const char *)e->payload, &i, &v) &&
	       !ei_decode_atom((const char *)e->payload, &i, a) && !strcmp(a, "bye");
}

static int down_of(const kr_msg *m, void *arg)
{
	kr_exit_info x;
	if (m->tag != KR_TAG_DOWN)
		return 0;
	memcpy(&x, m->data, offsetof(kr_exit_info, payload));
	return x.ref == *(const uint64_t *)arg;
}

/* The reason + 1 of ref's DOWN, or -1 if none comes in 10 s. */
static int down_for(kr_ctx *ctx, uint64_t ref, const kr_msg **m)
{
	return kr_receive(ctx, down_of, &ref, 10000, m) ? -1 : (int)down_reason(*m) + 1;
}

/* Monitors by name and a call by name to an Erlang gen_server that stops
 * (tests/dist/erl_server.escript). */
static void by_name_client(kr_ctx *ctx, void *arg)
{
	(void)arg;
	const kr_msg *m;
	uint64_t r0, r1, r2, r3, r4;
	if (kr_receive(ctx, any, 0, 20000, &m) || server_pid(ctx, m, &C.srv))
		return;
	/* A name nobody holds there: noproc, from the peer. */
	if (!kr_node_monitor_name(ctx, "nobody", C.erl, &r0))
		atomic_store(&C.mon_noproc, down_for(ctx, r0, &m));
	/* The server's name, then a call by name that stops it: the call
	 * and the monitor both see its reason. */
	if (kr_node_monitor_name(ctx, "erlsrv", C.erl, &r1) ||
	    kr_node_monitor_name(ctx, "erlsrv", C.erl, &r4) || kr_demonitor(ctx, r4))
		return;
	/* Its monitors, as the server counts them: r1 and the call's own (r4
	 * went, by DEMONITOR_P with the name). */
	ei_x_buff x;
	ei_x_new_with_version(&x);
	ei_x_encode_atom(&x, "monitored_by");
	if (!kr_node_call_name(ctx, "erlsrv", C.erl, &x, 5000, &m)) {
		const char *t = mterm(m);
		int i = 0, v, ar;
		char a[MAXATOMLEN];
		long n;
		if (!ei_decode_version(t, &i, &v) && !ei_decode_tuple_header(t, &i, &ar) &&
		    ar == 2 && !ei_decode_atom(t, &i, a) && !ei_decode_long(t, &i, &n))
			atomic_store(&C.watchers, (int)n + 1);
	}
	ei_x_free(&x);
	ei_x_new_with_version(&x);
	ei_x_encode_tuple_header(&x, 2);
	ei_x_encode_atom(&x, "die");
	ei_x_encode_atom(&x, "bye");
	int rc = kr_node_call_name(ctx, "erlsrv", C.erl, &x, 5000, &m);
	ei_x_free(&x);
	if (rc == -ESRCH)
		atomic_store(&C.die_reason, is_bye(m) ? 1 : -1);
	atomic_store(&C.die_rc, rc == 0 ? 1 : rc);
	if (kr_receive(ctx, down_of, &r1, 10000, &m) == 0)
		atomic_store(&C.mon_reason, is_bye(m) ? 1 : -1);
	/* Taken off (DEMONITOR_P with the name) before the server stopped. */
	atomic_store(&C.demon, kr_receive(ctx, down_of, &r4, 300, &m) == -ETIMEDOUT ? 1 : -1);
	/* The name is free now: noproc. */
	if (!kr_node_monitor_name(ctx, "erlsrv", C.erl, &r2))
		atomic_store(&C.mon_gone, down_for(ctx, r2, &m));
	/* A node nobody runs: noconnection. */
	if (!kr_node_monitor_name(ctx, "erlsrv", "nobody@127.0.0.1", &r3))
		atomic_store(&C.mon_nc, down_for(ctx, r3, &m));
	kr_receive(ctx, any, 0, KR_INFINITY, &m);
}

static void monitors_and_calls_by_name_see_an_erlang_server_stop(void **st)
{
	(void)st;
	memset(&C, 0, sizeof(C));
	C.erl = "erlsrv6@127.0.0.1";
	kr_pid keep, cl;
	kr_runtime *rt = dh_node_up("kcall6@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn_fn(rt, by_name_client, 0, 0, &cl), 0);
	assert_int_equal(kr_register(rt, "client", cl), 0);
	int out;
	pid_t erl = erl_server("kcall6@127.0.0.1", &out);
	int rc = dh_wait_flag(&C.die_rc, 15000);
	int nc = dh_wait_flag(&C.mon_nc, 15000);
	dh_kill(erl, out);
	dh_node_down(rt);
	assert_int_equal(atomic_load(&C.mon_noproc), KR_NOPROC + 1);
	assert_int_equal(rc, -ESRCH); /* before monitors by name: -ETIMEDOUT */
	assert_int_equal(atomic_load(&C.die_reason), 1);
	assert_int_equal(atomic_load(&C.mon_reason), 1);
	assert_int_equal(atomic_load(&C.demon), 1);
	assert_int_equal(atomic_load(&C.watchers), 2 + 1);
	assert_int_equal(atomic_load(&C.mon_gone), KR_NOPROC + 1);
	assert_int_equal(nc, KR_NOCONNECTION + 1);
}

/* The client of the failure tests: arg says which. */
static void failing_client(kr_ctx *ctx, void *arg)
{
	int what = *(const int *)arg;
	const kr_msg *m;
	if (kr_receive(ctx, any, 0, 20000, &m) || server_pid(ctx, m, &C.srv))
		return;
	ei_x_buff x;
	int rc;
	if (what == 0) { /* the server stops with reason bye */
		ei_x_new_with_version(&x);
		ei_x_encode_tuple_header(&x, 2);
		ei_x_encode_atom(&x, "die");
		ei_x_encode_atom(&x, "bye");
		rc = kr_node_call(ctx, C.srv, &x, 3000, &m);
		if (rc == -ESRCH) {
			const kr_exit_info *e = (const kr_exit_info *)kr_msg_data(m);
			int i = 0, v;
			char a[MAXATOMLEN];
			atomic_store(&C.die_reason,
				     e->reason == KR_REASON_TERM &&
					     !ei_decode_version((const char *)e->payload, &i, &v) &&
					     !ei_decode_atom((const char *)e->payload, &i, a) &&
					     !strcmp(a, "bye")
					 ? 1
					 : -1);
		}
		atomic_store(&C.die_rc, rc == 0 ? 1 : rc);
	} else { /* the node is killed while the call waits */
		req(&x, "late", 60000, 1, 3);
		atomic_store(&C.calling, 1);
		rc = kr_node_call(ctx, C.srv, &x, 20000, &m);
		if (rc == -ESRCH)
			atomic_store(&C.nc_reason, (int)down_reason(m) + 1);
		atomic_store(&C.nc_rc, rc == 0 ? 1 : rc);
	}
	ei_x_free(&x);
	/* By name, to a node nobody runs: the connection cannot be made. */
	req(&x, "echo", 1, 0, 2);
	rc = kr_node_call_name(ctx, "erlsrv", "nobody@127.0.0.1", &x, 20000, &m);
	if (rc == -ESRCH)
		atomic_store(&C.nobody_reason, (int)down_reason(m) + 1);
	atomic_store(&C.nobody_rc, rc == 0 ? 1 : rc);
	ei_x_free(&x);
	kr_receive(ctx, any, 0, KR_INFINITY, &m);
}

static void a_call_to_a_killed_erlang_node_ends_with_noconnection(void **st)
{
	(void)st;
	memset(&C, 0, sizeof(C));
	C.erl = "erlsrv2@127.0.0.1";
	kr_pid keep, cl;
	kr_runtime *rt = dh_node_up("kcall2@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	int what = 1;
	assert_int_equal(kr_rt_spawn_fn(rt, failing_client, &what, sizeof(what), &cl), 0);
	assert_int_equal(kr_register(rt, "client", cl), 0);
	int out;
	pid_t erl = erl_server("kcall2@127.0.0.1", &out);
	assert_int_equal(dh_wait_flag(&C.calling, 10000), 1);
	sleep_ms(300); /* the call is out */
	dh_kill(erl, out);
	assert_int_equal(dh_wait_flag(&C.nc_rc, 10000), -ESRCH);
	assert_int_equal(atomic_load(&C.nc_reason), KR_NOCONNECTION + 1);
	assert_int_equal(dh_wait_flag(&C.nobody_rc, 15000), -ESRCH);
	assert_int_equal(atomic_load(&C.nobody_reason), KR_NOCONNECTION + 1);
	dh_node_down(rt);
}

/* An Erlang gen_server that stops gives its reason: the call's monitor of an
 * Erlang pid is answered (our handshake offers DFLAG_DIST_MONITOR). */
static void an_erlang_gen_server_that_stops_gives_its_reason(void **st)
{
	(void)st;
	memset(&C, 0, sizeof(C));
	C.erl = "erlsrv3@127.0.0.1";
	kr_pid keep, cl;
	kr_runtime *rt = dh_node_up("kcall3@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	int what = 0;
	assert_int_equal(kr_rt_spawn_fn(rt, failing_client, &what, sizeof(what), &cl), 0);
	assert_int_equal(kr_register(rt, "client", cl), 0);
	int out;
	pid_t erl = erl_server("kcall3@127.0.0.1", &out);
	int rc = dh_wait_flag(&C.die_rc, 10000);
	dh_kill(erl, out);
	dh_node_down(rt);
	assert_int_equal(rc, -ESRCH);
	assert_int_equal(atomic_load(&C.die_reason), 1);
}

/* ---- Erlang (and krill) call krill processes ------------------------------------ */

static struct {
	atomic_int mute_calls, srv_calls;
} S;

/* Answer {add, A, B} with A + B; {die, N} ends the process with N. */
static int serve(kr_ctx *ctx, const kr_msg *m)
{
	kr_node_from from;
	const char *b;
	int i, ar;
	char a[MAXATOMLEN];
	long x, y;
	if (kr_node_gen_call_in(ctx, m, &from, &b, &i) != 1)
		return 0;
	atomic_fetch_add(&S.srv_calls, 1);
	if (ei_decode_tuple_header(b, &i, &ar) || ar < 2 || ei_decode_atom(b, &i, a) ||
	    ei_decode_long(b, &i, &x))
		return -1;
	if (!strcmp(a, "die")) {
		kr_exit(ctx, (uint32_t)x);
		return 1;
	}
	if (strcmp(a, "add") || ar != 3 || ei_decode_long(b, &i, &y))
		return -1;
	ei_x_buff r;
	ei_x_new_with_version(&r);
	ei_x_encode_long(&r, x + y);
	int rc = kr_node_gen_reply(ctx, &from, &r);
	ei_x_free(&r);
	return rc ? -1 : 1;
}

static void ksrv(kr_ctx *ctx, void *st, const kr_msg *m)
{
	(void)st;
	serve(ctx, m);
}

static void kmute(kr_ctx *ctx, void *st, const kr_msg *m)
{
	(void)st;
	kr_node_from from;
	const char *b;
	int i;
	if (kr_node_gen_call_in(ctx, m, &from, &b, &i) == 1)
		atomic_fetch_add(&S.mute_calls, 1);
}

static void kfn(kr_ctx *ctx, void *arg)
{
	(void)arg;
	const kr_msg *m;
	while (!kr_receive(ctx, any, 0, KR_INFINITY, &m))
		serve(ctx, m);
}

static void erlang_gen_server_calls_reach_stackless_and_stackful_krill_processes(void **st)
{
	(void)st;
	memset(&S, 0, sizeof(S));
	kr_pid keep, p;
	kr_runtime *rt = dh_node_up("kserve@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, ksrv, 0, 0, &p), 0);
	assert_int_equal(kr_register(rt, "ksrv", p), 0);
	assert_int_equal(kr_rt_spawn_fn(rt, kfn, 0, 0, &p), 0);
	assert_int_equal(kr_register(rt, "kfn", p), 0);
	assert_int_equal(kr_rt_spawn(rt, kmute, 0, 0, &p), 0);
	assert_int_equal(kr_register(rt, "kmute", p), 0);
	pid_t erl =
	    dh_escript("call_krill.escript", "erlcall@127.0.0.1", COOKIE, "kserve@127.0.0.1", 0, 0);
	assert_true(erl > 0);
	assert_int_equal(dh_reap(erl, 30000), 0);
	assert_int_equal(atomic_load(&S.srv_calls), 3);
	assert_int_equal(atomic_load(&S.mute_calls), 1);
	dh_node_down(rt);
}

/* Two krill nodes: A's function process calls B's server by pid (and A's
 * own by name on A); B's server's exit reason comes back in the DOWN. */
static struct {
	kr_pid b_srv;
	const char *a;
	atomic_int sum, local, noproc, died, reason;
} K;

static void kclient(kr_ctx *ctx, void *arg)
{
	(void)arg;
	const kr_msg *m;
	ei_x_buff x;
	req(&x, "add", 1, 2, 3);
	if (!kr_node_call(ctx, K.b_srv, &x, 5000, &m) && is_long(mterm(m), 3))
		atomic_store(&K.sum, 1);
	ei_x_free(&x);
	req(&x, "add", 5, 6, 3);
	if (!kr_node_call_name(ctx, "ksrv", K.a, &x, 5000, &m) && is_long(mterm(m), 11))
		atomic_store(&K.local, 1);
	ei_x_free(&x);
	req(&x, "add", 5, 6, 3); /* a name here nobody holds: noproc at once */
	if (kr_node_call_name(ctx, "nobody", K.a, &x, 5000, &m) == -ESRCH &&
	    down_reason(m) == KR_NOPROC)
		atomic_store(&K.noproc, 1);
	ei_x_free(&x);
	req(&x, "die", 77, 0, 2);
	int rc = kr_node_call(ctx, K.b_srv, &x, 5000, &m);
	if (rc == -ESRCH)
		atomic_store(&K.reason, (int)down_reason(m));
	atomic_store(&K.died, rc == 0 ? 1 : rc);
	ei_x_free(&x);
}

static void a_krill_server_on_another_node_answers_and_its_exit_reason_comes_back(void **st)
{
	(void)st;
	memset(&K, 0, sizeof(K));
	K.a = "kna@127.0.0.1";
	kr_pid keep_a, keep_b, sa, sb, cl;
	kr_runtime *a = dh_node_up(K.a, COOKIE, 0, &keep_a, 0, 0);
	kr_runtime *b = dh_node_up("knb@127.0.0.1", COOKIE, 0, &keep_b, 0, 0);
	assert_int_equal(kr_rt_spawn(a, ksrv, 0, 0, &sa), 0);
	assert_int_equal(kr_register(a, "ksrv", sa), 0);
	assert_int_equal(kr_rt_spawn(b, ksrv, 0, 0, &sb), 0);
	erlang_pid e;
	assert_int_equal(kr_node_pid_to_ei(b, sb, &e), 0);
	assert_int_equal(kr_node_pid_from_ei(a, &e, &K.b_srv), 0);
	assert_int_equal(kr_rt_spawn_fn(a, kclient, 0, 0, &cl), 0);
	assert_int_equal(dh_wait_flag(&K.died, 20000), -ESRCH);
	assert_int_equal(atomic_load(&K.sum), 1);
	assert_int_equal(atomic_load(&K.local), 1);
	assert_int_equal(atomic_load(&K.noproc), 1);
	assert_int_equal(atomic_load(&K.reason), 77);
	dh_node_down(b);
	dh_node_down(a);
}

/* ---- ticks ----------------------------------------------------------------------- */

#define TICK_MS 1000u

static struct {
	atomic_int linked, nc;
	atomic_uint_fast64_t nc_at;
} T;

/* Links to the peer's process that says {hello, Pid}, answers it, and
 * notes when the link ends with noconnection. */
static void tickee(kr_ctx *ctx, void *st, const kr_msg *m)
{
	(void)st;
	if (m->tag == KR_TAG_EXIT) {
		const kr_exit_info *x = (const kr_exit_info *)m->data;
		if (x->reason == KR_NOCONNECTION) {
			atomic_store(&T.nc_at, now_ms());
			atomic_store(&T.nc, 1);
		}
		return;
	}
	if (m->tag != KR_TAG_DIST)
		return;
	const char *t = kr_dist_msg_term((const kr_dist_msg *)m->data);
	int i = 0, v, ar;
	char a[MAXATOMLEN];
	erlang_pid e;
	kr_pid p;
	if (ei_decode_version(t, &i, &v) || ei_decode_tuple_header(t, &i, &ar) || ar != 2 ||
	    ei_decode_atom(t, &i, a) || strcmp(a, "hello") || ei_decode_pid(t, &i, &e) ||
	    kr_node_pid_from_ei(kr_runtime_of(ctx), &e, &p))
		return;
	kr_trap_exit(ctx, 1);
	if (!kr_link(ctx, p) && !kr_send(ctx, p, 5, 0, 0))
		atomic_store(&T.linked, 1);
}

/* A node knode with ticktime TICK_MS and its tickee, and ticker.escript
 * (mode "stop" or "quiet") as the Erlang node erlnode: the runtime; the
 * escript's pid on *erl, its stdout on *out, "ready" read. */
static kr_runtime *ticker_up(const char *knode, const char *erlnode, const char *mode, pid_t *erl,
			     int *out)
{
	memset(&T, 0, sizeof(T));
	kr_pid keep, p;
	kr_runtime *rt = dh_node_up(knode, COOKIE, TICK_MS, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, tickee, 0, 0, &p), 0);
	assert_int_equal(kr_register(rt, "tickee", p), 0);
	*erl = dh_escript("ticker.escript", erlnode, COOKIE, knode, mode, out);
	assert_true(*erl > 0);
	assert_int_equal(dh_ready(*out, 20000), 0);
	return rt;
}

static void a_peer_that_goes_silent_is_dropped_after_about_ticktime(void **st)
{
	(void)st;
	pid_t erl;
	int out;
	kr_runtime *rt = ticker_up("ktick1@127.0.0.1", "erltick1@127.0.0.1", "stop", &erl, &out);
	uint64_t t0 = now_ms(); /* it stops itself right after "ready" */
	int nc = dh_wait_flag(&T.nc, 15000);
	uint64_t at = atomic_load(&T.nc_at);
	dh_kill(erl, out); /* a stopped process dies of it too */
	assert_int_equal(atomic_load(&T.linked), 1);
	assert_int_equal(nc, 1);
	/* Not at once: four silent quarters of ticktime, counted from the
	 * peer's last word, which came at most a quarter before "ready" (it
	 * ticks each quarter): at least half a ticktime after t0. A quarter
	 * is asserted, leaving room for a slow pipe read. */
	assert_true(at >= t0 + TICK_MS / 4);
	dh_node_down(rt);
}

static void a_quiet_peer_that_ticks_stays_connected(void **st)
{
	(void)st;
	pid_t erl;
	int out;
	kr_runtime *rt = ticker_up("ktick2@127.0.0.1", "erltick2@127.0.0.1", "quiet", &erl, &out);
	sleep_ms(5 * TICK_MS); /* five ticktimes with nothing but ticks */
	kr_node_info info;
	assert_int_equal(kr_node_info_get(rt, &info), 0);
	int nc_quiet = atomic_load(&T.nc);
	dh_kill(erl, out);
	assert_int_equal(atomic_load(&T.linked), 1);
	assert_int_equal(nc_quiet, 0);
	assert_int_equal(info.connections, 1);
	assert_true(info.bytes_in > 0);
	/* The link was live: the peer's death ends it. */
	assert_int_equal(dh_wait_flag(&T.nc, 10000), 1);
	dh_node_down(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bad_arguments_are_refused),
	    cmocka_unit_test(
		krill_calls_an_erlang_gen_server_by_pid_and_name_and_drops_a_late_reply),
	    cmocka_unit_test(a_call_to_a_killed_erlang_node_ends_with_noconnection),
	    cmocka_unit_test(an_erlang_gen_server_that_stops_gives_its_reason),
	    cmocka_unit_test(monitors_and_calls_by_name_see_an_erlang_server_stop),
	    cmocka_unit_test(erlang_gen_server_calls_reach_stackless_and_stackful_krill_processes),
	    cmocka_unit_test(a_krill_server_on_another_node_answers_and_its_exit_reason_comes_back),
	    cmocka_unit_test(a_peer_that_goes_silent_is_dropped_after_about_ticktime),
	    cmocka_unit_test(a_quiet_peer_that_ticks_stays_connected),
	};
	signal(SIGPIPE, SIG_IGN);
	if (getenv("DIST_TEST")) /* a pattern: run only the tests it names */
		cmocka_set_test_filter(getenv("DIST_TEST"));
	return cmocka_run_group_tests(tests, dh_group_setup, dh_group_teardown);
}
