/* watchdog: runaway processes. A behaviour must return, but a bug can make
 * one loop forever, and stackless processes cannot be preempted between
 * instructions as BEAM's reductions preempt Erlang code. One thread per
 * runtime samples each scheduler's count of behaviour calls a few times per
 * watchdog_ms; a scheduler inside the same call for longer is marked stuck
 * and an idle scheduler is woken to steal its queue. A KR_KILL sent to the
 * pid it runs interrupts the call with SIGURG (as Go preempts goroutines):
 * the handler jumps back to the scheduler loop like a fault, and the
 * process ends with KR_KILLED.
 * The caveat, stated: a call interrupted while inside libc holding a lock
 * (malloc's, stdio's) leaves that lock held. Interrupting only calls that
 * have run for watchdog_ms, and only on an explicit KR_KILL, keeps that a
 * last resort rather than a routine. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "core/sched/sched.h"
#include "core/fault/fault.h"

static void *watch(void *arg)
{
	struct kr_runtime *rt = arg;
	unsigned period = rt->cfg.watchdog_ms / 4 ? rt->cfg.watchdog_ms / 4 : 1;
	uint64_t *last = calloc(rt->n, sizeof(*last));
	unsigned *still = calloc(rt->n, sizeof(*still));
	if (!last || !still)
		goto out;
	pthread_mutex_lock(&rt->donelock);
	while (rt->watching) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(period % 1000) * 1000000;
		ts.tv_sec += period / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&rt->done, &rt->donelock, &ts);
		for (unsigned i = 0; i < rt->n && rt->watching; i++) {
			struct sched *s = &rt->s[i];
			uint64_t c = atomic_load_explicit(&s->calls, memory_order_relaxed);
			int in = atomic_load_explicit(&s->in_beh, memory_order_relaxed);
			if (!in || c != last[i]) {
				last[i] = c;
				still[i] = 0;
				atomic_store_explicit(&s->stuck, 0, memory_order_relaxed);
				continue;
			}
			if (++still[i] * period >= rt->cfg.watchdog_ms &&
			    !atomic_exchange_explicit(&s->stuck, 1, memory_order_relaxed))
				kri_sched_wakep(rt);
		}
	}
	pthread_mutex_unlock(&rt->donelock);
out:
	free(last);
	free(still);
	return 0;
}

int kri_watchdog_start(struct kr_runtime *rt)
{
	if (!rt->cfg.watchdog_ms)
		return 0;
	rt->watching = true;
	if (pthread_create(&rt->watchdog, 0, watch, rt)) {
		rt->watching = false;
		return -EAGAIN;
	}
	return 0;
}

void kri_watchdog_stop(struct kr_runtime *rt)
{
	pthread_mutex_lock(&rt->donelock);
	bool was = rt->watching;
	rt->watching = false;
	pthread_cond_broadcast(&rt->done);
	pthread_mutex_unlock(&rt->donelock);
	if (was)
		pthread_join(rt->watchdog, 0);
}

/* A KR_KILL was sent to pid: if a stuck scheduler is running it, stop it. */
void kri_watchdog_kill(struct kr_runtime *rt, kr_pid pid)
{
	for (unsigned i = 0; i < rt->n; i++) {
		struct sched *s = &rt->s[i];
		if (!atomic_load_explicit(&s->stuck, memory_order_relaxed) ||
		    atomic_load_explicit(&s->running, memory_order_relaxed) != pid)
			continue;
		atomic_store_explicit(&s->kill_req, pid, memory_order_release);
		pthread_kill(s->thread, SIGURG);
	}
}
