/* krill-sim: a deterministic simulator of krill's load balancing on synthetic
 * NUMA machines (up to 8 nodes x 32 cores), in virtual time. The victim
 * order, thresholds, choice of victim and steal amount come from
 * core/sched/balance.c, and the rule "steal only what waits" (the mark, the
 * adaptive wait, what a steal bought, young backlog near, the rate rule,
 * compaction) from core/sched/balance.h's bal_mark_spent, bal_judge,
 * bal_paid, bal_young, bal_spread_paid, bal_window and bal_giveback_wait:
 * the code the schedulers run. Only queues, costs and workloads are
 * modelled here.
 *
 * Model. Time moves in ticks of TICK_NS (25 ns: a message handled
 * locally); one unit of work takes one tick. Each tick every scheduler (in
 * turn from a seeded offset) either pays off a pending cost, runs one unit
 * of its current process, starts its next one (the next-to-run slot first,
 * at most RUN_BATCH times in a row, then its FIFO queue), or tries to
 * steal. A steal takes bal_steal_count() of the victim's queue from its
 * head and runs the newest taken, as runq_steal does.
 * Costs of the task workloads (uniform .. pairs): a failed scan 1 tick; a
 * steal 1 tick locally, ceil(d/10) ticks from a node at distance d; a run
 * of a process on another scheduler than its last half a cache-line round
 * trip (--cross-ns below), and away from its home node (where its slot was
 * allocated) 1 tick more; a message to a process queued on another node
 * ceil((d-10)/10) ticks more for the sender.
 * Communication (the message workloads: hub .. big). A message costs its
 * receiver --local-ns (25) when both ends are on one scheduler. When the
 * receiver is queued or running on another scheduler, the message is a
 * cache-line round trip of --cross-ns (450; both figures measured on the
 * development VM, issue #19), half paid by the sender (its push pulls the
 * mailbox line) and half by the receiver (the envelope comes back); across
 * nodes times d/10 of the hwloc distance (1.6, 2.2, 2.8 x on the ring
 * below: the 2-3 x that published core-to-core latency tables show between
 * sockets, against one socket). Further messages of the same run to the
 * same receiver ride the first one's batch (the outbox pushes a run's
 * sends together) at the local cost. A process that runs on another
 * scheduler than its last run pays one round trip for its state; a steal
 * one for the victim's queue; a failed scan a tick per 4 queues looked at.
 * A woken process goes to the waker's next-to-run slot, but a hub woken by a
 * client (balance.h's bal_stays, policy "krill") to the gift list of the
 * scheduler it ran on, the sender paying half a round trip more for that
 * list's lock and the message crossing; a spawned one to
 * the spawner's queue; a process with mail left after RUN_BATCH messages to
 * the back of its queue. Processes are never moved home (the re-homing
 * rule in core/sched/balance.h). Not modelled: the cost of a futex wake-up
 * and of a sleeper's return (an idle scheduler that saw no backlog polls
 * each tick, as if woken at once), memory bandwidth, preemption.
 *
 * Policies: "krill" is the runtime's: bal_init(numa = 1), and a victim's
 * backlog is taken only once it has waited the thief's wait (20 us, doubled
 * after a steal that did not pay up to 1.28 ms, halved down to none after
 * one that did); a thief that saw backlog too young sleeps its wait when
 * that is longer than a spin (50 us, kr_config.spin_us), or after a spin
 * when it saw some lately, and owners do not wake it. A thief still busy
 * with its steal judges it every --window-ns (2 ms) by the runtime's rate
 * against solo (its rate while the thief slept) and after two windows that
 * did not pay (or one, while solo is unknown, unless what it ran since
 * the steal exited: tasks) gives its processes back to its victim's gift
 * list, which thieves do not see and the owner takes once its own queue
 * is empty (a parked owner: a window later, waking it), and sleeps at
 * least the longest wait, stealing nothing before (sched.c's compaction).
 * Many-to-one (balance.h's bal_sink, bal_backlog, bal_marked and
 * bal_far_wait): a consumer that used its whole batch sending little is a
 * sink; a sink queued alone on a scheduler that ran it lately is not
 * backlog ("lately" counted in calls in sched.c); a thief of another node
 * gives the backlog of a node that ran a sink lately a mark's wait; and
 * remote backlog waits two far moves longer while its node has a scheduler
 * awake without work (in sched.c: spinning). A hub woken by a client
 * elsewhere stays where it ran, and the backlog of a scheduler where one
 * stayed lately waits a mark's wait (balance.h's bal_stays,
 * bal_marked_wait and bal_mark_longest: 80 us at 2 cores, 1.28 ms from 17).
 * sched.c runs every one of these rules. "eager" is the policy
 * before issue #19: the same victims, any queued backlog taken at once.
 * "random" is the flat order (numa = 0) started at a random victim each
 * attempt: naive random stealing. All use the same seed, so workloads are
 * identical. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hwloc.h>

#include "cli.h"
#include "core/sched/balance.h"
#include "topology/topo.h"

#define MSG_BYTES  64u /* an envelope with a small payload */
#define PAIR_BATCH 1u  /* messages a pair process handles a run */
#define TICK_NS    25u
#define SPIN_NS    50000u /* kr_config.spin_us's default */
#define RUN_BATCH  256u   /* kr_config.batch: messages a run, runnext streak */
#define SCAN_LOOKS 4u     /* queues a failed scan looks at a tick (misses overlap) */
#define GIVE_MAX   1024u  /* runq.h's RUNQ_STEAL_MAX: processes a give-back hands over */
#define RING_CAP   256u   /* runq.h's RUNQ_CAP: gifts a pop of an empty ring refills */
#define GIFT_EVERY 61u    /* runq_pop: every 61st pop takes the oldest gift first */

enum kind { K_TASK, K_FJ, K_PAIR, K_HUB, K_CLIENT, K_PROD, K_CONS, K_PING, K_PONG, K_RING, K_BIG };
enum pstate { P_IDLE, P_QUEUED, P_RUNNING, P_WAITING, P_DONE };
/* M_START: a process's own continuation (its first run, a producer's next
 * send), not a message: not counted, not a cost of communication. */
enum mtype { M_START, M_REQ, M_REPLY };
enum policy { POL_KRILL, POL_EAGER, POL_RANDOM };

struct queue {
	uint64_t *buf;
	size_t cap, head, len;
	uint32_t pushed, popped; /* sequence numbers, as runq's tail and head */
};

struct sproc {
	uint32_t home;  /* node its slot lives on */
	uint32_t sched; /* where it is queued, runs or last ran */
	uint32_t last;  /* where it last ran (message workloads) */
	uint32_t cost;  /* task: work of its one run; fj: work of a node */
	uint32_t parent, peer, pair, mail;
	uint32_t pending; /* fj: children not done; pair: messages this run */
	uint32_t left;    /* message workloads: requests or sends still to make */
	uint8_t wakes;    /* message workloads: balance.h's wake word */
	uint16_t depth;
	uint8_t kind, state;
	bool joined;       /* fj: children done, the join run is next */
	struct queue mbox; /* message workloads: (from, type, cost) */
};

/* A thief's mark of a victim's backlog (sched.h's struct sched_look). */
struct slook {
	uint32_t tail;
	uint64_t at;
};

struct ssched {
	struct balance bal;
	struct queue q;
	uint32_t node;
	uint32_t busy; /* ticks of cost still to pay */
	uint32_t cur, left;
	bool has_cur, has_next;
	uint32_t next, streak;
	/* Message workloads: the message being handled, how many this run,
	 * the receiver of the run's last cross-scheduler send (the outbox). */
	uint64_t msg;
	uint32_t handled, batch_to, run_sent; /* run_sent: sends this run */
	bool has_batch_to;
	/* Stealing only what waits (sched.c's pwait, ytaken, ymsgs, young,
	 * young_at, looks), in ticks. */
	struct slook *looks;
	uint64_t pwait, ytaken, ymsgs, yown, msgs, young_at, idle_since;
	bool young, seen_young, idle;
	uint64_t sleeps, sleep_ticks;
	/* What the steal bought (bal_bought): runs and exits here, counted then;
	 * and the runtime's rate rule (bal_spread_paid): when the steal was made
	 * (yat, or its last window began), every scheduler's messages by then
	 * (yall) and this one's (yown), the runtime's
	 * rate while this one slept beside young backlog (solo), and the
	 * sleep being measured (slept_at, slept_all; asleep). */
	uint64_t runs, yruns, exits, yexits, yat, yall, solo, slept_at, slept_all, slept_runs;
	bool asleep;
	uint64_t sink_at; /* when a sink last used its whole batch here (0: never) */
	uint64_t stay_at; /* when a hub last stayed here (0: never) */
	uint32_t sink;    /* which process that was */
	/* Compaction (sched.c's yfrom, ystrikes, cgrow, compacting; the run
	 * queue's gift list, which thieves do not see, and its pop count). */
	uint32_t yfrom, pops;
	unsigned strikes, grow;
	bool compacting;
	/* sched.c's window (wat, wall, wown, wstreak): opened at the first
	 * steal since this one last slept, kept across the steals after it. */
	uint64_t wat, wall, wown;
	struct bal_streak wstreak;
	struct queue gift;
};

