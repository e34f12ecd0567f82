/* test_arena: what a scheduler's arena promises beyond malloc: freed blocks
 * of a few KiB come back for the next allocations, not a page fault a
 * block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "alloc/arena.h"

#ifdef KR_JEMALLOC
static long minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}
#endif

#define NBLK   1024
#define ROUNDS 50

/* A thousand message-sized blocks in flight, freed, again and again (a
 * consumer behind its producers). jemalloc merges the freed slabs into
 * extents it will not cut small slabs from again and faults fresh pages in
 * instead, about one a block (57 k here); the arena's extents do not merge,
 * so after the first round the same pages serve. */
static void freed_blocks_of_a_few_kib_are_reused_without_page_faults(void **st)
{
#ifndef KR_JEMALLOC
	skip(); /* the sanitizer build's malloc trims as it likes */
#else
	static void *blk[NBLK];
	const size_t n = 4112; /* a 4 KiB message and its envelope */
	struct arena a;
	assert_int_equal(kri_arena_init(&a), 0);
	long before = minor_faults();
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < NBLK; i++) {
			blk[i] = arena_alloc(&a, n);
			assert_non_null(blk[i]);
			memset(blk[i], r, n);
		}
		for (int i = 0; i < NBLK; i++)
			arena_free(&a, blk[i], n);
	}
	long faults = minor_faults() - before;
	print_message("%ld page faults for %d rounds of %d blocks\n", faults, ROUNDS, NBLK);
	assert_true(faults < 4 * NBLK); /* the first round's pages, and some slack */
	kri_arena_fini(&a);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(freed_blocks_of_a_few_kib_are_reused_without_page_faults),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
