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
 * it while it stays there (a woken process goes to the waker's scheduler,
 * but a hub woken by a client: bal_stays).
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
 * caller's. A racy hint is fine: the steal itself re-checks. Backlog the
 * thief may not take yet (too young: stealing only what waits, below) is
 * 0, or its length with BAL_YOUNG set: "wait for it" (bal_young). */
typedef uint64_t bal_len_fn(void *ctx, unsigned v);
#define BAL_YOUNG (1ull << 63)

/* Whom to steal from now: the position j of the chosen victim, or -1 when
 * no victim is worth it. Near tiers first, in order: the first victim from
 * start with anything it may take. Then the remote victim at or past its
 * threshold with the most backlog per unit of distance (a nearer node wins
 * a tie; a farther one must hold proportionally more). Backlog flagged
 * BAL_YOUNG is never taken, and it means "wait", not "look further": no
 * remote tier beyond the tier where the thief saw it (at or past the
 * victim's threshold) is looked at, so a thief does not cross to a remote
 * node (or a farther one) while a nearer tier holds backlog it waits on. */
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

/* Has every process of the backlog marked at (tail, oend, at) been taken,
 * given the victim's queue now: its head has reached the tail it had then,
 * and its overflow (runq.h, which holds the older processes, oldest out
 * first) has let out, counted in out, all it held then, which oend counts
 * (out then plus its length). Then (or with no mark yet, at == 0) the
 * thief marks afresh; else the backlog may be taken once now - at reaches
 * the wait. A queue of one part (krill-sim's) passes 0 for out and oend.
 * Sequence numbers wrap, hence the signed differences. */
static inline bool bal_mark_spent(uint32_t head, uint32_t tail, uint64_t out, uint64_t oend,
				  uint64_t at)
{
	return !at || ((int32_t)(head - tail) >= 0 && (int64_t)(out - oend) >= 0);
}

/* What the steal being judged bought, counted from the steal until the
 * thief ran dry: processes it took; runs of processes on the thief since
 * (the taken ones and those they woke or spawned there); messages handled
 * and processes that exited there since; how long the thief ran; what
 * moving one process costs, in the same unit (0: time unknown, not judged
 * by it); sends refused there since by a full mailbox (kr_mailbox_limit). */
struct bal_bought {
	uint64_t taken, runs, msgs, exited, ran, move, refused;
};

/* What moving a process costs (real time): a cache-line round trip
 * between cores, measured on the development VM (issue #19), for its slot
 * and again for its first message; and how many such costs a stolen
 * process must run for, on average, for its move to have paid. */
#define BAL_MOVE_NS 450u
#define BAL_PAYBACK 4u

/* Have the processes the thief ran since its steal exited (b's taken,
 * runs and exited), each having run there at least BAL_TASK_MOVES moves'
 * time? Independent tasks, each run once and gone: the steal paid,
 * whatever the runtime's rate, if they were worth their trip. The time a
 * thief measures includes what the move cost it (a cold slot, a cold
 * message, a reply across cores: some 200 ns a task here), so a task
 * that ran a move's time there did about as much work of its own as its
 * trip cost. Savina's fjcreate (issue #19): a coordinator spawns a
 * million workers, each computes one sine, replies and exits, about
 * 100 ns a worker on one scheduler; a thief ran them at 200-300 ns each,
 * its exits paid every steal and its wait fell to none, and the runtime
 * did 3.5 M workers a second at 2 schedulers against 10.5 M at 1. With
 * no clock (move 0: deterministic mode) the exits alone decide. */
#define BAL_TASK_MOVES 1u
static inline bool bal_tasks(const struct bal_bought *b)
{
	uint64_t n = b->taken < b->runs ? b->taken : b->runs;

	return b->exited >= n && (!b->move || b->ran >= BAL_TASK_MOVES * b->move * n);
}

