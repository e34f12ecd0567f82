/* krilltop: live stats of running krill programs, read from the shared-memory segments their
 * runtimes publish (include/krill_stats.h). It links nothing of krill, and needs only libc:
 * it lists segments, watches one runtime full-screen (ANSI codes), or prints one snapshot. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "krill_stats.h"
#include "util/seg.h"

#define SHM_DIR   "/dev/shm"
#define MAX_SCHED (1u << 20) /* far above any real runtime: a larger count is corruption */
/* The oldest layout we read: version 2 has no names table (--name then sees only the
 * busiest processes). */
#define MIN_VERSION 2u
/* A segment this young may be one kr_runtime_new has created but not yet mapped. */
#define YOUNG_S 5

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char *usage_text =
    "usage: krilltop                     list the krill programs this user may read\n"
    "       krilltop --clean             remove segments left by programs that died\n"
    "       krilltop PID [options]       watch one program (q quits, s sorts, ? helps)\n"
    "options:\n"
    "  --runtime N     which runtime of PID (default: the first)\n"
    "  --interval MS   refresh period of the live view (default 1000)\n"
    "  --once          print one plain-text snapshot and exit\n"
    "  --top           print the busiest processes (the top tables) and exit\n"
    "  --by KEY        --top's order: handled (default), mailbox or memory\n"
    "  --name NAME     print the pid registered as NAME (and its figures if busy) and exit\n"
    "  --json          print one snapshot as a JSON object and exit\n"
    "  --sample MS     --once/--json/--top: gap between the two samples rates come from (200)\n";

_Noreturn static void die(int status, const char *fmt, ...)
{
	va_list ap;
	fputs("krilltop: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Printable ASCII only: names come from the kernel (comm) or from shared memory, and must
 * not smuggle escape codes onto the terminal or invalid UTF-8 into JSON. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

/* ---- processes ------------------------------------------------------------------------- */

static void pid_comm(int pid, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(out, (int)len, f))
		snprintf(out, len, "?");
	if (f)
		fclose(f);
	out[strcspn(out, "\n")] = 0;
	sanitize(out);
}

/* ---- segments -------------------------------------------------------------------------- */

struct segid {
	int pid;
	unsigned n;
};

/* "krill.<pid>.<n>", digits only, or false. */
static bool parse_segname(const char *name, struct segid *id)
{
	const char *p = name;
	unsigned long long v[2];
	if (strncmp(p, &KR_STATS_PREFIX[1], strlen(KR_STATS_PREFIX) - 1))
		return false;
	p += strlen(KR_STATS_PREFIX) - 1;
	for (int k = 0; k < 2; k++) {
		if (*p < '0' || *p > '9')
			return false;
		v[k] = 0;
		for (; *p >= '0' && *p <= '9'; p++) {
			v[k] = v[k] * 10 + (unsigned)(*p - '0');
			if (v[k] > INT_MAX)
				return false;
		}
		if (*p != (k == 0 ? '.' : '\0'))
			return false;
		p++;
	}
	id->pid = (int)v[0];
	id->n = (unsigned)v[1];
	return id->pid > 0;
}

static int segid_cmp(const void *a, const void *b)
{
	const struct segid *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->n < y->n ? -1 : x->n > y->n;
}

/* The segments in /dev/shm, of one pid (pid > 0) or all, sorted; exits on error. */
static struct segid *scan_segments(int pid, size_t *count)
{
	DIR *d = opendir(SHM_DIR);
	struct segid *v = 0, id;
	size_t n = 0, cap = 0;
	struct dirent *e;
	if (!d)
		die(EXIT_RUNTIME, "cannot read %s: %s", SHM_DIR, strerror(errno));
	while ((e = readdir(d))) {
		if (!parse_segname(e->d_name, &id) || (pid > 0 && id.pid != pid))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				die(EXIT_RUNTIME, "out of memory");
		}
		v[n++] = id;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), segid_cmp);
	*count = n;
	return v;
}

/* One mapped, validated segment. hdr is a private copy of the header's fixed part, which
 * the runtime writes once before it publishes the magic. */
struct seg {
	struct segid id;
	char name[64]; /* for shm_open: "/krill.<pid>.<n>" */
	char path[80]; /* what people see: "/dev/shm/krill.<pid>.<n>" */
	const kr_stats_header *map;
	size_t size;
	dev_t dev;
	ino_t ino;
	kr_stats_header hdr;
	uint32_t nsched;
};

static void seg_names(struct seg *s, struct segid id)
{
	s->id = id;
	snprintf(s->name, sizeof(s->name), KR_STATS_PREFIX "%d.%u", id.pid, id.n);
	snprintf(s->path, sizeof(s->path), SHM_DIR "/krill.%d.%u", id.pid, id.n);
}

/* The bytes a segment of h's scheduler count needs: the layout's own, or more if its blocks
 * are bigger than ours (a later version's). */
static size_t seg_need(const kr_stats_header *h)
{
	bool names = h->version >= 3, node = h->version >= 4;
	size_t ours = kr_stats_size(h->nsched) - (names ? 0 : sizeof(kr_stats_names)) -
		      (node ? 0 : sizeof(kr_stats_node));
	size_t theirs = h->header_size + (size_t)h->nsched * ((size_t)h->sched_size + h->top_size) +
			(names ? h->names_size : 0) + (node ? h->node_size : 0);
	return ours > theirs ? ours : theirs;
}

/* Map and validate; 0, or -1 with the reason in err. Nothing in the segment is trusted
 * until magic, version, sizes and the file's length agree. */
static int seg_open(struct seg *s, struct segid id, char *err, size_t errlen)
{
	struct stat st;
	memset(s, 0, sizeof(*s));
	seg_names(s, id);
	int fd = shm_open(s->name, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		if (e == EACCES && stat(s->path, &st) == 0)
			snprintf(err, errlen, "permission denied reading %s (owned by uid %u)",
				 s->path, (unsigned)st.st_uid);
		else
			snprintf(err, errlen, "cannot open %s: %s", s->path, strerror(e));
		return -1;
	}
	if (fstat(fd, &st)) {
		snprintf(err, errlen, "cannot stat %s: %s", s->path, strerror(errno));
		close(fd);
		return -1;
	}
	s->size = (size_t)st.st_size;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	if (s->size < offsetof(kr_stats_header, header_size)) {
		snprintf(err, errlen, "%s is truncated (%zu bytes; a header needs %zu)", s->path,
			 s->size, sizeof(kr_stats_header));
		close(fd);
		return -1;
	}
	void *m = mmap(0, s->size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %s: %s", s->path, strerror(errno));
		return -1;
	}
	s->map = m;
	/* The runtime stores the magic last; zero means it is still filling the header in. */
	const _Atomic uint64_t *mp = (const _Atomic uint64_t *)&s->map->magic;
	uint64_t magic = atomic_load_explicit(mp, memory_order_acquire);
	for (int i = 0; i < 50 && magic == 0; i++) {
		sleep_ms(2);
		magic = atomic_load_explicit(mp, memory_order_acquire);
	}
	const kr_stats_header *h = s->map;
	size_t need;
	if (magic != KR_STATS_MAGIC)
		snprintf(err, errlen,
			 "%s is not a krill stats segment (bad magic 0x%016" PRIx64 ")", s->path,
			 magic);
	else if (h->version < MIN_VERSION || h->version > KR_STATS_VERSION)
		snprintf(err, errlen,
			 "%s has layout version %u; this krilltop reads versions %u to %u", s->path,
			 h->version, MIN_VERSION, KR_STATS_VERSION);
	else if (s->size < sizeof(kr_stats_header))
		snprintf(err, errlen, "%s is truncated (%zu bytes; a header needs %zu)", s->path,
			 s->size, sizeof(kr_stats_header));
	/* A version may only grow by appending; whatever we read must be where we expect. */
	else if (h->header_size < sizeof(kr_stats_header) || h->header_size % 8)
		snprintf(err, errlen, "%s has a bad header size %u (version %u has %zu)", s->path,
			 h->header_size, KR_STATS_VERSION, sizeof(kr_stats_header));
	else if (h->sched_size < sizeof(kr_stats_sched) || h->sched_size % 8)
		snprintf(err, errlen, "%s has a bad scheduler block size %u (version %u has %zu)",
			 s->path, h->sched_size, KR_STATS_VERSION, sizeof(kr_stats_sched));
	else if (h->top_size < sizeof(kr_stats_top) || h->top_size % 8)
		snprintf(err, errlen, "%s has a bad top block size %u (version %u has %zu)",
			 s->path, h->top_size, KR_STATS_VERSION, sizeof(kr_stats_top));
	else if (h->version >= 3 && (h->names_size < sizeof(kr_stats_names) || h->names_size % 8))
		snprintf(err, errlen, "%s has a bad names block size %u (version %u has %zu)",
			 s->path, h->names_size, KR_STATS_VERSION, sizeof(kr_stats_names));
	else if (h->version >= 4 && (h->node_size < sizeof(kr_stats_node) || h->node_size % 8))
		snprintf(err, errlen, "%s has a bad node block size %u (version %u has %zu)",
			 s->path, h->node_size, KR_STATS_VERSION, sizeof(kr_stats_node));
	else if (h->nsched > MAX_SCHED)
		snprintf(err, errlen, "%s claims %u schedulers; it is corrupt", s->path, h->nsched);
	else if (s->size < (need = seg_need(h)))
		snprintf(err, errlen, "%s is truncated (%zu bytes; %u schedulers need %zu)",
			 s->path, s->size, h->nsched, need);
	else if (h->os_pid != id.pid)
		snprintf(err, errlen, "%s names pid %d; it is corrupt", s->path, h->os_pid);
	else {
		memcpy(&s->hdr, h, offsetof(kr_stats_header, rt));
		s->hdr.topology[sizeof(s->hdr.topology) - 1] = 0;
		sanitize(s->hdr.topology);
		s->nsched = h->nsched;
		return 0;
	}
	munmap(m, s->size);
	s->map = 0;
	return -1;
}

