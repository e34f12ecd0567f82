/* link: links, monitors and exit signals, with Erlang's semantics.
 *
 * Signals travel as envelopes through the receiver's mailbox, so they keep
 * their order with the sender's messages, and are handled by the runtime
 * when the receiver takes them from its mailbox, before it handles any
 * message taken with them: a kill behind a long backlog takes effect at the
 * next take, not after the backlog. Each side of a link or monitor keeps
 * its own record in its side record, changed only by its owner; a signal
 * that finds its target gone is answered by the target's exit (it drains
 * its closed mailbox: a pending link gets an exit signal, a pending monitor
 * a DOWN) or, when the push itself fails, by the sender at once. So neither
 * a link nor a DOWN is ever lost to a race with an exit. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/sched/sched.h"
#include "core/signal/signal.h"
#include "core/proc/limit.h"
#include "core/fault/fault.h"

/* ---- small vectors in the scheduler's arena ---------------------------- */

static int vec_grow(struct sched *s, struct vec *v, size_t elem)
{
	if (v->n < v->cap)
		return 0;
	uint32_t cap = v->cap ? v->cap * 2 : 4;
	void *n = arena_alloc(&s->arena, cap * elem);
	if (!n)
		return -ENOMEM;
	if (v->n)
		memcpy(n, v->v, v->n * elem);
	arena_free(&s->arena, v->v, v->cap * elem);
	v->v = n;
	v->cap = cap;
	return 0;
}

static void vec_free(struct sched *s, struct vec *v, size_t elem)
{
	if (v->v)
		arena_free(&s->arena, v->v, v->cap * elem);
	v->v = 0;
	v->n = v->cap = 0;
}

/* Links are a set of pids. One pid, the common case (a supervisor's child
 * has just its supervisor), is held in the vector itself: cap 1, and v is
 * that pid, not a table; a process then pays for no table at all. More
 * are a table: open addressing, linear probing, at most a quarter full,
 * so that a supervisor with thousands of children adds and drops one in
 * O(1). 0 is an empty cell, never a pid (a pid's generation is odd). A
 * removal shifts the rest of its cluster back (as Knuth's algorithm R)
 * rather than leaving a tombstone: a supervisor that restarts children
 * for ever drops and adds a link each time, and tombstones would fill its
 * table and force a rehash every thousand restarts or so; and as the
 * shift scans the cluster, a table half full cost it twice the scan. */
#define PS_EMPTY 0

static kr_pid ps_one(const struct vec *v)
{
	return (kr_pid)(uintptr_t)v->v;
}

static uint32_t ps_hash(kr_pid pid, uint32_t cap)
{
	pid ^= pid >> 29;
	pid *= 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(pid >> 32) & (cap - 1);
}

/* In a table: the cell holding pid, or NULL. */
static kr_pid *ps_find(const struct vec *v, kr_pid pid)
{
	kr_pid *a = v->v;
	for (uint32_t i = ps_hash(pid, v->cap);; i = (i + 1) & (v->cap - 1)) {
		if (a[i] == pid)
			return &a[i];
		if (a[i] == PS_EMPTY)
			return 0;
	}
}

bool vec_has_pid(const struct vec *v, kr_pid pid)
{
	if (v->cap <= 1)
		return ps_one(v) == pid; /* empty: v is NULL, never a pid */
	return ps_find(v, pid) != 0;
}

/* Add pid, not in the set, with room made by ps_reserve. */
static void ps_put(struct vec *v, kr_pid pid)
{
	if (v->cap == 0) {
		v->v = (void *)(uintptr_t)pid;
		v->cap = v->n = 1;
		return;
	}
	kr_pid *a = v->v;
	uint32_t i = ps_hash(pid, v->cap);
	while (a[i] != PS_EMPTY)
		i = (i + 1) & (v->cap - 1);
	a[i] = pid;
	v->n++;
}

/* A bigger table for one more pid. Apart from ps_reserve's test, and not
 * inlined there: a restart checks for room twice and almost never grows,
 * and inlined, the growth's register saves came with every check. */
