/* krill_stats.h — the layout of a runtime's live-stats segment.
 *
 * Each runtime publishes its counters in a POSIX shared-memory object named
 * "/krill.<os pid>.<n>" (n counts the runtimes the process created, from 0),
 * created mode 0600 and removed when the runtime is freed. krilltop reads it;
 * so can any tool that includes this header and links nothing of krill.
 *
 * Every block is written by one thread only, with plain stores framed by a
 * sequence counter: odd while a write is in progress. A reader copies a block
 * and retries if the counter was odd or changed (kr_stats_read_block below).
 * Counters are cumulative since start; rates are deltas between snapshots.
 *
 * Installed beside krill.h (kr_stats_snapshot's buffer has this layout; see
 * kr_stats(3)). It needs C11: the sequence counters are _Atomic, which C++
 * cannot declare, so a C++ program reads a snapshot through a C file.
 */
#ifndef KRILL_STATS_H
#define KRILL_STATS_H

#ifdef __cplusplus
#error "krill_stats.h is C11 only (_Atomic counters); read the stats from a C file"
#endif

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define KR_STATS_MAGIC   0x314c4c49524b5453ull /* "STKRILL1" little-endian */
#define KR_STATS_VERSION 4u
#define KR_STATS_PREFIX  "/krill."

/* Steal distance classes, as in the topology: same L3, same NUMA node, remote. */
enum { KR_STEAL_L3 = 0, KR_STEAL_NUMA = 1, KR_STEAL_REMOTE = 2 };

/* One per scheduler; written by that scheduler, about every 64 process runs
 * and whenever it goes to sleep or wakes. */
typedef struct kr_stats_sched {
	_Atomic uint64_t seq;
	uint64_t busy_ns;   /* running processes or looking for them */
	uint64_t idle_ns;   /* asleep */
	uint64_t runs;      /* process runs (a batch of messages each) */
	uint64_t msgs;      /* messages handled */
	uint64_t runq_len;  /* processes queued at the last publication */
	uint64_t steals[3]; /* by KR_STEAL_* distance */
	uint64_t sleeps, wakeups;
	uint64_t spawned, exited, crashed, killed;
	uint64_t timers; /* timers armed in its wheel */
	uint64_t io_submitted, io_completed;
	uint64_t mem_allocated, mem_active, mem_resident; /* its jemalloc arena */
	uint64_t cpu;      /* OS index of the PU it is pinned to, or UINT64_MAX */
	uint64_t numa, l3; /* its place in the topology */
	/* Since version 2. Signed (int64_t in two's complement): memory taken
	 * on one scheduler is often freed on another, so one scheduler's
	 * figure may be negative; their sum is what the runtime holds. */
	uint64_t mem_held; /* bytes taken through its arena, less given back */
	uint64_t mem_msgs; /* of those, bytes in message envelopes */
	/* Where scheduling costs (docs/performance.md, "Scaling from 1 to 2
	 * schedulers"); were padding, so an older writer leaves them 0. */
	uint64_t stolen;     /* processes taken by its steals (steals[] counts the trips) */
	uint64_t woke;       /* sleeping schedulers it woke for its backlog */
	uint64_t lone_fails; /* idle-lone CASes that failed: a send came on top */
	/* Receive completions it reaped for a socket whose owner had last
	 * used it on another scheduler (docs/performance.md, "HTTP and
	 * echo"); was padding, so an older writer leaves it 0. */
	uint64_t io_foreign;
	uint64_t given; /* processes it handed back when spreading did not pay; was padding */
	/* Idle processes a wake from here handed back to the scheduler they
	 * last ran on (a hub woken by a client: docs/performance.md, "Wake
	 * placement"); was padding, so an older writer leaves it 0. */
	uint64_t stayed;
} kr_stats_sched;

/* The busiest processes a scheduler saw (since version 2): those that ran
 * a whole batch (cfg.batch messages and sends) in one go, so had more
 * waiting, during the last interval (about a second), by messages handled.
 * Written by that scheduler only, when it publishes; a process's figures
 * are measured by its owner at its first such run in the interval. A
 * process that never fills a batch (one message at a time) is not listed:
 * the tables cost the message path nothing. A process that moved between
 * schedulers may be in several tables. */
