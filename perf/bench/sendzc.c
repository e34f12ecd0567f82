/* sendzc: does io_uring's SEND_ZC beat SEND for large payloads here? liburing alone. One ring keeps
 * --queue sends in flight on a TCP connection to a recv() loop (a thread on 127.0.0.1, or a remote
 * `sendzc --receive --port P`); one JSON line per (size, mode) and a zc/send ratio per size. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* liburing 2.3's copy of the kernel header predates these (kernel 6.2); values are kernel ABI. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

enum { MODE_SEND, MODE_ZC, NMODES };
enum { RING = 256, RECV_BUF = 4 << 20, MAX_QUEUE = 64 };
static const char *const mode_name[NMODES] = {"send", "send_zc"};
static const uint32_t sizes[] = {4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20};
enum { NSIZES = sizeof(sizes) / sizeof(sizes[0]) };
static const uint64_t WARMUP_NS = 200000000u; /* past TCP slow start and cold caches */

/* A slot is one payload-sized region of the registered buffer. It may be rewritten (reused) only
 * when every byte is handed to the kernel (left == 0), no send is in flight, and, for send_zc,
 * every notification has arrived: the completion CQE only says the data was queued, the
 * notification says the kernel no longer reads the pages. */
struct slot {
	uint32_t off, left; /* next byte to send, bytes still to send */
	bool inflight;
	uint32_t notifs; /* send_zc notifications still owed */
};

struct result {
	double seconds, rate, cpu_ns_per_byte, proc_cpu_ns_per_byte, copied;
	bool ok;
};

static struct io_uring ring;
static unsigned char *buf; /* fixed buffer 0: --queue slots of the largest size */
static unsigned queue = 4;
static unsigned zc_flags = IORING_SEND_ZC_REPORT_USAGE;

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Read until the peer closes; the data itself is not looked at. */
static void drain(int fd, unsigned char *rbuf)
{
	for (;;) {
		ssize_t n = recv(fd, rbuf, RECV_BUF, 0);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		break;
	}
	close(fd);
}

/* Connections one after another, as the sender makes them; ends when the listener is shut down. */
static void *receiver(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	unsigned char *rbuf = malloc(RECV_BUF);
	if (!rbuf) {
		fprintf(stderr, "sendzc: out of memory\n");
		exit(1);
	}
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		drain(fd, rbuf);
	}
	free(rbuf);
	return NULL;
}

static int listen_on(uint16_t port, bool any)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(any ? INADDR_ANY : INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void post(int fd, int mode, struct slot *s, unsigned i)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	/* The ring has far more entries than --queue, and every batch is submitted before waiting.
	 */
	unsigned char *p = buf + s->off;
	if (mode == MODE_ZC)
		io_uring_prep_send_zc_fixed(sqe, fd, p, s->left, MSG_NOSIGNAL, zc_flags, 0);
	else
		io_uring_prep_send(sqe, fd, p, s->left,
				   MSG_NOSIGNAL); /* copies from the same pages */
	io_uring_sqe_set_data64(sqe, i);
	s->inflight = true;
}

/* One connection, one (size, mode): warm up, measure, then stop sending and wait for every slot
 * to be free again (all notifications in) before closing, so that no CQE leaks into the next run.
 */
