/* cpuwant: other threads want this thread's CPU. Two signals from the
 * kernel: an involuntary switch (getrusage), which a spinner sees when its
 * slice ends, and the run delay (schedstat), the time runnable but not
 * running, which also counts each wake-up that waited for a CPU. */
#include "core/sched/cpuwant.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

void kri_cpuwant_init(struct cpuwant *w)
{
	w->fd = -1;
	w->nivcsw = -1;
	w->at = 0;
	w->delay = 0;
}

/* The second field of schedstat: ns runnable on a run queue, not running. */
static bool read_delay(struct cpuwant *w, uint64_t *delay)
{
	if (w->fd == -1) {
		w->fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
		if (w->fd < 0)
			w->fd = -2;
	}
	if (w->fd < 0)
		return false;
	char buf[96];
	ssize_t n = pread(w->fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return false;
	buf[n] = 0;
	char *end;
	errno = 0;
	(void)strtoull(buf, &end, 10);
	unsigned long long d = strtoull(end, &end, 10);
	if (errno)
		return false;
	*delay = d;
	return true;
}

uint64_t kri_cpuwant_hold(struct cpuwant *w, uint64_t now)
{
	uint64_t hold = 0;
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) == 0) {
		if (w->nivcsw >= 0 && ru.ru_nivcsw != w->nivcsw)
			hold = CPUWANT_SWITCHED;
		w->nivcsw = ru.ru_nivcsw;
	}
	uint64_t d;
	if (now - w->at >= CPUWANT_EVERY && read_delay(w, &d)) {
		if (w->at && (d - w->delay) * CPUWANT_SHARE > now - w->at)
			hold = CPUWANT_EVERY;
		w->at = now;
		w->delay = d;
	}
	return hold;
}

void kri_cpuwant_fini(struct cpuwant *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}
