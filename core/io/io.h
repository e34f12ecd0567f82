/* io: the process side of I/O (io.c): who owns a handle, and completions
 * delivered as KR_TAG_IO messages; the rings and handles are io/'s. */
#ifndef KR_CORE_IO_H
#define KR_CORE_IO_H

#include "core/proc/proc.h"

int kri_io_rt_init(struct kr_runtime *rt);
void kri_io_rt_fini(struct kr_runtime *rt);
void kri_io_sched_fini(struct sched *s);
void kri_io_owner_exit(struct kr_runtime *rt, kr_pid pid);
unsigned kri_io_poll(struct sched *s);
/* e, a KR_TAG_IO message, is being taken by p on s (run.c's take, through
 * proc_parts.take_signal): arm a receive owed where p now runs. TAKE_KEEP. */
int kri_io_taken(struct sched *s, struct proc *p, struct env *e);
void kri_io_step(struct sched *s); /* reap completions, submit requests */
/* Make fd, a connected TCP socket opened elsewhere (dist/'s handshake on a
 * helper thread), a handle owned by the calling process, as if accepted.
 * On failure fd is closed. -EBADF: fd < 0; -ENOSYS; errors as accept's. */
int kri_io_adopt_tcp(kr_ctx *ctx, int fd, kr_handle *out);

#endif
