/* topology: turns an hwloc topology (this machine, a synthetic description or
 * an XML file) into flat per-core and per-PU tables, so that layout and victim
 * ordering never walk the hwloc tree and pinning is the only later hwloc call. */
#include "topo.h"

#include <errno.h>
#include <hwloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Schedulers are numbered with small ints elsewhere; more than this is a
 * configuration mistake, not a machine. */
#define TOPO_MAX_PLACES 4096u

#define DIST_LOCAL  10u
#define DIST_REMOTE 20u

enum topo_origin { ORIGIN_MACHINE, ORIGIN_SYNTHETIC, ORIGIN_XML };

struct topo_core {
	int cpu; /* os index of its first allowed PU */
	unsigned l3, numa;
};

struct topo_pu {
	int cpu;
	unsigned core;
};

struct topo {
	hwloc_topology_t h; /* kept only to pin threads */
	enum topo_origin origin;
	bool real;
	unsigned ncores, npus, nnuma, nl3;
	struct topo_core *cores;
	struct topo_pu *pus;
	unsigned *dist;    /* nnuma * nnuma, row = from, dense NUMA indices */
	unsigned *node_os; /* OS index of each dense NUMA node (NULL: none shown) */
};

static int hwloc_err(void)
{
	return errno == ENOMEM ? -ENOMEM : -EINVAL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The CPUs this thread may run on: the topology (already without PUs the
 * cgroup forbids), the allowed cpuset (in case hwloc was told to keep
 * disallowed ones) and the affinity mask taskset or a parent gave us. The
 * calling thread's mask is the one schedulers will inherit. */
static int restrict_to_allowed(hwloc_topology_t h)
{
	hwloc_bitmap_t set = hwloc_bitmap_dup(hwloc_topology_get_topology_cpuset(h));
	hwloc_bitmap_t bind = hwloc_bitmap_alloc();
	int err = 0;

	if (!set || !bind) {
		err = -ENOMEM;
		goto out;
	}
	hwloc_bitmap_and(set, set, hwloc_topology_get_allowed_cpuset(h));
	/* Without binding support we cannot know the mask; the allowed set is
	 * still right, so carry on rather than fail. */
	if (hwloc_get_cpubind(h, bind, HWLOC_CPUBIND_THREAD) == 0 && !hwloc_bitmap_iszero(bind))
		hwloc_bitmap_and(set, set, bind);
	if (hwloc_bitmap_iszero(set)) {
		err = -EINVAL;
		goto out;
	}
	if (!hwloc_bitmap_isequal(set, hwloc_topology_get_topology_cpuset(h)) &&
	    hwloc_topology_restrict(h, set, 0) < 0)
		err = hwloc_err();
out:
	hwloc_bitmap_free(bind);
	hwloc_bitmap_free(set);
	return err;
}

static int open_hwloc(const char *desc, hwloc_topology_t *hp, enum topo_origin *origin)
{
	hwloc_topology_t h;
	struct stat st;
	int err;

	if (hwloc_topology_init(&h) < 0)
		return -ENOMEM;
	if (!desc) {
		*origin = ORIGIN_MACHINE;
	} else if (stat(desc, &st) == 0 || ends_with(desc, ".xml")) {
		*origin = ORIGIN_XML;
		/* hwloc would only notice a missing file at load time, and
		 * report it as a parse error. */
		if (access(desc, R_OK) < 0) {
			err = -errno;
			goto fail;
		}
		if (hwloc_topology_set_xml(h, desc) < 0) {
			err = hwloc_err();
			goto fail;
		}
	} else {
		*origin = ORIGIN_SYNTHETIC;
		if (hwloc_topology_set_synthetic(h, desc) < 0) {
			err = hwloc_err();
			goto fail;
		}
	}
	if (hwloc_topology_load(h) < 0) {
		err = hwloc_err();
		goto fail;
	}
	/* HWLOC_XMLFILE or HWLOC_SYNTHETIC in the environment can make a
	 * "machine" load describe some other machine: never pin to that. */
	if (*origin == ORIGIN_MACHINE && hwloc_topology_is_thissystem(h)) {
		err = restrict_to_allowed(h);
		if (err < 0)
			goto fail;
	}
	*hp = h;
	return 0;
fail:
	hwloc_topology_destroy(h);
	return err;
}

/* A core's home node: the first (in logical order) NUMA node whose cpuset
 * covers it. A core may be covered by several (DRAM plus HBM on the same
 * package); the first is the ordinary memory. */
static hwloc_obj_t home_node(hwloc_topology_t h, hwloc_obj_t core)
{
	hwloc_obj_t node = NULL, partial = NULL;

	while ((node = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_NUMANODE, node))) {
		if (!node->cpuset)
			continue;
		if (hwloc_bitmap_isincluded(core->cpuset, node->cpuset))
			return node;
		if (!partial && hwloc_bitmap_intersects(core->cpuset, node->cpuset))
			partial = node;
	}
	return partial;
}

