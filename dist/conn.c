/* conn: the connection process, one a peer node. It owns the socket (a
 * kr_handle, after the handshake on a helper thread), sends the frames
 * other processes hand it (CT_OUT) in the order they came, and cuts what
 * it receives into frames: a 4-byte length, then pass-through ('p'), the
 * control message and the message, each in the external format, decoded
 * with ei_decode_*. A zero-length frame is a tick. Every quarter of
 * net_ticktime it sends a tick if it sent nothing else, and a peer heard
 * from not at all in four quarters is taken for dead, as Erlang does.
 * A malformed or oversized frame closes the connection; the node stays:
 * kri_etf_check (etf_check.c) goes over each frame's terms, with every
 * length checked, before any ei_decode_* reads them. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/io/io.h"
#include "dist/dist.h"
#include "dist/etf_check.h"

/* Larger frames close the connection (the message could not be delivered
 * anyway: kr_send's max_msg is at most 2^31). */
#define FRAME_MAX (1u << 30)

struct qf {
	struct qf *next;
	uint32_t len;
	unsigned char b[];
};

struct conn {
	struct node *nd;
	uint32_t peer;
	bool up;
	kr_handle h;
	unsigned char *in; /* bytes received, not yet a whole frame */
	size_t inlen, incap;
	struct qf *qh, *qt; /* frames waiting: not connected yet, or the send queue full */
	uint64_t rx, tx;    /* reads and sends, ever */
	uint64_t rx_mark, tx_mark;
	unsigned silent; /* tick intervals in a row with nothing received */
	/* Its entry of the stats segment's node block, and the figures it
	 * publishes there: this process's own, so counting takes no lock. */
	int slot; /* -2: none taken yet; -1: none (table full, or no stats) */
	struct kr_stats_conn *pub;
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
	kr_timer tick; /* the pending CT_TICK, when ticking */
	bool ticking;
};

/* The figures into the entry (krill_stats.h): after each event that
 * changed them, a few plain stores to a line only this process writes. */
static void publish(struct conn *c)
{
	struct kr_stats_conn *e = c->pub;
	if (!e)
		return;
	kri_pub_begin(&e->seq);
	kri_pub_put(&e->msgs_in, c->msgs_in);
	kri_pub_put(&e->msgs_out, c->msgs_out);
	kri_pub_put(&e->bytes_in, c->bytes_in);
	kri_pub_put(&e->bytes_out, c->bytes_out);
	kri_pub_end(&e->seq);
}

/* Up: take an entry and fill it in. Going: zero it (peer "" frees it),
 * then give it back; under mu, so the next taker writes after us. */
static void pub_open(struct conn *c)
{
	struct node *nd = c->nd;
	pthread_mutex_lock(&nd->mu);
	c->slot = kri_dist_slot_take(nd);
	char peer[sizeof(c->pub->peer)];
	size_t l = strnlen(nd->peers[c->peer]->name, sizeof(peer) - 1);
	memcpy(peer, nd->peers[c->peer]->name, l);
	peer[l] = 0;
	pthread_mutex_unlock(&nd->mu);
	if (c->slot < 0)
		return;
	struct kr_stats_conn *e = &nd->pub->c[c->slot];
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	kri_pub_begin(&e->seq);
	kri_pub_put(&e->since_ns, (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec);
	kri_pub_str(e->peer, sizeof(e->peer), peer);
	kri_pub_end(&e->seq);
	c->pub = e;
	publish(c);
}

static void pub_close(struct conn *c)
{
	if (c->slot == -2)
		return;
	struct kr_stats_conn *e = c->pub;
	if (e) {
		kri_pub_begin(&e->seq);
		kri_pub_put(&e->since_ns, 0);
		kri_pub_put(&e->msgs_in, 0);
		kri_pub_put(&e->msgs_out, 0);
		kri_pub_put(&e->bytes_in, 0);
		kri_pub_put(&e->bytes_out, 0);
		kri_pub_str(e->peer, sizeof(e->peer), "");
		kri_pub_end(&e->seq);
		c->pub = 0;
	}
	pthread_mutex_lock(&c->nd->mu);
	kri_dist_slot_give(c->nd, c->slot);
	pthread_mutex_unlock(&c->nd->mu);
	c->slot = -2;
}

struct conn *kri_dist_conn_new(struct node *nd, uint32_t peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c) {
		c->nd = nd;
		c->peer = peer;
		c->slot = -2;
	}
	return c;
}

