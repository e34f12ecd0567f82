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

#define KR_STATS_MAGIC 0x314c4c49524b5453ull /* "STKRILL1" little-endian */
#define KR_STATS_VERSION 1u
#define KR_STATS_PREFIX "/krill."

/* Steal distance classes, as in the topology: same L3, same NUMA node, remote. */
enum { KR_STEAL_L3 = 0, KR_STEAL_NUMA = 1, KR_STEAL_REMOTE = 2 };

/* One per scheduler; written by that scheduler, about every 64 process runs
 * and whenever it goes to sleep or wakes. */
typedef struct kr_stats_sched {
	_Atomic uint64_t seq;
	uint64_t busy_ns;       /* running processes or looking for them */
	uint64_t idle_ns;       /* asleep */
	uint64_t runs;          /* process runs (a batch of messages each) */
	uint64_t msgs;          /* messages handled */
	uint64_t runq_len;      /* processes queued at the last publication */
	uint64_t steals[3];     /* by KR_STEAL_* distance */
	uint64_t sleeps, wakeups;
	uint64_t spawned, exited, crashed, killed;
	uint64_t timers;        /* timers armed in its wheel */
	uint64_t io_submitted, io_completed;
	uint64_t mem_allocated, mem_active, mem_resident; /* its jemalloc arena */
	uint64_t cpu;           /* OS index of the PU it is pinned to, or UINT64_MAX */
	uint64_t numa, l3;      /* its place in the topology */
	uint64_t pad[8];        /* to 256 bytes: blocks never share a cache line */
} kr_stats_sched;

/* Whole-runtime figures; written by scheduler 0 about once a second. */
typedef struct kr_stats_runtime {
	_Atomic uint64_t seq;
	uint64_t now_ns;         /* CLOCK_MONOTONIC at the last publication */
	uint64_t alive;          /* processes alive */
	uint64_t foreign_spawned;/* spawned by threads that are not schedulers */
	uint64_t restarts;       /* supervisor restarts */
	uint64_t names;          /* registered names */
	uint64_t mem_allocated, mem_active, mem_resident; /* all arenas */
	uint64_t pad[7];
} kr_stats_runtime;

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
	uint8_t pad[32];
	kr_stats_runtime rt;
	uint8_t pad2[40]; /* to 384 bytes: the blocks after it start on cache lines */
	/* then nsched kr_stats_sched blocks of 256 bytes */
} kr_stats_header;

_Static_assert(sizeof(kr_stats_sched) == 256, "scheduler blocks are 4 cache lines");
_Static_assert(sizeof(kr_stats_header) % 64 == 0, "blocks start on cache lines");

/* Size of a segment with n schedulers. */
static inline size_t kr_stats_size(uint32_t nsched)
{
	return sizeof(kr_stats_header) + (size_t)nsched * sizeof(kr_stats_sched);
}

static inline kr_stats_sched *kr_stats_sched_at(kr_stats_header *h, uint32_t i)
{
	return (kr_stats_sched *)((char *)h + h->header_size + (size_t)i * h->sched_size);
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
			uint64_t v = atomic_load_explicit(
				(const _Atomic uint64_t *)((const char *)src + k), memory_order_acquire);
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
