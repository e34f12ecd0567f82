/* limit: mailbox limits and the memory ceiling (limit.c): when a sender
 * or a spawn is refused, and who is told when there is room again. Part of
 * the process layer: every send asks it, inline. */
#ifndef KR_LIMIT_H
#define KR_LIMIT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/proc/proc.h"

/* A request to be told when p's mailbox has room (kr_notify_ready); ref:
 * the tag to send back. */
#define TAG_NOTIFY (SYS_TAG_BASE + 7)

bool kri_ovl_admit(struct proc *p);
void kri_ovl_count(struct proc *p, const struct env *e);
void kri_ovl_taken_limited(struct sched *s, struct proc *p, const struct env *list);
/* The owner took list: a limited mailbox counts it off. One load (the
 * flag) for the others, inline: it is on every message's path. Acquire
 * pairs with kr_mailbox_limit's release, as overload.c's limited(). */
static inline void ovl_taken(struct sched *s, struct proc *p, const struct env *list)
{
	if (atomic_load_explicit(&p->aflags, memory_order_acquire) & P_LIMITED)
		kri_ovl_taken_limited(s, p, list);
}
void kri_ovl_notify(struct sched *s, struct proc *p, kr_pid from, uint32_t tag);
void kri_ovl_memory_check(struct sched *s);
bool kri_ovl_over(struct kr_runtime *rt, struct sched *s);
void kri_ovl_exit(struct sched *s, struct side *sd);
/* The waiters' vector goes with the side record. */
void kri_ovl_side_free(struct sched *s, struct side *sd);

#endif
