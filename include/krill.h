/* krill — lightweight, isolated, message-passing processes for C.
 *
 * This header is the whole public API and its reference. Conventions (as in
 * liburing): functions returning int give >= 0 on success and a negative errno
 * value on failure; a failed call changes nothing. Nothing in the library
 * prints or exits.
 *
 * Two kinds of caller:
 *   - a process: code running inside a behaviour, which holds a kr_ctx. The
 *     kr_* functions taking a kr_ctx may only be called from that behaviour,
 *     during that call.
 *   - any thread (the program's main thread, a foreign thread, or a process):
 *     the kr_rt_* functions taking a kr_runtime.
 *
 * A NULL ctx or runtime is refused alike by every call: -EINVAL where the
 * call returns int, 0 for kr_self, kr_whereis, kr_schedulers and kr_alive,
 * NULL for kr_runtime_of and kr_msg_buf, and nothing done where it returns
 * nothing (tests/test_api.c calls each one so).
 */
#ifndef KRILL_H
#define KRILL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A pid names one incarnation of a process: slot index and generation. 0 is
 * never a pid. A message sent to a pid reaches that incarnation or nobody. */
typedef uint64_t kr_pid;

/* A pending timer started by kr_send_after. 0 is never a timer. */
typedef uint64_t kr_timer;

typedef struct kr_runtime kr_runtime;
typedef struct kr_ctx kr_ctx;

/* A message as a behaviour sees it: valid only during that behaviour call
 * (unless deferred with kr_defer). data is 16-byte aligned.
 *
 * C++: ISO C++ has no flexible array member, and a zero-length or one-byte
 * array would be as non-standard or would change sizeof. So C++ sees each
 * struct that ends in one (kr_msg, kr_io_event, kr_sup_children) without
 * it: the array starts exactly where the rest of the struct ends (checked
 * below), so both languages see one layout and one ABI. Its accessor
 * (kr_msg_data, kr_io_event_data, kr_sup_children_child) works in both;
 * C code may go on naming the member. */
typedef struct kr_msg {
	uint32_t tag; /* the sender's tag, or one of KR_TAG_* below */
	uint32_t len; /* bytes in data */
#ifndef __cplusplus
	unsigned char data[];
#endif
} kr_msg;

/* msg->data, in C and C++. */
static inline const unsigned char *kr_msg_data(const kr_msg *m)
{
#ifdef __cplusplus
	return reinterpret_cast<const unsigned char *>(m + 1);
#else
	return m->data;
#endif
}

#if defined(__cplusplus) && __cplusplus >= 201103L
static_assert(sizeof(kr_msg) == 8, "kr_msg as C lays it out");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(kr_msg) == 8 && offsetof(kr_msg, data) == 8, "data ends the struct");
#endif

/* Tags at or above KR_TAG_SYSTEM are the runtime's; kr_send refuses them. */
#define KR_TAG_SYSTEM 0xffff0000u
/* Delivered when a receive timeout set by kr_receive_timeout expires. */
#define KR_TAG_TIMEOUT 0xffff0001u
/* An exit signal, delivered as a message to a process trapping exits; the
 * data is a kr_exit_info (ref 0). */
#define KR_TAG_EXIT 0xffff0002u
/* A monitored process exited (or never existed); the data is a
 * kr_exit_info with the monitor's ref. */
#define KR_TAG_DOWN 0xffff0003u

/* Exit reasons, as Erlang's. Programs use KR_REASON_USER and up. */
#define KR_NORMAL 0u     /* done; links ignore it */
#define KR_SHUTDOWN 1u   /* asked to stop (by a supervisor) */
#define KR_KILL 2u       /* as a signal: ends the target, cannot be trapped */
#define KR_KILLED 3u     /* the reason of a process ended by KR_KILL */
#define KR_NOPROC 4u     /* in DOWN: the process did not exist */
#define KR_FAULT 5u      /* a native fault; the payload is a kr_fault */
#define KR_NOCONNECTION 6u /* the node of a remote pid went away or could
			    * not be reached (include/krill_dist.h) */
#define KR_REASON_USER 16u

/* What an exit signal or DOWN message carries. len bytes of payload follow
 * (the message is offsetof(kr_exit_info, payload) + len bytes long). */
#define KR_PAYLOAD_MAX 48
typedef struct kr_exit_info {
	kr_pid pid;      /* the process that exited (or sent the signal) */
	uint64_t ref;    /* DOWN: the monitor; EXIT: 0 */
	uint32_t reason; /* KR_* above or the program's */
	uint32_t len;    /* payload bytes, at most KR_PAYLOAD_MAX */
	unsigned char payload[KR_PAYLOAD_MAX];
} kr_exit_info;

