/* krill-echo: a TCP echo server, one krill process per connection, written on krill.h alone;
 * the server of the echo benchmark (perf/run-http drives it with perf/load/echo-load).
 *
 * A connection receives with KR_IO_ACTIVE and sends each chunk back as it comes. When the send
 * queue is full (kr_io_send gives -EAGAIN: the client is not reading) it switches to
 * KR_IO_PASSIVE and keeps the chunks refused, and those already on their way, until
 * KR_IO_WRITABLE; then it sends them and receives again. So a client that stops reading holds
 * at most the send queue's bound, plus what was in flight, in the server. */
#include <krill.h>

#include "serve.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conn {
	kr_handle h; /* first: serve.c puts it there */
	char *held;  /* bytes refused by the full send queue, in order */
	uint32_t len;
	bool passive;
};

static int hold(struct conn *c, const unsigned char *p, size_t n)
{
	if ((uint64_t)c->len + n > UINT32_MAX)
		return -ENOMEM;
	char *b = realloc(c->held, c->len + n);
	if (!b)
		return -ENOMEM;
	memcpy(b + c->len, p, n);
	c->held = b;
	c->len += (uint32_t)n;
	return 0;
}

static int on_recv(kr_ctx *ctx, struct conn *c, const kr_io_event *ev, size_t len)
{
	if (ev->res <= 0 || ev->len > len - sizeof(*ev))
		return -ECONNRESET; /* the client closed, or an error */
	if (c->passive)             /* sent before PASSIVE took effect: behind what is held */
		return hold(c, ev->data, ev->len);
	int rc = kr_io_send(ctx, c->h, ev->data, ev->len);
	if (rc != -EAGAIN)
		return rc;
	c->passive = true;
	if ((rc = kr_io_recv(ctx, c->h, KR_IO_PASSIVE)) < 0)
		return rc;
	return hold(c, ev->data, ev->len);
}

static int on_writable(kr_ctx *ctx, struct conn *c)
{
	if (!c->passive)
		return 0;
	int rc = kr_io_send(ctx, c->h, c->held, c->len);
	if (rc == -EAGAIN)
		return 0; /* another WRITABLE follows */
	if (rc < 0)
		return rc;
	free(c->held);
	c->held = NULL;
	c->len = 0;
	c->passive = false;
	return kr_io_recv(ctx, c->h, KR_IO_ACTIVE);
}

static void conn(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct conn *c = state;
	int rc = 0;

	if (msg->tag == SERVE_GO) {
		rc = kr_io_recv(ctx, c->h, KR_IO_ACTIVE);
	} else if (msg->tag == KR_TAG_IO && msg->len >= sizeof(kr_io_event)) {
		const kr_io_event *ev = (const kr_io_event *)msg->data;
		if (ev->op == KR_IO_RECV)
			rc = on_recv(ctx, c, ev, msg->len);
		else if (ev->op == KR_IO_WRITABLE)
			rc = on_writable(ctx, c);
		else if (ev->op == KR_IO_SEND)
			rc = -EPIPE; /* a send failed: the connection is gone */
	}
	if (rc < 0) {
		free(c->held);
		c->held = NULL;
		kr_exit(ctx, KR_NORMAL); /* the socket is closed with its owner */
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: krill-echo [--port P] [--schedulers N] [--backlog N]\n"
		   "Echoes what each TCP connection sends. --port 0 (the default) picks a free\n"
		   "port; the port is printed on stdout as \"port N\" once listening.\n"
		   "--schedulers 0: one per core.\n");
}

int main(int argc, char **argv)
{
	struct serve s = {
	    .name = "krill-echo",
	    .conn = conn,
	    .conn_size = sizeof(struct conn),
	};
	return serve_main(&s, argc, argv, NULL, 0, usage);
}
