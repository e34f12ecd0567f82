/* sched: the scheduler loop, work stealing, and how idle schedulers sleep
 * and wake.
 *
 * A scheduler runs processes from its next-to-run slot (a process its own
 * run just woke: the message is hot in this cache, as in Go) and its run
 * queue, a bounded batch of messages each. With nothing local it steals,
 * nearest victims first (same L3, same NUMA node, then remote nodes, and a
 * remote victim only when its backlog is worth the lost locality: the
 * policy is core/sched/balance.c's), spins
 * for spin_us, then parks.
 *
 * Sleep and wake-up (after Go's proc.go). nidle counts parked schedulers,
 * nspinning those looking for work. A producer that leaves stealable work
 * (its ring is non-empty after a process run) wakes one parked scheduler
 * only when nobody spins: the spinner will find the work, and if it was
 * the last spinner and found some, it wakes the next. So a burst wakes at
 * most one scheduler at a time. No wake-up is lost: the producer publishes
 * its work, fences, then reads nidle/nspinning; a parker increments nidle
 * and stops spinning (seq_cst), then re-checks every queue before it
 * sleeps. In the single total order one of them sees the other. (The
 * producer skips the fence while it sees nobody parked; what that can
 * delay by one step, and why it loses nothing: maybe_wake.)
 * Termination: the last scheduler to park, seeing every other parked,
 * sums the per-scheduler spawn and exit counters (stable, since their
 * owners are parked); zero alive stops the runtime.
 * Rejected: waking on every ready() (a futex call per message in
 * ping-pong workloads) and a global run queue (a shared lock on the
 * message path). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sched/sched.h"
#include "core/timer/timer.h"
#include "core/proc/limit.h"
#include "core/io/io.h"
#include "core/fault/fault.h"
#include "util/cpu.h"

#define QUIESCE_EVERY 64u
/* Stats are for eyes refreshing once a second: every 1024 steps (and at
 * every sleep) is plenty, and keeps their cost out of the figures. */
#define PUBLISH_EVERY 1024u
#define TIMER_EVERY   16u

_Thread_local struct kr_runtime *kri_rt_current;
#if defined(__SANITIZE_THREAD__)
_Atomic unsigned kri_tsan_fence_word;
#endif

uint64_t kri_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t kri_rt_now_ms(struct kr_runtime *rt)
{
	if (rt->cfg.deterministic)
		return rt->vnow;
	return (kri_now_ns() - rt->t0_ns) / 1000000u;
}

