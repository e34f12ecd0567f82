/* Model of the mailbox hand-off (core/proc/mbox.c): producers push with the CAS loop, two
 * schedulers run the process when woken (take, consume, idle; or a lone message handled in
 * the word, then idle-lone or unpeek; a bounded batch then the back of the queue, as
 * proc_run) and the process may exit (close) after any message.
 * Checked: no message lost, none consumed or freed twice, per-producer order, at most one
 * owner of the right to run, and the quiescent end state. Run: tests/models/run-models. */

/* Each atomic step below holds exactly one access to the mailbox word or the run queue;
 * what a party does with memory only it can reach (its own envelope before the push, the
 * taken list after the exchange) rides along in the same step. The CAS is modelled as
 * strong (a weak CAS's spurious failure only retries). Sizes: run-models runs the default
 * (2 producers x 2 messages, 8.0e5 states) and the line below (3 x 1, 4.0e5 states); with
 * --full also 3 x 2 (1.7e8 states, ~12 GB and ~12 minutes with -DCOLLAPSE).
 * run-models: -DNPROD=3 -DNMSG=1
 * run-models-full: -DNPROD=3 -DNMSG=2
 * The mutants must be caught (run-models fails if they are not):
 * MUTANT 1: mbox_idle's CAS RUN -> 0 done as a load and a store, so a push that lands
 *   between them (sees RUN: no wake) is left in an idle word (lost message).
 * MUTANT 2: a run that ran on past its budget through what it took (run.c, SLICE_MAX)
 *   idles at its end as if nothing were left taken: p->local's messages are lost.
 * run-models-mutant: -DMUTANT=1
 * run-models-mutant: -DMUTANT=2 */

#ifndef MUTANT
#define MUTANT	0
#endif

#ifndef NPROD
#define NPROD	2
#endif
#ifndef NMSG
#define NMSG	2		/* messages per producer */
#endif
#define M	(NPROD * NMSG)	/* envelopes are 1..M; 0 is NULL */
#define NSCHED	2
#define BUDGET	2		/* messages a run may handle (cfg.batch) */
#define SLICE	2		/* budgets a run may use on what it took (run.c's SLICE_MAX) */

#define RUN	1
#define DEAD	2
#define PTR(w)	((w) >> 2)	/* the word: envelope << 2 | RUN, or DEAD alone */

/* What became of an envelope; each is settled exactly once. */
#define PENDING	 0
#define CONSUMED 1
#define FREED	 2	/* drained at exit (taken but unhandled, or pending at close) */
#define REFUSED	 3	/* push returned MB_CLOSED: the sender freed it */

byte word = 0;		/* the mailbox word */
byte nxt[M + 1];	/* envelope links */
byte fate[M + 1];
byte settled = 0;
byte last[NPROD];	/* per producer: the index of the next message due */

/* The process's own memory (p->local), touched only by whoever runs it. */
byte plocal[M];		/* taken, not yet handled; plocal[nlocal - 1] is the oldest */
byte nlocal = 0;

byte tokens = 0;	/* the run queue: schedules of the process not yet picked up */
byte running = 0;	/* schedulers running the process now */
byte owners = 0;	/* ghost: holders of the right to run (a waker, the queue, a runner) */
bool exited = false;
byte done = 0;		/* producers finished */

inline settle(e, f)
{
	assert(e >= 1 && e <= M && fate[e] == PENDING);
	fate[e] = f;
	settled++
}

/* Consume the oldest local message: in order for its producer, and only once. */
inline consume()
{
	nlocal--;
	m = plocal[nlocal];
	plocal[nlocal] = 0;
	assert(last[(m - 1) / NMSG] == (m - 1) % NMSG);
	last[(m - 1) / NMSG]++;
	settle(m, CONSUMED);
	m = 0;
	budget++
}

