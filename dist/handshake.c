/* handshake: Erlang's distribution handshake, version 6 (OTP 23 and
 * later; OTP 25 speaks no other), our own rather than ei's, run on the
 * node's accept thread and connect threads with blocking calls bounded by
 * a deadline; the socket then goes to a connection process (node.c).
 *
 * Why our own: erts sends MONITOR_P, DEMONITOR_P and MONITOR_P_EXIT only to
 * a peer whose flags hold both DFLAG_DIST_MONITOR and
 * DFLAG_DIST_MONITOR_NAME, and ei_connect/ei_accept fix their flags inside
 * ei without the latter: every monitor between a krill and an Erlang
 * process was reduced to a watch of the connection. The handshake is a few
 * small messages; the terms stay ei's.
 *
 * Every message is a 2-byte big-endian length and a body (A connects, B
 * accepts):
 *   A -> B  send_name  'N' Flags:8 Creation:4 Nlen:2 Name
 *   B -> A  status     's' "ok" | "ok_simultaneous" | "nok" | "alive" | ...
 *  (A -> B  's' "true" | "false", after "alive")
 *   B -> A  challenge  'N' Flags:8 Challenge:4 Creation:4 Nlen:2 Name
 *   A -> B  reply      'r' Challenge:4 Digest:16   (digest of B's challenge)
 *   B -> A  ack        'a' Digest:16               (digest of A's challenge)
 * Digest = MD5(Cookie ++ the challenge in decimal), by Nettle. A wrong
 * cookie shows on B as a reply digest that does not match (B closes, says
 * nothing) and so on A as the socket closed after its reply: -EACCES on
 * both sides, never logged. Every length read from the peer is bounded:
 * a message over HS_MAX bytes or a name over MAXNODELEN ends the
 * handshake (-EPROTO). The old version 5 messages ('n') are refused: an
 * OTP 25 node never sends them to a node epmd says speaks 6. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nettle/md5.h>

#include "dist/dist.h"
#include "dist/handshake.h"

/* The largest handshake message: a challenge with the longest name. */
#define HS_MAX (1 + 8 + 4 + 4 + 2 + MAXNODELEN)
/* What we need of the peer: the terms ei writes (NEW_PID_EXT,
 * NEWER_REFERENCE_EXT, UTF-8 atoms) and this handshake. OTP 25 also
 * accepts DFLAG_MANDATORY_25_DIGEST as short for all of them. */
#define HS_NEED                                                                     \
	(DFLAG_EXTENDED_REFERENCES | DFLAG_EXTENDED_PIDS_PORTS | DFLAG_UTF8_ATOMS | \
	 DFLAG_BIG_CREATION | DFLAG_HANDSHAKE_23)

uint64_t kri_hs_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

void kri_hs_digest(const char *cookie, uint32_t challenge, unsigned char out[16])
{
	char dec[16];
	int n = snprintf(dec, sizeof(dec), "%u", challenge);
	struct md5_ctx m;
	md5_init(&m);
	md5_update(&m, strlen(cookie), (const uint8_t *)cookie);
	md5_update(&m, (size_t)n, (const uint8_t *)dec);
	md5_digest(&m, MD5_DIGEST_SIZE, out);
}

static uint32_t challenge_new(void)
{
	uint32_t c;
	if (getrandom(&c, sizeof(c), 0) == (ssize_t)sizeof(c))
		return c;
	/* No entropy to be had: a challenge guards against replay, not
	 * secrecy (the cookie never crosses); time and address differ. */
	uint64_t t = kri_hs_now_ms() * 0x9e3779b97f4a7c15ull ^ (uintptr_t)&c;
	return (uint32_t)(t >> 32 ^ t);
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
	uint64_t now = kri_hs_now_ms();
	if (now >= deadline)
		return -ETIMEDOUT;
	struct pollfd p = {.fd = fd, .events = ev};
	int r = poll(&p, 1, (int)(deadline - now > 60000 ? 60000 : deadline - now));
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return 0; /* ready, or not yet: the caller tries and comes back */
}

