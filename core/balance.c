/* balance: builds a scheduler's victim tiers and thresholds once, at
 * layout time, so the steal loop only reads three small arrays. Tiers are
 * runs of the victim order with the same level and the same distance. */
#include "core/balance.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DIST_LOCAL 10u

uint32_t bal_threshold(unsigned d)
{
	if (d <= DIST_LOCAL)
		return 1;
	/* Twice the latency ratio, rounded up: a backlog of 2 at 1.1x, 4 at
	 * 2x, 6 at 2.8x. Taking half of it then brings back at least as
	 * many processes as the remote trip costs in local steals. */
	return 2 * ((d + DIST_LOCAL - 1) / DIST_LOCAL);
}

void bal_fini(struct balance *b)
{
	free(b->order);
	free(b->level);
	free(b->min);
	free(b->tier);
	memset(b, 0, sizeof(*b));
}

static int alloc(struct balance *b, unsigned nv)
{
	size_t m = nv ? nv : 1;

	b->order = calloc(m, sizeof(*b->order));
	b->level = calloc(m, sizeof(*b->level));
	b->min = calloc(m, sizeof(*b->min));
	b->tier = calloc(m + 1, sizeof(*b->tier));
	if (!b->order || !b->level || !b->min || !b->tier) {
		bal_fini(b);
		return -ENOMEM;
	}
	b->nv = nv;
	return 0;
}

static enum topo_level level_of(const struct topo_place *a, const struct topo_place *b)
{
	if (a->l3 == b->l3 && a->numa == b->numa)
		return TOPO_SAME_L3;
	return a->numa == b->numa ? TOPO_SAME_NUMA : TOPO_REMOTE;
}

/* The flat baseline: index order from self, all one tier, no thresholds.
 * Levels are still filled in, for the steal counters. */
static void flat(struct balance *b, const struct topo_place *places, unsigned n, unsigned self)
{
	for (unsigned k = 1; k < n; k++) {
		unsigned j = (self + k) % n;

		b->order[k - 1] = j;
		b->level[k - 1] = (unsigned char)level_of(&places[self], &places[j]);
		b->min[k - 1] = 1;
	}
	b->ntier = 1;
	b->tier[0] = 0;
	b->tier[1] = b->nv;
}

static int numa(struct balance *b, const struct topo *t, const struct topo_place *places,
		unsigned n, unsigned self)
{
	enum topo_level *lv = calloc(b->nv ? b->nv : 1, sizeof(*lv));
	const struct topo_place *me = &places[self];
	unsigned rank = 0, last_d = 0;

	if (!lv)
		return -ENOMEM;
	topo_victims(t, places, n, self, b->order, lv);
	for (unsigned j = 0; j < b->nv; j++) {
		unsigned v = b->order[j];
		unsigned d =
		    lv[j] == TOPO_REMOTE ? topo_distance(t, me->numa, places[v].numa) : DIST_LOCAL;

		b->level[j] = (unsigned char)lv[j];
		b->min[j] = lv[j] == TOPO_REMOTE ? bal_threshold(d) : 1;
		if (j == 0 || lv[j] != lv[j - 1] || d != last_d)
			b->tier[b->ntier++] = j;
		last_d = d;
	}
	b->tier[b->ntier] = b->nv;
	free(lv);
	/* Rank within the node, by index: the first scheduler of a node
	 * looks remote at once, the others a little later each. */
	for (unsigned i = 0; i < self; i++)
		rank += places[i].numa == me->numa;
	b->remote_after = rank * BAL_REMOTE_WAIT;
	return 0;
}

int bal_init(struct balance *b, const struct topo *t, const struct topo_place *places, unsigned n,
	     unsigned self, bool use_numa)
{
	int err;

	memset(b, 0, sizeof(*b));
	if (n == 0 || self >= n)
		return -EINVAL;
	err = alloc(b, n - 1);
	if (err < 0)
		return err;
	b->numa = use_numa;
	if (n == 1)
		return 0;
	if (!use_numa) {
		flat(b, places, n, self);
		return 0;
	}
	err = numa(b, t, places, n, self);
	if (err < 0)
		bal_fini(b);
	return err;
}

unsigned bal_pick(const struct balance *b, unsigned start, unsigned k)
{
	for (unsigned i = 0; i < b->ntier; i++) {
		unsigned lo = b->tier[i], len = b->tier[i + 1] - lo;

		if (k < len)
			return lo + (start + k) % len;
		k -= len;
	}
	return k; /* k >= nv: out of range, as given */
}
