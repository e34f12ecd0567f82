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
uint64_t kri_registry_count(struct registry *r);
/* The name pid is registered under, copied into buf (NUL-terminated,
 * truncated to len - 1 bytes): 0, or -ENOENT with buf "". Any thread. */
int kri_registry_name_of(struct kr_runtime *rt, kr_pid pid, char *buf, size_t len);

/* One name, as kri_registry_copy gives it. */
struct kri_reg_entry {
	kr_pid pid;
	char s[KR_NAME_MAX + 1];
};
/* Bumped by every change of the names (register, unregister, a named
 * process's exit): equal generations, the same names. Any thread. */
uint64_t kri_registry_gen(struct registry *r);
/* Up to cap names into out (*n of them), under the read lock, and the
 * generation they are of (*gen). Returns the names registered, which is
 * more than *n when cap was too small. Any thread. */
uint64_t kri_registry_copy(struct registry *r, struct kri_reg_entry *out, unsigned cap, unsigned *n,
			   uint64_t *gen);

#endif
