/* etf_check: validates one term of the external term format without
 * trusting a length in it: every length is checked against the bytes left
 * before it is used, nesting is bounded, and a tag not in the list below
 * (old float, old references, atom cache, compressed terms...) is refused.
 * Iterative, with a fixed stack of open containers, so a hostile frame
 * cannot run the process's stack out. */
#include "dist/etf_check.h"

#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdint.h>

enum {
	VERSION = 131,
	NEW_FLOAT = 70,
	BIT_BINARY = 77,
	NEW_PID = 88,
	NEW_PORT = 89,
	NEWER_REFERENCE = 90,
	SMALL_INTEGER = 97,
	INTEGER = 98,
	ATOM = 100,
	PORT = 102,
	PID = 103,
	SMALL_TUPLE = 104,
	LARGE_TUPLE = 105,
	NIL = 106,
	STRING = 107,
	LIST = 108,
	BINARY = 109,
	SMALL_BIG = 110,
	LARGE_BIG = 111,
	NEW_FUN = 112,
	EXPORT = 113,
	NEW_REFERENCE = 114,
	SMALL_ATOM = 115,
	MAP = 116,
	ATOM_UTF8 = 118,
	SMALL_ATOM_UTF8 = 119,
	V4_PORT = 120,
};

/* Erlang's limits: an atom holds at most 255 characters (4 bytes each in
 * UTF-8), a reference at most 5 words (ei's erlang_ref.n[5]). */
#define ATOM_CHARS 255
#define REF_WORDS  5

struct rd {
	const unsigned char *b;
	size_t n, at;
};

static bool need(const struct rd *r, size_t k)
{
	return r->n - r->at >= k;
}

static bool u8(struct rd *r, uint32_t *v)
{
	if (!need(r, 1))
		return false;
	*v = r->b[r->at++];
	return true;
}

static bool u16(struct rd *r, uint32_t *v)
{
	if (!need(r, 2))
		return false;
	*v = (uint32_t)r->b[r->at] << 8 | r->b[r->at + 1];
	r->at += 2;
	return true;
}

static bool u32(struct rd *r, uint32_t *v)
{
	if (!need(r, 4))
		return false;
	const unsigned char *p = r->b + r->at;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	r->at += 4;
	return true;
}

static bool skip(struct rd *r, size_t k)
{
	if (!need(r, k))
		return false;
	r->at += k;
	return true;
}

/* An atom, whole (a pid's, port's or reference's node, a module...). */
static bool atom(struct rd *r)
{
	uint32_t tag, len;
	if (!u8(r, &tag))
		return false;
	switch (tag) {
	case ATOM:
		return u16(r, &len) && len <= ATOM_CHARS && skip(r, len);
	case SMALL_ATOM:
		return u8(r, &len) && skip(r, len);
	case ATOM_UTF8:
		return u16(r, &len) && len <= 4 * ATOM_CHARS && skip(r, len);
	case SMALL_ATOM_UTF8:
		return u8(r, &len) && skip(r, len);
	default:
		return false;
	}
}

static bool small_int(struct rd *r)
{
	uint32_t tag;
	if (!u8(r, &tag))
		return false;
	return tag == SMALL_INTEGER ? skip(r, 1) : tag == INTEGER && skip(r, 4);
}

static bool pid(struct rd *r)
{
	uint32_t tag;
	if (!u8(r, &tag) || (tag != PID && tag != NEW_PID))
		return false;
	return atom(r) && skip(r, tag == PID ? 9 : 12);
}

/* One open container: items still to come, and where it must end (a fun's
 * Size; SIZE_MAX: anywhere). */
struct open {
	uint64_t left;
	size_t end;
};

/* The term at r's position; a container's items are left to the caller:
 * *items of them (0: none), ending at *end. */
