/* Tests for the slot table behind pids (alloc/slots.c): argument checks, O(1) index <-> address
 * identity, the max bound, recycling through per-owner caches and the shared pool, zeroed
 * chunks; and how the bound shows through kr_spawn. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/arena.h"
#include "alloc/slots.h"
#include "krill.h"

#define CHUNK     (1u << SLOTS_CHUNK_BITS)
#define KEEP_MAX  4096u /* bounds of a large table's keep * batch and batch, for arrays */
#define BATCH_MAX 256u

/* The index whose slot is at address a, found from the directory alone. */
static uint32_t index_of(const struct slots *s, const void *a)
{
	for (uint32_t c = 0; c < s->nchunks; c++) {
		unsigned char *base = atomic_load(&s->dir[c]);
		if (base && (const unsigned char *)a >= base &&
		    (const unsigned char *)a < base + (size_t)s->size * CHUNK)
			return c << SLOTS_CHUNK_BITS |
			       (uint32_t)(((const unsigned char *)a - base) / s->size);
	}
	return SLOTS_NIL;
}

static void slots_init_rejects_bad_arguments(void **state)
{
	(void)state;
	struct slots s;
	assert_int_equal(kri_slots_init(&s, 0, 100), -EINVAL);
	assert_int_equal(kri_slots_init(&s, 16, 100), -EINVAL); /* below 32 */
	assert_int_equal(kri_slots_init(&s, 48, 100), -EINVAL); /* not a power of two */
	assert_int_equal(kri_slots_init(&s, 64, 0), -EINVAL);
	kri_slots_fini(&s, NULL); /* a failed init leaves nothing to free */
	assert_int_equal(kri_slots_init(&s, 32, 1), 0);
	assert_int_equal(s.size, 32);
	assert_int_equal(s.max, 1);
	assert_int_equal(s.nchunks, 1);
	kri_slots_fini(&s, NULL);
}

static void slots_init_clamps_max_below_the_nil_index(void **state)
{
	(void)state;
	struct slots s;
	assert_int_equal(kri_slots_init(&s, 64, UINT64_MAX), 0);
	assert_int_equal(s.max, UINT32_MAX - 1);
	assert_int_equal(s.nchunks, (uint32_t)(((uint64_t)UINT32_MAX - 1 + CHUNK - 1) / CHUNK));
	assert_null(slot_at(&s, SLOTS_NIL));
	kri_slots_fini(&s, NULL);
}

static void slot_at_is_an_identity_between_indexes_and_addresses(void **state)
{
	(void)state;
	struct slots s;
	struct slot_cache c;
	uint32_t max = 2 * CHUNK + 100, idx;
	assert_int_equal(kri_slots_init(&s, 64, max), 0);
	kri_slot_cache_init(&c);
	assert_null(slot_at(&s, 0)); /* no chunk yet */
	assert_false(slot_exists(&s, 0));
	for (uint32_t k = 0; k < max; k++) {
		assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), 0);
		assert_int_equal(idx, k); /* a fresh table hands out indexes in order */
	}
	assert_int_equal(s.grown, 3);
	for (uint32_t i = 0; i < max; i++) {
		unsigned char *a = slot_at(&s, i);
		assert_non_null(a);
		assert_true(slot_exists(&s, i));
		assert_int_equal((uintptr_t)a % s.size, 0);
		assert_int_equal(index_of(&s, a), i);
		if ((i + 1) % CHUNK && i + 1 < max)
			assert_ptr_equal(slot_at(&s, i + 1), a + s.size);
	}
	assert_null(slot_at(&s, max));
	assert_null(slot_at(&s, UINT32_MAX));
	kri_slots_fini(&s, NULL);
}

