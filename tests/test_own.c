/* Tests for memory a process owns and its exit hooks (core/proc/own.c): kr_alloc, kr_realloc
 * and kr_free as the header defines them (alignment, the byte count, NULL, foreign pointers),
 * hooks run once each, newest first, with the reason, for every way a process ends (kr_exit, a
 * fault, KR_KILL, an exit signal, kr_runtime_free), after the process is dead and before its
 * links hear of it, a fault inside a hook contained; and a storm of thousands of processes
 * that own memory and end every way, after which LeakSanitizer (the ASan build) finds nothing. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/sched/sched.h"
#include "krill.h"
#include "tests/guard.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define ASAN 1
#else
#define ASAN 0
#endif

#define WATCHDOG_S 120.0

enum { T_GO = 1, T_CRASH, T_END, T_READY, T_PTR, T_FREE };

struct mode {
	unsigned n;
	int det;
	uint64_t seed;
};

static const struct mode modes[] = {{1, 0, 0}, {2, 0, 0}, {2, 1, 7}};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

static _Atomic int beh_bad; /* a check inside a behaviour or hook failed */
#define BEH_CHECK(x)                                                                            \
	do {                                                                                    \
		if (!(x)) {                                                                     \
			fprintf(stderr, "failed in a behaviour: %s (line %d)\n", #x, __LINE__); \
			atomic_fetch_add(&beh_bad, 1);                                          \
		}                                                                               \
	} while (0)

/* Lines the runtime said, collected (any thread). */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_lines[16][256];
static int log_n;

static void log_collect(void *arg, int level, const char *line)
{
	(void)arg;
	pthread_mutex_lock(&log_mu);
	if (level == KR_LOG_ERROR && log_n < 16)
		snprintf(log_lines[log_n], sizeof(log_lines[0]), "%s", line);
	log_n++;
	pthread_mutex_unlock(&log_mu);
}

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
	c.log = log_collect;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	atomic_store(&beh_bad, 0);
	pthread_mutex_lock(&log_mu);
	log_n = 0;
	pthread_mutex_unlock(&log_mu);
	return rt;
}

static kr_pid spawn(kr_runtime *rt, kr_behaviour b, const void *st, size_t len)
{
	kr_pid pid = 0;
	assert_int_equal(kr_rt_spawn(rt, b, st, len, &pid), 0);
	return pid;
}

static void post(kr_runtime *rt, kr_pid to, uint32_t tag, const void *d, size_t len)
{
	assert_int_equal(kr_rt_send(rt, to, tag, d, len), 0);
}

static void run_to_the_end(kr_runtime *rt)
{
	assert_true(guard_run(rt, false, WATCHDOG_S));
	assert_int_equal(kr_alive(rt), 0);
	assert_int_equal(atomic_load(&beh_bad), 0);
}

#define FAULTY __attribute__((noinline, no_sanitize("undefined", "thread")))

static FAULTY void fault_null(void)
{
	volatile int *volatile p = 0;
	// cppcheck-suppress nullPointer
	*p = 1; // NOLINT(clang-analyzer-core.NullDereference)
}

/* ---- kr_alloc, kr_realloc, kr_free ----------------------------------------------------- */

static _Alignas(16) unsigned char not_a_block[128];
static _Atomic int sem_done;

static uint64_t owned(kr_ctx *ctx)
{
	return kri_proc_owned_bytes(ctx->p);
}

static void b_sem_other(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_PTR) {
		void *p;
		kr_pid from;
		memcpy(&p, m->data, sizeof(p));
		memcpy(&from, m->data + sizeof(p), sizeof(from));
		/* Another process's block: readable, not ours to free. */
		BEH_CHECK(memcmp(p, "owned", 6) == 0);
		BEH_CHECK(kr_free(ctx, p) == -EINVAL);
		BEH_CHECK(kr_realloc(ctx, p, 10) == NULL);
		/* After a refused kr_free of a process that owns nothing, it still owns
		 * nothing: the header was not even read. */
		BEH_CHECK(owned(ctx) == 0);
		BEH_CHECK(kr_send(ctx, from, T_FREE, 0, 0) == 0);
		kr_exit(ctx, KR_NORMAL);
	}
}

