/* own: memory a process owns (kr_alloc, kr_realloc, kr_free) and its exit
 * hooks (kr_on_exit), both let go when the process ends however it ends,
 * as a BEAM process's heap goes with it.
 *
 * Each block carries a 32-byte header: its links in the owner's list, its
 * length and a check word (the owner's record and the block's address,
 * mixed with a constant). The header makes kr_free O(1) with no lookup,
 * gives the arena the size it frees by, and lets kr_free refuse a pointer
 * that is not a live block of the caller (another process's, one already
 * freed, one into a block's middle) without trusting it further than the
 * 32 bytes it reads. Rejected: a hash set of blocks in the side record (a
 * table to grow and probe per call, and nowhere to keep the size cheaper
 * than beside the block).
 *
 * Only processes that use any of this pay: the list and the hooks hang from
 * a record (struct own) that the side record points to, made at the first
 * call. The exit of a process without a side record, or with one and no
 * owned record, tests a pointer and moves on (proc.c).
 *
 * Processes move between schedulers (stealing), so a block taken from
 * scheduler A's arena may be freed on scheduler B, by kr_free or at the
 * exit. That is allowed (alloc/arena.h): any thread frees any arena's
 * memory through its own arena; a small block goes into B's small-object
 * cache and serves B's next allocation of its class, which is only
 * memory from another NUMA node at worst; a larger one goes back to A's
 * jemalloc arena through B's tcache. The byte counts follow the same rule
 * (arena.bytes of A up, of B down; their sum is what is held). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/log/log.h"
#include "core/proc/limit.h"
#include "core/proc/part.h"
#include "core/sched/sched.h"

struct ablk {
	struct ablk *next;   /* the owner's list, newest first */
	struct ablk **pprev; /* what points at this one */
	size_t len;          /* bytes asked for */
	uintptr_t check;     /* check_word(own, this) while live; 0 once freed */
};
_Static_assert(sizeof(struct ablk) == 32, "a block's data stays 16-byte aligned");
#define HDR sizeof(struct ablk)

struct hook {
	struct hook *next; /* newest first */
	kr_exit_hook fn;
	void *arg;
};

struct own {
	struct ablk *blocks;
	struct hook *hooks;
	/* Bytes held, headers included. Written by the owner (relaxed, a
	 * plain move), so a reader elsewhere never sees it torn. */
	_Atomic uint64_t bytes;
};

#define OWN_MAGIC 0x6b72696c6c6f776eull /* "krillown" */

static uintptr_t check_word(const struct own *own, const struct ablk *b)
{
	return ((uintptr_t)own ^ ((uintptr_t)b << 1)) ^ (uintptr_t)OWN_MAGIC;
}

static void bytes_add(struct own *own, int64_t n)
{
	atomic_store_explicit(&own->bytes,
			      atomic_load_explicit(&own->bytes, memory_order_relaxed) + (uint64_t)n,
			      memory_order_relaxed);
}

static struct own *own_get(struct sched *s, struct proc *p)
{
	struct side *side = kri_proc_side(s, p);
	if (!side)
		return NULL;
	if (!side->own) {
		side->own = arena_alloc(&s->arena, sizeof(struct own));
		if (side->own) {
			memset(side->own, 0, sizeof(struct own));
			p->flags |= P_OWN;
		}
	}
	return side->own;
}

/* The caller's live block whose data is at p, or NULL. Reads the header
 * only once the caller is known to own blocks at all. */
static struct ablk *own_block(const struct proc *p, void *ptr, struct own **out)
{
	struct own *own = p->side ? p->side->own : NULL;
	if (!own || !ptr || (uintptr_t)ptr < HDR)
		return NULL;
	struct ablk *b = (struct ablk *)ptr - 1;
	if (b->check != check_word(own, b))
		return NULL;
	*out = own;
	return b;
}

static void *alloc_in(kr_ctx *ctx, size_t len)
{
	struct sched *s = ctx->s;
	if (len > SIZE_MAX / 2 - HDR || kri_ovl_over(s->rt, s))
		return NULL;
	struct own *own = own_get(s, ctx->p);
	if (!own)
		return NULL;
	struct ablk *b = arena_alloc(&s->arena, HDR + len);
	if (!b)
		return NULL;
	b->next = own->blocks;
	if (b->next)
		b->next->pprev = &b->next;
	b->pprev = &own->blocks;
	own->blocks = b;
	b->len = len;
	b->check = check_word(own, b);
	bytes_add(own, (int64_t)(HDR + len));
	return b + 1;
}

