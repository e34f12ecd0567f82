/* Tests for topology: synthetic and XML descriptions pin down exact counts,
 * layouts and victim orders; the real machine is checked against what the
 * kernel says this process may run on. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hwloc.h>

#include "topology/topo.h"

static struct topo *load(const char *desc)
{
	struct topo *t = NULL;

	assert_int_equal(kri_topo_load(desc, &t), 0);
	assert_non_null(t);
	return t;
}

static void assert_describes(const struct topo *t, const char *want)
{
	char buf[128];

	assert_int_equal(kri_topo_describe(t, buf, sizeof(buf)), (int)strlen(want));
	assert_string_equal(buf, want);
}

static unsigned affinity_count(void)
{
	cpu_set_t set;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	return (unsigned)CPU_COUNT(&set);
}

static int first_allowed_cpu(void)
{
	cpu_set_t set;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			return c;
	fail_msg("no allowed cpu");
	return -1;
}

/* The matrix a synthetic description cannot carry (hwloc 2 synthetic strings
 * have no distance syntax), so it travels through XML, as from a real box. */
static void write_xml(const char *desc, const hwloc_uint64_t *dist, unsigned n, char *path)
{
	static const char tmpl[] = "/tmp/krill-topo-XXXXXX.xml"; /* fits callers' path[64] */
	hwloc_topology_t h;
	int fd;

	memcpy(path, tmpl, sizeof(tmpl));
	fd = mkstemps(path, 4);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(hwloc_topology_init(&h), 0);
	assert_int_equal(hwloc_topology_set_synthetic(h, desc), 0);
	assert_int_equal(hwloc_topology_load(h), 0);
	if (dist) {
		hwloc_obj_t nodes[16];
		hwloc_uint64_t values[16 * 16]; /* hwloc wants it writable */
		hwloc_distances_add_handle_t dh;

		assert_true(n <= 16);
		memcpy(values, dist, (size_t)n * n * sizeof(*values));

		assert_int_equal(hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_NUMANODE), (int)n);
		for (unsigned i = 0; i < n; i++)
			nodes[i] = hwloc_get_obj_by_type(h, HWLOC_OBJ_NUMANODE, i);
		dh = hwloc_distances_add_create(
		    h, "test latency",
		    HWLOC_DISTANCES_KIND_FROM_USER | HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0);
		assert_non_null(dh);
		assert_int_equal(hwloc_distances_add_values(h, dh, n, nodes, values, 0), 0);
		assert_int_equal(hwloc_distances_add_commit(h, dh, 0), 0);
	}
	assert_int_equal(hwloc_topology_export_xml(h, path, 0), 0);
	hwloc_topology_destroy(h);
}

static void test_the_real_machine_loads_with_at_least_one_core(void **state)
{
	struct topo *t = load(NULL);
	struct topo_place *p;
	unsigned n = kri_topo_layout_count(t, 0, true);
	char buf[128];
	int len;

	assert_true(kri_topo_is_real(t));
	assert_true(kri_topo_ncores(t) >= 1);
	assert_int_equal(kri_topo_npus(t), affinity_count());
	assert_true(kri_topo_ncores(t) <= kri_topo_npus(t));
	assert_true(kri_topo_nnuma(t) >= 1);
	assert_true(kri_topo_nl3(t) >= 1 && kri_topo_nl3(t) <= kri_topo_ncores(t));
	assert_int_equal(n, kri_topo_npus(t));
	p = calloc(n, sizeof(*p));
	assert_non_null(p);
	assert_int_equal(kri_topo_layout(t, 0, true, p), 0);
	for (unsigned i = 0; i < n; i++) {
		cpu_set_t set;

		assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
		assert_true(p[i].cpu >= 0 && CPU_ISSET(p[i].cpu, &set));
		assert_true(p[i].numa < kri_topo_nnuma(t));
	}
	free(p);
	len = kri_topo_describe(t, buf, sizeof(buf));
	assert_true(len > 0 && (size_t)len < sizeof(buf));
	assert_non_null(strstr(buf, " pus (this machine)"));
	kri_topo_free(t);
}

/* cmocka asserts must run on the test's own thread, so helper threads only
 * record what they saw. */
struct one_cpu {
	int cpu, err;
	unsigned npus, ncores, nnuma, nl3;
	int placed[2];
};

