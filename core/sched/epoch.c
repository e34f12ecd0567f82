/* epoch: epoch-based reclamation of process slots (Fraser's EBR, with
 * schedulers as the only participants).
 *
 * A slot retired while the global epoch was e may be reused once the epoch
 * has reached e + 2: the epoch only moves from e to e + 1 when every online
 * scheduler has announced e at a quiescent point, so by e + 2 each has
 * passed a quiescent point that began after the retirement, and none can
 * still hold the old incarnation's address between its generation check and
 * its mailbox push. Announcements are a store and a fence every 64 process
 * runs, not per message; a sleeping scheduler is offline and never holds
 * the epoch back. Three limbo lists suffice, indexed by epoch mod 3.
 * Rejected: a reference count per slot (an extra RMW on every send) and a
 * generation tag inside the mailbox word (only ~16 bits fit; a preempted
 * sender could see the tag wrap). */
#include "core/sched/epoch.h"

#include "core/sched/sched.h"

struct link {
	uint32_t next;
};

static struct link *link_of(struct kr_runtime *rt, uint32_t i)
{
	return (struct link *)((unsigned char *)slot_at(&rt->procs, i) + SLOTS_LINK_OFF);
}

void kri_limbo_init(struct limbo *l)
{
	for (int k = 0; k < 3; k++) {
		l->tag[k] = 0;
		l->head[k] = SLOTS_NIL;
		l->n[k] = 0;
	}
}

static void release(struct sched *s, int k)
{
	struct kr_runtime *rt = s->rt;
	struct limbo *l = &s->limbo;
	uint32_t i = l->head[k];
	while (i != SLOTS_NIL) {
		uint32_t next = link_of(rt, i)->next;
		struct proc *p = slot_at(&rt->procs, i);
		/* A limited process's side record outlived it until now. */
		if (p->side) {
			arena_free(&s->arena, p->side, sizeof(struct side));
			p->side = 0;
		}
		kri_slots_put(&rt->procs, &s->pslots, i);
		i = next;
	}
	l->head[k] = SLOTS_NIL;
	l->n[k] = 0;
}

void kri_epoch_retire(struct sched *s, uint32_t idx)
{
	struct limbo *l = &s->limbo;
	/* Seq_cst: ordered after the generation bump that unlinked the slot. */
	uint64_t e = atomic_load_explicit(&s->rt->gepoch, memory_order_seq_cst);
	int k = (int)(e % 3);
	if (l->n[k] && l->tag[k] != e)
		release(s, k); /* tag[k] <= e - 3: long safe */
	l->tag[k] = e;
	link_of(s->rt, idx)->next = l->head[k];
	l->head[k] = idx;
	l->n[k]++;
}

static void try_advance(struct kr_runtime *rt, uint64_t e)
{
	for (unsigned i = 0; i < rt->n; i++) {
		uint64_t a = atomic_load_explicit(&rt->s[i].epoch, memory_order_seq_cst);
		if (a != e && a != OFFLINE_EPOCH)
			return;
	}
	atomic_compare_exchange_strong_explicit(&rt->gepoch, &e, e + 1, memory_order_seq_cst,
						memory_order_relaxed);
}

uint64_t kri_epoch_announce(struct sched *s)
{
	uint64_t e = atomic_load_explicit(&s->rt->gepoch, memory_order_seq_cst);
	if (atomic_load_explicit(&s->epoch, memory_order_relaxed) != e) {
		atomic_store_explicit(&s->epoch, e, memory_order_seq_cst);
		/* Store-load: our later slot reads come after the announcement. */
		full_fence();
	}
	return e;
}

void kri_epoch_quiesce(struct sched *s)
{
	struct limbo *l = &s->limbo;
	uint64_t e = kri_epoch_announce(s);
	bool pending = false;
	for (int k = 0; k < 3; k++) {
		if (!l->n[k])
			continue;
		if (e >= l->tag[k] + 2)
			release(s, k);
		else
			pending = true;
	}
	if (pending)
		try_advance(s->rt, e);
}

void kri_epoch_settle(struct sched *s)
{
	/* Each quiescent point can move the epoch on by one when the others
	 * are offline or caught up; three recycle everything retired. */
	for (int round = 0; round < 3; round++) {
		if (!s->limbo.n[0] && !s->limbo.n[1] && !s->limbo.n[2])
			return;
		kri_epoch_quiesce(s);
	}
}

void kri_epoch_offline(struct sched *s)
{
	atomic_store_explicit(&s->epoch, OFFLINE_EPOCH, memory_order_seq_cst);
}

void kri_epoch_online(struct sched *s)
{
	atomic_store_explicit(&s->epoch, atomic_load_explicit(&s->rt->gepoch, memory_order_seq_cst),
			      memory_order_seq_cst);
	full_fence();
}

void kri_epoch_drain(struct sched *s)
{
	for (int k = 0; k < 3; k++)
		release(s, k);
}
