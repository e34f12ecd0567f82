/* krilltop-names: a krill program for tests/test_krilltop.sh's --name checks. One busy
 * process, registered "busy-sink" (a producer keeps more than a batch waiting for it, so it is
 * in the top tables), one idle process registered "idle-one" (never in them), and EXTRA more
 * idle ones registered "extra-<i>". Runs until SIGTERM or SECONDS pass, then stops cleanly
 * (its segment goes with it).  usage: krilltop-names [EXTRA [SECONDS]] */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "krill.h"

enum { T_GO = 1, T_FLOOD, T_LAST };

static _Atomic int stop;
static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

/* On T_GO (data: the sink's pid): 299 messages and a T_LAST, whose answer is the next T_GO. */
static void b_producer(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid sink;
	(void)state;
	if (m->tag != T_GO || atomic_load(&stop))
		return;
	memcpy(&sink, m->data, sizeof(sink));
	for (int i = 0; i < 299; i++)
		kr_send(ctx, sink, T_FLOOD, &i, sizeof(i));
	kr_send(ctx, sink, T_LAST, 0, 0);
}

static void b_sink(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid producer, self = kr_self(ctx);
	memcpy(&producer, state, sizeof(producer));
	if (m->tag == T_LAST)
		kr_send(ctx, producer, T_GO, &self, sizeof(self));
}

static void b_idle(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
}

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "krilltop-names: %s: %s\n", what, strerror(-rc));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	int extra = argc > 1 ? atoi(argv[1]) : 0, seconds = argc > 2 ? atoi(argv[2]) : 30;
	kr_config c;
	kr_runtime *rt;
	kr_pid producer, sink, idle;
	kr_config_init(&c);
	c.schedulers = 1;
	c.pin = 0;
	check(kr_runtime_new(&c, &rt), "kr_runtime_new");
	check(kr_rt_spawn(rt, b_producer, 0, 0, &producer), "spawn");
	check(kr_rt_spawn(rt, b_sink, &producer, sizeof(producer), &sink), "spawn");
	check(kr_rt_spawn(rt, b_idle, 0, 0, &idle), "spawn");
	check(kr_register(rt, "busy-sink", sink), "register busy-sink");
	check(kr_register(rt, "idle-one", idle), "register idle-one");
	for (int i = 0; i < extra; i++) {
		char name[32];
		kr_pid p;
		snprintf(name, sizeof(name), "extra-%d", i);
		check(kr_rt_spawn(rt, b_idle, 0, 0, &p), "spawn");
		check(kr_register(rt, name, p), "register");
	}
	signal(SIGTERM, on_term);
	check(kr_start(rt), "kr_start");
	check(kr_rt_send(rt, producer, T_GO, &sink, sizeof(sink)), "send");
	printf("idle-one %llu\n", (unsigned long long)idle);
	fflush(stdout);
	for (int i = 0; i < seconds * 10 && !got_term; i++)
		usleep(100000);
	atomic_store(&stop, 1);
	kr_stop(rt);
	check(kr_wait(rt), "kr_wait");
	kr_runtime_free(rt);
	return 0;
}
