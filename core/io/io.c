/* io: the kr_io_* calls, and how I/O completions become messages. The
 * rings and handles are io/'s; here a handle's owner is a pid, an event is
 * a KR_TAG_IO message pushed to it, and a process that exits closes what
 * it owns (P_IO tells proc_exit to look, as P_NAMED does for names). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sched/sched.h"
#include "io/ops.h"

static bool deliver(void *arg, uint64_t owner, const kr_io_event *ev, const void *data, uint32_t n)
{
	struct sched *s = arg;
	struct env *e = env_alloc(&s->arena, env_size((uint32_t)sizeof(*ev) + n));
	if (!e)
		return false; /* out of memory: the event is lost, as a dropped message */
	e->m.tag = KR_TAG_IO;
	e->m.len = (uint32_t)sizeof(*ev) + n;
	memcpy(e->m.data, ev, sizeof(*ev));
	if (n)
		memcpy(e->m.data + sizeof(*ev), data, n);
	return kri_proc_deliver_tail(s, owner, e) == 1;
}

/* Dekker with proc_exit: we set P_IO then read the generation; it moves
 * the generation then reads P_IO. Either it sees our flag and closes what
 * we add (under the table lock, after us), or we see it gone. */
static bool claim(void *arg, uint64_t owner)
{
	struct sched *s = arg;
	int err;
	struct proc *p = kri_proc_lookup(s->rt, owner, &err);
	if (!p)
		return false;
	atomic_fetch_or_explicit(&p->aflags, P_IO, memory_order_seq_cst);
	return atomic_load_explicit(&p->gen, memory_order_seq_cst) == pid_gen(owner);
}

static struct io_sink sink(struct sched *s)
{
	return (struct io_sink){deliver, claim, s};
}

int kri_io_rt_init(struct kr_runtime *rt)
{
	rt->io = malloc(sizeof(*rt->io));
	if (!rt->io)
		return -ENOMEM;
	int rc = kri_htab_init(rt->io);
	if (rc) {
		free(rt->io);
		rt->io = 0;
	}
	return rc;
}

static void abandon(void *arg, struct io_uring_cqe *cqe)
{
	kri_io_abandon(cqe);
}

void kri_io_sched_fini(struct sched *s)
{
	kri_ring_fini(&s->ring, abandon, 0);
}

void kri_io_rt_fini(struct kr_runtime *rt)
{
	if (rt->io) {
		kri_htab_fini(rt->io);
		free(rt->io);
		rt->io = 0;
	}
}

void kri_io_owner_exit(struct kr_runtime *rt, kr_pid pid)
{
	kri_handle_close_owner(rt->io, pid);
}

static void complete(void *arg, struct io_uring_cqe *cqe)
{
	struct sched *s = arg;
	struct io_sink k = sink(s);
	kri_io_complete(&s->ring, s->rt->io, &k, cqe);
}

/* A process takes its KR_TAG_IO messages out of its mailbox on the
 * scheduler that runs it (core/proc/run.c, take): a receive's event is
 * where its socket's next receive is armed (kri_io_rearm), so that after a
 * steal the socket's completions arrive on the ring of the scheduler the
 * process moved to instead of waiting for the one it left, which may be
 * busy while this one is idle. Only events with bytes: the others leave
 * no receive owed. Rejected: keeping the receive armed (multishot) and
 * moving it after a steal, which needs its cancel submitted on the old
 * ring, by that ring's thread alone, and whose next completion would wake
 * the process on the old scheduler again; and letting an idle scheduler
 * reap a busy one's completions, which with COOP_TASKRUN are posted by
 * task work on the busy one's own thread (the idle one cannot hurry it),
 * and whose re-arms and buffer returns would write into a ring another
 * thread submits to. */
int kri_io_taken(struct sched *s, struct proc *p, struct env *e)
{
	(void)p;
	const kr_io_event *ev = (const kr_io_event *)e->m.data;
	if (e->m.len < sizeof(*ev) || ev->op != KR_IO_RECV || ev->res <= 0 || !s->ring.ok)
		return TAKE_KEEP;
	struct handle *h = kri_handle_get(s->rt->io, ev->handle, s->ctx.self);
	if (h) {
		kri_io_rearm(&s->ring, h);
		handle_unlock(h);
	}
	return TAKE_KEEP;
}