static void seg_close(struct seg *s)
{
	if (s->map)
		munmap((void *)s->map, s->size);
	s->map = 0;
}

/* Has the runtime removed its segment (kr_runtime_free)? A name that now points at another
 * file counts as removed too. */
static bool seg_removed(const struct seg *s)
{
	struct stat st;
	return stat(s->path, &st) || st.st_dev != s->dev || st.st_ino != s->ino;
}

/* ---- samples and derived figures ------------------------------------------------------- */

struct sample {
	uint64_t t_ns; /* our CLOCK_MONOTONIC when taken */
	kr_stats_runtime rt;
	kr_stats_sched *b;     /* nsched copies */
	kr_stats_top *t;       /* nsched copies of the top tables */
	kr_stats_names *names; /* the names table, or NULL (a version 2 segment) */
	kr_stats_node *node;   /* the node block, or NULL (before version 4) */
};

static void sample_init(struct sample *x, const struct seg *s)
{
	uint32_t nsched = s->nsched;
	*x = (struct sample){.b = calloc(nsched ? nsched : 1, sizeof(*x->b)),
			     .t = calloc(nsched ? nsched : 1, sizeof(*x->t))};
	if (s->hdr.version >= 3)
		x->names = calloc(1, sizeof(*x->names));
	if (s->hdr.version >= 4)
		x->node = calloc(1, sizeof(*x->node));
	if (!x->b || !x->t || (s->hdr.version >= 3 && !x->names) ||
	    (s->hdr.version >= 4 && !x->node))
		die(EXIT_RUNTIME, "out of memory");
}

static void sample_free(struct sample *x)
{
	free(x->b);
	free(x->t);
	free(x->names);
	free(x->node);
}

/* Copy every block consistently. A block that stays busy through all retries (its writer
 * was descheduled mid-write) keeps its previous copy: one stale row beats a torn one. */
static void sample_take(const struct seg *s, struct sample *x)
{
	kr_stats_header *h = (kr_stats_header *)s->map;
	kr_stats_runtime rt;
	kr_stats_sched b;
	kr_stats_top t;
	for (int tries = 0; tries < 3; tries++)
		if (!kr_stats_read_block(&h->rt, &rt, sizeof(rt))) {
			memcpy(&x->rt, &rt, sizeof(rt));
			break;
		}
	for (uint32_t i = 0; i < s->nsched; i++)
		for (int tries = 0; tries < 3; tries++)
			if (!kr_stats_read_block(kr_stats_sched_at(h, i), &b, sizeof(b))) {
				memcpy(&x->b[i], &b, sizeof(b));
				break;
			}
	for (uint32_t i = 0; i < s->nsched; i++)
		for (int tries = 0; tries < 3; tries++)
			if (!kr_stats_read_block(kr_stats_top_at(h, i), &t, sizeof(t))) {
				if (t.n > KR_STATS_TOP)
					t.n = KR_STATS_TOP; /* never written so: corrupt */
				for (unsigned k = 0; k < KR_STATS_TOP; k++) {
					t.p[k].name[sizeof(t.p[k].name) - 1] = 0;
					sanitize(t.p[k].name);
				}
				memcpy(&x->t[i], &t, sizeof(t));
				break;
			}
	/* The names table: a large block, rarely written (only when a name changed). */
	for (int tries = 0; x->names && tries < 3; tries++)
		if (!kr_stats_read_block(kr_stats_names_at(h), x->names, sizeof(*x->names))) {
			if (x->names->n > KR_STATS_NAMES)
				x->names->n = KR_STATS_NAMES; /* never written so: corrupt */
			for (unsigned k = 0; k < x->names->n; k++) {
				char *nm = x->names->e[k].name;
				nm[sizeof(x->names->e[k].name) - 1] = 0;
				sanitize(nm);
			}
			break;
		}
	/* The node block: its head and each connection's entry, each under its own counter. */
	if (x->node) {
		kr_stats_node *nb = kr_stats_node_at(h);
		kr_stats_conn e;
		for (int tries = 0; tries < 3; tries++)
			if (!kr_stats_read_block(nb, x->node, offsetof(kr_stats_node, c))) {
				x->node->name[sizeof(x->node->name) - 1] = 0;
				sanitize(x->node->name);
				break;
			}
		for (unsigned k = 0; k < KR_STATS_CONNS; k++)
			for (int tries = 0; tries < 3; tries++)
				if (!kr_stats_read_block(&nb->c[k], &e, sizeof(e))) {
					e.peer[sizeof(e.peer) - 1] = 0;
					sanitize(e.peer);
					memcpy(&x->node->c[k], &e, sizeof(e));
					break;
				}
	}
	x->t_ns = mono_ns();
}

