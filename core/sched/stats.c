/* stats: the live-stats segment (include/krill_stats.h). Schedulers keep
 * their counters in their own struct sched and copy them into their block
 * of the segment at quiescent points and around sleep, so the message path
 * pays nothing for observability; scheduler 0 refreshes the runtime-wide
 * block (memory from jemalloc and the slot tables) about once a second,
 * and each scheduler its top-processes block as often; scheduler 0 also
 * copies the registered names into the names table then, when they changed.
 * The node block (version 4) is dist/'s to write (dist/stats.c), by the
 * same protocol.
 * A runtime starting removes what dead programs of its user left in
 * /dev/shm. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/sched/sched.h"
#include "util/seg.h"
#include "core/registry/registry.h"
#include "krill.h"

#define RT_EVERY_NS 1000000000ull

static _Atomic unsigned runtimes_created;

_Static_assert(sizeof(((struct kr_stats_name *)0)->name) == KR_NAME_MAX + 1,
	       "a registered name fits the names table");
_Static_assert(sizeof(((struct kr_stats_name *)0)->name) % 8 == 0,
	       "names are published a word at a time");

/* A field of a block under a seqlock. Release: no field store becomes
 * visible before the odd sequence number that announces the write (a
 * plain move on x86); atomic, so readers that race by design are not data
 * races. */
static void put(uint64_t *field, uint64_t v)
{
	atomic_store_explicit((_Atomic uint64_t *)field, v, memory_order_release);
}

static void write_begin(_Atomic uint64_t *seq)
{
	atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static void write_end(_Atomic uint64_t *seq)
{
	atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1,
			      memory_order_release);
}

