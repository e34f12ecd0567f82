/* fiber: stackful processes. A process spawned with kr_spawn_fn is an
 * ordinary process (slot, mailbox, links, timers, stealing) whose
 * behaviour is tramp() below and whose state is a struct fiber: the
 * function, its stack, and the receive it is blocked in. A message comes:
 * the trampoline, on the scheduler's stack, asks the receive's match; a
 * refused message is deferred (run.c keeps it, in order, for the next
 * receive); an accepted one is handed over by switching to the process's
 * stack, where kr_receive returns it; the function runs until its next
 * blocking call switches back, and the behaviour call returns. So the run
 * loop never asks "is this stackful": the stackless path runs exactly the
 * instructions it ran before, and the only test added anywhere is in the
 * exit of a big-state process (proc.c).
 *
 * Stacks (krill.h states the rules to users). Copy-stack, the default: a
 * process runs on one of its scheduler's shared run stacks (RUN_STACKS of
 * them, the processes bound to each in turn) and, when it blocks, its
 * used part ([sp, top)) is kept in an arena allocation, and put back when
 * it runs again. The copy-out is lazy: a process that blocks leaves its
 * frames where they are (runstack.on) and only makes room for them; they
 * are copied out when another process takes that stack, so a process that
 * runs again before any other on its stack copies nothing either way, and
 * neither do up to RUN_STACKS processes that take turns (a pair that
 * answers each other) when they are bound to different run stacks.
 * Compiled code keeps pointers into its own frames (saved frame pointers,
 * addresses of locals in registers), so a stack must come back at the
 * address it left: a process is bound, for life, to the run stack it first
 * ran on, and any scheduler that runs it (a thief, or the scheduler of a
 * sender that woke it) runs it on that stack, held exclusively from the
 * hand-over of a message until the process blocks again.
 *
 * A busy run stack (another thread runs a process on it): the scheduler
 * does not wait. The process parks (F_PARK): an envelope of its own
 * (TAG_FIBER_RETRY) is pushed on the stack's word, in the same CAS that
 * sees it held, and everything that comes meanwhile is deferred, in
 * order, as a refused message is. The holder's give takes the word (and
 * the list) in one exchange and delivers each RETRY, from its own
 * scheduler, so the parked process runs next there, on its stack's home
 * usually; it looks at what waited again, first. A scheduler does not give
 * a stack back after each run on it but keeps it (runstack.holder, its
 * rheld list) and gives back all it keeps every 8 process runs, before it
 * idles and when it stops (kri_fiber_release, called by sched.c's loop):
 * the take of a kept stack is a relaxed load, and a pair that answers each
 * other on one scheduler pays two locked instructions per 8 runs, not per
 * message. The price: a parker waits for the holder's next release, up to
 * 8 runs of other processes (with a runaway among them, until the
 * watchdog), not only for the run of the process on its stack. Rejected: a
 * biased lock whose owner takes it with plain stores (a Dekker store-load
 * fence, as dear as the locked instruction it saves, or a revocation
 * handshake, which is what the batch release is). tests/models/runstack.pml
 * checks it (one thread on a stack, no parked process left unwoken, no two
 * exits waiting for each other), with the two releases it needs removed as
 * mutants. No wake-up is lost: a
 * parker either takes a free stack or queues on a held one, atomically,
 * and the give that frees it sees every queued one. Rejected: the thief
 * spinning until the stack is free (what this file did first: a thread
 * idle for as long as another process's span, the whole run of a runaway
 * until the watchdog); a steal filter (the run queue is stolen by a batch
 * CAS over pointers, and reading each process's binding there races with
 * its owner; and a sender's wake-up, not only a steal, runs a process away
 * from its stack); one run stack per process (a page or more per idle
 * process, the cost the issue wants gone); moving a stack and fixing its
 * pointers as Go does (C has no stack maps); copying to the thief's run
 * stack at the same offset (every saved frame pointer would be wrong).
 * Own-stack mode (kr_fn_opts.stack): an mmap'd stack with a guard page;
 * nothing copied, nothing to wait for.
 *
 * The context: a function keeps its kr_ctx for life, but the scheduler's
 * (s->ctx, which the run loop and fault.c use) changes with the scheduler
 * that runs it. So a fiber carries its own, copied from the scheduler's
 * when it is switched to and back when it switches out.
 *
 * Sanitizers: ASan is told of each switch (__sanitizer_start/finish_
 * switch_fiber) and a copied stack's shadow is cleared when it leaves and
 * comes back (its frames' red zones are then not checked: another
 * process's frames were there); TSan gets a fiber per process
 * (__tsan_create_fiber) and each switch synchronises (flags 0). */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fiber/fiber.h"
#include "core/proc/deliver.h"
#include "core/proc/limit.h"
#include "core/proc/part.h"
#include "core/sched/sched.h"
#include "util/cpu.h"

#if defined(__SANITIZE_ADDRESS__)
#define FIBER_ASAN 1
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
				     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
#if defined(__SANITIZE_THREAD__)
#define FIBER_TSAN 1
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

/* A scheduler's shared run stacks: how many, and each one's size. */
#define RUN_STACKS 4u
#define RUN_STACK  (256u * 1024)
/* Own stacks: at least this, at most FN_STACK_MAX. */
#define OWN_STACK_MIN (16u * 1024)
#define FN_STACK_MAX  ((size_t)1 << 30)

/* F_PARK: waits for its run stack (take_home), back to unpark (F_NEW or
 * F_WAIT) when its RETRY comes. */
enum { F_NEW, F_RUN, F_WAIT, F_DONE, F_PARK };