/* Dense index for an object of one type, assigned on first sight. */
static unsigned dense(unsigned *map, unsigned *count, hwloc_obj_t obj)
{
	unsigned i = obj->logical_index;

	if (map[i] == UINT_MAX)
		map[i] = (*count)++;
	return map[i];
}

static void fill_distances(struct topo *t, hwloc_obj_t *nodes)
{
	struct hwloc_distances_s *d = NULL;
	unsigned nr = 1, n = t->nnuma;

	for (unsigned a = 0; a < n; a++)
		for (unsigned b = 0; b < n; b++)
			t->dist[a * n + b] = a == b ? DIST_LOCAL : DIST_REMOTE;
	if (!nodes)
		return;
	if (hwloc_distances_get_by_type(t->h, HWLOC_OBJ_NUMANODE, &nr, &d,
					HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0) < 0 ||
	    nr == 0)
		return;
	/* A matrix may leave nodes out; those pairs keep the default. */
	for (unsigned a = 0; a < n; a++) {
		for (unsigned b = 0; b < n; b++) {
			hwloc_uint64_t ab, ba;

			if (hwloc_distances_obj_pair_values(d, nodes[a], nodes[b], &ab, &ba) == 0)
				t->dist[a * n + b] = ab > UINT_MAX ? UINT_MAX : (unsigned)ab;
		}
	}
	hwloc_distances_release(t->h, d);
}

/* Fills the tables from t->h. Cores are found through PUs so that a topology
 * without Core objects still works: each PU is then its own core. */
static int build(struct topo *t)
{
	hwloc_topology_t h = t->h;
	int nnodes = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_NUMANODE);
	int nl3objs = hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_L3CACHE);
	unsigned *nodemap = NULL, *l3map = NULL, *nodecore = NULL;
	hwloc_obj_t *nodes = NULL, pu = NULL, last = NULL;
	bool any_cache = false;
	int err = -ENOMEM;

	t->npus = (unsigned)hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PU);
	if (t->npus == 0)
		return -EINVAL;
	for (int ty = 0; ty < HWLOC_OBJ_TYPE_MAX; ty++)
		if (hwloc_obj_type_is_cache((hwloc_obj_type_t)ty) &&
		    hwloc_get_nbobjs_by_type(h, (hwloc_obj_type_t)ty) > 0)
			any_cache = true;
	nnodes = nnodes > 0 ? nnodes : 0;
	nl3objs = nl3objs > 0 ? nl3objs : 0;

	t->pus = calloc(t->npus, sizeof(*t->pus));
	t->cores = calloc(t->npus, sizeof(*t->cores)); /* at most one per PU */
	nodemap = malloc((size_t)(nnodes + 1) * sizeof(*nodemap));
	nodes = calloc((size_t)nnodes + 1, sizeof(*nodes));
	nodecore = calloc(t->npus, sizeof(*nodecore));
	l3map = malloc((size_t)(nl3objs + 1) * sizeof(*l3map));
	if (!t->pus || !t->cores || !nodemap || !nodes || !nodecore || !l3map)
		goto out;
	memset(nodemap, 0xff, (size_t)(nnodes + 1) * sizeof(*nodemap));
	memset(l3map, 0xff, (size_t)(nl3objs + 1) * sizeof(*l3map));

	/* Pass 1: cores, their PUs and home nodes (as hwloc logical indices). */
	for (unsigned i = 0; (pu = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_PU, pu)); i++) {
		hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_CORE, pu);

		if (!core)
			core = pu;
		if (core != last) {
			struct topo_core *c = &t->cores[t->ncores];
			hwloc_obj_t node = home_node(h, core);

			c->cpu = (int)pu->os_index;
			nodecore[t->ncores] = node ? node->logical_index : UINT_MAX;
			if (node)
				nodemap[node->logical_index] = 0; /* in use */
			if (!any_cache) {
				c->l3 = UINT_MAX; /* set from the node below */
			} else {
				hwloc_obj_t l3 =
				    hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_L3CACHE, core);

				c->l3 = l3 ? dense(l3map, &t->nl3, l3) : t->nl3++;
			}
			t->ncores++;
			last = core;
		}
		t->pus[i].cpu = (int)pu->os_index;
		t->pus[i].core = t->ncores - 1;
	}

	/* Dense NUMA indices follow hwloc's logical order over the nodes that
	 * hold at least one allowed core, so the distance matrix reads the way
	 * hwloc prints it. */
	for (int i = 0; i < nnodes; i++) {
		if (nodemap[i] == 0) {
			nodes[t->nnuma] = hwloc_get_obj_by_type(h, HWLOC_OBJ_NUMANODE, (unsigned)i);
			nodemap[i] = t->nnuma++;
		}
	}
	for (unsigned c = 0; c < t->ncores; c++) {
		unsigned node = nodecore[c];

		t->cores[c].numa = node == UINT_MAX ? 0 : nodemap[node];
		/* A description without caches says nothing about sharing;
		 * the NUMA node is the nearest domain it does describe, so it
		 * stands in for the L3 (one group per node, not per core). */
		if (!any_cache)
			t->cores[c].l3 = t->cores[c].numa;
	}
	if (t->nnuma == 0)
		t->nnuma = 1;
	if (!any_cache)
		t->nl3 = t->nnuma;

	t->dist = malloc((size_t)t->nnuma * t->nnuma * sizeof(*t->dist));
	if (!t->dist)
		goto out;
	if (nnodes > 0) {
		t->node_os = calloc(t->nnuma, sizeof(*t->node_os));
		if (!t->node_os)
			goto out;
		for (unsigned i = 0; i < t->nnuma && nodes[i]; i++)
			t->node_os[i] = nodes[i]->os_index;
	}
	fill_distances(t, nnodes > 0 ? nodes : NULL);
	err = 0;
