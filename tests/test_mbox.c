/* Tests for the mailbox hand-off (core/proc/mbox.c): the single-threaded meaning of push, take,
 * idle and close, then producer threads racing a consumer that schedules the process exactly as
 * proc_run does. Reproduce a random failure with KRILL_SEED=<seed printed in the failure>. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/seed.h"

#include "core/proc/mbox.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Envelopes carved from one 16-byte aligned block: header, then a 4-byte payload. */
#define ESTRIDE 32

static unsigned char *env_block(size_t n)
{
	unsigned char *b = aligned_alloc(16, n * ESTRIDE);
	assert_non_null(b);
	memset(b, 0, n * ESTRIDE);
	return b;
}

static struct env *env_at(unsigned char *block, size_t i, uint32_t tag, uint32_t val)
{
	struct env *e = (struct env *)(block + i * ESTRIDE);
	e->next = (struct env *)(uintptr_t)0xdeadbeef0; /* push must overwrite it */
	e->m.tag = tag;
	e->m.len = sizeof(val);
	memcpy(e->m.data, &val, sizeof(val));
	return e;
}

static uint32_t env_val(const struct env *e)
{
	uint32_t v;
	memcpy(&v, e->m.data, sizeof(v));
	return v;
}

static uintptr_t word(_Atomic uintptr_t *w)
{
	return atomic_load(w);
}

/* ---- single-threaded protocol ------------------------------------------------------------ */

static void a_push_to_an_idle_mailbox_wakes_the_process(void **state)
{
	(void)state;
	unsigned char *b = env_block(1);
	_Atomic uintptr_t w = 0;
	struct env *e = env_at(b, 0, 7, 1);
	assert_int_equal(kri_mbox_push(&w, e), MB_WOKE);
	assert_int_equal(word(&w), (uintptr_t)e | MB_RUN);
	assert_null(e->next);
	free(b);
}

static void a_push_while_the_process_runs_is_only_queued(void **state)
{
	(void)state;
	unsigned char *b = env_block(3);
	_Atomic uintptr_t w = MB_RUN; /* running, nothing pending */
	struct env *e0 = env_at(b, 0, 1, 0), *e1 = env_at(b, 1, 1, 1), *e2 = env_at(b, 2, 1, 2);
	assert_int_equal(kri_mbox_push(&w, e0), MB_QUEUED);
	assert_null(e0->next);
	assert_int_equal(kri_mbox_push(&w, e1), MB_QUEUED);
	assert_int_equal(kri_mbox_push(&w, e2), MB_QUEUED);
	/* The word is a LIFO: newest on top, each linking to the one pushed before. */
	assert_int_equal(word(&w), (uintptr_t)e2 | MB_RUN);
	assert_ptr_equal(e2->next, e1);
	assert_ptr_equal(e1->next, e0);
	free(b);
}

static uint32_t val_of(const struct env *e)
{
	uint32_t v;
	memcpy(&v, e->m.data, sizeof(v));
	return v;
}

static void a_chain_push_is_taken_oldest_first_after_what_was_there(void **state)
{
	(void)state;
	unsigned char *b = env_block(5);
	_Atomic uintptr_t w = 0;
	assert_int_equal(kri_mbox_push(&w, env_at(b, 0, 1, 0)), MB_WOKE);
	/* A chain of 1, 2, 3, linked newest first as the outbox holds it. */
	struct env *e1 = env_at(b, 1, 1, 1), *e2 = env_at(b, 2, 1, 2), *e3 = env_at(b, 3, 1, 3);
	e3->next = e2;
	e2->next = e1;
	assert_int_equal(kri_mbox_push_chain(&w, e3, e1), MB_QUEUED);
	assert_int_equal(word(&w), (uintptr_t)e3 | MB_RUN);
	assert_int_equal(kri_mbox_push(&w, env_at(b, 4, 1, 4)), MB_QUEUED);
	struct env *e = kri_mbox_take(&w);
	for (uint32_t i = 0; i < 5; i++, e = e->next)
		assert_int_equal(val_of(e), i);
	assert_null(e);
	assert_int_equal(word(&w), MB_RUN);
	/* Into an idle mailbox: the chain wakes it; into a closed one: refused. */
	assert_int_equal(kri_mbox_idle(&w), 0);
	e2->next = e1;
	assert_int_equal(kri_mbox_push_chain(&w, e2, e1), MB_WOKE);
	assert_ptr_equal(kri_mbox_take(&w), e1);
	assert_null(kri_mbox_close(&w));
	e2->next = e1;
	e1->next = (struct env *)(uintptr_t)0xdeadbeef0;
	assert_int_equal(kri_mbox_push_chain(&w, e2, e1), MB_CLOSED);
	assert_ptr_equal(e1->next, (struct env *)(uintptr_t)0xdeadbeef0);
	free(b);
}

