/* What the tests of dist/ (test_dist.c, test_dist_call.c, test_dist_flap.c)
 * share: an epmd of our own on a free port (ERL_EPMD_PORT), children (escripts
 * under tests/dist/ run as Erlang nodes, krill peers) on 127.0.0.1 with their
 * stdout on a pipe, a krill node kept up by a process, bounded waits. Static
 * inline functions: each file uses some of them, and an unused one is no
 * warning. */
#ifndef DIST_HARNESS_H
#define DIST_HARNESS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "krill.h"
#include "krill_dist.h"

#ifndef DIST_SCRIPTS /* tests/meson.build gives the folder; this, run from the source tree */
#define DIST_SCRIPTS "tests/dist"
#endif

extern char **environ;

static pid_t dh_epmd;

static inline void sleep_ms(unsigned ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&t, 0);
}

static inline uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static inline int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t l = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &l)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(a.sin_port);
}

static inline int answers(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* cmocka group setup: our own epmd, in the foreground (a child we can
 * kill by pid), on a free port every node of the run reads from
 * ERL_EPMD_PORT. */
static inline int dh_group_setup(void **st)
{
	(void)st;
	int port = free_port();
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	setenv("ERL_EPMD_PORT", ps, 1);
	setenv("ERL_CRASH_DUMP_SECONDS", "0", 1); /* a peer that dies writes no erl_crash.dump */
	char *argv[] = {"epmd", "-port", ps, 0};
	if (port < 0 || posix_spawnp(&dh_epmd, "epmd", 0, 0, argv, environ))
		return -1;
	for (int i = 0; i < 100 && !answers(port); i++)
		sleep_ms(50);
	return answers(port) ? 0 : -1;
}

static inline int dh_group_teardown(void **st)
{
	(void)st;
	if (dh_epmd > 0) {
		kill(dh_epmd, SIGTERM);
		waitpid(dh_epmd, 0, 0);
	}
	return 0;
}

/* Run argv (argv[0] a path, or a name looked up in PATH) with its stdout
 * on *out (a pipe) if out is given: its pid, or -1 (then nothing is left
 * open). */
static inline pid_t dh_spawn(char *const argv[], int *out)
{
	posix_spawn_file_actions_t fa;
	int p[2] = {-1, -1};
	if (out) {
		*out = -1;
		if (pipe(p))
			return -1;
	}
	posix_spawn_file_actions_init(&fa);
	if (out) {
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		posix_spawn_file_actions_addclose(&fa, p[0]);
	}
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, 0, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (out) {
		close(p[1]);
		*out = rc ? -1 : p[0];
		if (rc)
			close(p[0]);
	}
	return rc ? -1 : pid;
}

/* Run script as an Erlang node named name with cookie, with up to two
 * arguments (NULL: fewer); its stdout on *out (a pipe) if out is given.
 * -1: it could not be started. */
static inline pid_t dh_escript(const char *script, const char *name, const char *cookie,
			       const char *arg1, const char *arg2, int *out)
{
	char path[512], flags[256];
	snprintf(path, sizeof(path), "%s/%s", DIST_SCRIPTS, script);
	snprintf(flags, sizeof(flags), "-name %s -setcookie %s", name, cookie);
	setenv("ERL_FLAGS", flags, 1);
	char *argv[] = {"escript", path, (char *)arg1, (char *)arg2, 0};
	pid_t pid = dh_spawn(argv, out);
	unsetenv("ERL_FLAGS");
	return pid;
}

/* The child's exit status, or -1 after ms (then it is killed). */
static inline int dh_reap(pid_t pid, unsigned ms)
{
	int status;
	for (unsigned t = 0; t < ms; t += 20) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		sleep_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* Kill the child (SIGKILL), reap it and close its stdout out (if >= 0). */
static inline void dh_kill(pid_t pid, int out)
{
	kill(pid, SIGKILL);
	dh_reap(pid, 5000);
	if (out >= 0)
		close(out);
}

/* Wait for "ready" on fd (at most ms). */
static inline int dh_ready(int fd, unsigned ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char buf[64];
	if (poll(&p, 1, (int)ms) != 1)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	return n >= 5 && !strncmp(buf, "ready", 5) ? 0 : -1;
}

/* Until *flag is nonzero, at most ms: its value then. */
static inline int dh_wait_flag(atomic_int *flag, unsigned ms)
{
	for (unsigned t = 0; t < ms && !atomic_load(flag); t += 10)
		sleep_ms(10);
	return atomic_load(flag);
}

/* Until *v is at least want, at most ms: its value then. */
static inline int dh_wait_for(atomic_int *v, int want, unsigned ms)
{
	for (unsigned t = 0; t < ms && atomic_load(v) < want; t += 5)
		sleep_ms(5);
	return atomic_load(v);
}

/* The node's connections once none is left, or as they are after ms. */
static inline unsigned dh_wait_unconnected(kr_runtime *rt, unsigned ms)
{
	kr_node_info info;
	for (unsigned t = 0;; t += 10) {
		assert_int_equal(kr_node_info_get(rt, &info), 0);
		if (!info.connections || t >= ms)
			return info.connections;
		sleep_ms(10);
	}
}

/* Keeps a runtime up while its peers talk to it: any message ends it (the
 * test is over). */
static inline void dh_keeper(kr_ctx *ctx, void *st, const kr_msg *m)
{
	(void)st;
	(void)m;
	kr_exit(ctx, KR_NORMAL);
}

/* A runtime of two schedulers with a node named name (cookie NULL:
 * KRILL_COOKIE's; tick_ms 0: the default net_ticktime), *keep its
 * dh_keeper and, if b is given, *bpid a process of b. Both are spawned
 * before kr_start: a foreign spawn racing the start can be missed by the
 * last scheduler to park, which then stops an empty runtime. */
static inline kr_runtime *dh_node_up(const char *name, const char *cookie, unsigned tick_ms,
				     kr_pid *keep, kr_behaviour b, kr_pid *bpid)
{
	kr_config c;
	kr_config_init(&c);
	c.schedulers = 2;
	c.stats = 0;
	kr_runtime *rt;
	assert_int_equal(kr_runtime_new(&c, &rt), 0);
	assert_int_equal(kr_rt_spawn(rt, dh_keeper, 0, 0, keep), 0);
	if (b)
		assert_int_equal(kr_rt_spawn(rt, b, 0, 0, bpid), 0);
	assert_int_equal(kr_start(rt), 0);
	kr_node_config nc;
	kr_node_config_init(&nc);
	nc.name = name;
	nc.cookie = cookie;
	nc.setup_ms = 5000;
	nc.ticktime_ms = tick_ms;
	assert_int_equal(kr_node_start(rt, &nc), 0);
	return rt;
}

static inline void dh_node_down(kr_runtime *rt)
{
	kr_stop(rt);
	kr_wait(rt);
	kr_runtime_free(rt);
}

#endif