/* The lone message handled where it lies in the word (mbox_peek): the same checks. */
inline consume_lone()
{
	assert(last[(lone - 1) / NMSG] == (lone - 1) % NMSG);
	last[(lone - 1) / NMSG]++;
	settle(lone, CONSUMED);
	budget++
}

/* mbox_unpeek: XCHG -> RUN; of what comes, oldest last, the lone message must be the oldest
 * and is left out; the rest goes to p->local. */
inline unpeek()
{
	lst = PTR(word);
	word = RUN;
	do
	:: lst != lone && lst != 0 -> plocal[nlocal] = lst; nlocal++; lst = nxt[lst]
	:: else -> break
	od;
	assert(lst == lone);
	lone = 0;
	lst = 0
}

/* Exit: free the unhandled local messages, close (XCHG -> DEAD), free what was pending. */
inline close_and_drain()
{
	do
	:: nlocal > 0 -> nlocal--; settle(plocal[nlocal], FREED); plocal[nlocal] = 0
	:: else -> break
	od;
	lst = PTR(word);
	word = DEAD;
	owners--;
	running--;
	exited = true;
	do
	:: lst != 0 -> settle(lst, FREED); lst = nxt[lst]
	:: else -> break
	od
}

proctype producer(byte p)
{
	byte k = 0, m, old;
	bool woke, pushed;
	do
	:: k < NMSG ->
		m = p * NMSG + k + 1;
		old = word;			/* relaxed load */
		do
		:: pushed -> break
		:: atomic { !pushed && old == DEAD -> settle(m, REFUSED) }; break /* MB_CLOSED */
		:: atomic {
			!pushed && old != DEAD ->
			nxt[m] = PTR(old);	/* e->next = MB_PTR(old): still the sender's own */
			if
			:: word == old ->		/* the CAS succeeds */
				word = (m << 2) | RUN;
				pushed = true;
				woke = ((old & RUN) == 0);
				if
				:: woke -> owners++; assert(owners == 1)
				:: else -> skip
				fi
			:: else ->		/* it fails and reloads */
				old = word
			fi
		   }
		od;
		/* MB_WOKE: this sender, and nobody else, schedules the process. */
		atomic {
			if
			:: woke -> tokens++
			:: else -> skip
			fi;
			woke = false;
			pushed = false;
			old = 0;
			k++
		}
	:: else -> break
	od;
	done++
}