static void take_returns_everything_pushed_oldest_first_and_keeps_run(void **state)
{
	(void)state;
	enum { N = 100 };
	unsigned char *b = env_block(N);
	_Atomic uintptr_t w = 0;
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(kri_mbox_push(&w, env_at(b, i, 3, i)),
				 i == 0 ? MB_WOKE : MB_QUEUED);
	struct env *e = kri_mbox_take(&w);
	assert_int_equal(word(&w), MB_RUN);
	for (uint32_t i = 0; i < N; i++) {
		assert_non_null(e);
		assert_ptr_equal(e, (struct env *)(b + i * ESTRIDE));
		assert_int_equal(env_val(e), i);
		assert_int_equal(e->m.tag, 3);
		e = e->next;
	}
	assert_null(e);
	free(b);
}

static void take_of_an_empty_running_mailbox_returns_null_and_keeps_run(void **state)
{
	(void)state;
	_Atomic uintptr_t w = MB_RUN;
	assert_null(kri_mbox_take(&w));
	assert_int_equal(word(&w), MB_RUN);
}

static void idle_after_a_complete_take_succeeds_and_the_next_push_wakes(void **state)
{
	(void)state;
	unsigned char *b = env_block(2);
	_Atomic uintptr_t w = 0;
	struct env *e0 = env_at(b, 0, 1, 0), *e1 = env_at(b, 1, 1, 1);
	assert_int_equal(kri_mbox_push(&w, e0), MB_WOKE);
	assert_ptr_equal(kri_mbox_take(&w), e0);
	assert_null(kri_mbox_take(&w));
	assert_int_equal(kri_mbox_idle(&w), 0);
	assert_int_equal(word(&w), 0);
	assert_int_equal(kri_mbox_push(&w, e1), MB_WOKE);
	assert_int_equal(word(&w), (uintptr_t)e1 | MB_RUN);
	free(b);
}

static void a_push_after_take_makes_idle_fail(void **state)
{
	(void)state;
	unsigned char *b = env_block(3);
	_Atomic uintptr_t w = 0;
	struct env *e0 = env_at(b, 0, 1, 0), *e1 = env_at(b, 1, 1, 1), *e2 = env_at(b, 2, 1, 2);
	assert_int_equal(kri_mbox_push(&w, e0), MB_WOKE);
	assert_ptr_equal(kri_mbox_take(&w), e0);
	assert_int_equal(kri_mbox_push(&w, e1), MB_QUEUED);
	assert_int_equal(kri_mbox_push(&w, e2), MB_QUEUED);
	assert_int_equal(kri_mbox_idle(&w), -1);
	/* Still running, nothing lost: the late messages come out in order. */
	assert_int_equal(word(&w), (uintptr_t)e2 | MB_RUN);
	struct env *e = kri_mbox_take(&w);
	assert_ptr_equal(e, e1);
	assert_ptr_equal(e->next, e2);
	assert_null(e2->next);
	assert_int_equal(kri_mbox_idle(&w), 0);
	assert_int_equal(word(&w), 0);
	free(b);
}

static void close_returns_what_was_pending_oldest_first(void **state)
{
	(void)state;
	unsigned char *b = env_block(3);
	_Atomic uintptr_t w = MB_RUN;
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(kri_mbox_push(&w, env_at(b, i, 9, i)), MB_QUEUED);
	struct env *e = kri_mbox_close(&w);
	assert_int_equal(word(&w), MB_DEAD);
	for (uint32_t i = 0; i < 3; i++) {
		assert_ptr_equal(e, (struct env *)(b + i * ESTRIDE));
		e = e->next;
	}
	assert_null(e);
	free(b);
}

static void close_of_an_empty_mailbox_returns_null(void **state)
{
	(void)state;
	_Atomic uintptr_t w = MB_RUN;
	assert_null(kri_mbox_close(&w));
	assert_int_equal(word(&w), MB_DEAD);
}

