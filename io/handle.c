/* handle: slots of open sockets and files, and which owner holds which.
 * Lock order: the table's mutex, then a handle's lock; never the mutex
 * while holding a handle. Slots live in chunks that never move or go away
 * until the runtime does, so a stale id can always be checked safely. */
#include "io/handle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK      1024u
#define MAX_CHUNKS 1024u /* 2^20 handles */

struct owner {
	uint64_t id; /* the key: 0 in an empty cell */
	struct handle *first;
};

/* Owners with a handle open; at most three quarters full. */
static const struct kri_hmap_kind owner_kind = {
    .esize = sizeof(struct owner),
    .mincap = 64,
    .fill = 3,
    .alloc = kri_hmap_libc_alloc,
    .free = kri_hmap_libc_free,
};

int kri_htab_init(struct htab *t)
{
	memset(t, 0, sizeof(*t));
	t->chunk = calloc(MAX_CHUNKS, sizeof(*t->chunk));
	if (!t->chunk || kri_hmap_reserve(&t->own, &owner_kind, 0)) {
		free(t->chunk);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->mu, 0);
	return 0;
}

void kri_htab_fini(struct htab *t)
{
	for (uint32_t c = 0; c < t->nchunk; c++) {
		for (uint32_t i = 0; i < CHUNK; i++) {
			struct handle *h = &t->chunk[c][i];
			if (h->fd >= 0)
				close(h->fd);
			kri_handle_sq_free(h);
			free(h->stash);
			free(h->ubuf);
		}
		free(t->chunk[c]);
	}
	free(t->chunk);
	free(t->free);
	kri_hmap_fini(&t->own, &owner_kind, 0);
	pthread_mutex_destroy(&t->mu);
}

/* Add h to owner id's list; room for a new owner reserved. */
static void own_link(struct htab *t, uint64_t id, struct handle *h)
{
	struct owner *o = kri_hmap_find(&t->own, &owner_kind, id);
	if (!o)
		o = kri_hmap_insert(&t->own, &owner_kind, id);
	h->oprev = 0;
	h->onext = o->first;
	if (o->first)
		o->first->oprev = h;
	o->first = h;
}

static void own_unlink(struct htab *t, struct handle *h)
{
	if (h->onext)
		h->onext->oprev = h->oprev;
	if (h->oprev) {
		h->oprev->onext = h->onext;
	} else {
		struct owner *o = kri_hmap_find(&t->own, &owner_kind, h->owner);
		if (o && o->first == h) {
			o->first = h->onext;
			if (!o->first)
				kri_hmap_delete(&t->own, &owner_kind, o);
		}
	}
	h->onext = h->oprev = 0;
}

static struct handle *slot(struct htab *t, uint32_t idx)
{
	return &t->chunk[idx / CHUNK][idx % CHUNK];
}

static int take_slot(struct htab *t, uint32_t *idx)
{
	if (t->nfree) {
		*idx = t->free[--t->nfree];
		return 0;
	}
	uint32_t n = atomic_load_explicit(&t->nslots, memory_order_relaxed);
	if (n == t->nchunk * CHUNK) {
		if (t->nchunk == MAX_CHUNKS)
			return -EMFILE;
		struct handle *c = aligned_alloc(64, CHUNK * sizeof(*c));
		uint32_t *f = realloc(t->free, (size_t)(t->nchunk + 1) * CHUNK * sizeof(*f));
		if (!c || !f) {
			free(c);
			if (f)
				t->free = f;
			return -ENOMEM;
		}
		t->free = f;
		memset(c, 0, CHUNK * sizeof(*c));
		for (uint32_t i = 0; i < CHUNK; i++) {
			atomic_flag_clear(&c[i].lock);
			c[i].idx = t->nchunk * CHUNK + i;
			c[i].fd = -1;
		}
		t->chunk[t->nchunk++] = c;
	}
	*idx = n;
	atomic_store_explicit(&t->nslots, n + 1, memory_order_release);
	return 0;
}

int kri_handle_new(struct htab *t, int fd, enum hkind kind, uint64_t owner,
		   bool (*claim)(void *, uint64_t), void *arg, struct handle **out)
{
	uint32_t idx;
	pthread_mutex_lock(&t->mu);
	int rc = kri_hmap_reserve(&t->own, &owner_kind, 0);
	if (!rc)
		rc = take_slot(t, &idx);
	if (!rc && !claim(arg, owner)) {
		t->free[t->nfree++] = idx;
		rc = -ESRCH;
	}
	if (rc) {
		pthread_mutex_unlock(&t->mu);
		return rc;
	}
	struct handle *h = slot(t, idx);
	handle_lock(h);
	uint32_t gen = atomic_load_explicit(&h->gen, memory_order_relaxed);
	/* Zero everything after the header fields kept across lives. */
	memset(&h->kind, 0, sizeof(*h) - offsetof(struct handle, kind));
	h->fd = fd;
	h->kind = (uint8_t)kind;
	h->owner = owner;
	own_link(t, owner, h);
	atomic_store_explicit(&h->gen, gen + 1, memory_order_relaxed); /* odd: open */
	pthread_mutex_unlock(&t->mu);
	*out = h;
	return 0;
}