static void *load_with_one_cpu(void *arg)
{
	struct one_cpu *r = arg;
	cpu_set_t set;
	struct topo *t = NULL;
	struct topo_place p[2];

	CPU_ZERO(&set);
	CPU_SET(r->cpu, &set);
	r->err = sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
	if (r->err == 0)
		r->err = kri_topo_load(NULL, &t);
	if (r->err < 0)
		return NULL;
	r->npus = kri_topo_npus(t);
	r->ncores = kri_topo_ncores(t);
	r->nnuma = kri_topo_nnuma(t);
	r->nl3 = kri_topo_nl3(t);
	r->err = kri_topo_layout(t, 2, false, p);
	r->placed[0] = p[0].cpu;
	r->placed[1] = p[1].cpu;
	kri_topo_free(t);
	return NULL;
}

static void test_the_real_machine_is_restricted_to_the_thread_affinity(void **state)
{
	struct one_cpu r = {.cpu = first_allowed_cpu()};
	pthread_t th;

	/* In a thread, so the narrowed mask does not leak into other tests. */
	assert_int_equal(pthread_create(&th, NULL, load_with_one_cpu, &r), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.npus, 1);
	assert_int_equal(r.ncores, 1);
	assert_int_equal(r.nnuma, 1);
	assert_int_equal(r.nl3, 1);
	assert_int_equal(r.placed[0], r.cpu);
	assert_int_equal(r.placed[1], r.cpu);
}

static void test_the_krill_topology_variable_is_honoured(void **state)
{
	struct topo *t;

	assert_int_equal(setenv("KRILL_TOPOLOGY", "pack:2 numa:2 core:8 pu:2", 1), 0);
	t = load(NULL);
	assert_false(kri_topo_is_real(t));
	assert_int_equal(kri_topo_ncores(t), 32);
	assert_describes(t, "4 numa, 4 l3, 32 cores, 64 pus (synthetic)");
	kri_topo_free(t);

	/* An explicit description wins over the variable. */
	t = load("numa:2 core:1 pu:1");
	assert_int_equal(kri_topo_ncores(t), 2);
	kri_topo_free(t);

	/* Set but empty means this machine. */
	assert_int_equal(setenv("KRILL_TOPOLOGY", "", 1), 0);
	t = load(NULL);
	assert_true(kri_topo_is_real(t));
	assert_int_equal(kri_topo_npus(t), affinity_count());
	kri_topo_free(t);
	assert_int_equal(unsetenv("KRILL_TOPOLOGY"), 0);
}

static void test_two_packages_of_two_nodes_give_4_numa_32_cores_64_pus(void **state)
{
	struct topo *t = load("pack:2 numa:2 core:8 pu:2");

	assert_false(kri_topo_is_real(t));
	assert_int_equal(kri_topo_nnuma(t), 4);
	assert_int_equal(kri_topo_nl3(t), 4); /* no caches: one group per node */
	assert_int_equal(kri_topo_ncores(t), 32);
	assert_int_equal(kri_topo_npus(t), 64);
	assert_int_equal(kri_topo_distance(t, 0, 0), 10);
	assert_int_equal(kri_topo_distance(t, 0, 3), 20);
	assert_int_equal(kri_topo_distance(t, 2, 1), 20);
	assert_describes(t, "4 numa, 4 l3, 32 cores, 64 pus (synthetic)");
	kri_topo_free(t);
}

static void check_nodes(const char *desc, unsigned nnuma, unsigned ncores, unsigned npus,
			const char *line)
{
	struct topo *t = load(desc);
	struct topo_place p[64];
	unsigned per = ncores / nnuma;

	assert_int_equal(kri_topo_nnuma(t), nnuma);
	assert_int_equal(kri_topo_nl3(t), nnuma);
	assert_int_equal(kri_topo_ncores(t), ncores);
	assert_int_equal(kri_topo_npus(t), npus);
	assert_int_equal(kri_topo_layout_count(t, 0, false), ncores);
	assert_int_equal(kri_topo_layout(t, 0, false, p), 0);
	for (unsigned i = 0; i < ncores; i++) {
		assert_int_equal(p[i].core, i);
		assert_int_equal(p[i].numa, i / per);
		assert_int_equal(p[i].l3, i / per);
	}
	for (unsigned a = 0; a < nnuma; a++)
		for (unsigned b = 0; b < nnuma; b++)
			assert_int_equal(kri_topo_distance(t, a, b), a == b ? 10 : 20);
	assert_describes(t, line);
	kri_topo_free(t);
}

