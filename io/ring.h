/* ring: one io_uring per scheduler. It is where the scheduler sleeps (a
 * wake from another thread is a MSG_RING completion), where its I/O is
 * submitted and completed, and it owns the provided buffers receives use. */
#ifndef KR_RING_H
#define KR_RING_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* user_data of a wake-up completion; I/O completions carry a pointer. */
#define RING_WAKE 0u

struct ring {
	struct io_uring u;
	bool ok; /* false: no io_uring here; park on a futex */
	/* The kernel takes IORING_RECVSEND_POLL_FIRST (5.19, as
	 * IORING_OP_SOCKET, which the probe shows). */
	bool poll_first;
	struct io_uring_buf_ring *br;
	unsigned char *bufs; /* nbuf buffers of BUF_SIZE bytes */
	unsigned nbuf;
	uint64_t inflight; /* requests submitted here, not yet completed */
	unsigned queued;   /* SQEs filled since the last submission */
	uint64_t submitted, completed;
	/* Receive completions reaped here for a socket whose owner last used
	 * it on another scheduler (handle.h, home): the owner has moved since
	 * the receive was armed, and the completion waited for this
	 * scheduler rather than the owner's. */
	uint64_t foreign;
	_Atomic uint32_t wake; /* 1: a wake-up is pending */
};

#define RING_BGID     1
#define RING_BUF_SIZE 4096u

/* Set up r (entries: SQ size; sqpoll: kernel-side submission). On failure
 * r->ok is false and the runtime works without I/O. */
void kri_ring_init(struct ring *r, unsigned entries, bool sqpoll);
/* Cancel what is in flight, reap it (so no buffer is written after it is
 * freed) and tear the ring down. The caller frees what the requests held. */
void kri_ring_fini(struct ring *r, void (*done)(void *arg, struct io_uring_cqe *), void *arg);

/* An SQE to fill, submitting first if the queue is full; NULL only if the
 * kernel refuses the submission. */
struct io_uring_sqe *kri_ring_sqe(struct ring *r);
/* Submit what is queued. */
void kri_ring_flush(struct ring *r);

/* Anything to submit or to wait for? Local fields only: a scheduler with
 * no I/O pays two loads per step, no shared cache line. */
static inline bool ring_busy(const struct ring *r)
{
	return r->inflight || r->queued;
}

/* Submit, then hand every completion to cb (wake-ups are consumed here).
 * Returns the number of I/O completions handled. */
unsigned kri_ring_reap(struct ring *r, void (*cb)(void *arg, struct io_uring_cqe *), void *arg);

/* Completions ready to reap, running the kernel's pending task work for
 * them first if it flagged some (COOP_TASKRUN). */
static inline bool ring_events(struct ring *r)
{
	if (io_uring_cq_ready(&r->u))
		return true;
	if (!(IO_URING_READ_ONCE(*r->u.sq.kflags) & IORING_SQ_TASKRUN))
		return false;
	io_uring_get_events(&r->u);
	return io_uring_cq_ready(&r->u) != 0;
}

/* Give buffer id back to the kernel. */
void kri_ring_buf_recycle(struct ring *r, unsigned id);
static inline unsigned char *ring_buf(struct ring *r, unsigned id)
{
	return r->bufs + (size_t)id * RING_BUF_SIZE;
}

/* Sleep until woken, a completion arrives, or timeout_ns passes
 * (UINT64_MAX: none). Returns at once if a wake is pending. */
void kri_ring_wait(struct ring *r, uint64_t timeout_ns);
/* Any thread: wake r's sleeper. from is the caller's own ring if it has
 * one (a MSG_RING is sent on it), else NULL (a shared ring is used). */
void kri_ring_wake(struct ring *r, struct ring *from);

#endif