static uint64_t delta(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

struct rates {
	double util; /* 0..1 */
	double msgs, runs, near, far, sleeps, wakeups;
};

struct row {
	uint32_t id;
	const kr_stats_sched *b;
	struct rates r;
};

struct totals {
	uint64_t busy_ns, idle_ns, runs, msgs, runq, steals[3], sleeps, wakeups;
	uint64_t stolen, given, stayed, woke, lone_fails; /* where scheduling costs (#19) */
	uint64_t spawned, exited, crashed, killed, timers, io_submitted, io_completed;
	uint64_t mem_allocated, mem_active, mem_resident;
};

/* One process of a scheduler's top table. */
struct toprow {
	uint32_t sched;  /* the scheduler that saw it busiest */
	kr_stats_proc p; /* its entries of every table, merged */
	double rate;     /* messages handled a second over the table's interval */
};

/* Everything a screen or a JSON object shows, from the latest sample and the one before. */
struct view {
	const struct seg *s;
	const struct sample *cur;
	bool rates;  /* false: one sample only */
	double dt_s; /* between the samples */
	double uptime_s;
	struct row *rows;
	struct totals tot;
	struct rates sum; /* util: the mean over schedulers */
	char comm[64];
	const struct segid *all; /* every runtime of the pid, for the header */
	size_t nall;
	struct toprow *top; /* every scheduler's table, in top_key order */
	size_t ntop;
};

static struct rates rates_of(const kr_stats_sched *c, const kr_stats_sched *p, double dt_s)
{
	struct rates r;
	double wall = dt_s * 1e9;
	/* busy_ns is refreshed only when the scheduler publishes, but it is cumulative, so its
	 * delta over our own wall-clock delta is the share of the interval spent busy, give or
	 * take one publication at each end. */
	r.util = wall > 0 ? (double)delta(c->busy_ns, p->busy_ns) / wall : 0;
	r.util = r.util > 1 ? 1 : r.util;
	r.msgs = (double)delta(c->msgs, p->msgs) / dt_s;
	r.runs = (double)delta(c->runs, p->runs) / dt_s;
	r.near = (double)delta(c->steals[KR_STEAL_L3], p->steals[KR_STEAL_L3]) / dt_s;
	r.far = (double)(delta(c->steals[KR_STEAL_NUMA], p->steals[KR_STEAL_NUMA]) +
			 delta(c->steals[KR_STEAL_REMOTE], p->steals[KR_STEAL_REMOTE])) /
		dt_s;
	r.sleeps = (double)delta(c->sleeps, p->sleeps) / dt_s;
	r.wakeups = (double)delta(c->wakeups, p->wakeups) / dt_s;
	return r;
}

static int top_cmp(const void *a, const void *b);

static void view_compute(struct view *v, const struct seg *s, const struct sample *prev,
			 const struct sample *cur)
{
	v->s = s;
	v->cur = cur;
	v->rates = prev && cur->t_ns > prev->t_ns;
	v->dt_s = v->rates ? (double)(cur->t_ns - prev->t_ns) / 1e9 : 0;
	v->uptime_s = (double)delta(cur->t_ns, s->hdr.start_mono_ns) / 1e9;
	memset(&v->tot, 0, sizeof(v->tot));
	memset(&v->sum, 0, sizeof(v->sum));
	struct totals *t = &v->tot;
	for (uint32_t i = 0; i < s->nsched; i++) {
		const kr_stats_sched *b = &cur->b[i];
		struct row *r = &v->rows[i];
		r->id = i;
		r->b = b;
		memset(&r->r, 0, sizeof(r->r));
		if (v->rates) {
			r->r = rates_of(b, &prev->b[i], v->dt_s);
			v->sum.util += r->r.util / s->nsched;
			v->sum.msgs += r->r.msgs;
			v->sum.runs += r->r.runs;
			v->sum.near += r->r.near;
			v->sum.far += r->r.far;
			v->sum.sleeps += r->r.sleeps;
			v->sum.wakeups += r->r.wakeups;
		}
		t->busy_ns += b->busy_ns;
		t->idle_ns += b->idle_ns;
		t->runs += b->runs;
		t->msgs += b->msgs;
		t->runq += b->runq_len;
		for (int k = 0; k < 3; k++)
			t->steals[k] += b->steals[k];
		t->sleeps += b->sleeps;
		t->wakeups += b->wakeups;
		t->stolen += b->stolen;
		t->given += b->given;
		t->stayed += b->stayed;
		t->woke += b->woke;
		t->lone_fails += b->lone_fails;
		t->spawned += b->spawned;
		t->exited += b->exited;
		t->crashed += b->crashed;
		t->killed += b->killed;
		t->timers += b->timers;
		t->io_submitted += b->io_submitted;
		t->io_completed += b->io_completed;
		t->mem_allocated += b->mem_allocated;
		t->mem_active += b->mem_active;
		t->mem_resident += b->mem_resident;
	}
	/* Processes spawned by threads that are no scheduler are counted in the runtime block. */
	t->spawned += cur->rt.foreign_spawned;
	/* A process that moved between schedulers is in several tables: one row, its
	 * messages summed, its mailbox and memory the largest seen. */
	v->ntop = 0;
	for (uint32_t i = 0; i < s->nsched; i++) {
		const kr_stats_top *tb = &cur->t[i];
		for (uint64_t k = 0; k < tb->n && k < KR_STATS_TOP; k++) {
			const kr_stats_proc *p = &tb->p[k];
			double rate = tb->interval_ns
					  ? (double)p->handled * 1e9 / (double)tb->interval_ns
					  : 0;
			struct toprow *r = 0;
			for (size_t j = 0; j < v->ntop && !r; j++)
				if (v->top[j].p.pid == p->pid)
					r = &v->top[j];
			if (!r) {
				r = &v->top[v->ntop++];
				r->sched = i;
				r->p = *p;
				r->rate = rate;
				continue;
			}
			if (p->handled > r->p.handled)
				r->sched = i;
			r->p.handled += p->handled;
			r->rate += rate;
			r->p.mailbox = p->mailbox > r->p.mailbox ? p->mailbox : r->p.mailbox;
			r->p.memory = p->memory > r->p.memory ? p->memory : r->p.memory;
		}
	}
	qsort(v->top, v->ntop, sizeof(*v->top), top_cmp);
}

enum tkey { TOP_HANDLED, TOP_MAILBOX, TOP_MEMORY, TOP_N };
static const char *top_names[TOP_N] = {"handled", "mailbox", "memory"};
static enum tkey top_key;

static int top_cmp(const void *a, const void *b)
{
	const struct toprow *x = a, *y = b;
	uint64_t kx = top_key == TOP_MAILBOX  ? x->p.mailbox
		      : top_key == TOP_MEMORY ? x->p.memory
					      : x->p.handled,
		 ky = top_key == TOP_MAILBOX  ? y->p.mailbox
		      : top_key == TOP_MEMORY ? y->p.memory
					      : y->p.handled;
	if (kx != ky)
		return kx > ky ? -1 : 1;
	return x->p.pid < y->p.pid ? -1 : x->p.pid > y->p.pid;
}

enum sort { SORT_ID, SORT_UTIL, SORT_MSGS, SORT_N };
static const char *sort_names[SORT_N] = {"id", "utilization", "msgs/s"};
static enum sort sort_key;

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	double dx = 0, dy = 0;
	if (sort_key == SORT_UTIL)
		dx = x->r.util, dy = y->r.util;
	else if (sort_key == SORT_MSGS)
		dx = x->r.msgs, dy = y->r.msgs;
	if (dx != dy)
		return dx > dy ? -1 : 1; /* busiest first */
	return x->id < y->id ? -1 : x->id > y->id;
}

/* ---- number formats -------------------------------------------------------------------- */

/* 1234 -> "1.23k": columns stay narrow whatever the scale. */
static const char *human(char *buf, size_t len, double v)
{
	static const char units[] = " kMGTPE";
	int u = 0;
	if (v < 0)
		v = 0;
	while (v >= 999.5 && u < 6)
		v /= 1000, u++;
	if (u == 0)
		snprintf(buf, len, v == (double)(uint64_t)v ? "%.0f" : v < 10 ? "%.1f" : "%.0f", v);
	else
		snprintf(buf, len,
			 v < 9.995   ? "%.2f%c"
			 : v < 99.95 ? "%.1f%c"
				     : "%.0f%c",
			 v, units[u]);
	return buf;
}

static const char *bytes(char *buf, size_t len, uint64_t v)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double d = (double)v;
	int u = 0;
	while (d >= 1023.5 && u < 6)
		d /= 1024, u++;
	snprintf(buf, len, u == 0 ? "%.0f %s" : "%.1f %s", d, units[u]);
	return buf;
}

static const char *duration(char *buf, size_t len, double s)
{
	uint64_t t = (uint64_t)s;
	if (t < 60)
		snprintf(buf, len, "%" PRIu64 "s", t);
	else if (t < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
	else if (t < 86400)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s", t / 3600,
			 t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64 "m", t / 86400,
			 t / 3600 % 24, t / 60 % 60);
	return buf;
}

/* ---- the screen ------------------------------------------------------------------------ */

/* Lines of one frame. In the live view they carry SGR codes, which take no columns. */
struct frame {
	bool ansi;
	int cols; /* 0: no limit */
	char **line;
	size_t n, cap;
};

static void frame_reset(struct frame *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->line[i]);
	f->n = 0;
}

/* Columns a string takes: UTF-8 continuation bytes and SGR sequences take none. */
static size_t trunc_at(const char *s, int cols)
{
	size_t i = 0;
	int c = 0;
	while (s[i]) {
		if (s[i] == '\033') {
			i++;
			if (s[i] == '[')
				for (i++; s[i] && !(s[i] >= 0x40 && s[i] <= 0x7e); i++)
					;
			if (s[i])
				i++;
			continue;
		}
		if (((unsigned char)s[i] & 0xc0) != 0x80 && cols && c++ == cols)
			break;
		i++;
	}
	return i;
}

static void frame_add(struct frame *f, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	size_t k = trunc_at(buf, f->cols);
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 64;
		f->line = realloc(f->line, f->cap * sizeof(*f->line));
		if (!f->line)
			die(EXIT_RUNTIME, "out of memory");
	}
	/* Cut SGR runs short too, so reset the attributes after every line. */
	char *l = malloc(k + 8);
	if (!l)
		die(EXIT_RUNTIME, "out of memory");
	static const char reset[] = "\033[0m";
	size_t rk = f->ansi ? sizeof(reset) : 1;
	memcpy(l, buf, k);
	memcpy(l + k, f->ansi ? reset : "", rk);
	f->line[f->n++] = l;
}

/* SGR only in the live view. */
static const char *sgr(const struct frame *f, const char *code)
{
	return f->ansi ? code : "";
}

static void util_bar(const struct frame *f, char *buf, size_t len, double util, int width)
{
	int full = (int)(util * width + 0.5), k = 0;
	const char *color = util >= 0.9 ? "\033[31m" : util >= 0.6 ? "\033[33m" : "\033[32m";
	k += snprintf(buf + k, len - (size_t)k, "[%s", sgr(f, color));
	for (int i = 0; i < width && (size_t)k + 8 < len; i++) {
		if (i == full)
			k += snprintf(buf + k, len - (size_t)k, "%s", sgr(f, "\033[0m\033[2m"));
		buf[k++] = i < full ? '|' : '.';
	}
	snprintf(buf + k, len - (size_t)k, "%s]", sgr(f, "\033[0m"));
}