static void the_get_past_max_fails_with_eagain_until_one_is_put(void **state)
{
	(void)state;
	/* One bound inside the first chunk, one just past a chunk boundary. */
	static const uint32_t maxes[] = {100, CHUNK + 3};
	for (size_t m = 0; m < sizeof maxes / sizeof *maxes; m++) {
		struct slots s;
		struct slot_cache c;
		uint32_t max = maxes[m], idx;
		assert_int_equal(kri_slots_init(&s, 64, max), 0);
		kri_slot_cache_init(&c);
		for (uint32_t k = 0; k < max; k++)
			assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), 0);
		assert_int_equal(idx, max - 1);
		idx = 12345;
		assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), -EAGAIN);
		assert_int_equal(idx, 12345); /* a failed call changes nothing */
		assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), -EAGAIN);
		kri_slots_put(&s, &c, 7);
		assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), 0);
		assert_int_equal(idx, 7);
		assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), -EAGAIN);
		kri_slots_fini(&s, NULL);
	}
}

static void a_put_index_is_the_next_one_got(void **state)
{
	(void)state;
	struct slots s;
	struct slot_cache c;
	uint32_t idx, got[10];
	assert_int_equal(kri_slots_init(&s, 64, 1000), 0);
	kri_slot_cache_init(&c);
	for (int k = 0; k < 10; k++)
		assert_int_equal(kri_slots_get(&s, &c, NULL, &got[k]), 0);
	kri_slots_put(&s, &c, got[3]);
	kri_slots_put(&s, &c, got[8]);
	assert_int_equal(c.n, 2);
	assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), 0);
	assert_int_equal(idx, got[8]); /* last put, first got */
	assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), 0);
	assert_int_equal(idx, got[3]);
	assert_int_equal(c.n, 0);
	assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), 0);
	assert_int_equal(idx, 10); /* then the untouched ones again */
	kri_slots_fini(&s, NULL);
}

/* Link idx[0] -> ... -> idx[n - 1] through each slot's first link word, as a limbo does. */
static void link_list(const struct slots *s, const uint32_t *idx, uint32_t n)
{
	for (uint32_t k = 0; k + 1 < n; k++)
		memcpy((unsigned char *)slot_at(s, idx[k]) + SLOTS_LINK_OFF, &idx[k + 1],
		       sizeof(uint32_t));
}

/* A limbo hands its list over whole: linked through each slot's first link word, head to
 * tail, it is got back in that order, before what the cache held. */
static void a_list_put_whole_is_got_head_first(void **state)
{
	(void)state;
	struct slots s;
	struct slot_cache c;
	uint32_t idx, got[6];
	assert_int_equal(kri_slots_init(&s, 64, 1000), 0);
	kri_slot_cache_init(&c);
	for (int k = 0; k < 6; k++)
		assert_int_equal(kri_slots_get(&s, &c, NULL, &got[k]), 0);
	kri_slots_put(&s, &c, got[0]);
	link_list(&s, got + 1, 4);
	kri_slots_put_list(&s, &c, got[1], got[4], 4);
	kri_slots_put_list(&s, &c, SLOTS_NIL, SLOTS_NIL, 0); /* nothing */
	assert_int_equal(c.n, 5);
	for (int k = 1; k < 5; k++) {
		assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), 0);
		assert_int_equal(idx, got[k]);
	}
	assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), 0);
	assert_int_equal(idx, got[0]);
	assert_int_equal(c.n, 0);
	/* A list that fills the current batch moves to the stash with it. */
	const uint32_t b = s.batch;
	static uint32_t many[BATCH_MAX + 1];
	assert_true(b + 1 <= BATCH_MAX + 1);
	for (uint32_t k = 0; k <= b; k++)
		assert_int_equal(kri_slots_get(&s, &c, NULL, &many[k]), 0);
	kri_slots_put(&s, &c, many[b]);
	link_list(&s, many, b);
	kri_slots_put_list(&s, &c, many[0], many[b - 1], b);
	assert_int_equal(c.full, 1);
	assert_int_equal(c.cur, 0);
	assert_int_equal(c.n, b + 1);
	for (uint32_t k = 0; k <= b; k++) {
		assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), 0);
		assert_int_equal(idx, many[k]);
	}
	kri_slots_fini(&s, NULL);

	/* A list longer than the stash may hold, on a large table: the older batches go to the
	 * pool, the list stays whole. */
	struct slots t;
	struct slot_cache d;
	static uint32_t old[2 * BATCH_MAX], list[KEEP_MAX + 1];
	assert_int_equal(kri_slots_init(&t, 64, 64 * CHUNK), 0);
	kri_slot_cache_init(&d);
	const uint32_t nold = 2 * t.batch, len = t.keep * t.batch + 1;
	assert_true(nold <= 2 * BATCH_MAX && len <= KEEP_MAX + 1);
	for (uint32_t k = 0; k < nold; k++)
		assert_int_equal(kri_slots_get(&t, &d, NULL, &old[k]), 0);
	for (uint32_t k = 0; k < len; k++)
		assert_int_equal(kri_slots_get(&t, &d, NULL, &list[k]), 0);
	for (uint32_t k = 0; k < nold; k++)
		kri_slots_put(&t, &d, old[k]);
	assert_int_equal(d.full, 2);
	link_list(&t, list, len);
	kri_slots_put_list(&t, &d, list[0], list[len - 1], len);
	assert_int_equal(d.full, 1);
	assert_int_equal(d.n, len);
	assert_int_equal(t.pooled, nold);
	assert_int_equal(kri_slots_get(&t, &d, NULL, &idx), 0);
	assert_int_equal(idx, list[0]);
	kri_slots_fini(&t, NULL);
}

