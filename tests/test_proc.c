/* Tests for processes through the public API: spawn and state, send and its errors, message
 * order, become, exit, selective receive, failure injection, and the runtime's life cycle as
 * processes see it. Several tests only prove their point under ASan/LSan (leaks at exit). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "alloc/arena.h"
#include "core/proc/proc.h" /* pid_make, pid_idx, pid_gen: to forge pids never issued */
#include "krill.h"
#include "tests/inject.h"

enum { T_GO = 1, T_DATA, T_MORE, T_END, T_LATE, T_A, T_B, T_C, T_READY, T_PID };

static kr_runtime *rt_new_seeded(unsigned schedulers, int deterministic, uint64_t seed)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.schedulers = schedulers;
	c.pin = 0;
	c.deterministic = deterministic;
	c.seed = seed;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_non_null(rt);
	return rt;
}

static kr_runtime *rt_new(unsigned schedulers, int deterministic)
{
	return rt_new_seeded(schedulers, deterministic, 7);
}

static kr_pid rt_spawn(kr_runtime *rt, kr_behaviour b, const void *state, size_t len)
{
	kr_pid pid = 0;
	assert_int_equal(kr_rt_spawn(rt, b, state, len, &pid), 0);
	assert_true(pid != 0);
	return pid;
}

static void go(kr_runtime *rt, kr_pid pid)
{
	assert_int_equal(kr_rt_send(rt, pid, T_GO, 0, 0), 0);
}

static int reset_injector(void **state)
{
	(void)state;
	kri_arena_fail_after(-1);
	return 0;
}

/* ---- spawn and state ------------------------------------------------------------------ */

static unsigned char seen_state[256];
static size_t seen_state_len;
static kr_pid seen_self;
static kr_runtime *seen_rt;
static int seen_calls;

static void b_record_state8(kr_ctx *ctx, void *state, const kr_msg *m)
{
	memcpy(seen_state, state, 8);
	seen_state_len = 8;
	seen_self = kr_self(ctx);
	seen_rt = kr_runtime_of(ctx);
	seen_calls++;
	kr_exit(ctx, KR_NORMAL);
}

