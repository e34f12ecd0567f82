/* node: kr_node_start and what a node keeps: ei's cnode (listen, the
 * epmd registration), the accept thread, the peers, and the table that
 * gives each Erlang pid of another node its kr_pid. Handshakes
 * (handshake.c, our own: ei's lacks DFLAG_DIST_MONITOR_NAME) run with
 * blocking calls on threads of the node's own (the accept thread, a
 * connect thread a connection), never on a scheduler; the connected socket
 * is then handed to a connection process (conn.c), which owns it through
 * io_uring. That hand-over was chosen over a handshake inside the
 * connection process: a blocking exchange of a few small messages with a
 * deadline is simplest on a thread, and no scheduler ever waits on it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist.h"
#include "dist/handshake.h"

extern char **environ;

/* Our tag must be none of krill.h's system tags. */
_Static_assert(KR_TAG_NODEUP != KR_TAG_REPLY && KR_TAG_NODEDOWN != KR_TAG_REPLY &&
		   KR_TAG_NODEUP != KR_TAG_DIST && KR_TAG_NODEDOWN != KR_TAG_DIST,
	       "node tags clash");
_Static_assert(KR_TAG_DIST != KR_TAG_REPLY && KR_TAG_DIST != KR_TAG_IO &&
		   KR_TAG_DIST != KR_TAG_DOWN && KR_TAG_DIST != KR_TAG_EXIT &&
		   KR_TAG_DIST != KR_TAG_TIMEOUT && KR_TAG_DIST > KR_TAG_SYSTEM,
	       "KR_TAG_DIST clashes with a system tag");

#define ACCEPT_POLL_MS 200u
#define EPMD_WAIT_MS   2000u
#define DEFAULT_TICK   60000u
#define DEFAULT_SETUP  7000u
#define COOKIE_MAX     255u

static void node_fini(struct kr_runtime *rt);
static void pub_node(struct node *nd);
static int remote_send(struct kr_runtime *rt, kr_ctx *ctx, kr_pid to, uint32_t tag,
		       const void *data, size_t len);
static int remote_signal(struct kr_runtime *rt, kr_ctx *ctx, kr_pid to, int kind, kr_pid from,
			 uint64_t ref, uint32_t reason, const void *payload, uint32_t plen);

struct node *kri_dist_node(kr_runtime *rt)
{
	if (!rt)
		return 0;
	const struct kri_remote *r = kri_remote_get(rt);
	return r && r->fini == node_fini ? (struct node *)r : 0;
}

void kr_node_config_init(kr_node_config *c)
{
	if (c)
		memset(c, 0, sizeof(*c));
}

/* ---- names and cookies ------------------------------------------------ */

/* name@host with both parts non-empty and within ei's bounds. */
static int split_name(const char *name, char *alive, char *host)
{
	const char *at = name ? strchr(name, '@') : 0;
	if (!at || at == name || !at[1] || strlen(name) > MAXNODELEN || strchr(at + 1, '@'))
		return -EINVAL;
	size_t a = (size_t)(at - name);
	if (a > EI_MAXALIVELEN)
		return -EINVAL;
	memcpy(alive, name, a);
	alive[a] = 0;
	snprintf(host, EI_MAXHOSTNAMELEN + 1, "%s", at + 1);
	return 0;
}

/* The cookie: given, else KRILL_COOKIE, else ~/.erlang.cookie's first line. */
static int find_cookie(const char *given, char *out)
{
	const char *env = getenv("KRILL_COOKIE");
	const char *c = given ? given : env;
	if (c) {
		if (!*c || strlen(c) > COOKIE_MAX)
			return -EINVAL;
		snprintf(out, COOKIE_MAX + 1, "%s", c);
		return 0;
	}
	const char *home = getenv("HOME");
	char path[4096];
	if (!home || snprintf(path, sizeof(path), "%s/.erlang.cookie", home) >= (int)sizeof(path))
		return -EINVAL;
	FILE *f = fopen(path, "re");
	if (!f)
		return -EINVAL;
	char line[COOKIE_MAX + 2];
	char *got = fgets(line, sizeof(line), f);
	fclose(f);
	if (!got)
		return -EINVAL;
	line[strcspn(line, "\r\n")] = 0;
	size_t n = strlen(line);
	if (!n || n > COOKIE_MAX)
		return -EINVAL;
	memcpy(out, line, n + 1);
	return 0;
}

/* ---- epmd ----------------------------------------------------------------- */

uint16_t kri_dist_epmd_port(void)
{
	const char *p = getenv("ERL_EPMD_PORT");
	long v = p ? strtol(p, 0, 10) : 0;
	return v > 0 && v < 65536 ? (uint16_t)v : 4369;
}

/* Does an epmd answer on this host's loopback? */
static bool epmd_answers(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(kri_dist_epmd_port())};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* `epmd -daemon`, as erl starts it (it reads ERL_EPMD_PORT itself). */
static void epmd_start(void)
{
	char *argv[] = {"epmd", "-daemon", 0};
	pid_t pid;
	if (posix_spawnp(&pid, "epmd", 0, 0, argv, environ) == 0)
		waitpid(pid, 0, 0); /* the daemon forks; its parent returns at once */
}

static void sleep_ms(unsigned ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&t, 0);
}

static int publish(struct node *nd)
{
	bool started = false;
	for (unsigned waited = 0;; waited += 50) {
		int fd = ei_publish_tmo(&nd->ec, nd->port, 1000);
		if (fd >= 0)
			return fd;
		if (epmd_answers())
			return -EEXIST; /* epmd is there and said no: the name is taken */
		if (!started) {
			epmd_start();
			started = true;
		}
		if (waited >= EPMD_WAIT_MS)
			return -EHOSTUNREACH;
		sleep_ms(50);
	}
}

/* ---- peers and remote pids (under nd->mu) ---------------------------------- */

struct peer *kri_dist_peer(struct node *nd, const char *name, uint32_t *idx)
{
	for (uint32_t i = 0; i < nd->npeers; i++)
		if (!strcmp(nd->peers[i]->name, name)) {
			*idx = i;
			return nd->peers[i];
		}
	if (nd->npeers == nd->cpeers) {
		uint32_t n = nd->cpeers ? 2 * nd->cpeers : 8;
		struct peer **p = realloc(nd->peers, n * sizeof(*p));
		if (!p)
			return 0;
		nd->peers = p;
		nd->cpeers = n;
	}
	struct peer *p = calloc(1, sizeof(*p));
	if (!p)
		return 0;
	snprintf(p->name, sizeof(p->name), "%s", name);
	*idx = nd->npeers;
	nd->peers[nd->npeers++] = p;
	return p;
}

static uint32_t rp_hash(const struct rpid *r)
{
	uint64_t k = ((uint64_t)r->peer << 32 | r->id) * 0x9e3779b97f4a7c15ull;
	k ^= ((uint64_t)r->serial << 32 | r->creation) * 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(k >> 32 ^ k);
}

static bool rp_same(const struct rpid *a, const struct rpid *b)
{
	return a->peer == b->peer && a->id == b->id && a->serial == b->serial &&
	       a->creation == b->creation;
}

/* The hash over the live entries into h, cap zeroed slots (a power of
 * two); the old one is freed. */
static void rp_rehash_into(struct node *nd, uint32_t *h, uint32_t cap)
{
	for (uint32_t i = 0; i < nd->nrp; i++) {
		if (nd->rp[i].peer == RP_FREE)
			continue;
		uint32_t j = rp_hash(&nd->rp[i]) & (cap - 1);
		while (h[j])
			j = (j + 1) & (cap - 1);
		h[j] = i + 1;
	}
	free(nd->rph);
	nd->rph = h;
	nd->rphmask = cap - 1;
}

static int rp_rehash(struct node *nd, uint32_t cap)
{
	uint32_t *h = calloc(cap, sizeof(*h));
	if (!h)
		return -ENOMEM;
	rp_rehash_into(nd, h, cap);
	return 0;
}

