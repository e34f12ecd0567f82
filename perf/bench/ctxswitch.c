/* ctxswitch: the floor of a stackful process's switch, kri_ctx_switch alone (core/fiber/switch.c):
 * --rounds round trips (two switches each) between this thread's stack and a second one, no
 * runtime, nothing copied. One JSON line: ns a round trip. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fiber/fiber.h"

static void *main_sp, *co_sp;

static void co(void *arg)
{
	for (;;)
		arg = kri_ctx_switch(&co_sp, main_sp, arg);
}

int main(int argc, char **argv)
{
	uint64_t rounds = 20000000;
	for (int i = 1; i + 1 < argc; i += 2)
		if (!strcmp(argv[i], "--rounds"))
			rounds = strtoull(argv[i + 1], 0, 10);
	size_t size = 64 * 1024;
	if (!rounds)
		return 1;
	unsigned char *stack = malloc(size);
	if (!stack)
		return 1;
	co_sp = kri_ctx_make(stack + size, co);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint64_t i = 0; i < rounds; i++)
		kri_ctx_switch(&main_sp, co_sp, (void *)(uintptr_t)i);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) /
		    (double)rounds;
	printf("{\"bench\":\"ctxswitch\",\"rounds\":%" PRIu64 ",\"ns_per_round_trip\":%.2f}\n",
	       rounds, ns);
	free(stack);
	return 0;
}
