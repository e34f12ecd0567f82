/* Tests for the run queue (core/sched/runq.c): ring order, the overflow, stealing half of a
 * ring or a batch of the overflow, and an owner racing 1-3 thieves with every process taken
 * exactly once. Reproduce a random failure with KRILL_SEED=<seed printed in the failure>. */
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

#include "tests/inject.h"
#include "tests/seed.h"

#include "alloc/arena.h"
#include "core/proc/proc.h"
#include "core/sched/runq.h"

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

/* Fake processes: runq stores pointers and links through `next` only; idx names them. */
#define NP 4096
static struct proc procs[NP];

static struct proc *P(uint32_t i)
{
	procs[i].idx = i;
	return &procs[i];
}

static uint32_t id_of(const struct proc *p)
{
	assert_true(p >= procs && p < procs + NP);
	return (uint32_t)(p - procs);
}

static uint32_t ring_len(struct runq *q)
{
	return atomic_load(&q->tail) - atomic_load(&q->head);
}

/* The i-th oldest process in the overflow (the array, then the spill list), or NULL. */
static struct proc *overflow_nth(struct runq *q, uint64_t i)
{
	if (i < q->otl - q->ohd)
		return q->ov[(q->ohd + i) & (q->ocap - 1)];
	struct proc *x = q->spill;
	for (i -= q->otl - q->ohd; x && i > 0; i--)
		x = x->next;
	return x;
}

static void assert_overflow_empty(struct runq *q)
{
	assert_int_equal(atomic_load(&q->olen), 0);
	assert_true(q->ohd == q->otl);
	assert_null(q->spill);
	assert_null(q->stail);
}

/* Pop everything left, counting each process in seen[]. */
static uint32_t drain(struct runq *q, unsigned char *seen)
{
	uint32_t n = 0;
	struct proc *p;
	while ((p = kri_runq_pop(q))) {
		uint32_t i = id_of(p);
		assert_int_equal(seen[i], 0);
		seen[i] = 1;
		n++;
	}
	return n;
}

/* Pops na + nb processes and checks they interleave the sequences a (from the ring) and b
 * (from the overflow), each kept in its own order: when to take from which is policy. */
static void pop_interleaving(struct runq *q, const uint32_t *a, uint32_t na, const uint32_t *b,
			     uint32_t nb)
{
	uint32_t i = 0, j = 0;
	while (i + j < na + nb) {
		struct proc *p = kri_runq_pop(q);
		if (!p)
			fail_msg("pop %u gave NULL", i + j);
		uint32_t id = id_of(p);
		if (i < na && id == a[i])
			i++;
		else if (j < nb && id == b[j])
			j++;
		else
			fail_msg("pop %u gave %u; due were %d (ring) or %d (overflow)", i + j, id,
				 i < na ? (int)a[i] : -1, j < nb ? (int)b[j] : -1);
	}
}

/* ---- one thread ---------------------------------------------------------------------------- */

static void pushed_processes_pop_in_fifo_order(void **state)
{
	(void)state;
	struct runq q;
	kri_runq_init(&q, NULL);
	assert_null(kri_runq_pop(&q));
	for (uint32_t i = 0; i < 100; i++) {
		kri_runq_push(&q, P(i));
		assert_int_equal(kri_runq_len(&q), i + 1);
	}
	for (uint32_t i = 0; i < 100; i++) {
		assert_ptr_equal(kri_runq_pop(&q), P(i));
		assert_int_equal(kri_runq_len(&q), 99 - i);
	}
	assert_null(kri_runq_pop(&q));
	/* Wrapping the ring many times, never full, keeps the order. */
	uint32_t in = 0, out = 0;
	for (int k = 0; k < 200; k++)
		kri_runq_push(&q, P(in++ % NP));
	for (int round = 0; round < 1000; round++) {
		for (int k = 0; k < 7; k++)
			kri_runq_push(&q, P(in++ % NP));
		for (int k = 0; k < 7; k++)
			assert_ptr_equal(kri_runq_pop(&q), P(out++ % NP));
	}
	while (out < in)
		assert_ptr_equal(kri_runq_pop(&q), P(out++ % NP));
	assert_null(kri_runq_pop(&q));
	assert_int_equal(atomic_load(&q.olen), 0);
	kri_runq_fini(&q);
}

static void a_full_ring_holds_exactly_its_capacity_without_overflow(void **state)
{
	(void)state;
	struct runq q;
	kri_runq_init(&q, NULL);
	for (uint32_t i = 0; i < RUNQ_CAP; i++)
		kri_runq_push(&q, P(i));
	assert_int_equal(ring_len(&q), RUNQ_CAP);
	assert_overflow_empty(&q);
	for (uint32_t i = 0; i < RUNQ_CAP; i++)
		assert_ptr_equal(kri_runq_pop(&q), P(i));
	assert_null(kri_runq_pop(&q));
	kri_runq_fini(&q);
}

