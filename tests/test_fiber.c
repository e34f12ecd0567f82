/* Tests for stackful processes (core/fiber): the context switch itself, kr_spawn_fn and its
 * forms, kr_receive (selective, timeouts, polls), kr_sleep, kr_call and kr_reply, both stack
 * modes, processes that move between schedulers while blocked, a million blocked processes,
 * faults and stack overflows contained, deep recursion on a stack of its own. Each scenario
 * runs on 1 and 2 scheduler threads and in deterministic mode under several seeds. In the
 * `concurrent` suite: the ThreadSanitizer build runs it too (smaller counts there). */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fiber/fiber.h"
#include "core/sched/sched.h" /* ctx->s->id: which scheduler runs a process */
#include "krill.h"
#include "tests/guard.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define USER KR_REASON_USER

struct mode {
	unsigned n;
	int det;
	uint64_t seed;
};

static const struct mode modes[] = {
    {1, 0, 0}, {2, 0, 0}, {1, 1, 1}, {2, 1, 7}, {2, 1, 42}, {3, 1, 0xdecafbadull},
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

static kr_runtime *rt_make(const struct mode *m)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.schedulers = m->n;
	c.pin = 0;
	c.stats = 0;
	c.deterministic = m->det;
	c.seed = m->seed;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	return rt;
}

static void run(kr_runtime *rt)
{
	assert_true(guard_run(rt, false, 120));
	kr_runtime_free(rt);
}

/* A failed check inside a process: recorded, asserted by the test afterwards. */
static _Atomic int bad;
static char bad_what[256];
#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c) && atomic_fetch_add(&bad, 1) == 0)                                        \
			snprintf(bad_what, sizeof(bad_what), "%s:%d: %s", __FILE__, __LINE__, #c); \
	} while (0)

static void reset(void)
{
	atomic_store(&bad, 0);
	bad_what[0] = 0;
}

static void no_bad(void)
{
	if (atomic_load(&bad))
		fail_msg("inside a process: %s", bad_what);
}

/* A DOWN's or EXIT's kr_exit_info: the message holds only the payload it carries. */
static void info_of(const kr_msg *m, kr_exit_info *x)
{
	memset(x, 0, sizeof(*x));
	memcpy(x, m->data, m->len < sizeof(*x) ? m->len : sizeof(*x));
}

static int tag_is(const kr_msg *m, void *arg)
{
	return m->tag == (uint32_t)(uintptr_t)arg;
}

/* ---- the switch itself ------------------------------------------------------------- */

#if !SANITIZED
static void *main_sp, *co_sp;
static volatile double co_acc;

static void co_entry(void *arg)
{
	/* Values live in callee-saved registers across each switch. */
	uintptr_t n = (uintptr_t)arg;
	double d = 0.5;
	for (;;) {
		d *= 2;
		n = (uintptr_t)kri_ctx_switch(&co_sp, main_sp, (void *)(n + 1));
		co_acc = d;
	}
}

static void switch_round_trips_keep_registers(void **st)
{
	size_t size = 64 * 1024;
	unsigned char *stack = malloc(size);
	assert_non_null(stack);
	co_sp = kri_ctx_make(stack + size, co_entry);
	uintptr_t v = 0;
	uint64_t keep[4] = {1, 2, 3, 4};
	for (int i = 0; i < 1000; i++) {
		uintptr_t r = (uintptr_t)kri_ctx_switch(&main_sp, co_sp, (void *)v);
		assert_int_equal(r, v + 1);
		v = r * 3;
		keep[i & 3] += r;
	}
	assert_true(keep[0] > 1 && keep[1] > 2);
	free(stack);
}
#endif

/* ---- run top to bottom ---------------------------------------------------------- */

static _Atomic int ran, downs;
static _Atomic uint32_t down_reason[8];

struct targ {
	uint64_t magic;
	uint32_t exit_with;
	uint32_t pad;
};

static void child_fn(kr_ctx *ctx, void *arg)
{
	struct targ *a = arg;
	CHECK(((uintptr_t)arg & 15) == 0);
	CHECK(a->magic == 0x1234567890abcdefull);
	CHECK(kr_self(ctx) != 0);
	atomic_fetch_add(&ran, 1);
	if (a->exit_with) {
		kr_exit(ctx, a->exit_with);
		const kr_msg *m;
		kr_receive(ctx, NULL, NULL, KR_INFINITY, &m); /* ends here */
		CHECK(!"kr_receive returned after kr_exit");
	}
}

/* Spawns two children (one returns, one exits with a reason), monitors both, and records
 * their DOWN reasons, in monitor order. */
