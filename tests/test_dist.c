/* Tests for the Erlang-distribution node (include/krill_dist.h, dist/):
 * a krill runtime and real Erlang nodes (escripts under tests/dist/, run
 * by `escript` with ERL_FLAGS naming them and their cookie) on 127.0.0.1,
 * with an epmd of our own on a free port (ERL_EPMD_PORT), so parallel
 * runs never meet (tests/dist_harness.h). Every wait is bounded: a
 * child that does not finish is killed and the test fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dist/dist.h"      /* the node's tables: monitors leave nothing behind */
#include "dist/handshake.h" /* our handshake, as a peer that restarted */
#include "krill.h"
#include "krill_dist.h"

#include "dist_harness.h"

#ifndef KV_BIN /* tests/meson.build gives it: examples/kv-failover's krill-kv */
#define KV_BIN "build/examples/kv-failover/krill-kv"
#endif
#define COOKIE "krilltest"
/* Each test's node has a name of its own: a test that fails leaves its
 * runtime behind (cmocka jumps out), and the next must still start. */

/* ---- a runtime with a node ------------------------------------------- */

struct world {
	atomic_int got7, hello_rc, bye, pong;
	char bye_data[8];
	const char *peer; /* from_krill: the Erlang node */
};
static struct world W;

/* ---- Erlang -> krill, and replies ---------------------------------------- */

static void echo(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	if (m->tag == 7 && m->len == 2 && !memcmp(m->data, "hi", 2)) {
		atomic_store(&W.got7, 1);
		return;
	}
	if (m->tag == 9) {
		memcpy(W.bye_data, m->data, m->len < 7 ? m->len : 7);
		atomic_store(&W.bye, 1);
		return;
	}
	if (m->tag != KR_TAG_DIST)
		return;
	const kr_dist_msg *dm = (const kr_dist_msg *)m->data;
	const char *t = kr_dist_msg_term(dm);
	int i = 0, v, ar, rc = -1;
	char atom[MAXATOMLEN];
	erlang_pid ep;
	kr_pid from;
	if (!ei_decode_version(t, &i, &v) && !ei_decode_tuple_header(t, &i, &ar) && ar == 2 &&
	    !ei_decode_atom(t, &i, atom) && !strcmp(atom, "hello") && !ei_decode_pid(t, &i, &ep) &&
	    !kr_node_pid_from_ei(rt, &ep, &from)) {
		/* Bytes to a remote pid: {krill, 8, <<"hi">>} there. */
		rc = kr_send(ctx, from, 8, "hi", 2);
		ei_x_buff x;
		ei_x_new_with_version(&x);
		ei_x_encode_tuple_header(&x, 2);
		ei_x_encode_atom(&x, "reply");
		if (!rc)
			rc = kr_node_x_encode_pid(rt, &x, kr_self(ctx));
		if (!rc)
			rc = kr_node_send_term(ctx, from, &x);
		ei_x_free(&x);
	}
	atomic_store(&W.hello_rc, rc == 0 ? 1 : -1);
}

static void erlang_sends_to_krill_by_name_and_krill_replies(void **st)
{
	memset(&W, 0, sizeof(W));
	kr_pid keep, e;
	kr_runtime *rt = dh_node_up("krilla@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, echo, 0, 0, &e), 0);
	assert_int_equal(kr_register(rt, "echo", e), 0);
	pid_t erl =
	    dh_escript("to_krill.escript", "erla@127.0.0.1", COOKIE, "krilla@127.0.0.1", 0, 0);
	assert_true(erl > 0);
	assert_int_equal(dh_reap(erl, 30000), 0);
	for (int i = 0; i < 250 && !atomic_load(&W.bye); i++)
		sleep_ms(20);
	assert_int_equal(atomic_load(&W.got7), 1);
	assert_int_equal(atomic_load(&W.hello_rc), 1);
	assert_int_equal(atomic_load(&W.bye), 1);
	assert_string_equal(W.bye_data, "bye");
	kr_node_info info;
	assert_int_equal(kr_node_info_get(rt, &info), 0);
	assert_string_equal(info.name, "krilla@127.0.0.1");
	assert_true(info.accepted >= 1);
	assert_true(info.msgs_in >= 3);
	assert_true(info.msgs_out >= 2);
	dh_node_down(rt);
}

/* ---- links and monitors across nodes ------------------------------------------ */

static struct {
	kr_pid victim, stay;
	atomic_int down_bye, exit_bye, down_nc, exit_nc, watch_rc;
} L;

static void target(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == 20)
		kr_exit(ctx, 40); /* {krill, 40} there */
	else
		echo(ctx, st, m);
}

/* The payload of a KR_REASON_TERM: is it the atom a? */
static int term_is_atom(const kr_exit_info *x, const char *a)
{
	int i = 0, v;
	char atom[MAXATOMLEN];
	return x->reason == KR_REASON_TERM && x->len &&
	       !ei_decode_version((const char *)x->payload, &i, &v) &&
	       !ei_decode_atom((const char *)x->payload, &i, atom) && !strcmp(atom, a);
}

static void watcher(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	if (m->tag == KR_TAG_DOWN || m->tag == KR_TAG_EXIT) {
		const kr_exit_info *x = (const kr_exit_info *)m->data;
		int down = m->tag == KR_TAG_DOWN;
		if (x->pid == L.victim && term_is_atom(x, "bye"))
			atomic_store(down ? &L.down_bye : &L.exit_bye, 1);
		if (x->pid == L.stay && x->reason == KR_NOCONNECTION)
			atomic_store(down ? &L.down_nc : &L.exit_nc, 1);
		return;
	}
	if (m->tag != KR_TAG_DIST)
		return;
	const char *t = kr_dist_msg_term((const kr_dist_msg *)m->data);
	int i = 0, v, ar, rc = -1;
	char atom[MAXATOMLEN];
	erlang_pid e[3];
	kr_pid p[3];
	uint64_t ref;
	if (!ei_decode_version(t, &i, &v) && !ei_decode_tuple_header(t, &i, &ar) && ar == 4 &&
	    !ei_decode_atom(t, &i, atom) && !strcmp(atom, "watch") &&
	    !ei_decode_pid(t, &i, &e[0]) && !ei_decode_pid(t, &i, &e[1]) &&
	    !ei_decode_pid(t, &i, &e[2])) {
		rc = 0;
		for (int k = 0; k < 3 && !rc; k++)
			rc = kr_node_pid_from_ei(rt, &e[k], &p[k]);
		L.victim = p[1];
		L.stay = p[2];
		kr_trap_exit(ctx, 1);
		for (int k = 1; k < 3 && !rc; k++) {
			rc = kr_monitor(ctx, p[k], &ref);
			if (!rc)
				rc = kr_link(ctx, p[k]);
		}
		if (!rc)
			rc = kr_send(ctx, p[0], 5, 0, 0);
	}
	atomic_store(&L.watch_rc, rc == 0 ? 1 : -1);
}

