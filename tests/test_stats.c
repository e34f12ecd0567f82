/* Tests for the live-stats segment (include/krill_stats.h) and kr_stats_snapshot: exact
 * counters for a known workload once the run is over, the segment's name, mode and life,
 * the error returns, and seqlock reads racing busy schedulers that never see a torn block. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "krill.h"
#include "krill_stats.h"

enum { T_GO = 1, T_WAKE, T_BALL };

static kr_runtime *rt_new(unsigned schedulers, int stats)
{
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.schedulers = schedulers;
	c.pin = 0; /* tests share the machine with other tests */
	c.stats = stats;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	return rt;
}

static kr_pid rt_spawn(kr_runtime *rt, kr_behaviour b, const void *state, size_t len)
{
	kr_pid pid = 0;
	assert_int_equal(kr_rt_spawn(rt, b, state, len, &pid), 0);
	return pid;
}

/* This process's segments in /dev/shm ("krill.<pid>.<n>"): how many, and in path the newest
 * (n counts up). A test that failed may have left its runtime, and so its segment, behind. */
static int find_segments(char *path, size_t len)
{
	char prefix[64];
	int found = 0;
	long newest = -1;
	snprintf(prefix, sizeof(prefix), "krill.%d.", (int)getpid());
	DIR *d = opendir("/dev/shm");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			long n = strtol(e->d_name + strlen(prefix), 0, 10);
			if (n > newest) {
				newest = n;
				snprintf(path, len, "/dev/shm/%s", e->d_name);
			}
			found++;
		}
	}
	closedir(d);
	return found;
}

static void *snapshot_of(kr_runtime *rt, size_t *len)
{
	*len = kr_stats_size(kr_schedulers(rt));
	void *buf = malloc(*len);
	assert_non_null(buf);
	int rc;
	while ((rc = kr_stats_snapshot(rt, buf, *len)) == -EAGAIN)
		;
	assert_int_equal(rc, (int)*len);
	return buf;
}

/* ---- a known workload ---------------------------------------------------------------- */

/* Waits for one message, then exits. */
static void b_worker(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_exit(ctx, KR_NORMAL);
}

/* On T_GO spawns *state workers from inside the runtime, sends each one message, exits. */
static void b_spawner(kr_ctx *ctx, void *state, const kr_msg *m)
{
	unsigned n = *(unsigned *)state;
	for (unsigned i = 0; i < n; i++) {
		kr_pid p;
		assert_int_equal(kr_spawn(ctx, b_worker, 0, 0, &p), 0);
		assert_int_equal(kr_send(ctx, p, T_WAKE, &i, sizeof(i)), 0);
	}
	kr_exit(ctx, KR_NORMAL);
}

struct totals {
	uint64_t spawned, exited, msgs, runs;
};

static struct totals sum(const kr_stats_header *h)
{
	struct totals t = {0};
	for (uint32_t i = 0; i < h->nsched; i++) {
		const kr_stats_sched *b = kr_stats_sched_at((kr_stats_header *)h, i);
		t.spawned += b->spawned;
		t.exited += b->exited;
		t.msgs += b->msgs;
		t.runs += b->runs;
	}
	/* Spawns by threads that are no scheduler are the runtime block's. */
	t.spawned += h->rt.foreign_spawned;
	return t;
}