static void spawn_from_main_thread_passes_a_copy_of_inline_state(void **st)
{
	kr_runtime *rt = rt_new(1, 0);
	uint64_t v = 0x1122334455667788ull;
	seen_calls = 0;
	memset(seen_state, 0, sizeof(seen_state));
	kr_pid pid = rt_spawn(rt, b_record_state8, &v, sizeof(v));
	v = 0; /* the process holds a copy */
	assert_int_equal(kr_alive(rt), 1);
	go(rt, pid);
	assert_int_equal(kr_run(rt), 0);
	uint64_t got;
	memcpy(&got, seen_state, 8);
	assert_true(got == 0x1122334455667788ull);
	assert_int_equal(seen_calls, 1);
	assert_true(seen_self == pid);
	assert_ptr_equal(seen_rt, rt);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

/* Big state: copied at spawn, handed to every call, and the process's own to change. */
static unsigned char big_first[100], big_second[100];

static void b_big_state(kr_ctx *ctx, void *state, const kr_msg *m)
{
	unsigned char *s = state;
	if (seen_calls++ == 0) {
		memcpy(big_first, s, 100);
		s[0] ^= 0xff;
		s[99] ^= 0xff;
	} else {
		memcpy(big_second, s, 100);
		kr_exit(ctx, KR_NORMAL);
	}
}

static void spawn_copies_big_state_and_keeps_it_for_the_process_life(void **st)
{
	kr_runtime *rt = rt_new(1, 0);
	unsigned char pat[100], want[100];
	for (int i = 0; i < 100; i++)
		pat[i] = (unsigned char)(3 * i + 1);
	memcpy(want, pat, 100);
	seen_calls = 0;
	kr_pid pid = rt_spawn(rt, b_big_state, pat, sizeof(pat));
	memset(pat, 0, sizeof(pat));
	go(rt, pid);
	go(rt, pid);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(seen_calls, 2);
	assert_memory_equal(big_first, want, 100);
	want[0] ^= 0xff;
	want[99] ^= 0xff;
	assert_memory_equal(big_second, want, 100);
	kr_runtime_free(rt);
}

/* A parent spawns children with inline, big and empty state and tells each to report. */
static kr_pid child_pid[3], child_self[3];
static int child_rc[3];
static unsigned char child_state[3][100];

static void b_child(kr_ctx *ctx, void *state, const kr_msg *m)
{
	int k;
	memcpy(&k, m->data, sizeof(k));
	child_self[k] = kr_self(ctx);
	if (k == 0)
		memcpy(child_state[0], state, 5);
	else if (k == 1)
		memcpy(child_state[1], state, 100);
	kr_exit(ctx, KR_NORMAL);
}

static void b_parent(kr_ctx *ctx, void *state, const kr_msg *m)
{
	unsigned char big[100];
	for (int i = 0; i < 100; i++)
		big[i] = (unsigned char)(255 - i);
	child_rc[0] = kr_spawn(ctx, b_child, "abcde", 5, &child_pid[0]);
	child_rc[1] = kr_spawn(ctx, b_child, big, sizeof(big), &child_pid[1]);
	child_rc[2] = kr_spawn(ctx, b_child, 0, 0, &child_pid[2]);
	memset(big, 0, sizeof(big));
	for (int k = 0; k < 3; k++)
		if (child_rc[k] == 0)
			kr_send(ctx, child_pid[k], T_GO, &k, sizeof(k));
	seen_self = kr_self(ctx);
	kr_exit(ctx, KR_NORMAL);
}

static void spawn_from_a_process_gives_children_their_state(void **st)
{
	kr_runtime *rt = rt_new(2, 0);
	memset(child_pid, 0, sizeof(child_pid));
	memset(child_self, 0, sizeof(child_self));
	kr_pid parent = rt_spawn(rt, b_parent, 0, 0);
	go(rt, parent);
	assert_int_equal(kr_run(rt), 0);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(child_rc[k], 0);
		assert_true(child_pid[k] != 0);
		assert_true(child_pid[k] != parent);
		assert_true(child_self[k] == child_pid[k]);
	}
	assert_true(child_pid[0] != child_pid[1] && child_pid[1] != child_pid[2] &&
		    child_pid[0] != child_pid[2]);
	assert_true(seen_self == parent);
	assert_memory_equal(child_state[0], "abcde", 5);
	for (int i = 0; i < 100; i++)
		assert_int_equal(child_state[1][i], 255 - i);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

/* max_msg bounds message payloads; the state given to a spawn is not a message. */
static void b_state_sum(kr_ctx *ctx, void *state, const kr_msg *m)
{
	unsigned sum = 0;
	for (int i = 0; i < 100; i++)
		sum += ((unsigned char *)state)[i];
	seen_calls = (int)sum;
	kr_exit(ctx, KR_NORMAL);
}

static void spawn_state_is_not_bounded_by_max_msg(void **st)
{
	kr_config c;
	kr_runtime *rt;
	unsigned char big[100];
	kr_pid pid = 0;
	memset(big, 1, sizeof(big));
	kr_config_init(&c);
	c.schedulers = 1;
	c.pin = 0;
	c.max_msg = 16;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	int rc = kr_rt_spawn(rt, b_state_sum, big, sizeof(big), &pid);
	seen_calls = 0;
	if (rc == 0)
		go(rt, pid);
	assert_int_equal(kr_run(rt), 0);
	kr_runtime_free(rt);
	assert_int_equal(rc, 0);
	assert_int_equal(seen_calls, 100);
}

/* ---- what a behaviour sees ----------------------------------------------------------- */

#define NSEEN 5
static uint32_t seen_tag[NSEEN], seen_len[NSEEN];
static unsigned char seen_data[NSEEN][4096];
static int seen_misaligned;

static void b_record_msgs(kr_ctx *ctx, void *state, const kr_msg *m)
{
	int *n = state;
	if (((uintptr_t)m->data & 15) != 0)
		seen_misaligned++;
	seen_tag[*n] = m->tag;
	seen_len[*n] = m->len;
	memcpy(seen_data[*n], m->data, m->len < 4096 ? m->len : 4096);
	if (++*n == NSEEN)
		kr_exit(ctx, KR_NORMAL);
}

static void behaviour_sees_tag_len_and_data_exactly(void **st)
{
	kr_runtime *rt = rt_new(1, 0);
	int zero = 0;
	unsigned char a[37], b[4096];
	for (int i = 0; i < 37; i++)
		a[i] = (unsigned char)(i * 7);
	for (int i = 0; i < 4096; i++)
		b[i] = (unsigned char)(i ^ (i >> 8));
	seen_misaligned = 0;
	memset(seen_len, 0xff, sizeof(seen_len));
	kr_pid pid = rt_spawn(rt, b_record_msgs, &zero, sizeof(zero));
	assert_int_equal(kr_rt_send(rt, pid, 0x1234, a, sizeof(a)), 0);
	assert_int_equal(kr_rt_send(rt, pid, 0, 0, 0), 0);
	assert_int_equal(kr_rt_send(rt, pid, KR_TAG_SYSTEM - 1, "z", 1), 0);
	assert_int_equal(kr_rt_send(rt, pid, 77, b, sizeof(b)), 0);
	assert_int_equal(kr_rt_send(rt, pid, 78, a, 0), 0); /* len 0 with data: nothing copied */
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(seen_tag[0], 0x1234);
	assert_int_equal(seen_len[0], 37);
	assert_memory_equal(seen_data[0], a, 37);
	assert_int_equal(seen_tag[1], 0);
	assert_int_equal(seen_len[1], 0);
	assert_int_equal(seen_tag[2], KR_TAG_SYSTEM - 1);
	assert_int_equal(seen_len[2], 1);
	assert_int_equal(seen_data[2][0], 'z');
	assert_int_equal(seen_tag[3], 77);
	assert_int_equal(seen_len[3], 4096);
	assert_memory_equal(seen_data[3], b, 4096);
	assert_int_equal(seen_tag[4], 78);
	assert_int_equal(seen_len[4], 0);
	assert_int_equal(seen_misaligned, 0);
	kr_runtime_free(rt);
}

/* ---- order ------------------------------------------------------------------------- */

#define NORDER  10000
#define MAXSEND 4

struct seqmsg {
	uint32_t sender, seq;
};

/* Receiver: state counts messages; expect[] per sender. Only the receiver writes these, and
 * its runs are ordered by the mailbox hand-off; main reads them after kr_run. */
static uint32_t expect_seq[MAXSEND];
static long order_bad, order_total, order_want;

static void b_seq_receiver(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct seqmsg s;
	if (m->tag != T_DATA || m->len != sizeof(s)) {
		order_bad++;
		return;
	}
	memcpy(&s, m->data, sizeof(s));
	if (s.sender >= MAXSEND || s.seq != expect_seq[s.sender])
		order_bad++;
	else
		expect_seq[s.sender]++;
	if (++order_total == order_want)
		kr_exit(ctx, KR_NORMAL);
}

struct sender {
	kr_pid to;
	uint32_t id, next;
};

/* Sends a stretch per call and continues through its own mailbox, so that it can move
 * between schedulers while the receiver runs. */
static void b_seq_sender(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct sender *s = state;
	for (int k = 0; k < 97 && s->next < NORDER; k++) {
		struct seqmsg msg = {s->id, s->next++};
		if (kr_send(ctx, s->to, T_DATA, &msg, sizeof(msg)) != 0)
			order_bad += 1000000;
	}
	if (s->next < NORDER)
		kr_send(ctx, kr_self(ctx), T_MORE, 0, 0);
	else
		kr_exit(ctx, KR_NORMAL);
}

static void run_order(unsigned schedulers, unsigned nsend)
{
	kr_runtime *rt = rt_new(schedulers, 0);
	memset(expect_seq, 0, sizeof(expect_seq));
	order_bad = order_total = 0;
	order_want = (long)nsend * NORDER;
	kr_pid rx = rt_spawn(rt, b_seq_receiver, 0, 0);
	for (uint32_t i = 0; i < nsend; i++) {
		struct sender s = {rx, i, 0};
		go(rt, rt_spawn(rt, b_seq_sender, &s, sizeof(s)));
	}
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(order_bad, 0);
	assert_int_equal(order_total, order_want);
	for (uint32_t i = 0; i < nsend; i++)
		assert_int_equal(expect_seq[i], NORDER);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

static void messages_from_one_process_arrive_in_order(void **st)
{
	run_order(1, 1);
}

static void messages_from_each_process_arrive_in_order_with_two_schedulers(void **st)
{
	run_order(2, MAXSEND);
}

/* Runs of sends to one receiver, then another, of every length up to past
 * the outbox's cap: each receiver sees its own messages in order. */
#define NALT 2000
static long alt_bad, alt_got[2];

static void b_alt_receiver(kr_ctx *ctx, void *state, const kr_msg *m)
{
	uint32_t *st = state; /* [0]: which receiver, [1]: next expected */
	uint32_t v;
	if (m->tag != T_DATA || m->len != sizeof(v)) {
		alt_bad++;
		return;
	}
	memcpy(&v, m->data, sizeof(v));
	if (v != st[1]++)
		alt_bad++;
	if (++alt_got[st[0]] == NALT)
		kr_exit(ctx, KR_NORMAL);
}

static void b_alt_sender(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid *to = state; /* to[0], to[1]; then the next values, the run length */
	uint32_t *next = (uint32_t *)&to[2];
	for (uint32_t run = 1, r = 0; next[0] < NALT || next[1] < NALT; run = run % 70 + 1, r ^= 1)
		for (uint32_t k = 0; k < run && next[r] < NALT; k++)
			if (kr_send(ctx, to[r], T_DATA, &next[r], sizeof(uint32_t)) == 0)
				next[r]++;
			else
				alt_bad += 1000;
	kr_exit(ctx, KR_NORMAL);
}

static void alternating_runs_of_sends_to_two_receivers_arrive_in_order(void **st)
{
	for (unsigned sch = 1; sch <= 2; sch++) {
		kr_runtime *rt = rt_new(sch, 0);
		alt_bad = alt_got[0] = alt_got[1] = 0;
		kr_pid s[4] = {0};
		for (uint32_t i = 0; i < 2; i++) {
			uint32_t rs[2] = {i, 0};
			s[i] = rt_spawn(rt, b_alt_receiver, rs, sizeof(rs));
		}
		go(rt, rt_spawn(rt, b_alt_sender, s, sizeof(s)));
		assert_int_equal(kr_run(rt), 0);
		assert_int_equal(alt_bad, 0);
		assert_int_equal(alt_got[0], NALT);
		assert_int_equal(alt_got[1], NALT);
		assert_int_equal(kr_alive(rt), 0);
		kr_runtime_free(rt);
	}
}

struct foreign {
	kr_runtime *rt;
	kr_pid to;
	uint32_t id;
	int errors;
};

static void *foreign_sender(void *arg)
{
	struct foreign *f = arg;
	for (uint32_t i = 0; i < NORDER; i++) {
		struct seqmsg msg = {f->id, i};
		if (kr_rt_send(f->rt, f->to, T_DATA, &msg, sizeof(msg)) != 0)
			f->errors++;
	}
	return 0;
}

static void messages_from_a_foreign_thread_arrive_in_order(void **st)
{
	kr_runtime *rt = rt_new(2, 0);
	pthread_t th[2];
	struct foreign f[2];
	memset(expect_seq, 0, sizeof(expect_seq));
	order_bad = order_total = 0;
	order_want = 2 * NORDER;
	kr_pid rx = rt_spawn(rt, b_seq_receiver, 0, 0);
	assert_int_equal(kr_start(rt), 0);
	for (uint32_t i = 0; i < 2; i++) {
		f[i] = (struct foreign){rt, rx, i, 0};
		assert_int_equal(pthread_create(&th[i], 0, foreign_sender, &f[i]), 0);
	}
	assert_int_equal(kr_wait(rt), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], 0);
		assert_int_equal(f[i].errors, 0);
	}
	assert_int_equal(order_bad, 0);
	assert_int_equal(expect_seq[0], NORDER);
	assert_int_equal(expect_seq[1], NORDER);
	kr_runtime_free(rt);
}

/* ---- become ------------------------------------------------------------------------ */

static char trace[64];
static int ntrace;

static void b_second(kr_ctx *ctx, void *state, const kr_msg *m);

static void b_first(kr_ctx *ctx, void *state, const kr_msg *m)
{
	trace[ntrace++] = 'F';
	kr_become(ctx, b_second);
}

static void b_second(kr_ctx *ctx, void *state, const kr_msg *m)
{
	trace[ntrace++] = 'S';
	if (ntrace == 4)
		kr_exit(ctx, KR_NORMAL);
}