/* All n bytes, by the deadline. Reads: -EIO when the peer closes. */
static int io_all(int fd, void *b, size_t n, bool wr, uint64_t deadline)
{
	unsigned char *p = b;
	while (n) {
		ssize_t r = wr ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r == 0)
			return -EIO;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return errno == ECONNRESET || errno == EPIPE ? -EIO : -errno;
		int rc = wait_fd(fd, wr ? POLLOUT : POLLIN, deadline);
		if (rc)
			return rc;
	}
	return 0;
}

static void put16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static uint32_t get16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t get32(const unsigned char *p)
{
	return get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* One message: its length word and body. */
static int msg_send(int fd, const unsigned char *b, uint32_t n, uint64_t deadline)
{
	unsigned char m[2 + HS_MAX];
	put16(m, n);
	memcpy(m + 2, b, n);
	return io_all(fd, m, 2 + (size_t)n, true, deadline);
}

/* One message into b (HS_MAX bytes): its length in *n, at least 1. */
static int msg_recv(int fd, unsigned char *b, uint32_t *n, uint64_t deadline)
{
	unsigned char h[2];
	int rc = io_all(fd, h, 2, false, deadline);
	if (rc)
		return rc;
	*n = get16(h);
	if (*n == 0 || *n > HS_MAX)
		return -EPROTO;
	return io_all(fd, b, *n, false, deadline);
}

/* 'N' Flags:8 [Challenge:4] Creation:4 Nlen:2 Name: the peer's name (a
 * node name, name@host), flags and creation; its challenge if ch. */
static int parse_n(const unsigned char *b, uint32_t n, struct kri_hs_peer *peer, uint32_t *ch)
{
	uint32_t at = 1 + 8 + (ch ? 4 : 0);
	if (n < at + 6 || b[0] != 'N')
		return -EPROTO;
	uint32_t nlen = get16(b + at + 4);
	if (nlen == 0 || nlen > MAXNODELEN || at + 6 + nlen != n || memchr(b + at + 6, 0, nlen) ||
	    !memchr(b + at + 6, '@', nlen))
		return -EPROTO;
	peer->flags = get64(b + 1);
	if (ch)
		*ch = get32(b + 9);
	peer->creation = get32(b + at);
	memcpy(peer->name, b + at + 6, nlen);
	peer->name[nlen] = 0;
	if ((peer->flags & HS_NEED) != HS_NEED && !(peer->flags & DFLAG_MANDATORY_25_DIGEST))
		return -EPROTO;
	return 0;
}

/* 'N' Flags:8 [Challenge:4] Creation:4 Nlen:2 Name, of ours. */
static uint32_t put_n(unsigned char *b, const struct kri_hs_self *self, const uint32_t *ch)
{
	size_t nlen = strlen(self->name);
	uint32_t at = 1 + 8 + (ch ? 4 : 0);
	b[0] = 'N';
	put32(b + 1, (uint32_t)(KRI_HS_FLAGS >> 32));
	put32(b + 5, (uint32_t)KRI_HS_FLAGS);
	if (ch)
		put32(b + 9, *ch);
	put32(b + at, self->creation);
	put16(b + at + 4, (uint32_t)nlen);
	memcpy(b + at + 6, self->name, nlen);
	return at + 6 + (uint32_t)nlen;
}

static bool digest_ok(const unsigned char *got, const char *cookie, uint32_t ch)
{
	unsigned char want[16];
	kri_hs_digest(cookie, ch, want);
	unsigned diff = 0; /* all 16 bytes, whatever the first says */
	for (int k = 0; k < 16; k++)
		diff |= (unsigned)(got[k] ^ want[k]);
	return diff == 0;
}

static int blocking(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl & ~O_NONBLOCK : fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* ---- the connecting side ------------------------------------------------- */

/* A TCP connection to addr:port by the deadline, non-blocking. */
static int tcp_to(const struct in_addr *addr, uint16_t port, uint64_t deadline)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = *addr};
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS) {
		close(fd);
		return -EHOSTUNREACH;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		uint64_t now = kri_hs_now_ms();
		if (now >= deadline) {
			close(fd);
			return -ETIMEDOUT;
		}
		int r = poll(&p, 1, (int)(deadline - now > 60000 ? 60000 : deadline - now));
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR) {
			close(fd);
			return -errno;
		}
	}
	int err = 0;
	socklen_t l = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) || err) {
		close(fd);
		return -EHOSTUNREACH;
	}
	return fd;
}

