/* gen_call: gen_server calls across nodes, both ways (include/krill_dist.h,
 * kr_node_call and kr_node_gen_call_in). A call out is Erlang's
 * {'$gen_call', {From, Ref}, Request}; its answer {Ref, Reply} is turned,
 * where it is delivered (conn.c for a remote server, here for a local
 * one), into kr_call's own KR_TAG_REPLY, so the blocking form is kr_call's
 * machinery (core/fiber, kri_fiber_call: monitor, reply matched by ref,
 * a late reply dropped by the trampoline) and not a second copy of it.
 *
 * The Ref is an Erlang reference of this node carrying the call's monitor
 * ref (the 64 bits as kri_dist_x_encode_ref lays them out) and CALL_MARK
 * in the spare high bits of its third word: only a reference made here
 * for a call becomes a KR_TAG_REPLY; any other {Ref, X} stays a
 * KR_TAG_DIST. The plain-reference form is the one gen:reply/2 answers to
 * a pid (OTP 25's callers send [alias|Ref] instead, which the answering
 * side here echoes as it came, whatever its shape).
 *
 * Rejected: matching {Ref, Reply} KR_TAG_DIST messages in a kr_receive of
 * our own. A reply that comes after a timeout would stay in the mailbox;
 * kr_call's trampoline already drops those for KR_TAG_REPLY. */
#include <errno.h>
#include <string.h>

#include "core/fiber/fiber.h"
#include "dist/dist.h"

/* Bits 16..31 of a call reference's third word (kri_dist_x_encode_ref
 * uses bits 0..13 of it). */
#define CALL_MARK      0x4b430000u
#define CALL_MARK_MASK 0xffffc000u

/* The monitor ref of a call reference this incarnation made, or 0. */
static uint64_t call_ref_decode(const struct node *nd, const erlang_ref *e)
{
	if (e->len != 3 || (e->n[2] & CALL_MARK_MASK) != CALL_MARK || e->creation != nd->creation ||
	    strcmp(e->node, nd->name))
		return 0;
	return (uint64_t)e->n[0] | (uint64_t)e->n[1] << 18 | (uint64_t)(e->n[2] & 0x3fff) << 50;
}

/* t (len bytes, version byte first) is {Ref, Reply} with Ref one of our
 * call references: *ref its monitor ref, *at where Reply starts. */
static bool is_reply(const struct node *nd, const char *t, uint32_t len, uint64_t *ref, int *at)
{
	int i = 1, arity;
	erlang_ref e;
	if (len < 2 || ei_decode_tuple_header(t, &i, &arity) || arity != 2 ||
	    ei_decode_ref(t, &i, &e) || !(*ref = call_ref_decode(nd, &e)))
		return false;
	*at = i;
	return true;
}

bool kri_dist_call_reply(struct node *nd, kr_ctx *ctx, kr_pid to, kr_pid from, const char *t,
			 uint32_t len)
{
	uint64_t ref;
	int at;
	if (!is_reply(nd, t, len, &ref, &at))
		return false;
	/* kr_call's reply: the header, then Reply with a version byte of
	 * its own, so the caller decodes it as any term. */
	unsigned char h[sizeof(kr_call_hdr) + 1];
	kr_call_hdr ch = {from, ref};
	memcpy(h, &ch, sizeof(ch));
	h[sizeof(ch)] = 131; /* the external format's version byte */
	kri_proc_send_sys(ctx, to, KR_TAG_REPLY, h, sizeof(h), t + at, len - (uint32_t)at);
	return true;
}

/* ---- calling a gen_server ---------------------------------------------- */

static bool term_ok(const ei_x_buff *x)
{
	int i = 0, v;
	return x && x->buff && x->index > 1 && !ei_decode_version(x->buff, &i, &v);
}

struct out_call {
	struct node *nd;
	const ei_x_buff *req;
	const char *name, *node; /* by name, else to the pid */
};

