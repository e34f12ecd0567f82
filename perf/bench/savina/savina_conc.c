/* savina_conc.c: Savina's Concurrent Dictionary and Bank Transaction (processes that
 * own real state: a hash map, balances under a request-acknowledge protocol) and its
 * recursive Fibonacci, a tree of short-lived processes. */

#include "savina.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

/* ---- concdict ------------------------------------------------------------------------- */

/* Savina's Concurrent Dictionary: one dictionary process holds a hash map; --workers workers
 * each make --messages requests, --writes percent of them writes, waiting for each answer.
 * Keys are drawn from DICT_KEYS; the map starts with the lower half. A value always
 * encodes its key (value mod DICT_KEYS == key), which every read checks. The map is the
 * dictionary's own: only it touches the table, whose pointer is in its state. */
enum { DICT_KEYS = 1 << 16 };

struct dict_req {
	kr_pid from;
	uint64_t key, value;
};

struct dict_reply {
	uint64_t value, found;
};

struct dict_run {
	uint64_t workers, messages, writes, done, answered, bad, size;
	double t_start, t_end;
};

/* Open addressing, linear probing; capacity twice the key space, so it never fills. */
enum { DICT_SLOTS = 2 * DICT_KEYS };

struct dict_map {
	uint64_t size;
	uint64_t key[DICT_SLOTS]; /* key + 1; 0 is empty */
	uint64_t value[DICT_SLOTS];
};

/* The slot of key: its value if found, else the empty slot where it goes. */
static uint64_t dict_slot(const struct dict_map *m, uint64_t key, bool *found)
{
	uint64_t i = (key * 0x9e3779b97f4a7c15u) >> 47; /* 17 bits: DICT_SLOTS */
	while (m->key[i] != 0 && m->key[i] != key + 1)
		i = (i + 1) & (DICT_SLOTS - 1);
	*found = m->key[i] != 0;
	return i;
}

static void dict_put(struct dict_map *m, uint64_t key, uint64_t value)
{
	bool found;
	uint64_t i = dict_slot(m, key, &found);
	m->key[i] = key + 1;
	m->value[i] = value;
	m->size += !found;
}

struct dict_state {
	struct dict_map *map;
};

static void dict(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct dict_state *s = state;
	struct dict_req r;
	bool found;

	switch (msg->tag) {
	case T_WRITE:
		if (take(ctx, msg, &r, sizeof r, "dictionary")) {
			dict_put(s->map, r.key, r.value);
			struct dict_reply a = {.value = r.value, .found = 1};
			post(ctx, r.from, T_VALUE, &a, sizeof a);
		}
		return;
	case T_READ:
		if (take(ctx, msg, &r, sizeof r, "dictionary")) {
			uint64_t i = dict_slot(s->map, r.key, &found);
			struct dict_reply a = {.value = found ? s->map->value[i] : 0,
					       .found = found};
			post(ctx, r.from, T_VALUE, &a, sizeof a);
		}
		return;
	case T_STOP:
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "dictionary", msg);
}

struct dict_worker {
	kr_pid dict, coord;
	uint64_t left, writes, rng, key, bad;
};

static void dict_request(kr_ctx *ctx, struct dict_worker *w)
{
	struct dict_req r = {.from = kr_self(ctx), .key = rnd(&w->rng) % DICT_KEYS};
	bool write = rnd(&w->rng) % 100 < w->writes;
	r.value = r.key + DICT_KEYS * (rnd(&w->rng) >> 20);
	w->key = r.key;
	post(ctx, w->dict, write ? T_WRITE : T_READ, &r, sizeof r);
}

static void dict_worker(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct dict_worker *w = state;
	struct dict_reply a;

	switch (msg->tag) {
	case T_VALUE:
		if (!take(ctx, msg, &a, sizeof a, "dictionary worker"))
			return;
		w->bad += a.found && a.value % DICT_KEYS != w->key;
		if (--w->left > 0) {
			dict_request(ctx, w);
			return;
		}
		uint64_t report[2] = {w->bad, 0};
		if (post(ctx, w->coord, T_DONE, report, sizeof report))
			kr_exit(ctx, KR_NORMAL);
		return;
	case T_GO:
		dict_request(ctx, w);
		return;
	}
	unexpected(ctx, "dictionary worker", msg);
}

struct dict_coord {
	struct dict_run *run;
	kr_pid dict;
	uint64_t done, bad;
};

static void dict_coord(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct dict_coord *c = state;
	struct dict_run *run = c->run;
	uint64_t report[2];

	switch (msg->tag) {
	case T_START:
		run->t_start = now();
		for (uint64_t i = 0; i < run->workers; i++) {
			struct dict_worker w = {.dict = c->dict,
						.coord = kr_self(ctx),
						.left = run->messages,
						.writes = run->writes,
						.rng = i + 1};
			kr_pid pid;
			if (!spawn(ctx, dict_worker, &w, sizeof w, &pid) ||
			    !post(ctx, pid, T_GO, NULL, 0))
				return;
		}
		return;
	case T_DONE:
		if (!take(ctx, msg, report, sizeof report, "dictionary coordinator"))
			return;
		c->bad += report[0];
		if (++c->done < run->workers)
			return;
		run->t_end = now();
		run->done = c->done;
		run->bad = c->bad;
		if (post(ctx, c->dict, T_STOP, NULL, 0))
			kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "dictionary coordinator", msg);
}

