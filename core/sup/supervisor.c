/* supervisor: OTP's supervisors, written on the public API alone. A
 * supervisor is a process whose behaviour traps exits and handles its
 * children's KR_TAG_EXIT messages (krill.h describes what it does).
 *
 * State. The process state is an image of the supervisor's spec (struct
 * img: flags, child records, their args), self-contained so that a
 * supervisor can itself be a child's arg (a nested tree: the parent copies
 * the image at each restart). Its first word is a pointer to the
 * supervisor's working block (struct sup), NULL until the first message:
 * the children in start order, a pid -> child hash, the restart history,
 * the shutdown in progress. Args of the children given at start stay in
 * the image (the state lives as long as the process); those of children
 * added later are copied into the block.
 *
 * Who frees the block. The supervisor itself, before kr_exit. A supervisor
 * can also end without running its behaviour again (KR_KILL, a fault), so
 * it spawns a janitor, an unlinked process holding only the block's
 * pointer and monitoring it: on DOWN the janitor frees the block; on an
 * orderly exit the supervisor frees it and sends the janitor BYE first.
 * What nobody can free: the block of a supervisor alive when the runtime
 * is stopped (kr_stop, or the end of a deterministic run) and freed.
 *
 * Shutting children down is asynchronous (the behaviour must return): a
 * job marks the children to stop (C_TERM), then stops them one at a time
 * in reverse start order, each with a KR_SHUTDOWN exit signal, a
 * kr_send_after timer for shutdown_ms, and KR_KILL when the timer comes
 * first. While a job runs every other message is deferred and comes back
 * (kr_undefer) as each child is done. Then the job's continuation: start
 * children again (a restart), answer a terminate request, or exit.
 *
 * Restart intensity: restart times in ms (CLOCK_MONOTONIC), kept as a ring
 * of (ms, count) pairs: at most min(period_ms, intensity) + 1 entries. Its
 * size is a power of two (8, doubled), so an index wraps with a mask, not
 * a division, at each restart. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sched/sched.h"
#include "krill.h"
#include "util/hmap.h"

enum {
	SUP_START = KR_TAG_SUP, /* data: the parent's pid (or none) */
	SUP_START_CHILD,        /* struct req_start + arg */
	SUP_TERMINATE_CHILD,    /* struct req_term */
	SUP_WHICH,              /* struct req_which */
	SUP_TIMER,              /* struct tmsg: a shutdown_ms expired */
	SUP_RETRY,              /* struct tmsg: start a child again */
	SUP_JANITOR_INIT,       /* to the janitor: the supervisor's pid */
	SUP_BYE,                /* to the janitor: the block is freed */
};

#define IMG_MAGIC 0x4b535550u /* "KSUP" */
#define REQ_MAGIC 0x4b535251u
#define NIL       UINT32_MAX

/* ---- the image: a supervisor's spec, as its process state -------------- */

struct sup;

struct img_child {
	char id[KR_SUP_ID_MAX + 1];
	kr_behaviour start;
	kr_fn fn;         /* or this: a function process */
	uint64_t stack;   /* its kr_fn_opts.stack */
	uint64_t arg_off; /* from the image's start */
	uint64_t arg_len;
	uint32_t restart, shutdown_ms, init_tag, flags;
};

/* The image: this header, then n struct img_child, then the args, each at a multiple of 16. */
struct img {
	struct sup *sup; /* NULL in an image; the working block once running */
	uint32_t magic;
	uint32_t n;
	kr_sup_flags flags;
	uint32_t pad;
	uint64_t len; /* the whole image */
};

static void sup_main(kr_ctx *ctx, void *state, const kr_msg *msg);

static size_t round16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

static int check_flags(const kr_sup_flags *f)
{
	if (!f || f->strategy > KR_REST_FOR_ONE || f->period_ms == 0)
		return -EINVAL;
	return 0;
}

/* A spec's fields; the id as a static child's (non-empty) or not. */
static int check_spec(const kr_child_spec *c, bool static_id)
{
	if (!c || !c->start == !c->fn || (c->arg_len && !c->arg) || c->restart > KR_TEMPORARY ||
	    c->init_tag >= KR_TAG_SYSTEM || (c->stack && !c->fn))
		return -EINVAL;
	if (!c->id)
		return static_id ? -EINVAL : 0;
	size_t l = strnlen(c->id, KR_SUP_ID_MAX + 1);
	if (l > KR_SUP_ID_MAX || (static_id && l == 0))
		return -EINVAL;
	return 0;
}

static void copy_id(char *dst, const char *id)
{
	memset(dst, 0, KR_SUP_ID_MAX + 1);
	if (id)
		memcpy(dst, id, strnlen(id, KR_SUP_ID_MAX));
}