static void parent_fn(kr_ctx *ctx, void *arg)
{
	struct targ a = {0x1234567890abcdefull, 0, 0};
	kr_pid c[2];
	uint64_t ref[2];
	CHECK(kr_spawn_fn(ctx, child_fn, &a, sizeof(a), &c[0]) == 0);
	a.exit_with = USER + 3;
	CHECK(kr_spawn_fn(ctx, child_fn, &a, sizeof(a), &c[1]) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(kr_monitor(ctx, c[i], &ref[i]) == 0);
	for (int i = 0; i < 2; i++) {
		const kr_msg *m;
		CHECK(kr_receive(ctx, tag_is, (void *)(uintptr_t)KR_TAG_DOWN, KR_INFINITY, &m) ==
		      0);
		kr_exit_info x;
		info_of(m, &x);
		int k = x.ref == ref[0] ? 0 : 1;
		atomic_store(&down_reason[k], x.reason);
		atomic_fetch_add(&downs, 1);
	}
}

static void fn_runs_top_to_bottom_and_ends(void **st)
{
	for (unsigned i = 0; i < NMODES; i++) {
		reset();
		atomic_store(&ran, 0);
		atomic_store(&downs, 0);
		kr_runtime *rt = rt_make(&modes[i]);
		kr_pid p;
		assert_int_equal(kr_rt_spawn_fn(rt, parent_fn, NULL, 0, &p), 0);
		run(rt);
		no_bad();
		assert_int_equal(atomic_load(&ran), 2);
		assert_int_equal(atomic_load(&downs), 2);
		/* KR_NOPROC would mean the monitor came after the exit; a 2-scheduler run may
		 * have the child end first: either way the reason is told. */
		uint32_t r0 = atomic_load(&down_reason[0]), r1 = atomic_load(&down_reason[1]);
		assert_true(r0 == KR_NORMAL || r0 == KR_NOPROC);
		assert_true(r1 == USER + 3 || r1 == KR_NOPROC);
	}
}

/* ---- selective receive ----------------------------------------------------------- */

static _Atomic uint32_t seen[16];
static _Atomic int nseen;

static void record(uint32_t v)
{
	int i = atomic_fetch_add(&nseen, 1);
	if (i < 16)
		atomic_store(&seen[i], v);
}

/* Messages tagged 1..4 come (from the main thread) in that order. */
static void selective_fn(kr_ctx *ctx, void *arg)
{
	const kr_msg *m;
	CHECK(kr_receive(ctx, tag_is, (void *)3, KR_INFINITY, &m) == 0);
	record(m->tag);
	CHECK(kr_receive(ctx, tag_is, (void *)1, KR_INFINITY, &m) == 0);
	record(m->tag);
	uint32_t d;
	memcpy(&d, m->data, sizeof(d));
	record(d);
	CHECK(kr_receive(ctx, NULL, NULL, KR_INFINITY, &m) == 0);
	record(m->tag);
	CHECK(kr_receive(ctx, NULL, NULL, 0, &m) == 0);
	record(m->tag);
	/* Nothing left: a poll says so. */
	CHECK(kr_receive(ctx, NULL, NULL, 0, &m) == -ETIMEDOUT);
}

static void selective_receive_keeps_refused_messages_in_order(void **st)
{
	for (unsigned i = 0; i < NMODES; i++) {
		reset();
		atomic_store(&nseen, 0);
		kr_runtime *rt = rt_make(&modes[i]);
		kr_pid p;
		assert_int_equal(kr_rt_spawn_fn(rt, selective_fn, NULL, 0, &p), 0);
		for (uint32_t t = 1; t <= 4; t++) {
			uint32_t d = 100 + t;
			assert_int_equal(kr_rt_send(rt, p, t, &d, sizeof(d)), 0);
		}
		run(rt);
		no_bad();
		assert_int_equal(atomic_load(&nseen), 5);
		uint32_t want[] = {3, 1, 101, 2, 4};
		for (int k = 0; k < 5; k++)
			assert_int_equal(atomic_load(&seen[k]), want[k]);
	}
}

/* ---- timeouts, polls, sleep --------------------------------------------------------- */

static _Atomic int timeouts_done;

static void timeout_fn(kr_ctx *ctx, void *arg)
{
	const kr_msg *m = (const kr_msg *)1;
	/* Nothing comes: a timeout, *m untouched. */
	CHECK(kr_receive(ctx, NULL, NULL, 20, &m) == -ETIMEDOUT);
	CHECK(m == (const kr_msg *)1);
	CHECK(kr_receive(ctx, NULL, NULL, 0, &m) == -ETIMEDOUT);
	/* A message to self is there for a poll. */
	uint32_t d = 5;
	CHECK(kr_send(ctx, kr_self(ctx), 5, &d, sizeof(d)) == 0);
	CHECK(kr_receive(ctx, NULL, NULL, 0, &m) == 0 && m->tag == 5);
	/* A refused message survives a timeout and a sleep. */
	CHECK(kr_send(ctx, kr_self(ctx), 6, &d, sizeof(d)) == 0);
	CHECK(kr_receive(ctx, tag_is, (void *)7, 10, &m) == -ETIMEDOUT);
	CHECK(kr_sleep(ctx, 10) == 0);
	/* Matched before its timeout: the timeout never shows later. */
	CHECK(kr_send(ctx, kr_self(ctx), 7, &d, sizeof(d)) == 0);
	CHECK(kr_receive(ctx, tag_is, (void *)7, 30, &m) == 0 && m->tag == 7);
	CHECK(kr_sleep(ctx, 60) == 0);
	CHECK(kr_receive(ctx, tag_is, (void *)6, 0, &m) == 0 && m->tag == 6);
	CHECK(kr_receive(ctx, NULL, NULL, 0, &m) == -ETIMEDOUT);
	/* A long timeout, answered by a timer message. */
	CHECK(kr_send_after(ctx, kr_self(ctx), 15, 8, &d, sizeof(d), NULL) == 0);
	CHECK(kr_receive(ctx, tag_is, (void *)8, 5000, &m) == 0 && m->tag == 8);
	CHECK(kr_sleep(ctx, 0) == 0);
	atomic_fetch_add(&timeouts_done, 1);
}

static void receive_timeouts_polls_and_sleep(void **st)
{
	for (unsigned i = 0; i < NMODES; i++) {
		reset();
		atomic_store(&timeouts_done, 0);
		kr_runtime *rt = rt_make(&modes[i]);
		kr_pid p;
		kr_fn_opts o = {.stack = 64 * 1024};
		assert_int_equal(kr_rt_spawn_fn(rt, timeout_fn, NULL, 0, &p), 0);
		assert_int_equal(kr_rt_spawn_fn_opts(rt, timeout_fn, NULL, 0, &o, &p), 0);
		run(rt);
		no_bad();
		assert_int_equal(atomic_load(&timeouts_done), 2);
	}
}

/* ---- stackless callers are refused ------------------------------------------------------ */

static _Atomic int refused;

static void stackless_b(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	const kr_msg *m;
	CHECK(kr_receive(ctx, NULL, NULL, 0, &m) == -EPERM);
	CHECK(kr_sleep(ctx, 1) == -EPERM);
	CHECK(kr_call(ctx, kr_self(ctx), 1, NULL, 0, 10, &m) == -EPERM);
	kr_handle h;
	const kr_io_event *ev;
	CHECK(kr_io_connect_wait(ctx, "127.0.0.1", 1, 10, &h) == -EPERM);
	CHECK(kr_io_accept_wait(ctx, 1, 10, &h) == -EPERM);
	CHECK(kr_io_recv_wait(ctx, 1, 10, &ev) == -EPERM);
	CHECK(kr_io_send_wait(ctx, 1, "x", 1, 10) == -EPERM);
	CHECK(kr_io_open_wait(ctx, "/", 0, 0, 10, &h) == -EPERM);
	CHECK(kr_io_read_wait(ctx, 1, 0, 1, 10, &ev) == -EPERM);
	CHECK(kr_io_write_wait(ctx, 1, 0, "x", 1, 10) == -EPERM);
	CHECK(kr_io_fsync_wait(ctx, 1, 10) == -EPERM);
	atomic_fetch_add(&refused, 1);
	kr_exit(ctx, KR_NORMAL);
}

static void blocking_calls_refuse_a_behaviour(void **st)
{
	reset();
	atomic_store(&refused, 0);
	kr_runtime *rt = rt_make(&modes[0]);
	kr_pid p;
	assert_int_equal(kr_rt_spawn(rt, stackless_b, NULL, 0, &p), 0);
	assert_int_equal(kr_rt_send(rt, p, 1, NULL, 0), 0);
	kr_fn_opts o = {.link = 1};
	assert_int_equal(kr_rt_spawn_fn_opts(rt, child_fn, NULL, 0, &o, &p), -EINVAL);
	assert_int_equal(kr_rt_spawn_fn(rt, NULL, NULL, 0, &p), -EINVAL);
	assert_int_equal(kr_rt_spawn_fn(rt, child_fn, NULL, 4, &p), -EINVAL);
	run(rt);
	no_bad();
	assert_int_equal(atomic_load(&refused), 1);
}

/* ---- call and reply ---------------------------------------------------------------- */

enum { OP_ECHO = 1, OP_DIE, OP_IGNORE, OP_LATE };

/* A stackless server: echoes, dies, ignores, per the request's op. */
static void server_b(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	uint32_t op;
	if (msg->tag == 99) {
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	memcpy(&op, kr_call_data(msg), sizeof(op));
	CHECK(kr_call_len(msg) == 8);
	if (op == OP_ECHO) {
		uint32_t r[2];
		memcpy(r, kr_call_data(msg), 8);
		r[1] += 1000;
		CHECK(kr_reply(ctx, msg, r, sizeof(r)) == 0);
	} else if (op == OP_DIE) {
		kr_exit(ctx, USER + 9);
	}
}

/* A stackful server: answers OP_LATE after 50 ms, others at once. */
static void server_fn(kr_ctx *ctx, void *arg)
{
	for (;;) {
		const kr_msg *m;
		CHECK(kr_receive(ctx, NULL, NULL, KR_INFINITY, &m) == 0);
		if (m->tag == 99)
			return;
		uint32_t r[2];
		memcpy(r, kr_call_data(m), 8);
		if (r[0] == OP_LATE) {
			/* Keep the request: m is ours until the next blocking call. */
			unsigned char copy[64];
			memcpy(copy, m, sizeof(kr_msg) + m->len);
			CHECK(kr_sleep(ctx, 50) == 0);
			r[1] += 1000;
			CHECK(kr_reply(ctx, (const kr_msg *)copy, r, sizeof(r)) == 0);
		} else {
			r[1] += 1000;
			CHECK(kr_reply(ctx, m, r, sizeof(r)) == 0);
		}
	}
}

static _Atomic int calls_done;

static void caller_fn(kr_ctx *ctx, void *arg)
{
	kr_pid srv[2];
	memcpy(srv, arg, sizeof(srv));
	const kr_msg *m;
	for (int k = 0; k < 2; k++) {
		for (uint32_t i = 0; i < 20; i++) {
			uint32_t q[2] = {OP_ECHO, i};
			CHECK(kr_call(ctx, srv[k], 3, q, sizeof(q), KR_INFINITY, &m) == 0);
			uint32_t r[2];
			CHECK(m->tag == KR_TAG_REPLY && m->len == sizeof(r));
			memcpy(r, m->data, sizeof(r));
			CHECK(r[0] == OP_ECHO && r[1] == i + 1000);
		}
	}
	/* Never answers: a timeout, and the monitor is gone. */
	uint32_t q[2] = {OP_IGNORE, 0};
	CHECK(kr_call(ctx, srv[0], 3, q, sizeof(q), 20, &m) == -ETIMEDOUT);
	/* Answers late: a timeout, and the late answer never shows. */
	q[0] = OP_LATE;
	CHECK(kr_call(ctx, srv[1], 3, q, sizeof(q), 10, &m) == -ETIMEDOUT);
	CHECK(kr_receive(ctx, NULL, NULL, 120, &m) == -ETIMEDOUT);
	q[0] = OP_ECHO;
	q[1] = 7;
	CHECK(kr_call(ctx, srv[1], 3, q, sizeof(q), 1000, &m) == 0 && m->len == 8);
	/* Dies: -ESRCH with its reason. */
	q[0] = OP_DIE;
	CHECK(kr_call(ctx, srv[0], 3, q, sizeof(q), KR_INFINITY, &m) == -ESRCH);
	kr_exit_info x;
	info_of(m, &x);
	CHECK(m->tag == KR_TAG_DOWN && x.reason == USER + 9 && x.pid == srv[0]);
	/* Not alive: -ESRCH, KR_NOPROC. */
	CHECK(kr_call(ctx, srv[0], 3, q, sizeof(q), KR_INFINITY, &m) == -ESRCH);
	info_of(m, &x);
	CHECK(x.reason == KR_NOPROC);
	CHECK(kr_call(ctx, srv[0], KR_TAG_SYSTEM, q, sizeof(q), 10, &m) == -EINVAL);
	/* Nothing stray is left: no reply, no DOWN. */
	CHECK(kr_receive(ctx, NULL, NULL, 0, &m) == -ETIMEDOUT);
	CHECK(kr_send(ctx, srv[1], 99, NULL, 0) == 0);
	atomic_fetch_add(&calls_done, 1);
}

static void call_answers_times_out_and_sees_the_callee_die(void **st)
{
	for (unsigned i = 0; i < NMODES; i++) {
		reset();
		atomic_store(&calls_done, 0);
		kr_runtime *rt = rt_make(&modes[i]);
		kr_pid srv[2], p;
		assert_int_equal(kr_rt_spawn(rt, server_b, NULL, 0, &srv[0]), 0);
		assert_int_equal(kr_rt_spawn_fn(rt, server_fn, NULL, 0, &srv[1]), 0);
		assert_int_equal(kr_rt_spawn_fn(rt, caller_fn, srv, sizeof(srv), &p), 0);
		run(rt);
		no_bad();
		assert_int_equal(atomic_load(&calls_done), 1);
	}
}

/* ---- blocking I/O: an echo client and server, straight-line -------------------------- */

#define ECHO_ROUNDS 50
#define BULK_CHUNK  (512u * 1024)
#define BULK_N      8
static _Atomic int io_server_done, io_client_done, io_file_done;

/* Serves two connections: the first echoed, the second a sink that answers the number of
 * bytes it got once the client shuts its side. */
static void echo_server_fn(kr_ctx *ctx, void *arg);

static void echo_client_fn(kr_ctx *ctx, void *arg)
{
	uint16_t port;
	memcpy(&port, arg, sizeof(port));
	kr_handle h, l;
	const kr_io_event *ev;
	/* Nobody listens there: the connect's error. */
	CHECK(kr_io_listen(ctx, "127.0.0.1", 0, 1, &l) == 0);
	int dead = kr_io_port(ctx, l);
	CHECK(kr_io_close(ctx, l) == 0);
	CHECK(kr_io_connect_wait(ctx, "127.0.0.1", (uint16_t)dead, 10000, &h) == -ECONNREFUSED);

	CHECK(kr_io_connect_wait(ctx, "127.0.0.1", port, 10000, &h) == 0);
	/* Nothing sent yet: a timeout; what comes later is not lost. */
	CHECK(kr_io_recv_wait(ctx, h, 10, &ev) == -ETIMEDOUT);
	for (int i = 0; i < ECHO_ROUNDS; i++) {
		char line[100], got[100];
		for (size_t k = 0; k < sizeof(line); k++)
			line[k] = (char)('a' + (i + k) % 26);
		CHECK(kr_io_send_wait(ctx, h, line, sizeof(line), 10000) == 0);
		size_t n = 0;
		while (n < sizeof(got)) {
			int r = kr_io_recv_wait(ctx, h, 10000, &ev);
			CHECK(r > 0 && (size_t)r <= sizeof(got) - n);
			if (r <= 0 || (size_t)r > sizeof(got) - n)
				return;
			memcpy(got + n, kr_io_event_data(ev), (size_t)r);
			n += (size_t)r;
		}
		CHECK(memcmp(got, line, sizeof(line)) == 0);
	}
	CHECK(kr_io_close(ctx, h) == 0);

	/* Bulk: more than the send queue holds, so kr_io_send_wait waits for room. */
	CHECK(kr_io_connect_wait(ctx, "127.0.0.1", port, 10000, &h) == 0);
	unsigned char *chunk = calloc(1, BULK_CHUNK);
	for (int i = 0; i < BULK_N && chunk; i++)
		CHECK(kr_io_send_wait(ctx, h, chunk, BULK_CHUNK, 30000) == 0);
	free(chunk);
	CHECK(kr_io_shutdown(ctx, h, SHUT_WR) == 0);
	uint64_t total = 0;
	size_t n = 0;
	while (n < sizeof(total)) {
		int r = kr_io_recv_wait(ctx, h, 30000, &ev);
		CHECK(r > 0 && (size_t)r <= sizeof(total) - n);
		if (r <= 0 || (size_t)r > sizeof(total) - n)
			return;
		memcpy((unsigned char *)&total + n, kr_io_event_data(ev), (size_t)r);
		n += (size_t)r;
	}
	CHECK(total == (uint64_t)BULK_CHUNK * BULK_N);
	atomic_fetch_add(&io_client_done, 1);
}

static void echo_server_fn(kr_ctx *ctx, void *arg)
{
	kr_handle l, c;
	const kr_io_event *ev;
	const kr_msg *m;
	CHECK(kr_io_listen(ctx, "127.0.0.1", 0, 16, &l) == 0);
	uint16_t port = (uint16_t)kr_io_port(ctx, l);
	kr_pid cl;
	CHECK(kr_spawn_fn(ctx, echo_client_fn, &port, sizeof(port), &cl) == 0);
	/* A message that comes meanwhile waits for a later receive. */
	CHECK(kr_send(ctx, kr_self(ctx), 42, NULL, 0) == 0);
	CHECK(kr_io_accept_wait(ctx, l, 10000, &c) == 0);
	for (;;) {
		int n = kr_io_recv_wait(ctx, c, 10000, &ev);
		CHECK(n >= 0);
		if (n <= 0)
			break;
		CHECK(kr_io_send_wait(ctx, c, kr_io_event_data(ev), (size_t)n, 10000) == 0);
	}
	CHECK(kr_io_close(ctx, c) == 0);
	CHECK(kr_io_accept_wait(ctx, l, 10000, &c) == 0);
	uint64_t total = 0;
	for (;;) {
		int n = kr_io_recv_wait(ctx, c, 30000, &ev);
		CHECK(n >= 0);
		if (n <= 0)
			break;
		total += (uint64_t)n;
	}
	CHECK(kr_io_send_wait(ctx, c, &total, sizeof(total), 10000) == 0);
	CHECK(kr_receive(ctx, NULL, NULL, 0, &m) == 0 && m->tag == 42);
	/* No accept came after the two: a timeout. */
	CHECK(kr_io_accept_wait(ctx, l, 10, &c) == -ETIMEDOUT);
	atomic_fetch_add(&io_server_done, 1);
	/* The handles close as the process ends (after the count is sent). */
}

static void file_fn(kr_ctx *ctx, void *arg)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/krill-fiber-%d-%u", (int)getpid(), *(unsigned *)arg);
	kr_handle f;
	const kr_io_event *ev;
	const kr_msg *m;
	unsigned char buf[4096];
	for (size_t k = 0; k < sizeof(buf); k++)
		buf[k] = (unsigned char)(k * 7);
	CHECK(kr_io_open_wait(ctx, path, O_CREAT | O_RDWR | O_TRUNC, 0600, 10000, &f) == 0);
	CHECK(kr_io_write_wait(ctx, f, 0, buf, sizeof(buf), 10000) == (int)sizeof(buf));
	CHECK(kr_io_fsync_wait(ctx, f, 10000) == 0);
	CHECK(kr_io_read_wait(ctx, f, 0, sizeof(buf), 10000, &ev) == (int)sizeof(buf));
	CHECK(ev->len == sizeof(buf) && memcmp(kr_io_event_data(ev), buf, sizeof(buf)) == 0);
	CHECK(kr_io_read_wait(ctx, f, sizeof(buf), 100, 10000, &ev) == 0); /* the end */
	/* A read given up on at once: its late event is dropped, never received. */
	int r = kr_io_read_wait(ctx, f, 0, 16, 0, &ev);
	CHECK(r == -ETIMEDOUT || r == 16);
	CHECK(kr_receive(ctx, NULL, NULL, 50, &m) == -ETIMEDOUT);
	CHECK(kr_io_close(ctx, f) == 0);
	CHECK(kr_io_open_wait(ctx, "/nonexistent/dir/x", O_RDONLY, 0, 10000, &f) == -ENOENT);
	unlink(path);
	atomic_fetch_add(&io_file_done, 1);
}

static void blocking_io_echo_client_and_server(void **st)
{
	for (unsigned i = 0; i < NMODES; i++) {
		reset();
		atomic_store(&io_server_done, 0);
		atomic_store(&io_client_done, 0);
		atomic_store(&io_file_done, 0);
		kr_runtime *rt = rt_make(&modes[i]);
		kr_pid p;
		kr_fn_opts o = {.stack = 64 * 1024};
		assert_int_equal(kr_rt_spawn_fn(rt, echo_server_fn, NULL, 0, &p), 0);
		assert_int_equal(kr_rt_spawn_fn(rt, file_fn, &i, sizeof(i), &p), 0);
		assert_int_equal(kr_rt_spawn_fn_opts(rt, file_fn, &(unsigned){i + 100},
						     sizeof(unsigned), &o, &p),
				 0);
		run(rt);
		no_bad();
		assert_int_equal(atomic_load(&io_server_done), 1);
		assert_int_equal(atomic_load(&io_client_done), 1);
		assert_int_equal(atomic_load(&io_file_done), 2);
	}
}

/* ---- moving between schedulers while blocked ----------------------------------------------- */

#define RING 200
#define LAPS 200
static _Atomic int moved, ring_done;

struct ring_arg {
	kr_pid next_of; /* filled by the first message */
};

/* A ring member: keeps a local array and a pointer to it across every receive, and notes
 * when it resumes on another scheduler than it blocked on. */
static void ring_fn(kr_ctx *ctx, void *arg)
{
	volatile uint64_t local[8];
	volatile uint64_t *self_ptr = local;
	for (int i = 0; i < 8; i++)
		local[i] = kr_self(ctx) * (i + 1);
	const kr_msg *m;
	CHECK(kr_receive(ctx, tag_is, (void *)1, KR_INFINITY, &m) == 0);
	kr_pid next;
	memcpy(&next, m->data, sizeof(next));
	unsigned where = ctx->s->id;
	bool counted = false;
	for (;;) {
		CHECK(kr_receive(ctx, NULL, NULL, KR_INFINITY, &m) == 0);
		if (ctx->s->id != where && !counted) {
			atomic_fetch_add(&moved, 1);
			counted = true;
		}
		where = ctx->s->id;
		CHECK(self_ptr == local);
		for (int i = 0; i < 8; i++)
			CHECK(self_ptr[i] == kr_self(ctx) * (i + 1));
		if (m->tag == 3)
			break;
		uint32_t hops;
		memcpy(&hops, m->data, sizeof(hops));
		if (hops == 0) {
			/* The last token home: stop the ring. */
			if (atomic_fetch_add(&ring_done, 1) + 1 == RING / 4)
				CHECK(kr_send(ctx, next, 3, NULL, 0) == 0);
			continue;
		}
		hops--;
		/* Some work per hop, so that the other schedulers wake and steal. */
		for (volatile int w = 0; w < 2000; w++)
			;
		CHECK(kr_send(ctx, next, 2, &hops, sizeof(hops)) == 0);
	}
	kr_send(ctx, next, 3, NULL, 0);
}

static void ring_run(const struct mode *md, size_t stack)
{
	kr_runtime *rt = rt_make(md);
	kr_pid p[RING];
	kr_fn_opts o = {.stack = stack};
	for (int i = 0; i < RING; i++)
		assert_int_equal(kr_rt_spawn_fn_opts(rt, ring_fn, NULL, 0, &o, &p[i]), 0);
	for (int i = 0; i < RING; i++)
		assert_int_equal(kr_rt_send(rt, p[i], 1, &p[(i + 1) % RING], sizeof(kr_pid)), 0);
	/* Many tokens at once: backlogs for the thieves. */
	for (int i = 0; i < RING; i += 4) {
		uint32_t hops = LAPS;
		assert_int_equal(kr_rt_send(rt, p[i], 2, &hops, sizeof(hops)), 0);
	}
	run(rt);
}

static void processes_move_between_schedulers_while_blocked(void **st)
{
	for (int stackmode = 0; stackmode < 2; stackmode++) {
		for (unsigned i = 0; i < NMODES; i++) {
			reset();
			atomic_store(&moved, 0);
			atomic_store(&ring_done, 0);
			ring_run(&modes[i], stackmode ? 32 * 1024 : 0);
			no_bad();
			assert_int_equal(atomic_load(&ring_done), RING / 4);
			if (modes[i].n > 1) {
				printf("# %s stack, %u schedulers%s: %d of %d processes resumed on "
				       "another scheduler\n",
				       stackmode ? "own" : "shared", modes[i].n,
				       modes[i].det ? " (deterministic)" : "", atomic_load(&moved),
				       RING);
				/* Threads steal as timing allows (a loaded machine may
				 * leave one scheduler asleep); the deterministic runs
				 * steal by their seed, every time. */
				if (modes[i].det)
					assert_true(atomic_load(&moved) > 0);
			}
		}
	}
}

/* ---- a stolen process whose run stack is busy ----------------------------------------------- */

/* A holds its run stack (it runs without blocking) while B, bound to the same run stack (A
 * spawns Bs until one is) and blocked, is given a message on the other scheduler. That scheduler
 * must not wait for the stack: it parks B and runs C, whose flag is what A waits for. Spinning
 * there (the old thief) would leave C unrun and A waiting until its deadline. */
static _Atomic int busy_ready, busy_flag, busy_seen, busy_b_ran;
static _Atomic kr_pid busy_b;
static _Atomic unsigned busy_b_where;

static void busy_b_fn(kr_ctx *ctx, void *arg)
{
	kr_pid a;
	memcpy(&a, arg, sizeof(a));
	/* Where its frames are: on the same run stack as A's, within a few
	 * KiB of A's (run stacks are 256 KiB mappings apart). */
	uintptr_t here = (uintptr_t)&a;
	CHECK(kr_send(ctx, a, 10, &here, sizeof(here)) == 0);
	const kr_msg *m;
	CHECK(kr_receive(ctx, NULL, NULL, KR_INFINITY, &m) == 0);
	if (m->tag == 12)
		return; /* not on A's run stack: let go */
	CHECK(m->tag == 13);
	atomic_store(&busy_b_where, ctx->s->id);
	atomic_store(&busy_b_ran, 1);
	CHECK(kr_send(ctx, a, 11, NULL, 0) == 0);
}

static void busy_a_fn(kr_ctx *ctx, void *arg)
{
	(void)arg;
	kr_pid self = kr_self(ctx), b = 0;
	uintptr_t here = (uintptr_t)&self;
	const kr_msg *m;
	bool matched = false;
	for (int tries = 0; tries < 100 && !matched; tries++) {
		CHECK(kr_spawn_fn(ctx, busy_b_fn, &self, sizeof(self), &b) == 0);
		CHECK(kr_receive(ctx, tag_is, (void *)10, KR_INFINITY, &m) == 0);
		uintptr_t there;
		memcpy(&there, m->data, sizeof(there));
		matched = (there > here ? there - here : here - there) < 64 * 1024;
		if (!matched)
			CHECK(kr_send(ctx, b, 12, NULL, 0) == 0);
	}
	CHECK(matched);
	atomic_store(&busy_b, b);
	atomic_store(&busy_ready, 1);
	/* Hold the run stack: no blocking call until C's flag, or a deadline (a bound on a
	 * wait, not a time asserted). */
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (atomic_load(&busy_flag))
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 20);
	atomic_store(&busy_seen, atomic_load(&busy_flag));
	CHECK(kr_receive(ctx, tag_is, (void *)11, KR_INFINITY, &m) == 0);
}

