/* registry: names for pids (registry.c). */
#ifndef KR_REGISTRY_H
#define KR_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "krill.h"

struct registry;
struct kr_runtime;

int kri_registry_new(struct registry **out);
void kri_registry_free(struct registry *r);
void kri_registry_drop_pid(struct kr_runtime *rt, kr_pid pid);
int kri_registry_name_of(struct kr_runtime *rt, kr_pid pid, char *buf, size_t len);
uint64_t kri_registry_count(struct registry *r);
/* The name pid is registered under, copied into buf (NUL-terminated,
 * truncated to len - 1 bytes): 0, or -ENOENT with buf "". Any thread. */
int kri_registry_name_of(struct kr_runtime *rt, kr_pid pid, char *buf, size_t len);

#endif