/* N = foreign + inner + 1 (the spawner) processes, each handling exactly one message. */
static void run_known_workload(unsigned schedulers, unsigned foreign, unsigned inner)
{
	kr_runtime *rt = rt_new(schedulers, 1);
	uint64_t n = foreign + inner + 1, k = n;
	kr_pid *pids = calloc(foreign, sizeof(*pids));
	assert_non_null(pids);
	for (unsigned i = 0; i < foreign; i++)
		pids[i] = rt_spawn(rt, b_worker, 0, 0);
	kr_pid sp = rt_spawn(rt, b_spawner, &inner, sizeof(inner));
	assert_int_equal(kr_rt_send(rt, sp, T_GO, 0, 0), 0);
	for (unsigned i = 0; i < foreign; i++)
		assert_int_equal(kr_rt_send(rt, pids[i], T_WAKE, &i, sizeof(i)), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(kr_alive(rt), 0);

	size_t len;
	kr_stats_header *h = snapshot_of(rt, &len);
	struct totals t = sum(h);
	unsigned nsched = kr_schedulers(rt);
	/* Free first, so that a failure below leaks nothing into the sanitizers' reports. */
	kr_stats_header hd;
	memcpy(&hd, h, sizeof(hd));
	free(h);
	free(pids);
	kr_runtime_free(rt);

	assert_int_equal(hd.magic, KR_STATS_MAGIC);
	assert_int_equal(hd.version, KR_STATS_VERSION);
	assert_int_equal(hd.nsched, nsched);
	assert_int_equal(hd.os_pid, getpid());
	if (t.spawned != n || t.exited != n || t.msgs < k)
		print_message("schedulers %u: spawned %llu exited %llu msgs %llu runs %llu; "
			      "expected %llu, %llu, >= %llu\n",
			      nsched, (unsigned long long)t.spawned, (unsigned long long)t.exited,
			      (unsigned long long)t.msgs, (unsigned long long)t.runs,
			      (unsigned long long)n, (unsigned long long)n, (unsigned long long)k);
	assert_int_equal(hd.rt.foreign_spawned, foreign + 1);
	assert_int_equal(t.spawned, n);
	assert_int_equal(t.exited, n);
	assert_true(t.msgs >= k);
	assert_true(t.runs >= n);
}

static void counters_are_exact_after_the_run(void **st)
{
	/* Sizes that are not multiples of 64 runs, so a missing final publication shows. */
	for (int rep = 0; rep < 5; rep++) {
		run_known_workload(1, 1000, 0);
		run_known_workload(1, 0, 1000);
		run_known_workload(2, 517, 789);
		run_known_workload(4, 3001, 2999);
	}
}

/* ---- the segment's life ---------------------------------------------------------------- */

static void segment_exists_while_the_runtime_lives(void **st)
{
	char path[300], name[300];
	struct stat sb;
	int before = find_segments(path, sizeof(path));
	kr_runtime *rt = rt_new(2, 1);
	assert_int_equal(find_segments(path, sizeof(path)), before + 1);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600); /* stats are the owner's business */
	assert_int_equal((size_t)sb.st_size, kr_stats_size(kr_schedulers(rt)));
	snprintf(name, sizeof(name), "krill.%d.", (int)getpid());
	assert_non_null(strstr(path, name));

	/* Readable by name as krilltop reads it, before the runtime even starts. */
	int fd = shm_open(path + strlen("/dev/shm"), O_RDONLY, 0);
	assert_true(fd >= 0);
	const kr_stats_header *h = mmap(0, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(h != MAP_FAILED);
	assert_int_equal(h->magic, KR_STATS_MAGIC);
	assert_int_equal(h->header_size, sizeof(kr_stats_header));
	assert_int_equal(h->sched_size, sizeof(kr_stats_sched));
	assert_int_equal(h->nsched, kr_schedulers(rt));
	assert_true(h->topology[0] != 0);
	munmap((void *)h, (size_t)sb.st_size);

	/* Still there after the run: the runtime is stopped, not freed. */
	assert_int_equal(kr_rt_send(rt, rt_spawn(rt, b_worker, 0, 0), T_WAKE, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(stat(path, &sb), 0);
	kr_runtime_free(rt);
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(find_segments(name, sizeof(name)), before);
}

static void stats_off_means_enodata_and_no_segment(void **st)
{
	char path[300], buf[4096];
	int before = find_segments(path, sizeof(path));
	kr_runtime *rt = rt_new(2, 0);
	assert_int_equal(find_segments(path, sizeof(path)), before);
	assert_int_equal(kr_stats_snapshot(rt, buf, sizeof(buf)), -ENODATA);
	assert_int_equal(kr_rt_send(rt, rt_spawn(rt, b_worker, 0, 0), T_WAKE, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);
	assert_int_equal(find_segments(path, sizeof(path)), before);
	assert_int_equal(kr_stats_snapshot(rt, buf, sizeof(buf)), -ENODATA);
	kr_runtime_free(rt);
}

static void snapshot_errors(void **st)
{
	kr_runtime *rt = rt_new(2, 1);
	size_t need = kr_stats_size(kr_schedulers(rt));
	char *buf = malloc(need);
	assert_non_null(buf);
	memset(buf, 0x5a, need);
	assert_int_equal(kr_stats_snapshot(rt, buf, need - 1), -ENOSPC);
	assert_int_equal(kr_stats_snapshot(rt, buf, 0), -ENOSPC);
	assert_int_equal((unsigned char)buf[0], 0x5a); /* a failed call changes nothing */
	assert_int_equal(kr_stats_snapshot(rt, 0, need), -EINVAL);
	assert_int_equal(kr_stats_snapshot(0, buf, need), -EINVAL);
	assert_int_equal(kr_stats_snapshot(rt, buf, need), (int)need);
	assert_int_equal(kr_stats_snapshot(rt, buf, need + 100), (int)need);
	free(buf);
	kr_runtime_free(rt);
}

/* ---- torn reads ------------------------------------------------------------------------ */

/* Pairs bounce a ball, its payload the hops left, until it is spent; then both exit.
 * Plenty of runs, messages and publications on both schedulers. */
static void b_player(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid *peer = state;
	uint32_t hops;
	if (m->tag == T_GO) {
		memcpy(peer, m->data, sizeof(*peer));
		if (m->len > sizeof(*peer)) { /* the server serves */
			memcpy(&hops, m->data + sizeof(*peer), sizeof(hops));
			assert_int_equal(kr_send(ctx, *peer, T_BALL, &hops, sizeof(hops)), 0);
		}
		return;
	}
	memcpy(&hops, m->data, sizeof(hops));
	if (hops > 0) {
		hops--;
		assert_int_equal(kr_send(ctx, *peer, T_BALL, &hops, sizeof(hops)), 0);
	}
	if (hops == 0)
		kr_exit(ctx, KR_NORMAL);
}

struct reader {
	const char *shm;
	_Atomic int done;
	uint64_t reads, failures, changes;
	int error; /* 0, or the line of the broken invariant */
	char what[200];
};

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		if (!(cond) && !r->error) {                              \
			r->error = __LINE__;                             \
			snprintf(r->what, sizeof(r->what), __VA_ARGS__); \
		}                                                        \
	} while (0)

/* What a torn copy would break: every counter of a block is cumulative, and one
 * publication writes them all, so a consistent copy never has any of them go back. */
static void *read_loop(void *arg)
{
	struct reader *r = arg;
	int fd = shm_open(r->shm, O_RDONLY, 0);
	if (fd < 0) {
		r->error = __LINE__;
		return 0;
	}
	struct stat sb;
	fstat(fd, &sb);
	kr_stats_header *h = mmap(0, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED) {
		r->error = __LINE__;
		return 0;
	}
	uint32_t n = h->nsched;
	kr_stats_sched *prev = calloc(n, sizeof(*prev)), cur;
	bool *seen = calloc(n, sizeof(*seen));
	kr_stats_runtime rprev = {0}, rcur;
	while (!atomic_load(&r->done) && !r->error) {
		for (uint32_t i = 0; i < n; i++) {
			if (kr_stats_read_block(kr_stats_sched_at(h, i), &cur, sizeof(cur))) {
				r->failures++;
				continue;
			}
			r->reads++;
			kr_stats_sched *p = &prev[i];
			uint64_t cs = cur.seq, ps = p->seq;
			CHECK(cs % 2 == 0, "sched %u: odd seq %llu", i, (unsigned long long)cs);
			CHECK(cs >= ps, "sched %u: seq went back", i);
			CHECK(cur.runs >= p->runs, "sched %u: runs went back", i);
			CHECK(cur.msgs >= p->msgs, "sched %u: msgs went back", i);
			CHECK(cur.busy_ns >= p->busy_ns, "sched %u: busy_ns went back", i);
			CHECK(cur.idle_ns >= p->idle_ns, "sched %u: idle_ns went back", i);
			CHECK(cur.busy_ns + cur.idle_ns >= p->busy_ns + p->idle_ns,
			      "sched %u: busy_ns + idle_ns went back", i);
			CHECK(cur.sleeps >= p->sleeps && cur.wakeups >= p->wakeups,
			      "sched %u: sleeps or wakeups went back", i);
			CHECK(cur.spawned >= p->spawned && cur.exited >= p->exited,
			      "sched %u: spawned or exited went back", i);
			/* Equal sequence numbers: the same publication, so the same bytes. */
			if (!seen[i])
				seen[i] = true;
			else if (cs == ps)
				CHECK(!memcmp(&cur, p, sizeof(cur)),
				      "sched %u: seq %llu, two contents", i,
				      (unsigned long long)cs);
			else
				r->changes++;
			memcpy(p, &cur, sizeof(cur));
		}
		if (!kr_stats_read_block(&h->rt, &rcur, sizeof(rcur))) {
			CHECK(rcur.seq % 2 == 0 && rcur.seq >= rprev.seq, "runtime block: bad seq");
			CHECK(rcur.now_ns >= rprev.now_ns, "runtime block: now_ns went back");
			CHECK(rcur.foreign_spawned >= rprev.foreign_spawned,
			      "runtime block: foreign_spawned went back");
			memcpy(&rprev, &rcur, sizeof(rcur));
		}
	}
	free(prev);
	free(seen);
	munmap(h, (size_t)sb.st_size);
	return 0;
}

static void readers_never_see_a_torn_block(void **st)
{
	enum { PAIRS = 64, ROUNDS = 20000 };
	char path[300];
	int before = find_segments(path, sizeof(path));
	kr_runtime *rt = rt_new(2, 1);
	assert_int_equal(find_segments(path, sizeof(path)), before + 1);
	struct reader r = {.shm = path + strlen("/dev/shm")};
	pthread_t th;
	assert_int_equal(pthread_create(&th, 0, read_loop, &r), 0);

	for (int i = 0; i < PAIRS; i++) {
		kr_pid none = 0, a = rt_spawn(rt, b_player, &none, sizeof(none));
		kr_pid b = rt_spawn(rt, b_player, &none, sizeof(none));
		uint32_t hops = 2 * ROUNDS;
		char serve[sizeof(kr_pid) + sizeof(hops)];
		memcpy(serve, &b, sizeof(b));
		memcpy(serve + sizeof(b), &hops, sizeof(hops));
		/* b learns its peer first: one thread's messages are delivered in order. */
		assert_int_equal(kr_rt_send(rt, b, T_GO, &a, sizeof(a)), 0);
		assert_int_equal(kr_rt_send(rt, a, T_GO, serve, sizeof(serve)), 0);
	}
	assert_int_equal(kr_run(rt), 0);
	atomic_store(&r.done, 1);
	pthread_join(th, 0);
	if (r.error)
		print_message("line %d: %s\n", r.error, r.what);
	assert_int_equal(r.error, 0);
	assert_true(r.reads > 0);
	assert_true(r.changes > 0); /* it did race the writers */

	kr_runtime_free(rt);
}

/* ---- memory by what holds it (version 2) -------------------------------- */

enum { T_HOARD = 10, T_FLOOD, T_LAST };

/* Keeps every message it is sent (deferred), so they stay held. */
static void b_hoarder(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	(void)m;
	kr_defer(ctx);
}

/* On T_GO: 1000 messages of 8 bytes to the hoarder in its state. */
static void b_hoard_sender(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid to;
	memcpy(&to, state, sizeof(to));
	for (uint64_t i = 0; m->tag == T_GO && i < 1000; i++)
		assert_int_equal(kr_send(ctx, to, T_HOARD, &i, sizeof(i)), 0);
}

static void b_idle(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
}

/* 40,000 processes spawned from this thread (two chunks of the process table, mapped with
 * no arena) and 1,000 messages kept waiting: the runtime block says what holds what. The
 * old segment said allocated 0 for all of it: jemalloc never saw the table's chunks. */
static void memory_is_told_by_what_holds_it(void **st)
{
	(void)st;
	kr_config c;
	kr_runtime *rt = 0;
	kr_config_init(&c);
	c.schedulers = 2;
	c.pin = 0;
	c.deterministic = 1;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	for (int i = 0; i < 40000; i++)
		rt_spawn(rt, b_idle, 0, 0);
	kr_pid hoarder = rt_spawn(rt, b_hoarder, 0, 0);
	kr_pid sender = rt_spawn(rt, b_hoard_sender, &hoarder, sizeof(hoarder));
	assert_int_equal(kr_rt_send(rt, sender, T_GO, 0, 0), 0);
	assert_int_equal(kr_run(rt), 0);

	size_t len;
	kr_stats_header *h = snapshot_of(rt, &len);
	const kr_stats_runtime *r = &h->rt;
	assert_int_equal(h->version, KR_STATS_VERSION);
	/* Two chunks of 32,768 slots of 64 bytes. */
	assert_int_equal(r->mem_procs, 2u * 32768 * 64);
	/* An envelope is 16 bytes and the data: 24, which jemalloc's build keeps in a
	 * 32-byte class. */
#ifdef KR_JEMALLOC
	assert_int_equal(r->mem_msgs, 1000u * 32);
#else
	assert_int_equal(r->mem_msgs, 1000u * 24);
#endif
	assert_int_equal(r->mem_timers, 0);
	assert_true(r->mem_other > 0); /* the hoarder's side record at least */
	assert_int_equal(r->mem_held, r->mem_procs + r->mem_msgs + r->mem_timers + r->mem_other);
	assert_true(r->mem_allocated >= r->mem_procs);
	assert_true(r->mem_resident >= 40002u * 64); /* every slot used was touched */
	int64_t msgs = 0;
	for (uint32_t i = 0; i < h->nsched; i++)
		msgs += (int64_t)kr_stats_sched_at(h, i)->mem_msgs;
	assert_true(msgs >= 0 && (uint64_t)msgs <= r->mem_msgs);
	free(h);
	kr_runtime_free(rt);
}

/* ---- segments dead programs left ---------------------------------------- */

static void make_segment(const char *name)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	close(fd);
}

static bool segment_there(const char *name)
{
	char path[128];
	struct stat sb;
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	return stat(path, &sb) == 0;
}

/* A runtime starting removes this user's segments whose program is gone, as krilltop
 * --clean does, and leaves a live program's (here our parent's: young, so perhaps not yet
 * mapped). */
static void a_new_runtime_removes_dead_programs_segments(void **st)
{
	(void)st;
	char dead[64], live[64];
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, 0, 0), child);
	snprintf(dead, sizeof(dead), KR_STATS_PREFIX "%d.0", (int)child);
	snprintf(live, sizeof(live), KR_STATS_PREFIX "%d.4242", (int)getppid());
	make_segment(dead);
	make_segment(live);
	assert_true(segment_there(dead));
	kr_runtime *rt = rt_new(1, 1);
	bool dead_gone = !segment_there(dead), live_kept = segment_there(live);
	kr_runtime_free(rt);
	shm_unlink(dead);
	shm_unlink(live);
	assert_true(dead_gone);
	assert_true(live_kept);
}

