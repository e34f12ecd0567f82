/* savina_micro.c: Savina's micro-benchmarks on krill's public API: PingPong, Counting,
 * Fork-Join (creation and throughput), Thread Ring, Chameneos and Big. Each run function
 * sets up its processes, runs them, and prints one result line with its check. */

#include "savina.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

/* ---- pingpong ------------------------------------------------------------------------- */

/* Savina's PingPong: one ping process sends --pings pings to one pong process, each after the
 * previous pong came back. The ping carries the sender's pid, as Savina's message does. */
struct pp_run {
	uint64_t pings, pongs_got, pings_seen;
	double t_start, t_end;
};

struct pp_ping {
	struct pp_run *run;
	kr_pid pong;
	uint64_t left;
};

struct pp_pong {
	struct pp_run *run;
	uint64_t seen;
};

static void pp_pong(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct pp_pong *s = state;
	kr_pid from;

	switch (msg->tag) {
	case T_PING:
		if (take(ctx, msg, &from, sizeof from, "pong")) {
			s->seen++;
			post(ctx, from, T_PONG, NULL, 0);
		}
		return;
	case T_STOP:
		s->run->pings_seen = s->seen;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "pong", msg);
}

static void pp_ping(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct pp_ping *s = state;
	kr_pid self = kr_self(ctx);

	switch (msg->tag) {
	case T_START:
		s->run->t_start = now();
		post(ctx, s->pong, T_PING, &self, sizeof self);
		return;
	case T_PONG:
		s->run->pongs_got++;
		if (--s->left > 0) {
			post(ctx, s->pong, T_PING, &self, sizeof self);
			return;
		}
		s->run->t_end = now();
		post(ctx, s->pong, T_STOP, NULL, 0);
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "ping", msg);
}

int run_pingpong(kr_runtime *rt, const struct params *p)
{
	struct pp_run run = {.pings = p->pings};
	struct pp_pong pong = {.run = &run};
	struct pp_ping ping = {.run = &run, .left = p->pings};
	int rc, status;

	if ((rc = kr_rt_spawn(rt, pp_pong, &pong, sizeof pong, &ping.pong)) < 0)
		return bench_error("kr_rt_spawn", rc);
	if ((status = run_root(rt, pp_ping, &ping, sizeof ping)) != 0)
		return status;
	double secs = run.t_end - run.t_start;
	bool ok = run.pongs_got == p->pings && run.pings_seen == p->pings;
	return report(rt, p, secs, 2.0 * (double)p->pings, ok,
		      ",\"pings\":%" PRIu64 ",\"messages_total\":%" PRIu64 ",\"result\":%" PRIu64
		      ",\"expected\":%" PRIu64,
		      p->pings, 2 * p->pings, run.pongs_got, p->pings);
}

/* ---- count ---------------------------------------------------------------------------- */

/* Savina's Counting: a producer sends --messages increments to a counter, then asks it for
 * the total, which must be --messages. */
struct count_run {
	uint64_t messages, total;
	double t_start, t_end;
};

struct count_producer {
	struct count_run *run;
	kr_pid counter;
	uint64_t sent;
};

static void count_counter(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	uint64_t *count = state;
	kr_pid to;

	switch (msg->tag) {
	case T_INC:
		++*count;
		return;
	case T_GET:
		if (take(ctx, msg, &to, sizeof to, "counter") && post_u64(ctx, to, T_COUNT, *count))
			kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "counter", msg);
}

static void count_producer(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct count_producer *s = state;
	uint64_t n = s->run->messages;

	switch (msg->tag) {
	case T_START:
		s->run->t_start = now();
		/* fall through */
	case T_GO: {
		uint64_t end = s->sent + CHUNK < n ? s->sent + CHUNK : n;
		for (; s->sent < end; s->sent++)
			if (!post(ctx, s->counter, T_INC, NULL, 0))
				return;
		if (s->sent < n) {
			post(ctx, kr_self(ctx), T_GO, NULL, 0);
			return;
		}
		kr_pid self = kr_self(ctx);
		post(ctx, s->counter, T_GET, &self, sizeof self);
		return;
	}
	case T_COUNT:
		if (take(ctx, msg, &s->run->total, sizeof s->run->total, "producer")) {
			s->run->t_end = now();
			kr_exit(ctx, KR_NORMAL);
		}
		return;
	}
	unexpected(ctx, "producer", msg);
}