__attribute__((noinline)) static int ps_grow(struct sched *s, struct vec *v)
{
	uint32_t ocap = v->cap, cap = ocap == 1 ? 8 : 2 * ocap;
	kr_pid *old = v->v, one = ps_one(v), *a = arena_alloc(&s->arena, cap * sizeof(kr_pid));
	if (!a)
		return -ENOMEM;
	memset(a, 0, cap * sizeof(kr_pid));
	v->v = a;
	v->cap = cap;
	v->n = 0;
	if (ocap == 1) {
		ps_put(v, one);
		return 0;
	}
	for (uint32_t i = 0; i < ocap; i++)
		if (old[i] != PS_EMPTY)
			ps_put(v, old[i]);
	arena_free(&s->arena, old, ocap * sizeof(kr_pid));
	return 0;
}

/* Room for one more pid. */
static inline int ps_reserve(struct sched *s, struct vec *v)
{
	if (v->cap == 0 || (v->cap > 1 && 4 * (v->n + 1) <= v->cap))
		return 0;
	return ps_grow(s, v);
}

int vec_add_pid(struct sched *s, struct vec *v, kr_pid pid)
{
	if (vec_has_pid(v, pid))
		return 0;
	int rc = ps_reserve(s, v);
	if (rc)
		return rc;
	ps_put(v, pid);
	return 0;
}

static bool vec_del_pid(struct vec *v, kr_pid pid)
{
	if (v->cap <= 1) {
		if (ps_one(v) != pid)
			return false;
		v->v = 0;
		v->n = v->cap = 0;
		return true;
	}
	kr_pid *a = v->v, *c = ps_find(v, pid);
	if (!c)
		return false;
	uint32_t m = v->cap - 1, i = (uint32_t)(c - a);
	/* Close the gap at i: each later pid of the cluster whose home is not
	 * cyclically in (i, j] would be cut off from it, so it moves into i. */
	for (uint32_t j = i;;) {
		j = (j + 1) & m;
		if (a[j] == PS_EMPTY)
			break;
		uint32_t k = ps_hash(a[j], v->cap);
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		a[i] = a[j];
		i = j;
	}
	a[i] = PS_EMPTY;
	v->n--;
	return true;
}

static void ps_free(struct sched *s, struct vec *v)
{
	if (v->cap > 1)
		arena_free(&s->arena, v->v, v->cap * sizeof(kr_pid));
	v->v = 0;
	v->n = v->cap = 0;
}

int vec_add_mon(struct sched *s, struct vec *v, uint64_t ref, kr_pid pid)
{
	int rc = vec_grow(s, v, sizeof(struct mon));
	if (rc)
		return rc;
	((struct mon *)v->v)[v->n++] = (struct mon){ref, pid};
	return 0;
}

/* Remove the monitor ref; its pid in *pid. */
static bool mon_del(struct vec *v, uint64_t ref, kr_pid *pid)
{
	struct mon *a = v->v;
	for (uint32_t i = 0; i < v->n; i++) {
		if (a[i].ref == ref) {
			if (pid)
				*pid = a[i].pid;
			a[i] = a[--v->n];
			return true;
		}
	}
	return false;
}

void side_free_vecs(struct sched *s, struct side *side)
{
	vec_free(s, &side->waiters, sizeof(struct mon));
	ps_free(s, &side->links);
	vec_free(s, &side->out, sizeof(struct mon));
	vec_free(s, &side->in, sizeof(struct mon));
}

/* Signal envelopes are built and sent by sig_env and sig_send (core/proc/env.c). */
static kr_exit_info *info(struct env *e)
{
	return (kr_exit_info *)e->m.data;
}

/* ---- receiving signals ------------------------------------------------- */

/* Decide what a signal (or a DOWN) taken from p's mailbox does. SIG_DIE
 * sets the context's exit reason. */
