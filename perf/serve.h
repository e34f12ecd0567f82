/* serve: what krill-http and krill-echo share: a listener process that accepts TCP connections
 * and starts one connection process per socket under a one_for_one supervisor, and the small
 * chores of a server's main (file limit, numeric options, one-line errors). */
#ifndef KRILL_PERF_SERVE_H
#define KRILL_PERF_SERVE_H

#include <krill.h>

#include <stdint.h>

/* The first message a connection process gets: it owns its socket from then on. */
#define SERVE_GO 1u

struct serve {
	const char *name;    /* the program's, for error lines */
	uint16_t port;       /* 0: a free one */
	unsigned schedulers; /* 0: one per core */
	int backlog;
	/* The connection process: its state is conn_size bytes, zero but for a kr_handle (the
	 * socket) at offset 0. */
	kr_behaviour conn;
	size_t conn_size;
};

/* Run the server until it fails: prints "port N" on stdout once listening, and one line on
 * stderr if anything goes wrong. Returns the exit status (it only returns on failure). */
int serve_run(const struct serve *s);

/* Parse a decimal number in [min, max] given to option opt; prints the error and returns -1
 * if it is not one. */
int serve_number(const char *name, const char *opt, const char *s, uint64_t min, uint64_t max,
		 uint64_t *out);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t serve_now_ms(void);

#endif
