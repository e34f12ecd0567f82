/* krill-bench idle: the CPU an idle runtime uses while it holds --procs waiting processes.
 * Written on krill.h alone; main.c picks it from the command line. */
#include "bench.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* --procs processes spawned from the main thread wait for a message while the runtime sits
 * idle for --seconds; the figure is the CPU the whole program used meanwhile (getrusage),
 * in percent of one core. An idle runtime should sleep, not spin. */
static void idle_child(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	kr_exit(ctx, KR_NORMAL);
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

int run_idle(kr_runtime *rt, const struct params *p)
{
	kr_pid *pids = malloc(p->procs * sizeof(*pids));
	uint64_t state = 0;
	int rc;
	if (!pids)
		return out_of_memory();
	for (uint64_t i = 0; i < p->procs; i++) {
		rc = kr_rt_spawn(rt, idle_child, &state, sizeof(state), &pids[i]);
		if (rc < 0) {
			free(pids);
			return bench_error("kr_rt_spawn", rc);
		}
	}
	rc = kr_start(rt);
	if (rc < 0) {
		free(pids);
		return bench_error("kr_start", rc);
	}
	/* Let the schedulers finish their start-up spin before measuring. */
	usleep(200000);
	double c0 = cpu_seconds(), t0 = now();
	usleep((useconds_t)(p->seconds * 1000000));
	double cpu = cpu_seconds() - c0, wall = now() - t0;
	for (uint64_t i = 0; i < p->procs; i++)
		kr_rt_send(rt, pids[i], 0, NULL, 0);
	double t_end;
	int status = run_runtime(rt, &t_end);
	free(pids);
	if (status)
		return status;
	print_head(rt, p, wall, 0);
	printf(",\"procs\":%" PRIu64 ",\"cpu_seconds\":%.4f,\"cpu_percent\":%.3f", p->procs, cpu,
	       100.0 * cpu / wall);
	print_tail();
	return 0;
}
