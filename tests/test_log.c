/* Tests for what the runtime says (core/log/log.c, the crash report in core/proc/proc.c, the
 * fatal-fault line in core/fault/fault.c): one exact line for each unobserved crash (a fault,
 * a kill, a program's reason; named or not), nothing for a process with a link or a monitor,
 * nothing for KR_NORMAL and KR_SHUTDOWN, nothing at KR_LOG_NONE; the default sink writes the
 * line to stderr; the fatal line goes through the callback only when it is declared
 * async-signal-safe. */
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "krill.h"
#include "tests/guard.h"

#define WATCHDOG_S 120.0

enum { T_GO = 1, T_CRASH, T_END, T_DONE };

struct mode {
	unsigned n;
	int det;
	uint64_t seed;
};

static const struct mode modes[] = {{1, 0, 0}, {2, 0, 0}, {2, 1, 5}};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

static _Atomic int beh_bad;
#define BEH_CHECK(x)                                                                            \
	do {                                                                                    \
		if (!(x)) {                                                                     \
			fprintf(stderr, "failed in a behaviour: %s (line %d)\n", #x, __LINE__); \
			atomic_fetch_add(&beh_bad, 1);                                          \
		}                                                                               \
	} while (0)

#define MAXLINES 16
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char lines[MAXLINES][256];
static int levels[MAXLINES];
static int nlines;
static int log_cookie = 42;

static void collect(void *arg, int level, const char *line)
{
	pthread_mutex_lock(&log_mu);
	if (arg != &log_cookie)
		atomic_fetch_add(&beh_bad, 1);
	if (nlines < MAXLINES) {
		snprintf(lines[nlines], sizeof(lines[0]), "%s", line);
		levels[nlines] = level;
	}
	nlines++;
	pthread_mutex_unlock(&log_mu);
}

static kr_runtime *rt_make_with(const struct mode *m, int level,
				void (*log)(void *, int, const char *))
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.schedulers = m->n;
	c.pin = 0;
	c.stats = 0;
	c.deterministic = m->det;
	c.seed = m->seed;
	c.log = log;
	c.log_arg = &log_cookie;
	c.log_level = level;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	atomic_store(&beh_bad, 0);
	pthread_mutex_lock(&log_mu);
	nlines = 0;
	pthread_mutex_unlock(&log_mu);
	return rt;
}

static kr_runtime *rt_make(const struct mode *m)
{
	return rt_make_with(m, KR_LOG_WARNING, collect);
}

static kr_pid spawn(kr_runtime *rt, kr_behaviour b, const void *st, size_t len)
{
	kr_pid pid = 0;
	assert_int_equal(kr_rt_spawn(rt, b, st, len, &pid), 0);
	return pid;
}

static void post(kr_runtime *rt, kr_pid to, uint32_t tag, const void *d, size_t len)
{
	assert_int_equal(kr_rt_send(rt, to, tag, d, len), 0);
}

static void run_to_the_end(kr_runtime *rt)
{
	assert_true(guard_run(rt, false, WATCHDOG_S));
	assert_int_equal(kr_alive(rt), 0);
	assert_int_equal(atomic_load(&beh_bad), 0);
}

#define FAULTY __attribute__((noinline, no_sanitize("undefined", "thread")))

static FAULTY void fault_null(void)
{
	volatile int *volatile p = 0;
	// cppcheck-suppress nullPointer
	*p = 1; // NOLINT(clang-analyzer-core.NullDereference)
}

static char *pidstr(char *b, size_t len, kr_pid p)
{
	snprintf(b, len, "<%u.%u>", (unsigned)(uint32_t)p, (unsigned)(p >> 32));
	return b;
}

/* ---- the victims ------------------------------------------------------------------------ */

/* What its exit hook saw: the fault's pc, to write the expected line exactly. */
static kr_fault seen_fault;

static void keep_fault(void *arg, const kr_exit_info *info)
{
	(void)arg;
	if (info->reason == KR_FAULT)
		memcpy(&seen_fault, info->payload, sizeof(seen_fault));
}

/* On T_CRASH: fault; on T_END with a reason in the data: exit with it. */
static void b_victim(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == T_GO) {
		BEH_CHECK(kr_on_exit(ctx, keep_fault, 0) == 0);
	} else if (m->tag == T_CRASH) {
		fault_null();
	} else if (m->tag == T_END) {
		uint32_t r;
		memcpy(&r, m->data, sizeof(r));
		kr_exit(ctx, r);
	}
}

static void an_unobserved_fault_is_reported_in_one_exact_line(void **st)
{
	(void)st;
	for (unsigned i = 0; i < NMODES; i++) {
		for (int named = 0; named < 2; named++) {
			kr_runtime *rt = rt_make(&modes[i]);
			kr_pid v = spawn(rt, b_victim, 0, 0);
			if (named)
				assert_int_equal(kr_register(rt, "the-victim", v), 0);
			memset(&seen_fault, 0, sizeof(seen_fault));
			post(rt, v, T_GO, 0, 0);
			post(rt, v, T_CRASH, 0, 0);
			run_to_the_end(rt);
			kr_runtime_free(rt);
			char want[256], ps[32];
			snprintf(want, sizeof(want),
				 "krill: process %s%s exited: fault SIGSEGV at 0x0, pc 0x%llx",
				 pidstr(ps, sizeof(ps), v), named ? " (the-victim)" : "",
				 (unsigned long long)seen_fault.pc);
			assert_true(seen_fault.pc != 0);
			assert_int_equal(nlines, 1);
			assert_int_equal(levels[0], KR_LOG_ERROR);
			assert_string_equal(lines[0], want);
		}
	}
}

