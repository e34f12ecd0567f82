/* monvec: a process's monitors (or a mailbox's waiters), a small unordered
 * array of (ref, pid) grown by doubling in the scheduler's arena. */
#include <errno.h>
#include <string.h>

#include "util/monvec.h"

int kri_monvec_add(struct arena *a, struct kri_monvec *v, uint64_t ref, uint64_t pid)
{
	if (v->n == v->cap) {
		uint32_t cap = v->cap ? v->cap * 2 : 4;
		struct mon *n = arena_alloc(a, cap * sizeof(struct mon));
		if (!n)
			return -ENOMEM;
		if (v->n)
			memcpy(n, v->v, v->n * sizeof(struct mon));
		if (v->v)
			arena_free(a, v->v, v->cap * sizeof(struct mon));
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = (struct mon){ref, pid};
	return 0;
}

/* Remove the monitor ref; its pid in *pid. */
bool kri_monvec_del(struct kri_monvec *v, uint64_t ref, uint64_t *pid)
{
	for (uint32_t i = 0; i < v->n; i++) {
		if (v->v[i].ref == ref) {
			if (pid)
				*pid = v->v[i].pid;
			v->v[i] = v->v[--v->n];
			return true;
		}
	}
	return false;
}

void kri_monvec_free(struct arena *a, struct kri_monvec *v)
{
	if (v->v)
		arena_free(a, v->v, v->cap * sizeof(struct mon));
	*v = (struct kri_monvec){0};
}
