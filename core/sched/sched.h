/* sched: the runtime and its schedulers, the structures every part of the
 * core hangs its per-scheduler state on, and the scheduler's own calls.
 * Not part of the public API. */
#ifndef KR_SCHED_H
#define KR_SCHED_H

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc/arena.h"
#include "alloc/slots.h"
#include "core/sched/balance.h"
#include "core/sched/cpuwant.h"
#include "core/sched/epoch.h"
#include "core/sched/park.h"
#include "core/proc/proc.h"
#include "core/sched/runq.h"
#include "core/timer/wheel.h"
#include "io/handle.h"
#include "io/ring.h"
#include "krill.h"
#include "krill_stats.h"
#include "topology/topo.h"

/* Per-scheduler counters: written by the owner only, with relaxed atomic
 * stores (plain moves on x86), read by anyone; published to the stats
 * segment by stats_publish. */
struct sched_stats {
	_Atomic uint64_t spawned, exited, crashed, killed, runs, msgs, sleeps, wakeups, restarts;
	_Atomic uint64_t steals[3]; /* by enum topo_level */
	_Atomic uint64_t idle_ns;
	/* Scheduling costs, none on a plain send's path (kr_stats_sched). */
	_Atomic uint64_t stolen, woke, lone_fails;
	_Atomic uint64_t given;  /* processes handed back by compaction */
	_Atomic uint64_t stayed; /* woken processes handed to where they ran (kri_sched_woken) */
};

/* A store-load barrier (the Dekker pattern in sleep/wake and the epoch
 * announcement). ThreadSanitizer does not model fences, so its build uses
 * a seq_cst RMW on one word, which it does understand; production keeps
 * the fence, which costs no shared cache line. */
#if defined(__SANITIZE_THREAD__)
extern _Atomic unsigned kri_tsan_fence_word;
static inline void full_fence(void)
{
	atomic_fetch_add_explicit(&kri_tsan_fence_word, 0, memory_order_seq_cst);
}
#else
static inline void full_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}
#endif

static inline void stat_add(_Atomic uint64_t *c, uint64_t by)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
			      memory_order_relaxed);
}

/* A process that ran a whole batch, as its owner measured it then. */
#define TOP_CAND 16
struct top_cand {
	kr_pid pid;
	uint64_t handled; /* in such runs since the last publication */
	uint64_t mailbox, memory;
};

/* Where a thief last saw a victim's backlog start (sched.c, "Stealing only
 * what waits"): the victim's ring tail and overflow end then, and the time
 * of that look. */
struct sched_look {
	uint32_t tail; /* the ring's tail then */
	uint64_t oend; /* the overflow's oout once all it held then is out */
	uint64_t at;
};

