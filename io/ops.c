/* ops: submitting I/O for handles and turning completions into events.
 * A request's user_data is its handle (or file operation) with the kind
 * of request in the low bits. At most one accept, one receive and one send
 * are in flight per socket, so a socket's events keep their order; a
 * completion arrives on the ring its request was submitted on, and a
 * stream's next receive is submitted where its owner takes the last one's
 * event (kri_io_rearm), so that its completions follow the owner. */
#include "io/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { U_ACCEPT = 1, U_RECV, U_SEND, U_CONNECT, U_FILE, U_URECV, U_MASK = 7 };

#define UDP_MAX 65536u

static uint64_t ud(const void *p, unsigned kind)
{
	return (uint64_t)(uintptr_t)p | kind;
}

static struct io_uring_sqe *sqe_for(struct ring *r, struct handle *h, unsigned kind)
{
	struct io_uring_sqe *sqe = kri_ring_sqe(r);
	if (!sqe)
		return 0;
	io_uring_sqe_set_data64(sqe, ud(h, kind));
	r->inflight++;
	h->inflight++;
	return sqe;
}

int kri_io_accept(struct ring *r, struct handle *h)
{
	struct io_uring_sqe *sqe = sqe_for(r, h, U_ACCEPT);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept(sqe, h->fd, 0, 0, SOCK_CLOEXEC);
	h->accepting = true;
	return 0;
}

int kri_io_recv(struct ring *r, struct handle *h)
{
	struct io_uring_sqe *sqe;
	if (h->kind == H_UDP) {
		if (!h->ubuf && !(h->ubuf = malloc(UDP_MAX)))
			return -ENOMEM;
		if (!(sqe = sqe_for(r, h, U_URECV)))
			return -EBUSY;
		h->uiov = (struct iovec){h->ubuf, UDP_MAX};
		memset(&h->umh, 0, sizeof(h->umh));
		h->umh.msg_name = h->addr;
		h->umh.msg_namelen = sizeof(h->addr);
		h->umh.msg_iov = &h->uiov;
		h->umh.msg_iovlen = 1;
		io_uring_prep_recvmsg(sqe, h->fd, &h->umh, 0);
		h->rarmed = true;
		return 0;
	}
	if (!(sqe = sqe_for(r, h, U_RECV)))
		return -EBUSY;
	/* Buffers come from the ring's provided set when data is there, so an
	 * idle connection holds none. One receive at a time, active mode
	 * too: the next is armed where the owner takes this one's event
	 * (recv_done, kri_io_rearm), not kept armed here (multishot), so a
	 * socket's completions follow its owner from scheduler to scheduler. */
	io_uring_prep_recv(sqe, h->fd, 0, 0, 0);
	/* Wait for data before trying to read: a receive is mostly armed
	 * right after the last one's bytes were taken, before the peer sends
	 * again, so a first try would only fail. Measured at 100 echo
	 * connections: round trips per server CPU second 0.9x the multishot
	 * receive's without it, 1.0x with it. */
	if (r->poll_first)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = RING_BGID;
	h->rarmed = true;
	h->rtake = false;
	return 0;
}

void kri_io_rearm(struct ring *r, struct handle *h)
{
	h->home = r;
	if (!h->rtake)
		return;
	h->rtake = false;
	if (!h->rarmed && !h->closing && h->rmode == KR_IO_ACTIVE)
		kri_io_recv(r, h);
}

int kri_io_send(struct ring *r, struct handle *h)
{
	if (h->sending || !h->sq)
		return 0;
	struct io_uring_sqe *sqe = sqe_for(r, h, U_SEND);
	if (!sqe)
		return -EBUSY;
	/* Gather what is queued into one sendmsg: pipelined replies leave in
	 * one system call. A datagram goes alone, to its own address. */
	memset(&h->mh, 0, sizeof(h->mh));
	h->niov = 0;
	for (struct sbuf *b = h->sq; b && h->niov < SEND_IOV; b = b->next) {
		h->iov[h->niov++] = (struct iovec){b->data + b->off, b->len - b->off};
		if (h->kind == H_UDP) {
			h->mh.msg_name = b->addr;
			h->mh.msg_namelen = b->addrlen;
			break;
		}
	}
	h->mh.msg_iov = h->iov;
	h->mh.msg_iovlen = h->niov;
	io_uring_prep_sendmsg(sqe, h->fd, &h->mh, MSG_NOSIGNAL);
	h->sending = true;
	return 0;
}

int kri_io_connect(struct ring *r, struct handle *h)
{
	struct io_uring_sqe *sqe = sqe_for(r, h, U_CONNECT);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_connect(sqe, h->fd, (struct sockaddr *)h->addr, h->addrlen);
	return 0;
}

