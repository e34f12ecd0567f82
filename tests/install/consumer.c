/* A program built against an installed krill (tests/install/run-install): a client process asks a
 * server process to double a number, gets the answer, and both exit, which ends the run. It also
 * reads a stats snapshot, so the installed krill_stats.h is used too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <krill.h>
#include <krill_stats.h>

enum { T_GO = 1, T_ASK, T_ANSWER };

struct ask {
	kr_pid from;
	uint64_t n;
};

/* Answers one T_ASK with twice its number, then exits. */
static void server(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct ask a;
	uint64_t twice;
	(void)state;
	if (msg->tag != T_ASK || msg->len != sizeof(a))
		return;
	memcpy(&a, msg->data, sizeof(a));
	twice = 2 * a.n;
	kr_send(ctx, a.from, T_ANSWER, &twice, sizeof(twice));
	kr_exit(ctx, KR_NORMAL);
}

/* T_GO carries the server's pid; the answer is stored where the state points. */
static void client(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	uint64_t *result;
	memcpy(&result, state, sizeof(result));
	if (msg->tag == T_GO) {
		struct ask a = {kr_self(ctx), 21};
		kr_pid srv;
		memcpy(&srv, kr_msg_data(msg), sizeof(srv));
		if (kr_send(ctx, srv, T_ASK, &a, sizeof(a)) < 0)
			kr_exit(ctx, KR_REASON_USER);
	} else if (msg->tag == T_ANSWER) {
		memcpy(result, msg->data, sizeof(*result));
		kr_exit(ctx, KR_NORMAL);
	}
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "consumer: %s: %d\n", what, rc);
	return 1;
}

int main(void)
{
	kr_runtime *rt;
	kr_pid srv, cli;
	uint64_t result = 0;
	uint64_t *out = &result;
	int rc;

	if ((rc = kr_runtime_new(NULL, &rt)) < 0)
		return fail("kr_runtime_new", rc);
	if ((rc = kr_rt_spawn(rt, server, NULL, 0, &srv)) < 0 ||
	    (rc = kr_rt_spawn(rt, client, &out, sizeof(out), &cli)) < 0)
		return fail("kr_rt_spawn", rc);
	if ((rc = kr_rt_send(rt, cli, T_GO, &srv, sizeof(srv))) < 0)
		return fail("kr_rt_send", rc);
	if ((rc = kr_start(rt)) < 0)
		return fail("kr_start", rc);
	if ((rc = kr_wait(rt)) < 0)
		return fail("kr_wait", rc);
	if (result != 42)
		return fail("the answer, not 42", (int)result);
	if (kr_alive(rt) != 0)
		return fail("processes left", (int)kr_alive(rt));

	size_t len = kr_stats_size(kr_schedulers(rt));
	kr_stats_header *h = malloc(len);
	if (!h)
		return fail("malloc", 0);
	rc = kr_stats_snapshot(rt, h, len);
	if (rc != (int)len || h->magic != KR_STATS_MAGIC || h->nsched != kr_schedulers(rt))
		return fail("kr_stats_snapshot", rc);
	free(h);
	kr_runtime_free(rt);
	printf("consumer: 21 doubled is %llu\n", (unsigned long long)result);
	return 0;
}