static void busy_c(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	(void)state;
	(void)msg;
	atomic_store(&busy_flag, 1);
	kr_exit(ctx, KR_NORMAL);
}

static void a_busy_run_stack_parks_the_process_and_frees_the_thread(void **st)
{
	(void)st;
	reset();
	atomic_store(&busy_ready, 0);
	atomic_store(&busy_flag, 0);
	atomic_store(&busy_seen, 0);
	atomic_store(&busy_b_ran, 0);
	kr_config cfg;
	kr_runtime *rt = 0;
	kr_config_init(&cfg);
	cfg.schedulers = 2;
	cfg.pin = 0;
	cfg.stats = 0;
	cfg.watchdog_ms = 0; /* A runs long on purpose */
	assert_int_equal(kr_runtime_new(&cfg, &rt), 0);
	kr_pid a, c;
	assert_int_equal(kr_rt_spawn(rt, busy_c, NULL, 0, &c), 0);
	assert_int_equal(kr_rt_spawn_fn(rt, busy_a_fn, NULL, 0, &a), 0);
	assert_int_equal(kr_start(rt), 0);
	for (int i = 0; i < 2000 && !atomic_load(&busy_ready) && !atomic_load(&bad); i++)
		usleep(10000);
	no_bad();
	assert_true(atomic_load(&busy_ready));
	uint64_t parks = atomic_load(&kri_fiber_parks);
	/* The other scheduler (A's is busy) takes this and runs B: B parks. */
	assert_int_equal(kr_rt_send(rt, atomic_load(&busy_b), 13, NULL, 0), 0);
	for (int i = 0; i < 1000 && atomic_load(&kri_fiber_parks) == parks; i++)
		usleep(10000);
	bool parked = atomic_load(&kri_fiber_parks) > parks;
	/* Then C, which only that scheduler can run now. */
	assert_int_equal(kr_rt_send(rt, c, 1, NULL, 0), 0);
	assert_true(guard_run(rt, true, 60));
	kr_runtime_free(rt);
	no_bad();
	/* C ran while A held the stack, B waiting for it: the thread was free. */
	assert_int_equal(atomic_load(&busy_seen), 1);
	assert_true(parked);
	assert_int_equal(atomic_load(&busy_b_ran), 1);
}