static void the_push_past_a_full_ring_moves_the_older_half_to_overflow(void **state)
{
	(void)state;
	struct runq q;
	kri_runq_init(&q, NULL);
	for (uint32_t i = 0; i <= RUNQ_CAP; i++)
		kri_runq_push(&q, P(i));
	/* Ring: the newer half; overflow: the older half, then the one pushed. */
	assert_int_equal(ring_len(&q), RUNQ_CAP / 2);
	assert_int_equal(atomic_load(&q.olen), RUNQ_CAP / 2 + 1);
	assert_int_equal(kri_runq_len(&q), RUNQ_CAP + 1);
	uint32_t ring[RUNQ_CAP / 2], over[RUNQ_CAP / 2 + 1];
	for (uint32_t i = 0; i < RUNQ_CAP / 2; i++) {
		ring[i] = RUNQ_CAP / 2 + i;
		over[i] = i;
	}
	over[RUNQ_CAP / 2] = RUNQ_CAP;
	pop_interleaving(&q, ring, RUNQ_CAP / 2, over, RUNQ_CAP / 2 + 1);
	assert_null(kri_runq_pop(&q));
	assert_int_equal(kri_runq_len(&q), 0);
	assert_overflow_empty(&q);
	kri_runq_fini(&q);
}

static void overflow_beyond_the_ring_keeps_every_process_exactly_once(void **state)
{
	(void)state;
	static unsigned char seen[NP];
	struct runq q;
	kri_runq_init(&q, NULL);
	memset(seen, 0, sizeof seen);
	for (uint32_t i = 0; i < 3000; i++)
		kri_runq_push(&q, P(i));
	assert_int_equal(kri_runq_len(&q), 3000);
	assert_true(atomic_load(&q.olen) > RUNQ_CAP); /* more than one refill's worth */
	assert_int_equal(drain(&q, seen), 3000);
	for (uint32_t i = 0; i < 3000; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(kri_runq_len(&q), 0);
	assert_int_equal(atomic_load(&q.olen), 0);
	kri_runq_fini(&q);
}

/* oout counts every process that leaves the overflow, by the owner's pops (its oldest first
 * every 61st, or a refill of an empty ring) or a thief's steal, and none that leaves the ring:
 * with no push meanwhile, olen + oout stays what olen was (a thief's mark of the overflow,
 * sched.c's waited, relies on it). */
static void the_overflow_counts_every_process_it_lets_out(void **state)
{
	(void)state;
	static unsigned char seen[NP];
	struct runq v, t;
	uint32_t taken;
	kri_runq_init(&v, NULL);
	kri_runq_init(&t, NULL);
	memset(seen, 0, sizeof seen);
	for (uint32_t i = 0; i < 3000; i++)
		kri_runq_push(&v, P(i));
	uint64_t held = atomic_load(&v.olen);
	assert_int_equal(atomic_load(&v.oout), 0);
	assert_true(held > 2 * RUNQ_CAP);
	for (uint32_t i = 0; i < RUNQ_CAP / 2; i++) { /* the ring's, and two of the overflow's */
		struct proc *p = kri_runq_pop(&v);
		seen[id_of(p)] = 1;
		assert_int_equal(atomic_load(&v.olen) + atomic_load(&v.oout), held);
	}
	uint64_t out = atomic_load(&v.oout);
	assert_int_equal(out, RUNQ_CAP / 2 / 61);
	struct proc *p = kri_runq_steal(&v, &t, 1, &taken);
	assert_non_null(p);
	assert_true(atomic_load(&v.oout) > out); /* the steal took from the overflow */
	assert_int_equal(atomic_load(&v.olen) + atomic_load(&v.oout), held);
	seen[id_of(p)] = 1;
	assert_int_equal(drain(&v, seen) + drain(&t, seen) + 1 + RUNQ_CAP / 2, 3000);
	assert_int_equal(atomic_load(&v.oout), held);
	assert_overflow_empty(&v);
	kri_runq_fini(&v);
	kri_runq_fini(&t);
}

/* The overflow's array cannot grow (no memory): what does not fit is linked after it, and
 * everything still comes out once; pushes keep going after the list (FIFO) until it
 * drains, then the array takes them again. */
static void an_overflow_that_cannot_grow_spills_in_order(void **state)
{
	(void)state;
	need_injector();
	static uint32_t before[NP];
	struct runq q;
	kri_runq_init(&q, NULL);
	for (uint32_t i = 0; i < 1500; i++)
		kri_runq_push(&q, P(i));
	assert_non_null(q.ov);
	uint32_t cap = q.ocap;
	kri_arena_fail_after(0);
	for (uint32_t i = 1500; i < 3500; i++)
		kri_runq_push(&q, P(i));
	kri_arena_fail_after(-1);
	assert_int_equal(q.ocap, cap);
	assert_non_null(q.spill);
	uint32_t nb = (uint32_t)atomic_load(&q.olen);
	for (uint32_t i = 0; i < nb; i++)
		before[i] = id_of(overflow_nth(&q, i));
	for (uint32_t i = 3500; i < 3800; i++)
		kri_runq_push(&q, P(i));
	assert_int_equal(q.ocap, cap);
	assert_int_equal(kri_runq_len(&q), 3800);
	/* What was queued keeps its place; the later ones went after it. */
	uint32_t no = (uint32_t)atomic_load(&q.olen);
	assert_true(no > nb);
	for (uint32_t i = 0; i < nb; i++)
		assert_int_equal(id_of(overflow_nth(&q, i)), before[i]);
	for (uint32_t i = nb; i < no; i++)
		assert_true(id_of(overflow_nth(&q, i)) >= 3500 - RUNQ_CAP);
	static unsigned char seen[NP];
	memset(seen, 0, sizeof seen);
	assert_int_equal(drain(&q, seen), 3800);
	assert_overflow_empty(&q);
	for (uint32_t i = 0; i < 1000; i++)
		kri_runq_push(&q, P(i));
	assert_non_null(q.ov);
	assert_null(q.spill);
	assert_int_equal(atomic_load(&q.olen), q.otl - q.ohd);
	kri_runq_fini(&q);
}

static void random_pushes_and_pops_match_a_multiset(void **state)
{
	(void)state;
	static unsigned char queued[NP];
	uint64_t seed = seed_from_env(), r = seed;
	struct runq q;
	kri_runq_init(&q, NULL);
	memset(queued, 0, sizeof queued);
	uint64_t n = 0;
	for (int op = 0; op < 200000; op++) {
		/* Bursts of pushes long enough to overflow, then bursts of pops. */
		int push = (op / 2000) % 2 == 0 ? splitmix(&r) % 10 < 7 : splitmix(&r) % 10 < 3;
		if (push) {
			uint32_t i = (uint32_t)(splitmix(&r) % NP);
			if (queued[i])
				continue;
			queued[i] = 1;
			kri_runq_push(&q, P(i));
			n++;
		} else {
			struct proc *p = kri_runq_pop(&q);
			if (n == 0) {
				if (p)
					fail_msg(
					    "KRILL_SEED=%llu op %d: pop of an empty queue gave %u",
					    (unsigned long long)seed, op, id_of(p));
				continue;
			}
			if (!p)
				fail_msg("KRILL_SEED=%llu op %d: pop gave NULL with %llu queued",
					 (unsigned long long)seed, op, (unsigned long long)n);
			if (!queued[id_of(p)])
				fail_msg("KRILL_SEED=%llu op %d: %u popped but not queued",
					 (unsigned long long)seed, op, id_of(p));
			queued[id_of(p)] = 0;
			n--;
		}
		if (kri_runq_len(&q) != n)
			fail_msg("KRILL_SEED=%llu op %d: runq_len %llu, %llu queued",
				 (unsigned long long)seed, op, (unsigned long long)kri_runq_len(&q),
				 (unsigned long long)n);
	}
	kri_runq_fini(&q);
}

static void steal_takes_half_of_the_ring_and_returns_the_newest_taken(void **state)
{
	(void)state;
	struct runq v, t;
	uint32_t taken = 99;
	kri_runq_init(&v, NULL);
	kri_runq_init(&t, NULL);
	for (uint32_t i = 0; i < 10; i++)
		kri_runq_push(&v, P(i));
	/* Half of 10 (rounded up) is 5: 0..3 go to the thief's ring, 4 is returned. */
	assert_ptr_equal(kri_runq_steal(&v, &t, 1, &taken), P(4));
	assert_int_equal(taken, 5);
	assert_int_equal(kri_runq_len(&t), 4);
	assert_int_equal(kri_runq_len(&v), 5);
	for (uint32_t i = 0; i < 4; i++)
		assert_ptr_equal(kri_runq_pop(&t), P(i));
	assert_null(kri_runq_pop(&t));
	/* Odd: 5 left, 3 taken. */
	assert_ptr_equal(kri_runq_steal(&v, &t, 1, &taken), P(7));
	assert_int_equal(taken, 3);
	assert_ptr_equal(kri_runq_pop(&t), P(5));
	assert_ptr_equal(kri_runq_pop(&t), P(6));
	assert_null(kri_runq_pop(&t));
	/* One left: it is taken and returned, the thief's ring stays empty. */
	assert_ptr_equal(kri_runq_pop(&v), P(8));
	assert_ptr_equal(kri_runq_steal(&v, &t, 1, &taken), P(9));
	assert_int_equal(taken, 1);
	assert_int_equal(kri_runq_len(&t), 0);
	assert_int_equal(kri_runq_len(&v), 0);
	kri_runq_fini(&v);
	kri_runq_fini(&t);
}

static void steal_leaves_a_queue_shorter_than_min_alone(void **state)
{
	(void)state;
	struct runq v, t;
	uint32_t taken = 99;
	kri_runq_init(&v, NULL);
	kri_runq_init(&t, NULL);
	assert_null(kri_runq_steal(&v, &t, 0, &taken)); /* empty: min 0 means 1 */
	assert_int_equal(taken, 0);
	for (uint32_t i = 0; i < 3; i++)
		kri_runq_push(&v, P(i));
	assert_null(kri_runq_steal(&v, &t, 4, &taken));
	assert_int_equal(taken, 0);
	assert_int_equal(kri_runq_len(&v), 3);
	assert_int_equal(kri_runq_len(&t), 0);
	assert_ptr_equal(kri_runq_steal(&v, &t, 3, &taken), P(1));
	assert_int_equal(taken, 2);
	kri_runq_fini(&v);
	kri_runq_fini(&t);
}

static void steal_from_a_full_ring_takes_half(void **state)
{
	(void)state;
	struct runq v, t;
	uint32_t taken;
	kri_runq_init(&v, NULL);
	kri_runq_init(&t, NULL);
	for (uint32_t i = 0; i < RUNQ_CAP; i++)
		kri_runq_push(&v, P(i));
	assert_ptr_equal(kri_runq_steal(&v, &t, 1, &taken), P(RUNQ_CAP / 2 - 1));
	assert_int_equal(taken, RUNQ_CAP / 2);
	assert_int_equal(ring_len(&t), RUNQ_CAP / 2 - 1);
	for (uint32_t i = 0; i < RUNQ_CAP / 2 - 1; i++)
		assert_ptr_equal(kri_runq_pop(&t), P(i));
	for (uint32_t i = RUNQ_CAP / 2; i < RUNQ_CAP; i++)
		assert_ptr_equal(kri_runq_pop(&v), P(i));
	kri_runq_fini(&v);
	kri_runq_fini(&t);
}

/* Victim with an empty ring and the rest of `n` on its overflow: push, then pop until
 * the ring is empty (a pop may take from the overflow too). Returns what was popped. */
static uint32_t overflow_only(struct runq *v, uint32_t n, unsigned char *seen)
{
	uint32_t popped = 0;
	for (uint32_t i = 0; i < n; i++)
		kri_runq_push(v, P(i));
	while (ring_len(v)) {
		uint32_t i = id_of(kri_runq_pop(v));
		assert_int_equal(seen[i], 0);
		seen[i] = 1;
		popped++;
	}
	assert_int_equal(atomic_load(&v->olen), n - popped);
	return popped;
}

static void steal_takes_from_the_overflow_when_the_ring_is_empty(void **state)
{
	(void)state;
	static unsigned char seen[NP];
	struct runq v, t;
	uint32_t taken;
	kri_runq_init(&v, NULL);
	kri_runq_init(&t, NULL);
	memset(seen, 0, sizeof seen);
	/* Overflow: 0..127, 256, less any the ring's pops took from its head. */
	uint32_t popped = overflow_only(&v, RUNQ_CAP + 1, seen);
	uint32_t olen = (uint32_t)atomic_load(&v.olen), from = 0;
	while (seen[from])
		from++;
	assert_int_equal(olen, RUNQ_CAP + 1 - popped);
	assert_true(olen > 100);
	/* Half and one, oldest first; the first is returned, the rest queued in order. */
	uint32_t want = olen / 2 + 1;
	assert_ptr_equal(kri_runq_steal(&v, &t, 1, &taken), P(from));
	assert_int_equal(taken, want);
	assert_int_equal(atomic_load(&v.olen), olen - want);
	assert_int_equal(ring_len(&t), want - 1);
	for (uint32_t i = from + 1; i < from + want; i++)
		assert_ptr_equal(kri_runq_pop(&t), P(i));
	assert_null(kri_runq_pop(&t));
	for (uint32_t i = from + want; i < RUNQ_CAP / 2; i++)
		assert_ptr_equal(kri_runq_pop(&v), P(i));
	assert_ptr_equal(kri_runq_pop(&v), P(RUNQ_CAP));
	assert_null(kri_runq_pop(&v));
	assert_overflow_empty(&v);
	kri_runq_fini(&v);
	kri_runq_fini(&t);
}

/* A ring kept busy (each popped process pushed back at once) never drains; the processes
 * on the overflow must still get their turn. */
static void a_ring_that_never_drains_does_not_starve_the_overflow(void **state)
{
	(void)state;
	struct runq q;
	kri_runq_init(&q, NULL);
	for (uint32_t i = 0; i <= RUNQ_CAP; i++)
		kri_runq_push(&q, P(i));
	/* Overflow: 0..127 and 256; they must all come out, in order, within a bound. */
	uint32_t next = 0, rounds = 0;
	while (next <= RUNQ_CAP / 2 && rounds < 100 * RUNQ_CAP) {
		uint32_t i = id_of(kri_runq_pop(&q));
		rounds++;
		if (i < RUNQ_CAP / 2 || i == RUNQ_CAP) {
			assert_int_equal(i, next < RUNQ_CAP / 2 ? next : RUNQ_CAP);
			next++;
		} else {
			kri_runq_push(&q, P(i));
		}
	}
	assert_int_equal(next, RUNQ_CAP / 2 + 1);
	assert_int_equal(atomic_load(&q.olen), 0);
	assert_int_equal(kri_runq_len(&q), RUNQ_CAP / 2);
	kri_runq_fini(&q);
}

/* A stream of wake-ups from outside (one I/O completion per process run) pushed to the back:
 * everything queued before it, overflow included, runs before it but for the overflow's head
 * taken once in 61 pops, which by then may be one of the stream. Pushed into the ring instead,
 * the stream would run within 256 pops while the overflow went once in 61. */
static void a_stream_pushed_to_the_back_waits_behind_the_overflow(void **state)
{
	(void)state;
	struct runq q;
	kri_runq_init(&q, NULL);
	for (uint32_t i = 0; i <= RUNQ_CAP; i++)
		kri_runq_push(&q, P(i));
	uint32_t before = 0, early = 0, next = 1000;
	while (before <= RUNQ_CAP) {
		if (id_of(kri_runq_pop(&q)) <= RUNQ_CAP)
			before++;
		else
			early++;
		assert_true(early <= (RUNQ_CAP + 1) / 61 + 1);
		kri_runq_push_back(&q, P(next++));
	}
	/* Then the rest of the stream, each once. */
	uint32_t rest = 0;
	for (struct proc *p; (p = kri_runq_pop(&q)); rest++)
		assert_true(id_of(p) >= 1000 && id_of(p) < next);
	assert_int_equal(early + rest, next - 1000);
	kri_runq_fini(&q);
}

static void a_steal_from_a_long_overflow_takes_half_and_keeps_what_its_ring_cannot(void **state)
{
	(void)state;
	static unsigned char seen[NP];
	struct runq v, t;
	uint32_t taken;
	kri_runq_init(&v, NULL);
	kri_runq_init(&t, NULL);
	memset(seen, 0, sizeof seen);
	overflow_only(&v, 3000, seen);
	uint64_t olen = atomic_load(&v.olen);
	/* Half, bounded: more than a ring, so the thief's own overflow holds the rest. */
	uint32_t want = (uint32_t)(olen - olen / 2);
	if (want > RUNQ_STEAL_MAX)
		want = RUNQ_STEAL_MAX;
	assert_true(want > RUNQ_CAP);
	/* The oldest `want` of the victim's overflow are what moves. */
	static unsigned char moved[NP];
	memset(moved, 0, sizeof moved);
	struct proc *first = overflow_nth(&v, 0), *x;
	for (uint32_t i = 0; i < want; i++)
		moved[id_of(overflow_nth(&v, i))] = 1;
	struct proc *p = kri_runq_steal(&v, &t, 1, &taken);
	assert_ptr_equal(p, first);
	assert_int_equal(taken, want);
	assert_int_equal(ring_len(&t), RUNQ_CAP - 1);
	assert_int_equal(atomic_load(&t.olen), want - RUNQ_CAP);
	assert_int_equal(atomic_load(&v.olen), olen - want);
	seen[id_of(p)] = 1;
	while ((x = kri_runq_pop(&t))) {
		assert_int_equal(moved[id_of(x)], 1);
		assert_int_equal(seen[id_of(x)], 0);
		seen[id_of(x)] = 1;
	}
	assert_int_equal(drain(&v, seen), olen - want);
	for (uint32_t i = 0; i < 3000; i++)
		assert_int_equal(seen[i], 1);
	kri_runq_fini(&v);
	kri_runq_fini(&t);
}

/* The victim's ring and overflow together count: an overflow behind a busy ring is shared too. */
static void steal_takes_half_of_ring_and_overflow_together_from_the_overflow(void **state)
{
	(void)state;
	static unsigned char seen[NP];
	struct runq v, t;
	uint32_t taken;
	kri_runq_init(&v, NULL);
	kri_runq_init(&t, NULL);
	memset(seen, 0, sizeof seen);
	for (uint32_t i = 0; i < 1000; i++)
		kri_runq_push(&v, P(i));
	uint32_t ring = ring_len(&v);
	uint64_t olen = atomic_load(&v.olen);
	assert_true(ring > 0 && olen > ring);
	uint32_t want = (uint32_t)((olen + ring) - (olen + ring) / 2);
	struct proc *first = overflow_nth(&v, 0);
	assert_ptr_equal(kri_runq_steal(&v, &t, 1, &taken), first);
	assert_int_equal(taken, want);
	assert_int_equal(kri_runq_len(&v), 1000 - want);
	assert_int_equal(kri_runq_len(&t), want - 1);
	seen[id_of(first)] = 1;
	assert_int_equal(drain(&t, seen), want - 1);
	assert_int_equal(drain(&v, seen), 1000 - want);
	for (uint32_t i = 0; i < 1000; i++)
		assert_int_equal(seen[i], 1);
	kri_runq_fini(&v);
	kri_runq_fini(&t);
}

/* A short overflow behind a full ring: the ring's half goes, as Go takes it, and the overflow
 * stays. */
static void steal_takes_the_ring_half_when_the_overflow_is_the_smaller_part(void **state)
{
	(void)state;
	struct runq v, t;
	uint32_t taken;
	kri_runq_init(&v, NULL);
	kri_runq_init(&t, NULL);
	for (uint32_t i = 0; i < RUNQ_CAP + 1 + RUNQ_CAP / 2; i++)
		kri_runq_push(&v, P(i));
	uint64_t olen = atomic_load(&v.olen);
	assert_int_equal(ring_len(&v), RUNQ_CAP);
	assert_true(olen > 0 && olen < RUNQ_CAP);
	assert_non_null(kri_runq_steal(&v, &t, 1, &taken));
	assert_int_equal(taken, RUNQ_CAP / 2);
	assert_int_equal(atomic_load(&v.olen), olen);
	assert_int_equal(ring_len(&v), RUNQ_CAP / 2);
	kri_runq_fini(&v);
	kri_runq_fini(&t);
}

/* Processes handed back (compaction, sched.c) are the owner's: thieves neither count nor take
 * them, so the scheduler that gave them back does not take them again at once; the owner runs
 * them behind its ring, in the order given, and a ring that never drains does not starve them. */
static void processes_given_back_are_the_owners_alone(void **state)
{
	(void)state;
	struct runq q, t;
	uint32_t taken;
	struct proc *v[8];
	kri_runq_init(&q, NULL);
	kri_runq_init(&t, NULL);
	for (uint32_t i = 0; i < 8; i++)
		v[i] = P(100 + i);
	kri_runq_give(&q, v, 8);
	assert_int_equal(kri_runq_len(&q), 0);
	assert_int_equal(kri_runq_given(&q), 8);
	assert_null(kri_runq_steal(&q, &t, 1, &taken));
	assert_int_equal(taken, 0);
	/* Behind the ring: 0..3 first, then the gift in order. */
	for (uint32_t i = 0; i < 4; i++)
		kri_runq_push(&q, P(i));
	assert_int_equal(kri_runq_len(&q), 4);
	for (uint32_t i = 0; i < 4; i++)
		assert_ptr_equal(kri_runq_pop(&q), P(i));
	for (uint32_t i = 0; i < 8; i++)
		assert_ptr_equal(kri_runq_pop(&q), P(100 + i));
	assert_null(kri_runq_pop(&q));
	assert_int_equal(kri_runq_given(&q), 0);
	assert_null(q.gift);
	assert_null(q.gtail);
	/* A ring kept busy still lets the gift through, within a bound. */
	for (uint32_t i = 0; i < 16; i++)
		kri_runq_push(&q, P(i));
	kri_runq_give(&q, v, 2);
	uint32_t got = 0;
	for (unsigned k = 0; k < 4 * 61 && got < 2; k++) {
		uint32_t i = id_of(kri_runq_pop(&q));
		if (i >= 100)
			assert_int_equal(i, 100 + got++);
		else
			kri_runq_push(&q, P(i));
	}
	assert_int_equal(got, 2);
	assert_int_equal(kri_runq_given(&q), 0);
	kri_runq_fini(&q);
	kri_runq_fini(&t);
}

/* ---- threads: an owner and its thieves ------------------------------------------------------ */

/* Each fake process is queued at most once at a time: state 1 while queued, 0 once taken.
 * The owner pushes only processes it sees taken (acquire), so a take that the queue does
 * not order before the next push shows as a race on `next` under ThreadSanitizer; a
 * process taken twice shows as a take of a process not queued. The owner also writes the
 * process's plain `state` word before pushing and the taker reads it: the queue must
 * publish a process's memory with it (ThreadSanitizer sees a missing release/acquire). */
#define MAXTHIEVES 3
#define POOL       2048

struct race {
	struct runq q[1 + MAXTHIEVES]; /* q[0]: the owner's */
	unsigned nthieves;
	uint64_t seed;
	uint64_t total; /* pushes the owner will make */
	_Atomic int state[POOL];
	_Atomic uint64_t stamp[POOL]; /* what the owner wrote to procs[i].state */
	_Atomic uint64_t takes, stolen, errors;
	_Atomic int timed_out;
	uint64_t deadline_ns;
	char first_error[160];
	_Atomic int error_claimed;
};

struct thief {
	struct race *r;
	unsigned id; /* 1..nthieves */
	uint64_t rng;
};

static uint64_t kri_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record_error(struct race *r, const char *fmt, ...)
{
	atomic_fetch_add(&r->errors, 1);
	if (atomic_exchange(&r->error_claimed, 1))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->first_error, sizeof r->first_error, fmt, ap);
	va_end(ap);
}

