/* fault: containment of native faults (fault.c) and the runaway watchdog
 * (watchdog.c). */
#ifndef KR_FAULT_H
#define KR_FAULT_H

#include <signal.h>

#include "core/proc/proc.h"

/* sigsetjmp's savemask. The handler runs with SA_NODEFER and an empty
 * sa_mask, so nothing more is blocked when it jumps back and no mask needs
 * restoring: that saves a system call per crash. A sanitizer's handler,
 * interposed in front of ours, may block more: those builds restore it. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAULT_SAVEMASK 1
#else
#define FAULT_SAVEMASK 0
#endif
int kri_fault_install(void);
void kri_fault_uninstall(void);
int kri_fault_thread_enter(struct sched *s, stack_t *old);
void kri_fault_thread_leave(struct sched *s, const stack_t *old);
void kri_fault_switch(struct sched *s);
void kri_fault_recover(struct sched *s);
int kri_fault_call_contained(struct sched *s, kr_exit_hook fn, void *arg, const kr_exit_info *info,
			     kr_fault *f);
/* Containment lent to the thread in kr_runtime_free (fault.c). */
struct fault_host {
	stack_t old;
	struct sched *prev;
	int stack;
};
void kri_fault_host_enter(struct sched *s, struct fault_host *h);
void kri_fault_host_leave(struct sched *s, struct fault_host *h);

/* watchdog.c */
int kri_watchdog_start(struct kr_runtime *rt);
void kri_watchdog_stop(struct kr_runtime *rt);
void kri_watchdog_kill(struct kr_runtime *rt, kr_pid pid);

#endif
