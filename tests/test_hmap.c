/* Tests for the hash map (util/hmap.h) and the pid set built on it (util/pidset.h): insert, find,
 * delete, deletions whose cluster wraps round the table's end, growth, failed growth, and long
 * random runs checked against a plain array, with the table's invariants checked as they go.
 * Reproduce a random failure with KRILL_SEED=<seed printed in the failure>. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/seed.h"
#include "util/hmap.h"
#include "util/pidset.h"

/* ---- a map of 16-byte entries, its memory counted ---------------------------------------- */

struct ent {
	uint64_t key;
	uint64_t val;
};

static size_t held; /* bytes the test allocator has out */
static bool refuse; /* the test allocator fails */

static void *count_alloc(void *ctx, size_t bytes)
{
	(void)ctx;
	if (refuse)
		return NULL;
	held += bytes;
	return calloc(1, bytes);
}

static void count_free(void *ctx, void *p, size_t bytes)
{
	(void)ctx;
	held -= bytes;
	free(p);
}

static const struct kri_hmap_kind sparse = {
    .esize = sizeof(struct ent), .mincap = 16, .fill = 1, .alloc = count_alloc, .free = count_free};
static const struct kri_hmap_kind dense = {
    .esize = sizeof(struct ent), .mincap = 16, .fill = 3, .alloc = count_alloc, .free = count_free};

/* Each test starts with nothing held: one that failed halfway leaks its map, not its count. */
static int reset(void **state)
{
	(void)state;
	held = 0;
	refuse = false;
	return 0;
}

static uint64_t seed;
static size_t op; /* of the random run under way */

#define CHECK(x)                                                                                  \
	do {                                                                                      \
		if (!(x))                                                                         \
			fail_msg("KRILL_SEED=%llu op %zu: %s", (unsigned long long)seed, op, #x); \
	} while (0)

static struct ent *cell(const struct kri_hmap *m, const struct kri_hmap_kind *k, uint32_t i)
{
	return kri_hmap_at(m, k, i);
}

static void put(struct kri_hmap *m, const struct kri_hmap_kind *k, uint64_t key, uint64_t val)
{
	assert_int_equal(kri_hmap_reserve(m, k, 0), 0);
	struct ent *e = kri_hmap_insert(m, k, key);
	assert_int_equal(e->key, key);
	assert_int_equal(e->val, 0);
	e->val = val;
}

/* The smallest key > after whose home in a table of mask + 1 cells is h. */
static uint64_t key_at(uint32_t h, uint32_t mask, uint64_t after)
{
	uint64_t k = after + 1;
	while (kri_hmap_home(k, mask) != h)
		k++;
	return k;
}

/* Every invariant of m: n entries; each reached by a probe from its home that crosses no empty
 * cell, found where it is, with the reference's value; empty cells all zero; fill respected;
 * and the reference's keys, and only them, in m. */
static void check_map(const struct kri_hmap *m, const struct kri_hmap_kind *k, const uint64_t *keys,
		      const uint64_t *vals, size_t nref)
{
	CHECK(m->n == nref);
	if (!m->mask) {
		CHECK(m->t == NULL && nref == 0);
		return;
	}
	CHECK(((m->mask + 1) & m->mask) == 0);
	CHECK(4 * (uint64_t)m->n <= (uint64_t)k->fill * (m->mask + 1));
	uint32_t count = 0;
	for (uint32_t j = 0; j <= m->mask; j++) {
		struct ent *e = cell(m, k, j);
		if (e->key == 0) {
			CHECK(e->val == 0);
			continue;
		}
		count++;
		for (uint32_t i = kri_hmap_home(e->key, m->mask); i != j; i = (i + 1) & m->mask)
			CHECK(cell(m, k, i)->key != 0);
		CHECK(kri_hmap_find(m, k, e->key) == e);
	}
	CHECK(count == m->n);
	for (size_t r = 0; r < nref; r++) {
		struct ent *e = kri_hmap_find(m, k, keys[r]);
		CHECK(e != NULL);
		if (e)
			CHECK(e->val == vals[r]);
	}
}

/* ---- the map -------------------------------------------------------------------------------- */

static void an_empty_map_finds_nothing_and_has_no_table(void **state)
{
	(void)state;
	struct kri_hmap m = {0};
	uint32_t i = 0;
	assert_null(kri_hmap_find(&m, &sparse, 42));
	assert_false(kri_hmap_remove(&m, &sparse, 42));
	assert_null(kri_hmap_next(&m, &sparse, &i));
	kri_hmap_fini(&m, &sparse, 0);
	assert_int_equal(held, 0);
}

static void inserted_keys_are_found_with_their_values_and_deleted_ones_are_not(void **state)
{
	(void)state;
	struct kri_hmap m = {0};
	for (uint64_t k = 1; k <= 3; k++)
		put(&m, &sparse, k << 32 | 7, k * 10);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.mask + 1, 16);
	for (uint64_t k = 1; k <= 3; k++) {
		struct ent *e = kri_hmap_find(&m, &sparse, k << 32 | 7);
		assert_non_null(e);
		assert_int_equal(e->val, k * 10);
	}
	assert_null(kri_hmap_find(&m, &sparse, 4ull << 32 | 7));
	assert_true(kri_hmap_remove(&m, &sparse, 2ull << 32 | 7));
	assert_false(kri_hmap_remove(&m, &sparse, 2ull << 32 | 7));
	assert_null(kri_hmap_find(&m, &sparse, 2ull << 32 | 7));
	assert_int_equal(m.n, 2);
	uint64_t keys[] = {1ull << 32 | 7, 3ull << 32 | 7}, vals[] = {10, 30};
	check_map(&m, &sparse, keys, vals, 2);
	kri_hmap_fini(&m, &sparse, 0);
	assert_int_equal(m.mask, 0);
	assert_null(m.t);
	assert_int_equal(held, 0);
}

