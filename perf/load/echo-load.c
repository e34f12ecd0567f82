/* echo-load: a TCP echo load generator on liburing alone (no krill), to drive krill-echo and
 * its peers. Each of --conns connections sends --size bytes, waits for all of them to come back
 * (checking them), and starts again, for --seconds; then one JSON line on stdout:
 *   {"bench":"echo","conns":C,"size":B,"seconds":S,"rate":R,"p50_us":..,"p99_us":..,"errors":E,
 *    "client_cpu":CPUs,"server_cpu":CPUs}
 * rate is round trips per second over the measured time (all connections connected first);
 * errors counts failed connects, resets, early closes and echoes that differ from what was sent;
 * the CPUs are the CPU seconds this process, and the server (--cpu-of PID, else no
 * server_cpu), used in that time over its seconds.
 * --threads threads (default 2), each with its own ring and its share of the connections: one
 * thread is the bottleneck at 10,000 connections (the machine then sits partly idle), while
 * below 1,000 one keeps up with less CPU than two take (run-http chooses by that). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum { OP_CONNECT, OP_SEND, OP_RECV, OP_BITS = 2 };
enum { RING = 4096, LAT_MAX_US = 1000000 }; /* latencies past 1 s count as 1 s */

struct conn {
	int fd;
	bool up, dead;
	uint32_t sent, got; /* bytes of this round trip */
	uint64_t t0;        /* ns, when the round trip began */
	unsigned char *rbuf;
};

/* A thread, its ring and its connections. */
struct worker {
	struct io_uring ring;
	struct conn *conns;
	size_t n;
	uint64_t *lat; /* a count per microsecond of round-trip time */
	uint64_t trips, errors;
	uint64_t timed; /* trips in lat: those begun in the window, not in the rush of connects */
	uint64_t from;  /* ns, when the window began; 0 outside it */
	int fail;       /* a failed ring wait: the errno */
	double elapsed;
	pthread_t tid;
};

/* Set by main before the threads start. */
static unsigned char *pattern;
static uint32_t size;
static uint64_t seconds;
static struct sockaddr_in addr;
static pthread_barrier_t connected; /* every thread's connections are up (and main): measure */

static uint64_t kri_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An SQE, submitting what is queued if the ring is full. */
static struct io_uring_sqe *sqe(struct worker *w)
{
	struct io_uring_sqe *s = io_uring_get_sqe(&w->ring);
	while (!s) {
		io_uring_submit(&w->ring);
		s = io_uring_get_sqe(&w->ring);
	}
	return s;
}

static void post_send(struct worker *w, struct conn *c, size_t i)
{
	struct io_uring_sqe *s = sqe(w);
	io_uring_prep_send(s, c->fd, pattern + c->sent, size - c->sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(s, (uint64_t)i << OP_BITS | OP_SEND);
}

static void post_recv(struct worker *w, struct conn *c, size_t i)
{
	struct io_uring_sqe *s = sqe(w);
	io_uring_prep_recv(s, c->fd, c->rbuf + c->got, size - c->got, 0);
	io_uring_sqe_set_data64(s, (uint64_t)i << OP_BITS | OP_RECV);
}

/* Send and receive at once, so that a size larger than the socket buffers cannot deadlock. */
static void start_trip(struct worker *w, struct conn *c, size_t i)
{
	c->sent = c->got = 0;
	c->t0 = kri_now_ns();
	post_send(w, c, i);
	post_recv(w, c, i);
}

static void lose(struct worker *w, struct conn *c)
{
	if (c->dead)
		return;
	w->errors++;
	c->dead = true;
	shutdown(c->fd, SHUT_RDWR); /* completes the other direction's pending operation */
}

static void complete(struct worker *w, size_t i, int op, int res)
{
	struct conn *c = &w->conns[i];
	if (c->dead)
		return;
	if (op == OP_CONNECT) {
		if (res < 0) {
			lose(w, c);
			return;
		}
		c->up = true;
		start_trip(w, c, i);
		return;
	}
	if (res <= 0) {
		lose(w, c);
		return;
	}
	if (op == OP_SEND) {
		c->sent += (uint32_t)res;
		if (c->sent < size)
			post_send(w, c, i);
	} else {
		if (memcmp(c->rbuf + c->got, pattern + c->got, (size_t)res) != 0) {
			lose(w, c);
			return;
		}
		c->got += (uint32_t)res;
		if (c->got < size)
			post_recv(w, c, i);
	}
	if (c->sent < size || c->got < size)
		return;
	if (w->from) {
		w->trips++;
		if (c->t0 >= w->from) {
			uint64_t us = (kri_now_ns() - c->t0) / 1000u;
			w->lat[us < LAT_MAX_US ? us : LAT_MAX_US]++;
			w->timed++;
		}
	}
	start_trip(w, c, i);
}

/* Wait up to 10 ms and handle every completion there is. Returns 0, or the failed wait's
 * negative errno. */
static int run_once(struct worker *w)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {.tv_nsec = 10000000};
	int rc = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR)
		return rc;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&w->ring, head, cqe)
	{
		uint64_t d = io_uring_cqe_get_data64(cqe);
		complete(w, (size_t)(d >> OP_BITS), (int)(d & ((1u << OP_BITS) - 1)), cqe->res);
		n++;
	}
	io_uring_cq_advance(&w->ring, n);
	return 0;
}

