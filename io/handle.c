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
	uint64_t id; /* 0: empty */
	struct handle *first;
};

int htab_init(struct htab *t)
{
	memset(t, 0, sizeof(*t));
	t->chunk = calloc(MAX_CHUNKS, sizeof(*t->chunk));
	t->owncap = 64;
	t->own = calloc(t->owncap, sizeof(*t->own));
	if (!t->chunk || !t->own) {
		free(t->chunk);
		free(t->own);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->mu, 0);
	return 0;
}

void htab_fini(struct htab *t)
{
	for (uint32_t c = 0; c < t->nchunk; c++) {
		for (uint32_t i = 0; i < CHUNK; i++) {
			struct handle *h = &t->chunk[c][i];
			if (h->fd >= 0)
				close(h->fd);
			handle_sq_free(h);
			free(h->stash);
			free(h->ubuf);
		}
		free(t->chunk[c]);
	}
	free(t->chunk);
	free(t->free);
	free(t->own);
	pthread_mutex_destroy(&t->mu);
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	return x ^ (x >> 29);
}

static struct owner *own_find(struct htab *t, uint64_t id)
{
	uint32_t m = t->owncap - 1;
	for (uint32_t i = (uint32_t)mix(id) & m;; i = (i + 1) & m)
		if (t->own[i].id == id || t->own[i].id == 0)
			return &t->own[i];
}

static int own_grow(struct htab *t)
{
	struct owner *old = t->own;
	uint32_t oldcap = t->owncap;
	struct owner *n = calloc((size_t)oldcap * 2, sizeof(*n));
	if (!n)
		return -ENOMEM;
	t->own = n;
	t->owncap = oldcap * 2;
	for (uint32_t i = 0; i < oldcap; i++)
		if (old[i].id)
			*own_find(t, old[i].id) = old[i];
	free(old);
	return 0;
}

/* Remove the entry at o, shifting later entries of its probe run back so
 * that lookups need no tombstones. */
static void own_del(struct htab *t, struct owner *o)
{
	uint32_t m = t->owncap - 1, i = (uint32_t)(o - t->own);
	t->own[i].id = 0;
	t->ownused--;
	for (uint32_t j = (i + 1) & m; t->own[j].id; j = (j + 1) & m) {
		uint32_t home = (uint32_t)mix(t->own[j].id) & m;
		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			t->own[i] = t->own[j];
			t->own[j].id = 0;
			i = j;
		}
	}
}

static void own_link(struct htab *t, struct owner *o, uint64_t id, struct handle *h)
{
	if (!o->id) {
		o->id = id;
		o->first = 0;
		t->ownused++;
	}
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
		struct owner *o = own_find(t, h->owner);
		if (o->id && o->first == h) {
			o->first = h->onext;
			if (!o->first)
				own_del(t, o);
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

int handle_new(struct htab *t, int fd, enum hkind kind, uint64_t owner,
	       bool (*claim)(void *, uint64_t), void *arg, struct handle **out)
{
	uint32_t idx;
	pthread_mutex_lock(&t->mu);
	int rc = 0;
	if (4 * (t->ownused + 1) > 3 * t->owncap)
		rc = own_grow(t);
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
	own_link(t, own_find(t, owner), owner, h);
	atomic_store_explicit(&h->gen, gen + 1, memory_order_relaxed); /* odd: open */
	pthread_mutex_unlock(&t->mu);
	*out = h;
	return 0;
}

struct handle *handle_get(struct htab *t, uint64_t id, uint64_t owner)
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

int handle_give(struct htab *t, struct handle *h, uint64_t owner, bool (*claim)(void *, uint64_t),
		void *arg)
{
	uint32_t gen = atomic_load_explicit(&h->gen, memory_order_relaxed);
	uint64_t was = h->owner;
	handle_unlock(h);
	pthread_mutex_lock(&t->mu);
	int rc = 0;
	if (4 * (t->ownused + 1) > 3 * t->owncap)
		rc = own_grow(t);
	if (!rc && !claim(arg, owner))
		rc = -ESRCH;
	handle_lock(h);
	if (!rc && (atomic_load_explicit(&h->gen, memory_order_relaxed) != gen || h->closing ||
		    h->owner != was))
		rc = -EBADF;
	if (!rc) {
		own_unlink(t, h);
		h->owner = owner;
		own_link(t, own_find(t, owner), owner, h);
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
	handle_sq_free(h);
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

void handle_close(struct htab *t, struct handle *h)
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

void handle_put(struct htab *t, struct handle *h)
{
	bool free_now = h->inflight == 0 && h->closing;
	handle_unlock(h);
	if (free_now)
		release(t, h);
}

void handle_close_owner(struct htab *t, uint64_t owner)
{
	struct handle *gone = 0;
	pthread_mutex_lock(&t->mu);
	struct owner *o = own_find(t, owner);
	struct handle *h = o->id ? o->first : 0;
	if (o->id)
		own_del(t, o);
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

void handle_sq_free(struct handle *h)
{
	while (h->sq) {
		struct sbuf *n = h->sq->next;
		free(h->sq);
		h->sq = n;
	}
	h->sqtail = 0;
	h->sqbytes = 0;
}
