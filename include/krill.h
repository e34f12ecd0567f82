/* krill — lightweight, isolated, message-passing processes for C.
 *
 * This header is the whole public API and its reference. Conventions (as in
 * liburing): functions returning int give >= 0 on success and a negative errno
 * value on failure; a failed call changes nothing. The library never exits,
 * and writes only through its log sink (kr_config.log and log_level: by
 * default one line to stderr for each crash nobody links to or monitors,
 * as Erlang's logger reports one; KR_LOG_NONE silences it) and one line
 * before a fatal fault outside any process ends the program (kr_start).
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
 * NULL for kr_runtime_of, kr_msg_buf, kr_alloc and kr_realloc, and nothing
 * done where it returns nothing (tests/test_api.c calls each one so).
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
/* Done; a linked process ignores it unless it traps exits (then it gets the KR_TAG_EXIT message, as
 * in Erlang) */
#define KR_NORMAL   0u
#define KR_SHUTDOWN 1u /* asked to stop (by a supervisor) */
#define KR_KILL     2u /* as a signal: ends the target, cannot be trapped */
#define KR_KILLED   3u /* the reason of a process ended by KR_KILL */
#define KR_NOPROC   4u /* in DOWN: the process did not exist */
#define KR_FAULT    5u /* a native fault; the payload is a kr_fault */
/* The node of a remote pid went away or could not be reached (include/krill_dist.h) */
#define KR_NOCONNECTION 6u
#define KR_REASON_USER  16u

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
	int32_t signo;           /* SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT; SIGTRAP on aarch64 */
	int32_t code;            /* siginfo si_code */
	uint64_t addr;           /* faulting address (si_addr) */
	uint64_t pc;             /* instruction pointer at the fault, if known */
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
	 * before its scheduler moves on (256). A process that still holds
	 * messages it took from its mailbox during the run, and has sent
	 * fewer than one message for four it handled, handles those on, up
	 * to 16 budgets in all: its senders' runs were charged for them,
	 * and a receiver of many senders keeps up with them. */
	unsigned batch;
	/* Upper bound on live processes (pid space); 0 = 2^32 - 1. */
	uint64_t max_procs;
	/* Largest message payload in bytes (default 1 MiB, at most 2^31). */
	uint32_t max_msg;
	/* Microseconds an idle scheduler spins looking for work before it
	 * sleeps (default 50). One with I/O in flight spins instead for as
	 * long as its sleeps lately ended soon (up to 200 us, none once
	 * traffic comes less often than that), and not at all for a while
	 * after the kernel switched a scheduler out to run another thread,
	 * or while its thread waited runnable more than a quarter of the
	 * last 25 ms (read from /proc/thread-self/schedstat, a descriptor
	 * each such scheduler keeps open): a completion then finds it awake,
	 * as Erlang's and Go's schedulers are, at the cost of the CPU the
	 * spin takes, which it gives way when another program wants it.
	 * 0: no spin at all. */
	unsigned spin_us;
	/* Microseconds of CPU each scheduler thread asks the kernel for at a
	 * time: its slice under EEVDF (sched_setattr's sched_runtime, Linux
	 * 6.12 or later; the kernel takes 100 to 100,000 and raises a shorter
	 * one to 100). Default 100, the least: the kernel lets a waking
	 * thread of a shorter slice preempt the running one, so a scheduler
	 * woken by I/O or by another scheduler takes its CPU from a CPU-bound
	 * thread at once, where with the kernel's default slice (0.7 ms times
	 * 1 + log2 of the CPUs: 1.4 ms on 2, 2.8 ms on 8) it could wait out
	 * the rest of that thread's. The thread's policy and nice value are
	 * kept; a thread whose policy is not SCHED_OTHER or SCHED_BATCH, or a
	 * kernel that refuses or ignores the request, is left as it is. 0:
	 * the kernel's default. More than 100,000: -EINVAL. */
	unsigned slice_us;
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
	/* What the runtime says, and where it goes. A line is passed on when
	 * its level is at or above log_level in severity (KR_LOG_ERROR is the
	 * most severe; KR_LOG_NONE: nothing is ever said, nowhere). Default
	 * KR_LOG_WARNING. Today the runtime says, at KR_LOG_ERROR:
	 *   - a crash report for each unobserved crash: a process with no link
	 *     and no monitor on it that ends with a reason other than
	 *     KR_NORMAL and KR_SHUTDOWN (a fault, KR_KILLED, a program's
	 *     reason), one line:
	 *       krill: process <IDX.GEN> (NAME) exited: REASON
	 *     "(NAME)" only if it was registered; IDX.GEN are the pid's slot
	 *     index and generation (pid & 0xffffffff, pid >> 32); REASON is
	 *     normal, shutdown, killed, noproc, "reason N" for others, or for
	 *     KR_FAULT "fault SIGSEGV at 0xADDR, pc 0xPC" (", stack overflow"
	 *     after it when it was one). A link or monitor still on its way
	 *     when the process ends is not counted: its DOWN or exit signal
	 *     arrives all the same.
	 *   - a fault inside an exit hook (kr_on_exit):
	 *       krill: process <IDX.GEN> exit hook faulted: SIGSEGV at 0xADDR
	 *   - a fatal fault outside any process on a scheduler thread, the
	 *     last line before the program dies:
	 *       krill: fatal fault outside any process: signal N at address
	 *       0xADDR, pc 0xPC (in scheduler code)
	 * log: called with each line (no newline at the end), on the thread
	 * where it happened (a scheduler, or the thread in kr_runtime_free),
	 * with no krill lock held and arg = log_arg. It must return, must not
	 * call kr_* functions that take a ctx, and should be quick: the
	 * scheduler waits for it. NULL (the default): each line and a newline
	 * are written to stderr (file descriptor 2) with one write(2).
	 * The fatal-fault line is said from inside a signal handler: it goes
	 * to log only if log_signal_safe is set (then log must be
	 * async-signal-safe, as write(2) is and printf is not), else to
	 * stderr with write(2) as the default does. A fatal fault on a thread
	 * that is no scheduler's knows no runtime: its line always goes to
	 * stderr. */
	int log_level;
	void (*log)(void *arg, int level, const char *line);
	void *log_arg;
	int log_signal_safe;
} kr_config;