/* Check flags and children; the image's size in *len. */
static int img_size(const kr_sup_flags *flags, const kr_child_spec *ch, size_t n, size_t *len)
{
	int rc = check_flags(flags);
	if (rc)
		return rc;
	if (n && !ch)
		return -EINVAL;
	if (n > (SIZE_MAX - sizeof(struct img)) / sizeof(struct img_child) / 2)
		return -ENOMEM;
	size_t sz = round16(sizeof(struct img) + n * sizeof(struct img_child));
	for (size_t i = 0; i < n; i++) {
		if ((rc = check_spec(&ch[i], true)))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (strcmp(ch[i].id, ch[j].id) == 0)
				return -EEXIST;
		if (ch[i].arg_len > SIZE_MAX / 2 - sz)
			return -ENOMEM;
		sz += round16(ch[i].arg_len);
	}
	*len = sz;
	return 0;
}

static void img_write(void *buf, size_t len, const kr_sup_flags *flags, const kr_child_spec *ch,
		      size_t n)
{
	struct img h = {.magic = IMG_MAGIC, .n = (uint32_t)n, .flags = *flags, .len = len};
	memset(buf, 0, len);
	memcpy(buf, &h, sizeof(h));
	size_t off = round16(sizeof(struct img) + n * sizeof(struct img_child));
	for (size_t i = 0; i < n; i++) {
		struct img_child c = {
		    .start = ch[i].start,
		    .fn = ch[i].fn,
		    .stack = ch[i].stack,
		    .arg_off = off,
		    .arg_len = ch[i].arg_len,
		    .restart = ch[i].restart,
		    .shutdown_ms = ch[i].shutdown_ms,
		    .init_tag = ch[i].init_tag,
		};
		copy_id(c.id, ch[i].id);
		memcpy((char *)buf + sizeof(struct img) + i * sizeof(c), &c, sizeof(c));
		if (ch[i].arg_len)
			memcpy((char *)buf + off, ch[i].arg, ch[i].arg_len);
		off += round16(ch[i].arg_len);
	}
}

/* A malloc'd image of the spec, or an error. */
static int img_build(const kr_sup_flags *flags, const kr_child_spec *ch, size_t n, void **out,
		     size_t *len)
{
	int rc = img_size(flags, ch, n, len);
	if (rc)
		return rc;
	if (n > UINT32_MAX)
		return -EINVAL;
	void *buf = malloc(*len);
	if (!buf)
		return -ENOMEM;
	img_write(buf, *len, flags, ch, n);
	*out = buf;
	return 0;
}

/* ---- the working block ------------------------------------------------- */

/* child flags */
#define C_FREE    1u  /* slot unused (on the free list) */
#define C_DYNAMIC 2u  /* added by kr_sup_start_child */
#define C_OWNARG  4u  /* arg is the block's own copy */
#define C_TERM    8u  /* to be shut down by the job in progress */
#define C_RETRY   16u /* a start failed; a SUP_RETRY message is on its way */

struct child {
	char id[KR_SUP_ID_MAX + 1];
	kr_behaviour start;
	kr_fn fn; /* or this, with its own stack of stack bytes (0: shared) */
	size_t stack;
	const void *arg;
	size_t arg_len;
	kr_pid pid; /* 0: not running */
	uint32_t restart, shutdown_ms, init_tag, flags;
	uint32_t prev, next; /* start order (next: the free list when C_FREE) */
	uint32_t gen;        /* bumped at each reuse of the slot */
};

struct hent {
	kr_pid pid; /* the key: 0 in an empty cell */
	uint32_t slot;
};

/* The block's memory is malloc's: the janitor may free it on any thread. */
static const struct kri_hmap_kind hent_kind = {
    .esize = sizeof(struct hent),
    .mincap = 16,
    .fill = 1,
    .alloc = kri_hmap_libc_alloc,
    .free = kri_hmap_libc_free,
};

struct hist {
	uint64_t ms;
	uint64_t n;
};

enum { J_NONE, J_RESTART, J_SHUTDOWN, J_TERMINATE };

struct sup {
	kr_sup_flags flags;
	kr_pid self, parent, janitor;
	/* children */
	struct child *c;
	uint32_t cap, nfree, head, tail, count;
	/* pid -> slot (struct hent), at most a quarter full: each restart
	 * removes one pid and adds one, and a removal scans the rest of its
	 * cluster (half full cost twice the scan) */
	struct kri_hmap ht;
	/* restart history: a ring of (ms, count), oldest at hfirst */
	struct hist *h;
	uint32_t hcap, hfirst, hlen;
	uint64_t htotal;
	/* the job in progress */
	int job;
	uint32_t cursor;  /* next child to look at, walking backward */
	uint32_t waiting; /* the child being shut down, or NIL */
	kr_pid wpid;
	kr_timer timer;
	uint64_t tseq;
	uint32_t from; /* J_RESTART: first child to start again; NIL: head */
	uint32_t reason, plen;
	unsigned char payload[KR_PAYLOAD_MAX];
	kr_pid reply_to;
	uint32_t reply_tag;
};

