/* proc: spawn, send, exit and the run of one process: how a scheduler
 * hands a process its messages, a bounded batch at a time. The public
 * kr_* calls a behaviour makes land here. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/rt.h"

/* A slot whose generation reaches this is never reused, so a generation
 * never wraps and a stale pid can never name a later process. */
#define GEN_LIMIT 0xfffffff0u

struct env *env_new(struct arena *a, uint32_t tag, const void *data, size_t len)
{
	struct env *e = arena_alloc(a, env_size((uint32_t)len));
	if (!e)
		return 0;
	e->m.tag = tag;
	e->m.len = (uint32_t)len;
	/* Most messages are a word or two: two moves, not a call to memcpy
	 * (the two 8-byte copies overlap when len < 16). */
	if (len >= 8 && len <= 16) {
		memcpy(e->m.data, data, 8);
		memcpy(e->m.data + len - 8, (const unsigned char *)data + len - 8, 8);
	} else if (len) {
		memcpy(e->m.data, data, len);
	}
	return e;
}

void env_free_list(struct arena *a, struct env *e)
{
	while (e) {
		struct env *n = e->next;
		env_free(a, e);
		e = n;
	}
}

int proc_check_send(struct runtime *rt, struct sched *s, uint32_t tag, const void *data, size_t len)
{
	if (tag >= KR_TAG_SYSTEM || (len && !data))
		return -EINVAL;
	if (len > rt->cfg.max_msg)
		return -EMSGSIZE;
	if (ovl_over(rt, s))
		return -ENOMEM;
	return 0;
}

/* The live process named by pid, or NULL with *err: 0 when it has exited
 * (a send is silently dropped), -ESRCH when pid was never issued. */
struct proc *proc_lookup(struct runtime *rt, kr_pid pid, int *err)
{
	uint32_t g = pid_gen(pid);
	struct proc *p = (g & 1) ? slot_at(&rt->procs, pid_idx(pid)) : 0;
	*err = -ESRCH;
	if (!p)
		return 0;
	/* Acquire pairs with spawn's release: a match means the slot holds
	 * this incarnation, fully initialised. */
	uint32_t cur = atomic_load_explicit(&p->gen, memory_order_acquire);
	if (cur == g)
		return p;
	if (cur > g)
		*err = 0;
	return 0;
}

/* Push e to the live process p and schedule p here if it was idle: to run
 * next (the sender's data is warm), or with tail behind the whole queue.
 * 1: queued; 0: p exited meanwhile and e is freed. Inlined, as send_env. */
__attribute__((always_inline)) static inline int push(struct sched *s, struct proc *p,
						      struct env *e, bool tail)
{
	switch (mbox_push(&p->inbox, e)) {
	case MB_WOKE:
		if (tail)
			runq_push_back(&s->q, p);
		else
			sched_ready(s, p);
		return 1;
	case MB_CLOSED:
		env_free(&s->arena, e);
		return 0;
	}
	return 1;
}

/* The outbox. A behaviour's sends to one receiver, in a row, are held
 * (all but the first, which is pushed at once) and pushed as one chain
 * when the call returns, when it sends to someone else, when OUTBOX_MAX
 * are held, or before anything else is delivered
 * from this scheduler (a signal, a timer, I/O): so a sender's messages
 * keep their order with everything else it sends to the same receiver,
 * and each receiver sees them in the order sent. A producer that floods a
 * consumer then contends on the consumer's mailbox word once per chain,
 * not once per message. A fault or a kill pushes what the call sent
 * before it (fault.c), as if each had been pushed when sent. The receiver
 * stays valid while held: it was live when looked up during this call,
 * and its slot is not reused before this scheduler's next quiescent state
 * (epoch.c), which comes after the run. */
void outbox_push(struct sched *s)
{
	struct outbox *ob = &s->ob;
	struct proc *p = ob->p;
	struct env *head = ob->head, *tail = ob->tail;
	ob->n = 0;
	ob->p = 0;
	ob->head = ob->tail = 0;
	switch (mbox_push_chain(&p->inbox, head, tail)) {
	case MB_WOKE:
		sched_ready(s, p);
		break;
	case MB_CLOSED:
		env_free_list(&s->arena, head);
		break;
	}
}

