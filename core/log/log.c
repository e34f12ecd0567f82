/* log: the runtime's lines and where they go. Lines are said after the
 * event, on the thread it happened on (a scheduler, once a fault has been
 * recovered; or the thread in kr_runtime_free), never from a signal
 * handler: so snprintf is fine here. The one line said inside a handler
 * (a fatal fault outside any process) is fault.c's own, built without
 * stdio. The default sink is one write(2) of the line and its newline, so
 * lines from several schedulers never interleave. */
#include "core/log/log.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/sched/sched.h"

int kri_log_on(const struct kr_runtime *rt, int level)
{
	return rt && rt->cfg.log_level >= level;
}

void kri_log(const struct kr_runtime *rt, int level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX + 1];
	if (!kri_log_on(rt, level))
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, LOG_LINE_MAX, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > LOG_LINE_MAX - 1)
		n = LOG_LINE_MAX - 1;
	if (rt->cfg.log) {
		rt->cfg.log(rt->cfg.log_arg, level, line);
		return;
	}
	line[n] = '\n';
	ssize_t w = write(2, line, (size_t)n + 1);
	(void)w;
}

const char *kri_log_signame(int sig)
{
	switch (sig) {
	case SIGSEGV:
		return "SIGSEGV";
	case SIGBUS:
		return "SIGBUS";
	case SIGFPE:
		return "SIGFPE";
	case SIGILL:
		return "SIGILL";
	case SIGABRT:
		return "SIGABRT";
	case SIGTRAP:
		return "SIGTRAP";
	default:
		return NULL;
	}
}

void kri_log_reason(char *buf, size_t len, uint32_t reason, const void *payload, uint32_t plen)
{
	static const char *const names[] = {"normal", "shutdown", "kill", "killed", "noproc"};
	if (reason < sizeof(names) / sizeof(names[0])) {
		snprintf(buf, len, "%s", names[reason]);
		return;
	}
	if (reason != KR_FAULT) {
		snprintf(buf, len, "reason %u", reason);
		return;
	}
	if (plen < sizeof(kr_fault)) {
		snprintf(buf, len, "fault");
		return;
	}
	kr_fault f;
	memcpy(&f, payload, sizeof(f));
	const char *sig = kri_log_signame(f.signo);
	char num[16];
	if (!sig) {
		snprintf(num, sizeof(num), "signal %d", (int)f.signo);
		sig = num;
	}
	/* An address only where the kernel gives one: not for a signal sent
	 * by a program (si_code <= 0: abort's raise, a kill). */
	char at[32] = "";
	if (f.code > 0)
		snprintf(at, sizeof(at), " at 0x%llx", (unsigned long long)f.addr);
	snprintf(buf, len, "fault %s%s, pc 0x%llx%s", sig, at, (unsigned long long)f.pc,
		 f.stack_overflow ? ", stack overflow" : "");
}