struct handle *kri_handle_get(struct htab *t, uint64_t id, uint64_t owner)
{
	uint32_t idx = (uint32_t)id, gen = (uint32_t)(id >> 32);
	/* Acquire: the chunk of a counted slot is there. */
	if (idx >= atomic_load_explicit(&t->nslots, memory_order_acquire) || !(gen & 1))
		return 0;
	struct handle *h = slot(t, idx);
	handle_lock(h);
	if (atomic_load_explicit(&h->gen, memory_order_relaxed) != gen || h->closing ||
	    h->owner != owner) {
		handle_unlock(h);
		return 0;
	}
	return h;
}

int kri_handle_give(struct htab *t, struct handle *h, uint64_t owner,
		    bool (*claim)(void *, uint64_t), void *arg)
{
	uint32_t gen = atomic_load_explicit(&h->gen, memory_order_relaxed);
	uint64_t was = h->owner;
	handle_unlock(h);
	pthread_mutex_lock(&t->mu);
	int rc = kri_hmap_reserve(&t->own, &owner_kind, 0);
	if (!rc && !claim(arg, owner))
		rc = -ESRCH;
	handle_lock(h);
	if (!rc && (atomic_load_explicit(&h->gen, memory_order_relaxed) != gen || h->closing ||
		    h->owner != was))
		rc = -EBADF;
	if (!rc) {
		own_unlink(t, h);
		h->owner = owner;
		own_link(t, owner, h);
	}
	handle_unlock(h);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

static void release(struct htab *t, struct handle *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	kri_handle_sq_free(h);
	free(h->stash);
	free(h->ubuf);
	h->stash = h->ubuf = 0;
	pthread_mutex_lock(&t->mu);
	t->free[t->nfree++] = h->idx;
	pthread_mutex_unlock(&t->mu);
}

/* Mark h closed (locked): its id stops working; sockets are shut down so
 * that requests parked in the kernel (accept, recv, connect) end now. */
static bool close_locked(struct handle *h)
{
	if (h->closing)
		return false;
	h->closing = true;
	atomic_store_explicit(&h->gen, atomic_load_explicit(&h->gen, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	/* Bytes being sent still go (as close(2) lets the kernel's buffer
	 * drain); a receive or accept waiting in the kernel ends now. */
	if (h->inflight && h->kind != H_FILE)
		shutdown(h->fd, h->sending ? SHUT_RD : SHUT_RDWR);
	return true;
}

void kri_handle_close(struct htab *t, struct handle *h)
{
	uint32_t gen = atomic_load_explicit(&h->gen, memory_order_relaxed);
	handle_unlock(h);
	pthread_mutex_lock(&t->mu);
	handle_lock(h);
	bool mine = atomic_load_explicit(&h->gen, memory_order_relaxed) == gen && !h->closing;
	if (mine) {
		own_unlink(t, h);
		close_locked(h);
	}
	bool free_now = mine && h->inflight == 0;
	handle_unlock(h);
	pthread_mutex_unlock(&t->mu);
	if (free_now)
		release(t, h);
}

void kri_handle_put(struct htab *t, struct handle *h)
{
	bool free_now = h->inflight == 0 && h->closing;
	handle_unlock(h);
	if (free_now)
		release(t, h);
}

void kri_handle_close_owner(struct htab *t, uint64_t owner)
{
	struct handle *gone = 0;
	pthread_mutex_lock(&t->mu);
	struct owner *o = kri_hmap_find(&t->own, &owner_kind, owner);
	struct handle *h = o ? o->first : 0;
	if (o)
		kri_hmap_delete(&t->own, &owner_kind, o);
	while (h) {
		struct handle *next = h->onext;
		h->onext = h->oprev = 0;
		handle_lock(h);
		close_locked(h);
		if (h->inflight == 0) {
			h->onext = gone; /* released below, outside the mutex */
			gone = h;
		}
		handle_unlock(h);
		h = next;
	}
	pthread_mutex_unlock(&t->mu);
	while (gone) {
		struct handle *next = gone->onext;
		gone->onext = 0;
		release(t, gone);
		gone = next;
	}
}

void kri_handle_sq_free(struct handle *h)
{
	while (h->sq) {
		struct sbuf *n = h->sq->next;
		free(h->sq);
		h->sq = n;
	}
	h->sqtail = 0;
	h->sqbytes = 0;
}