/* The payload of a KR_FAULT exit. */
typedef struct kr_fault {
	int32_t signo; /* SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT; SIGTRAP on aarch64 */
	int32_t code;  /* siginfo si_code */
	uint64_t addr; /* faulting address (si_addr) */
	uint64_t pc;   /* instruction pointer at the fault, if known */
	uint32_t stack_overflow; /* 1 if it hit the scheduler stack's guard */
	uint32_t pad;
} kr_fault;

/* A behaviour: called once per message, in order, with the process's state.
 * It must return; it must not block. state points at the bytes given to
 * kr_spawn (inline for up to 8 bytes) and stays valid for the process's life. */
typedef void (*kr_behaviour)(kr_ctx *ctx, void *state, const kr_msg *msg);

/* ---- configuration and the runtime ------------------------------------ */

typedef struct kr_config {
	/* Scheduler threads; 0 = one per core of the topology. */
	unsigned schedulers;
	/* One scheduler per PU (hardware thread) instead of per core. */
	int per_pu;
	/* Pin each scheduler thread to its core (default 1). Ignored for a
	 * synthetic or XML topology, whose cores are not this machine's. */
	int pin;
	/* NUMA-aware balancing (default 1): idle schedulers steal from the
	 * nearest victims first and from another node only when its backlog
	 * is worth the distance, and each scheduler thread's memory is bound
	 * to its NUMA node (on a real machine with more than one), so its
	 * allocations are node-local. A stolen process is not moved back to
	 * the node it was spawned on. 0: flat stealing (every scheduler in
	 * index order, no thresholds) and no memory binding, for comparison. */
	int numa;
	/* A synthetic hwloc description ("pack:2 numa:2 core:8 pu:2") or the
	 * path of an hwloc XML file. NULL: the KRILL_TOPOLOGY environment
	 * variable if set, else this machine. */
	const char *topology;
	/* Budget of a process run, in messages handled plus messages sent,
	 * before its scheduler moves on (256). */
	unsigned batch;
	/* Upper bound on live processes (pid space); 0 = 2^32 - 1. */
	uint64_t max_procs;
	/* Largest message payload in bytes (default 1 MiB, at most 2^31). */
	uint32_t max_msg;
	/* Microseconds an idle scheduler spins looking for work before it
	 * sleeps (default 50). */
	unsigned spin_us;
	/* Deterministic mode: all schedulers are stepped by one thread; run
	 * order, steal victims and timer firing follow a generator seeded by
	 * seed, so a run can be replayed exactly. Time is virtual. */
	int deterministic;
	uint64_t seed;
	/* Publish live stats in a shared-memory segment for krilltop and
	 * kr_stats_snapshot (default 1). */
	int stats;
	/* A ceiling on the memory the schedulers hold for processes,
	 * messages and timers, in bytes (0: none). Past it kr_spawn and
	 * kr_send return -ENOMEM instead of the kernel's OOM killer ending
	 * everything. Checked every 64 process runs, so a burst can pass it
	 * by what one scheduler allocates in that time. */
	uint64_t max_memory;
	/* A behaviour call running longer than this many milliseconds marks
	 * its scheduler stuck: idle schedulers are woken to take its queue,
	 * and KR_KILL (kr_send_exit, kr_rt_exit) interrupts the call and ends
	 * the process. 0: no watchdog. Default 1000. */
	unsigned watchdog_ms;
	/* Let a kernel thread poll each scheduler's io_uring submission queue
	 * (IORING_SETUP_SQPOLL): no system call to submit I/O, at the price
	 * of a polling kernel thread per scheduler while I/O is busy. 0. */
	int sqpoll;
} kr_config;

/* Fill c with the defaults. */
void kr_config_init(kr_config *c);

/* Create a runtime (schedulers not yet running). cfg may be NULL for the
 * defaults. -EINVAL: a bad field or topology description; -ENOENT: the
 * topology XML file does not exist; -ENOMEM. */
int kr_runtime_new(const kr_config *cfg, kr_runtime **out);

/* Start the scheduler threads and return. -EALREADY if started; -EINVAL in
 * deterministic mode (use kr_run); -EAGAIN if threads cannot be created. */
int kr_start(kr_runtime *rt);

/* Wait until the runtime stops: kr_stop was called or no process is left.
 * In deterministic mode this runs the schedulers on the calling thread.
 * Returns 0, or -EDEADLK when called from one of rt's schedulers. */
int kr_wait(kr_runtime *rt);

/* kr_start (unless started already) then kr_wait; in deterministic mode,
 * the run on this thread. */
int kr_run(kr_runtime *rt);

/* Ask the runtime to stop: schedulers finish the process run in progress
 * and exit. Any thread, including a process. Remaining processes are
 * discarded by kr_runtime_free. */