/* Did the steal pay? Judged by the work it bought, not only by messages,
 * per stolen process that ran on the thief (at most the runs there: a big
 * batch is partly taken on by the thief's own neighbours, whose steals are
 * theirs to judge). They paid if they stayed and talked (BAL_YIELD
 * messages or more each), or finished there (as many exits, worth their
 * trip: independent tasks, each handling one message and exiting, or a
 * tree of spawns; bal_tasks), or ran long (BAL_PAYBACK moves' time each).
 * A hub's clients do none of these: each ran once, briefly, and went back
 * to the hub's scheduler, whose next wake-up pulled it home. Measured in
 * perf/bench/krill-sim: judged by messages alone, batches of tasks never
 * paid, the wait stayed long, and skewed, bursty and fork-join loads at
 * 256 cores took 2-4 x the ideal time (docs/performance.md).
 * Run time pays only if no send was refused by a full mailbox: a process
 * that met one was held back by its consumer, not by a core, and its run
 * was long because every send crossed to the consumer's core. Spreading
 * cannot make the consumer faster. fanin with a bounded mailbox (issue
 * #19): a stolen producer ran one call of sends to the consumer on the
 * victim (some 40 us, about 90 moves' time), met -EAGAIN, and the
 * consumer's scheduler, answering its kr_notify_ready, woke it there; the
 * thief ran dry and judged the steal paid for that one run, its wait fell
 * to none and it took the next producer at once: 300-4,000 steals a
 * run of 16 M messages, and 0.42 x the rate of one scheduler. */
static inline bool bal_paid(const struct bal_bought *b)
{
	uint64_t n = b->taken < b->runs ? b->taken : b->runs;

	return b->msgs >= BAL_YIELD * n || bal_tasks(b) ||
	       (b->move && !b->refused && b->ran >= BAL_PAYBACK * b->move * n);
}

/* The thief's next wait after a steal that paid or not (bal_paid and,
 * where the caller measures it, bal_spread_paid). One that did not: the
 * wait doubles, from lo up to BAL_WAIT_GROW * lo. One that paid: the wait
 * halves, down to none (take at once). */
static inline uint64_t bal_judge(uint64_t wait, uint64_t lo, bool paid)
{
	if (!paid)
		return wait < lo ? lo : wait < BAL_WAIT_GROW * lo ? 2 * wait : wait;
	return wait / 2 < lo / 4 ? 0 : wait / 2;
}

/* Messages per 10^6 time units (per ms when the unit is ns). */
static inline uint64_t bal_rate(uint64_t msgs, uint64_t dt)
{
	return dt ? msgs * 1000000u / dt : 0;
}

/* The runtime's rate rule (core/sched/sched.c, spread_paid). The steal
 * made msgs messages be handled runtime-wide over the dt since it, own of
 * them by the thief, and solo is the runtime's rate (bal_rate) while the
 * thief slept with the others busy (bal_solo_counts; 0: unknown). Spreading
 * paid unless the rate is known, the window at least min_dt (a shorter one
 * is noise) and the runtime gained less than half of what the thief
 * handled (less an eighth of solo, for noise): rate >= 7/8 solo + own / 2.
 * A steal that only moved a group (a hub and its clients, concdict's
 * dictionary and workers) leaves the rate where it was while the thief
 * handles all of it: not paid. The rule asked for 1.125 x solo before
 * whoever did the work: about the same test at 2 schedulers (a thief doing
 * half the work must now bring 1.17 x), but at 32 it refused a thief that
 * added its own 1/16 (krill-sim's big at 32 cores, seeds 1-4:
 * 98.9-111.6 -> 111.9-114.1 M msgs/s). */
#define BAL_MEASURE_NS 50000u /* the shortest window a rate is taken over */
static inline bool bal_spread_paid(uint64_t msgs, uint64_t own, uint64_t dt, uint64_t solo,
				   uint64_t min_dt)
{
	if (!solo || dt < min_dt)
		return true;
	return bal_rate(msgs, dt) * 8 >= solo * 7 + bal_rate(own, dt) * 4;
}

/* Does a sleep's rate sample count as solo? Only if the other schedulers
 * ended BAL_SOLO_RUNS runs or more meanwhile: a run's messages are
 * counted as it ends, and right after a give-back the victim can spend a
 * millisecond in one run (fanin's consumer, 4,096 envelopes written on the
 * other core), so a sleep that short read 1 message a ms against 76,000. */
#define BAL_SOLO_RUNS 16u
static inline bool bal_solo_counts(uint64_t others_runs)
{
	return others_runs >= BAL_SOLO_RUNS;
}

