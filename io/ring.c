/* ring: one io_uring per scheduler, its provided buffers, and sleeping in
 * its wait. A wake-up is a MSG_RING completion posted to the sleeper's
 * ring, so I/O completions, timers (the wait's timeout) and other
 * schedulers all wake it the same way. The wake word keeps a burst of
 * wakers to one message, and lets a wake that races ahead of the wait
 * make the wait return at once. */
#include "io/ring.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <time.h>

#define NBUF 512u

/* Threads that have no ring of their own (foreign threads, the watchdog)
 * wake schedulers through this one. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct io_uring shared;
static int shared_state; /* 0: not tried, 1: ready, -1: unavailable */
static pid_t shared_pid; /* the process that made it */

static int bufs_init(struct ring *r)
{
	size_t rsz = NBUF * sizeof(struct io_uring_buf);
	size_t bsz = (size_t)NBUF * RING_BUF_SIZE;
	void *br = mmap(0, rsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED)
		return -ENOMEM;
	void *bufs = mmap(0, bsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bufs == MAP_FAILED) {
		munmap(br, rsz);
		return -ENOMEM;
	}
	struct io_uring_buf_reg reg = {
	    .ring_addr = (uintptr_t)br, .ring_entries = NBUF, .bgid = RING_BGID};
	int rc = io_uring_register_buf_ring(&r->u, &reg, 0);
	if (rc) {
		munmap(br, rsz);
		munmap(bufs, bsz);
		return rc;
	}
	r->br = br;
	r->bufs = bufs;
	r->nbuf = NBUF;
	io_uring_buf_ring_init(r->br);
	for (unsigned i = 0; i < NBUF; i++)
		io_uring_buf_ring_add(r->br, ring_buf(r, i), RING_BUF_SIZE, (unsigned short)i,
				      io_uring_buf_ring_mask(NBUF), (int)i);
	io_uring_buf_ring_advance(r->br, NBUF);
	return 0;
}

void kri_ring_init(struct ring *r, unsigned entries, bool sqpoll)
{
	struct io_uring_params p;
	memset(r, 0, sizeof(*r));
	atomic_init(&r->wake, 0);
	memset(&p, 0, sizeof(p));
	/* CQ twice the SQ; a full CQ overflows into the kernel's list (NODROP)
	 * rather than losing completions. */
	if (sqpoll) {
		p.flags |= IORING_SETUP_SQPOLL;
		p.sq_thread_idle = 50;
	}
	/* Completions' task work runs when we enter the kernel (we do, to
	 * submit and to wait), not by interrupting a busy scheduler; the
	 * flag in the SQ ring says when there is some to run (ring_events). */
	p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	if (io_uring_queue_init_params(entries, &r->u, &p) < 0) {
		p.flags &= ~(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
		if (io_uring_queue_init_params(entries, &r->u, &p) < 0)
			return;
	}
	struct io_uring_probe *probe = io_uring_get_probe_ring(&r->u);
	bool msg = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
	r->poll_first = probe && io_uring_opcode_supported(probe, IORING_OP_SOCKET);
	io_uring_free_probe(probe);
	if (!msg || !(p.features & IORING_FEAT_EXT_ARG) || bufs_init(r) < 0) {
		/* A kernel without MSG_RING (5.18) or timed waits without an
		 * SQE (EXT_ARG) parks its schedulers on the futex instead. */
		io_uring_queue_exit(&r->u);
		return;
	}
	r->ok = true;
}

static void reap_all(struct ring *r, void (*done)(void *, struct io_uring_cqe *), void *arg)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&r->u, head, cqe)
	{
		n++;
		if (cqe->user_data == RING_WAKE)
			continue;
		if (!(cqe->flags & IORING_CQE_F_MORE))
			r->inflight--;
		r->completed++;
		if (done)
			done(arg, cqe);
	}
	io_uring_cq_advance(&r->u, n);
}

void kri_ring_fini(struct ring *r, void (*done)(void *, struct io_uring_cqe *), void *arg)
{
	if (!r->ok)
		return;
	/* Cancel everything, then reap until nothing is in flight: only then
	 * may the buffers and records the requests point at be freed. */
	struct io_uring_sqe *sqe = kri_ring_sqe(r);
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		sqe->user_data = RING_WAKE;
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	}
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 10000000};
	for (int tries = 0; r->inflight && tries < 500; tries++) {
		struct io_uring_cqe *cqe;
		io_uring_submit_and_wait_timeout(&r->u, &cqe, 1, &ts, 0);
		reap_all(r, done, arg);
	}
	io_uring_queue_exit(&r->u);
	munmap(r->br, r->nbuf * sizeof(struct io_uring_buf));
	munmap(r->bufs, (size_t)r->nbuf * RING_BUF_SIZE);
	r->ok = false;
}