void kr_stop(kr_runtime *rt);

/* Free everything: processes, messages, timers, names. Must not be called
 * while the runtime runs (call kr_stop and kr_wait first). */
void kr_runtime_free(kr_runtime *rt);

/* Number of schedulers. */
unsigned kr_schedulers(const kr_runtime *rt);

/* Processes alive now (exact once the runtime has stopped). */
uint64_t kr_alive(const kr_runtime *rt);

/* ---- processes: from a behaviour --------------------------------------- */

/* The running process's pid and runtime. */
kr_pid kr_self(const kr_ctx *ctx);
kr_runtime *kr_runtime_of(const kr_ctx *ctx);

/* Spawn a process running b with a copy of len bytes of state (len may be
 * 0; up to 8 bytes are held inline at no extra cost). The new process
 * waits for its first message. -EINVAL: b NULL or state NULL with len > 0;
 * -EAGAIN: pid space exhausted (max_procs); -ENOMEM. */
int kr_spawn(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out);

/* Send a copy of len bytes to pid with a tag. Messages from one process to
 * another arrive in the order sent. Sending to a process that has exited is
 * not an error: the message is dropped (as in Erlang). -ESRCH: pid was never
 * issued; -EINVAL: tag >= KR_TAG_SYSTEM or data NULL with len > 0;
 * -EMSGSIZE: len > max_msg; -EAGAIN: pid's mailbox is full (see
 * kr_mailbox_limit); -ENOMEM: out of memory or past max_memory. */
int kr_send(kr_ctx *ctx, kr_pid to, uint32_t tag, const void *data, size_t len);

/* Zero-copy sends, for large payloads. kr_msg_buf reserves a message of
 * len bytes (16-byte aligned) for the caller to fill; kr_send_buf sends it
 * as it is, and the receiver's data are those bytes: no copy on the way.
 * A buffer is the caller's until it is sent or until the behaviour call
 * that reserved it returns (or faults), when an unsent one is freed; it
 * must not be touched after a successful send. kr_msg_buf: NULL if len >
 * max_msg, out of memory or past max_memory. kr_send_buf: as kr_send (a
 * send to an exited process frees the buffer and returns 0), and -EINVAL
 * if buf is not a buffer this call reserved and has not sent; on any
 * error the buffer stays the caller's, unchanged. */
void *kr_msg_buf(kr_ctx *ctx, size_t len);
int kr_send_buf(kr_ctx *ctx, kr_pid to, uint32_t tag, void *buf);

/* Handle later messages with b instead. Deferred messages are handed back
 * first (as kr_undefer). */
void kr_become(kr_ctx *ctx, kr_behaviour b);

/* End the process when this behaviour call returns. Its state, queued and
 * deferred messages, timers and registered name are freed; linked
 * processes get an exit signal and monitors a DOWN message with reason. */
void kr_exit(kr_ctx *ctx, uint32_t reason);
/* The same with up to KR_PAYLOAD_MAX bytes that travel with the reason.
 * -EINVAL: len too large or payload NULL with len > 0 (nothing changes). */
int kr_exit_with(kr_ctx *ctx, uint32_t reason, const void *payload, size_t len);

/* ---- links, monitors and exit signals (Erlang's semantics) ------------ */

/* Link the caller and pid, both ways: when either exits with an abnormal
 * reason the other gets an exit signal, which ends it with the same reason
 * unless it traps exits. Linking twice, or to self, is harmless.
 * -ESRCH: pid is not alive (nothing changes). */
int kr_link(kr_ctx *ctx, kr_pid pid);
/* Remove the link, both ways; harmless if there is none. */
int kr_unlink(kr_ctx *ctx, kr_pid pid);
/* kr_spawn and kr_link in one step: the child cannot exit unlinked. */
int kr_spawn_link(kr_ctx *ctx, kr_behaviour b, const void *state, size_t len, kr_pid *out);

/* Watch pid: when it exits, the caller gets one KR_TAG_DOWN message with
 * *ref and the reason. A pid that is not alive gives DOWN (KR_NOPROC) at
 * once. -ENOMEM. */
int kr_monitor(kr_ctx *ctx, kr_pid pid, uint64_t *ref);
/* Stop watching; no DOWN for ref is delivered afterwards, even one already
 * queued. -ENOENT: no such monitor (already fired or removed). */
int kr_demonitor(kr_ctx *ctx, uint64_t ref);

/* Trap exits (on != 0): exit signals arrive as KR_TAG_EXIT messages instead
 * of ending the process. KR_KILL still ends it. */
void kr_trap_exit(kr_ctx *ctx, int on);