static void b_sem(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_pid other;
	memcpy(&other, st, sizeof(other));
	if (m->tag == T_GO) {
		BEH_CHECK(owned(ctx) == 0);
		BEH_CHECK(kr_free(ctx, NULL) == 0);
		BEH_CHECK(kr_free(ctx, not_a_block + 64) == -EINVAL); /* owns nothing yet */
		unsigned char *a = kr_alloc(ctx, 100);
		BEH_CHECK(a && ((uintptr_t)a & 15) == 0);
		if (!a)
			return;
		memset(a, 0xab, 100);
		BEH_CHECK(owned(ctx) == 100 + 32);
		void *z = kr_alloc(ctx, 0);
		BEH_CHECK(z && z != a && ((uintptr_t)z & 15) == 0);
		BEH_CHECK(owned(ctx) == 100 + 32 + 32);
		/* Not blocks of this process: refused, nothing changes. */
		BEH_CHECK(kr_free(ctx, not_a_block + 64) == -EINVAL);
		BEH_CHECK(kr_free(ctx, a + 48) == -EINVAL);
		BEH_CHECK(kr_realloc(ctx, a + 48, 8) == NULL);
		BEH_CHECK(owned(ctx) == 100 + 32 + 32);
		BEH_CHECK(kr_free(ctx, z) == 0);
		BEH_CHECK(owned(ctx) == 100 + 32);
		/* realloc keeps the bytes, both ways. */
		unsigned char *b = kr_realloc(ctx, a, 5000);
		BEH_CHECK(b != NULL);
		if (!b)
			return;
		BEH_CHECK(b[0] == 0xab && b[99] == 0xab);
		BEH_CHECK(owned(ctx) == 5000 + 32);
		unsigned char *c = kr_realloc(ctx, b, 4);
		BEH_CHECK(c && c[0] == 0xab && c[3] == 0xab);
		BEH_CHECK(owned(ctx) == 4 + 32);
		unsigned char *d = kr_realloc(ctx, NULL, 7);
		BEH_CHECK(d != NULL);
		BEH_CHECK(owned(ctx) == 4 + 32 + 7 + 32);
		BEH_CHECK(kr_free(ctx, c) == 0);
		BEH_CHECK(kr_free(ctx, d) == 0);
		BEH_CHECK(owned(ctx) == 0);
		/* Too big for any arena: NULL, nothing held. */
		BEH_CHECK(kr_alloc(ctx, SIZE_MAX) == NULL);
		BEH_CHECK(kr_alloc(ctx, SIZE_MAX - 16) == NULL);
		BEH_CHECK(kr_realloc(ctx, NULL, SIZE_MAX) == NULL);
		BEH_CHECK(owned(ctx) == 0);
		BEH_CHECK(kr_on_exit(ctx, NULL, 0) == -EINVAL);
		/* A block handed to another process: it may read it, not free it. */
		char *s = kr_alloc(ctx, 6);
		BEH_CHECK(s != NULL);
		if (!s)
			return;
		memcpy(s, "owned", 6);
		unsigned char msg[sizeof(void *) + sizeof(kr_pid)];
		kr_pid self = kr_self(ctx);
		memcpy(msg, &s, sizeof(s));
		memcpy(msg + sizeof(s), &self, sizeof(self));
		BEH_CHECK(kr_send(ctx, other, T_PTR, msg, sizeof(msg)) == 0);
		kr_defer(ctx); /* nothing: just keep s in mind */
		return;
	}
	if (m->tag == T_FREE) {
		/* The other one refused it; it is still ours. */
		BEH_CHECK(owned(ctx) == 6 + 32);
		kr_undefer(ctx);
		atomic_store(&sem_done, 1);
		kr_exit(ctx, KR_NORMAL); /* the block goes with the process */
	}
}

