/* etf_check: a bounds-checked pass over a term in Erlang's external format,
 * run on every frame a peer sends before ei_decode_* (which trusts the
 * length fields it reads) sees it. Self-contained: no ei, no allocation. */
#ifndef KR_ETF_CHECK_H
#define KR_ETF_CHECK_H

#include <stddef.h>

/* Containers (tuples, lists, maps, a fun's free variables) nested deeper
 * than this are refused: ei's own walk (ei_skip_term) and a receiver's
 * decoder recurse once a level, on a process's stack. */
#define KRI_ETF_DEPTH 128

/* The bytes one version byte (131) and the term after it take at b,
 * within n: > 0; or -EPROTO if they are not one whole term of a kind this
 * node knows (the list in etf_check.c), a length runs past n, or the
 * nesting passes KRI_ETF_DEPTH. Reads no byte at or past b + n. */
long kri_etf_check(const void *b, size_t n);

/* A distribution frame (its length word taken off): 'p', the control
 * message, then the message if there is one, each a version byte and one
 * term, together exactly n bytes. 0 or -EPROTO. */
int kri_etf_frame_check(const void *frame, size_t n);

#endif