struct ui {
	bool help;
	const char *status; /* replaces the key line: "process exited" */
	unsigned interval_ms;
};

/* The frame both the live view and --once show. max_rows bounds the scheduler rows (the
 * live view's window); beyond it, the top rows by the sort order and a "… N more" line. */
/* The busiest processes, in top_key order: a head line and at most max rows. */
static void top_lines(struct frame *f, const struct view *v, size_t max)
{
	char a[32], b[32], d[32];
	frame_add(f, "%s%-22s %-24s %5s %9s %10s %10s  (by %s)%s", sgr(f, "\033[7m"), " PID",
		  "NAME", "SCHED", "MAILBOX", "HANDLED/S", "MEMORY", top_names[top_key],
		  sgr(f, "\033[0m"));
	if (v->ntop == 0) {
		frame_add(f, "%s no process ran a whole batch in the last interval%s",
			  sgr(f, "\033[2m"), sgr(f, "\033[0m"));
		return;
	}
	for (size_t i = 0; i < v->ntop && i < max; i++) {
		const struct toprow *r = &v->top[i];
		char pid[32];
		/* <slot index.generation>: the two halves of a kr_pid. */
		snprintf(pid, sizeof(pid), "<%u.%u>", (unsigned)r->p.pid,
			 (unsigned)(r->p.pid >> 32));
		frame_add(f, " %-21s %-24s %5u %8s%s %10s %10s", pid,
			  r->p.name[0] ? r->p.name : "-", r->sched,
			  human(a, sizeof(a), (double)r->p.mailbox),
			  r->p.mailbox >= KR_STATS_MBOX_CAP ? "+" : " ",
			  human(b, sizeof(b), r->rate), bytes(d, sizeof(d), r->p.memory));
	}
	if (v->ntop > max)
		frame_add(f, "%s… %zu more%s", sgr(f, "\033[2m"), v->ntop - max, sgr(f, "\033[0m"));
}

/* Connections in use in the node block. */
static size_t node_conns(const struct view *v)
{
	size_t n = 0;
	for (unsigned k = 0; v->cur->node && k < KR_STATS_CONNS; k++)
		n += v->cur->node->c[k].peer[0] != 0;
	return n;
}

/* The lines node_lines adds: none when the runtime is no node. */
static size_t node_nlines(const struct view *v, size_t max_conns)
{
	const kr_stats_node *nb = v->cur->node;
	if (!nb || !nb->name[0])
		return 0;
	size_t n = node_conns(v);
	return 1 + (n > max_conns ? max_conns + 1 : n);
}

/* The node (version 4): its name, then a line a connection, with its figures. */
static void node_lines(struct frame *f, const struct view *v, size_t max_conns)
{
	const kr_stats_node *nb = v->cur->node;
	char a[32], b[32], d[32], e[32], g[32];
	if (!nb || !nb->name[0])
		return;
	size_t n = node_conns(v), shown = 0;
	frame_add(f, "node      %s  creation %" PRIu64 "  port %" PRIu64 "  connections %zu%s",
		  nb->name, nb->creation, nb->port, n + (size_t)nb->unlisted,
		  nb->unlisted ? " (some past the table, not listed)" : "");
	for (unsigned k = 0; k < KR_STATS_CONNS; k++) {
		const kr_stats_conn *c = &nb->c[k];
		if (!c->peer[0])
			continue;
		if (shown++ == max_conns) {
			frame_add(f, "%s  … %zu more connections%s", sgr(f, "\033[2m"),
				  n - max_conns, sgr(f, "\033[0m"));
			break;
		}
		double up = c->since_ns && v->cur->t_ns > c->since_ns
				? (double)(v->cur->t_ns - c->since_ns) / 1e9
				: 0;
		frame_add(f, "  %-40s msgs in %s out %s  bytes in %s out %s  up %s", c->peer,
			  human(a, sizeof(a), (double)c->msgs_in),
			  human(b, sizeof(b), (double)c->msgs_out),
			  bytes(d, sizeof(d), c->bytes_in), bytes(e, sizeof(e), c->bytes_out),
			  duration(g, sizeof(g), up));
	}
}

static void build_frame(struct frame *f, struct view *v, const struct ui *ui, size_t max_rows,
			size_t max_top, size_t max_conns)
{
	const struct seg *s = v->s;
	const struct sample *c = v->cur;
	const struct totals *t = &v->tot;
	char a[32], b[32], d[32], e[32], g[32], h[32], others[256] = "";
	frame_reset(f);

	if (v->nall > 1) {
		int k = snprintf(others, sizeof(others), "  (runtime %u of %zu:", s->id.n, v->nall);
		for (size_t i = 0; i < v->nall && k < (int)sizeof(others) - 40; i++)
			k += snprintf(others + k, sizeof(others) - (size_t)k, " %u", v->all[i].n);
		snprintf(others + k, sizeof(others) - (size_t)k, "%s)",
			 s->id.n == v->all[0].n ? "; the first, --runtime N for another" : "");
	}
	frame_add(f, "%skrilltop%s  pid %d (%s)  runtime %u  up %s  schedulers %u%s",
		  sgr(f, "\033[1m"), sgr(f, "\033[0m"), s->id.pid, v->comm, s->id.n,
		  duration(a, sizeof(a), v->uptime_s), s->nsched, others);
	if (s->hdr.topology[0])
		frame_add(f, "topology  %s", s->hdr.topology);
	else
		frame_add(f, "topology  %u numa, %u l3, %u cores", s->hdr.numa_nodes,
			  s->hdr.l3_groups, s->hdr.cores);
	if (v->rates)
		frame_add(f,
			  "load      util %.1f%%  msgs/s %s  runs/s %s  steals/s near %s far %s  "
			  "sleeps/s %s  runq %" PRIu64,
			  100 * v->sum.util, human(a, sizeof(a), v->sum.msgs),
			  human(b, sizeof(b), v->sum.runs), human(d, sizeof(d), v->sum.near),
			  human(e, sizeof(e), v->sum.far), human(g, sizeof(g), v->sum.sleeps),
			  t->runq);
	else
		frame_add(f, "load      (rates need two samples)  runq %" PRIu64, t->runq);
	frame_add(f,
		  "procs     alive %" PRIu64 "  spawned %" PRIu64 "  exited %" PRIu64
		  "  crashed %" PRIu64 "  killed %" PRIu64 "  restarts %" PRIu64 "  timers %" PRIu64
		  "  names %" PRIu64,
		  c->rt.alive, t->spawned, t->exited, t->crashed, t->killed, c->rt.restarts,
		  t->timers, c->rt.names);
	/* What the runtime holds, by what holds it, then what the allocator and the kernel
	 * say of it (resident: jemalloc's arenas and the slot tables' touched pages). */
	frame_add(f,
		  "memory    held %s: processes %s  messages %s  timers %s  other %s  "
		  "(resident %s)",
		  bytes(a, sizeof(a), c->rt.mem_held), bytes(b, sizeof(b), c->rt.mem_procs),
		  bytes(d, sizeof(d), c->rt.mem_msgs), bytes(e, sizeof(e), c->rt.mem_timers),
		  bytes(g, sizeof(g), c->rt.mem_other), bytes(h, sizeof(h), c->rt.mem_resident));
	/* Where scheduling costs, since start: steal trips and the processes they took, those
	 * given back when spreading did not pay (compaction), hubs a client's wake left where
	 * they ran, sleeps and wake-ups, sleepers woken for a backlog, idle-lone CASes a
	 * send came on top of. */
	frame_add(f,
		  "sched     steals %" PRIu64 " (near %" PRIu64 " far %" PRIu64 ")  stolen %" PRIu64
		  "  given %" PRIu64 "  stayed %" PRIu64 "  sleeps %" PRIu64 "  wakeups %" PRIu64
		  "  woke %" PRIu64 "  lone_fails %" PRIu64,
		  t->steals[0] + t->steals[1] + t->steals[2], t->steals[0],
		  t->steals[1] + t->steals[2], t->stolen, t->given, t->stayed, t->sleeps,
		  t->wakeups, t->woke, t->lone_fails);
	node_lines(f, v, max_conns);
	frame_add(f, "");

	/* The bar takes what the fixed columns leave, within reason. */
	int bar = f->cols ? f->cols - 84 : 20;
	bar = bar < 10 ? 10 : bar > 40 ? 40 : bar;
	frame_add(f,
		  "%s SCHED  CPU NUMA   L3  %-*s   UTIL   MSGS/S   RUNS/S   RUNQ  STEALS/S N/F"
		  "  SLEEPS/S%s",
		  sgr(f, "\033[7m"), bar + 2, "BUSY", sgr(f, "\033[0m"));
	qsort(v->rows, s->nsched, sizeof(*v->rows), row_cmp);
	size_t shown = s->nsched;
	if (shown > max_rows)
		shown = max_rows ? max_rows - 1 : 0;
	for (size_t i = 0; i < shown; i++) {
		const struct row *r = &v->rows[i];
		char cpu[24], barbuf[512], steal[48];
		if (r->b->cpu == UINT64_MAX)
			snprintf(cpu, sizeof(cpu), "-");
		else
			snprintf(cpu, sizeof(cpu), "%" PRIu64, r->b->cpu);
		util_bar(f, barbuf, sizeof(barbuf), v->rates ? r->r.util : 0, bar);
		if (v->rates) {
			snprintf(steal, sizeof(steal), "%s/%s", human(a, sizeof(a), r->r.near),
				 human(b, sizeof(b), r->r.far));
			frame_add(f,
				  "%6u %4s %4" PRIu64 " %4" PRIu64 "  %s %5.1f%% %8s %8s %6" PRIu64
				  " %12s %9s",
				  r->id, cpu, r->b->numa, r->b->l3, barbuf, 100 * r->r.util,
				  human(d, sizeof(d), r->r.msgs), human(e, sizeof(e), r->r.runs),
				  r->b->runq_len, steal, human(g, sizeof(g), r->r.sleeps));
		} else {
			frame_add(f,
				  "%6u %4s %4" PRIu64 " %4" PRIu64 "  %s %6s %8s %8s %6" PRIu64
				  " %12s %9s",
				  r->id, cpu, r->b->numa, r->b->l3, barbuf, "-", "-", "-",
				  r->b->runq_len, "-", "-");
		}
	}
	if (shown < s->nsched)
		frame_add(f, "%s… %zu more (sorted by %s)%s", sgr(f, "\033[2m"), s->nsched - shown,
			  sort_names[sort_key], sgr(f, "\033[0m"));
	if (max_top) {
		frame_add(f, "");
		top_lines(f, v, max_top);
	}
	if (!ui)
		return;
	frame_add(f, "");
	if (ui->status)
		frame_add(f, "%s%s%s", sgr(f, "\033[1m"), ui->status, sgr(f, "\033[0m"));
	else if (ui->help)
		frame_add(
		    f,
		    "q quit   s sort rows: id, utilization, msgs/s (now %s)   t sort processes: "
		    "handled, mailbox, memory (now %s)   ? hide help   refresh every %u ms "
		    "(--interval MS)",
		    sort_names[sort_key], top_names[top_key], ui->interval_ms);
	else
		frame_add(f, "%sq%s quit  %ss%s sort (%s)  %st%s processes by (%s)  %s?%s help",
			  sgr(f, "\033[1m"), sgr(f, "\033[0m"), sgr(f, "\033[1m"),
			  sgr(f, "\033[0m"), sort_names[sort_key], sgr(f, "\033[1m"),
			  sgr(f, "\033[0m"), top_names[top_key], sgr(f, "\033[1m"),
			  sgr(f, "\033[0m"));
}