/* ---- a receive that finds its message queued ------------------------------------------------- */

/* The process sends itself N messages, which its scheduler queues for it together, then receives
 * them: each receive after the first finds its message queued and takes it there, without a
 * switch out and back (the old receive: a resume for each). Tag N+1, never sent, is asked for
 * first with a poll: refused messages stay queued, in order, for the receives after it. */
enum { QN = 64 };
static _Atomic uint64_t queued_resumes;

static void queued_fn(kr_ctx *ctx, void *arg)
{
	(void)arg;
	for (uint32_t i = 1; i <= QN; i++)
		CHECK(kr_send(ctx, kr_self(ctx), i, &i, sizeof(i)) == 0);
	const kr_msg *m;
	CHECK(kr_receive(ctx, tag_is, (void *)1, KR_INFINITY, &m) == 0 && m->tag == 1);
	uint64_t r0 = kri_fiber_resumes(ctx);
	CHECK(kr_receive(ctx, tag_is, (void *)(QN + 1), 0, &m) == -ETIMEDOUT);
	for (uint32_t i = 2; i <= QN; i++) {
		CHECK(kr_receive(ctx, NULL, NULL, KR_INFINITY, &m) == 0);
		CHECK(m->tag == i && m->len == sizeof(i) && memcmp(m->data, &i, sizeof(i)) == 0);
	}
	atomic_store(&queued_resumes, kri_fiber_resumes(ctx) - r0);
}

