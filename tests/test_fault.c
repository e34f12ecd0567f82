/* Tests for the containment of native faults (core/fault/fault.c): a behaviour that dereferences
 * NULL, divides by zero, calls abort(), fails an assert, executes a trap instruction, touches a
 * truncated mapping or overflows its stack ends its process alone, with KR_FAULT and a kr_fault
 * naming the signal; its monitors get DOWN, its links die of it (or, trapping, get it as a
 * message), a process on the same scheduler thread goes on handling messages, and the run ends
 * normally. Also: many crashes in a row on one thread, a storm of crashes among 100,000
 * processes, deterministic mode, the resources of a crashed process, and faults outside any
 * behaviour (not contained: checked in a child process).
 *
 * The faults are written so that the compiler cannot see or remove them (volatile pointers and
 * operands, a recursion whose frames stay live), and the functions that raise them are built
 * without UBSan, which would otherwise report the undefined behaviour itself (and, with
 * -fno-sanitize-recover, end the program) before the hardware faults, and without TSan, which
 * would record the faulting store as a memory access of its own. ASan's own handlers stay
 * in place: krill installs its handler over them at kr_start and chains to them only for faults
 * outside behaviours. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "krill.h"
#include "tests/guard.h"

#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#else
#define TSAN 0
#endif

#define USER       KR_REASON_USER
#define WATCHDOG_S 120.0

enum { T_GO = 1, T_LINK, T_CRASH, T_LAST, T_PING, T_END, T_SETUP, T_LATE, T_MORE, T_WORK };

/* ---- runtimes and a watchdog ----------------------------------------------------------- */

struct mode {
	unsigned n;
	int det;
	uint64_t seed;
};

static const struct mode modes[] = {
    {1, 0, 0}, {2, 0, 0}, {2, 1, 1}, {1, 1, 3}, {3, 1, 0xfeedull},
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

static _Atomic int beh_bad; /* a call inside a behaviour failed */
#define BEH_CHECK(x)                                   \
	do {                                           \
		if (!(x))                              \
			atomic_fetch_add(&beh_bad, 1); \
	} while (0)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Main thread: wait (sleeping) until *f == v; false after secs. */
static bool wait_flag(_Atomic int *f, int v, double secs)
{
	double end = now_s() + secs;
	while (atomic_load(f) != v) {
		if (now_s() > end)
			return false;
		usleep(100);
	}
	return true;
}

static unsigned watchdog_ms; /* 0: the default */

static kr_runtime *rt_make(const struct mode *m)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	if (watchdog_ms)
		c.watchdog_ms = watchdog_ms;
	c.schedulers = m->n;
	c.pin = 0;
	c.stats = 0;
	c.deterministic = m->det;
	c.seed = m->seed;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_non_null(rt);
	atomic_store(&beh_bad, 0);
	return rt;
}

static kr_pid spawn(kr_runtime *rt, kr_behaviour b, const void *st, size_t len)
{
	kr_pid pid = 0;
	assert_int_equal(kr_rt_spawn(rt, b, st, len, &pid), 0);
	assert_true(pid != 0);
	return pid;
}

static void post(kr_runtime *rt, kr_pid to, uint32_t tag, const void *d, size_t len)
{
	assert_int_equal(kr_rt_send(rt, to, tag, d, len), 0);
}

/* kr_run (kr_wait if started), stopped by force after WATCHDOG_S; then: it returned 0, ended
 * by itself (no process left) and nothing failed inside a behaviour. */
static void wait_to_the_end(kr_runtime *rt, bool started)
{
	assert_true(guard_run(rt, started, WATCHDOG_S));
	assert_int_equal(kr_alive(rt), 0);
	assert_int_equal(atomic_load(&beh_bad), 0);
}

static void run_to_the_end(kr_runtime *rt)
{
	wait_to_the_end(rt, false);
}

/* ---- the faults -------------------------------------------------------------------------- */

enum kind { F_NULL, F_FPE, F_ABORT, F_ASSERT, F_TRAP, F_OVERFLOW, F_BUS, NKIND };

/* Not built with UBSan (it would report the UB and end the program first) nor TSan (it records
 * the store to NULL before the store faults, then reports two threads' crashes as a race). */
#define FAULTY __attribute__((noinline, no_sanitize("undefined", "thread")))

static FAULTY void fault_null(void)
{
	/* Both volatile: with only the pointer volatile, gcc 12 drops the store altogether. */
	volatile int *volatile p = 0;
	/* The fault is the point. */
	// cppcheck-suppress nullPointer
	*p = 1; // NOLINT(clang-analyzer-core.NullDereference)
}

static FAULTY void fault_fpe(void)
{
	volatile int a = 7, b = 0;
	/* An idiv, the fault being the point: volatile operands, no cmov trick possible. */
	// cppcheck-suppress zerodiv
	volatile int c = a / b; // NOLINT(clang-analyzer-core.DivideZero)
	(void)c;
}

static FAULTY void fault_abort(void)
{
	abort();
}

static FAULTY void fault_assert(void)
{
	volatile int zero = 0;
	assert(zero && "a failed assert inside a behaviour");
}

/* The signal the compiler's trap instruction raises. */
#if defined(__aarch64__)
#define TRAP_SIGNAL SIGTRAP
#else
#define TRAP_SIGNAL SIGILL
#endif

static FAULTY void fault_trap(void)
{
	__builtin_trap(); /* ud2 on x86-64: SIGILL; brk on aarch64: SIGTRAP */
}

static volatile int never;

/* Each frame passes its buffer to the next and writes it after the call returns: no tail
 * call, no frame can be dropped or merged. */
static FAULTY int recurse(volatile char *prev)
{
	volatile char buf[1024];
	buf[0] = (char)(prev ? prev[0] + 1 : 0);
	buf[sizeof(buf) - 1] = buf[0];
	if (never)
		return buf[0];
	int r = recurse(buf);
	buf[1] = (char)r;
	return buf[1] + buf[sizeof(buf) - 1];
}