int run_count(kr_runtime *rt, const struct params *p)
{
	struct count_run run = {.messages = p->messages};
	struct count_producer prod = {.run = &run};
	static const uint64_t zero;
	int rc, status;

	if ((rc = kr_rt_spawn(rt, count_counter, &zero, sizeof zero, &prod.counter)) < 0)
		return bench_error("kr_rt_spawn", rc);
	if ((status = run_root(rt, count_producer, &prod, sizeof prod)) != 0)
		return status;
	return report(rt, p, run.t_end - run.t_start, (double)p->messages, run.total == p->messages,
		      ",\"messages\":%" PRIu64 ",\"result\":%" PRIu64 ",\"expected\":%" PRIu64,
		      p->messages, run.total, p->messages);
}

/* ---- fjcreate ------------------------------------------------------------------------- */

/* Savina's Fork-Join (actor creation): --actors processes are created and each sent one
 * message; each does the small computation, tells the coordinator and exits. */
struct fjc_run {
	uint64_t actors, done, bad;
	double t_start, t_end;
};

struct fjc_coord {
	struct fjc_run *run;
	uint64_t spawned, done, bad;
};

static void fjc_worker(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	kr_pid *coord = state;
	double theta;

	if (msg->tag != T_WORK || !take(ctx, msg, &theta, sizeof theta, "fjcreate worker")) {
		if (msg->tag != T_WORK)
			unexpected(ctx, "fjcreate worker", msg);
		return;
	}
	post_u64(ctx, *coord, T_DONE, compute(theta));
	kr_exit(ctx, KR_NORMAL);
}

static void fjc_coord(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct fjc_coord *c = state;
	uint64_t n = c->run->actors, good;

	switch (msg->tag) {
	case T_START:
		c->run->t_start = now();
		/* fall through */
	case T_GO: {
		kr_pid self = kr_self(ctx), w;
		uint64_t end = c->spawned + CHUNK < n ? c->spawned + CHUNK : n;
		for (; c->spawned < end; c->spawned++) {
			double theta = (double)c->spawned;
			if (!spawn(ctx, fjc_worker, &self, sizeof self, &w) ||
			    !post(ctx, w, T_WORK, &theta, sizeof theta))
				return;
		}
		if (c->spawned < n)
			post(ctx, self, T_GO, NULL, 0);
		return;
	}
	case T_DONE:
		if (!take(ctx, msg, &good, sizeof good, "fjcreate coordinator"))
			return;
		c->bad += !good;
		if (++c->done < n)
			return;
		c->run->t_end = now();
		c->run->done = c->done;
		c->run->bad = c->bad;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "fjcreate coordinator", msg);
}

int run_fjcreate(kr_runtime *rt, const struct params *p)
{
	struct fjc_run run = {.actors = p->actors};
	struct fjc_coord c = {.run = &run};
	int status = run_root(rt, fjc_coord, &c, sizeof c);
	if (status)
		return status;
	return report(rt, p, run.t_end - run.t_start, (double)p->actors,
		      run.done == p->actors && run.bad == 0,
		      ",\"actors\":%" PRIu64 ",\"result\":%" PRIu64 ",\"expected\":%" PRIu64,
		      p->actors, run.done - run.bad, p->actors);
}

/* ---- fjthroughput --------------------------------------------------------------------- */

/* Savina's Fork-Join (throughput): the coordinator sends --messages messages to each of
 * --actors workers, round robin; each does the computation per message and reports when it
 * has had them all. */
struct fjt_run {
	uint64_t actors, messages, done, processed;
	double t_start, t_end;
};

struct fjt_coord {
	struct fjt_run *run;
	kr_pid *workers; /* the coordinator's own array */
	uint64_t sent, done, processed;
};

struct fjt_worker {
	kr_pid coord;
	uint64_t left, ok;
};

static void fjt_worker(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct fjt_worker *w = state;
	double theta;

	if (msg->tag != T_WORK) {
		unexpected(ctx, "fjthroughput worker", msg);
		return;
	}
	if (!take(ctx, msg, &theta, sizeof theta, "fjthroughput worker"))
		return;
	w->ok += compute(theta);
	if (--w->left == 0) {
		post_u64(ctx, w->coord, T_DONE, w->ok);
		kr_exit(ctx, KR_NORMAL);
	}
}