/* A thread: connect its share (a ring's worth at a time), wait for the others, measure. */
static void *work(void *arg)
{
	struct worker *w = arg;
	int rc = 0;
	for (size_t i = 0; i < w->n && rc == 0; i++) {
		struct conn *c = &w->conns[i];
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct io_uring_sqe *s = sqe(w);
		io_uring_prep_connect(s, c->fd, (struct sockaddr *)&addr, sizeof(addr));
		io_uring_sqe_set_data64(s, (uint64_t)i << OP_BITS | OP_CONNECT);
		if (i % 1024 == 1023)
			rc = run_once(w);
	}
	uint64_t deadline = kri_now_ns() + 30ull * 1000000000u;
	size_t pending = w->n;
	while (rc == 0 && pending > 0 && kri_now_ns() < deadline) {
		rc = run_once(w);
		pending = 0;
		for (size_t i = 0; i < w->n; i++)
			pending += !w->conns[i].up && !w->conns[i].dead;
	}
	w->errors += pending; /* never connected */
	pthread_barrier_wait(&connected);

	/* Measure: trips finished within the window. */
	uint64_t t0 = kri_now_ns(), end = t0 + seconds * 1000000000u, t1;
	w->from = t0;
	while ((t1 = kri_now_ns()) < end && rc == 0)
		rc = run_once(w);
	w->from = 0;
	w->elapsed = (double)(t1 - t0) / 1e9;
	w->fail = -rc;
	return NULL;
}

/* CPU seconds used so far by this process (all its threads), and by process pid (-1 if that
 * cannot be read): taken at both ends of the measured window, they give the CPUs each used. */