/* Send an exit signal to pid, as Erlang's exit(Pid, Reason): KR_KILL ends
 * it with KR_KILLED whatever it traps; KR_NORMAL is ignored by a process
 * not trapping exits; other reasons end a process that does not trap
 * them. Sending to a dead pid is not an error. -ESRCH: never issued. */
int kr_send_exit(kr_ctx *ctx, kr_pid pid, uint32_t reason);
/* The same from any thread (the signal has no sender: pid 0). */
int kr_rt_exit(kr_runtime *rt, kr_pid pid, uint32_t reason);

/* Selective receive: keep the current message for later instead of
 * consuming it. Deferred messages keep their order and come back, ahead of
 * newer messages, at kr_undefer or kr_become. */
void kr_defer(kr_ctx *ctx);
void kr_undefer(kr_ctx *ctx);

/* If no message arrives within ms milliseconds, the behaviour gets a
 * KR_TAG_TIMEOUT message. Applies to the next message only: any delivery
 * disarms it; set it again to keep waiting. ms == 0 disarms. -ENOMEM. */
int kr_receive_timeout(kr_ctx *ctx, uint64_t ms);

/* Send a message to pid after ms milliseconds (a copy of data is taken
 * now). *out, if given, names the timer for kr_cancel_timer. Errors as
 * kr_send. */
int kr_send_after(kr_ctx *ctx, kr_pid to, uint64_t ms, uint32_t tag, const void *data,
		  size_t len, kr_timer *out);

/* Cancel a pending timer: its message will not be sent. Any process of the
 * runtime may cancel. -ENOENT: it has fired, was cancelled, or never was. */
int kr_cancel_timer(kr_ctx *ctx, kr_timer t);

/* ---- overload ------------------------------------------------------- */

/* Bound the caller's mailbox to max messages (0: unbounded, the default,
 * as in Erlang). A process that sends to a full mailbox gets -EAGAIN from
 * kr_send and nothing is queued. Signals never count; messages from timers
 * and foreign threads count but are never refused. -ENOMEM. */
int kr_mailbox_limit(kr_ctx *ctx, uint32_t max);

/* Ask to be sent a message tagged tag (no data) once pid's mailbox has
 * room again (below half its limit), at once if it has room now or pid
 * has exited. One message per request; nothing blocks, so processes that
 * send to each other in a cycle cannot deadlock. -EINVAL: tag >=
 * KR_TAG_SYSTEM; -ESRCH: pid never issued; -ENOMEM. */
int kr_notify_ready(kr_ctx *ctx, kr_pid pid, uint32_t tag);

/* ==== I/O: sockets and files on io_uring ==================================
 *
 * Each scheduler owns one io_uring ring; it also sleeps in that ring's wait.
 * A process asks for I/O and carries on; the result comes back later as an
 * ordinary message tagged KR_TAG_IO whose data is a kr_io_event (followed,
 * for a receive or a read, by the bytes). Nothing here blocks.
 *
 * A kr_handle names one open socket or file. It is owned by one process:
 * the one that opened, accepted or connected it, or the one it was given to
 * with kr_io_give (Erlang's controlling process). Only the owner may use
 * it, and its events go to the owner. When the owner exits, its handles are
 * closed, their pending operations cancelled and their buffers freed; no
 * event reaches a later process. Like a pid, a handle is a slot and a
 * generation: a closed or foreign one gives -EBADF.
 *
 * When the kernel has no io_uring (or it is disabled), the runtime still
 * runs (sleeping on a futex) and every call here returns -ENOSYS. Any
 * request may also fail with -EBUSY when the ring cannot take one now (its
 * submission queue full and the kernel refusing more): nothing was done;
 * retry later.
 */
typedef uint64_t kr_handle;

#define KR_TAG_IO 0xffff0004u

/* kr_io_event.op */
#define KR_IO_ACCEPT 1u   /* a connection: handle is the new socket, owned by
			   * the listener's owner; res < 0: accepting stopped */
#define KR_IO_CONNECT 2u  /* res 0: connected; < 0: failed (handle closed) */
#define KR_IO_RECV 3u     /* res > 0: that many bytes follow; 0: the peer
			   * closed; < 0: an error. UDP: addr is the sender */
#define KR_IO_SEND 4u     /* only when a send failed: res < 0; queued data
			   * is dropped */
#define KR_IO_WRITABLE 5u /* the send queue drained below half its bound
			   * after kr_io_send returned -EAGAIN */
#define KR_IO_OPEN 6u     /* res 0: handle is the file; < 0: failed */
#define KR_IO_READ 7u     /* res >= 0: bytes follow (0: end of file) */
#define KR_IO_WRITE 8u    /* res: bytes written, or < 0 */
#define KR_IO_FSYNC 9u    /* res 0 or < 0 */