static kr_pid rp_pid(const struct node *nd, uint32_t i)
{
	return (uint64_t)GEN_REMOTE << 32 | nd->rp[i].gen << RP_IDX_BITS | i;
}

/* The entry pid names, or NULL: never issued (*dead 0), or freed with its
 * incarnation (*dead 1). Under mu. */
static struct rpid *rp_get(struct node *nd, kr_pid pid, bool *dead)
{
	uint32_t lo = (uint32_t)pid, i = lo & RP_IDX_MASK;
	*dead = false;
	if (!pid_remote(pid) || i >= nd->nrp)
		return 0;
	struct rpid *r = &nd->rp[i];
	if (r->peer == RP_FREE || r->gen != lo >> RP_IDX_BITS) {
		*dead = true;
		return 0;
	}
	return r;
}

/* Is r the entry of a name monitored on a peer (not a pid)? */
static bool rp_is_name(const struct rpid *r)
{
	return r->peer < RP_FREE && r->serial == NAME_SERIAL && r->creation == 0;
}

/* The index of r in the table, added if new: a free index (the oldest
 * freed), else a new one. */
static int rp_intern(struct node *nd, const struct rpid *r, uint32_t *out)
{
	if (nd->rph) {
		for (uint32_t j = rp_hash(r) & nd->rphmask; nd->rph[j]; j = (j + 1) & nd->rphmask)
			if (rp_same(&nd->rp[nd->rph[j] - 1], r)) {
				*out = nd->rph[j] - 1;
				return 0;
			}
	}
	if (!nd->rpfree && nd->nrp == RP_IDX_MASK + 1)
		return -ENOMEM;
	if (!nd->rpfree && nd->nrp == nd->crp) {
		uint32_t n = nd->crp ? 2 * nd->crp : 64;
		struct rpid *p = realloc(nd->rp, (size_t)n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		nd->rp = p;
		nd->crp = n;
	}
	/* At most half full. */
	if (2 * ((uint64_t)nd->rplive + 1) > (uint64_t)nd->rphmask + 1 || !nd->rph) {
		int rc = rp_rehash(nd, nd->rphmask ? 2 * (nd->rphmask + 1) : 64);
		if (rc)
			return rc;
	}
	uint32_t i, gen = 0;
	if (nd->rpfree) {
		i = nd->rpfree - 1;
		gen = nd->rp[i].gen;
		if (!(nd->rpfree = nd->rp[i].next))
			nd->rpfree_end = 0;
	} else {
		i = nd->nrp++;
	}
	nd->rp[i] = *r;
	nd->rp[i].gen = gen;
	nd->rp[i].next = 0;
	nd->rplive++;
	uint32_t j = rp_hash(r) & nd->rphmask;
	while (nd->rph[j])
		j = (j + 1) & nd->rphmask;
	nd->rph[j] = i + 1;
	*out = i;
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	kr_pid x = *(const kr_pid *)a, y = *(const kr_pid *)b;
	return (x > y) - (x < y);
}

void kri_dist_heard(struct node *nd, uint32_t p, uint32_t creation)
{
	struct peer *pr = nd->peers[p];
	if (pr->creation == creation)
		return;
	/* Every other incarnation of that node is dead: a node has one at a
	 * time, and this frame came from a live process of this one. Kept:
	 * the pids the connection's links and monitors still name (one sent
	 * to a dead pid is answered by an EXIT or MONITOR_P_EXIT naming it,
	 * which must find the kr_pid the local process holds); they go at the
	 * next change. Linear probing cannot just empty a slot: the hash is
	 * rebuilt (once an incarnation). What that needs is taken first: out
	 * of memory, nothing is freed and the next frame tries again. */
	uint32_t *h = nd->rph ? calloc(nd->rphmask + 1, sizeof(*h)) : 0;
	kr_pid *held = pr->nrecs ? malloc(pr->nrecs * sizeof(*held)) : 0;
	if ((nd->rph && !h) || (pr->nrecs && !held)) {
		free(h);
		free(held);
		return;
	}
	pr->creation = creation;
	for (uint32_t k = 0; k < pr->nrecs; k++)
		held[k] = pr->recs[k].remote;
	if (held)
		qsort(held, pr->nrecs, sizeof(*held), cmp_pid);
	for (uint32_t i = 0; i < nd->nrp; i++) {
		struct rpid *r = &nd->rp[i];
		kr_pid me = rp_pid(nd, i);
		if (r->peer != p || r->creation == creation || rp_is_name(r) ||
		    (held && bsearch(&me, held, pr->nrecs, sizeof(*held), cmp_pid)))
			continue;
		r->peer = RP_FREE;
		r->gen = (r->gen + 1) % RP_GENS;
		r->next = 0;
		if (nd->rpfree_end)
			nd->rp[nd->rpfree_end - 1].next = i + 1;
		else
			nd->rpfree = i + 1;
		nd->rpfree_end = i + 1;
		nd->rplive--;
	}
	if (h)
		rp_rehash_into(nd, h, nd->rphmask + 1);
	free(held);
}

/* Under mu: kr_node_pid_from_ei. */
static int pid_in(struct node *nd, const erlang_pid *e, kr_pid *out)
{
	struct rpid r = {NOPEER, e->num, e->serial, e->creation, 0, 0};
	if (!strcmp(e->node, nd->name) && e->creation == nd->creation && e->serial != GEN_REMOTE) {
		*out = (uint64_t)e->serial << 32 | e->num; /* ours: the process itself */
		return 0;
	}
	/* A pid of ours from an earlier incarnation stays NOPEER: it reaches
	 * nobody, as Erlang drops messages to an old creation. */
	if (strcmp(e->node, nd->name) && !kri_dist_peer(nd, e->node, &r.peer))
		return -ENOMEM;
	if (rp_is_name(&r))
		return -EINVAL; /* no Erlang pid has that key: ours, for names */
	uint32_t i;
	int rc = rp_intern(nd, &r, &i);
	if (!rc)
		*out = rp_pid(nd, i);
	return rc;
}

int kri_dist_pid_in(struct node *nd, uint32_t peer, const erlang_pid *e, bool live, kr_pid *out)
{
	pthread_mutex_lock(&nd->mu);
	if (live && !strcmp(e->node, nd->peers[peer]->name))
		kri_dist_heard(nd, peer, e->creation);
	int rc = pid_in(nd, e, out);
	pthread_mutex_unlock(&nd->mu);
	return rc;
}

int kr_node_pid_from_ei(kr_runtime *rt, const erlang_pid *e, kr_pid *out)
{
	struct node *nd = kri_dist_node(rt);
	if (!nd || !e || !out)
		return -EINVAL;
	pthread_mutex_lock(&nd->mu);
	int rc = pid_in(nd, e, out);
	pthread_mutex_unlock(&nd->mu);
	return rc;
}

/* Under mu. */
static int to_ei(struct node *nd, kr_pid pid, erlang_pid *out)
{
	memset(out, 0, sizeof(*out));
	if (!pid_remote(pid)) {
		snprintf(out->node, sizeof(out->node), "%s", nd->name);
		out->num = (uint32_t)pid;
		out->serial = (uint32_t)(pid >> 32);
		out->creation = nd->creation;
		return 0;
	}
	bool dead;
	const struct rpid *r = rp_get(nd, pid, &dead);
	if (!r || rp_is_name(r))
		return -ESRCH; /* none, or a name (kr_node_monitor_name): no pid */
	snprintf(out->node, sizeof(out->node), "%s",
		 r->peer == NOPEER ? nd->name : nd->peers[r->peer]->name);
	out->num = r->id;
	out->serial = r->serial;
	out->creation = r->creation;
	return 0;
}

int kr_node_pid_to_ei(kr_runtime *rt, kr_pid pid, erlang_pid *out)
{
	struct node *nd = kri_dist_node(rt);
	if (!nd || !out)
		return -EINVAL;
	pthread_mutex_lock(&nd->mu);
	int rc = to_ei(nd, pid, out);
	pthread_mutex_unlock(&nd->mu);
	return rc;
}

int kr_node_x_encode_pid(kr_runtime *rt, ei_x_buff *x, kr_pid pid)
{
	erlang_pid e;
	if (!x)
		return -EINVAL;
	int rc = kr_node_pid_to_ei(rt, pid, &e);
	if (rc)
		return rc;
	return ei_x_encode_pid(x, &e) ? -ENOMEM : 0;
}

/* ---- monitors by name ---------------------------------------------------------- */

int kri_dist_name_pid(struct node *nd, uint32_t i, const char *name, bool make, kr_pid *out)
{
	uint32_t k = 0;
	while (k < nd->nnames && (nd->names[k].peer != i || strcmp(nd->names[k].name, name)))
		k++;
	if (k == nd->nnames) {
		if (!make)
			return -ESRCH;
		if (nd->nnames == nd->cnames) {
			uint32_t n = nd->cnames ? 2 * nd->cnames : 8;
			struct nname *w = realloc(nd->names, n * sizeof(*w));
			if (!w)
				return -ENOMEM;
			nd->names = w;
			nd->cnames = n;
		}
		char *c = strdup(name);
		if (!c)
			return -ENOMEM;
		nd->names[k] = (struct nname){i, c};
		nd->nnames++;
	}
	struct rpid r = {i, k, NAME_SERIAL, 0, 0, 0};
	uint32_t idx;
	int rc = rp_intern(nd, &r, &idx);
	if (!rc)
		*out = rp_pid(nd, idx);
	return rc; /* a new name left without an entry is found next time */
}

/* Erlang's monitor(process, {Name, Node}). Another node's name: a monitor
 * of the kr_pid standing for it, which remote_signal sends as MONITOR_P
 * with the name (and DEMONITOR_P so), and whose DOWN conn.c finds by the
 * name MONITOR_P_EXIT carries; kr_monitor's machinery does the rest (the
 * record a lost connection answers with noconnection, noproc at once when
 * the connection cannot be had). This node's: the holder's pid, now. */
int kr_node_monitor_name(kr_ctx *ctx, const char *name, const char *node, uint64_t *ref)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	struct node *nd = kri_dist_node(rt);
	char alive[EI_MAXALIVELEN + 1], host[EI_MAXHOSTNAMELEN + 1];
	if (!nd || !ref || !name || !*name || strlen(name) > MAXATOMLEN - 1 ||
	    split_name(node, alive, host))
		return -EINVAL;
	kr_pid pid = 0; /* nobody here: kr_monitor says noproc at once */
	if (!strcmp(node, nd->name)) {
		pid = kr_whereis(rt, name);
	} else {
		uint32_t i;
		pthread_mutex_lock(&nd->mu);
		int rc = kri_dist_peer(nd, node, &i) ? kri_dist_name_pid(nd, i, name, true, &pid)
						     : -ENOMEM;
		pthread_mutex_unlock(&nd->mu);
		if (rc)
			return rc;
	}
	return kr_monitor(ctx, pid, ref);
}

