/* Model of the schedulers' sleep and wake-up (core/sched/sched.c: park, unidle, sched_wakep,
 * maybe_wake, wake_for, stop_spinning, step, any_work; core/sched/park.c: park_wait,
 * park_wake; io/ring.c: ring_wait, ring_wake; core/fault/watchdog.c: watch). Scheduler 0 makes work stealable (each run
 * leaves one process on its run queue, as sched_ready does with the old runnext), looks
 * (maybe_wake, with its fence-free fast path), then starts a run that does not return; the
 * others spin, steal, park and wake. Checked: no lost wake-up, i.e. no end state where work
 * is left on a queue (or in the inject queue) while every other scheduler sleeps with no
 * wake on its way; pan reports such a state as an invalid end state.
 * Run: tests/models/run-models. */

/* Memory. Scheduler 0's queue push is a release store (runq_push: q->tail) and maybe_wake's
 * nidle load is relaxed, so the push may reach other threads after that load: the store
 * sits in qbuf (its store buffer) until the flusher, a fence (full_fence) or a locked RMW
 * of its own drains it. The parker's RMWs (nidle, nspinning) and every seq_cst access act
 * on memory at once; its queue loads (runq_len, relaxed) come after its fence. Locked
 * sections (idlelock) are one atomic step each. The epoch (epoch_settle, epoch_offline and
 * epoch_online around the sleep) is left out: it decides nothing about who sleeps or wakes;
 * stats, timers (the wait's timeout) and stop/termination are left out for the same
 * reason, and a wait's timeout only adds spurious returns, which callers allow.
 * Topology flat, threshold 1 (balance.h's flat baseline): a thief takes any backlog.
 *
 * Why the watchdog is in: the fast path (nidle read 0 before our push showed: no fence, no
 * wake) is safe because "the next step's look sees the parked one" (sched.c, maybe_wake).
 * When that next step is a run that does not return, the watchdog is what looks: after
 * watchdog_ms it marks scheduler 0 stuck and calls sched_wakep once (watch()). By then our
 * push has long left the store buffer (the model lets it fire only with qbuf empty). With
 * -DNOWATCHDOG the model loses work through the fast path, and with -DNOWATCHDOG
 * -DNOFASTPATH (fence always) it does not: the fast path costs, at worst, work waiting
 * out one long run until the watchdog (1 s by default) or the run's end.
 *
 * A lost wake-up this model found in the code as it was (-DINJECT): sched_wakep counted the
 * one it will wake in nspinning (the CAS 0 -> 1) before it looks at the idle stack, and
 * when the stack is empty takes the count back only after unlocking idlelock. Between the
 * two, schedulers can park (they re-checked before the work showed) and another wakep
 * (an injecting thread's, the watchdog's, a last spinner's) sees nspinning 1 and leaves
 * the work to a spinner that does not exist. The trail of the run below (NS=1): the
 * injector's wakep finds the stack empty; the other scheduler parks, its re-check before
 * scheduler 0's push showed; scheduler 0 took the fast path and is in its long run; the
 * watchdog's wakep sees the phantom spinner; the injector takes its count back; the work
 * waits with everyone else asleep. With NS=2 (and -DNOFASTPATH) pan also finds the
 * injected message itself stranded: the watchdog's wakep is the phantom, both schedulers
 * park, then kr_rt_send's wakep sees it. The wait lasts until something else wakes a
 * scheduler (another send, I/O, a timer; scheduler 0's 1 s stats timeout when stats are
 * published). Go's wakep takes the count back under sched.lock, which closes the window:
 * a parker's push then comes wholly before or after it; core/sched/sched.c now does the
 * same, and that is what this model runs. -DLATE_DEC puts the old code back (the count
 * taken back after the unlock): a mutant, which pan must still catch.
 *
 * Sizes: scheduler 0 plus NS others, NW pushes. Two others are needed for the case the
 * protocol is subtle about (one spinning, one parked: wakep then defers to the spinner);
 * two pushes give a look that sees work left after a steal. Default NS=2 NW=2 (3.1e6
 * states); the injecting foreign thread (kr_rt_send: inject, sched_wakep) with NS=1, which
 * is enough for the phantom spinner (the watchdog's wakep and the injector's race) and
 * keeps the run under a second; the full run takes it with NS=2 (7.7e7 states, ~6 GB).
 * run-models: -DNOWATCHDOG -DNOFASTPATH
 * run-models: -DINJECT -DNS=1
 * run-models-full: -DINJECT
 * The mutants must be caught (run-models fails if one is not):
 * MUTANT 1: park() without its full_fence: any_work's relaxed queue loads may be done
 *   before the nidle/nspinning RMWs are visible (hoisted up to the idlelock acquire).
 * MUTANT 2: park() without the re-check (any_work) before sleeping.
 * NOWATCHDOG: the fast path's one-step delay becomes a loss while scheduler 0 runs a call
 *   that does not return (the documented limit of the fast path, kept as evidence that
 *   the watchdog is what covers it; with -DNOFASTPATH as well, nothing is lost).
 * run-models-mutant: -DMUTANT=1
 * run-models-mutant: -DMUTANT=2
 * run-models-mutant: -DNOWATCHDOG
 * MUTANT LATE_DEC: sched_wakep takes its phantom spinner back after the unlock (the code
 *   before the fix above).
 * run-models-mutant: -DINJECT -DNS=1 -DLATE_DEC
 *
 * -DYOUNG: stealing only what waits (sched.c, "Stealing only what waits"). Scheduler 0's
 * backlog may be taken only once it has waited (aged, which time sets some moment after it
 * appears) or once the watchdog marked scheduler 0 stuck. A thief that saw backlog too young
 * spins on, or parks as a timed sleeper: counted in ntimed before nidle, it sleeps until a
 * wake-up or its timeout (at most its wait), whichever comes first; its re-check takes the
 * same rule, and backlog too young there makes the sleep a timed one too. Owners (wake_for)
 * wake nobody while every sleeper is timed (ntimed >= nidle). A timed sleep is no end state
 * (it always ends); an untimed one is, so pan's invalid end state is still "work left while
 * every scheduler sleeps with no wake on its way". ntimed's relaxed accesses are modelled as
 * immediate (a delayed decrement could only make an owner skip a wake it should make: the
 * case below already covers skipped wakes).
 * run-models: -DYOUNG -DNW=1
 * MUTANT 3: a timed sleeper without its timeout (it sleeps until woken, and owners do not
 *   wake timed sleepers): the backlog is left to nobody.
 * run-models-mutant: -DYOUNG -DNW=1 -DMUTANT=3
 * What the model found (a known limit, kept as a bug line): wake_for tests ntimed >= nidle
 * before its fence and returns without one, so scheduler 0's push may still be invisible
 * when the timed sleeper comes back: it finds nothing, parks untimed, and the work waits for
 * scheduler 0's next look or the watchdog, as the fast path's does. Trail (NOWATCHDOG,
 * NOFASTPATH): wake_for reads ntimed 1 (scheduler 1 timed) then nidle 1, skips; scheduler 1
 * times out, takes the first process, then sleeps untimed with the second still in scheduler
 * 0's store buffer. -DTIMED_FENCE, the fence before the test, loses nothing (it costs a fence
 * only when some scheduler sleeps, as before the young rule).
 * run-models-bug: -DYOUNG -DNOWATCHDOG -DNOFASTPATH
 * run-models: -DYOUNG -DNOWATCHDOG -DNOFASTPATH -DTIMED_FENCE
 *
 * -DGIFT: compaction (sched.c, "Compaction"). A thief whose steal did not pay hands its
 * processes back to the scheduler it stole from (runq_give: the target's gift list, which
 * only the target takes) and sleeps. It gives only to a target that is not parked, testing the
 * idle stack and pushing the gift in one idlelock section; the target, to park, pushes itself
 * under idlelock and then re-checks its gift (any_work). So either the giver's section comes
 * first and the re-check sees the gift, or the target's and the giver keeps its work. Here the
 * giver is a thread of its own (the thief, which then sleeps and is left out), giving one
 * process to scheduler 1; the gift left while everyone sleeps is an invalid end state.
 * run-models: -DGIFT -DNW=1
 * MUTANT 4: the gift pushed after the idle-stack test's section (the lock let go in between):
 *   scheduler 1 parks in the gap and sleeps with the gift.
 * run-models-mutant: -DGIFT -DNW=1 -DMUTANT=4
 * MUTANT 5: a gift to a target without testing whether it is parked.
 * run-models-mutant: -DGIFT -DNW=1 -DMUTANT=5
 *
 * -DGIFT_PARKED (with -DGIFT): a give-back refused once because the target was parked is made
 * at the next window that does not pay either (bal_give_parked), waking the target as
 * sched_wakep does: in the same idlelock section it takes the target off the idle stack (nidle
 * less, nspinning more: the target learns in unidle that it spins) and pushes the gift, then
 * after the unlock wakes it (ring_wake). Here the giver may find the target parked or not.
 * run-models: -DGIFT -DGIFT_PARKED -DNW=1
 * MUTANT 6: the parked target given to but not woken (the wake after the unlock left out).
 * run-models-mutant: -DGIFT -DGIFT_PARKED -DNW=1 -DMUTANT=6
 *
 * stop_spinning: the last spinner to find work wakes another only if it sees more queued
 * (scheduler 0's queue in memory, after its RMW and fence) or an injected message: one that
 * spun on its own ring woke another at every completion for nothing (issue #19, krill-echo at
 * one connection). Every run above passes with the test; with no wake at all there (tried as
 * a mutant) pan finds no loss either, in any configuration: the wake is for latency, owners'
 * wakes and the watchdog carry the protocol. */