typedef struct kr_io_event {
	uint32_t op;      /* KR_IO_* */
	int32_t res;      /* as above; a negative errno on failure */
	kr_handle handle; /* the socket or file it is about */
	uint64_t ref;     /* connect, open, read, write, fsync: the caller's ref */
	uint32_t len;     /* bytes in data (RECV, READ) */
	uint32_t addrlen; /* UDP RECV: bytes of addr used, else 0 */
	unsigned char addr[28]; /* UDP RECV: a sockaddr_in or sockaddr_in6 */
	uint32_t pad;
#ifndef __cplusplus
	unsigned char data[]; /* C only: see kr_msg */
#endif
} kr_io_event;

/* ev->data, in C and C++. */
static inline const unsigned char *kr_io_event_data(const kr_io_event *ev)
{
#ifdef __cplusplus
	return reinterpret_cast<const unsigned char *>(ev + 1);
#else
	return ev->data;
#endif
}

#if defined(__cplusplus) && __cplusplus >= 201103L
static_assert(sizeof(kr_io_event) == 64, "kr_io_event as C lays it out");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(kr_io_event) == 64 && offsetof(kr_io_event, data) == 64,
	       "data ends the struct");
#endif

/* Listen on TCP host:port (host: a numeric IPv4 or IPv6 address; NULL: any
 * address, IPv6 and IPv4). port 0 picks a free port (see kr_io_port).
 * SO_REUSEADDR is set. -EINVAL: bad host; -errno from socket, bind or
 * listen (-EADDRINUSE...); -EMFILE; -ENOMEM; -ENOSYS. */
int kr_io_listen(kr_ctx *ctx, const char *host, uint16_t port, int backlog, kr_handle *out);

/* Start accepting on a listening handle: every connection arrives as a
 * KR_IO_ACCEPT event until the handle is closed (multishot accept).
 * -EBADF; -EINVAL: not a listening socket; -EALREADY: already accepting. */
int kr_io_accept(kr_ctx *ctx, kr_handle listener);

/* Connect to TCP host:port (numeric address); the result comes as a
 * KR_IO_CONNECT event with ref and the new handle, which is also written
 * to *out at once (usable after the event says connected). -EINVAL: bad
 * host; -EMFILE; -ENOMEM; -ENOSYS. */
int kr_io_connect(kr_ctx *ctx, const char *host, uint16_t port, uint64_t ref, kr_handle *out);

/* Open a UDP socket bound to host:port (NULL, 0: any address, a free port). */
int kr_io_udp(kr_ctx *ctx, const char *host, uint16_t port, kr_handle *out);

/* Receive modes, as Erlang's {active, ...}: */
#define KR_IO_PASSIVE 0u /* stop receiving */
#define KR_IO_ONCE 1u    /* deliver the next data as one KR_IO_RECV event,
			  * then stop (flow control: ask again when ready) */
#define KR_IO_ACTIVE 2u  /* deliver data as it comes, until PASSIVE, the
			  * peer closes or an error; no flow control */
/* -EBADF; -EINVAL: bad mode or a listening socket or a file. */
int kr_io_recv(kr_ctx *ctx, kr_handle h, uint32_t mode);

/* Queue a copy of len bytes to send on a connected socket (UDP: the
 * address given to kr_io_sendto). Bytes are sent in the order queued. The
 * queue is bounded (KR_IO_SENDQ bytes queued; a single send larger than
 * the bound is accepted when the queue is empty): past it, -EAGAIN and
 * nothing is queued; a KR_IO_WRITABLE event follows once it has drained
 * below half. A failure is reported later as a KR_IO_SEND event.
 * -EBADF; -EPIPE: the socket was shut down for writing; -ENOMEM. */
#define KR_IO_SENDQ (1u << 20)
int kr_io_send(kr_ctx *ctx, kr_handle h, const void *data, size_t len);

/* Send one datagram on a UDP handle to addr (a struct sockaddr_in or
 * sockaddr_in6 of addrlen bytes). -EBADF; -EINVAL: bad address or not UDP;
 * -EAGAIN, -ENOMEM as kr_io_send. */
int kr_io_sendto(kr_ctx *ctx, kr_handle h, const void *addr, uint32_t addrlen, const void *data,
		 size_t len);

/* shutdown(2) a connected socket: how is SHUT_RD, SHUT_WR or SHUT_RDWR;
 * SHUT_WR takes effect once queued data is sent. -EBADF; -EINVAL. */
int kr_io_shutdown(kr_ctx *ctx, kr_handle h, int how);

/* Close a handle now: the handle stops working at once and no further
 * event about it is delivered; a pending receive or accept is cancelled,
 * while bytes already queued by kr_io_send are still sent before the
 * socket closes (as close(2) lets the kernel's buffer drain). The same
 * happens to every handle of a process that exits. -EBADF. */
