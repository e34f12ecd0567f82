/* mbox: the mailbox word of a process and the hand-off that decides who
 * schedules it. See mbox.c for the protocol and why it cannot lose a
 * message or a wake-up. */
#ifndef KR_MBOX_H
#define KR_MBOX_H

#include <stdatomic.h>
#include <stdint.h>

#include "krill.h"

/* An envelope: owned by whoever holds it; data is 16-byte aligned. */
struct env {
	struct env *next;
	kr_msg m;
};
_Static_assert(sizeof(struct env) == 16, "envelope header is 16 bytes");

static inline size_t env_size(uint32_t len)
{
	return sizeof(struct env) + len;
}

/* The word: a LIFO stack of envelopes pushed since the owner last took
 * them, with the RUN bit set while the process is queued or running.
 * MB_DEAD alone: the process has exited; pushes fail. 0: idle, empty. */
#define MB_RUN    ((uintptr_t)1)
#define MB_DEAD   ((uintptr_t)2)
#define MB_PTR(w) ((struct env *)((w) & ~(uintptr_t)15))

enum { MB_QUEUED = 0, MB_WOKE = 1, MB_CLOSED = -1 };

/* Any thread. MB_WOKE: the process was idle and the caller must schedule
 * it; MB_QUEUED: someone else runs it; MB_CLOSED: it has exited and e was
 * not taken. */
int kri_mbox_push(_Atomic uintptr_t *w, struct env *e);

/* Any thread. Push the chain newest -> ... -> oldest (linked by next) in
 * one step, as mbox_push does one envelope: the owner takes it oldest
 * first. MB_CLOSED: nothing was taken; the caller frees the chain. */
int kri_mbox_push_chain(_Atomic uintptr_t *w, struct env *newest, struct env *oldest);

/* Owner. Take everything pushed so far, oldest first (RUN stays set). */
struct env *kri_mbox_take(_Atomic uintptr_t *w);

/* Owner, after mbox_take returned NULL and nothing else is left: go idle.
 * Returns 0 if idle now (a later push wakes), -1 if messages arrived
 * meanwhile (still RUN: take them). */
int kri_mbox_idle(_Atomic uintptr_t *w);

/* Owner, with nothing taken left: the envelope alone in the word, to be
 * handled where it lies, or NULL if the word holds none or several. It
 * stays in the word until mbox_idle_lone or mbox_unpeek takes it out. */
struct env *kri_mbox_peek(_Atomic uintptr_t *w);

/* Owner, after handling the lone e: go idle if nothing came since, taking
 * e out in the same CAS. 0: idle now; -1: more arrived (e is still in). */
int kri_mbox_idle_lone(_Atomic uintptr_t *w, struct env *e);

/* Owner: take the lone e out with whatever came after it, and return
 * those, oldest first (without e, whose next is left NULL). RUN stays
 * set. */
struct env *kri_mbox_unpeek(_Atomic uintptr_t *w, struct env *e);

/* Owner, at exit: mark dead and return what was pending, oldest first. */
struct env *kri_mbox_close(_Atomic uintptr_t *w);

#endif
