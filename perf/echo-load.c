/* echo-load: a TCP echo load generator on liburing alone (no krill), to drive krill-echo and
 * its peers. Each of --conns connections sends --size bytes, waits for all of them to come back
 * (checking them), and starts again, for --seconds; then one JSON line on stdout:
 *   {"bench":"echo","conns":C,"size":B,"seconds":S,"rate":R,"p50_us":..,"p99_us":..,"errors":E}
 * rate is round trips per second over the measured time (all connections connected first);
 * errors counts failed connects, resets, early closes and echoes that differ from what was sent.
 * One thread and one ring: the server, not this, should be the bottleneck. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { OP_CONNECT, OP_SEND, OP_RECV, OP_BITS = 2 };
enum { RING = 4096, LAT_MAX_US = 1000000 }; /* latencies past 1 s count as 1 s */

struct conn {
	int fd;
	bool up, dead;
	uint32_t sent, got; /* bytes of this round trip */
	uint64_t t0;        /* ns, when the round trip began */
	unsigned char *rbuf;
};

static struct io_uring ring;
static unsigned char *pattern;
static uint32_t size;
static uint64_t *lat; /* a count per microsecond of round-trip time */
static uint64_t trips, errors;
static bool measuring;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An SQE, submitting what is queued if the ring is full. */
static struct io_uring_sqe *sqe(void)
{
	struct io_uring_sqe *s = io_uring_get_sqe(&ring);
	while (!s) {
		io_uring_submit(&ring);
		s = io_uring_get_sqe(&ring);
	}
	return s;
}

static void post_send(struct conn *c, size_t i)
{
	struct io_uring_sqe *s = sqe();
	io_uring_prep_send(s, c->fd, pattern + c->sent, size - c->sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(s, (uint64_t)i << OP_BITS | OP_SEND);
}

static void post_recv(struct conn *c, size_t i)
{
	struct io_uring_sqe *s = sqe();
	io_uring_prep_recv(s, c->fd, c->rbuf + c->got, size - c->got, 0);
	io_uring_sqe_set_data64(s, (uint64_t)i << OP_BITS | OP_RECV);
}

/* Send and receive at once, so that a size larger than the socket buffers cannot deadlock. */
static void start_trip(struct conn *c, size_t i)
{
	c->sent = c->got = 0;
	c->t0 = now_ns();
	post_send(c, i);
	post_recv(c, i);
}

static void lose(struct conn *c)
{
	if (c->dead)
		return;
	errors++;
	c->dead = true;
	shutdown(c->fd, SHUT_RDWR); /* completes the other direction's pending operation */
}

static void complete(struct conn *c, size_t i, int op, int res)
{
	if (c->dead)
		return;
	if (op == OP_CONNECT) {
		if (res < 0) {
			lose(c);
			return;
		}
		c->up = true;
		start_trip(c, i);
		return;
	}
	if (res <= 0) {
		lose(c);
		return;
	}
	if (op == OP_SEND) {
		c->sent += (uint32_t)res;
		if (c->sent < size)
			post_send(c, i);
	} else {
		if (!c->rbuf) { /* set for every connection before its first operation */
			lose(c);
			return;
		}
		if (memcmp(c->rbuf + c->got, pattern + c->got, (size_t)res) != 0) {
			lose(c);
			return;
		}
		c->got += (uint32_t)res;
		if (c->got < size)
			post_recv(c, i);
	}
	if (c->sent < size || c->got < size)
		return;
	if (measuring) {
		uint64_t us = (now_ns() - c->t0) / 1000u;
		lat[us < LAT_MAX_US ? us : LAT_MAX_US]++;
		trips++;
	}
	start_trip(c, i);
}

/* Wait up to 10 ms and handle every completion there is. */
static void run_once(struct conn *conns)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {.tv_nsec = 10000000};
	int rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR) {
		fprintf(stderr, "echo-load: io_uring wait: %s\n", strerror(-rc));
		exit(1);
	}
	unsigned head, n = 0;
	io_uring_for_each_cqe(&ring, head, cqe)
	{
		uint64_t d = io_uring_cqe_get_data64(cqe);
		size_t i = (size_t)(d >> OP_BITS);
		complete(&conns[i], i, (int)(d & ((1u << OP_BITS) - 1)), cqe->res);
		n++;
	}
	io_uring_cq_advance(&ring, n);
}

static uint64_t percentile(double q)
{
	uint64_t want = (uint64_t)(q * (double)trips), seen = 0;
	for (uint64_t us = 0; us <= LAT_MAX_US; us++) {
		seen += lat[us];
		if (seen > want || (seen == trips && seen > 0))
			return us;
	}
	return 0;
}

