/* krill-sim: a deterministic simulator of krill's load balancing on synthetic
 * NUMA machines (up to 8 nodes x 32 cores), in virtual time. The victim
 * order, thresholds, choice of victim and steal amount come from
 * core/sched/balance.c, the code the schedulers run; only queues, costs and
 * workloads are modelled here.
 *
 * Model. Time moves in ticks; one unit of work takes one tick. Each tick
 * every scheduler (in turn from a seeded offset) either pays off a pending
 * cost, runs one unit of its current process, starts its next one (the
 * next-to-run slot first, then its FIFO queue), or tries to steal. A steal
 * takes bal_steal_count() of the victim's queue from its head and runs the
 * newest taken, as runq_steal does.
 * Costs: a failed scan 1 tick; a steal 1 tick locally, ceil(d/10) ticks from
 * a node at distance d; a run of a process away from its home node (where its
 * slot was allocated) 1 tick more; a message to a process queued on another
 * node ceil((d-10)/10) ticks more for the sender. A woken process goes to the
 * waker's next-to-run slot; a spawned one to the spawner's queue. Processes
 * are never moved home (the re-homing rule in core/sched/balance.h).
 *
 * Policies: "krill" is bal_init(numa = 1); "random" is the flat order
 * (numa = 0) started at a random victim each attempt: naive random stealing.
 * Both use the same seed, so workloads are identical. */
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

enum kind { K_TASK, K_FJ, K_PAIR };
enum pstate { P_IDLE, P_QUEUED, P_RUNNING, P_WAITING, P_DONE };

struct sproc {
	uint32_t home;  /* node its slot lives on */
	uint32_t sched; /* where it is queued, runs or last ran */
	uint32_t cost;  /* task: work of its one run; fj: work of a node */
	uint32_t parent, peer, pair, mail;
	uint32_t pending; /* fj: children not done; pair: messages this run */
	uint16_t depth;
	uint8_t kind, state;
	bool joined; /* fj: children done, the join run is next */
};

struct queue {
	uint32_t *buf;
	size_t cap, head, len;
};

struct ssched {
	struct balance bal;
	struct queue q;
	uint32_t node;
	uint32_t busy; /* ticks of cost still to pay */
	uint32_t cur, left;
	bool has_cur, has_next;
	uint32_t next;
};

struct burst {
	uint64_t at, work;
	uint32_t sched, first, tasks; /* its processes: first .. first + tasks */
};