/* Log levels (kr_config.log_level, and the level a line is passed with),
 * most severe first. */
#define KR_LOG_NONE    (-1)
#define KR_LOG_ERROR   0
#define KR_LOG_WARNING 1
#define KR_LOG_INFO    2
#define KR_LOG_DEBUG   3

/* Fill c with the defaults. */
void kr_config_init(kr_config *c);

/* Create a runtime (schedulers not yet running). cfg may be NULL for the
 * defaults. -EINVAL: a bad field or topology description; -ENOENT: the
 * topology XML file does not exist; -ENOMEM. */
int kr_runtime_new(const kr_config *cfg, kr_runtime **out);

/* Start the scheduler threads and return. -EALREADY if started; -EINVAL in
 * deterministic mode (use kr_run); -EAGAIN if threads cannot be created.
 *
 * From kr_start (or kr_run) to the end of kr_wait, krill handles SIGSEGV,
 * SIGBUS, SIGFPE, SIGILL and SIGABRT (and SIGTRAP on aarch64). Raised in a
 * behaviour, one ends that process alone (KR_FAULT). Raised anywhere else
 * (the runtime, another thread) it is fatal: a handler installed before
 * kr_start gets it; with none, krill writes one line to stderr (fd 2),
 *   krill: fatal fault outside any process: signal N at address 0x..., pc
 *   0x... (in scheduler code)      [or: (not a scheduler thread)]
 * (not for SIGABRT), just before the program dies of the signal (through
 * the log sink when it is marked log_signal_safe). */
int kr_start(kr_runtime *rt);

/* Wait until the runtime stops: kr_stop was called, or no process is left
 * while kr_wait waits. Before anyone waits an empty runtime just sleeps, so
 * a program may kr_start and spawn afterwards; a kr_rt_spawn racing the
 * moment a waited-for runtime finds itself empty either is counted in time
 * or gets -ESHUTDOWN, never a process that will not run.
 * In deterministic mode this runs the schedulers on the calling thread.
 * Returns 0 (at once if it has stopped already); -EDEADLK when called from
 * one of rt's schedulers; -EINVAL if it was never started (kr_start or
 * kr_run; in deterministic mode kr_wait itself is the run). */
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
 * -EAGAIN: pid space exhausted (max_procs), or slots of processes that
 * exited a moment ago not back yet (see kr_rt_spawn); -ENOMEM. */
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