int sig_handle(struct sched *s, struct proc *p, struct env *e)
{
	struct kr_ctx *c = &s->ctx;
	kr_exit_info *x = info(e);
	struct side *side = p->side;
	switch (e->m.tag) {
	case KR_TAG_DOWN:
		/* Only DOWNs of monitors still held: kr_demonitor flushes. */
		return side && mon_del(&side->out, x->ref, 0) ? SIG_KEEP : SIG_DROP;
	case SIG_LINK:
		side = proc_side(s, p);
		if (!side || vec_add_pid(s, &side->links, x->pid)) {
			/* No memory to hold the link: it must not be silently
			 * absent, so the linker hears we are gone. */
			sig_send(s, x->pid, SIG_EXIT_LINK, c->self, 0, KR_NOPROC, 0, 0);
		}
		return SIG_DROP;
	case SIG_UNLINK:
		if (side)
			vec_del_pid(&side->links, x->pid);
		return SIG_DROP;
	case SIG_MONITOR:
		side = proc_side(s, p);
		if (!side || vec_add_mon(s, &side->in, x->ref, x->pid))
			sig_send(s, x->pid, KR_TAG_DOWN, c->self, x->ref, KR_NOPROC, 0, 0);
		return SIG_DROP;
	case SIG_DEMONITOR:
		if (side)
			mon_del(&side->in, x->ref, 0);
		return SIG_DROP;
	case SIG_NOTIFY:
		ovl_notify(s, p, x->pid, (uint32_t)x->ref);
		return SIG_DROP;
	case SIG_EXIT_LINK:
		/* From a process we unlinked since: not ours to act on. */
		if (!side || !vec_del_pid(&side->links, x->pid))
			return SIG_DROP;
		break;
	case SIG_EXIT:
		if (x->reason == KR_KILL) {
			c->reason = KR_KILLED;
			c->plen = 0;
			return SIG_DIE;
		}
		break;
	default:
		return SIG_KEEP;
	}
	/* An exit signal that may be trapped. */
	if (side && side->trap) {
		e->m.tag = KR_TAG_EXIT;
		return SIG_KEEP;
	}
	if (x->reason == KR_NORMAL && x->pid != c->self)
		return SIG_DROP;
	c->reason = x->reason;
	c->plen = x->len;
	memcpy(c->payload, x->payload, x->len);
	return SIG_DIE;
}

/* Envelopes a dying process will never handle: free them, answering the
 * signals that expect an answer as if they had come just before the end. */
void sig_drain(struct sched *s, struct env *list, const struct exit_note *x)
{
	kr_pid self = x->self;
	uint32_t reason = x->reason, plen = x->plen;
	const void *payload = x->payload;
	while (list) {
		struct env *e = list;
		list = e->next;
		if (e->m.tag == SIG_LINK)
			sig_send(s, info(e)->pid, SIG_EXIT_LINK, self, 0, reason, payload, plen);
		else if (e->m.tag == SIG_MONITOR)
			sig_send(s, info(e)->pid, KR_TAG_DOWN, self, info(e)->ref, reason, payload,
				 plen);
		else if (e->m.tag == SIG_NOTIFY)
			ovl_notify(s, 0 /* gone: room */, info(e)->pid, (uint32_t)info(e)->ref);
		env_free(&s->arena, e);
	}
}

/* p is exiting: tell its links and monitors, and release its own monitors. */
void sig_exit_notify(struct sched *s, struct proc *p, const struct exit_note *x)
{
	struct side *side = p->side;
	kr_pid self = x->self;
	uint32_t reason = x->reason, plen = x->plen;
	const void *payload = x->payload;
	if (side->links.cap == 1) {
		sig_send(s, ps_one(&side->links), SIG_EXIT_LINK, self, 0, reason, payload, plen);
	} else {
		kr_pid *l = side->links.v;
		for (uint32_t i = 0; i < side->links.cap; i++)
			if (l[i] != PS_EMPTY)
				sig_send(s, l[i], SIG_EXIT_LINK, self, 0, reason, payload, plen);
	}
	struct mon *m = side->in.v;
	for (uint32_t i = 0; i < side->in.n; i++)
		sig_send(s, m[i].pid, KR_TAG_DOWN, self, m[i].ref, reason, payload, plen);
	m = side->out.v;
	for (uint32_t i = 0; i < side->out.n; i++)
		sig_send(s, m[i].pid, SIG_DEMONITOR, self, m[i].ref, 0, 0, 0);
}

