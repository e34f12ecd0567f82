/* send: kr_send and the zero-copy sends (kr_msg_buf, kr_send_buf): what a
 * behaviour's message costs on its way to the receiver's mailbox. */
#include <errno.h>
#include <string.h>

#include "core/proc/deliver.h"
#include "core/sched/sched.h"
#include "core/proc/limit.h"
#include "core/proc/remote.h"

int kri_proc_check_send(struct kr_runtime *rt, struct sched *s, uint32_t tag, const void *data,
			size_t len)
{
	if (tag >= KR_TAG_SYSTEM || (len && !data))
		return -EINVAL;
	if (len > rt->cfg.max_msg)
		return -EMSGSIZE;
	if (kri_ovl_over(rt, s))
		return -ENOMEM;
	return 0;
}

/* Queue e, already admitted to the live p (named to), behind this call's
 * other sends: see the outbox above. Inlined with push: it is most of
 * kr_send, and when LTO made the two calls of their own (once a second
 * caller came) a ring hop cost 23 instructions more (callgrind). */
__attribute__((always_inline)) static inline void send_env(kr_ctx *ctx, struct proc *p, kr_pid to,
							   struct env *e)
{
	struct sched *s = ctx->s;
	ctx->sent++;
	struct outbox *ob = &s->ob;
	if (ob->pid != to) {
		/* A first send to this receiver goes at once: a call that
		 * sends one message (a reply, a token) costs what it did and
		 * delays nothing. Only the ones after it are held. */
		outbox_flush(s);
		ob->pid = to;
		push(s, p, e, false);
		return;
	}
	if (!ob->n) {
		ob->p = p;
		ob->tail = e;
	}
	e->next = ob->head;
	ob->head = e;
	if (++ob->n >= OUTBOX_MAX)
		kri_outbox_push(s);
}

/* A send to a remote pid (its lookup failed as a pid never issued): the
 * node's, or -ESRCH when no node runs. Out of line, off the send path. */
__attribute__((noinline, cold)) int kri_remote_send(struct kr_runtime *rt, kr_ctx *ctx, kr_pid to,
						    uint32_t tag, const void *data, size_t len)
{
	/* Acquire pairs with kr_node_start's release: the table is whole. */
	const struct kri_remote *r = atomic_load_explicit(&rt->remote, memory_order_acquire);
	return r ? r->send(rt, ctx, to, tag, data, len) : -ESRCH;
}

int kri_proc_send_sys(kr_ctx *ctx, kr_pid to, uint32_t tag, const void *hdr, size_t hlen,
		      const void *data, size_t len)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = -EINVAL;
	if (tag >= SYS_TAG_BASE || (hlen && !hdr) || (len && !data))
		goto out;
	rc = -EMSGSIZE;
	if (hlen + len > s->rt->cfg.max_msg)
		goto out;
	rc = -ENOMEM;
	struct env *e = arena_alloc(&s->arena, env_size((uint32_t)(hlen + len)));
	if (!e)
		goto out;
	e->m.tag = tag;
	e->m.len = (uint32_t)(hlen + len);
	if (hlen)
		memcpy(e->m.data, hdr, hlen);
	if (len)
		memcpy(e->m.data + hlen, data, len);
	/* proc_deliver flushes this scheduler's outbox first, so the message
	 * keeps its place among the sender's other sends. */
	rc = kri_proc_deliver(s, to, e);
	rc = rc < 0 ? rc : 0;
out:
	api_leave(s);
	return rc;
}

/* A full mailbox refused a send (kr_mailbox_limit): e, if any, is freed,
 * and the refusal counted for the steal judge (sched.c, judge). Out of line
 * and cold: in the send path's body, the count changed LTO's inlining of
 * send_in into kr_send (callgrind, sv-chameneos at 1 scheduler: 3 % more
 * instructions). */
__attribute__((noinline, cold)) static int refused(struct sched *s, struct env *e)
{
	if (e)
		env_free(&s->arena, e);
	s->refused++;
	return -EAGAIN;
}

static int send_in(kr_ctx *ctx, kr_pid to, uint32_t tag, const void *data, size_t len)
{
	struct sched *s = ctx->s;
	int err = kri_proc_check_send(s->rt, s, tag, data, len);
	if (err)
		return err;
	struct proc *p = kri_proc_lookup(s->rt, to, &err);
	if (!p)
		return err == -ESRCH && pid_remote(to)
			   ? kri_remote_send(s->rt, ctx, to, tag, data, len)
			   : err;
	struct env *e = env_new(&s->arena, tag, data, len);
	if (!e)
		return -ENOMEM;
	if (!kri_ovl_admit(p))
		return refused(s, e);
	send_env(ctx, p, to, e);
	return 0;
}

int kr_send(kr_ctx *ctx, kr_pid to, uint32_t tag, const void *data, size_t len)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = send_in(ctx, to, tag, data, len);
	api_leave(s);
	return rc;
}

/* ---- zero-copy sends ---------------------------------------------------
 * A reserved buffer is the data of an envelope not yet sent, on the call's
 * list (ctx->bufs, through next) until it is sent or the call ends
 * (bufs_free). Its size is fixed when reserved: the allocator frees by
 * size. */

static void *msg_buf_in(kr_ctx *ctx, size_t len)
{
	struct sched *s = ctx->s;
	if (len > s->rt->cfg.max_msg || kri_ovl_over(s->rt, s))
		return 0;
	struct env *e = env_alloc(&s->arena, env_size((uint32_t)len));
	if (!e)
		return 0;
	e->m.tag = 0;
	e->m.len = (uint32_t)len;
	e->next = ctx->bufs;
	ctx->bufs = e;
	return e->m.data;
}

void *kr_msg_buf(kr_ctx *ctx, size_t len)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return NULL;
	void *buf = msg_buf_in(ctx, len);
	api_leave(s);
	return buf;
}

static int send_buf_in(kr_ctx *ctx, kr_pid to, uint32_t tag, void *buf)
{
	struct sched *s = ctx->s;
	struct env **at = &ctx->bufs, *e;
	/* Found by address, never touched through it: a stray pointer is
	 * -EINVAL, not a write somewhere. */
	while ((e = *at) && (void *)e->m.data != buf)
		at = &e->next;
	if (!e || tag >= KR_TAG_SYSTEM)
		return -EINVAL;
	int err;
	struct proc *p = kri_proc_lookup(s->rt, to, &err);
	if (!p && err == -ESRCH && pid_remote(to)) {
		/* Encoded for the wire: the buffer is copied and freed. */
		err = kri_remote_send(s->rt, ctx, to, tag, e->m.data, e->m.len);
		if (!err) {
			*at = e->next;
			env_free(&s->arena, e);
		}
		return err;
	}
	if (!p && err)
		return err;
	if (p && !kri_ovl_admit(p))
		return refused(s, 0);
	*at = e->next;
	if (!p) {
		env_free(&s->arena, e); /* to a process that has exited: dropped */
		return 0;
	}
	e->m.tag = tag;
	send_env(ctx, p, to, e);
	return 0;
}

int kr_send_buf(kr_ctx *ctx, kr_pid to, uint32_t tag, void *buf)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return -EINVAL;
	int rc = send_buf_in(ctx, to, tag, buf);
	api_leave(s);
	return rc;
}

/* The call is over (returned, faulted or killed): what it reserved and did
 * not send is freed. */
void kri_bufs_free(struct sched *s)
{
	kri_env_free_list(&s->arena, s->ctx.bufs);
	s->ctx.bufs = 0;
}