static void pushes_after_close_are_refused_and_leave_the_envelope_alone(void **state)
{
	(void)state;
	unsigned char *b = env_block(2);
	_Atomic uintptr_t w = MB_RUN;
	assert_null(kri_mbox_close(&w));
	for (uint32_t i = 0; i < 2; i++) {
		struct env *e = env_at(b, i, 1, i);
		assert_int_equal(kri_mbox_push(&w, e), MB_CLOSED);
		assert_int_equal(word(&w), MB_DEAD);
		assert_ptr_equal(e->next, (struct env *)(uintptr_t)0xdeadbeef0);
	}
	free(b);
}

/* ---- threads: producers race the scheduler ---------------------------------------------- */

/* The consumer plays proc_run and the scheduler: it runs the process only on a token; a
 * producer whose push returned MB_WOKE adds one (the run queue). `owners` counts parties
 * holding the right to run (tokens + runs in progress): it must never exceed 1. A run
 * leaves ownership just before its idle CAS and takes it back if the CAS fails, exactly
 * the window in which the protocol says nobody else can be woken. Owner-only data
 * (local, next_seq, seen) is plain memory: ThreadSanitizer checks that the hand-off
 * orders it. */
struct stress {
	_Atomic uintptr_t w;
	unsigned char *envs;
	unsigned k, n;
	uint64_t seed;
	_Atomic int tokens;
	_Atomic int owners, max_owners;
	_Atomic int running; /* consumers running the process (must stay <= 1) */
	_Atomic int producers_done, timed_out;
	unsigned pace; /* 0: producers push flat out; else they pause up to pace spins a push */
	_Atomic long consumed, wakes, runs, failed_idles, requeues, errors;
	char first_error[160];
	_Atomic int error_claimed;
	/* Owner only. */
	struct env *local;
	uint32_t *next_seq;
	unsigned char *seen;
	uint64_t deadline_ns;
};

struct worker {
	struct stress *st;
	unsigned id;
	uint64_t rng;
};

static uint64_t kri_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record_error(struct stress *st, const char *fmt, ...)
{
	atomic_fetch_add(&st->errors, 1);
	if (atomic_exchange(&st->error_claimed, 1))
		return;
	va_list ap;
	va_start(ap, fmt);
	/* va_start is above: clang 14's analyzer misreads it. */
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	vsnprintf(st->first_error, sizeof st->first_error, fmt, ap);
	va_end(ap);
}

/* Random short stalls widen the race windows between the atomic steps. */
static void jitter(uint64_t *rng)
{
	uint64_t r = splitmix(rng);
	if ((r & 15) == 0) {
		for (volatile unsigned i = 0; i < (unsigned)(r >> 8) % 200; i++)
			;
	} else if ((r & 1023) == 1) {
		sched_yield();
	}
}

static void gain_ownership(struct stress *st)
{
	int o = atomic_fetch_add_explicit(&st->owners, 1, memory_order_relaxed) + 1;
	int m = atomic_load_explicit(&st->max_owners, memory_order_relaxed);
	while (o > m && !atomic_compare_exchange_weak_explicit(
			    &st->max_owners, &m, o, memory_order_relaxed, memory_order_relaxed))
		;
}

/* A consumer starts running the process: nobody else may be running it. */
static void enter_run(struct stress *st)
{
	if (atomic_fetch_add_explicit(&st->running, 1, memory_order_relaxed))
		record_error(st, "the process was run by two consumers at once");
}

/* It stops, before the idle CAS or the requeue that lets another consumer run it. */
static void leave_run(struct stress *st)
{
	atomic_fetch_sub_explicit(&st->running, 1, memory_order_relaxed);
}

static void *producer(void *arg)
{
	struct worker *wk = arg;
	struct stress *st = wk->st;
	for (uint32_t i = 0; i < st->n; i++) {
		size_t at = (size_t)wk->id * st->n + i;
		struct env *e = env_at(st->envs, at, wk->id, i);
		if (st->pace) {
			/* Slow senders: the consumer drains and idles between pushes, so
			 * most pushes race an idle CAS or find the process idle. */
			for (volatile unsigned s = 0; s < (unsigned)(splitmix(&wk->rng) % st->pace);
			     s++)
				;
		}
		jitter(&wk->rng);
		int r = kri_mbox_push(&st->w, e);
		if (r == MB_WOKE) {
			/* This sender made the process runnable: it must schedule it. */
			gain_ownership(st);
			atomic_fetch_add_explicit(&st->wakes, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&st->tokens, 1, memory_order_release);
		} else if (r != MB_QUEUED) {
			record_error(st, "producer %u message %u: push returned %d", wk->id, i, r);
		}
	}
	atomic_fetch_add(&st->producers_done, 1);
	return NULL;
}