/* A timer or retry message. */
struct tmsg {
	uint32_t magic;
	uint32_t slot;
	uint64_t seq; /* SUP_TIMER: the job's timer; SUP_RETRY: the slot's gen */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sup_free(struct sup *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->cap; i++)
		if ((s->c[i].flags & (C_FREE | C_OWNARG)) == C_OWNARG)
			free((void *)s->c[i].arg);
	free(s->c);
	kri_hmap_fini(&s->ht, &hent_kind, 0);
	free(s->h);
	free(s);
}

/* -- pid -> slot ----------------------------------------------------------- */

static uint32_t ht_get(const struct sup *s, kr_pid pid)
{
	const struct hent *e = kri_hmap_find(&s->ht, &hent_kind, pid);
	return e ? e->slot : NIL;
}

static int ht_put(struct sup *s, kr_pid pid, uint32_t slot)
{
	int rc = kri_hmap_reserve(&s->ht, &hent_kind, 0);
	if (rc)
		return rc;
	struct hent *e = kri_hmap_insert(&s->ht, &hent_kind, pid);
	e->slot = slot;
	return 0;
}

static void ht_del(struct sup *s, kr_pid pid)
{
	kri_hmap_remove(&s->ht, &hent_kind, pid);
}

/* -- children in start order ----------------------------------------------- */

/* A free slot appended at the end of the start order, or NIL. */
static uint32_t child_new(struct sup *s)
{
	if (s->nfree == NIL) {
		uint32_t cap = s->cap ? 2 * s->cap : 8;
		if (cap <= s->cap || cap > UINT32_MAX / 2)
			return NIL;
		struct child *c = realloc(s->c, cap * sizeof(*c));
		if (!c)
			return NIL;
		memset(c + s->cap, 0, (cap - s->cap) * sizeof(*c));
		for (uint32_t i = cap; i-- > s->cap;) {
			c[i].flags = C_FREE;
			c[i].next = s->nfree;
			s->nfree = i;
		}
		s->c = c;
		s->cap = cap;
	}
	uint32_t i = s->nfree;
	struct child *c = &s->c[i];
	s->nfree = c->next;
	uint32_t gen = c->gen + 1;
	memset(c, 0, sizeof(*c));
	c->gen = gen;
	c->prev = s->tail;
	c->next = NIL;
	if (s->tail != NIL)
		s->c[s->tail].next = i;
	else
		s->head = i;
	s->tail = i;
	s->count++;
	return i;
}

/* Forget a child that is not running. */
static void child_remove(struct sup *s, uint32_t i)
{
	struct child *c = &s->c[i];
	if (c->prev != NIL)
		s->c[c->prev].next = c->next;
	else
		s->head = c->next;
	if (c->next != NIL)
		s->c[c->next].prev = c->prev;
	else
		s->tail = c->prev;
	if (c->flags & C_OWNARG)
		free((void *)c->arg);
	c->arg = 0;
	c->flags = C_FREE;
	c->next = s->nfree;
	s->nfree = i;
	s->count--;
}

/* Spawn child i, linked, and send it its init message. */
static int child_spawn(kr_ctx *ctx, struct sup *s, uint32_t i)
{
	struct child *c = &s->c[i];
	kr_pid pid;
	kr_fn_opts o = {.stack = c->stack, .link = 1};
	int rc = c->fn ? kr_spawn_fn_opts(ctx, c->fn, c->arg, c->arg_len, &o, &pid)
		       : kr_spawn_link(ctx, c->start, c->arg, c->arg_len, &pid);
	if (rc)
		return rc;
	rc = ht_put(s, pid, i);
	if (rc == 0 && c->init_tag)
		rc = kr_send(ctx, pid, c->init_tag, &s->self, sizeof(s->self));
	if (rc) {
		/* Undo: it has run nothing yet; its exit signal is dropped when
		 * it comes (no longer a child). */
		kr_unlink(ctx, pid);
		kr_send_exit(ctx, pid, KR_KILL);
		ht_del(s, pid);
		return rc;
	}
	c->pid = pid;
	return 0;
}

/* -- restart intensity ------------------------------------------------------ */

/* Record a restart now; false if that makes more than intensity within
 * period_ms. */