/* ---- the top-processes tables ------------------------------------------- */

static _Atomic int flood_stop;

/* The producer: on T_GO (data: the sink's pid), FLOOD - 1 messages and a T_LAST to the sink,
 * whose answer to T_LAST is the next T_GO: at most FLOOD wait, and the sink spends whole
 * batches every round. More than 16 batches (run.c's SLICE_MAX), so that the sink yields with
 * some of them still waiting: a process runs on, up to that, through what it took. */
#define FLOOD 5000
static void b_producer(kr_ctx *ctx, void *state, const kr_msg *m)
{
	(void)state;
	kr_pid sink;
	if (m->tag != T_GO || atomic_load(&flood_stop))
		return;
	memcpy(&sink, m->data, sizeof(sink));
	for (int i = 0; i < FLOOD - 1; i++)
		kr_send(ctx, sink, T_FLOOD, &i, sizeof(i));
	kr_send(ctx, sink, T_LAST, 0, 0);
}

static void b_sink(kr_ctx *ctx, void *state, const kr_msg *m)
{
	kr_pid producer, self = kr_self(ctx);
	memcpy(&producer, state, sizeof(producer));
	if (m->tag == T_LAST)
		kr_send(ctx, producer, T_GO, &self, sizeof(self));
}

static const kr_stats_proc *find_top(kr_stats_header *h, kr_pid pid)
{
	for (uint32_t i = 0; i < h->nsched; i++) {
		const kr_stats_top *t = kr_stats_top_at(h, i);
		for (uint64_t k = 0; k < t->n && k < KR_STATS_TOP; k++)
			if (t->p[k].pid == pid)
				return &t->p[k];
	}
	return 0;
}