int kr_io_close(kr_ctx *ctx, kr_handle h);

/* Make pid the owner of h (it gets h's events from now on, and h is closed
 * when pid exits). -EBADF; -ESRCH: pid is not alive. */
int kr_io_give(kr_ctx *ctx, kr_handle h, kr_pid pid);

/* The local port a socket is bound to, or -EBADF. */
int kr_io_port(kr_ctx *ctx, kr_handle h);

/* Files. open: flags and mode as open(2) (O_CLOEXEC is added); the result
 * is a KR_IO_OPEN event with ref and the handle. -EINVAL: path NULL;
 * -ENOMEM; -ENOSYS. */
int kr_io_open(kr_ctx *ctx, const char *path, int flags, uint32_t mode, uint64_t ref);
/* Read up to len bytes at offset (a KR_IO_READ event with the bytes).
 * -EBADF; -EMSGSIZE: len > max_msg. */
int kr_io_read(kr_ctx *ctx, kr_handle h, uint64_t offset, uint32_t len, uint64_t ref);
/* Write a copy of len bytes at offset (a KR_IO_WRITE event). */
int kr_io_write(kr_ctx *ctx, kr_handle h, uint64_t offset, const void *data, size_t len,
		uint64_t ref);
/* fsync (a KR_IO_FSYNC event). */
int kr_io_fsync(kr_ctx *ctx, kr_handle h, uint64_t ref);

/* ==== end of I/O ========================================================= */

/* ---- live stats: any thread --------------------------------------------- */

/* Copy a consistent snapshot of the runtime's stats segment into buf, laid
 * out as include/krill_stats.h describes (header, then one block per
 * scheduler). Returns the bytes written, kr_stats_size(kr_schedulers(rt)).
 * -ENOSPC: len too small; -ENODATA: stats are off (cfg.stats = 0) or the
 * segment could not be created; -EAGAIN: a writer kept it busy (retry). */
int kr_stats_snapshot(kr_runtime *rt, void *buf, size_t len);

/* ---- the name registry: any thread ----------------------------------- */

/* Names are at most KR_NAME_MAX bytes, NUL excluded. A process may hold
 * one name; names are removed when the process exits.
 * kr_register: -EEXIST name taken or pid already named; -ESRCH pid not
 * alive; -EINVAL name empty, too long or NULL; -ENOMEM. */
#define KR_NAME_MAX 63
int kr_register(kr_runtime *rt, const char *name, kr_pid pid);
/* The pid registered under name, or 0. */
kr_pid kr_whereis(kr_runtime *rt, const char *name);
/* -ENOENT if not registered. */
int kr_unregister(kr_runtime *rt, const char *name);

/* ---- processes: from any thread -------------------------------------- */

/* As kr_spawn and kr_send, for code that is not a process (before kr_start
 * too). Messages sent with kr_rt_send from one thread to one pid arrive in
 * the order sent. */
int kr_rt_spawn(kr_runtime *rt, kr_behaviour b, const void *state, size_t len, kr_pid *out);
int kr_rt_send(kr_runtime *rt, kr_pid to, uint32_t tag, const void *data, size_t len);

/* ==== supervisors ========================================================
 *
 * A supervisor (as OTP's) is a process like any other: it traps exits,
 * starts its children linked to it, and restarts them when they exit as
 * their restart type and its strategy say. Trees nest: a child may itself
 * be a supervisor (kr_sup_child). Everything here is written on the
 * public API above.
 *
 * Life of a supervisor:
 *   - Started by kr_sup_spawn (from a process, linked to it: its parent) or
 *     kr_rt_sup_spawn (from any thread: no parent). It starts its children
 *     in order, each with kr_spawn_link, when it handles its first message
 *     (the spawn functions send it one). If one cannot be started, those
 *     started are shut down and the supervisor exits with KR_SHUTDOWN and a
 *     kr_sup_report (KR_SUP_START_FAILED) as payload.
 *   - A child that exits is restarted or not as its restart type says; a
 *     restart restarts, by the strategy, the child alone (KR_ONE_FOR_ONE),
 *     every child (KR_ONE_FOR_ALL: the others are shut down first, in
 *     reverse start order, then all are started again in order) or the
 *     child and those started after it (KR_REST_FOR_ONE). A restarted child
 *     gets a new pid and keeps its place in the start order.
 *   - More than intensity restarts within period_ms (CLOCK_MONOTONIC) and
 *     the supervisor gives up: it shuts its children down and exits with
 *     KR_SHUTDOWN and a kr_sup_report (KR_SUP_INTENSITY) as payload; its own
 *     supervisor, if any, then decides.
 *   - Orderly shutdown: on an exit signal from its parent (any reason),
 *     from a thread (kr_rt_exit, any reason) or with reason KR_SHUTDOWN from
 *     anyone, it shuts its children down in reverse start order and exits
 *     with that reason. Shutting a child down means: send it a KR_SHUTDOWN
 *     exit signal, wait shutdown_ms for it to exit, then send KR_KILL
 *     (shutdown_ms 0: KR_KILL at once; KR_INFINITY: wait for ever, the right
 *     thing for a child that is a supervisor). Meanwhile other messages
 *     wait (kr_defer).
 *   - Messages a supervisor does not understand are dropped. A supervisor
 *     ended by KR_KILL (or a fault) still frees its bookkeeping: a helper
 *     process it spawns (one per supervisor, not among its children) sees
 *     to that. Nothing can when kr_stop or the end of a deterministic run
 *     discards a supervisor alive: its bookkeeping then leaks.
 *
 * Tags KR_TAG_SUP up to KR_TAG_SUP + 15 carry the supervisor's protocol.
 * They are ordinary tags (below KR_TAG_SYSTEM): do not send them to a
 * supervisor for anything else.
 */