static void a_queued_message_is_taken_without_a_switch(void **st)
{
	(void)st;
	for (size_t k = 0; k < NMODES; k++) {
		for (int own = 0; own < 2; own++) {
			reset();
			atomic_store(&queued_resumes, UINT64_MAX);
			kr_runtime *rt = rt_make(&modes[k]);
			kr_fn_opts o = {.stack = own ? 32 * 1024 : 0};
			kr_pid p;
			assert_int_equal(kr_rt_spawn_fn_opts(rt, queued_fn, NULL, 0, &o, &p), 0);
			run(rt);
			no_bad();
			/* The poll's mark, behind the queue, is one resume; the rest are in place.
			 */
			assert_in_range(atomic_load(&queued_resumes), 0, QN / 4 - 1);
		}
	}
}

/* A function process given a flood, already queued, still yields after its run's budget: a
 * behaviour on the same scheduler, woken by it after its first message, runs before the flood
 * is all received. Taking queued messages in place without the budget would let one process
 * hold its scheduler for as long as its queue lasts. X sends the flood in one call, so it is
 * queued all at once. */
enum { FLOOD = 5000 };
static _Atomic int flood_other_ran;
static _Atomic uint32_t flood_before, flood_got;

static void flood_fn(kr_ctx *ctx, void *arg)
{
	kr_pid other;
	memcpy(&other, arg, sizeof(other));
	const kr_msg *m;
	uint32_t got = 0;
	bool seen = false;
	while (got < FLOOD) {
		CHECK(kr_receive(ctx, NULL, NULL, KR_INFINITY, &m) == 0);
		if (m->tag != 7)
			continue;
		if (++got == 1)
			CHECK(kr_send(ctx, other, 1, NULL, 0) == 0);
		if (!seen && atomic_load(&flood_other_ran)) {
			seen = true;
			atomic_store(&flood_before, got);
		}
	}
	atomic_store(&flood_got, got);
}

