/* runq: the ring follows Go's runqput/runqget/runqgrab. Owner pushes store
 * buf then publish tail with release; takers read head, tail and the
 * entries, then claim them with a CAS on head, so a thief never runs a
 * process the owner also took. The overflow keeps bursts (one send waking
 * thousands) from failing: half the ring moves there in one locked copy,
 * and comes back a ring-full at a time. It is an array, not a list
 * through the processes (as Go's global queue is): moving a ring-full out
 * of a list chases 255 pointers into 255 cold slots one after another,
 * which was a third of skynet's time; from an array it is a copy, and the
 * slots are touched when they run, where they can be prefetched. When the
 * array cannot grow (no memory, or past OV_MAX), the processes are linked
 * through next after it, so a wake-up never fails. Processes another
 * scheduler hands back (compaction, sched.c) wait on a list of their own
 * behind the overflow, taken by the owner only. */
#include "core/sched/runq.h"

#include <stdbool.h>

#include "alloc/arena.h"
#include "core/sched/balance.h"
#include "core/proc/proc.h"

#define OBATCH  (RUNQ_CAP / 2)
#define OV_MIN  1024u         /* first array: 8 KiB */
#define OV_KEEP (64u * 1024u) /* a drained array bigger than this goes back */
/* The array stops growing at 8 MiB: waking 100 M processes at once must
 * not cost 800 MB more than it did, so a burst past a million queued goes
 * on the list (which costs nothing but the slower refill). */
#define OV_MAX (1u << 20)
/* How far ahead warm() looks: a slot two pops before its message, as
 * the message needs the slot's inbox word (1/3 to 4/8 measured alike). */
#define WARM_MSG  2
#define WARM_SLOT 4

void kri_runq_init(struct runq *q, struct arena *a)
{
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	for (unsigned i = 0; i < RUNQ_CAP; i++)
		atomic_init(&q->buf[i], 0);
	pthread_mutex_init(&q->lock, 0);
	q->ov = 0;
	q->ocap = 0;
	q->ohd = q->otl = 0;
	q->spill = q->stail = 0;
	atomic_init(&q->olen, 0);
	atomic_init(&q->oout, 0);
	q->gift = q->gtail = 0;
	atomic_init(&q->glen, 0);
	q->arena = a;
	q->pops = 0;
}

void kri_runq_fini(struct runq *q)
{
	kri_arena_free_slow(q->arena, q->ov, (size_t)q->ocap * sizeof *q->ov);
	q->ov = 0;
	q->ocap = 0;
	pthread_mutex_destroy(&q->lock);
}

static void olen_add(struct runq *q, int64_t n)
{
	atomic_store_explicit(&q->olen,
			      atomic_load_explicit(&q->olen, memory_order_relaxed) + (uint64_t)n,
			      memory_order_relaxed);
}

/* Owner, under the lock: an array for at least need, in order. Leaves ov
 * as it was when memory is short or need is past OV_MAX. */
static void ov_grow(struct runq *q, uint64_t need)
{
	uint64_t cap = q->ocap ? q->ocap : OV_MIN;
	while (cap < need)
		cap *= 2;
	if (cap > OV_MAX)
		return;
	struct proc **v = kri_arena_alloc_slow(q->arena, cap * sizeof *v);
	if (!v)
		return;
	uint64_t n = q->otl - q->ohd;
	for (uint64_t i = 0; i < n; i++)
		v[i] = q->ov[(q->ohd + i) & (q->ocap - 1)];
	kri_arena_free_slow(q->arena, q->ov, (size_t)q->ocap * sizeof *q->ov);
	q->ov = v;
	q->ocap = (uint32_t)cap;
	q->ohd = 0;
	q->otl = n;
}

/* Owner only: append v[0..n) to the overflow, oldest first. While the
 * spill list holds anything, all goes after it: the order stays FIFO. */
