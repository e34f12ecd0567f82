/* fault: containment of native faults. A SIGSEGV, SIGBUS, SIGFPE, SIGILL
 * or SIGABRT (and SIGTRAP on aarch64) raised while a scheduler runs a
 * process's behaviour ends that process alone, with KR_FAULT and a kr_fault
 * naming the signal and the address; its links and monitors fire and the
 * scheduler carries on.
 *
 * How: each scheduler thread calls sigsetjmp once, when it starts, and
 * marks the span of each behaviour call with a plain store (in_beh). The
 * handler, on an alternate signal stack (so a stack overflow can be
 * handled at all), checks that mark and siglongjmps back to the
 * scheduler's loop, which frees the message being handled and exits the
 * process. Nothing per message but the two stores: no setjmp, no syscall.
 * The handler runs with SA_NODEFER and an empty sa_mask, so the jump back
 * needs no mask restored (FAULT_SAVEMASK, rt.h): no syscall per crash
 * either. Sanitizer builds save and restore it, since their interposed
 * handler may block more signals.
 *
 * Why it is sound: processes share no memory, so a crashed process can have
 * corrupted only its own state, which is discarded. The runtime's own
 * structures are consistent whenever a behaviour runs: the calls a
 * behaviour makes into the runtime copy the caller's arguments before they
 * change anything, so a bad pointer faults before any shared state moves
 * (it may leak the one allocation in progress). What a crash can leave
 * behind is what the behaviour itself acquired outside krill: memory it
 * malloc'd and kept only in its state, a lock it held, a file it opened.
 * A fault anywhere else (the runtime itself, a foreign thread) is fatal:
 * the handler says one line (fatal_line: the runtime's log if it is
 * declared async-signal-safe, else one write to stderr) and the default
 * action follows. An exit hook (kr_on_exit) is contained as a behaviour is,
 * with a jump back to kri_fault_call_contained instead of the loop; and
 * kr_runtime_free, which runs the hooks of processes left alive on its own
 * thread, borrows a scheduler's containment for it (kri_fault_host_*). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/sched/sched.h"
#include "core/proc/deliver.h"
#include "core/fault/fault.h"
#include "core/fiber/fiber.h"

/* SIGTRAP on aarch64 only: there the compiler's trap (__builtin_trap, a
 * sanitizer's trap mode) is BRK, which raises SIGTRAP where x86-64's UD2
 * raises SIGILL. */
#if defined(__aarch64__)
static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGURG, SIGTRAP};
#else
static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGURG};
#endif
#define NSIG_FAULT (sizeof(fault_signals) / sizeof(fault_signals[0]))

static struct sigaction previous[NSIG_FAULT];
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned installed;

/* The scheduler this thread is running a behaviour for, if any. */
static _Thread_local struct sched *fault_sched;

#define ALTSTACK (64 * 1024)

