/* krill-http: an HTTP/1.1 server answering every request "Hello, World!\n", one krill process
 * per connection, written on krill.h alone. It is the server of the HTTP benchmark
 * (perf/run-http, against nginx and Go) and of the robustness test (tests/test_http.sh).
 *
 * A connection process receives with KR_IO_ACTIVE (data as it comes, the runtime asking the
 * kernel again as each chunk is taken; KR_IO_PASSIVE while its responses wait on a full send
 * queue: flow control),
 * answers every request complete in a chunk with one kr_io_send (pipelining), keeps the
 * connection alive as HTTP/1.x says, and answers malformed input with its status before
 * closing. Memory per idle connection is its process alone: a buffer is held only for a request
 * split across chunks (at most a head, HTTP_HEAD_MAX) or for what waits on a full send queue.
 * A request body is not buffered but skipped as it comes. Timeouts: --idle-timeout-ms between
 * requests, and --header-timeout-ms for the whole of a request once its first byte is in, however
 * slowly the rest trickles (slowloris). */
#include <krill.h>

#include "http/parse.h"
#include "serve.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BODY    "Hello, World!\n"
#define OK_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"
static const char ok_keep[] = OK_HEAD "\r\n" BODY;
static const char ok_keep10[] = OK_HEAD "Connection: keep-alive\r\n\r\n" BODY;
static const char ok_close[] = OK_HEAD "Connection: close\r\n\r\n" BODY;

enum {
	OUT_MAX = 16384,  /* responses gathered before a kr_io_send */
	LINGER_MS = 2000, /* after our last byte, how long the client's are read and dropped */
};

/* Set by main before the runtime starts; read-only afterwards. */
static uint64_t header_timeout_ms = 10000, idle_timeout_ms = 60000;

struct conn {
	kr_handle h;  /* first: serve.c puts it there */
	char *buf;    /* the start of an unfinished request, or input left while blocked */
	uint32_t len; /* bytes in buf */
	uint32_t cap;
	char *out; /* responses refused by a full send queue, waiting for WRITABLE */
	uint32_t out_len;
	bool blocked;  /* waiting for KR_IO_WRITABLE */
	bool closing;  /* our last response is queued: shut down once it is sent */
	bool shut;     /* shutdown(SHUT_WR) done: dropping what comes until the client closes */
	uint64_t skip; /* body bytes still to drop */
	uint64_t deadline_ms; /* when the unfinished request or the linger must be over; 0: none */
	struct http_req req;  /* the request at buf[0] */
};

/* Responses being gathered for one kr_io_send. */
struct out {
	uint32_t len;
	char b[OUT_MAX];
};

static void finish(kr_ctx *ctx, struct conn *c)
{
	free(c->buf);
	free(c->out);
	c->buf = c->out = NULL;
	kr_exit(ctx, KR_NORMAL); /* the socket is closed with its owner */
}

/* Send what o holds. Returns 0 (with c->blocked set if the send queue was full: the bytes then
 * wait in c->out), or < 0 when the connection is lost. */
static int flush(kr_ctx *ctx, struct conn *c, struct out *o)
{
	if (o->len == 0)
		return 0;
	int rc = kr_io_send(ctx, c->h, o->b, o->len);
	if (rc == -EAGAIN) {
		if (!(c->out = malloc(o->len)))
			return -ENOMEM;
		memcpy(c->out, o->b, o->len);
		c->out_len = o->len;
		c->blocked = true;
		rc = 0;
	}
	o->len = 0;
	return rc < 0 ? rc : 0;
}

/* Add a response to those gathered in o, or behind those waiting for WRITABLE. */
static int respond(kr_ctx *ctx, struct conn *c, struct out *o, const char *r, size_t n)
{
	if (!c->blocked && o->len + n > sizeof(o->b)) {
		int rc = flush(ctx, c, o);
		if (rc < 0)
			return rc;
	}
	if (!c->blocked) {
		memcpy(o->b + o->len, r, n);
		o->len += (uint32_t)n;
		return 0;
	}
	char *b = realloc(c->out, c->out_len + n);
	if (!b)
		return -ENOMEM;
	memcpy(b + c->out_len, r, n);
	c->out = b;
	c->out_len += (uint32_t)n;
	return 0;
}