static void a_slot_keeps_its_bytes_outside_the_link_area_across_reuse(void **state)
{
	(void)state;
	struct slots s;
	struct slot_cache c;
	uint32_t idx, again;
	assert_int_equal(kri_slots_init(&s, 64, 1000), 0);
	kri_slot_cache_init(&c);
	assert_int_equal(kri_slots_get(&s, &c, NULL, &idx), 0);
	unsigned char *a = slot_at(&s, idx);
	memset(a, 0xa5, 64); /* a process's generation lives in these bytes */
	kri_slots_put(&s, &c, idx);
	assert_int_equal(kri_slots_get(&s, &c, NULL, &again), 0);
	assert_int_equal(again, idx);
	for (int b = 0; b < 64; b++)
		if (b < SLOTS_LINK_OFF || b >= SLOTS_LINK_OFF + 16)
			assert_int_equal(a[b], 0xa5);
	kri_slots_fini(&s, NULL);
}

static void a_new_chunk_is_zeroed(void **state)
{
	(void)state;
	struct arena a;
	struct slots s;
	struct slot_cache c;
	uint32_t idx;
	assert_int_equal(kri_arena_init(&a), 0);
	/* Leave a dirty chunk-sized block in the arena for the table to be given. */
	size_t bytes = (size_t)64 << SLOTS_CHUNK_BITS;
	for (int k = 0; k < 4; k++) {
		unsigned char *dirty = kri_arena_alloc_aligned(&a, bytes, 2u << 20);
		assert_non_null(dirty);
		memset(dirty, 0xee, bytes);
		arena_free(&a, dirty, bytes);
	}
	assert_int_equal(kri_slots_init(&s, 64, 3 * CHUNK), 0);
	kri_slot_cache_init(&c);
	assert_int_equal(kri_slots_get(&s, &c, &a, &idx), 0);
	const unsigned char *chunk = atomic_load(&s.dir[0]);
	for (size_t b = 0; b < bytes; b++)
		if (chunk[b])
			fail_msg("byte %zu of a new chunk is 0x%02x", b, chunk[b]);
	kri_slots_fini(&s, &a);
	kri_arena_fini(&a);
}

