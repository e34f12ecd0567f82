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
		l->head[k] = l->tail[k] = SLOTS_NIL;
		l->n[k] = l->sides[k] = 0;
	}
}

static void release(struct sched *s, int k)
{
	struct kr_runtime *rt = s->rt;
	struct limbo *l = &s->limbo;
	uint32_t i = l->head[k];
	/* The limbo's link is the cache's (the word at SLOTS_LINK_OFF), so
	 * a list with no side record to free goes over whole: the walk
	 * missed on every slot, retired a while ago (fib at 2 schedulers:
	 * 5.5 % of the samples; the pops that now touch them first prefetch
	 * the next, alloc/slots.c). */
	if (!l->sides[k]) {
		kri_slots_put_list(&rt->procs, &s->pslots, i, l->tail[k], l->n[k]);
		i = SLOTS_NIL;
	}
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
	l->head[k] = l->tail[k] = SLOTS_NIL;
	l->n[k] = l->sides[k] = 0;
}

void kri_epoch_retire(struct sched *s, struct proc *p)
{
	uint32_t idx = p->idx;
	struct limbo *l = &s->limbo;
	/* Seq_cst: ordered after the generation bump that unlinked the slot. */
	uint64_t e = atomic_load_explicit(&s->rt->gepoch, memory_order_seq_cst);
	int k = (int)(e % 3);
	if (l->n[k] && l->tag[k] != e)
		release(s, k); /* tag[k] <= e - 3: long safe */
	l->tag[k] = e;
	if (!l->n[k])
		l->tail[k] = idx;
	if (p->side)
		l->sides[k]++;
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

/* A busy scheduler moves the epoch on only once its limbo holds
 * EPOCH_BATCH slots: each move is a CAS on the shared gepoch and makes
 * every other scheduler re-read it and announce again, and Savina's fib
 * at 2 schedulers, exiting at every run, moved it every 64 runs: 3.4 %
 * of its samples at the CAS and the loads of the others' epochs, 3.2 %
 * at the announcements after (docs/performance.md, "Moving the epoch on
 * less often"). Alone, or before a sleep (settle), it moves it as soon as
 * anything waits: the slots it recycles are then still warm. */
#define EPOCH_BATCH 256u

static void quiesce(struct sched *s, bool eager)
{
	struct limbo *l = &s->limbo;
	uint64_t e = kri_epoch_announce(s);
	uint32_t pending = 0;
	for (int k = 0; k < 3; k++) {
		if (!l->n[k])
			continue;
		if (e >= l->tag[k] + 2)
			release(s, k);
		else
			pending += l->n[k];
	}
	if (pending && (eager || s->rt->n == 1 || pending >= EPOCH_BATCH))
		try_advance(s->rt, e);
}

static bool limbo_empty(const struct limbo *l)
{
	return !l->n[0] && !l->n[1] && !l->n[2];
}

void kri_epoch_settle(struct sched *s)
{
	/* Each quiescent point can move the epoch on by one when the others
	 * are offline or caught up; three recycle everything retired. */
	for (int round = 0; round < 3; round++) {
		if (limbo_empty(&s->limbo))
			return;
		quiesce(s, true);
	}
}

void kri_epoch_quiesce(struct sched *s)
{
	quiesce(s, false);
	if (kri_epoch_asked(s))
		kri_epoch_give_back(s);
}

/* ---- handing slots back ---------------------------------------------------
 * A freed slot waits in its scheduler's limbo, then in its cache
 * (alloc/slots.c), where only that scheduler can take it: a spawn from
 * elsewhere, which sees only the shared pool, could find the table full
 * while slots sat there (with max_procs 2, for ever). So a spawn that finds
 * the table full asks (slots_ask, a counter, and a wake-up for every
 * scheduler); each scheduler, at its next quiescent point, recycles its
 * limbo (settle) and moves its whole cache to the pool, and once its limbo
 * is empty answers with the ask it saw (slots_given). A spawn from a thread
 * waits for every answer (proc.c); a parked scheduler still owing one
 * sleeps at most a millisecond (sched.c: park), so a limbo that needed the
 * others' announcements drains as they go offline.
 * Nothing is paid until someone asks: the check is a load of slots_ask,
 * beside gepoch, which the quiescent point has just read.
 * Rejected: caches small enough that nothing can be stranded (the limbo
 * still strands, and the cache is what keeps the common spawn lock-free);
 * taking a parked scheduler's cache under the pool lock (its owner takes
 * from its cache with no lock and may wake at any moment). */

bool kri_epoch_asked(const struct sched *s)
{
	/* Relaxed: a hint; the value answered is re-read in give_back. */
	return atomic_load_explicit(&s->rt->slots_ask, memory_order_relaxed) !=
	       atomic_load_explicit(&s->slots_given, memory_order_relaxed);
}

void kri_epoch_give_back(struct sched *s)
{
	struct kr_runtime *rt = s->rt;
	uint64_t ask = atomic_load_explicit(&rt->slots_ask, memory_order_relaxed);
	if (ask == atomic_load_explicit(&s->slots_given, memory_order_relaxed))
		return;
	kri_epoch_settle(s);
	kri_slots_flush(&rt->procs, &s->pslots);
	/* Release pairs with kri_epoch_answered's acquire: a spawn that sees
	 * the answer finds the flushed slots in the pool (which it reads
	 * under the pool's lock anyway). */
	if (limbo_empty(&s->limbo))
		atomic_store_explicit(&s->slots_given, ask, memory_order_release);
}

uint64_t kri_epoch_ask(struct kr_runtime *rt)
{
	/* Seq_cst: ordered before the wake-ups, as a sleeper's look at it is
	 * ordered after its announcement of sleep. */
	uint64_t ask = atomic_fetch_add_explicit(&rt->slots_ask, 1, memory_order_seq_cst) + 1;
	kri_sched_wake_all(rt);
	return ask;
}

bool kri_epoch_answered(struct kr_runtime *rt, uint64_t ask)
{
	for (unsigned i = 0; i < rt->n; i++)
		if (atomic_load_explicit(&rt->s[i].slots_given, memory_order_acquire) < ask)
			return false;
	return true;
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
