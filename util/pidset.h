/* pidset: a set of pids (any nonzero 64-bit ids), as a process's links
 * are kept. Most sets hold one pid (a supervisor's child has just its
 * supervisor): that one is held in the set itself and costs no table.
 * More are a util/hmap.h table, a quarter full at most, whose tables come
 * from the caller's arena; so a supervisor with thousands of children adds
 * and drops one in O(1). 16 bytes, and all zero is the empty set. */
#ifndef KRI_PIDSET_H
#define KRI_PIDSET_H

#include <stdbool.h>
#include <stdint.h>

#include "util/hmap.h"

struct arena;

struct kri_pidset {
	/* Which member holds the set: map.mask, read through either (the
	 * members' common initial sequence, mask and n). */
	union {
		struct kri_hmap map; /* mask != 0: a table of pids */
		struct {
			uint32_t mask; /* 0 */
			uint32_t n;    /* 0 or 1 */
			uint64_t one;  /* the set's only pid; 0 when n is 0 */
		} small;
	};
};
_Static_assert(sizeof(struct kri_pidset) == 16, "a pid set is two words of the side record");

/* Its tables. Static, with its initializer in sight, so that the inline
 * lookups below are compiled for 8-byte entries. */
static const struct kri_hmap_kind kri_pidset_kind = {
    .esize = sizeof(uint64_t),
    .mincap = 8,
    .fill = 1,
    .alloc = kri_hmap_arena_alloc,
    .free = kri_hmap_arena_free,
};

static inline uint32_t kri_pidset_count(const struct kri_pidset *s)
{
	return s->map.n;
}

static inline bool kri_pidset_has(const struct kri_pidset *s, uint64_t pid)
{
	if (s->map.mask == 0)
		return s->small.one == pid;
	return kri_hmap_find(&s->map, &kri_pidset_kind, pid) != NULL;
}

/* The room kri_pidset_reserve asks for: a table, or a bigger one. */
int kri_pidset_grow(struct kri_pidset *s, struct arena *a);

/* Room for one more pid: 0, or -ENOMEM and s unchanged. */
static inline int kri_pidset_reserve(struct kri_pidset *s, struct arena *a)
{
	if (s->map.mask != 0)
		return kri_hmap_reserve(&s->map, &kri_pidset_kind, a);
	return s->small.n == 0 ? 0 : kri_pidset_grow(s, a);
}

/* Add pid, not in s, with room reserved. */
static inline void kri_pidset_insert(struct kri_pidset *s, uint64_t pid)
{
	if (s->map.mask != 0) {
		kri_hmap_insert(&s->map, &kri_pidset_kind, pid);
		return;
	}
	s->small.one = pid;
	s->small.n = 1;
}

/* Add pid if it is not in s yet: 0, or -ENOMEM and s unchanged. */
static inline int kri_pidset_add(struct kri_pidset *s, struct arena *a, uint64_t pid)
{
	if (kri_pidset_has(s, pid))
		return 0;
	int rc = kri_pidset_reserve(s, a);
	if (rc)
		return rc;
	kri_pidset_insert(s, pid);
	return 0;
}

/* Remove pid; whether it was there. A table stays a table. */
static inline bool kri_pidset_del(struct kri_pidset *s, uint64_t pid)
{
	if (s->map.mask != 0)
		return kri_hmap_remove(&s->map, &kri_pidset_kind, pid);
	if (s->small.one != pid)
		return false;
	s->small.one = 0;
	s->small.n = 0;
	return true;
}

/* The next pid from *i on, or 0 after the last. Start with *i = 0; s must
 * not change meanwhile. */
static inline uint64_t kri_pidset_next(const struct kri_pidset *s, uint32_t *i)
{
	if (s->map.mask != 0) {
		const uint64_t *e = kri_hmap_next(&s->map, &kri_pidset_kind, i);
		return e ? *e : 0;
	}
	if (*i != 0)
		return 0;
	*i = 1;
	return s->small.one;
}

/* Free the table, if any; s is empty after. */
void kri_pidset_free(struct kri_pidset *s, struct arena *a);

#endif
