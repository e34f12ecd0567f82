/* runtime: configuration, start, stop and teardown of a runtime, and the
 * inject queue through which threads that are not schedulers send. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/proc/part.h"
#include "core/proc/remote.h"
#include "core/sched/sched.h"
#include "core/signal/signal.h"
#include "core/timer/timer.h"
#include "core/registry/registry.h"
#include "core/io/io.h"
#include "core/fault/fault.h"
#include "core/fiber/fiber.h"

/* A system-tagged message taken: an I/O event (core/io: where the next
 * receive is armed) or a signal (core/signal). */
static int take_signal(struct sched *s, struct proc *p, struct env *e)
{
	if (e->m.tag == KR_TAG_IO)
		return kri_io_taken(s, p, e);
	return kri_sig_handle(s, p, e);
}

/* The parts built on the process layer, as it calls them (core/proc/part.h):
 * this file starts every part, so it is the one that names them all. */
const struct kri_proc_parts kri_proc_parts = {
    .take_signal = take_signal,
    .exit_notify = kri_sig_exit_notify,
    .exit_drain = kri_sig_drain,
    .side_free = kri_side_free_vecs,
    .names_exit = kri_registry_drop_pid,
    .name_of = kri_registry_name_of,
    .io_exit = kri_io_owner_exit,
    .call_contained = kri_fault_call_contained,
    .timer_cancel = kri_timer_cancel,
    .fiber_free = kri_fiber_free,
};

struct inj {
	struct inj *next;
	kr_pid to;
	struct env *env;
};

void kr_config_init(kr_config *c)
{
	if (!c)
		return;
	memset(c, 0, sizeof(*c));
	c->pin = 1;
	c->numa = 1;
	c->batch = 256;
	c->max_procs = 0;
	c->max_msg = 1u << 20;
	c->spin_us = 50;
	c->slice_us = 100;
	c->seed = 1;
	c->stats = 1;
	c->watchdog_ms = 1000;
	c->log_level = KR_LOG_WARNING;
}

static int check_config(const kr_config *c)
{
	if (c->batch == 0 || c->max_msg == 0 || c->max_msg > (1u << 31) || c->schedulers > 4096 ||
	    c->spin_us > 1000000 || c->slice_us > 100000 || c->watchdog_ms > 3600000 ||
	    c->log_level < KR_LOG_NONE || c->log_level > KR_LOG_DEBUG)
		return -EINVAL;
	return 0;
}

static void rt_free(struct kr_runtime *rt)
{
	kri_stats_close(rt);
	if (rt->s) {
		for (unsigned i = 0; i < rt->n; i++)
			kri_sched_fini(&rt->s[i]);
		free(rt->s);
	}
	kri_slots_fini(&rt->procs, 0);
	kri_slots_fini(&rt->timers, 0);
	if (rt->reg)
		kri_registry_free(rt->reg);
	kri_io_rt_fini(rt);
	if (rt->topo)
		kri_topo_free(rt->topo);
	free(rt->idle);
	free(rt->nodes);
	pthread_mutex_destroy(&rt->flock);
	pthread_mutex_destroy(&rt->ilock);
	pthread_mutex_destroy(&rt->idlelock);
	pthread_mutex_destroy(&rt->donelock);
	pthread_cond_destroy(&rt->done);
	free(rt);
}

static int layout(struct kr_runtime *rt)
{
	bool per_pu = rt->cfg.per_pu != 0;
	unsigned n = kri_topo_layout_count(rt->topo, rt->cfg.schedulers, per_pu);
	struct topo_place *pl = n ? calloc(n, sizeof(*pl)) : 0;
	if (!pl)
		return n ? -ENOMEM : -EINVAL;
	int rc = kri_topo_layout(rt->topo, rt->cfg.schedulers, per_pu, pl);
	if (rc == 0) {
		rt->s = aligned_alloc(64, sizeof(struct sched) * n);
		rt->idle = calloc(n, sizeof(*rt->idle));
		if (!rt->s || !rt->idle)
			rc = -ENOMEM;
		else
			rt->n = n;
	}
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		rc = kri_sched_init(rt, &rt->s[i], i);
		rt->s[i].place = pl[i];
		if (rc) {
			/* Make rt_free's loop see only initialised schedulers. */
			kri_sched_fini(&rt->s[i]);
			rt->n = i;
		}
	}
	unsigned nodes = 0;
	for (unsigned i = 0; i < n; i++)
		nodes = pl[i].numa >= nodes ? pl[i].numa + 1 : nodes;
	if (rc == 0) {
		rt->nodes = aligned_alloc(64, sizeof(*rt->nodes) * nodes);
		if (rt->nodes)
			memset(rt->nodes, 0, sizeof(*rt->nodes) * nodes);
		else
			rc = -ENOMEM;
	}
	for (unsigned i = 0; rc == 0 && i < n; i++)
		rc = kri_bal_init(&rt->s[i].bal, rt->topo, pl, n, i, rt->cfg.numa != 0);
	free(pl);
	return rc;
}

