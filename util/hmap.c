/* hmap: the out-of-line part of the hash map (util/hmap.h): growth, and
 * freeing. Growth is rare next to lookups, and kept apart so that the
 * inline reserve test does not carry its register saves at every call. */
#include "util/hmap.h"

#include <errno.h>
#include <stdlib.h>

#include "alloc/arena.h"

void *kri_hmap_libc_alloc(void *ctx, size_t bytes)
{
	return calloc(1, bytes); /* fresh pages need no clearing */
}

void kri_hmap_libc_free(void *ctx, void *p, size_t bytes)
{
	free(p);
}

void *kri_hmap_arena_alloc(void *arena, size_t bytes)
{
	void *p = arena_alloc(arena, bytes);
	if (p)
		memset(p, 0, bytes);
	return p;
}

void kri_hmap_arena_free(void *arena, void *p, size_t bytes)
{
	arena_free(arena, p, bytes);
}

__attribute__((noinline)) int kri_hmap_grow(struct kri_hmap *m, const struct kri_hmap_kind *k,
					    void *ctx)
{
	uint32_t ocap = m->mask ? m->mask + 1 : 0, cap = ocap ? 2 * ocap : k->mincap;
	if (ocap > UINT32_MAX / 2)
		return -ENOMEM;
	size_t bytes = (size_t)cap * k->esize;
	void *t = k->alloc(ctx, bytes);
	if (!t)
		return -ENOMEM;
	struct kri_hmap old = *m;
	*m = (struct kri_hmap){.mask = cap - 1, .t = t};
	void *e;
	for (uint32_t i = 0; (e = kri_hmap_next(&old, k, &i));)
		memcpy(kri_hmap_insert(m, k, kri_hmap_key(e)), e, k->esize);
	if (ocap)
		k->free(ctx, old.t, (size_t)ocap * k->esize);
	return 0;
}

void kri_hmap_fini(struct kri_hmap *m, const struct kri_hmap_kind *k, void *ctx)
{
	if (m->mask)
		k->free(ctx, m->t, ((size_t)m->mask + 1) * k->esize);
	*m = (struct kri_hmap){0};
}
