/* krill_dist — a krill runtime as a node of an Erlang cluster.
 *
 * The wire is Erlang's own distribution protocol. The external term format
 * and the epmd registration are Erlang's erl_interface (ei: include
 * <ei.h>, link -lei); the handshake is krill's own (version 6, OTP 23 and
 * later), so that it can offer what ei's does not: monitors with Erlang
 * nodes. Built when meson finds ei (Debian's erlang-dev) and Nettle
 * (nettle-dev, the handshake's MD5); without them neither this header nor
 * these calls exist.
 *
 * Erlang distribution is plaintext: cookies guard against mistakes, not
 * attackers. Listen on loopback or a trusted network only.
 *
 * What a node gives (see each call):
 *   - a name (name@host) and a cookie; published to epmd (started if none
 *     answers, as erl does; ERL_EPMD_PORT picks the cluster's port);
 *   - connections accepted and made on first use of a remote pid; each is
 *     a krill process that owns the socket through the io_uring layer, so
 *     no scheduler thread waits on the network (handshakes run on helper
 *     threads of the node, blocking calls bounded by setup_ms, then the
 *     socket is handed over);
 *   - remote pids: a kr_pid that names a process of another node. kr_send
 *     to one sends {krill, Tag, Binary} there; an Erlang pid is a remote
 *     pid here and a krill pid is a real Erlang pid there (node, id =
 *     slot, serial = generation, creation);
 *   - messages from other nodes as KR_TAG_DIST messages (a kr_dist_msg:
 *     the sender and the term in ei's external format), except
 *     {krill, Tag, Binary} with Tag below KR_TAG_SYSTEM, which arrives as
 *     an ordinary message (tag, the binary's bytes), so two krill nodes
 *     need no encoding step.
 *
 * Links and exit signals work across nodes with the usual calls (kr_link,
 * kr_unlink, kr_send_exit to a remote pid; an Erlang process may link to a
 * krill one, and unlink: Erlang's link protocol, UNLINK_ID and its ack, so
 * an exit signal that crosses an unlink is ignored, either way). kr_monitor and kr_demonitor of a
 * remote pid send Erlang's MONITOR_P and DEMONITOR_P, and a krill or Erlang node answers with the
 * DOWN and the real reason; a process of another node may monitor a krill
 * process, by pid or by registered name ({Name, Node}), and gets its DOWN
 * with the real reason (noproc at once for a pid that is dead or never
 * was, or a name nobody holds). A krill process monitors {Name, Node}
 * with kr_node_monitor_name. When a connection is lost, or cannot
 * be made, every process linked to a pid of that node gets an exit signal,
 * and every monitor of one a DOWN, with reason KR_NOCONNECTION. Reasons
 * cross as Erlang terms: KR_NORMAL as normal, KR_SHUTDOWN shutdown,
 * KR_KILL kill, KR_KILLED killed, KR_NOPROC noproc, KR_NOCONNECTION
 * noconnection, any other N as {krill, N}, and back; any other Erlang
 * reason arrives as KR_REASON_TERM. kr_rt_exit to a remote pid gives
 * -ESRCH.
 *
 * gen_server calls both ways: kr_node_call (a stackful process calls an
 * Erlang gen_server, or any process answering '$gen_call'), the
 * kr_node_call_send / kr_node_call_result pair (the same from a behaviour,
 * without blocking), and kr_node_gen_call_in / kr_node_gen_reply (a krill
 * process answers an Erlang gen_server:call).
 */
#ifndef KRILL_DIST_H
#define KRILL_DIST_H

#include <ei.h>

#include "krill.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A message from another node: the data is a kr_dist_msg. (Not
 * 0xffff0005: that is krill.h's KR_TAG_REPLY.) */
#define KR_TAG_DIST 0xffff0006u

/* kr_node_monitor's messages: the data is the node's name, NUL ended. */
#define KR_TAG_NODEUP   0xffff0007u
#define KR_TAG_NODEDOWN 0xffff0008u

