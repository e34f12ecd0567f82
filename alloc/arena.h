/* arena: where a scheduler's memory comes from. In the release build each
 * scheduler owns a jemalloc arena (NUMA-local once pinned) and an explicit
 * tcache; the sanitizer build routes everything through malloc so ASan and
 * LSan see every allocation. */
#ifndef KR_ARENA_H
#define KR_ARENA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* One per scheduler, used only by its owner thread. A foreign thread passes
 * NULL and gets the process-wide allocator. */
#define ARENA_CLASSES   8    /* cached sizes: 16, 32, ..., 128 bytes */
#define ARENA_CACHE_MAX 4096 /* objects kept a class */

/* What an allocation is for. Message envelopes have caches of their own,
 * so that what messages hold can be told from the rest without a counter
 * on the message path: the bytes they took from the allocator less what
 * sits in their caches (arena_kind_in_use). */
enum arena_kind { ARENA_OTHER = 0, ARENA_ENV = 1, ARENA_KINDS = 2 };

struct arena {
	unsigned ind;    /* jemalloc arena index */
	unsigned tcache; /* jemalloc explicit tcache */
	int ready;
	/* Free lists of small objects (envelopes, mostly): a message's
	 * envelope costs two pointer moves instead of a mallocx/sdallocx
	 * pair. Only in the jemalloc build: the sanitizer build must see
	 * every allocation. */
	void *cache[ARENA_KINDS][ARENA_CLASSES];
	unsigned ncache[ARENA_KINDS][ARENA_CLASSES];
	/* Bytes of each kind taken from the allocator through this arena
	 * struct less bytes given back through it (as bytes, below: the
	 * caches included, negative where others' memory is freed). Owner
	 * writes, on the slow paths alone, relaxed; anyone reads: summed
	 * live over the schedulers, so that messages streaming from one to
	 * another (hundreds of MB a second through these two counters) do
	 * not show as what the gap between two publications let through. */
	_Atomic int64_t kbytes[ARENA_KINDS];
	/* What the caches of each kind held at the owner's last
	 * arena_kind_publish (the caches' counts are the owner's alone:
	 * they change on the fast path). Bounded by the caches' size, and
	 * steady where messages stream. Owner writes, relaxed; anyone reads. */
	_Atomic int64_t kcached[ARENA_KINDS];
	/* Bytes taken from the allocator through this arena struct minus
	 * bytes given back through it (frees of others' memory make it go
	 * negative; the sum over a runtime's arenas is what it holds, the
	 * caches included). Owner writes, relaxed; anyone reads. */
	_Atomic int64_t bytes;
};

static inline void arena_count(struct arena *a, int64_t n)
{
	if (a)
		atomic_store_explicit(&a->bytes,
				      atomic_load_explicit(&a->bytes, memory_order_relaxed) + n,
				      memory_order_relaxed);
}

int kri_arena_init(struct arena *a);
void kri_arena_fini(struct arena *a);

/* Memory is freed with the same size it was allocated with; any thread may
 * free memory from any arena, passing its own arena (or NULL). */
void *kri_arena_alloc_slow(struct arena *a, size_t n);
void kri_arena_free_slow(struct arena *a, void *p, size_t n);
void *kri_arena_alloc_aligned(struct arena *a, size_t n, size_t align);
/* The same, counted in a->kbytes[k]: the way arena_alloc_kind and
 * arena_free_kind leave the inline path (out of line, so that the count
 * costs the inline path no registers). */
void *kri_arena_alloc_kind_slow(struct arena *a, enum arena_kind k, size_t n);
void kri_arena_free_kind_slow(struct arena *a, enum arena_kind k, void *p, size_t n);
/* Zeroed, aligned: fresh pages from the kernel are not written twice. */
void *kri_arena_alloc_zeroed(struct arena *a, size_t n, size_t align);
/* Big, long-lived tables (the slot chunks): zeroed memory straight from
 * the kernel, align-aligned, huge pages asked for; counted in a. Not
 * through jemalloc, whose bookkeeping of each such extent (its page map)
 * costs pages of its own: 8 KiB a 2 MiB chunk, 0.25 B a process. */
void *kri_arena_map(struct arena *a, size_t n, size_t align);
void kri_arena_unmap(struct arena *a, void *p, size_t n);

static inline unsigned arena_class(size_t n)
{
	return (unsigned)((n + 15) / 16) - 1;
}

