/* remote: how the process layer hands a send to a pid of another node to
 * the distribution part (dist/), which sits above the core and fills in
 * struct kri_remote when a node starts. A remote pid is a kr_pid whose
 * generation is GEN_REMOTE, a value no local process ever has (proc.c stops
 * a slot's generations at GEN_LIMIT), and whose index names an entry of the
 * node's table of remote pids. A local lookup of one fails as a pid never
 * issued (-ESRCH), so the test for it sits on that failure path only: a
 * send to a live local process pays nothing for distribution. */
#ifndef KR_REMOTE_H
#define KR_REMOTE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "krill.h"

struct kr_runtime;

#define GEN_REMOTE 0xffffffffu

static inline int pid_remote(kr_pid p)
{
	return (uint32_t)(p >> 32) == GEN_REMOTE;
}

/* Signals to and from remote pids, as link.c names them (Erlang's
 * LINK, UNLINK, EXIT, EXIT2, MONITOR_P, DEMONITOR_P, MONITOR_P_EXIT). */
enum { RS_LINK = 1, RS_UNLINK, RS_EXIT_LINK, RS_EXIT, RS_MONITOR, RS_DEMONITOR, RS_DOWN };

/* The node's calls, set once by kr_node_start (release) and read by the
 * core (acquire) only on a send to a remote pid and at kr_runtime_free. */
struct kri_remote {
	/* A send of bytes to a remote pid; ctx NULL: from a foreign thread.
	 * Errors as kr_send's. */
	int (*send)(struct kr_runtime *rt, kr_ctx *ctx, kr_pid to, uint32_t tag, const void *data,
		    size_t len);
	/* A link, monitor or exit signal from a local process (from) to a
	 * remote pid, on the scheduler running ctx (kinds RS_*; ref: the
	 * monitor's; payload: the exit's). 1 when handed to the connection,
	 * < 0 on failure (-ESRCH: not a pid of a known node). */
	int (*signal)(struct kr_runtime *rt, kr_ctx *ctx, kr_pid to, int kind, kr_pid from,
		      uint64_t ref, uint32_t reason, const void *payload, uint32_t len);
	/* The runtime is being freed, its schedulers gone: stop the node's
	 * threads and free it. */
	void (*fini)(struct kr_runtime *rt);
};

/* runtime.c: install r as rt's node (once: -EALREADY after), and read it
 * back (NULL: no node). Release and acquire: a reader sees r whole. */
int kri_remote_set(struct kr_runtime *rt, const struct kri_remote *r);
const struct kri_remote *kri_remote_get(struct kr_runtime *rt);

/* stats.c: the stats segment's node block (include/krill_stats.h), which
 * dist/ writes, or NULL when the runtime publishes no stats. */
struct kr_stats_node *kri_stats_node(struct kr_runtime *rt);

/* Is the calling thread one of the schedulers? (Calls that block refuse.) */
int kri_api_on_scheduler(void);

/* send.c: the send to a remote pid, through rt->remote; -ESRCH with no
 * node. ctx NULL: from a foreign thread (kr_rt_send). */
int kri_remote_send(struct kr_runtime *rt, kr_ctx *ctx, kr_pid to, uint32_t tag, const void *data,
		    size_t len);

/* link.c: a signal from a remote pid (from) to the local to, from the
 * connection process ctx, handled at to's take as a local one would be.
 * 1: queued; 0: to has exited; < 0: -EINVAL, -ENOMEM, -ESRCH. */
int kri_remote_signal_in(kr_ctx *ctx, kr_pid to, int kind, kr_pid from, uint64_t ref,
			 uint32_t reason, const void *payload, uint32_t len);

/* The send of a message with any tag below the signals' (a system tag of
 * a part above the core, or an ordinary one), delivered now rather than
 * held in the outbox (so it may be called while a process exits), by a
 * running process: hlen bytes of hdr then len of data, in
 * order with its other sends. For parts above the core that deliver events
 * of their own (dist/). 0, or as kr_send (0 also when to has exited). */
int kri_proc_send_sys(kr_ctx *ctx, kr_pid to, uint32_t tag, const void *hdr, size_t hlen,
		      const void *data, size_t len);

#endif
