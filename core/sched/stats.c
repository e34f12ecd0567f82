/* stats: the live-stats segment (include/krill_stats.h). Schedulers keep
 * their counters in their own struct sched and copy them into their block
 * of the segment at quiescent points and around sleep, so the message path
 * pays nothing for observability; scheduler 0 refreshes the runtime-wide
 * block (memory from jemalloc) about once a second. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/sched/sched.h"
#include "core/registry/registry.h"

#define RT_EVERY_NS 1000000000ull

static _Atomic unsigned runtimes_created;

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
	if (ftruncate(fd, (off_t)size)) {
		int err = -errno;
		close(fd);
		shm_unlink(rt->segname);
		return err;
	}
	void *m = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		shm_unlink(rt->segname);
		return -ENOMEM;
	}
	struct kr_stats_header *h = m;
	memset(h, 0, size);
	h->version = KR_STATS_VERSION;
	h->header_size = sizeof(*h);
	h->sched_size = sizeof(struct kr_stats_sched);
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
	for (unsigned i = 0; i < rt->n; i++)
		rt->s[i].pub = 0;
}

static uint64_t get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void publish_runtime(struct kr_runtime *rt, uint64_t now)
{
	if (!rt->seg)
		return;
	struct kr_stats_runtime *r = &rt->seg->rt;
	struct kri_arena_stats total = {0}, a;
	for (unsigned i = 0; i < rt->n; i++) {
		kri_arena_stats(&rt->s[i].arena, &a);
		total.allocated += a.allocated;
		total.active += a.active;
		total.resident += a.resident;
	}
	write_begin(&r->seq);
	put(&r->now_ns, now);
	put(&r->alive, kri_rt_alive(rt));
	put(&r->foreign_spawned, (uint64_t)atomic_load(&rt->fspawned));
	uint64_t restarts = 0;
	for (unsigned i = 0; i < rt->n; i++)
		restarts += get(&rt->s[i].st.restarts);
	put(&r->restarts, restarts);
	put(&r->names, kri_registry_count(rt->reg));
	put(&r->mem_allocated, total.allocated);
	put(&r->mem_active, total.active);
	put(&r->mem_resident, total.resident);
	write_end(&r->seq);
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
	put(&b->runq_len, kri_runq_len(&s->q) + (s->runnext != 0));
	for (int k = 0; k < 3; k++)
		put(&b->steals[k], get(&st->steals[k]));
	put(&b->sleeps, get(&st->sleeps));
	put(&b->wakeups, get(&st->wakeups));
	put(&b->spawned, get(&st->spawned));
	put(&b->io_submitted, s->ring.submitted);
	put(&b->io_completed, s->ring.completed);
	put(&b->exited, get(&st->exited));
	put(&b->crashed, get(&st->crashed));
	put(&b->killed, get(&st->killed));
	put(&b->timers, s->wheel.count);
	if (now - s->pub_ns >= RT_EVERY_NS) {
		/* mallctl stats cost microseconds: once a second. */
		struct kri_arena_stats a;
		kri_arena_stats(&s->arena, &a);
		put(&b->mem_allocated, a.allocated);
		put(&b->mem_active, a.active);
		put(&b->mem_resident, a.resident);
	}
	write_end(&b->seq);
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
					sizeof(struct kr_stats_sched)))
			return -EAGAIN;
	return (int)size;
}
