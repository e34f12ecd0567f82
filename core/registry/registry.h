/* registry: names for pids (registry.c). */
#ifndef KR_REGISTRY_H
#define KR_REGISTRY_H

#include <stdint.h>

#include "krill.h"

struct registry;
struct runtime;

int registry_new(struct registry **out);
void registry_free(struct registry *r);
void registry_drop_pid(struct runtime *rt, kr_pid pid);
uint64_t registry_count(struct registry *r);

#endif