proctype scheduler()
{
	byte lst, m, budget, lone;
	bool idled;
end_wait:
	do
	:: atomic { tokens > 0 -> tokens--; running++; assert(running == 1 && owners == 1);
		    budget = 0 }
		do
		:: atomic { nlocal == 0 && PTR(word) != 0 && nxt[PTR(word)] == 0 ->
			/* mbox_peek: one envelope alone in the word is handled where it
			 * lies (its bytes are the owner's: pushes only read the word). */
			lone = PTR(word); consume_lone() }
			/* Then: exit (unpeek, close); or idle-lone, CAS lone|RUN -> 0, and
			 * unpeek if it fails; or keep running (unpeek): messages handed back
			 * by kr_undefer, or the end of the budget. */
			if
			:: atomic { unpeek() }; atomic { close_and_drain() }; break
			:: atomic {
				if
				:: word == ((lone << 2) | RUN) ->
					word = 0; lone = 0; owners--; running--; idled = true
				:: else -> skip
				fi
			   };
			   if
			   :: idled -> idled = false; break
			   :: else -> atomic { unpeek() }
			   fi
			:: atomic { unpeek() }
			fi;
			if
			:: budget >= BUDGET && nlocal > 0 && budget < SLICE * BUDGET ->
				/* Budget spent with messages taken: run on through them
				 * (run.c, SLICE_MAX), the word untouched. */
				skip
			:: budget >= BUDGET ->
				/* The end of the budget, as below. */
				atomic {
					if
					:: nlocal > 0 -> running--; tokens++
					:: nlocal == 0 && word == RUN -> word = 0; owners--; running--
					:: nlocal == 0 && word != RUN -> running--; tokens++
					fi
				};
				break
			:: else -> skip
			fi
		:: nlocal == 0 ->
			/* mbox_take: a cheap look, then the exchange and the reversal into
			 * p->local, oldest to be handled first. */
			if
			:: PTR(word) == 0 -> skip
			:: else ->
				atomic {
					lst = PTR(word);
					word = RUN;
					do
					:: lst != 0 ->
						plocal[nlocal] = lst; nlocal++; lst = nxt[lst]
					:: else -> break
					od
				}
			fi;
			/* Nothing taken: mbox_idle, CAS RUN -> 0; if it fails, keep running. */
#if MUTANT == 1
			/* The CAS split into a load and a store: a push in between is lost. */
			atomic {
				if
				:: nlocal == 0 && word == RUN -> idled = true
				:: else -> skip
				fi
			};
			if
			:: idled -> atomic { word = 0; owners--; running-- }
			:: else -> skip
			fi;
#else
			atomic {
				if
				:: nlocal == 0 && word == RUN ->
					word = 0; owners--; running--; idled = true
				:: else -> skip
				fi
			};
#endif
			if
			:: idled -> idled = false; break
			:: else -> skip
			fi
		:: nlocal > 0 && budget < BUDGET - 1 ->
			/* Handle a message; the behaviour may end the process. */
			if
			:: atomic { consume() }
			:: atomic { consume(); close_and_drain() }; break
#if MUTANT == 2
			/* The run-on's end idles as if nothing were taken: p->local's
			 * messages are left behind. */
			:: atomic {
				consume();
				if
				:: word == RUN -> word = 0; owners--; running--; idled = true
				:: else -> skip
				fi
			   };
			   if
			   :: idled -> idled = false; break
			   :: else -> skip
			   fi
#endif
			fi
		:: nlocal > 0 && budget >= BUDGET - 1 && budget < SLICE * BUDGET ->
			/* The budget spent with messages taken: handle one and run on
			 * (run.c, SLICE_MAX; the word is not touched), up to SLICE
			 * budgets. */
			if
			:: atomic { consume() }
			:: atomic { consume(); close_and_drain() }; break
#if MUTANT == 2
			/* The run-on's end idles as if nothing were taken: p->local's
			 * messages are left behind. */
			:: atomic {
				consume();
				if
				:: word == RUN -> word = 0; owners--; running--; idled = true
				:: else -> skip
				fi
			   };
			   if
			   :: idled -> idled = false; break
			   :: else -> skip
			   fi
#endif
			fi
		:: nlocal > 0 && budget >= BUDGET - 1 ->
			/* The last of the budget: then exit, or the back of the queue
			 * (still RUN) if anything is left or arrived, else idle. */
			if
			:: atomic { consume(); close_and_drain() }
			:: atomic {
				consume();
				if
				:: nlocal > 0 -> running--; tokens++
				:: nlocal == 0 && word == RUN -> word = 0; owners--; running--
				:: nlocal == 0 && word != RUN -> running--; tokens++
				fi
			   }
			fi;
			break
		od
	od
}

/* RUN is set exactly while someone holds the right to run; never two hold it. */
active proctype run_bit_means_owned()
{
end:	atomic { !(owners <= 1 && ((word & RUN) == RUN) == (owners == 1)) -> assert(false) }
}

init
{
	byte i = 0;
	atomic {
		do
		:: i < NPROD -> run producer(i); i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < NSCHED -> run scheduler(); i++
		:: else -> break
		od
	}
}

/* No message is left behind: the run ends with every envelope consumed, freed or refused,
 * nobody holding the right to run, and the word idle and empty (or dead). */
#define QUIET	(done == NPROD && settled == M && tokens == 0 && running == 0 && owners == 0 && \
		 ((exited && word == DEAD) || (!exited && word == 0)))
ltl quiet_end { <> [] QUIET }