static int deliver(struct sched *s, kr_pid to, struct env *e, bool tail)
{
	int err;
	outbox_flush(s);
	struct proc *p = proc_lookup(s->rt, to, &err);
	if (!p) {
		env_free(&s->arena, e);
		return err;
	}
	ovl_count(p, e);
	return push(s, p, e, tail);
}

int proc_deliver(struct sched *s, kr_pid to, struct env *e)
{
	return deliver(s, to, e, false);
}

int proc_deliver_tail(struct sched *s, kr_pid to, struct env *e)
{
	return deliver(s, to, e, true);
}

struct side *proc_side(struct sched *s, struct proc *p)
{
	if (!p->side) {
		p->side = arena_alloc(&s->arena, sizeof(struct side));
		if (p->side)
			memset(p->side, 0, sizeof(struct side));
	}
	return p->side;
}

/* State over 8 bytes lives in its own allocation with its length in front
 * (16 bytes, so the state stays 16-aligned): a process with a big state
 * and nothing else needs no side record, and running it touches one line
 * less. */
#define BIG_HDR 16

static void *big_state_new(struct arena *a, const void *state, size_t len)
{
	unsigned char *h = arena_alloc(a, BIG_HDR + len);
	if (!h)
		return 0;
	memcpy(h, &len, sizeof len);
	memcpy(h + BIG_HDR, state, len);
	return h + BIG_HDR;
}

static void big_state_free(struct arena *a, void *big)
{
	unsigned char *h = (unsigned char *)big - BIG_HDR;
	size_t len;
	memcpy(&len, h, sizeof len);
	arena_free(a, h, BIG_HDR + len);
}

static int spawn_in(struct runtime *rt, struct sched *s, struct slot_cache *c, struct arena *a,
		    kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	uint32_t idx;
	void *big = 0;
	if (!b || (len && !state) || !out)
		return -EINVAL;
	if (ovl_over(rt, s))
		return -ENOMEM;
	int rc = slots_get(&rt->procs, c, a, &idx);
	if (rc)
		return rc;
	struct proc *p = slot_at(&rt->procs, idx);
	if (!p)
		return -EAGAIN; /* cannot happen: slots_get returned a live index */
	if (len > sizeof(p->state)) {
		big = big_state_new(a, state, len);
		if (!big) {
			slots_put(&rt->procs, c, idx); /* never published */
			return -ENOMEM;
		}
	}
	uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
	p->local = 0;
	p->beh = b;
	p->state = 0;
	if (big)
		p->state = (uint64_t)(uintptr_t)big;
	else if (len)
		memcpy(&p->state, state, len);
	p->next = 0;
	p->side = 0;
	p->flags = big ? P_BIG : 0;
	p->idx = idx;
	atomic_store_explicit(&p->aflags, 0, memory_order_relaxed);
	atomic_store_explicit(&p->inbox, 0, memory_order_relaxed);
	/* Release: a sender that sees the new generation sees the rest. */
	atomic_store_explicit(&p->gen, g, memory_order_release);
	*out = pid_make(idx, g);
	return 0;
}