#ifndef NS
#define NS	2		/* schedulers besides scheduler 0 */
#endif
#ifndef NW
#define NW	2		/* processes scheduler 0 leaves on its queue */
#endif
#ifndef MUTANT
#define MUTANT	0
#endif
#define N	(NS + 1)

#ifdef YOUNG
/* Thieves take scheduler 0's backlog only once it has waited (aged) or scheduler 0 is stuck. */
#define TAKE	(aged || stuck)
#else
#define TAKE	true
#endif

byte qmem = 0;		/* scheduler 0's queue length as other threads see it */
bool aged = false;	/* its backlog has waited a thief's wait (YOUNG) */
bool stuck = false;	/* the watchdog marked scheduler 0 stuck */
byte ntimed = 0;	/* rt->ntimed: sleepers that saw backlog too young (YOUNG) */
byte qbuf = 0;		/* pushes still in scheduler 0's store buffer */
byte nidle = 0;
byte nspinning = 0;
byte idle[N];		/* the idle stack (rt->idle), under idlelock */
byte nidlestack = 0;
bool ipending = false;
bool s0long = false;	/* scheduler 0 is inside its last, endless run */
bit ww[N];		/* ring->wake: a wake is pending */
byte gift[N];		/* processes handed back to each scheduler (GIFT) */
byte cq[N];		/* RING_WAKE completions in each ring's CQ */

