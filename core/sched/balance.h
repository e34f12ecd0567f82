/* balance: the load-balancing policy — which schedulers an idle one asks
 * for work, in what order, how much backlog a victim must have before
 * taking from it is worth the lost locality, and how much to take. Pure
 * (no threads, atomics or clocks): core/sched/sched.c and perf/bench/krill-sim.c drive
 * this same code, so what the simulator shows is what the runtime does.
 *
 * Policy (numa = 1). Victims come from topo_victims: same L3, then same
 * NUMA node, then remote nodes by increasing hwloc distance; they form
 * tiers (runs of one level and one distance). Near tiers are tried first,
 * each from a start offset so that thieves spread out, and the first near
 * victim with anything queued is taken from. Only when no near victim has
 * work does a thief cross: to the remote victim whose backlog is at least
 * bal_threshold(distance), a threshold that grows with distance, and that
 * has the most backlog per unit of distance. One trip should bring back as
 * much as it can (the thief's node-mates then steal from it locally), and
 * work piled on a far node must not trickle through the nodes in between.
 * A steal takes half of the victim's queue, rounded up (bal_steal_count),
 * near or far. Flat baseline (numa = 0): every other scheduler in index
 * order from self, one tier, threshold 1, first victim with work.
 *
 * Measured in perf/bench/krill-sim (8 nodes x 32 cores). Taking the first
 * remote victim past its threshold, nearest first, made 9-11% of steals
 * remote on skewed, bursty and fork-join loads (1.4-2.6% with the richest
 * per distance) and was slower. Tried and dropped: making a scheduler fail
 * locally a few times, staggered by its rank in the node, before it may
 * cross, so that one scheduler fetches for its node. With the richest
 * victim chosen it saved no remote steals and only kept idle nodes idle
 * longer (skewed: 1.086-1.101 x ideal with waits of 1-4 scans a rank,
 * 1.078 without).
 *
 * Re-homing rule. A process's 64-byte slot and its state stay where they
 * were allocated; a stolen process runs where it was stolen to and is never
 * moved back home. The slot is one cache line: moving it costs the very
 * remote access it would save, and the pid table would have to follow. The
 * messages it sends are allocated from the arena of the scheduler running
 * it, so they are local to where it now runs; so are envelopes delivered to
 * it while it stays there (a woken process goes to the waker's scheduler).
 * With numa = 1 each scheduler thread's memory is bound to its own node,
 * which makes its jemalloc arena the node's arena. */
#ifndef KR_BALANCE_H
#define KR_BALANCE_H

#include <stdbool.h>
#include <stdint.h>

#include "topology/topo.h"

struct balance {
	unsigned nv;          /* victims: every other scheduler, once */
	unsigned *order;      /* scheduler indices, in tier order */
	unsigned char *level; /* enum topo_level of each */
	uint32_t *min;        /* backlog order[j] must have before we take */
	unsigned *dist;       /* NUMA distance to order[j] (10: same node) */
	unsigned *tier;       /* ntier + 1 bounds into order */
	unsigned ntier;
	bool numa;
};

/* Victim order and thresholds of scheduler self among n places. numa
 * selects the policy (1) or the flat baseline (0). 0, or -ENOMEM (b is
 * then empty and bal_fini may still be called); -EINVAL if self >= n. */
int kri_bal_init(struct balance *b, const struct topo *t, const struct topo_place *places,
		 unsigned n, unsigned self, bool numa);
void kri_bal_fini(struct balance *b);

/* Minimum backlog before a steal from a node at NUMA distance d (hwloc's
 * scale, 10 = local): 1 locally, then growing with the extra latency. */
uint32_t kri_bal_threshold(unsigned d);

/* Reads the backlog of scheduler v (its run queue length); ctx is the
 * caller's. A racy hint is fine: the steal itself re-checks. */
typedef uint64_t bal_len_fn(void *ctx, unsigned v);

/* Whom to steal from now: the position j of the chosen victim, or -1 when
 * no victim is worth it. Near tiers first, in order: the first victim from
 * start with anything queued. Then the remote victim at or past its
 * threshold with the most backlog per unit of distance (a nearer node wins
 * a tie; a farther one must hold proportionally more). */
int kri_bal_choose(const struct balance *b, unsigned start, bal_len_fn *len, void *ctx);

/* Stealing only what waits (the protocol: core/sched/sched.c). The pure
 * decisions, shared with perf/bench/krill-sim so that it runs the same
 * rule: a thief marks a victim's backlog (its queue's tail and the time it
 * saw it) and may take it once the mark has not been passed a wait later;
 * after each steal its wait adapts (bal_judge). Times are the caller's
 * unit (ns; looks in deterministic mode; ticks in the simulator). */
#define BAL_WAIT_NS      20000u /* the shortest wait (real time) */
#define BAL_WAIT_GROW    64u    /* the longest wait: 64 times the shortest */
#define BAL_YIELD        4u     /* messages a stolen process must handle for a steal to pay */
#define BAL_YOUNG_MEMORY 8u     /* waits after seeing young backlog a sleeper stays timed */

/* Has every process of the backlog marked at (tail, at) been taken, given
 * the victim's queue head now? Then (or with no mark yet, at == 0) the
 * thief marks afresh; else the backlog may be taken once now - at reaches
 * the wait. Sequence numbers wrap, hence the signed difference. */
static inline bool bal_mark_spent(uint32_t head, uint32_t tail, uint64_t at)
{
	return !at || (int32_t)(head - tail) >= 0;
}

/* The thief's next wait, judged when it runs dry after a steal of taken
 * processes, which (with those they woke there) handled got messages since.
 * Fewer than BAL_YIELD each: they ran once and went back to partners
 * elsewhere, so the wait doubles, from lo up to BAL_WAIT_GROW * lo. Else
 * the steal paid: the wait halves, down to none (take at once). */
static inline uint64_t bal_judge(uint64_t wait, uint64_t lo, uint64_t got, uint64_t taken)
{
	if (got < BAL_YIELD * taken)
		return wait < lo ? lo : wait < BAL_WAIT_GROW * lo ? 2 * wait : wait;
	return wait / 2 < lo / 4 ? 0 : wait / 2;
}

/* Processes a steal takes from a queue of len: half, rounded up. */
static inline uint32_t bal_steal_count(uint32_t len)
{
	return len - len / 2;
}

#endif