/* Lines of a frame that are not scheduler rows (nor the node's): 6 + blank + column heads, blank +
 * keys; and the top section's blank line and head, with at most TOP_ROWS processes. */
#define FIXED_LINES 10
#define TOP_ROWS    5
#define NODE_ROWS   4 /* connections the live view lists */

/* ---- the terminal ---------------------------------------------------------------------- */

static struct termios saved_tio;
static bool tio_saved, screen_on;
static volatile sig_atomic_t got_quit, got_winch, got_tstp, got_cont;

static void put(const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(STDOUT_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void term_enter(void)
{
	struct termios raw;
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		tio_saved = true;
		raw = saved_tio;
		/* Keys one at a time and unechoed; ISIG stays, so ^C is a SIGINT we handle. */
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
	}
	/* Alternate screen, cursor hidden: the shell's screen comes back untouched. */
	put("\033[?1049h\033[?25l\033[H\033[2J");
	screen_on = true;
}

static void term_leave(void)
{
	if (screen_on)
		put("\033[0m\033[?25h\033[?1049l");
	screen_on = false;
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	tio_saved = false;
}

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else if (sig == SIGTSTP)
		got_tstp = 1;
	else if (sig == SIGCONT)
		got_cont = 1;
	else
		got_quit = sig;
}