struct burst {
	uint64_t at, work;
	uint32_t sched, first, tasks; /* its processes: first .. first + tasks */
};

struct sim {
	struct topo *topo;
	struct topo_place *place;
	unsigned n, cores;
	struct ssched *s;
	struct sproc *p;
	size_t np, capp;
	uint32_t *budget; /* pairs: replies still to send */
	uint64_t rng;
	uint64_t total_work, done_work, critical;
	uint64_t queued; /* processes in all queues, to skip hopeless scans */
	struct burst *bursts;
	unsigned nbursts, nextburst;
	enum policy pol;
	uint64_t now; /* ticks, from 1 (a mark's time 0 means none) */
	/* Message workloads: costs in ticks, how many messages the program
	 * handles in all, how many so far, hops left on the ring. */
	bool comm;
	uint32_t local, cross;
	uint64_t msgs_total, msgs_done, hops;
	/* hubmix: requests between the hub's bursts of tasks, and the tasks
	 * not yet done (the program ends with both). */
	uint32_t mix_every;
	uint64_t mix_reqs, mix_left;
	uint64_t wr; /* the workload's own random stream (big's peers) */
	/* Figures. */
	uint64_t steals, remote_steals, migrations, remote_migrations;
	uint64_t msg_bytes, cross_msg_bytes, runs, remote_runs;
	uint64_t sent, cross_sent, moved_runs;
	uint64_t window; /* compaction's window in ticks (0: none) */
	bool no_home;    /* --home-wait 0: no hub's home is marked (bal_marked) */
	uint64_t given, givebacks;
	uint64_t stays;        /* wakes kept where the process was (bal_stays) */
	uint32_t *node_idle;   /* schedulers of each node that found no work */
	uint32_t *node_asleep; /* of those, in a timed sleep */
	uint64_t *sink_at;     /* when a sink last used its whole batch on each node (0: never) */
	FILE *trace;           /* --trace: one line an event (steal, give-back, sleep), or NULL */
};

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (!q) {
		fprintf(stderr, "krill-sim: out of memory\n");
		exit(2);
	}
	return q;
}

/* ---- queues ------------------------------------------------------------- */

static void q_push(struct queue *q, uint64_t v)
{
	if (q->len == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 4;
		uint64_t *b = xrealloc(NULL, cap * sizeof(*b));

		memset(b, 0, cap * sizeof(*b)); /* for the analyzer: only len are read */

		for (size_t i = 0; i < q->len; i++)
			b[i] = q->buf[(q->head + i) % q->cap];
		free(q->buf);
		q->buf = b;
		q->cap = cap;
		q->head = 0;
	}
	q->buf[(q->head + q->len++) % q->cap] = v;
	q->pushed++;
}

static uint64_t q_pop(struct queue *q)
{
	uint64_t v = q->buf[q->head];

	q->head = (q->head + 1) % q->cap;
	q->len--;
	q->popped++;
	return v;
}

/* ---- processes ---------------------------------------------------------- */

static uint32_t proc_new(struct sim *m, enum kind k, uint32_t sched)
{
	struct sproc *p;

	if (m->np == m->capp) {
		m->capp = m->capp ? 2 * m->capp : 1024;
		m->p = xrealloc(m->p, m->capp * sizeof(*m->p));
	}
	p = &m->p[m->np];
	memset(p, 0, sizeof(*p));
	p->kind = (uint8_t)k;
	p->sched = sched;
	p->last = sched; /* the spawner wrote its state */
	p->home = m->s[sched].node;
	p->wakes = BAL_WAKE_NEW;
	p->state = P_IDLE;
	return (uint32_t)m->np++;
}

static void enqueue(struct sim *m, uint32_t sched, uint32_t pid)
{
	m->p[pid].sched = sched;
	m->p[pid].state = P_QUEUED;
	q_push(&m->s[sched].q, pid);
	m->queued++;
}

/* Woken by a message from a process on sched: its next-to-run slot, the
 * one there before going to the queue where thieves can see it. */
static void wake(struct sim *m, uint32_t sched, uint32_t pid)
{
	struct ssched *s = &m->s[sched];

	if (s->has_next)
		enqueue(m, sched, s->next);
	s->next = pid;
	s->has_next = true;
	m->p[pid].sched = sched;
	m->p[pid].state = P_QUEUED;
}

static unsigned dist(const struct sim *m, uint32_t a, uint32_t b)
{
	return kri_topo_distance(m->topo, a, b);
}

/* A message from the process running on sched to pid (already counted in
 * pid's mailbox). The envelope comes from sched's arena. */
static void deliver(struct sim *m, uint32_t sched, uint32_t pid, uint32_t count)
{
	struct sproc *p = &m->p[pid];
	uint32_t from = m->s[sched].node;

	m->msg_bytes += (uint64_t)count * MSG_BYTES;
	if (p->state == P_IDLE) {
		wake(m, sched, pid); /* runs here: the message is local */
		return;
	}
	uint32_t to = m->s[p->sched].node;
	if (to != from) {
		m->cross_msg_bytes += (uint64_t)count * MSG_BYTES;
		m->s[sched].busy += (dist(m, from, to) - 1) / 10;
	}
}

/* ---- communication (the message workloads) ------------------------------ */

/* A cache-line round trip between schedulers a and b: --cross-ns within a
 * node, times d/10 across (rounded up). */
static uint32_t xcost(const struct sim *m, uint32_t a, uint32_t b)
{
	unsigned d = dist(m, m->s[a].node, m->s[b].node);

	return (uint32_t)(((uint64_t)m->cross * d + 9) / 10);
}

static uint64_t msg_make(uint32_t from, enum mtype t, uint32_t cost)
{
	return (uint64_t)from << 32 | (uint64_t)t << 24 | (cost & 0xffffffu);
}

static uint32_t msg_from(uint64_t v)
{
	return (uint32_t)(v >> 32);
}

static enum mtype msg_type(uint64_t v)
{
	return (enum mtype)((v >> 24) & 0xff);
}

static uint32_t msg_cost(uint64_t v)
{
	return (uint32_t)(v & 0xffffffu);
}

/* Where an idle dst woken by src's message from self runs: self's
 * next-to-run slot, unless it is a hub woken by a client (balance.h's
 * bal_stays; the policy "krill" only) and the scheduler it ran on is not
 * in a timed sleep (sched.c's stay() leaves a parked one asleep; in these
 * workloads it never sleeps then: the figures are the same without the
 * test). src's wake word counts the wake. */
static uint32_t wake_at(struct sim *m, uint32_t self, uint32_t src, uint32_t dst)
{
	struct sproc *d = &m->p[dst];
	uint8_t waker = m->p[src].wakes;

	m->p[src].wakes = bal_woke(waker, dst);
	if (m->pol == POL_KRILL && d->sched != self && !m->s[d->sched].asleep &&
	    bal_stays(d->wakes, waker, dst))
		return d->sched;
	return self;
}

/* sched.c's stay(): dst, kept where it was, is handed to that scheduler's
 * gift list, as a give-back is (its lock's line is the sender's to pull);
 * an owner idle but awake takes it at its next look. */
static void stay(struct sim *m, uint32_t self, uint32_t at, uint32_t dst)
{
	struct ssched *v = &m->s[at];

	m->s[self].busy += xcost(m, self, at) / 2;
	q_push(&v->gift, dst);
	m->p[dst].state = P_QUEUED;
	v->stay_at = m->now;
	m->stays++;
}

/* The process running on self sends to dst. An idle receiver is woken
 * here (the waker's next-to-run slot), and the message is local, unless it
 * stays where it was (wake_at). One queued, running or staying elsewhere
 * makes it a round trip, half the sender's, half the receiver's; a run's
 * later sends to the same receiver ride its batch. */
static void msg_send(struct sim *m, uint32_t self, uint32_t src, uint32_t dst, enum mtype t)
{
	struct sproc *d = &m->p[dst];
	struct ssched *s = &m->s[self];
	uint32_t cost = m->local;
	bool idle = d->state == P_IDLE;
	uint32_t at = idle ? wake_at(m, self, src, dst) : d->sched;

	m->sent++;
	s->run_sent++;
	m->msg_bytes += MSG_BYTES;
	if (at != self) {
		m->cross_sent++;
		if (m->s[at].node != s->node)
			m->cross_msg_bytes += MSG_BYTES;
		if (!s->has_batch_to || s->batch_to != dst) {
			uint32_t x = xcost(m, self, at);

			s->busy += x / 2;
			cost = x - x / 2;
			s->batch_to = dst;
			s->has_batch_to = true;
		}
	}
	q_push(&d->mbox, msg_make(src, t, cost));
	if (idle && at == self)
		wake(m, self, dst);
	else if (idle)
		stay(m, self, at, dst);
}

