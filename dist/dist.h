/* dist: a krill runtime as an Erlang node (include/krill_dist.h). node.c
 * keeps the node (ei's cnode, epmd, the accept thread, the peers and the
 * table of remote pids); conn.c is the connection process, one a peer,
 * which owns the socket through the io_uring layer and turns frames into
 * messages. Above the core: it uses the public API, and the core only
 * through core/proc/remote.h (the hook for remote sends, system-tagged
 * sends), core/io/io.h (adopting a socket) and core/fiber/fiber.h
 * (kri_fiber_call, for gen_call.c's blocking call). */
#ifndef KR_DIST_H
#define KR_DIST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/proc/remote.h"
#include "krill_dist.h"
#include "krill_stats.h"

/* Erlang's link protocol (OTP 23.3+, erl_dist_protocol "Link Protocol"):
 * {35, Id, From, To} removes a link, {36, Id, From, To} acknowledges it. */
#define DOP_UNLINK_ID     35
#define DOP_UNLINK_ID_ACK 36

/* The connection process's own tags (ordinary tags: only dist sends them). */
enum {
	CT_FD = 1,   /* int: a connected, handshaken socket (from a helper thread) */
	CT_FAIL = 2, /* int: the connect failed (negative errno) */
	CT_OUT = 3,  /* a whole frame to send, length word included */
	CT_TICK = 4, /* the tick timer */
};

enum { PEER_DOWN, PEER_CONNECTING, PEER_UP };

struct conn;

/* What a peer's connection going away must answer: a link between a local
 * and a remote pid, a monitor a local process holds on a remote pid (ref:
 * its own), one a remote process holds on a local one (ref: an in-ref id,
 * naming the Erlang reference in node.inrefs). And, answering nothing, an
 * unlink of ours not yet acknowledged (Erlang's link protocol: ref, the
 * UNLINK_ID's id; local unlinked remote): while it lasts, a LINK from
 * remote is ignored, as erts ignores one that crosses its unlink. */
enum { REC_LINK = 1, REC_MON_OUT, REC_MON_IN, REC_UNLINK };
struct rec {
	kr_pid local, remote;
	uint64_t ref;
	int kind;
};
/* In-ref ids: above any monitor ref a scheduler makes ((id + 1) << 48);
 * below, an entry's generation (16 bits) and index (32). */
#define INREF_BASE (0xffffull << 48)

/* The Erlang reference of a monitor a remote process holds on a local one,
 * kept compact: its node is the peer's (a monitor's reference is made by
 * the monitoring node), so the entry names the peer instead of holding
 * ei's erlang_ref (about 1 KB of node name). In node.inrefs, freed when
 * the monitor fires (DOWN sent), is taken off (DEMONITOR_P) or the
 * connection goes. */
struct inref {
	char *name;    /* by name ({Name, Node}): the name (malloc'd), else 0 */
	uint32_t n[5]; /* the reference's words, len of them */
	uint32_t creation;
	uint32_t peer; /* the node that made it */
	uint32_t next; /* free: the next free entry, UINT32_MAX ends */
	uint16_t gen;  /* bumped at each free: stale ids find nothing */
	uint8_t len, used;
};

/* A node this one knows of, by name: made on first mention and kept while
 * the node lives, so a remote pid names its peer by index. */
struct peer {
	char name[MAXNODELEN + 1];
	kr_pid conn;      /* its connection process, or 0; under mu */
	struct conn *c;   /* that process's state (freed at its exit, or at fini) */
	int state;        /* PEER_*; under mu, changes broadcast on cv */
	int err;          /* the last failed connect, negative errno */
	bool fd_sent;     /* a handshaken socket went to conn; under mu */
	uint64_t flags;   /* its distribution flags (DFLAG_*, handshake.h), from
			   * the last handshake; 0 before the first; under mu */
	struct rec *recs; /* links and monitors across this connection */
	uint32_t nrecs, crecs;
	/* The creation its own processes last spoke with (a link, monitor,
	 * exit or send by name from one of them); 0: not heard yet. */
	uint32_t creation;
};

/* A remote pid: an Erlang pid of a peer. peer NOPEER: a pid of this
 * node's earlier incarnation, which reaches nobody; RP_FREE: a free entry.
 * Its kr_pid: GEN_REMOTE << 32 | gen << RP_IDX_BITS | index. Entries of a
 * peer's dead incarnation are freed when a process of a later one is
 * heard from (kri_dist_heard); a freed index is reused (oldest freed
 * first) with its generation stepped (mod RP_GENS), so a kr_pid of the
 * dead incarnation, still held by a program, names nothing: sends to it
 * are dropped, as Erlang drops them. */