static double own_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double pid_cpu(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields after the name, which may hold spaces: state is the first, utime the 12th. */
	const char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The latency at quantile q of trips round trips counted in lat. */
static uint64_t percentile(const uint64_t *lat, uint64_t trips, double q)
{
	uint64_t want = (uint64_t)(q * (double)trips), seen = 0;
	for (uint64_t us = 0; us <= LAT_MAX_US; us++) {
		seen += lat[us];
		if (seen > want || (seen == trips && seen > 0))
			return us;
	}
	return 0;
}

/* A descriptor per connection, and a few to spare. */
static int raise_nofile(uint64_t conns)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)conns + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_max < want)
		rl.rlim_max = want; /* allowed to root only */
	rl.rlim_cur = want;
	return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	uint64_t port = 0, nconns = 100, bytes = 64, nthreads = 2, cpu_of = 0;
	seconds = 10;
	enum { O_PORT = 256, O_CONNS, O_SECONDS, O_SIZE, O_THREADS, O_CPU_OF };
	static const struct option opts[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, O_PORT},
	    {"conns", required_argument, NULL, O_CONNS},
	    {"seconds", required_argument, NULL, O_SECONDS},
	    {"size", required_argument, NULL, O_SIZE},
	    {"threads", required_argument, NULL, O_THREADS},
	    {"cpu-of", required_argument, NULL, O_CPU_OF},
	    {0},
	};
	int c;

	opterr = 0; /* a missing value gets one line, anything else the usage */
	while ((c = getopt_long(argc, argv, "-:", opts, NULL)) != -1) {
		bool ok = true;

		if (c == 'H')
			host = optarg;
		else if (c == O_PORT)
			ok = cli_number("echo-load", "--port", optarg, 1, 65535, &port);
		else if (c == O_CONNS)
			ok = cli_number("echo-load", "--conns", optarg, 1, 1000000, &nconns);
		else if (c == O_SECONDS)
			ok = cli_number("echo-load", "--seconds", optarg, 1, 86400, &seconds);
		else if (c == O_SIZE)
			ok = cli_number("echo-load", "--size", optarg, 1, 1u << 24, &bytes);
		else if (c == O_THREADS)
			ok = cli_number("echo-load", "--threads", optarg, 1, 1024, &nthreads);
		else if (c == O_CPU_OF)
			ok = cli_number("echo-load", "--cpu-of", optarg, 1, 1u << 30, &cpu_of);
		else if (c == ':') {
			cli_getopt_error("echo-load", c, argv);
			return 2;
		} else {
			fprintf(stderr, "usage: echo-load --port P [--host H] [--conns C] "
					"[--seconds S] [--size B] [--threads T] [--cpu-of PID]\n");
			return 2;
		}
		if (!ok)
			return 2;
	}
	if (!port) {
		fprintf(stderr, "echo-load: --port is required\n");
		return 2;
	}
	size = (uint32_t)bytes;
	if (nthreads > nconns)
		nthreads = nconns; /* a thread without a connection would measure nothing */

	addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
		fprintf(stderr, "echo-load: --host: '%s' is not an IPv4 address\n", host);
		return 2;
	}
	int rc = raise_nofile(nconns);
	if (rc < 0) {
		fprintf(stderr, "echo-load: cannot allow %" PRIu64 " descriptors: %s\n",
			nconns + 64, strerror(-rc));
		return 1;
	}
	struct worker *ws = calloc(nthreads, sizeof(*ws));
	struct conn *conns = calloc(nconns, sizeof(*conns));
	unsigned char *rbufs = malloc(nconns * size);
	pattern = malloc(size);
	size_t rings = 0; /* rings set up, ws[0..rings) */
	bool ok = ws && conns && rbufs && pattern;
	for (size_t t = 0; ok && t < nthreads; t++)
		ok = (ws[t].lat = calloc(LAT_MAX_US + 1, sizeof(uint64_t))) != NULL;
	if (!ok) {
		fprintf(stderr, "echo-load: out of memory\n");
		rc = 1;
		goto out;
	}
	for (uint32_t i = 0; i < size; i++)
		pattern[i] = (unsigned char)('a' + i % 26);
	for (size_t i = 0; i < nconns; i++) {
		conns[i].rbuf = rbufs + i * size;
		conns[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (conns[i].fd < 0) {
			fprintf(stderr, "echo-load: socket: %s\n", strerror(errno));
			nconns = i; /* those to close */
			rc = 1;
			goto close;
		}
	}

	/* Thread t takes connections [t*nconns/nthreads, (t+1)*nconns/nthreads). */
	for (; rings < nthreads; rings++) {
		struct worker *w = &ws[rings];
		size_t lo = rings * nconns / nthreads, hi = (rings + 1) * nconns / nthreads;
		w->conns = conns + lo;
		w->n = hi - lo;
		if ((rc = io_uring_queue_init(RING, &w->ring, 0)) < 0) {
			fprintf(stderr, "echo-load: io_uring_queue_init: %s\n", strerror(-rc));
			rc = 1;
			goto close;
		}
	}
	pthread_barrier_init(&connected, NULL, (unsigned)nthreads + 1);
	for (size_t t = 0; t < nthreads; t++) {
		if ((rc = pthread_create(&ws[t].tid, NULL, work, &ws[t])) != 0) {
			/* Those started wait at the barrier: returning from main ends them. */
			fprintf(stderr, "echo-load: pthread_create: %s\n", strerror(rc));
			return 1;
		}
	}
	/* The threads measure from the barrier on for seconds: so does main, in CPU time. */
	pthread_barrier_wait(&connected);
	double c0 = own_cpu(), s0 = cpu_of ? pid_cpu((long)cpu_of) : -1;
	struct timespec nap = {.tv_sec = (time_t)seconds};
	while (nanosleep(&nap, &nap) < 0 && errno == EINTR)
		;
	double c1 = own_cpu(), s1 = cpu_of ? pid_cpu((long)cpu_of) : -1;
	uint64_t trips = 0, timed = 0, errors = 0;
	double elapsed = 0;
	for (size_t t = 0; t < nthreads; t++) {
		struct worker *w = &ws[t];
		pthread_join(w->tid, NULL);
		if (w->fail && !rc) {
			fprintf(stderr, "echo-load: io_uring wait: %s\n", strerror(w->fail));
			rc = 1;
		}
		trips += w->trips;
		timed += w->timed;
		errors += w->errors;
		elapsed = w->elapsed > elapsed ? w->elapsed : elapsed;
		if (t > 0)
			for (size_t us = 0; us <= LAT_MAX_US; us++)
				ws[0].lat[us] += w->lat[us];
	}
	if (rc == 0) {
		printf("{\"bench\":\"echo\",\"conns\":%" PRIu64 ",\"size\":%" PRIu32
		       ",\"seconds\":%.3f,\"rate\":%.1f,\"p50_us\":%" PRIu64 ",\"p99_us\":%" PRIu64
		       ",\"errors\":%" PRIu64 ",\"client_cpu\":%.2f",
		       nconns, size, elapsed, (double)trips / elapsed,
		       percentile(ws[0].lat, timed, 0.50), percentile(ws[0].lat, timed, 0.99),
		       errors, (c1 - c0) / (double)seconds);
		if (s0 >= 0 && s1 >= 0)
			printf(",\"server_cpu\":%.2f", (s1 - s0) / (double)seconds);
		printf("}\n");
	}
	pthread_barrier_destroy(&connected);
close:
	while (rings > 0)
		io_uring_queue_exit(&ws[--rings].ring);
	for (size_t i = 0; i < nconns; i++)
		close(conns[i].fd);
out:
	for (size_t t = 0; ws && t < nthreads; t++)
		free(ws[t].lat);
	free(ws);
	free(conns);
	free(rbufs);
	free(pattern);
	return rc;
}
