/* deliver: the inline steps of putting a message in a process's mailbox,
 * shared by the sends of a behaviour (send.c) and of the runtime (env.c):
 * they need the scheduler's run queue, so they live apart from proc.h. */
#ifndef KR_DELIVER_H
#define KR_DELIVER_H

#include <stdbool.h>

#include "core/proc/proc.h"
#include "core/sched/sched.h"

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
			kri_sched_ready(s, p);
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