/* Compaction (core/sched/sched.c's busy_judge and compact; BEAM's +scl):
 * a thief that stays busy with a steal never runs dry, so bal_judge never
 * sees it; it judges the steal every BAL_COMPACT_NS instead, by the
 * runtime's rate over the window against solo (bal_spread_paid, no
 * shortest window: this one is long). A window that paid starts the next
 * and clears strikes and grow; BAL_STRIKES in a row that did not (one may
 * be a vCPU descheduled on a loaded machine) give the thief's queue back
 * to the scheduler it stole from. With solo unknown (0) a window gives back
 * at once, not judged: the thief sleeps to measure solo, its wait as it was;
 * unless tasks (bal_tasks: what it ran since the steal has exited, as
 * bal_paid's exit test), then the window paid. Thieves whose steals pay never
 * take a timed sleep, so solo stays unknown: in perf/bench/krill-sim
 * (--work 200000, 8 x 32) 164 such thieves each gave back 1,024 tasks at
 * their first window, skewed 1.048 -> 1.467 x ideal. A thief that gave back
 * (compacting) does not steal before its sleep (bal_may_steal): after a
 * give-back not judged its wait is often zero, and it stole the gift
 * straight back (all 28 hub give-backs at 2 cores in krill-sim). A
 * give-back to a victim that is parked waits one window more, then wakes
 * it (bal_give_parked).
 * True: give back now. krill-sim runs the same rule in virtual time. */
#define BAL_COMPACT_NS 2000000u /* a window */
#define BAL_STRIKES    2u       /* windows in a row that did not pay */
#define BAL_CGROW_MAX  8u       /* a give-back's wait grows to 8 x the longest */
static inline bool bal_window(uint64_t msgs, uint64_t own, uint64_t dt, uint64_t solo, bool tasks,
			      unsigned *strikes, unsigned *grow)
{
	if (!solo && !tasks)
		return true;
	if (!solo || bal_spread_paid(msgs, own, dt, solo, 0)) {
		*strikes = 0;
		*grow = 1;
		return false;
	}
	return ++*strikes >= BAL_STRIKES;
}

/* Issue #19: the window a busy thief is judged by (bal_window) is opened
 * at its first steal since it last slept and kept across the steals that
 * follow: Savina's big at 2 schedulers settled, in 6 runs of 8, into both
 * schedulers stealing from each other by turns (some 2,600 steals each a
 * run, each running dry in ~0.1 ms and so judged alone, paid), every
 * message crossing cores: 13.7 M msgs/s against 30 on one. A window of
 * one steal used to restart at every steal and never closed. With solo
 * unknown such a window gives back blind (to measure solo, as
 * bal_window says) only if the streak took from one victim: two
 * schedulers trading work. Thieves streaking across many victims, as at
 * 256 cores in krill-sim, all gave back at their first window (big at
 * 8 x 32: 266 -> 184 M msgs/s). The sleep or give-back that closes a
 * window sets steals to 0. */
struct bal_streak {
	unsigned steals; /* 0: no window open */
	unsigned from;   /* its first victim */
	bool same;       /* every steal took from it */
};

/* A steal from victim counted in w; true if it opened the window. */
static inline bool bal_streak_add(struct bal_streak *w, unsigned victim)
{
	bool opened = w->steals == 0;
	if (opened) {
		w->from = victim;
		w->same = true;
	}
	w->steals++;
	w->same = w->same && w->from == victim;
	return opened;
}

static inline bool bal_blind(const struct bal_streak *w)
{
	return w->steals < 2 || w->same;
}

/* May a thief steal now? Not while compacting: it gave its processes back
 * and must sleep first (park), else it takes the gift straight back. */
static inline bool bal_may_steal(bool compacting)
{
	return !compacting;
}