static void took(struct race *r, struct proc *p, const char *who)
{
	ptrdiff_t i = p - procs;
	if (i < 0 || i >= POOL) {
		record_error(r, "%s took a pointer that is no process: %p", who, (void *)p);
		return;
	}
	uint64_t stamp = atomic_load_explicit(&r->stamp[i], memory_order_relaxed);
	if (p->state != stamp)
		record_error(r, "%s took process %td with state %llu, pushed with %llu", who, i,
			     (unsigned long long)p->state, (unsigned long long)stamp);
	p->state = 0;
	/* Hand it back to the owner, who may push it again at once. */
	if (atomic_exchange_explicit(&r->state[i], 0, memory_order_release) != 1)
		record_error(r, "%s took process %td, which was not queued", who, i);
	atomic_fetch_add_explicit(&r->takes, 1, memory_order_relaxed);
}

static int finished(struct race *r)
{
	if (atomic_load_explicit(&r->errors, memory_order_relaxed))
		return 1;
	if (kri_now_ns() > r->deadline_ns) {
		atomic_store(&r->timed_out, 1);
		return 1;
	}
	return atomic_load_explicit(&r->takes, memory_order_relaxed) == r->total;
}

static void *thief_main(void *arg)
{
	struct thief *t = arg;
	struct race *r = t->r;
	struct runq *mine = &r->q[t->id];
	while (!finished(r)) {
		struct proc *p = kri_runq_pop(mine);
		if (!p) {
			/* Our ring is empty: steal, mostly from the owner, sometimes from
			 * another thief. */
			unsigned v = (unsigned)(splitmix(&t->rng) % 4)
					 ? 0
					 : (unsigned)(splitmix(&t->rng) % (r->nthieves + 1));
			uint32_t taken = 0;
			if (v == t->id)
				v = 0;
			p = kri_runq_steal(&r->q[v], mine, 1, &taken);
			if (p) {
				atomic_fetch_add_explicit(&r->stolen, taken, memory_order_relaxed);
				if (taken == 0 || taken > RUNQ_STEAL_MAX)
					record_error(r, "steal returned a process with taken %u",
						     taken);
			} else if (taken) {
				record_error(r, "steal returned NULL with taken %u", taken);
			}
		}
		if (p)
			took(r, p, "thief");
		else
			sched_yield();
	}
	return NULL;
}