static bool add_restart(struct sup *s)
{
	uint64_t now = mono_ms();
	while (s->hlen && now - s->h[s->hfirst].ms >= s->flags.period_ms) {
		s->htotal -= s->h[s->hfirst].n;
		s->hfirst = (s->hfirst + 1) & (s->hcap - 1);
		s->hlen--;
	}
	uint32_t last = s->hlen ? (s->hfirst + s->hlen - 1) & (s->hcap - 1) : 0;
	if (s->hlen && s->h[last].ms == now) {
		s->h[last].n++;
	} else {
		if (s->hlen == s->hcap) {
			uint32_t cap = s->hcap ? 2 * s->hcap : 8;
			struct hist *h = malloc(cap * sizeof(*h));
			if (!h)
				return false; /* cannot count: give up, safely */
			for (uint32_t k = 0; k < s->hlen; k++)
				h[k] = s->h[(s->hfirst + k) & (s->hcap - 1)];
			free(s->h);
			s->h = h;
			s->hcap = cap;
			s->hfirst = 0;
		}
		s->h[(s->hfirst + s->hlen) & (s->hcap - 1)] = (struct hist){now, 1};
		s->hlen++;
	}
	s->htotal++;
	return s->htotal <= s->flags.intensity;
}

/* The one thing a supervisor asks of the runtime beyond the public API:
 * its restarts show in the stats (krilltop's "restarts"). */
static void count_restart(kr_ctx *ctx)
{
	stat_add(&ctx->s->st.restarts, 1);
}

/* ---- shutting children down: jobs --------------------------------------- */

static void job_next(kr_ctx *ctx, struct img *img, struct sup *s);

static void reply(kr_ctx *ctx, kr_pid to, uint32_t tag, int rc, kr_pid pid)
{
	kr_sup_reply r = {.rc = rc, .pid = pid};
	kr_send(ctx, to, tag, &r, sizeof(r));
}

/* Start child i after a failure, or schedule another try. */
static void restart_child(kr_ctx *ctx, struct sup *s, uint32_t i)
{
	struct child *c = &s->c[i];
	if (child_spawn(ctx, s, i) == 0) {
		count_restart(ctx);
		return;
	}
	/* As OTP: try again later; each try counts as a restart. */
	struct tmsg t = {REQ_MAGIC, i, c->gen};
	c->flags |= C_RETRY;
	if (kr_send(ctx, s->self, SUP_RETRY, &t, sizeof(t)))
		c->flags &= ~C_RETRY; /* no memory even for that: it stays stopped */
}

/* Begin a job on the children marked C_TERM. */
static void job_start(kr_ctx *ctx, struct img *img, struct sup *s, int job)
{
	s->job = job;
	s->cursor = s->tail;
	s->waiting = NIL;
	job_next(ctx, img, s);
}

/* Exit, as the end of an orderly shutdown. */
static void sup_exit(kr_ctx *ctx, struct img *img, struct sup *s)
{
	uint32_t reason = s->reason, plen = s->plen;
	unsigned char payload[KR_PAYLOAD_MAX];
	memcpy(payload, s->payload, plen);
	/* BYE first: the janitor must not free the block too. */
	if (s->janitor)
		kr_send(ctx, s->janitor, SUP_BYE, 0, 0);
	if (s->timer)
		kr_cancel_timer(ctx, s->timer);
	sup_free(s);
	img->sup = 0;
	kr_exit_with(ctx, reason, payload, plen);
}

/* Mark every running child and shut them all down, then exit with
 * reason and payload. */
static void shutdown_all(kr_ctx *ctx, struct img *img, struct sup *s, uint32_t reason,
			 const void *payload, uint32_t plen)
{
	for (uint32_t i = s->head; i != NIL; i = s->c[i].next)
		if (s->c[i].pid)
			s->c[i].flags |= C_TERM;
	s->reason = reason;
	s->plen = plen;
	if (plen)
		memcpy(s->payload, payload, plen);
	job_start(ctx, img, s, J_SHUTDOWN);
}

static void give_up(kr_ctx *ctx, struct img *img, struct sup *s, uint32_t cause, int err,
		    const char *id)
{
	kr_sup_report r = {.cause = cause, .err = err};
	copy_id(r.id, id);
	shutdown_all(ctx, img, s, KR_SHUTDOWN, &r, sizeof(r));
}

/* The job's children are all down: what it was for. */
static void job_done(kr_ctx *ctx, struct img *img, struct sup *s)
{
	int job = s->job;
	s->job = J_NONE;
	switch (job) {
	case J_SHUTDOWN:
		sup_exit(ctx, img, s);
		return;
	case J_TERMINATE:
		reply(ctx, s->reply_to, s->reply_tag, 0, s->wpid);
		break;
	case J_RESTART:
		for (uint32_t i = s->from == NIL ? s->head : s->from; i != NIL; i = s->c[i].next)
			if (!s->c[i].pid && !(s->c[i].flags & C_RETRY))
				restart_child(ctx, s, i);
		break;
	}
	/* Messages put off meanwhile, in their order. */
	kr_undefer(ctx);
}