static void fjt_coord(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct fjt_coord *c = state;
	struct fjt_run *run = c->run;
	uint64_t total = run->actors * run->messages, ok;

	switch (msg->tag) {
	case T_START: {
		struct fjt_worker w = {.coord = kr_self(ctx), .left = run->messages};
		for (uint64_t i = 0; i < run->actors; i++)
			if (!spawn(ctx, fjt_worker, &w, sizeof w, &c->workers[i]))
				return;
		run->t_start = now(); /* Savina times the messages, not the creation */
	}
		/* fall through */
	case T_GO: {
		uint64_t end = c->sent + CHUNK < total ? c->sent + CHUNK : total;
		for (; c->sent < end; c->sent++) {
			double theta = (double)c->sent;
			if (!post(ctx, c->workers[c->sent % run->actors], T_WORK, &theta,
				  sizeof theta))
				return;
		}
		if (c->sent < total)
			post(ctx, kr_self(ctx), T_GO, NULL, 0);
		return;
	}
	case T_DONE:
		if (!take(ctx, msg, &ok, sizeof ok, "fjthroughput coordinator"))
			return;
		c->processed += ok;
		if (++c->done < run->actors)
			return;
		run->t_end = now();
		run->done = c->done;
		run->processed = c->processed;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "fjthroughput coordinator", msg);
}

int run_fjthroughput(kr_runtime *rt, const struct params *p)
{
	struct fjt_run run = {.actors = p->actors, .messages = p->messages};
	struct fjt_coord c = {.run = &run, .workers = malloc(p->actors * sizeof(kr_pid))};
	uint64_t total = p->actors * p->messages;

	if (!c.workers)
		return bench_error("malloc", -ENOMEM);
	int status = run_root(rt, fjt_coord, &c, sizeof c);
	free(c.workers);
	if (status)
		return status;
	return report(rt, p, run.t_end - run.t_start, (double)total,
		      run.done == p->actors && run.processed == total,
		      ",\"actors\":%" PRIu64 ",\"messages\":%" PRIu64 ",\"result\":%" PRIu64
		      ",\"expected\":%" PRIu64,
		      p->actors, p->messages, run.processed, total);
}

/* ---- threadring ----------------------------------------------------------------------- */

/* Savina's Thread Ring: --actors processes in a ring pass a token carrying the hops left;
 * the one that receives 0 ends the run. Started at member 0 with --hops, the token must end
 * at member hops mod actors. */
struct tr_run {
	uint64_t hops, last, ended;
	double t_start, t_end;
};

struct tr_node {
	kr_pid next;
	struct tr_run *run;
	uint64_t index;
};

static void tr_node(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct tr_node *s = state;
	uint64_t left;

	switch (msg->tag) {
	case T_TOKEN:
		if (!take(ctx, msg, &left, sizeof left, "threadring node"))
			return;
		if (left > 0) {
			post_u64(ctx, s->next, T_TOKEN, left - 1);
			return;
		}
		s->run->t_end = now();
		s->run->last = s->index;
		s->run->ended++;
		/* stop the ring from here */
		/* fall through */
	case T_STOP:
		if (s->next != kr_self(ctx))
			post(ctx, s->next, T_STOP, NULL, 0);
		kr_exit(ctx, KR_NORMAL);
		return;
	case T_INIT:
		take(ctx, msg, &s->next, sizeof s->next, "threadring node");
		return;
	case T_START:
		s->run->t_start = now();
		post_u64(ctx, kr_self(ctx), T_TOKEN, s->run->hops);
		return;
	}
	unexpected(ctx, "threadring node", msg);
}

int run_threadring(kr_runtime *rt, const struct params *p)
{
	uint64_t n = p->actors;
	struct tr_run run = {.hops = p->hops};
	kr_pid *ring = malloc(n * sizeof *ring);
	int rc, status = 2;

	if (!ring)
		return bench_error("malloc", -ENOMEM);
	for (uint64_t i = 0; i < n; i++) {
		struct tr_node s = {.run = &run, .index = i};
		if ((rc = kr_rt_spawn(rt, tr_node, &s, sizeof s, &ring[i])) < 0) {
			status = bench_error("kr_rt_spawn", rc);
			goto out;
		}
	}
	/* One sender (this thread), so every member has its successor before any token. */
	for (uint64_t i = 0; i < n; i++) {
		rc = kr_rt_send(rt, ring[i], T_INIT, &ring[(i + 1) % n], sizeof(kr_pid));
		if (rc < 0) {
			status = bench_error("kr_rt_send", rc);
			goto out;
		}
	}
	if ((rc = kr_rt_send(rt, ring[0], T_START, NULL, 0)) < 0) {
		status = bench_error("kr_rt_send", rc);
		goto out;
	}
	if ((status = run_runtime(rt, NULL)) != 0)
		goto out;
	status = report(rt, p, run.t_end - run.t_start, (double)p->hops,
			run.ended == 1 && run.last == p->hops % n,
			",\"actors\":%" PRIu64 ",\"hops\":%" PRIu64 ",\"result\":%" PRIu64
			",\"expected\":%" PRIu64,
			n, p->hops, run.last, p->hops % n);
out:
	free(ring);
	return status;
}