void proc_exit(struct sched *s, struct proc *p, uint32_t reason, const void *payload, uint32_t plen)
{
	struct runtime *rt = s->rt;
	uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed);
	kr_pid pid = pid_make(p->idx, g);
	/* Seq_cst: pairs with kr_register setting P_NAMED then re-reading the
	 * generation; one of the two sees the other. */
	atomic_store_explicit(&p->gen, g + 1, memory_order_seq_cst);
	uint32_t af = atomic_load_explicit(&p->aflags, memory_order_seq_cst);
	if (af & P_NAMED)
		registry_drop_pid(rt, pid);
	if (af & P_IO)
		io_owner_exit(rt, pid);
	/* Shutdown frees everything at once: nobody is left to tell. */
	bool tell = !atomic_load_explicit(&rt->stop, memory_order_relaxed);
	struct env *pending = mbox_close(&p->inbox);
	if (tell) {
		/* Most exits have nothing left to drain: no call for that. */
		sig_exit_notify(s, p, pid, reason, payload, plen);
		if (p->local)
			sig_drain(s, p->local, pid, reason, payload, plen);
		if (pending)
			sig_drain(s, pending, pid, reason, payload, plen);
	} else {
		env_free_list(&s->arena, p->local);
		env_free_list(&s->arena, pending);
	}
	p->local = 0;
	if (p->side) {
		struct side *side = p->side;
		env_free_list(&s->arena, side->dhead);
		side->dhead = side->dtail = 0;
		if (side->rto)
			timer_cancel(rt, s, side->rto);
		if (tell)
			ovl_exit(s, side);
		side_free_vecs(s, side);
		/* Senders may still hold a limited process's side record
		 * (overload.c): it goes when the slot is recycled. */
		if (!(atomic_load_explicit(&p->aflags, memory_order_relaxed) & P_LIMITED)) {
			arena_free(&s->arena, side, sizeof(*side));
			p->side = 0;
		}
	}
	if (p->flags & P_BIG)
		big_state_free(&s->arena, (void *)(uintptr_t)p->state);
	p->flags = 0;
	p->beh = 0;
	stat_add(&s->st.exited, 1);
	if (reason == KR_FAULT)
		stat_add(&s->st.crashed, 1);
	else if (reason == KR_KILLED)
		stat_add(&s->st.killed, 1);
	if (g + 1 < GEN_LIMIT)
		epoch_retire(s, p->idx);
}

/* Queue list after what p->local holds (usually nothing; a call that
 * handed back deferred messages leaves some). */
static void local_append(struct proc *p, struct env *list)
{
	struct env **t = &p->local;
	while (*t)
		t = &(*t)->next;
	*t = list;
}

/* The lone message being handled (proc_run) leaves the word, with what
 * came after it queued unhandled: for a fault or a kill, whose exit
 * drains them. */
void proc_drop_lone(struct sched *s)
{
	struct kr_ctx *c = &s->ctx;
	if (c->lone) {
		local_append(c->p, mbox_unpeek(&c->p->inbox, c->cur));
		c->lone = false;
	}
}

/* Take what was sent, handling the signals among it (link.c) before any
 * message, and queue the messages after p->local's; false if a signal
 * ended the process. lone: the message just handled where it lay in the
 * word (mbox_peek), which comes out with the rest and is left out. */
static bool take(struct sched *s, struct proc *p, struct env *lone)
{
	struct env *list = lone ? mbox_unpeek(&p->inbox, lone) : mbox_take(&p->inbox), *e;
	ovl_taken(s, p, list);
	for (e = list; e; e = e->next)
		if (e->m.tag >= KR_TAG_SYSTEM)
			break;
	if (!e) {
		local_append(p, list);
		return true;
	}
	struct env *head = 0, **tail = &head;
	while (list) {
		e = list;
		list = e->next;
		switch (sig_handle(s, p, e)) {
		case SIG_KEEP:
			*tail = e;
			tail = &e->next;
			break;
		case SIG_DROP:
			env_free(&s->arena, e);
			break;
		case SIG_DIE:
			env_free(&s->arena, e);
			/* What was not handled is drained at the exit. */
			*tail = list;
			local_append(p, head);
			return false;
		}
	}
	*tail = 0;
	local_append(p, head);
	return true;
}

/* Receive-timeout bookkeeping before a message is handed over. Returns
 * false if the message is a stale timeout to drop: one whose timer (its id
 * is the payload) is no longer the armed one. A timeout that passes is
 * marked (id 0, never a timer's) so that, deferred and handed back later,
 * it is not taken for stale. */
static bool rto_before(struct sched *s, struct side *side, struct env *e)
{
	if (e->m.tag != KR_TAG_TIMEOUT)
		return true;
	kr_timer id;
	memcpy(&id, e->m.data, sizeof(id));
	if (id == 0)
		return true;
	if (!side || id != side->rto)
		return false;
	side->rto = 0; /* it fired */
	id = 0;
	memcpy(e->m.data, &id, sizeof(id));
	return true;
}

/* The next arm count; 0 is never one. */
static uint32_t rto_next(struct side *side)
{
	return side->rto_seq + 1 ? side->rto_seq + 1 : 1;
}