static void window_size(int *rows, int *cols)
{
	struct winsize ws;
	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

/* One write per frame, each line cleared to its end, so nothing flickers or lingers. */
static void draw(struct frame *f, int rows)
{
	size_t cap = 64, len = 0;
	for (size_t i = 0; i < f->n; i++)
		cap += strlen(f->line[i]) + 8;
	char *out = malloc(cap);
	if (!out)
		die(EXIT_RUNTIME, "out of memory");
	len += (size_t)snprintf(out, cap, "\033[H");
	for (size_t i = 0; i < f->n && (int)i < rows; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s\033[K%s", f->line[i],
					(int)i + 1 < rows ? "\r\n" : "");
	snprintf(out + len, cap - len, "\033[J");
	put(out);
	free(out);
}

/* ---- modes ----------------------------------------------------------------------------- */

struct opts {
	int pid;
	bool clean, json, once, has_runtime, top;
	const char *name; /* --name */
	unsigned runtime, interval_ms, sample_ms;
};

/* The segment to watch, with the errors the user should see spelled out. */
static void open_target(const struct opts *o, struct seg *s, struct segid **all, size_t *nall)
{
	char err[512];
	enum kri_pstate ps = kri_pid_state(o->pid);
	if (ps != KRI_P_ALIVE)
		die(EXIT_RUNTIME, "no such process: %d%s", o->pid,
		    ps == KRI_P_ZOMBIE ? " (it has exited; not yet reaped)" : "");
	*all = scan_segments(o->pid, nall);
	if (*nall == 0)
		die(EXIT_RUNTIME,
		    "process %d is not a krill program (no " SHM_DIR "/krill.%d.* segment)", o->pid,
		    o->pid);
	struct segid *pick = &(*all)[0];
	if (o->has_runtime) {
		pick = 0;
		for (size_t i = 0; i < *nall && !pick; i++)
			if ((*all)[i].n == o->runtime)
				pick = &(*all)[i];
		if (!pick) {
			char have[256];
			int k = 0;
			for (size_t i = 0; i < *nall && k < (int)sizeof(have) - 16; i++)
				k += snprintf(have + k, sizeof(have) - (size_t)k, " %u",
					      (*all)[i].n);
			die(EXIT_RUNTIME, "process %d has no runtime %u (it has:%s)", o->pid,
			    o->runtime, have);
		}
	}
	if (seg_open(s, *pick, err, sizeof(err)))
		die(EXIT_RUNTIME, "%s", err);
	struct stat st;
	if (kri_pid_maps(o->pid, s->path) == 0 && stat(s->path, &st) == 0 &&
	    time(0) - st.st_ctime > YOUNG_S)
		die(EXIT_RUNTIME,
		    "process %d is not a krill program (%s was left by an earlier process %d; "
		    "krilltop --clean removes it)",
		    o->pid, s->path, o->pid);
}

static void view_alloc(struct view *v, const struct seg *s, struct segid *all, size_t nall)
{
	memset(v, 0, sizeof(*v));
	v->rows = calloc(s->nsched ? s->nsched : 1, sizeof(*v->rows));
	v->top = calloc((s->nsched ? s->nsched : 1) * (size_t)KR_STATS_TOP, sizeof(*v->top));
	if (!v->rows || !v->top)
		die(EXIT_RUNTIME, "out of memory");
	v->all = all;
	v->nall = nall;
	pid_comm(s->id.pid, v->comm, sizeof(v->comm));
}

static void json_str(const char *key, const char *s)
{
	printf("\"%s\":\"", key);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void json_rates(const struct view *v, const struct rates *r)
{
	if (!v->rates) {
		printf("null");
		return;
	}
	printf("{\"utilization\":%.4f,\"msgs_per_s\":%.1f,\"runs_per_s\":%.1f,"
	       "\"steals_near_per_s\":%.1f,\"steals_far_per_s\":%.1f,\"sleeps_per_s\":%.1f,"
	       "\"wakeups_per_s\":%.1f}",
	       r->util, r->msgs, r->runs, r->near, r->far, r->sleeps, r->wakeups);
}

static void print_json(const struct view *v, unsigned sample_ms)
{
	const struct seg *s = v->s;
	const kr_stats_header *h = &s->hdr;
	const kr_stats_runtime *rt = &v->cur->rt;
	const struct totals *t = &v->tot;
	printf("{\"pid\":%d,", s->id.pid);
	json_str("command", v->comm);
	printf(",\"runtime\":%u,\"runtimes\":[", s->id.n);
	for (size_t i = 0; i < v->nall; i++)
		printf("%s%u", i ? "," : "", v->all[i].n);
	printf("],");
	json_str("segment", s->path);
	printf(",\"magic\":\"0x%016" PRIx64 "\",\"version\":%u,\"header_size\":%u,"
	       "\"sched_size\":%u,\"nsched\":%u,\"os_pid\":%d,\"numa_nodes\":%u,\"l3_groups\":%u,"
	       "\"cores\":%u,\"start_realtime_ns\":%" PRIu64 ",\"start_mono_ns\":%" PRIu64 ",",
	       h->magic, h->version, h->header_size, h->sched_size, h->nsched, h->os_pid,
	       h->numa_nodes, h->l3_groups, h->cores, h->start_realtime_ns, h->start_mono_ns);
	json_str("topology", h->topology);
	printf(",\"uptime_s\":%.3f,\"sample_ms\":%u,", v->uptime_s, v->rates ? sample_ms : 0);
	printf("\"rt\":{\"seq\":%" PRIu64 ",\"now_ns\":%" PRIu64 ",\"alive\":%" PRIu64
	       ",\"foreign_spawned\":%" PRIu64 ",\"restarts\":%" PRIu64 ",\"names\":%" PRIu64
	       ",\"mem_allocated\":%" PRIu64 ",\"mem_active\":%" PRIu64 ",\"mem_resident\":%" PRIu64
	       ",\"mem_held\":%" PRIu64 ",\"mem_procs\":%" PRIu64 ",\"mem_msgs\":%" PRIu64
	       ",\"mem_timers\":%" PRIu64 ",\"mem_other\":%" PRIu64 "},\"schedulers\":[",
	       (uint64_t)rt->seq, rt->now_ns, rt->alive, rt->foreign_spawned, rt->restarts,
	       rt->names, rt->mem_allocated, rt->mem_active, rt->mem_resident, rt->mem_held,
	       rt->mem_procs, rt->mem_msgs, rt->mem_timers, rt->mem_other);
	const char *sep = "";
	for (uint32_t i = 0; i < s->nsched; i++) {
		const struct row *r = 0;
		for (uint32_t j = 0; j < s->nsched && !r; j++)
			if (v->rows[j].id == i)
				r = &v->rows[j];
		if (!r)
			continue; /* rows hold every id below nsched; never taken */
		const kr_stats_sched *b = r->b;
		printf(
		    "%s{\"id\":%u,\"seq\":%" PRIu64 ",\"busy_ns\":%" PRIu64 ",\"idle_ns\":%" PRIu64
		    ",\"runs\":%" PRIu64 ",\"msgs\":%" PRIu64 ",\"runq_len\":%" PRIu64
		    ",\"steals\":{\"l3\":%" PRIu64 ",\"numa\":%" PRIu64 ",\"remote\":%" PRIu64
		    "},\"sleeps\":%" PRIu64 ",\"wakeups\":%" PRIu64 ",\"spawned\":%" PRIu64
		    ",\"exited\":%" PRIu64 ",\"crashed\":%" PRIu64 ",\"killed\":%" PRIu64
		    ",\"timers\":%" PRIu64 ",\"io_submitted\":%" PRIu64 ",\"io_completed\":%" PRIu64
		    ",\"mem_allocated\":%" PRIu64 ",\"mem_active\":%" PRIu64
		    ",\"mem_resident\":%" PRIu64 ",\"mem_held\":%" PRId64 ",\"mem_msgs\":%" PRId64
		    ",\"stolen\":%" PRIu64 ",\"given\":%" PRIu64 ",\"stayed\":%" PRIu64
		    ",\"woke\":%" PRIu64 ",\"lone_fails\":%" PRIu64 ",",
		    sep, i, (uint64_t)b->seq, b->busy_ns, b->idle_ns, b->runs, b->msgs, b->runq_len,
		    b->steals[0], b->steals[1], b->steals[2], b->sleeps, b->wakeups, b->spawned,
		    b->exited, b->crashed, b->killed, b->timers, b->io_submitted, b->io_completed,
		    b->mem_allocated, b->mem_active, b->mem_resident, (int64_t)b->mem_held,
		    (int64_t)b->mem_msgs, b->stolen, b->given, b->stayed, b->woke, b->lone_fails);
		if (b->cpu == UINT64_MAX)
			printf("\"cpu\":null");
		else
			printf("\"cpu\":%" PRIu64, b->cpu);
		printf(",\"numa\":%" PRIu64 ",\"l3\":%" PRIu64 ",\"rates\":", b->numa, b->l3);
		json_rates(v, &r->r);
		printf("}");
		sep = ",";
	}
	printf("],\"totals\":{\"busy_ns\":%" PRIu64 ",\"idle_ns\":%" PRIu64 ",\"runs\":%" PRIu64
	       ",\"msgs\":%" PRIu64 ",\"runq_len\":%" PRIu64 ",\"steals\":{\"l3\":%" PRIu64
	       ",\"numa\":%" PRIu64 ",\"remote\":%" PRIu64 "},\"sleeps\":%" PRIu64
	       ",\"wakeups\":%" PRIu64 ",\"spawned\":%" PRIu64 ",\"exited\":%" PRIu64
	       ",\"crashed\":%" PRIu64 ",\"killed\":%" PRIu64 ",\"timers\":%" PRIu64
	       ",\"io_submitted\":%" PRIu64 ",\"io_completed\":%" PRIu64
	       ",\"mem_allocated\":%" PRIu64 ",\"mem_active\":%" PRIu64 ",\"mem_resident\":%" PRIu64
	       ",\"stolen\":%" PRIu64 ",\"given\":%" PRIu64 ",\"stayed\":%" PRIu64
	       ",\"woke\":%" PRIu64 ",\"lone_fails\":%" PRIu64 "},\"rates\":",
	       t->busy_ns, t->idle_ns, t->runs, t->msgs, t->runq, t->steals[0], t->steals[1],
	       t->steals[2], t->sleeps, t->wakeups, t->spawned, t->exited, t->crashed, t->killed,
	       t->timers, t->io_submitted, t->io_completed, t->mem_allocated, t->mem_active,
	       t->mem_resident, t->stolen, t->given, t->stayed, t->woke, t->lone_fails);
	json_rates(v, &v->sum);
	printf(",\"top\":[");
	for (size_t i = 0; i < v->ntop; i++) {
		const struct toprow *r = &v->top[i];
		printf("%s{\"pid\":%" PRIu64 ",", i ? "," : "", r->p.pid);
		json_str("name", r->p.name);
		printf(",\"sched\":%u,\"mailbox\":%" PRIu64 ",\"handled\":%" PRIu64
		       ",\"handled_per_s\":%.1f,\"memory\":%" PRIu64 "}",
		       r->sched, r->p.mailbox, r->p.handled, r->rate, r->p.memory);
	}
	/* The node (version 4): null when the segment has no node block or the runtime is no
	 * node. */
	const kr_stats_node *nb = v->cur->node;
	if (nb && nb->name[0]) {
		printf("],\"node\":{");
		json_str("name", nb->name);
		printf(",\"creation\":%" PRIu64 ",\"port\":%" PRIu64 ",\"unlisted\":%" PRIu64
		       ",\"connections\":[",
		       nb->creation, nb->port, nb->unlisted);
		const char *csep = "";
		for (unsigned k = 0; k < KR_STATS_CONNS; k++) {
			const kr_stats_conn *c = &nb->c[k];
			if (!c->peer[0])
				continue;
			printf("%s{", csep);
			json_str("peer", c->peer);
			printf(",\"since_ns\":%" PRIu64 ",\"msgs_in\":%" PRIu64
			       ",\"msgs_out\":%" PRIu64 ",\"bytes_in\":%" PRIu64
			       ",\"bytes_out\":%" PRIu64 "}",
			       c->since_ns, c->msgs_in, c->msgs_out, c->bytes_in, c->bytes_out);
			csep = ",";
		}
		printf("]}");
	} else {
		printf("],\"node\":null");
	}
	/* Every registered name (version 3): null when the segment has no table. */
	const kr_stats_names *nt = v->cur->names;
	if (!nt) {
		printf(",\"names\":null}\n");
		return;
	}
	printf(",\"names\":{\"seq\":%" PRIu64 ",\"now_ns\":%" PRIu64 ",\"n\":%" PRIu64
	       ",\"total\":%" PRIu64 ",\"full\":%s,\"table\":[",
	       (uint64_t)nt->seq, nt->now_ns, nt->n, nt->total,
	       nt->total > nt->n ? "true" : "false");
	for (uint64_t i = 0; i < nt->n; i++) {
		printf("%s{\"pid\":%" PRIu64 ",", i ? "," : "", nt->e[i].pid);
		json_str("name", nt->e[i].name);
		putchar('}');
	}
	printf("]}}\n");
}

/* --name: the process registered as o->name, from the busiest processes (with their
 * figures) or else the names table (its pid; its figures unknown, shown as "-"). */
static int print_name(const struct view *v, const struct opts *o)
{
	const kr_stats_names *nt = v->cur->names;
	struct toprow r = {0};
	bool found = false, busy = false;
	for (size_t i = 0; i < v->ntop && !found; i++)
		if (strcmp(v->top[i].p.name, o->name) == 0)
			r = v->top[i], found = busy = true;
	for (uint64_t i = 0; nt && i < nt->n && !found; i++)
		if (strcmp(nt->e[i].name, o->name) == 0) {
			r.p.pid = nt->e[i].pid;
			snprintf(r.p.name, sizeof(r.p.name), "%s", nt->e[i].name);
			found = true;
		}
	if (!found) {
		if (!nt)
			fprintf(stderr,
				"krilltop: no process named %s among the busiest of pid %d (its "
				"segment, version %u, has no names table)\n",
				o->name, o->pid, v->s->hdr.version);
		else if (nt->total > nt->n)
			fprintf(stderr,
				"krilltop: no process named %s in pid %d's names table, which was "
				"full (%" PRIu64 " of %" PRIu64 " names published)\n",
				o->name, o->pid, nt->n, nt->total);
		else
			fprintf(stderr, "krilltop: no process named %s in pid %d\n", o->name,
				o->pid);
		return EXIT_RUNTIME;
	}
	struct frame f = {0};
	top_lines(&f, &(struct view){.top = &r, .ntop = 1}, 1);
	if (!busy) {
		/* Not among the busiest: the pid, and no figures. */
		char pid[32];
		snprintf(pid, sizeof(pid), "<%u.%u>", (unsigned)r.p.pid, (unsigned)(r.p.pid >> 32));
		free(f.line[1]);
		f.n = 1;
		frame_add(&f, " %-21s %-24s %5s %9s %10s %10s", pid, r.p.name, "-", "-", "-", "-");
	}
	for (size_t i = 0; i < f.n; i++)
		printf("%s\n", f.line[i]);
	frame_reset(&f);
	free(f.line);
	return 0;
}

/* --once and --json: two samples --sample ms apart, one report. */
static int snapshot(const struct opts *o)
{
	struct seg s;
	struct segid *all;
	size_t nall;
	struct sample a, b;
	struct view v;
	open_target(o, &s, &all, &nall);
	sample_init(&a, &s);
	sample_init(&b, &s);
	sample_take(&s, &a);
	if (o->sample_ms) {
		sleep_ms(o->sample_ms);
		sample_take(&s, &b);
	}
	view_alloc(&v, &s, all, nall);
	view_compute(&v, &s, o->sample_ms ? &a : 0, o->sample_ms ? &b : &a);
	int status = 0;
	if (o->json) {
		print_json(&v, o->sample_ms);
	} else if (o->name) {
		status = print_name(&v, o);
	} else if (o->top) {
		struct frame f = {0};
		top_lines(&f, &v, SIZE_MAX);
		for (size_t i = 0; i < f.n; i++)
			printf("%s\n", f.line[i]);
		frame_reset(&f);
		free(f.line);
	} else {
		int rows, cols = 0;
		struct frame f = {0};
		if (isatty(STDOUT_FILENO))
			window_size(&rows, &cols);
		f.cols = cols;
		build_frame(&f, &v, 0, SIZE_MAX, SIZE_MAX, SIZE_MAX);
		for (size_t i = 0; i < f.n; i++)
			printf("%s\n", f.line[i]);
		frame_reset(&f);
		free(f.line);
	}
	free(v.rows);
	free(v.top);
	sample_free(&a);
	sample_free(&b);
	free(all);
	seg_close(&s);
	return fflush(stdout) ? EXIT_RUNTIME : status;
}

static void handle_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, 0);
}

/* ^Z: hand the terminal back as it was, stop, and take it again when continued. */
static void suspend(void)
{
	sigset_t set;
	term_leave();
	signal(SIGTSTP, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGTSTP);
	sigprocmask(SIG_UNBLOCK, &set, 0);
	raise(SIGTSTP);
	sigprocmask(SIG_BLOCK, &set, 0);
	handle_signals();
	term_enter();
}

static int live(const struct opts *o)
{
	struct seg s;
	struct segid *all;
	size_t nall;
	struct sample smp[2];
	struct view v;
	struct frame f = {.ansi = true};
	struct ui ui = {.interval_ms = o->interval_ms};
	char status[160];
	int rows, cols, exit_sig = 0;
	sigset_t block, orig;

	open_target(o, &s, &all, &nall);
	if (!isatty(STDOUT_FILENO))
		die(EXIT_USAGE, "the live view needs a terminal (use --once or --json)");
	sample_init(&smp[0], &s);
	sample_init(&smp[1], &s);
	view_alloc(&v, &s, all, nall);

	/* Signals arrive only inside ppoll, so none slips between a check and the wait. */
	sigemptyset(&block);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&block, sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &orig);
	handle_signals();
	term_enter();
	atexit(term_leave); /* die() on the way must not leave the terminal raw either */

	int cur = 0;
	sample_take(&s, &smp[cur]);
	/* The first frame comes after a short sample, so it already has rates. */
	unsigned first = o->interval_ms < 200 ? o->interval_ms : 200;
	uint64_t next = mono_ns() + first * 1000000ull;
	bool have = false, dirty = false, ended = false;
	window_size(&rows, &cols);
	while (!got_quit) {
		uint64_t now = mono_ns();
		if (now >= next) {
			cur ^= 1;
			sample_take(&s, &smp[cur]);
			view_compute(&v, &s, &smp[cur ^ 1], &smp[cur]);
			have = dirty = true;
			next += o->interval_ms * 1000000ull;
			if (next <= now) /* we were stopped or starved: do not catch up */
				next = now + o->interval_ms * 1000000ull;
			enum kri_pstate ps = kri_pid_state(s.id.pid);
			if (ps != KRI_P_ALIVE || seg_removed(&s)) {
				if (ps != KRI_P_ALIVE)
					snprintf(status, sizeof(status), "process %d (%s) exited",
						 s.id.pid, v.comm);
				else
					snprintf(status, sizeof(status),
						 "process %d (%s): runtime %u ended", s.id.pid,
						 v.comm, s.id.n);
				ui.status = status;
				ended = true;
			}
		}
		if (got_winch) {
			got_winch = 0;
			dirty = true;
		}
		if (got_cont) {
			got_cont = 0;
			dirty = true;
		}
		if (got_tstp) {
			got_tstp = 0;
			suspend();
			dirty = true;
		}
		if (dirty && have) {
			window_size(&rows, &cols);
			f.cols = cols;
			/* The top section gets what the schedulers leave, up to TOP_ROWS. */
			size_t fixed = FIXED_LINES + node_nlines(&v, NODE_ROWS);
			size_t avail = rows > (int)fixed ? (size_t)rows - fixed : 1;
			size_t top = avail > s.nsched + 2 ? avail - s.nsched - 2 : 0;
			top = top > TOP_ROWS ? TOP_ROWS : top;
			size_t max = top ? avail - top - 2 : avail;
			build_frame(&f, &v, &ui, max, top ? top : 0, NODE_ROWS);
			draw(&f, rows);
			dirty = false;
		}
		if (ended) {
			/* Leave the last frame up a moment, then say so on the real screen. */
			struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
			struct timespec ts = {1, 0};
			ppoll(&pfd, 1, &ts, &orig);
			break;
		}
		struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
		uint64_t wait = next > mono_ns() ? next - mono_ns() : 0;
		struct timespec ts = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
		int r = ppoll(&pfd, tio_saved ? 1 : 0, &ts, &orig);
		if (r > 0 && (pfd.revents & POLLIN)) {
			char keys[64];
			ssize_t n = read(STDIN_FILENO, keys, sizeof(keys));
			for (ssize_t i = 0; i < n; i++) {
				if (keys[i] == 'q' || keys[i] == 'Q')
					got_quit = -1;
				else if (keys[i] == 's' || keys[i] == 'S')
					sort_key = (enum sort)((sort_key + 1) % SORT_N);
				else if (keys[i] == 't' || keys[i] == 'T') {
					top_key = (enum tkey)((top_key + 1) % TOP_N);
					qsort(v.top, v.ntop, sizeof(*v.top), top_cmp);
				} else if (keys[i] == '?' || keys[i] == 'h')
					ui.help = !ui.help;
				dirty = true;
			}
		} else if (r > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))) {
			got_quit = SIGHUP; /* the terminal went away */
		}
	}
	if (got_quit > 0)
		exit_sig = got_quit;
	term_leave();
	if (ended)
		printf("krilltop: %s\n", status);
	fflush(stdout);
	frame_reset(&f);
	free(f.line);
	free(v.rows);
	free(v.top);
	sample_free(&smp[0]);
	sample_free(&smp[1]);
	free(all);
	seg_close(&s);
	if (exit_sig) {
		/* Die of the signal, as the shell expects of an interrupted program. */
		signal(exit_sig, SIG_DFL);
		sigprocmask(SIG_SETMASK, &orig, 0);
		raise(exit_sig);
	}
	return 0;
}

