/* rt: the runtime and its schedulers, as the core's files share them. Not
 * part of the public API. */
#ifndef KR_RT_H
#define KR_RT_H

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc/arena.h"
#include "alloc/slots.h"
#include "core/balance.h"
#include "core/epoch.h"
#include "core/park.h"
#include "core/proc.h"
#include "core/runq.h"
#include "core/wheel.h"
#include "io/handle.h"
#include "io/ring.h"
#include "krill.h"
#include "krill_stats.h"
#include "topology/topo.h"

struct runtime;
struct sched;

struct kr_ctx {
	struct sched *s;
	struct proc *p;
	kr_pid self;
	struct env *cur;  /* the message being handled */
	struct env *bufs; /* reserved by kr_msg_buf during this call, not sent */
	unsigned sent;    /* messages sent during this run: they cost budget */
	bool defer;       /* kr_defer called for cur */
	bool lone;        /* cur is still in the mailbox word (proc.c) */
	bool exiting;
	uint32_t reason;
	uint32_t plen; /* exit payload */
	unsigned char payload[KR_PAYLOAD_MAX];
};

/* Per-scheduler counters: written by the owner only, with relaxed atomic
 * stores (plain moves on x86), read by anyone; published to the stats
 * segment by stats_publish. */
struct sched_stats {
	_Atomic uint64_t spawned, exited, crashed, killed, runs, msgs, sleeps, wakeups, restarts;
	_Atomic uint64_t steals[3]; /* by enum topo_level */
	_Atomic uint64_t idle_ns;
};

/* A store-load barrier (the Dekker pattern in sleep/wake and the epoch
 * announcement). ThreadSanitizer does not model fences, so its build uses
 * a seq_cst RMW on one word, which it does understand; production keeps
 * the fence, which costs no shared cache line. */
