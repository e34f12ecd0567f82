/* handshake: Erlang's distribution handshake (version 6, OTP 23+), both
 * sides, on a blocking helper thread of the node; and the epmd lookup of a
 * node's port that the connecting side needs. See handshake.c. */
#ifndef KR_DIST_HANDSHAKE_H
#define KR_DIST_HANDSHAKE_H

#include <stdint.h>

#include <ei.h>

/* Distribution flags (erts/doc erl_dist_protocol, kernel's dist.hrl). */
#define DFLAG_EXTENDED_REFERENCES 0x4ull
#define DFLAG_DIST_MONITOR        0x8ull
#define DFLAG_FUN_TAGS            0x10ull
#define DFLAG_DIST_MONITOR_NAME   0x20ull
#define DFLAG_NEW_FUN_TAGS        0x80ull
#define DFLAG_EXTENDED_PIDS_PORTS 0x100ull
#define DFLAG_EXPORT_PTR_TAG      0x200ull
#define DFLAG_BIT_BINARIES        0x400ull
#define DFLAG_NEW_FLOATS          0x800ull
#define DFLAG_SMALL_ATOM_TAGS     0x4000ull
#define DFLAG_UTF8_ATOMS          0x10000ull
#define DFLAG_MAP_TAG             0x20000ull
#define DFLAG_BIG_CREATION        0x40000ull
#define DFLAG_HANDSHAKE_23        0x1000000ull
#define DFLAG_UNLINK_ID           0x2000000ull
#define DFLAG_MANDATORY_25_DIGEST 0x4000000ull
#define DFLAG_V4_NC               (0x4ull << 32)

/* What we offer: what ei 5.3 offers (0x407074f9c, read off its
 * challenge), plus DFLAG_DIST_MONITOR_NAME, without which erts reduces a
 * monitor of ours to a watch of the connection (erts dist.c). */
#define KRI_HS_FLAGS                                                                            \
	(DFLAG_EXTENDED_REFERENCES | DFLAG_DIST_MONITOR | DFLAG_FUN_TAGS |                      \
	 DFLAG_DIST_MONITOR_NAME | DFLAG_NEW_FUN_TAGS | DFLAG_EXTENDED_PIDS_PORTS |             \
	 DFLAG_EXPORT_PTR_TAG | DFLAG_BIT_BINARIES | DFLAG_NEW_FLOATS | DFLAG_SMALL_ATOM_TAGS | \
	 DFLAG_UTF8_ATOMS | DFLAG_MAP_TAG | DFLAG_BIG_CREATION | DFLAG_HANDSHAKE_23 |           \
	 DFLAG_UNLINK_ID | DFLAG_MANDATORY_25_DIGEST | DFLAG_V4_NC)

/* This node, as the handshake names it. */
struct kri_hs_self {
	const char *name;   /* name@host */
	const char *cookie; /* NUL ended, at most 255 bytes */
	uint32_t creation;
};

/* The other node, as its handshake named it. */
struct kri_hs_peer {
	char name[MAXNODELEN + 1];
	uint64_t flags;
	uint32_t creation;
};

/* The accepting side's answer to a send_name (its status). */
enum kri_hs_status {
	HS_OK,       /* "ok" */
	HS_OK_SIMUL, /* "ok_simultaneous": we were connecting too; theirs wins */
	HS_NOK,      /* "nok": we were connecting too; ours wins */
	HS_ALIVE,    /* "alive": we hold a connection to it already */
};

/* CLOCK_MONOTONIC milliseconds, for deadlines. */
uint64_t kri_hs_now_ms(void);

/* Connect to node (name@host): resolve host, ask its epmd for the port,
 * connect, handshake; by deadline (kri_hs_now_ms). A blocking socket, or
 * -EHOSTUNREACH: host unknown, its epmd unreachable or without that name,
 * the port refused, or another node answered there; -EACCES: the peer closed the handshake after
 * our challenge reply, or its ack digest is wrong (the cookies differ); -EALREADY: it answered nok
 * (its own connection to us wins); -ECONNREFUSED: not_allowed; -EPROTO: a malformed or oversized
 * message; -ETIMEDOUT; -ENOMEM, -errno. */
int kri_hs_connect(const struct kri_hs_self *self, const char *node, uint64_t deadline,
		   struct kri_hs_peer *peer);

/* The accepting side, in two steps so that the node can choose the status
 * from the peer's name: read send_name (a socket accepted on the listen
 * socket), then answer. 0, or -EPROTO, -EIO (the peer closed),
 * -ETIMEDOUT. */
int kri_hs_accept_name(int fd, uint64_t deadline, struct kri_hs_peer *peer);
/* Send status, and for HS_OK and HS_OK_SIMUL (and HS_ALIVE when the peer
 * says true) the challenge; check the reply's digest and send the ack.
 * 0: done (fd is left blocking); -EALREADY: HS_NOK, or the peer answered
 * false to alive; -EACCES: a wrong digest (the cookies differ); -EIO,
 * -EPROTO, -ETIMEDOUT as kri_hs_accept_name. */
int kri_hs_accept_rest(int fd, const struct kri_hs_self *self, enum kri_hs_status st,
		       uint64_t deadline);

/* MD5(cookie ++ decimal challenge), the digest both sides prove the
 * cookie with. */
void kri_hs_digest(const char *cookie, uint32_t challenge, unsigned char out[16]);

#endif
