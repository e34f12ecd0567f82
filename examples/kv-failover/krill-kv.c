/* krill-kv: a key-value service that another machine takes over (issue
 * #16's failover). The primary is registered as `kv` on its node; a
 * standby on another node monitors it and gets a copy of every write
 * before the primary acknowledges it. When the primary's node goes (DOWN
 * with KR_NOCONNECTION, or any other reason), the standby registers `kv`
 * on its own node and serves what it holds: every acknowledged write.
 *
 *   KRILL_COOKIE=secret krill-kv primary kv_a@127.0.0.1
 *   KRILL_COOKIE=secret krill-kv standby kv_b@127.0.0.1 kv_a@127.0.0.1
 *
 * Clients (Erlang, Elixir or krill) speak terms to {kv, Node}:
 *   {put, From, Key, Value}  ->  From ! {kv_ok, Key}   (after the copy)
 *   {get, From, Key}         ->  From ! {kv_val, Key, Value | undefined}
 *   {whois, From}            ->  From ! {kv_pid, Pid}  (to monitor it)
 * Keys and values are integers. tests/dist/kv_client.escript is a client.
 * It prints "ready", "standby ready" and "took over <reason>" lines. */
#include <ei.h>
#include <krill.h>
#include <krill_dist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { START = 1 };

struct kv {
	int standby;         /* 1: copying the primary; 0: serving */
	const char *primary; /* the primary's node (standby only) */
	kr_pid peer;         /* the primary (standby) or the standby (primary), or 0 */
	uint64_t seq;        /* copies sent (primary) */
	struct pend {        /* writes waiting for the standby's copy, in order */
		uint64_t seq;
		kr_pid client;
		long key;
	} * pend;
	size_t npend, cpend;
	struct kvp {
		long key, val;
	} * kv; /* the store (small: a linear search will do) */
	size_t n, cap;
};

static long *find(struct kv *s, long key)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->kv[i].key == key)
			return &s->kv[i].val;
	return NULL;
}

static int store(struct kv *s, long key, long val)
{
	long *v = find(s, key);
	if (v) {
		*v = val;
		return 0;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct kvp *k = realloc(s->kv, cap * sizeof(*k));
		if (!k)
			return -1;
		s->kv = k;
		s->cap = cap;
	}
	s->kv[s->n++] = (struct kvp){key, val};
	return 0;
}

/* Send {Atom, A, B} (b_is_undefined: the atom undefined for B) to pid. */
static void reply3(kr_ctx *ctx, kr_pid to, const char *atom, long a, const long *b)
{
	ei_x_buff x;
	ei_x_new_with_version(&x);
	ei_x_encode_tuple_header(&x, b ? 3 : 2);
	ei_x_encode_atom(&x, atom);
	ei_x_encode_long(&x, a);
	if (b)
		ei_x_encode_long(&x, *b);
	kr_node_send_term(ctx, to, &x);
	ei_x_free(&x);
}

static void reply_undefined(kr_ctx *ctx, kr_pid to, long key)
{
	ei_x_buff x;
	ei_x_new_with_version(&x);
	ei_x_encode_tuple_header(&x, 3);
	ei_x_encode_atom(&x, "kv_val");
	ei_x_encode_long(&x, key);
	ei_x_encode_atom(&x, "undefined");
	kr_node_send_term(ctx, to, &x);
	ei_x_free(&x);
}

static void send_pid(kr_ctx *ctx, kr_pid to, const char *atom, kr_pid p)
{
	ei_x_buff x;
	ei_x_new_with_version(&x);
	ei_x_encode_tuple_header(&x, 2);
	ei_x_encode_atom(&x, atom);
	kr_node_x_encode_pid(kr_runtime_of(ctx), &x, p);
	kr_node_send_term(ctx, to, &x);
	ei_x_free(&x);
}

/* Primary: copy key/val to the standby as {rep, Seq, Key, Value}. */
static void copy(kr_ctx *ctx, struct kv *s, long key, long val)
{
	ei_x_buff x;
	ei_x_new_with_version(&x);
	ei_x_encode_tuple_header(&x, 4);
	ei_x_encode_atom(&x, "rep");
	ei_x_encode_ulong(&x, ++s->seq);
	ei_x_encode_long(&x, key);
	ei_x_encode_long(&x, val);
	kr_node_send_term(ctx, s->peer, &x);
	ei_x_free(&x);
}

static void take_over(kr_ctx *ctx, struct kv *s, const char *why)
{
	s->standby = 0;
	s->peer = 0;
	if (kr_register(kr_runtime_of(ctx), "kv", kr_self(ctx)) == 0)
		printf("took over %s\n", why);
	else
		printf("could not take over\n");
	fflush(stdout);
}