/* The drain of a store buffer: by the flusher, a fence or a locked RMW of scheduler 0. */
inline drain()
{
	qmem = qmem + qbuf;
	qbuf = 0
}

/* ring_wake (park_wake on a ring): the word, then the MSG_RING message if we set it. */
inline ring_wake(t)
{
	atomic {
		if
		:: ww[t] == 1 -> posted = true	/* already pending: the sleeper will see it */
		:: else -> ww[t] = 1; posted = false
		fi
	};
	if
	:: !posted -> cq[t]++		/* the CQE lands in the sleeper's ring */
	:: else -> skip
	fi;
	posted = false
}

/* sched_wakep: wake one parked scheduler if none spins; it starts out spinning. */
inline sched_wakep()
{
	if
	:: nidle == 0 -> skip
	:: else ->
		if
		:: nspinning != 0 -> skip
		:: else ->
			if
			:: atomic { nspinning == 0 -> nspinning = 1 }	/* the CAS */
				atomic {
					if
					:: nidlestack > 0 ->
						nidlestack--; target = idle[nidlestack];
						idle[nidlestack] = 0; nidle--
#ifdef LATE_DEC
					:: else -> target = 0
					fi
				};
				if
				:: target == 0 -> nspinning--	/* after the unlock */
#else
					:: else -> target = 0; nspinning--	/* under the lock */
					fi
				};
				if
				:: target == 0 -> skip
#endif
				:: else -> ring_wake(target); target = 0
				fi
			:: atomic { nspinning != 0 -> skip }		/* the CAS fails */
			fi
		fi
	fi
}

/* maybe_wake: the fence only when some scheduler is parked. wake_for (YOUNG): no wake-up at
 * all when every sleeper is a timed one (ntimed >= nidle, two relaxed loads): they come back
 * by themselves. */
