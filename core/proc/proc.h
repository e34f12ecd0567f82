/* proc: a process as it lives in its 64-byte slot, and its side record.
 * Everything an idle process costs is in struct proc; what only some
 * processes use (deferred messages, a receive timeout, links, monitors)
 * lives in the side record they alone pay for. */
#ifndef KR_PROC_H
#define KR_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc/arena.h"
#include "core/proc/mbox.h"
#include "krill.h"
#include "util/monvec.h"
#include "util/pidset.h"

struct sched;

struct side;
struct kr_runtime;

struct proc {
	_Atomic uintptr_t inbox; /* the mailbox word (mbox.h); read by senders */
	_Atomic uint32_t gen;    /* incarnation: odd while alive; read by senders */
	_Atomic uint32_t aflags; /* bits other threads set: P_NAMED */
	struct env *local;       /* taken messages not yet handled, oldest first */
	kr_behaviour beh;
	uint64_t state;    /* up to 8 bytes inline, else a pointer (P_BIG) */
	struct proc *next; /* run-queue overflow link */
	struct side *side; /* NULL until needed */
	uint8_t flags;     /* owner-only: P_BIG, P_OWN, P_FIBER */
	uint8_t wakes;     /* owner-only: its wake word (balance.h's bal_woke) */
	uint16_t on;       /* owner-only: the scheduler it last ran on (sched_woken) */
	uint32_t idx;      /* its own slot index (pid = gen << 32 | idx) */
};
_Static_assert(sizeof(struct proc) == 64, "a process is one cache line");

/* flags */
#define P_BIG   1u /* state points to an allocation of its own (proc.c) */
#define P_OWN   2u /* side->own is set: owned memory, exit hooks (own.c) */
#define P_FIBER 4u /* with P_BIG: a stackful process, state its fiber (core/fiber) */

/* aflags */
#define P_NAMED   1u
#define P_LIMITED 2u /* side->limit bounds the mailbox; side outlives the process */
#define P_IO      4u /* may own I/O handles (core/io/io.c) */