/* A process's own continuation: queued in its mailbox, handled in turn. */
static void msg_self(struct sim *m, uint32_t pid)
{
	q_push(&m->p[pid].mbox, msg_make(pid, M_START, m->local));
}

/* hubmix: every MIX_EVERY requests the hub spawns MIX_TASKS tasks where
 * it runs (as kr_spawn queues them), each one message of 4 x a task's
 * cost (0.1-4 us, 2 on average): a broker that hands out work. */
#define MIX_EVERY 500u
#define MIX_TASKS 64u
static uint32_t task_cost(uint64_t *r);
static void burst(struct sim *m, uint32_t self)
{
	for (uint32_t i = 0; i < MIX_TASKS; i++) {
		uint32_t pid = proc_new(m, K_TASK, self), cost = 4 * task_cost(&m->wr);

		q_push(&m->p[pid].mbox, msg_make(pid, M_START, cost));
		m->total_work += cost;
		enqueue(m, self, pid);
	}
}

/* Work of handling one message beyond its cost: a chameneos or a bank
 * client does a little between requests, a big actor picks a peer. */
static uint32_t msg_work(const struct sproc *p)
{
	return p->kind == K_CLIENT || p->kind == K_BIG ? 1 : 0;
}

/* The effect of a message handled by pid on self. */
static void msg_handle(struct sim *m, uint32_t self, uint32_t pid, uint64_t v)
{
	struct sproc *p = &m->p[pid];
	uint32_t from = msg_from(v);
	enum mtype t = msg_type(v);

	if (t != M_START) {
		m->msgs_done++;
		m->s[self].msgs++;
	}
	switch (p->kind) {
	case K_HUB:
		if (m->mix_every && ++m->mix_reqs % m->mix_every == 0)
			burst(m, self);
		/* fall through */
	case K_PONG:
		msg_send(m, self, pid, from, M_REPLY);
		break;
	case K_CLIENT:
	case K_PING:
		if (p->left) {
			p->left--;
			msg_send(m, self, pid, p->peer, M_REQ);
		}
		break;
	case K_PROD:
		if (p->left) {
			p->left--;
			msg_send(m, self, pid, p->peer, M_REQ);
			if (p->left)
				msg_self(m, pid);
		}
		break;
	case K_RING:
		if (m->hops) {
			m->hops--;
			msg_send(m, self, pid, p->peer, M_REQ);
		}
		break;
	case K_BIG:
		if (t == M_REQ) {
			msg_send(m, self, pid, from, M_REPLY);
		} else if (p->left) {
			uint32_t n = (uint32_t)m->np, peer = (uint32_t)(rnd(&m->wr) % (n - 1));

			p->left--;
			msg_send(m, self, pid, peer >= pid ? peer + 1 : peer, M_REQ);
		}
		break;
	default:
		break;
	}
}

/* ---- workloads ---------------------------------------------------------- */

static uint32_t task_cost(uint64_t *r)
{
	return 1 + (uint32_t)(rnd(r) % 40); /* 1..40, mean 20.5 */
}

/* Tasks worth per units of work on each of the given schedulers. */
static void fill_tasks(struct sim *m, uint64_t *r, unsigned first, unsigned count, uint64_t per)
{
	for (unsigned i = first; i < first + count; i++) {
		for (uint64_t w = 0; w < per;) {
			uint32_t pid = proc_new(m, K_TASK, i);

			m->p[pid].cost = task_cost(r);
			w += m->p[pid].cost;
			m->total_work += m->p[pid].cost;
			enqueue(m, i, pid);
		}
	}
}

#define FJ_COST  8u
#define FJ_JOIN  2u
#define FJ_FAN   2u
#define FJ_DEPTH 16u
#define PAIR_MSG 4u /* work units per message handled */

/* A process of the message workloads, spawned by the program's main
 * process on scheduler 0; with a first run to make (start) it is queued
 * there, else it waits for a message. */
static uint32_t actor(struct sim *m, enum kind k, uint32_t peer, uint32_t left, bool start)
{
	uint32_t pid = proc_new(m, k, 0);

	m->p[pid].peer = peer;
	m->p[pid].left = left;
	if (start) {
		msg_self(m, pid);
		enqueue(m, 0, pid);
	}
	return pid;
}

/* The message workloads: one program whatever the machine (the suite runs
 * the same benchmark at 1 and 2 schedulers), of about w * 250 messages
 * (1,000,000 at the default --work). Shaped like the suite's:
 *   hub       a broker and 100 clients, each request answered (chameneos'
 *             mall, concdict's dictionary, bank's teller)
 *   fanin     1,000 producers sending to one consumer (fanin, count)
 *   pingpong  512 pairs, each a request and a reply at a time
 *   ring      10,000 processes passing one token (ring, threadring)
 *   big       2,048 actors, each pinging random peers and awaiting the
 *             pong (Savina big)
 *   hubmix    hub, whose broker also spawns 64 tasks every 500 requests
 *             where it runs: a hub beside work of its own, which thieves
 *             must take while leaving the hub's clients be (the cost of
 *             bal_marked_wait) */
static bool setup_comm(struct sim *m, const char *w, uint64_t per_core)
{
	uint64_t msgs = per_core * 250;

	m->comm = true;
	if (strcmp(w, "hub") == 0 || strcmp(w, "hubmix") == 0) {
		uint32_t clients = 100, reqs = (uint32_t)(msgs / 2 / clients);
		uint32_t hub = actor(m, K_HUB, 0, 0, false);

		for (uint32_t i = 0; i < clients; i++)
			actor(m, K_CLIENT, hub, reqs, true);
		m->msgs_total = 2ull * clients * reqs;
		m->critical = (uint64_t)clients * reqs * m->local;
		if (strcmp(w, "hubmix") == 0) {
			m->mix_every = MIX_EVERY;
			m->mix_left = (uint64_t)clients * reqs / MIX_EVERY * MIX_TASKS;
		}
	} else if (strcmp(w, "fanin") == 0) {
		uint32_t prods = 1000, each = (uint32_t)(msgs / prods);
		uint32_t cons = actor(m, K_CONS, 0, 0, false);

		for (uint32_t i = 0; i < prods; i++)
			actor(m, K_PROD, cons, each, true);
		m->msgs_total = (uint64_t)prods * each;
		m->critical = m->msgs_total * m->local;
	} else if (strcmp(w, "pingpong") == 0) {
		uint32_t pairs = 512, trips = (uint32_t)(msgs / 2 / pairs);

		for (uint32_t i = 0; i < pairs; i++) {
			uint32_t pong = actor(m, K_PONG, 0, 0, false);

			actor(m, K_PING, pong, trips, true);
		}
		m->msgs_total = 2ull * pairs * trips;
	} else if (strcmp(w, "ring") == 0) {
		uint32_t procs = 10000;

		for (uint32_t i = 0; i < procs; i++)
			actor(m, K_RING, (i + 1) % procs, 0, i == 0);
		m->hops = msgs;
		m->msgs_total = msgs;
		m->critical = msgs * m->local;
	} else if (strcmp(w, "big") == 0) {
		uint32_t actors = 2048, pings = (uint32_t)(msgs / 2 / actors);

		for (uint32_t i = 0; i < actors; i++)
			actor(m, K_BIG, 0, pings, true);
		m->msgs_total = 2ull * actors * pings;
	} else {
		m->comm = false;
		return false;
	}
	m->total_work = m->msgs_total * m->local;
	return true;
}

