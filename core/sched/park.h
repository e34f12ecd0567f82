/* park: where an idle scheduler sleeps and how another thread wakes it.
 * In its io_uring ring's wait (a wake is a MSG_RING), so that I/O
 * completions wake it too; on a futex where the kernel has no io_uring. */
#ifndef KR_PARK_H
#define KR_PARK_H

#include <stdatomic.h>
#include <stdint.h>

struct ring;

struct park {
	_Atomic uint32_t word; /* futex: 1 = a wake is pending */
	struct ring *ring;     /* NULL: the futex */
};

/* ring: the scheduler's ring if it works, else NULL. */
void kri_park_init(struct park *k, struct ring *ring);
/* The calling thread is k's scheduler: its wakes go out on k's ring. */
void kri_park_set_self(struct park *k);
/* Sleep until woken, a completion arrives or timeout_ns passes (UINT64_MAX:
 * no timeout). Returns at once if a wake is pending; consumes it. Spurious
 * returns are allowed: callers re-check their condition. */
void kri_park_wait(struct park *k, uint64_t timeout_ns);
/* Any thread: wake the sleeper (or make its next wait return at once). */
void kri_park_wake(struct park *k);

/* How long a scheduler with I/O in flight spins before it sleeps, learnt
 * as Linux's cpuidle-haltpoll learns its poll: a sleep that ended within
 * PARK_SPIN_MAX doubles the spin (from PARK_SPIN_START), a longer one
 * halves it, down to none, so a spin lasts only while traffic comes that
 * soon, and an idle server spins no more than it did. ns throughout. */
#define PARK_SPIN_START 10000u
#define PARK_SPIN_MAX   200000u

static inline uint64_t park_spin_learn(uint64_t spin, uint64_t slept)
{
	if (slept <= PARK_SPIN_MAX) {
		spin = spin ? 2 * spin : PARK_SPIN_START;
		return spin < PARK_SPIN_MAX ? spin : PARK_SPIN_MAX;
	}
	spin /= 2;
	return spin < PARK_SPIN_START ? 0 : spin;
}

#endif