/* May a give-back go to a victim that is parked (asleep for want of
 * work)? Not at once: the thief may hold the whole group, its victim idle
 * for want of it, and handing it over would only swap cores. But a refusal
 * for good left a trap (krill-sim, hub at 8 x 32 cores, --work 20000,
 * seeds 1 and 2; found with --trace): two thieves on two nodes each took
 * half of one victim's queue of the hub's clients, the victim ran dry and
 * parked, and the hub went back and forth between the two thieves for the
 * rest of the run (15.0 and 17.0 x ideal, a quarter of the message bytes
 * across nodes). Each judged every window not paying (strikes past 400)
 * and kept its half, its victim asleep; nobody else took the backlog, which
 * turns over too fast to wait a thief's wait. Whether a run falls in is
 * chance: the no-steal-before-sleep rule (bal_may_steal) moved a few steals
 * by some ticks, seed 1 fell in with it and not without, seed 3 neither.
 * So once a further window has not paid (strikes past BAL_STRIKES) the
 * give-back is made and the victim woken: both halves go back to where
 * they came from, one scheduler. 4.13 / 4.33 / 4.37 x ideal over seeds 1-3
 * (before the rule 4.07 / 4.18 / 4.17). */
static inline bool bal_give_parked(unsigned strikes)
{
	return strikes > BAL_STRIKES;
}

/* The wait a judged give-back sets (lo the shortest): the longest,
 * BAL_WAIT_GROW * lo, times grow, which then doubles (give-backs in a row)
 * up to BAL_CGROW_MAX; bal_window sets it back to 1 after a window that
 * paid. The giver sleeps at least the longest wait either way. */
static inline uint64_t bal_giveback_wait(unsigned *grow, uint64_t lo)
{
	uint64_t w = (uint64_t)BAL_WAIT_GROW * *grow * lo;

	if (*grow < BAL_CGROW_MAX)
		*grow *= 2;
	return w;
}

/* What a bal_len_fn reports for backlog of len too young to take, given
 * the thief's wait and the shortest (lo): with BAL_YOUNG, "wait for it,
 * do not cross" (kri_bal_choose), when the thief's steals have not been
 * paying (its wait grew past the shortest: a hub's clients, whose trips
 * across nodes only cross back); else nothing, and the thief may cross to
 * remote backlog that has waited. Measured in perf/bench/krill-sim (8 x 32
 * cores): waiting so whatever the wait, skewed, bursty and fork-join task
 * loads took 1.6-3.7 x the ideal time (thieves of one node waiting on each
 * other's young batches, a wait a round), against 1.3-2.7 x; hub took 6.5
 * x with either, 15 x never waiting. */
static inline uint64_t bal_young(uint64_t len, uint64_t wait, uint64_t lo)
{
	return wait > lo ? len | BAL_YOUNG : 0;
}

/* Many-to-one (issue #19, h19s). A sink is a process that used its whole
 * batch (kr_config.batch) and still had mail, having sent under one
 * message in four handled: fanin's consumer, not a producer (one send a
 * message) nor a hub (one reply a request). Its scheduler and its node
 * remember when they last saw one; for BAL_SINK_NS after, two rules hold.
 * Why, found with krill-sim --trace (fanin, 1,000 producers, one
 * consumer, 8 x 32 cores): the program runs at the consumer's rate, and
 * each run of a producer on another node than the consumer's makes the
 * consumer pay a round trip d/10 times dearer for the run's first
 * message; at 256 cores 87 % of the message bytes crossed nodes and the
 * rate fell below 32 cores' (33.9 against 35.4 M/s). And at both, the
 * consumer, queued again behind nothing after each batch, was taken by a
 * thief at wait 0 some 3,900 times a run, paying its state's move each
 * time. With the three rules below: 38.7 M/s at 32 and at 256, no byte
 * across nodes (seeds 1-6). A longer program (--work 20000) still ends
 * 0.1-0.5 % lower at 256: compaction's give-backs to the consumer's
 * scheduler, which differ by chance between the two machines. */
#define BAL_SINK_NS (BAL_WAIT_GROW * BAL_WAIT_NS)
static inline bool bal_sink(uint64_t handled, uint64_t sent)
{
	return 4 * sent < handled;
}

/* The runtime's "lately" for bal_backlog: within this many behaviour calls
 * of the victim's scheduler (sched.c's sink_queued), a count so that the
 * owner reads no clock and deterministic mode replays; BAL_SINK_NS at 20 ns
 * a call, longer where calls are slower. */
#define BAL_SINK_CALLS 65536u

