/* arena: per-scheduler jemalloc arenas and tcaches, or malloc in the
 * sanitizer build. The failure injector (builds with KR_TEST_HOOKS) lets
 * tests reach every -ENOMEM path without exhausting the machine. */
#include "alloc/arena.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#ifdef KR_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#ifdef KR_TEST_HOOKS
/* < 0: injector off. Relaxed: tests arm it before the runtime starts. */
_Atomic long kri_arena_fail_budget = -1;

int kri_arena_fail_after(long n)
{
	atomic_store_explicit(&kri_arena_fail_budget, n, memory_order_relaxed);
	return 0;
}

static int injected_failure(void)
{
	long b = atomic_load_explicit(&kri_arena_fail_budget, memory_order_relaxed);
	while (b >= 0) {
		if (b == 0)
			return 1;
		if (atomic_compare_exchange_weak_explicit(&kri_arena_fail_budget, &b, b - 1,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return 0;
	}
	return 0;
}
#else
/* Release builds: no injector, and no load of its budget per allocation. */
int kri_arena_fail_after(long n)
{
	(void)n;
	return -EOPNOTSUPP;
}

static inline int injected_failure(void)
{
	return 0;
}
#endif

#ifdef KR_JEMALLOC
/* jemalloc's own extent hooks less merge. Messages of a few KiB and more,
 * a thousand in flight, free whole slabs that jemalloc coalesces into
 * dirty extents it will not cut small slabs from again (no more than 64
 * times the size asked: opt.lg_extent_max_active_fit); it faults fresh
 * pages in instead, one fault a message, while the dirty ones decay.
 * Extents that never merge are reused as they are. */
static extent_hooks_t unmerged;
static bool unmerged_ok;
static pthread_once_t unmerged_once = PTHREAD_ONCE_INIT;

static void unmerged_init(void)
{
	extent_hooks_t *h;
	size_t sz = sizeof(h);
	if (mallctl("arena.0.extent_hooks", &h, &sz, NULL, 0) == 0) {
		unmerged = *h;
		unmerged.merge = NULL;
		unmerged_ok = true;
	}
}

/* Without them the arena works as jemalloc's default does. */
static void hooks_set(unsigned ind)
{
	char name[48];
	extent_hooks_t *h = &unmerged;
	pthread_once(&unmerged_once, unmerged_init);
	snprintf(name, sizeof(name), "arena.%u.extent_hooks", ind);
	if (unmerged_ok)
		(void)mallctl(name, NULL, NULL, &h, sizeof(h));
}

int kri_arena_init(struct arena *a)
{
	size_t sz = sizeof(unsigned);
	memset(a, 0, sizeof(*a));
	if (mallctl("arenas.create", &a->ind, &sz, NULL, 0))
		return -ENOMEM;
	hooks_set(a->ind);
	sz = sizeof(unsigned);
	if (mallctl("tcache.create", &a->tcache, &sz, NULL, 0))
		return -ENOMEM;
	a->ready = 1;
	return 0;
}

void kri_arena_fini(struct arena *a)
{
	for (unsigned k = 0; k < ARENA_KINDS; k++)
		for (unsigned c = 0; c < ARENA_CLASSES; c++) {
			while (a->cache[k][c]) {
				void *p = a->cache[k][c];
				a->cache[k][c] = *(void **)p;
				kri_arena_free_slow(a, p, 16 * (c + 1));
				arena_kbytes_add(a, k, -16 * (int64_t)(c + 1));
			}
			a->ncache[k][c] = 0;
		}
	for (unsigned k = 0; k < ARENA_KINDS; k++)
		arena_kind_publish(a, k);
	/* The arena itself stays: jemalloc cannot destroy an arena that may
	 * still own extents freed later by other threads' tcaches. */
	if (a->ready)
		mallctl("tcache.destroy", NULL, NULL, &a->tcache, sizeof(a->tcache));
	a->ready = 0;
}

static int flags(const struct arena *a)
{
	return a && a->ready ? MALLOCX_ARENA(a->ind) | MALLOCX_TCACHE(a->tcache) : 0;
}

void *kri_arena_alloc_slow(struct arena *a, size_t n)
{
	if (injected_failure())
		return NULL;
	void *p = mallocx(n ? n : 1, flags(a));
	if (p)
		arena_count(a, (int64_t)n);
	return p;
}

void *kri_arena_alloc_aligned(struct arena *a, size_t n, size_t align)
{
	if (injected_failure())
		return NULL;
	void *p = mallocx(n ? n : 1, flags(a) | MALLOCX_ALIGN(align));
	if (p)
		arena_count(a, (int64_t)n);
	return p;
}

void *kri_arena_alloc_zeroed(struct arena *a, size_t n, size_t align)
{
	if (injected_failure())
		return NULL;
	/* jemalloc knows when an extent is fresh from mmap (zero already)
	 * and only clears recycled memory. */
	void *p = mallocx(n ? n : 1, flags(a) | MALLOCX_ALIGN(align) | MALLOCX_ZERO);
	if (p)
		arena_count(a, (int64_t)n);
	return p;
}

void kri_arena_free_slow(struct arena *a, void *p, size_t n)
{
	if (!p)
		return;
	arena_count(a, -(int64_t)n);
	/* Free through the caller's own tcache: explicit tcaches are not
	 * thread-safe, and jemalloc returns the memory to its owning arena. */
	sdallocx(p, n ? n : 1, a && a->ready ? MALLOCX_TCACHE(a->tcache) : 0);
}

void kri_arena_stats(const struct arena *a, struct kri_arena_stats *st)
{
	char name[64];
	size_t pactive = 0, pdirty = 0, resident = 0, page = 4096, sz = sizeof(size_t);
	uint64_t epoch = 1;
	memset(st, 0, sizeof(*st));
	if (!a || !a->ready)
		return;
	sz = sizeof(epoch);
	mallctl("epoch", NULL, NULL, &epoch, sizeof(epoch));
	sz = sizeof(size_t);
	mallctl("arenas.page", &page, &sz, NULL, 0);
	snprintf(name, sizeof(name), "stats.arenas.%u.pactive", a->ind);
	sz = sizeof(size_t);
	mallctl(name, &pactive, &sz, NULL, 0);
	snprintf(name, sizeof(name), "stats.arenas.%u.pdirty", a->ind);
	sz = sizeof(size_t);
	mallctl(name, &pdirty, &sz, NULL, 0);
	snprintf(name, sizeof(name), "stats.arenas.%u.resident", a->ind);
	sz = sizeof(size_t);
	mallctl(name, &resident, &sz, NULL, 0);
	st->active = pactive * page;
	st->resident = resident;
	size_t small = 0, large = 0;
	snprintf(name, sizeof(name), "stats.arenas.%u.small.allocated", a->ind);
	sz = sizeof(size_t);
	mallctl(name, &small, &sz, NULL, 0);
	snprintf(name, sizeof(name), "stats.arenas.%u.large.allocated", a->ind);
	sz = sizeof(size_t);
	mallctl(name, &large, &sz, NULL, 0);
	st->allocated = small + large;
	(void)pdirty;
}
#else
int kri_arena_init(struct arena *a)
{
	memset(a, 0, sizeof(*a));
	a->ready = 1;
	return 0;
}

void kri_arena_fini(struct arena *a)
{
	a->ready = 0;
}

void *kri_arena_alloc_slow(struct arena *a, size_t n)
{
	if (injected_failure())
		return NULL;
	void *p = malloc(n ? n : 1);
	if (p)
		arena_count(a, (int64_t)n);
	return p;
}

void *kri_arena_alloc_aligned(struct arena *a, size_t n, size_t align)
{
	void *p = NULL;
	if (injected_failure())
		return NULL;
	if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, n ? n : 1))
		return NULL;
	arena_count(a, (int64_t)n);
	return p;
}