static void setup(struct sim *m, const char *w, uint64_t seed, uint64_t per_core)
{
	uint64_t r = (seed + 1) * 0x9e3779b97f4a7c15ull | 1;

	if (strcmp(w, "uniform") == 0) {
		/* Spawned everywhere, but not evenly: each scheduler starts
		 * with 50-150% of the mean. */
		for (unsigned i = 0; i < m->n; i++)
			fill_tasks(m, &r, i, 1, per_core / 2 + rnd(&r) % (per_core + 1));
	} else if (strcmp(w, "skewed") == 0) {
		/* All of it spawned on node 0: its cores hold the whole load. */
		fill_tasks(m, &r, 0, m->cores, per_core * m->n / m->cores);
	} else if (strcmp(w, "bursty") == 0) {
		/* 16 bursts, each on one scheduler, over the first half of the
		 * ideal time. Made now, queued when their time comes. */
		uint64_t per_burst = per_core * m->n / 16;

		m->nbursts = 16;
		m->bursts = xrealloc(NULL, m->nbursts * sizeof(*m->bursts));
		for (unsigned k = 0; k < m->nbursts; k++) {
			struct burst *b = &m->bursts[k];

			b->at = k * per_core / 2 / 16;
			b->sched = (uint32_t)(rnd(&r) % m->n);
			b->first = (uint32_t)m->np;
			b->tasks = 0;
			b->work = 0;
			while (b->work < per_burst) {
				uint32_t pid = proc_new(m, K_TASK, b->sched);

				m->p[pid].cost = task_cost(&r);
				b->work += m->p[pid].cost;
				b->tasks++;
			}
			m->total_work += b->work;
		}
	} else if (strcmp(w, "forkjoin") == 0) {
		uint32_t root = proc_new(m, K_FJ, 0);
		uint64_t nodes = 1, inner;

		for (unsigned d = 0; d < FJ_DEPTH; d++)
			nodes = nodes * FJ_FAN + 1;
		inner = (nodes - 1) / FJ_FAN;
		m->p[root].cost = FJ_COST;
		m->p[root].parent = UINT32_MAX;
		m->total_work = nodes * FJ_COST + inner * FJ_JOIN;
		m->critical = (FJ_DEPTH + 1) * FJ_COST + FJ_DEPTH * FJ_JOIN;
		enqueue(m, 0, root);
	} else if (strcmp(w, "pairs") == 0) {
		/* Pairs whose ends start on opposite nodes, four messages in
		 * flight each: enough that both ends are often queued. */
		unsigned pairs = m->n * 8;
		uint32_t tokens = 4, msgs = (uint32_t)(per_core * m->n / pairs / PAIR_MSG);

		m->budget = xrealloc(NULL, pairs * sizeof(*m->budget));
		for (unsigned k = 0; k < pairs; k++) {
			uint32_t sa = k % m->n;
			uint32_t sb = (sa + m->n / 2) % m->n;
			uint32_t a = proc_new(m, K_PAIR, sa), b = proc_new(m, K_PAIR, sb);

			m->p[a].peer = b;
			m->p[b].peer = a;
			m->p[a].pair = m->p[b].pair = k;
			m->p[a].mail = tokens;
			/* Conversations of 50-150% of the mean length, so that
			 * some schedulers run dry and steal. */
			m->budget[k] = msgs / 2 + (uint32_t)(rnd(&r) % (msgs + 1));
			m->budget[k] = m->budget[k] > tokens ? m->budget[k] - tokens : 0;
			m->total_work += (uint64_t)(m->budget[k] + tokens) * PAIR_MSG;
			enqueue(m, sa, a);
		}
	} else if (!setup_comm(m, w, per_core)) {
		fprintf(stderr, "krill-sim: unknown workload '%s'\n", w);
		exit(2);
	}
}

static void inject_bursts(struct sim *m, uint64_t now)
{
	while (m->nextburst < m->nbursts && m->bursts[m->nextburst].at <= now) {
		struct burst *b = &m->bursts[m->nextburst++];

		for (uint32_t i = 0; i < b->tasks; i++)
			enqueue(m, b->sched, b->first + i);
	}
}

/* A lower bound on the makespan of bursty arrivals: after burst k arrives,
 * the rest of the work needs at least its share of every core. */
static uint64_t burst_bound(const struct sim *m)
{
	uint64_t best = 0, rest = 0;

	for (unsigned k = m->nbursts; k-- > 0;) {
		uint64_t b;

		rest += m->bursts[k].work;
		b = m->bursts[k].at + (rest + m->n - 1) / m->n;
		best = b > best ? b : best;
	}
	return best;
}

/* ---- the schedulers ----------------------------------------------------- */

/* The shortest wait and a spin, in ticks. */
#define WAIT_LO       (BAL_WAIT_NS / TICK_NS)
#define SPIN_TICKS    (SPIN_NS / TICK_NS)
#define MOVE_TICKS    (BAL_MOVE_NS / TICK_NS)
#define MEASURE_TICKS (BAL_MEASURE_NS / TICK_NS)
#define SINK_TICKS    (BAL_SINK_NS / TICK_NS)

/* Runs ended by every scheduler so far (sched.c's all_runs). */
static uint64_t all_runs(const struct sim *m)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < m->n; i++)
		n += m->s[i].runs;
	return n;
}

/* Messages handled by every scheduler so far (sched.c's all_msgs). */
static uint64_t all_msgs(const struct sim *m)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < m->n; i++)
		n += m->s[i].msgs;
	return n;
}

struct look_ctx {
	struct sim *m;
	uint32_t self;
	unsigned looked;
};

/* Was a sink seen at this time (0: never) within BAL_SINK_NS? */
static bool recent(const struct sim *m, uint64_t at)
{
	return at && m->now - at < SINK_TICKS;
}

/* How long v's backlog must have waited before self takes it: its wait,
 * longer across nodes while v's node has a scheduler awake without work
 * (bal_far_wait). */
static uint64_t far_wait(const struct sim *m, uint32_t self, uint32_t v)
{
	const struct ssched *s = &m->s[self];
	uint32_t vn = m->s[v].node;

	if (vn == s->node)
		return s->pwait;
	return bal_far_wait(s->pwait, MOVE_TICKS, dist(m, s->node, vn),
			    m->node_idle[vn] > m->node_asleep[vn]);
}

/* The backlog of v that the thief may take (sched.c's queue_len): all of
 * it if it has waited, else none yet, and the thief saw young backlog. */
static uint64_t qlen(void *ctx, unsigned v)
{
	struct look_ctx *c = ctx;
	struct sim *m = c->m;
	struct ssched *s = &m->s[c->self];
	const struct queue *q = &m->s[v].q;
	struct slook *l = &s->looks[v];

	c->looked++;
	if (!q->len)
		return 0;
	if (m->pol != POL_KRILL)
		return q->len;
	/* issue #19 (h19s): a sink's own continuation is not backlog. */
	if (!bal_backlog(q->len, recent(m, m->s[v].sink_at) && q->buf[q->head] == m->s[v].sink))
		return 0;
	/* A hub's home, and a sink's node seen from another, wait the longest. */
	uint32_t vn = m->s[v].node;
	bool marked = bal_marked(!m->no_home && recent(m, m->s[v].stay_at), vn != s->node,
				 recent(m, m->sink_at[vn]));
	uint64_t wait = bal_marked_wait(s->pwait ? far_wait(m, c->self, v) : 0,
					bal_mark_longest(m->n, WAIT_LO), marked);
	if (!wait)
		return q->len;
	if (bal_mark_spent(q->popped, l->tail, 0, 0, l->at)) {
		l->tail = q->pushed;
		l->at = m->now;
	} else if (m->now - l->at >= wait) {
		return q->len;
	}
	s->young = true;
	s->seen_young = true;
	s->young_at = m->now;
	return bal_young(q->len, s->pwait, WAIT_LO); /* wait for it, rather than look further */
}

/* The balance policy chooses; the queue mechanics follow runq_steal. On
 * failure *cost is what the scan cost, in ticks. */
static bool steal(struct sim *m, uint32_t self, uint32_t *out, uint32_t *cost)
{
	struct ssched *s = &m->s[self];
	const struct balance *b = &s->bal;
	struct look_ctx c = {.m = m, .self = self};
	unsigned start = (unsigned)rnd(&m->rng);
	uint32_t take, v, d = 10;
	struct queue *vq;
	int j;

	/* sched.c's judge(): did the last steal pay? By what it bought
	 * (the same move cost as the runtime's, in ticks) and, as the
	 * runtime, by its rate rule (spread_paid). */
	if (m->pol == POL_KRILL && s->ytaken) {
		struct bal_bought bb = {
		    .taken = s->ytaken,
		    .runs = s->runs - s->yruns,
		    .msgs = s->msgs - s->ymsgs,
		    .exited = s->exits - s->yexits,
		    .ran = m->now - s->yat,
		    .move = MOVE_TICKS,
		};
		bool spread = bal_spread_paid(all_msgs(m) - s->yall, s->msgs - s->yown,
					      m->now - s->yat, s->solo, MEASURE_TICKS);

		s->pwait = bal_judge(s->pwait, WAIT_LO, spread && bal_paid(&bb));
		if (m->trace)
			fprintf(m->trace,
				"%" PRIu64 " judge %u node %u paid %d spread %d wait %" PRIu64
				" taken %" PRIu64 " runs %" PRIu64 " msgs %" PRIu64 "\n",
				m->now, self, s->node, bal_paid(&bb), spread, s->pwait, bb.taken,
				bb.runs, bb.msgs);
		s->ytaken = 0;
	}
	s->young = false;
	*cost = 1;
	if (m->queued == 0)
		return false;
	j = kri_bal_choose(b, start, qlen, &c);
	if (j < 0) {
		if (m->comm)
			*cost = (c.looked + SCAN_LOOKS - 1) / SCAN_LOOKS;
		return false;
	}
	v = b->order[j];
	vq = &m->s[v].q;
	take = bal_steal_count((uint32_t)vq->len);
	unsigned many = 0; /* the hub or the consumer among those taken (--trace) */
	for (uint32_t i = 0; i < take; i++) {
		uint32_t pid = (uint32_t)q_pop(vq);

		m->queued--;
		many += m->p[pid].kind == K_HUB || m->p[pid].kind == K_CONS;
		if (i + 1 < take) {
			enqueue(m, self, pid);
		} else {
			m->p[pid].sched = self; /* the newest taken runs now */
			*out = pid;
		}
	}
	m->steals++;
	m->migrations += take;
	s->ytaken = take;
	s->yfrom = v;
	s->compacting = false;
	s->ymsgs = s->msgs;
	s->yown = s->msgs;
	s->yexits = s->exits;
	s->yruns = s->runs;
	s->yat = m->now;
	s->yall = all_msgs(m);
	if (bal_streak_add(&s->wstreak, v)) { /* sched.c's window, kept across a streak */
		s->strikes = 0;
		s->wat = s->yat;
		s->wall = s->yall;
		s->wown = s->yown;
	}
	if (b->level[j] == TOPO_REMOTE) {
		d = dist(m, s->node, m->s[v].node);
		m->remote_steals++;
		m->remote_migrations += take;
	}
	*cost = m->comm ? xcost(m, self, v) : (d + 9) / 10;
	if (m->trace)
		fprintf(m->trace,
			"%" PRIu64 " steal thief %u node %u from %u node %u took %u left %zu"
			" wait %" PRIu64 " many %u\n",
			m->now, self, s->node, v, m->s[v].node, take, vq->len, s->pwait, many);
	return true;
}

