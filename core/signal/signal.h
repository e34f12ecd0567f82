/* signal: links, monitors and exit signals (link.c): what travels between
 * processes besides their messages, in order with them. */
#ifndef KR_SIGNAL_H
#define KR_SIGNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/proc/part.h"
#include "core/proc/proc.h"

/* Signals: envelopes with these tags carry a kr_exit_info and are handled
 * when the receiver takes them from its mailbox, in order with that
 * sender's messages (link.c, through proc_parts.take_signal). */
#define SIG_LINK      (SIG_BASE + 1)
#define SIG_UNLINK    (SIG_BASE + 2)
#define SIG_EXIT      (SIG_BASE + 3) /* kr_send_exit / kr_rt_exit */
#define SIG_EXIT_LINK (SIG_BASE + 4) /* a linked process exited */
#define SIG_MONITOR   (SIG_BASE + 5)
#define SIG_DEMONITOR (SIG_BASE + 6)

int sig_handle(struct sched *s, struct proc *p, struct env *e);
/* The process layer calls these through proc_parts (core/proc/part.h). */
void sig_exit_notify(struct sched *s, struct proc *p, const struct exit_note *x);
void sig_drain(struct sched *s, struct env *list, const struct exit_note *x);
/* What the side record holds for links and monitors goes. */
void side_free_vecs(struct sched *s, struct side *side);

#endif
