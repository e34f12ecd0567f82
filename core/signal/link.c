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
#include "core/proc/remote.h"

void kri_side_free_vecs(struct sched *s, struct side *side)
{
	kri_pidset_free(&side->links, &s->arena);
	kri_monvec_free(&s->arena, &side->out);
	kri_monvec_free(&s->arena, &side->in);
}

/* Signal envelopes are built and sent by sig_env and sig_send (core/proc/env.c). */
static kr_exit_info *info(struct env *e)
{
	return (kr_exit_info *)e->m.data;
}

/* ---- receiving signals ------------------------------------------------- */

/* A signal to a remote pid goes to the node (dist/) as the matching
 * control message; only link.c's paths can name one, so the test costs
 * nothing on a plain send. 1: sent (or queued for its connection); < 0 as
 * kri_sig_send; -ESRCH with no node. */
__attribute__((noinline, cold)) static int remote_sig(struct sched *s, kr_pid to, uint32_t tag,
						      kr_pid from, uint64_t ref, uint32_t reason,
						      const void *payload, uint32_t len)
{
	const struct kri_remote *r = kri_remote_get(s->rt);
	int kind = tag == TAG_LINK        ? RS_LINK
		   : tag == TAG_UNLINK    ? RS_UNLINK
		   : tag == TAG_EXIT_LINK ? RS_EXIT_LINK
		   : tag == TAG_EXIT      ? RS_EXIT
		   : tag == TAG_MONITOR   ? RS_MONITOR
		   : tag == TAG_DEMONITOR ? RS_DEMONITOR
		   : tag == KR_TAG_DOWN   ? RS_DOWN
					  : 0;
	if (!r || !r->signal || !kind)
		return -ESRCH;
	return r->signal(s->rt, &s->ctx, to, kind, from, ref, reason, payload, len);
}

__attribute__((always_inline)) static inline int sig_out(struct sched *s, kr_pid to, uint32_t tag,
							 kr_pid from, uint64_t ref, uint32_t reason,
							 const void *payload, uint32_t len)
{
	if (pid_remote(to))
		return remote_sig(s, to, tag, from, ref, reason, payload, len);
	return kri_sig_send(s, to, tag, from, ref, reason, payload, len);
}

int kri_remote_signal_in(kr_ctx *ctx, kr_pid to, int kind, kr_pid from, uint64_t ref,
			 uint32_t reason, const void *payload, uint32_t len)
{
	static const uint32_t tags[] = {
	    [RS_LINK] = TAG_LINK,    [RS_UNLINK] = TAG_UNLINK,   [RS_EXIT_LINK] = TAG_EXIT_LINK,
	    [RS_EXIT] = TAG_EXIT,    [RS_MONITOR] = TAG_MONITOR, [RS_DEMONITOR] = TAG_DEMONITOR,
	    [RS_DOWN] = KR_TAG_DOWN,
	};
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = -EINVAL;
	if (kind >= RS_LINK && kind <= RS_DOWN && len <= KR_PAYLOAD_MAX && !pid_remote(to))
		rc = kri_sig_send(s, to, tags[kind], from, ref, reason, payload, len);
	api_leave(s);
	return rc;
}

/* Decide what a signal (or a DOWN) taken from p's mailbox does. TAKE_DIE
 * sets the context's exit reason. */