static void kills_and_other_reasons_are_reported_normal_and_shutdown_are_not(void **st)
{
	(void)st;
	static const uint32_t reasons[] = {KR_NORMAL, KR_SHUTDOWN, KR_REASON_USER, 0xffffffffu};
	for (unsigned i = 0; i < NMODES; i++) {
		kr_runtime *rt = rt_make(&modes[i]);
		kr_pid v[4], k = spawn(rt, b_victim, 0, 0);
		for (int j = 0; j < 4; j++) {
			v[j] = spawn(rt, b_victim, 0, 0);
			post(rt, v[j], T_END, &reasons[j], sizeof(reasons[j]));
		}
		assert_int_equal(kr_rt_exit(rt, k, KR_KILL), 0);
		run_to_the_end(rt);
		kr_runtime_free(rt);
		char want[3][128], ps[32];
		snprintf(want[0], sizeof(want[0]), "krill: process %s exited: reason 16",
			 pidstr(ps, sizeof(ps), v[2]));
		snprintf(want[1], sizeof(want[1]), "krill: process %s exited: reason 4294967295",
			 pidstr(ps, sizeof(ps), v[3]));
		snprintf(want[2], sizeof(want[2]), "krill: process %s exited: killed",
			 pidstr(ps, sizeof(ps), k));
		assert_int_equal(nlines, 3);
		/* In any order: several schedulers. */
		for (int w = 0; w < 3; w++) {
			int found = 0;
			for (int l = 0; l < 3; l++)
				found += strcmp(lines[l], want[w]) == 0;
			assert_int_equal(found, 1);
		}
	}
}

/* L traps exits and links to its victim; M monitors its own; both victims crash, then L and M
 * end normally: no line at all. */
static void b_observer(kr_ctx *ctx, void *st, const kr_msg *m)
{
	int link;
	memcpy(&link, st, sizeof(link));
	if (m->tag == T_GO) {
		kr_pid v;
		uint64_t ref;
		memcpy(&v, m->data, sizeof(v));
		if (link) {
			kr_trap_exit(ctx, 1);
			BEH_CHECK(kr_link(ctx, v) == 0);
		} else {
			BEH_CHECK(kr_monitor(ctx, v, &ref) == 0);
		}
		BEH_CHECK(kr_send(ctx, v, T_CRASH, 0, 0) == 0);
	} else if (m->tag == KR_TAG_EXIT || m->tag == KR_TAG_DOWN) {
		kr_exit_info x;
		memcpy(&x, m->data, m->len);
		BEH_CHECK(x.reason == KR_FAULT);
		kr_exit(ctx, KR_NORMAL);
	}
}

static void a_linked_or_monitored_crash_is_not_reported(void **st)
{
	(void)st;
	for (unsigned i = 0; i < NMODES; i++) {
		kr_runtime *rt = rt_make(&modes[i]);
		int yes = 1, no = 0;
		kr_pid vl = spawn(rt, b_victim, 0, 0), vm = spawn(rt, b_victim, 0, 0);
		kr_pid l = spawn(rt, b_observer, &yes, sizeof(yes));
		kr_pid m = spawn(rt, b_observer, &no, sizeof(no));
		post(rt, l, T_GO, &vl, sizeof(vl));
		post(rt, m, T_GO, &vm, sizeof(vm));
		run_to_the_end(rt);
		kr_runtime_free(rt);
		assert_int_equal(nlines, 0);
	}
}

static void level_none_says_nothing_and_error_lines_pass_every_other_level(void **st)
{
	(void)st;
	static const int lv[] = {KR_LOG_NONE, KR_LOG_ERROR, KR_LOG_INFO, KR_LOG_DEBUG};
	for (unsigned k = 0; k < sizeof(lv) / sizeof(lv[0]); k++) {
		kr_runtime *rt = rt_make_with(&modes[0], lv[k], collect);
		kr_pid v = spawn(rt, b_victim, 0, 0);
		post(rt, v, T_CRASH, 0, 0);
		run_to_the_end(rt);
		kr_runtime_free(rt);
		assert_int_equal(nlines, lv[k] == KR_LOG_NONE ? 0 : 1);
	}
	/* Out of range: refused. */
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	assert_int_equal(c.log_level, KR_LOG_WARNING);
	assert_null(c.log);
	c.log_level = KR_LOG_DEBUG + 1;
	assert_int_equal(kr_runtime_new(&c, &rt), -EINVAL);
	c.log_level = KR_LOG_NONE - 1;
	assert_int_equal(kr_runtime_new(&c, &rt), -EINVAL);
}

