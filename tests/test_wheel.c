/* Tests for the timing wheel: exact expiry, order among ties and nodes armed mid-advance,
 * far-future expiries, and a long randomised run checked against a sorted-array reference.
 * Reproduce a random failure with KRILL_SEED=<seed printed in the failure>. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/seed.h"

#include "core/timer/wheel.h"

#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))
#define LEVEL(k)              (1ull << (WHEEL_BITS * (k))) /* span of one slot at level k */

struct tnode {
	struct wnode w;
	int id;
};

/* Records fire order; optional per-test hook runs inside fire. */
struct log {
	struct wheel *wh;
	int ids[4096];
	uint64_t whens[4096];
	size_t n;
	void (*hook)(struct log *l, struct tnode *t);
	void *ctx;
};

static void record(void *arg, struct wnode *n)
{
	struct log *l = arg;
	struct tnode *t = container_of(n, struct tnode, w);
	assert_false(wheel_armed(n));
	assert_true(l->n < 4096);
	l->ids[l->n] = t->id;
	l->whens[l->n] = n->when;
	l->n++;
	if (l->hook)
		l->hook(l, t);
}

static void init_nodes(struct tnode *t, int n)
{
	memset(t, 0, sizeof *t * (size_t)n);
	for (int i = 0; i < n; i++)
		t[i].id = i;
}

static void a_timer_fires_at_its_exact_millisecond(void **state)
{
	(void)state;
	struct wheel w;
	struct tnode t[1];
	struct log l = {.wh = &w};
	init_nodes(t, 1);
	kri_wheel_init(&w, 1000);
	kri_wheel_add(&w, &t[0].w, 1010);
	assert_true(wheel_armed(&t[0].w));
	assert_int_equal(w.count, 1);
	assert_int_equal(kri_wheel_advance(&w, 1009, record, &l), 0);
	assert_int_equal(w.now, 1009);
	assert_int_equal(kri_wheel_advance(&w, 1010, record, &l), 1);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.whens[0], 1010);
	assert_false(wheel_armed(&t[0].w));
	assert_int_equal(w.count, 0);
	assert_int_equal(kri_wheel_advance(&w, 5000, record, &l), 0);
	assert_int_equal(kri_wheel_next(&w), UINT64_MAX);
}

/* Every level and the slot edges around it, approached one millisecond at a time near the
 * end and by one jump from far away, from an origin that is not slot-aligned. */
static void nothing_fires_early_at_any_level(void **state)
{
	(void)state;
	static const uint64_t base = 123456789;
	uint64_t delays[64];
	int nd = 0;
	for (int k = 0; k <= WHEEL_LEVELS; k++) {
		for (int d = -2; d <= 2; d++) {
			if (d < 0 && (uint64_t)-d >= LEVEL(k))
				continue;
			delays[nd++] = LEVEL(k) + (uint64_t)(int64_t)d;
		}
	}
	delays[nd++] = 37;
	delays[nd++] = 3 * LEVEL(4) + 77;
	for (int i = 0; i < nd; i++) {
		for (int mode = 0; mode < 2; mode++) {
			struct wheel w;
			struct tnode t[1];
			struct log l = {.wh = &w};
			init_nodes(t, 1);
			kri_wheel_init(&w, base);
			uint64_t when = base + delays[i];
			kri_wheel_add(&w, &t[0].w, when);
			if (mode == 0) {
				uint64_t from = when - base > 200 ? when - 200 : base;
				assert_int_equal(kri_wheel_advance(&w, from, record, &l), 0);
				for (uint64_t now = from + 1; now < when; now++)
					assert_int_equal(kri_wheel_advance(&w, now, record, &l), 0);
			} else {
				assert_int_equal(kri_wheel_advance(&w, when - 1, record, &l), 0);
			}
			assert_int_equal(kri_wheel_next(&w), when);
			assert_int_equal(kri_wheel_advance(&w, when, record, &l), 1);
			assert_int_equal(l.whens[0], when);
		}
	}
}