/* A consumed message disarms a receive timeout the call did not re-arm;
 * a deferred one did not match, so the wait goes on (Erlang's `after`). */
static void rto_after(struct sched *s, struct side *side, uint32_t seq0, bool deferred)
{
	if (side && side->rto && !deferred && side->rto_seq == seq0) {
		timer_cancel(s->rt, s, side->rto);
		side->rto = 0;
		side->rto_seq = rto_next(side);
	}
}

void proc_run(struct sched *s, struct proc *p)
{
	struct kr_ctx *c = &s->ctx;
	/* The budget is in messages handled plus messages sent, as BEAM's
	 * reductions charge for sends: a producer that floods a consumer
	 * yields as often as the consumer it floods. */
	unsigned budget = s->rt->cfg.batch, used = 0;
	uint64_t handled = 0;
	c->p = p;
	c->self = pid_make(p->idx, atomic_load_explicit(&p->gen, memory_order_relaxed));
	c->exiting = false;
	c->sent = 0;
	atomic_store_explicit(&s->running, c->self, memory_order_relaxed);
	for (;;) {
		struct env *e;
		if (p->local) {
			e = p->local;
			p->local = e->next;
		} else if ((e = mbox_peek(&p->inbox)) && e->m.tag < KR_TAG_SYSTEM) {
			/* A message alone in the mailbox (a ping-pong, a ring, a
			 * request): handled where it lies; then one CAS takes
			 * it out and idles the process (mbox.c). */
			ovl_taken(s, p, e);
			c->lone = true;
		} else {
			if (!take(s, p, 0)) {
				proc_exit(s, p, c->reason, c->payload, c->plen);
				break;
			}
			if (!p->local) {
				if (mbox_idle(&p->inbox) == 0)
					break;
				continue;
			}
			e = p->local;
			p->local = e->next;
		}
		struct side *side = p->side;
		if (!rto_before(s, side, e)) { /* never a lone one: a system tag */
			env_free(&s->arena, e);
			continue;
		}
		uint32_t seq0 = side ? side->rto_seq : 0;
		c->cur = e;
		c->defer = false;
		/* A fault or a kill from here on is the process's (fault.c,
		 * watchdog.c). Relaxed stores: plain moves. */
		stat_add(&s->calls, 1);
		atomic_store_explicit(&s->in_beh, 1, memory_order_relaxed);
		p->beh(c, proc_state(p), &e->m);
		atomic_store_explicit(&s->in_beh, 0, memory_order_relaxed);
		if (c->bufs)
			bufs_free(s);
		outbox_flush(s);
		s->ob.pid = 0;
		handled++;
		used += 1 + c->sent;
		c->sent = 0;
		rto_after(s, p->side, seq0, c->defer);
		bool keep = c->defer && p->side;
		if (keep) {
			e->next = 0;
			if (p->side->dtail)
				p->side->dtail->next = e;
			else
				p->side->dhead = e;
			p->side->dtail = e;
		}
		/* The lone message leaves the word before it is freed: in the
		 * same step as going idle if nothing else is due (none handed
		 * back by kr_undefer, budget left), else with whatever came
		 * meanwhile (to be handled now, or drained by an exit). Once
		 * idle, the process is another scheduler's to run: nothing of
		 * it is touched after the CAS. */
		bool idle = false, alive = true;
		if (c->exiting) {
			proc_drop_lone(s);
		} else if (c->lone) {
			c->lone = false;
			if (!p->local && used < budget && mbox_idle_lone(&p->inbox, e) == 0)
				idle = true;
			else
				alive = take(s, p, e);
		}
		if (!keep)
			env_free(&s->arena, e);
		c->cur = 0;
		if (idle)
			break;
		if (c->exiting || !alive) {
			proc_exit(s, p, c->reason, c->payload, c->plen);
			break;
		}
		if (used >= budget) {
			/* Fairness: back of the queue, still RUN, if anything is
			 * left; else go idle like any other run. */
			if (p->local || mbox_idle(&p->inbox))
				runq_push(&s->q, p);
			break;
		}
	}
	/* The outbox is empty here: each call's sends went when it returned. */
	c->p = 0;
	atomic_store_explicit(&s->running, 0, memory_order_relaxed);
	stat_add(&s->st.msgs, handled);
}

