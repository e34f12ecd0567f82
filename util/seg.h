/* seg: is the program behind a stats segment still there? The one test the
 * runtime (removing its user's dead segments as it starts) and krilltop
 * (its list, --clean) share. libc alone: krilltop compiles it in without
 * linking anything of krill. */
#ifndef KRI_SEG_H
#define KRI_SEG_H

enum kri_pstate { KRI_P_ALIVE, KRI_P_DEAD, KRI_P_ZOMBIE };

/* Whether pid runs, is gone, or is a zombie (kill() succeeds on one; its
 * runtime is gone all the same). */
enum kri_pstate kri_pid_state(int pid);

/* Does pid map path? 1 yes, 0 no, -1 cannot tell (its maps not readable).
 * A live pid that does not map its segment is a new process that reused a
 * dead program's pid. */
int kri_pid_maps(int pid, const char *path);

#endif
