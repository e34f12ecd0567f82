/* krill-bench crash: --children of a one_for_one supervisor crash (a real SIGSEGV) and are
 * restarted, --cycles times; also the time from a crash to the DOWN of a watcher.
 * Written on krill.h alone; main.c picks it from the command line. */
#include "bench.h"
#include "crashfloor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A one_for_one supervisor of --children children, with an intensity no run reaches. Each
 * child, when the supervisor's init message says it is up, announces itself to the driver;
 * the driver answers T_CRASH and the child faults (a real store to address 0), the runtime
 * contains the fault, the supervisor gets the exit and starts the child again, which
 * announces itself again: one cycle. The clock runs from the moment every first child is up
 * to the moment the --cycles-th restarted child is.
 * kill_to_down: every so often the driver hands a child to the watcher instead, an otherwise
 * idle process, which monitors it and tells it to crash with a timestamp (sent to the
 * watcher just before the fault); the figure is from that stamp to the DOWN at the watcher.
 * One sample at a time; a child handed over meanwhile is crashed unwatched.
 * floor_rate: once the runtime has stopped, the same --cycles bare fault-and-jump cycles on
 * as many threads (crashfloor.c), what the kernel alone allows; of_floor is rate over it. */
enum { CRASH_SAMPLES = 10000 };

struct crash_run {
	uint64_t children, cycles;
	kr_pid *first;    /* the first incarnations, crashed together at the start */
	uint64_t *lat_ns; /* written by the watcher */
	/* Written by the driver (nlat by the watcher), read by main after kr_run. */
	double t_start, t_end;
	uint64_t rss_start, rss_end, born, nlat;
	uint32_t sup_reason;
};

struct crash_driver {
	struct crash_run *run;
	kr_pid sup, watcher;
	uint64_t born, crashes, every;
};

struct crash_watcher {
	struct crash_run *run;
	kr_pid watched;
	uint64_t stamp;
	bool stamped;
};

/* A real store to address 0. The pointer is volatile (zero at run time) so the compiler can
 * neither fold the store nor drop it as undefined; UBSan is told it is meant. */
static int *volatile crash_null;