void kri_dist_conn_free(struct conn *c)
{
	while (c->qh) {
		struct qf *n = c->qh->next;
		free(c->qh);
		c->qh = n;
	}
	free(c->in);
	free(c);
}

/* The next tick, a quarter of net_ticktime away. */
static void arm_tick(kr_ctx *ctx, struct conn *c)
{
	if (kr_send_after(ctx, kr_self(ctx), c->nd->tick_ms / 4 ? c->nd->tick_ms / 4 : 1, CT_TICK,
			  0, 0, &c->tick) == 0)
		c->ticking = true;
}

static void gone(kr_ctx *ctx, struct conn *c)
{
	pub_close(c);
	/* The pending tick would hold its timer and envelope until it fired
	 * at nobody, a quarter of net_ticktime later: with a peer that flaps
	 * faster than that, one a flap (tests/test_dist_flap.c). */
	if (c->ticking)
		kr_cancel_timer(ctx, c->tick);
	kri_dist_conn_gone(c->nd, ctx, c->peer);
	kri_dist_conn_free(c);
	kr_exit(ctx, KR_NORMAL); /* the socket closes with us */
}

static int enqueue(struct conn *c, const void *b, uint32_t len)
{
	struct qf *f = malloc(sizeof(*f) + len);
	if (!f)
		return -ENOMEM;
	f->next = 0;
	f->len = len;
	memcpy(f->b, b, len);
	if (c->qt)
		c->qt->next = f;
	else
		c->qh = f;
	c->qt = f;
	return 0;
}

static int put(kr_ctx *ctx, struct conn *c, const void *b, uint32_t len)
{
	int rc = kr_io_send(ctx, c->h, b, len);
	if (!rc) {
		c->tx++;
		c->bytes_out += len;
		publish(c);
		atomic_fetch_add_explicit(&c->nd->bytes_out, len, memory_order_relaxed);
	}
	return rc;
}

/* Send what waits, in order, until the queue is empty or full (-EAGAIN:
 * a KR_IO_WRITABLE comes). 0, -EAGAIN, or an error that ends us. */
static int flush(kr_ctx *ctx, struct conn *c)
{
	while (c->qh) {
		int rc = put(ctx, c, c->qh->b, c->qh->len);
		if (rc)
			return rc;
		struct qf *n = c->qh->next;
		free(c->qh);
		if (!(c->qh = n))
			c->qt = 0;
	}
	return 0;
}

static int out(kr_ctx *ctx, struct conn *c, const void *b, uint32_t len)
{
	if (c->up && !c->qh) {
		int rc = put(ctx, c, b, len);
		if (rc != -EAGAIN)
			return rc;
	}
	return enqueue(c, b, len);
}

static void got(kr_ctx *ctx, struct conn *c, const unsigned char *d, uint32_t n)
{
	struct node *nd = c->nd;
	c->rx++;
	c->bytes_in += n;
	atomic_fetch_add_explicit(&nd->bytes_in, n, memory_order_relaxed);
	if (c->inlen + n > c->incap) {
		size_t cap = c->incap ? c->incap : 4096;
		while (cap < c->inlen + n)
			cap *= 2;
		unsigned char *p = realloc(c->in, cap);
		if (!p) {
			gone(ctx, c);
			return;
		}
		c->in = p;
		c->incap = cap;
	}
	memcpy(c->in + c->inlen, d, n);
	c->inlen += n;
	size_t at = 0;
	while (c->inlen - at >= 4) {
		uint32_t len;
		memcpy(&len, c->in + at, 4);
		len = ntohl(len);
		if (len > FRAME_MAX) {
			gone(ctx, c);
			return;
		}
		if (c->inlen - at - 4 < len)
			break;
		if (len && kri_dist_frame(c, ctx, (const char *)c->in + at + 4, len)) {
			gone(ctx, c);
			return;
		}
		at += 4 + (size_t)len;
	}
	memmove(c->in, c->in + at, c->inlen - at);
	c->inlen -= at;
	publish(c);
}

