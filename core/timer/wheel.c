/* wheel: the per-scheduler timer store behind receive timeouts and send_after. Most timers
 * are cancelled long before they expire, so arming and cancelling are O(1); expiry order is
 * exact so a deterministic run replays the same way every time. */
#include "core/timer/wheel.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Placement is by the highest 6-bit field in which `when` differs from `now`, not by the
 * distance as in the classic wheel: a node at level l, slot s shares every field above l
 * with now and has field l == s > now's field l. So a level never wraps, every node on
 * level l expires before every node on the levels above, and the first occupied slot of the
 * lowest occupied level holds the earliest expiry. When now reaches the start of a slot,
 * the slot is re-placed lower down; a level-0 slot holds a single expiry, and reaching it
 * moves its nodes to the due list.
 *
 * Expiries whose fields above the top level differ from now's park in slot FAR of the top
 * level, which regular nodes never use (their field exceeds now's, so is never 0). They are
 * re-placed when now enters the 64^6 ms block of the earliest of them, so they fire exactly.
 *
 * Equal expiries always share a list (a node is cascaded down before anything armed later
 * for the same expiry can land below it), so keeping lists newest-first and re-placing
 * oldest-first preserves arming order among ties.
 */

#define SLOTS (1u << WHEEL_BITS)
#define MASK  ((uint64_t)SLOTS - 1)
#define SPAN  (WHEEL_BITS * WHEEL_LEVELS) /* bits of time the levels resolve */
#define TOP   (WHEEL_LEVELS - 1)
#define FAR   0u

_Static_assert(WHEEL_BITS >= 1 && WHEEL_BITS <= 6, "occupancy bitmaps are uint64_t");
_Static_assert(SPAN < 64, "expiries beyond the levels must be representable");

static inline unsigned field(uint64_t t, unsigned lv)
{
	return (unsigned)(t >> (lv * WHEEL_BITS) & MASK);
}

/* The due list is walked backwards through pprev, which points at the previous node's next. */
static inline struct wnode *prev_of(struct wheel *w, struct wnode **pp)
{
	return pp == &w->due ? NULL : (struct wnode *)((char *)pp - offsetof(struct wnode, next));
}

static void due_insert(struct wheel *w, struct wnode *n)
{
	/* Usually n expires no earlier than the tail (it is due now, or cascaded in order), so
	 * the walk stops at once; only arming in the past can step back. */
	struct wnode *p = w->due_last;
	while (p && p->when > n->when)
		p = prev_of(w, p->pprev);
	struct wnode **at = p ? &p->next : &w->due;
	n->next = *at;
	n->pprev = at;
	if (n->next)
		n->next->pprev = &n->next;
	else
		w->due_last = n;
	*at = n;
}

static void place(struct wheel *w, struct wnode *n)
{
	if (n->when <= w->now) {
		due_insert(w, n);
		return;
	}
	uint64_t x = n->when ^ w->now;
	unsigned lv, s;
	if (x >> SPAN) {
		lv = TOP;
		s = FAR;
	} else {
		lv = (unsigned)(63 - __builtin_clzll(x)) / WHEEL_BITS;
		s = field(n->when, lv);
	}
	struct wnode **h = &w->slot[lv][s];
	n->next = *h;
	if (n->next)
		n->next->pprev = &n->next;
	n->pprev = h;
	*h = n;
	w->occupied[lv] |= 1ull << s;
}

static void unlink_node(struct wheel *w, struct wnode *n)
{
	*n->pprev = n->next;
	if (n->next) {
		n->next->pprev = n->pprev;
	} else if (w->due_last == n) {
		w->due_last = prev_of(w, n->pprev);
	} else {
		/* Alone in its slot iff it was both head (pprev inside slot[]) and tail; the
		 * address tells the slot without recomputing the placement. */
		uintptr_t off = (uintptr_t)n->pprev - (uintptr_t)&w->slot[0][0];
		if (off < sizeof w->slot) {
			size_t i = off / sizeof w->slot[0][0];
			w->occupied[i / SLOTS] &= ~(1ull << (i % SLOTS));
		}
	}
	n->next = NULL;
	n->pprev = NULL;
	w->count--;
	if (n->when == w->next)
		w->next_ok = 0;
}

static void replace_slot(struct wheel *w, unsigned lv, unsigned s)
{
	struct wnode *n = w->slot[lv][s], *old = NULL, *nx;
	if (!n)
		return;
	w->slot[lv][s] = NULL;
	w->occupied[lv] &= ~(1ull << s);
	for (; n; n = nx) {
		nx = n->next;
		n->next = old;
		old = n;
	}
	for (n = old; n; n = nx) {
		nx = n->next;
		place(w, n);
	}
}

/* The lowest occupied level and its first slot after now; 0 if only FAR (or nothing) is left. */
static int first_slot(const struct wheel *w, unsigned *lv, unsigned *s)
{
	for (unsigned l = 0; l < WHEEL_LEVELS; l++) {
		uint64_t m = w->occupied[l] & (~1ull << field(w->now, l));
		if (m) {
			*lv = l;
			*s = (unsigned)__builtin_ctzll(m);
			return 1;
		}
	}
	return 0;
}

static uint64_t slot_start(uint64_t now, unsigned lv, unsigned s)
{
	unsigned sh = lv * WHEEL_BITS;
	return ((now >> sh & ~MASK) | s) << sh;
}

/* The next time after now at which a slot must be re-placed. Expects the due list empty. */
static uint64_t next_event(const struct wheel *w)
{
	unsigned lv, s;
	if (first_slot(w, &lv, &s))
		return slot_start(w->now, lv, s);
	uint64_t t = UINT64_MAX;
	for (const struct wnode *n = w->slot[TOP][FAR]; n; n = n->next)
		if ((n->when >> SPAN << SPAN) < t)
			t = n->when >> SPAN << SPAN;
	return t;
}

static void step(struct wheel *w, uint64_t t)
{
	uint64_t old = w->now;
	w->now = t;
	if ((old ^ t) >> SPAN)
		replace_slot(w, TOP, FAR);
	/* place() never picks the slot at now's own field, so one pass in any order empties
	 * every slot starting at t. Where t starts no slot, field(t) == field(old): empty. */
	for (unsigned lv = TOP + 1; lv-- > 0;) {
		unsigned s = field(t, lv);
		if (lv != TOP || s != FAR)
			replace_slot(w, lv, s);
	}
}

static uint64_t earliest(const struct wheel *w)
{
	if (w->due)
		return w->due->when;
	unsigned lv, s;
	const struct wnode *n;
	if (first_slot(w, &lv, &s)) {
		if (lv == 0)
			return slot_start(w->now, 0, s);
		n = w->slot[lv][s];
	} else {
		n = w->slot[TOP][FAR];
	}
	uint64_t t = UINT64_MAX;
	for (; n; n = n->next)
		if (n->when < t)
			t = n->when;
	return t;
}

void kri_wheel_init(struct wheel *w, uint64_t now)
{
	*w = (struct wheel){.now = now, .next = UINT64_MAX, .next_ok = 1};
}

void kri_wheel_add(struct wheel *w, struct wnode *n, uint64_t when)
{
	n->when = when;
	place(w, n);
	w->count++;
	if (when < w->next)
		w->next = when;
}

void kri_wheel_del(struct wheel *w, struct wnode *n)
{
	if (n->pprev)
		unlink_node(w, n);
}

uint64_t kri_wheel_advance(struct wheel *w, uint64_t now, void (*fire)(void *arg, struct wnode *n),
			   void *arg)
{
	uint64_t fired = 0;
	/* A clock that steps back cannot un-fire anything; treat it as standing still. */
	if (now < w->now)
		now = w->now;
	for (;;) {
		/* Re-read the head each time: fire may arm nodes that are due at once. */
		while (w->due) {
			struct wnode *n = w->due;
			unlink_node(w, n);
			fired++;
			fire(arg, n);
		}
		if (w->now == now)
			break;
		uint64_t t = next_event(w);
		if (t > now) {
			w->now = now;
			break;
		}
		step(w, t);
	}
	return fired;
}

uint64_t kri_wheel_next(const struct wheel *w)
{
	if (w->next_ok)
		return w->next;
	uint64_t t = earliest(w);
	/* The cache is not observable state and no wheel is defined const, so filling it from
	 * a const view is sound; it keeps wheel_next O(1) for a scheduler that asks each loop. */
	struct wheel *m = (struct wheel *)w;
	m->next = t;
	m->next_ok = 1;
	return t;
}

uint64_t kri_wheel_next_bound(const struct wheel *w)
{
	unsigned lv, s;
	if (w->next_ok)
		return w->next;
	if (w->due)
		return w->due->when;
	if (first_slot(w, &lv, &s))
		return slot_start(w->now, lv, s); /* exact at level 0: a slot is 1 ms */
	return kri_wheel_next(w);                 /* only the far overflow slot is left */
}