int kri_sig_handle(struct sched *s, struct proc *p, struct env *e)
{
	struct kr_ctx *c = &s->ctx;
	kr_exit_info *x = info(e);
	struct side *side = p->side;
	switch (e->m.tag) {
	case KR_TAG_DOWN:
		/* Only DOWNs of monitors still held: kr_demonitor flushes. */
		return side && kri_monvec_del(&side->out, x->ref, 0) ? TAKE_KEEP : TAKE_DROP;
	case TAG_LINK:
		side = kri_proc_side(s, p);
		if (!side || kri_pidset_add(&side->links, &s->arena, x->pid)) {
			/* No memory to hold the link: it must not be silently
			 * absent, so the linker hears we are gone. */
			sig_out(s, x->pid, TAG_EXIT_LINK, c->self, 0, KR_NOPROC, 0, 0);
		}
		return TAKE_DROP;
	case TAG_UNLINK:
		if (side)
			kri_pidset_del(&side->links, x->pid);
		return TAKE_DROP;
	case TAG_MONITOR:
		side = kri_proc_side(s, p);
		if (!side || kri_monvec_add(&s->arena, &side->in, x->ref, x->pid))
			sig_out(s, x->pid, KR_TAG_DOWN, c->self, x->ref, KR_NOPROC, 0, 0);
		return TAKE_DROP;
	case TAG_DEMONITOR:
		if (side)
			kri_monvec_del(&side->in, x->ref, 0);
		return TAKE_DROP;
	case TAG_NOTIFY:
		kri_ovl_notify(s, p, x->pid, (uint32_t)x->ref);
		return TAKE_DROP;
	case TAG_EXIT_LINK:
		/* From a process we unlinked since: not ours to act on. */
		if (!side || !kri_pidset_del(&side->links, x->pid))
			return TAKE_DROP;
		break;
	case TAG_EXIT:
		if (x->reason == KR_KILL) {
			c->reason = KR_KILLED;
			c->plen = 0;
			return TAKE_DIE;
		}
		break;
	default:
		return TAKE_KEEP;
	}
	/* An exit signal that may be trapped. */
	if (side && side->trap) {
		e->m.tag = KR_TAG_EXIT;
		return TAKE_KEEP;
	}
	if (x->reason == KR_NORMAL && x->pid != c->self)
		return TAKE_DROP;
	c->reason = x->reason;
	c->plen = x->len;
	memcpy(c->payload, x->payload, x->len);
	return TAKE_DIE;
}

/* Envelopes a dying process will never handle: free them, answering the
 * signals that expect an answer as if they had come just before the end. */
void kri_sig_drain(struct sched *s, struct env *list, const struct exit_note *x)
{
	kr_pid self = x->self;
	uint32_t reason = x->reason, plen = x->plen;
	const void *payload = x->payload;
	while (list) {
		struct env *e = list;
		list = e->next;
		if (e->m.tag == TAG_LINK)
			sig_out(s, info(e)->pid, TAG_EXIT_LINK, self, 0, reason, payload, plen);
		else if (e->m.tag == TAG_MONITOR)
			sig_out(s, info(e)->pid, KR_TAG_DOWN, self, info(e)->ref, reason, payload,
				plen);
		else if (e->m.tag == TAG_NOTIFY)
			kri_ovl_notify(s, 0 /* gone: room */, info(e)->pid, (uint32_t)info(e)->ref);
		env_free(&s->arena, e);
	}
}

/* p is exiting: tell its links and monitors, and release its own monitors. */
void kri_sig_exit_notify(struct sched *s, struct proc *p, const struct exit_note *x)
{
	struct side *side = p->side;
	kr_pid self = x->self;
	uint32_t reason = x->reason, plen = x->plen;
	const void *payload = x->payload;
	kr_pid l;
	for (uint32_t i = 0; (l = kri_pidset_next(&side->links, &i));)
		sig_out(s, l, TAG_EXIT_LINK, self, 0, reason, payload, plen);
	struct mon *m = side->in.v;
	for (uint32_t i = 0; i < side->in.n; i++)
		sig_out(s, m[i].pid, KR_TAG_DOWN, self, m[i].ref, reason, payload, plen);
	m = side->out.v;
	for (uint32_t i = 0; i < side->out.n; i++)
		sig_out(s, m[i].pid, TAG_DEMONITOR, self, m[i].ref, 0, 0, 0);
}

/* ---- the public calls -------------------------------------------------- */