/* ---- chameneos ------------------------------------------------------------------------ */

/* Savina's Chameneos: a mall and --chameneos creatures of three colours. Each creature asks
 * the mall for a meeting; the mall holds the first asker and hands the second one's request
 * to it; the held one takes the complement colour, tells its partner (T_CHANGE) and asks
 * again, and so does the partner. After --meetings meetings the mall answers every request
 * with T_STOP; each creature reports how many meetings it had, which must add up to twice
 * --meetings. */
struct cham_meet {
	kr_pid from;
	uint64_t colour;
};

struct cham_run {
	uint64_t chameneos, meetings, sum, faded;
	double t_start, t_end;
};

struct cham_mall {
	struct cham_run *run;
	uint64_t left, faded, sum;
	struct cham_meet waiting; /* from 0: nobody waits */
};

struct chameneo {
	kr_pid mall;
	uint64_t colour, meetings;
};

static uint64_t complement(uint64_t a, uint64_t b)
{
	return a == b ? a : 3 - a - b; /* colours 0, 1, 2: the one that is neither */
}

static void chameneo(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct chameneo *s = state;
	struct cham_meet m;
	uint64_t colour;

	switch (msg->tag) {
	case T_MEET: /* from the mall: the partner's request */
		if (!take(ctx, msg, &m, sizeof m, "chameneo"))
			return;
		s->colour = complement(s->colour, m.colour);
		s->meetings++;
		if (!post_u64(ctx, m.from, T_CHANGE, s->colour))
			return;
		break;
	case T_CHANGE:
		if (!take(ctx, msg, &colour, sizeof colour, "chameneo"))
			return;
		s->colour = colour;
		s->meetings++;
		break;
	case T_GO:
		break;
	case T_STOP:
		if (post_u64(ctx, s->mall, T_COUNT, s->meetings))
			kr_exit(ctx, KR_NORMAL);
		return;
	default:
		unexpected(ctx, "chameneo", msg);
		return;
	}
	m = (struct cham_meet){.from = kr_self(ctx), .colour = s->colour};
	post(ctx, s->mall, T_MEET, &m, sizeof m);
}

static void cham_mall(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct cham_mall *s = state;
	struct cham_meet m;
	uint64_t count;

	switch (msg->tag) {
	case T_START: {
		s->run->t_start = now(); /* Savina's mall creates the creatures in the timing */
		for (uint64_t i = 0; i < s->run->chameneos; i++) {
			struct chameneo c = {.mall = kr_self(ctx), .colour = i % 3};
			kr_pid pid;
			if (!spawn(ctx, chameneo, &c, sizeof c, &pid) ||
			    !post(ctx, pid, T_GO, NULL, 0))
				return;
		}
		return;
	}
	case T_MEET:
		if (!take(ctx, msg, &m, sizeof m, "mall"))
			return;
		if (s->left == 0) {
			post(ctx, m.from, T_STOP, NULL, 0);
		} else if (s->waiting.from == 0) {
			s->waiting = m;
		} else {
			s->left--;
			post(ctx, s->waiting.from, T_MEET, &m, sizeof m);
			s->waiting.from = 0;
		}
		return;
	case T_COUNT:
		if (!take(ctx, msg, &count, sizeof count, "mall"))
			return;
		s->sum += count;
		if (++s->faded < s->run->chameneos)
			return;
		s->run->t_end = now();
		s->run->sum = s->sum;
		s->run->faded = s->faded;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "mall", msg);
}

int run_chameneos(kr_runtime *rt, const struct params *p)
{
	struct cham_run run = {.chameneos = p->chameneos, .meetings = p->meetings};
	struct cham_mall mall = {.run = &run, .left = p->meetings};
	int status = run_root(rt, cham_mall, &mall, sizeof mall);
	if (status)
		return status;
	return report(rt, p, run.t_end - run.t_start, (double)p->meetings,
		      run.faded == p->chameneos && run.sum == 2 * p->meetings,
		      ",\"chameneos\":%" PRIu64 ",\"meetings\":%" PRIu64 ",\"result\":%" PRIu64
		      ",\"expected\":%" PRIu64,
		      p->chameneos, p->meetings, run.sum, 2 * p->meetings);
}