static void test_two_four_and_eight_numa_nodes_are_counted_and_indexed(void **state)
{
	check_nodes("numa:2 core:4 pu:1", 2, 8, 8, "2 numa, 2 l3, 8 cores, 8 pus (synthetic)");
	check_nodes("pack:2 numa:2 core:4 pu:2", 4, 16, 32,
		    "4 numa, 4 l3, 16 cores, 32 pus (synthetic)");
	check_nodes("pack:2 numa:4 core:2 pu:1", 8, 16, 16,
		    "8 numa, 8 l3, 16 cores, 16 pus (synthetic)");
}

static void test_l3_caches_in_a_description_form_the_groups(void **state)
{
	struct topo *t = load("pack:2 numa:2 l3:2 core:4 pu:2");
	struct topo_place p[32];

	assert_int_equal(kri_topo_nnuma(t), 4);
	assert_int_equal(kri_topo_nl3(t), 8);
	assert_int_equal(kri_topo_ncores(t), 32);
	assert_int_equal(kri_topo_npus(t), 64);
	assert_int_equal(kri_topo_layout(t, 0, false, p), 0);
	for (unsigned i = 0; i < 32; i++) {
		assert_int_equal(p[i].l3, i / 4);
		assert_int_equal(p[i].numa, i / 8);
	}
	kri_topo_free(t);

	/* Caches but no L3: every core is its own group. */
	t = load("numa:2 l2:2 core:1 pu:2");
	assert_int_equal(kri_topo_ncores(t), 4);
	assert_int_equal(kri_topo_nl3(t), 4);
	kri_topo_free(t);
}

static void test_layout_gives_one_scheduler_per_core_in_tree_order(void **state)
{
	struct topo *t = load("pack:2 numa:2 l3:2 core:4 pu:2");
	struct topo_place p[32];

	assert_int_equal(kri_topo_layout_count(t, 0, false), 32);
	assert_int_equal(kri_topo_layout(t, 0, false, p), 0);
	for (unsigned i = 0; i < 32; i++) {
		assert_int_equal(p[i].cpu, -1); /* synthetic: never pinned */
		assert_int_equal(p[i].core, i);
		assert_int_equal(p[i].l3, i / 4);
		assert_int_equal(p[i].numa, i / 8);
	}
	assert_int_equal(kri_topo_layout_count(t, 3, false), 3);
	assert_int_equal(kri_topo_layout(t, 3, false, p), 0);
	assert_int_equal(p[2].core, 2);
	kri_topo_free(t);
}

static void test_layout_per_pu_puts_two_schedulers_on_each_core(void **state)
{
	struct topo *t = load("pack:2 numa:2 l3:2 core:4 pu:2");
	struct topo_place p[64];

	assert_int_equal(kri_topo_layout_count(t, 0, true), 64);
	assert_int_equal(kri_topo_layout(t, 0, true, p), 0);
	for (unsigned i = 0; i < 64; i++) {
		assert_int_equal(p[i].cpu, -1);
		assert_int_equal(p[i].core, i / 2);
		assert_int_equal(p[i].l3, i / 8);
		assert_int_equal(p[i].numa, i / 16);
	}
	kri_topo_free(t);
}

static void test_layout_wraps_around_when_schedulers_outnumber_cores(void **state)
{
	struct topo *t = load("pack:2 numa:2 core:2 pu:2");
	struct topo_place p[20];

	assert_int_equal(kri_topo_layout_count(t, 20, false), 20);
	assert_int_equal(kri_topo_layout(t, 20, false, p), 0);
	for (unsigned i = 0; i < 20; i++) {
		assert_int_equal(p[i].core, i % 8);
		assert_int_equal(p[i].numa, (i % 8) / 2);
	}
	assert_int_equal(kri_topo_layout(t, 20, true, p), 0);
	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(p[i].core, (i % 16) / 2);
	kri_topo_free(t);
}

static void check_victims(const struct topo *t, const struct topo_place *p, unsigned n,
			  unsigned self, const unsigned *want, const enum topo_level *want_level)
{
	unsigned order[32];
	enum topo_level level[32];

	memset(order, 0xff, sizeof(order));
	kri_topo_victims(t, p, n, self, order, level);
	for (unsigned i = 0; i < n - 1; i++) {
		assert_int_equal(order[i], want[i]);
		assert_int_equal(level[i], want_level[i]);
	}
	assert_int_equal(order[n - 1], UINT32_MAX); /* nothing past n - 1 */
}

