/* info: what a process holds and does (kr_process_info), the walk over live
 * processes (kr_process_next), and the candidates for a scheduler's
 * top-processes table in the stats segment (top_note).
 *
 * Most of a process is its owner's: the messages taken (local), the side
 * record, a big state, the envelopes in its mailbox word. The owner frees
 * them at the exit without waiting for readers (only the slot outlives it,
 * through the epoch), so only the owner, or anyone while no scheduler
 * runs, may read them: kr_process_info is exact for the process itself and
 * for a runtime at rest, and for anyone else reads only the slot's atomic
 * words, the registry and the schedulers' running pids. Rejected: walking
 * another process's mailbox word from a foreign thread (the owner may take
 * and free those envelopes under the walk), and asking the owner with a
 * system message (an answer a caller could only wait for, and a behaviour
 * must not wait). The top table is measured by owners, at the end of a run
 * that used its whole batch: off the message path, where the busy ones are. */
#include <errno.h>
#include <string.h>

#include "core/sched/sched.h"
#include "core/registry/registry.h"

/* Bytes a big state takes (proc.c's layout: its length in front). */
#define BIG_HDR 16

/* Size the arena rounds a small allocation to (its caches' classes). */
static uint64_t rounded(size_t n)
{
	return n && n <= 16 * ARENA_CLASSES ? 16u * (arena_class(n) + 1) : n;
}

/* Count a list of envelopes, at most *left of them, skipping skip. */
static void count_list(const struct env *e, const struct env *skip, uint64_t *left, uint64_t *n,
		       uint64_t *bytes)
{
	for (; e && *left; e = e->next) {
		if (e == skip)
			continue;
		(*n)++;
		(*left)--;
		*bytes += rounded(env_size(e->m.len));
	}
}

void kri_proc_measure(struct proc *p, const struct kr_ctx *c, uint64_t cap, uint64_t *mailbox,
		      uint64_t *memory)
{
	uint64_t n = 0, bytes = sizeof(struct proc), left = cap;
	/* The message being handled is no longer waiting: taken from
	 * local, or (lone) still in the word. */
	const struct env *skip = c && c->p == p && c->lone ? c->cur : 0;
	count_list(p->local, 0, &left, &n, &bytes);
	/* The owner holds RUN (or nobody runs): nobody else takes from the
	 * word, and a push only puts envelopes in front of those seen.
	 * Acquire: the envelopes' next fields, written before their push. */
	uintptr_t w = atomic_load_explicit(&p->inbox, memory_order_acquire);
	if (w != MB_DEAD)
		count_list(MB_PTR(w), skip, &left, &n, &bytes);
	if (p->flags & P_BIG) {
		size_t len;
		memcpy(&len, (const unsigned char *)(uintptr_t)p->state - BIG_HDR, sizeof(len));
		bytes += rounded(BIG_HDR + len);
	}
	struct side *sd = p->side;
	if (sd) {
		count_list(sd->dhead, 0, &left, &n, &bytes);
		bytes += rounded(sizeof(*sd));
		if (sd->links.map.mask)
			bytes += (uint64_t)(sd->links.map.mask + 1) * sizeof(uint64_t);
		bytes +=
		    (uint64_t)(sd->out.cap + sd->in.cap + sd->waiters.cap) * sizeof(struct mon);
		bytes += kri_proc_owned_bytes(p); /* kr_alloc's blocks, headers included */
	}
	*mailbox = n;
	*memory = bytes;
}

void kri_top_note(struct sched *s, struct proc *p, kr_pid pid, uint64_t handled)
{
	struct top_cand *t = 0;
	for (unsigned i = 0; i < s->ntop; i++)
		if (s->top[i].pid == pid) {
			/* Measured at its first full run of the interval: a long
			 * mailbox is walked once a second, not every batch. */
			s->top[i].handled += handled;
			return;
		}
	if (s->ntop < TOP_CAND) {
		t = &s->top[s->ntop++];
	} else {
		/* Full: it takes the place of the least busy, if busier. */
		t = &s->top[0];
		for (unsigned i = 1; i < TOP_CAND; i++)
			if (s->top[i].handled < t->handled)
				t = &s->top[i];
		if (t->handled >= handled)
			return;
	}
	t->pid = pid;
	t->handled = handled;
	kri_proc_measure(p, &s->ctx, KR_STATS_MBOX_CAP, &t->mailbox, &t->memory);
}

