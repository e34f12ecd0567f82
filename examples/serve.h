/* serve: what krill-http and krill-echo share: a listener process that accepts TCP connections
 * and starts one connection process per socket under a one_for_one supervisor, and the small
 * chores of a server's main (file limit, numeric options, one-line errors). */
#ifndef KRILL_PERF_SERVE_H
#define KRILL_PERF_SERVE_H

#include <krill.h>

#include <stdint.h>
#include <stdio.h>

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

/* A numeric option of a server's command line, stored in *v. */
struct serve_opt {
	const char *name; /* "port" for --port */
	uint64_t min, max, *v;
};

/* A server's main: parses --port, --schedulers and --backlog into s, and the
 * extra options (13 at most), then serve_run. --help prints usage. Returns the exit
 * status: 2 for a bad command line (after a one-line error). */
int serve_main(struct serve *s, int argc, char **argv, const struct serve_opt *extra, size_t nextra,
	       void (*usage)(FILE *f));

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t serve_now_ms(void);

#endif