/* ---- connections ------------------------------------------------------------ */

struct connect_job {
	struct node *nd;
	uint32_t peer;
	char name[MAXNODELEN + 1];
};

/* Our side of the handshake, for handshake.c. */
static struct kri_hs_self hs_self(const struct node *nd)
{
	return (struct kri_hs_self){nd->name, nd->cookie, nd->creation};
}

static void *connector(void *arg)
{
	struct connect_job *j = arg;
	struct node *nd = j->nd;
	struct kri_hs_self self = hs_self(nd);
	struct kri_hs_peer hp;
	uint64_t deadline = kri_hs_now_ms() + nd->setup_ms;
	int fd = kri_hs_connect(&self, j->name, deadline, &hp);
	int err = fd < 0 ? fd : 0;
	pthread_mutex_lock(&nd->mu);
	struct peer *p = nd->peers[j->peer];
	kr_pid conn = p->conn;
	bool settled = false;
	if (err == -EALREADY && conn) {
		/* nok: it was connecting to us too and its connection wins;
		 * the accept thread hands that one to the same connection
		 * process. Fail it only if none comes by the deadline. */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += nd->setup_ms / 1000 + 1;
		while (p->conn == conn && p->state == PEER_CONNECTING && !p->fd_sent &&
		       pthread_cond_timedwait(&nd->cv, &nd->mu, &until) != ETIMEDOUT)
			;
		/* It came, or the process went: nothing is ours to do. */
		settled = p->conn != conn || p->state != PEER_CONNECTING || p->fd_sent;
		if (!settled)
			err = -ETIMEDOUT;
	}
	if (settled) {
		/* nothing */
	} else if (fd >= 0 && conn) {
		if (kr_rt_send(nd->rt, conn, CT_FD, &fd, sizeof(fd))) {
			close(fd);
		} else {
			p->fd_sent = true;
			p->flags = hp.flags;
			/* The handshake names the peer's incarnation (version
			 * 6 sends its creation): its pids of any other are
			 * dead now, even if its processes only ever send
			 * plainly (frames that name no sender). */
			kri_dist_heard(nd, j->peer, hp.creation);
		}
	} else {
		if (fd >= 0)
			close(fd);
		p->err = err ? err : -ECONNABORTED;
		if (conn)
			kr_rt_send(nd->rt, conn, CT_FAIL, &p->err, sizeof(p->err));
	}
	nd->helpers--;
	pthread_cond_broadcast(&nd->cv);
	pthread_mutex_unlock(&nd->mu);
	free(j);
	return 0;
}

/* Under mu: a connection process for peer i, and a connect thread when
 * connect is set (else the accept thread hands it its socket). */
static int conn_start(struct node *nd, kr_ctx *ctx, uint32_t i, bool connect, kr_pid *out)
{
	struct peer *p = nd->peers[i];
	struct conn *c = kri_dist_conn_new(nd, i);
	if (!c)
		return -ENOMEM;
	kr_pid pid;
	int rc = ctx ? kr_spawn(ctx, kri_dist_conn, &c, sizeof(c), &pid)
		     : kr_rt_spawn(nd->rt, kri_dist_conn, &c, sizeof(c), &pid);
	if (rc) {
		kri_dist_conn_free(c);
		return rc;
	}
	p->conn = pid;
	p->c = c;
	p->state = PEER_CONNECTING;
	p->err = 0;
	p->fd_sent = false;
	*out = pid;
	if (!connect)
		return 0;
	struct connect_job *j = malloc(sizeof(*j));
	pthread_t t;
	pthread_attr_t at;
	rc = -ENOMEM;
	if (j) {
		j->nd = nd;
		j->peer = i;
		snprintf(j->name, sizeof(j->name), "%s", p->name);
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &at, connector, j) ? -EAGAIN : 0;
		pthread_attr_destroy(&at);
	}
	if (rc) {
		free(j);
		p->err = rc;
		/* The process ends at its first message, as a failed connect. */
		return ctx ? kr_send(ctx, pid, CT_FAIL, &rc, sizeof(rc))
			   : kr_rt_send(nd->rt, pid, CT_FAIL, &rc, sizeof(rc));
	}
	nd->helpers++;
	return 0;
}

int kri_dist_conn_of(struct node *nd, kr_ctx *ctx, uint32_t i, kr_pid *out)
{
	struct peer *p = nd->peers[i];
	if (p->conn) {
		*out = p->conn;
		return 0;
	}
	return conn_start(nd, ctx, i, true, out);
}

/* Tell the watchers of peer i (kr_node_monitor) that it came up or went:
 * their pids are copied under mu, the sends made outside it. */
static void node_event(struct node *nd, kr_ctx *ctx, uint32_t i, uint32_t tag)
{
	pthread_mutex_lock(&nd->mu);
	uint32_t n = 0;
	kr_pid *to = nd->nnw ? malloc(nd->nnw * sizeof(*to)) : 0;
	for (uint32_t k = 0; to && k < nd->nnw; k++)
		if (nd->nw[k].peer == i)
			to[n++] = nd->nw[k].pid;
	char name[MAXNODELEN + 1];
	snprintf(name, sizeof(name), "%s", nd->peers[i]->name);
	pthread_mutex_unlock(&nd->mu);
	for (uint32_t k = 0; k < n; k++)
		kri_proc_send_sys(ctx, to[k], tag, 0, 0, name, strlen(name) + 1);
	free(to);
}