#if defined(__SANITIZE_THREAD__)
extern _Atomic unsigned tsan_fence_word;
static inline void full_fence(void)
{
	atomic_fetch_add_explicit(&tsan_fence_word, 0, memory_order_seq_cst);
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

/* Sends a behaviour call made to one receiver, not yet pushed: consecutive
 * sends to the same process after the first go into its mailbox as one
 * chain, one CAS instead of one each (proc.c). Owner only. */
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

struct sched {
	struct runtime *rt;
	unsigned id;
	struct kr_ctx ctx;
	struct outbox ob;
	struct arena arena;
	struct slot_cache pslots, tslots;
	struct proc *runnext;
	unsigned streak; /* runs taken from runnext in a row */
	unsigned ticks;
	uint64_t rng;
	uint64_t refs; /* monitor references made here */
	int64_t mem_seen; /* arena.bytes at the last ceiling check */
	bool spinning;
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
	void *altstack;
	unsigned loops;
	struct kr_stats_sched *pub; /* its block in the stats segment, or NULL */
	uint64_t pub_ns;            /* last runtime-wide publication (scheduler 0) */
	/* Shared with other threads: apart from the owner's lines. */
	alignas(64) struct runq q;
	alignas(64) _Atomic uint64_t epoch;
	alignas(64) struct park park;
	/* Its timers other schedulers cancelled, for it to free (timer.c). */
	alignas(64) _Atomic(void *) tdead;
	/* Its io_uring: submitted to and reaped by the owner only; other
	 * threads touch only its wake word (ring_wake). */
	alignas(64) struct ring ring;
};

struct inj; /* a message from a foreign thread, waiting for a scheduler */

struct runtime {
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
	alignas(64) _Atomic unsigned nidle;
	_Atomic unsigned nspinning;
	_Atomic int stop;
	_Atomic int overmem; /* past cfg.max_memory (overload.c) */
	pthread_mutex_t idlelock;
	unsigned *idle; /* stack of parked scheduler ids */
	unsigned nidlestack;

	struct kr_stats_header *seg; /* the stats segment, or NULL */
	char segname[64];

	pthread_t watchdog;
	bool watching; /* under donelock */
	_Atomic int state; /* RT_NEW, RT_RUNNING, RT_DONE; read by any thread */
	pthread_mutex_t donelock;
	pthread_cond_t done;
	unsigned running; /* scheduler threads not yet exited */
	uint64_t vnow;    /* deterministic mode: virtual ms */
	uint64_t t0_ns;
};

enum { RT_NEW, RT_RUNNING, RT_DONE };

/* The runtime whose scheduler this thread is (or steps, deterministic). */
extern _Thread_local struct runtime *rt_current;

/* sched.c */
int sched_init(struct runtime *rt, struct sched *s, unsigned id);
void sched_fini(struct sched *s);
void *sched_thread(void *arg);
int sched_run_deterministic(struct runtime *rt);
void sched_ready(struct sched *s, struct proc *p); /* p became runnable */
void sched_wake_all(struct runtime *rt);
void sched_wakep(struct runtime *rt);
uint64_t rt_now_ms(struct runtime *rt);
uint64_t rt_alive(const struct runtime *rt);

/* proc.c */
struct proc *proc_lookup(struct runtime *rt, kr_pid pid, int *err);
/* Push e to pid and schedule it if it was idle. 1: queued; 0: pid has
 * exited; -ESRCH: never issued. e is freed unless queued. */
int proc_deliver(struct sched *s, kr_pid to, struct env *e);
/* The same for events from outside (I/O completions): a process it wakes
 * goes to the back of the queue, not ahead of it, so a stream of them
 * cannot keep the rest waiting. */
int proc_deliver_tail(struct sched *s, kr_pid to, struct env *e);
/* Push what s's outbox holds. Called wherever the order of a sender's
 * messages against anything else it sends could show: after each
 * behaviour call, before any other delivery, on a fault or a kill. */
void outbox_push(struct sched *s);
static inline void outbox_flush(struct sched *s)
{
	if (s->ob.n)
		outbox_push(s);
}
void proc_exit(struct sched *s, struct proc *p, uint32_t reason, const void *payload,
	       uint32_t plen);
struct env *env_new(struct arena *a, uint32_t tag, const void *data, size_t len);
/* Inline: every message's envelope is freed through it. */
__attribute__((always_inline)) static inline void env_free(struct arena *a, struct env *e)
{
	arena_free(a, e, env_size(e->m.len));
}
void env_free_list(struct arena *a, struct env *e);
int proc_check_send(struct runtime *rt, struct sched *s, uint32_t tag, const void *data,
		    size_t len);
void proc_run(struct sched *s, struct proc *p);
/* A fault or kill ends the call: its message leaves the mailbox word. */
void proc_drop_lone(struct sched *s);
/* The call is over: buffers it reserved (kr_msg_buf) and did not send go. */
void bufs_free(struct sched *s);
void proc_destroy_all(struct runtime *rt);
struct side *proc_side(struct sched *s, struct proc *p);

/* link.c */
enum { SIG_KEEP, SIG_DROP, SIG_DIE };
int sig_send(struct sched *s, kr_pid to, uint32_t tag, kr_pid from, uint64_t ref,
	     uint32_t reason, const void *payload, uint32_t len);
struct env *sig_env(struct arena *a, uint32_t tag, kr_pid from, uint64_t ref, uint32_t reason,
		    const void *payload, uint32_t len);
int sig_handle(struct sched *s, struct proc *p, struct env *e);
void sig_exit_notify(struct sched *s, struct proc *p, kr_pid self, uint32_t reason,
		     const void *payload, uint32_t plen);
void sig_drain(struct sched *s, struct env *list, kr_pid self, uint32_t reason,
	       const void *payload, uint32_t plen);
void side_free_vecs(struct sched *s, struct side *side);
int kri_monvec_add(struct arena *a, struct kri_monvec *v, uint64_t ref, kr_pid pid);

/* overload.c */
bool ovl_admit(struct proc *p);
void ovl_count(struct proc *p, const struct env *e);
void ovl_taken_limited(struct sched *s, struct proc *p, const struct env *list);
/* The owner took list: a limited mailbox counts it off. One load (the
 * flag) for the others, inline: it is on every message's path. Acquire
 * pairs with kr_mailbox_limit's release, as overload.c's limited(). */
static inline void ovl_taken(struct sched *s, struct proc *p, const struct env *list)
{
	if (atomic_load_explicit(&p->aflags, memory_order_acquire) & P_LIMITED)
		ovl_taken_limited(s, p, list);
}
void ovl_notify(struct sched *s, struct proc *p, kr_pid from, uint32_t tag);
void ovl_memory_check(struct sched *s);
bool ovl_over(struct runtime *rt, struct sched *s);
void ovl_exit(struct sched *s, struct side *sd);

/* io.c */
int io_rt_init(struct runtime *rt);
void io_rt_fini(struct runtime *rt);
void io_sched_fini(struct sched *s);
void io_owner_exit(struct runtime *rt, kr_pid pid);
unsigned io_poll(struct sched *s);
void io_step(struct sched *s); /* reap completions, submit requests */

/* timer.c */
int timer_start(struct sched *s, kr_pid to, uint64_t ms, struct env *e, kr_timer *out);
int timer_cancel(struct runtime *rt, struct sched *s, kr_timer t);
/* Make armed timer t fire ms from now instead, from any scheduler when that
 * is no earlier than its deadline, from its owner's otherwise; -ENOENT,
 * changing nothing, when it cannot (fired, or not ours to move earlier).
 * Only for a timer whose id no other thread holds. */
int timer_rearm(struct sched *s, kr_timer t, uint64_t ms);
void timer_expire(struct sched *s);
void timer_drain(struct sched *s);

/* registry.c */
int registry_new(struct registry **out);
void registry_free(struct registry *r);
void registry_drop_pid(struct runtime *rt, kr_pid pid);
uint64_t registry_count(struct registry *r);

/* fault.c */
/* sigsetjmp's savemask. The handler runs with SA_NODEFER and an empty
 * sa_mask, so nothing more is blocked when it jumps back and no mask needs
 * restoring: that saves a system call per crash. A sanitizer's handler,
 * interposed in front of ours, may block more: those builds restore it. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAULT_SAVEMASK 1
#else
#define FAULT_SAVEMASK 0
#endif
int fault_install(void);
void fault_uninstall(void);
int fault_thread_enter(struct sched *s, stack_t *old);
void fault_thread_leave(struct sched *s, const stack_t *old);
void fault_switch(struct sched *s);
void fault_recover(struct sched *s);

/* watchdog.c */
int watchdog_start(struct runtime *rt);
void watchdog_stop(struct runtime *rt);
void watchdog_kill(struct runtime *rt, kr_pid pid);

/* The kr_* calls a behaviour can make are bracketed so that a watchdog
 * kill never lands inside the runtime (a half-done hand-off, a held lock):
 * it is deferred to the way out of the outermost call. s is NULL on a
 * thread that is not a scheduler. */
struct sched *api_sched(void);
void api_kill_now(struct sched *s);
static inline void api_enter(struct sched *s)
{
	if (s)
		s->in_rt++;
}
static inline void api_leave(struct sched *s)
{
	if (s && --s->in_rt == 0 && s->kill_pending)
		api_kill_now(s);
}

/* stats.c */
int stats_open(struct runtime *rt);
void stats_close(struct runtime *rt);
void stats_publish(struct sched *s, uint64_t now_ns);
void stats_publish_runtime(struct runtime *rt);
uint64_t now_ns(void);

/* runtime.c: the inject queue */
int inject(struct runtime *rt, kr_pid to, struct env *e);
bool inject_drain(struct runtime *rt, struct sched *s);

#endif