/* The backlog a thief counts on a victim whose queue holds len: none when
 * it is one process and that one is the sink the victim ran lately
 * (sink_queued, the caller's): queued again behind nothing, its owner runs
 * it next, and spreading it only moves it (fanin at 32 cores: 35.4 -> 38.7
 * M/s). Other lone processes stay stealable: taken from every busy victim,
 * pingpong at 2 cores fell from 74.4 to 55.4 M/s; and the one queued
 * behind a sink may be its producer (Savina's count, whose move only
 * moves the pair) or work of its own another core should take, which a
 * thief cannot tell apart. */
static inline uint64_t bal_backlog(uint64_t len, bool sink_queued)
{
	return len == 1 && sink_queued ? 0 : len;
}

/* Is a victim's backlog marked for a mark's wait (bal_marked_wait,
 * bal_mark_longest)?
 * Where a hub stayed lately (home, below), and, for a thief of another
 * node (remote), on a node that ran a sink lately (node_sink: within
 * BAL_SINK_CALLS of that scheduler's calls in sched.c, BAL_SINK_NS in
 * krill-sim). That node's backlog is likely the sink's producers, whose
 * runs farther away only make each of their first sends to it dearer; the
 * sink's rate is the program's, and no core added raises it. Bounded, as
 * the home's: the rule before kept every other node from it for as long
 * as the sink ran (a server whose node also runs a logger would have kept
 * its backlog to itself), and was krill-sim's alone; waiting the mark's
 * wait, fanin at 8 x 32 made the same 38.7 M/s (seeds 1-6; with neither
 * rule 37.2-37.3), every other workload the same to the message. */
static inline bool bal_marked(bool home, bool remote, bool node_sink)
{
	return home || (remote && node_sink);
}

/* How long remote backlog must have waited before a thief at distance d
 * takes it, its wait being wait and a move costing move (the caller's
 * unit): the wait, and while the victim's node has a scheduler awake
 * without work (near_idle) two moves at distance d more, a look and a
 * steal across. The node's own thieves then take first what they can
 * take as soon; a remote thief whose wait ends in the same instant does
 * not carry half the backlog off (krill-sim, fanin at 8 x 32: at 20 us a
 * thief of node 2 took 500 of the 1,000 producers queued on scheduler 0
 * before any of the 31 idle schedulers of node 0, before the consumer had
 * run a whole batch, so before any sink was seen). */
static inline uint64_t bal_far_wait(uint64_t wait, uint64_t move, unsigned d, bool near_idle)
{
	return near_idle ? wait + 2 * move * d / 10 : wait;
}

/* Wake placement. A process woken by a message runs on its waker's
 * scheduler: the sender's data is warm, and a pair of which a thief took
 * one comes together again at its next message. Not a hub woken by one of
 * its clients: a process that wakes a different process nearly every time
 * (a broker, a dictionary replying to many: wide), woken by one that does
 * not (narrow), from another scheduler than the one it was on, stays
 * there, and its clients come to it as its replies wake them. Pulled, it
 * would move with every wake from a client a thief took and drag its
 * other clients after it (krill-sim's hub, seeds 1-6, M msgs/s at 1 / 2 /
 * 32 / 256 cores: pulled 26.7 / 16.8-25.6 / 16.9-21.0 / 11.9-16.0,
 * staying 26.7 / 26.0-26.4 / 23.7-24.0 / 16.4-16.9, the rest thieves'
 * steals of clients, which come back at their next reply: bal_marked_wait;
 * the runtime's hub in deterministic mode moved 498-1,038 times a run,
 * now 90-107).
 * Where both are wide (Savina's big: peers at random) there is no group to
 * keep, and a wake where the waker is stays cheapest: the woken one's
 * state moves once, where staying makes every message a round trip (a
 * first rule, a count of pulls, made big 3-7 times slower at 32 and 256
 * cores; big is now unchanged to the message).
 *
 * A process's wake word, a byte: the low BAL_WAKE_HASH bits those of the
 * index of the process it last woke, the high ones its flips,
 * BAL_FLIP_STEP up at each wake of another process than the last (to
 * BAL_FLIP_MAX), one down at each wake of the same (a count, not Linux's
 * wakee_flips per second: no clock on the send path). Wide from
 * BAL_FLIP_WIDE: four wakes in a row of different processes. A byte,
 * because a process is one cache line and this is what was left of it;
 * where two wakees share the low bits the count goes down by one. */
