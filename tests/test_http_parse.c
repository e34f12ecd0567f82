/* Tests for examples/http/parse.c, the request parser of krill-http: good requests, pipelining,
 * every split of a buffer, malformed input with the status to answer, and the size limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "examples/http/parse.h"

/* Parse a whole buffer from scratch. */
static long parse_all(const char *s, size_t len, struct http_req *r)
{
	http_req_init(r);
	return http_parse(r, s, len);
}

static long parse_str(const char *s, struct http_req *r)
{
	return parse_all(s, strlen(s), r);
}

static void simple_get_is_complete_and_keeps_alive(void **unused)
{
	const char *s = "GET /hello?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n";
	struct http_req r;
	assert_int_equal(parse_str(s, &r), strlen(s));
	assert_int_equal(r.head_len, strlen(s));
	assert_int_equal(r.method_len, 3);
	assert_memory_equal(s + r.method_off, "GET", 3);
	assert_int_equal(r.target_len, strlen("/hello?x=1"));
	assert_memory_equal(s + r.target_off, "/hello?x=1", r.target_len);
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.headers, 2);
	assert_true(http_keep_alive(&r));
}

static void bare_lf_line_ends_are_accepted(void **unused)
{
	const char *s = "GET / HTTP/1.1\nHost: a\n\n";
	struct http_req r;
	assert_int_equal(parse_str(s, &r), strlen(s));
}

static void connection_close_ends_an_http11_connection(void **unused)
{
	struct http_req r;
	assert_true(
	    parse_str("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", &r) > 0);
	assert_false(http_keep_alive(&r));
}