static int link_in(kr_ctx *ctx, kr_pid pid)
{
	struct sched *s = ctx->s;
	int err;
	if (pid == ctx->self)
		return 0;
	if (!kri_proc_lookup(s->rt, pid, &err) && !pid_remote(pid))
		return -ESRCH;
	struct side *side = kri_proc_side(s, ctx->p);
	if (!side)
		return -ENOMEM;
	if (kri_pidset_has(&side->links, pid))
		return 0;
	int rc = kri_pidset_reserve(&side->links, &s->arena);
	if (rc)
		return rc;
	kri_pidset_insert(&side->links, pid);
	rc = sig_out(s, pid, TAG_LINK, ctx->self, 0, 0, 0, 0);
	if (rc != 1) {
		kri_pidset_del(&side->links, pid);
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
	if (!side || !kri_pidset_has(&side->links, pid))
		return 0;
	if (pid_remote(pid)) {
		kri_pidset_del(&side->links, pid);
		int rc = sig_out(ctx->s, pid, TAG_UNLINK, ctx->self, 0, 0, 0, 0);
		return rc < 0 && rc != -ESRCH ? rc : 0;
	}
	/* The signal first: out of memory, the link stays on both sides (a
	 * failed call changes nothing), not on the other's alone. */
	struct env *e = kri_sig_env(&ctx->s->arena, TAG_UNLINK, ctx->self, 0, 0, 0, 0);
	if (!e)
		return -ENOMEM;
	kri_pidset_del(&side->links, pid);
	int rc = kri_proc_deliver(ctx->s, pid, e);
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
	struct side *side = kri_proc_side(s, ctx->p);
	kr_pid child;
	if (!side)
		return -ENOMEM;
	/* Room for the link first, so that a spawned child is always linked. */
	int rc = kri_pidset_reserve(&side->links, &s->arena);
	if (rc)
		return rc;
	rc = kr_spawn(ctx, b, state, len, &child);
	if (rc)
		return rc;
	/* The child is not running and nobody else knows its pid yet: its
	 * side of the link can be written directly. */
	struct proc *cp = slot_at(&s->rt->procs, pid_idx(child));
	struct side *cs = kri_proc_side(s, cp);
	if (!cs || kri_pidset_add(&cs->links, &s->arena, ctx->self)) {
		/* Could not link: undo the spawn, as if it never happened. */
		kri_proc_exit(s, cp, KR_NORMAL, 0, 0);
		stat_add(&s->st.spawned, (uint64_t)-1);
		stat_add(&s->st.exited, (uint64_t)-1);
		return -ENOMEM;
	}
	kri_pidset_insert(&side->links, child);
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
	struct side *side = kri_proc_side(s, ctx->p);
	if (!side || !ref)
		return side ? -EINVAL : -ENOMEM;
	uint64_t r = ((uint64_t)(s->id + 1) << 48) | ++s->refs;
	int rc = kri_monvec_add(&s->arena, &side->out, r, pid);
	if (rc)
		return rc;
	rc = sig_out(s, pid, TAG_MONITOR, ctx->self, r, 0, 0, 0);
	if (rc == -ENOMEM) {
		kri_monvec_del(&side->out, r, 0);
		return rc;
	}
	if (rc != 1) {
		/* Not alive (or never was): DOWN at once, through the mailbox
		 * like any other, so it is ordered after what came before. */
		rc = kri_sig_send(s, ctx->self, KR_TAG_DOWN, pid, r, KR_NOPROC, 0, 0);
		if (rc < 0) {
			kri_monvec_del(&side->out, r, 0);
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
	if (kri_monvec_del(&side->out, ref, &pid)) {
		/* A DOWN still in the mailbox is dropped when taken: the
		 * monitor is no longer held. */
		int rc = sig_out(ctx->s, pid, TAG_DEMONITOR, ctx->self, ref, 0, 0, 0);
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
	struct side *side = on ? kri_proc_side(ctx->s, ctx->p) : ctx->p->side;
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

static int check_exit_target(struct kr_runtime *rt, kr_pid pid)
{
	int err;
	if (kri_proc_lookup(rt, pid, &err) || err == 0 || pid_remote(pid))
		return 0;
	return err;
}

static int send_exit_in(kr_ctx *ctx, kr_pid pid, uint32_t reason)
{
	int rc = check_exit_target(ctx->s->rt, pid);
	if (rc)
		return rc;
	rc = sig_out(ctx->s, pid, TAG_EXIT, ctx->self, 0, reason, 0, 0);
	if (rc == 1 && reason == KR_KILL)
		kri_watchdog_kill(ctx->s->rt, pid);
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

static int rt_exit_in(kr_runtime *rt, kr_pid pid, uint32_t reason)
{
	if (!rt)
		return -EINVAL;
	/* Stopping or stopped: the signal would never be delivered. */
	if (rt_closed(rt))
		return -ESHUTDOWN;
	int rc = check_exit_target(rt, pid);
	if (rc)
		return rc;
	struct env *e = kri_sig_env(0, TAG_EXIT, 0, 0, reason, 0, 0);
	if (!e)
		return -ENOMEM;
	rc = kri_inject(rt, pid, e);
	if (rc == 0 && reason == KR_KILL)
		kri_watchdog_kill(rt, pid);
	return rc;
}

int kr_rt_exit(kr_runtime *rt_, kr_pid pid, uint32_t reason)
{
	struct sched *s = kri_api_sched();
	api_enter(s);
	int rc = rt_exit_in(rt_, pid, reason);
	api_leave(s);
	return rc;
}
