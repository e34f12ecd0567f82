/* timer: send_after, cancellation and receive timeouts on each
 * scheduler's timing wheel. A timer lives in a 64-byte record of a slot
 * table; its id is (generation, index), and one atomic word holds the
 * generation and the state, so any scheduler can cancel any timer with a
 * single CAS while only the owning scheduler touches the wheel. A timer
 * cancelled from another scheduler stays in the owner's wheel until its
 * expiry, when the owner frees it: the price of never locking the wheel. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "core/rt.h"

enum { T_FREE = 0, T_ARMED = 1, T_CANCELLED = 2 };

struct tmr {
	_Atomic uint64_t word; /* generation << 2 | state */
	struct wnode node;     /* owner only; bytes 8..31 */
	kr_pid to;
	struct env *env;
	/* The scheduler whose wheel holds it. Atomic only so that
	 * timer_rearm may look at a record another scheduler reuses. */
	_Atomic uint32_t owner;
	uint32_t idx;
	uint64_t pad;
};
_Static_assert(sizeof(struct tmr) == 64, "a timer record is one cache line");

static struct tmr *of_node(struct wnode *n)
{
	return (struct tmr *)((char *)n - offsetof(struct tmr, node));
}

static kr_timer timer_id(uint32_t gen, uint32_t idx)
{
	return (uint64_t)gen << 32 | idx;
}

/* The clock reads whole milliseconds, rounded down: one more keeps a timer
 * from firing early. Virtual time is exact. */
static uint64_t deadline(struct runtime *rt, uint64_t ms)
{
	uint64_t now = rt_now_ms(rt) + (rt->cfg.deterministic ? 0 : 1);
	return ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
}

int timer_start(struct sched *s, kr_pid to, uint64_t ms, struct env *e, kr_timer *out)
{
	struct runtime *rt = s->rt;
	uint32_t idx;
	int rc = slots_get(&rt->timers, &s->tslots, &s->arena, &idx);
	if (rc) {
		env_free(&s->arena, e);
		return rc == -EAGAIN ? -ENOMEM : rc;
	}
	struct tmr *t = slot_at(&rt->timers, idx);
	uint32_t gen = (uint32_t)(atomic_load_explicit(&t->word, memory_order_relaxed) >> 2) + 1;
	if (gen == 0)
		gen = 1; /* ids are never 0 */
	t->to = to;
	t->env = e;
	atomic_store_explicit(&t->owner, s->id, memory_order_relaxed);
	t->idx = idx;
	t->node.pprev = 0;
	wheel_add(&s->wheel, &t->node, deadline(rt, ms));
	/* Release: a canceller whose CAS succeeds sees owner and the rest. */
	atomic_store_explicit(&t->word, (uint64_t)gen << 2 | T_ARMED, memory_order_release);
	*out = timer_id(gen, idx);
	return 0;
}

/* Only the owner releases an armed timer, and only an id's holder cancels
 * one: a timer whose id nobody else has (a receive timeout) that is armed
 * with this generation in s's own wheel stays so while s runs, and moving
 * it is a wheel update, not a free and an allocation. */
int timer_rearm(struct sched *s, kr_timer id, uint64_t ms, const void *data, uint32_t len)
{
	struct tmr *t = slot_at(&s->rt->timers, (uint32_t)id);
	if (!t || !(id >> 32) ||
	    atomic_load_explicit(&t->word, memory_order_relaxed) != ((id >> 32) << 2 | T_ARMED) ||
	    atomic_load_explicit(&t->owner, memory_order_relaxed) != s->id || t->env->m.len != len)
		return -ENOENT;
	wheel_del(&s->wheel, &t->node);
	memcpy(t->env->m.data, data, len);
	wheel_add(&s->wheel, &t->node, deadline(s->rt, ms));
	return 0;
}

static void release(struct sched *s, struct tmr *t)
{
	uint64_t w = atomic_load_explicit(&t->word, memory_order_relaxed);
	atomic_store_explicit(&t->word, (w & ~(uint64_t)3) | T_FREE, memory_order_relaxed);
	slots_put(&s->rt->timers, &s->tslots, t->idx);
}

int timer_cancel(struct runtime *rt, struct sched *s, kr_timer id)
{
	struct tmr *t = slot_at(&rt->timers, (uint32_t)id);
	if (!t || !(id >> 32))
		return -ENOENT;
	uint64_t w = (id >> 32) << 2 | T_ARMED;
	if (!atomic_compare_exchange_strong_explicit(&t->word, &w, (w & ~(uint64_t)3) | T_CANCELLED,
						     memory_order_acq_rel, memory_order_relaxed))
		return -ENOENT;
	if (s && atomic_load_explicit(&t->owner, memory_order_relaxed) == s->id) {
		wheel_del(&s->wheel, &t->node);
		env_free(&s->arena, t->env);
		release(s, t);
	}
	return 0;
}

static void fire(void *arg, struct wnode *n)
{
	struct sched *s = arg;
	struct tmr *t = of_node(n);
	uint64_t w = atomic_load_explicit(&t->word, memory_order_acquire);
	/* Claim the firing against a concurrent cancel. */
	if ((w & 3) == T_ARMED &&
	    atomic_compare_exchange_strong_explicit(&t->word, &w, (w & ~(uint64_t)3) | T_FREE,
						    memory_order_acq_rel, memory_order_acquire))
		proc_deliver(s, t->to, t->env);
	else
		env_free(&s->arena, t->env);
	release(s, t);
}

void timer_expire(struct sched *s)
{
	wheel_advance(&s->wheel, rt_now_ms(s->rt), fire, s);
}

static void drop(void *arg, struct wnode *n)
{
	struct sched *s = arg;
	struct tmr *t = of_node(n);
	env_free(&s->arena, t->env);
	release(s, t);
}

void timer_drain(struct sched *s)
{
	wheel_advance(&s->wheel, UINT64_MAX, drop, s);
}