/* ---- the public calls -------------------------------------------------- */

static int link_in(kr_ctx *ctx, kr_pid pid)
{
	struct sched *s = ctx->s;
	int err;
	if (pid == ctx->self)
		return 0;
	if (!proc_lookup(s->rt, pid, &err))
		return -ESRCH;
	struct side *side = proc_side(s, ctx->p);
	if (!side)
		return -ENOMEM;
	if (vec_has_pid(&side->links, pid))
		return 0;
	int rc = vec_add_pid(s, &side->links, pid);
	if (rc)
		return rc;
	rc = sig_send(s, pid, SIG_LINK, ctx->self, 0, 0, 0, 0);
	if (rc != 1) {
		vec_del_pid(&side->links, pid);
		return rc == 0 ? -ESRCH : rc;
	}
	return 0;
}

int kr_link(kr_ctx *ctx, kr_pid pid)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = link_in(ctx, pid);
	api_leave(s);
	return rc;
}

static int unlink_in(kr_ctx *ctx, kr_pid pid)
{
	struct side *side = ctx->p->side;
	if (!side || !vec_del_pid(&side->links, pid))
		return 0;
	int rc = sig_send(ctx->s, pid, SIG_UNLINK, ctx->self, 0, 0, 0, 0);
	return rc < 0 && rc != -ESRCH ? rc : 0;
}

int kr_unlink(kr_ctx *ctx, kr_pid pid)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = unlink_in(ctx, pid);
	api_leave(s);
	return rc;
}

static int spawn_link_in(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	struct sched *s = ctx->s;
	struct side *side = proc_side(s, ctx->p);
	kr_pid child;
	if (!side)
		return -ENOMEM;
	/* Room for the link first, so that a spawned child is always linked. */
	int rc = ps_reserve(s, &side->links);
	if (rc)
		return rc;
	rc = kr_spawn(ctx, b, state, len, &child);
	if (rc)
		return rc;
	/* The child is not running and nobody else knows its pid yet: its
	 * side of the link can be written directly. */
	struct proc *cp = slot_at(&s->rt->procs, pid_idx(child));
	struct side *cs = proc_side(s, cp);
	if (!cs || vec_add_pid(s, &cs->links, ctx->self)) {
		/* Could not link: undo the spawn, as if it never happened. */
		proc_exit(s, cp, KR_NORMAL, 0, 0);
		stat_add(&s->st.spawned, (uint64_t)-1);
		stat_add(&s->st.exited, (uint64_t)-1);
		return -ENOMEM;
	}
	ps_put(&side->links, child);
	*out = child;
	return 0;
}

int kr_spawn_link(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = spawn_link_in(ctx, b, state, len, out);
	api_leave(s);
	return rc;
}

static int monitor_in(kr_ctx *ctx, kr_pid pid, uint64_t *ref)
{
	struct sched *s = ctx->s;
	struct side *side = proc_side(s, ctx->p);
	if (!side || !ref)
		return side ? -EINVAL : -ENOMEM;
	uint64_t r = ((uint64_t)(s->id + 1) << 48) | ++s->refs;
	int rc = vec_add_mon(s, &side->out, r, pid);
	if (rc)
		return rc;
	rc = sig_send(s, pid, SIG_MONITOR, ctx->self, r, 0, 0, 0);
	if (rc == -ENOMEM) {
		mon_del(&side->out, r, 0);
		return rc;
	}
	if (rc != 1) {
		/* Not alive (or never was): DOWN at once, through the mailbox
		 * like any other, so it is ordered after what came before. */
		rc = sig_send(s, ctx->self, KR_TAG_DOWN, pid, r, KR_NOPROC, 0, 0);
		if (rc < 0) {
			mon_del(&side->out, r, 0);
			return rc;
		}
	}
	*ref = r;
	return 0;
}