static void alloc_free_and_realloc_keep_the_promises_of_the_header(void **st)
{
	(void)st;
	for (unsigned i = 0; i < NMODES; i++) {
		kr_runtime *rt = rt_make(&modes[i]);
		atomic_store(&sem_done, 0);
		kr_pid other = spawn(rt, b_sem_other, 0, 0);
		kr_pid p = spawn(rt, b_sem, &other, sizeof(other));
		post(rt, p, T_GO, 0, 0);
		run_to_the_end(rt);
		assert_int_equal(atomic_load(&sem_done), 1);
		kr_runtime_free(rt);
	}
}

static void null_ctx_is_refused(void **st)
{
	(void)st;
	assert_null(kr_alloc(NULL, 8));
	assert_null(kr_realloc(NULL, NULL, 8));
	assert_int_equal(kr_free(NULL, NULL), -EINVAL);
	assert_int_equal(kr_on_exit(NULL, (kr_exit_hook)fault_null, 0), -EINVAL);
}

/* ---- exit hooks ------------------------------------------------------------------------- */

enum ending { E_EXIT, E_USER, E_FAULT, E_KILL, E_SIGNAL, E_ALIVE, NENDING };

struct hook_rec {
	int order;
	kr_pid pid;
	uint32_t reason, len;
	unsigned char payload[KR_PAYLOAD_MAX];
	int saw_block; /* the block given as arg still held its bytes */
	int named;     /* kr_whereis still named the process */
};

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hook_rec hook_first[NENDING], hook_second[NENDING];
static int hook_seq;
static _Atomic int hooks_done[NENDING];
static kr_runtime *hook_rt;

struct hk_state {
	enum ending how;
	kr_pid watcher;
};

static void record(struct hook_rec *r, const void *arg, const kr_exit_info *info)
{
	pthread_mutex_lock(&hook_mu);
	r->order = ++hook_seq;
	r->pid = info->pid;
	r->reason = info->reason;
	r->len = info->len;
	memcpy(r->payload, info->payload, info->len);
	r->saw_block = memcmp(arg, "still here", 11) == 0;
	pthread_mutex_unlock(&hook_mu);
}

static enum ending how_of(const void *arg)
{
	enum ending how;
	memcpy(&how, (const char *)arg + 16, sizeof(how));
	return how;
}

/* Registered first: runs last. */
static void hook_a(void *arg, const kr_exit_info *info)
{
	enum ending how = how_of(arg);
	record(&hook_first[how], arg, info);
	atomic_fetch_add(&hooks_done[how], 1);
}

/* Registered second: runs first. */
static void hook_b(void *arg, const kr_exit_info *info)
{
	enum ending how = how_of(arg);
	char name[16];
	snprintf(name, sizeof(name), "hk%d", (int)how);
	record(&hook_second[how], arg, info);
	hook_second[how].named = kr_whereis(hook_rt, name) != 0;
	atomic_fetch_add(&hooks_done[how], 1);
}

static void b_hk(kr_ctx *ctx, void *st, const kr_msg *m)
{
	struct hk_state *s = st;
	if (m->tag == T_GO) {
		char *blk = kr_alloc(ctx, 32);
		BEH_CHECK(blk != NULL);
		if (!blk)
			return;
		memcpy(blk, "still here", 11);
		memcpy(blk + 16, &s->how, sizeof(s->how));
		BEH_CHECK(kr_on_exit(ctx, hook_a, blk) == 0);
		BEH_CHECK(kr_on_exit(ctx, hook_b, blk) == 0);
		char name[16];
		snprintf(name, sizeof(name), "hk%d", (int)s->how);
		BEH_CHECK(kr_register(kr_runtime_of(ctx), name, kr_self(ctx)) == 0);
		BEH_CHECK(kr_send(ctx, s->watcher, T_READY, &s->how, sizeof(s->how)) == 0);
		return;
	}
	if (m->tag != T_END)
		return;
	static const unsigned char pay[3] = {1, 2, 3};
	switch (s->how) {
	case E_EXIT:
		kr_exit(ctx, KR_NORMAL);
		break;
	case E_USER:
		kr_exit_with(ctx, KR_REASON_USER + 1, pay, sizeof(pay));
		break;
	case E_FAULT:
		fault_null();
		break;
	default:
		break;
	}
}