/* A cluster that starts in the last cells and runs on from cell 0: a deletion before the wrap
 * pulls entries back across it, and one whose homes all lie after the hole moves nothing. */
static void a_deletion_shifts_back_across_the_end_of_the_table(void **state)
{
	(void)state;
	struct kri_hmap m = {0};
	assert_int_equal(kri_hmap_reserve(&m, &dense, 0), 0);
	const uint32_t mask = 15;
	assert_int_equal(m.mask, mask);
	uint64_t d = key_at(14, mask, 0);
	uint64_t a1 = key_at(15, mask, 0), a2 = key_at(15, mask, a1), a3 = key_at(15, mask, a2);
	uint64_t b = key_at(0, mask, 0), c = key_at(1, mask, 0);
	put(&m, &dense, d, 'd');
	put(&m, &dense, a1, 1);
	put(&m, &dense, a2, 2);
	put(&m, &dense, a3, 3);
	put(&m, &dense, b, 'b');
	put(&m, &dense, c, 'c');
	/* 14: d, 15: a1, 0: a2, 1: a3, 2: b (home 0), 3: c (home 1) */
	assert_int_equal(cell(&m, &dense, 14)->key, d);
	assert_int_equal(cell(&m, &dense, 15)->key, a1);
	assert_int_equal(cell(&m, &dense, 0)->key, a2);
	assert_int_equal(cell(&m, &dense, 1)->key, a3);
	assert_int_equal(cell(&m, &dense, 2)->key, b);
	assert_int_equal(cell(&m, &dense, 3)->key, c);

	/* The hole at 15: every later entry's home is at or before it, cyclically. */
	assert_true(kri_hmap_remove(&m, &dense, a1));
	assert_int_equal(cell(&m, &dense, 15)->key, a2);
	assert_int_equal(cell(&m, &dense, 0)->key, a3);
	assert_int_equal(cell(&m, &dense, 1)->key, b);
	assert_int_equal(cell(&m, &dense, 2)->key, c);
	assert_int_equal(cell(&m, &dense, 3)->key, 0);
	assert_int_equal(cell(&m, &dense, 3)->val, 0);

	/* The hole at 14: every later entry's home is after it, across the wrap: none moves. */
	assert_true(kri_hmap_remove(&m, &dense, d));
	assert_int_equal(cell(&m, &dense, 14)->key, 0);
	assert_int_equal(cell(&m, &dense, 15)->key, a2);
	assert_int_equal(cell(&m, &dense, 0)->key, a3);
	assert_int_equal(cell(&m, &dense, 1)->key, b);
	assert_int_equal(cell(&m, &dense, 2)->key, c);

	/* The hole at 0, just past the wrap: b (home 0) and c (home 1) move back; a2 stays. */
	assert_true(kri_hmap_remove(&m, &dense, a3));
	assert_int_equal(cell(&m, &dense, 15)->key, a2);
	assert_int_equal(cell(&m, &dense, 0)->key, b);
	assert_int_equal(cell(&m, &dense, 1)->key, c);
	assert_int_equal(cell(&m, &dense, 2)->key, 0);

	uint64_t keys[] = {a2, b, c}, vals[] = {2, 'b', 'c'};
	check_map(&m, &dense, keys, vals, 3);
	kri_hmap_fini(&m, &dense, 0);
	assert_int_equal(held, 0);
}