void *kri_arena_alloc_zeroed(struct arena *a, size_t n, size_t align)
{
	void *p = kri_arena_alloc_aligned(a, n, align);
	if (p)
		memset(p, 0, n);
	return p;
}

void kri_arena_free_slow(struct arena *a, void *p, size_t n)
{
	if (p)
		arena_count(a, -(int64_t)n);
	free(p);
}

void kri_arena_stats(const struct arena *a, struct kri_arena_stats *st)
{
	memset(st, 0, sizeof(*st));
}
#endif

void *kri_arena_alloc_kind_slow(struct arena *a, enum arena_kind k, size_t n)
{
	void *p = kri_arena_alloc_slow(a, n);
	if (p && a)
		arena_kbytes_add(a, k, (int64_t)n);
	return p;
}

void kri_arena_free_kind_slow(struct arena *a, enum arena_kind k, void *p, size_t n)
{
	if (p && a)
		arena_kbytes_add(a, k, -(int64_t)n);
	kri_arena_free_slow(a, p, n);
}

void *kri_arena_map(struct arena *a, size_t n, size_t align)
{
	if (injected_failure())
		return NULL;
	/* Map align more than needed and trim both ends to the boundary. */
	size_t span = n + align;
	unsigned char *m =
	    mmap(0, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uintptr_t start = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
	unsigned char *p = (unsigned char *)start;
	if (p > m)
		munmap(m, (size_t)(p - m));
	if (p + n < m + span)
		munmap(p + n, (size_t)(m + span - (p + n)));
	madvise(p, n, MADV_HUGEPAGE);
	arena_count(a, (int64_t)n);
	return p;
}

void kri_arena_unmap(struct arena *a, void *p, size_t n)
{
	if (!p)
		return;
	munmap(p, n);
	arena_count(a, -(int64_t)n);
}
