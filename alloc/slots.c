/* slots: chunked slot table with per-owner free lists and a shared pool.
 * Free indexes move between owners in batches so that a workload spawning
 * on one scheduler and exiting on another recycles slots instead of growing
 * the table, while the common spawn takes no lock. */
#include "alloc/slots.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BATCH 256u  /* free indexes moved to or from the pool at once */
#define KEEP  8u    /* batches' worth an owner keeps before it gives the oldest away */
#define TAKE  4096u /* fresh indexes taken from the table at once */

struct freelink {
	uint32_t next;  /* next free index in this batch */
	uint32_t batch; /* head slot of a pooled batch: next batch */
	uint32_t count; /* head slot of a pooled batch: its length */
	uint32_t pad;
};

static struct freelink *link_of(const struct slots *s, uint32_t i)
{
	return (struct freelink *)((unsigned char *)slot_at(s, i) + SLOTS_LINK_OFF);
}

int kri_slots_init(struct slots *s, uint32_t size, uint64_t max)
{
	memset(s, 0, sizeof(*s));
	if (size < 32 || (size & (size - 1)) || max == 0)
		return -EINVAL;
	if (max > UINT32_MAX - 1)
		max = UINT32_MAX - 1;
	s->size = size;
	s->max = (uint32_t)max;
	s->nchunks = (uint32_t)((max + (1u << SLOTS_CHUNK_BITS) - 1) >> SLOTS_CHUNK_BITS);
	/* calloc of the directory: at most 1 MiB, and untouched pages of it
	 * cost nothing. */
	s->dir = calloc(s->nchunks, sizeof(*s->dir));
	if (!s->dir)
		return -ENOMEM;
	s->pool = SLOTS_NIL;
	/* Batches scale down with a small table, and so does the stash, so
	 * caches cannot hide much of it: a small table's owner keeps at most
	 * two batches, 1/32 of it; a large one's KEEP + 1, under 2 % of it;
	 * more only while its newest batch is a longer list put whole. */
	s->batch = (uint32_t)(max / 64 < 1 ? 1 : max / 64 > BATCH ? BATCH : max / 64);
	uint64_t keep = max / (64 * (uint64_t)s->batch);
	s->keep = (uint32_t)(keep < 1 ? 1 : keep > KEEP ? KEEP : keep);
	s->take = (uint32_t)(max / 64 < 1 ? 1 : max / 64 > TAKE ? TAKE : max / 64);
	pthread_mutex_init(&s->lock, NULL);
	return 0;
}

static size_t chunk_bytes(const struct slots *s)
{
	return (size_t)s->size << SLOTS_CHUNK_BITS;
}

size_t kri_slots_chunk_bytes(const struct slots *s)
{
	return chunk_bytes(s);
}

void kri_slots_bytes(struct slots *s, uint64_t *mapped, uint64_t *unowned)
{
	pthread_mutex_lock(&s->lock);
	*mapped = (uint64_t)s->grown * chunk_bytes(s);
	*unowned = s->unowned;
	pthread_mutex_unlock(&s->lock);
}

void kri_slots_fini(struct slots *s, struct arena *a)
{
	if (!s->dir)
		return;
	for (uint32_t i = 0; i < s->grown; i++)
		kri_arena_unmap(a, atomic_load_explicit(&s->dir[i], memory_order_relaxed),
				chunk_bytes(s));
	free(s->dir);
	s->dir = NULL;
	pthread_mutex_destroy(&s->lock);
}

void kri_slot_cache_init(struct slot_cache *c)
{
	c->head = c->stash = SLOTS_NIL;
	c->cur = c->full = c->n = 0;
	c->bump = c->bump_end = 0;
}

/* Called with s->lock held and the cache empty. Fresh indexes are handed
 * out a few at a time (not a chunk to one owner), so that a small pid
 * space is shared between owners instead of sitting in one cache. */
static int refill(struct slots *s, struct slot_cache *c, struct arena *a)
{
	if (s->pool != SLOTS_NIL) {
		struct freelink *l = link_of(s, s->pool);
		c->head = s->pool;
		c->cur = c->n = l->count;
		s->pool = l->batch;
		s->pooled -= c->n;
		return 0;
	}
	if (s->fresh == s->fresh_end) {
		uint64_t first = (uint64_t)s->grown << SLOTS_CHUNK_BITS;
		if (s->grown == s->nchunks || first >= s->max)
			return -EAGAIN;
		size_t bytes = chunk_bytes(s);
		/* Zeroed: stale-pid readers of never-used slots must see
		 * generation 0 (free). 2 MiB alignment and the hint let the
		 * kernel back a chunk with one huge page when first touched. */
		unsigned char *chunk =
		    kri_arena_map(a, bytes, bytes < (2u << 20) ? 4096 : (2u << 20));
		if (!chunk)
			return -ENOMEM;
		atomic_store_explicit(&s->dir[s->grown], chunk, memory_order_release);
		s->grown++;
		if (!a)
			s->unowned += bytes;
		s->fresh = (uint32_t)first;
		s->fresh_end = (uint32_t)(first + (1u << SLOTS_CHUNK_BITS) < s->max
					      ? first + (1u << SLOTS_CHUNK_BITS)
					      : s->max);
	}
	uint32_t n = s->fresh_end - s->fresh < s->take ? s->fresh_end - s->fresh : s->take;
	c->bump = s->fresh;
	c->bump_end = s->fresh + n;
	s->fresh += n;
	return 0;
}

