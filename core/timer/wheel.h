/* wheel: a hierarchical timing wheel, one per scheduler, touched only by its
 * owner thread. O(1) add and delete, amortised O(1) per expiry; time is in
 * milliseconds from any origin (the runtime passes a monotonic clock, or a
 * virtual one in deterministic mode). */
#ifndef KR_WHEEL_H
#define KR_WHEEL_H

#include <stdint.h>

/* Embedded in whatever is timed; the wheel never allocates. */
struct wnode {
	struct wnode *next, **pprev; /* pprev == NULL: not in a wheel */
	uint64_t when;               /* expiry, ms */
};

#define WHEEL_BITS 6 /* 64 slots a level */
#define WHEEL_LEVELS                                                      \
	6 /* 64^6 ms ~ 2.2 years; later expiries park in an overflow slot \
	   * and still fire exactly on time */

struct wheel {
	uint64_t now; /* time the wheel has advanced to */
	uint64_t count;
	uint64_t next; /* wheel_next's answer while next_ok; filled by wheel_next, so that too
			* is for the owner thread only */
	int next_ok;
	uint64_t
	    occupied[WHEEL_LEVELS];   /* bit s: slot[l][s] non-empty; lets advance skip idle time */
	struct wnode *due, *due_last; /* expiry <= now, by expiry then arming order */
	struct wnode *slot[WHEEL_LEVELS][1u << WHEEL_BITS];
};

void kri_wheel_init(struct wheel *w, uint64_t now);

/* Arm n to expire at `when` (in the past or now: fires at the next advance).
 * n must not be armed. */
void kri_wheel_add(struct wheel *w, struct wnode *n, uint64_t when);

/* Disarm n if armed; harmless if not. */
void kri_wheel_del(struct wheel *w, struct wnode *n);

static inline int wheel_armed(const struct wnode *n)
{
	return n->pprev != 0;
}

/* Advance to `now`, calling fire(arg, n) once for each node whose expiry is
 * <= now, in order of expiry (ties in arming order). A node is disarmed
 * before fire is called; fire may add or delete any node, including n.
 * Returns the number fired. */
uint64_t kri_wheel_advance(struct wheel *w, uint64_t now, void (*fire)(void *arg, struct wnode *n),
			   void *arg);

/* Earliest expiry among armed nodes, or UINT64_MAX when none. Exact (not a
 * slot bound); after the earliest node is deleted it walks the first
 * occupied slot's list once. */
uint64_t kri_wheel_next(const struct wheel *w);

/* A time at or before the earliest expiry and after the wheel's now (or
 * the expiry itself when due), UINT64_MAX when none, in O(1): the cached
 * exact answer, else a finest-level expiry, else the start of the first
 * occupied slot, where advancing moves its nodes to finer slots. For a
 * scheduler about to sleep: waking at a slot boundary now and then is
 * cheaper than walking 10,000 connections' timers each time it parks
 * after one of them was re-armed. */
uint64_t kri_wheel_next_bound(const struct wheel *w);

#endif