/* Child i, being shut down, has exited. */
static void job_child_gone(kr_ctx *ctx, struct img *img, struct sup *s)
{
	uint32_t i = s->waiting;
	struct child *c = &s->c[i];
	ht_del(s, c->pid);
	c->pid = 0;
	c->flags &= ~C_TERM;
	s->waiting = NIL;
	if (s->timer) {
		kr_cancel_timer(ctx, s->timer);
		s->timer = 0;
	}
	/* Temporary children are forgotten; dynamic ones unless a restart
	 * will start them again. */
	if (c->restart == KR_TEMPORARY || ((c->flags & C_DYNAMIC) && s->job != J_RESTART))
		child_remove(s, i);
	/* Its exit may have let others' messages by: see them again. */
	kr_undefer(ctx);
	job_next(ctx, img, s);
}

/* Shut down the next marked child, walking back from the cursor; the
 * continuation when none is left. */
static void job_next(kr_ctx *ctx, struct img *img, struct sup *s)
{
	while (s->cursor != NIL && !(s->c[s->cursor].flags & C_TERM))
		s->cursor = s->c[s->cursor].prev;
	if (s->cursor == NIL) {
		job_done(ctx, img, s);
		return;
	}
	uint32_t i = s->cursor;
	struct child *c = &s->c[i];
	s->cursor = c->prev;
	s->waiting = i;
	s->wpid = c->pid;
	s->timer = 0;
	int rc = -1;
	if (c->shutdown_ms != 0)
		rc = kr_send_exit(ctx, c->pid, KR_SHUTDOWN);
	if (rc == 0 && c->shutdown_ms != KR_INFINITY) {
		struct tmsg t = {REQ_MAGIC, i, ++s->tseq};
		if (kr_send_after(ctx, s->self, c->shutdown_ms, SUP_TIMER, &t, sizeof(t),
				  &s->timer))
			rc = -1; /* no timer: no waiting either */
	}
	if (rc)
		kr_send_exit(ctx, c->pid, KR_KILL);
	/* Either way its EXIT comes: the link guarantees it. */
}

/* A message while a job runs. */
static void job_msg(kr_ctx *ctx, struct img *img, struct sup *s, const kr_msg *msg)
{
	if (msg->tag == KR_TAG_EXIT && msg->len >= sizeof(kr_pid)) {
		kr_pid pid;
		memcpy(&pid, msg->data, sizeof(pid));
		if (s->waiting != NIL && pid == s->wpid) {
			job_child_gone(ctx, img, s);
			return;
		}
	} else if (msg->tag == SUP_TIMER) {
		struct tmsg t;
		if (msg->len == sizeof(t)) {
			memcpy(&t, msg->data, sizeof(t));
			if (s->waiting != NIL && t.seq == s->tseq && s->timer) {
				s->timer = 0;
				kr_send_exit(ctx, s->wpid, KR_KILL);
			}
		}
		return; /* stale timers are dropped, not kept */
	}
	kr_defer(ctx);
}

/* ---- handling messages while idle ----------------------------------------- */

static void child_exited(kr_ctx *ctx, struct img *img, struct sup *s, uint32_t i, uint32_t reason)
{
	struct child *c = &s->c[i];
	ht_del(s, c->pid);
	c->pid = 0;
	if (c->restart == KR_TEMPORARY) {
		child_remove(s, i);
		return;
	}
	if (c->restart == KR_TRANSIENT && (reason == KR_NORMAL || reason == KR_SHUTDOWN)) {
		if (c->flags & C_DYNAMIC)
			child_remove(s, i);
		return;
	}
	if (!add_restart(s)) {
		give_up(ctx, img, s, KR_SUP_INTENSITY, 0, c->id);
		return;
	}
	switch (s->flags.strategy) {
	case KR_ONE_FOR_ONE:
		restart_child(ctx, s, i);
		return;
	case KR_ONE_FOR_ALL:
		for (uint32_t k = s->head; k != NIL; k = s->c[k].next)
			if (s->c[k].pid)
				s->c[k].flags |= C_TERM;
		s->from = NIL;
		break;
	default: /* KR_REST_FOR_ONE */
		for (uint32_t k = c->next; k != NIL; k = s->c[k].next)
			if (s->c[k].pid)
				s->c[k].flags |= C_TERM;
		s->from = i;
		break;
	}
	job_start(ctx, img, s, J_RESTART);
}

static void on_exit_signal(kr_ctx *ctx, struct img *img, struct sup *s, const kr_msg *msg)
{
	kr_exit_info x;
	if (msg->len < offsetof(kr_exit_info, payload))
		return;
	/* Only the pid and the reason are used: the payload (a fault's
	 * report, say) is not copied. */
	memcpy(&x, msg->data, offsetof(kr_exit_info, payload));
	uint32_t i = x.pid ? ht_get(s, x.pid) : NIL;
	if (i != NIL) {
		child_exited(ctx, img, s, i, x.reason);
		return;
	}
	if (x.pid == s->parent || x.pid == 0 || x.reason == KR_SHUTDOWN) {
		shutdown_all(ctx, img, s, x.reason, 0, 0);
		return;
	}
	/* Anyone else's exit is no concern of ours. */
}

