/* hello: the README's first program. One process answers pings, another
 * pings it three times and then ends both; main waits for them.
 *   cc -std=c11 hello.c $(pkg-config --cflags --libs krill) -o hello */
#include <krill.h>
#include <stdio.h>
#include <string.h>

enum { GO = 1, PING, PONG };

struct pinger {
	kr_pid peer; /* whom to ping */
	int pongs;   /* answers so far */
};

static void ponger(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid from;
	(void)state; /* it keeps none */

	memcpy(&from, m->data, sizeof(from)); /* a PING carries its sender */
	kr_send(ctx, from, PONG, NULL, 0);
}

static void pinger(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct pinger *p = state; /* the process's own copy, kept between messages */
	kr_pid self = kr_self(ctx);
	if (m->tag == PONG)
		printf("pong %d\n", ++p->pongs);
	if (p->pongs == 3) {
		kr_send_exit(ctx, p->peer, KR_SHUTDOWN); /* as Erlang's exit(Pid, shutdown) */
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	kr_send(ctx, p->peer, PING, &self, sizeof(self)); /* the bytes are copied */
}

int main(void)
{
	kr_runtime *rt;
	kr_pid a, b;
	if (kr_runtime_new(NULL, &rt) < 0 || kr_rt_spawn(rt, ponger, NULL, 0, &a) < 0)
		return 1;
	struct pinger st = {a, 0};
	if (kr_rt_spawn(rt, pinger, &st, sizeof(st), &b) < 0 || kr_rt_send(rt, b, GO, NULL, 0) < 0)
		return 1;
	int rc = kr_run(rt); /* returns when no process is left */
	kr_runtime_free(rt);
	return rc < 0;
}
