/* signal: links, monitors and exit signals (link.c): what travels between
 * processes besides their messages, in order with them. */
#ifndef KR_SIGNAL_H
#define KR_SIGNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/proc/proc.h"

/* Signals: envelopes with these tags carry a kr_exit_info and are handled
 * by the runtime when the receiver takes them from its mailbox, in order
 * with that sender's messages (signal/link.c). */
#define SIG_BASE      0xffffff00u
#define SIG_LINK      (SIG_BASE + 1)
#define SIG_UNLINK    (SIG_BASE + 2)
#define SIG_EXIT      (SIG_BASE + 3) /* kr_send_exit / kr_rt_exit */
#define SIG_EXIT_LINK (SIG_BASE + 4) /* a linked process exited */
#define SIG_MONITOR   (SIG_BASE + 5)
#define SIG_DEMONITOR (SIG_BASE + 6)
#define SIG_NOTIFY    (SIG_BASE + 7) /* ref: the tag to send back when there is room */

enum { SIG_KEEP, SIG_DROP, SIG_DIE };
int sig_send(struct sched *s, kr_pid to, uint32_t tag, kr_pid from, uint64_t ref, uint32_t reason,
	     const void *payload, uint32_t len);
struct env *sig_env(struct arena *a, uint32_t tag, kr_pid from, uint64_t ref, uint32_t reason,
		    const void *payload, uint32_t len);
int sig_handle(struct sched *s, struct proc *p, struct env *e);
void sig_exit_notify(struct sched *s, struct proc *p, kr_pid self, uint32_t reason,
		     const void *payload, uint32_t plen);
void sig_drain(struct sched *s, struct env *list, kr_pid self, uint32_t reason, const void *payload,
	       uint32_t plen);
void side_free_vecs(struct sched *s, struct side *side);
bool vec_has_pid(const struct vec *v, kr_pid pid);
int vec_add_pid(struct sched *s, struct vec *v, kr_pid pid);
int vec_add_mon(struct sched *s, struct vec *v, uint64_t ref, kr_pid pid);

#endif