static void ties_fire_in_arming_order(void **state)
{
	(void)state;
	struct wheel w;
	struct tnode t[8];
	struct log l = {.wh = &w};
	init_nodes(t, 8);
	kri_wheel_init(&w, 0);
	/* Same expiry armed from ever closer, so each lands a level lower than the last. */
	kri_wheel_add(&w, &t[0].w, 5000);
	kri_wheel_add(&w, &t[1].w, 5000);
	assert_int_equal(kri_wheel_advance(&w, 4096, record, &l), 0);
	kri_wheel_add(&w, &t[2].w, 5000);
	assert_int_equal(kri_wheel_advance(&w, 4992, record, &l), 0);
	kri_wheel_add(&w, &t[3].w, 5000);
	assert_int_equal(kri_wheel_advance(&w, 4999, record, &l), 0);
	kri_wheel_add(&w, &t[4].w, 5000);
	assert_int_equal(kri_wheel_advance(&w, 6000, record, &l), 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(l.ids[i], i);

	/* Ties beyond the levels: two parked far out, one armed after they come back in. */
	l.n = 0;
	uint64_t far = LEVEL(WHEEL_LEVELS) * 3 + 7;
	kri_wheel_add(&w, &t[5].w, far);
	kri_wheel_add(&w, &t[6].w, far);
	assert_int_equal(kri_wheel_advance(&w, far - 7, record, &l), 0);
	kri_wheel_add(&w, &t[7].w, far);
	assert_int_equal(kri_wheel_advance(&w, far, record, &l), 3);
	assert_int_equal(l.ids[0], 5);
	assert_int_equal(l.ids[1], 6);
	assert_int_equal(l.ids[2], 7);
}

static void past_expiries_fire_in_order_of_expiry_then_arming(void **state)
{
	(void)state;
	struct wheel w;
	struct tnode t[5];
	struct log l = {.wh = &w};
	init_nodes(t, 5);
	kri_wheel_init(&w, 100);
	kri_wheel_add(&w, &t[0].w, 100);
	kri_wheel_add(&w, &t[1].w, 50);
	kri_wheel_add(&w, &t[2].w, 100);
	kri_wheel_add(&w, &t[3].w, 70);
	kri_wheel_add(&w, &t[4].w, 50);
	assert_int_equal(kri_wheel_next(&w), 50);
	assert_int_equal(kri_wheel_advance(&w, 100, record, &l), 5);
	static const int want[] = {1, 4, 3, 0, 2};
	for (int i = 0; i < 5; i++)
		assert_int_equal(l.ids[i], want[i]);
}

static void del_other(struct log *l, struct tnode *t)
{
	if (t->id == 3)
		kri_wheel_del(l->wh, &((struct tnode *)l->ctx)[4].w);
}

static void deleting_prevents_firing_and_is_idempotent(void **state)
{
	(void)state;
	struct wheel w;
	struct tnode t[6];
	struct log l = {.wh = &w, .hook = del_other, .ctx = t};
	init_nodes(t, 6);
	kri_wheel_init(&w, 0);
	kri_wheel_add(&w, &t[0].w, 10);
	kri_wheel_add(&w, &t[1].w, 10);
	kri_wheel_add(&w, &t[2].w, 300000); /* alone in a level-3 slot */
	kri_wheel_add(&w, &t[3].w, 20);
	kri_wheel_add(&w, &t[4].w, 20); /* deleted by 3's fire */
	kri_wheel_del(&w, &t[0].w);
	kri_wheel_del(&w, &t[0].w);
	kri_wheel_del(&w, &t[5].w); /* never armed */
	assert_false(wheel_armed(&t[0].w));
	assert_int_equal(w.count, 4);
	kri_wheel_del(&w, &t[2].w);
	assert_int_equal(w.count, 3);
	assert_int_equal(kri_wheel_next(&w), 10);
	assert_int_equal(kri_wheel_advance(&w, 1000000, record, &l), 2);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.ids[0], 1);
	assert_int_equal(l.ids[1], 3);
	assert_false(wheel_armed(&t[4].w));
	assert_int_equal(w.count, 0);
	assert_int_equal(kri_wheel_next(&w), UINT64_MAX);
	/* Re-arming a deleted node works like a fresh one. */
	kri_wheel_add(&w, &t[0].w, 1000005);
	assert_int_equal(kri_wheel_advance(&w, 1000005, record, &l), 1);
	assert_int_equal(l.ids[2], 0);
}

