/* env: message envelopes, and how one reaches a process: the outbox that
 * batches a call's sends to one receiver, and delivery from the runtime
 * (signals, timers, I/O). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/proc/deliver.h"
#include "core/sched/sched.h"
#include "core/proc/limit.h"

void kri_env_free_list(struct arena *a, struct env *e)
{
	while (e) {
		struct env *n = e->next;
		env_free(a, e);
		e = n;
	}
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
void kri_outbox_push(struct sched *s)
{
	struct outbox *ob = &s->ob;
	struct proc *p = ob->p;
	struct env *head = ob->head, *tail = ob->tail;
	ob->n = 0;
	ob->p = 0;
	ob->head = ob->tail = 0;
	switch (kri_mbox_push_chain(&p->inbox, head, tail)) {
	case MB_WOKE:
		sched_woken(s, p);
		break;
	case MB_CLOSED:
		kri_env_free_list(&s->arena, head);
		break;
	}
}

static int deliver(struct sched *s, kr_pid to, struct env *e, bool tail)
{
	int err;
	outbox_flush(s);
	struct proc *p = kri_proc_lookup(s->rt, to, &err);
	if (!p) {
		env_free(&s->arena, e);
		return err;
	}
	kri_ovl_count(p, e);
	return push(s, p, e, tail);
}

int kri_proc_deliver(struct sched *s, kr_pid to, struct env *e)
{
	return deliver(s, to, e, false);
}

int kri_proc_deliver_tail(struct sched *s, kr_pid to, struct env *e)
{
	return deliver(s, to, e, true);
}

/* ---- system messages -----------------------------------------------------
 * A signal (link, exit, monitor, DOWN, a mailbox-room request) is an
 * envelope with a system tag and a kr_exit_info, delivered like any
 * message so that it keeps its order with the sender's messages. */

struct env *kri_sig_env(struct arena *a, uint32_t tag, kr_pid from, uint64_t ref, uint32_t reason,
			const void *payload, uint32_t len)
{
	size_t n = offsetof(kr_exit_info, payload) + len;
	struct env *e = env_alloc(a, env_size((uint32_t)n));
	if (!e)
		return 0;
	e->m.tag = tag;
	e->m.len = (uint32_t)n;
	kr_exit_info *x = (kr_exit_info *)e->m.data;
	x->pid = from;
	x->ref = ref;
	x->reason = reason;
	x->len = len;
	if (len)
		memcpy(x->payload, payload, len);
	return e;
}

int kri_sig_send(struct sched *s, kr_pid to, uint32_t tag, kr_pid from, uint64_t ref,
		 uint32_t reason, const void *payload, uint32_t len)
{
	struct env *e = kri_sig_env(&s->arena, tag, from, ref, reason, payload, len);
	if (!e)
		return -ENOMEM;
	return kri_proc_deliver(s, to, e);
}