/* Nothing found: the scan's cost, then (policy krill) sched.c's idle() and
 * park(): a thief that saw backlog too young sleeps its wait if that is
 * longer than a spin, or after a spin if it saw some lately; owners do not
 * wake it. Else it goes on looking: a wake-up costs nothing here, so the
 * runtime's timed sleep after futile wake-ups (balance.h's bal_futile)
 * has no counterpart, nor its solo sample over an untimed sleep (park
 * samples any sleep while the others ended BAL_SOLO_RUNS runs; here only
 * timed sleeps are sleeps). Sampling the idle time before a steal in its
 * place cost hubmix 3-10 % at 2 cores and broke test_sim.sh's home-wait
 * checks (seeds 1-3). */
static void idle_tick(struct sim *m, uint32_t self, uint32_t cost)
{
	struct ssched *s = &m->s[self];
	bool lately;

	if (!s->idle) {
		s->idle = true;
		m->node_idle[s->node]++;
		s->idle_since = m->now;
	}
	s->busy = cost - 1;
	if (m->pol != POL_KRILL || (!s->pwait && !s->compacting))
		return;
	lately = s->seen_young && m->now - s->young_at < BAL_YOUNG_MEMORY * s->pwait;
	if (s->compacting || (s->young && s->pwait > SPIN_TICKS) ||
	    (!s->young && lately && m->now - s->idle_since >= SPIN_TICKS)) {
		/* Sleep as park does (bal_sleep): its wait, and at least
		 * the longest after it gave its work back. */
		uint64_t tw = bal_sleep(s->compacting, true, 0, s->pwait, WAIT_LO,
					(uint64_t)BAL_WAIT_GROW * WAIT_LO);
		if (m->trace)
			fprintf(m->trace, "%" PRIu64 " sleep %u node %u for %" PRIu64 "%s\n",
				m->now, self, s->node, tw, s->compacting ? " compacting" : "");
		s->compacting = false;
		s->busy += (uint32_t)tw;
		s->sleeps++;
		s->wstreak.steals = 0;
		s->sleep_ticks += tw;
		s->idle_since = m->now + s->busy + 1;
		if (!s->asleep)
			m->node_asleep[s->node]++;
		s->asleep = true; /* a timed sleep: measure the others' rate */
		s->slept_at = m->now;
		s->slept_all = all_msgs(m);
		s->slept_runs = all_runs(m);
	}
}

/* sched.c's window_restart: the next window starts now, and the steal
 * being judged with it only if it is as old as the window. */
static void window_restart(struct sim *m, struct ssched *s)
{
	if (s->yat <= s->wat) {
		s->yat = m->now;
		s->yall = all_msgs(m);
		s->yown = s->msgs;
	}
	s->wat = m->now;
	s->wall = all_msgs(m);
	s->wown = s->msgs;
}

/* sched.c's compact(): hand the thief's runnable processes (its
 * next-to-run first, then its queue, at most GIVE_MAX) to the gift list of
 * the scheduler it stole from, unless that one is idle (parked: the thief
 * keeps the work and judges the next window; if that one does not pay
 * either, bal_give_parked, it gives and ends the victim's sleep, as the
 * runtime wakes it), and sleep (idle_tick). A
 * judged give-back sets the wait (bal_giveback_wait); every backlog must
 * wait afresh. */
static void compact(struct sim *m, uint32_t self, bool judged)
{
	struct ssched *s = &m->s[self], *v = &m->s[s->yfrom];
	uint32_t n = 0;

	if ((s->has_next || s->q.len) && v->idle && !bal_give_parked(s->strikes)) {
		window_restart(m, s);
		return;
	}
	if (s->has_next) {
		q_push(&v->gift, s->next);
		m->p[s->next].sched = s->yfrom;
		s->has_next = false;
		n++;
	}
	for (; n < GIVE_MAX && s->q.len; n++) {
		uint32_t pid = (uint32_t)q_pop(&s->q);

		m->queued--;
		q_push(&v->gift, pid);
		m->p[pid].sched = s->yfrom;
	}
	if (v->idle)
		v->busy = 0; /* parked: woken to take the gift */
	m->given += n;
	m->givebacks++;
	if (m->trace)
		fprintf(m->trace,
			"%" PRIu64
			" giveback %u node %u to %u node %u gave %u judged %d solo %" PRIu64 "\n",
			m->now, self, s->node, s->yfrom, v->node, n, judged, s->solo);
	s->ytaken = 0;
	s->strikes = 0;
	s->wstreak.steals = 0;
	s->compacting = true;
	for (unsigned i = 0; i < m->n; i++)
		s->looks[i].at = 0;
	if (judged)
		s->pwait = bal_giveback_wait(&s->grow, WAIT_LO);
}

/* sched.c's busy_judge(): a thief still busy with its steal judges it
 * every window (balance.h's bal_window). Called between runs. */
static void busy_judge(struct sim *m, uint32_t self)
{
	struct ssched *s = &m->s[self];
	uint64_t all = all_msgs(m);
	struct bal_bought bb = {
	    .taken = s->ytaken, .runs = s->runs - s->yruns, .exited = s->exits - s->yexits};

	bool give = (s->solo || bal_blind(&s->wstreak)) &&
		    bal_window(all - s->wall, s->msgs - s->wown, m->now - s->wat, s->solo,
			       bal_tasks(&bb), &s->strikes, &s->grow);

	if (m->trace)
		fprintf(m->trace,
			"%" PRIu64 " window %u node %u rate %" PRIu64 " solo %" PRIu64
			" strikes %u give %d\n",
			m->now, self, s->node, bal_rate(all - s->wall, m->now - s->wat), s->solo,
			s->strikes, give);
	if (!give) {
		window_restart(m, s);
		return;
	}
	compact(m, self, s->solo != 0);
}

/* The owner's pop of its run queue (runq_pop): its own queue, then gifts,
 * which an empty queue refills from (RING_CAP at a time, stealable once
 * there); every GIFT_EVERY-th pop the oldest gift first. */
static bool own_pop(struct sim *m, struct ssched *s, uint32_t *pid)
{
	if (!s->q.len && !s->gift.len)
		return false;
	if (++s->pops % GIFT_EVERY == 0 && s->gift.len) {
		*pid = (uint32_t)q_pop(&s->gift);
		return true;
	}
	for (uint32_t i = 0; !s->q.len && i < RING_CAP && s->gift.len; i++) {
		q_push(&s->q, q_pop(&s->gift));
		m->queued++;
	}
	*pid = (uint32_t)q_pop(&s->q);
	m->queued--;
	return true;
}

static void finish(struct sim *m, uint32_t self, uint32_t pid);

static void notify_parent(struct sim *m, uint32_t self, uint32_t pid)
{
	uint32_t parent = m->p[pid].parent;

	if (parent == UINT32_MAX)
		return;
	if (--m->p[parent].pending == 0) {
		m->p[parent].joined = true;
		wake(m, self, parent); /* the last child's result wakes it */
	}
}

static void finish(struct sim *m, uint32_t self, uint32_t pid)
{
	struct sproc *p = &m->p[pid];

	switch (p->kind) {
	case K_TASK:
		p->state = P_DONE;
		m->s[self].exits++;
		if (m->comm)
			m->mix_left--;
		break;
	case K_FJ:
		if (p->joined || p->depth == FJ_DEPTH) {
			p->state = P_DONE;
			m->s[self].exits++;
			notify_parent(m, self, pid);
			break;
		}
		p->state = P_WAITING;
		p->pending = FJ_FAN;
		for (unsigned c = 0; c < FJ_FAN; c++) {
			uint32_t kid = proc_new(m, K_FJ, self);

			p = &m->p[pid]; /* proc_new may move the array */
			m->p[kid].cost = FJ_COST;
			m->p[kid].depth = (uint16_t)(p->depth + 1);
			m->p[kid].parent = pid;
			enqueue(m, self, kid);
		}
		break;
	default: { /* the message workloads */
		struct ssched *s = &m->s[self];

		msg_handle(m, self, pid, s->msg);
		p = &m->p[pid];
		s->handled++;
		if (p->mbox.len && s->handled < RUN_BATCH) {
			s->msg = q_pop(&p->mbox);
			s->left = msg_cost(s->msg) + msg_work(p);
			s->cur = pid;
			s->has_cur = true;
		} else if (p->mbox.len) {
			enqueue(m, self, pid); /* its batch is over */
			if (bal_sink(s->handled, s->run_sent)) {
				m->sink_at[s->node] = s->sink_at = m->now;
				s->sink = pid;
			}
		} else {
			p->state = P_IDLE;
		}
		break;
	}
	case K_PAIR: {
		uint32_t handled = p->pending; /* counted when the run began */
		uint32_t *budget = &m->budget[p->pair];
		uint32_t replies = handled < *budget ? handled : *budget;

		p->mail -= handled;
		p->state = P_IDLE;
		if (p->mail)
			enqueue(m, self, pid);
		if (replies) {
			*budget -= replies;
			m->p[p->peer].mail += replies;
			deliver(m, self, p->peer, replies);
		}
		break;
	}
	}
}

