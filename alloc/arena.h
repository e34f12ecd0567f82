/* arena: where a scheduler's memory comes from. In the release build each
 * scheduler owns a jemalloc arena (NUMA-local once pinned) and an explicit
 * tcache; the sanitizer build routes everything through malloc so ASan and
 * LSan see every allocation. */
#ifndef KR_ARENA_H
#define KR_ARENA_H

#include <stddef.h>

/* One per scheduler, used only by its owner thread. A foreign thread passes
 * NULL and gets the process-wide allocator. */
struct arena {
	unsigned ind;    /* jemalloc arena index */
	unsigned tcache; /* jemalloc explicit tcache */
	int ready;
};

int arena_init(struct arena *a);
void arena_fini(struct arena *a);

/* Memory is freed with the same size it was allocated with; any thread may
 * free memory from any arena, passing its own arena (or NULL). */
void *arena_alloc(struct arena *a, size_t n);
void *arena_alloc_aligned(struct arena *a, size_t n, size_t align);
void arena_free(struct arena *a, void *p, size_t n);

/* Bytes allocated, active and resident in arena a, from jemalloc's stats
 * (all 0 with the system allocator). */
struct arena_stats {
	size_t allocated, active, resident;
};
void arena_stats(const struct arena *a, struct arena_stats *st);

/* Testing: make the allocation after the next n succeed-then-fail: after n
 * more successful allocations, every allocation fails until reset with
 * n < 0. Process-wide. */
void arena_fail_after(long n);

#endif
