/* Model of the schedulers' sleep and wake-up (core/sched/sched.c: park, unidle, sched_wakep,
 * maybe_wake, stop_spinning, step, any_work; core/sched/park.c: park_wait, park_wake; io/ring.c:
 * ring_wait, ring_wake; core/fault/watchdog.c: watch). Scheduler 0 makes work stealable (each run
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
 * two pushes give a look that sees work left after a steal. Default NS=2 NW=2 (2.5e6
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
 * run-models-mutant: -DINJECT -DNS=1 -DLATE_DEC */

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

byte qmem = 0;		/* scheduler 0's queue length as other threads see it */
byte qbuf = 0;		/* pushes still in scheduler 0's store buffer */
byte nidle = 0;
byte nspinning = 0;
byte idle[N];		/* the idle stack (rt->idle), under idlelock */
byte nidlestack = 0;
bool ipending = false;
bool s0long = false;	/* scheduler 0 is inside its last, endless run */
bit ww[N];		/* ring->wake: a wake is pending */
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

/* maybe_wake: the fence only when some scheduler is parked. */
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
		atomic { drain() };			/* full_fence */
		sched_wakep()
	fi
}

/* Scheduler 0: NW runs, each leaving a process on the queue, each followed by the look. */
proctype producer()
{
	byte k = 0, target;
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
	sched_wakep()
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

proctype scheduler(byte me)
{
	bool spinning = false, found, popped, last;
	byte target, seen;
	bool posted, early;
	do
	::
		/* step(): inject_drain, then next_local (empty: this one's own queue and
		 * runnext are empty at the top of the loop), then steal(). */
		found = false;
		atomic {
			if
			:: ipending -> ipending = false; found = true
			:: !ipending && qmem > 0 -> qmem--; found = true	/* runq_steal's CAS */
			:: else -> skip
			fi
		};
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
				:: atomic {
					if
					:: ipending -> ipending = false; found = true
					:: !ipending && qmem > 0 -> qmem--; found = true
					:: else -> skip
					fi
				   };
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
		if
		:: found ->
			/* stop_spinning: the last spinner to find work wakes another. */
			if
			:: spinning ->
				spinning = false;
				atomic { nspinning--; last = (nspinning == 0) };
				if
				:: last -> last = false; sched_wakep()
				:: else -> skip
				fi
			:: else -> skip
			fi
			/* proc_run, then maybe_wake on our own queue: empty (one process
			 * stolen at a time, bal_steal_count(1) and (2) are 1). */
		:: else ->
			/* park(). */
			early = false;
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
#if MUTANT == 2
			seen = 0;
			if
			:: false -> skip
#else
			if
			:: ipending || seen > 0 -> skip
#endif
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
end_sleep:			(cq[me] > 0);		/* io_uring_submit_and_wait */
					ww[me] = 0
				fi
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
		fi
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