static bool head(struct rd *r, uint64_t *items, size_t *end)
{
	uint32_t tag, len, x;
	size_t start;
	*items = 0;
	*end = SIZE_MAX;
	if (!u8(r, &tag))
		return false;
	switch (tag) {
	case SMALL_INTEGER:
		return skip(r, 1);
	case INTEGER:
		return skip(r, 4);
	case NEW_FLOAT:
		return skip(r, 8);
	case ATOM:
	case SMALL_ATOM:
	case ATOM_UTF8:
	case SMALL_ATOM_UTF8:
		r->at--;
		return atom(r);
	case SMALL_TUPLE:
		if (!u8(r, &len))
			return false;
		*items = len;
		break;
	case LARGE_TUPLE:
		if (!u32(r, &len))
			return false;
		*items = len;
		break;
	case MAP:
		if (!u32(r, &len))
			return false;
		*items = 2 * (uint64_t)len;
		break;
	case NIL:
		return true;
	case STRING:
		return u16(r, &len) && skip(r, len);
	case LIST: /* the elements, then the tail */
		if (!u32(r, &len))
			return false;
		*items = (uint64_t)len + 1;
		break;
	case BINARY:
		return u32(r, &len) && skip(r, len);
	case BIT_BINARY: /* Bits: those used in the last byte, 1..8 */
		return u32(r, &len) && len > 0 && u8(r, &x) && x >= 1 && x <= 8 && skip(r, len);
	case SMALL_BIG:
		return u8(r, &len) && u8(r, &x) && x <= 1 && skip(r, len);
	case LARGE_BIG:
		return u32(r, &len) && u8(r, &x) && x <= 1 && skip(r, len);
	case PID:
	case NEW_PID:
		r->at--;
		return pid(r);
	case PORT: /* Node, ID (4), Creation (1) */
		return atom(r) && skip(r, 5);
	case NEW_PORT: /* Node, ID (4), Creation (4) */
		return atom(r) && skip(r, 8);
	case V4_PORT: /* Node, ID (8), Creation (4) */
		return atom(r) && skip(r, 12);
	case NEW_REFERENCE:   /* Len (2), Node, Creation (1), ID (4 x Len) */
	case NEWER_REFERENCE: /* Len (2), Node, Creation (4), ID (4 x Len) */
		return u16(r, &len) && len >= 1 && len <= REF_WORDS && atom(r) &&
		       skip(r, (tag == NEW_REFERENCE ? 1 : 4) + 4 * (size_t)len);
	case EXPORT: /* Module, Function, Arity (a small integer) */
		return atom(r) && atom(r) && u8(r, &x) && x == SMALL_INTEGER && skip(r, 1);
	case NEW_FUN:
		/* Size (4, itself included), Arity (1), Uniq (16), Index (4),
		 * NumFree (4), Module, OldIndex, OldUniq, Pid, then NumFree
		 * terms, ending Size bytes after Size began. */
		start = r->at;
		if (!u32(r, &len) || len > r->n - start || !skip(r, 1 + 16 + 4) || !u32(r, &x) ||
		    !atom(r) || !small_int(r) || !small_int(r) || !pid(r))
			return false;
		*end = start + len;
		if (r->at > *end)
			return false;
		*items = x;
		break;
	default:
		return false;
	}
	/* Every item takes a byte at least: a count past the bytes left is a lie. */
	return *items <= r->n - r->at;
}

long kri_etf_check(const void *b, size_t n)
{
	struct rd r = {.b = b, .n = n, .at = 0};
	struct open st[KRI_ETF_DEPTH];
	unsigned depth = 0;
	uint32_t v;
	if (n > (size_t)LONG_MAX || !u8(&r, &v) || v != VERSION)
		return -EPROTO;
	for (;;) {
		uint64_t items;
		size_t end;
		if (!head(&r, &items, &end))
			return -EPROTO;
		if (items) {
			if (depth == KRI_ETF_DEPTH)
				return -EPROTO;
			st[depth].left = items;
			st[depth].end = end;
			depth++;
			continue;
		}
		if (end != SIZE_MAX && r.at != end) /* a fun without free variables */
			return -EPROTO;
		/* A term is whole: it counts against the containers it closes. */
		while (depth && --st[depth - 1].left == 0) {
			depth--;
			if (st[depth].end != SIZE_MAX && r.at != st[depth].end)
				return -EPROTO;
		}
		if (!depth)
			return (long)r.at;
	}
}

int kri_etf_frame_check(const void *frame, size_t n)
{
	const unsigned char *b = frame;
	if (n < 1 || b[0] != 'p')
		return -EPROTO;
	long k = kri_etf_check(b + 1, n - 1);
	if (k < 0)
		return -EPROTO;
	size_t at = 1 + (size_t)k;
	if (at < n && kri_etf_check(b + at, n - at) != (long)(n - at))
		return -EPROTO;
	return 0;
}