struct fiber {
	struct kr_ctx ctx; /* the process's context, its own for life */
	void *sp;          /* its stack pointer while suspended */
	void *ret_sp;      /* the scheduler side's, while it runs */
	kr_fn fn;
	/* The receive it is blocked in. */
	kr_match match;
	void *marg;
	const kr_msg *got;     /* what it returns */
	int rc;                /* 0 or -ETIMEDOUT */
	uint32_t seq;          /* this receive's number: a poll's mark names it */
	uint64_t call_ref;     /* the kr_call under way, or 0 */
	struct kri_io_wait io; /* the blocking I/O call under way (iowait.c) */
	uint8_t st;            /* F_* */
	uint8_t timed;         /* the receive armed the receive timeout */
	uint8_t unpark;        /* F_PARK: the state it parked in */
	uint8_t starting;      /* its first run: the message that started it waits */
	uint32_t park_seq;     /* the parking's number, in its RETRY */
	/* The message a receive took in place (wait_in), its until the next
	 * blocking call, or NULL; and its msg_begin's seq0 (run.c). */
	struct env *inplace;
	uint32_t inplace_seq0;
	uint32_t resumes; /* switched to so often (kri_fiber_resumes) */
	/* Its stack, [lo, hi): its run stack's (copy mode, home) or its own
	 * mapping (map). Copy mode keeps the used part in saved while it
	 * is suspended. */
	unsigned char *lo, *hi;
	struct runstack *home;
	void *map;
	size_t mapsz;
	unsigned char *saved;
	uint32_t saved_len, saved_cap;
#ifdef FIBER_ASAN
	void *fake;
	const void *from_lo;
	size_t from_size;
#endif
#ifdef FIBER_TSAN
	void *tsan, *tsan_ret;
#endif
	size_t arglen;
	alignas(16) unsigned char arg[];
};

/* ---- stacks --------------------------------------------------------------- */

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);
	return p > 0 ? (size_t)p : 4096;
}

