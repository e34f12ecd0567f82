/* Tests for park's spin rule (core/sched/park.h, park_spin_learn): how long
 * a scheduler with I/O in flight spins before it sleeps grows while sleeps
 * end soon, is capped, and falls to none once traffic stops coming soon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/sched/park.h"

/* Short sleeps: from none to the start, doubling, never past the cap. */
static void test_short_sleeps_grow_the_spin_to_its_cap(void **state)
{
	(void)state;
	uint64_t spin = 0;
	spin = park_spin_learn(spin, 30000);
	assert_int_equal(spin, PARK_SPIN_START);
	spin = park_spin_learn(spin, 30000);
	assert_int_equal(spin, 2 * PARK_SPIN_START);
	for (int i = 0; i < 40; i++)
		spin = park_spin_learn(spin, PARK_SPIN_MAX);
	assert_int_equal(spin, PARK_SPIN_MAX);
}

/* Long sleeps: halve, and below the start, none (an idle server does not
 * spin: one long sleep after traffic stopped takes most of it away). */
static void test_long_sleeps_shrink_the_spin_to_none(void **state)
{
	(void)state;
	uint64_t spin = PARK_SPIN_MAX;
	spin = park_spin_learn(spin, PARK_SPIN_MAX + 1);
	assert_int_equal(spin, PARK_SPIN_MAX / 2);
	int n = 1;
	while (spin && n < 64) {
		spin = park_spin_learn(spin, 1000000000u);
		n++;
	}
	assert_int_equal(spin, 0);
	assert_true(n <= 6); /* 200 us -> 0 in a handful of long sleeps */
	assert_int_equal(park_spin_learn(0, 1000000000u), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_short_sleeps_grow_the_spin_to_its_cap),
	    cmocka_unit_test(test_long_sleeps_shrink_the_spin_to_none),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