/* May this thread read everything of p? Its own process, or a runtime
 * where nothing runs but this thread. */
static bool owns_all(struct kr_runtime *rt, kr_pid pid, struct sched **self)
{
	struct sched *s = kri_api_sched();
	*self = 0;
	if (s && s->rt == rt && s->ctx.p && s->ctx.self == pid) {
		*self = s;
		return true;
	}
	if (rt->cfg.deterministic)
		/* The driver thread owns every scheduler; another thread owns
		 * nothing while the driver runs. */
		return kri_rt_current == rt ||
		       atomic_load_explicit(&rt->state, memory_order_acquire) != RT_RUNNING;
	return atomic_load_explicit(&rt->state, memory_order_acquire) != RT_RUNNING;
}

static int info_in(struct kr_runtime *rt, kr_pid pid, kr_proc_info *info)
{
	uint32_t size = info->size;
	kr_proc_info out;
	int err;
	memset(&out, 0, sizeof(out));
	out.size = size < sizeof(out) ? size : (uint32_t)sizeof(out);
	out.pid = pid;
	out.sched = -1;
	struct proc *p = kri_proc_lookup(rt, pid, &err);
	if (!p && err) {
		return err;
	} else if (p) {
		struct sched *self;
		bool all = owns_all(rt, pid, &self);
		out.alive = 1;
		kri_registry_name_of(rt, pid, out.name, sizeof(out.name));
		if (self) {
			out.sched = (int)self->id;
		} else if (!all) {
			for (unsigned i = 0; i < rt->n; i++)
				/* Relaxed: a snapshot; the watchdog reads it so too. */
				if (atomic_load_explicit(&rt->s[i].running, memory_order_relaxed) ==
				    pid)
					out.sched = (int)i;
		}
		if (all) {
			kri_proc_measure(p, self ? &self->ctx : 0, UINT64_MAX, &out.mailbox,
					 &out.memory);
			if (p->side) {
				out.links = kri_pidset_count(&p->side->links);
				out.monitors = p->side->out.n;
				out.monitored_by = p->side->in.n;
				out.handled = p->side->handled;
			}
			out.flags = KR_INFO_EXACT | KR_INFO_MAILBOX | KR_INFO_SIDE;
		} else {
			/* Acquire, as a sender's push is seen: only whether the
			 * word holds an envelope is used. */
			uintptr_t w = atomic_load_explicit(&p->inbox, memory_order_acquire);
			out.mailbox = w != MB_DEAD && MB_PTR(w) != 0;
			out.memory = sizeof(struct proc);
		}
		/* The process may have exited meanwhile: then say so, as a
		 * lookup made now would. */
		if (!kri_proc_lookup(rt, pid, &err)) {
			memset(&out, 0, sizeof(out));
			out.size = size < sizeof(out) ? size : (uint32_t)sizeof(out);
			out.pid = pid;
			out.sched = -1;
		}
	}
	memcpy(info, &out, out.size);
	info->size = size;
	return 0;
}

int kr_process_info(kr_runtime *rt, kr_pid pid, kr_proc_info *info)
{
	if (!rt || !info || info->size < offsetof(kr_proc_info, handled) + sizeof(info->handled))
		return -EINVAL;
	struct sched *s = kri_api_sched();
	api_enter(s);
	int rc = info_in(rt, pid, info);
	api_leave(s);
	return rc;
}

int kr_process_next(kr_runtime *rt, uint64_t *cursor, kr_pid *pid)
{
	if (!rt || !cursor || !pid)
		return -EINVAL;
	struct slots *t = &rt->procs;
	uint64_t i = *cursor;
	while (i < t->max) {
		struct proc *p = slot_at(t, (uint32_t)i);
		if (!p)
			break; /* chunks are made in order: none after a missing one */
		/* Acquire: pairs with spawn's release, as a lookup does. Slots
		 * are never unmapped, so an exited one is read safely. */
		uint32_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
		i++;
		if (g & 1) {
			*cursor = i;
			*pid = pid_make((uint32_t)(i - 1), g);
			return 1;
		}
	}
	*cursor = i;
	return 0;
}