/* A stack of size bytes with a guard page below: its mapping, or NULL. */
static void *stack_map(size_t size, size_t *mapsz)
{
	size_t pg = page_size();
	size = (size + pg - 1) & ~(pg - 1);
	*mapsz = size + pg;
	void *m = mmap(0, *mapsz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return 0;
	if (mprotect(m, pg, PROT_NONE)) {
		munmap(m, *mapsz);
		return 0;
	}
#ifdef FIBER_ASAN
	/* munmap leaves ASan's shadow as it was: a stack mapped where an
	 * earlier one was must not inherit its frames' red zones. */
	__asan_unpoison_memory_region((unsigned char *)m + pg, size);
#endif
	return m;
}

/* A scheduler's run stacks, made at its first stackful process. Several,
 * so that a few processes that take turns (a request and its answer, a
 * pair) each keep their frames on a stack of their own and, with the lazy
 * copy-out, copy nothing; each costs only the pages it touched. */
struct runstacks {
	unsigned next; /* the one the next process is bound to; owner only */
	struct runstack r[RUN_STACKS];
};

static void runstacks_free(struct runstacks *rs)
{
	for (unsigned i = 0; i < RUN_STACKS; i++)
		if (rs->r[i].map)
			munmap(rs->r[i].map, rs->r[i].mapsz);
	free(rs);
}

/* The run stack a process first running on s is bound to: each in turn. */
static struct runstack *runstack_of(struct sched *s)
{
	struct runstacks *rs = s->rstack;
	if (!rs) {
		rs = calloc(1, sizeof(*rs));
		if (!rs)
			return 0;
		for (unsigned i = 0; i < RUN_STACKS; i++) {
			struct runstack *r = &rs->r[i];
			r->map = stack_map(RUN_STACK, &r->mapsz);
			if (!r->map) {
				runstacks_free(rs);
				return 0;
			}
			r->lo = (unsigned char *)r->map + page_size();
			r->hi = (unsigned char *)r->map + r->mapsz;
			atomic_init(&r->word, 0);
			atomic_init(&r->holder, NULL);
			atomic_init(&r->on, NULL);
		}
		s->rstack = rs;
	}
	return &rs->r[rs->next++ % RUN_STACKS];
}

void kri_fiber_sched_fini(struct sched *s)
{
	if (s->rstack) {
		runstacks_free(s->rstack);
		s->rstack = 0;
	}
}

/* One thread at a time on a run stack. Acquire: this thread sees what the
 * last one wrote on it (and copied out) before its give. */
static bool stack_try(struct runstack *r)
{
	uintptr_t free_ = 0;
	return atomic_compare_exchange_strong_explicit(&r->word, &free_, 1, memory_order_acquire,
						       memory_order_relaxed);
}

/* Take r, or, when another thread holds it, queue e (the caller's
 * TAG_FIBER_RETRY) to be delivered when r is given back. True: taken (e
 * is the caller's still). Release on the queueing: the giver reads e. */
static bool stack_take_or_park(struct runstack *r, struct env *e)
{
	uintptr_t w = atomic_load_explicit(&r->word, memory_order_relaxed);
	for (;;) {
		if (w == 0) {
			if (atomic_compare_exchange_weak_explicit(
				&r->word, &w, 1, memory_order_acquire, memory_order_relaxed))
				return true;
			continue;
		}
		e->next = (struct env *)(w & ~(uintptr_t)1);
		if (atomic_compare_exchange_weak_explicit(
			&r->word, &w, (uintptr_t)e | 1, memory_order_release, memory_order_relaxed))
			return false;
	}
}

/* The waiting take, for when a process cannot park (no memory for its
 * RETRY): until the holder gives it back. */
static void stack_take_wait(struct runstack *r)
{
	while (!stack_try(r))
		while (atomic_load_explicit(&r->word, memory_order_relaxed))
			cpu_relax();
}

/* Give r back and wake who parked on it: each RETRY is delivered from
 * here, so a parked process runs next on this scheduler (usually r's own).
 * acq_rel: the release publishes the stack's contents to the next holder;
 * the acquire sees the parked envelopes their parkers released. */
static void stack_give(struct sched *s, struct runstack *r)
{
	uintptr_t w = atomic_exchange_explicit(&r->word, 0, memory_order_acq_rel);
	struct env *e = (struct env *)(w & ~(uintptr_t)1);
	while (e) {
		struct env *n = e->next;
		kr_pid pid;
		memcpy(&pid, e->m.data, sizeof(pid));
		e->next = 0;
		kri_proc_deliver(s, pid, e); /* -ESRCH: it ended meanwhile */
		e = n;
	}
}

/* s took r's word: it keeps r (rheld) until kri_fiber_release gives it
 * back, so its next processes on r need no locked instruction. */
static void stack_took(struct sched *s, struct runstack *r)
{
	atomic_store_explicit(&r->holder, s, memory_order_relaxed);
	r->held_next = s->rheld;
	s->rheld = r;
}

/* Does s hold r? Relaxed: only s writes s there, and it reads its own. */
static inline bool stack_mine(const struct sched *s, struct runstack *r)
{
	return atomic_load_explicit(&r->holder, memory_order_relaxed) == s;
}

/* Take r for s: already its (no locked instruction), or free (one CAS, kept
 * until the next kri_fiber_release). */
static inline bool stack_take(struct sched *s, struct runstack *r)
{
	if (__builtin_expect(stack_mine(s, r), 1))
		return true;
	if (!stack_try(r))
		return false;
	stack_took(s, r);
	return true;
}

void kri_fiber_release(struct sched *s)
{
	struct runstack *r = s->rheld;
	s->rheld = 0;
	while (r) {
		/* Read before the give: then r is the next holder's. */
		struct runstack *n = r->held_next;
		/* Before the give, whose release orders it: a later holder's
		 * store of itself comes after this one. */
		atomic_store_explicit(&r->holder, NULL, memory_order_relaxed);
		stack_give(s, r);
		r = n;
	}
}

/* The copies of a copy-stack process's frames. Under ASan the range's
 * shadow is cleared first: its frames' red zones, or another process's,
 * are poisoned there, and the copy must read and write them all. */
static void stack_copy(void *to, const void *from, size_t n, const void *stack_part)
{
#ifdef FIBER_ASAN
	__asan_unpoison_memory_region(stack_part, n);
#else
	(void)stack_part;
#endif
	memcpy(to, from, n);
}

/* Lazy copy-out. A process that blocks leaves its frames on the run stack
 * (r->on) and only makes room for them (reserve); they are copied out
 * (flush) when another process needs the stack, so one that runs again
 * before any other on that stack pays no copy at all. The room is made at
 * the block, where a failure can still end the process; the flush, on
 * whichever thread takes the stack next, cannot fail. */
static bool grow(struct sched *s, struct fiber *f, size_t n)
{
	size_t cap = (n + 63) & ~(size_t)63;
	unsigned char *b = arena_alloc(&s->arena, cap);
	if (!b)
		return false;
	if (f->saved)
		arena_free(&s->arena, f->saved, f->saved_cap);
	f->saved = b;
	f->saved_cap = (uint32_t)cap;
	f->saved_len = (uint32_t)n;
	return true;
}

static inline bool reserve(struct sched *s, struct fiber *f)
{
	size_t n = (size_t)(f->hi - (unsigned char *)f->sp);
	if (__builtin_expect(n > f->saved_cap, 0))
		return grow(s, f, n);
	f->saved_len = (uint32_t)n;
	return true;
}

static void flush(struct fiber *g)
{
	stack_copy(g->saved, g->sp, g->saved_len, g->sp);
}

void kri_fiber_free(struct sched *s, void *state)
{
	struct fiber *f = state;
	struct runstack *r = f->home;
	/* Its frames may still be on its run stack: forget them, or wait for
	 * the copy a holder is making of them (run_fiber flushes them first
	 * thing) before f->saved goes. Never for a holder's whole span. The
	 * first load is a hint: only f's own runs set on to f, and the last
	 * one happened before this exit. Acquire on the second: the flush's
	 * copy into f->saved happened before its release store. */
	if (r && atomic_load_explicit(&r->on, memory_order_relaxed) == f) {
		/* This scheduler holds r (it ran f there last, or another
		 * process since whose take would have flushed f): forget f's
		 * frames; nobody else can be copying them. */
		if (stack_mine(s, r)) {
			atomic_store_explicit(&r->on, NULL, memory_order_relaxed);
			goto unbound;
		}
		/* Another scheduler holds it: wait until it flushes f (its next
		 * run on r) or gives r back (at the latest at its next
		 * kri_fiber_release: a few runs, or its idling). A take here
		 * is given back at once (not stack_took: not kept). What this
		 * scheduler keeps goes first: two exits waiting each for the
		 * other's kept stack would wait for ever. */
		if (s->rheld)
			kri_fiber_release(s);
		for (;;) {
			if (stack_try(r)) {
				if (atomic_load_explicit(&r->on, memory_order_relaxed) == f)
					atomic_store_explicit(&r->on, NULL, memory_order_relaxed);
				stack_give(s, r);
				break;
			}
			if (atomic_load_explicit(&r->on, memory_order_acquire) != f)
				break;
			cpu_relax();
		}
	}
unbound:
	if (f->saved)
		arena_free(&s->arena, f->saved, f->saved_cap);
	f->saved = 0;
	if (f->map)
		munmap(f->map, f->mapsz);
	f->map = 0;
#ifdef FIBER_TSAN
	if (f->tsan)
		__tsan_destroy_fiber(f->tsan);
	f->tsan = 0;
#endif
}

/* The message a receive took in place is done with (its next blocking
 * call, or its end): the run loop's steps after a message (run.c). */
static void inplace_done(struct sched *s, struct fiber *f)
{
	struct env *e = f->inplace;
	f->inplace = 0;
	f->ctx.defer = false;
	kri_proc_local_done(s, &f->ctx, e, f->inplace_seq0);
}

/* ---- switching ------------------------------------------------------------ */

static void fiber_entry(void *arg);

/* The switch, inline where the x86-64 compiler allows it: kri_ctx_switch's
 * instructions (switch.c), the same frame (the resume address, rbp rbx
 * r12-r15), so either side can be resumed by the other form; but no call.
 * Why: a call pushes an entry on the return stack that no ret on this side
 * pops (the other side's rets do, mispredicting), so each call level at a
 * switch costs a mispredicted ret on the other side: with the call, a
 * message cost four (the function's ret out of kr_receive, and tramp's,
 * kri_proc_run's and step()'s on the scheduler side), without it two.
 * It pushes on the current stack without stepping over the red zone (the
 * 128 bytes under rsp a function may use without moving rsp): GCC and
 * clang use it only in leaf functions, and every function this is inlined
 * into makes calls (tramp, kr_receive and its kin, fiber_finish). Stepping
 * over it cost 128 bytes more in each blocked process's saved frames
 * (spawn --stackful 1: 795 -> 985 bytes a process). The caller-saved
 * registers, vector ones included, are clobbered: the compiler keeps
 * nothing live in them across it. */
#if defined(__x86_64__)
static inline __attribute__((always_inline)) void ctx_switch(void **save, void *to, void *arg)
{
	register void *a __asm__("rdx") = arg;
	__asm__ volatile("leaq 1f(%%rip), %%rcx\n\t"
			 "pushq %%rcx\n\t"
			 "pushq %%rbp\n\t"
			 "pushq %%rbx\n\t"
			 "pushq %%r12\n\t"
			 "pushq %%r13\n\t"
			 "pushq %%r14\n\t"
			 "pushq %%r15\n\t"
			 "movq %%rsp, (%[save])\n\t"
			 "movq %[to], %%rsp\n\t"
			 "popq %%r15\n\t"
			 "popq %%r14\n\t"
			 "popq %%r13\n\t"
			 "popq %%r12\n\t"
			 "popq %%rbx\n\t"
			 "popq %%rbp\n\t"
			 "popq %%rcx\n\t"
			 "movq %%rdx, %%rax\n\t"
			 "movq %%rdx, %%rdi\n\t"
			 "jmpq *%%rcx\n\t"
			 "1:"
			 : "+r"(a)
			 : [save] "r"(save), [to] "r"(to)
			 : "rax", "rcx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0", "xmm1",
			   "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
			   "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
}
#else
static inline void ctx_switch(void **save, void *to, void *arg)
{
	kri_ctx_switch(save, to, arg);
}
#endif

/* Scheduler side: run f until it blocks or ends. */
static inline __attribute__((always_inline)) void switch_in(struct sched *s, struct fiber *f)
{
#ifdef FIBER_TSAN
	f->tsan_ret = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(f->tsan, 0);
#endif
#ifdef FIBER_ASAN
	void *fake = 0;
	__sanitizer_start_switch_fiber(&fake, f->lo, (size_t)(f->hi - f->lo));
#endif
	ctx_switch(&f->ret_sp, f->sp, f);
#ifdef FIBER_ASAN
	__sanitizer_finish_switch_fiber(fake, 0, 0);
#endif
}

/* Fiber side: back to the scheduler; returns when resumed. done: for good. */
static inline __attribute__((always_inline)) void switch_out(struct fiber *f, bool done)
{
#ifdef FIBER_ASAN
	__sanitizer_start_switch_fiber(done ? 0 : &f->fake, f->from_lo, f->from_size);
#endif
#ifdef FIBER_TSAN
	__tsan_switch_to_fiber(f->tsan_ret, 0);
#endif
	ctx_switch(&f->sp, f->ret_sp, f);
#ifdef FIBER_ASAN
	__sanitizer_finish_switch_fiber(f->fake, &f->from_lo, &f->from_size);
#endif
}

static void end_with(kr_ctx *c, uint32_t reason)
{
	c->exiting = true;
	c->reason = reason;
	c->plen = 0;
}

/* The fields of a context a function's run reads, and those it changes
 * that the run loop reads after the call (the rest are the run loop's and
 * stay as they are): not the whole structure, twice a switch. p and self
 * are the process's for life: set once, at its first run (resume). */
static inline void ctx_in(struct kr_ctx *f, const struct kr_ctx *c)
{
	f->s = c->s;
	f->cur = c->cur;
	f->bufs = c->bufs;
	f->sent = c->sent;
	f->exiting = c->exiting;
}

static inline void ctx_out(struct kr_ctx *c, const struct kr_ctx *f)
{
	c->bufs = f->bufs;
	c->sent = f->sent;
	if (f->exiting) {
		c->exiting = true;
		c->reason = f->reason;
		c->plen = f->plen;
		memcpy(c->payload, f->payload, f->plen);
	}
}

_Atomic uint64_t kri_fiber_parks;

/* Copy mode: take f's run stack (binding f to this scheduler's at its first
 * run). False: another thread holds it and f is parked (a RETRY comes when
 * it is given back), or f was ended (no run stack to be had): the message
 * is deferred, or drained by the exit. Never spins (but without memory for
 * the RETRY, where it waits for the holder). */
static bool take_home(kr_ctx *c, struct fiber *f)
{
	struct sched *s = c->s;
	struct runstack *r = f->home;
	if (!r) {
		r = runstack_of(s);
		if (!r) {
			f->st = F_DONE;
			kr_fault nf = {0};
			kr_exit_with(c, KR_FAULT, &nf, sizeof(nf));
			return false;
		}
		f->home = r;
		f->lo = r->lo;
		f->hi = r->hi;
	}
	if (stack_take(s, r))
		return true;
	struct {
		kr_pid pid;
		uint32_t seq;
	} note = {c->self, ++f->park_seq};
	struct env *e = env_new(&s->arena, TAG_FIBER_RETRY, &note, sizeof(note));
	if (!e) {
		/* Keeping none while it waits (see fiber_free). */
		if (s->rheld)
			kri_fiber_release(s);
		stack_take_wait(r);
		stack_took(s, r);
		return true;
	}
	if (stack_take_or_park(r, e)) {
		env_free(&s->arena, e);
		stack_took(s, r);
		return true;
	}
	f->unpark = f->st;
	f->st = F_PARK;
	atomic_fetch_add_explicit(&kri_fiber_parks, 1, memory_order_relaxed);
	return false;
}

static uint32_t retry_seq(const kr_msg *m)
{
	uint32_t seq;
	memcpy(&seq, m->data + sizeof(kr_pid), sizeof(seq));
	return seq;
}

/* Run f (on the scheduler c belongs to) until it blocks or ends; in copy
 * mode f holds its run stack (take_home). Inlined into tramp, as wait_in
 * into its callers: after a switch the return stack holds the other side's
 * return addresses, so each ret on the way out mispredicts; fewer frames
 * between the switch and the run loop (or the function) are fewer of them. */
static inline __attribute__((always_inline)) void run_fiber(kr_ctx *c, struct fiber *f)
{
	struct sched *s = c->s;
	struct runstack *r = f->home;
	if (r) {
		struct fiber *g = atomic_load_explicit(&r->on, memory_order_relaxed);
		if (g != f) {
			if (g)
				flush(g);
			if (f->saved_len)
				stack_copy(f->hi - f->saved_len, f->saved, f->saved_len,
					   f->hi - f->saved_len);
		}
		/* Release: an exit of g waits for this (fiber_free). */
		atomic_store_explicit(&r->on, NULL, memory_order_release);
	}
	if (f->st == F_NEW) {
		f->sp = kri_ctx_make(f->hi, fiber_entry);
		f->st = F_RUN;
		f->ctx.p = c->p;
		f->ctx.self = c->self;
#ifdef FIBER_TSAN
		f->tsan = __tsan_create_fiber(0);
#endif
	}
	ctx_in(&f->ctx, c);
	f->resumes++;
	s->fiber = f;
	s->fiber_lo = (uintptr_t)f->lo;
	switch_in(s, f);
	s->fiber = 0;
	s->fiber_lo = 0;
	ctx_out(c, &f->ctx);
	if (r) {
		if (f->st != F_DONE) {
			if (reserve(s, f)) {
				atomic_store_explicit(&r->on, f, memory_order_relaxed);
			} else {
				/* Its frames cannot be kept: it cannot go on. */
				f->st = F_DONE;
				kr_fault nf = {0};
				kr_exit_with(c, KR_FAULT, &nf, sizeof(nf));
			}
		}
		/* r stays this scheduler's (rheld): given back in a batch. */
	}
}

static __attribute__((noreturn)) void fiber_finish(struct fiber *f)
{
	f->st = F_DONE;
	switch_out(f, true);
	abort(); /* never resumed */
}

static void fiber_entry(void *arg)
{
	struct fiber *f = arg;
#ifdef FIBER_ASAN
	__sanitizer_finish_switch_fiber(0, &f->from_lo, &f->from_size);
#endif
	f->fn(&f->ctx, f->arg);
	if (f->inplace) {
		/* Its last receive's message, taken in place. */
		struct sched *s = api_enter_ctx(&f->ctx);
		inplace_done(s, f);
		api_leave(s);
	}
	if (!f->ctx.exiting)
		end_with(&f->ctx, KR_NORMAL);
	fiber_finish(f);
}

/* A fault or kill jumps from the fiber's stack to the scheduler's (the
 * signal handler, fault.c): the sanitizers are told it has left it. */
void kri_fiber_escape(struct sched *s)
{
	struct fiber *f = s->fiber;
#ifdef FIBER_TSAN
	__tsan_switch_to_fiber(f->tsan_ret, 0);
#endif
#ifdef FIBER_ASAN
	__sanitizer_start_switch_fiber(0, f->from_lo, f->from_size);
#endif
	(void)f;
}

/* After that jump, before the process exits (fault.c): hand its
 * context's buffers (and a copy a kr_io_* call held) to the scheduler's
 * to free. Its run stack stays this scheduler's (rheld, taken by
 * take_or_defer) until the next kri_fiber_release; nothing of f is left
 * on it (run_fiber cleared on). */
void kri_fiber_recover(struct sched *s)
{
	struct fiber *f = s->fiber;
#ifdef FIBER_ASAN
	__sanitizer_finish_switch_fiber(0, 0, 0);
#endif
	s->fiber = 0;
	s->fiber_lo = 0;
	f->st = F_DONE;
	s->ctx.bufs = f->ctx.bufs;
	f->ctx.bufs = 0;
	s->ctx.held = f->ctx.held; /* a kr_io_* write's copy the fault cut short */
	f->ctx.held = 0;
	if (f->inplace) /* a message taken in place (its match faulted, or after) */
		inplace_done(s, f);
}

/* ---- the trampoline --------------------------------------------------------- */

/* c consumes a message that leaves the receive waiting: keep an armed
 * receive timeout armed (run.c's rto_after disarms one that a consumed
 * message did not re-arm). */
static void keep_waiting(kr_ctx *c)
{
	struct side *side = c->p->side;
	if (side && side->rto)
		side->rto_seq = rto_next(side);
}

/* Take f's run stack, or defer the message c is handling (f parked on
 * it; or ended, the message then drained by the exit): false then. */
static inline bool take_or_defer(kr_ctx *c, struct fiber *f)
{
	if (f->map || (f->home && stack_take(c->s, f->home)))
		return true;
	if (take_home(c, f))
		return true;
	if (f->st != F_DONE)
		kr_defer(c);
	return false;
}

static inline __attribute__((always_inline)) void hand(kr_ctx *c, struct fiber *f, const kr_msg *m,
						       int rc)
{
	if (!take_or_defer(c, f))
		return;
	f->got = m;
	f->rc = rc;
	run_fiber(c, f);
}

/* The event of a blocking I/O call that gave up (its ref is a wait's but
 * not the one under way): dropped, as a late reply; a file it opened is
 * closed (nobody has its handle). */
static bool io_late(kr_ctx *c, const struct fiber *f, const kr_msg *m)
{
	kr_io_event ev;
	if (m->len < sizeof(ev))
		return false;
	memcpy(&ev, m->data, sizeof(ev));
	if (ev.op == KR_IO_ACCEPT || ev.op == KR_IO_RECV || ev.op == KR_IO_SEND ||
	    ev.op == KR_IO_WRITABLE || !(ev.ref & KR_IO_WAIT_REF) || ev.ref == f->io.ref)
		return false;
	if (ev.op == KR_IO_OPEN && ev.res == 0)
		kr_io_close(c, ev.handle);
	return true;
}

/* What a blocked receive makes of m: J_TAKE, it returns m; J_TIMEOUT, it
 * returns -ETIMEDOUT (its poll's mark, or its armed timeout); J_REPLY, m is
 * the answer to its call (handed without its header); J_DEFER, refused,
 * kept in order for a later receive; J_DROP, consumed, the receive waits
 * on. One judge for both ways a message reaches a receive: tramp, from the
 * run loop, and the in-place take (wait_in). */
enum { J_TAKE, J_TIMEOUT, J_REPLY, J_DEFER, J_DROP };

static inline __attribute__((always_inline)) int judge(kr_ctx *c, struct fiber *f, const kr_msg *m)
{
	uint32_t seq;
	kr_call_hdr h;
	switch (m->tag) {
	case TAG_FIBER_START:
	case TAG_FIBER_RETRY: /* a late one: it is not parked now */
		return J_DROP;
	case TAG_FIBER_POLL:
		memcpy(&seq, m->data, sizeof(seq));
		return seq == f->seq && !f->timed ? J_TIMEOUT : J_DROP;
	case KR_TAG_TIMEOUT:
		/* run.c let it through: it is the armed one, the receive's. */
		return f->timed ? J_TIMEOUT : J_DROP;
	case KR_TAG_REPLY:
		/* Only the answer to the call under way; a late answer to a
		 * call that gave up is dropped. */
		memcpy(&h, m->data, sizeof(h));
		return f->call_ref && h.ref == f->call_ref ? J_REPLY : J_DROP;
	case KR_TAG_IO:
		if (io_late(c, f, m))
			return J_DROP;
		/* fall through */
	default:
		return f->match && !f->match(m, f->marg) ? J_DEFER : J_TAKE;
	}
}

/* The caller sees the replied bytes alone. Ours to change: the envelope
 * is this process's. */
static void strip_reply(const kr_msg *m)
{
	kr_msg *w = (kr_msg *)m;
	w->len -= (uint32_t)sizeof(kr_call_hdr);
	memmove(w->data, w->data + sizeof(kr_call_hdr), w->len);
}

static void tramp(kr_ctx *c, void *state, const kr_msg *m)
{
	struct fiber *f = state;
	/* One test on the way of a message to a blocked process: the rest is
	 * the slow path. */
	if (__builtin_expect(f->st != F_WAIT, 0)) {
		if (f->st == F_PARK) {
			/* Waiting for its run stack: everything waits, in order,
			 * until its RETRY (the stack was given back); then what
			 * waited is looked at again, first. */
			if (m->tag == TAG_FIBER_RETRY && retry_seq(m) == f->park_seq) {
				f->st = f->unpark;
				keep_waiting(c);
				kr_undefer(c);
			} else {
				kr_defer(c);
			}
			return;
		}
		if (f->st != F_NEW)
			return; /* ended: what comes is drained by the exit */
		/* The first message of any kind starts it (a foreign spawn's
		 * start can come after another sender's message). */
		if (!take_or_defer(c, f))
			return;
		/* m is judged after the run: no receive there takes anything
		 * queued behind it in place. */
		f->starting = 1;
		run_fiber(c, f);
		f->starting = 0;
		if (f->st != F_WAIT)
			return;
	}
	switch (judge(c, f, m)) {
	case J_TAKE:
		hand(c, f, m, 0);
		return;
	case J_TIMEOUT:
		hand(c, f, 0, -ETIMEDOUT);
		return;
	case J_REPLY:
		if (!take_or_defer(c, f))
			return; /* handed whole when it comes back */
		strip_reply(m);
		f->got = m;
		f->rc = 0;
		run_fiber(c, f);
		return;
	case J_DEFER:
		kr_defer(c);
		return;
	default:
		keep_waiting(c);
		return;
	}
}

/* ---- spawning ------------------------------------------------------------- */

static int fiber_new(kr_fn fn, const void *arg, size_t len, const kr_fn_opts *o, struct fiber **out,
		     size_t *size)
{
	if (!fn || (len && !arg) || (o && o->stack > FN_STACK_MAX))
		return -EINVAL;
	*size = sizeof(struct fiber) + len;
	struct fiber *f = calloc(1, *size);
	if (!f)
		return -ENOMEM;
	f->fn = fn;
	f->arglen = len;
	if (len)
		memcpy(f->arg, arg, len);
	if (o && o->stack) {
		size_t want = o->stack < OWN_STACK_MIN ? OWN_STACK_MIN : o->stack;
		f->map = stack_map(want, &f->mapsz);
		if (!f->map) {
			free(f);
			return -ENOMEM;
		}
		f->lo = (unsigned char *)f->map + page_size();
		f->hi = (unsigned char *)f->map + f->mapsz;
	}
	*out = f;
	return 0;
}

/* Mark the new process stackful: nobody else has its pid yet, and the
 * start message's push publishes the flag with the rest. */
static void mark(struct kr_runtime *rt, kr_pid pid)
{
	struct proc *p = slot_at(&rt->procs, pid_idx(pid));
	p->flags |= P_FIBER;
}

static int spawn_fn_in(kr_ctx *ctx, kr_fn fn, const void *arg, size_t len, const kr_fn_opts *o,
		       bool link, kr_pid *out)
{
	struct sched *s = ctx->s;
	struct fiber *f;
	size_t size;
	if (!out)
		return -EINVAL;
	int rc = fiber_new(fn, arg, len, o, &f, &size);
	if (rc)
		return rc;
	struct env *e = env_new(&s->arena, TAG_FIBER_START, 0, 0);
	kr_pid pid = 0;
	if (!e)
		rc = -ENOMEM;
	else if (link || (o && o->link))
		rc = kr_spawn_link(ctx, tramp, f, size, &pid);
	else
		rc = kr_spawn(ctx, tramp, f, size, &pid);
	if (rc) {
		if (e)
			env_free(&s->arena, e);
		if (f->map)
			munmap(f->map, f->mapsz);
		free(f);
		return rc;
	}
	free(f); /* copied into the process's state, mapping and all */
	mark(s->rt, pid);
	/* It was just spawned and nobody else knows it: the push succeeds
	 * and the start is its first message. */
	kri_proc_deliver(s, pid, e);
	*out = pid;
	return 0;
}

int kr_spawn_fn_opts(kr_ctx *ctx, kr_fn fn, const void *arg, size_t len, const kr_fn_opts *opts,
		     kr_pid *out)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = spawn_fn_in(ctx, fn, arg, len, opts, false, out);
	api_leave(s);
	return rc;
}

int kr_spawn_fn(kr_ctx *ctx, kr_fn fn, const void *arg, size_t len, kr_pid *out)
{
	return kr_spawn_fn_opts(ctx, fn, arg, len, 0, out);
}

int kr_spawn_fn_link(kr_ctx *ctx, kr_fn fn, const void *arg, size_t len, kr_pid *out)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = spawn_fn_in(ctx, fn, arg, len, 0, true, out);
	api_leave(s);
	return rc;
}