/* Monitors every hk process; kills, links, ends them once each is ready; on each DOWN checks
 * that the hooks already ran; stops the runtime when all but E_ALIVE are down. */
static kr_pid hk_pids[NENDING];
static int hk_ready, hk_downs;

static void b_hk_watch(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_GO) {
		hk_ready = hk_downs = 0;
		for (int i = 0; i < NENDING; i++) {
			struct hk_state s = {(enum ending)i, kr_self(ctx)};
			uint64_t ref;
			BEH_CHECK(kr_spawn(ctx, b_hk, &s, sizeof(s), &hk_pids[i]) == 0);
			BEH_CHECK(kr_monitor(ctx, hk_pids[i], &ref) == 0);
			BEH_CHECK(kr_send(ctx, hk_pids[i], T_GO, 0, 0) == 0);
		}
		return;
	}
	if (m->tag == T_READY) {
		enum ending how;
		memcpy(&how, m->data, sizeof(how));
		hk_ready++;
		if (how == E_KILL)
			BEH_CHECK(kr_send_exit(ctx, hk_pids[how], KR_KILL) == 0);
		else if (how == E_SIGNAL)
			BEH_CHECK(kr_send_exit(ctx, hk_pids[how], KR_REASON_USER + 2) == 0);
		else if (how != E_ALIVE)
			BEH_CHECK(kr_send(ctx, hk_pids[how], T_END, 0, 0) == 0);
	}
	if (m->tag == KR_TAG_DOWN) {
		kr_exit_info x;
		memcpy(&x, m->data, m->len);
		for (int i = 0; i < NENDING; i++)
			if (hk_pids[i] == x.pid)
				/* The hooks ran before the monitors were told. */
				BEH_CHECK(atomic_load(&hooks_done[i]) == 2);
		hk_downs++;
	}
	/* E_ALIVE ready (its hooks registered), all the others down. */
	if (hk_downs == NENDING - 1 && hk_ready == NENDING)
		kr_stop(kr_runtime_of(ctx));
}

static void hooks_run_newest_first_once_for_every_way_a_process_ends(void **st)
{
	(void)st;
	for (unsigned i = 0; i < NMODES; i++) {
		kr_runtime *rt = rt_make(&modes[i]);
		hook_rt = rt;
		memset(hook_first, 0, sizeof(hook_first));
		memset(hook_second, 0, sizeof(hook_second));
		hook_seq = 0;
		for (int k = 0; k < NENDING; k++)
			atomic_store(&hooks_done[k], 0);
		kr_pid w = spawn(rt, b_hk_watch, 0, 0);
		post(rt, w, T_GO, 0, 0);
		assert_true(guard_run(rt, false, WATCHDOG_S));
		assert_int_equal(atomic_load(&beh_bad), 0);
		/* E_ALIVE is still alive: its hooks run in kr_runtime_free. */
		assert_int_equal(atomic_load(&hooks_done[E_ALIVE]), 0);
		kr_runtime_free(rt);
		for (int k = 0; k < NENDING; k++) {
			static const uint32_t want[NENDING] = {
			    KR_NORMAL, KR_REASON_USER + 1, KR_FAULT,
			    KR_KILLED, KR_REASON_USER + 2, KR_SHUTDOWN};
			assert_int_equal(atomic_load(&hooks_done[k]), 2);
			assert_true(hook_second[k].order < hook_first[k].order);
			assert_true(hook_first[k].pid == hk_pids[k]);
			assert_true(hook_second[k].pid == hk_pids[k]);
			assert_int_equal(hook_first[k].reason, want[k]);
			assert_int_equal(hook_second[k].reason, want[k]);
			assert_true(hook_first[k].saw_block && hook_second[k].saw_block);
			assert_false(hook_second[k].named); /* dead to the world */
		}
		assert_int_equal(hook_first[E_USER].len, 3);
		assert_int_equal(hook_first[E_USER].payload[2], 3);
		assert_int_equal(hook_first[E_FAULT].len, sizeof(kr_fault));
		kr_fault f;
		memcpy(&f, hook_first[E_FAULT].payload, sizeof(f));
		assert_int_equal(f.signo, SIGSEGV);
		assert_true(f.addr == 0);
		assert_int_equal(hook_first[E_EXIT].len, 0);
		/* Every one was monitored: no crash report. */
		assert_int_equal(log_n, 0);
	}
}

