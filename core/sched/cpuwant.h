/* cpuwant: whether other threads want the CPU a scheduler runs on, the
 * signal that stops a scheduler's spin before a sleep (sched.c,
 * io_spin_window). Read from the kernel's own accounting of the thread. */
#ifndef KR_CPUWANT_H
#define KR_CPUWANT_H

#include <stdbool.h>
#include <stdint.h>

/* An involuntary switch holds for a millisecond: two nodes' spinners on
 * two vCPUs switch each other out now and then, and should spin again
 * soon. The run delay is read at most every CPUWANT_EVERY (a pread of a
 * proc file, ~1 us) and judged over at least that long: the kernel adds a
 * wait to it only once the thread runs, in lumps of a slice, and over 5 ms
 * two krill nodes' round trips on two vCPUs read 13-41 %, over 25 ms at
 * most 20 %. Waiting runnable more than a quarter of the time means
 * another program wants the CPU: krill-http's schedulers beside wrk's
 * threads on the 2-vCPU test VM waited 26-56 % of each 25 ms
 * (docs/performance.md, "The I/O spin beside a load generator"). */
#define CPUWANT_SWITCHED 1000000u
#define CPUWANT_EVERY    25000000u
#define CPUWANT_SHARE    4u

struct cpuwant {
	int fd;         /* /proc/thread-self/schedstat; -1 unopened, -2 none */
	long nivcsw;    /* involuntary switches when last looked, -1 never */
	uint64_t at;    /* when the run delay was last read (ns), 0 never */
	uint64_t delay; /* the thread's run delay then (ns) */
};

void kri_cpuwant_init(struct cpuwant *w);
/* The owning thread, at time now (ns): for how long (ns) to take its CPU
 * as wanted, 0 if not. CPUWANT_SWITCHED if it was switched out against its
 * will since the last call; CPUWANT_EVERY if, over the last CPUWANT_EVERY
 * or more, it waited runnable for more than 1/CPUWANT_SHARE of the time. */
uint64_t kri_cpuwant_hold(struct cpuwant *w, uint64_t now);
void kri_cpuwant_fini(struct cpuwant *w);

#endif