void kri_dist_conn_up(struct node *nd, kr_ctx *ctx, uint32_t i)
{
	pthread_mutex_lock(&nd->mu);
	nd->peers[i]->state = PEER_UP;
	nd->connections++;
	pthread_cond_broadcast(&nd->cv);
	pthread_mutex_unlock(&nd->mu);
	node_event(nd, ctx, i, KR_TAG_NODEUP);
}

void kri_dist_conn_gone(struct node *nd, kr_ctx *ctx, uint32_t i)
{
	pthread_mutex_lock(&nd->mu);
	struct peer *p = nd->peers[i];
	if (p->state == PEER_UP)
		nd->connections--;
	p->state = PEER_DOWN;
	p->conn = 0;
	p->c = 0;
	struct rec *r = p->recs;
	uint32_t n = p->nrecs;
	p->recs = 0;
	p->nrecs = p->crecs = 0;
	for (uint32_t k = 0; k < n; k++)
		if (r[k].kind == REC_MON_IN)
			kri_dist_inref_free(nd, r[k].ref);
	pthread_cond_broadcast(&nd->cv);
	pthread_mutex_unlock(&nd->mu);
	/* Every link and monitor across the connection ends, as Erlang ends
	 * them: noconnection. A monitor held on a local process just goes. */
	for (uint32_t k = 0; k < n; k++) {
		if (r[k].kind == REC_LINK)
			kri_remote_signal_in(ctx, r[k].local, RS_EXIT_LINK, r[k].remote, 0,
					     KR_NOCONNECTION, 0, 0);
		else if (r[k].kind == REC_MON_OUT)
			kri_remote_signal_in(ctx, r[k].local, RS_DOWN, r[k].remote, r[k].ref,
					     KR_NOCONNECTION, 0, 0);
		else if (r[k].kind == REC_MON_IN)
			kri_remote_signal_in(ctx, r[k].local, RS_DEMONITOR, r[k].remote, r[k].ref,
					     0, 0, 0);
		/* REC_UNLINK: the link is gone on both sides already. */
	}
	free(r);
	node_event(nd, ctx, i, KR_TAG_NODEDOWN);
}

/* A process that watched a node has ended: its watches go (kr_on_exit,
 * registered at its first watch, so a process that never watches pays
 * nothing at its exit). arg is the runtime, not the node: at
 * kr_runtime_free the node is freed before the processes still alive end,
 * and kri_dist_node then finds none (runtime.c clears rt->remote). */
static void watch_exit(void *arg, const kr_exit_info *info)
{
	struct node *nd = kri_dist_node(arg);
	if (!nd)
		return;
	pthread_mutex_lock(&nd->mu);
	for (uint32_t k = 0; k < nd->nnw;)
		if (nd->nw[k].pid == info->pid)
			nd->nw[k] = nd->nw[--nd->nnw];
		else
			k++;
	pthread_mutex_unlock(&nd->mu);
}

/* Under mu: the entry of pid's watch of peer (NOPEER: its mark, the entry
 * that says its exit hook is in place), or nnw. */
static uint32_t watch_find(const struct node *nd, kr_pid pid, uint32_t peer)
{
	uint32_t k = 0;
	while (k < nd->nnw && (nd->nw[k].pid != pid || nd->nw[k].peer != peer))
		k++;
	return k;
}

int kr_node_monitor(kr_ctx *ctx, const char *node, int on)
{
	struct node *nd = kri_dist_node(kr_runtime_of(ctx));
	char alive[EI_MAXALIVELEN + 1], host[EI_MAXHOSTNAMELEN + 1];
	if (!nd || split_name(node, alive, host) || !strcmp(node, nd->name))
		return -EINVAL;
	kr_pid self = kr_self(ctx), conn;
	uint32_t i, k;
	int rc = 0, up = 0;
	/* A process's first watch registers the hook that drops its watches
	 * when it exits. Whether it has one is read before: only this
	 * process adds entries of its own, and only its exit removes the
	 * last (a watch turned off leaves a mark, peer NOPEER, behind). */
	bool hooked = true;
	if (on) {
		pthread_mutex_lock(&nd->mu);
		for (k = 0; k < nd->nnw && nd->nw[k].pid != self; k++)
			;
		hooked = k < nd->nnw;
		pthread_mutex_unlock(&nd->mu);
	}
	if (!hooked && kr_on_exit(ctx, watch_exit, kr_runtime_of(ctx)))
		return -ENOMEM;
	pthread_mutex_lock(&nd->mu);
	struct peer *p = kri_dist_peer(nd, node, &i);
	k = p ? watch_find(nd, self, i) : nd->nnw;
	if (!p) {
		rc = -ENOMEM;
	} else if (!on) {
		if (k < nd->nnw) {
			nd->nw[k].peer = NOPEER; /* a mark, if it was the last */
			for (uint32_t j = 0; j < nd->nnw; j++)
				if (j != k && nd->nw[j].pid == self) {
					nd->nw[k] = nd->nw[--nd->nnw];
					break;
				}
		}
	} else if (k == nd->nnw) {
		uint32_t mark = watch_find(nd, self, NOPEER);
		if (mark == nd->nnw && nd->nnw == nd->cnw) {
			uint32_t n = nd->cnw ? 2 * nd->cnw : 8;
			struct nwatch *w = realloc(nd->nw, n * sizeof(*w));
			if (!w)
				rc = -ENOMEM;
			else {
				nd->nw = w;
				nd->cnw = n;
			}
		}
		if (!rc) {
			if (mark == nd->nnw)
				nd->nnw++;
			nd->nw[mark] = (struct nwatch){self, i};
			up = p->state == PEER_UP;
		}
	}
	if (!rc && on && !p->conn) /* as Erlang: watching connects */
		rc = kri_dist_conn_of(nd, ctx, i, &conn);
	pthread_mutex_unlock(&nd->mu);
	if (!rc && up)
		rc = kri_proc_send_sys(ctx, self, KR_TAG_NODEUP, 0, 0, node, strlen(node) + 1);
	return rc;
}

int kri_dist_rec_add(struct node *nd, uint32_t i, int kind, kr_pid local, kr_pid remote,
		     uint64_t ref)
{
	struct peer *p = nd->peers[i];
	if (p->nrecs == p->crecs) {
		uint32_t n = p->crecs ? 2 * p->crecs : 8;
		struct rec *r = realloc(p->recs, n * sizeof(*r));
		if (!r)
			return -ENOMEM;
		p->recs = r;
		p->crecs = n;
	}
	p->recs[p->nrecs++] = (struct rec){local, remote, ref, kind};
	return 0;
}

void kri_dist_rec_del(struct node *nd, uint32_t i, int kind, kr_pid local, kr_pid remote,
		      uint64_t ref)
{
	struct peer *p = nd->peers[i];
	for (uint32_t k = 0; k < p->nrecs; k++) {
		struct rec *r = &p->recs[k];
		if (r->kind == kind && r->local == local && r->remote == remote && r->ref == ref) {
			*r = p->recs[--p->nrecs];
			if (kind == REC_MON_IN)
				kri_dist_inref_free(nd, ref);
			return;
		}
	}
}

bool kri_dist_unlinking(struct node *nd, uint32_t i, kr_pid local, kr_pid remote, bool end)
{
	struct peer *p = nd->peers[i];
	bool found = false;
	for (uint32_t k = 0; k < p->nrecs;) {
		struct rec *r = &p->recs[k];
		if (r->kind != REC_UNLINK || r->local != local || r->remote != remote) {
			k++;
			continue;
		}
		found = true;
		if (!end)
			break;
		*r = p->recs[--p->nrecs];
	}
	return found;
}

/* In-refs: a slab of struct inref with a free list. An id is INREF_BASE,
 * the entry's generation (bumped at each reuse, so a stale id finds
 * nothing) and its index. */
#define INREF_ID(gen, k) (INREF_BASE | (uint64_t)(gen) << 32 | (k))

