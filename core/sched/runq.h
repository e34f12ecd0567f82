/* runq: a scheduler's run queue. A 256-entry ring the owner pushes to and
 * pops from and thieves take half of (lock-free, as Go's runq), plus an
 * overflow queue under a lock that only bursts beyond the ring touch. */
#ifndef KR_RUNQ_H
#define KR_RUNQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct proc;
struct arena;

#define RUNQ_CAP 256u
/* Most processes one steal moves (runq_steal). */
#define RUNQ_STEAL_MAX (4 * RUNQ_CAP)

struct runq {
	_Atomic uint32_t head; /* next to take; owner and thieves CAS it */
	_Atomic uint32_t tail; /* next free; written by the owner only */
	_Atomic(struct proc *) buf[RUNQ_CAP];
	pthread_mutex_t lock; /* the overflow: ov, then spill */
	struct proc **ov;     /* array of ocap (0 or a power of two) */
	uint32_t ocap;
	uint64_t ohd, otl;          /* oldest at ov[ohd % ocap]; otl - ohd held */
	struct proc *spill, *stail; /* linked by next: when ov cannot grow */
	_Atomic uint64_t olen;      /* ov and spill together */
	/* Processes ever taken from the overflow (its oldest first): with
	 * olen, a thief's mark of it (sched.c's waited). */
	_Atomic uint64_t oout;
	/* Processes another scheduler handed back (runq_give), linked by
	 * next, behind the overflow: the owner's alone, never stolen, so a
	 * scheduler that gave them back does not take them again at once. */
	struct proc *gift, *gtail;
	_Atomic uint64_t glen;
	struct arena *arena; /* the owner's, for ov */
	uint32_t pops;       /* owner only */
};

/* a: the owner's arena (NULL: the process-wide allocator). */
void kri_runq_init(struct runq *q, struct arena *a);
void kri_runq_fini(struct runq *q);

/* Owner only. */
void kri_runq_push(struct runq *q, struct proc *p);
/* Behind everything queued, the overflow too (runq_push goes ahead of it). */
void kri_runq_push_back(struct runq *q, struct proc *p);
struct proc *kri_runq_pop(struct runq *q);

/* Processes queued that a thief may take (racy when read by another
 * thread; a hint): not those handed back (runq_give). Inline: the owner
 * asks after every run whether to wake an idle scheduler (sched.c's
 * maybe_wake). */
static inline uint64_t kri_runq_len(struct runq *q)
{
	uint32_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	uint32_t n = t - h;
	if (n > RUNQ_CAP)
		n = 0; /* torn read of a moving queue */
	return n + atomic_load_explicit(&q->olen, memory_order_relaxed);
}
/* Processes handed back and not yet taken by the owner (a hint). */
uint64_t kri_runq_given(struct runq *q);
/* The process at the head of the ring, for another thread a hint only
 * (it may be taken meanwhile): compared, never dereferenced. */
struct proc *kri_runq_head(struct runq *q);

/* Any thread, owning none of v: hand v[0..n) to q's owner, behind
 * everything queued (sched.c, "Compaction"). They are the owner's alone:
 * runq_len does not count them and runq_steal does not take them. The
 * owner takes them in its pops as it takes the overflow. Whoever calls
 * this sees to it that the owner is awake or will look (sched.c does so
 * under the idle lock). */
void kri_runq_give(struct runq *q, struct proc *const *v, uint32_t n);

/* A thief (owner of `mine`, whose queue must be empty) takes about half of
 * victim's queue, ring and overflow together, at most RUNQ_STEAL_MAX,
 * into its own (its overflow holds what its ring cannot) and returns one of
 * them to run, or NULL. Only takes when the victim has at least `min`
 * queued. */
struct proc *kri_runq_steal(struct runq *victim, struct runq *mine, uint32_t min, uint32_t *taken);
/* Thief, victim stuck in one call (the watchdog's mark): take its overflow
 * and the processes handed back to it, up to RUNQ_STEAL_MAX, as
 * kri_runq_steal. Gifts are the owner's alone only while it runs. */
struct proc *kri_runq_steal_gifts(struct runq *victim, struct runq *mine, uint32_t *taken);

#endif