/* Shutdown: free every process still alive; no scheduler runs. */
void proc_destroy_all(struct runtime *rt)
{
	struct sched *s = &rt->s[0];
	for (uint32_t ch = 0; ch < rt->procs.grown; ch++) {
		for (uint32_t k = 0; k < (1u << SLOTS_CHUNK_BITS); k++) {
			uint32_t idx = (ch << SLOTS_CHUNK_BITS) | k;
			struct proc *p = slot_at(&rt->procs, idx);
			if (!p || !(atomic_load_explicit(&p->gen, memory_order_relaxed) & 1))
				continue;
			proc_exit(s, p, KR_KILLED, 0, 0);
		}
	}
}

/* ---- the public calls a behaviour makes ------------------------------- */

kr_pid kr_self(const kr_ctx *ctx)
{
	return ctx->self;
}

kr_runtime *kr_runtime_of(const kr_ctx *ctx)
{
	return (kr_runtime *)ctx->s->rt;
}

static int ctx_spawn(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	struct sched *s = ctx->s;
	int rc = spawn_in(s->rt, s, &s->pslots, &s->arena, b, state, len, out);
	if (rc == 0)
		stat_add(&s->st.spawned, 1);
	return rc;
}

int kr_spawn(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	struct sched *s = ctx->s;
	api_enter(s);
	int rc = ctx_spawn(ctx, b, state, len, out);
	api_leave(s);
	return rc;
}

static int rt_spawn_in(kr_runtime *rt_, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	struct runtime *rt = (struct runtime *)rt_;
	if (!rt)
		return -EINVAL;
	pthread_mutex_lock(&rt->flock);
	/* No arena: foreign threads use the process-wide allocator. */
	int rc = spawn_in(rt, 0, &rt->fslots, 0, b, state, len, out);
	pthread_mutex_unlock(&rt->flock);
	if (rc == 0)
		atomic_fetch_add_explicit(&rt->fspawned, 1, memory_order_seq_cst);
	return rc;
}

int kr_rt_spawn(kr_runtime *rt_, kr_behaviour b, const void *state, size_t len, kr_pid *out)
{
	struct sched *s = api_sched();
	api_enter(s);
	int rc = rt_spawn_in(rt_, b, state, len, out);
	api_leave(s);
	return rc;
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
		outbox_push(s);
}

static int send_in(kr_ctx *ctx, kr_pid to, uint32_t tag, const void *data, size_t len)
{
	struct sched *s = ctx->s;
	int err = proc_check_send(s->rt, s, tag, data, len);
	if (err)
		return err;
	struct proc *p = proc_lookup(s->rt, to, &err);
	if (!p)
		return err;
	struct env *e = env_new(&s->arena, tag, data, len);
	if (!e)
		return -ENOMEM;
	if (!ovl_admit(p)) {
		env_free(&s->arena, e);
		return -EAGAIN;
	}
	send_env(ctx, p, to, e);
	return 0;
}

int kr_send(kr_ctx *ctx, kr_pid to, uint32_t tag, const void *data, size_t len)
{
	struct sched *s = ctx->s;
	api_enter(s);
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
	if (len > s->rt->cfg.max_msg || ovl_over(s->rt, s))
		return 0;
	struct env *e = arena_alloc(&s->arena, env_size((uint32_t)len));
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
	struct sched *s = ctx->s;
	api_enter(s);
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
	struct proc *p = proc_lookup(s->rt, to, &err);
	if (!p && err)
		return err;
	if (p && !ovl_admit(p))
		return -EAGAIN;
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
	struct sched *s = ctx->s;
	api_enter(s);
	int rc = send_buf_in(ctx, to, tag, buf);
	api_leave(s);
	return rc;
}

/* The call is over (returned, faulted or killed): what it reserved and did
 * not send is freed. */
void bufs_free(struct sched *s)
{
	env_free_list(&s->arena, s->ctx.bufs);
	s->ctx.bufs = 0;
}