int kr_rt_spawn_fn_opts(kr_runtime *rt, kr_fn fn, const void *arg, size_t len,
			const kr_fn_opts *opts, kr_pid *out)
{
	struct fiber *f;
	size_t size;
	if (!rt || !out || (opts && opts->link))
		return -EINVAL;
	int rc = fiber_new(fn, arg, len, opts, &f, &size);
	if (rc)
		return rc;
	struct env *e = env_new(0, TAG_FIBER_START, 0, 0);
	kr_pid pid = 0;
	rc = e ? kr_rt_spawn(rt, tramp, f, size, &pid) : -ENOMEM;
	if (rc) {
		if (e)
			env_free(0, e);
		if (f->map)
			munmap(f->map, f->mapsz);
		free(f);
		return rc;
	}
	free(f);
	mark(rt, pid);
	struct sched *s = kri_api_sched();
	api_enter(s);
	rc = kri_inject(rt, pid, e);
	api_leave(s);
	if (rc) {
		/* It would never run: end it. */
		kr_rt_exit(rt, pid, KR_KILL);
		return rc;
	}
	*out = pid;
	return 0;
}

int kr_rt_spawn_fn(kr_runtime *rt, kr_fn fn, const void *arg, size_t len, kr_pid *out)
{
	return kr_rt_spawn_fn_opts(rt, fn, arg, len, 0, out);
}