/* PORT_PLEASE2_REQ to the epmd of addr: the distribution port of alive.
 * -EHOSTUNREACH: no epmd, or it knows no such name, or the node speaks no
 * version 6. */
static int epmd_port_of(const struct in_addr *addr, const char *alive, uint64_t deadline)
{
	int fd = tcp_to(addr, kri_dist_epmd_port(), deadline);
	if (fd < 0)
		return fd == -ETIMEDOUT ? fd : -EHOSTUNREACH;
	unsigned char req[3 + EI_MAXALIVELEN];
	size_t n = strlen(alive);
	put16(req, (uint32_t)(n + 1));
	req[2] = 122; /* PORT_PLEASE2_REQ */
	memcpy(req + 3, alive, n);
	/* PORT2_RESP: 119 Result:1, then on success PortNo:2 NodeType:1
	 * Protocol:1 HighestVersion:2 LowestVersion:2 (name and extra
	 * follow; not needed). */
	unsigned char r[10];
	int rc = io_all(fd, req, 3 + n, true, deadline);
	if (!rc)
		rc = io_all(fd, r, 2, false, deadline);
	if (!rc && (r[0] != 119 || r[1] != 0))
		rc = -EHOSTUNREACH;
	if (!rc)
		rc = io_all(fd, r + 2, 8, false, deadline);
	close(fd);
	if (rc)
		return rc == -ETIMEDOUT ? rc : -EHOSTUNREACH;
	if (get16(r + 6) < 6 || get16(r + 8) > 6)
		return -EHOSTUNREACH;
	return (int)get16(r + 2);
}