struct sched {
	struct kr_runtime *rt;
	unsigned id;
	struct kr_ctx ctx;
	struct outbox ob;
	struct arena arena;
	struct slot_cache pslots, tslots;
	struct proc *runnext;
	unsigned streak; /* runs taken from runnext in a row */
	unsigned ticks;
	uint64_t rng;
	uint64_t refs;    /* monitor references made here */
	int64_t mem_seen; /* arena.bytes at the last ceiling check */
	bool spinning;
	/* Backlog that outlasts the cost of moving it (sched.c, "Stealing
	 * only what waits"). looks[v]: scheduler v's queue tail when this
	 * one last saw its backlog drained, and when (ns, or a count of
	 * looks in deterministic mode). nlooks: the time of the current
	 * look. Owner only. */
	struct sched_look *looks;
	uint64_t nlooks;
	/* The wait a backlog must outlast before this one takes it, and the
	 * steal being judged: processes taken, messages handled, exits,
	 * runs and refused sends counted then. */
	uint64_t pwait, ytaken, ymsgs, yexited, yruns, yrefused;
	/* Sends refused here by a full mailbox (kr_mailbox_limit), counted
	 * off the send path in its -EAGAIN branch (send.c): judge() asks
	 * whether a steal's processes were held back by a consumer. */
	uint64_t refused;
	/* The whole runtime's rate, to judge whether spreading paid: yat,
	 * yall, yown: when the steal being judged was made (or its last
	 * window began) and every scheduler's messages handled by then, and
	 * this one's; solo: the runtime's rate (messages per ms, averaged)
	 * while this one slept and the others ended enough runs to count
	 * (balance.h's bal_solo_counts), 0 until measured (never in
	 * deterministic mode). */
	uint64_t yat, yall, yown, solo;
	/* Compaction (sched.c): the scheduler the judged steal took from;
	 * the steps since its last window (deterministic mode); windows in a
	 * row that did not pay; the longest
	 * wait, in units of the shortest, that the next give-back sets (it
	 * grows with each one in a row); and whether this one gave its work
	 * back and is to sleep that long. Owner only. */
	unsigned yfrom, ysteps, ystrikes, cgrow;
	bool compacting;
	/* The window busy_judge judges (balance.h's bal_streak, bal_blind):
	 * opened at the first steal since this one last slept and kept
	 * across the steals that follow (wstreak), with when (wat), every
	 * scheduler's messages and this one's by then (wall, wown). Owner
	 * only. */
	uint64_t wat, wall, wown;
	struct bal_streak wstreak;
	/* The spin before a sleep with I/O in flight (ns), learnt from how
	 * soon sleeps end (park_spin_learn), and whether other threads want
	 * its CPU (sched.c, io_spin_window). Owner only. */
	uint64_t iospin;
	struct cpuwant want;
	/* Futile wake-ups in a row (balance.h's bal_futile), the runs
	 * counted when it last woke, and whether that sleep was timed.
	 * Owner only. */
	unsigned futile;
	uint64_t runs_woke;
	bool slept_timed;
	bool young;        /* the last look saw backlog too young to take */
	uint64_t young_at; /* when a look last saw some (ns; deterministic: looks) */
	struct limbo limbo;
	struct wheel wheel;
	struct balance bal; /* whom to steal from, nearest first */
	struct topo_place place;
	pthread_t thread;
	struct sched_stats st;
	/* Fault containment (fault.c). */
	_Atomic int in_beh; /* a behaviour call is under way (read by the handler) */
	/* Runaway detection (watchdog.c): calls started, the pid running,
	 * whether the watchdog found this scheduler stuck in one call, and
	 * which pid a KR_KILL wants out of it. */
	_Atomic uint64_t calls;
	_Atomic kr_pid running;
	/* calls + 1 when a sink (balance.h's bal_sink) last used a whole
	 * budget here, 0 never, and which process it was: a thief does not
	 * take it when it is all that is queued (sched.c's queue_len). Beside
	 * calls, which a thief reads with them. Written by the owner,
	 * relaxed: hints. */
	_Atomic uint64_t sink_calls;
	_Atomic(struct proc *) sink;
	/* calls + 1 when a hub last stayed here (sched.c's stay), 0 never:
	 * thieves give its backlog a mark's wait (balance.h's
	 * bal_marked_wait). Written by the waker, relaxed: a hint. */
	_Atomic uint64_t stay_calls;
	_Atomic int stuck;
	_Atomic kr_pid kill_req;
	int killed; /* the jump back was a kill, not a fault */
	/* Depth of kr_* calls under way on this thread, and a kill that
	 * arrived during one: it waits for the way out (api_leave). */
	volatile sig_atomic_t in_rt, kill_pending;
	sigjmp_buf jb;
	sigjmp_buf *jbp; /* where a fault jumps: jb, or the driver's */
	kr_fault fault;
	uintptr_t stack_lo;
	/* Stackful processes (core/fiber): the one running now, its stack's
	 * low end (for the fault handler's overflow test), and this
	 * scheduler's shared run stacks, made at their first use. Owner only. */
	struct fiber *fiber;
	uintptr_t fiber_lo;
	struct runstacks *rstack;
	/* The run stacks (any scheduler's) this one still holds after the
	 * process that ran on it blocked: given back in a batch (loop(),
	 * kri_fiber_release), not after each message. Owner only. */
	struct runstack *rheld;
	void *altstack;
	unsigned loops;
	struct kr_stats_sched *pub; /* its block in the stats segment, or NULL */
	struct kr_stats_top *tpub;  /* its top-processes block, or NULL */
	uint64_t pub_ns;            /* last runtime-wide publication (scheduler 0) */
	/* The busiest processes since the last top publication (info.c,
	 * kri_top_note), published by stats_publish. Owner only. */
	struct top_cand top[TOP_CAND];
	unsigned ntop;
	uint64_t top_ns; /* the last top publication */
	/* Shared with other threads: apart from the owner's lines. */
	alignas(64) struct runq q;
	alignas(64) _Atomic uint64_t epoch;
	/* The last slots_ask it answered (epoch.c): written by the owner,
	 * read by a spawn waiting for its slots. */
	_Atomic uint64_t slots_given;
	alignas(64) struct park park;
	/* Its timers other schedulers cancelled, for it to free (timer.c). */
	alignas(64) _Atomic(void *) tdead;
	/* Its io_uring: submitted to and reaped by the owner only; other
	 * threads touch only its wake word (ring_wake). */
	alignas(64) struct ring ring;
};