static void the_table_doubles_before_it_is_fuller_than_its_kind_allows(void **state)
{
	(void)state;
	enum { N = 5000 };
	static uint64_t keys[N], vals[N];
	struct kri_hmap m = {0};
	for (uint32_t i = 0; i < N; i++) {
		uint32_t cap = m.mask + 1;
		keys[i] = (uint64_t)(2 * i + 1) << 32 | i; /* as pids: odd generation, slot */
		vals[i] = i;
		put(&m, &sparse, keys[i], vals[i]);
		/* Doubled exactly when a quarter would be passed. */
		if (i == 0)
			assert_int_equal(m.mask + 1, 16);
		else
			assert_int_equal(m.mask + 1, 4 * (i + 1) > cap ? 2 * cap : cap);
	}
	assert_int_equal(m.mask + 1, 32768);
	assert_int_equal(held, 32768 * sizeof(struct ent));
	check_map(&m, &sparse, keys, vals, N);
	uint32_t i = 0, seen = 0;
	for (struct ent *e; (e = kri_hmap_next(&m, &sparse, &i));) {
		assert_int_equal(e->key, keys[e->val]);
		seen++;
	}
	assert_int_equal(seen, N);
	kri_hmap_fini(&m, &sparse, 0);
	assert_int_equal(held, 0);
}

static void a_failed_growth_leaves_the_map_as_it_was(void **state)
{
	(void)state;
	struct kri_hmap m = {0};
	refuse = true;
	assert_int_equal(kri_hmap_reserve(&m, &sparse, 0), -ENOMEM);
	assert_int_equal(m.mask, 0);
	assert_null(m.t);
	refuse = false;
	uint64_t keys[4], vals[4];
	for (uint32_t i = 0; i < 4; i++) {
		keys[i] = 100 + i;
		vals[i] = i;
		put(&m, &sparse, keys[i], vals[i]);
	}
	void *t = m.t;
	refuse = true;
	assert_int_equal(kri_hmap_reserve(&m, &sparse, 0), -ENOMEM);
	refuse = false;
	assert_ptr_equal(m.t, t);
	assert_int_equal(m.mask, 15);
	check_map(&m, &sparse, keys, vals, 4);
	kri_hmap_fini(&m, &sparse, 0);
	assert_int_equal(held, 0);
}

/* ---- random runs against a plain array ------------------------------------------------------- */

struct ref {
	uint64_t keys[4096], vals[4096];
	size_t n;
};

static size_t ref_find(const struct ref *r, uint64_t key)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->keys[i] == key)
			return i;
	return SIZE_MAX;
}

/* ops random operations on keys drawn from universe[0..nu): insert (if absent), delete, find;
 * the whole map checked every check_every operations. A dense table pre-sized to cap cells
 * keeps its clusters long, so that deletions wrap round its end often. */