struct io_uring_sqe *kri_ring_sqe(struct ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->u);
	if (!sqe) {
		kri_ring_flush(r);
		sqe = io_uring_get_sqe(&r->u);
	}
	if (sqe)
		r->queued++;
	return sqe;
}

void kri_ring_flush(struct ring *r)
{
	if (r->queued) {
		int rc = io_uring_submit(&r->u);
		if (rc > 0)
			r->submitted += (unsigned)rc;
		r->queued = 0;
	}
}

unsigned kri_ring_reap(struct ring *r, void (*cb)(void *, struct io_uring_cqe *), void *arg)
{
	uint64_t before = r->completed;
	kri_ring_flush(r);
	reap_all(r, cb, arg);
	return (unsigned)(r->completed - before);
}

void kri_ring_buf_recycle(struct ring *r, unsigned id)
{
	io_uring_buf_ring_add(r->br, ring_buf(r, id), RING_BUF_SIZE, (unsigned short)id,
			      io_uring_buf_ring_mask(r->nbuf), 0);
	io_uring_buf_ring_advance(r->br, 1);
}

void kri_ring_wait(struct ring *r, uint64_t timeout_ns)
{
	struct io_uring_cqe *cqe;
	/* Wake-ups already seen through the word are dropped first; anything
	 * else is for the caller. Only then is the word cleared: a waker that
	 * sets it later posts its message later, and that ends the wait. */
	while (io_uring_peek_cqe(&r->u, &cqe) == 0) {
		if (cqe->user_data != RING_WAKE)
			return;
		io_uring_cqe_seen(&r->u, cqe);
	}
	/* Acquire: what the waker published before waking is visible. */
	if (atomic_exchange_explicit(&r->wake, 0, memory_order_acquire))
		return;
	struct __kernel_timespec ts, *tsp = 0;
	if (timeout_ns != UINT64_MAX) {
		ts.tv_sec = (long long)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long long)(timeout_ns % 1000000000u);
		tsp = &ts;
	}
	if (io_uring_submit_and_wait_timeout(&r->u, &cqe, 1, tsp, 0) >= 0)
		r->submitted += r->queued;
	r->queued = 0;
	atomic_exchange_explicit(&r->wake, 0, memory_order_acquire);
}

static void prep_wake(struct io_uring_sqe *sqe, struct ring *to)
{
	io_uring_prep_msg_ring(sqe, to->u.ring_fd, 0, RING_WAKE, 0);
	sqe->user_data = RING_WAKE;
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void kri_ring_wake(struct ring *r, struct ring *from)
{
	/* Release: pairs with the sleeper's acquire exchange. */
	if (atomic_exchange_explicit(&r->wake, 1, memory_order_release))
		return; /* already pending: the sleeper will see it */
	if (from && from->ok) {
		/* Sent at once, with whatever else the waker had queued. */
		struct io_uring_sqe *sqe = kri_ring_sqe(from);
		if (sqe) {
			prep_wake(sqe, r);
			kri_ring_flush(from);
		}
		return;
	}
	pthread_mutex_lock(&shared_lock);
	/* A child of fork() inherits the parent's ring, whose queues are
	 * mapped shared with the parent: it makes its own rather than write
	 * into the parent's (a wake-up submitted there could be lost, and
	 * kr_wait then waited for ever; test_fault's forked runs hung so). */
	if (shared_state != 0 && shared_pid != getpid()) {
		if (shared_state == 1)
			io_uring_queue_exit(&shared);
		shared_state = 0;
	}
	if (shared_state == 0) {
		shared_state = io_uring_queue_init(8, &shared, 0) == 0 ? 1 : -1;
		shared_pid = getpid();
	}
	struct io_uring_sqe *sqe = shared_state == 1 ? io_uring_get_sqe(&shared) : 0;
	if (sqe) {
		prep_wake(sqe, r);
		io_uring_submit(&shared);
		/* Failed messages post a CQE here: drop them. */
		io_uring_cq_advance(&shared, io_uring_cq_ready(&shared));
	}
	pthread_mutex_unlock(&shared_lock);
}