#define KR_STATS_TOP      8
#define KR_STATS_MBOX_CAP 65536 /* mailboxes are counted up to this many */
typedef struct kr_stats_proc {
	uint64_t pid;
	uint64_t mailbox; /* messages waiting (at most KR_STATS_MBOX_CAP) */
	uint64_t handled; /* messages handled in such runs during the interval */
	uint64_t memory;  /* bytes held: slot, state, side record, messages counted */
	char name[64];    /* its registered name, or "" */
} kr_stats_proc;

typedef struct kr_stats_top {
	_Atomic uint64_t seq;
	uint64_t now_ns;      /* CLOCK_MONOTONIC at the publication */
	uint64_t interval_ns; /* the interval the figures cover */
	uint64_t n;           /* entries of p[] in use, busiest first */
	uint64_t pad[4];
	kr_stats_proc p[KR_STATS_TOP];
} kr_stats_top;

/* Whole-runtime figures; written by scheduler 0 about once a second. */
typedef struct kr_stats_runtime {
	_Atomic uint64_t seq;
	uint64_t now_ns;          /* CLOCK_MONOTONIC at the last publication */
	uint64_t alive;           /* processes alive */
	uint64_t foreign_spawned; /* spawned by threads that are not schedulers */
	uint64_t restarts;        /* supervisor restarts */
	uint64_t names;           /* registered names */
	uint64_t mem_allocated, mem_active, mem_resident; /* all arenas and slot tables */
	/* Since version 2: what the runtime holds, by what holds it
	 * (mem_held is the sum of the four after it). */
	uint64_t mem_held;
	uint64_t mem_procs;  /* the process table's slots: 64 bytes a process, by 2 MiB chunks */
	uint64_t mem_msgs;   /* message envelopes: waiting, being handled, or timers' */
	uint64_t mem_timers; /* the timer table's slots */
	uint64_t mem_other;  /* the rest: side records, big states, caches, queues */
	uint64_t pad[2];
} kr_stats_runtime;

/* Every registered name (since version 3), so that a tool finds any named
 * process, busy or idle. Written by scheduler 0 at its runtime-block
 * publication (about once a second), and then only if a name was
 * registered or removed since the last one: an idle runtime copies
 * nothing. The table holds at most KR_STATS_NAMES names; past that, n
 * stays KR_STATS_NAMES while total counts them all, and which names are
 * left out is unspecified. */
#define KR_STATS_NAMES 1024
typedef struct kr_stats_name {
	uint64_t pid;
	char name[64]; /* NUL-terminated (names are at most KR_NAME_MAX = 63 bytes) */
} kr_stats_name;

typedef struct kr_stats_names {
	_Atomic uint64_t seq;
	uint64_t now_ns; /* CLOCK_MONOTONIC at the last publication (the last change seen) */
	uint64_t n;      /* entries of e[] in use, in no particular order */
	uint64_t total;  /* names registered then: more than n when the table was full */
	uint64_t pad[4];
	kr_stats_name e[KR_STATS_NAMES];
} kr_stats_names;

/* The runtime as a node of an Erlang cluster (since version 4;
 * include/krill_dist.h): its name and its connections. The block's own
 * fields are written under its counter when the node starts (and
 * `unlisted' whenever a connection finds the table full). Each entry of
 * c[] is written only by the connection process that holds it, under the
 * entry's own counter, after each event it handles (plain stores, no lock
 * or syscall on the message path); the entry is zeroed when the
 * connection goes. An entry with peer[0] == 0 is free. Connections past
 * KR_STATS_CONNS are not listed: unlisted counts those up now. A reader
 * copies the block's head (offsetof(kr_stats_node, c) bytes) and each
 * entry apart, each with kr_stats_read_block. */
#define KR_STATS_CONNS 64
typedef struct kr_stats_conn {
	_Atomic uint64_t seq;
	uint64_t since_ns;            /* CLOCK_MONOTONIC when it came up */
	uint64_t msgs_in;             /* messages received (not control messages, not ticks) */
	uint64_t msgs_out;            /* messages and control messages sent (not ticks) */
	uint64_t bytes_in, bytes_out; /* bytes on the socket: frames, ticks included */
	uint64_t pad[2];
	char peer[256]; /* the peer's name@host, NUL-terminated; "" free */
} kr_stats_conn;

typedef struct kr_stats_node {
	_Atomic uint64_t seq;
	uint64_t creation; /* this incarnation (from epmd); 0 while the runtime is no node */
	uint64_t port;     /* the port it listens on */
	uint64_t unlisted; /* connections up that found c[] full */
	uint64_t pad[4];
	char name[256]; /* name@host, NUL-terminated; "" while the runtime is no node */
	kr_stats_conn c[KR_STATS_CONNS];
} kr_stats_node;