static void overflow_put(struct runq *q, struct proc *const *v, uint32_t n)
{
	pthread_mutex_lock(&q->lock);
	if (!q->spill && q->otl - q->ohd + n > q->ocap)
		ov_grow(q, q->otl - q->ohd + n);
	if (!q->spill && q->otl - q->ohd + n <= q->ocap) {
		for (uint32_t i = 0; i < n; i++)
			q->ov[(q->otl + i) & (q->ocap - 1)] = v[i];
		q->otl += n;
	} else {
		for (uint32_t i = 0; i < n; i++) {
			v[i]->next = 0;
			if (q->stail)
				q->stail->next = v[i];
			else
				q->spill = v[i];
			q->stail = v[i];
		}
	}
	olen_add(q, n);
	pthread_mutex_unlock(&q->lock);
}

/* Under the lock: take up to max of the oldest into v, and with gifts
 * (the owner) those handed back after them. */
static uint32_t overflow_take(struct runq *q, struct proc **v, uint32_t max, bool gifts)
{
	uint32_t n = 0, g;
	while (n < max && q->ohd != q->otl)
		v[n++] = q->ov[q->ohd++ & (q->ocap - 1)];
	while (n < max && q->spill) {
		v[n++] = q->spill;
		q->spill = q->spill->next;
	}
	if (!q->spill)
		q->stail = 0;
	olen_add(q, -(int64_t)n);
	atomic_store_explicit(&q->oout, atomic_load_explicit(&q->oout, memory_order_relaxed) + n,
			      memory_order_relaxed);
	for (g = n; gifts && g < max && q->gift; g++) {
		v[g] = q->gift;
		q->gift = q->gift->next;
	}
	if (g > n) {
		if (!q->gift)
			q->gtail = 0;
		/* Relaxed, under the lock as every write of it: a hint for
		 * the owner's tests before it takes the lock. */
		atomic_store_explicit(
		    &q->glen, atomic_load_explicit(&q->glen, memory_order_relaxed) - (g - n),
		    memory_order_relaxed);
	}
	return g;
}

void kri_runq_give(struct runq *q, struct proc *const *v, uint32_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&q->lock);
	for (uint32_t i = 0; i < n; i++) {
		v[i]->next = 0;
		if (q->gtail)
			q->gtail->next = v[i];
		else
			q->gift = v[i];
		q->gtail = v[i];
	}
	/* Relaxed under the lock; the unlock publishes the list (and the
	 * processes' state) to the owner, whose pop takes the lock. */
	atomic_store_explicit(&q->glen, atomic_load_explicit(&q->glen, memory_order_relaxed) + n,
			      memory_order_relaxed);
	pthread_mutex_unlock(&q->lock);
}

uint64_t kri_runq_given(struct runq *q)
{
	return atomic_load_explicit(&q->glen, memory_order_relaxed);
}

struct proc *kri_runq_head(struct runq *q)
{
	uint32_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	return atomic_load_explicit(&q->buf[h % RUNQ_CAP], memory_order_relaxed);
}

/* Ring full: move its older half and p to the overflow. Returns 0 if
 * thieves emptied part of the ring meanwhile (the caller retries). */
static int push_slow(struct runq *q, struct proc *p, uint32_t h, uint32_t t)
{
	struct proc *batch[OBATCH + 1];
	if (t - h != RUNQ_CAP)
		return 0;
	for (uint32_t i = 0; i < OBATCH; i++)
		batch[i] = atomic_load_explicit(&q->buf[(h + i) % RUNQ_CAP], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&q->head, &h, h + OBATCH, memory_order_release,
						     memory_order_relaxed))
		return 0;
	batch[OBATCH] = p;
	overflow_put(q, batch, OBATCH + 1);
	return 1;
}

void kri_runq_push(struct runq *q, struct proc *p)
{
	for (;;) {
		/* Acquire: entries thieves took are no longer read by them. */
		uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
		uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
		if (t - h < RUNQ_CAP) {
			atomic_store_explicit(&q->buf[t % RUNQ_CAP], p, memory_order_relaxed);
			/* Release: a taker that sees the tail sees the entry and
			 * the process's state. */
			atomic_store_explicit(&q->tail, t + 1, memory_order_release);
			return;
		}
		if (push_slow(q, p, h, t))
			return;
	}
}