/* ---- big ------------------------------------------------------------------------------ */

/* Savina's Big: --actors workers, each knowing all the others (a T_INIT carries the pids,
 * copied into the worker's state: nothing is shared), send --pings pings one at a time, each
 * to a random other worker, which answers pong. A worker done with its pings tells the sink;
 * when all are done the sink stops them and each reports the pings it answered, which must
 * add up to actors x pings. */
struct big_run {
	uint64_t actors, pings, answered, reported;
	double t_start, t_end;
};

struct big_worker {
	kr_pid sink;
	uint64_t index, left, answered, rng, n;
	kr_pid peers[]; /* n pids, this worker's included */
};

struct big_sink {
	struct big_run *run;
	kr_pid *workers; /* the sink's own array */
	uint64_t done, reported, answered;
};

static bool big_ping(kr_ctx *ctx, struct big_worker *w)
{
	uint64_t k = rnd(&w->rng) % (w->n - 1);
	kr_pid self = kr_self(ctx);
	return post(ctx, w->peers[k >= w->index ? k + 1 : k], T_PING, &self, sizeof self);
}

static void big_worker(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct big_worker *w = state;
	kr_pid from;

	switch (msg->tag) {
	case T_PING:
		if (take(ctx, msg, &from, sizeof from, "big worker")) {
			w->answered++;
			post(ctx, from, T_PONG, NULL, 0);
		}
		return;
	case T_PONG:
		if (--w->left > 0)
			big_ping(ctx, w);
		else
			post(ctx, w->sink, T_DONE, NULL, 0);
		return;
	case T_INIT:
		take(ctx, msg, w->peers, w->n * sizeof(kr_pid), "big worker");
		return;
	case T_GO:
		big_ping(ctx, w);
		return;
	case T_STOP:
		if (post_u64(ctx, w->sink, T_COUNT, w->answered))
			kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "big worker", msg);
}

static void big_sink(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct big_sink *s = state;
	struct big_run *run = s->run;
	uint64_t n = run->actors, count;

	switch (msg->tag) {
	case T_START: {
		size_t len = sizeof(struct big_worker) + n * sizeof(kr_pid);
		struct big_worker *w = calloc(1, len);
		if (!w) {
			fail(ctx, 2, "calloc", -ENOMEM, NULL);
			return;
		}
		*w = (struct big_worker){.sink = kr_self(ctx), .left = run->pings, .n = n};
		for (uint64_t i = 0; i < n; i++) {
			w->index = i;
			w->rng = i + 1;
			if (!spawn(ctx, big_worker, w, len, &s->workers[i])) {
				free(w);
				return;
			}
		}
		free(w);
		for (uint64_t i = 0; i < n; i++)
			if (!post(ctx, s->workers[i], T_INIT, s->workers, n * sizeof(kr_pid)))
				return;
		run->t_start = now(); /* the pings, not the set-up */
		for (uint64_t i = 0; i < n; i++)
			if (!post(ctx, s->workers[i], T_GO, NULL, 0))
				return;
		return;
	}
	case T_DONE:
		if (++s->done < n)
			return;
		run->t_end = now();
		for (uint64_t i = 0; i < n; i++)
			if (!post(ctx, s->workers[i], T_STOP, NULL, 0))
				return;
		return;
	case T_COUNT:
		if (!take(ctx, msg, &count, sizeof count, "big sink"))
			return;
		s->answered += count;
		if (++s->reported < n)
			return;
		run->answered = s->answered;
		run->reported = s->reported;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "big sink", msg);
}

int run_big(kr_runtime *rt, const struct params *p)
{
	struct big_run run = {.actors = p->actors, .pings = p->pings};
	struct big_sink sink = {.run = &run, .workers = malloc(p->actors * sizeof(kr_pid))};
	uint64_t total = p->actors * p->pings;

	if (!sink.workers)
		return bench_error("malloc", -ENOMEM);
	int status = run_root(rt, big_sink, &sink, sizeof sink);
	free(sink.workers);
	if (status)
		return status;
	return report(rt, p, run.t_end - run.t_start, 2.0 * (double)total,
		      run.reported == p->actors && run.answered == total,
		      ",\"actors\":%" PRIu64 ",\"pings\":%" PRIu64 ",\"messages_total\":%" PRIu64
		      ",\"result\":%" PRIu64 ",\"expected\":%" PRIu64,
		      p->actors, p->pings, 2 * total, run.answered, total);
}