#define KR_TAG_SUP 0xfffeff00u

/* Restart types. */
#define KR_PERMANENT 0u /* always restarted */
#define KR_TRANSIENT 1u /* restarted after an abnormal exit: not KR_NORMAL
			 * nor KR_SHUTDOWN */
#define KR_TEMPORARY 2u /* never restarted; forgotten when it exits */

/* Strategies. */
#define KR_ONE_FOR_ONE 0u
#define KR_ONE_FOR_ALL 1u
#define KR_REST_FOR_ONE 2u

/* shutdown_ms: wait for ever. */
#define KR_INFINITY UINT32_MAX

/* Child ids are at most KR_SUP_ID_MAX bytes, NUL excluded. */
#define KR_SUP_ID_MAX 31

/* How to start a child, and what to do when it exits. */
typedef struct kr_child_spec {
	/* Names the child (copied). For the children given at start: non-empty
	 * and unique among them. For kr_sup_start_child: anything, NULL too. */
	const char *id;
	/* The child's behaviour; it gets a copy of arg_len bytes of arg as its
	 * state at each (re)start (as kr_spawn). */
	kr_behaviour start;
	const void *arg;
	size_t arg_len;
	uint32_t restart;     /* KR_PERMANENT, KR_TRANSIENT or KR_TEMPORARY */
	uint32_t shutdown_ms; /* see above: 0 = kill at once; KR_INFINITY */
	/* Not 0: right after each (re)start the supervisor sends the child a
	 * message with this tag whose data is the supervisor's kr_pid, so the
	 * child can set itself up (announce itself, register a name...). 0:
	 * none (so tag 0 cannot be an init tag). Below KR_TAG_SYSTEM. */
	uint32_t init_tag;
	uint32_t pad; /* 0 */
} kr_child_spec;

typedef struct kr_sup_flags {
	uint32_t strategy;  /* KR_ONE_FOR_ONE, KR_ONE_FOR_ALL, KR_REST_FOR_ONE */
	uint32_t intensity; /* restarts allowed within period_ms */
	uint32_t period_ms; /* > 0 */
} kr_sup_flags;

/* Spawn a supervisor with flags and the children to start, in order; it is
 * linked to the caller, its parent (OTP's supervisor:start_link). Specs,
 * ids and args are copied: they need not outlive the call. The supervisor
 * starts its children when it runs. -EINVAL: flags or out NULL, a bad
 * strategy, period_ms 0, children NULL with n > 0, a spec with no start,
 * arg NULL with arg_len > 0, an id NULL, empty or longer than
 * KR_SUP_ID_MAX, a bad restart type, init_tag >= KR_TAG_SYSTEM; -EEXIST:
 * two children with one id; -ENOMEM; errors of kr_spawn_link and kr_send. */
int kr_sup_spawn(kr_ctx *ctx, const kr_sup_flags *flags, const kr_child_spec *children, size_t n,
		 kr_pid *out);
/* The same from any thread: the supervisor has no parent, and an exit
 * signal sent with kr_rt_exit shuts it down. Errors as kr_sup_spawn, with
 * those of kr_rt_spawn and kr_rt_send. */
int kr_rt_sup_spawn(kr_runtime *rt, const kr_sup_flags *flags, const kr_child_spec *children,
		    size_t n, kr_pid *out);

/* Fill *out with the spec of a child that is itself a supervisor with flags
 * and children (a nested tree): restart KR_PERMANENT and shutdown_ms
 * KR_INFINITY (change them in *out if need be). out->id is id itself (it is
 * copied when the spec is given to a supervisor); out->arg is allocated:
 * pass *out to kr_sup_spawn, kr_rt_sup_spawn, kr_sup_child or
 * kr_sup_start_child (which copy it), then free it with kr_sup_child_free.
 * Errors as kr_sup_spawn (id is checked as a static child's). */
