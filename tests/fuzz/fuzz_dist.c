/* libFuzzer target for dist/etf_check.c: random bytes, as a term (131 first) or as a frame ('p'
 * first), go through the check; what it accepts goes on to ei, as the connection process would
 * hand it: ei_skip_term must end where the check did, and every ei_decode_* on every term inside
 * must stay within the bytes. libei.a is not built with ASan, so the input is placed right
 * before a page mapped PROT_NONE: a read past it by ei faults, which libFuzzer reports.
 * Built and run by tests/fuzz/run-fuzz dist. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <ei.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dist/etf_check.h"

#define MAX_LEN (64 * 1024)

static void check(int ok)
{
	if (!ok)
		abort();
}

static unsigned char *area; /* MAX_LEN rounded up to pages, then the guard page */
static size_t area_len;

/* A copy of data ending right at the guard page. */
static const char *guarded(const uint8_t *data, size_t len)
{
	if (!area) {
		size_t pg = (size_t)sysconf(_SC_PAGESIZE);
		area_len = (MAX_LEN + pg - 1) / pg * pg;
		area = mmap(NULL, area_len + pg, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		check(area != MAP_FAILED);
		check(mprotect(area + area_len, pg, PROT_NONE) == 0);
	}
	check(len <= area_len);
	char *p = (char *)area + area_len - len;
	memcpy(p, data, len);
	return p;
}

/* Decode the term at *i with the decoder its type calls for, then its items. */
static void decode(const char *b, int *i, int end)
{
	int type, size, start = *i, arity;
	check(!ei_get_type(b, i, &type, &size));
	switch (type) {
	case ERL_SMALL_INTEGER_EXT:
	case ERL_INTEGER_EXT:
	case ERL_SMALL_BIG_EXT:
	case ERL_LARGE_BIG_EXT: {
		long l;
		long long ll;
		unsigned long long ull;
		int k = start;
		(void)ei_decode_long(b, &k, &l);
		k = start;
		(void)ei_decode_longlong(b, &k, &ll);
		k = start;
		(void)ei_decode_ulonglong(b, &k, &ull);
		break;
	}
	case ERL_FLOAT_EXT:
	case NEW_FLOAT_EXT: {
		double d;
		int k = start;
		check(!ei_decode_double(b, &k, &d));
		break;
	}
	case ERL_ATOM_EXT:
	case ERL_SMALL_ATOM_EXT:
	case ERL_ATOM_UTF8_EXT:
	case ERL_SMALL_ATOM_UTF8_EXT: {
		char a[MAXATOMLEN_UTF8];
		int k = start;
		(void)ei_decode_atom(b, &k, a); /* as conn.c does: latin-1, may refuse */
		k = start;
		(void)ei_decode_atom_as(b, &k, a, sizeof(a), ERLANG_UTF8, NULL, NULL);
		break;
	}
	case ERL_STRING_EXT: {
		char *s = malloc((size_t)size + 1);
		int k = start;
		check(s != NULL);
		check(!ei_decode_string(b, &k, s));
		free(s);
		break;
	}
	case ERL_BINARY_EXT: {
		void *s = malloc((size_t)size + 1);
		long got;
		int k = start;
		check(s != NULL);
		check(!ei_decode_binary(b, &k, s, &got) && got == size);
		free(s);
		break;
	}
	case ERL_BIT_BINARY_EXT: {
		const char *p;
		unsigned int off;
		size_t bits;
		int k = start;
		check(!ei_decode_bitstring(b, &k, &p, &off, &bits));
		break;
	}
	case ERL_PID_EXT:
	case ERL_NEW_PID_EXT: {
		erlang_pid pid;
		int k = start;
		(void)ei_decode_pid(b, &k, &pid);
		break;
	}
	case ERL_PORT_EXT:
	case ERL_NEW_PORT_EXT:
	case ERL_V4_PORT_EXT: {
		erlang_port port;
		int k = start;
		(void)ei_decode_port(b, &k, &port);
		break;
	}
	case ERL_NEW_REFERENCE_EXT:
	case ERL_NEWER_REFERENCE_EXT: {
		erlang_ref ref;
		int k = start;
		(void)ei_decode_ref(b, &k, &ref);
		break;
	}
	case ERL_NEW_FUN_EXT:
	case ERL_EXPORT_EXT: {
		erlang_fun f;
		int k = start;
		if (!ei_decode_fun(b, &k, &f))
			free_fun(&f);
		break;
	}
	case ERL_SMALL_TUPLE_EXT:
	case ERL_LARGE_TUPLE_EXT:
		check(!ei_decode_tuple_header(b, i, &arity));
		for (int k = 0; k < arity; k++)
			decode(b, i, end);
		return;
	case ERL_MAP_EXT:
		check(!ei_decode_map_header(b, i, &arity));
		for (int k = 0; k < 2 * arity; k++)
			decode(b, i, end);
		return;
	case ERL_LIST_EXT:
		check(!ei_decode_list_header(b, i, &arity));
		for (int k = 0; k < arity; k++)
			decode(b, i, end);
		decode(b, i, end); /* the tail */
		return;
	default:
		break;
	}
	/* The term whole: skipped as the connection skips it. */
	*i = start;
	check(!ei_skip_term(b, i));
	check(*i <= end);
}

/* One term with its version byte at b + at, which the check said is len bytes. */
static void term(const char *b, int at, long len)
{
	int i = at, v;
	check(!ei_decode_version(b, &i, &v) && v == 131);
	int j = i;
	check(!ei_skip_term(b, &j) && j == at + len);
	decode(b, &i, at + (int)len);
	check(i == at + (int)len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len > MAX_LEN)
		return 0;
	const char *b = guarded(data, len);
	if (len && b[0] == 'p') {
		if (kri_etf_frame_check(b, len))
			return 0;
		long k = kri_etf_check(b + 1, len - 1);
		check(k > 0);
		term(b, 1, k);
		if ((size_t)k + 1 < len)
			term(b, 1 + (int)k, (long)(len - 1 - (size_t)k));
		return 0;
	}
	long k = kri_etf_check(b, len);
	if (k > 0) {
		check((size_t)k <= len);
		term(b, 0, k);
	} else {
		check(k == -71); /* -EPROTO */
	}
	return 0;
}
