/* ops: I/O requests on a ring and what their completions become. io knows
 * processes only as the opaque owner ids of handles; the core supplies how
 * an event reaches an owner and whether an owner is still there. */
#ifndef KR_OPS_H
#define KR_OPS_H

#include "io/handle.h"
#include "io/ring.h"
#include "krill.h"

struct io_sink {
	/* Send the event (and n bytes of data after it) to owner; true if it
	 * is in its mailbox (false: no memory, or the owner is gone). */
	bool (*deliver)(void *arg, uint64_t owner, const kr_io_event *ev, const void *data,
			uint32_t n);
	/* Note that owner holds handles; false if it is gone (handle_new). */
	bool (*claim)(void *arg, uint64_t owner);
	void *arg;
};

/* What a request holds beyond its handle: a file operation. */
struct fop {
	struct handle *h; /* NULL for open */
	uint32_t op;      /* KR_IO_OPEN, _READ, _WRITE, _FSYNC */
	uint32_t len;
	uint64_t ref;
	uint64_t off;         /* read, write: the file offset */
	uint64_t owner;       /* open: who gets the new handle */
	unsigned char data[]; /* read: the buffer; write: the bytes; open: the path */
};

/* Requests. h is locked by the caller and stays locked. Each returns 0 or
 * a negative errno (nothing submitted). */
int kri_io_accept(struct ring *r, struct handle *h);
int kri_io_recv(struct ring *r, struct handle *h);
int kri_io_send(struct ring *r, struct handle *h);
int kri_io_connect(struct ring *r, struct handle *h);
/* f->h locked by the caller unless f is an open. */
int kri_io_file(struct ring *r, struct fop *f, int fd, int flags, uint32_t mode);
/* The owner of h (locked) took one of its events on r's scheduler: h's
 * home is r, and a stream receive owed since that event (rtake) is armed
 * on r, so that its completion arrives where the owner now runs. */
void kri_io_rearm(struct ring *r, struct handle *h);

/* Handle one completion reaped from r. */
void kri_io_complete(struct ring *r, struct htab *t, const struct io_sink *k,
		     struct io_uring_cqe *cqe);
/* Free what a request held, for completions reaped while tearing down. */
void kri_io_abandon(struct io_uring_cqe *cqe);

#endif