/* ---- blocking calls ----------------------------------------------------------- */

/* The running function process whose context ctx is, or NULL. */
static struct fiber *fiber_of(kr_ctx *ctx)
{
	struct fiber *f = ctx->s->fiber;
	return f && ctx == &f->ctx ? f : 0;
}

uint64_t kri_fiber_resumes(kr_ctx *ctx)
{
	struct fiber *f = ctx ? fiber_of(ctx) : 0;
	return f ? f->resumes : 0;
}

struct kri_io_wait *kri_fiber_io(kr_ctx *ctx)
{
	struct fiber *f = ctx ? fiber_of(ctx) : 0;
	return f ? &f->io : 0;
}

/* A receive whose match is set: take a message already queued (p->local:
 * what the run loop took from the mailbox with the message that resumed
 * the process, and what was deferred) where the process runs, as tramp
 * would have handed it, with no switch out and back. Each message looked
 * at is charged to the run's budget as a send is (kr_ctx.sent, which the
 * run loop adds after the call), and none is looked at once this call's
 * share is spent: then the process switches out and the run loop, its
 * budget spent, moves on to others (a run handles at most twice the
 * budget: the run loop's count before the call is not known here). Not
 * from the mailbox word: its signals are the run loop's to handle. True:
 * taken (f->got, f->rc, and f->inplace holds it). */