uint64_t kri_dist_inref_new(struct node *nd, uint32_t peer, const erlang_ref *r, const char *name)
{
	/* A monitor's reference is made by the monitoring process's node:
	 * the peer, whose name the entry keeps in its stead. */
	if (strcmp(r->node, nd->peers[peer]->name) || r->len < 1 ||
	    r->len > (int)(sizeof(r->n) / sizeof(r->n[0])))
		return 0;
	if (nd->inref_free == UINT32_MAX) {
		if (nd->ninrefs == UINT32_MAX >> 1)
			return 0;
		uint32_t n = nd->ninrefs ? 2 * nd->ninrefs : 16;
		struct inref *v = realloc(nd->inrefs, (size_t)n * sizeof(*v));
		if (!v)
			return 0;
		for (uint32_t k = nd->ninrefs; k < n; k++)
			v[k] = (struct inref){.next = k + 1 < n ? k + 1 : nd->inref_free};
		nd->inref_free = nd->ninrefs;
		nd->inrefs = v;
		nd->ninrefs = n;
	}
	/* DOWN of a monitor by name names the name, not the pid (erts
	 * makes the 'DOWN' message's object from what we send). */
	char *nm = name ? strdup(name) : 0;
	if (name && !nm)
		return 0;
	uint32_t k = nd->inref_free;
	struct inref *e = &nd->inrefs[k];
	nd->inref_free = e->next;
	e->name = nm;
	e->used = 1;
	e->len = (uint8_t)r->len;
	e->peer = peer;
	e->creation = r->creation;
	memcpy(e->n, r->n, (size_t)r->len * sizeof(e->n[0]));
	nd->inrefs_live++;
	return INREF_ID(e->gen, k);
}

static struct inref *inref_at(struct node *nd, uint64_t id)
{
	uint32_t k = (uint32_t)id & 0xffffffffu;
	if ((id & INREF_BASE) != INREF_BASE || k >= nd->ninrefs)
		return 0;
	struct inref *e = &nd->inrefs[k];
	return e->used && INREF_ID(e->gen, k) == id ? e : 0;
}

int kri_dist_inref_get(struct node *nd, uint64_t id, erlang_ref *out, char name[MAXATOMLEN])
{
	const struct inref *e = inref_at(nd, id);
	if (!e)
		return -ESRCH;
	snprintf(name, MAXATOMLEN, "%s", e->name ? e->name : "");
	memset(out, 0, sizeof(*out));
	snprintf(out->node, sizeof(out->node), "%s", nd->peers[e->peer]->name);
	out->len = e->len;
	out->creation = e->creation;
	memcpy(out->n, e->n, (size_t)e->len * sizeof(e->n[0]));
	return 0;
}

void kri_dist_inref_free(struct node *nd, uint64_t id)
{
	struct inref *e = inref_at(nd, id);
	if (!e)
		return;
	free(e->name);
	e->name = 0;
	e->used = 0;
	e->gen++;
	e->next = nd->inref_free;
	nd->inref_free = (uint32_t)(e - nd->inrefs);
	nd->inrefs_live--;
}

static bool same_ref(const struct inref *a, uint32_t peer, const erlang_ref *b)
{
	return a->peer == peer && a->len == b->len && a->creation == b->creation &&
	       !memcmp(a->n, b->n, (size_t)a->len * sizeof(a->n[0]));
}

uint64_t kri_dist_inref_find(struct node *nd, uint32_t i, kr_pid remote, const erlang_ref *r)
{
	struct peer *p = nd->peers[i];
	if (strcmp(r->node, p->name))
		return 0;
	for (uint32_t k = 0; k < p->nrecs; k++) {
		struct rec *c = &p->recs[k];
		const struct inref *e =
		    c->kind == REC_MON_IN && c->remote == remote ? inref_at(nd, c->ref) : 0;
		if (e && same_ref(e, i, r))
			return c->ref;
	}
	return 0;
}

int kri_dist_x_encode_ref(struct node *nd, ei_x_buff *x, uint64_t r, uint32_t mark)
{
	erlang_ref e;
	memset(&e, 0, sizeof(e));
	snprintf(e.node, sizeof(e.node), "%s", nd->name);
	e.len = 3;
	e.n[0] = (uint32_t)r & 0x3ffff; /* Erlang keeps 18 bits of the first word */
	e.n[1] = (uint32_t)(r >> 18);
	e.n[2] = (uint32_t)(r >> 50) | mark;
	e.creation = nd->creation;
	return ei_x_encode_ref(x, &e);
}

static const struct {
	uint32_t code;
	const char *atom;
} reasons[] = {
    {KR_NORMAL, "normal"}, {KR_SHUTDOWN, "shutdown"}, {KR_KILL, "kill"},
    {KR_KILLED, "killed"}, {KR_NOPROC, "noproc"},     {KR_NOCONNECTION, "noconnection"},
};

int kri_dist_enc_reason(ei_x_buff *x, uint32_t reason, const void *payload, uint32_t plen)
{
	for (size_t k = 0; k < sizeof(reasons) / sizeof(reasons[0]); k++)
		if (reasons[k].code == reason)
			return ei_x_encode_atom(x, reasons[k].atom);
	if (reason == KR_REASON_TERM && plen > 1 && ((const unsigned char *)payload)[0] == 131)
		return ei_x_append_buf(x, (const char *)payload + 1, (int)plen - 1);
	return ei_x_encode_tuple_header(x, 2) || ei_x_encode_atom(x, "krill") ||
	       ei_x_encode_ulong(x, reason);
}

int kri_dist_dec_reason(const char *b, int *i, uint32_t *reason, unsigned char *payload,
			uint32_t *plen)
{
	int start = *i, j = *i, ar;
	char atom[MAXATOMLEN];
	unsigned long n;
	if (ei_skip_term(b, &j))
		return -EPROTO;
	*plen = 0;
	int k = start;
	if (!ei_decode_atom(b, &k, atom)) {
		for (size_t r = 0; r < sizeof(reasons) / sizeof(reasons[0]); r++)
			if (!strcmp(atom, reasons[r].atom)) {
				*reason = reasons[r].code;
				*i = j;
				return 0;
			}
	}
	k = start;
	if (!ei_decode_tuple_header(b, &k, &ar) && ar == 2 && !ei_decode_atom(b, &k, atom) &&
	    !strcmp(atom, "krill") && !ei_decode_ulong(b, &k, &n) && n <= UINT32_MAX && k == j) {
		*reason = (uint32_t)n;
		*i = j;
		return 0;
	}
	*reason = KR_REASON_TERM;
	if (j - start + 1 <= KR_PAYLOAD_MAX) {
		payload[0] = 131;
		memcpy(payload + 1, b + start, (size_t)(j - start));
		*plen = (uint32_t)(j - start + 1);
	}
	*i = j;
	return 0;
}

int kr_node_connect(kr_runtime *rt, const char *node)
{
	struct node *nd = kri_dist_node(rt);
	char alive[EI_MAXALIVELEN + 1], host[EI_MAXHOSTNAMELEN + 1];
	if (!nd || split_name(node, alive, host))
		return -EINVAL;
	if (kri_api_on_scheduler())
		return -EDEADLK;
	pthread_mutex_lock(&nd->mu);
	uint32_t i;
	kr_pid pid;
	int rc = 0;
	struct peer *p = kri_dist_peer(nd, node, &i);
	if (!p)
		rc = -ENOMEM;
	else if (!p->conn)
		rc = conn_start(nd, 0, i, true, &pid);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (nd->setup_ms + 1000) / 1000;
	while (!rc && p->conn && p->state == PEER_CONNECTING)
		if (pthread_cond_timedwait(&nd->cv, &nd->mu, &until) == ETIMEDOUT)
			rc = -ETIMEDOUT;
	if (!rc)
		rc = p->state == PEER_UP ? 0 : (p->err ? p->err : -ECONNABORTED);
	pthread_mutex_unlock(&nd->mu);
	return rc;
}

/* ---- the accept thread ---------------------------------------------------------- */