#define L3 TOPO_SAME_L3
#define NU TOPO_SAME_NUMA
#define RE TOPO_REMOTE

static void test_victims_on_two_sockets_go_same_l3_then_same_numa_then_remote(void **state)
{
	/* 2 sockets, one node each, 2 L3s of 2 cores per socket. */
	struct topo *t = load("pack:2 numa:1 l3:2 core:2 pu:1");
	struct topo_place p[16];

	assert_int_equal(kri_topo_nnuma(t), 2);
	assert_int_equal(kri_topo_nl3(t), 4);
	assert_int_equal(kri_topo_layout(t, 8, false, p), 0);
	check_victims(t, p, 8, 0, (unsigned[]){1, 2, 3, 4, 5, 6, 7},
		      (enum topo_level[]){L3, NU, NU, RE, RE, RE, RE});
	check_victims(t, p, 8, 6, (unsigned[]){7, 4, 5, 0, 1, 2, 3},
		      (enum topo_level[]){L3, NU, NU, RE, RE, RE, RE});

	/* Two schedulers a core: ties break by index distance forward from
	 * self, wrapping, so neighbours start on different victims. */
	assert_int_equal(kri_topo_layout(t, 16, false, p), 0);
	check_victims(
	    t, p, 16, 5, (unsigned[]){12, 13, 4, 6, 7, 14, 15, 8, 9, 10, 11, 0, 1, 2, 3},
	    (enum topo_level[]){L3, L3, L3, NU, NU, NU, NU, RE, RE, RE, RE, RE, RE, RE, RE});

	/* level may be NULL; one scheduler has no victims. */
	unsigned order[8] = {99};

	kri_topo_victims(t, p, 8, 3, order, NULL);
	assert_int_equal(order[0], 2);
	assert_int_equal(order[6], 7);
	order[0] = 99;
	kri_topo_victims(t, p, 1, 0, order, NULL);
	assert_int_equal(order[0], 99);
	kri_topo_free(t);
}

static void test_victims_without_a_matrix_order_remote_nodes_by_index(void **state)
{
	struct topo *t = load("pack:2 numa:2 core:2 pu:1");
	struct topo_place p[8];

	assert_int_equal(kri_topo_layout(t, 0, false, p), 0);
	check_victims(t, p, 8, 3, (unsigned[]){2, 4, 5, 6, 7, 0, 1},
		      (enum topo_level[]){L3, RE, RE, RE, RE, RE, RE});
	kri_topo_free(t);
}