static void consume(struct stress *st, struct env *e)
{
	uint32_t p = e->m.tag, seq = env_val(e);
	if (p >= st->k || seq >= st->n) {
		record_error(st, "garbage envelope: producer %u seq %u", p, seq);
		return;
	}
	size_t at = (size_t)p * st->n + seq;
	if (e != (struct env *)(st->envs + at * ESTRIDE))
		record_error(st, "envelope of producer %u seq %u moved", p, seq);
	if (st->seen[at]++)
		record_error(st, "producer %u seq %u consumed twice", p, seq);
	if (seq != st->next_seq[p])
		record_error(st, "producer %u: seq %u consumed when %u was due", p, seq,
			     st->next_seq[p]);
	st->next_seq[p] = seq + 1;
	atomic_fetch_add_explicit(&st->consumed, 1, memory_order_relaxed);
}

/* One run, as proc_run: handle a bounded batch, then idle or go to the back of the queue. */
static void run_process(struct stress *st, uint64_t *rng)
{
	unsigned budget = 1 + (unsigned)(splitmix(rng) % 64);
	for (;;) {
		struct env *e = st->local;
		if (!e) {
			e = kri_mbox_take(&st->w);
			if (!e) {
				leave_run(st);
				atomic_fetch_sub_explicit(&st->owners, 1, memory_order_relaxed);
				jitter(rng);
				if (kri_mbox_idle(&st->w) == 0)
					return;
				gain_ownership(st);
				enter_run(st);
				atomic_fetch_add_explicit(&st->failed_idles, 1,
							  memory_order_relaxed);
				continue;
			}
		}
		st->local = e->next;
		consume(st, e);
		if (--budget == 0) {
			leave_run(st);
			if (!st->local) {
				atomic_fetch_sub_explicit(&st->owners, 1, memory_order_relaxed);
				if (kri_mbox_idle(&st->w) == 0)
					return;
				gain_ownership(st);
			}
			/* Still RUN: back of the queue, ownership kept. */
			atomic_fetch_add_explicit(&st->requeues, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&st->tokens, 1, memory_order_release);
			return;
		}
	}
}

static void *consumer(void *arg)
{
	struct worker *wk = arg;
	struct stress *st = wk->st;
	for (;;) {
		/* A broken protocol shows at once: stop rather than run into the damage. */
		if (atomic_load_explicit(&st->errors, memory_order_relaxed) ||
		    atomic_load_explicit(&st->max_owners, memory_order_relaxed) > 1)
			return NULL;
		int t = atomic_load_explicit(&st->tokens, memory_order_relaxed);
		if (t == 0) {
			/* Done once every producer finished and nobody owns the process. */
			if (atomic_load(&st->producers_done) == (int)st->k &&
			    atomic_load(&st->owners) == 0 && atomic_load(&st->tokens) == 0)
				return NULL;
			if (kri_now_ns() > st->deadline_ns) {
				atomic_store(&st->timed_out, 1);
				return NULL;
			}
			sched_yield();
			continue;
		}
		if (!atomic_compare_exchange_weak_explicit(
			&st->tokens, &t, t - 1, memory_order_acquire, memory_order_relaxed))
			continue;
		atomic_fetch_add_explicit(&st->runs, 1, memory_order_relaxed);
		enter_run(st);
		if (atomic_load_explicit(&st->errors, memory_order_relaxed))
			return NULL;       /* do not run into the damage */
		run_process(st, &wk->rng); /* returns having left the run */
	}
}

