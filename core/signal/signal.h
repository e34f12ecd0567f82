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
#define TAG_LINK      (SYS_TAG_BASE + 1)
#define TAG_UNLINK    (SYS_TAG_BASE + 2)
#define TAG_EXIT      (SYS_TAG_BASE + 3) /* kr_send_exit / kr_rt_exit */
#define TAG_EXIT_LINK (SYS_TAG_BASE + 4) /* a linked process exited */
#define TAG_MONITOR   (SYS_TAG_BASE + 5)
#define TAG_DEMONITOR (SYS_TAG_BASE + 6)

int kri_sig_handle(struct sched *s, struct proc *p, struct env *e);
/* The process layer calls these through proc_parts (core/proc/part.h). */
void kri_sig_exit_notify(struct sched *s, struct proc *p, const struct exit_note *x);
void kri_sig_drain(struct sched *s, struct env *list, const struct exit_note *x);
/* What the side record holds for links and monitors goes. */
void kri_side_free_vecs(struct sched *s, struct side *side);

#endif