static void random_run(const struct kri_hmap_kind *k, uint32_t cap, const uint64_t *universe,
		       size_t nu, size_t ops, size_t check_every, uint64_t *rng)
{
	static struct ref r;
	struct kri_hmap m = {0};
	r.n = 0;
	while (m.mask + 1 < cap)
		CHECK(kri_hmap_grow(&m, k, 0) == 0);
	for (op = 0; op < ops; op++) {
		uint64_t key = universe[splitmix(rng) % nu];
		size_t at = ref_find(&r, key);
		struct ent *e = kri_hmap_find(&m, k, key);
		CHECK((e != NULL) == (at != SIZE_MAX));
		if (e)
			CHECK(e->val == r.vals[at]);
		switch (splitmix(rng) % 3) {
		case 0:
		case 1: /* as many inserts as deletes tried: a full table stays full */
			if (at == SIZE_MAX) {
				CHECK(kri_hmap_reserve(&m, k, 0) == 0);
				e = kri_hmap_insert(&m, k, key);
				e->val = splitmix(rng);
				r.keys[r.n] = key;
				r.vals[r.n++] = e->val;
			} else {
				CHECK(kri_hmap_remove(&m, k, key));
				r.keys[at] = r.keys[--r.n];
				r.vals[at] = r.vals[r.n];
			}
			break;
		default:
			if (e)
				e->val = r.vals[at] = splitmix(rng);
			break;
		}
		if (op % check_every == 0)
			check_map(&m, k, r.keys, r.vals, r.n);
	}
	check_map(&m, k, r.keys, r.vals, r.n);
	kri_hmap_fini(&m, k, 0);
	CHECK(held == 0);
}

static void random_operations_match_a_plain_array(void **state)
{
	(void)state;
	static uint64_t universe[4096];
	uint64_t rng = seed;
	/* Sparse, growing from nothing, keys as pids. */
	for (size_t i = 0; i < 1500; i++)
		universe[i] = (splitmix(&rng) | 1) << 32 | (splitmix(&rng) % 100000);
	random_run(&sparse, 0, universe, 1500, 100000, 5000, &rng);
	/* Dense, 64 cells, homes crowded into the last eight and the first two: the clusters run
	 * round the end. 48 keys fit, as many as each run draws from (a few may repeat). */
	for (size_t i = 0; i < 60; i++) {
		uint32_t h = (uint32_t)(splitmix(&rng) % 10);
		universe[i] = key_at((56 + h) & 63, 63, splitmix(&rng) >> 20);
	}
	random_run(&dense, 64, universe, 48, 100000, 1, &rng);
	random_run(&dense, 64, universe + 12, 48, 100000, 1, &rng);
	/* Sequential keys, as handles' owners: consecutive slots of one generation. */
	for (size_t i = 0; i < 1000; i++)
		universe[i] = 1ull << 32 | i;
	random_run(&dense, 0, universe, 1000, 100000, 10000, &rng);
}

/* ---- the pid set ---------------------------------------------------------------------------- */

static void one_pid_is_held_without_a_table(void **state)
{
	(void)state;
	struct kri_pidset s = {0};
	uint32_t i = 0;
	assert_int_equal(kri_pidset_next(&s, &i), 0);
	assert_false(kri_pidset_has(&s, 7));
	assert_false(kri_pidset_del(&s, 7));
	assert_int_equal(kri_pidset_add(&s, NULL, 7), 0);
	assert_int_equal(kri_pidset_add(&s, NULL, 7), 0); /* already in: nothing */
	assert_int_equal(kri_pidset_count(&s), 1);
	assert_int_equal(s.map.mask, 0);
	assert_int_equal(s.small.one, 7);
	assert_true(kri_pidset_has(&s, 7));
	assert_false(kri_pidset_has(&s, 9));
	i = 0;
	assert_int_equal(kri_pidset_next(&s, &i), 7);
	assert_int_equal(kri_pidset_next(&s, &i), 0);
	assert_true(kri_pidset_del(&s, 7));
	assert_false(kri_pidset_has(&s, 7));
	assert_int_equal(kri_pidset_count(&s), 0);
	/* Room for the first pid costs nothing either. */
	assert_int_equal(kri_pidset_reserve(&s, NULL), 0);
	assert_int_equal(s.map.mask, 0);
	kri_pidset_free(&s, NULL);
}