/* 200 and the body, whose head is at p (a HEAD request gets the header lines alone). */
static int respond_ok(kr_ctx *ctx, struct conn *c, struct out *o, const char *p)
{
	const char *r = ok_keep;
	size_t n = sizeof(ok_keep) - 1;
	if (!http_keep_alive(&c->req)) {
		c->closing = true;
		r = ok_close;
		n = sizeof(ok_close) - 1;
	} else if (c->req.minor == 0) {
		r = ok_keep10;
		n = sizeof(ok_keep10) - 1;
	}
	if (c->req.method_len == 4 && memcmp(p + c->req.method_off, "HEAD", 4) == 0)
		n -= sizeof(BODY) - 1;
	return respond(ctx, c, o, r, n);
}

static int respond_error(kr_ctx *ctx, struct conn *c, struct out *o, int status)
{
	char r[192];
	int n = snprintf(r, sizeof(r),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
			 "Connection: close\r\n\r\n",
			 status, http_reason(status));
	c->closing = true;
	return respond(ctx, c, o, r, (size_t)n);
}

/* Keep p[0..n) as the start of the next request (p may point into c->buf). */
static int keep(struct conn *c, const char *p, size_t n)
{
	if (n > c->cap) {
		char *b = malloc(n);
		if (!b)
			return -ENOMEM;
		memcpy(b, p, n);
		free(c->buf);
		c->buf = b;
		c->cap = (uint32_t)n;
	} else if (n > 0) {
		memmove(c->buf, p, n);
	}
	c->len = (uint32_t)n;
	if (n == 0) { /* idle connections hold no buffer */
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
	return 0;
}

/* Answer the requests in p[0..n), which follows whatever c->buf holds. Returns < 0 when the
 * connection is lost. */
static int serve_bytes(kr_ctx *ctx, struct conn *c, const char *data, size_t n)
{
	/* A request split across chunks continues in c->buf: append (bounded: buf holds less
	 * than a head, or what was left while blocked, which is no longer growing). */
	const char *p = data;
	if (c->len > 0 && n > 0) {
		if ((uint64_t)c->len + n > UINT32_MAX)
			return -ENOMEM;
		char *b = realloc(c->buf, c->len + n);
		if (!b)
			return -ENOMEM;
		memcpy(b + c->len, data, n);
		c->buf = b;
		c->cap = c->len + (uint32_t)n;
		c->len += (uint32_t)n;
	}
	if (c->len > 0) {
		p = c->buf;
		n = c->len;
	}

	static _Thread_local struct out o; /* per scheduler thread: not on the process's state */
	o.len = 0;
	size_t off = 0;
	int rc = 0;
	while (off < n && !c->closing && !c->blocked && rc >= 0) {
		if (c->skip > 0) {
			size_t k = n - off < c->skip ? n - off : (size_t)c->skip;
			off += k;
			c->skip -= k;
			continue;
		}
		long r = http_parse(&c->req, p + off, n - off);
		if (r > 0) {
			rc = respond_ok(ctx, c, &o, p + off);
			off += (size_t)r;
			http_req_init(&c->req);
			c->deadline_ms = 0; /* the next request has its own */
		} else if (r == 0 && c->req.head_len > 0) {
			/* The head is all in: answer now and drop the body as it comes. */
			rc = respond_ok(ctx, c, &o, p + off);
			c->skip = c->req.head_len + c->req.content_length - (n - off);
			off = n;
			http_req_init(&c->req);
		} else if (r == 0) {
			break;
		} else {
			rc = respond_error(ctx, c, &o, (int)-r);
		}
	}
	if (rc >= 0)
		rc = flush(ctx, c, &o);
	if (rc < 0)
		return rc;
	if (c->closing)
		return keep(c, p, 0);
	return keep(c, p + off, n - off);
}

/* Ask for the next chunk, or go on with the close, and arm the matching timeout. */
static int next(kr_ctx *ctx, struct conn *c)
{
	uint64_t wait;
	int rc;

	if (c->blocked) {
		/* Flow control: nothing more is read until the responses drain. */
		if ((rc = kr_io_recv(ctx, c->h, KR_IO_PASSIVE)) < 0)
			return rc;
		return kr_receive_timeout(ctx, idle_timeout_ms); /* a client that never reads */
	}
	if (c->closing && !c->shut) {
		/* Stop writing once the responses are out, but read on for a while: closing
		 * with unread input would reset the connection and could lose them. */
		if ((rc = kr_io_shutdown(ctx, c->h, SHUT_WR)) < 0)
			return rc;
		c->shut = true;
		c->deadline_ms = 0; /* the linger's, below */
	}
	if (c->shut || c->len > 0 || c->req.pos > 0 || c->skip > 0) {
		/* Only here is the clock read: not between requests, the common case. */
		uint64_t now = serve_now_ms();
		if (c->deadline_ms == 0)
			c->deadline_ms = now + (c->shut ? LINGER_MS : header_timeout_ms);
		if (c->deadline_ms <= now)
			return -ETIMEDOUT;
		wait = c->deadline_ms - now;
	} else {
		c->deadline_ms = 0;
		wait = idle_timeout_ms;
	}
	/* Active: the runtime keeps receiving (the next receive is made as
	 * each chunk's event is taken) instead of one request per chunk; a
	 * no-op when it already is active. */
	if ((rc = kr_io_recv(ctx, c->h, KR_IO_ACTIVE)) < 0)
		return rc;
	return kr_receive_timeout(ctx, wait);
}

static int on_io(kr_ctx *ctx, struct conn *c, const kr_io_event *ev, size_t len)
{
	int rc;

	switch (ev->op) {
	case KR_IO_RECV:
		if (ev->res <= 0 || ev->len > len - sizeof(*ev))
			return -ECONNRESET; /* closed by the client, or an error */
		if (c->shut)
			return next(ctx, c); /* lingering: drop it */
		if ((rc = serve_bytes(ctx, c, (const char *)ev->data, ev->len)) < 0)
			return rc;
		return next(ctx, c);
	case KR_IO_WRITABLE:
		if (!c->blocked)
			return 0;
		rc = kr_io_send(ctx, c->h, c->out, c->out_len);
		if (rc == -EAGAIN)
			return next(ctx, c); /* another WRITABLE will come */
		if (rc < 0)
			return rc;
		free(c->out);
		c->out = NULL;
		c->out_len = 0;
		c->blocked = false;
		/* Input that came with the refused responses is still to be answered. */
		if (!c->closing && c->len > 0 && (rc = serve_bytes(ctx, c, NULL, 0)) < 0)
			return rc;
		return next(ctx, c);
	default: /* KR_IO_SEND: a send failed; the connection is gone */
		return -EPIPE;
	}
}

static void conn(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct conn *c = state;
	int rc = 0;

	if (msg->tag == SERVE_GO)
		rc = next(ctx, c);
	else if (msg->tag == KR_TAG_IO && msg->len >= sizeof(kr_io_event))
		rc = on_io(ctx, c, (const kr_io_event *)msg->data, msg->len);
	else if (msg->tag == KR_TAG_TIMEOUT)
		rc = -ETIMEDOUT; /* idle, too slow a request, or the linger is over */
	if (rc < 0)
		finish(ctx, c);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: krill-http [--port P] [--schedulers N] [--header-timeout-ms MS]\n"
		"                  [--idle-timeout-ms MS] [--backlog N]\n"
		"Answers every HTTP/1.1 request with \"Hello, World!\\n\". --port 0 (the default)\n"
		"picks a free port; the port is printed on stdout as \"port N\" once listening.\n"
		"--schedulers 0: one per core. Timeouts: 10000 ms for a request's head once its\n"
		"first byte is in, 60000 ms idle between requests.\n");
}

int main(int argc, char **argv)
{
	struct serve s = {
	    .name = "krill-http",
	    .conn = conn,
	    .conn_size = sizeof(struct conn),
	};
	const struct serve_opt opts[] = {
	    {"header-timeout-ms", 1, 86400000, &header_timeout_ms},
	    {"idle-timeout-ms", 1, 86400000, &idle_timeout_ms},
	};
	return serve_main(&s, argc, argv, opts, sizeof(opts) / sizeof(opts[0]), usage);
}