static FAULTY void fault_overflow(void)
{
	recurse(0);
}

/* A shared mapping of a memfd truncated to 0 after mmap: touching it is SIGBUS. */
static char *bus_page;

static void bus_setup(void)
{
	int fd = memfd_create("krill-test-bus", 0);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	void *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(ftruncate(fd, 0), 0);
	close(fd);
	bus_page = p;
}

static void bus_teardown(void)
{
	if (bus_page)
		munmap(bus_page, 4096);
	bus_page = 0;
}

static FAULTY void fault_bus(void)
{
	*(volatile char *)bus_page = 1;
}

static void crash(enum kind k)
{
	switch (k) {
	case F_NULL:
		fault_null();
		break;
	case F_FPE:
		fault_fpe();
		break;
	case F_ABORT:
		fault_abort();
		break;
	case F_ASSERT:
		fault_assert();
		break;
	case F_TRAP:
		fault_trap();
		break;
	case F_OVERFLOW:
		fault_overflow();
		break;
	case F_BUS:
		fault_bus();
		break;
	case NKIND:
		break;
	}
}

/* The main thread's stack (deterministic mode runs behaviours on it) overflows only if it is
 * bounded; an unlimited one would be eaten down to the next mapping. */
static bool main_stack_bounded(void)
{
	struct rlimit r;
	return getrlimit(RLIMIT_STACK, &r) == 0 && r.rlim_cur != RLIM_INFINITY &&
	       r.rlim_cur <= (256u << 20);
}

static bool kind_runs_in(enum kind k, const struct mode *m)
{
	return !(k == F_OVERFLOW && m->det && !main_stack_bounded());
}

/* The kr_fault in a DOWN or EXIT is right for the kind of fault. */
static void expect_fault(const kr_exit_info *x, uint32_t mlen, enum kind k)
{
	kr_fault f;
	assert_int_equal(x->reason, KR_FAULT);
	assert_int_equal(x->len, sizeof(kr_fault));
	assert_int_equal(mlen, offsetof(kr_exit_info, payload) + sizeof(kr_fault));
	memcpy(&f, x->payload, sizeof(f));
	switch (k) {
	case F_NULL:
		assert_int_equal(f.signo, SIGSEGV);
		assert_int_equal(f.code, SEGV_MAPERR);
		assert_true(f.addr == 0);
		break;
	case F_FPE:
		assert_int_equal(f.signo, SIGFPE);
		assert_int_equal(f.code, FPE_INTDIV);
		break;
	case F_ABORT:
	case F_ASSERT:
		assert_int_equal(f.signo, SIGABRT);
		assert_int_equal(f.code, SI_TKILL); /* raise() */
		break;
	case F_TRAP:
		assert_int_equal(f.signo, TRAP_SIGNAL);
#if defined(__x86_64__)
		assert_int_equal(f.code, ILL_ILLOPN);
#endif
		break;
	case F_OVERFLOW:
		assert_int_equal(f.signo, SIGSEGV);
		break;
	case F_BUS:
		assert_int_equal(f.signo, SIGBUS);
		assert_int_equal(f.code, BUS_ADRERR);
		assert_true(f.addr == (uint64_t)(uintptr_t)bus_page);
		break;
	case NKIND:
		break;
	}
	assert_int_equal(f.stack_overflow, k == F_OVERFLOW);
#if defined(__x86_64__) || defined(__aarch64__)
	assert_true(f.pc != 0);
#endif
}

/* ---- one crash, everything around it -------------------------------------------------- */

/* M monitors V (the victim), L and B; L links to V (not trapping); T traps and links to V; then
 * V, told to crash, first sends B a last message. Once M has V's and L's DOWN it pings B, which
 * handles the ping and exits. */
static kr_pid fs_m, fs_v, fs_l, fs_t, fs_b;
static enum kind fs_kind;
static long fs_v_tid, fs_b_tid;
static int fs_v_survived, fs_link_l, fs_link_t, fs_b_last, fs_b_ping, fs_t_exits, fs_m_downs;
static kr_exit_info fs_down_v, fs_down_l, fs_down_b, fs_exit_t;
static uint32_t fs_mlen_v, fs_mlen_l, fs_mlen_t;

static void b_fs_m(kr_ctx *ctx, void *st, const kr_msg *m)
{
	uint64_t ref;
	if (m->tag == T_GO) {
		BEH_CHECK(kr_monitor(ctx, fs_v, &ref) == 0);
		BEH_CHECK(kr_monitor(ctx, fs_l, &ref) == 0);
		BEH_CHECK(kr_monitor(ctx, fs_b, &ref) == 0);
		kr_send(ctx, fs_l, T_LINK, 0, 0);
		return;
	}
	BEH_CHECK(m->tag == KR_TAG_DOWN);
	kr_exit_info x;
	memset(&x, 0, sizeof(x));
	memcpy(&x, m->data, m->len <= sizeof(x) ? m->len : sizeof(x));
	if (x.pid == fs_v) {
		fs_down_v = x;
		fs_mlen_v = m->len;
	} else if (x.pid == fs_l) {
		fs_down_l = x;
		fs_mlen_l = m->len;
	} else if (x.pid == fs_b) {
		fs_down_b = x;
		kr_exit(ctx, KR_NORMAL);
	}
	if (++fs_m_downs == 2)
		kr_send(ctx, fs_b, T_PING, 0, 0);
}

static void b_fs_l(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_LINK) {
		fs_link_l = kr_link(ctx, fs_v);
		kr_send(ctx, fs_t, T_LINK, 0, 0);
	}
}

static void b_fs_t(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_LINK) {
		kr_trap_exit(ctx, 1);
		fs_link_t = kr_link(ctx, fs_v);
		kr_send(ctx, fs_v, T_CRASH, 0, 0);
	} else if (m->tag == KR_TAG_EXIT) {
		memcpy(&fs_exit_t, m->data,
		       m->len <= sizeof(fs_exit_t) ? m->len : sizeof(fs_exit_t));
		fs_mlen_t = m->len;
		fs_t_exits++;
		kr_exit(ctx, KR_NORMAL);
	}
}