static void http10_keeps_alive_only_when_asked(void **unused)
{
	struct http_req r;
	assert_true(parse_str("GET / HTTP/1.0\r\n\r\n", &r) > 0);
	assert_int_equal(r.minor, 0);
	assert_false(http_keep_alive(&r));
	assert_true(parse_str("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r) > 0);
	assert_true(http_keep_alive(&r));
	assert_true(parse_str("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &r) > 0);
	assert_false(http_keep_alive(&r));
}

static void content_length_body_is_part_of_the_request(void **unused)
{
	const char *s = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET";
	size_t head = strlen(s) - strlen("helloGET");
	struct http_req r;
	http_req_init(&r);
	assert_int_equal(http_parse(&r, s, head + 2), 0);
	assert_int_equal(r.head_len, head); /* head known before the body is in */
	assert_int_equal(r.content_length, 5);
	assert_int_equal(http_parse(&r, s, strlen(s)), head + 5);
}

static void leading_empty_lines_are_skipped(void **unused)
{
	const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct http_req r;
	assert_int_equal(parse_str(s, &r), strlen(s));
	assert_int_equal(r.method_off, 4);
}

static void pipelined_requests_are_parsed_one_at_a_time(void **unused)
{
	const char *reqs[] = {
	    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
	    "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
	    "GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	};
	char buf[512] = "";
	size_t off = 0, len = 0;
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(reqs[i]);
		assert_true(len + n < sizeof(buf));
		memcpy(buf + len, reqs[i], n);
		len += n;
	}
	for (size_t i = 0; i < 3; i++) {
		struct http_req r;
		long n = parse_all(buf + off, len - off, &r);
		assert_int_equal(n, strlen(reqs[i]));
		assert_int_equal(r.target_len, 2);
		assert_memory_equal(buf + off + r.target_off, reqs[i] + r.target_off, 2);
		assert_int_equal(http_keep_alive(&r), i < 2);
		off += (size_t)n;
	}
	assert_int_equal(off, len);
}

/* Every request, fed one more byte at a time to the same parser state, is incomplete until its
 * last byte and then gives the same result as the whole; and so is a split at every point. */
static void every_split_gives_the_result_of_the_whole(void **unused)
{
	const char *cases[] = {
	    "GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
	    "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789",
	    "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
	    "GET / HTTP/2.0\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "\nGET / HTTP/1.0\n\n",
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		const char *s = cases[c];
		size_t len = strlen(s);
		struct http_req whole;
		long want = parse_all(s, len, &whole);
		assert_int_not_equal(want, 0);

		struct http_req r;
		http_req_init(&r);
		long got = 0;
		size_t i;
		for (i = 1; i <= len && got == 0; i++)
			got = http_parse(&r, s, i);
		assert_int_equal(got, want);
		if (want > 0)
			assert_int_equal(i - 1, len); /* complete exactly at its last byte */
		assert_int_equal(r.head_len, whole.head_len);
		assert_int_equal(r.flags, whole.flags);

		for (size_t k = 0; k <= len; k++) {
			http_req_init(&r);
			got = http_parse(&r, s, k);
			if (got == 0)
				got = http_parse(&r, s, len);
			assert_int_equal(got, want);
		}
	}
}

static void expect_status(const char *s, int status)
{
	struct http_req r;
	long n = parse_str(s, &r);
	if (n != -status)
		print_error("request %s: got %ld, want %d\n", s, n, -status);
	assert_int_equal(n, -status);
	assert_int_equal(r.status, status);
	/* A failed parser stays failed. */
	assert_int_equal(http_parse(&r, s, strlen(s)), -status);
}

static void malformed_requests_are_answered_400(void **unused)
{
	expect_status("GET\r\n\r\n", 400);
	expect_status("GET /\r\n\r\n", 400); /* HTTP/0.9 */
	expect_status("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400);
	expect_status("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect_status("GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400);
	expect_status("GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400);
	expect_status("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400);
	expect_status("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\n\r\n", 400); /* no Host */
	expect_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		      400);
	expect_status("\x16\x03\x01\x02\x01\x01\xfc\x03\x03\n", 400); /* TLS */
}

static void same_content_length_twice_is_accepted(void **unused)
{
	struct http_req r;
	const char *s = "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-length: 2\r\n"
			"\r\nok";
	assert_int_equal(parse_str(s, &r), strlen(s));
}

static void other_versions_and_encodings_are_refused(void **unused)
{
	expect_status("GET / HTTP/2.0\r\n\r\n", 505);
	expect_status("GET / HTTP/0.9\r\n\r\n", 505);
	expect_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
	/* HTTP/1.2 would be read as the 1.1 it is compatible with. */
	struct http_req r;
	assert_true(parse_str("GET / HTTP/1.2\r\nHost: a\r\n\r\n", &r) > 0);
}

static void large_bodies_are_refused(void **unused)
{
	char s[128];
	snprintf(s, sizeof(s), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %u\r\n\r\n",
		 HTTP_BODY_MAX + 1);
	expect_status(s, 413);
	expect_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n"
		      "\r\n",
		      413);
	snprintf(s, sizeof(s), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %u\r\n\r\n",
		 HTTP_BODY_MAX);
	struct http_req r;
	assert_int_equal(parse_str(s, &r), 0); /* allowed, waiting for the body */
	assert_int_equal(r.content_length, HTTP_BODY_MAX);
}

static void oversized_heads_are_answered_431(void **unused)
{
	static char buf[3 * HTTP_HEAD_MAX];
	struct http_req r;

	/* A head of exactly the limit is accepted; one byte more is not. */
	const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
	size_t plen = strlen(pre), fill = HTTP_HEAD_MAX - plen - 4;
	memcpy(buf, pre, plen);
	memset(buf + plen, 'v', fill);
	memcpy(buf + plen + fill, "\r\n\r\n", 5); /* with its NUL, as strcpy wrote */
	assert_int_equal(parse_all(buf, HTTP_HEAD_MAX, &r), HTTP_HEAD_MAX);
	memmove(buf + 1, buf, HTTP_HEAD_MAX);
	buf[0] = '\n';
	assert_int_equal(parse_all(buf, HTTP_HEAD_MAX + 1, &r), -431);

	/* A line that never ends is refused as soon as the limit is passed. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	assert_int_equal(parse_all(buf, HTTP_HEAD_MAX - 1, &r), 0);
	assert_int_equal(parse_all(buf, HTTP_HEAD_MAX, &r), -431);
	assert_int_equal(parse_all(buf, sizeof(buf), &r), -431);

	/* Too many header lines, each short. */
	size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (unsigned i = 1; i < HTTP_HEADERS_MAX; i++)
		n += (size_t)sprintf(buf + n, "X%u: y\r\n", i);
	n += (size_t)sprintf(buf + n, "\r\n");
	assert_int_equal(parse_all(buf, n, &r), n); /* exactly the limit */
	n -= 2;
	n += (size_t)sprintf(buf + n, "Z: z\r\n\r\n");
	assert_int_equal(parse_all(buf, n, &r), -431);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(simple_get_is_complete_and_keeps_alive),
	    cmocka_unit_test(bare_lf_line_ends_are_accepted),
	    cmocka_unit_test(connection_close_ends_an_http11_connection),
	    cmocka_unit_test(http10_keeps_alive_only_when_asked),
	    cmocka_unit_test(content_length_body_is_part_of_the_request),
	    cmocka_unit_test(leading_empty_lines_are_skipped),
	    cmocka_unit_test(pipelined_requests_are_parsed_one_at_a_time),
	    cmocka_unit_test(every_split_gives_the_result_of_the_whole),
	    cmocka_unit_test(malformed_requests_are_answered_400),
	    cmocka_unit_test(same_content_length_twice_is_accepted),
	    cmocka_unit_test(other_versions_and_encodings_are_refused),
	    cmocka_unit_test(large_bodies_are_refused),
	    cmocka_unit_test(oversized_heads_are_answered_431),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