static bool take_in_place(struct sched *s, struct fiber *f)
{
	kr_ctx *ctx = &f->ctx;
	struct proc *p = ctx->p;
	unsigned budget = s->rt->cfg.batch;
	uint32_t seq0;
	struct env *e;
	while (p->local && ctx->sent + 1 < budget && (e = kri_proc_local_next(s, p, &seq0))) {
		ctx->sent++;
		/* Held while judged: a fault in the match frees it (recover). */
		f->inplace = e;
		f->inplace_seq0 = seq0;
		switch (judge(ctx, f, &e->m)) {
		case J_TAKE:
			f->got = &e->m;
			f->rc = 0;
			return true;
		case J_TIMEOUT:
			f->got = 0;
			f->rc = -ETIMEDOUT;
			return true;
		case J_REPLY:
			strip_reply(&e->m);
			f->got = &e->m;
			f->rc = 0;
			return true;
		case J_DEFER:
			f->inplace = 0;
			ctx->defer = true;
			kri_proc_local_done(s, ctx, e, seq0);
			ctx->defer = false;
			break;
		default:
			inplace_done(s, f);
			break;
		}
	}
	return false;
}

/* Wait for a message match takes; the caller holds api_enter(*sp), which
 * is let go while blocked and taken again on the scheduler that resumes
 * it (*sp is then that one). */
