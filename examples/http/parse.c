/* parse: HTTP/1.1 request heads (RFC 9112), parsed line by line in the caller's buffer. Each
 * complete line is checked once and its effect kept in struct http_req, so feeding a request a
 * byte at a time costs a memchr per call, not a re-parse.
 *
 * Strict where leniency lets a request be read two ways (request smuggling): no obs-fold, no
 * space before a header's colon, no control bytes, one Content-Length value, no
 * Transfer-Encoding at all (answered 501), Host required in HTTP/1.1. A bare LF ends a line as
 * CRLF does (RFC 9112 section 2.2 allows it); a CR anywhere else is malformed. Errors are decided
 * at the first line that shows them, so the result never depends on how the bytes were split. */
#include "parse.h"

#include <string.h>

void http_req_init(struct http_req *r)
{
	memset(r, 0, sizeof(*r));
}

/* RFC 9110 tchar: the characters of a method or a header name. */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case-insensitive comparison of p[0..n) with a lower-case word. */
static int word_is(const char *p, size_t n, const char *word)
{
	if (strlen(word) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)p[i]) != word[i])
			return 0;
	return 1;
}

/* method SP request-target SP HTTP-version, nothing more. */
static int request_line(struct http_req *r, const char *buf, size_t start, size_t n)
{
	const char *l = buf + start;
	size_t i = 0;

	while (i < n && is_tchar((unsigned char)l[i]))
		i++;
	if (i == 0 || i == n || l[i] != ' ')
		return 400;
	r->method_off = (uint32_t)start;
	r->method_len = (uint32_t)i;
	size_t t = ++i;
	while (i < n && (unsigned char)l[i] > 0x20 && (unsigned char)l[i] < 0x7f)
		i++;
	if (i == t || i == n || l[i] != ' ')
		return 400;
	r->target_off = (uint32_t)(start + t);
	r->target_len = (uint32_t)(i - t);
	const char *v = l + i + 1;
	if (n - i - 1 != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' ||
	    v[5] > '9' || v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1')
		return 505;
	r->minor = (uint8_t)(v[7] - '0');
	r->flags |= HTTP_F_LINE;
	return 0;
}

static int content_length(struct http_req *r, const char *v, size_t n)
{
	uint64_t x = 0;
	int big = 0;

	if (n == 0)
		return 400;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 400;
		if (x > HTTP_BODY_MAX)
			big = 1; /* keep checking the digits, but stop growing */
		else
			x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if ((r->flags & HTTP_F_LENGTH) && (big || x != r->content_length))
		return 400; /* two lengths: which one frames the body? */
	if (big || x > HTTP_BODY_MAX)
		return 413;
	r->flags |= HTTP_F_LENGTH;
	r->content_length = x;
	return 0;
}

/* Connection: a comma-separated list of options, of which close and keep-alive matter. */
static void connection(struct http_req *r, const char *v, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (s < e && (v[s] == ' ' || v[s] == '\t'))
			s++;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (word_is(v + s, e - s, "close"))
			r->flags |= HTTP_F_CLOSE;
		else if (word_is(v + s, e - s, "keep-alive"))
			r->flags |= HTTP_F_KEEP_ALIVE;
		i++;
	}
}

/* field-name ":" OWS field-value OWS */
static int header_line(struct http_req *r, const char *l, size_t n)
{
	size_t i = 0;

	while (i < n && is_tchar((unsigned char)l[i]))
		i++;
	if (i == 0 || i == n || l[i] != ':')
		return 400; /* also obs-fold (a leading space) and a space before the colon */
	size_t name_len = i++;
	for (size_t j = i; j < n; j++) {
		unsigned char c = (unsigned char)l[j];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 400;
	}
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	size_t e = n;
	while (e > i && (l[e - 1] == ' ' || l[e - 1] == '\t'))
		e--;
	if (++r->headers > HTTP_HEADERS_MAX)
		return 431;
	if (word_is(l, name_len, "content-length"))
		return content_length(r, l + i, e - i);
	if (word_is(l, name_len, "transfer-encoding"))
		return 501;
	if (word_is(l, name_len, "connection")) {
		connection(r, l + i, e - i);
	} else if (word_is(l, name_len, "host")) {
		if (r->flags & HTTP_F_HOST)
			return 400;
		r->flags |= HTTP_F_HOST;
	}
	return 0;
}

static long fail(struct http_req *r, int status)
{
	r->status = (uint16_t)status;
	return -status;
}

long http_parse(struct http_req *r, const char *buf, size_t len)
{
	if (r->status)
		return -r->status;
	while (!r->head_len) {
		size_t start = r->pos;
		size_t limit = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
		const char *lf = start < limit ? memchr(buf + start, '\n', limit - start) : NULL;
		if (!lf)
			return len >= HTTP_HEAD_MAX ? fail(r, 431) : 0;
		size_t end = (size_t)(lf - buf), n = end - start;
		if (n > 0 && buf[end - 1] == '\r')
			n--;
		if (memchr(buf + start, '\r', n))
			return fail(r, 400);
		int st = 0;
		if (!(r->flags & HTTP_F_LINE)) {
			/* Empty lines before a request line are ignored (RFC 9112 2.2). */
			if (n > 0)
				st = request_line(r, buf, start, n);
		} else if (n > 0) {
			st = header_line(r, buf + start, n);
		} else {
			r->head_len = (uint32_t)(end + 1);
			if (r->minor >= 1 && !(r->flags & HTTP_F_HOST))
				st = 400;
		}
		if (st)
			return fail(r, st);
		r->pos = (uint32_t)(end + 1);
	}
	if (len - r->head_len < r->content_length)
		return 0;
	return (long)(r->head_len + r->content_length);
}

int http_keep_alive(const struct http_req *r)
{
	if (r->flags & HTTP_F_CLOSE)
		return 0;
	return r->minor >= 1 || (r->flags & HTTP_F_KEEP_ALIVE);
}

const char *http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}