out:
	free(l3map);
	free(nodecore);
	free(nodes);
	free(nodemap);
	return err;
}

int kri_topo_load(const char *desc, struct topo **out)
{
	struct topo *t;
	int err;

	if (!desc) {
		const char *env = getenv("KRILL_TOPOLOGY");

		if (env && *env)
			desc = env;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	err = open_hwloc(desc, &t->h, &t->origin);
	if (err < 0) {
		free(t);
		return err;
	}
	t->real = t->origin == ORIGIN_MACHINE && hwloc_topology_is_thissystem(t->h);
	err = build(t);
	if (err < 0) {
		kri_topo_free(t);
		return err;
	}
	*out = t;
	return 0;
}

void kri_topo_free(struct topo *t)
{
	if (!t)
		return;
	if (t->h)
		hwloc_topology_destroy(t->h);
	free(t->dist);
	free(t->node_os);
	free(t->cores);
	free(t->pus);
	free(t);
}

bool kri_topo_is_real(const struct topo *t)
{
	return t->real;
}

unsigned kri_topo_ncores(const struct topo *t)
{
	return t->ncores;
}

unsigned kri_topo_npus(const struct topo *t)
{
	return t->npus;
}

unsigned kri_topo_nnuma(const struct topo *t)
{
	return t->nnuma;
}

unsigned kri_topo_nl3(const struct topo *t)
{
	return t->nl3;
}

/* 0 when n is over the cap: topo_layout writes nothing then. */
unsigned kri_topo_layout_count(const struct topo *t, unsigned n, bool per_pu)
{
	if (n > TOPO_MAX_PLACES)
		return 0;
	if (n)
		return n;
	return per_pu ? t->npus : t->ncores;
}

int kri_topo_layout(const struct topo *t, unsigned n, bool per_pu, struct topo_place *out)
{
	unsigned count = kri_topo_layout_count(t, n, per_pu);

	if (n > TOPO_MAX_PLACES)
		return -EINVAL;
	for (unsigned i = 0; i < count; i++) {
		const struct topo_core *c;
		int cpu;

		if (per_pu) {
			const struct topo_pu *p = &t->pus[i % t->npus];

			out[i].core = p->core;
			cpu = p->cpu;
		} else {
			out[i].core = i % t->ncores;
			cpu = t->cores[out[i].core].cpu;
		}
		c = &t->cores[out[i].core];
		out[i].cpu = t->real ? cpu : -1;
		out[i].l3 = c->l3;
		out[i].numa = c->numa;
	}
	return 0;
}

unsigned kri_topo_distance(const struct topo *t, unsigned a, unsigned b)
{
	if (a >= t->nnuma || b >= t->nnuma)
		return a == b ? DIST_LOCAL : DIST_REMOTE;
	return t->dist[a * t->nnuma + b];
}

static enum topo_level level_of(const struct topo_place *a, const struct topo_place *b)
{
	if (a->l3 == b->l3)
		return TOPO_SAME_L3;
	return a->numa == b->numa ? TOPO_SAME_NUMA : TOPO_REMOTE;
}

/* No allocation (callers may be schedulers mid-setup): one forward sweep per
 * class, then one per distinct remote distance in increasing order. Sweeping
 * forward from self gives the index tie-break for free. */
void kri_topo_victims(const struct topo *t, const struct topo_place *places, unsigned n,
		      unsigned self, unsigned *order, enum topo_level *level)
{
	const struct topo_place *me;
	unsigned w = 0, d = 0;
	bool have_prev = false;

	if (n == 0 || self >= n)
		return;
	me = &places[self];
	for (enum topo_level lv = TOPO_SAME_L3; lv <= TOPO_SAME_NUMA; lv++) {
		for (unsigned k = 1; k < n; k++) {
			unsigned j = (self + k) % n;

			if (level_of(me, &places[j]) != lv)
				continue;
			order[w] = j;
			if (level)
				level[w] = lv;
			w++;
		}
	}
	while (w < n - 1) {
		unsigned next = 0;
		bool found = false;

		for (unsigned j = 0; j < n; j++) {
			unsigned dj;

			if (j == self || level_of(me, &places[j]) != TOPO_REMOTE)
				continue;
			dj = kri_topo_distance(t, me->numa, places[j].numa);
			if ((!have_prev || dj > d) && (!found || dj < next)) {
				next = dj;
				found = true;
			}
		}
		if (!found)
			break;
		d = next;
		have_prev = true;
		for (unsigned k = 1; k < n; k++) {
			unsigned j = (self + k) % n;

			if (level_of(me, &places[j]) != TOPO_REMOTE ||
			    kri_topo_distance(t, me->numa, places[j].numa) != d)
				continue;
			order[w] = j;
			if (level)
				level[w] = TOPO_REMOTE;
			w++;
		}
	}
}

int kri_topo_pin_self(const struct topo *t, int cpu)
{
	hwloc_obj_t pu;

	if (!t->real || cpu < 0)
		return -EINVAL;
	/* Only PUs left after restriction are found, so a CPU outside our
	 * affinity or cpuset is refused here rather than by the kernel. */
	pu = hwloc_get_pu_obj_by_os_index(t->h, (unsigned)cpu);
	if (!pu)
		return -EINVAL;
	if (hwloc_set_cpubind(t->h, pu->cpuset, HWLOC_CPUBIND_THREAD) < 0)
		return errno > 0 ? -errno : -EINVAL;
	return 0;
}

int kri_topo_membind_self(const struct topo *t, unsigned numa)
{
	hwloc_obj_t node;
	int err;

	if (!t->real || !t->node_os || numa >= t->nnuma)
		return -EINVAL;
	node = hwloc_get_numanode_obj_by_os_index(t->h, t->node_os[numa]);
	if (!node || !node->nodeset)
		return -EINVAL;
	/* THREAD: only this scheduler's pages; the process's other threads
	 * (the caller of kr_run, foreign senders) keep the default policy. */
	if (hwloc_set_membind(t->h, node->nodeset, HWLOC_MEMBIND_BIND,
			      HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) == 0)
		return 0;
	err = errno;
	return err == ENOSYS ? -ENOSYS : err > 0 ? -err : -EINVAL;
}

int kri_topo_describe(const struct topo *t, char *buf, unsigned len)
{
	static const char *const origin[] = {
	    [ORIGIN_MACHINE] = "this machine",
	    [ORIGIN_SYNTHETIC] = "synthetic",
	    [ORIGIN_XML] = "xml",
	};
	const char *what = origin[t->origin];

	if (t->origin == ORIGIN_MACHINE && !t->real)
		what = "hwloc environment";
	return snprintf(buf, len, "%u numa, %u l3, %u cores, %u pus (%s)", t->nnuma, t->nl3,
			t->ncores, t->npus, what);
}
