/* proc: spawn, lookup and exit of a process, and the calls that name one
 * (kr_self, kr_spawn, kr_rt_spawn). Sending is in send.c, the run of a
 * process's messages in run.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sched/sched.h"
#include "core/proc/limit.h"
#include "core/log/log.h"
#include "core/proc/part.h"
#include "core/proc/remote.h"

/* A slot whose generation reaches this is never reused, so a generation
 * never wraps and a stale pid can never name a later process. */
#define GEN_LIMIT 0xfffffff0u
_Static_assert(GEN_LIMIT < GEN_REMOTE, "no local process has a remote pid's generation");

/* The live process named by pid, or NULL with *err: 0 when it has exited
 * (a send is silently dropped), -ESRCH when pid was never issued. */
struct proc *kri_proc_lookup(struct kr_runtime *rt, kr_pid pid, int *err)
{
	uint32_t g = pid_gen(pid);
	struct proc *p = (g & 1) ? slot_at(&rt->procs, pid_idx(pid)) : 0;
	*err = -ESRCH;
	if (!p)
		return 0;
	/* Acquire pairs with spawn's release: a match means the slot holds
	 * this incarnation, fully initialised. */
	uint32_t cur = atomic_load_explicit(&p->gen, memory_order_acquire);
	if (cur == g)
		return p;
	if (cur > g)
		*err = 0;
	return 0;
}

struct side *kri_proc_side(struct sched *s, struct proc *p)
{
	if (!p->side) {
		p->side = arena_alloc(&s->arena, sizeof(struct side));
		if (p->side)
			memset(p->side, 0, sizeof(struct side));
	}
	return p->side;
}

/* State over 8 bytes lives in its own allocation with its length in front
 * (16 bytes, so the state stays 16-aligned): a process with a big state
 * and nothing else needs no side record, and running it touches one line
 * less. */
#define BIG_HDR 16

static void *big_state_new(struct arena *a, const void *state, size_t len)
{
	unsigned char *h = arena_alloc(a, BIG_HDR + len);
	if (!h)
		return 0;
	memcpy(h, &len, sizeof len);
	memcpy(h + BIG_HDR, state, len);
	return h + BIG_HDR;
}

static void big_state_free(struct arena *a, void *big)
{
	unsigned char *h = (unsigned char *)big - BIG_HDR;
	size_t len;
	memcpy(&len, h, sizeof len);
	arena_free(a, h, BIG_HDR + len);
}

static int spawn_in(struct kr_runtime *rt, struct sched *s, struct slot_cache *c, struct arena *a,
		    kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	uint32_t idx;
	void *big = 0;
	if (!b || (len && !state) || !out)
		return -EINVAL;
	if (kri_ovl_over(rt, s))
		return -ENOMEM;
	int rc = kri_slots_get(&rt->procs, c, a, &idx);
	if (rc)
		return rc;
	struct proc *p = slot_at(&rt->procs, idx);
	if (!p)
		return -EAGAIN; /* cannot happen: slots_get returned a live index */
	if (len > sizeof(p->state)) {
		big = big_state_new(a, state, len);
		if (!big) {
			kri_slots_put(&rt->procs, c, idx); /* never published */
			return -ENOMEM;
		}
	}
	uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
	p->local = 0;
	p->beh = b;
	p->state = 0;
	if (big)
		p->state = (uint64_t)(uintptr_t)big;
	else if (len)
		memcpy(&p->state, state, len);
	p->next = 0;
	p->side = 0;
	p->flags = big ? P_BIG : 0;
	p->on = s ? s->id : 0;
	p->wakes = BAL_WAKE_NEW;
	p->idx = idx;
	atomic_store_explicit(&p->aflags, 0, memory_order_relaxed);
	atomic_store_explicit(&p->inbox, 0, memory_order_relaxed);
	/* Release: a sender that sees the new generation sees the rest. */
	atomic_store_explicit(&p->gen, g, memory_order_release);
	*out = pid_make(idx, g);
	return 0;
}

/* Nobody hears of p's end: no link, no monitor on it. */
static bool unobserved(const struct proc *p)
{
	const struct side *side = p->side;
	return !side || (kri_pidset_count(&side->links) == 0 && side->in.n == 0);
}

/* An unobserved crash: one line, as Erlang's logger writes a crash report.
 * Its name is read before names_exit drops it. */
static __attribute__((noinline, cold)) void crash_report(struct kr_runtime *rt,
							 const struct exit_note *x, uint32_t af)
{
	char name[KR_NAME_MAX + 1], named[KR_NAME_MAX + 4] = "", why[96];
	if (!kri_log_on(rt, KR_LOG_ERROR))
		return;
	if ((af & P_NAMED) && kri_proc_parts.name_of(rt, x->self, name, sizeof(name)) == 0)
		snprintf(named, sizeof(named), " (%s)", name);
	kri_log_reason(why, sizeof(why), x->reason, x->payload, x->plen);
	kri_log(rt, KR_LOG_ERROR, "krill: process <%u.%u>%s exited: %s", pid_idx(x->self),
		pid_gen(x->self), named, why);
}

