/* Tests for cpuwant (core/sched/cpuwant.h), the signal that stops a
 * scheduler's I/O spin: a thread that shares its CPU with a busy thread is
 * told so, by its involuntary switches and by its run delay. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "core/sched/cpuwant.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

static _Atomic int rival_cpu = -1;
static _Atomic bool rival_stop;

/* A busy thread on the tester's CPU: the other program that wants it. */
static void *rival(void *arg)
{
	(void)arg;
	if (!pin(atomic_load(&rival_cpu)))
		return 0;
	while (!atomic_load_explicit(&rival_stop, memory_order_relaxed))
		;
	return 0;
}

/* The first look only takes its bearings: nothing is held. */
static void test_first_look_holds_nothing(void **state)
{
	(void)state;
	struct cpuwant w;
	kri_cpuwant_init(&w);
	assert_int_equal(kri_cpuwant_hold(&w, now_ns()), 0);
	kri_cpuwant_fini(&w);
}

/* Sharing one CPU with a busy thread for several windows: switched out
 * against its will (a short hold) and waiting runnable about half the time
 * (a window's hold). Either signal broken and this fails. */
static void test_a_shared_cpu_is_wanted(void **state)
{
	(void)state;
	int cpu = sched_getcpu();
	if (cpu < 0 || !pin(cpu))
		skip(); /* no affinity here: the CPUs cannot be made to compete */
	atomic_store(&rival_cpu, cpu);
	atomic_store(&rival_stop, false);
	pthread_t t;
	assert_int_equal(pthread_create(&t, 0, rival, 0), 0);
	struct cpuwant w;
	kri_cpuwant_init(&w);
	uint64_t start = now_ns(), now = start;
	bool switched = false, waited = false;
	(void)kri_cpuwant_hold(&w, now);
	while (!(switched && waited) && now - start < 40 * (uint64_t)CPUWANT_EVERY) {
		uint64_t hold = kri_cpuwant_hold(&w, now);
		switched |= hold == CPUWANT_SWITCHED;
		waited |= hold == CPUWANT_EVERY;
		now = now_ns();
	}
	atomic_store(&rival_stop, true);
	pthread_join(t, 0);
	kri_cpuwant_fini(&w);
	assert_true(switched);
	assert_true(waited);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_look_holds_nothing),
	    cmocka_unit_test(test_a_shared_cpu_is_wanted),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