/* A process that always has more waiting than a batch is in its scheduler's table, with its
 * registered name, the messages it handled and what waited for it. */
static void a_flooded_process_is_in_the_top_table(void **st)
{
	(void)st;
	kr_runtime *rt = rt_new(1, 1);
	kr_pid producer = rt_spawn(rt, b_producer, 0, 0);
	kr_pid sink = rt_spawn(rt, b_sink, &producer, sizeof(producer));
	assert_int_equal(kr_register(rt, "sink", sink), 0);
	atomic_store(&flood_stop, 0);
	assert_int_equal(kr_start(rt), 0);
	assert_int_equal(kr_rt_send(rt, producer, T_GO, &sink, sizeof(sink)), 0);
	/* Tables are published about once a second: wait for one that lists the sink. */
	size_t len = kr_stats_size(kr_schedulers(rt));
	kr_stats_header *h = malloc(len);
	assert_non_null(h);
	const kr_stats_proc *p = 0;
	for (int tries = 0; tries < 200 && !p; tries++) {
		usleep(50000);
		if (kr_stats_snapshot(rt, h, len) > 0)
			p = find_top(h, sink);
	}
	kr_stats_proc got = {0};
	if (p)
		got = *p;
	atomic_store(&flood_stop, 1);
	kr_stop(rt);
	assert_int_equal(kr_wait(rt), 0);
	assert_non_null(p);
	assert_string_equal(got.name, "sink");
	assert_true(got.handled >= 256);
	assert_true(got.mailbox > 0 && got.mailbox <= FLOOD);
	/* Its slot and what waited for it, 32 bytes a message at least (24 with malloc). */
	assert_true(got.memory >= 64 + 24 * got.mailbox);
	free(h);
	kr_runtime_free(rt);
}