static int number(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = s ? strtoull(s, &end, 10) : 0;
	if (!s || *s < '0' || *s > '9' || errno || *end || v < min || v > max) {
		fprintf(stderr, "echo-load: %s wants a number in %" PRIu64 "..%" PRIu64 "\n", opt,
			min, max);
		return -1;
	}
	*out = v;
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
	uint64_t port = 0, nconns = 100, seconds = 10, bytes = 64;
	for (int i = 1; i < argc; i += 2) { /* every option takes a value */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;
		if (!strcmp(a, "--host") && v)
			host = v;
		else if (!strcmp(a, "--port"))
			rc = number(a, v, 1, 65535, &port);
		else if (!strcmp(a, "--conns"))
			rc = number(a, v, 1, 1000000, &nconns);
		else if (!strcmp(a, "--seconds"))
			rc = number(a, v, 1, 86400, &seconds);
		else if (!strcmp(a, "--size"))
			rc = number(a, v, 1, 1u << 24, &bytes);
		else {
			fprintf(stderr, "usage: echo-load --port P [--host H] [--conns C] "
					"[--seconds S] [--size B]\n");
			return 2;
		}
		if (rc < 0)
			return 2;
	}
	if (!port) {
		fprintf(stderr, "echo-load: --port is required\n");
		return 2;
	}
	size = (uint32_t)bytes;

	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "echo-load: --host: '%s' is not an IPv4 address\n", host);
		return 2;
	}
	int rc = raise_nofile(nconns);
	if (rc < 0) {
		fprintf(stderr, "echo-load: cannot allow %" PRIu64 " descriptors: %s\n",
			nconns + 64, strerror(-rc));
		return 1;
	}
	if ((rc = io_uring_queue_init(RING, &ring, 0)) < 0) {
		fprintf(stderr, "echo-load: io_uring_queue_init: %s\n", strerror(-rc));
		return 1;
	}
	struct conn *conns = calloc(nconns, sizeof(*conns));
	pattern = malloc(size);
	lat = calloc(LAT_MAX_US + 1, sizeof(*lat));
	unsigned char *rbufs = malloc(nconns * size);
	if (!conns || !pattern || !lat || !rbufs) {
		fprintf(stderr, "echo-load: out of memory\n");
		free(conns);
		free(pattern);
		free(lat);
		free(rbufs);
		return 1;
	}
	for (uint32_t i = 0; i < size; i++)
		pattern[i] = (unsigned char)('a' + i % 26);

	/* Connect everything, a ring's worth at a time, before measuring. */
	for (size_t i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];
		c->rbuf = rbufs + i * size;
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			fprintf(stderr, "echo-load: socket: %s\n", strerror(errno));
			free(conns);
			free(pattern);
			free(lat);
			free(rbufs);
			return 1;
		}
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct io_uring_sqe *s = sqe();
		io_uring_prep_connect(s, c->fd, (struct sockaddr *)&sa, sizeof(sa));
		io_uring_sqe_set_data64(s, (uint64_t)i << OP_BITS | OP_CONNECT);
		if (i % 1024 == 1023)
			run_once(conns);
	}
	uint64_t deadline = now_ns() + 30ull * 1000000000u;
	size_t pending = nconns;
	while (pending > 0 && now_ns() < deadline) {
		run_once(conns);
		pending = 0;
		for (size_t i = 0; i < nconns; i++)
			pending += !conns[i].up && !conns[i].dead;
	}
	errors += pending; /* never connected */

	/* Measure: trips finished within the window. */
	measuring = true;
	uint64_t t0 = now_ns(), end = t0 + seconds * 1000000000u, t1;
	while ((t1 = now_ns()) < end)
		run_once(conns);
	measuring = false;
	double elapsed = (double)(t1 - t0) / 1e9;
	for (size_t i = 0; i < nconns; i++)
		close(conns[i].fd);

	printf("{\"bench\":\"echo\",\"conns\":%" PRIu64 ",\"size\":%" PRIu32 ",\"seconds\":%.3f,"
	       "\"rate\":%.1f,\"p50_us\":%" PRIu64 ",\"p99_us\":%" PRIu64 ",\"errors\":%" PRIu64
	       "}\n",
	       nconns, size, elapsed, (double)trips / elapsed, percentile(0.50), percentile(0.99),
	       errors);
	io_uring_queue_exit(&ring);
	free(conns);
	free(pattern);
	free(lat);
	free(rbufs);
	return 0;
}