static void a_second_pid_moves_the_first_into_a_table(void **state)
{
	(void)state;
	struct kri_pidset s = {0};
	assert_int_equal(kri_pidset_add(&s, NULL, 7), 0);
	/* Room for a second: the table, holding the first. */
	assert_int_equal(kri_pidset_reserve(&s, NULL), 0);
	assert_int_equal(s.map.mask + 1, 8);
	assert_int_equal(kri_pidset_count(&s), 1);
	assert_true(kri_pidset_has(&s, 7));
	kri_pidset_insert(&s, 9);
	assert_true(kri_pidset_has(&s, 9));
	assert_int_equal(kri_pidset_count(&s), 2);
	/* A table stays a table, down to no pid. */
	assert_true(kri_pidset_del(&s, 7));
	assert_true(kri_pidset_del(&s, 9));
	assert_int_equal(kri_pidset_count(&s), 0);
	assert_int_equal(s.map.mask + 1, 8);
	uint32_t i = 0;
	assert_int_equal(kri_pidset_next(&s, &i), 0);
	/* Quarter full at most: 2 in 8, then 16 cells for the third. */
	assert_int_equal(kri_pidset_add(&s, NULL, 1), 0);
	assert_int_equal(kri_pidset_add(&s, NULL, 2), 0);
	assert_int_equal(s.map.mask + 1, 8);
	assert_int_equal(kri_pidset_add(&s, NULL, 3), 0);
	assert_int_equal(s.map.mask + 1, 16);
	kri_pidset_free(&s, NULL);
	assert_int_equal(s.map.mask, 0);
	assert_int_equal(kri_pidset_count(&s), 0);
	assert_false(kri_pidset_has(&s, 1));
}

static void random_pid_set_operations_match_a_plain_array(void **state)
{
	(void)state;
	static struct ref r;
	uint64_t rng = seed ^ 0x5eed, universe[300];
	for (size_t i = 0; i < 300; i++)
		universe[i] = (splitmix(&rng) | 1) << 32 | (uint32_t)i;
	for (size_t round = 0; round < 200; round++) {
		/* Small universes keep the set at 0, 1 or 2 pids: the inline pid, and its move
		 * into a table, again and again. */
		size_t nu = round % 4 == 0 ? 300 : 1 + round % 3;
		struct kri_pidset s = {0};
		r.n = 0;
		for (op = 0; op < 2000; op++) {
			uint64_t pid = universe[splitmix(&rng) % nu];
			size_t at = ref_find(&r, pid);
			CHECK(kri_pidset_has(&s, pid) == (at != SIZE_MAX));
			if (splitmix(&rng) % 2) {
				CHECK(kri_pidset_add(&s, NULL, pid) == 0);
				if (at == SIZE_MAX)
					r.keys[r.n++] = pid;
			} else {
				CHECK(kri_pidset_del(&s, pid) == (at != SIZE_MAX));
				if (at != SIZE_MAX)
					r.keys[at] = r.keys[--r.n];
			}
			CHECK(kri_pidset_count(&s) == r.n);
			if (op % 100 == 0 || nu < 300) {
				/* Iteration gives each pid once. */
				uint32_t i = 0, seen = 0;
				for (uint64_t p; (p = kri_pidset_next(&s, &i)); seen++)
					CHECK(ref_find(&r, p) != SIZE_MAX);
				CHECK(seen == r.n);
			}
		}
		kri_pidset_free(&s, NULL);
	}
}

int main(void)
{
	seed = seed_from_env();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(an_empty_map_finds_nothing_and_has_no_table, reset),
	    cmocka_unit_test_setup(
		inserted_keys_are_found_with_their_values_and_deleted_ones_are_not, reset),
	    cmocka_unit_test_setup(a_deletion_shifts_back_across_the_end_of_the_table, reset),
	    cmocka_unit_test_setup(the_table_doubles_before_it_is_fuller_than_its_kind_allows,
				   reset),
	    cmocka_unit_test_setup(a_failed_growth_leaves_the_map_as_it_was, reset),
	    cmocka_unit_test_setup(random_operations_match_a_plain_array, reset),
	    cmocka_unit_test_setup(one_pid_is_held_without_a_table, reset),
	    cmocka_unit_test_setup(a_second_pid_moves_the_first_into_a_table, reset),
	    cmocka_unit_test_setup(random_pid_set_operations_match_a_plain_array, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
