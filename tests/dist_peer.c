/* dist-peer: a small krill node in a process of its own, for tests that kill a peer
 * (tests/test_dist_flap.c: SIGKILL and restart under the same name) and for krilltop's node
 * view (tests/test_krilltop.sh). It registers "box", which answers {ping, From, N} with
 * {pong, Self, N} to From after monitoring From (so the other node holds a monitor of ours),
 * prints "ready" and runs until SIGTERM or SECONDS pass; {stop, N} ends box with reason N.
 * With "plain", box only ever sends (no monitor): a peer whose live processes never speak but
 * in plain sends, which carry no sender. The cookie: KRILL_COOKIE.
 * usage: dist-peer NAME@HOST [SECONDS [plain]] */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "krill.h"
#include "krill_dist.h"

static volatile sig_atomic_t got_term;
static int plain; /* box monitors nobody */

static void on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

static void box(kr_ctx *ctx, void *st, const kr_msg *m)
{
	(void)st;
	if (m->tag != KR_TAG_DIST)
		return;
	kr_runtime *rt = kr_runtime_of(ctx);
	const char *t = kr_dist_msg_term((const kr_dist_msg *)m->data);
	int i = 0, v, ar;
	char atom[MAXATOMLEN];
	erlang_pid e;
	long n;
	kr_pid from;
	if (ei_decode_version(t, &i, &v) || ei_decode_tuple_header(t, &i, &ar) ||
	    ei_decode_atom(t, &i, atom))
		return;
	if (ar == 2 && !strcmp(atom, "stop") && !ei_decode_long(t, &i, &n)) {
		kr_exit(ctx, (uint32_t)n);
		return;
	}
	if (ar != 3 || strcmp(atom, "ping") || ei_decode_pid(t, &i, &e) ||
	    ei_decode_long(t, &i, &n) || kr_node_pid_from_ei(rt, &e, &from))
		return;
	uint64_t ref;
	if (!plain)
		kr_monitor(ctx, from, &ref);
	ei_x_buff x;
	ei_x_new_with_version(&x);
	ei_x_encode_tuple_header(&x, 3);
	ei_x_encode_atom(&x, "pong");
	kr_node_x_encode_pid(rt, &x, kr_self(ctx));
	ei_x_encode_long(&x, n);
	kr_node_send_term(ctx, from, &x);
	ei_x_free(&x);
}

static void keeper(kr_ctx *ctx, void *st, const kr_msg *m)
{
	(void)st;
	(void)m;
	kr_exit(ctx, KR_NORMAL);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: dist-peer NAME@HOST [SECONDS [plain]]\n");
		return 2;
	}
	unsigned seconds = argc > 2 ? (unsigned)strtoul(argv[2], 0, 10) : 60;
	plain = argc > 3 && !strcmp(argv[3], "plain");
	signal(SIGTERM, on_term);
	kr_config c;
	kr_config_init(&c);
	c.schedulers = 1;
	kr_runtime *rt;
	kr_pid keep, b;
	if (kr_runtime_new(&c, &rt) || kr_rt_spawn(rt, keeper, 0, 0, &keep) ||
	    kr_rt_spawn(rt, box, 0, 0, &b) || kr_register(rt, "box", b) || kr_start(rt))
		return 1;
	kr_node_config nc;
	kr_node_config_init(&nc);
	nc.name = argv[1];
	/* The incarnation killed before us may still hold the name in epmd for a moment (until
	 * epmd sees its socket close): try again for up to 2 s. */
	int rc = kr_node_start(rt, &nc);
	struct timespec pause = {0, 20000000};
	for (int k = 0; rc == -EEXIST && k < 100; k++) {
		nanosleep(&pause, 0);
		rc = kr_node_start(rt, &nc);
	}
	if (rc) {
		fprintf(stderr, "dist-peer: kr_node_start: %s\n", strerror(-rc));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	struct timespec tick = {0, 50000000};
	for (unsigned k = 0; k < 20 * seconds && !got_term; k++)
		nanosleep(&tick, 0);
	kr_rt_send(rt, keep, 1, 0, 0);
	kr_stop(rt);
	kr_wait(rt);
	kr_runtime_free(rt);
	return 0;
}
