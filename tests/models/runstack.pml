/* Model of the shared run stacks of stackful processes as schedulers keep them between runs
 * (core/fiber/fiber.c: stack_take, stack_take_or_park, stack_give, kri_fiber_release,
 * kri_fiber_free; core/sched/sched.c's loop calls kri_fiber_release every 8 runs and before
 * it idles). NS schedulers, NR run stacks. A scheduler runs a process bound to a stack: it
 * holds it already (holder: no atomic), takes it free (CAS), or parks the process on its word
 * (the RETRY queued in the CAS that sees it held). It keeps what it took until a release
 * point, where it gives each back (exchange) and delivers the RETRYs queued there to itself,
 * to be run. The exit of a process whose frames lie on a stack (on) forgets them when its
 * own scheduler holds it, else gives back what it keeps, then waits until the holder flushes
 * them (its next run there) or gives the stack back. Checked: one thread at a time on a
 * stack (assert), no process left parked when every scheduler has stopped (the final
 * assert: a lost wake-up), and no two exits waiting for each other (pan: invalid end state).
 * Memory orders are not modelled: the word's CAS and exchange are the only cross-thread
 * steps and are atomic; holder is written by the holder only, and a thread reading itself
 * there is the holder (coherence), so holder is modelled as a plain shared byte.
 * Run: tests/models/run-models.
 * The mutants must be caught (run-models fails if one is not):
 * MUTANT 1: no release before the scheduler idles or stops: a process parked on a stack it
 *   keeps is never woken.
 * MUTANT 2: the exit waits without first giving back what its scheduler keeps: two exits,
 *   each waiting for a stack the other's scheduler keeps, wait for ever.
 * run-models-mutant: -DMUTANT=1
 * run-models-mutant: -DMUTANT=2 */

#ifndef NS
#define NS 2
#endif
#ifndef NR
#define NR 2
#endif
#ifndef M
#define M 3 /* messages a scheduler handles */
#endif
#ifndef MUTANT
#define MUTANT 0
#endif

byte word[NR];       /* 1 held */
byte plist[NR];      /* processes parked on it (their RETRYs on the word) */
byte holder[NR];     /* the scheduler keeping it, + 1; 0 none */
bool on[NR];         /* a blocked process's frames lie on it */
byte running[NR];    /* threads running a process on it */
byte retry[NS * NR]; /* RETRYs delivered to scheduler i for stack r: [i * NR + r] */
byte done;

inline give(i, r) {
	atomic {
		word[r] = 0;
		retry[i * NR + r] = retry[i * NR + r] + plist[r];
		plist[r] = 0
	}
}

inline release(i) {
	k = 0;
	do
	:: k < NR ->
		if
		:: holder[k] == i + 1 -> holder[k] = 0; give(i, k)
		:: else -> skip
		fi;
		k++
	:: else -> break
	od
}

/* A message for a process bound to stack r, handled on scheduler i. */
inline run_on(i, r) {
	if
	:: holder[r] == i + 1 -> ok = 1
	:: else ->
		atomic {
			if
			:: word[r] == 0 -> word[r] = 1; ok = 1
			:: else -> plist[r]++; ok = 0
			fi
		};
		if
		:: ok -> holder[r] = i + 1
		:: else -> skip
		fi
	fi;
	if
	:: ok ->
		running[r]++;
		assert(running[r] == 1);
		on[r] = 0; /* the previous one's frames copied out (flush) */
		on[r] = 1; /* it blocks, its frames left there */
		running[r]--
	:: else -> skip
	fi
}

/* The exit, on scheduler i, of the process whose frames lie on r. */
inline exit_of(i, r) {
	if
	:: holder[r] == i + 1 -> on[r] = 0
	:: else ->
#if MUTANT != 2
		release(i);
#endif
		do
		:: atomic { word[r] == 0 -> word[r] = 1 } ->
			on[r] = 0;
			give(i, r);
			break
		:: on[r] == 0 -> break
		od
	fi
}

proctype sched(byte i) {
	byte n = 0, r, k, ok;
	do
	:: n < M ->
		n++;
		if
		:: r = 0
		:: r = NR - 1
		fi;
		if
		:: run_on(i, r)
		:: on[r] -> exit_of(i, r)
		:: release(i) /* a batch's end (every 8 runs) */
		fi
	:: r = 0;
		do
		:: r < NR && retry[i * NR + r] == 0 -> r++
		:: else -> break
		od;
		if
		:: r < NR -> retry[i * NR + r]--; run_on(i, r)
		:: else -> break /* nothing due: idle, then stop */
		fi
	od;
#if MUTANT != 1
	release(i);
#endif
	/* A RETRY the release delivered to itself is work again. */
	do
	:: r = 0;
		do
		:: r < NR && retry[i * NR + r] == 0 -> r++
		:: else -> break
		od;
		if
		:: r < NR -> retry[i * NR + r]--; run_on(i, r);
#if MUTANT != 1
			release(i)
#else
			skip
#endif
		:: else -> break
		fi
	od;
	done++
}

init {
	byte j;
	atomic {
		j = 0;
		do
		:: j < NS -> run sched(j); j++
		:: else -> break
		od
	}
	done == NS;
	j = 0;
	do
	:: j < NR -> assert(plist[j] == 0); j++
	:: else -> break
	od
}
