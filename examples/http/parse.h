/* parse: an incremental HTTP/1.1 request-head parser for krill's benchmark servers. It reads
 * the caller's buffer in place (no allocation, no copy), line by line, and can be called again
 * as more bytes arrive; a pipelined buffer is handled one request at a time. */
#ifndef KRILL_HTTP_PARSE_H
#define KRILL_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Limits. A head (request line, header lines and the blank line) longer than HTTP_HEAD_MAX or
 * with more than HTTP_HEADERS_MAX header lines is answered 431; a Content-Length above
 * HTTP_BODY_MAX is answered 413. */
#define HTTP_HEAD_MAX    8192u
#define HTTP_HEADERS_MAX 100u
#define HTTP_BODY_MAX    (1u << 20)

/* One request being parsed. Offsets count from the first byte of the request (the buf given to
 * http_parse), so the caller may move its buffer between calls as long as the request's bytes
 * move with it. */
struct http_req {
	uint32_t pos;        /* bytes of whole lines already examined */
	uint32_t head_len;   /* 0 until the head is complete; then its bytes, blank line too */
	uint32_t method_off; /* the method: buf + method_off, method_len bytes */
	uint32_t method_len;
	uint32_t target_off; /* the request target, as sent */
	uint32_t target_len;
	uint32_t headers; /* header lines seen */
	uint8_t minor;    /* HTTP/1.<minor> */
	uint8_t flags;    /* HTTP_F_* below, as far as parsed */
	uint16_t status;  /* after a failure: the status to answer */
	uint64_t content_length;
};

#define HTTP_F_CLOSE      0x01u /* Connection: close */
#define HTTP_F_KEEP_ALIVE 0x02u /* Connection: keep-alive */
#define HTTP_F_LENGTH     0x04u /* a Content-Length was given */
#define HTTP_F_HOST       0x08u /* a Host was given */
#define HTTP_F_LINE       0x10u /* the request line has been parsed */

/* Start parsing a new request. */
void http_req_init(struct http_req *r);

/* Parse the request at buf[0..len), continuing from where the last call on r stopped (buf must
 * hold the same request's bytes, with more of them now). Returns the bytes of the whole request,
 * head and Content-Length body, when they are all in buf (the next pipelined request starts
 * there: call http_req_init before parsing it); 0 when more bytes are needed (r->head_len tells
 * whether the head is complete already); or, for a request that cannot be served, minus the
 * status to answer before closing the connection (also in r->status):
 *   -400 malformed; -431 head or header count over the limits; -505 an HTTP version other than
 *   1.x; -501 a Transfer-Encoding (request bodies other than Content-Length are not supported);
 *   -413 Content-Length over HTTP_BODY_MAX.
 * A result other than 0 depends only on the bytes up to where it was decided: parsing a longer
 * buffer with the same start gives the same result. */
long http_parse(struct http_req *r, const char *buf, size_t len);

/* Whether the connection stays open after this (complete) request: HTTP/1.1 unless
 * "Connection: close"; HTTP/1.0 only with "Connection: keep-alive". */
int http_keep_alive(const struct http_req *r);

/* The reason phrase of a status http_parse returns (and 200), for a response line. */
const char *http_reason(int status);

#endif