static void rearm_periodic(struct log *l, struct tnode *t)
{
	if (t->id == 0 && t->w.when < 100)
		kri_wheel_add(l->wh, &t->w, t->w.when + 10);
	/* Node 1 re-arms for the same millisecond twice: both must fire in this call. */
	if (t->id == 1 && l->n < 13)
		kri_wheel_add(l->wh, &t->w, t->w.when);
}

static void a_node_can_rearm_itself_from_fire(void **state)
{
	(void)state;
	struct wheel w;
	struct tnode t[2];
	struct log l = {.wh = &w, .hook = rearm_periodic};
	init_nodes(t, 2);
	kri_wheel_init(&w, 0);
	kri_wheel_add(&w, &t[0].w, 10);
	assert_int_equal(kri_wheel_advance(&w, 100, record, &l), 10);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(l.ids[i], 0);
		assert_int_equal(l.whens[i], 10 * (uint64_t)(i + 1));
	}
	assert_false(wheel_armed(&t[0].w));
	kri_wheel_add(&w, &t[1].w, 150);
	assert_int_equal(kri_wheel_advance(&w, 150, record, &l), 3);
	assert_int_equal(l.whens[12], 150);
	assert_false(wheel_armed(&t[1].w));
}

static void arm_mid_advance(struct log *l, struct tnode *t)
{
	struct tnode *n = l->ctx;
	if (t->id != 0)
		return;
	kri_wheel_add(l->wh, &n[2].w, 5);  /* already past */
	kri_wheel_add(l->wh, &n[3].w, 10); /* now, after the node firing */
	kri_wheel_add(l->wh, &n[4].w, 15); /* later in this advance */
	kri_wheel_add(l->wh, &n[5].w, 31); /* after it */
	kri_wheel_add(l->wh, &n[6].w, 30); /* the advance's last millisecond */
	assert_int_equal(kri_wheel_next(l->wh), 5);
}

static void nodes_armed_during_advance_with_past_expiry_fire_in_the_same_call(void **state)
{
	(void)state;
	struct wheel w;
	struct tnode t[7];
	struct log l = {.wh = &w, .hook = arm_mid_advance, .ctx = t};
	init_nodes(t, 7);
	kri_wheel_init(&w, 0);
	kri_wheel_add(&w, &t[0].w, 10);
	kri_wheel_add(&w, &t[1].w, 20);
	assert_int_equal(kri_wheel_advance(&w, 30, record, &l), 6);
	static const int want[] = {0, 2, 3, 4, 1, 6};
	for (int i = 0; i < 6; i++)
		assert_int_equal(l.ids[i], want[i]);
	assert_true(wheel_armed(&t[5].w));
	assert_int_equal(kri_wheel_next(&w), 31);
	assert_int_equal(kri_wheel_advance(&w, 31, record, &l), 1);
	assert_int_equal(l.ids[6], 5);
}

