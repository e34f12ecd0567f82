/* park: where an idle scheduler sleeps and how another thread wakes it.
 * A futex word today; the io_uring issue makes the ring's wait the place
 * (a wake becomes a MSG_RING), behind these same three calls. */
#ifndef KR_PARK_H
#define KR_PARK_H

#include <stdatomic.h>
#include <stdint.h>

struct park {
	_Atomic uint32_t word; /* 1: a wake is pending */
};

void park_init(struct park *k);
/* Sleep until woken or until timeout_ns passes (UINT64_MAX: no timeout).
 * Returns at once if a wake is pending; consumes it. Spurious returns are
 * allowed: callers re-check their condition. */
void park_wait(struct park *k, uint64_t timeout_ns);
/* Any thread: wake the sleeper (or make its next wait return at once). */
void park_wake(struct park *k);

#endif