static void links_work_both_ways_and_links_and_monitors_end_with_noconnection(void **st)
{
	memset(&W, 0, sizeof(W));
	memset(&L, 0, sizeof(L));
	kr_pid keep, t, w;
	kr_runtime *rt = dh_node_up("krille@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, target, 0, 0, &t), 0);
	assert_int_equal(kr_register(rt, "target", t), 0);
	assert_int_equal(kr_rt_spawn(rt, watcher, 0, 0, &w), 0);
	assert_int_equal(kr_register(rt, "watcher", w), 0);
	pid_t erl = dh_escript("links.escript", "erlg@127.0.0.1", COOKIE, "krille@127.0.0.1", 0, 0);
	assert_true(erl > 0);
	assert_int_equal(dh_reap(erl, 30000), 0);
	for (int i = 0; i < 500 && !(atomic_load(&L.down_nc) && atomic_load(&L.exit_nc)); i++)
		sleep_ms(20);
	assert_int_equal(atomic_load(&L.watch_rc), 1);
	/* DOWN with bye: our handshake offers DFLAG_DIST_MONITOR_NAME, so
	 * erts answers MONITOR_P (ei's did not: no DOWN came but noconnection). */
	assert_int_equal(atomic_load(&L.down_bye), 1);
	assert_int_equal(atomic_load(&L.exit_bye), 1);
	assert_int_equal(atomic_load(&L.down_nc), 1);
	assert_int_equal(atomic_load(&L.exit_nc), 1);
	dh_node_down(rt);
}

/* ---- monitors with Erlang, both ways ------------------------------------------- */

static struct {
	kr_pid erl, dead, kids[4], n, c, d;
	atomic_int down_n, down_c, down_other, hello_rc, watch_rc;
} MO;

/* Exits when told: 1 normal, 2 shutdown, 3 {krill, 40}, 4 {krill, 41}. */
static void dier(kr_ctx *ctx, void *st, const kr_msg *m)
{
	static const uint32_t why[] = {0, KR_NORMAL, KR_SHUTDOWN, 40, 41};
	if (m->tag >= 1 && m->tag <= 4)
		kr_exit(ctx, why[m->tag]);
}

/* Monitor records and references the node holds, all peers. */
static uint32_t monitor_records(kr_runtime *rt)
{
	struct node *nd = kri_dist_node(rt);
	pthread_mutex_lock(&nd->mu);
	uint32_t n = nd->inrefs_live;
	for (uint32_t i = 0; i < nd->npeers; i++)
		for (uint32_t k = 0; k < nd->peers[i]->nrecs; k++)
			n += nd->peers[i]->recs[k].kind != REC_LINK;
	pthread_mutex_unlock(&nd->mu);
	return n;
}

static int send_pids(kr_ctx *ctx)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	ei_x_buff x;
	ei_x_new_with_version(&x);
	ei_x_encode_tuple_header(&x, 6);
	ei_x_encode_atom(&x, "pids");
	int rc = 0;
	for (int k = 0; k < 4 && !rc; k++)
		rc = kr_node_x_encode_pid(rt, &x, MO.kids[k]);
	if (!rc)
		rc = kr_node_x_encode_pid(rt, &x, MO.dead);
	if (!rc)
		rc = kr_node_send_term(ctx, MO.erl, &x);
	ei_x_free(&x);
	return rc;
}

static void mon(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	uint64_t ref;
	if (m->tag == KR_TAG_DOWN) {
		const kr_exit_info *x = (const kr_exit_info *)m->data;
		if (x->pid == MO.dead) /* dead now: Erlang may monitor it */
			atomic_store(&MO.hello_rc, send_pids(ctx) == 0 ? 1 : -1);
		else if (x->pid == MO.n && x->reason == KR_NORMAL)
			atomic_store(&MO.down_n, 1);
		else if (x->pid == MO.c && term_is_atom(x, "custom"))
			atomic_store(&MO.down_c, 1);
		else
			atomic_store(&MO.down_other, 1);
		if (atomic_load(&MO.down_n) && atomic_load(&MO.down_c))
			kr_send(ctx, MO.erl, 6, 0, 0);
		return;
	}
	if (m->tag != KR_TAG_DIST)
		return;
	const char *t = kr_dist_msg_term((const kr_dist_msg *)m->data);
	int i = 0, v, ar, rc = -1;
	char atom[MAXATOMLEN];
	erlang_pid e[4];
	if (ei_decode_version(t, &i, &v) || ei_decode_tuple_header(t, &i, &ar) ||
	    ei_decode_atom(t, &i, atom) || ei_decode_pid(t, &i, &e[0]) ||
	    kr_node_pid_from_ei(rt, &e[0], &MO.erl))
		return;
	if (!strcmp(atom, "hello")) {
		for (int k = 0; k < 4; k++)
			kr_spawn(ctx, dier, 0, 0, &MO.kids[k]);
		rc = kr_spawn(ctx, dier, 0, 0, &MO.dead);
		if (!rc)
			rc = kr_monitor(ctx, MO.dead, &ref);
		if (!rc)
			rc = kr_send(ctx, MO.dead, 1, 0, 0);
		if (rc)
			atomic_store(&MO.hello_rc, -1);
	} else if (!strcmp(atom, "watch") && ar == 5) {
		rc = 0;
		for (int k = 1; k < 4 && !rc; k++)
			rc = ei_decode_pid(t, &i, &e[k]) ? -1 : 0;
		if (!rc)
			rc = kr_node_pid_from_ei(rt, &e[1], &MO.n) ||
			     kr_node_pid_from_ei(rt, &e[2], &MO.c) ||
			     kr_node_pid_from_ei(rt, &e[3], &MO.d);
		if (!rc)
			rc = kr_monitor(ctx, MO.n, &ref) || kr_monitor(ctx, MO.c, &ref) ||
			     kr_monitor(ctx, MO.d, &ref) || kr_demonitor(ctx, ref);
		if (!rc)
			rc = kr_send(ctx, MO.erl, 5, 0, 0);
		atomic_store(&MO.watch_rc, rc == 0 ? 1 : -1);
	} else if (!strcmp(atom, "check")) {
		kr_send(ctx, MO.erl, monitor_records(rt) == 0 ? 7 : 8, 0, 0);
	}
}

