/* runq: the ring follows Go's runqput/runqget/runqgrab. Owner pushes store
 * buf then publish tail with release; takers read head, tail and the
 * entries, then claim them with a CAS on head, so a thief never runs a
 * process the owner also took. The overflow list keeps bursts (one send
 * waking thousands) from failing or allocating: half the ring moves there
 * in one locked splice, and comes back a ring-full at a time. */
#include "core/runq.h"

#include "core/balance.h"
#include "core/proc.h"

#define OBATCH (RUNQ_CAP / 2)

void runq_init(struct runq *q)
{
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	for (unsigned i = 0; i < RUNQ_CAP; i++)
		atomic_init(&q->buf[i], 0);
	pthread_mutex_init(&q->lock, 0);
	q->ohead = q->otail = 0;
	atomic_init(&q->olen, 0);
	q->pops = 0;
}

void runq_fini(struct runq *q)
{
	pthread_mutex_destroy(&q->lock);
}

static void overflow_append(struct runq *q, struct proc *first, struct proc *last, uint32_t n)
{
	last->next = 0;
	pthread_mutex_lock(&q->lock);
	if (q->otail)
		q->otail->next = first;
	else
		q->ohead = first;
	q->otail = last;
	atomic_store_explicit(&q->olen, atomic_load_explicit(&q->olen, memory_order_relaxed) + n,
			      memory_order_relaxed);
	pthread_mutex_unlock(&q->lock);
}

/* Ring full: move its older half and p to the overflow list. Returns 0 if
 * thieves emptied part of the ring meanwhile (the caller retries). */
static int push_slow(struct runq *q, struct proc *p, uint32_t h, uint32_t t)
{
	struct proc *batch[OBATCH];
	if (t - h != RUNQ_CAP)
		return 0;
	for (uint32_t i = 0; i < OBATCH; i++)
		batch[i] = atomic_load_explicit(&q->buf[(h + i) % RUNQ_CAP], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&q->head, &h, h + OBATCH,
						     memory_order_release, memory_order_relaxed))
		return 0;
	for (uint32_t i = 0; i + 1 < OBATCH; i++)
		batch[i]->next = batch[i + 1];
	batch[OBATCH - 1]->next = p;
	overflow_append(q, batch[0], p, OBATCH + 1);
	return 1;
}

void runq_push(struct runq *q, struct proc *p)
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

/* Move up to a ring's worth from the overflow list into the (empty) ring. */
static struct proc *refill(struct runq *q)
{
	if (atomic_load_explicit(&q->olen, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&q->lock);
	struct proc *p = q->ohead;
	uint32_t n = 0;
	if (p) {
		struct proc *x = p->next;
		uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
		while (x && n < RUNQ_CAP - 1) {
			atomic_store_explicit(&q->buf[(t + n) % RUNQ_CAP], x, memory_order_relaxed);
			x = x->next;
			n++;
		}
		q->ohead = x;
		if (!x)
			q->otail = 0;
		atomic_store_explicit(&q->olen,
				      atomic_load_explicit(&q->olen, memory_order_relaxed) - n - 1,
				      memory_order_relaxed);
		atomic_store_explicit(&q->tail, t + n, memory_order_release);
	}
	pthread_mutex_unlock(&q->lock);
	return p;
}

/* One process from the head of the overflow list. */
static struct proc *overflow_pop(struct runq *q)
{
	pthread_mutex_lock(&q->lock);
	struct proc *p = q->ohead;
	if (p) {
		q->ohead = p->next;
		if (!q->ohead)
			q->otail = 0;
		atomic_store_explicit(&q->olen, atomic_load_explicit(&q->olen, memory_order_relaxed) - 1,
				      memory_order_relaxed);
	}
	pthread_mutex_unlock(&q->lock);
	return p;
}

struct proc *runq_pop(struct runq *q)
{
	/* A ring that never drains must not starve the overflow list: now
	 * and then its oldest goes first (Go checks its global queue every
	 * 61 schedules for the same reason). */
	if (++q->pops % 61 == 0 && atomic_load_explicit(&q->olen, memory_order_relaxed)) {
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
							  memory_order_acquire))
			return p;
	}
}

uint64_t runq_len(struct runq *q)
{
	uint32_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	uint32_t n = t - h;
	if (n > RUNQ_CAP)
		n = 0; /* torn read of a moving queue */
	return n + atomic_load_explicit(&q->olen, memory_order_relaxed);
}

/* Take half of the victim's whole backlog (ring and list) from its
 * overflow list, oldest first: those have waited longest and are the
 * coldest in its cache. The batch is cut out under the victim's lock and
 * placed after it is released (our own list takes what our ring cannot),
 * so two schedulers stealing from each other never hold both locks; the
 * bound (RUNQ_STEAL_MAX) bounds the time the victim's lock is held. A
 * burst that woke thousands on one scheduler is so shared in one steal,
 * as Go's global queue shares it, not 128 at a time: a thief kept busy by
 * its first 128 would not come back for more. */
static struct proc *steal_overflow(struct runq *v, struct runq *mine, uint32_t ring,
				   uint32_t *taken)
{
	if (atomic_load_explicit(&v->olen, memory_order_relaxed) == 0 ||
	    pthread_mutex_trylock(&v->lock))
		return 0;
	struct proc *p = v->ohead, *last = p;
	uint32_t n = 0;
	if (p) {
		uint64_t olen = atomic_load_explicit(&v->olen, memory_order_relaxed);
		uint64_t all = olen + ring;
		uint32_t want =
		    bal_steal_count(all < 2 * RUNQ_STEAL_MAX ? (uint32_t)all : 2 * RUNQ_STEAL_MAX);
		n = 1;
		while (last->next && n < want) {
			last = last->next;
			n++;
		}
		v->ohead = last->next;
		if (!v->ohead)
			v->otail = 0;
		atomic_store_explicit(&v->olen, olen - n, memory_order_relaxed);
	}
	pthread_mutex_unlock(&v->lock);
	if (!p)
		return 0;
	/* p runs now; the ring (empty: we are a thief) takes what it can. */
	struct proc *x = p->next;
	uint32_t t = atomic_load_explicit(&mine->tail, memory_order_relaxed), k = 0;
	while (k + 1 < n && k < RUNQ_CAP - 1) {
		atomic_store_explicit(&mine->buf[(t + k) % RUNQ_CAP], x, memory_order_relaxed);
		x = x->next;
		k++;
	}
	atomic_store_explicit(&mine->tail, t + k, memory_order_release);
	if (k + 1 < n)
		overflow_append(mine, x, last, n - 1 - k);
	*taken = n;
	return p;
}

struct proc *runq_steal(struct runq *v, struct runq *mine, uint32_t min, uint32_t *taken)
{
	uint32_t t0 = atomic_load_explicit(&mine->tail, memory_order_relaxed);
	*taken = 0;
	if (runq_len(v) < (min ? min : 1))
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
			atomic_store_explicit(&mine->buf[(t0 + i) % RUNQ_CAP],
					      atomic_load_explicit(&v->buf[(h + i) % RUNQ_CAP],
								   memory_order_relaxed),
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