static void tick(kr_ctx *ctx, struct conn *c)
{
	static const unsigned char zero[4];
	c->silent = c->rx == c->rx_mark ? c->silent + 1 : 0;
	c->rx_mark = c->rx;
	if (c->silent >= 4) { /* net_ticktime without a word: the peer is dead */
		gone(ctx, c);
		return;
	}
	if (c->tx == c->tx_mark && out(ctx, c, zero, 4) < 0 && !c->qh) {
		gone(ctx, c);
		return;
	}
	c->tx_mark = c->tx;
	arm_tick(ctx, c);
}

void kri_dist_conn(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	struct conn *c = *(struct conn **)state;
	int fd, rc;
	switch (msg->tag) {
	case CT_FD:
		memcpy(&fd, msg->data, sizeof(fd));
		if (c->up) { /* both ends connected at once: keep the first */
			close(fd);
			return;
		}
		if (kri_io_adopt_tcp(ctx, fd, &c->h) || kr_io_recv(ctx, c->h, KR_IO_ACTIVE)) {
			gone(ctx, c);
			return;
		}
		c->up = true;
		kri_dist_conn_up(c->nd, ctx, c->peer);
		pub_open(c);
		rc = flush(ctx, c);
		if (rc && rc != -EAGAIN) {
			gone(ctx, c);
			return;
		}
		arm_tick(ctx, c);
		return;
	case CT_FAIL:
		gone(ctx, c);
		return;
	case CT_OUT:
		c->msgs_out++; /* published with its bytes, by put, or when it leaves the queue */
		atomic_fetch_add_explicit(&c->nd->msgs_out, 1, memory_order_relaxed);
		if (out(ctx, c, msg->data, msg->len) < 0)
			gone(ctx, c);
		return;
	case CT_TICK:
		c->ticking = false;
		tick(ctx, c);
		return;
	case KR_TAG_IO:
		break;
	default:
		return;
	}
	const kr_io_event *ev = (const kr_io_event *)msg->data;
	if (ev->op == KR_IO_RECV && ev->res > 0)
		got(ctx, c, ev->data, ev->len);
	else if (ev->op == KR_IO_RECV || ev->op == KR_IO_SEND)
		gone(ctx, c); /* closed, reset, or a failed send */
	else if (ev->op == KR_IO_WRITABLE && (rc = flush(ctx, c)) && rc != -EAGAIN)
		gone(ctx, c);
}

/* ---- frames in ---------------------------------------------------------- */

/* The local pid an Erlang pid of this node names (this incarnation), or 0. */
static kr_pid local_pid(struct node *nd, const erlang_pid *e)
{
	if (strcmp(e->node, nd->name) || e->creation != nd->creation || e->serial == GEN_REMOTE)
		return 0;
	return (uint64_t)e->serial << 32 | e->num;
}