static struct result run(const struct sockaddr_in *to, uint32_t size, int mode, uint64_t seconds)
{
	struct result r = {0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0) {
		fprintf(stderr, "sendzc: connect: %s\n", strerror(errno));
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	struct slot slots[MAX_QUEUE];
	for (unsigned i = 0; i < queue; i++) {
		slots[i] = (struct slot){.off = i * size, .left = size};
		post(fd, mode, &slots[i], i);
	}
	uint64_t start = clock_ns(CLOCK_MONOTONIC), t0 = start + WARMUP_NS;
	uint64_t t1 = t0 + seconds * 1000000000u, now;
	uint64_t bytes = 0, notifs = 0, copied = 0, cpu0 = 0, pcpu0 = 0, cpu1 = 0, pcpu1 = 0;
	bool measuring = false, sending = true, failed = false;
	unsigned busy = queue;
	while (busy > 0) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = {.tv_nsec = 100000000};
		int rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
		if (rc < 0 && rc != -ETIME && rc != -EINTR) {
			fprintf(stderr, "sendzc: io_uring wait: %s\n", strerror(-rc));
			exit(1);
		}
		now = clock_ns(CLOCK_MONOTONIC);
		if (!measuring && sending && now >= t0) {
			measuring = true;
			t0 = now;
			cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
			pcpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		} else if (measuring && now >= t1) {
			measuring = sending = false;
			t1 = now;
			cpu1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
			pcpu1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		}
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			n++;
			struct slot *s = &slots[io_uring_cqe_get_data64(cqe)];
			if (cqe->flags & IORING_CQE_F_NOTIF) {
				s->notifs--;
				notifs += measuring;
				copied += measuring &&
					  ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED);
			} else {
				s->inflight = false;
				/* F_MORE: a notification for this request will follow. */
				s->notifs += !!(cqe->flags & IORING_CQE_F_MORE);
				if (cqe->res < 0) {
					if (!failed)
						fprintf(stderr, "sendzc: %s of %" PRIu32 ": %s\n",
							mode_name[mode], size, strerror(-cqe->res));
					failed = true;
					sending = false;
					s->left = 0;
				} else {
					s->off += (uint32_t)cqe->res;
					s->left -= (uint32_t)cqe->res;
					bytes += measuring ? (uint64_t)cqe->res : 0;
				}
			}
			if (s->inflight || s->notifs)
				continue;
			if (s->left && !failed) {
				post(fd, mode, s, (unsigned)(s - slots)); /* short send: the rest */
				continue;
			}
			if (sending) {
				s->off = (uint32_t)(s - slots) * size;
				s->left = size;
				post(fd, mode, s, (unsigned)(s - slots));
				continue;
			}
			busy--;
		}
		io_uring_cq_advance(&ring, n);
		if (measuring && bytes == 0 && now - t0 > 10 * 1000000000ull) {
			fprintf(stderr, "sendzc: no progress in 10 s, receiver gone?\n");
			exit(1);
		}
	}
	close(fd);
	if (failed)
		return r;
	r.ok = true;
	r.seconds = (double)(t1 - t0) / 1e9;
	r.rate = (double)bytes / r.seconds;
	r.cpu_ns_per_byte = bytes ? (double)(cpu1 - cpu0) / (double)bytes : 0;
	r.proc_cpu_ns_per_byte = bytes ? (double)(pcpu1 - pcpu0) / (double)bytes : 0;
	r.copied = notifs ? (double)copied / (double)notifs : 0;
	return r;
}

/* Why send_zc cannot run here, or NULL: the opcode unknown to the kernel, or rejecting a send. */
static const char *zc_unsupported(void)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&ring);
	if (!p)
		return "io_uring probe failed";
	bool ok = io_uring_opcode_supported(p, IORING_OP_SEND_ZC);
	io_uring_free_probe(p);
	return ok ? NULL : "kernel lacks IORING_OP_SEND_ZC (needs 6.0)";
}

