/* park: a futex per scheduler. The waker sets the word before the wake
 * call, so a wake that races ahead of the wait is not lost: the wait sees
 * the word already set and returns. */
#include "core/park.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void park_init(struct park *k)
{
	atomic_init(&k->word, 0);
}

void park_wait(struct park *k, uint64_t timeout_ns)
{
	struct timespec ts, *tsp = 0;
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

void park_wake(struct park *k)
{
	if (atomic_exchange_explicit(&k->word, 1, memory_order_release))
		return; /* already pending: the sleeper will see it */
	syscall(SYS_futex, &k->word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
}
