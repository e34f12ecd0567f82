/* epoch: when a dead process's slot may be reused. A sender looks a pid up
 * and pushes to the slot's mailbox without a lock; the slot must not get a
 * new occupant in between. Schedulers announce quiescent points; a retired
 * slot is reused once every scheduler has passed one since (epoch-based
 * reclamation). Only scheduler threads touch slots: foreign threads send
 * through the inject queue, so they need no announcements. */
#ifndef KR_EPOCH_H
#define KR_EPOCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define OFFLINE_EPOCH UINT64_MAX

/* Retired slot indexes waiting for two epoch advances; owner only. */
struct limbo {
	uint64_t tag[3];
	uint32_t head[3], n[3];
	uint32_t tail[3];  /* the first retired: a list goes to the cache whole */
	uint32_t sides[3]; /* slots still holding a side record (release frees it) */
};

struct sched;
struct proc;

void kri_limbo_init(struct limbo *l);
/* Retire p's slot (already unreachable by new lookups). */
void kri_epoch_retire(struct sched *s, struct proc *p);
/* A quiescent point, cheap enough for every step: announce the epoch if
 * it moved (a load, and a store and fence only when it changed), so that
 * others' retired slots are not held back by a scheduler running long
 * batches. Returns the epoch. */
uint64_t kri_epoch_announce(struct sched *s);
/* A quiescent point: the scheduler holds no slot reference. Recycles what
 * is safe and helps the global epoch advance. */
void kri_epoch_quiesce(struct sched *s);
/* Before sleeping: recycle what can be, so that slots freed just before a
 * quiet spell are not held while the scheduler sleeps. */
void kri_epoch_settle(struct sched *s);
/* The scheduler sleeps / wakes: while offline it never blocks reclamation. */
void kri_epoch_offline(struct sched *s);
void kri_epoch_online(struct sched *s);
/* Recycle everything now: only when no other scheduler runs. */
void kri_epoch_drain(struct sched *s);

/* Handing cached slots back to a spawn that found the table full
 * (epoch.c). ask: a new request, every scheduler woken; returns its
 * number. answered: every scheduler has handed back what it held when it
 * saw request ask. asked: s owes an answer; give_back: s answers, at a
 * quiescent point (kri_epoch_quiesce does it when asked). */
struct kr_runtime;
uint64_t kri_epoch_ask(struct kr_runtime *rt);
bool kri_epoch_answered(struct kr_runtime *rt, uint64_t ask);
bool kri_epoch_asked(const struct sched *s);
void kri_epoch_give_back(struct sched *s);

#endif
