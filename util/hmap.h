/* hmap: the one hash map of the library, keyed by nonzero 64-bit values
 * (pids, owner ids). Open addressing, linear probing, a power-of-two
 * capacity, and backward-shift deletion instead of tombstones.
 *
 * An entry is the user's own fixed-size struct whose first member is the
 * uint64_t key; a cell whose key is 0 is empty, and an empty cell is all
 * zero, so a new entry comes back zeroed but for its key. What differs
 * between users (entry size, first capacity, how full a table may get,
 * where tables come from) is a constant struct kri_hmap_kind; the lookups
 * are inline so that, given a constant kind, each user's copy is compiled
 * for its entry size. Only growth is out of line.
 *
 * Why no tombstones: a supervisor that restarts a child for ever removes a
 * pid and adds another each time; tombstones would fill its table and
 * force a rehash every so many restarts. A removal instead moves the rest
 * of its cluster back (Knuth's algorithm R), and since that scans the
 * cluster, users keep tables sparse (a quarter full costs about half the
 * scan of half full).
 *
 * Not thread-safe: each map has one owner, or its user's lock. */
#ifndef KRI_HMAP_H
#define KRI_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct kri_hmap {
	uint32_t mask; /* capacity - 1; 0 iff there is no table (capacities are >= 2) */
	uint32_t n;    /* entries held */
	void *t;       /* mask + 1 entries, or NULL */
};

/* What a user's map is made of. Constant, one per user. */
struct kri_hmap_kind {
	size_t esize;    /* bytes an entry: a multiple of 8, the uint64_t key first */
	uint32_t mincap; /* the first table's capacity: a power of two, >= 2 */
	uint32_t fill;   /* at most fill quarters of the cells hold an entry: 1..3 */
	/* Tables: alloc returns zeroed memory or NULL; free gets the size
	 * alloc was asked. */
	void *(*alloc)(void *ctx, size_t bytes);
	void (*free)(void *ctx, void *p, size_t bytes);
};

/* Allocators for kinds: malloc and free (ctx unused); a struct arena *
 * (alloc/arena.h) as ctx, NULL for the process-wide allocator. */
void *kri_hmap_libc_alloc(void *ctx, size_t bytes);
void kri_hmap_libc_free(void *ctx, void *p, size_t bytes);
void *kri_hmap_arena_alloc(void *arena, size_t bytes);
void kri_hmap_arena_free(void *arena, void *p, size_t bytes);

/* The first cell a key probes. Mixing first: pids differ mostly in their
 * low bits and in their generation, 32 bits up. */
static inline uint32_t kri_hmap_home(uint64_t key, uint32_t mask)
{
	key ^= key >> 29;
	key *= 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(key >> 32) & mask;
}

static inline void *kri_hmap_at(const struct kri_hmap *m, const struct kri_hmap_kind *k, uint32_t i)
{
	return (char *)m->t + (size_t)i * k->esize;
}

static inline uint64_t kri_hmap_key(const void *e)
{
	return *(const uint64_t *)e;
}

/* The entry for key (nonzero), or NULL. */
static inline void *kri_hmap_find(const struct kri_hmap *m, const struct kri_hmap_kind *k,
				  uint64_t key)
{
	if (!m->mask)
		return NULL;
	for (uint32_t i = kri_hmap_home(key, m->mask);; i = (i + 1) & m->mask) {
		void *e = kri_hmap_at(m, k, i);
		uint64_t c = kri_hmap_key(e);
		if (c == key)
			return e;
		if (c == 0)
			return NULL;
	}
}

/* A table with room for one more entry than now: the next one (as fill
 * allows), or twice the capacity. 0, or -ENOMEM and m unchanged. */
int kri_hmap_grow(struct kri_hmap *m, const struct kri_hmap_kind *k, void *ctx);

/* Room for one more entry, so that the next kri_hmap_insert cannot fail. */
static inline int kri_hmap_reserve(struct kri_hmap *m, const struct kri_hmap_kind *k, void *ctx)
{
	if (m->mask && 4 * ((uint64_t)m->n + 1) <= (uint64_t)k->fill * (m->mask + 1))
		return 0;
	return kri_hmap_grow(m, k, ctx);
}

/* Add key (nonzero, not in m) with room reserved; its entry, zero but the
 * key, for the caller to fill in. */
static inline void *kri_hmap_insert(struct kri_hmap *m, const struct kri_hmap_kind *k, uint64_t key)
{
	if (!m->t)
		__builtin_unreachable(); /* room was reserved: there is a table */
	uint32_t i = kri_hmap_home(key, m->mask);
	void *e;
	while (kri_hmap_key(e = kri_hmap_at(m, k, i)) != 0)
		i = (i + 1) & m->mask;
	*(uint64_t *)e = key;
	m->n++;
	return e;
}

/* Remove the entry e (of m, as kri_hmap_find gave it). Entries after it
 * in its cluster may move: pointers into m are stale after this. */
static inline void kri_hmap_delete(struct kri_hmap *m, const struct kri_hmap_kind *k, void *e)
{
	uint32_t mask = m->mask, i = (uint32_t)(((char *)e - (char *)m->t) / k->esize);
	/* i is a hole. Each later entry of the cluster, at j, is reached by
	 * its probe from its home h through every cell of [h, j]; if the
	 * hole is one of them, the entry moves into it and leaves a hole at
	 * j instead. The hole is on the path iff h is not cyclically in
	 * (i, j], that is, iff j is at least as far from h as from i, both
	 * counted forward round the table: (j - h) & mask >= (j - i) & mask.
	 * Unsigned subtraction and the mask are the wrap-around: a cluster
	 * that runs past the last cell into cell 0 (j < i, or h > j) needs
	 * no case of its own. The scan stops at an empty cell, and there is
	 * one: a table is never full. */
	for (uint32_t j = i;;) {
		j = (j + 1) & mask;
		void *ej = kri_hmap_at(m, k, j);
		uint64_t key = kri_hmap_key(ej);
		if (key == 0)
			break;
		if (((j - kri_hmap_home(key, mask)) & mask) < ((j - i) & mask))
			continue;
		memcpy(kri_hmap_at(m, k, i), ej, k->esize);
		i = j;
	}
	memset(kri_hmap_at(m, k, i), 0, k->esize);
	m->n--;
}

/* Remove key if present; whether it was. */
static inline bool kri_hmap_remove(struct kri_hmap *m, const struct kri_hmap_kind *k, uint64_t key)
{
	void *e = kri_hmap_find(m, k, key);
	if (e)
		kri_hmap_delete(m, k, e);
	return e != NULL;
}

/* The next entry from cell *i on, *i moved past it; NULL after the last.
 * Start with *i = 0; m must not change meanwhile. */
static inline void *kri_hmap_next(const struct kri_hmap *m, const struct kri_hmap_kind *k,
				  uint32_t *i)
{
	if (!m->mask)
		return NULL;
	while (*i <= m->mask) {
		void *e = kri_hmap_at(m, k, (*i)++);
		if (kri_hmap_key(e) != 0)
			return e;
	}
	return NULL;
}

/* Free the table; m is empty after. */
void kri_hmap_fini(struct kri_hmap *m, const struct kri_hmap_kind *k, void *ctx);

#endif
