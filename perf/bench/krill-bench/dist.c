/* krill-bench dist: small messages between two nodes of an Erlang cluster on loopback, for the
 * pairs krill-krill, krill-erlang and erlang-erlang in one run, and the kernel's floor (the same
 * exchange between two plain processes, no runtime): round-trip latency (p50, p99 of
 * --rounds echoes) then one-way messages/s (--messages sent back to back, ended by a marker the
 * peer answers with its count), and the CPU seconds each side used meanwhile. Built when dist/
 * is (ei found); the Erlang side is perf/bench/dist/peer.escript, run by `escript`. */
#include "bench.h"

#include <krill_dist.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Memory, counted (sizeof on x86-64 of dist/dist.h's and dist/conn.c's structures; not
 * measured as an RSS delta):
 *   a connection: struct peer 312 B (the node's table, kept for the node's life) + struct conn
 *     ~160 B + its input buffer, 4 KiB at first and as large as the largest frame since + the
 *     connection process (a slot and 8 B of state) + the io layer's socket record and the
 *     kernel's socket buffers (not counted here); frames wait in 16 B + frame queue entries
 *     only while the socket's send queue is full;
 *   a remote monitor, on the monitoring side: a (ref, pid) entry of 16 B in the process's
 *     monitor vector + a struct rec of 32 B on the connection + a struct rpid of 24 B and a
 *     4 B hash slot per distinct remote pid (freed when its incarnation is known dead);
 *   on the monitored krill side: 16 B in the process's vector + a struct rec of 32 B + a
 *     struct inref of 1,064 B in node.inrefs, given back when the monitor goes: ~1.1 KB a
 *     monitor while it lasts, the largest cost, and the first to shrink (keep the 3 reference
 *     words and an index of the node). */

#ifndef KB_DIST_SCRIPT /* perf/meson.build gives it; KRILL_BENCH_DIST_SCRIPT overrides */
#define KB_DIST_SCRIPT "perf/bench/dist/peer.escript"
#endif

extern char **environ;

#define COOKIE    "krillbench"
#define SERVE_ENV "KRILL_BENCH_DIST_SERVE" /* set: this process is a krill peer of that name */

/* The peer's protocol (peer.escript's too): the payloads are the {krill, Tag, Binary} terms
 * kr_send makes on the wire. */
enum { D_ECHO = 1, D_ONEWAY = 3, D_END = 4, D_COUNT = 5, D_STOP = 9 };

enum { WAIT_MS = 10000, STREAM_MS = 60000 };