static inline __attribute__((always_inline)) int wait_in(struct sched **sp, struct fiber *f,
							 kr_match match, void *arg, uint32_t ms,
							 const kr_msg **out)
{
	kr_ctx *ctx = &f->ctx;
	struct sched *s = *sp;
	/* The last receive's message, if taken in place, is done with. */
	if (f->inplace)
		inplace_done(s, f);
	if (ctx->exiting) {
		/* kr_exit was called: the process ends here. */
		api_leave(s);
		fiber_finish(f);
	}
	if (!ctx->p->side && !kri_proc_side(s, ctx->p))
		return -ENOMEM; /* deferring refused messages needs it */
	struct side *side = ctx->p->side;
	f->seq++;
	if (ms == KR_INFINITY || ms == 0) {
		if (side->rto) {
			int rc = kr_receive_timeout(ctx, 0); /* disarm a previous one */
			if (rc)
				return rc;
		}
		f->timed = 0;
	} else {
		f->timed = 1; /* armed below, unless a message is taken in place */
	}
	f->match = match;
	f->marg = arg;
	f->got = 0;
	f->rc = 0;
	/* Messages refused before are looked at again, first (run.c's
	 * kr_undefer, inline: a call and api_enter a receive saved). */
	if (side->dhead) {
		side->dtail->next = ctx->p->local;
		ctx->p->local = side->dhead;
		side->dhead = side->dtail = 0;
	}
	/* Queued already: taken here. Not with a receive timeout armed (the
	 * process armed one itself: the run loop settles it) nor in the
	 * first run (the message that started the process is judged after
	 * it, and comes before anything queued). */
	if (__builtin_expect(ctx->p->local != 0, 0) && !side->rto && !f->starting &&
	    take_in_place(s, f))
		goto got;
	if (ms == 0) {
		/* Behind everything the mailbox holds now. */
		struct env *e = env_new(&s->arena, TAG_FIBER_POLL, &f->seq, sizeof(f->seq));
		if (!e)
			return -ENOMEM;
		kri_proc_deliver(s, ctx->self, e);
	} else if (f->timed) {
		int rc = kr_receive_timeout(ctx, ms);
		if (rc)
			return rc;
	}
	f->st = F_WAIT;
	api_leave(s);
	switch_out(f, false);
	*sp = s = ctx->s;
	api_enter(s);
	f->st = F_RUN;
got:
	f->match = 0;
	if (f->rc == 0)
		*out = f->got;
	return f->rc;
}