static int resolve(const char *host, struct in_addr *out)
{
	struct addrinfo hint = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = 0;
	if (getaddrinfo(host, 0, &hint, &res) || !res)
		return -EHOSTUNREACH;
	*out = ((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	return 0;
}

static int handshake_out(int fd, const struct kri_hs_self *self, const char *node,
			 uint64_t deadline, struct kri_hs_peer *peer)
{
	unsigned char b[HS_MAX];
	uint32_t n = 0;
	int rc = msg_send(fd, b, put_n(b, self, 0), deadline);
	if (!rc)
		rc = msg_recv(fd, b, &n, deadline);
	if (rc)
		return rc == -EIO ? -EHOSTUNREACH : rc;
	if (b[0] != 's')
		return -EPROTO;
#define IS(s) (n - 1 == sizeof(s) - 1 && !memcmp(b + 1, s, sizeof(s) - 1))
	if (IS("nok"))
		return -EALREADY;
	if (IS("not_allowed"))
		return -ECONNREFUSED;
	if (IS("alive")) {
		/* It holds a connection to us that we do not: that one is dead
		 * to us, so go on (true), as erts does. */
		static const unsigned char yes[] = "strue";
		if ((rc = msg_send(fd, yes, sizeof(yes) - 1, deadline)))
			return rc;
	} else if (!IS("ok") && !IS("ok_simultaneous")) {
		return -EPROTO; /* "named:" answers a request we never make */
	}
#undef IS
	uint32_t theirs, ours = challenge_new();
	if ((rc = msg_recv(fd, b, &n, deadline)) || (rc = parse_n(b, n, peer, &theirs)))
		return rc == -EIO ? -EHOSTUNREACH : rc;
	if (strcmp(peer->name, node))
		return -EHOSTUNREACH; /* another node holds that port now */
	b[0] = 'r';
	put32(b + 1, ours);
	kri_hs_digest(self->cookie, theirs, b + 5);
	if ((rc = msg_send(fd, b, 21, deadline)))
		return rc;
	/* Closed now: it did not take our digest (the cookies differ). */
	if ((rc = msg_recv(fd, b, &n, deadline)))
		return rc == -EIO ? -EACCES : rc;
	if (n != 17 || b[0] != 'a')
		return -EPROTO;
	return digest_ok(b + 1, self->cookie, ours) ? 0 : -EACCES;
}

int kri_hs_connect(const struct kri_hs_self *self, const char *node, uint64_t deadline,
		   struct kri_hs_peer *peer)
{
	const char *at = strchr(node, '@');
	char alive[EI_MAXALIVELEN + 1];
	struct in_addr addr;
	if (!at || at == node || (size_t)(at - node) > EI_MAXALIVELEN)
		return -EINVAL;
	memcpy(alive, node, (size_t)(at - node));
	alive[at - node] = 0;
	int rc = resolve(at + 1, &addr);
	int port = rc ? rc : epmd_port_of(&addr, alive, deadline);
	if (port < 0)
		return port;
	int fd = tcp_to(&addr, (uint16_t)port, deadline);
	if (fd < 0)
		return fd;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = handshake_out(fd, self, node, deadline, peer);
	if (!rc)
		rc = blocking(fd, true);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

/* ---- the accepting side -------------------------------------------------- */

int kri_hs_accept_name(int fd, uint64_t deadline, struct kri_hs_peer *peer)
{
	unsigned char b[HS_MAX];
	uint32_t n = 0;
	int rc = blocking(fd, false);
	if (!rc)
		rc = msg_recv(fd, b, &n, deadline);
	if (!rc && b[0] != 'N')
		rc = -EPROTO; /* version 5's 'n', or nonsense */
	/* send_name is a challenge without the challenge. */
	return rc ? rc : parse_n(b, n, peer, 0);
}

int kri_hs_accept_rest(int fd, const struct kri_hs_self *self, enum kri_hs_status st,
		       uint64_t deadline)
{
	static const char *const say[] = {[HS_OK] = "sok",
					  [HS_OK_SIMUL] = "sok_simultaneous",
					  [HS_NOK] = "snok",
					  [HS_ALIVE] = "salive"};
	unsigned char b[HS_MAX];
	uint32_t n = 0;
	int rc = msg_send(fd, (const unsigned char *)say[st], (uint32_t)strlen(say[st]), deadline);
	if (rc)
		return rc;
	if (st == HS_NOK)
		return -EALREADY;
	if (st == HS_ALIVE) {
		if ((rc = msg_recv(fd, b, &n, deadline)))
			return rc;
		if (n == 5 && !memcmp(b, "strue", 5))
			; /* go on: the caller replaces the old connection */
		else if (n == 6 && !memcmp(b, "sfalse", 6))
			return -EALREADY;
		else
			return -EPROTO;
	}
	uint32_t ours = challenge_new(), theirs;
	if ((rc = msg_send(fd, b, put_n(b, self, &ours), deadline)) ||
	    (rc = msg_recv(fd, b, &n, deadline)))
		return rc;
	if (n != 21 || b[0] != 'r')
		return -EPROTO;
	theirs = get32(b + 1);
	if (!digest_ok(b + 5, self->cookie, ours))
		return -EACCES; /* the caller closes: that is all the peer hears */
	b[0] = 'a';
	kri_hs_digest(self->cookie, theirs, b + 1);
	if ((rc = msg_send(fd, b, 17, deadline)))
		return rc;
	return blocking(fd, true);
}