static void b_fs_v(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag != T_CRASH)
		return;
	fs_v_tid = (long)gettid();
	kr_send(ctx, fs_b, T_LAST, 0, 0);
	crash(fs_kind);
	fs_v_survived = 1;
}

static void b_fs_b(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_LAST) {
		fs_b_last = 1;
	} else if (m->tag == T_PING) {
		fs_b_ping = fs_b_last ? 1 : -1; /* the last words came first */
		fs_b_tid = (long)gettid();
		kr_exit(ctx, KR_NORMAL);
	}
}

static void one_crash(enum kind k, const struct mode *md)
{
	kr_runtime *rt = rt_make(md);
	fs_kind = k;
	fs_v_tid = fs_b_tid = 0;
	fs_v_survived = fs_b_last = fs_b_ping = fs_t_exits = fs_m_downs = 0;
	fs_link_l = fs_link_t = 99;
	memset(&fs_down_v, 0, sizeof(fs_down_v));
	memset(&fs_down_l, 0, sizeof(fs_down_l));
	memset(&fs_down_b, 0, sizeof(fs_down_b));
	memset(&fs_exit_t, 0, sizeof(fs_exit_t));
	fs_mlen_v = fs_mlen_l = fs_mlen_t = 0;
	fs_m = spawn(rt, b_fs_m, 0, 0);
	fs_v = spawn(rt, b_fs_v, 0, 0);
	fs_l = spawn(rt, b_fs_l, 0, 0);
	fs_t = spawn(rt, b_fs_t, 0, 0);
	fs_b = spawn(rt, b_fs_b, 0, 0);
	post(rt, fs_m, T_GO, 0, 0);
	run_to_the_end(rt);
	assert_int_equal(fs_v_survived, 0);
	assert_int_equal(fs_link_l, 0);
	assert_int_equal(fs_link_t, 0);
	/* The victim's DOWN names the fault. */
	expect_fault(&fs_down_v, fs_mlen_v, k);
	/* Its non-trapping link died of the same fault, payload and all. */
	expect_fault(&fs_down_l, fs_mlen_l, k);
	assert_memory_equal(fs_down_l.payload, fs_down_v.payload, sizeof(kr_fault));
	/* Its trapping link got it as a message from the victim. */
	assert_int_equal(fs_t_exits, 1);
	assert_true(fs_exit_t.pid == fs_v && fs_exit_t.ref == 0);
	expect_fault(&fs_exit_t, fs_mlen_t, k);
	assert_memory_equal(fs_exit_t.payload, fs_down_v.payload, sizeof(kr_fault));
	/* The bystander got what the victim sent before crashing, then handled a message after
	 * the crash, and exited normally; on one scheduler, on the crash's own thread. */
	assert_int_equal(fs_b_ping, 1);
	assert_int_equal(fs_down_b.reason, KR_NORMAL);
	if (md->n == 1 || md->det)
		assert_true(fs_b_tid == fs_v_tid);
	kr_runtime_free(rt);
}

static void fault_kind(enum kind k)
{
	for (unsigned i = 0; i < NMODES; i++)
		if (kind_runs_in(k, &modes[i]))
			one_crash(k, &modes[i]);
}

static void null_dereference_ends_the_process_alone_with_sigsegv_at_address_0(void **st)
{
	fault_kind(F_NULL);
}

static void division_by_zero_ends_the_process_alone_with_sigfpe(void **st)
{
	fault_kind(F_FPE);
}

static void abort_ends_the_process_alone_with_sigabrt(void **st)
{
	fault_kind(F_ABORT);
}

static void failed_assert_ends_the_process_alone_with_sigabrt(void **st)
{
	fault_kind(F_ASSERT);
}

static void trap_instruction_ends_the_process_alone_with_sigill(void **st)
{
	fault_kind(F_TRAP);
}

static void stack_overflow_ends_the_process_alone_flagged_as_overflow(void **st)
{
	fault_kind(F_OVERFLOW);
}

static void bus_error_ends_the_process_alone_with_sigbus_at_the_address(void **st)
{
	bus_setup();
	fault_kind(F_BUS);
	bus_teardown();
}

/* ---- the thread after a fault ------------------------------------------------------------ */

/* After a contained fault the scheduler thread's signal mask must be what it was: a fault
 * taken with the signal blocked is fatal (the kernel forces the default action). krill jumps
 * out of its handler without restoring the mask and relies on SA_NODEFER and an empty sa_mask;
 * an interposed handler that blocks more (ThreadSanitizer installs its wrapper with every signal
 * blocked) leaves them blocked. abort() unblocks SIGABRT itself, so this test cannot die of it. */
static sigset_t mask_before, mask_after;
static int mask_got, mask_tid_same;
static long mask_tid;
static kr_pid mask_second;

static void b_mask_first(kr_ctx *ctx, void *st, const kr_msg *m)
{
	pthread_sigmask(SIG_BLOCK, 0, &mask_before);
	mask_tid = (long)gettid();
	kr_send(ctx, mask_second, T_PING, 0, 0); /* one scheduler: runs next, on this thread */
	fault_abort();
}

static void b_mask_second(kr_ctx *ctx, void *st, const kr_msg *m)
{
	pthread_sigmask(SIG_BLOCK, 0, &mask_after);
	mask_tid_same = mask_tid == (long)gettid();
	mask_got = 1;
	kr_exit(ctx, KR_NORMAL);
}