/* Wake-ups from outside (I/O completions) come in streams, one reap after
 * another while the queue is long. Into the ring they would go ahead of
 * an overflow waiting there, which is taken only once in 61 pops or when
 * the ring runs dry: the overflow's processes would wait for seconds while
 * new ones ran at once. Behind it they keep their turn. So does a process
 * whose budget ran out (run.c), which would otherwise run again ahead of
 * everything it woke past the ring. */
void kri_runq_push_back(struct runq *q, struct proc *p)
{
	if (atomic_load_explicit(&q->olen, memory_order_relaxed) == 0)
		kri_runq_push(q, p);
	else
		overflow_put(q, &p, 1);
}

/* Owner, ring empty: v[0] runs now, v[1..n) go to the ring, the rest of
 * them to the overflow. */
static struct proc *place(struct runq *q, struct proc **v, uint32_t n)
{
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed), k = 0;
	while (k + 1 < n && k < RUNQ_CAP - 1) {
		atomic_store_explicit(&q->buf[(t + k) % RUNQ_CAP], v[k + 1], memory_order_relaxed);
		k++;
	}
	atomic_store_explicit(&q->tail, t + k, memory_order_release);
	if (k + 1 < n)
		overflow_put(q, v + k + 1, n - 1 - k);
	return n ? v[0] : 0;
}

/* Move up to a ring's worth from the overflow into the (empty) ring. */
static struct proc *refill(struct runq *q)
{
	struct proc *v[RUNQ_CAP];
	if (atomic_load_explicit(&q->olen, memory_order_relaxed) == 0 &&
	    atomic_load_explicit(&q->glen, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&q->lock);
	uint32_t n = overflow_take(q, v, RUNQ_CAP, true);
	/* After a burst, a big drained array goes back. */
	if (q->ohd == q->otl && q->ocap > OV_KEEP) {
		kri_arena_free_slow(q->arena, q->ov, (size_t)q->ocap * sizeof *q->ov);
		q->ov = 0;
		q->ocap = 0;
		q->ohd = q->otl = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return place(q, v, n);
}

/* One process from the head of the overflow. */
static struct proc *overflow_pop(struct runq *q)
{
	struct proc *p = 0;
	pthread_mutex_lock(&q->lock);
	overflow_take(q, &p, 1, true);
	pthread_mutex_unlock(&q->lock);
	return p;
}

/* After a burst the processes next in line ran long ago and are cold in
 * the cache: start fetching the next one's newest message and the slot of
 * the one after it while this one runs (the next slot was started the
 * same way one pop ago). Hints only: a thief may take them meanwhile, and
 * slots stay mapped, so a stale look costs nothing. */
static void warm(struct runq *q, uint32_t h, uint32_t t)
{
	if (t - h > WARM_MSG) {
		struct proc *n =
		    atomic_load_explicit(&q->buf[(h + WARM_MSG) % RUNQ_CAP], memory_order_relaxed);
		__builtin_prefetch(MB_PTR(atomic_load_explicit(&n->inbox, memory_order_relaxed)));
	}
	if (t - h > WARM_SLOT)
		__builtin_prefetch(atomic_load_explicit(&q->buf[(h + WARM_SLOT) % RUNQ_CAP],
							memory_order_relaxed));
}

struct proc *kri_runq_pop(struct runq *q)
{
	/* A ring that never drains must not starve the overflow: now
	 * and then its oldest goes first (Go checks its global queue every
	 * 61 schedules for the same reason). */
	if (++q->pops % 61 == 0 && (atomic_load_explicit(&q->olen, memory_order_relaxed) ||
				    atomic_load_explicit(&q->glen, memory_order_relaxed))) {
		struct proc *p = overflow_pop(q);
		if (p)
			return p;
	}
	uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	for (;;) {
		uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
		if (t == h)
			return refill(q);
		struct proc *p = atomic_load_explicit(&q->buf[h % RUNQ_CAP], memory_order_relaxed);
		/* Acq_rel: claim the entry against thieves. */
		if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + 1, memory_order_acq_rel,
							  memory_order_acquire)) {
			warm(q, h, t);
			return p;
		}
	}
}

