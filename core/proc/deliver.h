/* deliver: the inline steps of putting a message in a process's mailbox,
 * shared by the sends of a behaviour (send.c) and of the runtime (env.c):
 * they need the scheduler's run queue, so they live apart from proc.h. */
#ifndef KR_DELIVER_H
#define KR_DELIVER_H

#include <stdbool.h>

#include "core/proc/proc.h"
#include "core/sched/sched.h"

/* p, idle, was woken by a message sent here: run it next (the sender's
 * data is warm), unless it is a hub woken by a client and stays where it
 * ran (sched.c's kri_sched_woken, which also counts the wake in the
 * sender's wake word: balance.h's bal_woke). None outside a behaviour's
 * call. Here, inlined in every send, only the usual cases: one scheduler;
 * a ring's hop (the sender woke the same process last time, so its word
 * stays, and p last ran here); every other scheduler asleep, where a hub
 * could stay nowhere. Counting every wake cost Savina's bank 6 % more
 * instructions at 1 scheduler (and in line, LTO stopped inlining kr_send
 * into its callers); now a ring's hop at 1 scheduler costs 4 more here
 * and 2 for `on` at each run (callgrind). */
static inline void sched_woken(struct sched *s, struct proc *p)
{
	struct kr_runtime *rt = s->rt;
	struct proc *w = s->ctx.p;
	if (rt->n == 1 || !w || (w->wakes == bal_wake_hash(p->idx) && p->on == s->id) ||
	    atomic_load_explicit(&rt->nidle, memory_order_relaxed) + 1 >= rt->n)
		kri_sched_ready(s, p);
	else
		kri_sched_woken(s, p, w);
}

/* Push e to the live process p and schedule p here if it was idle: to run
 * next (the sender's data is warm), or with tail behind the whole queue.
 * 1: queued; 0: p exited meanwhile and e is freed. Inlined, as send_env. */
__attribute__((always_inline)) static inline int push(struct sched *s, struct proc *p,
						      struct env *e, bool tail)
{
	switch (kri_mbox_push(&p->inbox, e)) {
	case MB_WOKE:
		if (tail)
			kri_runq_push_back(&s->q, p);
		else
			sched_woken(s, p);
		return 1;
	case MB_CLOSED:
		env_free(&s->arena, e);
		return 0;
	}
	return 1;
}

static inline void outbox_flush(struct sched *s)
{
	if (s->ob.n)
		kri_outbox_push(s);
}

#endif
