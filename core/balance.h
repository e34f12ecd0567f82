/* balance: the load-balancing policy — which schedulers an idle one asks
 * for work, in what order, how much backlog a victim must have before
 * taking from it is worth the lost locality, and how much to take. Pure
 * (no threads, atomics or clocks): core/sched.c and perf/krill-sim.c drive
 * this same code, so what the simulator shows is what the runtime does.
 *
 * Policy (numa = 1). Victims come from topo_victims: same L3, then same
 * NUMA node, then remote nodes by increasing hwloc distance. They form
 * tiers (same level and distance); a thief tries the tiers nearest first
 * and, within a tier, starts at an offset so thieves spread out. A local
 * victim is taken from when it has one process queued; a remote one only
 * when its backlog reaches bal_threshold(distance), which grows with the
 * distance. A thief also looks remote only after failing locally for a
 * while, longer the later it comes in its node (bal_remote_ok): the first
 * scheduler of an idle node fetches a batch across, and the others then
 * find it locally instead of all crossing at once. A steal takes half of
 * the victim's queue, rounded up (bal_steal_count), near or far.
 * Flat policy (numa = 0): every other scheduler in index order from self,
 * one tier, threshold 1, no waiting: the baseline the simulator compares.
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

/* Failed local scans a scheduler makes before it may look remote, per
 * place it holds in its node's order (see bal_remote_ok). */
#define BAL_REMOTE_WAIT 2u

struct balance {
	unsigned nv;          /* victims: every other scheduler, once */
	unsigned *order;      /* scheduler indices, in tier order */
	unsigned char *level; /* enum topo_level of each */
	uint32_t *min;        /* backlog order[j] must have before we take */
	unsigned *tier;       /* ntier + 1 bounds into order */
	unsigned ntier;
	unsigned remote_after; /* failed local scans before remote ones */
	bool numa;
};

/* Victim order and thresholds of scheduler self among n places. numa
 * selects the policy (1) or the flat baseline (0). 0, or -ENOMEM (b is
 * then empty and bal_fini may still be called); -EINVAL if self >= n. */
int bal_init(struct balance *b, const struct topo *t, const struct topo_place *places, unsigned n,
	     unsigned self, bool numa);
void bal_fini(struct balance *b);

/* Minimum backlog before a steal from a node at NUMA distance d (hwloc's
 * scale, 10 = local): 1 locally, then growing with the extra latency. */
uint32_t bal_threshold(unsigned d);

/* The position (index into order/level/min) of the k-th victim to try,
 * 0 <= k < nv, for an attempt starting at offset start. Tier by tier,
 * nearest first; within a tier, rotated by start. */
unsigned bal_pick(const struct balance *b, unsigned start, unsigned k);

static inline uint32_t bal_min(const struct balance *b, unsigned j)
{
	return b->min[j];
}

/* May a thief that has failed `fails` local scans in a row look remote?
 * Waiting only spreads the timing: a remote victim past its threshold is
 * still work this scheduler will take, so it must not sleep on it. */
static inline bool bal_remote_ok(const struct balance *b, unsigned fails)
{
	return fails >= b->remote_after;
}

/* Processes a steal takes from a queue of len: half, rounded up. */
static inline uint32_t bal_steal_count(uint32_t len)
{
	return len - len / 2;
}

#endif