static void become_switches_the_behaviour_for_later_messages(void **st)
{
	kr_runtime *rt = rt_new(1, 0);
	ntrace = 0;
	memset(trace, 0, sizeof(trace));
	kr_pid pid = rt_spawn(rt, b_first, 0, 0);
	for (int i = 0; i < 4; i++)
		go(rt, pid);
	assert_int_equal(kr_run(rt), 0);
	assert_string_equal(trace, "FSSS");
	kr_runtime_free(rt);
}

/* ---- exit and stale pids ------------------------------------------------------------ */

static int late_delivered, late_rc;

static void b_victim(kr_ctx *ctx, void *state, const kr_msg *m)
{
	if (m->tag == T_LATE) {
		late_delivered++;
		return;
	}
	kr_pid monitor;
	memcpy(&monitor, state, sizeof(monitor));
	kr_send(ctx, monitor, T_PID, 0, 0);
	kr_exit(ctx, KR_NORMAL);
}

static kr_pid victim_pid;

static void b_monitor(kr_ctx *ctx, void *state, const kr_msg *m)
{
	/* One scheduler: the victim's exit completed before this run. */
	late_rc = kr_send(ctx, victim_pid, T_LATE, "x", 1);
	kr_exit(ctx, KR_NORMAL);
}

static void send_to_an_exited_process_is_dropped(void **st)
{
	kr_runtime *rt = rt_new(1, 0);
	late_delivered = 0;
	late_rc = -1;
	kr_pid mon = rt_spawn(rt, b_monitor, 0, 0);
	victim_pid = rt_spawn(rt, b_victim, &mon, sizeof(mon));
	go(rt, victim_pid);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(late_rc, 0);
	assert_int_equal(late_delivered, 0);
	assert_int_equal(kr_alive(rt), 0);
	/* From a thread once the runtime has stopped: refused, not silently dropped. */
	assert_int_equal(kr_rt_send(rt, victim_pid, T_LATE, "y", 1), -ESHUTDOWN);
	kr_runtime_free(rt);
}

/* A chain of processes, each spawning its successor and exiting, so that slots get reused;
 * the last sends to every earlier pid: all dropped, none reaches a later incarnation. */
#define CHAIN 3000
static kr_pid chain[CHAIN];
static int chain_n, chain_bad;

