#!/usr/bin/env bash
# A user who links libkrill must never meet a name of ours: every global
# symbol the static and the shared library define is public (kr_*) or
# carries the internal prefix (kri_*), and a program that defines common
# names (inject, now_ns, io_send, ...) links against the static library.
# Names that begin with _ are the implementation's (a sanitizer's
# __odr_asan.*, the linker's _init) and are left out.
# usage: test_symbols.sh LIBKRILL.a LIBKRILL.so CC [SANITIZE]  (SANITIZE: meson's b_sanitize)
set -u
a=$1 so=$2 cc=$3 san=${4:-none}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

strays() { # the defined globals of $@ (nm flags) that are neither kr_ nor kri_
	nm "$@" 2>/dev/null | awk 'NF == 3 && $2 ~ /[TDBRVWGSiu]/ {print $3}' |
		grep -v '^kr_' | grep -v '^kri_' | grep -v '^_' | sort -u
}
for what in "$a:-g --defined-only $a" "$so:-D --defined-only $so" "$so (all):-g --defined-only $so"; do
	name=${what%%:*}
	# shellcheck disable=SC2086
	bad=$(strays ${what#*:} | grep -v -E '^KRILL_[0-9.]+$')
	n=$(printf '%s' "$bad" | grep -c . || true)
	if [ "$n" -gt 0 ]; then
		echo "FAIL: $name defines $n global names that are neither kr_* nor kri_*:"
		printf '%s\n' "$bad" | head -20 | sed 's/^/  /'
		fail=1
	else
		echo "ok: $name defines only kr_* and kri_* globals"
	fi
done
[ "$(nm -g --defined-only "$a" | awk 'NF == 3 && $3 ~ /^kr_/' | wc -l)" -gt 50 ] ||
	{ echo "FAIL: $a defines too few kr_* names: not the library?"; fail=1; }

# The names an internal symbol most likely clashes with, defined by the
# program itself: linking must succeed and the program must run.
cat >"$tmp/user.c" <<'C'
#include <krill.h>
int inject = 1, now_ns = 2, io_send = 3, arena_init = 4, env_new = 5;
int proc_exit(void) { return 0; }
int sched_init(void) { return 0; }
int timer_start(void) { return 0; }
int main(void)
{
	kr_runtime *rt = 0;
	kr_config c;
	kr_config_init(&c);
	c.schedulers = 1;
	if (kr_runtime_new(&c, &rt) != 0)
		return 1;
	kr_runtime_free(rt);
	return inject + now_ns + io_send + arena_init + env_new - 15 + proc_exit() + sched_init() +
	       timer_start();
}
C
libs=$(pkg-config --libs --static hwloc liburing 2>/dev/null)
jem=$(nm -u "$a" 2>/dev/null | grep -q ' mallocx$' && echo -ljemalloc)
sanflags=()
[ "$san" = none ] || sanflags=(-fsanitize="$san")
if "$cc" "${sanflags[@]}" -std=c17 -I"$(dirname "$0")/../include" "$tmp/user.c" "$a" $libs $jem -lpthread -lm \
	-o "$tmp/user" 2>"$tmp/err"; then
	if "$tmp/user"; then
		echo "ok: a program defining inject, now_ns, io_send, ... links with $a and runs"
	else
		echo "FAIL: the program linked with $a did not run cleanly"
		fail=1
	fi
else
	echo "FAIL: a program defining common names does not link with $a:"
	head -5 "$tmp/err" | sed 's/^/  /'
	fail=1
fi
exit $fail
