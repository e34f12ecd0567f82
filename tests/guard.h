/* guard: a runtime run with a deadline, for the tests. A scenario that hangs
 * (a lost wake-up, a message nobody handles) is stopped by force after the
 * deadline and reported, instead of holding CI until its timeout. */
#ifndef KR_TEST_GUARD_H
#define KR_TEST_GUARD_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "krill.h"

struct guard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, fired;
	double seconds;
	kr_runtime *rt;
};

static void *guard_main(void *arg)
{
	struct guard *g = arg;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)g->seconds;
	pthread_mutex_lock(&g->mu);
	while (!g->done)
		if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT)
			break;
	if (!g->done) {
		g->fired = 1;
		kr_stop(g->rt);
	}
	pthread_mutex_unlock(&g->mu);
	return 0;
}

/* kr_run (kr_wait if started) with a deadline of seconds; asserts it
 * returned 0. True if it ended by itself, false if the deadline stopped it. */
static inline bool guard_run(kr_runtime *rt, bool started, double seconds)
{
	struct guard g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, seconds, rt};
	pthread_t t;
	assert_int_equal(pthread_create(&t, 0, guard_main, &g), 0);
	int rc = started ? kr_wait(rt) : kr_run(rt);
	pthread_mutex_lock(&g.mu);
	g.done = 1;
	pthread_cond_signal(&g.cv);
	pthread_mutex_unlock(&g.mu);
	pthread_join(t, 0);
	assert_int_equal(rc, 0);
	return !g.fired;
}

#endif
