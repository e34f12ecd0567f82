/* iowait: the blocking forms of the I/O requests, for function processes,
 * written on the public API: issue the kr_io_* request, then kr_receive
 * its KR_TAG_IO event, matched by op, handle and a ref of the wait's own
 * (other messages stay queued for later receives). The wait's description
 * lives in the process's struct fiber, not on its stack: a receive's match
 * runs while the process is blocked, when a copy-stack process's frames
 * are not at their addresses (fiber.c). A wait that gives up leaves
 * nothing behind: a connect's handle is closed, a receive turned passive
 * (bytes are kept for the next one), and a late file event is dropped by
 * fiber.c's trampoline by its ref. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/fiber/fiber.h"
#include "krill.h"

static int io_match(const kr_msg *m, void *arg)
{
	const struct kri_io_wait *w = arg;
	kr_io_event ev;
	if (m->tag != KR_TAG_IO || m->len < sizeof(ev))
		return 0;
	memcpy(&ev, m->data, sizeof(ev));
	return (ev.op == w->op || (w->op2 && ev.op == w->op2)) && (!w->h || ev.handle == w->h) &&
	       (!w->ref || ev.ref == w->ref);
}

/* Wait for w's event; the wait is over when this returns (a late event of
 * a file request is then dropped by its ref). */
static int wait_io(kr_ctx *ctx, struct kri_io_wait *w, uint32_t ms, const kr_io_event **ev)
{
	const kr_msg *m;
	int rc = kr_receive(ctx, io_match, w, ms, &m);
	w->h = 0;
	w->ref = 0;
	w->op = w->op2 = 0;
	if (rc == 0)
		*ev = (const kr_io_event *)kr_msg_data(m);
	return rc;
}

static uint64_t next_ref(struct kri_io_wait *w)
{
	w->last = (w->last + 1) & ~KR_IO_WAIT_REF;
	return KR_IO_WAIT_REF | w->last;
}

int kr_io_connect_wait(kr_ctx *ctx, const char *host, uint16_t port, uint32_t timeout_ms,
		       kr_handle *out)
{
	struct kri_io_wait *w = kri_fiber_io(ctx);
	const kr_io_event *ev;
	kr_handle h;
	if (!w)
		return ctx ? -EPERM : -EINVAL;
	if (!out)
		return -EINVAL;
	uint64_t ref = next_ref(w);
	int rc = kr_io_connect(ctx, host, port, ref, &h);
	if (rc)
		return rc;
	w->op = KR_IO_CONNECT;
	w->ref = ref;
	rc = wait_io(ctx, w, timeout_ms, &ev);
	if (rc) {
		kr_io_close(ctx, h); /* no event about it comes after this */
		return rc;
	}
	if (ev->res < 0)
		return ev->res; /* the handle is closed */
	*out = h;
	return 0;
}

int kr_io_accept_wait(kr_ctx *ctx, kr_handle listener, uint32_t timeout_ms, kr_handle *out)
{
	struct kri_io_wait *w = kri_fiber_io(ctx);
	const kr_io_event *ev;
	if (!w)
		return ctx ? -EPERM : -EINVAL;
	if (!out)
		return -EINVAL;
	int rc = kr_io_accept(ctx, listener);
	if (rc && rc != -EALREADY)
		return rc;
	w->op = KR_IO_ACCEPT;
	w->ref = listener;
	rc = wait_io(ctx, w, timeout_ms, &ev);
	if (rc)
		return rc;
	if (ev->res < 0)
		return ev->res;
	*out = ev->handle;
	return 0;
}