/* ---- the names table (version 3) ---------------------------------------- */

/* The pid the names table of h gives name, or 0. */
static kr_pid table_pid(kr_stats_header *h, const char *name)
{
	const kr_stats_names *t = kr_stats_names_at(h);
	for (uint64_t i = 0; i < t->n && i < KR_STATS_NAMES; i++)
		if (strncmp(t->e[i].name, name, sizeof(t->e[i].name)) == 0)
			return t->e[i].pid;
	return 0;
}

typedef bool (*names_pred)(kr_stats_header *h, const void *arg);

/* Snapshots until pred holds (names are published about once a second); true if it did. */
static bool names_until(kr_runtime *rt, kr_stats_header *h, names_pred pred, const void *arg)
{
	size_t len = kr_stats_size(kr_schedulers(rt));
	for (int tries = 0; tries < 200; tries++) {
		if (kr_stats_snapshot(rt, h, len) > 0 && pred(h, arg))
			return true;
		usleep(50000);
	}
	return false;
}

struct want {
	const char *name;
	kr_pid pid; /* 0: absent */
	uint64_t total;
};

static bool names_show(kr_stats_header *h, const void *arg)
{
	const struct want *w = arg;
	for (; w->name; w++)
		if (table_pid(h, w->name) != w->pid)
			return false;
	return kr_stats_names_at(h)->total == w->total;
}