static void free_block(struct sched *s, struct own *own, struct ablk *b)
{
	*b->pprev = b->next;
	if (b->next)
		b->next->pprev = b->pprev;
	b->check = 0;
	bytes_add(own, -(int64_t)(HDR + b->len));
	arena_free(&s->arena, b, HDR + b->len);
}

void *kr_alloc(kr_ctx *ctx, size_t len)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return NULL;
	void *r = alloc_in(ctx, len);
	api_leave(s);
	return r;
}

static void *realloc_in(kr_ctx *ctx, void *ptr, size_t len)
{
	if (!ptr)
		return alloc_in(ctx, len);
	struct own *own;
	struct ablk *b = own_block(ctx->p, ptr, &own);
	if (!b)
		return NULL;
	void *r = alloc_in(ctx, len);
	if (!r)
		return NULL;
	memcpy(r, ptr, len < b->len ? len : b->len);
	free_block(ctx->s, own, b);
	return r;
}

void *kr_realloc(kr_ctx *ctx, void *ptr, size_t len)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return NULL;
	void *r = realloc_in(ctx, ptr, len);
	api_leave(s);
	return r;
}

static int free_in(kr_ctx *ctx, void *ptr)
{
	struct own *own;
	if (!ptr)
		return 0;
	struct ablk *b = own_block(ctx->p, ptr, &own);
	if (!b)
		return -EINVAL;
	free_block(ctx->s, own, b);
	return 0;
}

int kr_free(kr_ctx *ctx, void *ptr)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = free_in(ctx, ptr);
	api_leave(s);
	return rc;
}

static int on_exit_in(kr_ctx *ctx, kr_exit_hook fn, void *arg)
{
	struct sched *s = ctx->s;
	if (!fn)
		return -EINVAL;
	struct own *own = own_get(s, ctx->p);
	struct hook *h = own ? arena_alloc(&s->arena, sizeof(*h)) : NULL;
	if (!h)
		return -ENOMEM;
	h->fn = fn;
	h->arg = arg;
	h->next = own->hooks;
	own->hooks = h;
	atomic_store_explicit(&s->rt->hooked, 1, memory_order_relaxed);
	return 0;
}

int kr_on_exit(kr_ctx *ctx, kr_exit_hook fn, void *arg)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = on_exit_in(ctx, fn, arg);
	api_leave(s);
	return rc;
}

void kri_own_hooks(struct sched *s, struct own *own, const struct exit_note *x)
{
	kr_exit_info info;
	memset(&info, 0, sizeof(info));
	info.pid = x->self;
	info.reason = x->reason;
	info.len = x->plen;
	if (x->plen)
		memcpy(info.payload, x->payload, x->plen);
	struct hook *h;
	/* Each is off the list before it runs: a hook that faults is not
	 * run again, and the list stays whole for own_free. */
	while ((h = own->hooks)) {
		own->hooks = h->next;
		kr_fault f;
		if (kri_proc_parts.call_contained(s, h->fn, h->arg, &info, &f) &&
		    kri_log_on(s->rt, KR_LOG_ERROR)) {
			/* "fault SIGSEGV at ..." less its first word */
			char why[96] = "fault killed";
			if (f.signo)
				kri_log_reason(why, sizeof(why), KR_FAULT, &f, sizeof(f));
			kri_log(s->rt, KR_LOG_ERROR, "krill: process <%u.%u> exit hook faulted: %s",
				pid_idx(x->self), pid_gen(x->self), why + strlen("fault "));
		}
		arena_free(&s->arena, h, sizeof(*h));
	}
}

void kri_own_free(struct sched *s, struct own *own)
{
	struct hook *h;
	while ((h = own->hooks)) { /* none, unless the exit ran no hooks */
		own->hooks = h->next;
		arena_free(&s->arena, h, sizeof(*h));
	}
	while (own->blocks)
		free_block(s, own, own->blocks);
	arena_free(&s->arena, own, sizeof(*own));
}

uint64_t kri_proc_owned_bytes(const struct proc *p)
{
	const struct own *own = p->side ? p->side->own : NULL;
	return own ? atomic_load_explicit(&own->bytes, memory_order_relaxed) : 0;
}