int kri_io_file(struct ring *r, struct fop *f, int fd, int flags, uint32_t mode)
{
	struct io_uring_sqe *sqe = kri_ring_sqe(r);
	if (!sqe)
		return -EBUSY;
	io_uring_sqe_set_data64(sqe, ud(f, U_FILE));
	switch (f->op) {
	case KR_IO_OPEN:
		io_uring_prep_openat(sqe, AT_FDCWD, (const char *)f->data, flags | O_CLOEXEC, mode);
		break;
	case KR_IO_READ:
		io_uring_prep_read(sqe, fd, f->data, f->len, f->off);
		break;
	case KR_IO_WRITE:
		io_uring_prep_write(sqe, fd, f->data, f->len, f->off);
		break;
	default:
		io_uring_prep_fsync(sqe, fd, 0);
	}
	r->inflight++;
	if (f->h)
		f->h->inflight++;
	return 0;
}

static kr_io_event event(uint32_t op, int32_t res, uint64_t handle, uint64_t ref)
{
	kr_io_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.res = res;
	ev.handle = handle;
	ev.ref = ref;
	return ev;
}

static void accept_done(struct ring *r, struct htab *t, const struct io_sink *k, struct handle *h,
			struct io_uring_cqe *cqe)
{
	bool final = !(cqe->flags & IORING_CQE_F_MORE);
	int res = cqe->res;
	if (final) {
		h->inflight--;
		h->accepting = false;
		/* The kernel may end a multishot accept (an overflowing CQ):
		 * start again unless it ended in an error. */
		if (!h->closing && res >= 0)
			kri_io_accept(r, h);
	}
	bool closing = h->closing;
	uint64_t owner = h->owner, id = handle_id(h);
	kri_handle_put(t, h);
	if (res >= 0) {
		struct handle *c;
		int one = 1;
		if (closing || kri_handle_new(t, res, H_TCP, owner, k->claim, k->arg, &c)) {
			close(res);
			return;
		}
		setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		kr_io_event ev = event(KR_IO_ACCEPT, 0, handle_id(c), id);
		handle_unlock(c);
		k->deliver(k->arg, owner, &ev, 0, 0);
	} else if (final && !closing) {
		kr_io_event ev = event(KR_IO_ACCEPT, res, id, id);
		k->deliver(k->arg, owner, &ev, 0, 0);
	}
}

/* Keep data that came while the owner did not ask for it. */
static void stash(struct handle *h, const unsigned char *data, uint32_t n)
{
	unsigned char *s = realloc(h->stash, (size_t)h->stashlen + n);
	if (!s)
		return; /* out of memory: the bytes are lost, as a dropped datagram */
	memcpy(s + h->stashlen, data, n);
	h->stash = s;
	h->stashlen += n;
}

static void recv_done(struct ring *r, struct htab *t, const struct io_sink *k, struct handle *h,
		      struct io_uring_cqe *cqe, unsigned kind)
{
	int res = cqe->res;
	unsigned char *data = 0;
	int bid = -1;
	if (kind == U_URECV) {
		data = h->ubuf;
	} else if (cqe->flags & IORING_CQE_F_BUFFER) {
		bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		data = ring_buf(r, (unsigned)bid);
	}
	if (res > 0 && !data)
		res = -EIO; /* bytes but no buffer named: nothing to hand over */
	bool tell = false;
	/* Every buffer out for a moment: nobody's error; ask again below if
	 * the owner wants data now. */
	bool quiet = res == -ENOBUFS;
	kr_io_event ev = event(KR_IO_RECV, res, handle_id(h), 0);
	if (h->closing || quiet) {
		/* dropped, or nothing to tell */
	} else if (h->rmode == KR_IO_PASSIVE) {
		if (res > 0)
			stash(h, data, (uint32_t)res);
		else if (res == 0)
			h->eof = true;
		else
			h->rerr = res;
	} else {
		tell = true;
		if (kind == U_URECV) {
			ev.addrlen = h->umh.msg_namelen;
			memcpy(ev.addr, h->addr, sizeof(ev.addr));
		}
		if (h->rmode == KR_IO_ONCE || res <= 0)
			h->rmode = KR_IO_PASSIVE;
	}
	if (tell && h->home && h->home != r)
		r->foreign++;
	h->inflight--;
	h->rarmed = false;
	/* Delivered before the lock is dropped, so that the owner's mailbox
	 * gets a stream's bytes in the order they were read: another thread
	 * may hand over bytes of the same stream as soon as it has the lock
	 * (kr_io_recv's stash, a receive armed on another scheduler's ring),
	 * and a delivery after the unlock could come behind them. And before
	 * the next receive is armed: a datagram in the UDP buffer must be
	 * copied before that receive reuses it (with SQPOLL the kernel may
	 * start it as soon as it is queued). */
	bool queued = false;
	if (tell) {
		ev.len = res > 0 ? (uint32_t)res : 0;
		queued = k->deliver(k->arg, h->owner, &ev, data, ev.len);
	}
	/* Active still: the next receive. A datagram's, or one after nothing
	 * reached the owner, here and now; a stream's, where the owner takes
	 * this event (kri_io_rearm): here if it runs here, on its new
	 * scheduler's ring if it has been stolen meanwhile. Till then the
	 * bytes wait in the socket (TCP's window holds the peer back), and
	 * an owner that takes its events more slowly than they come is not
	 * flooded with them. */
	if (!h->closing && h->rmode != KR_IO_PASSIVE && (res > 0 || quiet)) {
		if (kind == U_URECV || !queued)
			kri_io_recv(r, h);
		else
			h->rtake = true;
	}
	kri_handle_put(t, h);
	if (bid >= 0)
		kri_ring_buf_recycle(r, (unsigned)bid);
}

