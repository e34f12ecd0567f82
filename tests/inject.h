/* inject: for the tests that make allocations fail on purpose. The
 * injector (arena_fail_after) is compiled only into builds with meson's
 * test_hooks option, which every CI build has; elsewhere (a release build)
 * such a test is skipped, not failed. */
#ifndef KR_TEST_INJECT_H
#define KR_TEST_INJECT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "alloc/arena.h"

/* Call first in a test that injects: skips it where the injector is out.
 * Disarms the injector as a side effect. */
#define need_injector()                           \
	do {                                      \
		if (kri_arena_fail_after(-1) < 0) \
			skip();                   \
	} while (0)

#endif