/* An incoming handshake that failed, counted (kr_node_info). */
static void refused(struct node *nd, int err)
{
	pthread_mutex_lock(&nd->mu);
	nd->refused++;
	nd->last_refusal = err;
	pthread_mutex_unlock(&nd->mu);
}

/* The status for a send_name from peer p (under mu), as erts answers: a
 * connection up already, "alive"; a connect of ours under way, the
 * connection from the greater name wins ("nok": ours; "ok_simultaneous":
 * theirs, which our connect thread then sees answered "nok"). */
static enum kri_hs_status status_for(const struct node *nd, const struct peer *p)
{
	if (p->state == PEER_UP)
		return HS_ALIVE;
	if (p->conn)
		return strcmp(nd->name, p->name) > 0 ? HS_NOK : HS_OK_SIMUL;
	return HS_OK;
}

/* Wait (under mu) until the connection process old has gone, or until
 * the deadline. */
static void wait_gone(struct node *nd, struct peer *p, kr_pid old, uint64_t deadline)
{
	uint64_t now = kri_hs_now_ms(), left = deadline > now ? deadline - now : 0;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(left / 1000);
	until.tv_nsec += (long)(left % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (p->conn == old && pthread_cond_timedwait(&nd->cv, &nd->mu, &until) != ETIMEDOUT)
		;
}

/* One incoming connection: the handshake, then its socket to the peer's
 * connection process. */
static void accept_one(struct node *nd, int fd)
{
	struct kri_hs_self self = hs_self(nd);
	struct kri_hs_peer hp;
	uint64_t deadline = kri_hs_now_ms() + nd->setup_ms;
	enum kri_hs_status st = HS_OK;
	kr_pid old = 0, pid = 0;
	uint32_t i = 0;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = kri_hs_accept_name(fd, deadline, &hp);
	if (!rc && !strcmp(hp.name, nd->name))
		rc = -EPROTO; /* ourselves, by name */
	if (!rc) {
		pthread_mutex_lock(&nd->mu);
		struct peer *p = kri_dist_peer(nd, hp.name, &i);
		if (!p) {
			rc = -ENOMEM;
		} else {
			st = status_for(nd, p);
			old = st == HS_ALIVE ? p->conn : 0;
		}
		pthread_mutex_unlock(&nd->mu);
	}
	if (!rc)
		rc = kri_hs_accept_rest(fd, &self, st, deadline);
	if (rc) {
		close(fd);
		if (rc != -EALREADY) /* nok, or alive answered false: no refusal */
			refused(nd, rc);
		return;
	}
	pthread_mutex_lock(&nd->mu);
	struct peer *p = nd->peers[i];
	nd->accepted++;
	if (old && p->conn == old) {
		/* alive, and the peer said true: to it our connection is dead
		 * (it restarted, say). End that one (noconnection to what
		 * crossed it) and take this. */
		int e = -ECONNRESET;
		kr_rt_send(nd->rt, old, CT_FAIL, &e, sizeof(e));
		wait_gone(nd, p, old, deadline);
	}
	if (p->state == PEER_UP)
		rc = -EALREADY; /* keep the connection we have */
	else if (p->conn)
		pid = p->conn; /* connecting to it ourselves: this one wins */
	else
		rc = conn_start(nd, 0, i, false, &pid);
	if (!rc && kr_rt_send(nd->rt, pid, CT_FD, &fd, sizeof(fd)))
		rc = -ENOMEM;
	if (!rc) {
		p->fd_sent = true;
		p->flags = hp.flags;
		kri_dist_heard(nd, i, hp.creation); /* as the connector does */
		pthread_cond_broadcast(&nd->cv);
	}
	pthread_mutex_unlock(&nd->mu);
	if (rc)
		close(fd);
}

static void *acceptor(void *arg)
{
	struct node *nd = arg;
	while (!atomic_load_explicit(&nd->stop, memory_order_relaxed)) {
		/* Wait for a connection a little at a time (to see stop),
		 * then give its handshake the whole setup time. */
		struct pollfd pf = {.fd = nd->lfd, .events = POLLIN};
		if (poll(&pf, 1, ACCEPT_POLL_MS) != 1)
			continue;
		int fd = accept4(nd->lfd, 0, 0, SOCK_CLOEXEC);
		if (fd >= 0)
			accept_one(nd, fd);
	}
	return 0;
}

/* ---- the node ------------------------------------------------------------------ */

static void node_free(struct node *nd)
{
	for (uint32_t i = 0; i < nd->npeers; i++) {
		if (nd->peers[i]->c)
			kri_dist_conn_free(nd->peers[i]->c);
		free(nd->peers[i]->recs);
		free(nd->peers[i]);
	}
	free(nd->peers);
	free(nd->rp);
	free(nd->rph);
	for (uint32_t k = 0; k < nd->ninrefs; k++)
		free(nd->inrefs[k].name);
	free(nd->inrefs);
	free(nd->nw);
	for (uint32_t k = 0; k < nd->nnames; k++)
		free(nd->names[k].name);
	free(nd->names);
	pthread_mutex_destroy(&nd->mu);
	pthread_cond_destroy(&nd->cv);
	free(nd);
}

static void node_fini(struct kr_runtime *rt)
{
	/* Called through this node's own kri_remote, so never without one;
	 * the test tells the compiler so (gcc's LTO warned of a store to a
	 * null node otherwise). */
	struct node *nd = kri_dist_node(rt);
	if (!nd)
		return;
	atomic_store_explicit(&nd->stop, true, memory_order_relaxed);
	pthread_join(nd->acceptor, 0);
	pthread_mutex_lock(&nd->mu);
	while (nd->helpers) /* each is bounded by setup_ms */
		pthread_cond_wait(&nd->cv, &nd->mu);
	pthread_mutex_unlock(&nd->mu);
	close(nd->lfd);
	close(nd->epmd_fd); /* epmd forgets the name when this closes */
	node_free(nd);
}

static uint32_t new_creation(void)
{
	uint32_t c = 0;
	while (c < 4) {
		if (getrandom(&c, sizeof(c), 0) != (ssize_t)sizeof(c)) {
			/* No entropy source: the clock and our pid still differ
			 * between two starts of the same name. */
			struct timespec t;
			clock_gettime(CLOCK_REALTIME, &t);
			c = (uint32_t)t.tv_nsec ^ (uint32_t)t.tv_sec * 2654435761u ^
			    (uint32_t)getpid() << 16;
		}
	}
	return c;
}

int kr_node_start(kr_runtime *rt, const kr_node_config *cfg)
{
	char alive[EI_MAXALIVELEN + 1], host[EI_MAXHOSTNAMELEN + 1], cookie[COOKIE_MAX + 1];
	struct in_addr addr;
	if (!rt || !cfg || split_name(cfg->name, alive, host) ||
	    inet_pton(AF_INET, cfg->listen ? cfg->listen : "127.0.0.1", &addr) != 1 ||
	    find_cookie(cfg->cookie, cookie))
		return -EINVAL;
	if (kri_api_on_scheduler())
		return -EDEADLK;
	if (kri_remote_get(rt))
		return -EALREADY;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, (void (*)(void))ei_init);
	struct node *nd = calloc(1, sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	nd->ops.send = remote_send;
	nd->ops.fini = node_fini;
	nd->ops.signal = remote_signal;
	nd->rt = rt;
	nd->lfd = nd->epmd_fd = -1;
	nd->inref_free = UINT32_MAX;
	nd->tick_ms = cfg->ticktime_ms ? cfg->ticktime_ms : DEFAULT_TICK;
	nd->setup_ms = cfg->setup_ms ? cfg->setup_ms : DEFAULT_SETUP;
	snprintf(nd->name, sizeof(nd->name), "%s", cfg->name);
	memcpy(nd->cookie, cookie, sizeof(nd->cookie));
	pthread_mutex_init(&nd->mu, 0);
	pthread_cond_init(&nd->cv, 0);
	int rc = -ENOMEM;
	/* The incarnation: ours to choose. ei turns a creation of 0 into the
	 * constant 0xE10000 and does not take the one epmd answers at publish,
	 * so every restart of a node would have been the same incarnation and
	 * a pid of the dead one would have reached its successor's process
	 * of the same slot (tests/test_dist_flap.c). A random 32-bit value, as
	 * erts takes epmd's, of at least 4 (smaller ones are the old 2-bit
	 * creations ei shifts away). */
	if (ei_connect_xinit(&nd->ec, host, alive, nd->name, &addr, cookie, new_creation()) < 0)
		goto fail;
	int port = cfg->port;
	nd->lfd = ei_xlisten(&nd->ec, &addr, &port, 128);
	if (nd->lfd < 0) {
		rc = erl_errno ? -erl_errno : -EADDRINUSE;
		goto fail;
	}
	nd->port = (uint16_t)port;
	nd->epmd_fd = publish(nd);
	if (nd->epmd_fd < 0) {
		rc = nd->epmd_fd;
		goto fail;
	}
	nd->creation = nd->ec.creation;
	nd->pub = kri_stats_node(rt);
	pub_node(nd);
	if (pthread_create(&nd->acceptor, 0, acceptor, nd)) {
		rc = -EAGAIN;
		goto fail;
	}
	rc = kri_remote_set(rt, &nd->ops);
	if (rc) { /* another kr_node_start won the race */
		atomic_store_explicit(&nd->stop, true, memory_order_relaxed);
		pthread_join(nd->acceptor, 0);
		goto fail;
	}
	return 0;
fail:
	if (nd->pub) { /* no node after all */
		nd->name[0] = 0;
		nd->creation = 0;
		nd->port = 0;
		pub_node(nd);
	}
	if (nd->epmd_fd >= 0)
		close(nd->epmd_fd);
	if (nd->lfd >= 0)
		close(nd->lfd);
	node_free(nd);
	return rc;
}

/* ---- the stats segment's node block ------------------------------------------- */

/* The block's head, once, before any connection can take an entry; then
 * (under mu) unlisted. */
static void pub_node(struct node *nd)
{
	struct kr_stats_node *b = nd->pub;
	if (!b)
		return;
	kri_pub_begin(&b->seq);
	kri_pub_put(&b->creation, nd->creation);
	kri_pub_put(&b->port, nd->port);
	kri_pub_put(&b->unlisted, nd->unlisted);
	kri_pub_str(b->name, sizeof(b->name), nd->name);
	kri_pub_end(&b->seq);
}

int kri_dist_slot_take(struct node *nd)
{
	_Static_assert(KR_STATS_CONNS <= 64, "one bit an entry in a word");
	if (!nd->pub)
		return -1;
	for (int k = 0; k < KR_STATS_CONNS; k++)
		if (!(nd->slots >> k & 1)) {
			nd->slots |= 1ull << k;
			return k;
		}
	nd->unlisted++;
	pub_node(nd);
	return -1;
}

void kri_dist_slot_give(struct node *nd, int slot)
{
	if (slot >= 0) {
		nd->slots &= ~(1ull << slot);
	} else if (nd->pub && nd->unlisted) {
		nd->unlisted--;
		pub_node(nd);
	}
}

int kr_node_info_get(kr_runtime *rt, kr_node_info *out)
{
	struct node *nd = kri_dist_node(rt);
	if (!nd || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", nd->name);
	out->creation = nd->creation;
	out->port = nd->port;
	pthread_mutex_lock(&nd->mu);
	out->connections = nd->connections;
	out->accepted = nd->accepted;
	out->refused = nd->refused;
	out->last_refusal = nd->last_refusal;
	out->peers = nd->npeers;
	out->remote_pids = nd->rplive;
	out->inrefs = nd->inrefs_live;
	for (uint32_t i = 0; i < nd->npeers; i++)
		out->recs += nd->peers[i]->nrecs;
	out->watches = 0;
	for (uint32_t k = 0; k < nd->nnw; k++)
		out->watches += nd->nw[k].peer != NOPEER; /* marks are no watches */
	pthread_mutex_unlock(&nd->mu);
	out->msgs_in = atomic_load_explicit(&nd->msgs_in, memory_order_relaxed);
	out->msgs_out = atomic_load_explicit(&nd->msgs_out, memory_order_relaxed);
	out->bytes_in = atomic_load_explicit(&nd->bytes_in, memory_order_relaxed);
	out->bytes_out = atomic_load_explicit(&nd->bytes_out, memory_order_relaxed);
	return 0;
}

/* ---- sends ------------------------------------------------------------------------ */

/* A frame: the length word (filled by frame_end), pass-through, then the
 * control message; the caller appends the message. */
int kri_dist_frame_begin(ei_x_buff *x)
{
	static const char head[5] = {0, 0, 0, 0, 'p'};
	if (ei_x_new(x))
		return -ENOMEM;
	if (ei_x_append_buf(x, head, sizeof(head)) || ei_x_encode_version(x)) {
		ei_x_free(x);
		return -ENOMEM;
	}
	return 0;
}

void kri_dist_frame_end(ei_x_buff *x)
{
	uint32_t n = htonl((uint32_t)(x->index - 4));
	memcpy(x->buff, &n, 4);
}

/* Hand the frame to the connection process of peer i (made if none). */
static int frame_out(struct node *nd, kr_ctx *ctx, uint32_t i, ei_x_buff *x)
{
	kr_pid conn;
	kri_dist_frame_end(x);
	pthread_mutex_lock(&nd->mu);
	int rc = kri_dist_conn_of(nd, ctx, i, &conn);
	pthread_mutex_unlock(&nd->mu);
	if (!rc)
		rc = ctx ? kr_send(ctx, conn, CT_OUT, x->buff, (size_t)x->index)
			 : kr_rt_send(nd->rt, conn, CT_OUT, x->buff, (size_t)x->index);
	ei_x_free(x);
	return rc;
}

/* SEND {2, '', To} then the message (msg: with its version byte), or the
 * message {krill, Tag, Binary} when msg is NULL. */
static int send_pid(struct node *nd, kr_ctx *ctx, kr_pid to, const char *msg, size_t mlen,
		    uint32_t tag, const void *data, size_t len)
{
	erlang_pid e;
	bool dead;
	pthread_mutex_lock(&nd->mu);
	const struct rpid *r = rp_get(nd, to, &dead);
	int rc = r ? to_ei(nd, to, &e) : dead ? 0 : -ESRCH;
	uint32_t peer = r ? r->peer : NOPEER;
	pthread_mutex_unlock(&nd->mu);
	if (rc)
		return rc;
	if (peer == NOPEER)
		return 0; /* our old incarnation's, or a dead one's of the peer: reaches nobody */
	ei_x_buff x;
	if ((rc = kri_dist_frame_begin(&x)))
		return rc;
	int bad = ei_x_encode_tuple_header(&x, 3) || ei_x_encode_long(&x, 2) ||
		  ei_x_encode_atom(&x, "") || ei_x_encode_pid(&x, &e);
	if (msg)
		bad = bad || ei_x_append_buf(&x, msg, (int)mlen);
	else
		bad = bad || ei_x_encode_version(&x) || ei_x_encode_tuple_header(&x, 3) ||
		      ei_x_encode_atom(&x, "krill") || ei_x_encode_ulong(&x, tag) ||
		      ei_x_encode_binary(&x, data, (long)len);
	if (bad) {
		ei_x_free(&x);
		return -ENOMEM;
	}
	return frame_out(nd, ctx, peer, &x);
}

static int remote_send(struct kr_runtime *rt, kr_ctx *ctx, kr_pid to, uint32_t tag,
		       const void *data, size_t len)
{
	struct node *nd = kri_dist_node(rt);
	return len > INT32_MAX ? -EMSGSIZE : send_pid(nd, ctx, to, 0, 0, tag, data, len);
}

static bool term_ok(const ei_x_buff *x)
{
	int i = 0, v;
	return x && x->buff && x->index > 1 && !ei_decode_version(x->buff, &i, &v);
}

int kr_node_send_term(kr_ctx *ctx, kr_pid to, const ei_x_buff *x)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	struct node *nd = kri_dist_node(rt);
	if (!nd || !term_ok(x))
		return -EINVAL;
	if (pid_remote(to))
		return send_pid(nd, ctx, to, x->buff, (size_t)x->index, 0, 0, 0);
	kr_dist_msg h = {.from = kr_self(ctx), .len = (uint32_t)x->index};
	return kri_proc_send_sys(ctx, to, KR_TAG_DIST, &h, sizeof(h), x->buff, (size_t)x->index);
}

int kr_node_send_name(kr_ctx *ctx, const char *name, const char *node, const ei_x_buff *x)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	struct node *nd = kri_dist_node(rt);
	char alive[EI_MAXALIVELEN + 1], host[EI_MAXHOSTNAMELEN + 1];
	if (!nd || !term_ok(x) || !name || !*name || strlen(name) > MAXATOMLEN - 1 ||
	    split_name(node, alive, host))
		return -EINVAL;
	if (!strcmp(node, nd->name)) {
		kr_pid to = kr_whereis(rt, name);
		return to ? kr_node_send_term(ctx, to, x) : 0;
	}
	erlang_pid from;
	pthread_mutex_lock(&nd->mu);
	uint32_t i;
	int rc = kri_dist_peer(nd, node, &i) ? to_ei(nd, kr_self(ctx), &from) : -ENOMEM;
	pthread_mutex_unlock(&nd->mu);
	if (rc)
		return rc;
	ei_x_buff f;
	if ((rc = kri_dist_frame_begin(&f)))
		return rc;
	if (ei_x_encode_tuple_header(&f, 4) || ei_x_encode_long(&f, 6) ||
	    ei_x_encode_pid(&f, &from) || ei_x_encode_atom(&f, "") || ei_x_encode_atom(&f, name) ||
	    ei_x_append_buf(&f, x->buff, x->index)) {
		ei_x_free(&f);
		return -ENOMEM;
	}
	return frame_out(nd, ctx, i, &f);
}

