/* pidset: the out-of-line part of the pid set (util/pidset.h): making or
 * growing its table, freeing it. Apart from kri_pidset_reserve's test, and
 * not inlined there: a restart checks for room twice and almost never
 * grows, and inlined, the growth's register saves came with every check. */
#include "util/pidset.h"

#include <errno.h>

__attribute__((noinline)) int kri_pidset_grow(struct kri_pidset *s, struct arena *a)
{
	if (s->map.mask != 0)
		return kri_hmap_grow(&s->map, &kri_pidset_kind, a);
	/* From the pid held inline to a table. */
	struct kri_hmap m = {0};
	int rc = kri_hmap_grow(&m, &kri_pidset_kind, a);
	if (rc)
		return rc;
	if (s->small.n)
		kri_hmap_insert(&m, &kri_pidset_kind, s->small.one);
	s->map = m;
	return 0;
}

void kri_pidset_free(struct kri_pidset *s, struct arena *a)
{
	if (s->map.mask != 0)
		kri_hmap_fini(&s->map, &kri_pidset_kind, a);
	s->map = (struct kri_hmap){0};
}