static void a_contained_fault_leaves_the_thread_signal_mask_as_it_was(void **st)
{
	const struct mode ms[] = {{1, 0, 0}, {1, 1, 2}};
	for (unsigned i = 0; i < 2; i++) {
		kr_runtime *rt = rt_make(&ms[i]);
		sigemptyset(&mask_before);
		sigfillset(&mask_after);
		mask_got = mask_tid_same = 0;
		kr_pid a = spawn(rt, b_mask_first, 0, 0);
		mask_second = spawn(rt, b_mask_second, 0, 0);
		post(rt, a, T_CRASH, 0, 0);
		run_to_the_end(rt);
		kr_runtime_free(rt);
		assert_int_equal(mask_got, 1);
		assert_int_equal(mask_tid_same, 1);
		for (int sig = 1; sig < 32; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				assert_int_equal(sigismember(&mask_after, sig),
						 sigismember(&mask_before, sig));
	}
}

/* ---- crashes in a row ---------------------------------------------------------------------- */

/* A spawner makes a victim, monitors it and tells it to crash; at each DOWN it checks the fault,
 * pings a bystander, and makes the next victim. */
static kr_pid rep_b;
static int rep_total, rep_count, rep_bad, rep_b_pings, rep_b_done;
static long rep_tid, rep_tid_changes;
static int rep_mixed, rep_overflow_ok;

static enum kind rep_kind(int i)
{
	if (!rep_mixed)
		return F_NULL;
	enum kind k = (enum kind)(i % NKIND);
	return k == F_OVERFLOW && !rep_overflow_ok ? F_NULL : k;
}

static void b_rep_victim(kr_ctx *ctx, void *st, const kr_msg *m)
{
	int i;
	memcpy(&i, st, sizeof(i));
	long tid = (long)gettid();
	if (rep_tid == 0)
		rep_tid = tid;
	else if (rep_tid != tid)
		rep_tid_changes++;
	crash(rep_kind(i));
	rep_bad++; /* survived its crash */
}

static void rep_next(kr_ctx *ctx)
{
	kr_pid v;
	uint64_t ref;
	BEH_CHECK(kr_spawn(ctx, b_rep_victim, &rep_count, sizeof(rep_count), &v) == 0);
	BEH_CHECK(kr_monitor(ctx, v, &ref) == 0);
	kr_send(ctx, v, T_CRASH, 0, 0);
}

static void b_rep_spawner(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == KR_TAG_DOWN) {
		kr_exit_info x;
		kr_fault f;
		memcpy(&x, m->data, m->len);
		memcpy(&f, x.payload, sizeof(f));
		enum kind k = rep_kind(rep_count);
		int want = k == F_NULL || k == F_OVERFLOW ? SIGSEGV
			   : k == F_FPE                   ? SIGFPE
			   : k == F_TRAP                  ? TRAP_SIGNAL
			   : k == F_BUS                   ? SIGBUS
							  : SIGABRT;
		if (x.reason != KR_FAULT || x.len != sizeof(f) || f.signo != want ||
		    f.stack_overflow != (k == F_OVERFLOW) || (k == F_NULL && f.addr != 0))
			rep_bad++;
		kr_send(ctx, rep_b, T_PING, 0, 0);
		if (++rep_count == rep_total) {
			kr_send(ctx, rep_b, T_END, 0, 0);
			kr_exit(ctx, KR_NORMAL);
			return;
		}
	}
	rep_next(ctx);
}

static void b_rep_bystander(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_PING) {
		rep_b_pings++;
	} else if (m->tag == T_END) {
		rep_b_done = 1;
		kr_exit(ctx, KR_NORMAL);
	}
}

static void crashes_in_a_row(const struct mode *md, int total, int mixed)
{
	kr_runtime *rt = rt_make(md);
	rep_total = total;
	rep_mixed = mixed;
	rep_overflow_ok = !md->det || main_stack_bounded();
	rep_count = rep_bad = rep_b_pings = rep_b_done = 0;
	rep_tid = rep_tid_changes = 0;
	rep_b = spawn(rt, b_rep_bystander, 0, 0);
	kr_pid s = spawn(rt, b_rep_spawner, 0, 0);
	post(rt, s, T_GO, 0, 0);
	run_to_the_end(rt);
	assert_int_equal(rep_count, total);
	assert_int_equal(rep_bad, 0);
	assert_int_equal(rep_b_pings, total);
	assert_int_equal(rep_b_done, 1);
	if (md->n == 1 || md->det)
		assert_int_equal(rep_tid_changes, 0); /* all on the one scheduler thread */
	kr_runtime_free(rt);
}

static void a_thousand_segfaults_in_a_row_on_one_scheduler_thread_are_all_contained(void **st)
{
	crashes_in_a_row(&(struct mode){1, 0, 0}, 1000, 0);
	crashes_in_a_row(&(struct mode){2, 0, 0}, 1000, 0);
}

static void a_thousand_segfaults_in_a_row_in_deterministic_mode_are_all_contained(void **st)
{
	crashes_in_a_row(&(struct mode){1, 1, 5}, 1000, 0);
	crashes_in_a_row(&(struct mode){2, 1, 6}, 1000, 0);
}

static void every_kind_of_fault_in_a_row_is_contained(void **st)
{
	bus_setup();
	crashes_in_a_row(&(struct mode){1, 0, 0}, 7 * 30, 1);
	crashes_in_a_row(&(struct mode){2, 1, 8}, 7 * 30, 1);
	bus_teardown();
}

/* ---- what a crashed process held is released ------------------------------------------- */

#define VICTIM_NAME "krill-test-fault-victim"
static kr_pid rel_v;
static int rel_setup_done, rel_down_ok, rel_name_gone, rel_late, rel_buf_gone;
static void *rel_unsent;

static void b_rel_victim(kr_ctx *ctx, void *st, const kr_msg *m)
{
	unsigned char *big = st;
	if (m->tag == T_SETUP) {
		memset(big, 0x5a, 300);
		kr_defer(ctx); /* kept in its deferred list */
		BEH_CHECK(kr_send_after(ctx, kr_self(ctx), 3600000, T_LATE, "late", 4, 0) == 0);
		BEH_CHECK(kr_receive_timeout(ctx, 3600000) == 0);
		rel_setup_done = 1;
	} else if (m->tag == T_CRASH) {
		unsigned char *unsent = kr_msg_buf(ctx, 5000); /* reserved, then the fault */
		BEH_CHECK(unsent != 0);
		if (unsent)
			memset(unsent, 1, 5000);
		rel_unsent = unsent;
		fault_null();
	} else if (m->tag == T_LATE) {
		rel_late = 1;
	}
}