struct req_start {
	uint32_t magic;
	uint32_t reply_tag;
	kr_pid from;
	struct img_child spec; /* arg_off unused: the arg follows */
};

struct req_term {
	uint32_t magic;
	uint32_t reply_tag;
	kr_pid from;
	kr_pid child;
};

struct req_which {
	uint32_t magic;
	uint32_t reply_tag;
	kr_pid from;
};

static void on_start_child(kr_ctx *ctx, struct sup *s, const kr_msg *msg)
{
	struct req_start r;
	if (msg->len < sizeof(r))
		return;
	memcpy(&r, msg->data, sizeof(r));
	if (r.magic != REQ_MAGIC || r.spec.arg_len != msg->len - sizeof(r) ||
	    !r.spec.start == !r.spec.fn || r.spec.restart > KR_TEMPORARY)
		return;
	void *arg = 0;
	if (r.spec.arg_len && !(arg = malloc(r.spec.arg_len))) {
		reply(ctx, r.from, r.reply_tag, -ENOMEM, 0);
		return;
	}
	if (arg)
		memcpy(arg, msg->data + sizeof(r), r.spec.arg_len);
	uint32_t i = child_new(s);
	if (i == NIL) {
		free(arg);
		reply(ctx, r.from, r.reply_tag, -ENOMEM, 0);
		return;
	}
	struct child *c = &s->c[i];
	memcpy(c->id, r.spec.id, sizeof(c->id));
	c->id[KR_SUP_ID_MAX] = 0;
	c->start = r.spec.start;
	c->fn = r.spec.fn;
	c->stack = (size_t)r.spec.stack;
	c->arg = arg;
	c->arg_len = r.spec.arg_len;
	c->restart = r.spec.restart;
	c->shutdown_ms = r.spec.shutdown_ms;
	c->init_tag = r.spec.init_tag;
	c->flags = C_DYNAMIC | (arg ? C_OWNARG : 0);
	int rc = child_spawn(ctx, s, i);
	kr_pid pid = s->c[i].pid;
	if (rc)
		child_remove(s, i);
	reply(ctx, r.from, r.reply_tag, rc, pid);
}

static void on_terminate_child(kr_ctx *ctx, struct img *img, struct sup *s, const kr_msg *msg)
{
	struct req_term r;
	if (msg->len != sizeof(r))
		return;
	memcpy(&r, msg->data, sizeof(r));
	if (r.magic != REQ_MAGIC)
		return;
	uint32_t i = r.child ? ht_get(s, r.child) : NIL;
	if (i == NIL) {
		reply(ctx, r.from, r.reply_tag, -ENOENT, r.child);
		return;
	}
	s->c[i].flags |= C_TERM;
	s->reply_to = r.from;
	s->reply_tag = r.reply_tag;
	job_start(ctx, img, s, J_TERMINATE);
}

static void on_which_children(kr_ctx *ctx, struct sup *s, const kr_msg *msg)
{
	struct req_which r;
	if (msg->len != sizeof(r))
		return;
	memcpy(&r, msg->data, sizeof(r));
	if (r.magic != REQ_MAGIC)
		return;
	size_t n = s->count;
	kr_sup_children *out = malloc(sizeof(*out) + n * sizeof(kr_sup_child_info));
	if (!out)
		return;
	memset(out, 0, sizeof(*out) + n * sizeof(kr_sup_child_info));
	size_t k = 0;
	for (uint32_t i = s->head; i != NIL; i = s->c[i].next, k++) {
		kr_sup_child_info *ci = &out->child[k];
		struct child *c = &s->c[i];
		memcpy(ci->id, c->id, sizeof(ci->id));
		ci->pid = c->pid;
		ci->restart = c->restart;
		ci->flags = (c->flags & C_DYNAMIC ? KR_SUP_DYNAMIC : 0) |
			    (c->start == sup_main ? KR_SUP_SUPERVISOR : 0);
	}
	out->total = (uint32_t)n;
	/* Too big for a message: as many as fit. */
	for (;;) {
		out->n = (uint32_t)n;
		int rc = kr_send(ctx, r.from, r.reply_tag, out,
				 sizeof(*out) + n * sizeof(kr_sup_child_info));
		if (rc != -EMSGSIZE || n == 0)
			break;
		n /= 2;
	}
	free(out);
}

static void on_retry(kr_ctx *ctx, struct img *img, struct sup *s, const kr_msg *msg)
{
	struct tmsg t;
	if (msg->len != sizeof(t))
		return;
	memcpy(&t, msg->data, sizeof(t));
	if (t.magic != REQ_MAGIC || t.slot >= s->cap)
		return;
	struct child *c = &s->c[t.slot];
	if ((c->flags & (C_FREE | C_RETRY)) != C_RETRY || c->gen != t.seq || c->pid)
		return;
	c->flags &= ~C_RETRY;
	if (!add_restart(s)) {
		give_up(ctx, img, s, KR_SUP_INTENSITY, 0, c->id);
		return;
	}
	restart_child(ctx, s, t.slot);
}