#define CHECK(st, x)                                                                     \
	do {                                                                             \
		if (!(x))                                                                \
			fail_msg("KRILL_SEED=%llu: %s (first error: %s)",                \
				 (unsigned long long)(st)->seed, #x, (st)->first_error); \
	} while (0)

static void stress_round(struct stress *st, unsigned k, unsigned n, unsigned nconsumers,
			 unsigned pace)
{
	enum { MAXT = 8 };
	pthread_t th[MAXT * 2];
	struct worker wk[MAXT * 2];
	assert_true(k <= MAXT && nconsumers <= MAXT);
	uint64_t seed = st->seed;
	free(st->envs);
	free(st->next_seq);
	free(st->seen);
	memset(st, 0, sizeof *st);
	st->seed = seed;
	st->k = k;
	st->n = n;
	st->pace = pace;
	st->envs = env_block((size_t)k * n);
	st->next_seq = calloc(k, sizeof *st->next_seq);
	st->seen = calloc((size_t)k * n, 1);
	assert_non_null(st->next_seq);
	assert_non_null(st->seen);
	st->deadline_ns = kri_now_ns() + 20ull * 1000000000u;
	uint64_t r = seed ^ ((uint64_t)k << 32 | nconsumers);
	for (unsigned i = 0; i < nconsumers; i++) {
		wk[i] = (struct worker){st, i, splitmix(&r)};
		assert_int_equal(pthread_create(&th[i], NULL, consumer, &wk[i]), 0);
	}
	for (unsigned i = 0; i < k; i++) {
		wk[MAXT + i] = (struct worker){st, i, splitmix(&r)};
		assert_int_equal(pthread_create(&th[MAXT + i], NULL, producer, &wk[MAXT + i]), 0);
	}
	for (unsigned i = 0; i < k; i++)
		pthread_join(th[MAXT + i], NULL);
	for (unsigned i = 0; i < nconsumers; i++)
		pthread_join(th[i], NULL);

	CHECK(st, !atomic_load(&st->timed_out));
	CHECK(st, atomic_load(&st->max_owners) == 1);
	CHECK(st, atomic_load(&st->errors) == 0);
	CHECK(st, atomic_load(&st->consumed) == (long)k * n);
	for (unsigned p = 0; p < k; p++)
		CHECK(st, st->next_seq[p] == n);
	for (size_t i = 0; i < (size_t)k * n; i++)
		CHECK(st, st->seen[i] == 1);
	/* Every wake-up and every requeue became exactly one run. */
	CHECK(st, atomic_load(&st->runs) == atomic_load(&st->wakes) + atomic_load(&st->requeues));
	CHECK(st, atomic_load(&st->owners) == 0);
	CHECK(st, atomic_load(&st->running) == 0);
	CHECK(st, st->local == NULL);
	CHECK(st, atomic_load(&st->w) == 0); /* idle and empty: nothing left behind */
}

static void producers_racing_the_scheduler_lose_nothing_and_never_schedule_twice(void **state)
{
	(void)state;
	static struct stress st; /* static: a failing check longjmps out */
	st.seed = seed_from_env();
	unsigned n = SANITIZED ? 60000 : 400000;
	stress_round(&st, 4, n, 1, 0);
	stress_round(&st, 3, n, 2, 0);
	stress_round(&st, 1, n, 2, 0);
	stress_round(&st, 8, n / 4, 2, 0);
	/* Slow producers: most pushes now race the consumer's idle CAS. */
	stress_round(&st, 1, n / 4, 1, 3000);
	stress_round(&st, 2, n / 4, 2, 3000);
	stress_round(&st, 3, n / 4, 2, 3000);
	free(st.envs);
	free(st.next_seq);
	free(st.seen);
	st.envs = NULL;
	st.next_seq = NULL;
	st.seen = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_push_to_an_idle_mailbox_wakes_the_process),
	    cmocka_unit_test(a_push_while_the_process_runs_is_only_queued),
	    cmocka_unit_test(a_chain_push_is_taken_oldest_first_after_what_was_there),
	    cmocka_unit_test(take_returns_everything_pushed_oldest_first_and_keeps_run),
	    cmocka_unit_test(take_of_an_empty_running_mailbox_returns_null_and_keeps_run),
	    cmocka_unit_test(idle_after_a_complete_take_succeeds_and_the_next_push_wakes),
	    cmocka_unit_test(a_push_after_take_makes_idle_fail),
	    cmocka_unit_test(close_returns_what_was_pending_oldest_first),
	    cmocka_unit_test(close_of_an_empty_mailbox_returns_null),
	    cmocka_unit_test(pushes_after_close_are_refused_and_leave_the_envelope_alone),
	    cmocka_unit_test(producers_racing_the_scheduler_lose_nothing_and_never_schedule_twice),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