/* v as 0x and 16 hex digits, into b[19]. */
static void hex(char *b, uint64_t v)
{
	b[0] = '0';
	b[1] = 'x';
	for (int i = 0; i < 16; i++)
		b[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
	b[18] = 0;
}

/* The last line before a fatal fault kills the program, built without
 * stdio (we are in a signal handler) and said with one write, or through
 * the runtime's log if it is declared async-signal-safe (kr_config). A
 * thread that is no scheduler's knows no runtime: stderr. */
static void fatal_line(const struct sched *s, int sig, uint64_t addr, uint64_t pc)
{
	char line[160];
	size_t n = 0;
	const char *parts[] = {"krill: fatal fault outside any process: signal ",
			       0,
			       "at address ",
			       0,
			       ", pc ",
			       0,
			       s ? " (in scheduler code)" : " (not a scheduler thread)"};
	char num[4] = {(char)('0' + sig / 10), (char)('0' + sig % 10), ' ', 0};
	char ha[19], hp[19];
	hex(ha, addr);
	hex(hp, pc);
	parts[1] = num;
	parts[3] = ha;
	parts[5] = hp;
	for (unsigned i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		for (const char *c = parts[i]; *c && n < sizeof(line) - 2; c++)
			line[n++] = *c;
	line[n] = 0;
	const kr_config *cfg = s ? &s->rt->cfg : 0;
	if (cfg && cfg->log_level < KR_LOG_ERROR)
		return;
	if (cfg && cfg->log && cfg->log_signal_safe) {
		cfg->log(cfg->log_arg, KR_LOG_ERROR, line);
		return;
	}
	line[n++] = '\n';
	ssize_t r = write(2, line, n);
	(void)r;
}

static int index_of(int sig)
{
	for (unsigned i = 0; i < NSIG_FAULT; i++)
		if (fault_signals[i] == sig)
			return (int)i;
	return -1;
}

static void handler(int sig, siginfo_t *si, void *uc_)
{
	struct sched *s = fault_sched;
	ucontext_t *uc = uc_;
	uint64_t pc = 0;
#if defined(__x86_64__)
	pc = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	pc = uc->uc_mcontext.pc;
#endif
	if (sig == SIGURG) {
		/* watchdog_kill: only if the stuck call is still that pid's,
		 * and never inside the runtime: then at the way out. */
		kr_pid want = s ? atomic_load_explicit(&s->kill_req, memory_order_acquire) : 0;
		/* want 0 is no request: an exit hook runs with running 0. */
		if (s && want && atomic_load_explicit(&s->in_beh, memory_order_relaxed) &&
		    want == atomic_load_explicit(&s->running, memory_order_relaxed)) {
			if (s->in_rt) {
				s->kill_pending = 1;
				return;
			}
			kri_api_kill_now(s);
		}
		return;
	}
	if (s && atomic_load_explicit(&s->in_beh, memory_order_relaxed)) {
		atomic_store_explicit(&s->in_beh, 0, memory_order_relaxed);
		s->fault.signo = sig;
		s->fault.code = si->si_code;
		s->fault.addr = (uint64_t)(uintptr_t)si->si_addr;
		s->fault.pc = pc;
		uintptr_t a = (uintptr_t)si->si_addr;
		s->fault.stack_overflow =
		    sig == SIGSEGV && ((a >= s->stack_lo - 65536 && a < s->stack_lo + 4096) ||
				       (s->fiber_lo && a >= s->fiber_lo - 4096 && a < s->fiber_lo));
		if (s->fiber)
			kri_fiber_escape(s);
		siglongjmp(*s->jbp, 1);
	}
	/* Not a behaviour's fault. A handler installed before ours gets it
	 * (a sanitizer, the program's own); else report and die. */
	int i = index_of(sig);
	if (i >= 0 && (previous[i].sa_flags & SA_SIGINFO) && previous[i].sa_sigaction) {
		previous[i].sa_sigaction(sig, si, uc_);
		return;
	}
	if (i >= 0 && !(previous[i].sa_flags & SA_SIGINFO) && previous[i].sa_handler != SIG_DFL &&
	    previous[i].sa_handler != SIG_IGN) {
		previous[i].sa_handler(sig);
		return;
	}
	if (sig == SIGURG)
		return; /* ours, arriving after the call ended: nothing to do */
	if (sig != SIGABRT)
		fatal_line(s, sig, (uint64_t)(uintptr_t)si->si_addr, pc);
	signal(sig, SIG_DFL);
	if (sig == SIGABRT)
		raise(sig);
	/* Returning re-executes the faulting instruction, now fatal. */
}

int kri_fault_install(void)
{
	int rc = 0;
	pthread_mutex_lock(&install_lock);
	if (installed++ == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = handler;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		for (unsigned i = 0; i < NSIG_FAULT && !rc; i++)
			if (sigaction(fault_signals[i], &sa, &previous[i]))
				rc = -errno;
	}
	pthread_mutex_unlock(&install_lock);
	return rc;
}

void kri_fault_uninstall(void)
{
	pthread_mutex_lock(&install_lock);
	if (installed && --installed == 0)
		for (unsigned i = 0; i < NSIG_FAULT; i++)
			sigaction(fault_signals[i], &previous[i], 0);
	pthread_mutex_unlock(&install_lock);
}

/* Called on the thread that will run s's behaviours. */
int kri_fault_thread_enter(struct sched *s, stack_t *old)
{
	pthread_attr_t attr;
	void *lo = 0;
	size_t size = 0;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstack(&attr, &lo, &size);
		pthread_attr_destroy(&attr);
	}
	s->stack_lo = (uintptr_t)lo;
	void *alt = mmap(0, ALTSTACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (alt == MAP_FAILED)
		return -ENOMEM;
	stack_t st = {.ss_sp = alt, .ss_size = ALTSTACK, .ss_flags = 0};
	if (sigaltstack(&st, old)) {
		munmap(alt, ALTSTACK);
		return -errno;
	}
	s->altstack = alt;
	fault_sched = s;
	return 0;
}

void kri_fault_thread_leave(struct sched *s, const stack_t *old)
{
	fault_sched = 0;
	if (s->altstack) {
		sigaltstack(old, 0);
		munmap(s->altstack, ALTSTACK);
		s->altstack = 0;
	}
}

struct sched *kri_api_sched(void)
{
	return fault_sched;
}

/* End the running behaviour now (from the SIGURG handler, or from the way
 * out of a kr_* call that a kill arrived during). */
void kri_api_kill_now(struct sched *s)
{
	s->kill_pending = 0;
	if (!atomic_load_explicit(&s->in_beh, memory_order_relaxed))
		return;
	atomic_store_explicit(&s->in_beh, 0, memory_order_relaxed);
	s->killed = 1;
	if (s->fiber)
		kri_fiber_escape(s);
	siglongjmp(*s->jbp, 1);
}

/* Deterministic mode steps several schedulers on one thread. */
void kri_fault_switch(struct sched *s)
{
	fault_sched = s;
}

/* After the jump: the process that faulted exits with the fault. */
void kri_fault_recover(struct sched *s)
{
	struct kr_ctx *c = &s->ctx;
	struct proc *p = c->p;
	/* A stackful process's: back on the scheduler's stack, its run
	 * stack given back, its context's buffers to free below. */
	if (s->fiber)
		kri_fiber_recover(s);
	/* What the call sent before it ended is delivered, as if pushed when
	 * sent, and before the exit signals. The outbox is consistent: a
	 * kill waits for the way out of a kr_* call, and a bad argument
	 * faults while being copied, before the outbox moves. */
	outbox_flush(s);
	s->ob.pid = 0;
	kri_proc_drop_lone(s);
	kri_bufs_free(s);
	free(c->held);
	c->held = 0;
	if (c->cur) {
		env_free(&s->arena, c->cur);
		c->cur = 0;
	}
	kr_fault f = s->fault;
	bool killed = s->killed;
	s->killed = 0;
	s->in_rt = 0;
	s->kill_pending = 0;
	atomic_store_explicit(&s->kill_req, 0, memory_order_relaxed);
	atomic_store_explicit(&s->running, 0, memory_order_relaxed);
	c->p = 0;
	if (p && killed)
		kri_proc_exit(s, p, KR_KILLED, 0, 0);
	else if (p)
		kri_proc_exit(s, p, KR_FAULT, &f, sizeof(f));
}

/* An exit hook (core/proc/own.c), its faults contained as a behaviour's:
 * in_beh marks the span and the handler jumps back here instead of to the
 * scheduler's loop. The process is already ending, so the jump ends only
 * the hook. What a jump out of a kr_* call leaves behind is undone as
 * fault_recover does: the depth of calls under way, a pending kill. A hook
 * interrupted inside libc holding a lock leaves it held, as a behaviour
 * does. */
int kri_fault_call_contained(struct sched *s, kr_exit_hook fn, void *arg, const kr_exit_info *info,
			     kr_fault *f)
{
	sigjmp_buf jb;
	sigjmp_buf *volatile outer = s->jbp;
	volatile sig_atomic_t depth = s->in_rt;
	memset(f, 0, sizeof(*f));
	if (sigsetjmp(jb, FAULT_SAVEMASK)) {
		s->jbp = outer;
		s->in_rt = depth;
		s->kill_pending = 0;
		atomic_store_explicit(&s->kill_req, 0, memory_order_relaxed);
		if (!s->killed)
			*f = s->fault;
		s->killed = 0;
		return 1;
	}
	s->jbp = &jb;
	/* Relaxed: plain moves, read by this thread's handler and, as
	 * samples, by the watchdog. */
	stat_add(&s->calls, 1);
	atomic_store_explicit(&s->in_beh, 1, memory_order_relaxed);
	fn(arg, info);
	atomic_store_explicit(&s->in_beh, 0, memory_order_relaxed);
	s->jbp = outer;
	return 0;
}

/* kr_runtime_free ends the processes left alive on its own thread, which
 * runs their exit hooks: lend it scheduler s's containment (the handlers,
 * an alternate stack, s as this thread's scheduler) for that time. */
void kri_fault_host_enter(struct sched *s, struct fault_host *h)
{
	h->prev = fault_sched;
	kri_fault_install();
	/* Without its own alternate stack a hook's stack overflow is not
	 * contained; any other fault is. */
	h->stack = kri_fault_thread_enter(s, &h->old) == 0;
	fault_sched = s;
}

void kri_fault_host_leave(struct sched *s, struct fault_host *h)
{
	if (h->stack)
		kri_fault_thread_leave(s, &h->old);
	fault_sched = h->prev;
	kri_fault_uninstall();
}