int kr_io_recv_wait(kr_ctx *ctx, kr_handle h, uint32_t timeout_ms, const kr_io_event **ev)
{
	struct kri_io_wait *w = kri_fiber_io(ctx);
	if (!w)
		return ctx ? -EPERM : -EINVAL;
	if (!ev)
		return -EINVAL;
	int rc = kr_io_recv(ctx, h, KR_IO_ONCE);
	if (rc)
		return rc;
	w->op = KR_IO_RECV;
	w->h = h;
	rc = wait_io(ctx, w, timeout_ms, ev);
	if (rc) {
		/* Bytes that come now are kept for the next receive. */
		kr_io_recv(ctx, h, KR_IO_PASSIVE);
		return rc;
	}
	return (*ev)->res;
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

int kr_io_send_wait(kr_ctx *ctx, kr_handle h, const void *data, size_t len, uint32_t timeout_ms)
{
	struct kri_io_wait *w = kri_fiber_io(ctx);
	const kr_io_event *ev;
	if (!w)
		return ctx ? -EPERM : -EINVAL;
	uint64_t end = timeout_ms == KR_INFINITY ? 0 : now_ms() + timeout_ms;
	for (;;) {
		int rc = kr_io_send(ctx, h, data, len);
		if (rc != -EAGAIN)
			return rc;
		uint32_t ms = KR_INFINITY;
		if (timeout_ms != KR_INFINITY) {
			uint64_t t = now_ms();
			ms = t >= end ? 0 : (uint32_t)(end - t);
		}
		/* The queue drained below half, or the socket failed. */
		w->op = KR_IO_WRITABLE;
		w->op2 = KR_IO_SEND;
		w->h = h;
		rc = wait_io(ctx, w, ms, &ev);
		if (rc)
			return rc;
		if (ev->op == KR_IO_SEND)
			return ev->res;
	}
}

/* A file request issued with ref, then its event. */
static int file_wait(kr_ctx *ctx, struct kri_io_wait *w, uint32_t op, uint64_t ref, int issued,
		     uint32_t ms, const kr_io_event **ev)
{
	if (issued)
		return issued;
	w->op = op;
	w->ref = ref;
	int rc = wait_io(ctx, w, ms, ev);
	return rc ? rc : (*ev)->res;
}

int kr_io_open_wait(kr_ctx *ctx, const char *path, int flags, uint32_t mode, uint32_t timeout_ms,
		    kr_handle *out)
{
	struct kri_io_wait *w = kri_fiber_io(ctx);
	const kr_io_event *ev;
	if (!w)
		return ctx ? -EPERM : -EINVAL;
	if (!out)
		return -EINVAL;
	uint64_t ref = next_ref(w);
	int rc = file_wait(ctx, w, KR_IO_OPEN, ref, kr_io_open(ctx, path, flags, mode, ref),
			   timeout_ms, &ev);
	if (rc == 0)
		*out = ev->handle;
	return rc;
}

int kr_io_read_wait(kr_ctx *ctx, kr_handle h, uint64_t offset, uint32_t len, uint32_t timeout_ms,
		    const kr_io_event **ev)
{
	struct kri_io_wait *w = kri_fiber_io(ctx);
	if (!w)
		return ctx ? -EPERM : -EINVAL;
	if (!ev)
		return -EINVAL;
	uint64_t ref = next_ref(w);
	return file_wait(ctx, w, KR_IO_READ, ref, kr_io_read(ctx, h, offset, len, ref), timeout_ms,
			 ev);
}

int kr_io_write_wait(kr_ctx *ctx, kr_handle h, uint64_t offset, const void *data, size_t len,
		     uint32_t timeout_ms)
{
	struct kri_io_wait *w = kri_fiber_io(ctx);
	const kr_io_event *ev;
	if (!w)
		return ctx ? -EPERM : -EINVAL;
	uint64_t ref = next_ref(w);
	return file_wait(ctx, w, KR_IO_WRITE, ref, kr_io_write(ctx, h, offset, data, len, ref),
			 timeout_ms, &ev);
}

int kr_io_fsync_wait(kr_ctx *ctx, kr_handle h, uint32_t timeout_ms)
{
	struct kri_io_wait *w = kri_fiber_io(ctx);
	const kr_io_event *ev;
	if (!w)
		return ctx ? -EPERM : -EINVAL;
	uint64_t ref = next_ref(w);
	return file_wait(ctx, w, KR_IO_FSYNC, ref, kr_io_fsync(ctx, h, ref), timeout_ms, &ev);
}