int kr_monitor(kr_ctx *ctx, kr_pid pid, uint64_t *ref)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = monitor_in(ctx, pid, ref);
	api_leave(s);
	return rc;
}

/* Remove a queued DOWN for ref from list; true if found. */
static bool flush_down(struct sched *s, struct env **list, struct env **tail, uint64_t ref)
{
	struct env *prev = 0;
	for (struct env **pp = list; *pp; prev = *pp, pp = &(*pp)->next) {
		struct env *e = *pp;
		if (e->m.tag == KR_TAG_DOWN && info(e)->ref == ref) {
			*pp = e->next;
			if (tail && *tail == e)
				*tail = prev;
			env_free(&s->arena, e);
			return true;
		}
	}
	return false;
}

static int demonitor_in(kr_ctx *ctx, uint64_t ref)
{
	struct side *side = ctx->p->side;
	kr_pid pid;
	if (!side)
		return -ENOENT;
	if (mon_del(&side->out, ref, &pid)) {
		/* A DOWN still in the mailbox is dropped when taken: the
		 * monitor is no longer held. */
		int rc = sig_send(ctx->s, pid, SIG_DEMONITOR, ctx->self, ref, 0, 0, 0);
		return rc < 0 && rc != -ESRCH ? rc : 0;
	}
	/* Fired, and its DOWN taken but not yet handled or deferred. */
	if (flush_down(ctx->s, &ctx->p->local, 0, ref) ||
	    flush_down(ctx->s, &side->dhead, &side->dtail, ref))
		return 0;
	return -ENOENT;
}

int kr_demonitor(kr_ctx *ctx, uint64_t ref)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = demonitor_in(ctx, ref);
	api_leave(s);
	return rc;
}

static void trap_exit_in(kr_ctx *ctx, int on)
{
	struct side *side = on ? proc_side(ctx->s, ctx->p) : ctx->p->side;
	if (side)
		side->trap = on != 0;
}

void kr_trap_exit(kr_ctx *ctx, int on)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return;
	trap_exit_in(ctx, on);
	api_leave(s);
}

static int check_exit_target(struct runtime *rt, kr_pid pid)
{
	int err;
	if (proc_lookup(rt, pid, &err) || err == 0)
		return 0;
	return err;
}

static int send_exit_in(kr_ctx *ctx, kr_pid pid, uint32_t reason)
{
	int rc = check_exit_target(ctx->s->rt, pid);
	if (rc)
		return rc;
	rc = sig_send(ctx->s, pid, SIG_EXIT, ctx->self, 0, reason, 0, 0);
	if (rc == 1 && reason == KR_KILL)
		watchdog_kill(ctx->s->rt, pid);
	return rc < 0 ? rc : 0;
}

int kr_send_exit(kr_ctx *ctx, kr_pid pid, uint32_t reason)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = send_exit_in(ctx, pid, reason);
	api_leave(s);
	return rc;
}

static int rt_exit_in(kr_runtime *rt_, kr_pid pid, uint32_t reason)
{
	struct runtime *rt = (struct runtime *)rt_;
	if (!rt)
		return -EINVAL;
	int rc = check_exit_target(rt, pid);
	if (rc)
		return rc;
	struct env *e = sig_env(0, SIG_EXIT, 0, 0, reason, 0, 0);
	if (!e)
		return -ENOMEM;
	rc = inject(rt, pid, e);
	if (rc == 0 && reason == KR_KILL)
		watchdog_kill(rt, pid);
	return rc;
}

int kr_rt_exit(kr_runtime *rt_, kr_pid pid, uint32_t reason)
{
	struct sched *s = api_sched();
	api_enter(s);
	int rc = rt_exit_in(rt_, pid, reason);
	api_leave(s);
	return rc;
}