__attribute__((noinline, no_sanitize("undefined"))) static void crash_now(void)
{
	*(volatile int *)crash_null = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void crash_child(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	kr_pid driver, self = kr_self(ctx);
	kr_pid stamp_to;

	memcpy(&driver, state, sizeof driver);
	switch (msg->tag) {
	case T_UP:
		post(ctx, driver, T_BORN, &self, sizeof self);
		return;
	case T_CRASH:
		/* payload: 0, or the watcher to send the time of the fault to */
		if (!take(ctx, msg, &stamp_to, sizeof stamp_to, "crash child"))
			return;
		if (stamp_to)
			post_u64(ctx, stamp_to, T_STAMP, mono_ns());
		crash_now();
		return;
	}
	unexpected(ctx, "crash child", msg);
}

static void crash_watcher(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct crash_watcher *w = state;
	struct crash_run *run = w->run;
	kr_exit_info x;
	kr_pid pid, self = kr_self(ctx), none = 0;
	uint64_t ref;
	int rc;

	switch (msg->tag) {
	case T_CRASH: /* from the driver: crash this one */
		if (!take(ctx, msg, &pid, sizeof pid, "crash watcher"))
			return;
		if (w->watched || run->nlat == CRASH_SAMPLES) {
			post(ctx, pid, T_CRASH, &none, sizeof none);
			return;
		}
		if ((rc = kr_monitor(ctx, pid, &ref)) < 0) {
			fail_kr(ctx, "kr_monitor", rc);
			return;
		}
		w->watched = pid;
		w->stamped = false;
		post(ctx, pid, T_CRASH, &self, sizeof self);
		return;
	case T_STAMP:
		if (take(ctx, msg, &w->stamp, sizeof w->stamp, "crash watcher"))
			w->stamped = true;
		return;
	case KR_TAG_DOWN:
		memcpy(&x, msg->data, offsetof(kr_exit_info, payload));
		if (x.pid != w->watched || !w->stamped || x.reason != KR_FAULT) {
			unexpected(ctx, "crash watcher", msg);
			return;
		}
		run->lat_ns[run->nlat++] = mono_ns() - w->stamp;
		w->watched = 0;
		return;
	case T_STOP:
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "crash watcher", msg);
}

/* Crash pid, through the watcher every d->every crashes. */
static bool crash_one(kr_ctx *ctx, struct crash_driver *d, kr_pid pid)
{
	static const kr_pid none;
	if (d->crashes++ % d->every == 0)
		return post(ctx, d->watcher, T_CRASH, &pid, sizeof pid);
	return post(ctx, pid, T_CRASH, &none, sizeof none);
}

static void crash_driver(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct crash_driver *d = state;
	struct crash_run *run = d->run;
	kr_exit_info x;
	kr_pid pid;
	int rc;

	switch (msg->tag) {
	case T_START: {
		kr_pid self = kr_self(ctx);
		kr_sup_flags flags = {KR_ONE_FOR_ONE, UINT32_MAX, 1000};
		kr_child_spec spec = {
		    .id = "crasher",
		    .start = crash_child,
		    .arg = &self,
		    .arg_len = sizeof self,
		    .restart = KR_PERMANENT,
		    .shutdown_ms = 1000,
		    .init_tag = T_UP,
		};
		struct crash_watcher w = {.run = run};
		if (!spawn(ctx, crash_watcher, &w, sizeof w, &d->watcher))
			return;
		/* Trap exits: the supervisor's end, which we ask for, must not end us. */
		kr_trap_exit(ctx, 1);
		if ((rc = kr_sup_spawn(ctx, &flags, &spec, 1, &d->sup)) < 0) {
			fail_kr(ctx, "kr_sup_spawn", rc);
			return;
		}
		/* The others as children started on request (ids need not be unique
		 * there): the same spec, the same restarts. */
		for (uint64_t i = 1; i < run->children; i++)
			if ((rc = kr_sup_start_child(ctx, d->sup, &spec, T_ADDED)) < 0) {
				fail_kr(ctx, "kr_sup_start_child", rc);
				return;
			}
		return;
	}
	case T_ADDED: {
		kr_sup_reply r;
		if (take(ctx, msg, &r, sizeof r, "crash driver") && r.rc < 0)
			fail_kr(ctx, "kr_sup_start_child", r.rc);
		return;
	}
	case T_BORN:
		if (!take(ctx, msg, &pid, sizeof pid, "crash driver"))
			return;
		if (++d->born <= run->children) {
			run->first[d->born - 1] = pid;
			if (d->born < run->children)
				return;
			if ((rc = rss_bytes(&run->rss_start)) < 0) {
				fail_kr(ctx, "/proc/self/statm", rc);
				return;
			}
			run->t_start = now();
			for (uint64_t i = 0; i < run->children && d->crashes < run->cycles; i++)
				if (!crash_one(ctx, d, run->first[i]))
					return;
			return;
		}
		if (d->born < run->children + run->cycles) {
			if (d->crashes < run->cycles)
				crash_one(ctx, d, pid);
			return;
		}
		/* Every cycle done: the last restarted child is up. */
		run->t_end = now();
		run->born = d->born;
		if ((rc = rss_bytes(&run->rss_end)) < 0) {
			fail_kr(ctx, "/proc/self/statm", rc);
			return;
		}
		post(ctx, d->watcher, T_STOP, NULL, 0);
		if ((rc = kr_send_exit(ctx, d->sup, KR_SHUTDOWN)) < 0)
			fail_kr(ctx, "kr_send_exit", rc);
		return;
	case KR_TAG_EXIT:
		memcpy(&x, msg->data, offsetof(kr_exit_info, payload));
		if (x.pid != d->sup) {
			unexpected(ctx, "crash driver", msg);
			return;
		}
		run->sup_reason = x.reason;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "crash driver", msg);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

int run_crash(kr_runtime *rt, const struct params *p)
{
	struct crash_run run = {.children = p->children, .cycles = p->cycles};
	kr_pid driver;
	double t_end;
	int rc, status = 2;

	run.first = malloc(run.children * sizeof *run.first);
	run.lat_ns = malloc(CRASH_SAMPLES * sizeof *run.lat_ns);
	if (!run.first || !run.lat_ns) {
		status = out_of_memory();
		goto out;
	}
	/* Aim at twice the samples kept: one at a time, some find the watcher busy. */
	struct crash_driver d = {.run = &run};
	d.every = run.cycles / (2 * CRASH_SAMPLES) > 1 ? run.cycles / (2 * CRASH_SAMPLES) : 1;
	if ((rc = kr_rt_spawn(rt, crash_driver, &d, sizeof d, &driver)) < 0) {
		status = bench_error("kr_rt_spawn", rc);
		goto out;
	}
	if ((rc = kr_rt_send(rt, driver, T_START, NULL, 0)) < 0) {
		status = bench_error("kr_rt_send", rc);
		goto out;
	}
	if ((status = run_runtime(rt, &t_end)) != 0)
		goto out;

	double secs = run.t_end - run.t_start, med = 0, p99 = 0;
	if (run.nlat) {
		qsort(run.lat_ns, run.nlat, sizeof *run.lat_ns, cmp_u64);
		med = (double)run.lat_ns[run.nlat / 2] / 1e3;
		p99 = (double)run.lat_ns[run.nlat * 99 / 100] / 1e3;
	}
	uint64_t alive = kr_alive(rt);
	/* The floor after the run, when the runtime's handler is gone again: the same cycles on
	 * as many threads, with nothing but the kernel's fault and the jump back. */
	double floor_rate = 0, rate = per_second((double)run.cycles, secs);
	if (p->floor && (rc = crash_floor(kr_schedulers(rt), run.cycles, &floor_rate)) < 0) {
		status = bench_error("crash floor", rc);
		goto out;
	}
	print_head(rt, p, secs, (double)run.cycles);
	printf(",\"children\":%" PRIu64 ",\"cycles\":%" PRIu64 ",\"restarts\":%" PRIu64
	       ",\"kill_to_down_us\":%.2f,\"kill_to_down_p99_us\":%.2f,\"kill_to_down_samples\":"
	       "%" PRIu64 ",\"rss_start_bytes\":%" PRIu64 ",\"rss_end_bytes\":%" PRIu64,
	       run.children, run.cycles, run.born - run.children, med, p99, run.nlat, run.rss_start,
	       run.rss_end);
	if (p->floor)
		printf(",\"floor_rate\":%.1f,\"of_floor\":%.3f", floor_rate,
		       floor_rate > 0 ? rate / floor_rate : 0);
	print_tail();
	if (run.born != run.children + run.cycles || run.sup_reason != KR_SHUTDOWN || alive != 0) {
		fprintf(stderr,
			"krill-bench: crash: %" PRIu64 " of %" PRIu64 " restarts, supervisor"
			" reason %" PRIu32 ", %" PRIu64 " left alive\n",
			run.born - run.children, run.cycles, run.sup_reason, alive);
		status = 1;
	}
out:
	free(run.first);
	free(run.lat_ns);
	return status;
}