/* An idle process (never in a top table) is in the names table once registered, and
 * leaves it when unregistered or when it exits. */
static void a_registered_process_is_in_the_names_table(void **st)
{
	(void)st;
	kr_runtime *rt = rt_new(1, 1);
	kr_pid a = rt_spawn(rt, b_idle, 0, 0), b = rt_spawn(rt, b_idle, 0, 0);
	size_t len = kr_stats_size(kr_schedulers(rt));
	kr_stats_header *h = malloc(len);
	assert_non_null(h);
	assert_int_equal(kr_start(rt), 0);
	assert_int_equal(kr_register(rt, "alpha", a), 0);
	assert_int_equal(kr_register(rt, "beta", b), 0);
	bool both = names_until(rt, h, names_show,
				(struct want[]){{"alpha", a, 0}, {"beta", b, 0}, {0, 0, 2}});
	assert_true(h->version >= 3);
	assert_int_equal(h->names_size, sizeof(kr_stats_names));
	/* Version 4's node block follows, empty while the runtime is no node. */
	assert_int_equal(h->node_size, sizeof(kr_stats_node));
	assert_string_equal(kr_stats_node_at(h)->name, "");
	assert_int_equal(kr_stats_node_at(h)->c[0].peer[0], 0);
	assert_int_equal(kr_unregister(rt, "alpha"), 0);
	bool unreg = names_until(rt, h, names_show,
				 (struct want[]){{"alpha", 0, 0}, {"beta", b, 0}, {0, 0, 1}});
	assert_int_equal(kr_rt_exit(rt, b, KR_KILL), 0);
	bool exited = names_until(rt, h, names_show,
				  (struct want[]){{"alpha", 0, 0}, {"beta", 0, 0}, {0, 0, 0}});
	uint64_t n = kr_stats_names_at(h)->n;
	kr_stop(rt);
	assert_int_equal(kr_wait(rt), 0);
	free(h);
	kr_runtime_free(rt);
	assert_true(both);
	assert_true(unreg);
	assert_true(exited);
	assert_int_equal(n, 0);
}

