/* serve: the listener and the connection supervisor of krill's benchmark servers, written on
 * krill.h alone as a user of the library would.
 *
 * The listener accepts (multishot) and asks the supervisor for one KR_TEMPORARY child per
 * connection with kr_sup_start_child. The child's pid comes back later in a kr_sup_reply; until
 * then the listener owns the socket. Replies come in the order asked (one supervisor, messages
 * between two processes keep their order), so a FIFO of sockets pairs each reply with its
 * socket: the listener gives it to the child (kr_io_give) and sends SERVE_GO. Starting the child
 * through the supervisor rather than kr_spawn_link keeps the listener free of exit signals and
 * lets a shutdown of the tree end every connection. serve_main, a server's command line, is
 * getopt_long. */
#include "serve.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum {
	T_LISTEN = 1, /* main -> listener: start */
	T_STARTED,    /* supervisor -> listener: a kr_sup_reply */
	T_REARM,      /* listener -> itself: accept again after a transient failure */
};

struct listener {
	const struct serve *s;
	kr_pid sup;
	kr_handle lh; /* the listening socket */
	kr_handle *q; /* sockets waiting for their process, oldest at q[head] */
	uint32_t head, n, cap;
	unsigned char *arg; /* the connection's initial state, built here */
};

/* Set by whichever process fails first; main reads it after kr_run returns. */
static atomic_int status;

static void fail(kr_ctx *ctx, const struct serve *s, const char *what, int rc)
{
	fprintf(stderr, "%s: %s: %s\n", s->name, what, strerror(-rc));
	int zero = 0;
	atomic_compare_exchange_strong_explicit(&status, &zero, 1, memory_order_relaxed,
						memory_order_relaxed);
	kr_stop(kr_runtime_of(ctx));
}

static int push(struct listener *l, kr_handle h)
{
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? 2 * l->cap : 64;
		kr_handle *q = malloc(cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		for (uint32_t i = 0; i < l->n; i++)
			q[i] = l->q[(l->head + i) % l->cap];
		free(l->q);
		l->q = q;
		l->cap = cap;
		l->head = 0;
	}
	l->q[(l->head + l->n++) % l->cap] = h;
	return 0;
}

static kr_handle pop(struct listener *l)
{
	kr_handle h = l->q[l->head];
	l->head = (l->head + 1) % l->cap;
	l->n--;
	return h;
}

static void accepted(kr_ctx *ctx, struct listener *l, kr_handle h)
{
	memset(l->arg, 0, l->s->conn_size);
	memcpy(l->arg, &h, sizeof(h));
	kr_child_spec spec = {
	    .id = "conn",
	    .start = l->s->conn,
	    .arg = l->arg,
	    .arg_len = l->s->conn_size,
	    .restart = KR_TEMPORARY,
	    .shutdown_ms = 0,
	};
	/* Out of memory or a supervisor too busy to take the request: drop this connection. */
	if (push(l, h) < 0) {
		kr_io_close(ctx, h);
		return;
	}
	if (kr_sup_start_child(ctx, l->sup, &spec, T_STARTED) < 0) {
		l->n--; /* it was the newest */
		kr_io_close(ctx, h);
	}
}

static void started(kr_ctx *ctx, struct listener *l, const kr_sup_reply *r)
{
	if (l->n == 0)
		return; /* not ours */
	kr_handle h = pop(l);
	if (r->rc < 0 || kr_io_give(ctx, h, r->pid) < 0 ||
	    kr_send(ctx, r->pid, SERVE_GO, NULL, 0) < 0)
		kr_io_close(ctx, h); /* no process for it: the client sees the connection close */
}

/* Listen, print the port, accept. Returns 0 or the error, after printing it. */
static int start_listening(kr_ctx *ctx, struct listener *l)
{
	const struct serve *s = l->s;
	kr_handle lh;
	char what[64];
	int rc;

	snprintf(what, sizeof(what), "listen on port %u", (unsigned)s->port);
	if ((rc = kr_io_listen(ctx, NULL, s->port, s->backlog, &lh)) < 0) {
		fail(ctx, s, what, rc);
		return rc;
	}
	l->lh = lh;
	if ((rc = kr_io_port(ctx, lh)) < 0) {
		fail(ctx, s, "kr_io_port", rc);
		return rc;
	}
	printf("port %d\n", rc);
	fflush(stdout);
	if ((rc = kr_io_accept(ctx, lh)) < 0) {
		fail(ctx, s, "accept", rc);
		return rc;
	}
	return 0;
}

static void listener(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct listener *l = *(struct listener **)state;

	if (msg->tag == T_LISTEN) {
		start_listening(ctx, l);
	} else if (msg->tag == KR_TAG_IO && msg->len >= sizeof(kr_io_event)) {
		const kr_io_event *ev = (const kr_io_event *)msg->data;
		if (ev->op != KR_IO_ACCEPT)
			return;
		/* Accepting has stopped. Out of descriptors or a connection reset in the
		 * backlog passes: try again a little later (not at once, which would spin
		 * while descriptors stay short). Anything else ends the server. */
		if (ev->res >= 0)
			accepted(ctx, l, ev->handle);
		else if (ev->res == -EMFILE || ev->res == -ENFILE || ev->res == -ECONNABORTED ||
			 ev->res == -ENOMEM || ev->res == -ENOBUFS)
			kr_send_after(ctx, kr_self(ctx), 100, T_REARM, NULL, 0, NULL);
		else
			fail(ctx, l->s, "accept", ev->res);
	} else if (msg->tag == T_REARM) {
		int rc = kr_io_accept(ctx, l->lh);
		if (rc < 0 && rc != -EALREADY)
			fail(ctx, l->s, "accept", rc);
	} else if (msg->tag == T_STARTED && msg->len >= sizeof(kr_sup_reply)) {
		started(ctx, l, (const kr_sup_reply *)msg->data);
	}
}