static void b_rel_watcher(kr_ctx *ctx, void *st, const kr_msg *m)
{
	uint64_t ref;
	if (m->tag == T_GO) {
		BEH_CHECK(kr_monitor(ctx, rel_v, &ref) == 0);
		unsigned char junk[200] = {7};
		kr_send(ctx, rel_v, T_SETUP, junk, sizeof(junk));
		kr_send(ctx, rel_v, T_CRASH, 0, 0);
		for (int i = 0; i < 100; i++) /* queued behind the crash: freed with it */
			kr_send(ctx, rel_v, T_WORK, junk, sizeof(junk));
		return;
	}
	kr_exit_info x;
	memcpy(&x, m->data, m->len);
	rel_down_ok = x.reason == KR_FAULT && x.pid == rel_v;
	rel_name_gone = kr_whereis(kr_runtime_of(ctx), VICTIM_NAME) == 0;
	/* Only compared, never touched: the victim's buffer went with its call. */
	rel_buf_gone = kr_send_buf(ctx, kr_self(ctx), T_WORK, rel_unsent) == -EINVAL;
	kr_exit(ctx, KR_NORMAL);
}

static void a_crash_releases_the_state_messages_timers_and_name_of_the_process(void **st)
{
	for (unsigned i = 0; i < NMODES; i++) {
		kr_runtime *rt = rt_make(&modes[i]);
		unsigned char big[300] = {1};
		rel_setup_done = rel_down_ok = rel_name_gone = rel_late = rel_buf_gone = 0;
		rel_unsent = 0;
		rel_v = spawn(rt, b_rel_victim, big, sizeof(big));
		assert_int_equal(kr_register(rt, VICTIM_NAME, rel_v), 0);
		kr_pid w = spawn(rt, b_rel_watcher, 0, 0);
		post(rt, w, T_GO, 0, 0);
		run_to_the_end(rt);
		assert_int_equal(rel_setup_done, 1);
		assert_int_equal(rel_down_ok, 1);
		assert_int_equal(rel_name_gone, 1);
		assert_int_equal(rel_buf_gone, 1);
		assert_int_equal(rel_late, 0);
		assert_true(kr_whereis(rt, VICTIM_NAME) == 0);
		kr_runtime_free(rt); /* LSan: nothing of the victim is left, its buffer included */
	}
}

/* ---- a storm of crashes --------------------------------------------------------------------- */

/* Collectors spawn workers, monitor each and send it STORM_K numbered messages; one worker in
 * ten segfaults (NULL) on one of them. Every message is handled exactly once or belongs to a
 * crashed worker at or after its crash point; every worker gives exactly one DOWN, KR_FAULT
 * with SIGSEGV at 0 for the crashers. */
#define STORM_MAX   100000
#define STORM_C     4
#define STORM_K     4
#define STORM_CHUNK 500
#define STORM_HASH  (1u << 16)
static uint32_t storm_n;
static unsigned char storm_handled[STORM_MAX], storm_down[STORM_MAX];
static struct {
	kr_pid pid;
	uint32_t i;
} storm_hash[STORM_C][STORM_HASH];
static uint32_t storm_ndown[STORM_C];
static _Atomic long storm_bad, storm_dup, storm_order, storm_crashed, storm_downs;

static bool storm_crasher(uint32_t i)
{
	return i % 10 == 7;
}

static uint32_t storm_crash_at(uint32_t i)
{
	return (i / 10) % STORM_K;
}

static void b_storm_worker(kr_ctx *ctx, void *st, const kr_msg *m)
{
	uint32_t s[2], w[2];
	memcpy(s, st, sizeof(s));
	memcpy(w, m->data, sizeof(w));
	if (w[0] != s[0] || w[1] != s[1])
		atomic_fetch_add(&storm_order, 1);
	s[1]++;
	memcpy(st, s, sizeof(s));
	uint32_t i = s[0];
	if (storm_crasher(i) && w[1] == storm_crash_at(i))
		fault_null();
	if (storm_handled[i] & (1u << w[1]))
		atomic_fetch_add(&storm_dup, 1);
	storm_handled[i] |= (unsigned char)(1u << w[1]);
	if (w[1] == STORM_K - 1)
		kr_exit_with(ctx, KR_NORMAL, &i, sizeof(i));
}

static uint32_t storm_h(kr_pid pid)
{
	return (uint32_t)((pid * 0x9e3779b97f4a7c15ull) >> 48) & (STORM_HASH - 1);
}

static void b_storm_collector(kr_ctx *ctx, void *st, const kr_msg *m)
{
	uint32_t s[2];
	memcpy(s, st, sizeof(s));
	uint32_t c = s[0], per = storm_n / STORM_C;
	if (m->tag == T_MORE) {
		for (int n = 0; n < STORM_CHUNK && s[1] < per; n++, s[1]++) {
			uint32_t i = c * per + s[1], ws[2] = {i, 0};
			kr_pid pid;
			uint64_t ref;
			if (kr_spawn(ctx, b_storm_worker, ws, sizeof(ws), &pid) ||
			    kr_monitor(ctx, pid, &ref)) {
				atomic_fetch_add(&storm_bad, 1);
				continue;
			}
			uint32_t h = storm_h(pid);
			while (storm_hash[c][h].pid)
				h = (h + 1) & (STORM_HASH - 1);
			storm_hash[c][h].pid = pid;
			storm_hash[c][h].i = i;
			for (uint32_t j = 0; j < STORM_K; j++)
				kr_send(ctx, pid, T_WORK, (uint32_t[2]){i, j}, 8);
		}
		memcpy(st, s, sizeof(s));
		if (s[1] < per)
			kr_send(ctx, kr_self(ctx), T_MORE, 0, 0);
		return;
	}
	kr_exit_info x;
	memcpy(&x, m->data, m->len);
	int64_t i = -1;
	for (uint32_t h = storm_h(x.pid); storm_hash[c][h].pid; h = (h + 1) & (STORM_HASH - 1))
		if (storm_hash[c][h].pid == x.pid) {
			i = storm_hash[c][h].i;
			break;
		}
	bool ok = m->tag == KR_TAG_DOWN && i >= 0;
	if (ok && storm_crasher((uint32_t)i)) {
		kr_fault f;
		memcpy(&f, x.payload, sizeof(f));
		ok = x.reason == KR_FAULT && x.len == sizeof(f) && f.signo == SIGSEGV &&
		     f.addr == 0 && !f.stack_overflow;
		atomic_fetch_add(&storm_crashed, 1);
	} else if (ok) {
		uint32_t pi;
		memcpy(&pi, x.payload, sizeof(pi));
		ok = x.reason == KR_NORMAL && x.len == 4 && pi == (uint32_t)i;
	}
	if (!ok)
		atomic_fetch_add(&storm_bad, 1);
	if (i >= 0 && storm_down[i]++)
		atomic_fetch_add(&storm_dup, 1);
	atomic_fetch_add(&storm_downs, 1);
	if (++storm_ndown[c] == per)
		kr_exit(ctx, KR_NORMAL);
}