inline maybe_wake()
{
	if
	:: qmem + qbuf == 0 -> skip
#ifndef NOFASTPATH
	:: qmem + qbuf > 0 && nidle == 0 -> skip	/* relaxed nidle: the fast path */
	:: qmem + qbuf > 0 && nidle != 0 ->
#else
	:: qmem + qbuf > 0 ->
#endif
#ifdef YOUNG
#ifdef TIMED_FENCE
		atomic { drain() };		/* the fence before the test, not after */
#endif
		seen = ntimed;
		if
#ifdef NOFASTPATH
		/* nidle read 0 here is the fast path; fencing always, only timed sleepers. */
		:: seen >= nidle && seen > 0 -> seen = 0
#else
		:: seen >= nidle -> seen = 0
#endif
		:: else ->
			seen = 0;
#endif
			atomic { drain() };		/* full_fence */
			sched_wakep()
#ifdef YOUNG
		fi
#endif
	fi
}

/* Scheduler 0: NW runs, each leaving a process on the queue, each followed by the look. */
proctype producer()
{
	byte k = 0, target, seen;
	bool posted;
	do
	:: k < NW -> qbuf++; k++; maybe_wake()
	:: else -> break
	od;
	/* The next run never returns (a long call, or a runaway). A run that does return
	 * looks again (maybe_wake), which the model's first look already covers. */
	s0long = true;
	(qmem + qbuf == 0)	/* not an end state: work left here while all sleep is a loss */
}

/* The hardware drains scheduler 0's store buffer, some time. */
active proctype flusher()
{
end:	do
	:: atomic { qbuf > 0 -> drain() }
	od
}

#ifndef NOWATCHDOG
/* watch(): scheduler 0 in the same call past watchdog_ms: stuck, and one sched_wakep. */
active proctype watchdog()
{
	byte target;
	bool posted;
end:	atomic { s0long && qbuf == 0 };
#ifdef YOUNG
	stuck = true;	/* its backlog is now worth any trip, however young */
#endif
	sched_wakep()
}
#endif

#ifdef YOUNG
/* Time passes: backlog queued now has waited a wait later (waited(): the thieves' marks not
 * passed, scheduler 0 being in its run). */
active proctype ager()
{
end:	atomic { qmem > 0 && !aged -> aged = true }
}
#endif

#ifdef GIFT
/* compact(): under idlelock, scheduler 1 not on the idle stack -> runq_give to it. */
active proctype giver()
{
	byte i = 0;
	bool asleep = false;
#ifdef GIFT_PARKED
	bool woke = false, posted = false;
#endif
	atomic {
		do
		:: i < nidlestack && idle[i] == 1 -> asleep = true; break
		:: i < nidlestack && idle[i] != 1 -> i++
		:: i >= nidlestack -> break
		od;
#if MUTANT == 5
		asleep = false;
#endif
#ifdef GIFT_PARKED
		/* bal_give_parked: off the idle stack, counted spinning, then given to. */
		if
		:: asleep ->
			nidlestack--;
			idle[i] = idle[nidlestack];
			idle[nidlestack] = 0;
			nidle--;
			nspinning++;
			asleep = false;
			woke = true
		:: else -> skip
		fi;
#endif
#if MUTANT != 4
		if
		:: !asleep -> gift[1]++
		:: else -> skip
		fi
#endif
	};
#if MUTANT == 4
	if
	:: !asleep -> gift[1]++
	:: else -> skip
	fi;
#endif
#if defined(GIFT_PARKED) && MUTANT != 6
	if
	:: woke -> ring_wake(1)	/* after the unlock */
	:: else -> skip
	fi;
#endif
	(gift[1] == 0)		/* not an end state: a gift its owner never takes is a loss */
}
#endif

#ifdef INJECT
/* inject(): append, ipending = 1 (seq_cst) under ilock, then sched_wakep. */
active proctype injector()
{
	byte target;
	bool posted;
	ipending = true;
	sched_wakep();
	(!ipending)		/* not an end state: a message nobody drains is a loss */
}
#endif

/* A look (steal's queue_len, then runq_steal's CAS): an injected message, else backlog the
 * rule lets us take; backlog too young to take marks this scheduler young. */
inline look()
{
	atomic {
		young = false;
		if
		:: ipending -> ipending = false; found = true
		:: !ipending && gift[me] > 0 -> gift[me]--; found = true
		:: !ipending && gift[me] == 0 && qmem > 0 && TAKE -> qmem--; found = true
		:: !ipending && gift[me] == 0 && qmem > 0 && !(TAKE) -> young = true
		:: else -> skip
		fi
	}
}