typedef struct kr_stats_header {
	uint64_t magic;       /* KR_STATS_MAGIC */
	uint32_t version;     /* KR_STATS_VERSION */
	uint32_t header_size; /* sizeof(kr_stats_header) */
	uint32_t sched_size;  /* sizeof(kr_stats_sched) */
	uint32_t nsched;
	int32_t os_pid;
	uint32_t numa_nodes, l3_groups, cores;
	uint64_t start_realtime_ns; /* CLOCK_REALTIME when the runtime started */
	uint64_t start_mono_ns;     /* CLOCK_MONOTONIC then */
	char topology[128];         /* one line, NUL-terminated */
	uint32_t top_size;          /* sizeof(kr_stats_top) (version 2) */
	uint32_t names_size;        /* sizeof(kr_stats_names) (version 3; 0 before) */
	uint32_t node_size;         /* sizeof(kr_stats_node) (version 4; 0 before) */
	uint8_t pad[20];
	kr_stats_runtime rt;
	uint8_t pad2[40]; /* to 384 bytes: the blocks after it start on cache lines */
} kr_stats_header;
/* After the header: nsched kr_stats_sched blocks of sched_size bytes, then
 * nsched kr_stats_top blocks of top_size bytes, then (version 3) one
 * kr_stats_names block of names_size bytes, then (version 4) one
 * kr_stats_node block of node_size bytes. */

_Static_assert(sizeof(kr_stats_sched) == 256, "scheduler blocks are 4 cache lines");
_Static_assert(sizeof(kr_stats_header) % 64 == 0, "blocks start on cache lines");
_Static_assert(sizeof(kr_stats_top) % 64 == 0, "top blocks start on cache lines");
_Static_assert(sizeof(kr_stats_names) % 64 == 0, "the names block ends on a cache line");
_Static_assert(sizeof(kr_stats_conn) % 64 == 0, "connection entries never share a cache line");
_Static_assert(sizeof(kr_stats_node) % 64 == 0, "the node block ends on a cache line");

/* Size of a segment with n schedulers. */
static inline size_t kr_stats_size(uint32_t nsched)
{
	return sizeof(kr_stats_header) +
	       (size_t)nsched * (sizeof(kr_stats_sched) + sizeof(kr_stats_top)) +
	       sizeof(kr_stats_names) + sizeof(kr_stats_node);
}

static inline kr_stats_sched *kr_stats_sched_at(kr_stats_header *h, uint32_t i)
{
	return (kr_stats_sched *)((char *)h + h->header_size + (size_t)i * h->sched_size);
}

static inline kr_stats_top *kr_stats_top_at(kr_stats_header *h, uint32_t i)
{
	return (kr_stats_top *)((char *)h + h->header_size + (size_t)h->nsched * h->sched_size +
				(size_t)i * h->top_size);
}

/* The names table (version 3 and later only: check h->version first). */
static inline kr_stats_names *kr_stats_names_at(kr_stats_header *h)
{
	return (kr_stats_names *)((char *)h + h->header_size +
				  (size_t)h->nsched * ((size_t)h->sched_size + h->top_size));
}

/* The node block (version 4 and later only: check h->version first). */
static inline kr_stats_node *kr_stats_node_at(kr_stats_header *h)
{
	return (kr_stats_node *)((char *)kr_stats_names_at(h) + h->names_size);
}

/* Copy a block written under its leading sequence counter; retries while a
 * write is in progress. Returns 0, or -1 if it never saw a stable copy. */
static inline int kr_stats_read_block(const void *src, void *dst, size_t n)
{
	const _Atomic uint64_t *seq = (const _Atomic uint64_t *)src;
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t a = atomic_load_explicit(seq, memory_order_acquire);
		if (a & 1)
			continue;
		/* The copy races with the writer by design; the counter says
		 * whether it was torn. Acquire loads keep the second read of the
		 * counter after them (plain moves on x86). */
		for (size_t k = sizeof(uint64_t); k < n; k += sizeof(uint64_t)) {
			uint64_t v =
			    atomic_load_explicit((const _Atomic uint64_t *)((const char *)src + k),
						 memory_order_acquire);
			memcpy((char *)dst + k, &v, sizeof(v));
		}
		if (atomic_load_explicit(seq, memory_order_relaxed) == a) {
			memcpy(dst, &a, sizeof(a));
			return 0;
		}
	}
	return -1;
}

#endif