/* An exit reason from another node that is none of the above: the
 * payload holds the reason term in the external format (version byte
 * first) if it fits in KR_PAYLOAD_MAX bytes, else nothing (len 0). */
#define KR_REASON_TERM 7u

typedef struct kr_dist_msg {
	kr_pid from;  /* the sender (a remote pid), or 0 when the peer did not say */
	uint32_t len; /* bytes of term */
	uint32_t pad;
#ifndef __cplusplus
	unsigned char term[]; /* the message in the external format: starts with
			       * the version byte (131); ei_decode_version first */
#endif
} kr_dist_msg;

/* dm->term, in C and C++. */
static inline const char *kr_dist_msg_term(const kr_dist_msg *dm)
{
	return (const char *)(dm + 1);
}

typedef struct kr_node_config {
	/* "name@host": required. host as Erlang's -sname (a plain host name)
	 * or -name (a dotted name or an IP address); peers name it so. */
	const char *name;
	/* The cookie. NULL: the KRILL_COOKIE environment variable, else
	 * ~/.erlang.cookie (its first line), as erl reads it. */
	const char *cookie;
	/* The numeric IPv4 address to listen on. NULL: 127.0.0.1. */
	const char *listen;
	/* The port to listen on; 0: any (epmd tells peers which). */
	uint16_t port;
	/* net_ticktime in milliseconds (0: 60000, Erlang's default): a tick
	 * goes out every quarter of it when nothing else did, and a peer
	 * heard from not at all for that long is taken for dead. */
	unsigned ticktime_ms;
	/* How long kr_node_connect and a connection on first use may take
	 * (epmd, TCP and the handshake), in ms; 0: 7000, as net_setuptime. */
	unsigned setup_ms;
} kr_node_config;

void kr_node_config_init(kr_node_config *c);

/* Make rt a node: listen, publish to epmd (starting `epmd -daemon` when
 * none answers, then waiting up to 2 s for it) and accept connections on
 * a helper thread. Call from the controlling thread (not a behaviour),
 * before or after kr_start; the node stops when rt is freed. A node does
 * not keep the runtime alive (kr_wait returns when no process is left;
 * a live connection is a process, though). Errors: -EINVAL: cfg NULL,
 * name not name@host, or too long (alive part over 253 bytes, name over
 * 255), listen not an IPv4 address, or no cookie found (none given, no
 * KRILL_COOKIE, no readable ~/.erlang.cookie); -EALREADY: rt is a node
 * already; -EDEADLK: called from a behaviour; -EADDRINUSE, -errno: the
 * listening socket; -EHOSTUNREACH: epmd could not be reached or started;
 * -EEXIST: epmd has the name already; -ENOMEM. */
int kr_node_start(kr_runtime *rt, const kr_node_config *cfg);

/* Connect to node now and wait for the handshake (at most setup_ms). Not
 * from a behaviour (-EDEADLK); a send to a remote pid or name connects on
 * its own (and a failed connect ends links and monitors across it with
 * KR_NOCONNECTION). 0: connected (or was). -EINVAL: no node on rt, or node
 * not name@host; -EHOSTUNREACH: the host is unknown, its epmd did not
 * answer or does not know the name, the node's port refused us, or
 * another node answered there; -EACCES: the peer closed the handshake
 * after our challenge reply, or its digest was wrong (the cookies
 * differ); -ECONNREFUSED: the peer answered not_allowed; -EPROTO: the
 * peer broke the handshake (a malformed or oversized message, a version
 * 5 only node, flags short of what ei's terms need); -ETIMEDOUT; -ENOMEM. */
int kr_node_connect(kr_runtime *rt, const char *node);

