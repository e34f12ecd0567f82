/* topology: the machine (or a described one) as krill's schedulers see it.
 * hwloc discovers NUMA nodes, L3 groups, cores and PUs; this module turns
 * that into a scheduler layout, pins threads, and orders steal victims. */
#ifndef KR_TOPO_H
#define KR_TOPO_H

#include <stdbool.h>
#include <stdint.h>

struct topo;

/* Where one scheduler lives. Indices are dense, 0-based, in tree order. */
struct topo_place {
	int cpu;       /* OS index of the PU to pin to; -1 when not pinnable */
	unsigned core; /* core index */
	unsigned l3;   /* L3 group index (a core with no L3 is its own group) */
	unsigned numa; /* NUMA node index (0 when the machine shows none) */
};

/* Steal distance classes, nearest first. */
enum topo_level { TOPO_SAME_L3 = 0, TOPO_SAME_NUMA = 1, TOPO_REMOTE = 2 };

/* Load a topology. desc: NULL -> the KRILL_TOPOLOGY environment variable if
 * set and non-empty, else this machine; a string naming an existing file or
 * ending in ".xml" -> an hwloc XML file; anything else -> an hwloc synthetic
 * description ("pack:2 numa:2 core:8 pu:2"). A topology of this machine is
 * restricted to the CPUs this process may run on (taskset, cgroup cpuset).
 * -EINVAL: bad description or XML; -ENOENT: XML file missing; -ENOMEM. */
int kri_topo_load(const char *desc, struct topo **out);
void kri_topo_free(struct topo *t);

/* True when the topology is this machine's (threads may be pinned). */
bool kri_topo_is_real(const struct topo *t);

unsigned kri_topo_ncores(const struct topo *t); /* allowed cores */
unsigned kri_topo_npus(const struct topo *t);   /* allowed PUs */
unsigned kri_topo_nnuma(const struct topo *t);  /* NUMA nodes (>= 1) */
unsigned kri_topo_nl3(const struct topo *t);    /* L3 groups (>= 1) */

/* Lay out n schedulers (n == 0: one per core, or one per PU if per_pu).
 * Schedulers are spread in tree order: scheduler i gets the i-th core (or
 * PU), wrapping around when n exceeds them. Writes n places into out
 * (caller allocates topo_layout_count(t, n, per_pu) entries).
 * -EINVAL: n > 4096. */
unsigned kri_topo_layout_count(const struct topo *t, unsigned n, bool per_pu);
int kri_topo_layout(const struct topo *t, unsigned n, bool per_pu, struct topo_place *out);

/* Relative NUMA distance (hwloc's matrix, 10 = local) between nodes a, b;
 * when the topology has no matrix: 10 if a == b else 20. */
unsigned kri_topo_distance(const struct topo *t, unsigned a, unsigned b);

/* Victim order for scheduler `self` among n places: every other scheduler
 * once, nearest first (same L3, then same NUMA node, then remote nodes by
 * increasing distance; ties by index distance from self, wrapping, so that
 * neighbours do not all pick the same victim). Writes n - 1 indices into
 * order and, if level is not NULL, their level. */
void kri_topo_victims(const struct topo *t, const struct topo_place *places, unsigned n,
		      unsigned self, unsigned *order, enum topo_level *level);

/* Pin the calling thread to the PU with OS index cpu. -EINVAL for a topology
 * that is not this machine's or cpu < 0; otherwise -errno from hwloc. */
int kri_topo_pin_self(const struct topo *t, int cpu);

/* Bind the calling thread's future memory allocations to NUMA node numa
 * (a dense index, as in topo_place), so pages it touches first come from
 * that node. -EINVAL for a topology that is not this machine's or a node
 * out of range; -ENOSYS where hwloc cannot bind memory; otherwise -errno. */
int kri_topo_membind_self(const struct topo *t, unsigned numa);

/* One line describing the topology, e.g. "2 numa, 2 l3, 16 cores, 32 pus
 * (synthetic)", for reports. Returns the length written as snprintf. */
int kri_topo_describe(const struct topo *t, char *buf, unsigned len);

#endif