/* Spawn on one cache, exit on another: indexes travel back through the pool. */
static void batches_move_through_the_pool_between_two_caches(void **state)
{
	(void)state;
	struct slots s;
	struct slot_cache spawner, reaper;
	uint32_t idx;
	assert_int_equal(kri_slots_init(&s, 64, 64 * CHUNK), 0);
	kri_slot_cache_init(&spawner);
	kri_slot_cache_init(&reaper);
	enum { LIVE = 100, ROUNDS = 300000 };
	uint32_t live[LIVE];
	for (int k = 0; k < LIVE; k++)
		assert_int_equal(kri_slots_get(&s, &spawner, NULL, &live[k]), 0);
	for (uint32_t r = 0; r < ROUNDS; r++) {
		/* The oldest live index exits on the other cache; a new one is spawned. */
		kri_slots_put(&s, &reaper, live[r % LIVE]);
		assert_int_equal(kri_slots_get(&s, &spawner, NULL, &idx), 0);
		live[r % LIVE] = idx;
		assert_true(reaper.n < (s.keep + 1) * s.batch);
	}
	/* Nine chunks' worth of spawns, yet only the first chunk was ever made. */
	assert_int_equal(s.grown, 1);
	assert_true(s.pooled > 0);
	/* Accounting: every index of the chunk is live, cached, pooled or never used (in a
	 * cache's bump range or still the table's). */
	assert_int_equal(LIVE + spawner.n + reaper.n + s.pooled +
			     (spawner.bump_end - spawner.bump) + (s.fresh_end - s.fresh),
			 CHUNK);
	kri_slots_fini(&s, NULL);
}

/* Exits and spawns in waves on one cache, each wave under what it keeps: every index comes
 * back from its own stash, none through the pool, where the other core's would wait. */
static void waves_on_one_cache_stay_off_the_pool(void **state)
{
	(void)state;
	struct slots s;
	struct slot_cache c, other;
	static uint32_t live[KEEP_MAX];
	assert_int_equal(kri_slots_init(&s, 64, 64 * CHUNK), 0);
	kri_slot_cache_init(&c);
	kri_slot_cache_init(&other);
	const uint32_t wave = s.keep * s.batch;
	assert_true(s.keep > 1 && wave <= KEEP_MAX);
	for (uint32_t k = 0; k < wave; k++)
		assert_int_equal(kri_slots_get(&s, &c, NULL, &live[k]), 0);
	uint32_t fresh_left = c.bump_end - c.bump;
	for (int round = 0; round < 4; round++) {
		for (uint32_t k = 0; k < wave; k++)
			kri_slots_put(&s, &c, live[k]);
		assert_int_equal(s.pooled, 0);
		assert_int_equal(c.n, wave);
		for (uint32_t k = 0; k < wave; k++)
			assert_int_equal(kri_slots_get(&s, &c, NULL, &live[k]), 0);
		assert_int_equal(c.n, 0);
		assert_int_equal(c.bump_end - c.bump, fresh_left); /* no fresh index either */
	}
	/* One batch more than it keeps: the oldest batch, the first freed, goes to the pool
	 * and is what a new cache gets. */
	for (uint32_t k = 0; k < wave; k++)
		kri_slots_put(&s, &c, live[k]);
	uint32_t extra[2 * BATCH_MAX];
	assert_true(2 * s.batch <= 2 * BATCH_MAX);
	for (uint32_t k = 0; k < s.batch; k++)
		assert_int_equal(kri_slots_get(&s, &other, NULL, &extra[k]), 0);
	for (uint32_t k = 0; k < s.batch; k++)
		kri_slots_put(&s, &c, extra[k]);
	assert_int_equal(s.pooled, s.batch);
	struct slot_cache third;
	uint32_t idx;
	kri_slot_cache_init(&third);
	assert_int_equal(kri_slots_get(&s, &third, NULL, &idx), 0);
	int first_batch = 0;
	for (uint32_t k = 0; k < s.batch; k++)
		first_batch |= idx == live[k];
	assert_true(first_batch);
	kri_slots_fini(&s, NULL);
}