static void send_done(struct ring *r, struct htab *t, const struct io_sink *k, struct handle *h,
		      struct io_uring_cqe *cqe)
{
	int res = cqe->res;
	h->inflight--;
	h->sending = false;
	kr_io_event ev = event(KR_IO_SEND, res, handle_id(h), 0);
	bool tell = false;
	if (res < 0) {
		h->err = res;
		kri_handle_sq_free(h);
		tell = !h->closing;
	} else {
		size_t left = (size_t)res;
		while (h->sq && left) {
			struct sbuf *b = h->sq;
			size_t n = b->len - b->off;
			if (left < n) {
				b->off += (uint32_t)left;
				break;
			}
			left -= n;
			h->sqbytes -= b->len;
			h->sq = b->next;
			free(b);
		}
		if (!h->sq)
			h->sqtail = 0;
		if (h->sq)
			kri_io_send(r, h); /* closing too: queued bytes still go */
		else if (h->shut_wr && !h->closing)
			shutdown(h->fd, SHUT_WR);
		if (!h->closing) {
			if (h->want_writable && h->sqbytes < KR_IO_SENDQ / 2) {
				h->want_writable = false;
				ev.op = KR_IO_WRITABLE;
				ev.res = 0;
				tell = true;
			}
		}
	}
	uint64_t owner = h->owner;
	kri_handle_put(t, h);
	if (tell)
		k->deliver(k->arg, owner, &ev, 0, 0);
}

static void connect_done(struct htab *t, const struct io_sink *k, struct handle *h,
			 struct io_uring_cqe *cqe)
{
	h->inflight--;
	kr_io_event ev = event(KR_IO_CONNECT, cqe->res, handle_id(h), 0);
	ev.ref = h->cref;
	uint64_t owner = h->owner;
	bool tell = !h->closing;
	if (cqe->res < 0 && tell)
		kri_handle_close(t, h); /* unlocks */
	else
		kri_handle_put(t, h);
	if (tell)
		k->deliver(k->arg, owner, &ev, 0, 0);
}

static void file_done(struct htab *t, const struct io_sink *k, struct fop *f,
		      struct io_uring_cqe *cqe)
{
	int res = cqe->res;
	uint64_t owner = f->owner;
	kr_io_event ev = event(f->op, res, 0, f->ref);
	if (f->op == KR_IO_OPEN) {
		struct handle *h;
		if (res >= 0) {
			if (kri_handle_new(t, res, H_FILE, owner, k->claim, k->arg, &h)) {
				close(res); /* the owner is gone, or no slot: */
				free(f);    /* nobody to tell */
				return;
			}
			ev.res = 0;
			ev.handle = handle_id(h);
			handle_unlock(h);
		}
	} else {
		struct handle *h = f->h;
		handle_lock(h);
		h->inflight--;
		bool closing = h->closing;
		owner = h->owner;
		ev.handle = handle_id(h);
		kri_handle_put(t, h);
		if (closing) {
			free(f);
			return;
		}
		if (f->op == KR_IO_READ && res > 0)
			ev.len = (uint32_t)res;
	}
	k->deliver(k->arg, owner, &ev, f->data, ev.len);
	free(f);
}

void kri_io_complete(struct ring *r, struct htab *t, const struct io_sink *k,
		     struct io_uring_cqe *cqe)
{
	unsigned kind = (unsigned)(cqe->user_data & U_MASK);
	void *p = (void *)(uintptr_t)(cqe->user_data & ~(uint64_t)U_MASK);
	if (kind == U_FILE) {
		file_done(t, k, p, cqe);
		return;
	}
	struct handle *h = p;
	handle_lock(h);
	switch (kind) {
	case U_ACCEPT:
		accept_done(r, t, k, h, cqe);
		break;
	case U_RECV:
	case U_URECV:
		recv_done(r, t, k, h, cqe, kind);
		break;
	case U_SEND:
		send_done(r, t, k, h, cqe);
		break;
	default:
		connect_done(t, k, h, cqe);
	}
}

void kri_io_abandon(struct io_uring_cqe *cqe)
{
	if ((cqe->user_data & U_MASK) == U_FILE)
		free((void *)(uintptr_t)(cqe->user_data & ~(uint64_t)U_MASK));
}