unsigned kri_io_poll(struct sched *s)
{
	return kri_ring_reap(&s->ring, complete, s);
}

void kri_io_step(struct sched *s)
{
	struct ring *r = &s->ring;
	if (r->inflight && ring_events(r)) {
		kri_io_poll(s);
		return;
	}
	/* Requests wait for a batch while there is local work, but not for
	 * long: every 16 steps, or as soon as the scheduler runs dry. */
	if (r->queued && ((s->loops & 15) == 0 || (!s->runnext && !kri_runq_len(&s->q))))
		kri_ring_flush(r);
}

/* ---- the calls -------------------------------------------------------- */

static int addr_of(const char *host, uint16_t port, struct sockaddr_storage *a, socklen_t *len)
{
	memset(a, 0, sizeof(*a));
	struct sockaddr_in *v4 = (struct sockaddr_in *)a;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)a;
	if (!host) {
		v6->sin6_family = AF_INET6;
		v6->sin6_addr = in6addr_any;
		v6->sin6_port = htons(port);
		*len = sizeof(*v6);
	} else if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		*len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		*len = sizeof(*v6);
	} else {
		return -EINVAL;
	}
	return 0;
}

/* A socket of type bound to host:port (listening if backlog >= 0). */
static int bound_socket(const char *host, uint16_t port, int type, int backlog)
{
	struct sockaddr_storage a;
	socklen_t alen;
	int one = 1, zero = 0;
	int rc = addr_of(host, port, &a, &alen);
	if (rc)
		return rc;
	int fd = socket(a.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (a.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, alen) < 0 ||
	    (backlog >= 0 && listen(fd, backlog ? backlog : SOMAXCONN) < 0)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static int adopt(kr_ctx *ctx, int fd, enum hkind kind, kr_handle *out, struct handle **hp)
{
	struct handle *h;
	struct sched *s = ctx->s;
	if (fd < 0)
		return fd;
	int rc = kri_handle_new(s->rt->io, fd, kind, ctx->self, claim, s, &h);
	if (rc) {
		close(fd);
		return rc;
	}
	*out = handle_id(h);
	if (hp)
		*hp = h;
	else
		handle_unlock(h);
	return 0;
}

int kri_io_adopt_tcp(kr_ctx *ctx, int fd, kr_handle *out)
{
	struct sched *s = api_enter_ctx(ctx);
	if (!s) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	int rc = -EBADF;
	if (fd >= 0 && !s->ring.ok) {
		close(fd);
		rc = -ENOSYS;
	} else if (fd >= 0) {
		rc = adopt(ctx, fd, H_TCP, out, 0);
	}
	api_leave(s);
	return rc;
}

static int listen_in(kr_ctx *ctx, const char *host, uint16_t port, int backlog, kr_handle *out)
{
	if (!out || backlog < 0)
		return -EINVAL;
	if (!ctx->s->ring.ok)
		return -ENOSYS;
	return adopt(ctx, bound_socket(host, port, SOCK_STREAM, backlog), H_LISTEN, out, 0);
}

static int udp_in(kr_ctx *ctx, const char *host, uint16_t port, kr_handle *out)
{
	if (!out)
		return -EINVAL;
	if (!ctx->s->ring.ok)
		return -ENOSYS;
	return adopt(ctx, bound_socket(host, port, SOCK_DGRAM, -1), H_UDP, out, 0);
}

/* The caller's open handle id, locked; the owner is now on this scheduler. */
static struct handle *get(kr_ctx *ctx, kr_handle id)
{
	struct handle *h = ctx->s->ring.ok ? kri_handle_get(ctx->s->rt->io, id, ctx->self) : 0;
	if (h)
		h->home = &ctx->s->ring;
	return h;
}

static int accept_in(kr_ctx *ctx, kr_handle l)
{
	struct handle *h = get(ctx, l);
	if (!h)
		return -EBADF;
	int rc = h->kind != H_LISTEN ? -EINVAL
		 : h->accepting      ? -EALREADY
				     : kri_io_accept(&ctx->s->ring, h);
	handle_unlock(h);
	return rc;
}

static int connect_in(kr_ctx *ctx, const char *host, uint16_t port, uint64_t ref, kr_handle *out)
{
	struct sockaddr_storage a;
	socklen_t alen;
	struct handle *h;
	if (!out || !host)
		return -EINVAL;
	if (!ctx->s->ring.ok)
		return -ENOSYS;
	int rc = addr_of(host, port, &a, &alen);
	if (rc)
		return rc;
	int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
	rc = adopt(ctx, fd, H_TCP, out, &h);
	if (rc)
		return rc;
	memcpy(h->addr, &a, alen);
	h->addrlen = alen;
	h->cref = ref;
	rc = kri_io_connect(&ctx->s->ring, h);
	if (rc) {
		kri_handle_close(ctx->s->rt->io, h);
		return rc;
	}
	handle_unlock(h);
	return 0;
}

static int recv_in(kr_ctx *ctx, kr_handle id, uint32_t mode)
{
	struct handle *h = get(ctx, id);
	if (!h)
		return -EBADF;
	if (mode > KR_IO_ACTIVE || h->kind == H_LISTEN || h->kind == H_FILE) {
		handle_unlock(h);
		return -EINVAL;
	}
	struct sched *s = ctx->s;
	h->rmode = (uint8_t)mode;
	/* What came while passive goes first, as one event. */
	kr_io_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.op = KR_IO_RECV;
	ev.handle = id;
	unsigned char *data = 0;
	bool tell = false;
	if (mode != KR_IO_PASSIVE && (h->stashlen || h->eof || h->rerr)) {
		tell = true;
		if (h->stashlen) {
			data = h->stash;
			ev.res = (int32_t)h->stashlen;
			ev.len = h->stashlen;
			h->stash = 0;
			h->stashlen = 0;
		} else {
			ev.res = h->eof ? 0 : h->rerr;
			h->eof = false;
			h->rerr = 0;
		}
		if (mode == KR_IO_ONCE || ev.res <= 0)
			h->rmode = KR_IO_PASSIVE;
	}
	int rc = 0;
	/* A single-shot receive still armed serves the new mode; a
	 * multishot one is stopped by its next completion (ops.c). */
	if (h->rmode != KR_IO_PASSIVE && !h->rarmed)
		rc = kri_io_recv(&s->ring, h);
	/* Under the lock: a receive still armed on another scheduler's ring
	 * delivers what it reads next as soon as it has the lock, and that
	 * must come behind the stash (ops.c, recv_done). */
	if (tell)
		deliver(s, ctx->self, &ev, data, ev.len);
	handle_unlock(h);
	free(data);
	return rc;
}

static int queue(kr_ctx *ctx, kr_handle id, const void *addr, uint32_t addrlen, const void *data,
		 size_t len)
{
	if (len && !data)
		return -EINVAL;
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	/* The caller's bytes are copied before the handle is locked: a bad
	 * pointer faults here, where the process dies holding nothing. Under
	 * the lock, its exit would spin on that lock for ever, with the
	 * handle table's mutex held (kri_handle_close_owner). */
	struct sbuf *b = malloc(sizeof(*b) + len);
	if (!b)
		return -ENOMEM;
	b->next = 0;
	b->len = (uint32_t)len;
	b->off = 0;
	b->addrlen = addrlen;
	ctx->held = b;
	if (addr)
		memcpy(b->addr, addr, addrlen);
	memcpy(b->data, data, len);
	ctx->held = 0;
	struct handle *h = get(ctx, id);
	if (!h) {
		free(b);
		return -EBADF;
	}
	int rc = 0;
	if (addr ? h->kind != H_UDP : h->kind != H_TCP)
		rc = -EINVAL;
	else if (h->err || h->shut_wr)
		rc = -EPIPE;
	else if (h->sqbytes && h->sqbytes + len > KR_IO_SENDQ) {
		h->want_writable = true;
		rc = -EAGAIN;
	}
	if (rc) {
		handle_unlock(h);
		free(b);
		return rc;
	}
	struct sbuf *prev = h->sqtail;
	if (prev)
		prev->next = b;
	else
		h->sq = b;
	h->sqtail = b;
	h->sqbytes += len;
	rc = kri_io_send(&ctx->s->ring, h);
	if (rc < 0) { /* no send could start: queue nothing, as the error says */
		if (prev)
			prev->next = 0;
		else
			h->sq = 0;
		h->sqtail = prev;
		h->sqbytes -= len;
		free(b);
	}
	handle_unlock(h);
	return rc;
}

static int send_in(kr_ctx *ctx, kr_handle id, const void *data, size_t len)
{
	return queue(ctx, id, 0, 0, data, len);
}

static int sendto_in(kr_ctx *ctx, kr_handle id, const void *addr, uint32_t addrlen,
		     const void *data, size_t len)
{
	if (!addr || addrlen < sizeof(struct sockaddr_in) || addrlen > 28)
		return -EINVAL;
	return queue(ctx, id, addr, addrlen, data, len);
}

static int shutdown_in(kr_ctx *ctx, kr_handle id, int how)
{
	struct handle *h = get(ctx, id);
	if (!h)
		return -EBADF;
	int rc = 0;
	if (h->kind != H_TCP || (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)) {
		rc = -EINVAL;
	} else {
		if (how != SHUT_WR && shutdown(h->fd, SHUT_RD) < 0)
			rc = -errno;
		/* Writing ends after what is queued has gone (ops.c). */
		if (!rc && how != SHUT_RD) {
			if (!h->sq && shutdown(h->fd, SHUT_WR) < 0)
				rc = -errno;
			else
				h->shut_wr = true;
		}
	}
	handle_unlock(h);
	return rc;
}

static int close_in(kr_ctx *ctx, kr_handle id)
{
	struct handle *h = get(ctx, id);
	if (!h)
		return -EBADF;
	kri_handle_close(ctx->s->rt->io, h);
	return 0;
}

static int give_in(kr_ctx *ctx, kr_handle id, kr_pid pid)
{
	struct handle *h = get(ctx, id);
	if (!h)
		return -EBADF;
	/* A receive owed at the take of an event still in our mailbox: the
	 * new owner's takes will not arm it (the event is not theirs), so
	 * arm it now, here. */
	kri_io_rearm(&ctx->s->ring, h);
	return kri_handle_give(ctx->s->rt->io, h, pid, claim, ctx->s);
}

static int port_in(kr_ctx *ctx, kr_handle id)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} a;
	socklen_t alen = sizeof(a);
	memset(&a, 0, sizeof(a));
	struct handle *h = get(ctx, id);
	if (!h)
		return -EBADF;
	int rc = -EINVAL;
	if (h->kind != H_FILE)
		rc = getsockname(h->fd, &a.sa, &alen) < 0 ? -errno
		     : a.sa.sa_family == AF_INET          ? ntohs(a.v4.sin_port)
							  : ntohs(a.v6.sin6_port);
	handle_unlock(h);
	return rc;
}

