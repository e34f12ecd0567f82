/* crashfloor: the crash benchmark's floor. Each thread faults on a store
 * to address 0 and jumps back from the SIGSEGV handler, cycle after cycle,
 * the way a scheduler thread contains a crash (core/fault/fault.c) minus the
 * runtime: what is left is the kernel's fault delivery and the jump. */
#include "crashfloor.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* As core/fault/fault.c and core/sched/sched.h: an alternate stack of this size, the
 * handler on it with SA_NODEFER and an empty sa_mask, so the jump back
 * restores no mask (no syscall); sanitizer builds, whose interposed handler
 * may block more, restore it as the runtime's do. */
#define ALTSTACK (64 * 1024)
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SAVEMASK 1
#else
#define SAVEMASK 0
#endif

struct floor_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned ready;
	bool go, abort;
};

struct floor_thread {
	pthread_t thread;
	struct floor_gate *gate;
	uint64_t cycles;
	double t_end;
	int err;
};

/* Where this thread's fault jumps to; NULL outside its loop. */
static _Thread_local sigjmp_buf *floor_jb;

static int *volatile floor_null;

__attribute__((noinline, no_sanitize("undefined"))) static void fault_now(void)
{
	*(volatile int *)floor_null = 1;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	sigjmp_buf *jb = floor_jb;
	if (jb)
		siglongjmp(*jb, 1);
	/* A real fault, not ours: returning re-executes it, now fatal. */
	signal(sig, SIG_DFL);
}

/* Ready, then wait for the start; false if the run was called off. */
static bool gate_wait(struct floor_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->ready++;
	pthread_cond_broadcast(&g->cond);
	while (!g->go)
		pthread_cond_wait(&g->cond, &g->lock);
	bool run = !g->abort;
	pthread_mutex_unlock(&g->lock);
	return run;
}

static void *floor_main(void *arg)
{
	struct floor_thread *t = arg;
	sigjmp_buf jb;
	volatile uint64_t left = t->cycles;
	stack_t old, st = {.ss_size = ALTSTACK};
	st.ss_sp = mmap(0, ALTSTACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (st.ss_sp == MAP_FAILED)
		t->err = -ENOMEM;
	else if (sigaltstack(&st, &old))
		t->err = -errno;
	/* Everyone passes the gate, failed or not, so that main can call
	 * the run off without leaving anyone waiting. */
	if (!gate_wait(t->gate) || t->err)
		goto out;
	floor_jb = &jb;
	/* Once, as a scheduler thread does: every fault lands here. */
	if (sigsetjmp(jb, SAVEMASK))
		left--;
	while (left)
		fault_now();
	t->t_end = mono_s();
	floor_jb = 0;
out:
	if (st.ss_sp != MAP_FAILED) {
		if (!t->err)
			sigaltstack(&old, 0);
		munmap(st.ss_sp, ALTSTACK);
	}
	return 0;
}

int crash_floor(unsigned threads, uint64_t cycles, double *rate)
{
	struct floor_gate gate = {.lock = PTHREAD_MUTEX_INITIALIZER,
				  .cond = PTHREAD_COND_INITIALIZER};
	struct sigaction sa, old;
	unsigned made = 0;
	int rc = 0;

	if (!threads || !rate)
		return -EINVAL;
	struct floor_thread *t = calloc(threads, sizeof *t);
	if (!t)
		return -ENOMEM;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old)) {
		rc = -errno;
		free(t);
		return rc;
	}
	for (; made < threads; made++) {
		t[made].gate = &gate;
		t[made].cycles = cycles / threads + (made < cycles % threads);
		if ((rc = pthread_create(&t[made].thread, 0, floor_main, &t[made])) != 0) {
			rc = -rc;
			break;
		}
	}
	pthread_mutex_lock(&gate.lock);
	while (gate.ready < made)
		pthread_cond_wait(&gate.cond, &gate.lock);
	double t0 = mono_s();
	gate.go = true;
	gate.abort = rc != 0;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
	double t1 = t0;
	for (unsigned i = 0; i < made; i++) {
		pthread_join(t[i].thread, 0);
		if (t[i].err && !rc)
			rc = t[i].err;
		if (t[i].t_end > t1)
			t1 = t[i].t_end;
	}
	sigaction(SIGSEGV, &old, 0);
	free(t);
	if (rc)
		return rc;
	*rate = t1 > t0 ? (double)cycles / (t1 - t0) : 0;
	return 0;
}
