/* run: how a scheduler hands a process its messages, a bounded batch at a
 * time (and the same steps for a function process's receive that takes a
 * queued message in place), and the calls a behaviour makes about its own
 * receiving (defer, become, exit). */
#include <string.h>

#include "core/proc/deliver.h"
#include "core/sched/sched.h"
#include "core/proc/limit.h"
#include "core/proc/part.h"

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
void kri_proc_drop_lone(struct sched *s)
{
	struct kr_ctx *c = &s->ctx;
	if (c->lone) {
		local_append(c->p, kri_mbox_unpeek(&c->p->inbox, c->cur));
		c->lone = false;
	}
}

/* Take what was sent, handling the signals among it (link.c) before any
 * message, and queue the messages after p->local's; false if a signal
 * ended the process. lone: the message just handled where it lay in the
 * word (mbox_peek), which comes out with the rest and is left out. */
static bool take(struct sched *s, struct proc *p, struct env *lone)
{
	struct env *list = lone ? kri_mbox_unpeek(&p->inbox, lone) : kri_mbox_take(&p->inbox), *e;
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
		switch (kri_proc_parts.take_signal(s, p, e)) {
		case TAKE_KEEP:
			*tail = e;
			tail = &e->next;
			break;
		case TAKE_DROP:
			env_free(&s->arena, e);
			break;
		case TAKE_DIE:
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

/* A consumed message disarms a receive timeout the call did not re-arm;
 * a deferred one did not match, so the wait goes on (Erlang's `after`). */
static void rto_after(struct sched *s, struct side *side, uint32_t seq0, bool deferred)
{
	if (side && side->rto && !deferred && side->rto_seq == seq0) {
		kri_proc_parts.timer_cancel(s->rt, s, side->rto);
		side->rto = 0;
		side->rto_seq = rto_next(side);
	}
}

/* The steps around handling message e, whoever hands it over: the run
 * loop to a behaviour, or a function process's receive taking it in place
 * (kri_proc_local_next/_done). msg_begin: false for a stale timeout,
 * then freed; else *seq0 is what msg_end compares. */
static inline bool msg_begin(struct sched *s, struct side *side, struct env *e, uint32_t *seq0)
{
	if (!rto_before(s, side, e)) { /* never a lone one: a system tag */
		env_free(&s->arena, e);
		return false;
	}
	*seq0 = side ? side->rto_seq : 0;
	return true;
}

/* Count e as handled, settle the receive timeout, and keep e if c->defer
 * (deferred; true: kept, not to be freed). A process with a side record
 * counts what it handled there (kr_process_info), in the branch rto_after
 * takes anyway: a plain process pays nothing for it. c->defer is read
 * where it is used: passed as a value, it cost the run loop an
 * instruction a message. */
static inline bool msg_end(struct sched *s, struct proc *p, struct env *e, uint32_t seq0,
			   const struct kr_ctx *c)
{
	struct side *side = p->side;
	if (side) {
		side->handled++;
		rto_after(s, side, seq0, c->defer);
	}
	bool keep = c->defer && side;
	if (keep) {
		e->next = 0;
		if (p->side->dtail)
			p->side->dtail->next = e;
		else
			p->side->dhead = e;
		p->side->dtail = e;
	}
	return keep;
}

struct env *kri_proc_local_next(struct sched *s, struct proc *p, uint32_t *seq0)
{
	struct env *e;
	while ((e = p->local)) {
		p->local = e->next;
		if (msg_begin(s, p->side, e, seq0))
			return e;
	}
	return 0;
}

void kri_proc_local_done(struct sched *s, const struct kr_ctx *c, struct env *e, uint32_t seq0)
{
	if (!msg_end(s, c->p, e, seq0, c))
		env_free(&s->arena, e);
	stat_add(&s->st.msgs, 1);
}

/* A sink (bal_sink: a receiver that sends little) ran a whole budget or
 * more: for the next BAL_SINK_CALLS calls here, the sink queued again
 * behind nothing is not backlog for a thief, and its node's backlog waits
 * a mark's wait for a thief of another node (sched.c's queue_len). Counted
 * in calls, not time: the owner reads no clock, and deterministic mode
 * replays. */
static void note_sink(struct sched *s, struct proc *p)
{
	atomic_store_explicit(&s->sink, p, memory_order_relaxed);
	sched_mark(s, &s->sink_calls);
	/* And its node, for thieves of other nodes (sched.c's node_sink):
	 * written only when it changes, the line being theirs to read. */
	_Atomic unsigned *by = &s->rt->nodes[s->place.numa].sink_by;
	if (atomic_load_explicit(by, memory_order_relaxed) != s->id + 1)
		atomic_store_explicit(by, s->id + 1, memory_order_relaxed);
}

/* The longest run, in budgets, of a process with messages taken. */
#define SLICE_MAX 16u

void kri_proc_run(struct sched *s, struct proc *p)
{
	struct kr_ctx *c = &s->ctx;
	/* The budget is in messages handled plus messages sent, as BEAM's
	 * reductions charge for sends: a producer that floods a consumer
	 * yields as often as the consumer it floods. */
	unsigned budget = s->rt->cfg.batch, used = 0;
	uint64_t handled = 0;
	c->p = p;
	p->on = (uint16_t)s->id; /* ids are below 4,096 (kr_config) */
	c->self = pid_make(p->idx, atomic_load_explicit(&p->gen, memory_order_relaxed));
	c->exiting = false;
	c->sent = 0;
	atomic_store_explicit(&s->running, c->self, memory_order_relaxed);
	for (;;) {
		struct env *e;
		if (p->local) {
			e = p->local;
			p->local = e->next;
		} else if ((e = kri_mbox_peek(&p->inbox)) && e->m.tag < KR_TAG_SYSTEM) {
			/* A message alone in the mailbox (a ping-pong, a ring, a
			 * request): handled where it lies; then one CAS takes
			 * it out and idles the process (mbox.c). */
			ovl_taken(s, p, e);
			c->lone = true;
		} else {
			if (!take(s, p, 0)) {
				kri_proc_exit(s, p, c->reason, c->payload, c->plen);
				break;
			}
			if (!p->local) {
				if (kri_mbox_idle(&p->inbox) == 0)
					break;
				continue;
			}
			e = p->local;
			p->local = e->next;
		}
		uint32_t seq0;
		if (!msg_begin(s, p->side, e, &seq0))
			continue;
		c->cur = e;
		c->defer = false;
		/* A fault or a kill from here on is the process's (fault.c,
		 * watchdog.c). Relaxed stores: plain moves. */
		stat_add(&s->calls, 1);
		atomic_store_explicit(&s->in_beh, 1, memory_order_relaxed);
		p->beh(c, proc_state(p), &e->m);
		atomic_store_explicit(&s->in_beh, 0, memory_order_relaxed);
		if (c->bufs)
			kri_bufs_free(s);
		outbox_flush(s);
		s->ob.pid = 0;
		handled++;
		used += 1 + c->sent;
		c->sent = 0;
		bool keep = msg_end(s, p, e, seq0, c);
		/* The lone message leaves the word before it is freed: in the
		 * same step as going idle if nothing else is due (none handed
		 * back by kr_undefer, budget left), else with whatever came
		 * meanwhile (to be handled now, or drained by an exit). Once
		 * idle, the process is another scheduler's to run: nothing of
		 * it is touched after the CAS. */
		bool idle = false, alive = true;
		if (c->exiting) {
			kri_proc_drop_lone(s);
		} else if (c->lone) {
			c->lone = false;
			if (!p->local && used < budget) {
				if (kri_mbox_idle_lone(&p->inbox, e) == 0)
					idle = true;
				else
					stat_add(&s->st.lone_fails, 1);
			}
			if (!idle)
				alive = take(s, p, e);
		}
		if (!keep)
			env_free(&s->arena, e);
		c->cur = 0;
		if (idle)
			break;
		if (c->exiting || !alive) {
			kri_proc_exit(s, p, c->reason, c->payload, c->plen);
			break;
		}
		if (used >= budget) {
			bool sink = bal_sink(handled, used - handled);
			/* Messages it already took (p->local) are run on,
			 * up to SLICE_MAX budgets in all: their senders were
			 * charged for them (a budget counts sends), so a
			 * receiver that got one budget a turn handled 256 of
			 * every 2,000 two fanin producers sent, its mailbox
			 * grew for the whole run and each envelope was a
			 * fresh allocation (jemalloc, some 280 instructions a
			 * message in callgrind). Only a receiver that sends
			 * little (under one message in four handled): a hub
			 * that sends one a message would wake a client each,
			 * and a long run of those floods the run queue past
			 * its ring, whose overflow a thief takes at once
			 * (bank at 2 schedulers: 3 times the steals, each
			 * then a cross-core exchange). Only in this branch: a
			 * process that goes idle pays nothing for it. */
			if (p->local && sink && used < SLICE_MAX * budget)
				continue;
			/* Marked as the run ends, not as it runs on: a run-on
			 * comes back here each message. */
			if (sink)
				note_sink(s, p);
			/* A busy one: a candidate for the stats' top table,
			 * measured while this scheduler still owns it. */
			if (s->tpub)
				kri_top_note(s, p, c->self, handled);
			/* Fairness: back of the queue, still RUN, if anything is
			 * left; else go idle like any other run. The very back,
			 * behind the overflow, as BEAM queues a process whose
			 * reductions ran out: into the ring, which is popped
			 * before the overflow but for one pop in 61, it ran
			 * again ahead of everything it had just woken past the
			 * ring. Savina's fjcreate, whose coordinator wakes 1,000
			 * workers a turn, had 525,000 of its 1,000,000 queued at
			 * once at 1 scheduler, each slot and envelope fresh
			 * memory, a third of the run in page faults: 3.0-4.2 M
			 * workers a second, 10.1-10.7 M since. A woken process still
			 * goes into the ring (runnext, then runq_push): a tree of
			 * spawns runs newest first, and skynet's million
			 * processes are not all alive at once. */
			if (p->local || kri_mbox_idle(&p->inbox))
				kri_runq_push_back(&s->q, p);
			break;
		}
	}
	/* The outbox is empty here: each call's sends went when it returned. */
	c->p = 0;
	atomic_store_explicit(&s->running, 0, memory_order_relaxed);
	stat_add(&s->st.msgs, handled);
}

static void become_in(kr_ctx *ctx, kr_behaviour b)
{
	if (b)
		ctx->p->beh = b;
	kr_undefer(ctx);
}

void kr_become(kr_ctx *ctx, kr_behaviour b)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return;
	become_in(ctx, b);
	api_leave(s);
}

void kr_exit(kr_ctx *ctx, uint32_t reason)
{
	if (!ctx)
		return;
	ctx->exiting = true;
	ctx->reason = reason;
	ctx->plen = 0;
}

int kr_exit_with(kr_ctx *ctx, uint32_t reason, const void *payload, size_t len)
{
	if (!ctx)
		return -EINVAL;
	if (len > KR_PAYLOAD_MAX || (len && !payload))
		return -EINVAL;
	ctx->exiting = true;
	ctx->reason = reason;
	ctx->plen = (uint32_t)len;
	if (len)
		memcpy(ctx->payload, payload, len);
	return 0;
}

static void defer_in(kr_ctx *ctx)
{
	/* Without a side record the message cannot be kept; it is then
	 * consumed as if not deferred (memory exhausted). */
	if (ctx->cur && kri_proc_side(ctx->s, ctx->p))
		ctx->defer = true;
}

void kr_defer(kr_ctx *ctx)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return;
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
	struct sched *s = api_enter_ctx(ctx);
	if (!s)
		return;
	undefer_in(ctx);
	api_leave(s);
}