static uint32_t run_cost(const struct sproc *p)
{
	switch (p->kind) {
	case K_FJ:
		return p->joined ? FJ_JOIN : p->cost;
	case K_PAIR:
		return p->pending * PAIR_MSG;
	default:
		return p->cost;
	}
}

static void tick(struct sim *m, uint32_t self)
{
	struct ssched *s = &m->s[self];
	uint32_t pid = 0;

	if (s->busy) {
		s->busy--;
		return;
	}
	/* Back from a timed sleep: the runtime's rate without us, as park()
	 * measures it (a moving average, a quarter each sample). */
	if (s->asleep) {
		m->node_asleep[s->node]--;
		s->asleep = false;
		s->compacting = false;
		if (m->now - s->slept_at >= MEASURE_TICKS &&
		    bal_solo_counts(all_runs(m) - s->slept_runs)) {
			uint64_t r = bal_rate(all_msgs(m) - s->slept_all, m->now - s->slept_at);

			s->solo = s->solo ? (3 * s->solo + r) / 4 : r;
		}
	}
	/* A thief still busy with its steal: a window over? (sched.c's
	 * loop asks every 64 runs; here between runs.) */
	if (!s->has_cur && s->ytaken && m->window && m->pol == POL_KRILL &&
	    m->now - s->wat >= m->window)
		busy_judge(m, self);
	if (!s->has_cur) {
		uint32_t cost = 0; /* ticks before its first unit, this one included */

		/* sched.c's next_local: the next-to-run slot, but not forever. */
		if (s->has_next && s->streak < RUN_BATCH) {
			pid = s->next;
			s->has_next = false;
			s->streak++;
		} else if (own_pop(m, s, &pid)) {
			s->streak = 0;
		} else if (s->has_next) {
			pid = s->next;
			s->has_next = false;
			s->streak = 0;
		} else if (m->n > 1 && bal_may_steal(s->compacting) &&
			   steal(m, self, &pid, &cost)) {
		} else {
			idle_tick(m, self, cost ? cost : 1);
			return;
		}
		if (s->idle)
			m->node_idle[s->node]--;
		s->idle = false;
		struct sproc *p = &m->p[pid];

		p->state = P_RUNNING;
		p->sched = self;
		s->cur = pid;
		s->has_cur = true;
		m->runs++;
		s->runs++;
		if (m->comm) {
			/* Its state comes over from where it last ran: one
			 * way, its few lines fetched together. */
			if (p->last != self) {
				cost += xcost(m, p->last, self) / 2;
				m->moved_runs++;
				if (m->trace && (p->kind == K_HUB || p->kind == K_CONS))
					fprintf(m->trace,
						"%" PRIu64 " %s %u node %u from %u node %u\n",
						m->now, p->kind == K_HUB ? "hub" : "consumer", self,
						s->node, p->last, m->s[p->last].node);
			}
			p->last = self;
			s->handled = 0;
			s->run_sent = 0;
			s->has_batch_to = false;
			s->msg = q_pop(&p->mbox);
			s->left = msg_cost(s->msg) + msg_work(p);
		} else {
			if (p->kind == K_PAIR) { /* what it handles now; later mail waits */
				p->pending = p->mail < PAIR_BATCH ? p->mail : PAIR_BATCH;
				s->msgs += p->pending;
			} else {
				s->msgs++; /* a run of a task is one message */
			}
			s->left = run_cost(p);
			/* Its slot and message come over from where it was
			 * queued, as a message process's state does: the
			 * runtime's thieves ran fjcreate's one-sine workers
			 * at 200-300 ns against about 100 at home. */
			if (p->last != self) {
				cost += xcost(m, p->last, self) / 2;
				p->last = self;
			}
			if (p->home != s->node) {
				m->remote_runs++;
				cost++;
			}
			if (s->left == 0) { /* nothing to handle after all */
				s->has_cur = false;
				finish(m, self, pid);
			}
		}
		if (cost) {
			s->busy += cost - 1;
			return;
		}
		if (!s->has_cur)
			return;
	}
	m->done_work++;
	if (--s->left == 0) {
		s->has_cur = false;
		finish(m, self, s->cur);
	}
}

/* ---- topology ----------------------------------------------------------- */

/* 10 locally, 16 to a neighbour on the ring of nodes, 22 two hops away,
 * 28 farther: a glueless 8-socket box, roughly. */
static unsigned ring_distance(unsigned a, unsigned b, unsigned n)
{
	unsigned h = a > b ? a - b : b - a;

	h = h < n - h ? h : n - h;
	return h == 0 ? 10 : h == 1 ? 16 : h == 2 ? 22 : 28;
}

/* hwloc's synthetic strings carry no distances: build the machine, add the
 * matrix, and load it back through XML as a real box would come. */
static int make_topology(unsigned nodes, unsigned cores, struct topo **out)
{
	char desc[96], path[] = "/tmp/krill-sim-XXXXXX.xml";
	hwloc_topology_t h;
	hwloc_obj_t objs[8];
	hwloc_uint64_t values[64];
	hwloc_distances_add_handle_t dh;
	int fd, err = -EINVAL;

	snprintf(desc, sizeof(desc), "pack:%u numa:1 l3:1 core:%u pu:1", nodes, cores);
	fd = mkstemps(path, 4);
	if (fd < 0)
		return -errno;
	close(fd);
	if (hwloc_topology_init(&h) < 0)
		return -ENOMEM;
	if (hwloc_topology_set_synthetic(h, desc) < 0 || hwloc_topology_load(h) < 0)
		goto out;
	for (unsigned i = 0; i < nodes; i++) {
		objs[i] = hwloc_get_obj_by_type(h, HWLOC_OBJ_NUMANODE, i);
		for (unsigned j = 0; j < nodes; j++)
			values[i * nodes + j] = ring_distance(i, j, nodes);
	}
	if (nodes == 1) /* nothing to measure between */
		goto save;
	dh = hwloc_distances_add_create(
	    h, "krill-sim latency",
	    HWLOC_DISTANCES_KIND_FROM_USER | HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0);
	if (!dh || hwloc_distances_add_values(h, dh, nodes, objs, values, 0) < 0 ||
	    hwloc_distances_add_commit(h, dh, 0) < 0)
		goto out;
save:
	if (hwloc_topology_export_xml(h, path, 0) < 0)
		goto out;
	err = kri_topo_load(path, out);
out:
	hwloc_topology_destroy(h);
	unlink(path);
	return err;
}

/* ---- a run -------------------------------------------------------------- */

static const char *const policies[] = {"krill", "eager", "random"};

/* What a message costs, in ns (--local-ns, --cross-ns), compaction's
 * window (--window-ns; 0: no give-back) and whether a hub's home waits
 * (--home-wait). */
struct costs {
	uint64_t local_ns, cross_ns, window_ns, home_wait;
	bool trace; /* --trace: events on stderr */
};

struct result {
	const char *workload, *policy;
	unsigned nodes, cores;
	uint64_t makespan, ideal, total_work, critical;
	double ratio, remote_frac, cross_frac, remote_runs_frac;
	uint64_t steals, remote_steals, migrations, remote_migrations;
	/* Message workloads. */
	uint64_t msgs, moved_runs, sleeps, given, givebacks, stays;
	double rate, cross_sched_frac, sleep_frac;
};

/* Messages handled a second (millions), from a count and ticks. */
static double rate_mps(uint64_t msgs, uint64_t ticks)
{
	return ticks ? (double)msgs * 1000.0 / ((double)ticks * TICK_NS) : 0;
}