/* Does peer p (under mu) take Erlang's link protocol (UNLINK_ID)? Every
 * node since OTP 23.3 and krill's offer it (OTP 26 requires it); before
 * the first handshake with p we cannot know, and assume it: an unlink
 * queued then goes out in the protocol of nearly every peer there is. */
static bool speaks_unlink_id(const struct peer *p)
{
	return !p->flags || (p->flags & DFLAG_UNLINK_ID);
}

/* A link, monitor or exit signal to a remote pid (core/proc/remote.h): the
 * control message, handed to the connection at once (kri_proc_send_sys:
 * this may run while the sender exits), and the record that lets a lost
 * connection answer it with noconnection. */
static int remote_signal(struct kr_runtime *rt, kr_ctx *ctx, kr_pid to, int kind, kr_pid from,
			 uint64_t ref, uint32_t reason, const void *payload, uint32_t plen)
{
	struct node *nd = kri_dist_node(rt);
	erlang_pid eto, efrom;
	erlang_ref inref;
	char inname[MAXATOMLEN] = "";
	const char *toname = 0; /* a monitor by name: ToProc is the name */
	kr_pid conn = 0;
	uint64_t uid = 0; /* UNLINK_ID's id; 0: the old UNLINK */
	static const long ops[] = {
	    [RS_LINK] = 1,     [RS_UNLINK] = 4,     [RS_EXIT_LINK] = 3, [RS_EXIT] = 8,
	    [RS_MONITOR] = 19, [RS_DEMONITOR] = 20, [RS_DOWN] = 21};
	if (!nd || kind < RS_LINK || kind > RS_DOWN)
		return -ESRCH;
	bool dead;
	pthread_mutex_lock(&nd->mu);
	const struct rpid *r = rp_get(nd, to, &dead);
	int rc = -ESRCH;
	if (r && rp_is_name(r)) {
		/* Only monitored: a link or an exit signal to it sees no such pid. */
		if (kind == RS_MONITOR || kind == RS_DEMONITOR) {
			toname = nd->names[r->id].name; /* kept while the node lives */
			rc = 0;
		}
	} else if (r && r->peer != NOPEER) {
		rc = to_ei(nd, to, &eto);
	}
	uint32_t peer = rc ? 0 : r->peer;
	if (!rc)
		rc = to_ei(nd, from, &efrom);
	if (!rc && kind == RS_DOWN)
		rc = kri_dist_inref_get(nd, ref, &inref, inname);
	if (!rc) {
		if (kind == RS_LINK) {
			/* Linked again: an unlink still unacknowledged no
			 * longer decides (its ack, when it comes, is ignored). */
			kri_dist_unlinking(nd, peer, from, to, true);
			rc = kri_dist_rec_add(nd, peer, REC_LINK, from, to, 0);
		} else if (kind == RS_UNLINK && speaks_unlink_id(nd->peers[peer])) {
			/* Erlang's link protocol: UNLINK_ID with an id of its
			 * own, and the link "unlinking" until the peer acks
			 * that id. The local process has dropped the link
			 * already, so an exit signal from the peer meanwhile
			 * finds none (ignored, as erts ignores it). Without
			 * room for the record the unlink still goes: only a
			 * LINK crossing it would then be taken. */
			kri_dist_rec_del(nd, peer, REC_LINK, from, to, 0);
			if (!++nd->unlink_id) /* 0 is no id: erts refuses it */
				nd->unlink_id = 1;
			uid = nd->unlink_id;
			(void)kri_dist_rec_add(nd, peer, REC_UNLINK, from, to, uid);
		} else if (kind == RS_MONITOR)
			rc = kri_dist_rec_add(nd, peer, REC_MON_OUT, from, to, ref);
		else if (kind == RS_UNLINK || kind == RS_EXIT_LINK)
			kri_dist_rec_del(nd, peer, REC_LINK, from, to, 0);
		else if (kind == RS_DEMONITOR)
			kri_dist_rec_del(nd, peer, REC_MON_OUT, from, to, ref);
		else if (kind == RS_DOWN) { /* the monitor ends here: its entries go */
			kri_dist_rec_del(nd, peer, REC_MON_IN, from, to, ref);
			kri_dist_inref_free(nd, ref);
		}
	}
	if (!rc)
		rc = kri_dist_conn_of(nd, ctx, peer, &conn);
	if (rc && uid) /* no connection to take it: no ack will come */
		kri_dist_rec_del(nd, peer, REC_UNLINK, from, to, uid);
	pthread_mutex_unlock(&nd->mu);
	if (rc)
		return rc;
	ei_x_buff x;
	if ((rc = kri_dist_frame_begin(&x)))
		return rc;
	int arity = kind == RS_LINK || (kind == RS_UNLINK && !uid) ? 3 : kind == RS_DOWN ? 5 : 4;
	/* UNLINK_ID {35, Id, From, To}; the others {Op, From, To, ...}. */
	int bad = ei_x_encode_tuple_header(&x, arity) ||
		  ei_x_encode_long(&x, uid ? DOP_UNLINK_ID : ops[kind]) ||
		  (uid && ei_x_encode_ulonglong(&x, uid)) ||
		  (*inname ? ei_x_encode_atom(&x, inname) : ei_x_encode_pid(&x, &efrom)) ||
		  (toname ? ei_x_encode_atom(&x, toname) : ei_x_encode_pid(&x, &eto));
	if (kind == RS_MONITOR || kind == RS_DEMONITOR)
		bad = bad || kri_dist_x_encode_ref(nd, &x, ref, 0);
	else if (kind == RS_DOWN)
		bad = bad || ei_x_encode_ref(&x, &inref);
	if (kind == RS_EXIT_LINK || kind == RS_EXIT || kind == RS_DOWN)
		bad = bad || kri_dist_enc_reason(&x, reason, payload, plen);
	if (bad) {
		ei_x_free(&x);
		return -ENOMEM;
	}
	kri_dist_frame_end(&x);
	rc = kri_proc_send_sys(ctx, conn, CT_OUT, 0, 0, x.buff, (size_t)x.index);
	ei_x_free(&x);
	return rc < 0 ? rc : 1;
}