/* {'$gen_call', {Self, Ref}, Request} to pid or {name, node}. */
static int call_send(kr_ctx *ctx, kr_pid pid, uint64_t ref, void *arg)
{
	const struct out_call *o = arg;
	ei_x_buff x;
	if (!pid && !o->name)
		return 0; /* a name here nobody holds: its monitor says noproc */
	if (ei_x_new_with_version(&x))
		return -ENOMEM;
	int rc = ei_x_encode_tuple_header(&x, 3) || ei_x_encode_atom(&x, "$gen_call") ||
			 ei_x_encode_tuple_header(&x, 2)
		     ? -ENOMEM
		     : kr_node_x_encode_pid(kr_runtime_of(ctx), &x, kr_self(ctx));
	if (!rc && (kri_dist_x_encode_ref(o->nd, &x, ref, CALL_MARK) ||
		    ei_x_append_buf(&x, o->req->buff + 1, o->req->index - 1)))
		rc = -ENOMEM;
	if (!rc)
		rc = o->name ? kr_node_send_name(ctx, o->name, o->node, &x)
			     : kr_node_send_term(ctx, pid, &x);
	ei_x_free(&x);
	return rc;
}

/* What to send to and what to watch for a call: the pid; for a name here,
 * the process holding it (0: none, whose monitor says noproc); for a name
 * on another node, the name itself (kr_node_monitor_name's kr_pid for it:
 * the monitor is Erlang's by name, so the call sees noproc when nobody
 * holds it, the server's reason when it exits, noconnection when the
 * connection goes). */
static int target(struct node *nd, kr_ctx *ctx, struct out_call *o, kr_pid *to, kr_pid *watch)
{
	if (!o->name) {
		*watch = *to;
		return 0;
	}
	if (!o->node || !*o->name || strlen(o->name) > MAXATOMLEN - 1 || !strchr(o->node, '@'))
		return -EINVAL;
	if (!strcmp(o->node, nd->name)) {
		*to = *watch = kr_whereis(kr_runtime_of(ctx), o->name);
		o->name = 0; /* to the pid; a local '$gen_call' is a KR_TAG_DIST */
		return 0;
	}
	pthread_mutex_lock(&nd->mu);
	uint32_t i;
	int rc = kri_dist_peer(nd, o->node, &i) ? kri_dist_name_pid(nd, i, o->name, true, watch)
						: -ENOMEM;
	pthread_mutex_unlock(&nd->mu);
	*to = 0;
	return rc;
}

static int call(kr_ctx *ctx, kr_pid to, const char *name, const char *node, const ei_x_buff *req,
		uint32_t timeout_ms, const kr_msg **reply)
{
	struct node *nd = kri_dist_node(kr_runtime_of(ctx));
	struct out_call o = {nd, req, name, node};
	kr_pid watch;
	if (!nd || !term_ok(req) || !reply)
		return -EINVAL;
	if (!kri_fiber_io(ctx))
		return -EPERM; /* before a monitor or a connect */
	int rc = target(nd, ctx, &o, &to, &watch);
	if (rc)
		return rc;
	return kri_fiber_call(ctx, to, watch, call_send, &o, timeout_ms, reply);
}

int kr_node_call(kr_ctx *ctx, kr_pid to, const ei_x_buff *req, uint32_t timeout_ms,
		 const kr_msg **reply)
{
	return call(ctx, to, 0, 0, req, timeout_ms, reply);
}

int kr_node_call_name(kr_ctx *ctx, const char *name, const char *node, const ei_x_buff *req,
		      uint32_t timeout_ms, const kr_msg **reply)
{
	return name ? call(ctx, 0, name, node, req, timeout_ms, reply) : -EINVAL;
}

static int send_req(kr_ctx *ctx, kr_pid to, const char *name, const char *node,
		    const ei_x_buff *req, uint64_t *ref)
{
	struct node *nd = kri_dist_node(kr_runtime_of(ctx));
	struct out_call o = {nd, req, name, node};
	kr_pid watch;
	if (!nd || !term_ok(req) || !ref)
		return -EINVAL;
	int rc = target(nd, ctx, &o, &to, &watch);
	if (rc || (rc = kr_monitor(ctx, watch, ref)))
		return rc;
	if ((rc = call_send(ctx, to, *ref, &o)))
		kr_demonitor(ctx, *ref);
	return rc;
}

