/* monvec: a small unordered array of (ref, pid) in an arena: the monitors a
 * process holds or is held by (link.c), the senders waiting for room in a
 * limited mailbox (limit.c). A process holds few; a linear scan finds one. */
#ifndef KRI_MONVEC_H
#define KRI_MONVEC_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc/arena.h"

struct mon {
	uint64_t ref;
	uint64_t pid;
};

struct kri_monvec {
	struct mon *v;
	uint32_t n, cap;
};

/* Append (ref, pid); -ENOMEM leaves v as it was. */
int kri_monvec_add(struct arena *a, struct kri_monvec *v, uint64_t ref, uint64_t pid);
/* Remove the entry with ref, its pid in *pid (if pid): false if none. */
bool kri_monvec_del(struct kri_monvec *v, uint64_t ref, uint64_t *pid);
void kri_monvec_free(struct arena *a, struct kri_monvec *v);

#endif