struct sim {
	struct topo *topo;
	struct topo_place *place;
	unsigned n, nodes, cores;
	struct ssched *s;
	struct sproc *p;
	size_t np, capp;
	uint32_t *budget; /* pairs: replies still to send */
	uint64_t rng;
	uint64_t total_work, done_work, critical;
	uint64_t queued; /* processes in all queues, to skip hopeless scans */
	struct burst *bursts;
	unsigned nbursts, nextburst;
	/* Figures. */
	uint64_t steals, remote_steals, migrations, remote_migrations;
	uint64_t msg_bytes, cross_msg_bytes, runs, remote_runs;
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

static void q_push(struct queue *q, uint32_t v)
{
	if (q->len == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 64;
		uint32_t *b = xrealloc(NULL, cap * sizeof(*b));

		for (size_t i = 0; i < q->len; i++)
			b[i] = q->buf[(q->head + i) % q->cap];
		free(q->buf);
		q->buf = b;
		q->cap = cap;
		q->head = 0;
	}
	q->buf[(q->head + q->len++) % q->cap] = v;
}

static uint32_t q_pop(struct queue *q)
{
	uint32_t v = q->buf[q->head];

	q->head = (q->head + 1) % q->cap;
	q->len--;
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
	p->home = m->s[sched].node;
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
	} else {
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

static uint64_t qlen(void *ctx, unsigned v)
{
	return ((struct sim *)ctx)->s[v].q.len;
}

/* The balance policy chooses; the queue mechanics follow runq_steal. */
static bool steal(struct sim *m, uint32_t self, uint32_t *out, uint32_t *cost)
{
	struct ssched *s = &m->s[self];
	const struct balance *b = &s->bal;
	unsigned start = (unsigned)rnd(&m->rng);
	uint32_t take, v, d = 10;
	struct queue *vq;
	int j;

	if (m->queued == 0)
		return false;
	j = kri_bal_choose(b, start, qlen, m);
	if (j < 0)
		return false;
	v = b->order[j];
	vq = &m->s[v].q;
	take = bal_steal_count((uint32_t)vq->len);
	for (uint32_t i = 0; i < take; i++) {
		uint32_t pid = q_pop(vq);

		m->queued--;
		if (i + 1 < take) {
			enqueue(m, self, pid);
		} else {
			m->p[pid].sched = self; /* the newest taken runs now */
			*out = pid;
		}
	}
	m->steals++;
	m->migrations += take;
	if (b->level[j] == TOPO_REMOTE) {
		d = dist(m, s->node, m->s[v].node);
		m->remote_steals++;
		m->remote_migrations += take;
	}
	*cost = (d + 9) / 10;
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
		break;
	case K_FJ:
		if (p->joined || p->depth == FJ_DEPTH) {
			p->state = P_DONE;
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
	if (!s->has_cur) {
		uint32_t cost = 0; /* ticks before its first unit, this one included */

		if (s->has_next) {
			pid = s->next;
			s->has_next = false;
		} else if (s->q.len) {
			pid = q_pop(&s->q);
			m->queued--;
		} else if (m->n > 1 && steal(m, self, &pid, &cost)) {
		} else {
			return;
		}
		struct sproc *p = &m->p[pid];

		p->state = P_RUNNING;
		p->sched = self;
		if (p->kind == K_PAIR) /* what it handles now; later mail waits */
			p->pending = p->mail < PAIR_BATCH ? p->mail : PAIR_BATCH;
		s->cur = pid;
		s->left = run_cost(p);
		s->has_cur = true;
		m->runs++;
		if (p->home != s->node) {
			m->remote_runs++;
			cost++;
		}
		if (s->left == 0) { /* nothing to handle after all */
			s->has_cur = false;
			finish(m, self, pid);
		}
		if (cost) {
			s->busy = cost - 1;
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

struct result {
	const char *workload, *policy;
	unsigned nodes, cores;
	uint64_t makespan, ideal, total_work, critical;
	double ratio, remote_frac, cross_frac, remote_runs_frac;
	uint64_t steals, remote_steals, migrations, remote_migrations;
};

static int simulate(struct topo *t, unsigned nodes, unsigned cores, const char *w, bool krill,
		    uint64_t seed, uint64_t per_core, struct result *res)
{
	struct sim m = {.topo = t, .nodes = nodes, .cores = cores};
	uint64_t now = 0, ideal;
	int err;

	m.n = nodes * cores;
	m.place = xrealloc(NULL, m.n * sizeof(*m.place));
	m.s = xrealloc(NULL, m.n * sizeof(*m.s));
	memset(m.s, 0, m.n * sizeof(*m.s));
	err = kri_topo_layout(t, m.n, false, m.place);
	for (unsigned i = 0; err == 0 && i < m.n; i++) {
		m.s[i].node = m.place[i].numa;
		err = kri_bal_init(&m.s[i].bal, t, m.place, m.n, i, krill);
	}
	if (err < 0) {
		/* m.s was zeroed, so bal_fini is safe where bal_init did not run */
		for (unsigned i = 0; i < m.n; i++)
			kri_bal_fini(&m.s[i].bal);
		free(m.s);
		free(m.place);
		return err;
	}
	/* One seed, one workload: both policies get the same processes and
	 * costs, then the schedulers' choices draw from a stream of their own. */
	setup(&m, w, seed, per_core);
	m.rng = (seed ^ 0x2545f4914f6cdd1dull) * 0x9e3779b97f4a7c15ull | 1;
	for (;;) {
		if (m.nextburst < m.nbursts)
			inject_bursts(&m, now);
		if (m.nextburst == m.nbursts && m.done_work == m.total_work)
			break;
		if (now > 100 * (m.total_work + 1000)) { /* a model bug, not a result */
			fprintf(stderr, "krill-sim: %s does not finish\n", w);
			exit(2);
		}
		unsigned off = (unsigned)(rnd(&m.rng) % m.n);
		for (unsigned k = 0; k < m.n; k++)
			tick(&m, (off + k) % m.n);
		now++;
	}
	ideal = m.nbursts ? burst_bound(&m) : (m.total_work + m.n - 1) / m.n;
	if (m.critical > ideal)
		ideal = m.critical;
	*res = (struct result){
	    .workload = w,
	    .policy = krill ? "krill" : "random",
	    .nodes = nodes,
	    .cores = m.n,
	    .makespan = now,
	    .ideal = ideal,
	    .total_work = m.total_work,
	    .critical = m.critical,
	    .ratio = (double)now / (double)ideal,
	    .remote_frac = m.steals ? (double)m.remote_steals / (double)m.steals : 0,
	    .cross_frac = m.msg_bytes ? (double)m.cross_msg_bytes / (double)m.msg_bytes : 0,
	    .remote_runs_frac = m.runs ? (double)m.remote_runs / (double)m.runs : 0,
	    .steals = m.steals,
	    .remote_steals = m.remote_steals,
	    .migrations = m.migrations,
	    .remote_migrations = m.remote_migrations,
	};
	for (unsigned i = 0; i < m.n; i++) {
		kri_bal_fini(&m.s[i].bal);
		free(m.s[i].q.buf);
	}
	free(m.s);
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
	       ",\"remote_migrations\":%" PRIu64 ",\"remote_runs_frac\":%.4f}\n",
	       r->workload, r->policy, r->nodes, r->cores, seed, r->makespan, r->ideal, r->ratio,
	       r->total_work, r->critical, r->steals, r->remote_steals, r->remote_frac,
	       r->cross_frac, r->migrations, r->remote_migrations, r->remote_runs_frac);
}

static void print_row(const struct result *r)
{
	printf("| %s | %s | %ux%u | %" PRIu64 " | %" PRIu64 " | %.3f | %" PRIu64
	       " | %.1f%% | %.1f%% | %" PRIu64 " | %.1f%% |\n",
	       r->workload, r->policy, r->nodes, r->cores / r->nodes, r->makespan, r->ideal,
	       r->ratio, r->steals, 100 * r->remote_frac, 100 * r->cross_frac, r->migrations,
	       100 * r->remote_runs_frac);
}

static const char *const workloads[] = {"uniform", "skewed", "bursty", "forkjoin", "pairs"};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: krill-sim [--workload NAME|all] [--policy krill|random|all] [--nodes N]\n"
		"                 [--cores C] [--work W] [--seed S] [--table]\n"
		"Simulates krill's load balancing (core/sched/balance.c) on N NUMA nodes (1..8,\n"
		"default 8) of C cores (1..32, default 32) in virtual time; prints one JSON\n"
		"line per workload x policy, or a Markdown table with --table.\n"
		"  workloads: uniform skewed bursty forkjoin pairs (default all)\n"
		"  --work W   mean units of work per core (default 4000); forkjoin is a\n"
		"             fixed binary tree of depth 16 whatever W\n");
}

int main(int argc, char **argv)
{
	const char *workload = "all", *policy = "all";
	uint64_t nodes = 8, cores = 32, seed = 1, work = 4000;
	bool table = false;
	struct topo *t = NULL;
	int err;

	enum { O_NODES = 256, O_CORES, O_SEED, O_WORK };
	static const struct option opts[] = {
	    {"workload", required_argument, NULL, 'w'},
	    {"policy", required_argument, NULL, 'p'},
	    {"nodes", required_argument, NULL, O_NODES},
	    {"cores", required_argument, NULL, O_CORES},
	    {"seed", required_argument, NULL, O_SEED},
	    {"work", required_argument, NULL, O_WORK},
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
	if (strcmp(policy, "all") && strcmp(policy, "krill") && strcmp(policy, "random")) {
		fprintf(stderr, "krill-sim: unknown policy '%s'\n", policy);
		return 2;
	}
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
		if (strcmp(workload, "all") && strcmp(workload, workloads[w]))
			continue;
		for (int k = 1; k >= 0; k--) {
			struct result r;

			if (strcmp(policy, "all") && strcmp(policy, k ? "krill" : "random"))
				continue;
			err = simulate(t, (unsigned)nodes, (unsigned)cores, workloads[w], k, seed,
				       work, &r);
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