/* ---- a fault inside a hook -------------------------------------------------------------- */

static _Atomic int hf_ran_a, hf_ran_c, hf_after;

static void hook_ok_a(void *arg, const kr_exit_info *info)
{
	atomic_fetch_add(&hf_ran_a, 1);
}

static FAULTY void hook_faulty(void *arg, const kr_exit_info *info)
{
	fault_null();
}

static void hook_ok_c(void *arg, const kr_exit_info *info)
{
	/* A call any thread may make, from a hook: to the bystander. */
	kr_pid to;
	memcpy(&to, arg, sizeof(to));
	if (to)
		kr_rt_send(hook_rt, to, T_GO, 0, 0);
	atomic_fetch_add(&hf_ran_c, 1);
}

static kr_pid hf_bystander;

static void b_hf(kr_ctx *ctx, void *st, const kr_msg *m)
{
	BEH_CHECK(kr_on_exit(ctx, hook_ok_a, 0) == 0);
	BEH_CHECK(kr_on_exit(ctx, hook_faulty, 0) == 0);
	BEH_CHECK(kr_on_exit(ctx, hook_ok_c, st) == 0);
	if (m->tag == T_END)
		kr_exit(ctx, KR_NORMAL);
}

static void b_hf_bystander(kr_ctx *ctx, void *st, const kr_msg *m)
{
	/* The scheduler that ran the faulty hook goes on: this one runs. */
	atomic_fetch_add(&hf_after, 1);
	kr_exit(ctx, KR_NORMAL);
}