/* No PID: every segment in /dev/shm, live or stale; --clean removes the stale ones. */
static int list(bool clean)
{
	size_t n, nlive = 0, nstale = 0, unreadable = 0, removed = 0, failed = 0;
	struct segid *v = scan_segments(0, &n);
	uint64_t now = mono_ns();
	bool head = false;
	for (size_t i = 0; i < n; i++) {
		struct seg s;
		struct stat st;
		char err[512], comm[64] = "?", up[32] = "-", alive[32] = "-", sched[16] = "-";
		const char *state = "running";
		enum kri_pstate ps = kri_pid_state(v[i].pid);
		bool stale = ps != KRI_P_ALIVE, ok;
		seg_names(&s, v[i]);
		/* A live pid that does not map the segment reused a dead program's pid; a young
		 * segment may be one whose runtime has not mapped it yet. */
		if (!stale && kri_pid_maps(v[i].pid, s.path) == 0 && stat(s.path, &st) == 0 &&
		    time(0) - st.st_ctime > YOUNG_S)
			stale = true;
		if (clean) {
			if (!stale)
				continue;
			if (shm_unlink(s.name) == 0) {
				removed++;
				printf("removed %s (process %d is gone)\n", s.path, v[i].pid);
			} else if (errno != ENOENT) {
				failed++;
				fprintf(stderr, "krilltop: cannot remove %s: %s\n", s.path,
					strerror(errno));
			}
			continue;
		}
		ok = seg_open(&s, v[i], err, sizeof(err)) == 0;
		if (!ok && !stale && strstr(err, "permission denied")) {
			unreadable++; /* another user's program: not ours to list */
			continue;
		}
		if (stale) {
			state = ps == KRI_P_ALIVE ? "stale (pid reused)" : "stale (process gone)";
			nstale++;
		} else {
			nlive++;
			pid_comm(v[i].pid, comm, sizeof(comm));
		}
		if (ok) {
			kr_stats_runtime rt;
			snprintf(sched, sizeof(sched), "%u", s.nsched);
			if (!stale) {
				duration(up, sizeof(up),
					 (double)delta(now, s.hdr.start_mono_ns) / 1e9);
				if (!kr_stats_read_block(&s.map->rt, &rt, sizeof(rt)))
					snprintf(alive, sizeof(alive), "%" PRIu64, rt.alive);
			}
			seg_close(&s);
		} else if (!stale) {
			state = err; /* say what is wrong with it */
		}
		if (!head)
			printf("%7s %4s  %-16s %6s %10s %10s  %s\n", "PID", "RT", "COMMAND",
			       "SCHED", "UPTIME", "ALIVE", "STATE");
		head = true;
		printf("%7d %4u  %-16s %6s %10s %10s  %s\n", v[i].pid, v[i].n, comm, sched, up,
		       alive, state);
	}
	free(v);
	if (clean) {
		printf("krilltop: removed %zu stale segment%s\n", removed, removed == 1 ? "" : "s");
		return failed ? EXIT_RUNTIME : 0;
	}
	if (!head)
		printf("no krill programs running\n");
	if (nstale)
		printf("%zu stale segment%s (krilltop --clean removes %s)\n", nstale,
		       nstale == 1 ? "" : "s", nstale == 1 ? "it" : "them");
	if (unreadable)
		printf("%zu segment%s of other users not shown (no permission)\n", unreadable,
		       unreadable == 1 ? "" : "s");
	return 0;
}

