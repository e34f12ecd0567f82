/* slots: a table of fixed-size slots named by 32-bit indexes, for process
 * slots (the pid table) and timer records. Lookup is one shift, one load and
 * one add; slots live in chunks allocated from the spawning scheduler's
 * arena and are never unmapped while the table lives, so any thread may read
 * any slot of an index it was given. Knows nothing of what a slot holds. */
#ifndef KR_SLOTS_H
#define KR_SLOTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "alloc/arena.h"

#define SLOTS_CHUNK_BITS 15 /* 32768 slots a chunk: 2 MiB of 64-byte slots */
#define SLOTS_NIL        UINT32_MAX

/* Bytes [16, 32) of a free slot belong to the table (free-list links);
 * the rest of a slot keeps whatever its user left there (a generation). */
#define SLOTS_LINK_OFF 16

struct slots {
	uint32_t size;    /* bytes a slot, a power of two >= 32 */
	uint32_t max;     /* indexes are < max */
	uint32_t nchunks; /* entries in dir */
	_Atomic(unsigned char *) *dir;
	pthread_mutex_t lock;      /* growth and the shared pool */
	uint32_t grown;            /* chunks allocated */
	uint32_t fresh, fresh_end; /* never-used indexes of the newest chunk */
	uint32_t batch, take;      /* see slots_init */
	uint32_t keep;             /* batches' worth an owner's stash keeps; see slots_init */
	uint32_t pool;             /* shared batches of free indexes: first batch */
	uint64_t pooled;           /* indexes in the pool */
	uint64_t unowned;          /* bytes of chunks mapped with no arena (foreign spawns) */
};

/* Bytes of chunks mapped, and of those mapped with no arena (which no
 * arena counts). Any thread (takes the lock). */
void kri_slots_bytes(struct slots *s, uint64_t *mapped, uint64_t *unowned);
/* Bytes a chunk takes. */
size_t kri_slots_chunk_bytes(const struct slots *s);

/* A per-owner cache of free indexes; owner thread only (or under a lock).
 * Freed indexes fill the current batch; a full one moves whole to the
 * stash, and only what overflows the stash goes to the shared pool. */
struct slot_cache {
	uint32_t head, cur;      /* the current batch: first index, length */
	uint32_t stash, full;    /* whole batches kept: first batch, how many */
	uint32_t n;              /* indexes cached, current batch and stash */
	uint32_t bump, bump_end; /* never-used indexes taken from the table */
};

int kri_slots_init(struct slots *s, uint32_t size, uint64_t max);
/* Frees the chunks; free(chunk) goes through `a` (the caller's arena). */
void kri_slots_fini(struct slots *s, struct arena *a);

static inline void *slot_at(const struct slots *s, uint32_t i)
{
	unsigned char *c;
	if (i >= s->max)
		return 0;
	/* Acquire pairs with the release publishing a zeroed chunk, so a
	 * reader never sees a chunk's memory before it was zeroed. */
	c = atomic_load_explicit(&s->dir[i >> SLOTS_CHUNK_BITS], memory_order_acquire);
	return c ? c + (size_t)(i & ((1u << SLOTS_CHUNK_BITS) - 1)) * s->size : 0;
}

/* True if index i was ever handed out (its chunk exists). */
static inline int slot_exists(const struct slots *s, uint32_t i)
{
	return slot_at(s, i) != 0;
}

void kri_slot_cache_init(struct slot_cache *c);

/* Take a free index: from the cache, else a batch from the shared pool,
 * else a new zeroed chunk from arena a. -EAGAIN: all max indexes in use;
 * -ENOMEM. */
int kri_slots_get(struct slots *s, struct slot_cache *c, struct arena *a, uint32_t *out);

/* Give index i back; the caller guarantees nobody can still reach it. */
void kri_slots_put(struct slots *s, struct slot_cache *c, uint32_t i);
/* Give back n indexes linked head to tail through the uint32 at
 * SLOTS_LINK_OFF of each (a limbo list), without walking them. */
void kri_slots_put_list(struct slots *s, struct slot_cache *c, uint32_t head, uint32_t tail,
			uint32_t n);

/* Move every cached index, used or never used, to the shared pool (a
 * scheduler handing its cache back when a spawn found the table full). */
void kri_slots_flush(struct slots *s, struct slot_cache *c);

#endif