/* Any ending but KR_NORMAL and KR_SHUTDOWN: counted, and reported if
 * nobody hears of it. */
static void abnormal_exit(struct sched *s, const struct proc *p, const struct exit_note *x,
			  uint32_t af)
{
	if (x->reason == KR_FAULT)
		stat_add(&s->st.crashed, 1);
	else if (x->reason == KR_KILLED)
		stat_add(&s->st.killed, 1);
	if (unobserved(p))
		crash_report(s->rt, x, af);
}

void kri_proc_exit(struct sched *s, struct proc *p, uint32_t reason, const void *payload,
		   uint32_t plen)
{
	struct kr_runtime *rt = s->rt;
	uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed);
	struct exit_note x = {pid_make(p->idx, g), reason, plen, payload};
	/* Seq_cst: pairs with kr_register setting P_NAMED then re-reading the
	 * generation; one of the two sees the other. */
	atomic_store_explicit(&p->gen, g + 1, memory_order_seq_cst);
	uint32_t af = atomic_load_explicit(&p->aflags, memory_order_seq_cst);
	/* One compare for an ordinary ending (KR_NORMAL, KR_SHUTDOWN); the
	 * counts and the crash report (its name is read before names_exit
	 * drops it) for the others. */
	if (reason > KR_SHUTDOWN)
		abnormal_exit(s, p, &x, af);
	if (af & P_NAMED)
		kri_proc_parts.names_exit(rt, x.self);
	if (af & P_IO)
		kri_proc_parts.io_exit(rt, x.self);
	/* Shutdown frees everything at once: nobody is left to tell. */
	bool tell = !atomic_load_explicit(&rt->stop, memory_order_relaxed);
	struct env *pending = kri_mbox_close(&p->inbox);
	if (tell) {
		/* Most exits have nothing to tell and nothing left to drain:
		 * no call for those. Dead to the world (lookups fail, the
		 * mailbox is closed), its state and memory still there: its
		 * exit hooks run before its links and monitors hear of it. */
		if (p->side) {
			if (p->flags & P_OWN)
				kri_own_hooks(s, p->side->own, &x);
			kri_proc_parts.exit_notify(s, p, &x);
		}
		if (p->local)
			kri_proc_parts.exit_drain(s, p->local, &x);
		if (pending)
			kri_proc_parts.exit_drain(s, pending, &x);
	} else {
		if (p->flags & P_OWN)
			kri_own_hooks(s, p->side->own, &x);
		kri_env_free_list(&s->arena, p->local);
		kri_env_free_list(&s->arena, pending);
	}
	p->local = 0;
	if (p->side) {
		struct side *side = p->side;
		kri_env_free_list(&s->arena, side->dhead);
		side->dhead = side->dtail = 0;
		if (side->rto)
			kri_proc_parts.timer_cancel(rt, s, side->rto);
		if (tell)
			kri_ovl_exit(s, side);
		kri_ovl_side_free(s, side);
		kri_proc_parts.side_free(s, side);
		if (p->flags & P_OWN) {
			kri_own_free(s, side->own);
			side->own = 0;
		}
		/* Senders may still hold a limited process's side record
		 * (limit.c): it goes when the slot is recycled. */
		if (!(atomic_load_explicit(&p->aflags, memory_order_relaxed) & P_LIMITED)) {
			arena_free(&s->arena, side, sizeof(*side));
			p->side = 0;
		}
	}
	if (p->flags & P_BIG) {
		/* A stackful process is a big state: the plain exit tests
		 * nothing more. */
		if (p->flags & P_FIBER)
			kri_proc_parts.fiber_free(s, (void *)(uintptr_t)p->state);
		big_state_free(&s->arena, (void *)(uintptr_t)p->state);
	}
	p->flags = 0;
	p->beh = 0;
	stat_add(&s->st.exited, 1);
	if (g + 1 < GEN_LIMIT)
		kri_epoch_retire(s, p);
}

/* Shutdown: free every process still alive; no scheduler runs. They end
 * with KR_SHUTDOWN, as their exit hooks are told: the runtime stops. */
void kri_proc_destroy_all(struct kr_runtime *rt)
{
	struct sched *s = &rt->s[0];
	for (uint32_t ch = 0; ch < rt->procs.grown; ch++) {
		for (uint32_t k = 0; k < (1u << SLOTS_CHUNK_BITS); k++) {
			uint32_t idx = (ch << SLOTS_CHUNK_BITS) | k;
			struct proc *p = slot_at(&rt->procs, idx);
			if (!p || !(atomic_load_explicit(&p->gen, memory_order_relaxed) & 1))
				continue;
			kri_proc_exit(s, p, KR_SHUTDOWN, 0, 0);
		}
	}
}