static void test_a_distance_matrix_orders_remote_victims_nearest_first(void **state)
{
	static const hwloc_uint64_t near_first[16] = {
	    10, 11, 21, 31, /* */
	    11, 10, 31, 21, /* */
	    21, 31, 10, 11, /* */
	    31, 21, 11, 10,
	};
	char path[64];
	struct topo *t;
	struct topo_place p[8];

	write_xml("pack:2 numa:2 core:2 pu:1", near_first, 4, path);
	t = load(path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(kri_topo_nnuma(t), 4);
	assert_int_equal(kri_topo_distance(t, 0, 1), 11);
	assert_int_equal(kri_topo_distance(t, 0, 2), 21);
	assert_int_equal(kri_topo_distance(t, 0, 3), 31);
	assert_int_equal(kri_topo_distance(t, 3, 1), 21);
	assert_int_equal(kri_topo_layout(t, 0, false, p), 0);
	check_victims(t, p, 8, 0, (unsigned[]){1, 2, 3, 4, 5, 6, 7},
		      (enum topo_level[]){L3, RE, RE, RE, RE, RE, RE});
	/* Node 2: node 3 (11), then node 0 (21), then node 1 (31). */
	check_victims(t, p, 8, 5, (unsigned[]){4, 6, 7, 0, 1, 2, 3},
		      (enum topo_level[]){L3, RE, RE, RE, RE, RE, RE});
	kri_topo_free(t);
}

static void test_an_asymmetric_matrix_reverses_the_remote_order(void **state)
{
	/* Row 0 runs the other way from column 0: only the row counts. */
	static const hwloc_uint64_t far_first[16] = {
	    10, 31, 21, 11, /* */
	    12, 10, 40, 40, /* */
	    22, 40, 10, 40, /* */
	    32, 40, 40, 10,
	};
	char path[64];
	struct topo *t;
	struct topo_place p[8];

	write_xml("pack:2 numa:2 core:2 pu:1", far_first, 4, path);
	t = load(path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(kri_topo_distance(t, 0, 1), 31);
	assert_int_equal(kri_topo_distance(t, 1, 0), 12);
	assert_int_equal(kri_topo_distance(t, 3, 0), 32);
	assert_int_equal(kri_topo_layout(t, 0, false, p), 0);
	check_victims(t, p, 8, 0, (unsigned[]){1, 6, 7, 4, 5, 2, 3},
		      (enum topo_level[]){L3, RE, RE, RE, RE, RE, RE});
	/* Node 1: node 0 at 12, then nodes 2 and 3 tie at 40 (forward order). */
	check_victims(t, p, 8, 3, (unsigned[]){2, 0, 1, 4, 5, 6, 7},
		      (enum topo_level[]){L3, RE, RE, RE, RE, RE, RE});
	kri_topo_free(t);
}

static void test_a_synthetic_topology_survives_an_xml_round_trip(void **state)
{
	char path[64], bare[64];
	struct topo *t;
	struct topo_place p[32];
	FILE *in, *out;
	char buf[4096];
	size_t got;
	int fd;

	write_xml("pack:2 numa:2 l3:2 core:4 pu:2", NULL, 0, path);
	t = load(path);
	assert_false(kri_topo_is_real(t));
	assert_describes(t, "4 numa, 8 l3, 32 cores, 64 pus (xml)");
	assert_int_equal(kri_topo_layout(t, 0, false, p), 0);
	for (unsigned i = 0; i < 32; i++) {
		assert_int_equal(p[i].cpu, -1);
		assert_int_equal(p[i].l3, i / 4);
		assert_int_equal(p[i].numa, i / 8);
	}
	assert_int_equal(kri_topo_pin_self(t, 0), -EINVAL);
	kri_topo_free(t);

	/* An existing file is XML whatever its name. */
	strcpy(bare, "/tmp/krill-topo-XXXXXX");
	fd = mkstemp(bare);
	assert_true(fd >= 0);
	out = fdopen(fd, "w");
	in = fopen(path, "r");
	assert_non_null(out);
	assert_non_null(in);
	while ((got = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, got, out), got);
	fclose(in);
	assert_int_equal(fclose(out), 0);
	t = load(bare);
	assert_describes(t, "4 numa, 8 l3, 32 cores, 64 pus (xml)");
	kri_topo_free(t);
	assert_int_equal(unlink(bare), 0);
	assert_int_equal(unlink(path), 0);
}

static void test_bad_inputs_are_refused_with_negative_errno(void **state)
{
	static char dummy;
	struct topo *sentinel = (struct topo *)(void *)&dummy, *t = sentinel;
	struct topo_place p[4];
	char path[64];
	FILE *f;

	assert_int_equal(kri_topo_load("garbage:3", &t), -EINVAL);
	assert_ptr_equal(t, sentinel); /* a failed call changes nothing */
	assert_int_equal(kri_topo_load("", &t), -EINVAL);
	assert_int_equal(kri_topo_load("pack:2 core:0 pu:1", &t), -EINVAL);
	assert_int_equal(kri_topo_load("/tmp/krill-no-such-topology.xml", &t), -ENOENT);
	assert_ptr_equal(t, sentinel);

	/* A file that is not XML. */
	write_xml("core:1 pu:1", NULL, 0, path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not xml\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(kri_topo_load(path, &t), -EINVAL);
	assert_ptr_equal(t, sentinel);
	assert_int_equal(unlink(path), 0);

	t = load("pack:2 numa:2 core:8 pu:2");
	assert_int_equal(kri_topo_pin_self(t, 0), -EINVAL);
	assert_int_equal(kri_topo_pin_self(t, -1), -EINVAL);
	assert_int_equal(kri_topo_layout_count(t, 5000, false), 0);
	assert_int_equal(kri_topo_layout(t, 5000, false, p), -EINVAL);
	assert_int_equal(kri_topo_layout(t, 4097, true, p), -EINVAL);
	assert_int_equal(kri_topo_layout_count(t, 4096, false), 4096);
	kri_topo_free(t);
}

struct pin_run {
	struct topo *t;
	struct topo_place *p;
	unsigned n, pinned; /* places pinned and then seen alone in the mask */
	int err;
};

static void *pin_everywhere(void *arg)
{
	struct pin_run *r = arg;

	for (unsigned i = 0; i < r->n; i++) {
		cpu_set_t set;

		r->err = kri_topo_pin_self(r->t, r->p[i].cpu);
		if (r->err < 0 || sched_getaffinity(0, sizeof(set), &set) < 0)
			break;
		if (CPU_COUNT(&set) != 1 || !CPU_ISSET(r->p[i].cpu, &set))
			break;
		r->pinned++;
	}
	return NULL;
}

static void test_pinning_on_the_real_machine_to_an_allowed_cpu_succeeds(void **state)
{
	struct pin_run r = {.t = load(NULL)};
	pthread_t th;

	assert_true(kri_topo_is_real(r.t));
	assert_int_equal(kri_topo_pin_self(r.t, -1), -EINVAL);
	assert_int_equal(kri_topo_pin_self(r.t, CPU_SETSIZE + 7), -EINVAL); /* not ours */
	r.n = kri_topo_layout_count(r.t, 0, true);
	r.p = calloc(r.n, sizeof(*r.p));
	assert_non_null(r.p);
	assert_int_equal(kri_topo_layout(r.t, 0, true, r.p), 0);
	/* A thread of its own, so this one keeps its full mask. */
	assert_int_equal(pthread_create(&th, NULL, pin_everywhere, &r), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.pinned, r.n);
	free(r.p);
	kri_topo_free(r.t);
}

struct bind_run {
	struct topo *t;
	int err;
};

static void *bind_node_zero(void *arg)
{
	struct bind_run *r = arg;

	r->err = kri_topo_membind_self(r->t, 0);
	return NULL;
}

static void test_memory_binds_only_to_a_node_of_this_machine(void **state)
{
	struct bind_run r = {.t = load(NULL)};
	struct topo *t = load("pack:2 numa:2 core:2 pu:1");
	pthread_t th;

	assert_int_equal(kri_topo_membind_self(t, 0), -EINVAL); /* synthetic */
	kri_topo_free(t);
	assert_int_equal(kri_topo_membind_self(r.t, kri_topo_nnuma(r.t)), -EINVAL);
	/* A thread of its own, so this one keeps the default policy. A
	 * container may forbid binding (-EPERM) or the kernel lack it. */
	assert_int_equal(pthread_create(&th, NULL, bind_node_zero, &r), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(r.err == 0 || r.err == -ENOSYS || r.err == -EPERM || r.err == -EXDEV);
	kri_topo_free(r.t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_real_machine_loads_with_at_least_one_core),
	    cmocka_unit_test(test_the_real_machine_is_restricted_to_the_thread_affinity),
	    cmocka_unit_test(test_the_krill_topology_variable_is_honoured),
	    cmocka_unit_test(test_two_packages_of_two_nodes_give_4_numa_32_cores_64_pus),
	    cmocka_unit_test(test_two_four_and_eight_numa_nodes_are_counted_and_indexed),
	    cmocka_unit_test(test_l3_caches_in_a_description_form_the_groups),
	    cmocka_unit_test(test_layout_gives_one_scheduler_per_core_in_tree_order),
	    cmocka_unit_test(test_layout_per_pu_puts_two_schedulers_on_each_core),
	    cmocka_unit_test(test_layout_wraps_around_when_schedulers_outnumber_cores),
	    cmocka_unit_test(test_victims_on_two_sockets_go_same_l3_then_same_numa_then_remote),
	    cmocka_unit_test(test_victims_without_a_matrix_order_remote_nodes_by_index),
	    cmocka_unit_test(test_a_distance_matrix_orders_remote_victims_nearest_first),
	    cmocka_unit_test(test_an_asymmetric_matrix_reverses_the_remote_order),
	    cmocka_unit_test(test_a_synthetic_topology_survives_an_xml_round_trip),
	    cmocka_unit_test(test_bad_inputs_are_refused_with_negative_errno),
	    cmocka_unit_test(test_pinning_on_the_real_machine_to_an_allowed_cpu_succeeds),
	    cmocka_unit_test(test_memory_binds_only_to_a_node_of_this_machine),
	};

	/* The suite describes its own topologies; one from the caller's
	 * environment would change what "this machine" means. */
	unsetenv("KRILL_TOPOLOGY");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