/* ==== stackful processes: a function run top to bottom ====================
 *
 * kr_spawn_fn starts a process that runs fn(ctx, arg) from top to bottom,
 * and that may block in the middle of it: kr_receive, kr_sleep and kr_call
 * block the process (its scheduler runs others meanwhile), never the
 * thread. It is a process like any other (same pid, messages, links,
 * monitors, exit signals, timers, names, I/O, stealing); underneath, its
 * behaviour is a trampoline that switches to its stack when a message it
 * waits for arrives. It ends when fn returns (reason KR_NORMAL), when fn
 * calls kr_exit or kr_exit_with (at its next blocking call, which then does
 * not return, or when fn returns), or as any process ends (an exit signal,
 * KR_KILL, a native fault: KR_FAULT with a kr_fault, a stack overflow
 * included). arg points at a copy of the len bytes given to the spawn,
 * 16-byte aligned, valid for the process's life. ctx is the process's own
 * for its whole life (it may be used after a blocking call).
 *
 * Stacks. By default a process runs on one of its scheduler's shared run
 * stacks (256 KiB each): the part of the stack it uses is kept in an
 * allocation of that size while it is blocked (copied out when another
 * process needs that run stack), and copied back when it runs again, so an
 * idle process costs what its stack holds at the blocking call (hundreds of
 * bytes), not a stack. Rules of that mode:
 *   - Pointers into the stack stay inside the process: processes share no
 *     memory, so nothing else may hold one (do not send one, do not keep
 *     one in a structure another thread reads).
 *   - A process is copied back to the same addresses it was copied from,
 *     so its pointers to its own locals stay valid across a blocking call.
 *     To that end it keeps, for its life, the run stack it first ran on (a
 *     scheduler's): when another scheduler runs it (it was stolen) it runs
 *     on that same run stack. If another process is running there, the
 *     process waits (its messages stay queued, in order) and that
 *     scheduler runs others meanwhile; it resumes when the run stack is
 *     free, usually on its first scheduler.
 *   - More than 256 KiB of stack ends the process with KR_FAULT
 *     (stack_overflow 1): a guard page.
 * With kr_fn_opts.stack a process has a stack of its own instead (mmap,
 * the size rounded up to pages, a guard page below): nothing is copied,
 * any scheduler runs it at once, recursion may go as deep as the size
 * allows; it costs that mapping (the pages it touched) while it lives.
 *
 * From a function process, kr_defer, kr_undefer, kr_become and
 * kr_receive_timeout must not be called (kr_receive does their work). A
 * buffer from kr_msg_buf must be sent before the next blocking call, which
 * frees an unsent one. A fault or a runaway is contained as a behaviour's
 * is (the watchdog sees a process that does not block as a call that does
 * not return). The floating-point environment (rounding mode, exception
 * masks: fesetround, fesetenv) is the scheduler thread's and is not
 * switched with the stack: a process that changes it must restore it
 * before it blocks, as a behaviour must before it returns.
 */
typedef void (*kr_fn)(kr_ctx *ctx, void *arg);

typedef struct kr_fn_opts {
	/* 0: the shared run stack (the default, above). Else a stack of its
	 * own of this many bytes (rounded up to pages; at least 16 KiB). */
	size_t stack;
	/* kr_spawn_fn_opts only: link to the caller, as kr_spawn_fn_link. */
	int link;
	int pad;
} kr_fn_opts;

/* Spawn a process running fn(ctx, copy of arg) at once. -EINVAL: fn or out
 * NULL, arg NULL with len > 0, opts->stack too large (> 1 GiB); -EAGAIN:
 * pid space exhausted; -ENOMEM (its own stack, too: mmap failed). */
int kr_spawn_fn(kr_ctx *ctx, kr_fn fn, const void *arg, size_t len, kr_pid *out);
/* The same, linked to the caller (as kr_spawn_link). */
int kr_spawn_fn_link(kr_ctx *ctx, kr_fn fn, const void *arg, size_t len, kr_pid *out);
/* The same with options (opts NULL: the defaults). */
int kr_spawn_fn_opts(kr_ctx *ctx, kr_fn fn, const void *arg, size_t len, const kr_fn_opts *opts,
		     kr_pid *out);
/* From any thread (as kr_rt_spawn); opts->link is refused (-EINVAL). */
int kr_rt_spawn_fn(kr_runtime *rt, kr_fn fn, const void *arg, size_t len, kr_pid *out);
int kr_rt_spawn_fn_opts(kr_runtime *rt, kr_fn fn, const void *arg, size_t len,
			const kr_fn_opts *opts, kr_pid *out);

/* A receive's test: nonzero takes msg. */
typedef int (*kr_match)(const kr_msg *msg, void *arg);

/* Block until a message match(msg, arg) accepts (match NULL: any) and set
 * *msg to it. Selective receive, as Erlang's: messages match refuses stay,
 * in order, ahead of later ones, for the next receive, which looks at
 * them again first. match runs on the scheduler's stack, for each message
 * a receive looks at, and may be asked again about the same message (as
 * when the process waited for its run stack): it must give the same
 * answer each time. It must not call kr_* functions, and arg
 * must not point into the process's own stack (on the shared run stack the
 * process's frames are elsewhere while it waits: pass a value, or a
 * pointer to memory outside the stack). The message
 * is the process's until its next blocking call (kr_receive, kr_sleep,
 * kr_call), which frees it. System messages come as to a behaviour
 * (KR_TAG_EXIT when trapping, KR_TAG_DOWN, KR_TAG_IO), except KR_TAG_REPLY
 * (kr_call's alone) and KR_TAG_TIMEOUT (a receive's own).
 * timeout_ms: 0 polls (looks at what the mailbox holds now, blocks for
 * nothing), KR_INFINITY waits for ever, else at most that many
 * milliseconds. Returns 0; -ETIMEDOUT: nothing matched in time (*msg not
 * set); -EINVAL: msg NULL; -ENOMEM; -EPERM: the caller is not a function
 * process (a behaviour cannot block). */