/* Deliver the message term (len bytes at t, version byte first) to to. */
static void deliver(struct node *nd, kr_ctx *ctx, kr_pid to, kr_pid from, const char *t,
		    uint32_t len)
{
	/* {krill, Tag, Binary}: an ordinary message, as kr_send made it. */
	int i = 1, arity, type, size;
	char atom[MAXATOMLEN];
	unsigned long tag;
	if (!ei_decode_tuple_header(t, &i, &arity) && arity == 3 && !ei_decode_atom(t, &i, atom) &&
	    !strcmp(atom, "krill") && !ei_decode_ulong(t, &i, &tag) && tag < KR_TAG_SYSTEM &&
	    !ei_get_type(t, &i, &type, &size) && type == ERL_BINARY_EXT &&
	    (uint32_t)i + 5 + (uint32_t)size == len) {
		kr_send(ctx, to, (uint32_t)tag, t + i + 5, (size_t)size);
		return;
	}
	/* {Ref, Reply} answering a kr_node_call: kr_call's reply (gen_call.c). */
	if (kri_dist_call_reply(nd, ctx, to, from, t, len))
		return;
	kr_dist_msg h = {.from = from, .len = len};
	kri_proc_send_sys(ctx, to, KR_TAG_DIST, &h, sizeof(h), t, len);
}

/* Our monitor ref from an Erlang reference of this node (kri_dist_x_encode_ref). */
static uint64_t our_ref(struct node *nd, const erlang_ref *r)
{
	if (strcmp(r->node, nd->name) || r->len != 3)
		return 0;
	return (uint64_t)r->n[0] | (uint64_t)r->n[1] << 18 | (uint64_t)r->n[2] << 50;
}

/* Send a control message (no message part) on this connection: from a
 * pid, or (MONITOR_P_EXIT for a monitor by name) the name from_name. */
static void reply(kr_ctx *ctx, struct conn *c, long op, const erlang_pid *from,
		  const char *from_name, const erlang_pid *to, const erlang_ref *ref,
		  uint32_t reason)
{
	ei_x_buff x;
	if (kri_dist_frame_begin(&x))
		return;
	int bad = ei_x_encode_tuple_header(&x, ref ? 5 : 4) || ei_x_encode_long(&x, op) ||
		  (from_name ? ei_x_encode_atom(&x, from_name) : ei_x_encode_pid(&x, from)) ||
		  ei_x_encode_pid(&x, to) || (ref && ei_x_encode_ref(&x, ref)) ||
		  kri_dist_enc_reason(&x, reason, 0, 0);
	if (!bad) {
		kri_dist_frame_end(&x);
		out(ctx, c, x.buff, (uint32_t)x.index);
	}
	ei_x_free(&x);
}

/* UNLINK_ID_ACK {36, Id, From, To}: from, the pid the peer unlinked from,
 * acknowledges the peer's to. */
static void unlink_ack(kr_ctx *ctx, struct conn *c, unsigned long long id, const erlang_pid *from,
		       const erlang_pid *to)
{
	ei_x_buff x;
	if (kri_dist_frame_begin(&x))
		return;
	if (!ei_x_encode_tuple_header(&x, 4) && !ei_x_encode_long(&x, DOP_UNLINK_ID_ACK) &&
	    !ei_x_encode_ulonglong(&x, id) && !ei_x_encode_pid(&x, from) &&
	    !ei_x_encode_pid(&x, to)) {
		kri_dist_frame_end(&x);
		out(ctx, c, x.buff, (uint32_t)x.index);
	}
	ei_x_free(&x);
}

/* A pid, or a name (an atom; then *by_name is set): 0, or -1 when b at *i
 * is neither. */
static int dec_pid_or_name(const char *b, int *i, erlang_pid *pid, char *name, bool *by_name)
{
	int type, size;
	if (ei_get_type(b, i, &type, &size))
		return -1;
	if (type == ERL_ATOM_EXT || type == ERL_SMALL_ATOM_EXT || type == ERL_ATOM_UTF8_EXT ||
	    type == ERL_SMALL_ATOM_UTF8_EXT) {
		if (ei_decode_atom(b, i, name))
			return -1;
		*by_name = true;
		return 0;
	}
	return ei_decode_pid(b, i, pid) ? -1 : 0;
}