static void flood_other(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	(void)state;
	(void)msg;
	atomic_store(&flood_other_ran, 1);
	kr_exit(ctx, KR_NORMAL);
}

static void flood_x(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	(void)state;
	kr_pid f;
	memcpy(&f, msg->data, sizeof(f));
	for (uint32_t i = 0; i < FLOOD; i++)
		CHECK(kr_send(ctx, f, 7, &i, sizeof(i)) == 0);
	kr_exit(ctx, KR_NORMAL);
}

static void a_flooded_receiver_still_yields(void **st)
{
	(void)st;
	for (int own = 0; own < 2; own++) {
		reset();
		atomic_store(&flood_other_ran, 0);
		atomic_store(&flood_before, FLOOD);
		atomic_store(&flood_got, 0);
		const struct mode md = {1, 0, 0};
		kr_runtime *rt = rt_make(&md);
		kr_fn_opts o = {.stack = own ? 32 * 1024 : 0};
		kr_pid f, b, x;
		assert_int_equal(kr_rt_spawn(rt, flood_other, NULL, 0, &b), 0);
		assert_int_equal(kr_rt_spawn_fn_opts(rt, flood_fn, &b, sizeof(b), &o, &f), 0);
		assert_int_equal(kr_rt_spawn(rt, flood_x, NULL, 0, &x), 0);
		assert_int_equal(kr_rt_send(rt, x, 1, &f, sizeof(f)), 0);
		run(rt);
		no_bad();
		assert_int_equal(atomic_load(&flood_got), FLOOD);
		/* It ran after at most a few budgets' worth, not after the whole flood. */
		assert_in_range(atomic_load(&flood_before), 1, FLOOD / 2 - 1);
	}
}

/* ---- deterministic mode replays stackful processes ------------------------------------------ */

/* Each resume is folded into a trace hash: which process, on which scheduler, which hop. A
 * deterministic run (one thread) touches it alone. */
static uint64_t trace_hash;

static void trace(uint64_t v)
{
	trace_hash = (trace_hash ^ v) * 0x100000001b3ull;
}

static void trace_fn(kr_ctx *ctx, void *arg)
{
	const kr_msg *m;
	kr_pid next;
	memcpy(&next, arg, sizeof(next));
	CHECK(kr_receive(ctx, tag_is, (void *)1, KR_INFINITY, &m) == 0);
	memcpy(&next, m->data, sizeof(next));
	for (;;) {
		CHECK(kr_receive(ctx, NULL, NULL, KR_INFINITY, &m) == 0);
		if (m->tag == 3)
			break;
		uint32_t hops;
		memcpy(&hops, m->data, sizeof(hops));
		trace(kr_self(ctx) << 20 ^ (uint64_t)ctx->s->id << 16 ^ hops);
		if (hops == 0) {
			CHECK(kr_send(ctx, next, 3, NULL, 0) == 0);
			continue;
		}
		hops--;
		CHECK(kr_send(ctx, next, 2, &hops, sizeof(hops)) == 0);
	}
	kr_send(ctx, next, 3, NULL, 0);
}