int kr_node_call_send(kr_ctx *ctx, kr_pid to, const ei_x_buff *req, uint64_t *ref)
{
	return send_req(ctx, to, 0, 0, req, ref);
}

int kr_node_call_send_name(kr_ctx *ctx, const char *name, const char *node, const ei_x_buff *req,
			   uint64_t *ref)
{
	return name ? send_req(ctx, 0, name, node, req, ref) : -EINVAL;
}

int kr_node_call_result(kr_ctx *ctx, const kr_msg *m, uint64_t ref, const char **term,
			uint32_t *len)
{
	if (!m || !ref)
		return -EINVAL;
	if (m->tag == KR_TAG_DOWN && m->len >= offsetof(kr_exit_info, payload)) {
		kr_exit_info x;
		memcpy(&x, m->data, offsetof(kr_exit_info, payload));
		return x.ref == ref ? -ESRCH : 0;
	}
	kr_call_hdr h;
	if (m->tag != KR_TAG_REPLY || m->len < sizeof(h) + 1)
		return 0;
	memcpy(&h, m->data, sizeof(h));
	if (h.ref != ref)
		return 0;
	kr_demonitor(ctx, ref); /* answered: no DOWN for it will come, even one queued */
	if (term)
		*term = (const char *)m->data + sizeof(h);
	if (len)
		*len = m->len - (uint32_t)sizeof(h);
	return 1;
}

/* ---- answering an Erlang gen_server:call -------------------------------- */

int kr_node_gen_call_in(kr_ctx *ctx, const kr_msg *m, kr_node_from *from, const char **buf,
			int *index)
{
	kr_runtime *rt = kr_runtime_of(ctx);
	if (!m || !from || !buf || !index || !kri_dist_node(rt))
		return -EINVAL;
	if (m->tag != KR_TAG_DIST || m->len < sizeof(kr_dist_msg))
		return 0;
	const kr_dist_msg *dm = (const kr_dist_msg *)m->data;
	const char *t = kr_dist_msg_term(dm);
	int i = 0, v, arity, tag_at;
	char atom[MAXATOMLEN];
	erlang_pid e;
	if (ei_decode_version(t, &i, &v) || ei_decode_tuple_header(t, &i, &arity) || arity != 3 ||
	    ei_decode_atom(t, &i, atom) || strcmp(atom, "$gen_call") ||
	    ei_decode_tuple_header(t, &i, &arity) || arity != 2 || ei_decode_pid(t, &i, &e))
		return 0;
	tag_at = i;
	if (ei_skip_term(t, &i))
		return 0;
	/* The Tag, as it came, for the reply; a Tag too large to keep
	 * cannot be answered. */
	if ((size_t)(i - tag_at) > sizeof(from->tag))
		return -EMSGSIZE;
	int rc = kr_node_pid_from_ei(rt, &e, &from->pid);
	if (rc)
		return rc;
	from->len = (uint32_t)(i - tag_at);
	memcpy(from->tag, t + tag_at, from->len);
	*buf = t;
	*index = i;
	return 1;
}

int kr_node_gen_reply(kr_ctx *ctx, const kr_node_from *from, const ei_x_buff *reply)
{
	struct node *nd = kri_dist_node(kr_runtime_of(ctx));
	if (!nd || !from || !from->len || from->len > sizeof(from->tag) || !term_ok(reply))
		return -EINVAL;
	ei_x_buff x;
	if (ei_x_new_with_version(&x))
		return -ENOMEM;
	int rc = ei_x_encode_tuple_header(&x, 2) ||
			 ei_x_append_buf(&x, (const char *)from->tag, (int)from->len) ||
			 ei_x_append_buf(&x, reply->buff + 1, reply->index - 1)
		     ? -ENOMEM
		     : 0;
	/* A caller of this node made by kr_node_call: its KR_TAG_REPLY,
	 * as conn.c makes it for one of another node. */
	if (!rc && (pid_remote(from->pid) || !kri_dist_call_reply(nd, ctx, from->pid, kr_self(ctx),
								  x.buff, (uint32_t)x.index)))
		rc = kr_node_send_term(ctx, from->pid, &x);
	ei_x_free(&x);
	return rc;
}