int kri_slots_get(struct slots *s, struct slot_cache *c, struct arena *a, uint32_t *out)
{
	if (c->head == SLOTS_NIL && c->stash != SLOTS_NIL) {
		struct freelink *l = link_of(s, c->stash);
		c->head = c->stash;
		c->cur = l->count;
		c->stash = l->batch;
		c->full--;
	}
	if (c->head == SLOTS_NIL && c->bump == c->bump_end) {
		pthread_mutex_lock(&s->lock);
		int rc = refill(s, c, a);
		pthread_mutex_unlock(&s->lock);
		if (rc)
			return rc;
	}
	if (c->head != SLOTS_NIL) {
		uint32_t i = c->head;
		c->head = link_of(s, i)->next;
		c->cur--;
		c->n--;
		/* The next pop's line, a miss when its batch came from the
		 * pool (another core's), is fetched while this process runs. */
		if (c->head != SLOTS_NIL)
			__builtin_prefetch(slot_at(s, c->head), 1);
		*out = i;
		return 0;
	}
	*out = c->bump++;
	return 0;
}

/* Hand a batch (its length in its first slot's count) to the pool. */
static void pool_push(struct slots *s, uint32_t head)
{
	struct freelink *h = link_of(s, head);
	pthread_mutex_lock(&s->lock);
	h->batch = s->pool;
	s->pool = head;
	s->pooled += h->count;
	pthread_mutex_unlock(&s->lock);
}

/* The current batch, however long, becomes the stash's first. */
static void stash_current(struct slots *s, struct slot_cache *c)
{
	struct freelink *h = link_of(s, c->head);
	h->count = c->cur;
	h->batch = c->stash;
	c->stash = c->head;
	c->full++;
	c->head = SLOTS_NIL;
	c->cur = 0;
}

/* Give the stash's oldest batch to the pool: the newest are the ones
 * still in this core's cache. Walks at most keep + 1 batch heads. */
static void give_oldest(struct slots *s, struct slot_cache *c)
{
	uint32_t *at = &c->stash;
	while (link_of(s, *at)->batch != SLOTS_NIL)
		at = &link_of(s, *at)->batch;
	uint32_t oldest = *at;
	*at = SLOTS_NIL;
	c->full--;
	c->n -= link_of(s, oldest)->count;
	pool_push(s, oldest);
}

/* The current batch is full (a list put whole can make it longer than a
 * batch): stash it, then give the pool the oldest batches while the stash
 * holds more than keep batches' worth, always keeping the newest. */
static void stash_full(struct slots *s, struct slot_cache *c)
{
	stash_current(s, c);
	while (c->full > 1 && c->n > s->keep * s->batch)
		give_oldest(s, c);
}

/* Before the stash an owner holding two batches gave away the one it had
 * just freed: a program spawning and exiting in waves sent its own slots
 * through the pool and back (Savina fib at 1 scheduler: 2,178 batches a
 * run), and at 2 most came back from the other core, each pop a miss on
 * a line still in that core's cache (spawn_in 17 % of fib's samples
 * against 9 % at 1). Now a wave of up to keep batches stays home (181
 * batches at 1), and what does go is the oldest. */
void kri_slots_put_list(struct slots *s, struct slot_cache *c, uint32_t head, uint32_t tail,
			uint32_t n)
{
	if (!n)
		return;
	link_of(s, tail)->next = c->head;
	c->head = head;
	c->cur += n;
	c->n += n;
	if (c->cur >= s->batch)
		stash_full(s, c);
}

void kri_slots_put(struct slots *s, struct slot_cache *c, uint32_t i)
{
	kri_slots_put_list(s, c, i, i, 1);
}

void kri_slots_flush(struct slots *s, struct slot_cache *c)
{
	/* Never-used indexes go back too, as free ones: dropped, they would
	 * be lost to the table for good (a small max_procs ran out so). Their
	 * chunk exists, so their link bytes can be written. */
	while (c->bump != c->bump_end)
		kri_slots_put(s, c, c->bump++);
	if (c->cur)
		stash_current(s, c);
	while (c->full)
		give_oldest(s, c);
	c->bump = c->bump_end = 0;
}