/* ---- the janitor ------------------------------------------------------------ */

static void janitor(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct sup **blk = state;
	uint64_t ref;
	kr_pid sup;
	switch (msg->tag) {
	case SUP_JANITOR_INIT:
		if (msg->len != sizeof(sup))
			return;
		memcpy(&sup, msg->data, sizeof(sup));
		if (kr_monitor(ctx, sup, &ref))
			kr_exit(ctx, KR_NORMAL); /* cannot watch: not our block */
		return;
	case KR_TAG_DOWN:
		/* The supervisor ended without freeing its block. */
		sup_free(*blk);
		*blk = 0;
		kr_exit(ctx, KR_NORMAL);
		return;
	case SUP_BYE:
		kr_exit(ctx, KR_NORMAL);
		return;
	}
}

/* ---- the supervisor's behaviour --------------------------------------------- */

/* First message: set up the block from the image, start the children. */
static void sup_init(kr_ctx *ctx, struct img *img, const kr_msg *msg)
{
	kr_sup_report r = {.cause = KR_SUP_START_FAILED, .err = -ENOMEM};
	struct sup *s = calloc(1, sizeof(*s));
	if (!s || kri_hmap_reserve(&s->ht, &hent_kind, 0)) {
		sup_free(s);
		kr_exit_with(ctx, KR_SHUTDOWN, &r, sizeof(r));
		return;
	}
	kr_trap_exit(ctx, 1);
	s->flags = img->flags;
	s->self = kr_self(ctx);
	if (msg->tag == SUP_START && msg->len == sizeof(kr_pid))
		memcpy(&s->parent, msg->data, sizeof(kr_pid));
	s->nfree = s->head = s->tail = s->waiting = NIL;
	img->sup = s;
	/* The janitor: without it a killed supervisor leaks its block. */
	kr_pid j;
	if (kr_spawn(ctx, janitor, &s, sizeof(s), &j) == 0) {
		if (kr_send(ctx, j, SUP_JANITOR_INIT, &s->self, sizeof(s->self)) == 0)
			s->janitor = j;
		else
			kr_send_exit(ctx, j, KR_KILL);
	}
	const struct img_child *ic = (const struct img_child *)(img + 1);
	for (uint32_t k = 0; k < img->n; k++) {
		uint32_t i = child_new(s);
		if (i == NIL) {
			copy_id(r.id, ic[k].id);
			shutdown_all(ctx, img, s, KR_SHUTDOWN, &r, sizeof(r));
			return;
		}
		struct child *c = &s->c[i];
		memcpy(c->id, ic[k].id, sizeof(c->id));
		c->start = ic[k].start;
		c->fn = ic[k].fn;
		c->stack = (size_t)ic[k].stack;
		c->flags = 0; /* arg points into the image: not the block's to free */
		c->arg = (const char *)img + ic[k].arg_off;
		c->arg_len = ic[k].arg_len;
		c->restart = ic[k].restart;
		c->shutdown_ms = ic[k].shutdown_ms;
		c->init_tag = ic[k].init_tag;
		int rc = child_spawn(ctx, s, i);
		if (rc) {
			child_remove(s, i);
			give_up(ctx, img, s, KR_SUP_START_FAILED, rc, ic[k].id);
			return;
		}
	}
}

static void sup_main(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct img *img = state;
	struct sup *s = img->sup;
	if (!s) {
		if (img->magic != IMG_MAGIC) {
			kr_exit(ctx, KR_SHUTDOWN);
			return;
		}
		sup_init(ctx, img, msg);
		if (msg->tag == SUP_START)
			return;
		/* Something came before the start message: handle it too. */
		if (!(s = img->sup))
			return;
	}
	if (s->job) {
		job_msg(ctx, img, s, msg);
		return;
	}
	switch (msg->tag) {
	case KR_TAG_EXIT:
		on_exit_signal(ctx, img, s, msg);
		return;
	case SUP_START_CHILD:
		on_start_child(ctx, s, msg);
		return;
	case SUP_TERMINATE_CHILD:
		on_terminate_child(ctx, img, s, msg);
		return;
	case SUP_WHICH:
		on_which_children(ctx, s, msg);
		return;
	case SUP_RETRY:
		on_retry(ctx, img, s, msg);
		return;
	}
	/* Anything else (a stale timer, a stray message) is dropped. */
}

/* ---- the public calls ----------------------------------------------------------- */