static void storm(const struct mode *md, uint32_t n)
{
	kr_runtime *rt = rt_make(md);
	storm_n = n;
	memset(storm_handled, 0, sizeof(storm_handled));
	memset(storm_down, 0, sizeof(storm_down));
	memset(storm_hash, 0, sizeof(storm_hash));
	memset(storm_ndown, 0, sizeof(storm_ndown));
	atomic_store(&storm_bad, 0);
	atomic_store(&storm_dup, 0);
	atomic_store(&storm_order, 0);
	atomic_store(&storm_crashed, 0);
	atomic_store(&storm_downs, 0);
	for (uint32_t c = 0; c < STORM_C; c++) {
		kr_pid p = spawn(rt, b_storm_collector, (uint32_t[2]){c, 0}, 8);
		post(rt, p, T_MORE, 0, 0);
	}
	run_to_the_end(rt);
	assert_int_equal(atomic_load(&storm_bad), 0);
	assert_int_equal(atomic_load(&storm_dup), 0);
	assert_int_equal(atomic_load(&storm_order), 0);
	assert_int_equal(atomic_load(&storm_downs), n);
	assert_int_equal(atomic_load(&storm_crashed), n / 10);
	long handled = 0, lost = 0;
	for (uint32_t i = 0; i < n; i++) {
		unsigned want =
		    storm_crasher(i) ? (1u << storm_crash_at(i)) - 1 : (1u << STORM_K) - 1;
		assert_int_equal(storm_handled[i], want);
		assert_int_equal(storm_down[i], 1);
		handled += __builtin_popcount(storm_handled[i]);
		lost += storm_crasher(i) ? STORM_K - storm_crash_at(i) : 0;
	}
	assert_int_equal(handled + lost, (long)n * STORM_K);
	kr_runtime_free(rt);
}

static void a_storm_of_segfaults_among_many_processes_loses_and_repeats_nothing(void **st)
{
	storm(&(struct mode){2, 0, 0}, TSAN ? 10000 : STORM_MAX);
	storm(&(struct mode){2, 1, 21}, TSAN ? 4000 : 20000);
}

/* ---- KR_KILL interrupts a call stuck in a loop (the watchdog) ------------------------------ */

/* M monitors S and L; L links to S; T traps and links to S; then S, a trapping process, enters
 * an endless loop. The call is interrupted by KR_KILL sent from the main thread (kr_rt_exit)
 * or, with 2 schedulers, from a process (kr_send_exit): S ends with KR_KILLED, L dies of it,
 * T gets it as a message, B handles a message afterwards, and the run ends. */
static kr_pid wk_s, wk_l, wk_t, wk_b, wk_k;
static _Atomic int wk_spinning, wk_s_down;
static _Atomic long wk_spins;
static uint32_t wk_s_reason, wk_l_reason;
static kr_exit_info wk_t_exit;
static int wk_t_exits, wk_b_after, wk_m_downs;

static void b_wk_stuck(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_trap_exit(ctx, 1); /* KR_KILL cannot be trapped */
	atomic_store(&wk_spinning, 1);
	for (;;)
		atomic_fetch_add_explicit(&wk_spins, 1, memory_order_relaxed);
}

static void b_wk_m(kr_ctx *ctx, void *st, const kr_msg *m)
{
	uint64_t ref;
	if (m->tag == T_GO) {
		BEH_CHECK(kr_monitor(ctx, wk_s, &ref) == 0);
		BEH_CHECK(kr_monitor(ctx, wk_l, &ref) == 0);
		BEH_CHECK(kr_monitor(ctx, wk_b, &ref) == 0);
		kr_send(ctx, wk_l, T_LINK, 0, 0);
		return;
	}
	kr_exit_info x;
	memcpy(&x, m->data, m->len);
	if (x.pid == wk_s) {
		wk_s_reason = x.reason;
		atomic_store(&wk_s_down, 1);
	} else if (x.pid == wk_l) {
		wk_l_reason = x.reason;
	} else if (x.pid == wk_b) {
		kr_exit(ctx, KR_NORMAL);
	}
	if (++wk_m_downs == 2)
		kr_send(ctx, wk_b, T_PING, 0, 0);
}

static void b_wk_l(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_LINK) {
		BEH_CHECK(kr_link(ctx, wk_s) == 0);
		kr_send(ctx, wk_t, T_LINK, 0, 0);
	}
}

static void b_wk_t(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_LINK) {
		kr_trap_exit(ctx, 1);
		BEH_CHECK(kr_link(ctx, wk_s) == 0);
		kr_send(ctx, wk_s, T_GO, 0, 0);
	} else if (m->tag == KR_TAG_EXIT) {
		memcpy(&wk_t_exit, m->data, m->len);
		wk_t_exits++;
		kr_exit(ctx, KR_NORMAL);
	}
}