static void flush_moves_every_cached_index_to_the_pool(void **state)
{
	(void)state;
	struct slots s;
	struct slot_cache a, b;
	uint32_t idx;
	static unsigned char seen[1000];
	assert_int_equal(kri_slots_init(&s, 64, 1000), 0);
	kri_slot_cache_init(&a);
	kri_slot_cache_init(&b);
	for (uint32_t k = 0; k < 1000; k++)
		assert_int_equal(kri_slots_get(&s, &a, NULL, &idx), 0);
	for (uint32_t k = 0; k < 1000; k++)
		kri_slots_put(&s, &a, k);
	assert_int_equal(a.n + s.pooled, 1000);
	kri_slots_flush(&s, &a);
	assert_int_equal(a.n, 0);
	assert_int_equal(a.head, SLOTS_NIL);
	assert_int_equal(s.pooled, 1000);
	/* Another cache gets all of them back, each once, and then the table is full. */
	memset(seen, 0, sizeof seen);
	for (uint32_t k = 0; k < 1000; k++) {
		assert_int_equal(kri_slots_get(&s, &b, NULL, &idx), 0);
		assert_true(idx < 1000);
		assert_int_equal(seen[idx]++, 0);
	}
	assert_int_equal(s.pooled, 0);
	assert_int_equal(kri_slots_get(&s, &b, NULL, &idx), -EAGAIN);
	assert_int_equal(s.grown, 1);
	kri_slots_fini(&s, NULL);
}

/* Two threads: one gets and hands indexes over, the other puts them on its own cache. */
struct pipe {
	struct slots *s;
	_Atomic uint32_t ring[1024];
	_Atomic uint64_t head, tail;
	uint64_t total;
	_Atomic int failed;
};

static void *reaper_main(void *arg)
{
	struct pipe *p = arg;
	struct slot_cache c;
	kri_slot_cache_init(&c);
	for (uint64_t got = 0; got < p->total && !atomic_load(&p->failed);) {
		uint64_t h = atomic_load_explicit(&p->head, memory_order_relaxed);
		if (h == atomic_load_explicit(&p->tail, memory_order_acquire)) {
			sched_yield();
			continue;
		}
		uint32_t idx = atomic_load_explicit(&p->ring[h % 1024], memory_order_relaxed);
		/* The slot is ours now: scribble on it as a process would. */
		memset((unsigned char *)slot_at(p->s, idx) + 32, 0x5a, 32);
		kri_slots_put(p->s, &c, idx);
		atomic_store_explicit(&p->head, h + 1, memory_order_release);
		got++;
	}
	kri_slots_flush(p->s, &c);
	return NULL;
}

static void two_threads_recycle_through_the_pool_without_growing(void **state)
{
	(void)state;
	static struct pipe p;
	struct slots s;
	struct slot_cache c;
	pthread_t th;
	assert_int_equal(kri_slots_init(&s, 64, 64 * CHUNK), 0);
	kri_slot_cache_init(&c);
	memset(&p, 0, sizeof p);
	p.s = &s;
	p.total = 200000;
	assert_int_equal(pthread_create(&th, NULL, reaper_main, &p), 0);
	for (uint64_t t = 0; t < p.total; t++) {
		uint32_t idx;
		while (t - atomic_load_explicit(&p.head, memory_order_acquire) >= 1024)
			sched_yield();
		int rc = kri_slots_get(&s, &c, NULL, &idx);
		if (rc) {
			atomic_store(&p.failed, 1);
			pthread_join(th, NULL);
			fail_msg("get %llu failed: %d", (unsigned long long)t, rc);
		}
		memset((unsigned char *)slot_at(&s, idx) + 32, 0x11, 32);
		atomic_store_explicit(&p.ring[t % 1024], idx, memory_order_relaxed);
		atomic_store_explicit(&p.tail, t + 1, memory_order_release);
	}
	pthread_join(th, NULL);
	assert_int_equal(s.grown, 1);
	kri_slots_flush(&s, &c); /* never-used indexes too: none is lost */
	assert_int_equal(c.n, 0);
	assert_int_equal(c.bump, c.bump_end);
	assert_int_equal(s.pooled + (s.fresh_end - s.fresh), CHUNK);
	kri_slots_fini(&s, NULL);
}

/* A cache's never-used indexes (taken from the table a few at a time) go back with a flush:
 * once they were dropped, and a small table lost them for good. */
