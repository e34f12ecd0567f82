/* common: what krill-bench's benchmarks share (bench.h) beyond the harness: RSS, and the
 * head and tail of a result line. */
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Resident set size in bytes: statm's second field counts resident pages. */
int rss_bytes(uint64_t *out)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	int err = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -err : -EIO;
	buf[n] = '\0';
	unsigned long long size, resident;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return -EIO;
	*out = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
	return 0;
}

/* The keys every result has; the caller adds its own and ends with print_tail. */
void print_head(kr_runtime *rt, const struct params *p, double seconds, double ops)
{
	printf("{\"impl\":\"krill\",\"bench\":\"%s\",\"schedulers\":%u,\"topology\":",
	       p->bench->name, kr_schedulers(rt));
	cli_json_string(p->topology);
	printf(",\"seconds\":%.6f,\"rate\":%.1f,\"stats\":%d,\"numa\":%d", seconds,
	       per_second(ops, seconds), (int)p->stats, (int)p->numa);
}

void print_tail(void)
{
	puts("}");
	fflush(stdout);
}

bool spawn_fn(kr_ctx *ctx, uint64_t stackful, kr_fn fn, const void *arg, size_t len, kr_pid *out)
{
	kr_fn_opts o = {.stack = stackful == 2 ? 16 * 1024 : 0};
	int rc = kr_spawn_fn_opts(ctx, fn, arg, len, &o, out);
	if (rc < 0)
		fail_kr(ctx, "kr_spawn_fn", rc);
	return rc == 0;
}

static int tag_is(const kr_msg *m, void *tag)
{
	return m->tag == (uint32_t)(uintptr_t)tag;
}

bool recv_tag(kr_ctx *ctx, uint32_t tag, const kr_msg **m)
{
	int rc = kr_receive(ctx, tag ? tag_is : NULL, (void *)(uintptr_t)tag, KR_INFINITY, m);
	if (rc < 0)
		fail_kr(ctx, "kr_receive", rc);
	return rc == 0;
}
