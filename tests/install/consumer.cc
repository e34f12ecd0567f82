// The C++ side of tests/install/run-install: krill.h in a C++17 program built with -pedantic
// -Werror. A client process asks a server process to double a number, gets the answer, and both
// exit. The message bytes are reached through kr_msg_data (C++ has no flexible array member).
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <krill.h>

namespace
{

enum : std::uint32_t { T_GO = 1, T_ASK, T_ANSWER };

struct Ask {
	kr_pid from;
	std::uint64_t n;
};

template <class T> T payload(const kr_msg *msg)
{
	T v{};
	if (msg->len == sizeof(T))
		std::memcpy(&v, kr_msg_data(msg), sizeof(T));
	return v;
}

void server(kr_ctx *ctx, void *, const kr_msg *msg)
{
	if (msg->tag != T_ASK)
		return;
	const Ask a = payload<Ask>(msg);
	const std::uint64_t twice = 2 * a.n;
	kr_send(ctx, a.from, T_ANSWER, &twice, sizeof(twice));
	kr_exit(ctx, KR_NORMAL);
}

void client(kr_ctx *ctx, void *state, const kr_msg *msg)
{
	std::uint64_t *result;
	std::memcpy(&result, state, sizeof(result));
	if (msg->tag == T_GO) {
		const Ask a{kr_self(ctx), 21};
		if (kr_send(ctx, payload<kr_pid>(msg), T_ASK, &a, sizeof(a)) < 0)
			kr_exit(ctx, KR_REASON_USER);
	} else if (msg->tag == T_ANSWER) {
		*result = payload<std::uint64_t>(msg);
		kr_exit(ctx, KR_NORMAL);
	}
}

int fail(const char *what, long rc)
{
	std::fprintf(stderr, "consumer++: %s: %ld\n", what, rc);
	return 1;
}

// The accessors point where C's flexible array members are: right after the header struct.
bool accessors_fit()
{
	struct {
		kr_msg m;
		unsigned char data[16];
	} m{};
	struct {
		kr_io_event ev;
		unsigned char data[16];
	} ev{};
	struct {
		kr_sup_children h;
		kr_sup_child_info child[2];
	} sup{};
	return kr_msg_data(&m.m) == m.data && kr_io_event_data(&ev.ev) == ev.data &&
	       kr_sup_children_child(&sup.h) == sup.child;
}

} // namespace

int main()
{
	kr_runtime *rt;
	kr_pid srv, cli;
	std::uint64_t result = 0;
	std::uint64_t *out = &result;
	int rc;

	if (!accessors_fit())
		return fail("accessors out of place", 0);
	if ((rc = kr_runtime_new(nullptr, &rt)) < 0)
		return fail("kr_runtime_new", rc);
	if ((rc = kr_rt_spawn(rt, server, nullptr, 0, &srv)) < 0 ||
	    (rc = kr_rt_spawn(rt, client, &out, sizeof(out), &cli)) < 0)
		return fail("kr_rt_spawn", rc);
	if ((rc = kr_rt_send(rt, cli, T_GO, &srv, sizeof(srv))) < 0)
		return fail("kr_rt_send", rc);
	if ((rc = kr_run(rt)) < 0)
		return fail("kr_run", rc);
	if (result != 42)
		return fail("the answer, not 42", static_cast<long>(result));
	if (kr_alive(rt) != 0)
		return fail("processes left", static_cast<long>(kr_alive(rt)));
	kr_runtime_free(rt);
	std::printf("consumer++: 21 doubled is %llu\n", static_cast<unsigned long long>(result));
	return 0;
}