static void flush_gives_back_never_used_indexes_too(void **state)
{
	(void)state;
	struct slots s;
	struct slot_cache a, b;
	uint32_t idx;
	assert_int_equal(kri_slots_init(&s, 64, 6400), 0); /* 100 fresh indexes at a time */
	kri_slot_cache_init(&a);
	kri_slot_cache_init(&b);
	assert_int_equal(kri_slots_get(&s, &a, NULL, &idx), 0);
	assert_true(a.bump_end - a.bump > 0);
	kri_slots_flush(&s, &a);
	for (uint32_t k = 1; k < 6400; k++)
		assert_int_equal(kri_slots_get(&s, &b, NULL, &idx), 0);
	assert_int_equal(kri_slots_get(&s, &b, NULL, &idx), -EAGAIN);
	kri_slots_fini(&s, NULL);
}

/* Never-used indexes are shared out a few at a time: a cache that grew the only chunk must
 * not keep the rest of it from the others (once it did, and -EAGAIN came with 1 of 100 in
 * use). */
static void a_second_cache_gets_an_index_while_the_table_is_nearly_empty(void **state)
{
	(void)state;
	struct slots s;
	struct slot_cache a, b;
	uint32_t idx;
	assert_int_equal(kri_slots_init(&s, 64, 100), 0);
	kri_slot_cache_init(&a);
	kri_slot_cache_init(&b);
	assert_int_equal(kri_slots_get(&s, &a, NULL, &idx), 0);
	/* 1 of 100 indexes in use. */
	assert_int_equal(kri_slots_get(&s, &b, NULL, &idx), 0);
	kri_slots_fini(&s, NULL);
}

/* The same through the public API: with max_procs = 1000, the first process (spawned with
 * kr_rt_spawn, on the foreign cache) must be able to spawn children. */
static int child_spawn_rc = 1;

static void child(kr_ctx *ctx, void *st, const kr_msg *m)
{
	(void)st;
	(void)m;
	kr_exit(ctx, KR_NORMAL);
}

static void parent(kr_ctx *ctx, void *st, const kr_msg *m)
{
	(void)st;
	(void)m;
	kr_pid c;
	child_spawn_rc = kr_spawn(ctx, child, NULL, 0, &c);
	if (child_spawn_rc == 0)
		kr_send(ctx, c, 1, NULL, 0);
	kr_exit(ctx, KR_NORMAL);
}

static void a_process_can_spawn_while_max_procs_is_far_from_reached(void **state)
{
	(void)state;
	kr_config cfg;
	kr_runtime *rt;
	kr_pid p;
	kr_config_init(&cfg);
	cfg.schedulers = 2;
	cfg.deterministic = 1;
	cfg.max_procs = 1000;
	assert_int_equal(kr_runtime_new(&cfg, &rt), 0);
	assert_int_equal(kr_rt_spawn(rt, parent, NULL, 0, &p), 0);
	assert_int_equal(kr_rt_send(rt, p, 1, NULL, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	int rc = child_spawn_rc;
	uint64_t alive = kr_alive(rt);
	kr_runtime_free(rt);
	assert_int_equal(alive, 0);
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(slots_init_rejects_bad_arguments),
	    cmocka_unit_test(slots_init_clamps_max_below_the_nil_index),
	    cmocka_unit_test(slot_at_is_an_identity_between_indexes_and_addresses),
	    cmocka_unit_test(the_get_past_max_fails_with_eagain_until_one_is_put),
	    cmocka_unit_test(a_put_index_is_the_next_one_got),
	    cmocka_unit_test(a_list_put_whole_is_got_head_first),
	    cmocka_unit_test(a_slot_keeps_its_bytes_outside_the_link_area_across_reuse),
	    cmocka_unit_test(a_new_chunk_is_zeroed),
	    cmocka_unit_test(batches_move_through_the_pool_between_two_caches),
	    cmocka_unit_test(waves_on_one_cache_stay_off_the_pool),
	    cmocka_unit_test(flush_moves_every_cached_index_to_the_pool),
	    cmocka_unit_test(flush_gives_back_never_used_indexes_too),
	    cmocka_unit_test(two_threads_recycle_through_the_pool_without_growing),
	    cmocka_unit_test(a_second_cache_gets_an_index_while_the_table_is_nearly_empty),
	    cmocka_unit_test(a_process_can_spawn_while_max_procs_is_far_from_reached),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