int kr_sup_spawn(kr_ctx *ctx, const kr_sup_flags *flags, const kr_child_spec *children, size_t n,
		 kr_pid *out)
{
	if (!ctx)
		return -EINVAL;
	void *img;
	size_t len;
	kr_pid pid, self = kr_self(ctx);
	if (!out)
		return -EINVAL;
	int rc = img_build(flags, children, n, &img, &len);
	if (rc)
		return rc;
	rc = kr_spawn_link(ctx, sup_main, img, len, &pid);
	free(img);
	if (rc)
		return rc;
	rc = kr_send(ctx, pid, SUP_START, &self, sizeof(self));
	if (rc) {
		/* Unlinked first, so that its end does not reach us. */
		kr_unlink(ctx, pid);
		kr_send_exit(ctx, pid, KR_KILL);
		return rc;
	}
	*out = pid;
	return 0;
}

int kr_rt_sup_spawn(kr_runtime *rt, const kr_sup_flags *flags, const kr_child_spec *children,
		    size_t n, kr_pid *out)
{
	void *img;
	size_t len;
	kr_pid pid, none = 0;
	if (!out || !rt)
		return -EINVAL;
	int rc = img_build(flags, children, n, &img, &len);
	if (rc)
		return rc;
	rc = kr_rt_spawn(rt, sup_main, img, len, &pid);
	free(img);
	if (rc)
		return rc;
	rc = kr_rt_send(rt, pid, SUP_START, &none, sizeof(none));
	if (rc) {
		kr_rt_exit(rt, pid, KR_KILL);
		return rc;
	}
	*out = pid;
	return 0;
}

int kr_sup_child(const char *id, const kr_sup_flags *flags, const kr_child_spec *children, size_t n,
		 kr_child_spec *out)
{
	void *img;
	size_t len;
	kr_child_spec probe = {.id = id, .start = sup_main};
	if (!out)
		return -EINVAL;
	int rc = check_spec(&probe, true);
	if (rc)
		return rc;
	rc = img_build(flags, children, n, &img, &len);
	if (rc)
		return rc;
	*out = (kr_child_spec){
	    .id = id,
	    .start = sup_main,
	    .arg = img,
	    .arg_len = len,
	    .restart = KR_PERMANENT,
	    .shutdown_ms = KR_INFINITY,
	    .init_tag = SUP_START,
	};
	return 0;
}

void kr_sup_child_free(kr_child_spec *spec)
{
	if (!spec || spec->start != sup_main)
		return;
	free((void *)spec->arg);
	spec->arg = 0;
	spec->arg_len = 0;
}

int kr_sup_start_child(kr_ctx *ctx, kr_pid sup, const kr_child_spec *spec, uint32_t reply_tag)
{
	if (!ctx)
		return -EINVAL;
	int rc = check_spec(spec, false);
	if (rc)
		return rc;
	if (reply_tag >= KR_TAG_SYSTEM)
		return -EINVAL;
	if (spec->arg_len > SIZE_MAX - sizeof(struct req_start) ||
	    spec->arg_len + sizeof(struct req_start) > UINT32_MAX)
		return -EMSGSIZE;
	size_t len = sizeof(struct req_start) + spec->arg_len;
	unsigned char small[256];
	unsigned char *buf = len <= sizeof(small) ? small : malloc(len);
	if (!buf)
		return -ENOMEM;
	struct req_start r = {
	    .magic = REQ_MAGIC,
	    .reply_tag = reply_tag,
	    .from = kr_self(ctx),
	    .spec =
		{
		    .start = spec->start,
		    .fn = spec->fn,
		    .stack = spec->stack,
		    .arg_len = spec->arg_len,
		    .restart = spec->restart,
		    .shutdown_ms = spec->shutdown_ms,
		    .init_tag = spec->init_tag,
		},
	};
	copy_id(r.spec.id, spec->id);
	memcpy(buf, &r, sizeof(r));
	if (spec->arg_len)
		memcpy(buf + sizeof(r), spec->arg, spec->arg_len);
	rc = kr_send(ctx, sup, SUP_START_CHILD, buf, len);
	if (buf != small)
		free(buf);
	return rc;
}

int kr_sup_terminate_child(kr_ctx *ctx, kr_pid sup, kr_pid child, uint32_t reply_tag)
{
	if (!ctx)
		return -EINVAL;
	if (reply_tag >= KR_TAG_SYSTEM)
		return -EINVAL;
	struct req_term r = {REQ_MAGIC, reply_tag, kr_self(ctx), child};
	return kr_send(ctx, sup, SUP_TERMINATE_CHILD, &r, sizeof(r));
}

int kr_sup_which_children(kr_ctx *ctx, kr_pid sup, uint32_t reply_tag)
{
	if (!ctx)
		return -EINVAL;
	if (reply_tag >= KR_TAG_SYSTEM)
		return -EINVAL;
	struct req_which r = {REQ_MAGIC, reply_tag, kr_self(ctx)};
	return kr_send(ctx, sup, SUP_WHICH, &r, sizeof(r));
}