#define BAL_WAKE_HASH 3u
#define BAL_HASH_MASK ((1u << BAL_WAKE_HASH) - 1u)
#define BAL_FLIP_MAX  ((1u << (8u - BAL_WAKE_HASH)) - 1u)
#define BAL_FLIP_STEP 4u
#define BAL_FLIP_WIDE 16u

/* A new process's word: it woke nobody yet, so it is not known to wake
 * always the same one (bal_stays). */
#define BAL_WAKE_NEW (BAL_FLIP_STEP << BAL_WAKE_HASH)

/* The word of a process whose last wake was of idx, its flips at none. */
static inline uint8_t bal_wake_hash(uint32_t idx)
{
	return (uint8_t)(idx & BAL_HASH_MASK);
}

/* The wake word after its owner woke the process whose index is idx. */
static inline uint8_t bal_woke(uint8_t word, uint32_t idx)
{
	unsigned flips = word >> BAL_WAKE_HASH, h = bal_wake_hash(idx);

	if (h != (word & BAL_HASH_MASK))
		flips = flips + BAL_FLIP_STEP > BAL_FLIP_MAX ? BAL_FLIP_MAX : flips + BAL_FLIP_STEP;
	else
		flips -= flips != 0;
	return (uint8_t)(flips << BAL_WAKE_HASH | h);
}

static inline bool bal_wide(uint8_t word)
{
	return word >> BAL_WAKE_HASH >= BAL_FLIP_WIDE;
}

/* Whether the process whose index is idx, woken by a message from another
 * scheduler than the one it was on, stays there, given its wake word and
 * its waker's before this wake: a wide one woken by one whose last wakes
 * were all of it (its flips at none: a client of it, not a newcomer nor
 * one waking at random whose last happened to be it; krill-sim's big at 2
 * cores lost 13 % to such stays). */
static inline bool bal_stays(uint8_t wakee, uint8_t waker, uint32_t idx)
{
	return bal_wide(wakee) && waker == bal_wake_hash(idx);
}

/* The wait a thief gives a victim's backlog: its own (wait), but at least
 * the longest (longest) where it is marked (bal_marked): above, a sink's
 * node seen from another; here, a scheduler where a hub stayed lately
 * (within BAL_SINK_CALLS of the victim's calls in sched.c, BAL_SINK_NS in
 * krill-sim). That backlog is the hub's clients, which its replies bring
 * back to it wherever a thief takes them, each paying a round trip for
 * the trip; a thief learns so only from its own steals (bal_judge), and at
 * 256 cores 255 thieves learnt it one by one (krill-sim's hub: 1,407
 * steals a run, 16.4-16.9 M/s against 26.7 at 1 core; with this wait
 * 25.7-26.0, seeds 1-6). Backlog that persists that long is still taken,
 * as compaction's: a scheduler with a hub and work of its own gets help
 * late by the longest at worst, which bal_mark_longest sizes by the
 * thieves there are (80 us at 2 schedulers, 1.28 ms from 17). */
static inline uint64_t bal_marked_wait(uint64_t wait, uint64_t longest, bool marked)
{
	return marked && wait < longest ? longest : wait;
}

/* The longest wait of bal_marked_wait in a runtime of n schedulers, lo
 * being the shortest: BAL_MARK_PER_THIEF shortest waits for each thief
 * there may be, up to BAL_WAIT_GROW of them (from 17 schedulers). The mark
 * stands in for what every thief would learn on its own; one thief learns
 * it soon, and meanwhile the longest wait kept work of the marked
 * scheduler's own from it: krill-sim's hubmix (a hub whose broker spawns
 * tasks where it runs) at 2 cores 9.1-11.1 M/s with the longest, 11.6-11.8
 * with no mark, 10.9-11.7 with this; the hub 26.0-26.1 -> 26.1-26.4; at 32
 * and 256 cores the same (seeds 1-6). One wait a thief lost the hub 1 % at
 * 32 cores, two lost hubmix 1-2 % there. */
