/* libFuzzer target for examples/http/parse.c: random bytes, parsed whole, split in two at a point
 * the data chooses, byte by byte when short, and as a pipeline; every way must agree and stay
 * within the buffer (ASan watches the reads). Built and run by tests/fuzz/run-fuzz. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "examples/http/parse.h"

static void check(int ok)
{
	if (!ok)
		abort();
}

static int known_status(long n)
{
	return n == -400 || n == -413 || n == -431 || n == -501 || n == -505;
}

/* Parse the first k bytes in a buffer of exactly k bytes, so a read past them is caught. */
static long parse_prefix(struct http_req *r, const uint8_t *data, size_t k)
{
	char *p = malloc(k ? k : 1);
	check(p != NULL);
	memcpy(p, data, k);
	long n = http_parse(r, p, k);
	free(p);
	return n;
}

static void invariants(const struct http_req *r, long n, size_t len)
{
	check(n <= (long)len);
	check(n >= 0 || known_status(n));
	if (n > 0) {
		check(r->head_len > 0 && r->head_len <= HTTP_HEAD_MAX);
		check((uint64_t)n == r->head_len + r->content_length);
		check(r->content_length <= HTTP_BODY_MAX);
		check(r->method_len > 0 && r->target_len > 0);
		check(r->target_off + r->target_len <= r->head_len);
	}
	if (n == 0 && r->head_len == 0)
		check(len < HTTP_HEAD_MAX);
	if (n < 0)
		check(r->status == -n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char *buf = (const char *)data;
	struct http_req whole, r;

	http_req_init(&whole);
	long want = http_parse(&whole, buf, len);
	invariants(&whole, want, len);

	/* Split in two: a result on the first part is final; otherwise the same state, given
	 * all of it, must end where the whole did. */
	size_t k = len ? ((size_t)data[0] * 7919u + data[len - 1]) % (len + 1) : 0;
	http_req_init(&r);
	long first = parse_prefix(&r, data, k);
	invariants(&r, first, k);
	if (first != 0)
		check(first == want);
	else
		check(http_parse(&r, buf, len) == want);
	check(r.head_len == whole.head_len && r.flags == whole.flags);

	/* Byte by byte, for inputs short enough to afford it. */
	if (len <= 256) {
		long got = 0;
		http_req_init(&r);
		for (size_t i = 0; i <= len && got == 0; i++)
			got = parse_prefix(&r, data, i);
		check(got == want);
	}

	/* As a pipeline: each request consumed moves the start on; every step makes progress. */
	size_t off = 0;
	long n = want;
	while (n > 0) {
		off += (size_t)n;
		check(off <= len);
		http_req_init(&r);
		n = http_parse(&r, buf + off, len - off);
		invariants(&r, n, len - off);
	}
	return 0;
}