/* One term from a client, the primary or the standby. */
static void term(kr_ctx *ctx, struct kv *s, const char *t)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	int i = 0, v, ar;
	char op[MAXATOMLEN];
	erlang_pid e;
	kr_pid from = 0;
	long key = 0, val = 0;
	unsigned long seq;
	if (ei_decode_version(t, &i, &v) || ei_decode_tuple_header(t, &i, &ar) || ar < 2 ||
	    ei_decode_atom(t, &i, op))
		return;
	if (!strcmp(op, "rep") && ar == 4 && s->standby) { /* {rep, Seq, K, V} */
		if (ei_decode_ulong(t, &i, &seq) || ei_decode_long(t, &i, &key) ||
		    ei_decode_long(t, &i, &val) || store(s, key, val))
			return;
		ei_x_buff x;
		ei_x_new_with_version(&x);
		ei_x_encode_tuple_header(&x, 2);
		ei_x_encode_atom(&x, "rep_ok");
		ei_x_encode_ulong(&x, seq);
		kr_node_send_term(ctx, s->peer, &x);
		ei_x_free(&x);
		return;
	}
	if (!strcmp(op, "rep_ok") && ar == 2 && !s->standby) { /* the copy is made */
		if (ei_decode_ulong(t, &i, &seq))
			return;
		size_t k = 0;
		while (k < s->npend && s->pend[k].seq <= seq) {
			reply3(ctx, s->pend[k].client, "kv_ok", s->pend[k].key, NULL);
			k++;
		}
		memmove(s->pend, s->pend + k, (s->npend - k) * sizeof(*s->pend));
		s->npend -= k;
		return;
	}
	if (ei_decode_pid(t, &i, &e) || kr_node_pid_from_ei(rt, &e, &from))
		return;
	if (!strcmp(op, "primary") && s->standby) { /* {primary, Pid}: watch it */
		uint64_t ref;
		s->peer = from;
		if (kr_monitor(ctx, from, &ref) == 0)
			printf("standby ready\n");
		fflush(stdout);
	} else if (!strcmp(op, "standby") && !s->standby) { /* {standby, Pid} */
		uint64_t ref;
		s->peer = from;
		kr_monitor(ctx, from, &ref);
		send_pid(ctx, from, "primary", kr_self(ctx));
		for (size_t k = 0; k < s->n; k++) /* what it missed */
			copy(ctx, s, s->kv[k].key, s->kv[k].val);
	} else if (!strcmp(op, "whois") && !s->standby) {
		send_pid(ctx, from, "kv_pid", kr_self(ctx));
	} else if (!strcmp(op, "get") && ar == 3 && !s->standby) {
		if (ei_decode_long(t, &i, &key))
			return;
		long *p = find(s, key);
		if (p)
			reply3(ctx, from, "kv_val", key, p);
		else
			reply_undefined(ctx, from, key);
	} else if (!strcmp(op, "put") && ar == 4 && !s->standby) {
		if (ei_decode_long(t, &i, &key) || ei_decode_long(t, &i, &val) ||
		    store(s, key, val))
			return;
		if (!s->peer) { /* alone: acknowledged now */
			reply3(ctx, from, "kv_ok", key, NULL);
			return;
		}
		if (s->npend == s->cpend) {
			size_t cap = s->cpend ? 2 * s->cpend : 64;
			struct pend *p = realloc(s->pend, cap * sizeof(*p));
			if (!p)
				return;
			s->pend = p;
			s->cpend = cap;
		}
		copy(ctx, s, key, val);
		s->pend[s->npend++] = (struct pend){s->seq, from, key};
	}
}

static void kv(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct kv *s = *(struct kv **)state;
	if (m->tag == START) { /* standby: announce ourselves to the primary */
		ei_x_buff x;
		ei_x_new_with_version(&x);
		ei_x_encode_tuple_header(&x, 2);
		ei_x_encode_atom(&x, "standby");
		kr_node_x_encode_pid(kr_runtime_of(ctx), &x, kr_self(ctx));
		if (kr_node_send_name(ctx, "kv", s->primary, &x))
			take_over(ctx, s, "no primary");
		ei_x_free(&x);
	} else if (m->tag == KR_TAG_DOWN) {
		const kr_exit_info *x = (const kr_exit_info *)m->data;
		if (x->pid != s->peer)
			return;
		if (s->standby)
			take_over(ctx, s, x->reason == KR_NOCONNECTION ? "noconnection" : "down");
		else { /* the standby went: go on alone, answer who waits */
			s->peer = 0;
			for (size_t k = 0; k < s->npend; k++)
				reply3(ctx, s->pend[k].client, "kv_ok", s->pend[k].key, NULL);
			s->npend = 0;
		}
	} else if (m->tag == KR_TAG_DIST) {
		term(ctx, s, kr_dist_msg_term((const kr_dist_msg *)m->data));
	}
}

int main(int argc, char **argv)
{
	int standby = argc == 4 && !strcmp(argv[1], "standby");
	if (!standby && !(argc == 3 && !strcmp(argv[1], "primary"))) {
		fprintf(stderr,
			"usage: krill-kv primary NAME@HOST | standby NAME@HOST PRIMARY@HOST\n"
			"(cookie: KRILL_COOKIE or ~/.erlang.cookie; epmd: ERL_EPMD_PORT)\n");
		return 2;
	}
	struct kv *s = calloc(1, sizeof(*s));
	kr_runtime *rt;
	kr_pid pid;
	kr_config c;
	kr_config_init(&c);
	c.schedulers = 1;
	if (!s || kr_runtime_new(&c, &rt) < 0) {
		free(s);
		return 1;
	}
	s->standby = standby;
	s->primary = standby ? argv[3] : NULL;
	if (kr_rt_spawn(rt, kv, &s, sizeof(s), &pid) < 0 || kr_start(rt) < 0) {
		kr_runtime_free(rt);
		free(s);
		return 1;
	}
	kr_node_config nc;
	kr_node_config_init(&nc);
	nc.name = argv[2];
	int rc = kr_node_start(rt, &nc);
	if (rc < 0) {
		fprintf(stderr, "krill-kv: kr_node_start: %s\n", strerror(-rc));
		return 1;
	}
	if (!standby && kr_register(rt, "kv", pid) < 0)
		return 1;
	if (standby && kr_rt_send(rt, pid, START, NULL, 0) < 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	kr_wait(rt); /* the service runs until killed */
	kr_runtime_free(rt);
	return 0;
}
