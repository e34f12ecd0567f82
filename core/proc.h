/* proc: a process as it lives in its 64-byte slot, and its side record.
 * Everything an idle process costs is in struct proc; what only some
 * processes use (deferred messages, a receive timeout, links, monitors)
 * lives in the side record they alone pay for. */
#ifndef KR_PROC_H
#define KR_PROC_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/mbox.h"
#include "krill.h"
#include "util/pidset.h"

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
#define P_BIG 1u /* state points to an allocation of its own (proc.c) */

/* aflags */
#define P_NAMED 1u
#define P_LIMITED 2u /* side->limit bounds the mailbox; side outlives the process */
#define P_IO 4u      /* may own I/O handles (core/io.c) */

/* Signals: envelopes with these tags carry a kr_exit_info and are handled
 * by the runtime when the receiver takes them from its mailbox, in order
 * with that sender's messages (link.c). */
#define SIG_BASE 0xffffff00u
#define SIG_LINK (SIG_BASE + 1)
#define SIG_UNLINK (SIG_BASE + 2)
#define SIG_EXIT (SIG_BASE + 3)      /* kr_send_exit / kr_rt_exit */
#define SIG_EXIT_LINK (SIG_BASE + 4) /* a linked process exited */
#define SIG_MONITOR (SIG_BASE + 5)
#define SIG_DEMONITOR (SIG_BASE + 6)
#define SIG_NOTIFY (SIG_BASE + 7) /* ref: the tag to send back when there is room */

struct mon {
	uint64_t ref;
	kr_pid pid;
};

/* Monitors of one process, in no order: an array grown by doubling in the
 * arena (link.c). A process holds few; a linear scan finds one. */
struct kri_monvec {
	struct mon *v;
	uint32_t n, cap;
};

struct side {
	struct env *dhead, *dtail; /* deferred, oldest first */
	kr_timer rto;     /* receive timeout timer, 0 if none */
	uint32_t rto_seq; /* bumped at each arm and disarm: did a call re-arm? */
	uint32_t trap;    /* trapping exits */
	struct kri_pidset links; /* linked processes; one is held without a table */
	struct kri_monvec out;   /* processes this one monitors */
	struct kri_monvec in;    /* processes monitoring this one */
	/* Mailbox limit (P_LIMITED). count is changed by senders too; the
	 * record is then freed only when the slot is recycled (epoch.c), so a
	 * sender that passed the generation check can still touch it. */
	_Atomic int32_t count;
	_Atomic uint32_t limit;
	struct kri_monvec waiters; /* (tag, pid) to tell when there is room */
};
/* Every process with a link has one (a supervisor's child does): within the
 * arena's largest cached size it costs two pointer moves, not a mallocx and
 * an sdallocx (alloc/arena.h). */
_Static_assert(sizeof(struct side) <= 128, "a side record fits the arena's small-object cache");

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