#define NOPEER      UINT32_MAX
#define RP_FREE     (UINT32_MAX - 1)
#define RP_IDX_BITS 22u
#define RP_IDX_MASK ((1u << RP_IDX_BITS) - 1)
#define RP_GENS     (1u << (32 - RP_IDX_BITS))
/* A name monitored on a peer (kr_node_monitor_name) has an entry too, so
 * that its monitors have a kr_pid to be held by: peer, id (its index in
 * node.names), serial NAME_SERIAL and creation 0, a key no Erlang pid has
 * (pid_in refuses one). Kept while the node lives; never reclaimed with an
 * incarnation (the name is the peer's, whatever its creation). */
#define NAME_SERIAL GEN_REMOTE
struct rpid {
	uint32_t peer, id, serial, creation; /* the key */
	uint32_t gen;                        /* of the index */
	uint32_t next;                       /* free: the next free index + 1, 0 last */
};

struct node {
	struct kri_remote ops; /* first: rt->remote points here */
	kr_runtime *rt;
	ei_cnode ec;
	char name[MAXNODELEN + 1];
	char cookie[256]; /* the handshake's (handshake.c); set at start */
	uint32_t creation;
	int lfd, epmd_fd;
	uint16_t port;
	unsigned tick_ms, setup_ms;
	pthread_t acceptor;
	atomic_bool stop; /* relaxed: a flag the accept loop polls between timeouts */

	pthread_mutex_t mu; /* everything below, and struct peer */
	pthread_cond_t cv;  /* peer states; helpers leaving */
	struct peer **peers;
	uint32_t npeers, cpeers;
	struct rpid *rp; /* remote pids, by index */
	uint32_t nrp, crp;
	uint32_t *rph; /* open addressing over rp's live entries: index + 1, 0 empty */
	uint32_t rphmask;
	uint32_t rplive;             /* entries in use */
	uint32_t rpfree, rpfree_end; /* the free list, oldest first: index + 1, 0 none */
	struct nwatch {              /* kr_node_monitor's watches */
		kr_pid pid;
		uint32_t peer;
	} * nw;
	uint32_t nnw, cnw;
	struct nname { /* names monitored on peers (kr_node_monitor_name) */
		uint32_t peer;
		char *name; /* malloc'd */
	} * names;
	uint32_t nnames, cnames;
	struct inref *inrefs; /* Erlang references of monitors on local processes */
	uint32_t ninrefs;     /* entries (used and free) */
	uint32_t inref_free;  /* the first free entry, UINT32_MAX: none */
	uint32_t inrefs_live; /* entries in use */
	uint64_t unlink_id;   /* the last UNLINK_ID's id (never 0) */
	unsigned helpers;     /* connect threads running */
	uint32_t connections;
	uint64_t accepted, refused;
	int last_refusal;

	/* The stats segment's node block (krill_stats.h), or NULL; its
	 * entries: a bit each in slots, under mu (conn.c publishes them). */
	struct kr_stats_node *pub;
	uint64_t slots, unlisted;

	/* Counters the connection processes add to (relaxed: statistics). */
	_Atomic uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
};

/* node.c */
struct node *kri_dist_node(kr_runtime *rt);
/* epmd's port: ERL_EPMD_PORT, else 4369. */
uint16_t kri_dist_epmd_port(void);
/* The peer named name (made if new); under mu. NULL: -ENOMEM. */
struct peer *kri_dist_peer(struct node *nd, const char *name, uint32_t *idx);
/* The connection process of peer i, started (and a connect begun) if it
 * has none; under mu. ctx: the caller if a process, else NULL. */
int kri_dist_conn_of(struct node *nd, kr_ctx *ctx, uint32_t i, kr_pid *out);
/* The connection of peer i has gone: from its own process, which tells
 * the local ends of its links and monitors (KR_NOCONNECTION). */
void kri_dist_conn_gone(struct node *nd, kr_ctx *ctx, uint32_t i);
/* Links and monitors across peer i (under mu). */
int kri_dist_rec_add(struct node *nd, uint32_t i, int kind, kr_pid local, kr_pid remote,
		     uint64_t ref);
void kri_dist_rec_del(struct node *nd, uint32_t i, int kind, kr_pid local, kr_pid remote,
		      uint64_t ref);
/* Is an unlink of local's from remote across peer i awaiting its ack
 * (a REC_UNLINK, any id)? end: forget it (local linked again, or an exit
 * signal from remote came). Under mu. */
bool kri_dist_unlinking(struct node *nd, uint32_t i, kr_pid local, kr_pid remote, bool end);
/* In-refs (under mu). new: an id for an Erlang reference made by peer, of
 * a monitor by name if name; 0: -ENOMEM, or a reference not of that peer.
 * get: the reference of id and its name ("" if by pid) (-ESRCH: none, or
 * freed). free: let id go (none: nothing). find: the id
 * held by a REC_MON_IN of peer i from remote for r, or 0. */