/* ---- the public calls a behaviour makes ------------------------------- */

kr_pid kr_self(const kr_ctx *ctx)
{
	if (!ctx)
		return 0;
	return ctx->self;
}

kr_runtime *kr_runtime_of(const kr_ctx *ctx)
{
	if (!ctx)
		return NULL;
	return ctx->s->rt;
}

/* A process found the table full: its own cache is empty (slots_get
 * failed), but others may hold slots. Ask for them and take back the
 * foreign spawns' cache, if free, then try once more; waiting for the
 * answers is not for a behaviour (two waiting for each other's schedulers
 * would never get one), so a later spawn is what profits. */
static int ctx_spawn_full(struct sched *s, kr_behaviour b, const void *state, size_t len,
			  kr_pid *out)
{
	struct kr_runtime *rt = s->rt;
	kri_epoch_ask(rt);
	if (pthread_mutex_trylock(&rt->flock) == 0) {
		kri_slots_flush(&rt->procs, &rt->fslots);
		pthread_mutex_unlock(&rt->flock);
	}
	return spawn_in(rt, s, &s->pslots, &s->arena, b, state, len, out);
}

static int ctx_spawn(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	struct sched *s = ctx->s;
	int rc = spawn_in(s->rt, s, &s->pslots, &s->arena, b, state, len, out);
	if (rc == -EAGAIN)
		rc = ctx_spawn_full(s, b, state, len, out);
	if (rc == 0)
		stat_add(&s->st.spawned, 1);
	return rc;
}

int kr_spawn(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = ctx_spawn(ctx, b, state, len, out);
	api_leave(s);
	return rc;
}

static int rt_spawn_locked(kr_runtime *rt, kr_behaviour b, const void *state, size_t len,
			   kr_pid *out)
{
	pthread_mutex_lock(&rt->flock);
	/* Under flock, as the last scheduler's "no process left" (sched.c,
	 * park): either this spawn is counted before that look, or the look
	 * stopped the runtime first and the spawn is refused. Never a process
	 * spawned into a runtime that has decided it is empty. */
	int rc = rt_closed(rt) ? -ESHUTDOWN
			       /* No arena: foreign threads use the process-wide allocator. */
			       : spawn_in(rt, 0, &rt->fslots, 0, b, state, len, out);
	if (rc == 0)
		atomic_fetch_add_explicit(&rt->fspawned, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&rt->flock);
	return rc;
}

/* How long a spawn from a thread waits for the schedulers' answers
 * (krill.h, kr_rt_spawn). They answer at their next quiescent point, at
 * once when idle; the bound is for one inside a long behaviour call. */
#define GIVE_BACK_WAIT_NS 1000000000u

/* The table was full: ask the schedulers for the slots they hold
 * (core/sched/epoch.c) and take one as soon as it reaches the pool.
 * -EAGAIN once every scheduler has answered and still none is free. */
static int rt_spawn_full(kr_runtime *rt, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	struct timespec pause = {0, 20000};
	struct sched *self = kri_api_sched();
	/* Before kr_start no process has run, so none has exited. */
	if (atomic_load_explicit(&rt->state, memory_order_acquire) != RT_RUNNING)
		return -EAGAIN;
	uint64_t ask = kri_epoch_ask(rt);
	if (self) {
		/* A behaviour: it must not wait (see ctx_spawn_full). Its own
		 * scheduler's cache it may hand back: it is the owner, and
		 * between two slot operations. */
		if (self->rt == rt)
			kri_slots_flush(&rt->procs, &self->pslots);
		return rt_spawn_locked(rt, b, state, len, out);
	}
	uint64_t until = kri_now_ns() + GIVE_BACK_WAIT_NS;
	for (;;) {
		/* Answered before the try: then a failure is final. */
		bool all = kri_epoch_answered(rt, ask);
		int rc = rt_spawn_locked(rt, b, state, len, out);
		if (rc != -EAGAIN || all)
			return rc;
		if (atomic_load_explicit(&rt->stop, memory_order_relaxed) ||
		    atomic_load_explicit(&rt->state, memory_order_relaxed) != RT_RUNNING ||
		    kri_now_ns() > until)
			return rc;
		nanosleep(&pause, 0);
	}
}

static int rt_spawn_in(kr_runtime *rt, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	if (!rt)
		return -EINVAL;
	/* Stopping or stopped: the process would never run. */
	if (rt_closed(rt))
		return -ESHUTDOWN;
	int rc = rt_spawn_locked(rt, b, state, len, out);
	if (rc == -EAGAIN)
		rc = rt_spawn_full(rt, b, state, len, out);
	return rc;
}

int kr_rt_spawn(kr_runtime *rt_, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	struct sched *s = kri_api_sched();
	api_enter(s);
	int rc = rt_spawn_in(rt_, b, state, len, out);
	api_leave(s);
	return rc;
}