struct inj; /* a message from a foreign thread, waiting for a scheduler */

/* What thieves of other nodes want to know of a NUMA node (sched.c's
 * queue_len, balance.h's bal_far_wait and bal_marked_wait): how many of
 * its schedulers spin awake without work, and which one (id + 1, 0: none)
 * last ran a sink. Written by the node's own schedulers, relaxed: hints.
 * A line each, as they are written from the node and read from afar. */
struct sched_node {
	alignas(64) _Atomic unsigned spinning;
	_Atomic unsigned sink_by;
};

struct kri_remote;

struct kr_runtime {
	kr_config cfg;
	struct topo *topo;
	unsigned n;
	struct sched *s;
	struct slots procs;
	struct slots timers;
	/* Foreign spawns and shutdown take slots through this cache. */
	pthread_mutex_t flock;
	struct slot_cache fslots;
	_Atomic int64_t fspawned;
	/* Bytes of envelopes foreign threads queued (kr_rt_send, the inject
	 * queue): allocated with no arena, freed by the schedulers that take
	 * them (which count them off their own arenas' figures). */
	_Atomic int64_t fenv;
	/* Some process registered an exit hook (kr_on_exit): kr_runtime_free
	 * contains faults while it ends those left alive. Relaxed: read after
	 * the schedulers were joined. */
	_Atomic int hooked;
	struct registry *reg;
	struct htab *io; /* open sockets and files (io/handle.h) */

	/* Inject queue: foreign threads' messages, delivered by one scheduler
	 * at a time so that one thread's messages keep their order. */
	alignas(64) pthread_mutex_t ilock;
	struct inj *ihead, *itail;
	_Atomic int ipending;
	_Atomic int idelivering;

	/* Sleep and wake-up (sched.c). */
	alignas(64) _Atomic uint64_t gepoch;
	/* Requests to hand cached process slots back (epoch.c): bumped by a
	 * spawn that found the table full, read at quiescent points. */
	_Atomic uint64_t slots_ask;
	alignas(64) _Atomic unsigned nidle;
	_Atomic unsigned nspinning;
	/* Schedulers asleep with a timeout because they saw backlog too
	 * young to take (sched.c, "Stealing only what waits"): they look
	 * again by themselves, so owners need not wake them. Relaxed RMW by
	 * the sleeper around its sleep; read relaxed, a hint. */
	_Atomic unsigned ntimed;
	/* Until when (ns) no scheduler spins with I/O in flight: one found
	 * its CPU wanted by other threads (sched.c, io_spin_window). Relaxed:
	 * a hint. */
	_Atomic uint64_t iobusy_until;
	_Atomic int stop;
	_Atomic int waiting; /* kr_wait waits: an empty runtime may stop itself */
	_Atomic int overmem; /* past cfg.max_memory (overload.c) */
	pthread_mutex_t idlelock;
	unsigned *idle; /* stack of parked scheduler ids */
	unsigned nidlestack;
	struct sched_node *nodes; /* by NUMA node index (topo_place.numa) */

	struct kr_stats_header *seg; /* the stats segment, or NULL */
	char segname[64];
	/* The names table's publication (stats.c): owned by the runtime
	 * block's writer (scheduler 0, or the thread that joined it).
	 * names_gen: the registry generation last published; names_n: the
	 * entries then in use; names_buf: KR_STATS_NAMES entries copied
	 * under the registry's lock, written to the segment after it. */
	uint64_t names_gen;
	unsigned names_n;
	struct kri_reg_entry *names_buf;

	pthread_t watchdog;
	bool watching;     /* under donelock */
	_Atomic int state; /* RT_NEW, RT_RUNNING, RT_DONE; read by any thread */
	pthread_mutex_t donelock;
	pthread_cond_t done;
	unsigned running; /* scheduler threads not yet exited */
	uint64_t vnow;    /* deterministic mode: virtual ms */
	uint64_t t0_ns;
	/* The Erlang-distribution node (dist/), or NULL: set once by
	 * kr_node_start (release), read (acquire) on a send to a remote pid
	 * and by kr_runtime_free (core/proc/remote.h), which clears it once
	 * the node is freed, before the last processes end. */
	_Atomic(const struct kri_remote *) remote;
};

enum { RT_NEW, RT_RUNNING, RT_DONE };

