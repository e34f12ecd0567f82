/* fiber: stackful processes (fiber.c) and their context switch
 * (switch.c). A stackful process is an ordinary process whose behaviour is
 * the trampoline of fiber.c: the scheduler, stealing, links, monitors,
 * names and timers see nothing else, and the stackless path pays nothing. */
#ifndef KR_FIBER_H
#define KR_FIBER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "krill.h"

struct sched;
struct proc;

/* switch.c. Save this side's stack pointer in *save and continue on the
 * stack at to, which returns arg from its own kri_ctx_switch (or, made by
 * kri_ctx_make, starts entry(arg)). */
void *kri_ctx_switch(void **save, void *to, void *arg);
/* A stack whose first switch into it calls entry(arg) on it, top down
 * from top; entry must never return. */
void *kri_ctx_make(void *top, void (*entry)(void *));

/* Internal tags, in the runtime's range that take() hands to the
 * behaviour (below SYS_TAG_BASE): a process's first message, and the mark
 * a polling receive (timeout 0) puts behind what its mailbox holds. */
#define TAG_FIBER_START 0xffff0080u
#define TAG_FIBER_POLL  0xffff0081u
/* A run stack a process parked on was given back: try again. */

#define TAG_FIBER_RETRY 0xffff0082u

/* A scheduler's shared run stack (copy-stack mode): one thread at a time
 * runs on it. word: 0 free; 1 held; else held, and word & ~1 the first of
 * the TAG_FIBER_RETRY envelopes of the processes parked until it is given
 * back (linked by next). Taken with acquire (this thread sees what the last
 * holder wrote on it), given back with acq_rel (publishes the stack, and
 * sees the parked envelopes' contents). A scheduler that took it keeps it
 * between its processes' runs (holder, its sched's rheld list) and gives
 * it back in a batch: every 8 runs, before it idles, when it stops
 * (kri_fiber_release); so the run of a process whose stack its scheduler
 * already holds costs no locked instruction. */
struct runstack {
	_Atomic uintptr_t word;
	/* The scheduler holding it, or NULL: written only by the holder
	 * (after its take, before its give), so a thread that reads itself
	 * there holds it (coherence: it sees its own last write or a later
	 * one, and nobody else writes while it holds the word). Relaxed. */
	_Atomic(struct sched *) holder;
	struct runstack *held_next; /* the holder's rheld list */
	/* The blocked process whose frames are still on it (lazy copy-out),
	 * or NULL: the holder's; read unheld only as a hint (fiber_free). */
	_Atomic(struct fiber *) on;
	void *map;
	size_t mapsz;
	unsigned char *lo, *hi; /* the usable range; a guard page below lo */
};

/* The event a blocking I/O call (iowait.c) waits for: op or op2 (0:
 * none), and, when nonzero, the handle and the ref it carries. ref is also
 * what fiber.c's trampoline keeps: a KR_TAG_IO event with a ref at or
 * above KR_IO_WAIT_REF that is not the wait's is a late one, dropped. */
struct kri_io_wait {
	kr_handle h;
	uint64_t ref;
	uint32_t op, op2;
	uint64_t last; /* the last ref handed out, below KR_IO_WAIT_REF */
};
/* The calling function process's, or NULL: the caller is not one. */
struct kri_io_wait *kri_fiber_io(kr_ctx *ctx);

/* kr_call's machinery for another request format (dist/gen_call.c):
 * monitor watch, send(ctx, pid, ref, arg) the request carrying ref (a
 * kr_msg_buf it takes is freed at the call's end if unsent), then block
 * until a KR_TAG_REPLY whose kr_call_hdr names ref (its data are what
 * follows the header), the DOWN of watch (-ESRCH, *reply the DOWN) or
 * the timeout (-ETIMEDOUT; a later reply is dropped). Returns as kr_call;
 * send's error is returned as is. */
int kri_fiber_call(kr_ctx *ctx, kr_pid pid, kr_pid watch,
		   int (*send)(kr_ctx *, kr_pid, uint64_t, void *), void *arg, uint32_t timeout_ms,
		   const kr_msg **reply);

/* proc.c's exit: a process with P_FIBER has gone; free its stacks. */
void kri_fiber_free(struct sched *s, void *state);
/* fault.c: a fault or kill is about to jump out of the running fiber
 * (from the signal handler), and has landed on the scheduler's stack. */
void kri_fiber_escape(struct sched *s);
void kri_fiber_recover(struct sched *s);
/* Processes parked so far because another thread held their run stack
 * (take_home), in every runtime: for the tests. Relaxed: a count. */
extern _Atomic uint64_t kri_fiber_parks;
/* How many times the calling function process was switched to (resumed
 * by its trampoline), 0 for any other caller: for the tests. */
uint64_t kri_fiber_resumes(kr_ctx *ctx);
/* sched.c: give back the run stacks s still holds (s->rheld), waking who
 * parked on them; at least every few runs and before s idles or stops,
 * so a parked process waits at most that long. */
void kri_fiber_release(struct sched *s);
/* sched.c: the scheduler's run stack goes. */
void kri_fiber_sched_fini(struct sched *s);

#endif
