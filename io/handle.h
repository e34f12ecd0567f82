/* handle: the table of open sockets and files. A kr_handle is a slot index
 * and a generation (odd while open), as a pid is, so a stale handle never
 * reaches a later socket in the same slot. Each handle records its owner,
 * an opaque 64-bit id (the core's pid), and the handles of one owner are
 * listed together so that all of them close when it goes. */
#ifndef KR_HANDLE_H
#define KR_HANDLE_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "util/cpu.h"
#include "util/hmap.h"

struct ring;

enum hkind { H_LISTEN = 1, H_TCP, H_UDP, H_FILE };

/* Bytes queued to send. */
struct sbuf {
	struct sbuf *next;
	uint32_t len, off;
	uint32_t addrlen; /* UDP: the destination */
	unsigned char addr[28];
	unsigned char data[];
};

#define SEND_IOV 16

struct handle {
	alignas(64) atomic_flag lock;
	uint32_t idx;
	_Atomic uint32_t gen; /* odd while open; read without the lock */
	uint8_t kind;         /* enum hkind */
	uint8_t rmode;        /* KR_IO_PASSIVE, _ONCE, _ACTIVE */
	bool closing;
	bool accepting, rarmed, sending, want_writable, shut_wr;
	bool rtake; /* active: the next receive is armed where the owner takes
		     * the last one's event (ops.c, kri_io_rearm) */
	bool eof;   /* the peer closed while passive: told at the next recv */
	int rerr;   /* a receive error while passive, likewise */
	int fd;
	int err;           /* a failed send: later sends get -EPIPE */
	uint32_t inflight; /* requests that still point at this handle */
	uint64_t owner;
	/* The ring of the scheduler where the owner last used the handle (a
	 * kr_io_* call on it, or taking one of its receive events); NULL: not
	 * yet. */
	struct ring *home;
	uint64_t cref; /* connect: the caller's ref */
	struct handle *onext, *oprev;
	struct sbuf *sq, *sqtail;
	size_t sqbytes;
	uint32_t niov;
	struct iovec iov[SEND_IOV];
	struct msghdr mh;
	unsigned char *stash; /* received while passive: handed out first */
	uint32_t stashlen;
	uint32_t addrlen; /* connect target; UDP: the last sender */
	unsigned char addr[28];
	unsigned char *ubuf; /* UDP receive buffer while armed */
	struct iovec uiov;
	struct msghdr umh;
};

struct htab {
	pthread_mutex_t mu; /* slots, the free list and the owner map */
	struct handle **chunk;
	uint32_t nchunk;
	_Atomic uint32_t nslots; /* read without the mutex by handle_get */
	uint32_t *free;
	uint32_t nfree;
	struct kri_hmap own; /* owner id -> its first handle (struct owner, handle.c) */
};

int kri_htab_init(struct htab *t);
/* Close every fd and free everything (after the rings are gone). */
void kri_htab_fini(struct htab *t);

static inline uint64_t handle_id(const struct handle *h)
{
	return (uint64_t)atomic_load_explicit(&h->gen, memory_order_relaxed) << 32 | h->idx;
}

static inline void handle_lock(struct handle *h)
{
	while (atomic_flag_test_and_set_explicit(&h->lock, memory_order_acquire))
		cpu_relax();
}
static inline void handle_unlock(struct handle *h)
{
	atomic_flag_clear_explicit(&h->lock, memory_order_release);
}

/* A new open handle for fd owned by owner, locked. claim(arg, owner) is
 * asked under the table lock: false (the owner is gone) and nothing is
 * made. -EMFILE past 2^20 handles; -ESRCH: refused by claim; -ENOMEM. */
int kri_handle_new(struct htab *t, int fd, enum hkind kind, uint64_t owner,
		   bool (*claim)(void *, uint64_t), void *arg, struct handle **out);
/* The open handle id names, owned by owner, locked; NULL if none. */
struct handle *kri_handle_get(struct htab *t, uint64_t id, uint64_t owner);
/* Move h (locked) to a new owner; -ESRCH if claim refuses. */
int kri_handle_give(struct htab *t, struct handle *h, uint64_t owner,
		    bool (*claim)(void *, uint64_t), void *arg);
/* Close h (locked; unlocks it): no longer reachable by its id; freed now
 * or when its last request completes (handle_done). */
void kri_handle_close(struct htab *t, struct handle *h);
/* Unlock h; free it if it is closing and no request points at it. */
void kri_handle_put(struct htab *t, struct handle *h);
/* Close every handle owner holds (it has exited). */
void kri_handle_close_owner(struct htab *t, uint64_t owner);

/* Drop h's send queue (h locked, nothing of it in flight). */
void kri_handle_sq_free(struct handle *h);

#endif