static int simulate(struct topo *t, unsigned nodes, unsigned cores, const char *w, enum policy pol,
		    uint64_t seed, uint64_t per_core, const struct costs *c, struct result *res)
{
	struct sim m = {.topo = t, .cores = cores, .pol = pol, .now = 1};
	uint64_t ideal, sleeps = 0, sleep_ticks = 0;
	int err = 0;

	m.n = nodes * cores;
	m.local = (uint32_t)((c->local_ns + TICK_NS / 2) / TICK_NS);
	m.local = m.local ? m.local : 1;
	m.cross = (uint32_t)((c->cross_ns + TICK_NS / 2) / TICK_NS);
	m.window = c->window_ns / TICK_NS;
	m.no_home = !c->home_wait;
	m.trace = c->trace ? stderr : NULL;
	m.place = xrealloc(NULL, m.n * sizeof(*m.place));
	m.s = xrealloc(NULL, m.n * sizeof(*m.s));
	m.node_idle = xrealloc(NULL, nodes * sizeof(*m.node_idle));
	memset(m.node_idle, 0, nodes * sizeof(*m.node_idle));
	m.node_asleep = xrealloc(NULL, nodes * sizeof(*m.node_asleep));
	memset(m.node_asleep, 0, nodes * sizeof(*m.node_asleep));
	m.sink_at = xrealloc(NULL, nodes * sizeof(*m.sink_at));
	memset(m.sink_at, 0, nodes * sizeof(*m.sink_at));
	memset(m.s, 0, m.n * sizeof(*m.s));
	for (unsigned i = 0; i < m.n; i++) {
		m.s[i].looks = xrealloc(NULL, m.n * sizeof(*m.s[i].looks));
		memset(m.s[i].looks, 0, m.n * sizeof(*m.s[i].looks));
		m.s[i].pwait = pol == POL_KRILL ? WAIT_LO : 0; /* sched_init's */
		m.s[i].grow = 1;
	}
	err = kri_topo_layout(t, m.n, false, m.place);
	for (unsigned i = 0; err == 0 && i < m.n; i++) {
		m.s[i].node = m.place[i].numa;
		err = kri_bal_init(&m.s[i].bal, t, m.place, m.n, i, pol != POL_RANDOM);
	}
	if (err < 0) {
		/* m.s was zeroed, so bal_fini is safe where bal_init did not run */
		for (unsigned i = 0; i < m.n; i++) {
			kri_bal_fini(&m.s[i].bal);
			free(m.s[i].looks);
		}
		free(m.s);
		free(m.node_idle);
		free(m.node_asleep);
		free(m.sink_at);
		free(m.place);
		return err;
	}
	/* One seed, one workload: every policy gets the same processes and
	 * costs, then the schedulers' choices draw from a stream of their own. */
	setup(&m, w, seed, per_core);
	m.rng = (seed ^ 0x2545f4914f6cdd1dull) * 0x9e3779b97f4a7c15ull | 1;
	m.wr = (seed + 7) * 0xbf58476d1ce4e5b9ull | 1;
	for (;;) {
		uint64_t now = m.now - 1;

		if (m.nextburst < m.nbursts)
			inject_bursts(&m, now);
		if (m.comm ? m.msgs_done == m.msgs_total && !m.mix_left
			   : m.nextburst == m.nbursts && m.done_work == m.total_work)
			break;
		if (now > 100 * (m.total_work + 1000) + 100 * WAIT_LO) { /* a model bug */
			fprintf(stderr, "krill-sim: %s does not finish\n", w);
			exit(2);
		}
		unsigned off = (unsigned)(rnd(&m.rng) % m.n);
		for (unsigned k = 0; k < m.n; k++)
			tick(&m, (off + k) % m.n);
		m.now++;
	}
	m.now--;
	ideal = m.nbursts ? burst_bound(&m) : (m.total_work + m.n - 1) / m.n;
	if (m.critical > ideal)
		ideal = m.critical;
	for (unsigned i = 0; i < m.n; i++) {
		sleeps += m.s[i].sleeps;
		sleep_ticks += m.s[i].sleep_ticks;
	}
	*res = (struct result){
	    .workload = w,
	    .policy = policies[pol],
	    .nodes = nodes,
	    .cores = m.n,
	    .makespan = m.now,
	    .ideal = ideal,
	    .total_work = m.total_work,
	    .critical = m.critical,
	    .ratio = (double)m.now / (double)ideal,
	    .remote_frac = m.steals ? (double)m.remote_steals / (double)m.steals : 0,
	    .cross_frac = m.msg_bytes ? (double)m.cross_msg_bytes / (double)m.msg_bytes : 0,
	    .remote_runs_frac = m.runs ? (double)m.remote_runs / (double)m.runs : 0,
	    .steals = m.steals,
	    .remote_steals = m.remote_steals,
	    .migrations = m.migrations,
	    .remote_migrations = m.remote_migrations,
	    .msgs = m.comm ? m.msgs_total : 0,
	    .moved_runs = m.moved_runs,
	    .sleeps = sleeps,
	    .given = m.given,
	    .givebacks = m.givebacks,
	    .stays = m.stays,
	    .rate = m.comm ? rate_mps(m.msgs_total, m.now) : 0,
	    .cross_sched_frac = m.sent ? (double)m.cross_sent / (double)m.sent : 0,
	    .sleep_frac = (double)sleep_ticks / ((double)m.now * m.n),
	};
	for (unsigned i = 0; i < m.n; i++) {
		kri_bal_fini(&m.s[i].bal);
		free(m.s[i].q.buf);
		free(m.s[i].gift.buf);
		free(m.s[i].looks);
	}
	for (size_t i = 0; i < m.np; i++)
		free(m.p[i].mbox.buf);
	free(m.s);
	free(m.node_idle);
	free(m.node_asleep);
	free(m.sink_at);
	free(m.place);
	free(m.p);
	free(m.budget);
	free(m.bursts);
	return 0;
}

/* ---- output ------------------------------------------------------------- */

static void print_json(const struct result *r, uint64_t seed)
{
	printf("{\"workload\":\"%s\",\"policy\":\"%s\",\"nodes\":%u,\"cores\":%u,"
	       "\"seed\":%" PRIu64 ",\"makespan\":%" PRIu64 ",\"ideal\":%" PRIu64
	       ",\"makespan_over_ideal\":%.4f,\"total_work\":%" PRIu64 ",\"critical_path\":%" PRIu64
	       ",\"steals\":%" PRIu64 ",\"remote_steals\":%" PRIu64 ",\"remote_steal_frac\":%.4f"
	       ",\"cross_node_msg_bytes_frac\":%.4f,\"migrations\":%" PRIu64
	       ",\"remote_migrations\":%" PRIu64 ",\"remote_runs_frac\":%.4f",
	       r->workload, r->policy, r->nodes, r->cores, seed, r->makespan, r->ideal, r->ratio,
	       r->total_work, r->critical, r->steals, r->remote_steals, r->remote_frac,
	       r->cross_frac, r->migrations, r->remote_migrations, r->remote_runs_frac);
	if (r->msgs)
		printf(",\"msgs\":%" PRIu64 ",\"rate_mmsg_s\":%.3f,\"cross_sched_msg_frac\":%.4f"
		       ",\"moved_runs\":%" PRIu64 ",\"timed_sleeps\":%" PRIu64
		       ",\"timed_sleep_frac\":%.4f,\"givebacks\":%" PRIu64 ",\"given\":%" PRIu64
		       ",\"stays\":%" PRIu64,
		       r->msgs, r->rate, r->cross_sched_frac, r->moved_runs, r->sleeps,
		       r->sleep_frac, r->givebacks, r->given, r->stays);
	printf("}\n");
}

static void print_row(const struct result *r)
{
	printf("| %s | %s | %ux%u | %" PRIu64 " | %" PRIu64 " | %.3f | %" PRIu64
	       " | %.1f%% | %.1f%% | %" PRIu64 " | %.1f%% |\n",
	       r->workload, r->policy, r->nodes, r->cores / r->nodes, r->makespan, r->ideal,
	       r->ratio, r->steals, 100 * r->remote_frac, 100 * r->cross_frac, r->migrations,
	       100 * r->remote_runs_frac);
}

static const char *const workloads[] = {"uniform", "skewed",   "bursty", "forkjoin", "pairs", "hub",
					"fanin",   "pingpong", "ring",   "big",      "hubmix"};
#define FIRST_COMM 5u /* the message workloads: hub .. hubmix */

/* --scaling: the machines a program is shown on (1, 2, 32 cores of one
 * node; 8 nodes of 32). */
static const unsigned shapes[][2] = {{1, 1}, {1, 2}, {1, 32}, {8, 32}};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

/* Issue #19's target: rate at 256 >= rate at 32 >= rate at 1 (rates in
 * shapes' order). The 2-core rate is shown, not judged: the suite's 0.95
 * is a measurement's, the simulator's runs have no noise to allow for. */
