/* log: what the runtime says (crash reports, faults in exit hooks) and
 * where it goes: kr_config's log callback, or one write(2) to stderr
 * (log.c). A leaf: it reads a runtime's configuration and nothing else. */
#ifndef KR_LOG_H
#define KR_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "krill.h"

struct kr_runtime;

/* The longest line said; longer ones are cut. */
#define LOG_LINE_MAX 256

/* Whether rt says lines of this level at all: test it before formatting. */
int kri_log_on(const struct kr_runtime *rt, int level);
/* Say one line (no newline) at level, formatted as printf: on a scheduler
 * or the thread freeing the runtime, never in a signal handler. */
void kri_log(const struct kr_runtime *rt, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "SIGSEGV", ..., or NULL for a signal it has no name for. */
const char *kri_log_signame(int sig);
/* A reason as a crash report words it (normal, killed, "fault SIGSEGV at
 * 0x10, pc 0x...", "reason 16"), into buf of len bytes. */
void kri_log_reason(char *buf, size_t len, uint32_t reason, const void *payload, uint32_t plen);

#endif
