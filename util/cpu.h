/* cpu: what a spin-wait loop does between two looks at the word it waits
 * on. One definition for every architecture krill builds on, so no spin
 * loop names an instruction set. */
#ifndef KR_UTIL_CPU_H
#define KR_UTIL_CPU_H

/* A short pause in a spin loop: it lets the sibling hyperthread run, saves
 * power, and slows the loop's loads of a contended cache line. Also a
 * compiler barrier on every architecture, so a loop of plain loads around
 * it is re-read each time round.
 *
 * aarch64: ISB, not YIELD. YIELD is a hint that only cores with hardware
 * threads act on; nearly every aarch64 core has none and retires it as a
 * NOP, so a loop tuned for x86's PAUSE (tens of cycles) would spin many
 * times faster there. ISB stalls the front end until the pipeline drains,
 * a delay of the order of PAUSE's. Linux's cpu_relax() and Go's procyield
 * use YIELD; Rust's spin_loop() hint and Arm's own advice for user-space
 * spin loops use ISB, which is the behaviour krill's loops were tuned
 * with. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
	__asm__ __volatile__("isb sy" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

#endif