int kr_runtime_new(const kr_config *cfg, kr_runtime **out)
{
	kr_config def;
	struct timespec ts;
	if (!out)
		return -EINVAL;
	if (!cfg) {
		kr_config_init(&def);
		cfg = &def;
	}
	int rc = check_config(cfg);
	if (rc)
		return rc;
	struct kr_runtime *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rt->cfg = *cfg;
	rt->cfg.topology = 0; /* not kept: the caller owns the string */
	pthread_mutex_init(&rt->flock, 0);
	pthread_mutex_init(&rt->ilock, 0);
	pthread_mutex_init(&rt->idlelock, 0);
	pthread_mutex_init(&rt->donelock, 0);
	pthread_cond_init(&rt->done, 0);
	kri_slot_cache_init(&rt->fslots);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	rt->t0_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	uint64_t max = cfg->max_procs ? cfg->max_procs : UINT32_MAX - 1;
	rc = kri_topo_load(cfg->topology, &rt->topo);
	if (!rc)
		rc = kri_slots_init(&rt->procs, sizeof(struct proc), max);
	if (!rc)
		rc = kri_slots_init(&rt->timers, 64, UINT32_MAX - 1);
	if (!rc)
		rc = kri_registry_new(&rt->reg);
	if (!rc)
		rc = kri_io_rt_init(rt);
	if (!rc)
		rc = layout(rt);
	/* Stats are for watching: a machine without /dev/shm still runs.
	 * What dead programs left there goes first, so that /dev/shm does
	 * not fill with them between runs of krilltop --clean. */
	if (!rc && cfg->stats) {
		kri_stats_clean_dead();
		kri_stats_open(rt);
	}
	if (rc) {
		rt_free(rt);
		return rc;
	}
	*out = rt;
	return 0;
}

int kr_start(kr_runtime *rt)
{
	if (!rt)
		return -EINVAL;
	if (rt->cfg.deterministic)
		return -EINVAL;
	if (rt->state != RT_NEW)
		return -EALREADY;
	rt->state = RT_RUNNING;
	rt->running = rt->n;
	kri_fault_install();
	/* Without a watchdog the runtime still runs: it is a safety net. */
	kri_watchdog_start(rt);
	for (unsigned i = 0; i < rt->n; i++) {
		if (pthread_create(&rt->s[i].thread, 0, kri_sched_thread, &rt->s[i])) {
			/* Stop the ones started; they exit at once. */
			atomic_store(&rt->stop, 1);
			kri_sched_wake_all(rt);
			for (unsigned j = 0; j < i; j++)
				pthread_join(rt->s[j].thread, 0);
			kri_fault_uninstall();
			rt->state = RT_DONE;
			return -EAGAIN;
		}
	}
	return 0;
}

int kr_wait(kr_runtime *rt)
{
	if (!rt)
		return -EINVAL;
	if (kri_rt_current == rt)
		return -EDEADLK;
	if (rt->cfg.deterministic) {
		if (rt->state == RT_DONE)
			return 0;
		rt->state = RT_RUNNING;
		kri_rt_current = rt;
		kri_fault_install();
		kri_sched_run_deterministic(rt);
		kri_fault_uninstall();
		kri_rt_current = 0;
		kri_stats_publish_runtime(rt);
		rt->state = RT_DONE;
		return 0;
	}
	if (rt->state == RT_NEW)
		return -EINVAL;
	if (rt->state == RT_DONE)
		return 0;
	/* From now on an empty runtime stops (sched.c, stop_if_empty); the
	 * parked schedulers look again. */
	atomic_store_explicit(&rt->waiting, 1, memory_order_seq_cst);
	kri_sched_wake_all(rt);
	for (unsigned i = 0; i < rt->n; i++)
		pthread_join(rt->s[i].thread, 0);
	kri_watchdog_stop(rt);
	kri_fault_uninstall();
	/* The schedulers are gone: we are the runtime block's only writer. */
	kri_stats_publish_runtime(rt);
	rt->state = RT_DONE;
	return 0;
}

int kr_run(kr_runtime *rt)
{
	if (rt && !rt->cfg.deterministic) {
		int rc = kr_start(rt);
		if (rc && rc != -EALREADY)
			return rc;
	}
	return kr_wait(rt);
}

void kr_stop(kr_runtime *rt)
{
	if (!rt)
		return;
	atomic_store_explicit(&rt->stop, 1, memory_order_seq_cst);
	kri_sched_wake_all(rt);
}

