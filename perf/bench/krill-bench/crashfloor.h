/* crashfloor: what the kernel alone allows the crash benchmark. Threads that
 * do nothing but fault and jump back, with no runtime, give the rate a free
 * runtime would reach on this machine: the crash figure's floor. */
#ifndef KRILL_PERF_CRASHFLOOR_H
#define KRILL_PERF_CRASHFLOOR_H

#include <stdint.h>

/* Run cycles segfault-and-siglongjmp cycles in total, split over threads
 * threads in parallel, and put the rate (cycles/s) in *rate. The SIGSEGV
 * action in force before is restored before returning. Returns 0 or a
 * negative errno. */
int crash_floor(unsigned threads, uint64_t cycles, double *rate);

#endif