int kr_receive(kr_ctx *ctx, kr_match match, void *arg, uint32_t timeout_ms, const kr_msg **msg);

/* Block for ms milliseconds (KR_INFINITY: for ever); messages that come
 * meanwhile wait for a later receive. 0; -ENOMEM; -EPERM (as kr_receive). */
int kr_sleep(kr_ctx *ctx, uint32_t ms);

/* A reply to kr_call, to the caller alone: its data are the bytes given to
 * kr_reply. */
#define KR_TAG_REPLY 0xffff0005u

/* What a kr_call request carries: a kr_call_hdr, then the request. */
typedef struct kr_call_hdr {
	kr_pid from;  /* the caller */
	uint64_t ref; /* the call */
} kr_call_hdr;

/* The request bytes of a call message, and their number. */
static inline const void *kr_call_data(const kr_msg *m)
{
	return kr_msg_data(m) + sizeof(kr_call_hdr);
}
static inline size_t kr_call_len(const kr_msg *m)
{
	return m->len >= sizeof(kr_call_hdr) ? m->len - sizeof(kr_call_hdr) : 0;
}

/* A synchronous request, as gen_server:call: monitor pid, send it a
 * message tagged tag whose data is a kr_call_hdr followed by the len bytes
 * of req, and block until pid answers with kr_reply, pid exits, or
 * timeout_ms passes (KR_INFINITY: no limit). 0: *reply is the answer
 * (KR_TAG_REPLY, the replied bytes), the caller's until its next blocking
 * call. -ESRCH: pid exited before answering, or was not alive (*reply is
 * then the KR_TAG_DOWN message, whose kr_exit_info gives the reason,
 * KR_NOPROC if it was not alive); -ETIMEDOUT: no answer in time (*reply
 * not set; a later answer is dropped, never received); -EINVAL: tag >=
 * KR_TAG_SYSTEM, reply NULL, req NULL with len > 0; -EMSGSIZE; -ENOMEM;
 * -EAGAIN: pid's mailbox is full; -EPERM: not a function process. The
 * monitor is gone when kr_call returns, whatever it returns. */
int kr_call(kr_ctx *ctx, kr_pid pid, uint32_t tag, const void *req, size_t len, uint32_t timeout_ms,
	    const kr_msg **reply);

/* Answer the call request req (a message kr_call sent: its data start with
 * a kr_call_hdr) with a copy of len bytes. From any process, a behaviour
 * or a function. A caller that has given up or gone drops it; 0 then too.
 * -EINVAL: req NULL or shorter than a kr_call_hdr, data NULL with len > 0;
 * -EMSGSIZE: len > max_msg; -ENOMEM. */
int kr_reply(kr_ctx *ctx, const kr_msg *req, const void *data, size_t len);

/* ==== end of stackful processes ========================================== */

/* ---- links, monitors and exit signals (Erlang's semantics) ------------ */

/* Link the caller and pid, both ways: when either exits the other gets an
 * exit signal with the reason. An abnormal reason ends it with the same
 * reason unless it traps exits; KR_NORMAL is ignored unless it traps
 * exits; a process trapping exits gets either as a KR_TAG_EXIT message.
 * Linking twice, or to self, is harmless. -ESRCH: pid is not alive
 * (nothing changes). */
int kr_link(kr_ctx *ctx, kr_pid pid);
/* Remove the link, both ways; harmless if there is none. -ENOMEM: nothing
 * changes (the link stays). */
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
/* The same from any thread (the signal has no sender: pid 0); and
 * -ESHUTDOWN as kr_rt_send. */
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
int kr_send_after(kr_ctx *ctx, kr_pid to, uint64_t ms, uint32_t tag, const void *data, size_t len,
		  kr_timer *out);

/* Cancel a pending timer: its message will not be sent. Any process of the
 * runtime may cancel. -ENOENT: it has fired, was cancelled, or never was. */
int kr_cancel_timer(kr_ctx *ctx, kr_timer t);

/* ---- memory a process owns, and its exit hooks ------------------------ */