struct side {
	struct env *dhead, *dtail; /* deferred, oldest first */
	kr_timer rto;              /* receive timeout timer, 0 if none */
	uint32_t rto_seq;          /* bumped at each arm and disarm: did a call re-arm? */
	uint32_t trap;             /* trapping exits */
	struct kri_pidset links;   /* linked processes; one is held without a table */
	struct kri_monvec out;     /* processes this one monitors */
	struct kri_monvec in;      /* processes monitoring this one */
	/* Mailbox limit (P_LIMITED). count is changed by senders too; the
	 * record is then freed only when the slot is recycled (epoch.c), so a
	 * sender that passed the generation check can still touch it. */
	_Atomic int32_t count;
	_Atomic uint32_t limit;
	struct kri_monvec waiters; /* (tag, pid) to tell when there is room */
	uint64_t handled;          /* messages handled since it was made; owner only */
	/* Memory the process owns and its exit hooks (own.c): NULL until its
	 * first kr_alloc or kr_on_exit; freed at its exit, whatever the
	 * reason, even when the record itself outlives it (P_LIMITED). */
	struct own *own;
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

/* The next receive-timeout arm count; 0 is never one. */
static inline uint32_t rto_next(struct side *side)
{
	return side->rto_seq + 1 ? side->rto_seq + 1 : 1;
}

static inline void *proc_state(struct proc *p)
{
	return (p->flags & P_BIG) ? (void *)(uintptr_t)p->state : (void *)&p->state;
}

struct kr_ctx {
	struct sched *s;
	struct proc *p;
	kr_pid self;
	struct env *cur;  /* the message being handled */
	struct env *bufs; /* reserved by kr_msg_buf during this call, not sent */
	void *held;       /* malloc'd by a kr_* call that is copying the caller's
			   * bytes into it: a fault there frees it (fault.c) */
	unsigned sent;    /* messages sent during this run: they cost budget */
	bool defer;       /* kr_defer called for cur */
	bool lone;        /* cur is still in the mailbox word (run.c) */
	bool exiting;
	uint32_t reason;
	uint32_t plen; /* exit payload */
	unsigned char payload[KR_PAYLOAD_MAX];
};

/* Sends a behaviour call made to one receiver, not yet pushed: consecutive
 * sends to the same process after the first go into its mailbox as one
 * chain, one CAS instead of one each (core/proc/env.c). Owner only. */
struct outbox {
	kr_pid pid;       /* the receiver of this call's last send, or 0 */
	struct proc *p;   /* the process it names, live when looked up */
	struct env *head; /* newest; linked newest to oldest */
	struct env *tail; /* oldest */
	unsigned n;
};

/* The longest chain held back before it is pushed: bounds the delay of
 * the first message in it. The default batch budget: 64 measured no
 * better on fanin and count, at two schedulers, than 256. */
#define OUTBOX_MAX 256

/* Every envelope is allocated and freed through these two: envelopes
 * have caches of their own in the arena (ARENA_ENV), so what messages hold
 * is known without counting each one. Inline: every message's envelope
 * goes through both. */
__attribute__((always_inline)) static inline struct env *env_alloc(struct arena *a, size_t n)
{
	return arena_alloc_kind(a, ARENA_ENV, n);
}
__attribute__((always_inline)) static inline void env_free(struct arena *a, struct env *e)
{
	arena_free_kind(a, ARENA_ENV, e, env_size(e->m.len));
}
/* Inline: it is most of a send, and out of line (LTO left it so once
 * it moved to a file of its own) a ring hop cost 25 instructions more. */
static inline struct env *env_new(struct arena *a, uint32_t tag, const void *data, size_t len)
{
	struct env *e = env_alloc(a, env_size((uint32_t)len));
	if (!e)
		return 0;
	e->m.tag = tag;
	e->m.len = (uint32_t)len;
	/* Most messages are a word or two: two moves, not a call to memcpy
	 * (the two 8-byte copies overlap when len < 16). */
	if (len >= 8 && len <= 16) {
		memcpy(e->m.data, data, 8);
		memcpy(e->m.data + len - 8, (const unsigned char *)data + len - 8, 8);
	} else if (len) {
		memcpy(e->m.data, data, len);
	}
	return e;
}
void kri_env_free_list(struct arena *a, struct env *e);

/* proc.c: spawn, lookup and exit */
struct proc *kri_proc_lookup(struct kr_runtime *rt, kr_pid pid, int *err);
struct side *kri_proc_side(struct sched *s, struct proc *p);
void kri_proc_exit(struct sched *s, struct proc *p, uint32_t reason, const void *payload,
		   uint32_t plen);
void kri_proc_destroy_all(struct kr_runtime *rt);

/* own.c: memory a process owns (kr_alloc) and its exit hooks (kr_on_exit).
 * At the exit, hooks run first (own_hooks: the process is dead, its state
 * and memory still there), then everything goes (own_free). */
struct exit_note;
void kri_own_hooks(struct sched *s, struct own *own, const struct exit_note *x);
void kri_own_free(struct sched *s, struct own *own);
/* Bytes p holds through kr_alloc, the blocks' 32-byte headers included; 0
 * if it never called it. p's owner only (or with no scheduler running):
 * the side record it reads is the owner's. */
uint64_t kri_proc_owned_bytes(const struct proc *p);

/* System messages: the tags at and above SYS_TAG_BASE are the runtime's own
 * (the parts define theirs: signal.h, limit.h); a behaviour never sees one
 * but as the KR_TAG_* it becomes. An envelope with one carries a
 * kr_exit_info (sig_env). What take() does with one it finds among the
 * messages it took: */
#define SYS_TAG_BASE 0xffffff00u
enum { TAKE_KEEP, TAKE_DROP, TAKE_DIE };
struct env *kri_sig_env(struct arena *a, uint32_t tag, kr_pid from, uint64_t ref, uint32_t reason,
			const void *payload, uint32_t len);
int kri_sig_send(struct sched *s, kr_pid to, uint32_t tag, kr_pid from, uint64_t ref,
		 uint32_t reason, const void *payload, uint32_t len);

/* env.c: delivery from the runtime. Push e to pid and schedule it if it
 * was idle. 1: queued; 0: pid has exited; -ESRCH: never issued. e is freed
 * unless queued. */
int kri_proc_deliver(struct sched *s, kr_pid to, struct env *e);
/* The same for events from outside (I/O completions): a process it wakes
 * goes to the back of the queue, not ahead of it, so a stream of them
 * cannot keep the rest waiting. */
int kri_proc_deliver_tail(struct sched *s, kr_pid to, struct env *e);
/* Push what s's outbox holds. Called wherever the order of a sender's
 * messages against anything else it sends could show: after each
 * behaviour call, before any other delivery, on a fault or a kill. */
void kri_outbox_push(struct sched *s);

/* send.c */
int kri_proc_check_send(struct kr_runtime *rt, struct sched *s, uint32_t tag, const void *data,
			size_t len);
/* The call is over: buffers it reserved (kr_msg_buf) and did not send go. */
void kri_bufs_free(struct sched *s);

/* run.c */
void kri_proc_run(struct sched *s, struct proc *p);
/* A fault or kill ends the call: its message leaves the mailbox word. */
void kri_proc_drop_lone(struct sched *s);
/* A function process's receive taking queued messages in place, with the
 * run loop's steps around each (core/fiber): the next of p->local (a stale
 * timeout skipped), or NULL; and, once handled, e counted, its receive
 * timeout settled, and e kept if c->defer (deferred) or else freed; c is
 * the process's context (c->p its process). The caller charges each to
 * the run's budget (kr_ctx.sent). */
struct env *kri_proc_local_next(struct sched *s, struct proc *p, uint32_t *seq0);
void kri_proc_local_done(struct sched *s, const struct kr_ctx *c, struct env *e, uint32_t seq0);

#endif