/* A server holds a descriptor per connection: take all the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int serve_run(const struct serve *s)
{
	kr_config cfg;
	kr_runtime *rt;
	kr_pid sup, lp;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	kr_config_init(&cfg);
	cfg.schedulers = s->schedulers;
	if ((rc = kr_runtime_new(&cfg, &rt)) < 0) {
		fprintf(stderr, "%s: kr_runtime_new: %s\n", s->name, strerror(-rc));
		return 1;
	}
	struct listener *l = calloc(1, sizeof(*l));
	unsigned char *arg = calloc(1, s->conn_size);
	if (!l || !arg) {
		fprintf(stderr, "%s: out of memory\n", s->name);
		free(l);
		free(arg);
		return 1;
	}
	l->s = s;
	l->arg = arg;
	/* Temporary children are never restarted, so intensity only matters if that changes. */
	kr_sup_flags flags = {.strategy = KR_ONE_FOR_ONE, .intensity = 10, .period_ms = 1000};
	rc = kr_rt_sup_spawn(rt, &flags, NULL, 0, &sup);
	l->sup = sup;
	if (rc >= 0)
		rc = kr_rt_spawn(rt, listener, &l, sizeof(l), &lp);
	if (rc >= 0)
		rc = kr_rt_send(rt, lp, T_LISTEN, NULL, 0);
	if (rc < 0) {
		fprintf(stderr, "%s: starting the listener: %s\n", s->name, strerror(-rc));
		free(l); /* nothing has run, so nothing else uses them */
		free(arg);
		return 1;
	}
	if ((rc = kr_run(rt)) < 0) {
		fprintf(stderr, "%s: kr_run: %s\n", s->name, strerror(-rc));
		return 1;
	}
	kr_runtime_free(rt);
	free(l->q);
	free(l);
	free(arg);
	return atomic_load_explicit(&status, memory_order_relaxed) ? 1 : 0;
}

static int number(const char *name, const char *opt, const char *s, uint64_t min, uint64_t max,
		  uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = s ? strtoull(s, &end, 10) : 0;
	if (!s || *s < '0' || *s > '9' || errno || *end || v < min || v > max) {
		fprintf(stderr, "%s: --%s wants a number in %" PRIu64 "..%" PRIu64 ", not '%s'\n",
			name, opt, min, max, s ? s : "");
		return -1;
	}
	*out = v;
	return 0;
}

/* getopt_long's value for serve_main's option i (common ones first): clear of the short ones. */
enum { OPT_FIRST = 256, MAX_OPTS = 16 };

int serve_main(struct serve *s, int argc, char **argv, const struct serve_opt *extra, size_t nextra,
	       void (*usage)(FILE *f))
{
	uint64_t port = 0, schedulers = 0, backlog = 4096;
	const struct serve_opt common[] = {
	    {"port", 0, 65535, &port},
	    {"schedulers", 0, 4096, &schedulers},
	    {"backlog", 1, 65535, &backlog},
	};
	const size_t ncommon = sizeof(common) / sizeof(common[0]), n = ncommon + nextra;
	struct option lo[MAX_OPTS + 2] = {{"help", no_argument, NULL, 'h'}};
	int c;

	if (n > MAX_OPTS) {
		fprintf(stderr, "%s: %zu options, serve.c holds %d\n", s->name, n, (int)MAX_OPTS);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = i < ncommon ? common[i].name : extra[i - ncommon].name;
		lo[i + 1] = (struct option){name, required_argument, NULL, OPT_FIRST + (int)i};
	}
	/* "-": other arguments come back in place (as 1); ":": a missing value is told apart
	 * from an unknown option (and optopt names it). opterr = 0: the errors are ours. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "-:h", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		int i = (c == ':' ? optopt : c) - OPT_FIRST;
		if (i >= 0 && i < (int)n) {
			const struct serve_opt *o =
			    (size_t)i < ncommon ? &common[i] : &extra[(size_t)i - ncommon];
			if (number(s->name, o->name, c == ':' ? NULL : optarg, o->min, o->max,
				   o->v) < 0)
				return 2;
			continue;
		}
		/* getopt_long has stepped past the argument at fault */
		fprintf(stderr, "%s: unknown argument '%s' (see --help)\n", s->name,
			c == 1 ? optarg : argv[optind - 1]);
		return 2;
	}
	if (optind < argc) { /* after "--" */
		fprintf(stderr, "%s: unknown argument '%s' (see --help)\n", s->name, argv[optind]);
		return 2;
	}
	s->port = (uint16_t)port;
	s->schedulers = (unsigned)schedulers;
	s->backlog = (int)backlog;
	return serve_run(s);
}

uint64_t serve_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