static uint64_t trace_run(uint64_t seed)
{
	const struct mode md = {3, 1, seed};
	kr_runtime *rt = rt_make(&md);
	enum { N = 24 };
	kr_pid p[N];
	trace_hash = 0xcbf29ce484222325ull;
	for (int i = 0; i < N; i++) {
		kr_fn_opts o = {.stack = i % 3 == 0 ? 32 * 1024 : 0}; /* both stack modes */
		kr_pid none = 0;
		assert_int_equal(kr_rt_spawn_fn_opts(rt, trace_fn, &none, sizeof(none), &o, &p[i]),
				 0);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(kr_rt_send(rt, p[i], 1, &p[(i + 1) % N], sizeof(kr_pid)), 0);
	for (int i = 0; i < N; i += 6) {
		uint32_t hops = 300;
		assert_int_equal(kr_rt_send(rt, p[i], 2, &hops, sizeof(hops)), 0);
	}
	run(rt);
	return trace_hash;
}

static void deterministic_mode_replays_stackful_processes(void **st)
{
	(void)st;
	reset();
	uint64_t a = trace_run(7), b = trace_run(7), c = trace_run(42);
	no_bad();
	assert_true(a == b);
	/* The trace does see the scheduling: another seed, another run. */
	assert_true(a != c);
}

/* ---- a million blocked processes ------------------------------------------------------ */

#if defined(__SANITIZE_THREAD__)
#define MANY 4000 /* a TSan fiber each, and TSan allows 8,128 threads and fibers */
#elif SANITIZED
#define MANY 20000
#else
#define MANY 1000000
#endif
static _Atomic int blocked;

static void idle_fn(kr_ctx *ctx, void *arg)
{
	const kr_msg *m;
	atomic_fetch_add(&blocked, 1);
	kr_receive(ctx, NULL, NULL, KR_INFINITY, &m);
}

static void spawner_fn(kr_ctx *ctx, void *arg)
{
	kr_pid p;
	for (int i = 0; i < MANY; i++)
		CHECK(kr_spawn_fn(ctx, idle_fn, NULL, 0, &p) == 0);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &res) != 2)
		res = 0;
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void a_million_processes_block_in_receive(void **st)
{
	reset();
	atomic_store(&blocked, 0);
	kr_runtime *rt = rt_make(&modes[0]);
	kr_pid p;
	long before = rss_kib();
	assert_int_equal(kr_rt_spawn_fn(rt, spawner_fn, NULL, 0, &p), 0);
	assert_int_equal(kr_start(rt), 0);
	for (int i = 0; i < 6000 && atomic_load(&blocked) < MANY; i++)
		usleep(10000);
	long after = rss_kib();
	assert_int_equal(atomic_load(&blocked), MANY);
	assert_int_equal(kr_alive(rt), MANY);
	printf("# %d stackful processes blocked in kr_receive: %.0f bytes each (RSS)\n", MANY,
	       (double)(after - before) * 1024.0 / MANY);
	kr_stop(rt);
	assert_int_equal(kr_wait(rt), 0);
	kr_runtime_free(rt); /* frees them all, stacks too (ASan: no leak) */
	no_bad();
}

/* ---- faults and overflows ----------------------------------------------------------- */

static _Atomic int fault_downs, survivor_ok;
static _Atomic uint32_t fault_overflow[4];

static volatile int deep_limit = -1; /* never reached: it recurses until the guard page */

/* As tests/test_fault.c's: not built with UBSan (it would report the undefined behaviour
 * first) nor TSan (it would record the faulting store as an access of its own). */
#define FAULTY __attribute__((noinline, no_sanitize("undefined", "thread")))

static FAULTY int deep(volatile char *p, int n)
{
	volatile char buf[512];
	if (n == deep_limit)
		return 0;
	buf[0] = (char)n;
	buf[511] = *p;
	return deep(buf, n + 1) + buf[0];
}

static FAULTY void crash(int how)
{
	if (how == 0) {
		volatile uintptr_t addr = 8;
		*(volatile int *)addr = 1;
	} else {
		volatile char c = 0;
		deep(&c, 0);
	}
}

static void crash_fn(kr_ctx *ctx, void *arg)
{
	int how;
	memcpy(&how, arg, sizeof(how));
	const kr_msg *m;
	/* Block once first: the fault comes after a copy out and back in. */
	CHECK(kr_receive(ctx, NULL, NULL, 0, &m) == -ETIMEDOUT);
	crash(how);
}

/* ASan's instrumentation of a recursion that reaches a guard page reports (and then fails
 * describing the address) before the page faults: overflows are tested without it. */
#if defined(__SANITIZE_ADDRESS__)
#define NCRASH 1
#else
#define NCRASH 3
#endif

/* Spawns crashers (null pointer, overflow of the shared run stack, of an own stack) and
 * checks each ends alone with KR_FAULT, while it and another blocked process go on. */
static void watcher_fn(kr_ctx *ctx, void *arg)
{
	kr_pid c[3];
	uint64_t ref[3];
	for (int how = 0; how < NCRASH; how++) {
		int h = how ? 1 : 0;
		kr_fn_opts o = {.stack = how == 2 ? 64 * 1024 : 0};
		CHECK(kr_spawn_fn_opts(ctx, crash_fn, &h, sizeof(h), &o, &c[how]) == 0);
		CHECK(kr_monitor(ctx, c[how], &ref[how]) == 0);
	}
	volatile uint64_t mine = 0xfeedface;
	for (int i = 0; i < NCRASH; i++) {
		const kr_msg *m;
		CHECK(kr_receive(ctx, tag_is, (void *)(uintptr_t)KR_TAG_DOWN, 10000, &m) == 0);
		kr_exit_info x;
		info_of(m, &x);
		kr_fault f;
		memcpy(&f, x.payload, sizeof(f));
		CHECK(x.reason == KR_FAULT && f.signo == SIGSEGV);
		for (int k = 0; k < 3; k++)
			if (x.ref == ref[k])
				atomic_store(&fault_overflow[k], f.stack_overflow + 1);
		atomic_fetch_add(&fault_downs, 1);
	}
	CHECK(mine == 0xfeedface);
	CHECK(kr_sleep(ctx, 1) == 0);
	atomic_store(&survivor_ok, 1);
}

static void faults_and_overflows_end_the_process_alone(void **st)
{
	for (unsigned i = 0; i < NMODES; i++) {
		reset();
		atomic_store(&fault_downs, 0);
		atomic_store(&survivor_ok, 0);
		for (int k = 0; k < 3; k++)
			atomic_store(&fault_overflow[k], 0);
		kr_runtime *rt = rt_make(&modes[i]);
		kr_pid p;
		assert_int_equal(kr_rt_spawn_fn(rt, watcher_fn, NULL, 0, &p), 0);
		run(rt);
		no_bad();
		assert_int_equal(atomic_load(&fault_downs), NCRASH);
		assert_int_equal(atomic_load(&survivor_ok), 1);
		assert_int_equal(atomic_load(&fault_overflow[0]), 1); /* not an overflow */
		if (NCRASH == 3) {
			assert_int_equal(atomic_load(&fault_overflow[1]),
					 2); /* run stack's guard */
			assert_int_equal(atomic_load(&fault_overflow[2]),
					 2); /* own stack's guard */
		}
	}
}

/* ---- a function as a supervisor's child ------------------------------------------------ */

static _Atomic int sup_starts[2], sup_restarted;