/* Stopping or stopped (kr_stop, no process left, or a deterministic run
 * over): what a thread asks of it now would never take effect, so
 * kr_rt_spawn, kr_rt_send and kr_rt_exit refuse (-ESHUTDOWN). */
static inline bool rt_closed(const struct kr_runtime *rt)
{
	/* Relaxed: a thread racing the stop may get in; what it spawned or
	 * sent is then discarded with the rest, as kr_stop says. */
	return atomic_load_explicit(&rt->stop, memory_order_relaxed) ||
	       atomic_load_explicit(&rt->state, memory_order_relaxed) == RT_DONE;
}

/* The runtime whose scheduler this thread is (or steps, deterministic). */
extern _Thread_local struct kr_runtime *kri_rt_current;

/* sched.c */
int kri_sched_init(struct kr_runtime *rt, struct sched *s, unsigned id);
void kri_sched_fini(struct sched *s);
void *kri_sched_thread(void *arg);
int kri_sched_run_deterministic(struct kr_runtime *rt);
void kri_sched_ready(struct sched *s, struct proc *p); /* p became runnable */
/* p, idle, was woken by a message w (running on s) sent: deliver.h's
 * sched_woken, but for its usual case. */
void kri_sched_woken(struct sched *s, struct proc *p, struct proc *w);
void kri_sched_wake_all(struct kr_runtime *rt);
bool kri_sched_wakep(struct kr_runtime *rt);
uint64_t kri_rt_now_ms(struct kr_runtime *rt);
uint64_t kri_rt_alive(const struct kr_runtime *rt);
uint64_t kri_now_ns(void);

/* runtime.c: the inject queue */
int kri_inject(struct kr_runtime *rt, kr_pid to, struct env *e);
bool kri_inject_drain(struct kr_runtime *rt, struct sched *s);

/* stats.c */
int kri_stats_open(struct kr_runtime *rt);
void kri_stats_close(struct kr_runtime *rt);
void kri_stats_publish(struct sched *s, uint64_t kri_now_ns);
void kri_stats_publish_runtime(struct kr_runtime *rt);
/* Remove the stats segments of this user's krill programs that have died
 * (the test krilltop --clean makes). */
void kri_stats_clean_dead(void);

/* info.c: p, owned by s, ran a whole batch handling `handled` messages:
 * a candidate for the top-processes table. */
void kri_top_note(struct sched *s, struct proc *p, kr_pid pid, uint64_t handled);
/* Messages queued for p and the bytes it holds, counting at most cap
 * messages. Only p's owner, or anyone while no scheduler runs. */
void kri_proc_measure(struct proc *p, const struct kr_ctx *c, uint64_t cap, uint64_t *mailbox,
		      uint64_t *memory);

/* "Lately" on scheduler o, counted in its own calls (the owner reads no
 * clock, and deterministic mode replays): a mark is o's calls + 1 when it
 * was set (0: never), and holds for BAL_SINK_CALLS calls. The sink's mark
 * (run.c) and a hub's stay (sched.c). Relaxed: hints. */
static inline void sched_mark(struct sched *o, _Atomic uint64_t *mark)
{
	atomic_store_explicit(mark, atomic_load_explicit(&o->calls, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static inline bool sched_lately(struct sched *o, _Atomic uint64_t *mark)
{
	uint64_t at = atomic_load_explicit(mark, memory_order_relaxed);
	return at &&
	       atomic_load_explicit(&o->calls, memory_order_relaxed) + 1 - at < BAL_SINK_CALLS;
}

/* The kr_* calls a behaviour can make are bracketed so that a watchdog
 * kill never lands inside the runtime (a half-done hand-off, a held lock):
 * it is deferred to the way out of the outermost call. s is NULL on a
 * thread that is not a scheduler (core/fault/fault.c). */
struct sched *kri_api_sched(void);
void kri_api_kill_now(struct sched *s);
static inline void api_enter(struct sched *s)
{
	if (s)
		s->in_rt++;
}
/* The one way into a kr_* call that takes a ctx: NULL for a NULL ctx (the
 * call returns -EINVAL, or nothing), else the scheduler running it, held
 * until api_leave. */
static inline struct sched *api_enter_ctx(const kr_ctx *ctx)
{
	if (!ctx)
		return NULL;
	api_enter(ctx->s);
	return ctx->s;
}
static inline void api_leave(struct sched *s)
{
	if (s && --s->in_rt == 0 && s->kill_pending)
		kri_api_kill_now(s);
}

#endif