static bool names_total(kr_stats_header *h, const void *arg)
{
	return kr_stats_names_at(h)->total == *(const uint64_t *)arg;
}

/* Past KR_STATS_NAMES names the table is full: n stays at the bound, total counts them all,
 * and every entry is a real name with its own pid. */
static void the_names_table_is_bounded(void **st)
{
	(void)st;
	enum { N = KR_STATS_NAMES + 76 };
	kr_runtime *rt = rt_new(1, 1);
	size_t len = kr_stats_size(kr_schedulers(rt));
	kr_stats_header *h = malloc(len);
	kr_pid *pids = calloc(N, sizeof(*pids));
	assert_non_null(h);
	assert_non_null(pids);
	assert_int_equal(kr_start(rt), 0);
	for (int i = 0; i < N; i++) {
		char name[32];
		pids[i] = rt_spawn(rt, b_idle, 0, 0);
		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(kr_register(rt, name, pids[i]), 0);
	}
	uint64_t want = N;
	bool full = names_until(rt, h, names_total, &want);
	const kr_stats_names *t = kr_stats_names_at(h);
	uint64_t n = t->n, bad = 0;
	for (uint64_t i = 0; i < n && i < KR_STATS_NAMES; i++) {
		int k = -1;
		if (sscanf(t->e[i].name, "p%d", &k) != 1 || k < 0 || k >= N ||
		    pids[k] != t->e[i].pid)
			bad++;
		else
			pids[k] = 0; /* each name once */
	}
	/* Below the bound again: every name is there. */
	for (int i = 0; i < 200; i++) {
		char name[32];
		snprintf(name, sizeof(name), "p%d", i);
		kr_unregister(rt, name);
	}
	want = N - 200;
	bool below = names_until(rt, h, names_total, &want);
	uint64_t n2 = kr_stats_names_at(h)->n;
	kr_stop(rt);
	assert_int_equal(kr_wait(rt), 0);
	free(h);
	free(pids);
	kr_runtime_free(rt);
	assert_true(full);
	assert_int_equal(n, KR_STATS_NAMES);
	assert_int_equal(bad, 0);
	assert_true(below);
	assert_int_equal(n2, N - 200);
}

/* While no name changes, scheduler 0's once-a-second publications leave the names table
 * alone: its sequence counter does not move over two of them. */
static void the_names_table_is_not_rewritten_while_names_stay(void **st)
{
	(void)st;
	kr_runtime *rt = rt_new(1, 1);
	size_t len = kr_stats_size(kr_schedulers(rt));
	kr_stats_header *h = malloc(len);
	assert_non_null(h);
	kr_pid a = rt_spawn(rt, b_idle, 0, 0);
	assert_int_equal(kr_start(rt), 0);
	assert_int_equal(kr_register(rt, "still", a), 0);
	bool shown = names_until(rt, h, names_show, (struct want[]){{"still", a, 0}, {0, 0, 1}});
	uint64_t seq = kr_stats_names_at(h)->seq, t0 = h->rt.now_ns;
	bool later = false;
	for (int tries = 0; tries < 200 && !later; tries++) {
		usleep(50000);
		later = kr_stats_snapshot(rt, h, len) > 0 && h->rt.now_ns > t0 + 2000000000ull;
	}
	uint64_t seq2 = kr_stats_names_at(h)->seq;
	kr_stop(rt);
	assert_int_equal(kr_wait(rt), 0);
	free(h);
	kr_runtime_free(rt);
	assert_true(shown);
	assert_true(later);
	assert_int_equal(seq2, seq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(segment_exists_while_the_runtime_lives),
	    cmocka_unit_test(stats_off_means_enodata_and_no_segment),
	    cmocka_unit_test(snapshot_errors),
	    cmocka_unit_test(counters_are_exact_after_the_run),
	    cmocka_unit_test(readers_never_see_a_torn_block),
	    cmocka_unit_test(memory_is_told_by_what_holds_it),
	    cmocka_unit_test(a_new_runtime_removes_dead_programs_segments),
	    cmocka_unit_test(a_flooded_process_is_in_the_top_table),
	    cmocka_unit_test(a_registered_process_is_in_the_names_table),
	    cmocka_unit_test(the_names_table_is_bounded),
	    cmocka_unit_test(the_names_table_is_not_rewritten_while_names_stay),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