#define CHECK(r, x)                                                                  \
	do {                                                                         \
		if (!(x))                                                            \
			fail_msg("KRILL_SEED=%llu thieves %u: %s (first error: %s)", \
				 (unsigned long long)(r)->seed, (r)->nthieves, #x,   \
				 (r)->first_error);                                  \
	} while (0)

static void race_round(struct race *r, unsigned nthieves, uint64_t total)
{
	pthread_t th[MAXTHIEVES];
	struct thief tf[MAXTHIEVES];
	uint64_t seed = r->seed;
	memset(r, 0, sizeof *r);
	r->seed = seed;
	r->nthieves = nthieves;
	r->total = total;
	r->deadline_ns = kri_now_ns() + 20ull * 1000000000u;
	for (unsigned i = 0; i <= nthieves; i++)
		kri_runq_init(&r->q[i], NULL);
	uint64_t rng = seed ^ nthieves;
	for (unsigned i = 0; i < nthieves; i++) {
		tf[i] = (struct thief){r, i + 1, splitmix(&rng)};
		assert_int_equal(pthread_create(&th[i], NULL, thief_main, &tf[i]), 0);
	}
	/* The owner: bursts of pushes (some past the ring), pops in between. */
	uint64_t pushed = 0;
	uint32_t cursor = 0;
	while (!finished(r)) {
		uint64_t x = splitmix(&rng);
		unsigned burst =
		    (x & 7) == 0 ? 300 + (unsigned)(x >> 8) % 700 : (unsigned)(x >> 8) % 40;
		for (unsigned b = 0; b < burst && pushed < total; b++) {
			/* The next process not queued; give up the burst if all are. */
			unsigned tries = 0;
			while (atomic_load_explicit(&r->state[cursor], memory_order_acquire) &&
			       tries++ < POOL)
				cursor = (cursor + 1) % POOL;
			if (tries > POOL)
				break;
			atomic_store_explicit(&r->state[cursor], 1, memory_order_relaxed);
			procs[cursor].state = pushed + 1;
			atomic_store_explicit(&r->stamp[cursor], pushed + 1, memory_order_relaxed);
			kri_runq_push(&r->q[0], P(cursor));
			cursor = (cursor + 1) % POOL;
			pushed++;
		}
		unsigned pops = (unsigned)(splitmix(&rng) % 16);
		for (unsigned k = 0; k < pops || (pushed == total && k < 1); k++) {
			struct proc *p = kri_runq_pop(&r->q[0]);
			if (!p)
				break;
			took(r, p, "owner");
		}
		if (pushed == total)
			sched_yield();
	}
	for (unsigned i = 0; i < nthieves; i++)
		pthread_join(th[i], NULL);
	CHECK(r, !atomic_load(&r->timed_out));
	CHECK(r, atomic_load(&r->errors) == 0);
	CHECK(r, pushed == total);
	CHECK(r, atomic_load(&r->takes) == total);
	for (unsigned i = 0; i < POOL; i++)
		CHECK(r, atomic_load(&r->state[i]) == 0);
	for (unsigned i = 0; i <= nthieves; i++) {
		CHECK(r, kri_runq_len(&r->q[i]) == 0);
		CHECK(r, kri_runq_pop(&r->q[i]) == NULL);
		kri_runq_fini(&r->q[i]);
	}
	/* The thieves must have had a real share, or this tested nothing. */
	CHECK(r, atomic_load(&r->stolen) > 0);
}