/* A millisecond-by-millisecond walk would take days here; the test finishing is the check. */
static void large_time_jumps_skip_empty_time(void **state)
{
	(void)state;
	struct wheel w;
	struct tnode t[4];
	struct log l = {.wh = &w};
	init_nodes(t, 4);
	kri_wheel_init(&w, 0);
	kri_wheel_add(&w, &t[0].w, 999999999);
	kri_wheel_add(&w, &t[1].w, 1);
	kri_wheel_add(&w, &t[2].w, 500000000);
	assert_int_equal(kri_wheel_advance(&w, 1000000000, record, &l), 3);
	assert_int_equal(l.ids[0], 1);
	assert_int_equal(l.ids[1], 2);
	assert_int_equal(l.ids[2], 0);
	assert_int_equal(w.now, 1000000000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(kri_wheel_advance(&w, w.now + 1000000000, record, &l), 0);
	kri_wheel_add(&w, &t[3].w, UINT64_MAX - 1);
	assert_int_equal(kri_wheel_advance(&w, UINT64_MAX / 2, record, &l), 0);
	assert_int_equal(kri_wheel_advance(&w, UINT64_MAX - 2, record, &l), 0);
	assert_int_equal(kri_wheel_next(&w), UINT64_MAX - 1);
	assert_int_equal(kri_wheel_advance(&w, UINT64_MAX, record, &l), 1);
	assert_int_equal(l.whens[3], UINT64_MAX - 1);
	assert_int_equal(w.now, UINT64_MAX);
}

static void far_future_timers_fire_at_their_exact_expiry(void **state)
{
	(void)state;
	const uint64_t top = LEVEL(WHEEL_LEVELS);
	/* Origins just before a top-level boundary make even a 13 ms timer "far". */
	const uint64_t origins[] = {0, top - 10, 5 * top + 12345};
	for (size_t o = 0; o < sizeof origins / sizeof origins[0]; o++) {
		uint64_t now = origins[o];
		uint64_t when[] = {now + top + 5,     now + 13,  now + (1ull << 40),
				   now + 3 * top - 1, now + top, now + top - 1,
				   UINT64_MAX - 3};
		enum { N = sizeof when / sizeof when[0] };
		struct wheel w;
		struct tnode t[N];
		struct log l = {.wh = &w};
		init_nodes(t, N);
		kri_wheel_init(&w, now);
		for (int i = 0; i < N; i++)
			kri_wheel_add(&w, &t[i].w, when[i]);
		/* Visit the expiries in order, stopping a millisecond short of each. */
		int order[N];
		for (int i = 0; i < N; i++)
			order[i] = i;
		for (int i = 1; i < N; i++)
			for (int j = i; j > 0 && when[order[j]] < when[order[j - 1]]; j--) {
				int x = order[j];
				order[j] = order[j - 1];
				order[j - 1] = x;
			}
		for (int i = 0; i < N; i++) {
			uint64_t e = when[order[i]];
			assert_int_equal(kri_wheel_next(&w), e);
			assert_int_equal(kri_wheel_advance(&w, e - 1, record, &l), 0);
			assert_int_equal(kri_wheel_next(&w), e);
			assert_int_equal(kri_wheel_advance(&w, e, record, &l), 1);
			assert_int_equal(l.ids[i], order[i]);
		}
		assert_int_equal(w.count, 0);
	}
}

static void wheel_next_is_exact(void **state)
{
	(void)state;
	struct wheel w;
	struct tnode t[8];
	struct log l = {.wh = &w};
	init_nodes(t, 8);
	kri_wheel_init(&w, 0);
	assert_int_equal(kri_wheel_next(&w), UINT64_MAX);
	/* One level-1 slot holding 64..127, armed out of order: the answer is not the slot start
	 * or the head but the minimum. */
	kri_wheel_add(&w, &t[0].w, 100);
	kri_wheel_add(&w, &t[1].w, 70);
	kri_wheel_add(&w, &t[2].w, 127);
	kri_wheel_add(&w, &t[3].w, 90);
	assert_int_equal(kri_wheel_next(&w), 70);
	kri_wheel_del(&w, &t[1].w);
	assert_int_equal(kri_wheel_next(&w), 90);
	kri_wheel_add(&w, &t[4].w, 1000000);
	assert_int_equal(kri_wheel_next(&w), 90);
	kri_wheel_add(&w, &t[5].w, 3);
	assert_int_equal(kri_wheel_next(&w), 3);
	assert_int_equal(kri_wheel_advance(&w, 3, record, &l), 1);
	assert_int_equal(kri_wheel_next(&w), 90);
	assert_int_equal(kri_wheel_advance(&w, 95, record, &l), 1);
	assert_int_equal(kri_wheel_next(&w), 100);
	kri_wheel_add(&w, &t[6].w, 20); /* in the past */
	assert_int_equal(kri_wheel_next(&w), 20);
	assert_int_equal(kri_wheel_advance(&w, 95, record, &l), 1);
	assert_int_equal(kri_wheel_next(&w), 100);
	kri_wheel_del(&w, &t[0].w);
	kri_wheel_del(&w, &t[2].w);
	assert_int_equal(kri_wheel_next(&w), 1000000);
	kri_wheel_del(&w, &t[4].w);
	assert_int_equal(kri_wheel_next(&w), UINT64_MAX);
}

/* ---- randomised run against a reference ------------------------------------------------ */

#define POOL 1024
#define OPS  200000

struct rent {
	uint64_t when, seq;
	int id;
};

struct rnode {
	struct wnode w;
	int id;
	uint64_t seq;
};

struct rctx {
	struct wheel w;
	struct rnode nodes[POOL];
	struct rent ref[POOL]; /* armed nodes sorted by (when, seq) */
	size_t nref;
	uint64_t seq, rng, seed, target, fired;
	size_t op;
};

#define CHECK(c, x)                                                                           \
	do {                                                                                  \
		if (!(x))                                                                     \
			fail_msg("KRILL_SEED=%llu op %zu: %s", (unsigned long long)(c)->seed, \
				 (c)->op, #x);                                                \
	} while (0)

static uint64_t rnd(struct rctx *c)
{
	return splitmix(&c->rng);
}

static uint64_t below(struct rctx *c, uint64_t n)
{
	return n ? rnd(c) % n : 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int rent_less(uint64_t when, uint64_t seq, const struct rent *e)
{
	return when < e->when || (when == e->when && seq < e->seq);
}

static size_t ref_find(const struct rctx *c, uint64_t when, uint64_t seq)
{
	size_t lo = 0, hi = c->nref;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (rent_less(when, seq, &c->ref[mid]))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo; /* first entry after (when, seq) */
}

static void ref_remove(struct rctx *c, const struct rnode *n)
{
	size_t i = ref_find(c, n->w.when, n->seq);
	CHECK(c, i > 0 && c->ref[i - 1].id == n->id);
	memmove(&c->ref[i - 1], &c->ref[i], (c->nref - i) * sizeof c->ref[0]);
	c->nref--;
}

static uint64_t ref_next(const struct rctx *c)
{
	return c->nref ? c->ref[0].when : UINT64_MAX;
}

static void arm(struct rctx *c, struct rnode *n, uint64_t when)
{
	n->seq = ++c->seq;
	kri_wheel_add(&c->w, &n->w, when);
	size_t i = ref_find(c, when, n->seq);
	memmove(&c->ref[i + 1], &c->ref[i], (c->nref - i) * sizeof c->ref[0]);
	c->ref[i] = (struct rent){when, n->seq, n->id};
	c->nref++;
}

static void disarm(struct rctx *c, struct rnode *n)
{
	int was = wheel_armed(&n->w);
	kri_wheel_del(&c->w, &n->w);
	CHECK(c, !wheel_armed(&n->w));
	if (was)
		ref_remove(c, n);
}

static uint64_t align_up(uint64_t t, uint64_t a)
{
	return sat_add(t | (a - 1), 1);
}

/* Expiries biased to where wheels go wrong: slot and level edges, ties, the past, far out. */
static uint64_t pick_when(struct rctx *c, uint64_t now)
{
	uint64_t r = below(c, 100);
	if (r < 20)
		return sat_add(now, below(c, 70));
	if (r < 30)
		return sat_add(now, below(c, 5000));
	if (r < 48)
		return sat_add(now, below(c, 1u << 24));
	if (r < 55)
		return sat_add(now, below(c, 1ull << 32));
	if (r < 60)
		return sat_add(now, below(c, 1ull << 38));
	if (r < 65)
		return now - below(c, now < 100 ? now + 1 : 100);
	if (r < 80) {
		const struct rnode *o = &c->nodes[below(c, POOL)];
		if (wheel_armed(&o->w))
			return o->w.when;
	}
	if (r < 92) {
		uint64_t e = align_up(now, LEVEL(1 + below(c, WHEEL_LEVELS)));
		return sat_add(e, below(c, 5)) - 2;
	}
	return sat_add(now, below(c, 300));
}

/* Mostly short steps so hundreds of nodes stay armed; rarely a jump that empties the wheel. */
static uint64_t pick_target(struct rctx *c)
{
	uint64_t now = c->w.now, r = below(c, 1000);
	if (r < 450)
		return sat_add(now, below(c, 10));
	if (r < 650)
		return sat_add(now, below(c, 200));
	if (r < 720) {
		uint64_t nx = ref_next(c);
		return nx == UINT64_MAX ? now : nx - below(c, nx ? 2 : 1);
	}
	if (r < 760)
		return sat_add(now, below(c, 1u << 16));
	if (r < 762)
		return sat_add(now, below(c, 1ull << 40));
	if (r < 810)
		return now - below(c, now < 5 ? now + 1 : 5); /* standing still or stepping back */
	unsigned k = r < 990 ? 1 + (unsigned)below(c, 3) : 1 + (unsigned)below(c, WHEEL_LEVELS);
	return sat_add(align_up(now, LEVEL(k)), below(c, 3)) - 1;
}

static void check_fire(void *arg, struct wnode *wn)
{
	struct rctx *c = arg;
	struct rnode *n = container_of(wn, struct rnode, w);
	CHECK(c, !wheel_armed(wn));
	CHECK(c, c->nref > 0);
	CHECK(c, c->ref[0].id == n->id);
	CHECK(c, c->ref[0].when == wn->when && wn->when <= c->target);
	memmove(&c->ref[0], &c->ref[1], (c->nref - 1) * sizeof c->ref[0]);
	c->nref--;
	c->fired++;
	CHECK(c, kri_wheel_next(&c->w) == ref_next(c));
	CHECK(c, c->w.count == c->nref);

	uint64_t r = below(c, 100);
	if (r < 20) {
		/* Re-arm, sometimes at or before now: a chain ends with probability >= 1/2. */
		uint64_t when = below(c, 2) ? sat_add(wn->when, below(c, 100))
					    : wn->when - below(c, wn->when < 3 ? wn->when + 1 : 3);
		arm(c, n, when);
	} else if (r < 30) {
		disarm(c, &c->nodes[below(c, POOL)]);
	} else if (r < 40) {
		struct rnode *o = &c->nodes[below(c, POOL)];
		if (!wheel_armed(&o->w))
			arm(c, o,
			    sat_add(wn->when, below(c, 150)) - below(c, wn->when < 50 ? 1 : 50));
	}
	CHECK(c, kri_wheel_next(&c->w) == ref_next(c));
}

/* A scheduler that sleeps until wheel_next_bound and advances to it each time it wakes: the
 * bound is never past the earliest expiry, always ahead of the wheel unless something is due,
 * and reaches the expiry within a wake-up a level; nothing fires early. */
static void sleeping_to_the_bound_wakes_a_few_times_and_never_late(void **state)
{
	(void)state;
	enum { N = 2000 };
	static struct tnode t[N];
	uint64_t seed = seed_from_env(), r = seed;
	struct wheel w;
	struct log l = {.wh = &w};
	init_nodes(t, N);
	kri_wheel_init(&w, 12345);
	for (int i = 0; i < N; i++)
		kri_wheel_add(&w, &t[i].w, 12345 + 1 + splitmix(&r) % (LEVEL(4) * 3));
	for (int round = 0; round < 50 && w.count; round++) {
		/* Re-arm the earliest few, as a server re-arms its idle timeouts: that drops the
		 * cached exact answer, and the bound is what a parking scheduler then reads. */
		for (int k = 0; k < 5; k++) {
			int i = (int)(splitmix(&r) % N);
			if (wheel_armed(&t[i].w)) {
				kri_wheel_del(&w, &t[i].w);
				kri_wheel_add(&w, &t[i].w, w.now + 1 + splitmix(&r) % LEVEL(3));
			}
		}
		uint64_t b = kri_wheel_next_bound(&w);
		uint64_t e = kri_wheel_next(&w);
		if (b > e || b <= w.now)
			fail_msg("seed %llu: bound %llu, earliest %llu, now %llu",
				 (unsigned long long)seed, (unsigned long long)b,
				 (unsigned long long)e, (unsigned long long)w.now);
		size_t fired = l.n;
		int wakes = 0;
		while (l.n == fired) {
			/* Sleep to the bound (the exact one is cached now: drop it as a re-arm
			 * would). */
			w.next_ok = 0;
			uint64_t to = kri_wheel_next_bound(&w);
			assert_true(to > w.now && to <= e);
			kri_wheel_advance(&w, to, record, &l);
			assert_true(++wakes <= WHEEL_LEVELS + 1);
		}
		for (size_t i = fired; i < l.n; i++)
			assert_true(l.whens[i] ==
				    e); /* exactly on time: the earliest and its ties */
	}
}

static void random_operations_match_a_sorted_reference(void **state)
{
	(void)state;
	static struct rctx ctx; /* static: a failing run longjmps out and must not leak */
	struct rctx *c = &ctx;
	memset(c, 0, sizeof *c);
	c->seed = c->rng = seed_from_env();
	static const uint64_t origins[] = {0, LEVEL(WHEEL_LEVELS) - 3000, LEVEL(5) - 50};
	uint64_t origin = below(c, 4) < 3 ? origins[below(c, 3)] : below(c, 1ull << 50);
	kri_wheel_init(&c->w, origin);
	for (int i = 0; i < POOL; i++)
		c->nodes[i].id = i;

	for (c->op = 0; c->op < OPS; c->op++) {
		uint64_t r = below(c, 100);
		struct rnode *n = &c->nodes[below(c, POOL)];
		if (r < 50) {
			if (wheel_armed(&n->w))
				disarm(c, n);
			else
				arm(c, n, pick_when(c, c->w.now));
		} else if (r < 58) {
			disarm(c, n);
		} else {
			uint64_t before = c->w.now;
			uint64_t target = pick_target(c);
			c->target = target > before ? target : before;
			c->fired = 0;
			uint64_t got = kri_wheel_advance(&c->w, target, check_fire, c);
			CHECK(c, got == c->fired);
			CHECK(c, c->w.now == c->target);
			CHECK(c, ref_next(c) > c->w.now);
		}
		CHECK(c, kri_wheel_next(&c->w) == ref_next(c));
		CHECK(c, c->w.count == c->nref);
	}
	/* Drain, so every surviving node is shown to fire in order too. */
	c->target = UINT64_MAX;
	c->fired = 0;
	uint64_t got = kri_wheel_advance(&c->w, UINT64_MAX, check_fire, c);
	CHECK(c, got == c->fired);
	CHECK(c, c->nref == 0 && c->w.count == 0 && kri_wheel_next(&c->w) == UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_timer_fires_at_its_exact_millisecond),
	    cmocka_unit_test(nothing_fires_early_at_any_level),
	    cmocka_unit_test(ties_fire_in_arming_order),
	    cmocka_unit_test(past_expiries_fire_in_order_of_expiry_then_arming),
	    cmocka_unit_test(deleting_prevents_firing_and_is_idempotent),
	    cmocka_unit_test(a_node_can_rearm_itself_from_fire),
	    cmocka_unit_test(nodes_armed_during_advance_with_past_expiry_fire_in_the_same_call),
	    cmocka_unit_test(large_time_jumps_skip_empty_time),
	    cmocka_unit_test(far_future_timers_fire_at_their_exact_expiry),
	    cmocka_unit_test(wheel_next_is_exact),
	    cmocka_unit_test(sleeping_to_the_bound_wakes_a_few_times_and_never_late),
	    cmocka_unit_test(random_operations_match_a_sorted_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
