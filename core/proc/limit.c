/* limit: opt-in mailbox limits and the runtime-wide memory ceiling, so
 * that a slow consumer or a runaway producer meets -EAGAIN or -ENOMEM
 * instead of growing until the kernel's OOM killer ends every process
 * (Erlang's unbounded mailboxes are its best-known way to die).
 *
 * A limited process counts its queued messages in its side record: senders
 * add one with an atomic RMW (only for limited processes: the flag is one
 * load in aflags, which the generation check has in cache), the owner
 * subtracts what it takes. The count is a bound, not an exact figure: it
 * ignores what was queued before the limit was set. Waiting senders are
 * told by message when the mailbox falls below half its limit, so nothing
 * ever blocks and cycles of processes cannot deadlock. */
#include <errno.h>

#include "core/sched/sched.h"
#include "core/proc/limit.h"

static struct side *limited(struct proc *p)
{
	/* Acquire pairs with kr_mailbox_limit's release: side is set. */
	if (!(atomic_load_explicit(&p->aflags, memory_order_acquire) & P_LIMITED))
		return 0;
	return p->side;
}

bool kri_ovl_admit(struct proc *p)
{
	struct side *sd = limited(p);
	if (!sd)
		return true;
	int32_t n = atomic_fetch_add_explicit(&sd->count, 1, memory_order_relaxed);
	if (n >= (int32_t)atomic_load_explicit(&sd->limit, memory_order_relaxed)) {
		atomic_fetch_sub_explicit(&sd->count, 1, memory_order_relaxed);
		return false;
	}
	return true;
}

void kri_ovl_count(struct proc *p, const struct env *e)
{
	struct side *sd = e->m.tag < KR_TAG_SYSTEM ? limited(p) : 0;
	if (sd)
		atomic_fetch_add_explicit(&sd->count, 1, memory_order_relaxed);
}

static bool has_room(struct side *sd)
{
	uint32_t limit = atomic_load_explicit(&sd->limit, memory_order_relaxed);
	return limit == 0 ||
	       atomic_load_explicit(&sd->count, memory_order_relaxed) < (int32_t)(limit / 2 + 1);
}

static void tell_waiters(struct sched *s, struct side *sd)
{
	struct mon *w = sd->waiters.v;
	for (uint32_t i = 0; i < sd->waiters.n; i++) {
		struct env *e = env_new(&s->arena, (uint32_t)w[i].ref, 0, 0);
		if (e)
			kri_proc_deliver(s, w[i].pid, e);
	}
	sd->waiters.n = 0;
}

void kri_ovl_taken_limited(struct sched *s, struct proc *p, const struct env *list)
{
	struct side *sd = limited(p);
	if (!sd)
		return;
	int32_t n = 0;
	for (const struct env *e = list; e; e = e->next)
		n += e->m.tag < KR_TAG_SYSTEM;
	atomic_fetch_sub_explicit(&sd->count, n, memory_order_relaxed);
	if (sd->waiters.n && has_room(sd))
		tell_waiters(s, sd);
}

/* TAG_NOTIFY taken by p: answer now if there is room, else remember.
 * The request sits behind the messages that filled the mailbox, and the
 * take that reaches it counts them all off, so it is nearly always answered
 * here at once (bounded fanin at 2 schedulers: all but 0-23 of 700-7,700 a
 * run, issue #19), by p's scheduler: the waiter wakes there, beside p. */
void kri_ovl_notify(struct sched *s, struct proc *p, kr_pid from, uint32_t tag)
{
	struct side *sd = p ? limited(p) : 0;
	if (sd && !has_room(sd) && kri_monvec_add(&s->arena, &sd->waiters, tag, from) == 0)
		return;
	struct env *e = env_new(&s->arena, tag, 0, 0);
	if (e)
		kri_proc_deliver(s, from, e);
}

/* A limited process exits: its waiters may send (their messages are
 * dropped, as any sent to a dead process). */
void kri_ovl_side_free(struct sched *s, struct side *sd)
{
	kri_monvec_free(&s->arena, &sd->waiters);
}

void kri_ovl_exit(struct sched *s, struct side *sd)
{
	if (sd->waiters.n)
		tell_waiters(s, sd);
}

static int mailbox_limit_in(kr_ctx *ctx, uint32_t max)
{
	struct proc *p = ctx->p;
	struct side *sd = kri_proc_side(ctx->s, p);
	if (!sd)
		return -ENOMEM;
	atomic_store_explicit(&sd->limit, max, memory_order_relaxed);
	if (max)
		atomic_fetch_or_explicit(&p->aflags, P_LIMITED, memory_order_release);
	else if (sd->waiters.n)
		tell_waiters(ctx->s, sd); /* unbounded now: room for all */
	/* P_LIMITED stays once set: the side record must outlive the
	 * process for senders still holding it, whatever the limit. */
	return 0;
}

int kr_mailbox_limit(kr_ctx *ctx, uint32_t max)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = mailbox_limit_in(ctx, max);
	api_leave(s);
	return rc;
}

static int notify_ready_in(kr_ctx *ctx, kr_pid pid, uint32_t tag)
{
	struct sched *s = ctx->s;
	if (tag >= KR_TAG_SYSTEM)
		return -EINVAL;
	int rc = kri_sig_send(s, pid, TAG_NOTIFY, ctx->self, tag, 0, 0, 0);
	if (rc == 0) {
		/* pid has exited: there is room (sends are dropped). */
		struct env *e = env_new(&s->arena, tag, 0, 0);
		if (!e)
			return -ENOMEM;
		rc = kri_proc_deliver(s, ctx->self, e);
	}
	return rc < 0 ? rc : 0;
}

int kr_notify_ready(kr_ctx *ctx, kr_pid pid, uint32_t tag)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = notify_ready_in(ctx, pid, tag);
	api_leave(s);
	return rc;
}

/* Past the ceiling? A scheduler re-adds the arenas whenever its own has
 * grown by a quarter of its share of the ceiling since it last looked, so
 * a burst overshoots by at most that much. */
bool kri_ovl_over(struct kr_runtime *rt, struct sched *s)
{
	if (!rt->cfg.max_memory)
		return false;
	if (s) {
		int64_t b = atomic_load_explicit(&s->arena.bytes, memory_order_relaxed);
		if (b - s->mem_seen > (int64_t)(rt->cfg.max_memory / (4u * rt->n)) ||
		    b < s->mem_seen) {
			s->mem_seen = b;
			kri_ovl_memory_check(s);
		}
	}
	return atomic_load_explicit(&rt->overmem, memory_order_relaxed);
}

/* A scheduler's periodic look at the memory ceiling: the sum over every
 * arena (a few hundred loads at most, every 64 process runs). */
void kri_ovl_memory_check(struct sched *s)
{
	struct kr_runtime *rt = s->rt;
	if (!rt->cfg.max_memory)
		return;
	int64_t total = 0;
	for (unsigned i = 0; i < rt->n; i++)
		total += atomic_load_explicit(&rt->s[i].arena.bytes, memory_order_relaxed);
	int over = total > 0 && (uint64_t)total > rt->cfg.max_memory;
	if (atomic_load_explicit(&rt->overmem, memory_order_relaxed) != over)
		atomic_store_explicit(&rt->overmem, over, memory_order_relaxed);
}