int run_concdict(kr_runtime *rt, const struct params *p)
{
	struct dict_run run = {.workers = p->workers, .messages = p->messages, .writes = p->writes};
	struct dict_state ds = {.map = calloc(1, sizeof(struct dict_map))};
	struct dict_coord c = {.run = &run};
	uint64_t total = p->workers * p->messages;
	int rc, status;

	if (!ds.map)
		return bench_error("calloc", -ENOMEM);
	for (uint64_t k = 0; k < DICT_KEYS / 2; k++)
		dict_put(ds.map, k, k);
	if ((rc = kr_rt_spawn(rt, dict, &ds, sizeof ds, &c.dict)) < 0) {
		free(ds.map);
		return bench_error("kr_rt_spawn", rc);
	}
	status = run_root(rt, dict_coord, &c, sizeof c);
	uint64_t size = ds.map->size;
	free(ds.map);
	if (status)
		return status;
	/* Each worker's replies arrive in order, so done == workers means every request was
	 * answered; the map can only grow, within the key space. */
	return report(rt, p, run.t_end - run.t_start, (double)total,
		      run.done == p->workers && run.bad == 0 && size >= DICT_KEYS / 2 &&
			  size <= DICT_KEYS,
		      ",\"workers\":%" PRIu64 ",\"messages\":%" PRIu64 ",\"writes\":%" PRIu64
		      ",\"keys\":%d,\"map_size\":%" PRIu64 ",\"bad_reads\":%" PRIu64,
		      p->workers, p->messages, p->writes, DICT_KEYS, size, run.bad);
}

/* ---- fib ------------------------------------------------------------------------------ */

/* Savina's Fibonacci: a process computing fib(n) answers 1 for n <= 2, else spawns two
 * children for n - 1 and n - 2 and answers the sum of their answers: 2 fib(n) - 1 processes
 * in all. */
struct fib_run {
	uint64_t n, result;
	double t_start, t_end;
};

struct fib_node {
	kr_pid parent;
	uint64_t pending, sum;
};

static void fib_node(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct fib_node *s = state;
	uint64_t v;

	switch (msg->tag) {
	case T_FIB: {
		if (!take(ctx, msg, &v, sizeof v, "fib"))
			return;
		if (v <= 2) {
			if (post_u64(ctx, s->parent, T_RESULT, 1))
				kr_exit(ctx, KR_NORMAL);
			return;
		}
		struct fib_node child = {.parent = kr_self(ctx)};
		kr_pid a, b;
		if (spawn(ctx, fib_node, &child, sizeof child, &a) &&
		    spawn(ctx, fib_node, &child, sizeof child, &b) &&
		    post_u64(ctx, a, T_FIB, v - 1))
			post_u64(ctx, b, T_FIB, v - 2);
		s->pending = 2;
		return;
	}
	case T_RESULT:
		if (!take(ctx, msg, &v, sizeof v, "fib"))
			return;
		s->sum += v;
		if (--s->pending == 0 && post_u64(ctx, s->parent, T_RESULT, s->sum))
			kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "fib", msg);
}

static void fib_root(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct fib_run **run = state;
	struct fib_node child = {.parent = kr_self(ctx)};
	kr_pid pid;

	switch (msg->tag) {
	case T_START:
		(*run)->t_start = now();
		if (spawn(ctx, fib_node, &child, sizeof child, &pid))
			post_u64(ctx, pid, T_FIB, (*run)->n);
		return;
	case T_RESULT:
		if (take(ctx, msg, &(*run)->result, sizeof(uint64_t), "fib root")) {
			(*run)->t_end = now();
			kr_exit(ctx, KR_NORMAL);
		}
		return;
	}
	unexpected(ctx, "fib root", msg);
}

int run_fib(kr_runtime *rt, const struct params *p)
{
	struct fib_run run = {.n = p->n};
	struct fib_run *rp = &run;
	uint64_t a = 1, b = 1; /* fib(1), fib(2) */
	for (uint64_t i = 3; i <= p->n; i++) {
		uint64_t c = a + b;
		a = b;
		b = c;
	}
	int status = run_root(rt, fib_root, &rp, sizeof rp);
	if (status)
		return status;
	uint64_t procs = 2 * b - 1;
	return report(rt, p, run.t_end - run.t_start, (double)procs, run.result == b,
		      ",\"n\":%" PRIu64 ",\"processes\":%" PRIu64 ",\"result\":%" PRIu64
		      ",\"expected\":%" PRIu64,
		      p->n, procs, run.result, b);
}

/* ---- bank ----------------------------------------------------------------------------- */