static struct fop *fop_new(kr_ctx *ctx, uint32_t op, size_t extra, uint64_t ref)
{
	struct fop *f = malloc(sizeof(*f) + extra);
	if (f) {
		memset(f, 0, sizeof(*f));
		f->op = op;
		f->ref = ref;
		f->owner = ctx->self;
	}
	return f;
}

static int open_in(kr_ctx *ctx, const char *path, int flags, uint32_t mode, uint64_t ref)
{
	if (!path)
		return -EINVAL;
	if (!ctx->s->ring.ok)
		return -ENOSYS;
	size_t n = strlen(path) + 1;
	struct fop *f = fop_new(ctx, KR_IO_OPEN, n, ref);
	if (!f)
		return -ENOMEM;
	memcpy(f->data, path, n); /* the kernel reads it at submission */
	int rc = kri_io_file(&ctx->s->ring, f, -1, flags, mode);
	if (rc)
		free(f);
	return rc;
}

/* read, write, fsync on an open file handle. */
static int file_in(kr_ctx *ctx, kr_handle id, uint32_t op, uint64_t off, const void *data,
		   size_t len, uint64_t ref)
{
	if (op == KR_IO_WRITE && len && !data)
		return -EINVAL;
	if (len > ctx->s->rt->cfg.max_msg)
		return -EMSGSIZE;
	/* As queue(): the caller's bytes are copied before any lock. */
	struct fop *f = fop_new(ctx, op, op == KR_IO_FSYNC ? 0 : len, ref);
	if (!f)
		return -ENOMEM;
	f->len = (uint32_t)len;
	f->off = off;
	ctx->held = f;
	if (op == KR_IO_WRITE)
		memcpy(f->data, data, len);
	ctx->held = 0;
	struct handle *h = get(ctx, id);
	if (!h) {
		free(f);
		return -EBADF;
	}
	int rc = h->kind == H_FILE ? 0 : -EINVAL;
	if (!rc) {
		f->h = h;
		rc = kri_io_file(&ctx->s->ring, f, h->fd, 0, 0);
	}
	if (rc)
		free(f);
	handle_unlock(h);
	return rc;
}