static uint64_t rnd(struct sched *s)
{
	/* xorshift64*: deterministic mode's choices must replay exactly. */
	uint64_t x = s->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

uint64_t kri_rt_alive(const struct kr_runtime *rt)
{
	int64_t n = atomic_load_explicit(&rt->fspawned, memory_order_seq_cst);
	for (unsigned i = 0; i < rt->n; i++) {
		n += (int64_t)atomic_load_explicit(&rt->s[i].st.spawned, memory_order_relaxed);
		n -= (int64_t)atomic_load_explicit(&rt->s[i].st.exited, memory_order_relaxed);
	}
	return n > 0 ? (uint64_t)n : 0;
}

int kri_sched_init(struct kr_runtime *rt, struct sched *s, unsigned id)
{
	memset(s, 0, sizeof(*s));
	s->rt = rt;
	s->id = id;
	s->ctx.s = s;
	s->rng = (rt->cfg.seed ^ (0x9e3779b97f4a7c15ull * (id + 1))) | 1;
	kri_slot_cache_init(&s->pslots);
	kri_slot_cache_init(&s->tslots);
	kri_limbo_init(&s->limbo);
	kri_wheel_init(&s->wheel, kri_rt_now_ms(rt));
	kri_runq_init(&s->q, &s->arena);
	kri_ring_init(&s->ring, 1024, rt->cfg.sqpoll != 0);
	kri_park_init(&s->park, s->ring.ok ? &s->ring : 0);
	atomic_init(&s->epoch, OFFLINE_EPOCH);
	int rc = kri_arena_init(&s->arena);
	if (rc)
		return rc;
	/* s->bal is filled by the runtime's layout, once every place is
	 * known. */
	return 0;
}

void kri_sched_fini(struct sched *s)
{
	kri_timer_drain(s);
	kri_io_sched_fini(s);
	kri_epoch_drain(s);
	kri_runq_fini(&s->q);
	kri_arena_fini(&s->arena);
	kri_bal_fini(&s->bal);
}

/* p became runnable on s: it runs next, and the process that was to run
 * next goes to the queue where thieves can take it. */
void kri_sched_ready(struct sched *s, struct proc *p)
{
	if (s->runnext)
		kri_runq_push(&s->q, s->runnext);
	s->runnext = p;
}

bool kri_sched_wakep(struct kr_runtime *rt)
{
	unsigned zero = 0;
	if (rt->cfg.deterministic)
		return false;
	if (atomic_load_explicit(&rt->nidle, memory_order_seq_cst) == 0 ||
	    atomic_load_explicit(&rt->nspinning, memory_order_seq_cst) != 0 ||
	    !atomic_compare_exchange_strong_explicit(&rt->nspinning, &zero, 1, memory_order_seq_cst,
						     memory_order_relaxed))
		return false;
	/* The woken scheduler starts out spinning: nspinning counts it, and
	 * it learns so in unidle(), under the same lock. */
	pthread_mutex_lock(&rt->idlelock);
	struct sched *s = 0;
	if (rt->nidlestack) {
		s = &rt->s[rt->idle[--rt->nidlestack]];
		atomic_fetch_sub_explicit(&rt->nidle, 1, memory_order_seq_cst);
	} else {
		/* Nobody to wake: the spinner we counted does not exist. Take
		 * it back under the lock, as Go's wakep does: a scheduler that
		 * parks pushes itself under this lock, so it comes wholly
		 * before (we would have found it) or after (a wakep racing
		 * it sees nspinning 0 and looks). Taken back after the
		 * unlock, the phantom spinner let a second wakep leave its
		 * work to nobody while a scheduler parked in the gap
		 * (tests/models/park.pml found it). */
		atomic_fetch_sub_explicit(&rt->nspinning, 1, memory_order_seq_cst);
	}
	pthread_mutex_unlock(&rt->idlelock);
	if (s)
		kri_park_wake(&s->park);
	return s != 0;
}

void kri_sched_wake_all(struct kr_runtime *rt)
{
	for (unsigned i = 0; i < rt->n; i++)
		kri_park_wake(&rt->s[i].park);
}

/* After a run left stealable work behind: let an idle scheduler take it.
 * The store-load fence is paid only when some scheduler is parked: with
 * none, a busy scheduler would fence on every message. Reading nidle
 * before the fence can miss a scheduler that is just parking (it counted
 * itself, then looked at our queue before our push showed); the work is
 * not lost, it is on our own queue and we run it, and the next step's
 * look sees the parked one and wakes it. */
static void maybe_wake(struct sched *s)
{
	if (s->rt->n == 1 || kri_runq_len(&s->q) == 0 ||
	    atomic_load_explicit(&s->rt->nidle, memory_order_relaxed) == 0)
		return;
	/* Store-load: our ring push must be visible before wakep reads. */
	full_fence();
	if (kri_sched_wakep(s->rt))
		stat_add(&s->st.woke, 1);
}

static struct proc *next_local(struct sched *s)
{
	struct proc *p;
	/* Runnext first, but not forever: two processes handing work to each
	 * other must not starve the queue. */
	if (s->runnext && s->streak < s->rt->cfg.batch) {
		p = s->runnext;
		s->runnext = 0;
		s->streak++;
		return p;
	}
	s->streak = 0;
	p = kri_runq_pop(&s->q);
	if (!p && s->runnext) {
		p = s->runnext;
		s->runnext = 0;
	}
	return p;
}

/* A scheduler the watchdog found stuck in one call runs nothing of its
 * queue until the call ends: whatever waits there is worth any trip, so it
 * counts as past every threshold (and, being large, wins the choice). */
#define STUCK_BACKLOG (1u << 20)

static bool stuck(const struct sched *o)
{
	/* Relaxed: a hint for the choice; runq_steal's CAS is what makes
	 * taking the processes safe. */
	return atomic_load_explicit(&o->stuck, memory_order_relaxed) != 0;
}

static uint64_t queue_len(void *arg, unsigned v)
{
	struct kr_runtime *rt = arg;
	struct sched *o = &rt->s[v];
	uint64_t n = kri_runq_len(&o->q);
	return n && stuck(o) ? n + STUCK_BACKLOG : n;
}

/* The policy is core/sched/balance.c's, shared with perf/bench/krill-sim: near
 * victims first, a remote one only past its threshold. A steal can lose a
 * race with the owner or another thief; the choice is then made again,
 * a few times, before giving up for this step. */
static struct proc *steal(struct sched *s)
{
	struct kr_runtime *rt = s->rt;
	uint32_t taken;
	if (rt->n == 1)
		return 0;
	unsigned start = rt->cfg.deterministic ? (unsigned)rnd(s) : 0;
	for (int tries = 0; tries < 4; tries++) {
		int j = kri_bal_choose(&s->bal, start, queue_len, rt);
		if (j < 0)
			return 0;
		struct sched *v = &rt->s[s->bal.order[j]];
		struct proc *p = kri_runq_steal(&v->q, &s->q, stuck(v) ? 1 : s->bal.min[j], &taken);
		if (p) {
			stat_add(&s->st.steals[s->bal.level[j]], 1);
			stat_add(&s->st.stolen, taken);
			return p;
		}
		start++;
	}
	return 0;
}

static void stop_spinning(struct sched *s)
{
	if (!s->spinning)
		return;
	s->spinning = false;
	/* The last spinner to find work wakes another to keep looking. */
	if (atomic_fetch_sub_explicit(&s->rt->nspinning, 1, memory_order_seq_cst) == 1 &&
	    kri_sched_wakep(s->rt))
		stat_add(&s->st.woke, 1);
}

/* One step: run one process, or find one (inject, timers, steal). False
 * when there was nothing to do. */
static bool step(struct sched *s)
{
	struct kr_runtime *rt = s->rt;
	if (atomic_load_explicit(&rt->ipending, memory_order_relaxed))
		kri_inject_drain(rt, s);
	if (s->wheel.count && (++s->ticks % TIMER_EVERY == 0 || !s->runnext))
		kri_timer_expire(s);
	if (ring_busy(&s->ring))
		kri_io_step(s);
	struct proc *p = next_local(s);
	if (!p)
		p = steal(s);
	if (!p)
		return false;
	/* Found work: no longer spinning, before the run and not after it,
	 * as Go's resetspinning: a run that never returns (a runaway the
	 * watchdog must kill) would otherwise count as a spinner for ever,
	 * and wakep, seeing one, would wake nobody for the work it leaves. */
	stop_spinning(s);
	kri_proc_run(s, p);
	stat_add(&s->st.runs, 1);
	return true;
}

/* Is there work s could take? The same rule as steal(), so a scheduler
 * never stays awake for work it would refuse. */
static bool any_work(struct sched *s)
{
	struct kr_runtime *rt = s->rt;
	if (atomic_load_explicit(&rt->ipending, memory_order_seq_cst) || kri_runq_len(&s->q) ||
	    (s->ring.inflight && ring_events(&s->ring)))
		return true;
	return kri_bal_choose(&s->bal, 0, queue_len, rt) >= 0;
}

/* Leave the idle stack. If a waker already took us off it, it counted us
 * as spinning: we are. */
static void unidle(struct kr_runtime *rt, struct sched *s)
{
	bool popped = true;
	pthread_mutex_lock(&rt->idlelock);
	for (unsigned i = 0; i < rt->nidlestack; i++) {
		if (rt->idle[i] == s->id) {
			rt->idle[i] = rt->idle[--rt->nidlestack];
			atomic_fetch_sub_explicit(&rt->nidle, 1, memory_order_seq_cst);
			popped = false;
			break;
		}
	}
	pthread_mutex_unlock(&rt->idlelock);
	if (popped)
		s->spinning = true;
}

static void park(struct sched *s)
{
	struct kr_runtime *rt = s->rt;
	kri_epoch_settle(s);
	kri_epoch_give_back(s);
	/* Still owing slots (its limbo waits for the others): sleep briefly,
	 * to try again once they have gone offline (epoch.c). */
	bool owing = kri_epoch_asked(s);
	pthread_mutex_lock(&rt->idlelock);
	rt->idle[rt->nidlestack++] = s->id;
	unsigned idle = atomic_fetch_add_explicit(&rt->nidle, 1, memory_order_seq_cst) + 1;
	pthread_mutex_unlock(&rt->idlelock);
	if (s->spinning) {
		s->spinning = false;
		atomic_fetch_sub_explicit(&rt->nspinning, 1, memory_order_seq_cst);
	}
	kri_epoch_offline(s);
	full_fence();
	uint64_t next = kri_wheel_next_bound(&s->wheel);
	uint64_t now = kri_rt_now_ms(rt);
	if (atomic_load_explicit(&rt->stop, memory_order_seq_cst) || any_work(s) || next <= now) {
		unidle(rt, s);
		kri_epoch_online(s);
		return;
	}
	if (idle == rt->n && kri_rt_alive(rt) == 0) {
		atomic_store_explicit(&rt->stop, 1, memory_order_seq_cst);
		kri_sched_wake_all(rt);
		unidle(rt, s);
		return;
	}
	stat_add(&s->st.sleeps, 1);
	uint64_t timeout = next == UINT64_MAX ? UINT64_MAX : (next - now) * 1000000u;
	if (owing && timeout > 1000000u)
		timeout = 1000000u;
	/* Scheduler 0 refreshes the runtime-wide stats about once a second,
	 * asleep or not: one wake-up a second costs nothing measurable. */
	if (s->pub && s->id == 0 && timeout > 1000000000u)
		timeout = 1000000000u;
	uint64_t t0 = kri_now_ns();
	kri_ovl_memory_check(s);
	kri_stats_publish(s, t0);
	kri_park_wait(&s->park, timeout);
	uint64_t t1 = kri_now_ns();
	stat_add(&s->st.idle_ns, t1 - t0);
	/* Woken by sched_wakep, by a timer, or spuriously. */
	unidle(rt, s);
	stat_add(&s->st.wakeups, 1);
	kri_epoch_online(s);
	kri_stats_publish(s, t1);
}

void *kri_sched_thread(void *arg)
{
	struct sched *s = arg;
	struct kr_runtime *rt = s->rt;
	uint64_t spin_ns = (uint64_t)rt->cfg.spin_us * 1000u;
	stack_t old;
	if (rt->cfg.pin && kri_topo_is_real(rt->topo) && s->place.cpu >= 0)
		kri_topo_pin_self(rt->topo, s->place.cpu);
	/* Its arena's pages then come from its node on first touch: the
	 * per-scheduler arena is a per-node arena. Not binding (no support,
	 * no permission) only costs locality, so the result is ignored. */
	if (rt->cfg.numa && kri_topo_is_real(rt->topo) && kri_topo_nnuma(rt->topo) > 1)
		kri_topo_membind_self(rt->topo, s->place.numa);
	kri_rt_current = rt;
	kri_park_set_self(&s->park);
	int contained = kri_fault_thread_enter(s, &old) == 0;
	kri_epoch_online(s);
	/* Once per thread, not per message: a process's fault lands here. */
	s->jbp = &s->jb;
	if (contained && sigsetjmp(s->jb, FAULT_SAVEMASK))
		kri_fault_recover(s);
	while (!atomic_load_explicit(&rt->stop, memory_order_relaxed)) {
		if (step(s)) {
			maybe_wake(s);
			if ((s->loops & 7) == 0)
				kri_epoch_announce(s);
			if (++s->loops % QUIESCE_EVERY == 0) {
				kri_epoch_quiesce(s);
				kri_ovl_memory_check(s);
				if (s->loops % PUBLISH_EVERY == 0)
					kri_stats_publish(s, kri_now_ns());
			}
			continue;
		}
		kri_epoch_quiesce(s);
		/* Spin a while (bounded to half the schedulers, as in Go, so an
		 * idle machine is not all spinning) before sleeping. Not with
		 * I/O in flight: completions end the ring's wait as soon as the
		 * kernel posts them, and a spin would only take the CPU from
		 * the kernel's network stack and the programs beside us. */
		if (!s->spinning &&
		    2 * atomic_load_explicit(&rt->nspinning, memory_order_relaxed) < rt->n) {
			s->spinning = true;
			atomic_fetch_add_explicit(&rt->nspinning, 1, memory_order_seq_cst);
		}
		if (s->spinning) {
			uint64_t until = kri_now_ns() + (s->ring.inflight ? 0 : spin_ns);
			bool found = false;
			while (!found && kri_now_ns() < until &&
			       !atomic_load_explicit(&rt->stop, memory_order_relaxed)) {
				found = step(s);
				if (!found)
					cpu_relax();
			}
			if (found) {
				maybe_wake(s);
				continue;
			}
		}
		park(s);
	}
	kri_stats_publish(s, kri_now_ns());
	kri_epoch_offline(s);
	if (contained)
		kri_fault_thread_leave(s, &old);
	pthread_mutex_lock(&rt->donelock);
	if (--rt->running == 0)
		pthread_cond_broadcast(&rt->done);
	pthread_mutex_unlock(&rt->donelock);
	return 0;
}

/* Deterministic mode: every scheduler stepped by this thread, in an order
 * drawn from the seeded generator; time is virtual and moves on when the
 * generator says so or when nothing else can happen. */
int kri_sched_run_deterministic(struct kr_runtime *rt)
{
	struct sched *drv = &rt->s[0];
	stack_t old;
	/* One alternate stack serves every scheduler stepped on this thread. */
	int contained = kri_fault_thread_enter(drv, &old) == 0;
	for (unsigned i = 0; i < rt->n; i++) {
		kri_epoch_online(&rt->s[i]);
		rt->s[i].stack_lo = drv->stack_lo;
		rt->s[i].jbp = &drv->jb;
	}
	/* volatile: read again after a fault's jump back here. */
	struct sched *volatile cur = drv;
	if (contained && sigsetjmp(drv->jb, FAULT_SAVEMASK))
		kri_fault_recover(cur);
	while (!atomic_load_explicit(&rt->stop, memory_order_relaxed)) {
		struct sched *s = &rt->s[rnd(drv) % rt->n];
		cur = s;
		kri_fault_switch(s);
		if (rnd(drv) % 64 == 0)
			rt->vnow++;
		if (step(s)) {
			if (rnd(drv) % 16 == 0) {
				kri_epoch_quiesce(s);
				kri_stats_publish(s, kri_now_ns());
			}
			continue;
		}
		kri_epoch_quiesce(s);
		kri_stats_publish(s, kri_now_ns());
		/* Nothing for s: is there anything for anyone? */
		bool busy = atomic_load_explicit(&rt->ipending, memory_order_relaxed);
		uint64_t next = UINT64_MAX;
		for (unsigned i = 0; i < rt->n && !busy; i++) {
			struct sched *o = &rt->s[i];
			busy = o->runnext || kri_runq_len(&o->q);
			uint64_t w = kri_wheel_next(&o->wheel);
			next = w < next ? w : next;
		}
		if (busy)
			continue;
		/* Only I/O can still happen: wait for it, in real time. */
		struct sched *io = 0;
		for (unsigned i = 0; i < rt->n && !io; i++)
			if (rt->s[i].ring.ok && rt->s[i].ring.inflight)
				io = &rt->s[i];
		if (io && next == UINT64_MAX) {
			kri_ring_wait(&io->ring, 1000000u);
			continue;
		}
		if (next != UINT64_MAX) {
			if (next > rt->vnow)
				rt->vnow = next;
			continue;
		}
		break; /* quiescent: no work, no timers */
	}
	for (unsigned i = 0; i < rt->n; i++) {
		kri_stats_publish(&rt->s[i], kri_now_ns());
		kri_epoch_offline(&rt->s[i]);
	}
	if (contained)
		kri_fault_thread_leave(drv, &old);
	return 0;
}
