/* proc: a process as it lives in its 64-byte slot, and its side record.
 * Everything an idle process costs is in struct proc; what only some
 * processes use (deferred messages, a receive timeout, a name, big state)
 * lives in the side record they alone pay for. */
#ifndef KR_PROC_H
#define KR_PROC_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/mbox.h"
#include "krill.h"

struct side;

struct proc {
	_Atomic uintptr_t inbox; /* the mailbox word (mbox.h); read by senders */
	_Atomic uint32_t gen;    /* incarnation: odd while alive; read by senders */
	_Atomic uint32_t aflags; /* bits other threads set: P_NAMED */
	struct env *local;       /* taken messages not yet handled, oldest first */
	kr_behaviour beh;
	uint64_t state;     /* up to 8 bytes inline, else a pointer (P_BIG) */
	struct proc *next;  /* run-queue overflow link */
	struct side *side;  /* NULL until needed */
	uint32_t flags;     /* owner-only */
	uint32_t idx;       /* its own slot index (pid = gen << 32 | idx) */
};
_Static_assert(sizeof(struct proc) == 64, "a process is one cache line");

/* flags */
#define P_BIG 1u /* state is a pointer to side->state_len bytes */

/* aflags */
#define P_NAMED 1u

struct side {
	struct env *dhead, *dtail; /* deferred, oldest first */
	size_t state_len;
	kr_timer rto;     /* receive timeout timer, 0 if none */
	uint32_t rto_seq; /* bumped at each arm and each delivery */
	uint32_t pad;
};

static inline kr_pid pid_make(uint32_t idx, uint32_t gen)
{
	return (uint64_t)gen << 32 | idx;
}
static inline uint32_t pid_idx(kr_pid p)
{
	return (uint32_t)p;
}
static inline uint32_t pid_gen(kr_pid p)
{
	return (uint32_t)(p >> 32);
}

static inline void *proc_state(struct proc *p)
{
	return (p->flags & P_BIG) ? (void *)(uintptr_t)p->state : (void *)&p->state;
}

#endif