static void become_in(kr_ctx *ctx, kr_behaviour b)
{
	if (b)
		ctx->p->beh = b;
	kr_undefer(ctx);
}

void kr_become(kr_ctx *ctx, kr_behaviour b)
{
	struct sched *s = ctx->s;
	api_enter(s);
	become_in(ctx, b);
	api_leave(s);
}

void kr_exit(kr_ctx *ctx, uint32_t reason)
{
	ctx->exiting = true;
	ctx->reason = reason;
	ctx->plen = 0;
}

static void defer_in(kr_ctx *ctx)
{
	/* Without a side record the message cannot be kept; it is then
	 * consumed as if not deferred (memory exhausted). */
	if (ctx->cur && proc_side(ctx->s, ctx->p))
		ctx->defer = true;
}

void kr_defer(kr_ctx *ctx)
{
	struct sched *s = ctx->s;
	api_enter(s);
	defer_in(ctx);
	api_leave(s);
}

static void undefer_in(kr_ctx *ctx)
{
	struct side *side = ctx->p->side;
	if (!side || !side->dhead)
		return;
	side->dtail->next = ctx->p->local;
	ctx->p->local = side->dhead;
	side->dhead = side->dtail = 0;
}

void kr_undefer(kr_ctx *ctx)
{
	struct sched *s = ctx->s;
	api_enter(s);
	undefer_in(ctx);
	api_leave(s);
}

static int receive_timeout_in(kr_ctx *ctx, uint64_t ms)
{
	struct sched *s = ctx->s;
	struct side *side = ms ? proc_side(s, ctx->p) : ctx->p->side;
	kr_timer t = 0;
	if (!side)
		return ms ? -ENOMEM : 0;
	/* A server re-arms its idle timeout at every request: the armed timer
	 * moves, whichever scheduler it was armed on. */
	if (ms && side->rto && timer_rearm(s, side->rto, ms) == 0) {
		side->rto_seq = rto_next(side);
		return 0;
	}
	if (ms) {
		/* The new timer first: a failure leaves the armed one armed. */
		struct env *e = env_new(&s->arena, KR_TAG_TIMEOUT, &t, sizeof(t));
		if (!e)
			return -ENOMEM;
		int rc = timer_start(s, ctx->self, ms, e, &t);
		if (rc)
			return rc;
		/* It fires on this thread, so not before this call returns. */
		memcpy(e->m.data, &t, sizeof(t));
	}
	if (side->rto)
		timer_cancel(s->rt, s, side->rto);
	side->rto = t;
	side->rto_seq = rto_next(side);
	return 0;
}

int kr_receive_timeout(kr_ctx *ctx, uint64_t ms)
{
	struct sched *s = ctx->s;
	api_enter(s);
	int rc = receive_timeout_in(ctx, ms);
	api_leave(s);
	return rc;
}

static int send_after_in(kr_ctx *ctx, kr_pid to, uint64_t ms, uint32_t tag, const void *data,
			 size_t len, kr_timer *out)
{
	struct sched *s = ctx->s;
	kr_timer t;
	int err = proc_check_send(s->rt, s, tag, data, len);
	if (err)
		return err;
	if (!proc_lookup(s->rt, to, &err) && err)
		return err;
	struct env *e = env_new(&s->arena, tag, data, len);
	if (!e)
		return -ENOMEM;
	err = timer_start(s, to, ms, e, &t);
	if (err == 0 && out)
		*out = t;
	return err;
}

int kr_send_after(kr_ctx *ctx, kr_pid to, uint64_t ms, uint32_t tag, const void *data, size_t len,
		  kr_timer *out)
{
	struct sched *s = ctx->s;
	api_enter(s);
	int rc = send_after_in(ctx, to, ms, tag, data, len, out);
	api_leave(s);
	return rc;
}

static int cancel_timer_in(kr_ctx *ctx, kr_timer t)
{
	return timer_cancel(ctx->s->rt, ctx->s, t);
}

int kr_cancel_timer(kr_ctx *ctx, kr_timer t)
{
	struct sched *s = ctx->s;
	api_enter(s);
	int rc = cancel_timer_in(ctx, t);
	api_leave(s);
	return rc;
}