/* Links, monitors and exits from the peer. b at i: the rest of the control
 * tuple after its op.
 *
 * Links follow Erlang's link protocol (OTP 23.3+; erl_dist_protocol, "Link
 * Protocol"). The local process's link set says whether a link is active;
 * the node's records say which of our unlinks await their ack
 * (REC_UNLINK). UNLINK_ID from the peer removes an active link and is
 * always acknowledged, at once, by this process: the unlink signal is
 * queued to the local process first, so that process handles it before
 * anything the peer sends after our ack. (erts acks when the target
 * handles the signal; acking here instead differs only when the target's
 * exit signal to the peer goes out after the ack: it exits with the
 * unlink still queued, or its exit signal still waits in this process's
 * mailbox. That signal then reaches a peer that has dropped the link, and
 * is ignored there, or, had the peer linked again meanwhile, ends that
 * link with the real reason rather than noproc.) A LINK that crosses an
 * unlink of ours is ignored (the peer removes its side when our UNLINK_ID
 * reaches it); an exit signal ends the unlinking (the local process,
 * unlinked, ignores it); the ack with the unlink's id ends it too. */
static int control(struct conn *c, kr_ctx *ctx, const char *b, int i, int arity, long op)
{
	struct node *nd = c->nd;
	kr_runtime *rt = kr_runtime_of(ctx);
	erlang_pid from, to;
	erlang_ref ref;
	char name[MAXATOMLEN];
	unsigned char payload[KR_PAYLOAD_MAX];
	uint32_t reason = 0, plen = 0;
	kr_pid rfrom, lto;
	int rc;
	uint64_t id;
	unsigned long long uid = 0;
	bool unlinking;
	bool by_name = false;
	switch (op) {
	case 1: /* LINK {1, From, To} */
	case 4: /* UNLINK {4, From, To} */
		if (arity != 3 || ei_decode_pid(b, &i, &from) || ei_decode_pid(b, &i, &to))
			return -EPROTO;
		break;
	case 3: /* EXIT {3, From, To, Reason} */
	case 8: /* EXIT2 {8, From, To, Reason} */
		if (arity != 4 || ei_decode_pid(b, &i, &from) || ei_decode_pid(b, &i, &to) ||
		    kri_dist_dec_reason(b, &i, &reason, payload, &plen))
			return -EPROTO;
		break;
	case 19: /* MONITOR_P {19, From, ToProc, Ref}: ToProc a pid or a name */
	case 20: /* DEMONITOR_P {20, From, ToProc, Ref} */
		if (arity != 4 || ei_decode_pid(b, &i, &from) ||
		    dec_pid_or_name(b, &i, &to, name, &by_name) || ei_decode_ref(b, &i, &ref))
			return -EPROTO;
		break;
	case DOP_UNLINK_ID:     /* {35, Id, From, To} */
	case DOP_UNLINK_ID_ACK: /* {36, Id, From, To} */
		if (arity != 4 || ei_decode_ulonglong(b, &i, &uid) || !uid ||
		    ei_decode_pid(b, &i, &from) || ei_decode_pid(b, &i, &to))
			return -EPROTO; /* id 0 too: erts refuses it */
		break;
	case 21: /* MONITOR_P_EXIT {21, FromProc, To, Ref, Reason}: FromProc a pid or,
		  * for a monitor by name (kr_node_monitor_name), the name */
		if (arity != 5 || dec_pid_or_name(b, &i, &from, name, &by_name) ||
		    ei_decode_pid(b, &i, &to) || ei_decode_ref(b, &i, &ref) ||
		    kri_dist_dec_reason(b, &i, &reason, payload, &plen))
			return -EPROTO;
		break;
	default: /* others (aliases, spawn requests...): checked, dropped */
		for (int k = 1; k < arity; k++)
			if (ei_skip_term(b, &i))
				return -EPROTO;
		return 0;
	}
	if (op == 21 && by_name) {
		/* The kr_pid our monitors of that name hold; none: not ours. */
		pthread_mutex_lock(&nd->mu);
		rc = kri_dist_name_pid(nd, c->peer, name, false, &rfrom);
		pthread_mutex_unlock(&nd->mu);
		if (rc)
			return 0;
	} else if (kri_dist_pid_in(nd, c->peer, &from, op != 3 && op != 21, &rfrom) ||
		   !pid_remote(rfrom)) {
		return 0; /* not a pid of another node: nothing of ours */
	}
	lto = by_name && op != 21 ? kr_whereis(rt, name) : local_pid(nd, &to);
	switch (op) {
	case 1:
		pthread_mutex_lock(&nd->mu);
		unlinking = lto && kri_dist_unlinking(nd, c->peer, lto, rfrom, false);
		pthread_mutex_unlock(&nd->mu);
		if (unlinking)
			break; /* it crossed our UNLINK_ID, which ends it there */
		rc = lto ? kri_remote_signal_in(ctx, lto, RS_LINK, rfrom, 0, 0, 0, 0) : 0;
		if (rc == 1) {
			pthread_mutex_lock(&nd->mu);
			kri_dist_rec_add(nd, c->peer, REC_LINK, lto, rfrom, 0);
			pthread_mutex_unlock(&nd->mu);
		} else {
			reply(ctx, c, 3, &to, 0, &from, 0, KR_NOPROC); /* gone already */
		}
		break;
	case 4:
	case 3:
		pthread_mutex_lock(&nd->mu);
		kri_dist_rec_del(nd, c->peer, REC_LINK, lto, rfrom, 0);
		if (op == 3) /* the link is over, whatever state it was in */
			kri_dist_unlinking(nd, c->peer, lto, rfrom, true);
		pthread_mutex_unlock(&nd->mu);
		if (lto)
			kri_remote_signal_in(ctx, lto, op == 4 ? RS_UNLINK : RS_EXIT_LINK, rfrom, 0,
					     reason, payload, plen);
		break;
	case DOP_UNLINK_ID:
		/* Active here: removed. Unlinking here too (both unlinked at
		 * once): left as it is, for our own ack to end. */
		pthread_mutex_lock(&nd->mu);
		unlinking = lto && kri_dist_unlinking(nd, c->peer, lto, rfrom, false);
		if (!unlinking)
			kri_dist_rec_del(nd, c->peer, REC_LINK, lto, rfrom, 0);
		pthread_mutex_unlock(&nd->mu);
		if (lto && !unlinking)
			kri_remote_signal_in(ctx, lto, RS_UNLINK, rfrom, 0, 0, 0, 0);
		unlink_ack(ctx, c, uid, &to, &from); /* even for a pid gone: the peer waits */
		break;
	case DOP_UNLINK_ID_ACK:
		/* Our unlink of that id is done; another id (we linked and
		 * unlinked again since) is not. */
		pthread_mutex_lock(&nd->mu);
		if (lto)
			kri_dist_rec_del(nd, c->peer, REC_UNLINK, lto, rfrom, uid);
		pthread_mutex_unlock(&nd->mu);
		break;
	case 8:
		if (lto)
			kri_remote_signal_in(ctx, lto, RS_EXIT, rfrom, 0, reason, payload, plen);
		break;
	case 19:
		/* The record goes in before the signal: the process may exit
		 * (and send DOWN, which takes it out) as soon as it is told. */
		pthread_mutex_lock(&nd->mu);
		id = lto ? kri_dist_inref_new(nd, c->peer, &ref, by_name ? name : 0) : 0;
		if (id && kri_dist_rec_add(nd, c->peer, REC_MON_IN, lto, rfrom, id)) {
			kri_dist_inref_free(nd, id);
			id = 0;
		}
		pthread_mutex_unlock(&nd->mu);
		rc = id ? kri_remote_signal_in(ctx, lto, RS_MONITOR, rfrom, id, 0, 0, 0) : 0;
		if (rc != 1) {
			/* A dead or unknown pid, a name nobody holds: noproc,
			 * from the pid or the name it was asked by. */
			pthread_mutex_lock(&nd->mu);
			if (id) {
				kri_dist_rec_del(nd, c->peer, REC_MON_IN, lto, rfrom, id);
				kri_dist_inref_free(nd, id);
			}
			pthread_mutex_unlock(&nd->mu);
			reply(ctx, c, 21, &to, by_name ? name : 0, &from, &ref, KR_NOPROC);
		}
		break;
	case 20:
		pthread_mutex_lock(&nd->mu);
		id = lto ? kri_dist_inref_find(nd, c->peer, rfrom, &ref) : 0;
		if (id) {
			kri_dist_rec_del(nd, c->peer, REC_MON_IN, lto, rfrom, id);
			kri_dist_inref_free(nd, id);
		}
		pthread_mutex_unlock(&nd->mu);
		if (id)
			kri_remote_signal_in(ctx, lto, RS_DEMONITOR, rfrom, id, 0, 0, 0);
		break;
	case 21:
		id = our_ref(nd, &ref);
		pthread_mutex_lock(&nd->mu);
		kri_dist_rec_del(nd, c->peer, REC_MON_OUT, lto, rfrom, id);
		pthread_mutex_unlock(&nd->mu);
		if (lto && id)
			kri_remote_signal_in(ctx, lto, RS_DOWN, rfrom, id, reason, payload, plen);
		break;
	}
	return 0;
}