/* Tells the driver (its arg) its pid and which child it is, then crashes when told. */
static void sup_child_fn(kr_ctx *ctx, void *arg)
{
	kr_pid drv;
	uint32_t which;
	memcpy(&drv, arg, sizeof(drv));
	memcpy(&which, (char *)arg + sizeof(drv), sizeof(which));
	atomic_fetch_add(&sup_starts[which], 1);
	kr_pid me[2] = {kr_self(ctx), which};
	CHECK(kr_send(ctx, drv, 10, me, sizeof(me)) == 0);
	const kr_msg *m;
	CHECK(kr_receive(ctx, tag_is, (void *)1, KR_INFINITY, &m) == 0);
	crash(0);
}

/* Starts a supervisor of two function children (shared and own stack), crashes each twice,
 * and checks each comes back with a new pid. */
static void sup_driver_fn(kr_ctx *ctx, void *arg)
{
	struct {
		kr_pid drv;
		uint32_t which, pad;
	} a[2] = {{kr_self(ctx), 0, 0}, {kr_self(ctx), 1, 0}};
	kr_child_spec spec[2] = {
	    {.id = "shared", .fn = sup_child_fn, .arg = &a[0], .arg_len = sizeof(a[0])},
	    {.id = "own",
	     .fn = sup_child_fn,
	     .arg = &a[1],
	     .arg_len = sizeof(a[1]),
	     .stack = 64 * 1024},
	};
	kr_sup_flags fl = {.strategy = KR_ONE_FOR_ONE, .intensity = 10, .period_ms = 60000};
	kr_pid sup, last[2] = {0, 0};
	CHECK(kr_sup_spawn(ctx, &fl, spec, 2, &sup) == 0);
	int seen[2] = {0, 0};
	/* Each reports three times: crashed after its first two (the order between the two
	 * children is the schedulers'). */
	for (int k = 0; k < 6; k++) {
		const kr_msg *m;
		CHECK(kr_receive(ctx, tag_is, (void *)10, 10000, &m) == 0);
		kr_pid me[2];
		memcpy(me, m->data, sizeof(me));
		CHECK(me[1] < 2 && me[0] != last[me[1]]);
		if (me[1] >= 2)
			return;
		last[me[1]] = me[0];
		if (++seen[me[1]] < 3)
			CHECK(kr_send(ctx, me[0], 1, NULL, 0) == 0);
	}
	CHECK(seen[0] == 3 && seen[1] == 3);
	atomic_store(&sup_restarted, 1);
	kr_exit(ctx, KR_SHUTDOWN); /* the supervisor shuts its children down */
}

static void supervisor_restarts_a_crashed_function_child(void **st)
{
	kr_child_spec bad[3] = {
	    {.id = "neither"},
	    {.id = "both", .start = stackless_b, .fn = sup_child_fn},
	    {.id = "stack", .start = stackless_b, .stack = 64 * 1024},
	};
	kr_sup_flags fl = {.strategy = KR_ONE_FOR_ONE, .intensity = 1, .period_ms = 1000};
	for (unsigned i = 0; i < NMODES; i++) {
		reset();
		atomic_store(&sup_restarted, 0);
		atomic_store(&sup_starts[0], 0);
		atomic_store(&sup_starts[1], 0);
		kr_runtime *rt = rt_make(&modes[i]);
		kr_pid p;
		for (int k = 0; k < 3; k++)
			assert_int_equal(kr_rt_sup_spawn(rt, &fl, &bad[k], 1, &p), -EINVAL);
		assert_int_equal(kr_rt_spawn_fn(rt, sup_driver_fn, NULL, 0, &p), 0);
		run(rt);
		no_bad();
		assert_int_equal(atomic_load(&sup_restarted), 1);
		assert_int_equal(atomic_load(&sup_starts[0]), 3);
		assert_int_equal(atomic_load(&sup_starts[1]), 3);
	}
}

/* ---- deep recursion on a stack of its own, links ------------------------------------------ */

static _Atomic uint64_t deep_sum;

static uint64_t sum_to(uint64_t n)
{
	volatile uint64_t pad[16];
	pad[0] = n;
	return n == 0 ? 0 : pad[0] + sum_to(n - 1) + (pad[15] = 0);
}

static void deep_fn(kr_ctx *ctx, void *arg)
{
	const kr_msg *m;
	CHECK(kr_receive(ctx, NULL, NULL, 0, &m) == -ETIMEDOUT); /* blocks once, then recurses */
	atomic_store(&deep_sum, sum_to(50000));
}

static _Atomic int linked_exit;

static void link_parent_fn(kr_ctx *ctx, void *arg)
{
	kr_pid c;
	kr_trap_exit(ctx, 1);
	int h = 0;
	CHECK(kr_spawn_fn_link(ctx, crash_fn, &h, sizeof(h), &c) == 0);
	const kr_msg *m;
	CHECK(kr_receive(ctx, tag_is, (void *)(uintptr_t)KR_TAG_EXIT, 10000, &m) == 0);
	kr_exit_info x;
	info_of(m, &x);
	CHECK(x.pid == c && x.reason == KR_FAULT);
	atomic_store(&linked_exit, 1);
}

static void deep_recursion_on_an_own_stack_and_links(void **st)
{
	for (unsigned i = 0; i < NMODES; i++) {
		reset();
		atomic_store(&deep_sum, 0);
		atomic_store(&linked_exit, 0);
		kr_runtime *rt = rt_make(&modes[i]);
		kr_pid p;
		kr_fn_opts o = {.stack = 64u << 20};
		assert_int_equal(kr_rt_spawn_fn_opts(rt, deep_fn, NULL, 0, &o, &p), 0);
		assert_int_equal(kr_rt_spawn_fn(rt, link_parent_fn, NULL, 0, &p), 0);
		run(rt);
		no_bad();
		assert_int_equal(atomic_load(&deep_sum), 50000ull * 50001 / 2);
		assert_int_equal(atomic_load(&linked_exit), 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#if !SANITIZED
		cmocka_unit_test(switch_round_trips_keep_registers),
#endif
		cmocka_unit_test(fn_runs_top_to_bottom_and_ends),
		cmocka_unit_test(selective_receive_keeps_refused_messages_in_order),
		cmocka_unit_test(receive_timeouts_polls_and_sleep),
		cmocka_unit_test(blocking_calls_refuse_a_behaviour),
		cmocka_unit_test(call_answers_times_out_and_sees_the_callee_die),
		cmocka_unit_test(blocking_io_echo_client_and_server),
		cmocka_unit_test(processes_move_between_schedulers_while_blocked),
		cmocka_unit_test(a_busy_run_stack_parks_the_process_and_frees_the_thread),
		cmocka_unit_test(a_queued_message_is_taken_without_a_switch),
		cmocka_unit_test(a_flooded_receiver_still_yields),
		cmocka_unit_test(deterministic_mode_replays_stackful_processes),
		cmocka_unit_test(faults_and_overflows_end_the_process_alone),
		cmocka_unit_test(deep_recursion_on_an_own_stack_and_links),
		cmocka_unit_test(supervisor_restarts_a_crashed_function_child),
		cmocka_unit_test(a_million_processes_block_in_receive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