/* What kr_node_info reports. */
typedef struct kr_node_info {
	char name[MAXNODELEN + 1];
	uint32_t creation;            /* this incarnation, from epmd */
	uint16_t port;                /* the port it listens on */
	uint32_t connections;         /* peers connected now */
	uint64_t accepted;            /* handshakes accepted, ever */
	uint64_t refused;             /* incoming handshakes that failed */
	int last_refusal;             /* why the last one failed: -EACCES (a wrong
				       * cookie: the digest did not match), -EIO
				       * (the peer closed), -EPROTO (a malformed
				       * or oversized message), -ETIMEDOUT */
	uint64_t msgs_in, msgs_out;   /* messages, all connections, ever */
	uint64_t bytes_in, bytes_out; /* frame bytes, ticks included */
	/* The node's tables now: what a peer that comes and goes must not
	 * grow (see kr_node_pid_from_ei on remote pids of a dead incarnation). */
	uint32_t peers;       /* nodes known by name (one per name, kept) */
	uint32_t remote_pids; /* remote pids held (and names monitored on
			       * peers: kr_node_monitor_name) */
	uint32_t inrefs;      /* monitors remote processes hold on local ones */
	uint32_t recs;        /* links and monitors across connections up */
	uint32_t watches;     /* kr_node_monitor watches */
} kr_node_info;
/* Any thread. -EINVAL: rt NULL or not a node. */
int kr_node_info_get(kr_runtime *rt, kr_node_info *out);

/* The remote pid for an Erlang pid (decoded with ei_decode_pid): a pid of
 * another node becomes a remote pid (the same kr_pid each time); one of
 * this node is the local pid it names. A pid of this node's earlier
 * incarnation (another creation) becomes a pid that reaches nobody:
 * sends to it are dropped. Each node start takes a new random creation,
 * so a restarted krill node is a new incarnation to its peers.
 *
 * Remote pids of a dead incarnation are reclaimed: when a handshake with
 * a peer names another creation than before (a restarted node), or a
 * process of it speaks with one (a link, unlink, exit signal, monitor or
 * demonitor from it, or a send by name, whose frames name a live sender),
 * the node forgets that peer's pids of every other creation (but those
 * its links and monitors across the connection still name). A kr_pid
 * of those still held then reaches nobody, as in Erlang: kr_send to it
 * returns 0 and drops the message, kr_link and kr_monitor see a pid that
 * does not exist, kr_node_pid_to_ei gives -ESRCH; it names no other pid
 * until its table entry has been reused 1024 times (a generation in the
 * kr_pid).
 * -EINVAL: not a node, or a pid of another node with serial 0xffffffff
 * and creation 0, which no node makes (that key stands for names:
 * kr_node_monitor_name); -ENOMEM (also past 4M remote pids held). */
int kr_node_pid_from_ei(kr_runtime *rt, const erlang_pid *e, kr_pid *out);
/* The Erlang pid for a kr_pid (local or remote). -EINVAL: not a node;
 * -ESRCH: a remote pid this node never made, one of a dead incarnation
 * that has been reclaimed (see kr_node_pid_from_ei), or the kr_pid that
 * stands for a name monitored on another node (kr_node_monitor_name). */
int kr_node_pid_to_ei(kr_runtime *rt, kr_pid pid, erlang_pid *out);
/* ei_x_encode_pid of kr_node_pid_to_ei(pid). Errors as it, -ENOMEM. */
int kr_node_x_encode_pid(kr_runtime *rt, ei_x_buff *x, kr_pid pid);

/* Send a term to pid: x holds one term in the external format, made with
 * ei_x_new_with_version and ei_x_encode_*. A remote pid gets it as
 * Erlang's Pid ! Term; a local one as a KR_TAG_DIST message from the
 * caller. Messages from one process to another keep their order, kr_send's
 * and these alike. -EINVAL: x NULL or not starting with the version byte,
 * or not a node; -ESRCH: pid never issued; -EMSGSIZE: larger than
 * max_msg; -ENOMEM. */