void kr_runtime_free(kr_runtime *rt)
{
	if (!rt)
		return;
	if (rt->state == RT_RUNNING) {
		kr_stop(rt);
		kr_wait(rt);
	}
	/* The node's threads first: they send from outside (kr_rt_*). */
	const struct kri_remote *r = atomic_load_explicit(&rt->remote, memory_order_acquire);
	if (r)
		r->fini(rt);
	/* The node is gone: the exit hooks of the processes ended below
	 * must not find it (dist/node.c's watch_exit). Release: as set. */
	atomic_store_explicit(&rt->remote, (const struct kri_remote *)0, memory_order_release);
	/* Every process still alive, quietly (stop set: exits notify
	 * nobody), with their exit hooks' faults contained on this thread;
	 * then undelivered foreign messages, those the hooks sent included. */
	atomic_store(&rt->stop, 1);
	struct fault_host fh;
	bool hooked = atomic_load_explicit(&rt->hooked, memory_order_relaxed);
	if (hooked)
		kri_fault_host_enter(&rt->s[0], &fh);
	kri_proc_destroy_all(rt);
	if (hooked)
		kri_fault_host_leave(&rt->s[0], &fh);
	struct inj *i = rt->ihead;
	while (i) {
		struct inj *n = i->next;
		env_free(0, i->env);
		free(i);
		i = n;
	}
	rt->ihead = rt->itail = 0;
	rt_free(rt);
}

int kri_remote_set(struct kr_runtime *rt, const struct kri_remote *r)
{
	const struct kri_remote *none = 0;
	/* Release: whoever reads the pointer (acquire) sees the node whole. */
	return atomic_compare_exchange_strong_explicit(&rt->remote, &none, r, memory_order_release,
						       memory_order_relaxed)
		   ? 0
		   : -EALREADY;
}

int kri_api_on_scheduler(void)
{
	return kri_api_sched() != 0;
}

const struct kri_remote *kri_remote_get(struct kr_runtime *rt)
{
	return atomic_load_explicit(&rt->remote, memory_order_acquire);
}

unsigned kr_schedulers(const kr_runtime *rt)
{
	return rt ? rt->n : 0;
}

uint64_t kr_alive(const kr_runtime *rt)
{
	return rt ? kri_rt_alive(rt) : 0;
}

/* ---- the inject queue ------------------------------------------------- */

static int rt_send_in(kr_runtime *rt, kr_pid to, uint32_t tag, const void *data, size_t len)
{
	if (!rt)
		return -EINVAL;
	/* Stopping or stopped: the message would never be delivered. */
	if (rt_closed(rt))
		return -ESHUTDOWN;
	int err = kri_proc_check_send(rt, 0, tag, data, len);
	if (err)
		return err;
	/* Reading the generation needs no epoch: slots are never unmapped. */
	if (!kri_proc_lookup(rt, to, &err))
		return err == -ESRCH && pid_remote(to) ? kri_remote_send(rt, 0, to, tag, data, len)
						       : err;
	struct env *e = env_new(0, tag, data, len);
	if (!e)
		return -ENOMEM;
	return kri_inject(rt, to, e);
}

int kr_rt_send(kr_runtime *rt_, kr_pid to, uint32_t tag, const void *data, size_t len)
{
	struct sched *s = kri_api_sched();
	api_enter(s);
	int rc = rt_send_in(rt_, to, tag, data, len);
	api_leave(s);
	return rc;
}

/* Queue e for pid from a thread that is not a scheduler; takes e. */
int kri_inject(struct kr_runtime *rt, kr_pid to, struct env *e)
{
	struct inj *i = malloc(sizeof(*i));
	if (!i) {
		env_free(0, e);
		return -ENOMEM;
	}
	i->next = 0;
	i->to = to;
	i->env = e;
	/* Counted here, off the message path (a foreign send takes a lock
	 * anyway): the scheduler that frees it counts it off its own arena. */
	atomic_fetch_add_explicit(&rt->fenv, (int64_t)env_size(e->m.len), memory_order_relaxed);
	pthread_mutex_lock(&rt->ilock);
	if (rt->itail)
		rt->itail->next = i;
	else
		rt->ihead = i;
	rt->itail = i;
	atomic_store_explicit(&rt->ipending, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&rt->ilock);
	/* Wake a scheduler if all sleep (the store above was seq_cst). */
	if (rt->state == RT_RUNNING)
		kri_sched_wakep(rt);
	return 0;
}

bool kri_inject_drain(struct kr_runtime *rt, struct sched *s)
{
	int zero = 0;
	/* One drainer at a time keeps each thread's messages in order. */
	if (!atomic_compare_exchange_strong_explicit(&rt->idelivering, &zero, 1,
						     memory_order_acquire, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&rt->ilock);
	struct inj *i = rt->ihead;
	rt->ihead = rt->itail = 0;
	atomic_store_explicit(&rt->ipending, 0, memory_order_relaxed);
	pthread_mutex_unlock(&rt->ilock);
	bool any = i != 0;
	while (i) {
		struct inj *n = i->next;
		kri_proc_deliver(s, i->to, i->env);
		free(i);
		i = n;
	}
	atomic_store_explicit(&rt->idelivering, 0, memory_order_release);
	return any;
}
