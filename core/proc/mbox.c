/* mbox: the mailbox hand-off, the most delicate code in krill.
 *
 * Protocol. A process's mailbox is one word W = (top of a LIFO of
 * envelopes) | RUN, or DEAD.
 *   push (any sender):  CAS W: old -> e|RUN with e->next = ptr(old).
 *                       If old had no RUN, this sender made the process
 *                       runnable and must schedule it; nobody else will.
 *   take (owner):       XCHG W -> RUN; reverse the list into FIFO order.
 *   idle (owner):       CAS W: RUN -> 0. Fails iff a push came in since
 *                       the take; then the owner keeps running.
 *   peek (owner, nothing taken left): load W; if it holds one envelope e
 *                       (e->next is NULL), e is handled where it lies.
 *                       Then either idle-lone, CAS W: e|RUN -> 0, which
 *                       takes e out and idles in one step, or, if that
 *                       fails or the owner keeps running, unpeek: XCHG
 *                       W -> RUN and drop e, the oldest of what comes.
 *                       A message handled alone (ping-pong, a ring, a
 *                       request and its reply) so costs the owner one
 *                       atomic instead of two and no reversal. e cannot
 *                       come back as something else (no ABA): only the
 *                       owner takes envelopes out of the word.
 *   close (owner):      XCHG W -> DEAD; pushes from then on fail and the
 *                       sender frees its envelope.
 * Invariant: RUN is set exactly while one party owns the right to run the
 * process (a run queue holds it or a scheduler runs it). RUN is only ever
 * set by a push that saw it clear (the waker, who schedules) and only
 * cleared by the owner's idle CAS, which fails if anything was pushed
 * since the owner's last take, or its idle-lone CAS, which fails if
 * anything was pushed on top of the lone envelope; so a message is never
 * left behind in an idle mailbox, and a process is never scheduled twice.
 * Ordering: push's CAS is release (the envelope's bytes and next are
 * published) and acquire (a waker that saw the owner's idle store also
 * sees the state the owner wrote while running, before it schedules the
 * process elsewhere); take, peek and unpeek are acquire for the same
 * envelopes, idle-lone is release as idle is. One atomic
 * read-modify-write per send when uncontended, and one per batch: a
 * sender gathers consecutive sends to one receiver in its scheduler's
 * outbox (env.c) and pushes them as one chain.
 * Rejected: Vyukov's intrusive MPSC queue (one XCHG per push, FIFO without
 * a reverse) needs a stub node per process, 16 more bytes a process than
 * this word, and a dead state cannot be folded into it without a second
 * word. The model in tests/models/mbox.pml checks this protocol. */
#include "core/proc/mbox.h"

#include <assert.h>

/* A chain newest -> ... -> oldest, linked by next, goes on in one CAS:
 * oldest->next takes the old top, so after the owner's take-and-reverse
 * the chain comes out oldest first, after everything pushed before it.
 * For the protocol this is the same step as a single push (one CAS on the
 * word, whose pointer bits only ever name an envelope fully linked before
 * the release), which is why tests/models/mbox.pml, which models the word
 * and not the length of what hangs from it, needs no change. */
int kri_mbox_push_chain(_Atomic uintptr_t *w, struct env *newest, struct env *oldest)
{
	uintptr_t old = atomic_load_explicit(w, memory_order_relaxed);
	do {
		if (old == MB_DEAD)
			return MB_CLOSED;
		oldest->next = MB_PTR(old);
	} while (!atomic_compare_exchange_weak_explicit(
	    w, &old, (uintptr_t)newest | MB_RUN, memory_order_acq_rel, memory_order_relaxed));
	return (old & MB_RUN) ? MB_QUEUED : MB_WOKE;
}

int kri_mbox_push(_Atomic uintptr_t *w, struct env *e)
{
	return kri_mbox_push_chain(w, e, e);
}

static struct env *reverse(struct env *e)
{
	struct env *r = 0;
	while (e) {
		struct env *n = e->next;
		e->next = r;
		r = e;
		e = n;
	}
	return r;
}

struct env *kri_mbox_take(_Atomic uintptr_t *w)
{
	/* Cheap look first: most takes after the first find nothing. */
	if (!MB_PTR(atomic_load_explicit(w, memory_order_relaxed)))
		return 0;
	return reverse(MB_PTR(atomic_exchange_explicit(w, MB_RUN, memory_order_acquire)));
}

int kri_mbox_idle(_Atomic uintptr_t *w)
{
	uintptr_t expect = MB_RUN;
	/* Release: the state this run wrote is visible to whoever next
	 * schedules the process (its push is acquire). */
	return atomic_compare_exchange_strong_explicit(w, &expect, 0, memory_order_release,
						       memory_order_relaxed)
		   ? 0
		   : -1;
}

struct env *kri_mbox_peek(_Atomic uintptr_t *w)
{
	/* Acquire: e's bytes and next, published by its push, are read. */
	struct env *e = MB_PTR(atomic_load_explicit(w, memory_order_acquire));
	return e && !e->next ? e : 0;
}

int kri_mbox_idle_lone(_Atomic uintptr_t *w, struct env *e)
{
	uintptr_t expect = (uintptr_t)e | MB_RUN;
	/* Release, as mbox_idle. */
	return atomic_compare_exchange_strong_explicit(w, &expect, 0, memory_order_release,
						       memory_order_relaxed)
		   ? 0
		   : -1;
}

struct env *kri_mbox_unpeek(_Atomic uintptr_t *w, struct env *e)
{
	struct env *l = reverse(MB_PTR(atomic_exchange_explicit(w, MB_RUN, memory_order_acquire)));
	assert(l == e); /* pushes only ever go on top of it */
	l = e->next;
	e->next = 0; /* e may be on the deferred list already, as its last */
	return l;
}

struct env *kri_mbox_close(_Atomic uintptr_t *w)
{
	return reverse(MB_PTR(atomic_exchange_explicit(w, MB_DEAD, memory_order_acq_rel)));
}