int kri_dist_frame(struct conn *c, kr_ctx *ctx, const char *b, uint32_t n)
{
	struct node *nd = c->nd;
	int i = 1, v, arity;
	long op;
	erlang_pid from, to;
	char name[MAXATOMLEN];
	bool has_from = false, by_name = false;
	if (kri_etf_frame_check(b, n))
		return -EPROTO;
	if (ei_decode_version(b, &i, &v) || ei_decode_tuple_header(b, &i, &arity) || arity < 1 ||
	    ei_decode_long(b, &i, &op))
		return -EPROTO;
	switch (op) {
	case ERL_SEND:    /* {2, Unused, To} */
	case ERL_SEND_TT: /* {12, Unused, To, TraceToken} */
		if (arity != (op == ERL_SEND ? 3 : 4) || ei_skip_term(b, &i) ||
		    ei_decode_pid(b, &i, &to) || (arity == 4 && ei_skip_term(b, &i)))
			return -EPROTO;
		break;
	case ERL_REG_SEND:    /* {6, From, Unused, ToName} */
	case ERL_REG_SEND_TT: /* {16, From, Unused, ToName, TraceToken} */
		if (arity != (op == ERL_REG_SEND ? 4 : 5) || ei_decode_pid(b, &i, &from) ||
		    ei_skip_term(b, &i) || ei_decode_atom(b, &i, name) ||
		    (arity == 5 && ei_skip_term(b, &i)))
			return -EPROTO;
		has_from = by_name = true;
		break;
	case 22: /* SEND_SENDER {22, From, To} */
		if (arity != 3 || ei_decode_pid(b, &i, &from) || ei_decode_pid(b, &i, &to))
			return -EPROTO;
		has_from = true;
		break;
	default:
		return control(c, ctx, b, i, arity, op);
	}
	/* The message: one whole term, the rest of the frame. */
	int m = i, end = i + 1;
	if ((uint32_t)i >= n || (unsigned char)b[i] != 131 || ei_skip_term(b, &end) ||
	    (uint32_t)end != n)
		return -EPROTO;
	c->msgs_in++; /* published at the end of the read (got) */
	atomic_fetch_add_explicit(&nd->msgs_in, 1, memory_order_relaxed);
	kr_runtime *rt = kr_runtime_of(ctx);
	kr_pid dst = by_name ? kr_whereis(rt, name) : local_pid(nd, &to);
	kr_pid src = 0;
	if (has_from && kri_dist_pid_in(nd, c->peer, &from, true, &src))
		src = 0;
	if (dst)
		deliver(nd, ctx, dst, src, b + m, n - (uint32_t)m);
	return 0;
}