static void b_wk_b(kr_ctx *ctx, void *st, const kr_msg *m)
{
	wk_b_after = 1;
	kr_exit(ctx, KR_NORMAL);
}

static void b_wk_killer(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_CRASH)
		BEH_CHECK(kr_send_exit(ctx, wk_s, KR_KILL) == 0);
	else
		kr_exit(ctx, KR_NORMAL);
}

static void stuck_call_killed(unsigned n, bool by_process)
{
	watchdog_ms = 20;
	kr_runtime *rt = rt_make(&(struct mode){n, 0, 0});
	watchdog_ms = 0;
	atomic_store(&wk_spinning, 0);
	atomic_store(&wk_s_down, 0);
	wk_s_reason = wk_l_reason = 99;
	memset(&wk_t_exit, 0, sizeof(wk_t_exit));
	wk_t_exits = wk_b_after = wk_m_downs = 0;
	kr_pid m = spawn(rt, b_wk_m, 0, 0);
	wk_s = spawn(rt, b_wk_stuck, 0, 0);
	wk_l = spawn(rt, b_wk_l, 0, 0);
	wk_t = spawn(rt, b_wk_t, 0, 0);
	wk_b = spawn(rt, b_wk_b, 0, 0);
	wk_k = spawn(rt, b_wk_killer, 0, 0);
	assert_int_equal(kr_start(rt), 0);
	post(rt, m, T_GO, 0, 0);
	assert_true(wait_flag(&wk_spinning, 1, 30));
	/* The call counts as stuck once it has run for watchdog_ms: kill until it is gone. */
	double end = now_s() + 30;
	while (!atomic_load(&wk_s_down) && now_s() < end) {
		if (by_process)
			post(rt, wk_k, T_CRASH, 0, 0);
		else
			assert_int_equal(kr_rt_exit(rt, wk_s, KR_KILL), 0);
		usleep(20000);
	}
	post(rt, wk_k, T_END, 0, 0);
	wait_to_the_end(rt, true);
	kr_runtime_free(rt);
	assert_int_equal(wk_s_reason, KR_KILLED);
	assert_int_equal(wk_l_reason, KR_KILLED);
	assert_int_equal(wk_t_exits, 1);
	assert_true(wk_t_exit.pid == wk_s);
	assert_int_equal(wk_t_exit.reason, KR_KILLED);
	assert_int_equal(wk_b_after, 1);
}

static void kill_interrupts_a_behaviour_stuck_in_an_endless_loop(void **st)
{
	stuck_call_killed(1, false);
	stuck_call_killed(2, false);
	stuck_call_killed(2, true);
}

/* S is stuck in a loop of kr_send to WS_T targets, waking them one after the other (so each
 * send readies a process); it is killed at a random moment. Afterwards every target handles
 * an END from the main thread: none may be left runnable but on no queue, and each handled
 * what S sent it (one more if the kill came between the push and S's count). */
#define WS_T 512
static kr_pid ws_s, ws_t[WS_T];
static long ws_sent[WS_T], ws_handled[WS_T];
static _Atomic int ws_spinning, ws_ended;

static void b_ws_sender(kr_ctx *ctx, void *st, const kr_msg *m)
{
	atomic_store(&ws_spinning, 1);
	for (uint32_t i = 0;; i = (i + 1) % WS_T)
		if (kr_send(ctx, ws_t[i], T_WORK, &i, sizeof(i)) == 0)
			ws_sent[i]++;
}

static void b_ws_target(kr_ctx *ctx, void *st, const kr_msg *m)
{
	uint32_t i;
	memcpy(&i, st, sizeof(i));
	if (m->tag == T_WORK) {
		ws_handled[i]++;
	} else if (m->tag == T_END) {
		atomic_fetch_add(&ws_ended, 1);
		kr_exit(ctx, KR_NORMAL);
	}
}

/* One round in a child process (see below): 0 if every target got its END and every message
 * sent was handled; else a code and a line on stderr. */
static int ws_round(uint64_t seed)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.schedulers = 2;
	c.pin = 0;
	c.stats = 0;
	c.watchdog_ms = 2;
	if (kr_runtime_new(&c, &rt))
		return 10;
	memset(ws_sent, 0, sizeof(ws_sent));
	memset(ws_handled, 0, sizeof(ws_handled));
	atomic_store(&ws_spinning, 0);
	atomic_store(&ws_ended, 0);
	for (uint32_t i = 0; i < WS_T; i++)
		if (kr_rt_spawn(rt, b_ws_target, &i, sizeof(i), &ws_t[i]))
			return 11;
	if (kr_rt_spawn(rt, b_ws_sender, 0, 0, &ws_s) || kr_start(rt) ||
	    kr_rt_send(rt, ws_s, T_GO, 0, 0) || !wait_flag(&ws_spinning, 1, 30))
		return 12;
	usleep(2000 + (useconds_t)(seed % 10000));
	double end = now_s() + 30;
	while (kr_alive(rt) > WS_T && now_s() < end) {
		kr_rt_exit(rt, ws_s, KR_KILL);
		usleep(2000);
	}
	if (kr_alive(rt) != WS_T)
		return 13;
	for (uint32_t i = 0; i < WS_T; i++)
		kr_rt_send(rt, ws_t[i], T_END, 0, 0);
	end = now_s() + 10;
	while (atomic_load(&ws_ended) < WS_T && now_s() < end)
		usleep(1000);
	int ended = atomic_load(&ws_ended);
	if (ended < WS_T) {
		fprintf(stderr, "%d of %d targets never handled their END: runnable on no queue\n",
			WS_T - ended, WS_T);
		return 14;
	}
	kr_wait(rt);
	long lost = 0, extra = 0;
	for (uint32_t i = 0; i < WS_T; i++) {
		lost += ws_handled[i] < ws_sent[i];
		extra += ws_handled[i] > ws_sent[i] + 1;
	}
	kr_runtime_free(rt);
	if (lost || extra) {
		fprintf(stderr, "%ld targets lost messages, %ld got extra ones\n", lost, extra);
		return 15;
	}
	return 0;
}