int kri_stats_open(struct kr_runtime *rt)
{
	struct timespec rts;
	size_t size = kr_stats_size(rt->n);
	unsigned k = atomic_fetch_add(&runtimes_created, 1);
	snprintf(rt->segname, sizeof(rt->segname), KR_STATS_PREFIX "%d.%u", (int)getpid(), k);
	int fd = shm_open(rt->segname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		/* A dead program of the same pid left it: ours now. */
		shm_unlink(rt->segname);
		fd = shm_open(rt->segname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return -errno;
	rt->names_buf = calloc(KR_STATS_NAMES, sizeof(*rt->names_buf));
	if (!rt->names_buf) {
		close(fd);
		shm_unlink(rt->segname);
		return -ENOMEM;
	}
	if (ftruncate(fd, (off_t)size)) {
		int err = -errno;
		close(fd);
		shm_unlink(rt->segname);
		free(rt->names_buf);
		rt->names_buf = 0;
		return err;
	}
	void *m = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		shm_unlink(rt->segname);
		free(rt->names_buf);
		rt->names_buf = 0;
		return -ENOMEM;
	}
	struct kr_stats_header *h = m;
	memset(h, 0, size);
	h->version = KR_STATS_VERSION;
	h->header_size = sizeof(*h);
	h->sched_size = sizeof(struct kr_stats_sched);
	h->top_size = sizeof(struct kr_stats_top);
	h->names_size = sizeof(struct kr_stats_names);
	h->node_size = sizeof(struct kr_stats_node);
	h->nsched = rt->n;
	h->os_pid = (int)getpid();
	h->numa_nodes = kri_topo_nnuma(rt->topo);
	h->l3_groups = kri_topo_nl3(rt->topo);
	h->cores = kri_topo_ncores(rt->topo);
	clock_gettime(CLOCK_REALTIME, &rts);
	h->start_realtime_ns = (uint64_t)rts.tv_sec * 1000000000u + (uint64_t)rts.tv_nsec;
	h->start_mono_ns = rt->t0_ns;
	kri_topo_describe(rt->topo, h->topology, sizeof(h->topology));
	for (unsigned i = 0; i < rt->n; i++) {
		struct sched *s = &rt->s[i];
		s->pub = kr_stats_sched_at(h, i);
		s->tpub = kr_stats_top_at(h, i);
		s->top_ns = rt->t0_ns;
		s->pub->cpu = s->place.cpu >= 0 && kri_topo_is_real(rt->topo)
				  ? (uint64_t)s->place.cpu
				  : UINT64_MAX;
		s->pub->numa = s->place.numa;
		s->pub->l3 = s->place.l3;
	}
	/* The magic last: a reader that sees it sees a complete header. */
	atomic_store_explicit((_Atomic uint64_t *)&h->magic, KR_STATS_MAGIC, memory_order_release);
	rt->seg = h;
	return 0;
}

void kri_stats_close(struct kr_runtime *rt)
{
	if (!rt->seg)
		return;
	munmap(rt->seg, kr_stats_size(rt->n));
	shm_unlink(rt->segname);
	rt->seg = 0;
	free(rt->names_buf);
	rt->names_buf = 0;
	for (unsigned i = 0; i < rt->n; i++) {
		rt->s[i].pub = 0;
		rt->s[i].tpub = 0;
	}
}

struct kr_stats_node *kri_stats_node(struct kr_runtime *rt)
{
	return rt->seg ? kr_stats_node_at(rt->seg) : 0;
}

static uint64_t get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Pages of a slot table's chunks in memory (mincore): its chunks are
 * mapped whole but touched as slots are first used. */
static uint64_t slots_resident(struct slots *t)
{
	size_t bytes = kri_slots_chunk_bytes(t), page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char vec[1024];
	uint64_t n = 0, mapped, unowned;
	if (page == 0 || bytes / page > sizeof(vec))
		return 0;
	kri_slots_bytes(t, &mapped, &unowned);
	for (uint64_t k = 0; k < mapped / bytes; k++) {
		/* Acquire: pairs with the release that published the chunk;
		 * chunks are never unmapped while the table lives. */
		void *c = atomic_load_explicit(&t->dir[k], memory_order_acquire);
		if (!c || mincore(c, bytes, vec))
			continue;
		for (size_t i = 0; i < bytes / page; i++)
			n += vec[i] & 1;
	}
	return n * page;
}

static uint64_t nonneg(int64_t v)
{
	return v > 0 ? (uint64_t)v : 0;
}

/* The names table: only when the registry changed since the last
 * publication, so an idle runtime copies nothing. The names are copied
 * under the registry's read lock into names_buf, then written here under
 * the block's sequence counter: registrations wait for a copy of at most
 * KR_STATS_NAMES entries, not for the segment's stores. */
static void publish_names(struct kr_runtime *rt, uint64_t now)
{
	struct kr_stats_names *t = kr_stats_names_at(rt->seg);
	if (kri_registry_gen(rt->reg) == rt->names_gen)
		return;
	unsigned n, was = rt->names_n;
	uint64_t gen, total = kri_registry_copy(rt->reg, rt->names_buf, KR_STATS_NAMES, &n, &gen);
	write_begin(&t->seq);
	put(&t->now_ns, now);
	put(&t->n, n);
	put(&t->total, total);
	/* The entries in use, and those the last publication used past them. */
	for (unsigned i = 0; i < n || i < was; i++) {
		struct kr_stats_name *e = &t->e[i];
		union {
			char s[sizeof(e->name)];
			uint64_t w[sizeof(e->name) / 8];
		} name = {{0}};
		if (i < n)
			memcpy(name.s, rt->names_buf[i].s, sizeof(name.s));
		put(&e->pid, i < n ? rt->names_buf[i].pid : 0);
		for (unsigned k = 0; k < sizeof(name.w) / 8; k++)
			put((uint64_t *)(void *)&e->name[8 * k], name.w[k]);
	}
	write_end(&t->seq);
	rt->names_gen = gen;
	rt->names_n = n;
}

static void publish_runtime(struct kr_runtime *rt, uint64_t now)
{
	if (!rt->seg)
		return;
	struct kr_stats_runtime *r = &rt->seg->rt;
	struct kri_arena_stats total = {0}, a;
	int64_t held = 0, msgs = atomic_load_explicit(&rt->fenv, memory_order_relaxed);
	for (unsigned i = 0; i < rt->n; i++) {
		kri_arena_stats(&rt->s[i].arena, &a);
		total.allocated += a.allocated;
		total.active += a.active;
		total.resident += a.resident;
		/* Live, not as last published: memory streams between
		 * schedulers through these counters, and two publications a
		 * few thousand steps apart would show what passed between
		 * them rather than what is held. */
		held += atomic_load_explicit(&rt->s[i].arena.bytes, memory_order_relaxed);
		msgs += arena_kind_in_use(&rt->s[i].arena, ARENA_ENV);
	}
	uint64_t procs, punowned, timers, tunowned;
	kri_slots_bytes(&rt->procs, &procs, &punowned);
	kri_slots_bytes(&rt->timers, &timers, &tunowned);
	/* The arenas count the chunks they mapped; foreign spawns map theirs
	 * with none, and foreign sends' envelopes come from malloc. */
	held +=
	    (int64_t)(punowned + tunowned) + atomic_load_explicit(&rt->fenv, memory_order_relaxed);
	uint64_t m = nonneg(msgs);
	int64_t other = held - (int64_t)(procs + timers + m);
	write_begin(&r->seq);
	put(&r->now_ns, now);
	put(&r->alive, kri_rt_alive(rt));
	put(&r->foreign_spawned, (uint64_t)atomic_load(&rt->fspawned));
	uint64_t restarts = 0;
	for (unsigned i = 0; i < rt->n; i++)
		restarts += get(&rt->s[i].st.restarts);
	put(&r->restarts, restarts);
	put(&r->names, kri_registry_count(rt->reg));
	/* jemalloc sees the arenas; the slot tables are mapped beside it. */
	put(&r->mem_allocated, total.allocated + procs + timers);
	put(&r->mem_active, total.active + procs + timers);
	put(&r->mem_resident,
	    total.resident + slots_resident(&rt->procs) + slots_resident(&rt->timers));
	put(&r->mem_procs, procs);
	put(&r->mem_msgs, m);
	put(&r->mem_timers, timers);
	put(&r->mem_other, nonneg(other));
	put(&r->mem_held, procs + timers + m + nonneg(other));
	write_end(&r->seq);
	publish_names(rt, now);
}

/* The candidates (kri_top_note), busiest first, become the block; then a
 * new interval starts. */
static int cand_cmp(const void *a, const void *b)
{
	const struct top_cand *x = a, *y = b;
	if (x->handled != y->handled)
		return x->handled > y->handled ? -1 : 1;
	return x->mailbox > y->mailbox ? -1 : x->mailbox < y->mailbox;
}

static void publish_top(struct sched *s, uint64_t now)
{
	struct kr_stats_top *t = s->tpub;
	unsigned n = s->ntop < KR_STATS_TOP ? s->ntop : KR_STATS_TOP;
	qsort(s->top, s->ntop, sizeof(s->top[0]), cand_cmp);
	write_begin(&t->seq);
	put(&t->now_ns, now);
	put(&t->interval_ns, now - s->top_ns);
	put(&t->n, n);
	for (unsigned i = 0; i < KR_STATS_TOP; i++) {
		struct kr_stats_proc *p = &t->p[i];
		const struct top_cand *c = &s->top[i];
		union {
			char s[sizeof(p->name)];
			uint64_t w[sizeof(p->name) / 8];
		} name = {{0}};
		if (i < n)
			kri_registry_name_of(s->rt, c->pid, name.s, sizeof(name.s));
		put(&p->pid, i < n ? c->pid : 0);
		put(&p->mailbox, i < n ? c->mailbox : 0);
		put(&p->handled, i < n ? c->handled : 0);
		put(&p->memory, i < n ? c->memory : 0);
		for (unsigned k = 0; k < sizeof(name.w) / 8; k++)
			put((uint64_t *)(void *)&p->name[8 * k], name.w[k]);
	}
	write_end(&t->seq);
	s->ntop = 0;
	s->top_ns = now;
}

void kri_stats_publish_runtime(struct kr_runtime *rt)
{
	publish_runtime(rt, kri_now_ns());
}

void kri_stats_publish(struct sched *s, uint64_t now)
{
	struct kr_stats_sched *b = s->pub;
	if (!b)
		return;
	struct sched_stats *st = &s->st;
	uint64_t idle = get(&st->idle_ns), life = now - s->rt->t0_ns;
	write_begin(&b->seq);
	put(&b->busy_ns, life > idle ? life - idle : 0);
	put(&b->idle_ns, idle);
	put(&b->runs, get(&st->runs));
	put(&b->msgs, get(&st->msgs));
	put(&b->runq_len, kri_runq_len(&s->q) + kri_runq_given(&s->q) + (s->runnext != 0));
	for (int k = 0; k < 3; k++)
		put(&b->steals[k], get(&st->steals[k]));
	put(&b->sleeps, get(&st->sleeps));
	put(&b->wakeups, get(&st->wakeups));
	put(&b->stolen, get(&st->stolen));
	put(&b->woke, get(&st->woke));
	put(&b->lone_fails, get(&st->lone_fails));
	put(&b->given, get(&st->given));
	put(&b->stayed, get(&st->stayed));
	put(&b->spawned, get(&st->spawned));
	put(&b->io_submitted, s->ring.submitted);
	put(&b->io_completed, s->ring.completed);
	put(&b->io_foreign, s->ring.foreign);
	put(&b->exited, get(&st->exited));
	put(&b->crashed, get(&st->crashed));
	put(&b->killed, get(&st->killed));
	put(&b->timers, s->wheel.count);
	put(&b->mem_held, (uint64_t)atomic_load_explicit(&s->arena.bytes, memory_order_relaxed));
	arena_kind_publish(&s->arena, ARENA_ENV);
	put(&b->mem_msgs, (uint64_t)arena_kind_in_use(&s->arena, ARENA_ENV));
	if (now - s->pub_ns >= RT_EVERY_NS) {
		/* mallctl stats cost microseconds: once a second. */
		struct kri_arena_stats a;
		kri_arena_stats(&s->arena, &a);
		put(&b->mem_allocated, a.allocated);
		put(&b->mem_active, a.active);
		put(&b->mem_resident, a.resident);
	}
	write_end(&b->seq);
	if (s->tpub && now - s->top_ns >= RT_EVERY_NS)
		publish_top(s, now);
	if (now - s->pub_ns >= RT_EVERY_NS) {
		s->pub_ns = now;
		if (s->id == 0)
			publish_runtime(s->rt, now);
	}
}

int kr_stats_snapshot(kr_runtime *rt, void *buf, size_t len)
{
	if (!rt || !buf)
		return -EINVAL;
	if (!rt->seg)
		return -ENODATA;
	size_t size = kr_stats_size(rt->n);
	if (len < size)
		return -ENOSPC;
	struct kr_stats_header *h = buf;
	memcpy(h, rt->seg, offsetof(struct kr_stats_header, rt));
	if (kr_stats_read_block(&rt->seg->rt, &h->rt, sizeof(h->rt)))
		return -EAGAIN;
	for (unsigned i = 0; i < rt->n; i++)
		if (kr_stats_read_block(kr_stats_sched_at(rt->seg, i), kr_stats_sched_at(h, i),
					sizeof(struct kr_stats_sched)) ||
		    kr_stats_read_block(kr_stats_top_at(rt->seg, i), kr_stats_top_at(h, i),
					sizeof(struct kr_stats_top)))
			return -EAGAIN;
	if (kr_stats_read_block(kr_stats_names_at(rt->seg), kr_stats_names_at(h),
				sizeof(struct kr_stats_names)))
		return -EAGAIN;
	struct kr_stats_node *nsrc = kr_stats_node_at(rt->seg), *ndst = kr_stats_node_at(h);
	if (kr_stats_read_block(nsrc, ndst, offsetof(struct kr_stats_node, c)))
		return -EAGAIN;
	for (unsigned i = 0; i < KR_STATS_CONNS; i++)
		if (kr_stats_read_block(&nsrc->c[i], &ndst->c[i], sizeof(nsrc->c[i])))
			return -EAGAIN;
	return (int)size;
}

/* ---- segments dead programs left ----------------------------------------
 * The test is krilltop's (tools/krilltop.c, list --clean): a segment is
 * stale when its pid is gone (or a zombie), or when a live pid does not
 * map it and it is older than a runtime needs to map it (the pid was
 * reused). Only this user's segments, never this process's own. */

#define YOUNG_S 5 /* as krilltop's: a segment this young may not be mapped yet */

void kri_stats_clean_dead(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	int self = (int)getpid();
	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[300], name[300], *end;
		struct stat st;
		const char *pfx = &KR_STATS_PREFIX[1];
		if (strncmp(e->d_name, pfx, strlen(pfx)))
			continue;
		const char *num = e->d_name + strlen(pfx);
		long pid = strtol(num, &end, 10);
		if (end == num || *end != '.' || pid <= 0 || pid > 0x7fffffff || pid == self)
			continue;
		const char *k = end + 1;
		strtoul(k, &end, 10);
		if (end == k || *end)
			continue;
		snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
		snprintf(name, sizeof(name), "/%s", e->d_name);
		if (lstat(path, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		bool stale = kri_pid_state((int)pid) != KRI_P_ALIVE ||
			     (kri_pid_maps((int)pid, path) == 0 && time(0) - st.st_ctime > YOUNG_S);
		if (stale)
			shm_unlink(name);
	}
	closedir(d);
}
