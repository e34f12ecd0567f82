/* Model of kr_link racing the target's exit (core/signal/link.c: link_in, sig_send, sig_handle,
 * sig_drain, sig_exit_notify; core/proc/proc.c: proc_lookup, deliver/push, proc_exit, and the
 * slot's reuse through core/sched/epoch.c: epoch_retire, try_advance, epoch_announce). Process A
 * links to B (pid: slot, generation 1) while B may exit at any point; after B's exit the
 * slot may be reused by a later incarnation B' (generation 3) once the epoch allows it.
 * Checked: kr_link returns 0 and A then handles exactly one EXIT for B (B's exit tells its
 * links, or its exit drains the pending TAG_LINK, or B had no memory for the link and said
 * noproc at once), or kr_link returns -ESRCH (B dead at a lookup, or the push found the
 * mailbox closed) and A holds no link and hears nothing; never a link recorded on A's side
 * and never signalled; and no signal meant for B reaches B' (assertion).
 * Run: tests/models/run-models. */

/* What is left out, and why it does not matter here. The mailbox word's CAS and close are
 * one atomic step each (tests/models/mbox.pml checks them). A never exits (its exit would
 * only tell B through the same paths, mirrored). B dies by its own exit, not by a signal:
 * a kill taken with the TAG_LINK behind it leaves the TAG_LINK in p->local, which
 * proc_exit drains with sig_drain just as it drains the closed mailbox (the same answer).
 * kr_unlink is not modelled, so an EXIT that A drops (not linked) is an error here.
 * The epoch: A's scheduler announces at the quiescent point before A's run and stays
 * online until the run ends; the other schedulers are offline or caught up, so only A's
 * holds the epoch back (the only holder that matters to A's push). One link, one target,
 * one reuse: every interleaving of A's two lookups and push with B's generation bump,
 * close, notify and drain, and the reuse, is covered (a few thousand states).
 * The mutants must be caught (run-models fails if one is not):
 * MUTANT 1: sig_drain frees a pending TAG_LINK without answering it (lost exit).
 * MUTANT 2: link_in keeps its record when the push fails (MB_CLOSED) (lost exit).
 * MUTANT 3: the slot is reused at once, without the epoch's grace (TAG_LINK to B').
 * run-models-mutant: -DMUTANT=1
 * run-models-mutant: -DMUTANT=2
 * run-models-mutant: -DMUTANT=3 */

#ifndef MUTANT
#define MUTANT	0
#endif

#define OK	1
#define ESRCH	2

byte gen = 1;		/* the slot's generation: 1 B alive, 2 B dead, 3 B' alive */
bool closed = false;	/* the slot's mailbox word is DEAD */
bool mlink = false;	/* a TAG_LINK from A is in the slot's mailbox */
bool alink = false;	/* B in A's link set (A's side record) */
bool blink = false;	/* A in B's link set (B's side record) */
byte aexit = 0;		/* EXIT_LINK signals from B in A's mailbox */
byte lres = 0;		/* what kr_link returned: 0 not yet, OK, ESRCH */
byte got = 0;		/* EXITs A acted on (it was linked: vec_del_pid true) */
byte dropped = 0;	/* EXITs A dropped (not linked) */
bool adone = false;	/* A's call has returned */
bool bdone = false;	/* B's exit is complete */

byte gepoch = 1;
byte aep = 0;		/* A's scheduler's announced epoch; 0: offline */
byte ret = 0;		/* the epoch B's slot was retired in; 0: not yet */

proctype linker()
{
	byte rc;
	/* A quiescent point before the run (epoch_announce). */
	aep = gepoch;
	/* link_in: proc_lookup (acquire load of the generation). */
	if
	:: gen != 1 -> lres = ESRCH; goto done
	:: else -> skip
	fi;
	alink = true;		/* vec_add_pid(&side->links, pid) */
	/* sig_send -> deliver: proc_lookup again, then push (mbox_push). */
	if
	:: gen != 1 -> rc = 0	/* err: 0 (newer generation) or -ESRCH: not 1 either way */
	:: else ->
		atomic {
			if
			:: closed -> rc = 0	/* MB_CLOSED: freed */
			:: else -> mlink = true; rc = 1
			fi
		}
	fi;
#if MUTANT == 2
	lres = OK;
#else
	if
	:: rc != 1 -> alink = false; lres = ESRCH	/* vec_del_pid; -ESRCH */
	:: else -> lres = OK
	fi;
#endif
done:
	aep = 0;		/* the run ends; A's scheduler may move on */
	adone = true;
	/* A's later runs: take, sig_handle(TAG_EXIT_LINK). */
end:	do
	:: atomic {
		aexit > 0 -> aexit--;
		if
		:: alink -> alink = false; got++	/* trapped or fatal: acted on */
		:: else -> dropped++
		fi
	   }
	od
}

proctype target()
{
	bool pend;
	do
	:: atomic {
		mlink -> mlink = false;		/* take; sig_handle(TAG_LINK) */
		if
		:: blink = true			/* vec_add_pid */
		:: aexit++			/* no memory: EXIT_LINK, KR_NOPROC at once */
		fi
	   }
	:: break			/* the behaviour exits */
	od;
	/* proc_exit: the generation first (seq_cst), then close, notify, drain. */
	gen = 2;
	atomic { closed = true; pend = mlink; mlink = false };	/* mbox_close */
	if
	:: blink -> aexit++		/* sig_exit_notify: EXIT_LINK to each link */
	:: else -> skip
	fi;
	blink = false;
	if
#if MUTANT == 1
	:: pend -> pend = false	/* freed, unanswered */
#else
	:: pend -> pend = false; aexit++	/* sig_drain: TAG_LINK answered by EXIT_LINK */
#endif
	:: else -> skip
	fi;
	ret = gepoch;			/* epoch_retire: seq_cst load of gepoch */
	bdone = true
}

/* try_advance: every online scheduler has announced the current epoch. */
active proctype epochs()
{
end:	do
	:: atomic { gepoch < 4 && (aep == 0 || aep == gepoch) -> gepoch++ }
	od
}

/* Another scheduler's spawn takes the slot from its limbo list (epoch_quiesce releases
 * it at ret + 2), reopens the mailbox, then publishes generation 3 (release). B' only
 * takes its mailbox: anything there from A was meant for B. */
active proctype reuse()
{
#if MUTANT == 3
end:	(ret != 0);
#else
end:	(ret != 0 && gepoch >= ret + 2);
#endif
	atomic { closed = false; mlink = false; gen = 3 };
	/* mlink = false above is mbox_init; a push after it lands in B's old slot. */
end_b2:	(mlink);
	assert(false)		/* a TAG_LINK meant for B reached B' */
}

init
{
	atomic {
		run linker();
		run target()
	}
}

#define SETTLED	(adone && bdone && aexit == 0 && !mlink && !alink && !blink && dropped == 0 && \
		 ((lres == OK && got == 1) || (lres == ESRCH && got == 0)))
ltl settled { <> [] SETTLED }