static int serve(uint16_t port)
{
	int lfd = listen_on(port, true);
	if (lfd < 0) {
		fprintf(stderr, "sendzc: listen on port %u: %s\n", port, strerror(errno));
		return 1;
	}
	fprintf(stderr, "sendzc: receiving on port %u\n", port);
	receiver((void *)(intptr_t)lfd);
	return 1;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	uint64_t port = 0, seconds = 2, q = queue;
	bool receive = false;
	enum { O_PORT = 256, O_SECONDS, O_QUEUE };
	static const struct option opts[] = {
	    {"receive", no_argument, NULL, 'r'},
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, O_PORT},
	    {"seconds", required_argument, NULL, O_SECONDS},
	    {"queue", required_argument, NULL, O_QUEUE},
	    {0},
	};
	int c;

	opterr = 0; /* a missing value gets one line, anything else the usage */
	while ((c = getopt_long(argc, argv, "-:", opts, NULL)) != -1) {
		bool ok = true;

		if (c == 'r')
			receive = true;
		else if (c == 'H')
			host = optarg;
		else if (c == O_PORT)
			ok = cli_number("sendzc", "--port", optarg, 1, 65535, &port);
		else if (c == O_SECONDS)
			ok = cli_number("sendzc", "--seconds", optarg, 1, 3600, &seconds);
		else if (c == O_QUEUE)
			ok = cli_number("sendzc", "--queue", optarg, 1, MAX_QUEUE, &q);
		else if (c == ':') {
			cli_getopt_error("sendzc", c, argv);
			return 2;
		} else {
			fprintf(stderr,
				"usage: sendzc [--seconds S] [--queue Q] [--host H --port P]\n"
				"       sendzc --receive --port P\n");
			return 2;
		}
		if (!ok)
			return 2;
	}
	queue = (unsigned)q;
	signal(SIGPIPE, SIG_IGN);
	if (receive) {
		if (!port) {
			fprintf(stderr, "sendzc: --receive needs --port\n");
			return 2;
		}
		return serve((uint16_t)port);
	}

	/* No --port: receive in a thread of this process, on an ephemeral loopback port. */
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &to.sin_addr) != 1) {
		fprintf(stderr, "sendzc: --host: '%s' is not an IPv4 address\n", host);
		return 2;
	}
	int lfd = -1;
	pthread_t rx;
	if (!port) {
		socklen_t len = sizeof(to);
		if ((lfd = listen_on(0, false)) < 0 ||
		    getsockname(lfd, (struct sockaddr *)&to, &len) < 0) {
			fprintf(stderr, "sendzc: listen: %s\n", strerror(errno));
			return 1;
		}
		if (pthread_create(&rx, NULL, receiver, (void *)(intptr_t)lfd) != 0) {
			fprintf(stderr, "sendzc: cannot start the receiver thread\n");
			return 1;
		}
	}

	int rc = io_uring_queue_init(RING, &ring, 0);
	if (rc < 0) {
		fprintf(stderr, "sendzc: io_uring_queue_init: %s\n", strerror(-rc));
		return 1;
	}
	/* One region for all slots, registered once: send_zc then skips pinning pages per request,
	 * its best case; plain send copies from the same pages. */
	size_t len = (size_t)queue * sizes[NSIZES - 1];
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		fprintf(stderr, "sendzc: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)('a' + i % 26);
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	if ((rc = io_uring_register_buffers(&ring, &iov, 1)) < 0) {
		fprintf(stderr, "sendzc: register %zu bytes: %s (RLIMIT_MEMLOCK?)\n", len,
			strerror(-rc));
		return 1;
	}

	const char *skip = zc_unsupported();
	if (skip)
		printf("{\"skip\":\"send_zc\",\"reason\":\"%s\"}\n", skip);
	struct result res[NSIZES][NMODES] = {0};
	for (int s = 0; s < NSIZES; s++) {
		for (int m = 0; m < NMODES; m++) {
			if (m == MODE_ZC && skip)
				continue;
			struct result *r = &res[s][m];
			*r = run(&to, sizes[s], m, seconds);
			if (m == MODE_ZC && !r->ok && zc_flags) {
				/* A kernel with send_zc but not usage reports (6.0, 6.1) says
				 * EINVAL. */
				zc_flags = 0;
				*r = run(&to, sizes[s], m, seconds);
			}
			if (!r->ok) {
				if (m == MODE_ZC) {
					skip = "send_zc requests fail (see stderr)";
					printf("{\"skip\":\"send_zc\",\"reason\":\"%s\"}\n", skip);
				}
				continue;
			}
			/* cpu_ns_per_byte is the sender thread's; on loopback it also runs much of
			 * the receive path (softirq), hence the whole process's as well. zc_copied:
			 * the share of notifications flagged ZC_COPIED, 1 when nothing went
			 * zero-copy (always so on loopback, which copies to the receiver); -1 if
			 * not asked. */
			printf("{\"bench\":\"sendzc\",\"mode\":\"%s\",\"size\":%" PRIu32
			       ",\"seconds\":%.3f,\"rate\":%.0f,\"gbit_s\":%.3f,"
			       "\"cpu_ns_per_byte\":%.4f,\"proc_cpu_ns_per_byte\":%.4f",
			       mode_name[m], sizes[s], r->seconds, r->rate, r->rate * 8 / 1e9,
			       r->cpu_ns_per_byte, r->proc_cpu_ns_per_byte);
			if (m == MODE_ZC)
				printf(",\"zc_copied\":%.3f", zc_flags ? r->copied : -1.0);
			printf("}\n");
			fflush(stdout);
		}
	}
	for (int s = 0; s < NSIZES; s++) {
		struct result *a = &res[s][MODE_SEND], *z = &res[s][MODE_ZC];
		if (!a->ok || !z->ok)
			continue;
		printf("{\"bench\":\"sendzc\",\"size\":%" PRIu32
		       ",\"zc_over_send\":%.3f,\"cpu_zc_over_send\":%.3f}\n",
		       sizes[s], z->rate / a->rate, z->cpu_ns_per_byte / a->cpu_ns_per_byte);
	}

	io_uring_queue_exit(&ring);
	if (lfd >= 0) {
		shutdown(lfd, SHUT_RDWR); /* wakes the receiver's accept() */
		pthread_join(rx, NULL);
		close(lfd);
	}
	return 0;
}
