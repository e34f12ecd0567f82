/* registry: names for processes (register / whereis / unregister), as
 * Erlang's. A hash table under a read-write lock: lookups are frequent and
 * share the lock, changes are rare. A process holds at most one name, and
 * its exit removes it (proc.c sees P_NAMED and calls registry_drop_pid). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/registry/registry.h"
#include "core/sched/sched.h"

struct name {
	struct name *next;  /* bucket chain by name */
	struct name *pnext; /* bucket chain by pid */
	kr_pid pid;
	char s[KR_NAME_MAX + 1];
};

struct registry {
	pthread_rwlock_t lock;
	unsigned nb; /* buckets, a power of two */
	unsigned count;
	struct name **byname, **bypid;
	/* Changes of the names, for the stats segment's names table (stats.c):
	 * bumped under the write lock; read without it by the publisher, who
	 * skips the copy when it has not moved. */
	_Atomic uint64_t gen;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static uint64_t hash_pid(kr_pid p)
{
	p ^= p >> 33;
	p *= 0xff51afd7ed558ccdull;
	return p ^ (p >> 33);
}

int kri_registry_new(struct registry **out)
{
	struct registry *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->nb = 64;
	r->byname = calloc(r->nb, sizeof(*r->byname));
	r->bypid = calloc(r->nb, sizeof(*r->bypid));
	if (!r->byname || !r->bypid) {
		free(r->byname);
		free(r->bypid);
		free(r);
		return -ENOMEM;
	}
	pthread_rwlock_init(&r->lock, 0);
	*out = r;
	return 0;
}

void kri_registry_free(struct registry *r)
{
	for (unsigned b = 0; b < r->nb; b++) {
		struct name *n = r->byname[b];
		while (n) {
			struct name *next = n->next;
			free(n);
			n = next;
		}
	}
	free(r->byname);
	free(r->bypid);
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

static struct name **find_name(struct registry *r, const char *s)
{
	struct name **pp = &r->byname[hash_str(s) & (r->nb - 1)];
	while (*pp && strcmp((*pp)->s, s) != 0)
		pp = &(*pp)->next;
	return pp;
}

static struct name **find_pid(struct registry *r, kr_pid pid)
{
	struct name **pp = &r->bypid[hash_pid(pid) & (r->nb - 1)];
	while (*pp && (*pp)->pid != pid)
		pp = &(*pp)->pnext;
	return pp;
}

/* Double the buckets when full enough; on failure keep the old table. */
static void grow(struct registry *r)
{
	unsigned nb = r->nb * 2;
	struct name **byname = calloc(nb, sizeof(struct name *)),
		    **bypid = calloc(nb, sizeof(struct name *));
	if (!byname || !bypid) {
		free(byname);
		free(bypid);
		return;
	}
	for (unsigned b = 0; b < r->nb; b++) {
		struct name *n = r->byname[b];
		while (n) {
			struct name *next = n->next;
			unsigned i = hash_str(n->s) & (nb - 1), j = hash_pid(n->pid) & (nb - 1);
			n->next = byname[i];
			byname[i] = n;
			n->pnext = bypid[j];
			bypid[j] = n;
			n = next;
		}
	}
	free(r->byname);
	free(r->bypid);
	r->byname = byname;
	r->bypid = bypid;
	r->nb = nb;
}

static void unlink_name(struct registry *r, struct name *n)
{
	*find_name(r, n->s) = n->next;
	*find_pid(r, n->pid) = n->pnext;
	r->count--;
	/* Relaxed: under the write lock; a publisher that reads it stale
	 * copies on its next round, and the copy itself is under the lock. */
	atomic_fetch_add_explicit(&r->gen, 1, memory_order_relaxed);
	free(n);
}

static int check_name(const char *s)
{
	if (!s || !*s || strnlen(s, KR_NAME_MAX + 1) > KR_NAME_MAX)
		return -EINVAL;
	return 0;
}

static int register_in(kr_runtime *rt, const char *s, kr_pid pid)
{
	int err;
	if (!rt || check_name(s))
		return -EINVAL;
	struct registry *r = rt->reg;
	struct proc *p = kri_proc_lookup(rt, pid, &err);
	if (!p)
		return -ESRCH;
	struct name *n = malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	pthread_rwlock_wrlock(&r->lock);
	if (*find_name(r, s) || *find_pid(r, pid)) {
		pthread_rwlock_unlock(&r->lock);
		free(n);
		return -EEXIST;
	}
	if (r->count >= r->nb)
		grow(r);
	memcpy(n->s, s, strlen(s) + 1); /* check_name bounded it */
	n->pid = pid;
	struct name **a = find_name(r, s), **b = find_pid(r, pid);
	n->next = *a;
	*a = n;
	n->pnext = *b;
	*b = n;
	r->count++;
	atomic_fetch_add_explicit(&r->gen, 1, memory_order_relaxed); /* as in unlink_name */
	/* Seq_cst, then re-read the generation: either the exiting process
	 * sees P_NAMED and drops the name, or we see it dead and do. */
	atomic_fetch_or_explicit(&p->aflags, P_NAMED, memory_order_seq_cst);
	if (atomic_load_explicit(&p->gen, memory_order_seq_cst) != pid_gen(pid)) {
		unlink_name(r, n);
		pthread_rwlock_unlock(&r->lock);
		return -ESRCH;
	}
	pthread_rwlock_unlock(&r->lock);
	return 0;
}

int kr_register(kr_runtime *rt_, const char *s, kr_pid pid)
{
	struct sched *cur = kri_api_sched();
	api_enter(cur);
	int rc = register_in(rt_, s, pid);
	api_leave(cur);
	return rc;
}

static kr_pid whereis_in(kr_runtime *rt, const char *s)
{
	if (!rt || check_name(s))
		return 0;
	pthread_rwlock_rdlock(&rt->reg->lock);
	struct name *n = *find_name(rt->reg, s);
	kr_pid pid = n ? n->pid : 0;
	pthread_rwlock_unlock(&rt->reg->lock);
	return pid;
}

kr_pid kr_whereis(kr_runtime *rt_, const char *s)
{
	struct sched *cur = kri_api_sched();
	api_enter(cur);
	kr_pid rc = whereis_in(rt_, s);
	api_leave(cur);
	return rc;
}

static int unregister_in(kr_runtime *rt, const char *s)
{
	if (!rt || check_name(s))
		return -EINVAL;
	pthread_rwlock_wrlock(&rt->reg->lock);
	struct name *n = *find_name(rt->reg, s);
	if (n)
		unlink_name(rt->reg, n);
	pthread_rwlock_unlock(&rt->reg->lock);
	return n ? 0 : -ENOENT;
}

int kr_unregister(kr_runtime *rt_, const char *s)
{
	struct sched *cur = kri_api_sched();
	api_enter(cur);
	int rc = unregister_in(rt_, s);
	api_leave(cur);
	return rc;
}

uint64_t kri_registry_count(struct registry *r)
{
	pthread_rwlock_rdlock(&r->lock);
	uint64_t n = r->count;
	pthread_rwlock_unlock(&r->lock);
	return n;
}

void kri_registry_drop_pid(struct kr_runtime *rt, kr_pid pid)
{
	pthread_rwlock_wrlock(&rt->reg->lock);
	struct name *n = *find_pid(rt->reg, pid);
	if (n)
		unlink_name(rt->reg, n);
	pthread_rwlock_unlock(&rt->reg->lock);
}

int kri_registry_name_of(struct kr_runtime *rt, kr_pid pid, char *buf, size_t len)
{
	int rc = -ENOENT;
	if (len)
		buf[0] = 0;
	pthread_rwlock_rdlock(&rt->reg->lock);
	struct name *n = *find_pid(rt->reg, pid);
	if (n) {
		if (len)
			snprintf(buf, len, "%s", n->s);
		rc = 0;
	}
	pthread_rwlock_unlock(&rt->reg->lock);
	return rc;
}

uint64_t kri_registry_gen(struct registry *r)
{
	/* Relaxed: a hint whether to copy; kri_registry_copy reads it again
	 * under the lock, where it matches the names copied. */
	return atomic_load_explicit(&r->gen, memory_order_relaxed);
}

uint64_t kri_registry_copy(struct registry *r, struct kri_reg_entry *out, unsigned cap, unsigned *n,
			   uint64_t *gen)
{
	unsigned k = 0;
	pthread_rwlock_rdlock(&r->lock);
	for (unsigned b = 0; b < r->nb && k < cap; b++)
		for (struct name *e = r->byname[b]; e && k < cap; e = e->next) {
			/* Zero past the NUL: the bytes go to another process. */
			size_t len = strlen(e->s);
			memset(out[k].s, 0, sizeof(out[k].s));
			memcpy(out[k].s, e->s, len);
			out[k].pid = e->pid;
			k++;
		}
	uint64_t total = r->count;
	/* Relaxed: changes happen under the write lock, which we exclude. */
	*gen = atomic_load_explicit(&r->gen, memory_order_relaxed);
	pthread_rwlock_unlock(&r->lock);
	*n = k;
	return total;
}
