/* io: the process side of I/O (io.c): who owns a handle, and completions
 * delivered as KR_TAG_IO messages; the rings and handles are io/'s. */
#ifndef KR_CORE_IO_H
#define KR_CORE_IO_H

#include "core/proc/proc.h"

int io_rt_init(struct runtime *rt);
void io_rt_fini(struct runtime *rt);
void io_sched_fini(struct sched *s);
void io_owner_exit(struct runtime *rt, kr_pid pid);
unsigned io_poll(struct sched *s);
void io_step(struct sched *s); /* reap completions, submit requests */

#endif