int kr_receive(kr_ctx *ctx, kr_match match, void *arg, uint32_t timeout_ms, const kr_msg **msg)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	struct fiber *f = fiber_of(ctx);
	int rc = !f ? -EPERM : !msg ? -EINVAL : wait_in(&s, f, match, arg, timeout_ms, msg);
	api_leave(s);
	return rc;
}

static int refuse(const kr_msg *m, void *arg)
{
	(void)m;
	(void)arg;
	return 0;
}

int kr_sleep(kr_ctx *ctx, uint32_t ms)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	struct fiber *f = fiber_of(ctx);
	const kr_msg *m;
	int rc = f ? wait_in(&s, f, refuse, 0, ms, &m) : -EPERM;
	api_leave(s);
	return rc == -ETIMEDOUT ? 0 : rc;
}

/* A call's receive: the callee's DOWN (its reply is taken by tramp()). */
static int call_down(const kr_msg *m, void *arg)
{
	const struct fiber *f = arg;
	kr_exit_info x;
	if (m->tag != KR_TAG_DOWN || m->len < offsetof(kr_exit_info, payload))
		return 0;
	memcpy(&x, m->data, offsetof(kr_exit_info, payload));
	return x.ref == f->call_ref;
}

/* kr_call's request: a kr_call_hdr, then the request bytes. */
struct plain_req {
	uint32_t tag;
	const void *req;
	size_t len;
};

static int plain_send(kr_ctx *ctx, kr_pid pid, uint64_t ref, void *arg)
{
	const struct plain_req *q = arg;
	unsigned char *b = kr_msg_buf(ctx, sizeof(kr_call_hdr) + q->len);
	if (!b)
		return -ENOMEM;
	kr_call_hdr h = {ctx->self, ref};
	memcpy(b, &h, sizeof(h));
	if (q->len)
		memcpy(b + sizeof(h), q->req, q->len);
	return kr_send_buf(ctx, pid, q->tag, b); /* a buffer not sent goes at the call's end */
}

/* Monitor, send (send(ctx, to, ref, arg): the request, carrying the ref),
 * wait for the KR_TAG_REPLY that names ref or the DOWN; the caller holds
 * api_enter(*sp). */
static int call_in(struct sched **sp, struct fiber *f, kr_pid pid, kr_pid watch,
		   int (*send)(kr_ctx *, kr_pid, uint64_t, void *), void *arg, uint32_t ms,
		   const kr_msg **reply)
{
	kr_ctx *ctx = &f->ctx;
	uint64_t ref;
	int rc = kr_monitor(ctx, watch, &ref);
	if (rc)
		return rc;
	rc = send(ctx, pid, ref, arg);
	if (rc) {
		kr_demonitor(ctx, ref);
		return rc;
	}
	f->call_ref = ref;
	const kr_msg *m = 0;
	rc = wait_in(sp, f, call_down, f, ms, &m);
	f->call_ref = 0;
	/* m is set when rc is 0; the analyzer, which does not see the
	 * inline switch's memory clobber, cannot tell. */
	if (rc == 0 && m && m->tag == KR_TAG_DOWN) {
		*reply = m; /* the monitor fired: nothing to remove */
		return -ESRCH;
	}
	/* Answered or given up: no DOWN for it will come, even one queued. */
	kr_demonitor(ctx, ref);
	if (rc == 0)
		*reply = m;
	return rc;
}

int kr_call(kr_ctx *ctx, kr_pid pid, uint32_t tag, const void *req, size_t len, uint32_t timeout_ms,
	    const kr_msg **reply)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	struct fiber *f = fiber_of(ctx);
	struct plain_req q = {tag, req, len};
	int rc;
	if (!f)
		rc = -EPERM;
	else if (!reply || (len && !req) || tag >= KR_TAG_SYSTEM)
		rc = -EINVAL;
	else if (len > s->rt->cfg.max_msg - sizeof(kr_call_hdr))
		rc = -EMSGSIZE;
	else
		rc = call_in(&s, f, pid, pid, plain_send, &q, timeout_ms, reply);
	api_leave(s);
	return rc;
}

int kri_fiber_call(kr_ctx *ctx, kr_pid pid, kr_pid watch,
		   int (*send)(kr_ctx *, kr_pid, uint64_t, void *), void *arg, uint32_t timeout_ms,
		   const kr_msg **reply)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	struct fiber *f = fiber_of(ctx);
	int rc = !f ? -EPERM : call_in(&s, f, pid, watch, send, arg, timeout_ms, reply);
	api_leave(s);
	return rc;
}

static int reply_in(kr_ctx *ctx, const kr_msg *req, const void *data, size_t len)
{
	struct sched *s = ctx->s;
	kr_call_hdr h;
	if (!req || req->len < sizeof(h) || (len && !data))
		return -EINVAL;
	if (len > s->rt->cfg.max_msg - sizeof(h))
		return -EMSGSIZE;
	if (kri_ovl_over(s->rt, s))
		return -ENOMEM;
	memcpy(&h, req->data, sizeof(h));
	struct env *e = arena_alloc(&s->arena, env_size((uint32_t)(sizeof(h) + len)));
	if (!e)
		return -ENOMEM;
	e->m.tag = KR_TAG_REPLY;
	e->m.len = (uint32_t)(sizeof(h) + len);
	memcpy(e->m.data, &h, sizeof(h));
	if (len)
		memcpy(e->m.data + sizeof(h), data, len);
	/* After what this call sent the caller before (deliver flushes the
	 * outbox). A caller gone or never issued: dropped, as the answer to
	 * a caller that gave up. */
	int rc = kri_proc_deliver(s, h.from, e);
	return rc < 0 && rc != -ESRCH ? rc : 0;
}

int kr_reply(kr_ctx *ctx, const kr_msg *req, const void *data, size_t len)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = reply_in(ctx, req, data, len);
	api_leave(s);
	return rc;
}