proctype scheduler(byte me)
{
	bool spinning = false, found, popped, last;
	byte target, seen;
	bool posted, early;
	bool young = false, timed = false, work;
	do
	::
		/* step(): inject_drain, then next_local (empty: this one's own queue and
		 * runnext are empty at the top of the loop), then steal(). */
		found = false;
		look();
		if
		:: !found ->
			/* Spin if under half spin (2 * nspinning < n, relaxed). */
			if
			:: !spinning && 2 * nspinning < N -> spinning = true; nspinning++
			:: else -> skip
			fi;
			if
			:: spinning ->
				/* A few more steps, until the spin time runs out. */
				do
				:: look();
				   if
				   :: found -> break
				   :: else -> skip
				   fi
				:: !found -> break
				od
			:: else -> skip
			fi
		:: else -> skip
		fi;
#ifdef YOUNG
		/* idle(): young backlog and a wait no longer than a spin: spin on (back to the
		 * top) rather than sleep. Either wait is possible. */
		if
		:: !found && young && spinning -> goto again
		:: else -> skip
		fi;
#endif
		if
		:: found ->
			/* stop_spinning: the last spinner to find work wakes another, if it
			 * sees more queued (after its RMW and a fence: memory, not scheduler
			 * 0's store buffer) or an injected message. */
			if
			:: spinning ->
				spinning = false;
				atomic { nspinning--; last = (nspinning == 0) };
				if
				:: last && (qmem > 0 || ipending) -> last = false; sched_wakep()
				:: last && !(qmem > 0 || ipending) -> last = false
				:: else -> skip
				fi
			:: else -> skip
			fi
			/* proc_run, then maybe_wake on our own queue: empty (one process
			 * stolen at a time, bal_steal_count(1) and (2) are 1). */
		:: else ->
			/* park(). A thief that saw young backlog counts itself timed first. */
			early = false;
			atomic {
				timed = young;
				if
				:: timed -> ntimed++
				:: else -> skip
				fi
			};
			atomic {
#if MUTANT == 1
				/* No fence: the queue loads may be done first. */
				if
				:: seen = qmem; early = true
				:: skip
				fi;
#endif
				idle[nidlestack] = me; nidlestack++; nidle++
			};
			if
			:: spinning -> spinning = false; nspinning--
			:: else -> skip
			fi;
			/* full_fence; any_work (ipending is seq_cst: never hoisted). */
			if
			:: !early -> seen = qmem
			:: else -> skip
			fi;
			/* any_work: the same rule as a look; backlog too young is no work, but
			 * makes (or keeps) the sleep a timed one. */
			atomic {
#if MUTANT == 2
				seen = 0;
				work = false;
#else
				work = ipending || gift[me] > 0 || (seen > 0 && TAKE);
#endif
				if
				:: !work && seen > 0 && !timed -> timed = true; ntimed++
				:: work && timed -> timed = false; ntimed--
				:: else -> skip
				fi;
				seen = 0
			};
			if
			:: work -> work = false
			:: else ->
				/* park_wait -> ring_wait: drop wake CQEs, then the word. */
				do
				:: cq[me] > 0 -> cq[me]--
				:: else -> break
				od;
				atomic {
					if
					:: ww[me] == 1 -> ww[me] = 0; posted = true
					:: else -> posted = false
					fi
				};
				if
				:: posted -> posted = false	/* a wake came first: return */
				:: else ->
					if
					:: !timed ->
end_sleep:					(cq[me] > 0);	/* io_uring_submit_and_wait */
						ww[me] = 0
					:: timed ->
						/* At most its wait: a wake-up, or the timeout. */
						if
						:: cq[me] > 0 -> ww[me] = 0
#if MUTANT != 3
						:: true -> ww[me] = 0	/* the timeout */
#endif
						fi
					fi
				fi;
				atomic {
					if
					:: timed -> timed = false; ntimed--
					:: else -> skip
					fi
				}
			fi;
			seen = 0;
			/* unidle: off the stack, or a waker took us off it and we spin. */
			atomic {
				popped = true;
				target = 0;
				do
				:: target < nidlestack && idle[target] == me ->
					nidlestack--;
					idle[target] = idle[nidlestack];
					idle[nidlestack] = 0;
					nidle--;
					popped = false;
					break
				:: target < nidlestack && idle[target] != me -> target++
				:: target >= nidlestack -> break
				od;
				target = 0;
				spinning = popped;
				popped = false
			}
		fi;
again:		skip
	od
}

init
{
	byte i = 1;
	atomic {
		run producer();
		do
		:: i <= NS -> run scheduler(i); i++
		:: else -> break
		od
	}
}