/* Memory the calling process owns, as a BEAM process owns its heap: freed
 * when the process ends, however it ends (kr_exit, a fault, KR_KILL, an
 * exit signal, or kr_runtime_free discarding it alive), so a crash leaks
 * none of it. Memory the program gets elsewhere (malloc) and keeps only in
 * a process's state is lost when the process dies of a fault or a kill;
 * kr_alloc it instead, or free it in an exit hook.
 *
 * kr_alloc: len bytes, 16-byte aligned, uninitialised; len 0 gives a
 * unique block of no bytes. Each block costs 32 bytes more, and the first
 * kr_alloc or kr_on_exit of a process about 150 bytes once. NULL: ctx
 * NULL, out of memory or past max_memory (the ceiling counts this memory).
 * The block is the process's: another process may read it if handed the
 * pointer, at its own risk (it goes when the owner ends), but only the
 * owner may resize or free it. Any scheduler may run the owner, and any
 * may free the block: a process moved to another scheduler frees there.
 *
 * kr_realloc: as realloc(3): p NULL is kr_alloc; else a block of len bytes
 * holding p's first min(len, old length) bytes (p is then freed), or NULL
 * with p left as it was (out of memory, or p not the caller's block).
 *
 * kr_free: give a block back before the end. p NULL: nothing, 0. -EINVAL:
 * ctx NULL, or p is not a live block of the calling process, as far as a
 * check word in the 32 bytes before p tells: another process's block, a
 * pointer into a block, a pointer into the caller's own data are caught,
 * and nothing changes. Those 32 bytes are read, so any other pointer (one
 * from malloc, a block already freed) is undefined behaviour: usually
 * caught too, but reported by AddressSanitizer as the bug it is. */
void *kr_alloc(kr_ctx *ctx, size_t len);
void *kr_realloc(kr_ctx *ctx, void *p, size_t len);
int kr_free(kr_ctx *ctx, void *p);

/* An exit hook: called once when the process that registered it ends,
 * however it ends (as kr_alloc's memory is freed), with arg and what the
 * process's links and monitors are told: info->pid, info->reason
 * (KR_SHUTDOWN when kr_runtime_free discards it alive), info->len bytes
 * of payload (a kr_fault for KR_FAULT); info->ref is 0. */
typedef void (*kr_exit_hook)(void *arg, const kr_exit_info *info);

/* Run fn(arg, info) when the calling process ends. Hooks run newest
 * first, each registration once, on the thread that ends the process (its
 * scheduler, or the thread in kr_runtime_free), after the process is dead
 * (kr_whereis no longer names it, sends to it are dropped, its I/O
 * handles are closed) but before its links and monitors are told and
 * before its state and the memory it kr_alloc'ed are freed: the hook may
 * read them (pass the state, or a block, as arg) and release what they
 * hold outside krill (malloc'ed memory, a file, a lock's other side).
 * A hook has no ctx. Of the kr_* calls it may make only these, which any
 * thread may: kr_rt_send, kr_rt_exit, kr_whereis, kr_register,
 * kr_unregister, kr_alive, kr_stop (not kr_rt_spawn, kr_wait,
 * kr_runtime_free, nor any that takes a ctx); in kr_runtime_free what it
 * sends is discarded. It must return and should be quick. A fault in a
 * hook ends that hook alone: it is reported (kr_config.log) and the next
 * hook runs. -EINVAL: ctx or fn NULL; -ENOMEM (nothing registered). */
int kr_on_exit(kr_ctx *ctx, kr_exit_hook fn, void *arg);

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
 * runs (sleeping on a futex) and every call here that opens a socket or a
 * file returns -ENOSYS (the others -EBADF: no handle can exist). Any
 * request may also fail with -EBUSY when the ring cannot take one now (its
 * submission queue full and the kernel refusing more): nothing was done;
 * retry later.
 */
typedef uint64_t kr_handle;

#define KR_TAG_IO 0xffff0004u

/* kr_io_event.op */
/* A connection: handle is the new socket, owned by the listener's owner, ref the listener; res < 0:
 * accepting stopped (handle: the listener) */
#define KR_IO_ACCEPT  1u
#define KR_IO_CONNECT 2u /* res 0: connected; < 0: failed (handle closed) */
/* res > 0: that many bytes follow; 0: the peer closed; < 0: an error. UDP: addr is the sender */
#define KR_IO_RECV 3u
#define KR_IO_SEND 4u /* only when a send failed: res < 0; queued data is dropped */
/* The send queue drained below half its bound after kr_io_send returned -EAGAIN */
#define KR_IO_WRITABLE 5u
#define KR_IO_OPEN     6u /* res 0: handle is the file; < 0: failed */
#define KR_IO_READ     7u /* res >= 0: bytes follow (0: end of file) */
#define KR_IO_WRITE    8u /* res: bytes written, or < 0 */
#define KR_IO_FSYNC    9u /* res 0 or < 0 */