/* Every call is bracketed so that a watchdog kill never lands inside it
 * (a handle lock held, a half-built request). */
#define IO_CALL(expr)                                  \
	do {                                           \
		struct sched *s_ = api_enter_ctx(ctx); \
		if (!s_)                               \
			return -EINVAL;                \
		int rc_ = (expr);                      \
		api_leave(s_);                         \
		return rc_;                            \
	} while (0)

int kr_io_listen(kr_ctx *ctx, const char *host, uint16_t port, int backlog, kr_handle *out)
{
	IO_CALL(listen_in(ctx, host, port, backlog, out));
}
int kr_io_accept(kr_ctx *ctx, kr_handle listener)
{
	IO_CALL(accept_in(ctx, listener));
}
int kr_io_connect(kr_ctx *ctx, const char *host, uint16_t port, uint64_t ref, kr_handle *out)
{
	IO_CALL(connect_in(ctx, host, port, ref, out));
}
int kr_io_udp(kr_ctx *ctx, const char *host, uint16_t port, kr_handle *out)
{
	IO_CALL(udp_in(ctx, host, port, out));
}
int kr_io_recv(kr_ctx *ctx, kr_handle h, uint32_t mode)
{
	IO_CALL(recv_in(ctx, h, mode));
}
int kr_io_send(kr_ctx *ctx, kr_handle h, const void *data, size_t len)
{
	IO_CALL(send_in(ctx, h, data, len));
}
int kr_io_sendto(kr_ctx *ctx, kr_handle h, const void *addr, uint32_t addrlen, const void *data,
		 size_t len)
{
	IO_CALL(sendto_in(ctx, h, addr, addrlen, data, len));
}
int kr_io_shutdown(kr_ctx *ctx, kr_handle h, int how)
{
	IO_CALL(shutdown_in(ctx, h, how));
}
int kr_io_close(kr_ctx *ctx, kr_handle h)
{
	IO_CALL(close_in(ctx, h));
}
int kr_io_give(kr_ctx *ctx, kr_handle h, kr_pid pid)
{
	IO_CALL(give_in(ctx, h, pid));
}
int kr_io_port(kr_ctx *ctx, kr_handle h)
{
	IO_CALL(port_in(ctx, h));
}
int kr_io_open(kr_ctx *ctx, const char *path, int flags, uint32_t mode, uint64_t ref)
{
	IO_CALL(open_in(ctx, path, flags, mode, ref));
}
int kr_io_read(kr_ctx *ctx, kr_handle h, uint64_t offset, uint32_t len, uint64_t ref)
{
	IO_CALL(file_in(ctx, h, KR_IO_READ, offset, 0, len, ref));
}
int kr_io_write(kr_ctx *ctx, kr_handle h, uint64_t offset, const void *data, size_t len,
		uint64_t ref)
{
	IO_CALL(file_in(ctx, h, KR_IO_WRITE, offset, data, len, ref));
}
int kr_io_fsync(kr_ctx *ctx, kr_handle h, uint64_t ref)
{
	IO_CALL(file_in(ctx, h, KR_IO_FSYNC, 0, 0, 0, ref));
}
