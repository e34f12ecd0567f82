/* Tests for dist/etf_check.c, the bounds-checked pass over the external term format that every
 * frame from a peer goes through before ei decodes it: terms ei encodes are accepted whole and
 * refused cut at every byte (in buffers of exactly that size, so ASan sees an overread), lying
 * lengths, unknown tags and deep nesting are refused, and a frame must be exactly its terms. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ei.h>

#include "dist/etf_check.h"

/* The check on a copy of exactly n bytes. */
static long check_n(const void *b, size_t n)
{
	unsigned char *p = malloc(n ? n : 1);
	assert_non_null(p);
	if (n)
		memcpy(p, b, n);
	long r = kri_etf_check(p, n);
	free(p);
	return r;
}

/* Accepted whole, with trailing bytes not counted, and refused cut anywhere. */
static void whole_and_every_cut(const void *b, size_t n)
{
	assert_int_equal(check_n(b, n), (long)n);
	unsigned char *more = malloc(n + 3);
	assert_non_null(more);
	memcpy(more, b, n);
	memset(more + n, 106, 3);
	assert_int_equal(check_n(more, n + 3), (long)n);
	free(more);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(check_n(b, k), -EPROTO);
}

static void x_done(ei_x_buff *x)
{
	whole_and_every_cut(x->buff, (size_t)x->index);
	ei_x_free(x);
}

static void node_pid(erlang_pid *p)
{
	memset(p, 0, sizeof(*p));
	strcpy(p->node, "a@127.0.0.1");
	p->num = 42;
	p->serial = 7;
	p->creation = 0x12345678;
}

static void terms_ei_encodes_are_accepted(void **unused)
{
	(void)unused;
	ei_x_buff x;
	erlang_pid pid;
	erlang_ref ref = {.len = 3, .n = {1, 2, 3}, .creation = 9};
	erlang_port port = {.id = 77, .creation = 5};
	node_pid(&pid);
	strcpy(ref.node, "b@host");
	strcpy(port.node, "c@host");

	/* Each kind alone. */
	ei_x_new_with_version(&x), ei_x_encode_long(&x, 5), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_long(&x, -100000), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_longlong(&x, INT64_MIN), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_ulonglong(&x, UINT64_MAX), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_double(&x, 3.25), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_atom(&x, "hello"), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_atom_as(&x, "h\xc3\xa9", ERLANG_UTF8, ERLANG_UTF8),
	    x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_string(&x, "a string"), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_binary(&x, "bin", 3), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_bitstring(&x, "\xff\x80", 0, 9), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_pid(&x, &pid), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_ref(&x, &ref), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_port(&x, &port), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_empty_list(&x), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_tuple_header(&x, 0), x_done(&x);
	ei_x_new_with_version(&x), ei_x_encode_map_header(&x, 0), x_done(&x);

	/* Together, nested: {ok, [1, {a, <<>>}, "s" | tail], #{k => v, 1 => {}}, Pid, Ref}. */
	ei_x_new_with_version(&x);
	ei_x_encode_tuple_header(&x, 5);
	ei_x_encode_atom(&x, "ok");
	ei_x_encode_list_header(&x, 3);
	ei_x_encode_long(&x, 1);
	ei_x_encode_tuple_header(&x, 2);
	ei_x_encode_atom(&x, "a");
	ei_x_encode_binary(&x, "", 0);
	ei_x_encode_string(&x, "s");
	ei_x_encode_atom(&x, "tail");
	ei_x_encode_map_header(&x, 2);
	ei_x_encode_atom(&x, "k");
	ei_x_encode_atom(&x, "v");
	ei_x_encode_long(&x, 1);
	ei_x_encode_tuple_header(&x, 0);
	ei_x_encode_pid(&x, &pid);
	ei_x_encode_ref(&x, &ref);
	x_done(&x);
}