uint64_t kri_dist_inref_new(struct node *nd, uint32_t peer, const erlang_ref *r, const char *name);
int kri_dist_inref_get(struct node *nd, uint64_t id, erlang_ref *out, char name[MAXATOMLEN]);
void kri_dist_inref_free(struct node *nd, uint64_t id);
/* Peer i's incarnation is creation: a handshake with it named it, or a
 * process of it spoke (from: a pid of its own, in a frame on its
 * connection that only a live process sends). Note it, and free the
 * peer's remote pids of any other (under mu). */
void kri_dist_heard(struct node *nd, uint32_t i, uint32_t creation);
/* kr_node_pid_from_ei for a pid in a frame from peer i; live: the frame is
 * one only a live process of its node sends (LINK, UNLINK, EXIT2,
 * MONITOR_P, DEMONITOR_P, REG_SEND, SEND_SENDER: not EXIT or
 * MONITOR_P_EXIT, whose sender may be the dead pid a reply names), so a
 * pid of peer i there gives its incarnation (kri_dist_heard). */
int kri_dist_pid_in(struct node *nd, uint32_t i, const erlang_pid *e, bool live, kr_pid *out);
uint64_t kri_dist_inref_find(struct node *nd, uint32_t i, kr_pid remote, const erlang_ref *r);
/* The kr_pid that stands for name on peer i (monitors by name hold it),
 * made if make; under mu. -ESRCH: none (make false), -ENOMEM. */
int kri_dist_name_pid(struct node *nd, uint32_t i, const char *name, bool make, kr_pid *out);
/* Reasons as Erlang terms, both ways (node.c). */
int kri_dist_enc_reason(ei_x_buff *x, uint32_t reason, const void *payload, uint32_t plen);
int kri_dist_dec_reason(const char *b, int *i, uint32_t *reason, unsigned char *payload,
			uint32_t *plen);
/* A whole frame for a control message: frame_begin, encode, frame_end. */
int kri_dist_frame_begin(ei_x_buff *x);
void kri_dist_frame_end(ei_x_buff *x);
/* Encode our monitor ref r as an Erlang reference of this node. r takes
 * bits 0..13 of the third word; mark is OR-ed into the spare bits above
 * (0 for a plain monitor ref, gen_call.c's CALL_MARK for a call's). */
int kri_dist_x_encode_ref(struct node *nd, ei_x_buff *x, uint64_t r, uint32_t mark);
void kri_dist_conn_up(struct node *nd, kr_ctx *ctx, uint32_t i);

/* gen_call.c. t (len bytes, version byte first), a message for the local
 * to: if it is {Ref, Reply} with Ref a call reference of ours, deliver it
 * as kr_call's KR_TAG_REPLY and return true. */
bool kri_dist_call_reply(struct node *nd, kr_ctx *ctx, kr_pid to, kr_pid from, const char *t,
			 uint32_t len);

/* The connection of peer i is up or gone: its stats entry, taken and
 * given back under mu (-1: none, the table is full or stats are off). */
int kri_dist_slot_take(struct node *nd);
void kri_dist_slot_give(struct node *nd, int slot);

/* Writes to the stats segment, by its protocol (core/sched/stats.c): the
 * block's counter odd, the fields, the counter even. Relaxed for the first
 * bump and release for the fields and the last: a reader that sees the
 * even counter again sees the fields whole (plain moves on x86); atomic,
 * so readers that race by design are no data race. One writer a block. */
static inline void kri_pub_begin(_Atomic uint64_t *seq)
{
	atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}
static inline void kri_pub_put(uint64_t *field, uint64_t v)
{
	atomic_store_explicit((_Atomic uint64_t *)field, v, memory_order_release);
}
static inline void kri_pub_end(_Atomic uint64_t *seq)
{
	atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1,
			      memory_order_release);
}
/* A NUL-terminated string into a char field of n bytes (n % 8 == 0). */
static inline void kri_pub_str(char *field, size_t n, const char *s)
{
	for (size_t k = 0; k < n; k += 8) {
		union {
			char c[8];
			uint64_t w;
		} u = {{0}};
		size_t l = strnlen(s, n - 1);
		for (size_t j = 0; j < 8 && k + j < l; j++)
			u.c[j] = s[k + j];
		kri_pub_put((uint64_t *)(void *)(field + k), u.w);
	}
}

/* conn.c */
void kri_dist_conn(kr_ctx *ctx, void *state, const kr_msg *msg);
struct conn *kri_dist_conn_new(struct node *nd, uint32_t peer);
void kri_dist_conn_free(struct conn *c);
/* Check and take one frame's payload (after the length word): deliver
 * what it carries. 0, or -EPROTO: malformed (the connection closes). */
int kri_dist_frame(struct conn *c, kr_ctx *ctx, const char *buf, uint32_t n);

#endif