static void monitors_work_both_ways_with_every_reason_and_demonitor(void **st)
{
	memset(&MO, 0, sizeof(MO));
	kr_pid keep, p, named;
	kr_runtime *rt = dh_node_up("krillmon@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, mon, 0, 0, &p), 0);
	assert_int_equal(kr_register(rt, "mon", p), 0);
	assert_int_equal(kr_rt_spawn(rt, dier, 0, 0, &named), 0);
	assert_int_equal(kr_register(rt, "named", named), 0);
	pid_t erl =
	    dh_escript("monitors.escript", "erlmon@127.0.0.1", COOKIE, "krillmon@127.0.0.1", 0, 0);
	assert_true(erl > 0);
	assert_int_equal(dh_reap(erl, 60000), 0);
	assert_int_equal(atomic_load(&MO.hello_rc), 1);
	assert_int_equal(atomic_load(&MO.watch_rc), 1);
	assert_int_equal(atomic_load(&MO.down_n), 1);
	assert_int_equal(atomic_load(&MO.down_c), 1);
	/* No DOWN for the demonitored one (nor any other). */
	assert_int_equal(atomic_load(&MO.down_other), 0);
	/* The connection gone, nothing is left either. */
	for (int i = 0; i < 250 && monitor_records(rt); i++)
		sleep_ms(20);
	assert_int_equal(monitor_records(rt), 0);
	dh_node_down(rt);
}

/* ---- unlink with Erlang's link protocol (UNLINK_ID, UNLINK_ID_ACK) ------------- */

static struct {
	kr_pid unln;
	atomic_int ready, exits, died, hello_rc, victim_rc;
} U;

/* Link records the node holds, all peers: links, and unlinks awaiting
 * their ack. */
static uint32_t link_records(kr_runtime *rt)
{
	struct node *nd = kri_dist_node(rt);
	pthread_mutex_lock(&nd->mu);
	uint32_t n = 0;
	for (uint32_t i = 0; i < nd->npeers; i++)
		for (uint32_t k = 0; k < nd->peers[i]->nrecs; k++)
			n += nd->peers[i]->recs[k].kind == REC_LINK ||
			     nd->peers[i]->recs[k].kind == REC_UNLINK;
	pthread_mutex_unlock(&nd->mu);
	return n;
}

/* unlt (state 1: traps exits, monitors unln) and unln (state 0) of
 * unlinks.escript: each counts what it should never get. */
static void unl(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	int trap = *(int *)st;
	uint64_t ref;
	if (m->tag == 1) { /* from the test, before Erlang comes */
		if (trap) {
			kr_trap_exit(ctx, 1);
			if (kr_monitor(ctx, U.unln, &ref))
				return;
		}
		atomic_fetch_add(&U.ready, 1);
		return;
	}
	if (m->tag == KR_TAG_EXIT)
		atomic_fetch_add(&U.exits, 1);
	if (m->tag == KR_TAG_DOWN)
		atomic_store(&U.died, 1);
	if (m->tag != KR_TAG_DIST)
		return;
	const char *t = kr_dist_msg_term((const kr_dist_msg *)m->data);
	int i = 0, v, ar, rc = -1;
	char atom[MAXATOMLEN];
	erlang_pid e[3];
	kr_pid from, vp, xp;
	if (ei_decode_version(t, &i, &v) || ei_decode_tuple_header(t, &i, &ar) ||
	    ei_decode_atom(t, &i, atom) || ei_decode_pid(t, &i, &e[0]) ||
	    kr_node_pid_from_ei(rt, &e[0], &from))
		return;
	if (!strcmp(atom, "hello")) {
		ei_x_buff x;
		ei_x_new_with_version(&x);
		ei_x_encode_tuple_header(&x, 2);
		ei_x_encode_atom(&x, "pid");
		rc = kr_node_x_encode_pid(rt, &x, kr_self(ctx));
		if (!rc)
			rc = kr_node_send_term(ctx, from, &x);
		ei_x_free(&x);
		if (rc)
			atomic_store(&U.hello_rc, -1);
	} else if (!strcmp(atom, "victim") && ar == 4) {
		/* v: linked, then unlinked. x: linked, told to exit, unlinked
		 * (its exit signal, if it comes, comes after the unlink). */
		rc = ei_decode_pid(t, &i, &e[1]) || ei_decode_pid(t, &i, &e[2]) ||
		     kr_node_pid_from_ei(rt, &e[1], &vp) || kr_node_pid_from_ei(rt, &e[2], &xp);
		if (!rc)
			rc = kr_link(ctx, vp) || kr_unlink(ctx, vp) || kr_link(ctx, xp) ||
			     kr_send(ctx, xp, 1, 0, 0) || kr_unlink(ctx, xp);
		if (!rc)
			rc = kr_send(ctx, from, 5, 0, 0);
		if (rc)
			atomic_store(&U.victim_rc, -1);
	} else if (!strcmp(atom, "check")) {
		int clean = !atomic_load(&U.exits) && !atomic_load(&U.died) && !link_records(rt);
		kr_send(ctx, from, clean ? 7 : 8, 0, 0);
	}
}

static void unlink_works_both_ways_with_erlangs_link_protocol(void **st)
{
	memset(&U, 0, sizeof(U));
	kr_pid keep, t;
	int trap = 1, notrap = 0;
	kr_runtime *rt = dh_node_up("krillu@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, unl, &notrap, sizeof(notrap), &U.unln), 0);
	assert_int_equal(kr_register(rt, "unln", U.unln), 0);
	assert_int_equal(kr_rt_spawn(rt, unl, &trap, sizeof(trap), &t), 0);
	assert_int_equal(kr_register(rt, "unlt", t), 0);
	assert_int_equal(kr_rt_send(rt, U.unln, 1, 0, 0), 0);
	assert_int_equal(kr_rt_send(rt, t, 1, 0, 0), 0);
	for (int i = 0; i < 250 && atomic_load(&U.ready) < 2; i++)
		sleep_ms(20);
	assert_int_equal(atomic_load(&U.ready), 2);
	pid_t erl =
	    dh_escript("unlinks.escript", "erlu@127.0.0.1", COOKIE, "krillu@127.0.0.1", 0, 0);
	assert_true(erl > 0);
	assert_int_equal(dh_reap(erl, 60000), 0);
	assert_int_equal(atomic_load(&U.hello_rc), 0);
	assert_int_equal(atomic_load(&U.victim_rc), 0);
	/* The Erlang node gone: a link left on the krill side would now
	 * bring noconnection (an EXIT to unlt, the end of unln). */
	assert_int_equal(dh_wait_unconnected(rt, 10000), 0);
	sleep_ms(500);
	assert_int_equal(atomic_load(&U.exits), 0);
	assert_int_equal(atomic_load(&U.died), 0);
	dh_node_down(rt);
}

/* ---- the link protocol on the wire, against a peer of our own ----------------- */

static struct {
	kr_pid k;
	atomic_int ready, exits;
} UW;

/* Traps exits; `unlink` from a pid unlinks it, `check` answers 7 (no exit
 * signal came, the node holds no link record) or 8. */
static void unlw(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	if (m->tag == 1) {
		kr_trap_exit(ctx, 1);
		atomic_store(&UW.ready, 1);
	} else if (m->tag == KR_TAG_EXIT) {
		atomic_fetch_add(&UW.exits, 1);
	} else if (m->tag == KR_TAG_DIST) {
		const kr_dist_msg *dm = (const kr_dist_msg *)m->data;
		const char *t = kr_dist_msg_term(dm);
		int i = 0, v;
		char atom[MAXATOMLEN];
		if (ei_decode_version(t, &i, &v) || ei_decode_atom(t, &i, atom))
			return;
		if (!strcmp(atom, "unlink"))
			kr_unlink(ctx, dm->from);
		else if (!strcmp(atom, "check"))
			kr_send(ctx, dm->from, !atomic_load(&UW.exits) && !link_records(rt) ? 7 : 8,
				0, 0);
	}
}

/* The peer sends {Op, [Id,] From, To, [Reason]}, and the message atom msg
 * if given. */
static void wire_put(int fd, long op, unsigned long long id, const erlang_pid *from,
		     const erlang_pid *to, const char *reason, const char *msg)
{
	ei_x_buff x;
	assert_int_equal(kri_dist_frame_begin(&x), 0);
	ei_x_encode_tuple_header(&x, 3 + !!id + !!reason);
	ei_x_encode_long(&x, op);
	if (id)
		ei_x_encode_ulonglong(&x, id);
	ei_x_encode_pid(&x, from);
	ei_x_encode_pid(&x, to);
	if (reason)
		ei_x_encode_atom(&x, reason);
	if (msg) {
		ei_x_encode_version(&x);
		ei_x_encode_atom(&x, msg);
	}
	kri_dist_frame_end(&x);
	assert_int_equal(write(fd, x.buff, (size_t)x.index), x.index);
	ei_x_free(&x);
}

static int read_full(int fd, void *b, size_t n)
{
	for (size_t got = 0; got < n;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10000) != 1)
			return -1;
		ssize_t r = read(fd, (char *)b + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* The node's next control message (ticks skipped), within 10 s: its op
 * (-1: none), the id of an UNLINK_ID or its ack, the pids (From, To; for
 * a SEND only To) and, for a SEND of {krill, Tag, _}, the tag. */
static long wire_get(int fd, unsigned long long *id, erlang_pid *from, erlang_pid *to,
		     unsigned long *tag)
{
	uint32_t len;
	*id = 0;
	memset(from, 0, sizeof(*from));
	memset(to, 0, sizeof(*to));
	do {
		if (read_full(fd, &len, 4))
			return -1;
		len = ntohl(len);
	} while (!len);
	char *b = malloc(len);
	long op = -1;
	int i = 1, v, ar;
	char atom[MAXATOMLEN];
	if (b && !read_full(fd, b, len) && b[0] == 'p' && !ei_decode_version(b, &i, &v) &&
	    !ei_decode_tuple_header(b, &i, &ar) && !ei_decode_long(b, &i, &op)) {
		if (op == DOP_UNLINK_ID || op == DOP_UNLINK_ID_ACK)
			ei_decode_ulonglong(b, &i, id);
		if (op == 2) { /* SEND {2, '', To} {krill, Tag, Binary} */
			if (ei_skip_term(b, &i) || ei_decode_pid(b, &i, to) ||
			    ei_decode_version(b, &i, &v) || ei_decode_tuple_header(b, &i, &ar) ||
			    ei_decode_atom(b, &i, atom) || ei_decode_ulong(b, &i, tag))
				op = -1;
		} else if (ei_decode_pid(b, &i, from) || ei_decode_pid(b, &i, to)) {
			op = -1;
		}
	}
	free(b);
	return op;
}

static void unlink_follows_erlangs_link_protocol_on_the_wire(void **st)
{
	memset(&UW, 0, sizeof(UW));
	kr_pid keep;
	kr_runtime *rt = dh_node_up("krillw@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, unlw, 0, 0, &UW.k), 0);
	assert_int_equal(kr_rt_send(rt, UW.k, 1, 0, 0), 0);
	for (int i = 0; i < 250 && !atomic_load(&UW.ready); i++)
		sleep_ms(20);
	struct kri_hs_self fake = {"fakew@127.0.0.1", COOKIE, 1};
	struct kri_hs_peer hp;
	int fd = kri_hs_connect(&fake, "krillw@127.0.0.1", kri_hs_now_ms() + 5000, &hp);
	assert_true(fd >= 0);
	assert_true(hp.flags & DFLAG_UNLINK_ID);
	erlang_pid fp = {.num = 7, .creation = 1}, kp, a = {0}, b = {0};
	snprintf(fp.node, sizeof(fp.node), "fakew@127.0.0.1");
	assert_int_equal(kr_node_pid_to_ei(rt, UW.k, &kp), 0);
	unsigned long long id = 0, id2 = 0;
	unsigned long tag = 0;

	/* The peer links, unlinks (UNLINK_ID 41): acked with 41, from kp to
	 * fp; the link is gone, so its exit signal then does nothing. */
	wire_put(fd, 1, 0, &fp, &kp, 0, 0);
	wire_put(fd, DOP_UNLINK_ID, 41, &fp, &kp, 0, 0);
	assert_int_equal(wire_get(fd, &id, &a, &b, &tag), DOP_UNLINK_ID_ACK);
	assert_int_equal(id, 41);
	assert_int_equal(a.num, kp.num);
	assert_int_equal(a.serial, kp.serial);
	assert_int_equal(b.num, fp.num);
	wire_put(fd, 3, 0, &fp, &kp, "boom", 0);

	/* It links again; we unlink: UNLINK_ID, an id of our own. Before its
	 * ack: an ack of another id, a LINK (crossing our unlink: ignored)
	 * and an exit signal (ignored: we are unlinked), then the ack. */
	wire_put(fd, 1, 0, &fp, &kp, 0, 0);
	wire_put(fd, 22, 0, &fp, &kp, 0, "unlink"); /* SEND_SENDER */
	assert_int_equal(wire_get(fd, &id, &a, &b, &tag), DOP_UNLINK_ID);
	assert_true(id != 0);
	assert_int_equal(a.num, kp.num);
	assert_int_equal(b.num, fp.num);
	wire_put(fd, DOP_UNLINK_ID_ACK, id + 1000, &fp, &kp, 0, 0);
	wire_put(fd, 1, 0, &fp, &kp, 0, 0);
	wire_put(fd, 3, 0, &fp, &kp, "boom", 0);
	wire_put(fd, DOP_UNLINK_ID_ACK, id, &fp, &kp, 0, 0);
	wire_put(fd, 22, 0, &fp, &kp, 0, "check");
	assert_int_equal(wire_get(fd, &id2, &a, &b, &tag), 2);
	assert_int_equal(tag, 7);

	/* Linked, unlinked by us, acked: a fresh id, and nothing is left. */
	wire_put(fd, 1, 0, &fp, &kp, 0, 0);
	wire_put(fd, 22, 0, &fp, &kp, 0, "unlink");
	assert_int_equal(wire_get(fd, &id2, &a, &b, &tag), DOP_UNLINK_ID);
	assert_true(id2 != 0 && id2 != id);
	wire_put(fd, DOP_UNLINK_ID_ACK, id2, &fp, &kp, 0, 0);
	wire_put(fd, 22, 0, &fp, &kp, 0, "check");
	assert_int_equal(wire_get(fd, &id2, &a, &b, &tag), 2);
	assert_int_equal(tag, 7);

	/* A peer without DFLAG_UNLINK_ID (none since OTP 23.3; made so here
	 * by hand) gets the old UNLINK {4, From, To}, and nothing waits. */
	struct node *nd = kri_dist_node(rt);
	uint32_t pi;
	pthread_mutex_lock(&nd->mu);
	assert_non_null(kri_dist_peer(nd, "fakew@127.0.0.1", &pi));
	nd->peers[pi]->flags &= ~DFLAG_UNLINK_ID;
	pthread_mutex_unlock(&nd->mu);
	wire_put(fd, 1, 0, &fp, &kp, 0, 0);
	wire_put(fd, 22, 0, &fp, &kp, 0, "unlink");
	assert_int_equal(wire_get(fd, &id2, &a, &b, &tag), 4);
	assert_int_equal(a.num, kp.num);
	assert_int_equal(b.num, fp.num);
	wire_put(fd, 22, 0, &fp, &kp, 0, "check");
	assert_int_equal(wire_get(fd, &id2, &a, &b, &tag), 2);
	assert_int_equal(tag, 7);

	/* The connection gone: no link was left to bring noconnection. */
	close(fd);
	assert_int_equal(dh_wait_unconnected(rt, 10000), 0);
	sleep_ms(300);
	assert_int_equal(atomic_load(&UW.exits), 0);
	dh_node_down(rt);
}

/* ---- krill -> Erlang by name ------------------------------------------------ */

static void pinger(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	if (m->tag == 1) {
		ei_x_buff x;
		ei_x_new_with_version(&x);
		ei_x_encode_tuple_header(&x, 2);
		ei_x_encode_atom(&x, "ping");
		int rc = kr_node_x_encode_pid(rt, &x, kr_self(ctx));
		if (!rc)
			rc = kr_node_send_name(ctx, "erlbox", W.peer, &x);
		ei_x_free(&x);
		if (rc)
			atomic_store(&W.pong, rc);
		return;
	}
	if (m->tag != KR_TAG_DIST)
		return;
	const kr_dist_msg *dm = (const kr_dist_msg *)m->data;
	const char *t = kr_dist_msg_term(dm);
	int i = 0, v, ar, type, size;
	long blen;
	char atom[MAXATOMLEN], bin[8];
	if (!ei_decode_version(t, &i, &v) && !ei_decode_tuple_header(t, &i, &ar) && ar == 2 &&
	    !ei_decode_atom(t, &i, atom) && !strcmp(atom, "pong") &&
	    !ei_get_type(t, &i, &type, &size) && size == 2 &&
	    !ei_decode_binary(t, &i, bin, &blen) && blen == 2 && !memcmp(bin, "ok", 2))
		atomic_store(&W.pong, 1);
}

static void krill_sends_to_erlang_by_name_and_gets_the_reply(void **st)
{
	memset(&W, 0, sizeof(W));
	W.peer = "erlb@127.0.0.1";
	kr_pid keep, p;
	kr_runtime *rt = dh_node_up("krillb@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	int out;
	pid_t erl = dh_escript("from_krill.escript", W.peer, COOKIE, 0, 0, &out);
	assert_true(erl > 0);
	assert_int_equal(dh_ready(out, 30000), 0);
	assert_int_equal(kr_rt_spawn(rt, pinger, 0, 0, &p), 0);
	assert_int_equal(kr_rt_send(rt, p, 1, 0, 0), 0); /* connects on first use */
	assert_int_equal(dh_reap(erl, 30000), 0);
	for (int i = 0; i < 250 && !atomic_load(&W.pong); i++)
		sleep_ms(20);
	assert_int_equal(atomic_load(&W.pong), 1);
	close(out);
	dh_node_down(rt);
}

/* ---- cookies ------------------------------------------------------------------ */

static void a_wrong_cookie_is_refused_on_both_sides(void **st)
{
	kr_pid keep;
	kr_runtime *rt = dh_node_up("krillc@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	/* Erlang -> krill: the Erlang side gets pang, ours counts a refusal. */
	pid_t erl =
	    dh_escript("ping.escript", "erlc@127.0.0.1", "notthecookie", "krillc@127.0.0.1", 0, 0);
	assert_true(erl > 0);
	assert_int_equal(dh_reap(erl, 30000), 0);
	kr_node_info info;
	for (int i = 0; i < 250; i++) {
		assert_int_equal(kr_node_info_get(rt, &info), 0);
		if (info.refused)
			break;
		sleep_ms(20);
	}
	assert_true(info.refused >= 1);
	assert_int_equal(info.last_refusal, -EACCES);
	assert_int_equal(info.connections, 0);
	/* krill -> Erlang: the handshake fails with -EACCES. */
	int out;
	erl = dh_escript("idle.escript", "erld@127.0.0.1", "notthecookie", 0, 0, &out);
	assert_true(erl > 0);
	assert_int_equal(dh_ready(out, 30000), 0);
	assert_int_equal(kr_node_connect(rt, "erld@127.0.0.1"), -EACCES);
	assert_int_equal(kr_node_info_get(rt, &info), 0);
	assert_int_equal(info.connections, 0);
	dh_kill(erl, out);
	dh_node_down(rt);
}

/* ---- a node nobody knows ------------------------------------------------------- */

static void a_node_epmd_does_not_know_is_unreachable_not_refused(void **st)
{
	kr_pid keep;
	kr_runtime *rt = dh_node_up("krillu@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	/* epmd answers, without that name: -EHOSTUNREACH (ei's handshake gave
	 * -EACCES, as for a wrong cookie). */
	assert_int_equal(kr_node_connect(rt, "nobody@127.0.0.1"), -EHOSTUNREACH);
	/* No epmd there at all. */
	assert_int_equal(kr_node_connect(rt, "nobody@127.0.0.2"), -EHOSTUNREACH);
	kr_node_info info;
	assert_int_equal(kr_node_info_get(rt, &info), 0);
	assert_int_equal(info.connections, 0);
	assert_int_equal(info.refused, 0); /* ours failed; nobody was refused here */
	dh_node_down(rt);
}

/* ---- a handshake broken on purpose ------------------------------------------ */

/* A TCP connection to our own node's port. */
static int to_port(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Send bytes, then wait until the node has counted n refusals. */
static kr_node_info refused_after(kr_runtime *rt, uint16_t port, const void *b, size_t len,
				  uint64_t n)
{
	int fd = to_port(port);
	assert_int_equal(write(fd, b, len), (ssize_t)len);
	kr_node_info info;
	for (int i = 0; i < 500; i++) {
		assert_int_equal(kr_node_info_get(rt, &info), 0);
		if (info.refused >= n)
			break;
		sleep_ms(20);
	}
	close(fd);
	assert_int_equal(info.refused, n);
	return info;
}

/* A fake node "liar": published to epmd with ei, answering our handshake
 * with what the test says. */
static struct {
	int lfd;
	const unsigned char *say[2];
	size_t len[2];
} LIAR;

static void *liar(void *arg)
{
	for (int k = 0; k < 2; k++) {
		int fd = accept(LIAR.lfd, 0, 0);
		unsigned char b[512];
		if (fd < 0)
			return 0;
		ssize_t n = read(fd, b, sizeof(b)); /* send_name, whole on loopback */
		if (n > 0)
			n = write(fd, LIAR.say[k], LIAR.len[k]);
		(void)n;
		sleep_ms(200); /* let it read before the close */
		close(fd);
	}
	return 0;
}

static void the_handshake_refuses_what_breaks_it_on_both_sides(void **st)
{
	kr_pid keep;
	kr_runtime *rt = dh_node_up("krillh@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	kr_node_info info;
	assert_int_equal(kr_node_info_get(rt, &info), 0);
	uint16_t port = info.port;
	/* Accepting: a length over any handshake message's; version 5's
	 * send_name; a peer that goes away after its send_name. */
	static const unsigned char huge[] = {0xff, 0xff, 'N', 0, 0, 0, 0};
	info = refused_after(rt, port, huge, sizeof(huge), 1);
	assert_int_equal(info.last_refusal, -EPROTO);
	static const unsigned char v5[] = {0, 10, 'n', 0, 5, 0, 0, 0, 4, 'a', '@', 'b'};
	info = refused_after(rt, port, v5, sizeof(v5), 2);
	assert_int_equal(info.last_refusal, -EPROTO);
	/* A name whose length runs past the message. */
	static const unsigned char runs[] = {0, 18, 'N', 0, 0, 0,    0,    0x04, 0,   0,
					     0, 0,  0,   0, 1, 0xff, 0xff, 'a',  '@', 'b'};
	info = refused_after(rt, port, runs, sizeof(runs), 3);
	assert_int_equal(info.last_refusal, -EPROTO);
	assert_int_equal(info.connections, 0);
	/* Connecting: a node that says not_allowed, then one whose challenge
	 * claims a name longer than its message (flags as OTP 25's short
	 * form, DFLAG_MANDATORY_25_DIGEST: only the length is wrong). */
	ei_cnode ec;
	struct in_addr lo = {htonl(INADDR_LOOPBACK)};
	assert_true(ei_connect_xinit(&ec, "127.0.0.1", "liar", "liar@127.0.0.1", &lo, COOKIE, 9) >=
		    0);
	int lport = 0;
	LIAR.lfd = ei_xlisten(&ec, &lo, &lport, 5);
	assert_true(LIAR.lfd >= 0);
	int efd = ei_publish_tmo(&ec, lport, 5000);
	assert_true(efd >= 0);
	static const unsigned char no[] = {0,   12,  's', 'n', 'o', 't', '_',
					   'a', 'l', 'l', 'o', 'w', 'e', 'd'};
	static const unsigned char bad[] = {0, 3, 's',  'o', 'k',  0,    23,  'N', 0,   0,
					    0, 0, 0x04, 0,   0,    0,    1,   2,   3,   4,
					    0, 0, 0,    1,   0x7f, 0xff, 'l', 'i', 'a', 'r'};
	LIAR.say[0] = no;
	LIAR.len[0] = sizeof(no);
	LIAR.say[1] = bad;
	LIAR.len[1] = sizeof(bad);
	pthread_t t;
	assert_int_equal(pthread_create(&t, 0, liar, 0), 0);
	assert_int_equal(kr_node_connect(rt, "liar@127.0.0.1"), -ECONNREFUSED);
	assert_int_equal(kr_node_connect(rt, "liar@127.0.0.1"), -EPROTO);
	pthread_join(t, 0);
	close(efd);
	close(LIAR.lfd);
	assert_int_equal(kr_node_info_get(rt, &info), 0);
	assert_int_equal(info.connections, 0);
	dh_node_down(rt);
}

/* ---- a peer killed --------------------------------------------------------- */

static void a_killed_peer_is_noticed_and_the_node_stays_up(void **st)
{
	kr_pid keep;
	kr_runtime *rt = dh_node_up("krilld@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	int out;
	pid_t erl = dh_escript("idle.escript", "erle@127.0.0.1", COOKIE, 0, 0, &out);
	assert_true(erl > 0);
	assert_int_equal(dh_ready(out, 30000), 0);
	assert_int_equal(kr_node_connect(rt, "erle@127.0.0.1"), 0);
	assert_int_equal(kr_node_connect(rt, "erle@127.0.0.1"), 0); /* connected already */
	kr_node_info info;
	assert_int_equal(kr_node_info_get(rt, &info), 0);
	assert_int_equal(info.connections, 1);
	kill(erl, SIGKILL);
	dh_reap(erl, 5000);
	assert_int_equal(dh_wait_unconnected(rt, 10000), 0);
	/* The node goes on: a second peer connects. */
	close(out);
	erl = dh_escript("idle.escript", "erlf@127.0.0.1", COOKIE, 0, 0, &out);
	assert_true(erl > 0);
	assert_int_equal(dh_ready(out, 30000), 0);
	assert_int_equal(kr_node_connect(rt, "erlf@127.0.0.1"), 0);
	dh_kill(erl, out);
	dh_node_down(rt);
}

/* ---- a peer back before its old connection is seen gone ----------------------- */

static void a_peer_that_reconnects_while_we_hold_its_old_connection_replaces_it(void **st)
{
	kr_pid keep;
	kr_runtime *rt = dh_node_up("krillg@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	struct kri_hs_self ghost = {"ghost@127.0.0.1", COOKIE, 1};
	struct kri_hs_peer hp;
	int old = kri_hs_connect(&ghost, "krillg@127.0.0.1", kri_hs_now_ms() + 5000, &hp);
	assert_true(old >= 0);
	assert_string_equal(hp.name, "krillg@127.0.0.1");
	assert_true(hp.flags & DFLAG_DIST_MONITOR_NAME);
	kr_node_info info;
	for (int i = 0; i < 500; i++) {
		assert_int_equal(kr_node_info_get(rt, &info), 0);
		if (info.connections)
			break;
		sleep_ms(20);
	}
	assert_int_equal(info.connections, 1);
	/* The same node again, as after a restart the old connection did not
	 * show: "alive", and our side (as erts) says true; the old one ends. */
	struct kri_hs_self ghost2 = {"ghost@127.0.0.1", COOKIE, 2};
	int fd = kri_hs_connect(&ghost2, "krillg@127.0.0.1", kri_hs_now_ms() + 5000, &hp);
	assert_true(fd >= 0);
	struct pollfd pf = {.fd = old, .events = POLLIN};
	char b[64];
	assert_int_equal(poll(&pf, 1, 10000), 1);
	assert_int_equal(read(old, b, sizeof(b)), 0); /* closed by the node */
	for (int i = 0; i < 500; i++) {
		assert_int_equal(kr_node_info_get(rt, &info), 0);
		if (info.connections == 1 && info.accepted == 2)
			break;
		sleep_ms(20);
	}
	assert_int_equal(info.accepted, 2);
	assert_int_equal(info.connections, 1);
	assert_int_equal(info.refused, 0);
	close(old);
	close(fd);
	dh_node_down(rt);
}

/* ---- two krill nodes, no Erlang between ------------------------------------- */

static struct {
	const char *b;      /* node B's name */
	kr_pid svc, mortal; /* B's processes, as A's client sees them */
	kr_pid mortal_b;    /* mortal, as B knows it */
	atomic_int welcomed, got_hi, down40, exit40, down_nc, exit_nc, rc;
} K;

/* A term {Atom, Pid} in x. */
static void atom_pid(kr_ctx *ctx, ei_x_buff *x, const char *a, kr_pid p)
{
	ei_x_new_with_version(x);
	ei_x_encode_tuple_header(x, 2);
	ei_x_encode_atom(x, a);
	kr_node_x_encode_pid(kr_runtime_of(ctx), x, p);
}

/* Decode {Atom, Pid}: 0 and the pid (made a kr_pid) when the atom is a. */
static int get_atom_pid(kr_ctx *ctx, const kr_msg *m, const char *a, kr_pid *out)
{
	if (m->tag != KR_TAG_DIST)
		return -1;
	const char *t = kr_dist_msg_term((const kr_dist_msg *)m->data);
	int i = 0, v, ar;
	char atom[MAXATOMLEN];
	erlang_pid e;
	if (ei_decode_version(t, &i, &v) || ei_decode_tuple_header(t, &i, &ar) || ar != 2 ||
	    ei_decode_atom(t, &i, atom) || strcmp(atom, a) || ei_decode_pid(t, &i, &e))
		return -1;
	return kr_node_pid_from_ei(kr_runtime_of(ctx), &e, out);
}

/* B's "svc" and "mortal": answer {hello, From} with the bytes "hi" and
 * {welcome, Self}; "mortal" exits with 40 on tag 20. */
static void svc_b(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_pid from;
	if (m->tag == 20) {
		kr_exit(ctx, 40);
		return;
	}
	if (get_atom_pid(ctx, m, "hello", &from))
		return;
	ei_x_buff x;
	atom_pid(ctx, &x, "welcome", kr_self(ctx));
	int rc = kr_send(ctx, from, 8, "hi", 2);
	if (!rc)
		rc = kr_node_send_term(ctx, from, &x);
	ei_x_free(&x);
	if (rc)
		atomic_store(&K.rc, rc);
}

/* A's client: says hello to both by name, then links to and monitors
 * each; asks mortal to exit. */
static void client_a(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_pid p;
	uint64_t ref;
	int rc = 0;
	if (m->tag == 1) {
		kr_trap_exit(ctx, 1);
		ei_x_buff x;
		atom_pid(ctx, &x, "hello", kr_self(ctx));
		rc = kr_node_send_name(ctx, "svc", K.b, &x);
		if (!rc)
			rc = kr_node_send_name(ctx, "mortal", K.b, &x);
		ei_x_free(&x);
	} else if (m->tag == 8 && m->len == 2 && !memcmp(m->data, "hi", 2)) {
		atomic_fetch_add(&K.got_hi, 1);
	} else if (!get_atom_pid(ctx, m, "welcome", &p)) {
		rc = kr_link(ctx, p);
		if (!rc)
			rc = kr_monitor(ctx, p, &ref);
		erlang_pid e; /* which one: B's pid is id = slot, serial = generation */
		kr_node_pid_to_ei(kr_runtime_of(ctx), p, &e);
		if (e.num == (uint32_t)K.mortal_b && e.serial == (uint32_t)(K.mortal_b >> 32))
			K.mortal = p;
		else
			K.svc = p;
		if (!rc && p == K.mortal)
			rc = kr_send(ctx, p, 20, 0, 0);
		atomic_fetch_add(&K.welcomed, 1);
	} else if (m->tag == KR_TAG_DOWN || m->tag == KR_TAG_EXIT) {
		const kr_exit_info *x = (const kr_exit_info *)m->data;
		int down = m->tag == KR_TAG_DOWN;
		if (x->pid == K.mortal && x->reason == 40)
			atomic_store(down ? &K.down40 : &K.exit40, 1);
		if (x->pid == K.svc && x->reason == KR_NOCONNECTION)
			atomic_store(down ? &K.down_nc : &K.exit_nc, 1);
	}
	if (rc)
		atomic_store(&K.rc, rc);
}

/* ---- a peer that sends a malformed frame ------------------------------------ */

static struct {
	kr_pid peer;
	atomic_int linked, exit_nc, down_nc;
} M;

/* {hello, Pid} from the fake peer: link to it and monitor it. */
static void guard(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	if (m->tag == KR_TAG_DOWN || m->tag == KR_TAG_EXIT) {
		const kr_exit_info *x = (const kr_exit_info *)m->data;
		if (x->pid == M.peer && x->reason == KR_NOCONNECTION)
			atomic_store(m->tag == KR_TAG_DOWN ? &M.down_nc : &M.exit_nc, 1);
		return;
	}
	if (m->tag != KR_TAG_DIST)
		return;
	const char *t = kr_dist_msg_term((const kr_dist_msg *)m->data);
	int i = 0, v, ar, rc = -1;
	char atom[MAXATOMLEN];
	erlang_pid ep;
	uint64_t ref;
	if (!ei_decode_version(t, &i, &v) && !ei_decode_tuple_header(t, &i, &ar) && ar == 2 &&
	    !ei_decode_atom(t, &i, atom) && !strcmp(atom, "hello") && !ei_decode_pid(t, &i, &ep) &&
	    !kr_node_pid_from_ei(rt, &ep, &M.peer)) {
		kr_trap_exit(ctx, 1);
		rc = kr_link(ctx, M.peer);
		if (!rc)
			rc = kr_monitor(ctx, M.peer, &ref);
	}
	atomic_store(&M.linked, rc == 0 ? 1 : -1);
}

/* A C node of ei's own (the handshake done by ei) connected to name, or -1. */
static int fake_peer(ei_cnode *ec, const char *alive, const char *name)
{
	char full[64];
	snprintf(full, sizeof(full), "%s@127.0.0.1", alive);
	if (ei_connect_xinit(ec, "127.0.0.1", alive, full, NULL, COOKIE, 7) < 0)
		return -1;
	return ei_connect(ec, (char *)name);
}

static void a_malformed_frame_closes_the_connection_with_noconnection(void **st)
{
	kr_pid keep, g;
	kr_runtime *rt = dh_node_up("krillm@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, guard, 0, 0, &g), 0);
	assert_int_equal(kr_register(rt, "guard", g), 0);
	ei_cnode ec;
	int fd = fake_peer(&ec, "fakep", "krillm@127.0.0.1");
	assert_true(fd >= 0);
	ei_x_buff x;
	ei_x_new_with_version(&x);
	ei_x_encode_tuple_header(&x, 2);
	ei_x_encode_atom(&x, "hello");
	ei_x_encode_pid(&x, ei_self(&ec));
	assert_int_equal(ei_reg_send(&ec, fd, "guard", x.buff, x.index), 0);
	ei_x_free(&x);
	assert_int_equal(dh_wait_for(&M.linked, 1, 10000), 1);
	/* A control message of an op nobody knows, {99, <<...>>}, whose binary claims 2^31 - 1
	 * bytes: ei_skip_term would step over it without a look. */
	static const unsigned char bad[] = {0,  0,  0,   12,   'p',  131,  104,  2,
					    97, 99, 109, 0x7f, 0xff, 0xff, 0xff, 1};
	assert_int_equal(write(fd, bad, sizeof(bad)), (ssize_t)sizeof(bad));
	assert_int_equal(dh_wait_for(&M.exit_nc, 1, 10000), 1);
	assert_int_equal(dh_wait_for(&M.down_nc, 1, 10000), 1);
	/* The socket is closed on our side: the peer reads to its end. */
	char buf[256];
	ssize_t r = -1;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (poll(&p, 1, 5000) == 1 && (r = read(fd, buf, sizeof(buf))) > 0)
		;
	assert_int_equal(r, 0);
	close(fd);
	/* The node stays up: the same peer connects again. */
	kr_node_info info;
	assert_int_equal(kr_node_info_get(rt, &info), 0);
	assert_int_equal(info.connections, 0);
	fd = fake_peer(&ec, "fakeq", "krillm@127.0.0.1");
	assert_true(fd >= 0);
	close(fd);
	dh_node_down(rt);
}

static void two_krill_nodes_send_link_monitor_and_see_noconnection(void **st)
{
	memset(&K, 0, sizeof(K));
	K.b = "krillkb@127.0.0.1";
	kr_pid keep_a, keep_b, svc, mortal, client;
	kr_runtime *a = dh_node_up("krillka@127.0.0.1", COOKIE, 0, &keep_a, 0, 0);
	kr_runtime *b = dh_node_up(K.b, COOKIE, 0, &keep_b, 0, 0);
	assert_int_equal(kr_rt_spawn(b, svc_b, 0, 0, &svc), 0);
	assert_int_equal(kr_register(b, "svc", svc), 0);
	assert_int_equal(kr_rt_spawn(b, svc_b, 0, 0, &mortal), 0);
	assert_int_equal(kr_register(b, "mortal", mortal), 0);
	K.mortal_b = mortal;
	assert_int_equal(kr_rt_spawn(a, client_a, 0, 0, &client), 0);
	assert_int_equal(kr_rt_send(a, client, 1, 0, 0), 0); /* connects on first use */
	assert_int_equal(dh_wait_for(&K.welcomed, 2, 10000), 2);
	assert_int_equal(dh_wait_for(&K.got_hi, 2, 10000), 2); /* bytes, no encoding step */
	/* A monitor and a link between krill nodes carry the real reason. */
	assert_int_equal(dh_wait_for(&K.down40, 1, 10000), 1);
	assert_int_equal(dh_wait_for(&K.exit40, 1, 10000), 1);
	assert_int_equal(atomic_load(&K.down_nc), 0);
	kr_node_info info;
	assert_int_equal(kr_node_info_get(a, &info), 0);
	assert_int_equal(info.connections, 1);
	/* B's runtime goes: A's client sees noconnection for svc. */
	dh_node_down(b);
	assert_int_equal(dh_wait_for(&K.down_nc, 1, 10000), 1);
	assert_int_equal(dh_wait_for(&K.exit_nc, 1, 10000), 1);
	assert_int_equal(atomic_load(&K.rc), 0);
	for (int i = 0; i < 250; i++) {
		assert_int_equal(kr_node_info_get(a, &info), 0);
		if (!info.connections)
			break;
		sleep_ms(20);
	}
	assert_int_equal(info.connections, 0);
	dh_node_down(a);
}

/* ---- node monitors ----------------------------------------------------------- */

static struct {
	const char *node;
	atomic_int up, down, rc;
} NM;

static void node_watcher(kr_ctx *ctx, void *st, const kr_msg *m)
{
	if (m->tag == 1)
		atomic_store(&NM.rc, kr_node_monitor(ctx, NM.node, 1) == 0 ? 1 : -1);
	else if (m->tag == 2)
		atomic_store(&NM.rc, kr_node_monitor(ctx, NM.node, 0) == 0 ? 2 : -2);
	else if (m->tag == 3)
		kr_exit(ctx, KR_NORMAL);
	else if ((m->tag == KR_TAG_NODEUP || m->tag == KR_TAG_NODEDOWN) &&
		 !strcmp((const char *)m->data, NM.node))
		atomic_fetch_add(m->tag == KR_TAG_NODEUP ? &NM.up : &NM.down, 1);
}

static void node_monitors_see_an_erlang_node_come_and_go(void **st)
{
	memset(&NM, 0, sizeof(NM));
	NM.node = "erlw@127.0.0.1";
	kr_pid keep, w;
	kr_runtime *rt = dh_node_up("krillw@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, node_watcher, 0, 0, &w), 0);
	/* Nobody there: watching tries to connect, and says nodedown. */
	assert_int_equal(kr_rt_send(rt, w, 1, 0, 0), 0);
	assert_int_equal(dh_wait_for(&NM.down, 1, 10000), 1);
	assert_int_equal(atomic_load(&NM.up), 0);
	/* The node starts; a second watch (a no-op) connects: nodeup. */
	int out;
	pid_t erl = dh_escript("idle.escript", NM.node, COOKIE, 0, 0, &out);
	assert_true(erl > 0);
	assert_int_equal(dh_ready(out, 30000), 0);
	assert_int_equal(kr_rt_send(rt, w, 1, 0, 0), 0);
	assert_int_equal(dh_wait_for(&NM.up, 1, 10000), 1);
	/* It stops: nodedown. */
	dh_kill(erl, out);
	assert_int_equal(dh_wait_for(&NM.down, 2, 10000), 2);
	/* Off: nothing more comes. */
	assert_int_equal(kr_rt_send(rt, w, 2, 0, 0), 0);
	assert_int_equal(dh_wait_for(&NM.rc, 2, 5000), 2);
	sleep_ms(200);
	assert_int_equal(atomic_load(&NM.up), 1);
	assert_int_equal(atomic_load(&NM.down), 2);
	dh_node_down(rt);
}

/* The node's watches now (kr_node_info's count), once it has settled on want
 * (at most ms). */
static uint32_t watches(kr_runtime *rt, uint32_t want, unsigned ms)
{
	kr_node_info info;
	for (unsigned t = 0;; t += 10) {
		assert_int_equal(kr_node_info_get(rt, &info), 0);
		if (info.watches == want || t >= ms)
			return info.watches;
		sleep_ms(10);
	}
}

/* A watch lasts until it is turned off or its process exits: an exited
 * watcher leaves nothing in the node, however it watched (on, off and on
 * again; two nodes). */
static void a_watch_goes_when_its_process_exits(void **st)
{
	memset(&NM, 0, sizeof(NM));
	NM.node = "erlx@127.0.0.1"; /* nobody: each watch says nodedown */
	kr_pid keep, w, w2;
	kr_runtime *rt = dh_node_up("krillx@127.0.0.1", COOKIE, 0, &keep, 0, 0);
	assert_int_equal(kr_rt_spawn(rt, node_watcher, 0, 0, &w), 0);
	assert_int_equal(kr_rt_spawn(rt, node_watcher, 0, 0, &w2), 0);
	assert_int_equal(kr_rt_send(rt, w, 1, 0, 0), 0);
	assert_int_equal(dh_wait_for(&NM.rc, 1, 5000), 1);
	assert_int_equal(watches(rt, 1, 5000), 1);
	/* Off, then on again: one watch. */
	assert_int_equal(kr_rt_send(rt, w, 2, 0, 0), 0);
	assert_int_equal(watches(rt, 0, 5000), 0);
	atomic_store(&NM.rc, 0);
	assert_int_equal(kr_rt_send(rt, w, 1, 0, 0), 0);
	assert_int_equal(dh_wait_for(&NM.rc, 1, 5000), 1);
	assert_int_equal(watches(rt, 1, 5000), 1);
	/* A second watcher, then the first exits: its watch goes, the
	 * other's stays. */
	atomic_store(&NM.rc, 0);
	assert_int_equal(kr_rt_send(rt, w2, 1, 0, 0), 0);
	assert_int_equal(dh_wait_for(&NM.rc, 1, 5000), 1);
	assert_int_equal(watches(rt, 2, 5000), 2);
	assert_int_equal(kr_rt_send(rt, w, 3, 0, 0), 0);
	assert_int_equal(watches(rt, 1, 5000), 1);
	assert_int_equal(kr_rt_send(rt, w2, 3, 0, 0), 0);
	assert_int_equal(watches(rt, 0, 5000), 0);
	dh_node_down(rt);
}

/* ---- failover: examples/kv-failover, two krill OS processes, an Erlang client ---- */

/* A child's stdout, read a line at a time into all. */
struct out {
	int fd;
	char all[65536];
	size_t n;
};

/* Read until a line that starts with prefix arrives (at most ms): 0, or -1. */
static int wait_line(struct out *o, const char *prefix, unsigned ms)
{
	size_t seen = 0; /* start of the line not yet matched */
	for (unsigned t = 0;; t += 20) {
		while (seen < o->n) {
			char *nl = memchr(o->all + seen, '\n', o->n - seen);
			if (!nl)
				break;
			if (!strncmp(o->all + seen, prefix, strlen(prefix)))
				return 0;
			seen = (size_t)(nl - o->all) + 1;
		}
		if (t >= ms)
			return -1;
		struct pollfd p = {.fd = o->fd, .events = POLLIN};
		if (poll(&p, 1, 20) == 1) {
			ssize_t r = read(o->fd, o->all + o->n, sizeof(o->all) - 1 - o->n);
			if (r <= 0)
				return -1;
			o->n += (size_t)r;
			o->all[o->n] = 0;
		}
	}
}

static pid_t run_out(char *const argv[], struct out *o)
{
	memset(o, 0, sizeof(*o));
	pid_t pid = dh_spawn(argv, &o->fd);
	assert_true(pid > 0);
	return pid;
}

/* Children of the failover test, killed by its teardown if an assertion
 * left them behind. */
static pid_t kv_kids[3];

static int kv_teardown(void **st)
{
	for (int i = 0; i < 3; i++)
		if (kv_kids[i] > 0) {
			kill(kv_kids[i], SIGKILL);
			waitpid(kv_kids[i], 0, 0);
			kv_kids[i] = 0;
		}
	return 0;
}

static void the_standby_takes_over_a_killed_primary_and_no_acked_write_is_lost(void **st)
{
	static struct out a, b, c;
	setenv("KRILL_COOKIE", COOKIE, 1);
	char *pa[] = {KV_BIN, "primary", "kva@127.0.0.1", 0};
	char *pb[] = {KV_BIN, "standby", "kvb@127.0.0.1", "kva@127.0.0.1", 0};
	pid_t ap = kv_kids[0] = run_out(pa, &a);
	assert_int_equal(wait_line(&a, "ready", 10000), 0);
	pid_t bp = kv_kids[1] = run_out(pb, &b);
	assert_int_equal(wait_line(&b, "standby ready", 10000), 0);
	/* The client: an Erlang node writing 1..300, its stdout on c. */
	char path[512];
	snprintf(path, sizeof(path), "%s/kv_client.escript", DIST_SCRIPTS);
	setenv("ERL_FLAGS", "-name kvc@127.0.0.1 -setcookie " COOKIE, 1);
	char *pc[] = {"/usr/bin/env", "escript", path, "kva@127.0.0.1", "kvb@127.0.0.1", "300", 0};
	pid_t cp = kv_kids[2] = run_out(pc, &c);
	unsetenv("ERL_FLAGS");
	assert_int_equal(wait_line(&c, "found kva@127.0.0.1", 30000), 0);
	assert_int_equal(wait_line(&c, "acked 50", 30000), 0);
	kill(ap, SIGKILL); /* mid-stream: the client writes on */
	assert_int_equal(dh_reap(ap, 5000), 128 + SIGKILL);
	kv_kids[0] = 0;
	assert_int_equal(wait_line(&b, "took over noconnection", 15000), 0);
	assert_int_equal(wait_line(&c, "down noconnection", 15000), 0);
	assert_int_equal(wait_line(&c, "found kvb@127.0.0.1", 15000), 0);
	assert_int_equal(wait_line(&c, "ok ", 60000), 0);
	kv_kids[2] = 0;
	assert_int_equal(dh_reap(cp, 10000), 0);
	assert_non_null(strstr(c.all, "acked 300\n"));
	kv_kids[1] = 0;
	kill(bp, SIGKILL);
	dh_reap(bp, 5000);
	close(a.fd);
	close(b.fd);
	close(c.fd);
	unsetenv("KRILL_COOKIE");
}

/* ---- arguments ------------------------------------------------------------------ */

static void bad_arguments_are_refused(void **st)
{
	kr_config c;
	kr_config_init(&c);
	c.schedulers = 1;
	c.stats = 0;
	kr_runtime *rt;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	kr_node_config nc;
	kr_node_config_init(&nc);
	nc.cookie = COOKIE;
	assert_int_equal(kr_node_start(0, &nc), -EINVAL);
	assert_int_equal(kr_node_start(rt, 0), -EINVAL);
	assert_int_equal(kr_node_start(rt, &nc), -EINVAL); /* no name */
	nc.name = "nohost@";
	assert_int_equal(kr_node_start(rt, &nc), -EINVAL);
	nc.name = "@host";
	assert_int_equal(kr_node_start(rt, &nc), -EINVAL);
	nc.name = "a@b@c";
	assert_int_equal(kr_node_start(rt, &nc), -EINVAL);
	nc.name = "k@127.0.0.1";
	nc.listen = "not-an-address";
	assert_int_equal(kr_node_start(rt, &nc), -EINVAL);
	nc.listen = 0;
	nc.cookie = "";
	assert_int_equal(kr_node_start(rt, &nc), -EINVAL);
	kr_node_info info;
	assert_int_equal(kr_node_info_get(rt, &info), -EINVAL); /* not a node */
	assert_int_equal(kr_node_connect(rt, "x@127.0.0.1"), -EINVAL);
	nc.cookie = COOKIE;
	assert_int_equal(kr_node_start(rt, &nc), 0);
	assert_int_equal(kr_node_start(rt, &nc), -EALREADY);
	assert_int_equal(kr_node_info_get(rt, &info), 0);
	assert_true(info.creation != 0);
	assert_true(info.port != 0);
	assert_int_equal(kr_node_connect(rt, "nohost"), -EINVAL);
	/* A second runtime cannot take the name: epmd has it. */
	kr_runtime *rt2;
	assert_int_equal(kr_runtime_new(&c, &rt2), 0);
	assert_int_equal(kr_node_start(rt2, &nc), -EEXIST);
	kr_runtime_free(rt2);
	/* Pids both ways: ours stays ours, another node's is remote. */
	erlang_pid e;
	kr_pid back, local = (uint64_t)3 << 32 | 5;
	assert_int_equal(kr_node_pid_to_ei(rt, local, &e), 0);
	assert_string_equal(e.node, "k@127.0.0.1");
	assert_int_equal(e.num, 5);
	assert_int_equal(e.serial, 3);
	assert_int_equal(e.creation, info.creation);
	assert_int_equal(kr_node_pid_from_ei(rt, &e, &back), 0);
	assert_int_equal(back, local);
	snprintf(e.node, sizeof(e.node), "other@127.0.0.1");
	kr_pid r1, r2;
	assert_int_equal(kr_node_pid_from_ei(rt, &e, &r1), 0);
	assert_int_equal(kr_node_pid_from_ei(rt, &e, &r2), 0);
	assert_int_equal(r1, r2); /* the same Erlang pid, the same kr_pid */
	assert_true(r1 != local);
	erlang_pid e2;
	assert_int_equal(kr_node_pid_to_ei(rt, r1, &e2), 0);
	assert_string_equal(e2.node, "other@127.0.0.1");
	assert_int_equal(e2.num, 5);
	assert_int_equal(kr_node_pid_to_ei(rt, r1 + 1000, &e2), -ESRCH);
	/* An earlier incarnation of ours: a pid that is not local. */
	snprintf(e.node, sizeof(e.node), "k@127.0.0.1");
	e.creation = info.creation + 1;
	assert_int_equal(kr_node_pid_from_ei(rt, &e, &r2), 0);
	assert_true(r2 != local && r2 != r1);
	/* The key that stands for names monitored on a peer: no pid has it. */
	snprintf(e.node, sizeof(e.node), "other@127.0.0.1");
	e.serial = 0xffffffffu;
	e.creation = 0;
	assert_int_equal(kr_node_pid_from_ei(rt, &e, &r2), -EINVAL);
	kr_runtime_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bad_arguments_are_refused),
	    cmocka_unit_test(erlang_sends_to_krill_by_name_and_krill_replies),
	    cmocka_unit_test(krill_sends_to_erlang_by_name_and_gets_the_reply),
	    cmocka_unit_test(links_work_both_ways_and_links_and_monitors_end_with_noconnection),
	    cmocka_unit_test(monitors_work_both_ways_with_every_reason_and_demonitor),
	    cmocka_unit_test(unlink_works_both_ways_with_erlangs_link_protocol),
	    cmocka_unit_test(unlink_follows_erlangs_link_protocol_on_the_wire),
	    cmocka_unit_test(a_wrong_cookie_is_refused_on_both_sides),
	    cmocka_unit_test(a_node_epmd_does_not_know_is_unreachable_not_refused),
	    cmocka_unit_test(the_handshake_refuses_what_breaks_it_on_both_sides),
	    cmocka_unit_test(a_killed_peer_is_noticed_and_the_node_stays_up),
	    cmocka_unit_test(a_peer_that_reconnects_while_we_hold_its_old_connection_replaces_it),
	    cmocka_unit_test(two_krill_nodes_send_link_monitor_and_see_noconnection),
	    cmocka_unit_test(node_monitors_see_an_erlang_node_come_and_go),
	    cmocka_unit_test(a_watch_goes_when_its_process_exits),
	    cmocka_unit_test(a_malformed_frame_closes_the_connection_with_noconnection),
	    cmocka_unit_test_teardown(
		the_standby_takes_over_a_killed_primary_and_no_acked_write_is_lost, kv_teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	if (getenv("KRILL_TEST_FILTER")) /* one test by name, when at work on it */
		cmocka_set_test_filter(getenv("KRILL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, dh_group_setup, dh_group_teardown);
}