/* S is stuck in a loop of kr_send to WS_T targets, waking them one after the other (each send
 * readies a process), and is killed at a random moment. Then every target must handle an END
 * and have handled all S sent it (one more if the kill came between a push and S's count).
 * The interrupt lands anywhere in S's kr_send: in the allocator, between the push and the
 * ready, in the run queue. The rounds run in a child process with a deadline: a runtime left
 * deadlocked (a lock held by the interrupted call) cannot be stopped or freed. */
static void killing_a_call_stuck_in_sends_loses_no_process_and_no_message(void **st)
{
	const char *env = getenv("KRILL_WS_ROUNDS");
	int rounds = env ? atoi(env) : TSAN ? 20 : 300;
	_Atomic int *done =
	    mmap(0, sizeof(*done), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(done != MAP_FAILED);
	atomic_store(done, 0);
	fflush(0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint64_t seed = 0x2545f4914f6cdd1dull;
		for (int r = 0; r < rounds; r++) {
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			int rc = ws_round(seed);
			if (rc)
				_exit(rc);
			atomic_store(done, r + 1);
		}
		_exit(0);
	}
	/* A round takes milliseconds; none finishing for 15 s is a deadlock. */
	int status = 0, seen = 0;
	double last = now_s();
	pid_t w;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_s() < last + 15) {
		usleep(10000);
		if (atomic_load(done) != seen) {
			seen = atomic_load(done);
			last = now_s();
		}
	}
	int completed = atomic_load(done);
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		print_error(
		    "deadlocked in round %d of %d: a killed call held a lock (the allocator's) "
		    "that every scheduler then waits for\n",
		    completed + 1, rounds);
		munmap(done, sizeof(*done));
		fail();
	}
	munmap(done, sizeof(*done));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		print_error("failed in round %d of %d: status %#x\n", completed + 1, rounds,
			    status);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(completed, rounds);
}

/* ---- faults outside behaviours are not contained ------------------------------------------ */

static void b_idle(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_END)
		kr_exit(ctx, KR_NORMAL);
}

/* In a child: with the default action for SIGSEGV (cmocka's and the sanitizers' handlers
 * removed), fault on the main thread either while a runtime runs (krill's handler is installed
 * but the thread runs no behaviour) or after the run (the handler is gone). Returns the wait
 * status and what the child wrote to stderr. */
static int fault_in_child(int during_run, char *err, size_t errlen)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	fflush(0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGSEGV, &dfl, 0);
		kr_config c;
		kr_runtime *rt = 0;
		kr_config_init(&c);
		c.schedulers = 1;
		c.pin = 0;
		c.stats = 0;
		if (kr_runtime_new(&c, &rt))
			_exit(3);
		kr_pid p;
		if (kr_rt_spawn(rt, b_idle, 0, 0, &p))
			_exit(4);
		if (during_run) {
			if (kr_start(rt))
				_exit(5);
		} else {
			kr_rt_send(rt, p, T_END, 0, 0);
			if (kr_run(rt))
				_exit(6);
		}
		fault_null();
		_exit(42); /* survived: the fault was swallowed */
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < errlen && (r = read(fds[0], err + n, errlen - 1 - n)) > 0)
		n += (size_t)r;
	err[n] = 0;
	close(fds[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void a_fault_outside_any_behaviour_is_fatal_and_reported(void **st)
{
	char err[4096];
	int status = fault_in_child(1, err, sizeof(err));
	assert_false(WIFEXITED(status) && (WEXITSTATUS(status) == 42 || WEXITSTATUS(status) == 0));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	assert_non_null(strstr(err, "krill: fatal fault outside any process: signal 11"));
	assert_non_null(strstr(err, "(not a scheduler thread)"));
}

static void a_fault_after_the_run_is_not_handled_by_krill(void **st)
{
	char err[4096];
	int status = fault_in_child(0, err, sizeof(err));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	assert_null(strstr(err, "krill:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_contained_fault_leaves_the_thread_signal_mask_as_it_was),
	    cmocka_unit_test(null_dereference_ends_the_process_alone_with_sigsegv_at_address_0),
	    cmocka_unit_test(division_by_zero_ends_the_process_alone_with_sigfpe),
	    cmocka_unit_test(abort_ends_the_process_alone_with_sigabrt),
	    cmocka_unit_test(failed_assert_ends_the_process_alone_with_sigabrt),
	    cmocka_unit_test(trap_instruction_ends_the_process_alone_with_sigill),
	    cmocka_unit_test(stack_overflow_ends_the_process_alone_flagged_as_overflow),
	    cmocka_unit_test(bus_error_ends_the_process_alone_with_sigbus_at_the_address),
	    cmocka_unit_test(
		a_thousand_segfaults_in_a_row_on_one_scheduler_thread_are_all_contained),
	    cmocka_unit_test(a_thousand_segfaults_in_a_row_in_deterministic_mode_are_all_contained),
	    cmocka_unit_test(every_kind_of_fault_in_a_row_is_contained),
	    cmocka_unit_test(a_crash_releases_the_state_messages_timers_and_name_of_the_process),
	    cmocka_unit_test(a_storm_of_segfaults_among_many_processes_loses_and_repeats_nothing),
	    cmocka_unit_test(kill_interrupts_a_behaviour_stuck_in_an_endless_loop),
	    cmocka_unit_test(killing_a_call_stuck_in_sends_loses_no_process_and_no_message),
	    cmocka_unit_test(a_fault_outside_any_behaviour_is_fatal_and_reported),
	    cmocka_unit_test(a_fault_after_the_run_is_not_handled_by_krill),
	};
	if (getenv("KRILL_TEST_FILTER")) /* e.g. KRILL_TEST_FILTER='*overflow*' */
		cmocka_set_test_filter(getenv("KRILL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, 0, 0);
}