/* Whether a test armed the failure injector (arena_fail_after): then the
 * cache is passed by, so that every allocation can fail. Without
 * KR_TEST_HOOKS (meson's test_hooks option, off in release builds) the
 * injector is not compiled at all and this is a constant. */
#ifdef KR_TEST_HOOKS
/* < 0 unless a test injects failures. */
extern _Atomic long kri_arena_fail_budget;
static inline int arena_fail_armed(void)
{
	/* Relaxed: a test arms it on the thread that then allocates, or
	 * before the runtime it fails starts. */
	return atomic_load_explicit(&kri_arena_fail_budget, memory_order_relaxed) >= 0;
}
#else
static inline int arena_fail_armed(void)
{
	return 0;
}
#endif

/* The cache's hits are not counted in bytes: an object in the cache is
 * held as much as one in use (the sum stays what the allocator gave out),
 * and a message's envelope then costs no counter update at all. k is a
 * constant at every call (arena_alloc, env_alloc): the kind picks a cache
 * and costs nothing. */
__attribute__((always_inline)) static inline void *arena_alloc_kind(struct arena *a,
								    enum arena_kind k, size_t n)
{
#ifdef KR_JEMALLOC
	if (a && n && n <= 16 * ARENA_CLASSES) {
		unsigned c = arena_class(n);
		void *p = a->cache[k][c];
		if (p && !arena_fail_armed()) {
			a->cache[k][c] = *(void **)p;
			a->ncache[k][c]--;
			return p;
		}
		/* Cached objects are the class's full size, whatever n was. */
		n = 16 * (c + 1);
	}
#endif
	return kri_arena_alloc_kind_slow(a, k, n);
}

__attribute__((always_inline)) static inline void
arena_free_kind(struct arena *a, enum arena_kind k, void *p, size_t n)
{
#ifdef KR_JEMALLOC
	if (p && n && n <= 16 * ARENA_CLASSES) {
		unsigned c = arena_class(n);
		n = 16 * (c + 1);
		if (!a || !a->ready)
			goto slow;
		if (a->ncache[k][c] < ARENA_CACHE_MAX) {
			*(void **)p = a->cache[k][c];
			a->cache[k][c] = p;
			a->ncache[k][c]++;
			return;
		}
	}
slow:
#endif
	kri_arena_free_kind_slow(a, k, p, n);
}

__attribute__((always_inline)) static inline void *arena_alloc(struct arena *a, size_t n)
{
	return arena_alloc_kind(a, ARENA_OTHER, n);
}

__attribute__((always_inline)) static inline void arena_free(struct arena *a, void *p, size_t n)
{
	arena_free_kind(a, ARENA_OTHER, p, n);
}

static inline void arena_kbytes_add(struct arena *a, enum arena_kind k, int64_t n)
{
	atomic_store_explicit(&a->kbytes[k],
			      atomic_load_explicit(&a->kbytes[k], memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Owner: note what the caches of kind k hold now (for arena_kind_in_use). */
static inline void arena_kind_publish(struct arena *a, enum arena_kind k)
{
	int64_t v = 0;
	for (unsigned c = 0; c < ARENA_CLASSES; c++)
		v += (int64_t)a->ncache[k][c] * 16 * (c + 1);
	atomic_store_explicit(&a->kcached[k], v, memory_order_relaxed);
}

/* Bytes of kind k in use through this arena: taken from the allocator,
 * less given back, less what waits in its caches (as of the owner's last
 * arena_kind_publish). Negative on an arena that frees more of them than
 * it allocates (a consumer of messages); the sum over a runtime's arenas
 * is what they hold. Any thread; relaxed: a snapshot. */
static inline int64_t arena_kind_in_use(const struct arena *a, enum arena_kind k)
{
	return atomic_load_explicit(&a->kbytes[k], memory_order_relaxed) -
	       atomic_load_explicit(&a->kcached[k], memory_order_relaxed);
}

/* Bytes allocated, active and resident in arena a, from jemalloc's stats
 * (all 0 with the system allocator). */
struct kri_arena_stats {
	size_t allocated, active, resident;
};
void kri_arena_stats(const struct arena *a, struct kri_arena_stats *st);

/* Testing: make the allocation after the next n succeed-then-fail: after n
 * more successful allocations, every allocation fails until reset with
 * n < 0. Process-wide. 0, or -EOPNOTSUPP in a build without KR_TEST_HOOKS
 * (tests that need it skip). */
int kri_arena_fail_after(long n);

#endif