/* ---- command line ---------------------------------------------------------------------- */

static unsigned parse_num(const char *opt, const char *val, unsigned long min, unsigned long max)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(val, &end, 10);
	if (*val < '0' || *val > '9' || *end || errno || v < min || v > max)
		die(EXIT_USAGE, "%s: '%s' is not a number in %lu..%lu", opt, val, min, max);
	return (unsigned)v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_RUNTIME = 256, O_INTERVAL, O_SAMPLE, O_TOP, O_BY, O_NAME };
	static const struct option lo[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"clean", no_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"once", no_argument, NULL, 'o'},
	    {"runtime", required_argument, NULL, O_RUNTIME},
	    {"interval", required_argument, NULL, O_INTERVAL},
	    {"sample", required_argument, NULL, O_SAMPLE},
	    {"top", no_argument, NULL, O_TOP},
	    {"by", required_argument, NULL, O_BY},
	    {"name", required_argument, NULL, O_NAME},
	    {0},
	};
	bool has_interval = false, has_sample = false, has_by = false;
	int c;

	memset(o, 0, sizeof(*o));
	o->interval_ms = 1000;
	o->sample_ms = 200;
	/* "-": a PID comes back in place (as 1); ":": a missing value is told apart from an
	 * unknown option. opterr = 0: the errors are ours, one line each. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "-:h", lo, NULL)) != -1) {
		/* on an error getopt_long has stepped past the argument at fault */
		const char *arg = optind > 0 ? argv[optind - 1] : "";
		int len = (int)strcspn(arg, "=");
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 1:
			if (o->pid)
				die(EXIT_USAGE, "one PID at a time (got %d and %s)", o->pid,
				    optarg);
			o->pid = (int)parse_num("PID", optarg, 1, INT_MAX);
			break;
		case 'c':
			o->clean = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'o':
			o->once = true;
			break;
		case O_RUNTIME:
			o->runtime = parse_num("--runtime", optarg, 0, UINT_MAX);
			o->has_runtime = true;
			break;
		case O_INTERVAL:
			o->interval_ms = parse_num("--interval", optarg, 100, 3600000);
			has_interval = true;
			break;
		case O_SAMPLE:
			o->sample_ms = parse_num("--sample", optarg, 0, 60000);
			has_sample = true;
			break;
		case O_TOP:
			o->top = true;
			break;
		case O_BY:
			has_by = true;
			for (top_key = 0; top_key < TOP_N; top_key++)
				if (strcmp(optarg, top_names[top_key]) == 0)
					break;
			if (top_key == TOP_N)
				die(EXIT_USAGE, "--by: '%s' is not handled, mailbox or memory",
				    optarg);
			break;
		case O_NAME:
			o->name = optarg;
			break;
		case ':':
			die(EXIT_USAGE, "%.*s needs a value (see krilltop --help)", len, arg);
		default: /* '?': optopt names a known option given a value it does not take */
			if (optopt != 0 && strncmp(arg, "--", 2) == 0)
				die(EXIT_USAGE, "%.*s takes no value", len, arg);
			die(EXIT_USAGE, "unknown option: %s (see krilltop --help)", arg);
		}
	}
	if (optind < argc) /* after "--" */
		die(EXIT_USAGE, "unexpected argument: %s (see krilltop --help)", argv[optind]);
	bool snap = o->json || o->once || o->top || o->name;
	if (o->clean && (o->pid || snap || o->has_runtime || has_interval || has_sample || has_by))
		die(EXIT_USAGE, "--clean takes no PID and no other option");
	if (!o->pid && (snap || o->has_runtime || has_interval || has_sample || has_by))
		die(EXIT_USAGE, "%s needs a PID (see krilltop --help)",
		    o->json          ? "--json"
		    : o->once        ? "--once"
		    : o->top         ? "--top"
		    : o->name        ? "--name"
		    : o->has_runtime ? "--runtime"
		    : has_interval   ? "--interval"
		    : has_by         ? "--by"
				     : "--sample");
	if (o->json + o->once + o->top + (o->name != 0) > 1)
		die(EXIT_USAGE, "--json, --once, --top and --name: pick one");
	if (has_interval && snap)
		die(EXIT_USAGE,
		    "--interval is for the live view (--sample for --once, --json and --top)");
	if (has_sample && !snap)
		die(EXIT_USAGE,
		    "--sample is for --once, --json and --top (--interval for the live view)");
}

int main(int argc, char **argv)
{
	struct opts o;
	parse_args(argc, argv, &o);
	if (!o.pid)
		return list(o.clean);
	if (o.json || o.once || o.top || o.name)
		return snapshot(&o);
	return live(&o);
}