/* Take half of the victim's whole backlog (ring and overflow) from its
 * overflow, oldest first: those have waited longest and are the coldest
 * in its cache. The batch is taken under the victim's lock and placed
 * after it is released (our own overflow takes what our ring cannot), so
 * two schedulers stealing from each other never hold both locks; the
 * bound (RUNQ_STEAL_MAX) bounds the time the victim's lock is held. A
 * burst that woke thousands on one scheduler is so shared in one steal,
 * as Go's global queue shares it, not 128 at a time: a thief kept busy by
 * its first 128 would not come back for more. */
static struct proc *steal_overflow(struct runq *v, struct runq *mine, uint32_t ring,
				   uint32_t *taken)
{
	struct proc *batch[RUNQ_STEAL_MAX];
	if (atomic_load_explicit(&v->olen, memory_order_relaxed) == 0 ||
	    pthread_mutex_trylock(&v->lock))
		return 0;
	uint64_t all = atomic_load_explicit(&v->olen, memory_order_relaxed) + ring;
	uint32_t want =
	    bal_steal_count(all < 2 * RUNQ_STEAL_MAX ? (uint32_t)all : 2 * RUNQ_STEAL_MAX);
	uint32_t n = overflow_take(v, batch, want, false);
	pthread_mutex_unlock(&v->lock);
	*taken = n;
	return place(mine, batch, n);
}

struct proc *kri_runq_steal_gifts(struct runq *v, struct runq *mine, uint32_t *taken)
{
	struct proc *batch[RUNQ_STEAL_MAX];
	*taken = 0;
	if (atomic_load_explicit(&v->glen, memory_order_relaxed) == 0 ||
	    pthread_mutex_trylock(&v->lock))
		return 0;
	uint32_t n = overflow_take(v, batch, RUNQ_STEAL_MAX, true);
	pthread_mutex_unlock(&v->lock);
	*taken = n;
	return place(mine, batch, n);
}

struct proc *kri_runq_steal(struct runq *v, struct runq *mine, uint32_t min, uint32_t *taken)
{
	uint32_t t0 = atomic_load_explicit(&mine->tail, memory_order_relaxed);
	*taken = 0;
	if (kri_runq_len(v) < (min ? min : 1))
		return 0;
	for (;;) {
		uint32_t h = atomic_load_explicit(&v->head, memory_order_acquire);
		uint32_t t = atomic_load_explicit(&v->tail, memory_order_acquire);
		/* The list when it holds at least half of the backlog (a burst's
		 * older part), else the ring's half as Go takes it. */
		uint64_t olen = atomic_load_explicit(&v->olen, memory_order_relaxed);
		if (t - h <= RUNQ_CAP && olen && olen >= t - h) {
			struct proc *p = steal_overflow(v, mine, t - h, taken);
			if (p)
				return p;
		}
		uint32_t n = bal_steal_count(t - h);
		if (n == 0)
			return 0;
		if (n > RUNQ_CAP / 2)
			continue; /* read head and tail of different moments */
		for (uint32_t i = 0; i < n; i++)
			atomic_store_explicit(
			    &mine->buf[(t0 + i) % RUNQ_CAP],
			    atomic_load_explicit(&v->buf[(h + i) % RUNQ_CAP], memory_order_relaxed),
			    memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&v->head, &h, h + n, memory_order_acq_rel,
							  memory_order_relaxed)) {
			/* Run the newest taken; publish the rest in our ring. */
			struct proc *p = atomic_load_explicit(&mine->buf[(t0 + n - 1) % RUNQ_CAP],
							      memory_order_relaxed);
			atomic_store_explicit(&mine->tail, t0 + n - 1, memory_order_release);
			*taken = n;
			return p;
		}
	}
}
