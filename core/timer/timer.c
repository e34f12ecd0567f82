/* timer: send_after, cancellation and receive timeouts on each
 * scheduler's timing wheel. A timer lives in a 64-byte record of a slot
 * table; its id is (generation, index), and one atomic word holds the
 * generation and the state, so any scheduler can cancel any timer with a
 * single CAS while only the owning scheduler touches the wheel. A timer
 * cancelled from another scheduler goes on the owner's dead list, which
 * the owner empties at its next expiry pass. Pushing a timer later (a
 * receive timeout re-armed at every request, by a process that moves
 * between schedulers) only records the new deadline; the owner puts the
 * timer back in its wheel when the old one comes. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "core/sched/sched.h"

/* T_MOVED: armed, and due may be later than where the wheel holds it.
 * T_BUSY: a re-arm is writing due (between two of its own stores). */
enum { T_FREE = 0, T_ARMED = 1, T_CANCELLED = 2, T_MOVED = 3, T_BUSY = 4 };
enum { T_BITS = 3 };
#define T_MASK ((uint64_t)(1u << T_BITS) - 1)

struct tmr {
	_Atomic uint64_t word; /* generation << T_BITS | state */
	struct wnode node;     /* owner only; bytes 8..31 */
	union {
		kr_pid to;             /* while armed */
		struct tmr *next_dead; /* once cancelled from another scheduler */
	};
	struct env *env;
	/* The scheduler whose wheel holds it. Atomic only so that
	 * timer_rearm may look at a record another scheduler reuses. */
	_Atomic uint32_t owner;
	uint32_t idx;
	/* The deadline, ms. Written only by the holder of the id (the process
	 * whose receive timeout it is); the wheel holds the timer at or
	 * before it. */
	_Atomic uint64_t due;
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
static uint64_t deadline(struct kr_runtime *rt, uint64_t ms)
{
	uint64_t now = kri_rt_now_ms(rt) + (rt->cfg.deterministic ? 0 : 1);
	return ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
}

int kri_timer_start(struct sched *s, kr_pid to, uint64_t ms, struct env *e, kr_timer *out)
{
	struct kr_runtime *rt = s->rt;
	uint32_t idx;
	int rc = kri_slots_get(&rt->timers, &s->tslots, &s->arena, &idx);
	if (rc) {
		env_free(&s->arena, e);
		return rc == -EAGAIN ? -ENOMEM : rc;
	}
	struct tmr *t = slot_at(&rt->timers, idx);
	uint32_t gen =
	    (uint32_t)(atomic_load_explicit(&t->word, memory_order_relaxed) >> T_BITS) + 1;
	if (gen == 0)
		gen = 1; /* ids are never 0 */
	t->to = to;
	t->env = e;
	atomic_store_explicit(&t->owner, s->id, memory_order_relaxed);
	t->idx = idx;
	t->node.pprev = 0;
	uint64_t d = deadline(rt, ms);
	atomic_store_explicit(&t->due, d, memory_order_relaxed);
	kri_wheel_add(&s->wheel, &t->node, d);
	/* Release: a canceller whose CAS succeeds sees owner and the rest. */
	atomic_store_explicit(&t->word, (uint64_t)gen << T_BITS | T_ARMED, memory_order_release);
	*out = timer_id(gen, idx);
	return 0;
}

/* Armed with generation base (<< T_BITS), whether or not due moved. */
static bool armed_as(uint64_t w, uint64_t base)
{
	return (w & ~T_MASK) == base && ((w & T_MASK) == T_ARMED || (w & T_MASK) == T_MOVED);
}

/* An earlier deadline needs the wheel: only in s's own, whose expiry runs
 * on this thread and so not meanwhile. */
static int move_earlier(struct sched *s, struct tmr *t, uint64_t d)
{
	if (atomic_load_explicit(&t->owner, memory_order_relaxed) != s->id)
		return -ENOENT;
	kri_wheel_del(&s->wheel, &t->node);
	atomic_store_explicit(&t->due, d, memory_order_relaxed);
	kri_wheel_add(&s->wheel, &t->node, d);
	return 0;
}

/* Only the owner releases an armed timer, and only an id's holder cancels
 * or re-arms one, so the holder is the only writer of due. A later
 * deadline is recorded from any scheduler: BUSY keeps the owner's expiry
 * from reading due half-written or freeing the record meanwhile, and the
 * owner, finding MOVED, puts the timer back at due. -ENOENT, changing
 * nothing: fired, or an earlier deadline asked of another's wheel. */
int kri_timer_rearm(struct sched *s, kr_timer id, uint64_t ms)
{
	struct tmr *t = slot_at(&s->rt->timers, (uint32_t)id);
	if (!t || !(id >> 32))
		return -ENOENT;
	uint64_t base = (id >> 32) << T_BITS;
	uint64_t d = deadline(s->rt, ms);
	uint64_t w = atomic_load_explicit(&t->word, memory_order_relaxed);
	do {
		if (!armed_as(w, base))
			return -ENOENT; /* fired */
		if (d < atomic_load_explicit(&t->due, memory_order_relaxed))
			return move_earlier(s, t, d);
	} while (!atomic_compare_exchange_weak_explicit(
	    &t->word, &w, base | T_BUSY, memory_order_acquire, memory_order_relaxed));
	atomic_store_explicit(&t->due, d, memory_order_relaxed);
	atomic_store_explicit(&t->word, base | T_MOVED, memory_order_release);
	return 0;
}

static void release(struct sched *s, struct tmr *t)
{
	uint64_t w = atomic_load_explicit(&t->word, memory_order_relaxed);
	atomic_store_explicit(&t->word, (w & ~T_MASK) | T_FREE, memory_order_relaxed);
	kri_slots_put(&s->rt->timers, &s->tslots, t->idx);
}

/* Free s's timers that other schedulers cancelled. */
static void free_dead(struct sched *s)
{
	if (!atomic_load_explicit(&s->tdead, memory_order_relaxed))
		return;
	struct tmr *t = atomic_exchange_explicit(&s->tdead, NULL, memory_order_acquire);
	while (t) {
		struct tmr *next = t->next_dead;
		kri_wheel_del(&s->wheel, &t->node); /* unless its expiry came first */
		env_free(&s->arena, t->env);
		release(s, t);
		t = next;
	}
}

/* A timer being re-armed (BUSY) is -ENOENT: only its holder re-arms it,
 * and the holder is the caller. */
int kri_timer_cancel(struct kr_runtime *rt, struct sched *s, kr_timer id)
{
	struct tmr *t = slot_at(&rt->timers, (uint32_t)id);
	if (!t || !(id >> 32))
		return -ENOENT;
	uint64_t base = (id >> 32) << T_BITS;
	uint64_t w = atomic_load_explicit(&t->word, memory_order_relaxed);
	do {
		if (!armed_as(w, base))
			return -ENOENT;
	} while (!atomic_compare_exchange_weak_explicit(
	    &t->word, &w, base | T_CANCELLED, memory_order_acq_rel, memory_order_relaxed));
	unsigned owner = atomic_load_explicit(&t->owner, memory_order_relaxed);
	if (s && owner == s->id) {
		kri_wheel_del(&s->wheel, &t->node);
		env_free(&s->arena, t->env);
		release(s, t);
		return 0;
	}
	/* Only the owner touches its wheel: hand the timer over. Winning the
	 * CAS made the record ours to link until the owner takes it. */
	struct sched *o = &rt->s[owner];
	void *head = atomic_load_explicit(&o->tdead, memory_order_relaxed);
	do {
		t->next_dead = head;
	} while (!atomic_compare_exchange_weak_explicit(&o->tdead, &head, t, memory_order_release,
							memory_order_relaxed));
	return 0;
}

static void fire(void *arg, struct wnode *n)
{
	struct sched *s = arg;
	struct tmr *t = of_node(n);
	uint64_t w = atomic_load_explicit(&t->word, memory_order_acquire);
	for (;;) {
		uint64_t base = w & ~T_MASK;
		switch (w & T_MASK) {
		case T_BUSY:
			/* A re-arm is between its two stores: look again in a tick. */
			kri_wheel_add(&s->wheel, n, s->wheel.now + 1);
			return;
		case T_MOVED: {
			if (!atomic_compare_exchange_weak_explicit(&t->word, &w, base | T_ARMED,
								   memory_order_acquire,
								   memory_order_acquire))
				continue;
			uint64_t due = atomic_load_explicit(&t->due, memory_order_relaxed);
			if (due > s->wheel.now) {
				kri_wheel_add(&s->wheel, n, due);
				return;
			}
			w = base | T_ARMED;
			continue;
		}
		case T_ARMED:
			/* Claim the firing against a concurrent cancel or re-arm. */
			if (!atomic_compare_exchange_weak_explicit(&t->word, &w, base | T_FREE,
								   memory_order_acq_rel,
								   memory_order_acquire))
				continue;
			kri_proc_deliver(s, t->to, t->env);
			release(s, t);
			return;
		default: /* cancelled from afar: the dead list has it, or will */
			return;
		}
	}
}

void kri_timer_expire(struct sched *s)
{
	free_dead(s);
	kri_wheel_advance(&s->wheel, kri_rt_now_ms(s->rt), fire, s);
}

static void drop(void *arg, struct wnode *n)
{
	struct sched *s = arg;
	struct tmr *t = of_node(n);
	env_free(&s->arena, t->env);
	release(s, t);
}

void kri_timer_drain(struct sched *s)
{
	free_dead(s);
	kri_wheel_advance(&s->wheel, UINT64_MAX, drop, s);
}

/* ---- the timer calls a behaviour makes --------------------------------- */

static int receive_timeout_in(kr_ctx *ctx, uint64_t ms)
{
	struct sched *s = ctx->s;
	struct side *side = ms ? kri_proc_side(s, ctx->p) : ctx->p->side;
	kr_timer t = 0;
	if (!side)
		return ms ? -ENOMEM : 0;
	/* A server re-arms its idle timeout at every request: the armed timer
	 * moves, whichever scheduler it was armed on. */
	if (ms && side->rto && kri_timer_rearm(s, side->rto, ms) == 0) {
		side->rto_seq = rto_next(side);
		return 0;
	}
	if (ms) {
		/* The new timer first: a failure leaves the armed one armed. */
		struct env *e = env_new(&s->arena, KR_TAG_TIMEOUT, &t, sizeof(t));
		if (!e)
			return -ENOMEM;
		int rc = kri_timer_start(s, ctx->self, ms, e, &t);
		if (rc)
			return rc;
		/* It fires on this thread, so not before this call returns. */
		memcpy(e->m.data, &t, sizeof(t));
	}
	if (side->rto)
		kri_timer_cancel(s->rt, s, side->rto);
	side->rto = t;
	side->rto_seq = rto_next(side);
	return 0;
}

int kr_receive_timeout(kr_ctx *ctx, uint64_t ms)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = receive_timeout_in(ctx, ms);
	api_leave(s);
	return rc;
}

static int send_after_in(kr_ctx *ctx, kr_pid to, uint64_t ms, uint32_t tag, const void *data,
			 size_t len, kr_timer *out)
{
	struct sched *s = ctx->s;
	kr_timer t;
	int err = kri_proc_check_send(s->rt, s, tag, data, len);
	if (err)
		return err;
	if (!kri_proc_lookup(s->rt, to, &err) && err)
		return err;
	struct env *e = env_new(&s->arena, tag, data, len);
	if (!e)
		return -ENOMEM;
	err = kri_timer_start(s, to, ms, e, &t);
	if (err == 0 && out)
		*out = t;
	return err;
}

int kr_send_after(kr_ctx *ctx, kr_pid to, uint64_t ms, uint32_t tag, const void *data, size_t len,
		  kr_timer *out)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = send_after_in(ctx, to, ms, tag, data, len, out);
	api_leave(s);
	return rc;
}

static int cancel_timer_in(kr_ctx *ctx, kr_timer t)
{
	return kri_timer_cancel(ctx->s->rt, ctx->s, t);
}

int kr_cancel_timer(kr_ctx *ctx, kr_timer t)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = cancel_timer_in(ctx, t);
	api_leave(s);
	return rc;
}
