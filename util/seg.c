/* seg: the liveness test of a stats segment's program (seg.h), for the
 * runtime and krilltop alike. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "util/seg.h"

enum kri_pstate kri_pid_state(int pid)
{
	char path[64], buf[512];
	if (kill(pid, 0) && errno == ESRCH)
		return KRI_P_DEAD;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return KRI_P_ALIVE;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *rp = strrchr(buf, ')'); /* comm may itself hold parentheses */
	return rp && rp[1] == ' ' && rp[2] == 'Z' ? KRI_P_ZOMBIE : KRI_P_ALIVE;
}

int kri_pid_maps(int pid, const char *path)
{
	char maps[64], line[1024];
	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	FILE *f = fopen(maps, "re");
	if (!f)
		return -1;
	int found = 0, any = 0;
	size_t plen = strlen(path);
	while (!found && fgets(line, sizeof(line), f)) {
		any = 1;
		const char *p = strstr(line, path);
		found = p && (p[plen] == '\n' || p[plen] == ' ' || p[plen] == 0);
	}
	fclose(f);
	return found ? 1 : any ? 0 : -1; /* an empty maps file: no permission to look */
}
