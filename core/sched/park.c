/* park: a scheduler's sleep. With a ring, the ring's wait (io/ring.c);
 * without, a futex word: the waker sets the word before the wake call, so
 * a wake that races ahead of the wait is not lost. */
#include "core/sched/park.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "io/ring.h"

static _Thread_local struct ring *self_ring;

void kri_park_init(struct park *k, struct ring *ring)
{
	atomic_init(&k->word, 0);
	k->ring = ring;
}

void kri_park_set_self(struct park *k)
{
	self_ring = k->ring;
}

void kri_park_wait(struct park *k, uint64_t timeout_ns)
{
	struct timespec ts, *tsp = 0;
	if (k->ring) {
		kri_ring_wait(k->ring, timeout_ns);
		return;
	}
	/* Acquire: what the waker published before waking is visible after. */
	if (atomic_exchange_explicit(&k->word, 0, memory_order_acquire))
		return;
	if (timeout_ns != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long)(timeout_ns % 1000000000u);
		tsp = &ts;
	}
	syscall(SYS_futex, &k->word, FUTEX_WAIT_PRIVATE, 0, tsp, 0, 0);
	atomic_exchange_explicit(&k->word, 0, memory_order_acquire);
}

void kri_park_wake(struct park *k)
{
	if (k->ring) {
		kri_ring_wake(k->ring, self_ring);
		return;
	}
	if (atomic_exchange_explicit(&k->word, 1, memory_order_release))
		return; /* already pending: the sleeper will see it */
	syscall(SYS_futex, &k->word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
}