/* Hand-made terms ei does not encode for us: old pids, ports, export, fun, large tuple. */
static void other_kinds_are_accepted(void **unused)
{
	(void)unused;
	static const unsigned char pid_old[] = {131, 103, 115, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 2, 3};
	static const unsigned char port_old[] = {131, 102, 119, 1, 'n', 0, 0, 0, 1, 3};
	static const unsigned char port_v4[] = {131, 120, 115, 1, 'n', 0, 0, 0, 0,
						0,   0,   0,   1, 0,   0, 0, 1};
	static const unsigned char export[] = {131, 113, 115, 1, 'm', 118, 0, 1, 'f', 97, 2};
	static const unsigned char ltuple[] = {131, 105, 0, 0, 0, 2, 97, 1, 106};
	static const unsigned char bigs[] = {131, 108, 0, 0, 0, 2, 110, 2, 1,  1,
					     2,   111, 0, 0, 0, 1, 0,   9, 106};
	/* fun(X) -> X + Y end with Y = 5: Size counts from itself to the end. */
	static const unsigned char fun[] = {
	    131, 112, 0,   0,   0, 57, 1,                                  /* Size 57, Arity 1 */
	    0,   1,   2,   3,   4, 5,  6, 7, 8, 9, 10, 11, 12, 13, 14, 15, /* Uniq */
	    0,   0,   0,   0,   0, 0,  0, 1,                               /* Index, NumFree 1 */
	    115, 1,   'm', 97,  0, 98, 0, 0, 0, 1, /* Module, OldIndex, OldUniq */
	    88,  115, 1,   'n', 0, 0,  0, 1, 0, 0, 0,  0,  0,  0,  0,  0, /* Pid */
	    97,  5};                                                      /* the free variable */
	whole_and_every_cut(pid_old, sizeof(pid_old));
	whole_and_every_cut(port_old, sizeof(port_old));
	whole_and_every_cut(port_v4, sizeof(port_v4));
	whole_and_every_cut(export, sizeof(export));
	whole_and_every_cut(ltuple, sizeof(ltuple));
	whole_and_every_cut(bigs, sizeof(bigs));
	whole_and_every_cut(fun, sizeof(fun));
	/* The same fun, Size one off either way. */
	unsigned char f[sizeof(fun)];
	memcpy(f, fun, sizeof(f));
	f[5] = 56;
	assert_int_equal(check_n(f, sizeof(f)), -EPROTO);
	f[5] = 58;
	assert_int_equal(check_n(f, sizeof(f)), -EPROTO);
}

static void lying_lengths_are_refused(void **unused)
{
	(void)unused;
	static const unsigned char cases[][12] = {
	    {131, 109, 0xff, 0xff, 0xff, 0xff, 1, 2},  /* binary of 4 GiB */
	    {131, 109, 0, 0, 0, 9, 1, 2, 3},           /* binary past the end */
	    {131, 108, 0x7f, 0xff, 0xff, 0xff, 97, 1}, /* a list of 2^31 */
	    {131, 116, 0x80, 0, 0, 0, 97, 1},          /* a map of 2^31 pairs */
	    {131, 105, 0, 0, 0, 5, 97, 1, 97, 2},      /* a tuple missing items */
	    {131, 107, 0, 200, 'a', 'b'},              /* a string past the end */
	    {131, 100, 1, 0, 'a'},                     /* an atom of 256 bytes */
	    {131, 111, 0xff, 0xff, 0xff, 0xff, 0, 1},  /* a big past the end */
	    {131, 110, 1, 2, 5},                       /* a big's sign not 0/1 */
	    {131, 77, 0, 0, 0, 1, 9, 0},               /* bits in the last byte: 9 */
	    {131, 77, 0, 0, 0, 0, 1},                  /* a bitstring of no bytes */
	    {131, 90, 0, 6, 115, 1, 'n', 0, 0, 0, 1},  /* a reference of 6 words */
	};
	static const size_t lens[] = {8, 9, 8, 8, 10, 6, 5, 8, 5, 8, 7, 11};
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++)
		assert_int_equal(check_n(cases[k], lens[k]), -EPROTO);
	/* A reference of 6 words, whole: more than erlang_ref.n holds. 5 words are fine. */
	unsigned char ref[4 + 3 + 4 + 6 * 4] = {131, 90, 0, 6, 115, 1, 'n', 0, 0, 0, 1};
	assert_int_equal(check_n(ref, sizeof(ref)), -EPROTO);
	ref[3] = 5;
	assert_int_equal(check_n(ref, sizeof(ref) - 4), (long)sizeof(ref) - 4);
	/* An atom of 300 bytes, whole. */
	unsigned char atom[4 + 300];
	atom[0] = 131, atom[1] = 100, atom[2] = 300 >> 8, atom[3] = 300 & 0xff;
	memset(atom + 4, 'a', 300);
	assert_int_equal(check_n(atom, sizeof(atom)), -EPROTO);
}