static void a_fault_in_an_exit_hook_ends_that_hook_alone(void **st)
{
	(void)st;
	for (unsigned i = 0; i < NMODES; i++) {
		kr_runtime *rt = rt_make(&modes[i]);
		hook_rt = rt;
		atomic_store(&hf_ran_a, 0);
		atomic_store(&hf_ran_c, 0);
		atomic_store(&hf_after, 0);
		hf_bystander = spawn(rt, b_hf_bystander, 0, 0);
		kr_pid p = spawn(rt, b_hf, &hf_bystander, sizeof(hf_bystander));
		/* One more alive at kr_runtime_free: its faulty hook runs on this thread. */
		kr_pid none = 0;
		kr_pid q = spawn(rt, b_hf, &none, sizeof(none));
		post(rt, p, T_END, 0, 0);
		post(rt, q, T_GO, 0, 0);
		/* q stays alive: the run does not end by itself. */
		for (int k = 0; k < 600000 && atomic_load(&hf_after) == 0; k++) {
			if (modes[i].det)
				break;
			if (k == 0)
				assert_int_equal(kr_start(rt), 0);
			usleep(100);
		}
		if (modes[i].det) {
			/* Deterministic: the run ends when nothing is left to do. */
			assert_int_equal(kr_run(rt), 0);
		} else {
			kr_stop(rt);
			assert_int_equal(kr_wait(rt), 0);
		}
		assert_int_equal(atomic_load(&hf_after), 1);
		assert_int_equal(atomic_load(&hf_ran_a), 1);
		assert_int_equal(atomic_load(&hf_ran_c), 1);
		pthread_mutex_lock(&log_mu);
		assert_int_equal(log_n, 1);
		char want[128];
		snprintf(want, sizeof(want),
			 "krill: process <%u.%u> exit hook faulted: SIGSEGV at 0x0, pc 0x",
			 (unsigned)(uint32_t)p, (unsigned)(p >> 32));
		assert_memory_equal(log_lines[0], want, strlen(want));
		pthread_mutex_unlock(&log_mu);
		kr_runtime_free(rt);
		/* q's hooks: the same, on this thread, contained. */
		assert_int_equal(atomic_load(&hf_ran_a), 2);
		assert_int_equal(atomic_load(&hf_ran_c), 2);
		pthread_mutex_lock(&log_mu);
		assert_int_equal(log_n, 2);
		snprintf(want, sizeof(want),
			 "krill: process <%u.%u> exit hook faulted: SIGSEGV at 0x0, pc 0x",
			 (unsigned)(uint32_t)q, (unsigned)(q >> 32));
		assert_memory_equal(log_lines[1], want, strlen(want));
		pthread_mutex_unlock(&log_mu);
		assert_int_equal(atomic_load(&beh_bad), 0);
	}
}

/* ---- a crash storm: nothing leaks ------------------------------------------------------- */

enum { S_FAULT, S_KILL, S_EXIT, S_ALIVE, S_KINDS };

static _Atomic int storm_hooks[S_KINDS];
static int storm_ready, storm_downs, storm_n;
static int storm_reason[S_KINDS];

/* Frees what the process malloc'ed outside krill: the hook's other use. */
static void storm_hook(void *arg, const kr_exit_info *info)
{
	int kind = *(int *)arg;
	free(arg);
	atomic_fetch_add(&storm_hooks[kind], 1);
}

static void b_storm_worker(kr_ctx *ctx, void *st, const kr_msg *m)
{
	int kind;
	kr_pid boss;
	memcpy(&kind, st, sizeof(kind));
	memcpy(&boss, (char *)st + 8, sizeof(boss));
	if (m->tag != T_GO)
		return;
	/* A few blocks of every size class the arena has: cached, slow path, large. */
	static const size_t sizes[] = {1, 24, 96, 200, 4000, 70000};
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *b = kr_alloc(ctx, sizes[i]);
		BEH_CHECK(b != NULL);
		if (b)
			b[sizes[i] - 1] = 1;
	}
	void *gone = kr_alloc(ctx, 50);
	BEH_CHECK(kr_free(ctx, gone) == 0);
	int *outside = malloc(sizeof(int));
	BEH_CHECK(outside != NULL);
	if (!outside)
		return;
	*outside = kind;
	BEH_CHECK(kr_on_exit(ctx, storm_hook, outside) == 0);
	BEH_CHECK(kr_send(ctx, boss, T_READY, &kind, sizeof(kind)) == 0);
	if (kind == S_FAULT)
		fault_null();
	else if (kind == S_EXIT)
		kr_exit(ctx, KR_NORMAL);
}

/* The killed kind tells the boss its pid to be killed by (a kill sent before its T_GO was
 * taken would end it before it owned anything). */
static void b_storm_worker_k(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_pid boss, self = kr_self(ctx);
	memcpy(&boss, (char *)st + 8, sizeof(boss));
	b_storm_worker(ctx, st, m);
	if (m->tag == T_GO)
		BEH_CHECK(kr_send(ctx, boss, T_PTR, &self, sizeof(self)) == 0);
}