static void an_owner_and_its_thieves_take_every_process_exactly_once(void **state)
{
	(void)state;
	static struct race r; /* static: a failing check longjmps out */
	r.seed = seed_from_env();
	uint64_t total = SANITIZED ? 200000 : 1000000;
	for (unsigned nthieves = 1; nthieves <= MAXTHIEVES; nthieves++)
		race_round(&r, nthieves, total);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pushed_processes_pop_in_fifo_order),
	    cmocka_unit_test(a_full_ring_holds_exactly_its_capacity_without_overflow),
	    cmocka_unit_test(the_push_past_a_full_ring_moves_the_older_half_to_overflow),
	    cmocka_unit_test(overflow_beyond_the_ring_keeps_every_process_exactly_once),
	    cmocka_unit_test(the_overflow_counts_every_process_it_lets_out),
	    cmocka_unit_test(an_overflow_that_cannot_grow_spills_in_order),
	    cmocka_unit_test(random_pushes_and_pops_match_a_multiset),
	    cmocka_unit_test(steal_takes_half_of_the_ring_and_returns_the_newest_taken),
	    cmocka_unit_test(steal_leaves_a_queue_shorter_than_min_alone),
	    cmocka_unit_test(steal_from_a_full_ring_takes_half),
	    cmocka_unit_test(steal_takes_from_the_overflow_when_the_ring_is_empty),
	    cmocka_unit_test(a_ring_that_never_drains_does_not_starve_the_overflow),
	    cmocka_unit_test(a_stream_pushed_to_the_back_waits_behind_the_overflow),
	    cmocka_unit_test(
		a_steal_from_a_long_overflow_takes_half_and_keeps_what_its_ring_cannot),
	    cmocka_unit_test(steal_takes_half_of_ring_and_overflow_together_from_the_overflow),
	    cmocka_unit_test(steal_takes_the_ring_half_when_the_overflow_is_the_smaller_part),
	    cmocka_unit_test(processes_given_back_are_the_owners_alone),
	    cmocka_unit_test(an_owner_and_its_thieves_take_every_process_exactly_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