int kr_node_send_term(kr_ctx *ctx, kr_pid to, const ei_x_buff *x);

/* Send a term to the process registered as name on node ({Name, Node} !
 * Term). node may be this node's name (the name is looked up here).
 * -EINVAL: as kr_node_send_term, or name empty or longer than 255 bytes,
 * or node not name@host; -ENOMEM. A name nobody holds drops it, as in
 * Erlang. */
int kr_node_send_name(kr_ctx *ctx, const char *name, const char *node, const ei_x_buff *x);

/* Watch node (on != 0) or stop (on == 0), as Erlang's monitor_node: the
 * caller gets KR_TAG_NODEUP each time a connection to node comes up (at
 * once if it is up now) and KR_TAG_NODEDOWN each time it goes or a
 * connect fails; on connects to node if it is not. One watch per process
 * and node (a second on adds none, but connects); it lasts until turned off
 * or the process exits (its watches go then: a process's first watch
 * registers an exit hook, kr_on_exit's, about 150 bytes once).
 * -EINVAL: not a node, node not name@host or this node; -ENOMEM. */
int kr_node_monitor(kr_ctx *ctx, const char *node, int on);

/* Monitor the process registered as name on node, as Erlang's
 * monitor(process, {Name, Node}): the name is looked up there once, when
 * the monitor arrives, and the monitor then follows the process holding
 * it. The caller gets one KR_TAG_DOWN for *ref, with reason KR_NOPROC
 * when nobody holds the name (at once), the holder's exit reason when it
 * exits (as kr_monitor of a remote pid maps them), or KR_NOCONNECTION
 * when the connection goes or cannot be made; kr_demonitor(ctx, *ref)
 * takes it off. The DOWN's pid (kr_exit_info.pid) stands for {Name, Node}:
 * the same kr_pid for every monitor of that name on that node, and no
 * process (kr_send, kr_link and kr_node_pid_to_ei give -ESRCH for it);
 * the node keeps it, and the name, until it is freed. node may be this
 * node: the name is looked up here now and the monitor is kr_monitor's
 * of its holder (none: a DOWN with KR_NOPROC and pid 0). The peer must
 * offer monitors by name (DFLAG_DIST_MONITOR_NAME: every erl node, and
 * krill's). -EINVAL: not a node, ref NULL, name NULL, empty or over 255
 * bytes, node not name@host; -ENOMEM. */
int kr_node_monitor_name(kr_ctx *ctx, const char *name, const char *node, uint64_t *ref);

/* ---- gen_server calls, both ways ------------------------------------------
 *
 * A call out is Erlang's {'$gen_call', {From, Ref}, Request}: From the
 * caller's pid, Ref a fresh reference of this node (the plain-reference
 * form, which gen_server:reply/2 answers with From ! {Ref, Reply});
 * Request is the term in req (ei_x_new_with_version, then one term). The
 * answer {Ref, Reply} comes back as kr_call's KR_TAG_REPLY, whatever
 * the server is (an Erlang gen_server, or a krill process answering with
 * kr_node_gen_reply, on this node or another). */

/* Call the gen_server to (a remote or a local pid) from a function process
 * (kr_spawn_fn), as kr_call and with its machinery: monitor to, send the
 * call, block until the reply, to's DOWN, or timeout_ms (KR_INFINITY: no
 * limit). 0: *reply's data are Reply in the external format, version
 * byte first (m->len bytes: ei_decode_version, then ei_decode_*), the
 * caller's until its next blocking call. -ESRCH: to went before answering
 * (*reply is the KR_TAG_DOWN message: its kr_exit_info gives the reason,
 * KR_NOCONNECTION when the connection went, KR_NOPROC when to was not
 * alive; an Erlang gen_server's exit reason as a term, KR_REASON_TERM).
 * -ETIMEDOUT: no answer in time (*reply not set;
 * a reply that comes later is dropped, never received). -EINVAL: not a
 * node, req NULL or not starting with the version byte, reply NULL;
 * -EPERM: not a function process; -EMSGSIZE, -ENOMEM, -EAGAIN as kr_call.
 * The monitor is gone when it returns, whatever it returns. */