static void b_chain(kr_ctx *ctx, void *state, const kr_msg *m)
{
	if (m->tag == T_LATE) {
		late_delivered++;
		return;
	}
	if (m->tag == T_END) {
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	chain[chain_n++] = kr_self(ctx);
	if (chain_n < CHAIN) {
		kr_pid next;
		if (kr_spawn(ctx, b_chain, 0, 0, &next) || kr_send(ctx, next, T_GO, 0, 0))
			chain_bad++;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	for (int i = 0; i + 1 < CHAIN; i++)
		if (kr_send(ctx, chain[i], T_LATE, 0, 0) != 0)
			chain_bad++;
	kr_send(ctx, kr_self(ctx), T_END, 0, 0);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void send_to_a_stale_pid_never_reaches_the_slot_s_next_process(void **st)
{
	kr_runtime *rt = rt_new(1, 0);
	chain_n = chain_bad = late_delivered = 0;
	go(rt, rt_spawn(rt, b_chain, 0, 0));
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(chain_n, CHAIN);
	assert_int_equal(chain_bad, 0);
	assert_int_equal(late_delivered, 0);
	assert_int_equal(kr_alive(rt), 0);
	static uint32_t idx[CHAIN];
	int reused = 0;
	for (int i = 0; i < CHAIN; i++)
		idx[i] = pid_idx(chain[i]);
	qsort(idx, CHAIN, sizeof(idx[0]), cmp_u32);
	for (int i = 1; i < CHAIN; i++)
		reused |= idx[i] == idx[i - 1];
	kr_runtime_free(rt);
	if (!reused)
		skip(); /* no slot was reused: nothing proven about stale pids */
}

static int esrch_rc[8], esrch_n;
static kr_pid forged[8];
static int nforged;

static void b_send_forged(kr_ctx *ctx, void *state, const kr_msg *m)
{
	esrch_n = 0;
	for (int i = 0; i < nforged; i++)
		esrch_rc[esrch_n++] = kr_send(ctx, forged[i], T_DATA, "q", 1);
	kr_exit(ctx, KR_NORMAL);
}

static void send_to_a_pid_never_issued_is_esrch(void **st)
{
	kr_runtime *rt = rt_new(1, 0);
	kr_pid p = rt_spawn(rt, b_send_forged, 0, 0);
	uint32_t i = pid_idx(p), g = pid_gen(p);
	assert_true(g & 1);
	nforged = 0;
	forged[nforged++] = 0;
	forged[nforged++] = pid_make(i, g + 2);      /* a later incarnation, not yet issued */
	forged[nforged++] = pid_make(i, g + 1);      /* an even generation is never a pid */
	forged[nforged++] = pid_make(i + 5, 1);      /* an allocated slot never used */
	forged[nforged++] = pid_make(1u << 24, 1);   /* beyond every allocated slot */
	forged[nforged++] = pid_make(UINT32_MAX, 1); /* beyond any slot */
	for (int k = 0; k < nforged; k++)
		assert_int_equal(kr_rt_send(rt, forged[k], T_DATA, "q", 1), -ESRCH);
	go(rt, p);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(esrch_n, nforged);
	for (int k = 0; k < nforged; k++)
		assert_int_equal(esrch_rc[k], -ESRCH);
	kr_runtime_free(rt);
}

/* ---- send errors change nothing ---------------------------------------------------- */

static int count_calls;
static uint32_t count_tags[16];
static int inproc_rc[8];

static void b_count(kr_ctx *ctx, void *state, const kr_msg *m)
{
	if (count_calls < 16)
		count_tags[count_calls] = m->tag;
	count_calls++;
	if (m->tag == T_END)
		kr_exit(ctx, KR_NORMAL);
}

static void b_bad_sends(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid to;
	char big[17] = {0};
	memcpy(&to, state, sizeof(to));
	inproc_rc[0] = kr_send(ctx, to, KR_TAG_SYSTEM, "a", 1);
	inproc_rc[1] = kr_send(ctx, to, KR_TAG_TIMEOUT, "a", 1);
	inproc_rc[2] = kr_send(ctx, to, UINT32_MAX, 0, 0);
	inproc_rc[3] = kr_send(ctx, to, T_DATA, 0, 1);
	inproc_rc[4] = kr_send(ctx, to, T_DATA, big, 17);
	inproc_rc[5] = kr_send(ctx, to, T_DATA, big, 16);
	inproc_rc[6] = kr_send(ctx, to, T_END, 0, 0);
	kr_exit(ctx, KR_NORMAL);
}

static void invalid_sends_are_refused_and_deliver_nothing(void **st)
{
	kr_config c;
	kr_runtime *rt;
	char big[17] = {0};
	kr_config_init(&c);
	c.schedulers = 1;
	c.pin = 0;
	c.max_msg = 16;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	count_calls = 0;
	memset(inproc_rc, 0x7f, sizeof(inproc_rc));
	kr_pid rx = rt_spawn(rt, b_count, 0, 0);
	kr_pid tx = rt_spawn(rt, b_bad_sends, &rx, sizeof(rx));
	assert_int_equal(kr_rt_send(rt, rx, KR_TAG_SYSTEM, "a", 1), -EINVAL);
	assert_int_equal(kr_rt_send(rt, rx, KR_TAG_TIMEOUT, 0, 0), -EINVAL);
	assert_int_equal(kr_rt_send(rt, rx, UINT32_MAX, 0, 0), -EINVAL);
	assert_int_equal(kr_rt_send(rt, rx, T_DATA, 0, 1), -EINVAL);
	assert_int_equal(kr_rt_send(rt, rx, T_DATA, big, 17), -EMSGSIZE);
	assert_int_equal(kr_rt_send(rt, rx, T_DATA, big, 16), 0);
	go(rt, tx);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(inproc_rc[0], -EINVAL);
	assert_int_equal(inproc_rc[1], -EINVAL);
	assert_int_equal(inproc_rc[2], -EINVAL);
	assert_int_equal(inproc_rc[3], -EINVAL);
	assert_int_equal(inproc_rc[4], -EMSGSIZE);
	assert_int_equal(inproc_rc[5], 0);
	assert_int_equal(inproc_rc[6], 0);
	/* Only the three valid messages arrived: main's, then the process's two. */
	assert_int_equal(count_calls, 3);
	assert_int_equal(count_tags[0], T_DATA);
	assert_int_equal(count_tags[1], T_DATA);
	assert_int_equal(count_tags[2], T_END);
	kr_runtime_free(rt);
}

/* ---- zero-copy sends ----------------------------------------------------------------- */

/* A call inside a behaviour that must succeed: counted (cmocka's asserts must not run on a
 * scheduler thread) and checked after the run. */
static _Atomic int beh_failed;
#define BEH_CHECK(x)                                      \
	do {                                              \
		if (!(x))                                 \
			atomic_fetch_add(&beh_failed, 1); \
	} while (0)

/* S reserves a big buffer, fills it in place and sends it, then a copied message and an empty
 * buffer; R must get the very bytes S wrote (the same address: no copy), in the order sent. */
#define ZBIG 10000
static kr_pid z_r;
static void *z_sent;
static const void *z_got;
static uint32_t z_tags[3], z_lens[3];
static int z_n, z_bad;

static void b_z_receiver(kr_ctx *ctx, void *state, const kr_msg *m)
{
	if (z_n < 3) {
		z_tags[z_n] = m->tag;
		z_lens[z_n] = m->len;
	}
	if (z_n == 0) {
		z_got = m->data;
		for (uint32_t i = 0; i < m->len; i++)
			z_bad += m->data[i] != (unsigned char)(i * 31);
	}
	if (++z_n == 3)
		kr_exit(ctx, KR_NORMAL);
}

static void b_z_sender(kr_ctx *ctx, void *state, const kr_msg *m)
{
	unsigned char *b = kr_msg_buf(ctx, ZBIG);
	BEH_CHECK(b != 0);
	for (uint32_t i = 0; i < ZBIG; i++)
		b[i] = (unsigned char)(i * 31);
	z_sent = b;
	BEH_CHECK(kr_send_buf(ctx, z_r, T_A, b) == 0);
	BEH_CHECK(kr_send(ctx, z_r, T_B, "copied", 6) == 0);
	void *empty = kr_msg_buf(ctx, 0);
	BEH_CHECK(empty != 0 && kr_send_buf(ctx, z_r, T_C, empty) == 0);
	kr_exit(ctx, KR_NORMAL);
}

static void send_buf_delivers_the_bytes_written_in_place_without_a_copy(void **st)
{
	for (unsigned n = 1; n <= 2; n++) {
		kr_runtime *rt = rt_new(n, 0);
		z_n = z_bad = 0;
		z_sent = 0;
		z_got = 0;
		beh_failed = 0;
		z_r = rt_spawn(rt, b_z_receiver, 0, 0);
		go(rt, rt_spawn(rt, b_z_sender, 0, 0));
		assert_int_equal(kr_run(rt), 0);
		assert_int_equal(beh_failed, 0);
		assert_int_equal(z_n, 3);
		assert_true(z_got == z_sent);
		assert_int_equal(z_bad, 0);
		assert_int_equal(z_tags[0], T_A);
		assert_int_equal(z_lens[0], ZBIG);
		assert_int_equal(z_tags[1], T_B);
		assert_int_equal(z_lens[1], 6);
		assert_int_equal(z_tags[2], T_C);
		assert_int_equal(z_lens[2], 0);
		kr_runtime_free(rt);
	}
}

/* Every refusal leaves the buffer the caller's, unchanged; a buffer sent, or dropped on the way
 * to a process that has exited, is no longer the caller's. One scheduler: R and D run only
 * when S has returned. */
enum {
	ZE_HUGE,
	ZE_TAG,
	ZE_NEVER,
	ZE_STRAY,
	ZE_INSIDE,
	ZE_SEND,
	ZE_RESEND,
	ZE_DEAD,
	ZE_DEAD_AGAIN,
	ZE_FULL,
	ZE_SELF,
	ZE_N
};
static int ze_rc[ZE_N];
static kr_pid ze_s, ze_r, ze_d;
static int ze_r_data, ze_s_back;

static void b_ze_r(kr_ctx *ctx, void *state, const kr_msg *m)
{
	switch (m->tag) {
	case T_DATA:
		ze_r_data = m->len == 64 && m->data[0] == 0xab && m->data[63] == 0xab;
		break;
	case T_READY:
		BEH_CHECK(kr_mailbox_limit(ctx, 1) == 0);
		BEH_CHECK(kr_send(ctx, ze_s, T_MORE, 0, 0) == 0);
		break;
	case T_A:
		kr_exit(ctx, KR_NORMAL);
		break;
	}
}

static void b_ze_d(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_exit(ctx, KR_NORMAL);
}

static void b_ze_s(kr_ctx *ctx, void *state, const kr_msg *m)
{
	unsigned char local[64], *b;
	uint64_t ref;
	switch (m->tag) {
	case T_GO:
		ze_rc[ZE_HUGE] = kr_msg_buf(ctx, (1u << 20) + 1) == 0;
		b = kr_msg_buf(ctx, 64);
		BEH_CHECK(b != 0);
		memset(b, 0xab, 64);
		ze_rc[ZE_TAG] = kr_send_buf(ctx, ze_r, KR_TAG_SYSTEM, b);
		ze_rc[ZE_NEVER] = kr_send_buf(ctx, pid_make(UINT32_MAX, 1), T_DATA, b);
		ze_rc[ZE_STRAY] = kr_send_buf(ctx, ze_r, T_DATA, local);
		ze_rc[ZE_INSIDE] = kr_send_buf(ctx, ze_r, T_DATA, b + 16);
		ze_rc[ZE_SEND] = kr_send_buf(ctx, ze_r, T_DATA, b);
		ze_rc[ZE_RESEND] = kr_send_buf(ctx, ze_r, T_DATA, b);
		BEH_CHECK(kr_monitor(ctx, ze_d, &ref) == 0);
		BEH_CHECK(kr_send(ctx, ze_d, T_END, 0, 0) == 0);
		break;
	case KR_TAG_DOWN:
		b = kr_msg_buf(ctx, 1000);
		BEH_CHECK(b != 0);
		ze_rc[ZE_DEAD] = kr_send_buf(ctx, ze_d, T_DATA, b);
		ze_rc[ZE_DEAD_AGAIN] = kr_send_buf(ctx, ze_d, T_DATA, b);
		BEH_CHECK(kr_send(ctx, ze_r, T_READY, 0, 0) == 0);
		break;
	case T_MORE: /* R's mailbox now holds one message at most */
		BEH_CHECK(kr_send(ctx, ze_r, T_A, 0, 0) == 0);
		b = kr_msg_buf(ctx, 32);
		BEH_CHECK(b != 0);
		for (int i = 0; i < 32; i++)
			b[i] = (unsigned char)i;
		ze_rc[ZE_FULL] = kr_send_buf(ctx, ze_r, T_B, b);
		ze_rc[ZE_SELF] = kr_send_buf(ctx, kr_self(ctx), T_C, b);
		break;
	case T_C:
		ze_s_back = m->len == 32;
		for (int i = 0; i < 32 && ze_s_back; i++)
			ze_s_back = m->data[i] == i;
		kr_exit(ctx, KR_NORMAL);
		break;
	}
}

static void send_buf_refusals_keep_the_buffer_and_change_nothing(void **st)
{
	kr_runtime *rt = rt_new(1, 0);
	memset(ze_rc, 0x55, sizeof(ze_rc));
	ze_r_data = ze_s_back = 0;
	beh_failed = 0;
	ze_r = rt_spawn(rt, b_ze_r, 0, 0);
	ze_d = rt_spawn(rt, b_ze_d, 0, 0);
	ze_s = rt_spawn(rt, b_ze_s, 0, 0);
	go(rt, ze_s);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(beh_failed, 0);
	assert_int_equal(ze_rc[ZE_HUGE], 1);
	assert_int_equal(ze_rc[ZE_TAG], -EINVAL);
	assert_int_equal(ze_rc[ZE_NEVER], -ESRCH);
	assert_int_equal(ze_rc[ZE_STRAY], -EINVAL);
	assert_int_equal(ze_rc[ZE_INSIDE], -EINVAL);
	assert_int_equal(ze_rc[ZE_SEND], 0);
	assert_int_equal(ze_rc[ZE_RESEND], -EINVAL);
	assert_int_equal(ze_rc[ZE_DEAD], 0);
	assert_int_equal(ze_rc[ZE_DEAD_AGAIN], -EINVAL);
	assert_int_equal(ze_rc[ZE_FULL], -EAGAIN);
	assert_int_equal(ze_rc[ZE_SELF], 0);
	assert_int_equal(ze_r_data, 1);
	assert_int_equal(ze_s_back, 1);
	kr_runtime_free(rt);
}

/* Buffers reserved and never sent go when the call returns: 200 calls each leave 1 MiB unsent
 * under a 64 MiB ceiling, and every reservation succeeds. */
static int zf_calls, zf_null;

static void b_zf(kr_ctx *ctx, void *state, const kr_msg *m)
{
	unsigned char *b = kr_msg_buf(ctx, 1u << 20);
	if (b)
		memset(b, zf_calls, 1u << 20);
	else
		zf_null++;
	/* Past the ceiling a send fails too: end rather than wait for nothing. */
	if (++zf_calls == 200 || kr_send(ctx, kr_self(ctx), T_MORE, 0, 0) != 0)
		kr_exit(ctx, KR_NORMAL);
}

static void unsent_buffers_are_freed_when_the_call_returns(void **st)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.schedulers = 1;
	c.pin = 0;
	c.max_memory = 64u << 20;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	zf_calls = zf_null = 0;
	beh_failed = 0;
	go(rt, rt_spawn(rt, b_zf, 0, 0));
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(beh_failed, 0);
	assert_int_equal(zf_calls, 200);
	assert_int_equal(zf_null, 0);
	kr_runtime_free(rt);
}

static void b_nop(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_exit(ctx, KR_NORMAL);
}

static int spawn_null_rc[2];

static void b_bad_spawns(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid out = 12345;
	spawn_null_rc[0] = kr_spawn(ctx, 0, 0, 0, &out);
	spawn_null_rc[1] = kr_spawn(ctx, b_nop, 0, 4, &out);
	if (out != 12345)
		spawn_null_rc[0] = 999;
	kr_exit(ctx, KR_NORMAL);
}

static void spawn_with_null_behaviour_or_state_is_einval(void **st)
{
	kr_runtime *rt = rt_new(1, 0);
	kr_pid out = 12345;
	assert_int_equal(kr_rt_spawn(rt, 0, 0, 0, &out), -EINVAL);
	assert_int_equal(kr_rt_spawn(rt, 0, "abc", 3, &out), -EINVAL);
	assert_int_equal(kr_rt_spawn(rt, b_nop, 0, 3, &out), -EINVAL);
	assert_int_equal(kr_rt_spawn(rt, b_nop, 0, 100, &out), -EINVAL);
	assert_true(out == 12345);
	assert_int_equal(kr_alive(rt), 0);
	kr_pid p = rt_spawn(rt, b_bad_spawns, 0, 0);
	go(rt, p);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(spawn_null_rc[0], -EINVAL);
	assert_int_equal(spawn_null_rc[1], -EINVAL);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

/* ---- pid space ----------------------------------------------------------------------- */

static kr_runtime *rt_max_procs(uint64_t max)
{
	kr_config c;
	kr_runtime *rt;
	kr_config_init(&c);
	c.schedulers = 1;
	c.pin = 0;
	c.max_procs = max;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	return rt;
}

static void b_wait_end(kr_ctx *ctx, void *state, const kr_msg *m)
{
	if (m->tag == T_END)
		kr_exit(ctx, KR_NORMAL);
}

static void eleventh_spawn_of_ten_allowed_is_eagain_and_changes_nothing(void **st)
{
	kr_runtime *rt = rt_max_procs(10);
	kr_pid pids[10], out = 777;
	for (int i = 0; i < 10; i++)
		pids[i] = rt_spawn(rt, b_wait_end, 0, 0);
	assert_int_equal(kr_alive(rt), 10);
	assert_int_equal(kr_rt_spawn(rt, b_wait_end, 0, 0, &out), -EAGAIN);
	assert_int_equal(kr_rt_spawn(rt, b_wait_end, "0123456789abcdef", 16, &out), -EAGAIN);
	assert_true(out == 777);
	assert_int_equal(kr_alive(rt), 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(kr_rt_send(rt, pids[i], T_END, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

/* The same limit reached by a process's spawns (the first process came from main). */
static int pspawn_rc[11];
static uint64_t pspawn_alive[11];
static kr_pid pspawn_pid[11];

static void b_spawner(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	for (int i = 0; i < 10; i++) {
		pspawn_pid[i] = 777;
		pspawn_rc[i] = kr_spawn(ctx, b_wait_end, 0, 0, &pspawn_pid[i]);
		pspawn_alive[i] = kr_alive(rt);
	}
	for (int i = 0; i < 10; i++)
		if (pspawn_rc[i] == 0)
			kr_send(ctx, pspawn_pid[i], T_END, 0, 0);
	kr_exit(ctx, KR_NORMAL);
}

static void pid_space_is_shared_by_spawns_from_main_and_from_processes(void **st)
{
	kr_runtime *rt = rt_max_procs(10);
	go(rt, rt_spawn(rt, b_spawner, 0, 0));
	assert_int_equal(kr_run(rt), 0);
	uint64_t alive = kr_alive(rt);
	kr_runtime_free(rt); /* before the asserts: a failure leaks nothing */
	/* 1 from main + 9 from the process fill the 10; the 10th from the process fails. */
	for (int i = 0; i < 9; i++) {
		assert_int_equal(pspawn_rc[i], 0);
		assert_int_equal(pspawn_alive[i], (uint64_t)i + 2);
	}
	assert_int_equal(pspawn_rc[9], -EAGAIN);
	assert_true(pspawn_pid[9] == 777);
	assert_int_equal(pspawn_alive[9], 10);
	assert_int_equal(alive, 0);
}

/* Exits give pids back: with 9 of 10 exited, a spawn from another thread must succeed
 * (allowing a moment for reclamation). */
static void pid_freed_by_exits_can_be_issued_again(void **st)
{
	kr_runtime *rt = rt_max_procs(10);
	kr_pid keeper = rt_spawn(rt, b_wait_end, 0, 0), p = 0;
	struct timespec ms1 = {0, 1000000};
	int rc = -1;
	for (int i = 0; i < 9; i++)
		go(rt, rt_spawn(rt, b_nop, 0, 0));
	assert_int_equal(kr_start(rt), 0);
	for (int i = 0; i < 2000 && kr_alive(rt) != 1; i++)
		nanosleep(&ms1, 0);
	assert_int_equal(kr_alive(rt), 1);
	for (int i = 0; i < 1000; i++) {
		rc = kr_rt_spawn(rt, b_nop, 0, 0, &p);
		if (rc != -EAGAIN)
			break;
		nanosleep(&ms1, 0);
	}
	if (rc == 0)
		go(rt, p);
	assert_int_equal(kr_rt_send(rt, keeper, T_END, 0, 0), 0);
	assert_int_equal(kr_wait(rt), 0);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
	assert_int_equal(rc, 0);
}

/* Slots freed by exits sit in the schedulers' caches and limbo; a spawn from a thread that
 * finds the table full asks for them back and waits for the answer (krill.h, kr_rt_spawn).
 * Two schedulers, so an exit may land on either. */
static kr_runtime *rt_max_procs_2s(uint64_t max)
{
	kr_config c;
	kr_runtime *rt;
	kr_config_init(&c);
	c.schedulers = 2;
	c.pin = 0;
	c.max_procs = max;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	return rt;
}

static void wait_alive(kr_runtime *rt, uint64_t n)
{
	struct timespec ms1 = {0, 1000000};
	while (kr_alive(rt) != n)
		nanosleep(&ms1, 0);
}

static void a_thread_spawn_gets_the_slot_of_one_of_two_processes_once_it_exited(void **st)
{
	kr_runtime *rt = rt_max_procs_2s(2);
	kr_pid keeper = 0, p = 0, q = 0;
	/* The keeper before the start: a runtime with nothing alive stops at once. */
	assert_int_equal(kr_rt_spawn(rt, b_wait_end, 0, 0, &keeper), 0);
	assert_int_equal(kr_start(rt), 0);
	assert_int_equal(kr_rt_spawn(rt, b_wait_end, 0, 0, &p), 0);
	assert_int_equal(kr_rt_spawn(rt, b_wait_end, 0, 0, &q), -EAGAIN); /* both alive */
	assert_int_equal(kr_rt_send(rt, p, T_END, 0, 0), 0);
	wait_alive(rt, 1);
	int rc = kr_rt_spawn(rt, b_wait_end, 0, 0, &q); /* at once: no retry */
	if (rc == 0)
		assert_int_equal(kr_rt_send(rt, q, T_END, 0, 0), 0);
	assert_int_equal(kr_rt_send(rt, keeper, T_END, 0, 0), 0);
	assert_int_equal(kr_wait(rt), 0);
	kr_runtime_free(rt);
	assert_int_equal(rc, 0);
}

/* max processes from a thread (one a keeper that stays), the rest exit; then a thread gets
 * every slot back: max - 1 spawns succeed, and the next is -EAGAIN. */
static void every_slot_comes_back_to_a_thread_once_its_processes_exited(uint64_t max)
{
	kr_runtime *rt = rt_max_procs_2s(max);
	kr_pid *pids = calloc(max, sizeof(*pids)), extra = 0;
	uint64_t got = 0;
	assert_non_null(pids);
	assert_int_equal(kr_rt_spawn(rt, b_wait_end, 0, 0, &pids[0]), 0); /* the keeper */
	assert_int_equal(kr_start(rt), 0);
	for (uint64_t i = 1; i < max; i++)
		assert_int_equal(kr_rt_spawn(rt, b_wait_end, 0, 0, &pids[i]), 0);
	assert_int_equal(kr_rt_spawn(rt, b_wait_end, 0, 0, &extra), -EAGAIN);
	for (uint64_t i = 1; i < max; i++)
		assert_int_equal(kr_rt_send(rt, pids[i], T_END, 0, 0), 0);
	wait_alive(rt, 1);
	for (uint64_t i = 1; i < max; i++) {
		if (kr_rt_spawn(rt, b_wait_end, 0, 0, &pids[i]) != 0)
			break;
		got++;
	}
	int rc_full = kr_rt_spawn(rt, b_wait_end, 0, 0, &extra);
	for (uint64_t i = 0; i < 1 + got; i++)
		assert_int_equal(kr_rt_send(rt, pids[i], T_END, 0, 0), 0);
	assert_int_equal(kr_wait(rt), 0);
	kr_runtime_free(rt);
	free(pids);
	assert_int_equal(got, max - 1);
	assert_int_equal(rc_full, -EAGAIN);
}

static void a_thread_gets_back_every_slot_of_1000(void **st)
{
	every_slot_comes_back_to_a_thread_once_its_processes_exited(1000);
}

static void a_thread_gets_back_every_slot_of_10000(void **st)
{
	every_slot_comes_back_to_a_thread_once_its_processes_exited(10000);
}

/* ---- memory exhaustion (failure injection) -------------------------------------------- */

static void send_under_memory_exhaustion_is_enomem_then_recovers(void **st)
{
	need_injector();
	kr_runtime *rt = rt_new(1, 0);
	count_calls = 0;
	kr_pid rx = rt_spawn(rt, b_count, 0, 0);
	kri_arena_fail_after(0);
	int rc = kr_rt_send(rt, rx, T_DATA, "abc", 3);
	int rc0 = kr_rt_send(rt, rx, T_END, 0, 0);
	kri_arena_fail_after(-1);
	assert_int_equal(rc, -ENOMEM);
	assert_int_equal(rc0, -ENOMEM);
	assert_int_equal(kr_rt_send(rt, rx, T_END, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(count_calls, 1); /* only the message sent after recovery */
	assert_int_equal(count_tags[0], T_END);
	kr_runtime_free(rt);
}

/* In a process: try kr_send with the n-th allocation failing, n = 0, 1, ... until it
 * succeeds; every failure must be -ENOMEM and deliver nothing. */
static int sweep_failures, sweep_bad, sweep_first_rc;

static void b_send_sweep(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid to;
	char payload[200];
	memcpy(&to, state, sizeof(to));
	memset(payload, 'p', sizeof(payload));
	for (long n = 0; n < 100; n++) {
		kri_arena_fail_after(n);
		int rc = kr_send(ctx, to, T_DATA, payload, sizeof(payload));
		kri_arena_fail_after(-1);
		if (n == 0)
			sweep_first_rc = rc;
		if (rc == 0)
			break;
		if (rc != -ENOMEM)
			sweep_bad++;
		sweep_failures++;
	}
	kr_send(ctx, to, T_END, 0, 0);
	kr_exit(ctx, KR_NORMAL);
}

static void send_from_a_process_under_memory_exhaustion_is_enomem_then_recovers(void **st)
{
	need_injector();
	kr_runtime *rt = rt_new(1, 0);
	count_calls = 0;
	sweep_failures = sweep_bad = 0;
	kr_pid rx = rt_spawn(rt, b_count, 0, 0);
	go(rt, rt_spawn(rt, b_send_sweep, &rx, sizeof(rx)));
	assert_int_equal(kr_run(rt), 0);
	/* A send copies its payload: with no memory at all it cannot succeed. */
	assert_int_equal(sweep_first_rc, -ENOMEM);
	assert_true(sweep_failures >= 1);
	assert_int_equal(sweep_bad, 0);
	assert_int_equal(count_calls, 2); /* the one successful T_DATA, then T_END */
	assert_int_equal(count_tags[0], T_DATA);
	assert_int_equal(count_tags[1], T_END);
	kr_runtime_free(rt);
}

static unsigned char big100[100];

static void b_check_big(kr_ctx *ctx, void *state, const kr_msg *m)
{
	if (memcmp(state, big100, 100) != 0)
		sweep_bad++;
	count_calls++;
	kr_exit(ctx, KR_NORMAL);
}

static void spawn_under_memory_exhaustion_is_enomem_then_recovers(void **st)
{
	need_injector();
	kr_runtime *rt = rt_new(1, 0);
	kr_pid out = 4242;
	int failures = 0, rc = 0;
	for (int i = 0; i < 100; i++)
		big100[i] = (unsigned char)i;
	count_calls = sweep_bad = 0;
	kr_pid first = rt_spawn(rt, b_wait_end, 0, 0); /* the slot table now exists */
	assert_int_equal(kr_alive(rt), 1);
	for (long n = 0; n < 100; n++) {
		kri_arena_fail_after(n);
		rc = kr_rt_spawn(rt, b_check_big, big100, sizeof(big100), &out);
		kri_arena_fail_after(-1);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_true(out == 4242);
		assert_int_equal(kr_alive(rt), 1);
		failures++;
	}
	/* 100 bytes of state are not inline: they must be allocated. */
	assert_true(failures >= 1);
	assert_int_equal(rc, 0);
	assert_int_equal(kr_alive(rt), 2);
	go(rt, out);
	assert_int_equal(kr_rt_send(rt, first, T_END, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(count_calls, 1); /* the spawned process ran, with intact state */
	assert_int_equal(sweep_bad, 0);
	kr_runtime_free(rt);
}

static int pspawn_failures, pspawn_final_rc;
static uint64_t pspawn_alive_before, pspawn_alive_bad;

static void b_spawn_sweep(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	kr_pid out = 4242;
	pspawn_alive_before = kr_alive(rt);
	for (long n = 0; n < 100; n++) {
		kri_arena_fail_after(n);
		int rc = kr_spawn(ctx, b_check_big, big100, sizeof(big100), &out);
		kri_arena_fail_after(-1);
		pspawn_final_rc = rc;
		if (rc == 0)
			break;
		if (rc != -ENOMEM || out != 4242 || kr_alive(rt) != pspawn_alive_before)
			pspawn_alive_bad++;
		pspawn_failures++;
	}
	if (pspawn_final_rc == 0)
		kr_send(ctx, out, T_GO, 0, 0);
	kr_exit(ctx, KR_NORMAL);
}

static void spawn_from_a_process_under_memory_exhaustion_is_enomem_then_recovers(void **st)
{
	need_injector();
	kr_runtime *rt = rt_new(1, 0);
	for (int i = 0; i < 100; i++)
		big100[i] = (unsigned char)(100 - i);
	count_calls = sweep_bad = 0;
	pspawn_failures = 0;
	pspawn_alive_bad = 0;
	pspawn_final_rc = -1;
	go(rt, rt_spawn(rt, b_spawn_sweep, 0, 0));
	assert_int_equal(kr_run(rt), 0);
	assert_true(pspawn_failures >= 1);
	assert_int_equal(pspawn_alive_bad, 0);
	assert_int_equal(pspawn_final_rc, 0);
	assert_int_equal(count_calls, 1); /* the child ran once, with intact state */
	assert_int_equal(sweep_bad, 0);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

/* ---- selective receive ----------------------------------------------------------------- */

struct tagged {
	uint32_t tag;
	int n;
};
static struct tagged handled[32];
static int nhandled;

static void log_msg(const kr_msg *m)
{
	int n = -1;
	if (m->len == sizeof(int))
		memcpy(&n, m->data, sizeof(n));
	if (nhandled < 32)
		handled[nhandled] = (struct tagged){m->tag, n};
	nhandled++;
}

static void b_after_a(kr_ctx *ctx, void *state, const kr_msg *m)
{
	log_msg(m);
	if (m->tag == T_C)
		kr_exit(ctx, KR_NORMAL);
}

/* Waits for A; defers B. On A: sends itself C, then takes the deferred back (undefer or
 * become, chosen by state). */
static void b_select(kr_ctx *ctx, void *state, const kr_msg *m)
{
	int *mode = state;
	if (*mode >= 2) { /* after A, undefer variant */
		b_after_a(ctx, state, m);
		return;
	}
	if (m->tag == T_B) {
		kr_defer(ctx);
		return;
	}
	log_msg(m);
	int c = 99;
	kr_send(ctx, kr_self(ctx), T_C, &c, sizeof(c));
	if (*mode == 0) {
		kr_undefer(ctx);
		*mode = 2;
	} else {
		kr_become(ctx, b_after_a);
	}
}

static void send_int(kr_runtime *rt, kr_pid to, uint32_t tag, int n)
{
	assert_int_equal(kr_rt_send(rt, to, tag, &n, sizeof(n)), 0);
}

static void run_select(int mode)
{
	kr_runtime *rt = rt_new(1, 0);
	nhandled = 0;
	kr_pid p = rt_spawn(rt, b_select, &mode, sizeof(mode));
	send_int(rt, p, T_B, 1);
	send_int(rt, p, T_B, 2);
	send_int(rt, p, T_B, 3);
	send_int(rt, p, T_A, 0);
	send_int(rt, p, T_B, 4);
	assert_int_equal(kr_run(rt), 0);
	struct tagged want[] = {{T_A, 0}, {T_B, 1}, {T_B, 2}, {T_B, 3}, {T_B, 4}, {T_C, 99}};
	assert_int_equal(nhandled, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(handled[i].tag, want[i].tag);
		assert_int_equal(handled[i].n, want[i].n);
	}
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

static void undefer_returns_deferred_messages_in_order_ahead_of_newer_ones(void **st)
{
	run_select(0);
}

static void become_returns_deferred_messages_in_order_ahead_of_newer_ones(void **st)
{
	run_select(1);
}

static int deferred_count;

static void b_defer_then_exit(kr_ctx *ctx, void *state, const kr_msg *m)
{
	if (m->tag == T_B) {
		deferred_count++;
		kr_defer(ctx);
		return;
	}
	kr_exit(ctx, KR_NORMAL);
}

static void exit_with_deferred_and_queued_messages_frees_them(void **st)
{
	kr_runtime *rt = rt_new(1, 0);
	char payload[1000];
	memset(payload, 'd', sizeof(payload));
	deferred_count = 0;
	kr_pid p = rt_spawn(rt, b_defer_then_exit, "bigstate-bigstate", 17);
	for (int i = 0; i < 5; i++)
		assert_int_equal(kr_rt_send(rt, p, T_B, payload, sizeof(payload)), 0);
	go(rt, p);                  /* exit here... */
	for (int i = 0; i < 5; i++) /* ...with these still queued */
		assert_int_equal(kr_rt_send(rt, p, T_B, payload, sizeof(payload)), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(deferred_count, 5);
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt); /* LSan: nothing of the process may be left */
}

/* ---- the runtime as processes see it --------------------------------------------------- */

static _Atomic int tree_runs;

static void b_tree(kr_ctx *ctx, void *state, const kr_msg *m)
{
	int depth;
	memcpy(&depth, state, sizeof(depth));
	atomic_fetch_add(&tree_runs, 1);
	for (int k = 0; depth > 0 && k < 3; k++) {
		int d = depth - 1;
		kr_pid c;
		if (kr_spawn(ctx, b_tree, &d, sizeof(d), &c) == 0)
			kr_send(ctx, c, T_GO, 0, 0);
	}
	kr_exit(ctx, KR_NORMAL);
}

static void run_returns_when_no_process_is_left(void **st)
{
	kr_runtime *rt = rt_new(2, 0);
	int depth = 5;
	atomic_store(&tree_runs, 0);
	for (int i = 0; i < 2; i++)
		go(rt, rt_spawn(rt, b_tree, &depth, sizeof(depth)));
	assert_int_equal(kr_alive(rt), 2);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(atomic_load(&tree_runs), 2 * (1 + 3 + 9 + 27 + 81 + 243));
	assert_int_equal(kr_alive(rt), 0);
	kr_runtime_free(rt);
}

static _Atomic long spins;
static _Atomic int stops;

static void b_stopper(kr_ctx *ctx, void *state, const kr_msg *m)
{
	atomic_fetch_add(&stops, 1);
	kr_stop(kr_runtime_of(ctx));
}

/* Never ends by itself: keeps sending to itself; at 1000 tells the stopper. */
static void b_spinner(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid stopper;
	memcpy(&stopper, state, sizeof(stopper));
	if (atomic_fetch_add(&spins, 1) + 1 == 1000)
		kr_send(ctx, stopper, T_GO, 0, 0);
	kr_send(ctx, kr_self(ctx), T_MORE, "spin", 4);
}

static void run_stop_from_a_process(int deterministic)
{
	kr_runtime *rt = rt_new(2, deterministic);
	atomic_store(&spins, 0);
	atomic_store(&stops, 0);
	kr_pid stopper = rt_spawn(rt, b_stopper, 0, 0);
	go(rt, rt_spawn(rt, b_spinner, &stopper, sizeof(stopper)));
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(atomic_load(&stops), 1);
	assert_true(atomic_load(&spins) >= 1000);
	assert_int_equal(kr_alive(rt), 2); /* stopped, not ended: both still alive */
	kr_runtime_free(rt);
}

static void stop_from_a_process_stops_the_runtime(void **st)
{
	run_stop_from_a_process(0);
}

static void stop_from_a_process_stops_a_deterministic_run(void **st)
{
	run_stop_from_a_process(1);
}

static int wait_rc;

static void b_wait_inside(kr_ctx *ctx, void *state, const kr_msg *m)
{
	wait_rc = kr_wait(kr_runtime_of(ctx));
	kr_exit(ctx, KR_NORMAL);
}

static void wait_from_inside_a_process_is_edeadlk(void **st)
{
	for (int det = 0; det < 2; det++) {
		kr_runtime *rt = rt_new(2, det);
		wait_rc = 12345;
		go(rt, rt_spawn(rt, b_wait_inside, 0, 0));
		assert_int_equal(kr_run(rt), 0);
		assert_int_equal(wait_rc, -EDEADLK);
		kr_runtime_free(rt);
	}
}

/* Leaves processes holding every kind of resource, then stops: kr_runtime_free must free
 * them all (LSan). */
static _Atomic int ready_count;

static void b_hoarder(kr_ctx *ctx, void *state, const kr_msg *m)
{
	int kind = *(int *)state;
	kr_pid coord;
	if (m->tag != T_GO) {
		kr_defer(ctx); /* keep everything after the first message */
		return;
	}
	memcpy(&coord, m->data, sizeof(coord));
	switch (kind) {
	case 0:
		kr_receive_timeout(ctx, 60000);
		break;
	case 1:
		kr_send_after(ctx, kr_self(ctx), 60000, T_DATA, "later", 5, 0);
		break;
	case 2:
		kr_register(kr_runtime_of(ctx), "hoarder", kr_self(ctx));
		break;
	case 3:
		kr_send(ctx, kr_self(ctx), T_B, "deferred", 8); /* comes back and is deferred */
		break;
	default:
		break;
	}
	kr_send(ctx, coord, T_READY, 0, 0);
}

static void b_coord(kr_ctx *ctx, void *state, const kr_msg *m)
{
	int *n = state;
	if (++*n == 5) {
		atomic_store(&ready_count, *n);
		kr_stop(kr_runtime_of(ctx));
	}
}

static void runtime_free_with_live_processes_frees_everything(void **st)
{
	kr_runtime *rt = rt_new(2, 0);
	int zero = 0;
	char bigstate[200];
	atomic_store(&ready_count, 0);
	kr_pid coord = rt_spawn(rt, b_coord, &zero, sizeof(zero));
	for (int kind = 0; kind < 5; kind++) {
		memset(bigstate, 0, sizeof(bigstate));
		memcpy(bigstate, &kind, sizeof(kind));
		kr_pid p = rt_spawn(rt, b_hoarder, bigstate, kind == 4 ? sizeof(bigstate) : 8);
		assert_int_equal(kr_rt_send(rt, p, T_GO, &coord, sizeof(coord)), 0);
	}
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(atomic_load(&ready_count), 5);
	assert_int_equal(kr_alive(rt), 6);
	assert_true(kr_whereis(rt, "hoarder") != 0);
	kr_runtime_free(rt);
}

/* Messages that arrive one at a time are handled where they lie in the mailbox word
 * (core/proc/mbox.c, mbox_peek). The receiver here defers most, hands them back every fourth
 * message, and sends itself a pair now and then while handling one, so the lone path meets
 * a deferral, a handed-back list and messages that arrive during the call. Expected order:
 * a flush (id % 4 == 3) is seen, then the three it hands back, oldest first, ahead of the
 * next ones; the receiver's own pairs come right after the message that sent them. */
#define NLONE 400
struct lone_rx {
	kr_pid tx;
	uint32_t seen[NLONE / 32 + 1];
	uint32_t log[2 * NLONE], n;
};
static void lone_data(kr_ctx *ctx, struct lone_rx *r, uint32_t id);

static void b_lone_rx(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct lone_rx *r = *(struct lone_rx **)state;
	uint32_t id;
	memcpy(&id, m->data, sizeof(id));
	if (m->tag == T_C) /* one of its own pair */
		r->log[r->n++] = 100000 + id;
	else
		lone_data(ctx, r, id);
	if (r->n == NLONE + NLONE / 2 - 2)
		kr_exit(ctx, KR_NORMAL);
}

static void lone_data(kr_ctx *ctx, struct lone_rx *r, uint32_t id)
{
	if (!(r->seen[id / 32] & (1u << id % 32)))
		kr_send(ctx, r->tx, T_A, 0, 0); /* the sender's cue for the next */
	uint32_t again = r->seen[id / 32] & (1u << id % 32);
	r->seen[id / 32] |= 1u << id % 32;
	if (id % 4 != 3 && !again) {
		kr_defer(ctx);
		return;
	}
	r->log[r->n++] = id;
	if (id % 4 == 3)
		kr_undefer(ctx);
	/* Not at the last flush: then nothing else arrives, and what it handed back must be
	 * handled without a later message to wake the receiver. */
	if (id % 4 == 3 && id != NLONE - 1) {
		uint32_t a = id, b = id + 1000;
		kr_send(ctx, kr_self(ctx), T_C, &a, sizeof(a));
		kr_send(ctx, kr_self(ctx), T_C, &b, sizeof(b));
	}
}

/* Sends the next id when the receiver has taken the last: each arrives alone. */
static void b_lone_tx(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct sender *s = state;
	uint32_t id = s->next++;
	assert_int_equal(kr_send(ctx, s->to, T_DATA, &id, sizeof(id)), 0);
	if (s->next == NLONE)
		kr_exit(ctx, KR_NORMAL);
}

static void run_lone(unsigned schedulers, int deterministic, uint64_t seed)
{
	kr_runtime *rt = rt_new_seeded(schedulers, deterministic, seed);
	struct lone_rx *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	kr_pid rx = rt_spawn(rt, b_lone_rx, &r, sizeof(r));
	struct sender s = {rx, 0, 0};
	r->tx = rt_spawn(rt, b_lone_tx, &s, sizeof(s));
	go(rt, r->tx);
	assert_int_equal(kr_run(rt), 0);
	kr_runtime_free(rt);
	/* Rebuild the expected log: per block of four, the flush, its pair (sent during the
	 * flush, so queued behind the three handed back), then the three. Self-sends may
	 * interleave with the sender's next ids, so they are checked apart, in order. */
	uint32_t next_block = 0, own_seen = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		uint32_t v = r->log[i];
		if (v >= 100000) {
			uint32_t id = v - 100000,
				 want = own_seen / 2 * 4 + 3 + (own_seen % 2) * 1000;
			assert_int_equal(id, want);
			own_seen++;
			continue;
		}
		uint32_t b = next_block;
		assert_true(b < NLONE);
		assert_int_equal(v, b + 3);
		for (uint32_t k = 0; k < 3; k++) {
			while (r->log[++i] >= 100000) {
				uint32_t id = r->log[i] - 100000;
				assert_int_equal(id, own_seen / 2 * 4 + 3 + (own_seen % 2) * 1000);
				own_seen++;
			}
			assert_int_equal(r->log[i], b + k);
		}
		next_block += 4;
	}
	assert_int_equal(next_block, NLONE);
	assert_int_equal(own_seen, NLONE / 2 - 2);
	free(r);
}

static void lone_messages_keep_order_with_deferrals_and_self_sends(void **st)
{
	run_lone(1, 0, 7);
	run_lone(2, 0, 7);
	for (uint64_t seed = 1; seed <= 20; seed++)
		run_lone(2, 1, seed);
}

static void runtime_free_before_start_frees_processes_and_undelivered_messages(void **st)
{
	kr_runtime *rt = rt_new(2, 0);
	char payload[300] = {0};
	for (int i = 0; i < 10; i++) {
		kr_pid p = rt_spawn(rt, b_wait_end, payload, (size_t)i * 30);
		assert_int_equal(kr_rt_send(rt, p, T_DATA, payload, sizeof(payload)), 0);
		assert_int_equal(kr_register(rt, (const char[]){(char)('a' + i), 0}, p), 0);
	}
	assert_int_equal(kr_alive(rt), 10);
	kr_runtime_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(spawn_from_main_thread_passes_a_copy_of_inline_state),
	    cmocka_unit_test(spawn_copies_big_state_and_keeps_it_for_the_process_life),
	    cmocka_unit_test(spawn_from_a_process_gives_children_their_state),
	    cmocka_unit_test(spawn_state_is_not_bounded_by_max_msg),
	    cmocka_unit_test(behaviour_sees_tag_len_and_data_exactly),
	    cmocka_unit_test(messages_from_one_process_arrive_in_order),
	    cmocka_unit_test(alternating_runs_of_sends_to_two_receivers_arrive_in_order),
	    cmocka_unit_test(messages_from_each_process_arrive_in_order_with_two_schedulers),
	    cmocka_unit_test(messages_from_a_foreign_thread_arrive_in_order),
	    cmocka_unit_test(become_switches_the_behaviour_for_later_messages),
	    cmocka_unit_test(send_to_an_exited_process_is_dropped),
	    cmocka_unit_test(send_to_a_stale_pid_never_reaches_the_slot_s_next_process),
	    cmocka_unit_test(send_to_a_pid_never_issued_is_esrch),
	    cmocka_unit_test(invalid_sends_are_refused_and_deliver_nothing),
	    cmocka_unit_test(send_buf_delivers_the_bytes_written_in_place_without_a_copy),
	    cmocka_unit_test(send_buf_refusals_keep_the_buffer_and_change_nothing),
	    cmocka_unit_test(unsent_buffers_are_freed_when_the_call_returns),
	    cmocka_unit_test(spawn_with_null_behaviour_or_state_is_einval),
	    cmocka_unit_test(eleventh_spawn_of_ten_allowed_is_eagain_and_changes_nothing),
	    cmocka_unit_test(pid_space_is_shared_by_spawns_from_main_and_from_processes),
	    cmocka_unit_test(pid_freed_by_exits_can_be_issued_again),
	    cmocka_unit_test(a_thread_spawn_gets_the_slot_of_one_of_two_processes_once_it_exited),
	    cmocka_unit_test(a_thread_gets_back_every_slot_of_1000),
	    cmocka_unit_test(a_thread_gets_back_every_slot_of_10000),
	    cmocka_unit_test_teardown(send_under_memory_exhaustion_is_enomem_then_recovers,
				      reset_injector),
	    cmocka_unit_test_teardown(
		send_from_a_process_under_memory_exhaustion_is_enomem_then_recovers,
		reset_injector),
	    cmocka_unit_test_teardown(spawn_under_memory_exhaustion_is_enomem_then_recovers,
				      reset_injector),
	    cmocka_unit_test_teardown(
		spawn_from_a_process_under_memory_exhaustion_is_enomem_then_recovers,
		reset_injector),
	    cmocka_unit_test(undefer_returns_deferred_messages_in_order_ahead_of_newer_ones),
	    cmocka_unit_test(become_returns_deferred_messages_in_order_ahead_of_newer_ones),
	    cmocka_unit_test(exit_with_deferred_and_queued_messages_frees_them),
	    cmocka_unit_test(lone_messages_keep_order_with_deferrals_and_self_sends),
	    cmocka_unit_test(run_returns_when_no_process_is_left),
	    cmocka_unit_test(stop_from_a_process_stops_the_runtime),
	    cmocka_unit_test(stop_from_a_process_stops_a_deterministic_run),
	    cmocka_unit_test(wait_from_inside_a_process_is_edeadlk),
	    cmocka_unit_test(runtime_free_with_live_processes_frees_everything),
	    cmocka_unit_test(runtime_free_before_start_frees_processes_and_undelivered_messages),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