/* CPU seconds (user + system) of this process (RUSAGE_SELF) or of its waited-for children. */
static double cpu_of(int who)
{
	struct rusage r;
	getrusage(who, &r);
	return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
	       (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

/* {Atom, Pid} in x, and back. */
static void atom_pid(kr_ctx *ctx, ei_x_buff *x, const char *a, kr_pid p)
{
	ei_x_new_with_version(x);
	ei_x_encode_tuple_header(x, 2);
	ei_x_encode_atom(x, a);
	kr_node_x_encode_pid(kr_runtime_of(ctx), x, p);
}

static int get_atom_pid(kr_ctx *ctx, const kr_msg *m, const char *a, kr_pid *out)
{
	if (m->tag != KR_TAG_DIST)
		return -1;
	const char *t = kr_dist_msg_term((const kr_dist_msg *)m->data);
	int i = 0, v, ar;
	char atom[MAXATOMLEN];
	erlang_pid e;
	if (ei_decode_version(t, &i, &v) || ei_decode_tuple_header(t, &i, &ar) || ar != 2 ||
	    ei_decode_atom(t, &i, atom) || strcmp(atom, a) || ei_decode_pid(t, &i, &e))
		return -1;
	return kr_node_pid_from_ei(kr_runtime_of(ctx), &e, out);
}

/* ---- the krill peer (a child process: its CPU is its own) ---------------------------- */

struct serve {
	kr_pid drv;
	uint64_t count;
	double cpu0;
};

static atomic_int serve_stop;

static void serve_b(kr_ctx *ctx, void *state, const kr_msg *m)
{
	struct serve *s = state;
	ei_x_buff x;
	switch (m->tag) {
	case KR_TAG_DIST:
		if (get_atom_pid(ctx, m, "hello", &s->drv))
			break;
		atom_pid(ctx, &x, "welcome", kr_self(ctx));
		kr_node_send_term(ctx, s->drv, &x);
		ei_x_free(&x);
		s->cpu0 = cpu_of(RUSAGE_SELF);
		s->count = 0;
		return;
	case D_ECHO:
		post(ctx, s->drv, D_ECHO, m->data, m->len);
		return;
	case D_ONEWAY:
		s->count++;
		return;
	case D_END:
		printf("cpu %.6f\n", cpu_of(RUSAGE_SELF) - s->cpu0);
		fflush(stdout);
		post_u64(ctx, s->drv, D_COUNT, s->count);
		s->count = 0;
		return;
	case D_STOP:
		/* relaxed: main only polls it to stop the runtime; nothing is read after it */
		atomic_store_explicit(&serve_stop, 1, memory_order_relaxed);
		kr_exit(ctx, KR_NORMAL);
		return;
	}
	unexpected(ctx, "dist peer", m);
}

static int run_serve(kr_runtime *rt, const char *name)
{
	struct serve s = {0};
	kr_pid pid;
	int rc;
	if ((rc = kr_rt_spawn(rt, serve_b, &s, sizeof s, &pid)) < 0)
		return bench_error("kr_rt_spawn", rc);
	if ((rc = kr_register(rt, "bench", pid)) < 0 || (rc = kr_start(rt)) < 0)
		return bench_error("kr_register/kr_start", rc);
	kr_node_config nc;
	kr_node_config_init(&nc);
	nc.name = name;
	nc.cookie = COOKIE;
	if ((rc = kr_node_start(rt, &nc)) < 0)
		return bench_error("kr_node_start", rc);
	printf("ready\n");
	fflush(stdout);
	/* bounded: the driver sends D_STOP, or the parent kills us */
	for (int i = 0; i < 1200 && !atomic_load_explicit(&serve_stop, memory_order_relaxed); i++)
		usleep(100000);
	kr_stop(rt);
	kr_wait(rt);
	return 0;
}

/* ---- the krill driver ---------------------------------------------------------------- */

struct drv {
	const char *peer; /* the node whose `bench` we measure */
	uint64_t messages, rounds;
	double *rtt; /* rounds entries, seconds */
	double rate, cpu;
	const char *failed; /* the step that failed, or NULL */
	int rc;
	atomic_int done;
};

static int tag_is(const kr_msg *m, void *tag)
{
	return m->tag == (uint32_t)(uintptr_t)tag;
}

static int is_dist(const kr_msg *m, void *arg)
{
	(void)arg;
	return m->tag == KR_TAG_DIST;
}

static void driver_fn(kr_ctx *ctx, void *arg)
{
	struct drv *d = *(struct drv *const *)arg;
	const kr_msg *m;
	kr_pid peer = 0;
	ei_x_buff x;
	int rc;

	atom_pid(ctx, &x, "hello", kr_self(ctx));
	rc = kr_node_send_name(ctx, "bench", d->peer, &x);
	ei_x_free(&x);
	if (rc < 0) {
		d->failed = "kr_node_send_name";
		goto out;
	}
	if ((rc = kr_receive(ctx, is_dist, 0, WAIT_MS, &m)) < 0 ||
	    (rc = get_atom_pid(ctx, m, "welcome", &peer)) != 0) {
		d->failed = "welcome";
		goto out;
	}
	double cpu0 = cpu_of(RUSAGE_SELF);
	for (uint64_t i = 0; i < d->rounds; i++) {
		double t = now();
		if ((rc = kr_send(ctx, peer, D_ECHO, &i, sizeof i)) < 0 ||
		    (rc = kr_receive(ctx, tag_is, (void *)(uintptr_t)D_ECHO, WAIT_MS, &m)) < 0) {
			d->failed = "echo";
			goto out;
		}
		d->rtt[i] = now() - t;
	}
	double t0 = now();
	for (uint64_t i = 0; i < d->messages; i++)
		if ((rc = kr_send(ctx, peer, D_ONEWAY, &i, sizeof i)) < 0) {
			d->failed = "kr_send";
			goto out;
		}
	uint64_t n = 0;
	if ((rc = kr_send(ctx, peer, D_END, 0, 0)) < 0 ||
	    (rc = kr_receive(ctx, tag_is, (void *)(uintptr_t)D_COUNT, STREAM_MS, &m)) < 0 ||
	    m->len != sizeof n) {
		d->failed = "count";
		goto out;
	}
	memcpy(&n, m->data, sizeof n);
	double t1 = now();
	d->cpu = cpu_of(RUSAGE_SELF) - cpu0;
	d->rate = per_second((double)d->messages, t1 - t0);
	if (n != d->messages) {
		d->failed = "count (messages lost)";
		rc = -EIO;
	}
	kr_send(ctx, peer, D_STOP, 0, 0);
out:
	d->rc = rc;
	/* release: main reads the figures after it sees done */
	atomic_store_explicit(&d->done, 1, memory_order_release);
}

/* ---- processes, pipes and epmd --------------------------------------------------------- */

static void sleep_ms(unsigned ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&t, 0);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t l = sizeof a;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int port = -1;
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
	    !getsockname(fd, (struct sockaddr *)&a, &l))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int answers(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* The schedulers every node of the run gets (--schedulers; 0: as many as CPUs, krill's and
 * erl's default), as text for the krill peer's command line. */
static char peer_sched[16] = "0";

/* Spawn argv with its stdout on *out (a pipe); ERL_FLAGS names the Erlang node when name is
 * given, with peer_sched schedulers (+S) when set. */
static pid_t start(char *const argv[], const char *name, int *out)
{
	char flags[256];
	if (name) {
		int n = atoi(peer_sched);
		int k = snprintf(flags, sizeof flags, "-name %s -setcookie %s", name, COOKIE);
		if (n > 0 && k > 0 && (size_t)k < sizeof flags)
			snprintf(flags + k, sizeof flags - (size_t)k, " +S %d:%d", n, n);
		setenv("ERL_FLAGS", flags, 1);
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	int p[2];
	if (pipe(p))
		return -1;
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, 0, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	unsetenv("ERL_FLAGS");
	close(p[1]);
	if (rc) {
		close(p[0]);
		errno = rc;
		return -1;
	}
	*out = p[0];
	return pid;
}

/* Stop pid: wait up to ms for it to exit, then kill it. */
static void reap(pid_t pid, unsigned ms)
{
	int status;
	for (unsigned t = 0; t < ms; t += 20) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		sleep_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* Read fd until a line starting with prefix (at most ms); the rest of that line in out. */
static int read_line(int fd, const char *prefix, unsigned ms, char *out, size_t len)
{
	char buf[4096] = {0}; /* cppcheck: memchr reads it at have 0 */
	size_t have = 0;
	double end = now() + ms / 1000.0;
	for (;;) {
		char *nl;
		while ((nl = memchr(buf, '\n', have))) {
			*nl = '\0';
			size_t pl = strlen(prefix);
			if (!strncmp(buf, prefix, pl)) {
				snprintf(out, len, "%s", buf + pl);
				return 0;
			}
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
		}
		int left = (int)((end - now()) * 1000);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || have == sizeof buf || poll(&p, 1, left) != 1)
			return -ETIMEDOUT;
		ssize_t n = read(fd, buf + have, sizeof buf - have);
		if (n <= 0)
			return -EIO;
		have += (size_t)n;
	}
}

static const char *script(void)
{
	const char *s = getenv("KRILL_BENCH_DIST_SCRIPT");
	return s ? s : KB_DIST_SCRIPT;
}

/* A peer node serving `bench`: Erlang (peer.escript serve), or krill: this program re-run
 * (/proc/self/exe, SERVE_ENV naming the node) rather than a second runtime in this process or
 * a fork of it, so each side's CPU is a process's own (getrusage) and no runtime is forked
 * with its threads. */
static pid_t start_peer(int erlang, const char *name, int *out)
{
	if (erlang) {
		char *argv[] = {"escript", (char *)script(), "serve", 0};
		return start(argv, name, out);
	}
	setenv(SERVE_ENV, name, 1);
	char *argv[] = {"/proc/self/exe", "dist", "--stats", "0", "--schedulers", peer_sched, 0};
	pid_t pid = start(argv, 0, out);
	unsetenv(SERVE_ENV);
	return pid;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest rank. */
static double pct(const double *sorted, uint64_t n, unsigned p)
{
	uint64_t r = (n * p + 99) / 100;
	return sorted[r ? r - 1 : 0];
}

static void print_pair(kr_runtime *rt, const struct params *p, const char *pair, double rate,
		       double p50_us, double p99_us, double cpu_a, double cpu_b)
{
	double secs = rate > 0 ? (double)p->messages / rate : 0;
	print_head(rt, p, secs, (double)p->messages);
	printf(",\"pair\":\"%s\",\"p50_us\":%.2f,\"p99_us\":%.2f,\"cpu_a\":%.3f,\"cpu_b\":%.3f,"
	       "\"messages\":%llu,\"rounds\":%llu",
	       pair, p50_us, p99_us, cpu_a, cpu_b, (unsigned long long)p->messages,
	       (unsigned long long)p->rounds);
	print_tail();
}

/* krill (rt, a node already) drives the peer named name. */
static int krill_pair(kr_runtime *rt, const struct params *p, int erlang, const char *name,
		      double *rtt)
{
	const char *pair = erlang ? "krill-erlang" : "krill-krill";
	int fd;
	char line[256];
	pid_t pid = start_peer(erlang, name, &fd);
	if (pid < 0) {
		fprintf(stderr, "krill-bench: dist %s: cannot start the peer: %s\n", pair,
			strerror(errno));
		return 2;
	}
	int status = 2;
	if (read_line(fd, "ready", 20000, line, sizeof line)) {
		fprintf(stderr, "krill-bench: dist %s: the peer did not start\n", pair);
		goto out;
	}
	static struct drv d; /* reset for each pair; the driver holds a pointer to it */
	memset(&d, 0, sizeof d);
	d.peer = name;
	d.messages = p->messages;
	d.rounds = p->rounds;
	d.rtt = rtt;
	struct drv *dp = &d;
	kr_pid drv;
	int rc = kr_rt_spawn_fn(rt, driver_fn, &dp, sizeof dp, &drv);
	if (rc < 0) {
		bench_error("kr_rt_spawn_fn", rc);
		goto out;
	}
	/* acquire: pairs with the driver's release */
	for (int i = 0; i < 1800 && !atomic_load_explicit(&d.done, memory_order_acquire); i++)
		sleep_ms(50);
	if (!atomic_load_explicit(&d.done, memory_order_acquire)) {
		fprintf(stderr, "krill-bench: dist %s: no result in 90 s\n", pair);
		goto out;
	}
	if (d.failed) {
		fprintf(stderr, "krill-bench: dist %s: %s: %s\n", pair, d.failed, strerror(-d.rc));
		goto out;
	}
	double cpu_b = -1;
	if (!read_line(fd, "cpu ", WAIT_MS, line, sizeof line))
		cpu_b = atof(line);
	/* KRILL_BENCH_DIST_RTT=FILE: every round trip, in order (seconds), for a look at the
	 * tail: are the slow ones one stall or spread out, and how far apart. */
	const char *dump = getenv("KRILL_BENCH_DIST_RTT");
	FILE *df = dump ? fopen(dump, "a") : 0;
	for (uint64_t i = 0; df && i < p->rounds; i++)
		fprintf(df, "%s %llu %.9f\n", pair, (unsigned long long)i, rtt[i]);
	if (df)
		fclose(df);
	qsort(rtt, p->rounds, sizeof *rtt, cmp_double);
	print_pair(rt, p, pair, d.rate, pct(rtt, p->rounds, 50) * 1e6,
		   pct(rtt, p->rounds, 99) * 1e6, d.cpu, cpu_b);
	status = 0;
out:
	reap(pid, 5000);
	close(fd);
	return status;
}

/* Two Erlang nodes: peer.escript serve and peer.escript drive. */
static int erlang_pair(kr_runtime *rt, const struct params *p, const char *a, const char *b)
{
	int fb, fa = -1, status = 2;
	char line[256], msgs[32], rounds[32];
	pid_t pa = -1, pb = start_peer(1, b, &fb);
	if (pb < 0) {
		fprintf(stderr, "krill-bench: dist erlang-erlang: escript: %s\n", strerror(errno));
		return 2;
	}
	if (read_line(fb, "ready", 20000, line, sizeof line)) {
		fprintf(stderr, "krill-bench: dist erlang-erlang: the peer did not start\n");
		goto out;
	}
	snprintf(msgs, sizeof msgs, "%llu", (unsigned long long)p->messages);
	snprintf(rounds, sizeof rounds, "%llu", (unsigned long long)p->rounds);
	char *argv[] = {"escript", (char *)script(), "drive", (char *)b, msgs, rounds, 0};
	if ((pa = start(argv, a, &fa)) < 0) {
		fprintf(stderr, "krill-bench: dist erlang-erlang: escript: %s\n", strerror(errno));
		goto out;
	}
	double rate, p50, p99, cpu_a, cpu_b = -1;
	if (read_line(fa, "result ", 120000, line, sizeof line) ||
	    sscanf(line, "%lf %lf %lf %lf", &rate, &p50, &p99, &cpu_a) != 4) {
		fprintf(stderr, "krill-bench: dist erlang-erlang: no result from the driver\n");
		goto out;
	}
	if (!read_line(fb, "cpu ", WAIT_MS, line, sizeof line))
		cpu_b = atof(line);
	print_pair(rt, p, "erlang-erlang", rate, p50, p99, cpu_a, cpu_b);
	status = 0;
out:
	if (pa > 0) {
		reap(pa, 5000);
		close(fa);
	}
	reap(pb, 5000);
	close(fb);
	return status;
}

/* ---- the kernel's floor ---------------------------------------------------------------- */

/* The same exchange with no runtime at all: this process and a forked child on a loopback TCP
 * connection (TCP_NODELAY), blocking writes and reads of FLOOR_FRAME bytes, about a krill-krill
 * frame ({krill, Tag, Binary} with its pass-through header and control message). Its line,
 * "pair":"kernel-floor", is what any two programs pay the kernel here for a round trip, so
 * the pairs' p99 read against it: on a VM whose idle vCPUs halt, a wake-up of a sleeping
 * thread is most of a round trip, and no runtime that sleeps goes below it. */
#define FLOOR_FRAME 80

static int full_io(int fd, unsigned char *b, size_t n, int out)
{
	for (size_t done = 0; done < n;) {
		ssize_t k = out ? write(fd, b + done, n - done) : read(fd, b + done, n - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		done += (size_t)k;
	}
	return 0;
}

/* The child: echo rounds frames, then count messages frames and answer with the count. */
static void floor_child(int fd, const struct params *p)
{
	unsigned char b[FLOOR_FRAME];
	for (uint64_t i = 0; i < p->rounds; i++)
		if (full_io(fd, b, sizeof b, 0) || full_io(fd, b, sizeof b, 1))
			_exit(1);
	uint64_t n = 0;
	while (n < p->messages && !full_io(fd, b, sizeof b, 0))
		n++;
	_exit(full_io(fd, (unsigned char *)&n, sizeof n, 1) ? 1 : 0);
}

static int floor_pair(kr_runtime *rt, const struct params *p, double *rtt)
{
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0), a = socket(AF_INET, SOCK_STREAM, 0),
	    b = -1;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t l = sizeof sa;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ls < 0 || a < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1) ||
	    getsockname(ls, (struct sockaddr *)&sa, &l) ||
	    connect(a, (struct sockaddr *)&sa, sizeof sa) || (b = accept(ls, 0, 0)) < 0) {
		fprintf(stderr, "krill-bench: dist kernel-floor: loopback: %s\n", strerror(errno));
		if (ls >= 0)
			close(ls);
		if (a >= 0)
			close(a);
		return 2;
	}
	close(ls);
	setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	double cpu_b0 = cpu_of(RUSAGE_CHILDREN);
	pid_t pid = fork();
	if (pid == 0) {
		close(a);
		floor_child(b, p);
	}
	close(b);
	if (pid < 0) {
		close(a);
		fprintf(stderr, "krill-bench: dist kernel-floor: fork: %s\n", strerror(errno));
		return 2;
	}
	unsigned char f[FLOOR_FRAME] = {0};
	uint64_t n = 0;
	int bad = 0;
	double cpu0 = cpu_of(RUSAGE_SELF);
	for (uint64_t i = 0; i < p->rounds && !bad; i++) {
		double t = now();
		bad = full_io(a, f, sizeof f, 1) || full_io(a, f, sizeof f, 0);
		rtt[i] = now() - t;
	}
	double t0 = now();
	for (uint64_t i = 0; i < p->messages && !bad; i++)
		bad = full_io(a, f, sizeof f, 1);
	bad = bad || full_io(a, (unsigned char *)&n, sizeof n, 0);
	double t1 = now(), cpu = cpu_of(RUSAGE_SELF) - cpu0;
	close(a);
	int status;
	waitpid(pid, &status, 0);
	if (bad || n != p->messages || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "krill-bench: dist kernel-floor: the exchange failed\n");
		return 2;
	}
	qsort(rtt, p->rounds, sizeof *rtt, cmp_double);
	print_pair(rt, p, "kernel-floor", per_second((double)p->messages, t1 - t0),
		   pct(rtt, p->rounds, 50) * 1e6, pct(rtt, p->rounds, 99) * 1e6, cpu,
		   cpu_of(RUSAGE_CHILDREN) - cpu_b0);
	return 0;
}

static void keeper(kr_ctx *ctx, void *st, const kr_msg *m)
{
	kr_exit(ctx, KR_NORMAL);
}

int run_dist(kr_runtime *rt, const struct params *p)
{
	const char *serve = getenv(SERVE_ENV);
	if (serve)
		return run_serve(rt, serve);
	snprintf(peer_sched, sizeof peer_sched, "%llu", (unsigned long long)p->schedulers);

	/* Our own epmd on a free port, as tests/test_dist.c does: every node of this run, ei's
	 * and erl's, finds it through ERL_EPMD_PORT. */
	int port = free_port();
	char ps[16], na[64], nb[64], ne[64], nf[64], ng[64];
	snprintf(ps, sizeof ps, "%d", port);
	setenv("ERL_EPMD_PORT", ps, 1);
	char *eargv[] = {"epmd", "-port", ps, 0};
	pid_t epmd;
	/* its stderr to /dev/null: it complains of our probes below (connect, close) */
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int sp = port < 0 ? -1 : posix_spawnp(&epmd, "epmd", &fa, 0, eargv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (sp) {
		fprintf(stderr, "krill-bench: dist: cannot start epmd\n");
		return 2;
	}
	for (int i = 0; i < 100 && !answers(port); i++)
		sleep_ms(50);
	int me = (int)getpid();
	snprintf(na, sizeof na, "kbench_a%d@127.0.0.1", me);
	snprintf(nb, sizeof nb, "kbench_b%d@127.0.0.1", me);
	snprintf(ne, sizeof ne, "kbench_e%d@127.0.0.1", me);
	snprintf(nf, sizeof nf, "kbench_f%d@127.0.0.1", me);
	snprintf(ng, sizeof ng, "kbench_g%d@127.0.0.1", me);

	int status = 2, rc;
	double *rtt = malloc(p->rounds * sizeof *rtt);
	kr_pid keep;
	kr_node_config nc;
	kr_node_config_init(&nc);
	nc.name = na;
	nc.cookie = COOKIE;
	if (!rtt)
		status = out_of_memory();
	else if (!answers(port))
		fprintf(stderr, "krill-bench: dist: epmd does not answer on %d\n", port);
	/* the keeper holds the runtime up between pairs; kr_stop ends it */
	else if ((rc = kr_rt_spawn(rt, keeper, 0, 0, &keep)) < 0 || (rc = kr_start(rt)) < 0)
		status = bench_error("kr_start", rc);
	else if ((rc = kr_node_start(rt, &nc)) < 0)
		status = bench_error("kr_node_start", rc);
	else {
		status = krill_pair(rt, p, 0, nb, rtt);
		int s = krill_pair(rt, p, 1, ne, rtt);
		status = status ? status : s;
		s = erlang_pair(rt, p, ng, nf);
		status = status ? status : s;
	}
	if (rtt) {
		kr_stop(rt);
		kr_wait(rt);
	}
	/* Last, with the runtime's threads gone, as each pair ran alone. */
	if (rtt && !status)
		status = floor_pair(rt, p, rtt);
	free(rtt);
	kill(epmd, SIGTERM);
	reap(epmd, 5000);
	return status;
}