#define BAL_MARK_PER_THIEF 4u
static inline uint64_t bal_mark_longest(unsigned n, uint64_t lo)
{
	uint64_t k = n > 1 ? BAL_MARK_PER_THIEF * (uint64_t)(n - 1) : 0;
	return (k < BAL_WAIT_GROW ? k : BAL_WAIT_GROW) * lo;
}

/* Futile wake-ups (the runtime's alone: krill-sim has no wake-ups, its
 * idle thieves look on for free). An owner with work queued wakes a
 * parked scheduler (sched.c's wake_for); where the queue is a hub's, which
 * empties and fills many times a millisecond, the woken one finds it
 * empty or too young, spins, parks, and the owner's next refill wakes it
 * again, a system call on the owner's path each time (Savina's chameneos
 * at 2 schedulers: 2,000 wake-ups a 0.4 s run, the second scheduler
 * running 130 processes in all, 0.93 x the rate of one scheduler; waking
 * it never, 0.98; without its looks too, 1.0). So a scheduler that woke
 * (by anyone, or its own timeout) and ran nothing before parking again
 * counts a futile wake-up, and one that ran anything starts again at
 * none. With some, it sleeps timed, so owners leave it be (wake_for), for
 * bal_futile_wait: the shortest wait doubled with each futile wake-up in a
 * row, up to the longest (BAL_FUTILE_MAX doublings: BAL_WAIT_GROW
 * shortest waits). Backlog that persists is taken when that sleep ends,
 * and a burst (the ring overflowed) still wakes it at once. At the
 * longest, a timed sleep after which it saw no backlog at all (none
 * queued, or none too young to take) is followed by an untimed one: an
 * owner that still refills its queue then wakes it once a longest wait,
 * and one that does not (a ring's token, which is never queued) leaves it
 * asleep; timed for good, it woke 460 times in a 0.7 s ring run (10
 * before), spinning after each beside the busy one. Nor when every other
 * scheduler is parked too (sched.c's park): nobody is left to wake in
 * vain, and an idle runtime sleeps without timeouts. */
#define BAL_FUTILE_MAX 6u
_Static_assert(1u << BAL_FUTILE_MAX == BAL_WAIT_GROW, "futile sleeps end at the longest wait");
static inline unsigned bal_futile(unsigned futile, bool ran)
{
	if (ran)
		return 0;
	return futile < BAL_FUTILE_MAX ? futile + 1 : futile;
}

/* The timed sleep asked for after `futile` futile wake-ups in a row (0:
 * none); quiet: the sleep that ended was timed and no backlog was seen
 * since; lo: the shortest wait. */
static inline uint64_t bal_futile_wait(unsigned futile, bool quiet, uint64_t lo)
{
	if (!futile || (quiet && futile == BAL_FUTILE_MAX))
		return 0;
	return lo << futile;
}

/* How long a scheduler that found nothing to run sleeps (sched.c's park;
 * krill-sim's idle_tick): 0 for an untimed sleep, which only a wake-up
 * ends, else the longest it sleeps before it looks again. Timed when it
 * gave its work back (compacting: at least the longest wait, longest),
 * when it saw backlog too young to take, now or lately (young: its own
 * wait, pwait), or after futile wake-ups (futile: bal_futile_wait's sleep,
 * 0 for none); the longest of those. Never shorter than the shortest wait
 * lo: a marked victim's backlog (bal_marked_wait) is young to a thief
 * whose own wait is none, and its sleep of pwait, 0, was a poll: a park
 * that returned at once, a system call and the idle lock each time, for
 * as long as the mark lasted. */
static inline uint64_t bal_sleep(bool compacting, bool young, uint64_t futile, uint64_t pwait,
				 uint64_t lo, uint64_t longest)
{
	if (!compacting && !young && !futile)
		return 0;
	uint64_t tw = pwait > lo ? pwait : lo;
	if (compacting && tw < longest)
		tw = longest;
	return tw > futile ? tw : futile;
}

/* Processes a steal takes from a queue of len: half, rounded up. */
static inline uint32_t bal_steal_count(uint32_t len)
{
	return len - len / 2;
}

#endif