static bool never_backwards(const double *rate)
{
	return rate[3] >= rate[2] && rate[2] >= rate[0];
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: krill-sim [--workload NAME|all|comm] [--policy krill|eager|random|all]\n"
		"                 [--nodes N] [--cores C] [--work W] [--seed S] [--table]\n"
		"                 [--local-ns L] [--cross-ns X] [--window-ns N] [--scaling]\n"
		"                 [--home-wait 0|1] [--trace]\n"
		"Simulates krill's load balancing (core/sched/balance.c) on N NUMA nodes (1..8,\n"
		"default 8) of C cores (1..32, default 32) in virtual time; prints one JSON\n"
		"line per workload x policy, or a Markdown table with --table.\n"
		"  workloads: uniform skewed bursty forkjoin pairs (tasks, sized per core),\n"
		"             hub fanin pingpong ring big hubmix (messages: one program of\n"
		"             W*250 messages whatever the machine; 'comm' selects these)\n"
		"  policies:  krill (the runtime's: steal only backlog that has waited),\n"
		"             eager (the policy before: any queued backlog), random (flat)\n"
		"  --work W   mean units of work per core (default 4000); forkjoin is a\n"
		"             fixed binary tree of depth 16 whatever W\n"
		"  --local-ns a message handled on its sender's scheduler (default 25)\n"
		"  --cross-ns a cache-line round trip to another scheduler of the node\n"
		"             (default 450; across nodes times the hwloc distance / 10)\n"
		"  --window-ns a busy thief judges its steal every N ns and may give its\n"
		"             processes back (compaction; default 2000000; 0: never)\n"
		"  --home-wait 0: thieves give a hub's scheduler no longer wait than\n"
		"             another's (balance.h's bal_marked; default 1)\n"
		"  --scaling  each workload on 1, 2, 32 (1 node) and 256 (8 x 32) cores, then\n"
		"             a line saying whether rate(256) >= rate(32) >= rate(1)\n"
		"  --trace    one line an event on stderr, in ticks of 25 ns: steals, their\n"
		"             judgement, give-backs, timed sleeps, the hub's and the\n"
		"             consumer's moves\n");
}

/* --scaling: every selected workload and policy on every shape. */
static int scaling(const char *workload, const char *policy, uint64_t seed, uint64_t work,
		   const struct costs *c)
{
	double rate[sizeof(workloads) / sizeof(workloads[0])][3][NSHAPES];

	for (unsigned k = 0; k < NSHAPES; k++) {
		struct topo *t = NULL;
		int err = make_topology(shapes[k][0], shapes[k][1], &t);
		if (err < 0) {
			fprintf(stderr, "krill-sim: topology: %s\n", strerror(-err));
			return 2;
		}
		for (size_t w = FIRST_COMM; w < sizeof(workloads) / sizeof(workloads[0]); w++) {
			if (strcmp(workload, "all") && strcmp(workload, "comm") &&
			    strcmp(workload, workloads[w]))
				continue;
			for (unsigned p = 0; p < 3; p++) {
				struct result r;

				if (strcmp(policy, "all") && strcmp(policy, policies[p]))
					continue;
				err = simulate(t, shapes[k][0], shapes[k][1], workloads[w],
					       (enum policy)p, seed, work, c, &r);
				if (err < 0) {
					fprintf(stderr, "krill-sim: %s: %s\n", workloads[w],
						strerror(-err));
					kri_topo_free(t);
					return 2;
				}
				print_json(&r, seed);
				fflush(stdout);
				rate[w][p][k] = r.rate;
			}
		}
		kri_topo_free(t);
	}
	for (size_t w = FIRST_COMM; w < sizeof(workloads) / sizeof(workloads[0]); w++) {
		if (strcmp(workload, "all") && strcmp(workload, "comm") &&
		    strcmp(workload, workloads[w]))
			continue;
		for (unsigned p = 0; p < 3; p++) {
			const double *r = rate[w][p];

			if (strcmp(policy, "all") && strcmp(policy, policies[p]))
				continue;
			printf(
			    "{\"scaling\":\"%s\",\"policy\":\"%s\",\"rate_1\":%.3f,\"rate_2\":%.3f,"
			    "\"rate_32\":%.3f,\"rate_256\":%.3f,\"never_backwards\":%s}\n",
			    workloads[w], policies[p], r[0], r[1], r[2], r[3],
			    never_backwards(r) ? "true" : "false");
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *workload = "all", *policy = "all";
	uint64_t nodes = 8, cores = 32, seed = 1, work = 4000;
	struct costs costs = {
	    .local_ns = 25, .cross_ns = 450, .window_ns = BAL_COMPACT_NS, .home_wait = 1};
	bool table = false, scale = false;
	struct topo *t = NULL;
	int err;

	enum {
		O_NODES = 256,
		O_CORES,
		O_SEED,
		O_WORK,
		O_LOCAL,
		O_CROSS,
		O_WINDOW,
		O_HOME,
		O_SCALING,
		O_TRACE
	};
	static const struct option opts[] = {
	    {"workload", required_argument, NULL, 'w'},
	    {"policy", required_argument, NULL, 'p'},
	    {"nodes", required_argument, NULL, O_NODES},
	    {"cores", required_argument, NULL, O_CORES},
	    {"seed", required_argument, NULL, O_SEED},
	    {"work", required_argument, NULL, O_WORK},
	    {"local-ns", required_argument, NULL, O_LOCAL},
	    {"cross-ns", required_argument, NULL, O_CROSS},
	    {"window-ns", required_argument, NULL, O_WINDOW},
	    {"home-wait", required_argument, NULL, O_HOME},
	    {"scaling", no_argument, NULL, O_SCALING},
	    {"trace", no_argument, NULL, O_TRACE},
	    {"table", no_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;

	opterr = 0; /* cli_getopt_error says it in one line */
	while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
		bool ok = true;

		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 't':
			table = true;
			break;
		case 'w':
			workload = optarg;
			break;
		case 'p':
			policy = optarg;
			break;
		case O_NODES:
			ok = cli_number("krill-sim", "--nodes", optarg, 1, 8, &nodes);
			break;
		case O_CORES:
			ok = cli_number("krill-sim", "--cores", optarg, 1, 32, &cores);
			break;
		case O_SEED:
			ok = cli_number("krill-sim", "--seed", optarg, 0, UINT64_MAX, &seed);
			break;
		case O_WORK:
			ok = cli_number("krill-sim", "--work", optarg, 100, 1000000, &work);
			break;
		case O_LOCAL:
			ok = cli_number("krill-sim", "--local-ns", optarg, 0, 100000,
					&costs.local_ns);
			break;
		case O_CROSS:
			ok = cli_number("krill-sim", "--cross-ns", optarg, 0, 100000,
					&costs.cross_ns);
			break;
		case O_WINDOW:
			ok = cli_number("krill-sim", "--window-ns", optarg, 0, 1000000000,
					&costs.window_ns);
			break;
		case O_HOME:
			ok = cli_number("krill-sim", "--home-wait", optarg, 0, 1, &costs.home_wait);
			break;
		case O_SCALING:
			scale = true;
			break;
		case O_TRACE:
			costs.trace = true;
			break;
		case 1:
			fprintf(stderr, "krill-sim: unknown argument '%s' (see --help)\n", optarg);
			return 2;
		default:
			cli_getopt_error("krill-sim", c, argv);
			return 2;
		}
		if (!ok)
			return 2;
	}
	if (optind < argc) { /* after "--" */
		fprintf(stderr, "krill-sim: unknown argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (strcmp(policy, "all") && strcmp(policy, "krill") && strcmp(policy, "eager") &&
	    strcmp(policy, "random")) {
		fprintf(stderr, "krill-sim: unknown policy '%s'\n", policy);
		return 2;
	}
	bool known = !strcmp(workload, "all") || !strcmp(workload, "comm");
	for (size_t w = 0; w < sizeof(workloads) / sizeof(workloads[0]); w++)
		known = known || !strcmp(workload, workloads[w]);
	if (!known) {
		fprintf(stderr, "krill-sim: unknown workload '%s'\n", workload);
		return 2;
	}
	if (scale)
		return scaling(workload, policy, seed, work, &costs);
	err = make_topology((unsigned)nodes, (unsigned)cores, &t);
	if (err < 0) {
		fprintf(stderr, "krill-sim: topology: %s\n", strerror(-err));
		return 2;
	}
	if (table) {
		printf(
		    "| workload | policy | nodes x cores | makespan | ideal | makespan/ideal | "
		    "steals | remote steals | cross-node msg bytes | migrations | remote runs |\n"
		    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
		    "|\n");
	}
	for (size_t w = 0; w < sizeof(workloads) / sizeof(workloads[0]); w++) {
		if (strcmp(workload, "all") && strcmp(workload, workloads[w]) &&
		    (strcmp(workload, "comm") || w < FIRST_COMM))
			continue;
		for (unsigned k = 0; k < 3; k++) {
			struct result r;

			if (strcmp(policy, "all") && strcmp(policy, policies[k]))
				continue;
			err = simulate(t, (unsigned)nodes, (unsigned)cores, workloads[w],
				       (enum policy)k, seed, work, &costs, &r);
			if (err < 0) {
				fprintf(stderr, "krill-sim: %s: %s\n", workloads[w],
					strerror(-err));
				kri_topo_free(t);
				return 2;
			}
			if (table)
				print_row(&r);
			else
				print_json(&r, seed);
			fflush(stdout);
		}
	}
	kri_topo_free(t);
	return 0;
}
