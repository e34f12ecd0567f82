/* timer: timers on each scheduler's wheel (timer.c) and the calls built
 * on them: send_after, receive timeouts. */
#ifndef KR_TIMER_H
#define KR_TIMER_H

#include <stdint.h>

#include "core/proc/proc.h"

int kri_timer_start(struct sched *s, kr_pid to, uint64_t ms, struct env *e, kr_timer *out);
int kri_timer_cancel(struct kr_runtime *rt, struct sched *s, kr_timer t);
/* Make armed timer t fire ms from now instead, from any scheduler when that
 * is no earlier than its deadline, from its owner's otherwise; -ENOENT,
 * changing nothing, when it cannot (fired, or not ours to move earlier).
 * Only for a timer whose id no other thread holds. */
int kri_timer_rearm(struct sched *s, kr_timer t, uint64_t ms);
void kri_timer_expire(struct sched *s);
void kri_timer_drain(struct sched *s);

#endif