/* fd 2 into a memfd while f runs; what was written there, into out. */
static void capture_stderr(void (*f)(void), char *out, size_t len)
{
	int fd = memfd_create("krill-test-stderr", 0);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	f();
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	ssize_t n = pread(fd, out, len - 1, 0);
	close(fd);
	out[n > 0 ? n : 0] = 0;
}

static kr_pid default_victim;

static void crash_with_the_default_sink(void)
{
	kr_runtime *rt = rt_make_with(&modes[0], KR_LOG_WARNING, NULL);
	default_victim = spawn(rt, b_victim, 0, 0);
	post(rt, default_victim, T_CRASH, 0, 0);
	run_to_the_end(rt);
	kr_runtime_free(rt);
}

static void crash_with_level_none(void)
{
	kr_runtime *rt = rt_make_with(&modes[0], KR_LOG_NONE, NULL);
	kr_pid v = spawn(rt, b_victim, 0, 0);
	post(rt, v, T_CRASH, 0, 0);
	run_to_the_end(rt);
	kr_runtime_free(rt);
}

static void the_default_writes_the_line_to_stderr(void **st)
{
	(void)st;
	char out[1024], want[128], ps[32];
	capture_stderr(crash_with_the_default_sink, out, sizeof(out));
	snprintf(want, sizeof(want), "krill: process %s exited: fault SIGSEGV at 0x0, pc 0x",
		 pidstr(ps, sizeof(ps), default_victim));
	assert_non_null(strstr(out, want));
	/* One line, ending in a newline. */
	assert_true(strlen(out) > 0 && out[strlen(out) - 1] == '\n');
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
	capture_stderr(crash_with_level_none, out, sizeof(out));
	assert_string_equal(out, "");
}

/* ---- the fatal line, from a signal handler (in a child) --------------------------------- */

static void write_hooked(void *arg, int level, const char *line)
{
	/* Async-signal-safe: write(2) only. */
	char b[300];
	size_t n = strlen(line) < 290 ? strlen(line) : 290;
	memcpy(b, "HOOK:", 5);
	memcpy(b + 5, line, n);
	b[5 + n] = '\n';
	ssize_t r = write(2, b, n + 6);
	(void)r;
}

static _Atomic(pthread_t *) sched_thread;
static pthread_t sched_thread_id;

static void b_where(kr_ctx *ctx, void *st, const kr_msg *m)
{
	sched_thread_id = pthread_self();
	atomic_store(&sched_thread, &sched_thread_id);
}

/* In a child with the default action for SIGSEGV: a SIGSEGV sent to an idle scheduler thread
 * is a fault outside any process on a scheduler; what did the child write to stderr? */
static void fatal_in_child(int level, int safe, char *err, size_t errlen)
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
		c.log_level = level;
		c.log = write_hooked;
		c.log_signal_safe = safe;
		if (kr_runtime_new(&c, &rt))
			_exit(3);
		kr_pid p;
		if (kr_rt_spawn(rt, b_where, 0, 0, &p) || kr_start(rt) ||
		    kr_rt_send(rt, p, 1, 0, 0))
			_exit(4);
		for (int i = 0; i < 20000 && !atomic_load(&sched_thread); i++)
			usleep(100);
		if (!atomic_load(&sched_thread))
			_exit(5);
		usleep(10000); /* let it go idle */
		pthread_kill(sched_thread_id, SIGSEGV);
		/* A sent SIGSEGV is not re-raised on return: the child lives on. */
		usleep(100000);
		_exit(0);
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
}

static void the_fatal_line_goes_through_the_log_only_if_it_is_signal_safe(void **st)
{
	(void)st;
	char err[4096];
	const char *line = "krill: fatal fault outside any process: signal 11 at address 0x";
	fatal_in_child(KR_LOG_WARNING, 1, err, sizeof(err));
	assert_non_null(strstr(err, "HOOK:krill: fatal fault outside any process: signal 11"));
	assert_non_null(strstr(err, "(in scheduler code)\n"));
	fatal_in_child(KR_LOG_WARNING, 0, err, sizeof(err));
	assert_non_null(strstr(err, line));
	assert_non_null(strstr(err, "(in scheduler code)\n"));
	assert_null(strstr(err, "HOOK:"));
	fatal_in_child(KR_LOG_NONE, 1, err, sizeof(err));
	assert_null(strstr(err, "krill:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(an_unobserved_fault_is_reported_in_one_exact_line),
	    cmocka_unit_test(kills_and_other_reasons_are_reported_normal_and_shutdown_are_not),
	    cmocka_unit_test(a_linked_or_monitored_crash_is_not_reported),
	    cmocka_unit_test(level_none_says_nothing_and_error_lines_pass_every_other_level),
	    cmocka_unit_test(the_default_writes_the_line_to_stderr),
	    cmocka_unit_test(the_fatal_line_goes_through_the_log_only_if_it_is_signal_safe),
	};
	if (getenv("KRILL_TEST_FILTER"))
		cmocka_set_test_filter(getenv("KRILL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, 0, 0);
}