typedef struct kr_io_event {
	uint32_t op;            /* KR_IO_* */
	int32_t res;            /* as above; a negative errno on failure */
	kr_handle handle;       /* the socket or file it is about */
	uint64_t ref;           /* connect, open, read, write, fsync: the caller's ref;
				 * accept: the listener */
	uint32_t len;           /* bytes in data (RECV, READ) */
	uint32_t addrlen;       /* UDP RECV: bytes of addr used, else 0 */
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

/* Open a UDP socket bound to host:port (NULL, 0: any address, a free port).
 * -EINVAL: out NULL or bad host; -errno from socket or bind (-EADDRINUSE...);
 * -EMFILE; -ENOMEM; -ENOSYS. */
int kr_io_udp(kr_ctx *ctx, const char *host, uint16_t port, kr_handle *out);

/* Receive modes, as Erlang's {active, ...}: */
#define KR_IO_PASSIVE 0u /* stop receiving */
/* Deliver the next data as one KR_IO_RECV event, then stop (flow control: ask again when ready) */
#define KR_IO_ONCE 1u
/* Deliver data as it comes, until PASSIVE, the peer closes or an error; nothing to ask again (the
 * next receive is made as the process takes an event, on the scheduler then running it, so a
 * socket's bytes wait in the kernel, not in a mailbox, while it is behind) */
#define KR_IO_ACTIVE 2u
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
 * -EBADF; -EINVAL: h is not a file; -EMSGSIZE: len > max_msg; -ENOMEM. */
int kr_io_read(kr_ctx *ctx, kr_handle h, uint64_t offset, uint32_t len, uint64_t ref);
/* Write a copy of len bytes at offset (a KR_IO_WRITE event). -EBADF;
 * -EINVAL: data NULL with len > 0, or h is not a file; -EMSGSIZE: len >
 * max_msg; -ENOMEM. */
int kr_io_write(kr_ctx *ctx, kr_handle h, uint64_t offset, const void *data, size_t len,
		uint64_t ref);
/* fsync (a KR_IO_FSYNC event). -EBADF; -EINVAL: h is not a file; -ENOMEM. */
int kr_io_fsync(kr_ctx *ctx, kr_handle h, uint64_t ref);

/* ---- the same, blocking: for function processes (kr_spawn_fn) ----------
 *
 * Each issues the request above and waits, in kr_receive, for its event
 * (by handle, op and a reference of its own), so the process reads as
 * straight-line code. Other messages that come meanwhile stay queued, in
 * order, for later receives (selective receive). timeout_ms as kr_receive's
 * (KR_INFINITY: no limit; 0: only what has come already). An event some of
 * these return (*ev) is the process's until its next blocking call.
 * Every one returns -EPERM from a behaviour (it cannot block), -ETIMEDOUT
 * when the time passes, and -ENOMEM, besides the errors listed and those
 * of the request it issues.
 *
 * The references of kr_io_connect_wait, kr_io_open_wait, kr_io_read_wait,
 * kr_io_write_wait and kr_io_fsync_wait are in [KR_IO_WAIT_REF, 2^64): a
 * function process must not give kr_io_* such a ref itself. A late event
 * of a wait that timed out is dropped, never received (a file opened too
 * late is closed). */
#define KR_IO_WAIT_REF (1ull << 63)

/* Connect; 0 and *out the connected handle. The connect's error (its
 * handle closed); -ETIMEDOUT (the handle is closed). */
int kr_io_connect_wait(kr_ctx *ctx, const char *host, uint16_t port, uint32_t timeout_ms,
		       kr_handle *out);
/* The next connection on a listener (accepting is started if it was not:
 * see kr_io_accept); 0 and *out its handle. A connection that comes after
 * a timeout waits in the mailbox for the next call. The accept's error
 * (accepting stopped). -EINVAL: out NULL. */
int kr_io_accept_wait(kr_ctx *ctx, kr_handle listener, uint32_t timeout_ms, kr_handle *out);
/* Receive once (KR_IO_ONCE) and wait for the bytes: the event's res, > 0
 * bytes in kr_io_event_data(*ev), 0 the peer closed, < 0 an error (*ev
 * is set whenever the event came). After a timeout the handle is passive
 * again and bytes that come are kept for the next receive (nothing is
 * lost). -EINVAL: ev NULL. */
int kr_io_recv_wait(kr_ctx *ctx, kr_handle h, uint32_t timeout_ms, const kr_io_event **ev);
/* Queue len bytes as kr_io_send, waiting while the send queue is full
 * (instead of -EAGAIN) for its KR_IO_WRITABLE: 0 once all is queued
 * (not yet sent: a later failure still comes as a KR_IO_SEND event); the
 * send's error; -ETIMEDOUT: nothing was queued. */
int kr_io_send_wait(kr_ctx *ctx, kr_handle h, const void *data, size_t len, uint32_t timeout_ms);
/* Open a file; 0 and *out its handle, or the open's error. -EINVAL: out
 * NULL. */
int kr_io_open_wait(kr_ctx *ctx, const char *path, int flags, uint32_t mode, uint32_t timeout_ms,
		    kr_handle *out);
/* Read at offset: the event's res (bytes in kr_io_event_data(*ev), 0 at
 * the end of the file) or the read's error (*ev is set whenever the event
 * came). -EINVAL: ev NULL. */
int kr_io_read_wait(kr_ctx *ctx, kr_handle h, uint64_t offset, uint32_t len, uint32_t timeout_ms,
		    const kr_io_event **ev);
/* Write at offset: bytes written, or the write's error. */
int kr_io_write_wait(kr_ctx *ctx, kr_handle h, uint64_t offset, const void *data, size_t len,
		     uint32_t timeout_ms);
/* fsync: 0 or its error. */
int kr_io_fsync_wait(kr_ctx *ctx, kr_handle h, uint32_t timeout_ms);

/* ==== end of I/O ========================================================= */

/* ---- live stats: any thread --------------------------------------------- */

/* Copy a consistent snapshot of the runtime's stats segment into buf, laid
 * out as include/krill_stats.h describes (header, then one block and one
 * top table per scheduler, then the names table). Returns the bytes written,
 * kr_stats_size(kr_schedulers(rt)). -ENOSPC: len too small; -ENODATA: stats are off (cfg.stats = 0)
 * or the segment could not be created; -EAGAIN: a writer kept it busy (retry). */
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
/* -ENOENT: not registered; -EINVAL: name empty, too long or NULL (as
 * kr_register: a name that cannot be registered). */
int kr_unregister(kr_runtime *rt, const char *name);

/* ---- processes: from any thread -------------------------------------- */

/* As kr_spawn and kr_send, for code that is not a process (before kr_start
 * too: the process runs, the message is delivered, once it starts).
 * Messages sent with kr_rt_send from one thread to one pid arrive in the
 * order sent. Errors as kr_spawn and kr_send, and -ESHUTDOWN: the runtime
 * is stopping or has stopped (kr_stop was called, no process was left, or
 * the deterministic run is over), so the process would never run or the
 * message never arrive (-EINVAL is kept for bad arguments).
 *
 * -EAGAIN from kr_rt_spawn: an exited process's slot waits a moment with
 * the scheduler that ran it (until no sender can still hold its address,
 * then in that scheduler's cache) before another spawn can take it. When
 * kr_rt_spawn from a thread finds every slot taken, it asks each scheduler
 * to hand back what it holds and waits for the answers (at once from an
 * idle scheduler, at its next pause between processes from a busy one; at
 * most a second in all, for one stuck in a long behaviour call). So from a
 * thread -EAGAIN means max_procs processes were alive, or just exiting.
 * Called in a behaviour it does not wait (nor does kr_spawn): -EAGAIN may
 * then also mean slots are on their way back, and a later spawn (at the
 * next message, say) gets them. */
int kr_rt_spawn(kr_runtime *rt, kr_behaviour b, const void *state, size_t len, kr_pid *out);
int kr_rt_send(kr_runtime *rt, kr_pid to, uint32_t tag, const void *data, size_t len);

/* ---- process info: any thread ----------------------------------------
 *
 * What a process holds and does, as Erlang's process_info. Which fields
 * are exact depends on who asks, because most of a process is its owner's
 * (the scheduler running it) and is freed at its exit without waiting for
 * readers:
 *   - the process itself (pid is the caller's kr_self), or any caller while
 *     no scheduler runs (before kr_start, after kr_wait, or on the driver
 *     thread of a deterministic runtime): every field exact, flags holds
 *     KR_INFO_EXACT | KR_INFO_MAILBOX | KR_INFO_SIDE;
 *   - anyone else, while the runtime runs: a snapshot of what can be read
 *     without touching memory the process may free meanwhile: alive, name
 *     and sched as of the call (racy: they may change before it returns);
 *     mailbox is 1 if messages wait, else 0 (KR_INFO_MAILBOX clear);
 *     memory counts the slot alone; links, monitors, monitored_by and
 *     handled are 0 (KR_INFO_SIDE clear). For live figures of the busiest
 *     processes, see the stats segment's top tables (krill_stats.h,
 *     krilltop --top). */
#define KR_INFO_EXACT   1u /* every field exact (see above) */
#define KR_INFO_MAILBOX 2u /* mailbox is a count; else 1 if messages wait, else 0 */
#define KR_INFO_SIDE    4u /* links, monitors, monitored_by and handled were read */

typedef struct kr_proc_info {
	uint32_t size;  /* in: sizeof(kr_proc_info), for growth; fields past it are not written */
	uint32_t flags; /* out: KR_INFO_* */
	kr_pid pid;
	int alive;                  /* 1 alive, 0 exited */
	int sched;                  /* the scheduler running it now, or -1 (idle or queued) */
	char name[KR_NAME_MAX + 1]; /* its registered name, or "" */
	uint64_t mailbox;           /* messages waiting: taken or not, deferred included */
	/* Bytes it holds: its slot, state, side record and that record's
	 * tables, and the messages waiting. */
	uint64_t memory;
	uint32_t links;        /* processes linked to it */
	uint32_t monitors;     /* processes it monitors */
	uint32_t monitored_by; /* processes monitoring it */
	uint32_t reserved;
	/* Messages handled, counted in the process's side record from when
	 * it got one (its first link, monitor, receive timeout, deferral or
	 * mailbox limit; the message during which it got it included), so
	 * that a plain process pays nothing for it: 0 for a process without. */
	uint64_t handled;
} kr_proc_info;

/* Fill info (info->size set by the caller) for pid. 0: info filled (alive
 * says whether it lives; an exited process has only pid and alive = 0);
 * -ESRCH: pid was never issued; -EINVAL: rt or info NULL, or info->size
 * smaller than the first version's (offsetof handled + 8). */
int kr_process_info(kr_runtime *rt, kr_pid pid, kr_proc_info *info);

/* Walk the live processes: start with *cursor = 0 and call until it
 * returns 0; each call that returns 1 stores the next live pid in *pid (in
 * slot order). Safe while processes spawn and exit: one that exits during
 * the walk may still be returned (a later call on it sees it dead); one
 * spawned during it may or may not be. -EINVAL: a NULL argument. */
int kr_process_next(kr_runtime *rt, uint64_t *cursor, kr_pid *pid);

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
#define KR_TRANSIENT 1u /* restarted after an abnormal exit: not KR_NORMAL nor KR_SHUTDOWN */
#define KR_TEMPORARY 2u /* never restarted; forgotten when it exits */

/* Strategies. */
#define KR_ONE_FOR_ONE  0u
#define KR_ONE_FOR_ALL  1u
#define KR_REST_FOR_ONE 2u

/* shutdown_ms: wait for ever. */
#define KR_INFINITY UINT32_MAX

/* Child ids are at most KR_SUP_ID_MAX bytes, NUL excluded. */
#define KR_SUP_ID_MAX 31

/* How to start a child, and what to do when it exits. */
typedef struct kr_child_spec {
	/* Names the child (copied). At most KR_SUP_ID_MAX bytes (longer:
	 * -EINVAL). For the children given at start: non-empty and unique
	 * among them. For kr_sup_start_child: NULL or empty too, and need not
	 * be unique. */
	const char *id;
	/* The child's behaviour; it gets a copy of arg_len bytes of arg as its
	 * state at each (re)start (as kr_spawn). NULL when fn is set. */
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
	/* Instead of start (exactly one of the two is set): the child is a
	 * function process, kr_spawn_fn's, run with a copy of arg at each
	 * (re)start and restarted as any child. stack: its kr_fn_opts.stack
	 * (0: the shared run stack; not 0 with start: -EINVAL). */
	kr_fn fn;
	size_t stack;
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
 * strategy, period_ms 0, children NULL with n > 0, a spec with neither or
 * both of start and fn (or stack with start),
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
	int32_t rc; /* 0, or a negative errno */
	uint32_t pad;
	kr_pid pid; /* the child started, or terminated */
} kr_sup_reply;

/* Ask supervisor sup to start one more child (after the others in the start
 * order; typically KR_TEMPORARY, one per connection, say). The answer comes
 * later, as a message to the caller tagged reply_tag with a kr_sup_reply:
 * the new pid, or rc -ENOMEM/-EAGAIN if it could not be spawned. Such a
 * child is restarted as any other, and forgotten once it exits for good
 * (temporary, or transient with a normal exit) or is terminated. A
 * supervisor that is gone answers nothing: monitor it to be sure. Returns
 * what sending the request gave (as kr_send: -EMSGSIZE if arg_len is too
 * big for a message) or -EINVAL (spec checks as kr_sup_spawn, but the id
 * may be NULL or empty; reply_tag >= KR_TAG_SYSTEM). */
int kr_sup_start_child(kr_ctx *ctx, kr_pid sup, const kr_child_spec *spec, uint32_t reply_tag);

/* Ask sup to shut down its child pid (as in an orderly shutdown: with its
 * shutdown_ms) and not restart it. A child started by kr_sup_start_child,
 * or temporary, is forgotten; one given at start keeps its place, stopped
 * (pid 0), until a one_for_all or rest_for_one restart starts it again.
 * The answer is a kr_sup_reply tagged reply_tag: rc 0, or -ENOENT if pid is
 * not one of sup's running children. Returns as kr_send. */
int kr_sup_terminate_child(kr_ctx *ctx, kr_pid sup, kr_pid child, uint32_t reply_tag);

/* One child, as kr_sup_which_children reports it. */
#define KR_SUP_DYNAMIC    1u /* started by kr_sup_start_child */
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
#define KR_SUP_INTENSITY    1u /* too many restarts */
#define KR_SUP_START_FAILED 2u /* a child could not be started */
typedef struct kr_sup_report {
	uint32_t cause;             /* KR_SUP_* above */
	int32_t err;                /* KR_SUP_START_FAILED: the negative errno */
	char id[KR_SUP_ID_MAX + 1]; /* the child that exited or failed */
} kr_sup_report;

/* ==== end of supervisors ================================================= */

#ifdef __cplusplus
}
#endif
#endif