/* Savina's Bank Transaction: a teller asks a random source account to transfer a random
 * amount to a random other account; the source debits itself, credits the destination and
 * waits for its acknowledgement before it answers the teller. While it waits it still takes
 * credits (two accounts crediting each other would otherwise deadlock) and defers new
 * transfers: Erlang's selective receive, with kr_defer. The teller keeps at most --window
 * transfers outstanding (Savina sends them all at once; with a deferred backlog per account
 * every acknowledgement would walk it again, quadratic in the backlog, in Erlang as here).
 * When --transactions are done each account reports its balance: the sum must not change. */
enum { BANK_START_BALANCE = 1000000 };

struct bank_transfer {
	kr_pid dest;
	int64_t amount;
};

struct bank_credit {
	kr_pid from;
	int64_t amount;
};

struct bank_run {
	uint64_t accounts, transactions, window, completed, reported;
	int64_t total;
	double t_start, t_end;
};

struct bank_account {
	kr_pid teller;
	int64_t balance;
	uint64_t waiting;
};

static void bank_account(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct bank_account *s = state;
	struct bank_transfer t;
	struct bank_credit c;

	switch (msg->tag) {
	case T_TRANSFER:
		if (s->waiting) {
			kr_defer(ctx);
			return;
		}
		if (!take(ctx, msg, &t, sizeof t, "account"))
			return;
		s->balance -= t.amount;
		c = (struct bank_credit){.from = kr_self(ctx), .amount = t.amount};
		s->waiting = post(ctx, t.dest, T_CREDIT, &c, sizeof c);
		return;
	case T_CREDIT:
		if (!take(ctx, msg, &c, sizeof c, "account"))
			return;
		s->balance += c.amount;
		post(ctx, c.from, T_ACK, NULL, 0);
		return;
	case T_ACK:
		s->waiting = 0;
		post(ctx, s->teller, T_REPLY, NULL, 0);
		kr_undefer(ctx);
		return;
	case T_STOP:
		if (post(ctx, s->teller, T_COUNT, &s->balance, sizeof s->balance))
			kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "account", msg);
}

struct bank_teller {
	struct bank_run *run;
	kr_pid *accounts; /* the teller's own array */
	uint64_t sent, completed, reported, rng;
	int64_t total;
};

static bool bank_send(kr_ctx *ctx, struct bank_teller *s)
{
	uint64_t n = s->run->accounts;
	if (n < 2) /* the options ask for at least 2 accounts */
		return false;
	uint64_t src = rnd(&s->rng) % n, dst = rnd(&s->rng) % (n - 1);
	struct bank_transfer t = {.dest = s->accounts[dst >= src ? dst + 1 : dst],
				  .amount = (int64_t)(rnd(&s->rng) % 1000) + 1};
	s->sent++;
	return post(ctx, s->accounts[src], T_TRANSFER, &t, sizeof t);
}

static void bank_teller(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct bank_teller *s = state;
	struct bank_run *run = s->run;
	int64_t balance;

	switch (msg->tag) {
	case T_START: {
		struct bank_account a = {.teller = kr_self(ctx), .balance = BANK_START_BALANCE};
		for (uint64_t i = 0; i < run->accounts; i++)
			if (!spawn(ctx, bank_account, &a, sizeof a, &s->accounts[i]))
				return;
		run->t_start = now();
		while (s->sent < run->window && s->sent < run->transactions)
			if (!bank_send(ctx, s))
				return;
		return;
	}
	case T_REPLY:
		if (s->sent < run->transactions) {
			bank_send(ctx, s);
			s->completed++;
			return;
		}
		if (++s->completed < run->transactions)
			return;
		run->t_end = now();
		run->completed = s->completed;
		for (uint64_t i = 0; i < run->accounts; i++)
			if (!post(ctx, s->accounts[i], T_STOP, NULL, 0))
				return;
		return;
	case T_COUNT:
		if (!take(ctx, msg, &balance, sizeof balance, "teller"))
			return;
		s->total += balance;
		if (++s->reported < run->accounts)
			return;
		run->total = s->total;
		run->reported = s->reported;
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "teller", msg);
}

int run_bank(kr_runtime *rt, const struct params *p)
{
	struct bank_run run = {
	    .accounts = p->accounts, .transactions = p->transactions, .window = p->window};
	struct bank_teller t = {
	    .run = &run, .accounts = malloc(p->accounts * sizeof(kr_pid)), .rng = 1};
	int64_t expected = (int64_t)p->accounts * BANK_START_BALANCE;

	if (!t.accounts)
		return bench_error("malloc", -ENOMEM);
	int status = run_root(rt, bank_teller, &t, sizeof t);
	free(t.accounts);
	if (status)
		return status;
	return report(rt, p, run.t_end - run.t_start, (double)p->transactions,
		      run.completed == p->transactions && run.reported == p->accounts &&
			  run.total == expected,
		      ",\"accounts\":%" PRIu64 ",\"transactions\":%" PRIu64 ",\"window\":%" PRIu64
		      ",\"result\":%" PRId64 ",\"expected\":%" PRId64,
		      p->accounts, p->transactions, p->window, run.total, expected);
}
