/* part: how the parts built on the process layer (links and monitors,
 * names, I/O ownership, timers) hear of what happens to a process. The
 * process layer calls them through this one table and names none of them;
 * core/sched/runtime.c, which knows every part, fills it. Each call is
 * guarded by what says the part holds something for the process (a flag
 * in aflags, a side-record field, a system tag), so a process that uses
 * none of them pays for none: the send, run and exit of a plain process
 * make no call through the table. */
#ifndef KR_PART_H
#define KR_PART_H

#include <stddef.h>
#include <stdint.h>

#include "krill.h"

struct env;
struct proc;
struct kr_runtime;
struct sched;
struct side;

/* How a process ended, as the parts are told it. */
struct exit_note {
	kr_pid self;
	uint32_t reason;
	uint32_t plen;
	const void *payload;
};

struct kri_proc_parts {
	/* A system-tagged envelope that take() found among p's messages:
	 * TAKE_KEEP (hand it to the behaviour), TAKE_DROP or TAKE_DIE (the
	 * context's reason is set). Signals (link.c); I/O events, whose
	 * socket's next receive is armed on this scheduler (core/io/io.c). */
	int (*take_signal)(struct sched *s, struct proc *p, struct env *e);
	/* p, which has a side record, has ended and will be told nothing
	 * more: tell its links and monitors (link.c). */
	void (*exit_notify)(struct sched *s, struct proc *p, const struct exit_note *x);
	/* Envelopes p never handled: freed, the signals among them answered
	 * as if they had come just before the end (link.c). */
	void (*exit_drain)(struct sched *s, struct env *list, const struct exit_note *x);
	/* What the side record holds for links and monitors goes (link.c). */
	void (*side_free)(struct sched *s, struct side *side);
	/* p had P_NAMED: its names go (registry.c). */
	void (*names_exit)(struct kr_runtime *rt, kr_pid pid);
	/* p had P_NAMED: the name it holds into buf (len bytes, at least
	 * KR_NAME_MAX + 1), before names_exit drops it; 0, or -ENOENT if it
	 * holds none (registry.c). Only for a crash report. */
	int (*name_of)(struct kr_runtime *rt, kr_pid pid, char *buf, size_t len);
	/* p had P_IO: the handles it owns close (core/io/io.c). */
	void (*io_exit)(struct kr_runtime *rt, kr_pid pid);
	/* Call an exit hook with its faults contained: 0 if it returned, 1
	 * if it faulted (*f says how) or was killed (f->signo 0) and was
	 * left (core/fault/fault.c). */
	int (*call_contained)(struct sched *s, kr_exit_hook fn, void *arg, const kr_exit_info *info,
			      kr_fault *f);
	/* A receive timeout (side->rto) is disarmed (timer.c). */
	int (*timer_cancel)(struct kr_runtime *rt, struct sched *s, kr_timer t);
	/* p had P_FIBER: its stacks go (core/fiber/fiber.c). */
	void (*fiber_free)(struct sched *s, void *state);
};

extern const struct kri_proc_parts kri_proc_parts;

#endif