int kr_node_call(kr_ctx *ctx, kr_pid to, const ei_x_buff *req, uint32_t timeout_ms,
		 const kr_msg **reply);
/* The same to the process registered as name on node ({Name, Node}),
 * monitored by name (kr_node_monitor_name): -ESRCH with KR_NOPROC when
 * nobody holds the name, with the server's reason when it exits before
 * answering, with KR_NOCONNECTION when the connection goes or cannot be
 * made (the DOWN's pid stands for the name). node may be this node (the
 * name is looked up now). -EINVAL also: name NULL, empty or over 255
 * bytes, node not name@host. */
int kr_node_call_name(kr_ctx *ctx, const char *name, const char *node, const ei_x_buff *req,
		      uint32_t timeout_ms, const kr_msg **reply);

/* The call without blocking, from any process (a behaviour too): monitor
 * to (or the name, as kr_node_call_name) and send the call; *ref names it. Then hand each message
 * to kr_node_call_result. To give up (a kr_receive_timeout), kr_demonitor(ref) and forget ref: a
 * reply that comes later is a KR_TAG_REPLY message that kr_node_call_result with another ref does
 * not take (drop it). Errors as kr_node_call, without -EPERM. */
int kr_node_call_send(kr_ctx *ctx, kr_pid to, const ei_x_buff *req, uint64_t *ref);
int kr_node_call_send_name(kr_ctx *ctx, const char *name, const char *node, const ei_x_buff *req,
			   uint64_t *ref);
/* Is m the end of call ref? 1: m is its reply: *term (version byte first)
 * and *len are Reply (m's data; NULL: not wanted), and the monitor is gone.
 * -ESRCH: m is its KR_TAG_DOWN (kr_exit_info: the reason, as
 * kr_node_call's).
 * 0: m is something else. -EINVAL: m NULL or ref 0. */
int kr_node_call_result(kr_ctx *ctx, const kr_msg *m, uint64_t ref, const char **term,
			uint32_t *len);

/* Who called: the caller's pid and the Tag of its call as it came (OTP
 * 25's gen:call sends [alias|Ref]; older ones and kr_node_call a Ref). */
#define KR_NODE_TAG_MAX 512
typedef struct kr_node_from {
	kr_pid pid;
	uint32_t len; /* bytes of tag */
	unsigned char tag[KR_NODE_TAG_MAX];
} kr_node_from;

/* Is m an Erlang gen_server:call, a KR_TAG_DIST message
 * {'$gen_call', {From, Tag}, Request}? From any process. 1: yes; *from
 * names the caller for kr_node_gen_reply (keep it as long as needed: it
 * points into nothing), and Request is the term at *index in *buf (m's
 * data: decode with ei_decode_*(*buf, index, ...); no version byte
 * there). 0: m is something else. -EMSGSIZE: a call whose Tag is longer
 * than KR_NODE_TAG_MAX bytes (it cannot be answered). -EINVAL: an
 * argument NULL, or not a node; -ENOMEM. */
int kr_node_gen_call_in(kr_ctx *ctx, const kr_msg *m, kr_node_from *from, const char **buf,
			int *index);
/* Answer the call from: send {Tag, Reply} to its caller, Reply being the
 * term in reply (ei_x_new_with_version, then one term). From any process,
 * any number of times (the caller takes the first; a caller that gave up
 * drops it). -EINVAL: not a node, from NULL or empty, reply not a term;
 * else as kr_node_send_term. */
int kr_node_gen_reply(kr_ctx *ctx, const kr_node_from *from, const ei_x_buff *reply);

#ifdef __cplusplus
}
#endif

#endif