int kr_sup_child(const char *id, const kr_sup_flags *flags, const kr_child_spec *children, size_t n,
		 kr_child_spec *out);
/* Free what kr_sup_child allocated in spec (NULL, or a spec it did not
 * fill with a supervisor, is left alone). */
void kr_sup_child_free(kr_child_spec *spec);

/* What kr_sup_start_child and kr_sup_terminate_child answer: data of the
 * caller's reply_tag message. */
typedef struct kr_sup_reply {
	int32_t rc;  /* 0, or a negative errno */
	uint32_t pad;
	kr_pid pid;  /* the child started, or terminated */
} kr_sup_reply;

/* Ask supervisor sup to start one more child (after the others in the start
 * order; typically KR_TEMPORARY, one per connection, say). The answer comes
 * later, as a message to the caller tagged reply_tag with a kr_sup_reply:
 * the new pid, or rc -ENOMEM/-EAGAIN if it could not be spawned. Such a
 * child is restarted as any other, and forgotten once it exits for good
 * (temporary, or transient with a normal exit) or is terminated. A
 * supervisor that is gone answers nothing: monitor it to be sure. Returns
 * what sending the request gave (as kr_send: -EMSGSIZE if arg_len is too
 * big for a message) or -EINVAL (spec checks as kr_sup_spawn, reply_tag
 * >= KR_TAG_SYSTEM). */
int kr_sup_start_child(kr_ctx *ctx, kr_pid sup, const kr_child_spec *spec, uint32_t reply_tag);

/* Ask sup to shut down its child pid (as in an orderly shutdown: with its
 * shutdown_ms) and not restart it. A child started by kr_sup_start_child,
 * or temporary, is forgotten; one given at start keeps its place, stopped
 * (pid 0), until a one_for_all or rest_for_one restart starts it again.
 * The answer is a kr_sup_reply tagged reply_tag: rc 0, or -ENOENT if pid is
 * not one of sup's running children. Returns as kr_send. */
int kr_sup_terminate_child(kr_ctx *ctx, kr_pid sup, kr_pid child, uint32_t reply_tag);

/* One child, as kr_sup_which_children reports it. */
#define KR_SUP_DYNAMIC 1u    /* started by kr_sup_start_child */
#define KR_SUP_SUPERVISOR 2u /* a nested supervisor (kr_sup_child) */
typedef struct kr_sup_child_info {
	char id[KR_SUP_ID_MAX + 1];
	kr_pid pid;       /* 0: stopped */
	uint32_t restart; /* KR_PERMANENT... */
	uint32_t flags;   /* KR_SUP_* */
} kr_sup_child_info;

/* The answer to kr_sup_which_children: n records follow the header. */
typedef struct kr_sup_children {
	uint32_t n;     /* records in this message */
	uint32_t total; /* children the supervisor has (n is less if the
			 * message would exceed max_msg) */
	uint64_t pad;
#ifndef __cplusplus
	kr_sup_child_info child[]; /* C only: see kr_msg */
#endif
} kr_sup_children;

/* c->child, in C and C++. */
static inline const kr_sup_child_info *kr_sup_children_child(const kr_sup_children *c)
{
#ifdef __cplusplus
	return reinterpret_cast<const kr_sup_child_info *>(c + 1);
#else
	return c->child;
#endif
}

#if defined(__cplusplus) && __cplusplus >= 201103L
static_assert(sizeof(kr_sup_children) == 16 && sizeof(kr_sup_child_info) == 48,
	      "kr_sup_children as C lays it out");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(kr_sup_children) == 16 && offsetof(kr_sup_children, child) == 16 &&
		       sizeof(kr_sup_child_info) == 48,
	       "child ends the struct");
#endif

/* Ask sup for its children, in start order: the answer is a message
 * tagged reply_tag with a kr_sup_children. Returns as kr_send. */
int kr_sup_which_children(kr_ctx *ctx, kr_pid sup, uint32_t reply_tag);

/* The payload of a supervisor's KR_SHUTDOWN exit when it gave up (none
 * when it was asked to shut down). */
#define KR_SUP_INTENSITY 1u    /* too many restarts */
#define KR_SUP_START_FAILED 2u /* a child could not be started */
typedef struct kr_sup_report {
	uint32_t cause; /* KR_SUP_* above */
	int32_t err;    /* KR_SUP_START_FAILED: the negative errno */
	char id[KR_SUP_ID_MAX + 1]; /* the child that exited or failed */
} kr_sup_report;

/* ==== end of supervisors ================================================= */

#ifdef __cplusplus
}
#endif
#endif