static void b_storm_boss(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_GO) {
		storm_ready = storm_downs = 0;
		memset(storm_reason, 0, sizeof(storm_reason));
		for (int i = 0; i < storm_n; i++) {
			unsigned char s[16] = {0};
			int kind = i % S_KINDS;
			kr_pid self = kr_self(ctx), w;
			uint64_t ref;
			memcpy(s, &kind, sizeof(kind));
			memcpy(s + 8, &self, sizeof(self));
			BEH_CHECK(kr_spawn(ctx, kind == S_KILL ? b_storm_worker_k : b_storm_worker,
					   s, sizeof(s), &w) == 0);
			if (kind != S_ALIVE)
				BEH_CHECK(kr_monitor(ctx, w, &ref) == 0);
			BEH_CHECK(kr_send(ctx, w, T_GO, 0, 0) == 0);
		}
		return;
	}
	if (m->tag == T_READY) {
		int kind;
		memcpy(&kind, m->data, sizeof(kind));
		storm_ready++;
	} else if (m->tag == T_PTR) {
		kr_pid w;
		memcpy(&w, m->data, sizeof(w));
		BEH_CHECK(kr_send_exit(ctx, w, KR_KILL) == 0);
	} else if (m->tag == KR_TAG_DOWN) {
		kr_exit_info x;
		memcpy(&x, m->data, m->len);
		if (x.reason == KR_FAULT)
			storm_reason[S_FAULT]++;
		else if (x.reason == KR_KILLED)
			storm_reason[S_KILL]++;
		else if (x.reason == KR_NORMAL)
			storm_reason[S_EXIT]++;
		storm_downs++;
	}
	if (storm_downs == storm_n / S_KINDS * 3 && storm_ready == storm_n)
		kr_stop(kr_runtime_of(ctx));
}

static void storm(const struct mode *md, int n)
{
	kr_runtime *rt = rt_make(md);
	storm_n = n;
	for (int k = 0; k < S_KINDS; k++)
		atomic_store(&storm_hooks[k], 0);
	kr_pid boss = spawn(rt, b_storm_boss, 0, 0);
	post(rt, boss, T_GO, 0, 0);
	assert_true(guard_run(rt, false, WATCHDOG_S));
	assert_int_equal(atomic_load(&beh_bad), 0);
	assert_int_equal(storm_reason[S_FAULT], n / S_KINDS);
	assert_int_equal(storm_reason[S_KILL], n / S_KINDS);
	assert_int_equal(storm_reason[S_EXIT], n / S_KINDS);
	assert_int_equal(atomic_load(&storm_hooks[S_ALIVE]), 0);
	assert_int_equal(kr_alive(rt), (uint64_t)(n / S_KINDS + 1)); /* and the boss */
	kr_runtime_free(rt);
	for (int k = 0; k < S_KINDS; k++)
		assert_int_equal(atomic_load(&storm_hooks[k]), n / S_KINDS);
	assert_int_equal(log_n, 0); /* all watched but the alive, which end in shutdown */
#if ASAN
	/* Everything the processes owned, and what their hooks freed, is gone. */
	assert_int_equal(__lsan_do_recoverable_leak_check(), 0);
#endif
}

static void a_crash_storm_of_processes_owning_memory_leaks_nothing(void **st)
{
	(void)st;
	for (unsigned i = 0; i < NMODES; i++)
		storm(&modes[i], 4000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(null_ctx_is_refused),
	    cmocka_unit_test(alloc_free_and_realloc_keep_the_promises_of_the_header),
	    cmocka_unit_test(hooks_run_newest_first_once_for_every_way_a_process_ends),
	    cmocka_unit_test(a_fault_in_an_exit_hook_ends_that_hook_alone),
	    cmocka_unit_test(a_crash_storm_of_processes_owning_memory_leaks_nothing),
	};
	if (getenv("KRILL_TEST_FILTER"))
		cmocka_set_test_filter(getenv("KRILL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, 0, 0);
}