static void unknown_tags_are_refused(void **unused)
{
	(void)unused;
	static const unsigned char ok[] = {131, 106};
	assert_int_equal(check_n(ok, 2), 2);
	unsigned char b[2] = {130, 106}; /* not version 131 */
	assert_int_equal(check_n(b, 2), -EPROTO);
	/* Every tag not in the list, followed by room to spare. */
	static const unsigned char known[] = {70,  77,  88,  89,  90,  97,  98,  100, 102,
					      103, 104, 105, 106, 107, 108, 109, 110, 111,
					      112, 113, 114, 115, 116, 118, 119, 120};
	unsigned char t[64];
	memset(t, 0, sizeof(t));
	t[0] = 131;
	for (unsigned tag = 0; tag < 256; tag++) {
		if (memchr(known, (int)tag, sizeof(known)))
			continue;
		t[1] = (unsigned char)tag;
		assert_int_equal(check_n(t, sizeof(t)), -EPROTO);
	}
	assert_int_equal(check_n(b, 0), -EPROTO);
}

/* depth one-element lists, one inside the other, around an atom. */
static long nested(unsigned depth)
{
	size_t n = 1 + (size_t)depth * 5 + 2 + (size_t)depth;
	unsigned char *b = malloc(n), *p = b;
	assert_non_null(b);
	*p++ = 131;
	for (unsigned k = 0; k < depth; k++) {
		*p++ = 108;
		*p++ = 0, *p++ = 0, *p++ = 0, *p++ = 1;
	}
	*p++ = 97, *p++ = 0;
	for (unsigned k = 0; k < depth; k++)
		*p++ = 106; /* each list's tail */
	assert_int_equal((size_t)(p - b), n);
	long r = check_n(b, n);
	free(b);
	return r;
}

static void deep_nesting_is_refused(void **unused)
{
	(void)unused;
	assert_true(nested(KRI_ETF_DEPTH) > 0);
	assert_int_equal(nested(KRI_ETF_DEPTH + 1), -EPROTO);
	assert_int_equal(nested(100000), -EPROTO);
	/* Long but flat is fine: a list of 100000 small integers. */
	size_t n = 1 + 5 + 100000 * 2 + 1;
	unsigned char *b = malloc(n);
	assert_non_null(b);
	b[0] = 131, b[1] = 108, b[2] = 0, b[3] = 0x01, b[4] = 0x86, b[5] = 0xa0;
	for (size_t k = 0; k < 100000; k++)
		b[6 + 2 * k] = 97, b[7 + 2 * k] = (unsigned char)k;
	b[n - 1] = 106;
	assert_int_equal(check_n(b, n), (long)n);
	free(b);
}

static void frames_are_exactly_their_terms(void **unused)
{
	(void)unused;
	/* 'p', {2, '', Pid}, then the message 1. */
	ei_x_buff x;
	erlang_pid pid;
	node_pid(&pid);
	ei_x_new(&x);
	ei_x_append_buf(&x, "p", 1);
	ei_x_encode_version(&x);
	ei_x_encode_tuple_header(&x, 3);
	ei_x_encode_long(&x, 2);
	ei_x_encode_atom(&x, "");
	ei_x_encode_pid(&x, &pid);
	size_t ctl = (size_t)x.index;
	ei_x_encode_version(&x);
	ei_x_encode_long(&x, 1);
	size_t n = (size_t)x.index;
	assert_int_equal(kri_etf_frame_check(x.buff, n), 0);
	assert_int_equal(kri_etf_frame_check(x.buff, ctl), 0); /* control alone */
	for (size_t k = 0; k < n; k++)
		if (k != ctl) {
			char *p = malloc(k ? k : 1);
			assert_non_null(p);
			memcpy(p, x.buff, k);
			assert_int_equal(kri_etf_frame_check(p, k), -EPROTO);
			free(p);
		}
	ei_x_append_buf(&x, "\x6a", 1); /* a byte after the message */
	assert_int_equal(kri_etf_frame_check(x.buff, (size_t)x.index), -EPROTO);
	x.buff[0] = 'D'; /* a distribution header: not offered, refused */
	assert_int_equal(kri_etf_frame_check(x.buff, n), -EPROTO);
	ei_x_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(terms_ei_encodes_are_accepted),
	    cmocka_unit_test(other_kinds_are_accepted),
	    cmocka_unit_test(lying_lengths_are_refused),
	    cmocka_unit_test(unknown_tags_are_refused),
	    cmocka_unit_test(deep_nesting_is_refused),
	    cmocka_unit_test(frames_are_exactly_their_terms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
